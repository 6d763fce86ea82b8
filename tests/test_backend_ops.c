/* test_backend_ops.c - every op of the list (src/backend_ops.h) on every
 * backend against the scalar reference backend (cpu-reference), both
 * driven through the same tl_backend interface (ggml's test-backend-ops):
 * the fast CPU backend at every SIMD level this CPU runs with 1 and 2
 * threads, then OpenCL.  The table ops_tests[] names the ops each test
 * runs; the test every_op_has_a_test fails when an op of the list is in
 * none.  The gradients themselves are checked by finite differences on the
 * double reference in test_ops.c.
 *
 * Shapes are small and odd (7x5 maps, 13 channels) so that CLBlast takes
 * its padded paths and PoCL compiles quickly: stride 2, 1x1, 3x3 pad 1,
 * 5x3 pad 2, ceil-mode overlapping pools with ties, acc_dx 0/1, none
 * gradients, ReLU on/off, convolutions in one chunk and one image per
 * chunk, the weight gradient in split-K slices (41x33 maps, prepared),
 * asymmetric conv padding (Keras' stride 2: 0 before, 1 after), Winograd
 * F(2x2, 3x3) forward and input gradient and F(3x3, 2x2) weight gradient
 * (odd maps, pads 0 to 2, split-K), CLBlast's Sconvgemm, padded
 * max pools, the adaptive average pool, depthwise conv, batch norm in
 * training and inference with each activation, LRN.  Dropout masks, argmax, copies and fills must match bit for bit;
 * arithmetic within atol + rtol * |want|.
 *
 * The OpenCL device: TL_TEST_OPENCL=P:D, else the first GPU, else
 * platform 0 device 0 (PoCL on CI); with no OpenCL platform (or a build
 * without OpenCL) only the CPU backends run.  The tests marked OpenCL-only
 * in the table (workspace chunking, Winograd and Sconvgemm paths, sticky
 * errors, the device list) run on OpenCL alone. */
#include "tl_test.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpu/cpu.h"
#include "cpu/host.h"
#ifdef TL_HAVE_OPENCL
#include "ocl/ocl.h"
#endif

static tl_backend *B[2]; /* [0] cpu reference, [1] the backend under test */
static int plat, dev;

/* Whether B[1] is OpenCL (then the device-specific expectations hold). */
static int is_ocl(void)
{
	return B[1]->kind == TL_BE_OPENCL;
}

static uint32_t rng = 12345;
static float frand(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)((rng >> 8) * (1.0 / 16777216.0)) * 2 - 1;
}

/* the same tensor on both backends */
typedef struct {
	tl_mem m[2];
	size_t n;
} twin;

static const twin none = {{{NULL, 0}, {NULL, 0}}, 0};

/* n floats (or int32) from init, random in [-1, 1) when init is NULL. */
static twin tw_new(size_t n, const void *init)
{
	twin t = {.n = n};
	float *h = malloc((n ? n : 1) * 4);
	assert_non_null(h);
	if (init)
		memcpy(h, init, n * 4);
	else
		for (size_t i = 0; i < n; i++)
			h[i] = frand();
	for (int b = 0; b < 2; b++) {
		/* an offset inside a bigger buffer, as the graph hands them out */
		tl_buf *buf = B[b]->alloc(B[b], (n + 3) * 4);
		assert_non_null(buf);
		t.m[b] = (tl_mem){buf, 3};
		B[b]->upload(B[b], t.m[b], h, n * 4);
	}
	free(h);
	return t;
}

static void tw_free(twin t)
{
	for (int b = 0; b < 2; b++)
		if (t.m[b].buf)
			B[b]->free(B[b], t.m[b].buf);
}

static void fetch(int b, twin t, void *out)
{
	tl_err err;
	if (B[b]->download(B[b], t.m[b], out, t.n * 4, &err) != TL_OK)
		fail_msg("download from %s: %s", B[b]->name, err.msg);
}

/* Both copies of t agree within atol + rtol * |reference|. */
static void tw_check(twin t, double atol, double rtol, const char *what)
{
	float *h[2];
	for (int b = 0; b < 2; b++) {
		h[b] = malloc((t.n ? t.n : 1) * 4);
		fetch(b, t, h[b]);
	}
	for (size_t i = 0; i < t.n; i++)
		if (!(fabs((double)h[1][i] - h[0][i]) <= atol + rtol * fabs(h[0][i])))
			fail_msg("%s[%zu]: %s %.9g, reference %.9g (atol %g, rtol %g)", what, i,
				 B[1]->name, h[1][i], h[0][i], atol, rtol);
	free(h[0]);
	free(h[1]);
}

/* The reference copy of t, uploaded over the tested one (so that both backward
 * passes start from the same forward output). */
static void tw_sync_from_cpu(twin t)
{
	float *h = malloc((t.n ? t.n : 1) * 4);
	assert_non_null(h);
	fetch(0, t, h);
	B[1]->upload(B[1], t.m[1], h, t.n * 4);
	free(h);
}

/* Both copies of t agree within rtol * max |reference|: for sums of many terms
 * (weight and bias gradients), whose rounding scales with the terms, not
 * with a result where they cancel. */
static void tw_check_norm(twin t, double rtol, const char *what)
{
	float *h[2];
	for (int b = 0; b < 2; b++) {
		h[b] = malloc((t.n ? t.n : 1) * 4);
		fetch(b, t, h[b]);
	}
	double big = 0;
	for (size_t i = 0; i < t.n; i++)
		big = fabs(h[0][i]) > big ? fabs(h[0][i]) : big;
	for (size_t i = 0; i < t.n; i++)
		if (!(fabs((double)h[1][i] - h[0][i]) <= rtol * big))
			fail_msg("%s[%zu]: %s %.9g, reference %.9g (rtol %g of max %g)", what, i,
				 B[1]->name, h[1][i], h[0][i], rtol, big);
	free(h[0]);
	free(h[1]);
}

/* Both copies of t are the same bytes. */
static void tw_same(twin t, const char *what)
{
	uint32_t *h[2];
	for (int b = 0; b < 2; b++) {
		h[b] = malloc((t.n ? t.n : 1) * 4);
		fetch(b, t, h[b]);
	}
	for (size_t i = 0; i < t.n; i++)
		if (h[0][i] != h[1][i])
			fail_msg("%s[%zu]: %s 0x%08x, reference 0x%08x", what, i, B[1]->name, h[1][i],
				 h[0][i]);
	free(h[0]);
	free(h[1]);
}

static void sync_ok(void)
{
	for (int b = 0; b < 2; b++) {
		tl_err err;
		if (B[b]->sync(B[b], &err) != TL_OK)
			fail_msg("%s: %s", B[b]->name, err.msg);
	}
}

/* run an op on both backends: M(t) is t's tensor on the backend at hand */
#define M(t) ((t).m[b_])
#define BOTH(op, ...)                                 \
	for (int b_ = 0; b_ < 2; b_++)                \
		B[b_]->op(B[b_], __VA_ARGS__)

#define ATOL 1e-4
#define RTOL 1e-4

/* ---- convolution ---- */

static tl_conv_shape conv_shape(int n, int c, int h, int w, int o, int kh, int kw, int s, int p)
{
	tl_conv_shape cs = {n, c, h, w, o, kh, kw, s, s, p, p, 0, 0};
	cs.oh = tl_conv_out(h, kh, s, p);
	cs.ow = tl_conv_out(w, kw, s, p);
	return cs;
}

/* Padding pb before and pa after (asymmetric: Keras' stride-2 "correct_pad"
 * is pb = 0, pa = 1); oh/ow carry the padding after. */
static tl_conv_shape asym_shape(int n, int c, int h, int w, int o, int kh, int kw, int s, int pb,
				int pa)
{
	tl_conv_shape cs = {n, c, h, w, o, kh, kw, s, s, pb, pb, 0, 0};
	cs.oh = (h + pb + pa - kh) / s + 1;
	cs.ow = (w + pb + pa - kw) / s + 1;
	return cs;
}

/* Forward and backward of one shape on both backends. */
static void conv_case(const tl_conv_shape *s, int bias, int relu, int acc_dx, int grads)
{
	size_t nx = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->o * s->c * s->kh * s->kw;
	size_t ny = (size_t)s->n * s->o * s->oh * s->ow;
	twin x = tw_new(nx, NULL), w = tw_new(nw, NULL), b = bias ? tw_new(s->o, NULL) : none;
	twin y = tw_new(ny, NULL);
	BOTH(conv_fwd, s, M(x), M(w), M(b), relu, M(y));
	sync_ok();
	tw_check(y, ATOL, RTOL, "conv y");
	/* the backward pass reads the same y on both: a y within rounding of
	 * 0 could otherwise be cut by ReLU on one side only (the mask is exact) */
	tw_sync_from_cpu(y);

	twin dy = tw_new(ny, NULL), dx = tw_new(nx, NULL);
	twin dw = (grads & 2) ? tw_new(nw, NULL) : none, db = (grads & 4) ? tw_new(s->o, NULL) : none;
	twin dxm = (grads & 1) ? dx : none;
	BOTH(conv_bwd, s, M(x), M(w), M(y), relu, M(dy), M(dxm), acc_dx, M(dw), M(db));
	sync_ok();
	tw_same(dy, "conv dy (relu-masked)");
	tw_check(dx, ATOL, RTOL, "conv dx"); /* untouched copies when dx is none */
	/* dW and db sum over all n*oh*ow pixels, where terms of size max|dW|
	 * cancel: fp32 rounding grows as sqrt(pixels) of it (an im2col dW over
	 * 64k pixels is off by 8e-6 of its largest value, Winograd's by 1e-5),
	 * far above 1e-4 * |want| for a small element */
	double sum_rtol = 4 * FLT_EPSILON * sqrt((double)s->n * s->oh * s->ow);
	if (grads & 2)
		tw_check_norm(dw, sum_rtol, "conv dw");
	if (grads & 4)
		tw_check_norm(db, sum_rtol, "conv db");
	twin all[] = {x, w, b, y, dy, dx, dw, db};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		tw_free(all[i]);
}

#ifdef TL_HAVE_OPENCL
/* The least workspace one image of s needs: im2col's col [K][P] and
 * wide [O][P] unless both Winograd passes take it, and their V and M
 * ([16][channels][tiles]) where they do. */
static size_t one_image_bytes(const tl_conv_shape *s)
{
	if (s->kh == 1 && s->kw == 1 && s->sh == 1 && s->oh == s->h && s->ow == s->w)
		return 0;
	int f = tl_ocl_winograd(s, 0), d = tl_ocl_winograd(s, 1);
	size_t P = (size_t)s->oh * s->ow, c = (size_t)s->c, o = (size_t)s->o;
	size_t t0 = f ? 16 * (size_t)((s->oh + 1) / 2) * ((s->ow + 1) / 2) : 0;
	size_t t1 = d ? 16 * (size_t)((s->h + 1) / 2) * ((s->w + 1) / 2) : 0;
	size_t ws = f && d ? 0 : c * s->kh * s->kw * P, wd = f && d ? 0 : o * P;
	ws = ws > c * t0 ? ws : c * t0;
	ws = ws > o * t1 ? ws : o * t1;
	wd = wd > o * t0 ? wd : o * t0;
	wd = wd > c * t1 ? wd : c * t1;
	return (ws + wd) * 4;
}
#endif

static void conv_all(int prepared)
{
	struct {
		tl_conv_shape s;
		int bias, relu, acc, grads;
		int wino; /* Winograd expected: 1 forward, 2 input gradient */
	} cases[] = {
		{conv_shape(2, 3, 7, 5, 13, 3, 3, 1, 1), 1, 1, 0, 7, 0},
		{conv_shape(3, 13, 7, 5, 6, 3, 3, 2, 1), 0, 0, 1, 7, 0},
		{conv_shape(2, 13, 7, 5, 7, 1, 1, 1, 0), 1, 1, 1, 7, 0},  /* 1x1: no im2col */
		{conv_shape(3, 13, 7, 5, 7, 1, 1, 1, 0), 0, 0, 0, 3, 0},  /* 1x1, no db */
		{conv_shape(2, 4, 9, 8, 5, 5, 3, 2, 2), 1, 0, 0, 6, 0},   /* 5x3 pad 2, dx none */
		{conv_shape(3, 5, 7, 5, 13, 3, 3, 1, 0), 1, 1, 1, 1, 0},  /* only dx */
		{conv_shape(2, 6, 5, 7, 9, 1, 1, 2, 0), 1, 1, 0, 7, 0},   /* 1x1 stride 2: im2col */
		{conv_shape(2, 3, 41, 33, 5, 3, 3, 1, 1), 1, 1, 1, 7, 0}, /* prepared: split-K dW */
		{asym_shape(2, 5, 7, 5, 6, 3, 3, 2, 0, 1), 1, 1, 0, 7, 0}, /* Keras stride 2: 0 | 1 */
		{asym_shape(3, 4, 8, 9, 7, 3, 3, 2, 0, 1), 0, 0, 1, 7, 0}, /* even rows: 0 | 1 */
		{asym_shape(2, 3, 12, 12, 4, 3, 3, 2, 0, 1), 1, 0, 0, 7, 0}, /* both read the pad */
		{asym_shape(2, 3, 48, 48, 2, 3, 3, 2, 0, 1), 0, 0, 0, 2, 0}, /* a Keras stem: dw only */
		{asym_shape(2, 3, 7, 5, 5, 5, 3, 1, 1, 3), 1, 0, 1, 7, 0}, /* 1 | 3 */
		{asym_shape(2, 6, 5, 7, 4, 1, 1, 1, 0, 1), 1, 1, 0, 7, 0}, /* 1x1 padded after */
		/* Winograd F(2x2, 3x3): odd maps (tiles past the edge), pads 0 to 2
		 * (the input gradient's 2 to 0), acc, dx alone, uneven pads */
		{conv_shape(4, 35, 41, 33, 33, 3, 3, 1, 1), 1, 1, 1, 7, 3},
		{conv_shape(3, 32, 45, 47, 40, 3, 3, 1, 0), 0, 0, 0, 1, 3},
		{asym_shape(3, 33, 40, 38, 32, 3, 3, 1, 2, 0), 1, 0, 1, 7, 3},
		{asym_shape(2, 40, 46, 45, 36, 3, 3, 1, 1, 2), 0, 1, 0, 5, 3},
		{{4, 34, 37, 36, 33, 3, 3, 1, 1, 2, 0, 39, 34}, 1, 1, 1, 7, 3}, /* rows pad 2, cols 0 */
		/* prepared: the weight gradient's 16 sums in 7 split-K slices and a rest */
		{conv_shape(4, 32, 62, 64, 32, 3, 3, 1, 1), 1, 1, 0, 6, 3},
		/* forward and dW Winograd, dx im2col (its tiles waste too much);
		 * dx Winograd, forward and dW im2col; oh, ow past their natural
		 * size (padding after 5) and short of it (padding after -1) */
		{conv_shape(4, 40, 30, 30, 33, 3, 3, 1, 2), 1, 1, 1, 7, 1},
		{conv_shape(4, 33, 30, 31, 40, 3, 3, 1, 2), 0, 0, 0, 7, 1},
		{conv_shape(4, 40, 32, 32, 33, 3, 3, 1, 0), 1, 1, 1, 7, 2},
		{conv_shape(4, 33, 31, 32, 40, 3, 3, 1, 0), 0, 1, 0, 3, 2},
		{{4, 34, 31, 33, 33, 3, 3, 1, 1, 1, 0, 35, 32}, 1, 1, 1, 7, 3},
		{{4, 34, 37, 36, 33, 3, 3, 1, 1, 1, 2, 34, 33}, 1, 0, 1, 7, 3},
		{{5, 34, 37, 36, 33, 3, 3, 1, 1, 0, 1, 33, 31}, 1, 0, 1, 6, 3},
		/* too few input channels: im2col both ways */
		{conv_shape(4, 31, 41, 33, 40, 3, 3, 1, 1), 1, 1, 0, 6, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tl_backend *main_be = B[1], *fresh = NULL;
#ifdef TL_HAVE_OPENCL
		if (is_ocl()) {
			int wino = tl_ocl_winograd(&cases[i].s, 0) |
				   tl_ocl_winograd(&cases[i].s, 1) << 1;
			if (wino != cases[i].wino)
				fail_msg("case %zu: Winograd %d, expected %d (TL_WINOGRAD=0 set?)", i,
					 wino, cases[i].wino);
		}
		if (!prepared) {
			/* a backend with no workspace: it grows to one image, so
			 * every image is a chunk and dW accumulates across them */
			tl_err err;
			if (tl_ocl_open(plat, dev, &fresh, &err) != TL_OK)
				fail_msg("%s", err.msg);
			B[1] = fresh;
		}
#endif
		if (prepared)
			B[1]->prepare_conv(B[1], &cases[i].s);
		conv_case(&cases[i].s, cases[i].bias, cases[i].relu, cases[i].acc, cases[i].grads);
#ifdef TL_HAVE_OPENCL
		if (fresh) {
			size_t per = one_image_bytes(&cases[i].s);
			size_t ws = fresh->workspace_bytes(fresh);
			if (ws < per)
				fail_msg("case %zu: workspace %zu bytes, one image needs %zu", i, ws, per);
			fresh->destroy(fresh);
			B[1] = main_be;
		}
#else
		(void)fresh, (void)main_be;
#endif
	}
}

static void conv_one_chunk(void **state)
{
	conv_all(1);
	if (is_ocl() && B[1]->workspace_bytes(B[1]) == 0)
		fail_msg("prepare_conv reserved no workspace");
}

#ifdef TL_HAVE_OPENCL
static void conv_image_chunks(void **state)
{
	conv_all(0);
}

/* A workspace of 60 MiB holds three of the four 126x128 images (the last
 * chunk has one): the Winograd weight gradient sums its split-K slices
 * chunk after chunk. */
static void conv_wino_chunked_split(void **state)
{
	tl_conv_shape cs = conv_shape(4, 32, 126, 128, 32, 3, 3, 1, 1);
	tl_backend *main_ocl = B[1], *small = NULL;
	tl_err err;
	setenv("TL_OCL_WORKSPACE_MB", "60", 1);
	tl_status st = tl_ocl_open(plat, dev, &small, &err);
	unsetenv("TL_OCL_WORKSPACE_MB");
	if (st != TL_OK)
		fail_msg("%s", err.msg);
	assert_true(tl_ocl_winograd(&cs, 0) && tl_ocl_winograd(&cs, 1));
	small->prepare_conv(small, &cs);
	size_t ws = small->workspace_bytes(small);
	/* V and M [16][32][63*64] for one image: 16.5 MB */
	size_t one = one_image_bytes(&cs);
	assert_int_equal(one, (size_t)2 * 16 * 32 * 63 * 64 * 4);
	if (ws < 3 * one)
		fail_msg("workspace %zu bytes: less than 3 images of %zu", ws, one);
	if (4 * one <= ((size_t)60 << 20))
		fail_msg("4 images of %zu bytes fit in 60 MiB: one chunk", one);
	B[1] = small;
	conv_case(&cs, 1, 0, 1, 7);
	B[1] = main_ocl;
	small->destroy(small);
}

/* TL_OCL_CONVGEMM=1: the forward pass through CLBlast's Sconvgemm, with
 * the shapes it takes (the same padding after as before). */
static void conv_convgemm(void **state)
{
	tl_conv_shape cases[] = {
		conv_shape(2, 3, 7, 5, 13, 3, 3, 1, 1),  conv_shape(3, 13, 7, 5, 6, 3, 3, 2, 1),
		conv_shape(2, 4, 9, 8, 5, 5, 3, 2, 2),   conv_shape(2, 6, 5, 7, 9, 1, 1, 2, 0),
		conv_shape(4, 35, 41, 33, 33, 3, 3, 1, 1),
	};
	setenv("TL_OCL_CONVGEMM", "1", 1);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		B[1]->prepare_conv(B[1], &cases[i]);
		conv_case(&cases[i], (int)i % 2, 1 - (int)i % 2, 0, 7);
	}
	unsetenv("TL_OCL_CONVGEMM");
}
#endif

/* ---- pooling ---- */

static void pool_case(int n, int c, int h, int w, int k, int s, int p, int ceil_mode, int acc)
{
	tl_pool_shape ps = {n, c, h, w, k, s, p, tl_pool_out(h, k, s, p, ceil_mode),
			    tl_pool_out(w, k, s, p, ceil_mode)};
	size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * ps.oh * ps.ow;
	float *xh = malloc(nx * 4);
	for (size_t i = 0; i < nx; i++)
		xh[i] = (float)(rng = rng * 1664525u + 1013904223u, (rng >> 16) % 4) - (p ? 2 : 0);
	/* ties; with padding also negative values, so a padded cell (never a
	 * winner) would beat them if it read as zero */
	twin x = tw_new(nx, xh), y = tw_new(ny, NULL), am = tw_new(ny, NULL);
	free(xh);
	BOTH(maxpool_fwd, &ps, M(x), M(y), M(am));
	sync_ok();
	tw_same(y, "maxpool y");
	tw_same(am, "maxpool argmax");
	twin dy = tw_new(ny, NULL), dx = tw_new(nx, NULL);
	BOTH(maxpool_bwd, &ps, M(dy), M(am), M(dx), acc);
	sync_ok();
	tw_check(dx, 1e-6, 1e-6, "maxpool dx");
	twin all[] = {x, y, am, dy, dx};
	for (size_t i = 0; i < 5; i++)
		tw_free(all[i]);
}

static void maxpool(void **state)
{
	pool_case(2, 13, 7, 5, 3, 2, 0, 1, 0); /* overlapping, ceil: partial last windows */
	pool_case(2, 3, 7, 5, 3, 2, 0, 0, 1);
	pool_case(1, 4, 7, 5, 2, 2, 0, 1, 1);
	pool_case(2, 3, 8, 8, 2, 2, 0, 0, 0);
}

/* Padded max pooling (GoogLeNet's k3 s1 p1 and k3 s2 p1 ceil, MobileNet's
 * none): padded cells never win, argmax indexes the unpadded plane. */
static void maxpool_padded(void **state)
{
	pool_case(2, 13, 7, 5, 3, 1, 1, 1, 0); /* k3 s1 p1 ceil: same size */
	pool_case(2, 13, 7, 5, 3, 2, 1, 1, 1); /* k3 s2 p1 ceil */
	pool_case(2, 5, 8, 6, 3, 2, 1, 0, 0);  /* k3 s2 p1 floor */
	pool_case(1, 3, 13, 13, 3, 2, 1, 1, 1);
	/* all negative: padding read as zero would win everywhere at the edge */
	tl_pool_shape ps = {1, 2, 5, 4, 3, 1, 1, 5, 4};
	float xh[40];
	for (int i = 0; i < 40; i++)
		xh[i] = -1.0f - (float)i;
	xh[27] = NAN; /* plane 1, row 1, col 3: wins its windows, on the right edge */
	twin x = tw_new(40, xh), y = tw_new(40, NULL), am = tw_new(40, NULL);
	BOTH(maxpool_fwd, &ps, M(x), M(y), M(am));
	sync_ok();
	tw_same(y, "maxpool y (negative)");
	tw_same(am, "maxpool argmax (negative)");
	int32_t a[40];
	fetch(1, am, a);
	/* output (0, 0) covers rows 0..1, cols 0..1 of plane 0: the max is x[0] */
	assert_int_equal(a[0], 0);
	/* output (4, 3) covers rows 3..4, cols 2..3: the max is x[3*4 + 2] */
	assert_int_equal(a[19], 14);
	/* plane 1, output (0, 3) covers rows 0..1, cols 2..3: the NaN at 1*4 + 3 */
	assert_int_equal(a[23], 7);
	tw_free(x);
	tw_free(y);
	tw_free(am);
}

/* Adaptive average pooling: repeats (1x1 -> 6x6), uneven windows (7x5 ->
 * 3x2), overlapping ones (13x13 -> 6x6, AlexNet's). */
static void avgpool(void **state)
{
	const int cases[][4] = {{1, 1, 6, 6}, {7, 5, 3, 2}, {13, 13, 6, 6}, {6, 6, 6, 6}, {5, 7, 2, 3}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int acc = 0; acc < 2; acc++) {
			tl_pool_shape ps = {2, 13, cases[i][0], cases[i][1], 0, 0, 0, cases[i][2],
					    cases[i][3]};
			size_t nx = (size_t)ps.n * ps.c * ps.h * ps.w;
			size_t ny = (size_t)ps.n * ps.c * ps.oh * ps.ow;
			twin x = tw_new(nx, NULL), y = tw_new(ny, NULL);
			BOTH(avgpool_fwd, &ps, M(x), M(y));
			twin dy = tw_new(ny, NULL), dx = tw_new(nx, NULL);
			BOTH(avgpool_bwd, &ps, M(dy), M(dx), acc);
			sync_ok();
			tw_check(y, 1e-6, 1e-5, "avgpool y");
			tw_check(dx, 1e-6, 1e-5, "avgpool dx");
			if (ps.h == 1 && ps.w == 1) {
				/* 36 copies: y[n][c][*] = x[n][c], dx = the sum of the 36 dy */
				float xv[26], yv[936];
				fetch(1, x, xv);
				fetch(1, y, yv);
				for (int k = 0; k < 936; k++)
					assert_true(yv[k] == xv[k / 36]);
			}
			twin all[] = {x, y, dy, dx};
			for (size_t k = 0; k < 4; k++)
				tw_free(all[k]);
		}
}

static void gap(void **state)
{
	for (int acc = 0; acc < 2; acc++) {
		int n = 3, c = 13, hw = 35;
		twin x = tw_new((size_t)n * c * hw, NULL), y = tw_new((size_t)n * c, NULL);
		BOTH(gap_fwd, n, c, hw, M(x), M(y));
		twin dx = tw_new((size_t)n * c * hw, NULL);
		BOTH(gap_bwd, n, c, hw, M(y), M(dx), acc);
		sync_ok();
		tw_check(y, 1e-6, 1e-5, "gap y");
		tw_check(dx, 1e-6, 1e-5, "gap dx");
		tw_free(x);
		tw_free(y);
		tw_free(dx);
	}
}

/* ---- depthwise convolution ---- */

static void dwconv_case(const tl_conv_shape *s, int bias, int relu, int acc_dx, int grads)
{
	size_t nx = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->c * s->kh * s->kw;
	size_t ny = (size_t)s->n * s->c * s->oh * s->ow;
	twin x = tw_new(nx, NULL), w = tw_new(nw, NULL), b = bias ? tw_new(s->c, NULL) : none;
	twin y = tw_new(ny, NULL);
	BOTH(dwconv_fwd, s, M(x), M(w), M(b), relu, M(y));
	sync_ok();
	tw_check(y, ATOL, RTOL, "dwconv y");

	twin dy = tw_new(ny, NULL), dx = tw_new(nx, NULL);
	twin dw = (grads & 2) ? tw_new(nw, NULL) : none, db = (grads & 4) ? tw_new(s->c, NULL) : none;
	twin dxm = (grads & 1) ? dx : none;
	BOTH(dwconv_bwd, s, M(x), M(w), M(y), relu, M(dy), M(dxm), acc_dx, M(dw), M(db));
	sync_ok();
	tw_same(dy, "dwconv dy (relu-masked)");
	tw_check(dx, ATOL, RTOL, "dwconv dx"); /* untouched copies when dx is none */
	if (grads & 2)
		tw_check(dw, ATOL, RTOL, "dwconv dw");
	if (grads & 4)
		tw_check(db, ATOL, RTOL, "dwconv db");
	twin all[] = {x, w, b, y, dy, dx, dw, db};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		tw_free(all[i]);
}

static void dwconv(void **state)
{
	struct {
		tl_conv_shape s;
		int bias, relu, acc, grads;
	} cases[] = {
		{asym_shape(2, 13, 7, 5, 13, 3, 3, 1, 1, 1), 1, 1, 0, 7}, /* MobileNet stride 1 */
		{asym_shape(3, 13, 7, 5, 13, 3, 3, 2, 0, 1), 0, 0, 1, 7}, /* 0 | 1, odd: unread */
		{asym_shape(3, 13, 8, 6, 13, 3, 3, 2, 0, 1), 1, 1, 0, 7}, /* Keras stride 2, even:
									   * the row after is read */
		{asym_shape(2, 13, 12, 10, 13, 3, 3, 2, 0, 1), 0, 0, 1, 7},
		{asym_shape(2, 13, 8, 6, 13, 3, 3, 2, 1, 1), 1, 1, 1, 7}, /* torch stride 2: 1 | 1 */
		{asym_shape(2, 5, 13, 13, 5, 5, 5, 1, 2, 2), 1, 0, 0, 6}, /* 5x5, dx none */
		{asym_shape(3, 7, 7, 5, 7, 3, 5, 2, 1, 2), 0, 1, 0, 1},   /* only dx, 3x5, 1 | 2 */
		{asym_shape(2, 13, 7, 5, 13, 3, 3, 1, 1, 1), 1, 1, 1, 4}, /* only db */
		/* maps smaller than the kernel (MobileNetV2's last blocks at 48x48) */
		{asym_shape(2, 13, 2, 2, 13, 3, 3, 1, 1, 1), 1, 1, 0, 7},
		{asym_shape(2, 13, 1, 1, 13, 3, 3, 1, 1, 1), 0, 0, 1, 7},
		{asym_shape(2, 13, 3, 3, 13, 3, 3, 2, 1, 1), 1, 1, 1, 7},
		/* more than a work-group's worth of products per weight (lanes loop) */
		{asym_shape(3, 13, 23, 19, 13, 3, 3, 1, 1, 1), 1, 1, 0, 7},
		{asym_shape(3, 13, 23, 19, 13, 3, 3, 2, 0, 1), 1, 0, 1, 7},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		dwconv_case(&cases[i].s, cases[i].bias, cases[i].relu, cases[i].acc, cases[i].grads);
}

/* ---- normalization ---- */

/* n floats lo + (hi - lo) * u, u uniform in [0, 1). */
static twin tw_uniform(size_t n, float lo, float hi)
{
	float *h = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		h[i] = lo + (hi - lo) * (frand() + 1) / 2;
	twin t = tw_new(n, h);
	free(h);
	return t;
}

static void bn_case(int n, int hw, int training, int act, int acc, int grads)
{
	int c = 13;
	size_t len = (size_t)n * c * hw;
	float eps = 1e-3f, mom = 0.1f;
	/* x off-centre so the mean matters; gamma and beta wide enough that y
	 * crosses both 0 and 6 (ReLU6 clamps on either side) */
	twin x = tw_uniform(len, -1.0f, 3.0f), gamma = tw_uniform(c, 1.0f, 5.0f);
	twin beta = tw_uniform(c, -1.0f, 4.0f);
	twin rmean = tw_uniform(c, -0.5f, 0.5f), rvar = tw_uniform(c, 0.5f, 1.5f);
	twin save = tw_new(2 * (size_t)c, NULL), y = tw_new(len, NULL);
	float r0[2][13];
	fetch(1, rmean, r0[0]);
	fetch(1, rvar, r0[1]);
	BOTH(bn_fwd, n, c, hw, eps, mom, training, M(x), M(gamma), M(beta), M(rmean), M(rvar),
	     M(save), act, M(y));
	sync_ok();
	tw_check(save, 1e-5, 1e-4, "bn save");
	tw_check(y, ATOL, RTOL, "bn y");
	tw_check(rmean, 1e-6, 1e-5, "bn running mean");
	tw_check(rvar, 1e-6, 1e-5, "bn running var");
	float *yh = malloc(len * 4);
	fetch(1, y, yh);
	int below = 0, above = 0;
	for (size_t i = 0; i < len; i++) {
		below += yh[i] <= 0.0f;
		above += yh[i] >= 6.0f;
	}
	if (act != TL_ACT_NONE && !below)
		fail_msg("bn y: no value clamped at 0 (the mask is untested)");
	if (act == TL_ACT_RELU6 && !above)
		fail_msg("bn y: no value clamped at 6 (the mask is untested)");
	free(yh);
	float r1[2][13], sv[26];
	fetch(1, rmean, r1[0]);
	fetch(1, rvar, r1[1]);
	fetch(1, save, sv);
	for (int k = 0; k < c; k++) {
		if (!training) {
			/* running stats untouched, save made from them */
			assert_true(r1[0][k] == r0[0][k] && r1[1][k] == r0[1][k]);
			assert_true(sv[k] == r0[0][k]);
			assert_close(sv[c + k], 1.0 / sqrt(r0[1][k] + (double)eps), 1e-6, 1e-5);
		} else {
			/* moved toward the batch: rmean = 0.9 rmean + 0.1 mean */
			assert_close(r1[0][k], 0.9 * r0[0][k] + 0.1 * sv[k], 1e-6, 1e-5);
		}
	}

	tw_sync_from_cpu(y);
	tw_sync_from_cpu(save);
	twin dy = tw_new(len, NULL), dx = tw_new(len, NULL);
	twin dg = (grads & 2) ? tw_new(c, NULL) : none, db = (grads & 4) ? tw_new(c, NULL) : none;
	twin dxm = (grads & 1) ? dx : none;
	BOTH(bn_bwd, n, c, hw, training, M(x), M(gamma), M(save), M(y), act, M(dy), M(dxm), acc,
	     M(dg), M(db));
	sync_ok();
	tw_same(dy, "bn dy (act-masked)");
	tw_check(dx, ATOL, RTOL, "bn dx");
	if (grads & 2)
		tw_check(dg, ATOL, RTOL, "bn dgamma");
	if (grads & 4)
		tw_check(db, ATOL, RTOL, "bn dbeta");
	twin all[] = {x, gamma, beta, rmean, rvar, save, y, dy, dx, dg, db};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		tw_free(all[i]);
}

static void batchnorm(void **state)
{
	for (int training = 0; training < 2; training++)
		for (int act = TL_ACT_NONE; act <= TL_ACT_RELU6; act++) {
			bn_case(3, 35, training, act, 0, 7);
			bn_case(3, 35, training, act, 1, 7);
		}
	/* dx without dgamma/dbeta (training needs them anyway: scratch), one
	 * of them, no dx */
	bn_case(3, 35, 1, TL_ACT_RELU6, 0, 1);
	bn_case(3, 35, 1, TL_ACT_RELU, 1, 3);
	bn_case(3, 35, 1, TL_ACT_NONE, 0, 5);
	bn_case(3, 35, 0, TL_ACT_RELU6, 0, 1);
	bn_case(3, 35, 1, TL_ACT_RELU6, 0, 6);
	/* more than a work-group's worth per channel (lanes loop): 4 x 23x19 */
	bn_case(4, 437, 1, TL_ACT_RELU6, 1, 7);
	bn_case(4, 437, 0, TL_ACT_RELU, 0, 7);
	bn_case(1, 1, 0, TL_ACT_NONE, 0, 7); /* one value per channel (inference) */
	/* channels of 2 and 4+ chunks (ocl/ops.c's BN_CHUNK = 4096 values): the
	 * two-level sums, with a short last chunk */
	bn_case(4, 2209, 1, TL_ACT_RELU6, 0, 7);
	bn_case(3, 6001, 1, TL_ACT_NONE, 1, 1);
	bn_case(4, 2209, 0, TL_ACT_RELU, 0, 7);
	bn_case(2, 4, 1, TL_ACT_RELU6, 0, 7); /* 2x2 maps, a batch of 2 */
	bn_case(2, 4, 1, TL_ACT_RELU6, 1, 1);
}

static void lrn(void **state)
{
	const struct {
		int size;
		float alpha, beta, kk;
	} cases[] = {{5, 0.5f, 0.75f, 2.0f}, {3, 0.5f, 0.75f, 1.0f}, {4, 0.5f, 0.6f, 1.0f}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int acc = 0; acc < 2; acc++) {
			int n = 2, c = 13, hw = 35, size = cases[i].size;
			float alpha = cases[i].alpha, beta = cases[i].beta;
			size_t len = (size_t)n * c * hw;
			twin x = tw_uniform(len, -2.0f, 2.0f), scale = tw_new(len, NULL);
			twin y = tw_new(len, NULL);
			BOTH(lrn_fwd, n, c, hw, size, alpha, beta, cases[i].kk, M(x), M(scale), M(y));
			sync_ok();
			tw_check(scale, 1e-5, 1e-5, "lrn scale");
			tw_check(y, ATOL, RTOL, "lrn y");
			twin dy = tw_new(len, NULL), dx = tw_new(len, NULL);
			BOTH(lrn_bwd, n, c, hw, size, alpha, beta, M(x), M(y), M(scale), M(dy), M(dx),
			     acc);
			sync_ok();
			tw_check(dx, ATOL, RTOL, "lrn dx");
			twin all[] = {x, scale, y, dy, dx};
			for (size_t k = 0; k < 5; k++)
				tw_free(all[k]);
		}
}

/* The work-group reductions (dwconv dw and db, the batch statistics,
 * dgamma and dbeta) give the same bits at every run. */
static void reductions_deterministic(void **state)
{
	tl_backend *be = B[1];
	/* 4 x 47x47: batch norm's two-level sums (2 chunks per channel) */
	tl_conv_shape s = asym_shape(4, 13, 47, 47, 13, 3, 3, 1, 1, 1);
	size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.c * 9, c = (size_t)s.c;
	twin x = tw_new(nx, NULL), w = tw_new(nw, NULL), y = tw_new(nx, NULL);
	twin g = tw_uniform(c, 1.0f, 2.0f), bt = tw_new(c, NULL), rm = tw_new(c, NULL);
	twin rv = tw_uniform(c, 0.5f, 1.0f), sv = tw_new(2 * c, NULL), dy = tw_new(nx, NULL);
	twin out[2][5];
	for (int r = 0; r < 2; r++) { /* no activation: dy is not masked, the same twice */
		twin dw = tw_new(nw, NULL), db = tw_new(c, NULL);
		twin dg = tw_new(c, NULL), dbt = tw_new(c, NULL);
		be->dwconv_bwd(be, &s, x.m[1], w.m[1], y.m[1], 0, dy.m[1], (tl_mem){NULL, 0}, 0,
			       dw.m[1], db.m[1]);
		be->bn_fwd(be, s.n, s.c, s.h * s.w, 1e-5f, 0.1f, 1, x.m[1], g.m[1], bt.m[1], rm.m[1],
			   rv.m[1], sv.m[1], TL_ACT_NONE, y.m[1]);
		be->bn_bwd(be, s.n, s.c, s.h * s.w, 1, x.m[1], g.m[1], sv.m[1], y.m[1], TL_ACT_NONE,
			   dy.m[1], (tl_mem){NULL, 0}, 0, dg.m[1], dbt.m[1]);
		twin o[5] = {dw, db, dg, dbt, tw_new(2 * c, NULL)};
		be->copy2d(be, o[4].m[1], 0, sv.m[1], 0, 1, 2 * c, 0);
		memcpy(out[r], o, sizeof o);
	}
	sync_ok();
	for (int k = 0; k < 5; k++) {
		uint32_t a[128], b[128];
		assert_true(out[0][k].n <= 128);
		fetch(1, out[0][k], a);
		fetch(1, out[1][k], b);
		assert_memory_equal(a, b, out[0][k].n * 4);
		tw_free(out[0][k]);
		tw_free(out[1][k]);
	}
	twin all[] = {x, w, y, g, bt, rm, rv, sv, dy};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		tw_free(all[i]);
}

/* ---- dense ---- */

static void dense(void **state)
{
	for (int v = 0; v < 6; v++) {
		int n = 5, in = 37, out = 13, relu = v & 1, acc = (v >> 1) & 1, nodx = v == 4;
		twin x = tw_new((size_t)n * in, NULL), w = tw_new((size_t)out * in, NULL);
		twin b = v == 2 ? none : tw_new(out, NULL), y = tw_new((size_t)n * out, NULL);
		BOTH(dense_fwd, n, in, out, M(x), M(w), M(b), relu, M(y));
		sync_ok();
		tw_check(y, ATOL, RTOL, "dense y");
		twin dy = tw_new((size_t)n * out, NULL), dx = tw_new((size_t)n * in, NULL);
		twin dw = tw_new((size_t)out * in, NULL), db = tw_new(out, NULL);
		twin dxm = nodx ? none : dx;
		BOTH(dense_bwd, n, in, out, M(x), M(w), M(y), relu, M(dy), M(dxm), acc, M(dw), M(db));
		sync_ok();
		tw_same(dy, "dense dy (relu-masked)");
		tw_check(dx, ATOL, RTOL, "dense dx");
		tw_check(dw, ATOL, RTOL, "dense dw");
		tw_check(db, ATOL, RTOL, "dense db");
		twin all[] = {x, w, b, y, dy, dx, dw, db};
		for (size_t i = 0; i < 8; i++)
			tw_free(all[i]);
	}
}

/* ---- elementwise ---- */

static void dropout(void **state)
{
	size_t len = 3001;
	float p = 0.3f;
	uint64_t seed = 0x1234567890abcdefull;
	twin x = tw_new(len, NULL), mask = tw_new(len, NULL), y = tw_new(len, NULL);
	BOTH(dropout_fwd, len, p, seed, M(x), M(mask), M(y));
	sync_ok();
	tw_same(mask, "dropout mask");
	tw_same(y, "dropout y");
	/* and the mask is tl_dropout_keep's, with about p dropped */
	float *m = malloc(len * 4);
	fetch(1, mask, m);
	size_t dropped = 0;
	for (size_t i = 0; i < len; i++) {
		float want = tl_dropout_keep(seed, i, p) ? 1.0f / (1.0f - p) : 0.0f;
		if (m[i] != want)
			fail_msg("mask[%zu] = %g, tl_dropout_keep says %g", i, m[i], want);
		dropped += m[i] == 0;
	}
	if (dropped < len / 4 || dropped > len * 7 / 20)
		fail_msg("dropped %zu of %zu at p = %g", dropped, len, p);
	free(m);
	for (int acc = 0; acc < 2; acc++) {
		twin dy = tw_new(len, NULL), dx = tw_new(len, NULL);
		BOTH(mul_acc, len, M(dy), M(mask), M(dx), acc);
		sync_ok();
		tw_same(dx, "mul_acc dx");
		tw_free(dy);
		tw_free(dx);
	}
	tw_free(x);
	tw_free(mask);
	tw_free(y);
}

static void softmax(void **state)
{
	int n = 7, k = 10;
	int32_t labels[7] = {0, 9, 3, 3, 5, 1, 7};
	for (int cs = 0; cs < 3; cs++) { /* no dlogits; dlogits; dlogits with smoothing */
		int withd = cs > 0;
		float eps = cs == 2 ? 0.1f : 0.0f;
		twin lg = tw_new((size_t)n * k, NULL), lab = tw_new(n, labels);
		twin d = withd ? tw_new((size_t)n * k, NULL) : none, st = tw_new(2 * (size_t)n, NULL);
		BOTH(softmax_xent, n, k, M(lg), M(lab), eps, 1.0f / n, M(d), M(st));
		sync_ok();
		float s[2][14];
		for (int b = 0; b < 2; b++)
			fetch(b, st, s[b]);
		for (int i = 0; i < n; i++) {
			assert_close(s[1][i], s[0][i], 1e-5, 1e-5);
			int32_t a0, a1;
			memcpy(&a0, &s[0][n + i], 4);
			memcpy(&a1, &s[1][n + i], 4);
			assert_int_equal(a1, a0);
		}
		if (withd)
			tw_check(d, 1e-6, 1e-5, "dlogits");
		tw_free(lg);
		tw_free(lab);
		tw_free(d);
		tw_free(st);
	}
}

static void update(void **state)
{
	size_t len = 1003;
	for (int kind = 0; kind < 3; kind++) {
		tl_update u = {.adam = kind == 2, .lr = 0.05f, .momentum = 0.9f,
			       .weight_decay = 5e-4f, .nesterov = kind == 1, .beta1 = 0.9f,
			       .beta2 = 0.999f, .eps = 1e-8f};
		float zeros[1003] = {0};
		twin p = tw_new(len, NULL), g = tw_new(len, NULL);
		twin m = tw_new(len, zeros), v = tw_new(len, zeros);
		for (int t = 1; t <= 3; t++) {
			u.bc1 = 1.0f - powf(u.beta1, (float)t);
			u.sqrt_bc2 = sqrtf(1.0f - powf(u.beta2, (float)t));
			BOTH(update, &u, len, M(p), M(g), M(m), u.adam ? M(v) : (tl_mem){NULL, 0});
		}
		sync_ok();
		tw_check(p, 1e-6, 1e-5, "update p");
		tw_check(m, 1e-6, 1e-5, "update m");
		if (u.adam)
			tw_check(v, 1e-7, 1e-5, "update v");
		tw_free(p);
		tw_free(g);
		tw_free(m);
		tw_free(v);
	}
}

static void copies(void **state)
{
	for (int acc = 0; acc < 2; acc++) {
		twin src = tw_new(3 * 9, NULL), dst = tw_new(3 * 7 + 2, NULL);
		BOTH(copy2d, tl_mem_at(M(dst), 2), 7, tl_mem_at(M(src), 1), 9, 3, 5, acc);
		sync_ok();
		tw_same(dst, "copy2d dst");
		BOTH(copy2d, M(dst), 0, M(src), 0, 1, 20, acc); /* a plain copy */
		BOTH(fill, tl_mem_at(M(src), 4), -2.5f, 11);
		sync_ok();
		tw_same(dst, "copy dst");
		tw_same(src, "fill");
		tw_free(src);
		tw_free(dst);
	}
}

static void nonfinite(void **state)
{
	size_t n = 20011; /* more than 64 groups of 256: lanes loop */
	float *h = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		h[i] = frand() * 1e30f;
	h[0] = NAN;
	h[257] = INFINITY;
	h[9000] = -INFINITY;
	h[n - 1] = -NAN;
	h[100] = 3e38f * 10.0f; /* overflows to inf */
	twin x = tw_new(n, h);
	free(h);
	size_t got[2];
	for (int b = 0; b < 2; b++)
		got[b] = B[b]->count_nonfinite(B[b], x.m[b], n);
	sync_ok();
	assert_int_equal(got[0], 5);
	assert_int_equal(got[1], 5);
	assert_int_equal(B[1]->count_nonfinite(B[1], tl_mem_at(x.m[1], 1), 256), 1);
	tw_free(x);
}

/* maxpool_infer (where a backend has one: NULL means maxpool_fwd
 * serves) gives maxpool_fwd's y, bit for bit. */
static void maxpool_infer(void **state)
{
	if (!B[1]->maxpool_infer)
		skip();
	const int cases[][7] = {{2, 13, 7, 5, 3, 2, 0}, {2, 13, 7, 5, 3, 1, 1}, {1, 3, 13, 13, 3, 2, 1}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const int *c = cases[i];
		tl_pool_shape ps = {c[0], c[1], c[2], c[3], c[4], c[5], c[6],
				    tl_pool_out(c[2], c[4], c[5], c[6], 1),
				    tl_pool_out(c[3], c[4], c[5], c[6], 1)};
		size_t nx = (size_t)ps.n * ps.c * ps.h * ps.w, ny = (size_t)ps.n * ps.c * ps.oh * ps.ow;
		twin x = tw_new(nx, NULL), y = tw_new(ny, NULL), yi = tw_new(ny, NULL);
		twin am = tw_new(ny, NULL);
		BOTH(maxpool_fwd, &ps, M(x), M(y), M(am));
		B[1]->maxpool_infer(B[1], &ps, x.m[1], yi.m[1]);
		sync_ok();
		float *a = malloc(ny * 4), *b = malloc(ny * 4);
		fetch(1, y, a);
		fetch(1, yi, b);
		assert_memory_equal(a, b, ny * 4);
		tw_same(y, "maxpool y");
		free(a);
		free(b);
		twin all[] = {x, y, yi, am};
		for (size_t k = 0; k < 4; k++)
			tw_free(all[k]);
	}
}

/* ---- errors ---- */

#ifdef TL_HAVE_OPENCL
static void errors_are_sticky(void **state)
{
	tl_backend *be;
	tl_err err;
	if (tl_ocl_open(plat, dev, &be, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_null(be->host(be, (tl_mem){NULL, 0}));
	assert_true(be->mem_total > 0 && be->max_alloc > 0 && be->max_alloc <= be->mem_total);
	tl_buf *ok = be->alloc(be, 64);
	assert_non_null(ok);
	assert_null(be->alloc(be, be->max_alloc + 1));
	assert_int_equal(be->status, TL_ENOMEM);
	assert_non_null(strstr(be->err.msg, "largest"));
	/* later ops do nothing, sync and download report the first error */
	be->fill(be, (tl_mem){ok, 0}, 1.0f, 16);
	assert_int_equal(be->sync(be, &err), TL_ENOMEM);
	assert_non_null(strstr(err.msg, "bytes"));
	float h[4];
	assert_int_equal(be->download(be, (tl_mem){ok, 0}, h, sizeof h, &err), TL_ENOMEM);
	be->free(be, ok);
	be->destroy(be);

	/* an upload past the end of a buffer is the caller's error */
	if (tl_ocl_open(plat, dev, &be, &err) != TL_OK)
		fail_msg("%s", err.msg);
	ok = be->alloc(be, 16);
	be->upload(be, (tl_mem){ok, 2}, h, sizeof h);
	assert_int_equal(be->sync(be, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "overrun"));
	be->free(be, ok);
	be->destroy(be);

	/* a depthwise conv with o != c is refused, not run out of bounds */
	if (tl_ocl_open(plat, dev, &be, &err) != TL_OK)
		fail_msg("%s", err.msg);
	ok = be->alloc(be, 4096);
	tl_conv_shape s = asym_shape(1, 2, 4, 4, 3, 3, 3, 1, 1, 1);
	be->dwconv_fwd(be, &s, (tl_mem){ok, 0}, (tl_mem){ok, 0}, (tl_mem){NULL, 0}, 0,
		       (tl_mem){ok, 0});
	assert_int_equal(be->sync(be, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "dwconv"));
	be->free(be, ok);
	be->destroy(be);
}

static void list_devices(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	tl_err err;
	assert_int_equal(tl_ocl_list(f, &err), TL_OK);
	fclose(f);
	assert_non_null(strstr(buf, "platform 0:"));
	assert_non_null(strstr(buf, "compute units"));
	free(buf);
}
#endif

/* ---- the table ---- */

#define MAX_OPS 8
typedef struct {
	const char *name;
	CMUnitTestFunction fn;
	int opencl_only; /* device paths the CPU has no counterpart of */
	tl_op ops[MAX_OPS]; /* the ops it runs against the reference, to TL_OP_COUNT */
} op_test;

#define T(fn, only, ...) {#fn, fn, only, {__VA_ARGS__, TL_OP_COUNT}}
static const op_test ops_tests[] = {
	T(conv_one_chunk, 0, TL_OP_conv_fwd, TL_OP_conv_bwd),
#ifdef TL_HAVE_OPENCL
	T(conv_image_chunks, 1, TL_OP_conv_fwd, TL_OP_conv_bwd),
	T(conv_wino_chunked_split, 1, TL_OP_conv_fwd, TL_OP_conv_bwd),
	T(conv_convgemm, 1, TL_OP_conv_fwd, TL_OP_conv_bwd),
#endif
	T(maxpool, 0, TL_OP_maxpool_fwd, TL_OP_maxpool_bwd),
	T(maxpool_padded, 0, TL_OP_maxpool_fwd, TL_OP_maxpool_bwd),
	T(maxpool_infer, 0, TL_OP_maxpool_infer, TL_OP_maxpool_fwd),
	T(avgpool, 0, TL_OP_avgpool_fwd, TL_OP_avgpool_bwd),
	T(dwconv, 0, TL_OP_dwconv_fwd, TL_OP_dwconv_bwd),
	T(batchnorm, 0, TL_OP_bn_fwd, TL_OP_bn_bwd),
	T(lrn, 0, TL_OP_lrn_fwd, TL_OP_lrn_bwd),
	T(reductions_deterministic, 0, TL_OP_dwconv_bwd, TL_OP_bn_fwd, TL_OP_bn_bwd, TL_OP_copy2d),
	T(gap, 0, TL_OP_gap_fwd, TL_OP_gap_bwd),
	T(dense, 0, TL_OP_dense_fwd, TL_OP_dense_bwd),
	T(dropout, 0, TL_OP_dropout_fwd, TL_OP_mul_acc),
	T(softmax, 0, TL_OP_softmax_xent),
	T(update, 0, TL_OP_update),
	T(copies, 0, TL_OP_copy2d, TL_OP_fill),
	T(nonfinite, 0, TL_OP_count_nonfinite),
#ifdef TL_HAVE_OPENCL
	T(errors_are_sticky, 1, TL_OP_fill, TL_OP_dwconv_fwd),
	T(list_devices, 1, TL_OP_COUNT),
#endif
};
#undef T
enum { N_TESTS = sizeof ops_tests / sizeof ops_tests[0] };

/* Every op of the list has a test above (an op added to backend_ops.h
 * without one fails here), and the backend under test has every slot. */
static void every_op_has_a_test(void **state)
{
	for (int op = 0; op < TL_OP_COUNT; op++) {
		int found = 0;
		for (size_t i = 0; i < N_TESTS && !found; i++)
			for (int k = 0; ops_tests[i].ops[k] != TL_OP_COUNT; k++)
				found |= ops_tests[i].ops[k] == (tl_op)op;
		if (!found)
			fail_msg("op %s has no test in ops_tests[]", tl_op_names[op]);
	}
	const char *missing = tl_backend_missing_op(B[1]);
	if (missing)
		fail_msg("%s has no %s", B[1]->name, missing);
}

/* Run the table against B[1] (name: the group's). */
static int run_table(const char *name)
{
	struct CMUnitTest t[N_TESTS + 1];
	size_t n = 0;
	t[n++] = (struct CMUnitTest)cmocka_unit_test(every_op_has_a_test);
	for (size_t i = 0; i < N_TESTS; i++)
		if (is_ocl() || !ops_tests[i].opencl_only)
			t[n++] = (struct CMUnitTest){ops_tests[i].name, ops_tests[i].fn, NULL, NULL, NULL};
	printf("# %s vs %s\n", B[1]->name, B[0]->name);
	return _cmocka_run_group_tests(name, t, n, NULL, NULL);
}

/* The fast CPU backend at every level this CPU runs, 1 and 2 threads. */
static int run_cpu(void)
{
	int failed = 0;
	tl_err err;
	for (int l = TL_CPU_SCALAR; l <= (int)tl_cpu_supported(); l++)
		for (int threads = 1; threads <= 2; threads++) {
			tl_pool *pool;
			tl_cpu_force((tl_cpu_level)l);
			if (tl_pool_new(&pool, threads, &err) != TL_OK ||
			    tl_cpu_open(0, pool, &B[1], &err) != TL_OK) {
				fprintf(stderr, "%s\n", err.msg);
				return 1;
			}
			char name[64];
			snprintf(name, sizeof name, "fast cpu %s, %d thread%s",
				 tl_cpu_level_name((tl_cpu_level)l), threads, threads > 1 ? "s" : "");
			failed |= run_table(name);
			B[1]->destroy(B[1]);
			tl_pool_free(pool);
		}
	tl_cpu_force(tl_cpu_supported());
	return failed;
}

#ifdef TL_HAVE_OPENCL
/* OpenCL, when a device is there: 0 run or skipped, else failed. */
static int run_opencl(void)
{
	tl_err err;
	const char *want = getenv("TL_TEST_OPENCL");
	if (want && *want) {
		if (sscanf(want, "%d:%d", &plat, &dev) != 2) {
			fprintf(stderr, "TL_TEST_OPENCL=%s: expected PLATFORM:DEVICE\n", want);
			return 1;
		}
	} else if (tl_ocl_find_gpu(&plat, &dev) != TL_OK) {
		plat = dev = 0;
	}
	/* skip only when there is nothing to run on: a kernel that does not
	 * build on an existing device is a failure */
	FILE *devnull = fopen("/dev/null", "w");
	tl_status st = devnull ? tl_ocl_list(devnull, &err) : TL_EIO;
	if (devnull)
		fclose(devnull);
	if (st != TL_OK) {
		printf("# SKIP opencl: %s\n", err.msg);
		return 0;
	}
	st = tl_ocl_open(plat, dev, &B[1], &err);
	if (st == TL_EUSAGE) {
		printf("# SKIP opencl: no OpenCL device %d:%d: %s\n", plat, dev, err.msg);
		return 0;
	}
	if (st != TL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	int failed = run_table("opencl");
	B[1]->destroy(B[1]);
	return failed;
}
#endif

int main(void)
{
	tl_err err;
	if (tl_cpu_open(1, NULL, &B[0], &err) != TL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	int failed = run_cpu();
#ifdef TL_HAVE_OPENCL
	failed |= run_opencl();
#endif
	B[0]->destroy(B[0]);
	return failed ? 1 : 0;
}
