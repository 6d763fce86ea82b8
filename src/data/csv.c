/* csv.c - strict RFC 4180 reader (see csv.h). */
#include "data/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tl_csv {
	char *buf;      /* every field, unquoted, NUL-terminated, in order */
	size_t *field;  /* offset in buf of field i (rows x cols) */
	size_t *line;   /* line of each record */
	size_t rows, cols;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * elem);
	if (!q)
		return -1;
	*p = q, *cap = c;
	return 0;
}

tl_status tl_csv_parse(tl_csv **out, const char *name, const char *text, size_t n,
		       tl_err *err)
{
	*out = NULL;
	tl_csv *c = calloc(1, sizeof *c);
	if (!c)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", name);
	size_t bcap = 0, fcap = 0, lcap = 0, nf = 0, used = 0;
	size_t i = 0, line = 1;
	tl_status st = TL_OK;
	if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	/* the output is never longer than the input plus a NUL per field */
	if (grow((void **)&c->buf, &bcap, n + 1, 1))
		goto nomem;
	while (i < n) {
		/* skip empty lines between records */
		if (text[i] == '\n') {
			i++, line++;
			continue;
		}
		if (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') {
			i += 2, line++;
			continue;
		}
		size_t rec_line = line, cols = 0;
		for (;;) { /* one field */
			if (cols == TL_CSV_MAX_COLS) {
				st = tl_seterr(err, TL_EFORMAT, "%s: line %zu: more than %d fields",
					       name, line, TL_CSV_MAX_COLS);
				goto fail;
			}
			/* worst case every byte a field: one NUL each */
			if (grow((void **)&c->buf, &bcap, used + (n - i) + 2, 1) ||
			    grow((void **)&c->field, &fcap, nf + 1, sizeof *c->field))
				goto nomem;
			c->field[nf++] = used;
			cols++;
			if (i < n && text[i] == '"') {
				size_t qline = line;
				i++;
				for (;;) {
					if (i == n) {
						st = tl_seterr(err, TL_EFORMAT,
							       "%s: line %zu: quoted field not closed (expected a closing \")",
							       name, qline);
						goto fail;
					}
					char ch = text[i];
					if (ch == '"') {
						if (i + 1 < n && text[i + 1] == '"') {
							c->buf[used++] = '"';
							i += 2;
							continue;
						}
						i++;
						break;
					}
					if (ch == 0) {
						st = tl_seterr(err, TL_EFORMAT, "%s: line %zu: NUL byte",
							       name, line);
						goto fail;
					}
					line += ch == '\n';
					c->buf[used++] = ch;
					i++;
				}
				if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
					st = tl_seterr(err, TL_EFORMAT,
						       "%s: line %zu: '%c' after a closing quote (expected , or the end of the line)",
						       name, line, text[i]);
					goto fail;
				}
			} else {
				while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
					if (text[i] == '"') {
						st = tl_seterr(err, TL_EFORMAT,
							       "%s: line %zu: quote inside an unquoted field (expected the whole field in quotes, with \"\" for a quote)",
							       name, line);
						goto fail;
					}
					if (text[i] == 0) {
						st = tl_seterr(err, TL_EFORMAT, "%s: line %zu: NUL byte",
							       name, line);
						goto fail;
					}
					c->buf[used++] = text[i++];
				}
			}
			c->buf[used++] = 0;
			if (i < n && text[i] == ',') {
				i++;
				continue;
			}
			break;
		}
		/* end of the record: LF, CRLF or the end of the text */
		if (i < n && text[i] == '\r') {
			if (i + 1 >= n || text[i + 1] != '\n') {
				st = tl_seterr(err, TL_EFORMAT,
					       "%s: line %zu: carriage return without a line feed", name, line);
				goto fail;
			}
			i++;
		}
		if (i < n) /* text[i] == '\n' */
			i++, line++;
		if (c->rows == 0)
			c->cols = cols;
		else if (cols != c->cols) {
			st = tl_seterr(err, TL_EFORMAT, "%s: line %zu: %zu fields (expected %zu, as the header)",
				       name, rec_line, cols, c->cols);
			goto fail;
		}
		if (grow((void **)&c->line, &lcap, c->rows + 1, sizeof *c->line))
			goto nomem;
		c->line[c->rows++] = rec_line;
	}
	if (c->rows == 0) {
		st = tl_seterr(err, TL_EFORMAT, "%s: no header row (expected e.g. path,label)", name);
		goto fail;
	}
	*out = c;
	return TL_OK;
nomem:
	st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", name);
fail:
	tl_csv_free(c);
	return st;
}

size_t tl_csv_rows(const tl_csv *c)
{
	return c->rows;
}

size_t tl_csv_cols(const tl_csv *c)
{
	return c->cols;
}

const char *tl_csv_field(const tl_csv *c, size_t row, size_t col)
{
	if (row >= c->rows || col >= c->cols)
		return NULL;
	return c->buf + c->field[row * c->cols + col];
}

size_t tl_csv_line(const tl_csv *c, size_t row)
{
	return row < c->rows ? c->line[row] : 0;
}

void tl_csv_free(tl_csv *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c->field);
	free(c->line);
	free(c);
}
