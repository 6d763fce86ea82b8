/* infile.c - open inputs as regular files only (see infile.h). */
#define _GNU_SOURCE
#include "infile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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
