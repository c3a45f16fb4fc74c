/*
 * topo -- the names on the bus (DESIGN.md section 2) and their declaration.
 *
 * All names hang under a configurable prefix (default "resbus").  The
 * broker, the workers and the clients all declare the part of the
 * topology they rely on: declarations are idempotent, and a client that
 * publishes before resbusd ever ran still finds its exchange, and its
 * request waits in a durable queue.
 */
#ifndef RESBUS_TOPO_H
#define RESBUS_TOPO_H

struct bus;

/* Fresh strings, caller frees. */
char *topo_ticket_exchange(const char *prefix);	  /* P.ticket */
char *topo_unrouted_exchange(const char *prefix); /* P.ticket.unrouted */
char *topo_unrouted_queue(const char *prefix);	  /* P.ticket.unrouted */
char *topo_ticket_queue(
    const char *prefix, const char *key);      /* P.ticket.<key> */
char *topo_request_queue(const char *prefix);  /* P.request */
char *topo_event_exchange(const char *prefix); /* P.event */
char *topo_pool_queue(const char *prefix, const char *pool); /* P.pool.<pool> */
char *topo_broker_events_queue(const char *prefix); /* P.broker.events */
char *topo_control_queue(const char *prefix);	    /* P.control */
char *topo_job_exchange(const char *prefix);	    /* P.job */
char *topo_dead_exchange(const char *prefix);	    /* P.dead */
char *topo_dead_queue(const char *prefix);	    /* P.dead */
char *topo_brokers_queue(const char *prefix);	    /* P.brokers */

/* Messages the dead-letter queue keeps; the oldest go beyond that. */
#define TOPO_DEAD_MAX 10000
#define TOPO_DEAD_MAX_BYTES (64 << 20)

/*
 * The BUS_* flag of server.yaml's or worker.yaml's queue_type: BUS_QUORUM
 * for "quorum", 0 for "classic" or NULL.  Every topo_declare_* below takes
 * it as QUEUE_FLAGS for the durable shared queues; the per-client reply
 * queues and the workers' cancel queues stay exclusive classic queues.
 */
unsigned topo_queue_flags(const char *queue_type);

/*
 * Declares the exchanges and the shared durable queues: the ticket
 * exchange with its alternate exchange and unrouted queue, the request
 * queue, the event exchange, the broker's event queue bound to
 * resource.#, the control queue, the job exchange, and the dead-letter
 * exchange and queue.  0 or -1 (bus_error() says why).
 */
int topo_declare_core(struct bus *bus, const char *prefix, unsigned queue_flags)
    __attribute__((warn_unused_result));
/*
 * The same for a process that may lack the permission to configure
 * them (a client, a worker): nothing is declared when the dead-letter
 * queue, declared last, exists already, which a passive declare finds
 * out without that permission.
 */
int topo_ensure_core(struct bus *bus, const char *prefix, unsigned queue_flags)
    __attribute__((warn_unused_result));

/* Standby beats the brokers queue keeps; the oldest go beyond that. */
#define TOPO_BROKERS_MAX 64
#define TOPO_BROKERS_MAX_BYTES (64 << 10)

/* Declares the brokers' queue, where standby brokers say that they wait
 * (resbusd only).  0 / -1. */
int topo_declare_brokers(struct bus *bus, const char *prefix,
    unsigned queue_flags) __attribute__((warn_unused_result));

/* Declares the (durable) queue of POOL and binds it to the job exchange
 * (declared with the core) with routing key POOL.  0 / -1. */
int topo_declare_pool(struct bus *bus, const char *prefix, const char *pool,
    unsigned queue_flags) __attribute__((warn_unused_result));

/* Declares the queue of tag set KEY and binds it to the ticket exchange. */
int topo_declare_tagset(struct bus *bus, const char *prefix, const char *key,
    unsigned queue_flags) __attribute__((warn_unused_result));

#endif
