/*
 * outbox -- resbusd's group commit and publishing: the batch of what one
 * transaction releases once durable, the messages in flight awaiting
 * RabbitMQ's confirm, and the outbox table's rows to delete.  See
 * outbox.c for the order of commit, publish and acknowledge.
 *
 * The broker embeds one struct outbox and reads its fields; only the
 * functions below change them (and the broker appends to cur->held).
 *
 * Two connections: messages go out on PUB, in confirm mode, and the
 * consumed deliveries are acknowledged on BUS, the connection that
 * consumes them.  RabbitMQ's flow control blocks a connection that
 * publishes faster than its queues take; on a shared connection that
 * would stall the acknowledgements and the deliveries too.
 */
#ifndef RESBUS_OUTBOX_H
#define RESBUS_OUTBOX_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct bus;
struct held;
struct store;
struct store_outbox;
struct ProtobufCMessage;

/* A message to publish after the commit; durable ones have an outbox id. */
struct outmsg {
	TAILQ_ENTRY(outmsg) entry;
	char *exchange;
	char *key;
	char *type;
	char *correlation_id;
	void *body;
	size_t len;
	uint64_t outbox_id; /* 0: a reply, not in the outbox */
	uint64_t seq;	    /* publish sequence number, once sent */
	/* A dead letter: why, where it came from, who sent it. */
	char *dead_reason;
	char *dead_source;
	char *dead_queue;
	char *dead_user;
};
TAILQ_HEAD(outmsg_list, outmsg);

/* Redelivered messages, held by the broker until their counts are durable. */
TAILQ_HEAD(held_list, held);

/* What one transaction releases once it is durable. */
struct batch {
	struct outbox *owner;
	struct outmsg_list msgs; /* to publish */
	uint64_t *acks;		 /* delivery tags to acknowledge */
	size_t nacks, acks_cap;
	struct held_list held; /* handled once this is durable */
};

/*
 * The acknowledgements of a durable batch whose messages are published
 * but not all confirmed yet: they go out once every message published
 * up to LAST_SEQ is confirmed, so that a request is never acknowledged
 * before its answer is RabbitMQ's.
 */
struct ackwait {
	uint64_t last_seq;
	uint64_t *acks;
	size_t nacks;
};

/* What the outbox asks of its owner; CTX is passed to each. */
struct outbox_ops {
	/* BT's transaction is about to be committed. */
	void (*seal)(void *ctx, struct batch *bt);
	/* BT's commit is durable and its messages published: the owner
	 * takes BT's held deliveries; its acknowledgements follow. */
	void (*durable)(void *ctx, struct batch *bt);
	/* The store failed at WHAT, or BUS is lost: neither returns. */
	void (*store_failed)(void *ctx, const char *what);
	void (*lost_bus)(void *ctx, struct bus *bus);
	void *ctx;
};

struct outbox {
	struct ev_loop *loop;
	struct store *store; /* borrowed */
	struct bus *bus;     /* borrowed: acknowledges; set once connected */
	struct bus *pub;     /* borrowed: publishes, with confirms */
	struct outbox_ops ops;
	ev_timer sweep; /* writes confirmed outbox deletes */
	bool sweep_due;
	struct batch *cur;	     /* released by the next commit */
	bool committing;	     /* a commit is in flight */
	struct outmsg_list inflight; /* published, awaiting the confirm */
	struct ackwait *acking;	     /* awaiting confirms, oldest first */
	size_t nacking, acking_cap;
	uint64_t *done; /* confirmed outbox ids to delete */
	size_t ndone, done_cap;
	uint64_t last_outbox_id;
};

/* Sets up OB, empty, on LOOP and STORE (borrowed); OPS is copied. */
void outbox_init(struct outbox *ob, struct ev_loop *loop, struct store *store,
    const struct outbox_ops *ops);
/* Frees the messages in flight, the acknowledgements not sent and the
 * current batch (whose held list the owner has emptied). */
void outbox_clear(struct outbox *ob);
/* No more sweeps: the next flush deletes every confirmed row. */
void outbox_stop(struct outbox *ob);

/* A message for EXCHANGE/KEY of TYPE with a copy of BODY; caller frees
 * with outbox_msg_free() or hands it to outbox_add(). */
struct outmsg *outbox_msg_new(const char *exchange, const char *key,
    const char *type, const void *body, size_t len);
void outbox_msg_free(struct outmsg *o);
/* Publishes O (taken over) after the current batch commits, not durably. */
void outbox_add(struct outbox *ob, struct outmsg *o);
/* M for EXCHANGE/KEY, durably: a row of the outbox table in the current
 * transaction, published once it commits. */
void outbox_emit(struct outbox *ob, const char *exchange, const char *key,
    const struct ProtobufCMessage *m);
/* Acknowledges delivery TAG once the current batch is durable. */
void outbox_ack(struct outbox *ob, uint64_t tag);
/* A row of the outbox table left by a previous run (ARG is the outbox):
 * published again after the first commit. */
void outbox_load(void *arg, const struct store_outbox *row);

/* Deletes confirmed rows when due, and commits the current batch unless
 * a commit is in flight.  Before the loop sleeps. */
void outbox_flush(struct outbox *ob);
/* The publishing connection's confirm (or refusal) of SEQ, or up to it;
 * ARG is the outbox.  Sends the acknowledgements that waited for it. */
void outbox_on_confirm(
    struct bus *bus, uint64_t seq, bool multiple, bool ack, void *arg);

#endif
