/* cifar.h - stream the members of a CIFAR-10/100 binary distribution: a
 * .tar.gz (or any archive/filter libarchive reads) or the extracted
 * directory.  Nothing is extracted to disk and nothing is held whole in
 * memory: callers pull member data in blocks. */
#ifndef TL_CIFAR_H
#define TL_CIFAR_H

#include <stdint.h>

#include "tl.h"

#define TL_CIFAR_PIXELS 3072 /* 3 x 32 x 32, planes R, G, B */
#define TL_CIFAR10_RECORD 3073  /* label, pixels */
#define TL_CIFAR100_RECORD 3074 /* coarse label, fine label, pixels */

typedef enum {
	TL_MEMBER_OTHER = 0,   /* not ours (readme.html, directories...) */
	TL_MEMBER_C10_TRAIN,   /* data_batch_N.bin, N in 1..5 */
	TL_MEMBER_C10_TEST,    /* test_batch.bin */
	TL_MEMBER_C10_META,    /* batches.meta.txt: class names */
	TL_MEMBER_C100_TRAIN,  /* train.bin */
	TL_MEMBER_C100_TEST,   /* test.bin */
	TL_MEMBER_C100_FINE,   /* fine_label_names.txt */
	TL_MEMBER_C100_COARSE  /* coarse_label_names.txt */
} tl_member_kind;

typedef struct {
	char path[512];   /* as in the archive, e.g. cifar-10-batches-bin/test_batch.bin */
	char base[512];   /* the basename of path */
	uint64_t size;    /* declared size in bytes */
	tl_member_kind kind;
	int batch;        /* N of data_batch_N, else 0 */
} tl_cifar_member;

typedef struct tl_cifar_src tl_cifar_src;

/* Classify a member by basename; *batch gets N for data_batch_N.bin. */
tl_member_kind tl_cifar_classify(const char *base, int *batch);

/* Open a tarball/archive or a directory (which may hold the standard
 * cifar-10-batches-bin/ or cifar-100-binary/ folder). */
tl_status tl_cifar_open(tl_cifar_src **out, const char *path, tl_err *err);

/* Advance to the next regular-file member; *done = 1 at the end. */
tl_status tl_cifar_next(tl_cifar_src *s, tl_cifar_member *m, int *done, tl_err *err);

/* Read exactly n bytes of the current member; a short member, a
 * truncated or corrupt stream is an error naming the member. */
tl_status tl_cifar_read(tl_cifar_src *s, void *buf, size_t n, tl_err *err);

/* Source bytes consumed so far and the source's total size (for
 * progress; for a directory, member bytes). */
uint64_t tl_cifar_consumed(const tl_cifar_src *s);
uint64_t tl_cifar_total(const tl_cifar_src *s);

/* After the last member: read the rest of the source file and return its
 * size and XXH3-64 (hash 0 for a directory). */
tl_status tl_cifar_finish(tl_cifar_src *s, uint64_t *size, uint64_t *hash, tl_err *err);

void tl_cifar_close(tl_cifar_src *s);

/* The CIFAR-10 class names, used when batches.meta.txt is absent. */
extern const char *const tl_cifar10_names[10];

#endif
