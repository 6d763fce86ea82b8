/* h5parse.c - the libhdf5 walk of a Keras .h5 image (see h5parse.h).
 * Runs inside the sandbox of h5file.c and in tests/fuzz/fuzz_keras.c. */
#include "config.h"

#include "nn/h5parse.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TL_HAVE_HDF5
#include <hdf5.h>
#endif

#define BAD(...) tl_seterr(err, TL_EFORMAT, __VA_ARGS__)

#ifdef TL_HAVE_HDF5

/* The parse in progress: the table and one open dataset per entry. */
typedef struct {
	const char *path;
	char layout[8];
	tl_h5_var *v;
	hid_t *dset;
	size_t n, cap;
	uint64_t size;     /* of the image */
	uint64_t declared; /* bytes all datasets declare so far */
	hid_t fid;
} parse;

void tl_h5_parse_init(void)
{
	H5open();
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are ours to report */
}

/* What a link type is, in words. */
static const char *link_words(H5L_type_t t)
{
	return t == H5L_TYPE_SOFT ? "a soft link" : t == H5L_TYPE_EXTERNAL ? "an external link"
								   : "a user-defined link";
}

/* Whether rel (a path below base, components split by '/') exists as a
 * chain of hard links only.  Returns TL_OK with *exists 0 or 1; refuses a
 * soft, external or user-defined link on the way, which libhdf5 would
 * follow out of the object tree (an external link opens another file). */
static tl_status hard_path(const parse *p, hid_t base, const char *rel, const char *part,
			   int *exists, tl_err *err)
{
	*exists = 0;
	char buf[512];
	size_t len = strlen(rel);
	if (len == 0 || len >= sizeof buf)
		return BAD("%s: %s: path '%.200s' has %zu bytes (expected 1 to %zu)", p->path, part,
			   rel, len, sizeof buf - 1);
	memcpy(buf, rel, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		if (i == 0 || buf[i - 1] == '/') /* "/x", "a//b": skip the empty part */
			continue;
		char c = buf[i];
		buf[i] = 0;
		htri_t ex = H5Lexists(base, buf, H5P_DEFAULT);
		H5L_info_t li;
		if (ex <= 0) {
			buf[i] = c;
			return TL_OK;
		}
		if (H5Lget_info(base, buf, &li, H5P_DEFAULT) < 0)
			return BAD("%s: %s: %s: link unreadable", p->path, part, buf);
		if (li.type != H5L_TYPE_HARD)
			return BAD("%s: %s: %s is %s (expected an object stored in this file, reached by hard links only)",
				   p->path, part, buf, link_words(li.type));
		buf[i] = c;
	}
	*exists = 1;
	return TL_OK;
}

/* Read a string or string-array attribute into *out (n strings, each
 * NUL-terminated, at most 127 bytes kept); fixed and variable length. */
static tl_status read_strings(hid_t obj, const char *attr, const char *path, const char *part,
			      char (**out)[128], size_t *n, tl_err *err)
{
	*out = NULL;
	*n = 0;
	if (H5Aexists(obj, attr) <= 0)
		return BAD("%s: %s: attribute %s missing (expected a Keras weights file)", path, part,
			   attr);
	hid_t a = H5Aopen(obj, attr, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
	tl_status st = TL_OK;
	void *raw = NULL;
	if (a < 0 || (t = H5Aget_type(a)) < 0 || (sp = H5Aget_space(a)) < 0) {
		st = BAD("%s: %s: attribute %s unreadable", path, part, attr);
		goto out;
	}
	hssize_t np = H5Sget_simple_extent_npoints(sp);
	if (np == 0) /* Keras writes an empty list as a float array */
		goto out;
	if (H5Tget_class(t) != H5T_STRING) {
		st = BAD("%s: %s: attribute %s is not text (expected strings, got HDF5 type class %d)",
			 path, part, attr, (int)H5Tget_class(t));
		goto out;
	}
	if (np < 0 || np > TL_H5_MAX_VARS) {
		st = BAD("%s: %s: attribute %s has %lld entries (expected 0 to %d)", path, part, attr,
			 (long long)np, TL_H5_MAX_VARS);
		goto out;
	}
	*out = calloc((size_t)np + 1, sizeof **out);
	if (!*out) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	if (H5Tis_variable_str(t) > 0) {
		mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, H5T_VARIABLE);
		H5Tset_cset(mt, H5Tget_cset(t)); /* h5py writes str as UTF-8 */
		char **s = calloc((size_t)np + 1, sizeof *s);
		raw = s;
		if (!s || H5Aread(a, mt, s) < 0) {
			if (s) /* a read that failed part way may have made some strings */
				H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, s);
			st = BAD("%s: %s: attribute %s unreadable", path, part, attr);
			goto out;
		}
		for (hssize_t i = 0; i < np; i++)
			snprintf((*out)[i], sizeof **out, "%s", s[i] ? s[i] : "");
		H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, s);
	} else {
		size_t sz = H5Tget_size(t);
		if (sz == 0 || sz > 4096) {
			st = BAD("%s: %s: attribute %s has %zu-byte strings (expected 1 to 4096)", path,
				 part, attr, sz);
			goto out;
		}
		char *s = malloc((size_t)np * sz + 1);
		raw = s;
		if (!s || H5Aread(a, t, s) < 0) {
			st = BAD("%s: %s: attribute %s unreadable", path, part, attr);
			goto out;
		}
		for (hssize_t i = 0; i < np; i++) {
			const char *e = s + (size_t)i * sz;
			size_t len = strnlen(e, sz);
			if (len >= sizeof **out)
				len = sizeof **out - 1;
			memcpy((*out)[i], e, len);
			(*out)[i][len] = 0;
		}
	}
	*n = (size_t)np;
out:
	free(raw);
	if (st != TL_OK) {
		free(*out);
		*out = NULL;
	}
	if (mt >= 0)
		H5Tclose(mt);
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	if (a >= 0)
		H5Aclose(a);
	return st;
}


/* Checks how dataset d (layer/name, n values of esz bytes) is stored:
 * inside the file, wholly allocated, no fill value, not virtual, no
 * external storage, stored bytes plausible for what it declares. */
static tl_status check_storage(parse *p, hid_t d, const char *layer, const char *name,
			       uint64_t numel, size_t esz, tl_err *err)
{
	hid_t dcpl = H5Dget_create_plist(d);
	if (dcpl < 0)
		return BAD("%s: %s: %s: storage properties unreadable", p->path, layer, name);
	tl_status st = TL_OK;
	uint64_t bytes = numel * esz; /* numel <= TL_H5_MAX_NUMEL, esz <= 8 */
	H5D_layout_t lay = H5Pget_layout(dcpl);
	int next = H5Pget_external_count(dcpl);
	int nfilt = lay == H5D_CHUNKED ? H5Pget_nfilters(dcpl) : 0;
	H5D_fill_value_t fv = H5D_FILL_VALUE_DEFAULT;
	H5D_space_status_t ss = H5D_SPACE_STATUS_ERROR;
	if (next != 0) {
		char ext[300] = "?";
		off_t eoff = 0;
		hsize_t esize = 0;
		if (next > 0)
			H5Pget_external(dcpl, 0, sizeof ext, ext, &eoff, &esize);
		ext[sizeof ext - 1] = 0;
		for (char *c = ext; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		st = BAD("%s: %s: %s: external storage in '%.200s' (expected the data inside this file, got %d external file%s)",
			 p->path, layer, name, ext, next, next == 1 ? "" : "s");
	} else if (lay == H5D_VIRTUAL) {
		st = BAD("%s: %s: %s: a virtual dataset (expected data stored in this file, got a view of other datasets)",
			 p->path, layer, name);
	} else if (lay != H5D_CONTIGUOUS && lay != H5D_CHUNKED && lay != H5D_COMPACT) {
		st = BAD("%s: %s: %s: unknown storage layout %d (expected contiguous, chunked or compact)",
			 p->path, layer, name, (int)lay);
	} else if (nfilt < 0) {
		st = BAD("%s: %s: %s: filters unreadable", p->path, layer, name);
	} else if (H5Pfill_value_defined(dcpl, &fv) < 0 || fv == H5D_FILL_VALUE_USER_DEFINED) {
		st = BAD("%s: %s: %s: a fill value (expected every value stored, got a user-defined fill value for values not written)",
			 p->path, layer, name);
	} else if (bytes && lay == H5D_CHUNKED) {
		/* every chunk written (libhdf5's space status calls a compressed
		 * dataset "partly allocated": count the chunks instead) */
		hsize_t cd[H5S_MAX_RANK], dims[H5S_MAX_RANK], have = 0, want = 1;
		hid_t sp = H5Dget_space(d);
		int cn = H5Pget_chunk(dcpl, H5S_MAX_RANK, cd);
		int nd = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : -1;
		if (cn < 1 || cn != nd) {
			st = BAD("%s: %s: %s: chunks of rank %d for a dataset of rank %d (expected them equal)",
				 p->path, layer, name, cn, nd);
		} else {
			for (int i = 0; i < nd; i++)
				want *= cd[i] ? (dims[i] + cd[i] - 1) / cd[i] : 0;
			if (H5Dget_num_chunks(d, sp, &have) < 0 || have != want)
				st = BAD("%s: %s: %s: %s (expected all %llu chunks stored, got %llu: the rest would read as fill values)",
					 p->path, layer, name, have ? "partly allocated" : "not allocated",
					 (unsigned long long)want, (unsigned long long)have);
		}
		if (sp >= 0)
			H5Sclose(sp);
	} else if (bytes && (H5Dget_space_status(d, &ss) < 0 ||
			     ss != H5D_SPACE_STATUS_ALLOCATED)) {
		st = BAD("%s: %s: %s: %s (expected %" PRIu64 " bytes of stored values, got %s)",
			 p->path, layer, name,
			 ss == H5D_SPACE_STATUS_PART_ALLOCATED ? "partly allocated" : "not allocated",
			 bytes,
			 ss == H5D_SPACE_STATUS_PART_ALLOCATED ? "some never written"
							       : "no data: it was never written");
	}
	if (st != TL_OK || !bytes)
		goto out;
	uint64_t stored = H5Dget_storage_size(d);
	if (stored > p->size) {
		st = BAD("%s: %s: %s: stores %" PRIu64 " bytes (expected at most the file's %" PRIu64 ")",
			 p->path, layer, name, stored, p->size);
	} else if (nfilt == 0 && stored < bytes) {
		st = BAD("%s: %s: %s: stores %" PRIu64 " bytes (expected %" PRIu64 " for %" PRIu64 " values of %zu bytes, uncompressed)",
			 p->path, layer, name, stored, bytes, numel, esz);
	} else if (nfilt > 0 && bytes > TL_H5_RATIO_FREE &&
		   bytes / TL_H5_MAX_RATIO > stored) {
		st = BAD("%s: %s: %s: declares %" PRIu64 " bytes compressed into %" PRIu64 " (expected at most %dx compression)",
			 p->path, layer, name, bytes, stored, TL_H5_MAX_RATIO);
	}
	if (st != TL_OK)
		goto out;
	if (lay == H5D_CHUNKED) { /* a chunk libhdf5 would allocate whole */
		hsize_t cd[H5S_MAX_RANK];
		int cn = H5Pget_chunk(dcpl, H5S_MAX_RANK, cd);
		uint64_t ce = esz;
		for (int i = 0; i < cn && ce; i++)
			if (tl_mul_ovf(ce, cd[i], &ce))
				ce = UINT64_MAX;
		if (cn < 1 || ce > bytes + (64u << 10))
			st = BAD("%s: %s: %s: chunks of %" PRIu64 " bytes (expected at most the dataset's %" PRIu64 ")",
				 p->path, layer, name, ce, bytes);
	}
	/* contiguous data must lie inside the file (a truncated download) */
	haddr_t off = lay == H5D_CONTIGUOUS ? H5Dget_offset(d) : HADDR_UNDEF;
	if (st == TL_OK && lay == H5D_CONTIGUOUS &&
	    (off == HADDR_UNDEF || off > p->size || bytes > p->size - off))
		st = BAD("%s: %s: %s: data runs past the end of the file (expected %" PRIu64 " bytes at offset %llu, the file has %" PRIu64 ": truncated?)",
			 p->path, layer, name, bytes, (unsigned long long)off, p->size);
out:
	H5Pclose(dcpl);
	return st;
}

/* Open dataset `name` under group g and record it as a var of `layer`. */
static tl_status add_var(parse *p, hid_t g, const char *layer, const char *name, tl_err *err)
{
	if (p->n == TL_H5_MAX_VARS)
		return BAD("%s: %s: more than %d weights (expected a Keras VGG16 or MobileNetV2 file)",
			   p->path, layer, TL_H5_MAX_VARS);
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		tl_h5_var *v = realloc(p->v, cap * sizeof *v);
		hid_t *d = realloc(p->dset, cap * sizeof *d);
		if (v)
			p->v = v;
		if (d)
			p->dset = d;
		if (!v || !d)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", p->path);
		p->cap = cap;
	}
	tl_h5_var *v = &p->v[p->n];
	memset(v, 0, sizeof *v);
	snprintf(v->layer, sizeof v->layer, "%s", layer);
	snprintf(v->name, sizeof v->name, "%s", name);
	int ex;
	TL_TRY(hard_path(p, g, name, layer, &ex, err));
	if (!ex)
		return BAD("%s: %s: weight %s missing (weight_names lists it)", p->path, layer, name);
	H5O_info_t oi;
	if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
		return BAD("%s: %s: weight %s is not a dataset", p->path, layer, name);
	hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
	if (d < 0)
		return BAD("%s: %s: weight %s is not a dataset", p->path, layer, name);
	p->dset[p->n++] = d; /* closed with the parse from here on */
	hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
	tl_status st = TL_OK;
	H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
	size_t esz = t >= 0 ? H5Tget_size(t) : 0;
	if (cls != H5T_FLOAT || (esz != 2 && esz != 4 && esz != 8)) {
		const char *got = cls == H5T_INTEGER ? "integer" : cls == H5T_STRING ? "string"
				  : cls == H5T_FLOAT      ? "a float of unusual size"
							  : "a non-numeric type";
		st = BAD("%s: %s: %s: not a float tensor (expected float32, got %s)", p->path, layer,
			 name, got);
		goto out;
	}
	snprintf(v->dtype, sizeof v->dtype, "f%zu", esz * 8);
	int nd = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE
			 ? H5Sget_simple_extent_ndims(sp)
			 : -1;
	if (nd < 1 || nd > TL_ST_MAX_DIMS) {
		st = BAD("%s: %s: %s: rank %d (expected 1 to %d)", p->path, layer, name, nd,
			 TL_ST_MAX_DIMS);
		goto out;
	}
	hsize_t dims[TL_ST_MAX_DIMS];
	H5Sget_simple_extent_dims(sp, dims, NULL);
	uint64_t numel = 1;
	v->ndim = nd;
	for (int i = 0; i < nd; i++) {
		v->shape[i] = (int64_t)dims[i];
		if (dims[i] > TL_H5_MAX_NUMEL || tl_mul_ovf(numel, dims[i], &numel) ||
		    numel > TL_H5_MAX_NUMEL) {
			st = BAD("%s: %s: %s: absurd size (expected at most %llu values)", p->path,
				 layer, name, (unsigned long long)TL_H5_MAX_NUMEL);
			goto out;
		}
	}
	v->numel = numel;
	if ((st = check_storage(p, d, layer, name, numel, esz, err)) != TL_OK)
		goto out;
	p->declared += numel * esz;
	if (p->declared > TL_H5_MAX_TOTAL)
		st = BAD("%s: %s: %s: the datasets so far declare %" PRIu64 " bytes (expected at most %llu in all)",
			 p->path, layer, name, p->declared, (unsigned long long)TL_H5_MAX_TOTAL);
out:
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	return st;
}

/* Open the group rel under base after checking that only hard links lead
 * to it; *g is -1 when it is not there.  part names the caller's place. */
static tl_status open_group(parse *p, hid_t base, const char *rel, const char *part, hid_t *g,
			    tl_err *err)
{
	*g = -1;
	int ex;
	TL_TRY(hard_path(p, base, rel, part, &ex, err));
	if (!ex)
		return TL_OK;
	H5O_info_t oi;
	if (H5Oget_info_by_name(base, rel, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP ||
	    (*g = H5Gopen2(base, rel, H5P_DEFAULT)) < 0)
		return BAD("%s: %s: not a group (expected a layer group)", p->path, rel);
	return TL_OK;
}

/* Keras 1/2: layer_names on base, weight_names on each layer group. */
static tl_status read_keras2(parse *p, hid_t base, tl_err *err)
{
	char(*layers)[128], (*wn)[128];
	size_t nl, nw;
	TL_TRY(read_strings(base, "layer_names", p->path, "/", &layers, &nl, err));
	tl_status st = TL_OK;
	for (size_t i = 0; i < nl && st == TL_OK; i++) {
		hid_t g = -1;
		if (layers[i][0])
			st = open_group(p, base, layers[i], layers[i], &g, err);
		if (st != TL_OK)
			break;
		if (g < 0) {
			st = BAD("%s: %s: layer group missing (layer_names lists it)", p->path,
				 layers[i]);
			break;
		}
		st = read_strings(g, "weight_names", p->path, layers[i], &wn, &nw, err);
		for (size_t k = 0; k < nw && st == TL_OK; k++) {
			if (!strcmp(p->layout, "keras2") && !strchr(wn[k], '/'))
				snprintf(p->layout, sizeof p->layout, "keras1");
			st = add_var(p, g, layers[i], wn[k], err);
		}
		free(wn);
		H5Gclose(g);
	}
	free(layers);
	return st;
}

/* Keras 3: layers/<name>/vars/0, 1, ... */
static tl_status read_keras3(parse *p, hid_t layers, tl_err *err)
{
	H5G_info_t gi;
	if (H5Gget_info(layers, &gi) < 0 || gi.nlinks > TL_H5_MAX_VARS)
		return BAD("%s: layers: unreadable group", p->path);
	tl_status st = TL_OK;
	for (hsize_t i = 0; i < gi.nlinks && st == TL_OK; i++) {
		char name[128];
		ssize_t len = H5Lget_name_by_idx(layers, ".", H5_INDEX_NAME, H5_ITER_INC, i, name,
						 sizeof name, H5P_DEFAULT);
		if (len <= 0 || (size_t)len >= sizeof name || strchr(name, '/'))
			return BAD("%s: layers: entry %llu: bad name", p->path, (unsigned long long)i);
		char vp[160];
		snprintf(vp, sizeof vp, "%s/vars", name);
		hid_t g;
		TL_TRY(open_group(p, layers, vp, name, &g, err));
		if (g < 0)
			continue; /* a layer without weights */
		H5G_info_t vi;
		if (H5Gget_info(g, &vi) < 0 || vi.nlinks > 64) {
			H5Gclose(g);
			return BAD("%s: %s: vars is not a group of weights", p->path, name);
		}
		for (hsize_t k = 0; k < vi.nlinks && st == TL_OK; k++) {
			char vn[24];
			snprintf(vn, sizeof vn, "%llu", (unsigned long long)k);
			st = add_var(p, g, name, vn, err);
		}
		H5Gclose(g);
	}
	return st;
}

/* The table under the root's group `name` (a `layout` file), read by
 * `reader`; "PATH: NAME: not a group" when it is something else. */
static tl_status read_group(parse *p, const char *name, const char *layout,
			    tl_status (*reader)(parse *, hid_t, tl_err *), tl_err *err)
{
	snprintf(p->layout, sizeof p->layout, "%s", layout);
	hid_t g;
	TL_TRY(open_group(p, p->fid, name, "/", &g, err));
	if (g < 0)
		return BAD("%s: %s: not a group", p->path, name);
	tl_status st = reader(p, g, err);
	H5Gclose(g);
	return st;
}

/* The image as the core driver's memory, never copied, freed or grown
 * (what H5LTopen_file_image does with DONT_COPY | DONT_RELEASE): each
 * request for a buffer of the image's size gets the image itself. */
typedef struct {
	const void *img;
	size_t n;
} image;

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
	image *im = udata;
	(void)op;
	return size == im->n ? (void *)im->img : NULL;
}

static void *img_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
			void *udata)
{
	image *im = udata;
	(void)op;
	/* every copy is of the image onto itself */
	return dest == im->img && src == im->img && size == im->n ? dest : NULL;
}

static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
	(void)ptr, (void)size, (void)op, (void)udata;
	return NULL; /* read-only */
}

static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
	image *im = udata;
	(void)op;
	return ptr == im->img ? 0 : -1;
}

static void *udata_copy(void *udata)
{
	return udata;
}

static herr_t udata_free(void *udata)
{
	(void)udata;
	return 0;
}

/* Open the image read-only with the core driver, no backing file. */
static hid_t open_image(const void *img, size_t n, image *im)
{
	im->img = img, im->n = n;
	H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy, img_realloc, img_free,
					  udata_copy, udata_free, im};
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid = -1;
	if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 &&
	    H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
	    H5Pset_file_image(fapl, (void *)img, n) >= 0)
		/* an absolute name: libhdf5 does not ask for the working directory */
		fid = H5Fopen("/nonexistent/tlkit-h5-image", H5F_ACC_RDONLY, fapl);
	if (fapl >= 0)
		H5Pclose(fapl);
	return fid;
}

/* Whether an HDF5 signature is at 0, 512, 1024, 2048, ... (a user block). */
static int has_signature(const unsigned char *b, size_t n)
{
	for (size_t at = 0; at + 8 <= n; at = at ? at * 2 : 512)
		if (!memcmp(b + at, "\x89HDF\r\n\x1a\n", 8))
			return 1;
	return 0;
}

tl_status tl_h5_parse_image(const void *img, size_t n, const char *path, char layout[8],
			    tl_h5_emit_fn emit, void *ctx, tl_err *err)
{
	layout[0] = 0;
	tl_h5_parse_init();
	if (!has_signature(img, n))
		return BAD("%s: not an HDF5 file (expected a Keras .h5, got no HDF5 signature)", path);
	parse p = {.path = path, .size = n, .fid = -1};
	image im;
	p.fid = open_image(img, n, &im);
	tl_status st;
	int k2 = 0, k3 = 0;
	if (p.fid < 0) {
		st = BAD("%s: /: HDF5 cannot open it: damaged, or truncated (expected a complete .h5 file, got %zu bytes)",
			 path, n);
	} else if (H5Aexists(p.fid, "layer_names") > 0) {
		snprintf(p.layout, sizeof p.layout, "keras2");
		st = read_keras2(&p, p.fid, err);
	} else if ((st = hard_path(&p, p.fid, "model_weights", "/", &k2, err)) != TL_OK) {
	} else if (k2) {
		st = read_group(&p, "model_weights", "keras2", read_keras2, err);
	} else if ((st = hard_path(&p, p.fid, "layers", "/", &k3, err)) != TL_OK) {
	} else if (k3) {
		st = read_group(&p, "layers", "keras3", read_keras3, err);
	} else {
		st = BAD("%s: /: no layer_names attribute, model_weights or layers group (expected a Keras weights file)",
			 path);
	}
	uint64_t maxn = 1;
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].numel > maxn)
			maxn = p.v[i].numel;
	float *buf = st == TL_OK ? malloc((size_t)maxn * sizeof *buf) : NULL;
	if (st == TL_OK && !buf)
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory (%" PRIu64 " values)", path, maxn);
	for (size_t i = 0; st == TL_OK && i < p.n; i++) {
		const tl_h5_var *v = &p.v[i];
		if (H5Dread(p.dset[i], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
			st = BAD("%s: %s: %s: cannot read the data (damaged or truncated file?)", path,
				 v->layer, v->name);
			break;
		}
		for (uint64_t k = 0; k < v->numel; k++)
			if (!isfinite(buf[k])) {
				st = BAD("%s: %s: %s: value %" PRIu64 " is not finite (expected finite weights, got %g)",
					 path, v->layer, v->name, k, (double)buf[k]);
				break;
			}
		if (st == TL_OK)
			st = emit(ctx, v, buf, err);
	}
	free(buf);
	for (size_t i = 0; i < p.n; i++)
		H5Dclose(p.dset[i]);
	if (p.fid >= 0)
		H5Fclose(p.fid);
	free(p.dset);
	free(p.v);
	if (st == TL_OK)
		memcpy(layout, p.layout, sizeof p.layout);
	return st;
}

#else /* no libhdf5 */

void tl_h5_parse_init(void)
{
}

tl_status tl_h5_parse_image(const void *img, size_t n, const char *path, char layout[8],
			    tl_h5_emit_fn emit, void *ctx, tl_err *err)
{
	(void)img, (void)n, (void)emit, (void)ctx;
	layout[0] = 0;
	return tl_seterr(err, TL_EUSAGE,
			 "%s: reading Keras .h5 files needs libhdf5, which this build lacks: apt-get install libhdf5-dev, then configure and build tlkit again",
			 path);
}

#endif
