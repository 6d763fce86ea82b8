/* src_csv.c - a CSV list of images as a tl_source (see source.h): tlpack
 * --labels LIST.csv [DIR], as fastai's ImageDataLoaders.from_csv reads and
 * Kaggle sets ship them.  Chosen by the option, never probed (source.c).
 *
 * The list is UTF-8 text read by csv.c (RFC 4180: quoted fields, CRLF, a
 * byte-order mark) and has a header row.  Its columns are found by the
 * header's names, compared without case or surrounding spaces:
 *   path      path file filename file_name fname filepath file_path
 *             image image_path image_name img
 *   label     label class category target class_name
 *   split     split: train | val, valid, validation | test (any case)
 *   is_valid  fastai's: true or 1 -> val, false or 0 -> train
 * A path or label column not named so is the first column not otherwise
 * taken (so "id,breed" is path, label); other columns are ignored.  Rows
 * without a split are train.
 *
 * Paths are relative to DIR, else to the list's own folder; an absolute
 * path, or one whose ".." climbs out of that folder, is refused: the
 * record names kept in the shard are these paths, and a list shipped with
 * a data set should not reach files outside it.  Classes are the sorted
 * distinct labels (strcmp: byte order, ImageFolder's); each must have
 * images in the train split (val and test may lack some, as split
 * folders may).  Records are ordered as the folder source orders the
 * same tree: split, class, folder, file name.  A listed file that does
 * not exist or cannot be read is a bad record like an undecodable one:
 * reported with its line, skipped and counted, fatal under --strict; if
 * no listed file exists the list is refused (a wrong DIR).  Everything
 * else wrong with the list (a field count, an empty or spaced label, an
 * unknown split, a path listed twice, a header alone) is an error naming
 * its line, before any image is read. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "data/csv.h"
#include "data/source.h"

#define CSV_MAX_FILE (2u << 30)     /* bytes of one image file (imgio's limit) */
#define CSV_MAX_LIST (256u << 20)   /* bytes of the list itself */

typedef struct {
	char *list; /* the CSV's path, for messages */
	char *root; /* the folder paths are relative to; "" for the current one */
	tl_source_info *info;
	tl_csv *csv;
	size_t col_path;
	uint64_t list_size, list_hash;
	tl_src_entry *e; /* one per row; ord: the row in csv */
	size_t n;
	/* delivering: entries sorted by split, class, dir, name */
	size_t next;
	int cur_split; /* -1 before the first segment */
	uint8_t *buf;
	size_t buf_cap;
	char *path; /* the current record's file */
	char *name; /* and "LIST: line L: file", for messages */
	char errmsg[2 * sizeof(tl_err)]; /* "LIST: line L: " + a tl_err message */
	atomic_uint_fast64_t consumed; /* read by the packer's thread for progress */
	uint64_t total;
} csv_state;

/* SIZE_MAX if t[0, n) is UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF), else the offset of the first bad byte. */
static size_t utf8_bad(const uint8_t *t, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = t[i];
		size_t k;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (n - i <= k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((t[i + j] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (t[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += k + 1;
	}
	return SIZE_MAX;
}

/* 1 if header cell h names one of names (no case, spaces around ignored). */
static int header_is(const char *h, const char *const *names)
{
	while (*h == ' ' || *h == '\t')
		h++;
	size_t len = strlen(h);
	while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
		len--;
	for (; *names; names++)
		if (strlen(*names) == len && strncasecmp(h, *names, len) == 0)
			return 1;
	return 0;
}

static const char *const path_names[] = {"path", "file", "filename", "file_name", "fname",
					 "filepath", "file_path", "image", "image_path",
					 "image_name", "img", NULL};
static const char *const label_names[] = {"label", "class", "category", "target", "class_name",
					  NULL};
static const char *const split_names[] = {"split", NULL};
static const char *const valid_names[] = {"is_valid", NULL};

enum { COL_PATH, COL_LABEL, COL_SPLIT, COL_VALID, N_COLS };

/* The columns of the header row: col[COL_*] (-1: none). */
static tl_status find_columns(const csv_state *s, long col[N_COLS], tl_err *err)
{
	static const char *const *const names[N_COLS] = {path_names, label_names, split_names,
							 valid_names};
	static const char *const what[N_COLS] = {"path", "label", "split", "is_valid"};
	size_t nc = tl_csv_cols(s->csv);
	for (int k = 0; k < N_COLS; k++)
		col[k] = -1;
	for (size_t c = 0; c < nc; c++)
		for (int k = 0; k < N_COLS; k++) {
			if (!header_is(tl_csv_field(s->csv, 0, c), names[k]))
				continue;
			if (col[k] >= 0)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: line %zu: two %s columns ('%s' and '%s'; expected one)",
						 s->list, tl_csv_line(s->csv, 0), what[k],
						 tl_csv_field(s->csv, 0, (size_t)col[k]),
						 tl_csv_field(s->csv, 0, c));
			col[k] = (long)c;
		}
	if (col[COL_SPLIT] >= 0 && col[COL_VALID] >= 0)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: line %zu: both a split and an is_valid column (expected one of them)",
				 s->list, tl_csv_line(s->csv, 0));
	int named = col[COL_PATH] >= 0 || col[COL_LABEL] >= 0;
	/* unnamed path, then label: the first columns left */
	for (int k = COL_PATH; k <= COL_LABEL; k++)
		for (size_t c = 0; c < nc && col[k] < 0; c++) {
			int taken = 0;
			for (int j = 0; j < N_COLS; j++)
				taken |= col[j] == (long)c;
			if (!taken)
				col[k] = (long)c;
		}
	if (col[COL_PATH] < 0 || col[COL_LABEL] < 0)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: line %zu: %zu column%s (expected at least a path and a label column, e.g. path,label)",
				 s->list, tl_csv_line(s->csv, 0), nc, nc == 1 ? "" : "s");
	const char *first = tl_csv_field(s->csv, 0, (size_t)col[COL_PATH]);
	if (!named && tl_src_is_image_name(first))
		return tl_seterr(err, TL_EFORMAT,
				 "%s: line %zu: '%s' looks like an image, not a column name (expected a header row first, e.g. path,label)",
				 s->list, tl_csv_line(s->csv, 0), first);
	return TL_OK;
}

/* NULL if field f of a row (what: "path", "label") is usable, else why
 * not. */
static const char *field_problem(const char *f)
{
	if (!*f)
		return "empty";
	for (const unsigned char *p = (const unsigned char *)f; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "holds a control character (expected none)";
	size_t len = strlen(f);
	if (f[0] == ' ' || f[len - 1] == ' ')
		return "has spaces around it (expected none: a CSV field keeps them)";
	return NULL;
}

/* Split the relative path p into its folder and file name, lexically
 * normalized ("./a//b/../c.jpg" -> "a", "c.jpg"; "c.jpg" -> "", "c.jpg"),
 * both allocated.  NULL on success, else why p is refused (nothing
 * allocated). */
static const char *split_path(const char *p, char **dir, char **name)
{
	*dir = *name = NULL;
	size_t len = strlen(p);
	if (p[0] == '/')
		return "is absolute (expected a path relative to the image folder)";
	const char *last = strrchr(p, '/');
	last = last ? last + 1 : p;
	if (!*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
		return "names a folder (expected a file)";
	char *d = malloc(len + 1);
	if (!d)
		return "out of memory";
	/* the folder part: components pushed onto d, ".." pops one */
	size_t used = 0;
	for (const char *c = p; c < last;) {
		const char *e = strchr(c, '/');
		size_t cl = (size_t)(e - c);
		if (cl == 0 || (cl == 1 && c[0] == '.')) {
			/* empty or ".": nothing */
		} else if (cl == 2 && c[0] == '.' && c[1] == '.') {
			if (used == 0) {
				free(d);
				return "leaves the image folder through '..' (expected a path inside it)";
			}
			while (used && d[used - 1] != '/')
				used--;
			if (used)
				used--; /* the separator */
		} else {
			if (used)
				d[used++] = '/';
			memcpy(d + used, c, cl);
			used += cl;
		}
		c = e + 1;
	}
	d[used] = 0;
	if (!(*name = strdup(last))) {
		free(d);
		return "out of memory";
	}
	*dir = d;
	return NULL;
}

static int split_value(const char *v)
{
	if (strcasecmp(v, "train") == 0)
		return TL_SRC_TRAIN;
	if (strcasecmp(v, "val") == 0 || strcasecmp(v, "valid") == 0 ||
	    strcasecmp(v, "validation") == 0)
		return TL_SRC_VAL;
	if (strcasecmp(v, "test") == 0)
		return TL_SRC_TEST;
	return -1;
}

static int valid_value(const char *v)
{
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		return TL_SRC_VAL;
	if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return TL_SRC_TRAIN;
	return -1;
}

/* "root/dir/name" with empty parts left out; NULL when out of memory. */
static char *join(const char *root, const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s%s%s%s%s", root, *root ? "/" : "", dir, *dir ? "/" : "", name) < 0)
		return NULL;
	return p;
}

/* One entry per row after the header: path checked and split, split read;
 * classes left for assign_classes. */
static tl_status read_rows(csv_state *s, const long col[N_COLS], tl_err *err)
{
	size_t rows = tl_csv_rows(s->csv);
	if (rows < 2)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: only a header row (expected one row per image after it)", s->list);
	if (!(s->e = calloc(rows - 1, sizeof *s->e)))
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for %zu rows", s->list, rows - 1);
	for (size_t r = 1; r < rows; r++) {
		size_t line = tl_csv_line(s->csv, r);
		const char *path = tl_csv_field(s->csv, r, (size_t)col[COL_PATH]);
		const char *label = tl_csv_field(s->csv, r, (size_t)col[COL_LABEL]);
		const char *why;
		if ((why = field_problem(path)))
			return tl_seterr(err, TL_EFORMAT, "%s: line %zu: path '%s' %s", s->list, line,
					 path, why);
		if ((why = field_problem(label)))
			return tl_seterr(err, TL_EFORMAT, "%s: line %zu: label '%s' %s", s->list, line,
					 label, why);
		int split = TL_SRC_TRAIN;
		if (col[COL_SPLIT] >= 0) {
			const char *v = tl_csv_field(s->csv, r, (size_t)col[COL_SPLIT]);
			if ((split = split_value(v)) < 0)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: line %zu: unknown split '%s' (expected train, val, valid, validation or test)",
						 s->list, line, v);
		} else if (col[COL_VALID] >= 0) {
			const char *v = tl_csv_field(s->csv, r, (size_t)col[COL_VALID]);
			if ((split = valid_value(v)) < 0)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: line %zu: is_valid '%s' (expected True, False, 1 or 0)",
						 s->list, line, v);
		}
		tl_src_entry *e = &s->e[s->n];
		if ((why = split_path(path, &e->dir, &e->name)))
			return tl_seterr(err, TL_EFORMAT, "%s: line %zu: path '%s' %s", s->list, line,
					 path, why);
		e->ord = r, e->split = (uint8_t)split;
		s->n++;
	}
	return TL_OK;
}

/* Entries by label (column *ctx of the list), then row. */
typedef struct {
	const tl_csv *csv;
	size_t col;
} label_key;

static int cmp_label(const void *a, const void *b, void *ctx)
{
	const label_key *k = ctx;
	const tl_src_entry *x = *(tl_src_entry *const *)a, *y = *(tl_src_entry *const *)b;
	int c = strcmp(tl_csv_field(k->csv, x->ord, k->col), tl_csv_field(k->csv, y->ord, k->col));
	return c ? c : x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Entries by normalized path, then row. */
static int cmp_path(const void *a, const void *b)
{
	const tl_src_entry *x = *(tl_src_entry *const *)a, *y = *(tl_src_entry *const *)b;
	int c = strcmp(x->dir, y->dir);
	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Classes: the sorted distinct labels, each with train images; then no
 * file listed twice. */
static tl_status assign_classes(csv_state *s, size_t col_label, tl_err *err)
{
	tl_source_info *in = s->info;
	tl_src_entry **v = malloc(s->n * sizeof *v);
	uint64_t *train = NULL;
	if (!v)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->list);
	for (size_t i = 0; i < s->n; i++)
		v[i] = &s->e[i];
	label_key key = {s->csv, col_label};
	qsort_r(v, s->n, sizeof *v, cmp_label, &key);
	tl_status st = TL_OK;
	size_t *first = malloc(s->n * sizeof *first); /* per class: its first row */
	if (!first) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->list);
		goto done;
	}
	for (size_t i = 0; i < s->n && st == TL_OK; i++) {
		const char *l = tl_csv_field(s->csv, v[i]->ord, col_label);
		if (i == 0 || strcmp(l, tl_csv_field(s->csv, v[i - 1]->ord, col_label)) != 0) {
			char where[4200];
			snprintf(where, sizeof where, "%s: line %zu", s->list, tl_csv_line(s->csv, v[i]->ord));
			if ((st = tl_src_add_class(in, l, where, err)) != TL_OK)
				break;
			first[in->n_classes - 1] = v[i]->ord;
		}
		v[i]->cls = (uint16_t)(in->n_classes - 1);
	}
	if (st == TL_OK && !(train = calloc(in->n_classes, sizeof *train)))
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->list);
	for (size_t i = 0; st == TL_OK && i < s->n; i++)
		train[s->e[i].cls] += s->e[i].split == TL_SRC_TRAIN;
	for (uint32_t c = 0; st == TL_OK && c < in->n_classes; c++)
		if (!train[c])
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: line %zu: class '%s' has no images in the train split (expected every class among the train rows; this is its first row)",
				       s->list, tl_csv_line(s->csv, first[c]), in->class_names[c]);
	if (st != TL_OK)
		goto done;
	qsort(v, s->n, sizeof *v, cmp_path);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(v[i - 1]->dir, v[i]->dir) == 0 && strcmp(v[i - 1]->name, v[i]->name) == 0) {
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: line %zu: '%s' listed again (first on line %zu; expected each image once)",
				       s->list, tl_csv_line(s->csv, v[i]->ord),
				       tl_csv_field(s->csv, v[i]->ord, s->col_path),
				       tl_csv_line(s->csv, v[i - 1]->ord));
			break;
		}
done:
	free(first);
	free(train);
	free(v);
	return st;
}

/* Sizes of the listed files, for progress; a list none of whose files
 * exists is refused (the image folder is not where it was looked for). */
static tl_status check_files(csv_state *s, tl_err *err)
{
	size_t found = 0, first_ord = 0;
	const char *why = NULL; /* the first row's whose file is not there */
	for (size_t i = 0; i < s->n; i++) {
		char *p = join(s->root, s->e[i].dir, s->e[i].name);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->list);
		struct stat sb;
		int there = stat(p, &sb) == 0;
		if (there && S_ISREG(sb.st_mode)) {
			found++;
			s->e[i].size = (uint64_t)sb.st_size;
			s->total += s->e[i].size;
		} else if (!why) { /* entries are still in row order */
			why = there ? "not a regular file" : strerror(errno);
			first_ord = s->e[i].ord;
		}
		free(p);
	}
	if (found == 0)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: none of the %zu listed files is there (line %zu: %s/%s: %s; expected paths relative to %s: name the image folder after the list, tlpack --labels LIST DIR)",
				 s->list, s->n, tl_csv_line(s->csv, first_ord), *s->root ? s->root : ".",
				 tl_csv_field(s->csv, first_ord, s->col_path), why,
				 *s->root ? s->root : "the list's folder");
	return TL_OK;
}

static void csv_close(void *st)
{
	csv_state *s = st;
	if (!s)
		return;
	tl_src_entries_free(s->e, s->n);
	tl_csv_free(s->csv);
	free(s->buf);
	free(s->path);
	free(s->name);
	free(s->root);
	free(s->list);
	free(s);
}

/* The list's text: read, hashed, checked to be UTF-8, parsed. */
static tl_status load_list(csv_state *s, tl_err *err)
{
	uint8_t *text = NULL;
	size_t cap = 0, n = 0;
	char msg[sizeof(tl_err)];
	if (tl_src_read_file(s->list, CSV_MAX_LIST, &text, &cap, &n, msg, sizeof msg)) {
		free(text);
		return tl_seterr(err, TL_EIO, "%s", msg);
	}
	s->list_size = n;
	s->list_hash = XXH3_64bits(text, n);
	tl_status st = TL_OK;
	size_t bad = utf8_bad(text, n);
	if (bad != SIZE_MAX) {
		size_t line = 1, col = 1;
		for (size_t i = 0; i < bad; i++)
			line += text[i] == '\n', col = text[i] == '\n' ? 1 : col + 1;
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: line %zu: not UTF-8 (byte 0x%02x at column %zu; expected UTF-8 text: save the list as UTF-8)",
			       s->list, line, text[bad], col);
	} else {
		st = tl_csv_parse(&s->csv, s->list, (const char *)text, n, err);
	}
	free(text);
	return st;
}

static tl_status csv_open(void **out, const char *path, const tl_source_opts *o,
			  tl_source_info *info, tl_err *err)
{
	*out = NULL;
	csv_state *s = calloc(1, sizeof *s);
	if (!s || !(s->list = strdup(path))) {
		free(s);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	s->info = info;
	s->cur_split = -1;
	info->encoded = 1;
	info->n_label_fields = 1;
	tl_status st = TL_OK;
	if (o->root) {
		s->root = strdup(o->root);
	} else {
		const char *slash = strrchr(path, '/');
		s->root = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup("");
	}
	if (!s->root) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto done;
	}
	size_t len = strlen(s->root);
	while (len > 1 && s->root[len - 1] == '/')
		s->root[--len] = 0;
	if (o->root) {
		struct stat sb;
		if (stat(s->root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			st = tl_seterr(err, TL_EIO, "%s: not a folder (expected the folder of the images %s lists)",
				       s->root, path);
			goto done;
		}
	}
	tl_src_name_after_dir(s->info, *s->root ? s->root : ".");
	long col[N_COLS];
	if ((st = load_list(s, err)) != TL_OK || (st = find_columns(s, col, err)) != TL_OK)
		goto done;
	s->col_path = (size_t)col[COL_PATH];
	if ((st = read_rows(s, col, err)) != TL_OK ||
	    (st = assign_classes(s, (size_t)col[COL_LABEL], err)) != TL_OK ||
	    (st = check_files(s, err)) != TL_OK)
		goto done;
	if (o->test_fraction > 0)
		for (size_t i = 0; i < s->n; i++)
			if (s->e[i].split == TL_SRC_TEST) {
				st = tl_seterr(err, TL_EUSAGE,
					       "%s: line %zu: --test: the list has its own test split (expected no --test)",
					       path, tl_csv_line(s->csv, s->e[i].ord));
				goto done;
			}
	qsort(s->e, s->n, sizeof *s->e, tl_src_entry_cmp);
	if (o->test_fraction > 0) {
		if (tl_src_hold_out(s->e, s->n, o->test_fraction, o->seed)) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory for --test", path);
			goto done;
		}
		qsort(s->e, s->n, sizeof *s->e, tl_src_entry_cmp);
	}
done:
	if (st != TL_OK) {
		csv_close(s);
		return st;
	}
	*out = s;
	return TL_OK;
}

static tl_status csv_next(void *st, tl_src_event *ev, tl_err *err)
{
	csv_state *s = st;
	memset(ev, 0, sizeof *ev);
	if (s->next == s->n) {
		ev->type = TL_SRC_END;
		return TL_OK;
	}
	const tl_src_entry *e = &s->e[s->next];
	if (e->split != s->cur_split) {
		s->cur_split = e->split;
		ev->type = TL_SRC_SEGMENT;
		ev->member = tl_src_split_names[e->split];
		ev->split = tl_src_split_names[e->split];
		for (size_t i = s->next; i < s->n && s->e[i].split == e->split; i++)
			ev->expect++;
		return TL_OK;
	}
	size_t line = tl_csv_line(s->csv, e->ord);
	free(s->path);
	free(s->name);
	s->name = NULL;
	if (!(s->path = join(s->root, e->dir, e->name)) ||
	    asprintf(&s->name, "%s: line %zu: %s", s->list, line, s->path) < 0) {
		s->name = NULL;
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->list);
	}
	ev->type = TL_SRC_RECORD;
	ev->name = s->name;
	ev->rel = tl_csv_field(s->csv, e->ord, s->col_path); /* as written */
	ev->label[0] = e->cls;
	char msg[sizeof(tl_err)];
	size_t size;
	if (tl_src_read_file(s->path, CSV_MAX_FILE, &s->buf, &s->buf_cap, &size, msg, sizeof msg)) {
		snprintf(s->errmsg, sizeof s->errmsg, "%s: line %zu: %s", s->list, line, msg);
		ev->error = s->errmsg;
	} else {
		atomic_fetch_add(&s->consumed, size);
		ev->data = s->buf;
		ev->size = size;
	}
	s->next++;
	return TL_OK;
}

static tl_status csv_finish(void *st, tl_err *err)
{
	(void)err;
	csv_state *s = st;
	s->info->source_size = s->list_size;
	s->info->source_hash = s->list_hash;
	return TL_OK;
}

static uint64_t csv_consumed(void *st)
{
	return atomic_load(&((csv_state *)st)->consumed);
}

static uint64_t csv_total(void *st)
{
	return ((csv_state *)st)->total;
}

static int csv_probe(const char *path, const struct stat *sb)
{
	(void)path, (void)sb;
	return 0; /* chosen by tlpack --labels, never by probing */
}

const tl_source tl_source_csv = {
	.name = "csv",
	.probe = csv_probe,
	.open = csv_open,
	.next = csv_next,
	.finish = csv_finish,
	.consumed = csv_consumed,
	.total = csv_total,
	.close = csv_close,
};
