/* tltrain - transfer learning on a tlpack shard: option parsing, weight
 * lookup and messages; src/train/ does the work (the options themselves are
 * the settings' table, src/train/settings.c). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nn/device.h"
#include "nn/weights_find.h"
#include "train/train.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tltrain [options]            train on a shard (see tltrain(1))\n"
		"       tltrain --resume RUN_DIR     continue an interrupted run\n"
		"  -m, --model M          vgg16 (default), squeezenet, googlenet, alexnet,\n"
		"                         mobilenetv2 or baseline (each with defaults of its own)\n"
		"      --recipe R         fast or best: GoogLeNet recipes of README's accuracy table\n"
		"                         (shard: tlpack -r 64 for fast, -r 96 for best); options given win\n"
		"  -w, --weights FILE     pretrained weights (default: search $TL_WEIGHTS, ., data/,\n"
		"                         ~/.local/share/tlkit, %s, then ~/.keras/models: tltrain(1) FILES)\n"
		"  -d, --data SHARD       default cifar10.tls\n"
		"  -s, --strategy S       feature, finetune (default) or scratch\n"
		"  -u, --unfreeze UNIT    finetune: unfreeze UNIT and above (block5 / fire9)\n"
		"  -p, --patience N       early stopping patience (default 3; 0: off)\n"
		"  -e, --epochs N         maximum epochs, all stages (default 20); a fraction\n"
		"                         trains part of the last (1.25: a quarter of the second)\n"
		"      --time-limit S     end the run, final test included, within S seconds:\n"
		"                         the last stage trains fewer epochs if -e does not fit\n"
		"  -b, --batch N          batch size (default 64)\n"
		"      --warmup-epochs N  finetune: head-only epochs first (default 3)\n"
		"      --lr X             learning rate of the head / first stage (default 1e-3)\n"
		"      --lr2 X            learning rate once unfrozen (default 1e-5)\n"
		"      --opt O            adam (default) or sgd\n"
		"      --momentum X       sgd momentum (default 0.9)\n"
		"      --nesterov         sgd with Nesterov momentum\n"
		"      --head-lr-mult X   the new head learns at X times the rate (default 1)\n"
		"      --weight-decay X   L2 penalty (default 0)\n"
		"      --schedule S       cosine (default), constant, step, plateau, onecycle\n"
		"      --step-size N      step: epochs between decays (default 5)\n"
		"      --gamma X          step/plateau decay factor (default 0.1)\n"
		"      --plateau-patience N  plateau: epochs without improvement (default 2)\n"
		"      --head SIZES       hidden dense layers: 256, 512,256, none\n"
		"      --pool P           head input: flatten or gap\n"
		"      --dropout X        after each hidden layer\n"
		"      --augment LIST     flip,crop (random crop with 4-pixel padding)\n"
		"      --crop PAD         random crop after padding by PAD pixels (0: none)\n"
		"      --label-smoothing X  smooth the training targets by X (default 0)\n"
		"      --tta              evaluate each image and its mirror, averaging logits\n"
		"      --val V            test (default) or a fraction of train to hold out\n"
		"      --monitor M        val_accuracy (default) or val_loss\n"
		"      --min-delta X      smallest change that counts as improvement\n"
		"  -o, --output DIR       run directory (default run)\n"
		"      --resume DIR       continue the run in DIR\n"
		"      --device D         auto (default: an OpenCL GPU if any, else cpu), cpu,\n"
		"                         cpu-reference or opencl[:PLATFORM[:DEVICE]]\n"
		"      --precision P      cpu GEMM operands: fp32 (default), bf16 (AVX512-BF16;\n"
		"                         about 1.5x the GEMM speed, 8-bit mantissas) or auto\n"
		"      --list-devices     list the OpenCL platforms and devices\n"
		"      --no-cache         recompute the frozen layers every epoch\n"
		"      --cache-mem MiB    larger prefix caches go to a file (default 4096)\n"
		"  -j, --threads N        compute threads (default: all cores)\n"
		"      --seed N           default 42\n"
		"  -q, --quiet            no progress, no per-epoch lines, no report on stdout\n"
		"      --log-format F     text (default) or json (one object per epoch)\n"
		"      --no-plots         no history/confusion .png/.svg in the run directory\n"
		"  -h, --help, -V, --version\n",
		TL_DATADIR);
}

static int bad(const char *what, const char *arg)
{
	return tl_cli_bad("tltrain", what, arg);
}

/* Default weights: the lookup of tltrain(1) FILES (src/nn/weights_find.c);
 * a Keras .h5 found there is imported once, and that is said.  0: found,
 * -1: nothing found; an import that fails ends the program. */
static int find_weights(const char *model, char *out, size_t n)
{
	tl_weights_found w;
	tl_err err;
	if (tl_weights_find(model, TL_DATADIR, &w, &err) != TL_OK) {
		fprintf(stderr, "tltrain: %s\n", err.msg);
		exit(1);
	}
	if (w.imported && w.pth)
		fprintf(stderr, "tltrain: imported PyTorch weights %s (%s format, xxh3 %s) into %s\n",
			w.from, w.pth_info.format, w.pth_info.xxh3, w.path);
	else if (w.imported)
		fprintf(stderr, "tltrain: imported Keras weights %s (%s layout, md5 %s%s%s) into %s\n",
			w.from, w.info.layout, w.info.md5, w.info.note[0] ? "; " : "", w.info.note, w.path);
	size_t len = strlen(w.path);
	if (len >= n) {
		fprintf(stderr, "tltrain: %s: path too long (expected under %zu bytes)\n", w.path, n);
		exit(1);
	}
	memcpy(out, w.path, len + 1);
	return len ? 0 : -1;
}

static void no_weights(const char *model)
{
	if (!strcmp(model, "vgg16"))
		fprintf(stderr,
			"tltrain: no VGG16 weights found (looked for vgg16.safetensors in $TL_WEIGHTS, ., data/,\n"
			"  ~/.local/share/tlkit and %s, and for Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5\n"
			"  in ~/.keras/models, which is imported by itself: see tltrain(1) FILES).\n"
			"  Download the timm 'vgg16.tv_in1k' model.safetensors (torchvision names; pack with tlpack --norm torch),\n"
			"  or save torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict() with safetensors,\n"
			"  then pass it with -w FILE or set TL_WEIGHTS.  A Keras .h5 elsewhere: tlweights import FILE.h5\n"
			"  (Keras' notop file has md5 6d6bbae143d832006294945121d1f1fc).\n"
			"  Or train without pretrained weights: -s scratch.\n",
			TL_DATADIR);
	else {
		char where[8192];
		tl_weights_where(model, TL_DATADIR, where, sizeof where);
		if (!tl_weights_exist_for(model))
			fprintf(stderr, "tltrain: %s has no pretrained weights, and -s feature and -s finetune start from them:\n"
				"  train it with -s scratch, or pass -w FILE with the weights of an earlier %s run\n",
				model, model);
		else
			fprintf(stderr,
				"tltrain: no %s weights found (looked for %s).\n"
				"  Pass -w FILE with torchvision or timm safetensors (torchvision names; pack with tlpack --norm torch),\n"
				"  or a Keras .h5 elsewhere: tlweights import FILE.h5 -o FILE.safetensors (see tltrain(1) FILES).\n"
				"  Or train without pretrained weights: -s scratch.\n",
				model, where);
	}
}

enum { O_RESUME = 1, O_LIST, O_HELP = 'h', O_VERSION = 'V' };

static int have_epochs; /* -e given: with --resume it changes the run's total */

/* Options into c (the settings' table, plus --resume, --help, --version).
 * Returns -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, tl_train_cfg *c, int *resume, int *have_model)
{
	struct option lo[64];
	char shorts[72];
	int n = tl_train_getopt_table(lo, 60, shorts);
	if (n < 0)
		return 1;
	lo[n++] = (struct option){"resume", 1, 0, O_RESUME};
	lo[n++] = (struct option){"list-devices", 0, 0, O_LIST};
	lo[n++] = (struct option){"help", 0, 0, O_HELP};
	lo[n++] = (struct option){"version", 0, 0, O_VERSION};
	lo[n] = (struct option){0, 0, 0, 0};
	strcat(shorts, "hV");
	int ch;
	const char *fixed = NULL; /* a run setting given: refused with --resume */
	char resume_dir[sizeof c->run_dir] = "";
	while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const char *what;
		for (int i = 0; i < n; i++)
			if (lo[i].val == ch && !tl_train_option_resumable(lo[i].name) && ch != O_RESUME &&
			    !fixed)
				fixed = lo[i].name;
		if (ch == 'm')
			*have_model = 1;
		if (ch == 'e')
			have_epochs = 1;
		switch (ch) {
		case O_RESUME: snprintf(resume_dir, sizeof resume_dir, "%s", optarg), *resume = 1; break;
		case O_HELP: usage(stdout); return 0;
		case O_LIST: {
			tl_err err;
			if (tl_device_list(stdout, &err) == TL_OK)
				return 0;
			fprintf(stderr, "tltrain: %s\n", err.msg);
			return 1;
		}
		case O_VERSION: printf("tltrain (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: {
			int e = tl_train_set_option(c, ch, optarg, &what);
			if (e < 0) {
				usage(stderr);
				return 2;
			}
			if (e > 0)
				return bad(what, optarg);
		}
		}
	}
	if (optind != argc)
		return bad("unexpected argument", argv[optind]);
	if (*resume && fixed) {
		fprintf(stderr, "tltrain: --resume %s: --%s cannot change a run (its checkpoint keeps the run's settings); "
			"with --resume only -e, -j, --device, --precision, -m, -q, --log-format, --no-plots and --on-nan apply\n"
			"Try 'tltrain --help'.\n", resume_dir, fixed);
		return 2;
	}
	if (*resume)
		snprintf(c->run_dir, sizeof c->run_dir, "%s", resume_dir);
	if (!*resume && c->strategy == TL_STRAT_SCRATCH && c->unit[0])
		return bad("-u: a unit to unfreeze needs -s finetune (scratch trains everything)", c->unit);
	return -1;
}

int main(int argc, char **argv)
{
	tl_train_cfg c;
	tl_train_defaults(&c);
	int resume = 0, have_model = 0;
	int rc = parse_args(argc, argv, &c, &resume, &have_model);
	if (rc >= 0)
		return rc;
	if (!resume)
		tl_train_model_defaults(&c);
	if (!resume && c.strategy == TL_STRAT_FEATURE && c.unit[0])
		fprintf(stderr, "tltrain: note: -u is ignored with -s feature (the base stays frozen)\n");
	if (!resume && c.strategy != TL_STRAT_SCRATCH && !c.weights[0] &&
	    find_weights(c.model, c.weights, sizeof c.weights) != 0) {
		no_weights(c.model);
		return 1;
	}
	if (resume && !have_model)
		c.model[0] = 0; /* take it from the checkpoint */
	if (resume && have_epochs)
		c.resume_epochs = c.max_epochs;
	const volatile sig_atomic_t *cancelled = tl_cli_catch_signals();
	c.cancel = cancelled;
	tl_train_result r;
	tl_err err;
	tl_status st = tl_train(&c, resume, &r, &err);
	if (st == TL_OK && !c.quiet)
		fprintf(stderr, "tltrain: done: test accuracy %.4f, best epoch %d of %d%s; %s/{best,last}.safetensors, history.csv, report.txt\n",
			r.test_accuracy, r.best_epoch, r.epochs_run, r.stopped_early ? " (stopped early)" : "",
			c.run_dir);
	return tl_cli_exit("tltrain", st, &err, cancelled);
}
