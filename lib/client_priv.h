/*
 * client_priv.h -- what the files of the client library share.
 *
 * One struct resbus_client per connection, used either through the
 * blocking calls (one RPC in flight, identified by c->corr, its answer in
 * c->reply) or from an event loop (many calls in flight, each with its
 * own correlation id, on c->calls; watchers of tickets on c->watches).
 * client_conn.c owns the connection and the RPC plumbing,
 * client_ticket.c the ticket requests, client_wait.c the waits and the
 * events that wake them, client_async.c the event-loop use, client.c the
 * operators' control RPCs.
 */
#ifndef RESBUS_CLIENT_PRIV_H
#define RESBUS_CLIENT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "client.h"
#include "msg.h"

enum client_call_kind { CALL_TAKE, CALL_QUERY, CALL_CLOSE };

/* An asynchronous request in flight (resbus_*_send). */
struct resbus_call {
	struct resbus_call *next, *prev;
	enum client_call_kind kind;
	uint64_t id; /* the ticket asked about */
	char corr[37];
	resbus_answer_fn *fn;
	void *arg;
};

/* A watcher of one ticket's events (resbus_watch_add). */
struct resbus_watch {
	struct resbus_watch *next, *prev;
	uint64_t id;
	char *key; /* ticket.<id>.*, bound while a watcher of ID exists */
	resbus_wake_fn *fn;
	void *arg;
};

struct resbus_client {
	struct bus *bus;
	char *url;	      /* the nodes, for reconnecting */
	unsigned queue_flags; /* RESBUS_QUEUE_TYPE, for topo_ensure_core */
	char *prefix;
	char *ticket_exchange;
	char *request_queue;
	char *event_exchange;
	char *reply_queue;
	char *event_queue; /* made on the first wait */

	/* The RPC in flight, and what it published, to publish again. */
	char corr[37];
	char *last_exchange;
	char *last_key;
	char *last_type;
	void *last_body;
	size_t last_len;
	bool last_persistent;
	int64_t resend_at; /* unanswered: publish again then (0: no) */
	int64_t resend_ms; /* and the wait before the next time */
	char *watch_key;   /* the blocking wait's binding (ticket.<id>.*) */
	ProtobufCMessage *reply; /* its answer, owned */
	char *reply_bad;	 /* the type of an answer that did not decode */

	/*
	 * The ticket a blocking wait watches, whether an event woke it
	 * since its last query, and the answer that ends it.
	 */
	bool watching;
	bool woken;
	uint64_t watch_id;
	Resbus__V1__TicketUpdate *watch_done; /* owned */
	/* What a wait with a progress function shows. */
	resbus_wait_progress_fn *progress;
	void *progress_arg;
	char *watch_reason;    /* resbusd's latest waiting_reason, or NULL */
	int64_t watch_created; /* the ticket's creation, wall clock; 0 */
	int64_t watch_start;   /* the wait's start, monotonic */

	/* Asynchronous use. */
	struct resbus_call *calls;
	struct resbus_watch *watches;
	bool failed; /* the connection failed; the calls were answered */

	char error[512];
};

/* client_conn.c: the connection and the RPC in flight. */
void client_seterr(struct resbus_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * The connection failed: connects to the next node that answers, sets
 * the queues up again and publishes the request in flight again.  0, or
 * -1 with the error set when DEADLINE (-1: none) passed first.
 */
int client_reconnect(struct resbus_client *c, int64_t deadline)
    __attribute__((warn_unused_result));
/*
 * Polls the connection until DONE(c) holds or DEADLINE (monotonic ms, -1:
 * none) passes.  0 when done, 1 on timeout, -1 when the connection failed
 * and could not be made again.
 */
int client_pump(struct resbus_client *c, int64_t deadline,
    bool (*done)(const struct resbus_client *))
    __attribute__((warn_unused_result));
/* Whether the RPC in flight has its answer (for client_pump). */
bool client_rpc_done(const struct resbus_client *c);
/* The monotonic deadline of TIMEOUT_MS from now; -1 for -1 (none). */
int64_t client_deadline(int timeout_ms);
/* TIMEOUT_MS in whole seconds, rounded up, for messages. */
int client_seconds(int timeout_ms);
/* Forgets the RPC in flight, its answer and what it published. */
void client_rpc_reset(struct resbus_client *c);
/*
 * Publishes M to EXCHANGE/KEY with correlation id CORR, answered on our
 * reply queue.  0 or -1 with the error set.
 */
int client_publish(struct resbus_client *c, const char *exchange,
    const char *key, const ProtobufCMessage *m, const char *corr)
    __attribute__((warn_unused_result));
/*
 * Publishes M to EXCHANGE/KEY as the new blocking RPC in flight (fresh
 * correlation id).  0 or -1 with the error set.
 */
int client_send(struct resbus_client *c, const char *exchange, const char *key,
    const ProtobufCMessage *m) __attribute__((warn_unused_result));
/*
 * Waits for the reply to the RPC in flight.  0 with c->reply set, 1 on
 * timeout, -1 on error (set); a refused request's error is resbusd's.
 */
int client_await(struct resbus_client *c, int timeout_ms)
    __attribute__((warn_unused_result));
/* A private queue for ticket events, made once per client.  0 or -1. */
int client_event_queue(struct resbus_client *c)
    __attribute__((warn_unused_result));

/* client_ticket.c: ticket requests and answers. */
/*
 * The reply in flight as a TicketUpdate, or NULL with the error set when
 * resbusd answered with something else.  Borrowed until the next RPC.
 */
const Resbus__V1__TicketUpdate *client_reply_update(struct resbus_client *c);
/* Fills *INFO from U; free with resbus_ticket_info_clear(). */
void client_info_fill(
    struct resbus_ticket_info *info, const Resbus__V1__TicketUpdate *u);
/*
 * Checks the tags and options of a ticket request, and publishes it with
 * correlation id CORR.  0, or -1 with the error set.
 */
int client_take_publish(struct resbus_client *c, char *const *tags,
    size_t ntags, const struct resbus_ticket_opts *opts, const char *corr)
    __attribute__((warn_unused_result));

/*
 * client_wait.c: wakes the blocking wait or the watchers of the ticket
 * event D names.
 */
void client_wake(struct resbus_client *c, const struct bus_delivery *d);

/*
 * client_async.c: turns M (taken over; NULL if it did not decode) into
 * CALL's answer, hands it to CALL's function and frees CALL.
 */
void client_call_answer(
    struct resbus_client *c, struct resbus_call *call, ProtobufCMessage *m);

#endif
