/* normfold.c - fold an input normalization change into the first
 * convolution (see normfold.h). */
#include "nn/normfold.h"

#include <math.h>
#include <stdlib.h>

tl_status tl_norm_fold(tl_net *net, int wkind, const tl_norm *shard, const char *shard_path,
		       const char *weights_path, int *folded, tl_err *err)
{
	*folded = 0;
	if (wkind < 0 || wkind == (int)shard->kind)
		return TL_OK;
	tl_norm w;
	tl_norm_preset((tl_norm_kind)wkind, &w);
	double a[3], d[3];
	int src[3], offset = 0; /* src[c]: the shard channel holding weight channel c */
	for (int c = 0; c < 3; c++) {
		int k = w.bgr ? 2 - c : c;            /* the RGB pixel channel */
		int j = shard->bgr ? 2 - k : k;       /* where the shard keeps it */
		src[c] = j;
		a[c] = (double)w.scale * shard->std[j] / ((double)shard->scale * w.std[c]);
		d[c] = ((double)w.scale * shard->mean[j] / shard->scale - w.mean[c]) / w.std[c];
		offset |= fabs(d[c]) > 1e-6;
	}
	const tl_layer *l = net->n_layers ? &net->layers[0] : NULL;
	const char *why = NULL;
	if (!l || l->kind != TL_L_CONV || l->in[0] != 0 || l->w < 0 || l->b < 0 ||
	    net->params[l->w].shape[1] != 3)
		why = "the network does not start with a convolution of the 3 input channels";
	else if (l->pad > 0 && offset)
		why = "the first convolution pads its input, so the change of offset cannot fold in exactly";
	if (why)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: input normalization '%s' does not match the weights' '%s' (%s): %s; repack with: tlpack --norm %s",
				 shard_path, tl_norm_name(shard->kind),
				 tl_norm_name((tl_norm_kind)wkind), weights_path, why,
				 tl_norm_name((tl_norm_kind)wkind));
	tl_param *W = &net->params[l->w], *B = &net->params[l->b];
	int64_t O = W->shape[0], hw = W->shape[2] * W->shape[3];
	float *tmp = malloc((size_t)(3 * hw) * sizeof *tmp);
	if (!tmp)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	for (int64_t o = 0; o < O; o++) {
		float *wo = W->data + o * 3 * hw;
		double bias = B->data[o];
		for (int c = 0; c < 3; c++)
			for (int64_t k = 0; k < hw; k++) {
				bias += d[c] * wo[c * hw + k];
				tmp[src[c] * hw + k] = (float)(a[c] * wo[c * hw + k]);
			}
		for (int64_t k = 0; k < 3 * hw; k++)
			wo[k] = tmp[k];
		B->data[o] = (float)bias;
	}
	free(tmp);
	*folded = 1;
	return TL_OK;
}
