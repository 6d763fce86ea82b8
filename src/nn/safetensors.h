/* safetensors.h - read (mmap, bounds-checked) and write (atomic) the
 * safetensors format: u64 little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {string: string}}, then the raw little-endian data.
 * When the metadata holds "xxh3" (16 hex digits) it is the XXH3-64 of the
 * data section, and "xxh3_meta" that of the other metadata (pairs sorted
 * by key, each key NUL value NUL); both are written by tl_st_write and
 * checked on open, so a checkpoint's settings cannot be edited unseen. */
#ifndef TL_SAFETENSORS_H
#define TL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

#define TL_ST_MAX_DIMS 8

typedef enum { TL_ST_F32 = 0, TL_ST_F16, TL_ST_BF16, TL_ST_F64, TL_ST_I64, TL_ST_I32, TL_ST_U8, TL_ST_OTHER } tl_st_dtype;

typedef struct {
	char *name;
	tl_st_dtype dtype;
	char dtype_name[8];
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	uint64_t numel;
	const uint8_t *data; /* into the mapping */
	uint64_t nbytes;
} tl_st_tensor;

typedef struct {
	char *path;
	void *map;
	uint64_t size;
	tl_st_tensor *t;
	size_t n;
	char **meta_keys, **meta_vals;
	size_t n_meta;
} tl_st_file;

/* Map and validate: header length and JSON, every dtype/shape/offset
 * against the data section (overflow-safe), and the xxh3 when present. */
tl_status tl_st_open(tl_st_file **out, const char *path, tl_err *err);
void tl_st_close(tl_st_file *f);

const tl_st_tensor *tl_st_find(const tl_st_file *f, const char *name);
const char *tl_st_meta(const tl_st_file *f, const char *key);

/* Copy tensor `name` as float32 into dst, checking it exists and has
 * exactly the given shape (F32, F16 and BF16 are converted). */
tl_status tl_st_read_f32(const tl_st_file *f, const char *name, int ndim, const int64_t *shape,
			 float *dst, tl_err *err);

/* A tensor to write. */
typedef struct {
	const char *name;
	tl_st_dtype dtype; /* TL_ST_F32, TL_ST_I64 or TL_ST_U8 */
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	const void *data;
} tl_st_out;

/* Write tensors and string metadata atomically; adds "xxh3" of the data
 * and, with metadata, "xxh3_meta" of it. */
tl_status tl_st_write(const char *path, const tl_st_out *t, size_t n, const char *const *meta_kv,
		      size_t n_meta, tl_err *err);

#endif
