/* test_image.c - f16 conversion (and the $TL_CPU cap reaching it), resize,
 * normalization, channel order. */
#include "tl_test.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "data/f16.h"
#include "data/image.h"

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

int main(void)
{
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
