/* pack.c - the tlpack pipeline (see pack.h).  Source-agnostic: every
 * source is reached through its tl_source descriptor (source.h). */
#define _GNU_SOURCE
#include "data/pack.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afile.h"
#include "data/imgio.h"
#include "data/shard.h"
#include "data/source.h"
#include "infile.h"
#include "pool.h"
#include "progress.h"

#ifndef TL_PACK_BLOCK_BYTES
#define TL_PACK_BLOCK_BYTES (8u << 20) /* converted bytes per block */
#endif
#ifndef TL_PACK_ARENA_BYTES
#define TL_PACK_ARENA_BYTES (32u << 20) /* source bytes per block, beyond one record */
#endif
#ifndef TL_PACK_SLOTS
#define TL_PACK_SLOTS 4 /* blocks in flight between reader and converter */
#endif

enum msg_type { MSG_SEGMENT, MSG_DATA, MSG_END, MSG_ERROR };

/* One record of a DATA block: its bytes and name live in the slot's arena. */
typedef struct {
	size_t off, size; /* data at arena + off */
	size_t name_off;  /* NUL-terminated name at arena + name_off */
	size_t err_off;   /* SIZE_MAX, or the source's reason it is unreadable */
	size_t rel_off;   /* SIZE_MAX, or the name kept in the shard (source.h: rel) */
	uint16_t label[2];
} rec_ent;

typedef struct {
	enum msg_type type;
	/* SEGMENT */
	char member[40], split[24];
	uint32_t order;
	/* DATA */
	size_t n;      /* records */
	rec_ent *recs; /* block entries */
	uint8_t *arena;
	size_t used, cap;
	tl_status st; /* ERROR */
	tl_err err;
} slot;

/* The reader thread fills slots with messages; the converter (calling
 * thread) takes them in order.  Slots are handed over by a tl_queue. */
typedef struct {
	const tl_source *src;
	void *state;
	tl_source_info info;
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

/* Copy n bytes (plus a NUL when text) into the slot's arena at *off. */
static int arena_put(slot *s, const void *b, size_t n, int text, size_t *off)
{
	size_t need = s->used + n + (size_t)text;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 1u << 16;
		while (cap < need)
			cap *= 2;
		uint8_t *a = realloc(s->arena, cap);
		if (!a)
			return -1;
		s->arena = a, s->cap = cap;
	}
	*off = s->used;
	if (n)
		memcpy(s->arena + s->used, b, n);
	if (text)
		s->arena[s->used + n] = 0;
	s->used = need;
	return 0;
}

/* Turn the slot into an error message and publish it. */
static void publish_error(pipe_t *p, slot *s, uint64_t t, tl_status st, const tl_err *e)
{
	s->type = MSG_ERROR;
	s->st = st;
	s->err = *e;
	tl_queue_publish(p->q, t);
}

static void *producer(void *arg)
{
	pipe_t *p = arg;
	slot *cur = NULL; /* the DATA block being filled */
	uint64_t ct = 0, t;
	for (;;) {
		tl_src_event ev;
		tl_err e;
		tl_status st = p->src->next(p->state, &ev, &e);
		if (st != TL_OK) {
			slot *s = cur ? cur : slot_acquire(p, &t);
			if (s)
				publish_error(p, s, cur ? ct : t, st, &e);
			return NULL;
		}
		if (ev.type == TL_SRC_RECORD) {
			if (!cur) {
				if (!(cur = slot_acquire(p, &ct)))
					return NULL;
				cur->type = MSG_DATA;
				cur->n = cur->used = 0;
			}
			rec_ent *r = &cur->recs[cur->n];
			const char *name = ev.name ? ev.name : "";
			r->err_off = r->rel_off = SIZE_MAX;
			r->size = ev.size;
			memcpy(r->label, ev.label, sizeof r->label);
			if (arena_put(cur, ev.data, ev.size, 0, &r->off) ||
			    arena_put(cur, name, strlen(name), 1, &r->name_off) ||
			    (ev.error && arena_put(cur, ev.error, strlen(ev.error), 1, &r->err_off)) ||
			    (ev.rel && arena_put(cur, ev.rel, strlen(ev.rel), 1, &r->rel_off))) {
				tl_seterr(&e, TL_ENOMEM, "%s: out of memory for a block of records",
					  name);
				publish_error(p, cur, ct, TL_ENOMEM, &e);
				return NULL;
			}
			if (++cur->n == p->block || cur->used >= TL_PACK_ARENA_BYTES) {
				tl_queue_publish(p->q, ct);
				cur = NULL;
			}
			continue;
		}
		if (cur) { /* a segment or the end closes the block */
			tl_queue_publish(p->q, ct);
			cur = NULL;
		}
		slot *s = slot_acquire(p, &t);
		if (!s)
			return NULL;
		if (ev.type == TL_SRC_END) {
			s->type = MSG_END;
			tl_queue_publish(p->q, t);
			return NULL;
		}
		s->type = MSG_SEGMENT;
		snprintf(s->member, sizeof s->member, "%s", ev.member);
		snprintf(s->split, sizeof s->split, "%s", ev.split);
		s->order = ev.order;
		tl_queue_publish(p->q, t);
	}
}

/* ---- converter (calling thread) ---- */

/* A pool thread's buffers for encoded records, grown as needed. */
typedef struct {
	tl_fit_scratch fs;
} worker;

typedef struct {
	const tl_pack_opts *o;
	int height, width; /* output size */
	tl_dtype dtype;
	tl_fit fit;
	int encoded;
	tl_resize rz; /* raw sources: src size -> output size */
	tl_norm norm;
	tl_img_opts img;
	float **scratch; /* per pool thread (raw) */
	worker *wk;      /* per pool thread (encoded) */
	tl_pool *pool;
	/* current block */
	const slot *blk;
	uint8_t *out;
	uint32_t rec_out;
	tl_status *rst; /* per record of the block (encoded) */
	tl_err *rerr;
} conv_t;

static void convert_range(void *ctx, size_t b, size_t e, int tid)
{
	conv_t *c = ctx;
	for (size_t i = b; i < e; i++)
		tl_image_convert(c->blk->arena + c->blk->recs[i].off, &c->rz, &c->norm, c->dtype,
				 c->out + i * c->rec_out, c->scratch[tid]);
}

static void decode_range(void *ctx, size_t b, size_t e, int tid)
{
	conv_t *c = ctx;
	worker *w = &c->wk[tid];
	for (size_t i = b; i < e; i++) {
		const rec_ent *r = &c->blk->recs[i];
		const char *name = (const char *)c->blk->arena + r->name_off;
		tl_err *err = &c->rerr[i];
		if (r->err_off != SIZE_MAX) {
			c->rst[i] = tl_seterr(err, TL_EFORMAT, "%s",
					      (const char *)c->blk->arena + r->err_off);
			continue;
		}
		tl_img im;
		c->rst[i] = tl_img_decode_opts(c->blk->arena + r->off, r->size, name, &c->img, &im,
					       err);
		if (c->rst[i] != TL_OK)
			continue;
		c->rst[i] = tl_fit_image(&im, c->fit, c->height, c->width, c->o->filter, &c->norm,
					  c->dtype, c->out + i * c->rec_out, &w->fs, err);
		tl_img_free(&im);
	}
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
	uint16_t *lab; /* labels of the current block */
	const char **names; /* and names (into the slot's arena) */
	int any_names;      /* the source names its records */
	uint64_t *class_count;
} packer;

/* Options the pipeline cannot run with fail here, before any work: the
 * image size, and an output file that cannot be created. */
static tl_status check_opts(const tl_pack_opts *o, tl_err *err)
{
	if (!(o->height == 0 && o->width == 0) &&
	    (o->height < 1 || o->height > TL_PACK_MAX_SIZE || o->width < 1 ||
	     o->width > TL_PACK_MAX_SIZE))
		return tl_seterr(err, TL_EUSAGE, "size %dx%d out of range (expected 1..%d)",
				 o->height, o->width, TL_PACK_MAX_SIZE);
	if (!(o->test_fraction >= 0 && o->test_fraction < 1))
		return tl_seterr(err, TL_EUSAGE, "--test %g out of range (expected 0 <= F < 1)",
				 o->test_fraction);
	if (o->output) {
		tl_afile probe;
		TL_TRY(tl_afile_open_file(&probe, o->output, err));
		tl_afile_abort(&probe);
	}
	return TL_OK;
}

/* Find and open the source, then settle what depends on its kind: size,
 * dtype, fit. */
static tl_status open_source(packer *k, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	conv_t *c = &k->c;
	k->p.src = o->source ? tl_source_named(o->source, err) : tl_source_find(o->input, err);
	if (!k->p.src)
		return TL_EIO;
	tl_source_opts so = {o->test_fraction, o->seed, o->strict, o->root};
	TL_TRY(k->p.src->open(&k->p.state, o->input, &so, &k->p.info, err));
	c->encoded = k->p.info.encoded;
	if (!c->encoded && o->fit != TL_FIT_AUTO)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: --fit %s: this source's images are resized whole (expected no --fit)",
				 o->input, tl_fit_name(o->fit));
	c->height = o->height ? o->height : c->encoded ? TL_PACK_PHOTO_SIZE : k->p.info.src_height;
	c->width = o->width ? o->width : c->encoded ? TL_PACK_PHOTO_SIZE : k->p.info.src_width;
	if (c->height < 1 || c->height > TL_PACK_MAX_SIZE || c->width < 1 ||
	    c->width > TL_PACK_MAX_SIZE)
		return tl_seterr(err, TL_EUSAGE, "size %dx%d out of range (expected 1..%d)",
				 c->height, c->width, TL_PACK_MAX_SIZE);
	c->dtype = c->encoded && !o->dtype_set ? TL_PACK_PHOTO_DTYPE : o->dtype;
	c->fit = c->encoded && o->fit == TL_FIT_AUTO ? TL_FIT_CROP : o->fit;
	return TL_OK;
}

/* Open the input, make the resizer, thread pool, block buffers, slots and
 * queue.  On failure k holds what was made (pack_free frees it). */
static tl_status pack_setup(packer *k, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	conv_t *c = &k->c;
	c->o = o;
	TL_TRY(open_source(k, err));
	tl_norm_preset(o->norm, &c->norm);
	if (c->encoded) {
		TL_TRY(tl_img_opts_env(&c->img, err));
		c->img.target_w = c->width;
		c->img.target_h = c->height;
	} else {
		TL_TRY(tl_resize_init(&c->rz, k->p.info.src_height, k->p.info.src_width, c->height,
				      c->width, o->filter, err));
	}
	TL_TRY(tl_pool_new(&c->pool, o->threads, err));
	TL_TRY(tl_queue_new(&k->p.q, TL_PACK_SLOTS, err));
	uint64_t pix = 3ull * c->height * c->width * tl_dtype_size(c->dtype);
	c->rec_out = (uint32_t)tl_align_up(pix, TL_SHARD_RECORD_ALIGN);
	size_t block = TL_PACK_BLOCK_BYTES / c->rec_out;
	k->p.block = block < 1 ? 1 : block > 2048 ? 2048 : block;
	int nt = tl_pool_size(c->pool);
	c->out = calloc(k->p.block, c->rec_out);
	k->lab = malloc(k->p.block * 2 * sizeof *k->lab);
	k->names = calloc(k->p.block, sizeof *k->names);
	c->scratch = calloc((size_t)nt, sizeof *c->scratch);
	c->wk = calloc((size_t)nt, sizeof *c->wk);
	k->class_count = calloc(TL_SHARD_MAX_CLASSES, sizeof *k->class_count); /* labels are < 65535 */
	int ok = c->out && k->lab && k->names && c->scratch && c->wk && k->class_count;
	if (ok && c->encoded) {
		c->rst = calloc(k->p.block, sizeof *c->rst);
		c->rerr = calloc(k->p.block, sizeof *c->rerr);
		ok = c->rst && c->rerr;
	}
	for (int i = 0; ok && !c->encoded && i < nt; i++)
		ok = (c->scratch[i] = malloc(tl_image_scratch_floats(&c->rz) * sizeof(float))) != NULL;
	for (int i = 0; ok && i < TL_PACK_SLOTS; i++)
		ok = (k->p.slots[i].recs = calloc(k->p.block, sizeof(rec_ent))) != NULL;
	if (!ok)
		return tl_seterr(err, TL_ENOMEM, "out of memory for %zu-record blocks", k->p.block);
	return TL_OK;
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
	conv_t *c = &k->c;
	stop_reader(k);
	if (k->w)
		tl_shard_writer_abort(k->w);
	if (k->p.src)
		k->p.src->close(k->p.state);
	tl_src_info_free(&k->p.info);
	for (int i = 0; i < TL_PACK_SLOTS; i++) {
		free(k->p.slots[i].recs);
		free(k->p.slots[i].arena);
	}
	for (int i = 0; c->pool && i < tl_pool_size(c->pool); i++) {
		if (c->scratch)
			free(c->scratch[i]);
		if (c->wk)
			tl_fit_scratch_free(&c->wk[i].fs);
	}
	free(c->scratch);
	free(c->wk);
	free(c->out);
	free(c->rst);
	free(c->rerr);
	free(k->lab);
	free(k->names);
	free(k->class_count);
	tl_pool_free(c->pool);
	tl_resize_free(&c->rz);
	tl_queue_free(k->p.q);
}

/* Whether out may be written, checked before the first record (a CIFAR
 * source knows its default name, cifar10.tls or cifar100.tls, only from
 * its first member): afile's rule (no device, no input under any name),
 * then a shard already there is kept unless o->force, so that packing
 * twice to cifar10.tls cannot silently replace a shard other runs were
 * made from. */
static tl_status check_output(const tl_pack_opts *o, const char *out, tl_err *err)
{
	struct stat sb;
	tl_infile_note(o->input); /* a directory input is checked file by file */
	TL_TRY(tl_afile_check(out, 1, err));
	if (o->force || lstat(out, &sb) != 0 || !(S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)))
		return TL_OK;
	return tl_seterr(err, TL_EUSAGE, "%s already exists; replace it with --force or choose another -o",
			 out);
}

/* The first segment: open the writer, named after the source unless
 * o->output says otherwise. */
static tl_status open_writer(packer *k, tl_pack_result *res, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	const tl_source_info *si = &k->p.info;
	const char *out = o->output ? o->output : si->output;
	snprintf(res->output, sizeof res->output, "%s", out);
	TL_TRY(check_output(o, out, err));
	TL_TRY(tl_afile_clean_stale(out, &res->stale_files, &res->stale_bytes, err));
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3;
	proto.height = (uint32_t)k->c.height;
	proto.width = (uint32_t)k->c.width;
	proto.dtype = k->c.dtype;
	proto.norm = k->c.norm;
	proto.filter = o->filter;
	proto.src_height = (uint32_t)si->src_height;
	proto.src_width = (uint32_t)si->src_width;
	proto.n_label_fields = si->n_label_fields;
	proto.chunk_records = o->chunk_records;
	TL_TRY(tl_shard_writer_open(&k->w, out, &proto, err));
	TL_CHECK(tl_shard_writer_record_bytes(k->w) == k->c.rec_out);
	return TL_OK;
}

static tl_status on_segment(packer *k, const slot *s, tl_pack_result *res, tl_err *err)
{
	if (!k->w)
		TL_TRY(open_writer(k, res, err));
	return tl_shard_writer_segment(k->w, s->member, s->split, s->order, err);
}

/* Encoded records of a block that failed: fatal under --strict (or when
 * not a bad file, e.g. out of memory), else reported, counted and left
 * out.  Returns the records kept, moved to the front of out and lab. */
static tl_status drop_failed(packer *k, const slot *s, size_t *kept, tl_pack_result *res,
			     tl_err *err)
{
	conv_t *c = &k->c;
	size_t j = 0;
	int lf = (int)k->p.info.n_label_fields;
	for (size_t i = 0; i < s->n; i++) {
		if (c->rst[i] != TL_OK) {
			if (k->o->strict || c->rst[i] != TL_EFORMAT) {
				*err = c->rerr[i];
				return c->rst[i];
			}
			if (k->o->warn)
				k->o->warn(k->o->warn_ctx, c->rerr[i].msg);
			res->skipped_bad++;
			continue;
		}
		if (j != i) {
			memcpy(c->out + j * c->rec_out, c->out + i * c->rec_out, c->rec_out);
			memcpy(k->lab + j * lf, k->lab + i * lf, (size_t)lf * sizeof *k->lab);
			k->names[j] = k->names[i];
		}
		j++;
	}
	*kept = j;
	return TL_OK;
}

/* A block of records: convert in parallel, append. */
static tl_status on_data(packer *k, const slot *s, tl_pack_result *res, tl_err *err)
{
	conv_t *c = &k->c;
	const tl_source_info *si = &k->p.info;
	int lf = (int)si->n_label_fields;
	TL_CHECK(k->w != NULL); /* sources begin with a SEGMENT */
	size_t raw = (size_t)3 * si->src_height * si->src_width;
	for (size_t i = 0; i < s->n; i++) {
		if (!c->encoded && s->recs[i].size != raw)
			return tl_seterr(err, TL_EFORMAT, "%s: %s: record of %zu bytes (expected %zu)",
					 k->o->input, (const char *)s->arena + s->recs[i].name_off,
					 s->recs[i].size, raw);
		memcpy(k->lab + i * lf, s->recs[i].label, (size_t)lf * sizeof *k->lab);
		size_t ro = s->recs[i].rel_off;
		k->names[i] = ro == SIZE_MAX ? NULL : (const char *)s->arena + ro;
		k->any_names |= ro != SIZE_MAX;
	}
	c->blk = s;
	size_t n = s->n;
	if (c->encoded) {
		tl_pool_split(c->pool, s->n, decode_range, c);
		TL_TRY(drop_failed(k, s, &n, res, err));
	} else {
		tl_pool_split(c->pool, s->n, convert_range, c);
	}
	TL_TRY(tl_shard_writer_append_named(k->w, c->out, k->lab, k->any_names ? k->names : NULL, n,
					    err));
	for (size_t i = 0; i < n; i++)
		k->class_count[k->lab[i * lf]]++;
	res->records += n;
	tl_progress_update(&k->prog, k->p.src->consumed(k->p.state),
			   k->p.src->total(k->p.state), res->records, "images");
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
			return s->st;
		case MSG_END:
			return TL_OK;
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

/* The whole source was read: let it check it was complete, record its
 * names and identity, fill res, and publish the shard. */
static tl_status finish_shard(packer *k, tl_pack_result *res, tl_err *err)
{
	const tl_pack_opts *o = k->o;
	const tl_source_info *si = &k->p.info;
	TL_TRY(k->p.src->finish(k->p.state, err));
	if (!k->w)
		return tl_seterr(err, TL_EFORMAT, "%s: no images found", o->input);
	for (uint32_t i = 0; k->c.encoded && i < si->n_classes; i++)
		if (k->class_count[i] == 0)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: class '%s': none of its images could be read (expected at least one)",
					 o->input, si->class_names[i]);
	tl_shard_info *in = tl_shard_writer_info(k->w);
	snprintf(in->dataset, sizeof in->dataset, "%s", si->dataset);
	TL_TRY(tl_shard_writer_set_names(k->w, (const char *const *)si->class_names, si->n_classes,
					 (const char *const *)si->coarse_names, si->n_coarse, err));
	const char *base = strrchr(o->input, '/');
	snprintf(in->source_name, sizeof in->source_name, "%s", base && base[1] ? base + 1 : o->input);
	in->source_size = si->source_size;
	in->source_hash = si->source_hash;
	if (k->c.encoded) {
		in->fit = (uint32_t)k->c.fit;
		in->test_fraction = o->test_fraction;
		in->test_seed = o->test_fraction > 0 ? o->seed : 0;
	}
	for (uint32_t i = 0; i < in->n_splits; i++) {
		if (strcmp(in->splits[i].name, "train") == 0)
			res->train = in->splits[i].count;
		else if (strcmp(in->splits[i].name, "test") == 0)
			res->test = in->splits[i].count;
		else
			res->other += in->splits[i].count;
	}
	snprintf(res->dataset, sizeof res->dataset, "%s", in->dataset);
	res->n_classes = si->n_classes;
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
	if (st == TL_OK) {
		if (pthread_create(&k->reader, NULL, producer, &k->p) != 0)
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
	if (k->p.src) {
		snprintf(res->source, sizeof res->source, "%s", k->p.src->name);
		res->height = k->c.height, res->width = k->c.width;
		res->dtype = k->c.dtype, res->fit = k->c.fit;
		res->skipped_hidden = k->p.info.skipped_hidden;
		res->skipped_other = k->p.info.skipped_other;
		res->skipped_bad += k->p.info.skipped_bad;
	}
	pack_free(k);
	free(k);
	return st;
}
