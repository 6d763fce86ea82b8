/* builders.h - each network's builder (models.c), for registry.c's
 * table.  Each builds cfg's network and its head and finalizes it, or fails with TL_EUSAGE naming the model (a graph too deep for the
 * input ends its message with TL_TOO_SMALL). */
#ifndef TL_NN_BUILDERS_H
#define TL_NN_BUILDERS_H

#include "nn/models.h"

#define TL_TOO_SMALL "is too small for the network"

tl_status tl_build_vgg16(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
tl_status tl_build_squeezenet(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
tl_status tl_build_googlenet(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
tl_status tl_build_alexnet(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
tl_status tl_build_mobilenetv2(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
tl_status tl_build_baseline(const tl_model_cfg *cfg, tl_net **out, tl_err *err);

/* The names a network gives its ImageNet head's places, as aliases of
 * tlkit's head layers (NULL: none). */
typedef struct {
	const char *gap;        /* the global average pool (Keras' name is always added) */
	const char *dropout;    /* the dropout before the classifier, kept when no hidden layer */
	const char *classifier; /* the classifier (predictions), when no hidden layer */
	int dropout_first;      /* 1: a dropout before predictions when no hidden layer */
	/* the network's own 1000-class ImageNet classifier on tensor t, with
	 * its published weights' names (cfg->imagenet_head); NULL: none */
	int (*imagenet)(tl_net *net, int t);
} tl_head_names;

/* The head on tensor t (flatten or gap, hidden dense+ReLU+dropout layers,
 * predictions), then tl_net_finalize; on failure net is freed. */
tl_status tl_model_finish(tl_net *net, const tl_model_cfg *cfg, const tl_head_names *hn, int t,
			  tl_net **out, tl_err *err);

#endif
