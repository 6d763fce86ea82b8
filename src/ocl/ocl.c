/* ocl.c - the OpenCL/CLBlast backend (see ocl.h): devices, the shared
 * context and program, memory, and every op of backend.h.
 *
 * Each op enqueues on one in-order queue and returns; the first failure
 * is kept in be->status (tl_backend_fail) and turns later ops into
 * no-ops.  Kernel arguments are set from small typed arrays (KI, KU,
 * KL, KF, KM below), so a launch reads like the kernel's signature. */
#define CL_TARGET_OPENCL_VERSION 120
#include "ocl/ocl.h"

#include <CL/cl.h>
#include <clblast_c.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl/kernels.h"

#define NO_PLATFORM_HINT                                                                  \
	"install the ICD loader (Debian: ocl-icd-libopencl1) and a vendor ICD such as "   \
	"pocl-opencl-icd or the GPU driver's (nvidia-opencl-icd), or point OCL_ICD_VENDORS " \
	"at a directory of .icd files"

/* ---- error names ---- */

static const char *err_name(int rc)
{
	switch (rc) {
#define E(x) \
	case x:  \
		return #x;
		E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
		E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
		E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY) E(CL_PROFILING_INFO_NOT_AVAILABLE)
		E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
		E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
		E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) E(CL_COMPILE_PROGRAM_FAILURE)
		E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE) E(CL_DEVICE_PARTITION_FAILED)
		E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE)
		E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
		E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
		E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
		E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY)
		E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE)
		E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL)
		E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
		E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION)
		E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
		E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
		E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
		E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
		E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
		E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
		/* CLBlast's own codes (its others are the OpenCL ones) */
		E(CLBlastNotImplemented) E(CLBlastInvalidMatrixA) E(CLBlastInvalidMatrixB)
		E(CLBlastInvalidMatrixC) E(CLBlastInvalidVectorX) E(CLBlastInvalidVectorY)
		E(CLBlastInvalidDimension) E(CLBlastInvalidLeadDimA) E(CLBlastInvalidLeadDimB)
		E(CLBlastInvalidLeadDimC) E(CLBlastInvalidIncrementX) E(CLBlastInvalidIncrementY)
		E(CLBlastInsufficientMemoryA) E(CLBlastInsufficientMemoryB)
		E(CLBlastInsufficientMemoryC) E(CLBlastInsufficientMemoryX)
		E(CLBlastInsufficientMemoryY) E(CLBlastInsufficientMemoryTemp)
		E(CLBlastInvalidBatchCount) E(CLBlastInvalidOverrideKernel)
		E(CLBlastMissingOverrideParameter) E(CLBlastInvalidLocalMemUsage)
		E(CLBlastNoHalfPrecision) E(CLBlastNoDoublePrecision) E(CLBlastInvalidVectorScalar)
		E(CLBlastInsufficientMemoryScalar) E(CLBlastDatabaseError) E(CLBlastUnknownError)
		E(CLBlastUnexpectedError)
#undef E
	case -1001:
		return "CL_PLATFORM_NOT_FOUND_KHR";
	default:
		return "unknown OpenCL error";
	}
}

/* "clEnqueueNDRangeKernel" out of the source text of the failing call. */
static void call_name(char *out, size_t cap, const char *what)
{
	size_t n = strcspn(what, "(");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, what, n);
	out[n] = 0;
}

static tl_status err_status(int rc)
{
	return rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES ||
			       rc == CL_OUT_OF_HOST_MEMORY || rc == CLBlastInsufficientMemoryTemp
		       ? TL_ENOMEM
		       : TL_EIO;
}

/* On failure record "opencl: CALL: NAME (code) at file:line" as the
 * backend's sticky error; nonzero when rc is CL_SUCCESS. */
static int be_ok(tl_backend *be, int rc, const char *what, const char *file, int line)
{
	if (rc == CL_SUCCESS)
		return 1;
	char fn[64];
	call_name(fn, sizeof fn, what);
	tl_backend_fail(be, err_status(rc), "opencl: %s: %s (%d) at %s:%d", fn, err_name(rc), rc,
			file, line);
	return 0;
}
#define BE_OK(be, call) be_ok((be), (int)(call), #call, __FILE__, __LINE__)

/* The same into a tl_err, for the calls made before a backend exists. */
static int err_ok(tl_err *err, tl_status *st, int rc, const char *what, const char *file,
		  int line)
{
	if (rc == CL_SUCCESS)
		return 1;
	char fn[64];
	call_name(fn, sizeof fn, what);
	*st = tl_seterr(err, err_status(rc), "opencl: %s: %s (%d) at %s:%d", fn, err_name(rc), rc,
			file, line);
	return 0;
}
#define ERR_OK(err, st, call) err_ok((err), (st), (int)(call), #call, __FILE__, __LINE__)

/* ---- platforms and devices ---- */

enum { MAX_PLATFORMS = 16, MAX_DEVICES = 16 };

/* All platforms; TL_EIO with the package hint when there are none. */
static tl_status platforms(cl_platform_id *ids, cl_uint *n, tl_err *err)
{
	cl_int rc = clGetPlatformIDs(MAX_PLATFORMS, ids, n);
	if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && *n == 0))
		return tl_seterr(err, TL_EIO, "opencl: no OpenCL platform: " NO_PLATFORM_HINT);
	if (rc != CL_SUCCESS)
		return tl_seterr(err, TL_EIO, "opencl: clGetPlatformIDs: %s (%d): " NO_PLATFORM_HINT,
				 err_name(rc), rc);
	if (*n > MAX_PLATFORMS)
		*n = MAX_PLATFORMS;
	return TL_OK;
}

static cl_uint devices(cl_platform_id p, cl_device_id *ids)
{
	cl_uint n = 0;
	if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &n) != CL_SUCCESS)
		return 0;
	return n > MAX_DEVICES ? MAX_DEVICES : n;
}

static void pinfo(cl_platform_id p, cl_platform_info what, char *out, size_t cap)
{
	out[0] = 0;
	if (clGetPlatformInfo(p, what, cap, out, NULL) != CL_SUCCESS)
		snprintf(out, cap, "?");
	out[cap - 1] = 0;
}

static void dinfo(cl_device_id d, cl_device_info what, char *out, size_t cap)
{
	out[0] = 0;
	if (clGetDeviceInfo(d, what, cap, out, NULL) != CL_SUCCESS)
		snprintf(out, cap, "?");
	out[cap - 1] = 0;
}

static cl_ulong dulong(cl_device_id d, cl_device_info what)
{
	cl_ulong v = 0;
	clGetDeviceInfo(d, what, sizeof v, &v, NULL);
	return v;
}

static int is_pocl(cl_platform_id p)
{
	char name[256];
	pinfo(p, CL_PLATFORM_NAME, name, sizeof name);
	return strstr(name, "Portable Computing Language") != NULL || strstr(name, "pocl") != NULL;
}

tl_status tl_ocl_find_gpu(int *platform, int *device)
{
	cl_platform_id ps[MAX_PLATFORMS];
	cl_uint np = 0;
	if (platforms(ps, &np, NULL) != TL_OK)
		return TL_EUSAGE;
	for (cl_uint i = 0; i < np; i++) {
		if (is_pocl(ps[i]))
			continue;
		cl_device_id ds[MAX_DEVICES];
		cl_uint nd = devices(ps[i], ds);
		for (cl_uint j = 0; j < nd; j++) {
			cl_device_type t = 0;
			clGetDeviceInfo(ds[j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
			if (t & CL_DEVICE_TYPE_GPU) {
				*platform = (int)i;
				*device = (int)j;
				return TL_OK;
			}
		}
	}
	return TL_EUSAGE;
}

tl_status tl_ocl_list(FILE *out, tl_err *err)
{
	cl_platform_id ps[MAX_PLATFORMS];
	cl_uint np = 0;
	TL_TRY(platforms(ps, &np, err));
	for (cl_uint i = 0; i < np; i++) {
		char name[256], vendor[256], version[256];
		pinfo(ps[i], CL_PLATFORM_NAME, name, sizeof name);
		pinfo(ps[i], CL_PLATFORM_VENDOR, vendor, sizeof vendor);
		pinfo(ps[i], CL_PLATFORM_VERSION, version, sizeof version);
		fprintf(out, "platform %u: %s (%s, %s)\n", i, name, vendor, version);
		cl_device_id ds[MAX_DEVICES];
		cl_uint nd = devices(ps[i], ds);
		for (cl_uint j = 0; j < nd; j++) {
			cl_device_type t = 0;
			cl_uint cu = 0;
			clGetDeviceInfo(ds[j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
			clGetDeviceInfo(ds[j], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
			dinfo(ds[j], CL_DEVICE_NAME, name, sizeof name);
			dinfo(ds[j], CL_DEVICE_VENDOR, vendor, sizeof vendor);
			dinfo(ds[j], CL_DEVICE_VERSION, version, sizeof version);
			fprintf(out,
				"  device %u:%u: %s (%s, %s), %s, %u compute units, %.0f MiB global "
				"memory, %.0f MiB largest buffer%s\n",
				i, j, name, vendor, version,
				t & CL_DEVICE_TYPE_GPU ? "GPU" : t & CL_DEVICE_TYPE_CPU ? "CPU" : "other",
				cu, dulong(ds[j], CL_DEVICE_GLOBAL_MEM_SIZE) / 1048576.0,
				dulong(ds[j], CL_DEVICE_MAX_MEM_ALLOC_SIZE) / 1048576.0,
				(t & CL_DEVICE_TYPE_GPU) && !is_pocl(ps[i]) ? "" : " (never chosen by auto)");
		}
		if (nd == 0)
			fprintf(out, "  (no devices)\n");
	}
	return TL_OK;
}

/* ---- the process's context and program ---- */

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
static const char *const kernel_names[K_NKERNELS] = {
	"im2col", "col2im", "conv_out", "conv_dy_wide", "bias_act",
	"maxpool_fwd", "maxpool_bwd", "gap_fwd", "gap_bwd",
	"fill", "copy2d", "relu_mask", "bias_grad", "count_nonfinite",
	"dropout_fwd", "mul_acc", "softmax_xent", "sgd", "adam", "sum_slices",
	"dwconv_fwd", "dwconv_dx", "dwconv_dw", "bn_stats", "bn_apply", "act_mask", "bn_grad",
	"bn_dx", "lrn_fwd", "lrn_bwd", "avgpool_fwd", "avgpool_bwd", "bn_stats_part",
	"bn_stats_final", "bn_grad_part", "bn_grad_final", "wino_weights", "wino_input",
	"wino_output", "wino_dy", "wino_wgrad_out",
};

/* Work-group size of the reductions (TL_RED_WG in the kernels). */
enum { RED_WG = 256, NONFINITE_GROUPS = 64, DEFAULT_WG = 256 };

static struct {
	pthread_mutex_t lock;
	int refs;
	cl_platform_id platform;
	cl_device_id device;
	cl_context ctx;
	cl_program prog;
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The .cl sources: embedded, or from $TL_OPENCL_DIR with the same #line. */
static tl_status load_sources(char **texts, int *count, tl_err *err)
{
	const char *dir = getenv("TL_OPENCL_DIR");
	int n = 0;
	for (; tl_ocl_sources[n].name; n++) {
		if (!dir || !*dir) {
			texts[n] = strdup(tl_ocl_sources[n].text);
		} else {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", dir, tl_ocl_sources[n].name);
			FILE *f = fopen(path, "rb");
			if (!f) {
				*count = n;
				return tl_seterr(err, TL_EIO,
						 "opencl: %s: cannot open (TL_OPENCL_DIR=%s)", path, dir);
			}
			fseek(f, 0, SEEK_END);
			long len = ftell(f);
			fseek(f, 0, SEEK_SET);
			size_t head = strlen(tl_ocl_sources[n].name) + 16;
			char *t = len >= 0 ? malloc(head + (size_t)len + 1) : NULL;
			size_t got = 0;
			if (t) {
				int h = snprintf(t, head, "#line 1 \"%s\"\n", tl_ocl_sources[n].name);
				got = fread(t + h, 1, (size_t)len, f);
				t[h + got] = 0;
			}
			fclose(f);
			if (t && got != (size_t)len) {
				free(t);
				*count = n;
				return tl_seterr(err, TL_EIO, "opencl: %s: short read", path);
			}
			texts[n] = t;
		}
		if (!texts[n]) {
			*count = n;
			return tl_seterr(err, TL_ENOMEM, "opencl: out of memory for the kernel sources");
		}
	}
	*count = n;
	return TL_OK;
}

static tl_status build_program(cl_context ctx, cl_device_id dev, cl_program *out, tl_err *err)
{
	char *texts[32] = {0};
	int n = 0;
	tl_status st = load_sources(texts, &n, err);
	cl_int rc = CL_SUCCESS;
	cl_program prog = NULL;
	if (st == TL_OK) {
		prog = clCreateProgramWithSource(ctx, (cl_uint)n, (const char **)texts, NULL, &rc);
		ERR_OK(err, &st, rc);
	}
	for (int i = 0; i < n; i++)
		free(texts[i]);
	if (st != TL_OK)
		return st;
	char opts[128];
	snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DTL_RED_WG=%d", RED_WG);
	rc = clBuildProgram(prog, 1, &dev, opts, NULL, NULL);
	if (rc != CL_SUCCESS) {
		char log[700] = "";
		size_t len = 0;
		clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &len);
		if (len == 0 || len >= sizeof log) {
			/* too long for the buffer: fetch it whole and keep the head */
			size_t full = 0;
			clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &full);
			char *big = full ? malloc(full + 1) : NULL;
			if (big && clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, full, big,
							 NULL) == CL_SUCCESS) {
				big[full] = 0;
				snprintf(log, sizeof log, "%s", big);
			}
			free(big);
		}
		log[sizeof log - 1] = 0;
		clReleaseProgram(prog);
		return tl_seterr(err, TL_EIO, "opencl: clBuildProgram: %s (%d): %s", err_name(rc), rc,
				 log);
	}
	*out = prog;
	return TL_OK;
}

/* Take a reference on the shared context and program for dev, creating
 * them on first use. */
static tl_status shared_get(cl_platform_id plat, cl_device_id dev, tl_err *err)
{
	tl_status st = TL_OK;
	pthread_mutex_lock(&shared.lock);
	if (shared.refs > 0 && shared.device != dev) {
		st = tl_seterr(err, TL_EUSAGE,
			       "opencl: one device per process (another device is open)");
	} else if (shared.refs == 0) {
		cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
		cl_int rc = CL_SUCCESS;
		cl_context ctx = clCreateContext(props, 1, &dev, NULL, NULL, &rc);
		if (ERR_OK(err, &st, rc)) {
			st = build_program(ctx, dev, &shared.prog, err);
			if (st != TL_OK)
				clReleaseContext(ctx);
		}
		if (st == TL_OK) {
			shared.platform = plat;
			shared.device = dev;
			shared.ctx = ctx;
		}
	}
	if (st == TL_OK)
		shared.refs++;
	pthread_mutex_unlock(&shared.lock);
	return st;
}

static void shared_put(void)
{
	pthread_mutex_lock(&shared.lock);
	if (shared.refs > 0 && --shared.refs == 0) {
		clReleaseProgram(shared.prog);
		clReleaseContext(shared.ctx);
		shared.prog = NULL;
		shared.ctx = NULL;
		shared.device = NULL;
	}
	pthread_mutex_unlock(&shared.lock);
}

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

static ocl_state *st_of(tl_backend *be)
{
	return be->impl;
}

/* Bytes held in the backend's scratch buffers (not counted in allocated). */
static size_t scratch_bytes(const ocl_state *o)
{
	return o->ws_bytes + o->wd_bytes + o->wu_bytes + o->wm_bytes + o->part_bytes + o->tmp_bytes +
	       o->red_bytes;
}

static cl_mem mem_of(tl_backend *be, tl_mem m)
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

static void launch(tl_backend *be, int kid, size_t global, size_t local, const karg *a, int na,
		   const char *file, int line)
{
	ocl_state *o = st_of(be);
	if (be->status != TL_OK || global == 0)
		return;
	cl_kernel k = o->k[kid];
	for (int i = 0; i < na; i++) {
		cl_int rc = clSetKernelArg(k, (cl_uint)i, a[i].size, a[i].val);
		if (rc != CL_SUCCESS) {
			tl_backend_fail(be, TL_EIO,
					"opencl: clSetKernelArg(%s, %d): %s (%d) at %s:%d",
					kernel_names[kid], i, err_name(rc), rc, file, line);
			return;
		}
	}
	if (!local)
		local = o->wg[kid];
	size_t g = (global + local - 1) / local * local;
	cl_int rc = clEnqueueNDRangeKernel(o->q, k, 1, NULL, &g, &local, 0, NULL, NULL);
	if (rc != CL_SUCCESS)
		tl_backend_fail(be, err_status(rc),
				"opencl: clEnqueueNDRangeKernel(%s): %s (%d) at %s:%d",
				kernel_names[kid], err_name(rc), rc, file, line);
}
#define RUN(be, kid, global, local, ...)                                               \
	do {                                                                           \
		karg a_[] = {__VA_ARGS__};                                             \
		launch((be), (kid), (global), (local), a_, (int)(sizeof a_ / sizeof a_[0]), \
		       __FILE__, __LINE__);                                            \
	} while (0)

/* Element counts a kernel indexes with 32-bit ints. */
static int fits32(tl_backend *be, size_t n, const char *what)
{
	if (n <= (size_t)UINT_MAX)
		return 1;
	tl_backend_fail(be, TL_EUSAGE, "opencl: %s: %zu elements is more than one kernel indexes (%u)",
			what, n, UINT_MAX);
	return 0;
}

static int reserve(tl_backend *be, cl_mem *mp, size_t *have, size_t bytes);

/* Bytes of scratch CLBlast's SGEMM needs for this call (0: none). */
static size_t gemm_tmp_bytes(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
			     size_t aoff, size_t lda, size_t boff, size_t ldb, size_t coff,
			     size_t ldc)
{
	size_t bytes = 0;
	if (!BE_OK(be, CLBlastSGemmTempBufferSize(
			       CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
			       tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, aoff, lda, boff,
			       ldb, coff, ldc, &st_of(be)->q, &bytes)))
		return 0;
	return bytes;
}

/* Row-major C[m][n] = alpha op(A) op(B) + beta C on (cl_mem, offset)
 * pairs.  CLBlast's padded path needs scratch memory, which it would
 * allocate and free at every call: it gets ours, grown to the largest
 * size asked for (prepare_conv asks ahead for the conv shapes). */
static void gemm(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
		 cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb, float beta,
		 cl_mem c, size_t coff, size_t ldc)
{
	if (be->status != TL_OK || m == 0 || n == 0)
		return;
	ocl_state *o = st_of(be);
	size_t tmp = gemm_tmp_bytes(be, ta, tb, m, n, k, aoff, lda, boff, ldb, coff, ldc);
	if (tmp == 0) {
		BE_OK(be, CLBlastSgemm(CLBlastLayoutRowMajor,
				       ta ? CLBlastTransposeYes : CLBlastTransposeNo,
				       tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a,
				       aoff, lda, b, boff, ldb, beta, c, coff, ldc, &o->q, NULL));
		return;
	}
	if (!reserve(be, &o->tmp, &o->tmp_bytes, tmp))
		return;
	BE_OK(be, CLBlastSgemmWithTempBuffer(
			  CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
			  tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda, b,
			  boff, ldb, beta, c, coff, ldc, &o->q, NULL, o->tmp));
}

/* As gemm, batch_count times, each operand stepping by its stride. */
static void gemm_strided(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
			 float alpha, cl_mem a, size_t aoff, size_t lda, size_t astr, cl_mem b,
			 size_t boff, size_t ldb, size_t bstr, float beta, cl_mem c, size_t coff,
			 size_t ldc, size_t cstr, size_t batch)
{
	if (be->status != TL_OK || m == 0 || n == 0 || batch == 0)
		return;
	ocl_state *o = st_of(be);
	BE_OK(be, CLBlastSgemmStridedBatched(
			  CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
			  tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda,
			  astr, b, boff, ldb, bstr, beta, c, coff, ldc, cstr, batch, &o->q, NULL));
}

/* ---- memory ---- */

static tl_buf *ocl_alloc(tl_backend *be, size_t bytes)
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
	b->mem = clCreateBuffer(shared.ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
	if (!BE_OK(be, rc)) {
		free(b);
		return NULL;
	}
	b->bytes = bytes;
	o->allocated += bytes;
	return b;
}

static void ocl_free(tl_backend *be, tl_buf *b)
{
	if (!b)
		return;
	st_of(be)->allocated -= b->bytes;
	clReleaseMemObject(b->mem); /* deferred by OpenCL until queued work is done */
	free(b);
}

static void *ocl_host(tl_backend *be, tl_mem m)
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

static void ocl_upload(tl_backend *be, tl_mem dst, const void *src, size_t bytes)
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

static tl_status ocl_download(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err)
{
	ocl_state *o = st_of(be);
	if (be->status == TL_OK && bytes > 0 && in_range(be, src, bytes, "download"))
		BE_OK(be, clEnqueueReadBuffer(o->q, src.buf->mem, CL_TRUE, src.off * 4, bytes, dst, 0,
					      NULL, NULL));
	return sticky(be, err);
}

static void ocl_fill(tl_backend *be, tl_mem dst, float v, size_t n)
{
	if (fits32(be, n, "fill"))
		RUN(be, K_FILL, n, 0, KM(be, dst), KU(n), KF(v));
}

static void ocl_copy2d(tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
		       size_t rows, size_t cols, int acc)
{
	if (fits32(be, rows * cols, "copy2d"))
		RUN(be, K_COPY2D, rows * cols, 0, KM(be, dst), KL(dst_ld), KM(be, src), KL(src_ld),
		    KU(rows), KU(cols), KI(acc));
}

static tl_status ocl_sync(tl_backend *be, tl_err *err)
{
	if (be->status == TL_OK)
		BE_OK(be, clFinish(st_of(be)->q));
	return sticky(be, err);
}

static void ocl_destroy(tl_backend *be)
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
		shared_put();
	}
	free(be);
}

/* ---- convolution ---- */

/* A 1x1 convolution that is a plain GEMM per image: no stride, no padding
 * on either side (oh, ow as the input). */
static int is_1x1(const tl_conv_shape *s)
{
	return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 &&
	       s->oh == s->h && s->ow == s->w;
}

/* Winograd F(2x2, 3x3) (opencl/winograd.cl) takes a 3x3 stride-1
 * convolution with at least WINO_MIN_CHANNELS input and output channels
 * and WINO_MIN_TILES output tiles in the batch: below those the GEMMs are
 * too small for the transforms to pay.  Odd maps compute outputs past the
 * edge; at most a quarter may be wasted (a 7x7 map wastes 15 of 64). */
#ifndef TL_OCL_WINO_MIN_CHANNELS
#define TL_OCL_WINO_MIN_CHANNELS 32
#endif
#ifndef TL_OCL_WINO_MIN_TILES
#define TL_OCL_WINO_MIN_TILES 1024
#endif

/* $TL_WINOGRAD=0 turns Winograd off here as on the CPU (for comparisons). */
static int wino_enabled(void)
{
	const char *e = getenv("TL_WINOGRAD");
	return !(e && e[0] == '0');
}

/* 2x2 output tiles of one oh x ow map. */
static size_t wino_tiles(int oh, int ow)
{
	return (size_t)((oh + 1) / 2) * (size_t)((ow + 1) / 2);
}

int tl_ocl_winograd(const tl_conv_shape *s, int dir)
{
	if (!wino_enabled() || s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1 ||
	    s->ph < 0 || s->ph > 2 || s->pw < 0 || s->pw > 2 ||
	    s->c < TL_OCL_WINO_MIN_CHANNELS || s->o < TL_OCL_WINO_MIN_CHANNELS)
		return 0;
	/* the input gradient's output is the input map */
	int oh = dir ? s->h : s->oh, ow = dir ? s->w : s->ow;
	size_t t = wino_tiles(oh, ow);
	return oh > 0 && ow > 0 && 3 * 4 * t <= 4 * (size_t)oh * ow &&
	       (size_t)s->n * t >= TL_OCL_WINO_MIN_TILES;
}

/* Workspace floats one image of s needs in ws and wd: col [K][P] and
 * wide [O][P] (im2col: a pass that does not take Winograd); Winograd's
 * V [16][c][t] and M [16][o][t] (forward; the weight gradient's V' and Y
 * are as large), and for the input gradient V [16][o][t'] and
 * M [16][c][t'] over the input's tiles t'.  0 for a 1x1 GEMM. */
static void ws_per_image(const tl_conv_shape *s, size_t *ws, size_t *wd)
{
	*ws = *wd = 0;
	if (is_1x1(s))
		return;
	size_t P = (size_t)s->oh * s->ow, c = (size_t)s->c, o = (size_t)s->o;
	if (!tl_ocl_winograd(s, 0) || !tl_ocl_winograd(s, 1)) {
		*ws = c * s->kh * s->kw * P;
		*wd = o * P;
	}
	if (tl_ocl_winograd(s, 0)) {
		size_t t = 16 * wino_tiles(s->oh, s->ow);
		*ws = *ws > c * t ? *ws : c * t;
		*wd = *wd > o * t ? *wd : o * t;
	}
	if (tl_ocl_winograd(s, 1)) {
		size_t t = 16 * wino_tiles(s->h, s->w);
		*ws = *ws > o * t ? *ws : o * t;
		*wd = *wd > c * t ? *wd : c * t;
	}
}

/* Make buffer *m (of *have bytes) at least `bytes`. */
static int reserve(tl_backend *be, cl_mem *mp, size_t *have, size_t bytes)
{
	if (bytes <= *have)
		return 1;
	if (bytes > be->max_alloc) {
		tl_backend_fail(be, TL_ENOMEM,
				"opencl: conv workspace: one image needs %zu bytes, more than the "
				"device's largest buffer (%zu bytes)",
				bytes, be->max_alloc);
		return 0;
	}
	cl_int rc = CL_SUCCESS;
	cl_mem m = clCreateBuffer(shared.ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
	if (!BE_OK(be, rc))
		return 0;
	if (*mp)
		clReleaseMemObject(*mp); /* freed once the queued work is done */
	*mp = m;
	*have = bytes;
	return 1;
}

/* Room for nb images of s in ws and wd (ws_per_image). */
static int ws_reserve(tl_backend *be, const tl_conv_shape *s, size_t nb)
{
	ocl_state *o = st_of(be);
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	return reserve(be, &o->ws, &o->ws_bytes, nb * ws * 4) &&
	       reserve(be, &o->wd, &o->wd_bytes, nb * wd * 4);
}

/* The weight gradient dW[O][K] = dy_wide[O][L] x col[K][L]^T of a chunk
 * has few outputs and a long reduction L (block1 at 224x224: 64 x 576
 * outputs, L = 50176 per image), which one SGEMM runs on a handful of
 * the GPU's cores.  It is cut into S slices of L, one strided-batched
 * SGEMM writes their partial products to part [S][O][K], and sum_slices
 * adds them in order: deterministic.  Slices: enough for about
 * SPLIT_OUTPUTS partial outputs, at least SPLIT_MIN_L long, and within
 * PART_MAX_BYTES; fewer than 4 is not worth it (0). */
#define SPLIT_OUTPUTS ((size_t)4 << 20)
#define SPLIT_MIN_L 512
#define PART_MAX_BYTES ((size_t)64 << 20)
static size_t split_slices(size_t outputs, size_t L, size_t part_bytes)
{
	size_t S = (SPLIT_OUTPUTS + outputs - 1) / outputs;
	if (S > L / SPLIT_MIN_L)
		S = L / SPLIT_MIN_L;
	if (S + 1 > part_bytes / 4 / outputs)
		S = part_bytes / 4 / outputs > 0 ? part_bytes / 4 / outputs - 1 : 0;
	return S >= 4 ? S : 0;
}

static void ocl_prepare_conv(tl_backend *be, const tl_conv_shape *s)
{
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	size_t per = (ws + wd) * 4;
	if (be->status != TL_OK || per == 0)
		return;
	size_t nb = st_of(be)->ws_cap / per;
	nb = nb < 1 ? 1 : nb > (size_t)s->n ? (size_t)s->n : nb;
	if (!ws_reserve(be, s, nb))
		return;
	/* the split-K slices of dW at that chunk */
	size_t outputs = (size_t)s->o * s->c * s->kh * s->kw;
	size_t L = nb * s->oh * s->ow;
	size_t S = split_slices(outputs, L, PART_MAX_BYTES);
	if (S)
		reserve(be, &st_of(be)->part, &st_of(be)->part_bytes, (S + 1) * outputs * 4);
	/* CLBlast's scratch for the forward, dW and dX SGEMMs of a chunk */
	size_t K = outputs / s->o, O = s->o, need = 0, t;
	t = gemm_tmp_bytes(be, 0, 0, O, L, K, 0, K, 0, L, 0, L);
	need = t > need ? t : need;
	t = S ? 0 : gemm_tmp_bytes(be, 0, 1, O, K, L, 0, L, 0, L, 0, K);
	need = t > need ? t : need;
	t = gemm_tmp_bytes(be, 1, 0, K, L, O, 0, K, 0, L, 0, L);
	need = t > need ? t : need;
	if (need)
		reserve(be, &st_of(be)->tmp, &st_of(be)->tmp_bytes, need);
	size_t wo = 16 * O * s->c; /* Winograd's U and Mw [16][O][C] */
	if (tl_ocl_winograd(s, 0) || tl_ocl_winograd(s, 1))
		reserve(be, &st_of(be)->wu, &st_of(be)->wu_bytes, wo * 4);
	if (tl_ocl_winograd(s, 0)) {
		/* the Winograd weight gradient's sums and their split-K slices */
		reserve(be, &st_of(be)->wm, &st_of(be)->wm_bytes, wo * 4);
		S = split_slices(wo, nb * wino_tiles(s->oh, s->ow), PART_MAX_BYTES);
		if (S)
			reserve(be, &st_of(be)->part, &st_of(be)->part_bytes, (S + 1) * wo * 4);
	}
}

static size_t ocl_workspace_bytes(tl_backend *be)
{
	return scratch_bytes(st_of(be));
}

/* Images per chunk: as many as the workspace holds (growing it to one
 * image when prepare_conv was not called for this shape). */
static int chunk_images(tl_backend *be, const tl_conv_shape *s)
{
	ocl_state *o = st_of(be);
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	size_t a = o->ws_bytes / (ws * 4), b = o->wd_bytes / (wd * 4);
	size_t nb = a < b ? a : b;
	if (nb == 0) {
		if (!ws_reserve(be, s, 1))
			return 0;
		nb = 1;
	}
	if (!fits32(be, nb * (ws > wd ? ws : wd), "conv workspace"))
		return 0;
	return nb < (size_t)s->n ? (int)nb : s->n;
}

/* $TL_OCL_CONVGEMM=1 sends forward convolutions with the same padding
 * after as before (what it takes) through CLBlast's Sconvgemm, which its
 * author calls experimental: off by default, there to be timed against
 * the other paths (bench/gpu.sh). */
static int convgemm_wanted(const tl_conv_shape *s)
{
	const char *e = getenv("TL_OCL_CONVGEMM");
	return e && e[0] == '1' && !is_1x1(s) && s->ph >= 0 && s->pw >= 0 &&
	       s->oh == tl_conv_out(s->h, s->kh, s->sh, s->ph) &&
	       s->ow == tl_conv_out(s->w, s->kw, s->sw, s->pw);
}

/* U [16][R][S] (the wu buffer) = winograd.cl's transform of the 3x3
 * weights w: flip 0 for w[R][S][3][3] (the forward), 1 for w[S][R][3][3]
 * rotated (the input gradient). */
static int wino_weights(tl_backend *be, tl_mem w, int R, int S, int flip)
{
	ocl_state *o = st_of(be);
	size_t rs = (size_t)R * S;
	if (!reserve(be, &o->wu, &o->wu_bytes, 16 * rs * 4))
		return 0;
	RUN(be, K_WINO_WEIGHTS, rs, 0, KM(be, w), KI(R), KI(S), KI(flip), KB(o->wu));
	return be->status == TL_OK;
}

/* The images n0 .. n0+cnt-1 of y[n][R][oh][ow] (acc ? += : =) the 3x3
 * stride-1 convolution of x[n][S][h][w] (zero padding ph, pw before) by
 * the weights in wu, + b[R] (b.buf), then ReLU (relu).  Needs
 * 16*S*cnt*t floats in ws and 16*R*cnt*t in wd, t = wino_tiles(oh, ow). */
static void wino_chunk(tl_backend *be, int S, int h, int w, int R, int ph, int pw, int oh, int ow,
		       int n0, int cnt, tl_mem x, tl_mem b, int relu, int acc, tl_mem y)
{
	ocl_state *o = st_of(be);
	int th = (oh + 1) / 2, tw = (ow + 1) / 2;
	size_t T = (size_t)cnt * th * tw;
	RUN(be, K_WINO_INPUT, (size_t)S * T, 0, KM(be, x), KI(S), KI(h), KI(w), KI(ph), KI(pw),
	    KI(th), KI(tw), KI(n0), KI(cnt), KI(0), KB(o->ws));
	/* M[xi][R][T] = U[xi][R][S] x V[xi][S][T], xi < 16 */
	gemm_strided(be, 0, 0, R, T, S, 1.0f, o->wu, 0, S, (size_t)R * S, o->ws, 0, T,
		     (size_t)S * T, 0.0f, o->wd, 0, T, (size_t)R * T, 16);
	RUN(be, K_WINO_OUTPUT, (size_t)R * T, 0, KB(o->wd), KI(R), KI(th), KI(tw), KI(oh), KI(ow),
	    KI(n0), KI(cnt), KM(be, b), KI(b.buf != NULL), KI(relu), KI(acc), KM(be, y));
}

/* y[n][O][P] += b[o] (b.buf), then ReLU (relu), in place: after a GEMM or
 * Sconvgemm that wrote y whole. */
static void bias_act(tl_backend *be, const tl_conv_shape *s, tl_mem b, int relu, tl_mem y)
{
	size_t P = (size_t)s->oh * s->ow, ny = (size_t)s->n * s->o * P;
	if (b.buf || relu)
		RUN(be, K_BIAS_ACT, ny, 0, KM(be, y), KU(ny), KI(s->o), KI(P), KM(be, b),
		    KI(b.buf != NULL), KI(relu));
}

static void ocl_conv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			 int relu, tl_mem y)
{
	ocl_state *o = st_of(be);
	size_t P = (size_t)s->oh * s->ow, K = (size_t)s->c * s->kh * s->kw;
	if (be->status != TL_OK || s->n == 0 || P == 0 || s->o == 0 ||
	    !fits32(be, (size_t)s->n * s->o * P, "conv output") ||
	    !fits32(be, (size_t)s->n * s->c * s->h * s->w, "conv input"))
		return;
	if (is_1x1(s)) {
		/* y_n[O][P] = W[O][C] x_n[C][P] for every image, W shared */
		gemm_strided(be, 0, 0, s->o, P, s->c, 1.0f, w.buf->mem, w.off, s->c, 0, x.buf->mem,
			     x.off, P, s->c * P, 0.0f, y.buf->mem, y.off, P, s->o * P, s->n);
		bias_act(be, s, b, relu, y);
	} else if (convgemm_wanted(s)) {
		/* y_n[O][P] = conv(x_n, W) in chunks of images (its im2col buffer
		 * is CLBlast's, as large as ours would be), then bias and ReLU */
		int nb = chunk_images(be, s);
		size_t xs = (size_t)s->c * s->h * s->w;
		for (int n0 = 0; nb && n0 < s->n && be->status == TL_OK; n0 += nb)
			BE_OK(be, CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, s->c, s->h,
						   s->w, s->kh, s->kw, s->ph, s->pw, s->sh, s->sw, 1,
						   1, s->o, s->n - n0 < nb ? s->n - n0 : nb,
						   x.buf->mem, x.off + n0 * xs, w.buf->mem, w.off,
						   y.buf->mem, y.off + n0 * s->o * P, &o->q, NULL));
		bias_act(be, s, b, relu, y);
	} else if (tl_ocl_winograd(s, 0)) {
		int nb = chunk_images(be, s);
		if (nb && wino_weights(be, w, s->o, s->c, 0))
			for (int n0 = 0; n0 < s->n && be->status == TL_OK; n0 += nb)
				wino_chunk(be, s->c, s->h, s->w, s->o, s->ph, s->pw, s->oh, s->ow, n0,
					   s->n - n0 < nb ? s->n - n0 : nb, x, b, relu, 0, y);
	} else {
		int nb = chunk_images(be, s);
		for (int n0 = 0; n0 < s->n && be->status == TL_OK; n0 += nb) {
			int cnt = s->n - n0 < nb ? s->n - n0 : nb;
			size_t ld = (size_t)cnt * P;
			RUN(be, K_IM2COL, K * ld, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w), KI(s->kh),
			    KI(s->kw), KI(s->sh), KI(s->sw), KI(s->ph), KI(s->pw), KI(s->oh), KI(s->ow),
			    KI(n0), KI(cnt), KB(o->ws), KL(0));
			gemm(be, 0, 0, s->o, ld, K, 1.0f, w.buf->mem, w.off, K, o->ws, 0, ld, 0.0f,
			     o->wd, 0, ld);
			RUN(be, K_CONV_OUT, (size_t)s->o * ld, 0, KB(o->wd), KL(0), KI(s->o), KI(P),
			    KI(n0), KI(cnt), KM(be, b), KI(b.buf != NULL), KI(relu), KM(be, y));
		}
	}
	if (be->status == TL_OK)
		BE_OK(be, clFlush(o->q));
}

/* db[o] = sum over n and p of dy[n][o][p] (dense: p = 1). */
static void bias_grad(tl_backend *be, int n, int O, int P, tl_mem dy, tl_mem db)
{
	RUN(be, K_BIAS_GRAD, (size_t)O * RED_WG, RED_WG, KM(be, dy), KI(n), KI(O), KI(P),
	    KM(be, db));
}

/* dW[O][K] (acc ? += : =) wide[O][L] x col[K][L]^T, both in the
 * workspace. */
static void weight_grad(tl_backend *be, size_t O, size_t K, size_t L, int acc, tl_mem dw)
{
	ocl_state *o = st_of(be);
	size_t outputs = O * K, S = split_slices(outputs, L, o->part_bytes);
	if (!S || !fits32(be, outputs, "conv weights")) {
		gemm(be, 0, 1, O, K, L, 1.0f, o->wd, 0, L, o->ws, 0, L, acc ? 1.0f : 0.0f,
		     dw.buf->mem, dw.off, K);
		return;
	}
	size_t len = L / S, rest = L - S * len;
	gemm_strided(be, 0, 1, O, K, len, 1.0f, o->wd, 0, L, len, o->ws, 0, L, len, 0.0f,
		     o->part, 0, K, outputs, S);
	if (rest)
		gemm(be, 0, 1, O, K, rest, 1.0f, o->wd, S * len, L, o->ws, S * len, L, 0.0f,
		     o->part, S * outputs, K);
	RUN(be, K_SUM_SLICES, outputs, 0, KB(o->part), KL(0), KU(outputs), KI(S + (rest > 0)),
	    KI(acc), KM(be, dw));
}

/* The images n0 .. n0+cnt-1's share of Winograd's weight-gradient sums
 * Mw[16][O][C] (wm; = for the first chunk, += after): Y from dy into wd,
 * V' from x into ws, then per xi Mw[xi] += Y[xi][O][T] x V'[xi][C][T]^T,
 * in split-K slices when the part buffer holds enough (as weight_grad). */
static void wino_wgrad_chunk(tl_backend *be, const tl_conv_shape *s, int n0, int cnt, tl_mem x,
			     tl_mem dy)
{
	ocl_state *o = st_of(be);
	size_t O = (size_t)s->o, C = (size_t)s->c, oc = O * C, wo = 16 * oc;
	if (n0 == 0 && !reserve(be, &o->wm, &o->wm_bytes, wo * 4))
		return;
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2;
	size_t T = (size_t)cnt * th * tw;
	RUN(be, K_WINO_INPUT, C * T, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w), KI(s->ph),
	    KI(s->pw), KI(th), KI(tw), KI(n0), KI(cnt), KI(1), KB(o->ws));
	RUN(be, K_WINO_DY, O * T, 0, KM(be, dy), KI(s->o), KI(s->oh), KI(s->ow), KI(th), KI(tw),
	    KI(n0), KI(cnt), KB(o->wd));
	size_t S = split_slices(wo, T, o->part_bytes);
	if (!S) {
		gemm_strided(be, 0, 1, O, C, T, 1.0f, o->wd, 0, T, O * T, o->ws, 0, T, C * T,
			     n0 ? 1.0f : 0.0f, o->wm, 0, C, oc, 16);
		return;
	}
	/* part[S'][16][O][C]: slice k of every xi, then their ordered sum */
	size_t len = T / S, rest = T - S * len;
	for (size_t xi = 0; xi < 16 && be->status == TL_OK; xi++) {
		gemm_strided(be, 0, 1, O, C, len, 1.0f, o->wd, xi * O * T, T, len, o->ws, xi * C * T,
			     T, len, 0.0f, o->part, xi * oc, C, wo, S);
		if (rest)
			gemm(be, 0, 1, O, C, rest, 1.0f, o->wd, xi * O * T + S * len, T, o->ws,
			     xi * C * T + S * len, T, 0.0f, o->part, S * wo + xi * oc, C);
	}
	RUN(be, K_SUM_SLICES, wo, 0, KB(o->part), KL(0), KU(wo), KI(S + (rest > 0)), KI(n0 > 0),
	    KB(o->wm), KL(0));
}

static void ocl_conv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			 int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	ocl_state *o = st_of(be);
	size_t P = (size_t)s->oh * s->ow, K = (size_t)s->c * s->kh * s->kw;
	size_t ny = (size_t)s->n * s->o * P;
	if (be->status != TL_OK || !fits32(be, ny, "conv output") ||
	    !fits32(be, (size_t)s->n * s->c * s->h * s->w, "conv input"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	if (db.buf) {
		if (ny)
			bias_grad(be, s->n, s->o, (int)P, dy, db);
		else
			ocl_fill(be, db, 0.0f, s->o);
	}
	if (ny == 0 || K == 0) {
		/* no output pixels: the gradients are zero (dx unchanged when acc) */
		if (dw.buf)
			ocl_fill(be, dw, 0.0f, (size_t)s->o * K);
		if (dx.buf && !acc_dx)
			ocl_fill(be, dx, 0.0f, (size_t)s->n * s->c * s->h * s->w);
		return;
	}
	if (is_1x1(s)) {
		/* dW[O][C] = sum_n dy_n[O][P] x_n[C][P]^T; dx_n[C][P] (+)= W^T dy_n */
		if (dw.buf)
			for (int i = 0; i < s->n; i++)
				gemm(be, 0, 1, s->o, s->c, P, 1.0f, dy.buf->mem, dy.off + i * s->o * P, P,
				     x.buf->mem, x.off + i * s->c * P, P, i ? 1.0f : 0.0f, dw.buf->mem,
				     dw.off, s->c);
		if (dx.buf)
			gemm_strided(be, 1, 0, s->c, P, s->o, 1.0f, w.buf->mem, w.off, s->c, 0,
				     dy.buf->mem, dy.off, P, s->o * P, acc_dx ? 1.0f : 0.0f,
				     dx.buf->mem, dx.off, P, s->c * P, s->n);
	} else if (dw.buf || dx.buf) {
		int nb = chunk_images(be, s);
		/* dx = dy convolved with the rotated, transposed weights, padding 2 - p */
		int wino_dx = dx.buf && nb && tl_ocl_winograd(s, 1) &&
			      wino_weights(be, w, s->c, s->o, 1);
		int wino_dw = dw.buf && nb && tl_ocl_winograd(s, 0);
		for (int n0 = 0; nb && n0 < s->n && be->status == TL_OK; n0 += nb) {
			int cnt = s->n - n0 < nb ? s->n - n0 : nb;
			size_t ld = (size_t)cnt * P;
			/* wd holds dy_wide [O][cnt*P] from here while wide */
			int wide = (dw.buf && !wino_dw) || (dx.buf && !wino_dx);
			if (wino_dw)
				wino_wgrad_chunk(be, s, n0, cnt, x, dy);
			if (wide)
				RUN(be, K_CONV_DY_WIDE, (size_t)s->o * ld, 0, KM(be, dy), KI(s->o),
				    KI(P), KI(n0), KI(cnt), KB(o->wd), KL(0));
			if (dw.buf && !wino_dw) {
				RUN(be, K_IM2COL, K * ld, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w),
				    KI(s->kh), KI(s->kw), KI(s->sh), KI(s->sw), KI(s->ph), KI(s->pw),
				    KI(s->oh), KI(s->ow), KI(n0), KI(cnt), KB(o->ws), KL(0));
				weight_grad(be, s->o, K, ld, n0 > 0, dw);
			}
			if (wino_dx) {
				tl_mem none = {NULL, 0};
				wino_chunk(be, s->o, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw, s->h,
					   s->w, n0, cnt, dy, none, 0, acc_dx, dx);
			} else if (dx.buf) {
				gemm(be, 1, 0, K, ld, s->o, 1.0f, w.buf->mem, w.off, K, o->wd, 0, ld,
				     0.0f, o->ws, 0, ld);
				RUN(be, K_COL2IM, (size_t)cnt * s->c * s->h * s->w, 0, KB(o->ws), KL(0),
				    KI(s->c), KI(s->h), KI(s->w), KI(s->kh), KI(s->kw), KI(s->sh),
				    KI(s->sw), KI(s->ph), KI(s->pw), KI(s->oh), KI(s->ow), KI(n0),
				    KI(cnt), KI(acc_dx), KM(be, dx));
			}
		}
		if (wino_dw)
			RUN(be, K_WINO_WGRAD_OUT, (size_t)s->o * s->c, 0, KB(o->wm), KI(s->o),
			    KI(s->c), KM(be, dw));
	}
	if (be->status == TL_OK)
		BE_OK(be, clFlush(o->q));
}

/* ---- pooling ---- */

static void ocl_maxpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
			    tl_mem argmax)
{
	size_t nc = (size_t)s->n * s->c, ny = nc * s->oh * s->ow;
	if (fits32(be, nc * s->h * s->w, "maxpool input"))
		RUN(be, K_MAXPOOL_FWD, ny, 0, KM(be, x), KI(nc), KI(s->h), KI(s->w), KI(s->k),
		    KI(s->s), KI(s->p), KI(s->oh), KI(s->ow), KM(be, y), KM(be, argmax));
}

static void ocl_maxpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
			    tl_mem dx, int acc_dx)
{
	size_t nc = (size_t)s->n * s->c, nx = nc * s->h * s->w;
	if (fits32(be, nx, "maxpool input"))
		RUN(be, K_MAXPOOL_BWD, nx, 0, KM(be, dy), KM(be, argmax), KI(nc), KI(s->h), KI(s->w),
		    KI(s->k), KI(s->s), KI(s->p), KI(s->oh), KI(s->ow), KI(acc_dx), KM(be, dx));
}

/* Adaptive average pool: pool.cl's avgpool_fwd/avgpool_bwd (k, s, p unused). */
static void ocl_avgpool_fwd(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y)
{
	size_t nc = (size_t)s->n * s->c, ny = nc * s->oh * s->ow;
	if (fits32(be, nc * s->h * s->w, "avgpool input") && fits32(be, ny, "avgpool output"))
		RUN(be, K_AVGPOOL_FWD, ny, 0, KM(be, x), KI(nc), KI(s->h), KI(s->w), KI(s->oh),
		    KI(s->ow), KM(be, y));
}

static void ocl_avgpool_bwd(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx,
			    int acc_dx)
{
	size_t nc = (size_t)s->n * s->c, nx = nc * s->h * s->w;
	if (fits32(be, nx, "avgpool input") && fits32(be, nc * s->oh * s->ow, "avgpool output"))
		RUN(be, K_AVGPOOL_BWD, nx, 0, KM(be, dy), KI(nc), KI(s->h), KI(s->w), KI(s->oh),
		    KI(s->ow), KI(acc_dx), KM(be, dx));
}

static void ocl_gap_fwd(tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y)
{
	size_t nc = (size_t)n * c;
	if (fits32(be, nc * hw, "gap input"))
		RUN(be, K_GAP_FWD, nc, 0, KM(be, x), KU(nc), KI(hw), KM(be, y));
}

static void ocl_gap_bwd(tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx)
{
	size_t total = (size_t)n * c * hw;
	if (fits32(be, total, "gap input"))
		RUN(be, K_GAP_BWD, total, 0, KM(be, dy), KU(total), KI(hw), KI(acc_dx), KM(be, dx));
}

/* ---- depthwise convolution, batch norm, LRN ---- */

/* The geometry arguments of dwconv.cl's kernels, after the first tensor. */
#define DW_GEOM(s)                                                                         \
	KI((s)->n), KI((s)->c), KI((s)->h), KI((s)->w), KI((s)->kh), KI((s)->kw), KI((s)->sh), \
		KI((s)->sw), KI((s)->ph), KI((s)->pw), KI((s)->oh), KI((s)->ow)

/* A depthwise shape has one output channel per input channel. */
static int dw_shape_ok(tl_backend *be, const tl_conv_shape *s)
{
	if (s->o == s->c)
		return 1;
	tl_backend_fail(be, TL_EUSAGE, "opencl: dwconv: %d output channels for %d input channels "
			"(expected equal)", s->o, s->c);
	return 0;
}

static void ocl_dwconv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			   int relu, tl_mem y)
{
	size_t ny = (size_t)s->n * s->c * s->oh * s->ow;
	if (be->status == TL_OK && dw_shape_ok(be, s) && fits32(be, ny, "dwconv output") &&
	    fits32(be, (size_t)s->n * s->c * s->h * s->w, "dwconv input"))
		RUN(be, K_DWCONV_FWD, ny, 0, KM(be, x), DW_GEOM(s), KM(be, w), KM(be, b),
		    KI(b.buf != NULL), KI(relu), KM(be, y));
}

static void ocl_dwconv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			   int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	size_t P = (size_t)s->oh * s->ow, ny = (size_t)s->n * s->c * P;
	size_t nx = (size_t)s->n * s->c * s->h * s->w, nw = (size_t)s->c * s->kh * s->kw;
	if (be->status != TL_OK || !dw_shape_ok(be, s) || !fits32(be, ny, "dwconv output") ||
	    !fits32(be, nx, "dwconv input") || !fits32(be, nw * RED_WG, "dwconv weights"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	/* the reductions write zero when there are no outputs (n*P = 0) */
	if (db.buf)
		bias_grad(be, s->n, s->c, (int)P, dy, db);
	if (dw.buf)
		RUN(be, K_DWCONV_DW, nw * RED_WG, RED_WG, KM(be, x), KM(be, dy), DW_GEOM(s),
		    KM(be, dw));
	if (dx.buf)
		RUN(be, K_DWCONV_DX, nx, 0, KM(be, dy), DW_GEOM(s), KM(be, w), KI(acc_dx),
		    KM(be, dx));
}

/* Batch norm's per-channel sums over m = n*hw values: one work-group per
 * channel (norm.cl's bn_stats, bn_grad), or, for channels of at least
 * 2*BN_CHUNK values, G = m/BN_CHUNK chunks (at most BN_MAX_CHUNKS) summed
 * by a work-group each and combined in order per channel (bn_*_part,
 * bn_*_final), so that a few channels of a large map still fill a GPU.
 * The partials live in the reserved scratch o->red after its [2][c]. */
#define BN_CHUNK 4096
#define BN_MAX_CHUNKS 64
static int bn_chunks(size_t m)
{
	size_t g = m / BN_CHUNK;
	return g < 2 ? 1 : g > BN_MAX_CHUNKS ? BN_MAX_CHUNKS : (int)g;
}

/* o->red as a tl_mem in *buf, at least (2 + 2*G) * c floats. */
static int bn_scratch(tl_backend *be, int c, int G, tl_buf *buf)
{
	ocl_state *o = st_of(be);
	if (!reserve(be, &o->red, &o->red_bytes, (size_t)c * (2 + 2 * (size_t)G) * 4))
		return 0;
	*buf = (tl_buf){o->red, o->red_bytes};
	return 1;
}

static void ocl_bn_fwd(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		       tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save,
		       int act, tl_mem y)
{
	size_t total = (size_t)n * c * hw;
	if (!fits32(be, total, "bn input") || !fits32(be, (size_t)c * RED_WG, "bn channels"))
		return;
	int G = training ? bn_chunks((size_t)n * hw) : 1;
	tl_buf red;
	if (G > 1 && fits32(be, (size_t)c * G * RED_WG, "bn chunks") && bn_scratch(be, c, G, &red)) {
		tl_mem part = {&red, 2 * (size_t)c};
		RUN(be, K_BN_STATS_PART, (size_t)c * G * RED_WG, RED_WG, KM(be, x), KI(n), KI(c),
		    KI(hw), KI(G), KM(be, part));
		RUN(be, K_BN_STATS_FINAL, (size_t)c, 0, KM(be, part), KI(n), KI(c), KI(hw), KI(G),
		    KF(eps), KF(mom), KM(be, rmean), KM(be, rvar), KM(be, save));
	} else {
		RUN(be, K_BN_STATS, (size_t)c * RED_WG, RED_WG, KM(be, x), KI(n), KI(c), KI(hw),
		    KF(eps), KF(mom), KI(training), KM(be, rmean), KM(be, rvar), KM(be, save));
	}
	RUN(be, K_BN_APPLY, total, 0, KM(be, x), KU(total), KI(c), KI(hw), KM(be, save),
	    KM(be, gamma), KI(gamma.buf != NULL), KM(be, beta), KI(beta.buf != NULL), KI(act),
	    KM(be, y));
}

static void ocl_bn_bwd(tl_backend *be, int n, int c, int hw, int training, tl_mem x, tl_mem gamma,
		       tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx, int acc_dx,
		       tl_mem dgamma, tl_mem dbeta)
{
	size_t total = (size_t)n * c * hw;
	if (be->status != TL_OK || !fits32(be, total, "bn input") ||
	    !fits32(be, (size_t)c * RED_WG, "bn channels"))
		return;
	if (act != TL_ACT_NONE)
		RUN(be, K_ACT_MASK, total, 0, KM(be, y), KM(be, dy), KU(total), KI(act));
	int sums = dgamma.buf || dbeta.buf || (dx.buf && training);
	if (!sums && !dx.buf)
		return;
	/* dgamma and dbeta go to the caller's tensors, or to the scratch
	 * (reserved once, regrown only for a wider layer) where it wants none
	 * but the training dx needs them */
	tl_mem g = dgamma, bt = dbeta;
	int G = sums ? bn_chunks((size_t)n * hw) : 1;
	if (G > 1 && !fits32(be, (size_t)c * G * RED_WG, "bn chunks"))
		return;
	tl_buf red;
	if (sums && (!g.buf || !bt.buf || G > 1)) {
		if (!bn_scratch(be, c, G, &red))
			return;
		if (!g.buf)
			g = (tl_mem){&red, 0};
		if (!bt.buf)
			bt = (tl_mem){&red, (size_t)c};
	}
	if (sums && G > 1) {
		tl_mem part = {&red, 2 * (size_t)c};
		RUN(be, K_BN_GRAD_PART, (size_t)c * G * RED_WG, RED_WG, KM(be, x), KM(be, dy), KI(n),
		    KI(c), KI(hw), KI(G), KM(be, save), KM(be, part));
		RUN(be, K_BN_GRAD_FINAL, (size_t)c, 0, KM(be, part), KI(c), KI(G), KM(be, g),
		    KM(be, bt));
	} else if (sums) {
		RUN(be, K_BN_GRAD, (size_t)c * RED_WG, RED_WG, KM(be, x), KM(be, dy), KI(n), KI(c),
		    KI(hw), KM(be, save), KM(be, g), KM(be, bt));
	}
	if (dx.buf)
		RUN(be, K_BN_DX, total, 0, KM(be, x), KM(be, dy), KU(total), KI(c), KI(hw),
		    KI(training), KM(be, save), KM(be, gamma), KI(gamma.buf != NULL), KM(be, g),
		    KM(be, bt), KI(acc_dx), KM(be, dx));
}

static void ocl_lrn_fwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			float kk, tl_mem x, tl_mem scale, tl_mem y)
{
	size_t total = (size_t)n * c * hw;
	if (fits32(be, total, "lrn input"))
		RUN(be, K_LRN_FWD, total, 0, KM(be, x), KU(total), KI(c), KI(hw), KI(size), KF(alpha),
		    KF(beta), KF(kk), KM(be, scale), KM(be, y));
}

static void ocl_lrn_bwd(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx)
{
	size_t total = (size_t)n * c * hw;
	if (fits32(be, total, "lrn input"))
		RUN(be, K_LRN_BWD, total, 0, KM(be, x), KM(be, y), KM(be, scale), KM(be, dy),
		    KU(total), KI(c), KI(hw), KI(size), KF(alpha), KF(beta), KI(acc_dx),
		    KM(be, dx));
}

/* ---- dense ---- */

static void ocl_dense_fwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
			  int relu, tl_mem y)
{
	size_t ny = (size_t)n * out;
	if (be->status != TL_OK || ny == 0 || !fits32(be, ny, "dense output"))
		return;
	gemm(be, 0, 1, n, out, in, 1.0f, x.buf->mem, x.off, in, w.buf->mem, w.off, in, 0.0f,
	     y.buf->mem, y.off, out);
	if (b.buf || relu)
		RUN(be, K_BIAS_ACT, ny, 0, KM(be, y), KU(ny), KI(out), KI(1), KM(be, b),
		    KI(b.buf != NULL), KI(relu));
}

static void ocl_dense_bwd(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
			  int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	size_t ny = (size_t)n * out;
	if (be->status != TL_OK || !fits32(be, ny, "dense output"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	if (dx.buf)
		gemm(be, 0, 0, n, in, out, 1.0f, dy.buf->mem, dy.off, out, w.buf->mem, w.off, in,
		     acc_dx ? 1.0f : 0.0f, dx.buf->mem, dx.off, in);
	if (dw.buf)
		gemm(be, 1, 0, out, in, n, 1.0f, dy.buf->mem, dy.off, out, x.buf->mem, x.off, in, 0.0f,
		     dw.buf->mem, dw.off, in);
	if (db.buf)
		bias_grad(be, n, out, 1, dy, db);
}

/* ---- elementwise, loss, optimizer ---- */

static void ocl_dropout_fwd(tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x,
			    tl_mem mask, tl_mem y)
{
	float scale = 1.0f / (1.0f - p);
	RUN(be, K_DROPOUT_FWD, len, 0, KL(len), KF(p), KF(scale), KL(seed), KM(be, x),
	    KM(be, mask), KM(be, y));
}

static void ocl_mul_acc(tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx, int acc_dx)
{
	RUN(be, K_MUL_ACC, len, 0, KL(len), KM(be, dy), KM(be, mask), KI(acc_dx), KM(be, dx));
}

static void ocl_softmax_xent(tl_backend *be, int n, int k, tl_mem logits, tl_mem labels,
			     float eps, float scale, tl_mem dlogits, tl_mem stats)
{
	RUN(be, K_SOFTMAX_XENT, (size_t)n, 0, KI(n), KI(k), KM(be, logits), KM(be, labels),
	    KF(eps), KF(scale), KI(dlogits.buf != NULL), KM(be, dlogits), KM(be, stats));
}

static void ocl_update(tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g,
		       tl_mem m, tl_mem v)
{
	if (!fits32(be, len, "update"))
		return;
	if (u->adam)
		RUN(be, K_ADAM, len, 0, KU(len), KF(u->lr / u->bc1), KF(u->beta1), KF(u->beta2),
		    KF(u->eps), KF(u->sqrt_bc2), KF(u->weight_decay), KM(be, p), KM(be, g),
		    KM(be, m), KM(be, v));
	else
		RUN(be, K_SGD, len, 0, KU(len), KF(u->lr), KF(u->momentum), KF(u->weight_decay),
		    KI(u->nesterov), KM(be, p), KM(be, g), KM(be, m));
}

static size_t ocl_count_nonfinite(tl_backend *be, tl_mem x, size_t n)
{
	ocl_state *o = st_of(be);
	if (n == 0 || !fits32(be, n, "count_nonfinite"))
		return 0;
	size_t groups = (n + RED_WG - 1) / RED_WG;
	if (groups > NONFINITE_GROUPS)
		groups = NONFINITE_GROUPS;
	RUN(be, K_COUNT_NONFINITE, groups * RED_WG, RED_WG, KM(be, x), KU(n), KB(o->counts));
	cl_uint counts[NONFINITE_GROUPS];
	if (be->status != TL_OK ||
	    !BE_OK(be, clEnqueueReadBuffer(o->q, o->counts, CL_TRUE, 0, groups * sizeof(cl_uint),
					   counts, 0, NULL, NULL)))
		return 0;
	size_t total = 0;
	for (size_t i = 0; i < groups; i++)
		total += counts[i];
	return total;
}

/* ---- opening ---- */

/* The workspace prepare_conv may reserve: TL_OCL_WORKSPACE_MB, else the
 * smallest of 1 GiB, an eighth of the device and its largest buffer. */
static size_t workspace_cap(const tl_backend *be)
{
	const char *env = getenv("TL_OCL_WORKSPACE_MB");
	size_t cap = (size_t)1 << 30;
	if (env && *env)
		cap = (size_t)strtoull(env, NULL, 10) << 20;
	else if (be->mem_total / 8 < cap)
		cap = be->mem_total / 8;
	return cap < be->max_alloc ? cap : be->max_alloc;
}

static tl_status pick(int platform, int device, cl_platform_id *pp, cl_device_id *dp,
		      tl_err *err)
{
	cl_platform_id ps[MAX_PLATFORMS];
	cl_uint np = 0;
	TL_TRY(platforms(ps, &np, err));
	if (platform < 0) {
		if (tl_ocl_find_gpu(&platform, &device) != TL_OK)
			return tl_seterr(err, TL_EUSAGE,
					 "opencl: no OpenCL GPU (PoCL and CPU devices are never "
					 "picked automatically: name one as opencl:PLATFORM:DEVICE, "
					 "see --list-devices)");
	}
	if ((cl_uint)platform >= np)
		return tl_seterr(err, TL_EUSAGE, "opencl: no platform %d (expected 0 to %u)",
				 platform, np - 1);
	cl_device_id ds[MAX_DEVICES];
	cl_uint nd = devices(ps[platform], ds);
	if (device < 0)
		device = 0;
	if ((cl_uint)device >= nd)
		return tl_seterr(err, TL_EUSAGE,
				 "opencl: platform %d has no device %d (it has %u)", platform, device,
				 nd);
	*pp = ps[platform];
	*dp = ds[device];
	return TL_OK;
}

tl_status tl_ocl_open(int platform, int device, tl_backend **out, tl_err *err)
{
	*out = NULL;
	cl_platform_id plat = NULL;
	cl_device_id dev = NULL;
	TL_TRY(pick(platform, device, &plat, &dev, err));
	TL_TRY(shared_get(plat, dev, err));

	tl_backend *be = calloc(1, sizeof *be);
	ocl_state *o = calloc(1, sizeof *o);
	if (!be || !o) {
		free(be);
		free(o);
		shared_put();
		return tl_seterr(err, TL_ENOMEM, "opencl: out of memory");
	}
	be->impl = o;
	be->kind = TL_BE_OPENCL;
	char dname[96], pname[64];
	dinfo(dev, CL_DEVICE_NAME, dname, sizeof dname);
	pinfo(plat, CL_PLATFORM_NAME, pname, sizeof pname);
	snprintf(be->name, sizeof be->name, "opencl: %s (%s)", dname, pname);
	be->mem_total = dulong(dev, CL_DEVICE_GLOBAL_MEM_SIZE);
	be->max_alloc = dulong(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
	o->ws_cap = workspace_cap(be);

	be->alloc = ocl_alloc;
	be->free = ocl_free;
	be->host = ocl_host;
	be->upload = ocl_upload;
	be->download = ocl_download;
	be->fill = ocl_fill;
	be->copy2d = ocl_copy2d;
	be->sync = ocl_sync;
	be->destroy = ocl_destroy;
	be->prepare_conv = ocl_prepare_conv;
	be->workspace_bytes = ocl_workspace_bytes;
	be->conv_fwd = ocl_conv_fwd;
	be->conv_bwd = ocl_conv_bwd;
	be->maxpool_fwd = ocl_maxpool_fwd;
	be->maxpool_bwd = ocl_maxpool_bwd;
	be->gap_fwd = ocl_gap_fwd;
	be->gap_bwd = ocl_gap_bwd;
	be->dense_fwd = ocl_dense_fwd;
	be->dense_bwd = ocl_dense_bwd;
	be->dropout_fwd = ocl_dropout_fwd;
	be->mul_acc = ocl_mul_acc;
	be->softmax_xent = ocl_softmax_xent;
	be->update = ocl_update;
	be->dwconv_fwd = ocl_dwconv_fwd;
	be->dwconv_bwd = ocl_dwconv_bwd;
	be->bn_fwd = ocl_bn_fwd;
	be->bn_bwd = ocl_bn_bwd;
	be->lrn_fwd = ocl_lrn_fwd;
	be->lrn_bwd = ocl_lrn_bwd;
	be->avgpool_fwd = ocl_avgpool_fwd;
	be->avgpool_bwd = ocl_avgpool_bwd;
	be->count_nonfinite = ocl_count_nonfinite;

	tl_status st = TL_OK;
	cl_int rc = CL_SUCCESS;
	o->q = clCreateCommandQueue(shared.ctx, dev, 0, &rc);
	if (ERR_OK(err, &st, rc)) {
		o->counts = clCreateBuffer(shared.ctx, CL_MEM_READ_WRITE,
					   NONFINITE_GROUPS * sizeof(cl_uint), NULL, &rc);
		ERR_OK(err, &st, rc);
	}
	for (int i = 0; i < K_NKERNELS && st == TL_OK; i++) {
		o->k[i] = clCreateKernel(shared.prog, kernel_names[i], &rc);
		if (!ERR_OK(err, &st, rc))
			break;
		size_t wg = 0;
		if (!ERR_OK(err, &st,
			    clGetKernelWorkGroupInfo(o->k[i], dev, CL_KERNEL_WORK_GROUP_SIZE,
						     sizeof wg, &wg, NULL)))
			break;
		o->wg[i] = wg < DEFAULT_WG ? wg : DEFAULT_WG;
		if ((i == K_BIAS_GRAD || i == K_COUNT_NONFINITE || i == K_DWCONV_DW ||
		     i == K_BN_STATS || i == K_BN_GRAD || i == K_BN_STATS_PART ||
		     i == K_BN_GRAD_PART) &&
		    wg < RED_WG)
			st = tl_seterr(err, TL_EIO,
				       "opencl: kernel %s runs at most %zu work-items per group on "
				       "%s (it needs %d)",
				       kernel_names[i], wg, dname, RED_WG);
	}
	if (st != TL_OK) {
		ocl_destroy(be);
		return st;
	}
	*out = be;
	return TL_OK;
}
