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
#include "nn/registry.h"
#include "nn/safetensors.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlweights import FILE.h5 [-o OUT.safetensors]   Keras VGG16 or MobileNetV2 -> safetensors\n"
		"       tlweights import FILE.pth [-o OUT.safetensors]  PyTorch state dict (torch.save) -> safetensors\n"
		"       tlweights list FILE                            names, shapes, dtypes, normalization, checksum\n"
		"       tlweights check FILE [-m MODEL]                missing, extra, mis-shaped tensors\n"
		"  -o, --output FILE    import: where to write (default: FILE with .safetensors, here)\n"
		"  -m, --model M        check: %s (default: the file's model)\n"
		"  -q, --quiet          import: no summary line\n"
		"  -h, --help, -V, --version\n"
		"see tlweights(1)\n",
		tl_model_list());
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

/* Whether f holds the tensors of guess (tl_model_info.guess). */
static int guess_matches(const tl_st_file *f, const char *guess)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", guess);
	char *save;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int absent = t[0] == '!';
		char *k = strstr(t, ":k=");
		if (k)
			*k = 0;
		const tl_st_tensor *x = tl_st_find(f, t + absent);
		if (absent ? x != NULL : x == NULL)
			return 0;
		if (k && (x->ndim != 4 || x->shape[2] != atoi(k + 3)))
			return 0;
	}
	return 1;
}

/* The network a safetensors file without "model" metadata is for, by the
 * tensors the registry says only that network has; vgg16 when none
 * matches. */
static const char *guess_model(const tl_st_file *f)
{
	for (int i = 0; i < tl_model_count(); i++)
		if (tl_model_at(i)->guess && guess_matches(f, tl_model_at(i)->guess))
			return tl_model_at(i)->name;
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
			*model = tl_model_find(plan->model)->name;
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

/* The first and last 4-d weights' output channels among the net's base
 * parameters (-1 if none), and the input size of its first dense layer
 * (the base's output, flattened or pooled). */
static void base_edges(const tl_net *net, int64_t *first, int64_t *last, int64_t *head_in)
{
	*first = *last = -1, *head_in = 0;
	for (int i = 0; i < net->n_params; i++)
		if (!tl_net_param_in_head(net, i) && net->params[i].ndim == 4) {
			if (*first < 0)
				*first = net->params[i].shape[0];
			*last = net->params[i].shape[0];
		}
	for (int l = 0; l < net->n_layers; l++)
		if (net->layers[l].kind == TL_L_DENSE) { /* after the flatten or pool */
			tl_shape3 s = net->tshape[net->layers[l].in[0]];
			*head_in = (int64_t)s.c * s.h * s.w;
			break;
		}
}

/* Builds model at 224x224 with widths / div (its default head) into
 * *net; prints why not and returns -1 on failure. */
static int check_build(const char *model, int div, tl_net **net)
{
	tl_model_cfg mc;
	tl_model_defaults(&mc, model);
	mc.height = mc.width = 224;
	mc.width_div = div;
	tl_err err;
	if (tl_model_build(&mc, net, &err) != TL_OK) {
		fprintf(stderr, "tlweights: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The output channels of the file's 4-d tensor name, or -1. */
static int64_t have_out(const have_t *have, size_t nh, const char *name)
{
	for (size_t i = 0; i < nh; i++)
		if (!strcmp(have[i].name, name) && have[i].ndim == 4)
			return have[i].shape[0];
	return -1;
}

/* Lists into want (room for TL_KX_MAX_TENSORS) what the model's base
 * needs, from the built net: at full width, or (a test model's file) at
 * the smallest width divisor div that gives the file's first and last
 * convolutions their output channels (*div, 1 when none fits); then the
 * network's ImageNet classifier when the file has one (*classifier).
 * Returns the count, or -1 after printing why the model could not be
 * built. */
static int check_want(const char *model, const have_t *have, size_t nh, want_t *want, int *div,
		      int *classifier)
{
	const tl_model_info *mi = tl_model_find(model);
	tl_net *net;
	*div = 1;
	if (check_build(model, 1, &net))
		return -1;
	int64_t first, last, head_in;
	base_edges(net, &first, &last, &head_in);
	const char *fname = NULL, *lname = NULL; /* the first and last 4-d base weights */
	for (int i = 0; i < net->n_params; i++)
		if (!tl_net_param_in_head(net, i) && net->params[i].ndim == 4) {
			fname = fname ? fname : net->params[i].name;
			lname = net->params[i].name;
		}
	int64_t hf = fname ? have_out(have, nh, fname) : -1, hl = lname ? have_out(have, nh, lname) : -1;
	if (hf > 0 && hl > 0 && (hf != first || hl != last))
		for (int d = 2; d <= first || d <= last; d++)
			if (tl_wdiv((int)first, d) == hf && tl_wdiv((int)last, d) == hl) {
				tl_net_free(net);
				*div = d;
				if (check_build(model, d, &net))
					return -1;
				base_edges(net, &first, &last, &head_in);
				break;
			}
	int nw = 0;
	for (int i = 0; i < net->n_params && nw < TL_KX_MAX_TENSORS - 8; i++) {
		if (!strncmp(net->params[i].name, "head.", 5)) /* tlkit's new head */
			continue;
		snprintf(want[nw].name, sizeof want[nw].name, "%s", net->params[i].name);
		want[nw].ndim = net->params[i].ndim;
		memcpy(want[nw].shape, net->params[i].shape, sizeof want[nw].shape);
		nw++;
	}
	tl_net_free(net);
	/* the ImageNet classifier: any number of classes (its last layer's,
	 * else 1000); its input is the base's output */
	*classifier = 0;
	for (const tl_model_fc *fc = mi->classifier; fc->name; fc++)
		for (size_t i = 0; i < nh; i++)
			*classifier |= !strncmp(have[i].name, fc->name, strlen(fc->name)) &&
				       have[i].name[strlen(fc->name)] == '.';
	for (const tl_model_fc *fc = mi->classifier; *classifier && fc->name; fc++) {
		char wn[64], bn[64];
		snprintf(wn, sizeof wn, "%s.weight", fc->name);
		snprintf(bn, sizeof bn, "%s.bias", fc->name);
		int64_t out = fc->out;
		for (size_t i = 0; out < 0 && i < nh; i++)
			if (!strcmp(have[i].name, wn) && have[i].ndim == 2)
				out = have[i].shape[0];
		if (out < 0)
			out = 1000;
		want_t *w = &want[nw++];
		snprintf(w->name, sizeof w->name, "%s", wn);
		w->ndim = 2, w->shape[0] = out, w->shape[1] = fc->in ? fc->in : head_in;
		w = &want[nw++];
		snprintf(w->name, sizeof w->name, "%s", bn);
		w->ndim = 1, w->shape[0] = out;
	}
	return nw;
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
	int div = 1, classifier = 0, missing = 0, shaped = 0, extra = 0;
	int nw = want ? check_want(model, have, nh, want, &div, &classifier) : -1;
	if (nw < 0) {
		free(want);
		free(have);
		return 2;
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
			if (!known_model(optarg)) {
				char what[300];
				snprintf(what, sizeof what, "-m: expected %s", tl_model_list());
				return bad(what, optarg);
			}
			model = tl_model_find(optarg)->name; /* an alias: the name */
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
