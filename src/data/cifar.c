/* cifar.c - CIFAR member streaming on libarchive (see cifar.h). */
#define _GNU_SOURCE
#include "data/cifar.h"
#include "infile.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

const char *const tl_cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
					  "dog",      "frog",       "horse", "ship", "truck"};

#ifndef TL_CIFAR_READ_BLOCK
#define TL_CIFAR_READ_BLOCK (1u << 20) /* bytes per read() of the source file */
#endif

struct tl_cifar_src {
	char *path;
	int is_dir;
	/* archive mode: libarchive pulls the file through read_cb so we can
	 * hash every source byte and report progress */
	struct archive *ar;
	int fd;
	uint8_t *buf;
	XXH3_state_t *xs;
	atomic_uint_fast64_t consumed;
	uint64_t total;
	/* a gzip source is inflated here (zlib checks every member's CRC-32
	 * and length, which libarchive's gzip filter does not); libarchive
	 * then sees the plain tar */
	int gz;         /* 1 once the source started with the gzip magic */
	int gz_end;     /* the last member ended at the end of the file */
	z_stream zs;
	uint8_t *zbuf;  /* inflated bytes handed to libarchive */
	size_t zavail;  /* raw bytes in buf not yet inflated (at zs.next_in) */
	int eof;        /* read() returned 0 */
	/* directory mode */
	char *dir;
	char **names;
	size_t n_names, next_name;
	FILE *cur;
	/* the current member */
	char member[512];
	uint64_t left; /* member bytes not yet read */
};

tl_member_kind tl_cifar_classify(const char *base, int *batch)
{
	*batch = 0;
	int n, len = 0;
	if (sscanf(base, "data_batch_%d.bin%n", &n, &len) == 1 && base[len] == 0 &&
	    (size_t)len == strlen(base)) {
		*batch = n;
		return TL_MEMBER_C10_TRAIN;
	}
	static const struct {
		const char *name;
		tl_member_kind kind;
	} fixed[] = {
		{"test_batch.bin", TL_MEMBER_C10_TEST},
		{"batches.meta.txt", TL_MEMBER_C10_META},
		{"train.bin", TL_MEMBER_C100_TRAIN},
		{"test.bin", TL_MEMBER_C100_TEST},
		{"fine_label_names.txt", TL_MEMBER_C100_FINE},
		{"coarse_label_names.txt", TL_MEMBER_C100_COARSE},
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (strcmp(base, fixed[i].name) == 0)
			return fixed[i].kind;
	return TL_MEMBER_OTHER;
}

/* Read the next block of the source file into buf, hashing it. */
static ssize_t read_raw(tl_cifar_src *s)
{
	for (;;) {
		ssize_t n = read(s->fd, s->buf, TL_CIFAR_READ_BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			XXH3_64bits_update(s->xs, s->buf, (size_t)n);
			atomic_fetch_add(&s->consumed, (uint64_t)n);
		}
		if (n == 0)
			s->eof = 1;
		return n;
	}
}

/* Inflate the next block of a gzip source.  Members follow each other
 * (gzip -c a b); anything after the last member, a CRC or length that
 * does not match, or a file that ends inside a member is an error. */
static la_ssize_t read_gz(struct archive *a, tl_cifar_src *s, const void **out)
{
	s->zs.next_out = s->zbuf;
	s->zs.avail_out = TL_CIFAR_READ_BLOCK;
	while (s->zs.avail_out == TL_CIFAR_READ_BLOCK) {
		if (s->zavail == 0 && !s->eof) {
			ssize_t n = read_raw(s);
			if (n < 0) {
				archive_set_error(a, errno, "read failed: %s", strerror(errno));
				return -1;
			}
			s->zs.next_in = s->buf;
			s->zavail = (size_t)n;
		}
		if (s->gz_end) {
			if (s->zavail == 0 && s->eof)
				break;
			/* another member must start here */
			if (s->zs.next_in[0] != 0x1f || inflateReset(&s->zs) != Z_OK) {
				archive_set_error(a, EILSEQ,
						  "gzip: %zu unexpected bytes after the compressed data",
						  s->zavail);
				return -1;
			}
			s->gz_end = 0;
		}
		if (s->zavail == 0 && s->eof) {
			archive_set_error(a, EILSEQ,
					  "gzip: the file ends inside the compressed data (truncated)");
			return -1;
		}
		s->zs.avail_in = (uInt)s->zavail;
		int r = inflate(&s->zs, Z_NO_FLUSH);
		s->zavail = s->zs.avail_in;
		if (r == Z_STREAM_END) {
			s->gz_end = 1;
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			archive_set_error(a, EILSEQ, "gzip: %s",
					  s->zs.msg ? s->zs.msg : "corrupt compressed data");
			return -1;
		}
	}
	*out = s->zbuf;
	return (la_ssize_t)(TL_CIFAR_READ_BLOCK - s->zs.avail_out);
}

static la_ssize_t read_cb(struct archive *a, void *ctx, const void **out)
{
	tl_cifar_src *s = ctx;
	if (s->gz)
		return read_gz(a, s, out);
	ssize_t n = read_raw(s);
	if (n < 0) {
		archive_set_error(a, errno, "read failed: %s", strerror(errno));
		return -1;
	}
	*out = s->buf;
	return n;
}

/* Look at the first bytes: a gzip source is inflated by read_gz. */
static tl_status sniff_gzip(tl_cifar_src *s, tl_err *err)
{
	uint8_t m[2];
	ssize_t n = pread(s->fd, m, 2, 0);
	if (n < 0)
		return tl_seterr(err, TL_EIO, "%s: cannot read input: %s", s->path, strerror(errno));
	if (n < 2 || m[0] != 0x1f || m[1] != 0x8b)
		return TL_OK;
	if (!(s->zbuf = malloc(TL_CIFAR_READ_BLOCK)))
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->path);
	if (inflateInit2(&s->zs, 15 + 16) != Z_OK) /* gzip wrapper, checks CRC-32 + ISIZE */
		return tl_seterr(err, TL_ENOMEM, "%s: cannot start gzip decoder", s->path);
	s->gz = 1;
	return TL_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Directory mode: use DIR/cifar-10-batches-bin or DIR/cifar-100-binary
 * when present, then list regular files in name order. */
static tl_status open_dir(tl_cifar_src *s, tl_err *err)
{
	static const char *const subs[] = {"cifar-10-batches-bin", "cifar-100-binary"};
	struct stat sb;
	s->dir = strdup(s->path);
	for (size_t i = 0; i < 2 && s->dir; i++) {
		char *p;
		if (asprintf(&p, "%s/%s", s->path, subs[i]) < 0)
			break;
		if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			free(s->dir);
			s->dir = p;
			break;
		}
		free(p);
	}
	if (!s->dir)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->path);
	DIR *d = opendir(s->dir);
	if (!d)
		return tl_seterr(err, TL_EIO, "%s: cannot list directory: %s", s->dir,
				 strerror(errno));
	struct dirent *e;
	size_t cap = 0;
	while ((e = readdir(d))) {
		char *p;
		if (e->d_name[0] == '.' || asprintf(&p, "%s/%s", s->dir, e->d_name) < 0)
			continue;
		if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			free(p);
			continue;
		}
		free(p);
		if (s->n_names == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(s->names, cap * sizeof *nn);
			if (!nn) {
				closedir(d);
				return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->path);
			}
			s->names = nn;
		}
		s->names[s->n_names] = strdup(e->d_name);
		if (s->names[s->n_names])
			s->n_names++;
		s->total += (uint64_t)sb.st_size;
	}
	closedir(d);
	if (s->n_names > 1)
		qsort(s->names, s->n_names, sizeof *s->names, cmp_str);
	return TL_OK;
}

tl_status tl_cifar_open(tl_cifar_src **out, const char *path, tl_err *err)
{
	*out = NULL;
	tl_cifar_src *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	s->fd = -1;
	struct stat sb;
	tl_status st = TL_OK;
	if (stat(path, &sb) != 0) {
		st = tl_seterr(err, TL_EIO, "%s: cannot open input: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(sb.st_mode)) {
		s->is_dir = 1;
		if ((st = open_dir(s, err)) != TL_OK)
			goto fail;
		*out = s;
		return TL_OK;
	}
	/* a FIFO or device is refused here, without blocking */
	if ((s->fd = tl_open_input(path, &sb, err)) < 0) {
		st = TL_EIO;
		goto fail;
	}
	if (sb.st_size == 0) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: empty file (expected a CIFAR-10/100 binary tarball)", path);
		goto fail;
	}
	s->total = (uint64_t)sb.st_size;
	s->buf = malloc(TL_CIFAR_READ_BLOCK);
	s->xs = XXH3_createState();
	if (!s->buf || !s->xs || !(s->ar = archive_read_new())) {
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	XXH3_64bits_reset(s->xs);
	if ((st = sniff_gzip(s, err)) != TL_OK)
		goto fail;
	archive_read_support_filter_all(s->ar);
	archive_read_support_format_tar(s->ar);
	archive_read_support_format_gnutar(s->ar);
	archive_read_support_format_zip(s->ar);
	archive_read_support_format_7zip(s->ar);
	archive_read_support_format_cpio(s->ar);
	if (archive_read_open(s->ar, s, NULL, read_cb, NULL) != ARCHIVE_OK) {
		st = tl_seterr(err, TL_EFORMAT,
			       "%s: not a readable archive: %s (expected a CIFAR-10/100 binary .tar.gz, .tar or directory)",
			       path, archive_error_string(s->ar));
		goto fail;
	}
	*out = s;
	return TL_OK;
fail:
	tl_cifar_close(s);
	return st;
}

static tl_status next_dir(tl_cifar_src *s, tl_cifar_member *m, int *done, tl_err *err)
{
	if (s->cur) {
		fclose(s->cur);
		s->cur = NULL;
	}
	if (s->next_name == s->n_names) {
		*done = 1;
		return TL_OK;
	}
	const char *name = s->names[s->next_name++];
	char *p;
	if (asprintf(&p, "%s/%s", s->dir, name) < 0)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->path);
	s->cur = tl_fopen_input(p, err);
	struct stat sb;
	if (!s->cur || fstat(fileno(s->cur), &sb) != 0) {
		if (s->cur)
			tl_seterr(err, TL_EIO, "%s: cannot stat: %s", p, strerror(errno));
		free(p);
		return TL_EIO;
	}
	free(p);
	snprintf(m->path, sizeof m->path, "%s", name);
	m->size = (uint64_t)sb.st_size;
	return TL_OK;
}

/* A failure reading the next header: name the member it followed, or say
 * what we expected when it was the first one. */
static tl_status header_error(tl_cifar_src *s, tl_err *err)
{
	if (s->member[0])
		return tl_seterr(err, TL_EFORMAT, "%s: after member %s: %s", s->path, s->member,
				 archive_error_string(s->ar));
	return tl_seterr(err, TL_EFORMAT,
			 "%s: not a readable archive: %s (expected a CIFAR-10/100 binary .tar.gz, .tar or directory)",
			 s->path, archive_error_string(s->ar));
}

tl_status tl_cifar_next(tl_cifar_src *s, tl_cifar_member *m, int *done, tl_err *err)
{
	memset(m, 0, sizeof *m);
	*done = 0;
	if (s->is_dir) {
		TL_TRY(next_dir(s, m, done, err));
		if (*done)
			return TL_OK;
	} else {
		for (;;) {
			struct archive_entry *e;
			int r = archive_read_next_header(s->ar, &e);
			if (r == ARCHIVE_EOF) {
				*done = 1;
				return TL_OK;
			}
			if (r != ARCHIVE_OK) /* a warning too: nothing damaged passes quietly */
				return header_error(s, err);
			if (archive_entry_filetype(e) != AE_IFREG)
				continue;
			snprintf(m->path, sizeof m->path, "%s", archive_entry_pathname(e));
			m->size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
			break;
		}
	}
	const char *slash = strrchr(m->path, '/');
	snprintf(m->base, sizeof m->base, "%s", slash ? slash + 1 : m->path);
	m->kind = tl_cifar_classify(m->base, &m->batch);
	snprintf(s->member, sizeof s->member, "%s", m->path);
	s->left = m->size;
	return TL_OK;
}

tl_status tl_cifar_read(tl_cifar_src *s, void *buf, size_t n, tl_err *err)
{
	if (n > s->left)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: read past the member's end (%llu bytes left, wanted %zu)",
				 s->path, s->member, (unsigned long long)s->left, n);
	uint8_t *p = buf;
	size_t got = 0;
	while (got < n) {
		if (s->is_dir) {
			size_t k = fread(p + got, 1, n - got, s->cur);
			if (k == 0)
				return tl_seterr(err, TL_EIO,
						 "%s/%s: %s (expected %zu more bytes)", s->dir,
						 s->member,
						 ferror(s->cur) ? strerror(errno) : "file ended early",
						 n - got);
			atomic_fetch_add(&s->consumed, k);
			got += k;
		} else {
			la_ssize_t k = archive_read_data(s->ar, p + got, n - got);
			if (k < 0)
				return tl_seterr(err, TL_EFORMAT, "%s: %s: %s", s->path, s->member,
						 archive_error_string(s->ar));
			if (k == 0)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: %s: member data ends early (expected %zu more bytes, got none)",
						 s->path, s->member, n - got);
			got += (size_t)k;
		}
	}
	s->left -= n;
	return TL_OK;
}

uint64_t tl_cifar_consumed(const tl_cifar_src *s)
{
	return atomic_load(&((tl_cifar_src *)s)->consumed);
}

uint64_t tl_cifar_total(const tl_cifar_src *s)
{
	return s->total;
}

tl_status tl_cifar_finish(tl_cifar_src *s, uint64_t *size, uint64_t *hash, tl_err *err)
{
	*size = s->total;
	*hash = 0;
	if (s->is_dir)
		return TL_OK;
	/* read (and for gzip, inflate and check) to the end of the file:
	 * hashes any trailing bytes and reaches the last gzip trailer */
	const void *dummy;
	la_ssize_t n;
	while ((n = read_cb(s->ar, s, &dummy)) > 0)
		;
	if (n < 0)
		return tl_seterr(err, s->gz ? TL_EFORMAT : TL_EIO, "%s: %s", s->path,
				 archive_error_string(s->ar));
	*hash = XXH3_64bits_digest(s->xs);
	return TL_OK;
}

void tl_cifar_close(tl_cifar_src *s)
{
	if (!s)
		return;
	if (s->ar)
		archive_read_free(s->ar);
	if (s->fd >= 0)
		close(s->fd);
	if (s->xs)
		XXH3_freeState(s->xs);
	if (s->gz)
		inflateEnd(&s->zs);
	free(s->zbuf);
	if (s->cur)
		fclose(s->cur);
	for (size_t i = 0; i < s->n_names; i++)
		free(s->names[i]);
	free(s->names);
	free(s->dir);
	free(s->buf);
	free(s->path);
	free(s);
}
