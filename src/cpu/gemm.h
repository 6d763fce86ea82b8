/* gemm.h - single-precision GEMM for the fast CPU backend.
 *
 * C[M][N] = alpha * op(A)[M][K] * op(B)[K][N] + beta * C, row-major,
 * op(X) = X or X^T.  All of op(A) packed once into MR-row panels (KC deep
 * blocks), C cut into column chunks that threads take whole, B packed one
 * KC x NR panel at a time right before the MC rows of A sweep it, and an
 * MR x NR register micro-kernel (AVX-512: 8 x 32, AVX2+FMA: 6 x 16,
 * scalar: 4 x 8).
 *
 * Precision (process-wide, fp32 unless asked): with TL_GEMM_BF16 the packed
 * panels of both operands are rounded to bfloat16 (round to nearest even)
 * and the AVX512-BF16 kernel sums their exact products in fp32, two depth
 * steps per instruction: twice the multiply rate of fp32 FMAs, operands
 * carrying 8 significant bits instead of 24.  C, and everything around the
 * GEMMs, stays fp32. */
#ifndef TL_CPU_GEMM_H
#define TL_CPU_GEMM_H

#include "cpu/cpu.h" /* tl_cpu_level, tl_cpu_detect */
#include "pool.h"

/* TL_GEMM_BF16_EMULATED: the panels rounded to bf16 values but kept as
 * floats for the fp32 kernel of the level in effect: the products the bf16
 * kernel computes, on any CPU, without its speed (the tests' oracle for
 * whole networks, where bf16 operands move results far from fp32). */
typedef enum { TL_GEMM_FP32 = 0, TL_GEMM_BF16 = 1, TL_GEMM_BF16_EMULATED = 2 } tl_gemm_precision;

/* Use precision p for every GEMM started from now on (and every plan
 * initialized from now on).  Returns 0, or -1 and changes nothing when this
 * CPU cannot (TL_GEMM_BF16 needs tl_cpu_bf16()). */
int tl_gemm_set_precision(tl_gemm_precision p);
tl_gemm_precision tl_gemm_get_precision(void);
/* "fp32", "bf16" or "bf16-emulated". */
const char *tl_gemm_precision_name(tl_gemm_precision p);

/* op(A) is M x K: ta = 0 reads A[i*lda + k], ta = 1 reads A[k*lda + i].
 * op(B) is K x N: tb = 0 reads B[k*ldb + j], tb = 1 reads B[j*ldb + k]. */
void tl_sgemm(tl_pool *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
	      int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The same at an explicit level (tests compare levels). */
void tl_sgemm_level(tl_cpu_level lvl, tl_pool *pool, int ta, int tb, int M, int N, int K,
		    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
		    float *C, int ldc);

/* A GEMM operand given by a function that packs it, so callers can pack
 * straight from their own layout (convolution packs image patches from the
 * input without an im2col buffer).  fn fills dst[k * R + r] with element
 * (row i0 + r, depth k0 + k) of op(A), or (depth k0 + k, column i0 + r) of
 * op(B), for k < kc and r < n, and zero for n <= r < R. */
typedef void (*tl_pack_fn)(const void *ctx, int k0, int kc, int i0, int n, int R, float *dst);
typedef struct {
	tl_pack_fn fn;
	const void *ctx;
} tl_gemm_src;

/* dst[k * ldd + r] = alpha * rows[r][k] for k < n, r < 8: the transpose
 * at the heart of packing rows whose depth runs along memory. */
void tl_pack_t8(const float *const rows[8], int n, float alpha, float *dst, int ldd);

/* A plain row-major matrix as an operand (alpha applies to A only). */
typedef struct {
	const float *X;
	int ld, trans;
	float alpha;
} tl_gemm_matrix;
tl_gemm_src tl_gemm_matrix_a(const tl_gemm_matrix *m);
tl_gemm_src tl_gemm_matrix_b(const tl_gemm_matrix *m);

/* C[M][N] = op(A) * op(B) + beta * C with both operands from packers. */
void tl_sgemm_src(tl_pool *pool, int M, int N, int K, tl_gemm_src a, tl_gemm_src b, float beta,
		  float *C, int ldc);

/* Where a chunk of finished columns goes: fn gets columns [j0, j0 + n) of
 * C (all M rows, full depth) as ct[i * ldt + (j - j0)], on the thread that
 * computed them, while they are still in cache. */
typedef void (*tl_gemm_epi_fn)(const void *ctx, int j0, int n, const float *ct, int ldt);
typedef struct {
	tl_gemm_epi_fn fn;
	const void *ctx;
} tl_gemm_epi;

/* op(A) * op(B) handed to epi chunk by chunk instead of stored in a C
 * (M, N, K > 0; does nothing otherwise).  Convolution scatters each chunk
 * straight to NCHW with bias and ReLU. */
void tl_sgemm_epi(tl_pool *pool, int M, int N, int K, tl_gemm_src a, tl_gemm_src b,
		  tl_gemm_epi epi);

/* C[e] (acc: +)= op(A[e]) op(B[e]) for e < count, all M x N x K with the
 * same ldc, run as one job (one parallel hand-off for all of them). */
void tl_sgemm_batch(tl_pool *pool, int count, int M, int N, int K, const tl_gemm_src *a,
		    const tl_gemm_src *b, float *const *C, int ldc, int acc);

/* Products run on the calling thread, for callers that share work among
 * threads at a coarser grain (Winograd: one image chunk per thread, every
 * stage in cache).  A plan fixes M, K, the kernel and the blocking; op(A)
 * is packed once into plan_a_floats() and reused for any N and B. */
typedef struct {
	int kern, emulate, M, K, n_ip, m_pad, n_pc, kcb; /* kern: which micro-kernel */
} tl_gemm_plan;

void tl_gemm_plan_init(tl_gemm_plan *p, int M, int K);
size_t tl_gemm_plan_a_floats(const tl_gemm_plan *p);
size_t tl_gemm_plan_panel_floats(const tl_gemm_plan *p);
/* ap (plan_a_floats) = op(A) packed. */
void tl_gemm_plan_pack_a(const tl_gemm_plan *p, tl_gemm_src a, float *ap);
/* C[M][N] (acc: +)= A . op(B) with A packed in ap; panel holds
 * plan_panel_floats() of scratch (enough for any plan of depth <= K). */
void tl_gemm_plan_run(const tl_gemm_plan *p, const float *ap, int N, tl_gemm_src b, float *C,
		      int ldc, int acc, float *panel);

/* x rounded to bfloat16 and back (round to nearest even, NaN kept), as the
 * bf16 panels hold it: tests build the exact reference of a bf16 GEMM. */
float tl_bf16_round(float x);

/* Triple loop, for tests. */
void tl_sgemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
		    const float *B, int ldb, float beta, float *C, int ldc);

#endif
