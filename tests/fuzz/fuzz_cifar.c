/* fuzz_cifar.c - libFuzzer harness for the CIFAR tarball reader: the
 * input is an archive (tar, .tar.gz, zip, ...); walk every member, read
 * its data in odd-sized blocks, then finish (trailing bytes, gzip CRC).
 * Built by bench/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "data/cifar.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file("cifar", "tgz", data, size);
	tl_cifar_src *s;
	tl_err err;
	if (tl_cifar_open(&s, path, &err) == TL_OK) {
		static uint8_t buf[3073 * 3];
		tl_cifar_member m;
		int done = 0, members = 0;
		while (members++ < 64 && tl_cifar_next(s, &m, &done, &err) == TL_OK && !done) {
			uint64_t left = m.size;
			while (left > 0) {
				size_t k = left < sizeof buf ? (size_t)left : 3073;
				if (tl_cifar_read(s, buf, k, &err) != TL_OK)
					break;
				left -= k;
			}
		}
		uint64_t sz, h;
		if (done)
			tl_cifar_finish(s, &sz, &h, &err);
		tl_cifar_close(s);
	}
	unlink(path);
	return 0;
}
