/* The train/ layer drives whole runs: settings.c (the one table of
 * options and checkpoint metadata), train.c (stages and epochs), prefix.c
 * (the frozen-prefix cache), checkpoint.c, history.c, schedule.c,
 * forward.c (the shard -> batch -> forward sweep every pass shares),
 * evaluate.c, extract.c, grid.c, predict.c and metrics.c.  It uses nn/,
 * data/ and plot/; only the mains sit above it.
 *
 * train.h - the training driver behind tltrain: feature extraction,
 * fine-tuning (head warm-up, then unfreeze a unit and everything above it
 * at a lower learning rate) and training from scratch, with the
 * frozen-prefix cache, early stopping with best-weight restore, LR
 * schedules, atomic checkpoints, exact resume, history and a report.
 *
 * The folder train/ is the top library layer (it uses data/, nn/, cpu/):
 *   train.c       the stage and epoch loop (this header)
 *   settings.h    every setting once: defaults, options, checkpoint keys
 *   checkpoint.h  last.safetensors / best.safetensors, resume
 *   prefix.h      the frozen-prefix cache
 *   history.h     history.csv / history.json
 *   schedule.h    learning-rate schedules
 *   forward.h     the batch loop, normalization check and latency shared
 *                 with evaluate.h (tleval) and extract.h (--features)
 *   metrics.h, npy.h */
#ifndef TL_TRAIN_H
#define TL_TRAIN_H

#include "tl.h"
#include "train/settings.h"

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
