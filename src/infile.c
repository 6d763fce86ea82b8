/* infile.c - open inputs as regular files only (see infile.h). */
#define _GNU_SOURCE
#include "infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The inputs read so far, one slot per file (device and inode), in an
 * open-addressing hash table: a folder source opens every one of 100,000
 * images through here, so a lookup must not walk them all. */
typedef struct {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	char *path; /* NULL: empty slot; &tomb: a forgotten one */
} seen_input;

static char tomb;

static struct {
	pthread_mutex_t lock;
	seen_input *v;
	size_t cap, used; /* used: slots not empty (tombstones included) */
	int off;          /* tl_infile_remember(0) */
} inputs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t slot_of(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h = (uint64_t)ino ^ ((uint64_t)dev * 0x9e3779b97f4a7c15ull);
	h ^= h >> 31, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 29; /* splitmix's finish */
	return (size_t)h & (cap - 1);
}

/* The slot holding sb's file, or NULL (lock held). */
static seen_input *find(const struct stat *sb)
{
	if (!inputs.cap)
		return NULL;
	for (size_t i = slot_of(sb->st_dev, sb->st_ino, inputs.cap);; i = (i + 1) & (inputs.cap - 1)) {
		seen_input *s = &inputs.v[i];
		if (!s->path)
			return NULL;
		if (s->path != &tomb && s->dev == sb->st_dev && s->ino == sb->st_ino)
			return s;
	}
}

/* Double the table (or make it), dropping tombstones; 0 on success. */
static int grow(void)
{
	size_t cap = inputs.cap ? 2 * inputs.cap : 64, used = 0;
	seen_input *v = calloc(cap, sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < inputs.cap; i++) {
		seen_input *s = &inputs.v[i];
		if (!s->path || s->path == &tomb)
			continue;
		size_t j = slot_of(s->dev, s->ino, cap);
		while (v[j].path)
			j = (j + 1) & (cap - 1);
		v[j] = *s;
		used++;
	}
	free(inputs.v);
	inputs.v = v;
	inputs.cap = cap;
	inputs.used = used;
	return 0;
}

/* Remember an opened input (its latest version: a file read again after
 * a change is that file now); out of memory only loses the protection. */
static void remember(const char *path, const struct stat *sb)
{
	pthread_mutex_lock(&inputs.lock);
	if (inputs.off)
		goto out;
	char *p = strdup(path);
	if (!p)
		goto out;
	seen_input *s = find(sb);
	if (s) {
		free(s->path);
	} else {
		if ((inputs.used + 1) * 4 > inputs.cap * 3 && grow() != 0) {
			free(p);
			goto out;
		}
		size_t i = slot_of(sb->st_dev, sb->st_ino, inputs.cap);
		while (inputs.v[i].path && inputs.v[i].path != &tomb)
			i = (i + 1) & (inputs.cap - 1);
		s = &inputs.v[i];
		if (!s->path)
			inputs.used++;
	}
	*s = (seen_input){sb->st_dev, sb->st_ino, sb->st_mtim, p};
out:
	pthread_mutex_unlock(&inputs.lock);
}

int tl_infile_was_read(const struct stat *sb, char *path, size_t n)
{
	pthread_mutex_lock(&inputs.lock);
	const seen_input *s = find(sb);
	/* the modification time tells a recycled inode (input deleted, a new
	 * file made) from the input; links and renames keep it */
	int r = s && s->mtime.tv_sec == sb->st_mtim.tv_sec && s->mtime.tv_nsec == sb->st_mtim.tv_nsec;
	if (r)
		snprintf(path, n, "%s", s->path);
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
	seen_input *s = find(&sb);
	if (s) {
		free(s->path);
		s->path = &tomb;
	}
	pthread_mutex_unlock(&inputs.lock);
}

void tl_infile_remember(int on)
{
	pthread_mutex_lock(&inputs.lock);
	inputs.off = !on;
	for (size_t i = 0; i < inputs.cap; i++)
		if (inputs.v[i].path != &tomb)
			free(inputs.v[i].path);
	free(inputs.v);
	inputs.v = NULL;
	inputs.cap = inputs.used = 0;
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
