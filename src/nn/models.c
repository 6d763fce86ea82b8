/* models.c - VGG16 and SqueezeNet 1.1 definitions (see models.h). */
#include "nn/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_model_defaults(tl_model_cfg *cfg, const char *model)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->model = model;
	cfg->width_div = 1;
	cfg->n_classes = 10;
	if (model && strcmp(model, "squeezenet") == 0) {
		cfg->height = cfg->width = 64;
		cfg->flatten = 0;
		cfg->n_hidden = 0;
		cfg->dropout = 0.5f;
	} else {
		cfg->height = cfg->width = 32;
		cfg->flatten = 1;
		cfg->hidden[0] = 256;
		cfg->n_hidden = 1;
		cfg->dropout = 0.5f;
	}
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
			return tl_seterr(err, TL_EUSAGE,                                      \
					 "%s: input %dx%d is too small for the network",      \
					 cfg->model, cfg->height, cfg->width);                \
		}                                                                             \
	} while (0)

static int wdiv(int w, int div)
{
	int v = w / div;
	return v < 1 ? 1 : v;
}

/* The head: flatten or gap, hidden dense+relu+dropout layers, classifier. */
static tl_status build_head(tl_net *net, const tl_model_cfg *cfg, int t, tl_err *err)
{
	t = cfg->flatten ? tl_net_flatten(net, "flatten", "head", t)
			 : tl_net_gap(net, "global_average_pooling", "head", t);
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
	tl_net_dense(net, "predictions", "head", t, cfg->n_classes, 0, "head.predictions.weight",
		     "head.predictions.bias");
	return tl_net_finalize(net, err);
}

static tl_status build_vgg16(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
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
			t = tl_net_conv(net, name, unit, t, wdiv(widths[b], cfg->width_div), 3, 1, 1, 1,
					wn, bn);
			CHECK_T(t);
			idx += 2; /* conv, relu */
		}
		char name[40];
		snprintf(name, sizeof name, "block%d_pool", b + 1);
		t = tl_net_maxpool(net, name, unit, t, 2, 2, 0);
		CHECK_T(t);
		idx++;
	}
	tl_status st = build_head(net, cfg, t, err);
	if (st != TL_OK) {
		tl_net_free(net);
		return st;
	}
	*out = net;
	return TL_OK;
}

static tl_status build_squeezenet(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	/* torchvision squeezenet1_1 features: index, squeeze, expand (each branch) */
	static const struct {
		int idx, sq, ex, pool_before;
	} fires[8] = {{3, 16, 64, 0},  {4, 16, 64, 0},  {6, 32, 128, 1},  {7, 32, 128, 0},
		      {9, 48, 192, 1}, {10, 48, 192, 0}, {11, 64, 256, 0}, {12, 64, 256, 0}};
	int d = cfg->width_div;
	tl_net *net = tl_net_new("squeezenet", 3, cfg->height, cfg->width);
	int t = tl_net_conv(net, "conv1", "conv1", 0, wdiv(64, d), 3, 2, 0, 1, "features.0.weight",
			    "features.0.bias");
	CHECK_T(t);
	t = tl_net_maxpool(net, "pool1", "conv1", t, 3, 2, 1);
	CHECK_T(t);
	for (int f = 0; f < 8; f++) {
		char unit[16], name[40], wn[64], bn[64];
		snprintf(unit, sizeof unit, "fire%d", f + 2);
		if (fires[f].pool_before) {
			snprintf(name, sizeof name, "pool%d", f + 1); /* Caffe: pool3, pool5 */
			t = tl_net_maxpool(net, name, unit, t, 3, 2, 1);
			CHECK_T(t);
		}
		snprintf(name, sizeof name, "fire%d_squeeze1x1", f + 2);
		snprintf(wn, sizeof wn, "features.%d.squeeze.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.squeeze.bias", fires[f].idx);
		int s = tl_net_conv(net, name, unit, t, wdiv(fires[f].sq, d), 1, 1, 0, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d_expand1x1", f + 2);
		snprintf(wn, sizeof wn, "features.%d.expand1x1.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.expand1x1.bias", fires[f].idx);
		int e1 = tl_net_conv(net, name, unit, s, wdiv(fires[f].ex, d), 1, 1, 0, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d_expand3x3", f + 2);
		snprintf(wn, sizeof wn, "features.%d.expand3x3.weight", fires[f].idx);
		snprintf(bn, sizeof bn, "features.%d.expand3x3.bias", fires[f].idx);
		int e3 = tl_net_conv(net, name, unit, s, wdiv(fires[f].ex, d), 3, 1, 1, 1, wn, bn);
		snprintf(name, sizeof name, "fire%d", f + 2);
		t = tl_net_concat(net, name, unit, e1, e3);
		CHECK_T(t);
	}
	tl_status st = build_head(net, cfg, t, err);
	if (st != TL_OK) {
		tl_net_free(net);
		return st;
	}
	*out = net;
	return TL_OK;
}

tl_status tl_model_build(const tl_model_cfg *cfg, tl_net **out, tl_err *err)
{
	*out = NULL;
	if (cfg->n_classes < 1 || cfg->width_div < 1 || cfg->height < 1 || cfg->width < 1)
		return tl_seterr(err, TL_EUSAGE, "bad model configuration");
	if (strcmp(cfg->model, "vgg16") == 0)
		return build_vgg16(cfg, out, err);
	if (strcmp(cfg->model, "squeezenet") == 0)
		return build_squeezenet(cfg, out, err);
	return tl_seterr(err, TL_EUSAGE, "unknown model '%s' (expected vgg16 or squeezenet)",
			 cfg->model);
}
