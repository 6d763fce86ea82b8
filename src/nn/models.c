/* models.c - the networks: VGG16, SqueezeNet 1.1, BVLC GoogLeNet, AlexNet,
 * MobileNetV2 and the notebook's baseline CNN (see models.h). */
#include "nn/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/builders.h"
#include "nn/registry.h"
#include "nn/safetensors.h"

void tl_model_defaults(tl_model_cfg *cfg, const char *model)
{
	const tl_model_info *m = model ? tl_model_find(model) : NULL;
	memset(cfg, 0, sizeof *cfg);
	cfg->model = m ? m->name : model; /* an unknown name: tl_model_build says so */
	cfg->width_div = 1;
	cfg->n_classes = 10;
	if (!m)
		m = tl_model_at(0);
	cfg->height = cfg->width = m->size;
	cfg->flatten = m->flatten;
	cfg->n_hidden = m->n_hidden;
	for (int i = 0; i < m->n_hidden; i++)
		cfg->hidden[i] = m->hidden[i];
	cfg->dropout = m->dropout;
}

int tl_model_parse_head(const char *s, tl_model_cfg *cfg)
{
	cfg->n_hidden = 0;
	if (strcmp(s, "none") == 0 || !*s)
		return 0;
	const char *p = s;
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 65536 || cfg->n_hidden == TL_MAX_HIDDEN)
			return -1;
		cfg->hidden[cfg->n_hidden++] = (int)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return 0;
}

#define CHECK_T(t)                                                                            \
	do {                                                                                  \
		if ((t) < 0) {                                                                \
			tl_net_free(net);                                                     \
			return tl_seterr(err, TL_EUSAGE, "%s: input %dx%d " TL_TOO_SMALL,        \
					 cfg->model, cfg->height, cfg->width);                \
		}                                                                             \
	} while (0)

/* AlexNet's own classifier (torchvision: dropout, classifier.1 4096 ReLU,
 * dropout, classifier.4 4096 ReLU), so its weights load; then predictions. */
static int alexnet_classifier(tl_net *net, const tl_model_cfg *cfg, int t)
{
	static const char *const names[2][3] = {{"fc6", "classifier.1.weight", "classifier.1.bias"},
						{"fc7", "classifier.4.weight", "classifier.4.bias"}};
	for (int i = 0; i < 2; i++) {
		if (cfg->dropout > 0) {
			t = tl_net_dropout(net, i ? "dropout7" : "dropout6", "head", t, cfg->dropout);
			tl_net_alias(net, t, i ? "classifier.3" : "classifier.0");
		}
		t = tl_net_dense(net, names[i][0], "head", t, cfg->hidden[i], 1, names[i][1],
				 names[i][2]);
		tl_net_alias(net, t, i ? "classifier.4,classifier.5" : "classifier.1,classifier.2");
	}
	return t;
}

/* SqueezeNet 1.1's ImageNet classifier, with its published weights'
 * names: classifier.1 (1x1 convolution to 1000, ReLU) then the global
 * average pool, as torchvision's. */
static int squeezenet_imagenet(tl_net *net, int t)
{
	t = tl_net_conv(net, "conv10", "classifier", t, 1000, 1, 1, 0, 1, "classifier.1.weight",
			"classifier.1.bias");
	tl_net_alias(net, t, "classifier.1,classifier.2");
	t = tl_net_gap(net, "pool10", "classifier", t);
	tl_net_alias(net, t, "classifier.3");
	return t;
}

/* GoogLeNet's: the 7x7 average pool (global at 224x224) then the fc
 * loss3/classifier, as BVLC's deploy graph (its dropout does nothing at
 * inference and is left out). */
static int googlenet_imagenet(tl_net *net, int t)
{
	t = tl_net_gap(net, "pool5/7x7_s1", "classifier", t);
	return tl_net_dense(net, "loss3/classifier", "classifier", t, 1000, 0,
			    "loss3/classifier.weight", "loss3/classifier.bias");
}

tl_status tl_model_finish(tl_net *net, const tl_model_cfg *cfg, const tl_head_names *hn, int t,
			  tl_net **out, tl_err *err)
{
	if (cfg->imagenet_head) {
		if (!hn->imagenet) {
			tl_net_free(net);
			return tl_seterr(err, TL_EUSAGE,
					 "%s: no ImageNet classifier is built for this network (expected squeezenet or googlenet)",
					 cfg->model);
		}
		t = hn->imagenet(net, t);
		goto finalize;
	}
	if (cfg->flatten) {
		t = tl_net_flatten(net, "flatten", "head", t);
	} else {
		t = tl_net_gap(net, "global_average_pooling", "head", t);
		tl_net_alias(net, t, "global_average_pooling2d"); /* Keras' layer name */
		if (hn->gap)
			tl_net_alias(net, t, hn->gap);
	}
	if (hn->dropout_first && cfg->n_hidden == 0 && cfg->dropout > 0) {
		t = tl_net_dropout(net, "dropout", "head", t, cfg->dropout);
		if (hn->dropout)
			tl_net_alias(net, t, hn->dropout);
	}
	for (int i = 0; i < cfg->n_hidden; i++) {
		char name[32], wn[48], bn[48];
		snprintf(name, sizeof name, "fc%d", i + 1);
		snprintf(wn, sizeof wn, "head.fc%d.weight", i + 1);
		snprintf(bn, sizeof bn, "head.fc%d.bias", i + 1);
		t = tl_net_dense(net, name, "head", t, cfg->hidden[i], 1, wn, bn);
		snprintf(name, sizeof name, "dropout%d", i + 1);
		if (cfg->dropout > 0)
			t = tl_net_dropout(net, name, "head", t, cfg->dropout);
	}
	t = tl_net_dense(net, "predictions", "head", t, cfg->n_classes, 0, "head.predictions.weight",
			 "head.predictions.bias");
	if (cfg->n_hidden == 0 && hn->classifier) /* the ImageNet head's place */
		tl_net_alias(net, t, hn->classifier);
finalize:;
	tl_status st = tl_net_finalize(net, err);
	if (st != TL_OK) {
		tl_net_free(net);
		return st;
	}
	*out = net;
	return TL_OK;
}

tl_status tl_build_vgg16(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	static const int widths[5] = {64, 128, 256, 512, 512}, convs[5] = {2, 2, 3, 3, 3};
	tl_net *net = tl_net_new("vgg16", 3, cfg->height, cfg->width);
	int t = 0, idx = 0;
	for (int b = 0; b < 5; b++) {
		char unit[16];
		snprintf(unit, sizeof unit, "block%d", b + 1);
		for (int c = 0; c < convs[b]; c++) {
			char name[40], wn[48], bn[48];
			snprintf(name, sizeof name, "block%d_conv%d", b + 1, c + 1);
			snprintf(wn, sizeof wn, "features.%d.weight", idx);
			snprintf(bn, sizeof bn, "features.%d.bias", idx);
			t = tl_net_conv(net, name, unit, t, tl_wdiv(widths[b], cfg->width_div), 3, 1, 1, 1,
					wn, bn);
			CHECK_T(t);
			snprintf(name, sizeof name, "features.%d,features.%d", idx, idx + 1);
			tl_net_alias(net, t, name);
			idx += 2; /* conv, relu */
		}
		char name[40];
		snprintf(name, sizeof name, "block%d_pool", b + 1);
		t = tl_net_maxpool(net, name, unit, t, 2, 2, 0);
		CHECK_T(t);
		snprintf(name, sizeof name, "features.%d", idx);
		tl_net_alias(net, t, name);
		idx++;
	}
	static const tl_head_names hn = {0};
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

tl_status tl_build_squeezenet(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	/* torchvision squeezenet1_1 features: index, squeeze, expand (each branch) */
	static const struct {
		int idx, sq, ex, pool_before;
	} fires[8] = {{3, 16, 64, 0},  {4, 16, 64, 0},  {6, 32, 128, 1},  {7, 32, 128, 0},
		      {9, 48, 192, 1}, {10, 48, 192, 0}, {11, 64, 256, 0}, {12, 64, 256, 0}};
	int d = cfg->width_div;
	tl_net *net = tl_net_new("squeezenet", 3, cfg->height, cfg->width);
	int t = tl_net_conv(net, "conv1", "conv1", 0, tl_wdiv(64, d), 3, 2, 0, 1, "features.0.weight",
			    "features.0.bias");
	CHECK_T(t);
	tl_net_alias(net, t, "features.0,features.1");
	t = tl_net_maxpool(net, "pool1", "conv1", t, 3, 2, 1);
	CHECK_T(t);
	tl_net_alias(net, t, "features.2");
	tl_net_unit_alias(net, "conv1", "features.0");
	for (int f = 0; f < 8; f++) {
		char unit[16], name[40], wn[64], bn[64];
		snprintf(unit, sizeof unit, "fire%d", f + 2);
		if (fires[f].pool_before) {
			snprintf(name, sizeof name, "pool%d", f + 1); /* Caffe: pool3, pool5 */
			t = tl_net_maxpool(net, name, unit, t, 3, 2, 1);
			CHECK_T(t);
			snprintf(name, sizeof name, "features.%d", fires[f].idx - 1);
			tl_net_alias(net, t, name);
		}
		snprintf(name, sizeof name, "fire%d_squeeze1x1", f + 2);
		snprintf(wn, sizeof wn, "features.%d.squeeze.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.squeeze.bias", fires[f].idx);
		int s = tl_net_conv(net, name, unit, t, tl_wdiv(fires[f].sq, d), 1, 1, 0, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d_expand1x1", f + 2);
		snprintf(wn, sizeof wn, "features.%d.expand1x1.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.expand1x1.bias", fires[f].idx);
		int e1 = tl_net_conv(net, name, unit, s, tl_wdiv(fires[f].ex, d), 1, 1, 0, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d_expand3x3", f + 2);
		snprintf(wn, sizeof wn, "features.%d.expand3x3.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.expand3x3.bias", fires[f].idx);
		int e3 = tl_net_conv(net, name, unit, s, tl_wdiv(fires[f].ex, d), 3, 1, 1, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d", f + 2);
		t = tl_net_concat(net, name, unit, e1, e3);
		CHECK_T(t);
		snprintf(name, sizeof name, "features.%d", fires[f].idx);
		tl_net_alias(net, t, name);
		tl_net_unit_alias(net, unit, name);
	}
	static const tl_head_names hn = {.imagenet = squeezenet_imagenet};
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

/* A Caffe conv + in-place ReLU named after its layer: NAME.weight/.bias. */
static int caffe_conv(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		      int stride, int pad)
{
	char wn[64], bn[64];
	snprintf(wn, sizeof wn, "%s.weight", name);
	snprintf(bn, sizeof bn, "%s.bias", name);
	int t = tl_net_conv(net, name, unit, in, out_c, k, stride, pad, 1, wn, bn);
	if (t < 0)
		return t;
	/* the in-place ReLU's name: conv2/3x3 -> conv2/relu_3x3, conv1/7x7_s2 -> conv1/relu_7x7 */
	const char *slash = strchr(name, '/');
	char relu[64];
	int n = snprintf(relu, sizeof relu, "%.*s/relu_%s", (int)(slash - name), name, slash + 1);
	if (n > 3 && strcmp(relu + n - 3, "_s2") == 0)
		relu[n - 3] = '\0';
	tl_net_alias(net, t, relu);
	return t;
}

/* One GoogLeNet inception module: four branches concatenated. */
static int inception(tl_net *net, const char *unit, int in, const int *wd, int div)
{
	static const char *const part[] = {"1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5",
					   "pool", "pool_proj", "output"};
	char nm[8][48];
	for (int i = 0; i < 8; i++)
		snprintf(nm[i], sizeof nm[i], "%s/%s", unit, part[i]);
	int b[4];
	b[0] = caffe_conv(net, nm[0], unit, in, tl_wdiv(wd[0], div), 1, 1, 0);
	int r = caffe_conv(net, nm[1], unit, in, tl_wdiv(wd[1], div), 1, 1, 0);
	b[1] = caffe_conv(net, nm[2], unit, r, tl_wdiv(wd[2], div), 3, 1, 1);
	r = caffe_conv(net, nm[3], unit, in, tl_wdiv(wd[3], div), 1, 1, 0);
	b[2] = caffe_conv(net, nm[4], unit, r, tl_wdiv(wd[4], div), 5, 1, 2);
	int p = tl_net_maxpool_pad(net, nm[5], unit, in, 3, 1, 1, 1);
	b[3] = caffe_conv(net, nm[6], unit, p, tl_wdiv(wd[5], div), 1, 1, 0);
	return tl_net_concat_n(net, nm[7], unit, b, 4);
}

/* "inception_4e" -> "inception4e" (torchvision's module name). */
static void torch_name(const char *caffe, char *out, size_t size)
{
	snprintf(out, size, "inception%s", caffe + strlen("inception_"));
}

tl_status tl_build_googlenet(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	/* 1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj (the BVLC deploy graph) */
	static const struct {
		const char *name;
		int pool_before, w[6];
	} mods[9] = {{"inception_3a", 0, {64, 96, 128, 16, 32, 32}},
		     {"inception_3b", 0, {128, 128, 192, 32, 96, 64}},
		     {"inception_4a", 3, {192, 96, 208, 16, 48, 64}},
		     {"inception_4b", 0, {160, 112, 224, 24, 64, 64}},
		     {"inception_4c", 0, {128, 128, 256, 24, 64, 64}},
		     {"inception_4d", 0, {112, 144, 288, 32, 64, 64}},
		     {"inception_4e", 0, {256, 160, 320, 32, 128, 128}},
		     {"inception_5a", 4, {256, 160, 320, 32, 128, 128}},
		     {"inception_5b", 0, {384, 192, 384, 48, 128, 128}}};
	int d = cfg->width_div;
	tl_net *net = tl_net_new("googlenet", 3, cfg->height, cfg->width);
	int t = caffe_conv(net, "conv1/7x7_s2", "conv1", 0, tl_wdiv(64, d), 7, 2, 3);
	CHECK_T(t);
	tl_net_alias(net, t, "conv1");
	t = tl_net_maxpool(net, "pool1/3x3_s2", "conv1", t, 3, 2, 1);
	CHECK_T(t);
	tl_net_alias(net, t, "maxpool1");
	t = tl_net_lrn(net, "pool1/norm1", "conv1", t, 5, 1e-4f, 0.75f, 1.0f);
	t = caffe_conv(net, "conv2/3x3_reduce", "conv2", t, tl_wdiv(64, d), 1, 1, 0);
	tl_net_alias(net, t, "conv2");
	t = caffe_conv(net, "conv2/3x3", "conv2", t, tl_wdiv(192, d), 3, 1, 1);
	tl_net_alias(net, t, "conv3");
	t = tl_net_lrn(net, "conv2/norm2", "conv2", t, 5, 1e-4f, 0.75f, 1.0f);
	t = tl_net_maxpool(net, "pool2/3x3_s2", "conv2", t, 3, 2, 1);
	CHECK_T(t);
	tl_net_alias(net, t, "maxpool2");
	for (int m = 0; m < 9; m++) {
		char tn[24], pn[24];
		torch_name(mods[m].name, tn, sizeof tn);
		if (mods[m].pool_before) {
			snprintf(pn, sizeof pn, "pool%d/3x3_s2", mods[m].pool_before);
			t = tl_net_maxpool(net, pn, mods[m].name, t, 3, 2, 1);
			CHECK_T(t);
			snprintf(pn, sizeof pn, "maxpool%d", mods[m].pool_before);
			tl_net_alias(net, t, pn);
		}
		t = inception(net, mods[m].name, t, mods[m].w, d);
		CHECK_T(t);
		tl_net_alias(net, t, tn);
		tl_net_unit_alias(net, mods[m].name, tn);
	}
	static const tl_head_names hn = {"pool5/7x7_s1,avgpool", "pool5/drop_7x7_s1",
					 "loss3/classifier,fc", 1, googlenet_imagenet};
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

tl_status tl_build_alexnet(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	/* torchvision alexnet().features: index, width, kernel, stride, pad, pool after */
	static const struct {
		int idx, w, k, s, p, pool;
	} convs[5] = {{0, 64, 11, 4, 2, 1}, {3, 192, 5, 1, 2, 1}, {6, 384, 3, 1, 1, 0},
		      {8, 256, 3, 1, 1, 0},  {10, 256, 3, 1, 1, 1}};
	tl_net *net = tl_net_new("alexnet", 3, cfg->height, cfg->width);
	int t = 0, pools = 0;
	for (int i = 0; i < 5; i++) {
		char name[16], unit[16], wn[48], bn[48], alias[48];
		snprintf(name, sizeof name, "conv%d", i + 1);
		snprintf(wn, sizeof wn, "features.%d.weight", convs[i].idx);
		snprintf(bn, sizeof bn, "features.%d.bias", convs[i].idx);
		t = tl_net_conv(net, name, name, t, tl_wdiv(convs[i].w, cfg->width_div), convs[i].k,
				convs[i].s, convs[i].p, 1, wn, bn);
		CHECK_T(t);
		snprintf(alias, sizeof alias, "features.%d,features.%d", convs[i].idx, convs[i].idx + 1);
		tl_net_alias(net, t, alias);
		snprintf(unit, sizeof unit, "features.%d", convs[i].idx);
		tl_net_unit_alias(net, name, unit);
		if (convs[i].pool) {
			snprintf(name, sizeof name, "pool%d", i + 1);
			t = tl_net_maxpool(net, name, net->layers[net->n_layers - 1].unit, t, 3, 2, 0);
			CHECK_T(t);
			snprintf(alias, sizeof alias, "features.%d", convs[i].idx + 2);
			tl_net_alias(net, t, alias);
			pools++;
		}
	}
	(void)pools;
	t = tl_net_avgpool(net, "avgpool", "conv5", t, 6, 6);
	static const tl_head_names hn = {.dropout_first = 1};
	if (cfg->flatten && cfg->n_hidden == 2 && cfg->hidden[0] == 4096 && cfg->hidden[1] == 4096) {
		t = tl_net_flatten(net, "flatten", "head", t);
		t = alexnet_classifier(net, cfg, t);
		t = tl_net_dense(net, "predictions", "head", t, cfg->n_classes, 0,
				 "head.predictions.weight", "head.predictions.bias");
		tl_net_alias(net, t, "classifier.6");
		tl_status st = tl_net_finalize(net, err);
		if (st != TL_OK) {
			tl_net_free(net);
			return st;
		}
		*out = net;
		return TL_OK;
	}
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

/* MobileNetV2's conv + batch norm (+ ReLU6) pair, torchvision names
 * PREFIX.0 / PREFIX.1 (or PREFIX / NEXT for the projection). */
typedef struct {
	tl_net *net;
	const tl_model_cfg *cfg;
	const char *unit;
	float eps, mom;
} mnv2;

/* Padding before a stride-2 conv: Keras pads 0 before and 1 after an even
 * size (TF "same"), PyTorch 1 and 1. */
static void mnv2_pad(const mnv2 *m, int in, int k, int stride, int *pb, int *pa)
{
	*pb = *pa = k / 2;
	if (m->cfg->keras && stride == 2 && m->net->tshape[in].h % 2 == 0)
		*pb = k / 2 - 1;
}

/* Batch norm NAME with params PREFIX.*, the activation fused in. A fused
 * ReLU6 answers to torchvision's ReLU6 path (PREFIX with .1 -> .2); the
 * BN's own names (Keras BN_NAME, torchvision PREFIX) name its output before
 * the clip, which is never formed: -u takes them, --features refuses them. */
static int mnv2_bn(const mnv2 *m, const char *name, int in, int act, const char *prefix,
		   const char *alias, const char *bn_name)
{
	int t = tl_net_bn(m->net, name, m->unit, in, act, m->eps, m->mom, prefix);
	tl_net_alias(m->net, t, alias);
	if (act != TL_ACT_NONE) {
		char names[64];
		size_t n = strlen(prefix);
		if (n > 2 && strcmp(prefix + n - 2, ".1") == 0) {
			snprintf(names, sizeof names, "%.*s.2", (int)(n - 2), prefix);
			tl_net_alias(m->net, t, names);
		}
		snprintf(names, sizeof names, "%s,%s", bn_name, prefix);
		tl_net_pre_act_alias(m->net, t, names);
	}
	return t;
}

/* One inverted residual block (torchvision InvertedResidual) as
 * features.IDX; kname is Keras' prefix: expanded_conv or block_N. */
static int mnv2_block(const mnv2 *m, int idx, const char *kname, int in, int t_exp, int oup,
		      int stride)
{
	tl_net *net = m->net;
	int inp = net->tshape[in].c, x = in, j = 0, pb, pa;
	char nm[64], wn[64], al[64], pre[40], bnn[48];
	if (t_exp != 1) {
		snprintf(nm, sizeof nm, "%s_expand", kname);
		snprintf(wn, sizeof wn, "features.%d.conv.0.0.weight", idx);
		x = tl_net_conv(net, nm, m->unit, x, inp * t_exp, 1, 1, 0, 0, wn, NULL);
		snprintf(al, sizeof al, "features.%d.conv.0.0", idx);
		tl_net_alias(net, x, al);
		snprintf(nm, sizeof nm, "%s_expand_relu", kname);
		snprintf(pre, sizeof pre, "features.%d.conv.0.1", idx);
		snprintf(al, sizeof al, "features.%d.conv.0", idx);
		snprintf(bnn, sizeof bnn, "%s_expand_BN", kname);
		x = mnv2_bn(m, nm, x, TL_ACT_RELU6, pre, al, bnn);
		j = 1;
	}
	mnv2_pad(m, x, 3, stride, &pb, &pa);
	snprintf(nm, sizeof nm, "%s_depthwise", kname);
	snprintf(wn, sizeof wn, "features.%d.conv.%d.0.weight", idx, j);
	x = tl_net_dwconv(net, nm, m->unit, x, 3, stride, pb, pa, 0, wn, NULL);
	if (x < 0)
		return -1;
	snprintf(al, sizeof al, "features.%d.conv.%d.0", idx, j);
	tl_net_alias(net, x, al);
	snprintf(nm, sizeof nm, "%s_depthwise_relu", kname);
	snprintf(pre, sizeof pre, "features.%d.conv.%d.1", idx, j);
	snprintf(al, sizeof al, "features.%d.conv.%d", idx, j);
	snprintf(bnn, sizeof bnn, "%s_depthwise_BN", kname);
	x = mnv2_bn(m, nm, x, TL_ACT_RELU6, pre, al, bnn);
	snprintf(nm, sizeof nm, "%s_project", kname);
	snprintf(wn, sizeof wn, "features.%d.conv.%d.weight", idx, j + 1);
	x = tl_net_conv(net, nm, m->unit, x, oup, 1, 1, 0, 0, wn, NULL);
	snprintf(al, sizeof al, "features.%d.conv.%d", idx, j + 1);
	tl_net_alias(net, x, al);
	int res = stride == 1 && inp == oup;
	snprintf(nm, sizeof nm, "%s_project_BN", kname);
	snprintf(pre, sizeof pre, "features.%d.conv.%d", idx, j + 2);
	if (res)
		snprintf(al, sizeof al, "features.%d.conv.%d", idx, j + 2);
	else
		snprintf(al, sizeof al, "features.%d.conv.%d,features.%d", idx, j + 2, idx);
	x = mnv2_bn(m, nm, x, TL_ACT_NONE, pre, al, NULL);
	if (res) {
		snprintf(nm, sizeof nm, "%s_add", kname);
		x = tl_net_add(net, nm, m->unit, in, x);
		snprintf(al, sizeof al, "features.%d", idx);
		tl_net_alias(net, x, al);
	}
	return x;
}

tl_status tl_build_mobilenetv2(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
					  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
	int d = cfg->width_div, pb, pa;
	/* Keras pads a stride-2 conv's even side 0 before / 1 after and an odd
	 * side 1 / 1; a layer here pads both axes alike */
	for (int h = cfg->height, w = cfg->width, i = 0; cfg->keras && i < 5;
	     i++, h = (h + 1) / 2, w = (w + 1) / 2)
		if (h % 2 != w % 2)
			return tl_seterr(err, TL_EUSAGE,
					 "mobilenetv2 (Keras graph): stride-2 convolution %d of 5 meets a "
					 "map of height %d and width %d, which Keras pads differently "
					 "(even: 0 before, 1 after; odd: 1 and 1); tlkit pads both axes "
					 "alike: pack the shard square (tlpack -r %d)",
					 i + 1, h, w, cfg->height);
	tl_net *net = tl_net_new("mobilenetv2", 3, cfg->height, cfg->width);
	mnv2 m = {net, cfg, "features.0", cfg->keras ? 1e-3f : 1e-5f, cfg->keras ? 1e-3f : 0.1f};
	mnv2_pad(&m, 0, 3, 2, &pb, &pa);
	int t = tl_net_conv_pad(net, "Conv1", m.unit, 0, tl_wdiv(32, d), 3, 2, pb, pa, 0,
				"features.0.0.weight", NULL);
	CHECK_T(t);
	tl_net_alias(net, t, "features.0.0");
	t = mnv2_bn(&m, "Conv1_relu", t, TL_ACT_RELU6, "features.0.1", "features.0", "bn_Conv1");
	tl_net_unit_alias(net, "features.0", "Conv1");
	int idx = 1;
	char unit[24];
	for (int s = 0; s < 7; s++)
		for (int r = 0; r < setting[s][2]; r++, idx++) {
			char kname[24];
			snprintf(unit, sizeof unit, "features.%d", idx % 100);
			if (idx == 1)
				snprintf(kname, sizeof kname, "expanded_conv");
			else
				snprintf(kname, sizeof kname, "block_%d", idx - 1);
			m.unit = unit;
			t = mnv2_block(&m, idx, kname, t, setting[s][0], tl_wdiv(setting[s][1], d),
				       r == 0 ? setting[s][3] : 1);
			CHECK_T(t);
			tl_net_unit_alias(net, unit, kname);
		}
	m.unit = "features.18";
	t = tl_net_conv(net, "Conv_1", m.unit, t, tl_wdiv(1280, d), 1, 1, 0, 0, "features.18.0.weight",
			NULL);
	tl_net_alias(net, t, "features.18.0");
	t = mnv2_bn(&m, "out_relu", t, TL_ACT_RELU6, "features.18.1", "features.18", "Conv_1_bn");
	tl_net_unit_alias(net, "features.18", "Conv_1");
	static const tl_head_names hn = {.dropout = "classifier.0", .classifier = "classifier.1", .dropout_first = 1};
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

/* The MobileNetV2 notebook's scratch baseline (Keras layer names). */
tl_status tl_build_baseline(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	int d = cfg->width_div;
	tl_net *net = tl_net_new("baseline", 3, cfg->height, cfg->width);
	int t = tl_net_conv(net, "conv2d", "conv1", 0, tl_wdiv(32, d), 3, 1, 1, 1,
			    "features.0.weight", "features.0.bias");
	tl_net_alias(net, t, "features.0,features.1");
	t = tl_net_maxpool(net, "max_pooling2d", "conv1", t, 2, 2, 0);
	CHECK_T(t);
	tl_net_alias(net, t, "features.2");
	t = tl_net_conv(net, "conv2d_1", "conv2", t, tl_wdiv(64, d), 3, 1, 1, 1, "features.3.weight",
			"features.3.bias");
	tl_net_alias(net, t, "features.3,features.4");
	t = tl_net_maxpool(net, "max_pooling2d_1", "conv2", t, 2, 2, 0);
	CHECK_T(t);
	tl_net_alias(net, t, "features.5");
	tl_net_unit_alias(net, "conv1", "features.0");
	tl_net_unit_alias(net, "conv2", "features.3");
	static const tl_head_names hn = {.dropout_first = 1};
	return tl_model_finish(net, cfg, &hn, t, out, err);
}

tl_status tl_model_graph_of(const char *weights, tl_model_cfg *cfg, tl_err *err)
{
	const tl_model_info *m = tl_model_find(cfg->model);
	cfg->keras = 0;
	if (!m || !m->keras_graph || !weights)
		return TL_OK;
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, weights, err));
	const char *g = tl_st_meta(f, "graph"), *k = tl_st_meta(f, "keras");
	cfg->keras = (g && strcmp(g, "keras") == 0) || (k && strcmp(k, "1") == 0);
	tl_st_close(f);
	return TL_OK;
}

int tl_model_known(const char *name)
{
	return name && tl_model_find(name) != NULL;
}

tl_status tl_model_build(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	*out = NULL;
	if (cfg->n_classes < 1 || cfg->width_div < 1 || cfg->height < 1 || cfg->width < 1)
		return tl_seterr(err, TL_EUSAGE, "bad model configuration");
	const tl_model_info *m = tl_model_find(cfg->model);
	if (!m)
		return tl_seterr(err, TL_EUSAGE, "unknown model '%s' (expected %s)", cfg->model,
				 tl_model_list());
	tl_status st = m->build(cfg, out, err);
	if (st != TL_EUSAGE || !err)
		return st; /* err->msg is only set by a failure */
	size_t len = strlen(err->msg), tail = strlen(TL_TOO_SMALL);
	if (len < tail || strcmp(err->msg + len - tail, TL_TOO_SMALL) != 0)
		return st;
	int s = m->min_input; /* say what would do */
	snprintf(err->msg + len, sizeof err->msg - len,
		 " (the smallest square input it takes is %dx%d: tlpack -r %d)", s, s, s);
	return st;
}
