/* backend.c - what every backend shares: the sticky first error. */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>

tl_status tl_backend_fail(tl_backend *be, tl_status st, const char *fmt, ...)
{
	if (be->status != TL_OK)
		return be->status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(be->err.msg, sizeof be->err.msg, fmt, ap);
	va_end(ap);
	be->status = st;
	return st;
}
