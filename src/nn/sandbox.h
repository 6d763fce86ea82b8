/* sandbox.h - run a parser of untrusted bytes in a child process that can
 * do nothing but compute and write its results to one pipe.
 *
 * The parent forks; the child stays in the caller's process group (Ctrl-C
 * reaches it, with the default action), dies with the parent
 * (PR_SET_PDEATHSIG), closes every descriptor but the pipe (and stderr),
 * sets rlimits (address space: what it inherited plus mem_bytes; CPU
 * seconds; no core, no file growth), runs `prepare` (library set-up that
 * may still open files), then installs a seccomp-bpf filter (libseccomp)
 * that kills the process on any system call but: write to the pipe,
 * anonymous non-executable mmap, munmap, mremap, brk, madvise, mprotect
 * without PROT_EXEC, futex, clock_gettime, signal returns and masks,
 * getpid/gettid, tgkill of itself (abort) and exit; open and openat fail
 * with ENOENT (libhdf5's core driver tries to open the file name it is
 * given even with a memory image, and carries on).  No open, no read, no
 * socket, no fork, no exec: the child cannot reach a file, a FIFO or the
 * network even if the parser is exploited.  Then `fn` runs and its return
 * value is the child's exit status.
 *
 * The parent reads the child's output with a wall-clock deadline and
 * trusts nothing in it: the caller validates every byte.  How the child
 * ended is turned into a message naming the file: a signal (SIGSYS: a
 * system call outside the sandbox, SIGXCPU: the CPU limit, SIGSEGV ...),
 * the deadline, or output that ended early.
 *
 * Sanitizer builds (ASan/UBSan, TSan): the address-space limit is not set
 * (the sanitizers reserve terabytes of shadow memory up front), and the
 * filter also lets the child write to stderr so that a sanitizer report
 * from inside the parser can be read; everything else is the same. */
#ifndef TL_SANDBOX_H
#define TL_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tl.h"

typedef struct {
	uint64_t mem_bytes; /* address space beyond what the child inherits; 0: no limit */
	unsigned cpu_s;     /* CPU seconds (SIGXCPU, then SIGKILL a second later) */
	unsigned wall_s;    /* wall-clock seconds for the whole run (then SIGKILL) */
} tl_sandbox_limits;

typedef struct tl_sandbox tl_sandbox;

/* Start fn(fd, ctx) in a sandboxed child (see above) for the file `path`,
 * whose worker is called `what` in messages ("the HDF5 reader").
 * prepare(ctx) (may be NULL) runs in the child before the filter.  fn
 * writes its results to fd (tl_sandbox_write) and returns the child's
 * exit status.  TL_EIO when the pipe or the fork fails. */
tl_status tl_sandbox_start(tl_sandbox **out, const char *path, const char *what,
			   const tl_sandbox_limits *lim, void (*prepare)(void *ctx),
			   int (*fn)(int fd, void *ctx), void *ctx, tl_err *err);

/* Child side: write n bytes to fd; 0, or -1 when the parent is gone. */
int tl_sandbox_write(int fd, const void *p, size_t n);

/* Parent side: read exactly n bytes of the child's output.  TL_EFORMAT
 * "PATH: WHAT's output ended early" at end of output, TL_EIO "PATH: WHAT
 * took longer than N s" past the deadline (the child is then killed). */
tl_status tl_sandbox_read(tl_sandbox *sb, void *buf, size_t n, tl_err *err);

/* End the run and free sb.  st is the caller's verdict so far: TL_OK
 * means all output was read and accepted, and the child must then reach
 * end of output and exit 0 (anything else is an error).  Otherwise a
 * child still running is killed; a child that died of a signal replaces
 * the caller's message with "PATH: WHAT was stopped (SIGSYS: it tried a
 * system call outside its sandbox)" and the like.  Returns the final
 * status with err set when not TL_OK. */
tl_status tl_sandbox_finish(tl_sandbox *sb, tl_status st, tl_err *err);

/* Whether this build can sandbox (libseccomp found by configure). */
int tl_sandbox_available(void);

#endif
