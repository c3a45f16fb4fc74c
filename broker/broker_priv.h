/*
 * broker_priv -- what the files of the broker module share: the struct
 * behind struct broker, the sources a delivery may come from, and the
 * few functions one file calls in another.  Nothing outside broker*.c
 * includes it; the rest of resbusd sees only broker.h.
 *
 *   broker.c          the object's life (new, reload, free) and the loop's
 *                     glue: the flush before the loop sleeps, the bus and
 *                     store watchers, the lease, losing the bus
 *   broker_recv.c     what comes in: who may send what on which queue,
 *                     refusals and dead letters, replies, the dispatch
 *                     tables, job results, redelivered messages held
 *   broker_ticket.c   clients' ticket requests, queries, renewals, closes
 *   broker_control.c  the control queue and the standby brokers' beats
 *   broker_topo.c     queues and consumers: the set-up, tag sets declared
 *                     and consumed off the handlers, idle ones retired
 */
#ifndef RESBUS_BROKER_PRIV_H
#define RESBUS_BROKER_PRIV_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "broker.h"
#include "bus.h"
#include "msg.h"
#include "outbox.h"
#include "peers.h"

/*
 * Which queue a delivery came from, and so what it may carry: tickets
 * from the ticket queues, clients' questions from the request queue,
 * job results from the broker's event queue, operators' commands from
 * the control queue.
 */
enum broker_source {
	SRC_TICKET,
	SRC_REQUEST,
	SRC_RESULT,
	SRC_CONTROL,
	SRC_COUNT,
};

/*
 * A redelivered message, held until the commit that counts this delivery
 * is durable: a message that kills resbusd while it is handled is
 * counted at each start, and dead-lettered past max_redeliveries.
 */
struct held {
	TAILQ_ENTRY(held) entry;
	enum broker_source src;
	uint64_t fp;
	struct bus_delivery d; /* strings and body are copies */
};

struct broker {
	struct ev_loop *loop;
	struct bus *bus; /* consumes and acknowledges */
	struct bus *pub; /* publishes, with confirms (outbox, notify) */
	struct store *store;
	struct sched *sched;
	struct http *http;	 /* NULL: no status page */
	struct history *history; /* the status page's; NULL without it */
	struct notify *notify;	 /* NULL: no notifications */
	const struct conf_server *server;
	struct conf_pools *pools; /* owned */
	char *pools_path;
	char *prefix;
	ev_io bus_io, pub_io;
	ev_io store_rio, store_wio; /* a networked store's socket */
	ev_prepare flush;
	ev_timer heartbeat;
	ev_timer lease; /* keeps a networked store's session busy */
	char *leader;	/* "pid N on HOST" */
	int64_t leader_epoch, leader_since_ms;
	struct outbox outbox; /* batches, confirms, group commit */
	char *dead_exchange;
	char **new_tagsets; /* to declare and consume, off handlers */
	size_t nnew_tagsets, new_tagsets_cap;
	struct held_list ready; /* held deliveries whose count is durable */
	struct delivery_counts *counts; /* of redelivered messages */
	struct peers standbys;		/* the standby brokers heard */
};

/*
 * What a handler needs to know about the delivery it handles.  A handler
 * whose reply waits for the store sets ack_later and acknowledges the
 * delivery with that reply (reply_stored): a request acknowledged before
 * its answer is published would be lost with the answer in a crash
 * between the two.
 */
struct delivery_ctx {
	const struct bus_delivery *d;
	bool ack_later;
	const char *dead; /* refused as invalid: dead-letter it */
	char why[512];	  /* what dead may point to */
};

/* broker.c */
/* The store failed at WHAT: resbusd exits (its state is in the store). */
void broker_store_failed(struct broker *b, const char *what)
    __attribute__((noreturn));
/* A connection of the bus failed: resbusd exits for its supervisor. */
void broker_lost_bus(struct broker *b, struct bus *bus)
    __attribute__((noreturn));

/* Acknowledges delivery TAG once this iteration's changes are durable. */
void broker_ack(struct broker *b, uint64_t tag);

/* broker_recv.c */
/* A reply M to the client that sent D; published after the commit. */
void broker_reply(
    struct broker *b, const struct bus_delivery *d, const ProtobufCMessage *m);
void broker_reply_error(
    struct broker *b, const struct bus_delivery *d, const char *message);
/* D to the dead-letter exchange with REASON, after the commit. */
void broker_dead_letter(
    struct broker *b, const struct bus_delivery *d, const char *reason);
/* Whether USER is one of the N users of LIST. */
bool broker_user_in(char *const *list, size_t n, const char *user);
bool broker_is_admin(const struct broker *b, const char *user);
/* The bus's consumers of the ticket, request, event and control queues. */
void broker_on_ticket(struct bus *bus, const struct bus_delivery *d, void *arg);
void broker_on_request(
    struct bus *bus, const struct bus_delivery *d, void *arg);
void broker_on_result(struct bus *bus, const struct bus_delivery *d, void *arg);
void broker_on_control(
    struct bus *bus, const struct bus_delivery *d, void *arg);
/* Handles the held deliveries whose counts are durable now. */
bool broker_handle_ready(struct broker *b);
/* Frees the held deliveries of LIST. */
void broker_held_clear(struct held_list *list);

/* broker_ticket.c: the handlers of the ticket and request queues. */
void broker_on_ticket_request(const ProtobufCMessage *m, void *ctx, void *arg);
void broker_on_ticket_query(const ProtobufCMessage *m, void *ctx, void *arg);
void broker_on_ticket_renew(const ProtobufCMessage *m, void *ctx, void *arg);
void broker_on_ticket_close(const ProtobufCMessage *m, void *ctx, void *arg);

/* broker_control.c: the handler of the control queue, the consumer of
 * the brokers' queue. */
void broker_on_control_request(const ProtobufCMessage *m, void *ctx, void *arg);
void broker_on_standby(
    struct bus *bus, const struct bus_delivery *d, void *arg);

/* broker_topo.c */
/* Declares the core queues and the pools' and starts consuming; -1
 * (logged) when the bus refused. */
int broker_topo_setup(struct broker *b) __attribute__((warn_unused_result));
/* Declares the pools of POOLS; -1 with the reason in ERR. */
int broker_topo_pools(struct broker *b, const struct conf_pools *pools,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Tag set KEY is new: declared and consumed at the end of the iteration. */
void broker_tagset_later(struct broker *b, const char *key);
/* Declares and consumes the tag sets recorded in this iteration. */
void broker_declare_tagsets(struct broker *b);
/* sched's retire: idle tag set KEY's consumer and queue go. */
void broker_retire(void *ctx, const char *key);

#endif
