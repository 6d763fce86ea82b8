/* forward.c - shared batch loop, normalization check, latency (see forward.h). */
#include "train/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "nn/safetensors.h"

uint64_t tl_sweep_record(const tl_sweep *s, uint64_t i)
{
	return s->rec ? s->rec[i] : tl_shard_file_record(s->sh, s->split, i);
}

tl_status tl_sweep_split(const tl_shard *sh, const char *shard, const char *split, int *s,
			 tl_err *err)
{
	*s = tl_shard_split_find(sh, split);
	if (*s < 0)
		return tl_seterr(err, TL_EUSAGE, "%s: no split named '%s'", shard, split);
	return TL_OK;
}

tl_status tl_sweep_run(tl_sweep *s, tl_err *err)
{
	tl_net *net = s->net;
	size_t isz = (size_t)tl_net_out_size(net, 0);
	int tf = s->from ? net->layers[s->from].in[0] : 0;
	float *x = s->src ? NULL : malloc((size_t)s->batch * isz * sizeof(float));
	if (!s->src && !x)
		return tl_seterr(err, TL_ENOMEM, "out of memory for a batch of %d", s->batch);
	tl_status st = TL_OK;
	for (uint64_t b0 = 0; b0 < s->n && st == TL_OK; b0 += (uint64_t)s->batch) {
		if (s->cancel && *s->cancel) {
			st = tl_seterr(err, TL_EINTR, "%s", s->cancel_msg);
			break;
		}
		int nb = s->n - b0 < (uint64_t)s->batch ? (int)(s->n - b0) : s->batch;
		if (s->src)
			tl_net_set(net, tf, s->src + b0 * s->src_row, nb);
		for (int i = 0; !s->src && i < nb && st == TL_OK; i++)
			st = tl_shard_load_f32(s->sh, tl_sweep_record(s, b0 + i), x + i * isz, err);
		if (st != TL_OK)
			break;
		double t0 = tl_now();
		if (!s->src)
			tl_net_set(net, 0, x, nb);
		tl_net_forward(net, nb, s->from, s->to);
		if ((st = net->be->sync(net->be, err)) != TL_OK)
			break;
		s->compute_s += tl_now() - t0;
		st = s->each(s->arg, b0, nb, err);
		if (st == TL_OK && s->prog)
			tl_progress_update(s->prog, b0 + nb, s->n, b0 + nb, s->unit);
	}
	free(x);
	return st;
}

tl_status tl_norm_check(const char *shard, tl_norm_kind have, int declared, const char *whose,
			const char *weights, tl_err *err)
{
	if (declared < 0 || declared == (int)have)
		return TL_OK;
	const char *want = tl_norm_name((tl_norm_kind)declared);
	return tl_seterr(err, TL_EFORMAT,
			 "%s: input normalization '%s' does not match the %s '%s' (%s); repack with: tlpack --norm %s",
			 shard, tl_norm_name(have), whose, want, weights, want);
}

/* "fire9", "block4_pool" or a unit ("inception_4e": its output) -> layer
 * index; else an error listing the units and every layer name. */
static tl_status find_layer(const tl_net *net, const char *name, int *li, tl_err *err)
{
	*li = tl_net_find_layer(net, name);
	int unit = *li < 0 ? tl_net_find_unit(net, name) : -1;
	if (unit >= 0)
		*li = tl_net_unit_output(net, unit);
	if (*li >= 0)
		return TL_OK;
	int fused = tl_net_find_fused(net, name);
	if (fused >= 0) {
		const tl_layer *l = &net->layers[fused];
		return tl_seterr(err, TL_EUSAGE,
				 "%s: '%s' is the batch norm that layer %s fuses with its activation, so "
				 "its output before the activation is never formed; use '%s' (after it)",
				 net->model, name, l->name, l->name);
	}
	char units[1024], list[3072] = "";
	tl_net_units_text(net, units, sizeof units);
	for (int i = 0; i < net->n_layers; i++) {
		if (net->layers[i].kind == TL_L_DROPOUT)
			continue;
		strncat(list, i ? " " : "", sizeof list - strlen(list) - 1);
		strncat(list, net->layers[i].name, sizeof list - strlen(list) - 1);
	}
	return tl_seterr(err, TL_EUSAGE,
			 "%s has no layer '%s' (a unit names its output: %s; layers: %s; their Keras "
			 "names and torchvision module paths where the network has them)",
			 net->model, name, units, list);
}

/* A trained model (tltrain's best.safetensors) carries its head: hidden
 * sizes, pooling and classes in its metadata.  Build that head, so its
 * tensors load whatever --head the run had and whatever classes the
 * shard has; a pretrained base (no head metadata) keeps cfg's. */
static tl_status head_of(const char *weights, tl_model_cfg *cfg, tl_err *err)
{
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, weights, err));
	const char *head = tl_st_meta(f, "head"), *pool = tl_st_meta(f, "pool"),
		   *nc = tl_st_meta(f, "n_classes");
	tl_status st = TL_OK;
	long n = 0;
	if (head && pool && nc && tl_st_find(f, "head.predictions.weight")) {
		char *end;
		n = strtol(nc, &end, 10);
		if (*end || n < 1 || n > 1 << 20 || tl_model_parse_head(head, cfg))
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: metadata: bad head '%s' or n_classes '%s'", weights, head, nc);
		cfg->n_classes = (int)n;
		cfg->flatten = strcmp(pool, "flatten") == 0;
	}
	tl_st_close(f);
	return st;
}

tl_status tl_features_net(const char *model, const char *weights, const char *layer,
			  const char *shard, const tl_shard_info *in, tl_net **net, int *li,
			  int *norm, tl_err *err)
{
	*net = NULL;
	*norm = -1;
	tl_model_cfg cfg;
	tl_model_defaults(&cfg, model);
	cfg.height = (int)in->height;
	cfg.width = (int)in->width;
	cfg.n_classes = (int)in->n_classes;
	TL_TRY(tl_model_graph_of(weights, &cfg, err));
	TL_TRY(head_of(weights, &cfg, err));
	tl_net *nt;
	TL_TRY(tl_model_build(&cfg, &nt, err));
	tl_status st;
	if ((st = find_layer(nt, layer, li, err)) != TL_OK ||
	    (st = tl_net_load(nt, weights, 0, norm, err)) != TL_OK ||
	    (st = tl_net_check_finite(nt, weights, err)) != TL_OK)
		goto fail;
	for (int l = 0; l <= *li; l++) {
		const tl_layer *ly = &nt->layers[l];
		if (ly->w >= 0 && !nt->params[ly->w].loaded && tl_net_param_in_head(nt, ly->w)) {
			st = tl_seterr(err, TL_EUSAGE,
				       "%s: layer %s is in the head, which tleval builds anew for the "
				       "shard's %d classes (the weights file's head is not used); "
				       "--features takes a layer of the base",
				       weights, ly->name, cfg.n_classes);
			goto fail;
		}
		if (ly->w >= 0 && !nt->params[ly->w].loaded) {
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: tensor %s: missing (layer %s needs it for %s; is this a %s weights file?)",
				       weights, nt->params[ly->w].name, ly->name, layer, model);
			goto fail;
		}
	}
	/* every tensor of the base, not only those up to the layer: another
	 * model's file can match the first few by name and shape */
	for (int i = 0; i < nt->n_params; i++)
		if (!nt->params[i].loaded && !tl_net_param_in_head(nt, i)) {
			st = tl_seterr(err, TL_EFORMAT, "%s: tensor %s: missing (is this a %s weights file?)",
				       weights, nt->params[i].name, model);
			goto fail;
		}
	if ((st = tl_norm_check(shard, in->norm.kind, *norm, "weights'", weights, err)) != TL_OK)
		goto fail;
	*net = nt;
	return TL_OK;
fail:
	tl_net_free(nt);
	return st;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void tl_latency_measure(tl_net *net, int reps, tl_latency *out)
{
	double lat[64];
	reps = reps < 5 ? 5 : reps > 64 ? 64 : reps;
	*out = (tl_latency){.reps = reps, .median_ms = -1, .min_ms = -1, .p90_ms = -1};
	int training = net->training;
	net->training = 0;
	for (int i = -2; i < reps; i++) { /* two warm-up passes: caches, pages */
		double t0 = tl_now();
		tl_net_forward(net, 1, 0, net->n_layers);
		tl_err err;
		if (net->be->sync(net->be, &err) != TL_OK) {
			net->training = training;
			return;
		}
		if (i >= 0)
			lat[i] = tl_now() - t0;
	}
	net->training = training;
	tl_latency_from(lat, reps, out);
}

void tl_latency_from(double *sec, int reps, tl_latency *out)
{
	qsort(sec, (size_t)reps, sizeof sec[0], cmp_d);
	out->reps = reps;
	out->median_ms = sec[reps / 2] * 1e3;
	out->min_ms = sec[0] * 1e3;
	out->p90_ms = sec[reps * 9 / 10 < reps ? reps * 9 / 10 : reps - 1] * 1e3;
	out->busy = out->p90_ms > 1.5 * out->min_ms;
}

void tl_latency_text(const tl_latency *l, int threads, const char *backend, char *buf, size_t n)
{
	if (l->median_ms < 0) {
		snprintf(buf, n, "not measured (the backend failed)");
		return;
	}
	char thr[32] = ""; /* the CPU backends name their threads themselves */
	if (!strstr(backend, "thread"))
		snprintf(thr, sizeof thr, "; %d host thread%s", threads, threads == 1 ? "" : "s");
	int k = snprintf(buf, n,
			 "%.3f ms per image (batch 1, median of %d; fastest %.3f, 90th percentile %.3f; %s%s)",
			 l->median_ms, l->reps, l->min_ms, l->p90_ms, backend, thr);
	if (l->busy && k > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k,
			 "\n                  warning: the passes varied %.1fx: the machine was busy, so this latency is not comparable",
			 l->p90_ms / l->min_ms);
}

double tl_latency_ms(tl_net *net, int reps)
{
	tl_latency l;
	tl_latency_measure(net, reps, &l);
	return l.median_ms;
}
