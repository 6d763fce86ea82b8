/* test_train.c - the training driver on a small synthetic CIFAR shard with
 * the real SqueezeNet 1.1 weights at 32x32, reference backend, 1 thread:
 * loss decreases, early stopping and restore-best, exact resume after an
 * interruption, the prefix cache changes nothing, a corrupt chunk is
 * caught by the loader, and bad set-ups fail without touching a run. */
#define _GNU_SOURCE
#include "tl_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "data/pack.h"
#include "data/shard.h"
#include "nn/models.h"
#include "nn/safetensors.h"
#include "train/schedule.h"
#include "train/train.h"
#include "train/forward.h"

static char dir[256], shard[300], weights[1024];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/tl_test_train.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	const char *top = getenv("top_srcdir");
	snprintf(weights, sizeof weights, "%s/data/squeezenet1_1-imagenet.safetensors", top ? top : ".");
	char tar[300];
	snprintf(tar, sizeof tar, "%s/in.tar.gz", dir);
	snprintf(shard, sizeof shard, "%s/s.tls", dir);
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.per_batch = 12; /* 60 train */
	fo.test_count = 20;
	if (fixture_write(tar, &fo))
		return -1;
	tl_pack_opts po = {0};
	po.input = tar;
	po.output = shard;
	po.height = po.width = 32;
	po.dtype = TL_DTYPE_F32;
	po.norm = TL_NORM_CAFFE;
	po.threads = 1;
	po.quiet = 1;
	tl_pack_result pr;
	tl_err err;
	return tl_pack(&po, &pr, &err) == TL_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

static void base_cfg(tl_train_cfg *c, const char *run)
{
	tl_train_defaults(c);
	snprintf(c->model, sizeof c->model, "squeezenet");
	snprintf(c->weights, sizeof c->weights, "%s", weights);
	snprintf(c->shard, sizeof c->shard, "%s", shard);
	snprintf(c->run_dir, sizeof c->run_dir, "%s/%s", dir, run);
	c->strategy = TL_STRAT_FINETUNE;
	snprintf(c->unit, sizeof c->unit, "fire9");
	c->max_epochs = 4;
	c->warmup_epochs = 2;
	c->batch = 16;
	c->patience = 0;
	c->lr = 1e-3f;
	c->lr2 = 1e-4f;
	c->threads = 1;
	c->quiet = 1;
	snprintf(c->device, sizeof c->device, "cpu-reference");
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *b = calloc(1, 1 << 16);
	size_t n = fread(b, 1, (1 << 16) - 1, f);
	b[n] = 0;
	fclose(f);
	return b;
}

/* history.csv without the timing columns (seconds, images_per_s). */
static char *history_values(const char *run)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s/history.csv", dir, run);
	char *s = slurp(path);
	assert_non_null(s);
	char *out = calloc(1, strlen(s) + 1), *o = out;
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		int commas = 0;
		for (char *p = line; *p; p++) {
			if (*p == ',' && ++commas == 6)
				break;
			*o++ = *p;
		}
		*o++ = '\n';
	}
	free(s);
	return out;
}

static void loss_decreases_and_files_exist(void **state)
{
	(void)state;
	tl_train_cfg c;
	base_cfg(&c, "a");
	c.strategy = TL_STRAT_FEATURE;
	c.max_epochs = 5;
	c.lr = 3e-3f;
	tl_train_result r;
	tl_err err;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(r.epochs_run, 5);
	char *h = history_values("a");
	double l1, l5;
	char *p = strchr(h, '\n') + 1; /* skip the header */
	assert_int_equal(sscanf(p, "1,%*f,%lf", &l1), 1);
	p = strstr(p, "\n5,") + 1;
	assert_int_equal(sscanf(p, "5,%*f,%lf", &l5), 1);
	if (!(l5 < l1 * 0.8))
		fail_msg("training loss went from %g to %g", l1, l5);
	free(h);
	const char *files[] = {"best.safetensors", "last.safetensors", "history.csv", "history.json",
			       "report.txt"};
	for (int i = 0; i < 5; i++) {
		char path[600];
		struct stat sb;
		snprintf(path, sizeof path, "%s/a/%s", dir, files[i]);
		assert_int_equal(stat(path, &sb), 0);
	}
	char path[600];
	snprintf(path, sizeof path, "%s/a/report.txt", dir);
	char *rep = slurp(path);
	assert_non_null(strstr(rep, "test accuracy:"));
	assert_non_null(strstr(rep, "confusion matrix"));
	assert_non_null(strstr(rep, "macro avg"));
	assert_non_null(strstr(rep, "peak memory:"));
	free(rep);
	/* a second run into the same directory is refused, nothing touched */
	struct stat before, after;
	snprintf(path, sizeof path, "%s/a/last.safetensors", dir);
	stat(path, &before);
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "--resume"));
	stat(path, &after);
	assert_true(before.st_mtim.tv_nsec == after.st_mtim.tv_nsec && before.st_size == after.st_size);
}

/* The parameters the report was computed with, kept by on_final. */
typedef struct {
	float *data;
	size_t n;
} final_params;

static void keep_final(void *arg, const tl_net *net)
{
	final_params *f = arg;
	f->n = net->n_param_floats;
	f->data = malloc(f->n * sizeof(float));
	memcpy(f->data, net->param_block, f->n * sizeof(float));
}

/* Do the parameters equal, byte for byte, the tensors in a file?  The
 * first differing tensor's name goes to *which. */
static int same_as_file(const final_params *f, const tl_train_cfg *c, const char *file,
			const char **which)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", c->run_dir, file);
	tl_st_file *st;
	tl_err err;
	if (tl_st_open(&st, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	/* the tensors of the net, in parameter-block order */
	tl_model_cfg mc;
	tl_model_defaults(&mc, c->model);
	mc.height = mc.width = 32;
	mc.n_classes = 10;
	tl_net *net;
	assert_int_equal(tl_model_build(&mc, &net, &err), TL_OK);
	assert_int_equal(net->n_param_floats, f->n);
	int same = 1;
	for (int i = 0; i < net->n_params && same; i++) {
		const tl_param *p = &net->params[i];
		const tl_st_tensor *t = tl_st_find(st, p->name);
		assert_non_null(t);
		assert_int_equal(t->nbytes, p->size * sizeof(float));
		same = memcmp(t->data, f->data + p->off, t->nbytes) == 0;
		*which = p->name;
	}
	tl_net_free(net);
	tl_st_close(st);
	return same;
}

static void early_stopping_restores_best(void **state)
{
	(void)state;
	tl_train_cfg c;
	base_cfg(&c, "es");
	c.strategy = TL_STRAT_FEATURE;
	c.max_epochs = 8;
	c.patience = 2;
	c.min_delta = 10.0f; /* nothing after epoch 1 counts as better */
	final_params f = {0};
	c.on_final = keep_final;
	c.on_final_arg = &f;
	tl_train_result r;
	tl_err err;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_true(r.stopped_early);
	assert_int_equal(r.epochs_run, 3);
	assert_int_equal(r.best_epoch, 1);
	assert_non_null(f.data);
	/* the report's weights are epoch 1's (best.safetensors), byte for
	 * byte, and not the last epoch's (last.safetensors): trained on */
	const char *which = NULL;
	if (!same_as_file(&f, &c, "best.safetensors", &which))
		fail_msg("restored weights differ from best.safetensors in %s", which);
	assert_false(same_as_file(&f, &c, "last.safetensors", &which));
	free(f.data);
}

static void resume_equals_uninterrupted(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	base_cfg(&c, "full");
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	double acc_full = r.test_accuracy;
	/* interrupted mid-epoch (7 batches of 4 per epoch), then twice more */
	base_cfg(&c, "cut");
	c.cancel_after = 6;
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EINTR);
	assert_non_null(strstr(err.msg, "--resume"));
	for (int i = 0; i < 2; i++) {
		tl_train_cfg rc;
		base_cfg(&rc, "cut");
		rc.model[0] = 0;
		rc.cancel_after = 3;
		assert_int_equal(tl_train(&rc, 1, &r, &err), TL_EINTR);
	}
	tl_train_cfg rc;
	base_cfg(&rc, "cut");
	if (tl_train(&rc, 1, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	char *a = history_values("full"), *b = history_values("cut");
	assert_string_equal(a, b);
	assert_close(r.test_accuracy, acc_full, 0, 0);
	free(a), free(b);
	/* resuming with another model is refused */
	base_cfg(&rc, "cut");
	snprintf(rc.model, sizeof rc.model, "vgg16");
	assert_int_equal(tl_train(&rc, 1, &r, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "is a squeezenet run, not vgg16"));
}

/* One channel-summed running statistic of a checkpoint (sum of NAME). */
static double st_sum(const char *run, const char *file, const char *name, int64_t n)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s/%s", dir, run, file);
	tl_st_file *f;
	tl_err err;
	if (tl_st_open(&f, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	float *v = calloc((size_t)n, sizeof *v);
	if (tl_st_read_f32(f, name, 1, &n, v, &err) != TL_OK)
		fail_msg("%s", err.msg);
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += v[i];
	free(v);
	tl_st_close(f);
	return s;
}

/* MobileNetV2 (batch norm, ReLU6, depthwise, residual adds) trains end to
 * end: from scratch its running statistics move and are saved; fine-tuned
 * from that checkpoint with the base frozen below features.14, the frozen
 * batch norms keep their running statistics (evaluation mode, as Keras
 * freezes a base) while the trainable ones update; and the run resumes
 * exactly after interruptions. */
static void batchnorm_network_trains_and_resumes(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	base_cfg(&c, "mnv2a");
	snprintf(c.model, sizeof c.model, "mobilenetv2");
	c.weights[0] = 0;
	c.strategy = TL_STRAT_SCRATCH;
	c.max_epochs = 2;
	snprintf(c.device, sizeof c.device, "cpu");
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	/* scratch: running mean starts at 0, variance at 1; both moved */
	double m0 = st_sum("mnv2a", "last.safetensors", "features.0.1.running_mean", 32);
	double v0 = st_sum("mnv2a", "last.safetensors", "features.0.1.running_var", 32);
	double m14 = st_sum("mnv2a", "last.safetensors", "features.14.conv.0.1.running_mean", 576);
	if (fabs(m0) < 1e-3 || fabs(v0 - 32) < 1e-3 || fabs(m14) < 1e-3)
		fail_msg("running statistics did not move: %g %g %g", m0, v0, m14);
	char from[600];
	snprintf(from, sizeof from, "%s/mnv2a/last.safetensors", dir);
	static const char *const runs[2] = {"mnv2b", "mnv2c"};
	for (int k = 0; k < 2; k++) {
		base_cfg(&c, runs[k]);
		snprintf(c.model, sizeof c.model, "mobilenetv2");
		snprintf(c.weights, sizeof c.weights, "%s", from);
		snprintf(c.unit, sizeof c.unit, "features.14");
		snprintf(c.device, sizeof c.device, "cpu");
		c.max_epochs = 3;
		c.warmup_epochs = 1;
		c.cancel_after = k ? 5 : 0; /* 4 batches an epoch: stopped in epoch 2 */
		tl_status st = tl_train(&c, 0, &r, &err);
		assert_int_equal(st, k ? TL_EINTR : TL_OK);
	}
	tl_train_cfg rc;
	base_cfg(&rc, "mnv2c");
	rc.model[0] = 0;
	snprintf(rc.device, sizeof rc.device, "cpu");
	if (tl_train(&rc, 1, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	char *a = history_values("mnv2b"), *b = history_values("mnv2c");
	assert_string_equal(a, b);
	free(a), free(b);
	for (int k = 0; k < 2; k++) {
		assert_true(st_sum(runs[k], "last.safetensors", "features.0.1.running_mean", 32) == m0);
		assert_true(st_sum(runs[k], "last.safetensors", "features.0.1.running_var", 32) == v0);
		double m = st_sum(runs[k], "last.safetensors", "features.14.conv.0.1.running_mean", 576);
		if (fabs(m - m14) < 1e-6)
			fail_msg("%s: trainable batch norm's running mean did not move", runs[k]);
	}
	assert_true(st_sum("mnv2b", "last.safetensors", "features.14.conv.0.1.running_mean", 576) ==
		    st_sum("mnv2c", "last.safetensors", "features.14.conv.0.1.running_mean", 576));
}

static void prefix_cache_changes_nothing(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r1, r2;
	tl_err err;
	base_cfg(&c, "cache");
	c.max_epochs = 3;
	c.warmup_epochs = 1;
	snprintf(c.unit, sizeof c.unit, "fire8");
	if (tl_train(&c, 0, &r1, &err) != TL_OK)
		fail_msg("%s", err.msg);
	base_cfg(&c, "nocache");
	c.max_epochs = 3;
	c.warmup_epochs = 1;
	snprintf(c.unit, sizeof c.unit, "fire8");
	c.no_cache = 1;
	if (tl_train(&c, 0, &r2, &err) != TL_OK)
		fail_msg("%s", err.msg);
	char *a = history_values("cache"), *b = history_values("nocache");
	assert_string_equal(a, b);
	free(a), free(b);
}

/* --tta, worked out here with the final weights: each test image and its
 * mirror through the net one at a time, logits averaged, argmax and plain
 * cross-entropy (the training's label smoothing is not in the report). */
typedef struct {
	double acc, loss;
	int n;
} tta_truth;

static void tta_by_hand(void *arg, const tl_net *cnet)
{
	tta_truth *t = arg;
	tl_net *net = (tl_net *)cnet; /* the run is over: its activations are free */
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, shard, &err) != TL_OK)
		fail_msg("%s", err.msg);
	int te = tl_shard_split_find(sh, "test"), out = net->layers[net->n_layers - 1].out;
	int k = tl_net_out_size(net, out), row = tl_net_out_size(net, 0);
	float *x = malloc(sizeof(float) * row), *m = malloc(sizeof(float) * row);
	float *a = malloc(sizeof(float) * k), *b = malloc(sizeof(float) * k);
	net->training = 0;
	uint64_t n = sh->info.splits[te].count;
	int hit = 0;
	double loss = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = tl_shard_file_record(sh, te, i);
		assert_int_equal(tl_shard_load_f32(sh, r, x, &err), TL_OK);
		for (int c = 0; c < 3; c++) /* mirror by hand: 32x32 */
			for (int y = 0; y < 32; y++)
				for (int xx = 0; xx < 32; xx++)
					m[(c * 32 + y) * 32 + xx] = x[(c * 32 + y) * 32 + 31 - xx];
		tl_net_set(net, 0, x, 1);
		tl_net_forward(net, 1, 0, net->n_layers);
		assert_int_equal(tl_net_get(net, out, a, 1, &err), TL_OK);
		tl_net_set(net, 0, m, 1);
		tl_net_forward(net, 1, 0, net->n_layers);
		assert_int_equal(tl_net_get(net, out, b, 1, &err), TL_OK);
		int best = 0;
		double mx = -1e30, se = 0;
		for (int j = 0; j < k; j++) {
			a[j] = 0.5f * (a[j] + b[j]);
			if (a[j] > mx)
				mx = a[j], best = j;
		}
		for (int j = 0; j < k; j++)
			se += exp(a[j] - mx);
		int y = tl_shard_label(sh, r, 0);
		hit += best == y;
		loss += mx + log(se) - a[y];
	}
	t->acc = (double)hit / (double)n;
	t->loss = loss / (double)n;
	t->n = (int)n;
	free(x), free(m), free(a), free(b);
	tl_shard_close(sh);
}

static void tta_averages_image_and_mirror(void **state)
{
	(void)state;
	tl_train_cfg c;
	base_cfg(&c, "tta");
	c.strategy = TL_STRAT_FEATURE;
	c.max_epochs = 2;
	c.lr = 3e-3f;
	c.tta = 1;
	c.label_smoothing = 0.2f;
	tta_truth t = {0};
	c.on_final = tta_by_hand;
	c.on_final_arg = &t;
	tl_train_result r;
	tl_err err;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(t.n, 20);
	assert_close(r.test_accuracy, t.acc, 1e-9, 0);
	assert_close(r.test_loss, t.loss, 1e-4, 1e-4);
}

/* onecycle (stepped every batch), label smoothing and crop resume exactly. */
static void onecycle_smoothing_crop_resume_exactly(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	base_cfg(&c, "oc_full");
	c.sched = TL_SCHED_ONECYCLE, c.label_smoothing = 0.1f, c.crop_pad = 3, c.flip = 1;
	c.opt = TL_OPT_SGD, c.nesterov = 1, c.lr = 0.01f, c.lr2 = 0.005f;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	double acc_full = r.test_accuracy;
	char *a = history_values("oc_full");
	/* the lr column: each stage's one-cycle at its epochs' starts */
	char *p = strchr(a, '\n') + 1;
	const float want[4] = {tl_onecycle_lr(0.01f, 0), tl_onecycle_lr(0.01f, 0.5),
			       tl_onecycle_lr(0.005f, 0), tl_onecycle_lr(0.005f, 0.5)};
	for (int e = 0; e < 4; e++) {
		double lr;
		assert_int_equal(sscanf(p, "%*d,%*f,%*f,%*f,%*f,%lf", &lr), 1);
		assert_close(lr, want[e], 0, 1e-5);
		p = strchr(p, '\n') + 1;
	}
	base_cfg(&c, "oc_cut");
	c.sched = TL_SCHED_ONECYCLE, c.label_smoothing = 0.1f, c.crop_pad = 3, c.flip = 1;
	c.opt = TL_OPT_SGD, c.nesterov = 1, c.lr = 0.01f, c.lr2 = 0.005f;
	c.cancel_after = 5;
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EINTR);
	tl_train_cfg rc;
	base_cfg(&rc, "oc_cut"); /* the settings come from the checkpoint */
	rc.model[0] = 0;
	if (tl_train(&rc, 1, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	char *b = history_values("oc_cut");
	assert_string_equal(a, b);
	assert_close(r.test_accuracy, acc_full, 0, 0);
	free(a), free(b);
}

/* The tensors of two checkpoints: the same names, shapes and bytes? */
static int same_tensors(const char *run_a, const char *run_b)
{
	char pa[600], pb[600];
	snprintf(pa, sizeof pa, "%s/%s/last.safetensors", dir, run_a);
	snprintf(pb, sizeof pb, "%s/%s/last.safetensors", dir, run_b);
	tl_st_file *a, *b;
	tl_err err;
	if (tl_st_open(&a, pa, &err) != TL_OK || tl_st_open(&b, pb, &err) != TL_OK)
		fail_msg("%s", err.msg);
	int same = a->n == b->n;
	for (size_t i = 0; same && i < a->n; i++) {
		const tl_st_tensor *x = &a->t[i], *y = tl_st_find(b, x->name);
		same = y && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
	}
	tl_st_close(a);
	tl_st_close(b);
	return same;
}

/* -e 1.5: the second epoch trains the first half of its 4 batches and
 * stops: the state is that of a 2-epoch run interrupted after batch 6 (not
 * 5, not 7); onecycle anneals over the 1.5 epochs. */
static void fractional_epochs_stop_part_way(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	const char *runs[] = {"half", "cut5", "cut6", "cut7"};
	for (int i = 0; i < 4; i++) {
		base_cfg(&c, runs[i]);
		c.strategy = TL_STRAT_FEATURE;
		c.sched = TL_SCHED_CONSTANT;
		c.max_epochs = i ? 2 : 1.5;
		c.cancel_after = i ? 4 + i : 0;
		tl_status st = tl_train(&c, 0, &r, &err);
		if (st != (i ? TL_EINTR : TL_OK))
			fail_msg("%s: %s", runs[i], err.msg);
		if (!i)
			assert_int_equal(r.epochs_run, 2);
	}
	assert_true(same_tensors("half", "cut6"));
	assert_false(same_tensors("half", "cut5"));
	assert_false(same_tensors("half", "cut7"));
	base_cfg(&c, "oc");
	c.strategy = TL_STRAT_FEATURE;
	c.sched = TL_SCHED_ONECYCLE;
	c.max_epochs = 1.5;
	c.lr = 0.01f;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	char *h = history_values("oc"), *p = strchr(h, '\n') + 1;
	p = strchr(p, '\n') + 1; /* epoch 2 starts 1/1.5 of the way */
	double lr;
	assert_int_equal(sscanf(p, "2,%*f,%*f,%*f,%*f,%lf", &lr), 1);
	assert_close(lr, tl_onecycle_lr(0.01f, 1 / 1.5), 0, 1e-6);
	free(h);
}

/* --time-limit: 200 epochs asked with a limit of 3 s end in fewer epochs,
 * the last one cut where the time ran out, and the report says so. */
static void time_limit_shortens_the_run(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	base_cfg(&c, "limit");
	c.warmup_epochs = 0;
	c.max_epochs = 200;
	c.sched = TL_SCHED_ONECYCLE;
	c.time_limit = 3;
	if (tl_train(&c, 0, &r, &err) != TL_OK)
		fail_msg("%s", err.msg);
	if (!(r.epochs_run >= 1 && r.epochs_run < 200))
		fail_msg("%d epochs run in a 3 s limit", r.epochs_run);
	char path[600];
	snprintf(path, sizeof path, "%s/limit/report.txt", dir);
	char *rep = slurp(path);
	assert_non_null(rep);
	double fit, asked;
	char *t = strstr(rep, "time limit:       3 s: ");
	assert_non_null(t);
	assert_int_equal(sscanf(t, "time limit:       3 s: %lf epochs fit of the %lf asked", &fit, &asked), 2);
	assert_true(asked == 200 && fit < 200 && fit > r.epochs_run - 1 && fit <= r.epochs_run);
	free(rep);
}

static void corrupt_chunk_is_caught(void **state)
{
	(void)state;
	/* byte 100 of the 4th training image, located from the shard's header */
	tl_shard *sh;
	tl_err e;
	if (tl_shard_open(&sh, shard, &e) != TL_OK)
		fail_msg("%s", e.msg);
	int train = tl_shard_split_find(sh, "train");
	assert_true(train >= 0 && sh->info.record_bytes > 100);
	long off = (long)(sh->info.image_offset +
			  tl_shard_file_record(sh, train, 3) * sh->info.record_bytes + 100);
	tl_shard_close(sh);
	FILE *f = fopen(shard, "r+b");
	fseek(f, off, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, -1, SEEK_CUR);
	fputc(ch ^ 0x55, f);
	fclose(f);
	tl_train_cfg c;
	base_cfg(&c, "bad");
	c.strategy = TL_STRAT_FEATURE;
	tl_train_result r;
	tl_err err;
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_ECHECKSUM);
	assert_non_null(strstr(err.msg, "image chunk"));
	assert_non_null(strstr(err.msg, "checksum mismatch"));
}

/* Latency figures: median, fastest and 90th percentile of the passes,
 * and "busy" when the slow tenth took over 1.5x the fastest. */
static void latency_figures_and_busy(void **state)
{
	(void)state;
	double quiet[10] = {0.0031, 0.0030, 0.0032, 0.0030, 0.0033, 0.0031, 0.0030, 0.0034, 0.0031, 0.0032};
	tl_latency l;
	tl_latency_from(quiet, 10, &l);
	assert_int_equal(l.reps, 10);
	assert_close(l.min_ms, 3.0, 1e-9, 0);
	assert_close(l.median_ms, 3.1, 1e-9, 0); /* sorted[5] */
	assert_close(l.p90_ms, 3.4, 1e-9, 0);    /* sorted[9] */
	assert_int_equal(l.busy, 0);
	char text[400];
	tl_latency_text(&l, 2, "opencl:0:0", text, sizeof text);
	assert_string_equal(text, "3.100 ms per image (batch 1, median of 10; fastest 3.000, 90th percentile 3.400; opencl:0:0; 2 host threads)");
	/* a machine busy for a few passes: 7.4 ms at best, 84 at worst */
	double busy[10] = {0.0074, 0.0080, 0.084, 0.0075, 0.0079, 0.050, 0.0077, 0.0074, 0.0081, 0.0076};
	tl_latency_from(busy, 10, &l);
	assert_int_equal(l.busy, 1);
	tl_latency_text(&l, 2, "cpu (avx512, 2 threads)", text, sizeof text);
	if (!strstr(text, "; cpu (avx512, 2 threads))\n") || !strstr(text, "warning: the passes varied 11.4x: the machine was busy"))
		fail_msg("busy: %s", text);
}

static void bad_setups_fail_cleanly(void **state)
{
	(void)state;
	tl_train_cfg c;
	tl_train_result r;
	tl_err err;
	base_cfg(&c, "w");
	snprintf(c.model, sizeof c.model, "vgg16");
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "tensor features.2.weight"));
	base_cfg(&c, "u");
	snprintf(c.unit, sizeof c.unit, "block5");
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "no unit or layer 'block5'"));
	base_cfg(&c, "n");
	snprintf(c.shard, sizeof c.shard, "%s/none.tls", dir);
	assert_int_equal(tl_train(&c, 0, &r, &err), TL_EIO);
	base_cfg(&c, "r");
	assert_int_not_equal(tl_train(&c, 1, &r, &err), TL_OK); /* nothing to resume */
	assert_non_null(strstr(err.msg, "last.safetensors"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(loss_decreases_and_files_exist, setup, teardown),
		cmocka_unit_test_setup_teardown(early_stopping_restores_best, setup, teardown),
		cmocka_unit_test_setup_teardown(resume_equals_uninterrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(batchnorm_network_trains_and_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(prefix_cache_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(tta_averages_image_and_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(onecycle_smoothing_crop_resume_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(fractional_epochs_stop_part_way, setup, teardown),
		cmocka_unit_test_setup_teardown(time_limit_shortens_the_run, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_chunk_is_caught, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_setups_fail_cleanly, setup, teardown),
		cmocka_unit_test(latency_figures_and_busy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
