/* test_shard.c - .tls write/read round trip, checksums, and malformed
 * shards: truncation, flipped bytes in every section, header offsets
 * pointing outside the file (with a valid header checksum). */
#define _GNU_SOURCE
#include "infile.h"
#include "tl_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "data/shard.h"

static char dir[256];
static char path[300];

static int setup(void **state)
{
	(void)state;
	if (tl_test_mkdir(dir, sizeof dir, "shard"))
		return -1;
	snprintf(path, sizeof path, "%s/s.tls", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tl_test_rmdir(dir);
}

/* Name the writer's n classes "<prefix><i>". */
static tl_status name_classes(tl_shard_writer *w, const char *prefix, uint32_t n, tl_err *err)
{
	char **v = calloc(n, sizeof *v);
	assert_non_null(v);
	for (uint32_t i = 0; i < n; i++)
		assert_true(asprintf(&v[i], "%s%u", prefix, i) > 0);
	tl_status st = tl_shard_writer_set_names(w, (const char *const *)v, n, NULL, 0, err);
	for (uint32_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return st;
}

/* Value of byte i of file record r (records are u8 3x5x7 = 105 bytes). */
static uint8_t val(uint64_t r, size_t i)
{
	return (uint8_t)(r * 13 + i * 3 + 1);
}

/* Write 3 segments out of logical order: train gets "b2" (order 2, 40
 * records) then "t" (test, 25) then "b1" (order 1, 30 records). */
static void write_fixture(uint32_t chunk_records)
{
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 5, proto.width = 7;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_CAFFE, &proto.norm);
	proto.n_label_fields = 1;
	proto.chunk_records = chunk_records;
	tl_shard_writer *w;
	tl_err err;
	assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
	uint32_t rb = tl_shard_writer_record_bytes(w);
	assert_int_equal(rb, 128); /* 105 padded to 64 */
	const struct {
		const char *member, *split;
		uint32_t order, n;
	} segs[] = {{"b2", "train", 2, 40}, {"t", "test", 0, 25}, {"b1", "train", 1, 30}};
	uint64_t r = 0;
	for (int s = 0; s < 3; s++) {
		assert_int_equal(tl_shard_writer_segment(w, segs[s].member, segs[s].split,
							 segs[s].order, &err), TL_OK);
		uint8_t *rec = calloc(segs[s].n, rb);
		uint16_t *lab = malloc(segs[s].n * sizeof *lab);
		for (uint32_t i = 0; i < segs[s].n; i++, r++) {
			for (size_t k = 0; k < 105; k++)
				rec[i * rb + k] = val(r, k);
			lab[i] = (uint16_t)(r % 10);
		}
		assert_int_equal(tl_shard_writer_append(w, rec, lab, segs[s].n, &err), TL_OK);
		free(rec), free(lab);
	}
	tl_shard_info *in = tl_shard_writer_info(w);
	assert_int_equal(name_classes(w, "c", 10, &err), TL_OK);
	strcpy(in->dataset, "test");
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
}

static void roundtrip(void **state)
{
	(void)state;
	write_fixture(16);
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	const tl_shard_info *in = &sh->info;
	assert_int_equal(in->n_records, 95);
	assert_int_equal(in->n_chunks, 6);
	assert_int_equal(in->image_offset % 4096, 0);
	assert_int_equal(in->label_offset % 4096, 0);
	assert_int_equal(in->n_splits, 2);
	assert_string_equal(in->splits[0].name, "train");
	assert_string_equal(in->splits[1].name, "test");
	assert_int_equal(in->splits[0].count, 70);
	assert_string_equal(in->class_names[3], "c3");
	/* train index 0..29 come from b1 (file records 65..94), then b2 (0..39) */
	int tr = tl_shard_split_find(sh, "train"), te = tl_shard_split_find(sh, "test");
	assert_int_equal(tl_shard_file_record(sh, tr, 0), 65);
	assert_int_equal(tl_shard_file_record(sh, tr, 29), 94);
	assert_int_equal(tl_shard_file_record(sh, tr, 30), 0);
	assert_int_equal(tl_shard_file_record(sh, te, 0), 40);
	assert_int_equal(tl_shard_split_find(sh, "val"), -1);
	for (uint64_t r = 0; r < 95; r++) {
		const uint8_t *p;
		assert_int_equal(tl_shard_record(sh, r, (const void **)&p, &err), TL_OK);
		assert_int_equal(((uintptr_t)p) % 64, 0);
		for (size_t k = 0; k < 105; k++)
			assert_int_equal(p[k], val(r, k));
		assert_int_equal(tl_shard_label(sh, r, 0), r % 10);
	}
	assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_OK);
	tl_shard_close(sh);
	/* no temporary file is left beside the shard */
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 1);
}

static uint8_t *slurp(size_t *n)
{
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*n);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void spit(const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* Open, then verify; return the first failing status (TL_OK if none). */
static tl_status open_verify(tl_err *err)
{
	tl_shard *sh;
	tl_status st = tl_shard_open(&sh, path, err);
	if (st != TL_OK)
		return st;
	st = tl_shard_verify(sh, NULL, NULL, err);
	tl_shard_close(sh);
	return st;
}

static void flipped_byte_anywhere_is_found(void **state)
{
	(void)state;
	write_fixture(16);
	/* section offsets from the header, not assumed */
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	size_t io = sh->info.image_offset, rb = sh->info.record_bytes,
	       lo = sh->info.label_offset, ct = sh->info.chunk_table_offset;
	assert_int_equal(sh->info.n_records, 95);
	tl_shard_close(sh);
	size_t n;
	uint8_t *orig = slurp(&n);
	/* every 97th byte plus the edges of each section */
	size_t extra[] = {0, 8, 24, 4095, 4096, io - 1, io, io + 16 * rb - 1, io + 95 * rb,
			  io + 95 * rb + 1, lo, lo + 94, ct, ct + 7, n - 1};
	int tried = 0;
	for (size_t pos = 0; pos < n + sizeof extra / sizeof extra[0]; pos += pos < n ? 97 : 1) {
		size_t at = pos < n ? pos : extra[pos - n];
		uint8_t *b = malloc(n);
		memcpy(b, orig, n);
		b[at] ^= 0x20;
		spit(b, n);
		free(b);
		tl_status st = open_verify(&err);
		if (st == TL_OK)
			fail_msg("flipped byte at %zu not detected", at);
		assert_true(strstr(err.msg, path) != NULL);
		tried++;
	}
	assert_true(tried > 100);
	/* a flip inside an image chunk names that chunk */
	uint8_t *b = malloc(n);
	memcpy(b, orig, n);
	b[io + 40 * rb + 5] ^= 1; /* record 40 -> chunk 2 */
	spit(b, n);
	assert_int_equal(open_verify(&err), TL_ECHECKSUM);
	assert_non_null(strstr(err.msg, "image chunk 2 "));
	assert_non_null(strstr(err.msg, "records 32..47"));
	/* and the loader path (tl_shard_record) refuses records of that chunk only */
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	const void *p;
	assert_int_equal(tl_shard_record(sh, 0, &p, &err), TL_OK);
	assert_int_equal(tl_shard_record(sh, 33, &p, &err), TL_ECHECKSUM);
	tl_shard_close(sh);
	free(b);
	free(orig);
}

static void truncated_shard_fails_cleanly(void **state)
{
	(void)state;
	write_fixture(16);
	size_t n;
	uint8_t *orig = slurp(&n);
	size_t cuts[] = {0, 1, 7, 100, 4095, 4096, 16383, 16384, 20000, n - 4096, n - 8, n - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		spit(orig, cuts[i]);
		tl_err err;
		tl_status st = open_verify(&err);
		if (st == TL_OK)
			fail_msg("shard cut to %zu bytes opened", cuts[i]);
		assert_true(strstr(err.msg, path) != NULL);
	}
	spit(orig, 0);
	tl_err err;
	assert_int_equal(open_verify(&err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "empty"));
	free(orig);
}

static void rehash(uint8_t *b)
{
	static const uint8_t zero[8];
	XXH3_state_t *s = XXH3_createState();
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, b, 24);
	XXH3_64bits_update(s, zero, 8);
	XXH3_64bits_update(s, b + 32, TL_SHARD_HEADER_SIZE - 32);
	uint64_t h = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	memcpy(b + 24, &h, 8);
}

/* Set a u64 / u32 at off of a shard image (little-endian). */
static void put_at(uint8_t *b, size_t off, uint64_t v, int width)
{
	for (int k = 0; k < width; k++)
		b[off + k] = (uint8_t)(v >> (8 * k));
}

/* Write a copy of orig (n bytes) with the u64 / u32 at off set to v and
 * the header checksum made right again; open and verify it. */
static tl_status open_edited(const uint8_t *orig, size_t n, size_t off, uint64_t v, int width,
			     tl_err *err)
{
	uint8_t *b = malloc(n);
	assert_non_null(b);
	memcpy(b, orig, n);
	put_at(b, off, v, width);
	rehash(b);
	spit(b, n);
	free(b);
	return open_verify(err);
}

/* A shard whose records carry source names (version 2): n records of
 * 3x5x7 u8 in one train segment, label r % 3, names[r]. */
static void write_named(const char *const *names, size_t n)
{
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 5, proto.width = 7;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_NONE, &proto.norm);
	proto.n_label_fields = 1;
	tl_shard_writer *w;
	tl_err err;
	assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
	uint32_t rb = tl_shard_writer_record_bytes(w);
	assert_int_equal(tl_shard_writer_segment(w, "train", "train", 0, &err), TL_OK);
	uint8_t *rec = calloc(n, rb);
	uint16_t lab[8];
	for (size_t r = 0; r < n; r++)
		lab[r] = (uint16_t)(r % 3);
	/* in two appends: names continue across them */
	assert_int_equal(tl_shard_writer_append_named(w, rec, lab, names, 2, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append_named(w, rec, lab + 2, names + 2, n - 2, &err), TL_OK);
	free(rec);
	assert_int_equal(name_classes(w, "k", 3, &err), TL_OK);
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
}

/* Record names: written, read back, checksummed, their offsets checked;
 * a shard without names (version 1) has none; class counts per split. */
static void record_names(void **state)
{
	(void)state;
	const char *names[] = {"cat/1.jpg", "", "dog/sub/\xc3\xa9t\xc3\xa9.png", "dog/2.png", NULL};
	write_named(names, 5);
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	assert_int_equal(sh->info.version, 2);
	assert_int_equal(sh->info.rname_offset % 4096, 0);
	assert_int_equal(sh->info.rname_size, 8 * 6 + 10 + 1 + 18 + 10 + 1);
	assert_string_equal(tl_shard_record_name(sh, 0), "cat/1.jpg");
	assert_string_equal(tl_shard_record_name(sh, 1), "");
	assert_string_equal(tl_shard_record_name(sh, 2), "dog/sub/\xc3\xa9t\xc3\xa9.png");
	assert_string_equal(tl_shard_record_name(sh, 3), "dog/2.png");
	assert_string_equal(tl_shard_record_name(sh, 4), ""); /* NULL given: "" */
	assert_null(tl_shard_record_name(sh, 5));
	uint64_t cnt[3];
	tl_shard_class_counts(sh, 0, cnt);
	assert_int_equal(cnt[0], 2), assert_int_equal(cnt[1], 2), assert_int_equal(cnt[2], 1);
	size_t no = sh->info.rname_offset, ct = sh->info.chunk_table_offset;
	tl_shard_close(sh);
	size_t n;
	uint8_t *orig = slurp(&n);
	/* every byte of the section (its padding too) is checksummed */
	for (size_t at = no; at < ct; at += at < no + 200 ? 1 : 509) {
		uint8_t *b = malloc(n);
		memcpy(b, orig, n);
		b[at] ^= 0x01;
		spit(b, n);
		free(b);
		if (open_verify(&err) != TL_ECHECKSUM)
			fail_msg("flipped record-name byte at %zu not detected", at);
		assert_non_null(strstr(err.msg, "record names: checksum mismatch"));
	}
	/* offsets that are wrong under a right checksum: refused by the checks */
	const struct {
		size_t at;
		uint64_t v;
		const char *msg;
	} bad[] = {
		{0, 40, "first name at 40 (expected 48)"},
		{16, 48, "name of record 1"},            /* record 1 ends where it starts: no NUL */
		{16, 12, "name of record 1"},            /* backwards */
		{24, 1 << 20, "name of record 2"},       /* past the section */
		{24, 60, "name of record 2"},            /* not ending in NUL */
		{40, 70, "name of record 4"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t *b = malloc(n);
		memcpy(b, orig, n);
		put_at(b, no + bad[i].at, bad[i].v, 8);
		put_at(b, 3112, XXH3_64bits(b + no, ct - no), 8);
		rehash(b);
		spit(b, n);
		free(b);
		if (open_verify(&err) != TL_EFORMAT)
			fail_msg("bad offset %zu = %llu accepted", bad[i].at, (unsigned long long)bad[i].v);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("bad offset %zu: '%s' lacks '%s'", bad[i].at, err.msg, bad[i].msg);
	}
	/* the section's place and size in the header */
	assert_int_equal(open_edited(orig, n, 3096, ct, 8, &err), TL_EFORMAT);  /* over the chunk table */
	assert_int_equal(open_edited(orig, n, 3096, no + 8, 8, &err), TL_EFORMAT); /* unaligned */
	assert_int_equal(open_edited(orig, n, 3104, 20, 8, &err), TL_EFORMAT);  /* too small */
	assert_non_null(strstr(err.msg, "record-name section"));
	assert_int_equal(open_edited(orig, n, 3104, 0, 8, &err), TL_EFORMAT);   /* 0 bytes at an offset */
	assert_int_equal(open_edited(orig, n, 3104, 90, 8, &err), TL_EFORMAT);  /* 2 bytes of no name */
	assert_non_null(strstr(err.msg, "names end at 88 (expected the section's end, 90)"));
	free(orig);
	/* no names given: version 1, no section, names NULL */
	write_fixture(16);
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	assert_int_equal(sh->info.version, 1);
	assert_int_equal(sh->info.rname_size, 0);
	assert_null(tl_shard_record_name(sh, 0));
	tl_shard_close(sh);
}

/* Header fields that point outside the file, with a correct header
 * checksum, are refused by the bounds checks (no out-of-bounds read;
 * ASan would catch one). */
static void bad_offsets_with_valid_checksum(void **state)
{
	(void)state;
	write_fixture(16);
	size_t n;
	uint8_t *orig = slurp(&n);
	const struct {
		size_t off, width;
		uint64_t v;
	} edits[] = {
		{136, 8, 1ull << 62},          /* image offset far away */
		{136, 8, 4096},                /* image inside the header */
		{152, 8, (uint64_t)-4096},     /* label offset wraps */
		{112, 8, 1ull << 60},          /* record count overflows size */
		{112, 8, 96},                  /* one record too many */
		{120, 4, 64},                  /* records smaller than an image */
		{124, 4, 0},                   /* zero-record chunks */
		{128, 8, 1},                   /* wrong chunk count */
		{176, 8, 4096},                /* chunk table inside the header */
		{208, 4, 9},                   /* too many splits */
		{212, 4, 33},                  /* too many segments */
		{768 + 48, 8, 90},             /* segment beyond the records */
		{216, 4, 16000},               /* class names past the header */
		{12, 4, 1u << 30},             /* absurd header size */
		{36, 4, 0},                    /* zero height */
		{44, 4, 7},                    /* unknown dtype */
		{104, 4, 0},                   /* no classes */
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		tl_err err;
		tl_status st = open_edited(orig, n, edits[i].off, edits[i].v, (int)edits[i].width, &err);
		if (st != TL_EFORMAT)
			fail_msg("edit %zu (offset %zu = %llu): status %d, message %s", i, edits[i].off,
				 (unsigned long long)edits[i].v, st, st ? err.msg : "(none)");
	}
	/* a label out of range, with labels re-hashed, is still refused */
	uint8_t *b = malloc(n);
	memcpy(b, orig, n);
	uint64_t loff, cto;
	memcpy(&loff, b + 152, 8);
	memcpy(&cto, b + 176, 8);
	b[loff + 3] = 10;
	uint64_t h = XXH3_64bits(b + loff, cto - loff);
	memcpy(b + 168, &h, 8);
	rehash(b);
	spit(b, n);
	tl_err err;
	assert_int_equal(open_verify(&err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "record 3 has label 10"));
	free(b);
	/* not a shard at all */
	memcpy(orig, "NOTSHARD", 8);
	spit(orig, n);
	assert_int_equal(open_verify(&err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "not a tlkit shard"));
	free(orig);
}

/* Segment tables whose counts add up but that map a record twice (or an
 * index of a split twice, leaving another unmapped) used to pass open and
 * --verify and then abort a reader on an internal check. */
static void overlapping_segments_refused_at_open(void **state)
{
	(void)state;
	write_fixture(16);
	size_t n;
	uint8_t *orig = slurp(&n);
	/* canonical order: 0 = b1 (train, file 65..94, split 0..29),
	 * 1 = b2 (train, file 0..39, split 30..69), 2 = t (test, file 40..64) */
	const struct {
		size_t off;
		uint64_t v;
		const char *expect;
	} edits[] = {
		{768 + 0 * 72 + 48, 0, "overlap in the file"},   /* b1 over b2's records */
		{768 + 1 * 72 + 64, 0, "overlap in split train"}, /* b2 at split index 0 too */
		{768 + 2 * 72 + 48, 30, "overlap in the file"},   /* t over b2's tail */
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		tl_err err;
		tl_status st = open_edited(orig, n, edits[i].off, edits[i].v, 8, &err);
		if (st != TL_EFORMAT || !strstr(err.msg, edits[i].expect))
			fail_msg("edit %zu: status %d, message %s", i, st, st ? err.msg : "(none)");
	}
	/* a magic of raw bytes is shown escaped, not printed raw */
	memcpy(orig, "\x01\x02ZZ\xff\x00\\q", 8);
	spit(orig, n);
	tl_err err;
	assert_int_equal(open_verify(&err), TL_EFORMAT);
	if (!strstr(err.msg, "got \"\\x01\\x02ZZ\\xff\\x00\\x5cq\""))
		fail_msg("magic shown as: %s", err.msg);
	for (const char *p = err.msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	free(orig);
}

/* Shards with no records, or a split without records, are refused. */
static void empty_splits_refused_at_open(void **state)
{
	(void)state;
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 4, proto.width = 4;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_CAFFE, &proto.norm);
	proto.n_label_fields = 1;
	tl_shard_writer *w;
	tl_err err;
	uint8_t rec[64] = {0};
	uint16_t lab[1] = {0};
	for (int with_test = 0; with_test < 2; with_test++) {
		assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
		assert_int_equal(tl_shard_writer_segment(w, "b1", "train", 1, &err), TL_OK);
		if (with_test) {
			assert_int_equal(tl_shard_writer_segment(w, "t", "test", 0, &err), TL_OK);
			assert_int_equal(tl_shard_writer_append(w, rec, lab, 1, &err), TL_OK);
		}
		assert_int_equal(name_classes(w, "a", 1, &err), TL_OK);
		assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
		tl_shard *sh;
		assert_int_equal(tl_shard_open(&sh, path, &err), TL_EFORMAT);
		const char *want = with_test ? "split train holds no records" : "holds no records";
		if (!strstr(err.msg, want))
			fail_msg("%d: %s", with_test, err.msg);
	}
}

/* A shard cut short while mapped: pages past the new end raise SIGBUS on
 * touch.  Both a chunk check after the cut and a read of an already
 * checked record must fail with "truncated while in use", not crash. */
static void truncated_while_mapped_is_an_error(void **state)
{
	(void)state;
	write_fixture(16);
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	float f[105];
	assert_int_equal(tl_shard_load_f32(sh, 0, f, &err), TL_OK); /* chunk 0 checked */
	uint64_t full = sh->size;
	assert_int_equal(truncate(path, (off_t)sh->info.image_offset), 0);
	char want[128];
	snprintf(want, sizeof want, "truncated while in use (expected %llu bytes, found %llu)",
		 (unsigned long long)full, (unsigned long long)sh->info.image_offset);
	/* record 1 is in the checked chunk: the conversion itself faults */
	assert_int_equal(tl_shard_load_f32(sh, 1, f, &err), TL_EIO);
	if (!strstr(err.msg, want) || !strstr(err.msg, path))
		fail_msg("checked chunk: %s", err.msg);
	/* record 40 is in an unchecked chunk */
	assert_int_equal(tl_shard_load_f32(sh, 40, f, &err), TL_EIO);
	if (!strstr(err.msg, want))
		fail_msg("unchecked chunk: %s", err.msg);
	assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_EIO);
	assert_non_null(strstr(err.msg, "truncated while in use"));
	tl_shard_close(sh);
}

/* Allocation failure at every allocation of writing and opening a
 * shard: a clear out-of-memory error, never a crash, no file under the
 * final name and no temporary left; the next try with memory succeeds. */
static void allocation_failures_are_clean(void **state)
{
	(void)state;
	int failed_write = 0, failed_open = 0;
	for (long k = 0; k < 40; k++) {
		unlink(path);
		tl_alloc_fail_after(k);
		/* write_fixture asserts success, so drive the writer by hand */
		tl_shard_info proto;
		memset(&proto, 0, sizeof proto);
		proto.channels = 3, proto.height = 5, proto.width = 7;
		proto.dtype = TL_DTYPE_U8;
		tl_norm_preset(TL_NORM_CAFFE, &proto.norm);
		proto.n_label_fields = 1;
		proto.chunk_records = 4;
		tl_shard_writer *w;
		tl_err err;
		uint8_t rec[128 * 3] = {0};
		uint16_t lab[3] = {0, 1, 2};
		tl_status st = tl_shard_writer_open(&w, path, &proto, &err);
		if (st == TL_OK) {
			for (int s = 0; st == TL_OK && s < 2; s++) {
				st = tl_shard_writer_segment(w, s ? "t" : "b", s ? "test" : "train", 0,
							     &err);
				for (int i = 0; st == TL_OK && i < 50; i++)
					st = tl_shard_writer_append(w, rec, lab, 3, &err);
			}
			if (st == TL_OK)
				st = name_classes(w, "c", 3, &err);
			if (st == TL_OK) {
				st = tl_shard_writer_finish(w, &err);
			} else {
				tl_shard_writer_abort(w);
			}
		}
		tl_alloc_fail_after(-1);
		struct stat sb;
		if (st != TL_OK) {
			failed_write++;
			if (st != TL_ENOMEM && st != TL_EUSAGE)
				fail_msg("write, %ld allocations: status %d (%s)", k, st, err.msg);
			assert_int_equal(stat(path, &sb), -1);
		} else {
			tl_shard *sh;
			tl_alloc_fail_after(k % 3); /* open makes two allocations */
			st = tl_shard_open(&sh, path, &err);
			tl_alloc_fail_after(-1);
			if (st == TL_OK)
				tl_shard_close(sh);
			else if (st != TL_ENOMEM || !strstr(err.msg, "out of memory"))
				fail_msg("open, %ld allocations: status %d (%s)", k, st, err.msg);
			else
				failed_open++;
		}
		DIR *d = opendir(dir);
		struct dirent *e;
		while ((e = readdir(d)))
			if (strstr(e->d_name, ".tmp."))
				fail_msg("%ld allocations: temporary %s left", k, e->d_name);
		closedir(d);
	}
	assert_true(failed_write > 0);
	assert_true(failed_open > 0);
}

static void writer_failures_leave_nothing(void **state)
{
	(void)state;
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 4, proto.width = 4;
	proto.n_label_fields = 1;
	tl_shard_writer *w;
	tl_err err;
	char bad[400];
	snprintf(bad, sizeof bad, "%s/no/such/dir/x.tls", dir);
	assert_int_equal(tl_shard_writer_open(&w, bad, &proto, &err), TL_EIO);
	assert_non_null(strstr(err.msg, "cannot create output"));
	unlink(path);
	assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
	assert_int_equal(tl_shard_writer_segment(w, "m", "train", 0, &err), TL_OK);
	uint8_t rec[64] = {0};
	uint16_t lab[1] = {0};
	assert_int_equal(tl_shard_writer_append(w, rec, lab, 1, &err), TL_OK);
	tl_shard_writer_abort(w);
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		assert_true(e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'));
	closedir(d);
}

/* ---- versions ---- */

static const char *fixture_path(const char *name)
{
	static char buf[1024];
	const char *d = getenv("top_srcdir");
	snprintf(buf, sizeof buf, "%s/tests/fixtures/%s", d ? d : "..", name);
	return buf;
}

/* tools/old-shards.c's content (nrec 11, or 12 to fill the last chunk),
 * written by today's writer to path. */
static void write_old_content(const char *to, int v2, int nrec)
{
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 2, proto.width = 2;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_CAFFE, &proto.norm);
	proto.n_label_fields = 1;
	proto.chunk_records = 4;
	tl_shard_writer *w;
	tl_err err;
	assert_int_equal(tl_shard_writer_open(&w, to, &proto, &err), TL_OK);
	uint8_t rec[64 * 12] = {0};
	uint16_t lab[12];
	const char *names[12];
	char buf[12][32];
	for (int r = 0; r < nrec; r++) {
		for (int k = 0; k < 12; k++)
			rec[r * 64 + k] = (uint8_t)(r * 16 + k);
		lab[r] = (uint16_t)(r % 3);
		snprintf(buf[r], 32, "%s/%d.png", r % 3 == 0 ? "cat" : r % 3 == 1 ? "dog" : "ship", r);
		names[r] = buf[r];
	}
	assert_int_equal(tl_shard_writer_segment(w, "train", "train", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append_named(w, rec, lab, v2 ? names : NULL, 8, &err), TL_OK);
	assert_int_equal(tl_shard_writer_segment(w, "test", "test", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append_named(w, rec + 8 * 64, lab + 8, v2 ? names + 8 : NULL,
						      (size_t)nrec - 8, &err), TL_OK);
	static const char *const cls[] = {"cat", "dog", "ship"};
	assert_int_equal(tl_shard_writer_set_names(w, cls, 3, NULL, 0, &err), TL_OK);
	tl_shard_info *in = tl_shard_writer_info(w);
	strcpy(in->dataset, v2 ? "pets" : "tiny");
	strcpy(in->source_name, v2 ? "pets" : "tiny.bin");
	if (v2)
		in->fit = 1, in->test_fraction = 0.25, in->test_seed = 7;
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
}

/* Version 1 and 2 files written by the version-2 writer (committed
 * fixtures) still read, whole; today's writer writes the same content to
 * the same bytes (it picks the lowest version that says everything). */
static void old_versions_read_and_are_rewritten_the_same(void **state)
{
	(void)state;
	for (int v = 1; v <= 2; v++) {
		const char *fx = fixture_path(v == 1 ? "shard-v1.tls" : "shard-v2.tls");
		tl_shard *sh;
		tl_err err;
		if (tl_shard_open(&sh, fx, &err) != TL_OK)
			fail_msg("%s: %s", fx, err.msg);
		const tl_shard_info *in = &sh->info;
		assert_int_equal(in->version, v);
		assert_int_equal(in->label_bytes, 1);
		assert_int_equal(in->n_records, 11);
		assert_int_equal(in->n_classes, 3);
		assert_string_equal(tl_shard_class_name(sh, 0), "cat");
		assert_string_equal(tl_shard_class_name(sh, 2), "ship");
		assert_int_equal(tl_shard_split_find(sh, "test"), 1);
		assert_int_equal(in->fit, v == 2 ? 1 : 0);
		assert_true(in->test_fraction == (v == 2 ? 0.25 : 0));
		for (uint64_t r = 0; r < 11; r++) {
			const uint8_t *p;
			assert_int_equal(tl_shard_record(sh, r, (const void **)&p, &err), TL_OK);
			assert_int_equal(p[5], r * 16 + 5);
			assert_int_equal(tl_shard_label(sh, r, 0), r % 3);
			if (v == 2) {
				char want[32];
				snprintf(want, sizeof want, "%s/%d.png", tl_shard_class_name(sh, r % 3), (int)r);
				assert_string_equal(tl_shard_record_name(sh, r), want);
			} else {
				assert_null(tl_shard_record_name(sh, r));
			}
		}
		assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_OK);
		tl_shard_close(sh);
		write_old_content(path, v == 2, 11);
		size_t n;
		uint8_t *now = slurp(&n);
		FILE *f = fopen(fx, "rb");
		assert_non_null(f);
		uint8_t *old = malloc(n + 1);
		size_t got = fread(old, 1, n + 1, f);
		fclose(f);
		if (got != n || memcmp(old, now, n) != 0)
			fail_msg("version %d: today's writer wrote different bytes (%zu vs %zu)", v, n, got);
		free(old);
		free(now);
		/* records that fill the last chunk exactly: its checksum still
		 * covers the padding before the labels (the version-2 writer's
		 * did not, and --verify failed on such shards) */
		write_old_content(path, v == 2, 12);
		assert_int_equal(open_verify(&err), TL_OK);
	}
}

/* A name of exactly 255 bytes: 2-byte characters, then ASCII padding. */
static char *long_name(unsigned i)
{
	char *s = malloc(256);
	assert_non_null(s);
	int k = snprintf(s, 256, "%04u \xe6\x97\xa5", i);
	while (k + 2 <= 250)
		s[k++] = '\xc3', s[k++] = '\xa9';
	while (k < 255)
		s[k++] = 'x';
	s[255] = 0;
	return s;
}

/* n classes (every third named by long_name, the others "k<i>, x"),
 * records of 3x2x2 u8, record r labelled (r * 7) % n, train then test. */
static void write_wide(const char *to, uint32_t n, uint32_t records)
{
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 2, proto.width = 2;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_NONE, &proto.norm);
	proto.n_label_fields = 1;
	proto.chunk_records = 64;
	char **names = calloc(n, sizeof *names);
	for (uint32_t i = 0; i < n; i++) {
		if (i % 3 == 0)
			names[i] = long_name(i);
		else
			assert_true(asprintf(&names[i], "k%u, x", i) > 0);
	}
	proto.class_names = names; /* copied by the writer */
	proto.n_classes = n;
	tl_shard_writer *w;
	tl_err err;
	assert_int_equal(tl_shard_writer_open(&w, to, &proto, &err), TL_OK);
	for (uint32_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	uint8_t *rec = calloc(records, 64);
	uint16_t *lab = calloc(records, sizeof *lab);
	for (uint32_t r = 0; r < records; r++)
		rec[r * 64] = (uint8_t)r, lab[r] = (uint16_t)((r * 7) % n);
	uint32_t tr = records * 3 / 4;
	assert_int_equal(tl_shard_writer_segment(w, "train", "train", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append(w, rec, lab, tr, &err), TL_OK);
	assert_int_equal(tl_shard_writer_segment(w, "test", "test", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append(w, rec + (size_t)tr * 64, lab + tr, records - tr, &err),
			 TL_OK);
	free(rec);
	free(lab);
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
}

/* 300 classes with names up to 255 bytes: version 3, 2-byte labels,
 * names and labels read back, class counts; the lowest version is kept
 * otherwise (256 short names: version 1; one long name: version 3). */
static void wide_labels_and_long_names(void **state)
{
	(void)state;
	write_wide(path, 300, 900);
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, path, &err) != TL_OK)
		fail_msg("%s", err.msg);
	const tl_shard_info *in = &sh->info;
	assert_int_equal(in->version, 3);
	assert_int_equal(in->label_bytes, 2);
	assert_int_equal(in->label_size, 900 * 2);
	assert_int_equal(in->n_classes, 300);
	assert_int_equal(in->cname_offset % 4096, 0);
	assert_true(in->cname_offset > in->label_offset && in->cname_offset < in->chunk_table_offset);
	for (uint32_t i = 0; i < 300; i++) {
		if (i % 3 == 0) {
			char *want = long_name(i);
			assert_int_equal(strlen(tl_shard_class_name(sh, i)), 255);
			assert_string_equal(tl_shard_class_name(sh, i), want);
			free(want);
		} else {
			char want[32];
			snprintf(want, sizeof want, "k%u, x", i);
			assert_string_equal(tl_shard_class_name(sh, i), want);
		}
	}
	for (uint64_t r = 0; r < 900; r++)
		assert_int_equal(tl_shard_label(sh, r, 0), (r * 7) % 300);
	uint64_t cnt[300], total = 0;
	tl_shard_class_counts(sh, 0, cnt);
	for (int c = 0; c < 300; c++)
		total += cnt[c];
	assert_int_equal(total, 675);
	assert_int_equal(tl_shard_verify(sh, NULL, NULL, &err), TL_OK);
	tl_shard_close(sh);
	/* the version follows what must be said */
	const struct {
		uint32_t n;
		int version;
	} cases[] = {{256, 3}, {257, 3}, {2, 3}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_wide(path, cases[i].n, 600);
		assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
		assert_int_equal(sh->info.version, cases[i].version);
		tl_shard_close(sh);
	}
	/* 256 classes, short names: version 1, 1-byte labels up to 255 */
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 2, proto.width = 2;
	proto.n_label_fields = 1;
	tl_norm_preset(TL_NORM_NONE, &proto.norm);
	char nb[256][8];
	char *np[256];
	for (int i = 0; i < 256; i++)
		snprintf(nb[i], sizeof nb[i], "n%d", i), np[i] = nb[i];
	proto.class_names = np, proto.n_classes = 256;
	tl_shard_writer *w;
	assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
	uint8_t rec[64 * 256] = {0};
	uint16_t lab[256];
	for (int i = 0; i < 256; i++)
		lab[i] = (uint16_t)(255 - i);
	assert_int_equal(tl_shard_writer_segment(w, "all", "train", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append(w, rec, lab, 256, &err), TL_OK);
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_OK);
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	assert_int_equal(sh->info.version, 1);
	assert_int_equal(sh->info.label_bytes, 1);
	assert_int_equal(tl_shard_label(sh, 0, 0), 255);
	assert_string_equal(tl_shard_class_name(sh, 255), "n255");
	tl_shard_close(sh);
}

/* The writer refuses names that are not 1..255 bytes of UTF-8 without
 * control characters, and labels not below the class count. */
static void writer_refuses_bad_names_and_labels(void **state)
{
	(void)state;
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 2, proto.width = 2;
	proto.n_label_fields = 1;
	tl_norm_preset(TL_NORM_NONE, &proto.norm);
	tl_shard_writer *w;
	tl_err err;
	char big[300];
	memset(big, 'a', 256), big[256] = 0;
	const struct {
		const char *name, *why;
	} bad[] = {
		{"", "empty"}, {big, "too long"}, {"caf\xe9", "not valid UTF-8"},
		{"\xc0\xaf", "not valid UTF-8"},         /* overlong '/' */
		{"\xed\xa0\x80", "not valid UTF-8"},     /* surrogate */
		{"\xf4\x90\x80\x80", "not valid UTF-8"}, /* past U+10FFFF */
		{"\xe6\x97", "not valid UTF-8"},         /* cut short */
		{"a\tb", "has a control character"}, {"a\x7f", "has a control character"},
		{"\xc2\x85", "has a control character"}, /* U+0085 */
	};
	assert_int_equal(tl_shard_writer_open(&w, path, &proto, &err), TL_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *names[] = {"ok", bad[i].name};
		assert_int_equal(tl_shard_writer_set_names(w, names, 2, NULL, 0, &err), TL_EFORMAT);
		if (!strstr(err.msg, bad[i].why) || !strstr(err.msg, "class 1 name"))
			fail_msg("name %zu: %s", i, err.msg);
		assert_ptr_equal(tl_shard_name_problem(bad[i].name, strlen(bad[i].name)) != NULL, 1);
	}
	memset(big, 'a', 255), big[255] = 0;
	assert_null(tl_shard_name_problem(big, 255));
	assert_null(tl_shard_name_problem("\xf0\x9f\x90\x88 \xc3\xa9, \"q\"", 12));
	const char *ok[] = {"a", "b"};
	assert_int_equal(tl_shard_writer_set_names(w, ok, 2, NULL, 0, &err), TL_OK);
	uint8_t rec[64] = {0};
	uint16_t lab[1] = {2};
	assert_int_equal(tl_shard_writer_segment(w, "m", "train", 0, &err), TL_OK);
	assert_int_equal(tl_shard_writer_append(w, rec, lab, 1, &err), TL_OK);
	assert_int_equal(tl_shard_writer_finish(w, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "record 0 has label 2 (expected < 2)"));
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);
}

/* Version 3's new fields under a valid header checksum: every byte of
 * the class-name section is checksummed, its place and size are checked,
 * names inside it are checked like the writer's, 2-byte labels are
 * range-checked. */
static void version3_malformed(void **state)
{
	(void)state;
	write_wide(path, 300, 900);
	tl_shard *sh;
	tl_err err;
	assert_int_equal(tl_shard_open(&sh, path, &err), TL_OK);
	size_t co = sh->info.cname_offset, cs = sh->info.cname_size, ct = sh->info.chunk_table_offset,
	       lo = sh->info.label_offset;
	tl_shard_close(sh);
	size_t n;
	uint8_t *orig = slurp(&n);
	for (size_t at = co; at < ct; at += at < co + 300 ? 1 : 397) {
		uint8_t *b = malloc(n);
		memcpy(b, orig, n);
		b[at] ^= 0x04;
		spit(b, n);
		free(b);
		if (open_verify(&err) != TL_ECHECKSUM || !strstr(err.msg, "class names: checksum mismatch"))
			fail_msg("flipped class-name byte at %zu: %s", at, err.msg);
	}
	/* place and size */
	const struct {
		size_t off;
		uint64_t v;
		const char *msg;
	} edits[] = {
		{3120, co + 8, "class-name section"},   /* unaligned */
		{3120, ct, "class-name section"},       /* over the chunk table */
		{3120, 0, "does not fit"},              /* in the header */
		{3120, lo, "does not fit"},             /* over the labels */
		{3128, 10, "class-name section"},       /* smaller than 300 names */
		{3128, ct - co + 1, "class-name section"},
		{3128, cs + 1, "names end at"},         /* a padding byte more */
		{3128, cs - 1, "class name 299 missing"},
		{104, 65536, "bad label description"},  /* past the version 3 limit */
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		tl_status st = open_edited(orig, n, edits[i].off, edits[i].v, edits[i].off == 104 ? 4 : 8, &err);
		if (st != TL_EFORMAT || !strstr(err.msg, edits[i].msg))
			fail_msg("edit %zu (offset %zu = %llu): status %d, %s", i, edits[i].off,
				 (unsigned long long)edits[i].v, st, st ? err.msg : "(none)");
	}
	/* bad names and labels under right checksums */
	const struct {
		size_t at;
		uint8_t v;
		const char *msg;
	} names[] = {
		{0, 0, "class name 0 missing, empty"}, /* an empty first name */
		{1, 0xff, "class name 0: not valid UTF-8"},
		{1, '\n', "class name 0: has a control character"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		uint8_t *b = malloc(n);
		memcpy(b, orig, n);
		b[co + names[i].at] = names[i].v;
		put_at(b, 3136, XXH3_64bits(b + co, ct - co), 8);
		rehash(b);
		spit(b, n);
		free(b);
		if (open_verify(&err) != TL_EFORMAT || !strstr(err.msg, names[i].msg))
			fail_msg("name edit %zu: %s", i, err.msg);
	}
	uint8_t *b = malloc(n);
	memcpy(b, orig, n);
	put_at(b, lo + 2 * 5, 300, 2); /* record 5 */
	put_at(b, 168, XXH3_64bits(b + lo, co - lo), 8);
	rehash(b);
	spit(b, n);
	free(b);
	assert_int_equal(open_verify(&err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "record 5 has label 300 (expected < 300)"));
	free(orig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(record_names, setup, teardown),
		cmocka_unit_test_setup_teardown(flipped_byte_anywhere_is_found, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_shard_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_offsets_with_valid_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(writer_failures_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(allocation_failures_are_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(overlapping_segments_refused_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_splits_refused_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_while_mapped_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(old_versions_read_and_are_rewritten_the_same, setup, teardown),
		cmocka_unit_test_setup_teardown(wide_labels_and_long_names, setup, teardown),
		cmocka_unit_test_setup_teardown(writer_refuses_bad_names_and_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(version3_malformed, setup, teardown),
	};
	/* these tests write, read and rewrite one file name: an output
	 * may not replace an input only across commands (infile.h) */
	tl_infile_remember(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
