/* src_folder.c - a folder of class subfolders as a tl_source (see
 * source.h), with torchvision ImageFolder's semantics:
 *   DIR/<class>/.../<image>          one split, "train"
 *   DIR/train/<class>/.../<image>    split folders: train (required),
 *   DIR/val|validation/<class>/...   "val" and "test" (optional)
 *   DIR/test/<class>/...
 * Classes are the sorted names of train's subfolders (strcmp: byte
 * order, as Python's sorted()); files are found recursively, following
 * symbolic links (a link back to a folder being walked is skipped);
 * names starting with '.' are hidden and skipped; files whose extension
 * is not .jpg .jpeg .jpe .jfif .png .ppm .pgm .pnm (any case) are not
 * images and skipped; both are counted.  Within a class the order is
 * that of sorted(os.walk(class_dir)): by folder path, then file name.
 * Records are the files' bytes: the packer decodes them (imgio). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "data/source.h"
#include "infile.h"

#define FOLDER_MAX_FILE (2u << 30) /* bytes of one image file (imgio's limit) */
#define FOLDER_MAX_DEPTH 64        /* folders below a class folder */

typedef struct {
	char *root; /* the input without trailing slashes */
	tl_source_info *info;
	tl_src_entry *e;
	size_t n, cap;
	/* walking */
	dev_t anc_dev[FOLDER_MAX_DEPTH + 2];
	ino_t anc_ino[FOLDER_MAX_DEPTH + 2];
	int depth;
	/* delivering: entries sorted by split, class, dir, name */
	size_t next;
	int cur_split; /* -1 before the first segment */
	uint8_t *buf;
	size_t buf_cap;
	char *path; /* the current record's path */
	char *rel;  /* and relative to the root */
	char errmsg[sizeof(tl_err)];
	atomic_uint_fast64_t consumed; /* read by the packer's thread for progress */
	uint64_t total;
} folder_state;

static int folder_probe(const char *path, const struct stat *sb)
{
	(void)path;
	return S_ISDIR(sb->st_mode);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible names in folder path, sorted; hidden ones counted. */
static tl_status list_dir(folder_state *s, const char *path, char ***out, size_t *n,
			  tl_err *err)
{
	*out = NULL, *n = 0;
	DIR *d = opendir(path);
	if (!d)
		return tl_seterr(err, TL_EIO, "%s: cannot list folder: %s", path, strerror(errno));
	struct dirent *de;
	size_t cap = 0;
	char **v = NULL;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.') {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				s->info->skipped_hidden++;
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			char **w = realloc(v, cap * sizeof *w);
			if (!w)
				goto nomem;
			v = w;
		}
		if (!(v[*n] = strdup(de->d_name)))
			goto nomem;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof *v, cmp_str);
	*out = v;
	return TL_OK;
nomem:
	closedir(d);
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	*n = 0;
	return tl_seterr(err, TL_ENOMEM, "%s: out of memory listing the folder", path);
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static tl_status add_entry(folder_state *s, const char *dir, const char *name, uint64_t size,
			   int cls, int split, tl_err *err)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		tl_src_entry *v = realloc(s->e, cap * sizeof *v);
		if (!v)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory for the file list", s->root);
		s->e = v, s->cap = cap;
	}
	tl_src_entry *e = &s->e[s->n];
	e->dir = strdup(dir);
	e->name = strdup(name);
	if (!e->dir || !e->name) {
		free(e->dir);
		free(e->name);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for the file list", s->root);
	}
	e->ord = 0, e->data = NULL;
	e->size = size, e->cls = (uint16_t)cls, e->split = (uint8_t)split;
	s->n++;
	s->total += size;
	return TL_OK;
}

/* Walk folder rel (relative to the root) of class cls, split split:
 * every image file below it becomes an entry.  Returns the images found
 * in *found. */
static tl_status walk(folder_state *s, const char *rel, int cls, int split, size_t *found,
		      tl_err *err)
{
	char *full;
	if (asprintf(&full, "%s/%s", s->root, rel) < 0)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
	struct stat sb;
	if (stat(full, &sb) != 0) {
		tl_status st = tl_seterr(err, TL_EIO, "%s: cannot open folder: %s", full, strerror(errno));
		free(full);
		return st;
	}
	for (int i = 0; i < s->depth; i++)
		if (s->anc_dev[i] == sb.st_dev && s->anc_ino[i] == sb.st_ino) {
			s->info->skipped_other++; /* a link back up: a loop */
			free(full);
			return TL_OK;
		}
	if (s->depth >= FOLDER_MAX_DEPTH + 2) {
		tl_status st = tl_seterr(err, TL_EFORMAT, "%s: folders nested too deep (expected at most %d levels)",
					 full, FOLDER_MAX_DEPTH);
		free(full);
		return st;
	}
	s->anc_dev[s->depth] = sb.st_dev, s->anc_ino[s->depth] = sb.st_ino;
	s->depth++;
	char **names;
	size_t n;
	tl_status st = list_dir(s, full, &names, &n, err);
	for (size_t i = 0; st == TL_OK && i < n; i++) {
		char *p, *r;
		if (asprintf(&p, "%s/%s", full, names[i]) < 0) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
			break;
		}
		struct stat fb;
		if (stat(p, &fb) != 0) {
			s->info->skipped_other++; /* a dangling link */
		} else if (S_ISDIR(fb.st_mode)) {
			if (asprintf(&r, "%s/%s", rel, names[i]) < 0)
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
			else {
				st = walk(s, r, cls, split, found, err);
				free(r);
			}
		} else if (S_ISREG(fb.st_mode) && tl_src_is_image_name(names[i])) {
			st = add_entry(s, rel, names[i], (uint64_t)fb.st_size, cls, split, err);
			(*found)++;
		} else {
			s->info->skipped_other++;
		}
		free(p);
	}
	free_list(names, n);
	s->depth--;
	free(full);
	return st;
}

/* Folder base (relative to the root, "" for the root itself) holds one
 * subfolder per class.  For the train split (or a source without split
 * folders) they define the classes; other splits' classes must be among
 * them.  Files beside the class folders are counted as skipped. */
static tl_status read_split(folder_state *s, const char *base, int split, tl_err *err)
{
	tl_source_info *in = s->info;
	char *full;
	if (asprintf(&full, "%s%s%s", s->root, *base ? "/" : "", base) < 0)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
	/* the root and the split folder are ancestors of every class folder:
	 * a link back to either is a loop */
	struct stat ab;
	s->depth = 0;
	if (stat(s->root, &ab) == 0)
		s->anc_dev[s->depth] = ab.st_dev, s->anc_ino[s->depth++] = ab.st_ino;
	if (*base && stat(full, &ab) == 0)
		s->anc_dev[s->depth] = ab.st_dev, s->anc_ino[s->depth++] = ab.st_ino;
	char **names;
	size_t n;
	tl_status st = list_dir(s, full, &names, &n, err);
	size_t n_dirs = 0, loose = 0;
	for (size_t i = 0; st == TL_OK && i < n; i++) {
		char *p, *rel;
		struct stat sb;
		if (asprintf(&p, "%s/%s", full, names[i]) < 0) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
			break;
		}
		int dir = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
		if (!dir) {
			s->info->skipped_other++;
			loose += tl_src_is_image_name(names[i]);
			free(p);
			continue;
		}
		n_dirs++;
		int cls = -1;
		if (split == TL_SRC_TRAIN) {
			if ((st = tl_src_add_class(in, names[i], p, err)) == TL_OK)
				cls = (int)in->n_classes - 1;
		} else {
			for (uint32_t c = 0; c < in->n_classes && cls < 0; c++)
				if (strcmp(in->class_names[c], names[i]) == 0)
					cls = (int)c;
			if (cls < 0)
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: class folder not in train/ (expected one of train's %u classes)",
					       p, in->n_classes);
		}
		size_t found = 0;
		if (st == TL_OK && asprintf(&rel, "%s%s%s", base, *base ? "/" : "", names[i]) >= 0) {
			st = walk(s, rel, cls, split, &found, err);
			free(rel);
			if (st == TL_OK && found == 0)
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: empty class folder (expected PNG, JPEG or PPM files: .jpg, .jpeg, .png, .ppm, .pgm)",
					       p);
		}
		free(p);
	}
	if (st == TL_OK && n_dirs == 0)
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: no class folders (expected one subfolder per class, e.g. %s/cat/1.jpg%s)",
			       full, full, loose ? "; images directly in it belong to no class" : "");
	free_list(names, n);
	free(full);
	return st;
}

static void folder_close(void *st)
{
	folder_state *s = st;
	if (!s)
		return;
	tl_src_entries_free(s->e, s->n);
	free(s->buf);
	free(s->path);
	free(s->rel);
	free(s->root);
	free(s);
}

static tl_status folder_open(void **out, const char *path, const tl_source_opts *o,
			     tl_source_info *info, tl_err *err)
{
	*out = NULL;
	folder_state *s = calloc(1, sizeof *s);
	if (!s || !(s->root = strdup(path))) {
		free(s);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	size_t len = strlen(s->root);
	while (len > 1 && s->root[len - 1] == '/')
		s->root[--len] = 0;
	s->info = info;
	s->cur_split = -1;
	info->encoded = 1;
	info->n_label_fields = 1;
	tl_src_name_after_dir(s->info, s->root);
	tl_status st = TL_OK;
	char *p;
	struct stat sb;
	if (asprintf(&p, "%s/train", s->root) < 0) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto done;
	}
	int split_mode = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(p);
	if (!split_mode) {
		st = read_split(s, "", TL_SRC_TRAIN, err);
	} else {
		/* train first: it names the classes */
		st = read_split(s, "train", TL_SRC_TRAIN, err);
		char **names = NULL;
		size_t n = 0;
		if (st == TL_OK)
			st = list_dir(s, s->root, &names, &n, err);
		int have_test = 0, have_val = 0;
		for (size_t i = 0; st == TL_OK && i < n; i++) {
			const char *nm = names[i];
			if (asprintf(&p, "%s/%s", s->root, nm) < 0) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
				break;
			}
			int dir = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
			if (!dir)
				info->skipped_other++;
			else if (strcmp(nm, "train") == 0)
				;
			else if (strcmp(nm, "test") == 0)
				have_test = 1, st = read_split(s, nm, TL_SRC_TEST, err);
			else if (strcmp(nm, "val") == 0 || strcmp(nm, "validation") == 0) {
				if (have_val++)
					st = tl_seterr(err, TL_EFORMAT,
						       "%s: both val/ and validation/ (expected one validation folder)",
						       path);
				else
					st = read_split(s, nm, TL_SRC_VAL, err);
			} else
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: unexpected folder beside train/ (expected train, val or validation, test)",
					       p);
			free(p);
		}
		free_list(names, n);
		if (st == TL_OK && have_test && o->test_fraction > 0)
			st = tl_seterr(err, TL_EUSAGE,
				       "%s: --test: the source has its own test/ folder (expected no --test)",
				       path);
	}
	if (st != TL_OK)
		goto done;
	if (s->n > 1)
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
		folder_close(s);
		return st;
	}
	*out = s;
	return TL_OK;
}

/* Read the current entry's file into buf; a failure becomes the record's
 * error (the packer skips it or fails under --strict). */
static void read_file(folder_state *s, tl_src_event *ev)
{
	size_t size;
	if ((ev->error = tl_src_read_file(s->path, FOLDER_MAX_FILE, &s->buf, &s->buf_cap, &size,
					  s->errmsg, sizeof s->errmsg)))
		return;
	atomic_fetch_add(&s->consumed, size);
	ev->data = s->buf;
	ev->size = size;
}

static tl_status folder_next(void *st, tl_src_event *ev, tl_err *err)
{
	folder_state *s = st;
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
		ev->order = 0;
		for (size_t i = s->next; i < s->n && s->e[i].split == e->split; i++)
			ev->expect++;
		return TL_OK;
	}
	free(s->path);
	if (asprintf(&s->path, "%s/%s/%s", s->root, e->dir, e->name) < 0) {
		s->path = NULL;
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
	}
	free(s->rel);
	if (asprintf(&s->rel, "%s/%s", e->dir, e->name) < 0) {
		s->rel = NULL;
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->root);
	}
	ev->type = TL_SRC_RECORD;
	ev->name = s->path;
	ev->rel = s->rel;
	ev->label[0] = e->cls;
	read_file(s, ev);
	s->next++;
	return TL_OK;
}

static tl_status folder_finish(void *st, tl_err *err)
{
	(void)err;
	folder_state *s = st;
	s->info->source_size = s->total;
	s->info->source_hash = 0;
	return TL_OK;
}

static uint64_t folder_consumed(void *st)
{
	return atomic_load(&((folder_state *)st)->consumed);
}

static uint64_t folder_total(void *st)
{
	return ((folder_state *)st)->total;
}

const tl_source tl_source_folder = {
	.name = "folder",
	.probe = folder_probe,
	.open = folder_open,
	.next = folder_next,
	.finish = folder_finish,
	.consumed = folder_consumed,
	.total = folder_total,
	.close = folder_close,
};
