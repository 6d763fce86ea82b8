/* fixture.c - synthetic CIFAR distributions (see fixture.h). */
#define _GNU_SOURCE
#include "fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void fixture_defaults(fixture_opts *o)
{
	memset(o, 0, sizeof *o);
	o->dataset = 10;
	o->per_batch = 20;
	o->test_count = 15;
	o->gzip = 1;
	o->with_meta = 1;
	o->bad_label_at = -1;
}

uint8_t fixture_pixel(int member, int r, int i)
{
	return (uint8_t)(member * 37 + r * 11 + i * 7 + (i >> 5) * 3);
}

uint8_t fixture_label(int member, int r)
{
	return (uint8_t)((member * 3 + r) % 10);
}

uint8_t fixture_coarse(int member, int r)
{
	return (uint8_t)((member + r * 7) % 20);
}

static uint8_t *member_bytes(const fixture_opts *o, int member, int count, size_t *n)
{
	int rec = o->dataset == 10 ? 3073 : 3074, lb = rec - 3072;
	size_t extra = member == 1 ? (size_t)o->extra_bytes : 0;
	*n = (size_t)count * rec + extra;
	uint8_t *b = calloc(1, *n ? *n : 1);
	for (int r = 0; r < count; r++) {
		uint8_t *p = b + (size_t)r * rec;
		if (lb == 1) {
			p[0] = fixture_label(member, r);
		} else {
			p[0] = fixture_coarse(member, r);
			p[1] = (uint8_t)((member * 3 + r) % 100);
		}
		int test = (o->dataset == 10 && member == 6) || (o->dataset == 100 && member == 2);
		if (test && r == o->bad_label_at)
			p[0] = 200;
		for (int i = 0; i < 3072; i++)
			p[lb + i] = fixture_pixel(member, r, i);
	}
	return b;
}

typedef struct {
	struct archive *a;
	char *dir;
	const char *folder;
} sink;

static int put(sink *s, const char *name, const void *data, size_t n)
{
	if (s->dir) {
		char *p;
		if (asprintf(&p, "%s/%s", s->dir, name) < 0)
			return -1;
		FILE *f = fopen(p, "wb");
		free(p);
		if (!f || fwrite(data, 1, n, f) != n) {
			if (f)
				fclose(f);
			return -1;
		}
		return fclose(f);
	}
	char path[256];
	snprintf(path, sizeof path, "%s/%s", s->folder, name);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_size(e, (la_int64_t)n);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, 1244073600, 0);
	int ok = archive_write_header(s->a, e) == ARCHIVE_OK &&
		 (n == 0 || archive_write_data(s->a, data, n) == (la_ssize_t)n);
	archive_entry_free(e);
	return ok ? 0 : -1;
}

int fixture_write(const char *path, const fixture_opts *o)
{
	sink s = {0};
	s.folder = o->dataset == 10 ? "cifar-10-batches-bin" : "cifar-100-binary";
	if (o->as_dir) {
		mkdir(path, 0755);
		if (asprintf(&s.dir, "%s/%s", path, s.folder) < 0)
			return -1;
		mkdir(s.dir, 0755);
	} else {
		s.a = archive_write_new();
		archive_write_set_format_pax_restricted(s.a);
		if (o->gzip)
			archive_write_add_filter_gzip(s.a);
		if (archive_write_open_filename(s.a, path) != ARCHIVE_OK) {
			fprintf(stderr, "fixture: %s: %s\n", path, archive_error_string(s.a));
			return -1;
		}
	}
	int rc = 0;
	if (o->dataset == 10) {
		/* the official tarball's member order is not sorted */
		static const int sorted[] = {0, 1, 2, 3, 4, 5, 6}, odd[] = {1, 0, 3, 4, 6, 2, 5};
		const int *order = o->odd_order ? odd : sorted;
		for (int k = 0; k < 7 && rc == 0; k++) {
			int m = order[k];
			if (m == 0) {
				if (o->with_meta) {
					const char *t = "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n";
					rc = put(&s, "batches.meta.txt", t, strlen(t));
				}
				continue;
			}
			if (m == o->skip_batch)
				continue;
			size_t n;
			uint8_t *b = member_bytes(o, m, m == 6 ? o->test_count : o->per_batch, &n);
			char name[64];
			if (m == 6)
				snprintf(name, sizeof name, "test_batch.bin");
			else
				snprintf(name, sizeof name, "data_batch_%d.bin", m);
			rc = put(&s, name, b, n);
			if (rc == 0 && m == 1 && o->dup_batch)
				rc = put(&s, name, b, n);
			free(b);
		}
	} else {
		size_t n;
		uint8_t *b = member_bytes(o, 1, o->per_batch, &n);
		rc = put(&s, "train.bin", b, n);
		free(b);
		b = member_bytes(o, 2, o->test_count, &n);
		if (rc == 0)
			rc = put(&s, "test.bin", b, n);
		free(b);
		if (rc == 0 && o->with_meta) {
			char fine[2000] = "", coarse[400] = "";
			for (int i = 0; i < 100; i++)
				sprintf(fine + strlen(fine), "fine%d\n", i);
			for (int i = 0; i < 20; i++)
				sprintf(coarse + strlen(coarse), "coarse%d\n", i);
			rc = put(&s, "fine_label_names.txt", fine, strlen(fine));
			if (rc == 0)
				rc = put(&s, "coarse_label_names.txt", coarse, strlen(coarse));
		}
	}
	if (s.a) {
		if (archive_write_close(s.a) != ARCHIVE_OK)
			rc = -1;
		archive_write_free(s.a);
	}
	free(s.dir);
	if (rc)
		fprintf(stderr, "fixture: %s: write failed\n", path);
	return rc;
}
