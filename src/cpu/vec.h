/* vec.h - the fast backend's elementwise loops over float runs: AVX-512 or
 * AVX2 with a scalar tail, picked by tl_cpu_detect(); the scalar versions
 * are the reference the tests hold them to. */
#ifndef TL_CPU_VEC_H
#define TL_CPU_VEC_H

#include <stddef.h>

/* dst[i] = src[i] + bias, then max(0, .) when relu. */
void tl_vec_bias_act(float *dst, const float *src, size_t n, float bias, int relu);
/* dst[i] += src[i]. */
void tl_vec_add(float *dst, const float *src, size_t n);
/* dy[i] = 0 where y[i] <= 0 (the ReLU gradient); returns the sum of the
 * masked dy (float lanes, summed in double at the end). */
double tl_vec_relu_mask_sum(float *dy, const float *y, size_t n);
/* The sum of x (float lanes, summed in double at the end). */
double tl_vec_sum(const float *x, size_t n);

#if defined(__x86_64__)
#include <immintrin.h>

/* The sum of a vector's lanes, in double (the fast kernels' reductions). */
__attribute__((target("avx512f"))) static inline double red512(__m512 v)
{
	float t[16];
	double s = 0;
	_mm512_storeu_ps(t, v);
	for (int i = 0; i < 16; i++)
		s += t[i];
	return s;
}
__attribute__((target("avx2"))) static inline double red256(__m256 v)
{
	float t[8];
	double s = 0;
	_mm256_storeu_ps(t, v);
	for (int i = 0; i < 8; i++)
		s += t[i];
	return s;
}
#endif

#endif
