/*
 * http -- resbusd's status page, JSON API and Prometheus metrics.
 *
 * libmicrohttpd runs without a thread of its own, inside the broker's one
 * libev loop: an ev_io watches its epoll descriptor and an ev_timer its
 * next timeout, and both call MHD_run().  Pages are read from the
 * scheduler's read-only views on the loop's thread, so nothing is shared
 * across threads; the API's lists are written a batch at a time while
 * their client reads them.
 *
 * What is served: "/" (pools, the first 100 resources and open tickets),
 * "/resources/<id>" (one resource and its pool's public settings),
 * "/api/v1/pools", "/api/v1/resources" and "/api/v1/tickets" (pages of
 * ?after=ID&limit=N with a "next" cursor), "/api/v1/resources/<id>" and
 * "/metrics" (Prometheus text format 0.0.4); "/" also draws the
 * history of the last hours and "/api/v1/history" gives it as JSON.  Pool
 * commands and their environment are never shown: they may carry tokens.
 */
#ifndef RESBUS_HTTP_H
#define RESBUS_HTTP_H

#include <stdbool.h>

struct ev_loop;
struct sched;
struct http;

/* Whether LISTEN names an address ("" and "off", or NULL, do not). */
bool http_listen_enabled(const char *listen);

/*
 * Serves the status pages on LISTEN ("HOST:PORT" or "[IPV6]:PORT") from
 * SCHED (borrowed; must outlive the server).  NULL, after logging why,
 * when the address cannot be resolved or bound.  Caller frees with
 * http_free().
 */
struct http *http_new(
    struct ev_loop *loop, const char *listen, struct sched *sched);
/* Stops listening, closes every connection and frees H (NULL is fine). */
void http_free(struct http *h);
/* This broker leads since SINCE_MS with fencing EPOCH; WHO is copied.
 * Shown on the status page and in /metrics.  H may be NULL. */
void http_set_leader(
    struct http *h, const char *who, int64_t epoch, int64_t since_ms);
struct peers;
/* The standby brokers the active one hears (borrowed; must outlive H),
 * for the status page and /metrics.  H may be NULL. */
void http_set_standbys(struct http *h, const struct peers *standbys);

/* The history the status page draws and /api/v1/history gives (borrowed;
 * must outlive H, or be replaced).  H may be NULL. */
struct history;
void http_set_history(struct http *h, const struct history *history);

#endif
