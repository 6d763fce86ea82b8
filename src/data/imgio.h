/* imgio.h - decode image files for prediction: PNG (libpng), JPEG
 * (libjpeg-turbo) and binary or plain PPM/PGM (P6, P5, P3, P2), any size,
 * into the planar 8-bit RGB layout of a CIFAR record ([3][h][w], planes
 * R, G, B), which tl_image_convert resizes and normalizes.
 *
 * The format is told by the file's first bytes, not its name.  Damaged
 * input is an error, never a half-grey picture: libjpeg's "premature end"
 * and corrupt-data warnings fail the decode.  Grey images become three
 * equal planes; transparent pixels are composited onto white; 16-bit
 * samples are scaled to 8 bits. */
#ifndef TL_IMGIO_H
#define TL_IMGIO_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

#define TL_IMG_MAX_SIDE 32768

typedef struct {
	int w, h;
	uint8_t *rgb; /* [3][h][w], planes R, G, B */
	const char *format; /* "PNG", "JPEG", "PPM" */
} tl_img;

/* Decode n bytes; name is used in messages ("FILE: JPEG: ...").  Fails
 * on an unknown format, a damaged or truncated file, or a side larger
 * than TL_IMG_MAX_SIDE. */
tl_status tl_img_decode(const uint8_t *buf, size_t n, const char *name, tl_img *out, tl_err *err);

/* Read and decode a file. */
tl_status tl_img_load(const char *path, tl_img *out, tl_err *err);

void tl_img_free(tl_img *img);

#endif
