/* source.c - the list of data sources and the probe that picks one (see
 * source.h). */
#include "data/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "infile.h"
#include "rng.h"

/* An archive goes to the archive source only when its first members are
 * images in folders; a CIFAR tarball (or anything else) falls through to
 * the CIFAR source, which says what it expected. */
static const tl_source *const sources[] = {
	&tl_source_archive,
	&tl_source_pycifar, /* before cifar-binary, whose probe takes any file */
	&tl_source_cifar,
	&tl_source_folder,
};

const tl_source *tl_source_find(const char *path, tl_err *err)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		tl_seterr(err, TL_EIO, "%s: cannot open input: %s", path, strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
		if (sources[i]->probe(path, &sb))
			return sources[i];
	tl_seterr(err, TL_EFORMAT,
		  "%s: not a data source (expected a CIFAR-10/100 binary or python archive or folder, a folder of class subfolders, or a .tar, .tar.gz, .tgz or .zip of one)",
		  path);
	return NULL;
}

/* Sources chosen by an option, never by a probe. */
static const tl_source *const named[] = {
	&tl_source_csv,
};

const tl_source *tl_source_named(const char *name, tl_err *err)
{
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (strcmp(named[i]->name, name) == 0)
			return named[i];
	tl_seterr(err, TL_EUSAGE, "no data source named '%s' (expected csv)", name);
	return NULL;
}

const char *const tl_src_split_names[TL_SRC_N_SPLITS] = {"train", "val", "test"};

tl_status tl_src_set_name(tl_source_info *in, int coarse, uint32_t i, const char *name,
			  const char *where, tl_err *err)
{
	const char *why = tl_shard_name_problem(name, strlen(name));
	if (why)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: class name: %s (expected 1..%d bytes of UTF-8 without control characters, got %zu bytes)",
				 where, why, TL_SHARD_NAME_MAX - 1, strlen(name));
	if (i >= TL_SHARD_MAX_CLASSES)
		return tl_seterr(err, TL_EFORMAT, "%s: too many classes (expected at most %d)", where,
				 TL_SHARD_MAX_CLASSES);
	char ***t = coarse ? &in->coarse_names : &in->class_names;
	uint32_t *cap = coarse ? &in->coarse_cap : &in->class_cap;
	if (i >= *cap) {
		uint32_t nc = *cap ? *cap : 16;
		while (nc <= i)
			nc *= 2;
		char **p = realloc(*t, (size_t)nc * sizeof *p);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory for class names", where);
		memset(p + *cap, 0, (size_t)(nc - *cap) * sizeof *p);
		*t = p, *cap = nc;
	}
	char *d = strdup(name);
	if (!d)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for class names", where);
	free((*t)[i]);
	(*t)[i] = d;
	return TL_OK;
}

void tl_src_info_free(tl_source_info *in)
{
	for (uint32_t i = 0; i < in->class_cap; i++)
		free(in->class_names[i]);
	for (uint32_t i = 0; i < in->coarse_cap; i++)
		free(in->coarse_names[i]);
	free(in->class_names);
	free(in->coarse_names);
	in->class_names = in->coarse_names = NULL;
	in->class_cap = in->coarse_cap = 0;
}

int tl_src_is_image_name(const char *name)
{
	static const char *const ext[] = {"jpg", "jpeg", "jpe", "jfif", "png", "ppm", "pgm", "pnm"};
	const char *dot = strrchr(name, '.');
	if (!dot)
		return 0;
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		if (strcasecmp(dot + 1, ext[i]) == 0)
			return 1;
	return 0;
}

int tl_src_entry_cmp(const void *a, const void *b)
{
	const tl_src_entry *x = a, *y = b;
	if (x->split != y->split)
		return x->split < y->split ? -1 : 1;
	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	int c = strcmp(x->dir, y->dir);
	return c ? c : strcmp(x->name, y->name);
}

int tl_src_hold_out(tl_src_entry *e, size_t n_all, double f, uint64_t seed)
{
	size_t *idx = malloc((n_all ? n_all : 1) * sizeof *idx);
	if (!idx)
		return -1;
	size_t i = 0;
	while (i < n_all && e[i].split == TL_SRC_TRAIN) {
		size_t j = i;
		while (j < n_all && e[j].split == TL_SRC_TRAIN && e[j].cls == e[i].cls)
			j++;
		size_t n = j - i, t = (size_t)(f * (double)n + 0.5);
		if (t == 0 && n >= 2)
			t = 1;
		if (t >= n)
			t = n - 1;
		uint64_t r = tl_rng_key(seed, e[i].cls, 0x7e57, 0);
		/* partial shuffle of indices i..j-1: the first t picked */
		for (size_t k = 0; k < n; k++)
			idx[k] = i + k;
		for (size_t k = 0; k < t; k++) {
			size_t m = k + (size_t)tl_rng_below(&r, n - k);
			size_t tmp = idx[k];
			idx[k] = idx[m], idx[m] = tmp;
			e[idx[k]].split = TL_SRC_TEST;
		}
		i = j;
	}
	free(idx);
	return 0;
}

tl_status tl_src_add_class(tl_source_info *in, const char *name, const char *where, tl_err *err)
{
	if (in->n_classes == TL_SHARD_MAX_CLASSES)
		return tl_seterr(err, TL_EFORMAT, "%s: too many classes (expected at most %d)", where,
				 TL_SHARD_MAX_CLASSES);
	TL_TRY(tl_src_set_name(in, 0, in->n_classes, name, where, err));
	in->n_classes++;
	return TL_OK;
}

const char *tl_src_read_file(const char *path, uint64_t max, uint8_t **buf, size_t *cap,
			     size_t *size, char *msg, size_t n)
{
	tl_err err;
	struct stat sb;
	int fd = tl_open_input(path, &sb, &err);
	if (fd < 0) {
		snprintf(msg, n, "%s", err.msg);
		return msg;
	}
	uint64_t sz = (uint64_t)sb.st_size;
	const char *why = NULL;
	if (sz > max) {
		snprintf(msg, n, "%s: file too large (expected at most %llu bytes, got %llu)", path,
			 (unsigned long long)max, (unsigned long long)sz);
		why = msg;
		goto done;
	}
	if (sz + 1 > *cap) {
		uint8_t *b = realloc(*buf, (size_t)sz + 1);
		if (!b) {
			snprintf(msg, n, "%s: out of memory for %llu bytes", path, (unsigned long long)sz);
			why = msg;
			goto done;
		}
		*buf = b, *cap = (size_t)sz + 1;
	}
	size_t got = 0;
	while (got < sz) {
		ssize_t k = read(fd, *buf + got, (size_t)sz - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(msg, n, "%s: %s (expected %llu bytes, got %zu)", path,
				 k < 0 ? strerror(errno) : "file shrank while read", (unsigned long long)sz, got);
			why = msg;
			goto done;
		}
		got += (size_t)k;
	}
	*size = (size_t)sz;
done:
	close(fd);
	return why;
}

void tl_src_name_after_dir(tl_source_info *in, const char *dir)
{
	char *real = realpath(dir, NULL);
	const char *p = real ? real : dir;
	const char *b = strrchr(p, '/');
	b = b && b[1] ? b + 1 : p;
	if (!*b || strcmp(b, "/") == 0)
		b = "images";
	snprintf(in->dataset, sizeof in->dataset, "%s", b);
	snprintf(in->output, sizeof in->output, "%s.tls", in->dataset);
	free(real);
}

void tl_src_entries_free(tl_src_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].dir);
		free(e[i].name);
		free(e[i].data);
	}
	free(e);
}
