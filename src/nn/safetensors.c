/* safetensors.c - safetensors read/write on jansson (see safetensors.h). */
#define _GNU_SOURCE
#include "nn/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "afile.h"
#include "infile.h"
#include "data/f16.h"

static uint64_t meta_hash(const char *const *keys, const char *const *vals, size_t n);

#define ST_HEADER_MAX (100u << 20)

static const struct {
	const char *name;
	tl_st_dtype dt;
	int size;
} dtypes[] = {
	{"F32", TL_ST_F32, 4}, {"F16", TL_ST_F16, 2}, {"BF16", TL_ST_BF16, 2}, {"F64", TL_ST_F64, 8},
	{"I64", TL_ST_I64, 8}, {"I32", TL_ST_I32, 4}, {"U8", TL_ST_U8, 1},   {"I8", TL_ST_OTHER, 1},
	{"BOOL", TL_ST_OTHER, 1}, {"I16", TL_ST_OTHER, 2}, {"U16", TL_ST_OTHER, 2},
	{"U32", TL_ST_OTHER, 4}, {"U64", TL_ST_OTHER, 8},
};

static int dtype_lookup(const char *s, tl_st_dtype *dt)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*dt = dtypes[i].dt;
			return dtypes[i].size;
		}
	return 0;
}

static const char *dtype_name(tl_st_dtype dt)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dt)
			return dtypes[i].name;
	return "?";
}

#define BAD(...) tl_seterr(err, TL_EFORMAT, __VA_ARGS__)

static int cmp_data(const void *a, const void *b)
{
	const tl_st_tensor *x = *(const tl_st_tensor *const *)a, *y = *(const tl_st_tensor *const *)b;
	return x->data < y->data ? -1 : x->data > y->data;
}

/* No two tensors may share data bytes (one write would change both). */
static tl_status check_disjoint(tl_st_file *f, tl_err *err)
{
	if (f->n < 2)
		return TL_OK;
	const tl_st_tensor **by = tl_malloc(f->n * sizeof *by);
	if (!by)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", f->path);
	size_t m = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->t[i].nbytes)
			by[m++] = &f->t[i];
	if (m > 1)
		qsort(by, m, sizeof *by, cmp_data);
	tl_status st = TL_OK;
	for (size_t i = 1; i < m; i++)
		if (by[i - 1]->data + by[i - 1]->nbytes > by[i]->data) {
			st = BAD("%s: tensors %s and %s: data_offsets overlap", f->path, by[i - 1]->name,
				 by[i]->name);
			break;
		}
	free(by);
	return st;
}

static tl_status parse_header(tl_st_file *f, const char *json, size_t len, const uint8_t *data,
			      uint64_t data_size, tl_err *err)
{
	json_error_t je;
	/* a repeated name would silently shadow a tensor or a metadata key */
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return BAD("%s: header: bad JSON at byte %d: %s", f->path, je.position, je.text);
	tl_status st = TL_OK;
	if (!json_is_object(root)) {
		st = BAD("%s: header: expected a JSON object", f->path);
		goto out;
	}
	size_t n = json_object_size(root);
	f->t = tl_calloc(n ? n : 1, sizeof *f->t);
	if (!f->t) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0) {
			if (!json_is_object(v)) {
				st = BAD("%s: __metadata__: expected an object of strings", f->path);
				goto out;
			}
			size_t m = json_object_size(v);
			f->meta_keys = tl_calloc(m ? m : 1, sizeof(char *));
			f->meta_vals = tl_calloc(m ? m : 1, sizeof(char *));
			const char *mk;
			json_t *mv;
			json_object_foreach(v, mk, mv)
			{
				if (!json_is_string(mv))
					continue;
				f->meta_keys[f->n_meta] = strdup(mk);
				f->meta_vals[f->n_meta] = strdup(json_string_value(mv));
				f->n_meta++;
			}
			continue;
		}
		tl_st_tensor *t = &f->t[f->n];
		t->name = strdup(key);
		f->n++;
		json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
		       *jo = json_object_get(v, "data_offsets");
		if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
		    json_array_size(jo) != 2) {
			st = BAD("%s: tensor %s: expected dtype, shape and data_offsets [begin, end]",
				 f->path, key);
			goto out;
		}
		int esize = dtype_lookup(json_string_value(jd), &t->dtype);
		snprintf(t->dtype_name, sizeof t->dtype_name, "%s", json_string_value(jd));
		if (!esize) {
			st = BAD("%s: tensor %s: unknown dtype %s", f->path, key, json_string_value(jd));
			goto out;
		}
		t->ndim = (int)json_array_size(js);
		if (t->ndim > TL_ST_MAX_DIMS) {
			st = BAD("%s: tensor %s: %d dimensions (at most %d)", f->path, key, t->ndim,
				 TL_ST_MAX_DIMS);
			goto out;
		}
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++) {
			json_t *e = json_array_get(js, (size_t)d);
			if (!json_is_integer(e) || json_integer_value(e) < 0 ||
			    tl_mul_ovf(numel, (uint64_t)json_integer_value(e), &numel)) {
				st = BAD("%s: tensor %s: bad shape", f->path, key);
				goto out;
			}
			t->shape[d] = json_integer_value(e);
		}
		t->numel = numel;
		json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
		uint64_t nbytes;
		if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
		    json_integer_value(e) < json_integer_value(b) ||
		    (uint64_t)json_integer_value(e) > data_size ||
		    tl_mul_ovf(numel, (uint64_t)esize, &nbytes) ||
		    (uint64_t)(json_integer_value(e) - json_integer_value(b)) != nbytes) {
			st = BAD("%s: tensor %s: data_offsets [%" PRId64 ", %" PRId64 "] do not fit %" PRIu64 " elements of %s in a %" PRIu64 "-byte data section",
				 f->path, key, (int64_t)json_integer_value(b),
				 (int64_t)json_integer_value(e), numel, t->dtype_name, data_size);
			goto out;
		}
		t->data = data + json_integer_value(b);
		t->nbytes = nbytes;
	}
	st = check_disjoint(f, err);
out:
	json_decref(root);
	return st;
}

tl_status tl_st_open(tl_st_file **out, const char *path, tl_err *err)
{
	*out = NULL;
	tl_st_file *f = tl_calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	tl_status st = TL_OK;
	struct stat sb;
	int fd = tl_open_input(path, &sb, err);
	if (fd < 0) {
		st = TL_EIO;
		goto fail;
	}
	f->size = (uint64_t)sb.st_size;
	if (f->size < 8) {
		close(fd);
		st = BAD("%s: not a safetensors file (expected at least 8 bytes, got %" PRIu64 ")",
			 path, f->size);
		goto fail;
	}
	f->map = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		st = tl_seterr(err, TL_EIO, "%s: cannot map: %s", path, strerror(errno));
		goto fail;
	}
	const uint8_t *m = f->map;
	uint64_t hl = 0;
	for (int i = 0; i < 8; i++)
		hl |= (uint64_t)m[i] << (8 * i);
	if (hl == 0 || hl > ST_HEADER_MAX || hl > f->size - 8) {
		st = BAD("%s: header length %" PRIu64 " does not fit a %" PRIu64 "-byte file (not safetensors, or truncated)",
			 path, hl, f->size);
		goto fail;
	}
	if ((st = parse_header(f, (const char *)m + 8, (size_t)hl, m + 8 + hl, f->size - 8 - hl,
			       err)) != TL_OK)
		goto fail;
	const char *want = tl_st_meta(f, "xxh3");
	if (want) {
		uint64_t got = XXH3_64bits(m + 8 + hl, f->size - 8 - hl);
		char hex[17];
		snprintf(hex, sizeof hex, "%016" PRIx64, got);
		if (strcmp(hex, want) != 0) {
			st = tl_seterr(err, TL_ECHECKSUM,
				       "%s: data section: checksum mismatch (expected xxh3 %s, got %s)",
				       path, want, hex);
			goto fail;
		}
	}
	const char *want_meta = tl_st_meta(f, "xxh3_meta");
	if (want_meta) {
		char hex[17];
		snprintf(hex, sizeof hex, "%016" PRIx64,
			 meta_hash((const char *const *)f->meta_keys, (const char *const *)f->meta_vals,
				   f->n_meta));
		if (strcmp(hex, want_meta) != 0) {
			st = tl_seterr(err, TL_ECHECKSUM,
				       "%s: metadata: checksum mismatch (expected xxh3_meta %s, got %s): "
				       "the file's settings were changed after it was written",
				       path, want_meta, hex);
			goto fail;
		}
	}
	*out = f;
	return TL_OK;
fail:
	tl_st_close(f);
	return st;
}

void tl_st_close(tl_st_file *f)
{
	if (!f)
		return;
	if (f->map)
		munmap(f->map, f->size);
	for (size_t i = 0; i < f->n; i++)
		free(f->t[i].name);
	for (size_t i = 0; i < f->n_meta; i++) {
		free(f->meta_keys[i]);
		free(f->meta_vals[i]);
	}
	free(f->meta_keys);
	free(f->meta_vals);
	free(f->t);
	free(f->path);
	free(f);
}

const tl_st_tensor *tl_st_find(const tl_st_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->t[i].name, name) == 0)
			return &f->t[i];
	return NULL;
}

const char *tl_st_meta(const tl_st_file *f, const char *key)
{
	for (size_t i = 0; i < f->n_meta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_vals[i];
	return NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < ndim && k < n; d++)
		k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, d ? ", " : "", shape[d]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

tl_status tl_st_read_f32(const tl_st_file *f, const char *name, int ndim, const int64_t *shape,
			 float *dst, tl_err *err)
{
	const tl_st_tensor *t = tl_st_find(f, name);
	if (!t)
		return BAD("%s: tensor %s: missing", f->path, name);
	int same = t->ndim == ndim;
	for (int d = 0; same && d < ndim; d++)
		same = t->shape[d] == shape[d];
	if (!same) {
		char a[128], b[128];
		shape_str(a, sizeof a, ndim, shape);
		shape_str(b, sizeof b, t->ndim, t->shape);
		return BAD("%s: tensor %s: wrong shape (expected %s, got %s)", f->path, name, a, b);
	}
	switch (t->dtype) {
	case TL_ST_F32:
		memcpy(dst, t->data, t->numel * 4);
		break;
	case TL_ST_F16:
		for (uint64_t i = 0; i < t->numel; i++) {
			uint16_t h;
			memcpy(&h, t->data + 2 * i, 2);
			dst[i] = tl_f16_to_f32(h);
		}
		break;
	case TL_ST_BF16:
		for (uint64_t i = 0; i < t->numel; i++) {
			uint16_t h;
			memcpy(&h, t->data + 2 * i, 2);
			uint32_t u = (uint32_t)h << 16;
			memcpy(&dst[i], &u, 4);
		}
		break;
	case TL_ST_F64:
		for (uint64_t i = 0; i < t->numel; i++) {
			double d;
			memcpy(&d, t->data + 8 * i, 8);
			dst[i] = (float)d;
		}
		break;
	default:
		return BAD("%s: tensor %s: dtype %s is not a float type (expected F32, F16, BF16 or F64)",
			   f->path, name, t->dtype_name);
	}
	return TL_OK;
}

/* XXH3-64 of string metadata: the pairs sorted by key, each as key NUL
 * value NUL, leaving out "xxh3" and "xxh3_meta" themselves.  Covers what a
 * checkpoint resumes from, which the data checksum does not. */
static int cmp_key(const void *a, const void *b, void *keys)
{
	const char *const *k = keys;
	return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

static uint64_t meta_hash(const char *const *keys, const char *const *vals, size_t n)
{
	size_t *ord = tl_malloc((n ? n : 1) * sizeof *ord);
	XXH3_state_t *xs = XXH3_createState();
	if (!ord || !xs) {
		free(ord);
		XXH3_freeState(xs);
		return 0; /* compared as text: never matches a written hash */
	}
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	qsort_r(ord, n, sizeof *ord, cmp_key, (void *)keys);
	XXH3_64bits_reset(xs);
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[ord[i]], *v = vals[ord[i]];
		if (!strcmp(k, "xxh3") || !strcmp(k, "xxh3_meta"))
			continue;
		XXH3_64bits_update(xs, k, strlen(k) + 1);
		XXH3_64bits_update(xs, v, strlen(v) + 1);
	}
	uint64_t h = XXH3_64bits_digest(xs);
	XXH3_freeState(xs);
	free(ord);
	return h;
}

tl_status tl_st_write(const char *path, const tl_st_out *t, size_t n, const char *const *meta_kv,
		      size_t n_meta, tl_err *err)
{
	json_t *root = json_object();
	uint64_t off = 0;
	XXH3_state_t *xs = XXH3_createState();
	XXH3_64bits_reset(xs);
	for (size_t i = 0; i < n; i++) {
		tl_st_dtype dt_unused;
		int esize = dtype_lookup(dtype_name(t[i].dtype), &dt_unused);
		uint64_t numel = 1;
		json_t *shape = json_array();
		for (int d = 0; d < t[i].ndim; d++) {
			numel *= (uint64_t)t[i].shape[d];
			json_array_append_new(shape, json_integer(t[i].shape[d]));
		}
		uint64_t nb = numel * (uint64_t)esize;
		json_t *e = json_object();
		json_object_set_new(e, "dtype", json_string(dtype_name(t[i].dtype)));
		json_object_set_new(e, "shape", shape);
		json_t *offs = json_array();
		json_array_append_new(offs, json_integer((json_int_t)off));
		json_array_append_new(offs, json_integer((json_int_t)(off + nb)));
		json_object_set_new(e, "data_offsets", offs);
		json_object_set_new(root, t[i].name, e);
		XXH3_64bits_update(xs, t[i].data, nb);
		off += nb;
	}
	json_t *meta = json_object();
	for (size_t i = 0; i < n_meta; i++)
		json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]));
	char hex[17];
	snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)XXH3_64bits_digest(xs));
	XXH3_freeState(xs);
	json_object_set_new(meta, "xxh3", json_string(hex));
	if (n_meta) {
		const char **k = tl_malloc(n_meta * sizeof *k), **v = tl_malloc(n_meta * sizeof *v);
		if (!k || !v) {
			free(k), free(v);
			json_decref(root), json_decref(meta);
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		}
		for (size_t i = 0; i < n_meta; i++)
			k[i] = meta_kv[2 * i], v[i] = meta_kv[2 * i + 1];
		snprintf(hex, sizeof hex, "%016" PRIx64, meta_hash(k, v, n_meta));
		free(k), free(v);
		json_object_set_new(meta, "xxh3_meta", json_string(hex));
	}
	json_object_set_new(root, "__metadata__", meta);
	char *js = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!js)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	size_t jl = strlen(js), padded = (size_t)tl_align_up(jl, 8);
	char *hdr = tl_malloc(8 + padded);
	if (!hdr) {
		free(js);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	for (int i = 0; i < 8; i++)
		hdr[i] = (char)((uint64_t)padded >> (8 * i));
	memcpy(hdr + 8, js, jl);
	memset(hdr + 8 + jl, ' ', padded - jl);
	free(js);
	tl_afile af;
	tl_status st = tl_afile_open(&af, path, err);
	if (st == TL_OK)
		st = tl_afile_write(&af, hdr, 8 + padded, err);
	for (size_t i = 0; st == TL_OK && i < n; i++) {
		tl_st_dtype dt_unused;
		uint64_t numel = 1;
		for (int d = 0; d < t[i].ndim; d++)
			numel *= (uint64_t)t[i].shape[d];
		st = tl_afile_write(&af, t[i].data,
				    numel * (uint64_t)dtype_lookup(dtype_name(t[i].dtype), &dt_unused), err);
	}
	free(hdr);
	if (st == TL_OK)
		return tl_afile_commit(&af, err);
	tl_afile_abort(&af);
	return st;
}
