/*
 * notify -- fedora-messaging-style JSON notifications of what the broker
 * does: tickets opened, ready, failed and closed, resources starting, up
 * and deleted.
 *
 * They go to a topic exchange (server.yaml's notify_exchange, amq.topic
 * by default) under routing keys "<notify_topic_prefix>.resbus.ticket.ready"
 * and the like, with the properties and headers a fedora-messaging
 * listener expects.  They are best effort: published without an outbox
 * after the transaction that made the change commits, so a crash at the
 * wrong moment loses one, and a notification never delays a ticket.
 *
 * The scheduler reports what changed through sched_ops.observe; events
 * wait until notify_seal() ties them to the transaction being committed
 * and notify_publish() sends them once it is durable.  Every function
 * accepts a NULL notify (notifications off) and does nothing.
 */
#ifndef RESBUS_NOTIFY_H
#define RESBUS_NOTIFY_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct bus;
struct conf_server;
struct sched_event;
struct notify;

/*
 * Notifications as SERVER says, published on BUS (both borrowed; they
 * must outlive the notifier).  Declares the exchange unless it is one of
 * RabbitMQ's own amq.* ones.  NULL, after logging why, when the bus
 * refuses.  Caller frees with notify_free().
 */
struct notify *notify_new(const struct conf_server *server, struct bus *bus);
/* Frees N and any events not yet published (NULL is fine). */
void notify_free(struct notify *n);

/* The scheduler observed EV (sched_ops.observe): queue its notification. */
void notify_observe(struct notify *n, const struct sched_event *ev);

/* The events so far belong to the transaction TXN (an opaque token). */
void notify_seal(struct notify *n, const void *txn);
/* Transaction TXN committed: publishes its events. */
void notify_publish(struct notify *n, const void *txn);

#endif
