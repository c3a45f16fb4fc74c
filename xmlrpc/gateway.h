/*
 * gateway -- resalloc's XML-RPC methods carried out on the bus.
 *
 * A session is the gateway's side of one HTTP connection: it owns one
 * resbus client (one AMQP connection), made on the first call that needs
 * the bus and made again after the bus failed.  A session is used by one
 * thread at a time; AMQP connections are never shared between threads.
 */
#ifndef RESBUS_XMLRPC_GATEWAY_H
#define RESBUS_XMLRPC_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "xmlrpc.h"

struct gateway_conf {
	const char *amqp_url;
	const char *prefix; /* bus name prefix; NULL: "resbus" */
	int rpc_timeout_ms; /* for an answer from resbusd; -1: none */
	int wait_slice_ms;  /* waitTicket checks its caller this often */
};

/*
 * Says whether the call in progress should be given up (the client went
 * away, or the gateway stops); polled by waitTicket between slices.
 */
typedef bool gateway_abandon_fn(void *arg);

struct gateway_session;

/*
 * A fresh session for CONF (borrowed for the session's life); nothing is
 * connected yet.  Free with gateway_session_free().
 */
struct gateway_session *gateway_session_new(const struct gateway_conf *conf);
void gateway_session_free(struct gateway_session *s);

/*
 * Carries out REQ on the bus and returns the methodResponse (a value or a
 * fault) as *LEN bytes; caller frees.  ABANDON (may be NULL) is polled
 * with ARG while waitTicket waits.  PEER names the caller in logs.
 */
char *gateway_call(struct gateway_session *s, const struct xmlrpc_request *req,
    gateway_abandon_fn *abandon, void *arg, const char *peer, size_t *len);

#endif
