/* imgio.h - decode image files: PNG (libpng), JPEG (libjpeg-turbo) and
 * binary or plain PPM/PGM (P6, P5, P3, P2), into the planar 8-bit RGB
 * layout of a CIFAR record ([3][h][w], planes R, G, B), which
 * tl_image_convert resizes and normalizes.  tlpredict reads its images
 * here; every other reader of image files (tlpack's folder sources) is to
 * use the same entry points and limits.
 *
 * The format is told by the file's first bytes, not its name.  Damaged
 * input is an error, never a half-grey picture: libjpeg's "premature end"
 * and corrupt-data warnings fail the decode at once.  Samples are taken
 * as stored, as PIL's decoders take them: no gamma, sRGB, cHRM or ICC
 * colour management (those PNG chunks are skipped unread), 16-bit
 * samples become value / 257 rounded (the PPM rule), grey images become
 * three equal planes, and transparent pixels are composited onto white
 * in 8-bit sample space: (c * a + 255 * (255 - a) + 127) / 255.
 *
 * CMYK and YCCK JPEGs (libjpeg turns YCCK into CMYK) become RGB as PIL's
 * convert('RGB') makes them: with c, m, y, k the stored samples read as
 * ink amounts (0 no ink), R = (255 - k) - round(c * (255 - k) / 255)
 * (PIL's cmyk2rgb and its exact MULDIV255), G from m, B from y.  A
 * file with an Adobe APP14 marker (Photoshop's and PIL's) stores the
 * samples inverted (255 no ink) and is read inverted; one without it is
 * read as stored (PIL inverts every CMYK JPEG: such files differ).
 *
 * EXIF orientation is applied, as PIL's ImageOps.exif_transpose applies
 * it: tag 0x0112 of IFD0 of the first APP1 "Exif" segment of a JPEG, or of
 * a PNG's last eXIf chunk of at most 8 MiB (tl_img_exif_orientation parses
 * it); 2..8 mirror,
 * rotate or transpose the decoded pixels, so w, h, src_w and src_h are
 * those of the upright picture.  XMP orientation is not read.
 *
 * Untrusted files cannot make a decode take much more memory or time
 * than an image of opts->max_pixels pixels needs: the size a file
 * declares (PNG IHDR, JPEG SOF, PPM header) is checked before anything of
 * that size is allocated; a JPEG whose coefficients are all kept
 * (progressive or multi-scan) is refused when its coefficient count
 * (8x8 blocks x 64, all components) exceeds the cap, libjpeg's own
 * memory is capped accordingly, and more than TL_IMG_MAX_SCANS scans
 * are refused.  Turning a picture by its EXIF orientation takes a second
 * buffer of its decoded size for a moment. */
#ifndef TL_IMGIO_H
#define TL_IMGIO_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

#define TL_IMG_MAX_SIDE 32768
/* Default pixel cap: PIL's DecompressionBombError threshold
 * (2 x Image.MAX_IMAGE_PIXELS), about 179 megapixels, 537 MB as RGB. */
#define TL_IMG_MAX_PIXELS 178956970ULL
/* The largest cap that can be asked for (TL_IMG_MAX_SIDE squared). */
#define TL_IMG_MAX_PIXELS_HI 1073741824ULL
/* Scans of a progressive JPEG (each rereads every coefficient); encoders
 * write about 10. */
#define TL_IMG_MAX_SCANS 100

typedef struct {
	uint64_t max_pixels; /* refuse a declared width x height above this */
	/* 0, or the size the caller resizes to: a JPEG is then decoded at
	 * 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) when that keeps at
	 * least twice the target on each side, as PIL's thumbnail() does */
	int target_w, target_h; /* of the upright (EXIF-oriented) picture */
} tl_img_opts;

typedef struct {
	int w, h;         /* the decoded size (rgb's), upright */
	int src_w, src_h; /* the size the file declares (w, h unless scaled),
			   * swapped when the orientation transposes */
	int orientation;  /* the EXIF orientation applied: 1 (none) .. 8 */
	uint8_t *rgb;     /* [3][h][w], planes R, G, B */
	const char *format; /* "PNG", "JPEG", "PPM" */
} tl_img;

/* Fills o with the built-in defaults: max_pixels TL_IMG_MAX_PIXELS, no
 * target. */
void tl_img_opts_init(tl_img_opts *o);

/* tl_img_opts_init, then $TL_MAX_PIXELS when set: a decimal pixel count
 * in 1..TL_IMG_MAX_PIXELS_HI.  Fails (TL_EUSAGE) naming the variable and
 * its value when it is anything else. */
tl_status tl_img_opts_env(tl_img_opts *o, tl_err *err);

/* Decode n bytes with opts o; name is used in messages ("FILE: JPEG:
 * ...").  On success out holds the pixels (tl_img_free them); on failure
 * out holds nothing to free.  Fails (TL_EFORMAT) on an unknown format, a
 * damaged or truncated file, a side outside 1..TL_IMG_MAX_SIDE, a
 * declared size above o->max_pixels, a JPEG over its coefficient or scan
 * limit, or a PPM with anything but whitespace after its raster (netpbm
 * allows several images in one file; one file is one image here). */
tl_status tl_img_decode_opts(const uint8_t *buf, size_t n, const char *name, const tl_img_opts *o,
			     tl_img *out, tl_err *err);

/* tl_img_decode_opts with tl_img_opts_init's defaults. */
tl_status tl_img_decode(const uint8_t *buf, size_t n, const char *name, tl_img *out, tl_err *err);

/* Read a regular file (tl_open_input: a FIFO, device or directory is
 * refused without blocking, TL_EIO) of at most 2 GiB and decode it. */
tl_status tl_img_load_opts(const char *path, const tl_img_opts *o, tl_img *out, tl_err *err);

/* tl_img_load_opts with tl_img_opts_init's defaults. */
tl_status tl_img_load(const char *path, tl_img *out, tl_err *err);

/* The orientation (1..8) in n bytes of EXIF data as a TIFF file holds
 * it ("II*\0" or "MM\0*", then IFD0's offset; a JPEG's APP1 segment after
 * its "Exif\0\0", a PNG's eXIf chunk): entry 0x0112 of IFD0, of type
 * SHORT and count 1 (the last such entry, as PIL reads them).  Only IFD0
 * is read, every offset and count is checked against n, and anything
 * malformed (a bad header, an IFD past the end or cut short, a value
 * outside 1..8) gives 1, the picture as stored. */
int tl_img_exif_orientation(const uint8_t *tiff, size_t n);

/* Frees the pixels; safe on a zeroed or already freed image. */
void tl_img_free(tl_img *img);

#endif
