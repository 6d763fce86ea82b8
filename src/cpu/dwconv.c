/* dwconv.c - the fast backend's depthwise convolution (see fastops.h).
 *
 * Each plane is first copied zero-padded (ph/pw before, and after as far
 * as the last window reaches: asymmetric padding is just a longer copy);
 * for stride 2 the padded rows are split into even and odd columns as they
 * are copied, for other strides into sw phases.  Then each output row is a
 * sum of taps, out[i] = sum_k w[k] src[k][i], one tap per (ky, kx) whose
 * row is not padding, src[k] pointing into phase kx % sw of that padded
 * row at offset kx / sw: every tap is a contiguous load and every output
 * of the row is interior, so the SIMD loop (two vectors at a time, masked
 * tail) covers the row; the scalar level runs the same sum in C.
 *
 * Backward, per plane: the ReLU mask and the bias-gradient sum (vec.h);
 * the input gradient for stride 1 is the same forward loop on dy with the
 * kernel flipped (padding k - 1 - p); for larger strides each input row is
 * computed phase by phase (the input columns congruent to r mod sw get a
 * fixed set of taps at contiguous offsets of zero-padded dy rows) and the
 * phases interleaved back; the weight gradient is a per-tap dot product of
 * dy rows with the forward taps, accumulated in vector lanes.  The parts
 * are summed over the batch per channel in a fixed order, so results do
 * not depend on the thread count.  Kernels over 64 taps (never in the
 * models) take the reference loops. */
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/fastops.h"
#include "cpu/ref.h"
#include "cpu/scratch.h"
#include "cpu/vec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define DW_MAXT 64 /* taps per output row the loops take (kernels up to 8x8) */
#define DW_LANES 16 /* weight-gradient accumulator slot per tap, in floats */

/* The taps of one output row (see above). */
typedef struct {
	int n;
	const float *src[DW_MAXT];
	float w[DW_MAXT];
	int lo[DW_MAXT], hi[DW_MAXT];
	int widx[DW_MAXT]; /* ky * kw + kx */
	int ilo, ihi;      /* the interior: every tap in range */
} dtaps;

/* The sum of the taps in range at output i. */
static inline float taps_at(const dtaps *t, int i)
{
	float v = 0.0f;
	for (int k = 0; k < t->n; k++)
		if (i >= t->lo[k] && i < t->hi[k])
			v += t->w[k] * t->src[k][i];
	return v;
}

/* out[i] = (acc ? out[i] : 0) + bias + taps, then relu, for i in [i0, i1). */
static void row_scalar(float *out, const dtaps *t, int i0, int i1, float bias, int relu, int acc)
{
	for (int i = i0; i < i1; i++) {
		float v = (acc ? out[i] : 0.0f) + bias + taps_at(t, i);
		out[i] = relu && v < 0.0f ? 0.0f : v;
	}
}

/* The SIMD loops of one level; each returns how far it got. */
typedef struct {
	/* the interior of row_scalar from i0 */
	int (*fwd_row)(float *out, const dtaps *t, int i0, float bias, int relu, int acc);
	/* vacc[widx[k] * DW_LANES + lane] += g[i] * src[k][i] over the interior */
	int (*dot_row)(const float *g, const dtaps *t, float *vacc);
	/* e[m] = src[2m], o[m] = src[2m + 1] for m < pairs */
	int (*deint2)(const float *src, int pairs, float *e, float *o);
	/* dst[2m] (+)= a[m], dst[2m + 1] (+)= b[m] for m < pairs */
	int (*int2)(float *dst, const float *a, const float *b, int pairs, int acc);
} dw_kernels;

static int fwd_row_none(float *out, const dtaps *t, int i0, float bias, int relu, int acc)
{
	return i0;
}
static int dot_row_none(const float *g, const dtaps *t, float *vacc)
{
	return t->ilo;
}
static int deint2_none(const float *src, int pairs, float *e, float *o)
{
	return 0;
}
static int int2_none(float *dst, const float *a, const float *b, int pairs, int acc)
{
	return 0;
}

static const dw_kernels k_scalar = {fwd_row_none, dot_row_none, deint2_none, int2_none};

#if defined(__x86_64__)
/* SUF: name suffix, T: target, V: vector, W: lanes; MLD/MST: masked load
 * and store of the first r lanes (the rest read as zero, not touched). */
#define DW_FUNCS(SUF, T, V, W, LD, ST, MLD, MST, FMA, ADD, MAX, SET1, ZERO, DEINT, INTER)       \
	__attribute__((target(T))) static int fwd_row_##SUF(float *out, const dtaps *t, int i,   \
							     float bias, int relu, int acc)      \
	{                                                                                        \
		V b = SET1(bias), z = ZERO();                                                    \
		int end = t->ihi;                                                                \
		for (; i + 2 * W <= end; i += 2 * W) {                                           \
			V a0 = acc ? ADD(LD(out + i), b) : b;                                    \
			V a1 = acc ? ADD(LD(out + i + W), b) : b;                                \
			for (int k = 0; k < t->n; k++) {                                         \
				V wk = SET1(t->w[k]);                                            \
				a0 = FMA(LD(t->src[k] + i), wk, a0);                             \
				a1 = FMA(LD(t->src[k] + i + W), wk, a1);                         \
			}                                                                        \
			if (relu) {                                                              \
				a0 = MAX(z, a0); /* NaN stays NaN */                             \
				a1 = MAX(z, a1);                                                 \
			}                                                                        \
			ST(out + i, a0);                                                         \
			ST(out + i + W, a1);                                                     \
		}                                                                                \
		for (; i < end; i += W) {                                                        \
			int r = end - i < W ? end - i : W;                                       \
			V a0 = acc ? ADD(MLD(out + i, r), b) : b;                                \
			for (int k = 0; k < t->n; k++)                                           \
				a0 = FMA(MLD(t->src[k] + i, r), SET1(t->w[k]), a0);              \
			if (relu)                                                                \
				a0 = MAX(z, a0);                                                 \
			MST(out + i, r, a0);                                                     \
		}                                                                                \
		return end > i ? i : end;                                                        \
	}                                                                                        \
	__attribute__((target(T))) static int dot_row_##SUF(const float *g, const dtaps *t,      \
							     float *vacc)                        \
	{                                                                                        \
		int i0 = t->ilo, i1 = t->ihi;                                                    \
		for (int k = 0; k < t->n; k++) {                                                 \
			float *slot = vacc + (size_t)t->widx[k] * DW_LANES;                      \
			const float *s = t->src[k];                                              \
			V a0 = LD(slot), a1 = ZERO();                                            \
			int i = i0;                                                              \
			for (; i + 2 * W <= i1; i += 2 * W) {                                    \
				a0 = FMA(LD(g + i), LD(s + i), a0);                              \
				a1 = FMA(LD(g + i + W), LD(s + i + W), a1);                      \
			}                                                                        \
			for (; i < i1; i += W) {                                                 \
				int r = i1 - i < W ? i1 - i : W;                                 \
				a0 = FMA(MLD(g + i, r), MLD(s + i, r), a0);                      \
			}                                                                        \
			ST(slot, ADD(a0, a1));                                                   \
		}                                                                                \
		return i1;                                                                       \
	}                                                                                        \
	__attribute__((target(T))) static int deint2_##SUF(const float *src, int pairs, float *e, \
							    float *o)                            \
	{                                                                                        \
		int m = 0;                                                                       \
		for (; m + W <= pairs; m += W) {                                                 \
			V a = LD(src + 2 * m), b = LD(src + 2 * m + W), ev, od;                  \
			DEINT(a, b, ev, od);                                                     \
			ST(e + m, ev);                                                           \
			ST(o + m, od);                                                           \
		}                                                                                \
		return m;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static int int2_##SUF(float *dst, const float *a,            \
							  const float *b, int pairs, int acc)    \
	{                                                                                        \
		int m = 0;                                                                       \
		for (; m + W <= pairs; m += W) {                                                 \
			V lo, hi;                                                                \
			INTER(LD(a + m), LD(b + m), lo, hi);                                     \
			if (acc) {                                                               \
				lo = ADD(lo, LD(dst + 2 * m));                                   \
				hi = ADD(hi, LD(dst + 2 * m + W));                               \
			}                                                                        \
			ST(dst + 2 * m, lo);                                                     \
			ST(dst + 2 * m + W, hi);                                                 \
		}                                                                                \
		return m;                                                                        \
	}                                                                                        \
	static const dw_kernels k_##SUF = {fwd_row_##SUF, dot_row_##SUF, deint2_##SUF, int2_##SUF};

#define MLD512(p, r) _mm512_maskz_loadu_ps((__mmask16)((1u << (r)) - 1), (p))
#define MST512(p, r, v) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (r)) - 1), (v))
#define DEINT512(a, b, ev, od)                                                                 \
	do {                                                                                   \
		ev = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, \
								 20, 22, 24, 26, 28, 30),      \
					    b);                                                \
		od = _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, \
								 21, 23, 25, 27, 29, 31),      \
					    b);                                                \
	} while (0)
#define INTER512(a, b, lo, hi)                                                                 \
	do {                                                                                   \
		lo = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, \
								 5, 21, 6, 22, 7, 23),         \
					    b);                                                \
		hi = _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12,  \
								 28, 13, 29, 14, 30, 15, 31),  \
					    b);                                                \
	} while (0)

static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
#define MASK256(r) _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - (r)))
#define MLD256(p, r) _mm256_maskload_ps((p), MASK256(r))
#define MST256(p, r, v) _mm256_maskstore_ps((p), MASK256(r), (v))
#define DEINT256(a, b, ev, od)                                                                 \
	do {                                                                                   \
		ev = _mm256_castpd_ps(_mm256_permute4x64_pd(                                   \
			_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),    \
			_MM_SHUFFLE(3, 1, 2, 0)));                                             \
		od = _mm256_castpd_ps(_mm256_permute4x64_pd(                                   \
			_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))),    \
			_MM_SHUFFLE(3, 1, 2, 0)));                                             \
	} while (0)
#define INTER256(a, b, lo, hi)                                                                 \
	do {                                                                                   \
		__m256 l_ = _mm256_unpacklo_ps(a, b), h_ = _mm256_unpackhi_ps(a, b);           \
		lo = _mm256_permute2f128_ps(l_, h_, 0x20);                                     \
		hi = _mm256_permute2f128_ps(l_, h_, 0x31);                                     \
	} while (0)

DW_FUNCS(avx512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, MLD512, MST512,
	 _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps, _mm512_set1_ps, _mm512_setzero_ps,
	 DEINT512, INTER512)
DW_FUNCS(avx2, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, MLD256, MST256,
	 _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps, _mm256_set1_ps, _mm256_setzero_ps,
	 DEINT256, INTER256)
#endif

static const dw_kernels *kernels(void)
{
#if defined(__x86_64__)
	tl_cpu_level l = tl_cpu_detect();
	if (l == TL_CPU_AVX512)
		return &k_avx512;
	if (l == TL_CPU_AVX2)
		return &k_avx2;
#endif
	return &k_scalar;
}

/* ---- one plane ---- */

/* A plane zero-padded to hp x wp (the image at rows ph.., columns pw..),
 * as sw column phases: phase q, row y, entry m is padded[y][m*sw + q].
 * Written to buf (sw * hp * ceil(wp / sw) floats, plus a row of wp + sw
 * floats of scratch after it); the rows of padding above and below are
 * left unwritten, as nothing reads them. */
typedef struct {
	const float *base;
	size_t ld, pst; /* row stride, phase stride */
} phased;

static size_t phased_floats(int hp, int wp, int sw)
{
	size_t M = (size_t)(wp + sw - 1) / sw;
	return (size_t)sw * hp * M + (size_t)wp + sw;
}

static phased pad_plane(const dw_kernels *K, const float *xp, int h, int w, int ph, int pw, int hp,
			int wp, int sw, float *buf)
{
	int M = (wp + sw - 1) / sw;
	phased P = {buf, (size_t)M, (size_t)hp * M};
	float *row = buf + (size_t)sw * P.pst; /* the padded row before its split */
	for (int y = 0; y < hp; y++) {
		int iy = y - ph;
		if (iy < 0 || iy >= h)
			continue; /* rows of padding are never read (fwd_taps skips them) */
		float *dst = sw == 1 ? buf + (size_t)y * M : row;
		int n = w < wp - pw ? w : wp - pw;
		memset(dst, 0, sizeof(float) * (size_t)pw);
		memcpy(dst + pw, xp + (size_t)iy * w, sizeof(float) * (size_t)n);
		memset(dst + pw + n, 0, sizeof(float) * (size_t)(M * sw - pw - n));
		if (sw == 1)
			continue;
		float *ph0 = buf + (size_t)y * M;
		int m = 0;
		if (sw == 2)
			m = K->deint2(row, M, ph0, ph0 + P.pst);
		for (; m < M; m++)
			for (int q = 0; q < sw; q++)
				ph0[(size_t)q * P.pst + m] = row[m * sw + q];
	}
	return P;
}

/* Column tap kx of a stride-sw conv reads phase kx % sw at offset kx / sw. */
typedef struct {
	int q[DW_MAXT], off[DW_MAXT];
} coltaps;

static void col_taps(int kw, int sw, coltaps *c)
{
	for (int kx = 0; kx < kw && kx < DW_MAXT; kx++)
		c->q[kx] = kx % sw, c->off[kx] = kx / sw;
}

/* The taps of forward output row oy over the padded plane (weights wc
 * [kh][kw]; NULL: not needed); rows wholly in the padding are left out. */
static void fwd_taps(const tl_conv_shape *s, const phased *P, const coltaps *ct,
		     const float *wc, int oy, dtaps *t)
{
	t->n = 0;
	for (int ky = 0; ky < s->kh; ky++) {
		int y = oy * s->sh + ky;
		if (y < s->ph || y >= s->ph + s->h)
			continue;
		const float *r = P->base + (size_t)y * P->ld;
		for (int kx = 0; kx < s->kw; kx++) {
			int k = t->n++;
			t->src[k] = r + ct->q[kx] * P->pst + ct->off[kx];
			t->w[k] = wc ? wc[ky * s->kw + kx] : 0.0f;
			t->lo[k] = 0;
			t->hi[k] = s->ow;
			t->widx[k] = ky * s->kw + kx;
		}
	}
	t->ilo = 0;
	t->ihi = s->ow;
}

/* The padded size of a plane: the image after ph/pw and the last window. */
static void padded_size(const tl_conv_shape *s, int *hp, int *wp)
{
	int nh = (s->oh - 1) * s->sh + s->kh, nw = (s->ow - 1) * s->sw + s->kw;
	*hp = s->ph + s->h > nh ? s->ph + s->h : nh;
	*wp = s->pw + s->w > nw ? s->pw + s->w : nw;
}

/* y plane (acc: +=) dwconv of one input plane, + bias, relu. */
static void fwd_plane(const dw_kernels *K, const tl_conv_shape *s, const float *xp,
		      const float *wc, float bias, int relu, int acc, float *yp, float *buf)
{
	int hp, wp;
	padded_size(s, &hp, &wp);
	phased P = pad_plane(K, xp, s->h, s->w, s->ph, s->pw, hp, wp, s->sw, buf);
	coltaps ct;
	col_taps(s->kw, s->sw, &ct);
	dtaps t;
	for (int oy = 0; oy < s->oh; oy++) {
		fwd_taps(s, &P, &ct, wc, oy, &t);
		float *out = yp + (size_t)oy * s->ow;
		int i = K->fwd_row(out, &t, 0, bias, relu, acc);
		row_scalar(out, &t, i, s->ow, bias, relu, acc);
	}
}

/* dx plane (acc: +=) for strides above 1, one input row and column phase
 * r at a time: the input columns m*sw + r take the taps kx with
 * (r + pw - kx) divisible by sw, from dy row oy at column m + d,
 * d = (r + pw - kx) / sw; dy rows are padded with zeros so that every such
 * read is in the buffer.  buf: dx_strided_floats(s). */
static void dx_extent(const tl_conv_shape *s, int *L, int *Lp, int *M)
{
	int sw = s->sw;
	*M = (s->w + sw - 1) / sw;
	int dmin = (0 + s->pw - (s->kw - 1)) / sw - 1, dmax = (sw - 1 + s->pw) / sw + 1;
	*L = dmin < 0 ? -dmin : 0;
	int need = *M + dmax > s->ow ? *M + dmax : s->ow;
	*Lp = *L + need + 1;
}

static size_t dx_strided_floats(const tl_conv_shape *s)
{
	int L, Lp, M;
	dx_extent(s, &L, &Lp, &M);
	return (size_t)s->oh * Lp + (size_t)s->sw * M + 16;
}

static void dx_plane_strided(const dw_kernels *K, const tl_conv_shape *s, const float *gp,
			     const float *wc, int acc, float *dxp, float *buf)
{
	int sw = s->sw, L, Lp, M;
	dx_extent(s, &L, &Lp, &M);
	float *pd = buf, *tr = buf + (size_t)s->oh * Lp;
	for (int oy = 0; oy < s->oh; oy++) { /* dy rows, L zeros before, zeros after */
		float *r = pd + (size_t)oy * Lp;
		memset(r, 0, sizeof(float) * (size_t)L);
		memcpy(r + L, gp + (size_t)oy * s->ow, sizeof(float) * (size_t)s->ow);
		memset(r + L + s->ow, 0, sizeof(float) * (size_t)(Lp - L - s->ow));
	}
	int rk[DW_MAXT], rd[DW_MAXT], rn[DW_MAXT + 1]; /* per phase: its taps kx and d */
	int nk = 0;
	for (int r = 0; r < sw && r < DW_MAXT; r++) {
		rn[r] = nk;
		for (int kx = 0; kx < s->kw; kx++) {
			int e = r + s->pw - kx;
			if (e % sw == 0 && nk < DW_MAXT)
				rk[nk] = kx, rd[nk] = e / sw, nk++;
		}
	}
	rn[sw < DW_MAXT ? sw : DW_MAXT] = nk;
	dtaps t;
	for (int iy = 0; iy < s->h; iy++) {
		for (int r = 0; r < sw; r++) {
			int Mr = (s->w - r + sw - 1) / sw;
			t.n = 0;
			for (int ky = 0; ky < s->kh; ky++) {
				int num = iy + s->ph - ky;
				if (num < 0 || num % s->sh || num / s->sh >= s->oh)
					continue;
				const float *row = pd + (size_t)(num / s->sh) * Lp + L;
				for (int j = rn[r]; j < rn[r + 1]; j++) {
					int k = t.n++;
					t.src[k] = row + rd[j];
					t.w[k] = wc[ky * s->kw + rk[j]];
					t.lo[k] = 0;
					t.hi[k] = Mr;
					t.widx[k] = ky * s->kw + rk[j];
				}
			}
			t.ilo = 0;
			t.ihi = Mr;
			float *o = tr + (size_t)r * M;
			int i = K->fwd_row(o, &t, 0, 0.0f, 0, 0);
			row_scalar(o, &t, i, Mr, 0.0f, 0, 0);
		}
		float *dr = dxp + (size_t)iy * s->w;
		int ix = 0;
		if (sw == 2)
			ix = 2 * K->int2(dr, tr, tr + M, s->w / 2, acc);
		for (; ix < s->w; ix++) {
			float v = tr[(size_t)(ix % sw) * M + ix / sw];
			dr[ix] = acc ? dr[ix] + v : v;
		}
	}
}

/* part[ky*kw + kx] = sum over the plane of dy * the input under that tap. */
static void dw_plane(const dw_kernels *K, const tl_conv_shape *s, const float *xp,
		     const float *gp, float *part, float *buf, float *vacc)
{
	int kk = s->kh * s->kw, hp, wp;
	double rest[DW_MAXT];
	memset(vacc, 0, sizeof(float) * (size_t)kk * DW_LANES);
	for (int k = 0; k < kk; k++)
		rest[k] = 0;
	padded_size(s, &hp, &wp);
	phased P = pad_plane(K, xp, s->h, s->w, s->ph, s->pw, hp, wp, s->sw, buf);
	coltaps ct;
	col_taps(s->kw, s->sw, &ct);
	dtaps t;
	for (int oy = 0; oy < s->oh; oy++) {
		fwd_taps(s, &P, &ct, NULL, oy, &t);
		const float *g = gp + (size_t)oy * s->ow;
		int i = K->dot_row(g, &t, vacc); /* up to i in lanes; the rest here */
		if (i < s->ow)
			for (int k = 0; k < t.n; k++) {
				double a = 0;
				for (int ox = i; ox < s->ow; ox++)
					a += (double)g[ox] * t.src[k][ox];
				rest[t.widx[k]] += a;
			}
	}
	for (int k = 0; k < kk; k++) {
		double a = rest[k];
		for (int l = 0; l < DW_LANES; l++)
			a += vacc[(size_t)k * DW_LANES + l];
		part[k] = (float)a;
	}
}

/* ---- the ops, threaded over planes ---- */

typedef struct {
	const dw_kernels *K;
	const tl_conv_shape *s; /* the conv (for dx at stride 1: the flipped one) */
	const tl_conv_shape *orig;
	const float *x, *w, *b, *y;
	float *out, *dy, *dx, *part, *psum;
	int relu, acc, want_dw, want_db;
	size_t buf_floats;
} dw_job;

static void fwd_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	dw_job *j = ctx;
	const tl_conv_shape *s = j->s;
	size_t kk = (size_t)s->kh * s->kw;
	float *buf = tl_scratch_get(j->buf_floats);
	for (size_t pl = p0; pl < p1; pl++) {
		size_t c = pl % (size_t)s->c;
		fwd_plane(j->K, s, j->x + pl * s->h * s->w, j->w + c * kk, j->b ? j->b[c] : 0.0f,
			  j->relu, j->acc, j->out + pl * s->oh * s->ow, buf);
	}
	tl_scratch_put(buf);
}

/* Floats of scratch a plane needs: the padded input (forward, weight
 * gradient) or the padded dy and phase rows (strided dx). */
static size_t plane_buf(const tl_conv_shape *s)
{
	int hp, wp;
	padded_size(s, &hp, &wp);
	size_t a = phased_floats(hp, wp, s->sw), b = s->sw > 1 ? dx_strided_floats(s) : 0;
	return (a > b ? a : b) + 16;
}

static int dw_supported(const tl_conv_shape *s)
{
	return s->kh * s->kw <= DW_MAXT && s->o == s->c && s->sh >= 1 && s->sw >= 1 &&
	       s->sw < DW_MAXT;
}

static void dwconv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x_m, tl_mem w_m, tl_mem b_m,
		       int relu, tl_mem y_m)
{
	const float *x = tl_cpu_f(x_m);
	const float *w = tl_cpu_f(w_m);
	const float *b = tl_cpu_f(b_m);
	float *y = tl_cpu_f(y_m);
	if (!dw_supported(s)) {
		tl_ref_dwconv_fwd_f32(s, x, w, b, relu, y);
		return;
	}
	dw_job j = {.K = kernels(), .s = s, .x = x, .w = w, .b = b, .out = y, .relu = relu,
		    .buf_floats = plane_buf(s)};
	tl_pool_split(be->pool, (size_t)s->n * s->c, fwd_planes, &j);
}

/* Per plane: ReLU mask and sum of dy, dx, the weight-gradient part. */
static void bwd_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	dw_job *j = ctx;
	const tl_conv_shape *s = j->orig;
	size_t kk = (size_t)s->kh * s->kw, P = (size_t)s->oh * s->ow, X = (size_t)s->h * s->w;
	float *buf = tl_scratch_get(j->buf_floats), *vacc = tl_scratch_get(kk * DW_LANES);
	for (size_t pl = p0; pl < p1; pl++) {
		size_t c = pl % (size_t)s->c;
		float *g = j->dy + pl * P;
		if (j->relu)
			j->psum[pl] = (float)tl_vec_relu_mask_sum(g, j->y + pl * P, P);
		else if (j->want_db)
			j->psum[pl] = (float)tl_vec_sum(g, P);
		if (j->dx) {
			if (j->s != s) /* stride 1: the flipped forward conv of dy */
				fwd_plane(j->K, j->s, g, j->w + c * kk, 0.0f, 0, j->acc,
					  j->dx + pl * X, buf);
			else
				dx_plane_strided(j->K, s, g, j->w + c * kk, j->acc, j->dx + pl * X,
						 buf);
		}
		if (j->want_dw)
			dw_plane(j->K, s, j->x + pl * X, g, j->part + pl * kk, buf, vacc);
	}
	tl_scratch_put(buf);
	tl_scratch_put(vacc);
}

typedef struct {
	const tl_conv_shape *s;
	const float *part, *psum;
	float *dw, *db;
} red_job;

/* dw[c] = sum over the batch of the plane parts, db[c] likewise: fixed order. */
static void reduce_channels(void *ctx, size_t c0, size_t c1, int tid)
{
	red_job *r = ctx;
	const tl_conv_shape *s = r->s;
	size_t kk = (size_t)s->kh * s->kw;
	for (size_t c = c0; c < c1; c++) {
		if (r->dw)
			for (size_t k = 0; k < kk; k++) {
				double a = 0;
				for (int n = 0; n < s->n; n++)
					a += r->part[((size_t)n * s->c + c) * kk + k];
				r->dw[c * kk + k] = (float)a;
			}
		if (r->db) {
			double a = 0;
			for (int n = 0; n < s->n; n++)
				a += r->psum[(size_t)n * s->c + c];
			r->db[c] = (float)a;
		}
	}
}

static void dwconv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x_m, tl_mem w_m, tl_mem y_m,
		       int relu, tl_mem dy_m, tl_mem dx_m, int acc_dx, tl_mem dw_m, tl_mem db_m)
{
	const float *x = tl_cpu_f(x_m);
	const float *w = tl_cpu_f(w_m);
	const float *y = tl_cpu_f(y_m);
	float *dy = tl_cpu_f(dy_m);
	float *dx = tl_cpu_f(dx_m);
	float *dw = tl_cpu_f(dw_m);
	float *db = tl_cpu_f(db_m);
	if (!dw_supported(s)) {
		tl_ref_dwconv_bwd_f32(s, x, w, y, relu, dy, dx, acc_dx, dw, db);
		return;
	}
	size_t kk = (size_t)s->kh * s->kw, planes = (size_t)s->n * s->c;
	/* dx at stride 1: a forward dwconv of dy with the kernel flipped */
	tl_conv_shape ts = {.n = s->n, .c = s->c, .h = s->oh, .w = s->ow, .o = s->c, .kh = s->kh,
			    .kw = s->kw, .sh = 1, .sw = 1, .ph = s->kh - 1 - s->ph,
			    .pw = s->kw - 1 - s->pw, .oh = s->h, .ow = s->w};
	int flip = dx && s->sh == 1 && s->sw == 1 && ts.ph >= 0 && ts.pw >= 0;
	float *wf = NULL;
	if (flip) {
		wf = tl_scratch_get((size_t)s->c * kk);
		for (size_t c = 0; c < (size_t)s->c; c++)
			for (size_t k = 0; k < kk; k++)
				wf[c * kk + k] = w[c * kk + kk - 1 - k];
	}
	float *part = dw ? tl_scratch_get(planes * kk) : NULL, *psum = tl_scratch_get(planes);
	size_t bf = plane_buf(s), bt = plane_buf(&ts);
	dw_job j = {.K = kernels(), .s = flip ? &ts : s, .orig = s, .x = x, .w = flip ? wf : w,
		    .y = y, .dy = dy, .dx = dx, .part = part, .psum = psum, .relu = relu,
		    .acc = acc_dx, .want_dw = dw != NULL, .want_db = db != NULL,
		    .buf_floats = bf > bt ? bf : bt};
	tl_pool_split(be->pool, planes, bwd_planes, &j);
	if (dw || db) {
		red_job r = {s, part, psum, dw, db};
		tl_pool_split(be->pool, (size_t)s->c, reduce_channels, &r);
	}
	tl_scratch_put(wf);
	tl_scratch_put(part);
	tl_scratch_put(psum);
}

void tl_fast_dwconv_init(tl_backend *be)
{
	be->dwconv_fwd = dwconv_fwd;
	be->dwconv_bwd = dwconv_bwd;
}
