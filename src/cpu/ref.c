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
