/* shard.c - .tls shard reader and writer (see shard.h, man/tlshard.5). */
#define _GNU_SOURCE
#include "data/shard.h"
#include "infile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- header encoding: fixed little-endian offsets ---- */

enum {
	H_MAGIC = 0, H_VERSION = 8, H_HEADER_SIZE = 12, H_FILE_SIZE = 16, H_HEADER_HASH = 24,
	H_CHANNELS = 32, H_HEIGHT = 36, H_WIDTH = 40, H_DTYPE = 44, H_LAYOUT = 48,
	H_NORM = 52, H_ORDER = 56, H_SCALE = 60, H_MEAN = 64, H_STD = 76, H_FILTER = 88,
	H_SRC_H = 92, H_SRC_W = 96, H_LABEL_FIELDS = 100, H_CLASSES = 104, H_COARSE = 108,
	H_RECORDS = 112, H_RECORD_BYTES = 120, H_CHUNK_RECORDS = 124, H_CHUNKS = 128,
	H_IMAGE_OFF = 136, H_IMAGE_SIZE = 144, H_LABEL_OFF = 152, H_LABEL_SIZE = 160,
	H_LABEL_HASH = 168, H_CT_OFF = 176, H_CT_HASH = 184, H_SRC_SIZE = 192,
	H_SRC_HASH = 200, H_SPLITS = 208, H_SEGMENTS = 212, H_NAMES_OFF = 216,
	H_NAMES_SIZE = 220, H_SRC_NAME = 224, H_DATASET = 480, H_SPLIT_TABLE = 512,
	SPLIT_ENTRY = 32, H_SEGMENT_TABLE = 768, SEGMENT_ENTRY = 72, H_NAMES = 4096,
	/* version 2: after the segment table (768 + 32 * 72 = 3072) */
	H_FIT = 3072, H_TEST_FRACTION = 3080, H_TEST_SEED = 3088,
	H_RNAME_OFF = 3096, H_RNAME_SIZE = 3104, H_RNAME_HASH = 3112,
	/* version 3: the class-name section */
	H_CNAME_OFF = 3120, H_CNAME_SIZE = 3128, H_CNAME_HASH = 3136
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void putf(uint8_t *p, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	put32(p, v);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}
static float getf(const uint8_t *p)
{
	uint32_t v = get32(p);
	float f;
	memcpy(&f, &v, 4);
	return f;
}
/* Copy a fixed-size string field; 0 if it is NUL-terminated inside it. */
static int getstr(char *dst, const uint8_t *p, size_t n)
{
	if (!memchr(p, 0, n))
		return -1;
	memcpy(dst, p, n);
	return 0;
}

const char *tl_shard_name_problem(const char *s, size_t len)
{
	if (len == 0)
		return "empty";
	if (len >= TL_SHARD_NAME_MAX)
		return "too long";
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	while (p < end) {
		uint32_t c = *p++;
		int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
			 : (c & 0xf8) == 0xf0 ? 3 : -1;
		if (more < 0 || end - p < more)
			return "not valid UTF-8";
		c &= more ? 0x3fu >> more : 0x7fu;
		for (int i = 0; i < more; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return "not valid UTF-8";
			c = c << 6 | (*p & 0x3fu);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
		if (c < min[more] || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
			return "not valid UTF-8";
		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return "has a control character";
	}
	return NULL;
}

/* The n + nc names as one allocation: the pointer table, then copies of
 * the strings.  NULL when out of memory. */
static char **names_block(const char *const *a, uint32_t n, const char *const *b, uint32_t nc)
{
	size_t bytes = 0;
	for (uint32_t i = 0; i < n + nc; i++)
		bytes += strlen(i < n ? a[i] : b[i - n]) + 1;
	char **t = tl_malloc(((size_t)n + nc) * sizeof *t + bytes + 1);
	if (!t)
		return NULL;
	char *q = (char *)(t + n + nc);
	for (uint32_t i = 0; i < n + nc; i++) {
		const char *src = i < n ? a[i] : b[i - n];
		size_t l = strlen(src) + 1;
		memcpy(q, src, l);
		t[i] = q;
		q += l;
	}
	return t;
}

static uint64_t header_hash(const uint8_t *h, uint32_t size)
{
	XXH3_state_t *s = XXH3_createState();
	static const uint8_t zero[8];
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, h, H_HEADER_HASH);
	XXH3_64bits_update(s, zero, 8);
	XXH3_64bits_update(s, h + H_HEADER_HASH + 8, size - H_HEADER_HASH - 8);
	uint64_t v = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	return v;
}

/* Serialize info into h[0, header_size); names must fit (checked by caller). */
static void encode_header(const tl_shard_info *in, uint8_t *h)
{
	memset(h, 0, in->header_size);
	memcpy(h + H_MAGIC, TL_SHARD_MAGIC, 8);
	put32(h + H_VERSION, in->version);
	if (in->version >= 2) {
		double f = in->test_fraction;
		uint64_t fb;
		memcpy(&fb, &f, 8);
		put32(h + H_FIT, in->fit);
		put64(h + H_RNAME_OFF, in->rname_offset);
		put64(h + H_RNAME_SIZE, in->rname_size);
		put64(h + H_RNAME_HASH, in->rname_hash);
		put64(h + H_TEST_FRACTION, fb);
		put64(h + H_TEST_SEED, in->test_seed);
	}
	if (in->version >= 3) {
		put64(h + H_CNAME_OFF, in->cname_offset);
		put64(h + H_CNAME_SIZE, in->cname_size);
		put64(h + H_CNAME_HASH, in->cname_hash);
	}
	put32(h + H_HEADER_SIZE, in->header_size);
	put64(h + H_FILE_SIZE, in->file_size);
	put32(h + H_CHANNELS, in->channels);
	put32(h + H_HEIGHT, in->height);
	put32(h + H_WIDTH, in->width);
	put32(h + H_DTYPE, in->dtype);
	put32(h + H_LAYOUT, in->layout);
	put32(h + H_NORM, in->norm.kind);
	put32(h + H_ORDER, (uint32_t)in->norm.bgr);
	putf(h + H_SCALE, in->norm.scale);
	for (int c = 0; c < 3; c++) {
		putf(h + H_MEAN + 4 * c, in->norm.mean[c]);
		putf(h + H_STD + 4 * c, in->norm.std[c]);
	}
	put32(h + H_FILTER, in->filter);
	put32(h + H_SRC_H, in->src_height);
	put32(h + H_SRC_W, in->src_width);
	put32(h + H_LABEL_FIELDS, in->n_label_fields);
	put32(h + H_CLASSES, in->n_classes);
	put32(h + H_COARSE, in->n_coarse);
	put64(h + H_RECORDS, in->n_records);
	put32(h + H_RECORD_BYTES, in->record_bytes);
	put32(h + H_CHUNK_RECORDS, in->chunk_records);
	put64(h + H_CHUNKS, in->n_chunks);
	put64(h + H_IMAGE_OFF, in->image_offset);
	put64(h + H_IMAGE_SIZE, in->image_size);
	put64(h + H_LABEL_OFF, in->label_offset);
	put64(h + H_LABEL_SIZE, in->label_size);
	put64(h + H_LABEL_HASH, in->label_hash);
	put64(h + H_CT_OFF, in->chunk_table_offset);
	put64(h + H_CT_HASH, in->chunk_table_hash);
	put64(h + H_SRC_SIZE, in->source_size);
	put64(h + H_SRC_HASH, in->source_hash);
	put32(h + H_SPLITS, in->n_splits);
	put32(h + H_SEGMENTS, in->n_segments);
	memcpy(h + H_SRC_NAME, in->source_name, sizeof in->source_name);
	h[H_SRC_NAME + sizeof in->source_name - 1] = 0;
	memcpy(h + H_DATASET, in->dataset, sizeof in->dataset);
	h[H_DATASET + sizeof in->dataset - 1] = 0;
	for (uint32_t i = 0; i < in->n_splits; i++) {
		uint8_t *e = h + H_SPLIT_TABLE + i * SPLIT_ENTRY;
		memcpy(e, in->splits[i].name, 24);
		e[23] = 0;
		put64(e + 24, in->splits[i].count);
	}
	for (uint32_t i = 0; i < in->n_segments; i++) {
		const tl_shard_segment *g = &in->segments[i];
		uint8_t *e = h + H_SEGMENT_TABLE + i * SEGMENT_ENTRY;
		memcpy(e, g->member, 40);
		e[39] = 0;
		put32(e + 40, g->split);
		put32(e + 44, g->order);
		put64(e + 48, g->first);
		put64(e + 56, g->count);
		put64(e + 64, g->split_first);
	}
	if (in->version < 3) { /* version 3: names in their section, offset and size 0 */
		size_t nb = (size_t)(in->n_classes + in->n_coarse) * sizeof(char *);
		const char *names = (const char *)in->class_names + nb; /* names_block's strings */
		size_t n = 0;
		for (uint32_t i = 0; i < in->n_classes + in->n_coarse; i++)
			n += strlen(names + n) + 1;
		memcpy(h + H_NAMES, names, n);
		put32(h + H_NAMES_OFF, H_NAMES);
		put32(h + H_NAMES_SIZE, (uint32_t)n);
	}
	put64(h + H_HEADER_HASH, header_hash(h, in->header_size));
}

/* Bytes of all class and coarse names with their NULs; *longest: the
 * longest name's length. */
static size_t names_bytes(const tl_shard_info *in, size_t *longest)
{
	size_t n = 0;
	*longest = 0;
	for (uint32_t i = 0; i < in->n_classes + in->n_coarse; i++) {
		size_t l = strlen(in->class_names[i]);
		*longest = l > *longest ? l : *longest;
		n += l + 1;
	}
	return n;
}

#define BAD(...) tl_seterr(err, TL_EFORMAT, __VA_ARGS__)

/* The envelope: size, magic, version, header size and checksum, and the
 * file size the header records against the real one (fsize).  Nothing
 * past the fixed fields is read before this passes. */
static tl_status decode_envelope(const char *path, const uint8_t *m, uint64_t fsize,
				 tl_shard_info *o, tl_err *err)
{
	if (fsize < H_NAMES)
		return BAD("%s: header: truncated (expected at least %d bytes, got %llu)", path,
			   H_NAMES, (unsigned long long)fsize);
	if (memcmp(m, TL_SHARD_MAGIC, 8) != 0) {
		char shown[8 * 4 + 1]; /* printable bytes as-is, others as \xHH */
		size_t k = 0;
		for (int i = 0; i < 8; i++)
			k += (size_t)snprintf(shown + k, sizeof shown - k,
					      m[i] >= 0x20 && m[i] < 0x7f && m[i] != '\\' ? "%c" : "\\x%02x",
					      m[i]);
		return BAD("%s: header: not a tlkit shard (expected magic \"%s\", got \"%s\")", path,
			   TL_SHARD_MAGIC, shown);
	}
	o->version = get32(m + H_VERSION);
	if (o->version < TL_SHARD_VERSION_MIN || o->version > TL_SHARD_VERSION)
		return BAD("%s: header: unsupported version (expected %d..%d, got %u)", path,
			   TL_SHARD_VERSION_MIN, TL_SHARD_VERSION, o->version);
	o->header_size = get32(m + H_HEADER_SIZE);
	if (o->header_size < H_NAMES || o->header_size > (1u << 20) ||
	    o->header_size % TL_SHARD_ALIGN)
		return BAD("%s: header: bad header size (expected a multiple of %d in [%d, 1 MiB], got %u)",
			   path, TL_SHARD_ALIGN, H_NAMES, o->header_size);
	if (o->header_size > fsize)
		return BAD("%s: header: truncated (expected %u header bytes, file has %llu)", path,
			   o->header_size, (unsigned long long)fsize);
	o->header_hash = get64(m + H_HEADER_HASH);
	uint64_t hh = header_hash(m, o->header_size);
	if (hh != o->header_hash)
		return tl_seterr(err, TL_ECHECKSUM,
				 "%s: header: checksum mismatch (expected %016llx, got %016llx)",
				 path, (unsigned long long)o->header_hash, (unsigned long long)hh);
	o->file_size = get64(m + H_FILE_SIZE);
	if (o->file_size != fsize)
		return BAD("%s: file size does not match header (expected %llu bytes, got %llu)%s",
			   path, (unsigned long long)o->file_size, (unsigned long long)fsize,
			   fsize < o->file_size ? ": truncated" : "");
	return TL_OK;
}

/* Image shape, dtype, normalization and resize filter: known codes,
 * non-zero scale and std. */
static tl_status decode_image(const char *path, const uint8_t *m, tl_shard_info *o,
			      tl_err *err)
{
	o->channels = get32(m + H_CHANNELS);
	o->height = get32(m + H_HEIGHT);
	o->width = get32(m + H_WIDTH);
	uint32_t dt = get32(m + H_DTYPE), nk = get32(m + H_NORM), fl = get32(m + H_FILTER);
	o->layout = get32(m + H_LAYOUT);
	if (o->channels != 3 || o->height < 1 || o->height > 4096 || o->width < 1 ||
	    o->width > 4096)
		return BAD("%s: header: bad image shape (expected 3 x 1..4096 x 1..4096, got %u x %u x %u)",
			   path, o->channels, o->height, o->width);
	if (dt > TL_DTYPE_F32 || nk > TL_NORM_TF || fl > TL_FILTER_NEAREST || o->layout != 0)
		return BAD("%s: header: unknown dtype/normalization/filter/layout code (%u/%u/%u/%u)",
			   path, dt, nk, fl, o->layout);
	o->dtype = (tl_dtype)dt;
	o->filter = (tl_filter)fl;
	o->norm.kind = (tl_norm_kind)nk;
	o->norm.bgr = get32(m + H_ORDER) != 0;
	o->norm.scale = getf(m + H_SCALE);
	for (int c = 0; c < 3; c++) {
		o->norm.mean[c] = getf(m + H_MEAN + 4 * c);
		o->norm.std[c] = getf(m + H_STD + 4 * c);
		if (!(o->norm.std[c] != 0))
			return BAD("%s: header: normalization std[%d] is %g (expected non-zero)",
				   path, c, o->norm.std[c]);
	}
	if (!(o->norm.scale != 0))
		return BAD("%s: header: normalization scale is 0 (expected non-zero)", path);
	return TL_OK;
}

/* Label fields and class counts: 1 field with no coarse classes, or 2
 * with some; both counts within TL_SHARD_MAX_CLASSES. */
static tl_status decode_labels(const char *path, const uint8_t *m, tl_shard_info *o,
			       tl_err *err)
{
	o->src_height = get32(m + H_SRC_H);
	o->src_width = get32(m + H_SRC_W);
	o->n_label_fields = get32(m + H_LABEL_FIELDS);
	o->n_classes = get32(m + H_CLASSES);
	o->n_coarse = get32(m + H_COARSE);
	o->label_bytes = o->version >= 3 ? 2 : 1;
	uint32_t most = o->version >= 3 ? TL_SHARD_MAX_CLASSES : TL_SHARD_V2_MAX_CLASSES;
	if (o->n_label_fields < 1 || o->n_label_fields > 2 || o->n_classes < 1 ||
	    o->n_classes > most || o->n_coarse > most ||
	    (o->n_label_fields == 2) != (o->n_coarse > 0))
		return BAD("%s: header: bad label description (label fields %u, classes %u, coarse classes %u; version %u allows 1..%u classes)",
			   path, o->n_label_fields, o->n_classes, o->n_coarse, o->version, most);
	return TL_OK;
}

/* Record and chunk geometry and the three sections: images, labels and
 * the chunk table each fit, aligned, in that order, the table ending the
 * file (fsize).  Needs the image shape and label fields decoded. */
static tl_status decode_sections(const char *path, const uint8_t *m, uint64_t fsize,
				 tl_shard_info *o, tl_err *err)
{
	o->n_records = get64(m + H_RECORDS);
	o->record_bytes = get32(m + H_RECORD_BYTES);
	o->chunk_records = get32(m + H_CHUNK_RECORDS);
	o->n_chunks = get64(m + H_CHUNKS);
	o->image_offset = get64(m + H_IMAGE_OFF);
	o->image_size = get64(m + H_IMAGE_SIZE);
	o->label_offset = get64(m + H_LABEL_OFF);
	o->label_size = get64(m + H_LABEL_SIZE);
	o->label_hash = get64(m + H_LABEL_HASH);
	o->chunk_table_offset = get64(m + H_CT_OFF);
	o->chunk_table_hash = get64(m + H_CT_HASH);
	o->source_size = get64(m + H_SRC_SIZE);
	o->source_hash = get64(m + H_SRC_HASH);
	if (o->version >= 2) {
		o->rname_offset = get64(m + H_RNAME_OFF);
		o->rname_size = get64(m + H_RNAME_SIZE);
		o->rname_hash = get64(m + H_RNAME_HASH);
	}
	if (o->version >= 3) {
		o->cname_offset = get64(m + H_CNAME_OFF);
		o->cname_size = get64(m + H_CNAME_SIZE);
		o->cname_hash = get64(m + H_CNAME_HASH);
	}

	uint64_t pix = (uint64_t)o->channels * o->height * o->width * tl_dtype_size(o->dtype);
	if (o->record_bytes < pix || o->record_bytes % TL_SHARD_RECORD_ALIGN)
		return BAD("%s: header: bad record size (expected a multiple of %d >= %llu, got %u)",
			   path, TL_SHARD_RECORD_ALIGN, (unsigned long long)pix, o->record_bytes);
	if (o->chunk_records < 1)
		return BAD("%s: header: chunk of 0 records", path);
	if (o->n_chunks != (o->n_records + o->chunk_records - 1) / o->chunk_records)
		return BAD("%s: header: chunk count (expected %llu for %llu records, got %llu)", path,
			   (unsigned long long)((o->n_records + o->chunk_records - 1) / o->chunk_records),
			   (unsigned long long)o->n_records, (unsigned long long)o->n_chunks);
	uint64_t isz, iend, lsz, lend, ctsz, ctend;
	if (tl_mul_ovf(o->n_records, o->record_bytes, &isz) || isz != o->image_size ||
	    o->image_offset < o->header_size || o->image_offset % TL_SHARD_ALIGN ||
	    tl_add_ovf(o->image_offset, isz, &iend) || iend > o->label_offset)
		return BAD("%s: header: image section [%llu, +%llu) does not fit (records %llu x %u bytes, labels at %llu)",
			   path, (unsigned long long)o->image_offset,
			   (unsigned long long)o->image_size, (unsigned long long)o->n_records,
			   o->record_bytes, (unsigned long long)o->label_offset);
	/* labels, then (optional) record names, then (version 3) class names */
	uint64_t after_rnames = o->version >= 3 ? o->cname_offset : o->chunk_table_offset;
	uint64_t after_labels = o->rname_size ? o->rname_offset : after_rnames;
	if (tl_mul_ovf(o->n_records, (uint64_t)o->n_label_fields * o->label_bytes, &lsz) ||
	    lsz != o->label_size ||
	    o->label_offset % TL_SHARD_ALIGN || tl_add_ovf(o->label_offset, lsz, &lend) ||
	    lend > after_labels)
		return BAD("%s: header: label section [%llu, +%llu) does not fit before the next section at %llu",
			   path, (unsigned long long)o->label_offset,
			   (unsigned long long)o->label_size, (unsigned long long)after_labels);
	uint64_t rmin, rend = 0;
	if (o->rname_size &&
	    (tl_add_ovf(o->n_records, 1, &rmin) || tl_mul_ovf(rmin, 8, &rmin) ||
	     o->rname_size < rmin + o->n_records || o->rname_offset % TL_SHARD_ALIGN ||
	     tl_add_ovf(o->rname_offset, o->rname_size, &rend) || rend > after_rnames))
		return BAD("%s: header: record-name section [%llu, +%llu) does not fit before the next section at %llu (expected at least %llu bytes)",
			   path, (unsigned long long)o->rname_offset,
			   (unsigned long long)o->rname_size, (unsigned long long)after_rnames,
			   (unsigned long long)(8 * (o->n_records + 1) + o->n_records));
	if (!o->rname_size && o->rname_offset)
		return BAD("%s: header: record-name section at %llu of 0 bytes (expected offset 0)",
			   path, (unsigned long long)o->rname_offset);
	uint64_t cend, cmin = 2 * ((uint64_t)o->n_classes + o->n_coarse);
	if (o->version >= 3 &&
	    (o->cname_size < cmin || o->cname_offset % TL_SHARD_ALIGN ||
	     tl_add_ovf(o->cname_offset, o->cname_size, &cend) || cend > o->chunk_table_offset))
		return BAD("%s: header: class-name section [%llu, +%llu) does not fit before the chunk table at %llu (expected at least %llu bytes)",
			   path, (unsigned long long)o->cname_offset, (unsigned long long)o->cname_size,
			   (unsigned long long)o->chunk_table_offset, (unsigned long long)cmin);
	if (tl_mul_ovf(o->n_chunks, 8, &ctsz) || o->chunk_table_offset % TL_SHARD_ALIGN ||
	    tl_add_ovf(o->chunk_table_offset, ctsz, &ctend) || ctend != fsize)
		return BAD("%s: header: chunk table [%llu, +%llu) does not end the file (file has %llu bytes)",
			   path, (unsigned long long)o->chunk_table_offset,
			   (unsigned long long)ctsz, (unsigned long long)fsize);
	return TL_OK;
}

/* Source and dataset names, the split table (counts adding up to the
 * records) and the segment table (each segment inside its split and the
 * records; per split and in all, segments hold every record once). */
static tl_status decode_splits(const char *path, const uint8_t *m, tl_shard_info *o,
			       tl_err *err)
{
	if (getstr(o->source_name, m + H_SRC_NAME, sizeof o->source_name) ||
	    getstr(o->dataset, m + H_DATASET, sizeof o->dataset))
		return BAD("%s: header: unterminated source or dataset name", path);
	o->n_splits = get32(m + H_SPLITS);
	o->n_segments = get32(m + H_SEGMENTS);
	if (o->n_splits > TL_SHARD_MAX_SPLITS || o->n_segments > TL_SHARD_MAX_SEGMENTS)
		return BAD("%s: header: too many splits or segments (%u, %u; at most %d, %d)", path,
			   o->n_splits, o->n_segments, TL_SHARD_MAX_SPLITS, TL_SHARD_MAX_SEGMENTS);
	uint64_t total = 0;
	for (uint32_t i = 0; i < o->n_splits; i++) {
		const uint8_t *e = m + H_SPLIT_TABLE + i * SPLIT_ENTRY;
		if (getstr(o->splits[i].name, e, 24) || !o->splits[i].name[0])
			return BAD("%s: header: split %u has a bad name", path, i);
		o->splits[i].count = get64(e + 24);
		if (tl_add_ovf(total, o->splits[i].count, &total))
			return BAD("%s: header: split counts overflow", path);
	}
	if (total != o->n_records)
		return BAD("%s: header: split counts add up to %llu (expected %llu records)", path,
			   (unsigned long long)total, (unsigned long long)o->n_records);
	uint64_t seen[TL_SHARD_MAX_SPLITS] = {0}, seg_total = 0;
	for (uint32_t i = 0; i < o->n_segments; i++) {
		tl_shard_segment *g = &o->segments[i];
		const uint8_t *e = m + H_SEGMENT_TABLE + i * SEGMENT_ENTRY;
		uint64_t end, send;
		if (getstr(g->member, e, 40))
			return BAD("%s: header: segment %u has an unterminated member name", path, i);
		g->split = get32(e + 40);
		g->order = get32(e + 44);
		g->first = get64(e + 48);
		g->count = get64(e + 56);
		g->split_first = get64(e + 64);
		if (g->split >= o->n_splits || tl_add_ovf(g->first, g->count, &end) ||
		    end > o->n_records || tl_add_ovf(g->split_first, g->count, &send) ||
		    send > o->splits[g->split].count)
			return BAD("%s: header: segment %u (%s) points outside its split or the records",
				   path, i, g->member);
		seen[g->split] += g->count;
		seg_total += g->count;
	}
	for (uint32_t i = 0; i < o->n_splits; i++)
		if (seen[i] != o->splits[i].count)
			return BAD("%s: header: segments of split %s hold %llu records (expected %llu)",
				   path, o->splits[i].name, (unsigned long long)seen[i],
				   (unsigned long long)o->splits[i].count);
	if (seg_total != o->n_records)
		return BAD("%s: header: segments hold %llu records (expected %llu)", path,
			   (unsigned long long)seg_total, (unsigned long long)o->n_records);
	/* the counts add up; no two segments may share file records or split
	 * indices either, so together they map each record exactly once */
	for (uint32_t i = 0; i < o->n_segments; i++)
		for (uint32_t j = i + 1; j < o->n_segments; j++) {
			const tl_shard_segment *a = &o->segments[i], *b = &o->segments[j];
			if (!a->count || !b->count)
				continue;
			if (a->first < b->first + b->count && b->first < a->first + a->count)
				return BAD("%s: header: segments %u (%s) and %u (%s) overlap in the file (records %llu..%llu and %llu..%llu)",
					   path, i, a->member, j, b->member,
					   (unsigned long long)a->first,
					   (unsigned long long)(a->first + a->count - 1),
					   (unsigned long long)b->first,
					   (unsigned long long)(b->first + b->count - 1));
			if (a->split == b->split && a->split_first < b->split_first + b->count &&
			    b->split_first < a->split_first + a->count)
				return BAD("%s: header: segments %u (%s) and %u (%s) overlap in split %s",
					   path, i, a->member, j, b->member, o->splits[a->split].name);
		}
	if (o->n_records == 0)
		return BAD("%s: header: the shard holds no records", path);
	for (uint32_t i = 0; i < o->n_splits; i++)
		if (o->splits[i].count == 0)
			return BAD("%s: header: split %s holds no records", path, o->splits[i].name);
	return TL_OK;
}

/* The class (then coarse class) names, NUL-terminated, copied into
 * o->class_names (names_block's form).  Versions 1 and 2: in the header's
 * names area, 1..31 bytes each.  Version 3: the class-name section, after
 * its checksum matched; each name passes tl_shard_name_problem and the
 * names fill the section exactly. */
static tl_status decode_names(const char *path, const uint8_t *m, tl_shard_info *o,
			      tl_err *err)
{
	const char *what = o->version >= 3 ? "class names" : "header";
	uint64_t noff, nsz, nend;
	size_t maxlen = TL_SHARD_V2_NAME_MAX - 1;
	if (o->version >= 3) {
		noff = o->cname_offset, nsz = o->cname_size, maxlen = TL_SHARD_NAME_MAX - 1;
		uint64_t h = XXH3_64bits(m + noff, o->chunk_table_offset - noff);
		if (h != o->cname_hash)
			return tl_seterr(err, TL_ECHECKSUM,
					 "%s: class names: checksum mismatch (expected %016llx, got %016llx)",
					 path, (unsigned long long)o->cname_hash, (unsigned long long)h);
	} else {
		noff = get32(m + H_NAMES_OFF), nsz = get32(m + H_NAMES_SIZE);
		if (noff < H_NAMES || tl_add_ovf(noff, nsz, &nend) || nend > o->header_size)
			return BAD("%s: header: class names [%llu, +%llu) outside the header", path,
				   (unsigned long long)noff, (unsigned long long)nsz);
	}
	uint32_t n = o->n_classes + o->n_coarse;
	char **t = tl_malloc((size_t)n * sizeof *t + (size_t)nsz + 1);
	if (!t)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for %u class names", path, n);
	o->class_names = t; /* tl_shard_close frees it, whatever happens below */
	o->coarse_names = o->n_coarse ? t + o->n_classes : NULL;
	char *p = (char *)(t + n), *pend = p + nsz;
	memcpy(p, m + noff, (size_t)nsz);
	for (uint32_t i = 0; i < n; i++) {
		char *z = memchr(p, 0, (size_t)(pend - p));
		if (!z || z == p || (size_t)(z - p) > maxlen)
			return BAD("%s: %s: class name %u missing, empty or too long (expected 1..%zu bytes)",
				   path, what, i, maxlen);
		const char *why = o->version >= 3 ? tl_shard_name_problem(p, (size_t)(z - p)) : NULL;
		if (why)
			return BAD("%s: class names: class name %u: %s", path, i, why);
		t[i] = p;
		p = z + 1;
	}
	if (o->version >= 3 && p != pend)
		return BAD("%s: class names: names end at byte %llu of the section (expected its end, %llu)",
			   path, (unsigned long long)(p - (char *)(t + n)), (unsigned long long)nsz);
	return TL_OK;
}

/* Version 2: the fit code and the held-out test fraction (0 or in
 * (0, 1)) and seed; version 1 has none (all 0). */
static tl_status decode_fit(const char *path, const uint8_t *m, tl_shard_info *o, tl_err *err)
{
	if (o->version < 2)
		return TL_OK;
	o->fit = get32(m + H_FIT);
	uint64_t fb = get64(m + H_TEST_FRACTION);
	memcpy(&o->test_fraction, &fb, 8);
	o->test_seed = get64(m + H_TEST_SEED);
	if (o->fit > 3 || !(o->test_fraction >= 0 && o->test_fraction < 1))
		return BAD("%s: header: bad fit or test fraction (expected fit 0..3 and 0 <= fraction < 1, got %u and %g)",
			   path, o->fit, o->test_fraction);
	return TL_OK;
}

/* Parse and check a header against the real file size.  Every size is
 * validated before any other section is touched; the first failing check
 * names what is wrong. */
static tl_status decode_header(const char *path, const uint8_t *m, uint64_t fsize,
			       tl_shard_info *o, tl_err *err)
{
	memset(o, 0, sizeof *o);
	TL_TRY(decode_envelope(path, m, fsize, o, err));
	TL_TRY(decode_image(path, m, o, err));
	TL_TRY(decode_labels(path, m, o, err));
	TL_TRY(decode_sections(path, m, fsize, o, err));
	TL_TRY(decode_splits(path, m, o, err));
	TL_TRY(decode_fit(path, m, o, err));
	return decode_names(path, m, o, err);
}

/* ---- reading the mapping safely ----
 * A shard truncated (or replaced by a shorter file) while it is mapped
 * turns reads of the lost pages into SIGBUS.  Mapped reads run under a
 * per-thread sigsetjmp guard: the SIGBUS handler jumps back to the guard
 * and the read reports "truncated while in use".  A SIGBUS outside any
 * guard goes to the previous disposition (default: the process dies). */

static _Thread_local sigjmp_buf *bus_env;
static struct sigaction bus_prev;

static void bus_handler(int sig, siginfo_t *si, void *ctx)
{
	if (bus_env)
		siglongjmp(*bus_env, 1);
	if ((bus_prev.sa_flags & SA_SIGINFO) && bus_prev.sa_sigaction) {
		bus_prev.sa_sigaction(sig, si, ctx);
		return;
	}
	if (bus_prev.sa_handler != SIG_DFL && bus_prev.sa_handler != SIG_IGN) {
		bus_prev.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

/* Make bus_handler the SIGBUS handler, keeping whatever was there (a
 * test harness or another library may have installed one since). */
static void bus_install(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct sigaction cur, sa;
	pthread_mutex_lock(&lock);
	if (sigaction(SIGBUS, NULL, &cur) != 0 ||
	    ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == bus_handler)) {
		pthread_mutex_unlock(&lock);
		return;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = bus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_prev);
	pthread_mutex_unlock(&lock);
}

static tl_status truncated_in_use(const tl_shard *sh, tl_err *err)
{
	struct stat sb;
	unsigned long long now = fstat(sh->fd, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
	return tl_seterr(err, TL_EIO, "%s: truncated while in use (expected %llu bytes, found %llu)",
			 sh->path, (unsigned long long)sh->size, now);
}

/* The file still has the size it had when mapped (one fstat). */
static tl_status check_size(const tl_shard *sh, tl_err *err)
{
	struct stat sb;
	if (fstat(sh->fd, &sb) != 0)
		return tl_seterr(err, TL_EIO, "%s: cannot stat shard: %s", sh->path,
				 strerror(errno));
	if ((uint64_t)sb.st_size < sh->size)
		return truncated_in_use(sh, err);
	return TL_OK;
}

/* Read the stored hash at h and hash n bytes at p, both in the mapping;
 * 1 if the pages went away (SIGBUS). */
static int guarded_hash(const uint8_t *p, uint64_t n, const uint8_t *h, uint64_t *want,
			uint64_t *out)
{
	sigjmp_buf env, *prev = bus_env;
	if (sigsetjmp(env, 0)) {
		bus_env = prev;
		return 1;
	}
	bus_env = &env;
	*want = get64(h);
	*out = XXH3_64bits(p, n);
	bus_env = prev;
	return 0;
}

/* Convert one mapped record to float; 1 if its pages went away. */
static int guarded_to_f32(const tl_shard *sh, const void *rec, float *dst)
{
	sigjmp_buf env, *prev = bus_env;
	if (sigsetjmp(env, 0)) {
		bus_env = prev;
		return 1;
	}
	bus_env = &env;
	tl_image_to_f32(rec, sh->info.dtype, &sh->info.norm,
			(size_t)sh->info.height * sh->info.width, dst);
	bus_env = prev;
	return 0;
}

/* Everything tl_shard_open checks in the mapping: header, label and
 * chunk-table checksums, label ranges. */
static tl_status open_checks(tl_shard *sh, tl_err *err)
{
	TL_TRY(decode_header(sh->path, sh->map, sh->size, &sh->info, err));
	const tl_shard_info *in = &sh->info;
	uint64_t after_rnames = in->version >= 3 ? in->cname_offset : in->chunk_table_offset;
	uint64_t lend = in->rname_size ? in->rname_offset : after_rnames;
	uint64_t h = XXH3_64bits(sh->map + in->label_offset, lend - in->label_offset);
	if (h != in->label_hash) {
		return tl_seterr(err, TL_ECHECKSUM,
				 "%s: labels: checksum mismatch (expected %016llx, got %016llx)",
				 sh->path, (unsigned long long)in->label_hash, (unsigned long long)h);
	}
	h = XXH3_64bits(sh->map + in->chunk_table_offset, in->n_chunks * 8);
	if (h != in->chunk_table_hash) {
		return tl_seterr(err, TL_ECHECKSUM,
				 "%s: chunk table: checksum mismatch (expected %016llx, got %016llx)",
				 sh->path, (unsigned long long)in->chunk_table_hash,
				 (unsigned long long)h);
	}
	if (in->rname_size) {
		const uint8_t *sec = sh->map + in->rname_offset;
		h = XXH3_64bits(sec, after_rnames - in->rname_offset);
		if (h != in->rname_hash)
			return tl_seterr(err, TL_ECHECKSUM,
					 "%s: record names: checksum mismatch (expected %016llx, got %016llx)",
					 sh->path, (unsigned long long)in->rname_hash,
					 (unsigned long long)h);
		/* offsets: the first right after the table, each name at least
		 * its NUL, the last ending the section, every name ending in NUL */
		uint64_t prev = get64(sec);
		if (prev != 8 * (in->n_records + 1))
			return BAD("%s: record names: first name at %llu (expected %llu)", sh->path,
				   (unsigned long long)prev,
				   (unsigned long long)(8 * (in->n_records + 1)));
		for (uint64_t r = 0; r < in->n_records; r++) {
			uint64_t e = get64(sec + 8 * (r + 1));
			if (e <= prev || e > in->rname_size || sec[e - 1] != 0)
				return BAD("%s: record names: name of record %llu at [%llu, %llu) is not a NUL-terminated string inside the section (%llu bytes)",
					   sh->path, (unsigned long long)r, (unsigned long long)prev,
					   (unsigned long long)e, (unsigned long long)in->rname_size);
			prev = e;
		}
		if (prev != in->rname_size)
			return BAD("%s: record names: names end at %llu (expected the section's end, %llu)",
				   sh->path, (unsigned long long)prev,
				   (unsigned long long)in->rname_size);
	}
	for (uint64_t r = 0; r < in->n_records; r++)
		for (uint32_t f = 0; f < in->n_label_fields; f++) {
			uint32_t lim = f == 0 ? in->n_classes : in->n_coarse;
			if (tl_shard_label(sh, r, (int)f) >= lim) {
				return BAD("%s: labels: record %llu has label %u (expected < %u)",
					   sh->path, (unsigned long long)r,
					   tl_shard_label(sh, r, (int)f), lim);
			}
		}
	return TL_OK;
}

static tl_status guarded_open_checks(tl_shard *sh, tl_err *err)
{
	sigjmp_buf env, *prev = bus_env;
	if (sigsetjmp(env, 0)) {
		bus_env = prev;
		return truncated_in_use(sh, err);
	}
	bus_env = &env;
	tl_status st = open_checks(sh, err);
	bus_env = prev;
	return st;
}

tl_status tl_shard_open(tl_shard **out, const char *path, tl_err *err)
{
	*out = NULL;
	tl_shard *sh = tl_calloc(1, sizeof *sh);
	if (!sh || !(sh->path = strdup(path))) {
		free(sh);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	sh->fd = -1;
	tl_status st = TL_OK;
	struct stat sb;
	sh->fd = tl_open_input(path, &sb, err);
	if (sh->fd < 0) {
		st = TL_EIO;
		goto fail;
	}
	sh->size = (uint64_t)sb.st_size;
	if (sh->size == 0) {
		st = BAD("%s: empty file (expected a tlkit shard)", path);
		goto fail;
	}
	void *m = mmap(NULL, sh->size, PROT_READ, MAP_SHARED, sh->fd, 0);
	if (m == MAP_FAILED) {
		st = tl_seterr(err, TL_EIO, "%s: cannot map shard: %s", path, strerror(errno));
		goto fail;
	}
	sh->map = m;
	bus_install();
	if ((st = guarded_open_checks(sh, err)) != TL_OK)
		goto fail;
	const tl_shard_info *in = &sh->info;
	sh->chunk_hash = (const uint64_t *)(sh->map + in->chunk_table_offset);
	sh->chunk_ok = tl_calloc(in->n_chunks ? in->n_chunks : 1, sizeof *sh->chunk_ok);
	if (!sh->chunk_ok) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	*out = sh;
	return TL_OK;
fail:
	tl_shard_close(sh);
	return st;
}

void tl_shard_close(tl_shard *sh)
{
	if (!sh)
		return;
	if (sh->map)
		munmap((void *)sh->map, sh->size);
	if (sh->fd >= 0)
		close(sh->fd);
	free(sh->chunk_ok);
	free(sh->info.class_names);
	free(sh->path);
	free(sh);
}

int tl_shard_split_find(const tl_shard *sh, const char *name)
{
	for (uint32_t i = 0; i < sh->info.n_splits; i++)
		if (strcmp(sh->info.splits[i].name, name) == 0)
			return (int)i;
	return -1;
}

uint64_t tl_shard_file_record(const tl_shard *sh, int s, uint64_t i)
{
	const tl_shard_info *in = &sh->info;
	for (uint32_t k = 0; k < in->n_segments; k++) {
		const tl_shard_segment *g = &in->segments[k];
		if (g->split == (uint32_t)s && i >= g->split_first && i - g->split_first < g->count)
			return g->first + (i - g->split_first);
	}
	TL_CHECK(!"record index outside its split");
	return 0;
}

const char *tl_shard_record_name(const tl_shard *sh, uint64_t r)
{
	const tl_shard_info *in = &sh->info;
	if (!in->rname_size || r >= in->n_records)
		return NULL;
	const uint8_t *sec = sh->map + in->rname_offset;
	return (const char *)sec + get64(sec + 8 * r);
}

void tl_shard_class_counts(const tl_shard *sh, int s, uint64_t *counts)
{
	const tl_shard_info *in = &sh->info;
	memset(counts, 0, in->n_classes * sizeof *counts);
	for (uint32_t k = 0; k < in->n_segments; k++) {
		const tl_shard_segment *g = &in->segments[k];
		if ((int)g->split != s)
			continue;
		for (uint64_t r = g->first; r < g->first + g->count; r++)
			counts[tl_shard_label(sh, r, 0)]++;
	}
}

/* Byte range [*b, *e) of chunk c: the last chunk runs to label_offset so
 * the padding before the labels is covered too. */
static void chunk_range(const tl_shard_info *in, uint64_t c, uint64_t *b, uint64_t *e)
{
	uint64_t cb = (uint64_t)in->chunk_records * in->record_bytes;
	*b = in->image_offset + c * cb;
	*e = c + 1 == in->n_chunks ? in->label_offset : *b + cb;
}

static const char *split_of_record(const tl_shard_info *in, uint64_t r)
{
	for (uint32_t k = 0; k < in->n_segments; k++)
		if (r >= in->segments[k].first && r - in->segments[k].first < in->segments[k].count)
			return in->splits[in->segments[k].split].name;
	return "?";
}

tl_status tl_shard_check_chunk(tl_shard *sh, uint64_t c, tl_err *err)
{
	if (atomic_load_explicit(&sh->chunk_ok[c], memory_order_acquire))
		return TL_OK;
	const tl_shard_info *in = &sh->info;
	uint64_t b, e;
	chunk_range(in, c, &b, &e);
	TL_TRY(check_size(sh, err));
	uint64_t want, got;
	if (guarded_hash(sh->map + b, e - b, (const uint8_t *)(sh->chunk_hash + c), &want, &got))
		return truncated_in_use(sh, err);
	if (got != want) {
		uint64_t r0 = c * in->chunk_records;
		uint64_t r1 = r0 + in->chunk_records < in->n_records ? r0 + in->chunk_records
								      : in->n_records;
		return tl_seterr(err, TL_ECHECKSUM,
				 "%s: image chunk %llu (records %llu..%llu, split %s, bytes %llu..%llu): checksum mismatch (expected %016llx, got %016llx)",
				 sh->path, (unsigned long long)c, (unsigned long long)r0,
				 (unsigned long long)(r1 ? r1 - 1 : 0), split_of_record(in, r0),
				 (unsigned long long)b, (unsigned long long)e,
				 (unsigned long long)want, (unsigned long long)got);
	}
	atomic_store_explicit(&sh->chunk_ok[c], 1, memory_order_release);
	return TL_OK;
}

tl_status tl_shard_record(tl_shard *sh, uint64_t r, const void **out, tl_err *err)
{
	TL_CHECK(r < sh->info.n_records);
	TL_TRY(tl_shard_check_chunk(sh, r / sh->info.chunk_records, err));
	*out = sh->map + sh->info.image_offset + r * sh->info.record_bytes;
	return TL_OK;
}

tl_status tl_shard_load_f32(tl_shard *sh, uint64_t r, float *dst, tl_err *err)
{
	const void *rec;
	TL_TRY(tl_shard_record(sh, r, &rec, err));
	if (guarded_to_f32(sh, rec, dst))
		return truncated_in_use(sh, err);
	return TL_OK;
}

tl_status tl_shard_verify(tl_shard *sh, void (*progress)(void *, uint64_t), void *pctx,
			  tl_err *err)
{
	for (uint64_t c = 0; c < sh->info.n_chunks; c++) {
		atomic_store(&sh->chunk_ok[c], 0); /* a full pass re-reads everything */
		TL_TRY(tl_shard_check_chunk(sh, c, err));
		if (progress)
			progress(pctx, c + 1);
	}
	return TL_OK;
}

/* Characters (code points) of the UTF-8 string s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

void tl_shard_describe(const tl_shard *sh, FILE *o)
{
	const tl_shard_info *in = &sh->info;
	fprintf(o, "file:            %s\n", sh->path);
	fprintf(o, "format:          tlkit shard version %u, header %u bytes, checksum %016llx\n",
		in->version, in->header_size, (unsigned long long)in->header_hash);
	fprintf(o, "file size:       %llu bytes\n", (unsigned long long)in->file_size);
	fprintf(o, "dataset:         %s\n", in->dataset);
	fprintf(o, "source:          %s (%llu bytes, xxh3 %016llx)\n", in->source_name,
		(unsigned long long)in->source_size, (unsigned long long)in->source_hash);
	fprintf(o, "image:           %u x %u x %u (C x H x W), layout CHW, dtype %s\n",
		in->channels, in->height, in->width, tl_dtype_name(in->dtype));
	if (in->src_height)
		fprintf(o, "resized from:    %u x %u, filter %s\n", in->src_height, in->src_width,
			tl_filter_name(in->filter));
	else
		fprintf(o, "resized from:    images of any size, filter %s\n",
			tl_filter_name(in->filter));
	if (in->fit) {
		static const char *const fits[] = {"whole", "crop", "stretch", "pad"};
		fprintf(o, "fit:             %s\n", fits[in->fit]);
	}
	if (in->test_fraction > 0)
		fprintf(o, "held out:        %.9g of each class, seed %llu\n", in->test_fraction,
			(unsigned long long)in->test_seed);
	fprintf(o, "normalization:   %s: channel order %s, value = (pixel * %.9g - mean) / std\n",
		tl_norm_name(in->norm.kind), in->norm.bgr ? "BGR" : "RGB", in->norm.scale);
	fprintf(o, "  mean:          %.9g %.9g %.9g\n", in->norm.mean[0], in->norm.mean[1],
		in->norm.mean[2]);
	fprintf(o, "  std:           %.9g %.9g %.9g\n", in->norm.std[0], in->norm.std[1],
		in->norm.std[2]);
	if (in->dtype == TL_DTYPE_U8)
		fprintf(o, "  (u8 records hold resized pixels; normalization is applied when loaded)\n");
	fprintf(o, "records:         %llu, %u bytes each (aligned to %d)\n",
		(unsigned long long)in->n_records, in->record_bytes, TL_SHARD_RECORD_ALIGN);
	fprintf(o, "chunks:          %llu of %u records\n", (unsigned long long)in->n_chunks,
		in->chunk_records);
	fprintf(o, "sections:        images @%llu (%llu bytes), labels @%llu (%llu bytes, xxh3 %016llx), chunk table @%llu (xxh3 %016llx)\n",
		(unsigned long long)in->image_offset, (unsigned long long)in->image_size,
		(unsigned long long)in->label_offset, (unsigned long long)in->label_size,
		(unsigned long long)in->label_hash, (unsigned long long)in->chunk_table_offset,
		(unsigned long long)in->chunk_table_hash);
	if (in->rname_size)
		fprintf(o, "record names:    @%llu (%llu bytes, xxh3 %016llx), first %s\n",
			(unsigned long long)in->rname_offset, (unsigned long long)in->rname_size,
			(unsigned long long)in->rname_hash,
			in->n_records ? tl_shard_record_name(sh, 0) : "-");
	else
		fprintf(o, "record names:    none (records are named by segment and index)\n");
	fprintf(o, "splits:          %u\n", in->n_splits);
	for (uint32_t i = 0; i < in->n_splits; i++)
		fprintf(o, "  %-14s %llu records\n", in->splits[i].name,
			(unsigned long long)in->splits[i].count);
	fprintf(o, "segments:        %u\n", in->n_segments);
	for (uint32_t i = 0; i < in->n_segments; i++) {
		const tl_shard_segment *g = &in->segments[i];
		fprintf(o, "  %-20s split %s, records %llu..%llu of the file, %llu..%llu of the split\n",
			g->member, in->splits[g->split].name, (unsigned long long)g->first,
			(unsigned long long)(g->first + g->count - 1),
			(unsigned long long)g->split_first,
			(unsigned long long)(g->split_first + g->count - 1));
	}
	fprintf(o, "labels:          %u field%s, %u byte%s each\n", in->n_label_fields,
		in->n_label_fields > 1 ? "s (fine, coarse)" : "", in->label_bytes,
		in->label_bytes > 1 ? "s" : "");
	if (in->version >= 3)
		fprintf(o, "class names:     @%llu (%llu bytes, xxh3 %016llx)\n",
			(unsigned long long)in->cname_offset, (unsigned long long)in->cname_size,
			(unsigned long long)in->cname_hash);
	/* a long list is not read on one line: the counts table names them all */
	if (in->n_classes <= 100) {
		fprintf(o, "classes:         %u:", in->n_classes);
		for (uint32_t i = 0; i < in->n_classes; i++)
			fprintf(o, " %s", in->class_names[i]);
		fprintf(o, "\n");
	} else {
		fprintf(o, "classes:         %u (named in the class counts below)\n", in->n_classes);
	}
	if (in->n_coarse) {
		fprintf(o, "coarse classes:  %u:", in->n_coarse);
		for (uint32_t i = 0; i < in->n_coarse; i++)
			fprintf(o, " %s", in->coarse_names[i]);
		fprintf(o, "\n");
	}
	/* records per class and split, so that imbalance shows */
	uint64_t *cnt = calloc((size_t)in->n_splits * in->n_classes + 1, sizeof *cnt);
	if (!cnt)
		return;
	for (uint32_t s = 0; s < in->n_splits; s++)
		tl_shard_class_counts(sh, (int)s, cnt + (size_t)s * in->n_classes);
	/* names padded by characters (UTF-8); when some are long, the counts
	 * come first and the names last, so the columns stay aligned */
	size_t wide = 14;
	for (uint32_t c = 0; c < in->n_classes; c++) {
		size_t ch = utf8_chars(in->class_names[c]);
		wide = ch > wide ? ch : wide;
	}
	int names_last = wide > 24;
	fprintf(o, "class counts:   ");
	if (names_last)
		fprintf(o, "\n ");
	for (uint32_t s = 0; s < in->n_splits; s++)
		fprintf(o, " %9s", in->splits[s].name);
	fprintf(o, names_last ? "  class\n" : "\n");
	for (uint32_t c = 0; c < in->n_classes; c++) {
		const char *nm = in->class_names[c];
		size_t ch = utf8_chars(nm);
		if (!names_last)
			fprintf(o, "  %s%*s", nm, ch < 14 ? (int)(14 - ch) : 0, "");
		else
			fputc(' ', o);
		for (uint32_t s = 0; s < in->n_splits; s++)
			fprintf(o, " %9llu", (unsigned long long)cnt[(size_t)s * in->n_classes + c]);
		if (names_last)
			fprintf(o, "  %s", nm);
		fputc('\n', o);
	}
	for (uint32_t s = 0; s < in->n_splits; s++) {
		const uint64_t *v = cnt + (size_t)s * in->n_classes;
		uint32_t lo = 0, hi = 0;
		for (uint32_t c = 1; c < in->n_classes; c++) {
			lo = v[c] < v[lo] ? c : lo;
			hi = v[c] > v[hi] ? c : hi;
		}
		fprintf(o, "  %-14s smallest class %s (%llu), largest %s (%llu)%s\n", in->splits[s].name,
			in->class_names[lo], (unsigned long long)v[lo], in->class_names[hi],
			(unsigned long long)v[hi], v[hi] > 2 * v[lo] ? ": imbalanced (over 2:1)" : "");
	}
	free(cnt);
}

/* ---- writer ---- */

struct tl_shard_writer {
	tl_afile f;
	tl_shard_info info;
	uint16_t *labels; /* n_label_fields per record; 1 or 2 bytes each in the file */
	size_t labels_cap;
	uint64_t *chunk_hash;
	size_t chunk_cap;
	XXH3_state_t *xs;
	uint32_t in_chunk; /* records hashed into the open chunk */
	int open_segment;  /* index of the current segment, -1 before the first */
	/* record names: start of each record's name in name_buf (every record
	 * has one, "" when none was given); written only if any_names */
	uint64_t *name_start;
	size_t name_start_cap;
	char *name_buf;
	size_t name_used, name_cap;
	int any_names;
};

tl_status tl_shard_writer_open(tl_shard_writer **out, const char *path,
			       const tl_shard_info *proto, tl_err *err)
{
	*out = NULL;
	tl_shard_writer *w = tl_calloc(1, sizeof *w);
	if (!w)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	w->info = *proto;
	tl_shard_info *in = &w->info;
	in->class_names = in->coarse_names = NULL; /* the proto's are copied below */
	in->n_classes = in->n_coarse = 0;
	in->version = TL_SHARD_VERSION;
	in->header_size = TL_SHARD_HEADER_SIZE;
	in->layout = 0;
	in->n_records = 0;
	in->n_splits = in->n_segments = 0;
	uint64_t pix = (uint64_t)in->channels * in->height * in->width * tl_dtype_size(in->dtype);
	if (in->channels != 3 || pix == 0 || pix > (1u << 30) || in->n_label_fields < 1 ||
	    in->n_label_fields > 2) {
		tl_seterr(err, TL_EUSAGE, "%s: bad shard geometry %ux%ux%u", path, in->channels,
			  in->height, in->width);
		free(w);
		return TL_EUSAGE;
	}
	in->record_bytes = (uint32_t)tl_align_up(pix, TL_SHARD_RECORD_ALIGN);
	if (in->chunk_records == 0) {
		uint32_t k = TL_SHARD_CHUNK_BYTES / in->record_bytes;
		in->chunk_records = k ? k : 1;
	}
	in->image_offset = in->header_size;
	w->open_segment = -1;
	tl_status st = TL_OK;
	if (proto->class_names &&
	    (st = tl_shard_writer_set_names(w, (const char *const *)proto->class_names,
					    proto->n_classes, (const char *const *)proto->coarse_names,
					    proto->n_coarse, err)) != TL_OK) {
		free(w);
		return st;
	}
	w->xs = XXH3_createState();
	if (!w->xs) {
		free(w);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	XXH3_64bits_reset(w->xs);
	st = tl_afile_open_file(&w->f, path, err);
	if (st == TL_OK)
		st = tl_afile_pad_to(&w->f, in->image_offset, err); /* header comes last */
	if (st != TL_OK) {
		tl_shard_writer_abort(w);
		return st;
	}
	*out = w;
	return TL_OK;
}

tl_shard_info *tl_shard_writer_info(tl_shard_writer *w)
{
	return &w->info;
}

tl_status tl_shard_writer_set_names(tl_shard_writer *w, const char *const *names, uint32_t n,
				    const char *const *coarse, uint32_t nc, tl_err *err)
{
	if (n < 1 || n > TL_SHARD_MAX_CLASSES || nc > TL_SHARD_MAX_CLASSES)
		return tl_seterr(err, TL_EUSAGE, "%s: %u classes and %u coarse classes (expected 1..%d and 0..%d)",
				 w->f.path, n, nc, TL_SHARD_MAX_CLASSES, TL_SHARD_MAX_CLASSES);
	for (uint32_t i = 0; i < n + nc; i++) {
		const char *s = i < n ? (names ? names[i] : NULL) : (coarse ? coarse[i - n] : NULL);
		const char *why = s ? tl_shard_name_problem(s, strlen(s)) : "missing";
		if (why)
			return tl_seterr(err, TL_EFORMAT, "%s: %sclass %u name '%.255s': %s", w->f.path,
					 i < n ? "" : "coarse ", i < n ? i : i - n, s ? s : "", why);
	}
	char **t = names_block(names, n, coarse, nc);
	if (!t)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory for class names", w->f.path);
	free(w->info.class_names);
	w->info.class_names = t;
	w->info.coarse_names = nc ? t + n : NULL;
	w->info.n_classes = n;
	w->info.n_coarse = nc;
	return TL_OK;
}

uint32_t tl_shard_writer_record_bytes(const tl_shard_writer *w)
{
	return w->info.record_bytes;
}

tl_status tl_shard_writer_segment(tl_shard_writer *w, const char *member, const char *split,
				  uint32_t order, tl_err *err)
{
	tl_shard_info *in = &w->info;
	if (strlen(member) >= 40 || strlen(split) >= 24 || !split[0])
		return tl_seterr(err, TL_EUSAGE, "%s: member or split name too long (%s, %s)",
				 w->f.path, member, split);
	uint32_t s;
	for (s = 0; s < in->n_splits; s++)
		if (strcmp(in->splits[s].name, split) == 0)
			break;
	if (s == in->n_splits) {
		if (s == TL_SHARD_MAX_SPLITS)
			return tl_seterr(err, TL_EUSAGE, "%s: too many splits (at most %d)",
					 w->f.path, TL_SHARD_MAX_SPLITS);
		strcpy(in->splits[s].name, split);
		in->splits[s].count = 0;
		in->n_splits++;
	}
	if (in->n_segments == TL_SHARD_MAX_SEGMENTS)
		return tl_seterr(err, TL_EUSAGE, "%s: too many source members (at most %d)",
				 w->f.path, TL_SHARD_MAX_SEGMENTS);
	tl_shard_segment *g = &in->segments[in->n_segments];
	memset(g, 0, sizeof *g);
	strcpy(g->member, member);
	g->split = s;
	g->order = order;
	g->first = in->n_records;
	w->open_segment = (int)in->n_segments++;
	return TL_OK;
}

static tl_status push_chunk_hash(tl_shard_writer *w, tl_err *err)
{
	if (w->info.n_chunks == w->chunk_cap) {
		size_t cap = w->chunk_cap ? w->chunk_cap * 2 : 256;
		uint64_t *p = tl_realloc(w->chunk_hash, cap * sizeof *p);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
		w->chunk_hash = p;
		w->chunk_cap = cap;
	}
	w->chunk_hash[w->info.n_chunks++] = XXH3_64bits_digest(w->xs);
	XXH3_64bits_reset(w->xs);
	w->in_chunk = 0;
	return TL_OK;
}

/* Keep n records' names (names NULL: all ""). */
static tl_status keep_names(tl_shard_writer *w, const char *const *names, size_t n, tl_err *err)
{
	uint64_t have = w->info.n_records;
	if (have + n > w->name_start_cap) {
		size_t cap = w->name_start_cap ? w->name_start_cap : 4096;
		while (cap < have + n)
			cap *= 2;
		uint64_t *p = tl_realloc(w->name_start, cap * sizeof *p);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory for record names", w->f.path);
		w->name_start = p, w->name_start_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		const char *nm = names && names[i] ? names[i] : "";
		size_t len = strlen(nm);
		if (len > TL_SHARD_RECORD_NAME_MAX)
			return tl_seterr(err, TL_EFORMAT, "%s: record name %.60s...: too long (expected at most %d bytes, got %zu)",
					 w->f.path, nm, TL_SHARD_RECORD_NAME_MAX, len);
		if (w->name_used + len + 1 > w->name_cap) {
			size_t cap = w->name_cap ? w->name_cap : 65536;
			while (cap < w->name_used + len + 1)
				cap *= 2;
			char *p = tl_realloc(w->name_buf, cap);
			if (!p)
				return tl_seterr(err, TL_ENOMEM, "%s: out of memory for record names", w->f.path);
			w->name_buf = p, w->name_cap = cap;
		}
		w->name_start[have + i] = w->name_used;
		memcpy(w->name_buf + w->name_used, nm, len + 1);
		w->name_used += len + 1;
	}
	if (names)
		w->any_names = 1;
	return TL_OK;
}

tl_status tl_shard_writer_append(tl_shard_writer *w, const void *records,
				 const uint16_t *labels, size_t n, tl_err *err)
{
	return tl_shard_writer_append_named(w, records, labels, NULL, n, err);
}

tl_status tl_shard_writer_append_named(tl_shard_writer *w, const void *records,
				       const uint16_t *labels, const char *const *names, size_t n,
				       tl_err *err)
{
	tl_shard_info *in = &w->info;
	TL_CHECK(w->open_segment >= 0);
	TL_TRY(keep_names(w, names, n, err));
	size_t lf = in->n_label_fields;
	uint64_t need = (in->n_records + n) * lf;
	if (need > w->labels_cap) {
		size_t cap = w->labels_cap ? w->labels_cap : 65536;
		while (cap < need)
			cap *= 2;
		uint16_t *p = tl_realloc(w->labels, cap * sizeof *p);
		if (!p)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
		w->labels = p;
		w->labels_cap = cap;
	}
	memcpy(w->labels + in->n_records * lf, labels, n * lf * sizeof *labels);
	TL_TRY(tl_afile_write(&w->f, records, n * in->record_bytes, err));
	/* hash record by record across chunk boundaries; a full chunk's hash
	 * is pushed only when a record follows it, because the last chunk
	 * also covers the padding before the labels (hashed by finish) */
	const uint8_t *p = records;
	size_t left = n;
	while (left > 0) {
		if (w->in_chunk == in->chunk_records)
			TL_TRY(push_chunk_hash(w, err));
		size_t k = in->chunk_records - w->in_chunk;
		if (k > left)
			k = left;
		XXH3_64bits_update(w->xs, p, k * in->record_bytes);
		p += k * in->record_bytes;
		left -= k;
		w->in_chunk += (uint32_t)k;
	}
	in->n_records += n;
	in->segments[w->open_segment].count += n;
	in->splits[in->segments[w->open_segment].split].count += n;
	return TL_OK;
}

static int split_rank(const char *name)
{
	return strcmp(name, "train") == 0 ? 0 : strcmp(name, "test") == 0 ? 1 : 2;
}

/* Order splits train, test, others by name; segments by (split, order);
 * then number each segment's records within its split. */
static void canonical_order(tl_shard_info *in)
{
	uint32_t perm[TL_SHARD_MAX_SPLITS], inv[TL_SHARD_MAX_SPLITS];
	for (uint32_t i = 0; i < in->n_splits; i++)
		perm[i] = i;
	for (uint32_t i = 1; i < in->n_splits; i++)
		for (uint32_t j = i; j > 0; j--) {
			const char *a = in->splits[perm[j - 1]].name, *b = in->splits[perm[j]].name;
			int ra = split_rank(a), rb = split_rank(b);
			if (ra < rb || (ra == rb && strcmp(a, b) <= 0))
				break;
			uint32_t t = perm[j];
			perm[j] = perm[j - 1];
			perm[j - 1] = t;
		}
	tl_shard_split old[TL_SHARD_MAX_SPLITS];
	memcpy(old, in->splits, sizeof old);
	for (uint32_t i = 0; i < in->n_splits; i++) {
		in->splits[i] = old[perm[i]];
		inv[perm[i]] = i;
	}
	for (uint32_t k = 0; k < in->n_segments; k++)
		in->segments[k].split = inv[in->segments[k].split];
	for (uint32_t i = 1; i < in->n_segments; i++)
		for (uint32_t j = i; j > 0; j--) {
			tl_shard_segment *a = &in->segments[j - 1], *b = &in->segments[j];
			if (a->split < b->split || (a->split == b->split && a->order <= b->order))
				break;
			tl_shard_segment t = *a;
			*a = *b;
			*b = t;
		}
	uint64_t next[TL_SHARD_MAX_SPLITS] = {0};
	for (uint32_t k = 0; k < in->n_segments; k++) {
		in->segments[k].split_first = next[in->segments[k].split];
		next[in->segments[k].split] += in->segments[k].count;
	}
}

tl_status tl_shard_writer_finish(tl_shard_writer *w, tl_err *err)
{
	tl_shard_info *in = &w->info;
	tl_status st = TL_OK;
	uint8_t *hdr = NULL;
	if (!in->class_names) {
		st = tl_seterr(err, TL_EUSAGE, "%s: no class names were set", w->f.path);
		goto out;
	}
	for (uint64_t i = 0; i < in->n_records * in->n_label_fields; i++)
		if (w->labels[i] >= (i % in->n_label_fields ? in->n_coarse : in->n_classes)) {
			st = tl_seterr(err, TL_EUSAGE, "%s: record %llu has label %u (expected < %u)",
				       w->f.path, (unsigned long long)(i / in->n_label_fields),
				       w->labels[i],
				       i % in->n_label_fields ? in->n_coarse : in->n_classes);
			goto out;
		}
	/* the lowest version that says everything: 3 for wide labels or long
	 * names (or names that overflow the header), 2 for what version 1
	 * cannot say, else 1 (CIFAR shards keep the bytes they had) */
	size_t longest, nbytes = names_bytes(in, &longest);
	if (in->n_classes > TL_SHARD_V2_MAX_CLASSES || in->n_coarse > TL_SHARD_V2_MAX_CLASSES ||
	    longest >= TL_SHARD_V2_NAME_MAX || nbytes > in->header_size - H_NAMES)
		in->version = 3;
	else
		in->version = in->fit || in->test_fraction > 0 || in->test_seed || w->any_names ? 2 : 1;
	in->label_bytes = in->version >= 3 ? 2 : 1;
	in->image_size = in->n_records * in->record_bytes;
	in->label_offset = tl_align_up(in->image_offset + in->image_size, TL_SHARD_ALIGN);
	/* the last chunk also covers the zero padding up to the labels */
	uint64_t pad = in->label_offset - (in->image_offset + in->image_size);
	if (pad) {
		uint8_t *z = tl_calloc(1, pad);
		if (!z) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
			goto out;
		}
		XXH3_64bits_update(w->xs, z, pad);
		free(z);
	}
	if (w->in_chunk > 0 && (st = push_chunk_hash(w, err)) != TL_OK)
		goto out;
	if ((st = tl_afile_pad_to(&w->f, in->label_offset, err)) != TL_OK)
		goto out;
	in->label_size = in->n_records * in->n_label_fields * in->label_bytes;
	uint64_t lab_end = tl_align_up(in->label_offset + in->label_size, TL_SHARD_ALIGN);
	uint64_t next = lab_end;
	in->rname_offset = in->rname_size = in->rname_hash = 0;
	if (w->any_names) {
		in->rname_offset = next;
		in->rname_size = 8 * (in->n_records + 1) + w->name_used;
		next = tl_align_up(in->rname_offset + in->rname_size, TL_SHARD_ALIGN);
	}
	in->cname_offset = in->cname_size = in->cname_hash = 0;
	if (in->version >= 3) {
		in->cname_offset = next;
		in->cname_size = nbytes;
		next = tl_align_up(in->cname_offset + in->cname_size, TL_SHARD_ALIGN);
	}
	in->chunk_table_offset = next;
	size_t lspan = (size_t)(lab_end - in->label_offset);
	uint8_t *lab = tl_calloc(1, lspan ? lspan : 1);
	if (!lab) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
		goto out;
	}
	for (uint64_t i = 0; i < in->n_records * in->n_label_fields; i++) {
		if (in->label_bytes == 1)
			lab[i] = (uint8_t)w->labels[i];
		else
			lab[2 * i] = (uint8_t)w->labels[i], lab[2 * i + 1] = (uint8_t)(w->labels[i] >> 8);
	}
	in->label_hash = XXH3_64bits(lab, lspan);
	st = tl_afile_write(&w->f, lab, lspan, err);
	free(lab);
	if (st != TL_OK)
		goto out;
	if (w->any_names) {
		uint64_t rend = in->version >= 3 ? in->cname_offset : in->chunk_table_offset;
		size_t nspan = (size_t)(rend - in->rname_offset);
		uint64_t tab = 8 * (in->n_records + 1);
		uint8_t *sec = tl_calloc(1, nspan);
		if (!sec) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
			goto out;
		}
		for (uint64_t r = 0; r < in->n_records; r++)
			put64(sec + 8 * r, tab + w->name_start[r]);
		put64(sec + 8 * in->n_records, tab + w->name_used);
		memcpy(sec + tab, w->name_buf, w->name_used);
		in->rname_hash = XXH3_64bits(sec, nspan);
		st = tl_afile_write(&w->f, sec, nspan, err);
		free(sec);
		if (st != TL_OK)
			goto out;
	}
	if (in->version >= 3) {
		size_t cspan = (size_t)(in->chunk_table_offset - in->cname_offset);
		uint8_t *sec = tl_calloc(1, cspan);
		if (!sec) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
			goto out;
		}
		/* names_block keeps the strings back to back after the pointers */
		memcpy(sec, in->class_names + in->n_classes + in->n_coarse, nbytes);
		in->cname_hash = XXH3_64bits(sec, cspan);
		st = tl_afile_write(&w->f, sec, cspan, err);
		free(sec);
		if (st != TL_OK)
			goto out;
	}
	uint8_t *ct = tl_calloc(in->n_chunks ? in->n_chunks : 1, 8);
	if (!ct) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
		goto out;
	}
	for (uint64_t c = 0; c < in->n_chunks; c++)
		put64(ct + 8 * c, w->chunk_hash[c]);
	in->chunk_table_hash = XXH3_64bits(ct, in->n_chunks * 8);
	st = tl_afile_write(&w->f, ct, in->n_chunks * 8, err);
	free(ct);
	if (st != TL_OK)
		goto out;
	in->file_size = w->f.written;
	canonical_order(in);
	hdr = tl_malloc(in->header_size);
	if (!hdr) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", w->f.path);
		goto out;
	}
	encode_header(in, hdr);
	if ((st = tl_afile_pwrite(&w->f, hdr, in->header_size, 0, err)) != TL_OK)
		goto out;
	st = tl_afile_commit(&w->f, err);
out:
	free(hdr);
	tl_shard_writer_abort(w); /* frees; a committed afile has nothing to remove */
	return st;
}

void tl_shard_writer_abort(tl_shard_writer *w)
{
	if (!w)
		return;
	tl_afile_abort(&w->f);
	if (w->xs)
		XXH3_freeState(w->xs);
	free(w->labels);
	free(w->info.class_names);
	free(w->chunk_hash);
	free(w->name_start);
	free(w->name_buf);
	free(w);
}
