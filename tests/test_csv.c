/* test_csv.c - the strict CSV reader (data/csv.c): quoting, line endings,
 * BOM, empty lines, line numbers, and every malformed case it refuses. */
#include "tl_test.h"

#include <string.h>

#include "data/csv.h"

static tl_csv *parse_ok(const char *text)
{
	tl_csv *c;
	tl_err err;
	tl_status st = tl_csv_parse(&c, "l.csv", text, strlen(text), &err);
	if (st != TL_OK)
		fail_msg("'%s' refused: %s", text, err.msg);
	return c;
}

static void quoting_and_line_endings(void **state)
{
	(void)state;
	tl_csv *c = parse_ok("\xef\xbb\xbfpath,label,split\r\n"
			     "cat/1.jpg,cat,train\r\n"
			     "\n"
			     "\"dog/a,b \"\"x\"\".jpg\",\"dog\",\r\n"
			     "\"two\nlines.png\",,test\n"
			     "last,\"\",val");
	assert_int_equal(tl_csv_rows(c), 5);
	assert_int_equal(tl_csv_cols(c), 3);
	assert_string_equal(tl_csv_field(c, 0, 0), "path"); /* BOM skipped */
	assert_string_equal(tl_csv_field(c, 0, 2), "split");
	assert_string_equal(tl_csv_field(c, 1, 0), "cat/1.jpg");
	assert_string_equal(tl_csv_field(c, 2, 0), "dog/a,b \"x\".jpg");
	assert_string_equal(tl_csv_field(c, 2, 1), "dog");
	assert_string_equal(tl_csv_field(c, 2, 2), "");
	assert_string_equal(tl_csv_field(c, 3, 0), "two\nlines.png");
	assert_string_equal(tl_csv_field(c, 3, 1), "");
	assert_string_equal(tl_csv_field(c, 4, 1), "");
	assert_string_equal(tl_csv_field(c, 4, 2), "val");
	assert_null(tl_csv_field(c, 5, 0));
	assert_null(tl_csv_field(c, 0, 3));
	/* lines where records start: the empty line and the quoted line break count */
	assert_int_equal(tl_csv_line(c, 0), 1);
	assert_int_equal(tl_csv_line(c, 1), 2);
	assert_int_equal(tl_csv_line(c, 2), 4);
	assert_int_equal(tl_csv_line(c, 3), 5);
	assert_int_equal(tl_csv_line(c, 4), 7);
	tl_csv_free(c);
	c = parse_ok("a\n\n\n");
	assert_int_equal(tl_csv_rows(c), 1);
	assert_int_equal(tl_csv_cols(c), 1);
	tl_csv_free(c);
	c = parse_ok("a,b\n1,\n"); /* a trailing comma is an empty field */
	assert_string_equal(tl_csv_field(c, 1, 1), "");
	tl_csv_free(c);
}

static void malformed_is_refused_naming_the_line(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t n; /* 0: strlen */
		const char *msg;
	} bad[] = {
		{"", 0, "l.csv: no header row"},
		{"\n\r\n", 0, "l.csv: no header row"},
		{"path,label\na,b,c\n", 0, "l.csv: line 2: 3 fields (expected 2, as the header)"},
		{"path,label\n\nonly\n", 0, "l.csv: line 3: 1 fields (expected 2"},
		{"path,label\na\"b,c\n", 0, "l.csv: line 2: quote inside an unquoted field"},
		{"path,label\n\"a\"b,c\n", 0, "l.csv: line 2: 'b' after a closing quote"},
		{"path,label\n\"a\nb,c\n", 0, "l.csv: line 2: quoted field not closed"},
		{"path,label\na\rb,c\n", 0, "l.csv: line 2: carriage return without a line feed"},
		{"path,label\na,b\r", 0, "l.csv: line 2: carriage return without a line feed"},
		{"path,label\na\0,b\n", 15, "l.csv: line 2: NUL byte"},
		{"p,l\n\"a\0\",b\n", 11, "l.csv: line 2: NUL byte"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tl_csv *c = (tl_csv *)1;
		tl_err err;
		size_t n = bad[i].n ? bad[i].n : strlen(bad[i].text);
		if (tl_csv_parse(&c, "l.csv", bad[i].text, n, &err) != TL_EFORMAT)
			fail_msg("case %zu accepted", i);
		assert_null(c);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
	}
	/* more than TL_CSV_MAX_COLS fields */
	char wide[2 * TL_CSV_MAX_COLS + 8];
	size_t k = 0;
	for (int i = 0; i <= TL_CSV_MAX_COLS; i++)
		wide[k++] = 'x', wide[k++] = ',';
	wide[k - 1] = '\n';
	tl_csv *c;
	tl_err err;
	assert_int_equal(tl_csv_parse(&c, "l.csv", wide, k, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "line 1: more than 256 fields"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quoting_and_line_endings),
		cmocka_unit_test(malformed_is_refused_naming_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
