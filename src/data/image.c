/* image.c - resize, normalize and store one record (see image.h). */
#include "data/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/f16.h"

size_t tl_dtype_size(tl_dtype dt)
{
	return dt == TL_DTYPE_U8 ? 1 : dt == TL_DTYPE_F16 ? 2 : 4;
}

static const char *const dtype_names[] = {"u8", "f16", "f32"};
static const char *const norm_names[] = {"none", "caffe", "torch", "tf"};
static const char *const filter_names[] = {"auto", "area", "bilinear", "nearest"};

static int parse_name(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *tl_dtype_name(tl_dtype dt)
{
	return (unsigned)dt < 3 ? dtype_names[dt] : "?";
}
int tl_dtype_parse(const char *s, tl_dtype *out)
{
	int i = parse_name(s, dtype_names, 3);
	if (i < 0)
		return -1;
	*out = (tl_dtype)i;
	return 0;
}
const char *tl_norm_name(tl_norm_kind k)
{
	return (unsigned)k < 4 ? norm_names[k] : "?";
}
int tl_norm_parse(const char *s, tl_norm_kind *out)
{
	int i = parse_name(s, norm_names, 4);
	if (i < 0)
		return -1;
	*out = (tl_norm_kind)i;
	return 0;
}
const char *tl_filter_name(tl_filter f)
{
	return (unsigned)f < 4 ? filter_names[f] : "?";
}
int tl_filter_parse(const char *s, tl_filter *out)
{
	int i = parse_name(s, filter_names, 4);
	if (i < 0)
		return -1;
	*out = (tl_filter)i;
	return 0;
}

void tl_norm_preset(tl_norm_kind kind, tl_norm *n)
{
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->scale = 1.0f;
	for (int c = 0; c < 3; c++)
		n->std[c] = 1.0f;
	switch (kind) {
	case TL_NORM_CAFFE: /* Keras applications.vgg16.preprocess_input */
		n->bgr = 1;
		n->mean[0] = 103.939f;
		n->mean[1] = 116.779f;
		n->mean[2] = 123.68f;
		break;
	case TL_NORM_TORCH:
		n->scale = 1.0f / 255.0f;
		n->mean[0] = 0.485f, n->mean[1] = 0.456f, n->mean[2] = 0.406f;
		n->std[0] = 0.229f, n->std[1] = 0.224f, n->std[2] = 0.225f;
		break;
	case TL_NORM_TF:
		n->scale = 1.0f / 127.5f;
		n->mean[0] = n->mean[1] = n->mean[2] = 1.0f;
		break;
	case TL_NORM_NONE:
		break;
	}
}

/* Taps for one axis.  Source coordinate of output i's centre is
 * (i + 0.5) * in/out - 0.5 (half-pixel centres). */
static tl_status axis_init(tl_resize_axis *a, int n_in, int n_out, tl_filter f, tl_err *err)
{
	double ratio = (double)n_in / n_out;
	a->n_in = n_in;
	a->n_out = n_out;
	if (n_in == n_out || f == TL_FILTER_NEAREST)
		a->taps = 1;
	else if (f == TL_FILTER_BILINEAR)
		a->taps = 2;
	else /* area: a window of `ratio` source pixels can touch ceil(ratio)+1 */
		a->taps = (int)ceil(ratio) + 1;
	a->idx = calloc((size_t)n_out * a->taps, sizeof *a->idx);
	a->w = calloc((size_t)n_out * a->taps, sizeof *a->w);
	if (!a->idx || !a->w)
		return tl_seterr(err, TL_ENOMEM, "resize: out of memory for %d taps", a->taps);
	for (int i = 0; i < n_out; i++) {
		int *idx = a->idx + (size_t)i * a->taps;
		float *w = a->w + (size_t)i * a->taps;
		if (n_in == n_out) {
			idx[0] = i;
			w[0] = 1.0f;
		} else if (f == TL_FILTER_NEAREST) {
			int s = (int)floor((i + 0.5) * ratio);
			idx[0] = s < n_in ? s : n_in - 1;
			w[0] = 1.0f;
		} else if (f == TL_FILTER_BILINEAR) {
			double s = (i + 0.5) * ratio - 0.5;
			if (s < 0)
				s = 0;
			int s0 = (int)floor(s);
			if (s0 > n_in - 1)
				s0 = n_in - 1;
			int s1 = s0 + 1 < n_in ? s0 + 1 : n_in - 1;
			double t = s - s0;
			idx[0] = s0, w[0] = (float)(1.0 - t);
			idx[1] = s1, w[1] = (float)t;
		} else { /* area: overlap of [i*ratio, (i+1)*ratio) with each source pixel */
			double lo = i * ratio, hi = (i + 1) * ratio;
			int first = (int)floor(lo);
			for (int k = 0; k < a->taps; k++) {
				int s = first + k;
				double ov = 0;
				if (s < n_in) {
					double a0 = s > lo ? s : lo, a1 = s + 1 < hi ? s + 1 : hi;
					ov = a1 > a0 ? a1 - a0 : 0;
				}
				idx[k] = s < n_in ? s : n_in - 1;
				w[k] = (float)(ov / ratio);
			}
		}
	}
	return TL_OK;
}

tl_status tl_resize_init(tl_resize *rz, int in_h, int in_w, int out_h, int out_w,
			 tl_filter filter, tl_err *err)
{
	memset(rz, 0, sizeof *rz);
	if (in_h <= 0 || in_w <= 0 || out_h <= 0 || out_w <= 0)
		return tl_seterr(err, TL_EUSAGE, "resize: bad size %dx%d -> %dx%d", in_h, in_w,
				 out_h, out_w);
	tl_filter fy = filter, fx = filter;
	if (filter == TL_FILTER_AUTO) {
		fy = out_h < in_h ? TL_FILTER_AREA : TL_FILTER_BILINEAR;
		fx = out_w < in_w ? TL_FILTER_AREA : TL_FILTER_BILINEAR;
	}
	rz->filter = filter == TL_FILTER_AUTO
			     ? (out_h * out_w < in_h * in_w ? TL_FILTER_AREA : TL_FILTER_BILINEAR)
			     : filter;
	tl_status st = axis_init(&rz->y, in_h, out_h, fy, err);
	if (st == TL_OK)
		st = axis_init(&rz->x, in_w, out_w, fx, err);
	if (st != TL_OK)
		tl_resize_free(rz);
	return st;
}

void tl_resize_free(tl_resize *rz)
{
	free(rz->y.idx);
	free(rz->y.w);
	free(rz->x.idx);
	free(rz->x.w);
	memset(rz, 0, sizeof *rz);
}

size_t tl_image_scratch_floats(const tl_resize *rz)
{
	/* horizontal pass [in_h][out_w] + one output plane [out_h][out_w] */
	return (size_t)rz->y.n_in * rz->x.n_out + (size_t)rz->y.n_out * rz->x.n_out;
}

/* Resize one u8 plane [in_h][in_w] into floats [out_h][out_w]. */
static void resize_plane(const uint8_t *src, const tl_resize *rz, float *tmp, float *out)
{
	const tl_resize_axis *ax = &rz->x, *ay = &rz->y;
	for (int r = 0; r < ay->n_in; r++) {
		const uint8_t *row = src + (size_t)r * ax->n_in;
		float *t = tmp + (size_t)r * ax->n_out;
		for (int j = 0; j < ax->n_out; j++) {
			const int *idx = ax->idx + (size_t)j * ax->taps;
			const float *w = ax->w + (size_t)j * ax->taps;
			float acc = 0;
			for (int k = 0; k < ax->taps; k++)
				acc += w[k] * row[idx[k]];
			t[j] = acc;
		}
	}
	for (int i = 0; i < ay->n_out; i++) {
		const int *idx = ay->idx + (size_t)i * ay->taps;
		const float *w = ay->w + (size_t)i * ay->taps;
		float *o = out + (size_t)i * ax->n_out;
		if (ay->taps == 1 && w[0] == 1.0f) {
			memcpy(o, tmp + (size_t)idx[0] * ax->n_out, sizeof(float) * ax->n_out);
			continue;
		}
		for (int j = 0; j < ax->n_out; j++)
			o[j] = 0;
		for (int k = 0; k < ay->taps; k++) {
			const float *t = tmp + (size_t)idx[k] * ax->n_out;
			float wk = w[k];
			if (wk == 0)
				continue;
			for (int j = 0; j < ax->n_out; j++)
				o[j] += wk * t[j];
		}
	}
}

void tl_image_convert(const uint8_t *src, const tl_resize *rz, const tl_norm *norm,
		      tl_dtype dt, void *dst, float *scratch)
{
	size_t in_plane = (size_t)rz->y.n_in * rz->x.n_in;
	size_t plane = (size_t)rz->y.n_out * rz->x.n_out;
	float *tmp = scratch, *res = scratch + (size_t)rz->y.n_in * rz->x.n_out;
	for (int c = 0; c < 3; c++) {
		int sc = norm->bgr ? 2 - c : c;
		resize_plane(src + sc * in_plane, rz, tmp, res);
		if (dt == TL_DTYPE_U8) {
			uint8_t *o = (uint8_t *)dst + c * plane;
			for (size_t i = 0; i < plane; i++) {
				float v = res[i] + 0.5f;
				o[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
			}
			continue;
		}
		float s = norm->scale / norm->std[c], m = norm->mean[c] / norm->std[c];
		for (size_t i = 0; i < plane; i++)
			res[i] = res[i] * s - m;
		if (dt == TL_DTYPE_F32)
			memcpy((float *)dst + c * plane, res, plane * sizeof(float));
		else
			tl_f32_to_f16_n((uint16_t *)dst + c * plane, res, plane);
	}
}

void tl_image_to_f32(const void *src, tl_dtype dt, const tl_norm *norm, size_t plane,
		     float *dst)
{
	for (int c = 0; c < 3; c++) {
		float *o = dst + c * plane;
		if (dt == TL_DTYPE_F32) {
			memcpy(o, (const float *)src + c * plane, plane * sizeof(float));
		} else if (dt == TL_DTYPE_F16) {
			tl_f16_to_f32_n(o, (const uint16_t *)src + c * plane, plane);
		} else {
			const uint8_t *s8 = (const uint8_t *)src + c * plane;
			float s = norm->scale / norm->std[c], m = norm->mean[c] / norm->std[c];
			for (size_t i = 0; i < plane; i++)
				o[i] = s8[i] * s - m;
		}
	}
}

void tl_image_to_rgb8(const void *src, tl_dtype dt, const tl_norm *norm, int h, int w,
		      uint8_t *rgb)
{
	size_t plane = (size_t)h * w;
	for (int c = 0; c < 3; c++) {
		int rc = norm->bgr ? 2 - c : c; /* stored channel c holds colour rc */
		for (size_t i = 0; i < plane; i++) {
			float v;
			if (dt == TL_DTYPE_U8)
				v = ((const uint8_t *)src)[c * plane + i];
			else if (dt == TL_DTYPE_F16)
				v = tl_f16_to_f32(((const uint16_t *)src)[c * plane + i]);
			else
				v = ((const float *)src)[c * plane + i];
			if (dt != TL_DTYPE_U8)
				v = (v * norm->std[c] + norm->mean[c]) / norm->scale;
			long q = lrintf(v);
			rgb[i * 3 + rc] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
		}
	}
}
