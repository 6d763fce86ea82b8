/* predcsv.c - per-image predictions CSV: write, read back strictly,
 * draw the top losses (see predcsv.h). */
#define _GNU_SOURCE /* asprintf */
#include "train/predcsv.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "data/image.h"
#include "infile.h"

/* The shard's name of class c: the one place this file reads the class
 * table. */
static const char *class_name(const tl_shard *sh, int c)
{
	return sh->info.class_names[c];
}

/* The split of file record r and its index within it; 0 if no segment
 * holds r (tl_shard_open checked that every record is in one). */
static int record_place(const tl_shard *sh, uint64_t r, int *split, uint64_t *index)
{
	const tl_shard_info *in = &sh->info;
	for (uint32_t k = 0; k < in->n_segments; k++) {
		const tl_shard_segment *g = &in->segments[k];
		if (r >= g->first && r - g->first < g->count) {
			*split = (int)g->split;
			*index = g->split_first + (r - g->first);
			return 1;
		}
	}
	return 0;
}

const char *tl_predcsv_record_name(const tl_shard *sh, uint64_t r, char *buf, size_t n)
{
	const char *name = tl_shard_record_name(sh, r);
	if (name) {
		snprintf(buf, n, "%s", name);
		return buf;
	}
	/* raw sources (CIFAR) keep no names: the member and the record's
	 * place in it, which is how the source file is read */
	const tl_shard_info *in = &sh->info;
	buf[0] = 0;
	for (uint32_t k = 0; k < in->n_segments; k++) {
		const tl_shard_segment *g = &in->segments[k];
		if (r >= g->first && r - g->first < g->count) {
			snprintf(buf, n, "%.*s:%" PRIu64, (int)sizeof g->member, g->member, r - g->first);
			break;
		}
	}
	return buf;
}

/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or line
 * break; then a comma. */
static void csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n")) {
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
	fputc(',', f);
}

void tl_predcsv_header(FILE *f)
{
	fputs(TL_PREDCSV_HEADER "\n", f);
}

double tl_predcsv_row(FILE *f, const tl_shard *sh, uint64_t r, const float *z, int pred)
{
	int k = (int)sh->info.n_classes, label = tl_shard_label(sh, r, 0);
	/* log-sum-exp in double, shifted by the largest logit so nothing
	 * overflows; the loss is then exact where -log(p) would underflow */
	double m = z[0], sum = 0;
	for (int j = 1; j < k; j++)
		m = fmax(m, z[j]);
	for (int j = 0; j < k; j++)
		sum += exp((double)z[j] - m);
	double lse = m + log(sum), loss = lse - z[label];
	char name[TL_SHARD_RECORD_NAME_MAX + 64];
	int s = 0;
	uint64_t index = 0;
	record_place(sh, r, &s, &index);
	csv_field(f, tl_predcsv_record_name(sh, r, name, sizeof name));
	csv_field(f, class_name(sh, label));
	csv_field(f, class_name(sh, pred));
	fprintf(f, "%.6g,%.6g,%.6g,", exp(z[pred] - lse), exp(-loss), loss);
	csv_field(f, sh->info.splits[s].name);
	fprintf(f, "%" PRIu64 "\n", index);
	return loss;
}

/* ---- reading ---- */

#define PRED_MAX_BYTES ((size_t)1 << 30)

/* The whole file at path, NUL-terminated (opened with tl_fopen_input). */
static tl_status slurp(const char *path, char **out, size_t *len, tl_err *err)
{
	FILE *f = tl_fopen_input(path, err);
	if (!f)
		return TL_EIO;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	tl_status st = TL_OK;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *p = cap > PRED_MAX_BYTES ? NULL : realloc(buf, cap);
			if (!p) {
				st = cap > PRED_MAX_BYTES
					     ? tl_seterr(err, TL_EFORMAT, "%s: too large for a predictions CSV (over 1 GiB)", path)
					     : tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
				break;
			}
			buf = p;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (st == TL_OK && ferror(f))
		st = tl_seterr(err, TL_EIO, "%s: read error: %s", path, strerror(errno));
	fclose(f);
	if (st != TL_OK) {
		free(buf);
		return st;
	}
	buf[n] = 0;
	*out = buf, *len = n;
	return TL_OK;
}

/* The classes sorted by name, for looking a name up. */
typedef struct {
	const char *name;
	int c;
} class_entry;

static int cmp_class(const void *a, const void *b)
{
	return strcmp(((const class_entry *)a)->name, ((const class_entry *)b)->name);
}

/* The class named s in the n sorted entries, or -1. */
static int class_find(const class_entry *by_name, size_t n, const char *s)
{
	class_entry key = {s, 0};
	const class_entry *f = bsearch(&key, by_name, n, sizeof key, cmp_class);
	return f ? f->c : -1;
}

/* A number field: the whole text a finite number in lo..hi. */
static int parse_num(const char *s, double lo, double hi, double *v)
{
	char *end;
	errno = 0;
	*v = strtod(s, &end);
	return !*s || *end || errno == ERANGE || !isfinite(*v) || *v < lo || *v > hi;
}

/* Text of a field for a message: quoted, cut, drawable. */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t k = tl_plot_utf8_clip(buf + 1, n - 2, s, 60);
	buf[0] = '\'', buf[k + 1] = '\'', buf[k + 2] = 0;
	return buf;
}

/* Row i (1-based data row) of c into e, checked against sh; seen marks
 * the records already named. */
static tl_status read_row(const tl_csv *c, size_t i, const char *path, const tl_shard *sh,
			  const char *shard, const class_entry *by_name, uint8_t *seen,
			  tl_predcsv_entry *e, tl_err *err)
{
	const tl_shard_info *in = &sh->info;
	size_t line = tl_csv_line(c, i);
	const char *name = tl_csv_field(c, i, 0), *lab = tl_csv_field(c, i, 1),
		   *pred = tl_csv_field(c, i, 2), *split = tl_csv_field(c, i, 6),
		   *index = tl_csv_field(c, i, 7);
	char b1[256], b2[256];
	int s = tl_shard_split_find(sh, split);
	if (s < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: split: %s has no split %s (the predictions are of another shard?)",
				 path, line, shard, shown(split, b1, sizeof b1));
	char *end;
	errno = 0;
	unsigned long long idx = strtoull(index, &end, 10);
	if (index[0] < '0' || index[0] > '9' || *end || errno == ERANGE)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: index: expected a record number, got %s",
				 path, line, shown(index, b1, sizeof b1));
	if (idx >= in->splits[s].count)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: index: %s split %s has %" PRIu64 " records (expected 0..%" PRIu64 ", got %llu)",
				 path, line, shard, in->splits[s].name, in->splits[s].count,
				 in->splits[s].count - 1, idx);
	uint64_t r = tl_shard_file_record(sh, s, idx);
	if (seen[r / 8] & (1u << (r % 8)))
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: %s/%llu appears twice (expected each image once)",
				 path, line, in->splits[s].name, idx);
	seen[r / 8] |= (uint8_t)(1u << (r % 8));
	char want[TL_SHARD_RECORD_NAME_MAX + 64];
	tl_predcsv_record_name(sh, r, want, sizeof want);
	if (strcmp(name, want) != 0)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: name: %s/%llu of %s is %s, got %s (the predictions are of another shard?)",
				 path, line, in->splits[s].name, idx, shard, shown(want, b1, sizeof b1),
				 shown(name, b2, sizeof b2));
	int label = tl_shard_label(sh, r, 0);
	if (strcmp(lab, class_name(sh, label)) != 0)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: label: %s/%llu of %s is of class %s, got %s (the predictions are of another shard?)",
				 path, line, in->splits[s].name, idx, shard,
				 shown(class_name(sh, label), b1, sizeof b1), shown(lab, b2, sizeof b2));
	int p = class_find(by_name, in->n_classes, pred);
	if (p < 0)
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: predicted: %s has no class %s",
				 path, line, shard, shown(pred, b1, sizeof b1));
	static const char *const cols[] = {"probability", "label_probability", "loss"};
	double v[3];
	for (int j = 0; j < 3; j++) {
		const char *f = tl_csv_field(c, i, 3 + (size_t)j);
		if (parse_num(f, 0, j < 2 ? 1 : INFINITY, &v[j]))
			return tl_seterr(err, TL_EFORMAT, "%s: line %zu: %s: expected a number in %s, got %s",
					 path, line, cols[j], j < 2 ? "0..1" : "0..inf (finite)",
					 shown(f, b1, sizeof b1));
	}
	/* the prediction is the most probable class: its probability is at
	 * least the true class's (both rounded to 6 digits) */
	if (v[0] < v[1] * (1 - 1e-5))
		return tl_seterr(err, TL_EFORMAT, "%s: line %zu: probability %g is below label_probability %g (expected the predicted class to be the most probable)",
				 path, line, v[0], v[1]);
	*e = (tl_predcsv_entry){r, i, label, p, v[0], v[1], v[2]};
	return TL_OK;
}

tl_status tl_predcsv_read(const char *path, const tl_shard *sh, const char *shard,
			  tl_predcsv_entry **out, uint64_t *n, tl_err *err)
{
	*out = NULL, *n = 0;
	char *text;
	size_t len;
	TL_TRY(slurp(path, &text, &len, err));
	tl_csv *c = NULL;
	tl_status st = tl_csv_parse(&c, path, text, len, err);
	free(text);
	if (st != TL_OK)
		return st;
	const tl_shard_info *in = &sh->info;
	class_entry *by_name = malloc(sizeof *by_name * (in->n_classes ? in->n_classes : 1));
	uint8_t *seen = calloc(in->n_records / 8 + 1, 1);
	size_t rows = tl_csv_rows(c);
	tl_predcsv_entry *e = malloc(sizeof *e * (rows ? rows : 1));
	if (!by_name || !seen || !e) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* the header, exactly: another tool's CSV (or tleval's older
	 * index,label,predicted,probability) is told apart at once */
	static const char *const want[] = {"name", "label", "predicted", "probability",
					   "label_probability", "loss", "split", "index"};
	size_t cols = tl_csv_cols(c);
	for (size_t j = 0; j < 8 && st == TL_OK; j++)
		if (cols != 8 || strcmp(tl_csv_field(c, 0, j), want[j]) != 0)
			st = tl_seterr(err, TL_EFORMAT, "%s: line %zu: header: expected " TL_PREDCSV_HEADER
				       " (the CSV of tleval --predictions or tltrain's predictions.csv), got %zu columns starting '%s'",
				       path, tl_csv_line(c, 0), cols, tl_csv_field(c, 0, 0));
	if (st != TL_OK)
		goto out;
	if (rows < 2) {
		st = tl_seterr(err, TL_EFORMAT, "%s: no predictions (expected a row per image after the header)", path);
		goto out;
	}
	for (uint32_t i = 0; i < in->n_classes; i++)
		by_name[i] = (class_entry){class_name(sh, (int)i), (int)i};
	qsort(by_name, in->n_classes, sizeof *by_name, cmp_class);
	for (size_t i = 1; i < rows && st == TL_OK; i++)
		st = read_row(c, i, path, sh, shard, by_name, seen, &e[i - 1], err);
	if (st == TL_OK) {
		*out = e, e = NULL;
		*n = rows - 1;
	}
out:
	free(e);
	free(seen);
	free(by_name);
	tl_csv_free(c);
	return st;
}

/* ---- top losses ---- */

tl_status tl_predcsv_locate(const char *path, const char *shard, char **dir, char **csv,
			    char **shard_out, tl_err *err)
{
	*dir = *csv = *shard_out = NULL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
	int is_dir = S_ISDIR(sb.st_mode);
	const char *slash = strrchr(path, '/');
	int ok = is_dir ? asprintf(dir, "%s", path) >= 0 && asprintf(csv, "%s/predictions.csv", path) >= 0
			: asprintf(dir, "%.*s", !slash ? 1 : slash == path ? 1 : (int)(slash - path),
				   !slash ? "." : path) >= 0 &&
				  asprintf(csv, "%s", path) >= 0;
	if (!ok) {
		free(*dir), free(*csv);
		*dir = *csv = NULL;
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	}
	if (shard) {
		if (!(*shard_out = strdup(shard)))
			goto oom;
		return TL_OK;
	}
	/* the run's own shard, as tltrain recorded it in report.json */
	char *rp;
	if (asprintf(&rp, "%s/report.json", *dir) < 0)
		goto oom;
	tl_err ierr;
	FILE *f = tl_fopen_input(rp, &ierr);
	json_t *j = f ? json_loadf(f, 0, NULL) : NULL;
	if (f)
		fclose(f);
	const char *s = json_string_value(json_object_get(j, "shard"));
	tl_status st = TL_OK;
	if (!s || !s[0])
		st = tl_seterr(err, TL_EUSAGE, "%s: no shard to take the pictures from (expected -d SHARD, or a run's report.json naming its shard beside the CSV: %s)",
			       *csv, !f ? ierr.msg : j ? "it names none" : "it is not valid JSON");
	else if (!(*shard_out = strdup(s)))
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
	json_decref(j);
	free(rp);
	if (st != TL_OK) {
		free(*dir), free(*csv);
		*dir = *csv = NULL;
	}
	return st;
oom:
	free(*dir), free(*csv);
	*dir = *csv = NULL;
	return tl_seterr(err, TL_ENOMEM, "out of memory");
}

/* Highest loss first; equal losses in file order. */
static int cmp_loss(const void *a, const void *b)
{
	const tl_predcsv_entry *x = a, *y = b;
	if (x->loss != y->loss)
		return x->loss < y->loss ? 1 : -1;
	return x->row < y->row ? -1 : x->row > y->row;
}

tl_status tl_predcsv_plot(const char *csv, const char *shard, int top, const char *const *paths,
			  int n_paths, tl_plot_batch *batch, tl_predcsv_plot_result *res,
			  tl_err *err)
{
	memset(res, 0, sizeof *res);
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, shard, err));
	tl_predcsv_entry *e = NULL;
	uint64_t n = 0, wrong = 0;
	tl_status st = tl_predcsv_read(csv, sh, shard, &e, &n, err);
	const tl_shard_info *in = &sh->info;
	size_t plane = (size_t)in->height * in->width;
	uint8_t *rgb = NULL;
	char *text = NULL;
	tl_plot_tile *t = NULL;
	int shown = 0;
	if (st != TL_OK)
		goto out;
	for (uint64_t i = 0; i < n; i++)
		if (e[i].pred != e[i].label)
			e[wrong++] = e[i];
	qsort(e, wrong, sizeof *e, cmp_loss);
	shown = top < 0 ? 0 : wrong < (uint64_t)top ? (int)wrong : top;
	/* four caption lines of at most ~1.1 KiB each per picture */
	enum { LINE = 1200 };
	rgb = malloc(plane * 3 * (shown ? shown : 1));
	text = malloc((size_t)LINE * 4 * (shown ? shown : 1));
	t = calloc(shown ? shown : 1, sizeof *t);
	if (!rgb || !text || !t) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < shown && st == TL_OK; i++) {
		const void *rec;
		if ((st = tl_shard_record(sh, e[i].record, &rec, err)) != TL_OK)
			break;
		uint8_t *px = rgb + plane * 3 * i;
		tl_image_to_rgb8(rec, in->dtype, &in->norm, (int)in->height, (int)in->width, px);
		char *l = text + (size_t)LINE * 4 * i, name[TL_SHARD_RECORD_NAME_MAX + 64];
		char lab[3 * TL_SHARD_NAME_MAX + 4], pred[3 * TL_SHARD_NAME_MAX + 4];
		tl_plot_utf8_clip(l, LINE, tl_predcsv_record_name(sh, e[i].record, name, sizeof name),
				  (size_t)-1);
		for (char *q = l; *q; q++) /* a line break in a file name: one line */
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				*q = '?';
		tl_plot_utf8_clip(lab, sizeof lab, class_name(sh, e[i].label), 64);
		tl_plot_utf8_clip(pred, sizeof pred, class_name(sh, e[i].pred), 64);
		snprintf(l + LINE, LINE, "true: %s", lab);
		snprintf(l + 2 * LINE, LINE, "predicted: %s (%.2f)", pred, e[i].prob);
		snprintf(l + 3 * LINE, LINE, "loss %.2f, p(true) %.3g", e[i].loss, e[i].label_prob);
		t[i] = (tl_plot_tile){px, (int)in->height, (int)in->width,
				      {l, l + LINE, l + 2 * LINE, l + 3 * LINE}};
	}
	char title[160], caption[600], cb[300];
	tl_plot_utf8_clip(cb, sizeof cb, csv, 80);
	if (wrong)
		snprintf(title, sizeof title, "Top losses: the %d most confidently wrong of %" PRIu64 " images", shown, n);
	else
		snprintf(title, sizeof title, "Top losses: no image of the %" PRIu64 " misclassified", n);
	snprintf(caption, sizeof caption, "%s: %" PRIu64 " misclassified; name, true class, predicted class (probability), loss",
		 cb, wrong);
	for (int p = 0; p < n_paths && st == TL_OK; p++)
		st = tl_plot_tiles(paths[p], title, caption, t, shown, batch, err);
	res->rows = n, res->wrong = wrong, res->shown = shown;
out:
	free(t);
	free(text);
	free(rgb);
	free(e);
	tl_shard_close(sh);
	return st;
}
