/* old-shards.c - writes tests/fixtures/shard-v1.tls and shard-v2.tls with
 * the shard writer of format version 2 (src/data/shard.c as of commit
 * 33c22dc, before version 3), so that test_shard proves old files still
 * read and that today's writer still writes them byte for byte.  Not
 * built by make; to regenerate:
 *   git show 33c22dc:src/data/shard.c >/tmp/o/data/shard.c (and shard.h)
 *   cc -Ibuild -I/tmp/o -Isrc -c /tmp/o/data/shard.c tools/old-shards.c
 *   cc shard.o old-shards.o build/src/.libs/libtl.a -lxxhash -lm -lpthread
 *   ./a.out tests/fixtures/shard-v1.tls tests/fixtures/shard-v2.tls
 * Content: 11 records of 3x2x2 u8 (byte k of record r is r*16+k), label
 * r % 3 (cat, dog, ship), train 0..7 and test 8..10, chunks of 4; v2 adds
 * record names ("cat/0.png", ...), fit crop, test fraction 0.25, seed 7. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "data/shard.h"
static int one(const char *path, int v2)
{
	tl_shard_info proto;
	memset(&proto, 0, sizeof proto);
	proto.channels = 3, proto.height = 2, proto.width = 2;
	proto.dtype = TL_DTYPE_U8;
	tl_norm_preset(TL_NORM_CAFFE, &proto.norm);
	proto.n_label_fields = 1;
	proto.chunk_records = 4;
	tl_shard_writer *w;
	tl_err err;
	if (tl_shard_writer_open(&w, path, &proto, &err)) return puts(err.msg), 1;
	/* 11 records: that writer hashed the last chunk without the padding
	 * before the labels when the records filled it exactly */
	uint8_t rec[64 * 11] = {0}, lab[11];
	const char *names[11];
	char buf[11][32];
	for (int r = 0; r < 11; r++) {
		for (int k = 0; k < 12; k++) rec[r * 64 + k] = (uint8_t)(r * 16 + k);
		lab[r] = (uint8_t)(r % 3);
		snprintf(buf[r], 32, "%s/%d.png", r % 3 == 0 ? "cat" : r % 3 == 1 ? "dog" : "ship", r);
		names[r] = buf[r];
	}
	if (tl_shard_writer_segment(w, "train", "train", 0, &err) ||
	    tl_shard_writer_append_named(w, rec, lab, v2 ? names : NULL, 8, &err) ||
	    tl_shard_writer_segment(w, "test", "test", 0, &err) ||
	    tl_shard_writer_append_named(w, rec + 8 * 64, lab + 8, v2 ? names + 8 : NULL, 3, &err))
		return puts(err.msg), 1;
	tl_shard_info *in = tl_shard_writer_info(w);
	in->n_classes = 3;
	strcpy(in->class_names[0], "cat");
	strcpy(in->class_names[1], "dog");
	strcpy(in->class_names[2], "ship");
	strcpy(in->dataset, v2 ? "pets" : "tiny");
	strcpy(in->source_name, v2 ? "pets" : "tiny.bin");
	if (v2) in->fit = 1, in->test_fraction = 0.25, in->test_seed = 7;
	if (tl_shard_writer_finish(w, &err)) return puts(err.msg), 1;
	return 0;
}
int main(int argc, char **argv)
{
	(void)argc;
	return one(argv[1], 0) || one(argv[2], 1);
}
