/* host.h - the CPU backends behind the op contract of backend.h.
 *
 * A buffer is host memory: be->host() hands out its address, upload and
 * download are memcpy, and every op (cpu/ops.h: the scalar reference, or
 * the SIMD fast path where it has one) works on the buffers' addresses,
 * which tl_cpu_f/tl_cpu_i below are the one place to compute. */
#ifndef TL_CPU_HOST_H
#define TL_CPU_HOST_H

#include <stdint.h>

#include "backend.h"

/* A CPU backend's buffer: 64-byte aligned host memory. */
struct tl_buf {
	void *p;
	size_t bytes;
};

/* The float address of m; NULL for none. */
static inline float *tl_cpu_f(tl_mem m)
{
	return m.buf ? (float *)m.buf->p + m.off : NULL;
}

/* The int32 address of m (argmax, labels, predictions); NULL for none. */
static inline int32_t *tl_cpu_i(tl_mem m)
{
	return m.buf ? (int32_t *)m.buf->p + m.off : NULL;
}

/* The host array p (float or int32) as a CPU backend's tl_mem, nothing
 * copied, for tests that hold plain arrays; the tl_buf is a compound
 * literal of the enclosing block, so use the result there.  NULL: none. */
#define TL_CPU_VIEW(p) tl_cpu_view(&(tl_buf){0}, (p))
static inline tl_mem tl_cpu_view(tl_buf *b, const void *p)
{
	b->p = (void *)p;
	return p ? (tl_mem){b, 0} : (tl_mem){0};
}

/* Open a CPU backend: the scalar reference (reference != 0, one thread,
 * obviously correct) or the fast SIMD path on pool's threads (pool may be
 * NULL: the calling thread).  The backend does not own pool. */
tl_status tl_cpu_open(int reference, tl_pool *pool, tl_backend **out, tl_err *err);

#endif
