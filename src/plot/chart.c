/* chart.c - line charts, confusion heatmap and feature-map grids drawn
 * with cairo (see chart.h).  Pictures are drawn once into a cairo surface
 * (an RGB image for PNG, a stream for SVG), collected in memory and
 * written with tl_write_file_atomic, or to an uncommitted tl_afile of a
 * tl_plot_batch. */
#include "plot/chart.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afile.h"

#define FONT "DejaVu Sans"

/* ---- output ---- */

typedef struct {
	unsigned char *p;
	size_t n, cap;
	int oom;
} membuf;

static cairo_status_t mem_write(void *ctx, const unsigned char *d, unsigned int len)
{
	membuf *m = ctx;
	if (m->n + len > m->cap) {
		size_t cap = m->cap ? m->cap : 65536;
		while (cap < m->n + len)
			cap *= 2;
		unsigned char *p = realloc(m->p, cap);
		if (!p) {
			m->oom = 1;
			return CAIRO_STATUS_WRITE_ERROR;
		}
		m->p = p, m->cap = cap;
	}
	memcpy(m->p + m->n, d, len);
	m->n += len;
	return CAIRO_STATUS_SUCCESS;
}

int tl_plot_format(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && strcasecmp(path + n - 4, ".png") == 0)
		return 0;
	if (n > 4 && strcasecmp(path + n - 4, ".svg") == 0)
		return 1;
	return -1;
}

/* ---- batches ---- */

tl_status tl_plot_batch_commit(tl_plot_batch *b, tl_err *err)
{
	tl_status st = TL_OK;
	for (int i = 0; i < b->n; i++) {
		if (st == TL_OK)
			st = tl_afile_commit(&b->f[i], err);
		else
			tl_afile_abort(&b->f[i]);
	}
	free(b->f);
	*b = (tl_plot_batch)TL_PLOT_BATCH_INIT;
	return st;
}

void tl_plot_batch_abort(tl_plot_batch *b)
{
	for (int i = 0; i < b->n; i++)
		tl_afile_abort(&b->f[i]);
	free(b->f);
	*b = (tl_plot_batch)TL_PLOT_BATCH_INIT;
}

/* Write the n bytes of a picture to a new uncommitted file for path in
 * b; on failure nothing is added (the temporary file is removed). */
static tl_status batch_add(tl_plot_batch *b, const char *path, const void *buf, size_t n,
			   tl_err *err)
{
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 4;
		tl_afile *f = realloc(b->f, sizeof *f * (size_t)cap);
		if (!f)
			return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
		b->f = f, b->cap = cap;
	}
	tl_afile *f = &b->f[b->n];
	memset(f, 0, sizeof *f);
	TL_TRY(tl_afile_open(f, path, err));
	tl_status st = tl_afile_write(f, buf, n, err);
	if (st != TL_OK) {
		tl_afile_abort(f);
		return st;
	}
	b->n++;
	return TL_OK;
}

tl_status tl_plot_batch_add(tl_plot_batch *b, const char *path, const void *buf, size_t n,
			    tl_err *err)
{
	return batch_add(b, path, buf, n, err);
}

/* ---- UTF-8 ---- */

/* Length (1..4) of the well-formed UTF-8 sequence at p (n > 0 bytes
 * readable), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/* Offset of the first byte of s[0..n) that does not start a well-formed
 * sequence, or n when all of it is valid UTF-8. */
static size_t utf8_bad(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return i;
		i += l;
	}
	return n;
}

int tl_plot_utf8_valid(const char *s, size_t n)
{
	return utf8_bad(s, n) == n;
}

size_t tl_plot_utf8_clip(char *dst, size_t n, const char *src, size_t max_chars)
{
	static const char repl[] = "\xEF\xBF\xBD", ellipsis[] = "\xE2\x80\xA6";
	if (n < 4) {
		if (n)
			dst[0] = 0;
		return 0;
	}
	const unsigned char *p = (const unsigned char *)src;
	size_t len = strlen(src), i = 0, o = 0, chars = 0;
	int cut = 0;
	while (i < len) {
		size_t l = utf8_seq(p + i, len - i);
		const char *e = l ? src + i : repl;
		size_t el = l ? l : 3;
		/* room for this character, an ellipsis after it and the NUL */
		if (chars == max_chars || o + el + 3 + 1 > n) {
			cut = 1;
			break;
		}
		memcpy(dst + o, e, el);
		o += el, i += l ? l : 1, chars++;
	}
	if (cut) {
		memcpy(dst + o, ellipsis, 3);
		o += 3;
	}
	dst[o] = 0;
	return o;
}

char *tl_plot_text(const char *src, size_t max_chars)
{
	size_t n = 3 * strlen(src) + 4;
	char *d = malloc(n);
	if (d)
		tl_plot_utf8_clip(d, n, src, max_chars);
	return d;
}

/* Refuse text that cairo cannot draw: what names it in the message
 * ("the title", "class name 3"); NULL text is fine. */
static tl_status check_text(const char *path, const char *what, const char *s, tl_err *err)
{
	if (!s)
		return TL_OK;
	size_t n = strlen(s), bad = utf8_bad(s, n);
	if (bad == n)
		return TL_OK;
	return tl_seterr(err, TL_EFORMAT, "%s: %s is not valid UTF-8 (byte %zu is 0x%02x)", path, what,
			 bad + 1, (unsigned)(unsigned char)s[bad]);
}

typedef void (*draw_fn)(cairo_t *cr, double w, double h, const void *arg);

/* Draw a w x h picture with fn and write it to path as PNG or SVG: at
 * once (atomically) when batch is NULL, else as an uncommitted file of
 * batch.  All text fn draws must be valid UTF-8 (checked by the
 * callers). */
static tl_status render(const char *path, int w, int h, draw_fn fn, const void *arg,
			tl_plot_batch *batch, tl_err *err)
{
	int fmt = tl_plot_format(path);
	if (fmt < 0)
		return tl_seterr(err, TL_EUSAGE, "%s: unknown picture format (expected a .png or .svg name)",
				 path);
	membuf mb = {0};
	cairo_surface_t *s = fmt == 0 ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h)
				      : cairo_svg_surface_create_for_stream(mem_write, &mb, w, h);
	cairo_t *cr = cairo_create(s);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	fn(cr, w, h, arg);
	cairo_status_t cs = cairo_status(cr);
	cairo_destroy(cr);
	if (cs == CAIRO_STATUS_SUCCESS && fmt == 0)
		cs = cairo_surface_write_to_png_stream(s, mem_write, &mb);
	cairo_surface_finish(s);
	if (cs == CAIRO_STATUS_SUCCESS)
		cs = cairo_surface_status(s);
	cairo_surface_destroy(s);
	tl_status st;
	if (mb.oom)
		st = tl_seterr(err, TL_ENOMEM, "%s: out of memory drawing the picture", path);
	else if (cs != CAIRO_STATUS_SUCCESS)
		st = tl_seterr(err, TL_EIO, "%s: drawing failed (cairo: %s)", path,
			       cairo_status_to_string(cs));
	else if (batch)
		st = batch_add(batch, path, mb.p, mb.n, err);
	else
		st = tl_write_file_atomic(path, mb.p, mb.n, err);
	free(mb.p);
	return st;
}

/* ---- text and styles ---- */

static void font(cairo_t *cr, double size, int bold)
{
	cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, s, &e);
	return e.x_advance;
}

/* Text with its anchor at (x, y): ax 0 left, 0.5 centre, 1 right; ay 0
 * baseline-top (text hangs below y), 0.5 middle, 1 bottom. */
static void text_at(cairo_t *cr, double x, double y, double ax, double ay, const char *s)
{
	cairo_font_extents_t fe;
	cairo_font_extents(cr, &fe);
	double w = text_w(cr, s), hgt = fe.ascent;
	cairo_move_to(cr, x - ax * w, y + (1 - ay) * hgt);
	cairo_show_text(cr, s);
}

typedef struct {
	double r, g, b;
	double dash[6];
	int n_dash;
	int marker; /* 0 filled circle, 1 open square, 2 filled triangle, 3 open diamond, 4 cross, 5 open circle */
} style;

/* Okabe-Ito colours (colour-blind safe) of different lightness, each with
 * its own dash and marker so a greyscale print still tells them apart. */
static const style styles[] = {
	{0.00, 0.00, 0.00, {0}, 0, 0},
	{0.00, 0.45, 0.70, {7, 4}, 2, 1},
	{0.84, 0.37, 0.00, {1.5, 3}, 2, 2},
	{0.00, 0.62, 0.45, {8, 3, 2, 3}, 4, 3},
	{0.80, 0.47, 0.65, {12, 4}, 2, 4},
	{0.90, 0.62, 0.00, {4, 2, 4, 2, 1, 2}, 6, 5},
	{0.34, 0.71, 0.91, {2, 2}, 2, 0},
	{0.45, 0.45, 0.45, {10, 3, 3, 3}, 4, 1},
};
#define N_STYLES (int)(sizeof styles / sizeof styles[0])

static const style *style_of(int i)
{
	return &styles[(i % N_STYLES + N_STYLES) % N_STYLES];
}

static void marker(cairo_t *cr, const style *s, double x, double y, double r)
{
	cairo_save(cr);
	cairo_set_dash(cr, NULL, 0, 0);
	cairo_set_line_width(cr, 1.5);
	cairo_new_path(cr);
	int fill = 0;
	switch (s->marker) {
	case 0: cairo_arc(cr, x, y, r, 0, 2 * M_PI), fill = 1; break;
	case 1: cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r); break;
	case 2:
		cairo_move_to(cr, x, y - 1.2 * r);
		cairo_line_to(cr, x + 1.1 * r, y + 0.8 * r);
		cairo_line_to(cr, x - 1.1 * r, y + 0.8 * r);
		cairo_close_path(cr);
		fill = 1;
		break;
	case 3:
		cairo_move_to(cr, x, y - 1.3 * r);
		cairo_line_to(cr, x + 1.3 * r, y);
		cairo_line_to(cr, x, y + 1.3 * r);
		cairo_line_to(cr, x - 1.3 * r, y);
		cairo_close_path(cr);
		break;
	case 4:
		cairo_move_to(cr, x - r, y - r), cairo_line_to(cr, x + r, y + r);
		cairo_move_to(cr, x + r, y - r), cairo_line_to(cr, x - r, y + r);
		break;
	default: cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
	}
	cairo_set_source_rgb(cr, s->r, s->g, s->b);
	if (fill) {
		cairo_fill(cr);
	} else if (s->marker == 4) {
		cairo_stroke(cr);
	} else {
		cairo_set_source_rgb(cr, 1, 1, 1);
		cairo_fill_preserve(cr);
		cairo_set_source_rgb(cr, s->r, s->g, s->b);
		cairo_stroke(cr);
	}
	cairo_restore(cr);
}

/* ---- ticks ---- */

void tl_plot_ticks(double lo, double hi, int want, int integer, double *first, double *step,
		   int *count)
{
	if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || !isfinite(hi - lo)) {
		*first = isfinite(lo) ? lo : 0, *step = 1, *count = 1;
		return;
	}
	if (want < 2)
		want = 2;
	double raw = (hi - lo) / want, p = pow(10, floor(log10(raw))), f = raw / p, s;
	s = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
	s *= p;
	if (integer && s < 1)
		s = 1;
	if (integer && s != floor(s))
		s = ceil(s);
	double t0 = ceil(lo / s - 1e-9) * s;
	int n = (int)floor((hi - t0) / s + 1e-9) + 1;
	while (n > 64) { /* never a wall of ticks */
		s *= 2;
		t0 = ceil(lo / s - 1e-9) * s;
		n = (int)floor((hi - t0) / s + 1e-9) + 1;
	}
	*first = t0, *step = s, *count = n < 1 ? 1 : n;
}

static void tick_label(char *buf, size_t n, double v, double step)
{
	if (fabs(v) < step * 1e-6)
		v = 0;
	int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (step < 1 && fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-6)
		dec++; /* 0.25 */
	snprintf(buf, n, "%.*f", dec > 6 ? 6 : dec, v);
}

/* ---- line charts ---- */

typedef struct {
	const char *title;
	const tl_plot_panel *panels;
	int n;
} lines_arg;

static int finite_range(const tl_plot_panel *p, double *xlo, double *xhi, double *ylo,
			double *yhi)
{
	int any = 0;
	*xlo = *ylo = INFINITY, *xhi = *yhi = -INFINITY;
	for (int s = 0; s < p->n_series; s++)
		for (int i = 0; i < p->series[s].n; i++) {
			double x = p->series[s].x[i], y = p->series[s].y[i];
			if (!isfinite(x))
				continue;
			*xlo = fmin(*xlo, x), *xhi = fmax(*xhi, x);
			if (!isfinite(y))
				continue;
			y = fmax(fmin(y, 1e300), -1e300); /* the range stays finite when padded */
			*ylo = fmin(*ylo, y), *yhi = fmax(*yhi, y);
			any = 1;
		}
	return any;
}

/* A panel's plot area in the picture and the data range it shows. */
typedef struct {
	double ax, ay, aw, ah;       /* plot area: left, top, width, height */
	double xlo, xhi, ylo, yhi;   /* data range mapped onto it */
} plot_area;

/* v, kept within a picture's reach of the plot area (cairo's fixed-point
 * coordinates cannot hold 1e300). */
static double near_area(double v, double a0, double len)
{
	return fmax(fmin(v, a0 + len + 1e5), a0 - 1e5);
}

/* Picture x of data x v. */
static double area_x(const plot_area *f, double v)
{
	return near_area(f->ax + (v - f->xlo) / (f->xhi - f->xlo) * f->aw, f->ax, f->aw);
}

/* Picture y of data y v (up is larger). */
static double area_y(const plot_area *f, double v)
{
	return near_area(f->ay + f->ah - (v - f->ylo) / (f->yhi - f->ylo) * f->ah, f->ay, f->ah);
}

/* Lays out panel p in the box (px, py, pw, ph) and pads its data range
 * (a degenerate one widened, y clamped to y_min/y_max); returns whether
 * any point is finite. */
static int panel_area(const tl_plot_panel *p, double px, double py, double pw, double ph,
		      plot_area *f)
{
	const double ml = 68, mr = 16, mt = 30, mb = 50;
	f->ax = px + ml, f->ay = py + mt, f->aw = pw - ml - mr, f->ah = ph - mt - mb;
	double xlo, xhi, ylo, yhi;
	int any = finite_range(p, &xlo, &xhi, &ylo, &yhi);
	if (!isfinite(xlo))
		xlo = 1, xhi = 1;
	if (!any)
		ylo = 0, yhi = 1;
	if (xhi - xlo < 1e-9)
		xlo -= p->x_integer ? 0.5 : 1, xhi += p->x_integer ? 0.5 : 1;
	double xpad = (xhi - xlo) * 0.04;
	xlo -= xpad, xhi += xpad;
	if (yhi - ylo < 1e-9) {
		double d = fabs(ylo) * 0.05 + 0.01;
		ylo -= d, yhi += d;
	}
	double ypad = (yhi - ylo) * 0.06;
	ylo -= ypad, yhi += ypad;
	if (!isnan(p->y_min) && ylo < p->y_min)
		ylo = p->y_min;
	if (!isnan(p->y_max) && yhi > p->y_max)
		yhi = p->y_max;
	f->xlo = xlo, f->xhi = xhi, f->ylo = ylo, f->yhi = yhi;
	return any;
}

/* Draws the grid lines, tick marks and tick labels of both axes. */
static void panel_ticks(cairo_t *cr, const tl_plot_panel *p, const plot_area *f)
{
	double ax = f->ax, ay = f->ay, aw = f->aw, ah = f->ah;
	double t0, ts;
	int tn;
	char buf[64];
	font(cr, 11, 0);
	cairo_set_line_width(cr, 1);
	tl_plot_ticks(f->ylo, f->yhi, (int)(ah / 45) < 3 ? 3 : (int)(ah / 45), 0, &t0, &ts, &tn);
	for (int i = 0; i < tn; i++) {
		double v = t0 + i * ts, y = round(area_y(f, v)) + 0.5;
		cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
		cairo_move_to(cr, ax, y), cairo_line_to(cr, ax + aw, y);
		cairo_stroke(cr);
		cairo_set_source_rgb(cr, 0, 0, 0);
		cairo_move_to(cr, ax - 5, y), cairo_line_to(cr, ax, y);
		cairo_stroke(cr);
		tick_label(buf, sizeof buf, v, ts);
		text_at(cr, ax - 8, y, 1, 0.5, buf);
	}
	tl_plot_ticks(f->xlo, f->xhi, (int)(aw / 45) < 2 ? 2 : (int)(aw / 45), p->x_integer, &t0,
		      &ts, &tn);
	for (int i = 0; i < tn; i++) {
		double v = t0 + i * ts, x = round(area_x(f, v)) + 0.5;
		cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
		cairo_move_to(cr, x, ay), cairo_line_to(cr, x, ay + ah);
		cairo_stroke(cr);
		cairo_set_source_rgb(cr, 0, 0, 0);
		cairo_move_to(cr, x, ay + ah), cairo_line_to(cr, x, ay + ah + 5);
		cairo_stroke(cr);
		tick_label(buf, sizeof buf, v, ts);
		text_at(cr, x, ay + ah + 8, 0.5, 0, buf);
	}
}

/* Draws the panel title, the grid and ticks, the axis titles and the
 * frame around the plot area (px, py: the panel box's corner). */
static void panel_axes(cairo_t *cr, const tl_plot_panel *p, const plot_area *f, double px,
		       double py)
{
	double ax = f->ax, ay = f->ay, aw = f->aw, ah = f->ah;
	cairo_set_source_rgb(cr, 0, 0, 0);
	font(cr, 14, 1);
	if (p->title)
		text_at(cr, ax + aw / 2, py + 8, 0.5, 0, p->title);
	panel_ticks(cr, p, f);
	font(cr, 12, 0);
	if (p->xlabel)
		text_at(cr, ax + aw / 2, ay + ah + 28, 0.5, 0, p->xlabel);
	if (p->ylabel) {
		cairo_save(cr);
		cairo_translate(cr, px + 14, ay + ah / 2);
		cairo_rotate(cr, -M_PI / 2);
		text_at(cr, 0, 0, 0.5, 0.5, p->ylabel);
		cairo_restore(cr);
	}
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_rectangle(cr, round(ax) + 0.5, round(ay) + 0.5, round(aw), round(ah));
	cairo_stroke(cr);
}

/* Draws the vertical markers (stage boundaries), each dotted with its
 * label on a white box at the bottom, right of the line where it fits. */
static void panel_vlines(cairo_t *cr, const tl_plot_panel *p, const plot_area *f)
{
	double ax = f->ax, ay = f->ay, aw = f->aw, ah = f->ah;
	for (int v = 0; v < p->n_vlines && v < TL_PLOT_MAX_VLINES; v++) {
		double x = area_x(f, p->vline_x[v]);
		static const double dots[] = {2, 3};
		cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
		cairo_set_line_width(cr, 1.5);
		cairo_set_dash(cr, dots, 2, 0);
		cairo_move_to(cr, x, ay), cairo_line_to(cr, x, ay + ah);
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
		if (p->vline_label[v]) {
			font(cr, 11, 0);
			double tw = text_w(cr, p->vline_label[v]);
			double lx = x + 4 + tw < ax + aw ? x + 4 : x - 4 - tw;
			cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
			cairo_rectangle(cr, lx - 2, ay + ah - 20, tw + 4, 16);
			cairo_fill(cr);
			cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
			text_at(cr, lx, ay + ah - 12, 0, 0.5, p->vline_label[v]);
		}
	}
}

/* Draws each series: its line in its style, broken at non-finite
 * values, then its markers (smaller when the first series is long). */
static void panel_series(cairo_t *cr, const tl_plot_panel *p, const plot_area *f)
{
	double mr_ = p->series && p->series[0].n > 40 ? 2.2 : 3.5;
	for (int s = 0; s < p->n_series; s++) {
		const tl_plot_series *se = &p->series[s];
		const style *st = style_of(se->style);
		cairo_set_source_rgb(cr, st->r, st->g, st->b);
		cairo_set_line_width(cr, 2);
		cairo_set_line_cap(cr, st->n_dash && st->dash[0] < 2 ? CAIRO_LINE_CAP_ROUND
								     : CAIRO_LINE_CAP_BUTT);
		cairo_set_dash(cr, st->dash, st->n_dash, 0);
		int pen = 0;
		for (int i = 0; i < se->n; i++) {
			if (!isfinite(se->x[i]) || !isfinite(se->y[i])) {
				pen = 0;
				continue;
			}
			if (pen)
				cairo_line_to(cr, area_x(f, se->x[i]), area_y(f, se->y[i]));
			else
				cairo_move_to(cr, area_x(f, se->x[i]), area_y(f, se->y[i]));
			pen = 1;
		}
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
		cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
		for (int i = 0; i < se->n; i++)
			if (isfinite(se->x[i]) && isfinite(se->y[i]))
				marker(cr, st, area_x(f, se->x[i]), area_y(f, se->y[i]), mr_);
	}
}

/* Circles the highlighted point and labels it; writes the box the ring
 * and label cover to keep[4] (x0, y0, x1, y1; all 0 when there is no
 * highlighted point) so the legend can stay clear of it. */
static void panel_mark(cairo_t *cr, const tl_plot_panel *p, const plot_area *f, double keep[4])
{
	keep[0] = keep[1] = keep[2] = keep[3] = 0;
	if (!p->mark_label || !isfinite(p->mark_x) || !isfinite(p->mark_y))
		return;
	double x = area_x(f, p->mark_x), y = area_y(f, p->mark_y);
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_set_line_width(cr, 2);
	cairo_arc(cr, x, y, 9, 0, 2 * M_PI);
	cairo_stroke(cr);
	font(cr, 11, 1);
	double tw = text_w(cr, p->mark_label);
	double lx = x + 12 + tw < f->ax + f->aw ? x + 12 : x - 12 - tw;
	double ly = y - 22 > f->ay ? y - 14 : y + 14;
	cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
	cairo_rectangle(cr, lx - 2, ly - 8, tw + 4, 16);
	cairo_fill(cr);
	keep[0] = fmin(lx - 2, x - 10), keep[1] = fmin(ly - 8, y - 10);
	keep[2] = fmax(lx + tw + 2, x + 10), keep[3] = fmax(ly + 8, y + 10);
	cairo_set_source_rgb(cr, 0, 0, 0);
	text_at(cr, lx, ly, 0, 0.5, p->mark_label);
}

/* Picks the legend's corner (bw x bh box): the one covering the fewest
 * points, never the one over the keep box; writes its top-left corner. */
static void legend_corner(const tl_plot_panel *p, const plot_area *f, const double keep[4],
			  double bw, double bh, double *best_x, double *best_y)
{
	int best = -1;
	for (int corner = 0; corner < 4; corner++) {
		double bx = corner & 1 ? f->ax + 8 : f->ax + f->aw - bw - 8;
		double by = corner & 2 ? f->ay + f->ah - bh - 8 : f->ay + 8;
		int hits = 0;
		for (int s = 0; s < p->n_series; s++)
			for (int i = 0; i < p->series[s].n; i++) {
				double x = area_x(f, p->series[s].x[i]), y = area_y(f, p->series[s].y[i]);
				hits += x >= bx - 6 && x <= bx + bw + 6 && y >= by - 6 && y <= by + bh + 6;
			}
		if (keep[2] > keep[0] && keep[0] < bx + bw && keep[2] > bx && keep[1] < by + bh && keep[3] > by)
			hits += 1000;
		if (best < 0 || hits < best)
			best = hits, *best_x = bx, *best_y = by;
	}
}

/* Draws the legend of the labelled series (none when no series has a
 * label) in the corner legend_corner picks. */
static void panel_legend(cairo_t *cr, const tl_plot_panel *p, const plot_area *f,
			 const double keep[4])
{
	int nl = 0;
	double lw = 0;
	font(cr, 11, 0);
	for (int s = 0; s < p->n_series; s++)
		if (p->series[s].label) {
			nl++;
			lw = fmax(lw, text_w(cr, p->series[s].label));
		}
	if (!nl)
		return;
	double bw = lw + 52, bh = nl * 17 + 8, best_x = 0, best_y = 0;
	legend_corner(p, f, keep, bw, bh, &best_x, &best_y);
	cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
	cairo_rectangle(cr, best_x, best_y, bw, bh);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	int row = 0;
	for (int s = 0; s < p->n_series; s++) {
		if (!p->series[s].label)
			continue;
		const style *st = style_of(p->series[s].style);
		double y = best_y + 12 + row * 17;
		cairo_set_source_rgb(cr, st->r, st->g, st->b);
		cairo_set_line_width(cr, 2);
		cairo_set_dash(cr, st->dash, st->n_dash, 0);
		cairo_move_to(cr, best_x + 6, y), cairo_line_to(cr, best_x + 38, y);
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
		marker(cr, st, best_x + 22, y, 3.5);
		cairo_set_source_rgb(cr, 0, 0, 0);
		text_at(cr, best_x + 44, y, 0, 0.5, p->series[s].label);
		row++;
	}
}

/* Draws panel p in the box (px, py, pw, ph): axes, then inside the plot
 * area the stage markers, the series and the highlighted point ("no
 * data" when nothing is finite), then the legend. */
static void draw_panel(cairo_t *cr, const tl_plot_panel *p, double px, double py, double pw,
		       double ph)
{
	plot_area f;
	int any = panel_area(p, px, py, pw, ph, &f);
	panel_axes(cr, p, &f, px, py);
	cairo_save(cr);
	cairo_rectangle(cr, f.ax, f.ay, f.aw, f.ah);
	cairo_clip(cr);
	panel_vlines(cr, p, &f);
	panel_series(cr, p, &f);
	double keep[4];
	panel_mark(cr, p, &f, keep);
	if (!any) {
		font(cr, 14, 0);
		cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
		text_at(cr, f.ax + f.aw / 2, f.ay + f.ah / 2, 0.5, 0.5, "no data");
	}
	cairo_restore(cr);
	panel_legend(cr, p, &f, keep);
}

static void draw_lines(cairo_t *cr, double w, double h, const void *arg)
{
	const lines_arg *a = arg;
	double top = 0;
	if (a->title) {
		font(cr, 16, 1);
		cairo_set_source_rgb(cr, 0, 0, 0);
		text_at(cr, w / 2, 10, 0.5, 0, a->title);
		top = 34;
	}
	double pw = w / a->n;
	for (int i = 0; i < a->n; i++)
		draw_panel(cr, &a->panels[i], i * pw, top, pw, h - top);
}

/* Refuse any text of panel p (number i) that is not valid UTF-8. */
static tl_status check_panel_text(const char *path, const tl_plot_panel *p, int i, tl_err *err)
{
	char what[64];
	snprintf(what, sizeof what, "panel %d's title", i + 1);
	TL_TRY(check_text(path, what, p->title, err));
	snprintf(what, sizeof what, "panel %d's x axis title", i + 1);
	TL_TRY(check_text(path, what, p->xlabel, err));
	snprintf(what, sizeof what, "panel %d's y axis title", i + 1);
	TL_TRY(check_text(path, what, p->ylabel, err));
	snprintf(what, sizeof what, "panel %d's marked point's label", i + 1);
	TL_TRY(check_text(path, what, p->mark_label, err));
	for (int v = 0; v < p->n_vlines && v < TL_PLOT_MAX_VLINES; v++) {
		snprintf(what, sizeof what, "panel %d's marker %d's label", i + 1, v + 1);
		TL_TRY(check_text(path, what, p->vline_label[v], err));
	}
	for (int s = 0; s < p->n_series; s++) {
		snprintf(what, sizeof what, "panel %d's series %d's label", i + 1, s + 1);
		TL_TRY(check_text(path, what, p->series[s].label, err));
	}
	return TL_OK;
}

tl_status tl_plot_lines(const char *path, const char *title, const tl_plot_panel *panels,
			int n_panels, int width, int height, tl_plot_batch *batch, tl_err *err)
{
	if (n_panels < 1 || width < 100 || height < 100)
		return tl_seterr(err, TL_EUSAGE, "%s: nothing to draw (expected a panel and at least 100x100, got %d panels, %dx%d)",
				 path, n_panels, width, height);
	TL_TRY(check_text(path, "the title", title, err));
	for (int i = 0; i < n_panels; i++)
		TL_TRY(check_panel_text(path, &panels[i], i, err));
	lines_arg a = {title, panels, n_panels};
	return render(path, width, height, draw_lines, &a, batch, err);
}

/* ---- confusion heatmap ---- */

/* White to dark blue, luminance falling monotonically (ColorBrewer Blues). */
static void ramp(double t, double *r, double *g, double *b);

/* Text on a ramp shade t: white where the shade is dark, else black. */
static void ink_on(cairo_t *cr, double t)
{
	double r, g, b;
	ramp(t, &r, &g, &b);
	double l = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.42 ? 0 : 1;
	cairo_set_source_rgb(cr, l, l, l);
}

static void ramp(double t, double *r, double *g, double *b)
{
	static const double c[5][3] = {{0.97, 0.98, 1.00}, {0.78, 0.86, 0.94}, {0.42, 0.68, 0.84},
				       {0.13, 0.44, 0.71}, {0.03, 0.19, 0.42}};
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	double f = t * 4;
	int i = (int)f;
	if (i >= 4)
		i = 3;
	f -= i;
	*r = c[i][0] + f * (c[i + 1][0] - c[i][0]);
	*g = c[i][1] + f * (c[i + 1][1] - c[i][1]);
	*b = c[i][2] + f * (c[i + 1][2] - c[i][2]);
}

typedef struct {
	const char *title;
	int k;
	const uint64_t *cm;
	const char *const *names;
	double cell, left, top, name_w;
	int every;
} cm_arg;

/* Class i's label: its name up to 32 characters (cut at a character
 * boundary, with an ellipsis), or its number. */
static void cm_name(const cm_arg *a, int i, char *buf, size_t n)
{
	if (a->names && a->names[i] && a->names[i][0])
		tl_plot_utf8_clip(buf, n, a->names[i], 32);
	else
		snprintf(buf, n, "%d", i);
}

/* Draws the shaded cells, each with its count (bold on the diagonal)
 * where the cells are large enough and the count fits; row[i] is the
 * true class i's total. */
static void cm_cells(cairo_t *cr, const cm_arg *a, const uint64_t *row)
{
	int k = a->k;
	double cs = a->cell, x0 = a->left, y0 = a->top;
	char buf[96];
	double fs = cs >= 40 ? 12 : cs >= 26 ? 10 : 8;
	for (int i = 0; i < k; i++)
		for (int j = 0; j < k; j++) {
			uint64_t v = a->cm[(size_t)i * k + j];
			double t = row[i] ? (double)v / row[i] : 0, r, g, b;
			ramp(t, &r, &g, &b);
			cairo_set_source_rgb(cr, r, g, b);
			cairo_rectangle(cr, x0 + j * cs, y0 + i * cs, cs, cs);
			cairo_fill(cr);
			if (cs >= 18) {
				snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
				font(cr, fs, i == j);
				if (text_w(cr, buf) <= cs - 2) {
					ink_on(cr, t);
					text_at(cr, x0 + (j + 0.5) * cs, y0 + (i + 0.5) * cs, 0.5, 0.5, buf);
				}
			}
		}
}

/* Draws the cell borders (small matrices only) and the matrix's frame. */
static void cm_borders(cairo_t *cr, const cm_arg *a)
{
	int k = a->k;
	double cs = a->cell, x0 = a->left, y0 = a->top, side = cs * k;
	cairo_set_line_width(cr, 1);
	if (cs >= 18) {
		cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
		for (int i = 1; i < k; i++) {
			cairo_move_to(cr, x0 + i * cs, y0), cairo_line_to(cr, x0 + i * cs, y0 + side);
			cairo_move_to(cr, x0, y0 + i * cs), cairo_line_to(cr, x0 + side, y0 + i * cs);
		}
		cairo_stroke(cr);
	}
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_rectangle(cr, x0, y0, side, side);
	cairo_stroke(cr);
}

/* Draws every a->every-th class name (rows at the left, columns below,
 * rotated) and the two axis titles (h: the picture's height). */
static void cm_labels(cairo_t *cr, const cm_arg *a, double h)
{
	int k = a->k;
	double cs = a->cell, x0 = a->left, y0 = a->top, side = cs * k;
	char buf[96];
	double nfs = cs >= 14 ? 11 : 9;
	font(cr, nfs, 0);
	for (int i = 0; i < k; i += a->every) {
		cm_name(a, i, buf, sizeof buf);
		text_at(cr, x0 - 6, y0 + (i + 0.5) * cs, 1, 0.5, buf);
		cairo_save(cr);
		cairo_translate(cr, x0 + (i + 0.5) * cs, y0 + side + 6);
		cairo_rotate(cr, -M_PI / 4);
		text_at(cr, 0, 0, 1, 0.5, buf);
		cairo_restore(cr);
	}
	font(cr, 13, 0);
	text_at(cr, x0 + side / 2, h - 22, 0.5, 0, "predicted class");
	cairo_save(cr);
	cairo_translate(cr, 16, y0 + side / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, 0.5, 0.5, "true class");
	cairo_restore(cr);
}

/* Draws the per-class recall column at x rx, rw wide: shaded cells with
 * their value, or bars with a 0..1 scale when the rows are thin. */
static void cm_recall(cairo_t *cr, const cm_arg *a, const uint64_t *row, double rx, double rw)
{
	int k = a->k;
	double cs = a->cell, y0 = a->top, side = cs * k;
	char buf[96];
	font(cr, 11, 1);
	text_at(cr, rx + rw / 2, y0 - 6, 0.5, 1, "recall");
	for (int i = 0; i < k; i++) {
		double rec = row[i] ? (double)a->cm[(size_t)i * k + i] / row[i] : 0;
		if (cs >= 14) {
			double r, g, b;
			ramp(rec, &r, &g, &b);
			cairo_set_source_rgb(cr, r, g, b);
			cairo_rectangle(cr, rx, y0 + i * cs, rw, cs);
			cairo_fill(cr);
			snprintf(buf, sizeof buf, "%.2f", rec);
			font(cr, cs >= 26 ? 11 : 9, 0);
			ink_on(cr, rec);
			text_at(cr, rx + rw / 2, y0 + (i + 0.5) * cs, 0.5, 0.5, buf);
		} else {
			cairo_set_source_rgb(cr, 0.13, 0.44, 0.71);
			cairo_rectangle(cr, rx, y0 + i * cs + 0.1 * cs, rw * rec, 0.8 * cs);
			cairo_fill(cr);
		}
	}
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_rectangle(cr, rx, y0, rw, side);
	cairo_stroke(cr);
	if (cs < 14) { /* the bar's scale */
		font(cr, 9, 0);
		text_at(cr, rx, y0 + side + 4, 0.5, 0, "0");
		text_at(cr, rx + rw, y0 + side + 4, 0.5, 0, "1");
	}
}

/* Draws the shade scale at x sx, sw wide, beside the matrix: the ramp
 * from 1 (top) to 0 with its ticks and title. */
static void cm_scale(cairo_t *cr, const cm_arg *a, double sx, double sw)
{
	double y0 = a->top, side = a->cell * a->k;
	for (int i = 0; i < 100; i++) {
		double r, g, b;
		ramp(1 - i / 99.0, &r, &g, &b);
		cairo_set_source_rgb(cr, r, g, b);
		cairo_rectangle(cr, sx, y0 + side * i / 100.0, sw, side / 100.0 + 0.6);
		cairo_fill(cr);
	}
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_rectangle(cr, sx, y0, sw, side);
	cairo_stroke(cr);
	font(cr, 10, 0);
	text_at(cr, sx + sw + 4, y0, 0, 0.5, "1");
	text_at(cr, sx + sw + 4, y0 + side / 2, 0, 0.5, "0.5");
	text_at(cr, sx + sw + 4, y0 + side, 0, 0.5, "0");
	cairo_save(cr);
	cairo_translate(cr, sx + sw + 28, y0 + side / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, 0.5, 0.5, "fraction of the true class");
	cairo_restore(cr);
}

/* Draws the whole confusion picture (w x h): title and key line, cells,
 * borders, class names, recall column, shade scale and the accuracy. */
static void draw_confusion(cairo_t *cr, double w, double h, const void *arg)
{
	const cm_arg *a = arg;
	int k = a->k;
	double cs = a->cell, x0 = a->left, side = cs * k;
	char buf[96];
	cairo_set_source_rgb(cr, 0, 0, 0);
	font(cr, 16, 1);
	text_at(cr, w / 2, 10, 0.5, 0, a->title ? a->title : "confusion matrix");
	font(cr, 11, 0);
	cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
	text_at(cr, w / 2, 32, 0.5, 0,
		cs >= 18 ? "cell: count of test images; shade: fraction of the true class"
			 : "shade: fraction of the true class (counts in confusion.csv)");
	uint64_t *row = calloc((size_t)k, sizeof *row);
	uint64_t total = 0, correct = 0;
	if (!row)
		return;
	for (int i = 0; i < k; i++) {
		for (int j = 0; j < k; j++)
			row[i] += a->cm[(size_t)i * k + j];
		total += row[i];
		correct += a->cm[(size_t)i * k + i];
	}
	cm_cells(cr, a, row);
	cm_borders(cr, a);
	cm_labels(cr, a, h);
	double rx = x0 + side + 14, rw = 56;
	cm_recall(cr, a, row, rx, rw);
	cm_scale(cr, a, rx + rw + 22, 14);
	font(cr, 11, 0);
	snprintf(buf, sizeof buf, "accuracy %.4f (%llu of %llu)", total ? (double)correct / total : 0,
		 (unsigned long long)correct, (unsigned long long)total);
	text_at(cr, x0 + side / 2, 48, 0.5, 0, buf);
	free(row);
}

tl_status tl_plot_confusion(const char *path, const char *title, int k, const uint64_t *counts,
			    const char *const *names, tl_plot_batch *batch, tl_err *err)
{
	if (k < 1 || k > 1000)
		return tl_seterr(err, TL_EUSAGE, "%s: confusion matrix: bad class count (expected 1..1000, got %d)",
				 path, k);
	/* every row, column and the diagonal are parts of the total: if it
	 * cannot wrap, none of them can */
	uint64_t total = 0;
	for (size_t i = 0; i < (size_t)k * k; i++) {
		if (counts[i] > UINT64_MAX - total)
			return tl_seterr(err, TL_EFORMAT, "%s: confusion matrix: counts too large (expected a total of at most %llu; row %zu, column %zu takes it over)",
					 path, (unsigned long long)UINT64_MAX, i / (size_t)k + 1,
					 i % (size_t)k + 1);
		total += counts[i];
	}
	TL_TRY(check_text(path, "the title", title, err));
	for (int i = 0; names && i < k; i++) {
		char what[32];
		snprintf(what, sizeof what, "class name %d", i + 1);
		TL_TRY(check_text(path, what, names[i], err));
	}
	cm_arg a = {title, k, counts, names, 0, 0, 0, 0, 1};
	a.cell = 560.0 / k;
	a.cell = a.cell > 52 ? 52 : a.cell < 5 ? 5 : floor(a.cell);
	a.every = 1;
	while (a.every * a.cell < 11)
		a.every++;
	/* measure the longest name to size the margins */
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 8, 8);
	cairo_t *cr = cairo_create(s);
	font(cr, a.cell >= 14 ? 11 : 9, 0);
	char buf[96];
	for (int i = 0; i < k; i++) {
		cm_name(&a, i, buf, sizeof buf);
		a.name_w = fmax(a.name_w, text_w(cr, buf));
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	a.left = 36 + a.name_w + 8;
	a.top = 78;
	double side = a.cell * k;
	int w = (int)(a.left + side + 14 + 56 + 22 + 14 + 34 + 24);
	int h = (int)(a.top + side + 6 + a.name_w * 0.72 + 14 + 40);
	if (w < 420)
		w = 420;
	return render(path, w, h, draw_confusion, &a, batch, err);
}

/* ---- table ---- */

typedef struct {
	const char *title;
	int n_cols, n_rows;
	const char *const *header, *const *cells;
	const int *right;
	const double *col_w; /* text width of each column */
} table_arg;

#define TABLE_PAD 14.0
#define TABLE_ROW 22.0
#define TABLE_TOP 46.0

static void draw_table(cairo_t *cr, double w, double h, const void *arg)
{
	const table_arg *a = arg;
	(void)h;
	cairo_set_source_rgb(cr, 0, 0, 0);
	font(cr, 16, 1);
	text_at(cr, w / 2, 12, 0.5, 0, a->title ? a->title : "");
	double x0 = 16, tw = w - 32;
	for (int i = 0; i <= a->n_rows; i++) {
		double y = TABLE_TOP + i * TABLE_ROW;
		if (i > 0 && i % 2 == 0) {
			cairo_set_source_rgb(cr, 0.93, 0.93, 0.93);
			cairo_rectangle(cr, x0, y, tw, TABLE_ROW);
			cairo_fill(cr);
		}
		cairo_set_source_rgb(cr, 0, 0, 0);
		font(cr, 12, i == 0);
		double x = x0;
		for (int j = 0; j < a->n_cols; j++) {
			const char *t = i == 0 ? a->header[j] : a->cells[(size_t)(i - 1) * a->n_cols + j];
			int r = a->right && a->right[j];
			if (t && t[0])
				text_at(cr, r ? x + TABLE_PAD / 2 + a->col_w[j] : x + TABLE_PAD / 2,
					y + TABLE_ROW / 2, r, 0.5, t);
			x += a->col_w[j] + TABLE_PAD;
		}
	}
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_set_line_width(cr, 1);
	cairo_move_to(cr, x0, TABLE_TOP + TABLE_ROW + 0.5);
	cairo_line_to(cr, x0 + tw, TABLE_TOP + TABLE_ROW + 0.5);
	cairo_move_to(cr, x0, TABLE_TOP + (a->n_rows + 1) * TABLE_ROW + 0.5);
	cairo_line_to(cr, x0 + tw, TABLE_TOP + (a->n_rows + 1) * TABLE_ROW + 0.5);
	cairo_stroke(cr);
}

tl_status tl_plot_table(const char *path, const char *title, int n_cols,
			const char *const *header, int n_rows, const char *const *cells,
			const int *right, tl_plot_batch *batch, tl_err *err)
{
	if (n_cols < 1 || n_cols > 64 || n_rows < 0 || n_rows > 10000)
		return tl_seterr(err, TL_EUSAGE, "%s: table: bad size (expected 1..64 columns and 0..10000 rows, got %d and %d)",
				 path, n_cols, n_rows);
	TL_TRY(check_text(path, "the title", title, err));
	char what[48];
	for (int j = 0; j < n_cols; j++) {
		snprintf(what, sizeof what, "column %d's name", j + 1);
		TL_TRY(check_text(path, what, header[j], err));
	}
	for (size_t i = 0; i < (size_t)n_rows * n_cols; i++) {
		snprintf(what, sizeof what, "row %zu column %zu", i / n_cols + 1, i % n_cols + 1);
		TL_TRY(check_text(path, what, cells[i], err));
	}
	double col_w[64];
	/* measure the text on a scratch surface */
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
	cairo_t *cr = cairo_create(s);
	double width = 0;
	for (int j = 0; j < n_cols; j++) {
		font(cr, 12, 1);
		col_w[j] = header[j] ? text_w(cr, header[j]) : 0;
		font(cr, 12, 0);
		for (int i = 0; i < n_rows; i++) {
			const char *t = cells[(size_t)i * n_cols + j];
			if (t)
				col_w[j] = fmax(col_w[j], text_w(cr, t));
		}
		width += col_w[j] + TABLE_PAD;
	}
	font(cr, 16, 1);
	double title_w = title ? text_w(cr, title) : 0;
	cairo_status_t cs = cairo_status(cr);
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	if (cs != CAIRO_STATUS_SUCCESS)
		return tl_seterr(err, TL_EIO, "%s: measuring the table failed (cairo: %s)", path,
				 cairo_status_to_string(cs));
	width = fmax(fmax(width, title_w) + 32, 320);
	double height = TABLE_TOP + (n_rows + 1) * TABLE_ROW + 16;
	if (width > 16000 || width * height > 64e6)
		return tl_seterr(err, TL_EUSAGE, "%s: table too large (%.0fx%.0f pixels; expected at most 16000 wide and 64e6 pixels)",
				 path, width, height);
	table_arg a = {title, n_cols, n_rows, header, cells, right, col_w};
	return render(path, (int)ceil(width), (int)ceil(height), draw_table, &a, batch, err);
}

/* ---- feature-map grid ---- */

typedef struct {
	const tl_plot_grid *g;
	int cols, scale, in_scale;
	double lo, hi; /* the shared scale (g->shared) */
	double cell_w, cell_h, grid_x, grid_y, set_h;
} grid_arg;

/* The finite range of n values (lo > hi when there is none). */
static void finite_minmax(const float *m, size_t n, double *lo, double *hi)
{
	for (size_t i = 0; i < n; i++)
		if (isfinite(m[i]))
			*lo = fmin(*lo, m[i]), *hi = fmax(*hi, m[i]);
}

/* A grey image surface of one map, lo..hi stretched to 0..255 (values
 * outside clamped, non-finite black; lo >= hi: mid grey). */
static cairo_surface_t *map_surface(const float *m, int h, int w, double lo, double hi)
{
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
		return s;
	cairo_surface_flush(s);
	unsigned char *d = cairo_image_surface_get_data(s);
	int stride = cairo_image_surface_get_stride(s);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double v = m[(size_t)y * w + x];
			int g = !isfinite(v) ? 0 : hi > lo ? (int)lrint(fmin(fmax((v - lo) / (hi - lo), 0), 1) * 255) : 128;
			((uint32_t *)(d + (size_t)y * stride))[x] = (uint32_t)(g << 16 | g << 8 | g);
		}
	cairo_surface_mark_dirty(s);
	return s;
}

static void paint_scaled(cairo_t *cr, cairo_surface_t *s, double x, double y, double sc)
{
	cairo_save(cr);
	cairo_translate(cr, x, y);
	cairo_scale(cr, sc, sc);
	cairo_set_source_surface(cr, s, 0, 0);
	cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
	cairo_paint(cr);
	cairo_restore(cr);
}

/* The caption under the title: how many maps and which scale. */
static void grid_caption(const grid_arg *a, char *buf, size_t n)
{
	const tl_plot_grid *g = a->g;
	int k = snprintf(buf, n, "%d of %d channels, %dx%d each; ", g->n, g->c_total, g->mh, g->mw);
	if (k < 0 || (size_t)k >= n)
		return;
	if (!g->shared)
		snprintf(buf + k, n - k, "each map stretched min..max on its own");
	else if (a->hi > a->lo)
		snprintf(buf + k, n - k, "one scale for all maps%s: %.4g (black) .. %.4g (white)",
			 g->n_sets > 1 ? " of both" : "", a->lo, a->hi);
	else
		snprintf(buf + k, n - k, "one scale for all maps: all equal (%.4g), mid grey", a->lo);
}

static void draw_grid(cairo_t *cr, double w, double h, const void *arg)
{
	const grid_arg *a = arg;
	const tl_plot_grid *g = a->g;
	(void)h;
	char buf[200];
	cairo_set_source_rgb(cr, 0, 0, 0);
	font(cr, 16, 1);
	text_at(cr, w / 2, 10, 0.5, 0, g->title ? g->title : "feature maps");
	font(cr, 11, 0);
	cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
	grid_caption(a, buf, sizeof buf);
	text_at(cr, w / 2, 32, 0.5, 0, buf);
	if (g->rgb) {
		cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, g->w, g->h);
		if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
			cairo_surface_flush(s);
			unsigned char *d = cairo_image_surface_get_data(s);
			int stride = cairo_image_surface_get_stride(s);
			for (int y = 0; y < g->h; y++)
				for (int x = 0; x < g->w; x++) {
					const uint8_t *p = g->rgb + ((size_t)y * g->w + x) * 3;
					((uint32_t *)(d + (size_t)y * stride))[x] =
						(uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
				}
			cairo_surface_mark_dirty(s);
			paint_scaled(cr, s, 14, a->grid_y + 16, a->in_scale);
		}
		cairo_surface_destroy(s);
		cairo_set_source_rgb(cr, 0, 0, 0);
		font(cr, 11, 1);
		snprintf(buf, sizeof buf, "input (%dx%d)", g->w, g->h);
		text_at(cr, 14, a->grid_y + 2, 0, 0, buf);
	}
	size_t plane = (size_t)g->mh * g->mw;
	for (int t = 0; t < g->n_sets; t++) {
		double y0 = a->grid_y + t * a->set_h;
		if (g->n_sets > 1 || g->sets[t].label) {
			cairo_set_source_rgb(cr, 0, 0, 0);
			font(cr, 12, 1);
			text_at(cr, a->grid_x, y0 + 2, 0, 0, g->sets[t].label ? g->sets[t].label : "");
			y0 += 20;
		}
		for (int i = 0; i < g->n; i++) {
			double x = a->grid_x + (i % a->cols) * a->cell_w, y = y0 + (i / a->cols) * a->cell_h;
			const float *m = g->sets[t].maps + (size_t)i * plane;
			double lo = a->lo, hi = a->hi;
			if (!g->shared) {
				lo = INFINITY, hi = -INFINITY;
				finite_minmax(m, plane, &lo, &hi);
			}
			cairo_surface_t *s = map_surface(m, g->mh, g->mw, lo, hi);
			if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS)
				paint_scaled(cr, s, x, y + 14, a->scale);
			cairo_surface_destroy(s);
			cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
			cairo_set_line_width(cr, 1);
			cairo_rectangle(cr, x - 0.5, y + 13.5, g->mw * a->scale + 1, g->mh * a->scale + 1);
			cairo_stroke(cr);
			cairo_set_source_rgb(cr, 0, 0, 0);
			font(cr, 10, 0);
			snprintf(buf, sizeof buf, "%d", g->numbers ? g->numbers[i] : i);
			text_at(cr, x, y + 1, 0, 0, buf);
		}
	}
}

tl_status tl_plot_feature_grids(const char *path, const tl_plot_grid *g, double *lo, double *hi,
				tl_err *err)
{
	if (g->n < 1 || g->mh < 1 || g->mw < 1 || g->mh > 4096 || g->mw > 4096 || g->c_total < g->n)
		return tl_seterr(err, TL_EUSAGE, "%s: feature maps: bad shape (expected 1 <= N <= C, H, W >= 1, got N %d, C %d, H %d, W %d)",
				 path, g->n, g->c_total, g->mh, g->mw);
	if (g->n_sets < 1 || g->n_sets > 4)
		return tl_seterr(err, TL_EUSAGE, "%s: feature maps: bad number of sets (expected 1..4, got %d)",
				 path, g->n_sets);
	TL_TRY(check_text(path, "the title", g->title, err));
	for (int t = 0; t < g->n_sets; t++)
		TL_TRY(check_text(path, "a set's label", g->sets[t].label, err));
	grid_arg a = {g, 0, 1, 1, INFINITY, -INFINITY, 0, 0, 0, 0, 0};
	size_t plane = (size_t)g->mh * g->mw;
	if (g->shared)
		for (int t = 0; t < g->n_sets; t++)
			finite_minmax(g->sets[t].maps, plane * g->n, &a.lo, &a.hi);
	if (!(a.lo <= a.hi))
		a.lo = a.hi = 0; /* nothing finite */
	a.cols = (int)ceil(sqrt(g->n * 1.5));
	if (a.cols > g->n)
		a.cols = g->n;
	if (a.cols < 1)
		a.cols = 1;
	int big = g->mh > g->mw ? g->mh : g->mw;
	a.scale = big >= 72 ? 1 : 72 / big;
	a.cell_w = fmax(g->mw * a.scale + 8, 30);
	a.cell_h = g->mh * a.scale + 14 + 8;
	int rows = (g->n + a.cols - 1) / a.cols;
	a.grid_y = 58;
	a.set_h = rows * a.cell_h + (g->n_sets > 1 || g->sets[0].label ? 20 + 10 : 0);
	int in_side = 0, in_h = 0;
	const uint8_t *rgb = g->rgb;
	if (rgb && g->h > 0 && g->w > 0) {
		int ib = g->h > g->w ? g->h : g->w;
		a.in_scale = ib >= 160 ? 1 : 160 / ib;
		in_side = g->w * a.in_scale;
		in_h = g->h * a.in_scale + 20;
	}
	tl_plot_grid gg = *g;
	if (!in_side)
		gg.rgb = NULL;
	a.g = &gg;
	a.grid_x = in_side ? 14 + in_side + 28 : 14;
	/* labels can be long: the picture is as wide as the widest */
	double label_w = 0;
	cairo_surface_t *ms = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
	cairo_t *mcr = cairo_create(ms);
	font(mcr, 12, 1);
	for (int t = 0; t < g->n_sets; t++)
		if (g->sets[t].label)
			label_w = fmax(label_w, text_w(mcr, g->sets[t].label));
	font(mcr, 16, 1);
	label_w = fmax(label_w, (g->title ? text_w(mcr, g->title) : 0) - a.grid_x + 14);
	cairo_destroy(mcr);
	cairo_surface_destroy(ms);
	int width = (int)(a.grid_x + fmax(a.cols * a.cell_w, label_w) + 10);
	int height = (int)(a.grid_y + fmax(g->n_sets * a.set_h, in_h) + 12);
	if (width < 480)
		width = 480;
	if ((double)width * height > 64e6 || width > 30000 || height > 30000)
		return tl_seterr(err, TL_EUSAGE, "%s: feature-map grid too large (%dx%d pixels; show fewer maps)",
				 path, width, height);
	if (lo)
		*lo = a.lo;
	if (hi)
		*hi = a.hi;
	return render(path, width, height, draw_grid, &a, NULL, err);
}

tl_status tl_plot_feature_grid(const char *path, const char *title, const uint8_t *rgb, int h,
			       int w, const float *maps, int c, int mh, int mw, int max_maps,
			       tl_err *err)
{
	if (c < 1)
		return tl_seterr(err, TL_EUSAGE, "%s: feature maps: bad shape (expected C, H, W >= 1, got %d, %d, %d)",
				 path, c, mh, mw);
	tl_plot_mapset set = {NULL, maps};
	tl_plot_grid g = {title, rgb, h, w, max_maps > 0 && max_maps < c ? max_maps : c, c, mh, mw,
			  NULL, &set, 1, 0};
	return tl_plot_feature_grids(path, &g, NULL, NULL, err);
}

/* ---- captioned pictures (top losses) ---- */

#define TILE_SIDE 160 /* about this many px on a picture's longer side */
#define TILE_LINE 14  /* px per caption line */

typedef struct {
	const char *title, *caption;
	const tl_plot_tile *t;
	int n, cols, lines;
	double cell_w, cell_h, grid_y;
} tiles_arg;

/* A picture's scale: a whole factor up to TILE_SIDE, or down to it. */
static double tile_scale(const tl_plot_tile *t)
{
	int big = t->h > t->w ? t->h : t->w;
	return big <= TILE_SIDE ? (double)(TILE_SIDE / big) : (double)TILE_SIDE / big;
}

/* s cut to at most max_w wide (in the current font) into buf (n bytes):
 * whole if it fits, else with an ellipsis at its start (keep_end) or its
 * end, at a character boundary. */
static void fit_text(cairo_t *cr, const char *s, double max_w, int keep_end, char *buf, size_t n)
{
	size_t len = strlen(s);
	snprintf(buf, n, "%s", s);
	if (text_w(cr, buf) <= max_w || len + 4 > n)
		return;
	/* the most characters that fit, found by dropping one at a time */
	size_t chars = 0;
	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)s[i] & 0xc0) != 0x80;
	for (size_t keep = chars; keep > 0; keep--) {
		if (keep_end) {
			size_t skip = chars - keep, i = 0;
			for (size_t c = 0; i < len; i++)
				if (((unsigned char)s[i] & 0xc0) != 0x80 && c++ == skip)
					break;
			snprintf(buf, n, "\u2026%s", s + i);
		} else {
			tl_plot_utf8_clip(buf, n, s, keep);
		}
		if (text_w(cr, buf) <= max_w)
			return;
	}
	snprintf(buf, n, "\u2026");
}

static void draw_tiles(cairo_t *cr, double w, double h, const void *arg)
{
	const tiles_arg *a = arg;
	(void)h;
	cairo_set_source_rgb(cr, 0, 0, 0);
	font(cr, 16, 1);
	text_at(cr, w / 2, 10, 0.5, 0, a->title ? a->title : "");
	if (a->caption) {
		font(cr, 11, 0);
		cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
		text_at(cr, w / 2, 32, 0.5, 0, a->caption);
	}
	for (int i = 0; i < a->n; i++) {
		const tl_plot_tile *t = &a->t[i];
		double x = 10 + (i % a->cols) * a->cell_w, y = a->grid_y + (i / a->cols) * a->cell_h;
		double sc = tile_scale(t);
		cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, t->w, t->h);
		if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
			cairo_surface_flush(s);
			unsigned char *d = cairo_image_surface_get_data(s);
			int stride = cairo_image_surface_get_stride(s);
			for (int yy = 0; yy < t->h; yy++)
				for (int xx = 0; xx < t->w; xx++) {
					const uint8_t *p = t->rgb + ((size_t)yy * t->w + xx) * 3;
					((uint32_t *)(d + (size_t)yy * stride))[xx] =
						(uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
				}
			cairo_surface_mark_dirty(s);
			double ox = x + (a->cell_w - 10 - t->w * sc) / 2;
			cairo_save(cr);
			cairo_translate(cr, ox, y);
			cairo_scale(cr, sc, sc);
			cairo_set_source_surface(cr, s, 0, 0);
			cairo_pattern_set_filter(cairo_get_source(cr),
						 sc >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
			cairo_paint(cr);
			cairo_restore(cr);
		}
		cairo_surface_destroy(s);
		double ty = y + TILE_SIDE + 4;
		for (int l = 0; l < 4; l++) {
			if (!t->lines[l])
				continue;
			char buf[1024];
			font(cr, 10, l == 0);
			cairo_set_source_rgb(cr, l == 0 ? 0 : 0.15, l == 0 ? 0 : 0.15, l == 0 ? 0 : 0.15);
			fit_text(cr, t->lines[l], a->cell_w - 14, l == 0, buf, sizeof buf);
			text_at(cr, x + (a->cell_w - 10) / 2, ty, 0.5, 0, buf);
			ty += TILE_LINE;
		}
	}
}

tl_status tl_plot_tiles(const char *path, const char *title, const char *caption,
			const tl_plot_tile *tiles, int n, tl_plot_batch *batch, tl_err *err)
{
	if (n < 0 || n > 256)
		return tl_seterr(err, TL_EUSAGE, "%s: pictures: bad count (expected 0..256, got %d)", path, n);
	TL_TRY(check_text(path, "the title", title, err));
	TL_TRY(check_text(path, "the caption", caption, err));
	tiles_arg a = {title, caption, tiles, n, 1, 0, TILE_SIDE + 24, 0, caption ? 56 : 40};
	for (int i = 0; i < n; i++) {
		const tl_plot_tile *t = &tiles[i];
		if (!t->rgb || t->h < 1 || t->w < 1 || t->h > 4096 || t->w > 4096)
			return tl_seterr(err, TL_EUSAGE, "%s: picture %d: bad size (expected 1..4096 on each side, got %dx%d)",
					 path, i, t->w, t->h);
		int lines = 0;
		for (int l = 0; l < 4; l++) {
			TL_TRY(check_text(path, "a caption line", t->lines[l], err));
			lines += t->lines[l] != NULL;
		}
		if (lines > a.lines)
			a.lines = lines;
	}
	a.cols = n ? (int)ceil(sqrt((double)n)) : 1;
	int rows = n ? (n + a.cols - 1) / a.cols : 0;
	a.cell_h = TILE_SIDE + 4 + a.lines * TILE_LINE + 14;
	/* the picture is as wide as its title and caption need */
	cairo_surface_t *ms = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
	cairo_t *mcr = cairo_create(ms);
	font(mcr, 16, 1);
	double need = title ? text_w(mcr, title) : 0;
	font(mcr, 11, 0);
	need = fmax(need, caption ? text_w(mcr, caption) : 0);
	cairo_destroy(mcr);
	cairo_surface_destroy(ms);
	int width = (int)fmax(20 + a.cols * a.cell_w, need + 40);
	int height = (int)(a.grid_y + rows * a.cell_h + 10);
	if (width < 360)
		width = 360;
	return render(path, width, height, draw_tiles, &a, batch, err);
}
