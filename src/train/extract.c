/* extract.c - feature-map extraction (see extract.h). */
#include "train/extract.h"

#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "train/npy.h"
#include "progress.h"
#include "data/shard.h"
#include "nn/device.h"

/* "fire9" or "block4_pool" -> layer index; else an error listing names. */
static tl_status find_layer(const tl_net *net, const char *name, int *li, tl_err *err)
{
	*li = tl_net_find_layer(net, name);
	if (*li >= 0)
		return TL_OK;
	char list[2048] = "";
	for (int i = 0; i < net->n_layers; i++) {
		if (net->layers[i].kind == TL_L_DROPOUT)
			continue;
		strncat(list, i ? " " : "", sizeof list - strlen(list) - 1);
		strncat(list, net->layers[i].name, sizeof list - strlen(list) - 1);
	}
	return tl_seterr(err, TL_EUSAGE, "%s has no layer '%s' (expected one of: %s)", net->model,
			 name, list);
}

tl_status tl_features(const tl_features_opts *o, tl_features_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	double t0 = tl_now();
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, o->shard, err));
	tl_status st = TL_OK;
	tl_net *net = NULL;
	tl_device dev = {0};
	float *xb = NULL, *fb = NULL;
	tl_npy npy;
	int npy_open = 0;
	const tl_shard_info *in = &sh->info;
	const char *split = o->split ? o->split : "test";
	int s = tl_shard_split_find(sh, split);
	if (s < 0) {
		st = tl_seterr(err, TL_EUSAGE, "%s: no split named '%s' (expected %s%s%s)", o->shard, split,
			       in->splits[0].name, in->n_splits > 1 ? " or " : "",
			       in->n_splits > 1 ? in->splits[1].name : "");
		goto out;
	}
	uint64_t n = in->splits[s].count;
	if (o->limit && o->limit < n)
		n = o->limit;
	tl_model_cfg cfg;
	tl_model_defaults(&cfg, o->model);
	cfg.height = (int)in->height;
	cfg.width = (int)in->width;
	cfg.n_classes = (int)in->n_classes;
	if ((st = tl_model_build(&cfg, &net, err)) != TL_OK)
		goto out;
	int li;
	if ((st = find_layer(net, o->layer, &li, err)) != TL_OK)
		goto out;
	if ((st = tl_net_load(net, o->weights, 0, &res->weights_norm, err)) != TL_OK)
		goto out;
	for (int l = 0; l <= li; l++) {
		const tl_layer *ly = &net->layers[l];
		if (ly->w >= 0 && !net->params[ly->w].loaded) {
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: tensor %s: missing (layer %s needs it for %s; is this a %s weights file?)",
				       o->weights, net->params[ly->w].name, ly->name, o->layer, o->model);
			goto out;
		}
	}
	if (res->weights_norm >= 0 && res->weights_norm != (int)in->norm.kind) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: input normalization '%s' does not match the weights' '%s' (%s); repack with: tlpack --norm %s",
			       o->shard, tl_norm_name(in->norm.kind),
			       tl_norm_name((tl_norm_kind)res->weights_norm), o->weights,
			       tl_norm_name((tl_norm_kind)res->weights_norm));
		goto out;
	}
	int batch = o->batch > 0 ? o->batch : 32;
	if ((uint64_t)batch > n)
		batch = n ? (int)n : 1;
	if ((st = tl_device_open(&dev, o->device ? o->device : "cpu", o->threads, err)) != TL_OK ||
	    (st = tl_net_bind(net, dev.be, batch, err)) != TL_OK)
		goto out;
	int t = net->layers[li].out;
	size_t isz = (size_t)3 * in->height * in->width;
	xb = malloc((size_t)batch * isz * sizeof(float));
	fb = malloc((size_t)batch * tl_net_out_size(net, t) * sizeof(float));
	if (!xb || !fb) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_shape3 fs = net->tshape[t];
	res->c = fs.c, res->h = fs.h, res->w = fs.w, res->n = n;
	int64_t shape[4] = {(int64_t)n, fs.c, fs.h, fs.w};
	if ((st = tl_npy_begin(&npy, o->output, 4, shape, err)) != TL_OK)
		goto out;
	npy_open = 1;
	tl_progress prog;
	tl_progress_init(&prog, "tleval", o->quiet);
	for (uint64_t b0 = 0; b0 < n && st == TL_OK; b0 += (uint64_t)batch) {
		if (o->cancel && *o->cancel) {
			st = tl_seterr(err, TL_EINTR, "interrupted; %s not written", o->output);
			break;
		}
		int nb = n - b0 < (uint64_t)batch ? (int)(n - b0) : batch;
		for (int i = 0; i < nb && st == TL_OK; i++)
			st = tl_shard_load_f32(sh, tl_shard_file_record(sh, s, b0 + i),
					       xb + i * isz, err);
		if (st != TL_OK)
			break;
		tl_net_set(net, 0, xb, nb);
		tl_net_forward(net, nb, 0, li + 1);
		if ((st = tl_net_get(net, t, fb, nb, err)) == TL_OK)
			st = tl_npy_write(&npy, fb, (uint64_t)nb * tl_net_out_size(net, t), err);
		tl_progress_update(&prog, b0 + nb, n, b0 + nb, "images");
	}
	tl_progress_end(&prog);
	if (st == TL_OK) {
		npy_open = 0;
		st = tl_npy_finish(&npy, err);
	}
	res->seconds = tl_now() - t0;
out:
	if (npy_open)
		tl_npy_abort(&npy);
	free(xb);
	free(fb);
	tl_net_free(net);
	tl_device_close(&dev);
	tl_shard_close(sh);
	return st;
}
