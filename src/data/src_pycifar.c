/* src_pycifar.c - the CIFAR-10/100 python version as a tl_source (see
 * source.h): cifar-10-python.tar.gz (Keras saves the same file as
 * cifar-10-batches-py.tar.gz), cifar-100-python.tar.gz, or their
 * extracted folders.  Each batch is a pickled dict (protocol 2, written
 * by Python 2's cPickle) read by the restricted unpickler (pickle.h):
 *   CIFAR-10  data_batch_1..5, test_batch: b'data' uint8 [N][3072]
 *             (planes R, G, B as in the binary version), b'labels' [N];
 *             batches.meta: b'label_names' [10]
 *   CIFAR-100 train, test: b'data', b'fine_labels', b'coarse_labels';
 *             meta: b'fine_label_names' [100], b'coarse_label_names' [20]
 * (str keys, as torchvision's latin1 load or a Python 3 rewrite gives,
 * are taken as well).  The records, labels, segments and class names are
 * those of the binary version, so the shard's image section is the same
 * byte for byte.  Members are streamed by cifar.c (tarball, gzip, folder);
 * one batch is held in memory at a time (CIFAR-100's train: 150 MiB). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/cifar.h"
#include "data/pickle.h"
#include "data/source.h"
#include "infile.h"

#define MEMBER_MAX ((uint64_t)512 << 20) /* bytes of one pickled batch */

typedef enum { PY_OTHER, PY_C10_TRAIN, PY_C10_TEST, PY_C10_META, PY_C100_TRAIN, PY_C100_TEST, PY_C100_META } py_kind;

typedef struct {
	const char *input;
	char *dir;          /* folder given: the one holding the batches */
	tl_cifar_src *src;
	tl_source_info *info;
	tl_cifar_member m;
	py_kind kind;
	int batch;
	char what[1100];    /* "INPUT: MEMBER" for messages */
	/* the batch being handed out */
	uint8_t *buf;       /* the member's bytes */
	tl_pickle *pk;
	const uint8_t *pixels;
	uint8_t *fine, *coarse;
	uint64_t n_rec, next;
	/* the batches in the binary version's order (data_batch_1..5,
	 * test_batch; train, test), found by a first pass over the member
	 * headers; each is then reached by reading on, or from the start
	 * again when it lies behind (the python tarball's order is
	 * data_batch_4, test_batch, 3, 2, 5, 1) */
	const char *open_path;
	int planned;
	struct {
		py_kind kind;
		int batch;
		uint64_t index; /* position among the source's regular files */
		char path[512];
	} plan[8];
	int n_plan, next_plan;
	uint64_t cur_index;      /* regular files src has gone past */
	uint64_t done_bytes;     /* progress: source bytes of earlier passes */
	uint64_t passes;         /* progress: passes expected in all */
	uint64_t size, hash;     /* the source file's, from the first pass */
	/* completeness */
	int dataset;
	unsigned seen;
	int have_meta, have_fine, have_coarse;
	char fine_names[100][TL_SHARD_V2_NAME_MAX], coarse_names[20][TL_SHARD_V2_NAME_MAX];
} py_state;

static py_kind classify(const char *base, int *batch)
{
	*batch = 0;
	int n, len = 0;
	if (sscanf(base, "data_batch_%d%n", &n, &len) == 1 && (size_t)len == strlen(base)) {
		*batch = n;
		return PY_C10_TRAIN;
	}
	static const struct {
		const char *name;
		py_kind kind;
	} fixed[] = {
		{"test_batch", PY_C10_TEST}, {"batches.meta", PY_C10_META}, {"train", PY_C100_TRAIN},
		{"test", PY_C100_TEST},      {"meta", PY_C100_META},
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (!strcmp(base, fixed[i].name))
			return fixed[i].kind;
	return PY_OTHER;
}

static int prefixed(const char *name)
{
	if (!strncmp(name, "./", 2))
		name += 2;
	return !strncmp(name, "cifar-10-batches-py", 19) || !strncmp(name, "cifar-100-python", 16);
}

/* The name of the first member of a (gzipped) tar file, from its first
 * 512 bytes; "" when they cannot be read. */
static void first_member(const char *path, char name[101])
{
	name[0] = 0;
	tl_err err;
	int fd = tl_open_input(path, NULL, &err);
	if (fd < 0)
		return;
	uint8_t in[4096], hdr[512];
	ssize_t n = pread(fd, in, sizeof in, 0);
	close(fd);
	if (n < 2)
		return;
	size_t got = 0;
	if (in[0] == 0x1f && in[1] == 0x8b) {
		z_stream z = {0};
		if (inflateInit2(&z, 15 + 16) != Z_OK)
			return;
		z.next_in = in;
		z.avail_in = (uInt)n;
		z.next_out = hdr;
		z.avail_out = sizeof hdr;
		inflate(&z, Z_SYNC_FLUSH);
		got = sizeof hdr - z.avail_out;
		inflateEnd(&z);
	} else {
		got = (size_t)n < sizeof hdr ? (size_t)n : sizeof hdr;
		memcpy(hdr, in, got);
	}
	if (got < 512 || memcmp(hdr + 257, "ustar", 5))
		return;
	memcpy(name, hdr, 100);
	name[100] = 0;
}

static int is_file(const char *dir, const char *name, int want_dir)
{
	char *p;
	struct stat sb;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return 0;
	int yes = stat(p, &sb) == 0 && (want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
	free(p);
	return yes;
}

static const char *const py_dirs[] = {"cifar-10-batches-py", "cifar-100-python"};

/* Ours: a file named as the python archives are, or a tar whose first
 * member is in cifar-10-batches-py/ or cifar-100-python/ (reads one tar
 * header); a folder named so, holding such a folder, or holding
 * batches.meta, or meta and train files. */
static int py_probe(const char *path, const struct stat *sb)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (S_ISREG(sb->st_mode)) {
		static const char *const names[] = {"cifar-10-python.tar.gz", "cifar-100-python.tar.gz",
						    "cifar-10-batches-py.tar.gz"};
		for (int i = 0; i < 3; i++)
			if (!strcmp(base, names[i]))
				return 1;
		char first[101];
		first_member(path, first);
		return prefixed(first);
	}
	if (!S_ISDIR(sb->st_mode))
		return 0;
	char *p = strdup(path);
	if (!p)
		return 0;
	size_t len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = 0;
	slash = strrchr(p, '/');
	int yes = prefixed(slash ? slash + 1 : p);
	free(p);
	for (int i = 0; i < 2 && !yes; i++)
		yes = is_file(path, py_dirs[i], 1);
	return yes || is_file(path, "batches.meta", 0) ||
	       (is_file(path, "meta", 0) && is_file(path, "train", 0));
}

static void drop_batch(py_state *s)
{
	tl_pickle_free(s->pk);
	free(s->buf);
	free(s->fine);
	free(s->coarse);
	s->pk = NULL;
	s->buf = s->fine = s->coarse = NULL;
	s->n_rec = s->next = 0;
}

static void py_close(void *st)
{
	py_state *s = st;
	if (!s)
		return;
	drop_batch(s);
	tl_cifar_close(s->src);
	free(s->dir);
	free(s);
}

static tl_status py_open(void **out, const char *path, const tl_source_opts *o, tl_source_info *info,
			 tl_err *err)
{
	*out = NULL;
	if (o->test_fraction > 0)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: --test: CIFAR has its own test split (expected no --test)", path);
	py_state *s = calloc(1, sizeof *s);
	if (!s)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	s->input = path;
	s->info = info;
	info->src_height = info->src_width = 32;
	const char *open_path = path;
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		for (int i = 0; i < 2; i++)
			if (is_file(path, py_dirs[i], 1)) {
				if (asprintf(&s->dir, "%s/%s", path, py_dirs[i]) < 0) {
					s->dir = NULL;
					py_close(s);
					return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
				}
				open_path = s->dir;
				break;
			}
	s->open_path = s->dir ? s->dir : s->input;
	s->passes = 1;
	tl_status st = tl_cifar_open(&s->src, open_path, err);
	if (st != TL_OK) {
		py_close(s);
		return st;
	}
	*out = s;
	return TL_OK;
}

/* Read the current member whole and unpickle it; the root must be a dict. */
static tl_status load_member(py_state *s, const tl_pk_value **root, tl_err *err)
{
	const tl_cifar_member *m = &s->m;
	snprintf(s->what, sizeof s->what, "%s: %s", s->input, m->path);
	if (m->size == 0 || m->size > MEMBER_MAX)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: size out of range (expected 1 to %llu bytes, got %llu)", s->what,
				 (unsigned long long)MEMBER_MAX, (unsigned long long)m->size);
	if (!(s->buf = malloc((size_t)m->size)))
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->what);
	TL_TRY(tl_cifar_read(s->src, s->buf, (size_t)m->size, err));
	TL_TRY(tl_pickle_load(&s->pk, s->buf, (size_t)m->size, NULL, s->what, err));
	*root = tl_pickle_root(s->pk);
	if ((*root)->type != TL_PK_DICT)
		return tl_seterr(err, TL_EFORMAT, "%s: the pickle holds a %s (expected a dict)", s->what,
				 tl_pk_type_name((*root)->type));
	return TL_OK;
}

/* names[0..want) from the list under key in dict d. */
static tl_status read_names(py_state *s, const tl_pk_value *d, const char *key,
			    char names[][TL_SHARD_V2_NAME_MAX], uint32_t want, tl_err *err)
{
	const tl_pk_value *l = tl_pk_get(d, key);
	if (!l || l->type != TL_PK_LIST)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: %s (expected a list of %u class names)", s->what,
				 key, l ? tl_pk_type_name(l->type) : "missing", want);
	if (l->u.c.n != want)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: wrong number of class names (expected %u, got %zu)",
				 s->what, key, want, l->u.c.n);
	for (uint32_t i = 0; i < want; i++) {
		const tl_pk_value *v = l->u.c.items[i];
		if (v->type != TL_PK_BYTES && v->type != TL_PK_STR)
			return tl_seterr(err, TL_EFORMAT, "%s: %s[%u]: a %s (expected bytes or str)", s->what,
					 key, i, tl_pk_type_name(v->type));
		if (v->u.s.n == 0 || v->u.s.n >= TL_SHARD_V2_NAME_MAX || memchr(v->u.s.p, 0, v->u.s.n))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: %s[%u]: bad class name (expected 1 to %d bytes, no NUL, got %zu bytes)",
					 s->what, key, i, TL_SHARD_V2_NAME_MAX - 1, v->u.s.n);
		memcpy(names[i], v->u.s.p, v->u.s.n);
		names[i][v->u.s.n] = 0;
	}
	return TL_OK;
}

static tl_status read_meta(py_state *s, tl_err *err)
{
	const tl_pk_value *root;
	TL_TRY(load_member(s, &root, err));
	tl_status st;
	if (s->kind == PY_C10_META) {
		st = read_names(s, root, "label_names", s->fine_names, 10, err);
		s->have_meta = st == TL_OK;
	} else {
		st = read_names(s, root, "fine_label_names", s->fine_names, 100, err);
		if (st == TL_OK)
			st = read_names(s, root, "coarse_label_names", s->coarse_names, 20, err);
		s->have_fine = s->have_coarse = st == TL_OK;
	}
	drop_batch(s);
	return st;
}

/* labels[0..n) from the list under key, each below limit. */
static tl_status read_labels(py_state *s, const tl_pk_value *d, const char *key, uint64_t n, int limit,
			     uint8_t **out, tl_err *err)
{
	const tl_pk_value *l = tl_pk_get(d, key);
	if (!l || l->type != TL_PK_LIST)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: %s (expected a list of %llu labels)", s->what, key,
				 l ? tl_pk_type_name(l->type) : "missing", (unsigned long long)n);
	if (l->u.c.n != n)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: %s: wrong number of labels (expected %llu, one per row of data, got %zu)",
				 s->what, key, (unsigned long long)n, l->u.c.n);
	if (!(*out = malloc(n ? n : 1)))
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", s->what);
	for (uint64_t i = 0; i < n; i++) {
		const tl_pk_value *v = l->u.c.items[i];
		if (v->type != TL_PK_INT)
			return tl_seterr(err, TL_EFORMAT, "%s: record %llu: %s is a %s (expected an int)",
					 s->what, (unsigned long long)i, key, tl_pk_type_name(v->type));
		if (v->u.i < 0 || v->u.i >= limit)
			return tl_seterr(err, TL_EFORMAT,
					 "%s: record %llu: label out of range (expected %s 0..%d, got %lld)",
					 s->what, (unsigned long long)i, key, limit - 1, (long long)v->u.i);
		(*out)[i] = (uint8_t)v->u.i;
	}
	return TL_OK;
}

/* First pass: a data member's header.  Check its name and that it
 * belongs to the dataset and comes once; add it to the plan. */
static tl_status plan_data(py_state *s, tl_err *err)
{
	const tl_cifar_member *m = &s->m;
	int c100 = s->kind == PY_C100_TRAIN || s->kind == PY_C100_TEST;
	int ds = c100 ? 100 : 10;
	snprintf(s->what, sizeof s->what, "%s: %s", s->input, m->path);
	if (s->kind == PY_C10_TRAIN && (s->batch < 1 || s->batch > 5))
		return tl_seterr(err, TL_EFORMAT,
				 "%s: unexpected training batch (expected data_batch_1 .. data_batch_5)", s->what);
	if (s->dataset && s->dataset != ds)
		return tl_seterr(err, TL_EFORMAT, "%s: CIFAR-%d member in a CIFAR-%d archive (expected one dataset)",
				 s->what, ds, s->dataset);
	unsigned bit = s->kind == PY_C10_TRAIN ? 1u << s->batch
		       : s->kind == PY_C10_TEST ? 1u << 6
		       : s->kind == PY_C100_TRAIN ? 1u << 1
						  : 1u << 2;
	if (s->seen & bit)
		return tl_seterr(err, TL_EFORMAT, "%s: member appears twice (expected once)", s->what);
	s->seen |= bit;
	s->dataset = ds;
	/* sort key: the binary version's order */
	int key = s->kind == PY_C10_TRAIN ? s->batch : s->kind == PY_C10_TEST ? 6 : s->kind == PY_C100_TRAIN ? 1 : 2;
	int at = s->n_plan++;
	while (at > 0) {
		const int k2 = s->plan[at - 1].kind == PY_C10_TRAIN ? s->plan[at - 1].batch
			       : s->plan[at - 1].kind == PY_C10_TEST ? 6
			       : s->plan[at - 1].kind == PY_C100_TRAIN ? 1 : 2;
		if (k2 < key)
			break;
		s->plan[at] = s->plan[at - 1];
		at--;
	}
	s->plan[at].kind = s->kind;
	s->plan[at].batch = s->batch;
	s->plan[at].index = s->cur_index;
	snprintf(s->plan[at].path, sizeof s->plan[at].path, "%s", m->path);
	return TL_OK;
}

static tl_status check_complete(const py_state *s, tl_err *err);

/* The first pass: every member header, the class names, the plan, the
 * source's size and hash; then the completeness rules. */
static tl_status make_plan(py_state *s, tl_err *err)
{
	for (;;) {
		int done;
		TL_TRY(tl_cifar_next(s->src, &s->m, &done, err));
		if (done)
			break;
		s->cur_index++;
		s->kind = classify(s->m.base, &s->batch);
		if (s->kind == PY_C10_META || s->kind == PY_C100_META)
			TL_TRY(read_meta(s, err));
		else if (s->kind != PY_OTHER)
			TL_TRY(plan_data(s, err));
	}
	TL_TRY(tl_cifar_finish(s->src, &s->size, &s->hash, err));
	TL_TRY(check_complete(s, err));
	/* passes for progress: one more each time a batch lies behind */
	uint64_t pos = s->cur_index;
	for (int i = 0; i < s->n_plan; i++) {
		if (s->plan[i].index <= pos)
			s->passes++;
		pos = s->plan[i].index;
	}
	tl_source_info *in = s->info;
	snprintf(in->dataset, sizeof in->dataset, "cifar%d", s->dataset);
	snprintf(in->output, sizeof in->output, "cifar%d.tls", s->dataset);
	in->n_label_fields = s->dataset == 100 ? 2 : 1;
	s->planned = 1;
	return TL_OK;
}

/* Go to the plan's next batch (reading on, or from the start again),
 * unpickle it, check data and labels, announce the segment. */
static tl_status begin_data(py_state *s, tl_src_event *ev, tl_err *err)
{
	uint64_t want = s->plan[s->next_plan].index;
	if (want <= s->cur_index) {
		s->done_bytes += tl_cifar_total(s->src);
		tl_cifar_close(s->src);
		s->src = NULL;
		s->cur_index = 0;
		TL_TRY(tl_cifar_open(&s->src, s->open_path, err));
	}
	while (s->cur_index < want) {
		int done;
		TL_TRY(tl_cifar_next(s->src, &s->m, &done, err));
		if (done)
			return tl_seterr(err, TL_EFORMAT, "%s: %s: not found again (expected the same file as before: did it change?)",
					 s->input, s->plan[s->next_plan].path);
		s->cur_index++;
	}
	const tl_cifar_member *m = &s->m;
	s->kind = s->plan[s->next_plan].kind;
	s->batch = s->plan[s->next_plan].batch;
	if (strcmp(m->path, s->plan[s->next_plan].path))
		return tl_seterr(err, TL_EFORMAT, "%s: %s: found %s in its place (expected the same file as before: did it change?)",
				 s->input, s->plan[s->next_plan].path, m->path);
	s->next_plan++;
	int c100 = s->kind == PY_C100_TRAIN || s->kind == PY_C100_TEST;
	const tl_pk_value *root;
	TL_TRY(load_member(s, &root, err));
	const tl_pk_value *d = tl_pk_get(root, "data");
	if (!d || d->type != TL_PK_NDARRAY)
		return tl_seterr(err, TL_EFORMAT, "%s: data: %s (expected a numpy uint8 array of N x 3072)",
				 s->what, d ? tl_pk_type_name(d->type) : "missing");
	const tl_pk_array *a = d->u.a;
	if (a->dtype != TL_PK_U8 || a->ndim != 2 || a->shape[1] != TL_CIFAR_PIXELS || a->shape[0] < 1 ||
	    a->fortran)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: data: a %s array of %d dimensions%s (expected uint8, N x 3072, C order, N > 0; got shape %lld x %lld)",
				 s->what, tl_pk_dtype_name(a->dtype), a->ndim, a->fortran ? ", Fortran order" : "",
				 (long long)(a->ndim > 0 ? a->shape[0] : 0), (long long)(a->ndim > 1 ? a->shape[1] : 0));
	uint64_t n = (uint64_t)a->shape[0];
	if (c100) {
		TL_TRY(read_labels(s, root, "fine_labels", n, 100, &s->fine, err));
		TL_TRY(read_labels(s, root, "coarse_labels", n, 20, &s->coarse, err));
	} else {
		TL_TRY(read_labels(s, root, "labels", n, 10, &s->fine, err));
	}
	const tl_pk_value *fn = tl_pk_get(root, "filenames");
	if (fn && (fn->type != TL_PK_LIST || fn->u.c.n != n))
		return tl_seterr(err, TL_EFORMAT, "%s: filenames: %s of %zu (expected a list of %llu, one per row of data)",
				 s->what, tl_pk_type_name(fn->type), fn->type == TL_PK_LIST ? fn->u.c.n : 0,
				 (unsigned long long)n);
	s->pixels = a->data;
	s->n_rec = n;
	s->next = 0;
	int train = s->kind == PY_C10_TRAIN || s->kind == PY_C100_TRAIN;
	ev->type = TL_SRC_SEGMENT;
	ev->member = m->base;
	ev->split = train ? "train" : "test";
	ev->order = (uint32_t)s->batch;
	ev->expect = n;
	return TL_OK;
}

static tl_status py_next(void *st, tl_src_event *ev, tl_err *err)
{
	py_state *s = st;
	memset(ev, 0, sizeof *ev);
	if (!s->planned)
		TL_TRY(make_plan(s, err));
	if (s->next < s->n_rec) {
		uint64_t i = s->next++;
		ev->type = TL_SRC_RECORD;
		ev->data = s->pixels + i * TL_CIFAR_PIXELS;
		ev->size = TL_CIFAR_PIXELS;
		ev->label[0] = s->fine[i];
		ev->label[1] = s->coarse ? s->coarse[i] : 0;
		ev->name = s->m.path;
		return TL_OK;
	}
	drop_batch(s);
	if (s->next_plan == s->n_plan) {
		ev->type = TL_SRC_END;
		return TL_OK;
	}
	return begin_data(s, ev, err);
}

static tl_status check_complete(const py_state *s, tl_err *err)
{
	const char *in = s->input;
	if (!s->dataset)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: no CIFAR batches found (expected cifar-10-batches-py/data_batch_1..5 and test_batch, or cifar-100-python/train and test)",
				 in);
	if (s->dataset == 10) {
		for (int b = 1; b <= 5; b++)
			if (!(s->seen & (1u << b)))
				return tl_seterr(err, TL_EFORMAT,
						 "%s: cifar-10-batches-py/data_batch_%d: missing (expected data_batch_1..5 and test_batch)",
						 in, b);
		if (!(s->seen & (1u << 6)))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-10-batches-py/test_batch: missing (expected data_batch_1..5 and test_batch)",
					 in);
	} else {
		if (!(s->seen & 2u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-python/train: missing (expected train and test)", in);
		if (!(s->seen & 4u))
			return tl_seterr(err, TL_EFORMAT,
					 "%s: cifar-100-python/test: missing (expected train and test)", in);
	}
	return TL_OK;
}

/* Class names from the meta member when there was one, else as the
 * binary version has them; then the source's size and hash. */
static tl_status py_finish(void *st, tl_err *err)
{
	py_state *s = st;
	TL_TRY(check_complete(s, err)); /* checked after the first pass too */
	tl_source_info *in = s->info;
	/* CIFAR's names are short: the shard stays version 1 */
	char buf[TL_SHARD_V2_NAME_MAX];
	if (s->dataset == 10) {
		in->n_classes = 10;
		for (uint32_t i = 0; i < 10; i++)
			TL_TRY(tl_src_set_name(in, 0, i, s->have_meta ? s->fine_names[i] : tl_cifar10_names[i],
					       s->input, err));
	} else {
		in->n_classes = 100;
		in->n_coarse = 20;
		for (uint32_t i = 0; i < 100; i++) {
			snprintf(buf, sizeof buf, "class_%u", i);
			TL_TRY(tl_src_set_name(in, 0, i, s->have_fine ? s->fine_names[i] : buf, s->input, err));
		}
		for (uint32_t i = 0; i < 20; i++) {
			snprintf(buf, sizeof buf, "superclass_%u", i);
			TL_TRY(tl_src_set_name(in, 1, i, s->have_coarse ? s->coarse_names[i] : buf, s->input, err));
		}
	}
	in->source_size = s->size;
	in->source_hash = s->hash;
	return TL_OK;
}

static uint64_t py_consumed(void *st)
{
	const py_state *s = st;
	return s->done_bytes + (s->src ? tl_cifar_consumed(s->src) : 0);
}

static uint64_t py_total(void *st)
{
	const py_state *s = st;
	return s->src ? tl_cifar_total(s->src) * s->passes : 0;
}

const tl_source tl_source_pycifar = {
	.name = "cifar-python",
	.probe = py_probe,
	.open = py_open,
	.next = py_next,
	.finish = py_finish,
	.consumed = py_consumed,
	.total = py_total,
	.close = py_close,
};
