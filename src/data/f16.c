/* f16.c - half precision conversion (see f16.h). */
#include "data/f16.h"

#include <string.h>

#include "cpu/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TL_HAVE_X86 1
#endif

uint16_t tl_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t ax = x & 0x7fffffffu;
	if (ax >= 0x7f800000u) /* inf stays inf; NaN stays a quiet NaN */
		return (uint16_t)(sign | 0x7c00u |
				  (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
	if (ax >= 0x477ff000u) /* >= 65520 rounds past the largest half */
		return (uint16_t)(sign | 0x7c00u);
	if (ax < 0x38800000u) { /* below 2^-14: half subnormal or zero */
		if (ax < 0x33000000u) /* <= 2^-25 ties to even zero */
			return (uint16_t)sign;
		uint32_t m = (ax & 0x7fffffu) | 0x800000u;
		int shift = 126 - (int)(ax >> 23);
		uint32_t h = m >> shift;
		uint32_t rem = m & ((1u << shift) - 1);
		uint32_t half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1u)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = (ax - 0x38000000u) >> 13; /* rebias 127 -> 15 */
	uint32_t rem = ax & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
		h++;
	return (uint16_t)(sign | h);
}

float tl_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	uint32_t x;
	if (e == 0) {
		if (m == 0) {
			x = sign;
		} else { /* subnormal: renormalize */
			e = 113;
			while (!(m & 0x400u)) {
				m <<= 1;
				e--;
			}
			x = sign | (e << 23) | ((m & 0x3ffu) << 13);
		}
	} else if (e == 31) {
		x = sign | 0x7f800000u | (m << 13);
	} else {
		x = sign | ((e + 112) << 23) | (m << 13);
	}
	float f;
	memcpy(&f, &x, 4);
	return f;
}

void tl_f32_to_f16_n_ref(uint16_t *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = tl_f32_to_f16(src[i]);
}

void tl_f16_to_f32_n_ref(float *dst, const uint16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = tl_f16_to_f32(src[i]);
}

#ifdef TL_HAVE_X86
/* 8 lanes at a time with F16C, scalar tail. */
__attribute__((target("avx,f16c"))) static void
f32_to_f16_f16c(uint16_t *dst, const float *src, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(src + i);
		__m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
		_mm_storeu_si128((__m128i *)(dst + i), h);
	}
	tl_f32_to_f16_n_ref(dst + i, src + i, n - i);
}

__attribute__((target("avx,f16c"))) static void
f16_to_f32_f16c(float *dst, const uint16_t *src, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(src + i));
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
	}
	tl_f16_to_f32_n_ref(dst + i, src + i, n - i);
}
#endif

void tl_f32_to_f16_n(uint16_t *dst, const float *src, size_t n)
{
#ifdef TL_HAVE_X86
	if (tl_cpu_f16c()) {
		f32_to_f16_f16c(dst, src, n);
		return;
	}
#endif
	tl_f32_to_f16_n_ref(dst, src, n);
}

void tl_f16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
#ifdef TL_HAVE_X86
	if (tl_cpu_f16c()) {
		f16_to_f32_f16c(dst, src, n);
		return;
	}
#endif
	tl_f16_to_f32_n_ref(dst, src, n);
}
