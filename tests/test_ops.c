/* test_ops.c - every op's gradients checked by central finite differences
 * on the double-precision reference (odd shapes: kernels 1/3/5/7, strides
 * 1/2, padding 0/1/2, sizes not multiples of the SIMD width, batch 1),
 * then the float reference backend and the fast backend (every CPU level
 * this machine runs, 1 and 2 threads) checked against the double results. */
#include "tl_test.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/ref.h"

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
	tl_cpu_ops be;
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
			tl_pool_new(&v[n].pool, t, &err);
			tl_cpu_fast_init(&v[n].be, v[n].pool);
			v[n].level = (tl_cpu_level)l;
			snprintf(v[n].name, sizeof v[n].name, "fast %s, %d thread%s",
				 tl_cpu_level_name((tl_cpu_level)l), t, t > 1 ? "s" : "");
			n++;
		}
	tl_cpu_ref_init(&v[n].be);
	v[n].pool = NULL;
	v[n].level = tl_cpu_supported();
	snprintf(v[n].name, sizeof v[n].name, "reference f32");
	return n + 1;
}

static void free_variants(variant *v, int n)
{
	for (int i = 0; i < n; i++)
		tl_pool_free(v[i].pool);
	tl_cpu_force(tl_cpu_supported());
}

static void check_conv(int n, int c, int h, int w, int o, int k, int s, int p, int relu)
{
	conv_ctx cc;
	cc.s = (tl_conv_shape){.n = n, .c = c, .h = h, .w = w, .o = o, .kh = k, .kw = k, .sh = s,
			       .sw = s, .ph = p, .pw = p};
	cc.s.oh = tl_conv_out(h, k, s, p);
	cc.s.ow = tl_conv_out(w, k, s, p);
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
	snprintf(what, sizeof what, "conv n%d c%d %dx%d o%d k%d s%d p%d relu%d", n, c, h, w, o, k, s,
		 p, relu);
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
		v[i].be.conv_fwd(&v[i].be, &cc.s, fx, fw, fb, relu, fy);
		expect_near(name, fy, y, cc.ny, 1e-5);
		for (size_t j = 0; j < cc.ny; j++)
			fdy[j] = (float)cc.r[j];
		for (size_t j = 0; j < cc.nx; j++)
			fdx[j] = 1.0f; /* acc_dx = 1 must add to this */
		v[i].be.conv_bwd(&v[i].be, &cc.s, fx, fw, fy, relu, fdy, fdx, 1, fdw, fdb);
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
		v[i].be.conv_bwd(&v[i].be, &cc.s, fx, fw, fy, relu, fdy, fdx, 0, NULL, NULL);
		expect_near(name, fdx, dx, cc.nx, 1e-5);
	}
	free_variants(v, nv);
	free(cc.x), free(cc.w), free(cc.b), free(cc.r), free(cc.y), free(y);
	free(dy), free(dx), free(dw), free(db);
	free(fx), free(fw), free(fb), free(fy), free(fdy), free(fdx), free(fdw), free(fdb);
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

static void check_pool(int n, int c, int h, int w, int k, int s, int ceil_mode)
{
	pool_ctx pc;
	pc.s = (tl_pool_shape){.n = n, .c = c, .h = h, .w = w, .k = k, .s = s,
			       .oh = tl_pool_out(h, k, s, 0, ceil_mode), .ow = tl_pool_out(w, k, s, 0, ceil_mode)};
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
	snprintf(what, sizeof what, "maxpool %dx%d k%d s%d ceil%d", h, w, k, s, ceil_mode);
	fd_check(what, pc.x, pc.nx, dx, pool_loss, &pc);
	float *fx = to_f(pc.x, pc.nx), *fr = to_f(pc.r, pc.ny), *fy = malloc(pc.ny * 4),
	      *fdx = malloc(pc.nx * 4);
	int32_t *fam = malloc(pc.ny * 4);
	variant v[8];
	int nv = make_variants(v);
	for (int i = 0; i < nv; i++) {
		char name[200];
		snprintf(name, sizeof name, "%s: %s", v[i].name, what);
		v[i].be.maxpool_fwd(&v[i].be, &pc.s, fx, fy, fam);
		expect_near(name, fy, y, pc.ny, 1e-6);
		v[i].be.maxpool_bwd(&v[i].be, &pc.s, fr, fam, fdx, 0);
		expect_near(name, fdx, dx, pc.nx, 1e-6);
	}
	free_variants(v, nv);
	free(pc.x), free(pc.r), free(pc.y), free(pc.am), free(y), free(dx);
	free(fx), free(fr), free(fy), free(fdx), free(fam);
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
		v[i].be.dense_fwd(&v[i].be, n, in, out, fx, fw, fb, relu, fy);
		expect_near(name, fy, y, ny, 1e-5);
		for (size_t j = 0; j < ny; j++)
			fdy[j] = (float)dc.r[j];
		v[i].be.dense_bwd(&v[i].be, n, in, out, fx, fw, fy, relu, fdy, fdx, 0, fdw, fdb);
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
	assert_close(tl_softmax_xent(3, 7, fl, lab, fdl, &fc), loss, 1e-5, 1e-5);
	assert_int_equal(fc, correct);
	expect_near("softmax cross-entropy f32", fdl, dl, 21, 1e-5);
	/* a known value: uniform logits give log(k) */
	float zero[7] = {0};
	assert_close(tl_softmax_xent(1, 7, zero, lab, NULL, NULL), log(7.0), 1e-6, 0);
	free(x.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conv_gradients),
		cmocka_unit_test(maxpool_gradients),
		cmocka_unit_test(dense_gradients),
		cmocka_unit_test(gap_and_xent_gradients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
