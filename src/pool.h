/* pool.h - a fixed pthread pool with one operation: a blocking parallel-for.
 * The calling thread works too, so a pool of N threads starts N-1 workers. */
#ifndef TL_POOL_H
#define TL_POOL_H

#include <stddef.h>

#include "tl.h"

typedef struct tl_pool tl_pool;

/* fn processes items [begin, end); tid is in [0, nthreads) and is stable
 * for the duration of one call, so callers can index per-thread scratch. */
typedef void (*tl_pool_fn)(void *ctx, size_t begin, size_t end, int tid);

/* Create a pool of nthreads (<= 0 means one per online CPU). */
tl_status tl_pool_new(tl_pool **out, int nthreads, tl_err *err);
void tl_pool_free(tl_pool *p);
int tl_pool_size(const tl_pool *p);

/* Run fn over [0, n) in pieces of at most `grain` items; returns when all
 * pieces are done.  Not reentrant: one parallel-for at a time per pool. */
void tl_pool_for(tl_pool *p, size_t n, size_t grain, tl_pool_fn fn, void *ctx);

/* tl_pool_for in about four pieces per thread: enough to even out uneven
 * pieces and a stolen core, few enough that hand-offs stay cheap. */
void tl_pool_split(tl_pool *p, size_t n, tl_pool_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int tl_ncpu(void);

#endif
