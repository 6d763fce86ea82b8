/* optim.c - SGD and Adam (see optim.h). */
#include "optim.h"

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

void tl_optim_step(tl_optim *o, tl_net *net)
{
	o->step++;
	double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
	for (int i = 0; i < net->n_params; i++) {
		tl_param *p = &net->params[i];
		if (!net->layers[p->layer].trainable)
			continue;
		float *w = p->data, *g = p->grad, *m = o->m + p->off;
		if (o->kind == TL_OPT_SGD) {
			for (size_t k = 0; k < p->size; k++) {
				float gk = g[k] + o->weight_decay * w[k];
				m[k] = o->momentum * m[k] + gk;
				w[k] -= o->lr * (o->nesterov ? gk + o->momentum * m[k] : m[k]);
			}
		} else {
			float *v = o->v + p->off;
			float a = (float)(o->lr / bc1), sb2 = (float)sqrt(bc2);
			for (size_t k = 0; k < p->size; k++) {
				float gk = g[k] + o->weight_decay * w[k];
				m[k] = o->beta1 * m[k] + (1 - o->beta1) * gk;
				v[k] = o->beta2 * v[k] + (1 - o->beta2) * gk * gk;
				w[k] -= a * m[k] / (sqrtf(v[k]) / sb2 + o->eps);
			}
		}
	}
}
