/*
 * standby -- a resbusd that waits for the store's leadership.
 *
 * It keeps warm the two AMQP connections the broker will use: the one
 * that will consume (on which it declares the brokers' queue) and the
 * one that will publish (on which it sends its beats).  Either lost,
 * both are dropped and made again STANDBY_RECONNECT_S later; when the
 * standby leads, the broker takes both over if both are up (else it
 * connects afresh).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "bus.h"
#include "conf.h"
#include "log.h"
#include "msg.h"
#include "standby.h"
#include "store.h"
#include "topo.h"
#include "util.h"

#define STANDBY_BEAT_S 1.
#define STANDBY_RECONNECT_S 5.

struct standby {
	struct ev_loop *loop;
	const struct conf_server *server;
	char *amqp_url;
	char *who;
	char *prefix;
	struct store *store;
	struct bus *bus; /* will consume */
	struct bus *pub; /* will publish; carries the beats */
	size_t node;	 /* the node to try first */
	ev_timer lead;	 /* tries to take the leadership */
	ev_timer beat;	 /* says that it waits; reconnects */
	ev_io bus_io, pub_io;
	double next_connect;
	int64_t since_ms;
	int64_t epoch;	 /* -1 until it leads */
	char said[1024]; /* the holder or error said last */
};

static void
standby_drop_bus(struct standby *s)
{
	if (s->bus == NULL && s->pub == NULL)
		return;
	if (s->bus != NULL) {
		ev_io_stop(s->loop, &s->bus_io);
		s->node = bus_node(s->bus) + 1;
		bus_free(s->bus);
		s->bus = NULL;
	}
	if (s->pub != NULL) {
		ev_io_stop(s->loop, &s->pub_io);
		bus_free(s->pub);
		s->pub = NULL;
	}
	s->next_connect = ev_now(s->loop) + STANDBY_RECONNECT_S;
}

/* BUS failed: both connections go, and are made again later. */
static void
standby_lost(struct standby *s, struct bus *bus)
{
	log_warnx("standby: AMQP connection lost: %s; connecting "
		  "again in %.0f s",
	    bus_error(bus), STANDBY_RECONNECT_S);
	standby_drop_bus(s);
}

static void
standby_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct standby *s = container_of(w, struct standby, bus_io);

	(void)loop;
	(void)revents;
	if (bus_poll(s->bus, 0) == -1)
		standby_lost(s, s->bus);
}

static void
standby_pub_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct standby *s = container_of(w, struct standby, pub_io);

	(void)loop;
	(void)revents;
	if (bus_poll(s->pub, 0) == -1)
		standby_lost(s, s->pub);
}

static void
standby_connect(struct standby *s)
{
	char err[1024];

	s->bus = bus_connect_from(
	    s->amqp_url, s->node, "resbusd (standby)", err, sizeof(err));
	if (s->bus == NULL) {
		log_warnx("standby: cannot connect to the AMQP broker: %s; "
			  "trying again in %.0f s",
		    err, STANDBY_RECONNECT_S);
		s->next_connect = ev_now(s->loop) + STANDBY_RECONNECT_S;
		return;
	}
	if (topo_declare_brokers(s->bus, s->prefix,
		topo_queue_flags(s->server->queue_type)) == -1) {
		log_warnx("standby: cannot declare the brokers' queue: %s",
		    bus_error(s->bus));
		standby_drop_bus(s);
		return;
	}
	ev_io_init(&s->bus_io, standby_readable, bus_fd(s->bus), EV_READ);
	ev_io_start(s->loop, &s->bus_io);
	/* The same node: the broker's two connections see one cluster view. */
	s->pub = bus_connect_from(s->amqp_url, bus_node(s->bus),
	    "resbusd (standby, publish)", err, sizeof(err));
	if (s->pub == NULL) {
		log_warnx("standby: cannot connect to the AMQP broker: %s; "
			  "trying again in %.0f s",
		    err, STANDBY_RECONNECT_S);
		standby_drop_bus(s);
		return;
	}
	ev_io_init(&s->pub_io, standby_pub_readable, bus_fd(s->pub), EV_READ);
	ev_io_start(s->loop, &s->pub_io);
}

static void
standby_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct standby *s = container_of(w, struct standby, beat);
	Resbus__V1__BrokerStandby m = RESBUS__V1__BROKER_STANDBY__INIT;
	struct bus_props props = {0};
	char *q;
	void *body;
	size_t len;
	int rc;

	(void)revents;
	if (s->bus == NULL && ev_now(loop) >= s->next_connect)
		standby_connect(s);
	if (s->bus == NULL)
		return;
	m.who = s->who;
	m.since_ms = s->since_ms;
	m.sent_ms = now_wall_ms();
	body = msg_pack(&m.base, &len);
	props.type = msg_type(&m.base);
	props.user_id = bus_user(s->pub);
	q = topo_brokers_queue(s->prefix);
	rc = bus_publish(s->pub, "", q, &props, body, len, NULL);
	free(q);
	free(body);
	/* Polled here too, so that both connections' heartbeats go out. */
	if (rc == -1 || bus_poll(s->pub, 0) == -1)
		standby_lost(s, s->pub);
	else if (bus_poll(s->bus, 0) == -1)
		standby_lost(s, s->bus);
}

/* Whether WHAT differs from what was said last (and is said now). */
static bool
standby_news(struct standby *s, const char *what)
{
	if (strcmp(what, s->said) == 0)
		return false;
	snprintf(s->said, sizeof(s->said), "%s", what);
	return true;
}

static void
standby_lead(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct standby *s = container_of(w, struct standby, lead);
	char holder[512], err[1024];
	int rc = -1;

	(void)revents;
	if (s->store == NULL && (s->store = store_open(s->server->db_url, err,
				     sizeof(err))) == NULL) {
		if (standby_news(s, err))
			log_warnx("standby: store: %s; trying again", err);
		return;
	}
	holder[0] = '\0';
	rc = store_lead_try(s->store, s->who, (int)s->server->leader_lease_s,
	    &s->epoch, holder, sizeof(holder));
	if (rc == 1) {
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	s->epoch = -1;
	if (rc == -1) {
		log_warnx("standby: store: %s; opening it again",
		    store_error(s->store));
		store_close(s->store);
		s->store = NULL;
		return;
	}
	if (standby_news(s, holder))
		log_info("standby: %s; waiting", holder);
}

struct standby *
standby_new(struct ev_loop *loop, const struct conf_server *server,
    const char *amqp_url, const char *who, struct store *store)
{
	struct standby *s = xcalloc(1, sizeof(*s));
	double every;

	s->loop = loop;
	s->server = server;
	s->amqp_url = xstrdup(amqp_url);
	s->who = xstrdup(who);
	s->prefix =
	    xstrdup(server->prefix ? server->prefix : RESBUS_DEFAULT_PREFIX);
	s->store = store;
	s->epoch = -1;
	s->since_ms = now_wall_ms();
	/* A networked store answers in a round trip; a lock file at once. */
	every = store_fd(store) >= 0 ? 1. : .5;
	ev_timer_init(&s->lead, standby_lead, every, every);
	ev_timer_init(&s->beat, standby_beat, STANDBY_BEAT_S, STANDBY_BEAT_S);
	return s;
}

int64_t
standby_run(struct standby *s)
{
	/* At once: a lone broker starts without waiting. */
	standby_lead(s->loop, &s->lead, 0);
	if (s->epoch >= 0)
		return s->epoch;
	ev_timer_start(s->loop, &s->lead);
	ev_timer_start(s->loop, &s->beat);
	/* The first beat at once too, so that the active broker lists this
	 * standby from the start. */
	standby_beat(s->loop, &s->beat, 0);
	ev_run(s->loop, 0);
	ev_timer_stop(s->loop, &s->lead);
	ev_timer_stop(s->loop, &s->beat);
	if (s->bus != NULL)
		ev_io_stop(s->loop, &s->bus_io);
	if (s->pub != NULL)
		ev_io_stop(s->loop, &s->pub_io);
	return s->epoch;
}

struct store *
standby_take_store(struct standby *s)
{
	struct store *store = s->store;

	s->store = NULL;
	return store;
}

struct bus *
standby_take_bus(struct standby *s, struct bus **pub)
{
	struct bus *bus = s->bus;

	if (bus != NULL)
		ev_io_stop(s->loop, &s->bus_io);
	if (s->pub != NULL)
		ev_io_stop(s->loop, &s->pub_io);
	*pub = s->pub;
	s->bus = NULL;
	s->pub = NULL;
	return bus;
}

void
standby_free(struct standby *s)
{
	if (s == NULL)
		return;
	standby_drop_bus(s);
	if (s->store != NULL)
		store_close(s->store);
	free(s->amqp_url);
	free(s->who);
	free(s->prefix);
	free(s);
}
