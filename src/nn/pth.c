/* pth.c - torch.save files read without running them (see pth.h): the
 * container (zip through libarchive, or the legacy run of pickles), the
 * state dict found in the object pickle, its tensors copied out where a
 * view or a conversion needs it.  The import into safetensors is
 * pth_import.c. */
#include "nn/pth.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "data/pickle.h"
#include "infile.h"

#define MAX_MEMBERS 65536u  /* zip members; a state dict has one per storage */
#define MAX_NAME 1024       /* bytes of a tensor name */

/* A storage's bytes: a zip member ARCHIVE/data/KEY, or a legacy record. */
typedef struct {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *data;
	size_t nbytes;
	int dtype;              /* tl_pk_dtype of its first use, -1 before */
} blob;

struct tl_pth {
	void *map;              /* tl_pth_open's mapping */
	size_t map_len;
	tl_pickle *pk;
	blob *b;
	size_t nb;
	uint8_t **own;          /* zip members' bytes and names, copied-out tensors */
	size_t n_own, cap_own;
	tl_pth_tensor *t;
	size_t n;
	int big;                /* storages are big-endian (zip byteorder "big") */
	int converted;
	char format[8], dict_key[24], prefix[16], xxh3[17];
	uint64_t size;
};

/* Legacy: the pickle of torch's magic number 0x1950a86a20f9469cfc6c at
 * protocol 2, as every legacy file starts. */
static const uint8_t legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
					 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

int tl_pth_sniff(const uint8_t *buf, size_t n)
{
	if (n >= 4 && !memcmp(buf, "PK\3\4", 4))
		return 1;
	return n >= sizeof legacy_magic && !memcmp(buf, legacy_magic, sizeof legacy_magic);
}

/* Keep p as owned by t (freed with it); frees p and fails on no memory. */
static tl_status own(tl_pth *t, void *p, const char *what, tl_err *err)
{
	if (t->n_own == t->cap_own) {
		size_t cap = t->cap_own ? t->cap_own * 2 : 64;
		uint8_t **o = realloc(t->own, cap * sizeof *o);
		if (!o) {
			free(p);
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
		}
		t->own = o, t->cap_own = cap;
	}
	t->own[t->n_own++] = p;
	return TL_OK;
}

static tl_status add_blob(tl_pth *t, const uint8_t *key, size_t kl, const uint8_t *data, size_t n,
			  const char *what, const char *part, tl_err *err)
{
	for (size_t i = 0; i < t->nb; i++)
		if (t->b[i].key_len == kl && !memcmp(t->b[i].key, key, kl))
			return tl_seterr(err, TL_EFORMAT, "%s: %s: storage '%.*s' twice (expected each once)",
					 what, part, (int)(kl < 64 ? kl : 64), (const char *)key);
	if (t->nb >= MAX_MEMBERS)
		return tl_seterr(err, TL_EFORMAT, "%s: %s: more than %u storages (expected at most that)",
				 what, part, MAX_MEMBERS);
	if (!(t->nb & (t->nb - 1)) || !t->nb) {
		blob *nb = realloc(t->b, (t->nb ? t->nb * 2 : 16) * sizeof *nb);
		if (!nb)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
		t->b = nb;
	}
	t->b[t->nb++] = (blob){key, kl, data, n, -1};
	return TL_OK;
}

/* ---- zip (torch.save since 1.6) ---- */

/* Reads every member's bytes (bounded: all together at most 4 x the
 * archive + 16 MiB, for deflated ones); *pkl and *order get data.pkl and
 * byteorder (NULL when absent), the storages go to t->b. */
static tl_status read_zip(tl_pth *t, const uint8_t *buf, size_t n, const char *what,
			  const uint8_t **pkl, size_t *pkl_n, tl_err *err)
{
	struct archive *a = archive_read_new();
	if (!a)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
	archive_read_support_format_zip_seekable(a);
	tl_status st = TL_OK;
	if (archive_read_open_memory(a, buf, n) != ARCHIVE_OK) {
		st = tl_seterr(err, TL_EFORMAT, "%s: zip: not readable (%s)", what, archive_error_string(a));
		archive_read_free(a);
		return st;
	}
	uint64_t budget = (uint64_t)n * 4 + (16u << 20);
	/* members first, in a list: the archive folder is known once data.pkl is seen */
	typedef struct { const char *name; const uint8_t *data; size_t n; } mem;
	mem *m = NULL;
	size_t nm = 0;
	struct archive_entry *e;
	int r;
	while (st == TL_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (!name)
			name = "";
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(e) != AE_IFREG) {
			st = tl_seterr(err, TL_EFORMAT, "%s: zip: member '%.200s' is not a file (refused: expected plain members)",
				       what, name);
			break;
		}
		if (nm >= MAX_MEMBERS) {
			st = tl_seterr(err, TL_EFORMAT, "%s: zip: more than %u members (expected at most that)",
				       what, MAX_MEMBERS);
			break;
		}
		int64_t want = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		if (want > (int64_t)budget) {
			st = tl_seterr(err, TL_EFORMAT, "%s: zip: member '%.200s' of %" PRId64 " bytes (expected at most %" PRIu64 " more, for an archive of %zu)",
				       what, name, want, budget, n);
			break;
		}
		size_t cap = want > 0 ? (size_t)want : 4096, len = 0;
		if (!(nm % 64)) {
			mem *nmm = realloc(m, (nm + 64) * sizeof *m);
			if (!nmm) {
				st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
				break;
			}
			m = nmm;
		}
		char *nmcopy = strdup(name);
		if (!nmcopy || (st = own(t, nmcopy, what, err)) != TL_OK) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
			break;
		}
		uint8_t *d = malloc(cap + 1);
		if (!d || (st = own(t, d, what, err)) != TL_OK) {
			st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
			break;
		}
		for (;;) {
			if (len == cap) {
				if ((uint64_t)cap * 2 > budget) {
					st = tl_seterr(err, TL_EFORMAT, "%s: zip: member '%.200s' is larger than %" PRIu64 " bytes (expected at most that, for an archive of %zu)",
						       what, name, budget, n);
					break;
				}
				uint8_t *nd = realloc(d, cap * 2 + 1);
				if (!nd) {
					st = tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
					break;
				}
				t->own[t->n_own - 1] = d = nd;
				cap *= 2;
			}
			la_ssize_t k = archive_read_data(a, d + len, cap - len);
			if (k < 0) {
				st = tl_seterr(err, TL_EFORMAT, "%s: zip: member '%.200s': %s", what, name,
					       archive_error_string(a));
				break;
			}
			if (k == 0)
				break;
			len += (size_t)k;
		}
		if (st != TL_OK)
			break;
		if (want >= 0 && (uint64_t)len != (uint64_t)want) {
			st = tl_seterr(err, TL_EFORMAT, "%s: zip: member '%.200s' holds %zu bytes (expected %" PRId64 ", its size in the directory)",
				       what, name, len, want);
			break;
		}
		budget -= len;
		m[nm++] = (mem){nmcopy, d, len};
	}
	if (st == TL_OK && r != ARCHIVE_EOF)
		st = tl_seterr(err, TL_EFORMAT, "%s: zip: %s", what, archive_error_string(a));
	archive_read_free(a);
	/* the folder: ARCHIVE/data.pkl, with no other slash */
	const char *dir = NULL;
	size_t dl = 0;
	for (size_t i = 0; st == TL_OK && i < nm; i++) {
		const char *s = strchr(m[i].name, '/');
		if (s && !strcmp(s, "/data.pkl")) {
			if (dir)
				st = tl_seterr(err, TL_EFORMAT, "%s: zip: two data.pkl members ('%.200s' and '%.200s') (expected one)",
					       what, dir, m[i].name);
			dir = m[i].name, dl = (size_t)(s - m[i].name);
			*pkl = m[i].data, *pkl_n = m[i].n;
		}
	}
	if (st == TL_OK && !dir)
		st = tl_seterr(err, TL_EFORMAT, "%s: zip: no ARCHIVE/data.pkl member (expected a torch.save file; got %zu other member%s)",
			       what, nm, nm == 1 ? "" : "s");
	for (size_t i = 0; st == TL_OK && i < nm; i++) {
		const char *s = m[i].name;
		if (strncmp(s, dir, dl) || s[dl] != '/')
			continue; /* not torch's: ignored */
		s += dl + 1;
		if (!strncmp(s, "data/", 5) && s[5])
			st = add_blob(t, (const uint8_t *)s + 5, strlen(s + 5), m[i].data, m[i].n, what, "zip", err);
		else if (!strcmp(s, "byteorder")) {
			if (m[i].n == 3 && !memcmp(m[i].data, "big", 3))
				t->big = 1;
			else if (!(m[i].n == 6 && !memcmp(m[i].data, "little", 6)))
				st = tl_seterr(err, TL_EFORMAT, "%s: zip: byteorder member is not 'little' or 'big'", what);
		}
	}
	free(m);
	return st;
}

/* ---- legacy (torch.save before 1.6) ---- */

/* A small header pickle at *pos (the protocol number or the system info). */
static tl_status legacy_pickle(const uint8_t *buf, size_t n, size_t *pos, const tl_pk_limits *lim,
			       tl_pickle **pk, const char *what, tl_err *err)
{
	size_t used;
	TL_TRY(tl_pickle_load_prefix(pk, buf + *pos, n - *pos, lim, &used, what, err));
	*pos += used;
	return TL_OK;
}

static tl_status read_legacy(tl_pth *t, const uint8_t *buf, size_t n, const char *what, tl_err *err)
{
	size_t pos = sizeof legacy_magic;
	tl_pk_limits small = {.max_bytes = 1u << 20, .max_items = 64};
	tl_pickle *h;
	char part[64];
	snprintf(part, sizeof part, "%s: legacy protocol", what);
	TL_TRY(legacy_pickle(buf, n, &pos, &small, &h, part, err));
	const tl_pk_value *v = tl_pickle_root(h);
	int ok = v->type == TL_PK_INT && v->u.i == 1001;
	int64_t got = v->type == TL_PK_INT ? v->u.i : -1;
	tl_pickle_free(h);
	if (!ok)
		return tl_seterr(err, TL_EFORMAT, "%s: legacy header: protocol version %" PRId64 " (expected 1001)",
				 what, got);
	snprintf(part, sizeof part, "%s: legacy system info", what);
	TL_TRY(legacy_pickle(buf, n, &pos, &small, &h, part, err));
	const tl_pk_value *le = tl_pk_get(tl_pickle_root(h), "little_endian");
	ok = le && le->type == TL_PK_BOOL && le->u.b;
	tl_pickle_free(h);
	if (!ok)
		return tl_seterr(err, TL_EFORMAT, "%s: legacy header: little_endian is not True (refused: big-endian legacy files are not read)",
				 what);
	snprintf(part, sizeof part, "%s: object", what);
	TL_TRY(legacy_pickle(buf, n, &pos, NULL, &t->pk, part, err));
	snprintf(part, sizeof part, "%s: storage keys", what);
	tl_pk_limits keys = {.max_bytes = 64u << 20, .max_items = MAX_MEMBERS};
	TL_TRY(legacy_pickle(buf, n, &pos, &keys, &h, part, err));
	const tl_pk_value *k = tl_pickle_root(h);
	tl_status st = TL_OK;
	if (k->type != TL_PK_LIST)
		st = tl_seterr(err, TL_EFORMAT, "%s: storage keys: a %s (expected a list of str)", what,
			       tl_pk_type_name(k->type));
	for (size_t i = 0; st == TL_OK && i < k->u.c.n; i++) {
		const tl_pk_value *key = k->u.c.items[i];
		if (key->type != TL_PK_STR) {
			st = tl_seterr(err, TL_EFORMAT, "%s: storage keys: item %zu is a %s (expected str)",
				       what, i, tl_pk_type_name(key->type));
			break;
		}
		const tl_pk_value *s = tl_pickle_storages(t->pk);
		while (s && !(s->u.st.key_len == key->u.s.n && !memcmp(s->u.st.key, key->u.s.p, key->u.s.n)))
			s = s->u.st.next;
		int kl = (int)(key->u.s.n < 64 ? key->u.s.n : 64);
		if (!s) {
			st = tl_seterr(err, TL_EFORMAT, "%s: storage '%.*s': listed but no tensor uses it (expected the keys of the object's storages)",
				       what, kl, (const char *)key->u.s.p);
			break;
		}
		if (n - pos < 8) {
			st = tl_seterr(err, TL_EFORMAT, "%s: storage '%.*s': file ends before its size (truncated)",
				       what, kl, (const char *)key->u.s.p);
			break;
		}
		uint64_t cnt = 0;
		for (int b = 7; b >= 0; b--)
			cnt = cnt << 8 | buf[pos + (size_t)b];
		pos += 8;
		size_t es = tl_pk_dtype_size(s->u.st.dtype);
		if (cnt != (uint64_t)s->u.st.numel) {
			st = tl_seterr(err, TL_EFORMAT, "%s: storage '%.*s': %" PRIu64 " elements (expected %" PRId64 ", as the object says)",
				       what, kl, (const char *)key->u.s.p, cnt, s->u.st.numel);
			break;
		}
		if (cnt > (n - pos) / es) {
			st = tl_seterr(err, TL_EFORMAT, "%s: storage '%.*s': %" PRIu64 " x %zu bytes run past the end of the file (truncated: %zu bytes left)",
				       what, kl, (const char *)key->u.s.p, cnt, es, n - pos);
			break;
		}
		st = add_blob(t, key->u.s.p, key->u.s.n, buf + pos, (size_t)cnt * es, what, "legacy", err);
		pos += (size_t)cnt * es;
	}
	if (st == TL_OK && pos != n)
		st = tl_seterr(err, TL_EFORMAT, "%s: %zu bytes after the last storage (expected the file to end there)",
			       what, n - pos);
	tl_pickle_free(h); /* the blobs' keys point into buf, not into h */
	return st;
}

/* ---- the state dict ---- */

static int is_state_dict(const tl_pk_value *d)
{
	if (!d || d->type != TL_PK_DICT || !d->u.c.n)
		return 0;
	for (size_t i = 0; i < d->u.c.n; i++)
		if (d->u.c.items[i]->type != TL_PK_STR || d->u.c.vals[i]->type != TL_PK_TENSOR)
			return 0;
	return 1;
}

static const char *const dict_keys[] = {"state_dict", "model_state_dict", "model", "net", "module"};
static const char *const prefixes[] = {"module.", "_orig_mod."};

static tl_status find_dict(tl_pth *t, const char *what, const tl_pk_value **out, tl_err *err)
{
	const tl_pk_value *root = tl_pickle_root(t->pk);
	if (is_state_dict(root)) {
		*out = root;
		return TL_OK;
	}
	for (size_t i = 0; i < sizeof dict_keys / sizeof dict_keys[0]; i++)
		if (is_state_dict(tl_pk_get(root, dict_keys[i]))) {
			snprintf(t->dict_key, sizeof t->dict_key, "%s", dict_keys[i]);
			*out = tl_pk_get(root, dict_keys[i]);
			return TL_OK;
		}
	char keys[200] = "";
	size_t kl = 0;
	for (size_t i = 0; root->type == TL_PK_DICT && i < root->u.c.n && kl < 150; i++) {
		const tl_pk_value *k = root->u.c.items[i];
		if (k->type != TL_PK_STR && k->type != TL_PK_BYTES)
			continue;
		char one[40];
		size_t m = k->u.s.n < 30 ? k->u.s.n : 30;
		for (size_t j = 0; j < m; j++)
			one[j] = k->u.s.p[j] >= 0x20 && k->u.s.p[j] < 0x7f ? (char)k->u.s.p[j] : '?';
		one[m] = 0;
		kl += (size_t)snprintf(keys + kl, sizeof keys - kl, "%s'%s'", kl ? ", " : "", one);
	}
	return tl_seterr(err, TL_EFORMAT,
			 "%s: data.pkl: no state dict (expected a dict of tensors, or one under 'state_dict', 'model_state_dict', 'model', 'net' or 'module'; got a %s%s%s)",
			 what, tl_pk_type_name(root->type), keys[0] ? " with keys " : "", keys);
}

static tl_status find_blob(tl_pth *t, const tl_pk_value *s, const char *name, const char *what,
			   blob **out, tl_err *err)
{
	int kl = (int)(s->u.st.key_len < 64 ? s->u.st.key_len : 64);
	for (size_t i = 0; i < t->nb; i++) {
		blob *b = &t->b[i];
		if (b->key_len != s->u.st.key_len || memcmp(b->key, s->u.st.key, b->key_len))
			continue;
		size_t es = tl_pk_dtype_size(s->u.st.dtype);
		if (b->dtype >= 0 && b->dtype != (int)s->u.st.dtype)
			return tl_seterr(err, TL_EFORMAT, "%s: tensor %s: storage '%.*s' read as %s and as %s (expected one type)",
					 what, name, kl, (const char *)s->u.st.key, tl_pk_dtype_name(b->dtype),
					 tl_pk_dtype_name(s->u.st.dtype));
		if ((uint64_t)s->u.st.numel > SIZE_MAX / es || b->nbytes != (size_t)s->u.st.numel * es)
			return tl_seterr(err, TL_EFORMAT, "%s: tensor %s: storage '%.*s' holds %zu bytes (expected %" PRId64 " %s elements)",
					 what, name, kl, (const char *)s->u.st.key, b->nbytes, s->u.st.numel,
					 tl_pk_dtype_name(s->u.st.dtype));
		b->dtype = (int)s->u.st.dtype;
		*out = b;
		return TL_OK;
	}
	return tl_seterr(err, TL_EFORMAT, "%s: tensor %s: storage '%.*s' missing (expected a data/%.*s member)",
			 what, name, kl, (const char *)s->u.st.key, kl, (const char *)s->u.st.key);
}

/* Copy view a of storage src (elements of es bytes, byte-swapped when
 * swap) to dst in C order; float64 becomes float32 when f64to32. */
static void gather(uint8_t *dst, const uint8_t *src, const tl_pk_array *a, size_t es, int swap,
		   int f64to32, uint64_t numel)
{
	int64_t idx[TL_PK_MAX_NDIM] = {0};
	for (uint64_t k = 0; k < numel; k++) {
		int64_t off = a->offset;
		for (int d = 0; d < a->ndim; d++)
			off += idx[d] * a->stride[d];
		uint8_t e[8];
		for (size_t j = 0; j < es; j++)
			e[j] = src[(size_t)off * es + (swap ? es - 1 - j : j)];
		if (f64to32) {
			double x;
			memcpy(&x, e, 8);
			float f = (float)x;
			memcpy(dst, &f, 4);
			dst += 4;
		} else {
			memcpy(dst, e, es);
			dst += es;
		}
		for (int d = a->ndim - 1; d >= 0; d--) {
			if (++idx[d] < a->shape[d])
				break;
			idx[d] = 0;
		}
	}
}

static tl_status tensors(tl_pth *t, const tl_pk_value *d, size_t in_bytes, const char *what,
			 tl_err *err)
{
	size_t n = d->u.c.n;
	for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
		size_t pl = strlen(prefixes[p]), i = 0;
		while (i < n && d->u.c.items[i]->u.s.n > pl && !memcmp(d->u.c.items[i]->u.s.p, prefixes[p], pl))
			i++;
		if (i == n) {
			snprintf(t->prefix, sizeof t->prefix, "%s", prefixes[p]);
			break;
		}
	}
	size_t pl = strlen(t->prefix);
	if (!(t->t = calloc(n, sizeof *t->t)))
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
	uint64_t copied = 0; /* copies are bounded by the input: no amplification */
	static const uint8_t none[1];
	for (size_t i = 0; i < n; i++) {
		const tl_pk_value *k = d->u.c.items[i];
		const tl_pk_array *a = d->u.c.vals[i]->u.a;
		size_t nl = k->u.s.n - pl;
		if (nl > MAX_NAME || memchr(k->u.s.p + pl, 0, nl))
			return tl_seterr(err, TL_EFORMAT, "%s: tensor %zu: name of %zu bytes or with a NUL (expected at most %d bytes of text)",
					 what, i, nl, MAX_NAME);
		char *name = malloc(nl + 1);
		if (!name)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
		memcpy(name, k->u.s.p + pl, nl);
		name[nl] = 0;
		TL_TRY(own(t, name, what, err));
		if (!strcmp(name, "__metadata__"))
			return tl_seterr(err, TL_EFORMAT, "%s: tensor named __metadata__ (refused: safetensors keeps that name for metadata)",
					 what);
		for (size_t j = 0; j < t->n; j++)
			if (!strcmp(t->t[j].name, name))
				return tl_seterr(err, TL_EFORMAT, "%s: tensor %.200s twice (expected each name once%s)",
						 what, name, pl ? ", after the prefix is dropped" : "");
		tl_pth_tensor *o = &t->t[t->n];
		o->name = name;
		static const int map[] = {
			[TL_PK_F32] = TL_ST_F32, [TL_PK_F16] = TL_ST_F16, [TL_PK_BF16] = TL_ST_BF16,
			[TL_PK_F64] = TL_ST_F32, [TL_PK_I64] = TL_ST_I64, [TL_PK_I32] = TL_ST_I32,
			[TL_PK_U8] = TL_ST_U8,   [TL_PK_BOOL8] = -1,      [TL_PK_I8] = -1,
			[TL_PK_I16] = -1,        [TL_PK_U16] = -1,        [TL_PK_U32] = -1,
			[TL_PK_U64] = -1,
		};
		if (map[a->dtype] < 0)
			return tl_seterr(err, TL_EFORMAT, "%s: tensor %.200s: %s (expected float32, float16, bfloat16, float64, int64, int32 or uint8)",
					 what, name, tl_pk_dtype_name(a->dtype));
		o->dtype = (tl_st_dtype)map[a->dtype];
		o->ndim = a->ndim;
		uint64_t numel = 1;
		int contiguous = 1;
		int64_t want = 1;
		for (int j = a->ndim - 1; j >= 0; j--) {
			o->shape[j] = a->shape[j];
			numel *= (uint64_t)a->shape[j]; /* no overflow: inside the storage (check_view) */
			if (a->shape[j] != 1 && a->stride[j] != want)
				contiguous = 0;
			want *= a->shape[j];
		}
		blob *b = NULL;
		TL_TRY(find_blob(t, a->storage, name, what, &b, err));
		if (numel > (uint64_t)a->storage->u.st.numel)
			return tl_seterr(err, TL_EFORMAT, "%s: tensor %.200s: a view of %" PRIu64 " elements on a storage of %" PRId64 " (refused: expected at most the storage's; save a .clone())",
					 what, name, numel, a->storage->u.st.numel);
		size_t es = tl_pk_dtype_size(a->dtype), eo = a->dtype == TL_PK_F64 ? 4 : es;
		o->nbytes = (size_t)numel * eo;
		if (!numel) {
			o->data = none;
		} else if (contiguous && !t->big && a->dtype != TL_PK_F64) {
			o->data = b->data + (size_t)a->offset * es;
		} else {
			if (copied + o->nbytes > in_bytes)
				return tl_seterr(err, TL_EFORMAT, "%s: tensor %.200s: views to copy out exceed the file's size (refused: expected at most %zu bytes)",
						 what, name, in_bytes);
			copied += o->nbytes;
			uint8_t *c = malloc(o->nbytes);
			if (!c)
				return tl_seterr(err, TL_ENOMEM, "%s: tensor %.200s: out of memory", what, name);
			TL_TRY(own(t, c, what, err));
			gather(c, b->data, a, es, t->big && es > 1, a->dtype == TL_PK_F64, numel);
			o->data = c;
			t->converted += a->dtype == TL_PK_F64;
		}
		t->n++;
	}
	return TL_OK;
}

/* A refused class (an uppercase name: torchvision.models.vgg.VGG) most
 * often means a whole model was saved: say what to do. */
static void hint(tl_status st, tl_err *err)
{
	const char *g = st == TL_EFORMAT ? strstr(err->msg, ": global ") : NULL;
	const char *dot = g ? strchr(g + 9, ' ') : NULL;
	while (dot && dot > g && dot[-1] != '.')
		dot--;
	if (dot && dot[0] >= 'A' && dot[0] <= 'Z' && strlen(err->msg) < sizeof err->msg - 120)
		strcat(err->msg, "; a model saved whole (torch.save(model)) is not read: save model.state_dict()");
}

tl_status tl_pth_read_mem(tl_pth **out, const uint8_t *buf, size_t n, const char *what,
			  tl_err *err)
{
	*out = NULL;
	if (!tl_pth_sniff(buf, n))
		return tl_seterr(err, TL_EFORMAT, "%s: not a torch.save file (expected a zip archive or the legacy magic number at byte 0)",
				 what);
	tl_pth *t = calloc(1, sizeof *t);
	if (!t)
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", what);
	t->size = n;
	snprintf(t->xxh3, sizeof t->xxh3, "%016" PRIx64, (uint64_t)XXH3_64bits(buf, n));
	tl_status st;
	if (buf[0] == 'P') {
		snprintf(t->format, sizeof t->format, "zip");
		const uint8_t *pkl = NULL;
		size_t pn = 0;
		st = read_zip(t, buf, n, what, &pkl, &pn, err);
		if (st == TL_OK) {
			char part[4200];
			snprintf(part, sizeof part, "%s: data.pkl", what);
			st = tl_pickle_load(&t->pk, pkl, pn, NULL, part, err);
		}
	} else {
		snprintf(t->format, sizeof t->format, "legacy");
		st = read_legacy(t, buf, n, what, err);
	}
	hint(st, err);
	const tl_pk_value *d = NULL;
	if (st == TL_OK)
		st = find_dict(t, what, &d, err);
	if (st == TL_OK)
		st = tensors(t, d, n, what, err);
	if (st != TL_OK) {
		tl_pth_free(t);
		return st;
	}
	*out = t;
	return TL_OK;
}

tl_status tl_pth_open(tl_pth **out, const char *path, tl_err *err)
{
	*out = NULL;
	struct stat sb;
	int fd = tl_open_input(path, &sb, err);
	if (fd < 0)
		return TL_EIO;
	if (sb.st_size == 0) {
		close(fd);
		return tl_seterr(err, TL_EFORMAT, "%s: empty file (expected a torch.save file)", path);
	}
	void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return tl_seterr(err, TL_EIO, "%s: cannot map: %s", path, strerror(errno));
	tl_status st = tl_pth_read_mem(out, m, (size_t)sb.st_size, path, err);
	if (st != TL_OK) {
		munmap(m, (size_t)sb.st_size);
		return st;
	}
	(*out)->map = m;
	(*out)->map_len = (size_t)sb.st_size;
	return TL_OK;
}

size_t tl_pth_count(const tl_pth *p) { return p->n; }
const tl_pth_tensor *tl_pth_at(const tl_pth *p, size_t i) { return i < p->n ? &p->t[i] : NULL; }
const char *tl_pth_format(const tl_pth *p) { return p->format; }
const char *tl_pth_dict_key(const tl_pth *p) { return p->dict_key; }
const char *tl_pth_prefix(const tl_pth *p) { return p->prefix; }
int tl_pth_converted(const tl_pth *p) { return p->converted; }
const char *tl_pth_xxh3(const tl_pth *p) { return p->xxh3; }
uint64_t tl_pth_size(const tl_pth *p) { return p->size; }

void tl_pth_free(tl_pth *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_own; i++)
		free(p->own[i]);
	free(p->own);
	free(p->b);
	free(p->t);
	tl_pickle_free(p->pk);
	if (p->map)
		munmap(p->map, p->map_len);
	free(p);
}
