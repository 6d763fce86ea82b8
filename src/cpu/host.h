/* host.h - the CPU backends behind the op contract of backend.h.
 *
 * A buffer is host memory: be->host() hands out its address, upload and
 * download are memcpy, and the ops call the host-pointer kernel tables of
 * ops.h (the scalar reference or the SIMD fast path) with those addresses.
 * The elementwise ops (dropout, copies, softmax, optimizer updates) are
 * shared by both and split over the pool's threads. */
#ifndef TL_CPU_HOST_H
#define TL_CPU_HOST_H

#include "backend.h"

/* Open a CPU backend: the scalar reference (reference != 0, one thread,
 * obviously correct) or the fast SIMD path on pool's threads (pool may be
 * NULL: the calling thread).  The backend does not own pool. */
tl_status tl_cpu_open(int reference, tl_pool *pool, tl_backend **out, tl_err *err);

#endif
