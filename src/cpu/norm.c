/* norm.c - the fast backend's batch norm, LRN and adaptive average pool
 * (see fastops.h).  Batch norm works one channel per item over the pool
 * (its n planes of hw values), with SIMD sums and a fused affine +
 * activation; the sums are float lanes added in double per plane.  LRN
 * works on blocks of pixels of one sample across all channels; the common
 * beta 0.75 takes s^-0.75 = 1 / (sqrt(s) sqrt(sqrt(s))) in SIMD, other
 * betas powf.  The average pool splits planes over the pool and runs the
 * reference loops on each part. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/fastops.h"
#include "cpu/ref.h"
#include "cpu/scratch.h"
#include "cpu/vec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- the SIMD loops; each returns how far it got, the caller finishes ---- */

typedef struct {
	/* sum of (x - mean)^2 into *s */
	size_t (*sqdev)(const float *x, size_t n, float mean, double *s);
	/* y = act(x a + b) */
	size_t (*affine)(float *y, const float *x, size_t n, float a, float b, int act);
	/* dy masked in place by act (from y); s1 += dy, s2 += dy (x - mean) */
	size_t (*mask_sums)(float *dy, const float *y, const float *x, size_t n, int act,
			    float mean, double *s1, double *s2);
	/* dx (+)= A dy + B x + C */
	size_t (*dx_lin)(float *dx, const float *dy, const float *x, size_t n, float A, float B,
			 float C, int acc);
	/* p = p^-0.75 */
	size_t (*pow_m075)(float *p, size_t n);
	/* d (+)= a * b, or d (+)= a * b / c when c */
	size_t (*mul)(float *d, const float *a, const float *b, const float *c, size_t n, int acc);
} norm_kernels;

static size_t sqdev_none(const float *x, size_t n, float mean, double *s)
{
	*s = 0;
	return 0;
}
static size_t affine_none(float *y, const float *x, size_t n, float a, float b, int act)
{
	return 0;
}
static size_t mask_sums_none(float *dy, const float *y, const float *x, size_t n, int act,
			     float mean, double *s1, double *s2)
{
	*s1 = *s2 = 0;
	return 0;
}
static size_t dx_lin_none(float *dx, const float *dy, const float *x, size_t n, float A, float B,
			  float C, int acc)
{
	return 0;
}
static size_t pow_none(float *p, size_t n)
{
	return 0;
}
static size_t mul_none(float *d, const float *a, const float *b, const float *c, size_t n, int acc)
{
	return 0;
}

static const norm_kernels nk_scalar = {sqdev_none, affine_none, mask_sums_none,
				       dx_lin_none, pow_none,	 mul_none};

#if defined(__x86_64__)
#define NORM_FUNCS(SUF, T, V, W, LD, ST, ADD, SUB, MUL, DIV, FMA, MAX, MIN, SQRT, SET1, ZERO,    \
		   PASS, RED)                                                                  \
	__attribute__((target(T))) static size_t sqdev_##SUF(const float *x, size_t n,          \
							     float mean, double *s)              \
	{                                                                                        \
		V m = SET1(mean), a0 = ZERO(), a1 = ZERO();                                      \
		size_t i = 0;                                                                    \
		for (; i + 2 * W <= n; i += 2 * W) {                                             \
			V d0 = SUB(LD(x + i), m), d1 = SUB(LD(x + i + W), m);                    \
			a0 = FMA(d0, d0, a0);                                                    \
			a1 = FMA(d1, d1, a1);                                                    \
		}                                                                                \
		*s = RED(ADD(a0, a1));                                                           \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t affine_##SUF(float *y, const float *x, size_t n, \
							      float a, float b, int act)         \
	{                                                                                        \
		V va = SET1(a), vb = SET1(b), z = ZERO(), six = SET1(6.0f);                      \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V v = FMA(LD(x + i), va, vb);                                            \
			if (act != TL_ACT_NONE)                                                  \
				v = MAX(z, v); /* NaN stays NaN */                               \
			if (act == TL_ACT_RELU6)                                                 \
				v = MIN(six, v);                                                 \
			ST(y + i, v);                                                            \
		}                                                                                \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t mask_sums_##SUF(float *dy, const float *y,      \
								 const float *x, size_t n, int act, \
								 float mean, double *s1, double *s2) \
	{                                                                                        \
		V m = SET1(mean), a1 = ZERO(), a2 = ZERO();                                      \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V d = LD(dy + i);                                                        \
			if (act != TL_ACT_NONE) {                                                \
				d = PASS(LD(y + i), d, act);                                     \
				ST(dy + i, d);                                                   \
			}                                                                        \
			a1 = ADD(a1, d);                                                         \
			a2 = FMA(d, SUB(LD(x + i), m), a2);                                      \
		}                                                                                \
		*s1 = RED(a1);                                                                   \
		*s2 = RED(a2);                                                                   \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t dx_lin_##SUF(float *dx, const float *dy,       \
							      const float *x, size_t n, float A, \
							      float B, float C, int acc)         \
	{                                                                                        \
		V va = SET1(A), vb = SET1(B), vc = SET1(C);                                      \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V v = FMA(LD(dy + i), va, FMA(LD(x + i), vb, vc));                       \
			ST(dx + i, acc ? ADD(LD(dx + i), v) : v);                                \
		}                                                                                \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t pow_m075_##SUF(float *p, size_t n)             \
	{                                                                                        \
		V one = SET1(1.0f);                                                              \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V s = SQRT(LD(p + i));                                                   \
			ST(p + i, DIV(one, MUL(s, SQRT(s))));                                    \
		}                                                                                \
		return i;                                                                        \
	}                                                                                        \
	__attribute__((target(T))) static size_t mul_##SUF(float *d, const float *a,            \
							   const float *b, const float *c,       \
							   size_t n, int acc)                    \
	{                                                                                        \
		size_t i = 0;                                                                    \
		for (; i + W <= n; i += W) {                                                     \
			V v = MUL(LD(a + i), LD(b + i));                                         \
			if (c)                                                                   \
				v = DIV(v, LD(c + i));                                           \
			ST(d + i, acc ? ADD(LD(d + i), v) : v);                                  \
		}                                                                                \
		return i;                                                                        \
	}                                                                                        \
	static const norm_kernels nk_##SUF = {sqdev_##SUF,  affine_##SUF,   mask_sums_##SUF,     \
					      dx_lin_##SUF, pow_m075_##SUF, mul_##SUF};

/* d where the activation passes the gradient at y (0 < y, and y < 6 for
 * ReLU6; NaN never), else 0. */
__attribute__((target("avx512f"))) static inline __m512 pass512(__m512 y, __m512 d, int act)
{
	__mmask16 k = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ);
	if (act == TL_ACT_RELU6)
		k &= _mm512_cmp_ps_mask(y, _mm512_set1_ps(6.0f), _CMP_LT_OQ);
	return _mm512_maskz_mov_ps(k, d);
}
__attribute__((target("avx2"))) static inline __m256 pass256(__m256 y, __m256 d, int act)
{
	__m256 k = _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ);
	if (act == TL_ACT_RELU6)
		k = _mm256_and_ps(k, _mm256_cmp_ps(y, _mm256_set1_ps(6.0f), _CMP_LT_OQ));
	return _mm256_and_ps(k, d);
}

NORM_FUNCS(avx512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps,
	   _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_max_ps,
	   _mm512_min_ps, _mm512_sqrt_ps, _mm512_set1_ps, _mm512_setzero_ps, pass512, red512)
NORM_FUNCS(avx2, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps,
	   _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_max_ps,
	   _mm256_min_ps, _mm256_sqrt_ps, _mm256_set1_ps, _mm256_setzero_ps, pass256, red256)
#endif

static const norm_kernels *kernels(void)
{
#if defined(__x86_64__)
	tl_cpu_level l = tl_cpu_detect();
	if (l == TL_CPU_AVX512)
		return &nk_avx512;
	if (l == TL_CPU_AVX2)
		return &nk_avx2;
#endif
	return &nk_scalar;
}

/* ---- batch norm, one channel per item ---- */

typedef struct {
	const norm_kernels *K;
	int n, c, hw, training, act, acc;
	float eps, mom;
	const float *x, *gamma, *beta, *save, *y;
	float *rmean, *rvar, *osave, *out, *dy, *dx, *dgamma, *dbeta;
} bn_job;

static inline float act_f(int act, float v)
{
	if (act != TL_ACT_NONE && v < 0.0f)
		v = 0.0f;
	if (act == TL_ACT_RELU6 && v > 6.0f)
		v = 6.0f;
	return v;
}

static void bn_fwd_channels(void *ctx, size_t c0, size_t c1, int tid)
{
	bn_job *j = ctx;
	const norm_kernels *K = j->K;
	size_t hw = (size_t)j->hw, m = (size_t)j->n * hw;
	for (size_t ch = c0; ch < c1; ch++) {
		float mean, invstd;
		if (j->training) {
			double sum = 0, sq = 0;
			for (int i = 0; i < j->n; i++)
				sum += tl_vec_sum(j->x + ((size_t)i * j->c + ch) * hw, hw);
			double mu = sum / (double)m;
			for (int i = 0; i < j->n; i++) {
				const float *xp = j->x + ((size_t)i * j->c + ch) * hw;
				double s;
				size_t k = K->sqdev(xp, hw, (float)mu, &s);
				for (; k < hw; k++) {
					double d = xp[k] - (float)mu;
					s += d * d;
				}
				sq += s;
			}
			double var = sq / (double)m;
			double uvar = m > 1 ? var * (double)m / (double)(m - 1) : var;
			mean = (float)mu;
			invstd = (float)(1.0 / sqrt(var + (double)j->eps));
			j->rmean[ch] = (float)((1.0 - (double)j->mom) * j->rmean[ch] + (double)j->mom * mu);
			j->rvar[ch] = (float)((1.0 - (double)j->mom) * j->rvar[ch] + (double)j->mom * uvar);
		} else {
			mean = j->rmean[ch];
			invstd = (float)(1.0 / sqrt((double)j->rvar[ch] + (double)j->eps));
		}
		j->osave[ch] = mean;
		j->osave[j->c + ch] = invstd;
		float g = j->gamma ? j->gamma[ch] : 1.0f, bt = j->beta ? j->beta[ch] : 0.0f;
		float a = invstd * g, b = bt - mean * a;
		for (int i = 0; i < j->n; i++) {
			size_t off = ((size_t)i * j->c + ch) * hw;
			size_t k = K->affine(j->out + off, j->x + off, hw, a, b, j->act);
			for (; k < hw; k++)
				j->out[off + k] = act_f(j->act, j->x[off + k] * a + b);
		}
	}
}

static void bn_fwd(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		   tl_mem x_m, tl_mem gamma_m, tl_mem beta_m, tl_mem rmean_m, tl_mem rvar_m,
		   tl_mem save_m, int act, tl_mem y_m)
{
	const float *x = tl_cpu_f(x_m);
	const float *gamma = tl_cpu_f(gamma_m);
	const float *beta = tl_cpu_f(beta_m);
	float *rmean = tl_cpu_f(rmean_m);
	float *rvar = tl_cpu_f(rvar_m);
	float *save = tl_cpu_f(save_m);
	float *y = tl_cpu_f(y_m);
	bn_job j = {.K = kernels(), .n = n, .c = c, .hw = hw, .training = training, .act = act,
		    .eps = eps, .mom = mom, .x = x, .gamma = gamma, .beta = beta, .rmean = rmean,
		    .rvar = rvar, .osave = save, .out = y};
	tl_pool_split(be->pool, (size_t)c, bn_fwd_channels, &j);
}

static inline int act_pass(int act, float v)
{
	return act == TL_ACT_NONE || (v > 0.0f && (act == TL_ACT_RELU || v < 6.0f));
}

static void bn_bwd_channels(void *ctx, size_t c0, size_t c1, int tid)
{
	bn_job *j = ctx;
	const norm_kernels *K = j->K;
	size_t hw = (size_t)j->hw, m = (size_t)j->n * hw;
	for (size_t ch = c0; ch < c1; ch++) {
		float mean = j->save[ch], invstd = j->save[j->c + ch];
		float g = j->gamma ? j->gamma[ch] : 1.0f;
		double s1 = 0, s2 = 0; /* sum dy, sum dy (x - mean) */
		for (int i = 0; i < j->n; i++) {
			size_t off = ((size_t)i * j->c + ch) * hw;
			float *dy = j->dy + off;
			const float *x = j->x + off, *y = j->y + off;
			double a, b;
			size_t k = K->mask_sums(dy, y, x, hw, j->act, mean, &a, &b);
			for (; k < hw; k++) {
				if (!act_pass(j->act, y[k]))
					dy[k] = 0.0f;
				a += dy[k];
				b += (double)dy[k] * (x[k] - mean);
			}
			s1 += a;
			s2 += b;
		}
		double sgx = s2 * invstd; /* dgamma */
		if (j->dgamma)
			j->dgamma[ch] = (float)sgx;
		if (j->dbeta)
			j->dbeta[ch] = (float)s1;
		if (!j->dx)
			continue;
		/* dx = A dy + B x + C (see backend.h, expanded in xhat) */
		double A = (double)g * invstd, B = 0, C = 0;
		if (j->training) {
			B = -A * invstd * sgx / (double)m;
			C = -A * s1 / (double)m - B * mean;
		}
		for (int i = 0; i < j->n; i++) {
			size_t off = ((size_t)i * j->c + ch) * hw;
			const float *dy = j->dy + off, *x = j->x + off;
			float *dx = j->dx + off;
			size_t k = K->dx_lin(dx, dy, x, hw, (float)A, (float)B, (float)C, j->acc);
			for (; k < hw; k++) {
				float v = (float)A * dy[k] + ((float)B * x[k] + (float)C);
				dx[k] = j->acc ? dx[k] + v : v;
			}
		}
	}
}

static void bn_bwd(tl_backend *be, int n, int c, int hw, int training, tl_mem x_m, tl_mem gamma_m,
		   tl_mem save_m, tl_mem y_m, int act, tl_mem dy_m, tl_mem dx_m, int acc_dx,
		   tl_mem dgamma_m, tl_mem dbeta_m)
{
	const float *x = tl_cpu_f(x_m);
	const float *gamma = tl_cpu_f(gamma_m);
	const float *save = tl_cpu_f(save_m);
	const float *y = tl_cpu_f(y_m);
	float *dy = tl_cpu_f(dy_m);
	float *dx = tl_cpu_f(dx_m);
	float *dgamma = tl_cpu_f(dgamma_m);
	float *dbeta = tl_cpu_f(dbeta_m);
	bn_job j = {.K = kernels(), .n = n, .c = c, .hw = hw, .training = training, .act = act,
		    .acc = acc_dx, .x = x, .gamma = gamma, .save = save, .y = y, .dy = dy,
		    .dx = dx, .dgamma = dgamma, .dbeta = dbeta};
	tl_pool_split(be->pool, (size_t)c, bn_bwd_channels, &j);
}

/* ---- LRN over blocks of LRN_BLOCK pixels of one sample ---- */

#define LRN_BLOCK 64

typedef struct {
	const norm_kernels *K;
	int n, c, hw, size, acc;
	float alpha, beta, kk;
	const float *x, *y, *scale, *dy;
	float *oscale, *out, *dx;
	size_t blocks; /* per sample */
} lrn_job;

/* p[0..len) = p^-beta */
static void pow_neg(const norm_kernels *K, float *p, size_t len, float beta)
{
	size_t i = 0;
	if (beta == 0.75f)
		i = K->pow_m075(p, len);
	for (; i < len; i++)
		p[i] = powf(p[i], -beta);
}

/* a [c][len] -> win [c][len]: win[c] = sum of a[d] for d in [c - before, c + after] */
static void window_sum(const float *a, float *win, int c, size_t len, int before, int after)
{
	for (int ch = 0; ch < c; ch++) {
		float *w = win + (size_t)ch * len;
		int d0 = ch - before < 0 ? 0 : ch - before, d1 = ch + after >= c ? c - 1 : ch + after;
		memcpy(w, a + (size_t)d0 * len, len * sizeof(float));
		for (int d = d0 + 1; d <= d1; d++)
			tl_vec_add(w, a + (size_t)d * len, len);
	}
}

static void lrn_fwd_blocks(void *ctx, size_t b0, size_t b1, int tid)
{
	lrn_job *j = ctx;
	size_t hw = (size_t)j->hw, C = (size_t)j->c;
	float *sq = tl_scratch_get(2 * C * LRN_BLOCK), *win = sq + C * LRN_BLOCK;
	for (size_t b = b0; b < b1; b++) {
		size_t i = b / j->blocks, k0 = b % j->blocks * LRN_BLOCK;
		size_t len = hw - k0 < LRN_BLOCK ? hw - k0 : LRN_BLOCK;
		const float *x = j->x + i * C * hw + k0;
		for (size_t ch = 0; ch < C; ch++) {
			const float *xc = x + ch * hw;
			float *sc = sq + ch * len;
			for (size_t k = j->K->mul(sc, xc, xc, NULL, len, 0); k < len; k++)
				sc[k] = xc[k] * xc[k];
		}
		window_sum(sq, win, j->c, len, j->size / 2, (j->size - 1) / 2);
		float f = j->alpha / (float)j->size;
		for (size_t t = j->K->affine(win, win, C * len, f, j->kk, TL_ACT_NONE); t < C * len; t++)
			win[t] = j->kk + f * win[t];
		for (size_t ch = 0; ch < C; ch++)
			if (j->oscale)
				memcpy(j->oscale + (i * C + ch) * hw + k0, win + ch * len,
				       len * sizeof(float));
		pow_neg(j->K, win, C * len, j->beta);
		for (size_t ch = 0; ch < C; ch++) {
			float *y = j->out + (i * C + ch) * hw + k0;
			size_t k = j->K->mul(y, x + ch * hw, win + ch * len, NULL, len, 0);
			for (; k < len; k++)
				y[k] = x[ch * hw + k] * win[ch * len + k];
		}
	}
	tl_scratch_put(sq);
}

static void lrn_fwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		    float kk, tl_mem x_m, tl_mem scale_m, tl_mem y_m)
{
	const float *x = tl_cpu_f(x_m);
	float *scale = tl_cpu_f(scale_m);
	float *y = tl_cpu_f(y_m);
	lrn_job j = {.K = kernels(), .n = n, .c = c, .hw = hw, .size = size, .alpha = alpha,
		     .beta = beta, .kk = kk, .x = x, .oscale = scale, .out = y,
		     .blocks = ((size_t)hw + LRN_BLOCK - 1) / LRN_BLOCK};
	tl_pool_split(be->pool, (size_t)n * j.blocks, lrn_fwd_blocks, &j);
}

static void lrn_bwd_blocks(void *ctx, size_t b0, size_t b1, int tid)
{
	lrn_job *j = ctx;
	const norm_kernels *K = j->K;
	size_t hw = (size_t)j->hw, C = (size_t)j->c;
	float *t = tl_scratch_get(3 * C * LRN_BLOCK), *win = t + C * LRN_BLOCK,
	      *pw = win + C * LRN_BLOCK;
	float f = 2.0f * j->alpha * j->beta / (float)j->size;
	for (size_t b = b0; b < b1; b++) {
		size_t i = b / j->blocks, k0 = b % j->blocks * LRN_BLOCK;
		size_t len = hw - k0 < LRN_BLOCK ? hw - k0 : LRN_BLOCK;
		size_t base = i * C * hw + k0;
		/* t = dy y / scale, pw = scale^-beta (both [c][len]) */
		for (size_t ch = 0; ch < C; ch++) {
			const float *dy = j->dy + base + ch * hw, *y = j->y + base + ch * hw,
				    *sc = j->scale + base + ch * hw;
			float *tc = t + ch * len;
			size_t k = K->mul(tc, dy, y, sc, len, 0);
			for (; k < len; k++)
				tc[k] = dy[k] * y[k] / sc[k];
			memcpy(pw + ch * len, sc, len * sizeof(float));
		}
		pow_neg(K, pw, C * len, j->beta);
		/* the c' whose window holds c: c - (size-1)/2 .. c + size/2 */
		window_sum(t, win, j->c, len, (j->size - 1) / 2, j->size / 2);
		for (size_t ch = 0; ch < C; ch++) {
			const float *dy = j->dy + base + ch * hw, *x = j->x + base + ch * hw;
			float *dx = j->dx + base + ch * hw;
			const float *p = pw + ch * len, *w = win + ch * len;
			for (size_t k = 0; k < len; k++) {
				float v = dy[k] * p[k] - f * x[k] * w[k];
				dx[k] = j->acc ? dx[k] + v : v;
			}
		}
	}
	tl_scratch_put(t);
}

static void lrn_bwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
		    tl_mem x_m, tl_mem y_m, tl_mem scale_m, tl_mem dy_m, tl_mem dx_m, int acc_dx)
{
	const float *x = tl_cpu_f(x_m);
	const float *y = tl_cpu_f(y_m);
	const float *scale = tl_cpu_f(scale_m);
	const float *dy = tl_cpu_f(dy_m);
	float *dx = tl_cpu_f(dx_m);
	lrn_job j = {.K = kernels(), .n = n, .c = c, .hw = hw, .size = size, .alpha = alpha,
		     .beta = beta, .acc = acc_dx, .x = x, .y = y, .scale = scale, .dy = dy,
		     .dx = dx, .blocks = ((size_t)hw + LRN_BLOCK - 1) / LRN_BLOCK};
	tl_pool_split(be->pool, (size_t)n * j.blocks, lrn_bwd_blocks, &j);
}

/* ---- adaptive average pool: the reference loops on parts of the planes ---- */

typedef struct {
	const tl_pool_shape *s;
	const float *in;
	float *out;
	int acc;
} avg_job;

static void avg_fwd_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	avg_job *j = ctx;
	tl_pool_shape part = *j->s;
	part.n = 1;
	part.c = (int)(p1 - p0);
	tl_ref_avgpool_fwd_f32(&part, j->in + p0 * part.h * part.w, j->out + p0 * part.oh * part.ow);
}

static void avg_bwd_planes(void *ctx, size_t p0, size_t p1, int tid)
{
	avg_job *j = ctx;
	tl_pool_shape part = *j->s;
	part.n = 1;
	part.c = (int)(p1 - p0);
	tl_ref_avgpool_bwd_f32(&part, j->in + p0 * part.oh * part.ow, j->out + p0 * part.h * part.w,
			       j->acc);
}

static void avgpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x_m, tl_mem y_m)
{
	const float *x = tl_cpu_f(x_m);
	float *y = tl_cpu_f(y_m);
	avg_job j = {s, x, y, 0};
	tl_pool_split(be->pool, (size_t)s->n * s->c, avg_fwd_planes, &j);
}

static void avgpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy_m, tl_mem dx_m,
			int acc_dx)
{
	const float *dy = tl_cpu_f(dy_m);
	float *dx = tl_cpu_f(dx_m);
	avg_job j = {s, dy, dx, acc_dx};
	tl_pool_split(be->pool, (size_t)s->n * s->c, avg_bwd_planes, &j);
}

void tl_fast_norm_init(tl_backend *be)
{
	be->bn_fwd = bn_fwd;
	be->bn_bwd = bn_bwd;
	be->lrn_fwd = lrn_fwd;
	be->lrn_bwd = lrn_bwd;
	be->avgpool_fwd = avgpool_fwd;
	be->avgpool_bwd = avgpool_bwd;
}
