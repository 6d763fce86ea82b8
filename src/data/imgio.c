/* imgio.c - PNG, JPEG and PPM decoding into planar RGB (CMYK JPEGs
 * converted, EXIF orientation applied), with limits on what an untrusted
 * file can make a decode allocate (see imgio.h). */
#include "data/imgio.h"

#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "infile.h"

void tl_img_opts_init(tl_img_opts *o)
{
	o->max_pixels = TL_IMG_MAX_PIXELS;
	o->target_w = o->target_h = 0;
}

tl_status tl_img_opts_env(tl_img_opts *o, tl_err *err)
{
	tl_img_opts_init(o);
	const char *s = getenv("TL_MAX_PIXELS");
	if (!s)
		return TL_OK;
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9' && v <= TL_IMG_MAX_PIXELS_HI; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == s || *p || v < 1 || v > TL_IMG_MAX_PIXELS_HI)
		return tl_seterr(err, TL_EUSAGE, "TL_MAX_PIXELS: expected a pixel count in 1..%llu, got '%s'",
				 (unsigned long long)TL_IMG_MAX_PIXELS_HI, s);
	o->max_pixels = v;
	return TL_OK;
}

/* The declared size against the side limit and the pixel cap; TL_OK or
 * TL_EFORMAT with "NAME: FMT: ..." saying which. */
static tl_status check_size(const char *name, const char *fmt, long w, long h, const tl_img_opts *o,
			    tl_err *err)
{
	if (w < 1 || h < 1 || w > TL_IMG_MAX_SIDE || h > TL_IMG_MAX_SIDE)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: bad image size (expected 1..%d on each side, got %ldx%ld)",
				 name, fmt, TL_IMG_MAX_SIDE, w, h);
	uint64_t px = (uint64_t)w * (uint64_t)h;
	if (px > o->max_pixels)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: too many pixels (expected at most %llu, got %ldx%ld = %llu; TL_MAX_PIXELS raises the limit)",
				 name, fmt, (unsigned long long)o->max_pixels, w, h, (unsigned long long)px);
	return TL_OK;
}

/* 3 planes of w x h bytes, or NULL with err set. */
static uint8_t *alloc_planes(const char *name, long w, long h, tl_err *err)
{
	uint8_t *p = malloc((size_t)w * (size_t)h * 3);
	if (!p)
		tl_seterr(err, TL_ENOMEM, "%s: out of memory for a %ldx%ld image", name, w, h);
	return p;
}

/* One pixel into the planes at index i of plane: 8-bit r, g, b and alpha
 * a, composited onto white when a < 255 (8-bit sample space, rounded). */
static inline void put_px(uint8_t *rgb, size_t plane, size_t i, unsigned r, unsigned g, unsigned b,
			  unsigned a)
{
	if (a != 255) {
		r = (r * a + 255 * (255 - a) + 127) / 255;
		g = (g * a + 255 * (255 - a) + 127) / 255;
		b = (b * a + 255 * (255 - a) + 127) / 255;
	}
	rgb[i] = (uint8_t)r;
	rgb[plane + i] = (uint8_t)g;
	rgb[2 * plane + i] = (uint8_t)b;
}

/* ---- PNG (libpng's row API: no colour management is asked for) ---- */

typedef struct {
	const uint8_t *buf;
	size_t n, pos;
	char msg[160];
} png_src;

static void png_read_mem(png_structp png, png_bytep dst, size_t len)
{
	png_src *s = png_get_io_ptr(png);
	if (len > s->n - s->pos)
		png_error(png, "the file ends inside a chunk");
	memcpy(dst, s->buf + s->pos, len);
	s->pos += len;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
	png_src *s = png_get_error_ptr(png);
	snprintf(s->msg, sizeof s->msg, "%s", msg);
	png_longjmp(png, 1);
}

/* libpng's warnings are about chunks it can do without (bad CRCs of
 * ancillary chunks, extra compressed data): the pixels are whole. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* A sample of a row after png_set_expand: 8 bits, or 16 bits big-endian
 * scaled to 8 as value / 257 rounded. */
static inline unsigned png_sample(const uint8_t *p, int b16)
{
	return b16 ? (((unsigned)p[0] << 8 | p[1]) + 128) / 257 : p[0];
}

/* Chunks that are never read: colour management (PIL's raw decode
 * ignores it too; applying gAMA changed 8-bit samples) and text, time,
 * and layout chunks, the compressed ones among them (iCCP, zTXt, iTXt). */
static const png_byte png_skipped[] = "gAMA\0cHRM\0sRGB\0iCCP\0sBIT\0bKGD\0hIST\0pCAL\0sCAL\0pHYs\0oFFs\0"
				      "tIME\0tEXt\0zTXt\0iTXt\0sPLT";
/* eXIf, for its orientation, is kept as an unknown chunk: libpng's own
 * eXIf reader allocates whatever length the chunk declares (1 GB for a
 * 139-byte file), the unknown-chunk path checks png_set_chunk_malloc_max */
static const png_byte png_kept[] = "eXIf";

static tl_status decode_png(const uint8_t *buf, size_t n, const char *name, const tl_img_opts *o,
			    tl_img *out, tl_err *err)
{
	png_src s = {buf, n, 0, ""};
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return tl_seterr(err, TL_ENOMEM, "%s: PNG: out of memory", name);
	}
	uint8_t *volatile row = NULL, *volatile rgb = NULL;
	if (setjmp(png_jmpbuf(png))) {
		free(row);
		free(rgb);
		png_destroy_read_struct(&png, &info, NULL);
		return tl_seterr(err, TL_EFORMAT, "%s: PNG: damaged or truncated (libpng: %s)", name, s.msg);
	}
	png_set_read_fn(png, &s, png_read_mem);
	/* sides: our check below names the limit; libpng's own stays as a guard */
	png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
	png_set_chunk_malloc_max(png, 8u << 20);
	png_set_chunk_cache_max(png, 1000);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_skipped,
				    (int)(sizeof png_skipped / 5));
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, png_kept, 1);
	png_read_info(png, info);
	png_uint_32 w, h;
	int depth, ctype, interlace;
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
	tl_status st = check_size(name, "PNG", (long)w, (long)h, o, err);
	if (st != TL_OK) {
		png_destroy_read_struct(&png, &info, NULL);
		return st;
	}
	png_set_expand(png); /* palette -> RGB, grey 1/2/4 -> 8 bits, tRNS -> alpha */
	int passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	int ch = png_get_channels(png, info), b16 = png_get_bit_depth(png, info) == 16;
	size_t bps = b16 ? 2 : 1, plane = (size_t)w * h;
	row = malloc(png_get_rowbytes(png, info));
	rgb = alloc_planes(name, (long)w, (long)h, err);
	if (!row || !rgb) {
		free(row);
		free(rgb);
		png_destroy_read_struct(&png, &info, NULL);
		return tl_seterr(err, TL_ENOMEM, "%s: PNG: out of memory for a %ux%u image", name, w, h);
	}
	/* Adam7: each call fills only this pass's pixels of the row, so each
	 * pass's pixels are taken as they come and one row buffer serves */
	int adam7 = interlace == PNG_INTERLACE_ADAM7;
	for (int pass = 0; pass < passes; pass++)
		for (png_uint_32 y = 0; y < h; y++) {
			png_read_row(png, row, NULL);
			if (adam7 && !PNG_ROW_IN_INTERLACE_PASS(y, pass))
				continue;
			png_uint_32 x0 = adam7 ? PNG_PASS_START_COL(pass) : 0;
			png_uint_32 dx = adam7 ? 1u << PNG_PASS_COL_SHIFT(pass) : 1;
			for (png_uint_32 x = x0; x < w; x += dx) {
				const uint8_t *p = row + (size_t)x * ch * bps;
				unsigned r = png_sample(p, b16), g = r, b = r, a = 255;
				if (ch >= 3)
					g = png_sample(p + bps, b16), b = png_sample(p + 2 * bps, b16);
				if (ch == 2 || ch == 4)
					a = png_sample(p + (ch - 1) * bps, b16);
				put_px(rgb, plane, (size_t)y * w + x, r, g, b, a);
			}
		}
	/* with info: an eXIf chunk after the pixels counts too; the last
	 * one, as PIL reads them */
	png_read_end(png, info);
	png_unknown_chunkp unk;
	int nunk = png_get_unknown_chunks(png, info, &unk);
	out->orientation = 1;
	for (int i = 0; i < nunk; i++)
		if (memcmp(unk[i].name, "eXIf", 4) == 0)
			out->orientation = tl_img_exif_orientation(unk[i].data, unk[i].size);
	png_destroy_read_struct(&png, &info, NULL);
	free(row);
	out->rgb = rgb;
	out->w = out->src_w = (int)w;
	out->h = out->src_h = (int)h;
	return TL_OK;
}

/* ---- JPEG ---- */

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX + 64];
} jerr;

static void j_error_exit(j_common_ptr c)
{
	jerr *e = (jerr *)c->err;
	c->err->format_message(c, e->msg);
	longjmp(e->jb, 1);
}

/* Warnings (level -1) are corrupt or missing data: fail at the first,
 * before libjpeg fills the rest of a truncated image with grey. */
static void j_emit(j_common_ptr c, int level)
{
	if (level < 0)
		j_error_exit(c);
}

/* Called between scans: refuses a file with more than TL_IMG_MAX_SCANS. */
static void j_progress(j_common_ptr c)
{
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (c->is_decompressor && d->input_scan_number > TL_IMG_MAX_SCANS) {
		jerr *e = (jerr *)c->err;
		snprintf(e->msg, sizeof e->msg, "more than %d scans", TL_IMG_MAX_SCANS);
		longjmp(e->jb, 1);
	}
}

/* a * b / 255 rounded, exactly, for a, b in 0..255 (PIL's MULDIV255) */
static inline unsigned muldiv255(unsigned a, unsigned b)
{
	unsigned t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

/* One CMYK pixel p into the planes at index i, as PIL's cmyk2rgb: ink
 * amounts c, m, y, k (0 no ink; the stored samples, or 255 minus them
 * when inverted, Adobe's convention), R = (255 - k) - c * (255 - k) / 255
 * rounded, G from m, B from y. */
static inline void cmyk_px(uint8_t *rgb, size_t plane, size_t i, const uint8_t *p, int inverted)
{
	unsigned inv = inverted ? 255 : 0;
	unsigned nk = 255 - (p[3] ^ inv);
	rgb[i] = (uint8_t)(nk - muldiv255(p[0] ^ inv, nk));
	rgb[plane + i] = (uint8_t)(nk - muldiv255(p[1] ^ inv, nk));
	rgb[2 * plane + i] = (uint8_t)(nk - muldiv255(p[2] ^ inv, nk));
}

static size_t round_up(size_t v, size_t m)
{
	return (v + m - 1) / m * m;
}

static tl_status decode_jpeg(const uint8_t *buf, size_t n, const char *name, const tl_img_opts *o,
			     tl_img *out, tl_err *err)
{
	struct jpeg_decompress_struct d;
	struct jpeg_progress_mgr prog = {.progress_monitor = j_progress};
	jerr e;
	memset(&e, 0, sizeof e);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = j_error_exit;
	e.pub.emit_message = j_emit;
	uint8_t *volatile row = NULL, *volatile rgb = NULL;
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		free(row);
		free(rgb);
		return tl_seterr(err, TL_EFORMAT, "%s: JPEG: damaged or truncated (libjpeg: %s)", name, e.msg);
	}
	jpeg_create_decompress(&d);
	d.progress = &prog;
	/* libjpeg's big arrays are the coefficients checked below; past
	 * this it fails (no backing store) instead of allocating */
	uint64_t jmem = o->max_pixels * sizeof(JCOEF) + (32u << 20);
	d.mem->max_memory_to_use = jmem < (uint64_t)LONG_MAX ? (long)jmem : LONG_MAX;
	jpeg_mem_src(&d, buf, (unsigned long)n);
	/* APP1 segments (at most 64 KiB each, as long as the file's) for Exif */
	jpeg_save_markers(&d, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(&d, TRUE);
	long w = (long)d.image_width, h = (long)d.image_height;
	tl_status st = check_size(name, "JPEG", w, h, o, err);
	/* the first Exif segment, as PIL takes it */
	int orientation = 1;
	for (jpeg_saved_marker_ptr m = d.marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
			orientation = tl_img_exif_orientation(m->data + 6, m->data_length - 6);
			break;
		}
	if (st == TL_OK && (d.progressive_mode || d.comps_in_scan < d.num_components)) {
		/* every coefficient is kept until the last scan: 8x8 blocks,
		 * padded to whole MCUs, of every component */
		uint64_t coefs = 0;
		for (int c = 0; c < d.num_components; c++) {
			const jpeg_component_info *ci = &d.comp_info[c];
			coefs += (uint64_t)round_up(ci->width_in_blocks, (size_t)ci->h_samp_factor) *
				 round_up(ci->height_in_blocks, (size_t)ci->v_samp_factor) * 64;
		}
		if (coefs > o->max_pixels)
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: JPEG: too many coefficients to buffer (a %s JPEG keeps all of them: expected at most %llu, got %llu for %ldx%ld with %d components; TL_MAX_PIXELS raises the limit)",
				       name, d.progressive_mode ? "progressive" : "multi-scan",
				       (unsigned long long)o->max_pixels, (unsigned long long)coefs, w, h,
				       d.num_components);
	}
	if (st != TL_OK) {
		jpeg_destroy_decompress(&d);
		return st;
	}
	/* DCT scaling: the smallest of 1/8, 1/4, 1/2 that keeps twice the
	 * target; the target is upright, the pixels here are as stored */
	long tw = orientation >= 5 ? o->target_h : o->target_w;
	long th = orientation >= 5 ? o->target_w : o->target_h;
	if (tw > 0 && th > 0)
		for (unsigned s = 8; s > 1; s /= 2)
			if ((w + (long)s - 1) / (long)s >= 2 * tw && (h + (long)s - 1) / (long)s >= 2 * th) {
				d.scale_num = 1, d.scale_denom = s;
				break;
			}
	/* libjpeg gives YCCK as CMYK; Adobe's files hold inverted CMYK */
	int cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
	int inverted = cmyk && d.saw_Adobe_marker;
	d.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	jpeg_start_decompress(&d);
	long ow = (long)d.output_width, oh = (long)d.output_height;
	int nc = d.output_components;
	row = malloc((size_t)ow * nc);
	rgb = alloc_planes(name, ow, oh, err);
	if (!row || !rgb) {
		jpeg_destroy_decompress(&d);
		free(row);
		free(rgb);
		return tl_seterr(err, TL_ENOMEM, "%s: JPEG: out of memory for a %ldx%ld image", name, ow, oh);
	}
	size_t plane = (size_t)ow * oh;
	while (d.output_scanline < d.output_height) {
		size_t y = d.output_scanline;
		JSAMPROW r = row;
		jpeg_read_scanlines(&d, &r, 1);
		if (cmyk)
			for (long x = 0; x < ow; x++)
				cmyk_px(rgb, plane, y * ow + x, row + 4 * x, inverted);
		else
			for (long x = 0; x < ow; x++)
				put_px(rgb, plane, y * ow + x, row[3 * x], row[3 * x + 1], row[3 * x + 2], 255);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	free(row);
	out->orientation = orientation;
	out->rgb = rgb;
	out->w = (int)ow, out->h = (int)oh;
	out->src_w = (int)w, out->src_h = (int)h;
	return TL_OK;
}

/* ---- PPM / PGM ---- */

static int pnm_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Next header number, skipping whitespace and # comments; -1 if none. */
static long pnm_num(const uint8_t *b, size_t n, size_t *pos)
{
	size_t i = *pos;
	for (;;) {
		while (i < n && pnm_space(b[i]))
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

static tl_status decode_pnm(const uint8_t *b, size_t n, const char *name, const tl_img_opts *o,
			    tl_img *out, tl_err *err)
{
	char kind = (char)b[1];
	int ch = kind == '6' || kind == '3' ? 3 : 1, binary = kind == '6' || kind == '5';
	size_t pos = 2;
	long w = pnm_num(b, n, &pos), h = pnm_num(b, n, &pos), maxv = pnm_num(b, n, &pos);
	if (w < 0 || h < 0 || maxv < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad or truncated header (expected width, height and maxval after P%c)",
				 name, kind);
	TL_TRY(check_size(name, "PPM", w, h, o, err));
	if (maxv < 1 || maxv > 65535)
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad maxval (expected 1..65535, got %ld)", name, maxv);
	size_t count = (size_t)w * h * ch, bps = maxv > 255 ? 2 : 1, plane = (size_t)w * h;
	/* the raster must be there before anything of its size is allocated */
	if (pos >= n || !pnm_space(b[pos]))
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: bad header (expected whitespace after maxval)", name);
	if (binary) {
		pos++;
		if (n - pos < count * bps)
			return tl_seterr(err, TL_EFORMAT, "%s: PPM: truncated (expected %zu bytes of pixels, got %zu)",
					 name, count * bps, n - pos);
	} else if ((n - pos) / 2 < count) {
		/* each plain sample takes a digit and the whitespace before it */
		return tl_seterr(err, TL_EFORMAT, "%s: PPM: truncated (expected %zu samples, at least %zu bytes, got %zu)",
				 name, count, count * 2, n - pos);
	}
	uint8_t *rgb = alloc_planes(name, w, h, err);
	if (!rgb)
		return TL_ENOMEM;
	for (size_t i = 0; i < count; i++) {
		long v;
		if (binary) {
			v = bps == 2 ? (long)b[pos] << 8 | b[pos + 1] : b[pos];
			pos += bps;
		} else if ((v = pnm_num(b, n, &pos)) < 0) {
			free(rgb);
			return tl_seterr(err, TL_EFORMAT, "%s: PPM: truncated or not a number (expected %zu samples, got %zu)",
					 name, count, i);
		}
		if (v > maxv) {
			free(rgb);
			return tl_seterr(err, TL_EFORMAT, "%s: PPM: sample %zu out of range (expected 0..%ld, got %ld)",
					 name, i, maxv, v);
		}
		uint8_t q = (uint8_t)((v * 255 + maxv / 2) / maxv);
		if (ch == 3)
			rgb[i % 3 * plane + i / 3] = q;
		else
			rgb[i] = rgb[plane + i] = rgb[2 * plane + i] = q;
	}
	/* one image per file: whitespace may end it, nothing else */
	size_t end = pos;
	while (end < n && pnm_space(b[end]))
		end++;
	if (end < n) {
		free(rgb);
		return tl_seterr(err, TL_EFORMAT,
				 "%s: PPM: %zu bytes after the image (expected the file to end: one image per file, whitespace only after the pixels)",
				 name, n - pos);
	}
	out->rgb = rgb;
	out->w = out->src_w = (int)w;
	out->h = out->src_h = (int)h;
	return TL_OK;
}

/* ---- EXIF orientation ---- */

static unsigned exif16(const uint8_t *p, int be)
{
	return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t exif32(const uint8_t *p, int be)
{
	return be ? (uint32_t)exif16(p, 1) << 16 | exif16(p + 2, 1) : (uint32_t)exif16(p + 2, 0) << 16 | exif16(p, 0);
}

int tl_img_exif_orientation(const uint8_t *t, size_t n)
{
	if (n < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M')))
		return 1;
	int be = t[0] == 'M';
	if (exif16(t + 2, be) != 42)
		return 1;
	uint32_t ifd = exif32(t + 4, be);
	/* IFD0 after the header, its entry count and all its entries inside */
	if (ifd < 8 || ifd > n || n - ifd < 2)
		return 1;
	size_t count = exif16(t + ifd, be);
	if ((n - ifd - 2) / 12 < count)
		return 1;
	int orientation = 1;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = t + ifd + 2 + 12 * i;
		/* tag, type SHORT (3), count 1, the value in the entry's first 2 bytes */
		if (exif16(e, be) == 0x0112 && exif16(e + 2, be) == 3 && exif32(e + 4, be) == 1) {
			unsigned v = exif16(e + 8, be);
			orientation = v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return orientation;
}

/* Turns img upright for EXIF orientation o (2..8, as PIL's exif_transpose:
 * 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 anticlockwise): a stored pixel (x, y) is
 * mirrored (x -> w-1-x) and/or flipped (y -> h-1-y), then for 5..8
 * transposed; the size, declared size too, swaps for 5..8. */
static tl_status orient(tl_img *img, int o, const char *name, tl_err *err)
{
	int fx = o == 2 || o == 3 || o == 7 || o == 8, fy = o == 3 || o == 4 || o == 6 || o == 7, tr = o >= 5;
	size_t w = (size_t)img->w, h = (size_t)img->h, plane = w * h, ow = tr ? h : w;
	uint8_t *dst = alloc_planes(name, img->w, img->h, err);
	if (!dst)
		return TL_ENOMEM;
	for (size_t c = 0; c < 3; c++) {
		const uint8_t *s = img->rgb + c * plane;
		uint8_t *d = dst + c * plane;
		for (size_t y = 0; y < h; y++) {
			size_t b = fy ? h - 1 - y : y;
			for (size_t x = 0; x < w; x++) {
				size_t a = fx ? w - 1 - x : x;
				d[tr ? a * ow + b : b * ow + a] = s[y * w + x];
			}
		}
	}
	free(img->rgb);
	img->rgb = dst;
	if (tr) {
		int t = img->w;
		img->w = img->h, img->h = t;
		t = img->src_w;
		img->src_w = img->src_h, img->src_h = t;
	}
	return TL_OK;
}

tl_status tl_img_decode_opts(const uint8_t *buf, size_t n, const char *name, const tl_img_opts *o,
			     tl_img *out, tl_err *err)
{
	memset(out, 0, sizeof *out);
	tl_status st;
	if (n >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) {
		st = decode_png(buf, n, name, o, out, err);
		out->format = "PNG";
	} else if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
		st = decode_jpeg(buf, n, name, o, out, err);
		out->format = "JPEG";
	} else if (n >= 2 && buf[0] == 'P' && (buf[1] == '2' || buf[1] == '3' || buf[1] == '5' || buf[1] == '6')) {
		st = decode_pnm(buf, n, name, o, out, err);
		out->format = "PPM";
	} else if (n == 0) {
		return tl_seterr(err, TL_EFORMAT, "%s: empty file (expected a PNG, JPEG or PPM image)", name);
	} else {
		return tl_seterr(err, TL_EFORMAT, "%s: not a PNG, JPEG or PPM image (first bytes %02x %02x %02x %02x)",
				 name, buf[0], n > 1 ? buf[1] : 0, n > 2 ? buf[2] : 0, n > 3 ? buf[3] : 0);
	}
	if (st != TL_OK)
		return st;
	if (out->orientation > 1 && (st = orient(out, out->orientation, name, err)) != TL_OK) {
		tl_img_free(out);
		return st;
	}
	if (!out->orientation)
		out->orientation = 1; /* PPM */
	return TL_OK;
}

tl_status tl_img_decode(const uint8_t *buf, size_t n, const char *name, tl_img *out, tl_err *err)
{
	tl_img_opts o;
	tl_img_opts_init(&o);
	return tl_img_decode_opts(buf, n, name, &o, out, err);
}

tl_status tl_img_load_opts(const char *path, const tl_img_opts *o, tl_img *out, tl_err *err)
{
	memset(out, 0, sizeof *out);
	struct stat sb;
	int fd = tl_open_input(path, &sb, err);
	if (fd < 0)
		return TL_EIO;
	if (sb.st_size > (off_t)1 << 31) {
		close(fd);
		return tl_seterr(err, TL_EFORMAT, "%s: too large for an image (expected at most 2 GiB, got %lld bytes)",
				 path, (long long)sb.st_size);
	}
	size_t n = (size_t)sb.st_size, got = 0;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			tl_status st = r < 0 ? tl_seterr(err, TL_EIO, "%s: read error: %s", path, strerror(errno))
					     : tl_seterr(err, TL_EIO, "%s: read error (expected %zu bytes, got %zu: the file shrank)",
							 path, n, got);
			free(buf);
			close(fd);
			return st;
		}
		got += (size_t)r;
	}
	close(fd);
	tl_status st = tl_img_decode_opts(buf, n, path, o, out, err);
	free(buf);
	return st;
}

tl_status tl_img_load(const char *path, tl_img *out, tl_err *err)
{
	tl_img_opts o;
	tl_img_opts_init(&o);
	return tl_img_load_opts(path, &o, out, err);
}

void tl_img_free(tl_img *img)
{
	free(img->rgb);
	img->rgb = NULL;
}
