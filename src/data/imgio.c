/* imgio.c - PNG, JPEG and PPM decoding into planar RGB (see imgio.h). */
#include "data/imgio.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

/* Interleaved rgb [h][w][3] -> planar out->rgb. */
static tl_status to_planar(const uint8_t *px, int w, int h, tl_img *out, const char *name,
			   tl_err *err)
{
	size_t plane = (size_t)w * h;
	out->rgb = malloc(plane * 3);
	if (!out->rgb)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for a %dx%d image", name, w, h);
	for (size_t i = 0; i < plane; i++)
		for (int c = 0; c < 3; c++)
			out->rgb[c * plane + i] = px[i * 3 + c];
	out->w = w, out->h = h;
	return TL_OK;
}

static tl_status check_size(const char *name, const char *fmt, long w, long h, tl_err *err)
{
	if (w < 1 || h < 1 || w > TL_IMG_MAX_SIDE || h > TL_IMG_MAX_SIDE)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: bad image size (expected 1..%d on each side, got %ldx%ld)",
				 name, fmt, TL_IMG_MAX_SIDE, w, h);
	return TL_OK;
}

/* ---- PNG (libpng's simplified API) ---- */

static tl_status decode_png(const uint8_t *buf, size_t n, const char *name, tl_img *out,
			    tl_err *err)
{
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&im, buf, n)) {
		tl_status st = tl_seterr(err, TL_EFORMAT, "%s: PNG: %s", name, im.message);
		png_image_free(&im);
		return st;
	}
	tl_status st = check_size(name, "PNG", (long)im.width, (long)im.height, err);
	if (st != TL_OK) {
		png_image_free(&im);
		return st;
	}
	im.format = PNG_FORMAT_RGB;
	uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
	if (!px) {
		png_image_free(&im);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", name);
	}
	png_color white = {255, 255, 255};
	if (!png_image_finish_read(&im, &white, px, 0, NULL)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: PNG: damaged or truncated (libpng: %s)", name,
			       im.message);
		png_image_free(&im);
		free(px);
		return st;
	}
	st = to_planar(px, (int)im.width, (int)im.height, out, name, err);
	png_image_free(&im);
	free(px);
	return st;
}

/* ---- JPEG ---- */

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int warned;
} jerr;

static void j_error_exit(j_common_ptr c)
{
	jerr *e = (jerr *)c->err;
	c->err->format_message(c, e->msg);
	longjmp(e->jb, 1);
}

/* Warnings (level -1) are corrupt or missing data: remember the first. */
static void j_emit(j_common_ptr c, int level)
{
	jerr *e = (jerr *)c->err;
	if (level < 0 && !e->warned) {
		c->err->format_message(c, e->msg);
		e->warned = 1;
	}
}

static tl_status decode_jpeg(const uint8_t *buf, size_t n, const char *name, tl_img *out,
			     tl_err *err)
{
	struct jpeg_decompress_struct d;
	jerr e;
	memset(&e, 0, sizeof e);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = j_error_exit;
	e.pub.emit_message = j_emit;
	uint8_t *volatile px = NULL;
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		free(px);
		return tl_seterr(err, TL_EFORMAT, "%s: JPEG: damaged (libjpeg: %s)", name, e.msg);
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, buf, (unsigned long)n);
	jpeg_read_header(&d, TRUE);
	tl_status st = check_size(name, "JPEG", (long)d.image_width, (long)d.image_height, err);
	if (st != TL_OK) {
		jpeg_destroy_decompress(&d);
		return st;
	}
	if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
		jpeg_destroy_decompress(&d);
		return tl_seterr(err, TL_EFORMAT, "%s: JPEG: CMYK images are not supported (expected RGB or greyscale)",
				 name);
	}
	d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	int w = (int)d.output_width, h = (int)d.output_height;
	px = malloc((size_t)w * h * 3);
	if (!px) {
		jpeg_destroy_decompress(&d);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", name);
	}
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = px + (size_t)d.output_scanline * w * 3;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	if (e.warned) {
		free(px);
		return tl_seterr(err, TL_EFORMAT, "%s: JPEG: damaged or truncated (libjpeg: %s)", name,
				 e.msg);
	}
	st = to_planar(px, w, h, out, name, err);
	free(px);
	return st;
}

/* ---- PPM / PGM ---- */

/* Next header number, skipping whitespace and # comments; -1 if none. */
static long pnm_num(const uint8_t *b, size_t n, size_t *pos)
{
	size_t i = *pos;
	for (;;) {
		while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
			i++;
		if (i < n && b[i] == '#') {
			while (i < n && b[i] != '\n')
				i++;
			continue;
		}
		break;
	}
	if (i >= n || b[i] < '0' || b[i] > '9')
		return -1;
	long v = 0;
	while (i < n && b[i] >= '0' && b[i] <= '9') {
		v = v * 10 + (b[i] - '0');
		if (v > 1L << 30)
			return -1;
		i++;
	}
	*pos = i;
	return v;
}

static tl_status decode_pnm(const uint8_t *b, size_t n, const char *name, tl_img *out,
			    tl_err *err)
{
	char kind = (char)b[1];
	int ch = kind == '6' || kind == '3' ? 3 : 1, binary = kind == '6' || kind == '5';
	size_t pos = 2;
	long w = pnm_num(b, n, &pos), h = pnm_num(b, n, &pos), maxv = pnm_num(b, n, &pos);
	if (w < 0 || h < 0 || maxv < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad or truncated header (expected width, height and maxval after P%c)",
				 name, kind);
	TL_TRY(check_size(name, "PPM", w, h, err));
	if (maxv < 1 || maxv > 65535)
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad maxval (expected 1..65535, got %ld)", name, maxv);
	size_t count = (size_t)w * h * ch, bps = maxv > 255 ? 2 : 1;
	uint8_t *px = malloc((size_t)w * h * 3);
	if (!px)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", name);
	tl_status st = TL_OK;
	if (binary) {
		if (pos >= n || !(b[pos] == ' ' || b[pos] == '\t' || b[pos] == '\n' || b[pos] == '\r')) {
			free(px);
			return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad header (expected one whitespace byte after maxval)", name);
		}
		pos++;
		if (n - pos < count * bps) {
			free(px);
			return tl_seterr(err, TL_EFORMAT, "%s: PPM: truncated (expected %zu bytes of pixels, got %zu)",
					 name, count * bps, n - pos);
		}
	}
	for (size_t i = 0; i < count; i++) {
		long v;
		if (binary) {
			v = bps == 2 ? (long)b[pos] << 8 | b[pos + 1] : b[pos];
			pos += bps;
		} else if ((v = pnm_num(b, n, &pos)) < 0) {
			st = tl_seterr(err, TL_EFORMAT, "%s: PPM: truncated (expected %zu samples, got %zu)", name,
				       count, i);
			break;
		}
		if (v > maxv) {
			st = tl_seterr(err, TL_EFORMAT, "%s: PPM: sample %zu out of range (expected 0..%ld, got %ld)",
				       name, i, maxv, v);
			break;
		}
		uint8_t q = (uint8_t)((v * 255 + maxv / 2) / maxv);
		if (ch == 3)
			px[i] = q;
		else
			px[i * 3] = px[i * 3 + 1] = px[i * 3 + 2] = q;
	}
	if (st == TL_OK)
		st = to_planar(px, (int)w, (int)h, out, name, err);
	free(px);
	return st;
}

tl_status tl_img_decode(const uint8_t *buf, size_t n, const char *name, tl_img *out, tl_err *err)
{
	memset(out, 0, sizeof *out);
	if (n >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) {
		out->format = "PNG";
		return decode_png(buf, n, name, out, err);
	}
	if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
		out->format = "JPEG";
		return decode_jpeg(buf, n, name, out, err);
	}
	if (n >= 2 && buf[0] == 'P' && (buf[1] == '2' || buf[1] == '3' || buf[1] == '5' || buf[1] == '6')) {
		out->format = "PPM";
		return decode_pnm(buf, n, name, out, err);
	}
	if (n == 0)
		return tl_seterr(err, TL_EFORMAT, "%s: empty file (expected a PNG, JPEG or PPM image)", name);
	return tl_seterr(err, TL_EFORMAT, "%s: not a PNG, JPEG or PPM image (first bytes %02x %02x %02x %02x)",
			 name, buf[0], n > 1 ? buf[1] : 0, n > 2 ? buf[2] : 0, n > 3 ? buf[3] : 0);
}

tl_status tl_img_load(const char *path, tl_img *out, tl_err *err)
{
	memset(out, 0, sizeof *out);
	FILE *f = fopen(path, "rb");
	if (!f)
		return tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fclose(f);
		return tl_seterr(err, TL_EIO, "%s: not a regular file", path);
	}
	if (sb.st_size > (off_t)1 << 31) {
		fclose(f);
		return tl_seterr(err, TL_EFORMAT, "%s: too large for an image (over 2 GiB)", path);
	}
	size_t n = (size_t)sb.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		fclose(f);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	size_t got = fread(buf, 1, n, f);
	fclose(f);
	if (got != n) {
		free(buf);
		return tl_seterr(err, TL_EIO, "%s: read error (expected %zu bytes, got %zu)", path, n, got);
	}
	tl_status st = tl_img_decode(buf, n, path, out, err);
	free(buf);
	return st;
}

void tl_img_free(tl_img *img)
{
	free(img->rgb);
	img->rgb = NULL;
}
