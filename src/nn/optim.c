/* optim.c - SGD and Adam on the net's backend (see optim.h). */
#include "nn/optim.h"

#include <math.h>
#include <string.h>

tl_status tl_optim_init(tl_optim *o, const tl_net *net, tl_opt_kind kind, tl_err *err)
{
	TL_CHECK(net->be);
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->lr = kind == TL_OPT_ADAM ? 1e-3f : 1e-2f;
	o->momentum = 0.9f;
	o->head_mult = 1.0f;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->eps = 1e-8f;
	o->be = net->be;
	o->n = net->n_param_floats;
	o->m = o->be->alloc(o->be, (o->n ? o->n : 1) * sizeof(float));
	if (kind == TL_OPT_ADAM)
		o->v = o->be->alloc(o->be, (o->n ? o->n : 1) * sizeof(float));
	tl_optim_reset(o);
	tl_status st = o->be->sync(o->be, err);
	if (st != TL_OK)
		tl_optim_free(o);
	return st;
}

void tl_optim_free(tl_optim *o)
{
	if (o->be) {
		o->be->free(o->be, o->m);
		o->be->free(o->be, o->v);
	}
	o->m = o->v = NULL;
}

void tl_optim_reset(tl_optim *o)
{
	o->be->fill(o->be, (tl_mem){o->m, 0}, 0.0f, o->n);
	if (o->v)
		o->be->fill(o->be, (tl_mem){o->v, 0}, 0.0f, o->n);
	o->step = 0;
}

/* The update u of the block's floats [off, end). */
static void update_range(tl_optim *o, tl_net *net, const tl_update *u, size_t off, size_t end)
{
	tl_mem none = {0};
	if (end > off)
		o->be->update(o->be, u, end - off, (tl_mem){net->pbuf, off}, (tl_mem){net->gbuf, off},
			      (tl_mem){o->m, off}, o->v ? (tl_mem){o->v, off} : none);
}

void tl_optim_step(tl_optim *o, tl_net *net)
{
	o->step++;
	/* buffers (batch norm running stats) sit before every parameter in the
	 * block (tl_net_finalize), so the trainable ones are one tail */
	int first = -1;
	for (int i = 0; i < net->n_params && first < 0; i++)
		if (net->layers[net->params[i].layer].trainable && !net->params[i].buffer)
			first = i;
	if (first < 0)
		return;
	size_t off = net->params[first].off;
	for (int i = first; i < net->n_params; i++) /* the tail is all trainable */
		TL_CHECK(net->params[i].buffer || net->layers[net->params[i].layer].trainable);
	double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
	tl_update u = {.adam = o->kind == TL_OPT_ADAM, .lr = o->lr, .momentum = o->momentum,
		       .weight_decay = o->weight_decay, .nesterov = o->nesterov,
		       .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps, .bc1 = (float)bc1,
		       .sqrt_bc2 = (float)sqrt(bc2)};
	/* the head's parameters are the block's last (its unit is the last):
	 * with a rate of its own it is a second launch */
	size_t end = net->n_param_floats, head = end;
	if (o->head_mult != 1.0f)
		for (int i = first; i < net->n_params && head == end; i++)
			if (!strcmp(net->layers[net->params[i].layer].unit, "head"))
				head = net->params[i].off;
	update_range(o, net, &u, off, head);
	u.lr = o->lr * o->head_mult;
	update_range(o, net, &u, head, end);
}

tl_status tl_optim_get(tl_optim *o, int which, size_t off, size_t len, float *dst, tl_err *err)
{
	return o->be->download(o->be, (tl_mem){which ? o->v : o->m, off}, dst, len * sizeof(float),
			       err);
}

void tl_optim_set(tl_optim *o, int which, size_t off, size_t len, const float *src)
{
	o->be->upload(o->be, (tl_mem){which ? o->v : o->m, off}, src, len * sizeof(float));
}
