/* settings.c - the one table of training settings (see settings.h). */
#include "train/settings.h"

#include "nn/device.h"
#include "nn/registry.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tl_enum tl_strategy_names[] = {
	{"feature", TL_STRAT_FEATURE}, {"finetune", TL_STRAT_FINETUNE}, {"scratch", TL_STRAT_SCRATCH}, {0, 0}};
const tl_enum tl_schedule_names[] = {{"constant", TL_SCHED_CONSTANT}, {"step", TL_SCHED_STEP},
				     {"cosine", TL_SCHED_COSINE},     {"plateau", TL_SCHED_PLATEAU},
				     {"onecycle", TL_SCHED_ONECYCLE}, {0, 0}};
const tl_enum tl_opt_names[] = {{"adam", TL_OPT_ADAM}, {"sgd", TL_OPT_SGD}, {0, 0}};
const tl_enum tl_monitor_names[] = {{"val_accuracy", 0}, {"val_loss", 1}, {0, 0}};
static const tl_enum pool_names[] = {{"flatten", 0}, {"gap", 1}, {0, 0}};
static const tl_enum log_names[] = {{"text", 0}, {"json", 1}, {0, 0}};
static const tl_enum on_nan_names[] = {{"stop", 0}, {"skip", 1}, {0, 0}};
static const tl_enum recipe_names[] = {{"fast", 0}, {"best", 1}, {0, 0}};
static const tl_enum precision_names[] = {{"fp32", 0}, {"bf16", 1}, {"auto", 2}, {0, 0}};

typedef enum {
	T_INT,    /* int; with names, the option takes a name and a checkpoint the number */
	T_LONG,
	T_U64,
	T_FLOAT,
	T_DOUBLE,
	T_STR,    /* char[size]; with names, only those values */
	T_ENUM,   /* an int-sized enum, by name everywhere */
	T_FLAG,   /* int 0/1; its option takes no argument and sets it */
	T_CUSTOM, /* an option only, parsed by its own function */
	T_MODEL,  /* char[size]: a registry network, stored by its canonical name */
} kind;

typedef struct {
	const char *key;    /* checkpoint metadata key; NULL: not saved */
	const char *opt;    /* long option; NULL: none */
	char letter;        /* short option; 0: none */
	kind type;
	size_t off, size;
	const char *def;    /* default, as text */
	double lo, hi;      /* legal range of numbers */
	const tl_enum *names;
	/* option parser replacing the type's (0: accepted) */
	int (*parse)(tl_train_cfg *c, const char *arg);
	const char *what;   /* the usage message of a bad option argument */
	int resume;         /* 1: the option may be given with --resume (it does not
			     * change what the run computes, or it is -e/-m, which
			     * tl_train_resume_* handle); 0: the checkpoint's value holds */
} setting;

static int parse_augment(tl_train_cfg *c, const char *arg);
static int parse_val(tl_train_cfg *c, const char *arg);
static int parse_device(tl_train_cfg *c, const char *arg);
static int parse_recipe(tl_train_cfg *c, const char *arg);

#define F(field) offsetof(tl_train_cfg, field), sizeof(((tl_train_cfg *)0)->field)

/* In the order of the checkpoint metadata, then the run-time settings. */
static const setting table[] = {
	{"model", "model", 'm', T_MODEL, F(model), "vgg16", 0, 0, 0, 0, 0, 1}, /* what: the registry's */
	{"weights", "weights", 'w', T_STR, F(weights), "", 0, 0, 0, 0, 0, 0},
	{"shard", "data", 'd', T_STR, F(shard), "cifar10.tls", 0, 0, 0, 0, 0, 0},
	{"strategy", "strategy", 's', T_ENUM, F(strategy), "finetune", 0, 0, tl_strategy_names, 0,
	 "-s: expected feature, finetune or scratch", 0},
	{"unit", "unfreeze", 'u', T_STR, F(unit), "", 0, 0, 0, 0, 0, 0},
	{"patience", "patience", 'p', T_INT, F(patience), "3", 0, 10000, 0, 0,
	 "-p: expected a patience >= 0", 0},
	{"max_epochs", "epochs", 'e', T_DOUBLE, F(max_epochs), "20", 0.01, 10000, 0, 0,
	 "-e: expected epochs in 0.01..10000 (1.25: one epoch and a quarter of the next)", 1},
	{"batch", "batch", 'b', T_INT, F(batch), "64", 1, 4096, 0, 0,
	 "-b: expected a batch size in 1..4096", 0},
	{"warmup_epochs", "warmup-epochs", 0, T_INT, F(warmup_epochs), "3", 0, 10000, 0, 0,
	 "--warmup-epochs: expected a count in 0..10000", 0},
	{"lr", "lr", 0, T_FLOAT, F(lr), "1e-3", 1e-12, 100, 0, 0,
	 "--lr: expected a learning rate in 1e-12..100", 0},
	{"lr2", "lr2", 0, T_FLOAT, F(lr2), "1e-5", 1e-12, 100, 0, 0,
	 "--lr2: expected a learning rate in 1e-12..100", 0},
	{"opt", "opt", 0, T_ENUM, F(opt), "adam", 0, 0, tl_opt_names, 0, "--opt: expected adam or sgd", 0},
	{"momentum", "momentum", 0, T_FLOAT, F(momentum), "0.9", 0, 0.9999, 0, 0,
	 "--momentum: expected 0 <= m < 1", 0},
	{"weight_decay", "weight-decay", 0, T_FLOAT, F(weight_decay), "0", 0, 1, 0, 0,
	 "--weight-decay: expected 0..1", 0},
	{"nesterov", "nesterov", 0, T_FLAG, F(nesterov), "0", 0, 1, 0, 0, 0, 0},
	{"schedule", "schedule", 0, T_ENUM, F(sched), "cosine", 0, 0, tl_schedule_names, 0,
	 "--schedule: expected constant, step, cosine, plateau or onecycle", 0},
	{"step_size", "step-size", 0, T_INT, F(step_size), "5", 1, 10000, 0, 0,
	 "--step-size: expected epochs >= 1", 0},
	{"gamma", "gamma", 0, T_FLOAT, F(gamma), "0.1", 1e-6, 1, 0, 0,
	 "--gamma: expected 0 < gamma <= 1", 0},
	{"plateau_patience", "plateau-patience", 0, T_INT, F(plateau_patience), "2", 1, 10000, 0, 0,
	 "--plateau-patience: expected epochs >= 1", 0},
	{"head", "head", 0, T_STR, F(head), "", 0, 0, 0, 0, 0, 0},
	{"pool", "pool", 0, T_INT, F(pool), "-1", 0, 1, pool_names, 0, "--pool: expected flatten or gap", 0},
	{"dropout", "dropout", 0, T_FLOAT, F(dropout), "-1", 0, 0.95, 0, 0,
	 "--dropout: expected 0..0.95", 0},
	{"flip", 0, 0, T_FLAG, F(flip), "0", 0, 1, 0, 0, 0, 0},
	{"crop_pad", "crop", 0, T_INT, F(crop_pad), "0", 0, 64, 0, 0,
	 "--crop: expected a padding in 0..64 pixels", 0},
	{"label_smoothing", "label-smoothing", 0, T_FLOAT, F(label_smoothing), "0", 0, 0.5, 0, 0,
	 "--label-smoothing: expected 0..0.5", 0},
	{"tta", "tta", 0, T_FLAG, F(tta), "0", 0, 1, 0, 0, 0, 0},
	{"keras", 0, 0, T_INT, F(keras), "0", 0, 1, 0, 0, 0, 0},
	{"head_lr_mult", "head-lr-mult", 0, T_FLOAT, F(head_lr_mult), "1", 0.01, 1000, 0, 0,
	 "--head-lr-mult: expected a factor in 0.01..1000", 0},
	/* kept by checkpoints so that a resumed run computes as the run did,
	 * but --precision given with --resume wins (tl_train_cfg_load) */
	{"precision", "precision", 0, T_STR, F(precision), "fp32", 0, 0, precision_names, 0,
	 "--precision: expected fp32, bf16 or auto", 1},
	/* 0 (--val test) is the range's low end for checkpoints, which
	 * store it so; the option takes "test" for it (parse_val) */
	{"val_fraction", "val", 0, T_DOUBLE, F(val_fraction), "0.1", 0, 0.9, 0, parse_val,
	 "--val: expected test or a fraction in (0, 0.9]", 0},
	{"monitor", "monitor", 0, T_ENUM, F(monitor_loss), "val_accuracy", 0, 0, tl_monitor_names, 0,
	 "--monitor: expected val_accuracy or val_loss", 0},
	{"min_delta", "min-delta", 0, T_FLOAT, F(min_delta), "0", 0, 1e6, 0, 0,
	 "--min-delta: expected a value >= 0", 0},
	{"seed", "seed", 0, T_U64, F(seed), "42", 0, 0x7fffffff, 0, 0,
	 "--seed: expected a non-negative integer", 0},
	{"no_cache", "no-cache", 0, T_FLAG, F(no_cache), "0", 0, 1, 0, 0, 0, 0},
	{"cache_mem_mb", "cache-mem", 0, T_LONG, F(cache_mem_mb), "4096", 0, 1L << 30, 0, 0,
	 "--cache-mem: expected MiB >= 0", 0},
	/* run-time only */
	{0, "recipe", 0, T_STR, F(recipe), "", 0, 0, 0, parse_recipe, "--recipe: expected fast or best", 0},
	{0, "augment", 0, T_CUSTOM, 0, 0, 0, 0, 0, 0, parse_augment,
	 "--augment: expected flip, crop or none (comma-separated)", 0},
	{0, "output", 'o', T_STR, F(run_dir), "run", 0, 0, 0, 0, 0, 0},
	{0, "device", 0, T_STR, F(device), "auto", 0, 0, 0, parse_device,
	 "--device: expected auto, cpu, cpu-reference or opencl[:P[:D]]", 1},
	{0, "time-limit", 0, T_DOUBLE, F(time_limit), "0", 1, 1e7, 0, 0,
	 "--time-limit: expected seconds in 1..1e7", 0},
	{0, "threads", 'j', T_INT, F(threads), "0", 1, 1024, 0, 0,
	 "-j: expected a thread count in 1..1024", 1},
	{0, "quiet", 'q', T_FLAG, F(quiet), "0", 0, 1, 0, 0, 0, 1},
	{0, "no-plots", 0, T_FLAG, F(no_plots), "0", 0, 1, 0, 0, 0, 1},
	{0, "log-format", 0, T_ENUM, F(json), "text", 0, 0, log_names, 0,
	 "--log-format: expected text or json", 1},
	{0, "on-nan", 0, T_ENUM, F(on_nan_skip), "stop", 0, 0, on_nan_names, 0,
	 "--on-nan: expected stop or skip", 1},
	{0, "allow-nonfinite", 0, T_FLAG, F(allow_nonfinite), "0", 0, 1, 0, 0, 0, 0},
};
#define N_SETTINGS (int)(sizeof table / sizeof table[0])
_Static_assert(sizeof table / sizeof table[0] <= sizeof ((tl_train_cfg *)0)->given, "given[] too small");

/* --recipe NAME: the measured recipes of README's accuracy table, for a
 * shard packed with tlpack --norm caffe at -r 64 (fast) or -r 96 (best).
 * Given options win. */
static const tl_kv fast_recipe[] = {
	{"model", "googlenet"},
	{"unit", "inception_3a"},
	{"max_epochs", "1.5"},
	{"time-limit", "285"},
	{"patience", "0"},
	{"flip", "1"},
	{"tta", "1"},
	{"dropout", "0"},
	{"label_smoothing", "0.05"},
	{"monitor", "val_loss"},
	{"val_fraction", "0.02"},
	{"precision", "auto"},
	{NULL, NULL}};
static const tl_kv best_recipe[] = {
	{"model", "googlenet"},
	{"unit", "inception_3a"},
	{"max_epochs", "5"},
	{"patience", "0"},
	{"flip", "1"},
	{"crop_pad", "8"},
	{"tta", "1"},
	{"val_fraction", "0.1"},
	{NULL, NULL}};

/* The rows of recipe name ("" or unknown: none). */
static const tl_kv *recipe_rows(const char *name)
{
	static const tl_kv empty[] = {{NULL, NULL}};
	return !strcmp(name, "fast") ? fast_recipe : !strcmp(name, "best") ? best_recipe : empty;
}

/* The network's rows of tltrain defaults (nn/registry.c). */
static const tl_kv *model_rows(const char *model)
{
	static const tl_kv empty[] = {{NULL, NULL}};
	const tl_model_info *m = tl_model_find(model);
	return m ? m->train : empty;
}

int tl_train_epoch_count(const tl_train_cfg *c)
{
	int n = (int)c->max_epochs;
	return n < c->max_epochs - 1e-9 || n < 1 ? n + 1 : n;
}

uint64_t tl_train_epoch_batches(const tl_train_cfg *c, int e, uint64_t nb)
{
	int n = tl_train_epoch_count(c);
	if (e != n - 1)
		return nb;
	double part = c->max_epochs - (n - 1);
	if (part >= 1 - 1e-9)
		return nb;
	uint64_t b = (uint64_t)ceil(part * (double)nb - 1e-9);
	return b < 1 ? 1 : b > nb ? nb : b;
}

const char *tl_train_default_unit(const char *model)
{
	const char *u = tl_model_default(model, "unit");
	return u ? u : "block5";
}

static int parse_augment(tl_train_cfg *c, const char *arg)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s", arg);
	char *save;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "flip"))
			c->flip = 1;
		else if (!strcmp(t, "crop"))
			c->crop_pad = 4;
		else if (strcmp(t, "none"))
			return -1;
	}
	return 0;
}

static int parse_recipe(tl_train_cfg *c, const char *arg)
{
	int e;
	if (tl_enum_parse(recipe_names, arg, &e))
		return -1;
	snprintf(c->recipe, sizeof c->recipe, "%s", arg);
	return 0;
}

static int parse_val(tl_train_cfg *c, const char *arg)
{
	if (!strcmp(arg, "test"))
		return c->val_fraction = 0, 0;
	return tl_parse_double(arg, 1e-6, 0.9, &c->val_fraction);
}

static int parse_device(tl_train_cfg *c, const char *arg)
{
	if (tl_device_spec_ok(arg) != 0)
		return -1;
	if (strlen(arg) >= sizeof c->device)
		return -1;
	snprintf(c->device, sizeof c->device, "%s", arg);
	return 0;
}

/* Strict: all of s a number whose value, or its float rounding for a
 * float setting, lies in the range. */
static int parse_number(const setting *s, const char *v, double *out)
{
	char *end;
	if (!tl_is_decimal(v)) /* numbers are decimal: strtod would take 0x10 */
		return -1;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end)
		return -1;
	int ok = d >= s->lo && d <= s->hi;
	if (s->type == T_FLOAT)
		ok = ok || ((float)d >= (float)s->lo && (float)d <= (float)s->hi);
	*out = d;
	return ok ? 0 : -1;
}

static int parse_integer(const setting *s, const char *v, int64_t *out)
{
	char *end;
	if (!tl_is_decimal(v) || strpbrk(v, ".eE"))
		return -1;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || (double)x < s->lo || (double)x > s->hi)
		return -1;
	*out = x;
	return 0;
}

/* Store text v as setting s's value in c.  by_name: an int setting with
 * names takes a name (options) rather than its number (checkpoints).
 * ranged: check the range (defaults are stored as they are). */
static int store(const setting *s, tl_train_cfg *c, const char *v, int by_name, int ranged)
{
	char *p = (char *)c + s->off;
	int64_t x;
	double d;
	int e;
	setting open = *s;
	if (!ranged)
		open.lo = -1e300, open.hi = 1e300;
	switch (s->type) {
	case T_INT:
	case T_FLAG:
		if (by_name && s->names) {
			if (tl_enum_parse(s->names, v, &e))
				return -1;
			x = e;
		} else if (parse_integer(&open, v, &x)) {
			return -1;
		}
		*(int *)p = (int)x;
		return 0;
	case T_LONG:
	case T_U64:
		if (parse_integer(&open, v, &x))
			return -1;
		if (s->type == T_LONG)
			*(long *)p = (long)x;
		else
			*(uint64_t *)p = (uint64_t)x;
		return 0;
	case T_FLOAT:
	case T_DOUBLE:
		if (parse_number(&open, v, &d))
			return -1;
		if (s->type == T_FLOAT)
			*(float *)p = (float)d;
		else
			*(double *)p = d;
		return 0;
	case T_STR:
		if (strlen(v) >= s->size || (s->names && tl_enum_parse(s->names, v, &e)))
			return -1;
		memcpy(p, v, strlen(v) + 1);
		return 0;
	case T_ENUM:
		return tl_enum_parse(s->names, v, (int *)p);
	case T_MODEL: {
		const tl_model_info *m = tl_model_find(v); /* an alias stores the name */
		if (!m || strlen(m->name) >= s->size)
			return -1;
		memcpy(p, m->name, strlen(m->name) + 1);
		return 0;
	}
	case T_CUSTOM:
		break;
	}
	return -1;
}

void tl_train_defaults(tl_train_cfg *c)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i < N_SETTINGS; i++)
		if (table[i].def)
			TL_CHECK(store(&table[i], c, table[i].def, 0, 0) == 0);
}

int tl_train_getopt_table(struct option *lo, int cap, char *shorts)
{
	int n = 0, k = 0;
	for (int i = 0; i < N_SETTINGS; i++) {
		const setting *s = &table[i];
		if (!s->opt)
			continue;
		if (n + 1 >= cap)
			return -1;
		int arg = s->type != T_FLAG;
		lo[n++] = (struct option){s->opt, arg, NULL, s->letter ? s->letter : TL_OPT_FIRST + i};
		if (s->letter && k < 60) {
			shorts[k++] = s->letter;
			if (arg)
				shorts[k++] = ':';
		}
	}
	memset(&lo[n], 0, sizeof lo[n]);
	shorts[k] = 0;
	return n;
}

int tl_train_set_option(tl_train_cfg *c, int ch, const char *arg, const char **what)
{
	static char msg[300];
	for (int i = 0; i < N_SETTINGS; i++) {
		const setting *s = &table[i];
		if (!s->opt || (s->letter ? s->letter : TL_OPT_FIRST + i) != ch)
			continue;
		int bad = s->type == T_FLAG ? store(s, c, "1", 0, 1)
			  : s->parse	     ? s->parse(c, arg)
					     : store(s, c, arg, 1, 1);
		if (!bad) {
			if ((size_t)i < sizeof c->given)
				c->given[i] = 1;
			return 0;
		}
		if (s->what) {
			*what = s->what;
		} else if (s->type == T_MODEL) {
			snprintf(msg, sizeof msg, "-m: expected %s", tl_model_list());
			*what = msg;
		} else { /* only a too-long string fails without a message of its own */
			snprintf(msg, sizeof msg, "--%s: expected at most %zu bytes", s->opt, s->size - 1);
			*what = msg;
		}
		return 1;
	}
	return -1;
}

/* The row whose long option is opt, or NULL. */
static const setting *by_option(const char *opt)
{
	for (int i = 0; i < N_SETTINGS; i++)
		if (table[i].opt && !strcmp(table[i].opt, opt))
			return &table[i];
	return NULL;
}

int tl_train_option_resumable(const char *opt)
{
	const setting *s = by_option(opt);
	return s && s->resume;
}

int tl_setting_parse(const char *opt, const char *arg, void *dst, size_t size, const char **what)
{
	const setting *s = by_option(opt);
	TL_CHECK(s && s->type != T_CUSTOM && s->type != T_FLAG && s->size == size);
	tl_train_cfg *t = calloc(1, sizeof *t); /* a scratch configuration to parse into */
	TL_CHECK(t);
	int e = tl_train_set_option(t, s->letter ? s->letter : TL_OPT_FIRST + (int)(s - table), arg,
				    what);
	TL_CHECK(e >= 0);
	if (e == 0)
		memcpy(dst, (const char *)t + s->off, size);
	free(t);
	return e;
}

static void format(const setting *s, const tl_train_cfg *c, char *out, size_t n)
{
	const char *p = (const char *)c + s->off;
	switch (s->type) {
	case T_INT:
	case T_FLAG: snprintf(out, n, "%d", *(const int *)p); break;
	case T_LONG: snprintf(out, n, "%ld", *(const long *)p); break;
	case T_U64: snprintf(out, n, "%" PRIu64, *(const uint64_t *)p); break;
	case T_FLOAT: snprintf(out, n, "%.9g", *(const float *)p); break;
	case T_DOUBLE: /* the shortest text that reads back exactly (0.02, not 0.0200...04) */
		snprintf(out, n, "%.15g", *(const double *)p);
		if (strtod(out, NULL) != *(const double *)p)
			snprintf(out, n, "%.17g", *(const double *)p);
		break;
	case T_STR:
	case T_MODEL: snprintf(out, n, "%s", p); break;
	case T_ENUM: snprintf(out, n, "%s", tl_enum_name(s->names, *(const int *)p)); break;
	case T_CUSTOM: out[0] = 0; break;
	}
}

/* Store the value of each of rows (a recipe's) into the settings not
 * given. */
static void apply_rows(tl_train_cfg *c, const tl_kv *rows)
{
	for (const tl_kv *d = rows; d->key; d++)
		for (int i = 0; i < N_SETTINGS; i++) /* a run-time setting by its option */
			if (!strcmp(table[i].key ? table[i].key : table[i].opt, d->key) && !c->given[i]) {
				TL_CHECK(store(&table[i], c, d->val, 0, 1) == 0);
				c->given[i] = 2; /* the recipe's: the network's defaults leave it */
			}
}

void tl_train_model_defaults(tl_train_cfg *c)
{
	if (c->recipe[0])
		apply_rows(c, recipe_rows(c->recipe));
	for (const tl_kv *d = model_rows(c->model); d->key; d++) {
		if (!strcmp(d->key, "unit"))
			continue; /* the unit: "" stands for it (tl_train_default_unit) */
		for (int i = 0; i < N_SETTINGS; i++)
			if (table[i].key && !strcmp(table[i].key, d->key) && !c->given[i])
				TL_CHECK(store(&table[i], c, d->val, 0, 1) == 0);
	}
}

/* Whether setting s holds text v in c (compared as stored, so 1e-4 and
 * 0.0001 agree). */
static int holds(const setting *s, const tl_train_cfg *c, const char *v)
{
	tl_train_cfg t = *c;
	if (store(s, &t, v, 0, 0) != 0)
		return 0;
	size_t n = s->type == T_STR || s->type == T_MODEL ? s->size
		 : s->type == T_FLOAT ? sizeof(float)
		 : s->type == T_DOUBLE ? sizeof(double)
		 : s->type == T_LONG ? sizeof(long)
		 : s->type == T_U64 ? sizeof(uint64_t)
				    : sizeof(int);
	if (s->type == T_STR || s->type == T_MODEL)
		return strcmp((const char *)c + s->off, (const char *)&t + s->off) == 0;
	return memcmp((const char *)c + s->off, (const char *)&t + s->off, n) == 0;
}

/* Append "key value" of each of rows whose value the setting holds now:
 * by value, not by which options were given, so that a resumed run (its
 * checkpoint keeps values, not their origin) says the same as the fresh
 * one.  The network's unit row holds while -u is "".  skip: rows whose
 * keys are said elsewhere (the recipe's, for the network's rows). */
static void rows_text(const tl_train_cfg *c, const tl_kv *rows, const tl_kv *skip, char *buf,
		      size_t size)
{
	for (const tl_kv *d = rows; d->key; d++) {
		int recipe_has = 0; /* a network row the recipe also sets: said once, as the recipe's */
		for (const tl_kv *r = skip; r && r->key; r++)
			recipe_has |= !strcmp(r->key, d->key);
		if (recipe_has)
			continue;
		for (int i = 0; i < N_SETTINGS; i++) {
			const char *key = table[i].key ? table[i].key : table[i].opt;
			if (strcmp(key, d->key))
				continue;
			int from = !strcmp(d->key, "unit") ? !c->unit[0] || !strcmp(c->unit, d->val)
							   : holds(&table[i], c, d->val);
			if (!from)
				continue;
			size_t len = strlen(buf);
			snprintf(buf + len, size - len, "%s%s %s", len ? ", " : "", d->key, d->val);
		}
	}
}

void tl_train_defaults_text(const tl_train_cfg *c, char *model_buf, char *recipe_buf, size_t n)
{
	model_buf[0] = recipe_buf[0] = 0;
	const tl_kv *recipe = c->recipe[0] ? recipe_rows(c->recipe) : NULL;
	if (recipe)
		rows_text(c, recipe, NULL, recipe_buf, n);
	rows_text(c, model_rows(c->model), recipe, model_buf, n);
}

void tl_train_cfg_save(const tl_train_cfg *c, void (*put)(void *arg, const char *key, const char *val),
		       void *arg)
{
	char v[1100];
	for (int i = 0; i < N_SETTINGS; i++)
		if (table[i].key) {
			format(&table[i], c, v, sizeof v);
			put(arg, table[i].key, v);
		}
}

/* "an integer in 1..4096", "one of adam, sgd" */
static void expected(const setting *s, char *out, size_t n)
{
	if (s->type == T_ENUM || (s->type == T_STR && s->names)) {
		size_t k = (size_t)snprintf(out, n, "one of");
		for (const tl_enum *e = s->names; e->name && k < n; e++)
			k += (size_t)snprintf(out + k, n - k, "%s %s", e == s->names ? "" : ",", e->name);
	} else if (s->type == T_MODEL) {
		size_t k = (size_t)snprintf(out, n, "one of");
		for (int i = 0; i < tl_model_count() && k < n; i++)
			k += (size_t)snprintf(out + k, n - k, "%s %s", i ? "," : "", tl_model_at(i)->name);
	} else if (s->type == T_STR) {
		snprintf(out, n, "at most %zu bytes", s->size - 1);
	} else if (s->type == T_FLOAT || s->type == T_DOUBLE) {
		snprintf(out, n, "a number in %.9g..%.9g", s->lo, s->hi);
	} else {
		snprintf(out, n, "an integer in %.0f..%.0f", s->lo, s->hi);
	}
}

/* Settings added after checkpoints were first written: a checkpoint
 * without them ran with their defaults. */
static int is_late(const char *key)
{
	static const char *const late[] = {"label_smoothing", "tta", "keras", "head_lr_mult",
					   "precision", NULL};
	for (int i = 0; late[i]; i++)
		if (!strcmp(late[i], key))
			return 1;
	return 0;
}

tl_status tl_train_cfg_load(tl_train_cfg *c, const char *(*get)(void *arg, const char *key),
			    void *arg, const char *where, tl_err *err)
{
	for (int i = 0; i < N_SETTINGS; i++) {
		const setting *s = &table[i];
		if (!s->key)
			continue;
		if (c->given[i] && !strcmp(s->key, "precision"))
			continue; /* --resume RUN --precision P: the one saved setting it may change */
		const char *v = get(arg, s->key);
		if (!v && is_late(s->key)) { /* a checkpoint from before the setting: its default */
			TL_CHECK(store(s, c, s->def, 0, 0) == 0);
			continue;
		}
		if (!v)
			return tl_seterr(err, TL_EFORMAT, "%s: metadata: %s missing (not a tltrain checkpoint?)",
					 where, s->key);
		/* in range, or the default (which may stand outside it: pool -1) */
		if (store(s, c, v, 0, 1) == 0 || (strcmp(v, s->def) == 0 && store(s, c, v, 0, 0) == 0))
			continue;
		char want[300];
		expected(s, want, sizeof want);
		return tl_seterr(err, TL_EFORMAT, "%s: metadata: %s: expected %s, got '%.200s'", where,
				 s->key, want, v);
	}
	return TL_OK;
}
