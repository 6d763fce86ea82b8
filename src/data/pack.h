/* pack.h - a data source (source.h: CIFAR binary, image folder) -> .tls
 * shard.
 *
 * A reader thread pulls records from the source and hands them over in
 * blocks through a small bounded queue; the calling thread decodes
 * (encoded sources), fits, resizes, normalizes and converts each block on
 * the pool and appends it to the shard writer.  Memory stays at a few
 * blocks whatever the output size. */
#ifndef TL_PACK_H
#define TL_PACK_H

#include <signal.h>
#include <stdint.h>

#include "data/fit.h"
#include "data/image.h"
#include "tl.h"

typedef struct {
	const char *input;  /* the source; with source "csv", the CSV list */
	const char *source; /* NULL: the source whose probe takes input; "csv":
			     * input is a CSV list of images (tlpack --labels) */
	const char *root;   /* csv: the folder its paths are relative to (NULL:
			     * the list's own folder) */
	const char *output; /* NULL: named after the source (cifar10.tls, pets.tls) */
	int height, width;  /* output size, 1..512; 0, 0: the source's default
			     * (CIFAR 32, photos TL_PACK_PHOTO_SIZE) */
	tl_filter filter;
	tl_dtype dtype;     /* used for photo sources only when dtype_set */
	int dtype_set;      /* 0: photo sources store u8 (TL_PACK_PHOTO_DTYPE) */
	tl_norm_kind norm;
	tl_fit fit;
	double test_fraction; /* > 0: hold out this fraction of each class as "test" */
	uint64_t seed;        /* draws test_fraction's images */
	int strict;           /* an undecodable image fails the run instead of being skipped */
	int force;            /* replace an existing output file (else refused) */
	int threads;            /* <= 0: all cores */
	uint32_t chunk_records; /* 0: default */
	int quiet;              /* no progress bar */
	const volatile sig_atomic_t *cancel; /* nonzero: stop, remove output */
	/* called (from the calling thread) with "FILE: what is wrong" for
	 * each image skipped; may be NULL */
	void (*warn)(void *ctx, const char *msg);
	void *warn_ctx;
} tl_pack_opts;

typedef struct {
	char output[4096];
	char dataset[32];
	char source[32];  /* the source kind: "cifar-binary", "folder" */
	int height, width; /* the size packed */
	tl_dtype dtype;    /* the dtype stored */
	tl_fit fit;        /* the fit used (AUTO for raw sources) */
	uint64_t records, train, test, other; /* other: records of splits but train/test */
	uint32_t n_classes;
	uint64_t skipped_bad, skipped_hidden, skipped_other;
	double seconds;
	unsigned stale_files;  /* temporaries of killed runs removed beside the output */
	uint64_t stale_bytes;
} tl_pack_result;

#define TL_PACK_MAX_SIZE 512
/* Photo sources: the pretrained networks' native input (ImageNet 224). */
#define TL_PACK_PHOTO_SIZE 224
#define TL_PACK_PHOTO_DTYPE TL_DTYPE_U8

/* Pack o->input into a shard.  On any failure (bad input, I/O, cancel)
 * nothing is left under the output name.  An output file that exists is
 * refused (TL_EUSAGE, before any work) unless o->force; with it, the new
 * shard replaces the old one by rename only once complete. */
tl_status tl_pack(const tl_pack_opts *o, tl_pack_result *res, tl_err *err);

#endif
