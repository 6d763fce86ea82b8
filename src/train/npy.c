/* npy.c - .npy writer (see npy.h). */
#include "train/npy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

tl_status tl_npy_begin(tl_npy *w, const char *path, int ndim, const int64_t *shape, tl_err *err)
{
	char dict[256], shp[160] = "";
	uint64_t n = 1;
	for (int d = 0; d < ndim; d++) {
		char e[32];
		snprintf(e, sizeof e, "%" PRId64 "%s", shape[d], ndim == 1 ? "," : d + 1 < ndim ? ", " : "");
		strncat(shp, e, sizeof shp - strlen(shp) - 1);
		n *= (uint64_t)shape[d];
	}
	int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
			   shp);
	/* magic(6) + version(2) + u16 length + dict + spaces + '\n', total % 64 == 0 */
	int total = (10 + len + 1 + 63) / 64 * 64;
	char head[320];
	memcpy(head, "\x93NUMPY\x01\x00", 8);
	uint16_t hl = (uint16_t)(total - 10);
	head[8] = (char)(hl & 0xff);
	head[9] = (char)(hl >> 8);
	memcpy(head + 10, dict, (size_t)len);
	memset(head + 10 + len, ' ', (size_t)(total - 11 - len));
	head[total - 1] = '\n';
	w->expect = n;
	w->written = 0;
	TL_TRY(tl_afile_open(&w->f, path, err));
	tl_status st = tl_afile_write(&w->f, head, (size_t)total, err);
	if (st != TL_OK)
		tl_afile_abort(&w->f);
	return st;
}

tl_status tl_npy_write(tl_npy *w, const float *data, uint64_t n, tl_err *err)
{
	TL_CHECK(w->written + n <= w->expect);
	w->written += n;
	return tl_afile_write(&w->f, data, n * sizeof(float), err);
}

tl_status tl_npy_finish(tl_npy *w, tl_err *err)
{
	if (w->written != w->expect) {
		tl_afile_abort(&w->f);
		return tl_seterr(err, TL_EUSAGE, "npy: wrote %" PRIu64 " of %" PRIu64 " values",
				 w->written, w->expect);
	}
	return tl_afile_commit(&w->f, err);
}

void tl_npy_abort(tl_npy *w)
{
	tl_afile_abort(&w->f);
}
