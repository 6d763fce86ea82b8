/* net.h - a layer graph for CNN transfer learning.
 *
 * Tensors are numbered: 0 is the network input, every layer writes one new
 * tensor.  Layers are stored in topological order (as built), so forward
 * runs them in order and backward in reverse.  Parameters live in one
 * allocation (and their gradients in another), pointed into from a table
 * whose names are the torchvision/timm tensor names.
 *
 * Freezing: a frozen layer computes no parameter gradients, and layers
 * before the first trainable one compute nothing at all in backward (no
 * input gradients are propagated below it). */
#ifndef TL_NET_H
#define TL_NET_H

#include <stdint.h>

#include "cpu/ops.h"
#include "tl.h"

typedef enum {
	TL_L_CONV,    /* conv2d + bias, optional fused ReLU */
	TL_L_MAXPOOL, /* k x k, stride s, no padding, optional ceil mode */
	TL_L_GAP,     /* global average pool -> [c][1][1] */
	TL_L_FLATTEN, /* [c][h][w] -> [c*h*w][1][1] */
	TL_L_DENSE,   /* fully connected + bias, optional fused ReLU */
	TL_L_DROPOUT, /* inverted dropout, identity when not training */
	TL_L_CONCAT   /* channel concat of two tensors (fire modules) */
} tl_layer_kind;

typedef struct {
	tl_layer_kind kind;
	char name[40]; /* Keras-style: block5_conv3, block4_pool, fire9, fc1, predictions */
	char unit[16]; /* freeze unit: block1..block5, conv1, fire2..fire9, head */
	int in[2], n_in, out;
	int relu;
	int k, stride, pad, ceil_mode;
	int out_c;
	float drop;
	int w, b; /* parameter indices, -1 if none */
	int trainable;
} tl_layer;

typedef struct {
	int c, h, w;
} tl_shape3;

typedef struct {
	char name[64];
	int ndim;
	int64_t shape[4];
	size_t size, off; /* floats, offset into the blocks */
	float *data, *grad;
	int layer;
	int loaded; /* set by tl_net_load */
} tl_param;

typedef struct {
	char model[24];
	tl_layer *layers;
	int n_layers;
	tl_shape3 *tshape;
	int *consumers;
	int n_tensors;
	tl_param *params;
	int n_params;
	float *param_block, *grad_block;
	size_t n_param_floats;
	char units[24][16]; /* freeze units in order, head last */
	int n_units;
	/* batch buffers (tl_net_alloc) */
	int max_batch;
	float **val, **grad;
	int32_t **argmax;
	float **mask;
	int *grad_written;
	int training;
	uint64_t rng;
} tl_net;

/* ---- building ---- */
tl_net *tl_net_new(const char *model, int c, int h, int w);
void tl_net_free(tl_net *net);
/* Each adds a layer reading tensor `in` and returns its output tensor id
 * (or -1 if the shapes do not work, which is a programming error). */
int tl_net_conv(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		int stride, int pad, int relu, const char *wname, const char *bname);
int tl_net_maxpool(tl_net *net, const char *name, const char *unit, int in, int k, int stride,
		   int ceil_mode);
int tl_net_gap(tl_net *net, const char *name, const char *unit, int in);
int tl_net_flatten(tl_net *net, const char *name, const char *unit, int in);
int tl_net_dense(tl_net *net, const char *name, const char *unit, int in, int out, int relu,
		 const char *wname, const char *bname);
int tl_net_dropout(tl_net *net, const char *name, const char *unit, int in, float p);
int tl_net_concat(tl_net *net, const char *name, const char *unit, int a, int b);
/* Allocate the parameter and gradient blocks (zeroed) once the graph is built. */
tl_status tl_net_finalize(tl_net *net, tl_err *err);

/* ---- parameters ---- */
int tl_net_find_param(const tl_net *net, const char *name);
int tl_net_find_layer(const tl_net *net, const char *name);
/* Load every parameter present in the safetensors file (checking shapes);
 * with require_all, a missing parameter is an error naming it; otherwise
 * missing ones are left for tl_net_init.  Names the file and tensor.
 * *norm (may be NULL) gets the input normalization the file declares
 * (metadata "normalization", or a Caffe/BGR "input" note), -1 if none. */
tl_status tl_net_load(tl_net *net, const char *path, int require_all, int *norm, tl_err *err);
/* Initialize parameters not loaded: conv He-normal with zero bias, dense
 * weights and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's
 * nn.Linear (small logits on large pretrained features); deterministic. */
void tl_net_init(tl_net *net, uint64_t seed, int only_unloaded);
/* Write all parameters as safetensors (atomic), with string metadata. */
tl_status tl_net_save(const tl_net *net, const char *path, const char *const *meta_kv,
		      size_t n_meta, tl_err *err);
/* Make unit and every unit after it trainable, the rest frozen.  NULL or
 * "all": everything trainable; "head": only the head.  Error names the
 * known units when unit is not one of them. */
tl_status tl_net_unfreeze_from(tl_net *net, const char *unit, tl_err *err);
int tl_net_first_trainable(const tl_net *net);
size_t tl_net_count_params(const tl_net *net, int trainable_only);

/* ---- running ---- */
tl_status tl_net_alloc(tl_net *net, int max_batch, tl_err *err);
/* Run layers [from, to) on a batch of n; the input of layer `from` must
 * already hold the batch (tensor 0 for from = 0: see tl_net_input). */
void tl_net_forward(tl_net *net, tl_cpu_ops *be, int n, int from, int to);
float *tl_net_input(tl_net *net);
float *tl_net_output(tl_net *net); /* the last tensor: [n][classes] */
int tl_net_out_size(const tl_net *net, int tensor);
/* Backpropagate from dlogits ([n][classes], copied) through every layer
 * that needs it, filling the gradients of trainable parameters. */
void tl_net_backward(tl_net *net, tl_cpu_ops *be, int n, const float *dlogits);

#endif
