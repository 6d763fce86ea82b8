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

typedef struct tl_backend tl_backend;
struct tl_backend {
	const char *name;
	tl_pool *pool; /* threads for the fast backend; NULL = single thread */

	/* y = conv(x, w) + b, then max(0, .) when relu.  b may be NULL. */
	void (*conv_fwd)(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
			 const float *b, int relu, float *y);
	/* Given y (the forward output, for the relu mask) and dy: masks dy in
	 * place when relu, then dx (+)= conv_transpose(dy, w), dw = dy (*) x,
	 * db = sum(dy). */
	void (*conv_bwd)(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
			 const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
			 float *db);
	/* argmax[i] = index within the input plane of output i's maximum. */
	void (*maxpool_fwd)(tl_backend *be, const tl_pool_shape *s, const float *x, float *y,
			    int32_t *argmax);
	void (*maxpool_bwd)(tl_backend *be, const tl_pool_shape *s, const float *dy,
			    const int32_t *argmax, float *dx, int acc_dx);
	/* y[n][out] = x[n][in] . w[out][in]^T + b, then relu. */
	void (*dense_fwd)(tl_backend *be, int n, int in, int out, const float *x, const float *w,
			  const float *b, int relu, float *y);
	void (*dense_bwd)(tl_backend *be, int n, int in, int out, const float *x, const float *w,
			  const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
			  float *db);
};

/* The scalar reference backend: direct loops, obviously correct. */
void tl_backend_ref_init(tl_backend *be);
/* The fast CPU backend: packed SGEMM with AVX-512 / AVX2+FMA micro-kernels
 * chosen from cpuid (TL_CPU=avx2|avx512|scalar overrides), threads from pool. */
void tl_backend_fast_init(tl_backend *be, tl_pool *pool);

/* Global average pool and channel concat are memory moves; one version. */
void tl_gap_fwd(int n, int c, int hw, const float *x, float *y);
void tl_gap_bwd(int n, int c, int hw, const float *dy, float *dx, int acc_dx);

/* Softmax cross-entropy, mean over the batch.  logits [n][k], labels [n].
 * dlogits (may be NULL) = (softmax - onehot) / n.  *correct counts argmax hits. */
double tl_softmax_xent(int n, int k, const float *logits, const int32_t *labels, float *dlogits,
		       int *correct);

#endif
