/* infile.c - open inputs as regular files only (see infile.h). */
#define _GNU_SOURCE
#include "infile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The inputs read so far: a small list, searched linearly (a program reads
 * a handful of files; the list holds each once). */
typedef struct {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	char *path;
} seen_input;

static struct {
	pthread_mutex_t lock;
	seen_input *v;
	size_t n, cap;
	int off; /* tl_infile_remember(0) */
} inputs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int same_input(const seen_input *s, const struct stat *sb)
{
	/* the modification time tells a recycled inode (input deleted, a new
	 * file made) from the input; links and renames keep it */
	return s->dev == sb->st_dev && s->ino == sb->st_ino &&
	       s->mtime.tv_sec == sb->st_mtim.tv_sec && s->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/* Remember an opened input; out of memory only loses the protection. */
static void remember(const char *path, const struct stat *sb)
{
	pthread_mutex_lock(&inputs.lock);
	if (inputs.off)
		goto out;
	for (size_t i = 0; i < inputs.n; i++)
		if (same_input(&inputs.v[i], sb))
			goto out;
	if (inputs.n == inputs.cap) {
		size_t cap = inputs.cap ? 2 * inputs.cap : 16;
		seen_input *v = realloc(inputs.v, cap * sizeof *v);
		if (!v)
			goto out;
		inputs.v = v;
		inputs.cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		goto out;
	inputs.v[inputs.n++] = (seen_input){sb->st_dev, sb->st_ino, sb->st_mtim, p};
out:
	pthread_mutex_unlock(&inputs.lock);
}

int tl_infile_was_read(const struct stat *sb, char *path, size_t n)
{
	int r = 0;
	pthread_mutex_lock(&inputs.lock);
	for (size_t i = 0; i < inputs.n && !r; i++)
		if (same_input(&inputs.v[i], sb)) {
			snprintf(path, n, "%s", inputs.v[i].path);
			r = 1;
		}
	pthread_mutex_unlock(&inputs.lock);
	return r;
}

void tl_infile_note(const char *path)
{
	struct stat sb;
	if (path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		remember(path, &sb);
}

void tl_infile_forget(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return;
	pthread_mutex_lock(&inputs.lock);
	for (size_t i = 0; i < inputs.n; i++)
		if (same_input(&inputs.v[i], &sb)) {
			free(inputs.v[i].path);
			inputs.v[i] = inputs.v[--inputs.n];
			break;
		}
	pthread_mutex_unlock(&inputs.lock);
}

void tl_infile_remember(int on)
{
	pthread_mutex_lock(&inputs.lock);
	inputs.off = !on;
	for (size_t i = 0; i < inputs.n; i++)
		free(inputs.v[i].path);
	free(inputs.v);
	inputs.v = NULL;
	inputs.n = inputs.cap = 0;
	pthread_mutex_unlock(&inputs.lock);
}

const char *tl_file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "not a file";
}

int tl_open_input(const char *path, struct stat *sb, tl_err *err)
{
	/* O_NONBLOCK: opening a FIFO with no writer would wait forever */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		tl_seterr(err, TL_EIO, "%s: cannot stat: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		tl_seterr(err, TL_EIO, "%s: not a regular file (it is %s)", path,
			  tl_file_kind(st.st_mode));
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		tl_seterr(err, TL_EIO, "%s: cannot set blocking reads: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	remember(path, &st);
	if (sb)
		*sb = st;
	return fd;
}

FILE *tl_fopen_input(const char *path, tl_err *err)
{
	int fd = tl_open_input(path, NULL, err);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		tl_seterr(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}
