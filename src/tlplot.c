/* tlplot - pictures of training runs: accuracy and loss by epoch (train
 * vs validation, the unfreeze point and best epoch marked), the
 * confusion heatmap, several runs' curves overlaid with a summary
 * table (picture and CSV) of the comparative study, and the top losses.
 * Option parsing only: src/plot/run.c reads runs and draws,
 * src/train/predcsv.c reads predictions and draws the top losses. */
#define _GNU_SOURCE /* asprintf */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot/run.h"
#include "train/predcsv.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlplot [-o DIR] [-f png,svg] [-t] RUN_DIR|HISTORY.csv...\n"
		"       tlplot --top-losses [-n N] [-d SHARD] [-o DIR] [-f png,svg] RUN_DIR|PREDICTIONS.csv\n"
		"  one run:       DIR/history.EXT (accuracy and loss, train vs validation)\n"
		"                 and DIR/confusion.EXT (when the run has confusion.csv)\n"
		"  several runs:  DIR/compare.EXT (validation curves overlaid), DIR/summary.EXT\n"
		"                 and DIR/summary.csv (model, strategy, params, trainable, train\n"
		"                 time, best epoch, test accuracy, macro-F1, latency, device)\n"
		"  -o, --output DIR     where to write, created if need be (default: the run's\n"
		"                       directory for one run, the current directory for several)\n"
		"  -f, --format LIST    png, svg or png,svg (default png,svg)\n"
		"  -t, --train          several runs: overlay the training curves too\n"
		"      --top-losses     DIR/top_losses.EXT: the misclassified images of the run's\n"
		"                       predictions.csv (or of a tleval --predictions CSV) with the\n"
		"                       highest loss, with name, true and predicted class, probability\n"
		"  -n, --top N          --top-losses: how many (1..256, default 16)\n"
		"  -d, --data SHARD     --top-losses: the shard the predictions are of (default: the\n"
		"                       one the run's report.json names)\n"
		"  -q, --quiet          do not list the files written\n"
		"  -h, --help, -V, --version\n"
		"see tlplot(1)\n");
}

/* --top-losses PATH: DIR/top_losses.EXT for each format, all or none;
 * returns the exit status. */
static int top_losses(const char *path, const char *shard, const char *out, int top,
		      const char *const *exts, int n_exts, int quiet)
{
	char *dir, *csv, *sh, *paths[2] = {NULL, NULL};
	tl_err err;
	tl_status st = tl_predcsv_locate(path, shard, &dir, &csv, &sh, &err);
	if (st != TL_OK)
		return tl_cli_exit("tlplot", st, &err, NULL);
	const char *od = out ? out : dir;
	for (int e = 0; e < n_exts && st == TL_OK; e++)
		if (asprintf(&paths[e], "%s/top_losses.%s", od, exts[e]) < 0) {
			paths[e] = NULL;
			st = tl_seterr(&err, TL_ENOMEM, "out of memory");
		}
	tl_plot_batch b = TL_PLOT_BATCH_INIT;
	tl_predcsv_plot_result r;
	if (st == TL_OK && out)
		st = tl_run_mkdirs(out, &err);
	if (st == TL_OK)
		st = tl_predcsv_plot(csv, sh, top, (const char *const *)paths, n_exts, &b, &r, &err);
	if (st == TL_OK)
		st = tl_plot_batch_commit(&b, &err);
	tl_plot_batch_abort(&b);
	for (int e = 0; st == TL_OK && !quiet && e < n_exts; e++)
		fprintf(stderr, "tlplot: wrote %s: %d of the %llu misclassified images of %llu (%s, shard %s)\n",
			paths[e], r.shown, (unsigned long long)r.wrong, (unsigned long long)r.rows, csv, sh);
	free(paths[0]), free(paths[1]);
	free(dir), free(csv), free(sh);
	return tl_cli_exit("tlplot", st, &err, NULL);
}

int main(int argc, char **argv)
{
	enum { O_TOP_LOSSES = 256 };
	static const struct option lo[] = {
		{"output", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
		{"train", no_argument, 0, 't'},        {"top-losses", no_argument, 0, O_TOP_LOSSES},
		{"top", required_argument, 0, 'n'},    {"data", required_argument, 0, 'd'},
		{"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
	};
	const char *out = NULL, *exts[2], *shard = NULL;
	int n_exts = 0, quiet = 0, train = 0, c, losses = 0, top = 0;
	long v;
	while ((c = getopt_long(argc, argv, "o:f:tn:d:qhV", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!optarg[0])
				return tl_cli_bad("tlplot", "-o: expected a directory", optarg);
			out = optarg;
			break;
		case 't': train = 1; break;
		case O_TOP_LOSSES: losses = 1; break;
		case 'n':
			if (tl_parse_long(optarg, 1, 256, &v))
				return tl_cli_bad("tlplot", "-n: expected a count in 1..256", optarg);
			top = (int)v;
			break;
		case 'd':
			if (!optarg[0])
				return tl_cli_bad("tlplot", "-d: expected a shard", optarg);
			shard = optarg;
			break;
		case 'f':
			n_exts = 0;
			if (!strcmp(optarg, "png") || !strcmp(optarg, "png,svg") || !strcmp(optarg, "svg,png"))
				exts[n_exts++] = "png";
			if (!strcmp(optarg, "svg") || !strcmp(optarg, "png,svg") || !strcmp(optarg, "svg,png"))
				exts[n_exts++] = "svg";
			if (!n_exts)
				return tl_cli_bad("tlplot", "-f: expected png, svg or png,svg", optarg);
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tlplot (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!n_exts)
		exts[n_exts++] = "png", exts[n_exts++] = "svg";
	int n = argc - optind;
	if (!losses && (top || shard)) {
		fprintf(stderr, "tlplot: %s is for --top-losses\nTry 'tlplot --help'.\n", top ? "-n" : "-d");
		return 2;
	}
	if (losses && (train || n != 1)) {
		fprintf(stderr, "tlplot: --top-losses %s\nTry 'tlplot --help'.\n",
			train ? "draws no curves (-t is for several runs)"
			      : "expected one run directory or predictions CSV");
		return 2;
	}
	if (losses)
		return top_losses(argv[optind], shard, out, top ? top : 16, exts, n_exts, quiet);
	if (n < 1) {
		fprintf(stderr, "tlplot: expected a run directory or history CSV\nTry 'tlplot --help'.\n");
		return 2;
	}
	tl_rundata *runs = calloc((size_t)n, sizeof *runs);
	if (!runs) {
		fprintf(stderr, "tlplot: out of memory\n");
		return 1;
	}
	tl_err err;
	tl_status st = TL_OK;
	int loaded = 0;
	for (; loaded < n && st == TL_OK; loaded++)
		if ((st = tl_run_load(&runs[loaded], argv[optind + loaded], &err)) != TL_OK)
			break;
	/* -o DIR is made as mkdir -p would, once the runs have loaded */
	if (st == TL_OK && out)
		st = tl_run_mkdirs(out, &err);
	if (st == TL_OK && n == 1) {
		/* all pictures or none (plot/run.c renders them all first) */
		const char *dir = out ? out : runs[0].dir;
		int written = 0;
		st = tl_run_plot(&runs[0], dir, exts, n_exts, &written, &err);
		if (st == TL_OK && !quiet)
			for (int e = 0; e < n_exts; e++) {
				fprintf(stderr, "tlplot: wrote %s/history.%s (%d epochs)\n", dir, exts[e], runs[0].n);
				if (runs[0].k)
					fprintf(stderr, "tlplot: wrote %s/confusion.%s (%d classes)\n", dir, exts[e],
						runs[0].k);
			}
	} else if (st == TL_OK) {
		const char *dir = out ? out : ".";
		st = tl_run_plot_compare(runs, n, dir, exts, n_exts, train, NULL, &err);
		for (int e = 0; st == TL_OK && !quiet && e < n_exts; e++)
			fprintf(stderr, "tlplot: wrote %s/compare.%s (%d runs%s) and %s/summary.%s\n", dir,
				exts[e], n, train ? ", validation and training curves" : "", dir, exts[e]);
		if (st == TL_OK && !quiet)
			fprintf(stderr, "tlplot: wrote %s/summary.csv (%d runs)\n", dir, n);
	}
	for (int i = 0; i < loaded; i++)
		tl_run_free(&runs[i]);
	free(runs);
	return tl_cli_exit("tlplot", st, &err, NULL);
}
