/* models.h - building the networks of the registry (nn/registry.h: VGG16,
 * SqueezeNet 1.1, GoogLeNet (BVLC), AlexNet, MobileNetV2 and a small
 * baseline CNN) with a configurable classification head; tensor names as
 * torchvision/timm (GoogLeNet: Caffe's) so published weights load as
 * they are.  A model is named by its registry name or an alias. */
#ifndef TL_MODELS_H
#define TL_MODELS_H

#include "nn/net.h"

#define TL_MAX_HIDDEN 4

typedef struct {
	const char *model;   /* a registry name (tl_model_defaults sets the canonical one) */
	int height, width;   /* input size */
	int width_div;       /* divide every base width (1 = the real model; tests use more) */
	int flatten;         /* head: 1 = flatten, 0 = global average pool */
	int hidden[TL_MAX_HIDDEN]; /* dense layers before the classifier */
	int n_hidden;
	float dropout;       /* after each hidden layer */
	int n_classes;
	int keras;           /* mobilenetv2: Keras' graph (weights metadata graph=keras):
			      * stride-2 convs padded 0 before / 1 after on even
			      * sizes, batch norm eps 1e-3, momentum 0.001 */
	int imagenet_head;   /* the network's own 1000-class ImageNet classifier
			      * instead of the head above (squeezenet, googlenet) */
} tl_model_cfg;

/* max(1, w / div): a base width divided by cfg.width_div. */
static inline int tl_wdiv(int w, int div)
{
	int v = w / div;
	return v < 1 ? 1 : v;
}

/* The registry row's defaults (vgg16: 32x32, flatten + one hidden 256 +
 * dropout 0.5, the Keras notebooks' head; squeezenet: gap, no hidden
 * layer), 10 classes; cfg->model becomes the canonical name of model or
 * its alias (an unknown name stays, with vgg16's defaults). */
void tl_model_defaults(tl_model_cfg *cfg, const char *model);

/* Build (and finalize) the network; parameters are zero until loaded or
 * initialized.  Fails naming the model if it is unknown or the input is
 * too small for it. */
tl_status tl_model_build(const tl_model_cfg *cfg, tl_net **out, tl_err *err);

/* Set cfg->keras from the weights file's metadata: graph=keras (a
 * MobileNetV2 imported from Keras by tlweights) or keras=1 (a tltrain run
 * of one); models without a Keras graph of their own ignore it. */
tl_status tl_model_graph_of(const char *weights, tl_model_cfg *cfg, tl_err *err);

/* Whether name is a model tl_model_build knows (by name or alias). */
int tl_model_known(const char *name);

/* Parse "256" or "512,256" or "none" into hidden sizes; -1 on error. */
int tl_model_parse_head(const char *s, tl_model_cfg *cfg);

#endif
