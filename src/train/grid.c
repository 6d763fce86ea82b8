/* grid.c - a feature-map grid of one shard image (see grid.h). */
#include "train/grid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "nn/device.h"
#include "nn/safetensors.h"
#include "plot/chart.h"
#include "train/forward.h"

tl_status tl_grid_parse_channels(const char *spec, int **out, int *n, tl_err *err)
{
	*out = NULL, *n = 0;
	int *v = malloc(sizeof(int) * TL_GRID_MAX_CHANNELS), k = 0;
	if (!v)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	const char *p = spec;
	for (;;) {
		char *e;
		long a, b;
		errno = 0;
		if (*p < '0' || *p > '9' || (a = strtol(p, &e, 10), errno) || a > 65535)
			goto bad;
		b = a;
		if (*e == '-') {
			p = e + 1;
			if (*p < '0' || *p > '9' || (b = strtol(p, &e, 10), errno) || b > 65535 || b < a)
				goto bad;
		}
		if (b - a + 1 > TL_GRID_MAX_CHANNELS - k) {
			free(v);
			return tl_seterr(err, TL_EUSAGE, "--channels: too many channels (expected at most %d, got more in '%s')",
					 TL_GRID_MAX_CHANNELS, spec);
		}
		for (long c = a; c <= b; c++)
			v[k++] = (int)c;
		if (*e == 0)
			break;
		if (*e != ',')
			goto bad;
		p = e + 1;
	}
	*out = v, *n = k;
	return TL_OK;
bad:
	free(v);
	return tl_seterr(err, TL_EUSAGE, "--channels: expected channel numbers and ranges A-B (A <= B) separated by commas, e.g. 0-15,32, got '%s'",
			 spec);
}

/* The label of a weights file's set: its path and what its metadata says
 * (tltrain's run: network, best epoch and metric); drawable text (a new
 * string; NULL out of memory). */
static char *weights_label(const char *path)
{
	char *p = tl_plot_text(path, 90), *out = NULL;
	if (!p)
		return NULL;
	char what[160] = "pretrained (no training metadata)";
	tl_st_file *f;
	tl_err e;
	if (tl_st_open(&f, path, &e) == TL_OK) {
		const char *prod = tl_st_meta(f, "producer"), *model = tl_st_meta(f, "model"),
			   *ep = tl_st_meta(f, "epoch"), *va = tl_st_meta(f, "val_accuracy"),
			   *vl = tl_st_meta(f, "val_loss");
		char *m = tl_plot_text(model ? model : "", 24);
		if (prod && strcmp(prod, "tltrain") == 0)
			snprintf(what, sizeof what, "tltrain's %s, best epoch %.8s (%s %.10s)", m ? m : "",
				 ep ? ep : "?", va ? "val_accuracy" : "val_loss", va ? va : vl ? vl : "?");
		else if (m && m[0])
			snprintf(what, sizeof what, "%s, pretrained (no training metadata)", m);
		free(m);
		tl_st_close(f);
	}
	size_t n = strlen(p) + strlen(what) + 4;
	char *raw = malloc(n);
	if (raw) {
		snprintf(raw, n, "%s: %s", p, what);
		out = tl_plot_text(raw, n); /* the metadata's values are the file's bytes */
	}
	free(raw);
	free(p);
	return out;
}

/* The layer's maps [c][h][w] of the float image x for one weights file
 * (*maps: free it); the shape in *fs. */
static tl_status layer_maps(const tl_features_opts *o, const char *weights, const float *x,
			    const tl_shard_info *in, float **maps, tl_shape3 *fs, int *norm,
			    tl_err *err)
{
	*maps = NULL;
	tl_net *net = NULL;
	tl_device dev = {0};
	int li;
	tl_status st;
	if ((st = tl_features_net(o->model, weights, o->layer, o->shard, in, &net, &li, norm, err)) != TL_OK)
		return st;
	if ((st = tl_device_open(&dev, o->device ? o->device : "cpu", o->threads, err)) != TL_OK ||
	    (st = tl_net_bind(net, dev.be, 1, err)) != TL_OK)
		goto out;
	int t = net->layers[li].out;
	if (!(*maps = malloc(sizeof(float) * (size_t)tl_net_out_size(net, t)))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	net->training = 0;
	tl_net_set(net, 0, x, 1);
	tl_net_forward(net, 1, 0, li + 1);
	if ((st = tl_net_get(net, t, *maps, 1, err)) != TL_OK) {
		free(*maps);
		*maps = NULL;
		goto out;
	}
	*fs = net->tshape[t];
out:
	tl_net_free(net);
	tl_device_close(&dev);
	return st;
}

tl_status tl_features_grid(const tl_features_opts *o, const tl_grid_opts *g, uint64_t index,
			   const char *path, tl_grid_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, o->shard, err));
	tl_status st = TL_OK;
	uint8_t *rgb = NULL;
	float *x = NULL, *maps[2] = {NULL, NULL}, *sel = NULL;
	char *label[2] = {NULL, NULL};
	int *chan = NULL;
	const tl_shard_info *in = &sh->info;
	const char *split = o->split ? o->split : "test";
	const char *files[2] = {o->weights, g->after};
	int n_sets = g->after ? 2 : 1, s;
	if ((st = tl_sweep_split(sh, o->shard, split, &s, err)) != TL_OK)
		goto out;
	if (index >= in->splits[s].count) {
		st = tl_seterr(err, TL_EUSAGE, "%s: split %s: --image out of range (expected 0..%llu, got %llu)",
			       o->shard, split, (unsigned long long)in->splits[s].count - 1,
			       (unsigned long long)index);
		goto out;
	}
	uint64_t r = tl_shard_file_record(sh, s, index);
	const void *rec;
	size_t in_size = (size_t)in->channels * in->height * in->width;
	if (!(x = malloc(sizeof(float) * in_size)) ||
	    !(rgb = malloc((size_t)in->height * in->width * 3))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	if ((st = tl_shard_record(sh, r, &rec, err)) != TL_OK ||
	    (st = tl_shard_load_f32(sh, r, x, err)) != TL_OK)
		goto out;
	tl_image_to_rgb8(rec, in->dtype, &in->norm, (int)in->height, (int)in->width, rgb);
	tl_shape3 fs[2];
	for (int t = 0; t < n_sets; t++) {
		int norm;
		if ((st = layer_maps(o, files[t], x, in, &maps[t], &fs[t], &norm, err)) != TL_OK)
			goto out;
		if (t == 0)
			res->weights_norm = norm;
	}
	if (n_sets == 2 && (fs[0].c != fs[1].c || fs[0].h != fs[1].h || fs[0].w != fs[1].w)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: layer %s is %dx%dx%d, in %s %dx%dx%d (expected the same network in both files)",
			       g->after, o->layer, fs[1].c, fs[1].h, fs[1].w, o->weights, fs[0].c,
			       fs[0].h, fs[0].w);
		goto out;
	}
	res->c = fs[0].c, res->h = fs[0].h, res->w = fs[0].w;
	/* the channels: as asked, or the first 64 */
	int n = g->channels ? g->n_channels : fs[0].c < 64 ? fs[0].c : 64;
	if (!(chan = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		chan[i] = g->channels ? g->channels[i] : i;
		if (chan[i] < 0 || chan[i] >= fs[0].c) {
			st = tl_seterr(err, TL_EUSAGE, "--channels: channel %d out of range (%s has %d: expected 0..%d)",
				       chan[i], o->layer, fs[0].c, fs[0].c - 1);
			goto out;
		}
	}
	size_t plane = (size_t)fs[0].h * fs[0].w;
	if (!(sel = malloc(sizeof(float) * plane * (size_t)n * n_sets))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_plot_mapset sets[2];
	for (int t = 0; t < n_sets; t++) {
		for (int i = 0; i < n; i++)
			memcpy(sel + ((size_t)t * n + i) * plane, maps[t] + (size_t)chan[i] * plane,
			       sizeof(float) * plane);
		if (!(label[t] = weights_label(files[t]))) {
			st = tl_seterr(err, TL_ENOMEM, "out of memory");
			goto out;
		}
		sets[t] = (tl_plot_mapset){label[t], sel + (size_t)t * n * plane};
	}
	if (n_sets == 2) { /* say which is which */
		for (int t = 0; t < 2; t++) {
			size_t l = strlen(label[t]) + 16;
			char *b = malloc(l);
			if (!b) {
				st = tl_seterr(err, TL_ENOMEM, "out of memory");
				goto out;
			}
			snprintf(b, l, "%s: %s", t ? "after" : "before", label[t]);
			free(label[t]);
			sets[t].label = label[t] = b;
		}
	}
	int shared = g->scale == TL_GRID_SCALE_SHARED || (g->scale == TL_GRID_SCALE_DEFAULT && n_sets == 2);
	char *cls = tl_plot_text(in->class_names[tl_shard_label(sh, r, 0)], 40);
	char title[240];
	snprintf(title, sizeof title, "%s %s: %s image %llu (%s)%s", o->model, o->layer, split,
		 (unsigned long long)index, cls ? cls : "", n_sets == 2 ? ", before and after" : "");
	free(cls);
	char *ttl = tl_plot_text(title, 200); /* the layer and split are the user's bytes */
	if (!ttl) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_plot_grid pg = {ttl, rgb, (int)in->height, (int)in->width, n, fs[0].c, fs[0].h, fs[0].w,
			   chan, sets, n_sets, shared};
	st = tl_plot_feature_grids(path, &pg, &res->lo, &res->hi, err);
	free(ttl);
	res->n_maps = n;
	res->shared = shared;
out:
	free(rgb);
	free(x);
	free(maps[0]);
	free(maps[1]);
	free(sel);
	free(label[0]);
	free(label[1]);
	free(chan);
	tl_shard_close(sh);
	return st;
}
