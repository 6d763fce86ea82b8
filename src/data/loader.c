/* loader.c - threaded, prefetching batch loader (see loader.h). */
#include "data/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rng.h"

/* One batch in flight; batch b lives in slot b % depth (see tl_queue). */
typedef struct {
	float *x;
	int32_t *y;
	int n;
	tl_status st;
	tl_err err;
} slot;

struct tl_loader {
	tl_loader_cfg c;
	uint64_t n_batches;
	uint64_t *perm; /* item order of the current epoch */
	slot *slots;
	tl_queue *q; /* tickets are batch numbers of the current epoch */
	pthread_t *threads;
	int started; /* threads that run */
	int epoch; /* changed only while the queue is drained */
};

uint64_t tl_loader_batches(const tl_loader *l)
{
	return l->n_batches;
}

/* Fill one item: load (or copy from the cache), then augment in place. */
static tl_status load_item(tl_loader *l, uint64_t pos, uint64_t item, float *dst, float *tmp,
			   tl_err *err)
{
	const tl_loader_cfg *c = &l->c;
	if (c->cache) {
		memcpy(dst, c->cache + item * c->row_floats, c->row_floats * sizeof(float));
		return TL_OK;
	}
	TL_TRY(tl_shard_load_f32(c->shard, c->records[item], dst, err));
	if (!c->flip && !c->crop_pad)
		return TL_OK;
	int h = (int)c->shard->info.height, w = (int)c->shard->info.width;
	uint64_t r = tl_rng_key(c->seed, 0xa06, (uint64_t)l->epoch, pos);
	int flip = c->flip && (tl_rng_next(&r) & 1);
	int dy = 0, dx = 0;
	if (c->crop_pad) {
		dy = (int)tl_rng_below(&r, (uint64_t)(2 * c->crop_pad + 1)) - c->crop_pad;
		dx = (int)tl_rng_below(&r, (uint64_t)(2 * c->crop_pad + 1)) - c->crop_pad;
	}
	memcpy(tmp, dst, sizeof(float) * 3 * (size_t)h * w);
	for (int ch = 0; ch < 3; ch++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				int sy = y + dy, sx = flip ? w - 1 - (x + dx) : x + dx;
				dst[((size_t)ch * h + y) * w + x] =
					sy >= 0 && sy < h && sx >= 0 && sx < w
						? tmp[((size_t)ch * h + sy) * w + sx]
						: 0.0f;
			}
	return TL_OK;
}

/* Gather batch b into slot s: its items in permutation order. */
static void fill_batch(tl_loader *l, slot *s, uint64_t b, float *tmp)
{
	uint64_t first = b * (uint64_t)l->c.batch;
	uint64_t n = l->c.n - first < (uint64_t)l->c.batch ? l->c.n - first : (uint64_t)l->c.batch;
	s->n = (int)n;
	s->st = TL_OK;
	for (uint64_t i = 0; i < n && s->st == TL_OK; i++) {
		uint64_t item = l->perm[first + i];
		s->y[i] = l->c.labels[item];
		s->st = load_item(l, first + i, item, s->x + i * l->c.row_floats, tmp, &s->err);
	}
}

static void *worker(void *arg)
{
	tl_loader *l = arg;
	float *tmp = l->c.cache ? NULL : malloc(l->c.row_floats * sizeof(float));
	uint64_t b;
	int i;
	while ((i = tl_queue_reserve(l->q, &b)) >= 0) {
		fill_batch(l, &l->slots[i], b, tmp);
		tl_queue_publish(l->q, b);
	}
	free(tmp);
	return NULL;
}

tl_status tl_loader_new(tl_loader **out, const tl_loader_cfg *cfg, tl_err *err)
{
	*out = NULL;
	tl_loader *l = calloc(1, sizeof *l);
	if (!l)
		return tl_seterr(err, TL_ENOMEM, "loader: out of memory");
	l->c = *cfg;
	if (l->c.workers < 1)
		l->c.workers = 1;
	if (l->c.depth < 2)
		l->c.depth = 2;
	l->n_batches = (cfg->n + (uint64_t)cfg->batch - 1) / (uint64_t)cfg->batch;
	l->perm = malloc((cfg->n ? cfg->n : 1) * sizeof *l->perm);
	l->slots = calloc((size_t)l->c.depth, sizeof *l->slots);
	l->threads = calloc((size_t)l->c.workers, sizeof *l->threads);
	int ok = l->perm && l->slots && l->threads;
	for (int i = 0; ok && i < l->c.depth; i++) {
		l->slots[i].x = malloc((size_t)cfg->batch * cfg->row_floats * sizeof(float));
		l->slots[i].y = malloc((size_t)cfg->batch * sizeof(int32_t));
		ok = l->slots[i].x && l->slots[i].y;
	}
	if (!ok) {
		tl_loader_free(l);
		return tl_seterr(err, TL_ENOMEM, "loader: out of memory for %d batches of %d",
				 cfg->depth, cfg->batch);
	}
	tl_status st = tl_queue_new(&l->q, (unsigned)l->c.depth, err);
	if (st != TL_OK) {
		tl_loader_free(l);
		return st;
	}
	tl_queue_restart(l->q, 0, 0); /* idle until tl_loader_start */
	for (; l->started < l->c.workers; l->started++)
		if (pthread_create(&l->threads[l->started], NULL, worker, l) != 0) {
			int i = l->started;
			tl_loader_free(l);
			return tl_seterr(err, TL_ENOMEM, "loader: cannot start thread %d", i);
		}
	*out = l;
	return TL_OK;
}

void tl_loader_free(tl_loader *l)
{
	if (!l)
		return;
	if (l->q) {
		tl_queue_close(l->q);
		for (int i = 0; i < l->started; i++)
			pthread_join(l->threads[i], NULL);
		tl_queue_free(l->q);
	}
	for (int i = 0; l->slots && i < l->c.depth; i++) {
		free(l->slots[i].x);
		free(l->slots[i].y);
	}
	free(l->slots);
	free(l->threads);
	free(l->perm);
	free(l);
}

void tl_loader_start(tl_loader *l, int epoch, uint64_t first)
{
	tl_queue_drain(l->q); /* no worker reads perm or epoch from here on */
	l->epoch = epoch;
	for (uint64_t i = 0; i < l->c.n; i++)
		l->perm[i] = i;
	if (l->c.shuffle) {
		uint64_t r = tl_rng_key(l->c.seed, 0x5e1, (uint64_t)epoch, 0);
		for (uint64_t i = l->c.n; i > 1; i--) {
			uint64_t j = tl_rng_below(&r, i), t = l->perm[i - 1];
			l->perm[i - 1] = l->perm[j];
			l->perm[j] = t;
		}
	}
	tl_queue_restart(l->q, first < l->n_batches ? first : l->n_batches, l->n_batches);
}

tl_status tl_loader_next(tl_loader *l, const float **x, const int32_t **y, int *n, tl_err *err)
{
	uint64_t b;
	int i = tl_queue_take(l->q, &b); /* gives back the batch handed out before */
	if (i < 0) {
		*n = 0;
		return TL_OK;
	}
	const slot *s = &l->slots[i];
	if (s->st != TL_OK) {
		*err = s->err;
		*n = 0;
		return s->st;
	}
	*x = s->x;
	*y = s->y;
	*n = s->n;
	return TL_OK;
}

void tl_loader_mirror(const float *src, float *dst, int n, int c, int h, int w)
{
	for (size_t r = 0; r < (size_t)n * c * h; r++)
		for (int x = 0; x < w; x++)
			dst[r * w + x] = src[r * w + (w - 1 - x)];
}
