/* test_plot.c - the pictures (plot/chart), run files (plot/run) and image
 * decoding (data/imgio).  Pictures are decoded back with cairo's PNG
 * reader and checked for size and for the ink of what was drawn; images
 * are encoded here with libpng and libjpeg and decoded with tl_img. */
#include <cairo.h>
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tl_test.h"

#include "data/imgio.h"
#include "plot/chart.h"
#include "plot/run.h"
#include "train/grid.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return tl_test_mkdir(dir, sizeof dir, "plot");
}

static int teardown(void **state)
{
	(void)state;
	return tl_test_rmdir(dir);
}

static void write_text(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Decode a PNG with cairo; count pixels within 40 of (r, g, b) and the non-white ones. */
static void png_stats(const char *path, int *w, int *h, long *near, int r, int g, int b, long *ink)
{
	cairo_surface_t *s = cairo_image_surface_create_from_png(path);
	assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
	*w = cairo_image_surface_get_width(s), *h = cairo_image_surface_get_height(s);
	unsigned char *d = cairo_image_surface_get_data(s);
	int stride = cairo_image_surface_get_stride(s);
	*near = *ink = 0;
	for (int y = 0; y < *h; y++)
		for (int x = 0; x < *w; x++) {
			uint32_t p = ((uint32_t *)(d + (size_t)y * stride))[x];
			int pr = p >> 16 & 255, pg = p >> 8 & 255, pb = p & 255;
			*near += abs(pr - r) < 40 && abs(pg - g) < 40 && abs(pb - b) < 40;
			*ink += pr < 200 || pg < 200 || pb < 200;
		}
	cairo_surface_destroy(s);
}

static void test_ticks(void **state)
{
	(void)state;
	double f, s;
	int n;
	tl_plot_ticks(0, 1, 5, 0, &f, &s, &n);
	assert_close(f, 0, 1e-12, 0); assert_close(s, 0.2, 1e-12, 1e-12); assert_int_equal(n, 6);
	tl_plot_ticks(0.41, 0.78, 5, 0, &f, &s, &n);
	assert_close(f, 0.5, 1e-12, 1e-12); assert_close(s, 0.1, 1e-12, 1e-12); assert_int_equal(n, 3);
	tl_plot_ticks(0.7, 7.3, 10, 1, &f, &s, &n); /* epochs: whole numbers */
	assert_close(f, 1, 0, 0); assert_close(s, 1, 0, 0); assert_int_equal(n, 7);
	tl_plot_ticks(0.5, 1.5, 8, 1, &f, &s, &n); /* one epoch */
	assert_close(f, 1, 0, 0); assert_int_equal(n, 1);
	tl_plot_ticks(0, 1e6, 1000, 0, &f, &s, &n);
	assert_true(n <= 64);
}

static void test_history_files(void **state)
{
	(void)state;
	char p[256];
	/* a resumed run: epoch 3 written twice, the later row wins; a NaN; an
	 * extra column; the stages from history.json */
	write_text("history.csv", "epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds\n"
				  "1,0.4,1.7,0.5,1.4,0.001,3\n2,0.5,1.3,nan,nan,0.001,3\n"
				  "3,0.1,9,0.1,9,0.001,1\n3,0.6,1.1,0.62,1.1,0.0001,3\n"
				  "4,0.7,0.9,0.61,1.2,0.0001,3\n");
	write_text("history.json", "[{\"epoch\":1,\"stage\":0},{\"epoch\":2,\"stage\":0},{\"epoch\":3,\"stage\":1},{\"epoch\":4,\"stage\":1}]\n");
	tl_rundata r;
	tl_err err;
	assert_int_equal(tl_run_load(&r, dir, &err), TL_OK);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.epoch[2], 3);
	assert_close(r.acc[2], 0.6, 1e-12, 0);
	assert_true(isnan(r.val_acc[1]));
	assert_int_equal(r.unfreeze_epoch, 3); /* first epoch of stage 1 */
	assert_int_equal(r.best_epoch, 3);     /* max val_accuracy without a report */
	assert_int_equal(r.k, 0);
	snprintf(p, sizeof p, "%s/h.png", dir);
	assert_int_equal(tl_run_plot_history(&r, p, &err), TL_OK);
	int w, h;
	long blue, ink;
	png_stats(p, &w, &h, &blue, 0, 115, 178, &ink); /* validation is drawn in (0, 115, 178) */
	assert_int_equal(w, 1000); assert_int_equal(h, 420);
	assert_true(blue > 100);
	assert_true(ink > 5000);
	tl_run_free(&r);

	/* one epoch, from a lone CSV file with columns in another order and no lr */
	write_text("one.csv", "val_loss,epoch,loss,accuracy,val_accuracy\n1.1,1,1.2,0.5,0.55\n");
	snprintf(p, sizeof p, "%s/one.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	assert_int_equal(r.n, 1);
	assert_close(r.val_loss[0], 1.1, 1e-12, 0);
	assert_true(isnan(r.lr[0]));
	snprintf(p, sizeof p, "%s/one.svg", dir);
	assert_int_equal(tl_run_plot_history(&r, p, &err), TL_OK);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size > 1000);
	FILE *f = fopen(p, "r");
	char head[64] = "";
	assert_non_null(fgets(head, sizeof head, f));
	fclose(f);
	assert_non_null(strstr(head, "<?xml"));
	tl_run_free(&r);

	/* all NaN: axes and "no data", no failure */
	write_text("nan.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,nan,nan,nan,nan\n2,nan,nan,nan,nan\n");
	snprintf(p, sizeof p, "%s/nan.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	snprintf(p, sizeof p, "%s/nan.png", dir);
	assert_int_equal(tl_run_plot_history(&r, p, &err), TL_OK);
	tl_run_free(&r);

	/* damaged files: the error names the file and line */
	write_text("bad.csv", "epoch,accuracy\n1,0.5\n2,zero\n");
	snprintf(p, sizeof p, "%s/bad.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "bad.csv: line 3"));
	assert_non_null(strstr(err.msg, "zero"));
	write_text("nohdr.csv", "1,0.5\n");
	snprintf(p, sizeof p, "%s/nohdr.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "epoch column"));
	snprintf(p, sizeof p, "%s/x.gif", dir);
	tl_plot_panel pn = {0};
	pn.y_min = pn.y_max = NAN;
	assert_int_equal(tl_plot_lines(p, "t", &pn, 1, 300, 200, NULL, &err), TL_EUSAGE);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_report_roundtrip(void **state)
{
	(void)state;
	enum { K = 100 };
	static uint64_t cm[K * K];
	static char name_buf[K][16];
	const char *names[K];
	for (int i = 0; i < K; i++) {
		snprintf(name_buf[i], sizeof name_buf[i], "c%d", i);
		names[i] = name_buf[i];
		for (int j = 0; j < K; j++)
			cm[i * K + j] = i == j ? 50 + (uint64_t)i % 7 : (uint64_t)(i * 31 + j * 17) % 3;
	}
	char sub[128];
	snprintf(sub, sizeof sub, "%s/run", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	char p[256];
	snprintf(p, sizeof p, "%s/history.csv", sub);
	FILE *f = fopen(p, "w");
	fputs("epoch,accuracy,loss,val_accuracy,val_loss,lr\n1,0.2,3,0.3,2.8,0.01\n2,0.3,2.5,0.35,2.6,0.01\n", f);
	fclose(f);
	tl_run_summary s = {.model = "squeezenet", .strategy = "finetune", .unit = "fire9",
			    .unfreeze_epoch = 2, .best_epoch = 2, .epochs_run = 2, .monitor = "val_accuracy",
			    .best_metric = 0.35, .has_test = 1, .test_accuracy = 0.9, .macro_f1 = 0.88,
			    .latency_ms = 1.5, .train_seconds = 7.8, .epoch_seconds = 0.37,
			    .prefix_cache_seconds = 7.43, .params_total = 723914, .params_trainable = 5130,
			    .peak_memory_mib = 212.5, .model_bytes = 2900000, .device = "cpu", .k = K,
			    .cm = cm, .names = names};
	tl_err err;
	assert_int_equal(tl_run_write_report(sub, &s, &err), TL_OK);
	tl_rundata r;
	assert_int_equal(tl_run_load(&r, sub, &err), TL_OK);
	assert_string_equal(r.model, "squeezenet");
	assert_string_equal(r.unit, "fire9");
	assert_int_equal(r.unfreeze_epoch, 2);
	assert_int_equal(r.best_epoch, 2);
	assert_true(r.restored); /* tltrain's report: the best weights were restored */
	assert_int_equal(r.epoch_shift, 0);
	/* the comparative study's numbers come back from report.json */
	assert_int_equal(r.params_total, 723914);
	assert_int_equal(r.params_trainable, 5130);
	assert_close(r.train_seconds, 7.8, 1e-9, 0);
	assert_close(r.macro_f1, 0.88, 1e-9, 0);
	assert_close(r.latency_ms, 1.5, 1e-9, 0);
	assert_string_equal(r.device, "cpu");
	snprintf(p, sizeof p, "%s/report.json", sub);
	char *js = NULL;
	size_t jn = 0;
	f = fopen(p, "r");
	assert_non_null(f);
	assert_true(getdelim(&js, &jn, 0, f) > 0);
	fclose(f);
	static const char *const keys[] = {"\"epoch_seconds\": 0.37", "\"prefix_cache_seconds\": 7.43",
					   "\"train_seconds\": 7.8", "\"peak_memory_mib\": 212.5",
					   "\"model_bytes\": 2900000", "\"device\": \"cpu\"",
					   "\"params_total\": 723914", "\"params_trainable\": 5130"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!strstr(js, keys[i]))
			fail_msg("report.json lacks %s", keys[i]);
	free(js);
	assert_int_equal(r.k, K);
	assert_string_equal(r.names[42], "c42");
	assert_memory_equal(r.cm, cm, sizeof cm);
	static const char *const exts[] = {"png", "svg"};
	int n;
	assert_int_equal(tl_run_plot(&r, sub, exts, 2, &n, &err), TL_OK);
	assert_int_equal(n, 4);
	int w, h;
	long dark, ink;
	snprintf(p, sizeof p, "%s/confusion.png", sub);
	png_stats(p, &w, &h, &dark, 8, 48, 107, &ink); /* the diagonal is near the ramp's dark end */
	assert_true(w >= 500 && h >= 500);
	assert_true(dark >= 100); /* 100 diagonal cells of at least 5x5 */
	tl_run_free(&r);

	/* a truncated confusion.csv is an error naming it */
	snprintf(p, sizeof p, "%s/confusion.csv", sub);
	assert_int_equal(truncate(p, 300), 0);
	assert_int_equal(tl_run_load(&r, sub, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "confusion.csv"));
}

/* The number of temporary files (".NAME.tmp.*") left in directory d. */
static int temporaries(const char *d)
{
	DIR *dd = opendir(d);
	assert_non_null(dd);
	int n = 0;
	for (struct dirent *e; (e = readdir(dd));)
		n += e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL;
	closedir(dd);
	return n;
}

/* Whether d/name exists. */
static int exists_at(const char *d, const char *name)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", d, name);
	return access(p, F_OK) == 0;
}

/* Text for cairo: cut only between characters, invalid bytes replaced or
 * refused (issue 29 item 10). */
static void test_utf8(void **state)
{
	(void)state;
	static const char *const good[] = {"", "abc", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
					   "\xF4\x8F\xBF\xBF"};
	static const char *const bad[] = {"\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",
					  "\xF4\x90\x80\x80", "\xFF", "a\x80", "\xE2\x82"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(tl_plot_utf8_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(tl_plot_utf8_valid(bad[i], strlen(bad[i])));
	char u40[41] = "", buf[32];
	for (int i = 0; i < 20; i++)
		strcat(u40, "\xC3\xBC"); /* 20 x u-umlaut: 40 bytes */
	/* 32 bytes of room: 14 whole characters (28 bytes), the ellipsis, NUL */
	assert_int_equal(tl_plot_utf8_clip(buf, sizeof buf, u40, 100), 31);
	assert_memory_equal(buf, u40, 28);
	assert_string_equal(buf + 28, "\xE2\x80\xA6");
	assert_true(tl_plot_utf8_valid(buf, strlen(buf)));
	for (size_t n = 4; n <= sizeof buf; n++) { /* never mid-character */
		tl_plot_utf8_clip(buf, n, u40, 100);
		assert_true(tl_plot_utf8_valid(buf, strlen(buf)));
		assert_true(strlen(buf) < n);
	}
	assert_int_equal(tl_plot_utf8_clip(buf, sizeof buf, "abcdefg", 5), 8);
	assert_string_equal(buf, "abcde\xE2\x80\xA6");
	assert_int_equal(tl_plot_utf8_clip(buf, 7, "abc", 3), 3); /* fits exactly: not cut */
	assert_string_equal(buf, "abc");
	tl_plot_utf8_clip(buf, sizeof buf, "a\xFF" "b", 10);
	assert_string_equal(buf, "a\xEF\xBF\xBD" "b");
	char *t = tl_plot_text(u40, 32);
	assert_string_equal(t, u40); /* 20 characters: whole */
	free(t);
	/* the chart refuses what cairo would fail on, and writes nothing */
	char p[256];
	snprintf(p, sizeof p, "%s/bad-title.png", dir);
	tl_plot_panel pn = {0};
	pn.y_min = pn.y_max = NAN;
	tl_err err;
	assert_int_equal(tl_plot_lines(p, "run \xC3", &pn, 1, 300, 200, NULL, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "bad-title.png: the title is not valid UTF-8 (byte 5 is 0xc3)"));
	assert_int_equal(access(p, F_OK), -1);
}

/* A 40-byte UTF-8 class name is kept whole and drawn; a name that is not
 * UTF-8 and counts whose total wraps past 2^64 are refused naming the
 * file and line (issue 29 item 10). */
static void test_confusion_input(void **state)
{
	(void)state;
	char sub[128], p[256];
	snprintf(sub, sizeof sub, "%s/cmu", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_text("cmu/history.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1,0.5,1\n");
	char u40[41] = "";
	for (int i = 0; i < 20; i++)
		strcat(u40, "\xC3\xBC");
	char text[256];
	snprintf(text, sizeof text, "true\\predicted,%s,b\n%s,7,1\nb,2,5\n", u40, u40);
	write_text("cmu/confusion.csv", text);
	tl_rundata r;
	tl_err err;
	assert_int_equal(tl_run_load(&r, sub, &err), TL_OK);
	assert_int_equal(r.k, 2);
	assert_string_equal(r.names[0], u40); /* not cut at 31 bytes */
	static const char *const exts[] = {"png", "svg"};
	int n = 0;
	assert_int_equal(tl_run_plot(&r, sub, exts, 2, &n, &err), TL_OK);
	assert_int_equal(n, 4);
	assert_true(exists_at(sub, "confusion.png") && exists_at(sub, "confusion.svg"));
	tl_run_free(&r);

	write_text("cmu/confusion.csv", "true\\predicted,a,\xC3\n" "a,1,0\nb,0,1\n");
	assert_int_equal(tl_run_load(&r, sub, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "cmu/confusion.csv: line 1: field 3: class name is not valid UTF-8"));

	/* 2^64 - 1 + 1 wraps to 0: the row sum, total and accuracy would lie */
	write_text("cmu/confusion.csv", "true\\predicted,a,b\na,18446744073709551615,0\nb,1,0\n");
	assert_int_equal(tl_run_load(&r, sub, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "cmu/confusion.csv: line 3: field 2: counts too large"));
	write_text("cmu/confusion.csv", "true\\predicted,a,b\na,18446744073709551615,0\nb,0,0\n");
	assert_int_equal(tl_run_load(&r, sub, &err), TL_OK); /* the largest total that fits */
	assert_int_equal(r.cm[0], UINT64_MAX);
	tl_run_free(&r);

	/* the chart checks the same on its own */
	uint64_t cm[4] = {UINT64_MAX - 1, 1, 1, 0};
	snprintf(p, sizeof p, "%s/wrap.png", sub);
	assert_int_equal(tl_plot_confusion(p, "t", 2, cm, NULL, NULL, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "wrap.png: confusion matrix: counts too large"));
	assert_non_null(strstr(err.msg, "row 2, column 1"));
	assert_int_equal(access(p, F_OK), -1);
	cm[2] = 0; /* a total of exactly 2^64 - 1 draws */
	assert_int_equal(tl_plot_confusion(p, "t", 2, cm, NULL, NULL, &err), TL_OK);
	const char *bad_names[2] = {"ok", "\xE2\x82"};
	assert_int_equal(tl_plot_confusion(p, "t", 2, cm, bad_names, NULL, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "class name 2 is not valid UTF-8"));
}

/* A call writes every picture or none: when the last one cannot be
 * drawn, the ones drawn before it are not left behind (issue 29 item 10). */
static void test_all_or_nothing(void **state)
{
	(void)state;
	char sub[128];
	snprintf(sub, sizeof sub, "%s/aon", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_text("aon/history.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1,0.5,1\n2,0.6,0.9,0.55,0.95\n");
	write_text("aon/confusion.csv", "true\\predicted,a,b\na,3,1\nb,0,4\n");
	tl_rundata r;
	tl_err err;
	assert_int_equal(tl_run_load(&r, sub, &err), TL_OK);
	free(r.names[1]);
	r.names[1] = strdup("b\xC3"); /* what a caller that skips the checks may hand over */
	static const char *const exts[] = {"png", "svg"};
	int n = -1;
	assert_int_equal(tl_run_plot(&r, sub, exts, 2, &n, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "confusion.png: class name 2 is not valid UTF-8"));
	assert_int_equal(n, 0);
	assert_false(exists_at(sub, "history.png"));
	assert_false(exists_at(sub, "history.svg"));
	assert_false(exists_at(sub, "confusion.png"));
	assert_int_equal(temporaries(sub), 0);
	/* mended, the same call writes them all */
	free(r.names[1]);
	r.names[1] = strdup("b");
	assert_int_equal(tl_run_plot(&r, sub, exts, 1, &n, &err), TL_OK);
	assert_int_equal(n, 2);
	assert_true(exists_at(sub, "history.png") && exists_at(sub, "confusion.png"));
	tl_run_free(&r);
}

/* Accuracies outside 0..1, infinite losses and a history with no epochs
 * are refused naming the file, line and column; extreme finite values
 * still draw (issue 29 item 10). */
static void test_history_values(void **state)
{
	(void)state;
	static const struct {
		const char *name, *text, *msg;
	} cases[] = {
		{"acc8.csv", "epoch,accuracy,loss\n1,0.5,1\n2,8,1\n",
		 "acc8.csv: line 3: column 2 (accuracy): accuracy out of range (expected 0..1, got '8')"},
		{"vacc.csv", "epoch,loss,val_acc\n1,1,1e308\n",
		 "vacc.csv: line 2: column 3 (val_acc): accuracy out of range (expected 0..1, got '1e308')"},
		{"neg.csv", "epoch,val_accuracy\n1,-0.01\n", "neg.csv: line 2: column 2 (val_accuracy): accuracy out of range"},
		{"inf.csv", "epoch,accuracy,val_loss\n1,0.5,inf\n",
		 "inf.csv: line 2: column 3 (val_loss): loss not finite (expected a finite number, or empty or nan when missing, got 'inf')"},
		{"ninf.csv", "loss,epoch\n-Infinity,1\n", "ninf.csv: line 2: column 1 (loss): loss not finite"},
		{"hdr.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n",
		 "hdr.csv: no epochs (expected one row per epoch after the header, got only the header)"},
	};
	char p[256];
	tl_rundata r;
	tl_err err;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_text(cases[i].name, cases[i].text);
		snprintf(p, sizeof p, "%s/%s", dir, cases[i].name);
		assert_int_equal(tl_run_load(&r, p, &err), TL_EFORMAT);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("%s: got '%s'", cases[i].name, err.msg);
		assert_null(r.epoch);
	}
	/* missing values stay allowed: empty and nan are gaps */
	write_text("gaps.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,,nan,nan,\n2,1,0,0,1e300\n");
	snprintf(p, sizeof p, "%s/gaps.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	assert_int_equal(r.n, 2);
	assert_true(isnan(r.acc[0]) && isnan(r.loss[0]));
	tl_run_free(&r);
	/* the chart draws any finite values, however far apart */
	double x[3] = {1, 2, 3}, y[3] = {-1.7e308, 0, 1.7e308};
	tl_plot_series se = {"wide", x, y, 3, 0};
	tl_plot_panel pn = {"p", "x", "y", &se, 1, 1, NAN, NAN, 0, {0}, {0}, NULL, 0, 0};
	snprintf(p, sizeof p, "%s/wide.png", dir);
	assert_int_equal(tl_plot_lines(p, "t", &pn, 1, 400, 300, NULL, &err), TL_OK);
	int w, h;
	long black, ink;
	png_stats(p, &w, &h, &black, 0, 0, 0, &ink);
	assert_int_equal(w, 400);
	assert_true(ink > 500);
	double first, step;
	int count;
	tl_plot_ticks(-INFINITY, 1, 5, 0, &first, &step, &count);
	assert_int_equal(count, 1);
	tl_plot_ticks(-1.7e308, 1.7e308, 5, 0, &first, &step, &count);
	assert_int_equal(count, 1); /* the span itself overflows */
}

/* Run directories and -o paths of any length: no name is cut (issue 29
 * item 10; the fixed 1024- and 1200-byte buffers truncated them). */
static void test_long_paths(void **state)
{
	(void)state;
	char *deep = malloc(2048), part[201];
	memset(part, 'd', 200);
	part[200] = 0;
	snprintf(deep, 2048, "%s", dir);
	for (int i = 0; i < 7; i++) { /* about 1,470 bytes */
		strcat(deep, "/");
		strcat(deep, part);
		assert_int_equal(mkdir(deep, 0755), 0);
	}
	assert_true(strlen(deep) > 1400);
	char *p = malloc(2100);
	snprintf(p, 2100, "%s/history.csv", deep);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1,0.5,1\n", f);
	fclose(f);
	tl_rundata r;
	tl_err err;
	assert_int_equal(tl_run_load(&r, deep, &err), TL_OK);
	assert_string_equal(r.dir, deep);
	static const char *const exts[] = {"png", "svg"};
	assert_int_equal(tl_run_plot(&r, r.dir, exts, 2, NULL, &err), TL_OK);
	tl_run_free(&r);
	snprintf(p, 2100, "%s/history.png", deep);
	int w, h;
	long near, ink;
	png_stats(p, &w, &h, &near, 0, 0, 0, &ink);
	assert_int_equal(w, 1000);
	snprintf(p, 2100, "%s/history.svg", deep);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	free(deep);
}
/* Keras' CSVLogger counts epochs from 0: such a history is shifted to
 * tltrain's 1-based epochs; one with stages or a report is not.  A best
 * epoch is "restored" only when a tltrain report says so (issue 28 item
 * 7). */
static void test_keras_epochs(void **state)
{
	(void)state;
	char p[256];
	tl_rundata r;
	tl_err err;
	write_text("keras.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.55,1.1\n"
				"1,0.6,1.0,0.70,0.9\n2,0.7,0.8,0.65,0.95\n");
	snprintf(p, sizeof p, "%s/keras.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	assert_int_equal(r.epoch_shift, 1);
	assert_int_equal(r.epoch[0], 1);
	assert_int_equal(r.epoch[2], 3);
	assert_int_equal(r.best_epoch, 2); /* Keras' epoch 1, the best val_accuracy */
	assert_false(r.restored);          /* no report: nothing says weights were restored */
	assert_non_null(strstr(r.label, "Keras epochs + 1"));
	tl_run_free(&r);
	/* a stage column is tltrain's (or a tool's that knows): epochs as written */
	write_text("staged.csv", "epoch,stage,accuracy,val_accuracy\n0,0,0.5,0.55\n1,0,0.6,0.7\n");
	snprintf(p, sizeof p, "%s/staged.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	assert_int_equal(r.epoch_shift, 0);
	assert_int_equal(r.epoch[0], 0);
	tl_run_free(&r);
	/* 1-based histories are left alone, and their best is not "restored" */
	write_text("plain.csv", "epoch,accuracy,val_accuracy\n1,0.5,0.55\n2,0.6,0.5\n");
	snprintf(p, sizeof p, "%s/plain.csv", dir);
	assert_int_equal(tl_run_load(&r, p, &err), TL_OK);
	assert_int_equal(r.epoch_shift, 0);
	assert_int_equal(r.epoch[0], 1);
	assert_int_equal(r.best_epoch, 1);
	assert_false(r.restored);
	tl_run_free(&r);
}

/* Several runs: compare.EXT, summary.EXT and summary.csv, all or none;
 * the CSV's rows carry each run's report; -o is made as mkdir -p makes
 * it (issue 28 item 4). */
static void test_summary(void **state)
{
	(void)state;
	char a[128], b[128], out[160], p[256];
	snprintf(a, sizeof a, "%s/sa", dir);
	snprintf(b, sizeof b, "%s/s,b", dir); /* a comma: the CSV field is quoted */
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	write_text("sa/history.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1,0.5,1\n2,0.6,0.9,0.55,0.95\n");
	write_text("s,b/history.csv", "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.4,1.2,0.45,1.1\n");
	uint64_t cm[4] = {3, 1, 0, 4};
	const char *names[2] = {"cat", "dog"};
	tl_run_summary s = {.model = "squeezenet", .strategy = "feature", .best_epoch = 2,
			    .epochs_run = 2, .has_test = 1, .test_accuracy = 0.875, .test_loss = 0.3125,
			    .model_bytes = 2906208, .macro_f1 = 0.873,
			    .latency_ms = 2.25, .train_seconds = 7.8, .params_total = 723914,
			    .params_trainable = 5130, .device = "cpu", .k = 2, .cm = cm, .names = names};
	tl_err err;
	assert_int_equal(tl_run_write_report(a, &s, &err), TL_OK);
	tl_rundata r[2];
	assert_int_equal(tl_run_load(&r[0], a, &err), TL_OK);
	assert_int_equal(tl_run_load(&r[1], b, &err), TL_OK);
	static const char *const exts[] = {"png", "svg"};
	snprintf(out, sizeof out, "%s/study/deep", dir);
	assert_int_equal(tl_run_mkdirs(out, &err), TL_OK);
	assert_int_equal(tl_run_mkdirs(out, &err), TL_OK); /* already there: fine */
	int n = 0;
	assert_int_equal(tl_run_plot_compare(r, 2, out, exts, 2, 1, &n, &err), TL_OK);
	assert_int_equal(n, 5);
	snprintf(p, sizeof p, "%s/summary.csv", out);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char line[512], want[512];
	assert_non_null(fgets(line, sizeof line, f));
	assert_string_equal(line, "run,model,strategy,params,trainable,train_seconds,best_epoch,"
				  "test_accuracy,macro_f1,latency_ms,device,test_loss,model_bytes\n");
	assert_non_null(fgets(line, sizeof line, f));
	snprintf(want, sizeof want, "%s,squeezenet,feature,723914,5130,7.8,2,0.875,0.873,2.25,cpu,0.3125,2906208\n", a);
	assert_string_equal(line, want);
	assert_non_null(fgets(line, sizeof line, f));
	snprintf(want, sizeof want, "\"%s\",,,,,,1,,,,,,\n", b); /* no report: best from history */
	assert_string_equal(line, want);
	fclose(f);
	int w, h;
	long near, ink;
	snprintf(p, sizeof p, "%s/compare.png", out);
	png_stats(p, &w, &h, &near, 0, 0, 0, &ink);
	assert_int_equal(w, 2000); /* four panels: the training curves too */
	snprintf(p, sizeof p, "%s/summary.png", out);
	png_stats(p, &w, &h, &near, 0, 0, 0, &ink);
	assert_true(w >= 600 && h >= 46 + 3 * 22);
	assert_true(ink > 2000);
	assert_true(exists_at(out, "summary.svg") && exists_at(out, "compare.svg"));
	/* text a table cannot draw is refused, nothing written */
	const char *cells[2] = {"a", "b\xC3"}, *hdr[2] = {"x", "y"};
	snprintf(p, sizeof p, "%s/bad.png", out);
	assert_int_equal(tl_plot_table(p, "t", 2, hdr, 1, cells, NULL, NULL, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "row 1 column 2 is not valid UTF-8"));
	assert_int_equal(access(p, F_OK), -1);
	/* all or none: an unknown extension fails after compare.png is drawn */
	static const char *const bad_exts[] = {"png", "gif"};
	snprintf(out, sizeof out, "%s/study2", dir);
	assert_int_equal(tl_run_mkdirs(out, &err), TL_OK);
	assert_int_equal(tl_run_plot_compare(r, 2, out, bad_exts, 2, 0, &n, &err), TL_EUSAGE);
	assert_int_equal(n, 0);
	assert_false(exists_at(out, "compare.png") || exists_at(out, "summary.png") ||
		     exists_at(out, "summary.csv"));
	assert_int_equal(temporaries(out), 0);
	tl_run_free(&r[0]);
	tl_run_free(&r[1]);
	/* mkdir -p through a file: the part in the way is named */
	write_text("plainfile", "x");
	snprintf(out, sizeof out, "%s/plainfile/sub", dir);
	assert_int_equal(tl_run_mkdirs(out, &err), TL_EIO);
	snprintf(want, sizeof want, "cannot create directory: %s/plainfile exists and is not a directory", dir);
	if (!strstr(err.msg, want))
		fail_msg("got '%s'", err.msg);
}

static void test_feature_grid(void **state)
{
	(void)state;
	enum { C = 20, H = 6, W = 6 };
	static float maps[C * H * W];
	for (int c = 0; c < C; c++)
		for (int i = 0; i < H * W; i++)
			maps[c * H * W + i] = c == 3 ? 7.0f : (float)(i * (c + 1)) - 100; /* map 3 constant */
	uint8_t rgb[8 * 8 * 3];
	for (int i = 0; i < 8 * 8 * 3; i++)
		rgb[i] = (uint8_t)(i * 5);
	char p[256];
	snprintf(p, sizeof p, "%s/grid.png", dir);
	tl_err err;
	assert_int_equal(tl_plot_feature_grid(p, "fire2", rgb, 8, 8, maps, C, H, W, 16, &err), TL_OK);
	int w, h;
	long white, ink;
	png_stats(p, &w, &h, &white, 255, 255, 255, &ink);
	assert_true(w >= 480 && h > 100);
	long grey;
	png_stats(p, &w, &h, &grey, 128, 128, 128, &ink); /* the constant map is mid grey */
	assert_true(grey >= (long)H * W * 144 / 2);
	assert_int_equal(tl_plot_feature_grid(p, "x", NULL, 0, 0, maps, 0, H, W, 16, &err), TL_EUSAGE);
}

/* Pixels within 40 of black in rows [y0, y1) of a PNG. */
static long dark_rows(const char *path, int y0, int y1)
{
	cairo_surface_t *s = cairo_image_surface_create_from_png(path);
	assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
	int w = cairo_image_surface_get_width(s), stride = cairo_image_surface_get_stride(s);
	unsigned char *d = cairo_image_surface_get_data(s);
	long n = 0;
	for (int y = y0; y < y1 && y < cairo_image_surface_get_height(s); y++)
		for (int x = 0; x < w; x++) {
			uint32_t q = ((uint32_t *)(d + (size_t)y * stride))[x];
			n += (q >> 16 & 255) < 40 && (q >> 8 & 255) < 40 && (q & 255) < 40;
		}
	cairo_surface_destroy(s);
	return n;
}

/* Before and after in one picture: on one shared scale a layer whose
 * maps grew fourfold shows it (the "before" maps go dark); stretched each
 * on its own the two look alike (issue 28 item 3). */
static void test_feature_grid_pair(void **state)
{
	(void)state;
	enum { N = 4, H = 6, W = 6 };
	static float before[N * H * W], after[N * H * W];
	for (int i = 0; i < N * H * W; i++) {
		before[i] = 1 + (float)(i % (H * W)) / (H * W); /* 1..1.97 */
		after[i] = 4 * before[i];                         /* 4..7.9 */
	}
	tl_plot_mapset sets[2] = {{"before: a.safetensors", before}, {"after: b.safetensors", after}};
	int numbers[N] = {3, 7, 100, 101};
	tl_plot_grid g = {"pair", NULL, 0, 0, N, 128, H, W, numbers, sets, 2, 1};
	char p[256];
	snprintf(p, sizeof p, "%s/pair.png", dir);
	tl_err err;
	double lo, hi;
	assert_int_equal(tl_plot_feature_grids(p, &g, &lo, &hi, &err), TL_OK);
	assert_close(lo, 1, 1e-6, 0);
	assert_close(hi, 4 * (1 + 35.0 / 36), 1e-5, 0);
	int w, h;
	long near, ink;
	png_stats(p, &w, &h, &near, 0, 0, 0, &ink);
	/* the sets one under the other: the upper half holds "before" */
	long top = dark_rows(p, 58, h / 2), bottom = dark_rows(p, h / 2, h);
	if (!(top > 10000 && bottom < 3000))
		fail_msg("shared scale: %ld dark pixels before, %ld after (expected before dark)", top, bottom);
	g.shared = 0;
	assert_int_equal(tl_plot_feature_grids(p, &g, &lo, &hi, &err), TL_OK);
	assert_true(lo == 0 && hi == 0);
	top = dark_rows(p, 58, h / 2), bottom = dark_rows(p, h / 2, h);
	if (!(bottom > 3000 && labs(top - bottom) < 3000))
		fail_msg("each map stretched: %ld dark pixels before, %ld after (expected alike)", top, bottom);
	/* one set, shared: its own range */
	g.n_sets = 1, g.shared = 1;
	assert_int_equal(tl_plot_feature_grids(p, &g, &lo, &hi, &err), TL_OK);
	assert_close(hi, 1 + 35.0 / 36, 1e-5, 0);
	g.n_sets = 5;
	assert_int_equal(tl_plot_feature_grids(p, &g, &lo, &hi, &err), TL_EUSAGE);
	g.n_sets = 2, g.c_total = 3; /* more maps than channels */
	assert_int_equal(tl_plot_feature_grids(p, &g, &lo, &hi, &err), TL_EUSAGE);
}

/* --channels lists: numbers and ranges in the order given; bad ones
 * refused naming the list. */
static void test_grid_channels(void **state)
{
	(void)state;
	int *ch, n;
	tl_err err;
	assert_int_equal(tl_grid_parse_channels("0-3,10,7", &ch, &n, &err), TL_OK);
	assert_int_equal(n, 6);
	int want[6] = {0, 1, 2, 3, 10, 7};
	assert_memory_equal(ch, want, sizeof want);
	free(ch);
	assert_int_equal(tl_grid_parse_channels("511", &ch, &n, &err), TL_OK);
	assert_true(n == 1 && ch[0] == 511);
	free(ch);
	static const char *const bad[] = {"", "a", "5-2", "1,,2", "1,", "-3", "1-", "3 ", "70000", "0-1x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (tl_grid_parse_channels(bad[i], &ch, &n, &err) != TL_EUSAGE)
			fail_msg("'%s' accepted", bad[i]);
		assert_null(ch);
		assert_non_null(strstr(err.msg, "--channels"));
	}
	assert_int_equal(tl_grid_parse_channels("0-5000", &ch, &n, &err), TL_EUSAGE);
	assert_non_null(strstr(err.msg, "too many channels (expected at most 4096"));
}

/* ---- image decoding ---- */

static uint8_t px_at(int x, int y, int c)
{
	return (uint8_t)(x * 7 + y * 13 + c * 60);
}

static void check_planes(const tl_img *im, int w, int h, int tol)
{
	assert_int_equal(im->w, w); assert_int_equal(im->h, h);
	int worst = 0;
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				int d = abs(im->rgb[(size_t)c * w * h + (size_t)y * w + x] - px_at(x, y, c));
				worst = d > worst ? d : worst;
			}
	if (worst > tol)
		fail_msg("decoded pixels differ by %d (tolerance %d)", worst, tol);
}

static void test_imgio_png_ppm(void **state)
{
	(void)state;
	enum { W = 37, H = 23 };
	uint8_t px[W * H * 3];
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < 3; c++)
				px[(y * W + x) * 3 + c] = px_at(x, y, c);
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION, im.width = W, im.height = H, im.format = PNG_FORMAT_RGB;
	png_alloc_size_t n = 0;
	assert_true(png_image_write_to_memory(&im, NULL, &n, 0, px, 0, NULL));
	uint8_t *buf = malloc(n);
	assert_true(png_image_write_to_memory(&im, buf, &n, 0, px, 0, NULL));
	tl_img img;
	tl_err err;
	assert_int_equal(tl_img_decode(buf, n, "a.png", &img, &err), TL_OK);
	assert_string_equal(img.format, "PNG");
	check_planes(&img, W, H, 0);
	tl_img_free(&img);
	assert_int_equal(tl_img_decode(buf, n - 20, "cut.png", &img, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "cut.png: PNG"));
	free(buf);

	/* PPM: binary 8-bit, binary 16-bit, plain, and a truncated one */
	char *ppm = malloc(64 + W * H * 6);
	int hn = sprintf(ppm, "P6\n# comment\n%d %d\n255\n", W, H);
	memcpy(ppm + hn, px, sizeof px);
	assert_int_equal(tl_img_decode((uint8_t *)ppm, (size_t)hn + sizeof px, "a.ppm", &img, &err), TL_OK);
	check_planes(&img, W, H, 0);
	tl_img_free(&img);
	assert_int_equal(tl_img_decode((uint8_t *)ppm, (size_t)hn + sizeof px - 1, "t.ppm", &img, &err),
			 TL_EFORMAT);
	assert_non_null(strstr(err.msg, "truncated"));
	hn = sprintf(ppm, "P6 %d %d 65535\n", W, H);
	for (int i = 0; i < W * H * 3; i++)
		ppm[hn + 2 * i] = (char)px[i], ppm[hn + 2 * i + 1] = (char)0x80;
	assert_int_equal(tl_img_decode((uint8_t *)ppm, (size_t)hn + sizeof px * 2, "b.ppm", &img, &err), TL_OK);
	check_planes(&img, W, H, 1);
	tl_img_free(&img);
	free(ppm);
	const char *plain = "P3 2 1 255\n10 20 30  40 50 60\n";
	assert_int_equal(tl_img_decode((const uint8_t *)plain, strlen(plain), "p.ppm", &img, &err), TL_OK);
	assert_int_equal(img.rgb[0], 10); assert_int_equal(img.rgb[1], 40);
	assert_int_equal(img.rgb[2], 20); assert_int_equal(img.rgb[5], 60);
	tl_img_free(&img);
	const char *grey = "P2 1 1 15\n15\n";
	assert_int_equal(tl_img_decode((const uint8_t *)grey, strlen(grey), "g.pgm", &img, &err), TL_OK);
	assert_int_equal(img.rgb[0], 255); assert_int_equal(img.rgb[2], 255);
	tl_img_free(&img);
	assert_int_equal(tl_img_decode((const uint8_t *)"GIF89a", 6, "x.gif", &img, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "not a PNG, JPEG or PPM"));
}

static void test_imgio_jpeg(void **state)
{
	(void)state;
	enum { W = 40, H = 24 };
	uint8_t px[W * H * 3];
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < 3; c++)
				px[(y * W + x) * 3 + c] = px_at(x, y, c);
	struct jpeg_compress_struct cj;
	struct jpeg_error_mgr je;
	cj.err = jpeg_std_error(&je);
	jpeg_create_compress(&cj);
	unsigned char *buf = NULL;
	unsigned long n = 0;
	jpeg_mem_dest(&cj, &buf, &n);
	cj.image_width = W, cj.image_height = H, cj.input_components = 3, cj.in_color_space = JCS_RGB;
	jpeg_set_defaults(&cj);
	jpeg_set_quality(&cj, 100, TRUE);
	cj.comp_info[0].h_samp_factor = cj.comp_info[0].v_samp_factor = 1; /* 4:4:4 */
	jpeg_start_compress(&cj, TRUE);
	while (cj.next_scanline < H) {
		JSAMPROW row = px + cj.next_scanline * W * 3;
		jpeg_write_scanlines(&cj, &row, 1);
	}
	jpeg_finish_compress(&cj);
	jpeg_destroy_compress(&cj);
	tl_img img;
	tl_err err;
	assert_int_equal(tl_img_decode(buf, n, "a.jpg", &img, &err), TL_OK);
	assert_string_equal(img.format, "JPEG");
	check_planes(&img, W, H, 12); /* quality 100, 4:4:4: a few levels of rounding */
	tl_img_free(&img);
	/* cut in the middle of the scan: an error, not a grey-filled picture */
	assert_int_equal(tl_img_decode(buf, n / 2, "cut.jpg", &img, &err), TL_EFORMAT);
	assert_non_null(strstr(err.msg, "cut.jpg: JPEG"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ticks),
		cmocka_unit_test(test_history_files),
		cmocka_unit_test(test_report_roundtrip),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_confusion_input),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_history_values),
		cmocka_unit_test(test_long_paths),
		cmocka_unit_test(test_keras_epochs),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_feature_grid),
		cmocka_unit_test(test_feature_grid_pair),
		cmocka_unit_test(test_grid_channels),
		cmocka_unit_test(test_imgio_png_ppm),
		cmocka_unit_test(test_imgio_jpeg),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
