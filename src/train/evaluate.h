/* evaluate.h - a trained model (tltrain's best.safetensors) on a shard:
 * accuracy, loss, per-class precision/recall/F1, macro F1, confusion
 * matrix, and latency. */
#ifndef TL_EVALUATE_H
#define TL_EVALUATE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "tl.h"
#include "train/forward.h"

typedef struct {
	const char *model_path; /* safetensors with the head (tltrain's best.safetensors) */
	const char *shard;
	const char *split;      /* default test */
	uint64_t limit;
	const char *device;     /* tl_device_open spec; NULL: cpu */
	const char *precision;  /* tl_device_set_precision; NULL: fp32 */
	int batch, threads, quiet;
	const volatile sig_atomic_t *cancel;
	FILE *predictions;      /* NULL, or the predictions CSV (train/predcsv.h): a row
				 * per image, predicted class the argmax (lowest on ties) */
	FILE *json;             /* NULL, or the report as one JSON object (see tl_evaluate) */
} tl_eval_opts;

typedef struct {
	uint64_t n;
	double accuracy, loss, macro_f1;
	double latency_ms;     /* one image, batch 1, median of 21 */
	tl_latency latency;    /* the same passes: fastest, 90th percentile, busy */
	int threads;           /* the threads they ran on */
	double images_per_s;   /* batched throughput over the split */
} tl_eval_result;

/* Rebuilds the network from the file's metadata (model, head, pool),
 * checks its classes and normalization against the shard, and writes the
 * report to out (text; may be NULL) and to o->json (when set) as one
 * JSON object: producer "tleval", model (the file), network, shard,
 * split, n, accuracy, loss, macro_f1, latency_ms (batch 1, the
 * median), latency {median_ms, min_ms, p90_ms, reps, threads, busy},
 * images_per_s, batch, device, classes, per_class [{class, precision,
 * recall, f1, support}] and confusion [true][predicted]. */
tl_status tl_evaluate(const tl_eval_opts *o, FILE *out, tl_eval_result *res, tl_err *err);

#endif
