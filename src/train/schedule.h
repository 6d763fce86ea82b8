/* schedule.h - learning-rate schedules within a training stage.
 *
 * Pure functions of the epoch (and, for plateau, of the validation metric
 * history kept by the caller), so a resumed run picks up the same rates. */
#ifndef TL_TRAIN_SCHEDULE_H
#define TL_TRAIN_SCHEDULE_H

#include "train/settings.h"

/* The rate of epoch e (0 = the stage's first) of a stage of n epochs that
 * starts at base:
 *   constant  base
 *   step      base * gamma^floor(e / step_size)   (step_size < 1 counts as 1)
 *   cosine    base * (1 + cos(pi * e / n)) / 2    (n < 1 counts as 1)
 *   plateau   cur: the rate only tl_plateau_update lowers
 *   onecycle  tl_onecycle_lr(base, e / n) */
float tl_schedule_lr(tl_schedule s, float base, int e, int n, int step_size, float gamma, float cur);

/* One-cycle rate (as PyTorch's OneCycleLR, pct_start 0.3, div_factor 25,
 * final_div_factor 1e4, cosine both ways) at t in [0, 1], the fraction of
 * the stage's batches done: from base/25 up to base at t = 0.3, then down
 * to base/25e4 at t = 1 (t is clamped to [0, 1]).  onecycle in
 * tl_schedule_lr is this at t = e / n (n < 1 counts as 1); the trainer
 * steps it every batch. */
#define TL_ONECYCLE_PCT 0.3
float tl_onecycle_lr(float base, double t);

/* Plateau bookkeeping after an epoch whose monitored metric is `metric`
 * (minimize: lower is better).  The run's first epoch (first != 0) or an
 * improvement on *best makes it the new *best and zeroes *bad; otherwise
 * *bad counts up, and on reaching patience is zeroed and 1 is returned:
 * the caller multiplies the rate by gamma.  Returns 0 otherwise. */
int tl_plateau_update(double *best, int *bad, double metric, int first, int minimize, int patience);

#endif
