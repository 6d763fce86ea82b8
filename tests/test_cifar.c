/* test_cifar.c - the CIFAR reader and the pack pipeline on synthetic
 * distributions: layout, order, labels, pixels, CIFAR-100, directories,
 * resizing, and every malformed input (no output left behind). */
#define _GNU_SOURCE
#include "infile.h"
#include "tl_test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/cifar.h"
#include "fixture.h"
#include "data/pack.h"
#include "data/shard.h"

static char dir[256], src[512], out[300];

static int setup(void **state)
{
	(void)state;
	if (tl_test_mkdir(dir, sizeof dir, "cifar"))
		return -1;
	snprintf(src, sizeof src, "%s/in.tar.gz", dir);
	snprintf(out, sizeof out, "%s/out.tls", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tl_test_rmdir(dir);
}

static tl_status pack(int size, tl_dtype dt, tl_norm_kind nk, tl_err *err)
{
	tl_pack_opts o = {0};
	o.input = src;
	o.output = out;
	o.height = o.width = size;
	o.dtype = dt;
	o.norm = nk;
	o.threads = 2;
	o.quiet = 1;
	o.chunk_records = 7; /* many chunks, crossing member boundaries */
	o.force = 1;         /* each test packs to the same output again */
	tl_pack_result res;
	return tl_pack(&o, &res, err);
}

/* Files in dir other than the input fixture. */
static int outputs_left(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || (e->d_name[1] && e->d_name[1] != '.'))
			n += strncmp(e->d_name, "in.", 3) != 0;
	closedir(d);
	return n;
}

/* Check every record of a CIFAR-10 fixture shard against the generator. */
static void check_c10(const fixture_opts *fo, tl_dtype dt)
{
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, out, &err), TL_OK);
	const tl_shard_info *in = &sh->info;
	assert_string_equal(in->dataset, "cifar10");
	assert_int_equal(in->dtype, dt);
	int tr = tl_shard_split_find(sh, "train"), te = tl_shard_split_find(sh, "test");
	assert_int_equal(tr, 0);
	assert_int_equal(te, 1);
	assert_int_equal(in->splits[tr].count, 5 * fo->per_batch);
	assert_int_equal(in->splits[te].count, fo->test_count);
	assert_string_equal(in->class_names[0], fo->with_meta ? "zero" : "airplane");
	assert_string_equal(in->class_names[9], fo->with_meta ? "nine" : "truck");
	uint8_t rgb[3072];
	for (int s = 0; s < 2; s++)
		for (uint64_t i = 0; i < in->splits[s].count; i++) {
			int member = s == 0 ? (int)(i / fo->per_batch) + 1 : 6;
			int r = s == 0 ? (int)(i % fo->per_batch) : (int)i;
			uint64_t fr = tl_shard_file_record(sh, s, i);
			assert_int_equal(tl_shard_label(sh, fr, 0), fixture_label(member, r));
			const void *p;
			assert_int_equal(tl_shard_record(sh, fr, &p, &err), TL_OK);
			tl_image_to_rgb8(p, in->dtype, &in->norm, 32, 32, rgb);
			for (int c = 0; c < 3; c++)
				for (int k = 0; k < 1024; k++)
					if (rgb[k * 3 + c] != fixture_pixel(member, r, c * 1024 + k))
						fail_msg("split %d record %llu channel %d pixel %d: %d != %d",
							 s, (unsigned long long)i, c, k, rgb[k * 3 + c],
							 fixture_pixel(member, r, c * 1024 + k));
		}
	assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_OK);
	tl_shard_close(sh);
}

static void packs_tarball_in_any_member_order(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.odd_order = 1;
	assert_int_equal(fixture_write(src, &fo), 0);
	tl_err err;
	for (int dt = TL_DTYPE_U8; dt <= TL_DTYPE_F32; dt++) {
		assert_int_equal(pack(32, (tl_dtype)dt, TL_NORM_CAFFE, &err), TL_OK);
		check_c10(&fo, (tl_dtype)dt);
	}
	/* torch normalization keeps pixels exact too */
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_TORCH, &err), TL_OK);
	check_c10(&fo, TL_DTYPE_F16);
}

static void packs_plain_tar_and_directory(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.gzip = 0;
	fo.with_meta = 0;
	snprintf(src, sizeof src, "%s/in.tar", dir);
	assert_int_equal(fixture_write(src, &fo), 0);
	tl_err err;
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
	check_c10(&fo, TL_DTYPE_F16);
	fo.as_dir = 1;
	snprintf(src, sizeof src, "%s/in.dir", dir);
	assert_int_equal(fixture_write(src, &fo), 0);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
	check_c10(&fo, TL_DTYPE_F16);
	/* the folder itself works as well as its parent */
	strcat(src, "/cifar-10-batches-bin");
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
	check_c10(&fo, TL_DTYPE_F16);
}

static void packs_cifar100_with_both_labels(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.dataset = 100;
	fo.per_batch = 30;
	assert_int_equal(fixture_write(src, &fo), 0);
	tl_err err;
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
	tl_shard *sh;
	assert_int_equal(tl_shard_open(&sh, out, &err), TL_OK);
	assert_string_equal(sh->info.dataset, "cifar100");
	assert_int_equal(sh->info.n_label_fields, 2);
	assert_int_equal(sh->info.n_classes, 100);
	assert_int_equal(sh->info.n_coarse, 20);
	assert_string_equal(sh->info.class_names[42], "fine42");
	assert_string_equal(sh->info.coarse_names[19], "coarse19");
	for (uint64_t i = 0; i < 30; i++) {
		uint64_t fr = tl_shard_file_record(sh, 0, i);
		assert_int_equal(tl_shard_label(sh, fr, 0), (3 + i) % 100);
		assert_int_equal(tl_shard_label(sh, fr, 1), fixture_coarse(1, (int)i));
	}
	tl_shard_close(sh);
}

static void resizes_to_requested_geometry(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.per_batch = 3;
	fo.test_count = 2;
	assert_int_equal(fixture_write(src, &fo), 0);
	tl_err err;
	const int sizes[] = {16, 64, 224, 1, 512};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		assert_int_equal(pack(sizes[k], TL_DTYPE_U8, TL_NORM_CAFFE, &err), TL_OK);
		tl_shard *sh;
		assert_int_equal(tl_shard_open(&sh, out, &err), TL_OK);
		assert_int_equal(sh->info.height, sizes[k]);
		assert_int_equal(sh->info.width, sizes[k]);
		assert_int_equal(sh->info.record_bytes % 64, 0);
		assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_OK);
		/* a constant-colour region stays constant under any filter: check
		 * mean of the output against the mean of the input per channel */
		const uint8_t *p;
		assert_int_equal(tl_shard_record(sh, tl_shard_file_record(sh, 1, 0),
						 (const void **)&p, &err), TL_OK);
		size_t plane = (size_t)sizes[k] * sizes[k];
		double mo = 0, mi = 0;
		for (size_t i = 0; i < plane; i++)
			mo += p[i]; /* stored channel 0 = blue = source plane 2 */
		for (int i = 0; i < 1024; i++)
			mi += fixture_pixel(6, 0, 2048 + i);
		assert_close(mo / plane, mi / 1024, sizes[k] == 1 ? 0.6 : 6.0, 0);
		tl_shard_close(sh);
	}
}

typedef struct {
	const char *what;
	void (*edit)(fixture_opts *);
	const char *expect1, *expect2;
} bad_case;

static void e_missing(fixture_opts *o) { o->skip_batch = 3; }
static void e_missing_test(fixture_opts *o) { o->skip_batch = 6; }
static void e_extra(fixture_opts *o) { o->extra_bytes = 5; }
static void e_label(fixture_opts *o) { o->bad_label_at = 4; }
static void e_dup(fixture_opts *o) { o->dup_batch = 1; }

static void malformed_inputs_fail_and_leave_nothing(void **state)
{
	(void)state;
	const bad_case cases[] = {
		{"missing batch", e_missing, "data_batch_3.bin", "missing"},
		{"missing test", e_missing_test, "test_batch.bin", "missing"},
		{"extra bytes", e_extra, "data_batch_1.bin", "61465"},
		{"label range", e_label, "test_batch.bin: record 4", "expected 0..9, got 200"},
		{"duplicate", e_dup, "data_batch_1.bin", "twice"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fixture_opts fo;
		fixture_defaults(&fo);
		cases[i].edit(&fo);
		assert_int_equal(fixture_write(src, &fo), 0);
		tl_err err;
		tl_status st = pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err);
		if (st == TL_OK || !strstr(err.msg, cases[i].expect1) ||
		    !strstr(err.msg, cases[i].expect2) || !strstr(err.msg, src))
			fail_msg("%s: status %d, message '%s'", cases[i].what, st, err.msg);
		assert_int_equal(outputs_left(), 0);
	}
}

static void damaged_streams_fail_and_leave_nothing(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.per_batch = 200;
	assert_int_equal(fixture_write(src, &fo), 0);
	struct stat sb;
	assert_int_equal(stat(src, &sb), 0);
	tl_err err;
	/* truncated gzip: cut in the middle */
	assert_int_equal(truncate(src, sb.st_size / 2), 0);
	assert_int_not_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
	assert_non_null(strstr(err.msg, src));
	assert_int_equal(outputs_left(), 0);
	/* not an archive */
	FILE *f = fopen(src, "w");
	fputs("this is not an archive, just some text\n", f);
	fclose(f);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "expected a CIFAR"));
	assert_int_equal(outputs_left(), 0);
	/* empty file */
	f = fopen(src, "w");
	fclose(f);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "empty file"));
	assert_int_equal(outputs_left(), 0);
	/* missing input */
	unlink(src);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_EIO);
	assert_int_equal(outputs_left(), 0);
}

/* Flip byte `at` of src in place. */
static void flip(long at)
{
	FILE *f = fopen(src, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, at, SEEK_SET), 0);
	int c = fgetc(f);
	assert_int_equal(fseek(f, at, SEEK_SET), 0);
	fputc(c ^ 0x10, f);
	fclose(f);
}

/* libarchive's gzip filter checks no CRC: a flipped byte that still
 * inflates used to pack silently into different pixels.  Every flip in
 * the compressed data or its trailer must now fail, and leave nothing. */
static void bad_gzip_crc_is_an_error(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	fo.per_batch = 200;
	struct stat sb;
	tl_err err;
	/* the CRC-32 and the length in the trailer */
	const long back[] = {8, 2};
	const char *what[] = {"incorrect data check", "incorrect length check"};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fixture_write(src, &fo), 0);
		assert_int_equal(stat(src, &sb), 0);
		flip((long)sb.st_size - back[i]);
		tl_status st = pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err);
		if (st != TL_EFORMAT || !strstr(err.msg, what[i]) || !strstr(err.msg, src))
			fail_msg("trailer flip %d: status %d, message '%s'", i, st, err.msg);
		assert_int_equal(outputs_left(), 0);
	}
	/* bytes in the middle of the compressed data */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(fixture_write(src, &fo), 0);
		assert_int_equal(stat(src, &sb), 0);
		flip((long)sb.st_size / 2 + 37 * i);
		tl_status st = pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err);
		if (st == TL_OK)
			fail_msg("mid-file flip %d at %ld packed without an error", i,
				 (long)sb.st_size / 2 + 37 * i);
		assert_int_equal(outputs_left(), 0);
	}
	/* garbage after the last gzip member */
	assert_int_equal(fixture_write(src, &fo), 0);
	FILE *f = fopen(src, "ab");
	fputs("garbage", f);
	fclose(f);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "unexpected bytes after the compressed data"));
	assert_int_equal(outputs_left(), 0);
	/* the intact fixture still packs (and a second gzip member is fine) */
	assert_int_equal(fixture_write(src, &fo), 0);
	assert_int_equal(pack(32, TL_DTYPE_F16, TL_NORM_CAFFE, &err), TL_OK);
}

/* An empty directory: a clear "missing" error (and no qsort(NULL, 0),
 * which UBSan reports). */
static void empty_directory_is_an_error(void **state)
{
	(void)state;
	char d[600];
	snprintf(d, sizeof d, "%s/in.empty", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	tl_pack_opts o = {0};
	o.input = d;
	o.output = out;
	o.height = o.width = 32;
	o.dtype = TL_DTYPE_F16;
	o.quiet = 1;
	tl_pack_result res;
	tl_err err;
	assert_int_not_equal(tl_pack(&o, &res, &err), TL_OK);
	assert_non_null(strstr(err.msg, d));
	assert_int_equal(outputs_left(), 0);
}

static void cancel_leaves_nothing(void **state)
{
	(void)state;
	fixture_opts fo;
	fixture_defaults(&fo);
	assert_int_equal(fixture_write(src, &fo), 0);
	volatile sig_atomic_t stop = 1;
	tl_pack_opts o = {0};
	o.input = src;
	o.output = out;
	o.height = o.width = 32;
	o.dtype = TL_DTYPE_F16;
	o.quiet = 1;
	o.cancel = &stop;
	tl_pack_result res;
	tl_err err;
	assert_int_equal(tl_pack(&o, &res, &err), TL_EINTR);
	assert_int_equal(outputs_left(), 0);
}

static void classifies_members(void **state)
{
	(void)state;
	int b;
	assert_int_equal(tl_cifar_classify("data_batch_4.bin", &b), TL_MEMBER_C10_TRAIN);
	assert_int_equal(b, 4);
	assert_int_equal(tl_cifar_classify("data_batch_4.bin.bak", &b), TL_MEMBER_OTHER);
	assert_int_equal(tl_cifar_classify("test_batch.bin", &b), TL_MEMBER_C10_TEST);
	assert_int_equal(tl_cifar_classify("readme.html", &b), TL_MEMBER_OTHER);
	assert_int_equal(tl_cifar_classify("train.bin", &b), TL_MEMBER_C100_TRAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classifies_members),
		cmocka_unit_test_setup_teardown(packs_tarball_in_any_member_order, setup, teardown),
		cmocka_unit_test_setup_teardown(packs_plain_tar_and_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(packs_cifar100_with_both_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(resizes_to_requested_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_inputs_fail_and_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_streams_fail_and_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_gzip_crc_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_directory_is_an_error, setup, teardown),
	};
	/* these tests write, read and rewrite one file name: an output
	 * may not replace an input only across commands (infile.h) */
	tl_infile_remember(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
