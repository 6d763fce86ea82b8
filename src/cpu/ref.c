/* ref.c - instantiate the reference ops and wrap the float ones as the
 * reference backend. */
#include "cpu/ref.h"

#include <math.h>

#define T float
#define SFX f32
#include "cpu/ref_impl.h"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "cpu/ref_impl.h"
#undef T
#undef SFX

static void conv_fwd(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
		     const float *b, int relu, float *y)
{
	tl_ref_conv_fwd_f32(s, x, w, b, relu, y);
}
static void conv_bwd(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
		     const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw, float *db)
{
	tl_ref_conv_bwd_f32(s, x, w, y, relu, dy, dx, acc_dx, dw, db);
}
static void maxpool_fwd(tl_cpu_ops *be, const tl_pool_shape *s, const float *x, float *y,
			int32_t *argmax)
{
	tl_ref_maxpool_fwd_f32(s, x, y, argmax);
}
static void maxpool_bwd(tl_cpu_ops *be, const tl_pool_shape *s, const float *dy,
			const int32_t *argmax, float *dx, int acc_dx)
{
	tl_ref_maxpool_bwd_f32(s, dy, argmax, dx, acc_dx);
}
static void dense_fwd(tl_cpu_ops *be, int n, int in, int out, const float *x, const float *w,
		      const float *b, int relu, float *y)
{
	tl_ref_dense_fwd_f32(n, in, out, x, w, b, relu, y);
}
static void dense_bwd(tl_cpu_ops *be, int n, int in, int out, const float *x, const float *w,
		      const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
		      float *db)
{
	tl_ref_dense_bwd_f32(n, in, out, x, w, y, relu, dy, dx, acc_dx, dw, db);
}

static void dwconv_fwd(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
		       const float *b, int relu, float *y)
{
	tl_ref_dwconv_fwd_f32(s, x, w, b, relu, y);
}
static void dwconv_bwd(tl_cpu_ops *be, const tl_conv_shape *s, const float *x, const float *w,
		       const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
		       float *db)
{
	tl_ref_dwconv_bwd_f32(s, x, w, y, relu, dy, dx, acc_dx, dw, db);
}
static void bn_fwd(tl_cpu_ops *be, int n, int c, int hw, float eps, float mom, int training,
		   const float *x, const float *gamma, const float *beta, float *rmean, float *rvar,
		   float *save, int act, float *y)
{
	tl_ref_bn_fwd_f32(n, c, hw, eps, mom, training, x, gamma, beta, rmean, rvar, save, act, y);
}
static void bn_bwd(tl_cpu_ops *be, int n, int c, int hw, int training, const float *x,
		   const float *gamma, const float *save, const float *y, int act, float *dy,
		   float *dx, int acc_dx, float *dgamma, float *dbeta)
{
	tl_ref_bn_bwd_f32(n, c, hw, training, x, gamma, save, y, act, dy, dx, acc_dx, dgamma, dbeta);
}
static void lrn_fwd(tl_cpu_ops *be, int n, int c, int hw, int size, float alpha, float beta,
		    float kk, const float *x, float *scale, float *y)
{
	tl_ref_lrn_fwd_f32(n, c, hw, size, alpha, beta, kk, x, scale, y);
}
static void lrn_bwd(tl_cpu_ops *be, int n, int c, int hw, int size, float alpha, float beta,
		    const float *x, const float *y, const float *scale, const float *dy, float *dx,
		    int acc_dx)
{
	tl_ref_lrn_bwd_f32(n, c, hw, size, alpha, beta, x, y, scale, dy, dx, acc_dx);
}
static void avgpool_fwd(tl_cpu_ops *be, const tl_pool_shape *s, const float *x, float *y)
{
	tl_ref_avgpool_fwd_f32(s, x, y);
}
static void avgpool_bwd(tl_cpu_ops *be, const tl_pool_shape *s, const float *dy, float *dx,
			int acc_dx)
{
	tl_ref_avgpool_bwd_f32(s, dy, dx, acc_dx);
}

void tl_cpu_ref_init(tl_cpu_ops *be)
{
	be->name = "reference";
	be->pool = NULL;
	be->conv_fwd = conv_fwd;
	be->conv_bwd = conv_bwd;
	be->maxpool_fwd = maxpool_fwd;
	be->maxpool_bwd = maxpool_bwd;
	be->dense_fwd = dense_fwd;
	be->dense_bwd = dense_bwd;
	be->dwconv_fwd = dwconv_fwd;
	be->dwconv_bwd = dwconv_bwd;
	be->bn_fwd = bn_fwd;
	be->bn_bwd = bn_bwd;
	be->lrn_fwd = lrn_fwd;
	be->lrn_bwd = lrn_bwd;
	be->avgpool_fwd = avgpool_fwd;
	be->avgpool_bwd = avgpool_bwd;
}

void tl_gap_fwd(int n, int c, int hw, const float *x, float *y)
{
	tl_ref_gap_fwd_f32(n, c, hw, x, y);
}

void tl_gap_bwd(int n, int c, int hw, const float *dy, float *dx, int acc_dx)
{
	tl_ref_gap_bwd_f32(n, c, hw, dy, dx, acc_dx);
}

double tl_softmax_xent(int n, int k, const float *logits, const int32_t *labels, float *dlogits,
		       int *correct)
{
	return tl_ref_softmax_xent_f32(n, k, logits, labels, dlogits, correct);
}
