/* infile.h - open an input file without trusting what the path names.
 *
 * A FIFO, a device or a directory given where a file is expected would
 * block a reader forever (a FIFO nobody writes) or feed it endless bytes
 * (/dev/zero).  Every reader opens its input through here: the open
 * itself does not block (O_NONBLOCK), anything but a regular file is
 * refused with a message naming what it is, and the descriptor is then
 * switched back to blocking reads. */
#ifndef TL_INFILE_H
#define TL_INFILE_H

#include <stdio.h>
#include <sys/stat.h>

#include "tl.h"

/* Open path read-only (O_CLOEXEC) as a regular file.  Returns the
 * descriptor, or -1 with err set to "PATH: cannot open: REASON" or
 * "PATH: not a regular file (it is a FIFO)" (TL_EIO).  When sb is not
 * NULL it receives the file's fstat. */
int tl_open_input(const char *path, struct stat *sb, tl_err *err);

/* tl_open_input as a stdio stream ("rb"); NULL with err set. */
FILE *tl_fopen_input(const char *path, tl_err *err);

/* What a file of this mode is, in words: "a FIFO", "a directory",
 * "a character device", "a block device", "a socket", "a symbolic link",
 * "a regular file". */
const char *tl_file_kind(mode_t mode);

#endif
