/* pickle.c - the restricted unpickler (see pickle.h).  One pass over the
 * opcodes with Python's stack, mark stack and memo; values live in an
 * arena whose total size is capped. */
#include "data/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK ((size_t)1 << 20)

typedef struct block {
	struct block *next;
	size_t size, used;
	max_align_t data[];
} block;

struct tl_pickle {
	block *blocks;
	size_t bytes;
	const tl_pk_value *root;
	const tl_pk_value *storages; /* every BINPERSID's, newest first */
};

/* whitelisted globals */
enum {
	G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_CODECS_ENCODE, G_BYTES, G_ODICT,
	G_REBUILD_TENSOR, G_REBUILD_TENSOR_V1, G_REBUILD_PARAMETER, G_STORAGE
};

static const struct {
	const char *module, *name;
	int id;
	tl_pk_dtype dtype; /* storages */
} globals[] = {
	{"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT, 0},
	{"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT, 0},
	{"numpy", "ndarray", G_NDARRAY, 0},
	{"numpy", "dtype", G_DTYPE, 0},
	{"numpy.core.numeric", "_frombuffer", G_FROMBUFFER, 0},
	{"numpy._core.numeric", "_frombuffer", G_FROMBUFFER, 0},
	{"_codecs", "encode", G_CODECS_ENCODE, 0},
	{"__builtin__", "bytes", G_BYTES, 0},
	{"builtins", "bytes", G_BYTES, 0},
	{"collections", "OrderedDict", G_ODICT, 0},
	{"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, 0},
	{"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR_V1, 0}, /* torch 0.3 */
	{"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
	{"torch", "FloatStorage", G_STORAGE, TL_PK_F32},
	{"torch", "DoubleStorage", G_STORAGE, TL_PK_F64},
	{"torch", "HalfStorage", G_STORAGE, TL_PK_F16},
	{"torch", "BFloat16Storage", G_STORAGE, TL_PK_BF16},
	{"torch", "LongStorage", G_STORAGE, TL_PK_I64},
	{"torch", "IntStorage", G_STORAGE, TL_PK_I32},
	{"torch", "ShortStorage", G_STORAGE, TL_PK_I16},
	{"torch", "CharStorage", G_STORAGE, TL_PK_I8},
	{"torch", "ByteStorage", G_STORAGE, TL_PK_U8},
	{"torch", "BoolStorage", G_STORAGE, TL_PK_BOOL8},
};

#define GLOBALS_EXPECTED "numpy arrays and dtypes, OrderedDict, bytes, torch tensors and storages"

typedef struct {
	const uint8_t *buf;
	size_t n, pos, at; /* input, read position, offset of the current opcode */
	const char *what;
	tl_err *err;
	tl_pk_limits lim;
	tl_pickle *pk;
	tl_pk_value **stack;
	size_t sp, stack_cap;
	size_t *marks;
	size_t n_marks;
	tl_pk_value **memo;
	size_t memo_cap, memo_count;
} rd;

static const char *op_name(uint8_t op)
{
	static const struct {
		uint8_t op;
		const char *name;
	} t[] = {
		{0x49, "INT"}, {0x4a, "BININT"}, {0x4b, "BININT1"}, {0x4d, "BININT2"},
		{0x4c, "LONG"}, {0x8a, "LONG1"}, {0x8b, "LONG4"}, {0x53, "STRING"},
		{0x54, "BINSTRING"}, {0x55, "SHORT_BINSTRING"}, {0x42, "BINBYTES"},
		{0x43, "SHORT_BINBYTES"}, {0x8e, "BINBYTES8"}, {0x96, "BYTEARRAY8"},
		{0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}, {0x4e, "NONE"},
		{0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x56, "UNICODE"},
		{0x8c, "SHORT_BINUNICODE"}, {0x58, "BINUNICODE"}, {0x8d, "BINUNICODE8"},
		{0x46, "FLOAT"}, {0x47, "BINFLOAT"}, {0x5d, "EMPTY_LIST"}, {0x61, "APPEND"},
		{0x65, "APPENDS"}, {0x6c, "LIST"}, {0x29, "EMPTY_TUPLE"}, {0x74, "TUPLE"},
		{0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"}, {0x7d, "EMPTY_DICT"},
		{0x64, "DICT"}, {0x73, "SETITEM"}, {0x75, "SETITEMS"}, {0x8f, "EMPTY_SET"},
		{0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x30, "POP"}, {0x32, "DUP"},
		{0x28, "MARK"}, {0x31, "POP_MARK"}, {0x67, "GET"}, {0x68, "BINGET"},
		{0x6a, "LONG_BINGET"}, {0x70, "PUT"}, {0x71, "BINPUT"}, {0x72, "LONG_BINPUT"},
		{0x94, "MEMOIZE"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"},
		{0x63, "GLOBAL"}, {0x93, "STACK_GLOBAL"}, {0x52, "REDUCE"}, {0x62, "BUILD"},
		{0x69, "INST"}, {0x6f, "OBJ"}, {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"},
		{0x80, "PROTO"}, {0x2e, "STOP"}, {0x95, "FRAME"}, {0x50, "PERSID"},
		{0x51, "BINPERSID"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].op == op)
			return t[i].name;
	return "unknown";
}

/* Set err to "WHAT: pickle: byte AT: MESSAGE"; returns TL_EFORMAT. */
static tl_status __attribute__((format(printf, 2, 3))) fail(rd *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return tl_seterr(r->err, TL_EFORMAT, "%s: pickle: byte %zu: %s", r->what, r->at, msg);
}

static tl_status nomem(rd *r)
{
	return tl_seterr(r->err, TL_ENOMEM, "%s: pickle: byte %zu: out of memory", r->what, r->at);
}

/* Arena allocation of n zeroed bytes, within lim.max_bytes; NULL with
 * err set (a crossed limit or malloc failure; *st says which). */
static void *alloc(rd *r, size_t n, tl_status *st)
{
	n = (n + 15) & ~(size_t)15;
	block *b = r->pk->blocks;
	if (!b || b->size - b->used < n) {
		size_t room = r->lim.max_bytes - r->pk->bytes; /* bytes <= max_bytes */
		/* blocks grow with the tree: 16 KiB first, then as much as
		 * is held already, up to ARENA_BLOCK */
		size_t grow_to = r->pk->bytes < ARENA_BLOCK ? r->pk->bytes : ARENA_BLOCK;
		if (grow_to < ((size_t)16 << 10))
			grow_to = (size_t)16 << 10;
		size_t size = n > grow_to / 4 ? n : grow_to;
		if (size > room)
			size = n; /* near the limit: a block just for this */
		if (n > room) {
			*st = fail(r, "the data needs more than %zu bytes of memory (expected at most that; a limit of this reader)",
				   r->lim.max_bytes);
			return NULL;
		}
		block *nb = malloc(sizeof *nb + size);
		if (!nb) {
			*st = nomem(r);
			return NULL;
		}
		nb->size = size;
		nb->used = 0;
		r->pk->bytes += size;
		if (size == grow_to || !b) {
			nb->next = b;
			r->pk->blocks = nb;
		} else { /* a big one-off block: keep filling the current one */
			nb->next = b->next;
			b->next = nb;
		}
		b = nb;
	}
	void *p = (uint8_t *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static tl_pk_value *new_value(rd *r, tl_pk_type t, tl_status *st)
{
	tl_pk_value *v = alloc(r, sizeof *v, st);
	if (v)
		v->type = t;
	return v;
}

const char *tl_pk_type_name(tl_pk_type t)
{
	static const char *const n[] = {"None", "bool", "int", "float", "bytes", "str", "list",
					"tuple", "dict", "numpy array", "numpy dtype", "global",
					"torch storage", "torch tensor"};
	return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}

const char *tl_pk_dtype_name(tl_pk_dtype d)
{
	static const char *const n[] = {"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
					"uint64", "int64", "float16", "bfloat16", "float32", "float64"};
	return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

size_t tl_pk_dtype_size(tl_pk_dtype d)
{
	static const uint8_t s[] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8};
	return (unsigned)d < sizeof s ? s[d] : 0;
}

/* ---- stack, marks, memo ---- */

static tl_status push(rd *r, tl_pk_value *v)
{
	if (r->sp == r->stack_cap) {
		if (r->sp >= r->lim.max_stack)
			return fail(r, "stack too deep (expected at most %u values)", r->lim.max_stack);
		size_t cap = r->stack_cap ? r->stack_cap * 2 : 64;
		if (cap > r->lim.max_stack)
			cap = r->lim.max_stack;
		tl_pk_value **s = realloc(r->stack, cap * sizeof *s);
		if (!s)
			return nomem(r);
		r->stack = s;
		r->stack_cap = cap;
	}
	r->stack[r->sp++] = v;
	return TL_OK;
}

/* Values above the innermost mark (all of them without one). */
static size_t above_mark(const rd *r)
{
	return r->n_marks ? r->sp - r->marks[r->n_marks - 1] : r->sp;
}

static tl_status need_stack(rd *r, size_t k, uint8_t op)
{
	if (above_mark(r) < k)
		return fail(r, "%s needs %zu value%s on the stack (got %zu above the mark)",
			    op_name(op), k, k == 1 ? "" : "s", above_mark(r));
	return TL_OK;
}

static tl_status pop_mark(rd *r, uint8_t op, size_t *base)
{
	if (!r->n_marks)
		return fail(r, "%s without a MARK (expected a MARK before it)", op_name(op));
	*base = r->marks[--r->n_marks];
	return TL_OK;
}

static tl_status memo_put(rd *r, uint64_t idx)
{
	if (!r->sp)
		return fail(r, "memo store with an empty stack (expected a value to store)");
	if (idx >= r->lim.max_memo)
		return fail(r, "memo index too large (expected below %u, got %llu)", r->lim.max_memo,
			    (unsigned long long)idx);
	if (idx >= r->memo_cap) {
		size_t cap = r->memo_cap ? r->memo_cap : 64;
		while (cap <= idx)
			cap *= 2;
		if (cap > r->lim.max_memo)
			cap = r->lim.max_memo;
		tl_pk_value **m = realloc(r->memo, cap * sizeof *m);
		if (!m)
			return nomem(r);
		memset(m + r->memo_cap, 0, (cap - r->memo_cap) * sizeof *m);
		r->memo = m;
		r->memo_cap = cap;
	}
	if (!r->memo[idx])
		r->memo_count++;
	r->memo[idx] = r->stack[r->sp - 1];
	return TL_OK;
}

static tl_status memo_get(rd *r, uint64_t idx)
{
	if (idx >= r->memo_cap || !r->memo[idx])
		return fail(r, "memo index %llu was never stored (expected an index stored before)",
			    (unsigned long long)idx);
	return push(r, r->memo[idx]);
}

/* ---- values going into other values ---- */

/* v becomes part of another value: it must be complete (no pending
 * BUILD); a list or dict can no longer change (that is what keeps the
 * tree free of cycles). */
static tl_status seal(rd *r, tl_pk_value *v)
{
	if (v->pending)
		return fail(r, "a %s used before its BUILD (expected _reconstruct/dtype followed by BUILD)",
			    tl_pk_type_name(v->type));
	if (v->type == TL_PK_LIST || v->type == TL_PK_DICT)
		v->sealed = 1;
	return TL_OK;
}

/* container c (list, tuple, dict) takes child v at nesting depth */
static tl_status nest(rd *r, tl_pk_value *c, const tl_pk_value *v)
{
	if (v->depth + 1u > c->depth) {
		if (v->depth + 1u > r->lim.max_depth)
			return fail(r, "values nested too deep (expected at most %u levels)", r->lim.max_depth);
		c->depth = (uint16_t)(v->depth + 1);
	}
	return TL_OK;
}

static tl_status grow(rd *r, tl_pk_value *c, size_t want)
{
	if (want <= c->u.c.cap)
		return TL_OK;
	if (want > r->lim.max_items)
		return fail(r, "%s too long (expected at most %zu items)", tl_pk_type_name(c->type),
			    r->lim.max_items);
	size_t cap = c->u.c.cap ? c->u.c.cap * 2 : 8;
	while (cap < want)
		cap *= 2;
	if (cap > r->lim.max_items)
		cap = r->lim.max_items;
	tl_status st = TL_OK;
	int dict = c->type == TL_PK_DICT;
	tl_pk_value **items = alloc(r, cap * sizeof *items, &st);
	tl_pk_value **vals = items && dict ? alloc(r, cap * sizeof *vals, &st) : NULL;
	if (!items || (dict && !vals))
		return st;
	if (c->u.c.n) {
		memcpy(items, c->u.c.items, c->u.c.n * sizeof *items);
		if (dict)
			memcpy(vals, c->u.c.vals, c->u.c.n * sizeof *vals);
	}
	c->u.c.items = items;
	c->u.c.vals = vals;
	c->u.c.cap = cap;
	return TL_OK;
}

static tl_status mutable_target(rd *r, tl_pk_value *t, tl_pk_type want, uint8_t op)
{
	if (t->type != want)
		return fail(r, "%s on a %s (expected a %s)", op_name(op), tl_pk_type_name(t->type),
			    tl_pk_type_name(want));
	if (t->sealed)
		return fail(r, "%s on a %s already inside another value (expected it filled before use)",
			    op_name(op), tl_pk_type_name(t->type));
	return TL_OK;
}

/* Append stack[base..sp) to list t and drop them. */
static tl_status appends(rd *r, tl_pk_value *t, size_t base, uint8_t op)
{
	TL_TRY(mutable_target(r, t, TL_PK_LIST, op));
	size_t k = r->sp - base;
	TL_TRY(grow(r, t, t->u.c.n + k));
	for (size_t i = base; i < r->sp; i++) {
		tl_pk_value *v = r->stack[i];
		if (v == t)
			return fail(r, "%s of a list to itself (expected no cycles)", op_name(op));
		TL_TRY(seal(r, v));
		TL_TRY(nest(r, t, v));
		t->u.c.items[t->u.c.n++] = v;
	}
	r->sp = base;
	return TL_OK;
}

static int hashable(const tl_pk_value *k)
{
	switch (k->type) {
	case TL_PK_NONE: case TL_PK_BOOL: case TL_PK_INT: case TL_PK_FLOAT:
	case TL_PK_BYTES: case TL_PK_STR: case TL_PK_TUPLE:
		return 1;
	default:
		return 0;
	}
}

/* Set pairs stack[base..sp) in dict t and drop them. */
static tl_status setitems(rd *r, tl_pk_value *t, size_t base, uint8_t op)
{
	TL_TRY(mutable_target(r, t, TL_PK_DICT, op));
	size_t k = r->sp - base;
	if (k % 2)
		return fail(r, "%s with an odd number of values (expected key, value pairs, got %zu values)",
			    op_name(op), k);
	TL_TRY(grow(r, t, t->u.c.n + k / 2));
	for (size_t i = base; i < r->sp; i += 2) {
		tl_pk_value *key = r->stack[i], *v = r->stack[i + 1];
		if (!hashable(key))
			return fail(r, "dict key is a %s (expected str, bytes, int, float, bool, None or tuple)",
				    tl_pk_type_name(key->type));
		if (v == t)
			return fail(r, "%s of a dict into itself (expected no cycles)", op_name(op));
		TL_TRY(seal(r, key));
		TL_TRY(seal(r, v));
		TL_TRY(nest(r, t, key));
		TL_TRY(nest(r, t, v));
		t->u.c.items[t->u.c.n] = key;
		t->u.c.vals[t->u.c.n++] = v;
	}
	r->sp = base;
	return TL_OK;
}

/* A tuple of stack[base..sp), replacing them. */
static tl_status make_tuple(rd *r, size_t base)
{
	tl_status st = TL_OK;
	tl_pk_value *t = new_value(r, TL_PK_TUPLE, &st);
	if (!t)
		return st;
	size_t k = r->sp - base;
	TL_TRY(grow(r, t, k));
	for (size_t i = base; i < r->sp; i++) {
		TL_TRY(seal(r, r->stack[i]));
		TL_TRY(nest(r, t, r->stack[i]));
		t->u.c.items[t->u.c.n++] = r->stack[i];
	}
	r->sp = base;
	return push(r, t);
}

/* ---- reading the input ---- */

static tl_status need(rd *r, size_t k, const char *what)
{
	if (r->n - r->pos < k)
		return fail(r, "input ends inside %s (expected %zu more bytes, got %zu)", what, k,
			    r->n - r->pos);
	return TL_OK;
}

static uint64_t le(const uint8_t *p, int k)
{
	uint64_t v = 0;
	for (int i = k - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A length-prefixed argument: k bytes of little-endian length, then the
 * data, which must fit in the input. */
static tl_status counted(rd *r, int k, const uint8_t **p, size_t *len, uint8_t op)
{
	TL_TRY(need(r, (size_t)k, op_name(op)));
	uint64_t n = le(r->buf + r->pos, k);
	r->pos += (size_t)k;
	if (op == 0x54 && n > INT32_MAX) /* BINSTRING's length is signed */
		return fail(r, "BINSTRING with a negative length (got %lld)", (long long)(int32_t)n);
	if (n > r->n - r->pos)
		return fail(r, "%s of %llu bytes runs past the end of the input (expected at most %zu)",
			    op_name(op), (unsigned long long)n, r->n - r->pos);
	*p = r->buf + r->pos;
	*len = (size_t)n;
	r->pos += (size_t)n;
	return TL_OK;
}

/* Valid UTF-8 (surrogates allowed: Python writes them with
 * surrogatepass); *cps gets the number of code points, *max the largest. */
static int utf8_ok(const uint8_t *p, size_t n, size_t *cps, uint32_t *max)
{
	size_t i = 0, k = 0;
	uint32_t hi = 0;
	while (i < n) {
		uint32_t c = p[i];
		int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
		if (more < 0 || n - i - 1 < (size_t)more)
			return 0;
		if (more)
			c &= 0x3fu >> more;
		for (int j = 1; j <= more; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i + j] & 0x3fu);
		}
		static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
		if (c < min[more] || c > 0x10ffff)
			return 0;
		if (c > hi)
			hi = c;
		i += (size_t)more + 1;
		k++;
	}
	*cps = k;
	*max = hi;
	return 1;
}

static tl_status push_text(rd *r, tl_pk_type t, const uint8_t *p, size_t n)
{
	if (t == TL_PK_STR) {
		size_t cps;
		uint32_t max;
		if (!utf8_ok(p, n, &cps, &max))
			return fail(r, "str is not valid UTF-8 (expected UTF-8 text)");
	}
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, t, &st);
	if (!v)
		return st;
	v->u.s.p = p;
	v->u.s.n = n;
	return push(r, v);
}

static tl_status push_int(rd *r, int64_t i)
{
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, TL_PK_INT, &st);
	if (!v)
		return st;
	v->u.i = i;
	return push(r, v);
}

static tl_status push_bool(rd *r, int b)
{
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, TL_PK_BOOL, &st);
	if (!v)
		return st;
	v->u.b = b;
	return push(r, v);
}

static tl_status push_global(rd *r, const uint8_t *mod, size_t mlen, const uint8_t *name, size_t nlen)
{
	for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
		if (strlen(globals[i].module) == mlen && !memcmp(globals[i].module, mod, mlen) &&
		    strlen(globals[i].name) == nlen && !memcmp(globals[i].name, name, nlen)) {
			tl_status st = TL_OK;
			tl_pk_value *v = new_value(r, TL_PK_GLOBAL, &st);
			if (!v)
				return st;
			v->u.g.id = (int)i;
			v->u.g.module = globals[i].module;
			v->u.g.name = globals[i].name;
			return push(r, v);
		}
	/* print the name safely: printable ASCII only, at most 100 bytes each */
	char m[101], nm[101];
	size_t a = mlen < 100 ? mlen : 100, b = nlen < 100 ? nlen : 100;
	for (size_t i = 0; i < a; i++)
		m[i] = mod[i] >= 0x20 && mod[i] < 0x7f ? (char)mod[i] : '?';
	for (size_t i = 0; i < b; i++)
		nm[i] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
	m[a] = nm[b] = 0;
	return fail(r, "global %s.%s refused (expected only " GLOBALS_EXPECTED "; nothing is executed)",
		    m, nm);
}

/* ---- whitelisted calls (REDUCE) and states (BUILD) ---- */

static int is_int(const tl_pk_value *v)
{
	return v->type == TL_PK_INT || v->type == TL_PK_BOOL;
}

static int64_t int_of(const tl_pk_value *v)
{
	return v->type == TL_PK_BOOL ? v->u.b : v->u.i;
}

static int is_text(const tl_pk_value *v)
{
	return v->type == TL_PK_STR || v->type == TL_PK_BYTES;
}

int tl_pk_text_is(const tl_pk_value *v, const char *s)
{
	size_t n = strlen(s);
	return v && is_text(v) && v->u.s.n == n && !memcmp(v->u.s.p, s, n);
}

/* A shape tuple of at most TL_PK_MAX_NDIM non-negative ints into a->shape;
 * *count gets the number of elements (overflow refused). */
static tl_status read_shape(rd *r, const tl_pk_value *t, int64_t *dims, int *ndim, uint64_t *count,
			    const char *what)
{
	if (t->type != TL_PK_TUPLE)
		return fail(r, "%s is a %s (expected a tuple of ints)", what, tl_pk_type_name(t->type));
	if (t->u.c.n > TL_PK_MAX_NDIM)
		return fail(r, "%s has %zu dimensions (expected at most %d)", what, t->u.c.n, TL_PK_MAX_NDIM);
	uint64_t c = 1;
	for (size_t i = 0; i < t->u.c.n; i++) {
		const tl_pk_value *d = t->u.c.items[i];
		if (d->type != TL_PK_INT || d->u.i < 0)
			return fail(r, "%s: dimension %zu is not a non-negative int", what, i);
		uint64_t x = (uint64_t)d->u.i;
		if (x && c > UINT64_MAX / x)
			return fail(r, "%s: too many elements (overflow)", what);
		c *= x;
		dims[i] = d->u.i;
	}
	*ndim = (int)t->u.c.n;
	if (count)
		*count = c;
	return TL_OK;
}

/* numpy's type string ("u1", "<f4", "|b1") -> dtype, byte order. */
static int parse_typestr(const uint8_t *p, size_t n, tl_pk_dtype *d, int *big)
{
	*big = 0;
	if (n && (p[0] == '<' || p[0] == '>' || p[0] == '|' || p[0] == '=')) {
		*big = p[0] == '>';
		p++, n--;
	}
	if (n != 2)
		return 0;
	static const struct {
		char k, s;
		tl_pk_dtype d;
	} t[] = {
		{'b', '1', TL_PK_BOOL8}, {'u', '1', TL_PK_U8}, {'i', '1', TL_PK_I8}, {'u', '2', TL_PK_U16},
		{'i', '2', TL_PK_I16}, {'u', '4', TL_PK_U32}, {'i', '4', TL_PK_I32}, {'u', '8', TL_PK_U64},
		{'i', '8', TL_PK_I64}, {'f', '2', TL_PK_F16}, {'f', '4', TL_PK_F32}, {'f', '8', TL_PK_F64},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (p[0] == t[i].k && p[1] == t[i].s) {
			*d = t[i].d;
			if (tl_pk_dtype_size(*d) == 1)
				*big = 0;
			return 1;
		}
	return 0;
}

static tl_status new_array(rd *r, tl_pk_type t, tl_pk_value **out)
{
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, t, &st);
	tl_pk_array *a = v ? alloc(r, sizeof *a, &st) : NULL;
	if (!a)
		return st;
	v->u.a = a;
	*out = v;
	return TL_OK;
}

/* Python 3's bytes at protocol 2: _codecs.encode(str, 'latin1'): code
 * points 0..255 become the bytes. */
static tl_status latin1_bytes(rd *r, const tl_pk_value *s, tl_pk_value **out)
{
	size_t cps;
	uint32_t max;
	utf8_ok(s->u.s.p, s->u.s.n, &cps, &max); /* checked when read */
	if (max > 0xff)
		return fail(r, "_codecs.encode: str has a code point above 255 (expected latin-1 text)");
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, TL_PK_BYTES, &st);
	uint8_t *b = v ? alloc(r, cps ? cps : 1, &st) : NULL;
	if (!b)
		return st;
	size_t k = 0;
	for (size_t i = 0; i < s->u.s.n; i++) {
		uint8_t c = s->u.s.p[i];
		if (c < 0x80)
			b[k++] = c;
		else if ((c & 0xe0) == 0xc0) /* max <= 0xff: only 2-byte sequences */
			b[k++] = (uint8_t)((c & 0x1f) << 6 | (s->u.s.p[++i] & 0x3f));
	}
	v->u.s.p = b;
	v->u.s.n = k;
	*out = v;
	return TL_OK;
}

/* The elements a tensor view reaches must lie inside its storage. */
static tl_status check_view(rd *r, const tl_pk_array *a, int64_t numel)
{
	uint64_t last = (uint64_t)a->offset;
	for (int i = 0; i < a->ndim; i++) {
		if (a->shape[i] == 0)
			return TL_OK; /* empty: reaches nothing */
		if (a->stride[i] < 0)
			return fail(r, "_rebuild_tensor_v2: negative stride %lld", (long long)a->stride[i]);
		uint64_t s = (uint64_t)a->stride[i], d = (uint64_t)(a->shape[i] - 1);
		if (s && d > (UINT64_MAX - last) / s)
			return fail(r, "_rebuild_tensor_v2: view overflows");
		last += d * s;
	}
	if (last >= (uint64_t)numel)
		return fail(r, "_rebuild_tensor_v2: view reaches element %llu of a storage of %lld (expected inside the storage)",
			    (unsigned long long)last, (long long)numel);
	return TL_OK;
}

/* REDUCE: callable g (a whitelisted global) with tuple args. */
static tl_status reduce(rd *r, const tl_pk_value *g, const tl_pk_value *args, tl_pk_value **out)
{
	const char *mod = g->u.g.module, *nm = g->u.g.name;
	int id = globals[g->u.g.id].id;
	size_t n = args->u.c.n;
	tl_pk_value *const *a = args->u.c.items;
	tl_status st = TL_OK;
	tl_pk_value *v = NULL;
	switch (id) {
	case G_RECONSTRUCT:
		if (n != 3 || a[0]->type != TL_PK_GLOBAL || globals[a[0]->u.g.id].id != G_NDARRAY ||
		    a[1]->type != TL_PK_TUPLE || !is_text(a[2]))
			return fail(r, "%s.%s: arguments are not (numpy.ndarray, (0,), b'b') (refused)", mod, nm);
		TL_TRY(new_array(r, TL_PK_NDARRAY, &v));
		v->pending = 1;
		*out = v;
		return TL_OK;
	case G_DTYPE: {
		tl_pk_dtype d;
		int big;
		if (n != 3 || !is_text(a[0]) || !is_int(a[1]) || !is_int(a[2]))
			return fail(r, "numpy.dtype: arguments are not (typestr, align, copy) (refused)");
		if (!parse_typestr(a[0]->u.s.p, a[0]->u.s.n, &d, &big))
			return fail(r, "numpy.dtype: type '%.*s' not supported (expected bool, [u]int8..64 or float16/32/64)",
				    (int)(a[0]->u.s.n < 16 ? a[0]->u.s.n : 16), (const char *)a[0]->u.s.p);
		if (!(v = new_value(r, TL_PK_DTYPE, &st)))
			return st;
		v->u.dt.dtype = d;
		v->u.dt.big_endian = big;
		v->pending = 1;
		*out = v;
		return TL_OK;
	}
	case G_FROMBUFFER: {
		if (n != 4 || a[0]->type != TL_PK_BYTES || a[1]->type != TL_PK_DTYPE ||
		    a[2]->type != TL_PK_TUPLE || !is_text(a[3]))
			return fail(r, "%s.%s: arguments are not (buffer, dtype, shape, order) (refused)", mod, nm);
		TL_TRY(new_array(r, TL_PK_NDARRAY, &v));
		tl_pk_array *x = v->u.a;
		uint64_t count;
		TL_TRY(read_shape(r, a[2], x->shape, &x->ndim, &count, "_frombuffer: shape"));
		x->dtype = a[1]->u.dt.dtype;
		x->big_endian = a[1]->u.dt.big_endian;
		x->fortran = tl_pk_text_is(a[3], "F");
		if (!x->fortran && !tl_pk_text_is(a[3], "C"))
			return fail(r, "_frombuffer: order is not 'C' or 'F'");
		size_t es = tl_pk_dtype_size(x->dtype);
		if (count > SIZE_MAX / es || count * es != a[0]->u.s.n)
			return fail(r, "_frombuffer: buffer size does not match the shape (expected %llu x %zu bytes, got %zu)",
				    (unsigned long long)count, es, a[0]->u.s.n);
		x->data = a[0]->u.s.p;
		x->nbytes = a[0]->u.s.n;
		*out = v;
		return TL_OK;
	}
	case G_CODECS_ENCODE:
		if (n != 2 || a[0]->type != TL_PK_STR ||
		    !(tl_pk_text_is(a[1], "latin1") || tl_pk_text_is(a[1], "latin-1")))
			return fail(r, "_codecs.encode: arguments are not (str, 'latin1') (refused)");
		return latin1_bytes(r, a[0], out);
	case G_BYTES:
		if (n != 0)
			return fail(r, "bytes: arguments are not () (refused)");
		if (!(v = new_value(r, TL_PK_BYTES, &st)))
			return st;
		v->u.s.p = (const uint8_t *)"";
		*out = v;
		return TL_OK;
	case G_ODICT:
		if (n != 0)
			return fail(r, "collections.OrderedDict: arguments are not () (refused)");
		if (!(v = new_value(r, TL_PK_DICT, &st)))
			return st;
		v->odict = 1;
		*out = v;
		return TL_OK;
	case G_REBUILD_TENSOR:
	case G_REBUILD_TENSOR_V1: {
		/* v2: (storage, offset, size, stride, requires_grad, hooks[,
		 * metadata]); torch 0.3's v1: (storage, offset, size, stride) */
		int v1 = id == G_REBUILD_TENSOR_V1;
		if ((v1 ? n != 4 : n != 6 && n != 7) || a[0]->type != TL_PK_STORAGE ||
		    a[1]->type != TL_PK_INT || a[1]->u.i < 0 || a[2]->type != TL_PK_TUPLE ||
		    a[3]->type != TL_PK_TUPLE || (!v1 && (!is_int(a[4]) || a[5]->type != TL_PK_DICT)))
			return fail(r, "%s.%s: arguments are not (storage, offset, size, stride%s) (refused)",
				    mod, nm, v1 ? "" : ", requires_grad, hooks");
		if (!v1 && a[5]->u.c.n)
			return fail(r, "%s.%s: backward hooks refused (expected none)", mod, nm);
		TL_TRY(new_array(r, TL_PK_TENSOR, &v));
		tl_pk_array *x = v->u.a;
		int sd;
		TL_TRY(read_shape(r, a[2], x->shape, &x->ndim, NULL, "_rebuild_tensor_v2: size"));
		TL_TRY(read_shape(r, a[3], x->stride, &sd, NULL, "_rebuild_tensor_v2: stride"));
		if (sd != x->ndim)
			return fail(r, "_rebuild_tensor_v2: %d sizes and %d strides (expected as many)", x->ndim, sd);
		x->storage = a[0];
		x->dtype = a[0]->u.st.dtype;
		x->offset = a[1]->u.i;
		x->requires_grad = v1 ? 0 : (int)int_of(a[4]);
		TL_TRY(check_view(r, x, a[0]->u.st.numel));
		*out = v;
		return TL_OK;
	}
	case G_REBUILD_PARAMETER:
		if (n != 3 || a[0]->type != TL_PK_TENSOR || !is_int(a[1]) || a[2]->type != TL_PK_DICT)
			return fail(r, "%s.%s: arguments are not (tensor, requires_grad, hooks) (refused)", mod, nm);
		if (a[2]->u.c.n)
			return fail(r, "%s.%s: backward hooks refused (expected none)", mod, nm);
		*out = a[0];
		return TL_OK;
	default:
		return fail(r, "REDUCE calls %s.%s (refused: it is not a function this reader builds)", mod, nm);
	}
}

/* BUILD: set state on the top value. */
static tl_status build(rd *r, tl_pk_value *t, const tl_pk_value *state)
{
	if (t->type == TL_PK_NDARRAY && t->pending) {
		size_t n = state->type == TL_PK_TUPLE ? state->u.c.n : 0;
		tl_pk_value *const *s = n ? state->u.c.items : NULL;
		if (n == 5) /* (version, shape, dtype, is_fortran, data) */
			s++, n--;
		if (n != 4 || s[1]->type != TL_PK_DTYPE || !is_int(s[2]) || s[3]->type != TL_PK_BYTES)
			return fail(r, "numpy array state is not (version, shape, dtype, fortran, bytes) (refused; object arrays are not read)");
		tl_pk_array *x = t->u.a;
		uint64_t count;
		TL_TRY(read_shape(r, s[0], x->shape, &x->ndim, &count, "numpy array shape"));
		x->dtype = s[1]->u.dt.dtype;
		x->big_endian = s[1]->u.dt.big_endian;
		x->fortran = int_of(s[2]) != 0;
		size_t es = tl_pk_dtype_size(x->dtype);
		if (count > SIZE_MAX / es || count * es != s[3]->u.s.n)
			return fail(r, "numpy array data size does not match its shape (expected %llu x %zu bytes, got %zu)",
				    (unsigned long long)count, es, s[3]->u.s.n);
		x->data = s[3]->u.s.p;
		x->nbytes = s[3]->u.s.n;
		t->pending = 0;
		return TL_OK;
	}
	if (t->type == TL_PK_DTYPE && t->pending) {
		size_t n = state->type == TL_PK_TUPLE ? state->u.c.n : 0;
		tl_pk_value *const *s = state->u.c.items;
		if (n < 8 || n > 9 || !is_int(s[0]) || !is_text(s[1]) || s[1]->u.s.n != 1)
			return fail(r, "numpy dtype state is not (version, byteorder, ...) (refused)");
		if (s[2]->type != TL_PK_NONE || s[3]->type != TL_PK_NONE || s[4]->type != TL_PK_NONE)
			return fail(r, "numpy dtype has a subarray or fields (refused: only plain numbers are read)");
		uint8_t bo = s[1]->u.s.p[0];
		if (bo != '<' && bo != '>' && bo != '|' && bo != '=')
			return fail(r, "numpy dtype byte order '%c' (expected <, >, | or =)", bo >= 0x20 && bo < 0x7f ? bo : '?');
		if (tl_pk_dtype_size(t->u.dt.dtype) > 1)
			t->u.dt.big_endian = bo == '>';
		t->pending = 0;
		return TL_OK;
	}
	if (t->type == TL_PK_DICT && t->odict && !t->sealed && !t->u.c.attrs &&
	    (state->type == TL_PK_DICT || state->type == TL_PK_NONE)) {
		if (state->type == TL_PK_DICT) {
			if (state == t)
				return fail(r, "BUILD of an OrderedDict with itself (expected no cycles)");
			TL_TRY(nest(r, t, state));
			t->u.c.attrs = state;
		}
		return TL_OK;
	}
	return fail(r, "BUILD on a %s with a %s (refused: only numpy arrays, dtypes and OrderedDicts take a state)",
		    tl_pk_type_name(t->type), tl_pk_type_name(state->type));
}

/* BINPERSID ('storage', TYPE, KEY, LOCATION, NUMEL): a torch storage;
 * the legacy format (torch.save before 1.6) adds a sixth, VIEW_METADATA,
 * None since storage views went away (a view is refused). */
static tl_status persid(rd *r, const tl_pk_value *pid, tl_pk_value **out)
{
	tl_pk_value *const *a = pid->type == TL_PK_TUPLE ? pid->u.c.items : NULL;
	if (!a || (pid->u.c.n != 5 && pid->u.c.n != 6) || !tl_pk_text_is(a[0], "storage") ||
	    a[1]->type != TL_PK_GLOBAL || globals[a[1]->u.g.id].id != G_STORAGE || !is_text(a[2]) ||
	    !is_text(a[3]) || a[4]->type != TL_PK_INT || a[4]->u.i < 0)
		return fail(r, "persistent id is not ('storage', torch.*Storage, key, location, numel) (refused)");
	if (pid->u.c.n == 6 && a[5]->type != TL_PK_NONE)
		return fail(r, "persistent id has a storage view (%s) (refused: expected None, as torch 0.4 and later write)",
			    tl_pk_type_name(a[5]->type));
	tl_status st = TL_OK;
	tl_pk_value *v = new_value(r, TL_PK_STORAGE, &st);
	if (!v)
		return st;
	v->u.st.dtype = globals[a[1]->u.g.id].dtype;
	v->u.st.key = a[2]->u.s.p;
	v->u.st.key_len = a[2]->u.s.n;
	v->u.st.location = a[3]->u.s.p;
	v->u.st.location_len = a[3]->u.s.n;
	v->u.st.numel = a[4]->u.i;
	v->u.st.next = r->pk->storages;
	r->pk->storages = v;
	*out = v;
	return TL_OK;
}

/* ---- the loop ---- */

static tl_status step(rd *r, int *stop)
{
	r->at = r->pos;
	uint8_t op = r->buf[r->pos++];
	tl_status st = TL_OK;
	const uint8_t *p;
	size_t len, base;
	tl_pk_value *v = NULL;
	switch (op) {
	case 0x80: /* PROTO */
		return fail(r, "PROTO after the start (expected it first only)");
	case 0x95: /* FRAME: only a hint here, but it must fit */
		TL_TRY(need(r, 8, "FRAME"));
		if (le(r->buf + r->pos, 8) > r->n - r->pos - 8)
			return fail(r, "FRAME of %llu bytes runs past the end of the input (expected at most %zu)",
				    (unsigned long long)le(r->buf + r->pos, 8), r->n - r->pos - 8);
		r->pos += 8;
		return TL_OK;
	case 0x2e: /* STOP */
		if (r->sp != 1 || r->n_marks)
			return fail(r, "STOP with %zu values and %zu marks on the stack (expected 1 value, no mark)",
				    r->sp, r->n_marks);
		TL_TRY(seal(r, r->stack[0]));
		r->pk->root = r->stack[0];
		*stop = 1;
		return TL_OK;
	case 0x4e: /* NONE */
		if (!(v = new_value(r, TL_PK_NONE, &st)))
			return st;
		return push(r, v);
	case 0x88: return push_bool(r, 1); /* NEWTRUE */
	case 0x89: return push_bool(r, 0); /* NEWFALSE */
	case 0x4b: /* BININT1 */
		TL_TRY(need(r, 1, "BININT1"));
		return push_int(r, r->buf[r->pos++]);
	case 0x4d: /* BININT2 */
		TL_TRY(need(r, 2, "BININT2"));
		r->pos += 2;
		return push_int(r, (int64_t)le(r->buf + r->pos - 2, 2));
	case 0x4a: /* BININT */
		TL_TRY(need(r, 4, "BININT"));
		r->pos += 4;
		return push_int(r, (int32_t)(uint32_t)le(r->buf + r->pos - 4, 4));
	case 0x8a: /* LONG1 */
	case 0x8b: /* LONG4 */
		TL_TRY(counted(r, op == 0x8a ? 1 : 4, &p, &len, op));
		if (len > 8)
			return fail(r, "%s of %zu bytes (expected an integer of at most 8 bytes)", op_name(op), len);
		{
			uint64_t u = le(p, (int)len);
			if (len && len < 8 && (p[len - 1] & 0x80))
				u |= ~(uint64_t)0 << (8 * len); /* sign-extend */
			return push_int(r, (int64_t)u);
		}
	case 0x47: /* BINFLOAT, big-endian */
		TL_TRY(need(r, 8, "BINFLOAT"));
		{
			uint64_t u = 0;
			for (int i = 0; i < 8; i++)
				u = u << 8 | r->buf[r->pos + i];
			r->pos += 8;
			if (!(v = new_value(r, TL_PK_FLOAT, &st)))
				return st;
			memcpy(&v->u.f, &u, 8);
			return push(r, v);
		}
	case 0x55: /* SHORT_BINSTRING */
	case 0x43: /* SHORT_BINBYTES */
		TL_TRY(counted(r, 1, &p, &len, op));
		return push_text(r, TL_PK_BYTES, p, len);
	case 0x54: /* BINSTRING */
	case 0x42: /* BINBYTES */
		TL_TRY(counted(r, 4, &p, &len, op));
		return push_text(r, TL_PK_BYTES, p, len);
	case 0x8e: /* BINBYTES8 */
	case 0x96: /* BYTEARRAY8 */
		TL_TRY(counted(r, 8, &p, &len, op));
		return push_text(r, TL_PK_BYTES, p, len);
	case 0x8c: /* SHORT_BINUNICODE */
		TL_TRY(counted(r, 1, &p, &len, op));
		return push_text(r, TL_PK_STR, p, len);
	case 0x58: /* BINUNICODE */
		TL_TRY(counted(r, 4, &p, &len, op));
		return push_text(r, TL_PK_STR, p, len);
	case 0x8d: /* BINUNICODE8 */
		TL_TRY(counted(r, 8, &p, &len, op));
		return push_text(r, TL_PK_STR, p, len);
	case 0x5d: /* EMPTY_LIST */
	case 0x7d: /* EMPTY_DICT */
		if (!(v = new_value(r, op == 0x5d ? TL_PK_LIST : TL_PK_DICT, &st)))
			return st;
		return push(r, v);
	case 0x29: /* EMPTY_TUPLE */
		return make_tuple(r, r->sp);
	case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
		TL_TRY(need_stack(r, (size_t)(op - 0x84), op));
		return make_tuple(r, r->sp - (size_t)(op - 0x84));
	case 0x74: /* TUPLE */
		TL_TRY(pop_mark(r, op, &base));
		return make_tuple(r, base);
	case 0x6c: /* LIST */
	case 0x64: /* DICT */
		TL_TRY(pop_mark(r, op, &base));
		if (!(v = new_value(r, op == 0x6c ? TL_PK_LIST : TL_PK_DICT, &st)))
			return st;
		TL_TRY(op == 0x6c ? appends(r, v, base, op) : setitems(r, v, base, op));
		return push(r, v);
	case 0x61: /* APPEND */
		TL_TRY(need_stack(r, 2, op));
		return appends(r, r->stack[r->sp - 2], r->sp - 1, op);
	case 0x65: /* APPENDS */
		TL_TRY(pop_mark(r, op, &base));
		if (base == 0 || (r->n_marks && r->marks[r->n_marks - 1] >= base))
			return fail(r, "APPENDS with no list below the MARK");
		return appends(r, r->stack[base - 1], base, op);
	case 0x73: /* SETITEM */
		TL_TRY(need_stack(r, 3, op));
		return setitems(r, r->stack[r->sp - 3], r->sp - 2, op);
	case 0x75: /* SETITEMS */
		TL_TRY(pop_mark(r, op, &base));
		if (base == 0 || (r->n_marks && r->marks[r->n_marks - 1] >= base))
			return fail(r, "SETITEMS with no dict below the MARK");
		return setitems(r, r->stack[base - 1], base, op);
	case 0x28: /* MARK */
		if (r->n_marks >= r->lim.max_depth)
			return fail(r, "too many open MARKs (expected at most %u)", r->lim.max_depth);
		r->marks[r->n_marks++] = r->sp;
		return TL_OK;
	case 0x30: /* POP */
		TL_TRY(need_stack(r, 1, op));
		r->sp--;
		return TL_OK;
	case 0x31: /* POP_MARK */
		TL_TRY(pop_mark(r, op, &base));
		r->sp = base;
		return TL_OK;
	case 0x68: /* BINGET */
		TL_TRY(need(r, 1, "BINGET"));
		return memo_get(r, r->buf[r->pos++]);
	case 0x6a: /* LONG_BINGET */
		TL_TRY(need(r, 4, "LONG_BINGET"));
		r->pos += 4;
		return memo_get(r, le(r->buf + r->pos - 4, 4));
	case 0x71: /* BINPUT */
		TL_TRY(need(r, 1, "BINPUT"));
		return memo_put(r, r->buf[r->pos++]);
	case 0x72: /* LONG_BINPUT */
		TL_TRY(need(r, 4, "LONG_BINPUT"));
		r->pos += 4;
		return memo_put(r, le(r->buf + r->pos - 4, 4));
	case 0x94: /* MEMOIZE */
		return memo_put(r, r->memo_count);
	case 0x63: { /* GLOBAL: module\nname\n */
		const uint8_t *m = r->buf + r->pos, *nl;
		size_t left = r->n - r->pos, lim = left < 256 ? left : 256;
		if (!(nl = memchr(m, '\n', lim)))
			return fail(r, "GLOBAL module name not ended by a newline within %zu bytes", lim);
		const uint8_t *nm = nl + 1;
		left -= (size_t)(nm - m);
		lim = left < 256 ? left : 256;
		const uint8_t *nl2 = memchr(nm, '\n', lim);
		if (!nl2)
			return fail(r, "GLOBAL name not ended by a newline within %zu bytes", lim);
		r->pos = (size_t)(nl2 + 1 - r->buf);
		return push_global(r, m, (size_t)(nl - m), nm, (size_t)(nl2 - nm));
	}
	case 0x93: { /* STACK_GLOBAL */
		TL_TRY(need_stack(r, 2, op));
		tl_pk_value *m = r->stack[r->sp - 2], *nm = r->stack[r->sp - 1];
		if (m->type != TL_PK_STR || nm->type != TL_PK_STR)
			return fail(r, "STACK_GLOBAL of a %s and a %s (expected two str)",
				    tl_pk_type_name(m->type), tl_pk_type_name(nm->type));
		r->sp -= 2;
		return push_global(r, m->u.s.p, m->u.s.n, nm->u.s.p, nm->u.s.n);
	}
	case 0x52: { /* REDUCE */
		TL_TRY(need_stack(r, 2, op));
		tl_pk_value *f = r->stack[r->sp - 2], *args = r->stack[r->sp - 1];
		if (f->type != TL_PK_GLOBAL)
			return fail(r, "REDUCE calls a %s (refused: expected a whitelisted global)",
				    tl_pk_type_name(f->type));
		if (args->type != TL_PK_TUPLE)
			return fail(r, "REDUCE of %s.%s with a %s (expected an argument tuple)",
				    f->u.g.module, f->u.g.name, tl_pk_type_name(args->type));
		TL_TRY(reduce(r, f, args, &v));
		r->sp -= 2;
		return push(r, v);
	}
	case 0x62: /* BUILD */
		TL_TRY(need_stack(r, 2, op));
		TL_TRY(seal(r, r->stack[r->sp - 1]));
		TL_TRY(build(r, r->stack[r->sp - 2], r->stack[r->sp - 1]));
		r->sp--;
		return TL_OK;
	case 0x51: /* BINPERSID */
		TL_TRY(need_stack(r, 1, op));
		TL_TRY(persid(r, r->stack[r->sp - 1], &v));
		r->stack[r->sp - 1] = v;
		return TL_OK;
	default:
		return fail(r, "opcode 0x%02x (%s) refused (expected only the opcodes of numpy arrays, lists, dicts and torch state dicts)",
			    op, op_name(op));
	}
}

tl_status tl_pickle_load(tl_pickle **out, const uint8_t *buf, size_t n, const tl_pk_limits *lim,
			 const char *what, tl_err *err)
{
	return tl_pickle_load_prefix(out, buf, n, lim, NULL, what, err);
}

tl_status tl_pickle_load_prefix(tl_pickle **out, const uint8_t *buf, size_t n,
				const tl_pk_limits *lim, size_t *used, const char *what, tl_err *err)
{
	*out = NULL;
	rd r = {.buf = buf, .n = n, .what = what, .err = err};
	if (lim)
		r.lim = *lim;
	if (!r.lim.max_bytes) r.lim.max_bytes = TL_PK_MAX_BYTES;
	if (!r.lim.max_memo) r.lim.max_memo = TL_PK_MAX_MEMO;
	if (!r.lim.max_depth) r.lim.max_depth = TL_PK_MAX_DEPTH;
	if (!r.lim.max_stack) r.lim.max_stack = TL_PK_MAX_STACK;
	if (!r.lim.max_items) r.lim.max_items = TL_PK_MAX_ITEMS;
	if (r.lim.max_depth > 60000)
		r.lim.max_depth = 60000; /* depth is kept in 16 bits */
	if (n < 2 || buf[0] != 0x80)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: pickle: byte 0: not a pickle of protocol 2 or later (expected 0x80 PROTO, got %s)",
				 what, n ? "another byte" : "an empty file");
	if (buf[1] < 2 || buf[1] > 5)
		return tl_seterr(err, TL_EFORMAT,
				 "%s: pickle: byte 1: protocol %u not supported (expected 2 to 5)", what, buf[1]);
	r.pos = 2;
	r.pk = calloc(1, sizeof *r.pk);
	r.marks = malloc(r.lim.max_depth * sizeof *r.marks);
	tl_status st = TL_OK;
	if (!r.pk || !r.marks) {
		st = nomem(&r);
		goto done;
	}
	int stop = 0;
	while (!stop) {
		if (r.pos == r.n) {
			r.at = r.pos;
			st = fail(&r, "input ends before STOP (truncated)");
			goto done;
		}
		if ((st = step(&r, &stop)) != TL_OK)
			goto done;
	}
	if (used)
		*used = r.pos;
	else if (r.pos != r.n) {
		r.at = r.pos;
		st = fail(&r, "%zu bytes after STOP (expected the pickle to end there)", r.n - r.pos);
	}
done:
	free(r.stack);
	free(r.marks);
	free(r.memo);
	if (st != TL_OK) {
		tl_pickle_free(r.pk);
		return st;
	}
	*out = r.pk;
	return TL_OK;
}

const tl_pk_value *tl_pickle_root(const tl_pickle *pk)
{
	return pk->root;
}

const tl_pk_value *tl_pickle_storages(const tl_pickle *pk)
{
	return pk->storages;
}

size_t tl_pickle_bytes(const tl_pickle *pk)
{
	return pk->bytes;
}

void tl_pickle_free(tl_pickle *pk)
{
	if (!pk)
		return;
	for (block *b = pk->blocks, *nx; b; b = nx) {
		nx = b->next;
		free(b);
	}
	free(pk);
}

const tl_pk_value *tl_pk_get(const tl_pk_value *d, const char *key)
{
	if (!d || d->type != TL_PK_DICT)
		return NULL;
	for (size_t i = d->u.c.n; i-- > 0;)
		if (tl_pk_text_is(d->u.c.items[i], key))
			return d->u.c.vals[i];
	return NULL;
}
