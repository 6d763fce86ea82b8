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
#include <cmocka.h>

#define assert_close(got, want, atol, rtol)                                          \
	do {                                                                         \
		double g_ = (got), w_ = (want);                                      \
		if (!(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_)))                  \
			fail_msg("%s = %.9g, expected %.9g (atol %g, rtol %g)", #got, g_, \
				 w_, (double)(atol), (double)(rtol));                \
	} while (0)

#endif
