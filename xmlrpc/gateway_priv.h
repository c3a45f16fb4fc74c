/*
 * gateway_priv.h -- what gateway.c (the calls and their connection) and
 * methods.c (the XML-RPC methods) share inside resbus-xmlrpc.
 *
 * A call in progress is a struct gateway_call on its gateway's list.  A
 * method's handler fills in the call's value or fault and returns
 * CALL_DONE, or sends a request through the shared client and returns
 * CALL_PENDING; the request's callback ends the call later with
 * call_step().
 */
#ifndef RESBUS_XMLRPC_GATEWAY_PRIV_H
#define RESBUS_XMLRPC_GATEWAY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "client.h"
#include "gateway.h"
#include "xmlrpc.h"

struct gateway {
	struct ev_loop *loop;
	const struct gateway_conf *conf;
	struct resbus_client *client; /* NULL until needed */
	ev_io io;		      /* the client's connection */
	ev_timer beat;
	ev_prepare prepare; /* reads what the library buffered */
	bool check_due;	    /* a send failed: is the connection dead? */
	int64_t connect_failed_ms;
	char connect_err[512];
	struct gateway_call *calls; /* in progress */
};

enum call_state { CALL_DONE, CALL_PENDING };

/* One method call in progress. */
struct gateway_call {
	struct gateway_call *next, *prev;
	struct gateway *g;
	const struct method *m;
	const struct xmlrpc_request *req; /* while the handler starts */
	char *peer;
	gateway_done_fn *done;
	void *arg;

	/* The end: a value, or a fault. */
	struct xmlrpc_value *value;
	int fault_code;
	char fault[512];

	/* On the bus. */
	struct resbus_call *rpc;    /* the request in flight */
	struct resbus_watch *watch; /* waitTicket: the ticket's events */
	ev_timer timer;		    /* rpc timeout, or the next query */
	uint64_t id;
	char shown[64];	 /* the ticket id as given */
	int64_t sent_ms; /* waitTicket's last query */
	bool woken;	 /* an event came during that query */
	size_t ntags;	 /* takeTicket, for its log line */
	char sandbox[256];
};

typedef enum call_state method_fn(struct gateway_call *);

struct method {
	const char *name;
	size_t min_params;
	size_t max_params;
	method_fn *run;
	const char *help;
};

/* The method called NAME, or NULL (methods.c). */
const struct method *method_find(const char *name);

/* A copy of S fit for one log line: control characters become '?'. */
void text_shown(const char *s, char *buf, size_t len);
/* Makes the call end in a fault of CODE; CALL_DONE. */
enum call_state call_fault(struct gateway_call *c, int code, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
/* Makes the call end with V (taken over); CALL_DONE. */
enum call_state call_value(struct gateway_call *c, struct xmlrpc_value *v);
/*
 * Ends C: encodes its value or fault, hands the response to the caller
 * and frees C.
 */
void call_end(struct gateway_call *c);
/* Ends C now if STATE says it is done. */
void call_step(struct gateway_call *c, enum call_state state);
/* The shared client, connected now if need be; NULL with a fault. */
struct resbus_client *call_client(struct gateway_call *c);
/*
 * Makes the call end in a fault with the client library's last error;
 * CALL_DONE.
 */
enum call_state call_bus_fault(struct gateway_call *c);
/* Starts the timeout of C's request to resbusd, if there is one. */
void call_arm_timeout(struct gateway_call *c);

#endif
