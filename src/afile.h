/* afile.h - atomic output files: write to a temporary file beside the
 * target, fsync, rename over the target, fsync the directory.  Until
 * commit succeeds the target path is untouched, so a crash, a full disk
 * or a bad input never leaves a half-written file under the final name. */
#ifndef TL_AFILE_H
#define TL_AFILE_H

#include <stdint.h>
#include <stdio.h>

#include "tl.h"

typedef struct {
	int fd;
	char *path; /* final name */
	char *tmp;  /* temporary name, same directory; NULL for a stream */
	uint64_t written;
	int stream; /* written through in order: no temporary, no rename */
} tl_afile;

/* Create the temporary file.  What the target is decides how it is
 * written, one rule for every output of every program:
 *  - absent, or a regular file: a temporary beside it, renamed over it
 *    by commit (a symbolic link at the target is replaced, not followed);
 *  - "-", the file open on our standard output or error (-o /dev/stdout),
 *    a FIFO, or the null device: written through as a stream, in order
 *    (tl_afile_pwrite may only append), nothing renamed or created;
 *  - anything else that exists (a directory, a block device, any other
 *    character device, a socket): refused, TL_EUSAGE, naming what it is,
 *    so that no output ever replaces a device node (-o /dev/sda);
 *  - a file this process read as an input (infile.h): refused, TL_EUSAGE,
 *    naming the input, so that no output replaces an input.
 * Fails (naming the directory) if the directory is not writable. */
tl_status tl_afile_open(tl_afile *f, const char *path, tl_err *err);

/* Whether path may be an output now, by tl_afile_open's rule (seekable:
 * tl_afile_open_file's), creating nothing: for mains, to refuse before
 * long work (after tl_infile_note of their inputs). */
tl_status tl_afile_check(const char *path, int seekable, tl_err *err);

/* tl_afile_open for outputs that must be seekable (a shard writes its
 * header last): a stream target is refused, TL_EUSAGE, saying so. */
tl_status tl_afile_open_file(tl_afile *f, const char *path, tl_err *err);

/* Append n bytes; a short write (ENOSPC, EFBIG, EIO) is an error naming
 * the file and the offset. */
tl_status tl_afile_write(tl_afile *f, const void *buf, size_t n, tl_err *err);

/* Write n bytes at an absolute offset (does not move the append point). */
tl_status tl_afile_pwrite(tl_afile *f, const void *buf, size_t n, uint64_t off, tl_err *err);

/* Append zero bytes until the file is `size` bytes long. */
tl_status tl_afile_pad_to(tl_afile *f, uint64_t size, tl_err *err);

/* fsync, close, rename over the final name, fsync the directory (a
 * stream: close it).  The target is checked again first (it may have
 * become an input or a device since open).  On failure the temporary
 * file is removed.  Frees f's strings. */
tl_status tl_afile_commit(tl_afile *f, tl_err *err);

/* Close and remove the temporary file; safe on a zeroed or committed f.
 * What was written to a stream cannot be taken back. */
void tl_afile_abort(tl_afile *f);

/* Write a whole buffer to path atomically. */
tl_status tl_write_file_atomic(const char *path, const void *buf, size_t n, tl_err *err);

/* Remove the temporary files of `path` (".NAME.tmp.PID.XXXXXX" beside
 * it) whose writer process no longer exists, as a SIGKILLed run leaves
 * them; *files and *bytes say what was removed.  Temporaries of live
 * processes and anything not named like ours are left alone. */
tl_status tl_afile_clean_stale(const char *path, unsigned *files, uint64_t *bytes, tl_err *err);

/* 1 if both paths exist and name the same file (device and inode), so an
 * output would replace an input; 0 otherwise. */
int tl_same_file(const char *a, const char *b);

#endif
