/* tlpack - a data source (CIFAR-10/100 binary tarball or folder, a folder
 * of class subfolders of images) -> .tls shard; inspect, verify and
 * export shards.  Option parsing and messages only: src/pack.c and
 * src/shard.c do the work. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afile.h"
#include "cli.h"
#include "data/image.h"
#include "data/imgenc.h"
#include "data/pack.h"
#include "progress.h"
#include "data/shard.h"
#include "train/settings.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlpack [options] INPUT            pack a CIFAR-10/100 binary tarball or directory,\n"
		"                                         or a folder with one subfolder per class\n"
		"       tlpack --labels LIST.csv [DIR]    pack the images a CSV list names (path,label)\n"
		"       tlpack --info SHARD               print every header field\n"
		"       tlpack --verify SHARD             check every checksum\n"
		"       tlpack --export SPLIT/INDEX SHARD -o FILE.png|FILE.ppm\n"
		"options:\n"
		"  -o, --output FILE     output shard (default named after the source:\n"
		"                        cifar10.tls, cifar100.tls, DIR.tls)\n"
		"  -f, --force           replace the output shard if it exists\n"
		"  -r, --resize N        output N x N pixels (default 32 for CIFAR, %d for\n"
		"                        photo folders; at most %d)\n"
		"      --size HxW        output H x W pixels\n"
		"      --filter F        auto (default: area to shrink, bilinear to enlarge),\n"
		"                        area, bilinear, nearest\n"
		"      --fit F           photos: crop (default; shorter side to the size,\n"
		"                        centre crop), stretch, pad (centred on black)\n"
		"      --dtype T         f16 (CIFAR default), f32, u8 (photo default;\n"
		"                        normalized when loaded)\n"
		"      --norm N          caffe (default; Keras VGG16, BGR minus mean), torch,\n"
		"                        tf, none\n"
		"      --test F          folders without test/: hold out fraction F of each\n"
		"                        class as the test split (0 < F < 1)\n"
		"      --seed N          the --test draw (default 0)\n"
		"      --strict          an unreadable or undecodable image is an error\n"
		"                        (default: reported, skipped and counted)\n"
		"      --chunk-records N records per checksummed chunk (default: ~1 MiB)\n"
		"  -j, --threads N       conversion threads (default: all cores)\n"
		"  -q, --quiet           no progress bar, no summary\n"
		"  -h, --help            this help\n"
		"  -V, --version         print the version\n"
		"see tlpack(1) and tlshard(5)\n",
		TL_PACK_PHOTO_SIZE, TL_PACK_MAX_SIZE);
}

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "tlpack: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'tlpack --help'.\n");
	return 2;
}

/* An int option in [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
	long v;
	if (tl_parse_long(s, lo, hi, &v))
		return -1;
	*out = (int)v;
	return 0;
}

static void verify_progress(void *ctx, uint64_t done)
{
	void **a = ctx;
	tl_progress_update(a[0], done, *(uint64_t *)a[1], done, "chunks");
}

static int do_info(const char *path)
{
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, path, &err) != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
		return 1;
	}
	tl_shard_describe(sh, stdout);
	tl_shard_close(sh);
	return 0;
}

static int do_verify(const char *path, int quiet)
{
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, path, &err) != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
		return 1;
	}
	tl_progress prog;
	tl_progress_init(&prog, "tlpack", quiet);
	void *pctx[2] = {&prog, &sh->info.n_chunks};
	tl_status st = tl_shard_verify(sh, verify_progress, pctx, &err);
	tl_progress_end(&prog);
	if (st != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
		tl_shard_close(sh);
		return 1;
	}
	if (!quiet)
		printf("%s: ok: header, labels, chunk table and %llu image chunks (%llu records) verified\n",
		       path, (unsigned long long)sh->info.n_chunks,
		       (unsigned long long)sh->info.n_records);
	tl_shard_close(sh);
	return 0;
}

/* --export SPLIT/INDEX: one record as a picture, PNG when out ends in
 * .png, else binary PPM; says which record and label it was. */
static int do_export(const char *what, const char *path, const char *out, int quiet)
{
	char split[32];
	const char *slash = strchr(what, '/');
	int idx;
	if (!slash || (size_t)(slash - what) >= sizeof split ||
	    parse_int(slash + 1, 0, 2147483647, &idx))
		return die_usage("--export: expected SPLIT/INDEX (e.g. test/0), got '%s'", what);
	memcpy(split, what, (size_t)(slash - what));
	split[slash - what] = 0;
	if (!out)
		return die_usage("--export needs -o FILE.png or FILE.ppm%s", "");
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, path, &err) != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
		return 1;
	}
	int rc = 1;
	int s = tl_shard_split_find(sh, split);
	const tl_shard_info *in = &sh->info;
	if (s < 0) {
		fprintf(stderr, "tlpack: %s: no split named '%s' (expected one of:", path, split);
		for (uint32_t i = 0; i < in->n_splits; i++)
			fprintf(stderr, " %s", in->splits[i].name);
		fprintf(stderr, ")\n");
		goto done;
	}
	if ((uint64_t)idx >= in->splits[s].count) {
		fprintf(stderr, "tlpack: %s: split %s: index out of range (expected 0..%llu, got %d)\n",
			path, split, (unsigned long long)in->splits[s].count - 1, idx);
		goto done;
	}
	uint64_t r = tl_shard_file_record(sh, s, (uint64_t)idx);
	const void *rec;
	if (tl_shard_record(sh, r, &rec, &err) != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
		goto done;
	}
	size_t plane = (size_t)in->height * in->width;
	char head[64];
	int hn = snprintf(head, sizeof head, "P6\n%u %u\n255\n", in->width, in->height);
	uint8_t *buf = malloc((size_t)hn + plane * 3);
	if (!buf) {
		fprintf(stderr, "tlpack: out of memory\n");
		goto done;
	}
	memcpy(buf, head, (size_t)hn);
	tl_image_to_rgb8(rec, in->dtype, &in->norm, (int)in->height, (int)in->width, buf + hn);
	int png = tl_png_suffix(out);
	uint8_t *enc = NULL;
	size_t n = 0;
	tl_status st = png ? tl_png_encode(buf + hn, (int)in->height, (int)in->width, &enc, &n, &err)
			   : TL_OK;
	if (st == TL_OK)
		st = png ? tl_write_file_atomic(out, enc, n, &err)
			 : tl_write_file_atomic(out, buf, (size_t)hn + plane * 3, &err);
	if (st != TL_OK) {
		fprintf(stderr, "tlpack: %s\n", err.msg);
	} else if (!quiet) {
		int32_t label = tl_shard_label(sh, r, 0);
		const char *name = tl_shard_record_name(sh, r);
		fprintf(stderr, "tlpack: wrote %s (%s, %ux%u): %s/%d, label %d (%s)%s%s\n", out,
			png ? "PNG" : "PPM", in->width, in->height, split, idx, label,
			label >= 0 && (uint32_t)label < in->n_classes ? in->class_names[label] : "?",
			name ? ", from " : "", name ? name : "");
	}
	rc = st == TL_OK ? 0 : st == TL_EUSAGE ? 2 : 1;
	free(enc);
	free(buf);
done:
	tl_shard_close(sh);
	return rc;
}

/* Long options without a short form; O_INFO, O_VERIFY and O_EXPORT are
 * also the modes other than packing. */
enum { O_SIZE = 256, O_FILTER, O_DTYPE, O_NORM, O_INFO, O_VERIFY, O_EXPORT, O_CHUNK, O_FIT,
       O_TEST, O_SEED, O_STRICT, O_LABELS };

/* Parses the options into o (defaults first), *mode (0: pack) and
 * *export_what; returns -1 to go on, or the exit status (0 after
 * --help/--version, 2 on a bad option). */
static int parse_args(int argc, char **argv, tl_pack_opts *o, int *mode, const char **export_what)
{
	static const struct option longopts[] = {
		{"output", required_argument, 0, 'o'},
		{"force", no_argument, 0, 'f'},
		{"resize", required_argument, 0, 'r'},
		{"size", required_argument, 0, O_SIZE},
		{"filter", required_argument, 0, O_FILTER},
		{"dtype", required_argument, 0, O_DTYPE},
		{"norm", required_argument, 0, O_NORM},
		{"chunk-records", required_argument, 0, O_CHUNK},
		{"fit", required_argument, 0, O_FIT},
		{"test", required_argument, 0, O_TEST},
		{"seed", required_argument, 0, O_SEED},
		{"strict", no_argument, 0, O_STRICT},
		{"labels", required_argument, 0, O_LABELS},
		{"threads", required_argument, 0, 'j'},
		{"quiet", no_argument, 0, 'q'},
		{"info", no_argument, 0, O_INFO},
		{"verify", no_argument, 0, O_VERIFY},
		{"export", required_argument, 0, O_EXPORT},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	memset(o, 0, sizeof *o);
	o->height = o->width = 0; /* the source's default */
	o->filter = TL_FILTER_AUTO;
	o->dtype = TL_DTYPE_F16;
	o->norm = TL_NORM_CAFFE;
	*mode = 0, *export_what = NULL;
	int c, chunk;
	while ((c = getopt_long(argc, argv, "o:fr:j:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->output = optarg; break;
		case 'f': o->force = 1; break;
		case 'r':
			if (parse_int(optarg, 1, TL_PACK_MAX_SIZE, &o->height))
				return die_usage("-r: expected a size in 1..512, got '%s'", optarg);
			o->width = o->height;
			break;
		case O_SIZE: {
			int h, w, n = 0;
			if (sscanf(optarg, "%dx%d%n", &h, &w, &n) != 2 || optarg[n] || h < 1 ||
			    w < 1 || h > TL_PACK_MAX_SIZE || w > TL_PACK_MAX_SIZE)
				return die_usage("--size: expected HxW with each in 1..512, got '%s'", optarg);
			o->height = h, o->width = w;
			break;
		}
		case O_FILTER:
			if (tl_filter_parse(optarg, &o->filter))
				return die_usage("--filter: expected auto, area, bilinear or nearest, got '%s'", optarg);
			break;
		case O_DTYPE:
			if (tl_dtype_parse(optarg, &o->dtype))
				return die_usage("--dtype: expected f16, f32 or u8, got '%s'", optarg);
			o->dtype_set = 1;
			break;
		case O_FIT:
			if (tl_fit_parse(optarg, &o->fit))
				return die_usage("--fit: expected crop, stretch or pad, got '%s'", optarg);
			break;
		case O_TEST: {
			char *end;
			errno = 0;
			double f = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(f > 0 && f < 1))
				return die_usage("--test: expected a fraction between 0 and 1 (e.g. 0.2), got '%s'", optarg);
			o->test_fraction = f;
			break;
		}
		case O_SEED: {
			long v;
			if (tl_parse_long(optarg, 0, 2147483647, &v))
				return die_usage("--seed: expected a number in 0..2147483647, got '%s'", optarg);
			o->seed = (uint64_t)v;
			break;
		}
		case O_STRICT: o->strict = 1; break;
		case O_LABELS: o->source = "csv", o->input = optarg; break;
		case O_NORM:
			if (tl_norm_parse(optarg, &o->norm))
				return die_usage("--norm: expected caffe, torch, tf or none, got '%s'", optarg);
			break;
		case O_CHUNK:
			if (parse_int(optarg, 1, 1 << 24, &chunk))
				return die_usage("--chunk-records: expected a count in 1..16777216, got '%s'", optarg);
			o->chunk_records = (uint32_t)chunk;
			break;
		case 'j': { /* tltrain's setting: its range and message */
			const char *what;
			if (tl_setting_parse("threads", optarg, &o->threads, sizeof o->threads, &what))
				return tl_cli_bad("tlpack", what, optarg);
			break;
		}
		case 'q': o->quiet = 1; break;
		case O_INFO: *mode = O_INFO; break;
		case O_VERIFY: *mode = O_VERIFY; break;
		case O_EXPORT: *mode = O_EXPORT, *export_what = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tlpack (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (o->source) { /* --labels LIST [DIR]: DIR is the images' folder */
		if (*mode)
			return die_usage("--labels: only when packing (expected no --info, --verify or --export)%s", "");
		if (optind + 1 < argc)
			return die_usage("--labels: expected at most one DIR after the options%s", "");
		o->root = argv[optind];
		return -1;
	}
	if (optind + 1 != argc)
		return die_usage("expected exactly one INPUT or SHARD argument%s", "");
	return -1;
}

/* A skipped image: say which and why (even with -q: data was left out). */
static void warn_skip(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "tlpack: %s (skipped)\n", msg);
}

/* Packs the source input into o->output (Ctrl-C cancels, leaving
 * nothing), saying what it wrote unless quiet; returns the exit status. */
static int do_pack(tl_pack_opts *o, const char *input)
{
	const volatile sig_atomic_t *cancelled = tl_cli_catch_signals();
	o->input = input;
	o->cancel = cancelled;
	o->warn = warn_skip;
	tl_pack_result res;
	tl_err err;
	tl_status st = tl_pack(o, &res, &err);
	if (res.stale_files)
		fprintf(stderr, "tlpack: removed %u temporary file%s (%.1f MB) that killed runs left beside %s\n",
			res.stale_files, res.stale_files == 1 ? "" : "s", res.stale_bytes / 1048576.0,
			res.output);
	if (st != TL_OK)
		return tl_cli_exit("tlpack", st, &err, cancelled);
	if (!o->quiet) {
		struct stat sb;
		double mb = stat(res.output, &sb) == 0 ? sb.st_size / 1048576.0 : 0;
		fprintf(stderr, "tlpack: wrote %s: %s, %llu train + %llu test images",
			res.output, res.dataset, (unsigned long long)res.train,
			(unsigned long long)res.test);
		if (res.other)
			fprintf(stderr, " + %llu val", (unsigned long long)res.other);
		if (res.fit != TL_FIT_AUTO)
			fprintf(stderr, ", %u classes, fit %s", res.n_classes, tl_fit_name(res.fit));
		fprintf(stderr, ", %dx%d %s, %s normalization, %.1f MiB in %.2f s\n", res.height,
			res.width, tl_dtype_name(res.dtype), tl_norm_name(o->norm), mb, res.seconds);
		if (res.skipped_bad || res.skipped_hidden || res.skipped_other)
			fprintf(stderr, "tlpack: skipped %llu unreadable image%s, %llu hidden and %llu other (not .jpg/.jpeg/.png/.ppm/.pgm) file%s\n",
				(unsigned long long)res.skipped_bad, res.skipped_bad == 1 ? "" : "s",
				(unsigned long long)res.skipped_hidden,
				(unsigned long long)res.skipped_other,
				res.skipped_other == 1 ? "" : "s");
	}
	return 0;
}

int main(int argc, char **argv)
{
	tl_pack_opts o;
	int mode;
	const char *export_what;
	int rc = parse_args(argc, argv, &o, &mode, &export_what);
	if (rc >= 0)
		return rc;
	const char *arg = argv[optind];
	if (mode == O_INFO)
		return do_info(arg);
	if (mode == O_VERIFY)
		return do_verify(arg, o.quiet);
	if (mode == O_EXPORT)
		return do_export(export_what, arg, o.output, o.quiet);
	return do_pack(&o, o.source ? o.input : arg);
}
