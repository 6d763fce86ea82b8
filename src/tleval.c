/* tleval - run a model over a shard: evaluate a trained model (accuracy,
 * per-class metrics, confusion matrix, latency; src/evaluate.c) or write a
 * pretrained base's intermediate feature maps to .npy (src/extract.c). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "afile.h"
#include "infile.h"
#include "cli.h"
#include "nn/device.h"
#include "train/evaluate.h"
#include "train/extract.h"
#include "train/grid.h"
#include "train/settings.h"
#include "data/image.h"
#include "nn/models.h"
#include "nn/registry.h"
#include "nn/safetensors.h"
#include "nn/weights_find.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tleval -w RUN/best.safetensors [-d SHARD] [-o REPORT]    evaluate a trained model\n"
		"       tleval -m MODEL -w WEIGHTS -d SHARD --features LAYER -o FILE.npy\n"
		"  -m, --model M        vgg16 (default), squeezenet, googlenet, alexnet, mobilenetv2,\n"
		"                       baseline (with --features; a run's model is in its weights)\n"
		"  -w, --weights FILE   trained model, or pretrained weights (safetensors, torchvision/timm\n"
		"                       names; --features default: the lookup of tltrain(1) FILES)\n"
		"  -d, --data SHARD     shard from tlpack (default cifar10.tls)\n"
		"      --split NAME     test (default), train, or val: the images tltrain held out\n"
		"      --limit N        only the first N images of the split\n"
		"      --features LAYER write LAYER's activations (e.g. block4_pool, fire9, inception_4e/output,\n"
		"                       block_13_expand_relu, features.14.conv.0)\n"
		"      --grid FILE.png  with --features: one image and LAYER's maps as a picture (.png/.svg);\n"
		"                       -w A -w B: both files' maps, before and after, on one scale\n"
		"      --image N        the image of the split --grid shows (default 0)\n"
		"      --channels LIST  the channels --grid draws, e.g. 0-15,32 (default the first 64)\n"
		"      --grid-scale S   each (each map stretched on its own; default for one file) or\n"
		"                       shared (one scale for all maps; default for two)\n"
		"      --predictions F  evaluating: CSV of index,label,predicted,probability per image\n"
		"  -o, --output FILE    the .npy to write: float32 (N, C, H, W); or the report\n"
		"                       (JSON when FILE ends in .json)\n"
		"      --json           evaluating: the report as JSON (to -o, or to stdout)\n"
		"  -b, --batch N        images per forward pass (default 32)\n"
		"  -j, --threads N      threads (default: all cores)\n"
		"      --device D       auto (default), cpu, cpu-reference, opencl[:P[:D]]\n"
		"      --precision P    cpu GEMM operands: fp32 (default), bf16 (AVX512-BF16) or auto\n"
		"  -q, --quiet          no progress bar, no summary\n"
		"  -h, --help, -V, --version\n"
		"see tleval(1)\n");
}

static int bad(const char *what, const char *arg)
{
	return tl_cli_bad("tleval", what, arg);
}

/* What the command line asks for. */
typedef struct {
	tl_features_opts o;
	const char *grid, *pred_path; /* --grid, --predictions */
	uint64_t image;               /* --image */
	int model_given;              /* -m */
	int json;                     /* --json */
	const char *after;            /* a second -w (--grid: before and after) */
	tl_grid_opts g;               /* --channels, --grid-scale */
} eval_args;

/* Parses the options into a (defaults first); returns -1 to go on, or
 * the exit status (0 after --help/--version, 2 on a bad option). */
static int parse_args(int argc, char **argv, eval_args *a)
{
	enum { O_SPLIT = 256, O_LIMIT, O_FEATURES, O_GRID, O_IMAGE, O_PRED, O_DEVICE, O_PRECISION,
	       O_JSON, O_CHANNELS, O_GRID_SCALE };
	static const struct option lo[] = {
		{"model", required_argument, 0, 'm'},   {"weights", required_argument, 0, 'w'},
		{"data", required_argument, 0, 'd'},    {"split", required_argument, 0, O_SPLIT},
		{"limit", required_argument, 0, O_LIMIT}, {"features", required_argument, 0, O_FEATURES},
		{"grid", required_argument, 0, O_GRID}, {"image", required_argument, 0, O_IMAGE},
		{"predictions", required_argument, 0, O_PRED}, {"json", no_argument, 0, O_JSON},
		{"channels", required_argument, 0, O_CHANNELS},
		{"grid-scale", required_argument, 0, O_GRID_SCALE},
		{"output", required_argument, 0, 'o'},  {"batch", required_argument, 0, 'b'},
		{"threads", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},
		{"device", required_argument, 0, O_DEVICE},
		{"precision", required_argument, 0, O_PRECISION},
		{"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	tl_features_opts *o = &a->o;
	memset(a, 0, sizeof *a);
	o->model = "vgg16";
	o->shard = "cifar10.tls";
	o->split = "test";
	o->device = "auto";
	long v;
	int c;
	const char *what;
	char spec[32], prec[8]; /* --device, --precision as tltrain stores them (checked) */
	while ((c = getopt_long(argc, argv, "m:w:d:o:b:j:qhV", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!tl_model_known(optarg)) {
				char msg[300];
				snprintf(msg, sizeof msg, "-m: expected %s", tl_model_list());
				return bad(msg, optarg);
			}
			o->model = tl_model_find(optarg)->name; /* an alias: the name files record */
			a->model_given = 1;
			break;
		case 'w':
			if (o->weights && a->after) {
				fprintf(stderr, "tleval: -w: at most two weights files (before and after, with --grid)\nTry 'tleval --help'.\n");
				return 2;
			}
			*(o->weights ? &a->after : &o->weights) = optarg;
			break;
		case O_CHANNELS: {
			tl_err cerr;
			int *ch, n;
			if (tl_grid_parse_channels(optarg, &ch, &n, &cerr) != TL_OK) {
				fprintf(stderr, "tleval: %s\nTry 'tleval --help'.\n", cerr.msg);
				return 2;
			}
			free((void *)a->g.channels);
			a->g.channels = ch, a->g.n_channels = n;
			break;
		}
		case O_GRID_SCALE:
			if (strcmp(optarg, "each") && strcmp(optarg, "shared"))
				return bad("--grid-scale: expected each or shared", optarg);
			a->g.scale = optarg[0] == 'e' ? TL_GRID_SCALE_EACH : TL_GRID_SCALE_SHARED;
			break;
		case 'd': o->shard = optarg; break;
		case O_SPLIT: o->split = optarg; break;
		case O_LIMIT:
			if (tl_parse_long(optarg, 1, 1L << 40, &v))
				return bad("--limit: expected a count in 1..1099511627776", optarg);
			o->limit = (uint64_t)v;
			break;
		case O_FEATURES: o->layer = optarg; break;
		case O_GRID: a->grid = optarg; break;
		case O_IMAGE:
			if (tl_parse_long(optarg, 0, 1L << 40, &v))
				return bad("--image: expected an image index >= 0", optarg);
			a->image = (uint64_t)v;
			break;
		case O_PRED: a->pred_path = optarg; break;
		case O_JSON: a->json = 1; break;
		case 'o': o->output = optarg; break;
		/* -b, -j, --device, --precision: tltrain's settings, its ranges and messages */
		case 'b':
			if (tl_setting_parse("batch", optarg, &o->batch, sizeof o->batch, &what))
				return bad(what, optarg);
			break;
		case 'j':
			if (tl_setting_parse("threads", optarg, &o->threads, sizeof o->threads, &what))
				return bad(what, optarg);
			break;
		case 'q': o->quiet = 1; break;
		case O_DEVICE:
			if (tl_setting_parse("device", optarg, spec, sizeof spec, &what))
				return bad(what, optarg);
			o->device = optarg;
			break;
		case O_PRECISION:
			if (tl_setting_parse("precision", optarg, prec, sizeof prec, &what))
				return bad(what, optarg);
			o->precision = optarg;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tleval (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		return bad("unexpected argument", argv[optind]);
	return -1;
}

/* Fills in the weights (--features without -w: the pretrained base's
 * default, imported from Keras if need be) and checks that the options
 * go together; returns -1 to go on, or the exit status (1, 2). */
static int check_args(eval_args *a)
{
	tl_features_opts *o = &a->o;
	static tl_weights_found found; /* --features: the pretrained base's default weights */
	tl_err ferr;
	if (!o->weights && o->layer && tl_weights_find(o->model, TL_DATADIR, &found, &ferr) != TL_OK) {
		fprintf(stderr, "tleval: %s\n", ferr.msg);
		return 1;
	}
	if (found.imported && found.pth && !o->quiet)
		fprintf(stderr, "tleval: imported PyTorch weights %s (%s format, xxh3 %s) into %s\n",
			found.from, found.pth_info.format, found.pth_info.xxh3, found.path);
	else if (found.imported && !o->quiet)
		fprintf(stderr, "tleval: imported Keras weights %s (%s layout, md5 %s) into %s\n",
			found.from, found.info.layout, found.info.md5, found.path);
	if (!o->weights && found.path[0])
		o->weights = found.path;
	if (!o->weights) {
		fprintf(stderr, "tleval: -w FILE is required\nTry 'tleval --help'.\n");
		return 2;
	}
	/* a file that names its network (tltrain's, tlweights import's):
	 * --features follows it unless -m is given, and an -m that disagrees
	 * is refused rather than ignored */
	static char file_model[16];
	tl_st_file *f;
	if (tl_st_open(&f, o->weights, &ferr) == TL_OK) {
		const char *m = tl_st_meta(f, "model");
		if (m && tl_model_known(m))
			snprintf(file_model, sizeof file_model, "%s", m);
		tl_st_close(f);
	}
	if (a->after && (!a->grid || !o->layer)) {
		fprintf(stderr, "tleval: a second -w is for --features LAYER --grid (before and after)\nTry 'tleval --help'.\n");
		return 2;
	}
	if ((a->g.channels || a->g.scale) && !a->grid) {
		fprintf(stderr, "tleval: %s needs --grid\nTry 'tleval --help'.\n",
			a->g.channels ? "--channels" : "--grid-scale");
		return 2;
	}
	/* both files of a pair must be the same network */
	if (a->after && tl_st_open(&f, a->after, &ferr) == TL_OK) {
		const char *m = tl_st_meta(f, "model");
		const char *first = file_model[0] ? file_model : a->model_given ? o->model : NULL;
		if (m && tl_model_known(m) && first && strcmp(m, first) != 0) {
			fprintf(stderr, "tleval: -w %s is a %s model, -w %s a %s one (expected the same network before and after)\n",
				o->weights, first, a->after, m);
			tl_st_close(f);
			return 2;
		}
		if (m && tl_model_known(m) && !file_model[0] && !a->model_given)
			snprintf(file_model, sizeof file_model, "%s", m);
		tl_st_close(f);
	}
	if (file_model[0] && a->model_given && strcmp(file_model, o->model) != 0) {
		fprintf(stderr, "tleval: -m %s: %s is a %s model (leave out -m, or give its weights)\n",
			o->model, o->weights, file_model);
		return 2;
	}
	if (file_model[0])
		o->model = file_model;
	if ((a->grid && !o->layer) || (a->pred_path && o->layer) || (a->json && o->layer)) {
		fprintf(stderr, "tleval: %s\nTry 'tleval --help'.\n",
			a->grid ? "--grid needs --features LAYER"
			: a->json ? "--json is for evaluating a trained model, not --features"
				  : "--predictions is for evaluating a trained model, not --features");
		return 2;
	}
	if (o->layer && !o->output && !a->grid) {
		fprintf(stderr, "tleval: --features needs -o FILE.npy\nTry 'tleval --help'.\n");
		return 2;
	}
	/* an output that would replace an input or a device fails now,
	 * before the work, by the rule every output follows (afile.h) */
	tl_infile_note(o->weights);
	if (a->after)
		tl_infile_note(a->after);
	tl_infile_note(o->shard);
	const char *outs[] = {o->output, a->grid, a->pred_path};
	for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
		tl_err err;
		if (outs[i] && tl_afile_check(outs[i], 0, &err) != TL_OK) {
			fprintf(stderr, "tleval: %s\n", err.msg);
			return 2;
		}
	}
	return -1;
}

/* Evaluates a trained model: the report to stdout and/or -o, the
 * per-image predictions to --predictions; returns the exit status. */
static int run_evaluate(const eval_args *a, const volatile sig_atomic_t *cancelled)
{
	const tl_features_opts *o = &a->o;
	tl_eval_opts eo = {.model_path = o->weights, .shard = o->shard, .split = o->split,
			   .limit = o->limit, .batch = o->batch, .threads = o->threads, .device = o->device,
			   .precision = o->precision,
			   .quiet = o->quiet, .cancel = cancelled};
	/* JSON by --json or an -o name ending in .json: to -o (stdout still
	 * gets the text), or to stdout when there is no -o */
	size_t ol = o->output ? strlen(o->output) : 0;
	int json = a->json || (ol > 5 && strcasecmp(o->output + ol - 5, ".json") == 0);
	char *buf = NULL, *pbuf = NULL, *jbuf = NULL;
	size_t len = 0, plen = 0, jlen = 0;
	FILE *mem = open_memstream(&buf, &len);
	int oom = !mem;
	if (a->pred_path && !(eo.predictions = open_memstream(&pbuf, &plen)))
		oom = 1;
	if (json && !(eo.json = open_memstream(&jbuf, &jlen)))
		oom = 1;
	tl_eval_result er;
	tl_err err;
	tl_status st = !oom ? tl_evaluate(&eo, mem, &er, &err)
			    : tl_seterr(&err, TL_ENOMEM, "out of memory");
	if (mem)
		fclose(mem);
	if (eo.predictions)
		fclose(eo.predictions);
	if (eo.json)
		fclose(eo.json);
	if (st == TL_OK && a->pred_path)
		st = tl_write_file_atomic(a->pred_path, pbuf, plen, &err);
	free(pbuf);
	if (st == TL_OK && o->output)
		st = json ? tl_write_file_atomic(o->output, jbuf, jlen, &err)
			  : tl_write_file_atomic(o->output, buf, len, &err);
	if (st == TL_OK && json && !o->output)
		fwrite(jbuf, 1, jlen, stdout);
	else if (st == TL_OK && (!o->output || !o->quiet))
		fwrite(buf, 1, len, stdout);
	free(jbuf);
	free(buf);
	return tl_cli_exit("tleval", st, &err, cancelled);
}

/* --features: draws the --grid picture and/or writes LAYER's activations
 * to the -o .npy; returns the exit status. */
static int run_features(const eval_args *a, const volatile sig_atomic_t *cancelled)
{
	const tl_features_opts *o = &a->o;
	tl_features_result r;
	tl_grid_result gr;
	tl_err err;
	tl_status st = TL_OK;
	tl_grid_opts g = a->g;
	g.after = a->after;
	if (a->grid && (st = tl_features_grid(o, &g, a->image, a->grid, &gr, &err)) == TL_OK && !o->quiet) {
		fprintf(stderr, "tleval: wrote %s: %s image %llu and %d of %s's %d maps of %dx%d%s", a->grid,
			o->split, (unsigned long long)a->image, gr.n_maps, o->layer, gr.c, gr.h, gr.w,
			a->after ? " for each weights file" : "");
		if (gr.shared)
			fprintf(stderr, ", one scale for all: %.6g (black) .. %.6g (white)\n", gr.lo, gr.hi);
		else
			fprintf(stderr, ", each map stretched on its own\n");
	}
	if (st != TL_OK || !o->output)
		return tl_cli_exit("tleval", st, &err, cancelled);
	st = tl_features(o, &r, &err);
	if (st != TL_OK)
		return tl_cli_exit("tleval", st, &err, cancelled);
	if (r.weights_norm < 0 && !o->quiet)
		fprintf(stderr, "tleval: warning: %s does not declare its input normalization; check that the shard's matches\n",
			o->weights);
	if (!o->quiet)
		fprintf(stderr, "tleval: wrote %s: %s activations, float32 (%llu, %d, %d, %d), %.2f s\n",
			o->output, o->layer, (unsigned long long)r.n, r.c, r.h, r.w, r.seconds);
	return 0;
}

int main(int argc, char **argv)
{
	eval_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc < 0)
		rc = check_args(&a);
	if (rc < 0) {
		const volatile sig_atomic_t *cancelled = tl_cli_catch_signals();
		a.o.cancel = cancelled;
		rc = a.o.layer ? run_features(&a, cancelled) : run_evaluate(&a, cancelled);
	}
	free((void *)a.g.channels); /* --channels, also after a usage error */
	return rc;
}
