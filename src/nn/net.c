/* net.c - layer graph, parameters, forward and backward (see net.h). */
#include "nn/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "rng.h"
#include "nn/safetensors.h"

#define MAX_LAYERS 512

tl_net *tl_net_new(const char *model, int c, int h, int w)
{
	tl_net *net = calloc(1, sizeof *net);
	TL_CHECK(net);
	snprintf(net->model, sizeof net->model, "%s", model);
	net->layers = calloc(MAX_LAYERS, sizeof *net->layers);
	net->tshape = calloc(MAX_LAYERS + 1, sizeof *net->tshape);
	net->consumers = calloc(MAX_LAYERS + 1, sizeof *net->consumers);
	net->params = calloc(2 * MAX_LAYERS, sizeof *net->params); /* bn: 4 per layer */
	TL_CHECK(net->layers && net->tshape && net->consumers && net->params);
	net->tshape[0] = (tl_shape3){c, h, w};
	net->n_tensors = 1;
	return net;
}

/* Free everything the net holds on its backend; the host parameters are
 * fetched first so they survive (a CPU backend's buffer is param_block). */
static void unbind(tl_net *net)
{
	tl_backend *be = net->be;
	if (!be)
		return;
	if (net->host_params && net->param_block) {
		float *copy = aligned_alloc(64, tl_align64(net->n_param_floats * sizeof(float)));
		TL_CHECK(copy);
		memcpy(copy, net->param_block, net->n_param_floats * sizeof(float));
		net->param_block = copy;
		for (int i = 0; i < net->n_params; i++)
			net->params[i].data = copy + net->params[i].off;
	}
	for (int t = 0; t < net->n_tensors && net->val; t++) {
		be->free(be, net->val[t]);
		be->free(be, net->grad[t]);
		be->free(be, net->aux[t]);
	}
	be->free(be, net->pbuf);
	be->free(be, net->gbuf);
	be->free(be, net->keep);
	be->free(be, net->lbuf);
	be->free(be, net->sbuf);
	free(net->val);
	free(net->grad);
	free(net->aux);
	free(net->grad_written);
	free(net->argmax_ok);
	free(net->stats);
	net->stats = NULL;
	net->val = net->grad = net->aux = NULL;
	net->pbuf = net->gbuf = net->keep = net->lbuf = net->sbuf = NULL;
	net->grad_written = net->argmax_ok = NULL;
	net->max_batch = 0;
	net->host_params = 0;
	net->be = NULL;
}

void tl_net_free(tl_net *net)
{
	if (!net)
		return;
	unbind(net);
	free(net->param_block);
	free(net->layers);
	free(net->tshape);
	free(net->consumers);
	free(net->params);
	free(net);
}

static void note_unit(tl_net *net, const char *unit)
{
	if (net->n_units && strcmp(net->units[net->n_units - 1], unit) == 0)
		return;
	for (int i = 0; i < net->n_units; i++)
		TL_CHECK(strcmp(net->units[i], unit) != 0); /* units are contiguous */
	TL_CHECK(net->n_units < TL_MAX_UNITS);
	snprintf(net->units[net->n_units++], 16, "%s", unit);
}

static tl_layer *add_layer(tl_net *net, tl_layer_kind kind, const char *name, const char *unit,
			   int in)
{
	TL_CHECK(net->n_layers < MAX_LAYERS && in >= 0 && in < net->n_tensors);
	tl_layer *l = &net->layers[net->n_layers++];
	memset(l, 0, sizeof *l);
	l->kind = kind;
	snprintf(l->name, sizeof l->name, "%s", name);
	snprintf(l->unit, sizeof l->unit, "%s", unit);
	for (int i = 0; i < TL_MAX_IN; i++)
		l->in[i] = -1;
	l->in[0] = in;
	l->n_in = 1;
	l->w = l->b = l->rm = l->rv = -1;
	l->trainable = 1;
	l->out = net->n_tensors++;
	net->consumers[in]++;
	note_unit(net, unit);
	return l;
}

static int add_param(tl_net *net, const char *name, int ndim, const int64_t *shape, int layer)
{
	TL_CHECK(net->n_params < 2 * MAX_LAYERS);
	tl_param *p = &net->params[net->n_params];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->ndim = ndim;
	p->size = 1;
	for (int d = 0; d < ndim; d++) {
		p->shape[d] = shape[d];
		p->size *= (size_t)shape[d];
	}
	p->layer = layer;
	return net->n_params++;
}

/* A conv or depthwise conv layer; pad_after only sets the output size. */
static int add_conv(tl_net *net, tl_layer_kind kind, const char *name, const char *unit, int in,
		    int out_c, int k, int stride, int pb, int pa, int relu, const char *wname,
		    const char *bname)
{
	tl_shape3 s = net->tshape[in];
	if (s.h + pb + pa < k || s.w + pb + pa < k)
		return -1;
	int oh = (s.h + pb + pa - k) / stride + 1, ow = (s.w + pb + pa - k) / stride + 1;
	tl_layer *l = add_layer(net, kind, name, unit, in);
	l->out_c = out_c, l->k = k, l->stride = stride, l->pad = pb, l->relu = relu;
	int64_t ws[4] = {out_c, kind == TL_L_DWCONV ? 1 : s.c, k, k}, bs[1] = {out_c};
	l->w = add_param(net, wname, 4, ws, net->n_layers - 1);
	if (bname)
		l->b = add_param(net, bname, 1, bs, net->n_layers - 1);
	net->tshape[l->out] = (tl_shape3){out_c, oh, ow};
	return l->out;
}

int tl_net_conv(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		int stride, int pad, int relu, const char *wname, const char *bname)
{
	return add_conv(net, TL_L_CONV, name, unit, in, out_c, k, stride, pad, pad, relu, wname,
			bname);
}

int tl_net_conv_pad(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		    int stride, int pad_before, int pad_after, int relu, const char *wname,
		    const char *bname)
{
	return add_conv(net, TL_L_CONV, name, unit, in, out_c, k, stride, pad_before, pad_after,
			relu, wname, bname);
}

int tl_net_dwconv(tl_net *net, const char *name, const char *unit, int in, int k, int stride,
		  int pad_before, int pad_after, int relu, const char *wname, const char *bname)
{
	return add_conv(net, TL_L_DWCONV, name, unit, in, net->tshape[in].c, k, stride, pad_before,
			pad_after, relu, wname, bname);
}

int tl_net_bn(tl_net *net, const char *name, const char *unit, int in, int act, float eps,
	      float mom, const char *prefix)
{
	tl_layer *l = add_layer(net, TL_L_BN, name, unit, in);
	int li = net->n_layers - 1;
	l->relu = act, l->eps = eps, l->mom = mom;
	int64_t cs[1] = {net->tshape[in].c};
	static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
	int idx[4];
	for (int i = 0; i < 4; i++) {
		char pn[64];
		snprintf(pn, sizeof pn, "%s.%s", prefix, suffix[i]);
		idx[i] = add_param(net, pn, 1, cs, li);
		net->params[idx[i]].buffer = i >= 2;
		net->params[idx[i]].ones = i == 0 || i == 3;
	}
	l->w = idx[0], l->b = idx[1], l->rm = idx[2], l->rv = idx[3];
	net->tshape[l->out] = net->tshape[in];
	return l->out;
}

int tl_net_lrn(tl_net *net, const char *name, const char *unit, int in, int size, float alpha,
	       float beta, float k)
{
	tl_layer *l = add_layer(net, TL_L_LRN, name, unit, in);
	l->k = size, l->alpha = alpha, l->beta = beta, l->lrn_k = k;
	net->tshape[l->out] = net->tshape[in];
	return l->out;
}

int tl_net_avgpool(tl_net *net, const char *name, const char *unit, int in, int oh, int ow)
{
	if (oh < 1 || ow < 1)
		return -1;
	tl_layer *l = add_layer(net, TL_L_AVGPOOL, name, unit, in);
	net->tshape[l->out] = (tl_shape3){net->tshape[in].c, oh, ow};
	return l->out;
}

int tl_net_add(tl_net *net, const char *name, const char *unit, int a, int b)
{
	tl_shape3 sa = net->tshape[a], sb = net->tshape[b];
	if (sa.c != sb.c || sa.h != sb.h || sa.w != sb.w)
		return -1;
	tl_layer *l = add_layer(net, TL_L_ADD, name, unit, a);
	l->in[1] = b;
	l->n_in = 2;
	net->consumers[b]++;
	net->tshape[l->out] = sa;
	return l->out;
}

/* Appends names to a comma-separated list of size bytes. */
static void list_append(char *list, size_t size, const char *names)
{
	size_t len = strlen(list);
	TL_CHECK(len + strlen(names) + 2 <= size);
	snprintf(list + len, size - len, "%s%s", len ? "," : "", names);
}

void tl_net_alias(tl_net *net, int t, const char *alias)
{
	tl_layer *l = &net->layers[t - 1];
	list_append(l->alias, sizeof l->alias, alias);
}

void tl_net_pre_act_alias(tl_net *net, int t, const char *names)
{
	tl_layer *l = &net->layers[t - 1];
	list_append(l->pre_act, sizeof l->pre_act, names);
}

void tl_net_unit_alias(tl_net *net, const char *unit, const char *alias)
{
	for (int i = 0; i < net->n_units; i++)
		if (strcmp(net->units[i], unit) == 0)
			snprintf(net->unit_alias[i], sizeof net->unit_alias[i], "%s", alias);
}

/* A max pool's output size along one axis: tl_pool_out, and in ceil mode
 * also on an input smaller than the window, as PyTorch and Caffe take it
 * (ceil((in + 2p - k) / s) + 1 windows, one at least when in + 2p >= 2:
 * the window runs past the edge and its max is over the cells inside). */
static int pool_out(int in, int k, int s, int p, int ceil_mode)
{
	if (!ceil_mode || in + 2 * p >= k)
		return tl_pool_out(in, k, s, p, ceil_mode);
	int o = in + 2 * p - k > -s ? 1 : 0; /* ceil of a negative fraction above -1 */
	if (o && (o - 1) * s >= in + p)
		o--;
	return o;
}

int tl_net_maxpool_pad(tl_net *net, const char *name, const char *unit, int in, int k,
		       int stride, int pad, int ceil_mode)
{
	tl_shape3 s = net->tshape[in];
	int oh = pool_out(s.h, k, stride, pad, ceil_mode),
	    ow = pool_out(s.w, k, stride, pad, ceil_mode);
	if (oh < 1 || ow < 1 || 2 * pad > k)
		return -1;
	tl_layer *l = add_layer(net, TL_L_MAXPOOL, name, unit, in);
	l->k = k, l->stride = stride, l->pad = pad, l->ceil_mode = ceil_mode;
	net->tshape[l->out] = (tl_shape3){s.c, oh, ow};
	return l->out;
}

int tl_net_maxpool(tl_net *net, const char *name, const char *unit, int in, int k, int stride,
		   int ceil_mode)
{
	return tl_net_maxpool_pad(net, name, unit, in, k, stride, 0, ceil_mode);
}

int tl_net_gap(tl_net *net, const char *name, const char *unit, int in)
{
	tl_layer *l = add_layer(net, TL_L_GAP, name, unit, in);
	net->tshape[l->out] = (tl_shape3){net->tshape[in].c, 1, 1};
	return l->out;
}

int tl_net_flatten(tl_net *net, const char *name, const char *unit, int in)
{
	tl_layer *l = add_layer(net, TL_L_FLATTEN, name, unit, in);
	tl_shape3 s = net->tshape[in];
	net->tshape[l->out] = (tl_shape3){s.c * s.h * s.w, 1, 1};
	return l->out;
}

int tl_net_dense(tl_net *net, const char *name, const char *unit, int in, int out, int relu,
		 const char *wname, const char *bname)
{
	tl_shape3 s = net->tshape[in];
	tl_layer *l = add_layer(net, TL_L_DENSE, name, unit, in);
	l->out_c = out, l->relu = relu;
	int64_t ws[2] = {out, (int64_t)s.c * s.h * s.w}, bs[1] = {out};
	l->w = add_param(net, wname, 2, ws, net->n_layers - 1);
	l->b = add_param(net, bname, 1, bs, net->n_layers - 1);
	net->tshape[l->out] = (tl_shape3){out, 1, 1};
	return l->out;
}

int tl_net_dropout(tl_net *net, const char *name, const char *unit, int in, float p)
{
	tl_layer *l = add_layer(net, TL_L_DROPOUT, name, unit, in);
	l->drop = p;
	net->tshape[l->out] = net->tshape[in];
	return l->out;
}

int tl_net_concat_n(tl_net *net, const char *name, const char *unit, const int *in, int n)
{
	TL_CHECK(n >= 1 && n <= TL_MAX_IN);
	int c = 0;
	for (int i = 0; i < n; i++) {
		if (net->tshape[in[i]].h != net->tshape[in[0]].h ||
		    net->tshape[in[i]].w != net->tshape[in[0]].w)
			return -1;
		c += net->tshape[in[i]].c;
	}
	tl_layer *l = add_layer(net, TL_L_CONCAT, name, unit, in[0]);
	for (int i = 1; i < n; i++) {
		l->in[i] = in[i];
		net->consumers[in[i]]++;
	}
	l->n_in = n;
	net->tshape[l->out] = (tl_shape3){c, net->tshape[in[0]].h, net->tshape[in[0]].w};
	return l->out;
}

int tl_net_concat(tl_net *net, const char *name, const char *unit, int a, int b)
{
	int in[2] = {a, b};
	return tl_net_concat_n(net, name, unit, in, 2);
}

tl_status tl_net_finalize(tl_net *net, tl_err *err)
{
	/* buffers (running stats) first, so the trainable parameters stay one
	 * contiguous tail for the optimizer's single update */
	size_t total = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < net->n_params; i++) {
			if (net->params[i].buffer != !pass)
				continue;
			net->params[i].off = total;
			total += (net->params[i].size + 15) & ~(size_t)15; /* 64-byte aligned */
		}
	net->n_param_floats = total;
	net->param_block = aligned_alloc(64, tl_align64(total * sizeof(float)));
	if (!net->param_block)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for %zu parameters", net->model,
				 total);
	memset(net->param_block, 0, total * sizeof(float));
	for (int i = 0; i < net->n_params; i++) {
		net->params[i].data = net->param_block + net->params[i].off;
		for (size_t k = 0; k < net->params[i].size && net->params[i].ones; k++)
			net->params[i].data[k] = 1.0f;
	}
	return TL_OK;
}

int tl_net_find_param(const tl_net *net, const char *name)
{
	for (int i = 0; i < net->n_params; i++)
		if (strcmp(net->params[i].name, name) == 0)
			return i;
	return -1;
}

/* Whether name is one of the comma-separated names in list. */
static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

/* The first layer of the module `name` names (-u): the layer itself, or
 * the earliest whose alias is a torchvision path inside it ("features.14.
 * conv.1" starts at its depthwise conv "features.14.conv.1.0", while
 * --features takes the module's output, the batch norm after it). */
static int first_layer_of(const tl_net *net, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < net->n_layers; i++) {
		const tl_layer *l = &net->layers[i];
		if (strcmp(l->name, name) == 0 || in_list(l->alias, name) ||
		    in_list(l->pre_act, name))
			return i;
		for (const char *p = l->alias; *p;) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			if (len > n && strncmp(p, name, n) == 0 && p[n] == '.')
				return i;
			p += len + (e != NULL);
		}
	}
	return -1;
}

int tl_net_find_layer(const tl_net *net, const char *name)
{
	for (int i = 0; i < net->n_layers; i++)
		if (strcmp(net->layers[i].name, name) == 0)
			return i;
	for (int i = 0; i < net->n_layers; i++)
		if (in_list(net->layers[i].alias, name))
			return i;
	return -1;
}

int tl_net_param_in_head(const tl_net *net, int i)
{
	return strcmp(net->layers[net->params[i].layer].unit, "head") == 0;
}

int tl_net_find_unit(const tl_net *net, const char *name)
{
	for (int i = 0; i < net->n_units; i++)
		if (strcmp(net->units[i], name) == 0 ||
		    (net->unit_alias[i][0] && strcmp(net->unit_alias[i], name) == 0))
			return i;
	return -1;
}

int tl_net_unit_output(const tl_net *net, int u)
{
	int last = -1;
	for (int l = 0; l < net->n_layers; l++)
		if (strcmp(net->layers[l].unit, net->units[u]) == 0 &&
		    net->layers[l].kind != TL_L_DROPOUT)
			last = l;
	return last;
}

void tl_net_units_text(const tl_net *net, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = 0;
	for (int i = 0; i < net->n_units; i++) {
		char one[64];
		int n = snprintf(one, sizeof one, "%s%s%s%s%s", i ? " " : "", net->units[i],
				 net->unit_alias[i][0] ? " (" : "", net->unit_alias[i],
				 net->unit_alias[i][0] ? ")" : "");
		if (n < 0 || len + (size_t)n + 1 > cap)
			break;
		memcpy(buf + len, one, (size_t)n + 1);
		len += (size_t)n;
	}
}

int tl_net_find_fused(const tl_net *net, const char *name)
{
	for (int i = 0; i < net->n_layers; i++)
		if (in_list(net->layers[i].pre_act, name))
			return i;
	return -1;
}

/* The normalization a weights file declares, or -1. */
static int declared_norm(const tl_st_file *f)
{
	const char *n = tl_st_meta(f, "normalization"), *in = tl_st_meta(f, "input");
	tl_norm_kind k;
	if (n && tl_norm_parse(n, &k) == 0)
		return (int)k;
	if (in && (strstr(in, "caffe") || strstr(in, "BGR")))
		return TL_NORM_CAFFE;
	return -1;
}

tl_status tl_net_load(tl_net *net, const char *path, int require_all, int *norm, tl_err *err)
{
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, path, err));
	if (norm)
		*norm = declared_norm(f);
	tl_status st = TL_OK;
	for (int i = 0; i < net->n_params && st == TL_OK; i++) {
		tl_param *p = &net->params[i];
		if (!tl_st_find(f, p->name) && !require_all)
			continue;
		st = tl_st_read_f32(f, p->name, p->ndim, p->shape, p->data, err);
		if (st == TL_OK)
			p->loaded = 1;
	}
	if (st != TL_OK && strstr(err->msg, ": missing")) {
		char more[200];
		snprintf(more, sizeof more, " (is this a %s weights file?)", net->model);
		strncat(err->msg, more, sizeof err->msg - strlen(err->msg) - 1);
	}
	tl_st_close(f);
	tl_net_push_params(net);
	return st;
}

tl_status tl_net_check_finite(const tl_net *net, const char *what, tl_err *err)
{
	for (int i = 0; i < net->n_params; i++) {
		const tl_param *p = &net->params[i];
		size_t bad = 0;
		for (size_t k = 0; k < p->size; k++)
			bad += !isfinite(p->data[k]);
		if (bad)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: tensor %s: %zu of %zu values are not finite (expected finite "
					 "weights, got NaN or Inf)",
					 what, p->name, bad, p->size);
	}
	return TL_OK;
}

size_t tl_net_count_nonfinite(tl_net *net)
{
	return net->be->count_nonfinite(net->be, (tl_mem){net->pbuf, 0}, net->n_param_floats);
}

void tl_net_init(tl_net *net, uint64_t seed, int only_unloaded)
{
	for (int i = 0; i < net->n_params; i++) {
		tl_param *p = &net->params[i];
		if (only_unloaded && p->loaded)
			continue;
		uint64_t s = seed ^ (0x1234567ull * (uint64_t)(i + 1));
		if (p->ndim == 1) {
			for (size_t k = 0; k < p->size; k++)
				p->data[k] = p->ones ? 1.0f : 0.0f;
		} else if (p->ndim == 4) { /* He normal: std sqrt(2 / fan_in) */
			double sd = sqrt(2.0 / (double)(p->shape[1] * p->shape[2] * p->shape[3]));
			for (size_t k = 0; k < p->size; k++) {
				double u1 = tl_rng_unit(&s) + 1e-300, u2 = tl_rng_unit(&s);
				p->data[k] = (float)(sd * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
			}
		} else { /* PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
			double lim = 1.0 / sqrt((double)p->shape[1]);
			for (size_t k = 0; k < p->size; k++)
				p->data[k] = (float)((2 * tl_rng_unit(&s) - 1) * lim);
			tl_param *bias = i + 1 < net->n_params ? &net->params[i + 1] : NULL;
			if (bias && bias->ndim == 1 && bias->layer == p->layer)
				for (size_t k = 0; k < bias->size; k++)
					bias->data[k] = (float)((2 * tl_rng_unit(&s) - 1) * lim);
			i += bias && bias->layer == p->layer; /* its bias is done */
		}
	}
	tl_net_push_params(net);
}

tl_status tl_net_save(tl_net *net, const char *path, const char *const *meta_kv, size_t n_meta,
		      tl_err *err)
{
	TL_TRY(tl_net_pull_params(net, err));
	tl_st_out *t = calloc((size_t)net->n_params, sizeof *t);
	if (!t)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	for (int i = 0; i < net->n_params; i++) {
		t[i].name = net->params[i].name;
		t[i].dtype = TL_ST_F32;
		t[i].ndim = net->params[i].ndim;
		memcpy(t[i].shape, net->params[i].shape, sizeof net->params[i].shape);
		t[i].data = net->params[i].data;
	}
	tl_status st = tl_st_write(path, t, (size_t)net->n_params, meta_kv, n_meta, err);
	free(t);
	return st;
}

tl_status tl_net_unfreeze_from(tl_net *net, const char *unit, tl_err *err)
{
	int from = 0;
	if (unit && strcmp(unit, "all") != 0) {
		from = tl_net_find_unit(net, unit);
		int layer = from < 0 ? first_layer_of(net, unit) : -1;
		if (layer >= 0) { /* a layer: it and every later one train */
			for (int l = 0; l < net->n_layers; l++)
				net->layers[l].trainable = l >= layer;
			return TL_OK;
		}
		if (from < 0) {
			char list[1500];
			tl_net_units_text(net, list, sizeof list);
			return tl_seterr(err, TL_EUSAGE,
					 "%s has no unit or layer '%s' (units: %s all; or a layer name, "
					 "as --features lists)",
					 net->model, unit, list);
		}
	}
	for (int l = 0; l < net->n_layers; l++) {
		int u = 0;
		while (strcmp(net->units[u], net->layers[l].unit) != 0)
			u++;
		net->layers[l].trainable = u >= from;
	}
	return TL_OK;
}

int tl_net_first_trainable(const tl_net *net)
{
	for (int l = 0; l < net->n_layers; l++)
		if (net->layers[l].trainable && net->layers[l].w >= 0)
			return l;
	return net->n_layers;
}

size_t tl_net_count_params(const tl_net *net, int trainable_only)
{
	size_t n = 0;
	for (int i = 0; i < net->n_params; i++) /* running stats are buffers, not parameters */
		if (!net->params[i].buffer &&
		    (!trainable_only || net->layers[net->params[i].layer].trainable))
			n += net->params[i].size;
	return n;
}

int tl_net_out_size(const tl_net *net, int t)
{
	return net->tshape[t].c * net->tshape[t].h * net->tshape[t].w;
}

/* Bytes of the per-tensor buffers of one tensor for a batch of max_batch:
 * value, gradient, and an argmax or dropout mask where its layer has one. */
static size_t tensor_bytes(const tl_net *net, int t, int max_batch)
{
	return (size_t)max_batch * (size_t)tl_net_out_size(net, t) * sizeof(float);
}

/* The layer writing tensor t (t > 0). */
static const tl_layer *producer(const tl_net *net, int t)
{
	return &net->layers[t - 1];
}

/* Bytes of tensor t's auxiliary buffer: a max pool's argmax, a dropout
 * mask, an LRN's scale (each one per element), a batch norm's mean and
 * invstd (two per channel); 0 for the rest. */
static size_t aux_bytes(const tl_net *net, int t, int max_batch)
{
	if (t == 0)
		return 0;
	switch (producer(net, t)->kind) {
	case TL_L_MAXPOOL:
	case TL_L_DROPOUT:
	case TL_L_LRN:
		return tensor_bytes(net, t, max_batch);
	case TL_L_BN:
		return 2 * (size_t)net->tshape[t].c * sizeof(float);
	default:
		return 0;
	}
}

size_t tl_net_device_bytes(const tl_net *net, int max_batch)
{
	size_t total = 3 * net->n_param_floats * sizeof(float) + 3 * (size_t)max_batch * 4;
	for (int t = 0; t < net->n_tensors; t++)
		total += tensor_bytes(net, t, max_batch) * 2 + aux_bytes(net, t, max_batch);
	return total;
}

static void conv_shape(const tl_net *net, const tl_layer *l, int n, tl_conv_shape *cs)
{
	tl_shape3 si = net->tshape[l->in[0]], so = net->tshape[l->out];
	*cs = (tl_conv_shape){.n = n, .c = si.c, .h = si.h, .w = si.w, .o = l->out_c, .kh = l->k,
			      .kw = l->k, .sh = l->stride, .sw = l->stride, .ph = l->pad,
			      .pw = l->pad, .oh = so.h, .ow = so.w};
}

static void pool_shape(const tl_net *net, const tl_layer *l, int n, tl_pool_shape *ps)
{
	tl_shape3 si = net->tshape[l->in[0]], so = net->tshape[l->out];
	*ps = (tl_pool_shape){.n = n, .c = si.c, .h = si.h, .w = si.w, .k = l->k,
			      .s = l->stride, .p = l->pad, .oh = so.h, .ow = so.w};
}

/* A device that cannot hold the run: say how much it needs and which batch
 * would fit (90% of the device memory, every tensor within the largest
 * buffer the device allows). */
static tl_status check_fits(const tl_net *net, tl_backend *be, int max_batch, tl_err *err)
{
	if (!be->mem_total)
		return TL_OK;
	size_t need = tl_net_device_bytes(net, max_batch) + be->workspace_bytes(be);
	size_t avail = be->mem_total / 100 * 90, biggest = 0;
	for (int t = 0; t < net->n_tensors; t++)
		if (tensor_bytes(net, t, max_batch) > biggest)
			biggest = tensor_bytes(net, t, max_batch);
	int over_buffer = be->max_alloc && biggest > be->max_alloc;
	if (need <= avail && !over_buffer)
		return TL_OK;
	size_t fixed = tl_net_device_bytes(net, 0) + be->workspace_bytes(be);
	size_t per = tl_net_device_bytes(net, 1) - tl_net_device_bytes(net, 0);
	long fit = avail > fixed ? (long)((avail - fixed) / per) : 0;
	if (fit > max_batch)
		fit = max_batch;
	for (int t = 0; t < net->n_tensors && be->max_alloc; t++)
		while (fit > 0 && tensor_bytes(net, t, (int)fit) > be->max_alloc)
			fit--;
	char advice[64];
	if (fit > 0)
		snprintf(advice, sizeof advice, "--batch %ld would fit", fit);
	else
		snprintf(advice, sizeof advice, "not even a batch of 1 fits");
	return tl_seterr(err, TL_ENOMEM,
			 "%s: %s: a batch of %d needs about %zu MiB of device memory, its largest "
			 "tensor %zu MiB; the device has %zu MiB, its largest buffer %zu MiB; %s",
			 be->name, net->model, max_batch, need >> 20, biggest >> 20, be->mem_total >> 20,
			 be->max_alloc >> 20, advice);
}

tl_status tl_net_bind(tl_net *net, tl_backend *be, int max_batch, tl_err *err)
{
	unbind(net);
	for (int l = 0; l < net->n_layers; l++)
		if (net->layers[l].kind == TL_L_CONV) {
			tl_conv_shape cs;
			conv_shape(net, &net->layers[l], max_batch, &cs);
			be->prepare_conv(be, &cs);
		}
	TL_TRY(check_fits(net, be, max_batch, err));
	net->be = be;
	int T = net->n_tensors;
	net->val = calloc((size_t)T, sizeof(tl_buf *));
	net->grad = calloc((size_t)T, sizeof(tl_buf *));
	net->aux = calloc((size_t)T, sizeof(tl_buf *));
	net->grad_written = calloc((size_t)T, sizeof(int));
	net->argmax_ok = calloc((size_t)T, sizeof(int));
	net->stats = malloc((size_t)max_batch * 8);
	if (!net->val || !net->grad || !net->aux || !net->grad_written || !net->argmax_ok ||
	    !net->stats) {
		unbind(net);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", net->model);
	}
	size_t pbytes = net->n_param_floats * sizeof(float);
	for (int t = 0; t < T; t++) {
		size_t b = tensor_bytes(net, t, max_batch);
		net->val[t] = be->alloc(be, b);
		net->grad[t] = be->alloc(be, b);
		if (aux_bytes(net, t, max_batch))
			net->aux[t] = be->alloc(be, aux_bytes(net, t, max_batch));
	}
	net->pbuf = be->alloc(be, pbytes);
	net->gbuf = be->alloc(be, pbytes);
	net->lbuf = be->alloc(be, (size_t)max_batch * 4);
	net->sbuf = be->alloc(be, (size_t)max_batch * 8);
	tl_status st = be->sync(be, err);
	if (st != TL_OK) {
		unbind(net);
		if (st == TL_ENOMEM)
			snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
				 " (%s at batch %d needs about %zu MiB; try a smaller --batch)",
				 net->model, max_batch, tl_net_device_bytes(net, max_batch) >> 20);
		return st;
	}
	net->max_batch = max_batch;
	be->fill(be, (tl_mem){net->gbuf, 0}, 0.0f, net->n_param_floats);
	float *hp = be->host(be, (tl_mem){net->pbuf, 0});
	if (hp) { /* CPU: the buffer becomes the host copy itself */
		memcpy(hp, net->param_block, pbytes);
		free(net->param_block);
		net->param_block = hp;
		for (int i = 0; i < net->n_params; i++)
			net->params[i].data = hp + net->params[i].off;
		net->host_params = 1;
	} else {
		tl_net_push_params(net);
	}
	return be->sync(be, err);
}

void tl_net_push_params(tl_net *net)
{
	if (net->be && !net->host_params)
		net->be->upload(net->be, (tl_mem){net->pbuf, 0}, net->param_block,
				net->n_param_floats * sizeof(float));
}

tl_status tl_net_pull_params(tl_net *net, tl_err *err)
{
	if (!net->be)
		return TL_OK;
	if (net->host_params)
		return net->be->sync(net->be, err);
	return net->be->download(net->be, (tl_mem){net->pbuf, 0}, net->param_block,
				 net->n_param_floats * sizeof(float), err);
}

void tl_net_keep(tl_net *net)
{
	tl_backend *be = net->be;
	if (!net->keep)
		net->keep = be->alloc(be, net->n_param_floats * sizeof(float));
	if (net->keep)
		be->copy2d(be, (tl_mem){net->keep, 0}, 0, (tl_mem){net->pbuf, 0}, 0, 1,
			   net->n_param_floats, 0);
}

void tl_net_restore(tl_net *net)
{
	tl_backend *be = net->be;
	if (net->keep)
		be->copy2d(be, (tl_mem){net->pbuf, 0}, 0, (tl_mem){net->keep, 0}, 0, 1,
			   net->n_param_floats, 0);
}

tl_mem tl_net_val(const tl_net *net, int t)
{
	return (tl_mem){net->val[t], 0};
}

tl_mem tl_net_grad(const tl_net *net, int t)
{
	return (tl_mem){net->grad[t], 0};
}

tl_mem tl_net_param(const tl_net *net, int i)
{
	return (tl_mem){i < 0 ? NULL : net->pbuf, i < 0 ? 0 : net->params[i].off};
}

tl_mem tl_net_param_grad(const tl_net *net, int i)
{
	return (tl_mem){i < 0 ? NULL : net->gbuf, i < 0 ? 0 : net->params[i].off};
}

void tl_net_set(tl_net *net, int t, const float *src, int n)
{
	TL_CHECK(n <= net->max_batch);
	net->be->upload(net->be, tl_net_val(net, t), src,
			(size_t)n * tl_net_out_size(net, t) * sizeof(float));
}

tl_status tl_net_get(tl_net *net, int t, float *dst, int n, tl_err *err)
{
	return net->be->download(net->be, tl_net_val(net, t), dst,
				 (size_t)n * tl_net_out_size(net, t) * sizeof(float), err);
}

static void forward_layer(tl_net *net, tl_layer *l, int n)
{
	tl_backend *be = net->be;
	tl_mem x = tl_net_val(net, l->in[0]), y = tl_net_val(net, l->out);
	size_t isz = (size_t)tl_net_out_size(net, l->in[0]);
	switch (l->kind) {
	case TL_L_CONV: {
		tl_conv_shape cs;
		conv_shape(net, l, n, &cs);
		be->conv_fwd(be, &cs, x, tl_net_param(net, l->w), tl_net_param(net, l->b), l->relu, y);
		break;
	}
	case TL_L_MAXPOOL: {
		tl_pool_shape ps;
		pool_shape(net, l, n, &ps);
		/* the argmax only where a backward will read it: training, and a
		 * layer at or above the first trainable one (tl_net_backward) */
		net->argmax_ok[l->out] =
			!be->maxpool_infer ||
			(net->training && (int)(l - net->layers) >= tl_net_first_trainable(net));
		if (net->argmax_ok[l->out])
			be->maxpool_fwd(be, &ps, x, y, (tl_mem){net->aux[l->out], 0});
		else
			be->maxpool_infer(be, &ps, x, y);
		break;
	}
	case TL_L_GAP: {
		tl_shape3 s = net->tshape[l->in[0]];
		be->gap_fwd(be, n, s.c, s.h * s.w, x, y);
		break;
	}
	case TL_L_FLATTEN:
		be->copy2d(be, y, 0, x, 0, 1, (size_t)n * isz, 0);
		break;
	case TL_L_DENSE:
		be->dense_fwd(be, n, (int)isz, l->out_c, x, tl_net_param(net, l->w),
			      tl_net_param(net, l->b), l->relu, y);
		break;
	case TL_L_DROPOUT:
		if (!net->training || l->drop <= 0)
			be->copy2d(be, y, 0, x, 0, 1, (size_t)n * isz, 0);
		else
			be->dropout_fwd(be, (size_t)n * isz, l->drop, tl_rng_next(&net->rng), x,
					(tl_mem){net->aux[l->out], 0}, y);
		break;
	case TL_L_CONCAT: {
		size_t osz = (size_t)tl_net_out_size(net, l->out), at = 0;
		for (int i = 0; i < l->n_in; i++) {
			size_t sz = (size_t)tl_net_out_size(net, l->in[i]);
			be->copy2d(be, tl_mem_at(y, at), osz, tl_net_val(net, l->in[i]), sz,
				   (size_t)n, sz, 0);
			at += sz;
		}
		break;
	}
	case TL_L_DWCONV: {
		tl_conv_shape cs;
		conv_shape(net, l, n, &cs);
		be->dwconv_fwd(be, &cs, x, tl_net_param(net, l->w), tl_net_param(net, l->b), l->relu,
			       y);
		break;
	}
	case TL_L_BN: {
		tl_shape3 s = net->tshape[l->in[0]];
		be->bn_fwd(be, n, s.c, s.h * s.w, l->eps, l->mom, net->training && l->trainable, x,
			   tl_net_param(net, l->w), tl_net_param(net, l->b), tl_net_param(net, l->rm),
			   tl_net_param(net, l->rv), (tl_mem){net->aux[l->out], 0}, l->relu, y);
		break;
	}
	case TL_L_LRN: {
		tl_shape3 s = net->tshape[l->in[0]];
		be->lrn_fwd(be, n, s.c, s.h * s.w, l->k, l->alpha, l->beta, l->lrn_k, x,
			    (tl_mem){net->aux[l->out], 0}, y);
		break;
	}
	case TL_L_AVGPOOL: {
		tl_pool_shape ps;
		pool_shape(net, l, n, &ps);
		be->avgpool_fwd(be, &ps, x, y);
		break;
	}
	case TL_L_ADD:
		be->copy2d(be, y, 0, x, 0, 1, (size_t)n * isz, 0);
		be->copy2d(be, y, 0, tl_net_val(net, l->in[1]), 0, 1, (size_t)n * isz, 1);
		break;
	}
}

void tl_net_forward(tl_net *net, int n, int from, int to)
{
	TL_CHECK(net->be && n <= net->max_batch);
	for (int li = from; li < to; li++)
		forward_layer(net, &net->layers[li], n);
}

tl_status tl_net_loss(tl_net *net, int n, const int32_t *labels, int grad, double *loss,
		      int32_t *pred, tl_err *err)
{
	tl_backend *be = net->be;
	int last = net->n_tensors - 1, k = tl_net_out_size(net, last);
	TL_CHECK(n <= net->max_batch);
	be->upload(be, (tl_mem){net->lbuf, 0}, labels, (size_t)n * 4);
	be->softmax_xent(be, n, k, tl_net_val(net, last), (tl_mem){net->lbuf, 0},
			 net->label_smoothing, 1.0f / (float)n,
			 grad ? tl_net_grad(net, last) : (tl_mem){0}, (tl_mem){net->sbuf, 0});
	float *sp = net->stats;
	TL_TRY(be->download(be, (tl_mem){net->sbuf, 0}, sp, (size_t)n * 8, err));
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += sp[i];
	*loss = sum;
	if (pred)
		memcpy(pred, (int32_t *)(sp + n), (size_t)n * 4);
	return TL_OK;
}

/* grad[t] (+)= src: rows x cols at ld strides, for a tensor whose gradient
 * may already hold another consumer's contribution. */
static void grad_put(tl_net *net, int t, size_t dst_off, size_t dst_ld, tl_mem src,
		     size_t src_ld, size_t rows, size_t cols)
{
	net->be->copy2d(net->be, tl_mem_at(tl_net_grad(net, t), dst_off), dst_ld, src, src_ld, rows,
			cols, net->grad_written[t]);
}

/* Backpropagate through one layer; need_dx[i]: whether input i wants its
 * gradient (it is computed by a layer that will run backward). */
static void backward_layer(tl_net *net, tl_layer *l, int n, const int *need)
{
	int need_dx = need[0];
	tl_backend *be = net->be;
	int t_in = l->in[0];
	tl_mem dy = tl_net_grad(net, l->out), none = {0};
	tl_mem dx = need_dx ? tl_net_grad(net, t_in) : none;
	int acc = need_dx ? net->grad_written[t_in] : 0;
	size_t isz = (size_t)tl_net_out_size(net, t_in);
	switch (l->kind) {
	case TL_L_CONV: {
		tl_conv_shape cs;
		conv_shape(net, l, n, &cs);
		be->conv_bwd(be, &cs, tl_net_val(net, t_in), tl_net_param(net, l->w),
			     tl_net_val(net, l->out), l->relu, dy, dx, acc,
			     l->trainable ? tl_net_param_grad(net, l->w) : none,
			     l->trainable ? tl_net_param_grad(net, l->b) : none);
		break;
	}
	case TL_L_MAXPOOL: {
		tl_pool_shape ps;
		pool_shape(net, l, n, &ps);
		if (need_dx && !net->argmax_ok[l->out]) { /* a backward after an inference forward */
			be->maxpool_fwd(be, &ps, tl_net_val(net, t_in), tl_net_val(net, l->out),
					(tl_mem){net->aux[l->out], 0});
			net->argmax_ok[l->out] = 1;
		}
		if (need_dx)
			be->maxpool_bwd(be, &ps, dy, (tl_mem){net->aux[l->out], 0}, dx, acc);
		break;
	}
	case TL_L_GAP: {
		tl_shape3 s = net->tshape[t_in];
		if (need_dx)
			be->gap_bwd(be, n, s.c, s.h * s.w, dy, dx, acc);
		break;
	}
	case TL_L_FLATTEN:
		if (need_dx)
			grad_put(net, t_in, 0, 0, dy, 0, 1, (size_t)n * isz);
		break;
	case TL_L_DENSE:
		be->dense_bwd(be, n, (int)isz, l->out_c, tl_net_val(net, t_in), tl_net_param(net, l->w),
			      tl_net_val(net, l->out), l->relu, dy, dx, acc,
			      l->trainable ? tl_net_param_grad(net, l->w) : none,
			      l->trainable ? tl_net_param_grad(net, l->b) : none);
		break;
	case TL_L_DROPOUT:
		if (!need_dx)
			break;
		if (net->training && l->drop > 0)
			be->mul_acc(be, (size_t)n * isz, dy, (tl_mem){net->aux[l->out], 0}, dx, acc);
		else
			grad_put(net, t_in, 0, 0, dy, 0, 1, (size_t)n * isz);
		break;
	case TL_L_CONCAT:
	case TL_L_ADD: {
		size_t osz = (size_t)tl_net_out_size(net, l->out), at = 0;
		for (int i = 0; i < l->n_in; i++) {
			int t = l->in[i];
			size_t sz = (size_t)tl_net_out_size(net, t);
			if (need[i]) {
				if (l->kind == TL_L_CONCAT)
					grad_put(net, t, 0, sz, tl_mem_at(dy, at), osz, (size_t)n, sz);
				else
					grad_put(net, t, 0, 0, dy, 0, 1, (size_t)n * sz);
				net->grad_written[t] = 1;
			}
			at += sz;
		}
		break;
	}
	case TL_L_DWCONV: {
		tl_conv_shape cs;
		conv_shape(net, l, n, &cs);
		be->dwconv_bwd(be, &cs, tl_net_val(net, t_in), tl_net_param(net, l->w),
			       tl_net_val(net, l->out), l->relu, dy, dx, acc,
			       l->trainable ? tl_net_param_grad(net, l->w) : none,
			       l->trainable ? tl_net_param_grad(net, l->b) : none);
		break;
	}
	case TL_L_BN: {
		tl_shape3 s = net->tshape[t_in];
		be->bn_bwd(be, n, s.c, s.h * s.w, net->training && l->trainable,
			   tl_net_val(net, t_in), tl_net_param(net, l->w),
			   (tl_mem){net->aux[l->out], 0}, tl_net_val(net, l->out), l->relu, dy, dx, acc,
			   l->trainable ? tl_net_param_grad(net, l->w) : none,
			   l->trainable ? tl_net_param_grad(net, l->b) : none);
		break;
	}
	case TL_L_LRN: {
		tl_shape3 s = net->tshape[t_in];
		if (need_dx)
			be->lrn_bwd(be, n, s.c, s.h * s.w, l->k, l->alpha, l->beta,
				    tl_net_val(net, t_in), tl_net_val(net, l->out),
				    (tl_mem){net->aux[l->out], 0}, dy, dx, acc);
		break;
	}
	case TL_L_AVGPOOL: {
		tl_pool_shape ps;
		pool_shape(net, l, n, &ps);
		if (need_dx)
			be->avgpool_bwd(be, &ps, dy, dx, acc);
		break;
	}
	}
	if (need_dx)
		net->grad_written[t_in] = 1;
}

void tl_net_backward(tl_net *net, int n)
{
	TL_CHECK(net->be && n <= net->max_batch);
	int first = tl_net_first_trainable(net);
	memset(net->grad_written, 0, sizeof(int) * (size_t)net->n_tensors);
	net->grad_written[net->n_tensors - 1] = 1; /* tl_net_loss wrote it */
	for (int li = net->n_layers - 1; li >= first; li--) {
		tl_layer *l = &net->layers[li];
		if (!net->grad_written[l->out])
			continue; /* nothing flows back through this layer */
		/* an input wants its gradient when the layer that made it runs
		 * backward too (tensor t is made by layer t - 1) */
		int need[TL_MAX_IN] = {0};
		for (int i = 0; i < l->n_in; i++)
			need[i] = l->in[i] > 0 && l->in[i] - 1 >= first;
		backward_layer(net, l, n, need);
	}
}
