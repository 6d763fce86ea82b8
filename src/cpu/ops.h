/* ops.h - the CPU backends' kernel table: the ops on host pointers that
 * the scalar reference (ref.c) and the SIMD fast path (fast.c) implement.
 * cpu/host.c wraps a table as a tl_backend (backend.h), where a buffer is
 * host memory and nothing is copied; tests call the tables directly.
 *
 * All tensors are float32, batch-major NCHW.  Parameter gradients (dw, db)
 * are overwritten; input gradients (dx) are overwritten when acc_dx is 0
 * and added to when it is 1.  A NULL gradient pointer means "not needed". */
#ifndef TL_CPU_OPS_H
#define TL_CPU_OPS_H

#include "backend.h"
#include "pool.h"

typedef struct tl_cpu_ops tl_cpu_ops;
struct tl_cpu_ops {
	const char *name;
	tl_pool *pool; /* threads for the fast backend; NULL = single thread */

	/* y = conv(x, w) + b, then max(0, .) when relu.  b may be NULL. */
	void (*conv_fwd)(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
			 const float *b, int relu, float *y);
	/* Given y (the forward output, for the relu mask) and dy: masks dy in
	 * place when relu, then dx (+)= conv_transpose(dy, w), dw = dy (*) x,
	 * db = sum(dy). */
	void (*conv_bwd)(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
			 const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
			 float *db);
	/* argmax[i] = index within the input plane of output i's maximum;
	 * argmax NULL: y alone (no backward follows). */
	void (*maxpool_fwd)(tl_cpu_ops *be, const tl_pool_shape *s, const float *x, float *y,
			    int32_t *argmax);
	void (*maxpool_bwd)(tl_cpu_ops *be, const tl_pool_shape *s, const float *dy,
			    const int32_t *argmax, float *dx, int acc_dx);
	/* y[n][out] = x[n][in] . w[out][in]^T + b, then relu. */
	void (*dense_fwd)(tl_cpu_ops *be, int n, int in, int out, const float *x, const float *w,
			  const float *b, int relu, float *y);
	void (*dense_bwd)(tl_cpu_ops *be, int n, int in, int out, const float *x, const float *w,
			  const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
			  float *db);

	/* The ops of GoogLeNet, AlexNet and MobileNetV2, as in backend.h. */
	/* Depthwise conv: s->o == s->c, w [c][kh][kw], b [c] or NULL. */
	void (*dwconv_fwd)(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
			   const float *b, int relu, float *y);
	void (*dwconv_bwd)(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
			   const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
			   float *db);
	/* Batch norm of x [n][c][hw] then act (TL_ACT_*); gamma NULL = 1, beta
	 * NULL = 0; save [2c] = mean, invstd. */
	void (*bn_fwd)(tl_cpu_ops *be, int n, int c, int hw, float eps, float mom, int training,
		       const float *x, const float *gamma, const float *beta, float *rmean,
		       float *rvar, float *save, int act, float *y);
	void (*bn_bwd)(tl_cpu_ops *be, int n, int c, int hw, int training, const float *x,
		       const float *gamma, const float *save, const float *y, int act, float *dy,
		       float *dx, int acc_dx, float *dgamma, float *dbeta);
	/* Local response norm across channels; scale may be NULL in lrn_fwd
	 * (not kept). */
	void (*lrn_fwd)(tl_cpu_ops *be, int n, int c, int hw, int size, float alpha, float beta,
			float kk, const float *x, float *scale, float *y);
	void (*lrn_bwd)(tl_cpu_ops *be, int n, int c, int hw, int size, float alpha, float beta,
			const float *x, const float *y, const float *scale, const float *dy,
			float *dx, int acc_dx);
	/* Adaptive average pool (PyTorch's AdaptiveAvgPool2d). */
	void (*avgpool_fwd)(tl_cpu_ops *be, const tl_pool_shape *s, const float *x, float *y);
	void (*avgpool_bwd)(tl_cpu_ops *be, const tl_pool_shape *s, const float *dy, float *dx,
			    int acc_dx);
};

/* The scalar reference backend: direct loops, obviously correct. */
void tl_cpu_ref_init(tl_cpu_ops *be);
/* The fast CPU backend: packed SGEMM with AVX-512 / AVX2+FMA micro-kernels
 * chosen from cpuid (TL_CPU=avx2|avx512|scalar overrides), threads from pool. */
void tl_cpu_fast_init(tl_cpu_ops *be, tl_pool *pool);

/* Global average pool and channel concat are memory moves; one version. */
void tl_gap_fwd(int n, int c, int hw, const float *x, float *y);
void tl_gap_bwd(int n, int c, int hw, const float *dy, float *dx, int acc_dx);

/* Softmax cross-entropy, mean over the batch.  logits [n][k], labels [n].
 * dlogits (may be NULL) = (softmax - onehot) / n.  *correct counts argmax hits. */
double tl_softmax_xent(int n, int k, const float *logits, const int32_t *labels, float *dlogits,
		       int *correct);

#endif
