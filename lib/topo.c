/*
 * topo -- bus names and the idempotent declaration of the topology.
 *
 * Tickets reach the broker through a direct exchange keyed by tag set.
 * A tag set the broker has never seen has no queue bound yet, so the
 * exchange's alternate exchange (a fanout) catches the message into the
 * unrouted queue; the broker then declares and binds the tag set's own
 * queue and handles the message.  From then on that tag set's tickets
 * wait in their own queue, FIFO.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "topo.h"
#include "util.h"

char *
topo_ticket_exchange(const char *prefix)
{
	return xasprintf("%s.ticket", prefix);
}

char *
topo_unrouted_exchange(const char *prefix)
{
	return xasprintf("%s.ticket.unrouted", prefix);
}

char *
topo_unrouted_queue(const char *prefix)
{
	return xasprintf("%s.ticket.unrouted", prefix);
}

char *
topo_ticket_queue(const char *prefix, const char *key)
{
	return xasprintf("%s.ticket.%s", prefix, key);
}

char *
topo_request_queue(const char *prefix)
{
	return xasprintf("%s.request", prefix);
}

char *
topo_event_exchange(const char *prefix)
{
	return xasprintf("%s.event", prefix);
}

char *
topo_pool_queue(const char *prefix, const char *pool)
{
	return xasprintf("%s.pool.%s", prefix, pool);
}

char *
topo_broker_events_queue(const char *prefix)
{
	return xasprintf("%s.broker.events", prefix);
}

char *
topo_control_queue(const char *prefix)
{
	return xasprintf("%s.control", prefix);
}

char *
topo_job_exchange(const char *prefix)
{
	return xasprintf("%s.job", prefix);
}

char *
topo_dead_exchange(const char *prefix)
{
	return xasprintf("%s.dead", prefix);
}

char *
topo_dead_queue(const char *prefix)
{
	return xasprintf("%s.dead", prefix);
}

char *
topo_brokers_queue(const char *prefix)
{
	return xasprintf("%s.brokers", prefix);
}

unsigned
topo_queue_flags(const char *queue_type)
{
	return queue_type != NULL && strcmp(queue_type, "quorum") == 0
		   ? BUS_QUORUM
		   : 0;
}

int
topo_declare_core(struct bus *bus, const char *prefix, unsigned queue_flags)
{
	char *ticket_x = topo_ticket_exchange(prefix);
	char *unrouted_x = topo_unrouted_exchange(prefix);
	char *unrouted_q = topo_unrouted_queue(prefix);
	char *request_q = topo_request_queue(prefix);
	char *event_x = topo_event_exchange(prefix);
	char *events_q = topo_broker_events_queue(prefix);
	char *control_q = topo_control_queue(prefix);
	char *job_x = topo_job_exchange(prefix);
	char *dead_x = topo_dead_exchange(prefix);
	char *dead_q = topo_dead_queue(prefix);
	unsigned qf = BUS_DURABLE | (queue_flags & BUS_QUORUM);
	int rc = -1;

	if (bus_exchange_declare(bus, unrouted_x, "fanout", true, NULL) == -1 ||
	    bus_exchange_declare(bus, ticket_x, "direct", true, unrouted_x) ==
		-1 ||
	    bus_queue_declare(bus, unrouted_q, qf, NULL, NULL, NULL) == -1 ||
	    bus_queue_bind(bus, unrouted_q, unrouted_x, "") == -1 ||
	    bus_queue_declare(bus, request_q, qf, NULL, NULL, NULL) == -1 ||
	    bus_exchange_declare(bus, event_x, "topic", true, NULL) == -1 ||
	    bus_queue_declare(bus, events_q, qf, NULL, NULL, NULL) == -1 ||
	    bus_queue_bind(bus, events_q, event_x, "resource.#") == -1 ||
	    bus_queue_declare(bus, control_q, qf, NULL, NULL, NULL) == -1 ||
	    bus_exchange_declare(bus, job_x, "direct", true, NULL) == -1 ||
	    bus_exchange_declare(bus, dead_x, "fanout", true, NULL) == -1 ||
	    bus_queue_declare_bounded(bus, dead_q, TOPO_DEAD_MAX,
		TOPO_DEAD_MAX_BYTES, queue_flags & BUS_QUORUM) == -1 ||
	    bus_queue_bind(bus, dead_q, dead_x, "") == -1)
		goto out;
	rc = 0;
out:
	free(job_x);
	free(dead_x);
	free(dead_q);
	free(ticket_x);
	free(unrouted_x);
	free(unrouted_q);
	free(request_q);
	free(event_x);
	free(events_q);
	free(control_q);
	return rc;
}

int
topo_ensure_core(struct bus *bus, const char *prefix, unsigned queue_flags)
{
	/*
	 * The dead-letter queue is what topo_declare_core declares last: if
	 * it is there, so is the rest (another process may be declaring the
	 * core right now, the request queue already done, the job exchange
	 * not yet).
	 */
	char *dead_q = topo_dead_queue(prefix);
	int rc;

	rc = bus_queue_declare(
	    bus, dead_q, BUS_DURABLE | BUS_PASSIVE, NULL, NULL, NULL);
	free(dead_q);
	if (rc == 0)
		return 0;
	return topo_declare_core(bus, prefix, queue_flags);
}

int
topo_declare_brokers(struct bus *bus, const char *prefix, unsigned queue_flags)
{
	char *q = topo_brokers_queue(prefix);
	int rc;

	rc = bus_queue_declare_bounded(bus, q, TOPO_BROKERS_MAX,
	    TOPO_BROKERS_MAX_BYTES, queue_flags & BUS_QUORUM);
	free(q);
	return rc;
}

int
topo_declare_pool(
    struct bus *bus, const char *prefix, const char *pool, unsigned queue_flags)
{
	char *q = topo_pool_queue(prefix, pool);
	char *x = topo_job_exchange(prefix);
	int rc = -1;

	/* The job exchange is the core's (topo_ensure_core before this):
	 * declaring it would need configure permission on it. */
	if (bus_queue_declare(bus, q, BUS_DURABLE | (queue_flags & BUS_QUORUM),
		NULL, NULL, NULL) == 0 &&
	    bus_queue_bind(bus, q, x, pool) == 0)
		rc = 0;
	free(q);
	free(x);
	return rc;
}

int
topo_declare_tagset(
    struct bus *bus, const char *prefix, const char *key, unsigned queue_flags)
{
	char *q = topo_ticket_queue(prefix, key);
	char *x = topo_ticket_exchange(prefix);
	int rc = -1;

	/* A valid key makes a valid name: no round trip for the answer. */
	if (bus_queue_declare_nowait(
		bus, q, BUS_DURABLE | (queue_flags & BUS_QUORUM)) == 0 &&
	    bus_queue_bind_nowait(bus, q, x, key) == 0)
		rc = 0;
	free(q);
	free(x);
	return rc;
}
