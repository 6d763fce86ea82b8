/* pool.c - pthread pool (see pool.h).  Work is handed out in grains from an
 * atomic counter so uneven items balance themselves.  A training step makes
 * thousands of short parallel-fors, so workers spin briefly on the job
 * counter before sleeping, and so does the caller waiting for them:
 * measured, a condition-variable wake-up per call cost VGG16 ~10%. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#ifndef TL_POOL_SPIN
#define TL_POOL_SPIN 20000 /* pause iterations before sleeping (~100 us) */
#endif

struct tl_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	atomic_ulong generation; /* bumped for every job */
	atomic_int busy;         /* workers still inside the current job */
	atomic_int quit;
	int sleeping_caller;
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
	for (;;) {
		int spins = 0;
		while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit) &&
		       spins++ < TL_POOL_SPIN)
			CPU_RELAX();
		if (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) {
			pthread_mutex_lock(&p->mu);
			while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
				pthread_cond_wait(&p->go, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->quit))
			break;
		seen = atomic_load(&p->generation);
		run_job(p, wa.tid);
		if (atomic_fetch_sub(&p->busy, 1) == 1) {
			pthread_mutex_lock(&p->mu);
			if (p->sleeping_caller)
				pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
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
	atomic_store(&p->quit, 1);
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

void tl_pool_split(tl_pool *p, size_t n, tl_pool_fn fn, void *ctx)
{
	tl_pool_for(p, n, n / (4 * (size_t)tl_pool_size(p)) + 1, fn, ctx);
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
	atomic_store(&p->busy, p->n - 1);
	atomic_fetch_add(&p->generation, 1);
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	run_job(p, 0);
	int spins = 0;
	while (atomic_load(&p->busy) > 0 && spins++ < TL_POOL_SPIN)
		CPU_RELAX();
	if (atomic_load(&p->busy) > 0) {
		pthread_mutex_lock(&p->mu);
		p->sleeping_caller = 1;
		while (atomic_load(&p->busy) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		p->sleeping_caller = 0;
		pthread_mutex_unlock(&p->mu);
	}
}

/* ---- bounded queue (see pool.h) ---- */

#define TL_QUEUE_NONE UINT64_MAX

struct tl_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* one condition for every wait: all waits are short */
	unsigned depth;
	uint64_t next;     /* next ticket to reserve */
	uint64_t head;     /* next ticket to take */
	uint64_t freed;    /* tickets below this are released: slots reusable */
	uint64_t limit;    /* tickets >= limit are not handed out */
	uint64_t *ready;   /* per slot: the ticket published there, or NONE */
	int in_flight;     /* reserved, not yet published */
	int held;          /* the consumer holds ticket head - 1 */
	int closed;
};

tl_status tl_queue_new(tl_queue **out, unsigned depth, tl_err *err)
{
	*out = NULL;
	tl_queue *q = calloc(1, sizeof *q);
	if (!q || depth < 1 || !(q->ready = malloc(depth * sizeof *q->ready))) {
		free(q);
		return tl_seterr(err, depth < 1 ? TL_EUSAGE : TL_ENOMEM,
				 "queue: cannot make %u slots", depth);
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->depth = depth;
	q->limit = TL_QUEUE_NONE;
	for (unsigned i = 0; i < depth; i++)
		q->ready[i] = TL_QUEUE_NONE;
	*out = q;
	return TL_OK;
}

void tl_queue_free(tl_queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->ready);
	free(q);
}

int tl_queue_reserve(tl_queue *q, uint64_t *ticket)
{
	pthread_mutex_lock(&q->mu);
	while (!q->closed && (q->next >= q->limit || q->next - q->freed >= q->depth))
		pthread_cond_wait(&q->cv, &q->mu);
	int slot = -1;
	if (!q->closed) {
		*ticket = q->next++;
		q->in_flight++;
		slot = (int)(*ticket % q->depth);
	}
	pthread_mutex_unlock(&q->mu);
	return slot;
}

void tl_queue_publish(tl_queue *q, uint64_t ticket)
{
	pthread_mutex_lock(&q->mu);
	q->ready[ticket % q->depth] = ticket;
	q->in_flight--;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void release_locked(tl_queue *q)
{
	if (q->held) {
		q->held = 0;
		q->ready[(q->head - 1) % q->depth] = TL_QUEUE_NONE;
		q->freed = q->head;
		pthread_cond_broadcast(&q->cv);
	}
}

int tl_queue_take(tl_queue *q, uint64_t *ticket)
{
	pthread_mutex_lock(&q->mu);
	release_locked(q);
	while (!q->closed && q->head < q->limit && q->ready[q->head % q->depth] != q->head)
		pthread_cond_wait(&q->cv, &q->mu);
	int slot = -1;
	if (!q->closed && q->head < q->limit) {
		*ticket = q->head++;
		q->held = 1;
		slot = (int)(*ticket % q->depth);
	}
	pthread_mutex_unlock(&q->mu);
	return slot;
}

void tl_queue_release(tl_queue *q)
{
	pthread_mutex_lock(&q->mu);
	release_locked(q);
	pthread_mutex_unlock(&q->mu);
}

void tl_queue_drain(tl_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->limit = q->next;
	while (q->in_flight > 0)
		pthread_cond_wait(&q->cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void tl_queue_restart(tl_queue *q, uint64_t first, uint64_t limit)
{
	pthread_mutex_lock(&q->mu);
	q->limit = q->next; /* as drain: a late publish must not pose as a new ticket */
	while (q->in_flight > 0)
		pthread_cond_wait(&q->cv, &q->mu);
	q->next = q->head = q->freed = first;
	q->limit = limit;
	q->held = 0;
	for (unsigned i = 0; i < q->depth; i++)
		q->ready[i] = TL_QUEUE_NONE;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void tl_queue_close(tl_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}
