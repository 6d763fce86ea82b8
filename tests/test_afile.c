/* test_afile.c - what an output may replace (afile.h) and what an input
 * may be (infile.h): regular files atomically, streams written through,
 * devices and the command's own inputs refused; FIFOs and devices refused
 * as inputs without blocking. */
#define _GNU_SOURCE
#include "afile.h"
#include "cli.h"
#include "infile.h"
#include "tl_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];
static char path[300];

static int setup(void **state)
{
	(void)state;
	if (tl_test_mkdir(dir, sizeof dir, "afile"))
		return -1;
	snprintf(path, sizeof path, "%s/out", dir);
	tl_infile_remember(0); /* each test starts with no inputs */
	tl_infile_remember(1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return tl_test_rmdir(dir);
}

static void put(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_text(const char *p, const char *want)
{
	char buf[256] = {0};
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_string_equal(buf, want);
}

/* A test that would block on a FIFO fails by SIGALRM instead of hanging. */
static void die_on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "test_afile: timed out (a FIFO blocked)\n";
	ssize_t w = write(2, m, sizeof m - 1);
	(void)w;
	_exit(1);
}

static void arm(unsigned s)
{
	signal(SIGALRM, die_on_alarm);
	alarm(s);
}

static void regular_file_replaced_atomically(void **state)
{
	(void)state;
	tl_err err;
	put(path, "old");
	tl_afile f;
	assert_int_equal(tl_afile_open(&f, path, &err), TL_OK);
	assert_int_equal(f.stream, 0);
	assert_int_equal(tl_afile_write(&f, "new", 3, &err), TL_OK);
	expect_text(path, "old"); /* untouched until commit */
	assert_int_equal(tl_afile_commit(&f, &err), TL_OK);
	expect_text(path, "new");
	/* a symbolic link at the target is replaced, its target left alone */
	char other[320], link[320];
	snprintf(other, sizeof other, "%s/other", dir);
	snprintf(link, sizeof link, "%s/link", dir);
	put(other, "kept");
	assert_int_equal(symlink(other, link), 0);
	assert_int_equal(tl_write_file_atomic(link, "x", 1, &err), TL_OK);
	expect_text(other, "kept");
	expect_text(link, "x");
	struct stat sb;
	assert_int_equal(lstat(link, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
}

/* -o with a device node: refused (naming what it is), the node intact;
 * the null device is written through and stays a device. */
static void device_targets_refused_or_written_through(void **state)
{
	(void)state;
	tl_err err;
	tl_afile f;
	char node[320];
	snprintf(node, sizeof node, "%s/full", dir);
	if (mknod(node, S_IFCHR | 0666, makedev(1, 7)) == 0) { /* /dev/full's numbers */
		assert_int_equal(tl_write_file_atomic(node, "abc", 3, &err), TL_EUSAGE);
		if (!strstr(err.msg, "is a character device, not a regular file"))
			fail_msg("device: %s", err.msg);
		struct stat sb;
		assert_int_equal(lstat(node, &sb), 0);
		assert_true(S_ISCHR(sb.st_mode));
		assert_int_equal(sb.st_rdev, makedev(1, 7));
		/* and as a null device: written through, still a device */
		char nul[320];
		snprintf(nul, sizeof nul, "%s/null", dir);
		assert_int_equal(mknod(nul, S_IFCHR | 0666, makedev(1, 3)), 0);
		assert_int_equal(tl_write_file_atomic(nul, "abc", 3, &err), TL_OK);
		assert_int_equal(lstat(nul, &sb), 0);
		assert_true(S_ISCHR(sb.st_mode));
	} else {
		assert_int_equal(errno, EPERM); /* not root: the real nodes below */
	}
	struct stat sb;
	assert_int_equal(tl_write_file_atomic("/dev/null", "abc", 3, &err), TL_OK);
	assert_int_equal(stat("/dev/null", &sb), 0);
	assert_true(S_ISCHR(sb.st_mode));
	assert_int_equal(tl_afile_open(&f, "/dev/zero", &err), TL_EUSAGE);
	assert_int_equal(stat("/dev/zero", &sb), 0);
	assert_true(S_ISCHR(sb.st_mode));
	/* a directory is refused by name, not "cannot rename" after the work */
	assert_int_equal(tl_afile_open(&f, dir, &err), TL_EUSAGE);
	if (!strstr(err.msg, "is a directory, not a regular file"))
		fail_msg("directory: %s", err.msg);
	/* a seekable output is not written to a stream at all */
	assert_int_equal(tl_afile_open_file(&f, "/dev/null", &err), TL_EUSAGE);
	if (!strstr(err.msg, "needs a regular file"))
		fail_msg("seekable: %s", err.msg);
}

/* "-" and /dev/stdout are standard output, even when it is a regular
 * file; a stream only appends. */
static void stdout_is_written_through(void **state)
{
	(void)state;
	tl_err err;
	char out[320];
	snprintf(out, sizeof out, "%s/stdout.txt", dir);
	int saved = dup(1);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	fflush(stdout);
	dup2(fd, 1);
	close(fd);
	tl_afile f;
	tl_status a = tl_write_file_atomic("-", "one,", 4, &err);
	tl_status b = tl_write_file_atomic("/dev/stdout", "two", 3, &err);
	tl_status c = tl_afile_open(&f, "-", &err);
	tl_status d = c == TL_OK ? tl_afile_pwrite(&f, "x", 1, 5, &err) : c;
	tl_afile_abort(&f);
	dup2(saved, 1);
	close(saved);
	assert_int_equal(a, TL_OK);
	assert_int_equal(b, TL_OK);
	assert_int_equal(c, TL_OK);
	assert_int_equal(d, TL_EUSAGE); /* out of order on a stream */
	expect_text(out, "one,two");
	struct stat sb;
	assert_int_equal(lstat("/dev/stdout", &sb), 0);
	assert_true(S_ISLNK(sb.st_mode)); /* not replaced by a file */
}

static void fifo_output_written_through(void **state)
{
	(void)state;
	char fifo[320];
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	arm(20);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the reader */
		char buf[16] = {0};
		int fd = open(fifo, O_RDONLY);
		ssize_t n = read(fd, buf, sizeof buf);
		_exit(n == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : 1);
	}
	tl_err err;
	assert_int_equal(tl_write_file_atomic(fifo, "hello", 5, &err), TL_OK);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	struct stat sb;
	assert_int_equal(lstat(fifo, &sb), 0);
	assert_true(S_ISFIFO(sb.st_mode));
}

/* An output may not replace an input of the same command, checked at
 * open and again at commit; tl_infile_forget lifts it for a file the
 * program means to update. */
static void inputs_are_never_outputs(void **state)
{
	(void)state;
	tl_err err;
	put(path, "input");
	int fd = tl_open_input(path, NULL, &err);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tl_write_file_atomic(path, "x", 1, &err), TL_EUSAGE);
	if (!strstr(err.msg, "is an input of this command"))
		fail_msg("input: %s", err.msg);
	expect_text(path, "input");
	/* through another name: a hard link and a symbolic link */
	char hard[320], soft[320];
	snprintf(hard, sizeof hard, "%s/hard", dir);
	snprintf(soft, sizeof soft, "%s/soft", dir);
	assert_int_equal(link(path, hard), 0);
	assert_int_equal(symlink(path, soft), 0);
	assert_int_equal(tl_write_file_atomic(hard, "x", 1, &err), TL_EUSAGE);
	assert_int_equal(tl_write_file_atomic(soft, "x", 1, &err), TL_EUSAGE);
	expect_text(path, "input");
	unlink(hard);
	unlink(soft);
	/* read after the output was opened: caught at commit */
	char late[320];
	snprintf(late, sizeof late, "%s/late", dir);
	put(late, "late input");
	tl_afile f;
	assert_int_equal(tl_afile_open(&f, late, &err), TL_OK);
	assert_int_equal(tl_afile_write(&f, "y", 1, &err), TL_OK);
	fd = tl_open_input(late, NULL, &err);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tl_afile_commit(&f, &err), TL_EUSAGE);
	expect_text(late, "late input");
	/* forgotten: replaceable */
	tl_infile_forget(path);
	assert_int_equal(tl_write_file_atomic(path, "x", 1, &err), TL_OK);
	expect_text(path, "x");
}

/* Thousands of inputs (a folder source): each is remembered through the
 * table's growth, forgetting one leaves the others, and a forgotten one
 * read again is remembered again. */
static void many_inputs_remembered(void **state)
{
	(void)state;
	enum { N = 3000 };
	char p[400], got[400];
	struct stat sb;
	tl_err err;
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof p, "%s/in%d", dir, i);
		put(p, "x");
		int fd = tl_open_input(p, NULL, &err);
		assert_true(fd >= 0);
		close(fd);
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(p, sizeof p, "%s/in%d", dir, i);
		tl_infile_forget(p);
	}
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof p, "%s/in%d", dir, i);
		assert_int_equal(stat(p, &sb), 0);
		int was = tl_infile_was_read(&sb, got, sizeof got);
		if (was != (i % 2) || (was && strcmp(got, p)))
			fail_msg("%s: remembered %d (%s)", p, was, was ? got : "");
	}
	snprintf(p, sizeof p, "%s/in0", dir);
	int fd = tl_open_input(p, NULL, &err);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(tl_infile_was_read(&sb, got, sizeof got), 1);
	assert_int_equal(tl_afile_open(&(tl_afile){0}, p, &err), TL_EUSAGE);
}

/* Inputs: a FIFO nobody writes, a device, a directory are refused at
 * once, naming what they are. */
static void odd_inputs_refused_without_blocking(void **state)
{
	(void)state;
	char fifo[320];
	snprintf(fifo, sizeof fifo, "%s/in.fifo", dir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	arm(10);
	tl_err err;
	struct { const char *p, *want; } cases[] = {
		{fifo, "not a regular file (it is a FIFO)"},
		{"/dev/zero", "not a regular file (it is a character device)"},
		{dir, "not a regular file (it is a directory)"},
		{"/nonexistent/x", "cannot open: No such file"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(tl_open_input(cases[i].p, NULL, &err), -1);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("%s: %s", cases[i].p, err.msg);
		assert_null(tl_fopen_input(cases[i].p, &err));
	}
	alarm(0);
	put(path, "ok");
	FILE *f = tl_fopen_input(path, &err);
	assert_non_null(f);
	char buf[4] = {0};
	assert_int_equal(fread(buf, 1, 3, f), 2); /* blocking reads again */
	fclose(f);
}

/* Numbers on command lines are decimal: strtod's hex, inf and nan are
 * not numbers to a user typing -e 0x10. */
static void numbers_are_decimal(void **state)
{
	(void)state;
	static const char *yes[] = {"16", "+3", "-2", "1.5", ".5", "5.", "1e3", "2.5E-2", 0};
	static const char *no[] = {"0x10", "0X1p3", "inf", "nan", " 1", "1 ", "", ".", "e5",
				   "1e", "1e+", "--1", "1..2", 0};
	for (int i = 0; yes[i]; i++)
		if (!tl_is_decimal(yes[i]))
			fail_msg("'%s' is decimal", yes[i]);
	for (int i = 0; no[i]; i++)
		if (tl_is_decimal(no[i]))
			fail_msg("'%s' is not decimal", no[i]);
	long l;
	double d;
	assert_int_equal(tl_parse_long("0x10", 0, 100, &l), -1);
	assert_int_equal(tl_parse_long("1.5", 0, 100, &l), -1);
	assert_int_equal(tl_parse_long("16", 0, 100, &l), 0);
	assert_int_equal(l, 16);
	assert_int_equal(tl_parse_double("0x10", 0, 100, &d), -1);
	assert_int_equal(tl_parse_double("inf", 0, 1e308, &d), -1);
	assert_int_equal(tl_parse_double("2.5", 0, 100, &d), 0);
	assert_close(d, 2.5, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(regular_file_replaced_atomically, setup, teardown),
		cmocka_unit_test_setup_teardown(device_targets_refused_or_written_through, setup, teardown),
		cmocka_unit_test_setup_teardown(stdout_is_written_through, setup, teardown),
		cmocka_unit_test_setup_teardown(fifo_output_written_through, setup, teardown),
		cmocka_unit_test_setup_teardown(inputs_are_never_outputs, setup, teardown),
		cmocka_unit_test_setup_teardown(many_inputs_remembered, setup, teardown),
		cmocka_unit_test_setup_teardown(odd_inputs_refused_without_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(numbers_are_decimal, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
