/* winograd.h - 3x3 stride-1 convolution as Winograd F(2x2, 3x3): 16
 * GEMMs on transformed 4x4 input tiles instead of one on 9x-expanded
 * patches, 2.25x fewer multiplications.  Forward (and so the input
 * gradient, a transposed convolution) and the weight gradient (the exact
 * gradient of the same transform).  Used by the fast backend where
 * tl_wino_applies() says so; $TL_WINOGRAD=0 turns it off.
 *
 * Each thread takes a chunk of images (or of 16-tile groups of one big
 * image) through input transform, the 16 products and output transform
 * while the transformed tiles are in its cache; weights whose transform is
 * over 4 MiB (VGG16 block4) go through whole-batch stages instead, so the
 * transformed weights stream from memory once, not once per chunk.  The
 * transforms run on sixteen tiles per AVX-512 step (scalar otherwise; the
 * scalar ones are what other CPUs and the tests at lower levels use). */
#ifndef TL_CPU_WINOGRAD_H
#define TL_CPU_WINOGRAD_H

#include "cpu/ops.h"

/* 3x3 kernel, stride 1, padding <= 2, AVX-512, and enough channels, tiles
 * and image to pay off (the limits were measured on VGG16 and SqueezeNet). */
int tl_wino_applies(const tl_conv_shape *s);

/* Winograd calls so far (forward and weight gradient), for tests that
 * must know the path ran. */
unsigned long tl_wino_runs(void);

/* y (acc: +=) conv(x, w) + b, relu.  x [n][c][h][w], w [o][c][3][3]. */
void tl_wino_fwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		 const float *b, int relu, float *y, int acc);

/* dw = d loss / d w given dy [n][o][oh][ow] (already relu-masked). */
void tl_wino_dw(tl_backend *be, const tl_conv_shape *s, const float *x, const float *dy,
		float *dw);

#endif
