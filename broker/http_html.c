/*
 * http_html -- the status pages of resbusd's HTTP server: "/" (pools,
 * the history's charts, the first HTTP_HTML_ROWS live resources and open
 * tickets, the leader and its standbys) and "/resources/<id>" (one
 * resource and its pool's public settings), and the HTML error page.
 *
 * HTML is plain server-side markup with inline CSS, no JavaScript and no
 * external assets, and every string from tickets, resources or
 * configuration is escaped (buf_html()).  A pool's commands (cmd_new and
 * friends) are never shown, only whether they are configured: command
 * lines often carry tokens.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <microhttpd.h>

#include "buf.h"
#include "conf.h"
#include "histview.h"
#include "http_priv.h"
#include "peers.h"
#include "sched.h"
#include "util.h"

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

/* ---- formatting ---------------------------------------------------------- */

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

/* ---- what the views say, copied out of their callbacks ------------------ */

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

/* ---- the page around them ------------------------------------------------ */

static void
html_head(struct buf *b, const char *title)
{
	char now[40];

	http_fmt_time(now, sizeof(now), now_wall_ms());
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

enum MHD_Result
http_reply_html_error(struct MHD_Connection *c, unsigned status,
    const char *title, const char *msg)
{
	struct buf b = {NULL, 0, 0};

	html_head(&b, title);
	buf_puts(&b, "<p>");
	buf_html(&b, msg);
	buf_puts(&b, "</p>\n");
	html_tail(&b);
	return http_reply(c, status, CT_HTML, &b);
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
		html_num(b, http_pool_ondemand_demand(r));
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
	http_fmt_log(log, sizeof(log), v->id, "alloc");
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
		http_fmt_time(since, sizeof(since), p->peer[i].since_ms);
		if (i > 0)
			buf_puts(b, "; ");
		buf_html(b, p->peer[i].who);
		buf_puts(b, ", waiting since ");
		buf_html(b, since);
	}
	buf_puts(b, ".</p>\n");
}

enum MHD_Result
http_page_index(struct http *h, struct MHD_Connection *c, const char *rest)
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

		http_fmt_time(since, sizeof(since), h->leader_since_ms);
		buf_puts(&b, "<p>Active broker: ");
		buf_html(&b, h->leader);
		buf_puts(&b, ", since ");
		buf_html(&b, since);
		buf_printf(
		    &b, " (epoch %lld).</p>\n", (long long)h->leader_epoch);
		html_standbys(&b, h->standbys);
	}
	http_pools_collect(h, &rows);
	html_pools(&b, &rows);
	http_pools_release(&rows);
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
	return http_reply(c, MHD_HTTP_OK, CT_HTML, &b);
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
	http_pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		if (strcmp(rows.v[i].name, rc->pool) == 0)
			*conf = rows.v[i].conf;
	http_pools_release(&rows);
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
	buf_puts(&cmds, conf_pool_external(c) ? "(worker: external)"
					      : "cmd_new, cmd_delete");
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

enum MHD_Result
http_page_resource(struct http *h, struct MHD_Connection *c, const char *rest)
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
		return http_reply_html_error(c, MHD_HTTP_NOT_FOUND,
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
	http_fmt_time(v, sizeof(v), rc.created_ms);
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
		http_fmt_log(log, sizeof(log), rc.id, kinds[i]);
		buf_printf(&b, "%s<code>hooks/%s</code>", i ? ", " : "", log);
	}
	buf_puts(&b, "</td></tr>\n</table>\n");
	if (conf != NULL)
		html_pool_settings(&b, conf);
	else
		buf_puts(&b, "<p>Its pool is no longer configured.</p>\n");
	html_tail(&b);
	resource_copy_release(&rc);
	return http_reply(c, MHD_HTTP_OK, CT_HTML, &b);
}
