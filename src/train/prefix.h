/* prefix.h - the frozen-prefix cache.
 *
 * When layers [0, k) are frozen and no random augmentation acts before
 * them, their output never changes: the input of layer k is computed once
 * per train and validation item and kept (in RAM, or in an unlinked file
 * mapping in the run directory when larger than mem_mb), and each epoch
 * runs only layers [k, n) on rows of the cache.
 *
 * A fine-tune run can build the deeper cache its second stage will need
 * first (the input of layer k2 < k), keep it, and derive the head-only
 * cache from it: one pass of the base for both stages. */
#ifndef TL_TRAIN_PREFIX_H
#define TL_TRAIN_PREFIX_H

#include <signal.h>
#include <stdint.h>

#include "data/shard.h"
#include "nn/net.h"
#include "progress.h"
#include "tl.h"

typedef struct {
	int layer;      /* first layer run per batch; 0 = no cache */
	size_t row;     /* floats per item */
	float *tr, *va; /* train rows, then validation rows (one allocation) */
	size_t bytes;
	int mapped;
	/* a deeper cache kept for the next stage */
	struct {
		int layer;
		size_t row, bytes;
		float *tr;
		int mapped;
	} keep;
	double seconds; /* spent building, in total */
} tl_prefix;

/* Where the items come from and how to run the net over them. */
typedef struct {
	tl_net *net; /* bound to its backend */
	tl_shard *sh;
	const uint64_t *tr_rec, *va_rec;
	uint64_t n_tr, n_va;
	int batch;
	long mem_mb;
	const char *dir; /* for the file mapping */
	const volatile sig_atomic_t *cancel;
	tl_progress *prog;
	int quiet;
} tl_prefix_src;

/* Can the input of layer k stand in for everything before it?  Every
 * later layer must read only tensors made at or after that input. */
int tl_prefix_cacheable(const tl_net *net, int k);

/* Replace the cache with one holding the input of layer k (a kept cache of
 * layer k is taken as it is).  With k2 > 0 (k2 < k, cacheable), the input
 * of layer k2 is built first, kept for the next stage, and the cache of k
 * derived from it.  On failure (TL_EINTR when cancelled) no cache is
 * left. */
tl_status tl_prefix_build(tl_prefix *pc, const tl_prefix_src *s, int k, int k2, tl_err *err);

/* Drop the current cache (kept: also the kept one). */
void tl_prefix_free(tl_prefix *pc, int kept);

#endif
