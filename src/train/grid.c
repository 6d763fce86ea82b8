/* grid.c - a feature-map grid of one shard image (see grid.h). */
#include "train/grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "plot/chart.h"
#include "nn/device.h"
#include "train/forward.h"
#include "progress.h"

tl_status tl_features_grid(const tl_features_opts *o, uint64_t index, const char *path,
			   int max_maps, tl_features_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	double t0 = tl_now();
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, o->shard, err));
	tl_status st = TL_OK;
	tl_net *net = NULL;
	tl_device dev = {0};
	uint8_t *rgb = NULL;
	float *x = NULL, *maps = NULL;
	const tl_shard_info *in = &sh->info;
	const char *split = o->split ? o->split : "test";
	int s;
	if ((st = tl_sweep_split(sh, o->shard, split, &s, err)) != TL_OK)
		goto out;
	if (index >= in->splits[s].count) {
		st = tl_seterr(err, TL_EUSAGE, "%s: split %s: --image out of range (expected 0..%llu, got %llu)",
			       o->shard, split, (unsigned long long)in->splits[s].count - 1,
			       (unsigned long long)index);
		goto out;
	}
	int li;
	if ((st = tl_features_net(o->model, o->weights, o->layer, o->shard, in, &net, &li,
				   &res->weights_norm, err)) != TL_OK)
		goto out;
	if ((st = tl_device_open(&dev, o->device ? o->device : "cpu", o->threads, err)) != TL_OK ||
	    (st = tl_net_bind(net, dev.be, 1, err)) != TL_OK)
		goto out;
	int t = net->layers[li].out;
	x = malloc(sizeof(float) * (size_t)tl_net_out_size(net, 0));
	maps = malloc(sizeof(float) * (size_t)tl_net_out_size(net, t));
	if (!x || !maps) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	uint64_t r = tl_shard_file_record(sh, s, index);
	const void *rec;
	if ((st = tl_shard_record(sh, r, &rec, err)) != TL_OK ||
	    (st = tl_shard_load_f32(sh, r, x, err)) != TL_OK)
		goto out;
	if (!(rgb = malloc((size_t)in->height * in->width * 3))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_image_to_rgb8(rec, in->dtype, &in->norm, (int)in->height, (int)in->width, rgb);
	net->training = 0;
	tl_net_set(net, 0, x, 1);
	tl_net_forward(net, 1, 0, li + 1);
	if ((st = tl_net_get(net, t, maps, 1, err)) != TL_OK)
		goto out;
	tl_shape3 fs = net->tshape[t];
	res->n = 1, res->c = fs.c, res->h = fs.h, res->w = fs.w;
	char title[200];
	snprintf(title, sizeof title, "%s %s: %s image %llu (%s)", net->model, o->layer, split,
		 (unsigned long long)index, in->class_names[tl_shard_label(sh, r, 0)]);
	st = tl_plot_feature_grid(path, title, rgb, (int)in->height, (int)in->width, maps, fs.c,
				  fs.h, fs.w, max_maps > 0 ? max_maps : 64, err);
	res->seconds = tl_now() - t0;
out:
	free(rgb);
	free(x);
	free(maps);
	tl_net_free(net);
	tl_device_close(&dev);
	tl_shard_close(sh);
	return st;
}
