/* pack.c - the tlpack pipeline (see pack.h). */
#define _GNU_SOURCE
#include "data/pack.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "afile.h"
#include "data/cifar.h"
#include "infile.h"
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

/* The reader thread fills slots with messages; the converter (calling
 * thread) takes them in order.  Slots are handed over by a tl_queue. */
typedef struct {
	tl_cifar_src *src;
	slot slots[TL_PACK_SLOTS];
	size_t block; /* records per DATA message */
	tl_queue *q;
} pipe_t;

/* ---- reader thread ---- */

/* The next free slot (its ticket in *t), or NULL once the converter closed
 * the queue: the reader must then exit. */
static slot *slot_acquire(pipe_t *p, uint64_t *t)
{
	int i = tl_queue_reserve(p->q, t);
	return i < 0 ? NULL : &p->slots[i];
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
	uint64_t t;
	if (is_meta(m->kind)) {
		if (!(s = slot_acquire(p, &t)))
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
		tl_queue_publish(p->q, t);
		return s->type == MSG_ERROR;
	}
	int rec = record_size(m->kind);
	if (m->kind == TL_MEMBER_C10_TRAIN && (m->batch < 1 || m->batch > 5)) {
		if (!(s = slot_acquire(p, &t)))
			return 1;
		s->type = MSG_ERROR;
		tl_seterr(&s->err, TL_EFORMAT,
			  "%s: %s: unexpected training batch (expected data_batch_1.bin .. data_batch_5.bin)",
			  input, m->path);
		tl_queue_publish(p->q, t);
		return 1;
	}
	if (m->size == 0 || m->size % (uint64_t)rec) {
		if (!(s = slot_acquire(p, &t)))
			return 1;
		s->type = MSG_ERROR;
		tl_seterr(&s->err, TL_EFORMAT,
			  "%s: %s: size is not a whole number of records (expected a non-zero multiple of %d bytes, got %llu = %llu records + %llu bytes)",
			  input, m->path, rec, (unsigned long long)m->size,
			  (unsigned long long)(m->size / rec), (unsigned long long)(m->size % rec));
		tl_queue_publish(p->q, t);
		return 1;
	}
	if (!(s = slot_acquire(p, &t)))
		return 1;
	s->type = MSG_SEGMENT;
	s->m = *m;
	s->n = (size_t)(m->size / rec);
	tl_queue_publish(p->q, t);
	uint64_t left = m->size / rec;
	while (left > 0) {
		if (!(s = slot_acquire(p, &t)))
			return 1;
		size_t n = left < p->block ? (size_t)left : p->block;
		s->type = MSG_DATA;
		s->m = *m;
		s->n = n;
		if (tl_cifar_read(p->src, s->raw, n * (size_t)rec, &s->err) != TL_OK) {
			s->type = MSG_ERROR;
			tl_queue_publish(p->q, t);
			return 1;
		}
		tl_queue_publish(p->q, t);
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
		uint64_t t;
		if (tl_cifar_next(p->src, &m, &done, &e) != TL_OK) {
			slot *s = slot_acquire(p, &t);
			if (s) {
				s->type = MSG_ERROR;
				s->err = e;
				tl_queue_publish(p->q, t);
			}
			return NULL;
		}
		if (done) {
			slot *s = slot_acquire(p, &t);
			if (s) {
				s->type = MSG_END;
				tl_queue_publish(p->q, t);
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

/* ---- the pack run, step by step ---- */

/* Everything one tl_pack call owns; pack_free releases whatever was made. */
typedef struct {
	const tl_pack_opts *o;
	conv_t c;
	pipe_t p;
	pthread_t reader;
	int reader_running;
	tl_shard_writer *w;
	tl_progress prog;
	tally t;
	uint8_t *lab;          /* labels of the current block */
	uint64_t member_first; /* index of the block's first record in its member */
	char fine[100][TL_SHARD_NAME_MAX], coarse[20][TL_SHARD_NAME_MAX];
} packer;

/* Options the pipeline cannot run with fail here, before any work: the
 * image size, and an output file that cannot be created. */
static tl_status check_opts(const tl_pack_opts *o, tl_err *err)
{
	if (o->height < 1 || o->height > TL_PACK_MAX_SIZE || o->width < 1 ||
	    o->width > TL_PACK_MAX_SIZE)
		return tl_seterr(err, TL_EUSAGE, "size %dx%d out of range (expected 1..%d)",
				 o->height, o->width, TL_PACK_MAX_SIZE);
	if (o->output) {
		tl_afile probe;
		TL_TRY(tl_afile_open_file(&probe, o->output, err));
		tl_afile_abort(&probe);
	}
	return TL_OK;
}

/* Make the resizer, thread pool, block buffers, slots and queue, and open
 * the input.  On failure k holds what was made (pack_free frees it). */
static tl_status pack_setup(packer *k, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	conv_t *c = &k->c;
	c->o = o;
	tl_norm_preset(o->norm, &c->norm);
	TL_TRY(tl_resize_init(&c->rz, 32, 32, o->height, o->width, o->filter, err));
	TL_TRY(tl_pool_new(&c->pool, o->threads, err));
	TL_TRY(tl_queue_new(&k->p.q, TL_PACK_SLOTS, err));
	uint64_t pix = 3ull * o->height * o->width * tl_dtype_size(o->dtype);
	c->rec_out = (uint32_t)tl_align_up(pix, TL_SHARD_RECORD_ALIGN);
	size_t block = TL_PACK_BLOCK_BYTES / c->rec_out;
	k->p.block = block < 1 ? 1 : block > 2048 ? 2048 : block;
	size_t raw_bytes = k->p.block * TL_CIFAR100_RECORD;
	if (raw_bytes < META_MAX)
		raw_bytes = META_MAX;
	c->out = calloc(k->p.block, c->rec_out);
	k->lab = malloc(k->p.block * 2);
	c->scratch = calloc((size_t)tl_pool_size(c->pool), sizeof *c->scratch);
	int ok = c->out && k->lab && c->scratch;
	for (int i = 0; ok && i < tl_pool_size(c->pool); i++)
		ok = (c->scratch[i] = malloc(tl_image_scratch_floats(&c->rz) * sizeof(float))) != NULL;
	for (int i = 0; ok && i < TL_PACK_SLOTS; i++)
		ok = (k->p.slots[i].raw = malloc(raw_bytes)) != NULL;
	if (!ok)
		return tl_seterr(err, TL_ENOMEM, "out of memory for %zu-record blocks", k->p.block);
	return tl_cifar_open(&k->p.src, o->input, err);
}

/* Close the queue (the reader stops at its next slot) and join the reader;
 * a no-op when it is not running. */
static void stop_reader(packer *k)
{
	if (!k->reader_running)
		return;
	tl_queue_close(k->p.q);
	pthread_join(k->reader, NULL);
	k->reader_running = 0;
}

static void pack_free(packer *k)
{
	stop_reader(k);
	if (k->w)
		tl_shard_writer_abort(k->w);
	tl_cifar_close(k->p.src);
	for (int i = 0; i < TL_PACK_SLOTS; i++)
		free(k->p.slots[i].raw);
	if (k->c.scratch)
		for (int i = 0; i < tl_pool_size(k->c.pool); i++)
			free(k->c.scratch[i]);
	free(k->c.scratch);
	free(k->c.out);
	free(k->lab);
	tl_pool_free(k->c.pool);
	tl_resize_free(&k->c.rz);
	tl_queue_free(k->p.q);
}

/* A class name list: parse it into the fine or coarse names. */
static tl_status on_meta(packer *k, const slot *s, tl_err *err)
{
	const char *in = k->o->input;
	if (s->m.kind == TL_MEMBER_C10_META) {
		k->t.have_meta = 1;
		return parse_names(in, &s->m, s->raw, s->n, k->fine, 10, err);
	}
	if (s->m.kind == TL_MEMBER_C100_FINE) {
		k->t.have_fine = 1;
		return parse_names(in, &s->m, s->raw, s->n, k->fine, 100, err);
	}
	k->t.have_coarse = 1;
	return parse_names(in, &s->m, s->raw, s->n, k->coarse, 20, err);
}

/* The first data member decides the dataset: open the writer for it (the
 * output name defaults to cifar10.tls / cifar100.tls). */
static tl_status open_writer(packer *k, tl_pack_result *res, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	const char *out = o->output ? o->output
				    : k->t.dataset == 10 ? "cifar10.tls"
							 : "cifar100.tls";
	snprintf(res->output, sizeof res->output, "%s", out);
	tl_infile_note(o->input); /* a directory input is checked file by file */
	TL_TRY(tl_afile_check(out, 1, err));
	TL_TRY(tl_afile_clean_stale(out, &res->stale_files, &res->stale_bytes, err));
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3;
	proto.height = (uint32_t)o->height;
	proto.width = (uint32_t)o->width;
	proto.dtype = o->dtype;
	proto.norm = k->c.norm;
	proto.filter = o->filter;
	proto.src_height = proto.src_width = 32;
	proto.n_label_fields = k->t.dataset == 10 ? 1 : 2;
	proto.chunk_records = o->chunk_records;
	TL_TRY(tl_shard_writer_open(&k->w, out, &proto, err));
	TL_CHECK(tl_shard_writer_record_bytes(k->w) == k->c.rec_out);
	return TL_OK;
}

/* A data member begins: check it belongs, then start its segment. */
static tl_status on_segment(packer *k, const slot *s, tl_pack_result *res, tl_err *err)
{
	TL_TRY(check_segment(k->o->input, &s->m, &k->t, err));
	k->c.rec_in = record_size(s->m.kind);
	k->c.label_bytes = k->c.rec_in - TL_CIFAR_PIXELS;
	if (!k->w)
		TL_TRY(open_writer(k, res, err));
	int train = s->m.kind == TL_MEMBER_C10_TRAIN || s->m.kind == TL_MEMBER_C100_TRAIN;
	TL_TRY(tl_shard_writer_segment(k->w, s->m.base, train ? "train" : "test",
				       (uint32_t)s->m.batch, err));
	k->member_first = 0;
	return TL_OK;
}

/* A block of records: check labels, convert in parallel, append. */
static tl_status on_data(packer *k, const slot *s, tl_pack_result *res, tl_err *err)
{
	TL_TRY(take_labels(k->o->input, s, k->member_first, &k->c, k->lab, err));
	k->c.raw = s->raw;
	tl_pool_split(k->c.pool, s->n, convert_range, &k->c);
	TL_TRY(tl_shard_writer_append(k->w, k->c.out, k->lab, s->n, err));
	k->member_first += s->n;
	res->records += s->n;
	tl_progress_update(&k->prog, tl_cifar_consumed(k->p.src), tl_cifar_total(k->p.src),
			   res->records, "images");
	return TL_OK;
}

/* Take the reader's messages in order until the end, an error, or a
 * cancel request. */
static tl_status consume(packer *k, tl_pack_result *res, tl_err *err)
{
	for (;;) {
		if (k->o->cancel && *k->o->cancel)
			return tl_seterr(err, TL_EINTR, "%s: interrupted; no output written",
					 k->o->input);
		uint64_t ticket;
		int i = tl_queue_take(k->p.q, &ticket);
		TL_CHECK(i >= 0); /* only this thread closes the queue */
		const slot *s = &k->p.slots[i];
		tl_status st = TL_OK;
		switch (s->type) {
		case MSG_ERROR:
			*err = s->err;
			return TL_EFORMAT;
		case MSG_END:
			return TL_OK;
		case MSG_META:
			st = on_meta(k, s, err);
			break;
		case MSG_SEGMENT:
			st = on_segment(k, s, res, err);
			break;
		case MSG_DATA:
			st = on_data(k, s, res, err);
			break;
		}
		if (st != TL_OK)
			return st;
		tl_queue_release(k->p.q);
	}
}

/* Dataset name and class names into the header: from the archive's name
 * lists when it had them, else the CIFAR-10 names / class_N placeholders. */
static void fill_names(const packer *k, tl_shard_info *in)
{
	const tally *t = &k->t;
	if (t->dataset == 10) {
		strcpy(in->dataset, "cifar10");
		in->n_classes = 10;
		for (int i = 0; i < 10; i++)
			strcpy(in->class_names[i], t->have_meta ? k->fine[i] : tl_cifar10_names[i]);
		return;
	}
	strcpy(in->dataset, "cifar100");
	in->n_classes = 100;
	in->n_coarse = 20;
	for (int i = 0; i < 100; i++) {
		if (t->have_fine)
			strcpy(in->class_names[i], k->fine[i]);
		else
			snprintf(in->class_names[i], TL_SHARD_NAME_MAX, "class_%d", i);
	}
	for (int i = 0; i < 20; i++) {
		if (t->have_coarse)
			strcpy(in->coarse_names[i], k->coarse[i]);
		else
			snprintf(in->coarse_names[i], TL_SHARD_NAME_MAX, "superclass_%d", i);
	}
}

/* The whole archive was read: check it was complete, record names and the
 * source's size and hash, fill res, and publish the shard. */
static tl_status finish_shard(packer *k, tl_pack_result *res, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	TL_TRY(check_complete(o->input, &k->t, err));
	tl_shard_info *in = tl_shard_writer_info(k->w);
	fill_names(k, in);
	const char *base = strrchr(o->input, '/');
	snprintf(in->source_name, sizeof in->source_name, "%s", base && base[1] ? base + 1 : o->input);
	TL_TRY(tl_cifar_finish(k->p.src, &in->source_size, &in->source_hash, err));
	for (uint32_t i = 0; i < in->n_splits; i++) {
		if (strcmp(in->splits[i].name, "train") == 0)
			res->train = in->splits[i].count;
		else
			res->test = in->splits[i].count;
	}
	snprintf(res->dataset, sizeof res->dataset, "%s", in->dataset);
	tl_shard_writer *wf = k->w;
	k->w = NULL; /* finish frees it, whatever happens */
	return tl_shard_writer_finish(wf, err);
}

tl_status tl_pack(const tl_pack_opts *o, tl_pack_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	double t0 = tl_now();
	TL_TRY(check_opts(o, err));
	packer *k = calloc(1, sizeof *k);
	if (!k)
		return tl_seterr(err, TL_ENOMEM, "out of memory");
	k->o = o;
	tl_progress_init(&k->prog, "tlpack", o->quiet);
	tl_status st = pack_setup(k, err);
	producer_arg pa = {&k->p, o->input};
	if (st == TL_OK) {
		if (pthread_create(&k->reader, NULL, producer, &pa) != 0)
			st = tl_seterr(err, TL_ENOMEM, "cannot start the reader thread");
		else
			k->reader_running = 1;
	}
	if (st == TL_OK) {
		st = consume(k, res, err);
		stop_reader(k); /* whatever happened, then finish or discard */
		tl_progress_end(&k->prog);
	}
	if (st == TL_OK && (st = finish_shard(k, res, err)) == TL_OK)
		res->seconds = tl_now() - t0;
	pack_free(k);
	free(k);
	return st;
}
