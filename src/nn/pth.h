/* pth.h - PyTorch checkpoints (.pth, .pt: torch.save) read without
 * running them, and imported into safetensors.
 *
 * Two containers:
 *   zip (torch.save since 1.6): members ARCHIVE/data.pkl (the pickle),
 *     ARCHIVE/data/KEY (one per storage, raw elements), ARCHIVE/version,
 *     ARCHIVE/byteorder ("little" or "big"; absent: little), where
 *     ARCHIVE is any folder name (torch uses the file's stem).  Read with
 *     libarchive's zip reader, stored or deflated members alike.
 *   legacy (torch.save before 1.6, and _use_new_zipfile_serialization=
 *     False): five pickles in a row (magic number, protocol 1001, system
 *     info, the object, the sorted storage keys), then each storage as an
 *     int64 element count and its elements, little-endian.  Most
 *     torchvision files in ~/.cache/torch/hub/checkpoints are this format.
 * The object pickle is read by the restricted unpickler (data/pickle.h):
 * any global but OrderedDict, the tensor rebuilders and the storage
 * types (os.system, builtins.eval...) is refused by name, nothing runs.
 *
 * The state dict is the object when it is a dict of tensors, else its
 * value under "state_dict", "model_state_dict", "model", "net" or
 * "module" (a checkpoint saved whole); a "module." or "_orig_mod." prefix
 * on every name (DataParallel, torch.compile) is dropped.  Tensors:
 * float32, float16, bfloat16, int64 (num_batches_tracked), int32 and
 * uint8 keep their type and bytes; float64 is rounded to float32 (tlkit
 * reads no float64 weights); int8, int16 and bool are refused.  Sizes,
 * strides and storage offsets are honoured: a view is copied out in
 * C order, several tensors may share one storage; a view with more
 * elements than its storage (an expand) is refused.  Every length, key
 * and offset is checked against the input: errors read
 * "FILE: PART: what is wrong (expected X, got Y)". */
#ifndef TL_PTH_H
#define TL_PTH_H

#include <stddef.h>
#include <stdint.h>

#include "nn/safetensors.h"
#include "tl.h"

typedef struct {
	const char *name;      /* prefix dropped; NUL-terminated, valid UTF-8 */
	tl_st_dtype dtype;     /* as written out (float64 already float32) */
	int ndim;
	int64_t shape[TL_ST_MAX_DIMS];
	const uint8_t *data;   /* C-order, little-endian, nbytes */
	size_t nbytes;
} tl_pth_tensor;

typedef struct tl_pth tl_pth;

/* 1 when buf (its first n bytes, at least 16 for a sure answer) starts
 * as a torch.save file does: a zip local header, or the legacy magic
 * number pickle. */
int tl_pth_sniff(const uint8_t *buf, size_t n);

/* Read a torch.save file held in buf[0..n) (what names it in messages).
 * Tensors may point into buf, which must outlive *out. */
tl_status tl_pth_read_mem(tl_pth **out, const uint8_t *buf, size_t n, const char *what,
			  tl_err *err);

/* Map the file at path (a regular file: tl_open_input) and read it. */
tl_status tl_pth_open(tl_pth **out, const char *path, tl_err *err);

size_t tl_pth_count(const tl_pth *p);
const tl_pth_tensor *tl_pth_at(const tl_pth *p, size_t i);
/* "zip" or "legacy". */
const char *tl_pth_format(const tl_pth *p);
/* Where the state dict was: "" (the object itself) or its key. */
const char *tl_pth_dict_key(const tl_pth *p);
/* The name prefix dropped ("module.", "_orig_mod.") or "". */
const char *tl_pth_prefix(const tl_pth *p);
/* Tensors converted from float64 to float32. */
int tl_pth_converted(const tl_pth *p);
/* XXH3-64 (16 hex digits) and size of the bytes read. */
const char *tl_pth_xxh3(const tl_pth *p);
uint64_t tl_pth_size(const tl_pth *p);
void tl_pth_free(tl_pth *p);

typedef struct {
	char format[8];        /* zip, legacy */
	char xxh3[17];
	uint64_t size;
	char dict_key[24], prefix[16];
	int n_tensors, converted;
	uint64_t n_params;     /* elements of the floating-point tensors */
	char model[16];        /* from the torchvision file name, else "" */
} tl_pth_info;

/* The tlkit model a torchvision file name (vgg16-397923af.pth...) holds
 * the weights of, or NULL. */
const char *tl_pth_model_of(const char *base);

/* The i-th (from 0) torchvision file name holding model's weights, or
 * NULL past the last (for the lookup of weights_find). */
const char *tl_pth_file_of(const char *model, int i);

/* Import the .pth at path into safetensors at out (atomic: nothing is
 * left at out on failure), with metadata: normalization torch (what
 * torchvision's weights expect), input, source (the file's name),
 * source_format, source_xxh3, source_size, state_dict (its key, when not
 * the object itself), prefix_removed, converted, and model when the
 * file name is a torchvision one (tl_pth_model_of). */
tl_status tl_pth_import(const char *path, const char *out, tl_pth_info *info, tl_err *err);

#endif
