/* net.c - layer graph, parameters, forward and backward (see net.h). */
#include "nn/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "rng.h"
#include "nn/safetensors.h"

#define MAX_LAYERS 128

tl_net *tl_net_new(const char *model, int c, int h, int w)
{
	tl_net *net = calloc(1, sizeof *net);
	TL_CHECK(net);
	snprintf(net->model, sizeof net->model, "%s", model);
	net->layers = calloc(MAX_LAYERS, sizeof *net->layers);
	net->tshape = calloc(MAX_LAYERS + 1, sizeof *net->tshape);
	net->consumers = calloc(MAX_LAYERS + 1, sizeof *net->consumers);
	net->params = calloc(2 * MAX_LAYERS, sizeof *net->params);
	TL_CHECK(net->layers && net->tshape && net->consumers && net->params);
	net->tshape[0] = (tl_shape3){c, h, w};
	net->n_tensors = 1;
	return net;
}

static void free_batch(tl_net *net)
{
	for (int t = 0; t < net->n_tensors && net->val; t++) {
		free(net->val[t]);
		free(net->grad[t]);
		free(net->argmax[t]);
		free(net->mask[t]);
	}
	free(net->val);
	free(net->grad);
	free(net->argmax);
	free(net->mask);
	free(net->grad_written);
	net->val = net->grad = net->mask = NULL;
	net->argmax = NULL;
	net->grad_written = NULL;
	net->max_batch = 0;
}

void tl_net_free(tl_net *net)
{
	if (!net)
		return;
	free_batch(net);
	free(net->param_block);
	free(net->grad_block);
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
	TL_CHECK(net->n_units < 24);
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
	l->in[0] = in;
	l->in[1] = -1;
	l->n_in = 1;
	l->w = l->b = -1;
	l->trainable = 1;
	l->out = net->n_tensors++;
	net->consumers[in]++;
	note_unit(net, unit);
	return l;
}

static int add_param(tl_net *net, const char *name, int ndim, const int64_t *shape, int layer)
{
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

int tl_net_conv(tl_net *net, const char *name, const char *unit, int in, int out_c, int k,
		int stride, int pad, int relu, const char *wname, const char *bname)
{
	tl_shape3 s = net->tshape[in];
	int oh = tl_conv_out(s.h, k, stride, pad), ow = tl_conv_out(s.w, k, stride, pad);
	if (oh < 1 || ow < 1)
		return -1;
	tl_layer *l = add_layer(net, TL_L_CONV, name, unit, in);
	l->out_c = out_c, l->k = k, l->stride = stride, l->pad = pad, l->relu = relu;
	int64_t ws[4] = {out_c, s.c, k, k}, bs[1] = {out_c};
	l->w = add_param(net, wname, 4, ws, net->n_layers - 1);
	l->b = add_param(net, bname, 1, bs, net->n_layers - 1);
	net->tshape[l->out] = (tl_shape3){out_c, oh, ow};
	return l->out;
}

int tl_net_maxpool(tl_net *net, const char *name, const char *unit, int in, int k, int stride,
		   int ceil_mode)
{
	tl_shape3 s = net->tshape[in];
	int oh = tl_pool_out(s.h, k, stride, ceil_mode), ow = tl_pool_out(s.w, k, stride, ceil_mode);
	if (oh < 1 || ow < 1)
		return -1;
	tl_layer *l = add_layer(net, TL_L_MAXPOOL, name, unit, in);
	l->k = k, l->stride = stride, l->ceil_mode = ceil_mode;
	net->tshape[l->out] = (tl_shape3){s.c, oh, ow};
	return l->out;
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

int tl_net_concat(tl_net *net, const char *name, const char *unit, int a, int b)
{
	tl_shape3 sa = net->tshape[a], sb = net->tshape[b];
	if (sa.h != sb.h || sa.w != sb.w)
		return -1;
	tl_layer *l = add_layer(net, TL_L_CONCAT, name, unit, a);
	l->in[1] = b;
	l->n_in = 2;
	net->consumers[b]++;
	net->tshape[l->out] = (tl_shape3){sa.c + sb.c, sa.h, sa.w};
	return l->out;
}

tl_status tl_net_finalize(tl_net *net, tl_err *err)
{
	size_t total = 0;
	for (int i = 0; i < net->n_params; i++) {
		net->params[i].off = total;
		total += (net->params[i].size + 15) & ~(size_t)15; /* 64-byte aligned blocks */
	}
	net->n_param_floats = total;
	net->param_block = aligned_alloc(64, tl_align64(total * sizeof(float)));
	net->grad_block = aligned_alloc(64, tl_align64(total * sizeof(float)));
	if (!net->param_block || !net->grad_block)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for %zu parameters", net->model,
				 total);
	memset(net->param_block, 0, total * sizeof(float));
	memset(net->grad_block, 0, total * sizeof(float));
	for (int i = 0; i < net->n_params; i++) {
		net->params[i].data = net->param_block + net->params[i].off;
		net->params[i].grad = net->grad_block + net->params[i].off;
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

int tl_net_find_layer(const tl_net *net, const char *name)
{
	for (int i = 0; i < net->n_layers; i++)
		if (strcmp(net->layers[i].name, name) == 0)
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
	return st;
}

void tl_net_init(tl_net *net, uint64_t seed, int only_unloaded)
{
	for (int i = 0; i < net->n_params; i++) {
		tl_param *p = &net->params[i];
		if (only_unloaded && p->loaded)
			continue;
		uint64_t s = seed ^ (0x1234567ull * (uint64_t)(i + 1));
		if (p->ndim == 1) {
			memset(p->data, 0, p->size * sizeof(float));
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
}

tl_status tl_net_save(const tl_net *net, const char *path, const char *const *meta_kv,
		      size_t n_meta, tl_err *err)
{
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
		from = -1;
		for (int i = 0; i < net->n_units; i++)
			if (strcmp(net->units[i], unit) == 0)
				from = i;
		if (from < 0) {
			char list[400] = "";
			for (int i = 0; i < net->n_units; i++) {
				strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
				strncat(list, net->units[i], sizeof list - strlen(list) - 1);
			}
			return tl_seterr(err, TL_EUSAGE, "%s has no unit '%s' (expected one of: %s, all)",
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
	for (int i = 0; i < net->n_params; i++)
		if (!trainable_only || net->layers[net->params[i].layer].trainable)
			n += net->params[i].size;
	return n;
}

int tl_net_out_size(const tl_net *net, int t)
{
	return net->tshape[t].c * net->tshape[t].h * net->tshape[t].w;
}

tl_status tl_net_alloc(tl_net *net, int max_batch, tl_err *err)
{
	free_batch(net);
	int T = net->n_tensors;
	net->val = calloc((size_t)T, sizeof(float *));
	net->grad = calloc((size_t)T, sizeof(float *));
	net->argmax = calloc((size_t)T, sizeof(int32_t *));
	net->mask = calloc((size_t)T, sizeof(float *));
	net->grad_written = calloc((size_t)T, sizeof(int));
	if (!net->val || !net->grad || !net->argmax || !net->mask || !net->grad_written)
		goto oom;
	for (int t = 0; t < T; t++) {
		size_t n = tl_align64((size_t)max_batch * tl_net_out_size(net, t) * sizeof(float));
		if (!(net->val[t] = aligned_alloc(64, n)) || !(net->grad[t] = aligned_alloc(64, n)))
			goto oom;
	}
	for (int l = 0; l < net->n_layers; l++) {
		tl_layer *ly = &net->layers[l];
		size_t n = tl_align64((size_t)max_batch * tl_net_out_size(net, ly->out) * 4);
		if (ly->kind == TL_L_MAXPOOL && !(net->argmax[ly->out] = aligned_alloc(64, n)))
			goto oom;
		if (ly->kind == TL_L_DROPOUT && !(net->mask[ly->out] = aligned_alloc(64, n)))
			goto oom;
	}
	net->max_batch = max_batch;
	return TL_OK;
oom:
	free_batch(net);
	return tl_seterr(err, TL_ENOMEM, "%s: out of memory for a batch of %d", net->model,
			 max_batch);
}

float *tl_net_input(tl_net *net)
{
	return net->val[0];
}

float *tl_net_output(tl_net *net)
{
	return net->val[net->n_tensors - 1];
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
			      .s = l->stride, .oh = so.h, .ow = so.w};
}

void tl_net_forward(tl_net *net, tl_cpu_ops *be, int n, int from, int to)
{
	TL_CHECK(n <= net->max_batch);
	for (int li = from; li < to; li++) {
		tl_layer *l = &net->layers[li];
		const float *x = net->val[l->in[0]];
		float *y = net->val[l->out];
		size_t isz = (size_t)tl_net_out_size(net, l->in[0]);
		switch (l->kind) {
		case TL_L_CONV: {
			tl_conv_shape cs;
			conv_shape(net, l, n, &cs);
			be->conv_fwd(be, &cs, x, net->params[l->w].data, net->params[l->b].data,
				     l->relu, y);
			break;
		}
		case TL_L_MAXPOOL: {
			tl_pool_shape ps;
			pool_shape(net, l, n, &ps);
			be->maxpool_fwd(be, &ps, x, y, net->argmax[l->out]);
			break;
		}
		case TL_L_GAP: {
			tl_shape3 s = net->tshape[l->in[0]];
			tl_gap_fwd(n, s.c, s.h * s.w, x, y);
			break;
		}
		case TL_L_FLATTEN:
			memcpy(y, x, (size_t)n * isz * sizeof(float));
			break;
		case TL_L_DENSE:
			be->dense_fwd(be, n, (int)isz, l->out_c, x, net->params[l->w].data,
				      net->params[l->b].data, l->relu, y);
			break;
		case TL_L_DROPOUT: {
			size_t m = (size_t)n * isz;
			if (!net->training || l->drop <= 0) {
				memcpy(y, x, m * sizeof(float));
				break;
			}
			float *mk = net->mask[l->out], keep = 1.0f - l->drop;
			for (size_t i = 0; i < m; i++) {
				mk[i] = tl_rng_unit(&net->rng) >= l->drop ? 1.0f / keep : 0.0f;
				y[i] = x[i] * mk[i];
			}
			break;
		}
		case TL_L_CONCAT: {
			size_t a = isz, b = (size_t)tl_net_out_size(net, l->in[1]);
			const float *x2 = net->val[l->in[1]];
			for (int i = 0; i < n; i++) {
				memcpy(y + i * (a + b), x + i * a, a * sizeof(float));
				memcpy(y + i * (a + b) + a, x2 + i * b, b * sizeof(float));
			}
			break;
		}
		}
	}
}

/* dx (+)= src for a tensor whose gradient may already hold another
 * consumer's contribution. */
static void grad_put(tl_net *net, int t, size_t i0, const float *src, size_t m)
{
	float *g = net->grad[t] + i0;
	if (net->grad_written[t])
		for (size_t i = 0; i < m; i++)
			g[i] += src[i];
	else
		memcpy(g, src, m * sizeof(float));
}

void tl_net_backward(tl_net *net, tl_cpu_ops *be, int n, const float *dlogits)
{
	int first = tl_net_first_trainable(net);
	memset(net->grad_written, 0, sizeof(int) * (size_t)net->n_tensors);
	int last = net->n_tensors - 1;
	memcpy(net->grad[last], dlogits, (size_t)n * tl_net_out_size(net, last) * sizeof(float));
	net->grad_written[last] = 1;
	for (int li = net->n_layers - 1; li >= first; li--) {
		tl_layer *l = &net->layers[li];
		int need_dx = li > first && l->in[0] != 0;
		int t_in = l->in[0];
		float *dy = net->grad[l->out];
		if (!net->grad_written[l->out])
			continue; /* nothing flows back through this layer */
		float *dx = need_dx ? net->grad[t_in] : NULL;
		int acc = need_dx ? net->grad_written[t_in] : 0;
		size_t isz = (size_t)tl_net_out_size(net, t_in);
		switch (l->kind) {
		case TL_L_CONV: {
			tl_conv_shape cs;
			conv_shape(net, l, n, &cs);
			tl_param *w = &net->params[l->w], *b = &net->params[l->b];
			be->conv_bwd(be, &cs, net->val[t_in], w->data, net->val[l->out], l->relu, dy,
				     dx, acc, l->trainable ? w->grad : NULL,
				     l->trainable ? b->grad : NULL);
			break;
		}
		case TL_L_MAXPOOL: {
			tl_pool_shape ps;
			pool_shape(net, l, n, &ps);
			if (dx)
				be->maxpool_bwd(be, &ps, dy, net->argmax[l->out], dx, acc);
			break;
		}
		case TL_L_GAP: {
			tl_shape3 s = net->tshape[t_in];
			if (dx)
				tl_gap_bwd(n, s.c, s.h * s.w, dy, dx, acc);
			break;
		}
		case TL_L_FLATTEN:
			if (dx)
				grad_put(net, t_in, 0, dy, (size_t)n * isz);
			break;
		case TL_L_DENSE: {
			tl_param *w = &net->params[l->w], *b = &net->params[l->b];
			be->dense_bwd(be, n, (int)isz, l->out_c, net->val[t_in], w->data,
				      net->val[l->out], l->relu, dy, dx, acc,
				      l->trainable ? w->grad : NULL, l->trainable ? b->grad : NULL);
			break;
		}
		case TL_L_DROPOUT:
			if (dx) {
				size_t m = (size_t)n * isz;
				if (net->training && l->drop > 0)
					for (size_t i = 0; i < m; i++)
						dy[i] *= net->mask[l->out][i];
				grad_put(net, t_in, 0, dy, m);
			}
			break;
		case TL_L_CONCAT: {
			size_t a = isz, b = (size_t)tl_net_out_size(net, l->in[1]);
			for (int pass = 0; pass < 2 && need_dx; pass++) {
				int t = l->in[pass];
				size_t off = pass ? a : 0, len = pass ? b : a;
				for (int i = 0; i < n; i++)
					grad_put(net, t, (size_t)i * len, dy + i * (a + b) + off, len);
				net->grad_written[t] = 1;
			}
			break;
		}
		}
		if (dx)
			net->grad_written[t_in] = 1;
	}
}
