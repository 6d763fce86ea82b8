/* The data/ layer turns bytes into batches: cifar.c streams the CIFAR
 * tarball, image.c resizes and normalizes, pack.c writes the shard this
 * header describes, loader.c gathers shuffled, augmented f32 batches from
 * it on worker threads.  It sits on the base (and cpu/cpu.h for the f16
 * kernels) and knows nothing of networks.
 *
 * shard.h - the .tls shard: pre-resized, normalized images + labels, one
 * memory-mapped file with per-chunk XXH3-64 checksums.  man/tlshard.5 is
 * the byte-level spec; this header is the API.
 *
 * File layout (all little-endian, sections 4096-aligned):
 *   [0, header_size)             header: fixed fields, split + segment
 *                                tables, class names; XXH3 over all of it
 *   [image_offset, label_offset) records, record_bytes apart, in chunks of
 *                                chunk_records; each chunk has an XXH3 (the
 *                                last chunk runs to label_offset)
 *   [label_offset, ...)          n_label_fields bytes per record; one XXH3
 *   [rname_offset, ...)          version 2, optional: each record's source
 *                                name (n_records + 1 u64 offsets, then
 *                                NUL-terminated names); one XXH3
 *   [cname_offset, chunk_table)  version 3: the class names (in versions 1
 *                                and 2 they sit in the header); one XXH3
 *   [chunk_table, file_size)     n_chunks u64 chunk hashes; one XXH3
 * Records are stored in the order the source delivered them; a split is
 * a list of segments (one per source member) in logical order. */
#ifndef TL_SHARD_H
#define TL_SHARD_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "afile.h"
#include "data/image.h"
#include "tl.h"

#define TL_SHARD_MAGIC "TLSHARD1"
#define TL_SHARD_VERSION 3     /* the newest version read and written */
#define TL_SHARD_VERSION_MIN 1 /* the oldest version read */
#define TL_SHARD_HEADER_SIZE 16384
#define TL_SHARD_ALIGN 4096
#define TL_SHARD_RECORD_ALIGN 64
#define TL_SHARD_MAX_SPLITS 8
#define TL_SHARD_MAX_SEGMENTS 32
/* Classes and class names: version 3 has 2-byte labels and a section of
 * its own for names; versions 1 and 2 have 1-byte labels and names in the
 * header.  The writer writes version 3 only when the V2 limits are
 * exceeded. */
#define TL_SHARD_MAX_CLASSES 65535   /* per label field */
#define TL_SHARD_NAME_MAX 256        /* class name bytes including NUL */
#define TL_SHARD_V2_MAX_CLASSES 256  /* versions 1 and 2 */
#define TL_SHARD_V2_NAME_MAX 32      /* versions 1 and 2 */
#ifndef TL_SHARD_CHUNK_BYTES
#define TL_SHARD_CHUNK_BYTES (1u << 20) /* default bytes of records per chunk */
#endif

typedef struct {
	char name[24];
	uint64_t count;
} tl_shard_split;

typedef struct {
	char member[40];      /* source member, e.g. "data_batch_3.bin" */
	uint32_t split;       /* index into splits */
	uint32_t order;       /* sort key within the split (batch number) */
	uint64_t first;       /* first record in the file */
	uint64_t count;       /* records */
	uint64_t split_first; /* index of its first record within the split */
} tl_shard_segment;

/* Everything the header says, in host form. */
typedef struct {
	uint32_t version, header_size;
	uint64_t file_size, header_hash;
	uint32_t channels, height, width;
	tl_dtype dtype;
	uint32_t layout; /* 0: CHW planar per record */
	tl_norm norm;
	tl_filter filter;
	uint32_t src_height, src_width;
	uint32_t n_label_fields; /* 1: class; 2: fine class, coarse class */
	uint32_t label_bytes;    /* per label field: 1 (versions 1, 2) or 2 (version 3) */
	uint32_t n_classes, n_coarse;
	uint64_t n_records;
	uint32_t record_bytes, chunk_records;
	uint64_t n_chunks;
	uint64_t image_offset, image_size;
	uint64_t label_offset, label_size, label_hash;
	uint64_t chunk_table_offset, chunk_table_hash;
	uint64_t source_size, source_hash;
	char source_name[256];
	char dataset[32];
	uint32_t n_splits, n_segments;
	tl_shard_split splits[TL_SHARD_MAX_SPLITS];
	tl_shard_segment segments[TL_SHARD_MAX_SEGMENTS];
	/* n_classes and n_coarse names (NUL-terminated, 1..255 bytes), NULL
	 * when there are none.  One allocation: the pointer table followed by
	 * the strings, owned by the tl_shard or writer the info belongs to
	 * (coarse_names points into class_names' block; free class_names
	 * only).  A struct copy shares them: don't free or outlive the owner. */
	char **class_names;
	char **coarse_names;
	/* version 2 (version 1: all 0): how source images of another aspect
	 * ratio were fitted (0 whole image, 1 crop, 2 stretch, 3 pad: the
	 * values of pack.h's tl_fit) and the test split a packer drew from
	 * the train images (fraction of each class, 0 none; the draw's seed).
	 * The writer writes version 1 when all three are 0, so CIFAR shards
	 * keep the bytes they had. */
	uint32_t fit;
	double test_fraction;
	uint64_t test_seed;
	/* version 2: the record-name section (size 0: none; version 1 and
	 * raw sources such as CIFAR, whose records are named by their
	 * segment's member and index) */
	uint64_t rname_offset, rname_size, rname_hash;
	/* version 3: the class-name section (versions 1, 2: all 0) */
	uint64_t cname_offset, cname_size, cname_hash;
} tl_shard_info;

/* ---- reading ---- */

typedef struct {
	char *path;
	int fd;
	const uint8_t *map;
	uint64_t size;
	tl_shard_info info;
	const uint64_t *chunk_hash; /* points into the mapping */
	atomic_uchar *chunk_ok;     /* 1 once a chunk's checksum matched */
} tl_shard;

/* Map a shard read-only and check, before trusting anything: magic,
 * version, header checksum, every offset and size against the file size
 * (overflow-safe), the split/segment tables, the label and chunk-table
 * checksums and every label's range.  Image chunks are checked later, on
 * first touch (tl_shard_record) or all at once (tl_shard_verify). */
tl_status tl_shard_open(tl_shard **out, const char *path, tl_err *err);
void tl_shard_close(tl_shard *sh);

/* Split index by name, or -1. */
int tl_shard_split_find(const tl_shard *sh, const char *name);

/* File record index of record i of split s (i < splits[s].count). */
uint64_t tl_shard_file_record(const tl_shard *sh, int s, uint64_t i);

/* Pointer to file record r's bytes, after checking its chunk (once). */
tl_status tl_shard_record(tl_shard *sh, uint64_t r, const void **out, tl_err *err);

/* File record r as normalized float32 [c][h][w] (checks its chunk). */
tl_status tl_shard_load_f32(tl_shard *sh, uint64_t r, float *dst, tl_err *err);

/* Label field f (0 = class, 1 = coarse) of file record r: one byte in
 * versions 1 and 2, two (little-endian) in version 3. */
static inline uint32_t tl_shard_label(const tl_shard *sh, uint64_t r, int f)
{
	const uint8_t *p = sh->map + sh->info.label_offset +
			   (r * sh->info.n_label_fields + (uint64_t)f) * sh->info.label_bytes;
	return sh->info.label_bytes == 1 ? p[0] : (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* Name of class c (c < n_classes) and of coarse class c (c < n_coarse). */
static inline const char *tl_shard_class_name(const tl_shard *sh, uint32_t c)
{
	return sh->info.class_names[c];
}
static inline const char *tl_shard_coarse_name(const tl_shard *sh, uint32_t c)
{
	return sh->info.coarse_names[c];
}

/* NULL if s[0, len) may be a class name (1..255 bytes of valid UTF-8
 * without control characters, so that it prints, sorts and goes into
 * JSON and CSV unharmed), else what is wrong with it: "empty", "too
 * long", "not valid UTF-8" or "has a control character". */
const char *tl_shard_name_problem(const char *s, size_t len);

/* The source name of file record r ("cat/x.jpg": its path relative to
 * the folder or archive it was packed from), NUL-terminated, in the
 * mapping; NULL when the shard keeps no names (version 1, CIFAR) or r is
 * out of range.  The section's checksum and offsets were checked by
 * tl_shard_open. */
const char *tl_shard_record_name(const tl_shard *sh, uint64_t r);

/* Records of class c (label field 0) in split s, for every class at once:
 * counts[c] for c < n_classes (counts has n_classes entries). */
void tl_shard_class_counts(const tl_shard *sh, int s, uint64_t *counts);

/* Check one image chunk's checksum (cached once it matched). */
tl_status tl_shard_check_chunk(tl_shard *sh, uint64_t chunk, tl_err *err);

/* Full pass over every chunk.  progress (may be NULL) is called with the
 * number of chunks done.  Fails naming the first bad chunk. */
tl_status tl_shard_verify(tl_shard *sh, void (*progress)(void *, uint64_t), void *pctx,
			  tl_err *err);

/* Human-readable dump of every header field. */
void tl_shard_describe(const tl_shard *sh, FILE *out);

/* ---- writing ---- */

typedef struct tl_shard_writer tl_shard_writer;

/* Start a shard at path (through a temporary file).  proto supplies the
 * image geometry, dtype, normalization, filter, label fields and, if
 * known, class names and source identity; chunk_records 0 picks a default
 * near TL_SHARD_CHUNK_BYTES.  Sizes, offsets, tables and checksums are
 * filled in by the writer. */
tl_status tl_shard_writer_open(tl_shard_writer **out, const char *path,
			       const tl_shard_info *proto, tl_err *err);

/* The header under construction: callers may set source fields any time
 * before finish (class names: tl_shard_writer_set_names). */
tl_shard_info *tl_shard_writer_info(tl_shard_writer *w);

/* Set the class names (n of them) and coarse class names (nc, coarse may
 * be NULL when 0): copied, checked with tl_shard_name_problem, and
 * n_classes and n_coarse set.  Replaces names set before (the proto's
 * class_names, if any, are copied by tl_shard_writer_open). */
tl_status tl_shard_writer_set_names(tl_shard_writer *w, const char *const *names, uint32_t n,
				    const char *const *coarse, uint32_t nc, tl_err *err);

/* Bytes per record in append buffers (the padded stride). */
uint32_t tl_shard_writer_record_bytes(const tl_shard_writer *w);

/* Begin a segment: following records come from `member` and belong to
 * split `split`, ordered within the split by `order`. */
tl_status tl_shard_writer_segment(tl_shard_writer *w, const char *member, const char *split,
				  uint32_t order, tl_err *err);

/* Append n records (record_bytes apart, padding zeroed) and their labels
 * (n_label_fields values each; each < TL_SHARD_MAX_CLASSES, checked
 * against the class counts at finish). */
tl_status tl_shard_writer_append(tl_shard_writer *w, const void *records,
				 const uint16_t *labels, size_t n, tl_err *err);

/* tl_shard_writer_append with each record's source name (names[i], at
 * most TL_SHARD_RECORD_NAME_MAX bytes; NULL or names NULL: "").  Once any
 * record has a name, the shard keeps a name for every record (version
 * 2).  Names are held in memory until finish. */
#define TL_SHARD_RECORD_NAME_MAX 4096
tl_status tl_shard_writer_append_named(tl_shard_writer *w, const void *records,
				       const uint16_t *labels, const char *const *names, size_t n,
				       tl_err *err);

/* Write labels, record names, class names, chunk table and header, fsync
 * and rename into place, as the lowest version that can say everything:
 * 3 for more than 256 classes or a name over 31 bytes, else 2 for a fit,
 * a drawn test split or record names, else 1.  Fails if a label is not
 * below its class count.  Frees w whatever happens; on failure no file
 * exists under path. */
tl_status tl_shard_writer_finish(tl_shard_writer *w, tl_err *err);

/* Drop everything written so far.  Frees w. */
void tl_shard_writer_abort(tl_shard_writer *w);

#endif
