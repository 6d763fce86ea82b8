/* backend.c - what every backend shares: the op names and the sticky
 * first error. */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>

/* A new op in backend_ops.h changes this count: then check that the CPU
 * reference, the fast CPU path where it matters, the OpenCL backend,
 * tests/test_ops.c and tests/test_backend_ops.c's table all have it, and
 * bump the number. */
_Static_assert(TL_OP_COUNT == 24, "backend_ops.h changed: see the comment above");

const char *const tl_op_names[TL_OP_COUNT] = {
#define TL_OP(ret, name, params) #name,
#include "backend_ops.h"
#undef TL_OP
};

const char *tl_backend_missing_op(const tl_backend *be)
{
#define TL_OP(ret, name, params)                                     \
	if (!be->name && TL_OP_##name != TL_OP_maxpool_infer)        \
		return #name;
#include "backend_ops.h"
#undef TL_OP
	return NULL;
}

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
