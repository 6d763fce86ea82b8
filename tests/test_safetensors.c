/* test_safetensors.c - the safetensors reader on well-formed and malformed
 * files written byte by byte: header length (too short a file, zero,
 * beyond the file), bad JSON, a header that is not an object, missing or
 * ill-typed fields, unknown dtype, too many or negative dimensions,
 * data_offsets out of range, reversed, or not matching the shape; the
 * xxh3 check; tl_st_read_f32 conversions and its shape / dtype errors; and
 * a write -> read round trip.  Each error must name the file and say what
 * is wrong. */
#define _GNU_SOURCE
#include "infile.h"
#include "tl_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "nn/safetensors.h"

static char dir[256], path[300];

static int setup(void **state)
{
	(void)state;
	if (tl_test_mkdir(dir, sizeof dir, "st"))
		return -1;
	snprintf(path, sizeof path, "%s/t.safetensors", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tl_test_rmdir(dir);
}

/* Write raw bytes: u64 `hlen` (little-endian), then json, then n data bytes. */
static void write_raw(uint64_t hlen, const char *json, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(hlen >> (8 * i));
	fwrite(le, 1, 8, f);
	fwrite(json, 1, strlen(json), f);
	if (n)
		fwrite(data, 1, n, f);
	fclose(f);
}

static void write_st(const char *json, const void *data, size_t n)
{
	write_raw(strlen(json), json, data, n);
}

/* Opening fails with `code` and a message holding the path and `want`. */
static void expect_fail(tl_status code, const char *want)
{
	tl_st_file *f = (tl_st_file *)1;
	tl_err err;
	tl_status st = tl_st_open(&f, path, &err);
	if (st != code)
		fail_msg("status %d, expected %d (%s)", st, code, st ? err.msg : "opened");
	assert_null(f);
	if (!strstr(err.msg, path) || !strstr(err.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static const float six[6] = {1, -2, 3.5f, 0.25f, -0.125f, 1e-3f};

static void well_formed_and_padded(void **state)
{
	(void)state;
	/* the reference writer pads the header with spaces to 8 bytes */
	write_st("{\"__metadata__\":{\"k\":\"v\",\"n\":3},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
		 "\"data_offsets\":[0,24]},\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[24,24]}}   ",
		 six, sizeof six);
	tl_st_file *f;
	tl_err err;
	if (tl_st_open(&f, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(f->n, 2);
	assert_string_equal(tl_st_meta(f, "k"), "v");
	assert_null(tl_st_meta(f, "n")); /* non-string metadata is skipped */
	const tl_st_tensor *t = tl_st_find(f, "w");
	assert_non_null(t);
	assert_int_equal(t->ndim, 2);
	assert_int_equal(t->shape[0], 2);
	assert_int_equal(t->shape[1], 3);
	assert_int_equal(t->numel, 6);
	assert_int_equal(t->nbytes, 24);
	assert_memory_equal(t->data, six, sizeof six);
	assert_int_equal(tl_st_find(f, "e")->numel, 0);
	assert_null(tl_st_find(f, "nope"));
	tl_st_close(f);
}

static void header_length(void **state)
{
	(void)state;
	FILE *fp = fopen(path, "wb");
	fwrite("\x10\0\0\0\0", 1, 5, fp); /* shorter than the length field */
	fclose(fp);
	expect_fail(TL_EFORMAT, "expected at least 8 bytes, got 5");
	write_raw(0, "", NULL, 0);
	expect_fail(TL_EFORMAT, "header length 0 does not fit a 8-byte file");
	write_raw(1000, "{}", NULL, 0); /* longer than what follows */
	expect_fail(TL_EFORMAT, "header length 1000 does not fit a 10-byte file");
	write_raw(UINT64_MAX, "{}", NULL, 0); /* overflow bait */
	expect_fail(TL_EFORMAT, "does not fit a 10-byte file");
	write_raw(3, "{}", NULL, 0); /* one past the end */
	expect_fail(TL_EFORMAT, "header length 3 does not fit");
}

static void bad_json(void **state)
{
	(void)state;
	write_st("{\"w\":{\"dtype\":\"F32\",", NULL, 0);
	expect_fail(TL_EFORMAT, "header: bad JSON at byte");
	write_st("{} trailing", NULL, 0);
	expect_fail(TL_EFORMAT, "header: bad JSON");
	write_st("[1,2]", NULL, 0);
	expect_fail(TL_EFORMAT, "header: expected a JSON object");
	write_st("{\"__metadata__\":[\"a\"]}", NULL, 0);
	expect_fail(TL_EFORMAT, "__metadata__: expected an object of strings");
}

static void bad_fields(void **state)
{
	(void)state;
	const char *cases[] = {
		"{\"w\":{\"shape\":[6],\"data_offsets\":[0,24]}}",                    /* no dtype */
		"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}}",                /* no shape */
		"{\"w\":{\"dtype\":\"F32\",\"shape\":[6]}}",                          /* no offsets */
		"{\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0]}}",     /* one offset */
		"{\"w\":{\"dtype\":32,\"shape\":[6],\"data_offsets\":[0,24]}}",       /* dtype not a string */
		"{\"w\":{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}}",    /* shape not a list */
		"{\"w\":[1,2,3]}",                                                     /* entry not an object */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		write_st(cases[i], six, sizeof six);
		expect_fail(TL_EFORMAT, "tensor w: expected dtype, shape and data_offsets [begin, end]");
	}
	write_st("{\"w\":{\"dtype\":\"Q4\",\"shape\":[6],\"data_offsets\":[0,24]}}", six, sizeof six);
	expect_fail(TL_EFORMAT, "tensor w: unknown dtype Q4");
	write_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,6],\"data_offsets\":[0,24]}}",
		 six, sizeof six);
	expect_fail(TL_EFORMAT, "tensor w: 9 dimensions (at most 8)");
	write_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[-6],\"data_offsets\":[0,24]}}", six, sizeof six);
	expect_fail(TL_EFORMAT, "tensor w: bad shape");
	write_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,24]}}", six, sizeof six);
	expect_fail(TL_EFORMAT, "tensor w: bad shape");
	/* element count overflows 64 bits */
	write_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,24]}}",
		 six, sizeof six);
	expect_fail(TL_EFORMAT, "tensor w: bad shape");
}

static void bad_offsets(void **state)
{
	(void)state;
	const struct {
		const char *json, *want;
	} cases[] = {
		/* end beyond the 24-byte data section */
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[4,28]}}",
		 "data_offsets [4, 28] do not fit 6 elements of F32 in a 24-byte data section"},
		/* reversed */
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
		 "data_offsets [8, 4] do not fit"},
		/* negative begin */
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}",
		 "data_offsets [-4, 0] do not fit"},
		/* span does not match the shape: 6 F32 are 24 bytes, not 20 */
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,20]}}",
		 "data_offsets [0, 20] do not fit 6 elements of F32"},
		/* ... nor 3 x 2 F16 (12 bytes) in 24 */
		{"{\"w\":{\"dtype\":\"F16\",\"shape\":[3,2],\"data_offsets\":[0,24]}}",
		 "data_offsets [0, 24] do not fit 6 elements of F16"},
		/* offsets that are not integers */
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}",
		 "data_offsets"},
		/* a later tensor is checked too */
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		 "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[4,28]}}",
		 "tensor b: data_offsets [4, 28] do not fit 3 elements of I64"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		write_st(cases[i].json, six, sizeof six);
		expect_fail(TL_EFORMAT, cases[i].want);
	}
}

/* A repeated tensor or metadata name used to be accepted (the last one
 * won), and two tensors could share bytes: both are refused now. */
static void duplicates_and_overlaps(void **state)
{
	(void)state;
	const struct {
		const char *json, *want;
	} cases[] = {
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		 "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
		 "duplicate object key"},
		{"{\"__metadata__\":{\"lr\":\"0.1\",\"lr\":\"nan\"},"
		 "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
		 "duplicate object key"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
		 "data_offsets overlap"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}",
		 "data_offsets overlap"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		write_st(cases[i].json, six, sizeof six);
		expect_fail(TL_EFORMAT, cases[i].want);
	}
	/* a directory is named as one (mmap used to say "No such device") */
	char d[sizeof path + 8];
	snprintf(d, sizeof d, "%s.dir", path);
	assert_int_equal(mkdir(d, 0755), 0);
	tl_st_file *g = (tl_st_file *)1;
	tl_err e2;
	assert_int_equal(tl_st_open(&g, d, &e2), TL_EIO);
	assert_null(g);
	rmdir(d);
	if (!strstr(e2.msg, "not a regular file (it is a directory)"))
		fail_msg("directory: %s", e2.msg);
	/* adjacent tensors and empty tensors sharing an offset are fine */
	write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
		 six, sizeof six);
	tl_st_file *f;
	tl_err err;
	assert_int_equal(tl_st_open(&f, path, &err), TL_OK);
	assert_int_equal(f->n, 3);
	tl_st_close(f);
}

static void checksum(void **state)
{
	(void)state;
	char json[256];
	unsigned long long h = (unsigned long long)XXH3_64bits(six, sizeof six);
	snprintf(json, sizeof json,
		 "{\"__metadata__\":{\"xxh3\":\"%016llx\"},\"w\":{\"dtype\":\"F32\",\"shape\":[6],"
		 "\"data_offsets\":[0,24]}}",
		 h);
	write_st(json, six, sizeof six);
	tl_st_file *f;
	tl_err err;
	assert_int_equal(tl_st_open(&f, path, &err), TL_OK);
	tl_st_close(f);
	float bad[6];
	memcpy(bad, six, sizeof bad);
	bad[5] = 2e-3f;
	write_st(json, bad, sizeof bad);
	expect_fail(TL_ECHECKSUM, "data section: checksum mismatch");
}

static void read_f32_converts_and_checks(void **state)
{
	(void)state;
	/* F16 1.5, -2; BF16 1.5, -2; F64 0.1; I64 7 */
	const uint8_t data[] = {0x00, 0x3e, 0x00, 0xc0, 0xc0, 0x3f, 0x00, 0xc0,
				0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f,
				7, 0, 0, 0, 0, 0, 0, 0};
	write_st("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
		 "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]},"
		 "\"d\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[8,16]},"
		 "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]}}",
		 data, sizeof data);
	tl_st_file *f;
	tl_err err;
	if (tl_st_open(&f, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	float v[2];
	const int64_t s2[] = {2}, s11[] = {1, 1}, s1[] = {1}, s3[] = {3};
	assert_int_equal(tl_st_read_f32(f, "h", 1, s2, v, &err), TL_OK);
	assert_true(v[0] == 1.5f && v[1] == -2.0f);
	assert_int_equal(tl_st_read_f32(f, "b", 1, s2, v, &err), TL_OK);
	assert_true(v[0] == 1.5f && v[1] == -2.0f);
	assert_int_equal(tl_st_read_f32(f, "d", 2, s11, v, &err), TL_OK);
	assert_true(v[0] == 0.1f);
	assert_int_equal(tl_st_read_f32(f, "i", 1, s1, v, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "tensor i: dtype I64 is not a float type"));
	assert_int_equal(tl_st_read_f32(f, "h", 1, s3, v, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "tensor h: wrong shape (expected [3], got [2])"));
	assert_int_equal(tl_st_read_f32(f, "d", 1, s1, v, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "wrong shape (expected [1], got [1, 1])"));
	assert_int_equal(tl_st_read_f32(f, "zz", 1, s1, v, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "tensor zz: missing"));
	tl_st_close(f);
}

static void write_then_read(void **state)
{
	(void)state;
	const int64_t ids[3] = {-1, 0, 1ll << 40};
	const tl_st_out t[] = {
		{"a.weight", TL_ST_F32, 2, {3, 2}, six},
		{"ids", TL_ST_I64, 1, {3}, ids},
	};
	const char *meta[] = {"model", "vgg16", "note", "x"};
	tl_err err;
	assert_int_equal(tl_st_write(path, t, 2, meta, 2, &err), TL_OK);
	tl_st_file *f;
	if (tl_st_open(&f, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_non_null(tl_st_meta(f, "xxh3"));
	assert_string_equal(tl_st_meta(f, "model"), "vgg16");
	float got[6];
	const int64_t s[] = {3, 2};
	assert_int_equal(tl_st_read_f32(f, "a.weight", 2, s, got, &err), TL_OK);
	assert_memory_equal(got, six, sizeof six);
	assert_memory_equal(tl_st_find(f, "ids")->data, ids, sizeof ids);
	tl_st_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed_and_padded),
		cmocka_unit_test(header_length),
		cmocka_unit_test(bad_json),
		cmocka_unit_test(bad_fields),
		cmocka_unit_test(bad_offsets),
		cmocka_unit_test(duplicates_and_overlaps),
		cmocka_unit_test(checksum),
		cmocka_unit_test(read_f32_converts_and_checks),
		cmocka_unit_test(write_then_read),
	};
	tl_infile_remember(0); /* rewrites files it read (infile.h) */
	return cmocka_run_group_tests(tests, setup, teardown);
}
