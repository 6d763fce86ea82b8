/* predict.c - single-image classification (see predict.h). */
#include "train/predict.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "nn/device.h"
#include "nn/models.h"
#include "nn/safetensors.h"
#include "nn/weights_find.h"
#include "train/checkpoint.h"

struct tl_predictor {
	tl_predict_info info;
	tl_net *net;
	tl_device dev;
	float *x, *z; /* one input image and its logits, host side */
	char model_name[24];
};

/* in->names from the model's "classes": a JSON array of n_classes strings
 * (tltrain writes that: names may hold commas), or the comma-separated
 * list older models have; a class with no name gets its number. */
static tl_status read_names(tl_predict_info *in, const char *classes, const char *path,
			    tl_err *err)
{
	int n = in->n_classes;
	json_t *arr = classes && classes[0] == '[' ? json_loads(classes, 0, NULL) : NULL;
	if (arr && (!json_is_array(arr) || json_array_size(arr) != (size_t)n)) {
		json_decref(arr);
		return tl_seterr(err, TL_EFORMAT, "%s: metadata: classes: bad (expected a JSON array of %d names)",
				 path, n);
	}
	const char **at = calloc((size_t)n, sizeof *at);
	size_t *len = calloc((size_t)n, sizeof *len), bytes = 0;
	char num[16];
	const char *c = classes && !arr ? classes : "";
	for (int i = 0; at && len && i < n; i++) {
		if (arr) {
			json_t *v = json_array_get(arr, (size_t)i);
			at[i] = json_is_string(v) ? json_string_value(v) : "";
			len[i] = strlen(at[i]);
		} else {
			at[i] = c, len[i] = strcspn(c, ",");
			c += len[i] + (c[len[i]] == ',');
		}
		bytes += (len[i] ? len[i] : (size_t)snprintf(num, sizeof num, "%d", i)) + 1;
	}
	char **t = at && len ? malloc((size_t)n * sizeof *t + bytes) : NULL;
	char *q = t ? (char *)(t + n) : NULL;
	for (int i = 0; t && i < n; i++) {
		t[i] = q;
		if (len[i])
			memcpy(q, at[i], len[i]), q[len[i]] = 0;
		else
			snprintf(q, 16, "%d", i);
		q += strlen(q) + 1;
	}
	free(at);
	free(len);
	json_decref(arr);
	if (!t)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	in->names = t;
	return TL_OK;
}

/* A "fit" metadata value (tl_fit_name's words, "whole" included) as a
 * tl_fit; (tl_fit)-1 when it is none of them. */
static tl_fit fit_parse(const char *s)
{
	for (int f = TL_FIT_AUTO; f <= TL_FIT_PAD; f++)
		if (strcmp(s, tl_fit_name((tl_fit)f)) == 0)
			return (tl_fit)f;
	return (tl_fit)-1;
}

/* The network whose published ImageNet classifier f holds (SqueezeNet
 * 1.1 with torchvision names, BVLC GoogLeNet with Caffe's), or NULL. */
static const char *imagenet_model(const tl_st_file *f)
{
	const tl_st_tensor *t;
	if ((t = tl_st_find(f, "classifier.1.weight")) && t->ndim == 4 && t->shape[0] == 1000 &&
	    tl_st_find(f, "features.3.squeeze.weight"))
		return "squeezenet";
	if ((t = tl_st_find(f, "loss3/classifier.weight")) && t->ndim == 2 && t->shape[0] == 1000)
		return "googlenet";
	return NULL;
}

/* in->names from the class list at path: 1000 lines of 1..255 bytes
 * without commas (joined into the comma-separated form read_names reads). */
static tl_status read_classes(tl_predict_info *in, const char *path, tl_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
	char line[258], *all = malloc((size_t)1000 * 256);
	size_t used = 0;
	int n = 0;
	tl_status st = all ? TL_OK : tl_seterr(err, TL_ENOMEM, "out of memory");
	while (st == TL_OK && fgets(line, sizeof line, f)) {
		size_t l = strcspn(line, "\n");
		if (n >= 1000 || l < 1 || l > 255 || line[l] != '\n' || memchr(line, ',', l))
			st = tl_seterr(err, TL_EFORMAT, "%s: line %d: bad class name (expected 1000 lines of 1 to 255 bytes, no commas)",
				       path, n + 1);
		else
			memcpy(all + used, line, l), used += l, all[used++] = ',', n++;
	}
	fclose(f);
	if (st == TL_OK && n != 1000)
		st = tl_seterr(err, TL_EFORMAT, "%s: %d class names (expected 1000)", path, n);
	if (st == TL_OK) {
		all[used - 1] = 0;
		st = read_names(in, all, path, err);
	}
	free(all);
	return st;
}

/* Raw ImageNet weights of model: its own classifier at 224x224; the
 * normalization the file declares (normalization, or caffe when its input
 * note says caffe or BGR), else the one its names come with (torchvision's
 * SqueezeNet: torch; BVLC GoogLeNet: caffe). */
static tl_status imagenet_meta(tl_predictor *p, const tl_st_file *f, const char *model,
			       tl_model_cfg *mc, tl_err *err)
{
	tl_predict_info *in = &p->info;
	const char *norm = tl_st_meta(f, "normalization"), *note = tl_st_meta(f, "input");
	tl_norm_kind nk = strcmp(model, "googlenet") == 0 ? TL_NORM_CAFFE : TL_NORM_TORCH;
	if (norm && tl_norm_parse(norm, &nk))
		return tl_seterr(err, TL_EFORMAT, "%s: metadata: normalization: unknown (expected none, caffe, torch or tf, got '%s')",
				 f->path, norm);
	if (!norm && note && (strstr(note, "caffe") || strstr(note, "BGR")))
		nk = TL_NORM_CAFFE;
	tl_norm_preset(nk, &in->norm);
	snprintf(p->model_name, sizeof p->model_name, "%s", model);
	snprintf(in->model, sizeof in->model, "%s", model);
	in->imagenet = 1;
	in->height = in->width = 224;
	in->n_classes = 1000;
	in->filter = TL_FILTER_AUTO;
	in->dtype = TL_DTYPE_U8;
	in->fit = TL_FIT_CROP;
	tl_model_defaults(mc, p->model_name);
	mc->height = mc->width = 224;
	mc->n_classes = 1000;
	mc->imagenet_head = 1;
	/* the installed data directory, as the mains pass it to tl_weights_find */
	char list[4096];
	if ((in->named = tl_data_file_find("imagenet-classes.txt", TL_DATADIR, list, sizeof list)))
		return read_classes(in, list, err);
	return read_names(in, NULL, f->path, err); /* numbers */
	return TL_OK;
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
	const char *raw = head ? NULL : imagenet_model(f);
	if (raw) {
		st = imagenet_meta(p, f, raw, mc, err);
		goto out;
	}
	if (!model || !head || !pool || !nc || !norm || !size || !tl_st_find(f, "head.predictions.weight")) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: not a trained model (expected tltrain's best.safetensors with model, head, pool, n_classes, normalization and input_size metadata, or raw ImageNet weights of squeezenet or googlenet)",
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
	if (mc->n_classes < 1 || mc->n_classes > TL_SHARD_MAX_CLASSES || tl_model_parse_head(head, mc)) {
		st = tl_seterr(err, TL_EFORMAT, "%s: metadata: bad n_classes '%s' or head '%s'", path, nc, head);
		goto out;
	}
	in->n_classes = mc->n_classes;
	st = read_names(in, classes, path, err);
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

/* The peers' ImageNet evaluation transform (torchvision's Resize(256) and
 * CenterCrop(224), as Keras' and Caffe's examples do it): the shorter side
 * scaled to 256 and the longer to int(256 * long / short), kept as 8-bit
 * pixels (PIL's images are), the centred 224x224 taken (offset
 * round((side - 224) / 2), halves to even as Python rounds), then
 * normalized and stored.  The resizes are tlpack's (tl_fit_image). */
static tl_status prepare_imagenet(const tl_predict_info *in, const tl_img *img, void *rec,
				  tl_fit_scratch *fs, tl_err *err)
{
	const int S = 256, C = 224;
	int64_t rh = S, rw = S;
	if (img->h < img->w)
		rw = (int64_t)S * img->w / img->h;
	else
		rh = (int64_t)S * img->h / img->w;
	if (rh * rw > (int64_t)S * S * 64)
		return tl_seterr(err, TL_EFORMAT, "a %dx%d image: aspect ratio beyond 64:1 (expected a photo)",
				 img->w, img->h);
	tl_norm none;
	tl_norm_preset(TL_NORM_NONE, &none);
	uint8_t *mid = malloc((size_t)(3 * rh * rw)), *crop = malloc((size_t)3 * C * C);
	tl_status st = mid && crop ? tl_fit_image(img, TL_FIT_STRETCH, (int)rh, (int)rw, in->filter,
						  &none, TL_DTYPE_U8, mid, fs, err)
				   : tl_seterr(err, TL_ENOMEM, "out of memory resizing a %dx%d image",
					       img->w, img->h);
	if (st == TL_OK) {
		int dy = (int)rh - C, dx = (int)rw - C;
		int y0 = dy / 2 + (dy % 2 && (dy / 2) % 2), x0 = dx / 2 + (dx % 2 && (dx / 2) % 2);
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < C; y++)
				memcpy(crop + ((size_t)c * C + y) * C,
				       mid + ((size_t)c * rh + y0 + y) * rw + x0, (size_t)C);
		tl_img cut = *img;
		cut.w = cut.h = C, cut.rgb = crop;
		/* 224 to 224: the identity resize, exact */
		st = tl_fit_image(&cut, TL_FIT_STRETCH, C, C, in->filter, &in->norm, in->dtype, rec,
				  fs, err);
	}
	free(mid);
	free(crop);
	return st;
}

tl_status tl_predict_record(const tl_predictor *p, const tl_img *img, void *rec, tl_err *err)
{
	const tl_predict_info *in = &p->info;
	tl_fit_scratch fs = {0};
	tl_status st = in->imagenet ? prepare_imagenet(in, img, rec, &fs, err)
				    : tl_fit_image(img, in->fit, in->height, in->width, in->filter,
						   &in->norm, in->dtype, rec, &fs, err);
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
