/* keras.h - Keras VGG16 and MobileNetV2 weight files (.h5) read with
 * libhdf5 and turned into torchvision-named safetensors.
 *
 * The layout is read from the file itself: the root (or model_weights/)
 * "layer_names" attribute lists the layers in order, each layer group's
 * "weight_names" attribute lists its datasets in order (Keras 2 spells
 * them block1_conv1/kernel:0, Keras 1 block1_conv1_W_1:0; only the order
 * and the ranks matter).  Keras 3 .weights.h5 files keep the weights of
 * layer L in layers/L/vars/0, 1, ...
 *
 * Everything in the file is untrusted: a missing attribute or group, a
 * non-float dataset, a wrong rank or shape, a size the file cannot hold
 * or a truncated file is an error naming the file and the layer. */
#ifndef TL_KERAS_H
#define TL_KERAS_H

#include <stdint.h>

#include "nn/safetensors.h"
#include "tl.h"

/* Whether this build reads .h5 files (configure found libhdf5). */
int tl_keras_available(void);

/* One dataset of the file, as the file declares it. */
typedef struct {
	char layer[64];
	char name[128];      /* the weight's name in the file */
	char dtype[12];      /* f32, f64, f16 (float classes only are accepted) */
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	uint64_t numel;
} tl_h5_var;

typedef struct tl_h5_file tl_h5_file;

/* Open path and read its layer/weight table (no tensor data yet).
 * layout() names what was found: "keras2", "keras1" or "keras3". */
tl_status tl_h5_open(tl_h5_file **out, const char *path, tl_err *err);
void tl_h5_close(tl_h5_file *f);
size_t tl_h5_count(const tl_h5_file *f);
const tl_h5_var *tl_h5_var_at(const tl_h5_file *f, size_t i);
const char *tl_h5_layout(const tl_h5_file *f);
/* A shape as h5py and numpy print it: "(3, 3, 64)", "(64,)", "()";
 * truncated to fit buf (n bytes). */
void tl_h5_fmt_shape(int ndim, const int64_t *s, char *buf, size_t n);
/* Read dataset i converted to float32 (numel floats into dst). */
tl_status tl_h5_read_f32(tl_h5_file *f, size_t i, float *dst, tl_err *err);

/* How a Keras file maps onto torchvision names.  TL_KX_CONV_W takes a
 * (kh, kw, in, out) kernel to (out, in, kh, kw); a depthwise (kh, kw, C, 1)
 * kernel is the same move with in = 1, out = C.  TL_KX_VAR is a copy whose
 * values must be >= 0 (a BatchNorm moving variance). */
typedef enum { TL_KX_CONV_W, TL_KX_BIAS, TL_KX_DENSE_W, TL_KX_FC1_W, TL_KX_VAR } tl_kx_kind;
typedef struct {
	char name[48];     /* features.0.weight, classifier.6.bias, features.2.conv.1.1.running_var */
	int ndim;
	int64_t shape[4];  /* torchvision shape: OIHW, (out, in) */
	size_t var;        /* index into the h5 table */
	tl_kx_kind kind;
	int side;          /* TL_KX_FC1_W: block5_pool is side x side */
} tl_kx_tensor;

#define TL_KX_MAX_TENSORS 320 /* MobileNetV2 with its top: 262 */

typedef struct {
	tl_kx_tensor t[TL_KX_MAX_TENSORS];
	int n;
	int full;           /* the ImageNet top is there (VGG16 fc1, fc2,
			       predictions; MobileNetV2 Logits) */
	char model[16];     /* "vgg16" or "mobilenetv2" */
	int64_t classes;    /* with full: the top's outputs (1000 for ImageNet) */
} tl_kx_plan;

/* Map the file's table onto VGG16: the 13 block convolutions must all be
 * there as (3, 3, in, out) kernels chained from 3 input channels with
 * (out) biases; fc1, fc2 and predictions all or none, fc1's input being
 * side*side*channels of block5_conv3.  Widths are taken from the file, so
 * narrow test models map too (tl_kx_check compares with the real ones). */
tl_status tl_keras_plan_vgg16(const tl_h5_file *f, const char *path, tl_kx_plan *plan,
			      tl_err *err);

/* Map the file's table onto torchvision's mobilenet_v2 (Keras
 * applications.MobileNetV2, any alpha): Conv1 + bn_Conv1 -> features.0,
 * expanded_conv_* -> features.1, block_i_* -> features.(i+1) (i = 1..16),
 * Conv_1 + Conv_1_bn -> features.18, and Logits (or predictions) ->
 * classifier.1 when present.  Every layer must be there; convolutions
 * have one weight (a bias is refused, not dropped), kernels chain from 3
 * input channels, each expand is 6x its input, depthwise kernels are
 * (3, 3, C, 1), BatchNorms have gamma, beta, moving_mean and
 * moving_variance (by name where the file names them) of the right
 * width.  Widths are taken from the file. */
tl_status tl_keras_plan_mobilenetv2(const tl_h5_file *f, const char *path, tl_kx_plan *plan,
				    tl_err *err);

/* Whether f's layer names are MobileNetV2's (Conv1, bn_Conv1, Conv_1,
 * expanded_conv_*, block_N_*); otherwise a file is taken for VGG16. */
int tl_keras_is_mobilenetv2(const tl_h5_file *f);

/* The plan of whichever model f holds (tl_keras_is_mobilenetv2). */
tl_status tl_keras_plan(const tl_h5_file *f, const char *path, tl_kx_plan *plan, tl_err *err);

/* MD5 of a whole file as 32 lowercase hex digits (Keras publishes md5s). */
tl_status tl_file_md5(const char *path, char hex[33], uint64_t *size, tl_err *err);

typedef struct {
	char layout[8];
	char md5[33];
	char model[16];    /* vgg16, mobilenetv2 */
	char norm[8];      /* the input normalization the weights expect: caffe, tf */
	int full, n_tensors;
	uint64_t n_params;
} tl_keras_info;

/* Import a Keras VGG16 or MobileNetV2 .h5 (tl_keras_plan) into
 * safetensors at out (atomic; nothing is left at out on failure):
 * kernels HWIO -> OIHW, depthwise (3, 3, C, 1) -> (C, 1, 3, 3), dense
 * (in, out) -> (out, in), VGG16 fc1's rows from Keras' HWC flatten order
 * to torchvision's CHW order.  Metadata: model, normalization (vgg16:
 * caffe; mobilenetv2: tf, with graph keras and bn_epsilon 0.001), source
 * file name, md5 and size, Keras layout, top. */
tl_status tl_keras_import(const char *h5, const char *out, tl_keras_info *info, tl_err *err);

#endif
