/* run.c - run directories in and out, and their pictures (see run.h). */
#include "plot/run.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afile.h"
#include "infile.h"
#include "plot/chart.h"

#define MAX_ROWS 100000

/* ---- strings ---- */

/* A new string printed from fmt, whatever its length; NULL when out of
 * memory. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

/* A copy of the first n bytes of s; NULL when out of memory. */
static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

/* ---- reading ---- */

/* Read the whole regular file at path (tl_open_input: a FIFO or device
 * is refused, not waited on) into a new NUL-terminated buffer. */
static tl_status slurp(const char *path, char **out, size_t *len, tl_err *err)
{
	FILE *f = tl_fopen_input(path, err);
	if (!f)
		return TL_EIO; /* tl_open_input's only failure */
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			if (cap > ((size_t)1 << 30)) {
				free(buf);
				fclose(f);
				return tl_seterr(err, TL_EFORMAT, "%s: too large for a run file (over 1 GiB)", path);
			}
			char *p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(f);
				return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
			}
			buf = p;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return tl_seterr(err, TL_EIO, "%s: read error", path);
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = n;
	return TL_OK;
}

/* Whether the optional run file path is there: 0 absent, 1 present (it
 * is opened as an input later, which refuses what is not a regular
 * file), -1 with err set when it cannot be looked at. */
static int present(const char *path, tl_err *err)
{
	struct stat sb;
	if (stat(path, &sb) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
	return -1;
}

/* Parse the JSON file at path, opened with tl_fopen_input; NULL with err
 * set when it cannot be opened, *je says why a parse failed. */
static json_t *load_json(const char *path, json_error_t *je, tl_err *err)
{
	FILE *f = tl_fopen_input(path, err);
	if (!f)
		return NULL;
	json_t *o = json_loadf(f, 0, je);
	fclose(f);
	return o;
}

static tl_status grow(tl_rundata *r, int cap, tl_err *err)
{
	int **ip[] = {&r->epoch, &r->stage};
	double **dp[] = {&r->acc, &r->loss, &r->val_acc, &r->val_loss, &r->lr};
	for (int i = 0; i < 2; i++) {
		int *p = realloc(*ip[i], sizeof(int) * (size_t)cap);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "history: out of memory");
		*ip[i] = p;
	}
	for (int i = 0; i < 5; i++) {
		double *p = realloc(*dp[i], sizeof(double) * (size_t)cap);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "history: out of memory");
		*dp[i] = p;
	}
	return TL_OK;
}

enum { C_EPOCH, C_ACC, C_LOSS, C_VACC, C_VLOSS, C_LR, C_STAGE, C_N };

static int column_of(const char *name)
{
	static const char *const names[][2] = {
		{"epoch", NULL},        {"accuracy", "acc"}, {"loss", NULL}, {"val_accuracy", "val_acc"},
		{"val_loss", NULL},     {"lr", "learning_rate"}, {"stage", NULL}};
	for (int c = 0; c < C_N; c++)
		if (strcmp(name, names[c][0]) == 0 || (names[c][1] && strcmp(name, names[c][1]) == 0))
			return c;
	return -1;
}

/* Split line at commas in place, at most max fields kept, the count
 * returned; unquoted fields are trimmed, a field in double quotes may hold
 * commas and doubled quotes (csv_field writes class names so). */
static int split_fields(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		char *start = p, *end;
		if (*p == '"') { /* quoted: commas and doubled quotes inside (class names) */
			char *w = start = ++p;
			while (*p && !(*p == '"' && p[1] != '"'))
				*w++ = *p, p += *p == '"' ? 2 : 1;
			end = w;
			if (*p)
				p++;
			p += strcspn(p, ","); /* anything after the closing quote is dropped */
		} else {
			p += strcspn(p, ",");
			end = p;
			while (end > start && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\t'))
				end--;
		}
		char sep = *p;
		*end = 0;
		if (n < max)
			f[n] = start;
		n++;
		if (sep != ',')
			break;
		p++;
	}
	return n;
}

static void csv_field(FILE *f, const char *s, int last);

static int cmp_rows(const void *a, const void *b)
{
	const int *x = a, *y = b; /* {epoch, original index} */
	return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* Sort rows by epoch and keep the last row written for each epoch (a run
 * resumed mid-epoch may repeat one). */
static tl_status sort_dedupe(tl_rundata *r, tl_err *err)
{
	int n = r->n;
	if (n < 2)
		return TL_OK;
	int *key = malloc(sizeof(int) * 2 * (size_t)n);
	tl_rundata t = {0};
	if (!key || grow(&t, n, err) != TL_OK) {
		free(key);
		tl_run_free(&t);
		return tl_seterr(err, TL_ENOMEM, "history: out of memory");
	}
	for (int i = 0; i < n; i++)
		key[2 * i] = r->epoch[i], key[2 * i + 1] = i;
	qsort(key, (size_t)n, sizeof(int) * 2, cmp_rows);
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (i + 1 < n && key[2 * (i + 1)] == key[2 * i])
			continue; /* a later row has this epoch */
		int s = key[2 * i + 1];
		t.epoch[m] = r->epoch[s], t.stage[m] = r->stage[s], t.acc[m] = r->acc[s];
		t.loss[m] = r->loss[s], t.val_acc[m] = r->val_acc[s], t.val_loss[m] = r->val_loss[s];
		t.lr[m] = r->lr[s];
		m++;
	}
	free(key);
#define SWAPF(f)                     \
	do {                         \
		void *p_ = (void *)r->f; \
		r->f = t.f;              \
		t.f = p_;                \
	} while (0)
	SWAPF(epoch);
	SWAPF(stage);
	SWAPF(acc);
	SWAPF(loss);
	SWAPF(val_acc);
	SWAPF(val_loss);
	SWAPF(lr);
#undef SWAPF
	r->n = m;
	tl_run_free(&t);
	return TL_OK;
}

static tl_status read_history_csv(tl_rundata *r, const char *path, tl_err *err)
{
	char *buf;
	TL_TRY(slurp(path, &buf, NULL, err));
	tl_status st = TL_OK;
	int col[64], ncol = 0, line_no = 0, cap = 0;
	char *save = NULL, *f[64], *hdr[64]; /* hdr: the header's names, in buf */
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line_no++;
		if (line[0] == '#' || line[strspn(line, " \t\r")] == 0)
			continue;
		int nf = split_fields(line, f, 64);
		if (nf > 64) {
			st = tl_seterr(err, TL_EFORMAT, "%s: line %d: too many columns (expected at most 64, got %d)",
				       path, line_no, nf);
			break;
		}
		if (!ncol) { /* the header */
			int have_epoch = 0;
			for (int i = 0; i < nf; i++) {
				col[i] = column_of(f[i]);
				hdr[i] = f[i];
				have_epoch |= col[i] == C_EPOCH;
			}
			ncol = nf;
			if (!have_epoch) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: not a training history (expected a header with an epoch column, got '%s')",
					       path, line_no, f[0]);
				break;
			}
			continue;
		}
		if (nf != ncol) {
			st = tl_seterr(err, TL_EFORMAT, "%s: line %d: wrong number of fields (expected %d, got %d)",
				       path, line_no, ncol, nf);
			break;
		}
		if (r->n >= MAX_ROWS) {
			st = tl_seterr(err, TL_EFORMAT, "%s: more than %d epochs", path, MAX_ROWS);
			break;
		}
		if (r->n == cap && (st = grow(r, cap = cap ? cap * 2 : 64, err)) != TL_OK)
			break;
		int i = r->n;
		r->epoch[i] = 0, r->stage[i] = -1;
		r->acc[i] = r->loss[i] = r->val_acc[i] = r->val_loss[i] = r->lr[i] = NAN;
		double *dst[C_N] = {NULL, &r->acc[i], &r->loss[i], &r->val_acc[i], &r->val_loss[i], &r->lr[i], NULL};
		for (int c = 0; c < nf && st == TL_OK; c++) {
			if (col[c] < 0)
				continue;
			char *end;
			errno = 0;
			double v = f[c][0] ? strtod(f[c], &end) : NAN;
			if (f[c][0] && (*end || end == f[c])) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: field %d: not a number (got '%s')",
					       path, line_no, c + 1, f[c]);
				break;
			}
			if (col[c] == C_EPOCH || col[c] == C_STAGE) {
				if (!(v >= 0 && v <= 1e7) || v != floor(v)) {
					st = tl_seterr(err, TL_EFORMAT, "%s: line %d: bad %s (expected a whole number, got '%s')",
						       path, line_no, col[c] == C_EPOCH ? "epoch" : "stage", f[c]);
					break;
				}
				*(col[c] == C_EPOCH ? &r->epoch[i] : &r->stage[i]) = (int)v;
				continue;
			}
			/* NaN (or empty) is a missing value, drawn as a gap */
			int is_acc = col[c] == C_ACC || col[c] == C_VACC;
			if (is_acc && !isnan(v) && !(v >= 0 && v <= 1)) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: column %d (%s): accuracy out of range (expected 0..1, got '%s')",
					       path, line_no, c + 1, hdr[c], f[c]);
				break;
			}
			if ((col[c] == C_LOSS || col[c] == C_VLOSS) && isinf(v)) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: column %d (%s): loss not finite (expected a finite number, or empty or nan when missing, got '%s')",
					       path, line_no, c + 1, hdr[c], f[c]);
				break;
			}
			*dst[col[c]] = v;
		}
		if (st != TL_OK)
			break;
		r->n++;
	}
	free(buf);
	if (st == TL_OK && !ncol)
		st = tl_seterr(err, TL_EFORMAT, "%s: empty (expected a CSV header and one row per epoch)", path);
	else if (st == TL_OK && !r->n)
		st = tl_seterr(err, TL_EFORMAT, "%s: no epochs (expected one row per epoch after the header, got only the header)",
			       path);
	return st;
}

/* history.json: [{"epoch":E,"stage":S,...}, ...] gives each epoch's
 * stage.  A file that cannot be opened is an error; one that does not
 * parse as such an array only leaves the stages unknown. */
static tl_status read_stages(tl_rundata *r, const char *path, tl_err *err)
{
	json_error_t je;
	tl_err oerr;
	oerr.msg[0] = 0;
	json_t *a = load_json(path, &je, &oerr);
	if (!a && oerr.msg[0])
		return tl_seterr(err, TL_EIO, "%s", oerr.msg);
	if (!json_is_array(a)) {
		json_decref(a);
		return TL_OK;
	}
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o)
	{
		json_t *e = json_object_get(o, "epoch"), *s = json_object_get(o, "stage");
		if (!json_is_integer(e) || !json_is_integer(s))
			continue;
		for (int k = 0; k < r->n; k++)
			if (r->epoch[k] == json_integer_value(e) && r->stage[k] < 0)
				r->stage[k] = (int)json_integer_value(s);
	}
	json_decref(a);
	return TL_OK;
}

/* *dst becomes a copy of the JSON string v (jansson has checked it is
 * valid UTF-8 without NULs), whole; left alone when v is not a string. */
static tl_status copy_str(char **dst, json_t *v, const char *path, tl_err *err)
{
	if (!json_is_string(v))
		return TL_OK;
	char *s = dup_n(json_string_value(v), json_string_length(v));
	if (!s)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	free(*dst);
	*dst = s;
	return TL_OK;
}

/* A JSON number's value; NaN for anything else (null, absent). */
static double num_of(const json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* report.json: the run's names, its best and unfreeze epochs and the
 * comparative study's numbers; r->has_report is set. */
static tl_status read_report(tl_rundata *r, const char *path, tl_err *err)
{
	r->has_report = 1;
	json_error_t je;
	tl_err oerr;
	oerr.msg[0] = 0;
	json_t *o = load_json(path, &je, &oerr);
	if (!o && oerr.msg[0])
		return tl_seterr(err, TL_EIO, "%s", oerr.msg);
	if (!json_is_object(o)) {
		json_decref(o);
		return tl_seterr(err, TL_EFORMAT, "%s: line %d: not a tltrain report (%s)", path, je.line,
				 je.text[0] ? je.text : "expected a JSON object");
	}
	tl_status st = TL_OK;
	if ((st = copy_str(&r->model, json_object_get(o, "model"), path, err)) != TL_OK ||
	    (st = copy_str(&r->strategy, json_object_get(o, "strategy"), path, err)) != TL_OK ||
	    (st = copy_str(&r->unit, json_object_get(o, "unfreeze_unit"), path, err)) != TL_OK ||
	    (st = copy_str(&r->monitor, json_object_get(o, "monitor"), path, err)) != TL_OK ||
	    (st = copy_str(&r->validation, json_object_get(o, "validation"), path, err)) != TL_OK) {
		json_decref(o);
		return st;
	}
	if ((st = copy_str(&r->device, json_object_get(o, "device"), path, err)) != TL_OK) {
		json_decref(o);
		return st;
	}
	json_t *v = json_object_get(o, "best_epoch");
	if (json_is_integer(v))
		r->best_epoch = (int)json_integer_value(v);
	/* tltrain restores the best epoch's weights at the end of every run
	 * it reports on */
	v = json_object_get(o, "producer");
	r->restored = r->best_epoch > 0 && json_is_string(v) && strcmp(json_string_value(v), "tltrain") == 0;
	json_t *t = json_object_get(o, "test");
	r->train_seconds = num_of(json_object_get(o, "train_seconds"));
	r->test_accuracy = num_of(json_object_get(t, "accuracy"));
	r->macro_f1 = num_of(json_object_get(t, "macro_f1"));
	r->latency_ms = num_of(json_object_get(t, "latency_ms"));
	r->test_loss = num_of(json_object_get(t, "loss"));
	v = json_object_get(o, "model_bytes");
	r->model_bytes = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	v = json_object_get(o, "params_total");
	r->params_total = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	v = json_object_get(o, "params_trainable");
	r->params_trainable = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	v = json_object_get(o, "unfreeze_epoch");
	if (json_is_integer(v))
		r->unfreeze_epoch = (int)json_integer_value(v);
	json_decref(o);
	return TL_OK;
}

static tl_status read_confusion(tl_rundata *r, const char *path, tl_err *err)
{
	char *buf;
	TL_TRY(slurp(path, &buf, NULL, err));
	tl_status st = TL_OK;
	char *save = NULL;
	int row = 0, line_no = 0;
	uint64_t total = 0; /* bounds every row, column and diagonal sum */
	char **f = malloc(sizeof(char *) * 1002);
	if (!f) {
		free(buf);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line_no++;
		if (line[strspn(line, " \t\r")] == 0)
			continue;
		int nf = split_fields(line, f, 1002);
		if (!r->k) {
			if (nf < 2 || nf > 1001) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: bad header (expected 'true\\predicted' and 1..1000 class names, got %d fields)",
					       path, line_no, nf);
				break;
			}
			r->k = nf - 1;
			r->cm = calloc((size_t)r->k * r->k, sizeof *r->cm);
			r->names = calloc((size_t)r->k, sizeof *r->names);
			if (!r->cm || !r->names) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
				break;
			}
			for (int i = 0; i < r->k && st == TL_OK; i++) {
				if (!tl_plot_utf8_valid(f[i + 1], strlen(f[i + 1])))
					st = tl_seterr(err, TL_EFORMAT, "%s: line %d: field %d: class name is not valid UTF-8",
						       path, line_no, i + 2);
				else if (!(r->names[i] = dup_n(f[i + 1], strlen(f[i + 1]))))
					st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
			}
			if (st != TL_OK)
				break;
			continue;
		}
		if (nf != r->k + 1 || row >= r->k) {
			st = tl_seterr(err, TL_EFORMAT, "%s: line %d: bad row (expected %d rows of %d fields, got %d fields)",
				       path, line_no, r->k, r->k + 1, nf);
			break;
		}
		for (int j = 0; j < r->k; j++) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(f[j + 1], &end, 10);
			if (*end || end == f[j + 1] || errno || f[j + 1][0] == '-') {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: field %d: not a count (got '%s')",
					       path, line_no, j + 2, f[j + 1]);
				break;
			}
			if (v > UINT64_MAX - total) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %d: field %d: counts too large (expected a matrix total of at most %llu, got more)",
					       path, line_no, j + 2, (unsigned long long)UINT64_MAX);
				break;
			}
			total += v;
			r->cm[(size_t)row * r->k + j] = v;
		}
		if (st != TL_OK)
			break;
		row++;
	}
	if (st == TL_OK && (!r->k || row != r->k))
		st = tl_seterr(err, TL_EFORMAT, "%s: truncated (expected %d rows, got %d)", path, r->k, row);
	free(f);
	free(buf);
	return st;
}

/* The run's strings that report.json did not give become "". */
static tl_status default_strings(tl_rundata *r, tl_err *err)
{
	char **f[] = {&r->model, &r->strategy, &r->unit, &r->monitor, &r->validation, &r->device};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!*f[i] && !(*f[i] = dup_n("", 0)))
			return tl_seterr(err, TL_ENOMEM, "out of memory");
	return TL_OK;
}

/* r->label: "MODEL STRATEGY (DIR)" when the report named the model, else
 * the path; drawable text, each part cut at a character boundary. */
static tl_status make_label(tl_rundata *r, const char *path, int is_dir, tl_err *err)
{
	if (!r->model[0] && r->epoch_shift) {
		char *p = tl_plot_text(path, 120);
		r->label = p ? fmt("%s (Keras epochs + 1)", p) : NULL;
		free(p);
	} else if (!r->model[0]) {
		r->label = tl_plot_text(path, 150);
	} else {
		char *m = tl_plot_text(r->model, 32), *s = tl_plot_text(r->strategy, 32);
		char *d = tl_plot_text(is_dir ? path : r->dir, 90);
		if (m && s && d)
			r->label = fmt("%s %s (%s)", m, s, d);
		free(m), free(s), free(d);
	}
	return r->label ? TL_OK : tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
}

/* The optional run file DIR/name: read with fn when present. */
static tl_status read_optional(tl_rundata *r, const char *dir, const char *name,
			       tl_status (*fn)(tl_rundata *, const char *, tl_err *), tl_err *err)
{
	char *p = fmt("%s/%s", dir, name);
	if (!p)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", dir);
	int have = present(p, err);
	tl_status st = have < 0 ? TL_EIO : have ? fn(r, p, err) : TL_OK;
	free(p);
	return st;
}

tl_status tl_run_load(tl_rundata *r, const char *path, tl_err *err)
{
	memset(r, 0, sizeof *r);
	r->train_seconds = r->test_accuracy = r->macro_f1 = r->latency_ms = r->test_loss = NAN;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
	char *hist;
	tl_status st;
	int is_dir = S_ISDIR(sb.st_mode);
	if (is_dir) {
		r->dir = dup_n(path, strlen(path));
		hist = fmt("%s/history.csv", path);
	} else {
		const char *slash = strrchr(path, '/');
		r->dir = !slash ? dup_n(".", 1) : slash == path ? dup_n("/", 1)
								 : dup_n(path, (size_t)(slash - path));
		hist = dup_n(path, strlen(path));
	}
	r->path = dup_n(path, strlen(path));
	if (!r->dir || !hist || !r->path) {
		free(hist);
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	st = read_history_csv(r, hist, err);
	free(hist);
	if (st != TL_OK)
		goto fail;
	if (is_dir && ((st = read_optional(r, path, "history.json", read_stages, err)) != TL_OK ||
		       (st = read_optional(r, path, "report.json", read_report, err)) != TL_OK ||
		       (st = read_optional(r, path, "confusion.csv", read_confusion, err)) != TL_OK))
		goto fail;
	if ((st = default_strings(r, err)) != TL_OK || (st = sort_dedupe(r, err)) != TL_OK)
		goto fail;
	/* Keras' CSVLogger counts epochs from 0, tltrain from 1 (and writes
	 * stages and a report): a 0 first with neither is Keras' */
	int staged = 0;
	for (int i = 0; i < r->n; i++)
		staged |= r->stage[i] >= 0;
	if (r->n && r->epoch[0] == 0 && !staged && !r->has_report) {
		for (int i = 0; i < r->n; i++)
			r->epoch[i]++;
		r->epoch_shift = 1;
	}
	/* the unfreeze point from the stages when the report does not say */
	if (!r->unfreeze_epoch)
		for (int i = 1; i < r->n; i++)
			if (r->stage[i] > 0 && r->stage[i - 1] == 0) {
				r->unfreeze_epoch = r->epoch[i];
				break;
			}
	/* the best epoch from the history when no report says (interrupted) */
	if (!r->best_epoch) {
		int by_loss = strcmp(r->monitor, "val_loss") == 0;
		double best = NAN;
		for (int i = 0; i < r->n; i++) {
			double v = by_loss ? r->val_loss[i] : r->val_acc[i];
			if (isfinite(v) && (isnan(best) || (by_loss ? v < best : v > best)))
				best = v, r->best_epoch = r->epoch[i];
		}
	}
	if ((st = make_label(r, path, is_dir, err)) != TL_OK)
		goto fail;
	return TL_OK;
fail:
	tl_run_free(r);
	return st;
}

void tl_run_free(tl_rundata *r)
{
	free(r->epoch), free(r->stage), free(r->acc), free(r->loss);
	free(r->val_acc), free(r->val_loss), free(r->lr);
	for (int i = 0; r->names && i < r->k; i++)
		free(r->names[i]);
	free(r->cm), free(r->names);
	free(r->dir), free(r->path), free(r->label), free(r->model), free(r->strategy), free(r->unit);
	free(r->monitor), free(r->validation), free(r->device);
	memset(r, 0, sizeof *r);
}

/* ---- writing ---- */

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* A positive count as a JSON integer; 0 (unknown) or one past INT64_MAX
 * as null. */
static json_t *count_or_null(uint64_t v)
{
	return v && v <= INT64_MAX ? json_integer((json_int_t)v) : json_null();
}

tl_status tl_run_write_report(const char *dir, const tl_run_summary *s, tl_err *err)
{
	json_t *o = json_object();
	int k = s->has_test ? s->k : 0;
	json_object_set_new(o, "producer", json_string("tltrain"));
	json_object_set_new(o, "model", json_string(s->model ? s->model : ""));
	json_object_set_new(o, "strategy", json_string(s->strategy ? s->strategy : ""));
	json_object_set_new(o, "unfreeze_unit", s->unit ? json_string(s->unit) : json_null());
	json_object_set_new(o, "unfreeze_epoch", s->unfreeze_epoch > 0 ? json_integer(s->unfreeze_epoch) : json_null());
	json_object_set_new(o, "input_size", json_string(s->input_size ? s->input_size : ""));
	json_object_set_new(o, "normalization", json_string(s->normalization ? s->normalization : ""));
	json_object_set_new(o, "shard", json_string(s->shard ? s->shard : ""));
	json_object_set_new(o, "epochs_run", json_integer(s->epochs_run));
	json_object_set_new(o, "best_epoch", s->best_epoch > 0 ? json_integer(s->best_epoch) : json_null());
	json_object_set_new(o, "monitor", json_string(s->monitor ? s->monitor : "val_accuracy"));
	json_object_set_new(o, "validation", s->validation ? json_string(s->validation) : json_null());
	json_object_set_new(o, "best_metric", num(s->best_metric));
	json_object_set_new(o, "stopped_early", json_boolean(s->stopped_early));
	json_object_set_new(o, "interrupted", json_boolean(s->interrupted));
	json_object_set_new(o, "train_seconds", num(s->train_seconds));
	json_object_set_new(o, "epoch_seconds", num(s->epoch_seconds));
	json_object_set_new(o, "prefix_cache_seconds", num(s->prefix_cache_seconds));
	json_object_set_new(o, "wall_seconds", s->wall_seconds > 0 ? num(s->wall_seconds) : json_null());
	json_object_set_new(o, "params_total", count_or_null(s->params_total));
	json_object_set_new(o, "params_trainable", s->params_total ? json_integer((json_int_t)s->params_trainable) : json_null());
	json_object_set_new(o, "peak_memory_mib", s->peak_memory_mib > 0 ? num(s->peak_memory_mib) : json_null());
	json_object_set_new(o, "model_bytes", count_or_null(s->model_bytes));
	json_object_set_new(o, "device", s->device ? json_string(s->device) : json_null());
	if (s->has_test) {
		json_t *t = json_object();
		uint64_t n = 0;
		for (size_t i = 0; i < (size_t)k * k; i++)
			if (tl_add_ovf(n, s->cm[i], &n) || n > INT64_MAX) {
				json_decref(t);
				json_decref(o);
				return tl_seterr(err, TL_EUSAGE, "%s/report.json: confusion counts too large (expected a total of at most %lld)",
						 dir, (long long)INT64_MAX);
			}
		json_object_set_new(t, "images", json_integer((json_int_t)n));
		json_object_set_new(t, "accuracy", num(s->test_accuracy));
		json_object_set_new(t, "loss", num(s->test_loss));
		json_object_set_new(t, "macro_f1", num(s->macro_f1));
		json_object_set_new(t, "latency_ms", num(s->latency_ms));
		json_object_set_new(o, "test", t);
		json_t *pc = json_array(), *cm = json_array();
		for (int c = 0; c < k; c++) {
			uint64_t tp = s->cm[(size_t)c * k + c], row = 0, col = 0;
			json_t *r = json_array();
			for (int j = 0; j < k; j++) {
				row += s->cm[(size_t)c * k + j];
				col += s->cm[(size_t)j * k + c];
				json_array_append_new(r, json_integer((json_int_t)s->cm[(size_t)c * k + j]));
			}
			json_array_append_new(cm, r);
			double p = col ? (double)tp / col : 0, rc = row ? (double)tp / row : 0;
			json_t *e = json_object();
			json_object_set_new(e, "class", json_string(s->names ? s->names[c] : ""));
			json_object_set_new(e, "precision", json_real(p));
			json_object_set_new(e, "recall", json_real(rc));
			json_object_set_new(e, "f1", json_real(p + rc > 0 ? 2 * p * rc / (p + rc) : 0));
			json_object_set_new(e, "support", json_integer((json_int_t)row));
			json_array_append_new(pc, e);
		}
		json_object_set_new(o, "per_class", pc);
		json_object_set_new(o, "confusion", cm);
	}
	char *js = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	json_decref(o);
	if (!js)
		return tl_seterr(err, TL_ENOMEM, "report.json: out of memory");
	char *path = fmt("%s/report.json", dir);
	if (!path) {
		free(js);
		return tl_seterr(err, TL_ENOMEM, "report.json: out of memory");
	}
	size_t jl = strlen(js);
	char *jn = realloc(js, jl + 2);
	if (!jn) {
		free(js);
		free(path);
		return tl_seterr(err, TL_ENOMEM, "report.json: out of memory");
	}
	jn[jl] = '\n', jn[jl + 1] = 0;
	tl_status st = tl_write_file_atomic(path, jn, jl + 1, err);
	free(jn);
	free(path);
	if (st != TL_OK || !s->has_test)
		return st;
	/* confusion.csv */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return tl_seterr(err, TL_ENOMEM, "confusion.csv: out of memory");
	fputs("true\\predicted,", m);
	for (int c = 0; c < k; c++) /* names may hold commas: quoted */
		csv_field(m, s->names ? s->names[c] : "", c == k - 1);
	for (int c = 0; c < k; c++) {
		csv_field(m, s->names ? s->names[c] : "", 0);
		for (int j = 0; j < k; j++)
			fprintf(m, "%s%llu", j ? "," : "", (unsigned long long)s->cm[(size_t)c * k + j]);
		fputc('\n', m);
	}
	fclose(m);
	if (!(path = fmt("%s/confusion.csv", dir))) {
		free(buf);
		return tl_seterr(err, TL_ENOMEM, "confusion.csv: out of memory");
	}
	st = tl_write_file_atomic(path, buf, len, err);
	free(buf);
	free(path);
	return st;
}

tl_status tl_run_mkdirs(const char *path, tl_err *err)
{
	char *p = dup_n(path, strlen(path));
	if (!p)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	tl_status st = TL_OK;
	size_t n = strlen(p);
	/* each prefix that ends a component, then the whole path */
	for (size_t i = 1; i <= n && st == TL_OK; i++) {
		if (i < n && (p[i] != '/' || p[i - 1] == '/'))
			continue;
		char keep = p[i];
		p[i] = 0;
		struct stat sb;
		if (mkdir(p, 0777) != 0) {
			int e = errno;
			if (stat(p, &sb) != 0)
				st = tl_seterr(err, TL_EIO, "%s: cannot create directory %s: %s", path, p,
					       strerror(e));
			else if (!S_ISDIR(sb.st_mode))
				st = tl_seterr(err, TL_EIO, "%s: cannot create directory: %s exists and is not a directory",
					       path, p);
		}
		p[i] = keep;
	}
	free(p);
	return st;
}

/* ---- pictures ---- */

/* The x axis title: says when Keras' 0-based epochs were shifted. */
static const char *epoch_label(const tl_rundata *r)
{
	return r->epoch_shift ? "epoch (Keras CSVLogger's 0-based epoch + 1)" : "epoch";
}

/* The history picture (see tl_run_plot) at path, into batch (NULL: at
 * once). */
static tl_status plot_history(const tl_rundata *r, const char *path, tl_plot_batch *batch,
			      tl_err *err)
{
	double *x = malloc(sizeof(double) * (size_t)(r->n ? r->n : 1));
	char *unit = tl_plot_text(r->unit, 40), *dir = tl_plot_text(r->dir, 100);
	char *model = tl_plot_text(r->model[0] ? r->model : "training history", 40);
	char *strategy = tl_plot_text(r->strategy, 40), *unf = NULL, *title = NULL;
	tl_status st;
	if (!x || !unit || !dir || !model || !strategy ||
	    !(unf = fmt("unfreeze%s%s", unit[0] ? " " : "", unit)) ||
	    !(title = fmt("%s%s%s%s%s%s", model, strategy[0] ? ", " : "", strategy,
			  dir[0] ? " (" : "", dir, dir[0] ? ")" : ""))) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (int i = 0; i < r->n; i++)
		x[i] = r->epoch[i];
	/* --val test runs validate on the test split: say so where it shows */
	const char *vname = strcmp(r->validation, "test") == 0 ? "test split (--val test)" : "validation";
	tl_plot_series acc[2] = {{"train", x, r->acc, r->n, 0}, {vname, x, r->val_acc, r->n, 1}};
	tl_plot_series loss[2] = {{"train", x, r->loss, r->n, 0}, {vname, x, r->val_loss, r->n, 1}};
	const char *xl = epoch_label(r);
	tl_plot_panel p[2] = {
		{"Accuracy", xl, "accuracy (fraction correct)", acc, 2, 1, 0, 1, 0, {0}, {0}, NULL, 0, 0},
		{"Loss", xl, "loss (cross-entropy, nats)", loss, 2, 1, 0, NAN, 0, {0}, {0}, NULL, 0, 0},
	};
	char best[64];
	if (r->unfreeze_epoch > 0)
		for (int i = 0; i < 2; i++) {
			p[i].n_vlines = 1;
			p[i].vline_x[0] = r->unfreeze_epoch - 0.5;
			p[i].vline_label[0] = unf;
		}
	if (r->best_epoch > 0)
		for (int i = 0; i < r->n; i++)
			if (r->epoch[i] == r->best_epoch) {
				snprintf(best, sizeof best, "best: epoch %d%s", r->best_epoch,
					 r->restored ? " (restored)" : "");
				int on_loss = strcmp(r->monitor, "val_loss") == 0;
				tl_plot_panel *q = &p[on_loss];
				q->mark_label = best;
				q->mark_x = r->epoch[i];
				q->mark_y = on_loss ? r->val_loss[i] : r->val_acc[i];
			}
	st = tl_plot_lines(path, title, p, 2, 1000, 420, batch, err);
out:
	free(x), free(unit), free(dir), free(model), free(strategy), free(unf), free(title);
	return st;
}

/* The confusion heatmap at path, into batch (NULL: at once). */
static tl_status plot_confusion(const tl_rundata *r, const char *path, tl_plot_batch *batch,
				tl_err *err)
{
	if (!r->k)
		return tl_seterr(err, TL_EUSAGE, "%s: no confusion matrix (expected %s/confusion.csv)",
				 r->dir, r->dir);
	const char **names = malloc(sizeof(char *) * (size_t)r->k);
	char *model = tl_plot_text(r->model, 40), *dir = tl_plot_text(r->dir, 100), *title = NULL;
	tl_status st;
	if (!names || !model || !dir ||
	    !(title = fmt("Confusion matrix: %s%s%s", model, model[0] ? " " : "", dir))) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (int i = 0; i < r->k; i++)
		names[i] = r->names[i];
	st = tl_plot_confusion(path, title, r->k, r->cm, names, batch, err);
out:
	free(names), free(model), free(dir), free(title);
	return st;
}

tl_status tl_run_plot_history(const tl_rundata *r, const char *path, tl_err *err)
{
	return plot_history(r, path, NULL, err);
}

tl_status tl_run_plot_confusion(const tl_rundata *r, const char *path, tl_err *err)
{
	return plot_confusion(r, path, NULL, err);
}

/* The comparison picture at path, into batch: validation accuracy and
 * loss, and with train_curves the training ones too. */
static tl_status plot_compare(const tl_rundata *runs, int n, int train_curves, const char *path,
			      tl_plot_batch *batch, tl_err *err)
{
	tl_plot_series *s = calloc((size_t)n * 4, sizeof *s);
	double **x = calloc((size_t)n, sizeof *x);
	tl_status st = TL_OK;
	if (!s || !x) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (!(x[i] = malloc(sizeof(double) * (size_t)(runs[i].n ? runs[i].n : 1)))) {
			st = tl_seterr(err, TL_ENOMEM, "out of memory");
			goto out;
		}
		for (int j = 0; j < runs[i].n; j++)
			x[i][j] = runs[i].epoch[j];
		s[i] = (tl_plot_series){runs[i].label, x[i], runs[i].val_acc, runs[i].n, i};
		s[n + i] = (tl_plot_series){runs[i].label, x[i], runs[i].val_loss, runs[i].n, i};
		s[2 * n + i] = (tl_plot_series){runs[i].label, x[i], runs[i].acc, runs[i].n, i};
		s[3 * n + i] = (tl_plot_series){runs[i].label, x[i], runs[i].loss, runs[i].n, i};
	}
	tl_plot_panel p[4] = {
		{"Validation accuracy", "epoch", "accuracy (fraction correct)", s, n, 1, 0, 1, 0, {0}, {0}, NULL, 0, 0},
		{"Validation loss", "epoch", "loss (cross-entropy, nats)", s + n, n, 1, 0, NAN, 0, {0}, {0}, NULL, 0, 0},
		{"Training accuracy", "epoch", "accuracy (fraction correct)", s + 2 * n, n, 1, 0, 1, 0, {0}, {0}, NULL, 0, 0},
		{"Training loss", "epoch", "loss (cross-entropy, nats)", s + 3 * n, n, 1, 0, NAN, 0, {0}, {0}, NULL, 0, 0},
	};
	char title[96];
	snprintf(title, sizeof title, "%d runs compared%s", n,
		 train_curves ? ": validation and training curves" : "");
	st = tl_plot_lines(path, title, p, train_curves ? 4 : 2, train_curves ? 2000 : 1100,
			   460 + (n > 4 ? (n - 4) * 17 : 0), batch, err);
out:
	for (int i = 0; x && i < n; i++)
		free(x[i]);
	free(x);
	free(s);
	return st;
}

/* ---- the comparative study's table ---- */

/* the study's columns: test loss and the model file's size came last, so
 * earlier readers of summary.csv find their columns where they were */
enum { SUM_COLS = 13 };
static const char *const sum_csv_header[SUM_COLS] = {
	"run", "model", "strategy", "params", "trainable", "train_seconds", "best_epoch",
	"test_accuracy", "macro_f1", "latency_ms", "device", "test_loss", "model_bytes"};
static const char *const sum_pic_header[SUM_COLS] = {
	"run", "model", "strategy", "params", "trainable", "train s (all)", "best epoch",
	"test accuracy", "macro-F1", "latency ms", "device", "test loss", "model MB"};
static const int sum_right[SUM_COLS] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1};

/* Cell j of run r's row as text: for the CSV (csv set: full precision,
 * "" unknown) or the picture (rounded, "-" unknown).  A new string (the
 * run's directory as drawable text in the picture); NULL out of memory. */
static char *sum_cell(const tl_rundata *r, int j, int csv)
{
	const char *none = csv ? "" : "-";
	double v = j == 5 ? r->train_seconds : j == 7 ? r->test_accuracy : j == 8 ? r->macro_f1
		 : j == 9 ? r->latency_ms : j == 11 ? r->test_loss : NAN;
	switch (j) {
	case 0: return csv ? dup_n(r->path, strlen(r->path)) : tl_plot_text(r->path, 60);
	case 1: return tl_plot_text(r->model[0] ? r->model : none, 40);
	case 2: return tl_plot_text(r->strategy[0] ? r->strategy : none, 40);
	case 3: case 4: {
		uint64_t c = j == 3 ? r->params_total : r->params_trainable;
		return r->params_total ? fmt("%llu", (unsigned long long)c) : dup_n(none, strlen(none));
	}
	case 6: return r->best_epoch > 0 ? fmt("%d", r->best_epoch) : dup_n(none, strlen(none));
	case 10: return tl_plot_text(r->device[0] ? r->device : none, 40);
	case 12:
		if (!r->model_bytes)
			return dup_n(none, strlen(none));
		return csv ? fmt("%llu", (unsigned long long)r->model_bytes)
			   : fmt("%.1f", (double)r->model_bytes / (1 << 20));
	default:
		if (!isfinite(v))
			return dup_n(none, strlen(none));
		if (csv)
			return fmt("%.9g", v);
		return fmt(j == 5 ? "%.1f" : j == 9 ? "%.2f" : "%.4f", v);
	}
}

/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or line
 * break or starts or ends in a blank (split_fields trims unquoted ones). */
static void csv_field(FILE *f, const char *s, int last)
{
	size_t l = strlen(s);
	if (strpbrk(s, ",\"\r\n") || (l && strchr(" \t", s[0])) || (l && strchr(" \t", s[l - 1]))) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputc(last ? '\n' : ',', f);
}

/* The summary of n runs: as CSV into batch at csv_path (when not NULL)
 * and as a table picture at each of pic_paths[0..n_pics). */
static tl_status plot_summary(const tl_rundata *runs, int n, const char *csv_path,
			      char *const *pic_paths, int n_pics, tl_plot_batch *batch, tl_err *err)
{
	char **cells = calloc((size_t)n * SUM_COLS, sizeof *cells);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = NULL;
	tl_status st = TL_OK;
	if (!cells || !(m = open_memstream(&buf, &len))) {
		st = tl_seterr(err, TL_ENOMEM, "summary: out of memory");
		goto out;
	}
	for (int j = 0; j < SUM_COLS; j++)
		csv_field(m, sum_csv_header[j], j == SUM_COLS - 1);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < SUM_COLS; j++) {
			char *c = sum_cell(&runs[i], j, 1);
			if (!c) {
				st = tl_seterr(err, TL_ENOMEM, "summary: out of memory");
				goto out;
			}
			csv_field(m, c, j == SUM_COLS - 1);
			free(c);
			if (!(cells[(size_t)i * SUM_COLS + j] = sum_cell(&runs[i], j, 0))) {
				st = tl_seterr(err, TL_ENOMEM, "summary: out of memory");
				goto out;
			}
		}
	if (fclose(m) != 0) {
		m = NULL;
		st = tl_seterr(err, TL_ENOMEM, "summary: out of memory");
		goto out;
	}
	m = NULL;
	if (csv_path && (st = tl_plot_batch_add(batch, csv_path, buf, len, err)) != TL_OK)
		goto out;
	char title[64];
	snprintf(title, sizeof title, "%d runs: the comparative study", n);
	for (int e = 0; e < n_pics && st == TL_OK; e++)
		st = tl_plot_table(pic_paths[e], title, SUM_COLS, sum_pic_header, n,
				   (const char *const *)cells, sum_right, batch, err);
out:
	if (m)
		fclose(m);
	free(buf);
	for (size_t i = 0; cells && i < (size_t)n * SUM_COLS; i++)
		free(cells[i]);
	free(cells);
	return st;
}

/* Render DIR/NAME.EXT for each ext (and, when r has a confusion matrix
 * and name is "history", DIR/confusion.EXT; for "compare", DIR/summary.EXT
 * and DIR/summary.csv) into a batch, then commit them all or none;
 * runs/n: the runs of a comparison (name "compare"). */
static tl_status plot_set(const tl_rundata *runs, int n, const char *name, const char *out_dir,
			  const char *const *exts, int n_exts, int train_curves, int *n_written,
			  tl_err *err)
{
	tl_plot_batch b = TL_PLOT_BATCH_INIT;
	tl_status st = TL_OK;
	int compare = strcmp(name, "compare") == 0, count = 0;
	for (int e = 0; e < n_exts && st == TL_OK; e++) {
		char *path = fmt("%s/%s.%s", out_dir, name, exts[e]);
		if (!path) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", out_dir);
			break;
		}
		st = compare ? plot_compare(runs, n, train_curves, path, &b, err)
			     : plot_history(runs, path, &b, err);
		free(path);
		if (st != TL_OK)
			break;
		count++;
		if (compare) {
			if (!(path = fmt("%s/summary.%s", out_dir, exts[e]))) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", out_dir);
				break;
			}
			st = plot_summary(runs, n, NULL, &path, 1, &b, err);
			free(path);
			count += st == TL_OK;
			continue;
		}
		if (!runs->k)
			continue;
		if (!(path = fmt("%s/confusion.%s", out_dir, exts[e]))) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", out_dir);
			break;
		}
		st = plot_confusion(runs, path, &b, err);
		free(path);
		count += st == TL_OK;
	}
	if (st == TL_OK && compare) {
		char *path = fmt("%s/summary.csv", out_dir);
		st = path ? plot_summary(runs, n, path, NULL, 0, &b, err)
			  : tl_seterr(err, TL_ENOMEM, "%s: out of memory", out_dir);
		free(path);
		count += st == TL_OK;
	}
	if (st == TL_OK)
		st = tl_plot_batch_commit(&b, err);
	else
		tl_plot_batch_abort(&b);
	if (n_written)
		*n_written = st == TL_OK ? count : 0;
	return st;
}

tl_status tl_run_plot_compare(const tl_rundata *runs, int n, const char *out_dir,
			      const char *const *exts, int n_exts, int train_curves,
			      int *n_written, tl_err *err)
{
	return plot_set(runs, n, "compare", out_dir, exts, n_exts, train_curves, n_written, err);
}

tl_status tl_run_plot(const tl_rundata *r, const char *out_dir, const char *const *exts,
		      int n_exts, int *n_written, tl_err *err)
{
	return plot_set(r, 1, "history", out_dir, exts, n_exts, 0, n_written, err);
}

tl_status tl_run_plot_dir(const char *dir, tl_err *err)
{
	tl_rundata r;
	TL_TRY(tl_run_load(&r, dir, err));
	static const char *const exts[] = {"png", "svg"};
	tl_status st = tl_run_plot(&r, dir, exts, 2, NULL, err);
	tl_run_free(&r);
	return st;
}
