/* afile.c - atomic output files (see afile.h). */
#define _GNU_SOURCE
#include "afile.h"
#include "infile.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	char *d = strdup(dirname(copy));
	free(copy);
	return d;
}

enum target { T_FILE, T_STREAM };

/* Whether st is the file open on descriptor fd. */
static int is_open_on(int fd, const struct stat *st)
{
	struct stat o;
	return fstat(fd, &o) == 0 && o.st_dev == st->st_dev && o.st_ino == st->st_ino;
}

/* Decide how path is written (see tl_afile_open); *out_fd is the
 * descriptor to duplicate for "-" and standard output/error, else -1. */
static tl_status classify(const char *path, enum target *kind, int *out_fd, tl_err *err)
{
	*out_fd = -1;
	*kind = T_FILE;
	if (strcmp(path, "-") == 0) {
		*kind = T_STREAM;
		*out_fd = STDOUT_FILENO;
		return TL_OK;
	}
	struct stat st, ln;
	if (lstat(path, &ln) != 0)
		return TL_OK; /* absent (or unreachable: creating it will say why) */
	if (stat(path, &st) != 0)
		return TL_OK; /* a dangling symbolic link: the link is replaced */
	char input[1024];
	if (tl_infile_was_read(&st, input, sizeof input))
		return tl_seterr(err, TL_EUSAGE,
				 "%s: is an input of this command (read as %s); refusing to replace it (choose another output name)",
				 path, input);
	if (is_open_on(STDOUT_FILENO, &st) || is_open_on(STDERR_FILENO, &st)) {
		/* -o /dev/stdout: the user means the stream, even when it was
		 * redirected to a regular file */
		*kind = T_STREAM;
		*out_fd = is_open_on(STDOUT_FILENO, &st) ? STDOUT_FILENO : STDERR_FILENO;
		return TL_OK;
	}
	if (S_ISREG(st.st_mode) || S_ISLNK(ln.st_mode))
		return TL_OK; /* a regular file, or a link (replaced, not followed) */
	struct stat null;
	if (S_ISFIFO(st.st_mode) ||
	    (S_ISCHR(st.st_mode) && stat("/dev/null", &null) == 0 && S_ISCHR(null.st_mode) &&
	     st.st_rdev == null.st_rdev)) {
		*kind = T_STREAM;
		return TL_OK;
	}
	return tl_seterr(err, TL_EUSAGE,
			 "%s: exists and is %s, not a regular file; refusing to replace it (outputs are regular files, or a stream: -, a FIFO, /dev/stdout, /dev/null)",
			 path, tl_file_kind(st.st_mode));
}

/* classify, refusing a stream where the output must be seekable. */
static tl_status check_target(const char *path, int seekable, enum target *kind, int *fd,
			      tl_err *err)
{
	TL_TRY(classify(path, kind, fd, err));
	if (*kind == T_STREAM && seekable)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: is a stream; this output is written out of order and needs a regular file (choose a file name)",
				 path);
	return TL_OK;
}

static tl_status open_stream(tl_afile *f, const char *path, int fd, tl_err *err)
{
	f->stream = 1;
	f->path = strdup(path);
	if (!f->path)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	f->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (f->fd < 0) {
		int e = errno;
		free(f->path);
		f->path = NULL;
		return tl_seterr(err, TL_EIO, "%s: cannot open for writing: %s", path, strerror(e));
	}
	return TL_OK;
}

static tl_status afile_open(tl_afile *f, const char *path, int seekable, tl_err *err)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	enum target kind;
	int fd;
	TL_TRY(check_target(path, seekable, &kind, &fd, err));
	if (kind == T_STREAM)
		return open_stream(f, path, fd, err);
	char *dir = dir_of(path), *copy = strdup(path);
	if (!dir || !copy) {
		free(dir);
		free(copy);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	size_t n = strlen(dir) + strlen(basename(copy)) + 48;
	f->tmp = malloc(n);
	f->path = strdup(path);
	if (!f->tmp || !f->path) {
		free(dir);
		free(copy);
		tl_afile_abort(f);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	/* the PID in the name lets a later run remove what a killed one left
	 * (tl_afile_clean_stale) */
	snprintf(f->tmp, n, "%s/.%s.tmp.%ld.XXXXXX", dir, basename(copy), (long)getpid());
	free(copy);
	f->fd = mkstemp(f->tmp);
	if (f->fd < 0) {
		int e = errno;
		tl_seterr(err, TL_EIO, "%s: cannot create output in directory %s: %s", path, dir,
			  strerror(e));
		free(dir);
		free(f->tmp);
		f->tmp = NULL; /* nothing to unlink */
		tl_afile_abort(f);
		return TL_EIO;
	}
	free(dir);
	/* mkstemp makes 0600; an output file should get the usual umask mode */
	mode_t um = umask(0);
	umask(um);
	fchmod(f->fd, 0666 & ~um);
	return TL_OK;
}

tl_status tl_afile_check(const char *path, int seekable, tl_err *err)
{
	enum target kind;
	int fd;
	return check_target(path, seekable, &kind, &fd, err);
}

tl_status tl_afile_open(tl_afile *f, const char *path, tl_err *err)
{
	return afile_open(f, path, 0, err);
}

tl_status tl_afile_open_file(tl_afile *f, const char *path, tl_err *err)
{
	return afile_open(f, path, 1, err);
}

static tl_status write_fail(tl_afile *f, uint64_t off, tl_err *err)
{
	int e = errno;
	return tl_seterr(err, TL_EIO, "%s: write failed at byte %llu: %s", f->path,
			 (unsigned long long)off, e ? strerror(e) : "short write");
}

tl_status tl_afile_pwrite(tl_afile *f, const void *buf, size_t n, uint64_t off, tl_err *err)
{
	const char *p = buf;
	if (f->stream && off != f->written)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: is a stream; this output is written out of order and needs a regular file",
				 f->path);
	while (n > 0) {
		errno = 0;
		ssize_t w = f->stream ? write(f->fd, p, n) : pwrite(f->fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return write_fail(f, off, err);
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return TL_OK;
}

tl_status tl_afile_write(tl_afile *f, const void *buf, size_t n, tl_err *err)
{
	TL_TRY(tl_afile_pwrite(f, buf, n, f->written, err));
	f->written += n;
	return TL_OK;
}

tl_status tl_afile_pad_to(tl_afile *f, uint64_t size, tl_err *err)
{
	static const char zeros[4096];
	while (f->written < size) {
		uint64_t k = size - f->written;
		TL_TRY(tl_afile_write(f, zeros, k < sizeof zeros ? (size_t)k : sizeof zeros, err));
	}
	return TL_OK;
}

/* commit of a stream: its close is where a late write error shows */
static tl_status commit_stream(tl_afile *f, tl_err *err)
{
	int rc = close(f->fd);
	f->fd = -1;
	tl_status st = TL_OK;
	if (rc != 0)
		st = tl_seterr(err, TL_EIO, "%s: close failed: %s", f->path, strerror(errno));
	tl_afile_abort(f);
	return st;
}

tl_status tl_afile_commit(tl_afile *f, tl_err *err)
{
	if (f->stream)
		return commit_stream(f, err);
	/* the target may have changed since open (made a device, read) */
	enum target kind;
	int unused;
	tl_status cst = classify(f->path, &kind, &unused, err);
	if (cst == TL_OK && kind != T_FILE)
		cst = tl_seterr(err, TL_EUSAGE,
				"%s: became a stream while it was written; refusing to replace it",
				f->path);
	if (cst != TL_OK) {
		tl_afile_abort(f);
		return cst;
	}
	if (fsync(f->fd) != 0) {
		tl_seterr(err, TL_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
		tl_afile_abort(f);
		return TL_EIO;
	}
	if (close(f->fd) != 0) {
		f->fd = -1;
		tl_seterr(err, TL_EIO, "%s: close failed: %s", f->path, strerror(errno));
		tl_afile_abort(f);
		return TL_EIO;
	}
	f->fd = -1;
	if (rename(f->tmp, f->path) != 0) {
		tl_seterr(err, TL_EIO, "%s: cannot rename %s into place: %s", f->path, f->tmp,
			  strerror(errno));
		tl_afile_abort(f);
		return TL_EIO;
	}
	char *dir = dir_of(f->path);
	if (dir) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
	return TL_OK;
}

void tl_afile_abort(tl_afile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	free(f->path);
	f->fd = -1;
	f->stream = 0;
	f->tmp = f->path = NULL;
}

tl_status tl_write_file_atomic(const char *path, const void *buf, size_t n, tl_err *err)
{
	tl_afile f;
	TL_TRY(tl_afile_open(&f, path, err));
	tl_status st = tl_afile_write(&f, buf, n, err);
	if (st != TL_OK) {
		tl_afile_abort(&f);
		return st;
	}
	return tl_afile_commit(&f, err);
}

tl_status tl_afile_clean_stale(const char *path, unsigned *files, uint64_t *bytes, tl_err *err)
{
	*files = 0;
	*bytes = 0;
	char *dir = dir_of(path), *copy = strdup(path), *prefix = NULL;
	tl_status st = TL_OK;
	if (!dir || !copy || asprintf(&prefix, ".%s.tmp.", basename(copy)) < 0) {
		prefix = NULL;
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	DIR *d = opendir(dir);
	if (!d)
		goto out; /* nothing to clean; creating the output will say why */
	size_t pl = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, pl) != 0)
			continue;
		char *end;
		errno = 0;
		long pid = strtol(e->d_name + pl, &end, 10);
		if (errno || end == e->d_name + pl || *end != '.' || pid <= 0 ||
		    strlen(end + 1) != 6)
			continue; /* not one of ours */
		if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its writer may still be running */
		struct stat sb;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			(*files)++;
			*bytes += (uint64_t)sb.st_size;
		}
	}
	closedir(d);
out:
	free(prefix);
	free(copy);
	free(dir);
	return st;
}

int tl_same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
