/* npy.h - write NumPy .npy files (format 1.0, little-endian float32, C
 * order) incrementally and atomically: the header first, then rows as they
 * are computed, so a large array never has to sit in memory. */
#ifndef TL_NPY_H
#define TL_NPY_H

#include <stdint.h>

#include "afile.h"

typedef struct {
	tl_afile f;
	uint64_t expect, written; /* floats */
} tl_npy;

/* Create path (through a temporary file) for a float32 array of shape. */
tl_status tl_npy_begin(tl_npy *w, const char *path, int ndim, const int64_t *shape, tl_err *err);
tl_status tl_npy_write(tl_npy *w, const float *data, uint64_t n, tl_err *err);
/* Checks that exactly the announced number of floats arrived, then commits. */
tl_status tl_npy_finish(tl_npy *w, tl_err *err);
void tl_npy_abort(tl_npy *w);

#endif
