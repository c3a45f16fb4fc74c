/*
 * client_conn -- the client library's connection: the bus, the reply
 * queue, and the RPC in flight.
 *
 * One AMQP connection per client, with an exclusive, auto-delete,
 * server-named reply queue consumed without acks.  Every call is an RPC:
 * publish a request carrying reply_to and a fresh correlation_id, then
 * poll the connection until the reply with that correlation_id arrives
 * or the deadline passes.  Replies to other correlation ids (answers to
 * an earlier call that timed out) are dropped, and so is the TicketUpdate
 * resbusd pushes, without a correlation id, when a ticket this client
 * took becomes READY or FAILED: a wait asks resbusd itself.  What comes
 * in is dispatched here: events to client_wake (client_wait.c), answers
 * to an asynchronous call to client_call_answer (client_async.c), the
 * blocking RPC's answer into c->reply.
 *
 * The client makes sure the core topology exists (topo_ensure_core: a
 * passive look first, as a client of the permissions recipe may not
 * declare it; a declare only when it is missing), so a request published
 * before resbusd ever ran lands in a durable queue and is served when the
 * broker starts, instead of being dropped by an exchange that does not
 * exist yet.
 *
 * The blocking calls survive the loss of their RabbitMQ node: when the
 * connection fails, the client connects to the next node of the URL list
 * that answers (0.2 s apart at first, doubling up to
 * CLIENT_RECONNECT_MAX_MS, within the call's deadline), declares its
 * queues again, binds the wait's events again, and publishes the request
 * in flight again, byte for byte: its answer went to the reply queue of
 * the lost connection.  That is safe because every request is idempotent
 * for resbusd (a ticket request by its idempotency key; query, close and
 * renew by their nature).  A wait queries once more after reconnecting,
 * for the events it may have missed.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "client.h"
#include "client_priv.h"
#include "msg.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

/* Longest single bus_poll(), so a wait without limit still ticks. */
#define CLIENT_POLL_SLICE_MS 1000
/* Reconnecting: first after this, doubling up to the maximum. */
#define CLIENT_RECONNECT_MIN_MS 200
#define CLIENT_RECONNECT_MAX_MS 5000
/* A publish that fails reconnects for at most this long. */
#define CLIENT_PUBLISH_RECONNECT_MS 60000
/*
 * A request in flight without an answer is published again after this
 * long, then after twice that, up to the maximum: a quorum queue whose
 * leader died drops what is published to it until it has a new leader,
 * and the client does not wait for confirms.  resbusd takes repeats as
 * one (idempotency key, correlation id); a reconnect publishes at once.
 */
#define CLIENT_RESEND_MS 2000
#define CLIENT_RESEND_MAX_MS 30000

void
client_seterr(struct resbus_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

/*
 * Writes URL without its user name and password into BUF, as
 * scheme://host:port/vhost, so that error messages never show a secret.
 */
static void
client_url_redact_one(const char *url, char *buf, size_t len)
{
	const char *scheme = "amqp", *port = "5672";
	const char *p, *host, *end, *q;
	bool has_port = false;
	char *cut;

	if (strncmp(url, "amqps://", 8) == 0) {
		scheme = "amqps";
		port = "5671";
		p = url + 8;
	} else if (strncmp(url, "amqp://", 7) == 0)
		p = url + 7;
	else {
		snprintf(buf, len, "%s", "(not an amqp:// URL)");
		return;
	}
	end = p + strcspn(p, "/?");
	/* The last '@' before the path ends the credentials. */
	for (host = end; host > p && host[-1] != '@'; host--)
		;
	/* A port is a ':' after the host, outside an [IPv6] literal. */
	for (q = end; q > host && q[-1] != ':' && q[-1] != ']'; q--)
		;
	if (q > host && q[-1] == ':')
		has_port = true;
	if (host == end)
		snprintf(buf, len, "%s://localhost:%s/", scheme, port);
	else
		snprintf(buf, len, "%s://%.*s%s%s/", scheme, (int)(end - host),
		    host, has_port ? "" : ":", has_port ? "" : port);
	if (*end == '/')
		strlcat(buf, end + 1, len);
	/* A query string may carry options; leave it out. */
	if ((cut = strchr(buf, '?')) != NULL)
		*cut = '\0';
}

/* The same for each node of a comma-separated list. */
static void
client_url_redact(const char *url, char *buf, size_t len)
{
	char *copy = xstrdup(url), *tok, *save = NULL, one[512];

	buf[0] = '\0';
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		client_url_redact_one(tok, one, sizeof(one));
		if (buf[0] != '\0')
			strlcat(buf, ",", len);
		strlcat(buf, one, len);
	}
	if (buf[0] == '\0')
		client_url_redact_one(url, buf, len);
	free(copy);
}

static bool
client_is_event(const struct resbus_client *c, const struct bus_delivery *d)
{
	return d->exchange != NULL &&
	       strcmp(d->exchange, c->event_exchange) == 0;
}

static void
client_deliver(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct resbus_client *c = arg;
	struct resbus_call *call;
	ProtobufCMessage *m;

	(void)bus;
	if (client_is_event(c, d)) {
		client_wake(c, d);
		return;
	}
	if (d->type == NULL)
		return;
	/* An asynchronous request's answer? */
	for (call = c->calls; call != NULL && d->correlation_id != NULL;
	     call = call->next)
		if (strcmp(d->correlation_id, call->corr) == 0) {
			client_call_answer(
			    c, call, msg_unpack(d->type, d->body, d->len));
			return;
		}
	/* A reply: only the one to the RPC in flight counts. */
	if (d->correlation_id == NULL || c->corr[0] == '\0' ||
	    strcmp(d->correlation_id, c->corr) != 0)
		return;
	if (c->reply != NULL || c->reply_bad != NULL)
		return;
	if ((m = msg_unpack(d->type, d->body, d->len)) == NULL) {
		c->reply_bad = xstrdup(d->type);
		return;
	}
	c->reply = m;
}

static int client_setup(struct resbus_client *c, char *err, size_t errlen);

static void
client_sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1)
		;
}

/*
 * Publishes the request in flight again, if one waits for its answer,
 * and again later if it still does (CLIENT_RESEND_MS, doubling).  0, or
 * -1 with the error set.
 */
static int
client_resend(struct resbus_client *c)
{
	struct bus_props props;

	if (c->corr[0] == '\0' || c->last_body == NULL || c->reply != NULL ||
	    c->reply_bad != NULL) {
		c->resend_at = 0;
		return 0;
	}
	memset(&props, 0, sizeof(props));
	props.type = c->last_type;
	props.content_type = MSG_CONTENT_TYPE;
	props.reply_to = c->reply_queue;
	props.correlation_id = c->corr;
	props.user_id = bus_user(c->bus);
	props.persistent = c->last_persistent;
	if (bus_publish(c->bus, c->last_exchange, c->last_key, &props,
		c->last_body, c->last_len, NULL) == -1) {
		client_seterr(c, "cannot publish %s again: %s", c->last_type,
		    bus_error(c->bus));
		return -1;
	}
	if (c->resend_ms == 0)
		c->resend_ms = CLIENT_RESEND_MS;
	else
		c->resend_ms = c->resend_ms * 2 > CLIENT_RESEND_MAX_MS
				   ? CLIENT_RESEND_MAX_MS
				   : c->resend_ms * 2;
	c->resend_at = now_mono_ms() + c->resend_ms;
	return 0;
}

/*
 * The connection failed: connects to the next node that answers, sets
 * the queues up again and publishes the request in flight again.  0, or
 * -1 with the error set when DEADLINE (-1: none) passed first or a queue
 * exists with the other type.
 */
int
client_reconnect(struct resbus_client *c, int64_t deadline)
{
	struct bus *bus;
	int64_t delay = CLIENT_RECONNECT_MIN_MS, t0 = now_mono_ms(), left;
	char lost[512], why[1024];

	snprintf(lost, sizeof(lost), "%s", bus_error(c->bus));
	for (;;) {
		bus = bus_connect_from(c->url, bus_node(c->bus) + 1,
		    "resbus client", why, sizeof(why));
		if (bus != NULL) {
			bus_free(c->bus);
			c->bus = bus;
			if (client_setup(c, why, sizeof(why)) == 0)
				break;
			if (bus_conflict(bus)) {
				client_seterr(c, "%s", why);
				return -1;
			}
		}
		left = deadline < 0 ? delay : deadline - now_mono_ms();
		if (left <= 0) {
			client_seterr(c,
			    "connection to the bus failed: %s; "
			    "reconnecting failed: %s",
			    lost, why);
			return -1;
		}
		client_sleep_ms(delay < left ? delay : left);
		delay = delay * 2 > CLIENT_RECONNECT_MAX_MS
			    ? CLIENT_RECONNECT_MAX_MS
			    : delay * 2;
	}
	/* An event may have come while no queue was there: ask again. */
	if (c->watching)
		c->woken = true;
	if (client_resend(c) == -1)
		return -1;
	fprintf(stderr,
	    "resbus: connection to the bus lost (%s); "
	    "reconnected to node %zu in %lld ms\n",
	    lost, bus_node(c->bus) + 1, (long long)(now_mono_ms() - t0));
	return 0;
}

/*
 * Polls the connection until DONE(c) holds or DEADLINE (monotonic ms, -1:
 * none) passes.  0 when done, 1 on timeout, -1 when the connection failed
 * and could not be made again.
 */
int
client_pump(struct resbus_client *c, int64_t deadline,
    bool (*done)(const struct resbus_client *))
{
	int64_t left;
	int slice;

	for (;;) {
		if (done(c)) {
			c->resend_at = 0;
			return 0;
		}
		if (c->resend_at != 0 && now_mono_ms() >= c->resend_at &&
		    client_resend(c) == -1 &&
		    client_reconnect(c, deadline) == -1)
			return -1;
		if (bus_pending(c->bus))
			slice = 0;
		else if (deadline < 0)
			slice = CLIENT_POLL_SLICE_MS;
		else {
			left = deadline - now_mono_ms();
			if (left <= 0)
				return 1;
			slice = left < CLIENT_POLL_SLICE_MS
				    ? (int)left
				    : CLIENT_POLL_SLICE_MS;
		}
		if (c->resend_at != 0 && slice > CLIENT_RESEND_MS / 4)
			slice = CLIENT_RESEND_MS / 4;
		if (bus_poll(c->bus, slice) < 0 &&
		    client_reconnect(c, deadline) == -1)
			return -1;
	}
}

bool
client_rpc_done(const struct resbus_client *c)
{
	return c->reply != NULL || c->reply_bad != NULL;
}

int64_t
client_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_mono_ms() + timeout_ms;
}

int
client_seconds(int timeout_ms)
{
	return (timeout_ms + 999) / 1000;
}

void
client_rpc_reset(struct resbus_client *c)
{
	if (c->reply != NULL)
		msg_free(c->reply);
	c->reply = NULL;
	free(c->reply_bad);
	c->reply_bad = NULL;
	c->corr[0] = '\0';
	free(c->last_exchange);
	free(c->last_key);
	free(c->last_type);
	free(c->last_body);
	c->last_exchange = c->last_key = c->last_type = NULL;
	c->last_body = NULL;
}

/*
 * Publishes M to EXCHANGE/KEY with correlation id CORR, answered on our
 * reply queue.  0 or -1 with the error set.
 */
int
client_publish(struct resbus_client *c, const char *exchange, const char *key,
    const ProtobufCMessage *m, const char *corr)
{
	struct bus_props props;
	void *body;
	size_t len;
	int rc;

	memset(&props, 0, sizeof(props));
	props.type = msg_type(m);
	props.content_type = MSG_CONTENT_TYPE;
	props.reply_to = c->reply_queue;
	props.correlation_id = corr;
	props.user_id = bus_user(c->bus);
	/*
	 * Requests, closes and renewals must outlive a RabbitMQ restart; a
	 * query is worth nothing without its asker, whose reply queue does
	 * not outlive the connection, so it is spared the disk.
	 */
	props.persistent =
	    m->descriptor != &resbus__v1__ticket_query__descriptor;
	body = msg_pack(m, &len);
	rc = bus_publish(c->bus, exchange, key, &props, body, len, NULL);
	if (corr == c->corr && c->url != NULL) {
		/* The blocking RPC: kept to publish again after a reconnect. */
		free(c->last_exchange);
		free(c->last_key);
		free(c->last_type);
		free(c->last_body);
		c->last_exchange = xstrdup(exchange);
		c->last_key = xstrdup(key);
		c->last_type = xstrdup(props.type);
		c->last_body = body;
		c->last_len = len;
		c->last_persistent = props.persistent;
		body = NULL;
		c->resend_ms = CLIENT_RESEND_MS;
		c->resend_at = now_mono_ms() + CLIENT_RESEND_MS;
		/* The reconnect publishes it again. */
		if (rc == -1)
			rc = client_reconnect(
			    c, now_mono_ms() + CLIENT_PUBLISH_RECONNECT_MS);
		return rc;
	}
	free(body);
	if (rc == -1)
		client_seterr(
		    c, "cannot publish %s: %s", props.type, bus_error(c->bus));
	return rc;
}

/*
 * Publishes M to EXCHANGE/KEY as the new blocking RPC in flight (fresh
 * correlation id).  0 or -1 with the error set.
 */
int
client_send(struct resbus_client *c, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	client_rpc_reset(c);
	uuid_make(c->corr);
	return client_publish(c, exchange, key, m, c->corr);
}

/*
 * Waits for the reply to the RPC in flight.  0 with c->reply set, 1 on
 * timeout, -1 on error (set).  The error of a refused request is the
 * broker's message, and -1.
 */
int
client_await(struct resbus_client *c, int timeout_ms)
{
	const Resbus__V1__Error *e;
	int rc;

	rc = client_pump(c, client_deadline(timeout_ms), client_rpc_done);
	if (rc != 0)
		return rc;
	if (c->reply_bad != NULL) {
		client_seterr(c, "undecodable reply of type %s from resbusd",
		    c->reply_bad);
		return -1;
	}
	if (c->reply->descriptor == &resbus__v1__error__descriptor) {
		e = (const Resbus__V1__Error *)c->reply;
		client_seterr(c, "%s",
		    e->message != NULL && *e->message
			? e->message
			: "resbusd refused the request");
		return -1;
	}
	return 0;
}

/* Takes ownership of BUS. */
static struct resbus_client *
client_alloc(struct bus *bus, const char *url, const char *prefix)
{
	struct resbus_client *c;

	c = xcalloc(1, sizeof(*c));
	c->bus = bus;
	c->url = xstrdup(url);
	c->queue_flags = topo_queue_flags(getenv("RESBUS_QUEUE_TYPE"));
	c->prefix = xstrdup(prefix);
	c->ticket_exchange = topo_ticket_exchange(prefix);
	c->request_queue = topo_request_queue(prefix);
	c->event_exchange = topo_event_exchange(prefix);
	return c;
}

/*
 * Connects to URL with bus prefix PREFIX (NULL: "resbus"), declares the
 * core topology and the reply queue.  NULL with a message in ERR on
 * failure; the message shows the URL without its credentials.  Caller
 * frees the client with resbus_client_free().
 */
struct resbus_client *
resbus_client_new(const char *url, const char *prefix, char *err, size_t errlen)
{
	struct resbus_client *c;
	struct bus *bus;
	char shown[512], why[512];

	if (prefix == NULL)
		prefix = RESBUS_DEFAULT_PREFIX;
	client_url_redact(url, shown, sizeof(shown));
	if ((bus = bus_connect(url, "resbus client", why, sizeof(why))) ==
	    NULL) {
		snprintf(err, errlen, "cannot connect to %s: %s", shown, why);
		return NULL;
	}
	c = client_alloc(bus, url, prefix);
	/* A node dying under the set-up: the next one, as a reconnect does. */
	if (client_setup(c, why, sizeof(why)) == -1 &&
	    (bus_conflict(c->bus) || !bus_broken(c->bus) ||
		client_reconnect(
		    c, now_mono_ms() + CLIENT_PUBLISH_RECONNECT_MS) == -1)) {
		snprintf(err, errlen, "%s: %s", shown, why);
		resbus_client_free(c);
		return NULL;
	}
	return c;
}

/*
 * Declares what the client needs on c->bus, fresh or after a reconnect:
 * the core topology, the reply queue and, if it had them, the event queue
 * with its bindings.  0, or -1 with a message in ERR.
 */
static int
client_setup(struct resbus_client *c, char *err, size_t errlen)
{
	struct resbus_watch *w;
	bool had_events = c->event_queue != NULL;

	free(c->reply_queue);
	c->reply_queue = NULL;
	free(c->event_queue);
	c->event_queue = NULL;
	if (topo_ensure_core(c->bus, c->prefix, c->queue_flags) == -1) {
		snprintf(err, errlen, "cannot declare the %s exchanges: %s",
		    c->prefix, bus_error(c->bus));
		return -1;
	}
	if (bus_queue_declare(c->bus, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE,
		&c->reply_queue, NULL, NULL) == -1 ||
	    bus_consume(c->bus, c->reply_queue, true, client_deliver, c) ==
		-1) {
		snprintf(err, errlen, "cannot set up a reply queue: %s",
		    bus_error(c->bus));
		return -1;
	}
	if (!had_events)
		return 0;
	if (client_event_queue(c) == -1) {
		snprintf(err, errlen, "%s", c->error);
		return -1;
	}
	if (c->watch_key != NULL &&
	    bus_queue_bind(c->bus, c->event_queue, c->event_exchange,
		c->watch_key) == -1) {
		snprintf(err, errlen, "cannot bind the event queue: %s",
		    bus_error(c->bus));
		return -1;
	}
	/* Binding a ticket's key again for its twins changes nothing. */
	for (w = c->watches; w != NULL; w = w->next)
		if (bus_queue_bind(c->bus, c->event_queue, c->event_exchange,
			w->key) == -1) {
			snprintf(err, errlen, "cannot bind the event queue: %s",
			    bus_error(c->bus));
			return -1;
		}
	return 0;
}

/* Closes the connection and frees C and everything it holds. */
void
resbus_client_free(struct resbus_client *c)
{
	struct resbus_call *call;
	struct resbus_watch *w;

	if (c == NULL)
		return;
	client_rpc_reset(c);
	if (c->watch_done != NULL)
		msg_free(&c->watch_done->base);
	while ((call = c->calls) != NULL) {
		c->calls = call->next;
		free(call);
	}
	while ((w = c->watches) != NULL) {
		c->watches = w->next;
		free(w->key);
		free(w);
	}
	bus_free(c->bus);
	free(c->url);
	free(c->prefix);
	free(c->ticket_exchange);
	free(c->request_queue);
	free(c->event_exchange);
	free(c->reply_queue);
	free(c->event_queue);
	free(c);
}

/* The last error message.  Borrowed until the next call on C. */
const char *
resbus_client_error(const struct resbus_client *c)
{
	return c->error;
}

/*
 * Whether someone consumes the request queue: a passive declare reports
 * its consumer count.  A missing queue means no broker; -1 if the bus
 * failed.
 */
int
resbus_client_broker_present(struct resbus_client *c)
{
	uint32_t consumers = 0;

	if (bus_queue_declare(c->bus, c->request_queue, BUS_PASSIVE, NULL, NULL,
		&consumers) == -1) {
		/* A missing queue leaves the channel usable; a dead bus not. */
		if (bus_poll(c->bus, 0) < 0) {
			client_seterr(c, "connection to the bus failed: %s",
			    bus_error(c->bus));
			return -1;
		}
		return 0;
	}
	return consumers > 0;
}

/* A private queue for ticket events, made once per client. */
int
client_event_queue(struct resbus_client *c)
{
	if (c->event_queue != NULL)
		return 0;
	if (bus_queue_declare(c->bus, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE,
		&c->event_queue, NULL, NULL) == -1 ||
	    bus_consume(c->bus, c->event_queue, true, client_deliver, c) ==
		-1) {
		client_seterr(
		    c, "cannot set up an event queue: %s", bus_error(c->bus));
		return -1;
	}
	return 0;
}
