/* registry.h - the one table of networks tlkit builds.
 *
 * One row per network: its name (what checkpoints and weights metadata
 * record) and the other spellings -m takes (torchvision's mobilenet_v2,
 * squeezenet1_1), its builder, the model configuration it starts from,
 * tltrain's per-network settings, the file names its weights are looked
 * for under (safetensors, Keras .h5, torchvision .pth), how tlweights tells its tensors
 * from another network's, its published ImageNet classifier, and the
 * smallest square input it takes.  Units and their torchvision, Keras
 * and Caffe spellings are declared by the builder on the net it builds
 * (tl_net_unit_alias), the one place that knows the graph.
 *
 * Adding a network: a row in registry.c and its builder. */
#ifndef TL_NN_REGISTRY_H
#define TL_NN_REGISTRY_H

#include "nn/models.h"

/* A setting's text value by its key (train/settings.c's keys). */
typedef struct {
	const char *key, *val;
} tl_kv;

/* One tensor of a network's published ImageNet classifier: NAME.weight
 * [out][in] and NAME.bias [out].  out -1: the file's number of classes;
 * in 0: the base's output at 224x224 as the default head takes it (VGG16:
 * flattened). */
typedef struct {
	const char *name;
	int out, in;
} tl_model_fc;

typedef struct {
	const char *name;    /* canonical: checkpoints and metadata record it */
	const char *aliases; /* other names -m takes, comma-separated ("" none) */
	tl_status (*build)(const tl_model_cfg *cfg, tl_net **out, tl_err *err);
	/* tl_model_defaults: input size, head (flatten or gap, hidden sizes,
	 * dropout) */
	int size, flatten, hidden[2], n_hidden;
	float dropout;
	const tl_kv *train;          /* tltrain defaults ({NULL} ends), "unit" among them */
	const char *const *weights;  /* safetensors names searched ({NULL}: none) */
	const char *const *keras;    /* Keras .h5 names in ~/.keras/models */
	/* tensors that tell a file is this network's (tlweights check without
	 * -m): comma-separated names that must be there, "!NAME" absent, and
	 * "NAME:k=K" a 4-d weight whose kernel is K; NULL: never guessed */
	const char *guess;
	const tl_model_fc *classifier; /* the ImageNet classifier ({NULL} ends) */
	int keras_graph;               /* has a Keras graph of its own (cfg.keras, tl_model_graph_of) */
	int min_input;                 /* the smallest square input it takes */
	const char *const *torch_hub;  /* torchvision .pth names in the torch hub cache ({NULL}: none) */
} tl_model_info;

/* The row of name or one of its aliases; NULL if none. */
const tl_model_info *tl_model_find(const char *name);
/* Rows in order: i in [0, tl_model_count()). */
int tl_model_count(void);
const tl_model_info *tl_model_at(int i);
/* "vgg16, squeezenet, ..., or baseline": every canonical name. */
const char *tl_model_list(void);
/* The setting `key` of model's tltrain defaults, or NULL. */
const char *tl_model_default(const char *model, const char *key);

#endif
