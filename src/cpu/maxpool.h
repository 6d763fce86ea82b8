/* maxpool.h - the fast backend's separable max pool forward (maxpool.c). */
#ifndef TL_CPU_MAXPOOL_H
#define TL_CPU_MAXPOOL_H

#include <stdint.h>

#include "backend.h"
#include "pool.h"

/* y[n][c][oh][ow] = max over each padded window of x, argmax the index in
 * the input plane of the first maximum in row-major window order (NaN wins
 * over numbers; an all-padding window gives -inf and -1), exactly as the
 * reference; AVX-512 when the CPU (and $TL_CPU) allow, threads over planes.
 * argmax NULL (inference, frozen layers: no backward follows): y alone,
 * the same values, with plain NaN-keeping maxima instead of the argmax
 * bookkeeping (about half the work). */
void tl_fast_maxpool_fwd(tl_pool *pool, const tl_pool_shape *s, const float *x, float *y,
			 int32_t *argmax);

#endif
