/* loader.c - threaded, prefetching batch loader (see loader.h). */
#include "data/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };

typedef struct {
	int state;
	uint64_t batch; /* which batch it holds */
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
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int epoch;
	uint64_t next; /* next batch to produce */
	uint64_t cur;  /* next batch to hand out */
	int quit;
	int held; /* slot index handed to the caller, or -1 */
	float *pad; /* per-thread crop scratch is allocated in the worker */
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

static void *worker(void *arg)
{
	tl_loader *l = arg;
	float *tmp = l->c.cache ? NULL : malloc(l->c.row_floats * sizeof(float));
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->quit && (l->next >= l->n_batches ||
				    l->slots[l->next % (uint64_t)l->c.depth].state != SLOT_FREE))
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->quit)
			break;
		uint64_t b = l->next++;
		slot *s = &l->slots[b % (uint64_t)l->c.depth];
		s->state = SLOT_BUSY;
		s->batch = b;
		int epoch = l->epoch;
		pthread_mutex_unlock(&l->mu);
		uint64_t first = b * (uint64_t)l->c.batch;
		uint64_t n = l->c.n - first < (uint64_t)l->c.batch ? l->c.n - first : (uint64_t)l->c.batch;
		s->n = (int)n;
		s->st = TL_OK;
		for (uint64_t i = 0; i < n && s->st == TL_OK; i++) {
			uint64_t item = l->perm[first + i];
			s->y[i] = l->c.labels[item];
			s->st = load_item(l, first + i, item, s->x + i * l->c.row_floats, tmp, &s->err);
		}
		pthread_mutex_lock(&l->mu);
		if (epoch == l->epoch)
			s->state = SLOT_READY;
		else
			s->state = SLOT_FREE; /* stale: the epoch was restarted meanwhile */
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
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
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->held = -1;
	l->next = l->n_batches; /* idle until tl_loader_start */
	for (int i = 0; i < l->c.workers; i++)
		if (pthread_create(&l->threads[i], NULL, worker, l) != 0) {
			l->c.workers = i;
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
	if (l->threads) {
		pthread_mutex_lock(&l->mu);
		l->quit = 1;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		for (int i = 0; i < l->c.workers; i++)
			pthread_join(l->threads[i], NULL);
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
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
	pthread_mutex_lock(&l->mu);
	/* wait for in-flight work of the previous epoch to drain */
	for (;;) {
		int busy = 0;
		for (int i = 0; i < l->c.depth; i++)
			busy |= l->slots[i].state == SLOT_BUSY;
		if (!busy)
			break;
		l->next = l->n_batches;
		pthread_cond_wait(&l->cv, &l->mu);
	}
	for (int i = 0; i < l->c.depth; i++)
		l->slots[i].state = SLOT_FREE;
	l->held = -1;
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
	l->next = l->cur = first < l->n_batches ? first : l->n_batches;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

tl_status tl_loader_next(tl_loader *l, const float **x, const int32_t **y, int *n, tl_err *err)
{
	pthread_mutex_lock(&l->mu);
	if (l->held >= 0) {
		l->slots[l->held].state = SLOT_FREE;
		l->held = -1;
		pthread_cond_broadcast(&l->cv);
	}
	if (l->cur >= l->n_batches) {
		pthread_mutex_unlock(&l->mu);
		*n = 0;
		return TL_OK;
	}
	slot *s = &l->slots[l->cur % (uint64_t)l->c.depth];
	while (!(s->state == SLOT_READY && s->batch == l->cur))
		pthread_cond_wait(&l->cv, &l->mu);
	l->held = (int)(l->cur % (uint64_t)l->c.depth);
	l->cur++;
	pthread_mutex_unlock(&l->mu);
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
