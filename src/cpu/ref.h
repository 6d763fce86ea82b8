/* ref.h - scalar reference ops in float (the reference backend) and
 * double (for finite-difference gradient checks). */
#ifndef TL_CPU_REF_H
#define TL_CPU_REF_H

#include "cpu/ops.h"

#define TL_REF_DECLARE(T, SFX)                                                                 \
	void tl_ref_conv_fwd_##SFX(const tl_conv_shape *s, const T *x, const T *w, const T *b,   \
				   int relu, T *y);                                              \
	void tl_ref_conv_bwd_##SFX(const tl_conv_shape *s, const T *x, const T *w, const T *y,   \
				   int relu, T *dy, T *dx, int acc_dx, T *dw, T *db);            \
	void tl_ref_maxpool_fwd_##SFX(const tl_pool_shape *s, const T *x, T *y, int32_t *argmax); \
	void tl_ref_maxpool_bwd_##SFX(const tl_pool_shape *s, const T *dy, const int32_t *argmax, \
				      T *dx, int acc_dx);                                        \
	void tl_ref_dense_fwd_##SFX(int n, int in, int out, const T *x, const T *w, const T *b,  \
				    int relu, T *y);                                             \
	void tl_ref_dense_bwd_##SFX(int n, int in, int out, const T *x, const T *w, const T *y,  \
				    int relu, T *dy, T *dx, int acc_dx, T *dw, T *db);           \
	void tl_ref_gap_fwd_##SFX(int n, int c, int hw, const T *x, T *y);                       \
	void tl_ref_gap_bwd_##SFX(int n, int c, int hw, const T *dy, T *dx, int acc_dx);         \
	double tl_ref_softmax_xent_##SFX(int n, int k, const T *logits, const int32_t *labels,   \
					 T *dlogits, int *correct);                              \
	void tl_ref_dwconv_fwd_##SFX(const tl_conv_shape *s, const T *x, const T *w, const T *b, \
				     int relu, T *y);                                            \
	void tl_ref_dwconv_bwd_##SFX(const tl_conv_shape *s, const T *x, const T *w, const T *y, \
				     int relu, T *dy, T *dx, int acc_dx, T *dw, T *db);          \
	void tl_ref_bn_fwd_##SFX(int n, int c, int hw, T eps, T mom, int training, const T *x,   \
				 const T *gamma, const T *beta, T *rmean, T *rvar, T *save, int act, \
				 T *y);                                                          \
	void tl_ref_bn_bwd_##SFX(int n, int c, int hw, int training, const T *x, const T *gamma, \
				 const T *save, const T *y, int act, T *dy, T *dx, int acc_dx,   \
				 T *dgamma, T *dbeta);                                           \
	void tl_ref_lrn_fwd_##SFX(int n, int c, int hw, int size, T alpha, T beta, T kk,         \
				  const T *x, T *scale, T *y);                                   \
	void tl_ref_lrn_bwd_##SFX(int n, int c, int hw, int size, T alpha, T beta, const T *x,   \
				  const T *y, const T *scale, const T *dy, T *dx, int acc_dx);   \
	void tl_ref_avgpool_fwd_##SFX(const tl_pool_shape *s, const T *x, T *y);                 \
	void tl_ref_avgpool_bwd_##SFX(const tl_pool_shape *s, const T *dy, T *dx, int acc_dx);

TL_REF_DECLARE(float, f32)
TL_REF_DECLARE(double, f64)

#endif
