/* host.c - the CPU backends as tl_backend (see host.h). */
#include "cpu/host.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "cpu/vec.h"

struct tl_buf {
	void *p;
	size_t bytes;
};

typedef struct {
	tl_cpu_ops ops;
} host_impl;

#define OPS(be) (&((host_impl *)(be)->impl)->ops)

/* Address of m; NULL for none. */
static inline float *F(tl_mem m)
{
	return m.buf ? (float *)m.buf->p + m.off : NULL;
}
static inline int32_t *I(tl_mem m)
{
	return m.buf ? (int32_t *)m.buf->p + m.off : NULL;
}

/* ---- memory ---- */

static tl_buf *h_alloc(tl_backend *be, size_t bytes)
{
	if (be->status != TL_OK)
		return NULL;
	tl_buf *b = malloc(sizeof *b);
	void *p = b ? aligned_alloc(64, tl_align64(bytes ? bytes : 64)) : NULL;
	if (!p) {
		free(b);
		tl_backend_fail(be, TL_ENOMEM, "cpu: out of memory for a buffer of %zu bytes", bytes);
		return NULL;
	}
	b->p = p;
	b->bytes = bytes;
	return b;
}

static void h_free(tl_backend *be, tl_buf *b)
{
	if (b)
		free(b->p);
	free(b);
}

static void *h_host(tl_backend *be, tl_mem m)
{
	return F(m);
}

static void h_upload(tl_backend *be, tl_mem dst, const void *src, size_t bytes)
{
	if (be->status == TL_OK && bytes)
		memcpy(F(dst), src, bytes);
}

static tl_status h_download(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err)
{
	if (be->status != TL_OK)
		return tl_seterr(err, be->status, "%s", be->err.msg);
	if (bytes)
		memcpy(dst, F(src), bytes);
	return TL_OK;
}

static void h_fill(tl_backend *be, tl_mem dst, float v, size_t n)
{
	float *d = F(dst);
	for (size_t i = 0; i < n; i++)
		d[i] = v;
}

static void h_copy2d(tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
		     size_t rows, size_t cols, int acc)
{
	float *d = F(dst);
	const float *s = F(src);
	for (size_t r = 0; r < rows; r++)
		if (acc)
			tl_vec_add(d + r * dst_ld, s + r * src_ld, cols);
		else
			memcpy(d + r * dst_ld, s + r * src_ld, cols * sizeof(float));
}

static tl_status h_sync(tl_backend *be, tl_err *err)
{
	if (be->status != TL_OK)
		return tl_seterr(err, be->status, "%s", be->err.msg);
	return TL_OK;
}

static void h_destroy(tl_backend *be)
{
	if (!be)
		return;
	free(be->impl);
	free(be);
}

static void h_prepare_conv(tl_backend *be, const tl_conv_shape *s)
{
}

static size_t h_workspace_bytes(tl_backend *be)
{
	return 0;
}

/* ---- layer ops: the kernel tables on host addresses ---- */

static void h_conv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
		       int relu, tl_mem y)
{
	OPS(be)->conv_fwd(OPS(be), s, F(x), F(w), F(b), relu, F(y));
}

static void h_conv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
		       int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	OPS(be)->conv_bwd(OPS(be), s, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx, F(dw), F(db));
}

static void h_maxpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
			  tl_mem argmax)
{
	OPS(be)->maxpool_fwd(OPS(be), s, F(x), F(y), I(argmax));
}

static void h_maxpool_infer(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	OPS(be)->maxpool_fwd(OPS(be), s, F(x), F(y), NULL);
}

static void h_maxpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
			  tl_mem dx, int acc_dx)
{
	OPS(be)->maxpool_bwd(OPS(be), s, F(dy), I(argmax), F(dx), acc_dx);
}

static void h_gap_fwd(tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y)
{
	tl_gap_fwd(n, c, hw, F(x), F(y));
}

static void h_gap_bwd(tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx)
{
	tl_gap_bwd(n, c, hw, F(dy), F(dx), acc_dx);
}

static void h_dense_fwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
			int relu, tl_mem y)
{
	OPS(be)->dense_fwd(OPS(be), n, in, out, F(x), F(w), F(b), relu, F(y));
}

static void h_dense_bwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
			int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	OPS(be)->dense_bwd(OPS(be), n, in, out, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx,
			   F(dw), F(db));
}

static void h_dwconv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			 int relu, tl_mem y)
{
	OPS(be)->dwconv_fwd(OPS(be), s, F(x), F(w), F(b), relu, F(y));
}

static void h_dwconv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			 int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	OPS(be)->dwconv_bwd(OPS(be), s, F(x), F(w), F(y), relu, F(dy), F(dx), acc_dx, F(dw),
			    F(db));
}

static void h_bn_fwd(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		     tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save,
		     int act, tl_mem y)
{
	OPS(be)->bn_fwd(OPS(be), n, c, hw, eps, mom, training, F(x), F(gamma), F(beta), F(rmean),
			F(rvar), F(save), act, F(y));
}

static void h_bn_bwd(tl_backend *be, int n, int c, int hw, int training, tl_mem x, tl_mem gamma,
		     tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx, int acc_dx,
		     tl_mem dgamma, tl_mem dbeta)
{
	OPS(be)->bn_bwd(OPS(be), n, c, hw, training, F(x), F(gamma), F(save), F(y), act, F(dy),
			F(dx), acc_dx, F(dgamma), F(dbeta));
}

static void h_lrn_fwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		      float kk, tl_mem x, tl_mem scale, tl_mem y)
{
	OPS(be)->lrn_fwd(OPS(be), n, c, hw, size, alpha, beta, kk, F(x), F(scale), F(y));
}

static void h_lrn_bwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		      tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx)
{
	OPS(be)->lrn_bwd(OPS(be), n, c, hw, size, alpha, beta, F(x), F(y), F(scale), F(dy), F(dx),
			 acc_dx);
}

static void h_avgpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	OPS(be)->avgpool_fwd(OPS(be), s, F(x), F(y));
}

static void h_avgpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx,
			  int acc_dx)
{
	OPS(be)->avgpool_bwd(OPS(be), s, F(dy), F(dx), acc_dx);
}

/* ---- elementwise ops, split over the pool ---- */

typedef struct {
	float p, scale;
	uint64_t seed;
	const float *x, *mask;
	float *y, *m;
	int acc;
} drop_job;

static void dropout_range(void *ctx, size_t i0, size_t i1, int tid)
{
	drop_job *j = ctx;
	for (size_t i = i0; i < i1; i++) {
		j->m[i] = tl_dropout_keep(j->seed, i, j->p) ? j->scale : 0.0f;
		j->y[i] = j->x[i] * j->m[i];
	}
}

static void h_dropout_fwd(tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x,
			  tl_mem mask, tl_mem y)
{
	drop_job j = {.p = p, .scale = 1.0f / (1.0f - p), .seed = seed, .x = F(x), .y = F(y),
		      .m = F(mask)};
	tl_pool_for(be->pool, len, 1 << 14, dropout_range, &j);
}

static void mul_range(void *ctx, size_t i0, size_t i1, int tid)
{
	drop_job *j = ctx;
	for (size_t i = i0; i < i1; i++)
		j->y[i] = (j->acc ? j->y[i] : 0.0f) + j->x[i] * j->mask[i];
}

static void h_mul_acc(tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx,
		      int acc_dx)
{
	drop_job j = {.x = F(dy), .mask = F(mask), .y = F(dx), .acc = acc_dx};
	tl_pool_for(be->pool, len, 1 << 14, mul_range, &j);
}

/* Per-sample softmax cross-entropy in double, with label smoothing eps
 * (see backend.h). */
static void h_softmax_xent(tl_backend *be, int n, int k, tl_mem logits, tl_mem labels,
			   float eps, float scale, tl_mem dlogits, tl_mem stats)
{
	const float *lg = F(logits);
	const int32_t *lab = I(labels);
	float *dl = F(dlogits), *loss = F(stats);
	int32_t *pred = I(stats) + n;
	double off = (double)eps / k, on = 1.0 - (double)eps + off;
	for (int i = 0; i < n; i++) {
		const float *l = lg + (size_t)i * k;
		int am = 0;
		for (int j = 1; j < k; j++)
			if (l[j] > l[am])
				am = j;
		double m = l[am], sum = 0, mean = 0;
		for (int j = 0; j < k; j++) {
			sum += exp((double)l[j] - m);
			mean += (double)l[j] / k;
		}
		double lse = log(sum) + m; /* -log softmax_j = lse - l[j] */
		loss[i] = (float)((1.0 - eps) * (lse - (double)l[lab[i]]) + eps * (lse - mean));
		pred[i] = am;
		if (dl)
			for (int j = 0; j < k; j++)
				dl[(size_t)i * k + j] = (float)((exp((double)l[j] - m) / sum -
								 (j == lab[i] ? on : off)) *
								scale);
	}
}

typedef struct {
	const tl_update *u;
	float *p, *g, *m, *v;
} upd_job;

static void sgd_range(void *ctx, size_t k0, size_t k1, int tid)
{
	upd_job *j = ctx;
	const tl_update *u = j->u;
	for (size_t k = k0; k < k1; k++) {
		float gk = j->g[k] + u->weight_decay * j->p[k];
		j->m[k] = u->momentum * j->m[k] + gk;
		j->p[k] -= u->lr * (u->nesterov ? gk + u->momentum * j->m[k] : j->m[k]);
	}
}

static void adam_range(void *ctx, size_t k0, size_t k1, int tid)
{
	upd_job *j = ctx;
	const tl_update *u = j->u;
	float a = u->lr / u->bc1;
	for (size_t k = k0; k < k1; k++) {
		float gk = j->g[k] + u->weight_decay * j->p[k];
		j->m[k] = u->beta1 * j->m[k] + (1 - u->beta1) * gk;
		j->v[k] = u->beta2 * j->v[k] + (1 - u->beta2) * gk * gk;
		j->p[k] -= a * j->m[k] / (sqrtf(j->v[k]) / u->sqrt_bc2 + u->eps);
	}
}

static void h_update(tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g,
		     tl_mem m, tl_mem v)
{
	upd_job j = {u, F(p), F(g), F(m), F(v)};
	tl_pool_for(be->pool, len, 1 << 15, u->adam ? adam_range : sgd_range, &j);
}

static size_t h_count_nonfinite(tl_backend *be, tl_mem x, size_t n)
{
	const float *p = F(x);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !isfinite(p[i]);
	return bad;
}

tl_status tl_cpu_open(int reference, tl_pool *pool, tl_backend **out, tl_err *err)
{
	tl_backend *be = calloc(1, sizeof *be);
	host_impl *h = calloc(1, sizeof *h);
	if (!be || !h) {
		free(be);
		free(h);
		return tl_seterr(err, TL_ENOMEM, "cpu backend: out of memory");
	}
	if (reference)
		tl_cpu_ref_init(&h->ops);
	else
		tl_cpu_fast_init(&h->ops, pool);
	be->impl = h;
	be->kind = reference ? TL_BE_CPU_REFERENCE : TL_BE_CPU_FAST;
	be->pool = reference ? NULL : pool;
	int threads = be->pool ? tl_pool_size(be->pool) : 1;
	if (reference)
		snprintf(be->name, sizeof be->name, "cpu-reference (scalar, 1 thread)");
	else
		snprintf(be->name, sizeof be->name, "cpu (%s, %d thread%s)",
			 tl_cpu_level_name(tl_cpu_detect()), threads, threads == 1 ? "" : "s");
	be->alloc = h_alloc;
	be->free = h_free;
	be->host = h_host;
	be->upload = h_upload;
	be->download = h_download;
	be->fill = h_fill;
	be->copy2d = h_copy2d;
	be->sync = h_sync;
	be->destroy = h_destroy;
	be->prepare_conv = h_prepare_conv;
	be->workspace_bytes = h_workspace_bytes;
	be->conv_fwd = h_conv_fwd;
	be->conv_bwd = h_conv_bwd;
	be->maxpool_fwd = h_maxpool_fwd;
	be->maxpool_bwd = h_maxpool_bwd;
	be->maxpool_infer = h_maxpool_infer;
	be->gap_fwd = h_gap_fwd;
	be->gap_bwd = h_gap_bwd;
	be->dense_fwd = h_dense_fwd;
	be->dense_bwd = h_dense_bwd;
	be->dropout_fwd = h_dropout_fwd;
	be->mul_acc = h_mul_acc;
	be->softmax_xent = h_softmax_xent;
	be->update = h_update;
	be->dwconv_fwd = h_dwconv_fwd;
	be->dwconv_bwd = h_dwconv_bwd;
	be->bn_fwd = h_bn_fwd;
	be->bn_bwd = h_bn_bwd;
	be->lrn_fwd = h_lrn_fwd;
	be->lrn_bwd = h_lrn_bwd;
	be->avgpool_fwd = h_avgpool_fwd;
	be->avgpool_bwd = h_avgpool_bwd;
	be->count_nonfinite = h_count_nonfinite;
	*out = be;
	return TL_OK;
}
