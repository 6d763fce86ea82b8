/* fuzz_shard.c - libFuzzer harness for the .tls reader: the input is a
 * whole shard file; open it (header, split/segment tables, names, label
 * and chunk-table checksums), then verify every chunk, read every record
 * of every split as float and describe it.  Any crash, leak, UB or hang
 * is a bug: a damaged shard must only ever produce an error.
 * Built by bench/fuzz.sh (clang -fsanitize=fuzzer,address,undefined). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "data/shard.h"
#include "fuzz.h"

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}
static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Most mutations only break a checksum.  When the low bit of byte 24 (in
 * the header-hash field, which is overwritten) is set, recompute the label,
 * record-name (version 2), class-name (version 3), chunk-table and
 * image-chunk hashes wherever the header's offsets allow, then the header
 * hash (man/tlshard.5 layout), so mutated fields reach the checks behind
 * the checksums. */
static void fix_hashes(uint8_t *b, size_t n)
{
	if (n < 4096 || !(b[24] & 1))
		return;
	uint32_t hs = (uint32_t)rd64(b + 12) & 0xffffffffu;
	uint64_t recs = rd64(b + 112), rb = rd64(b + 120) & 0xffffffffu,
		 cr = rd64(b + 124) & 0xffffffffu, nch = rd64(b + 128), io = rd64(b + 136),
		 lo = rd64(b + 152), cto = rd64(b + 176);
	uint32_t v = (uint32_t)rd64(b + 8) & 0xffffffffu;
	uint64_t rno = v >= 2 ? rd64(b + 3096) : 0, rns = v >= 2 ? rd64(b + 3104) : 0,
		 cno = v >= 3 ? rd64(b + 3120) : cto;
	uint64_t lend = rns ? rno : cno; /* sections: labels, names, class names, chunk table */
	if (lo <= lend && lend <= n)
		wr64(b + 168, XXH3_64bits(b + lo, lend - lo));
	if (rns && rno <= cno && cno <= n)
		wr64(b + 3112, XXH3_64bits(b + rno, cno - rno));
	if (v >= 3 && cno <= cto && cto <= n)
		wr64(b + 3136, XXH3_64bits(b + cno, cto - cno));
	if (cto <= n && nch <= (n - cto) / 8) {
		uint64_t cb = cr * rb;
		for (uint64_t c = 0; cr && rb && cb / rb == cr && c < nch && c < 4096; c++) {
			uint64_t s = io + c * cb, e = c + 1 == nch ? lo : s + cb;
			if (s <= e && e <= n && s >= io)
				wr64(b + cto + 8 * c, XXH3_64bits(b + s, e - s));
		}
		wr64(b + 184, XXH3_64bits(b + cto, nch * 8));
	}
	(void)recs;
	if (hs >= 64 && hs <= n) {
		memset(b + 24, 0, 8);
		wr64(b + 24, XXH3_64bits(b, hs));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		abort();
	memcpy(b, data, size);
	fix_hashes(b, size);
	const char *path = fuzz_file("shard", "tls", b, size);
	free(b);
	tl_shard *sh;
	tl_err err;
	if (tl_shard_open(&sh, path, &err) == TL_OK) {
		const tl_shard_info *in = &sh->info;
		uint64_t px = (uint64_t)in->channels * in->height * in->width;
		float *buf = px <= (1u << 22) ? malloc(px * sizeof *buf) : NULL;
		tl_shard_verify(sh, NULL, NULL, &err);
		for (uint32_t s = 0; buf && s < in->n_splits; s++)
			for (uint64_t i = 0; i < in->splits[s].count && i < 64; i++) {
				uint64_t r = tl_shard_file_record(sh, (int)s, i);
				uint32_t c = tl_shard_label(sh, r, 0);
				if (strlen(tl_shard_class_name(sh, c)) > 255) /* checked at open */
					abort();
				if (in->n_label_fields > 1)
					(void)tl_shard_coarse_name(sh, tl_shard_label(sh, r, 1));
				if (tl_shard_load_f32(sh, r, buf, &err) != TL_OK)
					break;
			}
		FILE *null = fopen("/dev/null", "w");
		tl_shard_describe(sh, null);
		fclose(null);
		free(buf);
		tl_shard_close(sh);
	}
	unlink(path);
	return 0;
}
