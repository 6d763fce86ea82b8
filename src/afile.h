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
	char *tmp;  /* temporary name, same directory */
	uint64_t written;
} tl_afile;

/* Create the temporary file.  Fails (naming the directory) if the
 * directory is not writable. */
tl_status tl_afile_open(tl_afile *f, const char *path, tl_err *err);

/* Append n bytes; a short write (ENOSPC, EFBIG, EIO) is an error naming
 * the file and the offset. */
tl_status tl_afile_write(tl_afile *f, const void *buf, size_t n, tl_err *err);

/* Write n bytes at an absolute offset (does not move the append point). */
tl_status tl_afile_pwrite(tl_afile *f, const void *buf, size_t n, uint64_t off, tl_err *err);

/* Append zero bytes until the file is `size` bytes long. */
tl_status tl_afile_pad_to(tl_afile *f, uint64_t size, tl_err *err);

/* fsync, close, rename over the final name, fsync the directory.
 * On failure the temporary file is removed.  Frees f's strings. */
tl_status tl_afile_commit(tl_afile *f, tl_err *err);

/* Close and remove the temporary file; safe on a zeroed or committed f. */
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
