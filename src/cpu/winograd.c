/* winograd.c - F(2x2, 3x3) convolution (see winograd.h).
 *   u = G g G^T (weights), v = B^T d B (4x4 input tile), y = A^T (sum_c u . v) A
 * with d the input patch at (2*ti - ph, 2*tj - pw), zero outside the image. */
#include "cpu/winograd.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"

#ifndef TL_WINO_FLOATS
#define TL_WINO_FLOATS (4u << 20) /* transformed tiles per chunk (16 MiB) */
#endif

int tl_wino_applies(const tl_conv_shape *s)
{
	return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->ph <= 2 && s->pw <= 2 &&
	       s->c >= 16 && s->o >= 16;
}

static float *walloc(size_t n)
{
	float *p = aligned_alloc(64, tl_align64(n * sizeof(float)));
	TL_CHECK(p);
	return p;
}

typedef struct {
	const tl_conv_shape *s;
	int th, tw, n0, nb;
	size_t T; /* tiles in the chunk */
	const float *x, *w, *b, *dy;
	float *U, *V, *M, *y;
	int relu, acc;
} wjob;

/* U[16][o][c] = G g G^T for every (o, c); one o per item */
static void wt_transform(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oc = (size_t)s->o * s->c;
	for (size_t o = o0; o < o1; o++)
		for (int c = 0; c < s->c; c++) {
			const float *g = j->w + (o * s->c + c) * 9;
			float t[4][3], u[4][4];
			for (int q = 0; q < 3; q++) { /* t = G g */
				t[0][q] = g[q];
				t[1][q] = 0.5f * (g[q] + g[3 + q] + g[6 + q]);
				t[2][q] = 0.5f * (g[q] - g[3 + q] + g[6 + q]);
				t[3][q] = g[6 + q];
			}
			for (int i = 0; i < 4; i++) { /* u = t G^T */
				u[i][0] = t[i][0];
				u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
				u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
				u[i][3] = t[i][2];
			}
			for (int k = 0; k < 16; k++)
				j->U[k * oc + o * s->c + c] = u[k / 4][k % 4];
		}
}

/* V[16][c][t] = B^T d B for every tile of the chunk; one c per item */
static void in_transform(void *ctx, size_t c0, size_t c1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t cT = (size_t)s->c * j->T;
	for (size_t c = c0; c < c1; c++) {
		size_t t = 0;
		for (int b = 0; b < j->nb; b++) {
			const float *xp = j->x + ((size_t)(j->n0 + b) * s->c + c) * s->h * s->w;
			for (int ti = 0; ti < j->th; ti++)
				for (int tj = 0; tj < j->tw; tj++, t++) {
					float d[4][4], r[4][4];
					int y0 = 2 * ti - s->ph, x0 = 2 * tj - s->pw;
					for (int a = 0; a < 4; a++)
						for (int q = 0; q < 4; q++) {
							int yy = y0 + a, xx = x0 + q;
							d[a][q] = yy >= 0 && yy < s->h && xx >= 0 && xx < s->w
									  ? xp[(size_t)yy * s->w + xx]
									  : 0.0f;
						}
					for (int q = 0; q < 4; q++) { /* r = B^T d */
						r[0][q] = d[0][q] - d[2][q];
						r[1][q] = d[1][q] + d[2][q];
						r[2][q] = d[2][q] - d[1][q];
						r[3][q] = d[1][q] - d[3][q];
					}
					float *v = j->V + c * j->T + t;
					for (int a = 0; a < 4; a++) { /* v = r B */
						v[(size_t)(a * 4 + 0) * cT] = r[a][0] - r[a][2];
						v[(size_t)(a * 4 + 1) * cT] = r[a][1] + r[a][2];
						v[(size_t)(a * 4 + 2) * cT] = r[a][2] - r[a][1];
						v[(size_t)(a * 4 + 3) * cT] = r[a][1] - r[a][3];
					}
				}
		}
	}
}

/* y = A^T m A (+ bias, relu) for every tile; one o per item */
static void out_transform(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oT = (size_t)s->o * j->T;
	for (size_t o = o0; o < o1; o++) {
		float bias = j->b ? j->b[o] : 0.0f;
		size_t t = 0;
		for (int b = 0; b < j->nb; b++) {
			float *yp = j->y + ((size_t)(j->n0 + b) * s->o + o) * s->oh * s->ow;
			for (int ti = 0; ti < j->th; ti++)
				for (int tj = 0; tj < j->tw; tj++, t++) {
					const float *m = j->M + o * j->T + t;
					float mm[4][4], r[2][4];
					for (int k = 0; k < 16; k++)
						mm[k / 4][k % 4] = m[(size_t)k * oT];
					for (int q = 0; q < 4; q++) { /* r = A^T m */
						r[0][q] = mm[0][q] + mm[1][q] + mm[2][q];
						r[1][q] = mm[1][q] - mm[2][q] - mm[3][q];
					}
					for (int a = 0; a < 2; a++) {
						int yy = 2 * ti + a;
						if (yy >= s->oh)
							continue;
						float v[2] = {r[a][0] + r[a][1] + r[a][2], r[a][1] - r[a][2] - r[a][3]};
						for (int q = 0; q < 2; q++) {
							int xx = 2 * tj + q;
							if (xx >= s->ow)
								continue;
							float *dst = yp + (size_t)yy * s->ow + xx;
							if (j->acc) {
								*dst += v[q];
							} else {
								float z = v[q] + bias;
								*dst = j->relu && z < 0 ? 0 : z;
							}
						}
					}
				}
		}
	}
}

/* dM[16][o][t] = A dy A^T for every tile (zero outside the output); one o per item */
static void dy_transform(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oT = (size_t)s->o * j->T;
	for (size_t o = o0; o < o1; o++) {
		size_t t = 0;
		for (int b = 0; b < j->nb; b++) {
			const float *g = j->dy + ((size_t)(j->n0 + b) * s->o + o) * s->oh * s->ow;
			for (int ti = 0; ti < j->th; ti++)
				for (int tj = 0; tj < j->tw; tj++, t++) {
					float e[2][2];
					for (int a = 0; a < 2; a++)
						for (int q = 0; q < 2; q++) {
							int yy = 2 * ti + a, xx = 2 * tj + q;
							e[a][q] = yy < s->oh && xx < s->ow ? g[(size_t)yy * s->ow + xx] : 0.0f;
						}
					/* r = A e (4x2), dm = r A^T (4x4); A = [1 0; 1 1; 1 -1; 0 -1] */
					float r[4][2];
					for (int q = 0; q < 2; q++) {
						r[0][q] = e[0][q];
						r[1][q] = e[0][q] + e[1][q];
						r[2][q] = e[0][q] - e[1][q];
						r[3][q] = -e[1][q];
					}
					float *m = j->M + o * j->T + t;
					for (int a = 0; a < 4; a++) {
						m[(size_t)(a * 4 + 0) * oT] = r[a][0];
						m[(size_t)(a * 4 + 1) * oT] = r[a][0] + r[a][1];
						m[(size_t)(a * 4 + 2) * oT] = r[a][0] - r[a][1];
						m[(size_t)(a * 4 + 3) * oT] = -r[a][1];
					}
				}
		}
	}
}

static size_t grain(tl_backend *be, size_t n)
{
	return n / (4 * (size_t)tl_pool_size(be->pool)) + 1;
}

static int chunk(const tl_conv_shape *s, int tiles)
{
	size_t per = (size_t)16 * (s->c > s->o ? s->c : s->o) * tiles;
	size_t nb = TL_WINO_FLOATS / (per ? per : 1);
	if (nb < 1)
		nb = 1;
	return nb > (size_t)s->n ? s->n : (int)nb;
}

void tl_wino_fwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		 const float *b, int relu, float *y, int acc)
{
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, nbmax = chunk(s, th * tw);
	size_t Tmax = (size_t)nbmax * th * tw;
	wjob j = {.s = s, .th = th, .tw = tw, .x = x, .w = w, .b = b, .relu = relu, .acc = acc, .y = y};
	j.U = walloc((size_t)16 * s->o * s->c);
	j.V = walloc((size_t)16 * s->c * Tmax);
	j.M = walloc((size_t)16 * s->o * Tmax);
	tl_pool_for(be->pool, (size_t)s->o, grain(be, (size_t)s->o), wt_transform, &j);
	for (j.n0 = 0; j.n0 < s->n; j.n0 += nbmax) {
		j.nb = s->n - j.n0 < nbmax ? s->n - j.n0 : nbmax;
		j.T = (size_t)j.nb * th * tw;
		tl_pool_for(be->pool, (size_t)s->c, grain(be, (size_t)s->c), in_transform, &j);
		for (int k = 0; k < 16; k++)
			tl_sgemm(be->pool, 0, 0, s->o, (int)j.T, s->c, 1.0f, j.U + (size_t)k * s->o * s->c,
				 s->c, j.V + (size_t)k * s->c * j.T, (int)j.T, 0.0f,
				 j.M + (size_t)k * s->o * j.T, (int)j.T);
		tl_pool_for(be->pool, (size_t)s->o, grain(be, (size_t)s->o), out_transform, &j);
	}
	free(j.U);
	free(j.V);
	free(j.M);
}

void tl_wino_dw(tl_backend *be, const tl_conv_shape *s, const float *x, const float *dy,
		float *dw)
{
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, nbmax = chunk(s, th * tw);
	size_t Tmax = (size_t)nbmax * th * tw, oc = (size_t)s->o * s->c;
	wjob j = {.s = s, .th = th, .tw = tw, .x = x, .dy = dy};
	float *dU = walloc(16 * oc);
	j.V = walloc((size_t)16 * s->c * Tmax);
	j.M = walloc((size_t)16 * s->o * Tmax);
	for (j.n0 = 0; j.n0 < s->n; j.n0 += nbmax) {
		j.nb = s->n - j.n0 < nbmax ? s->n - j.n0 : nbmax;
		j.T = (size_t)j.nb * th * tw;
		tl_pool_for(be->pool, (size_t)s->c, grain(be, (size_t)s->c), in_transform, &j);
		tl_pool_for(be->pool, (size_t)s->o, grain(be, (size_t)s->o), dy_transform, &j);
		for (int k = 0; k < 16; k++) /* dU[k] (+)= dM[k] . V[k]^T */
			tl_sgemm(be->pool, 0, 1, s->o, s->c, (int)j.T, 1.0f,
				 j.M + (size_t)k * s->o * j.T, (int)j.T, j.V + (size_t)k * s->c * j.T,
				 (int)j.T, j.n0 ? 1.0f : 0.0f, dU + (size_t)k * oc, s->c);
	}
	/* dg = G^T du G for every (o, c) */
	for (size_t i = 0; i < oc; i++) {
		float du[4][4], t[3][4];
		for (int k = 0; k < 16; k++)
			du[k / 4][k % 4] = dU[(size_t)k * oc + i];
		for (int q = 0; q < 4; q++) { /* t = G^T du: G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
			t[0][q] = du[0][q] + 0.5f * (du[1][q] + du[2][q]);
			t[1][q] = 0.5f * (du[1][q] - du[2][q]);
			t[2][q] = 0.5f * (du[1][q] + du[2][q]) + du[3][q];
		}
		float *g = dw + i * 9;
		for (int a = 0; a < 3; a++) { /* g = t G */
			g[a * 3 + 0] = t[a][0] + 0.5f * (t[a][1] + t[a][2]);
			g[a * 3 + 1] = 0.5f * (t[a][1] - t[a][2]);
			g[a * 3 + 2] = 0.5f * (t[a][1] + t[a][2]) + t[a][3];
		}
	}
	free(dU);
	free(j.V);
	free(j.M);
}
