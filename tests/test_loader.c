/* test_loader.c - the batch loader and the bounded queue under it.
 * Loader: every record exactly once per epoch; the permutation is the
 * documented seeded Fisher-Yates (so prefetching with many workers hands
 * batches out in permutation order); a seed fixes permutation and
 * augmentation whatever the thread count; starting at batch k gives the
 * tail of a full epoch; a restarted epoch drops stale prefetched batches.
 * Queue: tickets come out in order though published out of order, a
 * producer cannot run more than `depth` ahead, limits end an epoch, close
 * wakes everyone, and 4 producers x 20000 tickets arrive intact. */
#define _GNU_SOURCE
#include "tl_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/loader.h"
#include "data/shard.h"
#include "pool.h"
#include "rng.h"

#define N 37     /* records */
#define H 4
#define W 6
#define ROW (3 * H * W)
#define BATCH 5  /* 8 batches, the last of 2 */

static char dir[256], path[300];
static tl_shard *sh;
static uint64_t records[N];
static int32_t labels[N];

/* A u8 shard whose record r has pixels (r * 7 + i) mod 251, so every
 * record and every position in it differs. */
static int setup(void **state)
{
	(void)state;
	if (tl_test_mkdir(dir, sizeof dir, "loader"))
		return -1;
	snprintf(path, sizeof path, "%s/l.tls", dir);
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = H, proto.width = W;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_TORCH, &proto.norm);
	proto.n_label_fields = 1;
	proto.chunk_records = 8;
	tl_shard_writer *w;
	tl_err err;
	if (tl_shard_writer_open(&w, path, &proto, &err) != TL_OK ||
	    tl_shard_writer_segment(w, "all", "train", 1, &err) != TL_OK)
		return -1;
	uint32_t rb = tl_shard_writer_record_bytes(w);
	uint8_t *rec = calloc(N, rb);
	uint16_t lab[N];
	for (int r = 0; r < N; r++) {
		for (int i = 0; i < ROW; i++)
			rec[(size_t)r * rb + i] = (uint8_t)((r * 7 + i) % 251);
		lab[r] = (uint16_t)(r % 10);
	}
	tl_status st = tl_shard_writer_append(w, rec, lab, N, &err);
	free(rec);
	if (st != TL_OK)
		return -1;
	static const char *const names[] = {"c0", "c1", "c2", "c3", "c4",
					    "c5", "c6", "c7", "c8", "c9"};
	if (tl_shard_writer_set_names(w, names, 10, NULL, 0, &err) != TL_OK)
		return -1;
	strcpy(tl_shard_writer_info(w)->dataset, "test");
	if (tl_shard_writer_finish(w, &err) != TL_OK || tl_shard_open(&sh, path, &err) != TL_OK)
		return -1;
	for (int i = 0; i < N; i++) {
		records[i] = (uint64_t)i;
		labels[i] = i; /* the label a batch carries names the item */
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tl_shard_close(sh);
	return tl_test_rmdir(dir);
}

static tl_loader_cfg cfg(int shuffle, int aug, uint64_t seed, int workers, int depth)
{
	tl_loader_cfg c;
	memset(&c, 0, sizeof c);
	c.shard = sh;
	c.records = records;
	c.labels = labels;
	c.n = N;
	c.row_floats = ROW;
	c.batch = BATCH;
	c.shuffle = shuffle;
	c.flip = aug;
	c.crop_pad = aug ? 2 : 0;
	c.seed = seed;
	c.workers = workers;
	c.depth = depth;
	return c;
}

/* One epoch from batch `first`: items in hand-out order, their pixels, and
 * the batch sizes; returns the number of batches. */
typedef struct {
	int32_t y[N];
	float x[N][ROW];
	int sizes[N];
	int nb, ny;
} epoch_t;

static void run_epoch(tl_loader *l, int epoch, uint64_t first, epoch_t *e)
{
	memset(e, 0, sizeof *e);
	tl_loader_start(l, epoch, first);
	for (;;) {
		const float *x;
		const int32_t *y;
		int n;
		tl_err err;
		if (tl_loader_next(l, &x, &y, &n, &err) != TL_OK)
			fail_msg("%s", err.msg);
		if (n == 0)
			break;
		assert_true(e->ny + n <= N);
		memcpy(e->y + e->ny, y, (size_t)n * sizeof *y);
		memcpy(e->x[e->ny], x, (size_t)n * ROW * sizeof *x);
		e->ny += n;
		e->sizes[e->nb++] = n;
	}
}

static tl_loader *make(tl_loader_cfg c)
{
	tl_loader *l;
	tl_err err;
	if (tl_loader_new(&l, &c, &err) != TL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(tl_loader_batches(l), (N + BATCH - 1) / BATCH);
	return l;
}

/* The shuffle loader.h documents: Fisher-Yates from stream (seed, 0x5e1, epoch, 0). */
static void expected_perm(uint64_t seed, int epoch, int32_t perm[N])
{
	for (int i = 0; i < N; i++)
		perm[i] = i;
	uint64_t r = tl_rng_key(seed, 0x5e1, (uint64_t)epoch, 0);
	for (uint64_t i = N; i > 1; i--) {
		uint64_t j = tl_rng_below(&r, i);
		int32_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

static void every_record_once_per_epoch(void **state)
{
	(void)state;
	tl_loader *l = make(cfg(1, 1, 7, 3, 4));
	epoch_t *e = malloc(sizeof *e);
	int32_t first_order[N];
	for (int ep = 0; ep < 3; ep++) {
		run_epoch(l, ep, 0, e);
		assert_int_equal(e->ny, N);
		assert_int_equal(e->nb, 8);
		for (int b = 0; b < 7; b++)
			assert_int_equal(e->sizes[b], BATCH);
		assert_int_equal(e->sizes[7], 2);
		int seen[N] = {0};
		for (int i = 0; i < N; i++) {
			assert_true(e->y[i] >= 0 && e->y[i] < N);
			seen[e->y[i]]++;
		}
		for (int i = 0; i < N; i++)
			assert_int_equal(seen[i], 1);
		if (ep == 0)
			memcpy(first_order, e->y, sizeof first_order);
		else
			assert_true(memcmp(first_order, e->y, sizeof first_order) != 0);
	}
	free(e);
	tl_loader_free(l);
}

/* With 4 workers and 6 batches in flight, batches are finished out of
 * order; they must still come out as the permutation says. */
static void prefetch_order_is_the_permutation(void **state)
{
	(void)state;
	epoch_t *e = malloc(sizeof *e);
	int32_t want[N];
	tl_loader *l = make(cfg(1, 0, 12345, 4, 6));
	for (int ep = 0; ep < 4; ep++) {
		run_epoch(l, ep, 0, e);
		expected_perm(12345, ep, want);
		assert_memory_equal(e->y, want, sizeof want);
	}
	tl_loader_free(l);
	l = make(cfg(0, 0, 12345, 4, 6)); /* no shuffle: file order */
	run_epoch(l, 0, 0, e);
	for (int i = 0; i < N; i++)
		assert_int_equal(e->y[i], i);
	/* unaugmented pixels are the record's own */
	float want_x[ROW];
	tl_err err;
	for (int i = 0; i < N; i++) {
		assert_int_equal(tl_shard_load_f32(sh, (uint64_t)i, want_x, &err), TL_OK);
		assert_memory_equal(e->x[i], want_x, sizeof want_x);
	}
	tl_loader_free(l);
	free(e);
}

/* The same seed gives the same batches, pixels included, whatever the
 * number of workers and the prefetch depth; another seed differs. */
static void seed_fixes_permutation_and_augmentation(void **state)
{
	(void)state;
	epoch_t *a = malloc(sizeof *a), *b = malloc(sizeof *b), *plain = malloc(sizeof *plain);
	tl_loader *l1 = make(cfg(1, 1, 99, 1, 2)), *l2 = make(cfg(1, 1, 99, 3, 5));
	tl_loader *l3 = make(cfg(1, 1, 100, 2, 3)), *l4 = make(cfg(1, 0, 99, 2, 3));
	for (int ep = 0; ep < 2; ep++) {
		run_epoch(l1, ep, 0, a);
		run_epoch(l2, ep, 0, b);
		assert_memory_equal(a->y, b->y, sizeof a->y);
		assert_memory_equal(a->x, b->x, sizeof a->x);
		run_epoch(l3, ep, 0, b);
		assert_true(memcmp(a->y, b->y, sizeof a->y) != 0);
		/* augmentation did something: same order without it, other pixels */
		run_epoch(l4, ep, 0, plain);
		assert_memory_equal(a->y, plain->y, sizeof a->y);
		int changed = 0;
		for (int i = 0; i < N; i++)
			changed += memcmp(a->x[i], plain->x[i], sizeof a->x[i]) != 0;
		assert_true(changed > N / 2);
	}
	tl_loader_free(l1), tl_loader_free(l2), tl_loader_free(l3), tl_loader_free(l4);
	free(a), free(b), free(plain);
}

/* --crop on its own: each item is its image shifted by (dy, dx), drawn
 * from stream (seed, 0xa06, epoch, position) in -pad..pad (dy first), with
 * zeros where the shift leaves the image; position = item without shuffle. */
static void crop_shifts_by_the_seeded_offset(void **state)
{
	(void)state;
	epoch_t *aug = malloc(sizeof *aug), *plain = malloc(sizeof *plain);
	tl_loader_cfg c = cfg(0, 0, 7, 2, 3);
	tl_loader *l0 = make(c);
	c.crop_pad = 2;
	tl_loader *l1 = make(c);
	int shifts[5][5] = {{0}};
	for (int ep = 0; ep < 2; ep++) {
		run_epoch(l0, ep, 0, plain);
		run_epoch(l1, ep, 0, aug);
		for (int i = 0; i < N; i++) {
			assert_int_equal(aug->y[i], i);
			uint64_t r = tl_rng_key(7, 0xa06, (uint64_t)ep, (uint64_t)i);
			int dy = (int)tl_rng_below(&r, 5) - 2, dx = (int)tl_rng_below(&r, 5) - 2;
			shifts[dy + 2][dx + 2]++;
			for (int ch = 0; ch < 3; ch++)
				for (int y = 0; y < H; y++)
					for (int x = 0; x < W; x++) {
						int sy = y + dy, sx = x + dx;
						float want = sy >= 0 && sy < H && sx >= 0 && sx < W
								     ? plain->x[i][(ch * H + sy) * W + sx]
								     : 0.0f;
						assert_true(aug->x[i][(ch * H + y) * W + x] == want);
					}
		}
	}
	int distinct = 0;
	for (int k = 0; k < 25; k++)
		distinct += shifts[k / 5][k % 5] > 0;
	assert_true(distinct >= 10); /* 74 draws over 25 offsets */
	tl_loader_free(l0), tl_loader_free(l1);
	free(aug), free(plain);
}

/* The test-time mirror: column x of each row becomes column w-1-x. */
static void mirror_reverses_each_row(void **state)
{
	(void)state;
	float src[2 * 3 * 2 * 3], dst[2 * 3 * 2 * 3];
	for (int i = 0; i < 36; i++)
		src[i] = (float)i;
	tl_loader_mirror(src, dst, 2, 3, 2, 3);
	for (int r = 0; r < 12; r++)
		for (int x = 0; x < 3; x++)
			assert_true(dst[r * 3 + x] == (float)(r * 3 + 2 - x));
}

/* Starting at batch k (a resumed run) gives exactly batches k.. of the
 * full epoch, augmentation included; k at or past the end gives nothing. */
static void resume_gives_the_tail_of_the_epoch(void **state)
{
	(void)state;
	epoch_t *full = malloc(sizeof *full), *tail = malloc(sizeof *tail);
	tl_loader *l = make(cfg(1, 1, 5, 3, 4));
	run_epoch(l, 2, 0, full);
	const int ks[] = {1, 3, 7, 8, 20};
	for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
		int k = ks[t];
		run_epoch(l, 2, (uint64_t)k, tail);
		int skip = k < 8 ? k * BATCH : N;
		assert_int_equal(tail->ny, N - skip);
		assert_int_equal(tail->nb, k < 8 ? 8 - k : 0);
		if (tail->ny) {
			assert_memory_equal(tail->y, full->y + skip, (size_t)tail->ny * sizeof(int32_t));
			assert_memory_equal(tail->x, full->x[skip], (size_t)tail->ny * ROW * sizeof(float));
		}
	}
	tl_loader_free(l);
	free(full), free(tail);
}

/* Abandoning an epoch after two batches (with more prefetched) and
 * starting another gives that epoch whole, as a fresh loader does. */
static void restart_drops_prefetched_batches(void **state)
{
	(void)state;
	epoch_t *e = malloc(sizeof *e), *fresh = malloc(sizeof *fresh);
	tl_loader *l = make(cfg(1, 1, 3, 3, 6));
	tl_loader_start(l, 0, 0);
	for (int i = 0; i < 2; i++) {
		const float *x;
		const int32_t *y;
		int n;
		tl_err err;
		assert_int_equal(tl_loader_next(l, &x, &y, &n, &err), TL_OK);
		assert_int_equal(n, BATCH);
	}
	usleep(20000); /* let the workers fill the queue with epoch 0 */
	run_epoch(l, 1, 0, e);
	tl_loader *f = make(cfg(1, 1, 3, 1, 2));
	run_epoch(f, 1, 0, fresh);
	assert_int_equal(e->ny, N);
	assert_memory_equal(e->y, fresh->y, sizeof e->y);
	assert_memory_equal(e->x, fresh->x, sizeof e->x);
	tl_loader_free(f);
	tl_loader_free(l);
	free(e), free(fresh);
}

/* With a float cache, items are the cache rows, never augmented. */
static void cache_rows_are_items(void **state)
{
	(void)state;
	float *cache = malloc(sizeof(float) * N * 3);
	for (int i = 0; i < N * 3; i++)
		cache[i] = (float)i * 0.5f;
	tl_loader_cfg c = cfg(1, 1, 8, 2, 3);
	c.shard = NULL;
	c.cache = cache;
	c.row_floats = 3;
	tl_loader *l = make(c);
	tl_loader_start(l, 0, 0);
	int total = 0;
	for (;;) {
		const float *x;
		const int32_t *y;
		int n;
		tl_err err;
		assert_int_equal(tl_loader_next(l, &x, &y, &n, &err), TL_OK);
		if (!n)
			break;
		for (int i = 0; i < n; i++)
			assert_memory_equal(x + 3 * i, cache + 3 * y[i], 3 * sizeof(float));
		total += n;
	}
	assert_int_equal(total, N);
	tl_loader_free(l);
	free(cache);
}

/* ---- tl_queue ---- */

typedef struct {
	tl_queue *q;
	atomic_int got; /* slot + 1 after reserve returned */
	uint64_t ticket;
} reserver;

static void *reserve_one(void *arg)
{
	reserver *r = arg;
	int s = tl_queue_reserve(r->q, &r->ticket);
	atomic_store(&r->got, s + 1);
	return NULL;
}

static void queue_orders_and_bounds(void **state)
{
	(void)state;
	tl_queue *q;
	tl_err err;
	uint64_t t, t0, t1, t2;
	assert_int_equal(tl_queue_new(&q, 3, &err), TL_OK);
	assert_int_equal(tl_queue_reserve(q, &t0), 0);
	assert_int_equal(tl_queue_reserve(q, &t1), 1);
	assert_int_equal(tl_queue_reserve(q, &t2), 2);
	assert_true(t0 == 0 && t1 == 1 && t2 == 2);
	/* full: a 4th reserve waits for the consumer to release ticket 0 */
	reserver r = {q, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reserve_one, &r), 0);
	tl_queue_publish(q, 2);
	tl_queue_publish(q, 0);
	assert_int_equal(tl_queue_take(q, &t), 0);
	assert_int_equal(t, 0);
	usleep(50000);
	assert_int_equal(atomic_load(&r.got), 0); /* ticket 0 still held */
	tl_queue_publish(q, 1);
	assert_int_equal(tl_queue_take(q, &t), 1); /* releases 0 */
	assert_int_equal(t, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r.got), 0 + 1); /* slot 0 */
	assert_int_equal(r.ticket, 3);
	assert_int_equal(tl_queue_take(q, &t), 2);
	assert_int_equal(t, 2);
	tl_queue_publish(q, 3);
	assert_int_equal(tl_queue_take(q, &t), 0);
	assert_int_equal(t, 3);
	tl_queue_release(q);
	/* restart at 5 with limit 7: tickets 5 and 6, then the end */
	tl_queue_restart(q, 5, 7);
	assert_int_equal(tl_queue_reserve(q, &t), 5 % 3);
	assert_int_equal(t, 5);
	tl_queue_publish(q, 5);
	assert_int_equal(tl_queue_reserve(q, &t), 6 % 3);
	tl_queue_publish(q, 6);
	assert_int_equal(tl_queue_take(q, &t), 2);
	assert_int_equal(t, 5);
	assert_int_equal(tl_queue_take(q, &t), 0);
	assert_int_equal(t, 6);
	assert_int_equal(tl_queue_take(q, &t), -1); /* at the limit: end */
	/* a producer past the limit waits until close */
	r.got = 0;
	assert_int_equal(pthread_create(&th, NULL, reserve_one, &r), 0);
	usleep(20000);
	assert_int_equal(atomic_load(&r.got), 0);
	tl_queue_close(q);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r.got), -1 + 1);
	assert_int_equal(tl_queue_take(q, &t), -1);
	tl_queue_free(q);
	assert_int_equal(tl_queue_new(&q, 0, &err), TL_EUSAGE);
}

#define PRODUCERS 4
#define TICKETS 20000
#define DEPTH 5

typedef struct {
	tl_queue *q;
	uint64_t slots[DEPTH][4];
} stress_t;

static void *stress_producer(void *arg)
{
	stress_t *s = arg;
	uint64_t t;
	int i;
	while ((i = tl_queue_reserve(s->q, &t)) >= 0) {
		for (int k = 0; k < 4; k++)
			s->slots[i][k] = t * 4 + (uint64_t)k;
		if (t % 7 == 0)
			sched_yield(); /* publish out of order now and then */
		tl_queue_publish(s->q, t);
	}
	return NULL;
}

static void queue_many_producers(void **state)
{
	(void)state;
	stress_t s;
	tl_err err;
	assert_int_equal(tl_queue_new(&s.q, DEPTH, &err), TL_OK);
	tl_queue_restart(s.q, 0, TICKETS);
	pthread_t th[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, stress_producer, &s), 0);
	uint64_t t, want = 0;
	int i;
	while ((i = tl_queue_take(s.q, &t)) >= 0) {
		assert_int_equal(t, want);
		assert_int_equal(i, (int)(want % DEPTH));
		for (int k = 0; k < 4; k++)
			assert_int_equal(s.slots[i][k], want * 4 + (uint64_t)k);
		want++;
	}
	assert_int_equal(want, TICKETS);
	tl_queue_close(s.q);
	for (int j = 0; j < PRODUCERS; j++)
		pthread_join(th[j], NULL);
	tl_queue_free(s.q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_record_once_per_epoch),
		cmocka_unit_test(prefetch_order_is_the_permutation),
		cmocka_unit_test(seed_fixes_permutation_and_augmentation),
		cmocka_unit_test(crop_shifts_by_the_seeded_offset),
		cmocka_unit_test(mirror_reverses_each_row),
		cmocka_unit_test(resume_gives_the_tail_of_the_epoch),
		cmocka_unit_test(restart_drops_prefetched_batches),
		cmocka_unit_test(cache_rows_are_items),
		cmocka_unit_test(queue_orders_and_bounds),
		cmocka_unit_test(queue_many_producers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
