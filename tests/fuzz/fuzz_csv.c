/* fuzz_csv.c - libFuzzer harness for the strict CSV reader (data/csv.c):
 * parse the input; when it parses, every field of every record must be
 * readable, no longer than the input, and the record lines increasing
 * and within the input's line count.  Built by bench/fuzz.sh. */
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tl_csv *c;
	tl_err err;
	if (tl_csv_parse(&c, "fuzz.csv", (const char *)data, size, &err) != TL_OK)
		return 0;
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	size_t prev = 0;
	for (size_t r = 0; r < tl_csv_rows(c); r++) {
		size_t l = tl_csv_line(c, r);
		if (l <= prev || l > lines)
			abort();
		prev = l;
		for (size_t k = 0; k < tl_csv_cols(c); k++) {
			const char *f = tl_csv_field(c, r, k);
			if (!f || strlen(f) > size)
				abort();
		}
		if (tl_csv_field(c, r, tl_csv_cols(c)))
			abort();
	}
	tl_csv_free(c);
	return 0;
}
