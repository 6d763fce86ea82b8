/* sandbox.c - a child process that may only compute and write to a pipe
 * (see sandbox.h). */
#define _GNU_SOURCE
#include "config.h"

#include "nn/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef TL_HAVE_SECCOMP
#include <seccomp.h>
#endif

/* Sanitizer builds: gcc defines __SANITIZE_ADDRESS__/__SANITIZE_THREAD__,
 * clang answers __has_feature. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TL_SANITIZED 1
#endif
#endif

/* The pipe's write end in the child: a fixed number, so the filter can
 * name it before fn runs. */
#define CHILD_FD 3

struct tl_sandbox {
	pid_t pid;
	int fd;           /* read end */
	int eof;          /* end of output seen */
	int timed_out;    /* the deadline passed: the child was killed */
	struct timespec deadline;
	unsigned wall_s, cpu_s;
	char path[1024], what[64];
};

int tl_sandbox_available(void)
{
#ifdef TL_HAVE_SECCOMP
	return 1;
#else
	return 0;
#endif
}

int tl_sandbox_write(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w, n -= (size_t)w;
	}
	return 0;
}

#ifdef TL_HAVE_SECCOMP
/* Install the filter (see sandbox.h); 0 or -1. */
static int install_filter(void)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!f)
		return -1;
	int rc = 0;
	/* a call this architecture lacks (open on arm64) is skipped */
#define RULE(act, name, ...)                                                         \
	do {                                                                          \
		if (seccomp_syscall_resolve_name(#name) >= 0)                         \
			rc |= seccomp_rule_add(f, act, SCMP_SYS(name), __VA_ARGS__); \
	} while (0)
#define ALLOW(name, ...) RULE(SCMP_ACT_ALLOW, name, __VA_ARGS__)
	/* libhdf5's core driver tries to open the file name even when given
	 * an image, and goes on when that fails: every open fails ENOENT */
	RULE(SCMP_ACT_ERRNO(ENOENT), open, 0);
	RULE(SCMP_ACT_ERRNO(ENOENT), openat, 0);
	ALLOW(write, 1, SCMP_A0(SCMP_CMP_EQ, CHILD_FD));
#ifdef TL_SANITIZED
	/* a sanitizer's report from inside the parser goes to stderr; ASan
	 * asks for the signal stack at every noreturn call (_exit included)
	 * and reads the machine's memory size; LSan stays off: the child ends
	 * with _exit, and its leak check would need ptrace */
	ALLOW(write, 1, SCMP_A0(SCMP_CMP_EQ, 2));
	ALLOW(sigaltstack, 0);
	ALLOW(sysinfo, 0);
	ALLOW(sched_yield, 0);
#endif
	/* memory: anonymous (fd -1 as an int) and never executable */
	ALLOW(mmap, 2, SCMP_A4(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0xffffffffu),
	      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ALLOW(mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ALLOW(munmap, 0);
	ALLOW(mremap, 0);
	ALLOW(brk, 0);
	ALLOW(madvise, 0);
	ALLOW(futex, 0);
	ALLOW(clock_gettime, 0);
	ALLOW(gettimeofday, 0);
	/* abort() and signal delivery: masks, returns, a kill of itself only */
	ALLOW(rt_sigprocmask, 0);
	ALLOW(rt_sigreturn, 0);
	ALLOW(getpid, 0);
	ALLOW(gettid, 0);
	ALLOW(tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	ALLOW(exit_group, 0);
	ALLOW(exit, 0);
#undef ALLOW
#undef RULE
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	return rc == 0 ? 0 : -1;
}
#endif

/* VmSize of this process in bytes (from /proc/self/statm), or 0. */
static uint64_t vm_size(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long pages = strtoull(buf, NULL, 10);
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The child: limits, descriptors, prepare, filter, fn; never returns. */
static void child(int wfd, const tl_sandbox_limits *lim, void (*prepare)(void *),
		  int (*fn)(int, void *), void *ctx)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGXCPU, SIGSEGV, SIGBUS,
				   SIGABRT, SIGFPE, SIGILL};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	if (wfd != CHILD_FD) {
		if (dup2(wfd, CHILD_FD) != CHILD_FD)
			_exit(120);
		close(wfd);
	}
	/* everything but stderr and the pipe: 0, 1, then 4 and up */
	close(0);
	close(1);
	if (close_range(CHILD_FD + 1, ~0u, 0) != 0)
		for (int fd = CHILD_FD + 1; fd < 4096; fd++)
			close(fd);
	struct rlimit r = {0, 0};
	setrlimit(RLIMIT_CORE, &r);
	setrlimit(RLIMIT_FSIZE, &r);
	if (lim->cpu_s) {
		r.rlim_cur = lim->cpu_s, r.rlim_max = lim->cpu_s + 1;
		setrlimit(RLIMIT_CPU, &r);
	}
#ifndef TL_SANITIZED
	uint64_t base = vm_size();
	if (lim->mem_bytes && base) {
		r.rlim_cur = r.rlim_max = base + lim->mem_bytes;
		setrlimit(RLIMIT_AS, &r);
	}
#else
	(void)vm_size;
#endif
	if (prepare)
		prepare(ctx);
#ifdef TL_HAVE_SECCOMP
	if (install_filter() != 0)
		_exit(121);
#else
	_exit(122); /* never run a parser unsandboxed */
#endif
	_exit(fn(CHILD_FD, ctx) & 0x7f);
}

tl_status tl_sandbox_start(tl_sandbox **out, const char *path, const char *what,
			   const tl_sandbox_limits *lim, void (*prepare)(void *ctx),
			   int (*fn)(int fd, void *ctx), void *ctx, tl_err *err)
{
	*out = NULL;
	tl_sandbox *sb = calloc(1, sizeof *sb);
	if (!sb)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	snprintf(sb->path, sizeof sb->path, "%s", path);
	snprintf(sb->what, sizeof sb->what, "%s", what);
	sb->wall_s = lim->wall_s ? lim->wall_s : 600;
	sb->cpu_s = lim->cpu_s;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(sb);
		return tl_seterr(err, TL_EIO, "%s: cannot start %s: pipe: %s", path, what,
				 strerror(errno));
	}
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups for large tensors */
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(sb);
		return tl_seterr(err, TL_EIO, "%s: cannot start %s: fork: %s", path, what,
				 strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		child(p[1], lim, prepare, fn, ctx);
	}
	close(p[1]);
	sb->pid = pid;
	sb->fd = p[0];
	clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
	sb->deadline.tv_sec += sb->wall_s;
	*out = sb;
	return TL_OK;
}

/* Milliseconds left before sb's deadline (0 when past). */
static int ms_left(const tl_sandbox *sb)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(sb->deadline.tv_sec - now.tv_sec) * 1000 +
		     (sb->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms <= 0 ? 0 : ms > 1000000000 ? 1000000000 : (int)ms;
}

tl_status tl_sandbox_read(tl_sandbox *sb, void *buf, size_t n, tl_err *err)
{
	char *c = buf;
	while (n) {
		if (sb->eof)
			return tl_seterr(err, TL_EFORMAT, "%s: %s's output ended early", sb->path,
					 sb->what);
		struct pollfd pf = {sb->fd, POLLIN, 0};
		int left = ms_left(sb);
		int r = left ? poll(&pf, 1, left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return tl_seterr(err, TL_EIO, "%s: reading %s's output: %s", sb->path,
					 sb->what, strerror(errno));
		if (r == 0) {
			kill(sb->pid, SIGKILL);
			sb->timed_out = 1;
			return tl_seterr(err, TL_EIO, "%s: %s took longer than %u s and was stopped",
					 sb->path, sb->what, sb->wall_s);
		}
		ssize_t k = read(sb->fd, c, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return tl_seterr(err, TL_EIO, "%s: reading %s's output: %s", sb->path,
					 sb->what, strerror(errno));
		if (k == 0) {
			sb->eof = 1;
			continue;
		}
		c += k, n -= (size_t)k;
	}
	return TL_OK;
}

/* What signal sig means for a sandboxed child, in words. */
static const char *sig_words(int sig, unsigned cpu_s, char *buf, size_t n)
{
	switch (sig) {
	case SIGSYS: return "SIGSYS: it tried a system call outside its sandbox";
	case SIGXCPU:
		snprintf(buf, n, "SIGXCPU: it used more than %u s of CPU", cpu_s);
		return buf;
	case SIGKILL: return "SIGKILL: killed";
	case SIGSEGV: return "SIGSEGV: it crashed on a bad memory access";
	case SIGBUS: return "SIGBUS: it crashed on a bad memory access";
	case SIGABRT: return "SIGABRT: it aborted, out of memory or on a failed check";
	case SIGFPE: return "SIGFPE: it crashed on an arithmetic error";
	case SIGILL: return "SIGILL: it crashed on an illegal instruction";
	case SIGINT: return "SIGINT: interrupted";
	case SIGTERM: return "SIGTERM: terminated";
	default: snprintf(buf, n, "signal %d (%s)", sig, strsignal(sig)); return buf;
	}
}

tl_status tl_sandbox_finish(tl_sandbox *sb, tl_status st, tl_err *err)
{
	if (!sb)
		return st;
	int status = 0;
	pid_t w;
	if (st == TL_OK) {
		/* all output accepted: there must be no more, then exit 0 */
		char extra;
		tl_err e2;
		if (tl_sandbox_read(sb, &extra, 1, &e2) == TL_OK)
			st = tl_seterr(err, TL_EFORMAT,
				       "%s: %s wrote more than its results (expected the end of its output)",
				       sb->path, sb->what);
		else if (sb->timed_out)
			st = tl_seterr(err, TL_EIO, "%s", e2.msg);
	} else if (!sb->timed_out) {
		/* a child that stopped on its own (its output ended) is given a
		 * moment to be reaped, so that its signal can be named */
		for (int i = 0; i < 100 && sb->eof; i++) {
			w = waitpid(sb->pid, &status, WNOHANG);
			if (w == sb->pid)
				goto reaped;
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (st != TL_OK)
		kill(sb->pid, SIGKILL);
	do
		w = waitpid(sb->pid, &status, 0);
	while (w < 0 && errno == EINTR);
	if (w != sb->pid) {
		if (st == TL_OK)
			st = tl_seterr(err, TL_EIO, "%s: %s: cannot wait for it: %s", sb->path,
				       sb->what, strerror(errno));
		goto out;
	}
reaped:
	if (WIFSIGNALED(status) && !(sb->timed_out && WTERMSIG(status) == SIGKILL) &&
	    !(st != TL_OK && !sb->eof && WTERMSIG(status) == SIGKILL)) {
		char b[96];
		st = tl_seterr(err, TL_EFORMAT, "%s: %s was stopped (%s)", sb->path, sb->what,
			       sig_words(WTERMSIG(status), sb->cpu_s, b, sizeof b));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		   (st == TL_OK || (sb->eof && WEXITSTATUS(status) >= 120))) {
		int x = WEXITSTATUS(status);
		st = tl_seterr(err, TL_EFORMAT, "%s: %s failed (exit status %d%s)", sb->path,
			       sb->what, x,
			       x == 122   ? ": this build has no libseccomp to sandbox it"
			       : x == 121 ? ": the system call filter could not be installed"
			       : x == 120 ? ": its pipe could not be set up"
					  : "");
	}
out:
	close(sb->fd);
	free(sb);
	return st;
}
