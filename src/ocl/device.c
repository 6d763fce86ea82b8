/* device.c - the OpenCL backend's devices and program (see ocl.h,
 * internal.h): error names, platforms and devices, the process's shared
 * context and program (built once from the embedded sources), kernel
 * launches, CLBlast's SGEMM, and opening a backend. */
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl/internal.h"
#include "ocl/kernels.h"

#define NO_PLATFORM_HINT                                                                  \
	"install the ICD loader (Debian: ocl-icd-libopencl1) and a vendor ICD such as "   \
	"pocl-opencl-icd or the GPU driver's (nvidia-opencl-icd), or point OCL_ICD_VENDORS " \
	"at a directory of .icd files"

/* ---- error names ---- */

const char *tl_ocl_err_name(int rc)
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

tl_status tl_ocl_err_status(int rc)
{
	return rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES ||
			       rc == CL_OUT_OF_HOST_MEMORY || rc == CLBlastInsufficientMemoryTemp
		       ? TL_ENOMEM
		       : TL_EIO;
}

/* On failure record "opencl: CALL: NAME (code) at file:line" as the
 * backend's sticky error; nonzero when rc is CL_SUCCESS. */
int tl_ocl_be_ok(tl_backend *be, int rc, const char *what, const char *file, int line)
{
	if (rc == CL_SUCCESS)
		return 1;
	char fn[64];
	call_name(fn, sizeof fn, what);
	tl_backend_fail(be, tl_ocl_err_status(rc), "opencl: %s: %s (%d) at %s:%d", fn, tl_ocl_err_name(rc), rc,
			file, line);
	return 0;
}

/* The same into a tl_err, for the calls made before a backend exists. */
int tl_ocl_err_ok(tl_err *err, tl_status *st, int rc, const char *what, const char *file,
	      int line)
{
	if (rc == CL_SUCCESS)
		return 1;
	char fn[64];
	call_name(fn, sizeof fn, what);
	*st = tl_seterr(err, tl_ocl_err_status(rc), "opencl: %s: %s (%d) at %s:%d", fn, tl_ocl_err_name(rc), rc,
			file, line);
	return 0;
}

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
				 tl_ocl_err_name(rc), rc);
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

const char *const tl_ocl_kernel_names[K_NKERNELS] = {
	"im2col", "col2im", "conv_out", "conv_dy_wide", "bias_act",
	"maxpool_fwd", "maxpool_bwd", "gap_fwd", "gap_bwd",
	"fill", "copy2d", "relu_mask", "bias_grad", "count_nonfinite",
	"dropout_fwd", "mul_acc", "softmax_xent", "sgd", "adam", "sum_slices",
	"dwconv_fwd", "dwconv_dx", "dwconv_dw", "bn_stats", "bn_apply", "act_mask", "bn_grad",
	"bn_dx", "lrn_fwd", "lrn_bwd", "avgpool_fwd", "avgpool_bwd", "bn_stats_part",
	"bn_stats_final", "bn_grad_part", "bn_grad_final", "wino_weights", "wino_input",
	"wino_output", "wino_dy", "wino_wgrad_out",
};

struct tl_ocl_shared tl_ocl_shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
		return tl_seterr(err, TL_EIO, "opencl: clBuildProgram: %s (%d): %s", tl_ocl_err_name(rc), rc,
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
	pthread_mutex_lock(&tl_ocl_shared.lock);
	if (tl_ocl_shared.refs > 0 && tl_ocl_shared.device != dev) {
		st = tl_seterr(err, TL_EUSAGE,
			       "opencl: one device per process (another device is open)");
	} else if (tl_ocl_shared.refs == 0) {
		cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
		cl_int rc = CL_SUCCESS;
		cl_context ctx = clCreateContext(props, 1, &dev, NULL, NULL, &rc);
		if (ERR_OK(err, &st, rc)) {
			st = build_program(ctx, dev, &tl_ocl_shared.prog, err);
			if (st != TL_OK)
				clReleaseContext(ctx);
		}
		if (st == TL_OK) {
			tl_ocl_shared.platform = plat;
			tl_ocl_shared.device = dev;
			tl_ocl_shared.ctx = ctx;
		}
	}
	if (st == TL_OK)
		tl_ocl_shared.refs++;
	pthread_mutex_unlock(&tl_ocl_shared.lock);
	return st;
}

void tl_ocl_shared_put(void)
{
	pthread_mutex_lock(&tl_ocl_shared.lock);
	if (tl_ocl_shared.refs > 0 && --tl_ocl_shared.refs == 0) {
		clReleaseProgram(tl_ocl_shared.prog);
		clReleaseContext(tl_ocl_shared.ctx);
		tl_ocl_shared.prog = NULL;
		tl_ocl_shared.ctx = NULL;
		tl_ocl_shared.device = NULL;
	}
	pthread_mutex_unlock(&tl_ocl_shared.lock);
}

/* ---- kernel launches ---- */

void tl_ocl_launch(tl_backend *be, int kid, size_t global, size_t local, const karg *a, int na,
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
					tl_ocl_kernel_names[kid], i, tl_ocl_err_name(rc), rc, file, line);
			return;
		}
	}
	if (!local)
		local = o->wg[kid];
	size_t g = (global + local - 1) / local * local;
	cl_int rc = clEnqueueNDRangeKernel(o->q, k, 1, NULL, &g, &local, 0, NULL, NULL);
	if (rc != CL_SUCCESS)
		tl_backend_fail(be, tl_ocl_err_status(rc),
				"opencl: clEnqueueNDRangeKernel(%s): %s (%d) at %s:%d",
				tl_ocl_kernel_names[kid], tl_ocl_err_name(rc), rc, file, line);
}

/* Element counts a kernel indexes with 32-bit ints. */
int tl_ocl_fits32(tl_backend *be, size_t n, const char *what)
{
	if (n <= (size_t)UINT_MAX)
		return 1;
	tl_backend_fail(be, TL_EUSAGE, "opencl: %s: %zu elements is more than one kernel indexes (%u)",
			what, n, UINT_MAX);
	return 0;
}

/* Bytes of scratch CLBlast's SGEMM needs for this call (0: none). */
size_t tl_ocl_gemm_tmp_bytes(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
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
void tl_ocl_gemm(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
	     cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb, float beta,
	     cl_mem c, size_t coff, size_t ldc)
{
	if (be->status != TL_OK || m == 0 || n == 0)
		return;
	ocl_state *o = st_of(be);
	size_t tmp = tl_ocl_gemm_tmp_bytes(be, ta, tb, m, n, k, aoff, lda, boff, ldb, coff, ldc);
	if (tmp == 0) {
		BE_OK(be, CLBlastSgemm(CLBlastLayoutRowMajor,
				       ta ? CLBlastTransposeYes : CLBlastTransposeNo,
				       tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a,
				       aoff, lda, b, boff, ldb, beta, c, coff, ldc, &o->q, NULL));
		return;
	}
	if (!tl_ocl_reserve(be, &o->tmp, &o->tmp_bytes, tmp))
		return;
	BE_OK(be, CLBlastSgemmWithTempBuffer(
			  CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
			  tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda, b,
			  boff, ldb, beta, c, coff, ldc, &o->q, NULL, o->tmp));
}

/* As gemm, batch_count times, each operand stepping by its stride. */
void tl_ocl_gemm_strided(tl_backend *be, int ta, int tb, size_t m, size_t n, size_t k,
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
		tl_ocl_shared_put();
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

	be->alloc = tl_ocl_alloc;
	be->free = tl_ocl_free;
	be->host = tl_ocl_host;
	be->upload = tl_ocl_upload;
	be->download = tl_ocl_download;
	be->sync = tl_ocl_sync;
	be->destroy = tl_ocl_destroy;
	be->prepare_conv = tl_ocl_prepare_conv;
	be->workspace_bytes = tl_ocl_workspace_bytes;
	/* every op of the list: tl_ocl_NAME; maxpool_infer has none (NULL:
	 * maxpool_fwd serves) */
#define tl_ocl_maxpool_infer NULL
#define TL_OP(ret, name, params) be->name = tl_ocl_##name;
#include "backend_ops.h"
#undef TL_OP
#undef tl_ocl_maxpool_infer

	tl_status st = TL_OK;
	cl_int rc = CL_SUCCESS;
	o->q = clCreateCommandQueue(tl_ocl_shared.ctx, dev, 0, &rc);
	if (ERR_OK(err, &st, rc)) {
		o->counts = clCreateBuffer(tl_ocl_shared.ctx, CL_MEM_READ_WRITE,
					   NONFINITE_GROUPS * sizeof(cl_uint), NULL, &rc);
		ERR_OK(err, &st, rc);
	}
	for (int i = 0; i < K_NKERNELS && st == TL_OK; i++) {
		o->k[i] = clCreateKernel(tl_ocl_shared.prog, tl_ocl_kernel_names[i], &rc);
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
				       tl_ocl_kernel_names[i], wg, dname, RED_WG);
	}
	if (st != TL_OK) {
		tl_ocl_destroy(be);
		return st;
	}
	*out = be;
	return TL_OK;
}

