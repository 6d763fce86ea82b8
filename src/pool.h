/* pool.h - threads: a fixed pthread pool with one operation, a blocking
 * parallel-for (the calling thread works too, so a pool of N threads starts
 * N-1 workers), and the bounded producer/consumer queue that tlpack's
 * reader and the batch loader's workers hand their slots through. */
#ifndef TL_POOL_H
#define TL_POOL_H

#include <stddef.h>
#include <stdint.h>

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

/* ---- bounded queue of slots ----
 * A ring of `depth` slots the caller owns (tl_queue hands out indices),
 * filled by one or more producers and emptied in ticket order by one
 * consumer.  Producers reserve ticket t (the next one in order; it lives
 * in slot t % depth and may be reserved once ticket t - depth has been
 * released), fill the slot without the lock and publish it; publication may
 * be out of order.  The consumer takes tickets strictly in order, each
 * waiting until that ticket is published, and releases it when done.
 * Tickets at or beyond a limit are not handed out (the end of a loader
 * epoch); close() wakes everybody and makes every wait return -1. */
typedef struct tl_queue tl_queue;

tl_status tl_queue_new(tl_queue **out, unsigned depth, tl_err *err);
void tl_queue_free(tl_queue *q);

/* Producer: block until the next ticket below the limit has a free slot;
 * store the ticket in *ticket and return its slot index, or -1 once
 * closed. */
int tl_queue_reserve(tl_queue *q, uint64_t *ticket);
/* Producer: the slot of `ticket` is filled; wake the consumer. */
void tl_queue_publish(tl_queue *q, uint64_t ticket);
/* Consumer: block until the next ticket in order is published; store it in
 * *ticket and return its slot index; -1 once closed or when the next
 * ticket is at the limit (the end).  The slot stays the consumer's until
 * tl_queue_release. */
int tl_queue_take(tl_queue *q, uint64_t *ticket);
/* Consumer: give back the slot last taken (no-op if none is held). */
void tl_queue_release(tl_queue *q);
/* Consumer: stop handing out tickets and wait until every reserved ticket
 * is published, so no producer touches a slot or shared input; then the
 * caller may change what producers read and call tl_queue_restart. */
void tl_queue_drain(tl_queue *q);
/* Consumer: drain, then forget all slots and tickets; the next ticket
 * reserved and taken is `first`, and tickets >= `limit` are not handed
 * out. */
void tl_queue_restart(tl_queue *q, uint64_t first, uint64_t limit);
/* Wake every waiter; from now on reserve and take return -1. */
void tl_queue_close(tl_queue *q);

/* Number of online CPUs (at least 1). */
int tl_ncpu(void);

#endif
