/* checkpoint.c - last.safetensors and best.safetensors (see checkpoint.h). */
#include "train/checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fit.h"

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

static void kv_put_setting(void *arg, const char *key, const char *val)
{
	kv_put(arg, key, "%s", val);
}

static void state_to_kv(const tl_run_state *s, const tl_optim *opt, kv *m)
{
	kv_put(m, "tltrain_checkpoint", "1");
	kv_put(m, "epoch", "%d", s->epoch);
	kv_put(m, "stage", "%d", s->stage);
	kv_put(m, "batch_pos", "%" PRIu64, s->batch_pos);
	kv_put(m, "part_loss", "%.17g", s->part_loss);
	kv_put(m, "part_seconds", "%.17g", s->part_seconds);
	kv_put(m, "part_correct", "%" PRIu64, s->part_correct);
	kv_put(m, "part_seen", "%" PRIu64, s->part_seen);
	kv_put(m, "best", "%.17g", s->best);
	kv_put(m, "best_epoch", "%d", s->best_epoch);
	kv_put(m, "bad_epochs", "%d", s->bad_epochs);
	kv_put(m, "plateau_bad", "%d", s->plateau_bad);
	kv_put(m, "plateau_best", "%.17g", s->plateau_best);
	kv_put(m, "cur_lr", "%.9g", s->lr);
	kv_put(m, "opt_step", "%ld", opt->step);
	kv_put(m, "shard_xxh3", "%016" PRIx64, s->shard_hash);
}

/* Parameters and optimizer moments (staged in host memory: mom[0] m,
 * mom[1] v), in the order they are saved; names holds the moments' names. */
static int tensors(const tl_net *net, const tl_optim *opt, float *const mom[2], tl_st_out *t,
		   char (*names)[80])
{
	int k = 0;
	for (int i = 0; i < net->n_params; i++) {
		const tl_param *p = &net->params[i];
		t[k] = (tl_st_out){.name = p->name, .dtype = TL_ST_F32, .ndim = p->ndim, .data = p->data};
		memcpy(t[k].shape, p->shape, sizeof p->shape);
		k++;
		for (int mv = 0; mv < (opt->v ? 2 : 1); mv++) {
			snprintf(names[k], sizeof names[k], "optim.%c.%s", mv ? 'v' : 'm', p->name);
			t[k] = (tl_st_out){.name = names[k], .dtype = TL_ST_F32, .ndim = 1,
					   .shape = {(int64_t)p->size}, .data = mom[mv] + p->off};
			k++;
		}
	}
	return k;
}

/* Host copies of the optimizer state (v only for Adam), fetched from the
 * backend; free both. */
static tl_status stage_moments(tl_optim *opt, size_t n, float *mom[2], tl_err *err)
{
	mom[0] = mom[1] = NULL;
	for (int w = 0; w < (opt->v ? 2 : 1); w++) {
		if (!(mom[w] = malloc(n * sizeof(float) + 4)))
			return tl_seterr(err, TL_ENOMEM, "checkpoint: out of memory");
		TL_TRY(tl_optim_get(opt, w, 0, n, mom[w], err));
	}
	return TL_OK;
}

tl_status tl_checkpoint_save(const tl_train_cfg *c, tl_net *net, tl_optim *opt,
			     const tl_run_state *s, tl_err *err)
{
	float *mom[2];
	tl_status mst = stage_moments(opt, net->n_param_floats, mom, err);
	if (mst == TL_OK)
		mst = tl_net_pull_params(net, err);
	if (mst != TL_OK) {
		free(mom[0]);
		free(mom[1]);
		return mst;
	}
	int nt = net->n_params * (opt->v ? 3 : 2);
	tl_st_out *t = calloc((size_t)nt, sizeof *t);
	char(*names)[80] = calloc((size_t)nt, sizeof *names);
	kv *m = calloc(1, sizeof *m);
	char *hj = tl_history_json(&s->hist);
	const char **meta = calloc((KV_MAX + 1) * 2, sizeof(char *));
	tl_status st = TL_OK;
	if (!t || !names || !m || !hj || !meta) {
		st = tl_seterr(err, TL_ENOMEM, "checkpoint: out of memory");
		goto out;
	}
	int k = tensors(net, opt, mom, t, names);
	tl_train_cfg_save(c, kv_put_setting, m);
	state_to_kv(s, opt, m);
	for (int i = 0; i < m->n; i++) {
		meta[2 * i] = m->key[i];
		meta[2 * i + 1] = m->val[i];
	}
	meta[2 * m->n] = "history";
	meta[2 * m->n + 1] = hj;
	char path[1200];
	snprintf(path, sizeof path, "%s/last.safetensors", c->run_dir);
	st = tl_st_write(path, t, (size_t)k, meta, (size_t)m->n + 1, err);
out:
	free(meta);
	free(t);
	free(names);
	free(m);
	free(hj);
	free(mom[0]);
	free(mom[1]);
	return st;
}

static const char *meta_get(void *arg, const char *key)
{
	return tl_st_meta(arg, key);
}

/* --resume with -e N: N is the run's new total of epochs (more extends a
 * finished or early-stopped budget); fewer than the epochs done is a usage
 * error naming them. */
static tl_status new_epoch_total(tl_train_cfg *cfg, const tl_st_file *f, tl_err *err)
{
	const char *e = tl_st_meta(f, "epoch");
	long done = e ? strtol(e, NULL, 10) : 0;
	char part[96] = ""; /* -e 1.5 ran two epochs, the second a part of one */
	if (cfg->max_epochs < (double)done && cfg->max_epochs > (double)(done - 1))
		snprintf(part, sizeof part, ", the last of them part way (-e %g)", cfg->max_epochs);
	if (cfg->resume_epochs < done)
		return tl_seterr(err, TL_EUSAGE,
				 "%s has run %ld epochs%s; -e with --resume sets the run's total, expected at least %ld, got %g",
				 cfg->run_dir, done, part, done, cfg->resume_epochs);
	cfg->max_epochs = cfg->resume_epochs;
	return TL_OK;
}

tl_status tl_checkpoint_open(tl_train_cfg *cfg, tl_st_file **out, tl_err *err)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/last.safetensors", cfg->run_dir);
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, path, err));
	tl_status st = TL_OK;
	char model[16];
	snprintf(model, sizeof model, "%s", cfg->model);
	if (!tl_st_meta(f, "tltrain_checkpoint"))
		st = tl_seterr(err, TL_EFORMAT, "%s: not a tltrain checkpoint", path);
	else if ((st = tl_train_cfg_load(cfg, meta_get, f, f->path, err)) != TL_OK)
		;
	else if (model[0] && strcmp(model, cfg->model) != 0)
		st = tl_seterr(err, TL_EFORMAT, "%s: is a %s run, not %s (drop -m or use another run directory)",
			       cfg->run_dir, cfg->model, model);
	else if (cfg->resume_epochs)
		st = new_epoch_total(cfg, f, err);
	if (st != TL_OK) {
		tl_st_close(f);
		return st;
	}
	*out = f;
	return TL_OK;
}

/* Strict numbers of the run state: "KEY missing" / "bad KEY". */
typedef struct {
	const tl_st_file *f;
	tl_err *err;
	tl_status st;
} reader;

static const char *need(reader *r, const char *k)
{
	const char *v = tl_st_meta(r->f, k);
	if (!v && r->st == TL_OK)
		r->st = tl_seterr(r->err, TL_EFORMAT, "%s: metadata: %s missing (not a tltrain checkpoint?)",
				  r->f->path, k);
	return v;
}

static double num(reader *r, const char *k)
{
	const char *v = need(r, k);
	if (!v)
		return 0;
	char *end;
	double d = strtod(v, &end);
	if ((end == v || *end) && r->st == TL_OK)
		r->st = tl_seterr(r->err, TL_EFORMAT, "%s: metadata: %s: expected a number, got '%.100s'",
				  r->f->path, k, v);
	return d;
}

static uint64_t count(reader *r, const char *k)
{
	const char *v = need(r, k);
	if (!v)
		return 0;
	char *end;
	uint64_t x = strtoull(v, &end, 10);
	if ((end == v || *end || *v == '-') && r->st == TL_OK)
		r->st = tl_seterr(r->err, TL_EFORMAT, "%s: metadata: %s: expected a count, got '%.100s'",
				  r->f->path, k, v);
	return x;
}

static void state_from_meta(reader *r, tl_run_state *s, tl_optim *opt)
{
	s->epoch = (int)num(r, "epoch");
	s->stage = (int)num(r, "stage");
	s->batch_pos = count(r, "batch_pos");
	s->part_loss = num(r, "part_loss");
	s->part_seconds = num(r, "part_seconds");
	s->part_correct = count(r, "part_correct");
	s->part_seen = count(r, "part_seen");
	s->best = num(r, "best");
	s->best_epoch = (int)num(r, "best_epoch");
	s->bad_epochs = (int)num(r, "bad_epochs");
	s->plateau_bad = (int)num(r, "plateau_bad");
	s->plateau_best = num(r, "plateau_best");
	s->lr = (float)num(r, "cur_lr");
	opt->step = (long)count(r, "opt_step");
	const char *sh = tl_st_meta(r->f, "shard_xxh3"); /* absent in older checkpoints */
	char *end = NULL;
	s->shard_hash = sh ? strtoull(sh, &end, 16) : 0;
	if (sh && (strlen(sh) != 16 || *end) && r->st == TL_OK)
		r->st = tl_seterr(r->err, TL_EFORMAT, "%s: metadata: shard_xxh3: expected 16 hex digits, got '%s'",
				  r->f->path, sh);
	const char *h = need(r, "history");
	if (h && tl_history_parse(h, &s->hist) && r->st == TL_OK)
		r->st = tl_seterr(r->err, TL_EFORMAT, "%s: metadata: unreadable history", r->f->path);
	/* strict: the history must be exactly what tltrain writes for its rows,
	 * or epochs would be dropped without a word */
	char *again = h && r->st == TL_OK ? tl_history_json(&s->hist) : NULL;
	if (again && strcmp(again, h) != 0)
		r->st = tl_seterr(r->err, TL_EFORMAT,
				  "%s: metadata: history: expected the %d epoch rows tltrain writes, got other text",
				  r->f->path, s->hist.n);
	free(again);
	/* one row per epoch done (a warm-up stopped early skips some numbers) */
	for (int i = 0; r->st == TL_OK && i < s->hist.n; i++) {
		int ep = s->hist.rows[i].epoch, prev = i ? s->hist.rows[i - 1].epoch : 0;
		if (ep <= prev || ep > s->epoch)
			r->st = tl_seterr(r->err, TL_EFORMAT,
					  "%s: metadata: history: row %d is epoch %d (expected %d..%d)",
					  r->f->path, i + 1, ep, prev + 1, s->epoch);
	}
	if (r->st == TL_OK && s->epoch > 0 && s->hist.n == 0)
		r->st = tl_seterr(r->err, TL_EFORMAT,
				  "%s: metadata: history: no rows for the %d epochs done (expected at least 1)",
				  r->f->path, s->epoch);
}

tl_status tl_checkpoint_load(const tl_st_file *f, tl_net *net, tl_optim *opt, tl_run_state *s,
			     int n_stages, int max_epochs, tl_err *err)
{
	size_t n = net->n_param_floats;
	float *mom = calloc(2 * n + 1, sizeof(float)); /* staged m and v, padding zero */
	if (!mom)
		return tl_seterr(err, TL_ENOMEM, "checkpoint: out of memory");
	tl_status st = TL_OK;
	for (int i = 0; i < net->n_params && st == TL_OK; i++) {
		tl_param *p = &net->params[i];
		if ((st = tl_st_read_f32(f, p->name, p->ndim, p->shape, p->data, err)) != TL_OK)
			break;
		p->loaded = 1;
		for (int w = 0; w < (opt->v ? 2 : 1) && st == TL_OK; w++) {
			char name[96];
			int64_t sz = (int64_t)p->size;
			snprintf(name, sizeof name, "optim.%c.%s", w ? 'v' : 'm', p->name);
			st = tl_st_read_f32(f, name, 1, &sz, mom + w * n + p->off, err);
		}
	}
	if (st == TL_OK) {
		tl_net_push_params(net);
		for (int w = 0; w < (opt->v ? 2 : 1); w++)
			tl_optim_set(opt, w, 0, n, mom + w * n);
	}
	free(mom);
	TL_TRY(st);
	reader r = {f, err, TL_OK};
	state_from_meta(&r, s, opt);
	if (r.st == TL_OK && (s->stage < 0 || s->stage >= n_stages || s->epoch < 0 || s->epoch > max_epochs))
		r.st = tl_seterr(err, TL_EFORMAT, "%s: metadata: epoch %d / stage %d out of range", f->path,
				 s->epoch, s->stage);
	return r.st;
}

tl_status tl_checkpoint_save_best(const tl_train_cfg *c, tl_net *net, const tl_shard_info *in,
				  const tl_run_state *s, tl_err *err)
{
	char hw[32], nc[16], ep[16], val[32], vf[32], seed[24], sh[24];
	/* the names as a JSON array: they may hold commas and any UTF-8
	 * (predict.c reads this and the older comma-separated list) */
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < in->n_classes; i++)
		if (json_array_append_new(arr, json_string(in->class_names[i])))
			json_decref(arr), arr = NULL;
	char *classes = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	if (!classes)
		return tl_seterr(err, TL_ENOMEM, "out of memory for the class names");
	snprintf(hw, sizeof hw, "%ux%u", in->height, in->width);
	snprintf(nc, sizeof nc, "%u", in->n_classes);
	snprintf(ep, sizeof ep, "%d", s->best_epoch + 1);
	snprintf(val, sizeof val, "%.6f", s->best);
	/* which train items were held out (tleval --split val redoes it) */
	snprintf(vf, sizeof vf, "%.17g", c->val_fraction);
	snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
	snprintf(sh, sizeof sh, "%016" PRIx64, s->shard_hash);
	/* everything tleval needs to rebuild the network */
	char head[96] = "";
	for (int l = 0; l < net->n_layers; l++)
		if (net->layers[l].kind == TL_L_DENSE && strcmp(net->layers[l].name, "predictions")) {
			char e[16];
			snprintf(e, sizeof e, "%s%d", head[0] ? "," : "", net->layers[l].out_c);
			strcat(head, e);
		}
	const char *meta[] = {"model", c->model, "normalization", tl_norm_name(in->norm.kind),
			      "input_size", hw, "classes", classes, "n_classes", nc,
			      /* how the shard made its images, for tlpredict to do the same */
			      "resize_filter", tl_filter_name(in->filter), "shard_dtype", tl_dtype_name(in->dtype),
			      "fit", tl_fit_name((tl_fit)in->fit),
			      "head", head[0] ? head : "none",
			      "pool", tl_net_find_layer(net, "flatten") >= 0 ? "flatten" : "gap",
			      /* MobileNetV2 from Keras weights runs Keras' padding and eps */
			      "graph", c->keras ? "keras" : "standard",
			      "epoch", ep,
			      "validation", c->val_fraction > 0 ? "heldout" : "test",
			      "val_fraction", vf, "seed", seed, "shard_xxh3", sh,
			      c->monitor_loss ? "val_loss" : "val_accuracy", val,
			      "producer", "tltrain"};
	char path[1200];
	snprintf(path, sizeof path, "%s/best.safetensors", c->run_dir);
	tl_status st = tl_net_save(net, path, meta, sizeof meta / sizeof meta[0] / 2, err);
	free(classes);
	return st;
}

tl_status tl_checkpoint_not_model(const tl_st_file *f, tl_err *err)
{
	if (!tl_st_meta(f, "tltrain_checkpoint"))
		return TL_OK;
	return tl_seterr(err, TL_EUSAGE,
			 "%s: a training checkpoint (tltrain's last.safetensors), not a model; use the run's best.safetensors, or finish the run with tltrain --resume",
			 f->path);
}
