/* h5file.c - a Keras .h5 parsed in a sandboxed child, validated and held
 * by the parent (see h5file.h).
 *
 * The child's output, read by the parent, is a series of records, each a
 * header {uint32 tag, uint32 0, uint64 payload bytes} and the payload, in
 * the host's byte order (both sides are this program):
 *   'V' a dataset: a tl_h5_var, then its numel float32 values
 *   'D' the end: layout (8 bytes, NUL-padded), uint64 number of datasets
 *   'E' a failure: uint32 tl_status, then the message (no NUL)
 * 'D' or 'E' ends the output. */
#define _GNU_SOURCE
#include "config.h"

#include "nn/h5file.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "infile.h"
#include "nn/h5parse.h"
#include "nn/md5.h"
#include "nn/sandbox.h"

#define BAD(...) tl_seterr(err, TL_EFORMAT, __VA_ARGS__)
#define WHAT "the HDF5 reader"

enum { REC_VAR = 'V', REC_DONE = 'D', REC_ERR = 'E' };

typedef struct {
	uint32_t tag, zero;
	uint64_t len;
} rec_head;

struct tl_h5_file {
	char *path;
	char layout[8];
	tl_h5_var *v;
	float **data;
	size_t n, cap;
	uint64_t size;     /* bytes parsed */
	uint64_t declared; /* bytes the datasets declare in their own dtypes */
	char md5[33], xxh3[17];
};

void tl_h5_fmt_shape(int ndim, const int64_t *s, char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, "(");
	for (int i = 0; i < ndim && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", s[i]);
	if (k < n)
		snprintf(buf + k, n - k, "%s)", ndim == 1 ? "," : "");
}

size_t tl_h5_count(const tl_h5_file *f)
{
	return f->n;
}

const tl_h5_var *tl_h5_var_at(const tl_h5_file *f, size_t i)
{
	return &f->v[i];
}

const char *tl_h5_layout(const tl_h5_file *f)
{
	return f->layout;
}

const float *tl_h5_data(const tl_h5_file *f, size_t i)
{
	return f->data[i];
}

uint64_t tl_h5_size(const tl_h5_file *f)
{
	return f->size;
}

const char *tl_h5_md5(const tl_h5_file *f)
{
	return f->md5;
}

const char *tl_h5_xxh3(const tl_h5_file *f)
{
	return f->xxh3;
}

tl_status tl_h5_read_f32(tl_h5_file *f, size_t i, float *dst, tl_err *err)
{
	(void)err;
	memcpy(dst, f->data[i], (size_t)f->v[i].numel * sizeof *dst);
	return TL_OK;
}

void tl_h5_close(tl_h5_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->data[i]);
	free(f->data);
	free(f->v);
	free(f->path);
	free(f);
}

tl_status tl_h5_file_new(tl_h5_file **out, const char *path, uint64_t size, tl_err *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out || !((*out)->path = strdup(path))) {
		free(*out);
		*out = NULL;
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	(*out)->size = size;
	return TL_OK;
}

/* Copy the NUL-terminated s (at most n bytes) into buf (bn bytes) with
 * anything but printable ASCII shown as '?'. */
static void printable(const char *s, size_t n, char *buf, size_t bn)
{
	size_t k = 0;
	for (; k < n && k + 1 < bn && s[k]; k++)
		buf[k] = (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] < 0x7f ? s[k] : '?';
	buf[k] = 0;
}

/* Whether the n-byte field s is a NUL-terminated, non-empty string of
 * printable ASCII. */
static int is_name(const char *s, size_t n)
{
	const char *z = memchr(s, 0, n);
	if (!z || z == s)
		return 0;
	for (; s < z; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* Checks an untrusted table entry (see h5file.h) and counts its bytes. */
static tl_status check_var(tl_h5_file *f, const tl_h5_var *v, tl_err *err)
{
	char l[64], nm[128];
	printable(v->layer, sizeof v->layer, l, sizeof l);
	printable(v->name, sizeof v->name, nm, sizeof nm);
	if (f->n >= TL_H5_MAX_VARS)
		return BAD("%s: %s: more than %d weights (expected a Keras VGG16 or MobileNetV2 file)",
			   f->path, l, TL_H5_MAX_VARS);
	if (!is_name(v->layer, sizeof v->layer) || !is_name(v->name, sizeof v->name))
		return BAD("%s: %s: %s: a layer or weight name that is empty, too long or not printable (expected printable ASCII, at most %zu and %zu bytes)",
			   f->path, l, nm, sizeof v->layer - 1, sizeof v->name - 1);
	size_t esz = !strcmp(v->dtype, "f16") ? 2 : !strcmp(v->dtype, "f32") ? 4
						  : !strcmp(v->dtype, "f64") ? 8
									     : 0;
	if (!esz || !memchr(v->dtype, 0, sizeof v->dtype))
		return BAD("%s: %s: %s: dtype not f16, f32 or f64", f->path, l, nm);
	if (v->ndim < 1 || v->ndim > TL_ST_MAX_DIMS)
		return BAD("%s: %s: %s: rank %d (expected 1 to %d)", f->path, l, nm, v->ndim,
			   TL_ST_MAX_DIMS);
	uint64_t numel = 1;
	for (int i = 0; i < v->ndim; i++)
		if (v->shape[i] < 0 || (uint64_t)v->shape[i] > TL_H5_MAX_NUMEL ||
		    tl_mul_ovf(numel, (uint64_t)v->shape[i], &numel) || numel > TL_H5_MAX_NUMEL)
			return BAD("%s: %s: %s: absurd size (expected at most %llu values)", f->path, l,
				   nm, (unsigned long long)TL_H5_MAX_NUMEL);
	if (numel != v->numel)
		return BAD("%s: %s: %s: %" PRIu64 " values for its shape of %" PRIu64 " (expected them equal)",
			   f->path, l, nm, v->numel, numel);
	/* what every dataset may declare: its stored bytes (within the file)
	 * or TL_H5_MAX_RATIO times them, or TL_H5_RATIO_FREE */
	uint64_t d = f->declared + numel * esz;
	uint64_t cap = f->size * TL_H5_MAX_RATIO + (uint64_t)(f->n + 1) * TL_H5_RATIO_FREE;
	if (d > TL_H5_MAX_TOTAL || d > cap)
		return BAD("%s: %s: %s: the datasets declare %" PRIu64 " bytes (expected at most %" PRIu64 " for a file of %" PRIu64 ")",
			   f->path, l, nm, d, cap < TL_H5_MAX_TOTAL ? cap : (uint64_t)TL_H5_MAX_TOTAL, f->size);
	f->declared = d;
	return TL_OK;
}

/* Checks that x (n values of v) are finite. */
static tl_status check_finite(const tl_h5_file *f, const tl_h5_var *v, const float *x,
			      tl_err *err)
{
	for (uint64_t k = 0; k < v->numel; k++)
		if (!isfinite(x[k]))
			return BAD("%s: %s: %s: value %" PRIu64 " is not finite (expected finite weights, got %g)",
				   f->path, v->layer, v->name, k, (double)x[k]);
	return TL_OK;
}

/* Append v (checked) with its data (owned from here on, freed on failure). */
static tl_status append(tl_h5_file *f, const tl_h5_var *v, float *data, tl_err *err)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		tl_h5_var *nv = realloc(f->v, cap * sizeof *nv);
		if (nv)
			f->v = nv;
		float **nd = realloc(f->data, cap * sizeof *nd);
		if (nd)
			f->data = nd;
		if (!nv || !nd) {
			free(data);
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", f->path);
		}
		f->cap = cap;
	}
	f->v[f->n] = *v;
	f->data[f->n++] = data;
	return TL_OK;
}

tl_status tl_h5_file_add(tl_h5_file *f, const tl_h5_var *v, const float *data, tl_err *err)
{
	TL_TRY(check_var(f, v, err));
	TL_TRY(check_finite(f, v, data, err));
	float *x = malloc(v->numel ? (size_t)v->numel * sizeof *x : 1);
	if (!x)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", f->path);
	memcpy(x, data, (size_t)v->numel * sizeof *x);
	return append(f, v, x, err);
}

tl_status tl_h5_file_set_layout(tl_h5_file *f, const char *layout, tl_err *err)
{
	if (strcmp(layout, "keras1") && strcmp(layout, "keras2") && strcmp(layout, "keras3"))
		return BAD("%s: layout not keras1, keras2 or keras3", f->path);
	snprintf(f->layout, sizeof f->layout, "%s", layout);
	return TL_OK;
}

/* ---- the child ---- */

typedef struct {
	const void *img;
	size_t n;
	const char *path;
	int fd;
	uint64_t count;
} child_ctx;

static void child_prepare(void *ctx)
{
	(void)ctx;
	tl_h5_parse_init();
}

static int put(int fd, uint32_t tag, const void *a, size_t na, const void *b, size_t nb)
{
	rec_head h = {tag, 0, (uint64_t)na + nb};
	return tl_sandbox_write(fd, &h, sizeof h) || tl_sandbox_write(fd, a, na) ||
	       (nb && tl_sandbox_write(fd, b, nb));
}

static tl_status child_emit(void *ctx, const tl_h5_var *v, const float *data, tl_err *err)
{
	child_ctx *c = ctx;
	if (put(c->fd, REC_VAR, v, sizeof *v, data, (size_t)v->numel * sizeof *data))
		return tl_seterr(err, TL_EIO, "%s: the parent is gone", c->path);
	c->count++;
	return TL_OK;
}

/* The sandboxed child: parse, send the datasets, then 'D' or 'E'. */
static int child_main(int fd, void *ctx)
{
	child_ctx *c = ctx;
	c->fd = fd;
	char layout[8];
	static tl_err err; /* 4 KiB: off the small stack */
	tl_status st = tl_h5_parse_image(c->img, c->n, c->path, layout, child_emit, c, &err);
	if (st == TL_OK) {
		uint64_t cnt = c->count;
		return put(fd, REC_DONE, layout, sizeof layout, &cnt, sizeof cnt) ? 1 : 0;
	}
	uint32_t s = (uint32_t)st;
	put(fd, REC_ERR, &s, sizeof s, err.msg, strnlen(err.msg, sizeof err.msg));
	return 1;
}

/* ---- the parent ---- */

/* Read the child's records into f until 'D' or 'E'. */
static tl_status take(tl_sandbox *sb, tl_h5_file *f, tl_err *err)
{
	for (;;) {
		rec_head h;
		TL_TRY(tl_sandbox_read(sb, &h, sizeof h, err));
		if (h.tag == REC_VAR) {
			tl_h5_var v;
			if (h.len < sizeof v)
				return BAD("%s: " WHAT " wrote a short record (%" PRIu64 " bytes, expected at least %zu)",
					   f->path, h.len, sizeof v);
			TL_TRY(tl_sandbox_read(sb, &v, sizeof v, err));
			TL_TRY(check_var(f, &v, err));
			if (h.len - sizeof v != v.numel * sizeof(float))
				return BAD("%s: %s: " WHAT " sent %" PRIu64 " bytes of data (expected %" PRIu64 ")",
					   f->path, v.name, h.len - sizeof v, v.numel * sizeof(float));
			float *x = malloc(v.numel ? (size_t)v.numel * sizeof *x : 1);
			if (!x)
				return tl_seterr(err, TL_ENOMEM, "%s: out of memory", f->path);
			tl_status st = tl_sandbox_read(sb, x, (size_t)v.numel * sizeof *x, err);
			if (st == TL_OK)
				st = check_finite(f, &v, x, err);
			if (st != TL_OK) {
				free(x);
				return st;
			}
			TL_TRY(append(f, &v, x, err));
		} else if (h.tag == REC_DONE) {
			char layout[8];
			uint64_t cnt;
			if (h.len != sizeof layout + sizeof cnt)
				return BAD("%s: " WHAT " wrote a bad end record (%" PRIu64 " bytes, expected %zu)",
					   f->path, h.len, sizeof layout + sizeof cnt);
			TL_TRY(tl_sandbox_read(sb, layout, sizeof layout, err));
			TL_TRY(tl_sandbox_read(sb, &cnt, sizeof cnt, err));
			layout[sizeof layout - 1] = 0;
			if (cnt != f->n)
				return BAD("%s: " WHAT " counted %" PRIu64 " datasets (expected the %zu it sent)",
					   f->path, cnt, f->n);
			return tl_h5_file_set_layout(f, layout, err);
		} else if (h.tag == REC_ERR) {
			uint32_t s;
			static __thread char msg[sizeof(tl_err)];
			if (h.len < sizeof s || h.len - sizeof s >= sizeof msg)
				return BAD("%s: " WHAT " wrote a bad error record (%" PRIu64 " bytes)",
					   f->path, h.len);
			size_t ml = (size_t)h.len - sizeof s;
			TL_TRY(tl_sandbox_read(sb, &s, sizeof s, err));
			TL_TRY(tl_sandbox_read(sb, msg, ml, err));
			msg[ml] = 0;
			tl_status st = s > TL_OK && s <= TL_EINTR ? (tl_status)s : TL_EFORMAT;
			char clean[sizeof(tl_err)];
			printable(msg, ml + 1, clean, sizeof clean);
			return tl_seterr(err, st, "%s", clean);
		} else {
			return BAD("%s: " WHAT " wrote garbage (expected a record tag V, D or E, got 0x%08" PRIx32 ")",
				   f->path, h.tag);
		}
	}
}

/* The whole of the open regular file fd (path, size bytes) in memory. */
static tl_status slurp(int fd, const char *path, uint64_t size, unsigned char **out,
		       tl_err *err)
{
	*out = NULL;
	if (size > TL_H5_MAX_FILE)
		return BAD("%s: %" PRIu64 " bytes (expected a Keras weights file of at most %llu)",
			   path, size, (unsigned long long)TL_H5_MAX_FILE);
	unsigned char *b = malloc(size ? (size_t)size : 1);
	if (!b)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory (%" PRIu64 " bytes)", path, size);
	uint64_t got = 0;
	while (got < size) {
		ssize_t k = read(fd, b + got, (size_t)(size - got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(b);
			return tl_seterr(err, TL_EIO, "%s: read error: %s", path,
					 k < 0 ? strerror(errno) : "the file shrank while read");
		}
		got += (uint64_t)k;
	}
	*out = b;
	return TL_OK;
}

tl_status tl_h5_open(tl_h5_file **out, const char *path, tl_err *err)
{
	*out = NULL;
#ifndef TL_HAVE_HDF5
	return tl_seterr(err, TL_EUSAGE,
			 "%s: reading Keras .h5 files needs libhdf5, which this build lacks: apt-get install libhdf5-dev, then configure and build tlkit again",
			 path);
#else
	struct stat sb;
	int fd = tl_open_input(path, &sb, err);
	if (fd < 0)
		return TL_EIO;
	unsigned char *img;
	tl_status st = slurp(fd, path, (uint64_t)sb.st_size, &img, err);
	close(fd);
	if (st != TL_OK)
		return st;
	uint64_t size = (uint64_t)sb.st_size;
	tl_h5_file *f;
	if ((st = tl_h5_file_new(&f, path, size, err)) != TL_OK) {
		free(img);
		return st;
	}
	tl_md5_buf(img, (size_t)size, f->md5);
	snprintf(f->xxh3, sizeof f->xxh3, "%016" PRIx64, (uint64_t)XXH3_64bits(img, (size_t)size));
	/* the child may add twice the file (a float copy of f16 data) and
	 * libhdf5's own memory; CPU and wall time grow with the file */
	unsigned cpu = 60 + (unsigned)(size >> 23);
	tl_sandbox_limits lim = {2 * size + (512u << 20), cpu, 2 * cpu + 30};
	child_ctx c = {img, (size_t)size, path, -1, 0};
	tl_sandbox *box;
	st = tl_sandbox_start(&box, path, WHAT, &lim, child_prepare, child_main, &c, err);
	if (st == TL_OK) {
		st = take(box, f, err);
		st = tl_sandbox_finish(box, st, err);
	}
	free(img);
	if (st != TL_OK) {
		tl_h5_close(f);
		return st;
	}
	*out = f;
	return TL_OK;
#endif
}
