/* source.h - the data-source interface tlpack packs from.
 *
 * In the style of libarchive's format descriptors: each source is one
 * file in src/data/ (src_cifar.c, src_folder.c) exporting one const
 * tl_source descriptor; pack.c walks tl_sources[], asks each to probe the
 * input, and from then on only calls through the descriptor.  pack.c
 * knows no source's file layout, record size, class list or rules.
 *
 * A source delivers a stream of events from next(), always from the
 * packer's reader thread (one thread at a time, never concurrently):
 *   SEGMENT  a run of records that belongs to one split begins
 *   RECORD   one image: raw pixels or an encoded file, its labels, name
 *   END      nothing more
 * Event data stays valid until the next call to next().  Decoding an
 * encoded record, fitting and resizing are the packer's job, done on its
 * thread pool, so a source only reads bytes.  finish() runs after END:
 * completeness checks and the final description (class names, dataset,
 * source identity). */
#ifndef TL_SOURCE_H
#define TL_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "data/shard.h"
#include "tl.h"

/* Options a source may act on (those of tl_pack_opts that concern it). */
typedef struct {
	double test_fraction; /* > 0: hold out this fraction of each class as "test" */
	uint64_t seed;        /* for test_fraction's draw */
	int strict;           /* folder: a file that cannot be read is an error */
	const char *root;     /* csv: the folder the list's paths are relative to
			       * (NULL: the list's own folder) */
} tl_source_opts;

/* What a source says about its data.  Filled by open() as far as known
 * then (folder: everything), completed by the first SEGMENT (CIFAR:
 * dataset, label fields) and by finish() (CIFAR: names from the meta
 * members; every source: source_size and source_hash). */
typedef struct {
	char dataset[32];        /* "cifar10", or the folder's name */
	char output[256];        /* default output file name, e.g. "cifar10.tls" */
	int encoded;             /* 1: records are image files (decode, fit, resize) */
	int src_height, src_width; /* raw records' size; 0 when encoded */
	uint32_t n_label_fields; /* 1 class; 2 fine class, coarse class */
	uint32_t n_classes, n_coarse;
	/* names set with tl_src_set_name (NULL entries: not set); freed by
	 * tl_src_info_free */
	char **class_names, **coarse_names;
	uint32_t class_cap, coarse_cap;
	uint64_t source_size, source_hash; /* bytes and XXH3-64 of the source file (0 hash: directory) */
	/* files skipped, counted for the summary */
	uint64_t skipped_hidden, skipped_other, skipped_bad;
} tl_source_info;

typedef enum { TL_SRC_SEGMENT = 1, TL_SRC_RECORD, TL_SRC_END } tl_src_event_type;

typedef struct {
	tl_src_event_type type;
	/* SEGMENT */
	const char *member; /* segment name for the shard (<= 39 bytes kept) */
	const char *split;  /* "train", "test", "val" */
	uint32_t order;     /* sort key of the segment within its split */
	uint64_t expect;    /* records the segment will hold, 0 if unknown */
	/* RECORD */
	const uint8_t *data; /* raw: u8 [3][src_height][src_width]; encoded: file bytes */
	size_t size;         /* bytes at data */
	uint16_t label[2];   /* class, coarse class (n_label_fields used) */
	const char *name;    /* the record's file or member, for messages: "DIR/cat/x.jpg" */
	const char *rel;     /* its name kept in the shard: the path relative to
			      * the source's root ("cat/x.jpg", "train/cat/x.jpg"),
			      * the same for a folder and an archive of it; NULL:
			      * none (raw sources name records by member + index) */
	const char *error;   /* encoded: NULL, or why the file could not be read
			      * ("DIR/cat/x.jpg: Permission denied"); the packer
			      * skips it or, under --strict, fails with it */
} tl_src_event;

typedef struct tl_source {
	const char *name; /* "cifar-binary", "folder" */
	/* 1 if this source takes path (sb: its stat).  Cheap: names and
	 * stat only, no reading of image data. */
	int (*probe)(const char *path, const struct stat *sb);
	/* Open path; *state is the source's own.  info is zeroed by the
	 * caller and lives as long as the state. */
	tl_status (*open)(void **state, const char *path, const tl_source_opts *o,
			  tl_source_info *info, tl_err *err);
	tl_status (*next)(void *state, tl_src_event *ev, tl_err *err);
	/* After END: check the source was complete, fill the rest of info. */
	tl_status (*finish)(void *state, tl_err *err);
	/* Progress: source bytes read so far and in all (may be estimates). */
	uint64_t (*consumed)(void *state);
	uint64_t (*total)(void *state);
	void (*close)(void *state); /* NULL-safe */
} tl_source;

extern const tl_source tl_source_cifar; /* src_cifar.c */
extern const tl_source tl_source_folder; /* src_folder.c */
extern const tl_source tl_source_archive; /* src_archive.c */
extern const tl_source tl_source_pycifar; /* src_pycifar.c: the CIFAR python version */
extern const tl_source tl_source_csv; /* src_csv.c: a CSV list of images (tlpack --labels) */

/* The source that takes path: the first whose probe says yes, in order
 * archive of image folders, CIFAR binary, image folder.  NULL with an error naming path and what
 * inputs are understood when none does. */
const tl_source *tl_source_find(const char *path, tl_err *err);

/* The source called name ("csv"), for inputs chosen by an option rather
 * than probed (a CSV list is a text file any probe could misread, and
 * none should take it unasked); NULL with an error when none is. */
const tl_source *tl_source_named(const char *name, tl_err *err);

/* Name class i (coarse: coarse class i) of in: a copy of name, after
 * tl_shard_name_problem's check (the error names `where`: the folder or
 * member the name came from).  The table grows as needed; n_classes and
 * n_coarse are the source's to set. */
tl_status tl_src_set_name(tl_source_info *in, int coarse, uint32_t i, const char *name,
			  const char *where, tl_err *err);

/* Free the names of in (NULL-safe, leaves in without names). */
void tl_src_info_free(tl_source_info *in);

/* ---- shared by the image sources (src_folder.c, src_archive.c, src_csv.c) ---- */

enum { TL_SRC_TRAIN, TL_SRC_VAL, TL_SRC_TEST, TL_SRC_N_SPLITS };
extern const char *const tl_src_split_names[TL_SRC_N_SPLITS]; /* "train", "val", "test" */

/* One image file of a class-folder tree. */
typedef struct {
	char *dir;  /* folder relative to the root, e.g. "train/cat/sub" */
	char *name; /* file name */
	uint64_t size;
	uint64_t ord;  /* archive: the member's position in the archive */
	uint8_t *data; /* archive: its bytes while buffered, else NULL */
	uint16_t cls;
	uint8_t split;
} tl_src_entry;

/* Append name as class in->n_classes: the one place these sources store
 * a class name (through tl_src_set_name).  TL_EFORMAT naming where
 * ("DIR/cat", "list.csv: line 4") when the name is not one a shard takes
 * (tl_shard_name_problem) or there are already as many classes as a
 * shard holds. */
tl_status tl_src_add_class(tl_source_info *in, const char *name, const char *where, tl_err *err);

/* Read the file at path whole into *buf (grown as needed; *cap bytes
 * allocated), refusing files over max bytes.  Returns NULL with *size
 * set, or why not in msg (n bytes; "PATH: cannot open: REASON", "PATH:
 * file too large (...)"), which is also returned. */
const char *tl_src_read_file(const char *path, uint64_t max, uint8_t **buf, size_t *cap,
			     size_t *size, char *msg, size_t n);

/* in's dataset and default output named after folder dir's own name
 * ("pets/" -> "pets", "pets.tls"; "." -> the current folder's name;
 * "images" for the root), as the folder and CSV sources name a tree. */
void tl_src_name_after_dir(tl_source_info *in, const char *dir);

/* Free n entries (their dir, name and buffered data) and the array. */
void tl_src_entries_free(tl_src_entry *e, size_t n);

/* 1 if name has an image extension: .jpg .jpeg .jpe .jfif .png .ppm .pgm
 * .pnm, any case. */
int tl_src_is_image_name(const char *name);

/* qsort comparator: split, class, folder, file name (strcmp: the order of
 * Python's sorted(os.walk(...))). */
int tl_src_entry_cmp(const void *a, const void *b);

/* --test F on entries sorted by tl_src_entry_cmp: in each class of the
 * train split, round(F * n) entries (at least 1 when F > 0 and n >= 2,
 * never all) move to the test split, chosen by a Fisher-Yates draw keyed
 * by (seed, class).  Re-sort afterwards.  Out of memory: nothing moves
 * and -1 is returned, else 0. */
int tl_src_hold_out(tl_src_entry *e, size_t n, double f, uint64_t seed);

#endif
