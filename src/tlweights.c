/* tlweights - pretrained weights: import a Keras VGG16 or MobileNetV2
 * .h5 into torchvision-named safetensors, list a weights file, check it
 * against a model.  The work is in src/nn/keras.c. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "infile.h"
#include "nn/keras.h"
#include "nn/models.h"
#include "nn/pth.h"
#include "nn/safetensors.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlweights import FILE.h5 [-o OUT.safetensors]   Keras VGG16 or MobileNetV2 -> safetensors\n"
		"       tlweights import FILE.pth [-o OUT.safetensors]  PyTorch state dict (torch.save) -> safetensors\n"
		"       tlweights list FILE                            names, shapes, dtypes, normalization, checksum\n"
		"       tlweights check FILE [-m MODEL]                missing, extra, mis-shaped tensors\n"
		"  -o, --output FILE    import: where to write (default: FILE with .safetensors, here)\n"
		"  -m, --model M        check: " TL_MODEL_LIST " (default: the file's model)\n"
		"  -q, --quiet          import: no summary line\n"
		"  -h, --help, -V, --version\n"
		"see tlweights(1)\n");
}

static int bad(const char *what, const char *arg)
{
	return tl_cli_bad("tlweights", what, arg);
}

static int fail(const tl_err *err, tl_status st)
{
	fprintf(stderr, "tlweights: %s\n", err->msg);
	return st == TL_EUSAGE && strstr(err->msg, "libhdf5") == NULL ? 2 : 1;
}

/* Whether path is to be read as a Keras .h5: it starts with the HDF5
 * signature, or is named *.h5.  Opened with tl_open_input, so that a FIFO
 * or a device is not waited on here (the reader then refuses it). */
static int is_h5(const char *path)
{
	unsigned char sig[8] = {0};
	ssize_t n = 0;
	int fd = tl_open_input(path, NULL, NULL);
	if (fd >= 0) {
		n = read(fd, sig, sizeof sig);
		close(fd);
	}
	if (n == 8 && memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0)
		return 1;
	size_t l = strlen(path);
	return l > 3 && strcmp(path + l - 3, ".h5") == 0;
}

static int cmd_import(const char *in, const char *out, int quiet)
{
	char def[4096];
	if (!out) {
		const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
		size_t l = strlen(base);
		int len = (int)(l > 3 && !strcmp(base + l - 3, ".h5") ? l - 3 : l);
		snprintf(def, sizeof def, "%.*s.safetensors", len, base);
		out = def;
	}
	tl_keras_info info;
	tl_err err;
	tl_status st = tl_keras_import(in, out, &info, &err);
	if (st != TL_OK)
		return fail(&err, st);
	int mnv2 = !strcmp(info.model, "mobilenetv2");
	const char *top = !info.full ? "notop"
			  : mnv2     ? "with Logits as classifier.1"
				     : "with fc1/fc2/predictions";
	if (!quiet)
		fprintf(stderr,
			"tlweights: %s (%s %s layout, %s, md5 %s) -> %s: %d tensors, %" PRIu64 " parameters, torchvision names, %s normalization%s\n",
			in, mnv2 ? "MobileNetV2," : "VGG16,", info.layout, top, info.md5, out,
			info.n_tensors, info.n_params, info.norm,
			mnv2 ? ", Keras graph (BatchNorm eps 0.001, stride-2 padding 0/1)" : "");
	if (!quiet && info.official == 0)
		fprintf(stderr, "tlweights: note: %s: %s\n", in, info.note);
	return 0;
}

/* Whether path is to be read as a torch.save file: it starts as one
 * (tl_pth_sniff), or is named *.pth or *.pt. */
static int is_pth(const char *path)
{
	unsigned char sig[16] = {0};
	ssize_t n = 0;
	int fd = tl_open_input(path, NULL, NULL);
	if (fd >= 0) {
		n = read(fd, sig, sizeof sig);
		close(fd);
	}
	if (n > 0 && tl_pth_sniff(sig, (size_t)n))
		return 1;
	size_t l = strlen(path);
	return (l > 4 && !strcmp(path + l - 4, ".pth")) || (l > 3 && !strcmp(path + l - 3, ".pt"));
}

static int cmd_import_pth(const char *in, const char *out, int quiet)
{
	char def[4096];
	if (!out) {
		const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
		const char *dot = strrchr(base, '.');
		int len = (int)(dot && dot != base ? dot - base : (ptrdiff_t)strlen(base));
		snprintf(def, sizeof def, "%.*s.safetensors", len, base);
		out = def;
	}
	tl_pth_info info;
	tl_err err;
	tl_status st = tl_pth_import(in, out, &info, &err);
	if (st != TL_OK)
		return fail(&err, st);
	if (!quiet)
		fprintf(stderr,
			"tlweights: %s (PyTorch %s format, xxh3 %s%s%s%s%s%s%s) -> %s: %d tensors, %" PRIu64 " parameters%s%s, torch normalization%s\n",
			in, info.format, info.xxh3, info.dict_key[0] ? ", state dict under '" : "",
			info.dict_key, info.dict_key[0] ? "'" : "", info.prefix[0] ? ", prefix '" : "",
			info.prefix, info.prefix[0] ? "' dropped" : "",
			out, info.n_tensors, info.n_params, info.model[0] ? ", torchvision " : "", info.model,
			info.converted ? ", float64 rounded to float32" : "");
	return 0;
}

static int list_h5(const char *path)
{
	tl_h5_file *f;
	tl_err err;
	tl_status st = tl_h5_open(&f, path, &err);
	if (st != TL_OK)
		return fail(&err, st);
	const char *md5 = tl_h5_md5(f); /* of the bytes that were parsed */
	uint64_t size = tl_h5_size(f);
	int mnv2 = tl_keras_is_mobilenetv2(f);
	printf("file:          %s\nformat:        Keras .h5 (%s layout)\nsize:          %" PRIu64 " bytes\nmd5:           %s\nnormalization: %s\n",
	       path, tl_h5_layout(f), size, md5,
	       mnv2 ? "tf (Keras MobileNetV2: RGB, 0..255 / 127.5 - 1)"
		    : "caffe (Keras VGG16: BGR, 0..255 minus ImageNet mean)");
	tl_kx_plan *plan = malloc(sizeof *plan);
	if (!plan) {
		tl_h5_close(f);
		fprintf(stderr, "tlweights: out of memory\n");
		return 1;
	}
	int mapped = tl_keras_plan(f, path, plan, &err) == TL_OK;
	if (mapped)
		printf("model:         %s%s\n", mnv2 ? "MobileNetV2" : "VGG16",
		       !plan->full ? " (no top)"
		       : mnv2      ? " with Logits (imports as classifier.1)"
				   : " with fc1, fc2, predictions");
	int wl = 14, wn = 28; /* columns as wide as the longest names */
	for (size_t i = 0; i < tl_h5_count(f); i++) {
		const tl_h5_var *v = tl_h5_var_at(f, i);
		if ((int)strlen(v->layer) + 1 > wl)
			wl = (int)strlen(v->layer) + 1;
		if ((int)strlen(v->name) + 1 > wn)
			wn = (int)strlen(v->name) + 1;
	}
	printf("%-*s %-*s %-5s %-22s %s\n", wl, "layer", wn, "weight", "dtype", "shape",
	       mapped ? "imports as" : "");
	uint64_t total = 0;
	for (size_t i = 0; i < tl_h5_count(f); i++) {
		const tl_h5_var *v = tl_h5_var_at(f, i);
		char s[96];
		tl_h5_fmt_shape(v->ndim, v->shape, s, sizeof s);
		const char *as = "";
		for (int k = 0; mapped && k < plan->n; k++)
			if (plan->t[k].var == i)
				as = plan->t[k].name;
		printf("%-*s %-*s %-5s %-22s %s\n", wl, v->layer, wn, v->name, v->dtype, s, as);
		total += v->numel;
	}
	printf("%zu tensors, %" PRIu64 " parameters%s%s\n", tl_h5_count(f), total,
	       mapped ? "" : mnv2 ? "; not a MobileNetV2 file: " : "; not a VGG16 file: ",
	       mapped ? "" : err.msg);
	free(plan);
	tl_h5_close(f);
	return 0;
}

static int list_st(const char *path)
{
	tl_st_file *f;
	tl_err err;
	tl_status st = tl_st_open(&f, path, &err);
	if (st != TL_OK)
		return fail(&err, st);
	const char *norm = tl_st_meta(f, "normalization"), *x = tl_st_meta(f, "xxh3");
	printf("file:          %s\nformat:        safetensors\nsize:          %" PRIu64 " bytes\n", path,
	       f->size);
	printf("checksum:      %s\n", x ? x : "none (no xxh3 in the metadata)");
	if (x)
		printf("               xxh3 of the data section, verified\n");
	printf("normalization: %s\n", norm ? norm : "not declared");
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], "normalization") && strcmp(f->meta_keys[i], "xxh3"))
			printf("%-14s %s\n", f->meta_keys[i], f->meta_vals[i]);
	printf("%-28s %-5s %s\n", "tensor", "dtype", "shape");
	uint64_t total = 0;
	for (size_t i = 0; i < f->n; i++) {
		char s[96];
		tl_h5_fmt_shape(f->t[i].ndim, f->t[i].shape, s, sizeof s);
		printf("%-28s %-5s %s\n", f->t[i].name, f->t[i].dtype_name, s);
		total += f->t[i].numel;
	}
	printf("%zu tensors, %" PRIu64 " parameters\n", f->n, total);
	tl_st_close(f);
	return 0;
}

/* A tensor a file holds: name and shape (torchvision convention). */
typedef struct {
	char name[64];
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	int matched;
} have_t;

/* A tensor the model needs: name and shape (torchvision convention). */
typedef struct {
	char name[64];
	int ndim;
	int64_t shape[4];
} want_t;

/* The models -m takes: those tl_model_build knows. */
static int known_model(const char *m)
{
	return m && tl_model_known(m);
}

/* The network a safetensors file without "model" metadata is for, by a
 * tensor only that network has; vgg16 when none matches. */
static const char *guess_model(const tl_st_file *f)
{
	const tl_st_tensor *t;
	if (tl_st_find(f, "conv1/7x7_s2.weight"))
		return "googlenet";
	if (tl_st_find(f, "features.1.conv.0.0.weight"))
		return "mobilenetv2";
	if (tl_st_find(f, "features.3.squeeze.weight"))
		return "squeezenet";
	if ((t = tl_st_find(f, "features.0.weight")) && t->ndim == 4 && t->shape[2] == 11)
		return "alexnet";
	return "vgg16";
}

/* Reads the tensors a weights file holds (a Keras .h5 through its import
 * plan, else safetensors) into a new array *have of *nh; a NULL *model
 * becomes the file's (its plan's, its metadata's model, or the network
 * its tensor names belong to).
 * Returns -1 to go on, or the exit status (1) after printing why not. */
static int check_load(const char *path, const char **model, have_t **have, size_t *nh)
{
	tl_err err;
	tl_status st;
	*have = NULL, *nh = 0;
	if (is_h5(path)) {
		tl_h5_file *f;
		if ((st = tl_h5_open(&f, path, &err)) != TL_OK)
			return fail(&err, st);
		tl_kx_plan *plan = malloc(sizeof *plan);
		if (!plan) {
			tl_h5_close(f);
			fprintf(stderr, "tlweights: out of memory\n");
			return 1;
		}
		st = tl_keras_plan(f, path, plan, &err);
		tl_h5_close(f);
		if (st != TL_OK) {
			free(plan);
			return fail(&err, st);
		}
		if (!*model)
			*model = !strcmp(plan->model, "vgg16") ? "vgg16" : "mobilenetv2";
		if (strcmp(*model, plan->model)) {
			fprintf(stderr, "tlweights: %s: a Keras %s file, not %s\n", path,
				!strcmp(plan->model, "vgg16") ? "VGG16" : "MobileNetV2", *model);
			free(plan);
			return 1;
		}
		have_t *h = calloc((size_t)plan->n, sizeof *h);
		for (int i = 0; h && i < plan->n; i++) {
			snprintf(h[i].name, sizeof h[i].name, "%s", plan->t[i].name);
			h[i].ndim = plan->t[i].ndim;
			memcpy(h[i].shape, plan->t[i].shape, sizeof plan->t[i].shape);
		}
		*have = h, *nh = (size_t)plan->n;
		free(plan);
	} else {
		tl_st_file *f;
		if ((st = tl_st_open(&f, path, &err)) != TL_OK)
			return fail(&err, st);
		if (!*model) {
			const char *m = tl_st_meta(f, "model");
			static char mm[32];
			snprintf(mm, sizeof mm, "%s", m && known_model(m) ? m : guess_model(f));
			*model = mm;
		}
		have_t *h = calloc(f->n + 1, sizeof *h);
		for (size_t i = 0; h && i < f->n; i++) {
			snprintf(h[i].name, sizeof h[i].name, "%s", f->t[i].name);
			h[i].ndim = f->t[i].ndim;
			memcpy(h[i].shape, f->t[i].shape, sizeof f->t[i].shape);
		}
		*have = h, *nh = f->n;
		tl_st_close(f);
	}
	if (!*have) {
		fprintf(stderr, "tlweights: out of memory\n");
		return 1;
	}
	return -1;
}

/* Lists into want (room for TL_KX_MAX_TENSORS) what the model's base
 * needs at full width (the head is new); returns the count, or -1 after
 * printing why the model could not be built. */
static int check_want_base(const char *model, want_t *want)
{
	tl_model_cfg mc;
	tl_model_defaults(&mc, model);
	mc.height = mc.width = 224;
	tl_net *net;
	tl_err err;
	if (tl_model_build(&mc, &net, &err) != TL_OK) {
		fprintf(stderr, "tlweights: %s\n", err.msg);
		return -1;
	}
	int nw = 0;
	for (int i = 0; i < net->n_params && nw < TL_KX_MAX_TENSORS - 8; i++) {
		if (!strncmp(net->params[i].name, "head.", 5))
			continue;
		snprintf(want[nw].name, sizeof want[nw].name, "%s", net->params[i].name);
		want[nw].ndim = net->params[i].ndim;
		memcpy(want[nw].shape, net->params[i].shape, sizeof want[nw].shape);
		nw++;
	}
	tl_net_free(net);
	return nw;
}

/* Appends torchvision VGG16's classifier (layers 0, 3, 6; the last with
 * as many classes as the file's classifier.6.weight, else 1000) to want
 * at *nw. */
static void check_want_classifier(const have_t *have, size_t nh, want_t *want, int *nw)
{
	static const int64_t cw[3][2] = {{4096, 25088}, {4096, 4096}, {-1, 4096}};
	static const int idx[3] = {0, 3, 6};
	for (int k = 0; k < 3; k++) {
		int64_t out = cw[k][0];
		if (out < 0) /* any number of classes */
			for (size_t i = 0; i < nh; i++)
				if (!strcmp(have[i].name, "classifier.6.weight") && have[i].ndim == 2)
					out = have[i].shape[0];
		snprintf(want[*nw].name, sizeof want[*nw].name, "classifier.%d.weight", idx[k]);
		want[*nw].ndim = 2, want[*nw].shape[0] = out < 0 ? 1000 : out,
		want[*nw].shape[1] = cw[k][1];
		(*nw)++;
		snprintf(want[*nw].name, sizeof want[*nw].name, "classifier.%d.bias", idx[k]);
		want[*nw].ndim = 1, want[*nw].shape[0] = out < 0 ? 1000 : out;
		(*nw)++;
	}
}

/* Appends one wanted tensor to want at *nw. */
static void want_add(want_t *want, int *nw, const char *name, int ndim, int64_t a, int64_t b,
		     int64_t c, int64_t d)
{
	want_t *w = &want[(*nw)++];
	snprintf(w->name, sizeof w->name, "%s", name);
	w->ndim = ndim, w->shape[0] = a, w->shape[1] = b, w->shape[2] = c, w->shape[3] = d;
}

/* Appends a torchvision BatchNorm2d's four tensors of c channels. */
static void want_bn(want_t *want, int *nw, const char *prefix, int64_t c)
{
	static const char *const k[4] = {"weight", "bias", "running_mean", "running_var"};
	for (int i = 0; i < 4; i++) {
		char n[64];
		snprintf(n, sizeof n, "%s.%s", prefix, k[i]);
		want_add(want, nw, n, 1, c, 0, 0, 0);
	}
}

/* Lists into want (room for TL_KX_MAX_TENSORS) torchvision mobilenet_v2's
 * features.* with every channel count c as max(1, c / div) (tlkit's
 * width_div; 1 = the real network); returns the count. */
static int check_want_mnv2(int div, want_t *want)
{
	static const int set[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
				      {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
#define W(c) ((int64_t)((c) / div > 0 ? (c) / div : 1))
	int nw = 0, f = 1;
	int64_t in = W(32);
	char n[64];
	want_add(want, &nw, "features.0.0.weight", 4, in, 3, 3, 3);
	want_bn(want, &nw, "features.0.1", in);
	for (int s = 0; s < 7; s++)
		for (int r = 0; r < set[s][2]; r++, f++) {
			int64_t hid = in * set[s][0], out = W(set[s][1]);
			const char *dw = "conv.1.0", *dwbn = "conv.1.1", *pj = "conv.2", *pjbn = "conv.3";
			if (set[s][0] == 1) {
				dw = "conv.0.0", dwbn = "conv.0.1", pj = "conv.1", pjbn = "conv.2";
			} else {
				snprintf(n, sizeof n, "features.%d.conv.0.0.weight", f);
				want_add(want, &nw, n, 4, hid, in, 1, 1);
				snprintf(n, sizeof n, "features.%d.conv.0.1", f);
				want_bn(want, &nw, n, hid);
			}
			snprintf(n, sizeof n, "features.%d.%s.weight", f, dw);
			want_add(want, &nw, n, 4, hid, 1, 3, 3);
			snprintf(n, sizeof n, "features.%d.%s", f, dwbn);
			want_bn(want, &nw, n, hid);
			snprintf(n, sizeof n, "features.%d.%s.weight", f, pj);
			want_add(want, &nw, n, 4, out, hid, 1, 1);
			snprintf(n, sizeof n, "features.%d.%s", f, pjbn);
			want_bn(want, &nw, n, out);
			in = out;
		}
	want_add(want, &nw, "features.18.0.weight", 4, W(1280), in, 1, 1);
	want_bn(want, &nw, "features.18.1", W(1280));
#undef W
	return nw;
}

/* The width divisor of a MobileNetV2 file: the smallest div for which
 * features.0 has max(1, 32 / div) and features.18 max(1, 1280 / div)
 * outputs (1 when none fits: the file is then compared with the real
 * network). */
static int mnv2_div(const have_t *have, size_t nh)
{
	int64_t c0 = -1, cl = -1;
	for (size_t i = 0; i < nh; i++) {
		if (!strcmp(have[i].name, "features.0.0.weight") && have[i].ndim == 4)
			c0 = have[i].shape[0];
		if (!strcmp(have[i].name, "features.18.0.weight") && have[i].ndim == 4)
			cl = have[i].shape[0];
	}
	for (int div = 1; div <= 1280; div++)
		if ((32 / div > 0 ? 32 / div : 1) == c0 && (1280 / div > 0 ? 1280 / div : 1) == cl)
			return div;
	return 1;
}

/* Prints each wanted tensor the file lacks or holds mis-shaped, marking
 * the ones it holds as matched; counts them into *missing and *shaped
 * and returns the parameters of the well-shaped ones. */
static uint64_t check_match(const want_t *want, int nw, have_t *have, size_t nh, int *missing,
			    int *shaped)
{
	uint64_t params = 0;
	for (int w = 0; w < nw; w++) {
		char ws[96], hs[96];
		tl_h5_fmt_shape(want[w].ndim, want[w].shape, ws, sizeof ws);
		have_t *h = NULL;
		for (size_t i = 0; i < nh && !h; i++)
			if (!strcmp(have[i].name, want[w].name))
				h = &have[i];
		if (!h) {
			printf("missing     %-24s expected %s\n", want[w].name, ws);
			(*missing)++;
			continue;
		}
		h->matched = 1;
		int same = h->ndim == want[w].ndim;
		uint64_t n = 1;
		for (int d = 0; same && d < h->ndim; d++)
			same = h->shape[d] == want[w].shape[d], n *= (uint64_t)h->shape[d];
		if (!same) {
			tl_h5_fmt_shape(h->ndim, h->shape, hs, sizeof hs);
			printf("mis-shaped  %-24s expected %s, got %s\n", want[w].name, ws, hs);
			(*shaped)++;
		} else {
			params += n;
		}
	}
	return params;
}

/* Prints the file's tensors the model does not use; returns their count. */
static int check_extra(const have_t *have, size_t nh)
{
	int extra = 0;
	for (size_t i = 0; i < nh; i++)
		if (!have[i].matched) {
			size_t n = strlen(have[i].name), k = strlen(".num_batches_tracked");
			if (n > k && strcmp(have[i].name + n - k, ".num_batches_tracked") == 0)
				continue; /* torchvision's batch counter: no part of the model */
			char hs[96];
			tl_h5_fmt_shape(have[i].ndim, have[i].shape, hs, sizeof hs);
			printf("extra       %-24s %s%s\n", have[i].name, hs,
			       !strncmp(have[i].name, "head.", 5) ? " (a trained head)" : "");
			extra++;
		}
	return extra;
}

/* tlweights --check: does the file hold every tensor model's base needs
 * (and, with a classifier, VGG16's) at the right shape?  Prints each
 * problem and a verdict; returns the exit status (0 ok, 1 not, 2). */
static int cmd_check(const char *path, const char *model)
{
	have_t *have;
	size_t nh;
	int rc = check_load(path, &model, &have, &nh);
	if (rc >= 0)
		return rc;
	want_t *want = calloc(TL_KX_MAX_TENSORS, sizeof *want);
	int mnv2 = !strcmp(model, "mobilenetv2"), div = mnv2 ? mnv2_div(have, nh) : 1;
	int nw = !want ? -1 : mnv2 ? check_want_mnv2(div, want) : check_want_base(model, want);
	if (nw < 0) {
		free(want);
		free(have);
		return 2;
	}
	int missing = 0, shaped = 0, extra = 0, classifier = 0;
	for (size_t i = 0; i < nh; i++)
		classifier |= !strncmp(have[i].name, "classifier.", 11);
	if (classifier && !strcmp(model, "vgg16")) /* torchvision's classifier: 0, 3, 6 */
		check_want_classifier(have, nh, want, &nw);
	if (classifier && mnv2) { /* torchvision's classifier.1, any number of classes */
		int64_t k = 1000;
		for (size_t i = 0; i < nh; i++)
			if (!strcmp(have[i].name, "classifier.1.weight") && have[i].ndim == 2)
				k = have[i].shape[0];
		int64_t last = 1280 / div > 0 ? 1280 / div : 1;
		want_add(want, &nw, "classifier.1.weight", 2, k, last, 0, 0);
		want_add(want, &nw, "classifier.1.bias", 1, k, 0, 0, 0);
	}
	uint64_t params = check_match(want, nw, have, nh, &missing, &shaped);
	extra = check_extra(have, nh);
	free(have);
	free(want);
	char width[64] = "";
	if (div > 1)
		snprintf(width, sizeof width, " with widths / %d (a test model)", div);
	if (missing || shaped) {
		printf("%s: not usable as %s%s: %d missing, %d mis-shaped, %d extra\n", path, model,
		       width, missing, shaped, extra);
		return 1;
	}
	printf("%s: ok for %s%s: %d tensors, %" PRIu64 " parameters%s%s\n", path, model, width, nw,
	       params, classifier ? ", with the ImageNet classifier" : "",
	       extra ? " (extra tensors are ignored)" : "");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"output", required_argument, 0, 'o'}, {"model", required_argument, 0, 'm'},
		{"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
	};
	const char *out = NULL, *model = NULL;
	int quiet = 0, c;
	while ((c = getopt_long(argc, argv, "o:m:qhV", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'm':
			if (!known_model(optarg))
				return bad("-m: expected " TL_MODEL_LIST, optarg);
			model = optarg;
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tlweights (tlkit) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	if (optind + 2 != argc) {
		if (optind + 1 == argc)
			return bad("expected a FILE after the command", cmd);
		return bad("unexpected argument", argv[optind + 2]);
	}
	const char *file = argv[optind + 1];
	if (!strcmp(cmd, "import")) {
		if (is_pth(file))
			return cmd_import_pth(file, out, quiet);
		if (!is_h5(file))
			return bad("import: expected a Keras .h5 or a PyTorch .pth file", file);
		return cmd_import(file, out, quiet);
	}
	if (out)
		return bad("-o is for import only", out);
	if (!strcmp(cmd, "list"))
		return is_h5(file) ? list_h5(file) : list_st(file);
	if (!strcmp(cmd, "check"))
		return cmd_check(file, model);
	return bad("unknown command (expected import, list or check)", cmd);
}
