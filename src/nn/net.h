/* The nn/ layer is the graph and its parameters: net.c (layers, forward,
 * backward on a backend), models.c (VGG16, SqueezeNet), optim.c,
 * safetensors.c, keras.c (Keras .h5 import), weights_find.c, normfold.c,
 * and device.c, the one place a backend is chosen.  Below it: data/ and
 * the backends (cpu/, ocl/) through backend.h.
 *
 * net.h - a layer graph for CNN transfer learning.
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

#include "backend.h"
#include "tl.h"

typedef enum {
	TL_L_CONV,    /* conv2d (+ bias), optional fused ReLU */
	TL_L_MAXPOOL, /* k x k, stride s, padding p, optional ceil mode */
	TL_L_GAP,     /* global average pool -> [c][1][1] */
	TL_L_FLATTEN, /* [c][h][w] -> [c*h*w][1][1] */
	TL_L_DENSE,   /* fully connected + bias, optional fused ReLU */
	TL_L_DROPOUT, /* inverted dropout, identity when not training */
	TL_L_CONCAT,  /* channel concat of n_in tensors (fire, inception) */
	TL_L_DWCONV,  /* depthwise conv (+ bias), optional fused ReLU */
	TL_L_BN,      /* batch norm + act (TL_ACT_*); running stats when frozen */
	TL_L_LRN,     /* local response norm across channels */
	TL_L_AVGPOOL, /* adaptive average pool to oh x ow */
	TL_L_ADD      /* sum of two tensors of one shape (residual) */
} tl_layer_kind;

#define TL_MAX_IN 4 /* inputs of one layer (inception concatenates four) */

typedef struct {
	tl_layer_kind kind;
	char name[40];  /* Keras-style: block5_conv3, block4_pool, fire9, fc1, predictions */
	char alias[64]; /* other names of the same output, comma-separated:
			 * torchvision module paths (features.14.conv.0), Keras names */
	char pre_act[64]; /* names of this layer's output before its fused
			   * activation (Keras block_13_expand_BN, torchvision
			   * features.14.conv.0.1): -u takes them, --features cannot */
	char unit[16];  /* freeze unit: block1..block5, conv1, fire2..fire9, head */
	int in[TL_MAX_IN], n_in, out;
	int relu; /* conv, dense: TL_ACT_RELU or 0; bn: TL_ACT_* */
	int k, stride, pad, ceil_mode;
	int out_c;
	float drop;
	float eps, mom;            /* bn */
	float alpha, beta, lrn_k;  /* lrn (size in k) */
	int w, b;  /* parameter indices, -1 if none (bn: gamma, beta) */
	int rm, rv; /* bn running mean and variance (buffers), -1 if none */
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
	float *data;      /* the host copy (on CPU backends: the parameters themselves) */
	int layer;
	int loaded; /* set by tl_net_load */
	int buffer; /* running statistics: saved and loaded, never trained */
	int ones;   /* initialized to 1 (batch norm gamma and running variance) */
} tl_param;

#define TL_MAX_UNITS 32

typedef struct {
	char model[24];
	tl_layer *layers;
	int n_layers;
	tl_shape3 *tshape;
	int *consumers;
	int n_tensors;
	tl_param *params;
	int n_params;
	float *param_block; /* host copy of every parameter, params[i].data points in */
	size_t n_param_floats;
	char units[TL_MAX_UNITS][16];      /* freeze units in order, head last */
	char unit_alias[TL_MAX_UNITS][24]; /* another name per unit (Keras, torchvision) */
	int n_units;
	/* on the backend (tl_net_bind): parameters, their gradients, and per
	 * tensor its value, gradient, maxpool argmax or dropout mask */
	tl_backend *be;
	tl_buf *pbuf, *gbuf, *keep, *lbuf, *sbuf; /* params, grads, best copy, labels, loss stats */
	float *stats; /* host copy of sbuf: [max_batch] losses, then [max_batch] int32 argmax */
	int host_params; /* pbuf is param_block itself (CPU backends) */
	int max_batch;
	tl_buf **val, **grad, **aux;
	int *grad_written;
	int *argmax_ok; /* a max pool's argmax (aux) is from its last forward: an
			 * inference forward (maxpool_infer) leaves it stale */
	int training;
	float label_smoothing; /* tl_net_loss's target smoothing (0 = one-hot) */
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
/* Channel concat of n (<= TL_MAX_IN) tensors of one spatial size, in order. */
int tl_net_concat_n(tl_net *net, const char *name, const char *unit, const int *in, int n);
/* Conv with padding pad_before (top, left) and pad_after (bottom, right),
 * as Keras pads stride-2 convolutions; bname NULL: no bias. */
int tl_net_conv_pad(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		    int stride, int pad_before, int pad_after, int relu, const char *wname,
		    const char *bname);
/* Depthwise k x k conv (weight [c][1][k][k]), padding as tl_net_conv_pad;
 * bname NULL: no bias. */
int tl_net_dwconv(tl_net *net, const char *name, const char *unit, int in, int k, int stride,
		  int pad_before, int pad_after, int relu, const char *wname, const char *bname);
/* Batch norm with fused act (TL_ACT_*): parameters PREFIX.weight and
 * PREFIX.bias, buffers PREFIX.running_mean and PREFIX.running_var (the
 * torchvision names); momentum as PyTorch's. */
int tl_net_bn(tl_net *net, const char *name, const char *unit, int in, int act, float eps,
	      float mom, const char *prefix);
/* Local response norm across `size` channels (Caffe's LRN). */
int tl_net_lrn(tl_net *net, const char *name, const char *unit, int in, int size, float alpha,
	       float beta, float k);
/* Max pool padded by pad on every side (padded cells never win). */
int tl_net_maxpool_pad(tl_net *net, const char *name, const char *unit, int in, int k,
		       int stride, int pad, int ceil_mode);
/* Adaptive average pool to oh x ow (PyTorch's AdaptiveAvgPool2d). */
int tl_net_avgpool(tl_net *net, const char *name, const char *unit, int in, int oh, int ow);
/* a + b, two tensors of one shape (a residual connection). */
int tl_net_add(tl_net *net, const char *name, const char *unit, int a, int b);
/* Another name for the layer writing tensor t (appended to its aliases). */
void tl_net_alias(tl_net *net, int t, const char *alias);
/* Another name for a freeze unit (-u accepts either). */
void tl_net_unit_alias(tl_net *net, const char *unit, const char *alias);
/* Allocate the parameter and gradient blocks (zeroed) once the graph is built. */
tl_status tl_net_finalize(tl_net *net, tl_err *err);

/* ---- parameters ---- */
int tl_net_find_param(const tl_net *net, const char *name);
/* The layer named name, by its name or one of its aliases; -1 if none. */
int tl_net_find_layer(const tl_net *net, const char *name);
/* The layer whose pre-activation output NAME names (see tl_layer.pre_act),
 * or -1. */
int tl_net_find_fused(const tl_net *net, const char *name);
/* The freeze unit named name or its alias (index into units), or -1. */
int tl_net_find_unit(const tl_net *net, const char *name);
/* The last layer of unit u (its output), dropout skipped; -1 if none. */
int tl_net_unit_output(const tl_net *net, int u);
/* "block1 block2 ..." with each alias in parentheses ("features.14
 * (block_13)"), into buf (cut at a name if it does not fit). */
void tl_net_units_text(const tl_net *net, char *buf, size_t cap);
/* 1 if parameter i belongs to the head, whose tensors a base's weights file
 * may lack (they are initialized then); 0 for the base's. */
int tl_net_param_in_head(const tl_net *net, int i);
/* Adds names for layer t-1's output before its activation. */
void tl_net_pre_act_alias(tl_net *net, int t, const char *names);
/* Load every parameter present in the safetensors file (checking shapes);
 * with require_all, a missing parameter is an error naming it; otherwise
 * missing ones are left for tl_net_init.  Names the file and tensor.
 * *norm (may be NULL) gets the input normalization the file declares
 * (metadata "normalization", or a Caffe/BGR "input" note), -1 if none. */
tl_status tl_net_load(tl_net *net, const char *path, int require_all, int *norm, tl_err *err);
/* TL_EFORMAT naming `what` (the weights file) and the first tensor with a
 * NaN or Inf, with how many of its values are not finite; reads the host
 * copy (call after loading, before training changes it). */
tl_status tl_net_check_finite(const tl_net *net, const char *what, tl_err *err);
/* Non-finite values among the parameters on the backend. */
size_t tl_net_count_nonfinite(tl_net *net);
/* Initialize parameters not loaded: conv He-normal with zero bias, dense
 * weights and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's
 * nn.Linear (small logits on large pretrained features); deterministic. */
void tl_net_init(tl_net *net, uint64_t seed, int only_unloaded);
/* Write all parameters as safetensors (atomic), with string metadata;
 * a bound net's parameters are fetched from the backend first. */
tl_status tl_net_save(tl_net *net, const char *path, const char *const *meta_kv, size_t n_meta,
		      tl_err *err);
/* Make unit and every unit after it trainable, the rest frozen.  NULL or
 * "all": everything trainable; "head": only the head.  unit may be a unit's
 * alias, or a layer's name or alias (then that layer and every later one
 * train).  Error names the known units when it is none of these. */
tl_status tl_net_unfreeze_from(tl_net *net, const char *unit, tl_err *err);
int tl_net_first_trainable(const tl_net *net);
/* Parameters (batch norm running stats are buffers and not counted). */
size_t tl_net_count_params(const tl_net *net, int trainable_only);

/* ---- running: the net on a backend ---- */
/* Put the net on be for batches of up to max_batch: allocates every
 * activation, gradient and parameter buffer there (checking the device's
 * memory first: the error says how much is needed and which batch fits),
 * lets the backend reserve its conv workspace, and copies the parameters
 * over.  On the CPU backends the parameter buffer becomes param_block
 * itself, so host code and ops share one copy.  Rebinding frees the old. */
tl_status tl_net_bind(tl_net *net, tl_backend *be, int max_batch, tl_err *err);
/* Bytes tl_net_bind would allocate on the backend for max_batch. */
size_t tl_net_device_bytes(const tl_net *net, int max_batch);
/* After host code changed params[].data (load, init, a restore): copy the
 * host parameters to the backend (nothing on CPU backends). */
void tl_net_push_params(tl_net *net);
/* Fetch the backend's parameters into params[].data (nothing on CPU). */
tl_status tl_net_pull_params(tl_net *net, tl_err *err);
/* Best-weights snapshot on the backend: keep copies the parameters to a
 * second buffer, restore copies them back (device to device). */
void tl_net_keep(tl_net *net);
void tl_net_restore(tl_net *net);
/* The tensor t of the current batch ([n][c][h][w]) and its gradient. */
tl_mem tl_net_val(const tl_net *net, int t);
tl_mem tl_net_grad(const tl_net *net, int t);
/* Parameter i's value and gradient on the backend. */
tl_mem tl_net_param(const tl_net *net, int i);
tl_mem tl_net_param_grad(const tl_net *net, int i);
/* Copy n rows of tensor t from the host (the input batch is t = 0). */
void tl_net_set(tl_net *net, int t, const float *src, int n);
/* Copy n rows of tensor t to the host. */
tl_status tl_net_get(tl_net *net, int t, float *dst, int n, tl_err *err);
/* Run layers [from, to) on a batch of n; the input of layer `from` must
 * already hold the batch (tl_net_set). */
void tl_net_forward(tl_net *net, int n, int from, int to);
int tl_net_out_size(const tl_net *net, int tensor);
/* Softmax cross-entropy of the output against labels[n], smoothed by
 * net->label_smoothing (backend.h): *loss gets the summed loss of the batch, pred (may be NULL) each sample's argmax class;
 * with grad, the gradient of the batch mean is left for tl_net_backward.
 * Waits for the backend; its status is the backend's. */
tl_status tl_net_loss(tl_net *net, int n, const int32_t *labels, int grad, double *loss,
		      int32_t *pred, tl_err *err);
/* Backpropagate from the output gradient tl_net_loss left through every
 * layer that needs it, filling the gradients of trainable parameters. */
void tl_net_backward(tl_net *net, int n);

#endif
