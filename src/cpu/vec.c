/* vec.c - see vec.h.  Each loop is written once as a macro over a vector
 * type, instantiated for AVX-512 (16 lanes) and AVX2 (8 lanes) under target
 * attributes; the tail and other CPUs take the scalar loop. */
#include "cpu/vec.h"

#include "cpu/gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void bias_act_scalar(float *dst, const float *src, size_t n, float bias, int relu)
{
	for (size_t i = 0; i < n; i++) {
		float v = src[i] + bias;
		dst[i] = relu && v < 0.0f ? 0.0f : v; /* NaN stays NaN */
	}
}

static void add_scalar(float *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

static double mask_sum_scalar(float *dy, const float *y, size_t n, int mask)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		if (mask && y[i] <= 0.0f)
			dy[i] = 0.0f;
		s += dy[i];
	}
	return s;
}

#if defined(__x86_64__)
/* SUF: name suffix, T: target, V: vector type, W: lanes; the rest are the
 * intrinsics.  Each returns how far it got; the caller does the tail. */
#define VEC_FUNCS(SUF, T, V, W, LD, ST, ADD, MAX, SET1, ZERO, CMPGT_MASKZ, RED)                 \
	__attribute__((target(T))) static size_t bias_act_##SUF(float *dst, const float *src,   \
								size_t n, float bias, int relu) \
	{                                                                                        \
		size_t i = 0;                                                                    \
		V b = SET1(bias), z = ZERO();                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V v = ADD(LD(src + i), b);                                               \
			ST(dst + i, relu ? MAX(z, v) : v); /* NaN in v wins */                                       \
		}                                                                                \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t add_##SUF(float *dst, const float *src, size_t n) \
	{                                                                                        \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W)                                                       \
			ST(dst + i, ADD(LD(dst + i), LD(src + i)));                              \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t mask_sum_##SUF(float *dy, const float *y,      \
								size_t n, int mask, double *s)  \
	{                                                                                        \
		size_t i = 0;                                                                    \
		V acc = ZERO(), z = ZERO();                                                      \
		for (; i + W <= n; i += W) {                                                     \
			V d = LD(dy + i);                                                        \
			if (mask) {                                                              \
				d = CMPGT_MASKZ(LD(y + i), z, d);                                \
				ST(dy + i, d);                                                   \
			}                                                                        \
			acc = ADD(acc, d);                                                       \
		}                                                                                \
		*s = RED(acc);                                                                   \
		return i;                                                                        \
	}

__attribute__((target("avx512f"))) static inline __m512 keep_gt512(__m512 y, __m512 z, __m512 d)
{
	return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, z, _CMP_NLE_UQ), d);
}
__attribute__((target("avx2"))) static inline __m256 keep_gt256(__m256 y, __m256 z, __m256 d)
{
	return _mm256_and_ps(_mm256_cmp_ps(y, z, _CMP_NLE_UQ), d);
}

VEC_FUNCS(avx512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps,
	  _mm512_max_ps, _mm512_set1_ps, _mm512_setzero_ps, keep_gt512, red512)
VEC_FUNCS(avx2, "avx2", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps,
	  _mm256_max_ps, _mm256_set1_ps, _mm256_setzero_ps, keep_gt256, red256)
#endif

void tl_vec_bias_act(float *dst, const float *src, size_t n, float bias, int relu)
{
	size_t i = 0;
#if defined(__x86_64__)
	tl_cpu_level l = tl_cpu_detect();
	if (l == TL_CPU_AVX512)
		i = bias_act_avx512(dst, src, n, bias, relu);
	else if (l == TL_CPU_AVX2)
		i = bias_act_avx2(dst, src, n, bias, relu);
#endif
	bias_act_scalar(dst + i, src + i, n - i, bias, relu);
}

void tl_vec_add(float *dst, const float *src, size_t n)
{
	size_t i = 0;
#if defined(__x86_64__)
	tl_cpu_level l = tl_cpu_detect();
	if (l == TL_CPU_AVX512)
		i = add_avx512(dst, src, n);
	else if (l == TL_CPU_AVX2)
		i = add_avx2(dst, src, n);
#endif
	add_scalar(dst + i, src + i, n - i);
}

static double mask_sum(float *dy, const float *y, size_t n, int mask)
{
	size_t i = 0;
	double s = 0;
#if defined(__x86_64__)
	tl_cpu_level l = tl_cpu_detect();
	if (l == TL_CPU_AVX512)
		i = mask_sum_avx512(dy, y, n, mask, &s);
	else if (l == TL_CPU_AVX2)
		i = mask_sum_avx2(dy, y, n, mask, &s);
#endif
	return s + mask_sum_scalar(dy + i, y + i, n - i, mask);
}

double tl_vec_relu_mask_sum(float *dy, const float *y, size_t n)
{
	return mask_sum(dy, y, n, 1);
}

double tl_vec_sum(const float *x, size_t n)
{
	return mask_sum((float *)x, NULL, n, 0);
}
