/* test_ops.c - every op's gradients checked by central finite differences
 * on the double-precision reference (odd shapes: kernels 1/3/5/7, strides
 * 1/2, padding 0/1/2, sizes not multiples of the SIMD width, batch 1),
 * then the float reference backend and the fast backend (every CPU level
 * this machine runs, 1 and 2 threads) checked against the double results. */
#include "tl_test.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/host.h"
#include "cpu/ref.h"

#define H TL_CPU_VIEW
#define NONE ((tl_mem){0})

static uint64_t rng = 88172645463325252ull;
static double urand(void) /* uniform in [-1, 1) */
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1.0p-52 - 1.0;
}

static double *drand_n(size_t n, double scale)
{
	double *p = malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = urand() * scale;
	return p;
}

static float *to_f(const double *d, size_t n)
{
	float *f = malloc(n * sizeof *f);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)d[i];
	return f;
}

static double dot(const double *a, const double *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* Compare float results with the double reference, relative to the
 * tensor's largest magnitude. */
static void expect_near(const char *what, const float *got, const double *want, size_t n,
			double rtol)
{
	double maxref = 0, maxerr = 0;
	size_t worst = 0;
	for (size_t i = 0; i < n; i++) {
		if (fabs(want[i]) > maxref)
			maxref = fabs(want[i]);
		double e = fabs(got[i] - want[i]);
		if (e > maxerr)
			maxerr = e, worst = i;
	}
	if (!(maxerr <= rtol * maxref + 1e-6))
		fail_msg("%s: max error %.3g at %zu (got %.9g, want %.9g, tensor max %.3g)", what,
			 maxerr, worst, got[worst], want[worst], maxref);
}

/* loss(v) = sum(r . f(v)): check d loss / d v[i] = analytic[i] for up to
 * 40 sampled i.  eval recomputes the loss with v perturbed in place. */
typedef double (*loss_fn)(void *ctx);
static void fd_check(const char *what, double *v, size_t n, const double *analytic, loss_fn f,
		     void *ctx)
{
	const double h = 1e-6;
	size_t step = n > 40 ? n / 40 : 1;
	for (size_t i = 0; i < n; i += step) {
		double keep = v[i];
		v[i] = keep + h;
		double lp = f(ctx);
		v[i] = keep - h;
		double lm = f(ctx);
		v[i] = keep;
		double num = (lp - lm) / (2 * h);
		if (!(fabs(num - analytic[i]) <= 1e-5 * (1 + fabs(num))))
			fail_msg("%s: d/d[%zu] analytic %.10g, finite difference %.10g", what, i,
				 analytic[i], num);
	}
}

/* ---- convolution ---- */

typedef struct {
	tl_conv_shape s;
	int relu;
	double *x, *w, *b, *r, *y;
	size_t nx, nw, ny;
} conv_ctx;

static double conv_loss(void *p)
{
	conv_ctx *c = p;
	tl_ref_conv_fwd_f64(&c->s, c->x, c->w, c->b, c->relu, c->y);
	return dot(c->y, c->r, c->ny);
}

/* The fast backend at every level this CPU runs, with 1 and 2 threads. */
typedef struct {
	tl_backend *be;
	tl_pool *pool;
	tl_cpu_level level;
	char name[48];
} variant;

static int make_variants(variant *v)
{
	int n = 0;
	tl_err err;
	for (int l = TL_CPU_SCALAR; l <= (int)tl_cpu_supported(); l++)
		for (int t = 1; t <= 2; t++) {
			assert_int_equal(tl_pool_new(&v[n].pool, t, &err), TL_OK);
			assert_int_equal(tl_cpu_open(0, v[n].pool, &v[n].be, &err), TL_OK);
			v[n].level = (tl_cpu_level)l;
			snprintf(v[n].name, sizeof v[n].name, "fast %s, %d thread%s",
				 tl_cpu_level_name((tl_cpu_level)l), t, t > 1 ? "s" : "");
			n++;
		}
	assert_int_equal(tl_cpu_open(1, NULL, &v[n].be, &err), TL_OK);
	v[n].pool = NULL;
	v[n].level = tl_cpu_supported();
	snprintf(v[n].name, sizeof v[n].name, "reference f32");
	return n + 1;
}

static void free_variants(variant *v, int n)
{
	for (int i = 0; i < n; i++) {
		v[i].be->destroy(v[i].be);
		tl_pool_free(v[i].pool);
	}
	tl_cpu_force(tl_cpu_supported());
}

/* asym: p before and one more than p after (Keras' stride-2 correct_pad
 * with p = 0), the output size saying so. */
static void check_conv_pad(int n, int c, int h, int w, int o, int k, int s, int p, int relu,
			   int asym)
{
	conv_ctx cc;
	cc.s = (tl_conv_shape){.n = n, .c = c, .h = h, .w = w, .o = o, .kh = k, .kw = k, .sh = s,
			       .sw = s, .ph = p, .pw = p};
	cc.s.oh = asym ? (h + 2 * p + 1 - k) / s + 1 : tl_conv_out(h, k, s, p);
	cc.s.ow = asym ? (w + 2 * p + 1 - k) / s + 1 : tl_conv_out(w, k, s, p);
	cc.relu = relu;
	cc.nx = (size_t)n * c * h * w;
	cc.nw = (size_t)o * c * k * k;
	cc.ny = (size_t)n * o * cc.s.oh * cc.s.ow;
	cc.x = drand_n(cc.nx, 1);
	cc.w = drand_n(cc.nw, 0.5);
	cc.b = drand_n((size_t)o, 0.5);
	cc.r = drand_n(cc.ny, 1);
	cc.y = malloc(cc.ny * sizeof(double));
	double *dy = malloc(cc.ny * sizeof(double)), *dx = calloc(cc.nx, sizeof(double)),
	       *dw = malloc(cc.nw * sizeof(double)), *db = malloc((size_t)o * sizeof(double));
	conv_loss(&cc);
	double *y = malloc(cc.ny * sizeof(double));
	memcpy(y, cc.y, cc.ny * sizeof(double));
	memcpy(dy, cc.r, cc.ny * sizeof(double));
	tl_ref_conv_bwd_f64(&cc.s, cc.x, cc.w, y, relu, dy, dx, 0, dw, db);
	char what[160];
	snprintf(what, sizeof what, "conv n%d c%d %dx%d o%d k%d s%d p%d%s relu%d", n, c, h, w, o, k,
		 s, p, asym ? "+1 after" : "", relu);
	fd_check(what, cc.x, cc.nx, dx, conv_loss, &cc);
	fd_check(what, cc.w, cc.nw, dw, conv_loss, &cc);
	fd_check(what, cc.b, (size_t)o, db, conv_loss, &cc);
	/* float backends against the double results */
	float *fx = to_f(cc.x, cc.nx), *fw = to_f(cc.w, cc.nw), *fb = to_f(cc.b, (size_t)o);
	float *fy = malloc(cc.ny * 4), *fdy = malloc(cc.ny * 4), *fdx = malloc(cc.nx * 4),
	      *fdw = malloc(cc.nw * 4), *fdb = malloc((size_t)o * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[300];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->conv_fwd(v[i].be, &cc.s, H(fx), H(fw), H(fb), relu, H(fy));
		expect_near(name, fy, y, cc.ny, 1e-5);
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] = 1.0f; /* acc_dx = 1 must add to this */
		v[i].be->conv_bwd(v[i].be, &cc.s, H(fx), H(fw), H(fy), relu, H(fdy), H(fdx), 1, H(fdw), H(fdb));
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] -= 1.0f;
		expect_near(name, fdx, dx, cc.nx, 1e-5);
		expect_near(name, fdw, dw, cc.nw, 1e-5);
		expect_near(name, fdb, db, (size_t)o, 1e-5);
		/* and overwrite semantics, without dw */
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] = 99.0f;
		v[i].be->conv_bwd(v[i].be, &cc.s, H(fx), H(fw), H(fy), relu, H(fdy), H(fdx), 0, NONE, NONE);
		expect_near(name, fdx, dx, cc.nx, 1e-5);
	}
	free_variants(v, nv);
	free(cc.x), free(cc.w), free(cc.b), free(cc.r), free(cc.y), free(y);
	free(dy), free(dx), free(dw), free(db);
	free(fx), free(fw), free(fb), free(fy), free(fdy), free(fdx), free(fdw), free(fdb);
}

static void check_conv(int n, int c, int h, int w, int o, int k, int s, int p, int relu)
{
	check_conv_pad(n, c, h, w, o, k, s, p, relu, 0);
}

static void conv_gradients(void **state)
{
	(void)state;
	const int ks[] = {1, 3, 5, 7};
	for (int ki = 0; ki < 4; ki++)
		for (int s = 1; s <= 2; s++)
			for (int p = 0; p <= 2; p++) {
				int k = ks[ki];
				if (9 + 2 * p < k)
					continue;
				check_conv(ki % 2 ? 1 : 2, 3, 9, 11, 5, k, s, p, (ki + s + p) % 2);
			}
	check_conv(1, 17, 5, 3, 19, 3, 1, 1, 1); /* channels not multiples of SIMD */
	check_conv(3, 2, 1, 1, 33, 1, 1, 0, 0);  /* 1x1 spatial */
	check_conv(2, 4, 4, 4, 7, 3, 2, 0, 1);   /* stride with no padding, edge windows */
}

/* Padding only after (0 before, 1 after, as Keras' stride-2 correct_pad):
 * the last output row and column read one row of zeros past the input. */
static void conv_asymmetric_padding(void **state)
{
	(void)state;
	check_conv_pad(2, 3, 9, 8, 5, 3, 2, 0, 1, 1);  /* 3x3 s2: 9 -> 5, 8 -> 4 */
	check_conv_pad(1, 5, 10, 7, 4, 3, 2, 0, 0, 1); /* even height */
	check_conv_pad(2, 3, 7, 9, 6, 3, 1, 0, 1, 1);  /* 3x3 s1: 7 -> 6 */
	check_conv_pad(1, 17, 6, 5, 9, 3, 1, 1, 0, 1); /* 1 before, 2 after */
	check_conv_pad(2, 7, 9, 6, 11, 1, 2, 0, 1, 1); /* 1x1 s2 */
	check_conv_pad(1, 3, 8, 8, 4, 5, 2, 1, 1, 1);  /* 5x5 s2, 1 before, 2 after */
}

/* ---- max pool ---- */

typedef struct {
	tl_pool_shape s;
	double *x, *y, *r;
	int32_t *am;
	size_t nx, ny;
} pool_ctx;

static double pool_loss(void *p)
{
	pool_ctx *c = p;
	tl_ref_maxpool_fwd_f64(&c->s, c->x, c->y, c->am);
	return dot(c->y, c->r, c->ny);
}

static void check_pool_pad(int n, int c, int h, int w, int k, int s, int p, int ceil_mode)
{
	pool_ctx pc;
	pc.s = (tl_pool_shape){.n = n, .c = c, .h = h, .w = w, .k = k, .s = s, .p = p,
			       .oh = tl_pool_out(h, k, s, p, ceil_mode),
			       .ow = tl_pool_out(w, k, s, p, ceil_mode)};
	pc.nx = (size_t)n * c * h * w;
	pc.ny = (size_t)n * c * pc.s.oh * pc.s.ow;
	pc.x = drand_n(pc.nx, 1);
	pc.r = drand_n(pc.ny, 1);
	pc.y = malloc(pc.ny * sizeof(double));
	pc.am = malloc(pc.ny * sizeof(int32_t));
	pool_loss(&pc);
	double *y = malloc(pc.ny * sizeof(double)), *dx = malloc(pc.nx * sizeof(double));
	memcpy(y, pc.y, pc.ny * sizeof(double));
	tl_ref_maxpool_bwd_f64(&pc.s, pc.r, pc.am, dx, 0);
	char what[128];
	snprintf(what, sizeof what, "maxpool %dx%d k%d s%d p%d ceil%d", h, w, k, s, p, ceil_mode);
	fd_check(what, pc.x, pc.nx, dx, pool_loss, &pc);
	float *fx = to_f(pc.x, pc.nx), *fr = to_f(pc.r, pc.ny), *fy = malloc(pc.ny * 4),
	      *fdx = malloc(pc.nx * 4);
	int32_t *fam = malloc(pc.ny * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		char name[200];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->maxpool_fwd(v[i].be, &pc.s, H(fx), H(fy), H(fam));
		expect_near(name, fy, y, pc.ny, 1e-6);
		for (size_t j = 0; j < pc.ny; j++)
			if (fam[j] != pc.am[j])
				fail_msg("%s: argmax[%zu] %d, want %d", name, j, fam[j], pc.am[j]);
		v[i].be->maxpool_bwd(v[i].be, &pc.s, H(fr), H(fam), H(fdx), 0);
		expect_near(name, fdx, dx, pc.nx, 1e-6);
		for (size_t j = 0; j < pc.nx; j++)
			fdx[j] = 2.0f;
		v[i].be->maxpool_bwd(v[i].be, &pc.s, H(fr), H(fam), H(fdx), 1); /* acc_dx adds */
		for (size_t j = 0; j < pc.nx; j++)
			fdx[j] -= 2.0f;
		expect_near(name, fdx, dx, pc.nx, 1e-6);
		/* padded cells never win: an all-negative input pools to itself */
		float *neg = malloc(pc.nx * 4);
		for (size_t j = 0; j < pc.nx; j++)
			neg[j] = -3.0f - (float)(j % 5);
		v[i].be->maxpool_fwd(v[i].be, &pc.s, H(neg), H(fy), H(fam));
		for (size_t j = 0; j < pc.ny; j++)
			if (!(fy[j] <= -3.0f) || fam[j] < 0 || fam[j] >= h * w)
				fail_msg("%s: all-negative input gave y[%zu] = %g, argmax %d", name, j,
					 fy[j], fam[j]);
		free(neg);
	}
	free_variants(v, nv);
	free(pc.x), free(pc.r), free(pc.y), free(pc.am), free(y), free(dx);
	free(fx), free(fr), free(fy), free(fdx), free(fam);
}

static void check_pool(int n, int c, int h, int w, int k, int s, int ceil_mode)
{
	check_pool_pad(n, c, h, w, k, s, 0, ceil_mode);
}

static void maxpool_gradients(void **state)
{
	(void)state;
	check_pool(2, 3, 8, 8, 2, 2, 0);
	check_pool(1, 2, 9, 7, 2, 2, 0);
	check_pool(2, 3, 13, 13, 3, 2, 1); /* SqueezeNet's ceil-mode pool, odd size */
	check_pool(1, 2, 8, 10, 3, 2, 1);  /* ceil mode with a partial last window */
	check_pool(1, 1, 5, 6, 3, 1, 0);   /* overlapping windows */
	assert_int_equal(tl_pool_out(8, 3, 2, 0, 1), 4);
	assert_int_equal(tl_pool_out(8, 3, 2, 0, 0), 3);
	assert_int_equal(tl_pool_out(55, 3, 2, 0, 1), 27); /* torchvision squeezenet at 224 */
	assert_int_equal(tl_pool_out(1, 2, 2, 0, 0), 0);
	/* padded: GoogLeNet's k3 s1 p1 ceil, MobileNet/ResNet-style k3 s2 p1 */
	check_pool_pad(2, 3, 7, 6, 3, 1, 1, 1);
	check_pool_pad(1, 2, 9, 8, 3, 2, 1, 0);
	check_pool_pad(2, 3, 10, 9, 3, 2, 1, 1);
	check_pool_pad(1, 2, 5, 5, 2, 2, 1, 0);
	assert_int_equal(tl_pool_out(7, 3, 1, 1, 1), 7);
	assert_int_equal(tl_pool_out(112, 3, 2, 1, 0), 56);
}

/* A NaN in a window wins over the numbers in it (whichever comes first). */
static void maxpool_nan_wins(void **state)
{
	(void)state;
	tl_pool_shape s = {.n = 1, .c = 1, .h = 2, .w = 4, .k = 2, .s = 2, .p = 0, .oh = 1, .ow = 2};
	float x[8] = {1, 5, NAN, 2, 3, 4, 9, 1};
	float y[2];
	int32_t am[2];
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		v[i].be->maxpool_fwd(v[i].be, &s, H(x), H(y), H(am));
		assert_true(y[0] == 5.0f && am[0] == 1);
		assert_true(isnan(y[1]) && am[1] == 2);
	}
	free_variants(v, nv);
}

/* One shape of maxpool_ties_match_reference. */
static void ties_case(int n, int c, int h, int w, int k, int st, int p, int cm)
{
	tl_pool_shape s = {.n = n, .c = c, .h = h, .w = w, .k = k, .s = st, .p = p,
			   .oh = tl_pool_out(h, k, st, p, cm), .ow = tl_pool_out(w, k, st, p, cm)};
	size_t nx = (size_t)s.n * s.c * h * w, ny = (size_t)s.n * s.c * s.oh * s.ow;
	float *x = malloc(nx * 4), *y0 = malloc(ny * 4), *y = malloc(ny * 4);
	int32_t *a0 = malloc(ny * 4), *a = malloc(ny * 4);
	uint64_t r = 12345;
	for (size_t i = 0; i < nx; i++) { /* values 0..3, a NaN in ~1 of 40 */
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (r >> 60) % 41 == 40 ? NAN : (float)((r >> 33) % 4);
	}
	variant v[8];
	int nv = make_variants(v);
	v[nv - 1].be->maxpool_fwd(v[nv - 1].be, &s, H(x), H(y0), H(a0)); /* the reference */
	for (int i = 0; i < nv - 1; i++) {
		tl_cpu_force(v[i].level);
		v[i].be->maxpool_fwd(v[i].be, &s, H(x), H(y), H(a));
		for (size_t j = 0; j < ny; j++)
			if (a[j] != a0[j] || (memcmp(&y[j], &y0[j], 4) && !(isnan(y[j]) && isnan(y0[j]))))
				fail_msg("%s: %dx%d k%d s%d p%d ceil%d: y[%zu] %g argmax %d, reference %g argmax %d",
					 v[i].name, h, w, k, st, p, cm, j, y[j], a[j], y0[j], a0[j]);
	}
	/* no argmax (inference): the same values, every variant and the reference */
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		for (size_t j = 0; j < ny; j++)
			y[j] = 77.0f;
		v[i].be->maxpool_fwd(v[i].be, &s, H(x), H(y), NONE);
		for (size_t j = 0; j < ny; j++)
			if (memcmp(&y[j], &y0[j], 4) && !(isnan(y[j]) && isnan(y0[j])))
				fail_msg("%s, no argmax: %dx%d k%d s%d p%d ceil%d: y[%zu] %g, reference %g",
					 v[i].name, h, w, k, st, p, cm, j, y[j], y0[j]);
	}
	free_variants(v, nv);
	free(x), free(y0), free(y), free(a0), free(a);
}

/* Ties and NaNs everywhere, wide rows (16-lane blocks and a tail), a
 * narrow plane (the direct path), and the same-size stride-1 pools of
 * GoogLeNet's inception branches on the plane sizes of a 64x64 input
 * (flat runs of planes: several planes per vector, vectors across planes,
 * 13 channels so the run ends mid-vector): every fast variant picks the
 * reference's value and argmax, padded or not. */
static void maxpool_ties_match_reference(void **state)
{
	(void)state;
	static const int cases[][4] = {{3, 1, 1, 1}, {3, 2, 0, 1}, {2, 2, 0, 0}, {3, 2, 1, 0}, {5, 1, 2, 0},
				       {3, 3, 1, 0}};
	for (size_t ci = 0; ci < 2 * sizeof cases / sizeof cases[0]; ci++)
		ties_case(2, 3, 11, ci % 2 ? 4 : 37, cases[ci / 2][0], cases[ci / 2][1], cases[ci / 2][2],
			  cases[ci / 2][3]);
	static const int planes[][2] = {{1, 1}, {2, 2}, {4, 4}, {8, 8}, {3, 5}, {7, 7}, {16, 16}, {5, 1}};
	for (size_t pi = 0; pi < sizeof planes / sizeof planes[0]; pi++) {
		ties_case(3, 13, planes[pi][0], planes[pi][1], 3, 1, 1, 1);
		ties_case(1, 5, planes[pi][0], planes[pi][1], 5, 1, 2, 0);
	}
}

/* ---- dense, gap, softmax cross-entropy ---- */

typedef struct {
	int n, in, out, relu;
	double *x, *w, *b, *r, *y;
} dense_ctx;

static double dense_loss(void *p)
{
	dense_ctx *c = p;
	tl_ref_dense_fwd_f64(c->n, c->in, c->out, c->x, c->w, c->b, c->relu, c->y);
	return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void check_dense(int n, int in, int out, int relu)
{
	dense_ctx dc = {.n = n, .in = in, .out = out, .relu = relu};
	size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
	dc.x = drand_n(nx, 1), dc.w = drand_n(nw, 0.5), dc.b = drand_n((size_t)out, 0.5);
	dc.r = drand_n(ny, 1), dc.y = malloc(ny * sizeof(double));
	dense_loss(&dc);
	double *y = malloc(ny * 8), *dy = malloc(ny * 8), *dx = malloc(nx * 8), *dw = malloc(nw * 8),
	       *db = malloc((size_t)out * 8);
	memcpy(y, dc.y, ny * 8);
	memcpy(dy, dc.r, ny * 8);
	tl_ref_dense_bwd_f64(n, in, out, dc.x, dc.w, y, relu, dy, dx, 0, dw, db);
	char what[96];
	snprintf(what, sizeof what, "dense n%d in%d out%d relu%d", n, in, out, relu);
	fd_check(what, dc.x, nx, dx, dense_loss, &dc);
	fd_check(what, dc.w, nw, dw, dense_loss, &dc);
	fd_check(what, dc.b, (size_t)out, db, dense_loss, &dc);
	float *fx = to_f(dc.x, nx), *fw = to_f(dc.w, nw), *fb = to_f(dc.b, (size_t)out);
	float *fy = malloc(ny * 4), *fdy = malloc(ny * 4), *fdx = malloc(nx * 4), *fdw = malloc(nw * 4),
	      *fdb = malloc((size_t)out * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[200];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->dense_fwd(v[i].be, n, in, out, H(fx), H(fw), H(fb), relu, H(fy));
		expect_near(name, fy, y, ny, 1e-5);
		for (size_t j = 0; j < ny; j++)
			fdy[j] = (float)dc.r[j];
		v[i].be->dense_bwd(v[i].be, n, in, out, H(fx), H(fw), H(fy), relu, H(fdy), H(fdx), 0, H(fdw), H(fdb));
		expect_near(name, fdx, dx, nx, 1e-5);
		expect_near(name, fdw, dw, nw, 1e-5);
		expect_near(name, fdb, db, (size_t)out, 1e-5);
	}
	free_variants(v, nv);
	free(dc.x), free(dc.w), free(dc.b), free(dc.r), free(dc.y);
	free(y), free(dy), free(dx), free(dw), free(db);
	free(fx), free(fw), free(fb), free(fy), free(fdy), free(fdx), free(fdw), free(fdb);
}

static void dense_gradients(void **state)
{
	(void)state;
	check_dense(1, 7, 5, 0);
	check_dense(3, 17, 33, 1);
	check_dense(5, 100, 10, 1);
	check_dense(2, 1, 1, 0);
}

typedef struct {
	int n, c, hw;
	double *x, *y, *r;
} gap_ctx;

static double gap_loss(void *p)
{
	gap_ctx *g = p;
	tl_ref_gap_fwd_f64(g->n, g->c, g->hw, g->x, g->y);
	return dot(g->y, g->r, (size_t)g->n * g->c);
}

typedef struct {
	int n, k;
	double *l;
	int32_t *lab;
} xent_ctx;

static double xent_loss(void *p)
{
	xent_ctx *x = p;
	return tl_ref_softmax_xent_f64(x->n, x->k, x->l, x->lab, NULL, NULL);
}

static void gap_and_xent_gradients(void **state)
{
	(void)state;
	gap_ctx g = {.n = 2, .c = 3, .hw = 13};
	g.x = drand_n(78, 1), g.y = malloc(6 * 8), g.r = drand_n(6, 1);
	double dx[78];
	tl_ref_gap_bwd_f64(2, 3, 13, g.r, dx, 0);
	fd_check("gap", g.x, 78, dx, gap_loss, &g);
	free(g.x), free(g.y), free(g.r);

	xent_ctx x = {.n = 3, .k = 7};
	x.l = drand_n(21, 4);
	int32_t lab[3] = {0, 6, 3};
	x.lab = lab;
	double dl[21];
	int correct;
	double loss = tl_ref_softmax_xent_f64(3, 7, x.l, lab, dl, &correct);
	fd_check("softmax cross-entropy", x.l, 21, dl, xent_loss, &x);
	/* the float version used in training agrees */
	float fl[21], fdl[21];
	for (int i = 0; i < 21; i++)
		fl[i] = (float)x.l[i];
	int fc;
	assert_close(tl_ref_softmax_xent_f32(3, 7, fl, lab, fdl, &fc), loss, 1e-5, 1e-5);
	assert_int_equal(fc, correct);
	expect_near("softmax cross-entropy f32", fdl, dl, 21, 1e-5);
	/* a known value: uniform logits give log(k) */
	float zero[7] = {0};
	assert_close(tl_ref_softmax_xent_f32(1, 7, zero, lab, NULL, NULL), log(7.0), 1e-6, 0);
	free(x.l);
}

/* ---- depthwise convolution ---- */

static double dwconv_loss(void *p)
{
	conv_ctx *c = p;
	tl_ref_dwconv_fwd_f64(&c->s, c->x, c->w, c->b, c->relu, c->y);
	return dot(c->y, c->r, c->ny);
}

/* pa: extra padding after (0, or 1 for Keras' stride-2 correct_pad). */
static void check_dwconv(int n, int c, int h, int w, int k, int s, int p, int pa, int relu)
{
	conv_ctx cc;
	cc.s = (tl_conv_shape){.n = n, .c = c, .h = h, .w = w, .o = c, .kh = k, .kw = k, .sh = s,
			       .sw = s, .ph = p, .pw = p};
	cc.s.oh = (h + 2 * p + pa - k) / s + 1;
	cc.s.ow = (w + 2 * p + pa - k) / s + 1;
	cc.relu = relu;
	cc.nx = (size_t)n * c * h * w;
	cc.nw = (size_t)c * k * k;
	cc.ny = (size_t)n * c * cc.s.oh * cc.s.ow;
	cc.x = drand_n(cc.nx, 1);
	cc.w = drand_n(cc.nw, 0.5);
	cc.b = drand_n((size_t)c, 0.5);
	cc.r = drand_n(cc.ny, 1);
	cc.y = malloc(cc.ny * sizeof(double));
	double *dy = malloc(cc.ny * 8), *dx = malloc(cc.nx * 8), *dw = malloc(cc.nw * 8),
	       *db = malloc((size_t)c * 8), *y = malloc(cc.ny * 8);
	dwconv_loss(&cc);
	memcpy(y, cc.y, cc.ny * 8);
	memcpy(dy, cc.r, cc.ny * 8);
	tl_ref_dwconv_bwd_f64(&cc.s, cc.x, cc.w, y, relu, dy, dx, 0, dw, db);
	char what[160];
	snprintf(what, sizeof what, "dwconv n%d c%d %dx%d k%d s%d p%d+%d relu%d", n, c, h, w, k, s, p,
		 pa, relu);
	fd_check(what, cc.x, cc.nx, dx, dwconv_loss, &cc);
	fd_check(what, cc.w, cc.nw, dw, dwconv_loss, &cc);
	fd_check(what, cc.b, (size_t)c, db, dwconv_loss, &cc);
	float *fx = to_f(cc.x, cc.nx), *fw = to_f(cc.w, cc.nw), *fb = to_f(cc.b, (size_t)c);
	float *fy = malloc(cc.ny * 4), *fdy = malloc(cc.ny * 4), *fdx = malloc(cc.nx * 4),
	      *fdw = malloc(cc.nw * 4), *fdb = malloc((size_t)c * 4);
	double *ylin = malloc(cc.ny * 8);
	tl_ref_dwconv_fwd_f64(&cc.s, cc.x, cc.w, NULL, 0, ylin);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[300];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->dwconv_fwd(v[i].be, &cc.s, H(fx), H(fw), NONE, 0, H(fy)); /* no bias, no relu */
		expect_near(name, fy, ylin, cc.ny, 1e-5);
		v[i].be->dwconv_fwd(v[i].be, &cc.s, H(fx), H(fw), H(fb), relu, H(fy));
		expect_near(name, fy, y, cc.ny, 1e-5);
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] = 1.0f; /* acc_dx = 1 adds to this */
		v[i].be->dwconv_bwd(v[i].be, &cc.s, H(fx), H(fw), H(fy), relu, H(fdy), H(fdx), 1, H(fdw), H(fdb));
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] -= 1.0f;
		expect_near(name, fdx, dx, cc.nx, 1e-5);
		expect_near(name, fdw, dw, cc.nw, 1e-5);
		expect_near(name, fdb, db, (size_t)c, 1e-5);
		/* overwrite, no dw/db; then only dw (no dx) */
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] = 99.0f;
		v[i].be->dwconv_bwd(v[i].be, &cc.s, H(fx), H(fw), H(fy), relu, H(fdy), H(fdx), 0, NONE, NONE);
		expect_near(name, fdx, dx, cc.nx, 1e-5);
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		v[i].be->dwconv_bwd(v[i].be, &cc.s, H(fx), H(fw), H(fy), relu, H(fdy), NONE, 0, H(fdw), NONE);
		expect_near(name, fdw, dw, cc.nw, 1e-5);
	}
	free_variants(v, nv);
	free(cc.x), free(cc.w), free(cc.b), free(cc.r), free(cc.y), free(y), free(ylin);
	free(dy), free(dx), free(dw), free(db);
	free(fx), free(fw), free(fb), free(fy), free(fdy), free(fdx), free(fdw), free(fdb);
}

static void dwconv_gradients(void **state)
{
	(void)state;
	check_dwconv(2, 3, 9, 11, 3, 1, 1, 0, 1);   /* MobileNetV2's 3x3 s1 */
	check_dwconv(1, 5, 9, 11, 3, 1, 1, 0, 0);
	check_dwconv(2, 3, 10, 9, 3, 2, 0, 1, 1);   /* Keras' 3x3 s2: 0 before, 1 after */
	check_dwconv(1, 4, 9, 12, 3, 2, 0, 1, 0);
	check_dwconv(2, 3, 9, 9, 3, 2, 1, 0, 0);    /* PyTorch's 3x3 s2 p1 */
	check_dwconv(1, 2, 8, 7, 5, 1, 2, 0, 1);    /* 5x5 */
	check_dwconv(2, 3, 7, 6, 1, 1, 0, 0, 0);    /* 1x1 */
	check_dwconv(1, 19, 37, 35, 3, 1, 1, 0, 1); /* rows past the SIMD width, odd tails */
	check_dwconv(2, 17, 35, 38, 3, 2, 0, 1, 1);
	check_dwconv(3, 2, 1, 1, 3, 1, 1, 0, 0);    /* 1x1 image */
	check_dwconv(1, 3, 2, 3, 3, 2, 0, 1, 1);    /* smaller than the kernel */
}

/* ---- batch norm ---- */

typedef struct {
	int n, c, hw, training, act;
	double eps, mom;
	double *x, *gamma, *beta, *rm0, *rv0, *rm, *rv, *save, *y, *r;
	size_t nx;
} bn_ctx;

static double bn_loss(void *p)
{
	bn_ctx *b = p;
	memcpy(b->rm, b->rm0, (size_t)b->c * 8);
	memcpy(b->rv, b->rv0, (size_t)b->c * 8);
	tl_ref_bn_fwd_f64(b->n, b->c, b->hw, b->eps, b->mom, b->training, b->x, b->gamma, b->beta,
			  b->rm, b->rv, b->save, b->act, b->y);
	return dot(b->y, b->r, b->nx);
}

static void check_bn(int n, int c, int hw, int training, int act)
{
	bn_ctx bc = {.n = n, .c = c, .hw = hw, .training = training, .act = act, .eps = 1e-3,
		     .mom = 0.1};
	bc.nx = (size_t)n * c * hw;
	bc.x = drand_n(bc.nx, 2);
	for (size_t i = 0; i < bc.nx; i++)
		bc.x[i] += 0.5 * (double)(i / hw % c); /* channel means differ */
	bc.gamma = drand_n((size_t)c, 5), bc.beta = drand_n((size_t)c, 2);
	for (int i = 0; i < c; i++) /* |gamma| in [2, 7], beta in [0, 4]: both relu6 clamps hit */
		bc.gamma[i] += bc.gamma[i] < 0 ? -2 : 2, bc.beta[i] += 2;
	bc.rm0 = drand_n((size_t)c, 1), bc.rv0 = drand_n((size_t)c, 1);
	for (int i = 0; i < c; i++)
		bc.rv0[i] += 1.5;
	bc.rm = malloc((size_t)c * 8), bc.rv = malloc((size_t)c * 8), bc.save = malloc((size_t)c * 16);
	bc.y = malloc(bc.nx * 8), bc.r = drand_n(bc.nx, 1);
	bn_loss(&bc);
	double *y = malloc(bc.nx * 8), *dy = malloc(bc.nx * 8), *dx = malloc(bc.nx * 8),
	       *dg = malloc((size_t)c * 8), *dbt = malloc((size_t)c * 8), *save = malloc((size_t)c * 16);
	memcpy(y, bc.y, bc.nx * 8);
	memcpy(dy, bc.r, bc.nx * 8);
	memcpy(save, bc.save, (size_t)c * 16);
	tl_ref_bn_bwd_f64(n, c, hw, training, bc.x, bc.gamma, save, y, act, dy, dx, 0, dg, dbt);
	char what[128];
	snprintf(what, sizeof what, "bn n%d c%d hw%d training%d act%d", n, c, hw, training, act);
	if (act == TL_ACT_RELU6 && bc.nx >= 64) { /* the test must reach both clamps */
		size_t lo = 0, hi = 0;
		for (size_t i = 0; i < bc.nx; i++)
			lo += y[i] == 0, hi += y[i] == 6;
		if (!lo || !hi)
			fail_msg("%s: relu6 clamps not reached (%zu at 0, %zu at 6)", what, lo, hi);
	}
	fd_check(what, bc.x, bc.nx, dx, bn_loss, &bc);
	fd_check(what, bc.gamma, (size_t)c, dg, bn_loss, &bc);
	fd_check(what, bc.beta, (size_t)c, dbt, bn_loss, &bc);
	/* the running stats and save against a direct computation */
	double *mean = malloc((size_t)c * 8), *var = malloc((size_t)c * 8);
	size_t m = (size_t)n * hw;
	for (int ch = 0; ch < c; ch++) {
		double s = 0, s2 = 0;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < hw; k++)
				s += bc.x[((size_t)i * c + ch) * hw + k];
		mean[ch] = s / m;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < hw; k++) {
				double d = bc.x[((size_t)i * c + ch) * hw + k] - mean[ch];
				s2 += d * d;
			}
		var[ch] = s2 / m;
	}
	double *want_rm = malloc((size_t)c * 8), *want_rv = malloc((size_t)c * 8),
	       *want_save = malloc((size_t)c * 16);
	for (int ch = 0; ch < c; ch++) {
		want_rm[ch] = training ? 0.9 * bc.rm0[ch] + 0.1 * mean[ch] : bc.rm0[ch];
		want_rv[ch] = training ? 0.9 * bc.rv0[ch] + 0.1 * var[ch] * m / (m - 1) : bc.rv0[ch];
		want_save[ch] = training ? mean[ch] : bc.rm0[ch];
		want_save[c + ch] = 1 / sqrt((training ? var[ch] : bc.rv0[ch]) + 1e-3);
	}
	float *fx = to_f(bc.x, bc.nx), *fg = to_f(bc.gamma, (size_t)c), *fb = to_f(bc.beta, (size_t)c);
	float *frm = malloc((size_t)c * 4), *frv = malloc((size_t)c * 4), *fs = malloc((size_t)c * 8);
	float *fy = malloc(bc.nx * 4), *fdy = malloc(bc.nx * 4), *fdx = malloc(bc.nx * 4),
	      *fdg = malloc((size_t)c * 4), *fdb = malloc((size_t)c * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[300];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		for (int ch = 0; ch < c; ch++)
			frm[ch] = (float)bc.rm0[ch], frv[ch] = (float)bc.rv0[ch];
		v[i].be->bn_fwd(v[i].be, n, c, hw, 1e-3f, 0.1f, training, H(fx), H(fg), H(fb), H(frm), H(frv), H(fs), act,
			       H(fy));
		expect_near(name, fy, y, bc.nx, 1e-5);
		expect_near(name, frm, want_rm, (size_t)c, 1e-5);
		expect_near(name, frv, want_rv, (size_t)c, 1e-5);
		expect_near(name, fs, want_save, (size_t)c, 1e-5);
		expect_near(name, fs + c, want_save + c, (size_t)c, 1e-5);
		for (size_t j = 0; j < bc.nx; j++)
			fdy[j] = (float)bc.r[j], fdx[j] = 1.0f;
		v[i].be->bn_bwd(v[i].be, n, c, hw, training, H(fx), H(fg), H(fs), H(fy), act, H(fdy), H(fdx), 1, H(fdg), H(fdb));
		for (size_t j = 0; j < bc.nx; j++)
			fdx[j] -= 1.0f;
		expect_near(name, fdx, dx, bc.nx, 1e-4);
		expect_near(name, fdg, dg, (size_t)c, 1e-5);
		expect_near(name, fdb, dbt, (size_t)c, 1e-5);
		/* overwrite with no parameter gradients, then only the parameter ones */
		for (size_t j = 0; j < bc.nx; j++)
			fdy[j] = (float)bc.r[j], fdx[j] = 99.0f;
		v[i].be->bn_bwd(v[i].be, n, c, hw, training, H(fx), H(fg), H(fs), H(fy), act, H(fdy), H(fdx), 0, NONE, NONE);
		expect_near(name, fdx, dx, bc.nx, 1e-4);
		for (size_t j = 0; j < bc.nx; j++)
			fdy[j] = (float)bc.r[j];
		v[i].be->bn_bwd(v[i].be, n, c, hw, training, H(fx), H(fg), H(fs), H(fy), act, H(fdy), NONE, 0, H(fdg), H(fdb));
		expect_near(name, fdg, dg, (size_t)c, 1e-5);
		expect_near(name, fdb, dbt, (size_t)c, 1e-5);
	}
	free_variants(v, nv);
	free(bc.x), free(bc.gamma), free(bc.beta), free(bc.rm0), free(bc.rv0), free(bc.rm), free(bc.rv);
	free(bc.save), free(bc.y), free(bc.r), free(y), free(dy), free(dx), free(dg), free(dbt);
	free(save), free(mean), free(var), free(want_rm), free(want_rv), free(want_save);
	free(fx), free(fg), free(fb), free(frm), free(frv), free(fs), free(fy), free(fdy), free(fdx);
	free(fdg), free(fdb);
}

static void bn_gradients(void **state)
{
	(void)state;
	for (int training = 0; training <= 1; training++)
		for (int act = TL_ACT_NONE; act <= TL_ACT_RELU6; act++) {
			check_bn(3, 5, 13, training, act);
			check_bn(2, 19, 37, training, act); /* past the SIMD width, odd tails */
		}
	check_bn(4, 3, 1, 1, TL_ACT_RELU6); /* 1x1 maps (after a pool) */
	check_bn(1, 2, 2, 1, TL_ACT_NONE);  /* two values per channel */
}

/* ---- local response norm ---- */

typedef struct {
	int n, c, hw, size;
	double alpha, beta, kk;
	double *x, *scale, *y, *r;
	size_t nx;
} lrn_ctx;

static double lrn_loss(void *p)
{
	lrn_ctx *l = p;
	tl_ref_lrn_fwd_f64(l->n, l->c, l->hw, l->size, l->alpha, l->beta, l->kk, l->x, l->scale, l->y);
	return dot(l->y, l->r, l->nx);
}

static void check_lrn(int n, int c, int hw, int size, double alpha, double beta, double kk)
{
	lrn_ctx lc = {.n = n, .c = c, .hw = hw, .size = size, .alpha = alpha, .beta = beta, .kk = kk};
	lc.nx = (size_t)n * c * hw;
	lc.x = drand_n(lc.nx, 2), lc.scale = malloc(lc.nx * 8), lc.y = malloc(lc.nx * 8);
	lc.r = drand_n(lc.nx, 1);
	lrn_loss(&lc);
	double *y = malloc(lc.nx * 8), *scale = malloc(lc.nx * 8), *dx = malloc(lc.nx * 8);
	memcpy(y, lc.y, lc.nx * 8);
	memcpy(scale, lc.scale, lc.nx * 8);
	tl_ref_lrn_bwd_f64(n, c, hw, size, alpha, beta, lc.x, y, scale, lc.r, dx, 0);
	char what[128];
	snprintf(what, sizeof what, "lrn n%d c%d hw%d size%d alpha%g beta%g k%g", n, c, hw, size,
		 alpha, beta, kk);
	fd_check(what, lc.x, lc.nx, dx, lrn_loss, &lc);
	/* one value against the formula written out: channel 0 (window clipped
	 * below) and the last channel (clipped above) of sample 0, pixel 0 */
	for (int ch = 0; ch < c; ch += c - 1) {
		double sq = 0;
		for (int d = ch - size / 2; d <= ch + (size - 1) / 2; d++)
			if (d >= 0 && d < c)
				sq += lc.x[(size_t)d * hw] * lc.x[(size_t)d * hw];
		double want = lc.x[(size_t)ch * hw] / pow(kk + alpha / size * sq, beta);
		assert_close(y[(size_t)ch * hw], want, 1e-12, 1e-12);
		if (c == 1)
			break;
	}
	float *fx = to_f(lc.x, lc.nx), *fr = to_f(lc.r, lc.nx), *fy = malloc(lc.nx * 4),
	      *fs = malloc(lc.nx * 4), *fdx = malloc(lc.nx * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[300];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->lrn_fwd(v[i].be, n, c, hw, size, (float)alpha, (float)beta, (float)kk, H(fx), H(fs), H(fy));
		expect_near(name, fy, y, lc.nx, 1e-5);
		expect_near(name, fs, scale, lc.nx, 1e-5);
		for (size_t j = 0; j < lc.nx; j++)
			fdx[j] = 1.0f;
		v[i].be->lrn_bwd(v[i].be, n, c, hw, size, (float)alpha, (float)beta, H(fx), H(fy), H(fs), H(fr), H(fdx),
				1);
		for (size_t j = 0; j < lc.nx; j++)
			fdx[j] -= 1.0f;
		expect_near(name, fdx, dx, lc.nx, 1e-5);
		v[i].be->lrn_bwd(v[i].be, n, c, hw, size, (float)alpha, (float)beta, H(fx), H(fy), H(fs), H(fr), H(fdx),
				0);
		expect_near(name, fdx, dx, lc.nx, 1e-5);
	}
	free_variants(v, nv);
	free(lc.x), free(lc.scale), free(lc.y), free(lc.r), free(y), free(scale), free(dx);
	free(fx), free(fr), free(fy), free(fs), free(fdx);
}

static void lrn_gradients(void **state)
{
	(void)state;
	check_lrn(2, 13, 7, 5, 1e-4, 0.75, 1.0); /* AlexNet's and GoogLeNet's */
	check_lrn(2, 13, 7, 5, 0.5, 0.75, 1.0);  /* large alpha: the sum matters */
	check_lrn(1, 13, 19, 3, 0.7, 0.75, 2.0); /* size 3 */
	check_lrn(2, 6, 5, 4, 0.9, 0.6, 1.0);    /* even size: 2 before, 1 after */
	check_lrn(1, 3, 35, 5, 0.8, 0.75, 1.0);  /* window wider than the channels */
	check_lrn(1, 1, 4, 5, 0.5, 0.75, 1.0);
	check_lrn(1, 7, 100, 5, 0.6, 0.75, 1.0); /* two pixel blocks (64 + 36): SIMD runs and tails */
	check_lrn(2, 7, 131, 5, 0.5, 0.75, 1.0); /* pixels in more than one block of the fast loop */
}

/* ---- adaptive average pool ---- */

typedef struct {
	tl_pool_shape s;
	double *x, *y, *r;
	size_t nx, ny;
} avg_ctx;

static double avg_loss(void *p)
{
	avg_ctx *a = p;
	tl_ref_avgpool_fwd_f64(&a->s, a->x, a->y);
	return dot(a->y, a->r, a->ny);
}

static void check_avgpool(int n, int c, int h, int w, int oh, int ow)
{
	avg_ctx ac = {.s = {.n = n, .c = c, .h = h, .w = w, .oh = oh, .ow = ow}};
	ac.nx = (size_t)n * c * h * w, ac.ny = (size_t)n * c * oh * ow;
	ac.x = drand_n(ac.nx, 1), ac.r = drand_n(ac.ny, 1), ac.y = malloc(ac.ny * 8);
	avg_loss(&ac);
	double *y = malloc(ac.ny * 8), *dx = malloc(ac.nx * 8);
	memcpy(y, ac.y, ac.ny * 8);
	tl_ref_avgpool_bwd_f64(&ac.s, ac.r, dx, 0);
	char what[128];
	snprintf(what, sizeof what, "avgpool n%d c%d %dx%d -> %dx%d", n, c, h, w, oh, ow);
	fd_check(what, ac.x, ac.nx, dx, avg_loss, &ac);
	/* PyTorch's windows written out: rows floor(i h/oh) .. ceil((i+1) h/oh) - 1 */
	for (size_t pl = 0; pl < (size_t)n * c; pl++)
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				int y0 = (int)floor((double)i * h / oh), y1 = (int)ceil((double)(i + 1) * h / oh);
				int x0 = (int)floor((double)j * w / ow), x1 = (int)ceil((double)(j + 1) * w / ow);
				double s = 0;
				for (int a = y0; a < y1; a++)
					for (int b = x0; b < x1; b++)
						s += ac.x[(pl * h + a) * w + b];
				assert_close(y[(pl * oh + i) * ow + j], s / ((y1 - y0) * (x1 - x0)), 1e-12, 1e-12);
			}
	float *fx = to_f(ac.x, ac.nx), *fr = to_f(ac.r, ac.ny), *fy = malloc(ac.ny * 4),
	      *fdx = malloc(ac.nx * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		tl_cpu_force(v[i].level);
		char name[300];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be->avgpool_fwd(v[i].be, &ac.s, H(fx), H(fy));
		expect_near(name, fy, y, ac.ny, 1e-5);
		for (size_t j = 0; j < ac.nx; j++)
			fdx[j] = 1.0f;
		v[i].be->avgpool_bwd(v[i].be, &ac.s, H(fr), H(fdx), 1);
		for (size_t j = 0; j < ac.nx; j++)
			fdx[j] -= 1.0f;
		expect_near(name, fdx, dx, ac.nx, 1e-5);
		v[i].be->avgpool_bwd(v[i].be, &ac.s, H(fr), H(fdx), 0);
		expect_near(name, fdx, dx, ac.nx, 1e-5);
	}
	free_variants(v, nv);
	free(ac.x), free(ac.r), free(ac.y), free(y), free(dx), free(fx), free(fr), free(fy), free(fdx);
}

static void avgpool_gradients(void **state)
{
	(void)state;
	check_avgpool(2, 3, 1, 1, 6, 6);   /* AlexNet at small inputs: 36 copies */
	check_avgpool(1, 2, 7, 5, 3, 2);   /* uneven windows */
	check_avgpool(2, 3, 13, 13, 6, 6); /* overlapping windows */
	check_avgpool(1, 4, 7, 7, 1, 1);   /* global */
	check_avgpool(1, 1, 6, 6, 6, 6);   /* identity */
	/* 1x1 -> 6x6 is 36 copies exactly */
	tl_pool_shape s = {.n = 1, .c = 2, .h = 1, .w = 1, .oh = 6, .ow = 6};
	float x[2] = {1.5f, -2.25f}, y[72];
	tl_backend *ref;
	tl_err err;
	assert_int_equal(tl_cpu_open(1, NULL, &ref, &err), TL_OK);
	ref->avgpool_fwd(ref, &s, H(x), H(y));
	ref->destroy(ref);
	for (int i = 0; i < 72; i++)
		assert_true(y[i] == x[i / 36]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conv_gradients),
		cmocka_unit_test(conv_asymmetric_padding),
		cmocka_unit_test(maxpool_gradients),
		cmocka_unit_test(maxpool_nan_wins),
		cmocka_unit_test(maxpool_ties_match_reference),
		cmocka_unit_test(dwconv_gradients),
		cmocka_unit_test(bn_gradients),
		cmocka_unit_test(lrn_gradients),
		cmocka_unit_test(avgpool_gradients),
		cmocka_unit_test(dense_gradients),
		cmocka_unit_test(gap_and_xent_gradients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
