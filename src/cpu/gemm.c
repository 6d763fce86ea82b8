/* gemm.c - packed, blocked, threaded SGEMM (see gemm.h). */
#include "cpu/gemm.h"
#include "cpu/scratch.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TL_GEMM_KC
#define TL_GEMM_KC 192 /* depth of a packed block: KC x NR of B stays in L1 */
#endif
#define MAX_MR 8
#define MAX_NR 32

/* C[mr x nr] (+)= a . b over depth k: the valid mr x nr corner of an MR x NR
 * tile; acc = 0 overwrites C (no read), acc = 1 adds to it. */
typedef void (*kernel_fn)(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr,
			  int acc);

typedef struct {
	int mr, nr;
	kernel_fn fn;
	int bf16; /* panels hold bf16 depth pairs (see to_pairs) */
} kernel;

/* ---- micro-kernels: a is [k][MR], b is [k][NR], both packed ---- */

static void add_tile(float *c, int ldc, const float *t, int ld_t, int mr, int nr, int acc)
{
	for (int i = 0; i < mr; i++)
		for (int j = 0; j < nr; j++)
			c[(size_t)i * ldc + j] = t[i * ld_t + j] + (acc ? c[(size_t)i * ldc + j] : 0.0f);
}

static void kern_scalar(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr,
			int acc_c)
{
	float acc[4][8] = {{0}};
	for (int p = 0; p < k; p++, a += 4, b += 8)
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 8; j++)
				acc[i][j] += a[i] * b[j];
	add_tile(c, ldc, &acc[0][0], 8, mr, nr, acc_c);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void
kern_avx2(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr, int acc)
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
			if (acc) {
				c0[i] = _mm256_add_ps(_mm256_loadu_ps(ci), c0[i]);
				c1[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), c1[i]);
			}
			_mm256_storeu_ps(ci, c0[i]);
			_mm256_storeu_ps(ci + 8, c1[i]);
		}
		return;
	}
	float t[6 * 16];
	for (int i = 0; i < 6; i++) {
		_mm256_storeu_ps(t + i * 16, c0[i]);
		_mm256_storeu_ps(t + i * 16 + 8, c1[i]);
	}
	add_tile(c, ldc, t, 16, mr, nr, acc);
}

/* C[mr x nr] (acc: +)= the 8 x 32 tile held in c0 (columns 0-15) and c1. */
__attribute__((target("avx512f"))) static inline void
store512(__m512 *c0, __m512 *c1, float *c, int ldc, int mr, int nr, int acc)
{
	if (nr == 32) { /* full width (all or some rows) */
		for (int i = 0; i < mr; i++) {
			float *ci = c + (size_t)i * ldc;
			if (acc) {
				c0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), c0[i]);
				c1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c1[i]);
			}
			_mm512_storeu_ps(ci, c0[i]);
			_mm512_storeu_ps(ci + 16, c1[i]);
		}
		return;
	}
	/* partial width: masked loads/stores */
	__mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
	__mmask16 m1 = (__mmask16)(nr <= 16 ? 0 : nr >= 32 ? 0xffff : (1u << (nr - 16)) - 1);
	for (int i = 0; i < mr; i++) {
		float *ci = c + (size_t)i * ldc;
		if (acc) {
			c0[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), c0[i]);
			c1[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), c1[i]);
		}
		_mm512_mask_storeu_ps(ci, m0, c0[i]);
		if (m1)
			_mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
	}
}

__attribute__((target("avx512f"))) static void
kern_avx512(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr, int acc)
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
	store512(c0, c1, c, ldc, mr, nr, acc);
}

/* The bf16 kernel, 8 x 32: a is [k/2][8] and b is [k/2][32] depth pairs
 * (two bf16 in 32 bits, the lower one first in depth, see to_pairs);
 * vdpbf16ps adds both products of a pair to each fp32 accumulator. */
__attribute__((target("avx512f,avx512bf16"))) static void
kern_bf16(int k, const float *a, const float *b, float *c, int ldc, int mr, int nr, int acc)
{
	__m512 c0[8], c1[8];
	for (int i = 0; i < 8; i++)
		c0[i] = c1[i] = _mm512_setzero_ps();
	for (int p = 0; p < k; p += 2, a += 8, b += 32) {
		__m512bh b0 = (__m512bh)_mm512_loadu_ps(b), b1 = (__m512bh)_mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++) {
			__m512bh av = (__m512bh)_mm512_set1_ps(a[i]); /* the pair's bits, broadcast */
			c0[i] = _mm512_dpbf16_ps(c0[i], av, b0);
			c1[i] = _mm512_dpbf16_ps(c1[i], av, b1);
		}
	}
	store512(c0, c1, c, ldc, mr, nr, acc);
}

/* A packed [k][R] float panel (R = MR or NR: 8 or 32) rewritten in place
 * as [ceil(k/2)][R] depth pairs: 32 bits holding bf16(row 2q, r) low and
 * bf16(row 2q + 1, r) high (zero past row k - 1).  Pair row q overwrites
 * float row q, which pair row q / 2 < q (or q itself, read first) has
 * already consumed. */
__attribute__((target("avx512f,avx512bf16"))) static void to_pairs(float *p, int k, int R)
{
	for (int q = 0; q < (k + 1) / 2; q++)
		for (int r = 0; r < R; r += 16) {
			__mmask16 m = (__mmask16)(R - r >= 16 ? 0xffff : (1u << (R - r)) - 1);
			__m512 lo = _mm512_maskz_loadu_ps(m, p + (size_t)(2 * q) * R + r);
			__m512 hi = 2 * q + 1 < k ? _mm512_maskz_loadu_ps(m, p + (size_t)(2 * q + 1) * R + r)
						  : _mm512_setzero_ps();
			__m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
			__m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
			_mm512_mask_storeu_epi32(p + (size_t)q * R + r, m,
						 _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
		}
}
#endif

/* Indexed by tl_cpu_level, then the bf16 kernel (KERN_BF16). */
static const kernel kernels[] = {
	{4, 8, kern_scalar, 0},
#if defined(__x86_64__)
	{6, 16, kern_avx2, 0},
	{8, 32, kern_avx512, 0},
	{8, 32, kern_bf16, 1},
#else
	{4, 8, kern_scalar, 0},
	{4, 8, kern_scalar, 0},
	{4, 8, kern_scalar, 0},
#endif
};
#define KERN_BF16 3

static atomic_int precision = TL_GEMM_FP32;

int tl_gemm_set_precision(tl_gemm_precision p)
{
	if (p != TL_GEMM_FP32 && p != TL_GEMM_BF16 && p != TL_GEMM_BF16_EMULATED)
		return -1;
	if (p == TL_GEMM_BF16 && !tl_cpu_bf16())
		return -1;
	atomic_store(&precision, (int)p);
	return 0;
}

tl_gemm_precision tl_gemm_get_precision(void)
{
	return (tl_gemm_precision)atomic_load(&precision);
}

const char *tl_gemm_precision_name(tl_gemm_precision p)
{
	return p == TL_GEMM_BF16 ? "bf16" : p == TL_GEMM_BF16_EMULATED ? "bf16-emulated" : "fp32";
}

/* The kernel for a GEMM at level lvl under the precision in effect (bf16
 * only at avx512: a lower level asked for explicitly stays fp32). */
static int kernel_index(tl_cpu_level lvl)
{
	return lvl == TL_CPU_AVX512 && atomic_load(&precision) == TL_GEMM_BF16 && tl_cpu_bf16()
		       ? KERN_BF16
		       : (int)lvl;
}

/* The scalar twin of to_pairs' rounding (vcvtneps2bf16). */
float tl_bf16_round(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		u |= 0x00400000u; /* NaN: quiet, payload's top bits kept */
	else if ((u & 0x7f800000u) == 0)
		u &= 0x80000000u; /* denormal: signed zero, as vcvtneps2bf16 */
	else
		u += 0x7fffu + ((u >> 16) & 1u);
	u &= 0xffff0000u;
	memcpy(&x, &u, sizeof x);
	return x;
}

/* ---- packing ---- */

static void pack_t8_scalar(const float *const rows[8], int n, float alpha, float *dst, int ldd)
{
	for (int k = 0; k < n; k++)
		for (int r = 0; r < 8; r++)
			dst[(size_t)k * ldd + r] = alpha * rows[r][k];
}

#if defined(__x86_64__)
/* 8 x 8 blocks transposed in registers: 8 loads, 24 shuffles, 8 stores for
 * 64 floats instead of 64 scalar loads and stores. */
__attribute__((target("avx2"))) static int pack_t8_avx2(const float *const rows[8], int n,
							float alpha, float *dst, int ldd)
{
	__m256 al = _mm256_set1_ps(alpha);
	int k = 0;
	for (; k + 8 <= n; k += 8) {
		__m256 r[8], t[8], u[8];
		for (int i = 0; i < 8; i++)
			r[i] = _mm256_mul_ps(_mm256_loadu_ps(rows[i] + k), al);
		for (int i = 0; i < 8; i += 2) {
			t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
			t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
		}
		for (int i = 0; i < 8; i += 4) {
			u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
			u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
			u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
			u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
		}
		float *d = dst + (size_t)k * ldd;
		for (int i = 0; i < 4; i++) {
			_mm256_storeu_ps(d + (size_t)i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
			_mm256_storeu_ps(d + (size_t)(i + 4) * ldd,
					 _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
		}
	}
	/* a 4-long run (the 2x2 maps of GoogLeNet's inception 5 at 64x64 give
	 * nothing longer): rows i and i+4 share a register, so one in-lane 4 x 4
	 * transpose yields whole 8-float output rows. */
	if (k + 4 <= n) {
		__m256 r[4], t[4];
		for (int i = 0; i < 4; i++)
			r[i] = _mm256_mul_ps(
				_mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rows[i] + k)),
						     _mm_loadu_ps(rows[i + 4] + k), 1),
				al);
		t[0] = _mm256_unpacklo_ps(r[0], r[1]);
		t[1] = _mm256_unpackhi_ps(r[0], r[1]);
		t[2] = _mm256_unpacklo_ps(r[2], r[3]);
		t[3] = _mm256_unpackhi_ps(r[2], r[3]);
		float *d = dst + (size_t)k * ldd;
		_mm256_storeu_ps(d, _mm256_shuffle_ps(t[0], t[2], 0x44));
		_mm256_storeu_ps(d + ldd, _mm256_shuffle_ps(t[0], t[2], 0xee));
		_mm256_storeu_ps(d + 2 * (size_t)ldd, _mm256_shuffle_ps(t[1], t[3], 0x44));
		_mm256_storeu_ps(d + 3 * (size_t)ldd, _mm256_shuffle_ps(t[1], t[3], 0xee));
		k += 4;
	}
	return k;
}
#endif

void tl_pack_t8(const float *const rows[8], int n, float alpha, float *dst, int ldd)
{
	int k = 0;
#if defined(__x86_64__)
	if (tl_cpu_detect() >= TL_CPU_AVX2)
		k = pack_t8_avx2(rows, n, alpha, dst, ldd);
#endif
	if (k < n) {
		const float *rest[8];
		for (int r = 0; r < 8; r++)
			rest[r] = rows[r] + k;
		pack_t8_scalar(rest, n - k, alpha, dst + (size_t)k * ldd, ldd);
	}
}

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
	if (!m->trans && R == 8 && n == 8) {
		const float *rows[8];
		for (int r = 0; r < 8; r++)
			rows[r] = m->X + (size_t)(i0 + r) * m->ld + k0;
		tl_pack_t8(rows, kc, m->alpha, dst, 8);
		return;
	}
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
		if (n == MAX_NR && R == MAX_NR) { /* a full AVX-512 panel: fixed-size copies inline */
			for (int k = 0; k < kc; k++)
				memcpy(dst + k * MAX_NR, m->X + (size_t)(k0 + k) * m->ld + j0,
				       sizeof(float) * MAX_NR);
			return;
		}
		for (int k = 0; k < kc; k++) {
			const float *src = m->X + (size_t)(k0 + k) * m->ld + j0;
			float *d = dst + k * R;
			memcpy(d, src, sizeof(float) * (size_t)n);
			for (int c = n; c < R; c++)
				d[c] = 0;
		}
	} else {
		int c = 0;
		for (; c + 8 <= n; c += 8) { /* eight columns at a time through 8 x 8 transposes */
			const float *rows[8];
			for (int r = 0; r < 8; r++)
				rows[r] = m->X + (size_t)(j0 + c + r) * m->ld + k0;
			tl_pack_t8(rows, kc, 1.0f, dst + c, R);
		}
		for (; c < n; c++) {
			const float *src = m->X + (size_t)(j0 + c) * m->ld + k0;
			for (int k = 0; k < kc; k++)
				dst[k * R + c] = src[k];
		}
		for (c = n; c < R; c++)
			for (int k = 0; k < kc; k++)
				dst[k * R + c] = 0;
	}
}

/* ---- the driver ----
 * Columns of C are cut into chunks; a thread takes a whole chunk and runs
 * the full depth for it on its own (one B panel packed at a time, used hot
 * by every A panel), so a GEMM costs one or two hand-offs to the pool, not
 * three per KC block.  op(A) is packed once, whole, by all threads first.
 * When there are too few chunks to feed the threads and the depth is long
 * (weight gradients of a 3-channel input: N = 27), the depth is also cut
 * into a fixed number of slices summed in a fixed order, so results do not
 * depend on which thread ran what. */

#ifndef TL_GEMM_MC
#define TL_GEMM_MC 512 /* rows of packed A per pass: MC x KC stays in L2 */
#endif
#ifndef TL_GEMM_CT_FLOATS
#define TL_GEMM_CT_FLOATS (256u << 10) /* a chunk's C buffer for an epilogue (1 MiB) */
#endif
#define MAX_SLICES 4

typedef struct {
	const kernel *kn;
	int emulate; /* TL_GEMM_BF16_EMULATED: round panels to bf16 values in place */
	int M, N, K;
	tl_gemm_src a, b;
	float *C; /* NULL: chunks go through epi */
	int ldc, acc0; /* acc0: C holds values to add to (beta != 0) */
	tl_gemm_epi epi;
	int n_ip, m_pad, n_pc, kcb;
	int chunk, n_chunks; /* columns per chunk (a multiple of NR) */
	int slices, slice_len; /* depth slices (a multiple of kcb long) */
	float *ap;	       /* all of op(A) packed: block pc at ap + p0 * m_pad */
	float *part[MAX_SLICES]; /* slice s > 0 sums into part[s] [M][N] */
	float **panel, **ct;	 /* per thread: one packed B panel, a chunk's C */
} job;

/* A freshly packed [k][R] panel made ready for the kernel: bf16 depth
 * pairs for the bf16 kernel, bf16 values kept as floats when emulating. */
static void round_panel(const job *g, float *p, int k, int R)
{
#if defined(__x86_64__)
	if (g->kn->bf16) {
		to_pairs(p, k, R);
		return;
	}
#endif
	if (g->emulate)
		for (size_t i = 0; i < (size_t)k * R; i++)
			p[i] = tl_bf16_round(p[i]);
}

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
		round_panel(g, d, kc, MR);
	}
}

/* C[:, j0:j0+n] (acc: +)= op(A)[:, k0:k1] op(B)[k0:k1, j0:j0+n] on one
 * thread; k0 and k1 fall on KC block edges. */
static void run_block(job *g, float *panel, int j0, int n, int k0, int k1, float *C, int ldc,
		      int acc)
{
	int MR = g->kn->mr, NR = g->kn->nr;
	int ip_mc = TL_GEMM_MC / MR;
	for (int p0 = k0; p0 < k1; p0 += g->kcb, acc = 1) {
		int kc = k1 - p0 < g->kcb ? k1 - p0 : g->kcb;
		const float *ablock = g->ap + (size_t)p0 * g->m_pad;
		for (int ic = 0; ic < g->n_ip; ic += ip_mc) {
			int ic_end = ic + ip_mc < g->n_ip ? ic + ip_mc : g->n_ip;
			for (int jj = 0; jj < n; jj += NR) {
				int nr = n - jj < NR ? n - jj : NR;
				g->b.fn(g->b.ctx, p0, kc, j0 + jj, nr, NR, panel);
				round_panel(g, panel, kc, NR);
				for (int ip = ic; ip < ic_end; ip++) {
					int i0 = ip * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
					g->kn->fn(kc, ablock + (size_t)ip * kc * MR, panel,
						  C + (size_t)i0 * ldc + jj, ldc, mr, nr, acc);
				}
			}
		}
	}
}

/* Work item t = (slice, chunk). */
static void run_items(void *ctx, size_t t0, size_t t1, int tid)
{
	job *g = ctx;
	for (size_t t = t0; t < t1; t++) {
		int sl = (int)(t / (size_t)g->n_chunks), ch = (int)(t % (size_t)g->n_chunks);
		int j0 = ch * g->chunk, n = g->N - j0 < g->chunk ? g->N - j0 : g->chunk;
		int k0 = sl * g->slice_len, k1 = k0 + g->slice_len < g->K ? k0 + g->slice_len : g->K;
		if (sl > 0)
			run_block(g, g->panel[tid], j0, n, k0, k1, g->part[sl] + j0, g->N, 0);
		else if (g->C)
			run_block(g, g->panel[tid], j0, n, k0, k1, g->C + j0, g->ldc, g->acc0);
		else {
			run_block(g, g->panel[tid], j0, n, k0, k1, g->ct[tid], g->chunk, 0);
			g->epi.fn(g->epi.ctx, j0, n, g->ct[tid], g->chunk);
		}
	}
}

/* C += part[1] + part[2] + ..., rows [i0, i1), in slice order. */
static void sum_slices(void *ctx, size_t i0, size_t i1, int tid)
{
	job *g = ctx;
	for (size_t i = i0; i < i1; i++) {
		float *c = g->C + i * g->ldc;
		for (int s = 1; s < g->slices; s++) {
			const float *p = g->part[s] + i * g->N;
			for (int j = 0; j < g->N; j++)
				c[j] += p[j];
		}
	}
}

/* The kernel and blocking for M x K at level lvl. */
static void plan_at(tl_gemm_plan *p, tl_cpu_level lvl, int M, int K)
{
	int ki = kernel_index(lvl);
	const kernel *kn = &kernels[ki];
	p->kern = ki;
	p->emulate = atomic_load(&precision) == TL_GEMM_BF16_EMULATED;
	p->M = M, p->K = K;
	p->n_ip = (M + kn->mr - 1) / kn->mr;
	p->m_pad = p->n_ip * kn->mr;
	p->n_pc = (K + TL_GEMM_KC - 1) / TL_GEMM_KC;
	/* equal blocks: K = 256 runs as 128 + 128, not 192 + a short 64 */
	p->kcb = K > 0 ? (K + p->n_pc - 1) / p->n_pc : 1;
}

/* A job with p's shape and blocking, nothing else set. */
static void plan_job(const tl_gemm_plan *p, job *g)
{
	memset(g, 0, sizeof *g);
	g->kn = &kernels[p->kern];
	g->emulate = p->emulate;
	g->M = p->M, g->K = p->K;
	g->n_ip = p->n_ip, g->m_pad = p->m_pad, g->n_pc = p->n_pc, g->kcb = p->kcb;
}

/* A batch of same-shaped GEMMs run as one: item t of n is item t % per of
 * job t / per. */
typedef struct {
	job *g;
	size_t per;
	void (*fn)(void *, size_t, size_t, int);
} batch;

static void batch_items(void *ctx, size_t t0, size_t t1, int tid)
{
	batch *b = ctx;
	while (t0 < t1) {
		size_t e = t0 / b->per, lo = t0 % b->per, hi = t1 - t0 < b->per - lo ? lo + (t1 - t0) : b->per;
		b->fn(&b->g[e], lo, hi, tid);
		t0 += hi - lo;
	}
}

static void pool_for_batch(tl_pool *pool, job *g, int count, size_t per, size_t grain,
			   void (*fn)(void *, size_t, size_t, int))
{
	batch b = {g, per, fn};
	tl_pool_for(pool, (size_t)count * per, grain, batch_items, &b);
}

/* C[e] = op(A[e]) op(B[e]) + (acc0 ? C[e] : 0) for e < count, or (count 1)
 * through epi when C[0] is NULL: one hand-off to pack every A, one to run
 * every column chunk (and one to sum depth slices, count 1 only). */
static void gemm_run_batch(tl_cpu_level lvl, tl_pool *pool, int count, int M, int N, int K,
			   const tl_gemm_src *a, const tl_gemm_src *b, float *const *C, int ldc,
			   int acc0, tl_gemm_epi epi)
{
	tl_gemm_plan pl;
	plan_at(&pl, lvl, M, K);
	job g;
	plan_job(&pl, &g);
	int NR = g.kn->nr, nt = tl_pool_size(pool);
	g.N = N, g.ldc = ldc, g.acc0 = acc0, g.epi = epi;

	int n_jp = (N + NR - 1) / NR;
	/* about two chunks per thread to even out the load; one when the panels
	 * are few, so each A block read from L3 serves at least four of them */
	int ways = (size_t)count * n_jp >= 16 * (size_t)nt ? 2 * nt : nt;
	ways = (ways + count - 1) / count;
	int per = (n_jp + ways - 1) / ways;
	int cap = (int)(TL_GEMM_CT_FLOATS / (size_t)g.m_pad / (size_t)NR);
	if (!C[0] && per > cap)
		per = cap > 0 ? cap : 1;
	g.chunk = per * NR;
	g.n_chunks = (N + g.chunk - 1) / g.chunk;
	/* depth slices only where chunks are too few and the depth is long */
	g.slices = 1;
	if (count == 1 && C[0] && !acc0 && g.n_chunks < nt && g.n_pc >= 8) {
		g.slices = (nt + g.n_chunks - 1) / g.n_chunks;
		if (g.slices > MAX_SLICES)
			g.slices = MAX_SLICES;
	}
	int pcs = (g.n_pc + g.slices - 1) / g.slices;
	g.slices = (g.n_pc + pcs - 1) / pcs; /* none empty */
	g.slice_len = pcs * g.kcb;
	TL_CHECK(count == 1 || C[0]);

	for (int s = 1; s < g.slices; s++)
		g.part[s] = tl_scratch_get((size_t)M * N);
	g.panel = calloc((size_t)nt, sizeof *g.panel);
	g.ct = calloc((size_t)nt, sizeof *g.ct);
	job *gs = malloc(sizeof *gs * (size_t)count);
	TL_CHECK(g.panel && g.ct && gs);
	for (int t = 0; t < nt; t++) {
		g.panel[t] = tl_scratch_get((size_t)g.kcb * NR);
		if (!C[0])
			g.ct[t] = tl_scratch_get((size_t)M * g.chunk);
	}
	float *ap = tl_scratch_get((size_t)count * g.m_pad * K);
	for (int e = 0; e < count; e++) {
		gs[e] = g;
		gs[e].a = a[e], gs[e].b = b[e], gs[e].C = C[e];
		gs[e].ap = ap + (size_t)e * g.m_pad * K;
	}

	size_t at = (size_t)g.n_pc * g.n_ip;
	pool_for_batch(pool, gs, count, at, (size_t)count * at / (4 * (size_t)nt) + 1, pack_a);
	pool_for_batch(pool, gs, count, (size_t)g.slices * g.n_chunks, 1, run_items);
	if (g.slices > 1)
		tl_pool_for(pool, (size_t)M, (size_t)M / (2 * (size_t)nt) + 1, sum_slices, &gs[0]);

	for (int t = 0; t < nt; t++) {
		tl_scratch_put(g.panel[t]);
		tl_scratch_put(g.ct[t]);
	}
	free(g.panel);
	free(g.ct);
	for (int s = 1; s < g.slices; s++)
		tl_scratch_put(g.part[s]);
	tl_scratch_put(ap);
	free(gs);
}

static void gemm_run(tl_cpu_level lvl, tl_pool *pool, int M, int N, int K, tl_gemm_src a,
		     tl_gemm_src b, float *C, int ldc, int acc0, tl_gemm_epi epi)
{
	gemm_run_batch(lvl, pool, 1, M, N, K, &a, &b, &C, ldc, acc0, epi);
}

static void scale_c(float *C, int ldc, int M, int N, float beta)
{
	for (int i = 0; i < M; i++) {
		float *ci = C + (size_t)i * ldc;
		if (beta == 0.0f)
			memset(ci, 0, sizeof(float) * (size_t)N);
		else
			for (int j = 0; j < N; j++)
				ci[j] *= beta;
	}
}

/* The shared entry: empty shapes and beta handled here. */
static void gemm_entry(tl_cpu_level lvl, tl_pool *pool, int M, int N, int K, tl_gemm_src a,
		       tl_gemm_src b, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		scale_c(C, ldc, M, N, beta);
		return;
	}
	if (beta != 0.0f && beta != 1.0f)
		scale_c(C, ldc, M, N, beta);
	gemm_run(lvl, pool, M, N, K, a, b, C, ldc, beta != 0.0f, (tl_gemm_epi){0});
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
	gemm_entry(lvl, pool, M, N, K, (tl_gemm_src){pack_matrix_a, &ma},
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
	gemm_entry(tl_cpu_detect(), pool, M, N, K, a, b, beta, C, ldc);
}

void tl_sgemm_batch(tl_pool *pool, int count, int M, int N, int K, const tl_gemm_src *a,
		    const tl_gemm_src *b, float *const *C, int ldc, int acc)
{
	if (count <= 0 || M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		for (int e = 0; e < count && !acc; e++)
			scale_c(C[e], ldc, M, N, 0.0f);
		return;
	}
	gemm_run_batch(tl_cpu_detect(), pool, count, M, N, K, a, b, C, ldc, acc, (tl_gemm_epi){0});
}

void tl_gemm_plan_init(tl_gemm_plan *p, int M, int K)
{
	plan_at(p, tl_cpu_detect(), M, K);
}

size_t tl_gemm_plan_a_floats(const tl_gemm_plan *p)
{
	return (size_t)p->m_pad * (size_t)(p->K > 0 ? p->K : 1);
}

size_t tl_gemm_plan_panel_floats(const tl_gemm_plan *p)
{
	int kc = p->K < TL_GEMM_KC ? (p->K > 0 ? p->K : 1) : TL_GEMM_KC; /* >= kcb of any K' <= K */
	return (size_t)kc * (size_t)kernels[p->kern].nr;
}

void tl_gemm_plan_pack_a(const tl_gemm_plan *p, tl_gemm_src a, float *ap)
{
	job g;
	plan_job(p, &g);
	g.a = a, g.ap = ap;
	pack_a(&g, 0, (size_t)g.n_pc * g.n_ip, 0);
}

void tl_gemm_plan_run(const tl_gemm_plan *p, const float *ap, int N, tl_gemm_src b, float *C,
		      int ldc, int acc, float *panel)
{
	if (p->M <= 0 || N <= 0)
		return;
	if (p->K <= 0) {
		if (!acc)
			scale_c(C, ldc, p->M, N, 0.0f);
		return;
	}
	job g;
	plan_job(p, &g);
	g.b = b, g.ap = (float *)ap;
	run_block(&g, panel, 0, N, 0, p->K, C, ldc, acc);
}

void tl_sgemm_epi(tl_pool *pool, int M, int N, int K, tl_gemm_src a, tl_gemm_src b,
		  tl_gemm_epi epi)
{
	if (M > 0 && N > 0 && K > 0)
		gemm_run(tl_cpu_detect(), pool, M, N, K, a, b, NULL, 0, 0, epi);
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
