/* forward.h - what training, evaluation and feature extraction share:
 * shard items through the network a batch at a time, the check that the
 * shard's input normalization is the one the weights expect, and the
 * batch-1 latency measurement. */
#ifndef TL_TRAIN_FORWARD_H
#define TL_TRAIN_FORWARD_H

#include <signal.h>
#include <stdint.h>

#include "data/shard.h"
#include "nn/net.h"
#include "progress.h"
#include "tl.h"

/* One pass over n items of a shard, `batch` at a time.  For each batch the
 * input of layer `from` is filled (from 0: the items' images, loaded from
 * the shard; otherwise rows of src, src_row floats each, holding that
 * layer's input for every item), layers [from, to) run, and then
 * each(arg, b0, nb) sees the batch (items b0 .. b0 + nb - 1). */
typedef struct {
	tl_net *net;          /* bound to its backend (tl_net_bind) */
	tl_shard *sh;
	const uint64_t *rec;  /* file records of the items; NULL: those of split */
	int split;
	const float *src;     /* from > 0: rows holding layer from's input */
	size_t src_row;
	int from, to;
	uint64_t n;
	int batch;
	const volatile sig_atomic_t *cancel; /* set: stop with TL_EINTR and cancel_msg */
	const char *cancel_msg;
	tl_progress *prog;    /* may be NULL */
	const char *unit;     /* progress unit ("images") */
	tl_status (*each)(void *arg, uint64_t b0, int nb, tl_err *err);
	void *arg;
	double compute_s;     /* out: seconds spent in the layers */
} tl_sweep;

/* The file record of item i. */
uint64_t tl_sweep_record(const tl_sweep *s, uint64_t i);

/* *s: the index of the split named `split` in sh (opened from `shard`);
 * TL_EUSAGE "SHARD: no split named 'NAME'" when it has none. */
tl_status tl_sweep_split(const tl_shard *sh, const char *shard, const char *split, int *s,
			 tl_err *err);

/* Run the pass; stops at the first failing load or each().  The batch is
 * staged in host memory and uploaded (nothing is copied on the CPU
 * backends' side beyond that one upload); each() reads what it needs from
 * the backend with tl_net_get. */
tl_status tl_sweep_run(tl_sweep *s, tl_err *err);

/* TL_EFORMAT when the weights declare (declared >= 0) an input
 * normalization other than the shard's:
 * "SHARD: input normalization 'A' does not match the WHOSE 'B' (WEIGHTS);
 *  repack with: tlpack --norm B".  whose: "weights'" or "model's". */
tl_status tl_norm_check(const char *shard, tl_norm_kind have, int declared, const char *whose,
			const char *weights, tl_err *err);

/* A pretrained network for feature extraction (tleval --features, --grid):
 * `model` (vgg16 | squeezenet) sized for the shard's images and classes,
 * with `weights` loaded into it.  *li: the index of `layer`; *norm: the
 * input normalization the weights declare (-1 if none).  Errors: an
 * unknown layer ("MODEL has no layer 'L' (expected one of: ...)",
 * TL_EUSAGE), a tensor that a layer up to `layer` needs missing from the
 * weights, or a normalization other than the shard's (TL_EFORMAT).  On
 * error *net is NULL. */
tl_status tl_features_net(const char *model, const char *weights, const char *layer,
			  const char *shard, const tl_shard_info *in, tl_net **net, int *li,
			  int *norm, tl_err *err);

/* Batch-1 latency: one image through the whole network, `reps` timed
 * forward passes (each waited for) after two untimed ones. */
typedef struct {
	int reps;
	double median_ms, min_ms, p90_ms; /* -1 when the backend failed */
	int busy; /* the spread says the machine was busy: p90 > 1.5 x min */
} tl_latency;

/* Measure net's latency (reps clamped to 5..64). */
void tl_latency_measure(tl_net *net, int reps, tl_latency *out);

/* The figures of `reps` timed passes of sec seconds each (sorted in
 * place): median, fastest, 90th percentile, and busy. */
void tl_latency_from(double *sec, int reps, tl_latency *out);

/* "3.100 ms per image (batch 1, median of 21; fastest 2.9, 90th
 * percentile 3.4; THREADS threads, BACKEND)" into buf, and when busy a
 * second sentence saying the figures are not to be compared. */
void tl_latency_text(const tl_latency *l, int threads, const char *backend, char *buf,
		     size_t n);

/* The median of tl_latency_measure (-1 on failure). */
double tl_latency_ms(tl_net *net, int reps);

#endif
