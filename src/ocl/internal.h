/* internal.h - what the files of the OpenCL backend share (see ocl.h):
 * device.c (errors, devices, the shared context and program, kernel
 * launches, CLBlast GEMM, opening), memory.c (buffers, transfers, copies,
 * sync, closing), conv.c (convolution, Winograd, the conv workspace) and
 * ops.c (every other op).  Not for use outside src/ocl.
 *
 * Each op enqueues on one in-order queue and returns; the first failure
 * is kept in be->status (tl_backend_fail) and turns later ops into
 * no-ops.  Kernel arguments are set from small typed arrays (KI, KU,
 * KL, KF, KM below), so a launch reads like the kernel's signature. */
#ifndef TL_OCL_INTERNAL_H
#define TL_OCL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <clblast_c.h>
#include <pthread.h>

#include "ocl/ocl.h"

/* ---- errors (device.c) ---- */

/* On failure record "opencl: CALL: NAME (code) at file:line" as the
 * backend's sticky error; nonzero when rc is CL_SUCCESS. */
int tl_ocl_be_ok(tl_backend *be, int rc, const char *what, const char *file, int line);
#define BE_OK(be, call) tl_ocl_be_ok((be), (int)(call), #call, __FILE__, __LINE__)
/* The same into a tl_err, for the calls made before a backend exists. */
int tl_ocl_err_ok(tl_err *err, tl_status *st, int rc, const char *what, const char *file,
		  int line);
#define ERR_OK(err, st, call) tl_ocl_err_ok((err), (st), (int)(call), #call, __FILE__, __LINE__)
/* The name of an OpenCL or CLBlast status code ("CL_OUT_OF_RESOURCES"). */
const char *tl_ocl_err_name(int rc);
/* The tl_status an OpenCL error maps to (TL_ENOMEM for the out-of-memory ones). */
tl_status tl_ocl_err_status(int rc);

/* ---- the kernels and the process's program ---- */

enum {
	K_IM2COL, K_COL2IM, K_CONV_OUT, K_CONV_DY_WIDE, K_BIAS_ACT,
	K_MAXPOOL_FWD, K_MAXPOOL_BWD, K_GAP_FWD, K_GAP_BWD,
	K_FILL, K_COPY2D, K_RELU_MASK, K_BIAS_GRAD, K_COUNT_NONFINITE,
	K_DROPOUT_FWD, K_MUL_ACC, K_SOFTMAX_XENT, K_SGD, K_ADAM, K_SUM_SLICES,
	K_DWCONV_FWD, K_DWCONV_DX, K_DWCONV_DW, K_BN_STATS, K_BN_APPLY, K_ACT_MASK, K_BN_GRAD,
	K_BN_DX, K_LRN_FWD, K_LRN_BWD, K_AVGPOOL_FWD, K_AVGPOOL_BWD, K_BN_STATS_PART,
	K_BN_STATS_FINAL, K_BN_GRAD_PART, K_BN_GRAD_FINAL, K_WINO_WEIGHTS, K_WINO_INPUT,
	K_WINO_OUTPUT, K_WINO_DY, K_WINO_WGRAD_OUT, K_NKERNELS
};

/* Work-group size of the reductions (TL_RED_WG in the kernels). */
enum { RED_WG = 256, NONFINITE_GROUPS = 64, DEFAULT_WG = 256 };

/* The process's context and program, shared by every backend opened on
 * one device (device.c). */
extern struct tl_ocl_shared {
	pthread_mutex_t lock;
	int refs;
	cl_platform_id platform;
	cl_device_id device;
	cl_context ctx;
	cl_program prog;
} tl_ocl_shared;
/* Drop one backend's reference to it (the last releases it). */
void tl_ocl_shared_put(void);
/* The kernel names, indexed by K_*, for messages. */
extern const char *const tl_ocl_kernel_names[K_NKERNELS];

/* ---- the backend's state ---- */

struct tl_buf {
	cl_mem mem;
	size_t bytes;
};

enum { STAGE_SLOTS = 2 };
#define STAGE_MAX ((size_t)256 << 20) /* larger uploads are blocking writes */

typedef struct {
	cl_command_queue q;
	cl_kernel k[K_NKERNELS];
	size_t wg[K_NKERNELS];
	cl_mem ws;        /* conv workspace: col [K][nb*P], or Winograd's V [16][S][T] */
	size_t ws_bytes;
	cl_mem wd;        /* and wide [O][nb*P]: apart, so both start at offset 0 and
			   * CLBlast multiplies them in place, not from padded copies;
			   * Winograd's M [16][R][T] */
	size_t wd_bytes;
	cl_mem wu;        /* Winograd's transformed weights U [16][R][S] */
	size_t wu_bytes;
	cl_mem wm;        /* Winograd's weight-gradient sums Mw [16][O][C] */
	size_t wm_bytes;
	cl_mem part;      /* split-K slices of a weight gradient [S][O][K] */
	size_t part_bytes;
	cl_mem tmp;       /* CLBlast's SGEMM scratch (padded copies), ours so it is kept */
	size_t tmp_bytes;
	cl_mem red;       /* batch norm's scratch: dgamma/dbeta [2][c] when the caller
			   * wants none, then the chunks' partial sums [c][G][2] */
	size_t red_bytes;
	size_t ws_cap;    /* how much prepare_conv may reserve */
	cl_mem counts;    /* count_nonfinite's per-group counts; the stand-in for none */
	size_t allocated; /* bytes in live buffers */
	struct {
		void *p;
		size_t cap;
		cl_event ev; /* the write reading p; NULL when idle */
	} stage[STAGE_SLOTS];
	int stage_next;
} ocl_state;

static inline ocl_state *st_of(tl_backend *be)
{
	return be->impl;
}

/* Bytes held in the backend's scratch buffers (not counted in allocated). */
static inline size_t scratch_bytes(const ocl_state *o)
{
	return o->ws_bytes + o->wd_bytes + o->wu_bytes + o->wm_bytes + o->part_bytes + o->tmp_bytes +
	       o->red_bytes;
}

static inline cl_mem mem_of(tl_backend *be, tl_mem m)
{
	return m.buf ? m.buf->mem : st_of(be)->counts;
}


/* ---- kernel launches ---- */

typedef struct {
	size_t size;
	const void *val;
} karg;
#define KI(v) ((karg){sizeof(cl_int), &(cl_int){(cl_int)(v)}})
#define KU(v) ((karg){sizeof(cl_uint), &(cl_uint){(cl_uint)(v)}})
#define KL(v) ((karg){sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(v)}})
#define KF(v) ((karg){sizeof(cl_float), &(cl_float){(cl_float)(v)}})
#define KB(mem) ((karg){sizeof(cl_mem), &(cl_mem){(mem)}})
/* a tl_mem is two arguments: the buffer and its element offset */
#define KM(be, m) KB(mem_of((be), (m))), KL((m).off)

void tl_ocl_launch(tl_backend *be, int kid, size_t global, size_t local, const karg *a, int na,
		   const char *file, int line);
#define RUN(be, kid, global, local, ...)                                               \
	do {                                                                           \
		karg a_[] = {__VA_ARGS__};                                             \
		tl_ocl_launch((be), (kid), (global), (local), a_, (int)(sizeof a_ / sizeof a_[0]), \
		       __FILE__, __LINE__);                                            \
	} while (0)


/* Element counts a kernel indexes with 32-bit ints: nonzero when n fits,
 * else a sticky error naming what. */
int tl_ocl_fits32(tl_backend *be, size_t n, const char *what);
/* Bytes of scratch CLBlast's SGEMM needs for this call (0: none). */
size_t tl_ocl_gemm_tmp_bytes(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
			     size_t aoff, size_t lda, size_t boff, size_t ldb, size_t coff,
			     size_t ldc);
/* Row-major C[m][n] = alpha op(A) op(B) + beta C on (cl_mem, offset)
 * pairs, CLBlast's scratch from the backend's own buffer (device.c). */
void tl_ocl_gemm(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
		 cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb, float beta,
		 cl_mem c, size_t coff, size_t ldc);
/* As tl_ocl_gemm, batch times, each operand stepping by its stride. */
void tl_ocl_gemm_strided(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
			 float alpha, cl_mem a, size_t aoff, size_t lda, size_t astr, cl_mem b,
			 size_t boff, size_t ldb, size_t bstr, float beta, cl_mem c, size_t coff,
			 size_t ldc, size_t cstr, size_t batch);
/* db[o] = sum over n and p of dy[n][o][p] (dense: p = 1; conv.c). */
void tl_ocl_bias_grad(tl_backend *be, int n, int O, int P, tl_mem dy, tl_mem db);
/* Make buffer *mp (of *have bytes) at least `bytes` (conv.c). */
int tl_ocl_reserve(tl_backend *be, cl_mem *mp, size_t *have, size_t bytes);

/* ---- what tl_ocl_open (device.c) puts in the backend ---- */

/* memory.c */
tl_buf *tl_ocl_alloc(tl_backend *be, size_t bytes);
void tl_ocl_free(tl_backend *be, tl_buf *b);
void *tl_ocl_host(tl_backend *be, tl_mem m);
void tl_ocl_upload(tl_backend *be, tl_mem dst, const void *src, size_t bytes);
tl_status tl_ocl_download(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err);
tl_status tl_ocl_sync(tl_backend *be, tl_err *err);
void tl_ocl_destroy(tl_backend *be);
/* conv.c */
void tl_ocl_prepare_conv(tl_backend *be, const tl_conv_shape *s);
size_t tl_ocl_workspace_bytes(tl_backend *be);
/* Every op of the list (backend_ops.h) as tl_ocl_NAME: conv.c and ops.c
 * (fill and copy2d: memory.c); maxpool_infer has none (maxpool_fwd
 * serves), and tl_ocl_open fills the slots from the same list. */
#define TL_OP(ret, name, params) ret tl_ocl_##name params;
#include "backend_ops.h"
#undef TL_OP

#endif
