/* optim.c - SGD and Adam (see optim.h). */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

tl_status tl_optim_init(tl_optim *o, const tl_net *net, tl_opt_kind kind, tl_err *err)
{
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->lr = kind == TL_OPT_ADAM ? 1e-3f : 1e-2f;
	o->momentum = 0.9f;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->eps = 1e-8f;
	o->n = net->n_param_floats;
	o->m = calloc(o->n ? o->n : 1, sizeof(float));
	o->v = kind == TL_OPT_ADAM ? calloc(o->n ? o->n : 1, sizeof(float)) : NULL;
	if (!o->m || (kind == TL_OPT_ADAM && !o->v)) {
		tl_optim_free(o);
		return tl_seterr(err, TL_ENOMEM, "optimizer: out of memory for %zu states", o->n);
	}
	return TL_OK;
}

void tl_optim_free(tl_optim *o)
{
	free(o->m);
	free(o->v);
	o->m = o->v = NULL;
}

void tl_optim_reset(tl_optim *o)
{
	memset(o->m, 0, o->n * sizeof(float));
	if (o->v)
		memset(o->v, 0, o->n * sizeof(float));
	o->step = 0;
}

typedef struct {
	const tl_optim *o;
	float *w, *g, *m, *v;
	float a, sb2; /* Adam: lr / (1 - b1^t), sqrt(1 - b2^t) */
} step_job;

static void sgd_range(void *ctx, size_t k0, size_t k1, int tid)
{
	step_job *j = ctx;
	const tl_optim *o = j->o;
	for (size_t k = k0; k < k1; k++) {
		float gk = j->g[k] + o->weight_decay * j->w[k];
		j->m[k] = o->momentum * j->m[k] + gk;
		j->w[k] -= o->lr * (o->nesterov ? gk + o->momentum * j->m[k] : j->m[k]);
	}
}

static void adam_range(void *ctx, size_t k0, size_t k1, int tid)
{
	step_job *j = ctx;
	const tl_optim *o = j->o;
	for (size_t k = k0; k < k1; k++) {
		float gk = j->g[k] + o->weight_decay * j->w[k];
		j->m[k] = o->beta1 * j->m[k] + (1 - o->beta1) * gk;
		j->v[k] = o->beta2 * j->v[k] + (1 - o->beta2) * gk * gk;
		j->w[k] -= j->a * j->m[k] / (sqrtf(j->v[k]) / j->sb2 + o->eps);
	}
}

void tl_optim_step(tl_optim *o, tl_net *net, tl_pool *pool)
{
	o->step++;
	double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
	for (int i = 0; i < net->n_params; i++) {
		tl_param *p = &net->params[i];
		if (!net->layers[p->layer].trainable)
			continue;
		step_job j = {o, p->data, p->grad, o->m + p->off, o->v ? o->v + p->off : NULL,
			      (float)(o->lr / bc1), (float)sqrt(bc2)};
		tl_pool_for(pool, p->size, 1 << 15, o->kind == TL_OPT_SGD ? sgd_range : adam_range, &j);
	}
}
