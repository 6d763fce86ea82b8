/* err.c - the one place error messages are formatted. */
#include "tl.h"

#include <stdarg.h>
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
