/* cli.c - shared pieces of the program mains (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_is_decimal(const char *s)
{
	const char *p = s + (*s == '+' || *s == '-');
	size_t whole = strspn(p, "0123456789");
	p += whole;
	size_t frac = 0;
	if (*p == '.') {
		frac = strspn(p + 1, "0123456789");
		p += 1 + frac;
	}
	if (whole + frac == 0)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		p += *p == '+' || *p == '-';
		size_t ex = strspn(p, "0123456789");
		if (ex == 0)
			return 0;
		p += ex;
	}
	return *p == 0;
}

int tl_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	if (!tl_is_decimal(s) || strpbrk(s, ".eE"))
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int tl_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	if (!tl_is_decimal(s)) /* strtod also takes 0x10, inf and nan */
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

int tl_enum_parse(const tl_enum *t, const char *s, int *out)
{
	for (; t->name; t++)
		if (strcmp(s, t->name) == 0)
			return *out = t->value, 0;
	return -1;
}

const char *tl_enum_name(const tl_enum *t, int v)
{
	for (; t->name; t++)
		if (t->value == v)
			return t->name;
	return "?";
}

int tl_cli_bad(const char *prog, const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s, got '%s'\nTry '%s --help'.\n", prog, what, arg, prog);
	return 2;
}

int tl_cli_exit(const char *prog, tl_status st, const tl_err *err,
		const volatile sig_atomic_t *cancelled)
{
	if (st == TL_OK)
		return 0;
	fprintf(stderr, "%s: %s\n", prog, err->msg);
	if (st == TL_EINTR)
		return 128 + (cancelled && *cancelled ? (int)*cancelled : SIGINT);
	return st == TL_EUSAGE ? 2 : 1;
}

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

volatile sig_atomic_t *tl_cli_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	return &caught;
}
