/* train.c - the training driver (see train.h). */
#define _GNU_SOURCE
#include "train/train.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/loader.h"
#include "train/metrics.h"
#include "nn/models.h"
#include "progress.h"
#include "rng.h"
#include "nn/safetensors.h"
#include "data/shard.h"
#include "nn/device.h"

#define MAX_EPOCHS 10000

void tl_train_defaults(tl_train_cfg *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->model, sizeof c->model, "vgg16");
	snprintf(c->shard, sizeof c->shard, "cifar10.tls");
	snprintf(c->run_dir, sizeof c->run_dir, "run");
	c->strategy = TL_STRAT_FINETUNE;
	c->patience = 3;
	c->max_epochs = 20;
	c->batch = 64;
	c->warmup_epochs = 3;
	c->lr = 1e-3f;
	c->lr2 = 1e-5f;
	c->opt = TL_OPT_ADAM;
	c->momentum = 0.9f;
	c->sched = TL_SCHED_COSINE;
	c->step_size = 5;
	c->gamma = 0.1f;
	c->plateau_patience = 2;
	c->pool = -1;
	c->dropout = -1;
	c->seed = 42;
	c->cache_mem_mb = 4096;
}

static const char *const strat_names[] = {"feature", "finetune", "scratch"};
static const char *const sched_names[] = {"constant", "step", "cosine", "plateau"};

const char *tl_strategy_name(tl_strategy s)
{
	return (unsigned)s < 3 ? strat_names[s] : "?";
}
const char *tl_schedule_name(tl_schedule s)
{
	return (unsigned)s < 4 ? sched_names[s] : "?";
}
int tl_strategy_parse(const char *s, tl_strategy *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, strat_names[i]))
			return *out = (tl_strategy)i, 0;
	return -1;
}
int tl_schedule_parse(const char *s, tl_schedule *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, sched_names[i]))
			return *out = (tl_schedule)i, 0;
	return -1;
}

/* ---- configuration <-> checkpoint metadata ---- */

#define KV_MAX 64
typedef struct {
	char key[KV_MAX][32];
	char val[KV_MAX][1100];
	int n;
} kv;

static void kv_put(kv *m, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void kv_put(kv *m, const char *k, const char *fmt, ...)
{
	TL_CHECK(m->n < KV_MAX);
	snprintf(m->key[m->n], sizeof m->key[0], "%s", k);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->val[m->n], sizeof m->val[0], fmt, ap);
	va_end(ap);
	m->n++;
}

static void cfg_to_kv(const tl_train_cfg *c, kv *m)
{
	kv_put(m, "model", "%s", c->model);
	kv_put(m, "weights", "%s", c->weights);
	kv_put(m, "shard", "%s", c->shard);
	kv_put(m, "strategy", "%s", tl_strategy_name(c->strategy));
	kv_put(m, "unit", "%s", c->unit);
	kv_put(m, "patience", "%d", c->patience);
	kv_put(m, "max_epochs", "%d", c->max_epochs);
	kv_put(m, "batch", "%d", c->batch);
	kv_put(m, "warmup_epochs", "%d", c->warmup_epochs);
	kv_put(m, "lr", "%.9g", c->lr);
	kv_put(m, "lr2", "%.9g", c->lr2);
	kv_put(m, "opt", "%s", c->opt == TL_OPT_ADAM ? "adam" : "sgd");
	kv_put(m, "momentum", "%.9g", c->momentum);
	kv_put(m, "weight_decay", "%.9g", c->weight_decay);
	kv_put(m, "nesterov", "%d", c->nesterov);
	kv_put(m, "schedule", "%s", tl_schedule_name(c->sched));
	kv_put(m, "step_size", "%d", c->step_size);
	kv_put(m, "gamma", "%.9g", c->gamma);
	kv_put(m, "plateau_patience", "%d", c->plateau_patience);
	kv_put(m, "head", "%s", c->head);
	kv_put(m, "pool", "%d", c->pool);
	kv_put(m, "dropout", "%.9g", c->dropout);
	kv_put(m, "flip", "%d", c->flip);
	kv_put(m, "crop_pad", "%d", c->crop_pad);
	kv_put(m, "val_fraction", "%.17g", c->val_fraction);
	kv_put(m, "monitor", "%s", c->monitor_loss ? "val_loss" : "val_accuracy");
	kv_put(m, "min_delta", "%.9g", c->min_delta);
	kv_put(m, "seed", "%" PRIu64, c->seed);
	kv_put(m, "no_cache", "%d", c->no_cache);
	kv_put(m, "cache_mem_mb", "%ld", c->cache_mem_mb);
}

static const char *need(const tl_st_file *f, const char *k, tl_err *err, tl_status *st)
{
	const char *v = tl_st_meta(f, k);
	if (!v && *st == TL_OK)
		*st = tl_seterr(err, TL_EFORMAT, "%s: metadata: %s missing (not a tltrain checkpoint?)",
				f->path, k);
	return v ? v : "0";
}

static tl_status cfg_from_meta(const tl_st_file *f, tl_train_cfg *c, tl_err *err)
{
	tl_status st = TL_OK;
	snprintf(c->model, sizeof c->model, "%s", need(f, "model", err, &st));
	snprintf(c->weights, sizeof c->weights, "%s", need(f, "weights", err, &st));
	snprintf(c->shard, sizeof c->shard, "%s", need(f, "shard", err, &st));
	if (tl_strategy_parse(need(f, "strategy", err, &st), &c->strategy) && st == TL_OK)
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad strategy", f->path);
	snprintf(c->unit, sizeof c->unit, "%s", need(f, "unit", err, &st));
	c->patience = atoi(need(f, "patience", err, &st));
	c->max_epochs = atoi(need(f, "max_epochs", err, &st));
	c->batch = atoi(need(f, "batch", err, &st));
	c->warmup_epochs = atoi(need(f, "warmup_epochs", err, &st));
	c->lr = strtof(need(f, "lr", err, &st), NULL);
	c->lr2 = strtof(need(f, "lr2", err, &st), NULL);
	c->opt = strcmp(need(f, "opt", err, &st), "adam") == 0 ? TL_OPT_ADAM : TL_OPT_SGD;
	c->momentum = strtof(need(f, "momentum", err, &st), NULL);
	c->weight_decay = strtof(need(f, "weight_decay", err, &st), NULL);
	c->nesterov = atoi(need(f, "nesterov", err, &st));
	if (tl_schedule_parse(need(f, "schedule", err, &st), &c->sched) && st == TL_OK)
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad schedule", f->path);
	c->step_size = atoi(need(f, "step_size", err, &st));
	c->gamma = strtof(need(f, "gamma", err, &st), NULL);
	c->plateau_patience = atoi(need(f, "plateau_patience", err, &st));
	snprintf(c->head, sizeof c->head, "%s", need(f, "head", err, &st));
	c->pool = atoi(need(f, "pool", err, &st));
	c->dropout = strtof(need(f, "dropout", err, &st), NULL);
	c->flip = atoi(need(f, "flip", err, &st));
	c->crop_pad = atoi(need(f, "crop_pad", err, &st));
	c->val_fraction = strtod(need(f, "val_fraction", err, &st), NULL);
	c->monitor_loss = strcmp(need(f, "monitor", err, &st), "val_loss") == 0;
	c->min_delta = strtof(need(f, "min_delta", err, &st), NULL);
	c->seed = strtoull(need(f, "seed", err, &st), NULL, 10);
	c->no_cache = atoi(need(f, "no_cache", err, &st));
	c->cache_mem_mb = atol(need(f, "cache_mem_mb", err, &st));
	if (st == TL_OK && (c->batch < 1 || c->max_epochs < 1 || c->max_epochs > MAX_EPOCHS))
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad batch or epoch count", f->path);
	return st;
}

/* ---- history ---- */

typedef struct {
	int epoch, stage;
	double acc, loss, val_acc, val_loss, lr, seconds, ips;
} hist_row;

typedef struct {
	hist_row rows[MAX_EPOCHS];
	int n;
} history;

static char *history_json(const history *h)
{
	size_t cap = 256 + (size_t)h->n * 256, k = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	k += (size_t)snprintf(s + k, cap - k, "[");
	for (int i = 0; i < h->n; i++) {
		const hist_row *r = &h->rows[i];
		k += (size_t)snprintf(s + k, cap - k,
				      "%s{\"epoch\":%d,\"stage\":%d,\"accuracy\":%.17g,\"loss\":%.17g,\"val_accuracy\":%.17g,\"val_loss\":%.17g,\"lr\":%.9g,\"seconds\":%.6f,\"images_per_s\":%.3f}",
				      i ? "," : "", r->epoch, r->stage, r->acc, r->loss, r->val_acc,
				      r->val_loss, r->lr, r->seconds, r->ips);
	}
	snprintf(s + k, cap - k, "]");
	return s;
}

/* Parse what history_json wrote (our own format, fields in order). */
static int history_parse(const char *s, history *h)
{
	h->n = 0;
	const char *p = s;
	while ((p = strstr(p, "{\"epoch\":")) && h->n < MAX_EPOCHS) {
		hist_row *r = &h->rows[h->n];
		if (sscanf(p, "{\"epoch\":%d,\"stage\":%d,\"accuracy\":%lf,\"loss\":%lf,\"val_accuracy\":%lf,\"val_loss\":%lf,\"lr\":%lf,\"seconds\":%lf,\"images_per_s\":%lf}",
			   &r->epoch, &r->stage, &r->acc, &r->loss, &r->val_acc, &r->val_loss, &r->lr,
			   &r->seconds, &r->ips) != 9)
			return -1;
		h->n++;
		p++;
	}
	return 0;
}

static tl_status history_write(const char *dir, const history *h, tl_err *err)
{
	char path[1200];
	size_t cap = 128 + (size_t)h->n * 200, k = 0;
	char *csv = malloc(cap);
	char *js = history_json(h);
	if (!csv || !js) {
		free(csv);
		free(js);
		return tl_seterr(err, TL_ENOMEM, "history: out of memory");
	}
	k += (size_t)snprintf(csv, cap, "epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds,images_per_s\n");
	for (int i = 0; i < h->n; i++) {
		const hist_row *r = &h->rows[i];
		k += (size_t)snprintf(csv + k, cap - k, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.1f\n", r->epoch,
				      r->acc, r->loss, r->val_acc, r->val_loss, r->lr, r->seconds, r->ips);
	}
	snprintf(path, sizeof path, "%s/history.csv", dir);
	tl_status st = tl_write_file_atomic(path, csv, k, err);
	if (st == TL_OK) {
		snprintf(path, sizeof path, "%s/history.json", dir);
		size_t jl = strlen(js);
		js[jl] = '\n';
		st = tl_write_file_atomic(path, js, jl + 1, err);
	}
	free(csv);
	free(js);
	return st;
}

/* ---- the run ---- */

typedef struct {
	int epoch;          /* epochs completed */
	int stage;
	uint64_t batch_pos; /* batches done in the current epoch */
	double part_loss, part_seconds;
	uint64_t part_correct, part_seen;
	double best;
	int best_epoch, bad_epochs, plateau_bad;
	double plateau_best;
	float lr;
	history hist;
} run_state;

typedef struct {
	tl_train_cfg *cfg;
	tl_shard *sh;
	tl_net *net;
	tl_device dev;
	float *xb; /* a host batch of images (cache fills) */
	tl_optim opt;
	int opt_ready;
	/* items */
	uint64_t *tr_rec, *va_rec, *te_rec;
	int32_t *tr_lab, *va_lab, *te_lab;
	uint64_t n_tr, n_va, n_te;
	/* frozen-prefix cache: the input of layer cache_layer for every item */
	int cache_layer; /* first layer run per batch; 0 = no cache */
	size_t cache_row;
	float *cache_tr, *cache_va;
	size_t cache_bytes;
	int cache_mapped;
	double cache_seconds;
	/* a deeper cache kept for the next stage (finetune builds it first and
	 * derives the head-only cache from it, saving a pass of the base) */
	struct {
		int layer;
		size_t row, bytes;
		float *tr;
		int mapped;
	} keep;
	int32_t *pred;      /* each sample's predicted class, one batch */
	float *opt_host[2]; /* optimizer state staged for checkpoints (m, v) */
	run_state st;
	double t_start;
	tl_progress prog;
	long batches_run;
} run;

static int stage_count(const tl_train_cfg *c)
{
	return c->strategy == TL_STRAT_FINETUNE && c->warmup_epochs < c->max_epochs ? 2 : 1;
}

/* Epoch range [*first, *end) of a stage. */
static void stage_range(const tl_train_cfg *c, int stage, int *first, int *end)
{
	if (c->strategy != TL_STRAT_FINETUNE) {
		*first = 0, *end = c->max_epochs;
		return;
	}
	int w = c->warmup_epochs < c->max_epochs ? c->warmup_epochs : c->max_epochs;
	*first = stage == 0 ? 0 : w;
	*end = stage == 0 ? w : c->max_epochs;
}

static const char *default_unit(const char *model)
{
	return strcmp(model, "squeezenet") == 0 ? "fire9" : "block5";
}

/* Which unit is trainable in a stage. */
static const char *stage_unit(const tl_train_cfg *c, int stage)
{
	if (c->strategy == TL_STRAT_SCRATCH)
		return "all";
	if (c->strategy == TL_STRAT_FEATURE || stage == 0)
		return "head";
	return c->unit[0] ? c->unit : default_unit(c->model);
}

static float stage_lr(const tl_train_cfg *c, int stage)
{
	return c->strategy == TL_STRAT_FINETUNE && stage == 1 ? c->lr2 : c->lr;
}

static float schedule_lr(const run *r, int epoch)
{
	const tl_train_cfg *c = r->cfg;
	float base = stage_lr(c, r->st.stage);
	int first, end;
	stage_range(c, r->st.stage, &first, &end);
	int e = epoch - first, n = end - first;
	switch (c->sched) {
	case TL_SCHED_STEP:
		return base * powf(c->gamma, (float)(e / (c->step_size > 0 ? c->step_size : 1)));
	case TL_SCHED_COSINE:
		return (float)(base * 0.5 * (1 + cos(M_PI * e / (n > 0 ? n : 1))));
	case TL_SCHED_PLATEAU:
		return r->st.lr; /* changed on plateaus only */
	case TL_SCHED_CONSTANT:
		break;
	}
	return base;
}

static void unmap_or_free(float *p, size_t bytes, int mapped)
{
	if (mapped && p)
		munmap(p, bytes);
	else if (!mapped)
		free(p);
}

static void free_keep(run *r)
{
	unmap_or_free(r->keep.tr, r->keep.bytes, r->keep.mapped);
	memset(&r->keep, 0, sizeof r->keep);
}

static void free_cache(run *r)
{
	if (r->cache_mapped) {
		if (r->cache_tr)
			munmap(r->cache_tr, r->cache_bytes);
	} else {
		free(r->cache_tr);
	}
	r->cache_tr = r->cache_va = NULL;
	r->cache_layer = 0;
	r->cache_mapped = 0;
}

/* One allocation for train + val rows: RAM, or an unlinked file mapping in
 * the run directory when larger than cache_mem_mb. */
static tl_status alloc_cache(run *r, size_t floats, tl_err *err)
{
	r->cache_bytes = floats * sizeof(float);
	if (r->cache_bytes <= (size_t)r->cfg->cache_mem_mb << 20) {
		r->cache_tr = malloc(r->cache_bytes ? r->cache_bytes : 1);
		if (!r->cache_tr)
			return tl_seterr(err, TL_ENOMEM, "prefix cache: out of memory for %zu MiB",
					 r->cache_bytes >> 20);
		return TL_OK;
	}
	char path[1200];
	snprintf(path, sizeof path, "%s/.cache.XXXXXX", r->cfg->run_dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return tl_seterr(err, TL_EIO, "%s: cannot create the prefix cache file: %s", path,
				 strerror(errno));
	unlink(path);
	if (ftruncate(fd, (off_t)r->cache_bytes) != 0) {
		close(fd);
		return tl_seterr(err, TL_EIO, "%s: cannot size the prefix cache (%zu MiB): %s", path,
				 r->cache_bytes >> 20, strerror(errno));
	}
	void *m = mmap(NULL, r->cache_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return tl_seterr(err, TL_EIO, "prefix cache: cannot map %zu MiB: %s",
				 r->cache_bytes >> 20, strerror(errno));
	r->cache_tr = m;
	r->cache_mapped = 1;
	return TL_OK;
}

/* Store the input tensor of layer k for n items: run layers [from, k)
 * on the images (src NULL, from 0) or on rows of an earlier cache src
 * holding the input of layer from. */
static tl_status fill_cache(run *r, const float *src, size_t src_row, int from,
			    const uint64_t *rec, uint64_t n, float *dst, int k, tl_err *err)
{
	tl_net *net = r->net;
	int t = net->layers[k].in[0], tf = from ? net->layers[from].in[0] : 0;
	size_t isz = (size_t)3 * r->sh->info.height * r->sh->info.width;
	for (uint64_t b0 = 0; b0 < n; b0 += (uint64_t)r->cfg->batch) {
		if (r->cfg->cancel && *r->cfg->cancel)
			return tl_seterr(err, TL_EINTR, "interrupted while building the prefix cache");
		int nb = n - b0 < (uint64_t)r->cfg->batch ? (int)(n - b0) : r->cfg->batch;
		if (src) {
			tl_net_set(net, tf, src + b0 * src_row, nb);
		} else {
			for (int i = 0; i < nb; i++)
				TL_TRY(tl_shard_load_f32(r->sh, rec[b0 + i], r->xb + i * isz, err));
			tl_net_set(net, 0, r->xb, nb);
		}
		tl_net_forward(net, nb, from, k);
		TL_TRY(tl_net_get(net, t, dst + b0 * r->cache_row, nb, err));
		tl_progress_update(&r->prog, b0 + nb, n, b0 + nb, "images cached");
	}
	return TL_OK;
}

/* Can the input of layer k stand in for everything before it?  Every
 * later layer must read only tensors made at or after that input. */
static int cacheable(const tl_net *net, int k)
{
	if (k <= 0 || k >= net->n_layers)
		return 0;
	int t = net->layers[k].in[0];
	for (int l = k; l < net->n_layers; l++)
		for (int i = 0; i < net->layers[l].n_in; i++)
			if (net->layers[l].in[i] < t)
				return 0;
	return 1;
}

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
static tl_status build_cache(run *r, tl_err *err)
{
	free_cache(r);
	int k = tl_net_first_trainable(r->net);
	if (r->cfg->no_cache || r->cfg->flip || r->cfg->crop_pad || !cacheable(r->net, k)) {
		free_keep(r);
		return TL_OK;
	}
	double t0 = tl_now();
	if (r->keep.tr && r->keep.layer == k) { /* built by the previous stage */
		r->cache_layer = k;
		r->cache_row = r->keep.row;
		r->cache_tr = r->keep.tr;
		r->cache_bytes = r->keep.bytes;
		r->cache_mapped = r->keep.mapped;
		r->cache_va = r->cache_tr + r->n_tr * r->cache_row;
		memset(&r->keep, 0, sizeof r->keep);
		return TL_OK;
	}
	free_keep(r);
	r->net->training = 0;
	tl_status st = TL_OK;
	/* finetune warm-up: cache the next stage's input first, derive ours */
	int k2 = -1;
	if (r->cfg->strategy == TL_STRAT_FINETUNE && r->st.stage == 0 && stage_count(r->cfg) == 2) {
		k2 = first_trainable_for(r, stage_unit(r->cfg, 1), stage_unit(r->cfg, 0));
		if (!(k2 > 0 && k2 < k && cacheable(r->net, k2)))
			k2 = -1;
	}
	if (k2 > 0) {
		r->cache_row = (size_t)tl_net_out_size(r->net, r->net->layers[k2].in[0]);
		TL_TRY(alloc_cache(r, (r->n_tr + r->n_va) * r->cache_row, err));
		r->cache_va = r->cache_tr + r->n_tr * r->cache_row;
		st = fill_cache(r, NULL, 0, 0, r->tr_rec, r->n_tr, r->cache_tr, k2, err);
		if (st == TL_OK)
			st = fill_cache(r, NULL, 0, 0, r->va_rec, r->n_va, r->cache_va, k2, err);
		if (st != TL_OK) {
			free_cache(r);
			tl_progress_end(&r->prog);
			return st;
		}
		r->keep.layer = k2;
		r->keep.row = r->cache_row;
		r->keep.tr = r->cache_tr;
		r->keep.bytes = r->cache_bytes;
		r->keep.mapped = r->cache_mapped;
		r->cache_tr = r->cache_va = NULL;
		r->cache_mapped = 0;
	}
	r->cache_row = (size_t)tl_net_out_size(r->net, r->net->layers[k].in[0]);
	TL_TRY(alloc_cache(r, (r->n_tr + r->n_va) * r->cache_row, err));
	r->cache_va = r->cache_tr + r->n_tr * r->cache_row;
	const float *ktr = r->keep.tr, *kva = ktr ? ktr + r->n_tr * r->keep.row : NULL;
	st = fill_cache(r, ktr, r->keep.row, k2 > 0 ? k2 : 0, r->tr_rec, r->n_tr, r->cache_tr, k, err);
	if (st == TL_OK)
		st = fill_cache(r, kva, r->keep.row, k2 > 0 ? k2 : 0, r->va_rec, r->n_va, r->cache_va, k,
				err);
	tl_progress_end(&r->prog);
	if (st != TL_OK) {
		free_cache(r);
		free_keep(r);
		return st;
	}
	r->cache_layer = k;
	r->cache_seconds += tl_now() - t0;
	if (!r->cfg->quiet) {
		if (k2 > 0)
			fprintf(stderr, "tltrain: prefix cache: input of %s kept for stage 2 (%.1f MiB)\n",
				r->net->layers[k2].name, r->keep.bytes / 1048576.0);
		fprintf(stderr, "tltrain: prefix cache: input of %s, %zu floats per image, %.1f MiB %s, built in %.1f s\n",
			r->net->layers[k].name, r->cache_row, r->cache_bytes / 1048576.0,
			r->cache_mapped ? "(file mapping)" : "in RAM", tl_now() - t0);
	}
	return TL_OK;
}

/* Forward one batch from a loader batch (images or cache rows). */
static void forward_batch(run *r, const float *x, int n)
{
	tl_net *net = r->net;
	int from = r->cache_layer, t = net->layers[from].in[0];
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
	lc.row_floats = cache ? r->cache_row : (size_t)tl_net_out_size(r->net, 0);
	lc.batch = r->cfg->batch;
	lc.shuffle = train;
	lc.flip = train && !cache && r->cfg->flip;
	lc.crop_pad = train && !cache ? r->cfg->crop_pad : 0;
	lc.seed = r->cfg->seed;
	lc.workers = cache ? 1 : 2;
	lc.depth = 4;
	return tl_loader_new(l, &lc, err);
}

/* Loss and metrics over a set of items with the current weights. */
static tl_status evaluate(run *r, const uint64_t *rec, const int32_t *lab, uint64_t n,
			  const float *cache, tl_metrics *m, tl_err *err)
{
	tl_loader *l;
	int saved = r->cache_layer;
	if (!cache)
		r->cache_layer = 0;
	tl_status st = make_loader(r, &l, rec, lab, n, cache, 0, err);
	if (st != TL_OK) {
		r->cache_layer = saved;
		return st;
	}
	r->net->training = 0;
	tl_loader_start(l, 0, 0);
	for (;;) {
		const float *x;
		const int32_t *y;
		int nb;
		if ((st = tl_loader_next(l, &x, &y, &nb, err)) != TL_OK || nb == 0)
			break;
		forward_batch(r, x, nb);
		double loss;
		if ((st = tl_net_loss(r->net, nb, y, 0, &loss, r->pred, err)) != TL_OK)
			break;
		tl_metrics_add_pred(m, r->pred, y, nb, loss);
	}
	tl_loader_free(l);
	r->cache_layer = saved;
	return st;
}

/* ---- checkpoints ---- */

/* Stage the optimizer state in host memory for a checkpoint. */
static tl_status opt_stage(run *r, tl_err *err)
{
	for (int w = 0; w < (r->opt.v ? 2 : 1); w++)
		TL_TRY(tl_optim_get(&r->opt, w, 0, r->net->n_param_floats, r->opt_host[w], err));
	return TL_OK;
}

static tl_status save_checkpoint(run *r, tl_err *err)
{
	tl_net *net = r->net;
	int np = net->n_params, nt = np * (r->opt.v ? 3 : 2);
	tl_st_out *t = calloc((size_t)nt, sizeof *t);
	char (*names)[80] = calloc((size_t)nt, sizeof *names);
	kv *m = calloc(1, sizeof *m);
	char *hj = history_json(&r->st.hist);
	tl_status st = TL_OK;
	if (!t || !names || !m || !hj) {
		st = tl_seterr(err, TL_ENOMEM, "checkpoint: out of memory");
		goto out;
	}
	if ((st = opt_stage(r, err)) != TL_OK || (st = tl_net_pull_params(net, err)) != TL_OK)
		goto out;
	int k = 0;
	for (int i = 0; i < np; i++) {
		tl_param *p = &net->params[i];
		t[k] = (tl_st_out){.name = p->name, .dtype = TL_ST_F32, .ndim = p->ndim, .data = p->data};
		memcpy(t[k].shape, p->shape, sizeof p->shape);
		k++;
		snprintf(names[k], sizeof names[k], "optim.m.%s", p->name);
		t[k] = (tl_st_out){.name = names[k], .dtype = TL_ST_F32, .ndim = 1,
				   .shape = {(int64_t)p->size}, .data = r->opt_host[0] + p->off};
		k++;
		if (r->opt.v) {
			snprintf(names[k], sizeof names[k], "optim.v.%s", p->name);
			t[k] = (tl_st_out){.name = names[k], .dtype = TL_ST_F32, .ndim = 1,
					   .shape = {(int64_t)p->size}, .data = r->opt_host[1] + p->off};
			k++;
		}
	}
	cfg_to_kv(r->cfg, m);
	kv_put(m, "tltrain_checkpoint", "1");
	kv_put(m, "epoch", "%d", r->st.epoch);
	kv_put(m, "stage", "%d", r->st.stage);
	kv_put(m, "batch_pos", "%" PRIu64, r->st.batch_pos);
	kv_put(m, "part_loss", "%.17g", r->st.part_loss);
	kv_put(m, "part_seconds", "%.17g", r->st.part_seconds);
	kv_put(m, "part_correct", "%" PRIu64, r->st.part_correct);
	kv_put(m, "part_seen", "%" PRIu64, r->st.part_seen);
	kv_put(m, "best", "%.17g", r->st.best);
	kv_put(m, "best_epoch", "%d", r->st.best_epoch);
	kv_put(m, "bad_epochs", "%d", r->st.bad_epochs);
	kv_put(m, "plateau_bad", "%d", r->st.plateau_bad);
	kv_put(m, "plateau_best", "%.17g", r->st.plateau_best);
	kv_put(m, "cur_lr", "%.9g", r->st.lr);
	kv_put(m, "opt_step", "%ld", r->opt.step);
	const char **meta = calloc((size_t)(m->n + 1) * 2, sizeof(char *));
	if (!meta) {
		st = tl_seterr(err, TL_ENOMEM, "checkpoint: out of memory");
		goto out;
	}
	for (int i = 0; i < m->n; i++) {
		meta[2 * i] = m->key[i];
		meta[2 * i + 1] = m->val[i];
	}
	meta[2 * m->n] = "history";
	meta[2 * m->n + 1] = hj;
	char path[1200];
	snprintf(path, sizeof path, "%s/last.safetensors", r->cfg->run_dir);
	st = tl_st_write(path, t, (size_t)k, meta, (size_t)m->n + 1, err);
	free(meta);
out:
	free(t);
	free(names);
	free(m);
	free(hj);
	return st;
}

static tl_status save_best(run *r, tl_err *err)
{
	const tl_shard_info *in = &r->sh->info;
	char classes[TL_SHARD_MAX_CLASSES * TL_SHARD_NAME_MAX] = "", hw[32], nc[16], ep[16], val[32];
	for (uint32_t i = 0; i < in->n_classes; i++) {
		strcat(classes, i ? "," : "");
		strcat(classes, in->class_names[i]);
	}
	snprintf(hw, sizeof hw, "%ux%u", in->height, in->width);
	snprintf(nc, sizeof nc, "%u", in->n_classes);
	snprintf(ep, sizeof ep, "%d", r->st.best_epoch + 1);
	snprintf(val, sizeof val, "%.6f", r->st.best);
	/* everything tleval needs to rebuild the network */
	char head[96] = "";
	for (int l = 0; l < r->net->n_layers; l++)
		if (r->net->layers[l].kind == TL_L_DENSE && strcmp(r->net->layers[l].name, "predictions")) {
			char e[16];
			snprintf(e, sizeof e, "%s%d", head[0] ? "," : "", r->net->layers[l].out_c);
			strcat(head, e);
		}
	const char *meta[] = {"model", r->cfg->model, "normalization", tl_norm_name(in->norm.kind),
			      "input_size", hw, "classes", classes, "n_classes", nc,
			      "head", head[0] ? head : "none",
			      "pool", tl_net_find_layer(r->net, "flatten") >= 0 ? "flatten" : "gap",
			      "epoch", ep,
			      r->cfg->monitor_loss ? "val_loss" : "val_accuracy", val,
			      "producer", "tltrain"};
	char path[1200];
	snprintf(path, sizeof path, "%s/best.safetensors", r->cfg->run_dir);
	return tl_net_save(r->net, path, meta, sizeof meta / sizeof meta[0] / 2, err);
}

/* Restore weights, optimizer state and run state from last.safetensors
 * (the configuration was read already). */
static tl_status load_checkpoint(run *r, const tl_st_file *f, tl_err *err)
{
	tl_net *net = r->net;
	for (int i = 0; i < net->n_params; i++) {
		tl_param *p = &net->params[i];
		TL_TRY(tl_st_read_f32(f, p->name, p->ndim, p->shape, p->data, err));
		p->loaded = 1;
		char name[96];
		int64_t sz = (int64_t)p->size;
		snprintf(name, sizeof name, "optim.m.%s", p->name);
		TL_TRY(tl_st_read_f32(f, name, 1, &sz, r->opt_host[0] + p->off, err));
		if (r->opt.v) {
			snprintf(name, sizeof name, "optim.v.%s", p->name);
			TL_TRY(tl_st_read_f32(f, name, 1, &sz, r->opt_host[1] + p->off, err));
		}
	}
	tl_net_push_params(net);
	for (int w = 0; w < (r->opt.v ? 2 : 1); w++)
		tl_optim_set(&r->opt, w, 0, net->n_param_floats, r->opt_host[w]);
	tl_status st = TL_OK;
	r->st.epoch = atoi(need(f, "epoch", err, &st));
	r->st.stage = atoi(need(f, "stage", err, &st));
	r->st.batch_pos = strtoull(need(f, "batch_pos", err, &st), NULL, 10);
	r->st.part_loss = strtod(need(f, "part_loss", err, &st), NULL);
	r->st.part_seconds = strtod(need(f, "part_seconds", err, &st), NULL);
	r->st.part_correct = strtoull(need(f, "part_correct", err, &st), NULL, 10);
	r->st.part_seen = strtoull(need(f, "part_seen", err, &st), NULL, 10);
	r->st.best = strtod(need(f, "best", err, &st), NULL);
	r->st.best_epoch = atoi(need(f, "best_epoch", err, &st));
	r->st.bad_epochs = atoi(need(f, "bad_epochs", err, &st));
	r->st.plateau_bad = atoi(need(f, "plateau_bad", err, &st));
	r->st.plateau_best = strtod(need(f, "plateau_best", err, &st), NULL);
	r->st.lr = strtof(need(f, "cur_lr", err, &st), NULL);
	r->opt.step = atol(need(f, "opt_step", err, &st));
	if (st == TL_OK && history_parse(need(f, "history", err, &st), &r->st.hist))
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: unreadable history", f->path);
	if (st == TL_OK && (r->st.stage < 0 || r->st.stage >= stage_count(r->cfg) ||
			    r->st.epoch < 0 || r->st.epoch > r->cfg->max_epochs))
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: epoch %d / stage %d out of range",
			       f->path, r->st.epoch, r->st.stage);
	return st;
}

/* Items of the train / validation / test sets. */
static tl_status setup_items(run *r, tl_err *err)
{
	tl_shard *sh = r->sh;
	int tr = tl_shard_split_find(sh, "train"), te = tl_shard_split_find(sh, "test");
	if (tr < 0 || te < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: needs a train and a test split", sh->path);
	uint64_t ntr = sh->info.splits[tr].count, nte = sh->info.splits[te].count;
	uint64_t nva = r->cfg->val_fraction > 0 ? (uint64_t)llround(r->cfg->val_fraction * (double)ntr) : 0;
	if (r->cfg->val_fraction > 0 && (nva < 1 || nva >= ntr))
		return tl_seterr(err, TL_EUSAGE, "--val %g leaves no training or validation images (train has %" PRIu64 ")",
				 r->cfg->val_fraction, ntr);
	r->n_tr = ntr - nva;
	r->n_va = nva ? nva : nte;
	r->n_te = nte;
	r->tr_rec = malloc(sizeof(uint64_t) * (ntr ? ntr : 1));
	r->te_rec = malloc(sizeof(uint64_t) * (nte ? nte : 1));
	r->tr_lab = malloc(sizeof(int32_t) * (ntr ? ntr : 1));
	r->te_lab = malloc(sizeof(int32_t) * (nte ? nte : 1));
	if (!r->tr_rec || !r->te_rec || !r->tr_lab || !r->te_lab)
		return tl_seterr(err, TL_ENOMEM, "out of memory for the item lists");
	/* a seeded permutation of train; its last nva items are the validation set */
	uint64_t *perm = r->tr_rec;
	for (uint64_t i = 0; i < ntr; i++)
		perm[i] = i;
	if (nva) {
		uint64_t s = tl_rng_key(r->cfg->seed, 0x7a1, 0, 0);
		for (uint64_t i = ntr; i > 1; i--) {
			uint64_t j = tl_rng_below(&s, i), t = perm[i - 1];
			perm[i - 1] = perm[j];
			perm[j] = t;
		}
	}
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
	TL_TRY(tl_model_build(&mc, &r->net, err));
	TL_TRY(tl_net_bind(r->net, r->dev.be, c->batch, err));
	TL_TRY(tl_optim_init(&r->opt, r->net, c->opt, err));
	for (int w = 0; w < 2; w++)
		if (!(r->opt_host[w] = calloc(r->net->n_param_floats + 1, sizeof(float))))
			return tl_seterr(err, TL_ENOMEM, "out of memory for the optimizer state");
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
	for (int i = 0; i < r->net->n_params; i++) {
		tl_param *p = &r->net->params[i];
		if (!p->loaded && strncmp(p->name, "head.", 5) != 0)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: tensor %s: missing (is this a %s weights file?)", c->weights,
					 p->name, c->model);
	}
	if (norm >= 0 && norm != (int)in->norm.kind)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: input normalization '%s' does not match the weights' '%s' (%s); repack with: tlpack --norm %s",
				 c->shard, tl_norm_name(in->norm.kind), tl_norm_name((tl_norm_kind)norm),
				 c->weights, tl_norm_name((tl_norm_kind)norm));
	if (norm < 0 && !c->quiet)
		fprintf(stderr, "tltrain: warning: %s does not declare its input normalization; the shard is '%s'\n",
			c->weights, tl_norm_name(in->norm.kind));
	tl_net_init(r->net, c->seed, 1);
	return TL_OK;
}

static void print_epoch(run *r, const hist_row *h, int best)
{
	if (r->cfg->quiet)
		return;
	if (r->cfg->json)
		printf("{\"epoch\":%d,\"stage\":\"%s\",\"accuracy\":%.6f,\"loss\":%.6f,\"val_accuracy\":%.6f,\"val_loss\":%.6f,\"lr\":%.6g,\"seconds\":%.3f,\"images_per_s\":%.1f,\"best\":%s}\n",
		       h->epoch, stage_unit(r->cfg, h->stage), h->acc, h->loss, h->val_acc, h->val_loss,
		       h->lr, h->seconds, h->ips, best ? "true" : "false");
	else
		printf("epoch %d/%d [%s]: loss %.4f acc %.4f val_loss %.4f val_acc %.4f lr %.3g %.1f s %.0f img/s%s\n",
		       h->epoch, r->cfg->max_epochs, stage_unit(r->cfg, h->stage), h->loss, h->acc,
		       h->val_loss, h->val_acc, h->lr, h->seconds, h->ips, best ? " *" : "");
	fflush(stdout);
}

/* Train epochs of the current stage; returns TL_EINTR on cancel (after
 * checkpointing).  *stop is set when early stopping ends the run. */
static tl_status run_stage(run *r, int *stop, tl_err *err)
{
	tl_train_cfg *c = r->cfg;
	int first, end;
	stage_range(c, r->st.stage, &first, &end);
	tl_status cst = build_cache(r, err);
	if (cst == TL_EINTR) { /* keep the run resumable */
		TL_TRY(save_checkpoint(r, err));
		return tl_seterr(err, TL_EINTR, "interrupted while building the prefix cache; resume with: tltrain --resume %s",
				 c->run_dir);
	}
	if (cst != TL_OK)
		return cst;
	tl_loader *tl = NULL;
	TL_TRY(make_loader(r, &tl, r->tr_rec, r->tr_lab, r->n_tr, r->cache_layer ? r->cache_tr : NULL, 1, err));
	int k = (int)r->sh->info.n_classes;
	tl_status st = TL_OK;
	uint64_t nb_total = tl_loader_batches(tl);
	while (st == TL_OK && r->st.epoch < end && !*stop) {
		int e = r->st.epoch;
		if (r->st.batch_pos == 0)
			r->st.lr = schedule_lr(r, e);
		r->opt.lr = r->st.lr;
		tl_loader_start(tl, e, r->st.batch_pos);
		double t0 = tl_now() - r->st.part_seconds;
		for (;;) {
			const float *x;
			const int32_t *y;
			int nb;
			if ((st = tl_loader_next(tl, &x, &y, &nb, err)) != TL_OK || nb == 0)
				break;
			r->net->training = 1;
			r->net->rng = tl_rng_key(c->seed, 0xd0, (uint64_t)e, r->st.batch_pos);
			forward_batch(r, x, nb);
			double loss;
			if ((st = tl_net_loss(r->net, nb, y, 1, &loss, r->pred, err)) != TL_OK)
				break;
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
			if (r->prog.enabled && !c->quiet) {
				fprintf(stderr, "\rtltrain: epoch %d/%d batch %" PRIu64 "/%" PRIu64 " loss %.4f acc %.4f %.0f img/s ETA %.0fs   ",
					e + 1, c->max_epochs, r->st.batch_pos, nb_total,
					r->st.part_loss / r->st.part_seen,
					(double)r->st.part_correct / r->st.part_seen, r->st.part_seen / el,
					el / r->st.batch_pos * (nb_total - r->st.batch_pos));
				fflush(stderr);
			}
			if ((c->cancel && *c->cancel) ||
			    (c->cancel_after > 0 && ++r->batches_run >= c->cancel_after)) {
				r->st.part_seconds = el;
				tl_progress_end(&r->prog);
				tl_status cs = save_checkpoint(r, err);
				st = cs != TL_OK ? cs
						 : tl_seterr(err, TL_EINTR,
							     "interrupted in epoch %d after batch %" PRIu64 "; resume with: tltrain --resume %s",
							     e + 1, r->st.batch_pos, c->run_dir);
				break;
			}
		}
		if (st != TL_OK)
			break;
		tl_progress_end(&r->prog);
		double train_s = tl_now() - t0;
		tl_metrics m;
		tl_metrics_init(&m, k);
		st = evaluate(r, r->va_rec, r->va_lab, r->n_va, r->cache_layer ? r->cache_va : NULL, &m, err);
		double sec = tl_now() - t0;
		hist_row h = {.epoch = e + 1, .stage = r->st.stage,
			      .acc = (double)r->st.part_correct / (r->st.part_seen ? r->st.part_seen : 1),
			      .loss = r->st.part_loss / (r->st.part_seen ? r->st.part_seen : 1),
			      .val_acc = tl_metrics_accuracy(&m), .val_loss = tl_metrics_loss(&m),
			      .lr = r->st.lr, .seconds = sec, .ips = r->n_tr / (train_s > 0 ? train_s : 1)};
		tl_metrics_free(&m);
		if (st != TL_OK)
			break;
		double metric = c->monitor_loss ? h.val_loss : h.val_acc;
		int better = r->st.hist.n == 0 ||
			     (c->monitor_loss ? metric < r->st.best - c->min_delta
					      : metric > r->st.best + c->min_delta);
		r->st.hist.rows[r->st.hist.n++] = h;
		if (better) {
			r->st.best = metric;
			r->st.best_epoch = e;
			r->st.bad_epochs = 0;
			tl_net_keep(r->net);
			if ((st = save_best(r, err)) != TL_OK)
				break;
		} else {
			r->st.bad_epochs++;
		}
		if (c->sched == TL_SCHED_PLATEAU) {
			int pb = r->st.hist.n == 1 || (c->monitor_loss ? metric < r->st.plateau_best
								       : metric > r->st.plateau_best);
			if (pb) {
				r->st.plateau_best = metric;
				r->st.plateau_bad = 0;
			} else if (++r->st.plateau_bad >= c->plateau_patience) {
				r->st.lr *= c->gamma;
				r->st.plateau_bad = 0;
			}
		}
		print_epoch(r, &h, better);
		r->st.epoch = e + 1;
		r->st.batch_pos = 0;
		r->st.part_loss = r->st.part_seconds = 0;
		r->st.part_correct = r->st.part_seen = 0;
		if (c->patience > 0 && r->st.bad_epochs >= c->patience) {
			if (c->strategy == TL_STRAT_FINETUNE && r->st.stage == 0)
				r->st.epoch = end; /* warm-up is over early: go fine-tune */
			else
				*stop = 1;
		}
		if ((st = history_write(c->run_dir, &r->st.hist, err)) != TL_OK ||
		    (st = save_checkpoint(r, err)) != TL_OK)
			break;
	}
	tl_loader_free(tl);
	return st;
}

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
	const float *cache = c->val_fraction == 0 && r->cache_layer ? r->cache_va : NULL;
	tl_status st = evaluate(r, r->te_rec, r->te_lab, r->n_te, cache, &m, err);
	if (st != TL_OK) {
		tl_metrics_free(&m);
		return st;
	}
	res->test_accuracy = tl_metrics_accuracy(&m);
	res->test_loss = tl_metrics_loss(&m);
	double *prf = calloc((size_t)k * 3, sizeof(double));
	res->macro_f1 = prf ? tl_metrics_prf(&m, prf, prf + k, prf + 2 * k) : 0;
	free(prf);
	/* latency: one image through the whole network, median of 21 */
	double lat[21];
	r->net->training = 0;
	for (int i = 0; i < 21; i++) {
		double t0 = tl_now();
		tl_net_forward(r->net, 1, 0, r->net->n_layers);
		tl_status ls = r->dev.be->sync(r->dev.be, err);
		if (ls != TL_OK)
			return ls;
		lat[i] = tl_now() - t0;
	}
	for (int i = 1; i < 21; i++)
		for (int j = i; j > 0 && lat[j] < lat[j - 1]; j--) {
			double t = lat[j];
			lat[j] = lat[j - 1];
			lat[j - 1] = t;
		}
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
	fprintf(o, "strategy:         %s", tl_strategy_name(c->strategy));
	if (c->strategy == TL_STRAT_FINETUNE)
		fprintf(o, " (unfreeze %s after %d warm-up epochs)", stage_unit(c, 1), c->warmup_epochs);
	fprintf(o, "\ndata:             %s: %" PRIu64 " train, %" PRIu64 " validation (%s), %" PRIu64 " test\n",
		c->shard, r->n_tr, r->n_va, c->val_fraction > 0 ? "held out of train" : "test split",
		r->n_te);
	fprintf(o, "parameters:       %zu total, %zu trainable in the last stage\n",
		tl_net_count_params(r->net, 0), tl_net_count_params(r->net, 1));
	fprintf(o, "epochs:           %d run, best %d (%s %.4f)%s\n", r->st.hist.n, r->st.best_epoch + 1,
		c->monitor_loss ? "val_loss" : "val_accuracy", r->st.best,
		res->stopped_early ? ", stopped early" : "");
	double total = 0;
	for (int i = 0; i < r->st.hist.n; i++)
		total += r->st.hist.rows[i].seconds;
	fprintf(o, "training time:    %.1f s in epochs", total);
	if (r->cache_seconds > 0)
		fprintf(o, " + %.1f s building the prefix cache", r->cache_seconds);
	fprintf(o, "\ninference:        %.3f ms per image (batch 1, median of 21, %s backend, %d threads)\n",
		lat[10] * 1e3, r->dev.be->name, tl_pool_size(r->dev.pool));
	fprintf(o, "peak memory:      %.1f MiB resident\n\n", ru.ru_maxrss / 1024.0);
	fprintf(o, "test accuracy:    %.4f\ntest loss:        %.4f\nmacro F1:         %.4f\n\n",
		res->test_accuracy, res->test_loss, res->macro_f1);
	char names[TL_SHARD_MAX_CLASSES][32];
	for (int i = 0; i < k; i++)
		snprintf(names[i], sizeof names[i], "%s", in->class_names[i]);
	tl_metrics_print(&m, names, o);
	fclose(o);
	tl_metrics_free(&m);
	st = tl_write_file_atomic(path, buf, len, err);
	if (st == TL_OK && !c->quiet)
		fputs(buf, stdout);
	free(buf);
	return st;
}

tl_status tl_train(tl_train_cfg *cfg, int resume, tl_train_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	run *r = calloc(1, sizeof *r);
	if (!r)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	r->cfg = cfg;
	r->t_start = tl_now();
	tl_status st = TL_OK;
	tl_st_file *ck = NULL;
	if (resume) {
		char path[1200];
		snprintf(path, sizeof path, "%s/last.safetensors", cfg->run_dir);
		if ((st = tl_st_open(&ck, path, err)) != TL_OK)
			goto out;
		if (!tl_st_meta(ck, "tltrain_checkpoint")) {
			st = tl_seterr(err, TL_EFORMAT, "%s: not a tltrain checkpoint", path);
			goto out;
		}
		char model[16];
		snprintf(model, sizeof model, "%s", cfg->model);
		if ((st = cfg_from_meta(ck, cfg, err)) != TL_OK)
			goto out;
		if (model[0] && strcmp(model, cfg->model) != 0) {
			st = tl_seterr(err, TL_EFORMAT, "%s: is a %s run, not %s (drop -m or use another run directory)",
				       cfg->run_dir, cfg->model, model);
			goto out;
		}
	} else {
		struct stat sb;
		char path[1200];
		snprintf(path, sizeof path, "%s/last.safetensors", cfg->run_dir);
		if (stat(path, &sb) == 0) {
			st = tl_seterr(err, TL_EUSAGE, "%s already holds a run (%s); continue it with --resume %s or choose another -o",
				       cfg->run_dir, path, cfg->run_dir);
			goto out;
		}
	}
	tl_progress_init(&r->prog, "tltrain", cfg->quiet);
	if ((st = tl_shard_open(&r->sh, cfg->shard, err)) != TL_OK || (st = setup_items(r, err)) != TL_OK)
		goto out;
	if ((st = tl_device_open(&r->dev, cfg->reference_backend ? "cpu-reference" : "cpu", cfg->threads, err)) != TL_OK)
		goto out;
	r->xb = malloc((size_t)cfg->batch * 3 * r->sh->info.height * r->sh->info.width * sizeof(float));
	r->pred = malloc((size_t)cfg->batch * sizeof(int32_t));
	if (!r->xb || !r->pred) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	if ((st = setup_model(r, resume, err)) != TL_OK)
		goto out;
	tl_net_keep(r->net);
	if (resume) {
		if ((st = load_checkpoint(r, ck, err)) != TL_OK)
			goto out;
		/* the best weights so far are in best.safetensors */
		char path[1200];
		snprintf(path, sizeof path, "%s/best.safetensors", cfg->run_dir);
		if (r->st.hist.n > 0) {
			float *cur = malloc(r->net->n_param_floats * sizeof(float) + 1);
			if (!cur) {
				st = tl_seterr(err, TL_ENOMEM, "out of memory");
				goto out;
			}
			if ((st = tl_net_pull_params(r->net, err)) == TL_OK)
				memcpy(cur, r->net->param_block, r->net->n_param_floats * sizeof(float));
			if (st == TL_OK && (st = tl_net_load(r->net, path, 1, NULL, err)) == TL_OK) {
				tl_net_keep(r->net);
				memcpy(r->net->param_block, cur, r->net->n_param_floats * sizeof(float));
				tl_net_push_params(r->net);
			}
			free(cur);
			if (st != TL_OK)
				goto out;
		}
	}
	/* an unknown -u fails now, not after the warm-up */
	if (cfg->strategy == TL_STRAT_FINETUNE &&
	    (st = tl_net_unfreeze_from(r->net, stage_unit(cfg, 1), err)) != TL_OK)
		goto out;
	if (!resume && mkdir(cfg->run_dir, 0777) != 0 && errno != EEXIST) {
		st = tl_seterr(err, TL_EIO, "%s: cannot create run directory: %s", cfg->run_dir,
			       strerror(errno));
		goto out;
	}
	int stop = 0;
	for (; r->st.stage < stage_count(cfg) && !stop; r->st.stage++) {
		int first, end;
		stage_range(cfg, r->st.stage, &first, &end);
		if (r->st.epoch >= end)
			continue;
		if ((st = tl_net_unfreeze_from(r->net, stage_unit(cfg, r->st.stage), err)) != TL_OK)
			goto out;
		if (r->st.epoch == first && r->st.batch_pos == 0) { /* a fresh stage */
			tl_optim_reset(&r->opt);
			r->opt.lr = r->st.lr = stage_lr(cfg, r->st.stage);
			if (r->st.stage > 0)
				r->st.bad_epochs = 0;
		}
		r->opt.momentum = cfg->momentum; /* hyper-parameters, fresh or resumed */
		r->opt.nesterov = cfg->nesterov;
		r->opt.weight_decay = cfg->weight_decay;
		if (!cfg->quiet)
			fprintf(stderr, "tltrain: stage %d: %s trainable (%zu of %zu parameters), lr %.3g, epochs %d..%d\n",
				r->st.stage + 1, stage_unit(cfg, r->st.stage),
				tl_net_count_params(r->net, 1), tl_net_count_params(r->net, 0),
				stage_lr(cfg, r->st.stage), first + 1, end);
		if ((st = run_stage(r, &stop, err)) != TL_OK)
			goto out;
		if (r->st.stage + 1 < stage_count(cfg))
			r->st.epoch = r->st.epoch > end ? r->st.epoch : end;
	}
	r->st.stage = stage_count(cfg) - 1;
	res->stopped_early = stop;
	res->epochs_run = r->st.hist.n;
	res->best_epoch = r->st.best_epoch + 1;
	res->best_metric = r->st.best;
	/* restore the best weights, whether or not training stopped early */
	tl_net_restore(r->net);
	st = write_report(r, res, err);
	res->seconds = tl_now() - r->t_start;
out:
	if (st == TL_EINTR)
		res->interrupted = 1;
	tl_st_close(ck);
	free_cache(r);
	free_keep(r);
	if (r->opt_ready)
		tl_optim_free(&r->opt);
	tl_net_free(r->net);
	tl_device_close(&r->dev);
	free(r->xb);
	free(r->pred);
	free(r->opt_host[0]);
	free(r->opt_host[1]);
	tl_shard_close(r->sh);
	free(r->tr_rec);
	free(r->te_rec);
	free(r->tr_lab);
	free(r->te_lab);
	free(r);
	return st;
}
