/* fuzz.h - what the libFuzzer harnesses share: the input written to a
 * file for the reader under test to open. */
#ifndef TL_FUZZ_H
#define TL_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Write size bytes of data to /tmp/fuzz_STEM.PID.EXT (the same file for
 * every input of this process) and return its path; abort when it cannot
 * be written.  The harness unlinks it when done. */
static const char *fuzz_file(const char *stem, const char *ext, const uint8_t *data, size_t size)
{
	static char path[64];
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/fuzz_%s.%d.%s", stem, (int)getpid(), ext);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	return path;
}

#endif
