/* optim.h - optimizers over a net's trainable parameters, with PyTorch's
 * update rules (so runs can be compared step for step; see tl_update in
 * backend.h).  The state (SGD velocity m, or Adam moments m and v) lives
 * on the net's backend, one buffer each, parallel to the parameter block;
 * the trainable parameters are a contiguous tail of that block (freezing
 * is by unit, bottom up), so one update launch covers them all. */
#ifndef TL_OPTIM_H
#define TL_OPTIM_H

#include "nn/net.h"

typedef enum { TL_OPT_SGD = 0, TL_OPT_ADAM = 1 } tl_opt_kind;

typedef struct {
	tl_opt_kind kind;
	float lr, momentum, weight_decay;
	float head_mult; /* the head's rate is lr * head_mult (1: one rate; a new
			  * head learns faster than the pretrained layers under it) */
	int nesterov;
	float beta1, beta2, eps;
	long step;
	tl_backend *be;
	tl_buf *m, *v; /* [n] floats on the backend; v only for Adam */
	size_t n;
} tl_optim;

/* Set up o for net, which must be bound (tl_net_bind); state zeroed. */
tl_status tl_optim_init(tl_optim *o, const tl_net *net, tl_opt_kind kind, tl_err *err);
void tl_optim_free(tl_optim *o);
/* Zero the state (e.g. when the set of trainable layers changes). */
void tl_optim_reset(tl_optim *o);
/* One update of every trainable parameter from its gradient. */
void tl_optim_step(tl_optim *o, tl_net *net);
/* The state of the parameter block's floats [off, off + len) to or from
 * the host (checkpoints); which is 0 for m, 1 for v. */
tl_status tl_optim_get(tl_optim *o, int which, size_t off, size_t len, float *dst, tl_err *err);
void tl_optim_set(tl_optim *o, int which, size_t off, size_t len, const float *src);

#endif
