/* ocl.h - the OpenCL/CLBlast backend: the op contract of backend.h on one
 * OpenCL device, with tensors resident in device memory.
 *
 * Convolutions and dense layers are CLBlast SGEMMs (a "wide" im2col over a
 * chunk of images, the chunk sized to a workspace reserved by
 * prepare_conv; 3x3 stride-1 layers wide enough through Winograd
 * F(2x2, 3x3) and, for their weight gradient, F(3x3, 2x2): 16
 * strided-batched SGEMMs per chunk); everything else is a kernel of opencl/NAME.cl, compiled once
 * per process from the sources embedded in the library (TL_OPENCL_DIR=/dir
 * loads dir/NAME.cl instead).  One in-order queue: upload copies the host
 * data to staging memory and returns at once, so the host prepares the next
 * batch while the device computes; download and sync wait.  Errors name
 * the OpenCL or CLBlast call, the error's name and file:line.  A backend
 * is used from one thread at a time.
 *
 * The conv workspace prepare_conv reserves is at most TL_OCL_WORKSPACE_MB
 * MiB (default: the smallest of 1 GiB, an eighth of the device's memory
 * and its largest buffer) plus up to 64 MiB of split-K weight-gradient
 * slices; a layer whose batch does not fit is run in chunks of images. */
#ifndef TL_OCL_OCL_H
#define TL_OCL_OCL_H

#include <stdio.h>

#include "backend.h"

/* Open device `device` of platform `platform` (indexes as tl_ocl_list
 * prints them) as a backend in *out.  platform < 0 picks the first GPU
 * (tl_ocl_find_gpu) and fails when there is none; device < 0 with a
 * platform given is device 0.  The context and the program are shared by
 * every backend the process opens on that device.  be->pool is NULL.
 * Fails (TL_EIO) with a message naming the Debian packages when no OpenCL
 * platform is installed, and when the kernels do not build (with the
 * compiler's log). */
tl_status tl_ocl_open(int platform, int device, tl_backend **out, tl_err *err);

/* TL_OK with *platform, *device set to the first OpenCL GPU; TL_EUSAGE
 * when there is none (no ICD, no platform, or only CPU devices: PoCL is
 * never counted, on a CPU the native backend is faster). */
tl_status tl_ocl_find_gpu(int *platform, int *device);

/* Print every platform and its devices to out: name, vendor, OpenCL
 * version, type, global memory, largest buffer, compute units.  Fails
 * (TL_EIO) when no OpenCL platform is installed, naming the packages. */
tl_status tl_ocl_list(FILE *out, tl_err *err);

/* Whether the backend runs convolution s through Winograd F(2x2, 3x3):
 * its forward pass (dir 0) or its input gradient (dir 1).  3x3, stride 1,
 * padding 0 to 2 before, at least 32 input and output channels, 1024
 * output tiles in the batch, no more than a quarter of the computed
 * outputs past the map's edge; never when $TL_WINOGRAD is 0.  Where the
 * forward pass takes it, so does the weight gradient (F(3x3, 2x2): the
 * same input patches, 16 GEMMs summing over the tiles). */
int tl_ocl_winograd(const tl_conv_shape *s, int dir);

#endif
