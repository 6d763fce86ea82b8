/* fuzz_image.c - libFuzzer harness for the image decoders (data/imgio:
 * PNG, JPEG, PPM/PGM): each input is decoded from memory twice, at full
 * size and with a small target (DCT-scaled JPEG), under a 4-megapixel cap
 * so that a declared size cannot take the fuzzer past its memory limit;
 * a decoded image must have the size it claims and every pixel is read.
 * Built by bench/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>

#include "data/imgio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tl_img_opts o;
	tl_img_opts_init(&o);
	o.max_pixels = 1u << 22;
	for (int pass = 0; pass < 2; pass++) {
		o.target_w = o.target_h = pass ? 8 : 0;
		tl_img img;
		tl_err err;
		if (tl_img_decode_opts(data, size, "fuzz", &o, &img, &err) != TL_OK)
			continue;
		if (img.w < 1 || img.h < 1 || img.w > img.src_w || img.h > img.src_h ||
		    (uint64_t)img.src_w * (uint64_t)img.src_h > o.max_pixels)
			abort();
		unsigned sum = 0;
		for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
			sum += img.rgb[i];
		volatile unsigned sink = sum;
		(void)sink;
		tl_img_free(&img);
	}
	return 0;
}
