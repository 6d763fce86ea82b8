/* csv.h - a small strict CSV reader (RFC 4180) for label lists
 * (tlpack --labels FILE.csv).
 *
 * The whole text is parsed at once into rows of NUL-terminated fields:
 * fields are separated by ',' and records by LF or CRLF; a field in
 * double quotes may hold commas, line breaks and doubled quotes ("");
 * a UTF-8 byte-order mark at the start is skipped; empty lines are
 * skipped; the last record may lack its line break.  Errors name the
 * line: a quote inside an unquoted field, anything but ',' or a line
 * break after a closing quote, a quoted field still open at the end, a
 * NUL byte, a lone CR, a record whose field count differs from the first
 * record's, more than TL_CSV_MAX_COLS fields. */
#ifndef TL_CSV_H
#define TL_CSV_H

#include <stddef.h>

#include "tl.h"

#define TL_CSV_MAX_COLS 256

typedef struct tl_csv tl_csv;

/* Parse text[0, n) (name is used in messages: "NAME: line L: ...").
 * At least one record (the header) is required. */
tl_status tl_csv_parse(tl_csv **out, const char *name, const char *text, size_t n,
		       tl_err *err);

/* Records, the header included, and fields per record. */
size_t tl_csv_rows(const tl_csv *c);
size_t tl_csv_cols(const tl_csv *c);

/* Field col of record row, unquoted and NUL-terminated (row < rows, col <
 * cols, else NULL). */
const char *tl_csv_field(const tl_csv *c, size_t row, size_t col);

/* The 1-based line of the file where record row starts. */
size_t tl_csv_line(const tl_csv *c, size_t row);

void tl_csv_free(tl_csv *c); /* NULL-safe */

#endif
