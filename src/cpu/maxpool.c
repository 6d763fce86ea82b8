/* maxpool.c - the fast backend's max pool forward: separable, so a k x k
 * window costs 2k compares instead of k*k, with AVX-512 lanes across the
 * output columns (GoogLeNet's inception branches pool every 3x3 window at
 * stride 1, which made the per-window scalar loop a third of its forward).
 *
 * Pass 1 (per input row r, output column j): the maximum over the row's
 * window columns and the column it came from.  Pass 2 (per output row i):
 * the maximum over the window's rows of pass 1.  Both keep the first
 * maximum in scan order and let NaN win over numbers, so the argmax is the
 * one the row-major window scan of the reference picks: a row's winner is
 * its first maximum, and a later row replaces it only when strictly larger. */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "cpu/cpu.h"
#include "cpu/maxpool.h"

/* Whether candidate v replaces the current maximum m (NaN wins, ties keep m). */
static inline int wins(float v, float m)
{
	return v > m || (isnan(v) && !isnan(m));
}

/* Window of output coordinate o: input [lo, hi) clipped. */
static inline void window(int o, int s, int p, int k, int n, int *lo, int *hi)
{
	int a = o * s - p, b = a + k;
	*lo = a < 0 ? 0 : a;
	*hi = b < n ? b : n;
}

/* Pass 1, scalar: rm[r][j], rc[r][j] for input row r. */
static void rows_scalar(const tl_pool_shape *s, const float *xr, float *rm, int32_t *rc)
{
	for (int j = 0; j < s->ow; j++) {
		int lo, hi;
		window(j, s->s, s->p, s->k, s->w, &lo, &hi);
		float m = -INFINITY;
		int32_t c = -1;
		for (int x = lo; x < hi; x++)
			if (c < 0 || wins(xr[x], m))
				m = xr[x], c = x;
		rm[j] = m;
		rc[j] = c;
	}
}

/* Pass 2, scalar: output row i from the pass-1 rows. */
static void cols_scalar(const tl_pool_shape *s, int i, const float *rm, const int32_t *rc,
			float *yr, int32_t *ar)
{
	int lo, hi;
	window(i, s->s, s->p, s->k, s->h, &lo, &hi);
	for (int j = 0; j < s->ow; j++) {
		float m = -INFINITY;
		int32_t a = -1;
		for (int r = lo; r < hi; r++) {
			const float v = rm[(size_t)r * s->ow + j];
			int32_t c = rc[(size_t)r * s->ow + j];
			if (c >= 0 && (a < 0 || wins(v, m)))
				m = v, a = r * s->w + c;
		}
		yr[j] = m;
		ar[j] = a;
	}
}

/* v replaces m in the lanes of `valid` where it wins or nothing is held yet. */
__attribute__((target("avx512f"))) static inline __mmask16 wins512(__m512 v, __m512 m,
								   __mmask16 have,
								   __mmask16 valid)
{
	__mmask16 gt = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ);
	__mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q);
	return valid & (gt | nan | (__mmask16)~have);
}

/* The lanes t of a 16-column load at column base whose column base+t lies
 * in [0, w). */
static inline __mmask16 run_mask(int base, int w)
{
	int lo = base < 0 ? -base : 0, hi = w - base < 16 ? w - base : 16;
	if (hi <= lo)
		return 0;
	return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* Pass 1's load: window column kx of output columns j .. j+15 (lanes in
 * `out`) of input row xr, whose first columns are `first` (see
 * first_cols512).  Returns the values (fill in lanes outside the row) and
 * in *col and *valid each lane's input column and whether it lies in the
 * row; padded lanes are masked out of the loads (no fault, never a
 * candidate).  Stride 1 loads a run, stride 2 picks the even lanes of two,
 * larger strides gather. */
__attribute__((target("avx512f"))) static inline __m512
window_col512(const tl_pool_shape *s, const float *xr, int j, int kx, __m512i first,
	      __mmask16 out, __m512 fill, __m512i *col, __mmask16 *valid)
{
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
					       28, 30);
	int base = j * s->s - s->p + kx;
	*col = _mm512_add_epi32(first, _mm512_set1_epi32(kx - s->p));
	*valid = out & _mm512_cmp_epi32_mask(*col, _mm512_setzero_si512(), _MM_CMPINT_NLT) &
		 _mm512_cmp_epi32_mask(*col, _mm512_set1_epi32(s->w), _MM_CMPINT_LT);
	/* masked lanes are not read, so base may point before the row */
	if (s->s == 1)
		return _mm512_mask_loadu_ps(fill, *valid, xr + base);
	if (s->s == 2) /* the even columns of a 32-column run: no gather */
		return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(run_mask(base, s->w), xr + base),
					      even,
					      _mm512_maskz_loadu_ps(run_mask(base + 16, s->w),
								    xr + base + 16));
	return _mm512_mask_i32gather_ps(fill, *valid, *col, xr, 4);
}

/* (j + lane) * stride: the input column where output column j + lane's
 * window starts before the padding. */
__attribute__((target("avx512f"))) static inline __m512i first_cols512(const tl_pool_shape *s,
								      int j)
{
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	return _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(j), lane),
				  _mm512_set1_epi32(s->s));
}

/* Pass 1 in 16-column blocks: output column j reads input columns
 * j*s-p .. j*s-p+k-1 (window_col512). */
__attribute__((target("avx512f"))) static void rows_avx512(const tl_pool_shape *s,
							   const float *xr, float *rm, int32_t *rc)
{
	for (int j = 0; j < s->ow; j += 16) {
		__mmask16 out = j + 16 <= s->ow ? 0xffff : (__mmask16)((1u << (s->ow - j)) - 1);
		__m512 m = _mm512_set1_ps(-INFINITY);
		__m512i c = _mm512_set1_epi32(-1), first = first_cols512(s, j);
		__mmask16 have = 0;
		for (int kx = 0; kx < s->k; kx++) {
			__m512i col;
			__mmask16 valid;
			__m512 v = window_col512(s, xr, j, kx, first, out, m, &col, &valid);
			__mmask16 up = wins512(v, m, have, valid);
			m = _mm512_mask_mov_ps(m, up, v);
			c = _mm512_mask_mov_epi32(c, up, col);
			have |= valid;
		}
		_mm512_mask_storeu_ps(rm + j, out, m);
		_mm512_mask_storeu_epi32(rc + j, out, c);
	}
}

/* Pass 2 in 16-column blocks (contiguous for any stride). */
__attribute__((target("avx512f"))) static void cols_avx512(const tl_pool_shape *s, int i,
							   const float *rm, const int32_t *rc,
							   float *yr, int32_t *ar)
{
	int lo, hi;
	window(i, s->s, s->p, s->k, s->h, &lo, &hi);
	for (int j = 0; j < s->ow; j += 16) {
		__mmask16 out = j + 16 <= s->ow ? 0xffff : (__mmask16)((1u << (s->ow - j)) - 1);
		__m512 m = _mm512_set1_ps(-INFINITY);
		__m512i a = _mm512_set1_epi32(-1);
		__mmask16 have = 0;
		for (int r = lo; r < hi; r++) {
			size_t o = (size_t)r * s->ow + j;
			__m512 v = _mm512_mask_loadu_ps(m, out, rm + o);
			__m512i c = _mm512_mask_loadu_epi32(_mm512_set1_epi32(-1), out, rc + o);
			__mmask16 valid = out & _mm512_cmp_epi32_mask(c, _mm512_setzero_si512(), _MM_CMPINT_NLT);
			__mmask16 up = wins512(v, m, have, valid);
			m = _mm512_mask_mov_ps(m, up, v);
			a = _mm512_mask_mov_epi32(a, up, _mm512_add_epi32(c, _mm512_set1_epi32(r * s->w)));
			have |= valid;
		}
		_mm512_mask_storeu_ps(yr + j, out, m);
		_mm512_mask_storeu_epi32(ar + j, out, a);
	}
}

/* Narrow maps (GoogLeNet's 2x2 inception 5 planes at 64x64): one
 * scan per window beats two passes and mostly idle lanes (ap NULL: y
 * alone). */
static void plane_direct(const tl_pool_shape *s, const float *xp, float *yp, int32_t *ap)
{
	for (int i = 0; i < s->oh; i++) {
		int ylo, yhi;
		window(i, s->s, s->p, s->k, s->h, &ylo, &yhi);
		for (int jj = 0; jj < s->ow; jj++) {
			int xlo, xhi;
			window(jj, s->s, s->p, s->k, s->w, &xlo, &xhi);
			float m = -INFINITY;
			int32_t a = -1;
			for (int yy = ylo; yy < yhi; yy++)
				for (int xx = xlo; xx < xhi; xx++)
					if (a < 0 || wins(xp[yy * s->w + xx], m))
						m = xp[yy * s->w + xx], a = yy * s->w + xx;
			yp[i * s->ow + jj] = m;
			if (ap)
				ap[i * s->ow + jj] = a;
		}
	}
}

/* Stride 1 with an output the size of the input (GoogLeNet's 3x3/1 pad 1
 * pool branches): planes [p0, p1) taken as one flat run of h*w-position
 * planes, 16 positions per vector whatever the plane size (an 8x8 plane
 * is 4 full vectors, a 2x2 one a quarter of one), each output scanning its
 * k*k window in row order, so ties and NaNs go as in the reference.  The
 * table holds the plane position (row, column) of flat position t mod hw
 * for t in [0, hw+16), so a vector starting anywhere reads 16 entries. */
__attribute__((target("avx512f"))) static void planes_s1_avx512(const tl_pool_shape *s,
								const float *x, float *y,
								int32_t *argmax, size_t p0,
								size_t p1, const int32_t *ti,
								const int32_t *tj)
{
	const int hw = s->h * s->w;
	const size_t g1 = p1 * (size_t)hw;
	const __m512i zero = _mm512_setzero_si512(), vh = _mm512_set1_epi32(s->h),
		      vw = _mm512_set1_epi32(s->w);
	for (size_t g = p0 * (size_t)hw; g < g1; g += 16) {
		__mmask16 out = g + 16 <= g1 ? 0xffff : (__mmask16)((1u << (g1 - g)) - 1);
		const int t0 = (int)(g % (size_t)hw);
		const __m512i i = _mm512_loadu_si512(ti + t0), j = _mm512_loadu_si512(tj + t0);
		const __m512i local = _mm512_add_epi32(_mm512_mullo_epi32(i, vw), j);
		__m512 m = _mm512_set1_ps(-INFINITY);
		__m512i a = _mm512_set1_epi32(-1);
		__mmask16 have = 0;
		for (int dy = 0; dy < s->k; dy++) {
			const __m512i r = _mm512_add_epi32(i, _mm512_set1_epi32(dy - s->p));
			const __mmask16 rv = out & _mm512_cmp_epi32_mask(r, zero, _MM_CMPINT_NLT) &
					     _mm512_cmp_epi32_mask(r, vh, _MM_CMPINT_LT);
			for (int dx = 0; dx < s->k; dx++) {
				const __m512i c = _mm512_add_epi32(j, _mm512_set1_epi32(dx - s->p));
				const __mmask16 valid = rv & _mm512_cmp_epi32_mask(c, zero, _MM_CMPINT_NLT) &
							_mm512_cmp_epi32_mask(c, vw, _MM_CMPINT_LT);
				const int off = (dy - s->p) * s->w + (dx - s->p);
				/* masked lanes are not read: the offset may leave the run */
				const __m512 v = _mm512_mask_loadu_ps(m, valid, x + (ptrdiff_t)g + off);
				const __mmask16 up = wins512(v, m, have, valid);
				m = _mm512_mask_mov_ps(m, up, v);
				a = _mm512_mask_mov_epi32(a, up, _mm512_add_epi32(local, _mm512_set1_epi32(off)));
				have |= valid;
			}
		}
		_mm512_mask_storeu_ps(y + g, out, m);
		_mm512_mask_storeu_epi32(argmax + g, out, a);
	}
}

typedef struct {
	const tl_pool_shape *s;
	const float *x;
	float *y;
	int32_t *argmax;
	int simd;
} mp_job;

/* ---- y alone (argmax NULL): the same separable passes, plain maxima ---- */

/* max(m, v) where a NaN in either wins (vmaxps returns m on a NaN). */
__attribute__((target("avx512f"))) static inline __m512 max_nan512(__m512 m, __m512 v)
{
	__m512 r = _mm512_max_ps(v, m);
	return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

/* Pass 1: rm[j] = max over row xr's window columns of output column j
 * (-inf when none lies in the row). */
__attribute__((target("avx512f"))) static void rows_max512(const tl_pool_shape *s,
							   const float *xr, float *rm)
{
	for (int j = 0; j < s->ow; j += 16) {
		__mmask16 out = j + 16 <= s->ow ? 0xffff : (__mmask16)((1u << (s->ow - j)) - 1);
		__m512 m = _mm512_set1_ps(-INFINITY);
		__m512i first = first_cols512(s, j);
		for (int kx = 0; kx < s->k; kx++) {
			__m512i col;
			__mmask16 valid;
			__m512 v = window_col512(s, xr, j, kx, first, out, m, &col, &valid);
			m = _mm512_mask_mov_ps(m, valid, max_nan512(m, v));
		}
		_mm512_mask_storeu_ps(rm + j, out, m);
	}
}

/* Pass 2: output row i = max over its window rows of pass 1. */
__attribute__((target("avx512f"))) static void cols_max512(const tl_pool_shape *s, int i,
							   const float *rm, float *yr)
{
	int lo, hi;
	window(i, s->s, s->p, s->k, s->h, &lo, &hi);
	for (int j = 0; j < s->ow; j += 16) {
		__mmask16 out = j + 16 <= s->ow ? 0xffff : (__mmask16)((1u << (s->ow - j)) - 1);
		__m512 m = _mm512_set1_ps(-INFINITY);
		for (int r = lo; r < hi; r++)
			m = max_nan512(m, _mm512_mask_loadu_ps(m, out, rm + (size_t)r * s->ow + j));
		_mm512_mask_storeu_ps(yr + j, out, m);
	}
}

/* Stride 1, output the size of the input: planes [p0, p1) as one flat run
 * (see planes_s1_avx512), the row pass into h (the run's size), then the
 * column pass; ti/tj map flat position t mod hw to its row and column. */
__attribute__((target("avx512f"))) static void planes_s1_max512(const tl_pool_shape *s,
								const float *x, float *y, float *h,
								size_t p0, size_t p1,
								const int32_t *ti, const int32_t *tj)
{
	const int hw = s->h * s->w;
	const size_t g0 = p0 * (size_t)hw, g1 = p1 * (size_t)hw;
	const __m512i zero = _mm512_setzero_si512(), vh = _mm512_set1_epi32(s->h),
		      vw = _mm512_set1_epi32(s->w);
	for (int pass = 0; pass < 2; pass++) {
		const float *src = pass ? h : x + g0;
		float *dst = pass ? y + g0 : h;
		const int32_t *tab = pass ? ti : tj;
		const __m512i lim = pass ? vh : vw;
		const ptrdiff_t step = pass ? s->w : 1;
		for (size_t g = g0; g < g1; g += 16) {
			__mmask16 out = g + 16 <= g1 ? 0xffff : (__mmask16)((1u << (g1 - g)) - 1);
			const __m512i at = _mm512_loadu_si512(tab + g % (size_t)hw);
			__m512 m = _mm512_set1_ps(-INFINITY);
			for (int d = -s->p; d < s->k - s->p; d++) {
				const __m512i c = _mm512_add_epi32(at, _mm512_set1_epi32(d));
				const __mmask16 valid = out & _mm512_cmp_epi32_mask(c, zero, _MM_CMPINT_NLT) &
							_mm512_cmp_epi32_mask(c, lim, _MM_CMPINT_LT);
				/* masked lanes are not read: the offset may leave the run */
				const __m512 v = _mm512_maskz_loadu_ps(valid, src + (ptrdiff_t)(g - g0) + d * step);
				m = _mm512_mask_mov_ps(m, valid, max_nan512(m, v));
			}
			_mm512_mask_storeu_ps(dst + (g - g0), out, m);
		}
	}
}

/* Planes [p0, p1).  argmax NULL (only at AVX-512: tl_fast_maxpool_fwd):
 * y alone through the plain-maximum passes. */
static void mp_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	const mp_job *j = ctx;
	const tl_pool_shape *s = j->s;
	const int plain = j->argmax == NULL;
	if (j->simd && s->s == 1 && s->oh == s->h && s->ow == s->w) {
		int hw = s->h * s->w;
		int32_t *t = malloc(2 * (size_t)(hw + 16) * sizeof(int32_t));
		float *h = plain ? malloc((p1 - p0) * (size_t)hw * sizeof(float) + 64) : NULL;
		TL_CHECK(t && (h || !plain));
		for (int q = 0; q < hw + 16; q++)
			t[q] = (q % hw) / s->w, t[hw + 16 + q] = (q % hw) % s->w;
		if (plain)
			planes_s1_max512(s, j->x, j->y, h, p0, p1, t, t + hw + 16);
		else
			planes_s1_avx512(s, j->x, j->y, j->argmax, p0, p1, t, t + hw + 16);
		free(t);
		free(h);
		return;
	}
	size_t rows = (size_t)s->h * s->ow;
	float *rm = malloc(rows * sizeof(float) + 64);
	int32_t *rc = plain ? NULL : malloc(rows * sizeof(int32_t) + 64);
	TL_CHECK(rm && (rc || plain));
	for (size_t pl = p0; pl < p1; pl++) {
		const float *xp = j->x + pl * s->h * s->w;
		float *yp = j->y + pl * s->oh * s->ow;
		int32_t *ap = plain ? NULL : j->argmax + pl * s->oh * s->ow;
		if (s->ow < 4) {
			plane_direct(s, xp, yp, ap);
			continue;
		}
		for (int r = 0; r < s->h; r++) {
			const float *xr = xp + (size_t)r * s->w;
			size_t o = (size_t)r * s->ow;
			if (plain)
				rows_max512(s, xr, rm + o);
			else if (j->simd)
				rows_avx512(s, xr, rm + o, rc + o);
			else
				rows_scalar(s, xr, rm + o, rc + o);
		}
		for (int i = 0; i < s->oh; i++) {
			float *yr = yp + (size_t)i * s->ow;
			if (plain)
				cols_max512(s, i, rm, yr);
			else if (j->simd)
				cols_avx512(s, i, rm, rc, yr, ap + (size_t)i * s->ow);
			else
				cols_scalar(s, i, rm, rc, yr, ap + (size_t)i * s->ow);
		}
	}
	free(rm);
	free(rc);
}

void tl_fast_maxpool_fwd(tl_pool *pool, const tl_pool_shape *s, const float *x, float *y,
			 int32_t *argmax)
{
	mp_job j = {s, x, y, argmax, tl_cpu_detect() >= TL_CPU_AVX512};
	int32_t *scratch = NULL;
	if (!argmax && !j.simd) { /* below AVX-512: the argmax passes, into scratch */
		j.argmax = scratch = malloc((size_t)s->n * s->c * s->oh * s->ow * sizeof(int32_t) + 4);
		TL_CHECK(scratch);
	}
	tl_pool_split(pool, (size_t)s->n * s->c, mp_planes, &j);
	free(scratch);
}
