/* pack.c - the tlpack pipeline (see pack.h). */
#define _GNU_SOURCE
#include "data/pack.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/cifar.h"
#include "pool.h"
#include "progress.h"
#include "data/shard.h"

#ifndef TL_PACK_BLOCK_BYTES
#define TL_PACK_BLOCK_BYTES (8u << 20) /* converted bytes per block */
#endif
#ifndef TL_PACK_SLOTS
#define TL_PACK_SLOTS 4 /* blocks in flight between reader and converter */
#endif
#define META_MAX 65536

enum msg_type { MSG_SEGMENT, MSG_DATA, MSG_META, MSG_END, MSG_ERROR };

typedef struct {
	enum msg_type type;
	tl_cifar_member m;
	size_t n;     /* records (DATA) or text bytes (META) */
	uint8_t *raw; /* raw records or text */
	tl_err err;
} slot;

typedef struct {
	tl_cifar_src *src;
	slot slots[TL_PACK_SLOTS];
	size_t block; /* records per DATA message */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned head, tail; /* producer fills slots[head % N], consumer reads tail */
	int stop;            /* consumer gave up: producer must exit */
} pipe_t;

/* ---- reader thread ---- */

static slot *slot_acquire(pipe_t *p)
{
	pthread_mutex_lock(&p->mu);
	while (!p->stop && p->head - p->tail == TL_PACK_SLOTS)
		pthread_cond_wait(&p->cv, &p->mu);
	slot *s = p->stop ? NULL : &p->slots[p->head % TL_PACK_SLOTS];
	pthread_mutex_unlock(&p->mu);
	return s;
}

static void slot_publish(pipe_t *p)
{
	pthread_mutex_lock(&p->mu);
	p->head++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static int record_size(tl_member_kind k)
{
	return k == TL_MEMBER_C100_TRAIN || k == TL_MEMBER_C100_TEST ? TL_CIFAR100_RECORD
								     : TL_CIFAR10_RECORD;
}

static int is_data(tl_member_kind k)
{
	return k == TL_MEMBER_C10_TRAIN || k == TL_MEMBER_C10_TEST ||
	       k == TL_MEMBER_C100_TRAIN || k == TL_MEMBER_C100_TEST;
}

static int is_meta(tl_member_kind k)
{
	return k == TL_MEMBER_C10_META || k == TL_MEMBER_C100_FINE || k == TL_MEMBER_C100_COARSE;
}

/* Produce one member's messages; returns nonzero to stop. */
static int produce_member(pipe_t *p, const tl_cifar_member *m, const char *input)
{
	slot *s;
	if (is_meta(m->kind)) {
		if (!(s = slot_acquire(p)))
			return 1;
		s->m = *m;
		if (m->size > META_MAX) {
			s->type = MSG_ERROR;
			tl_seterr(&s->err, TL_EFORMAT,
				  "%s: %s: class name list too large (expected at most %d bytes, got %llu)",
				  input, m->path, META_MAX, (unsigned long long)m->size);
		} else {
			s->type = MSG_META;
			s->n = (size_t)m->size;
			if (tl_cifar_read(p->src, s->raw, s->n, &s->err) != TL_OK)
				s->type = MSG_ERROR;
		}
		slot_publish(p);
		return s->type == MSG_ERROR;
	}
	int rec = record_size(m->kind);
	if (m->kind == TL_MEMBER_C10_TRAIN && (m->batch < 1 || m->batch > 5)) {
		if (!(s = slot_acquire(p)))
			return 1;
		s->type = MSG_ERROR;
		tl_seterr(&s->err, TL_EFORMAT,
			  "%s: %s: unexpected training batch (expected data_batch_1.bin .. data_batch_5.bin)",
			  input, m->path);
		slot_publish(p);
		return 1;
	}
	if (m->size == 0 || m->size % (uint64_t)rec) {
		if (!(s = slot_acquire(p)))
			return 1;
		s->type = MSG_ERROR;
		tl_seterr(&s->err, TL_EFORMAT,
			  "%s: %s: size is not a whole number of records (expected a non-zero multiple of %d bytes, got %llu = %llu records + %llu bytes)",
			  input, m->path, rec, (unsigned long long)m->size,
			  (unsigned long long)(m->size / rec), (unsigned long long)(m->size % rec));
		slot_publish(p);
		return 1;
	}
	if (!(s = slot_acquire(p)))
		return 1;
	s->type = MSG_SEGMENT;
	s->m = *m;
	s->n = (size_t)(m->size / rec);
	slot_publish(p);
	uint64_t left = m->size / rec;
	while (left > 0) {
		if (!(s = slot_acquire(p)))
			return 1;
		size_t n = left < p->block ? (size_t)left : p->block;
		s->type = MSG_DATA;
		s->m = *m;
		s->n = n;
		if (tl_cifar_read(p->src, s->raw, n * (size_t)rec, &s->err) != TL_OK) {
			s->type = MSG_ERROR;
			slot_publish(p);
			return 1;
		}
		slot_publish(p);
		left -= n;
	}
	return 0;
}

typedef struct {
	pipe_t *p;
	const char *input;
} producer_arg;

static void *producer(void *arg)
{
	producer_arg *a = arg;
	pipe_t *p = a->p;
	for (;;) {
		tl_cifar_member m;
		int done;
		tl_err e;
		if (tl_cifar_next(p->src, &m, &done, &e) != TL_OK) {
			slot *s = slot_acquire(p);
			if (s) {
				s->type = MSG_ERROR;
				s->err = e;
				slot_publish(p);
			}
			return NULL;
		}
		if (done) {
			slot *s = slot_acquire(p);
			if (s) {
				s->type = MSG_END;
				slot_publish(p);
			}
			return NULL;
		}
		if ((is_data(m.kind) || is_meta(m.kind)) && produce_member(p, &m, a->input))
			return NULL;
	}
}

/* ---- converter (calling thread) ---- */

typedef struct {
	const tl_pack_opts *o;
	tl_resize rz;
	tl_norm norm;
	float **scratch; /* per pool thread */
	tl_pool *pool;
	/* current block */
	const uint8_t *raw;
	int rec_in, label_bytes;
	uint8_t *out;
	uint32_t rec_out;
} conv_t;

static void convert_range(void *ctx, size_t b, size_t e, int tid)
{
	conv_t *c = ctx;
	for (size_t i = b; i < e; i++)
		tl_image_convert(c->raw + i * c->rec_in + c->label_bytes, &c->rz, &c->norm,
				 c->o->dtype, c->out + i * c->rec_out, c->scratch[tid]);
}

/* Split text into names: one per non-empty line, trimmed. */
static tl_status parse_names(const char *input, const tl_cifar_member *m, const uint8_t *text,
			     size_t n, char names[][TL_SHARD_NAME_MAX], uint32_t want,
			     tl_err *err)
{
	uint32_t got = 0;
	size_t i = 0;
	while (i < n && got < want) {
		size_t j = i;
		while (j < n && text[j] != '\n')
			j++;
		size_t a = i, b = j;
		while (a < b && isspace(text[a]))
			a++;
		while (b > a && isspace(text[b - 1]))
			b--;
		if (b > a) {
			if (b - a >= TL_SHARD_NAME_MAX)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: %s: class name on line %u too long (expected < %d bytes, got %zu)",
						 input, m->path, got + 1, TL_SHARD_NAME_MAX, b - a);
			memcpy(names[got], text + a, b - a);
			names[got][b - a] = 0;
			got++;
		}
		i = j + 1;
	}
	if (got < want)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: too few class names (expected %u, got %u)", input,
				 m->path, want, got);
	return TL_OK;
}

typedef struct {
	int dataset; /* 0 unknown, 10, 100 */
	unsigned seen; /* bit per data member: C10 batch 1..5 -> 1..5, test -> 6; C100 train 1, test 2 */
	int have_fine, have_coarse, have_meta;
} tally;

static tl_status check_segment(const char *input, const tl_cifar_member *m, tally *t,
			       tl_err *err)
{
	int ds = m->kind == TL_MEMBER_C100_TRAIN || m->kind == TL_MEMBER_C100_TEST ? 100 : 10;
	if (t->dataset && t->dataset != ds)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: CIFAR-%d member in a CIFAR-%d archive (expected one dataset)",
				 input, m->path, ds, t->dataset);
	t->dataset = ds;
	unsigned bit = m->kind == TL_MEMBER_C10_TRAIN  ? 1u << m->batch
		       : m->kind == TL_MEMBER_C10_TEST ? 1u << 6
		       : m->kind == TL_MEMBER_C100_TRAIN ? 1u << 1
							 : 1u << 2;
	if (t->seen & bit)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: member appears twice (expected once)",
				 input, m->path);
	t->seen |= bit;
	return TL_OK;
}

static tl_status check_complete(const char *input, const tally *t, tl_err *err)
{
	if (!t->dataset)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: no CIFAR batches found (expected cifar-10-batches-bin/data_batch_1..5.bin and test_batch.bin, or cifar-100-binary/train.bin and test.bin)",
				 input);
	if (t->dataset == 10) {
		for (int b = 1; b <= 5; b++)
			if (!(t->seen & (1u << b)))
				return tl_seterr(err, TL_EFORMAT,
						 "%s: cifar-10-batches-bin/data_batch_%d.bin: missing (expected data_batch_1..5.bin and test_batch.bin)",
						 input, b);
		if (!(t->seen & (1u << 6)))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-10-batches-bin/test_batch.bin: missing (expected data_batch_1..5.bin and test_batch.bin)",
					 input);
	} else {
		if (!(t->seen & 2u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-binary/train.bin: missing (expected train.bin and test.bin)",
					 input);
		if (!(t->seen & 4u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-binary/test.bin: missing (expected train.bin and test.bin)",
					 input);
	}
	return TL_OK;
}

/* Check every label of a block; fill lab[] with (class[, coarse]). */
static tl_status take_labels(const char *input, const slot *s, uint64_t first,
			     const conv_t *c, uint8_t *lab, tl_err *err)
{
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *r = s->raw + i * c->rec_in;
		if (c->label_bytes == 1) {
			if (r[0] >= 10)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: %s: record %llu: label out of range (expected 0..9, got %u)",
						 input, s->m.path, (unsigned long long)(first + i), r[0]);
			lab[i] = r[0];
		} else {
			if (r[0] >= 20 || r[1] >= 100)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: %s: record %llu: label out of range (expected coarse 0..19 and fine 0..99, got %u and %u)",
						 input, s->m.path, (unsigned long long)(first + i), r[0], r[1]);
			lab[2 * i] = r[1];
			lab[2 * i + 1] = r[0];
		}
	}
	return TL_OK;
}

tl_status tl_pack(const tl_pack_opts *o, tl_pack_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	double t0 = tl_now();
	if (o->height < 1 || o->height > TL_PACK_MAX_SIZE || o->width < 1 ||
	    o->width > TL_PACK_MAX_SIZE)
		return tl_seterr(err, TL_EUSAGE, "size %dx%d out of range (expected 1..%d)",
				 o->height, o->width, TL_PACK_MAX_SIZE);
	if (o->output) { /* an unwritable destination fails before any work */
		tl_afile probe;
		TL_TRY(tl_afile_open(&probe, o->output, err));
		tl_afile_abort(&probe);
	}
	conv_t c;
	memset(&c, 0, sizeof c);
	c.o = o;
	tl_norm_preset(o->norm, &c.norm);
	TL_TRY(tl_resize_init(&c.rz, 32, 32, o->height, o->width, o->filter, err));

	pipe_t p;
	memset(&p, 0, sizeof p);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	tl_shard_writer *w = NULL;
	tl_progress prog;
	tl_progress_init(&prog, "tlpack", o->quiet);
	tally t = {0};
	uint8_t *lab = NULL;
	int started = 0;
	uint64_t member_first = 0;
	pthread_t th;
	tl_status st = tl_pool_new(&c.pool, o->threads, err);
	if (st != TL_OK)
		goto out;
	uint64_t pix = 3ull * o->height * o->width * tl_dtype_size(o->dtype);
	c.rec_out = (uint32_t)tl_align_up(pix, TL_SHARD_RECORD_ALIGN);
	p.block = TL_PACK_BLOCK_BYTES / c.rec_out;
	if (p.block < 1)
		p.block = 1;
	if (p.block > 2048)
		p.block = 2048;
	size_t raw_bytes = p.block * TL_CIFAR100_RECORD;
	if (raw_bytes < META_MAX)
		raw_bytes = META_MAX;
	c.out = calloc(p.block, c.rec_out);
	lab = malloc(p.block * 2);
	c.scratch = calloc((size_t)tl_pool_size(c.pool), sizeof *c.scratch);
	int ok = c.out && lab && c.scratch;
	for (int i = 0; ok && i < tl_pool_size(c.pool); i++)
		ok = (c.scratch[i] = malloc(tl_image_scratch_floats(&c.rz) * sizeof(float))) != NULL;
	for (int i = 0; ok && i < TL_PACK_SLOTS; i++)
		ok = (p.slots[i].raw = malloc(raw_bytes)) != NULL;
	if (!ok) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory for %zu-record blocks", p.block);
		goto out;
	}
	if ((st = tl_cifar_open(&p.src, o->input, err)) != TL_OK)
		goto out;
	producer_arg pa = {&p, o->input};
	if (pthread_create(&th, NULL, producer, &pa) != 0) {
		st = tl_seterr(err, TL_ENOMEM, "cannot start the reader thread");
		goto out;
	}
	started = 1;

	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	char fine[100][TL_SHARD_NAME_MAX], coarse[20][TL_SHARD_NAME_MAX];
	for (;;) {
		if (o->cancel && *o->cancel) {
			st = tl_seterr(err, TL_EINTR, "%s: interrupted; no output written", o->input);
			break;
		}
		pthread_mutex_lock(&p.mu);
		while (p.head == p.tail)
			pthread_cond_wait(&p.cv, &p.mu);
		pthread_mutex_unlock(&p.mu);
		slot *s = &p.slots[p.tail % TL_PACK_SLOTS];
		if (s->type == MSG_ERROR) {
			*err = s->err;
			st = TL_EFORMAT;
			break;
		}
		if (s->type == MSG_END)
			break;
		if (s->type == MSG_META) {
			tl_status ms;
			if (s->m.kind == TL_MEMBER_C10_META) {
				ms = parse_names(o->input, &s->m, s->raw, s->n, fine, 10, err);
				t.have_meta = 1;
			} else if (s->m.kind == TL_MEMBER_C100_FINE) {
				ms = parse_names(o->input, &s->m, s->raw, s->n, fine, 100, err);
				t.have_fine = 1;
			} else {
				ms = parse_names(o->input, &s->m, s->raw, s->n, coarse, 20, err);
				t.have_coarse = 1;
			}
			if ((st = ms) != TL_OK)
				break;
		} else if (s->type == MSG_SEGMENT) {
			if ((st = check_segment(o->input, &s->m, &t, err)) != TL_OK)
				break;
			c.rec_in = record_size(s->m.kind);
			c.label_bytes = c.rec_in - TL_CIFAR_PIXELS;
			if (!w) {
				const char *out = o->output ? o->output
							    : t.dataset == 10 ? "cifar10.tls"
									      : "cifar100.tls";
				snprintf(res->output, sizeof res->output, "%s", out);
				proto.channels = 3;
				proto.height = (uint32_t)o->height;
				proto.width = (uint32_t)o->width;
				proto.dtype = o->dtype;
				proto.norm = c.norm;
				proto.filter = o->filter;
				proto.src_height = proto.src_width = 32;
				proto.n_label_fields = t.dataset == 10 ? 1 : 2;
				proto.chunk_records = o->chunk_records;
				if ((st = tl_shard_writer_open(&w, out, &proto, err)) != TL_OK)
					break;
				TL_CHECK(tl_shard_writer_record_bytes(w) == c.rec_out);
			}
			int train = s->m.kind == TL_MEMBER_C10_TRAIN || s->m.kind == TL_MEMBER_C100_TRAIN;
			if ((st = tl_shard_writer_segment(w, s->m.base, train ? "train" : "test",
							  (uint32_t)s->m.batch, err)) != TL_OK)
				break;
			member_first = 0;
		} else { /* DATA */
			if ((st = take_labels(o->input, s, member_first, &c, lab, err)) != TL_OK)
				break;
			c.raw = s->raw;
			tl_pool_split(c.pool, s->n, convert_range, &c);
			if ((st = tl_shard_writer_append(w, c.out, lab, s->n, err)) != TL_OK)
				break;
			member_first += s->n;
			res->records += s->n;
			tl_progress_update(&prog, tl_cifar_consumed(p.src), tl_cifar_total(p.src),
					   res->records, "images");
		}
		pthread_mutex_lock(&p.mu);
		p.tail++;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
	}
	/* stop the reader whatever happened, then finish or discard */
	pthread_mutex_lock(&p.mu);
	p.stop = 1;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.mu);
	pthread_join(th, NULL);
	started = 0;
	tl_progress_end(&prog);
	if (st != TL_OK)
		goto out;
	if ((st = check_complete(o->input, &t, err)) != TL_OK)
		goto out;
	tl_shard_info *in = tl_shard_writer_info(w);
	if (t.dataset == 10) {
		strcpy(in->dataset, "cifar10");
		in->n_classes = 10;
		for (int i = 0; i < 10; i++)
			strcpy(in->class_names[i], t.have_meta ? fine[i] : tl_cifar10_names[i]);
	} else {
		strcpy(in->dataset, "cifar100");
		in->n_classes = 100;
		in->n_coarse = 20;
		for (int i = 0; i < 100; i++) {
			if (t.have_fine)
				strcpy(in->class_names[i], fine[i]);
			else
				snprintf(in->class_names[i], TL_SHARD_NAME_MAX, "class_%d", i);
		}
		for (int i = 0; i < 20; i++) {
			if (t.have_coarse)
				strcpy(in->coarse_names[i], coarse[i]);
			else
				snprintf(in->coarse_names[i], TL_SHARD_NAME_MAX, "superclass_%d", i);
		}
	}
	const char *base = strrchr(o->input, '/');
	snprintf(in->source_name, sizeof in->source_name, "%s", base && base[1] ? base + 1 : o->input);
	if ((st = tl_cifar_finish(p.src, &in->source_size, &in->source_hash, err)) != TL_OK)
		goto out;
	for (uint32_t i = 0; i < in->n_splits; i++) {
		if (strcmp(in->splits[i].name, "train") == 0)
			res->train = in->splits[i].count;
		else
			res->test = in->splits[i].count;
	}
	snprintf(res->dataset, sizeof res->dataset, "%s", in->dataset);
	tl_shard_writer *wf = w;
	w = NULL;
	if ((st = tl_shard_writer_finish(wf, err)) != TL_OK)
		goto out;
	res->seconds = tl_now() - t0;
out:
	if (started) {
		pthread_mutex_lock(&p.mu);
		p.stop = 1;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		pthread_join(th, NULL);
	}
	if (w)
		tl_shard_writer_abort(w);
	tl_cifar_close(p.src);
	for (int i = 0; i < TL_PACK_SLOTS; i++)
		free(p.slots[i].raw);
	if (c.scratch)
		for (int i = 0; i < tl_pool_size(c.pool); i++)
			free(c.scratch[i]);
	free(c.scratch);
	free(c.out);
	free(lab);
	tl_pool_free(c.pool);
	tl_resize_free(&c.rz);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	return st;
}
