/* tl_test.h - what every cmocka test file includes, plus a float
 * comparison with absolute + relative tolerance that says what differed. */
#ifndef TL_TEST_H
#define TL_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#define assert_close(got, want, atol, rtol)                                          \
	do {                                                                         \
		double g_ = (got), w_ = (want);                                      \
		if (!(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_)))                  \
			fail_msg("%s = %.9g, expected %.9g (atol %g, rtol %g)", #got, g_, \
				 w_, (double)(atol), (double)(rtol));                \
	} while (0)

/* A fresh directory /tmp/tl_test_NAME.XXXXXX (its path in dir, n bytes);
 * 0, or -1 when it cannot be made (a cmocka setup's result). */
static inline int tl_test_mkdir(char *dir, size_t n, const char *name)
{
	snprintf(dir, n, "/tmp/tl_test_%s.XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

/* Remove dir and all in it; 0, or -1 when rm fails (a cmocka teardown's
 * result). */
static inline int tl_test_rmdir(const char *dir)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
