/* scratch.h - big 64-byte aligned work buffers for the fast backend that
 * outlive one call: a freed buffer is kept (up to TL_SCRATCH_KEEP bytes in
 * all) and handed out again, so each layer of each step does not map fresh
 * pages and have the kernel zero them (measured: 4% of a VGG16 training
 * step went to clearing pages).  Thread-safe. */
#ifndef TL_CPU_SCRATCH_H
#define TL_CPU_SCRATCH_H

#include <stddef.h>

/* At least n floats, 64-byte aligned, contents undefined; never NULL. */
float *tl_scratch_get(size_t n);
/* Give back a buffer from tl_scratch_get (NULL is fine). */
void tl_scratch_put(float *p);

#endif
