/* image.h - per-record image work: resize, normalize, store as a dtype.
 *
 * A CIFAR record is 3 planes (R, G, B) of H*W bytes.  Everything here works
 * on one record at a time so callers can parallelize over records. */
#ifndef TL_IMAGE_H
#define TL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

typedef enum { TL_DTYPE_U8 = 0, TL_DTYPE_F16 = 1, TL_DTYPE_F32 = 2 } tl_dtype;

/* Input normalization presets (what pretrained weights expect). */
typedef enum {
	TL_NORM_NONE = 0,  /* RGB, 0..255 unchanged */
	TL_NORM_CAFFE = 1, /* BGR, 0..255 minus ImageNet mean (Keras VGG16) */
	TL_NORM_TORCH = 2, /* RGB, /255, minus mean, over std (torchvision) */
	TL_NORM_TF = 3     /* RGB, /127.5 - 1 (Keras "tf" mode) */
} tl_norm_kind;

/* out[c] = (in[src_c] * scale - mean[c]) / std[c], with c the output channel
 * and src_c = bgr ? 2 - c : c. */
typedef struct {
	tl_norm_kind kind;
	int bgr;
	float scale;
	float mean[3];
	float std[3];
} tl_norm;

typedef enum {
	TL_FILTER_AUTO = 0,     /* area when shrinking, bilinear when enlarging */
	TL_FILTER_AREA = 1,     /* antialiased box filter with fractional coverage */
	TL_FILTER_BILINEAR = 2, /* half-pixel centres, edge clamp (= PyTorch, OpenCV) */
	TL_FILTER_NEAREST = 3
} tl_filter;

size_t tl_dtype_size(tl_dtype dt);
const char *tl_dtype_name(tl_dtype dt);
/* Parse a name; return 0 on success, -1 if unknown. */
int tl_dtype_parse(const char *s, tl_dtype *out);

void tl_norm_preset(tl_norm_kind kind, tl_norm *out);
const char *tl_norm_name(tl_norm_kind kind);
int tl_norm_parse(const char *s, tl_norm_kind *out);

const char *tl_filter_name(tl_filter f);
int tl_filter_parse(const char *s, tl_filter *out);

/* One axis of a separable resize: output i = sum_k w[i*taps+k] * in[idx[i*taps+k]]. */
typedef struct {
	int n_in, n_out, taps;
	int *idx;
	float *w;
} tl_resize_axis;

typedef struct {
	tl_resize_axis y, x;
	tl_filter filter; /* the filter actually used (never AUTO) */
} tl_resize;

/* Plan a resize from in_h x in_w to out_h x out_w.  AUTO picks area when
 * an axis shrinks and bilinear when it grows (per axis).  Equal sizes give
 * a single unit tap, so the identity resize is exact. */
tl_status tl_resize_init(tl_resize *rz, int in_h, int in_w, int out_h, int out_w,
			 tl_filter filter, tl_err *err);
void tl_resize_free(tl_resize *rz);

/* Scratch floats tl_image_convert needs per call (per thread). */
size_t tl_image_scratch_floats(const tl_resize *rz);

/* Convert one record.
 * src: u8 [3][in_h][in_w], planes R,G,B.
 * dst: dtype [3][out_h][out_w], channel order and values per norm;
 *      for TL_DTYPE_U8 the resized pixels are rounded and stored in the
 *      norm's channel order without normalization (done at load time).
 * scratch: tl_image_scratch_floats(rz) floats. */
void tl_image_convert(const uint8_t *src, const tl_resize *rz, const tl_norm *norm,
		      tl_dtype dt, void *dst, float *scratch);

/* Bring a stored record back to 8-bit RGB, interleaved [h][w][3] (PPM order).
 * src: dtype [3][h][w] as written by tl_image_convert with the same norm. */
void tl_image_to_rgb8(const void *src, tl_dtype dt, const tl_norm *norm, int h, int w,
		      uint8_t *rgb);

/* Normalize a stored record into floats: dst [3][h][w] f32 ready for a net. */
void tl_image_to_f32(const void *src, tl_dtype dt, const tl_norm *norm, size_t plane,
		     float *dst);

#endif
