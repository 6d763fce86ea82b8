/* checkpoint.h - what a run leaves to continue from and to use.
 *
 * RUN/last.safetensors (after every epoch, and on interruption) holds the
 * parameters, the optimizer moments ("optim.m.NAME", "optim.v.NAME"), and
 * in its metadata every saved setting (train/settings.h), the run state
 * below (epoch, stage, position in the epoch, partial sums, early-stopping
 * and plateau state, learning rate, optimizer step) and the history as
 * JSON; "tltrain_checkpoint" marks it.  Resuming from it continues the run
 * exactly: same batches, same updates, same history.
 *
 * RUN/best.safetensors holds the best epoch's parameters with what tleval
 * needs to rebuild the network (model, normalization, input size, classes,
 * head sizes, pool) and the epoch and monitored value. */
#ifndef TL_TRAIN_CHECKPOINT_H
#define TL_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "data/shard.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "train/history.h"
#include "train/settings.h"

/* A run's progress: everything besides weights and optimizer moments that
 * a resumed run needs. */
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
	tl_history hist;
	uint64_t shard_hash; /* header XXH3 of the shard the run trains on (0: unknown) */
} tl_run_state;

/* Write RUN_DIR/last.safetensors (atomically). */
tl_status tl_checkpoint_save(const tl_train_cfg *c, tl_net *net, tl_optim *opt,
			     const tl_run_state *s, tl_err *err);

/* Open RUN_DIR/last.safetensors of the run cfg->run_dir and replace cfg's
 * saved settings with the checkpoint's (run-time ones stay).  A cfg->model
 * other than "" must be the checkpoint's.  *out is the open file for
 * tl_checkpoint_load (close it with tl_st_close). */
tl_status tl_checkpoint_open(tl_train_cfg *cfg, tl_st_file **out, tl_err *err);

/* Restore parameters, optimizer moments and run state from an open
 * checkpoint; the stage must be below n_stages and the epoch at most
 * max_epochs. */
tl_status tl_checkpoint_load(const tl_st_file *f, tl_net *net, tl_optim *opt, tl_run_state *s,
			     int n_stages, int max_epochs, tl_err *err);

/* TL_OK unless f is a training checkpoint (last.safetensors), which lacks
 * the input's description a model file carries: then a usage error that
 * points to the run's best.safetensors.  For tleval and tlpredict. */
tl_status tl_checkpoint_not_model(const tl_st_file *f, tl_err *err);

/* Write RUN_DIR/best.safetensors from the net's current parameters. */
tl_status tl_checkpoint_save_best(const tl_train_cfg *c, tl_net *net, const tl_shard_info *in,
				  const tl_run_state *s, tl_err *err);

#endif
