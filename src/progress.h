/* progress.h - a one-line progress bar on stderr, drawn only when stderr
 * is a terminal (and not asked to be quiet), redrawn at most 10x/second. */
#ifndef TL_PROGRESS_H
#define TL_PROGRESS_H

#include <stdint.h>

typedef struct {
	int enabled;
	const char *prog; /* "tlpack" */
	double t0, last;
} tl_progress;

/* Monotonic seconds. */
double tl_now(void);

void tl_progress_init(tl_progress *p, const char *prog, int quiet);

/* done/total of the main quantity (e.g. source bytes) and a count line
 * like "12000 images". */
void tl_progress_update(tl_progress *p, uint64_t done, uint64_t total, uint64_t count,
			const char *unit);

/* Clear the line (call before printing anything else, and at the end). */
void tl_progress_end(tl_progress *p);

#endif
