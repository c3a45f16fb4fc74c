/*
 * http_metrics -- resbusd's /metrics, in Prometheus text format 0.0.4:
 * per pool, its resources by state, tickets waiting and its starts; the
 * tickets by state; the leader, its fencing epoch and its standbys.  The
 * page is built whole from the scheduler's read-only views; its size is
 * bounded by the pools configured.
 */
#include "config.h"

#include <sys/queue.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <microhttpd.h>

#include "buf.h"
#include "conf.h"
#include "http_priv.h"
#include "peers.h"
#include "sched.h"
#include "util.h"

/* ---- writing into a buf (lib/buf.h) ------------------------------------- */

/* S as a Prometheus label value: \ " and newline escaped. */
static void
buf_label(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_puts(b, "\\\\");
		else if (*s == '"')
			buf_puts(b, "\\\"");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

/* ---- /metrics ---------------------------------------------------------- */

static void
metric_head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * NAME{pool="P"[,LABEL="VALUE"]} V, with V an integer when it is one,
 * NaN when it is not a number, else in %.6g.
 */
static void
metric_pool(struct buf *b, const char *name, const char *pool,
    const char *label, const char *value, double v)
{
	buf_printf(b, "%s{pool=\"", name);
	buf_label(b, pool);
	buf_puts(b, "\"");
	if (label != NULL) {
		buf_printf(b, ",%s=\"", label);
		buf_label(b, value);
		buf_puts(b, "\"");
	}
	if (isnan(v))
		buf_puts(b, "} NaN\n");
	else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		buf_printf(b, "} %lld\n", (long long)v);
	else
		buf_printf(b, "} %.6g\n", v);
}

/* The active broker: leadership, standbys, tickets by state. */
static void
metrics_broker(struct http *h, struct buf *b)
{
	size_t open, ready, failed;

	/* Only the active broker serves this page: a standby has none. */
	metric_head(b, "resbus_broker_active", "gauge",
	    "1: this resbusd is the active broker.");
	buf_printf(b, "resbus_broker_active 1\n");
	metric_head(b, "resbus_broker_active_since_seconds", "gauge",
	    "When this resbusd became the active broker (Unix time).");
	buf_printf(b, "resbus_broker_active_since_seconds %.3f\n",
	    (double)h->leader_since_ms / 1000.);
	metric_head(b, "resbus_broker_leader_epoch", "gauge",
	    "The fencing epoch of the active broker (0 on SQLite).");
	buf_printf(
	    b, "resbus_broker_leader_epoch %lld\n", (long long)h->leader_epoch);
	metric_head(b, "resbus_broker_standbys", "gauge",
	    "Standby brokers heard in the last few seconds.");
	buf_printf(b, "resbus_broker_standbys %zu\n",
	    h->standbys != NULL ? h->standbys->n : 0);

	/* Counted as tickets come and go: a scrape does not walk them. */
	sched_ticket_counts(h->sched, &open, &ready, &failed);
	metric_head(b, "resbus_tickets", "gauge",
	    "Tickets the broker holds, by state.");
	buf_printf(b, "resbus_tickets{state=\"open\"} %zu\n", open);
	buf_printf(b, "resbus_tickets{state=\"ready\"} %zu\n", ready);
	buf_printf(b, "resbus_tickets{state=\"failed\"} %zu\n", failed);
}

/* Each pool's resources by state, its max and whether it is paused. */
static void
metrics_pool_state(struct buf *b, const struct pool_rows *rows)
{
	static const char *const states[] = {
	    "starting", "free", "released", "taken", "releasing", "deleting"};
	const struct sched_pool_view *v;
	double counts[6];
	size_t i, j;

	metric_head(b, "resbus_resources", "gauge",
	    "Live resources, by pool and state.");
	for (i = 0; i < rows->n; i++) {
		v = &rows->v[i].v;
		counts[0] = (double)v->starting;
		counts[1] = (double)v->free;
		counts[2] = (double)v->released;
		counts[3] = (double)v->taken;
		counts[4] = (double)v->releasing;
		counts[5] = (double)v->deleting;
		for (j = 0; j < 6; j++)
			metric_pool(b, "resbus_resources", rows->v[i].name,
			    "state", states[j], counts[j]);
	}

	metric_head(b, "resbus_pool_max", "gauge",
	    "A pool's max (configured pools only).");
	for (i = 0; i < rows->n; i++)
		if (rows->v[i].conf != NULL)
			metric_pool(b, "resbus_pool_max", rows->v[i].name, NULL,
			    NULL, (double)rows->v[i].conf->max);

	metric_head(b, "resbus_pool_paused", "gauge",
	    "1 if an operator paused or drained the pool.");
	for (i = 0; i < rows->n; i++)
		metric_pool(b, "resbus_pool_paused", rows->v[i].name, NULL,
		    NULL, rows->v[i].v.paused ? 1. : 0.);
}

/* Each pool's finished starts: counts, success ratio, durations. */
static void
metrics_pool_starts(struct buf *b, const struct pool_rows *rows)
{
	const struct sched_pool_view *v;
	double ratio;
	char le[32];
	size_t i, j;

	metric_head(b, "resbus_pool_starts_total", "counter",
	    "Finished resource starts (cmd_new), by result, since resbusd "
	    "started.");
	for (i = 0; i < rows->n; i++) {
		metric_pool(b, "resbus_pool_starts_total", rows->v[i].name,
		    "result", "ok", (double)rows->v[i].v.starts_ok);
		metric_pool(b, "resbus_pool_starts_total", rows->v[i].name,
		    "result", "failed", (double)rows->v[i].v.starts_failed);
	}

	metric_head(b, "resbus_pool_start_success_ratio", "gauge",
	    "Share of finished starts that succeeded (NaN before the "
	    "first).");
	for (i = 0; i < rows->n; i++) {
		ratio = http_pool_success_ratio(&rows->v[i].v);
		metric_pool(b, "resbus_pool_start_success_ratio",
		    rows->v[i].name, NULL, NULL, ratio < 0 ? NAN : ratio);
	}

	metric_head(b, "resbus_pool_start_seconds_avg", "gauge",
	    "Mean duration of successful starts, in seconds.");
	for (i = 0; i < rows->n; i++)
		metric_pool(b, "resbus_pool_start_seconds_avg", rows->v[i].name,
		    NULL, NULL, rows->v[i].v.start_ms_avg / 1000.);

	metric_head(b, "resbus_pool_start_seconds", "histogram",
	    "Durations of successful starts, in seconds.");
	for (i = 0; i < rows->n; i++) {
		v = &rows->v[i].v;
		for (j = 0; j < SCHED_START_BUCKETS; j++) {
			snprintf(le, sizeof(le), "%g", sched_start_bucket_s[j]);
			metric_pool(b, "resbus_pool_start_seconds_bucket",
			    rows->v[i].name, "le", le, (double)v->start_le[j]);
		}
		metric_pool(b, "resbus_pool_start_seconds_bucket",
		    rows->v[i].name, "le", "+Inf", (double)v->starts_ok);
		metric_pool(b, "resbus_pool_start_seconds_sum", rows->v[i].name,
		    NULL, NULL, v->start_ms_sum / 1000.);
		metric_pool(b, "resbus_pool_start_seconds_count",
		    rows->v[i].name, NULL, NULL, (double)v->starts_ok);
	}
}

/* The open tickets each pool could serve: how many, the oldest's age. */
static void
metrics_pool_waiting(struct buf *b, const struct pool_rows *rows)
{
	const struct sched_pool_view *v;
	int64_t now_ms;
	double age_s;
	size_t i;

	metric_head(b, "resbus_tickets_waiting", "gauge",
	    "Open tickets waiting that the pool could serve.");
	for (i = 0; i < rows->n; i++)
		metric_pool(b, "resbus_tickets_waiting", rows->v[i].name, NULL,
		    NULL, (double)rows->v[i].v.waiting);

	metric_head(b, "resbus_tickets_waiting_age_seconds", "gauge",
	    "How long the oldest open ticket the pool could serve has "
	    "waited (0 if none).");
	now_ms = now_wall_ms();
	for (i = 0; i < rows->n; i++) {
		v = &rows->v[i].v;
		age_s = 0.;
		if (v->oldest_waiting_ms != 0 && v->oldest_waiting_ms < now_ms)
			age_s = (double)(now_ms - v->oldest_waiting_ms) / 1000.;
		metric_pool(b, "resbus_tickets_waiting_age_seconds",
		    rows->v[i].name, NULL, NULL, age_s);
	}
}

/* GET /metrics: Prometheus' text format, one family after another. */
enum MHD_Result
http_page_metrics(struct http *h, struct MHD_Connection *c, const char *rest)
{
	struct buf b = {NULL, 0, 0};
	struct pool_rows rows;

	(void)rest;
	http_pools_collect(h, &rows);
	metrics_broker(h, &b);
	metrics_pool_state(&b, &rows);
	metrics_pool_starts(&b, &rows);
	metrics_pool_waiting(&b, &rows);
	http_pools_release(&rows);
	return http_reply(c, MHD_HTTP_OK, CT_METRICS, &b);
}
