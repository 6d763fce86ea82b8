/* winograd.c - F(2x2, 3x3) convolution (see winograd.h).
 *   u = G g G^T (weights), v = B^T d B (4x4 input tile), y = A^T (sum_c u . v) A
 * with d the input patch at (2*ti - ph, 2*tj - pw), zero outside the image. */
#include "cpu/winograd.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/scratch.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TL_WINO_FLOATS
#define TL_WINO_FLOATS (4u << 20) /* whole-batch stages: transformed tiles per pass (16 MiB) */
#endif

#ifndef TL_WINO_MIN_CHANNELS
#define TL_WINO_MIN_CHANNELS 64 /* fewer input or output channels: the transforms
				 * cost more than they save (SqueezeNet's fire
				 * modules ran 15% slower with them) */
#endif
#ifndef TL_WINO_MIN_TILES
#define TL_WINO_MIN_TILES 256 /* below this many tiles per batch the weight transform
			       * costs more than the multiplications saved */
#endif

/* $TL_WINOGRAD=0 turns Winograd off (for comparisons); read once. */
static int wino_enabled(void)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("TL_WINOGRAD");
		on = !(e && e[0] == '0');
	}
	return on;
}

int tl_wino_applies(const tl_conv_shape *s)
{
	if (!wino_enabled())
		return 0;
	size_t th = (size_t)(s->oh + 1) / 2, tw = (size_t)(s->ow + 1) / 2, tiles = s->n * th * tw;
	/* odd sizes compute outputs past the edge: at most a quarter wasted
	 * (3x3 outputs would waste 7 of 16; measured slower on SqueezeNet) */
	if (4 * (size_t)s->oh * s->ow < 3 * 4 * th * tw)
		return 0;
	return tl_cpu_detect() == TL_CPU_AVX512 && s->kh == 3 && s->kw == 3 && s->sh == 1 &&
	       s->sw == 1 && s->ph <= 2 && s->pw <= 2 && s->c >= TL_WINO_MIN_CHANNELS &&
	       s->o >= TL_WINO_MIN_CHANNELS && tiles >= TL_WINO_MIN_TILES;
}

typedef struct {
	const tl_conv_shape *s;
	int th, tw, n0, nb;
	int t_lo, t_hi; /* tiles [t_lo, t_hi) of each of the nb images (t_lo % 16 == 0) */
	size_t T;	/* tiles in the chunk: nb * (t_hi - t_lo) */
	const float *x, *w, *b, *dy;
	float *U, *V, *M, *y, *dw;
	int relu, acc;
	const struct wgroup *grp; /* AVX-512 lane tables (NULL: scalar transforms) */
} wjob;

/* Sixteen consecutive tiles of one image, one per AVX-512 lane: where each
 * lane's 4x4 input patch and 2x2 output block start, and which of their
 * points fall inside the image. */
typedef struct wgroup {
	int32_t in[16], out[16];
	uint16_t in_mask[16]; /* point (a, q) of the input patch, a * 4 + q */
	uint16_t out_mask[4]; /* point (a, q) of the output block, a * 2 + q */
	uint16_t lanes;	      /* lanes that hold a tile */
	/* rows: lanes 0-7 and 8-15 are each eight tiles side by side in one tile
	 * row (ti[h], from column tj0[h]), so the patches come from two plain
	 * 16-float loads per input row and half instead of gathers */
	int rows;
	int ti[2], xs[2];	 /* tile row; first input column of the half */
	uint16_t mlo[2], mhi[2]; /* columns xs..xs+15 and xs+2..xs+17 inside the image */
} wgroup;

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
			for (int tt = j->t_lo; tt < j->t_hi; tt++, t++) {
				int ti = tt / j->tw, tj = tt % j->tw;
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
			for (int tt = j->t_lo; tt < j->t_hi; tt++, t++) {
				int ti = tt / j->tw, tj = tt % j->tw;
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
			for (int tt = j->t_lo; tt < j->t_hi; tt++, t++) {
				int ti = tt / j->tw, tj = tt % j->tw;
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


/* ---- the transforms on sixteen tiles at a time (AVX-512) ---- */

/* The lane tables for one image's th x tw tiles; *ng gets their count. */
static wgroup *groups_new(const tl_conv_shape *s, int th, int tw, int *ng)
{
	int tpi = th * tw, n = (tpi + 15) / 16;
	wgroup *g = calloc((size_t)n, sizeof *g);
	TL_CHECK(g);
	for (int t = 0; t < tpi; t++) {
		wgroup *G = &g[t / 16];
		int l = t % 16, ti = t / tw, tj = t % tw;
		int y0 = 2 * ti - s->ph, x0 = 2 * tj - s->pw;
		G->lanes |= (uint16_t)(1u << l);
		G->in[l] = y0 * s->w + x0;
		for (int a = 0; a < 4; a++)
			for (int q = 0; q < 4; q++)
				if (y0 + a >= 0 && y0 + a < s->h && x0 + q >= 0 && x0 + q < s->w)
					G->in_mask[a * 4 + q] |= (uint16_t)(1u << l);
		G->out[l] = 2 * ti * s->ow + 2 * tj;
		for (int a = 0; a < 2; a++)
			for (int q = 0; q < 2; q++)
				if (2 * ti + a < s->oh && 2 * tj + q < s->ow)
					G->out_mask[a * 2 + q] |= (uint16_t)(1u << l);
	}
	for (int gi = 0; gi < n && tw % 8 == 0; gi++) {
		wgroup *G = &g[gi];
		if (G->lanes != 0xffff)
			continue;
		G->rows = 1;
		for (int h = 0; h < 2; h++) {
			int t = gi * 16 + h * 8, tj0 = t % tw;
			G->ti[h] = t / tw;
			G->xs[h] = 2 * tj0 - s->pw;
			for (int i = 0; i < 16; i++) {
				int x = G->xs[h] + i;
				if (x >= 0 && x < s->w)
					G->mlo[h] |= (uint16_t)(1u << i);
				if (x + 2 >= 0 && x + 2 < s->w)
					G->mhi[h] |= (uint16_t)(1u << i);
			}
		}
	}
	*ng = n;
	return g;
}

#if defined(__x86_64__)
#define W_ATTR __attribute__((target("avx512f")))

/* Lane i holds i * step + first: with step 2, the even (first 0) or odd
 * (first 1) floats of two vectors for _mm512_permutex2var_ps; with step 9,
 * the offsets of sixteen 3x3 kernels for gathers and scatters. */
W_ATTR static inline __m512i lanes_stride(int step, int first)
{
	return _mm512_add_epi32(
		_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				   _mm512_set1_epi32(step)),
		_mm512_set1_epi32(first));
}

/* V[16][c][t] = B^T d B, sixteen tiles per step; one c per item */
W_ATTR static void in_transform16(void *ctx, size_t c0, size_t c1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	int tpc = j->t_hi - j->t_lo, g0 = j->t_lo / 16, g1 = (j->t_hi + 15) / 16;
	size_t cT = (size_t)s->c * j->T;
	__m512 z = _mm512_setzero_ps();
	__m512i even = lanes_stride(2, 0), odd = lanes_stride(2, 1);
	for (size_t c = c0; c < c1; c++)
		for (int b = 0; b < j->nb; b++) {
			const float *xp = j->x + ((size_t)(j->n0 + b) * s->c + c) * s->h * s->w;
			float *vb = j->V + c * j->T + (size_t)b * tpc;
			for (int gi = g0; gi < g1; gi++) {
				const wgroup *G = &j->grp[gi];
				__m512 d[4][4], r[4][4];
				if (G->rows) {
					for (int a = 0; a < 4; a++) {
						__m512 lo[2], hi[2];
						for (int h = 0; h < 2; h++) {
							int y = 2 * G->ti[h] - s->ph + a;
							if (y < 0 || y >= s->h) {
								lo[h] = hi[h] = z;
								continue;
							}
							const float *row = xp + (ptrdiff_t)y * s->w + G->xs[h];
							lo[h] = _mm512_maskz_loadu_ps(G->mlo[h], row);
							hi[h] = _mm512_maskz_loadu_ps(G->mhi[h], row + 2);
						}
						d[a][0] = _mm512_permutex2var_ps(lo[0], even, lo[1]);
						d[a][1] = _mm512_permutex2var_ps(lo[0], odd, lo[1]);
						d[a][2] = _mm512_permutex2var_ps(hi[0], even, hi[1]);
						d[a][3] = _mm512_permutex2var_ps(hi[0], odd, hi[1]);
					}
				} else {
					__m512i idx = _mm512_loadu_si512(G->in);
					for (int a = 0; a < 4; a++)
						for (int q = 0; q < 4; q++)
							d[a][q] = _mm512_mask_i32gather_ps(
								z, G->in_mask[a * 4 + q], idx, xp + a * s->w + q, 4);
				}
				for (int q = 0; q < 4; q++) { /* r = B^T d */
					r[0][q] = _mm512_sub_ps(d[0][q], d[2][q]);
					r[1][q] = _mm512_add_ps(d[1][q], d[2][q]);
					r[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
					r[3][q] = _mm512_sub_ps(d[1][q], d[3][q]);
				}
				float *v = vb + (gi - g0) * 16;
				for (int a = 0; a < 4; a++) { /* v = r B */
					_mm512_mask_storeu_ps(v + (size_t)(a * 4 + 0) * cT, G->lanes,
							      _mm512_sub_ps(r[a][0], r[a][2]));
					_mm512_mask_storeu_ps(v + (size_t)(a * 4 + 1) * cT, G->lanes,
							      _mm512_add_ps(r[a][1], r[a][2]));
					_mm512_mask_storeu_ps(v + (size_t)(a * 4 + 2) * cT, G->lanes,
							      _mm512_sub_ps(r[a][2], r[a][1]));
					_mm512_mask_storeu_ps(v + (size_t)(a * 4 + 3) * cT, G->lanes,
							      _mm512_sub_ps(r[a][1], r[a][3]));
				}
			}
		}
}

/* y = A^T m A (+ bias, relu, or added to y), sixteen tiles per step; one o per item */
W_ATTR static void out_transform16(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	int tpc = j->t_hi - j->t_lo, g0 = j->t_lo / 16, g1 = (j->t_hi + 15) / 16;
	size_t oT = (size_t)s->o * j->T;
	__m512 z = _mm512_setzero_ps();
	/* lanes h*8 .. h*8+7 of two vectors interleaved: q = 0 and 1 of 8 tiles */
	const __m512i inter[2] = {
		_mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
		_mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
	for (size_t o = o0; o < o1; o++) {
		__m512 bias = _mm512_set1_ps(j->b ? j->b[o] : 0.0f);
		for (int b = 0; b < j->nb; b++) {
			float *yp = j->y + ((size_t)(j->n0 + b) * s->o + o) * s->oh * s->ow;
			const float *mb = j->M + o * j->T + (size_t)b * tpc;
			for (int gi = g0; gi < g1; gi++) {
				const wgroup *G = &j->grp[gi];
				__m512 m[4][4], r[2][4];
				for (int k = 0; k < 16; k++)
					m[k / 4][k % 4] = _mm512_maskz_loadu_ps(G->lanes, mb + (gi - g0) * 16 + (size_t)k * oT);
				for (int q = 0; q < 4; q++) { /* r = A^T m */
					r[0][q] = _mm512_add_ps(_mm512_add_ps(m[0][q], m[1][q]), m[2][q]);
					r[1][q] = _mm512_sub_ps(_mm512_sub_ps(m[1][q], m[2][q]), m[3][q]);
				}
				__m512i idx = _mm512_loadu_si512(G->out);
				for (int a = 0; a < 2; a++) {
					__m512 v[2] = {
						_mm512_add_ps(_mm512_add_ps(r[a][0], r[a][1]), r[a][2]),
						_mm512_sub_ps(_mm512_sub_ps(r[a][1], r[a][2]), r[a][3])};
					if (G->rows) { /* each half: 8 tiles -> 16 side-by-side outputs */
						if (!j->acc)
							for (int q = 0; q < 2; q++) {
								v[q] = _mm512_add_ps(v[q], bias);
								if (j->relu)
									v[q] = _mm512_max_ps(z, v[q]);
							}
						for (int h = 0; h < 2; h++) {
							int y = 2 * G->ti[h] + a, x = G->xs[h] + s->pw;
							if (y >= s->oh)
								continue;
							__mmask16 k = (__mmask16)(s->ow - x >= 16 ? 0xffff
												  : (1u << (s->ow - x)) - 1);
							float *dst = yp + (size_t)y * s->ow + x;
							__m512 t = _mm512_permutex2var_ps(v[0], inter[h], v[1]);
							if (j->acc)
								t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(k, dst));
							_mm512_mask_storeu_ps(dst, k, t);
						}
						continue;
					}
					for (int q = 0; q < 2; q++) {
						__mmask16 k = G->out_mask[a * 2 + q];
						float *base = yp + a * s->ow + q;
						__m512 t = v[q];
						if (j->acc)
							t = _mm512_add_ps(t, _mm512_mask_i32gather_ps(z, k, idx, base, 4));
						else {
							t = _mm512_add_ps(t, bias);
							if (j->relu)
								t = _mm512_max_ps(z, t); /* NaN stays NaN */
						}
						_mm512_mask_i32scatter_ps(base, k, idx, t, 4);
					}
				}
			}
		}
	}
}

/* dM[16][o][t] = A e A^T (e: the tile's 2x2 of dy, zero outside); one o per item */
W_ATTR static void dy_transform16(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	int tpc = j->t_hi - j->t_lo, g0 = j->t_lo / 16, g1 = (j->t_hi + 15) / 16;
	size_t oT = (size_t)s->o * j->T;
	__m512 z = _mm512_setzero_ps();
	__m512i even = lanes_stride(2, 0), odd = lanes_stride(2, 1);
	for (size_t o = o0; o < o1; o++)
		for (int b = 0; b < j->nb; b++) {
			const float *gp = j->dy + ((size_t)(j->n0 + b) * s->o + o) * s->oh * s->ow;
			float *mb = j->M + o * j->T + (size_t)b * tpc;
			for (int gi = g0; gi < g1; gi++) {
				const wgroup *G = &j->grp[gi];
				__m512 e[2][2], r[4][2];
				if (G->rows) { /* each half: 16 side-by-side outputs -> 8 tiles */
					for (int a = 0; a < 2; a++) {
						__m512 ld[2];
						for (int h = 0; h < 2; h++) {
							int y = 2 * G->ti[h] + a, x = G->xs[h] + s->pw;
							__mmask16 k = (__mmask16)(s->ow - x >= 16 ? 0xffff
												  : (1u << (s->ow - x)) - 1);
							ld[h] = y < s->oh ? _mm512_maskz_loadu_ps(k, gp + (size_t)y * s->ow + x)
									  : z;
						}
						e[a][0] = _mm512_permutex2var_ps(ld[0], even, ld[1]);
						e[a][1] = _mm512_permutex2var_ps(ld[0], odd, ld[1]);
					}
				} else {
					__m512i idx = _mm512_loadu_si512(G->out);
					for (int a = 0; a < 2; a++)
						for (int q = 0; q < 2; q++)
							e[a][q] = _mm512_mask_i32gather_ps(
								z, G->out_mask[a * 2 + q], idx, gp + a * s->ow + q, 4);
				}
				for (int q = 0; q < 2; q++) { /* r = A e, A = [1 0; 1 1; 1 -1; 0 -1] */
					r[0][q] = e[0][q];
					r[1][q] = _mm512_add_ps(e[0][q], e[1][q]);
					r[2][q] = _mm512_sub_ps(e[0][q], e[1][q]);
					r[3][q] = _mm512_sub_ps(z, e[1][q]);
				}
				float *m = mb + (gi - g0) * 16;
				for (int a = 0; a < 4; a++) { /* dm = r A^T */
					_mm512_mask_storeu_ps(m + (size_t)(a * 4 + 0) * oT, G->lanes, r[a][0]);
					_mm512_mask_storeu_ps(m + (size_t)(a * 4 + 1) * oT, G->lanes,
							      _mm512_add_ps(r[a][0], r[a][1]));
					_mm512_mask_storeu_ps(m + (size_t)(a * 4 + 2) * oT, G->lanes,
							      _mm512_sub_ps(r[a][0], r[a][1]));
					_mm512_mask_storeu_ps(m + (size_t)(a * 4 + 3) * oT, G->lanes,
							      _mm512_sub_ps(z, r[a][1]));
				}
			}
		}
}
/* U[16][o][c] = G g G^T, sixteen c per step (gathers of stride 9); one o per item */
W_ATTR static void wt_transform16(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oc = (size_t)s->o * s->c;
	__m512i nine = lanes_stride(9, 0);
	__m512 h = _mm512_set1_ps(0.5f), z = _mm512_setzero_ps();
	for (size_t o = o0; o < o1; o++)
		for (int c = 0; c < s->c; c += 16) {
			__mmask16 m = (__mmask16)(s->c - c >= 16 ? 0xffff : (1u << (s->c - c)) - 1);
			const float *w = j->w + (o * s->c + (size_t)c) * 9;
			__m512 g[9], t[4][3];
			for (int k = 0; k < 9; k++)
				g[k] = _mm512_mask_i32gather_ps(z, m, nine, w + k, 4);
			for (int q = 0; q < 3; q++) { /* t = G g */
				t[0][q] = g[q];
				t[1][q] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(g[q], g[3 + q]), g[6 + q]));
				t[2][q] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(g[q], g[3 + q]), g[6 + q]));
				t[3][q] = g[6 + q];
			}
			float *u = j->U + o * s->c + (size_t)c;
			for (int i = 0; i < 4; i++) { /* u = t G^T */
				__m512 a = t[i][0], b = t[i][1], e = t[i][2];
				_mm512_mask_storeu_ps(u + (size_t)(i * 4 + 0) * oc, m, a);
				_mm512_mask_storeu_ps(u + (size_t)(i * 4 + 1) * oc, m,
						      _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(a, b), e)));
				_mm512_mask_storeu_ps(u + (size_t)(i * 4 + 2) * oc, m,
						      _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(a, b), e)));
				_mm512_mask_storeu_ps(u + (size_t)(i * 4 + 3) * oc, m, e);
			}
		}
}

/* dw[o][c] = G^T dU G, sixteen c per step (scatters of stride 9); one o per item */
W_ATTR static void wt_grad16(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oc = (size_t)s->o * s->c;
	__m512i nine = lanes_stride(9, 0);
	__m512 h = _mm512_set1_ps(0.5f);
	for (size_t o = o0; o < o1; o++)
		for (int c = 0; c < s->c; c += 16) {
			__mmask16 m = (__mmask16)(s->c - c >= 16 ? 0xffff : (1u << (s->c - c)) - 1);
			const float *u = j->U + o * s->c + (size_t)c;
			__m512 du[4][4], t[3][4];
			for (int k = 0; k < 16; k++)
				du[k / 4][k % 4] = _mm512_maskz_loadu_ps(m, u + (size_t)k * oc);
			for (int q = 0; q < 4; q++) { /* t = G^T du */
				__m512 p = _mm512_mul_ps(h, _mm512_add_ps(du[1][q], du[2][q]));
				t[0][q] = _mm512_add_ps(du[0][q], p);
				t[1][q] = _mm512_mul_ps(h, _mm512_sub_ps(du[1][q], du[2][q]));
				t[2][q] = _mm512_add_ps(p, du[3][q]);
			}
			float *g = j->dw + (o * s->c + (size_t)c) * 9;
			for (int a = 0; a < 3; a++) { /* g = t G */
				__m512 p = _mm512_mul_ps(h, _mm512_add_ps(t[a][1], t[a][2]));
				_mm512_mask_i32scatter_ps(g + a * 3 + 0, m, nine, _mm512_add_ps(t[a][0], p), 4);
				_mm512_mask_i32scatter_ps(g + a * 3 + 1, m, nine,
							  _mm512_mul_ps(h, _mm512_sub_ps(t[a][1], t[a][2])), 4);
				_mm512_mask_i32scatter_ps(g + a * 3 + 2, m, nine, _mm512_add_ps(p, t[a][3]), 4);
			}
		}
}
#endif

/* dw[o][c] = G^T dU[.][o][c] G for every c; one o per item */
static void wt_grad(void *ctx, size_t o0, size_t o1, int tid)
{
	wjob *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t oc = (size_t)s->o * s->c;
	for (size_t i = o0 * s->c; i < o1 * s->c; i++) {
		float du[4][4], t[3][4];
		for (int k = 0; k < 16; k++)
			du[k / 4][k % 4] = j->U[(size_t)k * oc + i];
		for (int q = 0; q < 4; q++) { /* t = G^T du: G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
			t[0][q] = du[0][q] + 0.5f * (du[1][q] + du[2][q]);
			t[1][q] = 0.5f * (du[1][q] - du[2][q]);
			t[2][q] = 0.5f * (du[1][q] + du[2][q]) + du[3][q];
		}
		float *g = j->dw + i * 9;
		for (int a = 0; a < 3; a++) { /* g = t G */
			g[a * 3 + 0] = t[a][0] + 0.5f * (t[a][1] + t[a][2]);
			g[a * 3 + 1] = 0.5f * (t[a][1] - t[a][2]);
			g[a * 3 + 2] = 0.5f * (t[a][1] + t[a][2]) + t[a][3];
		}
	}
}

/* C[xi] (acc: +)= op(A[xi]) op(B[xi]) for the 16 tile positions xi, as one
 * batched GEMM: A[xi] is M x K at a + xi * M * K (lda K, or lda M with ta),
 * B[xi] K x N at b + xi * K * N (ldb N, or K with tb), C[xi] at c + xi * M * N. */
static void gemm16(tl_backend *be, int M, int N, int K, const float *a, int ta, const float *b,
		   int tb, float *c, int acc)
{
	tl_gemm_matrix ma[16], mb[16];
	tl_gemm_src as[16], bs[16];
	float *cs[16];
	for (int k = 0; k < 16; k++) {
		ma[k] = (tl_gemm_matrix){a + (size_t)k * M * K, ta ? M : K, ta, 1.0f};
		mb[k] = (tl_gemm_matrix){b + (size_t)k * K * N, tb ? K : N, tb, 1.0f};
		as[k] = tl_gemm_matrix_a(&ma[k]);
		bs[k] = tl_gemm_matrix_b(&mb[k]);
		cs[k] = c + (size_t)k * M * N;
	}
	tl_sgemm_batch(be->pool, 16, M, N, K, as, bs, cs, N, acc);
}

/* The transforms: sixteen tiles per AVX-512 step where the CPU has it. */
static tl_pool_fn pick(tl_pool_fn scalar, tl_pool_fn wide, const wjob *j)
{
	return j->grp ? wide : scalar;
}

static wgroup *lanes_for(const tl_conv_shape *s, int th, int tw)
{
#if defined(__x86_64__)
	int ng;
	if (tl_cpu_detect() == TL_CPU_AVX512)
		return groups_new(s, th, tw, &ng);
#endif
	(void)s, (void)th, (void)tw;
	return NULL;
}

#if !defined(__x86_64__)
#define wt_transform16 wt_transform
#define wt_grad16 wt_grad
#define in_transform16 in_transform
#define out_transform16 out_transform
#define dy_transform16 dy_transform
#endif

static int chunk(const tl_conv_shape *s, int tiles)
{
	size_t per = (size_t)16 * (s->c > s->o ? s->c : s->o) * tiles;
	size_t nb = TL_WINO_FLOATS / (per ? per : 1);
	if (nb < 1)
		nb = 1;
	return nb > (size_t)s->n ? s->n : (int)nb;
}

#ifndef TL_WINO_LOCAL_FLOATS
#define TL_WINO_LOCAL_FLOATS (384u << 10) /* one thread's V + M for an image chunk (1.5 MiB) */
#endif
#ifndef TL_WINO_LOCAL_U
#define TL_WINO_LOCAL_U (1u << 20) /* largest 16 x O x C (U, dU) for the per-thread
				    * pipeline: bigger ones stream from memory for
				    * every chunk (measured slower at block4) */
#endif

/* The per-thread pipeline: a thread takes a chunk of images and runs its
 * input transform, the 16 products and the output transform back to back,
 * so V and M stay in its cache and threads meet once, not per stage. */
typedef struct {
	wjob j;
	tl_gemm_plan plan; /* forward: U[k] (O x C) packed */
	float *ap;	   /* the 16 packed U */
	size_t a_floats;
	int nbc, n_chunks, slices;
	int gpc; /* > 0: a chunk is gpc groups of 16 tiles of one image (big images) */
	float **V, **M, **panel, **apk; /* per thread */
	float **dU;			 /* per slice (weight gradient) */
	tl_pool_fn in, out, dyt;
} fused;

static int local_images(const tl_conv_shape *s, int tpi)
{
	size_t per = (size_t)16 * (size_t)(s->c + s->o) * (size_t)tpi;
	size_t nb = TL_WINO_LOCAL_FLOATS / (per ? per : 1);
	if (nb < 1)
		nb = 1;
	return nb > (size_t)s->n ? s->n : (int)nb;
}

static wjob chunk_job(const fused *f, int ch, int tid)
{
	wjob j = f->j;
	int tpi = j.th * j.tw;
	if (f->gpc) { /* part of one image */
		int per = (tpi + 16 * f->gpc - 1) / (16 * f->gpc);
		j.n0 = ch / per;
		j.nb = 1;
		j.t_lo = ch % per * 16 * f->gpc;
		j.t_hi = j.t_lo + 16 * f->gpc < tpi ? j.t_lo + 16 * f->gpc : tpi;
	} else {
		j.n0 = ch * f->nbc;
		j.nb = j.s->n - j.n0 < f->nbc ? j.s->n - j.n0 : f->nbc;
	}
	j.T = (size_t)j.nb * (j.t_hi - j.t_lo);
	j.V = f->V[tid];
	j.M = f->M[tid];
	return j;
}

/* ap[k] = U[k] packed; one k per item */
static void pack_u(void *ctx, size_t k0, size_t k1, int tid)
{
	fused *f = ctx;
	size_t oc = (size_t)f->j.s->o * f->j.s->c;
	for (size_t k = k0; k < k1; k++) {
		tl_gemm_matrix m = {f->j.U + k * oc, f->j.s->c, 0, 1.0f};
		tl_gemm_plan_pack_a(&f->plan, tl_gemm_matrix_a(&m), f->ap + k * f->a_floats);
	}
}

static void fwd_chunks(void *ctx, size_t c0, size_t c1, int tid)
{
	fused *f = ctx;
	const tl_conv_shape *s = f->j.s;
	for (size_t ch = c0; ch < c1; ch++) {
		wjob j = chunk_job(f, (int)ch, tid);
		f->in(&j, 0, (size_t)s->c, tid);
		for (int k = 0; k < 16; k++) { /* M[k] = U[k] . V[k] */
			tl_gemm_matrix v = {j.V + (size_t)k * s->c * j.T, (int)j.T, 0, 1.0f};
			tl_gemm_plan_run(&f->plan, f->ap + k * f->a_floats, (int)j.T, tl_gemm_matrix_b(&v),
					 j.M + (size_t)k * s->o * j.T, (int)j.T, 0, f->panel[tid]);
		}
		f->out(&j, 0, (size_t)s->o, tid);
	}
}

/* Slice sl sums the chunks sl, sl + slices, ... into dU[sl] (a fixed split,
 * so the sums do not depend on which thread ran what). */
static void dw_slices(void *ctx, size_t s0, size_t s1, int tid)
{
	fused *f = ctx;
	const tl_conv_shape *s = f->j.s;
	size_t oc = (size_t)s->o * s->c;
	for (size_t sl = s0; sl < s1; sl++)
		for (int ch = (int)sl, first = 1; ch < f->n_chunks; ch += f->slices, first = 0) {
			wjob j = chunk_job(f, ch, tid);
			f->in(&j, 0, (size_t)s->c, tid);
			f->dyt(&j, 0, (size_t)s->o, tid);
			tl_gemm_plan pl;
			tl_gemm_plan_init(&pl, s->o, (int)j.T);
			for (int k = 0; k < 16; k++) { /* dU[k] (+)= dM[k] . V[k]^T */
				tl_gemm_matrix a = {j.M + (size_t)k * s->o * j.T, (int)j.T, 0, 1.0f};
				tl_gemm_matrix b = {j.V + (size_t)k * s->c * j.T, (int)j.T, 1, 1.0f};
				tl_gemm_plan_pack_a(&pl, tl_gemm_matrix_a(&a), f->apk[tid]);
				tl_gemm_plan_run(&pl, f->apk[tid], s->c, tl_gemm_matrix_b(&b),
						 f->dU[sl] + k * oc, s->c, !first, f->panel[tid]);
			}
		}
}

/* dU[0] += dU[1] + ... in slice order; rows of 16 x O x C in items */
static void sum_du(void *ctx, size_t i0, size_t i1, int tid)
{
	fused *f = ctx;
	size_t row = (size_t)f->j.s->c;
	for (int sl = 1; sl < f->slices; sl++)
		for (size_t i = i0; i < i1; i++) {
			float *d = f->dU[0] + i * row;
			const float *p = f->dU[sl] + i * row;
			for (size_t c = 0; c < row; c++)
				d[c] += p[c];
		}
}

/* Per-thread buffers for chunks of nbc images (apk: dM packing, dW only). */
static void fused_init(fused *f, tl_backend *be, int dwpath)
{
	const tl_conv_shape *s = f->j.s;
	int nt = tl_pool_size(be->pool), tpi = f->j.th * f->j.tw;
	size_t per_tile = (size_t)16 * (size_t)(s->c + s->o), T;
	if (per_tile * tpi <= TL_WINO_LOCAL_FLOATS) { /* whole images */
		f->nbc = local_images(s, tpi);
		f->n_chunks = (s->n + f->nbc - 1) / f->nbc;
		T = (size_t)f->nbc * tpi;
	} else { /* an image is too big: groups of 16 tiles of it */
		f->gpc = (int)(TL_WINO_LOCAL_FLOATS / (per_tile * 16));
		if (f->gpc < 1)
			f->gpc = 1;
		f->nbc = 1;
		f->n_chunks = s->n * ((tpi + 16 * f->gpc - 1) / (16 * f->gpc));
		T = (size_t)16 * f->gpc;
	}
	f->V = calloc((size_t)nt, sizeof *f->V);
	f->M = calloc((size_t)nt, sizeof *f->M);
	f->panel = calloc((size_t)nt, sizeof *f->panel);
	f->apk = calloc((size_t)nt, sizeof *f->apk);
	TL_CHECK(f->V && f->M && f->panel && f->apk);
	/* the largest product a thread runs: U (o x c) . V, or dM (o x T) . V^T */
	tl_gemm_plan big;
	tl_gemm_plan_init(&big, s->o, (int)(dwpath ? T : (size_t)s->c));
	for (int t = 0; t < nt; t++) {
		f->V[t] = tl_scratch_get((size_t)16 * s->c * T);
		f->M[t] = tl_scratch_get((size_t)16 * s->o * T);
		f->panel[t] = tl_scratch_get(tl_gemm_plan_panel_floats(&big));
		f->apk[t] = dwpath ? tl_scratch_get(tl_gemm_plan_a_floats(&big)) : NULL;
	}
	f->in = pick(in_transform, in_transform16, &f->j);
	f->out = pick(out_transform, out_transform16, &f->j);
	f->dyt = pick(dy_transform, dy_transform16, &f->j);
}

static void fused_free(fused *f, tl_backend *be)
{
	int nt = tl_pool_size(be->pool);
	for (int t = 0; t < nt; t++) {
		tl_scratch_put(f->V[t]);
		tl_scratch_put(f->M[t]);
		tl_scratch_put(f->panel[t]);
		tl_scratch_put(f->apk[t]);
	}
	free(f->V), free(f->M), free(f->panel), free(f->apk);
	free((void *)f->j.grp);
}

/* The forward pass as whole-batch stages with a batched GEMM between them:
 * for U too big to stay in cache next to every thread's chunk. */
static void wino_fwd_batched(tl_backend *be, const tl_conv_shape *s, const float *x,
			     const float *w, const float *b, int relu, float *y, int acc)
{
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, nbmax = chunk(s, th * tw);
	size_t Tmax = (size_t)nbmax * th * tw;
	wjob j = {.s = s, .th = th, .tw = tw, .t_hi = th * tw, .x = x, .w = w, .b = b, .relu = relu,
		  .acc = acc, .y = y};
	j.grp = lanes_for(s, th, tw);
	j.U = tl_scratch_get((size_t)16 * s->o * s->c);
	j.V = tl_scratch_get((size_t)16 * s->c * Tmax);
	j.M = tl_scratch_get((size_t)16 * s->o * Tmax);
	tl_pool_split(be->pool, (size_t)s->o, pick(wt_transform, wt_transform16, &j), &j);
	for (j.n0 = 0; j.n0 < s->n; j.n0 += nbmax) {
		j.nb = s->n - j.n0 < nbmax ? s->n - j.n0 : nbmax;
		j.T = (size_t)j.nb * th * tw;
		tl_pool_split(be->pool, (size_t)s->c, pick(in_transform, in_transform16, &j), &j);
		gemm16(be, s->o, (int)j.T, s->c, j.U, 0, j.V, 0, j.M, 0);
		tl_pool_split(be->pool, (size_t)s->o, pick(out_transform, out_transform16, &j), &j);
	}
	free((void *)j.grp);
	tl_scratch_put(j.U);
	tl_scratch_put(j.V);
	tl_scratch_put(j.M);
}

static unsigned long wino_runs;

unsigned long tl_wino_runs(void)
{
	return __atomic_load_n(&wino_runs, __ATOMIC_RELAXED);
}

void tl_wino_fwd(tl_backend *be, const tl_conv_shape *s, const float *x, const float *w,
		 const float *b, int relu, float *y, int acc)
{
	__atomic_add_fetch(&wino_runs, 1, __ATOMIC_RELAXED);
	if ((size_t)16 * s->o * s->c > TL_WINO_LOCAL_U) {
		wino_fwd_batched(be, s, x, w, b, relu, y, acc);
		return;
	}
	fused f;
	memset(&f, 0, sizeof f);
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2;
	f.j = (wjob){.s = s, .th = th, .tw = tw, .t_hi = th * tw, .x = x, .w = w, .b = b,
		     .relu = relu, .acc = acc, .y = y};
	f.j.grp = lanes_for(s, th, tw);
	fused_init(&f, be, 0);
	f.j.U = tl_scratch_get((size_t)16 * s->o * s->c);
	tl_pool_split(be->pool, (size_t)s->o, pick(wt_transform, wt_transform16, &f.j), &f.j);
	tl_gemm_plan_init(&f.plan, s->o, s->c);
	f.a_floats = tl_gemm_plan_a_floats(&f.plan);
	f.ap = tl_scratch_get(16 * f.a_floats);
	tl_pool_for(be->pool, 16, 1, pack_u, &f);
	tl_scratch_put(f.j.U);
	tl_pool_for(be->pool, (size_t)f.n_chunks, 1, fwd_chunks, &f);
	tl_scratch_put(f.ap);
	fused_free(&f, be);
}

/* Weight gradient through image chunks on each thread, summed per slice. */
static void wino_dw_fused(tl_backend *be, const tl_conv_shape *s, const float *x,
			  const float *dy, float *dw)
{
	fused f;
	memset(&f, 0, sizeof f);
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2;
	size_t oc = (size_t)s->o * s->c;
	f.j = (wjob){.s = s, .th = th, .tw = tw, .t_hi = th * tw, .x = x, .dy = dy};
	f.j.grp = lanes_for(s, th, tw);
	fused_init(&f, be, 1);
	int nt = tl_pool_size(be->pool);
	f.slices = nt < f.n_chunks ? nt : f.n_chunks;
	f.dU = calloc((size_t)f.slices, sizeof *f.dU);
	TL_CHECK(f.dU);
	for (int sl = 0; sl < f.slices; sl++)
		f.dU[sl] = tl_scratch_get(16 * oc);
	tl_pool_for(be->pool, (size_t)f.slices, 1, dw_slices, &f);
	if (f.slices > 1)
		tl_pool_split(be->pool, 16 * (size_t)s->o, sum_du, &f);
	f.j.U = f.dU[0];
	f.j.dw = dw;
	tl_pool_split(be->pool, (size_t)s->o, pick(wt_grad, wt_grad16, &f.j), &f.j);
	for (int sl = 0; sl < f.slices; sl++)
		tl_scratch_put(f.dU[sl]);
	free(f.dU);
	fused_free(&f, be);
}

void tl_wino_dw(tl_backend *be, const tl_conv_shape *s, const float *x, const float *dy,
		float *dw)
{
	__atomic_add_fetch(&wino_runs, 1, __ATOMIC_RELAXED);
	if ((size_t)16 * s->o * s->c <= TL_WINO_LOCAL_U) {
		wino_dw_fused(be, s, x, dy, dw);
		return;
	}
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, nbmax = chunk(s, th * tw);
	size_t Tmax = (size_t)nbmax * th * tw, oc = (size_t)s->o * s->c;
	wjob j = {.s = s, .th = th, .tw = tw, .t_hi = th * tw, .x = x, .dy = dy};
	j.grp = lanes_for(s, th, tw);
	float *dU = tl_scratch_get(16 * oc);
	j.V = tl_scratch_get((size_t)16 * s->c * Tmax);
	j.M = tl_scratch_get((size_t)16 * s->o * Tmax);
	for (j.n0 = 0; j.n0 < s->n; j.n0 += nbmax) {
		j.nb = s->n - j.n0 < nbmax ? s->n - j.n0 : nbmax;
		j.T = (size_t)j.nb * th * tw;
		tl_pool_split(be->pool, (size_t)s->c, pick(in_transform, in_transform16, &j), &j);
		tl_pool_split(be->pool, (size_t)s->o, pick(dy_transform, dy_transform16, &j), &j);
		/* dU[k] (+)= dM[k] . V[k]^T */
		gemm16(be, s->o, s->c, (int)j.T, j.M, 0, j.V, 1, dU, j.n0 > 0);
	}
	j.U = dU;
	j.dw = dw;
	tl_pool_split(be->pool, (size_t)s->o, pick(wt_grad, wt_grad16, &j), &j);
	free((void *)j.grp);
	tl_scratch_put(dU);
	tl_scratch_put(j.V);
	tl_scratch_put(j.M);
}
