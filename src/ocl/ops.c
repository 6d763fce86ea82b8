/* ops.c - the OpenCL backend's other ops (see ocl.h, internal.h):
 * pooling, depthwise convolution, batch norm, LRN, dense layers (CLBlast
 * SGEMM), dropout, the loss, the optimizer and the non-finite count. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl/internal.h"

/* ---- pooling ---- */

void tl_ocl_maxpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
			tl_mem argmax)
{
	size_t nc = (size_t)s->n * s->c, ny = nc * s->oh * s->ow;
	if (tl_ocl_fits32(be, nc * s->h * s->w, "maxpool input"))
		RUN(be, K_MAXPOOL_FWD, ny, 0, KM(be, x), KI(nc), KI(s->h), KI(s->w), KI(s->k),
		    KI(s->s), KI(s->p), KI(s->oh), KI(s->ow), KM(be, y), KM(be, argmax));
}

void tl_ocl_maxpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
			tl_mem dx, int acc_dx)
{
	size_t nc = (size_t)s->n * s->c, nx = nc * s->h * s->w;
	if (tl_ocl_fits32(be, nx, "maxpool input"))
		RUN(be, K_MAXPOOL_BWD, nx, 0, KM(be, dy), KM(be, argmax), KI(nc), KI(s->h), KI(s->w),
		    KI(s->k), KI(s->s), KI(s->p), KI(s->oh), KI(s->ow), KI(acc_dx), KM(be, dx));
}

/* Adaptive average pool: pool.cl's avgpool_fwd/avgpool_bwd (k, s, p unused). */
void tl_ocl_avgpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	size_t nc = (size_t)s->n * s->c, ny = nc * s->oh * s->ow;
	if (tl_ocl_fits32(be, nc * s->h * s->w, "avgpool input") && tl_ocl_fits32(be, ny, "avgpool output"))
		RUN(be, K_AVGPOOL_FWD, ny, 0, KM(be, x), KI(nc), KI(s->h), KI(s->w), KI(s->oh),
		    KI(s->ow), KM(be, y));
}

void tl_ocl_avgpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx,
			int acc_dx)
{
	size_t nc = (size_t)s->n * s->c, nx = nc * s->h * s->w;
	if (tl_ocl_fits32(be, nx, "avgpool input") && tl_ocl_fits32(be, nc * s->oh * s->ow, "avgpool output"))
		RUN(be, K_AVGPOOL_BWD, nx, 0, KM(be, dy), KI(nc), KI(s->h), KI(s->w), KI(s->oh),
		    KI(s->ow), KI(acc_dx), KM(be, dx));
}

void tl_ocl_gap_fwd(tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y)
{
	size_t nc = (size_t)n * c;
	if (tl_ocl_fits32(be, nc * hw, "gap input"))
		RUN(be, K_GAP_FWD, nc, 0, KM(be, x), KU(nc), KI(hw), KM(be, y));
}

void tl_ocl_gap_bwd(tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx)
{
	size_t total = (size_t)n * c * hw;
	if (tl_ocl_fits32(be, total, "gap input"))
		RUN(be, K_GAP_BWD, total, 0, KM(be, dy), KU(total), KI(hw), KI(acc_dx), KM(be, dx));
}

/* ---- depthwise convolution, batch norm, LRN ---- */

/* The geometry arguments of dwconv.cl's kernels, after the first tensor. */
#define DW_GEOM(s)                                                                         \
	KI((s)->n), KI((s)->c), KI((s)->h), KI((s)->w), KI((s)->kh), KI((s)->kw), KI((s)->sh), \
		KI((s)->sw), KI((s)->ph), KI((s)->pw), KI((s)->oh), KI((s)->ow)

/* A depthwise shape has one output channel per input channel. */
static int dw_shape_ok(tl_backend *be, const tl_conv_shape *s)
{
	if (s->o == s->c)
		return 1;
	tl_backend_fail(be, TL_EUSAGE, "opencl: dwconv: %d output channels for %d input channels "
			"(expected equal)", s->o, s->c);
	return 0;
}

void tl_ocl_dwconv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
		       int relu, tl_mem y)
{
	size_t ny = (size_t)s->n * s->c * s->oh * s->ow;
	if (be->status == TL_OK && dw_shape_ok(be, s) && tl_ocl_fits32(be, ny, "dwconv output") &&
	    tl_ocl_fits32(be, (size_t)s->n * s->c * s->h * s->w, "dwconv input"))
		RUN(be, K_DWCONV_FWD, ny, 0, KM(be, x), DW_GEOM(s), KM(be, w), KM(be, b),
		    KI(b.buf != NULL), KI(relu), KM(be, y));
}

void tl_ocl_dwconv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
		       int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	size_t P = (size_t)s->oh * s->ow, ny = (size_t)s->n * s->c * P;
	size_t nx = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->c * s->kh * s->kw;
	if (be->status != TL_OK || !dw_shape_ok(be, s) || !tl_ocl_fits32(be, ny, "dwconv output") ||
	    !tl_ocl_fits32(be, nx, "dwconv input") || !tl_ocl_fits32(be, nw * RED_WG, "dwconv weights"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	/* the reductions write zero when there are no outputs (n*P = 0) */
	if (db.buf)
		tl_ocl_bias_grad(be, s->n, s->c, (int)P, dy, db);
	if (dw.buf)
		RUN(be, K_DWCONV_DW, nw * RED_WG, RED_WG, KM(be, x), KM(be, dy), DW_GEOM(s),
		    KM(be, dw));
	if (dx.buf)
		RUN(be, K_DWCONV_DX, nx, 0, KM(be, dy), DW_GEOM(s), KM(be, w), KI(acc_dx),
		    KM(be, dx));
}

/* Batch norm's per-channel sums over m = n*hw values: one work-group per
 * channel (norm.cl's bn_stats, bn_grad), or, for channels of at least
 * 2*BN_CHUNK values, G = m/BN_CHUNK chunks (at most BN_MAX_CHUNKS) summed
 * by a work-group each and combined in order per channel (bn_*_part,
 * bn_*_final), so that a few channels of a large map still fill a GPU.
 * The partials live in the reserved scratch o->red after its [2][c]. */
#define BN_CHUNK 4096
#define BN_MAX_CHUNKS 64
static int bn_chunks(size_t m)
{
	size_t g = m / BN_CHUNK;
	return g < 2 ? 1 : g > BN_MAX_CHUNKS ? BN_MAX_CHUNKS : (int)g;
}

/* o->red as a tl_mem in *buf, at least (2 + 2*G) * c floats. */
static int bn_scratch(tl_backend *be, int c, int G, tl_buf *buf)
{
	ocl_state *o = st_of(be);
	if (!tl_ocl_reserve(be, &o->red, &o->red_bytes, (size_t)c * (2 + 2 * (size_t)G) * 4))
		return 0;
	*buf = (tl_buf){o->red, o->red_bytes};
	return 1;
}

void tl_ocl_bn_fwd(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		   tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save,
		   int act, tl_mem y)
{
	size_t total = (size_t)n * c * hw;
	if (!tl_ocl_fits32(be, total, "bn input") || !tl_ocl_fits32(be, (size_t)c * RED_WG, "bn channels"))
		return;
	int G = training ? bn_chunks((size_t)n * hw) : 1;
	tl_buf red;
	if (G > 1 && tl_ocl_fits32(be, (size_t)c * G * RED_WG, "bn chunks") && bn_scratch(be, c, G, &red)) {
		tl_mem part = {&red, 2 * (size_t)c};
		RUN(be, K_BN_STATS_PART, (size_t)c * G * RED_WG, RED_WG, KM(be, x), KI(n), KI(c),
		    KI(hw), KI(G), KM(be, part));
		RUN(be, K_BN_STATS_FINAL, (size_t)c, 0, KM(be, part), KI(n), KI(c), KI(hw), KI(G),
		    KF(eps), KF(mom), KM(be, rmean), KM(be, rvar), KM(be, save));
	} else {
		RUN(be, K_BN_STATS, (size_t)c * RED_WG, RED_WG, KM(be, x), KI(n), KI(c), KI(hw),
		    KF(eps), KF(mom), KI(training), KM(be, rmean), KM(be, rvar), KM(be, save));
	}
	RUN(be, K_BN_APPLY, total, 0, KM(be, x), KU(total), KI(c), KI(hw), KM(be, save),
	    KM(be, gamma), KI(gamma.buf != NULL), KM(be, beta), KI(beta.buf != NULL), KI(act),
	    KM(be, y));
}

void tl_ocl_bn_bwd(tl_backend *be, int n, int c, int hw, int training, tl_mem x, tl_mem gamma,
		   tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx, int acc_dx,
		   tl_mem dgamma, tl_mem dbeta)
{
	size_t total = (size_t)n * c * hw;
	if (be->status != TL_OK || !tl_ocl_fits32(be, total, "bn input") ||
	    !tl_ocl_fits32(be, (size_t)c * RED_WG, "bn channels"))
		return;
	if (act != TL_ACT_NONE)
		RUN(be, K_ACT_MASK, total, 0, KM(be, y), KM(be, dy), KU(total), KI(act));
	int sums = dgamma.buf || dbeta.buf || (dx.buf && training);
	if (!sums && !dx.buf)
		return;
	/* dgamma and dbeta go to the caller's tensors, or to the scratch
	 * (reserved once, regrown only for a wider layer) where it wants none
	 * but the training dx needs them */
	tl_mem g = dgamma, bt = dbeta;
	int G = sums ? bn_chunks((size_t)n * hw) : 1;
	if (G > 1 && !tl_ocl_fits32(be, (size_t)c * G * RED_WG, "bn chunks"))
		return;
	tl_buf red;
	if (sums && (!g.buf || !bt.buf || G > 1)) {
		if (!bn_scratch(be, c, G, &red))
			return;
		if (!g.buf)
			g = (tl_mem){&red, 0};
		if (!bt.buf)
			bt = (tl_mem){&red, (size_t)c};
	}
	if (sums && G > 1) {
		tl_mem part = {&red, 2 * (size_t)c};
		RUN(be, K_BN_GRAD_PART, (size_t)c * G * RED_WG, RED_WG, KM(be, x), KM(be, dy), KI(n),
		    KI(c), KI(hw), KI(G), KM(be, save), KM(be, part));
		RUN(be, K_BN_GRAD_FINAL, (size_t)c, 0, KM(be, part), KI(c), KI(G), KM(be, g),
		    KM(be, bt));
	} else if (sums) {
		RUN(be, K_BN_GRAD, (size_t)c * RED_WG, RED_WG, KM(be, x), KM(be, dy), KI(n), KI(c),
		    KI(hw), KM(be, save), KM(be, g), KM(be, bt));
	}
	if (dx.buf)
		RUN(be, K_BN_DX, total, 0, KM(be, x), KM(be, dy), KU(total), KI(c), KI(hw),
		    KI(training), KM(be, save), KM(be, gamma), KI(gamma.buf != NULL), KM(be, g),
		    KM(be, bt), KI(acc_dx), KM(be, dx));
}

void tl_ocl_lrn_fwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		    float kk, tl_mem x, tl_mem scale, tl_mem y)
{
	size_t total = (size_t)n * c * hw;
	if (tl_ocl_fits32(be, total, "lrn input"))
		RUN(be, K_LRN_FWD, total, 0, KM(be, x), KU(total), KI(c), KI(hw), KI(size), KF(alpha),
		    KF(beta), KF(kk), KM(be, scale), KM(be, y));
}

void tl_ocl_lrn_bwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		    tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx)
{
	size_t total = (size_t)n * c * hw;
	if (tl_ocl_fits32(be, total, "lrn input"))
		RUN(be, K_LRN_BWD, total, 0, KM(be, x), KM(be, y), KM(be, scale), KM(be, dy),
		    KU(total), KI(c), KI(hw), KI(size), KF(alpha), KF(beta), KI(acc_dx),
		    KM(be, dx));
}

/* ---- dense ---- */

void tl_ocl_dense_fwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
		      int relu, tl_mem y)
{
	size_t ny = (size_t)n * out;
	if (be->status != TL_OK || ny == 0 || !tl_ocl_fits32(be, ny, "dense output"))
		return;
	tl_ocl_gemm(be, 0, 1, n, out, in, 1.0f, x.buf->mem, x.off, in, w.buf->mem, w.off, in, 0.0f,
	     y.buf->mem, y.off, out);
	if (b.buf || relu)
		RUN(be, K_BIAS_ACT, ny, 0, KM(be, y), KU(ny), KI(out), KI(1), KM(be, b),
		    KI(b.buf != NULL), KI(relu));
}

void tl_ocl_dense_bwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
		      int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	size_t ny = (size_t)n * out;
	if (be->status != TL_OK || !tl_ocl_fits32(be, ny, "dense output"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	if (dx.buf)
		tl_ocl_gemm(be, 0, 0, n, in, out, 1.0f, dy.buf->mem, dy.off, out, w.buf->mem, w.off, in,
		     acc_dx ? 1.0f : 0.0f, dx.buf->mem, dx.off, in);
	if (dw.buf)
		tl_ocl_gemm(be, 1, 0, out, in, n, 1.0f, dy.buf->mem, dy.off, out, x.buf->mem, x.off, in, 0.0f,
		     dw.buf->mem, dw.off, in);
	if (db.buf)
		tl_ocl_bias_grad(be, n, out, 1, dy, db);
}

/* ---- elementwise, loss, optimizer ---- */

void tl_ocl_dropout_fwd(tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x,
			tl_mem mask, tl_mem y)
{
	float scale = 1.0f / (1.0f - p);
	RUN(be, K_DROPOUT_FWD, len, 0, KL(len), KF(p), KF(scale), KL(seed), KM(be, x),
	    KM(be, mask), KM(be, y));
}

void tl_ocl_mul_acc(tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx, int acc_dx)
{
	RUN(be, K_MUL_ACC, len, 0, KL(len), KM(be, dy), KM(be, mask), KI(acc_dx), KM(be, dx));
}

void tl_ocl_softmax_xent(tl_backend *be, int n, int k, tl_mem logits, tl_mem labels,
			 float eps, float scale, tl_mem dlogits, tl_mem stats)
{
	RUN(be, K_SOFTMAX_XENT, (size_t)n, 0, KI(n), KI(k), KM(be, logits), KM(be, labels),
	    KF(eps), KF(scale), KI(dlogits.buf != NULL), KM(be, dlogits), KM(be, stats));
}

void tl_ocl_update(tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g,
		   tl_mem m, tl_mem v)
{
	if (!tl_ocl_fits32(be, len, "update"))
		return;
	if (u->adam)
		RUN(be, K_ADAM, len, 0, KU(len), KF(u->lr / u->bc1), KF(u->beta1), KF(u->beta2),
		    KF(u->eps), KF(u->sqrt_bc2), KF(u->weight_decay), KM(be, p), KM(be, g),
		    KM(be, m), KM(be, v));
	else
		RUN(be, K_SGD, len, 0, KU(len), KF(u->lr), KF(u->momentum), KF(u->weight_decay),
		    KI(u->nesterov), KM(be, p), KM(be, g), KM(be, m));
}

size_t tl_ocl_count_nonfinite(tl_backend *be, tl_mem x, size_t n)
{
	ocl_state *o = st_of(be);
	if (n == 0 || !tl_ocl_fits32(be, n, "count_nonfinite"))
		return 0;
	size_t groups = (n + RED_WG - 1) / RED_WG;
	if (groups > NONFINITE_GROUPS)
		groups = NONFINITE_GROUPS;
	RUN(be, K_COUNT_NONFINITE, groups * RED_WG, RED_WG, KM(be, x), KU(n), KB(o->counts));
	cl_uint counts[NONFINITE_GROUPS];
	if (be->status != TL_OK ||
	    !BE_OK(be, clEnqueueReadBuffer(o->q, o->counts, CL_TRUE, 0, groups * sizeof(cl_uint),
					   counts, 0, NULL, NULL)))
		return 0;
	size_t total = 0;
	for (size_t i = 0; i < groups; i++)
		total += counts[i];
	return total;
}

