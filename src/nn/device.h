/* device.h - the one place a backend is chosen.  tltrain, tleval and
 * tlbench hand the user's --device string here; nothing else compares
 * backend names.
 *
 *   cpu                  the fast SIMD CPU backend on `threads` threads
 *   cpu-reference        the scalar reference (one thread; tests, checks)
 *   opencl[:P[:D]]       OpenCL platform P, device D (default: the first GPU)
 *   auto                 an OpenCL GPU if there is one, else cpu; a CPU
 *                        OpenCL device (PoCL) is never taken: the native
 *                        backend is faster there */
#ifndef TL_NN_DEVICE_H
#define TL_NN_DEVICE_H

#include <stdio.h>

#include "backend.h"

typedef struct {
	tl_backend *be;
	tl_pool *pool; /* host threads: the fast CPU backend's, and the loaders' helpers */
	int fast_cpu;  /* be is the fast CPU backend (the one with a bf16 GEMM) */
} tl_device;

/* 0 if spec is one of the forms above (a usage check before any work). */
int tl_device_spec_ok(const char *spec);
/* Open the backend spec names, with `threads` host threads (<= 0: one per
 * core).  An OpenCL spec in a build without OpenCL, no ICD or no such
 * device fails with what to install or which devices there are. */
tl_status tl_device_open(tl_device *d, const char *spec, int threads, tl_err *err);
void tl_device_close(tl_device *d);
/* The GEMM precision of an open device (--precision): "fp32"; "bf16"
 * (operands rounded to bfloat16, sums in fp32: the fast CPU backend on a CPU
 * with AVX512-BF16, else TL_EUSAGE saying why); "auto": bf16 where it can
 * run, else fp32.  Process-wide (cpu/gemm.h); bf16 adds ", bf16 GEMM" to
 * d->be->name. */
tl_status tl_device_set_precision(tl_device *d, const char *precision, tl_err *err);
/* Print the OpenCL platforms and devices (tltrain --list-devices). */
tl_status tl_device_list(FILE *out, tl_err *err);

#endif
