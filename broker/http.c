/*
 * http -- resbusd's HTTP server: the libmicrohttpd glue on the loop
 * (listening, connections and their limits, routing, responses).  The
 * pages live beside it: the status pages in http_html.c, the JSON API in
 * http_api.c, the Prometheus metrics in http_metrics.c; http_priv.h is
 * what the four share.
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
 * history.h's caps on samples and series) are built whole from the scheduler's
 * read-only views and handed to MHD to send.  The API's lists are pages of at
 * most HTTP_LIST_MAX items after a cursor, written in batches while their
 * client reads them (http_api.c), so neither a poller nor a slow reader
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
#include "http.h"
#include "http_priv.h"
#include "log.h"
#include "mhdlog.h"
#include "sched.h"
#include "util.h"

/* A connection whose request has not arrived whole yet. */
struct http_conn {
	struct http *h;
	struct MHD_Connection *c;
	bool waiting;	 /* on h->waiting */
	ev_tstamp since; /* accepted, or its previous answer sent */
	TAILQ_ENTRY(http_conn) entry;
};

/* ---- formatting ---------------------------------------------------------- */

/* A wall-clock time in ms as ISO 8601 UTC, "2019-07-30T19:12:22+00:00". */
void
http_fmt_time(char *out, size_t len, int64_t wall_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (wall_ms <= 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, len, "-");
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

/* The name of resource ID's hook log KIND, as resalloc names it. */
void
http_fmt_log(char *out, size_t len, uint64_t id, const char *kind)
{
	snprintf(out, len, "%06llu_%s", (unsigned long long)id, kind);
}

/* ---- what the views say, copied out of their callbacks ------------------ */

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

void
http_pools_collect(struct http *h, struct pool_rows *rows)
{
	memset(rows, 0, sizeof(*rows));
	sched_foreach_pool(h->sched, pools_collect_one, rows);
}

void
http_pools_release(struct pool_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		free(rows->v[i].name);
	free(rows->v);
}

/* Waiting tickets only an on-demand start serves, for on-demand pools. */
size_t
http_pool_ondemand_demand(const struct pool_row *r)
{
	return r->conf != NULL && r->conf->ntags_on_demand > 0 ? r->v.waiting
							       : 0;
}

/* ok / (ok + failed), or -1 when the pool never started anything. */
double
http_pool_success_ratio(const struct sched_pool_view *v)
{
	uint64_t all = v->starts_ok + v->starts_failed;

	return all == 0 ? -1. : (double)v->starts_ok / (double)all;
}

/* ---- responses ----------------------------------------------------------- */

/* Sends R (released here) with STATUS, CTYPE and the headers of every page. */
enum MHD_Result
http_reply_response(struct MHD_Connection *c, unsigned status,
    const char *ctype, struct MHD_Response *r)
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
enum MHD_Result
http_reply(
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
	return http_reply_response(c, status, ctype, r);
}

/* Sends OBJ (released here) as JSON. */
enum MHD_Result
http_reply_json(struct MHD_Connection *c, unsigned status, json_object *obj)
{
	struct buf b = {NULL, 0, 0};

	buf_puts(
	    &b, json_object_to_json_string_ext(obj,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_puts(&b, "\n");
	json_object_put(obj);
	return http_reply(c, status, CT_JSON, &b);
}

enum MHD_Result
http_reply_json_error(
    struct MHD_Connection *c, unsigned status, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return http_reply_json(c, status, o);
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
    {"/", false, http_page_index},
    {"/index.html", false, http_page_index},
    {"/resources/", true, http_page_resource},
    {"/api/v1/pools", false, http_api_pools},
    {"/api/v1/resources", false, http_api_resources},
    {"/api/v1/resources/", true, http_api_resource},
    {"/api/v1/tickets", false, http_api_tickets},
    {"/api/v1/history", false, http_api_history},
    {"/metrics", false, http_page_metrics},
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
		return http_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, CT_TEXT, &b);
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
		return http_reply_json_error(
		    c, MHD_HTTP_NOT_FOUND, "no such path");
	return http_reply_html_error(
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
		deadline_s =
		    hc->since + HTTP_HEADER_TIMEOUT_S - ev_now(h->loop) + 0.01;
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
	    MHD_OPTION_EXTERNAL_LOGGER, mhdlog_write, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
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
http_set_leader(
    struct http *h, const char *who, int64_t epoch, int64_t since_ms)
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
