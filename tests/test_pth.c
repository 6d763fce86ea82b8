/* test_pth.c - the .pth reader and import (nn/pth.c) on files written by
 * Debian's torch 1.13 (tools/make-pth-fixtures.py small): the zip and the
 * legacy container of one checkpoint {'epoch', 'state_dict' with
 * 'module.' prefixes, 'optimizer'} give exactly the tensors torch itself
 * gives (pth-small.safetensors, written from torch's values: float32/16,
 * bfloat16, int64 0-dim, uint8, float64 rounded, non-contiguous views and
 * slices of one shared storage copied out); the import writes them with
 * the metadata; every truncation of either file is refused with a message
 * naming the input; torchvision file names map to tlkit models. */
#include "tl_test.h"

#include <string.h>
#include <unistd.h>

#include "nn/pth.h"
#include "nn/safetensors.h"

static void fixture(char *buf, size_t n, const char *name)
{
	const char *d = getenv("top_srcdir");
	snprintf(buf, n, "%s/tests/fixtures/%s", d ? d : ".", name);
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*n);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

/* every tensor of p equals the expected file's, bit for bit */
static void same_as_expected(const tl_pth *p)
{
	char ex[4096];
	fixture(ex, sizeof ex, "pth-small.safetensors");
	tl_st_file *e;
	tl_err err;
	assert_int_equal(tl_st_open(&e, ex, &err), TL_OK);
	assert_int_equal(tl_pth_count(p), e->n);
	assert_int_equal(e->n, 13);
	for (size_t i = 0; i < tl_pth_count(p); i++) {
		const tl_pth_tensor *t = tl_pth_at(p, i);
		const tl_st_tensor *w = tl_st_find(e, t->name);
		assert_non_null(w);
		assert_int_equal(t->dtype, w->dtype);
		assert_int_equal(t->ndim, w->ndim);
		for (int d = 0; d < t->ndim; d++)
			assert_int_equal(t->shape[d], w->shape[d]);
		assert_int_equal(t->nbytes, w->nbytes);
		assert_memory_equal(t->data, w->data, t->nbytes);
	}
	tl_st_close(e);
}

static void check_file(const char *name, const char *format)
{
	char path[4096];
	fixture(path, sizeof path, name);
	tl_pth *p;
	tl_err err;
	assert_int_equal(tl_pth_open(&p, path, &err), TL_OK);
	assert_string_equal(tl_pth_format(p), format);
	assert_string_equal(tl_pth_dict_key(p), "state_dict");
	assert_string_equal(tl_pth_prefix(p), "module.");
	assert_int_equal(tl_pth_converted(p), 1); /* 'd' */
	/* the checkpoint's order is kept */
	assert_string_equal(tl_pth_at(p, 0)->name, "conv.weight");
	assert_string_equal(tl_pth_at(p, 3)->name, "bn.num_batches_tracked");
	assert_int_equal(tl_pth_at(p, 3)->ndim, 0);
	assert_int_equal(tl_pth_at(p, 3)->dtype, TL_ST_I64);
	int64_t v;
	memcpy(&v, tl_pth_at(p, 3)->data, 8);
	assert_int_equal(v, 7);
	same_as_expected(p);
	tl_pth_free(p);
}

static void test_zip(void **state)
{
	(void)state;
	check_file("pth-small.pth", "zip");
}

static void test_legacy(void **state)
{
	(void)state;
	check_file("pth-small-legacy.pth", "legacy");
}

static void test_import(void **state)
{
	(void)state;
	char in[4096], out[] = "/tmp/tl-test-pth-XXXXXX";
	int fd = mkstemp(out);
	assert_true(fd >= 0);
	close(fd);
	fixture(in, sizeof in, "pth-small.pth");
	tl_pth_info info;
	tl_err err;
	assert_int_equal(tl_pth_import(in, out, &info, &err), TL_OK);
	assert_int_equal(info.n_tensors, 13);
	assert_string_equal(info.model, ""); /* not a torchvision file name */
	tl_st_file *f;
	assert_int_equal(tl_st_open(&f, out, &err), TL_OK);
	assert_string_equal(tl_st_meta(f, "normalization"), "torch");
	assert_string_equal(tl_st_meta(f, "source"), "pth-small.pth");
	assert_string_equal(tl_st_meta(f, "source_xxh3"), info.xxh3);
	assert_string_equal(tl_st_meta(f, "prefix_removed"), "module.");
	assert_string_equal(tl_st_meta(f, "state_dict"), "state_dict");
	assert_null(tl_st_meta(f, "model"));
	char ex[4096];
	fixture(ex, sizeof ex, "pth-small.safetensors");
	tl_st_file *e;
	assert_int_equal(tl_st_open(&e, ex, &err), TL_OK);
	assert_int_equal(f->n, e->n);
	for (size_t i = 0; i < e->n; i++) {
		const tl_st_tensor *a = tl_st_find(f, e->t[i].name);
		assert_non_null(a);
		assert_int_equal(a->nbytes, e->t[i].nbytes);
		assert_memory_equal(a->data, e->t[i].data, a->nbytes);
	}
	tl_st_close(e);
	tl_st_close(f);
	unlink(out);
}

/* Every prefix of both files is refused, with the input named first. */
static void test_truncated(void **state)
{
	(void)state;
	const char *names[] = {"pth-small.pth", "pth-small-legacy.pth"};
	for (int k = 0; k < 2; k++) {
		char path[4096];
		fixture(path, sizeof path, names[k]);
		size_t n;
		uint8_t *b = slurp(path, &n);
		for (size_t cut = 0; cut < n; cut++) {
			uint8_t *c = malloc(cut ? cut : 1);
			memcpy(c, b, cut);
			tl_pth *p;
			tl_err err;
			tl_status st = tl_pth_read_mem(&p, c, cut, "cut", &err);
			if (st != TL_EFORMAT)
				fail_msg("%s cut at %zu: status %d", names[k], cut, st);
			assert_null(p);
			assert_memory_equal(err.msg, "cut: ", 5);
			free(c);
		}
		free(b);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tl_pth_model_of("vgg16-397923af.pth"), "vgg16");
	assert_string_equal(tl_pth_model_of("squeezenet1_1-b8a52dc0.pth"), "squeezenet");
	assert_string_equal(tl_pth_model_of("alexnet-owt-7be5be79.pth"), "alexnet");
	assert_string_equal(tl_pth_model_of("mobilenet_v2-b0353104.pth"), "mobilenetv2");
	assert_null(tl_pth_model_of("resnet18-f37072fd.pth")); /* no registry row yet */
	assert_null(tl_pth_model_of("googlenet-1378be20.pth")); /* not the BVLC graph */
	assert_null(tl_pth_model_of("vgg16.pth"));
	assert_string_equal(tl_pth_file_of("mobilenetv2", 1), "mobilenet_v2-7ebf99e0.pth");
	assert_null(tl_pth_file_of("mobilenetv2", 2));
	assert_null(tl_pth_file_of("googlenet", 0));
	assert_true(tl_pth_sniff((const uint8_t *)"PK\3\4", 4));
	assert_false(tl_pth_sniff((const uint8_t *)"\x80\x02}q", 4)); /* a bare pickle */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zip),       cmocka_unit_test(test_legacy),
		cmocka_unit_test(test_import),    cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
