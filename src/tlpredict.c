/* tlpredict - classify image files (PNG, JPEG, PPM of any size) with a
 * trained model: top-k classes and their probabilities.  Option parsing
 * and printing only: src/data/imgio.c decodes, src/train/predict.c
 * resizes, normalizes and runs the network. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afile.h"
#include "cli.h"
#include "data/imgenc.h"
#include "nn/models.h"
#include "nn/weights_find.h"
#include "train/predict.h"
#include "train/settings.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlpredict -m MODEL.safetensors [-k N] [--json] [--max-pixels N] IMAGE...\n"
		"  -m, --model FILE     a trained model (tltrain's RUN/best.safetensors), or\n"
		"                       raw ImageNet weights of squeezenet or googlenet (a\n"
		"                       file, or the network's name: its weights as tltrain\n"
		"                       finds them); these name the 1000 ImageNet classes\n"
		"  -k, --top N          classes to show per image (default 3)\n"
		"      --json           one JSON object per image and line\n"
		"      --dump-input FILE.png|FILE.ppm  (one IMAGE) write the image as the\n"
		"                       network sees it, as tlpack --export shows a record\n"
		"      --max-pixels N   refuse images declaring more pixels (default 178956970,\n"
		"                       or $TL_MAX_PIXELS)\n"
		"  -j, --threads N      threads (default: all cores)\n"
		"  -h, --help, -V, --version\n"
		"IMAGE: PNG, JPEG or PPM/PGM of any size, resized and normalized as the model's\n"
		"training shard was.  A bad image is reported and skipped (exit 1 at the end).\n"
		"see tlpredict(1)\n");
}

/* Length of the valid UTF-8 sequence that starts at s (2..4 bytes), or 0
 * when there is none (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF); s[0] >= 0x80.  Stops at the first bad byte, so never
 * reads past a terminating NUL. */
static int utf8_len(const unsigned char *s)
{
	unsigned c = s[0], lo = 0x80, hi = 0xBF;
	int n;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
	else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

/* Prints str as a JSON string that any JSON parser accepts, whatever
 * bytes it holds (file names are bytes): " and backslash escaped,
 * control characters and DEL as \u00XX, valid UTF-8 as it is, and every
 * byte that is not part of a valid UTF-8 sequence as U+FFFD (\ufffd). */
static void json_str(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	putchar('"');
	while (*s) {
		unsigned c = *s;
		int n = 1;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else if (c < 0x80)
			putchar((int)c);
		else if ((n = utf8_len(s)) > 0)
			fwrite(s, 1, (size_t)n, stdout);
		else
			fputs("\\ufffd", stdout), n = 1;
		s += n;
	}
	putchar('"');
}

/* What the command line asks for; the images are argv[optind..]. */
typedef struct {
	const char *model;
	const char *dump; /* --dump-input FILE, or NULL */
	int top, json, threads;
	long max_pixels; /* --max-pixels, 0 when not given */
} predict_args;

/* Parses the options into a and checks that a model and at least one
 * image are named; returns -1 to go on, or the exit status (0 after
 * --help/--version, 2 on a bad command line). */
static int parse_args(int argc, char **argv, predict_args *a)
{
	enum { O_JSON = 256, O_MAXPX, O_DUMP };
	static const struct option lo[] = {
		{"model", required_argument, 0, 'm'},   {"top", required_argument, 0, 'k'},
		{"json", no_argument, 0, O_JSON},       {"threads", required_argument, 0, 'j'},
		{"max-pixels", required_argument, 0, O_MAXPX},
		{"dump-input", required_argument, 0, O_DUMP},
		{"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	a->model = NULL, a->dump = NULL, a->top = 3, a->json = 0, a->threads = 0, a->max_pixels = 0;
	int c;
	long v;
	while ((c = getopt_long(argc, argv, "m:k:j:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'm': a->model = optarg; break;
		case 'k':
			if (tl_parse_long(optarg, 1, 1000, &v))
				return tl_cli_bad("tlpredict", "-k: expected a class count in 1..1000", optarg);
			a->top = (int)v;
			break;
		case O_JSON: a->json = 1; break;
		case O_DUMP: a->dump = optarg; break;
		case O_MAXPX:
			if (tl_parse_long(optarg, 1, (long)TL_IMG_MAX_PIXELS_HI, &a->max_pixels))
				return tl_cli_bad("tlpredict", "--max-pixels: expected a pixel count in 1..1073741824", optarg);
			break;
		case 'j': { /* tltrain's setting: its range and message */
			const char *what;
			if (tl_setting_parse("threads", optarg, &a->threads, sizeof a->threads, &what))
				return tl_cli_bad("tlpredict", what, optarg);
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': printf("tlpredict (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!a->model) {
		fprintf(stderr, "tlpredict: -m MODEL.safetensors is required\nTry 'tlpredict --help'.\n");
		return 2;
	}
	if (optind == argc) {
		fprintf(stderr, "tlpredict: expected at least one image\nTry 'tlpredict --help'.\n");
		return 2;
	}
	if (a->dump && optind + 1 != argc) {
		fprintf(stderr, "tlpredict: --dump-input: expected exactly one image, got %d\nTry 'tlpredict --help'.\n",
			argc - optind);
		return 2;
	}
	return -1;
}

/* Puts the top classes of prob[k] by probability first in order[k]
 * (ties to the lower class index). */
static void top_order(const float *prob, int k, int top, int *order)
{
	for (int i = 0; i < k; i++)
		order[i] = i;
	for (int i = 0; i < top; i++)
		for (int j = i + 1; j < k; j++)
			if (prob[order[j]] > prob[order[i]]) {
				int t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
}

/* Prints one image's top classes: a JSON line, or "FILE: name p, ...". */
static void print_top(const predict_args *a, const char *file, const tl_img *img,
		      const tl_predict_info *in, const float *prob, const int *order)
{
	if (a->json) {
		printf("{\"file\":");
		json_str(file);
		printf(",\"format\":\"%s\",\"width\":%d,\"height\":%d,\"top\":[", img->format, img->src_w,
		       img->src_h);
		for (int i = 0; i < a->top; i++) {
			printf("%s{\"class\":", i ? "," : "");
			json_str(in->names[order[i]]);
			printf(",\"index\":%d,\"probability\":%.6g}", order[i], prob[order[i]]);
		}
		printf("]}\n");
	} else {
		printf("%s:", file);
		for (int i = 0; i < a->top; i++)
			printf("%s %s %.4f", i ? "," : "", in->names[order[i]], prob[order[i]]);
		printf("\n");
	}
}

/* --dump-input: img as the training shard would hold it (tlpack's fit,
 * resize, normalization and dtype), brought back to 8-bit RGB as tlpack
 * --export does, written atomically to file: PNG when its name ends in
 * .png, else binary PPM. */
static tl_status dump_input(tl_predictor *p, const tl_img *img, const char *file, tl_err *err)
{
	const tl_predict_info *in = tl_predictor_info(p);
	size_t plane = (size_t)in->height * in->width;
	char head[64];
	int hn = snprintf(head, sizeof head, "P6\n%d %d\n255\n", in->width, in->height);
	void *rec = malloc(tl_predict_record_bytes(p));
	uint8_t *ppm = malloc((size_t)hn + plane * 3), *png = NULL;
	size_t n = 0;
	tl_status st = rec && ppm ? tl_predict_record(p, img, rec, err)
				  : tl_seterr(err, TL_ENOMEM, "out of memory");
	if (st == TL_OK) {
		memcpy(ppm, head, (size_t)hn);
		tl_image_to_rgb8(rec, in->dtype, &in->norm, in->height, in->width, ppm + hn);
		if (tl_png_suffix(file) && (st = tl_png_encode(ppm + hn, in->height, in->width, &png, &n, err)) == TL_OK)
			st = tl_write_file_atomic(file, png, n, err);
		else if (st == TL_OK)
			st = tl_write_file_atomic(file, ppm, (size_t)hn + plane * 3, err);
	}
	free(rec);
	free(ppm);
	free(png);
	return st;
}

/* Loads (with the limits of io) and classifies one image and prints its
 * top classes; on failure says why on stderr (and as a JSON line with
 * --json); returns 0 or 1. */
static int predict_one(const predict_args *a, tl_predictor *p, const tl_img_opts *io,
		       const char *file, float *prob, int *order)
{
	const tl_predict_info *in = tl_predictor_info(p);
	tl_err err;
	tl_img img;
	tl_status st = tl_img_load_opts(file, io, &img, &err);
	if (st == TL_OK && a->dump)
		st = dump_input(p, &img, a->dump, &err);
	if (st == TL_OK)
		st = tl_predict(p, &img, prob, &err);
	if (st != TL_OK) {
		fprintf(stderr, "tlpredict: %s\n", err.msg);
		if (a->json) {
			printf("{\"file\":");
			json_str(file);
			printf(",\"error\":");
			json_str(err.msg);
			printf("}\n");
		}
		tl_img_free(&img);
		return 1;
	}
	top_order(prob, in->n_classes, a->top, order);
	print_top(a, file, &img, in, prob, order);
	tl_img_free(&img);
	return 0;
}

/* -m NETWORK (squeezenet, googlenet) when no such file exists: the
 * network's ImageNet weights, found as tltrain finds them, into wf->path
 * and a->model.  Returns 0, or 1 after saying that none were found. */
static int model_by_name(predict_args *a, tl_weights_found *wf)
{
	struct stat sb;
	if (stat(a->model, &sb) == 0 || !tl_model_known(a->model) || !tl_weights_exist_for(a->model))
		return 0;
	tl_err err;
	if (tl_weights_find(a->model, TL_DATADIR, wf, &err) != TL_OK) {
		fprintf(stderr, "tlpredict: %s\n", err.msg);
		return 1;
	}
	if (!wf->path[0]) {
		char where[1024];
		tl_weights_where(a->model, TL_DATADIR, where, sizeof where);
		fprintf(stderr, "tlpredict: %s: no such file, and no %s weights found (looked for %s)\n", a->model,
			a->model, where);
		return 1;
	}
	a->model = wf->path;
	return 0;
}

int main(int argc, char **argv)
{
	predict_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	/* the limits every image is read with: $TL_MAX_PIXELS, then
	 * --max-pixels; a JPEG may be decoded at a reduced scale that keeps
	 * twice the model's input size (set below) */
	tl_err err;
	tl_img_opts io;
	tl_status st = tl_img_opts_env(&io, &err);
	if (st != TL_OK)
		return tl_cli_exit("tlpredict", st, &err, NULL);
	if (a.max_pixels)
		io.max_pixels = (uint64_t)a.max_pixels;
	tl_weights_found wf;
	if (model_by_name(&a, &wf) != 0)
		return 1;
	tl_predictor *p;
	st = tl_predictor_open(&p, a.model, a.threads, &err);
	if (st != TL_OK)
		return tl_cli_exit("tlpredict", st, &err, NULL);
	if (tl_predictor_info(p)->imagenet && !tl_predictor_info(p)->named) {
		char user[1024];
		if (tl_user_data_dir(user, sizeof user) != 0)
			snprintf(user, sizeof user, "~/.local/share/tlkit");
		fprintf(stderr, "tlpredict: imagenet-classes.txt not found in $TL_WEIGHTS, ., data/, %s or %s; classes are shown by index\n",
			user, TL_DATADIR);
	}
	io.target_w = tl_predictor_info(p)->width, io.target_h = tl_predictor_info(p)->height;
	int k = tl_predictor_info(p)->n_classes;
	if (a.top > k)
		a.top = k;
	float *prob = malloc(sizeof(float) * (size_t)k);
	int *order = malloc(sizeof(int) * (size_t)k);
	if (!prob || !order) {
		fprintf(stderr, "tlpredict: out of memory\n");
		return 1;
	}
	int failed = 0, wrote = 1;
	for (int i = optind; i < argc && wrote; i++) {
		failed += predict_one(&a, p, &io, argv[i], prob, order);
		/* each result as it is known: a reader of a pipe need not wait */
		wrote = fflush(stdout) == 0;
	}
	free(prob);
	free(order);
	tl_predictor_close(p);
	if (!wrote || ferror(stdout)) {
		fprintf(stderr, "tlpredict: write error on standard output\n");
		return 1;
	}
	if (failed)
		fprintf(stderr, "tlpredict: %d of %d images could not be classified\n", failed, argc - optind);
	return failed ? 1 : 0;
}
