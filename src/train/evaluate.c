/* evaluate.c - trained-model evaluation (see evaluate.h). */
#include "train/evaluate.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "plot/chart.h"
#include "train/forward.h"
#include "train/metrics.h"
#include "nn/models.h"
#include "progress.h"
#include "nn/safetensors.h"
#include "data/shard.h"
#include "nn/device.h"
#include "train/checkpoint.h"
#include "train/heldout.h"
#include "train/predcsv.h"

static tl_status model_from_meta(const char *path, const char *shard, const tl_shard_info *in,
				 tl_model_cfg *mc, tl_err *err)
{
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, path, err));
	const char *model = tl_st_meta(f, "model"), *head = tl_st_meta(f, "head"),
		   *pool = tl_st_meta(f, "pool"), *nc = tl_st_meta(f, "n_classes"),
		   *norm = tl_st_meta(f, "normalization"), *size = tl_st_meta(f, "input_size");
	tl_status st = TL_OK;
	static char model_buf[16];
	if ((st = tl_checkpoint_not_model(f, err)) != TL_OK)
		goto out;
	if (!model || !head || !pool || !nc || !tl_st_find(f, "head.predictions.weight")) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: not a trained model (expected tltrain's best.safetensors with model, head and pool metadata and head.* tensors); use --features for pretrained bases",
			       path);
		goto out;
	}
	snprintf(model_buf, sizeof model_buf, "%s", model);
	tl_model_defaults(mc, model_buf);
	if ((st = tl_model_graph_of(path, mc, err)) != TL_OK)
		goto out;
	mc->height = (int)in->height;
	mc->width = (int)in->width;
	mc->n_classes = atoi(nc);
	mc->flatten = strcmp(pool, "flatten") == 0;
	if (tl_model_parse_head(head, mc)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad head '%s'", path, head);
		goto out;
	}
	if ((uint32_t)mc->n_classes != in->n_classes) {
		st = tl_seterr(err, TL_EFORMAT, "%s: model has %d classes, the shard %u", path,
			       mc->n_classes, in->n_classes);
		goto out;
	}
	char want[32];
	snprintf(want, sizeof want, "%ux%u", in->height, in->width);
	if (size && strcmp(size, want) != 0) {
		st = tl_seterr(err, TL_EFORMAT, "%s: model was trained at %s, the shard is %s (repack with tlpack --size %s)",
			       path, size, want, size);
		goto out;
	}
	tl_norm_kind k;
	if (norm && tl_norm_parse(norm, &k) == 0)
		st = tl_norm_check(shard, in->norm.kind, (int)k, "model's", path, err);
out:
	tl_st_close(f);
	return st;
}

/* Loss and metrics of one batch. */
typedef struct {
	tl_sweep *sw;
	tl_metrics *m;
	int32_t *labels, *pred;
	FILE *pred_csv; /* --predictions: a row per image (predcsv.h) */
	float *logits;  /* host copy of a batch's logits (pred_csv only) */
} eval_batch;

static tl_status eval_each(void *arg, uint64_t b0, int nb, tl_err *err)
{
	eval_batch *e = arg;
	for (int i = 0; i < nb; i++)
		e->labels[i] = tl_shard_label(e->sw->sh, tl_sweep_record(e->sw, b0 + i), 0);
	tl_net *net = e->sw->net;
	double loss;
	TL_TRY(tl_net_loss(net, nb, e->labels, 0, &loss, e->pred, err));
	tl_metrics_add_pred(e->m, e->pred, e->labels, nb, loss);
	if (!e->pred_csv)
		return TL_OK;
	int k = (int)e->sw->sh->info.n_classes;
	TL_TRY(tl_net_get(net, net->n_tensors - 1, e->logits, nb, err));
	for (int i = 0; i < nb; i++)
		tl_predcsv_row(e->pred_csv, e->sw->sh, tl_sweep_record(e->sw, b0 + i),
			       e->logits + (size_t)i * k, e->pred[i]);
	return TL_OK;
}

/* --split val of a shard without a "val" split: the images tltrain held
 * out of the train split for this model, from its metadata (fraction,
 * seed) and only on the shard it trained on.  *rec: their file records
 * (free it), *n their count. */
static tl_status heldout_items(const char *model, const tl_shard *sh, const char *shard,
			       uint64_t **rec, uint64_t *n, tl_err *err)
{
	*rec = NULL;
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, model, err));
	const char *v = tl_st_meta(f, "validation"), *vf = tl_st_meta(f, "val_fraction"),
		   *sd = tl_st_meta(f, "seed"), *hs = tl_st_meta(f, "shard_xxh3");
	tl_status st = TL_OK;
	uint64_t *perm = NULL;
	int tr = tl_shard_split_find(sh, "train");
	char want[24];
	snprintf(want, sizeof want, "%016" PRIx64, sh->info.header_hash);
	if (!v || !vf || !sd || !hs) {
		st = tl_seterr(err, TL_EUSAGE,
			       "%s: names no held-out validation images (a model from an older tltrain); %s has no split named 'val'",
			       model, shard);
	} else if (strcmp(v, "heldout") != 0) {
		st = tl_seterr(err, TL_EUSAGE,
			       "%s: was validated on the test split (--val test): it held nothing out; %s has no split named 'val'",
			       model, shard);
	} else if (strcmp(hs, want) != 0 || tr < 0) {
		st = tl_seterr(err, TL_EUSAGE,
			       "%s: trained on a shard with header xxh3 %s, %s has %s: the held-out images are only known on that shard",
			       model, hs, shard, want);
	} else {
		uint64_t ntr = sh->info.splits[tr].count, nva;
		char *e1, *e2;
		double frac = strtod(vf, &e1);
		unsigned long long seed = strtoull(sd, &e2, 10);
		perm = malloc(sizeof(uint64_t) * (ntr ? ntr : 1));
		if (*e1 || *e2 || !(frac > 0 && frac < 1))
			st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad val_fraction '%s' or seed '%s'",
				       model, vf, sd);
		else if (!perm)
			st = tl_seterr(err, TL_ENOMEM, "out of memory");
		else if ((st = tl_heldout_order(ntr, frac, seed, perm, &nva, err)) == TL_OK) {
			for (uint64_t i = 0; i < nva; i++)
				perm[i] = tl_shard_file_record(sh, tr, perm[ntr - nva + i]);
			*rec = perm, perm = NULL;
			*n = nva;
		}
	}
	free(perm);
	tl_st_close(f);
	return st;
}

/* A JSON string of text that may not be UTF-8 (a class name): drawable
 * text (plot/chart.h) when it is not; NULL out of memory. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (!j) {
		char *t = tl_plot_text(s, strlen(s));
		j = t ? json_string(t) : NULL;
		free(t);
	}
	return j;
}

/* The report as one JSON object (see tl_evaluate) to f; prf: per-class
 * precision, recall and F1, k each. */
static tl_status write_json(const tl_eval_opts *o, const char *network, const char *split,
			    const tl_eval_result *res, const tl_metrics *m, const double *prf,
			    int batch, const char *device, const tl_shard_info *in, FILE *f,
			    tl_err *err)
{
	int k = (int)in->n_classes;
	json_t *j = json_object(), *classes = json_array(), *pc = json_array(), *cm = json_array();
	json_object_set_new(j, "producer", json_string("tleval"));
	json_object_set_new(j, "model", jstr(o->model_path));
	json_object_set_new(j, "network", jstr(network));
	json_object_set_new(j, "shard", jstr(o->shard));
	json_object_set_new(j, "split", jstr(split));
	json_object_set_new(j, "n", json_integer((json_int_t)res->n));
	json_object_set_new(j, "accuracy", json_real(res->accuracy));
	json_object_set_new(j, "loss", json_real(res->loss));
	json_object_set_new(j, "macro_f1", json_real(res->macro_f1));
	json_object_set_new(j, "latency_ms", json_real(res->latency_ms));
	json_t *lat = json_object();
	json_object_set_new(lat, "median_ms", json_real(res->latency.median_ms));
	json_object_set_new(lat, "min_ms", json_real(res->latency.min_ms));
	json_object_set_new(lat, "p90_ms", json_real(res->latency.p90_ms));
	json_object_set_new(lat, "reps", json_integer(res->latency.reps));
	json_object_set_new(lat, "threads", json_integer(res->threads));
	json_object_set_new(lat, "busy", json_boolean(res->latency.busy));
	json_object_set_new(j, "latency", lat);
	json_object_set_new(j, "images_per_s", json_real(res->images_per_s));
	json_object_set_new(j, "batch", json_integer(batch));
	json_object_set_new(j, "device", jstr(device));
	for (int c = 0; c < k; c++) {
		uint64_t support = 0;
		json_t *row = json_array(), *e = json_object();
		for (int p = 0; p < k; p++) {
			support += m->cm[(size_t)c * k + p];
			json_array_append_new(row, json_integer((json_int_t)m->cm[(size_t)c * k + p]));
		}
		json_array_append_new(cm, row);
		json_array_append_new(classes, jstr(in->class_names[c]));
		json_object_set_new(e, "class", jstr(in->class_names[c]));
		json_object_set_new(e, "precision", json_real(prf[c]));
		json_object_set_new(e, "recall", json_real(prf[k + c]));
		json_object_set_new(e, "f1", json_real(prf[2 * k + c]));
		json_object_set_new(e, "support", json_integer((json_int_t)support));
		json_array_append_new(pc, e);
	}
	json_object_set_new(j, "classes", classes);
	json_object_set_new(j, "per_class", pc);
	json_object_set_new(j, "confusion", cm);
	int bad = json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) != 0;
	json_decref(j);
	if (bad || fputc('\n', f) == EOF)
		return tl_seterr(err, TL_ENOMEM, "%s: writing the JSON report failed (out of memory)",
				 o->model_path);
	return TL_OK;
}

tl_status tl_evaluate(const tl_eval_opts *o, FILE *out, tl_eval_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, o->shard, err));
	tl_net *net = NULL;
	tl_device dev = {0};
	tl_metrics m = {0};
	tl_status st;
	const tl_shard_info *in = &sh->info;
	const char *split = o->split ? o->split : "test";
	int s = -1;
	uint64_t *rec = NULL, n = 0;
	if (strcmp(split, "val") == 0 && tl_shard_split_find(sh, "val") < 0) {
		if ((st = heldout_items(o->model_path, sh, o->shard, &rec, &n, err)) != TL_OK)
			goto out;
		split = "val (held out of train)";
	} else if ((st = tl_sweep_split(sh, o->shard, split, &s, err)) != TL_OK) {
		goto out;
	} else {
		n = in->splits[s].count;
	}
	tl_model_cfg mc;
	if ((st = model_from_meta(o->model_path, o->shard, in, &mc, err)) != TL_OK ||
	    (st = tl_model_build(&mc, &net, err)) != TL_OK ||
	    (st = tl_net_load(net, o->model_path, 1, NULL, err)) != TL_OK ||
	    (st = tl_net_check_finite(net, o->model_path, err)) != TL_OK)
		goto out;
	if (o->limit && o->limit < n)
		n = o->limit;
	int batch = o->batch > 0 ? o->batch : 64;
	if ((st = tl_device_open(&dev, o->device ? o->device : "cpu", o->threads, err)) != TL_OK ||
	    (st = tl_device_set_precision(&dev, o->precision ? o->precision : "fp32", err)) != TL_OK ||
	    (st = tl_net_bind(net, dev.be, batch, err)) != TL_OK)
		goto out;
	if (tl_metrics_init(&m, (int)in->n_classes)) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	int32_t *labels = malloc(sizeof(int32_t) * (size_t)batch * 2);
	if (!labels) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_progress prog;
	tl_progress_init(&prog, "tleval", o->quiet);
	tl_sweep sw = {.net = net, .sh = sh, .rec = rec, .split = s, .to = net->n_layers, .n = n,
		       .batch = batch, .cancel = o->cancel, .cancel_msg = "interrupted", .prog = &prog,
		       .unit = "images", .each = eval_each};
	float *logits = o->predictions ? malloc(sizeof(float) * (size_t)batch * in->n_classes) : NULL;
	if (o->predictions && !logits) {
		free(labels);
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	eval_batch eb = {&sw, &m, labels, labels + batch, o->predictions, logits};
	if (o->predictions)
		tl_predcsv_header(o->predictions);
	sw.arg = &eb;
	st = tl_sweep_run(&sw, err);
	tl_progress_end(&prog);
	free(labels);
	free(logits);
	if (st != TL_OK)
		goto out;
	double compute = sw.compute_s;
	res->n = n;
	res->accuracy = tl_metrics_accuracy(&m);
	res->loss = tl_metrics_loss(&m);
	if (!isfinite(res->loss)) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: the loss on %s split %s is not finite (%g): the model's outputs "
			       "overflow (expected a finite loss)",
			       o->model_path, o->shard, split, res->loss);
		goto out;
	}
	double *prf = calloc((size_t)in->n_classes * 3, sizeof(double));
	if (!prf) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	res->macro_f1 = tl_metrics_prf(&m, prf, prf + in->n_classes, prf + 2 * in->n_classes);
	tl_latency_measure(net, 21, &res->latency);
	res->latency_ms = res->latency.median_ms;
	res->threads = dev.pool ? tl_pool_size(dev.pool) : 1;
	res->images_per_s = compute > 0 ? n / compute : 0;
	if (o->json)
		st = write_json(o, net->model, split, res, &m, prf, batch, dev.be->name, in, o->json, err);
	free(prf);
	if (st != TL_OK || !out)
		goto out;
	fprintf(out, "model:       %s (%s, %ux%u)\nshard:       %s, split %s, %llu images\n",
		o->model_path, net->model, in->height, in->width, o->shard, split,
		(unsigned long long)n);
	fprintf(out, "accuracy:    %.4f\nloss:        %.4f\nmacro F1:    %.4f\n", res->accuracy,
		res->loss, res->macro_f1);
	char lat_text[400];
	tl_latency_text(&res->latency, res->threads, dev.be->name, lat_text, sizeof lat_text);
	fprintf(out, "latency:     %s\nthroughput:  %.1f images/s at batch %d (%s)\n\n", lat_text,
		res->images_per_s, batch, dev.be->name);
	tl_metrics_print(&m, (const char *const *)in->class_names, out);
out:
	free(rec);
	tl_metrics_free(&m);
	tl_net_free(net);
	tl_device_close(&dev);
	tl_shard_close(sh);
	return st;
}
