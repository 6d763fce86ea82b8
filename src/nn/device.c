/* device.c - the backend factory (see device.h). */
#include "nn/device.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpu/gemm.h"
#include "cpu/host.h"
#ifdef TL_HAVE_OPENCL
#include "ocl/ocl.h"
#endif

/* Parse "opencl[:P[:D]]": 1 with *p, *d (-1 when absent), 0 if not that form. */
static int parse_opencl(const char *spec, int *p, int *d)
{
	*p = *d = -1;
	if (strncmp(spec, "opencl", 6) != 0)
		return 0;
	const char *s = spec + 6;
	if (!*s)
		return 1;
	char *end;
	if (*s != ':' || s[1] < '0' || s[1] > '9')
		return 0;
	long v = strtol(s + 1, &end, 10);
	if (v > 64)
		return 0;
	*p = (int)v;
	if (!*end)
		return 1;
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return 0;
	v = strtol(end + 1, &end, 10);
	if (*end || v > 64)
		return 0;
	*d = (int)v;
	return 1;
}

int tl_device_spec_ok(const char *spec)
{
	int p, d;
	if (strcmp(spec, "cpu") == 0 || strcmp(spec, "cpu-reference") == 0 ||
	    strcmp(spec, "auto") == 0 || parse_opencl(spec, &p, &d))
		return 0;
	return -1;
}

static tl_status open_opencl(tl_device *d, int p, int dev, tl_err *err)
{
#ifdef TL_HAVE_OPENCL
	TL_TRY(tl_ocl_open(p, dev, &d->be, err));
	d->be->pool = d->pool; /* host-side helpers (staging copies) may use it */
	return TL_OK;
#else
	(void)d, (void)p, (void)dev;
	return tl_seterr(err, TL_EUSAGE,
			 "--device opencl: this build has no OpenCL backend (install "
			 "ocl-icd-opencl-dev opencl-headers libclblast-dev and rebuild)");
#endif
}

tl_status tl_device_open(tl_device *d, const char *spec, int threads, tl_err *err)
{
	memset(d, 0, sizeof *d);
	int p, dev;
	if (tl_device_spec_ok(spec) != 0)
		return tl_seterr(err, TL_EUSAGE,
				 "--device %s: expected cpu, cpu-reference, opencl[:P[:D]] or auto",
				 spec);
	TL_TRY(tl_pool_new(&d->pool, threads, err));
	tl_status st;
	if (parse_opencl(spec, &p, &dev)) {
		st = open_opencl(d, p, dev, err);
	} else if (strcmp(spec, "auto") == 0) {
#ifdef TL_HAVE_OPENCL
		if (tl_ocl_find_gpu(&p, &dev) == TL_OK && open_opencl(d, p, dev, err) == TL_OK)
			return TL_OK;
#endif
		st = tl_cpu_open(0, d->pool, &d->be, err);
		d->fast_cpu = st == TL_OK;
	} else {
		int ref = strcmp(spec, "cpu-reference") == 0;
		st = tl_cpu_open(ref, d->pool, &d->be, err);
		d->fast_cpu = st == TL_OK && !ref;
	}
	if (st != TL_OK) {
		tl_pool_free(d->pool);
		memset(d, 0, sizeof *d);
	}
	return st;
}

tl_status tl_device_set_precision(tl_device *d, const char *precision, tl_err *err)
{
	int want = strcmp(precision, "bf16") == 0, any = strcmp(precision, "auto") == 0;
	if (!want && !any && strcmp(precision, "fp32") != 0)
		return tl_seterr(err, TL_EUSAGE, "--precision %s: expected fp32, bf16 or auto",
				 precision);
	int can = d->fast_cpu && tl_cpu_bf16();
	if (want && !can)
		return tl_seterr(err, TL_EUSAGE,
				 "--precision bf16: %s (device %s); use --precision fp32 or auto",
				 d->fast_cpu ? "this CPU has no AVX512-BF16 (or $TL_CPU caps it "
					       "below avx512)"
					     : "only the fast cpu backend has a bf16 GEMM",
				 d->be->name);
	int bf16 = can && (want || any);
	TL_CHECK(tl_gemm_set_precision(bf16 ? TL_GEMM_BF16 : TL_GEMM_FP32) == 0);
	const char *tag = ", bf16 GEMM";
	size_t n = strlen(d->be->name);
	if (bf16 && n + strlen(tag) < sizeof d->be->name && !strstr(d->be->name, tag))
		memcpy(d->be->name + n, tag, strlen(tag) + 1);
	return TL_OK;
}

void tl_device_close(tl_device *d)
{
	if (d->be)
		d->be->destroy(d->be);
	tl_pool_free(d->pool);
	memset(d, 0, sizeof *d);
}

tl_status tl_device_list(FILE *out, tl_err *err)
{
#ifdef TL_HAVE_OPENCL
	return tl_ocl_list(out, err);
#else
	(void)out;
	return tl_seterr(err, TL_EUSAGE,
			 "this build has no OpenCL backend (install ocl-icd-opencl-dev "
			 "opencl-headers libclblast-dev and rebuild)");
#endif
}
