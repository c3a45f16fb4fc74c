/*
 * http_priv -- what the files of resbusd's HTTP server share beyond
 * http.h: the server's limits and content types, struct http, the pools
 * as copied out of the scheduler's view, the formatting of times and log
 * names, the responses, and the pages the router (http.c) calls.
 *
 * http.c is the libmicrohttpd glue on the loop (listening, connections,
 * limits, routing, responses); http_html.c the status pages;
 * http_api.c the JSON API; http_metrics.c the Prometheus metrics.  Only
 * these four include this header.
 */
#ifndef RESBUS_HTTP_PRIV_H
#define RESBUS_HTTP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

#include <ev.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "sched.h"

struct buf;
struct conf_pool;
struct history;
struct http_conn;
struct peers;

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
#define HTTP_BLOCK_BYTES (16 * 1024) /* asked of a list at a time */
#define HTTP_LIST_BATCH 32	     /* items read from sched at a time */
#define HTTP_LIST_LIMIT 100	     /* items per page by default */
#define HTTP_LIST_MAX 1000	     /* items per page at most */
#define HTTP_HTML_ROWS 100	     /* resources, tickets on "/" */

#define CT_HTML "text/html; charset=utf-8"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

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

/* ---- what the views say, copied out of their callbacks (http.c) -------- */

struct pool_row {
	char *name;
	const struct conf_pool *conf; /* borrowed for the request only */
	struct sched_pool_view v;     /* its name and conf are not used */
};

struct pool_rows {
	struct pool_row *v;
	size_t n, cap;
};

/* Copies the scheduler's pools into ROWS; free with http_pools_release(). */
void http_pools_collect(struct http *h, struct pool_rows *rows);
void http_pools_release(struct pool_rows *rows);
/* Waiting tickets only an on-demand start serves, for on-demand pools. */
size_t http_pool_ondemand_demand(const struct pool_row *r);
/* ok / (ok + failed), or -1 when the pool never started anything. */
double http_pool_success_ratio(const struct sched_pool_view *v);

/* ---- formatting (http.c) ------------------------------------------------ */

/* A wall-clock time in ms as ISO 8601 UTC, "2019-07-30T19:12:22+00:00". */
void http_fmt_time(char *out, size_t len, int64_t wall_ms);
/* The name of resource ID's hook log KIND, as resalloc names it. */
void http_fmt_log(char *out, size_t len, uint64_t id, const char *kind);

/* ---- responses (http.c; the HTML error page in http_html.c) ------------- */

/* Sends R (released here) with STATUS, CTYPE and the headers of every page. */
enum MHD_Result http_reply_response(struct MHD_Connection *c, unsigned status,
    const char *ctype, struct MHD_Response *r);
/* Sends B (taken over) as the response with STATUS and CTYPE. */
enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status,
    const char *ctype, struct buf *b);
/* Sends OBJ (released here) as JSON. */
enum MHD_Result http_reply_json(
    struct MHD_Connection *c, unsigned status, json_object *obj);
/* Sends {"error": MSG} with STATUS. */
enum MHD_Result http_reply_json_error(
    struct MHD_Connection *c, unsigned status, const char *msg);
/* Sends an HTML page TITLE saying MSG with STATUS. */
enum MHD_Result http_reply_html_error(struct MHD_Connection *c, unsigned status,
    const char *title, const char *msg);

/*
 * ---- the pages (http_html.c, http_api.c, http_metrics.c) ----------------
 *
 * Each answers C from H's views; REST is what follows a prefix route's
 * path (a resource's ID), "" for the others.
 */
enum MHD_Result http_page_index(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_page_resource(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_api_pools(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_api_resources(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_api_resource(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_api_tickets(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_api_history(
    struct http *h, struct MHD_Connection *c, const char *rest);
enum MHD_Result http_page_metrics(
    struct http *h, struct MHD_Connection *c, const char *rest);

#endif
