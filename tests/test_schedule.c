/* test_schedule.c - learning-rate schedules at known epochs, worked out
 * by hand, and the plateau rule over a made-up validation history. */
#include "tl_test.h"

#include "train/schedule.h"

static void constant_is_base(void **state)
{
	(void)state;
	for (int e = 0; e < 12; e++)
		assert_close(tl_schedule_lr(TL_SCHED_CONSTANT, 0.01f, e, 10, 3, 0.5f, 7.0f), 0.01, 0, 1e-7);
}

static void step_decays_every_step_size(void **state)
{
	(void)state;
	/* base 0.1, gamma 0.5, step 3: 0.1 for e 0..2, 0.05 for 3..5, 0.025 at 6 */
	const double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
	for (int e = 0; e < 10; e++)
		assert_close(tl_schedule_lr(TL_SCHED_STEP, 0.1f, e, 10, 3, 0.5f, 0), want[e], 0, 1e-6);
	/* a step size below 1 counts as 1: decay every epoch */
	assert_close(tl_schedule_lr(TL_SCHED_STEP, 1.0f, 4, 10, 0, 0.5f, 0), 0.0625, 0, 1e-6);
}

static void cosine_from_base_to_near_zero(void **state)
{
	(void)state;
	/* n = 4: base * (1 + cos(pi e / 4)) / 2 = 1, 0.853553, 0.5, 0.146447 */
	const double want[] = {1.0, 0.8535533906, 0.5, 0.1464466094};
	for (int e = 0; e < 4; e++)
		assert_close(tl_schedule_lr(TL_SCHED_COSINE, 2e-3f, e, 4, 5, 0.1f, 0), 2e-3 * want[e], 0, 1e-6);
	/* the reference run: 2 epochs from 1e-3 give 1e-3 and 5e-4 */
	assert_close(tl_schedule_lr(TL_SCHED_COSINE, 1e-3f, 1, 2, 5, 0.1f, 0), 5e-4, 0, 1e-6);
	/* a stage of no epochs does not divide by zero */
	assert_close(tl_schedule_lr(TL_SCHED_COSINE, 1.0f, 0, 0, 5, 0.1f, 0), 1.0, 0, 1e-7);
}

/* onecycle: cosine from base/25 up to base over the first 30%, then down
 * to base/25e4; worked out: t = 0.15 is halfway up (base * 0.52), t = 0.65
 * halfway down ((base + base/25e4) / 2). */
static void onecycle_warms_up_then_anneals(void **state)
{
	(void)state;
	const float b = 0.01f;
	assert_close(tl_onecycle_lr(b, 0), 0.0004, 0, 1e-6);
	assert_close(tl_onecycle_lr(b, 0.15), 0.01 * 0.52, 1e-9, 1e-6);
	assert_close(tl_onecycle_lr(b, 0.3), 0.01, 1e-6, 0);
	assert_close(tl_onecycle_lr(b, 0.65), (0.01 + 0.01 / 25e4) / 2, 1e-6, 0);
	assert_close(tl_onecycle_lr(b, 1), 0.01 / 25e4, 1e-5, 0);
	assert_close(tl_onecycle_lr(b, 7), 0.01 / 25e4, 1e-5, 0); /* clamped */
	assert_close(tl_onecycle_lr(b, -1), 0.0004, 0, 1e-6);
	/* monotone up to the peak, then down */
	double prev = 0;
	for (int i = 0; i <= 100; i++) {
		double v = tl_onecycle_lr(b, i / 100.0);
		if (i <= 30)
			assert_true(v >= prev);
		else
			assert_true(v <= prev);
		prev = v;
	}
	/* the epoch form: t = e / n */
	assert_close(tl_schedule_lr(TL_SCHED_ONECYCLE, b, 1, 2, 5, 0.1f, 0), tl_onecycle_lr(b, 0.5), 0, 1e-6);
	assert_close(tl_schedule_lr(TL_SCHED_ONECYCLE, b, 0, 0, 5, 0.1f, 0), 0.0004, 0, 1e-6);
}

static void plateau_keeps_the_current_rate(void **state)
{
	(void)state;
	assert_close(tl_schedule_lr(TL_SCHED_PLATEAU, 0.1f, 5, 10, 3, 0.5f, 0.0125f), 0.0125, 0, 1e-7);
}

static void plateau_lowers_after_patience_bad_epochs(void **state)
{
	(void)state;
	/* val_accuracy (maximize), patience 2: epochs 3 and 4 are no better
	 * than 0.5 -> decay after epoch 4; epoch 5 improves; 6, 7 -> decay */
	const double acc[] = {0.3, 0.5, 0.5, 0.45, 0.6, 0.6, 0.59, 0.61};
	const int decay[] = {0, 0, 0, 1, 0, 0, 1, 0};
	const int bad_after[] = {0, 0, 1, 0, 0, 1, 0, 0};
	double best = 0;
	int bad = 0;
	float lr = 0.1f;
	for (int i = 0; i < 8; i++) {
		int d = tl_plateau_update(&best, &bad, acc[i], i == 0, 0, 2);
		if (d != decay[i] || bad != bad_after[i])
			fail_msg("epoch %d: decay %d bad %d, expected %d and %d", i + 1, d, bad, decay[i],
				 bad_after[i]);
		if (d)
			lr *= 0.5f;
	}
	assert_close(lr, 0.025, 0, 1e-7);
	assert_close(best, 0.61, 0, 1e-12);
	/* val_loss (minimize), patience 1: every epoch that is not lower decays */
	best = 0, bad = 0;
	assert_int_equal(tl_plateau_update(&best, &bad, 2.0, 1, 1, 1), 0); /* first epoch sets best */
	assert_int_equal(tl_plateau_update(&best, &bad, 1.5, 0, 1, 1), 0);
	assert_int_equal(tl_plateau_update(&best, &bad, 1.5, 0, 1, 1), 1);
	assert_int_equal(tl_plateau_update(&best, &bad, 1.7, 0, 1, 1), 1);
	assert_close(best, 1.5, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(constant_is_base),
		cmocka_unit_test(step_decays_every_step_size),
		cmocka_unit_test(cosine_from_base_to_near_zero),
		cmocka_unit_test(plateau_keeps_the_current_rate),
		cmocka_unit_test(onecycle_warms_up_then_anneals),
		cmocka_unit_test(plateau_lowers_after_patience_bad_epochs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
