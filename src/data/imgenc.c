/* imgenc.c - PNG encoding through libpng into memory (see imgenc.h). */
#include "data/imgenc.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

tl_status tl_png_encode(const uint8_t *rgb, int h, int w, uint8_t **out, size_t *n, tl_err *err)
{
	*out = NULL;
	*n = 0;
	if (h < 1 || w < 1 || h > 1 << 16 || w > 1 << 16)
		return tl_seterr(err, TL_EUSAGE, "PNG: size %dx%d out of range", h, w);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len); /* grows as libpng writes */
	png_structp png = m ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!png || !info) {
		png_destroy_write_struct(&png, &info);
		if (m)
			fclose(m);
		free(buf);
		return tl_seterr(err, TL_ENOMEM, "PNG: out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(m);
		free(buf);
		return tl_seterr(err, TL_ENOMEM, "PNG: libpng could not encode the image");
	}
	png_init_io(png, m);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < h; y++)
		png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	if (ferror(m) | fclose(m)) {
		free(buf);
		return tl_seterr(err, TL_ENOMEM, "PNG: out of memory");
	}
	*out = (uint8_t *)buf;
	*n = len;
	return TL_OK;
}

int tl_png_suffix(const char *path)
{
	size_t l = strlen(path);
	return l >= 4 && strcasecmp(path + l - 4, ".png") == 0;
}
