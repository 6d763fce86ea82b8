/* h5file.h - the tensors of a Keras .h5 weights file, as the parent
 * process holds them after a sandboxed child has parsed the file.
 *
 * tl_h5_open reads the file into memory (tl_open_input: a FIFO or a
 * device is refused without blocking; at most TL_H5_MAX_FILE bytes),
 * forks a child that parses that memory image with libhdf5 inside a
 * seccomp sandbox (nn/sandbox.h, nn/h5parse.h), and takes back only the
 * table (layer, weight name, dtype, shape) and the float32 data of each
 * dataset, which it validates before use: names printable and bounded,
 * shapes consistent with element counts, counts and total bytes bounded
 * (against TL_H5_MAX_TOTAL and against the file's size), values finite.
 * libhdf5 never runs in the calling process. */
#ifndef TL_H5FILE_H
#define TL_H5FILE_H

#include <stdint.h>

#include "nn/safetensors.h"
#include "tl.h"

#define TL_H5_MAX_FILE (4ull << 30)  /* bytes of .h5 read (VGG16 with its top: 553 MB) */
#define TL_H5_MAX_VARS 4096          /* datasets (MobileNetV2 with its top: 262) */
#define TL_H5_MAX_NUMEL (1ull << 31) /* values of one dataset */
#define TL_H5_MAX_TOTAL (4ull << 30) /* declared bytes of all datasets together */
/* A compressed dataset may declare at most this many times the bytes it
 * stores (Keras writes none; zlib tops out near 1000x on zeros) */
#define TL_H5_MAX_RATIO 64
/* ... or this many bytes whatever it stores (an all-zero bias) */
#define TL_H5_RATIO_FREE (1u << 20)

/* One dataset of the file, as the file declares it. */
typedef struct {
	char layer[64];
	char name[128];      /* the weight's name in the file */
	char dtype[12];      /* f32, f64, f16 (float classes only are accepted) */
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	uint64_t numel;
} tl_h5_var;

typedef struct tl_h5_file tl_h5_file;

/* Open path, parse it in the sandbox and keep its table and data.
 * tl_h5_layout() names what was found: "keras2", "keras1" or "keras3".
 * Errors read "PATH: PART: what is wrong (expected X, got Y)"; a reader
 * stopped by its sandbox: "PATH: the HDF5 reader was stopped (SIGSYS: it
 * tried a system call outside its sandbox)". */
tl_status tl_h5_open(tl_h5_file **out, const char *path, tl_err *err);
void tl_h5_close(tl_h5_file *f);
size_t tl_h5_count(const tl_h5_file *f);
const tl_h5_var *tl_h5_var_at(const tl_h5_file *f, size_t i);
const char *tl_h5_layout(const tl_h5_file *f);
/* The numel float32 values of dataset i. */
const float *tl_h5_data(const tl_h5_file *f, size_t i);
/* Read dataset i as float32 (numel floats into dst). */
tl_status tl_h5_read_f32(tl_h5_file *f, size_t i, float *dst, tl_err *err);
/* The bytes that were parsed: their size, MD5 (32 hex digits) and XXH3-64
 * (16 hex digits). */
uint64_t tl_h5_size(const tl_h5_file *f);
const char *tl_h5_md5(const tl_h5_file *f);
const char *tl_h5_xxh3(const tl_h5_file *f);

/* A shape as h5py and numpy print it: "(3, 3, 64)", "(64,)", "()";
 * truncated to fit buf (n bytes). */
void tl_h5_fmt_shape(int ndim, const int64_t *s, char *buf, size_t n);

/* Building a table from a parser's output (the sandbox's reader, and the
 * fuzz harness that runs the parser in-process): an empty file for path
 * with `size` bytes parsed; then each dataset, validated as described
 * above before it is kept (data: v->numel floats, copied); then the
 * layout ("keras1", "keras2", "keras3"). */
tl_status tl_h5_file_new(tl_h5_file **out, const char *path, uint64_t size, tl_err *err);
tl_status tl_h5_file_add(tl_h5_file *f, const tl_h5_var *v, const float *data, tl_err *err);
tl_status tl_h5_file_set_layout(tl_h5_file *f, const char *layout, tl_err *err);

#endif
