/*
 * client -- the blocking C client library behind the `resbus` CLI.
 *
 * One AMQP connection per client, with an exclusive, auto-delete,
 * server-named reply queue consumed without acks.  Every call is an RPC:
 * publish a request carrying reply_to and a fresh correlation_id, then
 * poll the connection until the reply with that correlation_id arrives
 * or the deadline passes.  Replies to other correlation ids (answers to
 * an earlier call that timed out) are dropped, and so is the TicketUpdate
 * resbusd pushes, without a correlation id, when a ticket this client
 * took becomes READY or FAILED: a wait asks resbusd itself.
 *
 * The client makes sure the core topology exists (topo_ensure_core: a
 * passive look first, as a client of the permissions recipe may not
 * declare it; a declare only when it is missing), so a request published
 * before resbusd ever ran lands in a durable queue and is served when the
 * broker starts, instead of being dropped by an exchange that does not
 * exist yet.
 *
 * Waiting for a ticket binds a second queue to ticket.<id>.* on the event
 * exchange *before* querying the ticket once: an update published between
 * the query's answer and the binding cannot be lost that way.  The queue
 * is made on the first wait and reused by later ones.
 *
 * An event is only a wake-up.  Any bus user may publish on the event
 * exchange, so a `ticket.<id>.ready` there proves nothing; the client
 * asks resbusd again (a TicketQuery on the request queue, answered on
 * its own exclusive reply queue, whose name and correlation ids nobody
 * else knows) and takes the state and the output from that answer only.
 * Wake-ups are coalesced (one query in flight) and spaced by
 * CLIENT_REQUERY_MIN_MS, so a flood of forged events costs resbusd at
 * most a few queries a second per waiter.
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
 *
 * Besides the blocking calls, the client can be driven from an event
 * loop (resbus-xmlrpc): requests are sent without waiting, each with its
 * own correlation id and callback, and wake-ups reach watchers of a
 * ticket.  The two styles are not mixed on one client.
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
#include "msg.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

/* Longest single bus_poll(), so a wait without limit still ticks. */
#define CLIENT_POLL_SLICE_MS 1000
/* Wake-up queries of one wait are at least this far apart. */
#define CLIENT_REQUERY_MIN_MS 200
/*
 * A wait that shows its progress asks again this often without an event
 * (the reason a ticket waits changes without one: a resource starts for
 * it, a pool fills up), and tells its function at least this often.
 */
#define CLIENT_PROGRESS_REQUERY_MS 2000
#define CLIENT_PROGRESS_TICK_MS 1000
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

enum client_call_kind { CALL_TAKE, CALL_QUERY, CALL_CLOSE };

/* An asynchronous request in flight (resbus_*_send). */
struct resbus_call {
	struct resbus_call *next, *prev;
	enum client_call_kind kind;
	uint64_t id; /* the ticket asked about */
	char corr[37];
	resbus_answer_fn *fn;
	void *arg;
};

/* A watcher of one ticket's events (resbus_watch_add). */
struct resbus_watch {
	struct resbus_watch *next, *prev;
	uint64_t id;
	char *key; /* ticket.<id>.*, bound while a watcher of ID exists */
	resbus_wake_fn *fn;
	void *arg;
};

struct resbus_client {
	struct bus *bus;
	char *url;	      /* the nodes, for reconnecting */
	unsigned queue_flags; /* RESBUS_QUEUE_TYPE, for topo_ensure_core */
	char *prefix;
	char *ticket_exchange;
	char *request_queue;
	char *event_exchange;
	char *reply_queue;
	char *event_queue; /* made on the first wait */

	/* The RPC in flight, and what it published, to publish again. */
	char corr[37];
	char *last_exchange;
	char *last_key;
	char *last_type;
	void *last_body;
	size_t last_len;
	bool last_persistent;
	int64_t resend_at; /* unanswered: publish again then (0: no) */
	int64_t resend_ms; /* and the wait before the next time */
	char *watch_key;   /* the blocking wait's binding (ticket.<id>.*) */
	ProtobufCMessage *reply; /* its answer, owned */
	char *reply_bad;	 /* the type of an answer that did not decode */

	/*
	 * The ticket a blocking wait watches, whether an event woke it
	 * since its last query, and the answer that ends it.
	 */
	bool watching;
	bool woken;
	uint64_t watch_id;
	Resbus__V1__TicketUpdate *watch_done; /* owned */
	/* What a wait with a progress function shows. */
	resbus_wait_progress_fn *progress;
	void *progress_arg;
	char *watch_reason;    /* resbusd's latest waiting_reason, or NULL */
	int64_t watch_created; /* the ticket's creation, wall clock; 0 */
	int64_t watch_start;   /* the wait's start, monotonic */

	/* Asynchronous use. */
	struct resbus_call *calls;
	struct resbus_watch *watches;
	bool failed; /* the connection failed; the calls were answered */

	char error[512];
};

static void client_seterr(struct resbus_client *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
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

/* Whether update U ends a wait: a resource, or failed, closed, unknown. */
static bool
client_update_final(const Resbus__V1__TicketUpdate *u)
{
	return u->assigned ||
	       u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN ||
	       u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED ||
	       u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED;
}

/*
 * resbusd's answer to a wait's query (M, taken over).  Kept when it ends
 * the wait.  Never called with an event: events only wake.
 */
static void
client_watch(struct resbus_client *c, ProtobufCMessage *m)
{
	Resbus__V1__TicketUpdate *u;

	if (m->descriptor != &resbus__v1__ticket_update__descriptor) {
		msg_free(m);
		return;
	}
	u = (Resbus__V1__TicketUpdate *)m;
	if (!c->watching || c->watch_done != NULL ||
	    u->ticket_id != c->watch_id) {
		msg_free(m);
		return;
	}
	if (client_update_final(u)) {
		c->watch_done = u;
		return;
	}
	free(c->watch_reason);
	c->watch_reason =
	    u->waiting_reason != NULL && *u->waiting_reason != '\0'
		? xstrdup(u->waiting_reason)
		: NULL;
	if (u->created_ms > 0)
		c->watch_created = u->created_ms;
	msg_free(m);
}

/*
 * The ticket an event's routing key (ticket.<id>.<state>) names; -1 if
 * it names none.  The body is not read: whoever published it, an event
 * says no more than "ask again about ticket <id>".
 */
static int
client_event_ticket(const struct bus_delivery *d, uint64_t *id)
{
	const char *k = d->routing_key, *dot;
	char digits[24];
	size_t n;

	if (k == NULL || strncmp(k, "ticket.", 7) != 0)
		return -1;
	k += 7;
	if ((dot = strchr(k, '.')) == NULL || (n = (size_t)(dot - k)) == 0 ||
	    n >= sizeof(digits))
		return -1;
	memcpy(digits, k, n);
	digits[n] = '\0';
	return parse_u64(digits, id);
}

static void client_call_answer(
    struct resbus_client *, struct resbus_call *, ProtobufCMessage *);

/* Wakes the blocking wait or the watchers of the ticket event D names. */
static void
client_wake(struct resbus_client *c, const struct bus_delivery *d)
{
	struct resbus_watch *w, *next;
	uint64_t id;

	if (client_event_ticket(d, &id) == -1)
		return;
	if (c->watching && id == c->watch_id)
		c->woken = true;
	for (w = c->watches; w != NULL; w = next) {
		next = w->next;
		if (w->id == id)
			w->fn(w->arg, id);
	}
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
static int client_event_queue(struct resbus_client *c);

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
static int
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
static int
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

static bool
client_rpc_done(const struct resbus_client *c)
{
	return c->reply != NULL || c->reply_bad != NULL;
}

static bool
client_woken(const struct resbus_client *c)
{
	return c->woken;
}

static bool
client_never(const struct resbus_client *c)
{
	(void)c;
	return false;
}

static int64_t
client_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_mono_ms() + timeout_ms;
}

static int
client_seconds(int timeout_ms)
{
	return (timeout_ms + 999) / 1000;
}

static void
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
static int
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
static int
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
static int
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

/*
 * The reply in flight as a TicketUpdate, or NULL with the error set when
 * resbusd answered with something else.  Borrowed until the next RPC.
 */
static const Resbus__V1__TicketUpdate *
client_reply_update(struct resbus_client *c)
{
	if (c->reply->descriptor != &resbus__v1__ticket_update__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		return NULL;
	}
	return (const Resbus__V1__TicketUpdate *)c->reply;
}

static void
client_info_fill(
    struct resbus_ticket_info *info, const Resbus__V1__TicketUpdate *u)
{
	memset(info, 0, sizeof(*info));
	info->id = u->ticket_id;
	info->exists =
	    u->state != RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN;
	info->assigned = u->assigned;
	info->closed =
	    u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED;
	info->failed =
	    u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED;
	/* As resalloc's ticket-check: a resource, and the ticket still open. */
	info->ready =
	    u->assigned &&
	    (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN ||
		u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_READY);
	info->output_len = u->output.len;
	info->output = xmalloc(u->output.len + 1);
	if (u->output.len > 0)
		memcpy(info->output, u->output.data, u->output.len);
	info->output[u->output.len] = '\0';
	if (u->waiting_reason != NULL && *u->waiting_reason != '\0')
		info->waiting_reason = xstrdup(u->waiting_reason);
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

/*
 * Asks for a ticket.  The request goes to the ticket exchange with the
 * canonical tag-set key as its routing key, so it waits in the durable
 * queue of its tag set (or the unrouted queue) until resbusd takes it.
 */
int
resbus_ticket_take(struct resbus_client *c, char *const *tags, size_t ntags,
    const char *sandbox, int timeout_ms, uint64_t *id, bool *timed_out)
{
	struct resbus_ticket_opts opts = {.sandbox = sandbox};

	return resbus_ticket_take_opts(
	    c, tags, ntags, &opts, timeout_ms, id, timed_out);
}

/*
 * Checks the tags and options of a ticket request, and publishes it with
 * correlation id CORR.  0, or -1 with the error set (nothing sent when
 * the input is bad).
 */
static int
client_take_publish(struct resbus_client *c, char *const *tags, size_t ntags,
    const struct resbus_ticket_opts *opts, const char *corr)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__TicketRequest__LabelsEntry *entries = NULL, **ep = NULL;
	const char *sandbox = opts->sandbox;
	const char *bad = NULL, *eq;
	char key_uuid[37];
	char *key, **canon, **lk = NULL;
	size_t ncanon, i;
	int rc;

	if ((key = tagset_key(tags, ntags, &bad)) == NULL) {
		if (bad != NULL)
			client_seterr(c,
			    "invalid tag '%s' (allowed: letters, "
			    "digits and _.:=- up to %d characters, not "
			    "starting with . or -)",
			    bad, TAG_MAX_LEN);
		else if (ntags == 0)
			client_seterr(c, "a ticket needs at least one tag");
		else
			client_seterr(
			    c, "too many tags (at most %d)", TAGSET_MAX_TAGS);
		return -1;
	}
	if (sandbox != NULL && !sandbox_valid(sandbox)) {
		client_seterr(c,
		    "invalid sandbox '%s' (printable ASCII without "
		    "spaces, quotes, \\, ` or $, up to 128 characters)",
		    sandbox);
		free(key);
		return -1;
	}
	/* The request carries the tags of its key: sorted, no duplicates. */
	if (tagset_split(key, &canon, &ncanon) == -1) {
		client_seterr(c, "cannot split tag-set key %s", key);
		free(key);
		return -1;
	}
	uuid_make(key_uuid);
	req.idempotency_key = key_uuid;
	req.n_tags = ncanon;
	req.tags = canon;
	if (sandbox != NULL)
		req.sandbox = (char *)sandbox;
	if (opts->nlabels > 0) {
		entries = xcalloc(opts->nlabels, sizeof(*entries));
		ep = xcalloc(opts->nlabels, sizeof(*ep));
		lk = xcalloc(opts->nlabels, sizeof(*lk));
	}
	for (i = 0; i < opts->nlabels; i++) {
		resbus__v1__ticket_request__labels_entry__init(&entries[i]);
		eq = strchr(opts->labels[i], '=');
		lk[i] = eq ? xstrndup(opts->labels[i],
				 (size_t)(eq - opts->labels[i]))
			   : xstrdup(opts->labels[i]);
		entries[i].key = lk[i];
		entries[i].value = (char *)(eq ? eq + 1 : "");
		ep[i] = &entries[i];
	}
	req.n_labels = opts->nlabels;
	req.labels = ep;
	if (opts->class_ != NULL)
		req.class_ = (char *)opts->class_;
	req.lease_s = opts->lease_s;
	req.deadline_ms = opts->deadline_ms;
	if (opts->owner != NULL)
		req.owner = (char *)opts->owner;
	req.refuse_unprovidable = opts->refuse_unprovidable;
	rc = client_publish(c, c->ticket_exchange, key, &req.base, corr);
	tagset_free_list(canon, ncanon);
	tagset_free_list(lk, opts->nlabels);
	free(entries);
	free(ep);
	free(key);
	return rc;
}

int
resbus_ticket_take_opts(struct resbus_client *c, char *const *tags,
    size_t ntags, const struct resbus_ticket_opts *opts, int timeout_ms,
    uint64_t *id, bool *timed_out)
{
	const Resbus__V1__TicketAccepted *acc;
	int rc;

	*timed_out = false;
	client_rpc_reset(c);
	uuid_make(c->corr);
	if (client_take_publish(c, tags, ntags, opts, c->corr) == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		*timed_out = true;
		client_seterr(c,
		    "no answer from resbusd within %d s; the request "
		    "stays queued and is served when resbusd runs",
		    client_seconds(timeout_ms));
		return -1;
	}
	if (rc == -1)
		return -1;
	if (c->reply->descriptor != &resbus__v1__ticket_accepted__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		return -1;
	}
	acc = (const Resbus__V1__TicketAccepted *)c->reply;
	*id = acc->ticket_id;
	client_rpc_reset(c);
	return 0;
}

/*
 * Sends TicketQuery or TicketClose (M) for a ticket and waits for its
 * TicketUpdate.  0 with *u borrowed until the next RPC, 1 on timeout (the
 * error set), -1 on error.
 */
static int
client_ticket_rpc(struct resbus_client *c, const ProtobufCMessage *m,
    int timeout_ms, const Resbus__V1__TicketUpdate **u)
{
	int rc;

	if (client_send(c, "", c->request_queue, m) == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		client_seterr(c, "no answer from resbusd within %d s",
		    client_seconds(timeout_ms));
		return 1;
	}
	if (rc == -1)
		return -1;
	if ((*u = client_reply_update(c)) == NULL)
		return -1;
	return 0;
}

/*
 * The current state of ticket ID into *INFO; a ticket that does not exist
 * is not an error (info->exists is false).  Free INFO's strings with
 * resbus_ticket_info_clear().
 */
int
resbus_ticket_query(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info)
{
	Resbus__V1__TicketQuery q = RESBUS__V1__TICKET_QUERY__INIT;
	const Resbus__V1__TicketUpdate *u;

	memset(info, 0, sizeof(*info));
	q.ticket_id = id;
	if (client_ticket_rpc(c, &q.base, timeout_ms, &u) != 0)
		return -1;
	client_info_fill(info, u);
	info->id = id;
	client_rpc_reset(c);
	return 0;
}

int
resbus_ticket_renew(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info)
{
	Resbus__V1__TicketRenew r = RESBUS__V1__TICKET_RENEW__INIT;
	const Resbus__V1__TicketUpdate *u;

	memset(info, 0, sizeof(*info));
	r.ticket_id = id;
	if (client_ticket_rpc(c, &r.base, timeout_ms, &u) != 0)
		return -1;
	client_info_fill(info, u);
	info->id = id;
	client_rpc_reset(c);
	return 0;
}

/* A private queue for ticket events, made once per client. */
static int
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

/*
 * Sends query Q and hands resbusd's answer to the watch.  0, 1 when
 * DEADLINE passed, -1 on error (set).  Events that come meanwhile set
 * c->woken; they say nothing about the ticket themselves.
 */
static int
client_wait_query(
    struct resbus_client *c, const Resbus__V1__TicketQuery *q, int64_t deadline)
{
	int rc;

	c->woken = false;
	if (client_send(c, "", c->request_queue, &q->base) == -1)
		return -1;
	rc = client_pump(c, deadline, client_rpc_done);
	if (rc != 0)
		return rc;
	if (client_await(c, 0) == -1 || client_reply_update(c) == NULL)
		return -1;
	client_watch(c, c->reply);
	c->reply = NULL;
	return 0;
}

/*
 * Tells the wait's progress function, if any, why the ticket waits and
 * for how long: since its creation as resbusd says, else (an older
 * resbusd) since the wait began.
 */
static void
client_progress(struct resbus_client *c)
{
	int64_t waited;

	if (c->progress == NULL)
		return;
	if (c->watch_created > 0)
		waited = now_wall_ms() - c->watch_created;
	else
		waited = now_mono_ms() - c->watch_start;
	c->progress(c->progress_arg, c->watch_reason, waited < 0 ? 0 : waited);
}

/*
 * A wait with a progress function: polls the bus until an event wakes it
 * or CLIENT_PROGRESS_REQUERY_MS after the query sent at SENT, telling the
 * function every CLIENT_PROGRESS_TICK_MS.  0, 1 when DEADLINE passed, -1
 * on error.
 */
static int
client_wait_tick(struct resbus_client *c, int64_t sent, int64_t deadline)
{
	int64_t until, requery = sent + CLIENT_PROGRESS_REQUERY_MS;
	int rc;

	for (;;) {
		until = now_mono_ms() + CLIENT_PROGRESS_TICK_MS;
		if (until > requery)
			until = requery;
		if (deadline >= 0 && until > deadline)
			until = deadline;
		if ((rc = client_pump(c, until, client_woken)) != 1)
			return rc;
		if (deadline >= 0 && now_mono_ms() >= deadline)
			return 1;
		if (now_mono_ms() >= requery)
			return 0;
		client_progress(c);
	}
}

/*
 * Polls the bus until ticket events wake the wait (or, with a progress
 * function, it is time to ask again), then until CLIENT_REQUERY_MIN_MS
 * after the query sent at SENT.  0, 1 when DEADLINE passed, -1 on error.
 */
static int
client_wait_wake(struct resbus_client *c, int64_t sent, int64_t deadline)
{
	int64_t next;
	int rc;

	rc = c->progress != NULL ? client_wait_tick(c, sent, deadline)
				 : client_pump(c, deadline, client_woken);
	if (rc != 0)
		return rc;
	next = sent + CLIENT_REQUERY_MIN_MS;
	if (deadline >= 0 && deadline < next)
		next = deadline;
	if (now_mono_ms() < next && client_pump(c, next, client_never) == -1)
		return -1;
	return deadline >= 0 && now_mono_ms() >= deadline ? 1 : 0;
}

/*
 * Waits until ticket ID has a resource, failed or was closed, and puts
 * its state into *INFO (free with resbus_ticket_info_clear).  -1 when the
 * ticket does not exist, was closed before it got a resource, or no
 * answer came within TIMEOUT_MS (*timed_out set).
 *
 * A ticket is mostly waited on right after it was taken, and a free
 * resource is given at once, so one query usually answers.  Otherwise
 * the ticket's events are bound to the event queue first and the query
 * asked again, so that no update slips in between; each event then
 * wakes the wait to query once more, and only resbusd's answers end it.
 * The binding goes when the wait ends, so a long-lived client does not
 * gather them.
 */
int
resbus_ticket_wait(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info, bool *timed_out)
{
	return resbus_ticket_wait_progress(
	    c, id, timeout_ms, NULL, NULL, info, timed_out);
}

/*
 * resbus_ticket_wait, telling FN (if not NULL) after every answer that
 * leaves the ticket waiting and about once a second in between.  With FN
 * the ticket is also queried every CLIENT_PROGRESS_REQUERY_MS without an
 * event, since its reason changes without one.
 */
int
resbus_ticket_wait_progress(struct resbus_client *c, uint64_t id,
    int timeout_ms, resbus_wait_progress_fn *fn, void *arg,
    struct resbus_ticket_info *info, bool *timed_out)
{
	Resbus__V1__TicketQuery q = RESBUS__V1__TICKET_QUERY__INIT;
	const Resbus__V1__TicketUpdate *u;
	int64_t deadline, sent;
	char *key = NULL;
	int rc, unbound, ret = -1;

	memset(info, 0, sizeof(*info));
	*timed_out = false;
	deadline = client_deadline(timeout_ms);
	if (c->watch_done != NULL)
		msg_free(&c->watch_done->base);
	c->watch_done = NULL;
	c->watch_id = id;
	c->watching = true;
	c->progress = fn;
	c->progress_arg = arg;
	c->watch_created = 0;
	c->watch_start = now_mono_ms();
	q.ticket_id = id;

	rc = client_wait_query(c, &q, deadline);
	if (rc == 0 && c->watch_done == NULL) {
		if (client_event_queue(c) == -1)
			goto out;
		key = xasprintf("ticket.%llu.*", (unsigned long long)id);
		/* A reconnect binds c->watch_key again. */
		c->watch_key = key;
		if (bus_queue_bind(
			c->bus, c->event_queue, c->event_exchange, key) == -1 &&
		    client_reconnect(c, deadline) == -1)
			goto out;
		for (;;) {
			sent = now_mono_ms();
			rc = client_wait_query(c, &q, deadline);
			if (rc != 0 || c->watch_done != NULL)
				break;
			client_progress(c);
			if ((rc = client_wait_wake(c, sent, deadline)) != 0)
				break;
		}
	}
	if (rc == -1)
		goto out;
	if (rc == 1) {
		*timed_out = true;
		client_seterr(c, "ticket %llu got no resource within %d s",
		    (unsigned long long)id, client_seconds(timeout_ms));
		goto out;
	}
	u = c->watch_done;
	if (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN) {
		client_seterr(
		    c, "non-existing ticket %llu", (unsigned long long)id);
		goto out;
	}
	if (!u->assigned) {
		client_seterr(c,
		    "ticket %llu was closed before it got a "
		    "resource",
		    (unsigned long long)id);
		goto out;
	}
	client_info_fill(info, u);
	info->id = id;
	ret = 0;
out:
	/*
	 * The answer stands even if the unbind fails: only a broken
	 * connection fails it, and its exclusive queue goes with its
	 * bindings.
	 */
	if (key != NULL) {
		unbound = bus_queue_unbind(
		    c->bus, c->event_queue, c->event_exchange, key);
		(void)unbound;
	}
	free(key);
	c->watch_key = NULL;
	c->watching = false;
	c->woken = false;
	c->progress = NULL;
	c->progress_arg = NULL;
	free(c->watch_reason);
	c->watch_reason = NULL;
	if (c->watch_done != NULL)
		msg_free(&c->watch_done->base);
	c->watch_done = NULL;
	client_rpc_reset(c);
	return ret;
}

/* Closes ticket ID.  -1 with "no such ticket ID" when it does not exist. */
int
resbus_ticket_close(struct resbus_client *c, uint64_t id, int timeout_ms)
{
	Resbus__V1__TicketClose m = RESBUS__V1__TICKET_CLOSE__INIT;
	const Resbus__V1__TicketUpdate *u;
	int ret = -1;

	m.ticket_id = id;
	if (client_ticket_rpc(c, &m.base, timeout_ms, &u) != 0)
		return -1;
	if (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN)
		client_seterr(c, "no such ticket %llu", (unsigned long long)id);
	else if (u->state != RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED)
		client_seterr(c, "ticket %llu is still %s after closing it",
		    (unsigned long long)id, msg_ticket_state_name(u->state));
	else
		ret = 0;
	client_rpc_reset(c);
	return ret;
}

/* Frees the strings of INFO and zeroes it. */
void
resbus_ticket_info_clear(struct resbus_ticket_info *info)
{
	free(info->output);
	free(info->waiting_reason);
	memset(info, 0, sizeof(*info));
}

/* ---- asynchronous use, from an event loop -------------------------------- */

int
resbus_client_fd(const struct resbus_client *c)
{
	return bus_fd(c->bus);
}

bool
resbus_client_pending(const struct resbus_client *c)
{
	return bus_pending(c->bus);
}

static void
client_call_unlink(struct resbus_client *c, struct resbus_call *call)
{
	/* The first call, and only it, has no previous one. */
	assert((call->prev == NULL) == (c->calls == call));
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
}

/*
 * Turns M (taken over; NULL if it did not decode) into CALL's answer,
 * hands it to CALL's function and frees CALL.
 */
static void
client_call_answer(
    struct resbus_client *c, struct resbus_call *call, ProtobufCMessage *m)
{
	struct resbus_ticket_info info;
	struct resbus_answer a;
	const Resbus__V1__TicketUpdate *u = NULL;
	const Resbus__V1__Error *e;
	char error[512] = "";

	memset(&a, 0, sizeof(a));
	memset(&info, 0, sizeof(info));
	a.status = -1;
	a.error = error;
	if (m == NULL)
		snprintf(
		    error, sizeof(error), "undecodable reply from resbusd");
	else if (m->descriptor == &resbus__v1__error__descriptor) {
		e = (const Resbus__V1__Error *)m;
		snprintf(error, sizeof(error), "%s",
		    e->message != NULL && *e->message
			? e->message
			: "resbusd refused the request");
	} else if (call->kind == CALL_TAKE &&
		   m->descriptor == &resbus__v1__ticket_accepted__descriptor) {
		a.status = 0;
		a.ticket_id =
		    ((const Resbus__V1__TicketAccepted *)m)->ticket_id;
	} else if (call->kind != CALL_TAKE &&
		   m->descriptor == &resbus__v1__ticket_update__descriptor)
		u = (const Resbus__V1__TicketUpdate *)m;
	else
		snprintf(error, sizeof(error),
		    "unexpected reply %s from resbusd", msg_type(m));
	if (u != NULL) {
		client_info_fill(&info, u);
		info.id = call->id;
		a.ticket_id = call->id;
		a.info = &info;
		a.status = 0;
		if (call->kind == CALL_CLOSE && !info.exists) {
			a.status = -1;
			snprintf(error, sizeof(error), "no such ticket %llu",
			    (unsigned long long)call->id);
		} else if (call->kind == CALL_CLOSE && !info.closed) {
			a.status = -1;
			snprintf(error, sizeof(error),
			    "ticket %llu is still %s after closing it",
			    (unsigned long long)call->id,
			    msg_ticket_state_name(u->state));
		}
	}
	client_call_unlink(c, call);
	call->fn(call->arg, &a);
	free(call);
	resbus_ticket_info_clear(&info);
	if (m != NULL)
		msg_free(m);
}

/*
 * Reads and dispatches what the bus has; answers and wake-ups reach their
 * functions from here.  -1 when the connection failed: every request in
 * flight has then been answered with status -1, and the client is good
 * for nothing but resbus_client_free().
 */
int
resbus_client_poll(struct resbus_client *c)
{
	struct resbus_answer a;
	struct resbus_call *call;

	if (!c->failed && bus_poll(c->bus, 0) >= 0)
		return 0;
	if (!c->failed)
		client_seterr(
		    c, "connection to the bus failed: %s", bus_error(c->bus));
	c->failed = true;
	memset(&a, 0, sizeof(a));
	a.status = -1;
	a.error = c->error;
	while ((call = c->calls) != NULL) {
		client_call_unlink(c, call);
		a.ticket_id = call->id;
		call->fn(call->arg, &a);
		free(call);
	}
	return -1;
}

/* A new request in flight; NULL (nothing kept) when publishing failed. */
static struct resbus_call *
client_call_new(
    enum client_call_kind kind, uint64_t id, resbus_answer_fn *fn, void *arg)
{
	struct resbus_call *call;

	call = xcalloc(1, sizeof(*call));
	call->kind = kind;
	call->id = id;
	call->fn = fn;
	call->arg = arg;
	uuid_make(call->corr);
	return call;
}

static struct resbus_call *
client_call_start(struct resbus_client *c, struct resbus_call *call, int rc)
{
	if (rc == -1) {
		free(call);
		return NULL;
	}
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	return call;
}

struct resbus_call *
resbus_take_send(struct resbus_client *c, char *const *tags, size_t ntags,
    const struct resbus_ticket_opts *opts, resbus_answer_fn *fn, void *arg)
{
	struct resbus_call *call;

	if (c->failed)
		return NULL;
	call = client_call_new(CALL_TAKE, 0, fn, arg);
	return client_call_start(
	    c, call, client_take_publish(c, tags, ntags, opts, call->corr));
}

struct resbus_call *
resbus_query_send(
    struct resbus_client *c, uint64_t id, resbus_answer_fn *fn, void *arg)
{
	Resbus__V1__TicketQuery q = RESBUS__V1__TICKET_QUERY__INIT;
	struct resbus_call *call;

	if (c->failed)
		return NULL;
	q.ticket_id = id;
	call = client_call_new(CALL_QUERY, id, fn, arg);
	return client_call_start(c, call,
	    client_publish(c, "", c->request_queue, &q.base, call->corr));
}

struct resbus_call *
resbus_close_send(
    struct resbus_client *c, uint64_t id, resbus_answer_fn *fn, void *arg)
{
	Resbus__V1__TicketClose m = RESBUS__V1__TICKET_CLOSE__INIT;
	struct resbus_call *call;

	if (c->failed)
		return NULL;
	m.ticket_id = id;
	call = client_call_new(CALL_CLOSE, id, fn, arg);
	return client_call_start(c, call,
	    client_publish(c, "", c->request_queue, &m.base, call->corr));
}

/* Forgets CALL: its answer, if one comes, is dropped. */
void
resbus_call_cancel(struct resbus_client *c, struct resbus_call *call)
{
	if (call == NULL)
		return;
	client_call_unlink(c, call);
	free(call);
}

/* The first other watcher of W's ticket, or NULL. */
static struct resbus_watch *
client_watch_twin(struct resbus_client *c, const struct resbus_watch *w)
{
	struct resbus_watch *o;

	for (o = c->watches; o != NULL; o = o->next)
		if (o != w && o->id == w->id)
			return o;
	return NULL;
}

/*
 * Binds ticket ID's events to the client's event queue (once for all
 * watchers of ID), and calls FN(ARG, ID) for each event that comes.  NULL
 * with the error set when the binding failed.  Free with
 * resbus_watch_remove().
 */
struct resbus_watch *
resbus_watch_add(
    struct resbus_client *c, uint64_t id, resbus_wake_fn *fn, void *arg)
{
	struct resbus_watch *w;

	if (c->failed || client_event_queue(c) == -1)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->id = id;
	w->fn = fn;
	w->arg = arg;
	w->key = xasprintf("ticket.%llu.*", (unsigned long long)id);
	if (client_watch_twin(c, w) == NULL &&
	    bus_queue_bind(c->bus, c->event_queue, c->event_exchange, w->key) ==
		-1) {
		client_seterr(
		    c, "cannot bind the event queue: %s", bus_error(c->bus));
		free(w->key);
		free(w);
		return NULL;
	}
	w->next = c->watches;
	if (c->watches != NULL)
		c->watches->prev = w;
	c->watches = w;
	return w;
}

static void
client_watch_unlink(struct resbus_client *c, struct resbus_watch *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		c->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
}

/*
 * Removes watcher W; the binding goes with the last watcher of its
 * ticket.  Not from inside a wake-up function.
 */
void
resbus_watch_remove(struct resbus_client *c, struct resbus_watch *w)
{
	int unbound;

	if (w == NULL)
		return;
	client_watch_unlink(c, w);
	/* A failed unbind means a dead connection: its queue goes too. */
	if (!c->failed && client_watch_twin(c, w) == NULL) {
		unbound = bus_queue_unbind(
		    c->bus, c->event_queue, c->event_exchange, w->key);
		(void)unbound;
	}
	free(w->key);
	free(w);
}

/* ---- operators' control RPCs (resbus-maint) ----------------------------- */

/*
 * Sends a ControlRequest to the control queue and waits for its
 * ControlReply.  The request is sent only while resbusd consumes the
 * queue: a request left queued for a broker that is down would run
 * whenever it comes back, long after the operator gave up on it.  An
 * answer of another control protocol version, or out of bounds, is no
 * answer.
 */
int
resbus_control(struct resbus_client *c,
    const struct resbus_control_request *req, int timeout_ms,
    struct resbus_control_reply *reply)
{
	Resbus__V1__ControlRequest m = RESBUS__V1__CONTROL_REQUEST__INIT;
	Resbus__V1__ControlReply *r;
	uint32_t consumers = 0;
	char *queue, err[256];
	int rc;

	memset(reply, 0, sizeof(*reply));
	queue = topo_control_queue(c->prefix);
	if (bus_queue_declare(
		c->bus, queue, BUS_PASSIVE, NULL, NULL, &consumers) == -1 &&
	    bus_poll(c->bus, 0) < 0) {
		client_seterr(
		    c, "connection to the bus failed: %s", bus_error(c->bus));
		free(queue);
		return -1;
	}
	if (consumers == 0) {
		client_seterr(
		    c, "resbusd is not running (nobody consumes %s)", queue);
		free(queue);
		return -1;
	}
	m.command = (char *)req->command;
	m.args = (char **)req->args;
	m.n_args = req->nargs;
	m.up = req->up;
	m.all = req->all;
	m.unused = req->unused;
	m.version = MSG_CONTROL_VERSION;
	rc = client_send(c, "", queue, &m.base);
	free(queue);
	if (rc == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		client_seterr(c, "no answer from resbusd within %d s",
		    client_seconds(timeout_ms));
		client_rpc_reset(c);
		return -1;
	}
	if (rc == -1)
		return -1;
	if (c->reply->descriptor != &resbus__v1__control_reply__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		client_rpc_reset(c);
		return -1;
	}
	r = (Resbus__V1__ControlReply *)c->reply;
	if (r->version != MSG_CONTROL_VERSION) {
		client_seterr(c,
		    "resbusd answers in control protocol version %u, this "
		    "client speaks version %d: use the resbus-maint of "
		    "resbusd's release",
		    (unsigned)r->version, MSG_CONTROL_VERSION);
		client_rpc_reset(c);
		return -1;
	}
	if (msg_check(&r->base, err, sizeof(err)) == -1) {
		client_seterr(c, "resbusd's answer is out of bounds: %s", err);
		client_rpc_reset(c);
		return -1;
	}
	reply->ok = r->ok;
	if (!r->ok)
		reply->error = xstrdup(r->error != NULL && r->error[0] != '\0'
					   ? r->error
					   : "resbusd refused the command");
	reply->msg = r;
	c->reply = NULL;
	client_rpc_reset(c);
	return 0;
}

/* Frees what REPLY holds and zeroes it. */
void
resbus_control_reply_clear(struct resbus_control_reply *reply)
{
	free(reply->error);
	if (reply->msg != NULL)
		msg_free(&reply->msg->base);
	memset(reply, 0, sizeof(*reply));
}
