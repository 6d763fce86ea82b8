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
} tl_device;

/* 0 if spec is one of the forms above (a usage check before any work). */
int tl_device_spec_ok(const char *spec);
/* Open the backend spec names, with `threads` host threads (<= 0: one per
 * core).  An OpenCL spec in a build without OpenCL, no ICD or no such
 * device fails with what to install or which devices there are. */
tl_status tl_device_open(tl_device *d, const char *spec, int threads, tl_err *err);
void tl_device_close(tl_device *d);
/* Print the OpenCL platforms and devices (tltrain --list-devices). */
tl_status tl_device_list(FILE *out, tl_err *err);

#endif
