/* train.c - the training driver (see train.h): a run opens its shard,
 * items, backend and model (or its checkpoint), then runs its stages; a
 * stage builds the prefix cache (prefix.h) and runs epochs; an epoch is
 * the batches, then validation, history, best weights, schedule and early
 * stopping; the run ends with the best weights restored and the report.
 * Settings: settings.h; checkpoints: checkpoint.h; history: history.h;
 * schedules: schedule.h; the shared batch loop: forward.h. */
#define _GNU_SOURCE
#include "train/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "data/loader.h"
#include "infile.h"
#include "data/shard.h"
#include "nn/models.h"
#include "nn/normfold.h"
#include "nn/registry.h"
#include "nn/safetensors.h"
#include "plot/run.h"
#include "progress.h"
#include "rng.h"
#include "nn/device.h"
#include "train/checkpoint.h"
#include "train/forward.h"
#include "train/heldout.h"
#include "train/metrics.h"
#include "train/predcsv.h"
#include "train/prefix.h"
#include "train/schedule.h"

typedef struct {
	tl_train_cfg *cfg;
	tl_shard *sh;
	tl_net *net;
	tl_device dev; /* the backend cfg->device names, and host threads */
	tl_optim opt;
	int opt_ready;
	int lock_fd;     /* RUN/.lock, flocked for the whole run; -1 before */
	int created_dir; /* this run made run_dir (removed again if it fails empty) */
	/* items */
	uint64_t *tr_rec, *va_rec, *te_rec;
	int32_t *tr_lab, *va_lab, *te_lab;
	uint64_t n_tr, n_va, n_te;
	tl_prefix pc;
	int32_t *pred;      /* a batch's predicted classes */
	tl_run_state st;
	double t_start;
	/* --time-limit: the epochs asked for (-e), the speed measured in this
	 * process (training batches; evaluation seconds per image and view) */
	double asked_epochs, timed_sec, timed_fwd, eval_spi;
	long timed_batches, batches_seen;
	tl_progress prog;
	long batches_run;
	uint64_t skipped;   /* --on-nan skip: batches skipped in this epoch */
	float *tta_buf;     /* --tta: a mirrored batch and two batches of logits */
	/* --val test: the validation metrics of the best epoch run in this
	 * process, which are the test metrics of the restored best weights
	 * (cm NULL: none, the report evaluates) */
	tl_metrics best_val;
} run;

/* ---- stages ---- */

static int stage_count(const tl_train_cfg *c)
{
	return c->strategy == TL_STRAT_FINETUNE && c->warmup_epochs < tl_train_epoch_count(c) ? 2 : 1;
}

/* Epoch range [*first, *end) of a stage. */
static void stage_range(const tl_train_cfg *c, int stage, int *first, int *end)
{
	int n = tl_train_epoch_count(c);
	if (c->strategy != TL_STRAT_FINETUNE) {
		*first = 0, *end = n;
		return;
	}
	int w = c->warmup_epochs < n ? c->warmup_epochs : n;
	*first = stage == 0 ? 0 : w;
	*end = stage == 0 ? w : n;
}

/* The length of a stage in epochs, a fractional last epoch counted as its
 * fraction (what onecycle anneals over). */
static double stage_length(const tl_train_cfg *c, int first, int end)
{
	double e = end == tl_train_epoch_count(c) ? c->max_epochs : end;
	return e - first > 0 ? e - first : 1;
}

/* Which unit is trainable in a stage. */
static const char *stage_unit(const tl_train_cfg *c, int stage)
{
	if (c->strategy == TL_STRAT_SCRATCH)
		return "all";
	if (c->strategy == TL_STRAT_FEATURE || stage == 0)
		return "head";
	return c->unit[0] ? c->unit : tl_train_default_unit(c->model);
}

static float stage_lr(const tl_train_cfg *c, int stage)
{
	return c->strategy == TL_STRAT_FINETUNE && stage == 1 ? c->lr2 : c->lr;
}

/* The rate of epoch `epoch` in the current stage. */
static float epoch_lr(const run *r, int epoch)
{
	const tl_train_cfg *c = r->cfg;
	int first, end;
	stage_range(c, r->st.stage, &first, &end);
	if (c->sched == TL_SCHED_ONECYCLE) /* where the epoch's first batch is */
		return tl_onecycle_lr(stage_lr(c, r->st.stage), (epoch - first) / stage_length(c, first, end));
	return tl_schedule_lr(c->sched, stage_lr(c, r->st.stage), epoch - first, end - first, c->step_size,
			      c->gamma, r->st.lr);
}

/* The rate of batch b of nb in epoch `epoch`: the epoch's rate, except
 * for onecycle, which moves every batch. */
static float batch_lr(const run *r, int epoch, uint64_t b, uint64_t nb)
{
	const tl_train_cfg *c = r->cfg;
	if (c->sched != TL_SCHED_ONECYCLE)
		return r->st.lr;
	int first, end;
	stage_range(c, r->st.stage, &first, &end);
	double t = ((epoch - first) + (double)b / (double)(nb ? nb : 1)) / stage_length(c, first, end);
	return tl_onecycle_lr(stage_lr(c, r->st.stage), t);
}

/* ---- the prefix cache of a stage ---- */

/* First trainable layer if `unit` and above were unfrozen (the net is
 * left as it was). */
static int first_trainable_for(run *r, const char *unit, const char *now)
{
	tl_err e;
	int k = -1;
	if (tl_net_unfreeze_from(r->net, unit, &e) == TL_OK)
		k = tl_net_first_trainable(r->net);
	tl_net_unfreeze_from(r->net, now, &e);
	return k;
}

/* (Re)build the cache for the current trainable set, if it is valid:
 * frozen layers below k, and no augmentation acting before them. */
static tl_status stage_cache(run *r, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	int k = tl_net_first_trainable(r->net);
	if (c->no_cache || c->flip || c->crop_pad || !tl_prefix_cacheable(r->net, k)) {
		tl_prefix_free(&r->pc, 1);
		return TL_OK;
	}
	/* finetune warm-up: cache the next stage's input first, derive ours */
	int k2 = -1;
	if (c->strategy == TL_STRAT_FINETUNE && r->st.stage == 0 && stage_count(c) == 2) {
		k2 = first_trainable_for(r, stage_unit(c, 1), stage_unit(c, 0));
		if (!(k2 > 0 && k2 < k && tl_prefix_cacheable(r->net, k2)))
			k2 = -1;
	}
	tl_prefix_src s = {.net = r->net, .sh = r->sh, .tr_rec = r->tr_rec,
			   .va_rec = r->va_rec, .n_tr = r->n_tr, .n_va = r->n_va, .batch = c->batch,
			   .mem_mb = c->cache_mem_mb, .dir = c->run_dir, .cancel = c->cancel,
			   .prog = &r->prog, .quiet = c->quiet};
	return tl_prefix_build(&r->pc, &s, k, k2, err);
}

/* ---- batches ---- */

/* Forward one batch from a loader batch (images or cache rows). */
static void forward_batch(run *r, const float *x, int n)
{
	tl_net *net = r->net;
	int from = r->pc.layer, t = net->layers[from].in[0];
	tl_net_set(net, from ? t : 0, x, n);
	tl_net_forward(net, n, from, net->n_layers);
}

static tl_status make_loader(run *r, tl_loader **l, const uint64_t *rec, const int32_t *lab,
			     uint64_t n, const float *cache, int train, tl_err *err)
{
	tl_loader_cfg lc = {0};
	lc.shard = r->sh;
	lc.records = rec;
	lc.labels = lab;
	lc.n = n;
	lc.cache = cache;
	lc.row_floats = cache ? r->pc.row : (size_t)tl_net_out_size(r->net, 0);
	lc.batch = r->cfg->batch;
	lc.shuffle = train;
	lc.flip = train && !cache && r->cfg->flip;
	lc.crop_pad = train && !cache ? r->cfg->crop_pad : 0;
	lc.seed = r->cfg->seed;
	lc.workers = cache ? 1 : 2;
	lc.depth = 4;
	return tl_loader_new(l, &lc, err);
}

/* --tta, after the forward pass of images x[nb]: the output becomes the
 * mean of its logits and those of the mirrored images (computed here). */
static tl_status tta_logits(run *r, const float *x, int nb, tl_err *err)
{
	tl_net *net = r->net;
	int out = net->layers[net->n_layers - 1].out, k = tl_net_out_size(net, out);
	const tl_shape3 *s = &net->tshape[0];
	size_t row = (size_t)s->c * s->h * s->w;
	if (!r->tta_buf) {
		r->tta_buf = malloc(sizeof(float) * ((size_t)r->cfg->batch * row + 2 * (size_t)r->cfg->batch * k));
		if (!r->tta_buf)
			return tl_seterr(err, TL_ENOMEM, "out of memory for --tta");
	}
	float *flip = r->tta_buf, *a = flip + (size_t)r->cfg->batch * row, *b = a + (size_t)r->cfg->batch * k;
	TL_TRY(tl_net_get(net, out, a, nb, err));
	tl_loader_mirror(x, flip, nb, s->c, s->h, s->w);
	tl_net_set(net, 0, flip, nb);
	tl_net_forward(net, nb, 0, net->n_layers);
	TL_TRY(tl_net_get(net, out, b, nb, err));
	for (size_t i = 0; i < (size_t)nb * k; i++)
		a[i] = 0.5f * (a[i] + b[i]);
	tl_net_set(net, out, a, nb);
	return TL_OK;
}

/* Loss and metrics over a set of items with the current weights; with
 * pred, also a predictions CSV row per item (train/predcsv.h). */
static tl_status evaluate(run *r, const uint64_t *rec, const int32_t *lab, uint64_t n,
			  const float *cache, tl_metrics *m, FILE *pred, tl_err *err)
{
	int out = r->net->layers[r->net->n_layers - 1].out, k = tl_net_out_size(r->net, out);
	float *logits = pred ? malloc(sizeof(float) * (size_t)r->cfg->batch * k) : NULL;
	if (pred && !logits)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	uint64_t done = 0;
	tl_loader *l;
	int saved = r->pc.layer;
	if (r->cfg->tta)
		cache = NULL; /* the mirror needs the images */
	if (!cache)
		r->pc.layer = 0;
	tl_status st = make_loader(r, &l, rec, lab, n, cache, 0, err);
	if (st != TL_OK) {
		r->pc.layer = saved;
		free(logits);
		return st;
	}
	r->net->training = 0;
	float smoothing = r->net->label_smoothing;
	r->net->label_smoothing = 0; /* evaluation reports the plain cross-entropy */
	tl_loader_start(l, 0, 0);
	for (;;) {
		const float *x;
		const int32_t *y;
		int nb;
		if ((st = tl_loader_next(l, &x, &y, &nb, err)) != TL_OK || nb == 0)
			break;
		forward_batch(r, x, nb);
		if (!cache && r->cfg->tta && (st = tta_logits(r, x, nb, err)) != TL_OK)
			break;
		double loss;
		if ((st = tl_net_loss(r->net, nb, y, 0, &loss, r->pred, err)) != TL_OK)
			break;
		tl_metrics_add_pred(m, r->pred, y, nb, loss);
		/* unshuffled, the batches come in the items' order */
		if (pred && (st = tl_net_get(r->net, out, logits, nb, err)) != TL_OK)
			break;
		for (int i = 0; pred && i < nb; i++)
			tl_predcsv_row(pred, r->sh, rec[done + (uint64_t)i], logits + (size_t)i * k, r->pred[i]);
		done += (uint64_t)nb;
	}
	r->net->label_smoothing = smoothing;
	tl_loader_free(l);
	r->pc.layer = saved;
	free(logits);
	return st;
}

/* ---- setting up ---- */

/* Items of the train / validation / test sets. */
static tl_status setup_items(run *r, tl_err *err)
{
	tl_shard *sh = r->sh;
	int tr = tl_shard_split_find(sh, "train"), te = tl_shard_split_find(sh, "test");
	if (tr < 0 || te < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: needs a train and a test split", sh->path);
	uint64_t ntr = sh->info.splits[tr].count, nte = sh->info.splits[te].count;
	r->tr_rec = malloc(sizeof(uint64_t) * (ntr ? ntr : 1));
	r->te_rec = malloc(sizeof(uint64_t) * (nte ? nte : 1));
	r->tr_lab = malloc(sizeof(int32_t) * (ntr ? ntr : 1));
	r->te_lab = malloc(sizeof(int32_t) * (nte ? nte : 1));
	if (!r->tr_rec || !r->te_rec || !r->tr_lab || !r->te_lab)
		return tl_seterr(err, TL_ENOMEM, "out of memory for the item lists");
	/* a seeded permutation of train; its last nva items are the validation set */
	uint64_t *perm = r->tr_rec, nva;
	TL_TRY(tl_heldout_order(ntr, r->cfg->val_fraction, r->cfg->seed, perm, &nva, err));
	r->n_tr = ntr - nva;
	r->n_va = nva ? nva : nte;
	r->n_te = nte;
	for (uint64_t i = 0; i < ntr; i++) {
		r->tr_rec[i] = tl_shard_file_record(sh, tr, perm[i]);
		r->tr_lab[i] = tl_shard_label(sh, r->tr_rec[i], 0);
	}
	for (uint64_t i = 0; i < nte; i++) {
		r->te_rec[i] = tl_shard_file_record(sh, te, i);
		r->te_lab[i] = tl_shard_label(sh, r->te_rec[i], 0);
	}
	if (nva) {
		r->va_rec = r->tr_rec + r->n_tr;
		r->va_lab = r->tr_lab + r->n_tr;
	} else {
		r->va_rec = r->te_rec;
		r->va_lab = r->te_lab;
	}
	return TL_OK;
}

/* Build the model; load pretrained weights unless training from scratch. */
static tl_status setup_model(run *r, int resume, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	const tl_shard_info *in = &r->sh->info;
	tl_model_cfg mc;
	tl_model_defaults(&mc, c->model);
	mc.height = (int)in->height;
	mc.width = (int)in->width;
	mc.n_classes = (int)in->n_classes;
	if (c->head[0] && tl_model_parse_head(c->head, &mc))
		return tl_seterr(err, TL_EUSAGE, "--head: expected sizes like 256 or 512,256 or none, got '%s'", c->head);
	if (c->pool >= 0)
		mc.flatten = !c->pool;
	if (c->dropout >= 0)
		mc.dropout = c->dropout;
	const tl_model_info *mi = tl_model_find(c->model);
	if (mi && mi->keras_graph && !resume && c->strategy != TL_STRAT_SCRATCH) {
		tl_st_file *wf;
		TL_TRY(tl_st_open(&wf, c->weights, err));
		const char *g = tl_st_meta(wf, "graph");
		c->keras = g && !strcmp(g, "keras");
		tl_st_close(wf);
	}
	mc.keras = c->keras;
	TL_TRY(tl_model_build(&mc, &r->net, err));
	r->net->label_smoothing = c->label_smoothing;
	TL_TRY(tl_net_bind(r->net, r->dev.be, c->batch, err));
	TL_TRY(tl_optim_init(&r->opt, r->net, c->opt, err));
	r->opt_ready = 1;
	if (resume)
		return TL_OK;
	if (c->strategy == TL_STRAT_SCRATCH) {
		tl_net_init(r->net, c->seed, 0);
		/* He init assumes unit-variance input; caffe-mode pixels have a std
		 * near 64 (CIFAR), which would blow up the first activations: scale
		 * the first convolution to the shard's normalization */
		double in_std = 64.0 * in->norm.scale / in->norm.std[0];
		const tl_layer *l0 = &r->net->layers[0];
		if (l0->w >= 0 && in_std > 0)
			for (size_t k = 0; k < r->net->params[l0->w].size; k++)
				r->net->params[l0->w].data[k] /= (float)in_std;
		tl_net_push_params(r->net);
		return TL_OK;
	}
	int norm;
	TL_TRY(tl_net_load(r->net, c->weights, 0, &norm, err));
	if (!c->allow_nonfinite && tl_net_check_finite(r->net, c->weights, err) != TL_OK) {
		strncat(err->msg, "; --allow-nonfinite loads them anyway",
			sizeof err->msg - strlen(err->msg) - 1);
		return TL_EFORMAT;
	}
	for (int i = 0; i < r->net->n_params; i++) {
		tl_param *p = &r->net->params[i];
		if (!p->loaded && !tl_net_param_in_head(r->net, i))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: tensor %s: missing (is this a %s weights file?)", c->weights,
					 p->name, c->model);
	}
	int folded; /* an exact fold into the first convolution, or a refusal naming tlpack --norm */
	TL_TRY(tl_norm_fold(r->net, norm, &in->norm, c->shard, c->weights, &folded, err));
	if (folded && !c->quiet)
		fprintf(stderr, "tltrain: %s expects '%s' input, the shard holds '%s': folded into %s exactly\n",
			c->weights, tl_norm_name((tl_norm_kind)norm), tl_norm_name(in->norm.kind),
			r->net->layers[0].name);
	if (norm < 0 && !c->quiet)
		fprintf(stderr, "tltrain: warning: %s does not declare its input normalization; the shard is '%s'\n",
			c->weights, tl_norm_name(in->norm.kind));
	tl_net_init(r->net, c->seed, 1);
	return TL_OK;
}

/* ---- epochs ---- */

static void print_epoch(run *r, const tl_hist_row *h, int best)
{
	if (r->cfg->quiet)
		return;
	if (r->cfg->json)
		printf("{\"epoch\":%d,\"stage\":\"%s\",\"accuracy\":%.6f,\"loss\":%.6f,\"val_accuracy\":%.6f,\"val_loss\":%.6f,\"lr\":%.6g,\"seconds\":%.3f,\"images_per_s\":%.1f,\"best\":%s}\n",
		       h->epoch, stage_unit(r->cfg, h->stage), h->acc, h->loss, h->val_acc, h->val_loss,
		       h->lr, h->seconds, h->ips, best ? "true" : "false");
	else
		printf("epoch %d/%d [%s]: loss %.4f acc %.4f val_loss %.4f val_acc %.4f lr %.3g %.1f s %.0f img/s%s\n",
		       h->epoch, tl_train_epoch_count(r->cfg), stage_unit(r->cfg, h->stage), h->loss, h->acc,
		       h->val_loss, h->val_acc, h->lr, h->seconds, h->ips, best ? " *" : "");
	fflush(stdout);
}

static void print_progress(const run *r, int e, uint64_t nb_total, double el)
{
	fprintf(stderr, "\rtltrain: epoch %d/%d batch %" PRIu64 "/%" PRIu64 " loss %.4f acc %.4f %.0f img/s ETA %.0fs   ",
		e + 1, tl_train_epoch_count(r->cfg), r->st.batch_pos, nb_total, r->st.part_loss / r->st.part_seen,
		(double)r->st.part_correct / r->st.part_seen, r->st.part_seen / el,
		el / r->st.batch_pos * (nb_total - r->st.batch_pos));
	fflush(stderr);
}

/* The batches of epoch e from the loader's position on (t0: when the
 * epoch started, counting time before a resume).  On cancel: a checkpoint,
 * then TL_EINTR. */
/* A batch of epoch e whose loss is not finite: stop the run (the default;
 * checkpoints keep the last good state) or, with --on-nan skip, count it and
 * go on, stopping only when a whole epoch is lost. */
static tl_status nonfinite_batch(run *r, int e, double loss, tl_err *err)
{
	const tl_train_cfg *c = r->cfg;
	if (!c->on_nan_skip)
		return tl_seterr(err, TL_EFORMAT,
				 "epoch %d, batch %" PRIu64 ": the loss is not finite (%g); training stopped, "
				 "nothing of this epoch was saved (lower --lr, now %g, or --on-nan skip)",
				 e + 1, r->st.batch_pos + 1, loss, (double)r->opt.lr);
	if (++r->skipped >= (r->n_tr + (uint64_t)c->batch - 1) / (uint64_t)c->batch)
		return tl_seterr(err, TL_EFORMAT,
				 "epoch %d: every batch's loss was not finite (--on-nan skip); training stopped",
				 e + 1);
	if (!c->quiet)
		fprintf(stderr, "tltrain: epoch %d, batch %" PRIu64 ": loss not finite (%g), batch skipped\n",
			e + 1, r->st.batch_pos + 1, loss);
	return TL_OK;
}

/* The parameters must be finite before anything is saved: a step can
 * overflow them while the batch's loss was still finite. */
static tl_status params_finite(run *r, int e, tl_err *err)
{
	size_t bad = tl_net_count_nonfinite(r->net);
	if (bad)
		return tl_seterr(err, TL_EFORMAT,
				 "epoch %d: %zu parameters are not finite after batch %" PRIu64
				 "; training stopped, nothing of this epoch was saved (lower --lr, now %g)",
				 e + 1, bad, r->st.batch_pos, (double)r->opt.lr);
	return TL_OK;
}

/* --time-limit: the epochs the run can still afford from the speed
 * measured so far, validations and the final test included, set as
 * cfg->max_epochs (at most the -e asked, at least the batch under way), so
 * the last epoch stops in time and onecycle anneals by then.  Only the last
 * stage is shortened. */
static void plan_time(run *r, int e, uint64_t nb_full)
{
	tl_train_cfg *c = r->cfg;
	if (c->time_limit <= 0 || r->timed_batches < 8 || r->st.stage != stage_count(c) - 1)
		return;
	double spb = r->timed_sec / (double)r->timed_batches;
	/* an image's forward pass, per view: the last validation's when there
	 * was one (the final test's own kind of pass: no dropout, max pools
	 * without argmax, so faster than a training forward), else a training
	 * step's forward; a tenth more for the final test's colder caches and
	 * the report */
	double spi = r->eval_spi > 0 ? r->eval_spi : r->timed_fwd / ((double)r->timed_batches * c->batch);
	double views = c->tta ? 2 : 1, nb = (double)(nb_full ? nb_full : 1);
	double done = e + (double)r->st.batch_pos / nb;
	int vals = tl_train_epoch_count(c) - e; /* validations still to run */
	/* a held-out validation leaves the test set uncached: its images also
	 * go through the frozen prefix, at the cache build's speed */
	double pre = r->pc.layer && r->pc.seconds > 0 ? r->pc.seconds / (double)(r->n_tr + r->n_va) : 0;
	double evals = 1.1 * views *
		       (spi * (double)r->n_va * vals + (c->val_fraction > 0 ? (spi + pre) * (double)r->n_te : 0));
	double left = c->time_limit - (tl_now() - r->t_start) - evals - (0.01 * c->time_limit + 1);
	double afford = done + (left > 0 ? left / spb : 0) / nb, least = done + 1 / nb;
	double want = afford < r->asked_epochs ? afford : r->asked_epochs;
	c->max_epochs = want > least ? want : least;
}

static tl_status train_batches(run *r, tl_loader *tl, int e, double t0, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	/* a fractional last epoch stops part way through the full epoch's nb_full */
	uint64_t nb_full = tl_loader_batches(tl), nb_total = tl_train_epoch_batches(c, e, nb_full);
	r->skipped = 0;
	while (r->st.batch_pos < nb_total) {
		const float *x;
		const int32_t *y;
		int nb;
		double tb = tl_now();
		tl_status st = tl_loader_next(tl, &x, &y, &nb, err);
		if (st != TL_OK || nb == 0)
			return st;
		r->net->training = 1;
		r->net->rng = tl_rng_key(c->seed, 0xd0, (uint64_t)e, r->st.batch_pos);
		r->opt.lr = batch_lr(r, e, r->st.batch_pos, nb_full);
		double tf = tl_now();
		forward_batch(r, x, nb);
		tf = tl_now() - tf;
		double loss;
		TL_TRY(tl_net_loss(r->net, nb, y, 1, &loss, r->pred, err));
		if (!isfinite(loss)) {
			TL_TRY(nonfinite_batch(r, e, loss, err));
			r->st.batch_pos++;
			continue; /* --on-nan skip: no update from this batch */
		}
		int correct = 0;
		for (int i = 0; i < nb; i++)
			correct += r->pred[i] == y[i];
		tl_net_backward(r->net, nb);
		tl_optim_step(&r->opt, r->net);
		r->st.batch_pos++;
		r->st.part_loss += loss;
		r->st.part_correct += (uint64_t)correct;
		r->st.part_seen += (uint64_t)nb;
		double el = tl_now() - t0;
		if (c->time_limit > 0 && ++r->batches_seen > 3) { /* the first ones warm up */
			r->timed_sec += tl_now() - tb;
			r->timed_fwd += tf;
			if (++r->timed_batches % 8 == 0) {
				plan_time(r, e, nb_full);
				nb_total = tl_train_epoch_batches(c, e, nb_full);
			}
		}
		if (r->prog.enabled && !c->quiet)
			print_progress(r, e, nb_total, el);
		if ((c->cancel && *c->cancel) || (c->cancel_after > 0 && ++r->batches_run >= c->cancel_after)) {
			r->st.part_seconds = el;
			tl_progress_end(&r->prog);
			TL_TRY(params_finite(r, e, err));
			TL_TRY(tl_checkpoint_save(c, r->net, &r->opt, &r->st, err));
			return tl_seterr(err, TL_EINTR,
					 "interrupted in epoch %d after batch %" PRIu64 "; resume with: tltrain --resume %s",
					 e + 1, r->st.batch_pos, c->run_dir);
		}
	}
	return TL_OK;
}

/* The training images of epoch e: all of them but in a fractional last epoch. */
static double epoch_images(const run *r, int e)
{
	uint64_t nb = (r->n_tr + (uint64_t)r->cfg->batch - 1) / (uint64_t)r->cfg->batch;
	uint64_t b = tl_train_epoch_batches(r->cfg, e, nb);
	return b == nb ? (double)r->n_tr : (double)b * r->cfg->batch;
}

/* The history row of epoch e: the training sums and a validation pass,
 * whose metrics are left in *m (the caller frees them). */
static tl_status epoch_row(run *r, int e, double t0, tl_hist_row *h, tl_metrics *m, tl_err *err)
{
	double train_s = tl_now() - t0;
	if (tl_metrics_init(m, (int)r->sh->info.n_classes))
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	tl_status st = evaluate(r, r->va_rec, r->va_lab, r->n_va, r->pc.layer ? r->pc.va : NULL, m, NULL, err);
	double sec = tl_now() - t0;
	if (r->n_va) /* --time-limit's evaluation speed */
		r->eval_spi = (sec - train_s) / ((double)r->n_va * (r->cfg->tta ? 2 : 1));
	uint64_t seen = r->st.part_seen ? r->st.part_seen : 1;
	*h = (tl_hist_row){.epoch = e + 1, .stage = r->st.stage,
			   .acc = (double)r->st.part_correct / seen, .loss = r->st.part_loss / seen,
			   .val_acc = tl_metrics_accuracy(m), .val_loss = tl_metrics_loss(m),
			   .lr = r->st.lr, .seconds = sec, .ips = epoch_images(r, e) / (train_s > 0 ? train_s : 1)};
	if (st != TL_OK)
		tl_metrics_free(m);
	return st;
}

/* After the batches of epoch e (of a stage ending at `end`): validate,
 * log, keep the best weights, step the plateau schedule and early
 * stopping (*stop ends the run), and write history and checkpoint. */
static tl_status end_epoch(run *r, int e, double t0, int end, int *stop, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	tl_run_state *s = &r->st;
	tl_progress_end(&r->prog);
	TL_TRY(params_finite(r, e, err));
	tl_hist_row h;
	tl_metrics m;
	TL_TRY(epoch_row(r, e, t0, &h, &m, err));
	double metric = c->monitor_loss ? h.val_loss : h.val_acc;
	int better = s->hist.n == 0 ||
		     (c->monitor_loss ? metric < s->best - c->min_delta : metric > s->best + c->min_delta);
	if (better && c->val_fraction == 0) { /* the test split: the report's, if these weights win */
		tl_metrics_free(&r->best_val);
		r->best_val = m;
	} else {
		tl_metrics_free(&m);
	}
	s->hist.rows[s->hist.n++] = h;
	if (better) {
		s->best = metric;
		s->best_epoch = e;
		s->bad_epochs = 0;
		tl_net_keep(r->net);
		TL_TRY(tl_checkpoint_save_best(c, r->net, &r->sh->info, s, err));
	} else {
		s->bad_epochs++;
	}
	if (c->sched == TL_SCHED_PLATEAU &&
	    tl_plateau_update(&s->plateau_best, &s->plateau_bad, metric, s->hist.n == 1, c->monitor_loss,
			      c->plateau_patience))
		s->lr *= c->gamma;
	print_epoch(r, &h, better);
	s->epoch = e + 1;
	s->batch_pos = 0;
	s->part_loss = s->part_seconds = 0;
	s->part_correct = s->part_seen = 0;
	if (c->patience > 0 && s->bad_epochs >= c->patience) {
		if (c->strategy == TL_STRAT_FINETUNE && s->stage == 0)
			s->epoch = end; /* warm-up is over early: go fine-tune */
		else if (s->epoch < tl_train_epoch_count(c))
			*stop = 1; /* not after the last epoch: that ran them all */
	}
	TL_TRY(tl_history_write(c->run_dir, &s->hist, err));
	return tl_checkpoint_save(c, r->net, &r->opt, s, err);
}

/* Train epochs of the current stage; returns TL_EINTR on cancel (after
 * checkpointing).  *stop is set when early stopping ends the run. */
static tl_status run_stage(run *r, int *stop, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	int first, end;
	stage_range(c, r->st.stage, &first, &end);
	tl_status st = stage_cache(r, err);
	if (st == TL_EINTR) { /* keep the run resumable */
		TL_TRY(tl_checkpoint_save(c, r->net, &r->opt, &r->st, err));
		return tl_seterr(err, TL_EINTR, "interrupted while building the prefix cache; resume with: tltrain --resume %s",
				 c->run_dir);
	}
	TL_TRY(st);
	tl_loader *tl = NULL;
	TL_TRY(make_loader(r, &tl, r->tr_rec, r->tr_lab, r->n_tr, r->pc.layer ? r->pc.tr : NULL, 1, err));
	for (;;) {
		stage_range(c, r->st.stage, &first, &end); /* --time-limit may end it sooner */
		if (st != TL_OK || r->st.epoch >= end || *stop)
			break;
		int e = r->st.epoch;
		if (r->st.batch_pos == 0)
			r->st.lr = epoch_lr(r, e);
		r->opt.lr = r->st.lr;
		tl_loader_start(tl, e, r->st.batch_pos);
		double t0 = tl_now() - r->st.part_seconds;
		if ((st = train_batches(r, tl, e, t0, err)) == TL_OK)
			st = end_epoch(r, e, t0, end, stop, err);
	}
	tl_loader_free(tl);
	return st;
}

/* One "key value" line of the report's settings. */
static void report_setting(void *arg, const char *key, const char *val)
{
	fprintf(arg, "%-18s %s\n", key, val[0] ? val : "-");
}

/* Why a --time-limit run can end late: what it cannot cut. */
#define TIME_OVER_WHY                                                                        \
	"start-up, the earlier stages, the batches timed before the first plan, the validations " \
	"and the final test are not shortened"

/* Test-set metrics, latency and everything else into report.txt. */
static tl_status write_report(run *r, tl_train_result *res, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	const tl_shard_info *in = &r->sh->info;
	int k = (int)in->n_classes;
	tl_metrics m;
	if (tl_metrics_init(&m, k))
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	/* the cache stays valid for the best weights: frozen layers never change */
	const float *cache = c->val_fraction == 0 && r->pc.layer ? r->pc.va : NULL;
	tl_status st = TL_OK;
	/* RUN/predictions.csv: a row per test image, from the same pass (a
	 * copy of each batch's logits), for tlplot --top-losses */
	char *pbuf = NULL;
	size_t plen = 0;
	FILE *pf = open_memstream(&pbuf, &plen);
	if (!pf) {
		tl_metrics_free(&m);
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	}
	tl_predcsv_header(pf);
	if (r->best_val.cm) { /* validated on the test split with these very weights */
		memcpy(m.cm, r->best_val.cm, sizeof(uint64_t) * (size_t)k * k);
		m.loss_sum = r->best_val.loss_sum;
		m.n = r->best_val.n;
		/* the per-image rows were not kept: one more pass (over the
		 * prefix cache when there is one) */
		tl_metrics again;
		if (tl_metrics_init(&again, k))
			st = tl_seterr(err, TL_ENOMEM, "out of memory");
		else
			st = evaluate(r, r->te_rec, r->te_lab, r->n_te, cache, &again, pf, err);
		tl_metrics_free(&again);
	} else {
		st = evaluate(r, r->te_rec, r->te_lab, r->n_te, cache, &m, pf, err);
	}
	fclose(pf);
	if (st != TL_OK) {
		free(pbuf);
		tl_metrics_free(&m);
		return st;
	}
	res->test_accuracy = tl_metrics_accuracy(&m);
	res->test_loss = tl_metrics_loss(&m);
	double *prf = calloc((size_t)k * 3, sizeof(double));
	res->macro_f1 = prf ? tl_metrics_prf(&m, prf, prf + k, prf + 2 * k) : 0;
	free(prf);
	/* latency: one image through the whole network, 21 timed passes */
	tl_latency lat;
	tl_latency_measure(r->net, 21, &lat);
	double lat_ms = lat.median_ms;
	char lat_text[400];
	tl_latency_text(&lat, r->dev.pool ? tl_pool_size(r->dev.pool) : 1, r->dev.be->name, lat_text,
			sizeof lat_text);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	char path[1200];
	snprintf(path, sizeof path, "%s/report.txt", c->run_dir);
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	if (!o) {
		tl_metrics_free(&m);
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	}
	fprintf(o, "tltrain report\n\nmodel:            %s, %ux%u input, head %s\n", c->model, in->height,
		in->width, c->head[0] ? c->head : "(default)");
	fprintf(o, "strategy:         %s", tl_enum_name(tl_strategy_names, (int)c->strategy));
	if (c->strategy == TL_STRAT_FINETUNE)
		fprintf(o, " (unfreeze %s after %d warm-up epoch%s)", stage_unit(c, 1),
			c->warmup_epochs, c->warmup_epochs == 1 ? "" : "s");
	fprintf(o, "\ndata:             %s: %" PRIu64 " train, %" PRIu64 " validation (%s), %" PRIu64 " test\n",
		c->shard, r->n_tr, r->n_va, c->val_fraction > 0 ? "held out of train" : "test split",
		r->n_te);
	fprintf(o, "parameters:       %zu total, %zu trainable in the last stage\n",
		tl_net_count_params(r->net, 0), tl_net_count_params(r->net, 1));
	{ /* where the settings not given came from (tltrain(1) MODELS says why) */
		char mine[1024], rec[1024];
		tl_train_defaults_text(c, mine, rec, sizeof mine);
		if (rec[0])
			fprintf(o, "recipe:           --recipe %s set %s\n", c->recipe, rec);
		if (mine[0])
			fprintf(o, "defaults:         %s's own: %s\n", c->model, mine);
	}
	fprintf(o, "epochs:           %d, the best %d (%s %.4f)%s\n", r->st.hist.n, r->st.best_epoch + 1,
		c->monitor_loss ? "val_loss" : "val_accuracy", r->st.best,
		res->stopped_early ? ", stopped early" : "");
	double total = 0;
	for (int i = 0; i < r->st.hist.n; i++)
		total += r->st.hist.rows[i].seconds;
	fprintf(o, "training time:    %.1f s in epochs", total);
	if (r->pc.seconds > 0)
		fprintf(o, " + %.1f s building the prefix cache = %.1f s", r->pc.seconds,
			total + r->pc.seconds);
	if (c->time_limit > 0) {
		double took = tl_now() - r->t_start;
		fprintf(o, "\ntime limit:       %g s: %.4g epochs fit of the %g asked; the run took %.1f s",
			c->time_limit, c->max_epochs, r->asked_epochs, took);
		if (took > c->time_limit)
			fprintf(o, ", %.1f s over: the limit cannot be met (%s)", took - c->time_limit,
				TIME_OVER_WHY);
	}
	fprintf(o, "\ninference:        %s\n", lat_text);
	fprintf(o, "peak memory:      %.1f MiB resident\n\n", ru.ru_maxrss / 1024.0);
	fprintf(o, "test accuracy:    %.4f\ntest loss:        %.4f\nmacro F1:         %.4f\n",
		res->test_accuracy, res->test_loss, res->macro_f1);
	if (c->val_fraction == 0)
		fprintf(o, "                  (--val test: the test split also chose the best epoch)\n");
	fputc('\n', o);
	tl_metrics_print(&m, (const char *const *)in->class_names, o);
	fflush(o);
	size_t shown = len; /* stdout gets the report without the settings */
	fprintf(o, "\nsettings (as the checkpoints keep them)\n");
	tl_train_cfg_save(c, report_setting, o);
	fclose(o);
	/* the same for programs: report.json and confusion.csv (plot/run.c) */
	const char *const *cn = (const char *const *)in->class_names;
	int unfreeze = 0;
	for (int i = r->st.hist.n - 1; i >= 0; i--)
		unfreeze = r->st.hist.rows[i].stage > 0 ? r->st.hist.rows[i].epoch : unfreeze;
	char hw[32];
	snprintf(hw, sizeof hw, "%ux%u", in->height, in->width);
	/* the comparative study's columns: the model file's size and all the
	 * time training took, the prefix-cache pass included */
	char best_path[1200];
	struct stat best_sb;
	snprintf(best_path, sizeof best_path, "%s/best.safetensors", c->run_dir);
	uint64_t best_bytes = stat(best_path, &best_sb) == 0 ? (uint64_t)best_sb.st_size : 0;
	double prefix_s = r->pc.seconds > 0 ? r->pc.seconds : 0;
	tl_run_summary sum = {
		.model = c->model, .strategy = tl_enum_name(tl_strategy_names, (int)c->strategy),
		.unit = c->strategy == TL_STRAT_FINETUNE ? stage_unit(c, 1) : NULL, .input_size = hw,
		.normalization = tl_norm_name(in->norm.kind), .shard = c->shard, .unfreeze_epoch = unfreeze,
		.best_epoch = r->st.best_epoch + 1, .epochs_run = r->st.hist.n,
		.stopped_early = res->stopped_early, .monitor = c->monitor_loss ? "val_loss" : "val_accuracy",
		.best_metric = r->st.best, .has_test = 1, .test_accuracy = res->test_accuracy,
		.test_loss = res->test_loss, .macro_f1 = res->macro_f1, .latency_ms = lat_ms,
		.train_seconds = total + prefix_s, .epoch_seconds = total, .prefix_cache_seconds = prefix_s,
		.wall_seconds = tl_now() - r->t_start,
		.params_total = tl_net_count_params(r->net, 0), .params_trainable = tl_net_count_params(r->net, 1),
		.peak_memory_mib = ru.ru_maxrss / 1024.0, .model_bytes = best_bytes, .device = r->dev.be->name,
		.k = k, .cm = m.cm, .names = cn,
		.validation = c->val_fraction > 0 ? "heldout" : "test"};
	st = tl_run_write_report(c->run_dir, &sum, err);
	tl_metrics_free(&m);
	if (st == TL_OK) {
		snprintf(best_path, sizeof best_path, "%s/predictions.csv", c->run_dir);
		st = tl_write_file_atomic(best_path, pbuf, plen, err);
	}
	free(pbuf);
	if (st == TL_OK)
		st = tl_write_file_atomic(path, buf, len, err);
	if (st == TL_OK && !c->quiet)
		fwrite(buf, 1, shown, stdout);
	free(buf);
	return st;
}

/* ---- the run ---- */

/* A fresh run must not overwrite one: -o must be a directory (or not
 * exist yet) holding none of the files a run writes. */
static tl_status check_fresh(const tl_train_cfg *c, tl_err *err)
{
	static const char *const files[] = {"last.safetensors", "best.safetensors", "history.csv",
					    "history.json", "report.txt", "report.json"};
	struct stat sb;
	if (stat(c->run_dir, &sb) != 0)
		return TL_OK;
	if (!S_ISDIR(sb.st_mode))
		return tl_seterr(err, TL_EUSAGE, "%s: exists and is not a directory (expected a run directory; choose another -o)",
				 c->run_dir);
	char path[1200];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", c->run_dir, files[i]);
		if (stat(path, &sb) == 0)
			return tl_seterr(err, TL_EUSAGE, "%s already holds a run (%s); continue it with --resume %s or choose another -o",
					 c->run_dir, path, c->run_dir);
	}
	return TL_OK;
}

/* Whether fd is still the file at path (a run ending unlinks its lock
 * before letting go of it, so a lock taken on the old file is no lock). */
static int same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* Whether the open lock file fd is one tltrain made: a regular file with
 * one link, owned by us, holding nothing or a PID line.  Anything else
 * (a hard link to the weights, someone's notes) is not ours to truncate. */
static tl_status check_lock_file(int fd, const char *dir, const char *path, tl_err *err)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return tl_seterr(err, TL_EIO, "%s: cannot stat the run lock %s: %s", dir, path,
				 strerror(errno));
	const char *why = !S_ISREG(sb.st_mode)	 ? tl_file_kind(sb.st_mode)
			  : sb.st_nlink != 1	 ? "a file with other names (a hard link)"
			  : sb.st_uid != geteuid() ? "a file of another user"
			  : sb.st_size > 24	 ? "longer than a PID"
						 : NULL;
	char buf[32] = {0};
	if (!why && sb.st_size > 0) {
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		if (n != sb.st_size || strspn(buf, "0123456789\n") != (size_t)n)
			why = "not a PID";
	}
	if (why)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: the run lock %s is not a tltrain lock (expected a PID file, found %s); it was left as it is: remove it if it is not needed",
				 dir, path, why);
	return TL_OK;
}

/* Take RUN/.lock (flock, exclusive, not waiting) for the whole run and
 * write our PID into it; a run already holding it is named by its PID.
 * The lock is never followed through a symbolic link (O_NOFOLLOW) and a
 * file that is not a tltrain lock is refused, not truncated.
 * The run removes the file when it ends (unlock_run_dir). */
static tl_status lock_run_dir(run *r, tl_err *err)
{
	const char *dir = r->cfg->run_dir;
	char path[1200];
	snprintf(path, sizeof path, "%s/.lock", dir);
	int fd, tries = 0;
again:
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0666);
	if (fd < 0 && errno == ELOOP)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: the run lock %s is a symbolic link (expected a regular file); it was not followed: remove it",
				 dir, path);
	if (fd < 0)
		return tl_seterr(err, TL_EIO, "%s: cannot create the run lock %s: %s", dir, path,
				 strerror(errno));
	tl_status cst = check_lock_file(fd, dir, path, err);
	if (cst != TL_OK) {
		close(fd);
		return cst;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char buf[32] = {0};
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		close(fd);
		long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
		if (e == EWOULDBLOCK && pid > 0)
			return tl_seterr(err, TL_EUSAGE, "%s: in use by another tltrain run (PID %ld); wait for it to end or choose another -o",
					 dir, pid);
		return tl_seterr(err, TL_EUSAGE, "%s: in use by another tltrain run (lock %s: %s)", dir,
				 path, strerror(e));
	}
	if (!same_file(fd, path)) {
		close(fd); /* locked the file of a run that just ended: take the new one */
		if (++tries < 100)
			goto again;
		return tl_seterr(err, TL_EUSAGE, "%s: the run lock %s keeps being replaced", dir, path);
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		return tl_seterr(err, TL_EIO, "%s: cannot write the run lock %s: %s", dir, path,
				 strerror(e));
	}
	r->lock_fd = fd;
	return TL_OK;
}

/* The run is over: remove RUN/.lock while still holding it, then let go. */
static void unlock_run_dir(run *r)
{
	if (r->lock_fd < 0)
		return;
	char path[1200];
	snprintf(path, sizeof path, "%s/.lock", r->cfg->run_dir);
	if (same_file(r->lock_fd, path))
		unlink(path);
	close(r->lock_fd); /* releases the flock */
	r->lock_fd = -1;
}

/* After a failed fresh run: remove the lock and the run directory if this
 * run created it and nothing else is in it. */
static void drop_failed_dir(run *r)
{
	if (!r->created_dir)
		return;
	unlock_run_dir(r);
	rmdir(r->cfg->run_dir); /* fails, keeping it, when anything was written */
}

/* Weights, optimizer and run state from the checkpoint, and the best
 * weights so far (best.safetensors) into the net's best-weights copy. */
static tl_status load_resumed(run *r, const tl_st_file *ck, tl_err *err)
{
	tl_net *net = r->net;
	size_t bytes = net->n_param_floats * sizeof(float);
	TL_TRY(tl_checkpoint_load(ck, net, &r->opt, &r->st, stage_count(r->cfg),
				  tl_train_epoch_count(r->cfg), err));
	uint64_t have = r->sh->info.header_hash;
	if (r->st.shard_hash && r->st.shard_hash != have)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: the run trained on a shard with header xxh3 %016" PRIx64 ", %s now has %016" PRIx64
				 " (another file under that name: resume with the shard the run began on)",
				 ck->path, r->st.shard_hash, r->cfg->shard, have);
	r->st.shard_hash = have;
	if (r->st.hist.n == 0)
		return TL_OK;
	float *cur = malloc(bytes + 1);
	if (!cur)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	tl_status st = tl_net_pull_params(net, err);
	if (st == TL_OK)
		memcpy(cur, net->param_block, bytes);
	char path[1200];
	snprintf(path, sizeof path, "%s/best.safetensors", r->cfg->run_dir);
	if (st == TL_OK && (st = tl_net_load(net, path, 1, NULL, err)) == TL_OK &&
	    (st = tl_net_check_finite(net, path, err)) == TL_OK) {
		tl_net_keep(net);
		memcpy(net->param_block, cur, bytes);
		tl_net_push_params(net);
	}
	free(cur);
	return st;
}

/* Everything a run needs, fresh or resumed (ck: the open checkpoint). */
static tl_status open_parts(run *r, int resume, const tl_st_file *ck, tl_err *err)
{
	tl_train_cfg *cfg = r->cfg;
	tl_progress_init(&r->prog, "tltrain", cfg->quiet);
	TL_TRY(tl_device_open(&r->dev, cfg->device[0] ? cfg->device : "auto", cfg->threads, err));
	TL_TRY(tl_device_set_precision(&r->dev, cfg->precision[0] ? cfg->precision : "fp32", err));
	if (!cfg->quiet)
		fprintf(stderr, "tltrain: device: %s\n", r->dev.be->name);
	TL_TRY(tl_shard_open(&r->sh, cfg->shard, err));
	r->st.shard_hash = r->sh->info.header_hash;
	TL_TRY(setup_items(r, err));
	if (!cfg->quiet) {
		if (cfg->val_fraction > 0)
			fprintf(stderr, "tltrain: validation: %" PRIu64 " images held out of the train split (--val %g, seed %" PRIu64 "; tleval --split val evaluates them); the test split's %" PRIu64 " are used once, at the end\n",
				r->n_va, cfg->val_fraction, cfg->seed, r->n_te);
		else
			fprintf(stderr, "tltrain: validation: the test split (--val test): its %" PRIu64 " images also choose the best epoch, so the test accuracy is not an independent estimate\n",
				r->n_te);
	}
	if (!cfg->quiet && !resume) { /* checkpoints keep the settings, not where they came from */
		char mine[1024], rec[1024];
		tl_train_defaults_text(cfg, mine, rec, sizeof mine);
		if (rec[0])
			fprintf(stderr, "tltrain: --recipe %s set: %s\n", cfg->recipe, rec);
		if (mine[0])
			fprintf(stderr, "tltrain: %s's own defaults (tltrain(1) MODELS says why; an option overrides each): %s\n",
				cfg->model, mine);
	}
	TL_TRY(setup_model(r, resume, err));
	if (!(r->pred = malloc(sizeof(int32_t) * (size_t)cfg->batch)))
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	tl_net_keep(r->net);
	if (resume)
		TL_TRY(load_resumed(r, ck, err));
	/* an unknown -u fails now, not after the warm-up */
	if (cfg->strategy == TL_STRAT_FINETUNE)
		TL_TRY(tl_net_unfreeze_from(r->net, stage_unit(cfg, 1), err));
	return TL_OK;
}

/* The run's own files are inputs it reads (--resume, the plots) only to
 * write them again: not inputs an output may never replace (infile.h). */
static void forget_own_files(const char *dir)
{
	static const char *const own[] = {"last.safetensors", "best.safetensors", "history.csv",
					  "history.json", "report.json", "confusion.csv",
					  "predictions.csv"};
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		char p[1200];
		snprintf(p, sizeof p, "%s/%s", dir, own[i]);
		tl_infile_forget(p);
	}
}

static tl_status run_open(run *r, int resume, tl_err *err)
{
	tl_st_file *ck = NULL;
	tl_train_cfg *cfg = r->cfg;
	if (!resume) {
		TL_TRY(check_fresh(cfg, err));
		if (mkdir(cfg->run_dir, 0777) == 0)
			r->created_dir = 1;
		else if (errno != EEXIST)
			return tl_seterr(err, TL_EIO, "%s: cannot create run directory: %s",
					 cfg->run_dir, strerror(errno));
	} else {
		tl_status cst = tl_checkpoint_open(cfg, &ck, err); /* names a missing checkpoint */
		if (cst != TL_OK) {
			tl_err lerr; /* a run just starting there has none yet: it is in use */
			if (lock_run_dir(r, &lerr) == TL_EUSAGE) {
				*err = lerr;
				return TL_EUSAGE;
			}
			unlock_run_dir(r);
			return cst;
		}
	}
	tl_status st = lock_run_dir(r, err);
	if (st == TL_OK && !resume)
		st = check_fresh(cfg, err); /* again, now that no other run can write */
	if (st != TL_OK) {
		tl_st_close(ck);
		return st;
	}
	st = open_parts(r, resume, ck, err);
	tl_st_close(ck);
	if (resume)
		forget_own_files(cfg->run_dir);
	return st;
}

/* Each stage from where the run stands: its trainable set, a fresh
 * optimizer and rate when it starts, then its epochs. */
static tl_status run_stages(run *r, int *stop, tl_err *err)
{
	tl_train_cfg *cfg = r->cfg;
	for (; r->st.stage < stage_count(cfg) && !*stop; r->st.stage++) {
		int first, end;
		stage_range(cfg, r->st.stage, &first, &end);
		if (r->st.epoch >= end)
			continue;
		TL_TRY(tl_net_unfreeze_from(r->net, stage_unit(cfg, r->st.stage), err));
		if (r->st.epoch == first && r->st.batch_pos == 0) { /* a fresh stage */
			tl_optim_reset(&r->opt);
			r->opt.lr = r->st.lr = stage_lr(cfg, r->st.stage);
			if (r->st.stage > 0)
				r->st.bad_epochs = 0;
		}
		r->opt.momentum = cfg->momentum; /* hyper-parameters, fresh or resumed */
		r->opt.nesterov = cfg->nesterov;
		r->opt.weight_decay = cfg->weight_decay;
		r->opt.head_mult = cfg->head_lr_mult;
		if (!cfg->quiet)
			fprintf(stderr, "tltrain: stage %d: %s trainable (%zu of %zu parameters), lr %.3g, epochs %d..%d\n",
				r->st.stage + 1, stage_unit(cfg, r->st.stage), tl_net_count_params(r->net, 1),
				tl_net_count_params(r->net, 0), stage_lr(cfg, r->st.stage), first + 1, end);
		TL_TRY(run_stage(r, stop, err));
		if (r->st.stage + 1 < stage_count(cfg))
			r->st.epoch = r->st.epoch > end ? r->st.epoch : end;
	}
	r->st.stage = stage_count(cfg) - 1;
	return TL_OK;
}

static void run_free(run *r)
{
	unlock_run_dir(r);
	tl_prefix_free(&r->pc, 1);
	if (r->opt_ready)
		tl_optim_free(&r->opt);
	tl_net_free(r->net);
	tl_device_close(&r->dev);
	tl_shard_close(r->sh);
	free(r->tr_rec);
	free(r->te_rec);
	free(r->tr_lab);
	free(r->te_lab);
	free(r->pred);
	free(r->tta_buf);
	tl_metrics_free(&r->best_val);
	free(r);
}

tl_status tl_train(tl_train_cfg *cfg, int resume, tl_train_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	run *r = calloc(1, sizeof *r);
	if (!r)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	r->cfg = cfg;
	r->lock_fd = -1;
	r->t_start = tl_now();
	int stop = 0;
	tl_status st = run_open(r, resume, err);
	if (st != TL_OK)
		drop_failed_dir(r); /* no empty run directory after a failed start */
	r->asked_epochs = cfg->max_epochs; /* the checkpoint's, on resume */
	if (st == TL_OK)
		st = run_stages(r, &stop, err);
	if (st == TL_OK) {
		res->stopped_early = stop;
		res->epochs_run = r->st.hist.n;
		res->best_epoch = r->st.best_epoch + 1;
		res->best_metric = r->st.best;
		/* restore the best weights, whether or not training stopped early */
		tl_net_restore(r->net);
		if (cfg->on_final)
			cfg->on_final(cfg->on_final_arg, r->net);
		st = write_report(r, res, err);
		res->seconds = tl_now() - r->t_start;
		if (st == TL_OK && cfg->time_limit > 0 && res->seconds > cfg->time_limit)
			fprintf(stderr, "tltrain: warning: --time-limit %g s was not met: the run took %.1f s, %.1f s over (%s)\n",
				cfg->time_limit, res->seconds, res->seconds - cfg->time_limit, TIME_OVER_WHY);
	}
	if (st == TL_EINTR)
		res->interrupted = 1;
	/* pictures of the epochs done, also after an interrupt (plot/run.c) */
	tl_err perr;
	tl_status pst = TL_OK;
	if ((st == TL_OK || st == TL_EINTR) && !cfg->no_plots && r->st.hist.n > 0) {
		pst = tl_run_plot_dir(cfg->run_dir, &perr);
		forget_own_files(cfg->run_dir); /* the plots read them */
	}
	if (st == TL_OK && pst != TL_OK)
		*err = perr, st = pst;
	if (st != TL_OK && st != TL_EINTR)
		drop_failed_dir(r); /* a run that failed before writing anything */
	run_free(r);
	return st;
}
