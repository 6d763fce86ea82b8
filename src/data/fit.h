/* fit.h - one decoded photo -> one shard record: fit its aspect ratio to
 * the record's (crop, stretch or pad), resize, normalize and store as the
 * shard's dtype.  tlpack's workers and tlpredict call the same function,
 * so a photo given to a trained model is prepared exactly as the model's
 * training images were. */
#ifndef TL_FIT_H
#define TL_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "data/imgio.h"
#include "tl.h"

/* How an image of another aspect ratio becomes height x width. */
typedef enum {
	TL_FIT_AUTO = 0,    /* crop for photo sources; raw sources are resized whole */
	TL_FIT_CROP = 1,    /* scale the shorter side to the target, centre crop */
	TL_FIT_STRETCH = 2, /* scale each axis to the target independently */
	TL_FIT_PAD = 3      /* scale the longer side to the target, centre, pad black */
} tl_fit;

/* "whole" (AUTO: what a raw source's shard records), "crop", "stretch",
 * "pad". */
const char *tl_fit_name(tl_fit f);
/* Parse crop/stretch/pad; return 0 on success, -1 if unknown. */
int tl_fit_parse(const char *s, tl_fit *out);

/* Buffers tl_fit_image grows and keeps between calls: one per thread,
 * zero-initialized, released by tl_fit_scratch_free. */
typedef struct {
	float *f;
	uint8_t *crop, *small, *canvas;
	size_t nf, ncrop, nsmall, ncanvas;
} tl_fit_scratch;

/* Fit the decoded image im (any size) into one record dst: dtype dt
 * [3][height][width], normalized by norm, resized with filter:
 *   crop:    the centred region of the output's aspect ratio, as large as
 *            the image allows ((h - ch) / 2 rows above, rounded down), is
 *            resized to the output;
 *   stretch, and AUTO (whole): the whole image is resized to the output;
 *   pad:     the whole image is resized to fit inside the output keeping
 *            its aspect ratio, rounded to 8 bits, and centred on black.
 * Fails only for want of memory. */
tl_status tl_fit_image(const tl_img *im, tl_fit fit, int height, int width, tl_filter filter,
		       const tl_norm *norm, tl_dtype dt, void *dst, tl_fit_scratch *s, tl_err *err);

void tl_fit_scratch_free(tl_fit_scratch *s);

#endif
