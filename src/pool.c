/* pool.c - pthread pool (see pool.h).  Work is handed out in grains from an
 * atomic counter so uneven items balance themselves. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct tl_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	unsigned long generation; /* bumped for every job */
	int busy;                 /* workers still inside the current job */
	int quit;
	/* the current job */
	tl_pool_fn fn;
	void *ctx;
	size_t total, grain;
	atomic_size_t next;
};

int tl_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static void run_job(tl_pool *p, int tid)
{
	for (;;) {
		size_t b = atomic_fetch_add(&p->next, p->grain);
		if (b >= p->total)
			break;
		size_t e = b + p->grain < p->total ? b + p->grain : p->total;
		p->fn(p->ctx, b, e, tid);
	}
}

typedef struct {
	tl_pool *p;
	int tid;
} worker_arg;

static void *worker(void *arg)
{
	worker_arg wa = *(worker_arg *)arg;
	free(arg);
	tl_pool *p = wa.p;
	unsigned long seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->generation == seen)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit)
			break;
		seen = p->generation;
		pthread_mutex_unlock(&p->mu);
		run_job(p, wa.tid);
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

tl_status tl_pool_new(tl_pool **out, int nthreads, tl_err *err)
{
	*out = NULL;
	if (nthreads <= 0)
		nthreads = tl_ncpu();
	tl_pool *p = calloc(1, sizeof *p);
	if (!p || !(p->threads = calloc((size_t)nthreads, sizeof *p->threads))) {
		free(p);
		return tl_seterr(err, TL_ENOMEM, "thread pool: out of memory");
	}
	p->n = nthreads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	for (int i = 1; i < nthreads; i++) {
		worker_arg *wa = malloc(sizeof *wa);
		if (!wa || (wa->p = p, wa->tid = i,
			    pthread_create(&p->threads[i], NULL, worker, wa) != 0)) {
			free(wa);
			p->n = i; /* free joins the ones that started */
			tl_pool_free(p);
			return tl_seterr(err, TL_ENOMEM, "thread pool: cannot start thread %d", i);
		}
	}
	*out = p;
	return TL_OK;
}

void tl_pool_free(tl_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

int tl_pool_size(const tl_pool *p)
{
	return p ? p->n : 1;
}

void tl_pool_for(tl_pool *p, size_t n, size_t grain, tl_pool_fn fn, void *ctx)
{
	if (n == 0)
		return;
	if (grain == 0)
		grain = 1;
	if (!p || p->n == 1 || n <= grain) {
		fn(ctx, 0, n, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->total = n;
	p->grain = grain;
	atomic_store(&p->next, 0);
	p->busy = p->n - 1;
	p->generation++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	run_job(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
