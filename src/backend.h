/* backend.h - the op interface every compute backend implements.
 *
 * All tensors are float32, batch-major NCHW, in host memory for the CPU
 * backends.  Parameter gradients (dw, db) are overwritten; input
 * gradients (dx) are overwritten when acc_dx is 0 and added to when it is
 * 1 (a tensor read by two layers sums both contributions).  A NULL
 * gradient pointer means "not needed" and costs nothing. */
#ifndef TL_BACKEND_H
#define TL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

/* Convolution geometry; per-sample sizes, n is the batch. */
typedef struct {
	int n, c, h, w;   /* input  [n][c][h][w] */
	int o, kh, kw;    /* weight [o][c][kh][kw], bias [o] */
	int sh, sw;       /* stride */
	int ph, pw;       /* zero padding */
	int oh, ow;       /* output [n][o][oh][ow] */
} tl_conv_shape;

/* Pooling geometry: input [n][c][h][w] -> output [n][c][oh][ow]. */
typedef struct {
	int n, c, h, w;
	int k, s;
	int oh, ow;
} tl_pool_shape;

/* Output size of a conv along one axis. */
static inline int tl_conv_out(int in, int k, int s, int p)
{
	if (in + 2 * p < k)
		return 0;
	return (in + 2 * p - k) / s + 1;
}

/* Output size of a max pool (no padding); ceil mode keeps a last partial
 * window only when it starts inside the input (as PyTorch does). */
static inline int tl_pool_out(int in, int k, int s, int ceil_mode)
{
	if (in < k)
		return 0;
	int o = ceil_mode ? (in - k + s - 1) / s + 1 : (in - k) / s + 1;
	if (ceil_mode && (o - 1) * s >= in)
		o--;
	return o;
}

#endif
