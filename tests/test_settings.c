/* test_settings.c - the table of training settings: defaults, the
 * checkpoint metadata round trip (and the format older checkpoints have),
 * strict parsing with ranges, and the option parser tltrain uses. */
#include "tl_test.h"

#include <getopt.h>
#include <string.h>

#include "train/settings.h"

typedef struct {
	char key[64][32];
	char val[64][1100];
	int n;
} kv;

static void put(void *arg, const char *key, const char *val)
{
	kv *m = arg;
	assert_true(m->n < 64);
	snprintf(m->key[m->n], sizeof m->key[0], "%s", key);
	snprintf(m->val[m->n], sizeof m->val[0], "%s", val);
	m->n++;
}

static const char *get(void *arg, const char *key)
{
	kv *m = arg;
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->key[i], key))
			return m->val[i];
	return NULL;
}

static void set(kv *m, const char *key, const char *val)
{
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->key[i], key)) {
			snprintf(m->val[i], sizeof m->val[0], "%s", val);
			return;
		}
	put(m, key, val);
}

/* The metadata a pre-table tltrain wrote for its defaults. */
static const char *const old_defaults[][2] = {
	{"model", "vgg16"}, {"weights", ""}, {"shard", "cifar10.tls"}, {"strategy", "finetune"},
	{"unit", ""}, {"patience", "3"}, {"max_epochs", "20"}, {"batch", "64"},
	{"warmup_epochs", "3"}, {"lr", "0.00100000005"}, {"lr2", "9.99999975e-06"}, {"opt", "adam"},
	{"momentum", "0.899999976"}, {"weight_decay", "0"}, {"nesterov", "0"}, {"schedule", "cosine"},
	{"step_size", "5"}, {"gamma", "0.100000001"}, {"plateau_patience", "2"}, {"head", ""},
	{"pool", "-1"}, {"dropout", "-1"}, {"flip", "0"}, {"crop_pad", "0"}, {"val_fraction", "0"},
	{"monitor", "val_accuracy"}, {"min_delta", "0"}, {"seed", "42"}, {"no_cache", "0"},
	{"cache_mem_mb", "4096"},
};
#define N_OLD (int)(sizeof old_defaults / sizeof old_defaults[0])

/* Settings added since, saved after crop_pad, with their defaults (a
 * checkpoint without them ran with these). */
static const char *const late_defaults[][2] = {
	{"label_smoothing", "0"}, {"tta", "0"}, {"keras", "0"}, {"head_lr_mult", "1"},
	{"precision", "fp32"}};
#define N_LATE (int)(sizeof late_defaults / sizeof late_defaults[0])

static void defaults_save_as_before(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_defaults(&c);
	assert_string_equal(c.device, "auto");
	assert_int_equal(c.threads, 0);
	kv m = {0};
	tl_train_cfg_save(&c, put, &m);
	assert_int_equal(m.n, N_OLD + N_LATE);
	int crop = 23; /* old_defaults[23] is crop_pad: the late ones follow it */
	assert_string_equal(old_defaults[crop][0], "crop_pad");
	for (int i = 0, j = 0; i < m.n; i++) {
		const char *const *want = i > crop && i <= crop + N_LATE ? late_defaults[i - crop - 1]
									 : old_defaults[j++];
		assert_string_equal(m.key[i], want[0]);
		/* the one default changed on purpose: validation is held out of
		 * train (0.1) instead of the test split (0, now --val test) */
		assert_string_equal(m.val[i], strcmp(want[0], "val_fraction") ? want[1] : "0.1");
	}
}

static void round_trip_keeps_every_value(void **state)
{
	(void)state;
	tl_train_cfg a, b;
	tl_train_defaults(&a);
	snprintf(a.model, sizeof a.model, "squeezenet");
	snprintf(a.weights, sizeof a.weights, "/w/sq.safetensors");
	snprintf(a.unit, sizeof a.unit, "fire8");
	snprintf(a.head, sizeof a.head, "512,256");
	a.strategy = TL_STRAT_SCRATCH, a.patience = 0, a.max_epochs = 7, a.batch = 16;
	a.warmup_epochs = 0, a.lr = 3e-3f, a.lr2 = 2e-6f, a.opt = TL_OPT_SGD, a.momentum = 0.95f;
	a.weight_decay = 5e-4f, a.nesterov = 1, a.sched = TL_SCHED_PLATEAU, a.step_size = 9;
	a.gamma = 0.3f, a.plateau_patience = 4, a.pool = 1, a.dropout = 0.25f, a.flip = 1;
	a.crop_pad = 4, a.val_fraction = 0.1, a.monitor_loss = 1, a.min_delta = 1e-3f;
	a.seed = 123456789, a.no_cache = 1, a.cache_mem_mb = 12;
	a.label_smoothing = 0.1f, a.tta = 1, a.keras = 1, a.sched = TL_SCHED_ONECYCLE;
	kv m = {0};
	tl_train_cfg_save(&a, put, &m);
	tl_train_defaults(&b);
	tl_err err;
	if (tl_train_cfg_load(&b, get, &m, "ck", &err) != TL_OK)
		fail_msg("%s", err.msg);
	/* every saved field, and nothing run-time (run_dir onwards) */
	assert_memory_equal(&a, &b, offsetof(tl_train_cfg, run_dir));
	assert_memory_equal((char *)&a + offsetof(tl_train_cfg, strategy),
			    (char *)&b + offsetof(tl_train_cfg, strategy),
			    offsetof(tl_train_cfg, device) - offsetof(tl_train_cfg, strategy));
}

static void old_checkpoint_metadata_loads(void **state)
{
	(void)state;
	kv m = {0};
	for (int i = 0; i < N_OLD; i++)
		put(&m, old_defaults[i][0], old_defaults[i][1]);
	set(&m, "opt", "sgd");
	set(&m, "monitor", "val_loss");
	set(&m, "val_fraction", "0.10000000000000001");
	tl_train_cfg c, d;
	memset(&c, 0x5a, sizeof c);
	tl_err err;
	if (tl_train_cfg_load(&c, get, &m, "ck", &err) != TL_OK)
		fail_msg("%s", err.msg);
	tl_train_defaults(&d);
	assert_int_equal(c.opt, TL_OPT_SGD);
	assert_int_equal(c.monitor_loss, 1);
	assert_true(c.val_fraction == 0.1);
	assert_true(c.lr == d.lr && c.lr2 == d.lr2 && c.momentum == d.momentum && c.gamma == d.gamma);
	assert_int_equal(c.pool, -1);
	assert_true(c.dropout == -1.0f);
	assert_true(c.seed == 42 && c.cache_mem_mb == 4096 && c.max_epochs == 20);
	/* settings it predates: their defaults */
	assert_true(c.label_smoothing == 0.0f && c.tta == 0 && c.keras == 0);
	/* a run of the old default validated on the test split: its
	 * checkpoint resumes doing so, not with today's held-out default */
	set(&m, "val_fraction", "0");
	if (tl_train_cfg_load(&c, get, &m, "ck", &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_true(c.val_fraction == 0);
}

static void bad_metadata_says_what_and_where(void **state)
{
	(void)state;
	static const char *const cases[][3] = {
		{"patience", "3x", "ck: metadata: patience: expected an integer in 0..10000, got '3x'"},
		{"batch", "0", "ck: metadata: batch: expected an integer in 1..4096, got '0'"},
		{"max_epochs", "10001", "max_epochs: expected a number in 0.01..10000, got '10001'"},
		{"pool", "-2", "pool: expected an integer in 0..1, got '-2'"},
		{"lr", "0", "lr: expected a number in 1e-12..100, got '0'"},
		{"lr", "", "lr: expected a number in 1e-12..100, got ''"},
		{"strategy", "transfer", "strategy: expected one of feature, finetune, scratch, got 'transfer'"},
		{"opt", "Adam", "opt: expected one of adam, sgd, got 'Adam'"},
		{"model", "resnet", "model: expected one of vgg16, squeezenet, googlenet, alexnet, mobilenetv2, baseline, got 'resnet'"},
		{"label_smoothing", "0.6", "label_smoothing: expected a number in 0..0.5, got '0.6'"},
		{"tta", "2", "tta: expected an integer in 0..1, got '2'"},
		{"schedule", "1cycle", "schedule: expected one of constant, step, cosine, plateau, onecycle, got '1cycle'"},
		{"seed", "-1", "seed: expected an integer in 0..2147483647, got '-1'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kv m = {0};
		for (int j = 0; j < N_OLD; j++)
			put(&m, old_defaults[j][0], old_defaults[j][1]);
		set(&m, cases[i][0], cases[i][1]);
		tl_train_cfg c;
		tl_train_defaults(&c);
		tl_err err;
		assert_int_equal(tl_train_cfg_load(&c, get, &m, "ck", &err), TL_EFORMAT);
		if (!strstr(err.msg, cases[i][2]))
			fail_msg("%s=%s: got \"%s\", expected \"%s\"", cases[i][0], cases[i][1], err.msg,
				 cases[i][2]);
	}
	kv m = {0};
	for (int j = 0; j < N_OLD - 1; j++) /* no cache_mem_mb */
		put(&m, old_defaults[j][0], old_defaults[j][1]);
	tl_train_cfg c;
	tl_err err;
	assert_int_equal(tl_train_cfg_load(&c, get, &m, "x/last.safetensors", &err), TL_EFORMAT);
	assert_string_equal(err.msg, "x/last.safetensors: metadata: cache_mem_mb missing (not a tltrain checkpoint?)");
}

/* Apply --name=arg (or -L arg) through the table; returns the setter's
 * result and leaves the usage message in *what. */
static int opt(tl_train_cfg *c, const char *name, const char *arg, const char **what)
{
	struct option lo[64];
	char shorts[72];
	int n = tl_train_getopt_table(lo, 64, shorts);
	assert_true(n > 30);
	for (int i = 0; i < n; i++)
		if (!strcmp(lo[i].name, name))
			return tl_train_set_option(c, lo[i].val, arg, what);
	fail_msg("no option --%s", name);
	return -2;
}

static void options_parse_strictly(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_defaults(&c);
	const char *what = NULL;
	assert_int_equal(opt(&c, "epochs", "0", &what), 1);
	assert_string_equal(what, "-e: expected epochs in 0.01..10000 (1.25: one epoch and a quarter of the next)");
	assert_int_equal(opt(&c, "epochs", "1.25x", &what), 1);
	assert_int_equal(opt(&c, "epochs", "12", &what), 0);
	assert_true(c.max_epochs == 12);
	assert_int_equal(tl_train_epoch_count(&c), 12);
	assert_int_equal(tl_train_epoch_batches(&c, 11, 782), 782);
	assert_int_equal(opt(&c, "epochs", "1.25", &what), 0);
	assert_int_equal(tl_train_epoch_count(&c), 2);
	assert_int_equal(tl_train_epoch_batches(&c, 0, 782), 782);
	assert_int_equal(tl_train_epoch_batches(&c, 1, 782), 196); /* 195.5 rounded up */
	assert_int_equal(tl_train_epoch_batches(&c, 1, 4), 1);
	assert_int_equal(opt(&c, "epochs", "0.3", &what), 0);
	assert_int_equal(tl_train_epoch_count(&c), 1);
	assert_int_equal(tl_train_epoch_batches(&c, 0, 10), 3);
	assert_int_equal(tl_train_epoch_batches(&c, 0, 1), 1); /* never none */
	assert_int_equal(opt(&c, "batch", "32k", &what), 1);
	assert_string_equal(what, "-b: expected a batch size in 1..4096");
	assert_int_equal(opt(&c, "lr", "1e-4", &what), 0);
	assert_true(c.lr == 1e-4f);
	assert_int_equal(opt(&c, "lr", "-1", &what), 1);
	assert_int_equal(opt(&c, "dropout", "-1", &what), 1); /* the default is not an option value */
	assert_int_equal(opt(&c, "pool", "gap", &what), 0);
	assert_int_equal(c.pool, 1);
	assert_int_equal(opt(&c, "pool", "1", &what), 1);
	assert_string_equal(what, "--pool: expected flatten or gap");
	assert_int_equal(opt(&c, "augment", "flip,crop", &what), 0);
	assert_true(c.flip == 1 && c.crop_pad == 4);
	assert_int_equal(opt(&c, "augment", "flip,rotate", &what), 1);
	assert_int_equal(opt(&c, "val", "0.2", &what), 0);
	assert_true(c.val_fraction == 0.2);
	assert_int_equal(opt(&c, "val", "test", &what), 0);
	assert_true(c.val_fraction == 0);
	assert_int_equal(opt(&c, "val", "0.95", &what), 1);
	assert_int_equal(opt(&c, "schedule", "step", &what), 0);
	assert_int_equal(c.sched, TL_SCHED_STEP);
	assert_int_equal(opt(&c, "opt", "sgd", &what), 0);
	assert_int_equal(c.opt, TL_OPT_SGD);
	assert_int_equal(opt(&c, "monitor", "val_loss", &what), 0);
	assert_int_equal(c.monitor_loss, 1);
	assert_int_equal(opt(&c, "nesterov", NULL, &what), 0);
	assert_int_equal(c.nesterov, 1);
	assert_int_equal(opt(&c, "log-format", "json", &what), 0);
	assert_int_equal(c.json, 1);
	assert_int_equal(opt(&c, "device", "cpu-reference", &what), 0);
	assert_string_equal(c.device, "cpu-reference");
	assert_int_equal(opt(&c, "device", "opencl:0:1", &what), 0);
	assert_int_equal(opt(&c, "device", "gpu", &what), 1);
	assert_string_equal(what, "--device: expected auto, cpu, cpu-reference or opencl[:P[:D]]");
	assert_string_equal(c.device, "opencl:0:1");
	assert_int_equal(opt(&c, "model", "resnet", &what), 1);
	assert_string_equal(c.model, "vgg16");
	assert_string_equal(what, "-m: expected vgg16, squeezenet, googlenet, alexnet, mobilenetv2 or baseline");
	assert_int_equal(opt(&c, "model", "mobilenet_v2", &what), 0); /* torchvision's spelling */
	assert_string_equal(c.model, "mobilenetv2"); /* what checkpoints record */
	assert_int_equal(opt(&c, "model", "vgg16", &what), 0);
	assert_int_equal(opt(&c, "crop", "6", &what), 0);
	assert_int_equal(c.crop_pad, 6);
	assert_int_equal(opt(&c, "crop", "65", &what), 1);
	assert_string_equal(what, "--crop: expected a padding in 0..64 pixels");
	assert_int_equal(opt(&c, "label-smoothing", "0.1", &what), 0);
	assert_true(c.label_smoothing == 0.1f);
	assert_int_equal(opt(&c, "label-smoothing", "-0.1", &what), 1);
	assert_int_equal(opt(&c, "tta", NULL, &what), 0);
	assert_int_equal(c.tta, 1);
	assert_int_equal(opt(&c, "schedule", "onecycle", &what), 0);
	assert_int_equal(c.sched, TL_SCHED_ONECYCLE);
	assert_int_equal(tl_train_set_option(&c, 'Z', "x", &what), -1);
}

static void enum_tables(void **state)
{
	(void)state;
	int v = -1;
	assert_int_equal(tl_enum_parse(tl_schedule_names, "plateau", &v), 0);
	assert_int_equal(v, TL_SCHED_PLATEAU);
	assert_int_equal(tl_enum_parse(tl_schedule_names, "Plateau", &v), -1);
	assert_int_equal(v, TL_SCHED_PLATEAU);
	assert_string_equal(tl_enum_name(tl_strategy_names, TL_STRAT_SCRATCH), "scratch");
	assert_string_equal(tl_enum_name(tl_opt_names, TL_OPT_ADAM), "adam");
	assert_string_equal(tl_enum_name(tl_strategy_names, 7), "?");
}

/* A model's defaults fill the settings not given, whatever the order. */
static void model_defaults_fill_what_was_not_given(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_defaults(&c);
	const char *what = NULL;
	assert_int_equal(opt(&c, "lr2", "0.003", &what), 0);
	assert_int_equal(opt(&c, "model", "googlenet", &what), 0);
	tl_train_model_defaults(&c);
	assert_true(c.lr2 == 0.003f);	  /* given */
	assert_int_equal(c.opt, TL_OPT_SGD); /* the network's */
	assert_int_equal(c.nesterov, 1);
	assert_int_equal(c.sched, TL_SCHED_ONECYCLE);
	assert_true(c.label_smoothing == 0.1f);
	assert_string_equal(c.unit, ""); /* "" stands for the network's unit */
	assert_string_equal(tl_train_default_unit("googlenet"), "inception_3a");
	assert_string_equal(tl_train_default_unit("squeezenet"), "fire9");
	assert_string_equal(tl_train_default_unit("vgg16"), "block5");

	tl_train_defaults(&c); /* vgg16: the table's defaults stand */
	tl_train_cfg d = c;
	tl_train_model_defaults(&c);
	assert_memory_equal(&c, &d, sizeof c);

	tl_train_defaults(&c);
	assert_int_equal(opt(&c, "model", "baseline", &what), 0);
	tl_train_model_defaults(&c);
	assert_int_equal(c.strategy, TL_STRAT_SCRATCH);
	tl_train_defaults(&c);
	assert_int_equal(opt(&c, "strategy", "feature", &what), 0);
	assert_int_equal(opt(&c, "model", "baseline", &what), 0);
	tl_train_model_defaults(&c);
	assert_int_equal(c.strategy, TL_STRAT_FEATURE);
}

/* --recipe: its values (model included) for what was not given, then the
 * network's defaults for the rest. */
static void recipe_sets_what_was_not_given(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_defaults(&c);
	const char *what = NULL;
	assert_int_equal(opt(&c, "recipe", "quick", &what), 1);
	assert_string_equal(what, "--recipe: expected fast or best");
	assert_int_equal(opt(&c, "epochs", "2", &what), 0);
	assert_int_equal(opt(&c, "recipe", "best", &what), 0);
	tl_train_model_defaults(&c);
	assert_string_equal(c.model, "googlenet");
	assert_string_equal(c.unit, "inception_3a");
	assert_int_equal(c.max_epochs, 2); /* given */
	assert_true(c.flip == 1 && c.crop_pad == 8 && c.tta == 1 && c.patience == 0);
	assert_true(c.val_fraction > 0.0999 && c.val_fraction < 0.1001); /* selection off the test set */
	assert_int_equal(c.opt, TL_OPT_SGD); /* googlenet's */
	assert_int_equal(c.sched, TL_SCHED_ONECYCLE);
	assert_true(c.label_smoothing == 0.1f && c.lr == 0.01f);
	assert_true(c.dropout < 0); /* googlenet's own 0.4 */
	/* fast: a fractional epoch count, no dropout, a small held-out slice */
	tl_train_defaults(&c);
	assert_int_equal(opt(&c, "recipe", "fast", &what), 0);
	assert_int_equal(opt(&c, "batch", "32", &what), 0);
	tl_train_model_defaults(&c);
	assert_true(c.max_epochs == 1.5 && c.time_limit == 285 && c.dropout == 0 && c.batch == 32);
	assert_true(c.label_smoothing == 0.05f && c.monitor_loss == 1);
	assert_true(c.val_fraction > 0.0199 && c.val_fraction < 0.0201);
	assert_string_equal(c.precision, "auto"); /* bf16 where the CPU has it */
	assert_int_equal(tl_train_epoch_count(&c), 2);
	/* a given --precision wins; best keeps fp32 */
	tl_train_defaults(&c);
	assert_int_equal(opt(&c, "recipe", "fast", &what), 0);
	assert_int_equal(opt(&c, "precision", "fp32", &what), 0);
	tl_train_model_defaults(&c);
	assert_string_equal(c.precision, "fp32");
	tl_train_defaults(&c);
	assert_int_equal(opt(&c, "recipe", "best", &what), 0);
	tl_train_model_defaults(&c);
	assert_string_equal(c.precision, "fp32");
	assert_int_equal(opt(&c, "precision", "fp16", &what), 1);
	assert_string_equal(what, "--precision: expected fp32, bf16 or auto");
}

/* A checkpoint keeps --precision, so a resumed run computes as the run did;
 * --precision given with --resume still wins. */
static void resume_keeps_precision_unless_given(void **state)
{
	(void)state;
	tl_train_cfg run, resumed, changed;
	tl_err err;
	const char *what;
	tl_train_defaults(&run);
	assert_int_equal(opt(&run, "precision", "auto", &what), 0);
	kv m = {0};
	tl_train_cfg_save(&run, put, &m);
	assert_string_equal(get(&m, "precision"), "auto");
	tl_train_defaults(&resumed);
	assert_int_equal(tl_train_cfg_load(&resumed, get, &m, "ck", &err), TL_OK);
	assert_string_equal(resumed.precision, "auto");
	tl_train_defaults(&changed);
	assert_int_equal(opt(&changed, "precision", "fp32", &what), 0);
	assert_int_equal(tl_train_cfg_load(&changed, get, &m, "ck", &err), TL_OK);
	assert_string_equal(changed.precision, "fp32");
	/* and any other saved setting still comes from the checkpoint */
	tl_train_defaults(&changed);
	assert_int_equal(opt(&changed, "batch", "32", &what), 0);
	assert_int_equal(tl_train_cfg_load(&changed, get, &m, "ck", &err), TL_OK);
	assert_int_equal(changed.batch, 64);
}

/* The other mains parse -b, -j, --device and --precision through the
 * table: tltrain's ranges, names and messages, the value in their own
 * variable; a rejected value leaves it as it was. */
static void other_mains_share_the_table(void **state)
{
	(void)state;
	const char *what = NULL;
	int b = 7, j = 7;
	char dev[32] = "", prec[8] = "";
	assert_int_equal(tl_setting_parse("batch", "128", &b, sizeof b, &what), 0);
	assert_int_equal(b, 128);
	assert_int_equal(tl_setting_parse("batch", "4097", &b, sizeof b, &what), 1);
	assert_string_equal(what, "-b: expected a batch size in 1..4096");
	assert_int_equal(b, 128);
	assert_int_equal(tl_setting_parse("batch", "0x10", &b, sizeof b, &what), 1); /* decimal only */
	assert_int_equal(tl_setting_parse("threads", "3", &j, sizeof j, &what), 0);
	assert_int_equal(j, 3);
	assert_int_equal(tl_setting_parse("threads", "0", &j, sizeof j, &what), 1);
	assert_string_equal(what, "-j: expected a thread count in 1..1024");
	assert_int_equal(tl_setting_parse("device", "opencl:0:1", dev, sizeof dev, &what), 0);
	assert_string_equal(dev, "opencl:0:1");
	assert_int_equal(tl_setting_parse("device", "gpu", dev, sizeof dev, &what), 1);
	assert_string_equal(what, "--device: expected auto, cpu, cpu-reference or opencl[:P[:D]]");
	assert_int_equal(tl_setting_parse("precision", "bf16", prec, sizeof prec, &what), 0);
	assert_string_equal(prec, "bf16");
	assert_int_equal(tl_setting_parse("precision", "f16", prec, sizeof prec, &what), 1);
	assert_string_equal(what, "--precision: expected fp32, bf16 or auto");
}

/* --resume takes exactly the options flagged in the table. */
static void resume_flags(void **state)
{
	(void)state;
	static const char *const yes[] = {"epochs", "threads", "device", "precision", "quiet",
					  "log-format", "no-plots", "on-nan", "model"};
	static const char *const no[] = {"batch", "lr", "unfreeze", "data", "seed", "val", "augment",
					 "output", "recipe", "no-such-option"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!tl_train_option_resumable(yes[i]))
			fail_msg("--%s should be allowed with --resume", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (tl_train_option_resumable(no[i]))
			fail_msg("--%s should not be allowed with --resume", no[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_save_as_before),
		cmocka_unit_test(round_trip_keeps_every_value),
		cmocka_unit_test(old_checkpoint_metadata_loads),
		cmocka_unit_test(bad_metadata_says_what_and_where),
		cmocka_unit_test(options_parse_strictly),
		cmocka_unit_test(enum_tables),
		cmocka_unit_test(model_defaults_fill_what_was_not_given),
		cmocka_unit_test(recipe_sets_what_was_not_given),
		cmocka_unit_test(resume_keeps_precision_unless_given),
		cmocka_unit_test(other_mains_share_the_table),
		cmocka_unit_test(resume_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
