/* keras.c - Keras VGG16 and MobileNetV2 tables -> torchvision-named
 * safetensors (see keras.h).  The file itself is read by nn/h5file.c, in
 * a sandboxed child; this file only maps what it validated. */
#include "config.h"

#include "nn/keras.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/sandbox.h"

#define BAD(...) tl_seterr(err, TL_EFORMAT, __VA_ARGS__)

int tl_keras_available(void)
{
#ifdef TL_HAVE_HDF5
	return tl_sandbox_available();
#else
	return 0;
#endif
}

/* ---- VGG16 mapping ---- */

static const struct {
	const char *keras;
	int idx;
} vgg_convs[13] = {{"block1_conv1", 0},  {"block1_conv2", 2},  {"block2_conv1", 5},
		   {"block2_conv2", 7},  {"block3_conv1", 10}, {"block3_conv2", 12},
		   {"block3_conv3", 14}, {"block4_conv1", 17}, {"block4_conv2", 19},
		   {"block4_conv3", 21}, {"block5_conv1", 24}, {"block5_conv2", 26},
		   {"block5_conv3", 28}};
static const struct {
	const char *keras;
	int idx;
} vgg_dense[3] = {{"fc1", 0}, {"fc2", 3}, {"predictions", 6}};

static void add_t(tl_kx_plan *p, const char *name, size_t var, tl_kx_kind kind, int ndim,
		  int64_t a, int64_t b, int64_t c, int64_t d)
{
	tl_kx_tensor *t = &p->t[p->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->var = var;
	t->kind = kind;
	t->ndim = ndim;
	t->shape[0] = a, t->shape[1] = b, t->shape[2] = c, t->shape[3] = d;
}

/* Layer L's bias b must be a vector of n (one per output channel). */
static tl_status check_bias(const char *path, const char *L, const tl_h5_var *b, int64_t n,
			    tl_err *err)
{
	if (b->ndim == 1 && b->shape[0] == n)
		return TL_OK;
	char s[96];
	tl_h5_fmt_shape(b->ndim, b->shape, s, sizeof s);
	return BAD("%s: %s: bias %s (expected (%" PRId64 ",), got %s)", path, L, b->name, n, s);
}

/* Where VGG16's layers are in f: a layer's two vars (kernel, bias) start
 * at conv_at[c] / dense_at[c] when conv_seen[c] / dense_seen[c]. */
typedef struct {
	size_t conv_at[13], dense_at[3];
	int conv_seen[13], dense_seen[3];
} vgg_layout;

/* Groups f's vars by layer (a layer's vars are consecutive) into lay;
 * fails on a layer listed twice, one VGG16 does not have, or one with
 * other than two weights. */
static tl_status plan_find_layers(const tl_h5_file *f, const char *path, vgg_layout *lay,
				  tl_err *err)
{
	memset(lay, 0, sizeof *lay);
	for (size_t i = 0; i < tl_h5_count(f);) {
		size_t k = i;
		while (k < tl_h5_count(f) && !strcmp(tl_h5_var_at(f, k)->layer, tl_h5_var_at(f, i)->layer))
			k++;
		const char *L = tl_h5_var_at(f, i)->layer;
		int found = 0;
		for (int c = 0; c < 13; c++)
			if (!strcmp(L, vgg_convs[c].keras)) {
				if (lay->conv_seen[c]++)
					return BAD("%s: %s: layer listed twice", path, L);
				lay->conv_at[c] = i, found = 1;
			}
		for (int c = 0; c < 3; c++)
			if (!strcmp(L, vgg_dense[c].keras)) {
				if (lay->dense_seen[c]++)
					return BAD("%s: %s: layer listed twice", path, L);
				lay->dense_at[c] = i, found = 1;
			}
		if (!found)
			return BAD("%s: %s: unexpected layer with weights (expected VGG16's block1_conv1 .. block5_conv3, fc1, fc2, predictions)",
				   path, L);
		if (k - i != 2)
			return BAD("%s: %s: %zu weights (expected 2: kernel, bias)", path, L, k - i);
		i = k;
	}
	return TL_OK;
}

/* Checks the 13 convolutions (all present, (3, 3, in, out) kernels
 * chained from 3 input channels, matching biases) and adds them to plan
 * as features.N; writes the last one's output channels to *cout_last. */
static tl_status plan_convs(const tl_h5_file *f, const char *path, const vgg_layout *lay,
			    tl_kx_plan *plan, int64_t *cout_last, tl_err *err)
{
	char s[96];
	int64_t cin = 3;
	for (int c = 0; c < 13; c++) {
		const char *L = vgg_convs[c].keras;
		if (!lay->conv_seen[c])
			return BAD("%s: %s: missing (expected the 13 VGG16 convolutions)", path, L);
		const tl_h5_var *w = tl_h5_var_at(f, lay->conv_at[c]), *b = tl_h5_var_at(f, lay->conv_at[c] + 1);
		tl_h5_fmt_shape(w->ndim, w->shape, s, sizeof s);
		if (w->ndim != 4)
			return BAD("%s: %s: kernel %s has rank %d (expected 4: (3, 3, %" PRId64 ", out), got %s)",
				   path, L, w->name, w->ndim, cin, s);
		if (w->shape[0] != 3 || w->shape[1] != 3) {
			if (w->shape[2] == 3 && w->shape[3] == 3)
				return BAD("%s: %s: kernel %s is in Theano order (expected (3, 3, %" PRId64 ", out), got %s: use the _tf_dim_ordering_ file)",
					   path, L, w->name, cin, s);
			return BAD("%s: %s: kernel %s (expected (3, 3, %" PRId64 ", out), got %s)", path,
				   L, w->name, cin, s);
		}
		if (w->shape[2] != cin || w->shape[3] < 1)
			return BAD("%s: %s: kernel %s (expected (3, 3, %" PRId64 ", out), got %s)", path,
				   L, w->name, cin, s);
		int64_t cout = w->shape[3];
		TL_TRY(check_bias(path, L, b, cout, err));
		char n[48];
		snprintf(n, sizeof n, "features.%d.weight", vgg_convs[c].idx);
		add_t(plan, n, lay->conv_at[c], TL_KX_CONV_W, 4, cout, cin, 3, 3);
		snprintf(n, sizeof n, "features.%d.bias", vgg_convs[c].idx);
		add_t(plan, n, lay->conv_at[c] + 1, TL_KX_BIAS, 1, cout, 0, 0, 0);
		cin = cout;
	}
	*cout_last = cin;
	return TL_OK;
}

/* Checks the three dense layers (fc1 over a square block5_pool of cin
 * channels, each next one chained, matching biases) and adds them to
 * plan as classifier.N; the caller has checked that all three exist. */
static tl_status plan_dense(const tl_h5_file *f, const char *path, const vgg_layout *lay,
			    int64_t cin, tl_kx_plan *plan, tl_err *err)
{
	char s[96];
	int64_t in = -1;
	for (int c = 0; c < 3; c++) {
		const char *L = vgg_dense[c].keras;
		const tl_h5_var *w = tl_h5_var_at(f, lay->dense_at[c]), *b = tl_h5_var_at(f, lay->dense_at[c] + 1);
		tl_h5_fmt_shape(w->ndim, w->shape, s, sizeof s);
		if (w->ndim != 2 || w->shape[0] < 1 || w->shape[1] < 1)
			return BAD("%s: %s: kernel %s (expected rank 2 (in, out), got %s)", path, L,
				   w->name, s);
		int side = 0;
		if (c == 0) { /* (side * side * channels, out) */
			int64_t hw = w->shape[0] / cin;
			side = (int)llround(sqrt((double)hw));
			if (w->shape[0] % cin || (int64_t)side * side != hw)
				return BAD("%s: %s: kernel %s (expected (side*side*%" PRId64 ", out) for a square block5_pool, got %s)",
					   path, L, w->name, cin, s);
		} else if (w->shape[0] != in) {
			return BAD("%s: %s: kernel %s (expected (%" PRId64 ", out), got %s)", path, L,
				   w->name, in, s);
		}
		in = w->shape[1];
		TL_TRY(check_bias(path, L, b, in, err));
		char n[48];
		snprintf(n, sizeof n, "classifier.%d.weight", vgg_dense[c].idx);
		add_t(plan, n, lay->dense_at[c], c == 0 ? TL_KX_FC1_W : TL_KX_DENSE_W, 2, w->shape[1],
		      w->shape[0], 0, 0);
		plan->t[plan->n - 1].side = side;
		snprintf(n, sizeof n, "classifier.%d.bias", vgg_dense[c].idx);
		add_t(plan, n, lay->dense_at[c] + 1, TL_KX_BIAS, 1, in, 0, 0, 0);
	}
	return TL_OK;
}

tl_status tl_keras_plan_vgg16(const tl_h5_file *f, const char *path, tl_kx_plan *plan,
			      tl_err *err)
{
	memset(plan, 0, sizeof *plan);
	snprintf(plan->model, sizeof plan->model, "vgg16");
	vgg_layout lay;
	TL_TRY(plan_find_layers(f, path, &lay, err));
	int64_t cin = 0;
	TL_TRY(plan_convs(f, path, &lay, plan, &cin, err));
	int nd = lay.dense_seen[0] + lay.dense_seen[1] + lay.dense_seen[2];
	if (nd == 0)
		return TL_OK;
	for (int c = 0; c < 3; c++)
		if (!lay.dense_seen[c])
			return BAD("%s: %s: missing (expected fc1, fc2 and predictions together, or none)",
				   path, vgg_dense[c].keras);
	TL_TRY(plan_dense(f, path, &lay, cin, plan, err));
	plan->full = 1;
	plan->classes = plan->t[plan->n - 1].shape[0];
	return TL_OK;
}

/* ---- MobileNetV2 mapping ---- */

enum { MN_CONV, MN_DW, MN_BN, MN_DENSE };

/* One Keras MobileNetV2 layer with weights and where it goes. */
typedef struct {
	char keras[32]; /* block_3_depthwise_BN */
	char torch[32]; /* features.4.conv.1.1 */
	int kind;       /* MN_* */
	int k;          /* MN_CONV: kernel size */
	size_t at, cnt; /* its vars in the file (cnt 0: not there) */
} mn_layer;

#define MN_BASE 104 /* layers with weights below the top */

static void mn_set(mn_layer *l, const char *keras, const char *torch, int kind, int k)
{
	memset(l, 0, sizeof *l);
	snprintf(l->keras, sizeof l->keras, "%s", keras);
	snprintf(l->torch, sizeof l->torch, "%s", torch);
	l->kind = kind, l->k = k;
}

/* Fills t[0..MN_BASE) with MobileNetV2's layers in model order and t[MN_BASE]
 * with the top (named Logits in keras-applications' files). */
static void mn_table(mn_layer *t)
{
	int n = 0;
	mn_set(&t[n++], "Conv1", "features.0.0", MN_CONV, 3);
	mn_set(&t[n++], "bn_Conv1", "features.0.1", MN_BN, 0);
	mn_set(&t[n++], "expanded_conv_depthwise", "features.1.conv.0.0", MN_DW, 3);
	mn_set(&t[n++], "expanded_conv_depthwise_BN", "features.1.conv.0.1", MN_BN, 0);
	mn_set(&t[n++], "expanded_conv_project", "features.1.conv.1", MN_CONV, 1);
	mn_set(&t[n++], "expanded_conv_project_BN", "features.1.conv.2", MN_BN, 0);
	static const struct {
		const char *keras, *torch;
		int kind, k;
	} part[6] = {{"expand", "conv.0.0", MN_CONV, 1},   {"expand_BN", "conv.0.1", MN_BN, 0},
		     {"depthwise", "conv.1.0", MN_DW, 3},  {"depthwise_BN", "conv.1.1", MN_BN, 0},
		     {"project", "conv.2", MN_CONV, 1},    {"project_BN", "conv.3", MN_BN, 0}};
	for (int b = 1; b <= 16; b++)
		for (int p = 0; p < 6; p++) {
			char k[32], tn[32];
			snprintf(k, sizeof k, "block_%d_%s", b, part[p].keras);
			snprintf(tn, sizeof tn, "features.%d.%s", b + 1, part[p].torch);
			mn_set(&t[n++], k, tn, part[p].kind, part[p].k);
		}
	mn_set(&t[n++], "Conv_1", "features.18.0", MN_CONV, 1);
	mn_set(&t[n++], "Conv_1_bn", "features.18.1", MN_BN, 0);
	mn_set(&t[n], "Logits", "classifier.1", MN_DENSE, 0);
}

int tl_keras_is_mobilenetv2(const tl_h5_file *f)
{
	for (size_t i = 0; i < tl_h5_count(f); i++) {
		const char *L = tl_h5_var_at(f, i)->layer;
		if (!strcmp(L, "Conv1") || !strcmp(L, "bn_Conv1") || !strcmp(L, "Conv_1") ||
		    !strcmp(L, "Conv_1_bn") || !strncmp(L, "expanded_conv_", 14) ||
		    (!strncmp(L, "block_", 6) && L[6] >= '0' && L[6] <= '9'))
			return 1;
	}
	return 0;
}

/* Finds each of f's layers (a layer's vars are consecutive) in t; fails
 * on a layer MobileNetV2 does not have or one listed twice. */
static tl_status mn_find_layers(const tl_h5_file *f, const char *path, mn_layer *t, tl_err *err)
{
	for (size_t i = 0; i < tl_h5_count(f);) {
		size_t k = i;
		while (k < tl_h5_count(f) && !strcmp(tl_h5_var_at(f, k)->layer, tl_h5_var_at(f, i)->layer))
			k++;
		const char *L = tl_h5_var_at(f, i)->layer;
		int j = 0;
		while (j < MN_BASE && strcmp(L, t[j].keras))
			j++;
		if (j == MN_BASE && strcmp(L, "Logits") && strcmp(L, "predictions"))
			return BAD("%s: %s: unexpected layer with weights (expected MobileNetV2's Conv1, bn_Conv1, expanded_conv_*, block_1_* .. block_16_*, Conv_1, Conv_1_bn, Logits)",
				   path, L);
		if (t[j].cnt)
			return BAD("%s: %s: layer listed twice%s", path, L,
				   j == MN_BASE ? " (Logits and predictions are the same top)" : "");
		if (j == MN_BASE) /* Logits or predictions */
			snprintf(t[j].keras, sizeof t[j].keras, "%s", L[0] == 'L' ? "Logits" : "predictions");
		t[j].at = i, t[j].cnt = k - i;
		i = k;
	}
	return TL_OK;
}

/* The text of a (kh, kw, in, out) kernel shape with -1 printed "out". */
static void mn_fmt4(char *buf, size_t n, int64_t a, int64_t b, int64_t c, int64_t d)
{
	if (d < 0)
		snprintf(buf, n, "(%" PRId64 ", %" PRId64 ", %" PRId64 ", out)", a, b, c);
	else
		snprintf(buf, n, "(%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ")", a, b, c, d);
}

/* Checks l's single kernel: (k, k, cin, cout) for MN_CONV (cout -1: any),
 * (3, 3, cin, 1) for MN_DW; adds it to plan and returns its outputs in
 * *out. */
static tl_status mn_kernel(const tl_h5_file *f, const char *path, const mn_layer *l, int64_t cin,
			   int64_t cout, tl_kx_plan *plan, int64_t *out, tl_err *err)
{
	const char *L = l->keras;
	const tl_h5_var *w = tl_h5_var_at(f, l->at);
	char s[96], e[96];
	if (l->cnt == 2 && tl_h5_var_at(f, l->at + 1)->ndim == 1) {
		const tl_h5_var *b = tl_h5_var_at(f, l->at + 1);
		tl_h5_fmt_shape(b->ndim, b->shape, s, sizeof s);
		return BAD("%s: %s: has a bias %s %s (expected none: Keras MobileNetV2 convolutions are use_bias=False and torchvision's have no bias; refusing rather than dropping it)",
			   path, L, b->name, s);
	}
	if (l->cnt != 1)
		return BAD("%s: %s: %zu weights (expected 1: the %s)", path, L, l->cnt,
			   l->kind == MN_DW ? "depthwise kernel" : "kernel");
	int dw = l->kind == MN_DW, k = dw ? 3 : l->k;
	mn_fmt4(e, sizeof e, k, k, cin, dw ? 1 : cout);
	tl_h5_fmt_shape(w->ndim, w->shape, s, sizeof s);
	const char *what = dw ? "depthwise kernel" : "kernel";
	if (w->ndim != 4)
		return BAD("%s: %s: %s %s has rank %d (expected 4: %s, got %s)", path, L, what,
			   w->name, w->ndim, e, s);
	if (dw && w->shape[0] == k && w->shape[1] == k && w->shape[2] == cin && w->shape[3] != 1)
		return BAD("%s: %s: %s %s has depth multiplier %" PRId64 " (expected %s, got %s)",
			   path, L, what, w->name, w->shape[3], e, s);
	if (w->shape[0] != k || w->shape[1] != k || w->shape[2] != cin ||
	    (dw && w->shape[3] != 1) || (cout >= 0 && w->shape[3] != cout) || w->shape[3] < 1) {
		const char *why = "";
		if (!dw && cout >= 0 && w->shape[2] == cin && w->shape[0] == k && w->shape[1] == k)
			why = ": an expand is 6x its input;";
		else
			why = ",";
		return BAD("%s: %s: %s %s (expected %s%s got %s)", path, L, what, w->name, e, why, s);
	}
	char n[48];
	snprintf(n, sizeof n, "%s.weight", l->torch);
	if (dw)
		add_t(plan, n, l->at, TL_KX_CONV_W, 4, cin, 1, k, k);
	else
		add_t(plan, n, l->at, TL_KX_CONV_W, 4, w->shape[3], cin, k, k);
	*out = dw ? cin : w->shape[3];
	return TL_OK;
}

/* Which BatchNorm weight a Keras 2 name is (".../moving_mean:0"): 0..3,
 * or -1 (Keras 3 names them 0, 1, 2, 3). */
static int mn_bn_role(const char *name)
{
	static const char *const roles[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
	const char *b = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	for (int r = 0; r < 4; r++) {
		size_t len = strlen(roles[r]);
		if (!strncmp(b, roles[r], len) && (b[len] == ':' || b[len] == 0))
			return r;
	}
	return -1;
}

/* Checks l's gamma, beta, moving_mean, moving_variance (by name when the
 * file names them, else in that order), each (c,), and adds them to plan. */
static tl_status mn_bn(const tl_h5_file *f, const char *path, const mn_layer *l, int64_t c,
		       tl_kx_plan *plan, tl_err *err)
{
	static const char *const roles[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
	static const char *const torch[4] = {"weight", "bias", "running_mean", "running_var"};
	const char *L = l->keras;
	size_t idx[4] = {0};
	int named = 0, have[4] = {0};
	for (size_t i = 0; i < l->cnt; i++)
		named |= mn_bn_role(tl_h5_var_at(f, l->at + i)->name) >= 0;
	if (named) {
		char got[256] = "";
		for (size_t i = 0; i < l->cnt; i++) {
			const char *nm = tl_h5_var_at(f, l->at + i)->name;
			int r = mn_bn_role(nm);
			if (r < 0)
				return BAD("%s: %s: unexpected weight %s (expected gamma, beta, moving_mean, moving_variance)",
					   path, L, nm);
			if (have[r]++)
				return BAD("%s: %s: %s listed twice", path, L, roles[r]);
			idx[r] = l->at + i;
			size_t k = strlen(got);
			snprintf(got + k, sizeof got - k, "%s%s", k ? ", " : "", roles[r]);
		}
		for (int r = 0; r < 4; r++)
			if (!have[r])
				return BAD("%s: %s: %s missing (expected 4 BatchNorm weights: gamma, beta, moving_mean, moving_variance; got %zu: %s)",
					   path, L, roles[r], l->cnt, got);
	} else {
		if (l->cnt != 4)
			return BAD("%s: %s: %zu weights (expected 4 BatchNorm weights: gamma, beta, moving_mean, moving_variance)",
				   path, L, l->cnt);
		for (int r = 0; r < 4; r++)
			idx[r] = l->at + (size_t)r;
	}
	for (int r = 0; r < 4; r++) {
		const tl_h5_var *v = tl_h5_var_at(f, idx[r]);
		if (v->ndim != 1 || v->shape[0] != c) {
			char s[96];
			tl_h5_fmt_shape(v->ndim, v->shape, s, sizeof s);
			return BAD("%s: %s: %s %s (expected (%" PRId64 ",), got %s)", path, L, roles[r],
				   v->name, c, s);
		}
		char n[48];
		snprintf(n, sizeof n, "%s.%s", l->torch, torch[r]);
		add_t(plan, n, idx[r], r == 3 ? TL_KX_VAR : TL_KX_BIAS, 1, c, 0, 0, 0);
	}
	return TL_OK;
}

/* Checks the top (kernel (cin, classes), bias (classes,)) and adds it as
 * torchvision's classifier.1. */
static tl_status mn_top(const tl_h5_file *f, const char *path, const mn_layer *l, int64_t cin,
			tl_kx_plan *plan, tl_err *err)
{
	const char *L = l->keras;
	if (l->cnt != 2)
		return BAD("%s: %s: %zu weights (expected 2: kernel, bias)", path, L, l->cnt);
	const tl_h5_var *w = tl_h5_var_at(f, l->at), *b = tl_h5_var_at(f, l->at + 1);
	char s[96];
	tl_h5_fmt_shape(w->ndim, w->shape, s, sizeof s);
	if (w->ndim != 2 || w->shape[0] != cin || w->shape[1] < 1)
		return BAD("%s: %s: kernel %s (expected (%" PRId64 ", classes), got %s)", path, L,
			   w->name, cin, s);
	TL_TRY(check_bias(path, L, b, w->shape[1], err));
	add_t(plan, "classifier.1.weight", l->at, TL_KX_DENSE_W, 2, w->shape[1], cin, 0, 0);
	add_t(plan, "classifier.1.bias", l->at + 1, TL_KX_BIAS, 1, w->shape[1], 0, 0, 0);
	plan->full = 1;
	plan->classes = w->shape[1];
	return TL_OK;
}

tl_status tl_keras_plan_mobilenetv2(const tl_h5_file *f, const char *path, tl_kx_plan *plan,
				    tl_err *err)
{
	memset(plan, 0, sizeof *plan);
	snprintf(plan->model, sizeof plan->model, "mobilenetv2");
	mn_layer t[MN_BASE + 1];
	mn_table(t);
	TL_TRY(mn_find_layers(f, path, t, err));
	int64_t c = 3;
	for (int j = 0; j < MN_BASE; j++) {
		const mn_layer *l = &t[j];
		if (!l->cnt) {
			if (!strncmp(l->keras, "block_", 6)) {
				int b = atoi(l->keras + 6);
				return BAD("%s: %s: missing (block_%d = features.%d: expected all 16 inverted residual blocks, block_1 .. block_16, each with expand, depthwise, project and their _BN)",
					   path, l->keras, b, b + 1);
			}
			return BAD("%s: %s: missing (expected every MobileNetV2 layer: Conv1, bn_Conv1, expanded_conv_*, block_1_* .. block_16_*, Conv_1, Conv_1_bn)",
				   path, l->keras);
		}
		/* an expand widens 6x; the others' outputs are free (alpha) */
		int expand = l->kind == MN_CONV && strstr(l->keras, "_expand") != NULL;
		if (l->kind == MN_BN)
			TL_TRY(mn_bn(f, path, l, c, plan, err));
		else
			TL_TRY(mn_kernel(f, path, l, c, expand ? 6 * c : -1, plan, &c, err));
	}
	if (t[MN_BASE].cnt)
		TL_TRY(mn_top(f, path, &t[MN_BASE], c, plan, err));
	return TL_OK;
}

tl_status tl_keras_plan(const tl_h5_file *f, const char *path, tl_kx_plan *plan, tl_err *err)
{
	if (tl_keras_is_mobilenetv2(f))
		return tl_keras_plan_mobilenetv2(f, path, plan, err);
	return tl_keras_plan_vgg16(f, path, plan, err);
}

/* ---- import ---- */

static void transform(const tl_kx_tensor *t, const float *src, float *dst)
{
	int64_t O = t->shape[0], I = t->shape[1];
	switch (t->kind) {
	case TL_KX_VAR:
	case TL_KX_BIAS: memcpy(dst, src, (size_t)O * sizeof *dst); break;
	case TL_KX_CONV_W: { /* src (kh, kw, I, O) -> dst (O, I, kh, kw) */
		int64_t KK = t->shape[2] * t->shape[3];
		for (int64_t o = 0; o < O; o++)
			for (int64_t i = 0; i < I; i++)
				for (int64_t k = 0; k < KK; k++)
					dst[(o * I + i) * KK + k] = src[(k * I + i) * O + o];
		break;
	}
	case TL_KX_DENSE_W: /* src (I, O) -> dst (O, I): FC1 with a 1x1 map */
	case TL_KX_FC1_W: { /* src rows in HWC order, dst columns in CHW order */
		int64_t S2 = t->kind == TL_KX_FC1_W ? (int64_t)t->side * t->side : 1, C = I / S2;
		/* 32 outputs at a time: contiguous reads, 32 dst rows written in step */
		for (int64_t o0 = 0; o0 < O; o0 += 32) {
			int64_t o1 = o0 + 32 < O ? o0 + 32 : O;
			for (int64_t c = 0; c < C; c++)
				for (int64_t p = 0; p < S2; p++) {
					const float *sr = src + (p * C + c) * O;
					float *dc = dst + c * S2 + p;
					for (int64_t o = o0; o < o1; o++)
						dc[o * I] = sr[o];
				}
		}
		break;
	}
	}
}

/* Checks that the moving variance t (n values) holds no negative value. */
static tl_status check_var(const char *path, const tl_h5_var *v, const float *x, uint64_t n,
			   tl_err *err)
{
	for (uint64_t k = 0; k < n; k++)
		if (x[k] < 0)
			return BAD("%s: %s: %s: value %llu is negative (expected a variance >= 0, got %g)",
				   path, v->layer, v->name, (unsigned long long)k, (double)x[k]);
	return TL_OK;
}

/* Writes plan's tensors, taken from f and moved to torchvision layouts,
 * to out with meta (n_meta pairs); adds their sizes to info->n_params. */
static tl_status import_write(const tl_h5_file *f, const char *h5, const tl_kx_plan *plan,
			      const char *out, const char *const *meta, size_t n_meta,
			      tl_keras_info *info, tl_err *err)
{
	float **data = calloc((size_t)plan->n + 1, sizeof *data);
	tl_st_out *t = calloc((size_t)plan->n + 1, sizeof *t);
	tl_status st = TL_OK;
	if (!data || !t)
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", h5);
	for (int i = 0; st == TL_OK && i < plan->n; i++) {
		const tl_kx_tensor *k = &plan->t[i];
		const tl_h5_var *v = tl_h5_var_at(f, k->var);
		const float *src = tl_h5_data(f, k->var);
		uint64_t n = v->numel;
		if (!(data[i] = malloc((size_t)n * sizeof(float)))) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", h5);
			break;
		}
		if (k->kind == TL_KX_VAR && (st = check_var(h5, v, src, n, err)) != TL_OK)
			break;
		transform(k, src, data[i]);
		t[i].name = k->name;
		t[i].dtype = TL_ST_F32;
		t[i].ndim = k->ndim;
		memcpy(t[i].shape, k->shape, sizeof k->shape);
		t[i].data = data[i];
		info->n_params += n;
	}
	if (st == TL_OK)
		st = tl_st_write(out, t, (size_t)plan->n, meta, n_meta, err);
	for (int i = 0; data && i < plan->n; i++)
		free(data[i]);
	free(data);
	free(t);
	return st;
}

const char *tl_keras_official_md5(const char *base)
{
	/* keras/applications/vgg16.py's file_hash values; MobileNetV2's
	 * downloads are not checked by Keras, so none is known */
	static const char *const known[][2] = {
		{"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"},
		{"vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(base, known[i][0]))
			return known[i][1];
	return NULL;
}

tl_status tl_keras_import(const char *h5, const char *out, tl_keras_info *info, tl_err *err)
{
	tl_keras_info dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof *info);
	tl_h5_file *f;
	TL_TRY(tl_h5_open(&f, h5, err));
	tl_kx_plan *plan = malloc(sizeof *plan);
	tl_status st = plan ? tl_keras_plan(f, h5, plan, err)
			    : tl_seterr(err, TL_ENOMEM, "%s: out of memory", h5);
	if (st == TL_OK) {
		/* the identity of the bytes that were parsed, not of the file
		 * as it may be by now */
		snprintf(info->md5, sizeof info->md5, "%s", tl_h5_md5(f));
		snprintf(info->xxh3, sizeof info->xxh3, "%s", tl_h5_xxh3(f));
		info->size = tl_h5_size(f);
		const char *base = strrchr(h5, '/') ? strrchr(h5, '/') + 1 : h5;
		const char *pub = tl_keras_official_md5(base);
		info->official = !pub ? -1 : !strcmp(pub, info->md5);
		snprintf(info->official_md5, sizeof info->official_md5, "%s", pub ? pub : "");
		if (info->official == 0)
			snprintf(info->note, sizeof info->note,
				 "not the published %s (md5 %s): fine-tuned or another version, imported as it is",
				 base, pub);
		const char *offi = info->official < 0 ? "unknown" : info->official ? "yes" : "no";
		char sz[24];
		snprintf(sz, sizeof sz, "%" PRIu64, info->size);
		snprintf(info->layout, sizeof info->layout, "%s", tl_h5_layout(f));
		snprintf(info->model, sizeof info->model, "%s", plan->model);
		info->full = plan->full;
		info->n_tensors = plan->n;
		const char *top = plan->full ? "full" : "notop";
		if (!strcmp(plan->model, "mobilenetv2")) {
			snprintf(info->norm, sizeof info->norm, "tf");
			const char *meta[] = {
				"model", "mobilenetv2", "graph", "keras", "normalization", "tf",
				"input", "tf: RGB, 0..255 / 127.5 - 1 (Keras mobilenet_v2.preprocess_input)",
				"bn_epsilon", "0.001",
				"padding", "Keras: stride-2 convolutions pad 0 before and 1 after on even sizes, 1 and 1 on odd",
				"source", base, "source_md5", info->md5, "source_xxh3", info->xxh3,
				"source_size", sz, "keras_layout", tl_h5_layout(f), "top", top,
				"source_official", offi,
				"note", plan->full ? "classifier.1 is Keras' Logits layer: a dense layer over the global average pool, whose softmax gives the 1000 ImageNet classes (torchvision's classifier.0 is a dropout)"
						   : "no top: features.0 .. features.18 only"};
			st = import_write(f, h5, plan, out, meta, sizeof meta / sizeof meta[0] / 2,
					  info, err);
		} else {
			snprintf(info->norm, sizeof info->norm, "caffe");
			const char *meta[] = {"model", "vgg16", "normalization", "caffe", "input",
					      "caffe: BGR, 0..255 minus mean (103.939, 116.779, 123.68)",
					      "source", base, "source_md5", info->md5,
					      "source_xxh3", info->xxh3, "source_size", sz,
					      "keras_layout", tl_h5_layout(f), "top", top,
					      "source_official", offi};
			st = import_write(f, h5, plan, out, meta, sizeof meta / sizeof meta[0] / 2,
					  info, err);
		}
	}
	free(plan);
	tl_h5_close(f);
	return st;
}
