/* tltrain - transfer learning on a tlpack shard: option parsing, weight
 * lookup and messages; src/train.c does the work. */
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
#include "train/train.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tltrain [options]            train on a shard (see tltrain(1))\n"
		"       tltrain --resume RUN_DIR     continue an interrupted run\n"
		"  -m, --model M          vgg16 (default) or squeezenet\n"
		"  -w, --weights FILE     pretrained weights (default: search $TL_WEIGHTS, ., %s)\n"
		"  -d, --data SHARD       default cifar10.tls\n"
		"  -s, --strategy S       feature, finetune (default) or scratch\n"
		"  -u, --unfreeze UNIT    finetune: unfreeze UNIT and above (block5 / fire9)\n"
		"  -p, --patience N       early stopping patience (default 3; 0: off)\n"
		"  -e, --epochs N         maximum epochs, all stages (default 20)\n"
		"  -b, --batch N          batch size (default 64)\n"
		"      --warmup-epochs N  finetune: head-only epochs first (default 3)\n"
		"      --lr X             learning rate of the head / first stage (default 1e-3)\n"
		"      --lr2 X            learning rate once unfrozen (default 1e-5)\n"
		"      --opt O            adam (default) or sgd\n"
		"      --momentum X       sgd momentum (default 0.9)\n"
		"      --nesterov         sgd with Nesterov momentum\n"
		"      --weight-decay X   L2 penalty (default 0)\n"
		"      --schedule S       cosine (default), constant, step, plateau\n"
		"      --step-size N      step: epochs between decays (default 5)\n"
		"      --gamma X          step/plateau decay factor (default 0.1)\n"
		"      --plateau-patience N  plateau: epochs without improvement (default 2)\n"
		"      --head SIZES       hidden dense layers: 256, 512,256, none\n"
		"      --pool P           head input: flatten or gap\n"
		"      --dropout X        after each hidden layer\n"
		"      --augment LIST     flip,crop (random crop with 4-pixel padding)\n"
		"      --val V            test (default) or a fraction of train to hold out\n"
		"      --monitor M        val_accuracy (default) or val_loss\n"
		"      --min-delta X      smallest change that counts as improvement\n"
		"  -o, --output DIR       run directory (default run)\n"
		"      --resume DIR       continue the run in DIR\n"
		"      --device D         cpu (default) or cpu-reference\n"
		"      --no-cache         recompute the frozen layers every epoch\n"
		"      --cache-mem MiB    larger prefix caches go to a file (default 4096)\n"
		"  -j, --threads N        compute threads (default: all cores)\n"
		"      --seed N           default 42\n"
		"  -q, --quiet            no progress, no per-epoch lines, no report on stdout\n"
		"      --log-format F     text (default) or json (one object per epoch)\n"
		"  -h, --help, -V, --version\n",
		TL_DATADIR);
}

static int bad(const char *what, const char *arg)
{
	return tl_cli_bad("tltrain", what, arg);
}

static int is_file(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Default weights: $TL_WEIGHTS (a file, or a directory to search), then
 * the current directory, then the installed data directory. */
static int find_weights(const char *model, char *out, size_t n)
{
	static const char *const vgg[] = {"vgg16.safetensors", "vgg16.tv_in1k.safetensors",
					  "vgg16-imagenet.safetensors", NULL};
	static const char *const sq[] = {"squeezenet1_1-imagenet.safetensors",
					 "squeezenet1_1.safetensors", NULL};
	const char *const *names = strcmp(model, "squeezenet") == 0 ? sq : vgg;
	const char *env = getenv("TL_WEIGHTS");
	if (env && is_file(env)) {
		snprintf(out, n, "%s", env);
		return 0;
	}
	const char *dirs[] = {env, ".", "data", TL_DATADIR};
	for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++)
		for (int i = 0; dirs[d] && names[i]; i++) {
			snprintf(out, n, "%s/%s", dirs[d], names[i]);
			if (is_file(out))
				return 0;
		}
	return -1;
}

int main(int argc, char **argv)
{
	enum {
		O_WARM = 256, O_LR, O_LR2, O_OPT, O_MOM, O_NEST, O_WD, O_SCHED, O_STEP, O_GAMMA, O_PPAT,
		O_HEAD, O_POOL, O_DROP, O_AUG, O_VAL, O_MON, O_MIND, O_RESUME, O_DEV, O_NOCACHE,
		O_CMEM, O_SEED, O_LOG
	};
	static const struct option lo[] = {
		{"model", 1, 0, 'm'}, {"weights", 1, 0, 'w'}, {"data", 1, 0, 'd'},
		{"strategy", 1, 0, 's'}, {"unfreeze", 1, 0, 'u'}, {"patience", 1, 0, 'p'},
		{"epochs", 1, 0, 'e'}, {"batch", 1, 0, 'b'}, {"warmup-epochs", 1, 0, O_WARM},
		{"lr", 1, 0, O_LR}, {"lr2", 1, 0, O_LR2}, {"opt", 1, 0, O_OPT},
		{"momentum", 1, 0, O_MOM}, {"nesterov", 0, 0, O_NEST}, {"weight-decay", 1, 0, O_WD},
		{"schedule", 1, 0, O_SCHED}, {"step-size", 1, 0, O_STEP}, {"gamma", 1, 0, O_GAMMA},
		{"plateau-patience", 1, 0, O_PPAT}, {"head", 1, 0, O_HEAD}, {"pool", 1, 0, O_POOL},
		{"dropout", 1, 0, O_DROP}, {"augment", 1, 0, O_AUG}, {"val", 1, 0, O_VAL},
		{"monitor", 1, 0, O_MON}, {"min-delta", 1, 0, O_MIND}, {"output", 1, 0, 'o'},
		{"resume", 1, 0, O_RESUME}, {"device", 1, 0, O_DEV}, {"no-cache", 0, 0, O_NOCACHE},
		{"cache-mem", 1, 0, O_CMEM}, {"threads", 1, 0, 'j'}, {"seed", 1, 0, O_SEED},
		{"quiet", 0, 0, 'q'}, {"log-format", 1, 0, O_LOG}, {"help", 0, 0, 'h'},
		{"version", 0, 0, 'V'}, {0, 0, 0, 0},
	};
	tl_train_cfg c;
	tl_train_defaults(&c);
	int resume = 0, have_model = 0, have_weights = 0;
	long v;
	double d;
	int ch;
	while ((ch = getopt_long(argc, argv, "m:w:d:s:u:p:e:b:o:j:qhV", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "vgg16") && strcmp(optarg, "squeezenet"))
				return bad("-m: expected vgg16 or squeezenet", optarg);
			snprintf(c.model, sizeof c.model, "%s", optarg);
			have_model = 1;
			break;
		case 'w': snprintf(c.weights, sizeof c.weights, "%s", optarg), have_weights = 1; break;
		case 'd': snprintf(c.shard, sizeof c.shard, "%s", optarg); break;
		case 's':
			if (tl_strategy_parse(optarg, &c.strategy))
				return bad("-s: expected feature, finetune or scratch", optarg);
			break;
		case 'u': snprintf(c.unit, sizeof c.unit, "%s", optarg); break;
		case 'p':
			if (tl_parse_long(optarg, 0, 10000, &v))
				return bad("-p: expected a patience >= 0", optarg);
			c.patience = (int)v;
			break;
		case 'e':
			if (tl_parse_long(optarg, 1, 10000, &v))
				return bad("-e: expected epochs in 1..10000", optarg);
			c.max_epochs = (int)v;
			break;
		case 'b':
			if (tl_parse_long(optarg, 1, 4096, &v))
				return bad("-b: expected a batch size in 1..4096", optarg);
			c.batch = (int)v;
			break;
		case O_WARM:
			if (tl_parse_long(optarg, 0, 10000, &v))
				return bad("--warmup-epochs: expected a count >= 0", optarg);
			c.warmup_epochs = (int)v;
			break;
		case O_LR:
			if (tl_parse_double(optarg, 1e-12, 100, &d))
				return bad("--lr: expected a positive learning rate", optarg);
			c.lr = (float)d;
			break;
		case O_LR2:
			if (tl_parse_double(optarg, 1e-12, 100, &d))
				return bad("--lr2: expected a positive learning rate", optarg);
			c.lr2 = (float)d;
			break;
		case O_OPT:
			if (!strcmp(optarg, "adam"))
				c.opt = TL_OPT_ADAM;
			else if (!strcmp(optarg, "sgd"))
				c.opt = TL_OPT_SGD;
			else
				return bad("--opt: expected adam or sgd", optarg);
			break;
		case O_MOM:
			if (tl_parse_double(optarg, 0, 0.9999, &d))
				return bad("--momentum: expected 0 <= m < 1", optarg);
			c.momentum = (float)d;
			break;
		case O_NEST: c.nesterov = 1; break;
		case O_WD:
			if (tl_parse_double(optarg, 0, 1, &d))
				return bad("--weight-decay: expected 0..1", optarg);
			c.weight_decay = (float)d;
			break;
		case O_SCHED:
			if (tl_schedule_parse(optarg, &c.sched))
				return bad("--schedule: expected constant, step, cosine or plateau", optarg);
			break;
		case O_STEP:
			if (tl_parse_long(optarg, 1, 10000, &v))
				return bad("--step-size: expected epochs >= 1", optarg);
			c.step_size = (int)v;
			break;
		case O_GAMMA:
			if (tl_parse_double(optarg, 1e-6, 1, &d))
				return bad("--gamma: expected 0 < gamma <= 1", optarg);
			c.gamma = (float)d;
			break;
		case O_PPAT:
			if (tl_parse_long(optarg, 1, 10000, &v))
				return bad("--plateau-patience: expected epochs >= 1", optarg);
			c.plateau_patience = (int)v;
			break;
		case O_HEAD: snprintf(c.head, sizeof c.head, "%s", optarg); break;
		case O_POOL:
			if (!strcmp(optarg, "flatten"))
				c.pool = 0;
			else if (!strcmp(optarg, "gap"))
				c.pool = 1;
			else
				return bad("--pool: expected flatten or gap", optarg);
			break;
		case O_DROP:
			if (tl_parse_double(optarg, 0, 0.95, &d))
				return bad("--dropout: expected 0..0.95", optarg);
			c.dropout = (float)d;
			break;
		case O_AUG: {
			char buf[64];
			snprintf(buf, sizeof buf, "%s", optarg);
			for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
				if (!strcmp(t, "flip"))
					c.flip = 1;
				else if (!strcmp(t, "crop"))
					c.crop_pad = 4;
				else if (strcmp(t, "none"))
					return bad("--augment: expected flip, crop or none (comma-separated)", optarg);
			}
			break;
		}
		case O_VAL:
			if (!strcmp(optarg, "test"))
				c.val_fraction = 0;
			else if (tl_parse_double(optarg, 1e-6, 0.9, &d))
				return bad("--val: expected test or a fraction in (0, 0.9]", optarg);
			else
				c.val_fraction = d;
			break;
		case O_MON:
			if (!strcmp(optarg, "val_accuracy"))
				c.monitor_loss = 0;
			else if (!strcmp(optarg, "val_loss"))
				c.monitor_loss = 1;
			else
				return bad("--monitor: expected val_accuracy or val_loss", optarg);
			break;
		case O_MIND:
			if (tl_parse_double(optarg, 0, 1e6, &d))
				return bad("--min-delta: expected a value >= 0", optarg);
			c.min_delta = (float)d;
			break;
		case 'o': snprintf(c.run_dir, sizeof c.run_dir, "%s", optarg); break;
		case O_RESUME: snprintf(c.run_dir, sizeof c.run_dir, "%s", optarg), resume = 1; break;
		case O_DEV:
			if (!strcmp(optarg, "cpu"))
				c.reference_backend = 0;
			else if (!strcmp(optarg, "cpu-reference"))
				c.reference_backend = 1;
			else if (!strncmp(optarg, "opencl", 6)) {
				fprintf(stderr, "tltrain: --device %s: the OpenCL backend is not built yet; use --device cpu\n", optarg);
				return 1;
			} else
				return bad("--device: expected cpu, cpu-reference or opencl[:P[:D]]", optarg);
			break;
		case O_NOCACHE: c.no_cache = 1; break;
		case O_CMEM:
			if (tl_parse_long(optarg, 0, 1L << 30, &v))
				return bad("--cache-mem: expected MiB >= 0", optarg);
			c.cache_mem_mb = v;
			break;
		case 'j':
			if (tl_parse_long(optarg, 1, 1024, &v))
				return bad("-j: expected a thread count in 1..1024", optarg);
			c.threads = (int)v;
			break;
		case O_SEED:
			if (tl_parse_long(optarg, 0, 0x7fffffffL, &v))
				return bad("--seed: expected a non-negative integer", optarg);
			c.seed = (uint64_t)v;
			break;
		case 'q': c.quiet = 1; break;
		case O_LOG:
			if (!strcmp(optarg, "json"))
				c.json = 1;
			else if (strcmp(optarg, "text"))
				return bad("--log-format: expected text or json", optarg);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tltrain (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		return bad("unexpected argument", argv[optind]);
	if (!resume && c.strategy == TL_STRAT_FEATURE && c.unit[0])
		fprintf(stderr, "tltrain: note: -u is ignored with -s feature (the base stays frozen)\n");
	if (!resume && c.strategy != TL_STRAT_SCRATCH && !have_weights &&
	    find_weights(c.model, c.weights, sizeof c.weights) != 0) {
		if (!strcmp(c.model, "vgg16"))
			fprintf(stderr,
				"tltrain: no VGG16 weights found (looked for vgg16.safetensors in $TL_WEIGHTS, ., data/ and %s).\n"
				"  Download the timm 'vgg16.tv_in1k' model.safetensors (torchvision names; pack with tlpack --norm torch),\n"
				"  or save torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict() with safetensors,\n"
				"  then pass it with -w FILE or set TL_WEIGHTS.  Keras vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5\n"
				"  (md5 6d6bbae143d832006294945121d1f1fc) needs converting to OIHW safetensors first.\n"
				"  Or train without pretrained weights: -s scratch.\n",
				TL_DATADIR);
		else
			fprintf(stderr, "tltrain: no SqueezeNet 1.1 weights found (squeezenet1_1-imagenet.safetensors in $TL_WEIGHTS, ., data/, %s); pass -w FILE\n",
				TL_DATADIR);
		return 1;
	}
	if (resume && !have_model)
		c.model[0] = 0; /* take it from the checkpoint */
	const volatile sig_atomic_t *cancelled = tl_cli_catch_signals();
	c.cancel = cancelled;
	tl_train_result r;
	tl_err err;
	tl_status st = tl_train(&c, resume, &r, &err);
	if (st == TL_EINTR) {
		fprintf(stderr, "tltrain: %s\n", err.msg);
		return 128 + (*cancelled ? (int)*cancelled : SIGINT);
	}
	if (st != TL_OK) {
		fprintf(stderr, "tltrain: %s\n", err.msg);
		return st == TL_EUSAGE ? 2 : 1;
	}
	if (!c.quiet)
		fprintf(stderr, "tltrain: done: test accuracy %.4f, best epoch %d of %d%s; %s/{best,last}.safetensors, history.csv, report.txt\n",
			r.test_accuracy, r.best_epoch, r.epochs_run, r.stopped_early ? " (stopped early)" : "",
			c.run_dir);
	return 0;
}
