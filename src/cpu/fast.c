/* fast.c - the fast CPU backend: convolution as im2col + packed SGEMM
 * over chunks of images, dense layers as SGEMM, pooling and the
 * elementwise work split over the pool's threads. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu/gemm.h"

#ifndef TL_COL_FLOATS
#define TL_COL_FLOATS (2u << 20) /* im2col buffer per chunk (8 MiB) */
#endif

static float *falloc(size_t n)
{
	float *p = aligned_alloc(64, tl_align64(n * sizeof(float)));
	TL_CHECK(p);
	return p;
}

/* Images per chunk so that the column matrix stays near TL_COL_FLOATS. */
static int chunk_images(const tl_conv_shape *s)
{
	size_t per = (size_t)s->c * s->kh * s->kw * s->oh * s->ow;
	size_t nb = per ? TL_COL_FLOATS / per : 1;
	if (nb < 1)
		nb = 1;
	return nb > (size_t)s->n ? s->n : (int)nb;
}

typedef struct {
	const tl_conv_shape *s;
	const float *x;
	float *col;
	int n0, nb;
	int acc;
} col_job;

/* col [c*kh*kw][nb*oh*ow] <- x[n0 .. n0+nb): one row (c, p, q) per item */
static void im2col_rows(void *ctx, size_t r0, size_t r1, int tid)
{
	col_job *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t P = (size_t)s->oh * s->ow, ld = (size_t)j->nb * P;
	for (size_t r = r0; r < r1; r++) {
		int c = (int)(r / (size_t)(s->kh * s->kw)), p = (int)(r / s->kw % s->kh),
		    q = (int)(r % s->kw);
		float *row = j->col + r * ld;
		for (int b = 0; b < j->nb; b++) {
			const float *xp = j->x + ((size_t)(j->n0 + b) * s->c + c) * s->h * s->w;
			float *o = row + b * P;
			for (int i = 0; i < s->oh; i++) {
				int yy = i * s->sh - s->ph + p;
				float *oi = o + (size_t)i * s->ow;
				if (yy < 0 || yy >= s->h) {
					memset(oi, 0, sizeof(float) * (size_t)s->ow);
					continue;
				}
				const float *xr = xp + (size_t)yy * s->w;
				if (s->sw == 1) {
					int x0 = q - s->pw; /* xx = j + x0 */
					int jlo = x0 < 0 ? -x0 : 0;
					int jhi = s->w - x0 < s->ow ? s->w - x0 : s->ow;
					if (jhi < jlo)
						jhi = jlo;
					for (int jj = 0; jj < jlo; jj++)
						oi[jj] = 0;
					memcpy(oi + jlo, xr + jlo + x0, sizeof(float) * (size_t)(jhi - jlo));
					for (int jj = jhi; jj < s->ow; jj++)
						oi[jj] = 0;
				} else {
					for (int jj = 0; jj < s->ow; jj++) {
						int xx = jj * s->sw - s->pw + q;
						oi[jj] = xx >= 0 && xx < s->w ? xr[xx] : 0;
					}
				}
			}
		}
	}
}

/* dx[n0 .. n0+nb) += col2im(col): one input channel per item (no races). */
static void col2im_channels(void *ctx, size_t c0, size_t c1, int tid)
{
	col_job *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t P = (size_t)s->oh * s->ow, ld = (size_t)j->nb * P;
	float *dx = (float *)j->x;
	for (size_t c = c0; c < c1; c++)
		for (int p = 0; p < s->kh; p++)
			for (int q = 0; q < s->kw; q++) {
				const float *row = j->col + ((c * s->kh + p) * s->kw + q) * ld;
				for (int b = 0; b < j->nb; b++) {
					float *xp = dx + ((size_t)(j->n0 + b) * s->c + c) * s->h * s->w;
					const float *o = row + b * P;
					for (int i = 0; i < s->oh; i++) {
						int yy = i * s->sh - s->ph + p;
						if (yy < 0 || yy >= s->h)
							continue;
						float *xr = xp + (size_t)yy * s->w;
						const float *oi = o + (size_t)i * s->ow;
						for (int jj = 0; jj < s->ow; jj++) {
							int xx = jj * s->sw - s->pw + q;
							if (xx >= 0 && xx < s->w)
								xr[xx] += oi[jj];
						}
					}
				}
			}
}

typedef struct {
	const tl_conv_shape *s;
	const float *src;
	float *dst;
	const float *b;
	int relu, n0, nb;
} move_job;

/* y[n0+b][o][p] = out[o][b*P + p] + bias, relu: one output channel per item */
static void scatter_out(void *ctx, size_t o0, size_t o1, int tid)
{
	move_job *m = ctx;
	const tl_conv_shape *s = m->s;
	size_t P = (size_t)s->oh * s->ow;
	for (size_t o = o0; o < o1; o++) {
		float bias = m->b ? m->b[o] : 0;
		for (int b = 0; b < m->nb; b++) {
			const float *src = m->src + o * m->nb * P + b * P;
			float *dst = m->dst + ((size_t)(m->n0 + b) * s->o + o) * P;
			for (size_t p = 0; p < P; p++) {
				float v = src[p] + bias;
				dst[p] = m->relu && v < 0 ? 0 : v;
			}
		}
	}
}

/* out[o][b*P + p] = dy[n0+b][o][p] */
static void gather_dy(void *ctx, size_t o0, size_t o1, int tid)
{
	move_job *m = ctx;
	const tl_conv_shape *s = m->s;
	size_t P = (size_t)s->oh * s->ow;
	for (size_t o = o0; o < o1; o++)
		for (int b = 0; b < m->nb; b++)
			memcpy(m->dst + o * m->nb * P + b * P,
			       m->src + ((size_t)(m->n0 + b) * s->o + o) * P, P * sizeof(float));
}

static size_t grain(tl_backend *be, size_t n)
{
	return n / (4 * (size_t)tl_pool_size(be->pool)) + 1;
}

static void conv_fwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		     const float *b, int relu, float *y)
{
	int K = s->c * s->kh * s->kw;
	size_t P = (size_t)s->oh * s->ow;
	int nbmax = chunk_images(s);
	float *col = falloc((size_t)K * nbmax * P);
	float *out = nbmax > 1 ? falloc((size_t)s->o * nbmax * P) : NULL;
	for (int n0 = 0; n0 < s->n; n0 += nbmax) {
		int nb = s->n - n0 < nbmax ? s->n - n0 : nbmax;
		col_job cj = {s, x, col, n0, nb, 0};
		tl_pool_for(be->pool, (size_t)K, grain(be, (size_t)K), im2col_rows, &cj);
		int N = (int)(nb * P);
		float *dst = nb == 1 ? y + (size_t)n0 * s->o * P : out;
		tl_sgemm(be->pool, 0, 0, s->o, N, K, 1.0f, w, K, col, N, 0.0f, dst, N);
		move_job mj = {s, dst, y, b, relu, n0, nb};
		tl_pool_for(be->pool, (size_t)s->o, grain(be, (size_t)s->o), scatter_out, &mj);
	}
	free(col);
	free(out);
}

typedef struct {
	float *dy;
	const float *y;
	size_t n;
} mask_job;

static void relu_mask(void *ctx, size_t i0, size_t i1, int tid)
{
	mask_job *m = ctx;
	for (size_t i = i0; i < i1; i++)
		if (m->y[i] <= 0)
			m->dy[i] = 0;
}

static void conv_bwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		     const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw, float *db)
{
	int K = s->c * s->kh * s->kw;
	size_t P = (size_t)s->oh * s->ow, ny = (size_t)s->n * s->o * P;
	if (relu) {
		mask_job mj = {dy, y, ny};
		tl_pool_for(be->pool, ny, ny / 8 + 1, relu_mask, &mj);
	}
	if (db)
		for (int o = 0; o < s->o; o++) {
			double acc = 0;
			for (int n = 0; n < s->n; n++) {
				const float *d = dy + ((size_t)n * s->o + o) * P;
				for (size_t p = 0; p < P; p++)
					acc += d[p];
			}
			db[o] = (float)acc;
		}
	if (!dx && !dw)
		return;
	if (dx && !acc_dx)
		memset(dx, 0, sizeof(float) * (size_t)s->n * s->c * s->h * s->w);
	int nbmax = chunk_images(s);
	float *col = falloc((size_t)K * nbmax * P);
	float *dyt = nbmax > 1 ? falloc((size_t)s->o * nbmax * P) : NULL;
	for (int n0 = 0; n0 < s->n; n0 += nbmax) {
		int nb = s->n - n0 < nbmax ? s->n - n0 : nbmax;
		int N = (int)(nb * P);
		const float *g = dy + (size_t)n0 * s->o * P;
		if (nb > 1) {
			move_job mj = {s, dy, dyt, NULL, 0, n0, nb};
			tl_pool_for(be->pool, (size_t)s->o, grain(be, (size_t)s->o), gather_dy, &mj);
			g = dyt;
		}
		col_job cj = {s, x, col, n0, nb, 0};
		if (dw) {
			tl_pool_for(be->pool, (size_t)K, grain(be, (size_t)K), im2col_rows, &cj);
			tl_sgemm(be->pool, 0, 1, s->o, K, N, 1.0f, g, N, col, N, n0 ? 1.0f : 0.0f, dw, K);
		}
		if (dx) {
			tl_sgemm(be->pool, 1, 0, K, N, s->o, 1.0f, w, K, g, N, 0.0f, col, N);
			cj.x = dx;
			tl_pool_for(be->pool, (size_t)s->c, grain(be, (size_t)s->c), col2im_channels, &cj);
		}
	}
	free(col);
	free(dyt);
}

typedef struct {
	const tl_pool_shape *s;
	const float *x, *dy;
	float *y, *dx;
	int32_t *argmax;
	const int32_t *cargmax;
} pool_job;

static void maxpool_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	pool_job *j = ctx;
	const tl_pool_shape *s = j->s;
	for (size_t pl = p0; pl < p1; pl++) {
		const float *xp = j->x + pl * s->h * s->w;
		float *yp = j->y + pl * s->oh * s->ow;
		int32_t *ap = j->argmax + pl * s->oh * s->ow;
		for (int i = 0; i < s->oh; i++) {
			int ylo = i * s->s, yhi = ylo + s->k < s->h ? ylo + s->k : s->h;
			for (int jj = 0; jj < s->ow; jj++) {
				int xlo = jj * s->s, xhi = xlo + s->k < s->w ? xlo + s->k : s->w;
				int best = ylo * s->w + xlo;
				float m = xp[best];
				for (int yy = ylo; yy < yhi; yy++)
					for (int xx = xlo; xx < xhi; xx++)
						if (xp[yy * s->w + xx] > m)
							m = xp[yy * s->w + xx], best = yy * s->w + xx;
				yp[i * s->ow + jj] = m;
				ap[i * s->ow + jj] = best;
			}
		}
	}
}

static void maxpool_fwd(tl_backend *be, const tl_pool_shape *s, const float *x, float *y,
			int32_t *argmax)
{
	pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax};
	size_t planes = (size_t)s->n * s->c;
	tl_pool_for(be->pool, planes, grain(be, planes), maxpool_planes, &j);
}

static void maxpool_bwd_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	pool_job *j = ctx;
	const tl_pool_shape *s = j->s;
	size_t plane = (size_t)s->h * s->w, op = (size_t)s->oh * s->ow;
	for (size_t pl = p0; pl < p1; pl++)
		for (size_t i = 0; i < op; i++)
			j->dx[pl * plane + (size_t)j->cargmax[pl * op + i]] += j->dy[pl * op + i];
}

static void maxpool_bwd(tl_backend *be, const tl_pool_shape *s, const float *dy,
			const int32_t *argmax, float *dx, int acc_dx)
{
	size_t planes = (size_t)s->n * s->c;
	if (!acc_dx)
		memset(dx, 0, sizeof(float) * planes * s->h * s->w);
	pool_job j = {.s = s, .dy = dy, .dx = dx, .cargmax = argmax};
	tl_pool_for(be->pool, planes, grain(be, planes), maxpool_bwd_planes, &j);
}

static void dense_fwd(tl_backend *be, int n, int in, int out, const float *x, const float *w,
		      const float *b, int relu, float *y)
{
	tl_sgemm(be->pool, 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			float v = y[(size_t)i * out + o] + (b ? b[o] : 0);
			y[(size_t)i * out + o] = relu && v < 0 ? 0 : v;
		}
}

static void dense_bwd(tl_backend *be, int n, int in, int out, const float *x, const float *w,
		      const float *y, int relu, float *dy, float *dx, int acc_dx, float *dw,
		      float *db)
{
	if (relu)
		for (size_t i = 0; i < (size_t)n * out; i++)
			if (y[i] <= 0)
				dy[i] = 0;
	if (dx)
		tl_sgemm(be->pool, 0, 0, n, in, out, 1.0f, dy, out, w, in, acc_dx ? 1.0f : 0.0f, dx, in);
	if (dw)
		tl_sgemm(be->pool, 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
	if (db)
		for (int o = 0; o < out; o++) {
			double acc = 0;
			for (int i = 0; i < n; i++)
				acc += dy[(size_t)i * out + o];
			db[o] = (float)acc;
		}
}

void tl_backend_fast_init(tl_backend *be, tl_pool *pool)
{
	be->name = "fast";
	be->pool = pool;
	be->conv_fwd = conv_fwd;
	be->conv_bwd = conv_bwd;
	be->maxpool_fwd = maxpool_fwd;
	be->maxpool_bwd = maxpool_bwd;
	be->dense_fwd = dense_fwd;
	be->dense_bwd = dense_bwd;
}
