/* gemm.c - packed, blocked, threaded SGEMM (see gemm.h). */
#include "cpu/gemm.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TL_GEMM_KC
#define TL_GEMM_KC 192 /* depth of a packed block: KC x NR of B stays in L1 */
#endif
#ifndef TL_GEMM_NC
#define TL_GEMM_NC 3072 /* columns of a packed B block */
#endif
#define MAX_MR 8
#define MAX_NR 32

/* acc (mr x nr valid of an MR x NR tile) += into C */
typedef void (*kernel_fn)(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr);

typedef struct {
	int mr, nr;
	kernel_fn fn;
} kernel;

/* ---- micro-kernels: a is [k][MR], b is [k][NR], both packed ---- */

static void add_tile(float *c, int ldc, const float *t, int ld_t, int mr, int nr)
{
	for (int i = 0; i < mr; i++)
		for (int j = 0; j < nr; j++)
			c[(size_t)i * ldc + j] += t[i * ld_t + j];
}

static void kern_scalar(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr)
{
	float acc[4][8] = {{0}};
	for (int p = 0; p < k; p++, a += 4, b += 8)
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 8; j++)
				acc[i][j] += a[i] * b[j];
	add_tile(c, ldc, &acc[0][0], 8, mr, nr);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void
kern_avx2(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr)
{
	__m256 c0[6], c1[6];
	for (int i = 0; i < 6; i++)
		c0[i] = c1[i] = _mm256_setzero_ps();
	for (int p = 0; p < k; p++, a += 6, b += 16) {
		__m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
		for (int i = 0; i < 6; i++) {
			__m256 av = _mm256_broadcast_ss(a + i);
			c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
			c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
		}
	}
	if (mr == 6 && nr == 16) {
		for (int i = 0; i < 6; i++) {
			float *ci = c + (size_t)i * ldc;
			_mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), c0[i]));
			_mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), c1[i]));
		}
		return;
	}
	float t[6 * 16];
	for (int i = 0; i < 6; i++) {
		_mm256_storeu_ps(t + i * 16, c0[i]);
		_mm256_storeu_ps(t + i * 16 + 8, c1[i]);
	}
	add_tile(c, ldc, t, 16, mr, nr);
}

__attribute__((target("avx512f"))) static void
kern_avx512(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr)
{
	__m512 c0[8], c1[8];
	for (int i = 0; i < 8; i++)
		c0[i] = c1[i] = _mm512_setzero_ps();
	for (int p = 0; p < k; p++, a += 8, b += 32) {
		__m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++) {
			__m512 av = _mm512_set1_ps(a[i]);
			c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
			c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
		}
	}
	if (mr == 8 && nr == 32) {
		for (int i = 0; i < 8; i++) {
			float *ci = c + (size_t)i * ldc;
			_mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), c0[i]));
			_mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), c1[i]));
		}
		return;
	}
	if (nr == 32) { /* partial rows, full width */
		for (int i = 0; i < mr; i++) {
			float *ci = c + (size_t)i * ldc;
			_mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), c0[i]));
			_mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), c1[i]));
		}
		return;
	}
	/* partial width: masked loads/stores */
	__mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
	__mmask16 m1 = (__mmask16)(nr <= 16 ? 0 : nr >= 32 ? 0xffff : (1u << (nr - 16)) - 1);
	for (int i = 0; i < mr; i++) {
		float *ci = c + (size_t)i * ldc;
		_mm512_mask_storeu_ps(ci, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), c0[i]));
		if (m1)
			_mm512_mask_storeu_ps(ci + 16, m1,
					      _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), c1[i]));
	}
}
#endif

static const kernel kernels[] = {
	{4, 8, kern_scalar},
#if defined(__x86_64__)
	{6, 16, kern_avx2},
	{8, 32, kern_avx512},
#else
	{4, 8, kern_scalar},
	{4, 8, kern_scalar},
#endif
};

const char *tl_cpu_level_name(tl_cpu_level l)
{
	return l == TL_CPU_AVX512 ? "avx512" : l == TL_CPU_AVX2 ? "avx2+fma" : "scalar";
}

static int cached = -1;

tl_cpu_level tl_cpu_supported(void)
{
	tl_cpu_level l = TL_CPU_SCALAR;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		l = TL_CPU_AVX2;
	if (__builtin_cpu_supports("avx512f"))
		l = TL_CPU_AVX512;
#endif
	return l;
}

tl_cpu_level tl_cpu_force(tl_cpu_level l)
{
	tl_cpu_level top = tl_cpu_supported();
	cached = (int)(l < top ? l : top);
	return (tl_cpu_level)cached;
}

tl_cpu_level tl_cpu_detect(void)
{
	if (cached >= 0)
		return (tl_cpu_level)cached;
	tl_cpu_level l = tl_cpu_supported();
	const char *env = getenv("TL_CPU");
	if (env) {
		tl_cpu_level cap = !strcasecmp(env, "scalar") ? TL_CPU_SCALAR
				   : !strcasecmp(env, "avx2") ? TL_CPU_AVX2
							      : TL_CPU_AVX512;
		if (cap < l)
			l = cap;
	}
	cached = (int)l;
	return l;
}

/* ---- packing ---- */

/* op(A)[i][k] */
static inline float at_a(const float *A, int lda, int ta, int i, int k)
{
	return ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
}

typedef tl_gemm_matrix matrix_src;

/* op(A) rows [i0, i0+n), depth [k0, k0+kc) -> dst[k][R], scaled by alpha */
static void pack_matrix_a(const void *ctx, int k0, int kc, int i0, int n, int R, float *dst)
{
	const matrix_src *m = ctx;
	if (!m->trans) {
		for (int r = 0; r < n; r++) {
			const float *src = m->X + (size_t)(i0 + r) * m->ld + k0;
			for (int k = 0; k < kc; k++)
				dst[k * R + r] = m->alpha * src[k];
		}
	} else {
		for (int k = 0; k < kc; k++) {
			const float *src = m->X + (size_t)(k0 + k) * m->ld + i0;
			for (int r = 0; r < n; r++)
				dst[k * R + r] = m->alpha * src[r];
		}
	}
	for (int r = n; r < R; r++)
		for (int k = 0; k < kc; k++)
			dst[k * R + r] = 0;
}

/* op(B) depth [k0, k0+kc), columns [j0, j0+n) -> dst[k][R] */
static void pack_matrix_b(const void *ctx, int k0, int kc, int j0, int n, int R, float *dst)
{
	const matrix_src *m = ctx;
	if (!m->trans) {
		for (int k = 0; k < kc; k++) {
			const float *src = m->X + (size_t)(k0 + k) * m->ld + j0;
			float *d = dst + k * R;
			memcpy(d, src, sizeof(float) * (size_t)n);
			for (int c = n; c < R; c++)
				d[c] = 0;
		}
	} else {
		for (int c = 0; c < n; c++) {
			const float *src = m->X + (size_t)(j0 + c) * m->ld + k0;
			for (int k = 0; k < kc; k++)
				dst[k * R + c] = src[k];
		}
		for (int c = n; c < R; c++)
			for (int k = 0; k < kc; k++)
				dst[k * R + c] = 0;
	}
}

typedef struct {
	const kernel *kn;
	int M, N, K;
	tl_gemm_src a, b;
	int ldc;
	float *C;
	int n_ip, m_pad;
	/* current block */
	int j0, nc, p0, kc, n_jp, n_pc;
	int a_whole; /* ap holds all KC blocks of A (else only the current one) */
	int kcb;     /* depth of every block but maybe the last (<= TL_GEMM_KC) */
	float *ap, *bp;
} job;

/* Pack all of op(A) once: item t = (pc, ip); block pc holds kc x m_pad. */
static void pack_a(void *ctx, size_t t0, size_t t1, int tid)
{
	job *g = ctx;
	int MR = g->kn->mr;
	for (size_t t = t0; t < t1; t++) {
		int pc = (int)(t / (size_t)g->n_ip), ip = (int)(t % (size_t)g->n_ip);
		int p0 = pc * g->kcb, kc = g->K - p0 < g->kcb ? g->K - p0 : g->kcb;
		int i0 = ip * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
		float *d = g->ap + (size_t)p0 * g->m_pad + (size_t)ip * kc * MR;
		g->a.fn(g->a.ctx, p0, kc, i0, mr, MR, d);
	}
}

/* Pack NR-column panels [jp0, jp1) of op(B)[p0:p0+kc, j0:j0+nc].  A plain
 * row-major B is copied row by row across all the panels (sequential reads);
 * other sources pack panel by panel. */
static void pack_b(void *ctx, size_t jp0, size_t jp1, int tid)
{
	job *g = ctx;
	int NR = g->kn->nr;
	const matrix_src *m = g->b.ctx;
	if (g->b.fn == pack_matrix_b && !m->trans) {
		int j_hi = g->j0 + (int)jp1 * NR;
		if (j_hi > g->j0 + g->nc)
			j_hi = g->j0 + g->nc;
		for (int k = 0; k < g->kc; k++) {
			const float *src = m->X + (size_t)(g->p0 + k) * m->ld;
			for (size_t jp = jp0; jp < jp1; jp++) {
				int j = g->j0 + (int)jp * NR, nr = j_hi - j < NR ? j_hi - j : NR;
				float *d = g->bp + jp * (size_t)g->kc * NR + (size_t)k * NR;
				memcpy(d, src + j, sizeof(float) * (size_t)nr);
				for (int c = nr; c < NR; c++)
					d[c] = 0;
			}
		}
		return;
	}
	for (size_t jp = jp0; jp < jp1; jp++) {
		int j = g->j0 + (int)jp * NR;
		int nr = g->j0 + g->nc - j < NR ? g->j0 + g->nc - j : NR;
		g->b.fn(g->b.ctx, g->p0, g->kc, j, nr, NR, g->bp + jp * (size_t)g->kc * NR);
	}
}

/* Tiles t in [t0, t1): jp = t / n_ip (outer, B panel reused), ip = t % n_ip. */
static void run_tiles(void *ctx, size_t t0, size_t t1, int tid)
{
	job *g = ctx;
	int MR = g->kn->mr, NR = g->kn->nr;
	const float *ablock = g->ap + (g->a_whole ? (size_t)g->p0 * g->m_pad : 0);
	for (size_t t = t0; t < t1; t++) {
		int jp = (int)(t / (size_t)g->n_ip), ip = (int)(t % (size_t)g->n_ip);
		int i0 = ip * MR, j = g->j0 + jp * NR;
		int mr = g->M - i0 < MR ? g->M - i0 : MR;
		int nr = g->j0 + g->nc - j < NR ? g->j0 + g->nc - j : NR;
		g->kn->fn(g->kc, ablock + (size_t)ip * g->kc * MR, g->bp + (size_t)jp * g->kc * NR,
			  g->C + (size_t)i0 * g->ldc + j, g->ldc, mr, nr);
	}
}

static void scale_c(float *C, int ldc, int M, int N, float beta)
{
	if (beta == 1.0f)
		return;
	for (int i = 0; i < M; i++) {
		float *ci = C + (size_t)i * ldc;
		if (beta == 0.0f)
			memset(ci, 0, sizeof(float) * (size_t)N);
		else
			for (int j = 0; j < N; j++)
				ci[j] *= beta;
	}
}

static void pack_all_a(tl_pool *pool, job *g)
{
	int nt = tl_pool_size(pool);
	size_t at = (size_t)g->n_pc * g->n_ip;
	tl_pool_for(pool, at, at / (4 * (size_t)nt) + 1, pack_a, g);
}

/* Pack one KC block of A (all row panels) at g->p0 into g->ap's block. */
static void pack_a_block(void *ctx, size_t ip0, size_t ip1, int tid)
{
	job *g = ctx;
	int MR = g->kn->mr;
	for (size_t ip = ip0; ip < ip1; ip++) {
		int i0 = (int)ip * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
		g->a.fn(g->a.ctx, g->p0, g->kc, i0, mr, MR, g->ap + ip * (size_t)g->kc * MR);
	}
}

static void job_init(job *g, tl_cpu_level lvl, int M, int N, int K)
{
	memset(g, 0, sizeof *g);
	g->kn = &kernels[lvl];
	g->M = M, g->N = N, g->K = K;
	g->n_ip = (M + g->kn->mr - 1) / g->kn->mr;
	g->m_pad = g->n_ip * g->kn->mr;
	g->n_pc = (K + TL_GEMM_KC - 1) / TL_GEMM_KC;
	/* equal blocks: K = 256 runs as 128 + 128, not 192 + a short 64 */
	g->kcb = K > 0 ? (K + g->n_pc - 1) / g->n_pc : 1;
}

/* The blocked loops.  a_packed: all of A is in g->ap already; otherwise
 * (one column block only) each KC block of A is packed just before use,
 * so a deep A never needs M x K of scratch. */
static void gemm_loops(tl_pool *pool, job *g, int a_packed)
{
	int NR = g->kn->nr, nt = tl_pool_size(pool);
	int kc_max = g->kcb;
	int nc_max = g->N < TL_GEMM_NC ? g->N : TL_GEMM_NC;
	g->bp = aligned_alloc(64, tl_align64((size_t)((nc_max + NR - 1) / NR) * NR * kc_max *
					     sizeof(float)));
	TL_CHECK(g->bp);
	g->a_whole = a_packed;
	for (g->j0 = 0; g->j0 < g->N; g->j0 += TL_GEMM_NC) {
		g->nc = g->N - g->j0 < TL_GEMM_NC ? g->N - g->j0 : TL_GEMM_NC;
		g->n_jp = (g->nc + NR - 1) / NR;
		for (g->p0 = 0; g->p0 < g->K; g->p0 += g->kcb) {
			g->kc = g->K - g->p0 < g->kcb ? g->K - g->p0 : g->kcb;
			if (!a_packed)
				tl_pool_for(pool, (size_t)g->n_ip, (size_t)g->n_ip / (2 * (size_t)nt) + 1,
					    pack_a_block, g);
			tl_pool_for(pool, (size_t)g->n_jp, (size_t)(g->n_jp + nt - 1) / nt, pack_b, g);
			size_t tiles = (size_t)g->n_ip * g->n_jp;
			tl_pool_for(pool, tiles, tiles / (4 * (size_t)nt) + 1, run_tiles, g);
		}
	}
	free(g->bp);
}

static void gemm_run(tl_cpu_level lvl, tl_pool *pool, int M, int N, int K, tl_gemm_src a,
		     tl_gemm_src b, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	scale_c(C, ldc, M, N, beta);
	if (K <= 0)
		return;
	job g;
	job_init(&g, lvl, M, N, K);
	g.a = a, g.b = b, g.C = C, g.ldc = ldc;
	int one_block = N <= TL_GEMM_NC;
	/* one column block: A blocks are used once, pack each KC block in turn */
	size_t an = one_block ? (size_t)g.m_pad * g.kcb : (size_t)g.m_pad * K;
	g.ap = aligned_alloc(64, tl_align64(an * sizeof(float)));
	TL_CHECK(g.ap);
	if (!one_block)
		pack_all_a(pool, &g);
	gemm_loops(pool, &g, !one_block);
	free(g.ap);
}

void tl_sgemm_level(tl_cpu_level lvl, tl_pool *pool, int ta, int tb, int M, int N, int K,
		    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
		    float *C, int ldc)
{
	if (alpha == 0.0f) {
		scale_c(C, ldc, M, N, beta);
		return;
	}
	matrix_src ma = {A, lda, ta, alpha}, mb = {B, ldb, tb, 1.0f};
	gemm_run(lvl, pool, M, N, K, (tl_gemm_src){pack_matrix_a, &ma},
		 (tl_gemm_src){pack_matrix_b, &mb}, beta, C, ldc);
}

tl_gemm_src tl_gemm_matrix_a(const tl_gemm_matrix *m)
{
	return (tl_gemm_src){pack_matrix_a, m};
}

tl_gemm_src tl_gemm_matrix_b(const tl_gemm_matrix *m)
{
	return (tl_gemm_src){pack_matrix_b, m};
}

void tl_sgemm_src(tl_pool *pool, int M, int N, int K, tl_gemm_src a, tl_gemm_src b, float beta,
		  float *C, int ldc)
{
	gemm_run(tl_cpu_detect(), pool, M, N, K, a, b, beta, C, ldc);
}

void tl_sgemm(tl_pool *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
	      int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	tl_sgemm_level(tl_cpu_detect(), pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void tl_sgemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		    const float *B, int ldb, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double acc = 0;
			for (int k = 0; k < K; k++)
				acc += (double)at_a(A, lda, ta, i, k) *
				       (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
			float *c = C + (size_t)i * ldc + j;
			*c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
		}
}
