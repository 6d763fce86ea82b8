/* f16.h - IEEE 754 binary16 <-> binary32, round-to-nearest-even.
 * A scalar reference and an F16C fast path chosen at run time; both give
 * bit-identical results (tests/test_image.c checks every f16 value). */
#ifndef TL_F16_H
#define TL_F16_H

#include <stddef.h>
#include <stdint.h>

uint16_t tl_f32_to_f16(float f);
float tl_f16_to_f32(uint16_t h);

/* Bulk conversions: dst[i] = convert(src[i]) for i in [0,n). */
void tl_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
void tl_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* The scalar loops, exposed so tests can compare them with the fast path. */
void tl_f32_to_f16_n_ref(uint16_t *dst, const float *src, size_t n);
void tl_f16_to_f32_n_ref(float *dst, const uint16_t *src, size_t n);

#endif
