/* cli.h - what the program mains share: strict number parsing, name <->
 * value tables for every enumerated setting, the usage error line, the exit
 * code of a status, and signal set-up. */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <signal.h>

#include "tl.h"

/* 1 if s is a plain decimal number: [+-]digits[.digits][e[+-]digits],
 * with a digit before or after the point; no hex (0x10), inf, nan or
 * spaces, which strtod would take. */
int tl_is_decimal(const char *s);

/* Parse all of s as a decimal integer / number in [lo, hi]; 0 on success. */

int tl_parse_long(const char *s, long lo, long hi, long *out);
int tl_parse_double(const char *s, double lo, double hi, double *out);

/* One table per enumerated setting: {name, value} pairs ending with a
 * {NULL, 0} entry.  tl_enum_parse stores the value named exactly s and
 * returns 0, or returns -1 and leaves *out alone.  tl_enum_name returns the
 * name of value v, or "?" when the table has none. */
typedef struct {
	const char *name;
	int value;
} tl_enum;
int tl_enum_parse(const tl_enum *t, const char *s, int *out);
const char *tl_enum_name(const tl_enum *t, int v);

/* Print "PROG: WHAT, got 'ARG'" and the --help hint; returns 2 (usage). */
int tl_cli_bad(const char *prog, const char *what, const char *arg);

/* The exit code of a library status: 0 for TL_OK, 2 for TL_EUSAGE,
 * 128 + the caught signal (SIGINT when none was caught) for TL_EINTR,
 * 1 for every other failure.  With st != TL_OK, first prints
 * "PROG: MESSAGE" to stderr. */
int tl_cli_exit(const char *prog, tl_status st, const tl_err *err,
		const volatile sig_atomic_t *cancelled);

/* SIGINT/SIGTERM set the returned flag to the signal number (work stops
 * cleanly at the next check); SIGXFSZ and SIGPIPE are ignored so a file
 * size limit or a closed pipe becomes a reported write error. */
volatile sig_atomic_t *tl_cli_catch_signals(void);

#endif
