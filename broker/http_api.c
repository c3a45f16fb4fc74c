/*
 * http_api -- resbusd's JSON API under /api/v1: the pools with their
 * public settings, one resource, the history of the last hours, and the
 * lists of live resources and open tickets.
 *
 * Objects are built with json-c from the scheduler's read-only views.
 * The lists are pages of at most HTTP_LIST_MAX items after a cursor,
 * written in batches while their client reads them (list_read() below),
 * so neither a poller nor a slow reader makes the loop walk or hold
 * every ticket.  A pool's commands and their environment are never
 * given: they may carry tokens.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "buf.h"
#include "conf.h"
#include "histview.h"
#include "http_priv.h"
#include "json.h"
#include "sched.h"
#include "util.h"

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
	http_fmt_time(t, sizeof(t), wall_ms);
	return json_object_new_string(t);
}

static json_object *
json_pool(const struct pool_row *r)
{
	json_object *o = json_object_new_object();
	const struct sched_pool_view *v = &r->v;
	double ratio = http_pool_success_ratio(v);

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
	    o, "on_demand_demand", json_u64(http_pool_ondemand_demand(r)));
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
		json_object_array_add(
		    cmds, json_object_new_string("cmd_delete"));
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
	http_fmt_log(log, sizeof(log), v->id, "alloc");
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

/* ---- /api/v1 ----------------------------------------------------------- */

enum MHD_Result
http_api_pools(struct http *h, struct MHD_Connection *c, const char *rest)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();
	struct pool_rows rows;
	size_t i;

	http_pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		json_object_array_add(a, json_pool(&rows.v[i]));
	http_pools_release(&rows);
	json_object_object_add(o, "pools", a);
	return http_reply_json(c, MHD_HTTP_OK, o);
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
enum list_kind { LIST_RESOURCES, LIST_TICKETS };

enum list_stage { LIST_HEAD, LIST_ITEMS, LIST_TAIL, LIST_DONE };

struct http_list {
	struct http *h;
	enum list_kind kind;
	enum list_stage stage;
	uint64_t after; /* the last ID written (at first, ?after=) */
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
	buf_puts(&l->out,
	    json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
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
list_args(
    struct MHD_Connection *c, uint64_t *after, size_t *limit, const char **err)
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
		return http_reply_json_error(c, MHD_HTTP_BAD_REQUEST, err);
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
	return http_reply_response(c, MHD_HTTP_OK, CT_JSON, r);
}

enum MHD_Result
http_api_resources(struct http *h, struct MHD_Connection *c, const char *rest)
{
	return api_list(h, c, LIST_RESOURCES);
}

static void
api_resource_one(void *arg, const struct sched_resource_view *v)
{
	*(json_object **)arg = json_resource(v);
}

enum MHD_Result
http_api_resource(struct http *h, struct MHD_Connection *c, const char *rest)
{
	json_object *o, *res = NULL;
	struct pool_rows rows;
	uint64_t id;
	size_t i;

	if (parse_u64(rest, &id) == -1 || id == 0 ||
	    sched_resource_find(h->sched, id, NULL, api_resource_one, &res) !=
		1)
		return http_reply_json_error(
		    c, MHD_HTTP_NOT_FOUND, "no live resource with this ID");
	o = json_object_new_object();
	json_object_object_add(o, "resource", res);
	http_pools_collect(h, &rows);
	for (i = 0; i < rows.n; i++)
		if (rows.v[i].conf != NULL &&
		    strcmp(rows.v[i].name,
			json_object_get_string(
			    json_object_object_get(res, "pool"))) == 0)
			json_object_object_add(
			    o, "pool", json_pool_settings(rows.v[i].conf));
	http_pools_release(&rows);
	if (!json_object_object_get_ex(o, "pool", NULL))
		json_object_object_add(o, "pool", NULL);
	return http_reply_json(c, MHD_HTTP_OK, o);
}

enum MHD_Result
http_api_tickets(struct http *h, struct MHD_Connection *c, const char *rest)
{
	return api_list(h, c, LIST_TICKETS);
}

/* The samples of the last hours (histview.c), bounded by HISTORY_SAMPLES. */
enum MHD_Result
http_api_history(struct http *h, struct MHD_Connection *c, const char *rest)
{
	if (h->history == NULL)
		return http_reply_json_error(
		    c, MHD_HTTP_NOT_FOUND, "no history is kept");
	return http_reply_json(c, MHD_HTTP_OK, histview_json(h->history));
}
