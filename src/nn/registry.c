/* registry.c - the table of networks (see registry.h). */
#include "nn/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "nn/builders.h"

static const tl_kv vgg16_train[] = {{"unit", "block5"}, {NULL, NULL}};
static const tl_kv squeezenet_train[] = {{"unit", "fire9"}, {"lr2", "1e-4"}, {NULL, NULL}};
static const tl_kv googlenet_train[] = {
	{"unit", "inception_3a"}, {"opt", "sgd"},	   {"nesterov", "1"},
	{"lr", "0.01"},		  {"lr2", "0.01"},	   {"warmup_epochs", "0"},
	{"schedule", "onecycle"}, {"label_smoothing", "0.1"}, {NULL, NULL}};
static const tl_kv alexnet_train[] = {{"unit", "features.6"}, {"lr2", "1e-4"}, {NULL, NULL}};
static const tl_kv mobilenetv2_train[] = {{"unit", "features.14"}, {"lr2", "1e-4"}, {NULL, NULL}};
static const tl_kv baseline_train[] = {{"strategy", "scratch"}, {NULL, NULL}};

static const char *const vgg16_w[] = {
	"vgg16.safetensors", "vgg16.tv_in1k.safetensors", "vgg16-imagenet.safetensors",
	"vgg16_weights_tf_dim_ordering_tf_kernels_notop.safetensors",
	"vgg16_weights_tf_dim_ordering_tf_kernels.safetensors", NULL};
static const char *const vgg16_k[] = {"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
				      "vgg16_weights_tf_dim_ordering_tf_kernels.h5", NULL};
static const char *const squeezenet_w[] = {"squeezenet1_1-imagenet.safetensors",
					   "squeezenet1_1.safetensors", NULL};
static const char *const googlenet_w[] = {"googlenet-imagenet.safetensors",
					  "bvlc_googlenet.safetensors", "googlenet.safetensors", NULL};
static const char *const alexnet_w[] = {"alexnet-imagenet.safetensors", "alexnet.safetensors",
					NULL};
static const char *const mobilenetv2_w[] = {
	"mobilenetv2-imagenet.safetensors", "mobilenet_v2.safetensors",
	"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.safetensors",
	"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.safetensors", NULL};
static const char *const mobilenetv2_k[] = {
	"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
	"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", NULL};
/* torchvision's file names in the torch hub cache (nn/pth_find.c); not
 * googlenet-1378be20.pth: torchvision's GoogLeNet has batch norm,
 * tlkit's is BVLC's graph */
static const char *const vgg16_t[] = {"vgg16-397923af.pth", NULL};
static const char *const squeezenet_t[] = {"squeezenet1_1-b8a52dc0.pth", NULL};
static const char *const alexnet_t[] = {"alexnet-owt-7be5be79.pth", NULL};
static const char *const mobilenetv2_t[] = {"mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth",
					    NULL};
static const char *const none[] = {NULL};

static const tl_model_fc vgg16_fc[] = {{"classifier.0", 4096, 0},
				       {"classifier.3", 4096, 4096},
				       {"classifier.6", -1, 4096},
				       {NULL, 0, 0}};
static const tl_model_fc mobilenetv2_fc[] = {{"classifier.1", -1, 0}, {NULL, 0, 0}};
static const tl_model_fc no_fc[] = {{NULL, 0, 0}};

/* name, aliases, builder, size, flatten, hidden, n_hidden, dropout, train,
 * weights, keras, guess, classifier, keras_graph, min_input, torch_hub; the head
 * defaults are the notebooks' (VGG16: flatten, 256, dropout 0.5) or the
 * ImageNet head's own (gap, dropout 0.4 BVLC, 0.2 torchvision) */
static const tl_model_info rows[] = {
	{"vgg16", "", tl_build_vgg16, 32, 1, {256, 0}, 1, 0.5f, vgg16_train, vgg16_w, vgg16_k, NULL,
	 vgg16_fc, 0, 32, vgg16_t},
	{"squeezenet", "squeezenet1_1", tl_build_squeezenet, 64, 0, {0, 0}, 0, 0.5f,
	 squeezenet_train, squeezenet_w, none, "features.3.squeeze.weight", no_fc, 0, 17, squeezenet_t},
	{"googlenet", "bvlc_googlenet", tl_build_googlenet, 64, 0, {0, 0}, 0, 0.4f, googlenet_train,
	 googlenet_w, none, "conv1/7x7_s2.weight", no_fc, 0, 31, none},
	{"alexnet", "", tl_build_alexnet, 64, 1, {4096, 4096}, 2, 0.5f, alexnet_train, alexnet_w,
	 none, "features.0.weight:k=11", no_fc, 0, 63, alexnet_t},
	{"mobilenetv2", "mobilenet_v2", tl_build_mobilenetv2, 64, 0, {0, 0}, 0, 0.2f,
	 mobilenetv2_train, mobilenetv2_w, mobilenetv2_k, "features.1.conv.0.0.weight",
	 mobilenetv2_fc, 1, 1, mobilenetv2_t},
	{"baseline", "", tl_build_baseline, 32, 1, {128, 0}, 1, 0.0f, baseline_train, none, none,
	 NULL, no_fc, 0, 4, none},
};
#define N_ROWS (int)(sizeof rows / sizeof rows[0])

/* Whether name is one of the comma-separated names in list. */
static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

const tl_model_info *tl_model_find(const char *name)
{
	for (int i = 0; name && i < N_ROWS; i++)
		if (!strcmp(rows[i].name, name) || in_list(rows[i].aliases, name))
			return &rows[i];
	return NULL;
}

int tl_model_count(void)
{
	return N_ROWS;
}

const tl_model_info *tl_model_at(int i)
{
	return i >= 0 && i < N_ROWS ? &rows[i] : NULL;
}

static char list_text[256];

static void make_list(void)
{
	size_t k = 0;
	for (int i = 0; i < N_ROWS && k < sizeof list_text; i++)
		k += (size_t)snprintf(list_text + k, sizeof list_text - k, "%s%s",
				      i == 0 ? "" : i == N_ROWS - 1 ? " or " : ", ", rows[i].name);
}

const char *tl_model_list(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, make_list);
	return list_text;
}

const char *tl_model_default(const char *model, const char *key)
{
	const tl_model_info *m = tl_model_find(model);
	for (const tl_kv *kv = m ? m->train : NULL; kv && kv->key; kv++)
		if (!strcmp(kv->key, key))
			return kv->val;
	return NULL;
}
