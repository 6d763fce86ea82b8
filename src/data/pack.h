/* pack.h - CIFAR-10/100 binary distribution -> .tls shard.
 *
 * A reader thread streams the source (libarchive or a directory) in
 * blocks of raw records through a small bounded queue; the calling
 * thread validates labels, resizes/normalizes/converts each block on the
 * pool and appends it to the shard writer.  Memory stays at a few blocks
 * whatever the output size. */
#ifndef TL_PACK_H
#define TL_PACK_H

#include <signal.h>
#include <stdint.h>

#include "data/image.h"
#include "tl.h"

typedef struct {
	const char *input;
	const char *output; /* NULL: cifar10.tls or cifar100.tls in the cwd */
	int height, width;  /* output size, 1..512 */
	tl_filter filter;
	tl_dtype dtype;
	tl_norm_kind norm;
	int threads;            /* <= 0: all cores */
	uint32_t chunk_records; /* 0: default */
	int quiet;              /* no progress bar */
	const volatile sig_atomic_t *cancel; /* nonzero: stop, remove output */
} tl_pack_opts;

typedef struct {
	char output[4096];
	char dataset[32];
	uint64_t records, train, test;
	double seconds;
	unsigned stale_files;  /* temporaries of killed runs removed beside the output */
	uint64_t stale_bytes;
} tl_pack_result;

#define TL_PACK_MAX_SIZE 512

/* Pack o->input into a shard.  On any failure (bad input, I/O, cancel)
 * nothing is left under the output name. */
tl_status tl_pack(const tl_pack_opts *o, tl_pack_result *res, tl_err *err);

#endif
