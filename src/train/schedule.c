/* schedule.c - learning-rate schedules (see schedule.h). */
#define _GNU_SOURCE
#include "train/schedule.h"

#include <math.h>

float tl_schedule_lr(tl_schedule s, float base, int e, int n, int step_size, float gamma, float cur)
{
	switch (s) {
	case TL_SCHED_STEP:
		return base * powf(gamma, (float)(e / (step_size > 0 ? step_size : 1)));
	case TL_SCHED_COSINE:
		return (float)(base * 0.5 * (1 + cos(M_PI * e / (n > 0 ? n : 1))));
	case TL_SCHED_PLATEAU:
		return cur;
	case TL_SCHED_ONECYCLE:
		return tl_onecycle_lr(base, (double)e / (n > 0 ? n : 1));
	case TL_SCHED_CONSTANT:
		break;
	}
	return base;
}

float tl_onecycle_lr(float base, double t)
{
	double lo = base / 25.0, end = lo / 1e4, pct = TL_ONECYCLE_PCT;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	if (t <= pct) /* cosine from lo up to base */
		return (float)(base + (lo - base) * 0.5 * (1 + cos(M_PI * t / pct)));
	return (float)(end + (base - end) * 0.5 * (1 + cos(M_PI * (t - pct) / (1 - pct))));
}

int tl_plateau_update(double *best, int *bad, double metric, int first, int minimize, int patience)
{
	if (first || (minimize ? metric < *best : metric > *best)) {
		*best = metric;
		*bad = 0;
		return 0;
	}
	if (++*bad >= patience) {
		*bad = 0;
		return 1;
	}
	return 0;
}
