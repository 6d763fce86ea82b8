/* winograd.h - 3x3 stride-1 convolution as Winograd F(2x2, 3x3): 16
 * GEMMs on transformed 4x4 input tiles instead of one on 9x-expanded
 * patches, 2.25x fewer multiplications.  Forward (and so the input
 * gradient, a transposed convolution) and the weight gradient (the exact
 * gradient of the same transform).  Used by the fast backend. */
#ifndef TL_CPU_WINOGRAD_H
#define TL_CPU_WINOGRAD_H

#include "backend.h"

/* 3x3 kernel, stride 1, padding <= 2, and enough channels to pay off. */
int tl_wino_applies(const tl_conv_shape *s);

/* y (acc: +=) conv(x, w) + b, relu.  x [n][c][h][w], w [o][c][3][3]. */
void tl_wino_fwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		 const float *b, int relu, float *y, int acc);

/* dw = d loss / d w given dy [n][o][oh][ow] (already relu-masked). */
void tl_wino_dw(tl_backend *be, const tl_conv_shape *s, const float *x, const float *dy,
		float *dw);

#endif
