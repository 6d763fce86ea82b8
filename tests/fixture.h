/* fixture.h - synthetic CIFAR-10/100 distributions for tests: deterministic
 * pixels and labels, written as a .tar.gz/.tar with libarchive or as a
 * directory, with optional defects. */
#ifndef TL_FIXTURE_H
#define TL_FIXTURE_H

#include <stdint.h>

typedef struct {
	int dataset;      /* 10 or 100 */
	int per_batch;    /* CIFAR-10: records per data_batch_N; CIFAR-100: train records */
	int test_count;   /* records in the test member */
	int gzip;         /* 1: .tar.gz, 0: plain tar */
	int as_dir;       /* write an extracted directory instead of an archive */
	int with_meta;    /* write batches.meta.txt / label name files */
	int odd_order;    /* members in the official tarball's scrambled order */
	int skip_batch;   /* omit data_batch_N (0: none) */
	int extra_bytes;  /* bytes appended to data_batch_1 / train.bin */
	int bad_label_at; /* record of the test member whose label is 200 (-1: none) */
	int dup_batch;    /* write data_batch_1 twice */
} fixture_opts;

void fixture_defaults(fixture_opts *o);

/* Member id: CIFAR-10 train batch b -> b (1..5), test -> 6; CIFAR-100
 * train -> 1, test -> 2.  Values of record r of member id: */
uint8_t fixture_pixel(int member, int r, int i);
uint8_t fixture_label(int member, int r);        /* class (fine) */
uint8_t fixture_coarse(int member, int r);       /* CIFAR-100 coarse */

/* Write the fixture; 0 on success, -1 with a message on stderr. */
int fixture_write(const char *path, const fixture_opts *o);

#endif
