/*
 * http -- resbusd's status page, JSON API and Prometheus metrics.
 *
 * libmicrohttpd is started with MHD_USE_EPOLL and no thread of its own:
 * its epoll descriptor is one more fd of the broker's libev loop, and
 * its timeout one more ev_timer.  When either fires, MHD_run() reads,
 * calls http_handler() for complete requests and writes; the timer is
 * re-armed from MHD_get_timeout() after every run.  So the scheduler's
 * data is read on the loop's thread, between two messages, and needs no
 * lock.
 *
 * Every page has a bounded size.  Small pages (pools, one resource, the
 * metrics, the status page with its first HTTP_HTML_ROWS resources and
 * tickets and the history's charts, /api/v1/history: both bounded by
 * history.h's caps on samples and series) are built whole from the scheduler's read-only views and
 * handed to MHD to send.  The API's lists are pages of at most
 * HTTP_LIST_MAX items after a cursor, written in batches while their
 * client reads them (list_read()), so neither a poller nor a slow reader
 * makes the loop walk or hold every ticket.  Hostile clients meet the
 * limits of MHD (connections, per address, memory per connection, an
 * idle timeout) and a deadline for the request to arrive whole
 * (http_headers_expire()).  HTML is plain server-side markup
 * with inline CSS, no JavaScript and no external assets, and every
 * string from tickets, resources or configuration is escaped.  A pool's
 * commands (cmd_new and friends) are never shown, only whether they are
 * configured: command lines often carry tokens.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "buf.h"
#include "conf.h"
#include "histview.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "peers.h"
#include "sched.h"
#include "util.h"

/*
 * The limits of the server (resbusd(8), "STATUS PAGE AND API").  Every
 * connection costs at most its MHD memory pool plus one batch of list
 * items (below), so 64 of them stay within a few MiB however slowly
 * their clients read; no address may hold more than a quarter of them;
 * a request must arrive whole within HTTP_HEADER_TIMEOUT_S of the
 * connection (or of the previous answer on it), however it trickles in,
 * and a connection with no progress either way is closed after
 * HTTP_CONNECTION_TIMEOUT_S.
 */
#define HTTP_CONNECTION_LIMIT 64
#define HTTP_PER_IP_LIMIT 16
#define HTTP_CONNECTION_TIMEOUT_S 10
#define HTTP_HEADER_TIMEOUT_S 10.
#define HTTP_CONNECTION_MEMORY (32 * 1024)
#define HTTP_BLOCK_BYTES (16 * 1024)	/* asked of a list at a time */
#define HTTP_LIST_BATCH 32		/* items read from sched at a time */
#define HTTP_LIST_LIMIT 100		/* items per page by default */
#define HTTP_LIST_MAX 1000		/* items per page at most */
#define HTTP_HTML_ROWS 100		/* resources, tickets on "/" */

#define CT_HTML "text/html; charset=utf-8"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* A connection whose request has not arrived whole yet. */
struct http_conn {
	struct http *h;
	struct MHD_Connection *c;
	bool waiting;		/* on h->waiting */
	ev_tstamp since;	/* accepted, or its previous answer sent */
	TAILQ_ENTRY(http_conn) entry;
};

struct http {
	struct ev_loop *loop;
	struct sched *sched;
	const struct history *history; /* NULL: none to show */
	struct MHD_Daemon *mhd;
	ev_io io;	/* MHD's epoll descriptor */
	ev_timer timer; /* MHD's next timeout, or the next header deadline */
	bool closed;	/* a connection closed during this MHD_run() */
	TAILQ_HEAD(, http_conn) waiting; /* by since, oldest first */
	/* this broker, the active one: who, since when, its fencing epoch */
	char *leader;
	int64_t leader_since_ms;
	int64_t leader_epoch;
	const struct peers *standbys; /* NULL: none known */
};

/* ---- writing into a buf (lib/buf.h) ------------------------------------- */

/* S with & < > " ' as character references (NULL: nothing). */
static void
buf_html(struct buf *b, const char *s)
{
	const char *run = s;

	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		const char *ref;

		switch (*s) {
		case '&':
			ref = "&amp;";
			break;
		case '<':
			ref = "&lt;";
			break;
		case '>':
			ref = "&gt;";
			break;
		case '"':
			ref = "&quot;";
			break;
		case '\'':
			ref = "&#39;";
			break;
		default:
			continue;
		}
		buf_add(b, run, (size_t)(s - run));
		buf_puts(b, ref);
		run = s + 1;
	}
	buf_puts(b, run);
}

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

/* ---- formatting ---------------------------------------------------------- */

/* A wall-clock time in ms as ISO 8601 UTC, "2019-07-30T19:12:22+00:00". */
static void
fmt_time(char *out, size_t len, int64_t wall_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (wall_ms <= 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, len, "-");
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

/* How long ago WALL_MS was, as "2d03h", "4h05m", "3m07s" or "12s". */
static void
fmt_age(char *out, size_t len, int64_t wall_ms)
{
	int64_t s = (now_wall_ms() - wall_ms) / 1000;

	if (wall_ms <= 0)
		snprintf(out, len, "-");
	else if (s < 0)
		snprintf(out, len, "0s");
	else if (s < 60)
		snprintf(out, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(out, len, "%lldm%02llds", (long long)(s / 60),
		    (long long)(s % 60));
	else if (s < 86400)
		snprintf(out, len, "%lldh%02lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else
		snprintf(out, len, "%lldd%02lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
}

/* The name of resource ID's hook log KIND, as resalloc names it. */
static void
fmt_log(char *out, size_t len, uint64_t id, const char *kind)
{
	snprintf(out, len, "%06llu_%s", (unsigned long long)id, kind);
}

/* ---- what the views say, copied out of their callbacks ------------------ */

struct pool_row {
	char *name;
	const struct conf_pool *conf; /* borrowed for the request only */
	struct sched_pool_view v;     /* its name and conf are not used */
};

struct pool_rows {
	struct pool_row *v;
	size_t n, cap;
};

static void
pools_collect_one(void *arg, const struct sched_pool_view *v)
{
	struct pool_rows *rows = arg;
	struct pool_row *r;

	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? rows->cap * 2 : 16;
		rows->v = xrealloc(rows->v, rows->cap * sizeof(*rows->v));
	}
	r = &rows->v[rows->n++];
	r->name = xstrdup(v->name);
	r->conf = v->conf;
	r->v = *v;
	r->v.name = NULL;
	r->v.conf = NULL;
}

static void
pools_collect(struct http *h, struct pool_rows *rows)
{
	memset(rows, 0, sizeof(*rows));
	sched_foreach_pool(h->sched, pools_collect_one, rows);
}

static void
pools_release(struct pool_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		free(rows->v[i].name);
	free(rows->v);
}

/* Waiting tickets only an on-demand start serves, for on-demand pools. */
static size_t
pool_ondemand_demand(const struct pool_row *r)
{
	return r->conf != NULL && r->conf->ntags_on_demand > 0 ? r->v.waiting
							       : 0;
}

/* ok / (ok + failed), or -1 when the pool never started anything. */
static double
pool_success_ratio(const struct sched_pool_view *v)
{
	uint64_t all = v->starts_ok + v->starts_failed;

	return all == 0 ? -1. : (double)v->starts_ok / (double)all;
}

/* One live resource, copied for pages that need it after the callback. */
struct resource_copy {
	bool found;
	uint64_t id, ticket_id;
	char *name, *pool, *state, *sandbox;
	int32_t id_in_pool, releases, check_failed;
	int64_t created_ms;
	char **tags;
	size_t ntags;
};

static void
resource_copy_fn(void *arg, const struct sched_resource_view *v)
{
	struct resource_copy *c = arg;
	size_t i;

	c->found = true;
	c->id = v->id;
	c->ticket_id = v->ticket_id;
	c->name = xstrdup(v->name);
	c->pool = xstrdup(v->pool);
	c->state = xstrdup(v->state);
	c->sandbox = v->sandbox ? xstrdup(v->sandbox) : NULL;
	c->id_in_pool = v->id_in_pool;
	c->releases = v->releases;
	c->check_failed = v->check_failed;
	c->created_ms = v->created_ms;
	c->tags = xcalloc(v->ntags + 1, sizeof(*c->tags));
	for (i = 0; i < v->ntags; i++)
		c->tags[i] = xstrdup(v->tags[i]);
	c->ntags = v->ntags;
}

static void
resource_copy_release(struct resource_copy *c)
{
	size_t i;

	free(c->name);
	free(c->pool);
	free(c->state);
	free(c->sandbox);
	for (i = 0; i < c->ntags; i++)
		free(c->tags[i]);
	free(c->tags);
}

/* ---- JSON ---------------------------------------------------------------- */

static json_object *
json_u64(uint64_t v)
{
	return json_object_new_uint64(v);
}


static json_object *
json_time(int64_t wall_ms)
{
	char t[40];

	if (wall_ms <= 0)
		return NULL;
	fmt_time(t, sizeof(t), wall_ms);
	return json_object_new_string(t);
}

static json_object *
json_pool(const struct pool_row *r)
{
	json_object *o = json_object_new_object();
	const struct sched_pool_view *v = &r->v;
	double ratio = pool_success_ratio(v);

	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(
	    o, "configured", json_object_new_boolean(r->conf != NULL));
	json_object_object_add(
	    o, "max", r->conf ? json_object_new_int64(r->conf->max) : NULL);
	json_object_object_add(o, "paused", json_object_new_boolean(v->paused));
	json_object_object_add(o, "starting", json_u64(v->starting));
	json_object_object_add(o, "free", json_u64(v->free));
	json_object_object_add(o, "released", json_u64(v->released));
	json_object_object_add(o, "taken", json_u64(v->taken));
	json_object_object_add(o, "releasing", json_u64(v->releasing));
	json_object_object_add(o, "deleting", json_u64(v->deleting));
	json_object_object_add(o, "waiting", json_u64(v->waiting));
	json_object_object_add(
	    o, "on_demand_demand", json_u64(pool_ondemand_demand(r)));
	json_object_object_add(o, "starts_ok", json_u64(v->starts_ok));
	json_object_object_add(o, "starts_failed", json_u64(v->starts_failed));
	json_object_object_add(o, "start_success_ratio",
	    ratio < 0 ? NULL : json_object_new_double(ratio));
	json_object_object_add(o, "start_seconds_avg",
	    json_object_new_double(v->start_ms_avg / 1000.));
	json_object_object_add(o, "last_start", json_time(v->last_start_ms));
	return o;
}

static json_object *
json_tags(const struct conf_tag *tags, size_t n)
{
	json_object *a = json_object_new_array();
	json_object *t;
	size_t i;

	for (i = 0; i < n; i++) {
		t = json_object_new_object();
		json_object_object_add(
		    t, "name", json_object_new_string(tags[i].name));
		json_object_object_add(
		    t, "priority", json_object_new_int64(tags[i].priority));
		json_object_array_add(a, t);
	}
	return a;
}

/* A pool's public settings: everything but commands and descriptions of
 * them. */
static json_object *
json_pool_settings(const struct conf_pool *c)
{
	json_object *o = json_object_new_object();
	json_object *cmds = json_object_new_array();
	json_object *counters = json_object_new_array();
	size_t i;

	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(
	    o, "description", json_str_or_null(c->description));
	json_object_object_add(o, "max", json_object_new_int64(c->max));
	json_object_object_add(
	    o, "max_starting", json_object_new_int64(c->max_starting));
	json_object_object_add(
	    o, "max_prealloc", json_object_new_int64(c->max_prealloc));
	json_object_object_add(
	    o, "start_delay", json_object_new_int64(c->start_delay));
	json_object_object_add(o, "tags", json_tags(c->tags, c->ntags));
	json_object_object_add(o, "tags_on_demand",
	    json_tags(c->tags_on_demand, c->ntags_on_demand));
	json_object_object_add(
	    o, "livecheck_period", json_object_new_int64(c->livecheck_period));
	json_object_object_add(o, "livecheck_attempts",
	    json_object_new_int64(c->livecheck_attempts));
	json_object_object_add(o, "reuse_opportunity_time",
	    json_object_new_int64(c->reuse_opportunity_time));
	json_object_object_add(
	    o, "reuse_max_count", json_object_new_int64(c->reuse_max_count));
	json_object_object_add(
	    o, "reuse_max_time", json_object_new_int64(c->reuse_max_time));
	json_object_object_add(
	    o, "name_pattern", json_str_or_null(c->name_pattern));
	for (i = 0; i < c->nnamed_counters; i++)
		json_object_array_add(
		    counters, json_object_new_string(c->named_counters[i]));
	json_object_object_add(o, "named_counters", counters);
	/* Which commands exist, never what they say. */
	if (!conf_pool_external(c)) {
		json_object_array_add(cmds, json_object_new_string("cmd_new"));
		json_object_array_add(cmds,
		    json_object_new_string("cmd_delete"));
	}
	json_object_object_add(o, "worker", json_str_or_null(c->worker));
	if (c->cmd_livecheck != NULL)
		json_object_array_add(
		    cmds, json_object_new_string("cmd_livecheck"));
	if (c->cmd_release != NULL)
		json_object_array_add(
		    cmds, json_object_new_string("cmd_release"));
	if (c->cmd_list != NULL)
		json_object_array_add(cmds, json_object_new_string("cmd_list"));
	json_object_object_add(o, "commands_configured", cmds);
	json_object_object_add(
	    o, "cmd_new_timeout", json_object_new_int64(c->cmd_new_timeout));
	json_object_object_add(o, "cmd_delete_timeout",
	    json_object_new_int64(c->cmd_delete_timeout));
	json_object_object_add(o, "cmd_livecheck_timeout",
	    json_object_new_int64(c->cmd_livecheck_timeout));
	json_object_object_add(o, "cmd_release_timeout",
	    json_object_new_int64(c->cmd_release_timeout));
	json_object_object_add(
	    o, "cmd_list_timeout", json_object_new_int64(c->cmd_list_timeout));
	json_object_object_add(
	    o, "cmd_list_period", json_object_new_int64(c->cmd_list_period));
	return o;
}

static json_object *
json_resource(const struct sched_resource_view *v)
{
	json_object *o = json_object_new_object();
	json_object *tags = json_object_new_array();
	char log[32];
	size_t i;

	json_object_object_add(o, "id", json_u64(v->id));
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "pool", json_object_new_string(v->pool));
	json_object_object_add(o, "state", json_object_new_string(v->state));
	json_object_object_add(
	    o, "ticket", v->ticket_id ? json_u64(v->ticket_id) : NULL);
	json_object_object_add(
	    o, "id_in_pool", json_object_new_int(v->id_in_pool));
	json_object_object_add(o, "created", json_time(v->created_ms));
	json_object_object_add(o, "age_seconds",
	    json_object_new_int64(v->created_ms > 0
				      ? (now_wall_ms() - v->created_ms) / 1000
				      : 0));
	json_object_object_add(o, "sandbox", json_str_or_null(v->sandbox));
	json_object_object_add(o, "releases", json_object_new_int(v->releases));
	json_object_object_add(
	    o, "livecheck_failures", json_object_new_int(v->check_failed));
	for (i = 0; i < v->ntags; i++)
		json_object_array_add(tags, json_object_new_string(v->tags[i]));
	json_object_object_add(o, "tags", tags);
	fmt_log(log, sizeof(log), v->id, "alloc");
	json_object_object_add(o, "log", json_object_new_string(log));
	return o;
}


/* A ticket of the API: the shared shape, plus when it was created. */
static json_object *
api_ticket(const struct sched_ticket_info *t)
{
	json_object *o = json_ticket(t, NULL);

	json_object_object_add(o, "created", json_time(t->created_ms));
	return o;
}

/* ---- responses ----------------------------------------------------------- */

/* Sends R (released here) with STATUS, CTYPE and the headers of every page. */
static enum MHD_Result
reply_response(struct MHD_Connection *c, unsigned status, const char *ctype,
    struct MHD_Response *r)
{
	enum MHD_Result ret;

	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	(void)MHD_add_response_header(
	    r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Sends B (taken over) as the response with STATUS and CTYPE. */
static enum MHD_Result
reply(
    struct MHD_Connection *c, unsigned status, const char *ctype, struct buf *b)
{
	struct MHD_Response *r;

	if (b->s == NULL)
		buf_puts(b, "");
	r = MHD_create_response_from_buffer(
	    b->len, b->s, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(b->s);
		return MHD_NO;
	}
	b->s = NULL;
	return reply_response(c, status, ctype, r);
}

/* Sends OBJ (released here) as JSON. */
static enum MHD_Result
reply_json(struct MHD_Connection *c, unsigned status, json_object *obj)
{
	struct buf b = {NULL, 0, 0};

	buf_puts(
	    &b, json_object_to_json_string_ext(obj,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_puts(&b, "\n");
	json_object_put(obj);
	return reply(c, status, CT_JSON, &b);
}

static enum MHD_Result
reply_json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return reply_json(c, status, o);
}

static void
html_head(struct buf *b, const char *title)
{
	char now[40];

	fmt_time(now, sizeof(now), now_wall_ms());
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		    "<meta charset=\"utf-8\">\n<title>");
	buf_html(b, title);
	buf_puts(b,
	    "</title>\n<style>\n"
	    "body { font-family: sans-serif; margin: 1.5em; color: #222; }\n"
	    "table { border-collapse: collapse; margin-bottom: 1.5em; }\n"
	    "th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; "
	    "text-align: left; }\n"
	    "th { background: #e8ecf0; }\n"
	    "td.n { text-align: right; }\n"
	    "tr:nth-child(even) td { background: #f6f8fa; }\n"
	    ".muted { color: #777; }\n"
	    ".charts { display: flex; flex-wrap: wrap; gap: 1em; "
	    "margin-bottom: 1.5em; }\n"
	    "figure.chart { margin: 0; }\n"
	    "figure.chart figcaption { font-weight: bold; "
	    "margin-bottom: 0.2em; }\n"
	    "ul.legend { list-style: none; padding: 0; margin: 0.2em 0; "
	    "max-width: 480px; font-size: 0.85em; }\n"
	    "ul.legend li { display: inline-block; margin-right: 1em; }\n"
	    ".swatch { display: inline-block; width: 0.8em; height: 0.8em; "
	    "margin-right: 0.3em; }\n"
	    "</style>\n</head>\n<body>\n<h1>");
	buf_html(b, title);
	buf_puts(b, "</h1>\n<p class=\"muted\">resbusd, ");
	buf_html(b, now);
	buf_puts(b, " &middot; <a href=\"/\">status</a> &middot; "
		    "<a href=\"/api/v1/pools\">JSON API</a> &middot; "
		    "<a href=\"/metrics\">metrics</a></p>\n");
}

static void
html_tail(struct buf *b)
{
	buf_puts(b, "</body>\n</html>\n");
}

static enum MHD_Result
reply_html_error(struct MHD_Connection *c, unsigned status, const char *title,
    const char *msg)
{
	struct buf b = {NULL, 0, 0};

	html_head(&b, title);
	buf_puts(&b, "<p>");
	buf_html(&b, msg);
	buf_puts(&b, "</p>\n");
	html_tail(&b);
	return reply(c, status, CT_HTML, &b);
}

/* ---- "/" ----------------------------------------------------------------- */

static void
html_num(struct buf *b, uint64_t v)
{
	buf_printf(b, "<td class=\"n\">%llu</td>", (unsigned long long)v);
}

static void
html_pools(struct buf *b, const struct pool_rows *rows)
{
	const struct pool_row *r;
	size_t i;

	buf_puts(b, "<h2>Pools</h2>\n<table id=\"pools\">\n<thead><tr>"
		    "<th>pool</th><th>max</th><th>free</th><th>starting</th>"
		    "<th>taken</th><th>released</th><th>releasing</th>"
		    "<th>deleting</th><th>waiting</th><th>on-demand demand</th>"
		    "<th>paused</th></tr></thead>\n<tbody>\n");
	for (i = 0; i < rows->n; i++) {
		r = &rows->v[i];
		buf_puts(b, "<tr><td>");
		buf_html(b, r->name);
		if (r->conf == NULL)
			buf_puts(b, " <span class=\"muted\">(not configured)"
				    "</span>");
		buf_puts(b, "</td>");
		if (r->conf != NULL)
			buf_printf(b, "<td class=\"n\">%lld</td>",
			    (long long)r->conf->max);
		else
			buf_puts(b, "<td class=\"n\">-</td>");
		html_num(b, r->v.free);
		html_num(b, r->v.starting);
		html_num(b, r->v.taken);
		html_num(b, r->v.released);
		html_num(b, r->v.releasing);
		html_num(b, r->v.deleting);
		html_num(b, r->v.waiting);
		html_num(b, pool_ondemand_demand(r));
		buf_printf(b, "<td>%s</td></tr>\n", r->v.paused ? "yes" : "no");
	}
	if (rows->n == 0)
		buf_puts(b, "<tr><td colspan=\"11\" class=\"muted\">no pools"
			    "</td></tr>\n");
	buf_puts(b, "</tbody>\n</table>\n");
}

struct html_ctx {
	struct buf *b;
	size_t n;
	uint64_t last; /* the ID of the last row */
};

static void
html_resource_row(void *arg, const struct sched_resource_view *v)
{
	struct html_ctx *hc = arg;
	struct buf *b = hc->b;
	char age[32], log[32];

	fmt_age(age, sizeof(age), v->created_ms);
	fmt_log(log, sizeof(log), v->id, "alloc");
	buf_printf(b,
	    "<tr><td class=\"n\">%llu</td><td><a href=\"/resources/"
	    "%llu\">",
	    (unsigned long long)v->id, (unsigned long long)v->id);
	buf_html(b, v->name);
	buf_puts(b, "</a></td><td>");
	buf_html(b, v->pool);
	buf_puts(b, "</td><td>");
	buf_html(b, v->state);
	buf_puts(b, "</td><td class=\"n\">");
	if (v->ticket_id != 0)
		buf_printf(b, "%llu", (unsigned long long)v->ticket_id);
	buf_puts(b, "</td><td>");
	buf_html(b, age);
	buf_puts(b, "</td><td><code>");
	buf_html(b, log);
	buf_puts(b, "</code></td></tr>\n");
	hc->n++;
	hc->last = v->id;
}

static void
html_ticket_row(void *arg, const struct sched_ticket_info *t)
{
	struct html_ctx *hc = arg;
	struct buf *b = hc->b;
	char age[32];

	hc->n++;
	hc->last = t->id;
	fmt_age(age, sizeof(age), t->created_ms);
	buf_printf(
	    b, "<tr><td class=\"n\">%llu</td><td>", (unsigned long long)t->id);
	buf_html(b, t->state);
	buf_puts(b, "</td><td>");
	buf_html(b, t->tags);
	buf_puts(b, "</td><td>");
	buf_html(b, t->sandbox);
	buf_puts(b, "</td><td>");
	buf_html(b, t->owner);
	if (t->delegate != NULL) {
		buf_puts(b, " (by ");
		buf_html(b, t->delegate);
		buf_puts(b, ")");
	}
	buf_puts(b, "</td><td>");
	if (t->resource_id != 0) {
		buf_printf(b, "<a href=\"/resources/%llu\">",
		    (unsigned long long)t->resource_id);
		if (t->resource_name != NULL)
			buf_html(b, t->resource_name);
		else
			buf_printf(
			    b, "%llu", (unsigned long long)t->resource_id);
		buf_puts(b, "</a>");
	}
	buf_puts(b, "</td><td>");
	buf_html(b, age);
	buf_puts(b, "</td><td>");
	buf_html(b, t->waiting_reason);
	buf_puts(b, "</td></tr>\n");
}

static void
html_resource_none(void *arg, const struct sched_resource_view *v)
{
}

/*
 * The first HTTP_HTML_ROWS live resources and open tickets, by ID, and a
 * link to the API's next page for the rest: the page costs the same with
 * 100 tickets or 100,000.
 */
/* The standby brokers heard, one line. */
static void
html_standbys(struct buf *b, const struct peers *p)
{
	char since[40];
	size_t i;

	if (p == NULL || p->n == 0) {
		buf_puts(b, "<p>Standby brokers: none heard.</p>\n");
		return;
	}
	buf_puts(b, "<p>Standby brokers: ");
	for (i = 0; i < p->n; i++) {
		fmt_time(since, sizeof(since), p->peer[i].since_ms);
		if (i > 0)
			buf_puts(b, "; ");
		buf_html(b, p->peer[i].who);
		buf_puts(b, ", waiting since ");
		buf_html(b, since);
	}
	buf_puts(b, ".</p>\n");
}

static enum MHD_Result
page_index(struct http *h, struct MHD_Connection *c, const char *rest)
{
	struct buf b = {NULL, 0, 0};
	struct pool_rows rows;
	struct html_ctx hc;
	size_t open, ready, failed;
	const char *all;

	all = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "all");
	html_head(&b, "resbus status");
	if (h->leader != NULL) {
		char since[40];

		fmt_time(since, sizeof(since), h->leader_since_ms);
		buf_puts(&b, "<p>Active broker: ");
		buf_html(&b, h->leader);
		buf_puts(&b, ", since ");
		buf_html(&b, since);
		buf_printf(&b, " (epoch %lld).</p>\n",
		    (long long)h->leader_epoch);
		html_standbys(&b, h->standbys);
	}
	pools_collect(h, &rows);
	html_pools(&b, &rows);
	pools_release(&rows);
	if (h->history != NULL) {
		char *hist = histview_html(h->history);

		buf_puts(&b, hist);
		free(hist);
	}

	buf_puts(&b, "<h2>Resources</h2>\n");
	if (all != NULL && strcmp(all, "0") != 0)
		buf_puts(&b,
		    "<p class=\"muted\">Ended resources are not kept "
		    "in the broker's memory; their rows stay in the store.</p>"
		    "\n");
	buf_puts(&b, "<table id=\"resources\">\n<thead><tr><th>ID</th>"
		     "<th>name</th><th>pool</th><th>state</th><th>ticket</th>"
		     "<th>age</th><th>log</th></tr></thead>\n<tbody>\n");
	memset(&hc, 0, sizeof(hc));
	hc.b = &b;
	(void)sched_foreach_resource_from(
	    h->sched, 0, HTTP_HTML_ROWS, html_resource_row, &hc);
	if (hc.n == 0)
		buf_puts(&b, "<tr><td colspan=\"7\" class=\"muted\">no live "
			     "resources</td></tr>\n");
	buf_puts(&b, "</tbody>\n</table>\n");
	if (hc.n == HTTP_HTML_ROWS &&
	    sched_foreach_resource_from(
		h->sched, hc.last, 1, html_resource_none, NULL) > 0)
		buf_printf(&b,
		    "<p>More resources: see <a href=\"/api/v1/resources?"
		    "after=%llu\">/api/v1/resources?after=%llu</a>.</p>\n",
		    (unsigned long long)hc.last, (unsigned long long)hc.last);

	buf_puts(&b,
	    "<h2>Tickets</h2>\n<table id=\"tickets\">\n<thead><tr>"
	    "<th>ID</th><th>state</th><th>tags</th><th>sandbox</th>"
	    "<th>owner</th><th>resource</th><th>age</th><th>waiting because</th></tr>"
	    "</thead>\n<tbody>\n");
	memset(&hc, 0, sizeof(hc));
	hc.b = &b;
	(void)sched_foreach_ticket_from(
	    h->sched, 0, HTTP_HTML_ROWS, html_ticket_row, &hc);
	if (hc.n == 0)
		buf_puts(&b, "<tr><td colspan=\"7\" class=\"muted\">no open "
			     "tickets</td></tr>\n");
	buf_puts(&b, "</tbody>\n</table>\n");
	/* Counted as tickets come and go: the page does not walk them. */
	sched_ticket_counts(h->sched, &open, &ready, &failed);
	if (open + ready + failed > hc.n)
		buf_printf(&b,
		    "<p>%zu more tickets: see <a href=\"/api/v1/tickets?"
		    "after=%llu\">/api/v1/tickets?after=%llu</a>.</p>\n",
		    open + ready + failed - hc.n, (unsigned long long)hc.last,
		    (unsigned long long)hc.last);
	html_tail(&b);
	return reply(c, MHD_HTTP_OK, CT_HTML, &b);
}

/* ---- "/resources/<id>" --------------------------------------------------- */

/* Finds live resource ID (from the text REST) and its pool's settings. */
static bool
resource_lookup(struct http *h, const char *rest, struct resource_copy *rc,
    const struct conf_pool **conf)
{
	struct pool_rows rows;
	uint64_t id;
	size_t i;

	memset(rc, 0, sizeof(*rc));
	*conf = NULL;
	if (parse_u64(rest, &id) == -1 || id == 0)
		return false;
	if (sched_resource_find(h->sched, id, NULL, resource_copy_fn, rc) != 1)
		return false;
	pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		if (strcmp(rows.v[i].name, rc->pool) == 0)
			*conf = rows.v[i].conf;
	pools_release(&rows);
	return true;
}

static void
html_row(struct buf *b, const char *key, const char *value)
{
	buf_puts(b, "<tr><th>");
	buf_html(b, key);
	buf_puts(b, "</th><td>");
	buf_html(b, value);
	buf_puts(b, "</td></tr>\n");
}

static void
html_row_int(struct buf *b, const char *key, long long value)
{
	char v[32];

	snprintf(v, sizeof(v), "%lld", value);
	html_row(b, key, v);
}

static void
html_tags(struct buf *b, const char *key, const struct conf_tag *tags, size_t n)
{
	size_t i;

	buf_puts(b, "<tr><th>");
	buf_html(b, key);
	buf_puts(b, "</th><td>");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(b, ", ");
		buf_html(b, tags[i].name);
		buf_printf(b, " (priority %lld)", (long long)tags[i].priority);
	}
	buf_puts(b, "</td></tr>\n");
}

static void
html_pool_settings(struct buf *b, const struct conf_pool *c)
{
	struct buf cmds = {NULL, 0, 0};
	size_t i;

	buf_puts(b, "<h2>Pool ");
	buf_html(b, c->name);
	buf_puts(b, "</h2>\n<table id=\"pool-settings\">\n");
	if (c->description != NULL)
		html_row(b, "description", c->description);
	html_row_int(b, "max", c->max);
	html_row_int(b, "max_starting", c->max_starting);
	html_row_int(b, "max_prealloc", c->max_prealloc);
	html_row_int(b, "start_delay", c->start_delay);
	html_tags(b, "tags", c->tags, c->ntags);
	html_tags(b, "tags_on_demand", c->tags_on_demand, c->ntags_on_demand);
	html_row_int(b, "livecheck_period", c->livecheck_period);
	html_row_int(b, "livecheck_attempts", c->livecheck_attempts);
	html_row_int(b, "reuse_opportunity_time", c->reuse_opportunity_time);
	html_row_int(b, "reuse_max_count", c->reuse_max_count);
	html_row_int(b, "reuse_max_time", c->reuse_max_time);
	html_row(b, "name_pattern", c->name_pattern);
	for (i = 0; i < c->nnamed_counters; i++) {
		if (i > 0)
			buf_puts(&cmds, ", ");
		buf_puts(&cmds, c->named_counters[i]);
	}
	html_row(b, "named_counters", cmds.s ? cmds.s : "");
	free(cmds.s);
	memset(&cmds, 0, sizeof(cmds));
	/* Which commands exist, never what they say. */
	buf_puts(&cmds, conf_pool_external(c) ? "(worker: external)" :
	    "cmd_new, cmd_delete");
	if (c->cmd_livecheck != NULL)
		buf_puts(&cmds, ", cmd_livecheck");
	if (c->cmd_release != NULL)
		buf_puts(&cmds, ", cmd_release");
	if (c->cmd_list != NULL)
		buf_puts(&cmds, ", cmd_list");
	html_row(b, "commands configured", cmds.s);
	free(cmds.s);
	html_row_int(b, "cmd_new_timeout", c->cmd_new_timeout);
	html_row_int(b, "cmd_delete_timeout", c->cmd_delete_timeout);
	html_row_int(b, "cmd_livecheck_timeout", c->cmd_livecheck_timeout);
	html_row_int(b, "cmd_release_timeout", c->cmd_release_timeout);
	html_row_int(b, "cmd_list_timeout", c->cmd_list_timeout);
	html_row_int(b, "cmd_list_period", c->cmd_list_period);
	buf_puts(b, "</table>\n");
}

static enum MHD_Result
page_resource(struct http *h, struct MHD_Connection *c, const char *rest)
{
	struct buf b = {NULL, 0, 0};
	const struct conf_pool *conf;
	struct resource_copy rc;
	char title[300], v[64], log[32];
	static const char *const kinds[] = {
	    "alloc", "watch", "release", "terminate"};
	size_t i;

	if (!resource_lookup(h, rest, &rc, &conf)) {
		resource_copy_release(&rc);
		return reply_html_error(c, MHD_HTTP_NOT_FOUND,
		    "no such resource",
		    "No live resource has this ID: it "
		    "never existed, or it has ended.");
	}
	snprintf(title, sizeof(title), "resource %llu %s",
	    (unsigned long long)rc.id, rc.name);
	html_head(&b, title);
	buf_puts(&b, "<table id=\"resource\">\n");
	html_row_int(&b, "ID", (long long)rc.id);
	html_row(&b, "name", rc.name);
	html_row(&b, "pool", rc.pool);
	html_row(&b, "state", rc.state);
	if (rc.ticket_id != 0)
		snprintf(
		    v, sizeof(v), "%llu", (unsigned long long)rc.ticket_id);
	else
		snprintf(v, sizeof(v), "none");
	html_row(&b, "ticket", v);
	html_row_int(&b, "id_in_pool", rc.id_in_pool);
	fmt_time(v, sizeof(v), rc.created_ms);
	html_row(&b, "created", v);
	fmt_age(v, sizeof(v), rc.created_ms);
	html_row(&b, "age", v);
	html_row(&b, "sandbox", rc.sandbox ? rc.sandbox : "");
	html_row_int(&b, "releases", rc.releases);
	html_row_int(&b, "livecheck failures", rc.check_failed);
	buf_puts(&b, "<tr><th>tags</th><td>");
	for (i = 0; i < rc.ntags; i++) {
		if (i > 0)
			buf_puts(&b, ", ");
		buf_html(&b, rc.tags[i]);
	}
	buf_puts(&b, "</td></tr>\n<tr><th>hook logs</th><td>");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		fmt_log(log, sizeof(log), rc.id, kinds[i]);
		buf_printf(&b, "%s<code>hooks/%s</code>", i ? ", " : "", log);
	}
	buf_puts(&b, "</td></tr>\n</table>\n");
	if (conf != NULL)
		html_pool_settings(&b, conf);
	else
		buf_puts(&b, "<p>Its pool is no longer configured.</p>\n");
	html_tail(&b);
	resource_copy_release(&rc);
	return reply(c, MHD_HTTP_OK, CT_HTML, &b);
}

/* ---- /api/v1 ----------------------------------------------------------- */

static enum MHD_Result
api_pools(struct http *h, struct MHD_Connection *c, const char *rest)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();
	struct pool_rows rows;
	size_t i;

	pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		json_object_array_add(a, json_pool(&rows.v[i]));
	pools_release(&rows);
	json_object_object_add(o, "pools", a);
	return reply_json(c, MHD_HTTP_OK, o);
}

/*
 * The lists of the API, /api/v1/resources and /api/v1/tickets, are pages
 * of at most HTTP_LIST_MAX items from ?after=ID (exclusive) with a "next"
 * cursor, and a page is written while its client reads it: MHD asks for
 * up to HTTP_BLOCK_BYTES at a time, and each ask reads the next batches
 * from the scheduler, from the ID after the last one written.  So the
 * loop never spends more than one block's worth of items on a client
 * between two messages, and a slow client pins one block, not a page.
 * Items that come or go while a page is written are seen or not, as by
 * a later page; IDs only grow, so none is written twice.
 */
enum list_kind {
	LIST_RESOURCES,
	LIST_TICKETS
};

enum list_stage {
	LIST_HEAD,
	LIST_ITEMS,
	LIST_TAIL,
	LIST_DONE
};

struct http_list {
	struct http *h;
	enum list_kind kind;
	enum list_stage stage;
	uint64_t after;	/* the last ID written (at first, ?after=) */
	size_t left;	/* items still to write */
	size_t n;	/* items written */
	bool more;	/* items follow the page: "next" is AFTER */
	struct buf out; /* written, not yet handed to MHD from OFF on */
	size_t off;
};

static void
list_json(struct http_list *l, json_object *o, uint64_t id)
{
	if (l->n++ > 0)
		buf_puts(&l->out, ",");
	buf_puts(&l->out, json_object_to_json_string_ext(o,
			      JSON_C_TO_STRING_PLAIN |
				  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	l->after = id;
}

static void
list_resource(void *arg, const struct sched_resource_view *v)
{
	list_json(arg, json_resource(v), v->id);
}

static void
list_ticket(void *arg, const struct sched_ticket_info *t)
{
	list_json(arg, api_ticket(t), t->id);
}

static void
list_none_resource(void *arg, const struct sched_resource_view *v)
{
}

static void
list_none_ticket(void *arg, const struct sched_ticket_info *t)
{
}

/* Up to N items after l->after through FN (list_* above): how many. */
static size_t
list_from(struct http_list *l, size_t n, bool write)
{
	int got;

	if (l->kind == LIST_TICKETS)
		got = sched_foreach_ticket_from(l->h->sched, l->after, n,
		    write ? list_ticket : list_none_ticket, l);
	else
		got = sched_foreach_resource_from(l->h->sched, l->after, n,
		    write ? list_resource : list_none_resource, l);
	return got > 0 ? (size_t)got : 0;
}

/* Writes the next part of the page into l->out. */
static void
list_fill(struct http_list *l)
{
	size_t batch, got;

	switch (l->stage) {
	case LIST_HEAD:
		buf_puts(&l->out, l->kind == LIST_TICKETS ? "{\"tickets\":["
							  : "{\"resources\":[");
		l->stage = LIST_ITEMS;
		break;
	case LIST_ITEMS:
		batch = l->left < HTTP_LIST_BATCH ? l->left : HTTP_LIST_BATCH;
		got = list_from(l, batch, true);
		l->left -= got;
		if (got < batch) {
			l->stage = LIST_TAIL;
		} else if (l->left == 0) {
			/* A full page: "next" only if something follows. */
			l->more = list_from(l, 1, false) > 0;
			l->stage = LIST_TAIL;
		}
		break;
	case LIST_TAIL:
		if (l->more)
			buf_printf(&l->out, "],\"next\":%llu}\n",
			    (unsigned long long)l->after);
		else
			buf_puts(&l->out, "],\"next\":null}\n");
		l->stage = LIST_DONE;
		break;
	case LIST_DONE:
		break;
	}
}

/* MHD's content reader: up to MAX bytes of the page into TO. */
static ssize_t
list_read(void *cls, uint64_t pos, char *to, size_t max)
{
	struct http_list *l = cls;
	size_t n;

	if (l->off > 0) {
		memmove(l->out.s, l->out.s + l->off, l->out.len - l->off);
		l->out.len -= l->off;
		l->off = 0;
	}
	while (l->out.len < max && l->stage != LIST_DONE)
		list_fill(l);
	n = l->out.len < max ? l->out.len : max;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	memcpy(to, l->out.s, n);
	l->off = n;
	return (ssize_t)n;
}

static void
list_free(void *cls)
{
	struct http_list *l = cls;

	free(l->out.s);
	free(l);
}

/*
 * ?after=ID&limit=N of the request into *AFTER and *LIMIT: -1 with a
 * message in ERR when one is not a number or N is 0.  N is at most
 * HTTP_LIST_MAX (more is taken as that), HTTP_LIST_LIMIT if absent.
 */
static int
list_args(struct MHD_Connection *c, uint64_t *after, size_t *limit,
    const char **err)
{
	const char *a, *n;
	uint64_t v;

	*after = 0;
	*limit = HTTP_LIST_LIMIT;
	a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	if (a != NULL && parse_u64(a, after) == -1) {
		*err = "after: expected an ID";
		return -1;
	}
	if (n != NULL) {
		if (parse_u64(n, &v) == -1 || v == 0) {
			*err = "limit: expected a number from 1 to 1000";
			return -1;
		}
		*limit = v > HTTP_LIST_MAX ? HTTP_LIST_MAX : (size_t)v;
	}
	return 0;
}

static enum MHD_Result
api_list(struct http *h, struct MHD_Connection *c, enum list_kind kind)
{
	struct MHD_Response *r;
	struct http_list *l;
	const char *err;
	uint64_t after;
	size_t limit;

	if (list_args(c, &after, &limit, &err) == -1)
		return reply_json_error(c, MHD_HTTP_BAD_REQUEST, err);
	l = xcalloc(1, sizeof(*l));
	l->h = h;
	l->kind = kind;
	l->after = after;
	l->left = limit;
	r = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, HTTP_BLOCK_BYTES, list_read, l, list_free);
	if (r == NULL) {
		list_free(l);
		return MHD_NO;
	}
	return reply_response(c, MHD_HTTP_OK, CT_JSON, r);
}

static enum MHD_Result
api_resources(struct http *h, struct MHD_Connection *c, const char *rest)
{
	return api_list(h, c, LIST_RESOURCES);
}

static void
api_resource_one(void *arg, const struct sched_resource_view *v)
{
	*(json_object **)arg = json_resource(v);
}

static enum MHD_Result
api_resource(struct http *h, struct MHD_Connection *c, const char *rest)
{
	json_object *o, *res = NULL;
	struct pool_rows rows;
	uint64_t id;
	size_t i;

	if (parse_u64(rest, &id) == -1 || id == 0 ||
	    sched_resource_find(h->sched, id, NULL, api_resource_one, &res) !=
		1)
		return reply_json_error(
		    c, MHD_HTTP_NOT_FOUND, "no live resource with this ID");
	o = json_object_new_object();
	json_object_object_add(o, "resource", res);
	pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		if (rows.v[i].conf != NULL &&
		    strcmp(rows.v[i].name,
			json_object_get_string(
			    json_object_object_get(res, "pool"))) == 0)
			json_object_object_add(
			    o, "pool", json_pool_settings(rows.v[i].conf));
	pools_release(&rows);
	if (!json_object_object_get_ex(o, "pool", NULL))
		json_object_object_add(o, "pool", NULL);
	return reply_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result
api_tickets(struct http *h, struct MHD_Connection *c, const char *rest)
{
	return api_list(h, c, LIST_TICKETS);
}

/* The samples of the last hours (histview.c), bounded by HISTORY_SAMPLES. */
static enum MHD_Result
api_history(struct http *h, struct MHD_Connection *c, const char *rest)
{
	if (h->history == NULL)
		return reply_json_error(
		    c, MHD_HTTP_NOT_FOUND, "no history is kept");
	return reply_json(c, MHD_HTTP_OK, histview_json(h->history));
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

static enum MHD_Result
page_metrics(struct http *h, struct MHD_Connection *c, const char *rest)
{
	static const char *const states[] = {
	    "starting", "free", "released", "taken", "releasing", "deleting"};
	struct buf b = {NULL, 0, 0};
	size_t open, ready, failed;
	struct pool_rows rows;
	const struct sched_pool_view *v;
	size_t i, j;
	double ratio, counts[6];
	char le[32];
	int64_t now_ms;
	double age_s;

	/* Counted as tickets come and go: a scrape does not walk them. */
	sched_ticket_counts(h->sched, &open, &ready, &failed);
	pools_collect(h, &rows);

	/* Only the active broker serves this page: a standby has none. */
	metric_head(&b, "resbus_broker_active", "gauge",
	    "1: this resbusd is the active broker.");
	buf_printf(&b, "resbus_broker_active 1\n");
	metric_head(&b, "resbus_broker_active_since_seconds", "gauge",
	    "When this resbusd became the active broker (Unix time).");
	buf_printf(&b, "resbus_broker_active_since_seconds %.3f\n",
	    (double)h->leader_since_ms / 1000.);
	metric_head(&b, "resbus_broker_leader_epoch", "gauge",
	    "The fencing epoch of the active broker (0 on SQLite).");
	buf_printf(&b, "resbus_broker_leader_epoch %lld\n",
	    (long long)h->leader_epoch);
	metric_head(&b, "resbus_broker_standbys", "gauge",
	    "Standby brokers heard in the last few seconds.");
	buf_printf(&b, "resbus_broker_standbys %zu\n",
	    h->standbys != NULL ? h->standbys->n : 0);

	metric_head(&b, "resbus_tickets", "gauge",
	    "Tickets the broker holds, by state.");
	buf_printf(&b, "resbus_tickets{state=\"open\"} %zu\n", open);
	buf_printf(&b, "resbus_tickets{state=\"ready\"} %zu\n", ready);
	buf_printf(&b, "resbus_tickets{state=\"failed\"} %zu\n", failed);

	metric_head(&b, "resbus_resources", "gauge",
	    "Live resources, by pool and state.");
	for (i = 0; i < rows.n; i++) {
		v = &rows.v[i].v;
		counts[0] = (double)v->starting;
		counts[1] = (double)v->free;
		counts[2] = (double)v->released;
		counts[3] = (double)v->taken;
		counts[4] = (double)v->releasing;
		counts[5] = (double)v->deleting;
		for (j = 0; j < 6; j++)
			metric_pool(&b, "resbus_resources", rows.v[i].name,
			    "state", states[j], counts[j]);
	}

	metric_head(&b, "resbus_pool_max", "gauge",
	    "A pool's max (configured pools only).");
	for (i = 0; i < rows.n; i++)
		if (rows.v[i].conf != NULL)
			metric_pool(&b, "resbus_pool_max", rows.v[i].name, NULL,
			    NULL, (double)rows.v[i].conf->max);

	metric_head(&b, "resbus_pool_paused", "gauge",
	    "1 if an operator paused or drained the pool.");
	for (i = 0; i < rows.n; i++)
		metric_pool(&b, "resbus_pool_paused", rows.v[i].name, NULL,
		    NULL, rows.v[i].v.paused ? 1. : 0.);

	metric_head(&b, "resbus_pool_starts_total", "counter",
	    "Finished resource starts (cmd_new), by result, since resbusd "
	    "started.");
	for (i = 0; i < rows.n; i++) {
		metric_pool(&b, "resbus_pool_starts_total", rows.v[i].name,
		    "result", "ok", (double)rows.v[i].v.starts_ok);
		metric_pool(&b, "resbus_pool_starts_total", rows.v[i].name,
		    "result", "failed", (double)rows.v[i].v.starts_failed);
	}

	metric_head(&b, "resbus_pool_start_success_ratio", "gauge",
	    "Share of finished starts that succeeded (NaN before the "
	    "first).");
	for (i = 0; i < rows.n; i++) {
		ratio = pool_success_ratio(&rows.v[i].v);
		metric_pool(&b, "resbus_pool_start_success_ratio",
		    rows.v[i].name, NULL, NULL, ratio < 0 ? NAN : ratio);
	}

	metric_head(&b, "resbus_pool_start_seconds_avg", "gauge",
	    "Mean duration of successful starts, in seconds.");
	for (i = 0; i < rows.n; i++)
		metric_pool(&b, "resbus_pool_start_seconds_avg", rows.v[i].name,
		    NULL, NULL, rows.v[i].v.start_ms_avg / 1000.);

	metric_head(&b, "resbus_pool_start_seconds", "histogram",
	    "Durations of successful starts, in seconds.");
	for (i = 0; i < rows.n; i++) {
		v = &rows.v[i].v;
		for (j = 0; j < SCHED_START_BUCKETS; j++) {
			snprintf(le, sizeof(le), "%g", sched_start_bucket_s[j]);
			metric_pool(&b, "resbus_pool_start_seconds_bucket",
			    rows.v[i].name, "le", le, (double)v->start_le[j]);
		}
		metric_pool(&b, "resbus_pool_start_seconds_bucket",
		    rows.v[i].name, "le", "+Inf", (double)v->starts_ok);
		metric_pool(&b, "resbus_pool_start_seconds_sum", rows.v[i].name,
		    NULL, NULL, v->start_ms_sum / 1000.);
		metric_pool(&b, "resbus_pool_start_seconds_count",
		    rows.v[i].name, NULL, NULL, (double)v->starts_ok);
	}

	metric_head(&b, "resbus_tickets_waiting", "gauge",
	    "Open tickets waiting that the pool could serve.");
	for (i = 0; i < rows.n; i++)
		metric_pool(&b, "resbus_tickets_waiting", rows.v[i].name, NULL,
		    NULL, (double)rows.v[i].v.waiting);

	metric_head(&b, "resbus_tickets_waiting_age_seconds", "gauge",
	    "How long the oldest open ticket the pool could serve has "
	    "waited (0 if none).");
	now_ms = now_wall_ms();
	for (i = 0; i < rows.n; i++) {
		v = &rows.v[i].v;
		age_s = 0.;
		if (v->oldest_waiting_ms != 0 && v->oldest_waiting_ms < now_ms)
			age_s = (double)(now_ms - v->oldest_waiting_ms) / 1000.;
		metric_pool(&b, "resbus_tickets_waiting_age_seconds",
		    rows.v[i].name, NULL, NULL, age_s);
	}

	pools_release(&rows);
	return reply(c, MHD_HTTP_OK, CT_METRICS, &b);
}

/* ---- connections and their header deadline ---------------------------- */

/*
 * MHD's own connection timeout counts from the last byte that moved, so
 * a client that sends its request one byte every few seconds would hold
 * its connection for ever.  So each connection is on h->waiting from
 * its accept (or the end of its previous answer) until its request has
 * arrived whole (http_handler() sees it), and one still there after
 * HTTP_HEADER_TIMEOUT_S is shut down: MHD then reads the end of stream
 * on its next run and closes it in the ordinary way.
 */
static void
http_conn_wait(struct http_conn *hc, bool waiting)
{
	struct http *h = hc->h;

	if (hc->waiting)
		TAILQ_REMOVE(&h->waiting, hc, entry);
	hc->waiting = waiting;
	if (waiting) {
		hc->since = ev_now(h->loop);
		TAILQ_INSERT_TAIL(&h->waiting, hc, entry);
	}
}

static void
http_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	struct http_conn *hc;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		hc = xcalloc(1, sizeof(*hc));
		hc->h = h;
		hc->c = c;
		http_conn_wait(hc, true);
		*socket_context = hc;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	h->closed = true;
	hc = *socket_context;
	if (hc == NULL)
		return;
	http_conn_wait(hc, false);
	free(hc);
	*socket_context = NULL;
}

static struct http_conn *
http_conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info;

	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info != NULL ? info->socket_context : NULL;
}

/* An answer has been sent (or given up): the next request's clock starts. */
static void
http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_conn *hc = http_conn_of(c);

	if (hc != NULL)
		http_conn_wait(hc, true);
}

/* Shuts down every connection whose request is overdue. */
static void
http_headers_expire(struct http *h)
{
	const union MHD_ConnectionInfo *info;
	struct http_conn *hc;
	ev_tstamp now = ev_now(h->loop);

	while ((hc = TAILQ_FIRST(&h->waiting)) != NULL &&
	    hc->since + HTTP_HEADER_TIMEOUT_S <= now) {
		http_conn_wait(hc, false);
		info = MHD_get_connection_info(
		    hc->c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info == NULL)
			continue;
		log_info("http: no whole request within %.0f s: closing "
			 "the connection",
		    HTTP_HEADER_TIMEOUT_S);
		(void)shutdown(info->connect_fd, SHUT_RDWR);
	}
}

/* ---- dispatch ---------------------------------------------------------- */

typedef enum MHD_Result http_page_fn(
    struct http *, struct MHD_Connection *, const char *);

/* PATH matched exactly, or as a prefix with the rest a non-empty ID. */
static const struct route {
	const char *path;
	bool prefix;
	http_page_fn *fn;
} routes[] = {
    {"/", false, page_index},
    {"/index.html", false, page_index},
    {"/resources/", true, page_resource},
    {"/api/v1/pools", false, api_pools},
    {"/api/v1/resources", false, api_resources},
    {"/api/v1/resources/", true, api_resource},
    {"/api/v1/tickets", false, api_tickets},
    {"/api/v1/history", false, api_history},
    {"/metrics", false, page_metrics},
    {NULL, false, NULL},
};

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct http_conn *hc = http_conn_of(c);
	const struct route *r;
	size_t n;

	/* The request has arrived whole: its header deadline is met. */
	if (hc != NULL)
		http_conn_wait(hc, false);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		struct buf b = {NULL, 0, 0};

		buf_puts(&b, "only GET and HEAD\n");
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, CT_TEXT, &b);
	}
	for (r = routes; r->path != NULL; r++) {
		n = strlen(r->path);
		if (!r->prefix && strcmp(url, r->path) == 0)
			return r->fn(h, c, "");
		if (r->prefix && strncmp(url, r->path, n) == 0 &&
		    url[n] != '\0' && strchr(url + n, '/') == NULL)
			return r->fn(h, c, url + n);
	}
	if (strncmp(url, "/api/", 5) == 0)
		return reply_json_error(c, MHD_HTTP_NOT_FOUND, "no such path");
	return reply_html_error(
	    c, MHD_HTTP_NOT_FOUND, "not found", "There is no such page.");
}

/* ---- the loop ---------------------------------------------------------- */

/*
 * libmicrohttpd takes its listen socket out of its epoll set when it
 * holds HTTP_CONNECTION_LIMIT connections, and puts it back only at the
 * start of a later MHD_run(), once a connection has gone.  When the last
 * connections close, nothing is left to wake the loop for that later
 * run: the epoll descriptor has nothing in it and MHD_get_timeout() has
 * no connection to time out, so the server would never accept again.
 * So a run in which a connection closed is followed by another on the
 * next loop iteration (h->closed, set by http_notify()).  The same holds
 * after accept() failed for want of descriptors: MHD waits for a close.
 */
static void
http_arm(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct http_conn *hc;
	double after_s = -1., deadline_s;

	ev_timer_stop(h->loop, &h->timer);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		after_s = (double)ms / 1000.;
	if ((hc = TAILQ_FIRST(&h->waiting)) != NULL) {
		deadline_s = hc->since + HTTP_HEADER_TIMEOUT_S -
		    ev_now(h->loop) + 0.01;
		if (deadline_s < 0.)
			deadline_s = 0.;
		if (after_s < 0. || deadline_s < after_s)
			after_s = deadline_s;
	}
	if (h->closed)
		after_s = 0.;
	if (after_s >= 0.) {
		ev_timer_set(&h->timer, after_s, 0.);
		ev_timer_start(h->loop, &h->timer);
	}
}

static void
http_run(struct http *h)
{
	h->closed = false;
	if (MHD_run(h->mhd) == MHD_NO)
		log_warnx("http: MHD_run failed");
	http_headers_expire(h);
	http_arm(h);
}

static void
http_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	http_run(container_of(w, struct http, io));
}

static void
http_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	http_run(container_of(w, struct http, timer));
}

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warnx("http: %s", msg);
}

bool
http_listen_enabled(const char *listen)
{
	return listen != NULL && listen[0] != '\0' &&
	       strcmp(listen, "off") != 0;
}

/* Splits "HOST:PORT" / "[V6]:PORT" and resolves it; caller frees *ai. */
static int
http_resolve(const char *listen, struct addrinfo **ai)
{
	struct addrinfo hints;
	const char *colon = strrchr(listen, ':');
	char *host;
	int rc;

	if (colon == NULL || colon == listen) {
		log_warnx("http_listen %s: expected HOST:PORT", listen);
		return -1;
	}
	if (listen[0] == '[' && colon > listen + 1 && colon[-1] == ']')
		host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = xstrndup(listen, (size_t)(colon - listen));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, ai);
	if (rc != 0)
		log_warnx("http_listen %s: %s", listen, gai_strerror(rc));
	free(host);
	return rc == 0 ? 0 : -1;
}

struct http *
http_new(struct ev_loop *loop, const char *listen, struct sched *sched)
{
	const union MHD_DaemonInfo *info;
	struct addrinfo *ai;
	struct http *h;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (http_resolve(listen, &ai) == -1)
		return NULL;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->sched = sched;
	TAILQ_INIT(&h->waiting);
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, h, MHD_OPTION_SOCK_ADDR,
	    ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)HTTP_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_CONNECTION_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
	    MHD_OPTION_NOTIFY_CONNECTION, http_notify, h,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, h, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (h->mhd == NULL) {
		log_warnx("http_listen %s: cannot listen there", listen);
		free(h);
		return NULL;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0) {
		log_warnx("http: libmicrohttpd has no epoll descriptor");
		MHD_stop_daemon(h->mhd);
		free(h);
		return NULL;
	}
	ev_io_init(&h->io, http_readable, info->epoll_fd, EV_READ);
	ev_io_start(loop, &h->io);
	ev_timer_init(&h->timer, http_timeout, 0., 0.);
	http_arm(h);
	log_info("status page, JSON API and metrics on http://%s/", listen);
	return h;
}

void
http_set_standbys(struct http *h, const struct peers *standbys)
{
	if (h != NULL)
		h->standbys = standbys;
}

void
http_set_leader(struct http *h, const char *who, int64_t epoch,
    int64_t since_ms)
{
	if (h == NULL)
		return;
	free(h->leader);
	h->leader = xstrdup(who);
	h->leader_epoch = epoch;
	h->leader_since_ms = since_ms;
}

void
http_set_history(struct http *h, const struct history *history)
{
	if (h != NULL)
		h->history = history;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	ev_io_stop(h->loop, &h->io);
	ev_timer_stop(h->loop, &h->timer);
	MHD_stop_daemon(h->mhd);
	free(h->leader);
	free(h);
}
