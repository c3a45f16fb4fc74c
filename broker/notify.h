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
 * The broker feeds the module from the places every change passes
 * through: the scheduler's emit callback (TicketUpdate events and
 * Allocate jobs), ticket creation, and allocation and deletion results.
 * Events wait until notify_seal() ties them to the transaction being
 * committed and notify_publish() sends them once it is durable.  Every
 * function accepts a NULL notify (notifications off) and does nothing.
 */
#ifndef RESBUS_NOTIFY_H
#define RESBUS_NOTIFY_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct bus;
struct conf_server;
struct sched;
struct notify;

/*
 * Notifications as SERVER says, about SCHED's objects, published on BUS
 * (all borrowed; they must outlive the notifier).  Declares the exchange
 * unless it is one of RabbitMQ's own amq.* ones.  NULL, after logging
 * why, when the bus refuses.  Caller frees with notify_free().
 */
struct notify *notify_new(
    const struct conf_server *server, struct sched *sched, struct bus *bus);
/* Frees N and any events not yet published (NULL is fine). */
void notify_free(struct notify *n);

/*
 * Ticket ID was just recorded for tag-set KEY, SANDBOX and OWNER (each
 * may be NULL or empty).  A ticket seen before (a retried request) is not
 * announced again.
 */
void notify_ticket_open(struct notify *n, uint64_t id, const char *key,
    const char *sandbox, const char *owner);
/* The scheduler emitted M (a TicketUpdate event, an Allocate job...). */
void notify_emit(struct notify *n, const ProtobufCMessage *m);
/* The scheduler handled a result about resource ID: announces it up or
 * deleted if that is what changed. */
void notify_resource_result(struct notify *n, uint64_t id);

/* The events so far belong to the transaction TXN (an opaque token). */
void notify_seal(struct notify *n, const void *txn);
/* Transaction TXN committed: publishes its events. */
void notify_publish(struct notify *n, const void *txn);

#endif
