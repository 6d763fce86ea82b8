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

/* Every file opened through tl_open_input is remembered (device, inode,
 * modification time and the path it was opened as) for the life of the process,
 * so that tl_afile_open can refuse an output that would replace one of the
 * program's own inputs (tleval --predictions MODEL, tlpack -o INPUT).
 * Returns 1 and copies the path the file was read as into path (n bytes)
 * when sb names a remembered input, else 0.  Thread-safe. */
int tl_infile_was_read(const struct stat *sb, char *path, size_t n);

/* Remember path as an input before it is opened (a main, so that its
 * outputs are checked against it before any work: tl_afile_check).  A
 * path that cannot be stat()ed is ignored: opening it will say why. */
void tl_infile_note(const char *path);

/* Forget an input the program means to replace: tltrain --resume reads
 * RUN/checkpoint.safetensors and then writes its next version.  A path
 * that is not (or no longer) a remembered input is ignored. */
void tl_infile_forget(const char *path);

/* Remembering is on from the start of every process; off (on = 0) it
 * forgets every input and remembers none until switched on again.  For
 * tests that write, read and rewrite one file name in one process. */
void tl_infile_remember(int on);

/* What a file of this mode is, in words: "a FIFO", "a directory",
 * "a character device", "a block device", "a socket", "a symbolic link",
 * "a regular file". */
const char *tl_file_kind(mode_t mode);

#endif
