/* src_archive.c - a .tar, .tar.gz, .tgz or .zip of a class-folder tree
 * as a tl_source (see source.h): the same records, in the same order,
 * with the same names as src_folder.c gives for the extracted tree.
 *
 * Nothing is extracted to disk.  Members are streamed through
 * libarchive (cifar.c's reader: it hashes the file and checks every gzip
 * member's CRC and length), and libarchive streams cannot seek back, so:
 *   pass 1 (open)  reads every header, skipping data: member names and
 *                  declared sizes; the classes, splits and the sorted
 *                  (ImageFolder) order are settled from the names alone;
 *                  the whole file is hashed for the shard's source id.
 *   pass 2..       stream the members again in archive order.  The member
 *                  due next in sorted order is handed out at once; members
 *                  due later are kept in memory while they fit a buffer of
 *                  TL_ARCHIVE_BUFFER bytes (default 256 MiB; when full, the
 *                  one due last is dropped first); what did not fit is read
 *                  by a further pass.  An archive written in sorted order
 *                  needs no buffer; one in any order whose images fit the
 *                  buffer needs one data pass; memory never exceeds the
 *                  buffer plus one member.
 * Root: while every visible member lies under one top folder (not
 * "train") that itself holds folders, that folder is the root
 * (flower_photos.tgz: flower_photos/daisy/...).  Below the root the
 * rules are src_folder.c's: class folders or train/ val|validation/
 * test/ split folders, names starting with '.' (and macOS' __MACOSX)
 * hidden, files without an image extension skipped, both counted.
 * Links, devices and empty folders in the archive are not files and
 * count as nothing.  A member declaring more than ARCHIVE_MAX_MEMBER bytes
 * (or no size) is skipped as unreadable without being read; data is
 * never read past a member's declared size.  A damaged archive (headers,
 * compressed data) is fatal: what follows cannot be trusted. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "data/cifar.h"
#include "data/source.h"
#include "infile.h"

#define ARCHIVE_MAX_MEMBER (256u << 20) /* bytes of one image member */
#define ARCHIVE_BUFFER_DEFAULT (256ull << 20)
#define PROBE_MAX_OTHER 16 /* non-image files the probe looks past */
#define NONE SIZE_MAX

typedef struct {
	char *path; /* the member path, leading "./" and "/" removed */
	uint64_t size;
} member;

typedef struct {
	char *input;
	tl_source_info *info;
	member *m; /* pass 1: regular-file members, in archive order */
	size_t n_m, cap_m;
	char *root; /* "" or "top/" */
	tl_src_entry *e;
	size_t n, cap;
	size_t *ord2e; /* member ordinal -> entry index, or NONE */
	/* delivering */
	size_t next;
	int cur_split;
	uint8_t *cur; /* the record handed out last */
	char *name, *rel;
	char errmsg[sizeof(tl_err)];
	tl_cifar_src *ar; /* the pass under way, or NULL */
	uint64_t ord;     /* members of this pass seen */
	int pass_found;   /* this pass found the record due */
	unsigned passes;
	uint64_t budget, buffered;
	size_t *heap; /* max-heap of buffered entry indices (emitted ones may linger) */
	size_t n_heap, cap_heap;
	atomic_uint_fast64_t consumed;
	uint64_t total;
} archive_state;

static int is_hidden(const char *comp, size_t len)
{
	return (len > 0 && comp[0] == '.') || (len == 8 && memcmp(comp, "__MACOSX", 8) == 0);
}

/* Probe: a regular file libarchive reads as an archive whose first
 * decisive member is an image file (yes) or a CIFAR member (no). */
static int archive_probe(const char *path, const struct stat *sb)
{
	if (!S_ISREG(sb->st_mode))
		return 0;
	tl_err err;
	int fd = tl_open_input(path, NULL, &err);
	if (fd < 0)
		return 0;
	struct archive *a = archive_read_new();
	int yes = 0;
	if (a) {
		archive_read_support_filter_all(a);
		archive_read_support_format_tar(a);
		archive_read_support_format_gnutar(a);
		archive_read_support_format_zip(a);
		if (archive_read_open_fd(a, fd, 1 << 16) == ARCHIVE_OK) {
			struct archive_entry *e;
			int other = 0;
			while (other < PROBE_MAX_OTHER && archive_read_next_header(a, &e) == ARCHIVE_OK) {
				if (archive_entry_filetype(e) != AE_IFREG)
					continue;
				const char *p = archive_entry_pathname(e);
				const char *b = p ? strrchr(p, '/') : NULL;
				b = b ? b + 1 : p ? p : "";
				int batch;
				/* CIFAR binary or python members: not ours */
				if (tl_cifar_classify(b, &batch) != TL_MEMBER_OTHER ||
				    strncmp(b, "data_batch_", 11) == 0 || strcmp(b, "test_batch") == 0 ||
				    strcmp(b, "batches.meta") == 0 || strcmp(b, "meta") == 0)
					break;
				if (b[0] != '.' && tl_src_is_image_name(b)) {
					yes = 1;
					break;
				}
				other++;
			}
		}
		archive_read_free(a);
	}
	close(fd);
	return yes;
}

static void archive_close(void *st)
{
	archive_state *s = st;
	if (!s)
		return;
	for (size_t i = 0; s->m && i < s->n_m; i++)
		free(s->m[i].path);
	free(s->m);
	tl_src_entries_free(s->e, s->n);
	free(s->ord2e);
	free(s->root);
	free(s->cur);
	free(s->name);
	free(s->rel);
	free(s->heap);
	tl_cifar_close(s->ar);
	free(s->input);
	free(s);
}

/* Dataset and output names from the archive's name without its
 * extension: "flower_photos.tgz" -> "flower_photos", "flower_photos.tls". */
static void name_dataset(archive_state *s)
{
	static const char *const ext[] = {".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz",
					  ".tbz2", ".txz", ".tar", ".zip"};
	const char *b = strrchr(s->input, '/');
	b = b ? b + 1 : s->input;
	size_t len = strlen(b);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t k = strlen(ext[i]);
		if (len > k && strcasecmp(b + len - k, ext[i]) == 0) {
			len -= k;
			break;
		}
	}
	if (len >= sizeof s->info->dataset)
		len = sizeof s->info->dataset - 1;
	memcpy(s->info->dataset, b, len);
	s->info->dataset[len] = 0;
	if (!len)
		snprintf(s->info->dataset, sizeof s->info->dataset, "images");
	snprintf(s->info->output, sizeof s->info->output, "%s.tls", s->info->dataset);
}

/* Pass 1: every regular-file member's path and declared size; the
 * file's size and hash. */
static tl_status read_members(archive_state *s, tl_err *err)
{
	tl_cifar_src *a;
	TL_TRY(tl_cifar_open(&a, s->input, err));
	tl_status st = TL_OK;
	for (;;) {
		tl_cifar_member cm;
		int done;
		if ((st = tl_cifar_next(a, &cm, &done, err)) != TL_OK || done)
			break;
		size_t len = strlen(cm.path);
		if (len >= sizeof cm.path - 1) {
			st = tl_seterr(err, TL_EFORMAT, "%s: %.60s...: member name too long (expected at most %zu bytes)",
				       s->input, cm.path, sizeof cm.path - 2);
			break;
		}
		const char *p = cm.path;
		for (;;) { /* "./a", "/a", ".//a" -> "a" */
			if (p[0] == '/')
				p++;
			else if (p[0] == '.' && p[1] == '/')
				p += 2;
			else
				break;
		}
		if (s->n_m == s->cap_m) {
			size_t cap = s->cap_m ? 2 * s->cap_m : 1024;
			member *v = realloc(s->m, cap * sizeof *v);
			if (!v) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory for the member list", s->input);
				break;
			}
			s->m = v, s->cap_m = cap;
		}
		if (!(s->m[s->n_m].path = strdup(p))) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory for the member list", s->input);
			break;
		}
		s->m[s->n_m++].size = cm.size;
	}
	if (st == TL_OK)
		st = tl_cifar_finish(a, &s->info->source_size, &s->info->source_hash, err);
	tl_cifar_close(a);
	return st;
}

/* The first path component of p: its length, and whether more follow. */
static size_t comp_len(const char *p)
{
	const char *q = strchr(p, '/');
	return q ? (size_t)(q - p) : strlen(p);
}

/* Is any component of p hidden?  *hidden_prefix gets the length of p up
 * to and including the first hidden component. */
static int has_hidden(const char *p, size_t *hidden_prefix)
{
	const char *c = p;
	for (;;) {
		size_t k = comp_len(c);
		if (is_hidden(c, k)) {
			*hidden_prefix = (size_t)(c - p) + k;
			return 1;
		}
		if (!c[k])
			return 0;
		c += k + 1;
	}
}

static size_t n_comps(const char *p)
{
	size_t n = 1;
	for (; *p; p++)
		n += *p == '/' && p[1];
	return n;
}

/* The root: descend while every visible member lies under one top folder
 * (not "train") that holds folders. */
static tl_status find_root(archive_state *s, tl_err *err)
{
	size_t rl = 0; /* root length in the member paths */
	const char *first = NULL;
	for (;;) {
		const char *top = NULL;
		size_t tl = 0;
		int one = 1, deeper = 0, any = 0;
		for (size_t i = 0; i < s->n_m && one; i++) {
			const char *p = s->m[i].path;
			size_t h;
			if (strncmp(p, first ? first : "", rl) != 0 || has_hidden(p + rl, &h))
				continue;
			const char *r = p + rl;
			size_t k = comp_len(r);
			if (!r[k]) {
				one = 0; /* a file at this level */
				break;
			}
			if (!any)
				top = r, tl = k, any = 1;
			else if (k != tl || memcmp(r, top, k) != 0)
				one = 0;
			deeper |= n_comps(r) >= 3;
		}
		if (!any || !one || !deeper || (tl == 5 && memcmp(top, "train", 5) == 0))
			break;
		if (!first)
			first = top;
		rl += tl + 1;
	}
	s->root = strndup(first ? first : "", rl);
	if (!s->root)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
	return TL_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int split_of(const char *c, size_t k)
{
	if (k == 5 && memcmp(c, "train", 5) == 0)
		return TL_SRC_TRAIN;
	if (k == 4 && memcmp(c, "test", 4) == 0)
		return TL_SRC_TEST;
	if ((k == 3 && memcmp(c, "val", 3) == 0) || (k == 10 && memcmp(c, "validation", 10) == 0))
		return TL_SRC_VAL;
	return -1;
}

/* Where member i goes: its split, the start and length of its class
 * folder's name within rel, or a file beside the class folders (cls_len
 * 0).  Returns -1 for a folder beside the split folders. */
static int place(const char *rel, int split_mode, int *split, size_t *cls_off, size_t *cls_len)
{
	size_t k = comp_len(rel);
	*cls_len = 0, *cls_off = 0, *split = TL_SRC_TRAIN;
	if (!split_mode) {
		if (rel[k])
			*cls_len = k;
		return 0;
	}
	if (!rel[k])
		return 0; /* a file beside the split folders */
	int sp = split_of(rel, k);
	if (sp < 0)
		return -1;
	*split = sp;
	const char *c = rel + k + 1;
	size_t k2 = comp_len(c);
	if (c[k2]) {
		*cls_off = k + 1;
		*cls_len = k2;
	}
	return 0;
}

static tl_status add_entry(archive_state *s, const char *rel, size_t ord, int cls, int split,
			   tl_err *err)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		tl_src_entry *v = realloc(s->e, cap * sizeof *v);
		if (!v)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory for the file list", s->input);
		s->e = v, s->cap = cap;
	}
	tl_src_entry *e = &s->e[s->n];
	memset(e, 0, sizeof *e);
	const char *slash = strrchr(rel, '/');
	e->dir = strndup(rel, (size_t)(slash - rel));
	e->name = strdup(slash + 1);
	if (!e->dir || !e->name) {
		free(e->dir);
		free(e->name);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for the file list", s->input);
	}
	e->size = s->m[ord].size;
	e->ord = ord;
	e->cls = (uint16_t)cls;
	e->split = (uint8_t)split;
	s->n++;
	s->total += e->size;
	return TL_OK;
}

/* Classes, splits and entries from the member names (the rules of
 * src_folder.c, on paths). */
static tl_status build(archive_state *s, const tl_source_opts *o, tl_err *err)
{
	tl_source_info *in = s->info;
	size_t rl = strlen(s->root);
	tl_status st = TL_OK;
	char **hidden = malloc((s->n_m ? s->n_m : 1) * sizeof *hidden);
	char **names = malloc((s->n_m ? s->n_m : 1) * sizeof *names);
	size_t n_hidden = 0, n_names = 0, hidden_owned = 0, names_owned = 0;
	/* per split and class (at most TL_SHARD_MAX_CLASSES: under 1 MiB in all) */
	uint32_t(*found)[TL_SHARD_MAX_CLASSES] = calloc(TL_SRC_N_SPLITS, sizeof *found);
	uint8_t(*seen)[TL_SHARD_MAX_CLASSES] = calloc(TL_SRC_N_SPLITS, sizeof *seen);
	if (!hidden || !names || !found || !seen) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
		goto done;
	}
	/* split folders? */
	int split_mode = 0, have_val = 0, have_validation = 0;
	for (size_t i = 0; i < s->n_m; i++) {
		const char *p = s->m[i].path;
		size_t h;
		if (strncmp(p, s->root, rl) != 0 || has_hidden(p + rl, &h))
			continue;
		const char *r = p + rl;
		size_t k = comp_len(r);
		if (r[k] && k == 5 && memcmp(r, "train", 5) == 0)
			split_mode = 1;
		if (r[k] && k == 3 && memcmp(r, "val", 3) == 0)
			have_val = 1;
		if (r[k] && k == 10 && memcmp(r, "validation", 10) == 0)
			have_validation = 1;
	}
	if (split_mode && have_val && have_validation) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: both %sval/ and %svalidation/ (expected one validation folder)",
			       s->input, s->root, s->root);
		goto done;
	}
	/* pass a: hidden members, the classes (train's class folders) */
	for (size_t i = 0; i < s->n_m && st == TL_OK; i++) {
		const char *p = s->m[i].path;
		size_t h;
		int under = strncmp(p, s->root, rl) == 0;
		if (has_hidden(under ? p + rl : p, &h)) {
			hidden[n_hidden++] = (char *)p; /* counted once per hidden name */
			continue;
		}
		if (!under)
			continue; /* cannot happen: the root holds every visible member */
		const char *r = p + rl;
		int sp;
		size_t co, cl;
		if (place(r, split_mode, &sp, &co, &cl) < 0) {
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: %s%.*s: unexpected folder beside train/ (expected train, val or validation, test)",
				       s->input, s->root, (int)comp_len(r), r);
			break;
		}
		if (cl && sp == TL_SRC_TRAIN)
			names[n_names++] = (char *)r + co; /* compared up to its '/' below */
	}
	if (st != TL_OK)
		goto done;
	/* hidden: count distinct hidden names (a hidden folder counts once) */
	{
		for (size_t i = 0; i < n_hidden; i++) {
			const char *p = hidden[i];
			int under = strncmp(p, s->root, rl) == 0;
			size_t h = 0;
			has_hidden(under ? p + rl : p, &h);
			if (!(hidden[i] = strndup(p, (under ? rl : 0) + h))) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
				goto done;
			}
			hidden_owned++;
		}
		qsort(hidden, n_hidden, sizeof *hidden, cmp_str);
		for (size_t i = 0; i < n_hidden; i++)
			in->skipped_hidden += i == 0 || strcmp(hidden[i], hidden[i - 1]) != 0;
	}
	/* classes: sorted distinct names (each runs to its '/') */
	for (size_t i = 0; i < n_names; i++) {
		size_t k = comp_len(names[i]);
		if (!(names[i] = strndup(names[i], k))) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
			goto done;
		}
		names_owned++;
	}
	qsort(names, n_names, sizeof *names, cmp_str);
	for (size_t i = 0; i < n_names && st == TL_OK; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		char *where;
		if (asprintf(&where, "%s: %s%s%s", s->input, s->root, split_mode ? "train/" : "",
			     names[i]) < 0)
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
		else {
			st = tl_src_add_class(in, names[i], where, err);
			free(where);
		}
	}
	if (st != TL_OK)
		goto done;
	if (in->n_classes == 0) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: no class folders (expected one folder per class, e.g. %s%scat/1.jpg, or a top folder holding them)",
			       s->input, s->root, split_mode ? "train/" : "");
		goto done;
	}
	/* pass b: entries; classes of other splits must be train's */
	int have_test = 0;
	for (size_t i = 0; i < s->n_m && st == TL_OK; i++) {
		const char *p = s->m[i].path;
		size_t h;
		if (strncmp(p, s->root, rl) != 0 || has_hidden(p + rl, &h))
			continue;
		const char *r = p + rl;
		int sp;
		size_t co, cl;
		place(r, split_mode, &sp, &co, &cl);
		if (!cl) {
			in->skipped_other++; /* a file beside the class folders */
			continue;
		}
		int cls = -1;
		for (uint32_t c = 0; c < in->n_classes && cls < 0; c++)
			if (strlen(in->class_names[c]) == cl && memcmp(in->class_names[c], r + co, cl) == 0)
				cls = (int)c;
		if (cls < 0) {
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: %s%.*s: class folder not in train/ (expected one of train's %u classes)",
				       s->input, s->root, (int)(co + cl), r, in->n_classes);
			break;
		}
		seen[sp][cls] = 1;
		have_test |= sp == TL_SRC_TEST;
		const char *slash = strrchr(r, '/');
		if (!tl_src_is_image_name(slash + 1)) {
			in->skipped_other++;
			continue;
		}
		found[sp][cls]++;
		st = add_entry(s, r, i, cls, sp, err);
	}
	for (int sp = 0; sp < TL_SRC_N_SPLITS && st == TL_OK; sp++)
		for (uint32_t c = 0; c < in->n_classes && st == TL_OK; c++)
			if ((seen[sp][c] || sp == TL_SRC_TRAIN) && !found[sp][c])
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: %s%s%s%s: empty class folder (expected PNG, JPEG or PPM files: .jpg, .jpeg, .png, .ppm, .pgm)",
					       s->input, s->root,
					       split_mode ? (sp == TL_SRC_VAL ? (have_validation ? "validation" : "val")
									: tl_src_split_names[sp])
							  : "",
					       split_mode ? "/" : "", in->class_names[c]);
	if (st == TL_OK && have_test && o->test_fraction > 0)
		st = tl_seterr(err, TL_EUSAGE,
			       "%s: --test: the source has its own test/ folder (expected no --test)",
			       s->input);
done:
	/* the first *_owned entries are copies, the rest member paths */
	for (size_t i = 0; i < hidden_owned; i++)
		free(hidden[i]);
	for (size_t i = 0; i < names_owned; i++)
		free(names[i]);
	free(hidden);
	free(names);
	free(found);
	free(seen);
	return st;
}

static uint64_t buffer_budget(void)
{
	const char *v = getenv("TL_ARCHIVE_BUFFER");
	if (!v || !*v)
		return ARCHIVE_BUFFER_DEFAULT;
	char *end;
	unsigned long long b = strtoull(v, &end, 10);
	return *end ? ARCHIVE_BUFFER_DEFAULT : (uint64_t)b;
}

static tl_status archive_open(void **out, const char *path, const tl_source_opts *o,
			      tl_source_info *info, tl_err *err)
{
	*out = NULL;
	archive_state *s = calloc(1, sizeof *s);
	if (!s || !(s->input = strdup(path))) {
		free(s);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	s->info = info;
	s->cur_split = -1;
	s->budget = buffer_budget();
	info->encoded = 1;
	info->n_label_fields = 1;
	name_dataset(s);
	tl_status st = read_members(s, err);
	if (st == TL_OK)
		st = find_root(s, err);
	if (st == TL_OK)
		st = build(s, o, err);
	if (st == TL_OK && s->n > 1) {
		qsort(s->e, s->n, sizeof *s->e, tl_src_entry_cmp);
		for (size_t i = 1; i < s->n && st == TL_OK; i++)
			if (s->e[i].split == s->e[i - 1].split && strcmp(s->e[i].dir, s->e[i - 1].dir) == 0 &&
			    strcmp(s->e[i].name, s->e[i - 1].name) == 0)
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: %s%s/%s: member appears twice (expected each path once)",
					       path, s->root, s->e[i].dir, s->e[i].name);
	}
	if (st == TL_OK && o->test_fraction > 0) {
		if (tl_src_hold_out(s->e, s->n, o->test_fraction, o->seed))
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory for --test", path);
		else
			qsort(s->e, s->n, sizeof *s->e, tl_src_entry_cmp);
	}
	if (st == TL_OK && !(s->ord2e = malloc((s->n_m ? s->n_m : 1) * sizeof *s->ord2e)))
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	if (st == TL_OK) {
		for (size_t i = 0; i < s->n_m; i++)
			s->ord2e[i] = NONE;
		for (size_t i = 0; i < s->n; i++)
			s->ord2e[s->e[i].ord] = i;
		/* the names are in the entries now */
		for (size_t i = 0; i < s->n_m; i++)
			free(s->m[i].path);
		free(s->m);
		s->m = NULL;
		s->cap_m = 0; /* n_m stays: the member count of every pass */
	}
	if (st != TL_OK) {
		archive_close(s);
		return st;
	}
	*out = s;
	return TL_OK;
}

/* ---- the max-heap of buffered entries ---- */

static int heap_push(archive_state *s, size_t idx)
{
	if (s->n_heap == s->cap_heap) {
		size_t cap = s->cap_heap ? 2 * s->cap_heap : 256;
		size_t *v = realloc(s->heap, cap * sizeof *v);
		if (!v)
			return -1;
		s->heap = v, s->cap_heap = cap;
	}
	size_t i = s->n_heap++;
	while (i > 0 && s->heap[(i - 1) / 2] < idx) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = idx;
	return 0;
}

static size_t heap_pop(archive_state *s)
{
	size_t top = s->heap[0], x = s->heap[--s->n_heap], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_heap)
			break;
		if (c + 1 < s->n_heap && s->heap[c + 1] > s->heap[c])
			c++;
		if (s->heap[c] <= x)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n_heap)
		s->heap[i] = x;
	return top;
}

/* A member whose declared size is not read: none, or over the cap. */
static int unreadable_size(uint64_t size)
{
	return size == 0 || size > ARCHIVE_MAX_MEMBER;
}

/* Read the current member (entry idx) whole into a new buffer. */
static tl_status read_member(archive_state *s, size_t idx, tl_err *err)
{
	tl_src_entry *e = &s->e[idx];
	uint8_t *b = malloc((size_t)e->size);
	if (!b)
		return tl_seterr(err, TL_ENOMEM, "%s: %s%s/%s: out of memory for %llu bytes", s->input,
				 s->root, e->dir, e->name, (unsigned long long)e->size);
	tl_status st = tl_cifar_read(s->ar, b, (size_t)e->size, err);
	if (st != TL_OK) {
		free(b);
		return st;
	}
	e->data = b;
	return TL_OK;
}

/* Stream the archive until entry pos is in memory, keeping later entries
 * met on the way while the buffer allows; a new pass starts at the end. */
static tl_status fetch(archive_state *s, size_t pos, tl_err *err)
{
	for (;;) {
		if (!s->ar) {
			TL_TRY(tl_cifar_open(&s->ar, s->input, err));
			s->ord = 0;
			s->pass_found = 0;
			s->passes++;
		}
		tl_cifar_member cm;
		int done;
		TL_TRY(tl_cifar_next(s->ar, &cm, &done, err));
		if (done || s->ord >= s->n_m) {
			tl_cifar_close(s->ar);
			s->ar = NULL;
			if (!done || !s->pass_found)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: the archive changed while it was read (expected %llu members)",
						 s->input, (unsigned long long)s->n_m);
			continue;
		}
		size_t idx = s->ord2e[s->ord++];
		if (idx == NONE || idx < pos || s->e[idx].data)
			continue;
		tl_src_entry *e = &s->e[idx];
		if (cm.size != e->size)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: %s: the archive changed while it was read (expected %llu bytes, got %llu)",
					 s->input, cm.path, (unsigned long long)e->size,
					 (unsigned long long)cm.size);
		if (idx == pos) {
			s->pass_found = 1;
			return read_member(s, idx, err);
		}
		if (unreadable_size(e->size) || e->size > s->budget)
			continue;
		/* make room by dropping what is due after this one */
		while (s->buffered + e->size > s->budget && s->n_heap && s->heap[0] > idx) {
			size_t v = heap_pop(s);
			if (s->e[v].data) {
				free(s->e[v].data);
				s->e[v].data = NULL;
				s->buffered -= s->e[v].size;
			}
		}
		if (s->buffered + e->size > s->budget)
			continue;
		TL_TRY(read_member(s, idx, err));
		if (heap_push(s, idx)) {
			free(e->data);
			e->data = NULL;
			continue;
		}
		s->buffered += e->size;
	}
}

static tl_status archive_next(void *st, tl_src_event *ev, tl_err *err)
{
	archive_state *s = st;
	memset(ev, 0, sizeof *ev);
	free(s->cur);
	s->cur = NULL;
	if (s->next == s->n) {
		ev->type = TL_SRC_END;
		return TL_OK;
	}
	tl_src_entry *e = &s->e[s->next];
	if (e->split != s->cur_split) {
		s->cur_split = e->split;
		ev->type = TL_SRC_SEGMENT;
		ev->member = tl_src_split_names[e->split];
		ev->split = tl_src_split_names[e->split];
		for (size_t i = s->next; i < s->n && s->e[i].split == e->split; i++)
			ev->expect++;
		return TL_OK;
	}
	free(s->name);
	free(s->rel);
	if (asprintf(&s->name, "%s: %s%s/%s", s->input, s->root, e->dir, e->name) < 0)
		s->name = NULL;
	if (asprintf(&s->rel, "%s/%s", e->dir, e->name) < 0)
		s->rel = NULL;
	if (!s->name || !s->rel)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->input);
	ev->type = TL_SRC_RECORD;
	ev->name = s->name;
	ev->rel = s->rel;
	ev->label[0] = e->cls;
	if (unreadable_size(e->size)) {
		if (e->size)
			snprintf(s->errmsg, sizeof s->errmsg,
				 "%s: member too large (expected at most %u bytes, got %llu)", s->name,
				 ARCHIVE_MAX_MEMBER, (unsigned long long)e->size);
		else
			snprintf(s->errmsg, sizeof s->errmsg,
				 "%s: empty file, or no size in the archive (expected an image)", s->name);
		ev->error = s->errmsg;
	} else {
		if (!e->data)
			TL_TRY(fetch(s, s->next, err));
		else
			s->buffered -= e->size;
		s->cur = e->data;
		e->data = NULL;
		ev->data = s->cur;
		ev->size = (size_t)e->size;
	}
	atomic_fetch_add(&s->consumed, e->size);
	s->next++;
	if (s->n_heap && s->buffered == 0)
		s->n_heap = 0; /* only handed-out entries were left in it */
	return TL_OK;
}

static tl_status archive_finish(void *st, tl_err *err)
{
	(void)st;
	(void)err;
	return TL_OK; /* size and hash were taken in pass 1 */
}

static uint64_t archive_consumed(void *st)
{
	return atomic_load(&((archive_state *)st)->consumed);
}

static uint64_t archive_total(void *st)
{
	return ((archive_state *)st)->total;
}

const tl_source tl_source_archive = {
	.name = "archive",
	.probe = archive_probe,
	.open = archive_open,
	.next = archive_next,
	.finish = archive_finish,
	.consumed = archive_consumed,
	.total = archive_total,
	.close = archive_close,
};
