/* test_backend.c - the fast backend against the scalar reference on the
 * shapes that matter: SGEMM at every CPU level and thread count against a
 * double-precision triple loop (odd sizes, all transposes, alpha/beta,
 * sizes crossing the KC/NC blocking), and full-size VGG16 conv layers at
 * 32x32 input resolution, forward and backward, 1 and 2 threads. */
#include "tl_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/host.h"
#include "cpu/host.h"
#include "cpu/ref.h"

#define H TL_CPU_VIEW
#define NONE ((tl_mem){0})
#include "cpu/vec.h"
#include "cpu/winograd.h"

static uint32_t seed = 1;
static float frand(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) * (1.0 / 16777216.0)) * 2 - 1;
}

static float *frand_n(size_t n)
{
	float *p = malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

static void expect_close_arrays(const char *what, const float *got, const float *want, size_t n,
				double rtol)
{
	double maxref = 0, maxerr = 0;
	size_t worst = 0;
	for (size_t i = 0; i < n; i++) {
		if (fabs(want[i]) > maxref)
			maxref = fabs(want[i]);
		double e = fabs((double)got[i] - want[i]);
		if (e > maxerr)
			maxerr = e, worst = i;
	}
	if (!(maxerr <= rtol * maxref + 1e-6))
		fail_msg("%s: max error %.3g at %zu (got %.9g, want %.9g, max %.3g)", what, maxerr,
			 worst, got[worst], want[worst], maxref);
}

static void sgemm_matches_naive(void **state)
{
	(void)state;
	const int Ms[] = {1, 7, 37, 130}, Ns[] = {1, 5, 33, 3100}, Ks[] = {1, 17, 300};
	tl_pool *pools[2];
	tl_err err;
	tl_pool_new(&pools[0], 1, &err);
	tl_pool_new(&pools[1], 2, &err);
	for (int lv = TL_CPU_SCALAR; lv <= (int)tl_cpu_supported(); lv++)
		for (int mi = 0; mi < 4; mi++)
			for (int ni = 0; ni < 4; ni++)
				for (int ki = 0; ki < 3; ki++)
					for (int t = 0; t < 4; t++) {
						int M = Ms[mi], N = Ns[ni], K = Ks[ki];
						if (N == 3100 && (M > 37 || K > 17) && lv != (int)tl_cpu_supported())
							continue; /* keep the slow levels' big cases few */
						int ta = t & 1, tb = t >> 1;
						int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
						float *A = frand_n((size_t)(ta ? K : M) * lda);
						float *B = frand_n((size_t)(tb ? N : K) * ldb);
						float *C = frand_n((size_t)M * ldc);
						float *R = malloc((size_t)M * ldc * sizeof(float));
						memcpy(R, C, (size_t)M * ldc * sizeof(float));
						float alpha = t == 3 ? -0.5f : 1.0f, beta = (float)(t % 3) * 0.5f;
						tl_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
						tl_sgemm_level((tl_cpu_level)lv, pools[(mi + ni) & 1], ta, tb, M, N,
							       K, alpha, A, lda, B, ldb, beta, C, ldc);
						char what[160];
						snprintf(what, sizeof what, "sgemm %s M%d N%d K%d ta%d tb%d",
							 tl_cpu_level_name((tl_cpu_level)lv), M, N, K, ta, tb);
						expect_close_arrays(what, C, R, (size_t)M * ldc, 1e-5);
						free(A), free(B), free(C), free(R);
					}
	tl_pool_free(pools[0]);
	tl_pool_free(pools[1]);
}

/* The epilogue used below: copy a chunk into a plain C of ld = N. */
typedef struct {
	float *C;
	int M, N;
	int calls;
} epi_dst;

static void epi_store(const void *ctx, int j0, int n, const float *ct, int ldt)
{
	epi_dst *e = (epi_dst *)ctx;
	assert_true(j0 >= 0 && n > 0 && j0 + n <= e->N && ldt >= n);
	for (int i = 0; i < e->M; i++)
		memcpy(e->C + (size_t)i * e->N + j0, ct + (size_t)i * ldt, sizeof(float) * (size_t)n);
	__atomic_add_fetch(&e->calls, 1, __ATOMIC_RELAXED);
}

/* The driver's edges: more rows than one MC pass, a long depth over one
 * panel (cut into depth slices summed in a fixed order), and chunks
 * handed to an epilogue whose buffer caps the chunk width. */
static void sgemm_driver_edges(void **state)
{
	(void)state;
	static const int shapes[][3] = {{600, 40, 300}, {37, 20, 2000}, {8, 1, 3001}, {700, 3000, 50}};
	for (int threads = 1; threads <= 2; threads++) {
		tl_pool *pool;
		tl_err err;
		tl_pool_new(&pool, threads, &err);
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
			int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
			float *A = frand_n((size_t)M * K), *B = frand_n((size_t)K * N);
			float *R = calloc((size_t)M * N, sizeof(float)), *C = frand_n((size_t)M * N);
			float *E = frand_n((size_t)M * N);
			tl_sgemm_naive(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
			char what[96];
			snprintf(what, sizeof what, "sgemm M%d N%d K%d, %d thread(s)", M, N, K, threads);
			tl_sgemm(pool, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
			expect_close_arrays(what, C, R, (size_t)M * N, 1e-5);
			tl_gemm_matrix ma = {A, K, 0, 1.0f}, mb = {B, N, 0, 1.0f};
			epi_dst e = {E, M, N, 0};
			tl_sgemm_epi(pool, M, N, K, tl_gemm_matrix_a(&ma), tl_gemm_matrix_b(&mb),
				     (tl_gemm_epi){epi_store, &e});
			snprintf(what, sizeof what, "sgemm_epi M%d N%d K%d, %d thread(s)", M, N, K,
				 threads);
			expect_close_arrays(what, E, R, (size_t)M * N, 1e-5);
			assert_true(e.calls >= 1);
			free(A), free(B), free(R), free(C), free(E);
		}
		tl_pool_free(pool);
	}
}

/* With bf16 precision the fast GEMM is the exact product of the operands
 * rounded to bfloat16 (alpha applied first, as the packer does), summed in
 * fp32: against a double triple loop over tl_bf16_round()ed operands
 * within fp32 summation error, for odd depths (the last pair half zero),
 * all transposes, alpha/beta, 1 and 2 threads, a long depth (slices) and
 * the epilogue path; and it differs from the fp32 GEMM (the bf16 kernel
 * really ran).  Skips on a CPU without AVX512-BF16. */
static void sgemm_bf16_is_exact_on_rounded_operands(void **state)
{
	(void)state;
	if (tl_gemm_set_precision(TL_GEMM_BF16) != 0) {
		print_message("SKIP: this CPU has no AVX512-BF16\n");
		skip();
	}
	static const int shapes[][3] = {{1, 1, 1}, {7, 33, 17}, {37, 5, 300}, {130, 100, 3},
					{8, 1, 3001}, {600, 40, 301}};
	for (int threads = 1; threads <= 2; threads++) {
		tl_pool *pool;
		tl_err err;
		tl_pool_new(&pool, threads, &err);
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
			for (int t = 0; t < 4; t++) {
				int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
				int ta = t & 1, tb = t >> 1;
				int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
				size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
				float *A = frand_n(na), *B = frand_n(nb), *C = frand_n((size_t)M * ldc);
				float *Ar = malloc(na * 4), *Br = malloc(nb * 4), *R = malloc((size_t)M * ldc * 4),
				      *F = malloc((size_t)M * ldc * 4);
				float alpha = t == 3 ? -0.5f : 1.0f, beta = (float)(t % 3) * 0.5f;
				for (size_t k = 0; k < na; k++)
					Ar[k] = tl_bf16_round(alpha * A[k]);
				for (size_t k = 0; k < nb; k++)
					Br[k] = tl_bf16_round(B[k]);
				memcpy(R, C, (size_t)M * ldc * 4);
				memcpy(F, C, (size_t)M * ldc * 4);
				tl_sgemm_naive(ta, tb, M, N, K, 1.0f, Ar, lda, Br, ldb, beta, R, ldc);
				tl_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
				char what[160];
				snprintf(what, sizeof what, "bf16 sgemm M%d N%d K%d ta%d tb%d, %d thread(s)", M,
					 N, K, ta, tb, threads);
				expect_close_arrays(what, C, R, (size_t)M * ldc, 1e-5);
				if (K >= 17) { /* 8-bit operands: visibly off the fp32 product */
					assert_int_equal(tl_gemm_set_precision(TL_GEMM_FP32), 0);
					tl_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, F, ldc);
					assert_int_equal(tl_gemm_set_precision(TL_GEMM_BF16), 0);
					double d = 0;
					for (size_t k = 0; k < (size_t)M * ldc; k++)
						d = fmax(d, fabs((double)F[k] - C[k]));
					if (!(d > 1e-4))
						fail_msg("%s: equals the fp32 GEMM (max difference %.3g)", what, d);
				}
				free(A), free(B), free(C), free(Ar), free(Br), free(R), free(F);
			}
		/* the epilogue path */
		int M = 40, N = 70, K = 33;
		float *A = frand_n((size_t)M * K), *B = frand_n((size_t)K * N), *E = frand_n((size_t)M * N);
		float *R = calloc((size_t)M * N, 4);
		for (size_t k = 0; k < (size_t)M * K; k++)
			A[k] = tl_bf16_round(A[k]);
		for (size_t k = 0; k < (size_t)K * N; k++)
			B[k] = tl_bf16_round(B[k]);
		tl_sgemm_naive(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
		tl_gemm_matrix ma = {A, K, 0, 1.0f}, mb = {B, N, 0, 1.0f};
		epi_dst e = {E, M, N, 0};
		tl_sgemm_epi(pool, M, N, K, tl_gemm_matrix_a(&ma), tl_gemm_matrix_b(&mb),
			     (tl_gemm_epi){epi_store, &e});
		expect_close_arrays("bf16 sgemm_epi", E, R, (size_t)M * N, 1e-5);
		free(A), free(B), free(E), free(R);
		tl_pool_free(pool);
	}
	assert_int_equal(tl_gemm_set_precision(TL_GEMM_FP32), 0);
}

/* tl_bf16_round is the rounding the bf16 panels get (vcvtneps2bf16):
 * a 1 x 1 x 1 product with B = 1 returns the rounded A bit for bit, for
 * ties to even in both directions, the carry into the exponent, the
 * largest finite values, infinities, NaN, denormals, signed zeros. */
static void bf16_rounding_matches_the_hardware(void **state)
{
	(void)state;
	if (tl_gemm_set_precision(TL_GEMM_BF16) != 0) {
		print_message("SKIP: this CPU has no AVX512-BF16\n");
		skip();
	}
	static const uint32_t bits[] = {
		0x3f808000u, /* 1 + 2^-8: a tie, rounds down to the even 1 */
		0x3f818000u, /* a tie, rounds up to the even 0x3f82 */
		0x3f808001u, 0x3f807fffu, 0x3fffffffu, /* carry into the exponent */
		0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
		0x00000001u, 0x807fffffu, 0x00800000u, 0x80000000u, 0x00000000u, 0xc0490fdbu};
	tl_pool *pool;
	tl_err err;
	tl_pool_new(&pool, 1, &err);
	const float one = 1.0f;
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		float a, c = -7.0f;
		memcpy(&a, &bits[i], 4);
		tl_sgemm(pool, 0, 0, 1, 1, 1, 1.0f, &a, 1, &one, 1, 0.0f, &c, 1);
		float want = tl_bf16_round(a);
		uint32_t cw, ww;
		memcpy(&cw, &c, 4);
		memcpy(&ww, &want, 4);
		if (isnan(want) ? !isnan(c) : want == 0 ? c != 0 : cw != ww) /* 0 + -0 is +0 */
			fail_msg("bf16 of 0x%08x: kernel gives 0x%08x, tl_bf16_round 0x%08x", bits[i], cw, ww);
	}
	tl_pool_free(pool);
	assert_int_equal(tl_gemm_set_precision(TL_GEMM_FP32), 0);
}

/* The elementwise loops at every level and every length up to 3 vectors
 * plus a tail: exact values, and NaN passes through ReLU (a diverging run
 * must show NaN, not zeros). */
static void vec_loops_match_scalar(void **state)
{
	(void)state;
	for (int lv = TL_CPU_SCALAR; lv <= (int)tl_cpu_supported(); lv++) {
		tl_cpu_force((tl_cpu_level)lv);
		for (size_t n = 0; n <= 53; n++) {
			float *x = frand_n(n + 1), *y = frand_n(n + 1), *d = malloc((n + 1) * 4);
			if (n > 3)
				x[3] = y[3] = NAN;
			for (int relu = 0; relu <= 1; relu++) {
				tl_vec_bias_act(d, x, n, 0.25f, relu);
				for (size_t i = 0; i < n; i++) {
					float v = x[i] + 0.25f, want = relu && v < 0 ? 0.0f : v;
					if (isnan(want))
						assert_true(isnan(d[i]));
					else
						assert_true(d[i] == want);
				}
			}
			memcpy(d, y, n * 4);
			tl_vec_add(d, x, n);
			for (size_t i = 0; i < n; i++)
				assert_true(isnan(x[i]) ? isnan(d[i]) : d[i] == y[i] + x[i]);
			/* mask: dy = 0 where y <= 0; NaN in y keeps dy */
			float *dy = frand_n(n + 1);
			if (n > 3)
				dy[3] = 0.5f;
			memcpy(d, dy, n * 4);
			double sum = tl_vec_relu_mask_sum(d, y, n), want = 0;
			for (size_t i = 0; i < n; i++) {
				float e = y[i] <= 0.0f ? 0.0f : dy[i];
				assert_true(d[i] == e);
				want += e;
			}
			assert_true(fabs(sum - want) <= 1e-5 * (1 + fabs(want)));
			double plain = 0;
			for (size_t i = 0; i < n; i++)
				plain += dy[i];
			assert_true(fabs(tl_vec_sum(dy, n) - plain) <= 1e-5 * (1 + fabs(plain)));
			free(x), free(y), free(d), free(dy);
		}
	}
	tl_cpu_force(tl_cpu_supported());
}

/* Winograd F(2x2,3x3) == direct convolution: forward with bias and ReLU,
 * forward added onto y, and the weight gradient; odd sizes (lane tails and
 * half tiles), padding 0/1/2, tile rows of 8 and 16 (the load path), a U
 * too big for the per-thread pipeline, and images too big for one chunk;
 * every CPU level, 1 and 2 threads. */
static void winograd_matches_reference(void **state)
{
	(void)state;
	static const int shapes[][6] = {/* n, c, h, w, o, pad */
					{1, 16, 5, 5, 17, 1},	{3, 16, 7, 9, 16, 0},
					{2, 20, 6, 6, 18, 2},	{2, 16, 16, 16, 16, 1},
					{2, 16, 15, 15, 16, 1}, /* rows of 8 tiles, last half-filled */
					{1, 16, 32, 32, 24, 1}, {2, 300, 4, 4, 250, 1},
					/* images cut into chunks of 16-tile groups */
					{2, 64, 32, 30, 64, 1}, {1, 64, 34, 32, 72, 1}};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const int *d = shapes[i];
		int p = d[5], oh = d[2] + 2 * p - 2, ow = d[3] + 2 * p - 2;
		tl_conv_shape s = {.n = d[0], .c = d[1], .h = d[2], .w = d[3], .o = d[4], .kh = 3,
				   .kw = 3, .sh = 1, .sw = 1, .ph = p, .pw = p, .oh = oh, .ow = ow};
		size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * oh * ow,
		       nw = (size_t)s.o * s.c * 9;
		float *x = frand_n(nx), *w = frand_n(nw), *b = frand_n((size_t)s.o), *g = frand_n(ny);
		float *y0 = malloc(ny * 4), *ylin = malloc(ny * 4), *y1 = malloc(ny * 4),
		      *dw0 = malloc(nw * 4), *dw1 = malloc(nw * 4), *dy = malloc(ny * 4);
		tl_ref_conv_fwd_f32(&s, x, w, b, 1, y0);
		tl_ref_conv_fwd_f32(&s, x, w, NULL, 0, ylin);
		memcpy(dy, g, ny * 4);
		tl_ref_conv_bwd_f32(&s, x, w, ylin, 0, dy, NULL, 0, dw0, NULL);
		for (int lv = TL_CPU_SCALAR; lv <= (int)tl_cpu_supported(); lv++)
			for (int threads = 1; threads <= 2; threads++) {
				tl_cpu_force((tl_cpu_level)lv);
				tl_pool *pool;
				tl_err err;
				tl_pool_new(&pool, threads, &err);
				tl_backend *be;
				assert_int_equal(tl_cpu_open(0, pool, &be, &err), TL_OK);
				char what[128];
				snprintf(what, sizeof what, "winograd n%d c%d %dx%d o%d p%d, %s, %d thread(s)",
					 s.n, s.c, s.h, s.w, s.o, p, tl_cpu_level_name((tl_cpu_level)lv),
					 threads);
				tl_wino_fwd(be, &s, x, w, b, 1, y1, 0);
				expect_close_arrays(what, y1, y0, ny, 1e-4);
				for (size_t k = 0; k < ny; k++) /* acc: y1 = g + conv(x, w) */
					y1[k] = g[k];
				tl_wino_fwd(be, &s, x, w, NULL, 0, y1, 1);
				for (size_t k = 0; k < ny; k++)
					y1[k] -= g[k];
				expect_close_arrays(what, y1, ylin, ny, 1e-4);
				tl_wino_dw(be, &s, x, g, dw1);
				expect_close_arrays(what, dw1, dw0, nw, 1e-4);
				be->destroy(be);
				tl_pool_free(pool);
			}
		tl_cpu_force(tl_cpu_supported());
		free(x), free(w), free(b), free(g), free(y0), free(ylin), free(y1);
		free(dw0), free(dw1), free(dy);
	}
}

typedef struct {
	const char *name;
	int c, hw, o;
	int n; /* batch */
} vgg_layer;

/* Fast == reference on each of layers[0..n): forward, input, weight and
 * bias gradients, 1 and 2 threads.  *wino_runs gets how many Winograd
 * calls the fast backend made. */
static void layers_fast_equals_reference(const vgg_layer *layers, size_t n_layers,
					 unsigned long *wino_runs)
{
	unsigned long runs0 = tl_wino_runs();
	for (size_t li = 0; li < n_layers; li++) {
		const vgg_layer *L = &layers[li];
		int n = L->n;
		tl_conv_shape s = {.n = n, .c = L->c, .h = L->hw, .w = L->hw, .o = L->o, .kh = 3,
				   .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .oh = L->hw, .ow = L->hw};
		size_t nx = (size_t)n * L->c * L->hw * L->hw, ny = (size_t)n * L->o * L->hw * L->hw,
		       nw = (size_t)L->o * L->c * 9;
		float *x = frand_n(nx), *w = frand_n(nw), *b = frand_n((size_t)L->o), *g = frand_n(ny);
		float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4), *dy0 = malloc(ny * 4),
		      *dy1 = malloc(ny * 4), *dx0 = malloc(nx * 4), *dx1 = malloc(nx * 4),
		      *dw0 = malloc(nw * 4), *dw1 = malloc(nw * 4), *db0 = malloc((size_t)L->o * 4),
		      *db1 = malloc((size_t)L->o * 4);
		tl_ref_conv_fwd_f32(&s, x, w, b, 1, y0);
		memcpy(dy0, g, ny * 4);
		tl_ref_conv_bwd_f32(&s, x, w, y0, 1, dy0, dx0, 0, dw0, db0);
		for (int threads = 1; threads <= 2; threads++) {
			tl_pool *pool;
			tl_err err;
			tl_pool_new(&pool, threads, &err);
			tl_backend *be;
			assert_int_equal(tl_cpu_open(0, pool, &be, &err), TL_OK);
			char what[96];
			snprintf(what, sizeof what, "%s, %d thread(s)", L->name, threads);
			be->conv_fwd(be, &s, H(x), H(w), H(b), 1, H(y1));
			expect_close_arrays(what, y1, y0, ny, 1e-5);
			memcpy(dy1, g, ny * 4);
			be->conv_bwd(be, &s, H(x), H(w), H(y1), 1, H(dy1), H(dx1), 0, H(dw1), H(db1));
			expect_close_arrays(what, dx1, dx0, nx, 1e-5);
			expect_close_arrays(what, dw1, dw0, nw, 1e-5);
			expect_close_arrays(what, db1, db0, (size_t)L->o, 1e-5);
			be->destroy(be);
			tl_pool_free(pool);
		}
		free(x), free(w), free(b), free(g), free(y0), free(y1), free(dy0), free(dy1);
		free(dx0), free(dx1), free(dw0), free(dw1), free(db0), free(db1);
	}
	*wino_runs = tl_wino_runs() - runs0;
}

/* VGG16's convolutions at 32x32 input, batch 2, fast == reference. */
static void vgg16_layers_fast_equals_reference(void **state)
{
	(void)state;
	static const vgg_layer layers[] = {
		{"block1_conv1", 3, 32, 64, 2},   {"block1_conv2", 64, 32, 64, 2},
		{"block2_conv1", 64, 16, 128, 2}, {"block3_conv2", 256, 8, 256, 2},
		{"block4_conv1", 256, 4, 512, 2}, {"block5_conv3", 512, 2, 512, 2},
	};
	unsigned long runs;
	layers_fast_equals_reference(layers, sizeof layers / sizeof layers[0], &runs);
}

/* block3_conv2 at batch 16 goes through the Winograd dispatch of the fast
 * backend (checked: the path ran for the forward pass, the input gradient
 * and the weight gradient at each thread count) and matches the reference.  Without AVX-512 (or with
 * TL_WINOGRAD=0) there is no Winograd path to check: SKIP, saying why. */
static void vgg16_winograd_layer_takes_winograd(void **state)
{
	(void)state;
	static const vgg_layer layer = {"block3_conv2 batch 16 (Winograd)", 256, 8, 256, 16};
	tl_conv_shape s = {.n = 16, .c = 256, .h = 8, .w = 8, .o = 256, .kh = 3, .kw = 3, .sh = 1,
			   .sw = 1, .ph = 1, .pw = 1, .oh = 8, .ow = 8};
	if (!tl_wino_applies(&s)) {
		print_message("SKIP Winograd path: %s\n",
			      tl_cpu_detect() != TL_CPU_AVX512
				      ? "no AVX-512 on this CPU (or TL_CPU caps it)"
				      : "TL_WINOGRAD=0 turns it off");
		skip();
	}
	unsigned long runs;
	layers_fast_equals_reference(&layer, 1, &runs);
	assert_int_equal(runs, 6); /* forward, input and weight gradient, at 1 and 2 threads */
}

/* Fast == reference for one conv shape, forward and all gradients, at
 * every CPU level, 1 and 2 threads. */
static void conv_fast_equals_reference(const tl_conv_shape *s, const char *label)
{
	size_t nx = (size_t)s->n * s->c * s->h * s->w, ny = (size_t)s->n * s->o * s->oh * s->ow,
	       nw = (size_t)s->o * s->c * s->kh * s->kw;
	float *x = frand_n(nx), *w = frand_n(nw), *b = frand_n((size_t)s->o), *g = frand_n(ny);
	float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4), *dy0 = malloc(ny * 4), *dy1 = malloc(ny * 4),
	      *dx0 = malloc(nx * 4), *dx1 = malloc(nx * 4), *dw0 = malloc(nw * 4), *dw1 = malloc(nw * 4),
	      *db0 = malloc((size_t)s->o * 4), *db1 = malloc((size_t)s->o * 4);
	tl_ref_conv_fwd_f32(s, x, w, b, 1, y0);
	memcpy(dy0, g, ny * 4);
	tl_ref_conv_bwd_f32(s, x, w, y0, 1, dy0, dx0, 0, dw0, db0);
	for (int lv = TL_CPU_SCALAR; lv <= (int)tl_cpu_supported(); lv++)
		for (int threads = 1; threads <= 2; threads++) {
			tl_cpu_force((tl_cpu_level)lv);
			tl_pool *pool;
			tl_err err;
			tl_pool_new(&pool, threads, &err);
			tl_backend *be;
			assert_int_equal(tl_cpu_open(0, pool, &be, &err), TL_OK);
			char what[160];
			snprintf(what, sizeof what, "%s, %s, %d thread(s)", label,
				 tl_cpu_level_name((tl_cpu_level)lv), threads);
			be->conv_fwd(be, s, H(x), H(w), H(b), 1, H(y1));
			expect_close_arrays(what, y1, y0, ny, 1e-4);
			memcpy(dy1, g, ny * 4);
			be->conv_bwd(be, s, H(x), H(w), H(y1), 1, H(dy1), H(dx1), 0, H(dw1), H(db1));
			expect_close_arrays(what, dx1, dx0, nx, 1e-4);
			expect_close_arrays(what, dw1, dw0, nw, 1e-4);
			expect_close_arrays(what, db1, db0, (size_t)s->o, 1e-4);
			be->destroy(be);
			tl_pool_free(pool);
		}
	tl_cpu_force(tl_cpu_supported());
	free(x), free(w), free(b), free(g), free(y0), free(y1), free(dy0), free(dy1);
	free(dx0), free(dx1), free(dw0), free(dw1), free(db0), free(db1);
}

/* Padding only after (backend.h: ph/pw before, the rest implied by oh/ow),
 * through each conv path of the fast backend: the packed GEMM with a padded
 * copy, the 1x1 one without, col2im (stride 2), the transposed conv
 * (stride 1) and Winograd (which must run here when it applies). */
static void asymmetric_padding_fast_equals_reference(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		tl_conv_shape s;
	} cases[] = {
		{"3x3 s2, 0 before 1 after (Keras correct_pad), 33x32 -> 17x16",
		 {.n = 2, .c = 19, .h = 33, .w = 32, .o = 21, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 0,
		  .pw = 0, .oh = 17, .ow = 16}},
		{"3x3 s1, 0 before 1 after, 15x14 -> 14x13",
		 {.n = 2, .c = 7, .h = 15, .w = 14, .o = 9, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 0,
		  .pw = 0, .oh = 14, .ow = 13}},
		{"1x1 s2, 0 before 1 after, 10x9 -> 6x5",
		 {.n = 3, .c = 13, .h = 10, .w = 9, .o = 11, .kh = 1, .kw = 1, .sh = 2, .sw = 2, .ph = 0,
		  .pw = 0, .oh = 6, .ow = 5}},
		{"3x3 s1, 1 before 2 after, 9x10 -> 10x11",
		 {.n = 1, .c = 5, .h = 9, .w = 10, .o = 6, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1,
		  .pw = 1, .oh = 10, .ow = 11}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		conv_fast_equals_reference(&cases[i].s, cases[i].label);
	/* Winograd-sized: 64 channels, 4 x 8 x 8 tiles */
	tl_conv_shape ws = {.n = 4, .c = 64, .h = 17, .w = 17, .o = 64, .kh = 3, .kw = 3, .sh = 1,
			    .sw = 1, .ph = 0, .pw = 0, .oh = 16, .ow = 16};
	unsigned long runs0 = tl_wino_runs();
	int wino = tl_wino_applies(&ws);
	conv_fast_equals_reference(&ws, "3x3 s1 64 channels, 0 before 1 after, 17x17 -> 16x16");
	if (wino) /* forward, dx (its transposed conv) and dw at 1 and 2 threads */
		assert_true(tl_wino_runs() - runs0 >= 6);
	else
		print_message("note: Winograd does not apply here (no AVX-512 or TL_WINOGRAD=0)\n");
}

/* The MobileNetV2 / GoogLeNet / AlexNet ops, fast == reference (abs + rel
 * 1e-4 of the tensor's largest value) at the sizes the models run, odd
 * ones included, every CPU level, 1 to 3 threads. */
static void new_ops_fast_equals_reference(void **state)
{
	(void)state;
	static const struct {
		int n, c, h, w, s, ph, pa;
	} dws[] = {
		{2, 32, 56, 56, 1, 1, 0},  /* 3x3 s1 */
		{2, 24, 57, 55, 2, 0, 1},  /* Keras 3x3 s2 correct_pad, odd sizes */
		{2, 24, 56, 56, 2, 0, 1},  /* Keras 3x3 s2 at even size */
		{1, 40, 13, 13, 2, 1, 0},  /* PyTorch 3x3 s2 p1 */
		{3, 19, 7, 7, 1, 1, 0},
		{1, 6, 9, 10, 1, 3, 0},    /* padding past the kernel: dx not as a flipped conv */
		{2, 5, 14, 13, 3, 1, 0},   /* stride 3: three column phases */
	};
	tl_backend *ref;
	tl_err rerr;
	assert_int_equal(tl_cpu_open(1, NULL, &ref, &rerr), TL_OK);
	for (int lv = TL_CPU_SCALAR; lv <= (int)tl_cpu_supported(); lv++)
		for (int threads = 1; threads <= 3; threads++) {
			tl_cpu_force((tl_cpu_level)lv);
			tl_pool *pool;
			tl_err err;
			tl_pool_new(&pool, threads, &err);
			tl_backend *be;
			assert_int_equal(tl_cpu_open(0, pool, &be, &err), TL_OK);
			char what[160];
			for (size_t i = 0; i < sizeof dws / sizeof dws[0]; i++) {
				tl_conv_shape s = {.n = dws[i].n, .c = dws[i].c, .h = dws[i].h, .w = dws[i].w,
						   .o = dws[i].c, .kh = 3, .kw = 3, .sh = dws[i].s,
						   .sw = dws[i].s, .ph = dws[i].ph, .pw = dws[i].ph};
				s.oh = (s.h + 2 * s.ph + dws[i].pa - 3) / s.sh + 1;
				s.ow = (s.w + 2 * s.pw + dws[i].pa - 3) / s.sw + 1;
				size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.oh * s.ow,
				       nw = (size_t)s.c * 9;
				float *x = frand_n(nx), *w = frand_n(nw), *b = frand_n((size_t)s.c),
				      *g = frand_n(ny), *y0 = malloc(ny * 4), *y1 = malloc(ny * 4),
				      *g0 = malloc(ny * 4), *g1 = malloc(ny * 4), *dx0 = malloc(nx * 4),
				      *dx1 = malloc(nx * 4), *dw0 = malloc(nw * 4), *dw1 = malloc(nw * 4),
				      *db0 = malloc((size_t)s.c * 4), *db1 = malloc((size_t)s.c * 4);
				snprintf(what, sizeof what, "dwconv n%d c%d %dx%d s%d p%d+%d, %s, %d thread(s)",
					 s.n, s.c, s.h, s.w, s.sh, s.ph, dws[i].pa,
					 tl_cpu_level_name((tl_cpu_level)lv), threads);
				ref->dwconv_fwd(ref, &s, H(x), H(w), H(b), 1, H(y0));
				be->dwconv_fwd(be, &s, H(x), H(w), H(b), 1, H(y1));
				expect_close_arrays(what, y1, y0, ny, 1e-4);
				memcpy(g0, g, ny * 4);
				memcpy(g1, g, ny * 4);
				for (size_t k = 0; k < nx; k++)
					dx0[k] = dx1[k] = 0.5f;
				ref->dwconv_bwd(ref, &s, H(x), H(w), H(y0), 1, H(g0), H(dx0), 1, H(dw0), H(db0));
				be->dwconv_bwd(be, &s, H(x), H(w), H(y0), 1, H(g1), H(dx1), 1, H(dw1), H(db1));
				expect_close_arrays(what, g1, g0, ny, 0);
				expect_close_arrays(what, dx1, dx0, nx, 1e-4);
				expect_close_arrays(what, dw1, dw0, nw, 1e-4);
				expect_close_arrays(what, db1, db0, (size_t)s.c, 1e-4);
				free(x), free(w), free(b), free(g), free(y0), free(y1), free(g0), free(g1);
				free(dx0), free(dx1), free(dw0), free(dw1), free(db0), free(db1);
			}
			/* batch norm at MobileNetV2 sizes, training and not, each act */
			for (int training = 0; training <= 1; training++)
				for (int act = TL_ACT_NONE; act <= TL_ACT_RELU6; act++) {
					int n = 3, c = 37, hw = 28 * 28;
					size_t nx = (size_t)n * c * hw;
					float *x = frand_n(nx), *ga = frand_n((size_t)c), *be_ = frand_n((size_t)c),
					      *rm0 = frand_n((size_t)c), *rv0 = malloc((size_t)c * 4),
					      *rm1 = malloc((size_t)c * 4), *rv1 = malloc((size_t)c * 4),
					      *s0 = malloc((size_t)c * 8), *s1 = malloc((size_t)c * 8),
					      *y0 = malloc(nx * 4), *y1 = malloc(nx * 4), *g = frand_n(nx),
					      *g0 = malloc(nx * 4), *g1 = malloc(nx * 4), *dx0 = malloc(nx * 4),
					      *dx1 = malloc(nx * 4), *dg0 = malloc((size_t)c * 4),
					      *dg1 = malloc((size_t)c * 4), *dbt0 = malloc((size_t)c * 4),
					      *dbt1 = malloc((size_t)c * 4);
					for (size_t k = 0; k < nx; k++)
						x[k] = 3.0f * x[k] + 2.0f; /* mean far from 0, as after a conv */
					for (int k = 0; k < c; k++) {
						ga[k] *= 8.0f; /* reach the ReLU6 clamp */
						rv0[k] = 1.0f + (float)k / c;
						rm1[k] = rm0[k];
						rv1[k] = rv0[k];
					}
					float *rv0c = malloc((size_t)c * 4), *rm0c = malloc((size_t)c * 4);
					memcpy(rv0c, rv0, (size_t)c * 4);
					memcpy(rm0c, rm0, (size_t)c * 4);
					snprintf(what, sizeof what, "bn training%d act%d, %s, %d thread(s)",
						 training, act, tl_cpu_level_name((tl_cpu_level)lv), threads);
					ref->bn_fwd(ref, n, c, hw, 1e-3f, 0.01f, training, H(x), H(ga), H(be_), H(rm0c), H(rv0c),
						   H(s0), act, H(y0));
					be->bn_fwd(be, n, c, hw, 1e-3f, 0.01f, training, H(x), H(ga), H(be_), H(rm1), H(rv1),
						  H(s1), act, H(y1));
					expect_close_arrays(what, y1, y0, nx, 1e-4);
					expect_close_arrays(what, rm1, rm0c, (size_t)c, 1e-5);
					expect_close_arrays(what, rv1, rv0c, (size_t)c, 1e-5);
					expect_close_arrays(what, s1, s0, (size_t)c * 2, 1e-5);
					memcpy(g0, g, nx * 4);
					memcpy(g1, g, nx * 4);
					ref->bn_bwd(ref, n, c, hw, training, H(x), H(ga), H(s0), H(y0), act, H(g0), H(dx0), 0, H(dg0),
						   H(dbt0));
					be->bn_bwd(be, n, c, hw, training, H(x), H(ga), H(s0), H(y0), act, H(g1), H(dx1), 0, H(dg1),
						  H(dbt1));
					expect_close_arrays(what, g1, g0, nx, 0);
					expect_close_arrays(what, dx1, dx0, nx, 1e-4);
					expect_close_arrays(what, dg1, dg0, (size_t)c, 1e-4);
					expect_close_arrays(what, dbt1, dbt0, (size_t)c, 1e-4);
					free(x), free(ga), free(be_), free(rm0), free(rv0), free(rm1), free(rv1);
					free(s0), free(s1), free(y0), free(y1), free(g), free(g0), free(g1);
					free(dx0), free(dx1), free(dg0), free(dg1), free(dbt0), free(dbt1);
					free(rv0c), free(rm0c);
				}
			/* LRN as in AlexNet (64 channels of 27x27) and GoogLeNet (odd channels) */
			for (int li = 0; li < 2; li++) {
				int n = 2, c = li ? 63 : 64, hw = li ? 15 * 15 : 27 * 27, size = 5;
				float alpha = li ? 0.3f : 1e-4f, beta = li ? 0.5f : 0.75f;
				size_t nx = (size_t)n * c * hw;
				float *x = frand_n(nx), *g = frand_n(nx), *sc0 = malloc(nx * 4),
				      *sc1 = malloc(nx * 4), *y0 = malloc(nx * 4), *y1 = malloc(nx * 4),
				      *dx0 = malloc(nx * 4), *dx1 = malloc(nx * 4);
				for (size_t k = 0; k < nx; k++)
					x[k] *= 20.0f; /* activations where alpha 1e-4 matters */
				snprintf(what, sizeof what, "lrn c%d hw%d alpha %g beta %g, %s, %d thread(s)", c,
					 hw, alpha, beta, tl_cpu_level_name((tl_cpu_level)lv), threads);
				ref->lrn_fwd(ref, n, c, hw, size, alpha, beta, 1.0f, H(x), H(sc0), H(y0));
				be->lrn_fwd(be, n, c, hw, size, alpha, beta, 1.0f, H(x), H(sc1), H(y1));
				expect_close_arrays(what, sc1, sc0, nx, 1e-5);
				expect_close_arrays(what, y1, y0, nx, 1e-5);
				ref->lrn_bwd(ref, n, c, hw, size, alpha, beta, H(x), H(y0), H(sc0), H(g), H(dx0), 0);
				be->lrn_bwd(be, n, c, hw, size, alpha, beta, H(x), H(y0), H(sc0), H(g), H(dx1), 0);
				expect_close_arrays(what, dx1, dx0, nx, 1e-4);
				free(x), free(g), free(sc0), free(sc1), free(y0), free(y1), free(dx0), free(dx1);
			}
			/* adaptive average pool: AlexNet's 6x6 from 13x13 and from 1x1 */
			for (int ai = 0; ai < 2; ai++) {
				tl_pool_shape ps = {.n = 3, .c = 65, .h = ai ? 1 : 13, .w = ai ? 1 : 13,
						    .oh = 6, .ow = 6};
				size_t nx = (size_t)ps.n * ps.c * ps.h * ps.w, ny = (size_t)ps.n * ps.c * 36;
				float *x = frand_n(nx), *g = frand_n(ny), *y0 = malloc(ny * 4),
				      *y1 = malloc(ny * 4), *dx0 = malloc(nx * 4), *dx1 = malloc(nx * 4);
				snprintf(what, sizeof what, "avgpool %dx%d -> 6x6, %s, %d thread(s)", ps.h,
					 ps.w, tl_cpu_level_name((tl_cpu_level)lv), threads);
				ref->avgpool_fwd(ref, &ps, H(x), H(y0));
				be->avgpool_fwd(be, &ps, H(x), H(y1));
				expect_close_arrays(what, y1, y0, ny, 1e-5);
				ref->avgpool_bwd(ref, &ps, H(g), H(dx0), 0);
				be->avgpool_bwd(be, &ps, H(g), H(dx1), 0);
				expect_close_arrays(what, dx1, dx0, nx, 1e-5);
				free(x), free(g), free(y0), free(y1), free(dx0), free(dx1);
			}
			be->destroy(be);
			tl_pool_free(pool);
		}
	tl_cpu_force(tl_cpu_supported());
	ref->destroy(ref);
}

/* The tl_backend of cpu-reference and cpu carries the new ops (non-NULL)
 * and runs them on its buffers at their offsets: a depthwise conv, batch
 * norm, LRN, adaptive pool and padded max pool through tl_mem, each equal to
 * the reference kernels called directly. */
static void host_backends_carry_new_ops(void **state)
{
	(void)state;
	tl_pool *pool;
	tl_err err;
	tl_pool_new(&pool, 2, &err);
	for (int reference = 1; reference >= 0; reference--) {
		tl_backend *be;
		assert_int_equal(tl_cpu_open(reference, pool, &be, &err), TL_OK);
		assert_non_null(be->dwconv_fwd), assert_non_null(be->dwconv_bwd);
		assert_non_null(be->bn_fwd), assert_non_null(be->bn_bwd);
		assert_non_null(be->lrn_fwd), assert_non_null(be->lrn_bwd);
		assert_non_null(be->avgpool_fwd), assert_non_null(be->avgpool_bwd);
		tl_conv_shape cs = {.n = 2, .c = 5, .h = 9, .w = 8, .o = 5, .kh = 3, .kw = 3, .sh = 2,
				    .sw = 2, .ph = 0, .pw = 0, .oh = 5, .ow = 4};
		size_t nx = 2 * 5 * 72, ny = 2 * 5 * 20, off = 7; /* tensors at an offset */
		tl_buf *buf = be->alloc(be, (off + 6 * nx) * 4);
		tl_mem base = {buf, off};
		tl_mem mx = base, mw = tl_mem_at(base, nx), mb = tl_mem_at(mw, 45),
		       my = tl_mem_at(mb, 5), ms = tl_mem_at(my, nx), none = {NULL, 0};
		float *x = frand_n(nx), *w = frand_n(45), *b = frand_n(5), *want = malloc(nx * 8),
		      *got = malloc(nx * 8), *sc = malloc(nx * 4);
		be->upload(be, mx, x, nx * 4);
		be->upload(be, mw, w, 45 * 4);
		be->upload(be, mb, b, 5 * 4);
		/* depthwise conv, Keras stride 2 */
		be->dwconv_fwd(be, &cs, mx, mw, mb, 1, my);
		assert_int_equal(be->download(be, my, got, ny * 4, &err), TL_OK);
		tl_ref_dwconv_fwd_f32(&cs, x, w, b, 1, want);
		expect_close_arrays(be->name, got, want, ny, 1e-5);
		/* batch norm, not training (running stats = w[0..5), 1 + |b|) */
		float rm[5], rv[5], save[10];
		for (int k = 0; k < 5; k++)
			rm[k] = w[k], rv[k] = 1.0f + fabsf(b[k]);
		tl_mem mrm = tl_mem_at(ms, 0), mrv = tl_mem_at(ms, 5), msave = tl_mem_at(ms, 10),
		       mbn = tl_mem_at(ms, 20);
		be->upload(be, mrm, rm, 20);
		be->upload(be, mrv, rv, 20);
		be->bn_fwd(be, 2, 5, 72, 1e-3f, 0.1f, 0, mx, mw, none, mrm, mrv, msave, TL_ACT_RELU6, mbn);
		assert_int_equal(be->download(be, mbn, got, nx * 4, &err), TL_OK);
		tl_ref_bn_fwd_f32(2, 5, 72, 1e-3f, 0.1f, 0, x, w, NULL, rm, rv, save, TL_ACT_RELU6, want);
		expect_close_arrays(be->name, got, want, nx, 1e-5);
		/* LRN */
		tl_mem msc = tl_mem_at(mbn, nx), mam = tl_mem_at(msc, nx); /* ends before 6 nx */
		be->lrn_fwd(be, 2, 5, 72, 3, 0.5f, 0.75f, 1.0f, mx, msc, my);
		assert_int_equal(be->download(be, my, got, nx * 4, &err), TL_OK);
		tl_ref_lrn_fwd_f32(2, 5, 72, 3, 0.5f, 0.75f, 1.0f, x, sc, want);
		expect_close_arrays(be->name, got, want, nx, 1e-5);
		/* adaptive average pool 9x8 -> 4x3 */
		tl_pool_shape ps = {.n = 2, .c = 5, .h = 9, .w = 8, .oh = 4, .ow = 3};
		be->avgpool_fwd(be, &ps, mx, my);
		assert_int_equal(be->download(be, my, got, 120 * 4, &err), TL_OK);
		tl_ref_avgpool_fwd_f32(&ps, x, want);
		expect_close_arrays(be->name, got, want, 120, 1e-5);
		/* max pool k3 s2 p1 */
		tl_pool_shape mp = {.n = 2, .c = 5, .h = 9, .w = 8, .k = 3, .s = 2, .p = 1,
				    .oh = tl_pool_out(9, 3, 2, 1, 0), .ow = tl_pool_out(8, 3, 2, 1, 0)};
		int32_t am[2 * 5 * 5 * 4];
		size_t nm = (size_t)2 * 5 * mp.oh * mp.ow;
		be->maxpool_fwd(be, &mp, mx, my, mam);
		assert_int_equal(be->download(be, my, got, nm * 4, &err), TL_OK);
		tl_ref_maxpool_fwd_f32(&mp, x, want, am);
		expect_close_arrays(be->name, got, want, nm, 0);
		int32_t gam[2 * 5 * 5 * 4];
		assert_int_equal(be->download(be, mam, gam, nm * 4, &err), TL_OK);
		assert_memory_equal(gam, am, nm * 4);
		assert_int_equal(be->sync(be, &err), TL_OK);
		be->free(be, buf);
		be->destroy(be);
		free(x), free(w), free(b), free(want), free(got), free(sc);
	}
	tl_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sgemm_matches_naive),
		cmocka_unit_test(sgemm_driver_edges),
		cmocka_unit_test(sgemm_bf16_is_exact_on_rounded_operands),
		cmocka_unit_test(bf16_rounding_matches_the_hardware),
		cmocka_unit_test(winograd_matches_reference),
		cmocka_unit_test(vec_loops_match_scalar),
		cmocka_unit_test(vgg16_layers_fast_equals_reference),
		cmocka_unit_test(vgg16_winograd_layer_takes_winograd),
		cmocka_unit_test(asymmetric_padding_fast_equals_reference),
		cmocka_unit_test(new_ops_fast_equals_reference),
		cmocka_unit_test(host_backends_carry_new_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
