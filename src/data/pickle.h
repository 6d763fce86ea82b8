/* pickle.h - a restricted unpickler: Python pickle protocols 2 to 5 read
 * into a small tree of values, for the data files of numpy and PyTorch
 * (the CIFAR python version's batches, a .pth state dict's data.pkl).
 *
 * A pickle is a program for Python's pickle machine; this reader runs
 * none of it.  It knows the opcodes that pickle.dumps and Python 2's
 * cPickle emit for None, bools, ints, floats, bytes, str, lists, tuples
 * and dicts, and a whitelist of globals, each of which it builds itself
 * from arguments of a checked shape:
 *   numpy.core.multiarray._reconstruct + numpy.ndarray + BUILD  (protocols 2-4)
 *   numpy.core.numeric._frombuffer                              (protocol 5)
 *   numpy.dtype + BUILD        (bool, [u]int8..64, float16/32/64; no structured)
 *   _codecs.encode(str, 'latin1'), builtins.bytes()   (bytes from Python 3, protocol 2)
 *   collections.OrderedDict() [+ BUILD with a dict of attributes]
 *   torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
 *   torch._utils._rebuild_tensor (torch 0.3's, without requires_grad),
 *   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
 *     (only inside a BINPERSID ('storage', TYPE, KEY, LOCATION, NUMEL), or
 *     the legacy format's (..., NUMEL, None))
 *   (numpy._core.* spells the same numpy globals.)
 * Any other global, any other opcode (INST, OBJ, NEWOBJ, EXT*, PERSID,
 * out-of-band buffers, protocol 0/1 text opcodes...) and a REDUCE or
 * BUILD on anything else is refused with "WHAT: pickle: byte N: ..."
 * naming the opcode or global.
 *
 * Bounded (tl_pk_limits; 0 fields take the defaults below): bytes the
 * tree may allocate (values, item arrays, bytes decoded from
 * _codecs.encode; the input itself is not copied), memo index, nesting
 * depth (marks and containers), stack entries and items per container;
 * the stack and memo arrays, outside the tree, take at most 8 bytes per
 * allowed entry (8 MiB each by default).  Every length is checked against
 * the input left; a limit crossed is an error, never a truncation.  The tree has no cycles (a list or dict can
 * only be changed before it is put into another container, and never
 * into itself) but may share nodes (the memo): walk it, don't copy it
 * recursively without a budget.  A dict may hold a key twice (as a
 * pickle can say); tl_pk_get returns the last, as Python would keep. */
#ifndef TL_PICKLE_H
#define TL_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "tl.h"

#define TL_PK_MAX_BYTES ((size_t)1 << 30) /* tree allocation, input not counted */
#define TL_PK_MAX_MEMO (1u << 20)         /* memo indices 0 .. MAX-1 */
#define TL_PK_MAX_DEPTH 64u               /* open marks; container nesting */
#define TL_PK_MAX_STACK (1u << 20)        /* values on the stack */
#define TL_PK_MAX_ITEMS ((size_t)1 << 24) /* items of one list, tuple or dict */
#define TL_PK_MAX_NDIM 8

typedef struct {
	size_t max_bytes;
	uint32_t max_memo, max_depth, max_stack;
	size_t max_items;
} tl_pk_limits;

typedef enum {
	TL_PK_NONE,
	TL_PK_BOOL,
	TL_PK_INT,
	TL_PK_FLOAT,
	TL_PK_BYTES,   /* bytes, bytearray, Python 2 str */
	TL_PK_STR,     /* Python 3 str / Python 2 unicode: valid UTF-8 */
	TL_PK_LIST,
	TL_PK_TUPLE,
	TL_PK_DICT,    /* dict or OrderedDict, in insertion order */
	TL_PK_NDARRAY, /* numpy array */
	TL_PK_DTYPE,   /* numpy dtype */
	TL_PK_GLOBAL,  /* a whitelisted class or function, as a name only */
	TL_PK_STORAGE, /* torch storage reference (BINPERSID) */
	TL_PK_TENSOR   /* torch tensor: a view of a storage */
} tl_pk_type;

typedef enum {
	TL_PK_BOOL8, TL_PK_U8, TL_PK_I8, TL_PK_U16, TL_PK_I16, TL_PK_U32, TL_PK_I32,
	TL_PK_U64, TL_PK_I64, TL_PK_F16, TL_PK_BF16, TL_PK_F32, TL_PK_F64
} tl_pk_dtype;

typedef struct tl_pk_value tl_pk_value;

typedef struct {
	tl_pk_dtype dtype;
	int big_endian;             /* data's byte order (0 for one-byte types) */
	int fortran;                /* numpy: column-major data */
	int ndim;
	int64_t shape[TL_PK_MAX_NDIM];
	int64_t stride[TL_PK_MAX_NDIM]; /* tensor: in elements */
	const uint8_t *data;        /* ndarray: the elements (nbytes) */
	size_t nbytes;
	/* tensor */
	const tl_pk_value *storage;
	int64_t offset;             /* in elements of the storage */
	int requires_grad;
} tl_pk_array;

struct tl_pk_value {
	tl_pk_type type;
	uint8_t sealed;  /* reader's: list/dict inside another value */
	uint8_t pending; /* reader's: awaits BUILD */
	uint8_t odict;   /* reader's: a dict made by collections.OrderedDict() */
	uint16_t depth;  /* nesting below this value */
	union {
		int b;                   /* BOOL */
		int64_t i;               /* INT */
		double f;                /* FLOAT */
		struct {
			const uint8_t *p; /* not NUL-terminated */
			size_t n;
		} s;                     /* BYTES, STR */
		struct {
			tl_pk_value **items; /* LIST, TUPLE items; DICT keys */
			tl_pk_value **vals;  /* DICT values */
			size_t n, cap;
			const tl_pk_value *attrs; /* OrderedDict BUILD state (a dict) or NULL */
		} c;
		tl_pk_array *a;          /* NDARRAY, TENSOR */
		struct {
			tl_pk_dtype dtype;
			int big_endian;
		} dt;                    /* DTYPE */
		struct {
			int id;          /* reader's whitelist entry */
			const char *module, *name;
		} g;                     /* GLOBAL */
		struct {
			tl_pk_dtype dtype;
			const uint8_t *key, *location;
			size_t key_len, location_len;
			int64_t numel;
			const tl_pk_value *next; /* tl_pickle_storages' list */
		} st;                    /* STORAGE */
	} u;
};

typedef struct tl_pickle tl_pickle;

/* Read the pickle in buf[0..n) (protocol 2 to 5, exactly one pickle:
 * bytes after STOP are an error).  what names the input in messages
 * ("FILE: MEMBER").  lim may be NULL (defaults).  On success *out holds
 * the tree; bytes and str values and arrays may point into buf, so buf
 * must outlive *out.  On failure *out is NULL and err says
 * "WHAT: pickle: byte N: what is wrong (expected X, got Y)":
 * TL_EFORMAT for anything refused or damaged, TL_ENOMEM when malloc
 * fails (a limit crossed is TL_EFORMAT). */
tl_status tl_pickle_load(tl_pickle **out, const uint8_t *buf, size_t n, const tl_pk_limits *lim,
			 const char *what, tl_err *err);

/* tl_pickle_load for the first of several pickles in buf (torch's
 * legacy format writes five in a row): bytes after STOP are left alone
 * and *used gets the length of the pickle read (NULL: as tl_pickle_load). */
tl_status tl_pickle_load_prefix(tl_pickle **out, const uint8_t *buf, size_t n,
				const tl_pk_limits *lim, size_t *used, const char *what, tl_err *err);

/* The value STOP returned. */
const tl_pk_value *tl_pickle_root(const tl_pickle *pk);

/* Every storage a BINPERSID made, newest first, linked by u.st.next
 * (NULL when none): a torch file's storages, also those no tensor uses. */
const tl_pk_value *tl_pickle_storages(const tl_pickle *pk);

/* Bytes the tree allocated (for tests of the limits). */
size_t tl_pickle_bytes(const tl_pickle *pk);

/* Free the tree (NULL-safe). */
void tl_pickle_free(tl_pickle *pk);

/* In dict d, the value of the last key equal to key as str or as bytes
 * (CIFAR's b'data', torchvision's 'data'); NULL when d is not a dict or
 * has no such key. */
const tl_pk_value *tl_pk_get(const tl_pk_value *d, const char *key);

/* 1 when v is bytes or str equal to s. */
int tl_pk_text_is(const tl_pk_value *v, const char *s);

/* Names for messages: "list", "numpy array"...; "uint8", "float32"... */
const char *tl_pk_type_name(tl_pk_type t);
const char *tl_pk_dtype_name(tl_pk_dtype d);
/* Bytes per element. */
size_t tl_pk_dtype_size(tl_pk_dtype d);

#endif
