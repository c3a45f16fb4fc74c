/*
 * svg -- step charts as inline SVG (svg.h).
 *
 * The time axis ends at the newest sample and spans the samples held,
 * at least SVG_MIN_STEPS intervals, so a young history is not one pixel
 * wide; it is labelled in time before the newest sample.  The value
 * axis starts at 0 and ends at the largest value rounded up to 1, 2 or
 * 5 times a power of ten.  The fragment is written with open_memstream
 * and every number is formatted with one decimal, so its size depends
 * only on how many segments are drawn.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "svg.h"
#include "util.h"

#define SVG_W 480
#define SVG_H 150
#define SVG_LEFT 48 /* room for the value labels */
#define SVG_RIGHT 8
#define SVG_TOP 8
#define SVG_BOTTOM 22 /* room for the time labels */
#define SVG_MIN_STEPS 10

/* Tableau 10: tell ten series apart, also in grey. */
static const char *const svg_palette[] = {"#4e79a7", "#f28e2b", "#e15759",
    "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac"};
#define SVG_NPALETTE (sizeof(svg_palette) / sizeof(svg_palette[0]))

/* S with & < > " ' as character references. */
static void
svg_text(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A span of time as "45s", "12m", "6h" or "1h30m". */
static void
svg_duration(char *out, size_t len, int64_t ms)
{
	long long s = (long long)((ms + 500) / 1000), m = (s + 30) / 60;

	if (s < 120)
		snprintf(out, len, "%llds", s);
	else if (m < 120)
		snprintf(out, len, "%lldm", m);
	else if (m % 60 == 0)
		snprintf(out, len, "%lldh", m / 60);
	else
		snprintf(out, len, "%lldh%02lldm", m / 60, m % 60);
}

/* The least of 1, 2, 5 times a power of ten that is >= V (at least 1). */
static double
svg_nice(double v)
{
	double p = 1.;

	if (!(v > 1.))
		return 1.;
	while (p * 10. < v)
		p *= 10.;
	if (v <= p)
		return p;
	if (v <= 2. * p)
		return 2. * p;
	if (v <= 5. * p)
		return 5. * p;
	return 10. * p;
}

/* A value for an axis label: an integer when it is one. */
static void
svg_value(char *out, size_t len, double v)
{
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.3g", v);
}

struct svg_scale {
	int64_t left_ms, right_ms;
	double top;
};

static double
svg_x(const struct svg_scale *sc, int64_t t_ms)
{
	double w = SVG_W - SVG_LEFT - SVG_RIGHT;

	if (t_ms < sc->left_ms)
		t_ms = sc->left_ms;
	return SVG_LEFT + w * (double)(t_ms - sc->left_ms) /
			      (double)(sc->right_ms - sc->left_ms);
}

static double
svg_y(const struct svg_scale *sc, double v)
{
	double h = SVG_H - SVG_TOP - SVG_BOTTOM;

	return SVG_TOP + h * (1. - v / sc->top);
}

/*
 * One series as a path of steps: sample I covers (t[I] - step, t[I]],
 * joined to the previous one when that is no more than two intervals
 * before.  A run of equal values is one horizontal segment.
 */
static void
svg_path(FILE *f, const struct svg_chart *c, const struct svg_scale *sc,
    const struct svg_line *l, const char *color)
{
	bool pen = false, any = false;
	double pen_y = 0., end_x = 0., x0, y;
	int64_t start;
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (isnan(l->v[i])) {
			if (pen)
				fprintf(f, "H%.1f", end_x);
			pen = false;
			continue;
		}
		y = svg_y(sc, l->v[i]);
		start = c->t_ms[i] - c->step_ms;
		if (i > 0 && c->t_ms[i] - c->t_ms[i - 1] <= 2 * c->step_ms)
			start = c->t_ms[i - 1];
		x0 = svg_x(sc, start);
		if (!any) {
			fprintf(f, "<path class=\"series\" data-series=\"");
			svg_text(f, l->label);
			fprintf(f,
			    "\" fill=\"none\" stroke=\"%s\" "
			    "stroke-width=\"1.5\"%s d=\"",
			    color,
			    l->dashed ? " stroke-dasharray=\"4 3\"" : "");
			any = true;
		}
		if (pen && x0 - end_x < 0.05 && end_x - x0 < 0.05) {
			if (y != pen_y)
				fprintf(f, "H%.1fV%.1f", end_x, y);
		} else {
			if (pen)
				fprintf(f, "H%.1f", end_x);
			fprintf(f, "M%.1f,%.1f", x0, y);
		}
		pen = true;
		pen_y = y;
		end_x = svg_x(sc, c->t_ms[i]);
	}
	if (pen)
		fprintf(f, "H%.1f", end_x);
	if (any)
		fputs("\"/>\n", f);
}

static void
svg_frame(FILE *f, const struct svg_chart *c, const struct svg_scale *sc)
{
	char a[32], b[32];
	double mid = svg_x(sc, sc->left_ms + (sc->right_ms - sc->left_ms) / 2);

	fprintf(f,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "font-family=\"sans-serif\" font-size=\"10\" fill=\"#555\">\n",
	    SVG_W, SVG_H, SVG_W, SVG_H);
	fprintf(f,
	    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
	    "fill=\"#fbfcfd\" stroke=\"#bbb\"/>\n",
	    SVG_LEFT, SVG_TOP, SVG_W - SVG_LEFT - SVG_RIGHT,
	    SVG_H - SVG_TOP - SVG_BOTTOM);
	fprintf(f, "<path stroke=\"#e3e6ea\" d=\"M%d,%.1fH%d\"/>\n", SVG_LEFT,
	    svg_y(sc, sc->top / 2.), SVG_W - SVG_RIGHT);
	svg_value(a, sizeof(a), sc->top);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", SVG_LEFT - 4,
	    SVG_TOP + 8);
	svg_text(f, a);
	svg_text(f, c->unit);
	svg_value(a, sizeof(a), sc->top / 2.);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
	    SVG_LEFT - 4, svg_y(sc, sc->top / 2.) + 3.);
	svg_text(f, a);
	fprintf(f,
	    "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0"
	    "</text>\n",
	    SVG_LEFT - 4, SVG_H - SVG_BOTTOM);
	svg_duration(a, sizeof(a), sc->right_ms - sc->left_ms);
	svg_duration(b, sizeof(b), (sc->right_ms - sc->left_ms) / 2);
	fprintf(f,
	    "<text x=\"%d\" y=\"%d\">-%s</text>\n"
	    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">-%s</text>\n"
	    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">now</text>\n",
	    SVG_LEFT, SVG_H - 6, a, mid, SVG_H - 6, b, SVG_W - SVG_RIGHT,
	    SVG_H - 6);
}

char *
svg_chart(const struct svg_chart *c)
{
	struct svg_scale sc;
	const char *color;
	char *out = NULL;
	size_t len = 0, i, j;
	double top = 0.;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		fatal("open_memstream");
	for (j = 0; j < c->nlines; j++)
		for (i = 0; i < c->n; i++)
			if (!isnan(c->lines[j].v[i]) && c->lines[j].v[i] > top)
				top = c->lines[j].v[i];
	sc.top = svg_nice(top);
	sc.right_ms = c->n > 0 ? c->t_ms[c->n - 1] : 0;
	sc.left_ms = c->n > 0 ? c->t_ms[0] - c->step_ms : 0;
	if (sc.right_ms - sc.left_ms < SVG_MIN_STEPS * c->step_ms)
		sc.left_ms = sc.right_ms - SVG_MIN_STEPS * c->step_ms;
	if (sc.right_ms <= sc.left_ms)
		sc.left_ms = sc.right_ms - 1;

	fputs("<figure class=\"chart\" id=\"", f);
	svg_text(f, c->id);
	fputs("\">\n<figcaption>", f);
	svg_text(f, c->title);
	fputs("</figcaption>\n", f);
	svg_frame(f, c, &sc);
	for (j = 0; j < c->nlines; j++) {
		color = c->lines[j].color != NULL
			    ? c->lines[j].color
			    : svg_palette[j % SVG_NPALETTE];
		svg_path(f, c, &sc, &c->lines[j], color);
	}
	if (c->nlines == 0 && c->empty != NULL) {
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
		    SVG_LEFT + (SVG_W - SVG_LEFT - SVG_RIGHT) / 2,
		    SVG_TOP + (SVG_H - SVG_TOP - SVG_BOTTOM) / 2);
		svg_text(f, c->empty);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n<ul class=\"legend\">", f);
	for (j = 0; j < c->nlines; j++) {
		color = c->lines[j].color != NULL
			    ? c->lines[j].color
			    : svg_palette[j % SVG_NPALETTE];
		fprintf(f,
		    "<li><span class=\"swatch\" style=\"background:%s\">"
		    "</span>",
		    color);
		svg_text(f, c->lines[j].label);
		fputs("</li>", f);
	}
	fputs("</ul>\n</figure>\n", f);
	if (fclose(f) != 0 || out == NULL)
		fatal("open_memstream");
	return out;
}
