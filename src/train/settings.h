/* settings.h - every training setting of tltrain, described once.
 *
 * One table (settings.c) gives each setting its checkpoint metadata key,
 * its type and place in tl_train_cfg, its default, its legal range or
 * names, its command-line option and usage message, and whether a
 * checkpoint keeps it.  Defaults, the option parser of tltrain and the
 * metadata round trip of checkpoints are all driven by that table, so a new
 * setting is one line there plus its field here.
 *
 * Parsing is strict: the whole text must be a value of the setting's type
 * inside its range (or one of its names).  A checkpoint's value may also be
 * the setting's default when that lies outside the option range (pool and
 * dropout use -1 for "the model's default"). */
#ifndef TL_TRAIN_SETTINGS_H
#define TL_TRAIN_SETTINGS_H

#include <signal.h>
#include <stdint.h>

#include "cli.h"
#include "nn/optim.h"
#include "tl.h"

typedef enum { TL_STRAT_FEATURE = 0, TL_STRAT_FINETUNE, TL_STRAT_SCRATCH } tl_strategy;
typedef enum {
	TL_SCHED_CONSTANT = 0,
	TL_SCHED_STEP,
	TL_SCHED_COSINE,
	TL_SCHED_PLATEAU,
	TL_SCHED_ONECYCLE /* per batch: warm up to the rate, then anneal to ~0 */
} tl_schedule;

/* Name tables of the enumerated settings (for tl_enum_parse/tl_enum_name). */
extern const tl_enum tl_strategy_names[], tl_schedule_names[], tl_opt_names[], tl_monitor_names[];

typedef struct {
	char model[16];
	char weights[1024];
	char shard[1024];
	char run_dir[1024];
	tl_strategy strategy;
	char unit[64];      /* finetune: unfreeze this unit and above ("" = model default) */
	int patience;       /* epochs without improvement before stopping (0 = never) */
	double max_epochs;  /* total, both stages; a fraction stops the run part way
			     * through its last epoch (1.25: one epoch and a quarter) */
	int batch;
	int warmup_epochs;  /* finetune: head-only epochs */
	float lr, lr2;      /* head / first stage, fine-tune stage */
	tl_opt_kind opt;
	float momentum, weight_decay;
	int nesterov;
	float head_lr_mult; /* the head's rate is this times the stage's */
	tl_schedule sched;
	int step_size;      /* step: epochs between decays */
	float gamma;        /* step and plateau decay factor */
	int plateau_patience;
	char head[64];      /* hidden sizes ("256", "512,256", "none"; "" = model default) */
	int pool;           /* -1 model default, 0 flatten, 1 global average pool */
	float dropout;      /* < 0: model default */
	int flip, crop_pad; /* augmentation */
	float label_smoothing; /* target smoothing of the training loss (0: one-hot) */
	int tta;            /* evaluation averages the logits of each image and its mirror */
	int keras;          /* mobilenetv2: Keras' graph (set from the weights' metadata graph=keras) */
	double val_fraction; /* 0: validate on the test split */
	int monitor_loss;   /* 0: val_accuracy (max), 1: val_loss (min) */
	float min_delta;
	uint64_t seed;
	int no_cache;
	long cache_mem_mb;  /* above this the prefix cache goes to a file (default 4096) */
	/* run-time only (not saved) */
	char precision[8];  /* GEMM operands: fp32, bf16 or auto (tl_device_set_precision);
			     * saved, but --resume may change it */
	char device[32];    /* nn/device.h: auto, cpu, cpu-reference, opencl[:P[:D]] */
	int threads, quiet, json;
	double time_limit;  /* seconds for the whole run, final test included (0: none):
			     * the last stage ends sooner if -e would not fit */
	int no_plots;       /* no history/confusion pictures in the run directory */
	double resume_epochs; /* --resume with -e: the run's new total of epochs (0: the checkpoint's) */
	int on_nan_skip;    /* a non-finite batch loss: 0 stops the run, 1 skips the batch */
	int allow_nonfinite; /* load weights holding NaN or Inf */
	unsigned char given[96]; /* options given on the command line, by table index */
	char recipe[16];    /* --recipe: a named set of defaults ("" none; settings.c) */
	const volatile sig_atomic_t *cancel;
	long cancel_after; /* tests: behave as if cancelled after this many batches (0: never) */
	/* tests: called with the network the report is computed on (the
	 * restored best weights), just before the report; may be NULL */
	void (*on_final)(void *arg, const tl_net *net);
	void *on_final_arg;
} tl_train_cfg;

/* Every setting at its default (run-time fields zero, device "auto"). */
void tl_train_defaults(tl_train_cfg *c);

/* ---- command line ---- */

/* The defaults of c->recipe (--recipe fast/best: settings.c's recipe
 * table, the model among them), then the per-network defaults (the model
 * table: learning rates, optimizer, schedule, ...) for c->model, applied
 * to each setting whose option was not given (c->given); a recipe's value
 * wins over the network's.  Call after the options. */
void tl_train_model_defaults(tl_train_cfg *c);

/* What tl_train_model_defaults set, as "key value, key value": in
 * model_buf the network's own defaults the settings still hold, in
 * recipe_buf the recipe's (each n bytes; "" when none; a resumed run
 * knows no recipe).  By value: an option giving a default's own value
 * counts as the default.  For the first lines of a run and its report. */
void tl_train_defaults_text(const tl_train_cfg *c, char *model_buf, char *recipe_buf, size_t n);

/* The epochs a run starts: max_epochs rounded up (1.25 -> 2). */
int tl_train_epoch_count(const tl_train_cfg *c);

/* The batches epoch e (0-based) trains out of the nb of a full one: all of
 * them but in a fractional last epoch, whose share is rounded up (at least
 * one batch). */
uint64_t tl_train_epoch_batches(const tl_train_cfg *c, int e, uint64_t nb);

/* The unit -u defaults to for a model ("block5" for vgg16, ...). */
const char *tl_train_default_unit(const char *model);

/* getopt_long description of every setting's option: fills lo (room for
 * cap entries, the last one zeroed) and the short option string (room for
 * 64 chars).  Returns the number of options, or -1 if cap is too small.
 * The val of each entry is the short letter, or TL_OPT_FIRST + index. */
#define TL_OPT_FIRST 0x1000
struct option;
int tl_train_getopt_table(struct option *lo, int cap, char *shorts);

/* Apply the option getopt_long returned as ch (a val from the table) with
 * its argument to c.  Returns 0; -1 when ch is no setting's option; or 1
 * when arg is not legal, with *what set to the usage message to print with
 * the argument ("-e: expected epochs in 1..10000"). */
int tl_train_set_option(tl_train_cfg *c, int ch, const char *arg, const char **what);

/* Whether long option opt may be given with --resume (the table's flag:
 * -e, -j, --device, --precision, -m, -q, --log-format, --no-plots,
 * --on-nan); 0 for any other, and for names that are no setting's. */
int tl_train_option_resumable(const char *opt);

/* For the other mains (tleval, tlpredict, tlpack): parse arg as the
 * setting whose long option is opt ("batch", "threads", "device",
 * "precision") with its range, names and message, and store the value
 * in dst, of size bytes (the field's own size: int for batch and threads,
 * char[32] for device, char[8] for precision).  0 when legal; 1 with
 * *what set to the message tltrain prints ("-j: expected a thread count
 * in 1..1024").  The setting must exist and size match (checked). */
int tl_setting_parse(const char *opt, const char *arg, void *dst, size_t size, const char **what);

/* ---- checkpoint metadata ---- */

/* Call put(arg, key, value) for each saved setting, in table order, with
 * the value as text (the format checkpoints have always had). */
void tl_train_cfg_save(const tl_train_cfg *c, void (*put)(void *arg, const char *key, const char *val),
		       void *arg);

/* Read each saved setting through get(arg, key) (NULL: missing).  A missing
 * key or an unparsable / out-of-range value is TL_EFORMAT naming where
 * ("WHERE: metadata: KEY missing (not a tltrain checkpoint?)" or
 * "WHERE: metadata: KEY: expected X, got 'V'").  c is left partly updated
 * on failure. */
tl_status tl_train_cfg_load(tl_train_cfg *c, const char *(*get)(void *arg, const char *key),
			    void *arg, const char *where, tl_err *err);

#endif
