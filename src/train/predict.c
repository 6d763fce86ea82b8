/* predict.c - single-image classification (see predict.h). */
#include "train/predict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/device.h"
#include "nn/models.h"
#include "nn/safetensors.h"
#include "train/checkpoint.h"

struct tl_predictor {
	tl_predict_info info;
	tl_net *net;
	tl_device dev;
	float *x, *z; /* one input image and its logits, host side */
	char model_name[24];
};

/* A "fit" metadata value (tl_fit_name's words, "whole" included) as a
 * tl_fit; (tl_fit)-1 when it is none of them. */
static tl_fit fit_parse(const char *s)
{
	for (int f = TL_FIT_AUTO; f <= TL_FIT_PAD; f++)
		if (strcmp(s, tl_fit_name((tl_fit)f)) == 0)
			return (tl_fit)f;
	return (tl_fit)-1;
}

static tl_status read_meta(tl_predictor *p, const char *path, tl_model_cfg *mc, tl_err *err)
{
	tl_st_file *f;
	TL_TRY(tl_st_open(&f, path, err));
	const char *model = tl_st_meta(f, "model"), *head = tl_st_meta(f, "head"),
		   *pool = tl_st_meta(f, "pool"), *nc = tl_st_meta(f, "n_classes"),
		   *norm = tl_st_meta(f, "normalization"), *size = tl_st_meta(f, "input_size"),
		   *classes = tl_st_meta(f, "classes"), *filter = tl_st_meta(f, "resize_filter"),
		   *dtype = tl_st_meta(f, "shard_dtype"), *fit = tl_st_meta(f, "fit");
	tl_predict_info *in = &p->info;
	tl_status st = TL_OK;
	tl_norm_kind nk;
	unsigned h, w;
	if ((st = tl_checkpoint_not_model(f, err)) != TL_OK)
		goto out;
	if (!model || !head || !pool || !nc || !norm || !size || !tl_st_find(f, "head.predictions.weight")) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: not a trained model (expected tltrain's best.safetensors with model, head, pool, n_classes, normalization and input_size metadata)",
			       path);
		goto out;
	}
	if (tl_norm_parse(norm, &nk)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: normalization: unknown (expected none, caffe, torch or tf, got '%s')",
			       path, norm);
		goto out;
	}
	if (sscanf(size, "%ux%u", &h, &w) != 2 || h < 1 || w < 1 || h > 4096 || w > 4096) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: input_size: bad (expected HxW, got '%s')", path, size);
		goto out;
	}
	in->filter = TL_FILTER_AUTO;
	in->dtype = TL_DTYPE_F16;
	if ((filter && tl_filter_parse(filter, &in->filter)) || (dtype && tl_dtype_parse(dtype, &in->dtype))) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: unknown resize_filter '%s' or shard_dtype '%s'", path,
			       filter ? filter : "", dtype ? dtype : "");
		goto out;
	}
	in->fit = TL_FIT_AUTO;
	if (fit && (in->fit = fit_parse(fit)) == (tl_fit)-1) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: fit: unknown (expected whole, crop, stretch or pad, got '%s')",
			       path, fit);
		goto out;
	}
	snprintf(p->model_name, sizeof p->model_name, "%s", model);
	snprintf(in->model, sizeof in->model, "%s", model);
	tl_norm_preset(nk, &in->norm);
	in->height = (int)h, in->width = (int)w;
	tl_model_defaults(mc, p->model_name);
	if ((st = tl_model_graph_of(path, mc, err)) != TL_OK)
		goto out;
	mc->height = in->height, mc->width = in->width;
	mc->n_classes = atoi(nc);
	mc->flatten = strcmp(pool, "flatten") == 0;
	if (mc->n_classes < 1 || mc->n_classes > 1000 || tl_model_parse_head(head, mc)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad n_classes '%s' or head '%s'", path, nc, head);
		goto out;
	}
	in->n_classes = mc->n_classes;
	if (!(in->names = calloc((size_t)in->n_classes, sizeof *in->names))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	/* class names: comma-separated; numbers where missing */
	const char *c = classes ? classes : "";
	for (int i = 0; i < in->n_classes; i++) {
		size_t l = strcspn(c, ",");
		if (l)
			snprintf(in->names[i], sizeof in->names[i], "%.*s", (int)(l < 31 ? l : 31), c);
		else
			snprintf(in->names[i], sizeof in->names[i], "%d", i);
		c += l;
		if (*c == ',')
			c++;
	}
out:
	tl_st_close(f);
	return st;
}

tl_status tl_predictor_open(tl_predictor **out, const char *model_path, int threads, tl_err *err)
{
	*out = NULL;
	tl_predictor *p = calloc(1, sizeof *p);
	if (!p)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	tl_model_cfg mc;
	tl_status st;
	if ((st = read_meta(p, model_path, &mc, err)) != TL_OK ||
	    (st = tl_model_build(&mc, &p->net, err)) != TL_OK ||
	    (st = tl_net_load(p->net, model_path, 1, NULL, err)) != TL_OK ||
	    (st = tl_device_open(&p->dev, "cpu", threads, err)) != TL_OK ||
	    (st = tl_net_bind(p->net, p->dev.be, 1, err)) != TL_OK) {
		tl_predictor_close(p);
		return st;
	}
	p->x = malloc(sizeof(float) * (size_t)tl_net_out_size(p->net, 0));
	p->z = malloc(sizeof(float) * (size_t)tl_net_out_size(p->net, p->net->n_tensors - 1));
	if (!p->x || !p->z) {
		tl_predictor_close(p);
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	}
	p->net->training = 0;
	*out = p;
	return TL_OK;
}

const tl_predict_info *tl_predictor_info(const tl_predictor *p)
{
	return &p->info;
}

size_t tl_predict_record_bytes(const tl_predictor *p)
{
	const tl_predict_info *in = &p->info;
	return (size_t)3 * in->height * in->width * tl_dtype_size(in->dtype);
}

tl_status tl_predict_record(const tl_predictor *p, const tl_img *img, void *rec, tl_err *err)
{
	const tl_predict_info *in = &p->info;
	tl_fit_scratch fs = {0};
	tl_status st = tl_fit_image(img, in->fit, in->height, in->width, in->filter, &in->norm,
				    in->dtype, rec, &fs, err);
	tl_fit_scratch_free(&fs);
	return st;
}

tl_status tl_predict_input(const tl_predictor *p, const tl_img *img, float *dst, tl_err *err)
{
	const tl_predict_info *in = &p->info;
	void *rec = malloc(tl_predict_record_bytes(p));
	if (!rec)
		return tl_seterr(err, TL_ENOMEM, "out of memory preparing a %dx%d image", img->w, img->h);
	tl_status st = tl_predict_record(p, img, rec, err);
	if (st == TL_OK) /* read back as the loader reads the shard */
		tl_image_to_f32(rec, in->dtype, &in->norm, (size_t)in->height * in->width, dst);
	free(rec);
	return st;
}

tl_status tl_predict(tl_predictor *p, const tl_img *img, float *probs, tl_err *err)
{
	TL_TRY(tl_predict_input(p, img, p->x, err));
	tl_net_set(p->net, 0, p->x, 1);
	tl_net_forward(p->net, 1, 0, p->net->n_layers);
	TL_TRY(tl_net_get(p->net, p->net->n_tensors - 1, p->z, 1, err));
	const float *z = p->z;
	int k = p->info.n_classes;
	float m = z[0];
	for (int i = 1; i < k; i++)
		m = z[i] > m ? z[i] : m;
	double s = 0;
	for (int i = 0; i < k; i++)
		s += exp((double)z[i] - m);
	for (int i = 0; i < k; i++)
		probs[i] = (float)(exp((double)z[i] - m) / s);
	return TL_OK;
}

void tl_predictor_close(tl_predictor *p)
{
	if (!p)
		return;
	tl_net_free(p->net);
	tl_device_close(&p->dev);
	free(p->x);
	free(p->z);
	free(p->info.names);
	free(p);
}
