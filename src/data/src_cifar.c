/* src_cifar.c - the CIFAR-10/100 binary version as a tl_source (see
 * source.h): which members hold records and which class names, record
 * sizes and label ranges, and the completeness rules.  Member streaming
 * (tarball, gzip, directory) is cifar.c's. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/cifar.h"
#include "data/source.h"

#define META_MAX 65536    /* bytes of a class name list */
#define READ_RECORDS 256  /* records read from the member at once */

typedef struct {
	const char *input;
	tl_cifar_src *src;
	tl_source_info *info;
	/* the member being read */
	tl_cifar_member m;
	int in_data;        /* a data member's SEGMENT went out; records follow */
	int rec;            /* bytes per record of this member */
	uint64_t left;      /* records of the member not yet read into buf */
	uint8_t *buf;       /* READ_RECORDS raw records */
	size_t n_buf, next; /* records in buf, the next to hand out */
	uint64_t index;     /* member record index of buf[next] */
	/* completeness */
	int dataset;        /* 0 unknown, 10, 100 */
	unsigned seen; /* bit per data member: C10 batch 1..5 -> 1..5, test -> 6; C100 train 1, test 2 */
	int have_meta, have_fine, have_coarse;
	char fine[100][TL_SHARD_V2_NAME_MAX], coarse[20][TL_SHARD_V2_NAME_MAX];
	uint8_t *text; /* META_MAX bytes */
} cifar_state;

static int is_data(tl_member_kind k)
{
	return k == TL_MEMBER_C10_TRAIN || k == TL_MEMBER_C10_TEST ||
	       k == TL_MEMBER_C100_TRAIN || k == TL_MEMBER_C100_TEST;
}

static int is_meta(tl_member_kind k)
{
	return k == TL_MEMBER_C10_META || k == TL_MEMBER_C100_FINE || k == TL_MEMBER_C100_COARSE;
}

static int record_size(tl_member_kind k)
{
	return k == TL_MEMBER_C100_TRAIN || k == TL_MEMBER_C100_TEST ? TL_CIFAR100_RECORD
								     : TL_CIFAR10_RECORD;
}

/* A directory is ours when it holds the standard folder or CIFAR members
 * themselves; any file is ours (an archive: cifar.c says if it is not). */
static int cifar_probe(const char *path, const struct stat *sb)
{
	if (!S_ISDIR(sb->st_mode))
		return 1;
	char *p;
	struct stat s2;
	static const char *const subs[] = {"cifar-10-batches-bin", "cifar-100-binary"};
	for (int i = 0; i < 2; i++) {
		if (asprintf(&p, "%s/%s", path, subs[i]) < 0)
			return 0;
		int yes = stat(p, &s2) == 0 && S_ISDIR(s2.st_mode);
		free(p);
		if (yes)
			return 1;
	}
	DIR *d = opendir(path);
	if (!d)
		return 1; /* cifar.c reports why it cannot be listed */
	struct dirent *e;
	int yes = 0;
	while (!yes && (e = readdir(d))) {
		int batch;
		yes = tl_cifar_classify(e->d_name, &batch) != TL_MEMBER_OTHER;
	}
	closedir(d);
	return yes;
}

static void cifar_close(void *st)
{
	cifar_state *s = st;
	if (!s)
		return;
	tl_cifar_close(s->src);
	free(s->buf);
	free(s->text);
	free(s);
}

static tl_status cifar_open(void **out, const char *path, const tl_source_opts *o,
			    tl_source_info *info, tl_err *err)
{
	*out = NULL;
	if (o->test_fraction > 0)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: --test: CIFAR has its own test split (expected no --test)", path);
	cifar_state *s = calloc(1, sizeof *s);
	if (!s || !(s->buf = malloc((size_t)READ_RECORDS * TL_CIFAR100_RECORD)) ||
	    !(s->text = malloc(META_MAX))) {
		cifar_close(s);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	s->input = path;
	s->info = info;
	info->src_height = info->src_width = 32;
	tl_status st = tl_cifar_open(&s->src, path, err);
	if (st != TL_OK) {
		cifar_close(s);
		return st;
	}
	*out = s;
	return TL_OK;
}

/* Split text into names: one per non-empty line, trimmed. */
static tl_status parse_names(const char *input, const tl_cifar_member *m, const uint8_t *text,
			     size_t n, char names[][TL_SHARD_V2_NAME_MAX], uint32_t want,
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
			if (b - a >= TL_SHARD_V2_NAME_MAX)
				return tl_seterr(err, TL_EFORMAT,
						 "%s: %s: class name on line %u too long (expected < %d bytes, got %zu)",
						 input, m->path, got + 1, TL_SHARD_V2_NAME_MAX, b - a);
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

/* A class name list member: read and parse it. */
static tl_status read_meta(cifar_state *s, tl_err *err)
{
	const tl_cifar_member *m = &s->m;
	if (m->size > META_MAX)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: class name list too large (expected at most %d bytes, got %llu)",
				 s->input, m->path, META_MAX, (unsigned long long)m->size);
	size_t n = (size_t)m->size;
	TL_TRY(tl_cifar_read(s->src, s->text, n, err));
	if (m->kind == TL_MEMBER_C10_META) {
		s->have_meta = 1;
		return parse_names(s->input, m, s->text, n, s->fine, 10, err);
	}
	if (m->kind == TL_MEMBER_C100_FINE) {
		s->have_fine = 1;
		return parse_names(s->input, m, s->text, n, s->fine, 100, err);
	}
	s->have_coarse = 1;
	return parse_names(s->input, m, s->text, n, s->coarse, 20, err);
}

/* A data member begins: check its name, size and that it belongs to the
 * dataset; fill the event's SEGMENT fields. */
static tl_status begin_data(cifar_state *s, tl_src_event *ev, tl_err *err)
{
	const tl_cifar_member *m = &s->m;
	int rec = record_size(m->kind);
	if (m->kind == TL_MEMBER_C10_TRAIN && (m->batch < 1 || m->batch > 5))
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: unexpected training batch (expected data_batch_1.bin .. data_batch_5.bin)",
				 s->input, m->path);
	if (m->size == 0 || m->size % (uint64_t)rec)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: size is not a whole number of records (expected a non-zero multiple of %d bytes, got %llu = %llu records + %llu bytes)",
				 s->input, m->path, rec, (unsigned long long)m->size,
				 (unsigned long long)(m->size / rec), (unsigned long long)(m->size % rec));
	int ds = rec == TL_CIFAR100_RECORD ? 100 : 10;
	if (s->dataset && s->dataset != ds)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: CIFAR-%d member in a CIFAR-%d archive (expected one dataset)",
				 s->input, m->path, ds, s->dataset);
	unsigned bit = m->kind == TL_MEMBER_C10_TRAIN  ? 1u << m->batch
		       : m->kind == TL_MEMBER_C10_TEST ? 1u << 6
		       : m->kind == TL_MEMBER_C100_TRAIN ? 1u << 1
							 : 1u << 2;
	if (s->seen & bit)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: member appears twice (expected once)",
				 s->input, m->path);
	s->seen |= bit;
	if (!s->dataset) {
		s->dataset = ds;
		tl_source_info *in = s->info;
		snprintf(in->dataset, sizeof in->dataset, "cifar%d", ds);
		snprintf(in->output, sizeof in->output, "cifar%d.tls", ds);
		in->n_label_fields = ds == 10 ? 1 : 2;
	}
	s->rec = rec;
	s->left = m->size / (uint64_t)rec;
	s->n_buf = s->next = 0;
	s->index = 0;
	s->in_data = 1;
	int train = m->kind == TL_MEMBER_C10_TRAIN || m->kind == TL_MEMBER_C100_TRAIN;
	ev->type = TL_SRC_SEGMENT;
	ev->member = m->base;
	ev->split = train ? "train" : "test";
	ev->order = (uint32_t)m->batch;
	ev->expect = s->left;
	return TL_OK;
}

/* The next record of the current data member: refill buf when empty and
 * check the label. */
static tl_status next_record(cifar_state *s, tl_src_event *ev, tl_err *err)
{
	if (s->next == s->n_buf) {
		size_t n = s->left < READ_RECORDS ? (size_t)s->left : READ_RECORDS;
		TL_TRY(tl_cifar_read(s->src, s->buf, n * (size_t)s->rec, err));
		s->left -= n;
		s->n_buf = n;
		s->next = 0;
	}
	const uint8_t *r = s->buf + s->next * (size_t)s->rec;
	int label_bytes = s->rec - TL_CIFAR_PIXELS;
	if (label_bytes == 1) {
		if (r[0] >= 10)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: %s: record %llu: label out of range (expected 0..9, got %u)",
					 s->input, s->m.path, (unsigned long long)s->index, r[0]);
		ev->label[0] = r[0];
		ev->label[1] = 0;
	} else {
		if (r[0] >= 20 || r[1] >= 100)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: %s: record %llu: label out of range (expected coarse 0..19 and fine 0..99, got %u and %u)",
					 s->input, s->m.path, (unsigned long long)s->index, r[0], r[1]);
		ev->label[0] = r[1];
		ev->label[1] = r[0];
	}
	ev->type = TL_SRC_RECORD;
	ev->data = r + label_bytes;
	ev->size = TL_CIFAR_PIXELS;
	ev->name = s->m.path;
	s->next++;
	s->index++;
	return TL_OK;
}

static tl_status cifar_next(void *st, tl_src_event *ev, tl_err *err)
{
	cifar_state *s = st;
	memset(ev, 0, sizeof *ev);
	for (;;) {
		if (s->in_data && (s->next < s->n_buf || s->left > 0))
			return next_record(s, ev, err);
		s->in_data = 0;
		int done;
		TL_TRY(tl_cifar_next(s->src, &s->m, &done, err));
		if (done) {
			ev->type = TL_SRC_END;
			return TL_OK;
		}
		if (is_meta(s->m.kind))
			TL_TRY(read_meta(s, err));
		else if (is_data(s->m.kind))
			return begin_data(s, ev, err);
	}
}

static tl_status check_complete(const cifar_state *s, tl_err *err)
{
	const char *input = s->input;
	if (!s->dataset)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: no CIFAR batches found (expected cifar-10-batches-bin/data_batch_1..5.bin and test_batch.bin, or cifar-100-binary/train.bin and test.bin)",
				 input);
	if (s->dataset == 10) {
		for (int b = 1; b <= 5; b++)
			if (!(s->seen & (1u << b)))
				return tl_seterr(err, TL_EFORMAT,
						 "%s: cifar-10-batches-bin/data_batch_%d.bin: missing (expected data_batch_1..5.bin and test_batch.bin)",
						 input, b);
		if (!(s->seen & (1u << 6)))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-10-batches-bin/test_batch.bin: missing (expected data_batch_1..5.bin and test_batch.bin)",
					 input);
	} else {
		if (!(s->seen & 2u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-binary/train.bin: missing (expected train.bin and test.bin)",
					 input);
		if (!(s->seen & 4u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-binary/test.bin: missing (expected train.bin and test.bin)",
					 input);
	}
	return TL_OK;
}

/* Class names from the archive's name lists when it had them, else the
 * CIFAR-10 names / class_N placeholders; then the source's size and hash. */
static tl_status cifar_finish(void *st, tl_err *err)
{
	cifar_state *s = st;
	TL_TRY(check_complete(s, err));
	tl_source_info *in = s->info;
	/* CIFAR's names are short: the shard stays version 1 */
	char buf[TL_SHARD_V2_NAME_MAX];
	if (s->dataset == 10) {
		in->n_classes = 10;
		for (uint32_t i = 0; i < 10; i++)
			TL_TRY(tl_src_set_name(in, 0, i, s->have_meta ? s->fine[i] : tl_cifar10_names[i],
					       s->input, err));
	} else {
		in->n_classes = 100;
		in->n_coarse = 20;
		for (uint32_t i = 0; i < 100; i++) {
			snprintf(buf, sizeof buf, "class_%u", i);
			TL_TRY(tl_src_set_name(in, 0, i, s->have_fine ? s->fine[i] : buf, s->input, err));
		}
		for (uint32_t i = 0; i < 20; i++) {
			snprintf(buf, sizeof buf, "superclass_%u", i);
			TL_TRY(tl_src_set_name(in, 1, i, s->have_coarse ? s->coarse[i] : buf, s->input, err));
		}
	}
	return tl_cifar_finish(s->src, &in->source_size, &in->source_hash, err);
}

static uint64_t cifar_consumed(void *st)
{
	return tl_cifar_consumed(((cifar_state *)st)->src);
}

static uint64_t cifar_total(void *st)
{
	return tl_cifar_total(((cifar_state *)st)->src);
}

const tl_source tl_source_cifar = {
	.name = "cifar-binary",
	.probe = cifar_probe,
	.open = cifar_open,
	.next = cifar_next,
	.finish = cifar_finish,
	.consumed = cifar_consumed,
	.total = cifar_total,
	.close = cifar_close,
};
