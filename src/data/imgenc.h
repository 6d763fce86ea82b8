/* imgenc.h - encode pictures for export (tlpack --export FILE.png). */
#ifndef TL_IMGENC_H
#define TL_IMGENC_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

/* A PNG of rgb (h x w x 3 bytes, rows top to bottom, RGB interleaved):
 * 8-bit truecolour, no gamma or colour chunks (the bytes are the pixels as
 * stored, as tl_img_decode reads them back).  *out (free it) and *n. */
tl_status tl_png_encode(const uint8_t *rgb, int h, int w, uint8_t **out, size_t *n, tl_err *err);

/* 1 when path's name ends in .png (any case): tlpack --export writes a
 * PNG there and a binary PPM elsewhere. */
int tl_png_suffix(const char *path);

#endif
