/* fastops.h - the fast backend's depthwise conv (dwconv.c) and its batch
 * norm, LRN and adaptive average pool (norm.c): each fills its entries of
 * the backend that tl_cpu_fast_init() sets up.  Threads over planes or
 * channels from be->pool; SIMD from tl_cpu_detect() at each call, with the
 * same scalar loops as the tail and the scalar level. */
#ifndef TL_CPU_FASTOPS_H
#define TL_CPU_FASTOPS_H

#include "cpu/ops.h"

/* dwconv_fwd, dwconv_bwd: direct SIMD loops over output rows (no GEMM),
 * threaded over the n*c planes; stride-2 inputs are split into even and odd
 * columns once per plane so every tap is a contiguous load. */
void tl_fast_dwconv_init(tl_backend *be);

/* bn_fwd, bn_bwd (threaded over channels), lrn_fwd, lrn_bwd (over samples
 * and pixel blocks), avgpool_fwd, avgpool_bwd (over planes). */
void tl_fast_norm_init(tl_backend *be);

#endif
