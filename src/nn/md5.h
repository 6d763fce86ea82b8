/* md5.h - MD5 (RFC 1321) of a file or of bytes in memory, as the 32
 * lowercase hex digits Keras publishes for its weight files.  Used to
 * identify a source, never for security. */
#ifndef TL_MD5_H
#define TL_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

/* MD5 of n bytes at p into hex (32 digits and a NUL). */
void tl_md5_buf(const void *p, size_t n, char hex[33]);

/* MD5 of the whole file at path (opened with tl_open_input: a FIFO or a
 * device is refused, not read); *size (when not NULL) receives its length.
 * TL_EIO with "PATH: cannot open: ..." or "PATH: read error". */
tl_status tl_file_md5(const char *path, char hex[33], uint64_t *size, tl_err *err);

#endif
