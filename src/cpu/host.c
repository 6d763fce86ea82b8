/* host.c - the CPU backends as tl_backend (see host.h): host memory and
 * the dispatch of the op list to the reference and fast kernels. */
#include "cpu/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/ops.h"

/* ---- memory ---- */

static tl_buf *h_alloc(tl_backend *be, size_t bytes)
{
	if (be->status != TL_OK)
		return NULL;
	tl_buf *b = malloc(sizeof *b);
	void *p = b ? aligned_alloc(64, tl_align64(bytes ? bytes : 64)) : NULL;
	if (!p) {
		free(b);
		tl_backend_fail(be, TL_ENOMEM, "cpu: out of memory for a buffer of %zu bytes", bytes);
		return NULL;
	}
	b->p = p;
	b->bytes = bytes;
	return b;
}

static void h_free(tl_backend *be, tl_buf *b)
{
	if (b)
		free(b->p);
	free(b);
}

static void *h_host(tl_backend *be, tl_mem m)
{
	return tl_cpu_f(m);
}

static void h_upload(tl_backend *be, tl_mem dst, const void *src, size_t bytes)
{
	if (be->status == TL_OK && bytes)
		memcpy(tl_cpu_f(dst), src, bytes);
}

static tl_status h_download(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err)
{
	if (be->status != TL_OK)
		return tl_seterr(err, be->status, "%s", be->err.msg);
	if (bytes)
		memcpy(dst, tl_cpu_f(src), bytes);
	return TL_OK;
}

static tl_status h_sync(tl_backend *be, tl_err *err)
{
	if (be->status != TL_OK)
		return tl_seterr(err, be->status, "%s", be->err.msg);
	return TL_OK;
}

static void h_destroy(tl_backend *be)
{
	if (!be)
		return;
	free(be);
}

static void h_prepare_conv(tl_backend *be, const tl_conv_shape *s)
{
}

static size_t h_workspace_bytes(tl_backend *be)
{
	return 0;
}

tl_status tl_cpu_open(int reference, tl_pool *pool, tl_backend **out, tl_err *err)
{
	tl_backend *be = calloc(1, sizeof *be);
	if (!be)
		return tl_seterr(err, TL_ENOMEM, "cpu backend: out of memory");
	be->kind = reference ? TL_BE_CPU_REFERENCE : TL_BE_CPU_FAST;
	be->pool = reference ? NULL : pool;
	int threads = be->pool ? tl_pool_size(be->pool) : 1;
	if (reference)
		snprintf(be->name, sizeof be->name, "cpu-reference (scalar, 1 thread)");
	else
		snprintf(be->name, sizeof be->name, "cpu (%s, %d thread%s)",
			 tl_cpu_level_name(tl_cpu_detect()), threads, threads == 1 ? "" : "s");
	be->alloc = h_alloc;
	be->free = h_free;
	be->host = h_host;
	be->upload = h_upload;
	be->download = h_download;
	be->sync = h_sync;
	be->destroy = h_destroy;
	be->prepare_conv = h_prepare_conv;
	be->workspace_bytes = h_workspace_bytes;
	/* every op from the list: the reference, then the fast path's own */
#define TL_OP(ret, name, params) be->name = tl_cpu_ref_##name;
#include "backend_ops.h"
#undef TL_OP
	if (!reference)
		tl_cpu_fast_init(be);
	*out = be;
	return TL_OK;
}
