/*
 * server_priv -- what server.c (connections) and request.c (the requests
 * on them) share: a connection's and a request's context, and the few
 * functions each calls in the other.  Only those two include it.
 */
#ifndef RESBUS_XMLRPC_SERVER_PRIV_H
#define RESBUS_XMLRPC_SERVER_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <microhttpd.h>

#include "gateway.h"
#include "server.h"

/* The body of a request must be in this long after its head. */
#define BODY_TIMEOUT_S 30
/* A connection that reads nothing of its response is closed after this. */
#define IDLE_TIMEOUT_S 30

/* One client connection (MHD's socket context). */
struct conn {
	struct server *srv;
	struct MHD_Connection *mc;
	int fd;
	char peer[128];
	ev_timer deadline; /* for the request's head, then its body */
	ev_io hangup;	   /* while suspended: did the client go? */
	ev_timer hangup_check;
};

/* One HTTP request: its body as it arrives, then its call. */
struct request {
	struct conn *conn;
	char *body;
	size_t len;
	bool too_big;
	bool answered; /* a response was queued before the body */
	bool started;  /* the call was made */
	bool suspended;
	bool abandoned;		   /* the client went while its call ran */
	struct gateway_call *call; /* in progress */
	char *out;		   /* the methodResponse, once there */
	size_t outlen;
};

/* Gives CN S seconds (0: no limit) for what it must send next (server.c). */
void conn_deadline_set(struct conn *cn, unsigned int s);

/* libmicrohttpd's access handler: collects the body, then calls. */
enum MHD_Result request_handle(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
/*
 * Frees a request once its response went out (or the connection died),
 * and gives the connection header_timeout for its next request.
 */
void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe);
/* A suspended call's socket readable, or its periodic check: hung up? */
void request_hangup_io(struct ev_loop *loop, ev_io *w, int revents);
void request_hangup_timer(struct ev_loop *loop, ev_timer *w, int revents);

#endif
