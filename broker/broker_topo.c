/*
 * broker_topo -- resbusd's queues and consumers: the core queues, the
 * pools' and the brokers' declared at start-up and on reload, and one
 * queue per tag set.
 *
 * Tickets with the same tag set wait in one queue,
 * P.ticket.<canonical key>, which the broker consumes.  A tag set first
 * seen in a handler (a ticket that came by the unrouted queue) is only
 * recorded there; its queue is declared, bound and consumed at the end
 * of the iteration, without waiting for RabbitMQ's answers, so that a
 * burst of new tag sets costs no round trip each.  A tag set without
 * tickets for tagset_idle_s is retired: its consumer cancelled and its
 * queue deleted if it is empty.
 *
 * Everything here goes on the connection that consumes (b->bus); the
 * connection that publishes declares nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_priv.h"
#include "bus.h"
#include "conf.h"
#include "log.h"
#include "sched.h"
#include "topo.h"
#include "util.h"

/*
 * Tag set KEY is new: its queue is declared and consumed at the end of
 * the iteration, not in the handler (the declare, bind and consume go
 * out without waiting for their answers there).
 */
void
broker_tagset_later(struct broker *b, const char *key)
{
	if (b->nnew_tagsets == b->new_tagsets_cap) {
		b->new_tagsets_cap =
		    b->new_tagsets_cap ? b->new_tagsets_cap * 2 : 16;
		b->new_tagsets = xrealloc(b->new_tagsets,
		    b->new_tagsets_cap * sizeof(*b->new_tagsets));
	}
	b->new_tagsets[b->nnew_tagsets++] = xstrdup(key);
}

/*
 * Declares the queue of tag set KEY, binds it and consumes it, without
 * waiting for RabbitMQ's answers: KEY is valid, so is the name.  -1 only
 * when the connection broke.
 */
static int
broker_consume_tagset(struct broker *b, const char *key)
{
	char *q = topo_ticket_queue(b->prefix, key);
	int rc;

	rc = topo_declare_tagset(
	    b->bus, b->prefix, key, topo_queue_flags(b->server->queue_type));
	if (rc == 0)
		rc = bus_consume_nowait(b->bus, q, false, broker_on_ticket, b);
	if (rc == -1)
		log_warnx("tag set %s: cannot consume %s: %s", key, q,
		    bus_error(b->bus));
	else
		log_info("tag set %s: consuming %s", key, q);
	free(q);
	return rc;
}

void
broker_declare_tagsets(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->nnew_tagsets; i++) {
		(void)broker_consume_tagset(b, b->new_tagsets[i]);
		free(b->new_tagsets[i]);
	}
	b->nnew_tagsets = 0;
}

static void
broker_consume_known(void *arg, const char *key)
{
	(void)broker_consume_tagset(arg, key);
}

/* Consumes QUEUE (taken over) with FN. */
static int
broker_consume(struct broker *b, char *queue, bus_deliver_fn *fn, bool no_ack)
{
	int rc = bus_consume(b->bus, queue, no_ack, fn, b);

	if (rc == -1)
		log_warnx("cannot consume %s: %s", queue, bus_error(b->bus));
	free(queue);
	return rc;
}

/*
 * sched retired idle tag set KEY: its consumer stops and its queue goes,
 * unless a ticket arrived meanwhile (the delete is refused then, and the
 * tag set is taken up again).  A ticket published after the delete lands
 * in the unrouted queue and makes the tag set anew.
 */
void
broker_retire(void *ctx, const char *key)
{
	struct broker *b = ctx;
	char *q = topo_ticket_queue(b->prefix, key);
	int rc;

	if (bus_cancel(b->bus, q) == -1)
		log_warnx("tag set %s: cannot stop consuming %s: %s", key, q,
		    bus_error(b->bus));
	rc = bus_queue_delete_if_idle(b->bus, q);
	if (rc == 0) {
		log_info("tag set %s: idle, queue %s deleted", key, q);
	} else if (rc == 1) {
		log_info("tag set %s: queue %s is not empty, kept", key, q);
		if (sched_tagset_add(b->sched, key) == 1)
			broker_tagset_later(b, key);
	} else {
		log_warnx("tag set %s: cannot delete %s: %s", key, q,
		    bus_error(b->bus));
	}
	free(q);
}

int
broker_topo_pools(
    struct broker *b, const struct conf_pools *pools, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < pools->npools; i++)
		if (topo_declare_pool(b->bus, b->prefix, pools->pools[i].name,
			topo_queue_flags(b->server->queue_type)) == -1) {
			snprintf(err, errlen, "pool %s: %s",
			    pools->pools[i].name, bus_error(b->bus));
			return -1;
		}
	return 0;
}

int
broker_topo_setup(struct broker *b)
{
	unsigned flags = topo_queue_flags(b->server->queue_type);
	char err[512];

	if (topo_declare_core(b->bus, b->prefix, flags) == -1 ||
	    topo_declare_brokers(b->bus, b->prefix, flags) == -1) {
		log_warnx("cannot set up the bus: %s", bus_error(b->bus));
		return -1;
	}
	if (broker_topo_pools(b, b->pools, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	sched_foreach_tagset(b->sched, broker_consume_known, b);
	if (broker_consume(b, topo_broker_events_queue(b->prefix),
		broker_on_result, false) == -1 ||
	    broker_consume(b, topo_request_queue(b->prefix), broker_on_request,
		false) == -1 ||
	    broker_consume(b, topo_unrouted_queue(b->prefix), broker_on_ticket,
		false) == -1 ||
	    broker_consume(b, topo_control_queue(b->prefix), broker_on_control,
		false) == -1 ||
	    /* Beats are news of the moment: no acknowledgement. */
	    broker_consume(b, topo_brokers_queue(b->prefix), broker_on_standby,
		true) == -1)
		return -1;
	return 0;
}
