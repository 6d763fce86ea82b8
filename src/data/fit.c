/* fit.c - fit, resize and store one decoded photo (see fit.h). */
#include "data/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *tl_fit_name(tl_fit f)
{
	static const char *const n[] = {"whole", "crop", "stretch", "pad"};
	return (unsigned)f < 4 ? n[f] : "?";
}

int tl_fit_parse(const char *s, tl_fit *out)
{
	static const char *const n[] = {"crop", "stretch", "pad"};
	for (int i = 0; i < 3; i++)
		if (strcmp(s, n[i]) == 0) {
			*out = (tl_fit)(i + 1);
			return 0;
		}
	return -1;
}

/* Make *p hold at least want elements of elem bytes; -1 out of memory. */
static int grow(void **p, size_t *have, size_t want, size_t elem)
{
	if (*have >= want)
		return 0;
	void *q = realloc(*p, want * elem);
	if (!q)
		return -1;
	*p = q, *have = want;
	return 0;
}

/* Resize src [3][sh][sw] to [3][oh][ow] as dt with norm n into dst. */
static tl_status resize_to(tl_fit_scratch *s, tl_filter filter, const uint8_t *src, int sh, int sw,
			   int oh, int ow, const tl_norm *n, tl_dtype dt, void *dst, tl_err *err)
{
	tl_resize rz;
	TL_TRY(tl_resize_init(&rz, sh, sw, oh, ow, filter, err));
	if (grow((void **)&s->f, &s->nf, tl_image_scratch_floats(&rz), sizeof(float))) {
		tl_resize_free(&rz);
		return tl_seterr(err, TL_ENOMEM, "out of memory for resize scratch");
	}
	tl_image_convert(src, &rz, n, dt, dst, s->f);
	tl_resize_free(&rz);
	return TL_OK;
}

tl_status tl_fit_image(const tl_img *im, tl_fit fit, int height, int width, tl_filter filter,
		       const tl_norm *norm, tl_dtype dt, void *dst, tl_fit_scratch *s, tl_err *err)
{
	int H = height, W = width, sh = im->h, sw = im->w;
	const uint8_t *src = im->rgb;
	if (fit == TL_FIT_CROP) {
		double k = fmax((double)H / sh, (double)W / sw);
		int ch = (int)lround(H / k), cw = (int)lround(W / k);
		ch = ch < 1 ? 1 : ch > sh ? sh : ch;
		cw = cw < 1 ? 1 : cw > sw ? sw : cw;
		int y0 = (sh - ch) / 2, x0 = (sw - cw) / 2;
		if (ch != sh || cw != sw) {
			if (grow((void **)&s->crop, &s->ncrop, (size_t)3 * ch * cw, 1))
				return tl_seterr(err, TL_ENOMEM, "out of memory for a crop");
			for (int p = 0; p < 3; p++)
				for (int y = 0; y < ch; y++)
					memcpy(s->crop + ((size_t)p * ch + y) * cw,
					       im->rgb + ((size_t)p * sh + y0 + y) * sw + x0, (size_t)cw);
			src = s->crop, sh = ch, sw = cw;
		}
	} else if (fit == TL_FIT_PAD) {
		double k = fmin((double)H / sh, (double)W / sw);
		int ih = (int)lround(sh * k), iw = (int)lround(sw * k);
		ih = ih < 1 ? 1 : ih > H ? H : ih;
		iw = iw < 1 ? 1 : iw > W ? W : iw;
		if (grow((void **)&s->small, &s->nsmall, (size_t)3 * ih * iw, 1) ||
		    grow((void **)&s->canvas, &s->ncanvas, (size_t)3 * H * W, 1))
			return tl_seterr(err, TL_ENOMEM, "out of memory for a resize");
		tl_norm none;
		tl_norm_preset(TL_NORM_NONE, &none);
		TL_TRY(resize_to(s, filter, src, sh, sw, ih, iw, &none, TL_DTYPE_U8, s->small, err));
		memset(s->canvas, 0, (size_t)3 * H * W);
		int y0 = (H - ih) / 2, x0 = (W - iw) / 2;
		for (int p = 0; p < 3; p++)
			for (int y = 0; y < ih; y++)
				memcpy(s->canvas + ((size_t)p * H + y0 + y) * W + x0,
				       s->small + ((size_t)p * ih + y) * iw, (size_t)iw);
		src = s->canvas, sh = H, sw = W;
	}
	return resize_to(s, filter, src, sh, sw, H, W, norm, dt, dst, err);
}

void tl_fit_scratch_free(tl_fit_scratch *s)
{
	free(s->f);
	free(s->crop);
	free(s->small);
	free(s->canvas);
	memset(s, 0, sizeof *s);
}
