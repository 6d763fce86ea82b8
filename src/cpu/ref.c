/* ref.c - instantiate the reference ops (ref_impl.h, float and double)
 * and run the float ones as the reference backend's layer ops on its
 * buffers (cpu/ops.h). */
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

#define F tl_cpu_f
#define I tl_cpu_i

void tl_cpu_ref_conv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			 int relu, tl_mem y)
{
	tl_ref_conv_fwd_f32(s, F(x), F(w), F(b), relu, F(y));
}

void tl_cpu_ref_conv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			 int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	tl_ref_conv_bwd_f32(s, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx, F(dw), F(db));
}

void tl_cpu_ref_maxpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
			    tl_mem argmax)
{
	tl_ref_maxpool_fwd_f32(s, F(x), F(y), I(argmax));
}

/* The backend's own maxpool_fwd (reference or fast) with no argmax. */
void tl_cpu_ref_maxpool_infer(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	be->maxpool_fwd(be, s, x, y, (tl_mem){0});
}

void tl_cpu_ref_maxpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
			    tl_mem dx, int acc_dx)
{
	tl_ref_maxpool_bwd_f32(s, F(dy), I(argmax), F(dx), acc_dx);
}

void tl_cpu_ref_dense_fwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
			  int relu, tl_mem y)
{
	tl_ref_dense_fwd_f32(n, in, out, F(x), F(w), F(b), relu, F(y));
}

void tl_cpu_ref_dense_bwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
			  int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	tl_ref_dense_bwd_f32(n, in, out, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx, F(dw),
			     F(db));
}

void tl_cpu_ref_dwconv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			   int relu, tl_mem y)
{
	tl_ref_dwconv_fwd_f32(s, F(x), F(w), F(b), relu, F(y));
}

void tl_cpu_ref_dwconv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			   int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	tl_ref_dwconv_bwd_f32(s, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx, F(dw), F(db));
}

void tl_cpu_ref_bn_fwd(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		       tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save,
		       int act, tl_mem y)
{
	tl_ref_bn_fwd_f32(n, c, hw, eps, mom, training, F(x), F(gamma), F(beta), F(rmean),
			  F(rvar), F(save), act, F(y));
}

void tl_cpu_ref_bn_bwd(tl_backend *be, int n, int c, int hw, int training, tl_mem x,
		       tl_mem gamma, tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx,
		       int acc_dx, tl_mem dgamma, tl_mem dbeta)
{
	tl_ref_bn_bwd_f32(n, c, hw, training, F(x), F(gamma), F(save), F(y), act, F(dy), F(dx),
			  acc_dx, F(dgamma), F(dbeta));
}

void tl_cpu_ref_lrn_fwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			float kk, tl_mem x, tl_mem scale, tl_mem y)
{
	tl_ref_lrn_fwd_f32(n, c, hw, size, alpha, beta, kk, F(x), F(scale), F(y));
}

void tl_cpu_ref_lrn_bwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx)
{
	tl_ref_lrn_bwd_f32(n, c, hw, size, alpha, beta, F(x), F(y), F(scale), F(dy), F(dx),
			   acc_dx);
}

void tl_cpu_ref_avgpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	tl_ref_avgpool_fwd_f32(s, F(x), F(y));
}

void tl_cpu_ref_avgpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx,
			    int acc_dx)
{
	tl_ref_avgpool_bwd_f32(s, F(dy), F(dx), acc_dx);
}
