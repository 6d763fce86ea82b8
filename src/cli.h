/* cli.h - what the program mains share: strict number parsing, the usage
 * error line, and signal set-up. */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <signal.h>

/* Parse all of s as an integer / a number in [lo, hi]; 0 on success. */
int tl_parse_long(const char *s, long lo, long hi, long *out);
int tl_parse_double(const char *s, double lo, double hi, double *out);

/* Print "PROG: WHAT, got 'ARG'" and the --help hint; returns 2 (usage). */
int tl_cli_bad(const char *prog, const char *what, const char *arg);

/* SIGINT/SIGTERM set the returned flag to the signal number (work stops
 * cleanly at the next check); SIGXFSZ and SIGPIPE are ignored so a file
 * size limit or a closed pipe becomes a reported write error. */
volatile sig_atomic_t *tl_cli_catch_signals(void);

#endif
