/* memory.c - the OpenCL backend's buffers (see ocl.h, internal.h):
 * alloc and free against the device's memory, uploads through staging
 * memory, downloads, fill and strided copies, sync and closing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl/internal.h"

/* ---- memory ---- */

tl_buf * tl_ocl_alloc(tl_backend *be, size_t bytes)
{
	ocl_state *o = st_of(be);
	if (be->status != TL_OK)
		return NULL;
	if (bytes == 0)
		bytes = 4;
	if (bytes > be->max_alloc) {
		tl_backend_fail(be, TL_ENOMEM,
				"opencl: alloc: a buffer of %zu bytes is more than the device's "
				"largest (%zu bytes)",
				bytes, be->max_alloc);
		return NULL;
	}
	size_t ws = scratch_bytes(o);
	if (o->allocated + ws + bytes > be->mem_total) {
		tl_backend_fail(be, TL_ENOMEM,
				"opencl: alloc: %zu more bytes would need %zu of the device's %zu "
				"bytes (%zu in buffers, %zu in the conv workspace)",
				bytes, o->allocated + ws + bytes, be->mem_total, o->allocated, ws);
		return NULL;
	}
	tl_buf *b = malloc(sizeof *b);
	if (!b) {
		tl_backend_fail(be, TL_ENOMEM, "opencl: alloc: out of host memory");
		return NULL;
	}
	cl_int rc = CL_SUCCESS;
	b->mem = clCreateBuffer(tl_ocl_shared.ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
	if (!BE_OK(be, rc)) {
		free(b);
		return NULL;
	}
	b->bytes = bytes;
	o->allocated += bytes;
	return b;
}

void tl_ocl_free(tl_backend *be, tl_buf *b)
{
	if (!b)
		return;
	st_of(be)->allocated -= b->bytes;
	clReleaseMemObject(b->mem); /* deferred by OpenCL until queued work is done */
	free(b);
}

void * tl_ocl_host(tl_backend *be, tl_mem m)
{
	return NULL;
}

/* m .. m + bytes lies inside its buffer. */
static int in_range(tl_backend *be, tl_mem m, size_t bytes, const char *what)
{
	if (!m.buf) {
		tl_backend_fail(be, TL_EUSAGE, "opencl: %s: no buffer", what);
		return 0;
	}
	if (m.off > m.buf->bytes / 4 || bytes > m.buf->bytes - m.off * 4) {
		tl_backend_fail(be, TL_EUSAGE,
				"opencl: %s: %zu bytes at element %zu overrun a buffer of %zu bytes",
				what, bytes, m.off, m.buf->bytes);
		return 0;
	}
	return 1;
}

void tl_ocl_upload(tl_backend *be, tl_mem dst, const void *src, size_t bytes)
{
	ocl_state *o = st_of(be);
	if (be->status != TL_OK || bytes == 0 || !in_range(be, dst, bytes, "upload"))
		return;
	if (bytes > STAGE_MAX) {
		BE_OK(be, clEnqueueWriteBuffer(o->q, dst.buf->mem, CL_TRUE, dst.off * 4, bytes, src,
					       0, NULL, NULL));
		return;
	}
	/* copy to a staging slot and return while the device works through the
	 * queue; the slot is reused two uploads later, after its write is done */
	int s = o->stage_next;
	o->stage_next = (s + 1) % STAGE_SLOTS;
	if (o->stage[s].ev) {
		cl_int rc = clWaitForEvents(1, &o->stage[s].ev);
		clReleaseEvent(o->stage[s].ev);
		o->stage[s].ev = NULL;
		if (!BE_OK(be, rc))
			return;
	}
	if (o->stage[s].cap < bytes) {
		void *p = realloc(o->stage[s].p, bytes);
		if (!p) {
			tl_backend_fail(be, TL_ENOMEM, "opencl: upload: no %zu bytes of staging memory",
					bytes);
			return;
		}
		o->stage[s].p = p;
		o->stage[s].cap = bytes;
	}
	memcpy(o->stage[s].p, src, bytes);
	if (BE_OK(be, clEnqueueWriteBuffer(o->q, dst.buf->mem, CL_FALSE, dst.off * 4, bytes,
					   o->stage[s].p, 0, NULL, &o->stage[s].ev)))
		BE_OK(be, clFlush(o->q));
}

static tl_status sticky(tl_backend *be, tl_err *err)
{
	if (be->status != TL_OK && err)
		*err = be->err;
	return be->status;
}

tl_status tl_ocl_download(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err)
{
	ocl_state *o = st_of(be);
	if (be->status == TL_OK && bytes > 0 && in_range(be, src, bytes, "download"))
		BE_OK(be, clEnqueueReadBuffer(o->q, src.buf->mem, CL_TRUE, src.off * 4, bytes, dst, 0,
					      NULL, NULL));
	return sticky(be, err);
}

void tl_ocl_fill(tl_backend *be, tl_mem dst, float v, size_t n)
{
	if (tl_ocl_fits32(be, n, "fill"))
		RUN(be, K_FILL, n, 0, KM(be, dst), KU(n), KF(v));
}

void tl_ocl_copy2d(tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
		   size_t rows, size_t cols, int acc)
{
	if (tl_ocl_fits32(be, rows * cols, "copy2d"))
		RUN(be, K_COPY2D, rows * cols, 0, KM(be, dst), KL(dst_ld), KM(be, src), KL(src_ld),
		    KU(rows), KU(cols), KI(acc));
}

tl_status tl_ocl_sync(tl_backend *be, tl_err *err)
{
	if (be->status == TL_OK)
		BE_OK(be, clFinish(st_of(be)->q));
	return sticky(be, err);
}

void tl_ocl_destroy(tl_backend *be)
{
	if (!be)
		return;
	ocl_state *o = st_of(be);
	if (o) {
		if (o->q)
			clFinish(o->q);
		for (int s = 0; s < STAGE_SLOTS; s++) {
			if (o->stage[s].ev)
				clReleaseEvent(o->stage[s].ev);
			free(o->stage[s].p);
		}
		if (o->ws)
			clReleaseMemObject(o->ws);
		if (o->wd)
			clReleaseMemObject(o->wd);
		if (o->wu)
			clReleaseMemObject(o->wu);
		if (o->wm)
			clReleaseMemObject(o->wm);
		if (o->part)
			clReleaseMemObject(o->part);
		if (o->tmp)
			clReleaseMemObject(o->tmp);
		if (o->red)
			clReleaseMemObject(o->red);
		if (o->counts)
			clReleaseMemObject(o->counts);
		for (int i = 0; i < K_NKERNELS; i++)
			if (o->k[i])
				clReleaseKernel(o->k[i]);
		if (o->q)
			clReleaseCommandQueue(o->q);
		free(o);
		tl_ocl_shared_put();
	}
	free(be);
}

