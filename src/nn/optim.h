/* optim.h - optimizers over a net's trainable parameters, with PyTorch's
 * update rules (so runs can be compared step for step):
 *   SGD:  g += wd * p;  v = mu * v + g;  p -= lr * (nesterov ? g + mu * v : v)
 *   Adam: g += wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *         p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * State (v, or m and v) is one allocation each, parallel to the net's
 * parameter block. */
#ifndef TL_OPTIM_H
#define TL_OPTIM_H

#include "nn/net.h"

typedef enum { TL_OPT_SGD = 0, TL_OPT_ADAM = 1 } tl_opt_kind;

typedef struct {
	tl_opt_kind kind;
	float lr, momentum, weight_decay;
	int nesterov;
	float beta1, beta2, eps;
	long step;
	float *m, *v; /* [n_param_floats] */
	size_t n;
} tl_optim;

tl_status tl_optim_init(tl_optim *o, const tl_net *net, tl_opt_kind kind, tl_err *err);
void tl_optim_free(tl_optim *o);
/* Zero the state (e.g. when the set of trainable layers changes). */
void tl_optim_reset(tl_optim *o);
/* One update of every trainable parameter from its gradient; element-wise,
 * split over the pool's threads (NULL: this thread), same result. */
void tl_optim_step(tl_optim *o, tl_net *net, tl_pool *pool);

#endif
