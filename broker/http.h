/*
 * http -- resbusd's status page, JSON API and Prometheus metrics.
 *
 * libmicrohttpd runs without a thread of its own, inside the broker's one
 * libev loop: an ev_io watches its epoll descriptor and an ev_timer its
 * next timeout, and both call MHD_run().  Every request is answered at
 * once from the scheduler's read-only views, so a page is a consistent
 * picture of one moment and nothing is shared across threads.
 *
 * What is served: "/" (pools, resources, open tickets), "/resources/<id>"
 * (one resource and its pool's public settings), "/api/v1/pools",
 * "/api/v1/resources", "/api/v1/resources/<id>", "/api/v1/tickets" (the
 * same as JSON) and "/metrics" (Prometheus text format 0.0.4).  Pool
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

#endif
