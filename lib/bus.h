/*
 * bus -- one AMQP 0-9-1 connection (librabbitmq-c) with one channel.
 *
 * The daemons drive it from libev: watch bus_fd() for reading, call
 * bus_poll(bus, 0) when it is readable, and again at the end of every
 * loop iteration while bus_pending() says the library holds buffered
 * frames (an RPC such as queue.declare may read deliveries ahead).  A
 * periodic bus_poll() also keeps heartbeats going.  The CLIs simply call
 * bus_poll() with a timeout until they have their answer.
 *
 * Deliveries reach the callback registered with bus_consume(); publisher
 * confirms reach the callback registered with bus_confirm_select().
 * Every function returns 0 / -1; on -1, bus_error() says what failed.
 */
#ifndef RESBUS_BUS_H
#define RESBUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;

/* One AMQP table entry for publishing headers. */
struct bus_header {
	const char *key;
	enum { BUS_HDR_STRING, BUS_HDR_INT, BUS_HDR_BOOL } kind;
	const char *s;
	int64_t i;
};

struct bus_props {
	const char *type;	  /* full message name */
	const char *content_type; /* NULL: application/x-protobuf */
	const char *content_encoding;
	const char *reply_to;
	const char *correlation_id;
	const char *message_id;
	const char *user_id; /* RabbitMQ checks it against the login */
	bool persistent;     /* delivery_mode 2 */
	const struct bus_header *headers;
	size_t nheaders;
	uint8_t priority;
	bool has_priority;
};

/* A received message.  Every pointer is borrowed for the callback only. */
struct bus_delivery {
	const char *exchange;
	const char *routing_key;
	const char *consumer_tag;
	const char *type;
	const char *reply_to;
	const char *correlation_id;
	const char *message_id;
	const char *user_id;
	const char *queue; /* the queue it was consumed from */
	const void *body;
	size_t len;
	uint64_t delivery_tag;
	bool redelivered;
};

typedef void bus_deliver_fn(
    struct bus *bus, const struct bus_delivery *d, void *arg);
/* SEQ is the publish sequence number bus_publish() gave; MULTIPLE means
 * every outstanding number up to and including SEQ. */
typedef void bus_confirm_fn(
    struct bus *bus, uint64_t seq, bool multiple, bool ack, void *arg);

enum {
	BUS_DURABLE = 1 << 0,
	BUS_EXCLUSIVE = 1 << 1,
	BUS_AUTO_DELETE = 1 << 2,
	BUS_PASSIVE = 1 << 3,
	BUS_QUORUM = 1 << 4, /* x-queue-type quorum (durable only) */
};

/* Exit status of a daemon whose queue exists with the other type
 * (EX_CONFIG): restarting it would meet the same refusal. */
#define BUS_EXIT_CONFIG 78

/*
 * Connects to URL (amqp:// or amqps://), logs in, opens channel 1.  URL
 * may list the nodes of a cluster separated by commas
 * ("amqp://u:p@a:5672/v,amqp://u:p@b:5672/v"): the first node that
 * answers, in order, each within a few seconds, is taken.  NAME is shown
 * as the connection name in rabbitmqctl.  NULL with a message in ERR on
 * failure, naming each node tried.  Free with bus_free().
 */
struct bus *bus_connect(
    const char *url, const char *name, char *err, size_t errlen);
/* The same, trying the nodes from index FIRST (modulo their number) on:
 * to reconnect, FIRST is the node after the one that was lost. */
struct bus *bus_connect_from(
    const char *url, size_t first, const char *name, char *err, size_t errlen);
/* The index in the URL list of the node BUS is connected to. */
size_t bus_node(const struct bus *bus);
/*
 * Whether BUS failed because a queue exists with another type (classic,
 * quorum) than declared; bus_error() then says which queue and what to
 * do.  The daemons exit with BUS_EXIT_CONFIG.
 */
bool bus_conflict(const struct bus *bus);
/* Whether the connection failed (a reconnect is needed to go on). */
bool bus_broken(const struct bus *bus);
void bus_free(struct bus *bus);
/*
 * The AMQP heartbeat, in seconds, that connections made from now on ask
 * for (default 30).  RabbitMQ closes a connection that misses two, and
 * gives its unacknowledged deliveries to other consumers: resbusd asks
 * for a short one, so that a paused broker's deliveries go to the
 * standby that took over.
 */
void bus_heartbeat_default(int seconds);

int bus_fd(const struct bus *bus);
const char *bus_error(const struct bus *bus);
/* The login user of the connection (for the user_id property).  Borrowed. */
const char *bus_user(const struct bus *bus);

int bus_exchange_declare(struct bus *bus, const char *name, const char *type,
    bool durable, const char *alternate_exchange)
    __attribute__((warn_unused_result));
/*
 * Declares queue NAME (empty: a server-named queue) with BUS_* FLAGS.
 * *actual (may be NULL) gets the queue's name (caller frees); *messages
 * and *consumers (may be NULL) its counts.  A BUS_PASSIVE declare of a
 * missing queue fails and leaves the channel usable.
 */
int bus_queue_declare(struct bus *bus, const char *name, unsigned flags,
    char **actual, uint32_t *messages, uint32_t *consumers)
    __attribute__((warn_unused_result));
int bus_queue_bind(struct bus *bus, const char *queue, const char *exchange,
    const char *key) __attribute__((warn_unused_result));
int bus_queue_unbind(struct bus *bus, const char *queue, const char *exchange,
    const char *key) __attribute__((warn_unused_result));
int bus_qos(struct bus *bus, uint16_t prefetch)
    __attribute__((warn_unused_result));
/*
 * The same without waiting for RabbitMQ's answer (the nowait flag): for a
 * queue the caller knows to be valid, so that declaring it costs no round
 * trip on an event loop.  A refusal arrives later as a channel error,
 * which breaks the connection like any other.
 */
int bus_queue_declare_nowait(struct bus *bus, const char *name, unsigned flags)
    __attribute__((warn_unused_result));
int bus_queue_bind_nowait(struct bus *bus, const char *queue,
    const char *exchange, const char *key) __attribute__((warn_unused_result));
/* Declares QUEUE durable with at most MAX_LENGTH messages and MAX_BYTES
 * of bodies (the oldest are dropped beyond that): for a queue that must
 * not grow unbounded.  FLAGS: BUS_QUORUM or 0. */
int bus_queue_declare_bounded(struct bus *bus, const char *name,
    int64_t max_length, int64_t max_bytes, unsigned flags)
    __attribute__((warn_unused_result));
/*
 * Deletes QUEUE if it is empty and unused.  0 when it is gone, 1 when it
 * is kept because it holds messages or has consumers (the channel stays
 * usable), -1 on failure.
 */
int bus_queue_delete_if_idle(struct bus *bus, const char *queue)
    __attribute__((warn_unused_result));
/* Starts consuming QUEUE; each delivery goes to FN(bus, d, ARG). */
int bus_consume(struct bus *bus, const char *queue, bool no_ack,
    bus_deliver_fn *fn, void *arg) __attribute__((warn_unused_result));
/* The same with a consumer tag of our own, without waiting for the
 * answer (see bus_queue_declare_nowait). */
int bus_consume_nowait(struct bus *bus, const char *queue, bool no_ack,
    bus_deliver_fn *fn, void *arg) __attribute__((warn_unused_result));
/*
 * Stops consuming QUEUE.  Deliveries already on their way still reach the
 * consumer's function; what it does not acknowledge it must reject.
 */
int bus_cancel(struct bus *bus, const char *queue)
    __attribute__((warn_unused_result));
/* Puts the channel in confirm mode; confirms go to FN(bus, ..., ARG). */
int bus_confirm_select(struct bus *bus, bus_confirm_fn *fn, void *arg)
    __attribute__((warn_unused_result));

/*
 * Publishes BODY to EXCHANGE ("" = default) with routing key KEY.  In
 * confirm mode *seq (may be NULL) gets the sequence number the confirm
 * will carry.
 */
int bus_publish(struct bus *bus, const char *exchange, const char *key,
    const struct bus_props *props, const void *body, size_t len, uint64_t *seq)
    __attribute__((warn_unused_result));
int bus_ack(struct bus *bus, uint64_t delivery_tag)
    __attribute__((warn_unused_result));
int bus_reject(struct bus *bus, uint64_t delivery_tag, bool requeue)
    __attribute__((warn_unused_result));

/*
 * Reads and dispatches frames: waits up to TIMEOUT_MS (0: only what is
 * already there, -1: forever) for the first, then takes everything that
 * is ready without waiting.  Returns the number of deliveries and
 * confirms handled, or -1 when the connection or channel failed.
 */
int bus_poll(struct bus *bus, int timeout_ms);
/* Whether the library holds frames or bytes not yet dispatched. */
bool bus_pending(const struct bus *bus);

#endif
