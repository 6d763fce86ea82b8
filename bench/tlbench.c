/* tlbench - compute-core throughput, one line per figure: "name value unit".
 *
 *   bench/tlbench [-j THREADS] [-r RUNS] [-b BATCH] [-s SIZE] [--device SPEC] [--only PREFIX]
 *                 [--precision fp32|bf16]
 *
 * --device picks the backend of the network figures (nn/device.h: cpu,
 * cpu-reference, opencl[:P[:D]], auto); -s (--res) the VGG16 input size (32);
 * --precision the fast CPU backend's GEMM operands (cpu/gemm.h; bf16 needs
 * AVX512-BF16).
 *
 * sgemm_*            GFLOP/s of the fast SGEMM on the GEMM shapes VGG16's
 *                    convolutions produce at 32x32, batch 64 (M = out channels,
 *                    N = batch * pixels, K = 9 * in channels)
 * vgg16_forward      img/s, conv base (through block5_pool), 32x32, batch 64
 * vgg16_train_step   img/s, forward + backward + SGD step, everything trainable,
 *                    head flatten -> 256 -> 10, 32x32, batch 64
 * squeezenet_forward img/s, SqueezeNet 1.1 features + gap head, 64x64, batch 64
 * googlenet_forward, googlenet_train_step, mobilenetv2_forward,
 * mobilenetv2_train_step   img/s, the whole net (default head), 64x64, batch 64
 * layer_*            only with --only layer: GFLOP/s of each distinct VGG16
 *                    convolution at 32x32 (forward, weight and input gradient,
 *                    direct FLOPs), to see where a step's time goes
 * Each figure is the median of RUNS timed runs after one warm-up. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/host.h"
#include "nn/device.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "progress.h"

static int runs = 5, threads = 0, batch = 64, vgg_size = 32;
static const char *only = "", *device = "cpu";

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median seconds of fn over runs (after one warm-up call). */
static double timed(void (*fn)(void *), void *ctx)
{
	double t[64];
	fn(ctx);
	for (int i = 0; i < runs; i++) {
		double t0 = tl_now();
		fn(ctx);
		t[i] = tl_now() - t0;
	}
	qsort(t, (size_t)runs, sizeof t[0], cmp_d);
	return t[runs / 2];
}

static int want(const char *name)
{
	return strncmp(name, only, strlen(only)) == 0;
}

/* Whether any figure of a family (names starting with prefix) is wanted:
 * --only googlenet and --only googlenet_forward both open the device. */
static int want_family(const char *prefix)
{
	return want(prefix) || strncmp(only, prefix, strlen(prefix)) == 0;
}

typedef struct {
	tl_backend *be;
	tl_conv_shape s;
	tl_mem x, w, b, y, dy, g, dx, dw, db;
	int what; /* 0 forward, 1 weight gradient, 2 input gradient */
} layer_ctx;

static void run_layer(void *p)
{
	layer_ctx *l = p;
	tl_backend *be = l->be;
	tl_mem none = {0};
	if (l->what == 0) {
		be->conv_fwd(be, &l->s, l->x, l->w, l->b, 1, l->y);
		return;
	}
	size_t ny = (size_t)l->s.n * l->s.o * l->s.oh * l->s.ow;
	be->copy2d(be, l->dy, 0, l->g, 0, 1, ny, 0);
	if (l->what == 1)
		be->conv_bwd(be, &l->s, l->x, l->w, l->y, 1, l->dy, none, 0, l->dw, l->db);
	else
		be->conv_bwd(be, &l->s, l->x, l->w, l->y, 1, l->dy, l->dx, 0, none, none);
}

/* A CPU buffer of n floats with a fixed pattern. */
static tl_mem filled(tl_backend *be, size_t n, unsigned seed)
{
	tl_mem m = {be->alloc(be, n * sizeof(float)), 0};
	if (!m.buf) {
		fprintf(stderr, "tlbench: out of memory\n");
		exit(1);
	}
	float *p = be->host(be, m);
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((i * 2654435761u + seed) % 1000) * 0.001f - 0.5f;
	return m;
}

/* The distinct VGG16 convolutions at 32x32: layer_NAME_{fwd,dw,dx}, on
 * the fast CPU backend be. */
static void bench_layers(tl_backend *be)
{
	static const struct {
		const char *name;
		int c, o, hw;
	} L[] = {{"block1_conv1", 3, 64, 32},	  {"block1_conv2", 64, 64, 32},
		 {"block2_conv1", 64, 128, 16},	  {"block2_conv2", 128, 128, 16},
		 {"block3_conv1", 128, 256, 8},	  {"block3_conv2", 256, 256, 8},
		 {"block4_conv1", 256, 512, 4},	  {"block4_conv2", 512, 512, 4},
		 {"block5_conv1", 512, 512, 2}};
	static const char *what[] = {"fwd", "dw", "dx"};
	for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
		layer_ctx l = {.be = be};
		l.s = (tl_conv_shape){.n = batch, .c = L[i].c, .h = L[i].hw, .w = L[i].hw, .o = L[i].o,
				      .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
				      .oh = L[i].hw, .ow = L[i].hw};
		size_t nx = (size_t)batch * L[i].c * L[i].hw * L[i].hw,
		       ny = (size_t)batch * L[i].o * L[i].hw * L[i].hw, nw = (size_t)L[i].o * L[i].c * 9;
		l.x = filled(be, nx, 1), l.w = filled(be, nw, 2), l.b = filled(be, (size_t)L[i].o, 3);
		l.g = filled(be, ny, 4), l.y = filled(be, ny, 5), l.dy = filled(be, ny, 6);
		l.dx = filled(be, nx, 7), l.dw = filled(be, nw, 8), l.db = filled(be, (size_t)L[i].o, 9);
		double fl = 2.0 * nw * (double)ny / L[i].o;
		for (l.what = 0; l.what < 3; l.what++) {
			char name[64];
			snprintf(name, sizeof name, "layer_%s_%s", L[i].name, what[l.what]);
			if (!want(name) || (i == 0 && l.what == 2))
				continue;
			printf("%s %.1f GFLOP/s\n", name, fl / timed(run_layer, &l) * 1e-9);
			fflush(stdout);
		}
		tl_mem *all[] = {&l.x, &l.w, &l.b, &l.g, &l.y, &l.dy, &l.dx, &l.dw, &l.db};
		for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
			be->free(be, all[k]->buf);
	}
}


typedef struct {
	tl_pool *pool;
	int M, N, K;
	float *A, *B, *C;
} gemm_ctx;

static void run_gemm(void *p)
{
	gemm_ctx *g = p;
	tl_sgemm(g->pool, 0, 0, g->M, g->N, g->K, 1.0f, g->A, g->K, g->B, g->N, 0.0f, g->C, g->N);
}

typedef struct {
	tl_net *net;
	int to;
	int train;
	tl_optim *opt;
	int32_t *labels;
} net_ctx;

static void die_on(tl_status st, const tl_err *err)
{
	if (st != TL_OK) {
		fprintf(stderr, "tlbench: %s\n", err->msg);
		exit(1);
	}
}

/* One forward (and with train, loss + backward + SGD step), waited for. */
static void run_net(void *p)
{
	net_ctx *c = p;
	tl_err err;
	tl_net_forward(c->net, batch, 0, c->to);
	if (!c->train) {
		die_on(c->net->be->sync(c->net->be, &err), &err);
		return;
	}
	double loss;
	die_on(tl_net_loss(c->net, batch, c->labels, 1, &loss, NULL, &err), &err);
	tl_net_backward(c->net, batch);
	tl_optim_step(c->opt, c->net);
	die_on(c->net->be->sync(c->net->be, &err), &err);
}

static void bench_net(const char *name, const char *model, int size, int train, int features_only,
		      tl_backend *be)
{
	if (!want(name))
		return;
	tl_model_cfg cfg;
	tl_model_defaults(&cfg, model);
	cfg.height = cfg.width = size;
	tl_net *net;
	tl_err err;
	die_on(tl_model_build(&cfg, &net, &err), &err);
	die_on(tl_net_bind(net, be, batch, &err), &err);
	tl_net_init(net, 42, 0);
	net->training = train;
	size_t nx = (size_t)batch * 3 * size * size;
	float *x = malloc(nx * sizeof(float));
	TL_CHECK(x);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 7919) % 255) - 120.0f;
	tl_net_set(net, 0, x, batch);
	free(x);
	int32_t labels[1024];
	for (int i = 0; i < batch; i++)
		labels[i] = i % 10;
	tl_optim opt;
	die_on(tl_optim_init(&opt, net, TL_OPT_SGD, &err), &err);
	int to = net->n_layers;
	if (features_only)
		to = tl_net_find_layer(net, "block5_pool") + 1;
	net_ctx c = {net, to, train, &opt, labels};
	double s = timed(run_net, &c);
	printf("%s %.1f img/s\n", name, batch / s);
	fflush(stdout);
	tl_optim_free(&opt);
	tl_net_free(net);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"only", required_argument, 0, 'o'},
					   {"device", required_argument, 0, 'd'},
					   {"res", required_argument, 0, 's'},
					   {"precision", required_argument, 0, 'p'},
					   {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "j:r:b:s:", lo, NULL)) != -1) {
		if (c == 'j')
			threads = atoi(optarg);
		else if (c == 'r')
			runs = atoi(optarg);
		else if (c == 'b')
			batch = atoi(optarg);
		else if (c == 'o')
			only = optarg;
		else if (c == 'd')
			device = optarg;
		else if (c == 's')
			vgg_size = atoi(optarg);
		else if (c == 'p' && (!strcmp(optarg, "fp32") || !strcmp(optarg, "bf16"))) {
			if (tl_gemm_set_precision(!strcmp(optarg, "bf16") ? TL_GEMM_BF16 : TL_GEMM_FP32)) {
				fprintf(stderr, "tlbench: --precision bf16: this CPU has no AVX512-BF16\n");
				return 1;
			}
		} else {
			fprintf(stderr, "usage: tlbench [-j THREADS] [-r RUNS] [-b BATCH] [-s SIZE] [--device SPEC] [--only PREFIX] [--precision fp32|bf16]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 63 || batch < 1 || batch > 1024 || vgg_size < 32 || vgg_size > 512) {
		fprintf(stderr, "tlbench: runs in 1..63, batch in 1..1024, size in 32..512\n");
		return 2;
	}
	tl_pool *pool;
	tl_err err;
	if (tl_pool_new(&pool, threads, &err) != TL_OK) {
		fprintf(stderr, "tlbench: %s\n", err.msg);
		return 1;
	}
	printf("# tlbench: %d threads, %s kernels, %s GEMM, batch %d, median of %d\n",
	       tl_pool_size(pool), tl_cpu_level_name(tl_cpu_detect()),
	       tl_gemm_precision_name(tl_gemm_get_precision()), batch, runs);
	/* VGG16 conv GEMMs at 32x32: (out channels, pixels per image, in channels) */
	static const struct {
		const char *name;
		int o, p, c;
	} shapes[] = {
		{"sgemm_block1_conv2", 64, 1024, 64},  {"sgemm_block2_conv2", 128, 256, 128},
		{"sgemm_block3_conv2", 256, 64, 256},  {"sgemm_block4_conv2", 512, 16, 512},
		{"sgemm_block5_conv2", 512, 4, 512},
	};
	double flops_total = 0, secs_total = 0;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		if (!want(shapes[i].name) && !want("sgemm_vgg16_total"))
			continue;
		gemm_ctx g = {.pool = pool, .M = shapes[i].o, .N = batch * shapes[i].p, .K = 9 * shapes[i].c};
		g.A = malloc((size_t)g.M * g.K * 4);
		g.B = malloc((size_t)g.K * g.N * 4);
		g.C = malloc((size_t)g.M * g.N * 4);
		for (size_t k = 0; k < (size_t)g.M * g.K; k++)
			g.A[k] = (float)(k % 13) * 0.01f;
		for (size_t k = 0; k < (size_t)g.K * g.N; k++)
			g.B[k] = (float)(k % 7) * 0.02f;
		double s = timed(run_gemm, &g), fl = 2.0 * g.M * g.N * g.K;
		flops_total += fl;
		secs_total += s;
		if (want(shapes[i].name))
			printf("%s %.1f GFLOP/s (M=%d N=%d K=%d)\n", shapes[i].name, fl / s * 1e-9, g.M,
			       g.N, g.K);
		free(g.A), free(g.B), free(g.C);
	}
	if (secs_total > 0 && want("sgemm_vgg16_total"))
		printf("sgemm_vgg16_total %.1f GFLOP/s\n", flops_total / secs_total * 1e-9);
	fflush(stdout);
	if (want_family("vgg16_") || want_family("squeezenet_") || want_family("googlenet_") ||
	    want_family("mobilenetv2_")) {
		tl_device dev;
		die_on(tl_device_open(&dev, device, threads, &err), &err);
		printf("# device: %s; vgg16 at %dx%d\n", dev.be->name, vgg_size, vgg_size);
		bench_net("vgg16_forward", "vgg16", vgg_size, 0, 1, dev.be);
		bench_net("vgg16_train_step", "vgg16", vgg_size, 1, 0, dev.be);
		bench_net("squeezenet_forward", "squeezenet", 64, 0, 0, dev.be);
		bench_net("googlenet_forward", "googlenet", 64, 0, 0, dev.be);
		bench_net("googlenet_train_step", "googlenet", 64, 1, 0, dev.be);
		bench_net("mobilenetv2_forward", "mobilenetv2", 64, 0, 0, dev.be);
		bench_net("mobilenetv2_train_step", "mobilenetv2", 64, 1, 0, dev.be);
		tl_device_close(&dev);
	}
	if (!strncmp(only, "layer", 5)) {
		tl_backend *be;
		die_on(tl_cpu_open(0, pool, &be, &err), &err);
		bench_layers(be);
		be->destroy(be);
	}
	tl_pool_free(pool);
	return 0;
}
