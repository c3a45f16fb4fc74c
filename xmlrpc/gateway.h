/*
 * gateway -- resalloc's XML-RPC methods carried out on the bus, from one
 * event loop.
 *
 * A call starts with gateway_call_start() and ends by handing its
 * methodResponse to the caller's function, at once or later (waitTicket
 * waits for its ticket; the others for resbusd's answer).  All calls
 * share one AMQP connection, driven by the loop.
 */
#ifndef RESBUS_XMLRPC_GATEWAY_H
#define RESBUS_XMLRPC_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "xmlrpc.h"

struct gateway_conf {
	const char *amqp_url;
	const char *prefix; /* bus name prefix; NULL: "resbus" */
	int rpc_timeout_ms; /* for an answer from resbusd; -1: none */
	int requery_ms;	    /* waitTicket asks again this often anyway */
};

struct gateway;
struct gateway_call;

/*
 * The response to a call: BODY (*LEN bytes, a methodResponse with a
 * value or a fault) is taken over by the function.
 */
typedef void gateway_done_fn(void *arg, char *body, size_t len);

/*
 * A gateway on LOOP for CONF (both borrowed for its life).  Connects to
 * the bus lazily, on the first call, and again after the connection is
 * lost.
 */
struct gateway *gateway_new(
    struct ev_loop *loop, const struct gateway_conf *conf);
/* Frees G; no call may be in progress (see gateway_stop). */
void gateway_free(struct gateway *g);

/* Says whether the bus and resbusd can be reached, in the log. */
void gateway_probe(struct gateway *g);

/*
 * Starts REQ (borrowed for this function only) for PEER (for logs).
 * DONE(ARG, ...) is called exactly once, unless the call is cancelled.
 * NULL if the call ended already, DONE having been called; else the call
 * in progress.
 */
struct gateway_call *gateway_call_start(struct gateway *g,
    const struct xmlrpc_request *req, const char *peer, gateway_done_fn *done,
    void *arg);
/* Gives up CALL (its caller went away); DONE is not called. */
void gateway_call_cancel(struct gateway_call *call);
/* Ends every call in progress with a fault: the gateway stops. */
void gateway_stop(struct gateway *g);

#endif
