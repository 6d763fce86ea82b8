/* test_image.c - f16 conversion (and the $TL_CPU cap reaching it), resize,
 * normalization, channel order; image files (data/imgio): 16-bit and
 * low-bit PNG samples, colour-management chunks ignored, alpha, Adam7,
 * declared sizes and JPEG coefficients and scans against the limits,
 * DCT-scaled JPEG decoding, EXIF orientation (the parser on malformed
 * blocks, JPEG APP1 and PNG eXIf, with DCT scaling), CMYK and YCCK JPEGs,
 * PPM trailing bytes, FIFOs.
 *
 * Run as `test_image decode FILE OUT.ppm [TARGET_W TARGET_H]` it decodes
 * FILE with tl_img_load_opts, writes the pixels as a binary PPM and prints
 * "W H SRC_W SRC_H": tests/cli/tlpredict.sh compares those bytes with
 * PIL's.  `test_image cmykjpeg OUT.jpg W H KIND` writes a 4-component
 * JPEG of a smooth pattern (KIND: adobe, ycck, plain: see make_cmyk_jpeg)
 * for those comparisons: PIL writes only the first kind. */
#define _GNU_SOURCE /* memmem */
#include "tl_test.h"

#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#include "cpu/cpu.h"
#include "data/f16.h"
#include "data/image.h"
#include "data/imgio.h"

static uint32_t bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}
static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static void f16_known_values(void **state)
{
	(void)state;
	assert_int_equal(tl_f32_to_f16(1.0f), 0x3c00);
	assert_int_equal(tl_f32_to_f16(-2.0f), 0xc000);
	assert_int_equal(tl_f32_to_f16(65504.0f), 0x7bff);
	assert_int_equal(tl_f32_to_f16(65519.0f), 0x7bff);
	assert_int_equal(tl_f32_to_f16(65520.0f), 0x7c00); /* rounds to inf */
	assert_int_equal(tl_f32_to_f16(ldexpf(1, -24)), 0x0001);
	assert_int_equal(tl_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even zero */
	assert_int_equal(tl_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
	assert_int_equal(tl_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie -> even */
	assert_int_equal(tl_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02); /* tie -> even */
	assert_int_equal(tl_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
	assert_int_equal(tl_f32_to_f16(INFINITY), 0x7c00);
	assert_true((tl_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (tl_f32_to_f16(NAN) & 0x3ff));
	assert_true(tl_f16_to_f32(0x0001) == ldexpf(1, -24));
	assert_true(tl_f16_to_f32(0x7bff) == 65504.0f);
	assert_true(tl_f16_to_f32(0x3555) == 0.333251953125f);
}

/* Every half value survives f16 -> f32 -> f16, in both paths. */
static void f16_roundtrip_exhaustive(void **state)
{
	(void)state;
	uint16_t *h = malloc(65536 * 2), *back = malloc(65536 * 2), *back_ref = malloc(65536 * 2);
	float *f = malloc(65536 * 4), *f_ref = malloc(65536 * 4);
	for (uint32_t i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	tl_f16_to_f32_n(f, h, 65536);
	tl_f16_to_f32_n_ref(f_ref, h, 65536);
	tl_f32_to_f16_n(back, f, 65536);
	tl_f32_to_f16_n_ref(back_ref, f_ref, 65536);
	for (uint32_t i = 0; i < 65536; i++) {
		int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
		if (nan) {
			assert_true(isnan(f[i]) && isnan(f_ref[i]));
			continue;
		}
		assert_int_equal(bits(f[i]), bits(f_ref[i]));
		assert_int_equal(back[i], i);
		assert_int_equal(back_ref[i], i);
	}
	free(h), free(back), free(back_ref), free(f), free(f_ref);
}

/* Fast (F16C) and scalar paths agree bit for bit on arbitrary floats,
 * including odd lengths that exercise the scalar tail. */
static void f16_fast_matches_reference(void **state)
{
	(void)state;
	enum { N = 200003 };
	float *f = malloc(N * 4);
	uint16_t *a = malloc(N * 2), *b = malloc(N * 2);
	uint32_t x = 12345;
	for (int i = 0; i < N; i++) {
		x = x * 1664525u + 1013904223u;
		/* exponents across the half range, with random mantissas */
		uint32_t e = 100 + (x >> 24) % 50;
		f[i] = from_bits((x & 0x807fffffu) | (e << 23));
	}
	tl_f32_to_f16_n(a, f, N);
	tl_f32_to_f16_n_ref(b, f, N);
	assert_memory_equal(a, b, N * 2);
	free(f), free(a), free(b);
}

/* One detector: TL_CPU=scalar (read on first use, so this runs first)
 * turns the F16C path off as it caps the kernels; forcing a level later
 * moves both.  Every AVX2 CPU has F16C, so uncapped it is on there. */
static void cpu_cap_reaches_f16(void **state)
{
	(void)state;
	setenv("TL_CPU", "scalar", 1);
	assert_int_equal(tl_cpu_detect(), TL_CPU_SCALAR);
	assert_int_equal(tl_cpu_f16c(), 0);
	assert_int_equal(tl_cpu_force(TL_CPU_AVX512), tl_cpu_supported());
	if (tl_cpu_supported() >= TL_CPU_AVX2)
		assert_int_equal(tl_cpu_f16c(), 1);
	assert_int_equal(tl_cpu_force(TL_CPU_SCALAR), TL_CPU_SCALAR);
	assert_int_equal(tl_cpu_f16c(), 0);
	f16_fast_matches_reference(state); /* the scalar path, through the _n entry */
	tl_cpu_force(TL_CPU_AVX512);
	unsetenv("TL_CPU");
}

static uint8_t *random_image(int h, int w, uint32_t seed)
{
	uint8_t *img = malloc((size_t)3 * h * w);
	for (int i = 0; i < 3 * h * w; i++) {
		seed = seed * 1103515245u + 12345u;
		img[i] = (uint8_t)(seed >> 16);
	}
	return img;
}

static void convert(const uint8_t *src, int ih, int iw, int oh, int ow, tl_filter f,
		    tl_norm_kind nk, tl_dtype dt, void *dst)
{
	tl_resize rz;
	tl_norm n;
	tl_err err;
	assert_int_equal(tl_resize_init(&rz, ih, iw, oh, ow, f, &err), TL_OK);
	tl_norm_preset(nk, &n);
	float *scratch = malloc(tl_image_scratch_floats(&rz) * sizeof(float));
	tl_image_convert(src, &rz, &n, dt, dst, scratch);
	free(scratch);
	tl_resize_free(&rz);
}

static void resize_identity_is_exact(void **state)
{
	(void)state;
	uint8_t *img = random_image(32, 32, 7);
	float out[3 * 32 * 32];
	for (int f = TL_FILTER_AUTO; f <= TL_FILTER_NEAREST; f++) {
		convert(img, 32, 32, 32, 32, (tl_filter)f, TL_NORM_NONE, TL_DTYPE_F32, out);
		for (int i = 0; i < 3 * 32 * 32; i++)
			assert_true(out[i] == (float)img[i]);
	}
	free(img);
}

static void resize_area_halves_by_block_mean(void **state)
{
	(void)state;
	uint8_t *img = random_image(32, 32, 9);
	float out[3 * 16 * 16];
	convert(img, 32, 32, 16, 16, TL_FILTER_AUTO, TL_NORM_NONE, TL_DTYPE_F32, out);
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 16; y++)
			for (int x = 0; x < 16; x++) {
				const uint8_t *p = img + c * 1024 + 2 * y * 32 + 2 * x;
				double want = (p[0] + p[1] + p[32] + p[33]) / 4.0;
				assert_close(out[c * 256 + y * 16 + x], want, 1e-4, 1e-6);
			}
	free(img);
}

static void resize_known_values(void **state)
{
	(void)state;
	/* one row per channel: 1 x 2 -> 1 x 4 bilinear (half-pixel centres):
	 * source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped) */
	uint8_t up[6] = {0, 100, 0, 100, 0, 100};
	float o4[12];
	convert(up, 1, 2, 1, 4, TL_FILTER_BILINEAR, TL_NORM_NONE, TL_DTYPE_F32, o4);
	float want4[4] = {0, 25, 75, 100};
	for (int i = 0; i < 4; i++)
		assert_close(o4[i], want4[i], 1e-5, 0);
	/* 1 x 3 -> 1 x 2 area: windows [0, 1.5) and [1.5, 3) */
	uint8_t down[9] = {0, 30, 60, 0, 30, 60, 0, 30, 60};
	float o2[6];
	convert(down, 1, 3, 1, 2, TL_FILTER_AUTO, TL_NORM_NONE, TL_DTYPE_F32, o2);
	assert_close(o2[0], 10.0, 1e-4, 0);
	assert_close(o2[1], 50.0, 1e-4, 0);
	/* 2x2 -> 4x4 bilinear: corners stay, interior blends both axes */
	uint8_t sq[12] = {0, 40, 80, 120, 0, 40, 80, 120, 0, 40, 80, 120};
	float o16[48];
	convert(sq, 2, 2, 4, 4, TL_FILTER_AUTO, TL_NORM_NONE, TL_DTYPE_F32, o16);
	assert_close(o16[0], 0.0, 1e-4, 0);
	assert_close(o16[15], 120.0, 1e-4, 0);
	/* (1,1): sy = sx = 0.25 -> 0*.5625 + 40*.1875 + 80*.1875 + 120*.0625 */
	assert_close(o16[5], 30.0, 1e-4, 0);
	/* nearest 2 -> 4 duplicates */
	float on[12];
	convert(up, 1, 2, 1, 4, TL_FILTER_NEAREST, TL_NORM_NONE, TL_DTYPE_F32, on);
	float wantn[4] = {0, 0, 100, 100};
	for (int i = 0; i < 4; i++)
		assert_close(on[i], wantn[i], 0, 0);
}

static void normalize_caffe_is_bgr_minus_mean(void **state)
{
	(void)state;
	/* a 1x1 image: R=10, G=20, B=30 */
	uint8_t px[3] = {10, 20, 30};
	float o[3];
	convert(px, 1, 1, 1, 1, TL_FILTER_AUTO, TL_NORM_CAFFE, TL_DTYPE_F32, o);
	assert_close(o[0], 30 - 103.939, 1e-5, 1e-6);
	assert_close(o[1], 20 - 116.779, 1e-5, 1e-6);
	assert_close(o[2], 10 - 123.68, 1e-5, 1e-6);
	convert(px, 1, 1, 1, 1, TL_FILTER_AUTO, TL_NORM_TORCH, TL_DTYPE_F32, o);
	assert_close(o[0], (10 / 255.0 - 0.485) / 0.229, 1e-5, 1e-5);
	assert_close(o[1], (20 / 255.0 - 0.456) / 0.224, 1e-5, 1e-5);
	assert_close(o[2], (30 / 255.0 - 0.406) / 0.225, 1e-5, 1e-5);
	convert(px, 1, 1, 1, 1, TL_FILTER_AUTO, TL_NORM_TF, TL_DTYPE_F32, o);
	assert_close(o[0], 10 / 127.5 - 1, 1e-6, 1e-6);
	uint16_t h[3];
	convert(px, 1, 1, 1, 1, TL_FILTER_AUTO, TL_NORM_CAFFE, TL_DTYPE_F16, h);
	assert_close(tl_f16_to_f32(h[0]), 30 - 103.939, 0.05, 0);
	uint8_t u[3];
	convert(px, 1, 1, 1, 1, TL_FILTER_AUTO, TL_NORM_CAFFE, TL_DTYPE_U8, u);
	assert_int_equal(u[0], 30); /* u8 keeps pixels, in BGR order */
	assert_int_equal(u[1], 20);
	assert_int_equal(u[2], 10);
	float back[3];
	tl_norm n;
	tl_norm_preset(TL_NORM_CAFFE, &n);
	tl_image_to_f32(u, TL_DTYPE_U8, &n, 1, back);
	assert_close(back[0], 30 - 103.939, 1e-5, 1e-6);
	assert_close(back[2], 10 - 123.68, 1e-5, 1e-6);
}

/* Stored records de-normalize back to the original pixels exactly at
 * 32x32 for every dtype and normalization. */
static void denormalize_roundtrip_exact(void **state)
{
	(void)state;
	uint8_t *img = random_image(32, 32, 11);
	/* include the extremes */
	img[0] = 0, img[1] = 255, img[1024] = 255, img[2047] = 0;
	uint8_t buf[3 * 1024 * 4], rgb[3 * 1024];
	for (int nk = TL_NORM_NONE; nk <= TL_NORM_TF; nk++)
		for (int dt = TL_DTYPE_U8; dt <= TL_DTYPE_F32; dt++) {
			tl_norm n;
			tl_norm_preset((tl_norm_kind)nk, &n);
			convert(img, 32, 32, 32, 32, TL_FILTER_AUTO, (tl_norm_kind)nk,
				(tl_dtype)dt, buf);
			tl_image_to_rgb8(buf, (tl_dtype)dt, &n, 32, 32, rgb);
			for (int c = 0; c < 3; c++)
				for (int i = 0; i < 1024; i++)
					if (rgb[i * 3 + c] != img[c * 1024 + i])
						fail_msg("norm %s dtype %s: channel %d pixel %d: got %d, expected %d",
							 tl_norm_name((tl_norm_kind)nk),
							 tl_dtype_name((tl_dtype)dt), c, i,
							 rgb[i * 3 + c], img[c * 1024 + i]);
		}
	free(img);
}

static void names_parse(void **state)
{
	(void)state;
	tl_dtype d;
	tl_norm_kind k;
	tl_filter f;
	assert_int_equal(tl_dtype_parse("u8", &d), 0);
	assert_int_equal(d, TL_DTYPE_U8);
	assert_int_equal(tl_dtype_parse("f64", &d), -1);
	assert_int_equal(tl_norm_parse("torch", &k), 0);
	assert_int_equal(k, TL_NORM_TORCH);
	assert_int_equal(tl_norm_parse("imagenet", &k), -1);
	assert_int_equal(tl_filter_parse("area", &f), 0);
	assert_int_equal(f, TL_FILTER_AREA);
	tl_resize rz;
	tl_err err;
	assert_int_equal(tl_resize_init(&rz, 32, 32, 0, 5, TL_FILTER_AUTO, &err), TL_EUSAGE);
}

/* ---- image files ---- */

typedef struct {
	uint8_t *p;
	size_t n, cap;
} membuf;

static void mem_write(png_structp png, png_bytep d, size_t n)
{
	membuf *m = png_get_io_ptr(png);
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		m->p = realloc(m->p, m->cap);
	}
	memcpy(m->p + m->n, d, n);
	m->n += n;
}

static void mem_flush(png_structp png)
{
	(void)png;
}

typedef struct {
	int w, h, depth, ctype, interlace;
	double gamma; /* > 0: a gAMA chunk (and cHRM, sRGB-less) */
	const png_color *pal;
	int npal;
	const uint8_t *trns;
	int ntrns;
	const uint8_t *exif; /* an eXIf chunk of nexif bytes, */
	int nexif, exif_after; /* before IDAT, or after it */
} png_spec;

/* A PNG of px (packed rows of s's colour type and depth, 16-bit samples
 * big-endian) written by libpng; *n its size. */
static uint8_t *make_png(const png_spec *s, const uint8_t *px, size_t *n)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	membuf m = {0};
	assert_false(setjmp(png_jmpbuf(png)));
	png_set_write_fn(png, &m, mem_write, mem_flush);
	png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype, s->interlace,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (s->gamma > 0) {
		png_set_gAMA(png, info, s->gamma);
		png_set_cHRM(png, info, 0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06);
	}
	if (s->pal)
		png_set_PLTE(png, info, s->pal, s->npal);
	if (s->trns)
		png_set_tRNS(png, info, s->trns, s->ntrns, NULL);
	if (s->exif && !s->exif_after)
		png_set_eXIf_1(png, info, (png_uint_32)s->nexif, (png_bytep)s->exif);
	png_write_info(png, info);
	int ch = s->ctype == PNG_COLOR_TYPE_RGB ? 3 : s->ctype == PNG_COLOR_TYPE_RGBA ? 4
		 : s->ctype == PNG_COLOR_TYPE_GA ? 2 : 1;
	size_t rowbytes = ((size_t)s->w * ch * s->depth + 7) / 8;
	int passes = png_set_interlace_handling(png);
	for (int pass = 0; pass < passes; pass++)
		for (int y = 0; y < s->h; y++)
			png_write_row(png, px + (size_t)y * rowbytes);
	png_infop end = NULL;
	if (s->exif && s->exif_after) {
		end = png_create_info_struct(png);
		png_set_eXIf_1(png, end, (png_uint_32)s->nexif, (png_bytep)s->exif);
	}
	png_write_end(png, end);
	if (end)
		png_destroy_info_struct(png, &end);
	png_destroy_write_struct(&png, &info);
	*n = m.n;
	return m.p;
}

/* Decode with the default limits; assert success and the size. */
static void decode_ok(const uint8_t *buf, size_t n, int w, int h, tl_img *img)
{
	tl_err err;
	tl_status st = tl_img_decode(buf, n, "t", img, &err);
	if (st != TL_OK)
		fail_msg("decode failed: %s", err.msg);
	assert_int_equal(img->w, w);
	assert_int_equal(img->h, h);
}

/* Decode with o; assert failure with a message holding want. */
static void decode_fails(const uint8_t *buf, size_t n, const tl_img_opts *o, const char *want)
{
	tl_img img;
	tl_err err;
	tl_status st = tl_img_decode_opts(buf, n, "t", o, &img, &err);
	if (st == TL_OK) {
		tl_img_free(&img);
		fail_msg("decode succeeded, expected an error with '%s'", want);
	}
	if (!strstr(err.msg, want))
		fail_msg("error '%s' lacks '%s'", err.msg, want);
	assert_null(img.rgb);
}

/* Samples are value / 257 rounded, as the man page says (and as a PGM of
 * the same samples gives), not decoded through a gamma curve. */
static void png_16bit_is_value_over_257(void **state)
{
	(void)state;
	/* grey: 0x8080 -> 128 (libpng's simplified API gave 186), ends, and
	 * the rounding edges 128 -> 0, 129 -> 1, 385 -> 1, 386 -> 2 */
	uint16_t gv[] = {0x8080, 0xFFFF, 0, 128, 129, 385, 386, 0x7F7F};
	uint8_t want[] = {128, 255, 0, 0, 1, 1, 2, 127};
	enum { NG = sizeof gv / sizeof gv[0] };
	uint8_t g16[NG * 2];
	for (int i = 0; i < NG; i++)
		g16[2 * i] = (uint8_t)(gv[i] >> 8), g16[2 * i + 1] = (uint8_t)gv[i];
	png_spec sg = {NG, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	size_t n;
	uint8_t *buf = make_png(&sg, g16, &n);
	tl_img img;
	decode_ok(buf, n, NG, 1, &img);
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < NG; i++)
			if (img.rgb[c * NG + i] != want[i])
				fail_msg("grey 16-bit %#x: plane %d got %d, expected %d", gv[i], c,
					 img.rgb[c * NG + i], want[i]);
	tl_img_free(&img);
	free(buf);
	/* a PGM of the same samples decodes the same */
	char pgm[64 + NG * 2];
	int hn = sprintf(pgm, "P5 %d 1 65535\n", NG);
	memcpy(pgm + hn, g16, sizeof g16);
	decode_ok((uint8_t *)pgm, (size_t)hn + sizeof g16, NG, 1, &img);
	assert_memory_equal(img.rgb, want, NG);
	tl_img_free(&img);

	/* RGB: 8-bit samples x 257 give back the 8-bit image exactly, and
	 * arbitrary 16-bit samples give (v + 128) / 257 */
	enum { W = 29, H = 7, NP = W * H };
	uint8_t *rgb8 = random_image(H, W, 21), *x257 = malloc(NP * 6), *any = malloc(NP * 6);
	uint32_t seed = 5;
	for (int i = 0; i < NP * 3; i++) {
		x257[2 * i] = x257[2 * i + 1] = rgb8[i];
		seed = seed * 1103515245u + 12345u;
		any[2 * i] = (uint8_t)(seed >> 24), any[2 * i + 1] = (uint8_t)(seed >> 16);
	}
	png_spec s16 = {W, H, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&s16, x257, &n);
	decode_ok(buf, n, W, H, &img);
	for (int i = 0; i < NP; i++)
		for (int c = 0; c < 3; c++)
			assert_int_equal(img.rgb[c * NP + i], rgb8[i * 3 + c]);
	tl_img_free(&img);
	free(buf);
	buf = make_png(&s16, any, &n);
	decode_ok(buf, n, W, H, &img);
	for (int i = 0; i < NP; i++)
		for (int c = 0; c < 3; c++) {
			unsigned v = (unsigned)any[2 * (i * 3 + c)] << 8 | any[2 * (i * 3 + c) + 1];
			assert_int_equal(img.rgb[c * NP + i], (v + 128) / 257);
		}
	tl_img_free(&img);
	free(buf);
	free(rgb8), free(x257), free(any);
}

/* gAMA (and cHRM) are not applied: an 8-bit sample of 235 in a file
 * declaring gamma 1.0 stays 235 (it became 246). */
static void png_gamma_chunks_ignored(void **state)
{
	(void)state;
	enum { W = 16, H = 16, NP = W * H };
	uint8_t *rgb8 = random_image(H, W, 33);
	rgb8[0] = 235;
	png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 1.0, NULL, 0, NULL, 0, NULL, 0, 0};
	size_t n;
	uint8_t *buf = make_png(&s, rgb8, &n);
	assert_non_null(memmem(buf, n, "gAMA", 4));
	tl_img img;
	decode_ok(buf, n, W, H, &img);
	assert_int_equal(img.rgb[0], 235);
	for (int i = 0; i < NP; i++)
		for (int c = 0; c < 3; c++)
			assert_int_equal(img.rgb[c * NP + i], rgb8[i * 3 + c]);
	tl_img_free(&img);
	free(buf);
	free(rgb8);
}

static uint8_t over_white(unsigned c, unsigned a)
{
	return (uint8_t)((c * a + 255 * (255 - a) + 127) / 255);
}

/* Palette (with tRNS), grey + alpha, RGBA 16-bit, 1- and 2-bit grey. */
static void png_palette_alpha_lowbit(void **state)
{
	(void)state;
	tl_img img;
	size_t n;
	png_color pal[4] = {{10, 20, 30}, {200, 100, 50}, {0, 255, 0}, {7, 8, 9}};
	uint8_t trns[3] = {0, 128, 255}; /* the last entry has none: opaque */
	uint8_t idx[4] = {0, 1, 2, 3};
	png_spec sp = {4, 1, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, 0, pal, 4, trns, 3, NULL, 0, 0};
	uint8_t *buf = make_png(&sp, idx, &n);
	decode_ok(buf, n, 4, 1, &img);
	uint8_t a[4] = {0, 128, 255, 255};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(img.rgb[i], over_white(pal[i].red, a[i]));
		assert_int_equal(img.rgb[4 + i], over_white(pal[i].green, a[i]));
		assert_int_equal(img.rgb[8 + i], over_white(pal[i].blue, a[i]));
	}
	assert_int_equal(img.rgb[0], 255);                 /* transparent: white */
	assert_int_equal(img.rgb[1], (200 * 128 + 255 * 127 + 127) / 255); /* 228 */
	tl_img_free(&img);
	free(buf);

	uint8_t ga[6] = {100, 0, 100, 64, 100, 255};
	png_spec sga = {3, 1, 8, PNG_COLOR_TYPE_GA, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&sga, ga, &n);
	decode_ok(buf, n, 3, 1, &img);
	for (int c = 0; c < 3; c++) {
		assert_int_equal(img.rgb[c * 3 + 0], 255);
		assert_int_equal(img.rgb[c * 3 + 1], over_white(100, 64));
		assert_int_equal(img.rgb[c * 3 + 2], 100);
	}
	tl_img_free(&img);
	free(buf);

	/* RGBA 16-bit holding 8-bit x 257: alpha 0x8080 is 128 */
	uint8_t rgba[16] = {0x30, 0x30, 0x60, 0x60, 0x90, 0x90, 0x80, 0x80,
			    0x12, 0x12, 0x34, 0x34, 0x56, 0x56, 0xFF, 0xFF};
	png_spec s64 = {2, 1, 16, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&s64, rgba, &n);
	decode_ok(buf, n, 2, 1, &img);
	assert_int_equal(img.rgb[0], over_white(0x30, 128));
	assert_int_equal(img.rgb[2], over_white(0x60, 128));
	assert_int_equal(img.rgb[4], over_white(0x90, 128));
	assert_int_equal(img.rgb[1], 0x12);
	assert_int_equal(img.rgb[3], 0x34);
	assert_int_equal(img.rgb[5], 0x56);
	tl_img_free(&img);
	free(buf);

	/* 2-bit grey 0..3 -> 0, 85, 170, 255; 1-bit -> 0, 255 */
	uint8_t g2[1] = {0x1B}; /* 00 01 10 11 */
	png_spec s2 = {4, 1, 2, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&s2, g2, &n);
	decode_ok(buf, n, 4, 1, &img);
	uint8_t w2[4] = {0, 85, 170, 255};
	assert_memory_equal(img.rgb, w2, 4);
	assert_memory_equal(img.rgb + 8, w2, 4);
	tl_img_free(&img);
	free(buf);
	uint8_t g1[1] = {0xA0}; /* 1 0 1 */
	png_spec s1 = {3, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&s1, g1, &n);
	decode_ok(buf, n, 3, 1, &img);
	uint8_t w1[3] = {255, 0, 255};
	assert_memory_equal(img.rgb + 3, w1, 3);
	tl_img_free(&img);
	free(buf);
}

/* Adam7: every pass's pixels land where they belong, at odd sizes too
 * (passes with no columns or rows). */
static void png_interlaced(void **state)
{
	(void)state;
	int sizes[][2] = {{37, 23}, {1, 1}, {3, 2}, {9, 1}, {1, 9}};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		int w = sizes[k][0], h = sizes[k][1], np = w * h;
		uint8_t *rgb8 = random_image(h, w, 40 + (uint32_t)k);
		png_spec s = {w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, 0, NULL, 0, NULL, 0, NULL, 0, 0};
		size_t n;
		uint8_t *buf = make_png(&s, rgb8, &n);
		tl_img img;
		decode_ok(buf, n, w, h, &img);
		for (int i = 0; i < np; i++)
			for (int c = 0; c < 3; c++)
				if (img.rgb[c * np + i] != rgb8[i * 3 + c])
					fail_msg("%dx%d Adam7: pixel %d channel %d: got %d, expected %d", w, h, i,
						 c, img.rgb[c * np + i], rgb8[i * 3 + c]);
		tl_img_free(&img);
		free(buf);
		free(rgb8);
	}
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c >> 1 ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A real PNG whose IHDR is rewritten to declare w x h (CRC fixed): its
 * pixel data is that of a small image, so only a decoder that allocates
 * from the header before reading the data gets far. */
static uint8_t *png_declaring(uint32_t w, uint32_t h, size_t *n)
{
	uint8_t px[8 * 8 * 3] = {0};
	png_spec s = {8, 8, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	uint8_t *buf = make_png(&s, px, n);
	assert_memory_equal(buf + 12, "IHDR", 4);
	put_be32(buf + 16, w);
	put_be32(buf + 20, h);
	put_be32(buf + 29, crc32_of(buf + 12, 17));
	return buf;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Declared sizes over the cap are refused from the header; the cap is
 * what opts says. */
static void limits_png_ppm(void **state)
{
	(void)state;
	tl_img_opts o;
	tl_img_opts_init(&o);
	assert_int_equal(o.max_pixels, 178956970ULL);
	size_t n;
	double t0 = now_s();
	uint8_t *buf = png_declaring(20000, 20000, &n); /* 400 Mpx: 2.4 GB as RGB, twice */
	decode_fails(buf, n, &o, "t: PNG: too many pixels (expected at most 178956970, got 20000x20000 = 400000000");
	free(buf);
	buf = png_declaring(32768, 32769, &n);
	decode_fails(buf, n, &o, "t: PNG: bad image size (expected 1..32768 on each side, got 32768x32769)");
	free(buf);
	/* within the cap the header passes and the short data fails */
	buf = png_declaring(8, 9000, &n);
	decode_fails(buf, n, &o, "t: PNG: damaged or truncated");
	free(buf);
	/* a smaller cap: 10x10 passes at 100 pixels, 11x10 does not */
	o.max_pixels = 100;
	uint8_t px[11 * 10 * 3] = {0};
	png_spec s = {10, 10, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	buf = make_png(&s, px, &n);
	tl_img img;
	tl_err err;
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &img, &err), TL_OK);
	tl_img_free(&img);
	free(buf);
	s.w = 11;
	buf = make_png(&s, px, &n);
	decode_fails(buf, n, &o, "t: PNG: too many pixels (expected at most 100, got 11x10 = 110");
	free(buf);
	const char *ppm = "P6 11 10 255\n";
	decode_fails((const uint8_t *)ppm, strlen(ppm), &o, "t: PPM: too many pixels (expected at most 100, got 11x10");
	tl_img_opts_init(&o);
	/* a PPM header declaring 100 Mpx over 10 bytes: truncated, from the header */
	const char *big = "P6 10000 10000 255\n0123456789";
	decode_fails((const uint8_t *)big, strlen(big), &o, "t: PPM: truncated (expected 300000000 bytes of pixels, got 10)");
	const char *plain = "P3 10000 10000 255\n1 2 3\n";
	decode_fails((const uint8_t *)plain, strlen(plain), &o, "t: PPM: truncated (expected 300000000 samples");
	/* none of it took long: nothing of the declared sizes was touched */
	assert_true(now_s() - t0 < 2.0);
}

/* One JPEG of px (w x h RGB) from libjpeg: baseline, progressive
 * (jpeg_simple_progression), or with n_scans > 0 a progressive script of
 * one DC scan then every AC coefficient of every component alone
 * (1 + 3 * 63 = 190 scans, a valid script). */
static uint8_t *make_jpeg(const uint8_t *px, int w, int h, int progressive, int many_scans,
			  unsigned long *n)
{
	struct jpeg_compress_struct cj;
	struct jpeg_error_mgr je;
	cj.err = jpeg_std_error(&je);
	jpeg_create_compress(&cj);
	unsigned char *buf = NULL;
	*n = 0;
	jpeg_mem_dest(&cj, &buf, n);
	cj.image_width = (JDIMENSION)w, cj.image_height = (JDIMENSION)h;
	cj.input_components = 3, cj.in_color_space = JCS_RGB;
	jpeg_set_defaults(&cj);
	jpeg_set_quality(&cj, 95, TRUE);
	jpeg_scan_info script[1 + 3 * 63];
	if (many_scans) {
		script[0] = (jpeg_scan_info){3, {0, 1, 2, 0}, 0, 0, 0, 0};
		for (int c = 0; c < 3; c++)
			for (int k = 1; k < 64; k++)
				script[1 + c * 63 + k - 1] = (jpeg_scan_info){1, {c, 0, 0, 0}, k, k, 0, 0};
		cj.scan_info = script;
		cj.num_scans = 1 + 3 * 63;
	} else if (progressive) {
		jpeg_simple_progression(&cj);
	}
	jpeg_start_compress(&cj, TRUE);
	while (cj.next_scanline < cj.image_height) {
		JSAMPROW row = (JSAMPROW)px + (size_t)cj.next_scanline * w * 3;
		jpeg_write_scanlines(&cj, &row, 1);
	}
	jpeg_finish_compress(&cj);
	jpeg_destroy_compress(&cj);
	return buf;
}

/* Rewrites the frame header (SOF0/SOF2) of a JPEG to declare w x h. */
static void jpeg_declare(uint8_t *b, size_t n, unsigned w, unsigned h)
{
	for (size_t i = 2; i + 9 < n;) {
		assert_int_equal(b[i], 0xFF);
		unsigned m = b[i + 1], len = (unsigned)b[i + 2] << 8 | b[i + 3];
		if (m == 0xC0 || m == 0xC2) {
			b[i + 5] = (uint8_t)(h >> 8), b[i + 6] = (uint8_t)h;
			b[i + 7] = (uint8_t)(w >> 8), b[i + 8] = (uint8_t)w;
			return;
		}
		i += 2 + len;
	}
	fail_msg("no SOF0/SOF2 marker");
}

/* Interleaved [h][w][3] from a smooth pattern (JPEG-friendly). */
static uint8_t *smooth_image(int w, int h)
{
	uint8_t *px = malloc((size_t)w * h * 3);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = px + ((size_t)y * w + x) * 3;
			p[0] = (uint8_t)(x * 255 / (w - 1));
			p[1] = (uint8_t)(y * 255 / (h - 1));
			p[2] = (uint8_t)(128 + 100 * sin(x * 0.05 + y * 0.03));
		}
	return px;
}

/* Progressive and baseline decode alike; a progressive JPEG declaring
 * more coefficients than the cap is refused before libjpeg allocates
 * them; a truncated one fails at the first sign, fast; too many scans are
 * refused. */
static void limits_jpeg(void **state)
{
	(void)state;
	enum { W = 48, H = 40 };
	uint8_t *px = smooth_image(W, H);
	unsigned long nb, np, ns;
	uint8_t *base = make_jpeg(px, W, H, 0, 0, &nb), *prog = make_jpeg(px, W, H, 1, 0, &np),
		*many = make_jpeg(px, W, H, 1, 1, &ns);
	tl_img a, b;
	decode_ok(base, nb, W, H, &a);
	decode_ok(prog, np, W, H, &b);
	int worst = 0;
	for (int i = 0; i < 3 * W * H; i++)
		worst = abs(a.rgb[i] - b.rgb[i]) > worst ? abs(a.rgb[i] - b.rgb[i]) : worst;
	assert_true(worst <= 3); /* the same quantized image, two scan orders */
	tl_img_free(&a);
	tl_img_free(&b);

	tl_img_opts o;
	tl_img_opts_init(&o);
	double t0 = now_s();
	/* 12000 x 12000 is 144 Mpx, under the cap, but its 3 x 144 M
	 * coefficients (4:2:0: 1.5 x) would all be kept */
	uint8_t *p2 = malloc(np);
	memcpy(p2, prog, np);
	jpeg_declare(p2, np, 12000, 12000);
	decode_fails(p2, np, &o, "t: JPEG: too many coefficients to buffer (a progressive JPEG keeps all of them: expected at most 178956970, got 216000000 for 12000x12000 with 3 components");
	jpeg_declare(p2, np, 32768, 32768);
	decode_fails(p2, np, &o, "t: JPEG: too many pixels (expected at most 178956970, got 32768x32768");
	/* with the cap raised the same file fails as truncated, at once */
	o.max_pixels = TL_IMG_MAX_PIXELS_HI;
	jpeg_declare(p2, np, 12000, 12000);
	decode_fails(p2, np, &o, "t: JPEG: damaged or truncated (libjpeg: Corrupt JPEG data: premature end of data segment)");
	tl_img_opts_init(&o);
	/* baseline: no coefficient buffer; the short data stops it at once */
	uint8_t *b2 = malloc(nb);
	memcpy(b2, base, nb);
	jpeg_declare(b2, nb, 12000, 12000);
	decode_fails(b2, nb, &o, "t: JPEG: damaged or truncated (libjpeg: Corrupt JPEG data: premature end of data segment)");
	assert_true(now_s() - t0 < 2.0);
	/* 190 scans */
	decode_fails(many, ns, &o, "t: JPEG: damaged or truncated (libjpeg: more than 100 scans)");
	free(p2), free(b2), free(base), free(prog), free(many), free(px);
}

/* With a target size a JPEG is decoded at the smallest of 1/8, 1/4, 1/2
 * that keeps twice the target on each side; the result is close to the
 * full decode's 2x2 block means. */
static void jpeg_dct_scaled(void **state)
{
	(void)state;
	enum { W = 256, H = 128 };
	uint8_t *px = smooth_image(W, H);
	unsigned long n;
	uint8_t *buf = make_jpeg(px, W, H, 0, 0, &n);
	tl_img_opts o;
	tl_img_opts_init(&o);
	tl_img full, half, img;
	tl_err err;
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &full, &err), TL_OK);
	o.target_w = 32, o.target_h = 32; /* 1/4 gives 64x32: 32 < 64 rows; 1/2 gives 128x64 */
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &half, &err), TL_OK);
	assert_int_equal(half.w, 128);
	assert_int_equal(half.h, 64);
	assert_int_equal(half.src_w, 256);
	assert_int_equal(half.src_h, 128);
	int worst = 0;
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 64; y++)
			for (int x = 0; x < 128; x++) {
				const uint8_t *f = full.rgb + (size_t)c * W * H + (size_t)2 * y * W + 2 * x;
				int mean = (f[0] + f[1] + f[W] + f[W + 1] + 2) / 4;
				int d = abs(half.rgb[(size_t)c * 128 * 64 + (size_t)y * 128 + x] - mean);
				worst = d > worst ? d : worst;
			}
	if (worst > 4)
		fail_msg("1/2-scale decode differs from the 2x2 means by %d", worst);
	tl_img_free(&half);
	o.target_w = 16, o.target_h = 8; /* 1/8: 32x16 keeps 2x */
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &img, &err), TL_OK);
	assert_int_equal(img.w, 32);
	assert_int_equal(img.h, 16);
	tl_img_free(&img);
	o.target_w = 200, o.target_h = 100; /* no scale keeps 400x200 */
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &img, &err), TL_OK);
	assert_int_equal(img.w, 256);
	assert_memory_equal(img.rgb, full.rgb, 3 * W * H);
	tl_img_free(&img);
	tl_img_free(&full);
	free(buf);
	free(px);
}

/* ---- EXIF orientation, CMYK ---- */

/* A TIFF-structured EXIF block (what follows "Exif\0\0" in APP1, or a
 * PNG's eXIf chunk) of byte order be, with IFD0 at offset 8 holding
 * nent entries: an unrelated tag, then 0x0112 of type typ, count cnt,
 * value v; then a next-IFD offset pointing at IFD0 itself (a loop for a
 * reader that follows it).  Returns its size (at most 64). */
static size_t make_exif(uint8_t *b, int be, unsigned typ, uint32_t cnt, unsigned v)
{
	memset(b, 0, 64);
	uint8_t *p = b;
#define P16(x) (be ? (*p++ = (uint8_t)((x) >> 8), *p++ = (uint8_t)(x)) : (*p++ = (uint8_t)(x), *p++ = (uint8_t)((x) >> 8)))
#define P32(x) (be ? (P16((x) >> 16), P16((x) & 0xFFFF)) : (P16((x) & 0xFFFF), P16((x) >> 16)))
	*p++ = be ? 'M' : 'I', *p++ = be ? 'M' : 'I';
	P16(42u);
	P32(8u);
	P16(2u);                                   /* two entries */
	P16(0x010Fu), P16(2u), P32(4u), P32(0u);   /* Make, ASCII, 4 bytes */
	P16(0x0112u), P16(typ), P32(cnt), P16(v), P16(0u);
	P32(8u);                                   /* next IFD: IFD0 again */
#undef P16
#undef P32
	return (size_t)(p - b);
}

/* Both byte orders and every value; anything malformed is 1: a bad
 * header, IFD0 before the header's end or past the data's, an entry
 * count the data cannot hold (truncated, huge), a value out of range or
 * of another type or count; the next-IFD loop is never followed. */
static void exif_orientation_parse(void **state)
{
	(void)state;
	uint8_t b[64];
	for (int be = 0; be < 2; be++) {
		for (unsigned v = 0; v <= 10; v++) {
			size_t n = make_exif(b, be, 3, 1, v);
			assert_int_equal(tl_img_exif_orientation(b, n), v >= 1 && v <= 8 ? (int)v : 1);
		}
		size_t n = make_exif(b, be, 3, 1, 6);
		assert_int_equal(tl_img_exif_orientation(b, n), 6);
		/* cut anywhere inside IFD0's entries: 1; the next-IFD offset may go */
		for (size_t k = 0; k < n - 4; k++)
			assert_int_equal(tl_img_exif_orientation(b, k), 1);
		assert_int_equal(tl_img_exif_orientation(b, n - 4), 6);
		assert_int_equal(tl_img_exif_orientation(NULL, 0), 1);
		/* LONG, or two SHORTs: not an orientation */
		n = make_exif(b, be, 4, 1, 6);
		assert_int_equal(tl_img_exif_orientation(b, n), 1);
		n = make_exif(b, be, 3, 2, 6);
		assert_int_equal(tl_img_exif_orientation(b, n), 1);
		/* header: byte order, magic */
		n = make_exif(b, be, 3, 1, 6);
		b[0] = 'X';
		assert_int_equal(tl_img_exif_orientation(b, n), 1);
		n = make_exif(b, be, 3, 1, 6);
		b[be ? 3 : 2] = 43;
		assert_int_equal(tl_img_exif_orientation(b, n), 1);
		/* IFD0 offsets: inside the header, past the end, 2^32 - 1 */
		uint32_t offs[] = {0, 4, 7, (uint32_t)n, (uint32_t)n - 1, 0xFFFFFFFFu, 0xFFFFFFF8u};
		for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
			n = make_exif(b, be, 3, 1, 6);
			uint32_t o = offs[i];
			for (int k = 0; k < 4; k++)
				b[4 + k] = (uint8_t)(be ? o >> (24 - 8 * k) : o >> (8 * k));
			assert_int_equal(tl_img_exif_orientation(b, n), 1);
		}
		/* entry counts: one more than there is, 65535 */
		unsigned cnts[] = {3, 0xFFFF};
		for (size_t i = 0; i < 2; i++) {
			n = make_exif(b, be, 3, 1, 6);
			b[8 + !be] = (uint8_t)cnts[i], b[8 + be] = (uint8_t)(cnts[i] >> 8);
			assert_int_equal(tl_img_exif_orientation(b, n), 1);
		}
	}
}

/* Where the upright picture's pixel (x, y) of orientation o is in the
 * stored w x h picture: PIL's transposes, written out one by one. */
static size_t stored_at(int o, int w, int h, int x, int y)
{
	int sx = x, sy = y;
	switch (o) {
	case 2: sx = w - 1 - x; break;                    /* FLIP_LEFT_RIGHT */
	case 3: sx = w - 1 - x, sy = h - 1 - y; break;    /* ROTATE_180 */
	case 4: sy = h - 1 - y; break;                    /* FLIP_TOP_BOTTOM */
	case 5: sx = y, sy = x; break;                    /* TRANSPOSE */
	case 6: sx = y, sy = h - 1 - x; break;            /* ROTATE_270 (clockwise) */
	case 7: sx = w - 1 - y, sy = h - 1 - x; break;    /* TRANSVERSE */
	case 8: sx = w - 1 - y, sy = x; break;            /* ROTATE_90 */
	}
	return (size_t)sy * w + sx;
}

/* jpg with an APP1 segment of body (n bytes) right after SOI; *out_n */
static uint8_t *with_app1(const uint8_t *jpg, size_t jn, const uint8_t *body, size_t n, size_t *out_n)
{
	uint8_t *b = malloc(jn + n + 4);
	memcpy(b, jpg, 2);
	b[2] = 0xFF, b[3] = 0xE1, b[4] = (uint8_t)((n + 2) >> 8), b[5] = (uint8_t)(n + 2);
	memcpy(b + 6, body, n);
	memcpy(b + 6 + n, jpg + 2, jn - 2);
	*out_n = jn + n + 4;
	return b;
}

/* Every orientation of a JPEG (Exif APP1, big- and little-endian) and a
 * PNG (eXIf before and after the pixels) turns the stored pixels as PIL
 * does; sizes swap for 5..8.  A broken Exif block decodes as stored. */
static void exif_orientation_applied(void **state)
{
	(void)state;
	enum { W = 24, H = 16 };
	uint8_t *px = smooth_image(W, H);
	unsigned long jn;
	uint8_t *jpg = make_jpeg(px, W, H, 0, 0, &jn);
	tl_img ref, img;
	decode_ok(jpg, jn, W, H, &ref);
	assert_int_equal(ref.orientation, 1);
	uint8_t *pxp = random_image(H, W, 77);
	png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, 0};
	for (int o = 1; o <= 8; o++)
		for (int v = 0; v < 4; v++) {
			uint8_t body[70];
			memcpy(body, "Exif\0\0", 6);
			size_t en = make_exif(body + 6, v & 1, 3, 1, (unsigned)o), n;
			uint8_t *buf;
			const uint8_t *want;
			if (v < 2) {
				buf = with_app1(jpg, jn, body, en + 6, &n);
				want = ref.rgb;
			} else {
				s.exif = body + 6, s.nexif = (int)en, s.exif_after = v == 3;
				buf = make_png(&s, pxp, &n);
				want = NULL;
			}
			int ow = o >= 5 ? H : W, oh = o >= 5 ? W : H;
			decode_ok(buf, n, ow, oh, &img);
			assert_int_equal(img.orientation, o);
			assert_int_equal(img.src_w, ow);
			assert_int_equal(img.src_h, oh);
			for (int c = 0; c < 3; c++)
				for (int y = 0; y < oh; y++)
					for (int x = 0; x < ow; x++) {
						size_t si = stored_at(o, W, H, x, y);
						int e = want ? want[(size_t)c * W * H + si] : pxp[si * 3 + c];
						int got = img.rgb[(size_t)c * ow * oh + (size_t)y * ow + x];
						if (got != e)
							fail_msg("orientation %d (%s): (%d,%d) channel %d: got %d, expected %d",
								 o, v < 2 ? "JPEG" : "PNG", x, y, c, got, e);
					}
			tl_img_free(&img);
			free(buf);
		}
	/* broken Exif blocks: the pixels as stored */
	uint8_t body[70];
	memcpy(body, "Exif\0\0", 6);
	size_t en = make_exif(body + 6, 1, 3, 1, 6), n;
	body[6 + 9] = 0xFF; /* 65280 + 2 entries */
	uint8_t *buf = with_app1(jpg, jn, body, en + 6, &n);
	decode_ok(buf, n, W, H, &img);
	assert_int_equal(img.orientation, 1);
	assert_memory_equal(img.rgb, ref.rgb, 3 * W * H);
	tl_img_free(&img);
	free(buf);
	buf = with_app1(jpg, jn, body, 7, &n); /* "Exif\0\0M" */
	decode_ok(buf, n, W, H, &img);
	assert_memory_equal(img.rgb, ref.rgb, 3 * W * H);
	tl_img_free(&img);
	free(buf);
	/* the first Exif segment counts (PIL's rule): 6, then 3, is 6 */
	en = make_exif(body + 6, 0, 3, 1, 3);
	uint8_t *one = with_app1(jpg, jn, body, en + 6, &n);
	size_t n2;
	en = make_exif(body + 6, 0, 3, 1, 6);
	buf = with_app1(one, n, body, en + 6, &n2);
	decode_ok(buf, n2, H, W, &img);
	assert_int_equal(img.orientation, 6);
	tl_img_free(&img);
	free(buf), free(one);
	tl_img_free(&ref);
	free(jpg), free(px), free(pxp);
}

/* A PNG's eXIf chunk is held to the 8 MiB chunk limit (libpng's own
 * eXIf reader allocated any declared length, 1 GB for a 139-byte fuzzed
 * file): a 9 MiB one is skipped (the pixels as stored), a 1 MiB one
 * applies. */
static void png_exif_size_limit(void **state)
{
	(void)state;
	enum { W = 6, H = 4 };
	uint8_t *px = random_image(H, W, 5);
	size_t big = (size_t)9 << 20, n;
	uint8_t *exif = calloc(big, 1);
	make_exif(exif, 1, 3, 1, 6);
	png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 0, NULL, 0, NULL, 0, exif, (int)big, 0};
	uint8_t *buf = make_png(&s, px, &n);
	tl_img img;
	decode_ok(buf, n, W, H, &img);
	assert_int_equal(img.orientation, 1);
	tl_img_free(&img);
	free(buf);
	s.nexif = 1 << 20;
	buf = make_png(&s, px, &n);
	decode_ok(buf, n, H, W, &img);
	assert_int_equal(img.orientation, 6);
	tl_img_free(&img);
	free(buf), free(exif), free(px);
}

/* DCT scaling is chosen for the upright picture: a 256x128 JPEG turned by
 * orientation 6 is 128x256 upright; a 16x32 target keeps twice itself at
 * 1/4 (64x32 stored), where the stored size against the unturned target
 * would have needed 1/2. */
static void exif_orientation_dct_scaled(void **state)
{
	(void)state;
	enum { W = 256, H = 128 };
	uint8_t *px = smooth_image(W, H);
	unsigned long jn;
	uint8_t *jpg = make_jpeg(px, W, H, 0, 0, &jn);
	uint8_t body[70];
	memcpy(body, "Exif\0\0", 6);
	size_t en = make_exif(body + 6, 0, 3, 1, 6), n;
	uint8_t *buf = with_app1(jpg, jn, body, en + 6, &n);
	tl_img_opts o;
	tl_img_opts_init(&o);
	o.target_w = 16, o.target_h = 32;
	tl_img img, plain;
	tl_err err;
	assert_int_equal(tl_img_decode_opts(buf, n, "t", &o, &img, &err), TL_OK);
	assert_int_equal(img.w, 32);
	assert_int_equal(img.h, 64);
	assert_int_equal(img.src_w, 128);
	assert_int_equal(img.src_h, 256);
	o.target_w = 32, o.target_h = 16; /* the same scale on the file without Exif */
	assert_int_equal(tl_img_decode_opts(jpg, jn, "t", &o, &plain, &err), TL_OK);
	assert_int_equal(plain.w, 64);
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 64; y++)
			for (int x = 0; x < 32; x++)
				assert_int_equal(img.rgb[(size_t)c * 32 * 64 + (size_t)y * 32 + x],
						 plain.rgb[(size_t)c * 64 * 32 + stored_at(6, 64, 32, x, y)]);
	tl_img_free(&img);
	tl_img_free(&plain);
	free(buf), free(jpg), free(px);
}

/* A 4-component JPEG of px ([h][w][4] stored samples) from libjpeg: kind
 * 0 CMYK with Adobe's marker (samples inverted by convention), 1 YCCK
 * (always with the marker), 2 CMYK without it (samples as ink). */
static uint8_t *make_cmyk_jpeg(const uint8_t *px, int w, int h, int kind, int quality, unsigned long *n)
{
	struct jpeg_compress_struct cj;
	struct jpeg_error_mgr je;
	cj.err = jpeg_std_error(&je);
	jpeg_create_compress(&cj);
	unsigned char *buf = NULL;
	*n = 0;
	jpeg_mem_dest(&cj, &buf, n);
	cj.image_width = (JDIMENSION)w, cj.image_height = (JDIMENSION)h;
	cj.input_components = 4, cj.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&cj);
	jpeg_set_quality(&cj, quality, TRUE);
	jpeg_set_colorspace(&cj, kind == 1 ? JCS_YCCK : JCS_CMYK);
	if (kind == 2)
		cj.write_Adobe_marker = FALSE;
	jpeg_start_compress(&cj, TRUE);
	while (cj.next_scanline < cj.image_height) {
		JSAMPROW row = (JSAMPROW)px + (size_t)cj.next_scanline * w * 4;
		jpeg_write_scanlines(&cj, &row, 1);
	}
	jpeg_finish_compress(&cj);
	jpeg_destroy_compress(&cj);
	return buf;
}

/* Known values of PIL 9.4's Image.new('CMYK').convert('RGB') (ink
 * amounts in, RGB out), through flat 16x16 blocks of a quality-100 JPEG
 * (one DC coefficient each, exact): CMYK with and without the Adobe
 * marker exactly, YCCK within 2 (its colour transform rounds). */
static void cmyk_jpeg_known_values(void **state)
{
	(void)state;
	static const uint8_t ink[4][4] = {{10, 20, 30, 40}, {200, 100, 50, 128}, {255, 255, 255, 255},
					  {0, 0, 0, 0}};
	static const uint8_t rgb[4][3] = {{207, 198, 190}, {27, 77, 102}, {0, 0, 0}, {255, 255, 255}};
	enum { W = 64, H = 16 };
	uint8_t px[W * H * 4];
	for (int kind = 0; kind < 3; kind++) {
		for (int y = 0; y < H; y++)
			for (int x = 0; x < W; x++)
				for (int c = 0; c < 4; c++)
					px[(y * W + x) * 4 + c] = (uint8_t)(kind < 2 ? 255 - ink[x / 16][c] : ink[x / 16][c]);
		unsigned long n;
		uint8_t *buf = make_cmyk_jpeg(px, W, H, kind, 100, &n);
		tl_img img;
		decode_ok(buf, n, W, H, &img);
		for (int b = 0; b < 4; b++)
			for (int c = 0; c < 3; c++) {
				int got = img.rgb[c * W * H + 8 * W + b * 16 + 8], want = rgb[b][c];
				if (abs(got - want) > (kind == 1 ? 2 : 0))
					fail_msg("%s: block %d channel %d: got %d, expected %d",
						 kind == 0 ? "CMYK" : kind == 1 ? "YCCK" : "CMYK without Adobe", b, c, got,
						 want);
			}
		tl_img_free(&img);
		free(buf);
	}
}

/* One image per file: whitespace may follow the raster, nothing else
 * (netpbm's multi-image files included). */
static void ppm_trailing_bytes(void **state)
{
	(void)state;
	char b[256];
	const uint8_t px[6] = {1, 2, 3, 4, 5, 6};
	int hn = sprintf(b, "P6 2 1 255\n");
	memcpy(b + hn, px, 6);
	tl_img img;
	tl_img_opts o;
	tl_img_opts_init(&o);
	memcpy(b + hn + 6, "\n \n", 3);
	decode_ok((uint8_t *)b, (size_t)hn + 9, 2, 1, &img);
	assert_int_equal(img.rgb[1], 4);
	tl_img_free(&img);
	memcpy(b + hn + 6, "junk", 4);
	decode_fails((uint8_t *)b, (size_t)hn + 10, &o,
		     "t: PPM: 4 bytes after the image (expected the file to end: one image per file");
	/* two images in one file */
	memcpy(b + hn + 6, b, (size_t)hn + 6);
	decode_fails((uint8_t *)b, (size_t)2 * (hn + 6), &o, "t: PPM: 17 bytes after the image");
	const char *plain = "P2 2 1 255\n10 20\n\n";
	decode_ok((const uint8_t *)plain, strlen(plain), 2, 1, &img);
	tl_img_free(&img);
	plain = "P2 2 1 255\n10 20 30\n";
	decode_fails((const uint8_t *)plain, strlen(plain), &o, "t: PPM: 4 bytes after the image");
}

/* A FIFO with no writer is refused at once (it hung in open), and so is a
 * directory; alarm() turns a hang into a failure. */
static void load_refuses_fifo(void **state)
{
	(void)state;
	char dir[64], path[96];
	assert_int_equal(tl_test_mkdir(dir, sizeof dir, "imgio"), 0);
	snprintf(path, sizeof path, "%s/f.png", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	tl_img img;
	tl_err err;
	alarm(20);
	assert_int_equal(tl_img_load(path, &img, &err), TL_EIO);
	alarm(0);
	assert_non_null(strstr(err.msg, "f.png: not a regular file (it is a FIFO)"));
	assert_int_equal(tl_img_load(dir, &img, &err), TL_EIO);
	assert_non_null(strstr(err.msg, "not a regular file (it is a directory)"));
	snprintf(path, sizeof path, "%s/none.png", dir);
	assert_int_equal(tl_img_load(path, &img, &err), TL_EIO);
	assert_non_null(strstr(err.msg, "none.png: cannot open: No such file"));
	assert_int_equal(tl_test_rmdir(dir), 0);
}

static void opts_from_env(void **state)
{
	(void)state;
	tl_img_opts o;
	tl_err err;
	unsetenv("TL_MAX_PIXELS");
	assert_int_equal(tl_img_opts_env(&o, &err), TL_OK);
	assert_int_equal(o.max_pixels, TL_IMG_MAX_PIXELS);
	setenv("TL_MAX_PIXELS", "1000", 1);
	assert_int_equal(tl_img_opts_env(&o, &err), TL_OK);
	assert_int_equal(o.max_pixels, 1000);
	setenv("TL_MAX_PIXELS", "1073741824", 1);
	assert_int_equal(tl_img_opts_env(&o, &err), TL_OK);
	assert_int_equal(o.max_pixels, TL_IMG_MAX_PIXELS_HI);
	const char *bad[] = {"0", "1073741825", "12x", "", "-5", "0x10", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("TL_MAX_PIXELS", bad[i], 1);
		assert_int_equal(tl_img_opts_env(&o, &err), TL_EUSAGE);
		assert_non_null(strstr(err.msg, "TL_MAX_PIXELS: expected a pixel count in 1..1073741824"));
	}
	unsetenv("TL_MAX_PIXELS");
}

/* test_image decode FILE OUT.ppm [TW TH]: see the top of this file. */
static int decode_main(int argc, char **argv)
{
	tl_img_opts o;
	tl_err err;
	tl_img img;
	if (tl_img_opts_env(&o, &err) != TL_OK) {
		fprintf(stderr, "test_image: %s\n", err.msg);
		return 2;
	}
	if (argc == 6)
		o.target_w = atoi(argv[4]), o.target_h = atoi(argv[5]);
	if (tl_img_load_opts(argv[2], &o, &img, &err) != TL_OK) {
		fprintf(stderr, "test_image: %s\n", err.msg);
		return 1;
	}
	FILE *f = fopen(argv[3], "wb");
	size_t np = (size_t)img.w * img.h;
	if (!f)
		return 1;
	fprintf(f, "P6\n%d %d\n255\n", img.w, img.h);
	for (size_t i = 0; i < np; i++)
		for (int c = 0; c < 3; c++)
			fputc(img.rgb[c * np + i], f);
	int bad = fclose(f) != 0;
	printf("%d %d %d %d\n", img.w, img.h, img.src_w, img.src_h);
	tl_img_free(&img);
	return bad;
}

/* test_image cmykjpeg OUT.jpg W H KIND: see the top of this file. */
static int cmykjpeg_main(char **argv)
{
	int w = atoi(argv[3]), h = atoi(argv[4]);
	int kind = strcmp(argv[5], "adobe") == 0 ? 0 : strcmp(argv[5], "ycck") == 0 ? 1
						 : strcmp(argv[5], "plain") == 0 ? 2 : -1;
	if (w < 2 || h < 2 || w > 4096 || h > 4096 || kind < 0) {
		fprintf(stderr, "test_image: cmykjpeg OUT.jpg W H adobe|ycck|plain\n");
		return 2;
	}
	uint8_t *px = malloc((size_t)w * h * 4);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = px + ((size_t)y * w + x) * 4;
			p[0] = (uint8_t)(x * 255 / (w - 1));
			p[1] = (uint8_t)(y * 255 / (h - 1));
			p[2] = (uint8_t)(128 + 100 * sin(x * 0.07 + y * 0.05));
			p[3] = (uint8_t)(128 + 120 * cos(x * 0.03 - y * 0.04));
		}
	unsigned long n;
	uint8_t *buf = make_cmyk_jpeg(px, w, h, kind, 90, &n);
	FILE *f = fopen(argv[2], "wb");
	int bad = !f || fwrite(buf, 1, n, f) != n;
	if (f)
		bad |= fclose(f) != 0;
	free(buf), free(px);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "decode") == 0)
		return decode_main(argc, argv);
	if (argc == 6 && strcmp(argv[1], "cmykjpeg") == 0)
		return cmykjpeg_main(argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpu_cap_reaches_f16), /* first: it sets TL_CPU before any detection */
		cmocka_unit_test(f16_known_values),
		cmocka_unit_test(f16_roundtrip_exhaustive),
		cmocka_unit_test(f16_fast_matches_reference),
		cmocka_unit_test(resize_identity_is_exact),
		cmocka_unit_test(resize_area_halves_by_block_mean),
		cmocka_unit_test(resize_known_values),
		cmocka_unit_test(normalize_caffe_is_bgr_minus_mean),
		cmocka_unit_test(denormalize_roundtrip_exact),
		cmocka_unit_test(names_parse),
		cmocka_unit_test(png_16bit_is_value_over_257),
		cmocka_unit_test(png_gamma_chunks_ignored),
		cmocka_unit_test(png_palette_alpha_lowbit),
		cmocka_unit_test(png_interlaced),
		cmocka_unit_test(limits_png_ppm),
		cmocka_unit_test(limits_jpeg),
		cmocka_unit_test(jpeg_dct_scaled),
		cmocka_unit_test(exif_orientation_parse),
		cmocka_unit_test(exif_orientation_applied),
		cmocka_unit_test(exif_orientation_dct_scaled),
		cmocka_unit_test(png_exif_size_limit),
		cmocka_unit_test(cmyk_jpeg_known_values),
		cmocka_unit_test(ppm_trailing_bytes),
		cmocka_unit_test(load_refuses_fifo),
		cmocka_unit_test(opts_from_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
