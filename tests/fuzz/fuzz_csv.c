/* fuzz_csv.c - libFuzzer harness for the strict CSV reader (data/csv.c)
 * and the CSV-list source on top of it (data/src_csv.c: UTF-8 check,
 * header columns, paths, splits, classes, duplicates).  The reader: when
 * the input parses, every field of every record must be readable, no
 * longer than the input, and the record lines increasing and within the
 * input's line count.  The source: the input is written as a list into a
 * private folder (in $FUZZ_DIR, else /tmp) holding a few small files (so that some rows resolve);
 * when it opens, the events must be segments and records whose labels are
 * below the class count, with classes in strictly ascending byte order,
 * no more records than rows, and finish must succeed.  Built by
 * bench/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/csv.h"
#include "data/source.h"

static void check_reader(const uint8_t *data, size_t size)
{
	tl_csv *c;
	tl_err err;
	if (tl_csv_parse(&c, "fuzz.csv", (const char *)data, size, &err) != TL_OK)
		return;
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
}

static char dir[64], path[96];
static const char *const files[] = {"cat/1.jpg", "dog/a,b.jpg", "a.png", "list.csv", "cat", "dog"};

/* At exit: the folder and what list_path put in it. */
static void remove_dir(void)
{
	char p[128];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		remove(p);
	}
	rmdir(dir);
}

/* The folder the list lies in, with cat/1.jpg, dog/a,b.jpg and a.png;
 * made once per process. */
static const char *list_path(void)
{
	if (dir[0])
		return path;
	const char *base = getenv("FUZZ_DIR"); /* bench/fuzz.sh's scratch folder */
	snprintf(dir, sizeof dir, "%s/fuzz_csvlist.%d", base && strlen(base) < 32 ? base : "/tmp",
		 (int)getpid());
	atexit(remove_dir);
	char p[128];
	mkdir(dir, 0700);
	snprintf(p, sizeof p, "%s/cat", dir), mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/dog", dir), mkdir(p, 0700);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		FILE *f = fopen(p, "wb");
		if (!f)
			abort();
		fputs("x", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/list.csv", dir);
	return path;
}

static void check_source(const uint8_t *data, size_t size)
{
	const char *path = list_path();
	FILE *f = fopen(path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size))
		abort();
	fclose(f);
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	tl_source_opts o = {0};
	o.test_fraction = size % 2 ? 0.3 : 0; /* the hold-out too, on half the inputs */
	tl_source_info *info = calloc(1, sizeof *info);
	void *st;
	tl_err err;
	if (!info)
		abort();
	if (tl_source_csv.open(&st, path, &o, info, &err) != TL_OK) {
		tl_src_info_free(info); /* names taken before the failure are the caller's */
		free(info);
		return;
	}
	if (info->n_classes == 0)
		abort();
	for (uint32_t c = 1; c < info->n_classes; c++)
		if (strcmp(info->class_names[c - 1], info->class_names[c]) >= 0)
			abort();
	size_t records = 0;
	for (;;) {
		tl_src_event ev;
		if (tl_source_csv.next(st, &ev, &err) != TL_OK)
			abort();
		if (ev.type == TL_SRC_END)
			break;
		if (ev.type == TL_SRC_SEGMENT) {
			if (!ev.split || !ev.member)
				abort();
			continue;
		}
		if (ev.type != TL_SRC_RECORD || ev.label[0] >= info->n_classes || !ev.rel || !ev.name ||
		    (!ev.error && !ev.data && ev.size))
			abort();
		records++;
	}
	if (records > lines || tl_source_csv.finish(st, &err) != TL_OK)
		abort();
	tl_source_csv.close(st);
	tl_src_info_free(info);
	free(info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_reader(data, size);
	check_source(data, size);
	return 0;
}
