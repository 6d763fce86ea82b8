/* train.h - the training driver behind tltrain: feature extraction,
 * fine-tuning (head warm-up, then unfreeze a unit and everything above it
 * at a lower learning rate) and training from scratch, with the
 * frozen-prefix cache, early stopping with best-weight restore, LR
 * schedules, atomic checkpoints, exact resume, history and a report. */
#ifndef TL_TRAIN_H
#define TL_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "nn/optim.h"
#include "tl.h"

typedef enum { TL_STRAT_FEATURE = 0, TL_STRAT_FINETUNE, TL_STRAT_SCRATCH } tl_strategy;
typedef enum { TL_SCHED_CONSTANT = 0, TL_SCHED_STEP, TL_SCHED_COSINE, TL_SCHED_PLATEAU } tl_schedule;

typedef struct {
	char model[16];
	char weights[1024];
	char shard[1024];
	char run_dir[1024];
	tl_strategy strategy;
	char unit[16];      /* finetune: unfreeze this unit and above ("" = model default) */
	int patience;       /* epochs without improvement before stopping (0 = never) */
	int max_epochs;     /* total, both stages */
	int batch;
	int warmup_epochs;  /* finetune: head-only epochs */
	float lr, lr2;      /* head / first stage, fine-tune stage */
	tl_opt_kind opt;
	float momentum, weight_decay;
	int nesterov;
	tl_schedule sched;
	int step_size;      /* step: epochs between decays */
	float gamma;        /* step and plateau decay factor */
	int plateau_patience;
	char head[64];      /* hidden sizes ("256", "512,256", "none"; "" = model default) */
	int pool;           /* -1 model default, 0 flatten, 1 global average pool */
	float dropout;      /* < 0: model default */
	int flip, crop_pad; /* augmentation */
	double val_fraction; /* 0: validate on the test split */
	int monitor_loss;   /* 0: val_accuracy (max), 1: val_loss (min) */
	float min_delta;
	uint64_t seed;
	int no_cache;
	long cache_mem_mb;  /* above this the prefix cache goes to a file (default 4096) */
	/* run-time only (not saved) */
	int threads, quiet, json, reference_backend;
	const volatile sig_atomic_t *cancel;
	long cancel_after; /* tests: behave as if cancelled after this many batches (0: never) */
} tl_train_cfg;

void tl_train_defaults(tl_train_cfg *c);
const char *tl_strategy_name(tl_strategy s);
const char *tl_schedule_name(tl_schedule s);
int tl_strategy_parse(const char *s, tl_strategy *out);
int tl_schedule_parse(const char *s, tl_schedule *out);

typedef struct {
	int epochs_run, best_epoch, stopped_early, interrupted;
	double best_metric, test_accuracy, test_loss, macro_f1, seconds;
} tl_train_result;

/* Train as configured, writing RUN_DIR/{best,last}.safetensors,
 * history.csv, history.json and report.txt.  With resume, cfg->run_dir
 * names a run to continue: its checkpoint supplies the configuration (the
 * run-time fields of cfg still apply) and training continues exactly where
 * it stopped.  On cancel: finishes the batch, writes last.safetensors and
 * returns TL_EINTR. */
tl_status tl_train(tl_train_cfg *cfg, int resume, tl_train_result *res, tl_err *err);

#endif
