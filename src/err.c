/* err.c - the one place error messages are formatted. */
#include "tl.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

tl_status tl_seterr(tl_err *err, tl_status st, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return st;
}

const char *tl_status_name(tl_status st)
{
	switch (st) {
	case TL_OK: return "ok";
	case TL_EIO: return "i/o error";
	case TL_EFORMAT: return "bad format";
	case TL_ECHECKSUM: return "checksum mismatch";
	case TL_ENOMEM: return "out of memory";
	case TL_EUSAGE: return "usage error";
	case TL_EINTR: return "interrupted";
	}
	return "unknown status";
}

void tl_check_failed(const char *what, const char *file, int line)
{
	fprintf(stderr, "tlkit: internal check failed: %s at %s:%d\n", what,
		file, line);
	abort();
}

static atomic_long alloc_left = -1; /* -1: never fail */

void tl_alloc_fail_after(long n)
{
	atomic_store(&alloc_left, n < 0 ? -1 : n);
}

/* 1 if this allocation is to fail. */
static int alloc_fails(void)
{
	long v = atomic_load(&alloc_left);
	while (v > 0 && !atomic_compare_exchange_weak(&alloc_left, &v, v - 1))
		;
	return v == 0;
}

void *tl_malloc(size_t n)
{
	return alloc_fails() ? NULL : malloc(n);
}

void *tl_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

void *tl_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : realloc(p, n);
}
