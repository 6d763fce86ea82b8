/* ops.h - the CPU backends' ops: every op of the list (backend_ops.h) as
 * a scalar reference, tl_cpu_ref_NAME, with the slot's own signature (it
 * takes the backend's buffers and reaches host memory through
 * tl_cpu_f/tl_cpu_i of cpu/host.h).  cpu/host.c fills a backend's slots
 * from these, and the fast path (tl_cpu_fast_init) replaces the ones it
 * speeds up.  The layer kernels of the reference are cpu/ref.c (over the
 * float instances of ref_impl.h, whose double ones the gradient checks
 * use); the memory moves, elementwise ops, loss and optimizer, one
 * version for both backends split over be->pool, are cpu/elem.c. */
#ifndef TL_CPU_OPS_H
#define TL_CPU_OPS_H

#include "backend.h"
#include "cpu/host.h"

#define TL_OP(ret, name, params) ret tl_cpu_ref_##name params;
#include "backend_ops.h"
#undef TL_OP

/* The fast CPU backend: replaces be's slots of the layer ops with packed
 * SGEMM (AVX-512 / AVX2+FMA micro-kernels chosen from cpuid,
 * TL_CPU=avx2|avx512|scalar overrides), Winograd and direct SIMD loops,
 * threads from be->pool (NULL: the calling thread). */
void tl_cpu_fast_init(tl_backend *be);

#endif
