/* keras.h - Keras VGG16 and MobileNetV2 weight files (.h5) turned into
 * torchvision-named safetensors.
 *
 * The file is parsed by libhdf5 in a sandboxed child (nn/h5file.h), which
 * hands back a validated table of datasets (layer, name, dtype, shape)
 * with their float32 values; this module maps that table onto a network
 * and writes it.  Everything in the file is untrusted: a missing layer, a
 * wrong rank or shape is an error naming the file and the layer. */
#ifndef TL_KERAS_H
#define TL_KERAS_H

#include <stdint.h>

#include "nn/h5file.h"
#include "nn/safetensors.h"
#include "tl.h"

/* Whether this build reads .h5 files (configure found libhdf5 and
 * libseccomp to sandbox it). */
int tl_keras_available(void);

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

typedef struct {
	char layout[8];
	char md5[33];      /* of the bytes parsed: Keras publishes md5s */
	char xxh3[17];     /* the same bytes' XXH3-64, what a lookup compares */
	uint64_t size;     /* their number */
	char model[16];    /* vgg16, mobilenetv2 */
	char norm[8];      /* the input normalization the weights expect: caffe, tf */
	int full, n_tensors;
	uint64_t n_params;
	/* 1: the file has the md5 Keras publishes for its name; 0: it has the
	 * name of a published file but other bytes (fine-tuned, another
	 * version, damaged in a way the reader did not see); -1: no md5 is
	 * published for the name */
	int official;
	char official_md5[33]; /* the published one, when official >= 0 */
	char note[200];        /* official == 0: what to say about it */
} tl_keras_info;

/* The md5 Keras publishes (keras.applications' file_hash) for the file
 * named base, or NULL when it publishes none for that name. */
const char *tl_keras_official_md5(const char *base);

/* Import a Keras VGG16 or MobileNetV2 .h5 (tl_keras_plan) into
 * safetensors at out (atomic; nothing is left at out on failure):
 * kernels HWIO -> OIHW, depthwise (3, 3, C, 1) -> (C, 1, 3, 3), dense
 * (in, out) -> (out, in), VGG16 fc1's rows from Keras' HWC flatten order
 * to torchvision's CHW order.  Metadata: model, normalization (vgg16:
 * caffe; mobilenetv2: tf, with graph keras and bn_epsilon 0.001), source
 * file name, source_md5, source_xxh3 and source_size (of the bytes that
 * were parsed), Keras layout, top. */
tl_status tl_keras_import(const char *h5, const char *out, tl_keras_info *info, tl_err *err);

#endif
