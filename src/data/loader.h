/* loader.h - batches for training and evaluation.
 *
 * Worker threads gather the items of each batch (in a seeded per-epoch
 * permutation when shuffling) from the mapped shard, verifying each chunk's
 * checksum on first touch, apply augmentation (random horizontal flip,
 * random crop with zero padding), convert to float32 and hand batches to
 * the trainer through a bounded queue (prefetch).  Items can come from a
 * float cache instead of the shard (the frozen-prefix cache).  Everything
 * random is keyed by (seed, epoch, item), so a run is reproducible and a
 * resumed run sees the same batches. */
#ifndef TL_LOADER_H
#define TL_LOADER_H

#include <stdint.h>

#include "data/shard.h"

typedef struct {
	tl_shard *shard;         /* image source (when cache is NULL) */
	const uint64_t *records; /* file record of each item */
	const int32_t *labels;   /* label of each item */
	uint64_t n;              /* items */
	const float *cache;      /* optional: item i is cache[i * row_floats ...] */
	size_t row_floats;       /* floats per item (image or cache row) */
	int batch;
	int shuffle;
	int flip;                /* random horizontal flip */
	int crop_pad;            /* random crop after zero-padding by this many pixels */
	uint64_t seed;
	int workers;             /* threads (>= 1) */
	int depth;               /* batches in flight (>= 2) */
} tl_loader_cfg;

typedef struct tl_loader tl_loader;

tl_status tl_loader_new(tl_loader **out, const tl_loader_cfg *cfg, tl_err *err);
void tl_loader_free(tl_loader *l);
uint64_t tl_loader_batches(const tl_loader *l);

/* Begin epoch `epoch` at batch `first` (0, or where a resumed run stopped). */
void tl_loader_start(tl_loader *l, int epoch, uint64_t first);

/* The next batch of the epoch: *x [n][row], *y [n]; *n = 0 at the end.
 * The pointers stay valid until the next call.  A chunk that fails its
 * checksum is an error naming it. */
tl_status tl_loader_next(tl_loader *l, const float **x, const int32_t **y, int *n, tl_err *err);

/* dst = src mirrored left-right: n images of [c][h][w] floats (test-time
 * flip; dst must not overlap src). */
void tl_loader_mirror(const float *src, float *dst, int n, int c, int h, int w);

#endif
