/*
 * broker -- resbusd's broker object: its life (new, reload, free) and
 * the end of every loop iteration: schedule, commit, publish,
 * acknowledge.
 *
 * Ordering is what makes a crash harmless.  A consumed message is
 * acknowledged only after the transaction recording its effect commits;
 * if resbusd dies before that, RabbitMQ redelivers it and the handler,
 * being idempotent (tickets by idempotency key, results by resource
 * state), changes nothing twice.  A produced job or event is in the
 * outbox of that same transaction and is deleted only when RabbitMQ
 * confirms it, so it is published at least once.  Replies to a client's
 * reply_to queue are not durable: the client's retry gets a fresh one.
 * The batches, their commit, publishing with confirms and the outbox
 * table are outbox.c's; the handlers that fill the batch are in
 * broker_recv.c, broker_ticket.c and broker_control.c, the queues in
 * broker_topo.c (broker_priv.h lists them).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ev.h>

#include "broker.h"
#include "broker_priv.h"
#include "bus.h"
#include "conf.h"
#include "delivery.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "outbox.h"
#include "peers.h"
#include "sched.h"
#include "store.h"
#include "topo.h"
#include "util.h"

#define BROKER_PREFETCH 1000
/* "<prefix>.ticket.<key>" stays within AMQP's 255 bytes. */
#define RESBUS_PREFIX_MAX 40
#define BROKER_HEARTBEAT_S 1. /* polls, so that heartbeats go out */

void
broker_store_failed(struct broker *b, const char *what)
{
	fatalx("store: %s: %s", what, store_error(b->store));
}

/* sched's emit: a durable message, in the outbox of this transaction. */
static void
broker_emit(
    void *ctx, const char *exchange, const char *key, const ProtobufCMessage *m)
{
	struct broker *b = ctx;

	outbox_emit(&b->outbox, exchange, key, m);
}

/* sched's observer: what users watch, for notifications. */
static void
broker_observe(void *ctx, const struct sched_event *ev)
{
	struct broker *b = ctx;

	notify_observe(b->notify, ev);
	history_observe(b->history, ev);
}

void
broker_ack(struct broker *b, uint64_t tag)
{
	outbox_ack(&b->outbox, tag);
}

static void
broker_wake(void *ctx)
{
	/* The ev_prepare watcher runs before the loop sleeps again. */
	(void)ctx;
}

/* ---- the end of the iteration ------------------------------------------- */

void
broker_lost_bus(struct broker *b, struct bus *bus)
{
	(void)b;
	/* A queue of the other type: restarting would meet it again. */
	if (bus_conflict(bus)) {
		log_warnx("%s", bus_error(bus));
		exit(BUS_EXIT_CONFIG);
	}
	fatalx("AMQP connection lost: %s; exiting so that a supervisor "
	       "restarts resbusd (state is in the store)",
	    bus_error(bus));
}

/* The outbox's callbacks (outbox.h). */
static void
broker_sealed(void *ctx, struct batch *bt)
{
	struct broker *b = ctx;

	notify_seal(b->notify, bt);
}

static void
broker_durable(void *ctx, struct batch *bt)
{
	struct broker *b = ctx;

	/* Their counts are durable: they may be handled now. */
	TAILQ_CONCAT(&b->ready, &bt->held, entry);
	notify_publish(b->notify, bt);
}

static void
broker_outbox_failed(void *ctx, const char *what)
{
	broker_store_failed(ctx, what);
}

static void
broker_outbox_lost_bus(void *ctx, struct bus *bus)
{
	broker_lost_bus(ctx, bus);
}

static void broker_store_watch(struct broker *b);

/*
 * Schedule, then commit what this iteration changed.  One commit is in
 * flight at a time; what happens meanwhile goes into the next.
 */
static void
broker_flush_once(struct broker *b)
{
	(void)broker_handle_ready(b);
	sched_run(b->sched);
	broker_declare_tagsets(b);
	outbox_flush(&b->outbox);
	broker_store_watch(b);
}

static void
broker_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct broker *b = container_of(w, struct broker, flush);

	/* An RPC may have read frames ahead of the socket's readiness. */
	for (;;) {
		broker_flush_once(b);
		if (!TAILQ_EMPTY(&b->ready))
			continue;
		if (bus_pending(b->pub)) {
			if (bus_poll(b->pub, 0) == -1)
				broker_lost_bus(b, b->pub);
			continue;
		}
		if (!bus_pending(b->bus))
			break;
		if (bus_poll(b->bus, 0) == -1)
			broker_lost_bus(b, b->bus);
	}
}

/* Watches a networked store's socket for what it waits for. */
static void
broker_store_watch(struct broker *b)
{
	if (store_fd(b->store) < 0)
		return;
	if (store_want_write(b->store))
		ev_io_start(b->loop, &b->store_wio);
	else
		ev_io_stop(b->loop, &b->store_wio);
}

static void
broker_store_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct broker *b;

	if (revents & EV_WRITE)
		b = container_of(w, struct broker, store_wio);
	else
		b = container_of(w, struct broker, store_rio);

	if (store_io(b->store) == -1)
		broker_store_failed(b, "io");
	broker_store_watch(b);
}

/* Deliveries (and the consuming connection's heartbeats). */
static void
broker_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct broker *b = container_of(w, struct broker, bus_io);

	if (bus_poll(b->bus, 0) == -1)
		broker_lost_bus(b, b->bus);
}

/* Publisher confirms (and the publishing connection's heartbeats). */
static void
broker_pub_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct broker *b = container_of(w, struct broker, pub_io);

	if (bus_poll(b->pub, 0) == -1)
		broker_lost_bus(b, b->pub);
}

/* Either connection lost is the same: resbusd exits (broker_lost_bus). */
static void
broker_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, heartbeat);

	peers_expire(&b->standbys, now_wall_ms());
	if (bus_poll(b->bus, 0) == -1)
		broker_lost_bus(b, b->bus);
	if (bus_poll(b->pub, 0) == -1)
		broker_lost_bus(b, b->pub);
}

/*
 * Connects to AMQP_URL as NAME, trying its nodes from FIRST on, unless a
 * connection came warm (*BUS not NULL, from the standby); -1 (logged)
 * when no node answers.
 */
static int
broker_connect(
    struct bus **bus, const char *amqp_url, size_t first, const char *name)
{
	char err[512];

	if (*bus != NULL)
		return 0;
	*bus = bus_connect_from(amqp_url, first, name, err, sizeof(err));
	if (*bus == NULL) {
		log_warnx("cannot connect to the AMQP broker: %s", err);
		return -1;
	}
	return 0;
}

/* The answer to the lease's keep-alive query: nothing to do. */
static void
broker_lease_answer(void *arg, int found, const char *state, const char *owner,
    const char *delegate, const void *data, size_t data_len)
{
}

/*
 * Keeps the store's session from looking idle: on PostgreSQL a session
 * idle for leader_lease_s ends (so that a paused leader loses its lock),
 * and a quiet but live leader must not.  One primary-key lookup.
 */
static void
broker_lease(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, lease);

	if (store_get_ticket(b->store, 0, broker_lease_answer, NULL) == -1)
		broker_store_failed(b, "keep-alive");
	broker_store_watch(b);
}

void
broker_set_leader(
    struct broker *b, const char *who, int64_t epoch, int64_t since_ms)
{
	free(b->leader);
	b->leader = xstrdup(who);
	b->leader_epoch = epoch;
	b->leader_since_ms = since_ms;
	http_set_leader(b->http, who, epoch, since_ms);
	if (store_fd(b->store) >= 0) {
		ev_timer_init(&b->lease, broker_lease,
		    (double)b->server->leader_lease_s / 3.,
		    (double)b->server->leader_lease_s / 3.);
		ev_timer_start(b->loop, &b->lease);
	}
}

/* The scheduler's and the outbox's state loaded from the store. */
static int
broker_load(struct broker *b)
{
	if (strlen(b->prefix) > RESBUS_PREFIX_MAX) {
		log_warnx("prefix \"%s\" is longer than %d bytes: queue names "
			  "would pass AMQP's 255",
		    b->prefix, RESBUS_PREFIX_MAX);
		return -1;
	}
	b->store->meta_tap = delivery_count_load;
	b->store->meta_tap_arg = b->counts;
	if (sched_load(b->sched, outbox_load, &b->outbox) == -1) {
		log_warnx(
		    "store: cannot load state: %s", store_error(b->store));
		return -1;
	}
	b->store->meta_tap = NULL;
	if (delivery_counts_prune(b->counts, b->store) == -1)
		broker_store_failed(b, "delivery count");
	return 0;
}

/*
 * Two connections, as RabbitMQ's flow control blocks a connection that
 * publishes faster than its queues take: on one, that would stop the
 * acknowledgements and deliveries too.  One consumes and acknowledges,
 * the other publishes with confirms.  The queues are set up, and the
 * loop watches both connections and the store's socket.
 */
static int
broker_bus_setup(struct broker *b, const char *amqp_url)
{
	if (broker_connect(&b->bus, amqp_url, 0, "resbusd") == -1 ||
	    broker_connect(
		&b->pub, amqp_url, bus_node(b->bus), "resbusd (publish)") == -1)
		return -1;
	b->outbox.bus = b->bus;
	b->outbox.pub = b->pub;
	if (bus_qos(b->bus, BROKER_PREFETCH) == -1) {
		log_warnx("cannot set up the bus: %s", bus_error(b->bus));
		return -1;
	}
	if (bus_confirm_select(b->pub, outbox_on_confirm, &b->outbox) == -1) {
		log_warnx("cannot set up the bus: %s", bus_error(b->pub));
		return -1;
	}
	if (broker_topo_setup(b) == -1)
		return -1;

	ev_io_init(&b->bus_io, broker_readable, bus_fd(b->bus), EV_READ);
	ev_io_start(b->loop, &b->bus_io);
	ev_io_init(&b->pub_io, broker_pub_readable, bus_fd(b->pub), EV_READ);
	ev_io_start(b->loop, &b->pub_io);
	if (store_fd(b->store) >= 0) {
		ev_io_init(&b->store_rio, broker_store_io, store_fd(b->store),
		    EV_READ);
		ev_io_init(&b->store_wio, broker_store_io, store_fd(b->store),
		    EV_WRITE);
		ev_io_start(b->loop, &b->store_rio);
	}
	return 0;
}

/* What shows the broker: notifications, the status page, its history. */
static int
broker_faces(struct broker *b)
{
	const struct conf_server *server = b->server;

	if (server->notify && (b->notify = notify_new(server, b->pub)) == NULL)
		return -1;
	/* A status page that cannot listen is logged, not fatal. */
	if (http_listen_enabled(server->http_listen))
		b->http = http_new(b->loop, server->http_listen, b->sched);
	http_set_standbys(b->http, &b->standbys);
	if (b->http != NULL) {
		b->history = history_new((double)server->history_interval_s);
		history_run(b->history, b->loop, b->sched);
		http_set_history(b->http, b->history);
	}
	return 0;
}

struct broker *
broker_new(struct ev_loop *loop, const char *amqp_url,
    const struct conf_server *server, struct conf_pools *pools,
    const char *pools_path, struct store *store, struct bus *bus,
    struct bus *pub)
{
	struct sched_ops ops = {
	    broker_emit, broker_wake, broker_observe, NULL, broker_retire};
	struct outbox_ops oops = {broker_sealed, broker_durable,
	    broker_outbox_failed, broker_outbox_lost_bus, NULL};
	struct broker *b = xcalloc(1, sizeof(*b));

	b->loop = loop;
	b->bus = bus;
	b->pub = pub;
	b->store = store;
	b->server = server;
	b->pools = pools;
	b->pools_path = xstrdup(pools_path);
	b->prefix =
	    xstrdup(server->prefix ? server->prefix : RESBUS_DEFAULT_PREFIX);
	oops.ctx = b;
	outbox_init(&b->outbox, loop, store, &oops);
	TAILQ_INIT(&b->ready);
	b->counts = delivery_counts_new();
	b->dead_exchange = topo_dead_exchange(b->prefix);
	ops.ctx = b;
	b->sched = sched_new(loop, store, b->prefix, pools, &ops);
	sched_set_policy(b->sched, server);
	if (broker_load(b) == -1 || broker_bus_setup(b, amqp_url) == -1 ||
	    broker_faces(b) == -1)
		goto fail;
	ev_prepare_init(&b->flush, broker_flush);
	ev_prepare_start(loop, &b->flush);
	ev_timer_init(&b->heartbeat, broker_heartbeat, BROKER_HEARTBEAT_S,
	    BROKER_HEARTBEAT_S);
	ev_timer_start(loop, &b->heartbeat);
	log_info("resbusd serving %zu pools, %zu open tickets", pools->npools,
	    sched_open_tickets(b->sched));
	return b;
fail:
	if ((b->bus != NULL && bus_conflict(b->bus)) ||
	    (b->pub != NULL && bus_conflict(b->pub)))
		exit(BUS_EXIT_CONFIG);
	broker_free(b);
	return NULL;
}

int
broker_reload(struct broker *b, char *err, size_t errlen)
{
	struct conf_pools *fresh;

	fresh = conf_pools_load(b->pools_path, err, errlen);
	if (fresh == NULL)
		return -1;
	if (broker_topo_pools(b, fresh, err, errlen) == -1) {
		conf_pools_free(fresh);
		return -1;
	}
	sched_set_pools(b->sched, fresh);
	conf_pools_free(b->pools);
	b->pools = fresh;
	log_info("reloaded %s: %zu pools", b->pools_path, fresh->npools);
	return 0;
}

void
broker_free(struct broker *b)
{
	int i;

	if (b == NULL)
		return;
	if (b->bus != NULL && b->pub != NULL) {
		ev_io_stop(b->loop, &b->bus_io);
		ev_io_stop(b->loop, &b->pub_io);
		ev_io_stop(b->loop, &b->store_rio);
		ev_io_stop(b->loop, &b->store_wio);
		ev_prepare_stop(b->loop, &b->flush);
		ev_timer_stop(b->loop, &b->heartbeat);
		ev_timer_stop(b->loop, &b->lease);
		outbox_stop(&b->outbox);
		/* Finish the last commit, and give confirms a moment so that
		 * the outbox stays small and the acknowledgements go out;
		 * what is left is re-sent (or redelivered) at start. */
		for (i = 0;
		     i < 50 && (b->outbox.committing || b->store->in_txn ||
				   !TAILQ_EMPTY(&b->outbox.inflight));
		     i++) {
			broker_flush_once(b);
			if (b->outbox.committing && store_io(b->store) == -1)
				break;
			if (bus_poll(b->pub, 10) == -1 ||
			    bus_poll(b->bus, 0) == -1)
				break;
		}
	}
	bus_free(b->pub);
	bus_free(b->bus);
	/* The held deliveries of the batch never committed go with the rest. */
	TAILQ_CONCAT(&b->ready, &b->outbox.cur->held, entry);
	outbox_clear(&b->outbox);
	broker_held_clear(&b->ready);
	delivery_counts_free(b->counts);
	strv_free(b->new_tagsets, b->nnew_tagsets);
	free(b->dead_exchange);
	free(b->leader);
	http_free(b->http);
	history_free(b->history);
	notify_free(b->notify);
	sched_free(b->sched);
	conf_pools_free(b->pools);
	free(b->pools_path);
	free(b->prefix);
	free(b);
}
