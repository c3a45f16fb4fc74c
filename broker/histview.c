/*
 * histview -- the history on the status page and in the JSON API
 * (histview.h).
 *
 * Both read the rings through history.h's accessors, oldest sample
 * first, and copy each series out once: the page into the doubles a
 * chart takes, the API into JSON arrays.  A state no sample of a pool
 * counted is left out of the pool's chart (and kept in the API, where
 * its zeros cost little and every pool has the same fields).  A time to
 * READY of an interval in which no ticket got ready is a gap on the
 * chart and null in the API.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "histview.h"
#include "json.h"
#include "svg.h"
#include "util.h"

/* A fixed color per state, the same in every pool's chart. */
static const char *const state_colors[HISTORY_NSTATES] = {
    [HISTORY_STARTING] = "#f28e2b",
    [HISTORY_FREE] = "#59a14f",
    [HISTORY_RELEASED] = "#76b7b2",
    [HISTORY_TAKEN] = "#4e79a7",
    [HISTORY_RELEASING] = "#b07aa1",
    [HISTORY_DELETING] = "#e15759",
};

/* A growing piece of text. */
struct text {
	char *s;
	size_t len;
};

static void
text_take(struct text *t, char *s)
{
	size_t n = strlen(s);

	t->s = xrealloc(t->s, t->len + n + 1);
	memcpy(t->s + t->len, s, n + 1);
	t->len += n;
	free(s);
}

/* What every chart of H shares: the times and the interval. */
static void
chart_base(const struct history *h, struct svg_chart *c, int64_t *t_ms)
{
	size_t i, n = history_samples(h);

	for (i = 0; i < n; i++)
		t_ms[i] = history_time_ms(h, i);
	memset(c, 0, sizeof(*c));
	c->t_ms = t_ms;
	c->n = n;
	c->step_ms = (int64_t)(history_interval_s(h) * 1000.);
	c->unit = "";
}

static char *
chart_waiting(const struct history *h, int64_t *t_ms)
{
	struct svg_line lines[HISTORY_MAX_TAGSETS + 1];
	double *v;
	struct svg_chart c;
	size_t i, j, nl = history_tagsets(h), n = history_samples(h);
	char *out;

	chart_base(h, &c, t_ms);
	v = xcalloc(nl * n + 1, sizeof(*v));
	for (j = 0; j < nl; j++) {
		for (i = 0; i < n; i++)
			v[j * n + i] = history_waiting(h, j, i);
		lines[j].label = history_tagset(h, j) != NULL
				     ? history_tagset(h, j)
				     : "other tag sets";
		lines[j].color = NULL;
		lines[j].dashed = false;
		lines[j].v = &v[j * n];
	}
	c.id = "chart-waiting";
	c.title = "Tickets waiting, by tag set";
	c.empty = "no ticket waited";
	c.lines = lines;
	c.nlines = nl;
	out = svg_chart(&c);
	free(v);
	return out;
}

static char *
chart_ready(const struct history *h, int64_t *t_ms)
{
	struct svg_line lines[2];
	struct svg_chart c;
	size_t i, n = history_samples(h);
	double *v = xcalloc(2 * n + 1, sizeof(*v));
	bool any = false;
	char *out;

	chart_base(h, &c, t_ms);
	for (i = 0; i < n; i++) {
		if (history_ready_at(h, HISTORY_READY_COUNT, i) == 0) {
			v[i] = v[n + i] = NAN;
			continue;
		}
		any = true;
		v[i] = history_ready_at(h, HISTORY_READY_P50_MS, i) / 1000.;
		v[n + i] = history_ready_at(h, HISTORY_READY_MAX_MS, i) / 1000.;
	}
	lines[0].label = "median";
	lines[0].color = "#4e79a7";
	lines[0].v = v;
	lines[0].dashed = false;
	lines[1].label = "max";
	lines[1].color = "#e15759";
	lines[1].v = &v[n];
	lines[1].dashed = true; /* the median shows through where they meet */
	c.id = "chart-ready";
	c.title = "Time from ticket to READY, per interval";
	c.unit = " s";
	c.empty = "no ticket got READY";
	c.lines = lines;
	c.nlines = any ? 2 : 0;
	out = svg_chart(&c);
	free(v);
	return out;
}

static char *
chart_pool(const struct history *h, size_t j, int64_t *t_ms)
{
	struct svg_line lines[HISTORY_NSTATES];
	struct svg_chart c;
	size_t i, k, nl = 0, n = history_samples(h);
	double *v = xcalloc(HISTORY_NSTATES * n + 1, sizeof(*v));
	const char *name = history_pool(h, j);
	char *id, *title, *out;
	bool any;

	chart_base(h, &c, t_ms);
	for (k = 0; k < HISTORY_NSTATES; k++) {
		any = false;
		for (i = 0; i < n; i++) {
			v[nl * n + i] = history_resources(h, j, k, i);
			any = any || v[nl * n + i] > 0.;
		}
		if (!any)
			continue;
		lines[nl].label = history_state_names[k];
		lines[nl].color = state_colors[k];
		lines[nl].v = &v[nl * n];
		lines[nl].dashed = false;
		nl++;
	}
	id = xasprintf("chart-pool-%s", name != NULL ? name : "other");
	title = name != NULL ? xasprintf("Pool %s: resources by state", name)
			     : xstrdup("Other pools: resources by state");
	c.id = id;
	c.title = title;
	c.empty = "no resources";
	c.lines = lines;
	c.nlines = nl;
	out = svg_chart(&c);
	free(v);
	free(id);
	free(title);
	return out;
}

char *
histview_html(const struct history *h)
{
	struct text t = {NULL, 0};
	int64_t *t_ms = xcalloc(history_samples(h) + 1, sizeof(*t_ms));
	char span[32];
	double iv = history_interval_s(h), window = iv * HISTORY_SAMPLES;
	size_t j;

	if (window >= 7200.)
		snprintf(span, sizeof(span), "%.3g h", window / 3600.);
	else
		snprintf(span, sizeof(span), "%.3g min", window / 60.);
	text_take(&t,
	    xasprintf("<h2>History</h2>\n<p class=\"muted\">One sample every "
		      "%g s, the last %d kept (%s), in memory only: "
		      "<a href=\"/api/v1/history\">/api/v1/history</a>."
		      "</p>\n<div class=\"charts\">\n",
		iv, HISTORY_SAMPLES, span));
	text_take(&t, chart_waiting(h, t_ms));
	text_take(&t, chart_ready(h, t_ms));
	for (j = 0; j < history_pools(h); j++)
		text_take(&t, chart_pool(h, j, t_ms));
	text_take(&t, xstrdup("</div>\n"));
	free(t_ms);
	return t.s;
}

/* ---- /api/v1/history ----------------------------------------------------- */

static json_object *
json_series(const struct history *h, size_t j, int state)
{
	json_object *a = json_object_new_array();
	size_t i, n = history_samples(h);

	for (i = 0; i < n; i++)
		json_object_array_add(
		    a, json_object_new_int64(
			   state < 0 ? history_waiting(h, j, i)
				     : history_resources(h, j,
					   (enum history_state)state, i)));
	return a;
}

static json_object *
json_ready(const struct history *h)
{
	json_object *o = json_object_new_object();
	json_object *count = json_object_new_array();
	json_object *p50 = json_object_new_array();
	json_object *max = json_object_new_array();
	size_t i, n = history_samples(h);
	uint32_t k;

	for (i = 0; i < n; i++) {
		k = history_ready_at(h, HISTORY_READY_COUNT, i);
		json_object_array_add(count, json_object_new_int64(k));
		json_object_array_add(p50,
		    k == 0 ? NULL
			   : json_object_new_double(
				 history_ready_at(h, HISTORY_READY_P50_MS, i) /
				 1000.));
		json_object_array_add(max,
		    k == 0 ? NULL
			   : json_object_new_double(
				 history_ready_at(h, HISTORY_READY_MAX_MS, i) /
				 1000.));
	}
	json_object_object_add(o, "count", count);
	json_object_object_add(o, "p50_seconds", p50);
	json_object_object_add(o, "max_seconds", max);
	return o;
}

json_object *
histview_json(const struct history *h)
{
	json_object *o = json_object_new_object();
	json_object *times = json_object_new_array();
	json_object *waiting = json_object_new_array();
	json_object *pools = json_object_new_array();
	json_object *s;
	const char *name;
	size_t i, j, k, n = history_samples(h);

	json_object_object_add(o, "interval_seconds",
	    json_object_new_double(history_interval_s(h)));
	json_object_object_add(
	    o, "capacity", json_object_new_int64(HISTORY_SAMPLES));
	json_object_object_add(
	    o, "max_tagsets", json_object_new_int64(HISTORY_MAX_TAGSETS));
	json_object_object_add(
	    o, "max_pools", json_object_new_int64(HISTORY_MAX_POOLS));
	json_object_object_add(o, "samples", json_object_new_int64((int64_t)n));
	for (i = 0; i < n; i++)
		json_object_array_add(
		    times, json_object_new_int64(history_time_ms(h, i)));
	json_object_object_add(o, "times_ms", times);
	for (j = 0; j < history_tagsets(h); j++) {
		name = history_tagset(h, j);
		s = json_object_new_object();
		json_object_object_add(s, "key", json_str_or_null(name));
		json_object_object_add(
		    s, "tags", name != NULL ? json_key_tags(name) : NULL);
		json_object_object_add(
		    s, "other", json_object_new_boolean(name == NULL));
		json_object_object_add(s, "values", json_series(h, j, -1));
		json_object_array_add(waiting, s);
	}
	json_object_object_add(o, "waiting", waiting);
	for (j = 0; j < history_pools(h); j++) {
		name = history_pool(h, j);
		s = json_object_new_object();
		json_object_object_add(s, "pool", json_str_or_null(name));
		json_object_object_add(
		    s, "other", json_object_new_boolean(name == NULL));
		for (k = 0; k < HISTORY_NSTATES; k++)
			json_object_object_add(s, history_state_names[k],
			    json_series(h, j, (int)k));
		json_object_array_add(pools, s);
	}
	json_object_object_add(o, "resources", pools);
	json_object_object_add(o, "ready", json_ready(h));
	return o;
}
