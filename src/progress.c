/* progress.c - terminal progress bar (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double tl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tl_progress_init(tl_progress *p, const char *prog, int quiet)
{
	p->enabled = !quiet && isatty(2);
	p->prog = prog;
	p->t0 = tl_now();
	p->last = 0;
}

void tl_progress_update(tl_progress *p, uint64_t done, uint64_t total, uint64_t count,
			const char *unit)
{
	if (!p->enabled)
		return;
	double t = tl_now();
	if (t - p->last < 0.1 && done < total)
		return;
	p->last = t;
	double frac = total ? (double)done / total : 0;
	if (frac > 1)
		frac = 1;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	double el = t - p->t0;
	double eta = frac > 0.01 ? el / frac - el : 0;
	fprintf(stderr, "\r%s: [%s] %3.0f%% %llu %s %.1f %s/s ETA %.0fs   ", p->prog, bar,
		frac * 100, (unsigned long long)count, unit, el > 0 ? count / el : 0, unit, eta);
	fflush(stderr);
}

void tl_progress_end(tl_progress *p)
{
	if (!p->enabled)
		return;
	fprintf(stderr, "\r%*s\r", 100, "");
	fflush(stderr);
}
