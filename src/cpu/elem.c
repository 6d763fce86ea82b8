/* elem.c - the CPU ops that are memory moves, elementwise, the loss and
 * the optimizer: one version for the reference and the fast backend,
 * split over be->pool's threads (none on the reference). */
#include <math.h>
#include <string.h>

#include "cpu/ops.h"
#include "cpu/ref.h"
#include "cpu/vec.h"

#define F tl_cpu_f
#define I tl_cpu_i

void tl_cpu_ref_fill(tl_backend *be, tl_mem dst, float v, size_t n)
{
	float *d = F(dst);
	for (size_t i = 0; i < n; i++)
		d[i] = v;
}

void tl_cpu_ref_copy2d(tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
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

void tl_cpu_ref_gap_fwd(tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y)
{
	tl_ref_gap_fwd_f32(n, c, hw, F(x), F(y));
}

void tl_cpu_ref_gap_bwd(tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx)
{
	tl_ref_gap_bwd_f32(n, c, hw, F(dy), F(dx), acc_dx);
}

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

void tl_cpu_ref_dropout_fwd(tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x,
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

void tl_cpu_ref_mul_acc(tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx,
			int acc_dx)
{
	drop_job j = {.x = F(dy), .mask = F(mask), .y = F(dx), .acc = acc_dx};
	tl_pool_for(be->pool, len, 1 << 14, mul_range, &j);
}

/* Per-sample softmax cross-entropy in double, with label smoothing eps
 * (see backend.h). */
void tl_cpu_ref_softmax_xent(tl_backend *be, int n, int k, tl_mem logits, tl_mem labels,
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

void tl_cpu_ref_update(tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g,
		       tl_mem m, tl_mem v)
{
	upd_job j = {u, F(p), F(g), F(m), F(v)};
	tl_pool_for(be->pool, len, 1 << 15, u->adam ? adam_range : sgd_range, &j);
}

size_t tl_cpu_ref_count_nonfinite(tl_backend *be, tl_mem x, size_t n)
{
	const float *p = F(x);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !isfinite(p[i]);
	return bad;
}

