/*
 * broker -- handlers for the messages resbusd consumes, and the end of
 * every loop iteration: schedule, commit, publish, acknowledge.
 *
 * Ordering is what makes a crash harmless.  A consumed message is
 * acknowledged only after the transaction recording its effect commits;
 * if resbusd dies before that, RabbitMQ redelivers it and the handler,
 * being idempotent (tickets by idempotency key, results by resource
 * state), changes nothing twice.  A produced job or event is in the
 * outbox of that same transaction and is deleted only when RabbitMQ
 * confirms it, so it is published at least once.  Replies to a client's
 * reply_to queue are not durable: the client's retry gets a fresh one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ev.h>

#include "broker.h"
#include "bus.h"
#include "conf.h"
#include "control.h"
#include "http.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "sched.h"
#include "store.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

#define BROKER_PREFETCH 1000
#define BROKER_HEARTBEAT_S 5.
#define OUTBOX_SWEEP_S 1.            /* confirmed rows wait at most this */
#define OUTBOX_SWEEP_MAX 1024        /* or until this many wait */

/* A message to publish after the commit; durable ones have an outbox id. */
struct outmsg {
	TAILQ_ENTRY(outmsg) entry;
	char *exchange;
	char *key;
	char *type;
	char *correlation_id;
	void *body;
	size_t len;
	uint64_t outbox_id;          /* 0: a reply, not in the outbox */
	uint64_t seq;                /* publish sequence number, once sent */
};
TAILQ_HEAD(outmsg_list, outmsg);

/* What one transaction releases once it is durable. */
struct batch {
	struct broker *owner;
	struct outmsg_list msgs;     /* to publish */
	uint64_t *acks;              /* delivery tags to acknowledge */
	size_t nacks, acks_cap;
};

struct broker {
	struct ev_loop *loop;
	struct bus *bus;
	struct store *store;
	struct sched *sched;
	struct http *http;           /* NULL: no status page */
	struct notify *notify;       /* NULL: no notifications */
	const struct conf_server *server;
	struct conf_pools *pools;    /* owned */
	char *pools_path;
	char *prefix;
	char *unrouted_queue;
	ev_io bus_io;
	ev_io store_rio, store_wio;  /* a networked store's socket */
	ev_prepare flush;
	ev_timer heartbeat;
	ev_timer sweep;              /* writes confirmed outbox deletes */
	bool sweep_due;
	struct batch *cur;           /* released by the next commit */
	bool committing;             /* a commit is in flight */
	struct outmsg_list inflight; /* published, awaiting the confirm */
	uint64_t *done;              /* confirmed outbox ids to delete */
	size_t ndone, done_cap;
	uint64_t last_outbox_id;
};

static struct batch *
batch_new(void)
{
	struct batch *bt = xcalloc(1, sizeof(*bt));

	TAILQ_INIT(&bt->msgs);
	return bt;
}

static void outmsg_free(struct outmsg *o);

static void
batch_free(struct batch *bt)
{
	struct outmsg *o;

	while ((o = TAILQ_FIRST(&bt->msgs)) != NULL) {
		TAILQ_REMOVE(&bt->msgs, o, entry);
		outmsg_free(o);
	}
	free(bt->acks);
	free(bt);
}

/*
 * What a handler needs to know about the delivery it handles.  A handler
 * whose reply waits for the store sets ack_later and acknowledges the
 * delivery with that reply (reply_stored): a request acknowledged before
 * its answer is published would be lost with the answer in a crash
 * between the two.
 */
struct delivery_ctx {
	const struct bus_delivery *d;
	bool ack_later;
};

static void
push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = x;
}

static void
outmsg_free(struct outmsg *o)
{
	free(o->exchange);
	free(o->key);
	free(o->type);
	free(o->correlation_id);
	free(o->body);
	free(o);
}

static struct outmsg *
outmsg_new(const char *exchange, const char *key, const char *type,
    const void *body, size_t len)
{
	struct outmsg *o = xcalloc(1, sizeof(*o));

	o->exchange = xstrdup(exchange);
	o->key = xstrdup(key);
	o->type = xstrdup(type);
	o->body = xmalloc(len);
	memcpy(o->body, body, len);
	o->len = len;
	return o;
}

static void
broker_store_failed(struct broker *b, const char *what)
{
	fatalx("store: %s: %s", what, store_error(b->store));
}

/* sched's emit: a durable message, in the outbox of this transaction. */
static void
broker_emit(void *ctx, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	struct broker *b = ctx;
	struct store_outbox row;
	struct outmsg *o;
	size_t len;
	void *body = msg_pack(m, &len);

	o = outmsg_new(exchange, key, msg_type(m), body, len);
	free(body);
	o->outbox_id = ++b->last_outbox_id;
	row.id = o->outbox_id;
	row.exchange = o->exchange;
	row.routing_key = o->key;
	row.type = o->type;
	row.body = o->body;
	row.len = o->len;
	if (store_begin(b->store) == -1 ||
	    b->store->be->add_outbox(b->store, &row) == -1)
		broker_store_failed(b, "outbox");
	TAILQ_INSERT_TAIL(&b->cur->msgs, o, entry);
}

/* sched's observer: what users watch, for notifications. */
static void
broker_observe(void *ctx, const struct sched_event *ev)
{
	struct broker *b = ctx;

	notify_observe(b->notify, ev);
}

/* Acknowledges delivery TAG once this iteration's changes are durable. */
static void
broker_ack(struct broker *b, uint64_t tag)
{
	push_u64(&b->cur->acks, &b->cur->nacks, &b->cur->acks_cap, tag);
}

static void
broker_wake(void *ctx)
{
	/* The ev_prepare watcher runs before the loop sleeps again. */
	(void)ctx;
}

/* A reply to the client that sent D; published after the commit. */
static void
broker_reply(struct broker *b, const struct bus_delivery *d,
    const ProtobufCMessage *m)
{
	struct outmsg *o;
	size_t len;
	void *body;

	if (d->reply_to == NULL || d->reply_to[0] == '\0')
		return;
	body = msg_pack(m, &len);
	o = outmsg_new("", d->reply_to, msg_type(m), body, len);
	free(body);
	if (d->correlation_id[0] != '\0')
		o->correlation_id = xstrdup(d->correlation_id);
	TAILQ_INSERT_TAIL(&b->cur->msgs, o, entry);
}

static void
broker_reply_error(struct broker *b, const struct bus_delivery *d,
    const char *message)
{
	Resbus__V1__Error e = RESBUS__V1__ERROR__INIT;

	e.message = (char *)message;
	broker_reply(b, d, &e.base);
}

static void broker_on_delivery(struct bus *bus, const struct bus_delivery *d,
    void *arg);

static int
broker_consume_tagset(struct broker *b, const char *key)
{
	char *q = topo_ticket_queue(b->prefix, key);
	int rc;

	rc = topo_declare_tagset(b->bus, b->prefix, key);
	if (rc == 0)
		rc = bus_consume(b->bus, q, false, broker_on_delivery, b);
	if (rc == -1)
		log_warnx("tag set %s: cannot consume %s: %s", key, q,
		    bus_error(b->bus));
	else
		log_info("tag set %s: consuming %s", key, q);
	free(q);
	return rc;
}

/* ---- handlers ---------------------------------------------------------- */

/*
 * The labels of REQ as "key=value\n..." in *out (caller frees; NULL if
 * none), checked: keys are [a-z0-9_]{1,32}, values printable ASCII of at
 * most 256 bytes without newlines.  -1 with a message in ERR.
 */
static int
labels_text(const Resbus__V1__TicketRequest *req, char **out, char *err,
    size_t errlen)
{
	const char *k, *v;
	char *text = NULL, *next;
	size_t i, j;

	*out = NULL;
	for (i = 0; i < req->n_labels; i++) {
		k = req->labels[i]->key;
		v = req->labels[i]->value;
		for (j = 0; k[j] != '\0'; j++)
			if (j >= 32 || !((k[j] >= 'a' && k[j] <= 'z') ||
			    (k[j] >= '0' && k[j] <= '9') || k[j] == '_'))
				break;
		if (j == 0 || k[j] != '\0') {
			snprintf(err, errlen, "invalid label name \"%.40s\"", k);
			free(text);
			return -1;
		}
		for (j = 0; v[j] != '\0'; j++)
			if (j >= 256 || (unsigned char)v[j] < ' ' ||
			    (unsigned char)v[j] >= 0x7f)
				break;
		if (v[j] != '\0') {
			snprintf(err, errlen, "invalid value of label %s", k);
			free(text);
			return -1;
		}
		next = xasprintf("%s%s=%s\n", text ? text : "", k, v);
		free(text);
		text = next;
	}
	*out = text;
	return 0;
}

static void
on_ticket_request(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketRequest *req =
	    (const Resbus__V1__TicketRequest *)m;
	Resbus__V1__TicketAccepted acc = RESBUS__V1__TICKET_ACCEPTED__INIT;
	struct broker *b = ctx;
	struct delivery_ctx *dc = arg;
	struct sched_ticket_req tr;
	const char *bad;
	char err[512], *key, *labels = NULL;
	uint64_t id;
	int rc = -1;

	key = tagset_key(req->tags, req->n_tags, &bad);
	if (key == NULL) {
		if (bad != NULL)
			snprintf(err, sizeof(err), "invalid tag \"%s\"", bad);
		else
			snprintf(err, sizeof(err), "a ticket needs 1 to %d "
			    "tags", TAGSET_MAX_TAGS);
		broker_reply_error(b, dc->d, err);
		return;
	}
	if (req->sandbox[0] != '\0' && !sandbox_valid(req->sandbox)) {
		broker_reply_error(b, dc->d, "invalid sandbox");
		free(key);
		return;
	}
	if (labels_text(req, &labels, err, sizeof(err)) == 0) {
		memset(&tr, 0, sizeof(tr));
		tr.idem_key = req->idempotency_key;
		tr.key = key;
		tr.sandbox = req->sandbox;
		tr.owner = dc->d->user_id;
		tr.labels = labels;
		tr.class_ = req->class_;
		tr.lease_s = req->lease_s;
		tr.deadline_ms = req->deadline_ms;
		rc = sched_ticket_new(b->sched, &tr, &id, err, sizeof(err));
	}
	if (rc == -1) {
		log_info("ticket request for %s refused: %s", key, err);
		broker_reply_error(b, dc->d, err);
		free(labels);
		free(key);
		return;
	}
	free(labels);
	if (sched_tagset_add(b->sched, key) == 1)
		(void)broker_consume_tagset(b, key);
	acc.ticket_id = id;
	acc.idempotency_key = req->idempotency_key;
	broker_reply(b, dc->d, &acc.base);
	free(key);
}

/* Where a reply about a ticket goes, kept while the store looks it up. */
struct reply_to {
	struct broker *b;
	uint64_t id;
	uint64_t delivery_tag;       /* acknowledged with the reply */
	char *reply_to;
	char *correlation_id;
};

static void
reply_update(struct broker *b, const char *reply_to,
    const char *correlation_id, const Resbus__V1__TicketUpdate *u)
{
	struct bus_delivery d;

	memset(&d, 0, sizeof(d));
	d.reply_to = reply_to;
	d.correlation_id = correlation_id;
	broker_reply(b, &d, &u->base);
}

static void
reply_stored(void *arg, int found, const char *state, const void *data,
    size_t data_len)
{
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	Resbus__V1__Error e = RESBUS__V1__ERROR__INIT;
	struct reply_to *rt = arg;
	struct broker *b = rt->b;
	struct bus_delivery d;

	u.ticket_id = rt->id;
	if (found == 1) {
		u.state = msg_ticket_state_parse(state);
		u.assigned = data != NULL;
		u.output.data = (uint8_t *)data;
		u.output.len = data_len;
	}
	if (found == -1) {
		memset(&d, 0, sizeof(d));
		d.reply_to = rt->reply_to;
		d.correlation_id = rt->correlation_id;
		e.message = "store error";
		broker_reply(b, &d, &e.base);
	} else {
		reply_update(b, rt->reply_to, rt->correlation_id, &u);
	}
	broker_ack(b, rt->delivery_tag);
	free(rt->reply_to);
	free(rt->correlation_id);
	free(rt);
}

/* The update a client gets about the ticket V shows. */
static void
update_from_view(Resbus__V1__TicketUpdate *u,
    const struct sched_ticket_view *v)
{
	u->ticket_id = v->id;
	u->state = v->state;
	u->assigned = v->assigned;
	u->output.data = (uint8_t *)v->output;
	u->output.len = v->output_len;
	u->waiting_reason = (char *)(v->waiting_reason ?
	    v->waiting_reason : "");
	if (v->owner != NULL)
		u->owner = (char *)v->owner;
}

/*
 * Answers DC's delivery about ticket ID, which is not in memory, from the
 * store; the delivery is acknowledged with the answer.
 */
static void
reply_from_store(struct broker *b, struct delivery_ctx *dc, uint64_t id)
{
	struct reply_to *rt;

	rt = xcalloc(1, sizeof(*rt));
	rt->b = b;
	rt->id = id;
	rt->delivery_tag = dc->d->delivery_tag;
	rt->reply_to = xstrdup(dc->d->reply_to);
	rt->correlation_id = xstrdup(dc->d->correlation_id);
	dc->ack_later = true;
	if (b->store->be->get_ticket(b->store, id, reply_stored, rt) == -1)
		broker_store_failed(b, "get ticket");
}

/* Answers DC's delivery about ticket ID: from memory, or from the store. */
static void
reply_ticket(struct broker *b, struct delivery_ctx *dc, uint64_t id)
{
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	struct sched_ticket_view v;

	if (sched_ticket_view(b->sched, id, &v) == 0) {
		reply_from_store(b, dc, id);
		return;
	}
	update_from_view(&u, &v);
	reply_update(b, dc->d->reply_to, dc->d->correlation_id, &u);
}

static void
on_ticket_query(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketQuery *q = (const Resbus__V1__TicketQuery *)m;
	struct delivery_ctx *dc = arg;

	reply_ticket(ctx, dc, q->ticket_id);
}

static void
on_ticket_renew(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketRenew *r = (const Resbus__V1__TicketRenew *)m;
	struct broker *b = ctx;
	struct delivery_ctx *dc = arg;

	(void)sched_ticket_renew(b->sched, r->ticket_id);
	reply_ticket(b, dc, r->ticket_id);
}

static void
on_ticket_close(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketClose *c = (const Resbus__V1__TicketClose *)m;
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	struct broker *b = ctx;
	struct delivery_ctx *dc = arg;
	struct sched_ticket_view v;

	/* A ticket not in memory is closed already, or unknown. */
	if (sched_ticket_view(b->sched, c->ticket_id, &v) == 0) {
		reply_from_store(b, dc, c->ticket_id);
		return;
	}
	/*
	 * Closing frees the ticket: the answer is made first, from what it
	 * holds now, and goes out with the close's commit.
	 */
	update_from_view(&u, &v);
	u.state = RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED;
	u.waiting_reason = "";
	reply_update(b, dc->d->reply_to, dc->d->correlation_id, &u);
	(void)sched_ticket_close(b->sched, c->ticket_id);
}

static void
on_allocate_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;

	sched_on_allocated(b->sched, (const Resbus__V1__AllocateResult *)m);
}

static void
on_delete_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;

	sched_on_deleted(b->sched, (const Resbus__V1__DeleteResult *)m);
}

static void
on_livecheck_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;

	sched_on_checked(b->sched, (const Resbus__V1__LivecheckResult *)m);
}

static void
on_release_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;

	sched_on_released(b->sched, (const Resbus__V1__ReleaseResult *)m);
}

static void
on_list_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;

	sched_on_listed(b->sched, (const Resbus__V1__ListResult *)m);
}

static const struct msg_handler broker_handlers[] = {
	{ &resbus__v1__ticket_request__descriptor, on_ticket_request },
	{ &resbus__v1__ticket_query__descriptor, on_ticket_query },
	{ &resbus__v1__ticket_close__descriptor, on_ticket_close },
	{ &resbus__v1__ticket_renew__descriptor, on_ticket_renew },
	{ &resbus__v1__allocate_result__descriptor, on_allocate_result },
	{ &resbus__v1__delete_result__descriptor, on_delete_result },
	{ &resbus__v1__livecheck_result__descriptor, on_livecheck_result },
	{ &resbus__v1__release_result__descriptor, on_release_result },
	{ &resbus__v1__list_result__descriptor, on_list_result },
	{ NULL, NULL },
};

static void
broker_on_delivery(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct broker *b = arg;
	struct delivery_ctx dc = { d, false };

	if (msg_dispatch(broker_handlers, d->type, d->body, d->len, b,
	    &dc) == -1)
		log_warnx("dropped a message of type \"%s\" from queue via "
		    "%s/%s: unknown type or undecodable body", d->type,
		    d->exchange, d->routing_key);
	sched_touch(b->sched);
	if (!dc.ack_later)
		broker_ack(b, d->delivery_tag);
}

/* ---- confirms and the end of the iteration ------------------------------ */

static void
broker_on_confirm(struct bus *bus, uint64_t seq, bool multiple, bool ack,
    void *arg)
{
	struct broker *b = arg;
	struct outmsg *o, *next;

	TAILQ_FOREACH_SAFE(o, &b->inflight, entry, next) {
		/* In flight in publish order: nothing past SEQ is confirmed. */
		if (o->seq > seq)
			break;
		if (!multiple && o->seq != seq)
			continue;
		TAILQ_REMOVE(&b->inflight, o, entry);
		if (!ack) {
			log_warnx("RabbitMQ refused %s to %s/%s; sending it "
			    "again", o->type, o->exchange, o->key);
			TAILQ_INSERT_TAIL(&b->cur->msgs, o, entry);
			continue;
		}
		if (o->outbox_id != 0)
			push_u64(&b->done, &b->ndone, &b->done_cap,
			    o->outbox_id);
		outmsg_free(o);
	}
}

static void
broker_lost_bus(struct broker *b)
{
	fatalx("AMQP connection lost: %s; exiting so that a supervisor "
	    "restarts resbusd (state is in the store)", bus_error(b->bus));
}

static void broker_store_watch(struct broker *b);

/* The commit of BT's transaction is durable: publish, then acknowledge. */
static void
broker_committed(void *arg, bool ok)
{
	struct batch *bt = arg;
	struct broker *b = bt->owner;
	struct bus_props props;
	struct outmsg *o;
	size_t i;

	if (!ok)
		broker_store_failed(b, "commit");
	b->committing = false;
	while ((o = TAILQ_FIRST(&bt->msgs)) != NULL) {
		TAILQ_REMOVE(&bt->msgs, o, entry);
		memset(&props, 0, sizeof(props));
		props.type = o->type;
		props.correlation_id = o->correlation_id;
		props.persistent = o->outbox_id != 0;
		if (bus_publish(b->bus, o->exchange, o->key, &props, o->body,
		    o->len, &o->seq) == -1)
			broker_lost_bus(b);
		TAILQ_INSERT_TAIL(&b->inflight, o, entry);
	}
	notify_publish(b->notify, bt);
	for (i = 0; i < bt->nacks; i++)
		if (bus_ack(b->bus, bt->acks[i]) == -1)
			broker_lost_bus(b);
	batch_free(bt);
}

/*
 * Schedule, then commit what this iteration changed.  One commit is in
 * flight at a time; what happens meanwhile goes into the next.
 */
static void
broker_flush_once(struct broker *b)
{
	struct batch *bt;
	size_t i;

	sched_run(b->sched);
	/*
	 * Confirmed messages leave the outbox in a transaction that commits
	 * anyway, so a confirm alone never costs an fsync; when nothing else
	 * happens, the sweep timer writes them within a second.  A delete
	 * lost in a crash only sends a message again, which every handler
	 * takes idempotently.
	 */
	if (b->ndone > 0 && (b->store->in_txn || b->sweep_due ||
	    b->ndone >= OUTBOX_SWEEP_MAX)) {
		for (i = 0; i < b->ndone; i++)
			if (store_begin(b->store) == -1 ||
			    b->store->be->del_outbox(b->store,
				b->done[i]) == -1)
				broker_store_failed(b, "outbox delete");
		b->ndone = 0;
		b->sweep_due = false;
		ev_timer_stop(b->loop, &b->sweep);
	} else if (b->ndone > 0 && !ev_is_active(&b->sweep)) {
		ev_timer_set(&b->sweep, OUTBOX_SWEEP_S, 0.);
		ev_timer_start(b->loop, &b->sweep);
	}
	if (!b->committing && (b->store->in_txn ||
	    !TAILQ_EMPTY(&b->cur->msgs) || b->cur->nacks > 0)) {
		bt = b->cur;
		bt->owner = b;
		b->cur = batch_new();
		notify_seal(b->notify, bt);
		b->committing = true;
		if (store_commit(b->store, broker_committed, bt) == -1)
			broker_store_failed(b, "commit");
	}
	broker_store_watch(b);
}

static void
broker_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct broker *b = container_of(w, struct broker, flush);

	for (;;) {
		broker_flush_once(b);
		if (!bus_pending(b->bus))
			break;
		if (bus_poll(b->bus, 0) == -1)
			broker_lost_bus(b);
	}
}

/* Watches a networked store's socket for what it waits for. */
static void
broker_store_watch(struct broker *b)
{
	if (b->store->be->fd(b->store) < 0)
		return;
	if (b->store->be->want_write(b->store))
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

	if (b->store->be->io(b->store) == -1)
		broker_store_failed(b, "io");
	broker_store_watch(b);
}

static void
broker_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct broker *b = container_of(w, struct broker, bus_io);

	if (bus_poll(b->bus, 0) == -1)
		broker_lost_bus(b);
}

static void
broker_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, sweep);

	/* The flush before the loop sleeps writes them. */
	b->sweep_due = true;
}

static void
broker_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, heartbeat);

	if (bus_poll(b->bus, 0) == -1)
		broker_lost_bus(b);
}

/* ---- start-up -------------------------------------------------------- */

static void
broker_load_outbox(void *arg, const struct store_outbox *row)
{
	struct broker *b = arg;
	struct outmsg *o;

	o = outmsg_new(row->exchange, row->routing_key, row->type, row->body,
	    row->len);
	o->outbox_id = row->id;
	if (row->id > b->last_outbox_id)
		b->last_outbox_id = row->id;
	TAILQ_INSERT_TAIL(&b->cur->msgs, o, entry);
}

static void
broker_consume_known(void *arg, const char *key)
{
	(void)broker_consume_tagset(arg, key);
}

static int
broker_consume(struct broker *b, char *queue)
{
	int rc = bus_consume(b->bus, queue, false, broker_on_delivery, b);

	if (rc == -1)
		log_warnx("cannot consume %s: %s", queue, bus_error(b->bus));
	free(queue);
	return rc;
}

/* control's view of the broker: replies and reloads. */
static void
control_reply(void *ctx, const struct bus_delivery *d,
    const ProtobufCMessage *m)
{
	broker_reply(ctx, d, m);
}

static int
control_reload(void *ctx, char *err, size_t errlen)
{
	return broker_reload(ctx, err, errlen);
}

static void
broker_on_control(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct broker *b = arg;
	struct control_ops ops = { control_reply, control_reload, b };

	control_handle(b->sched, b->server, d, &ops);
	sched_touch(b->sched);
	broker_ack(b, d->delivery_tag);
}

struct broker *
broker_new(struct ev_loop *loop, const char *amqp_url,
    const struct conf_server *server, struct conf_pools *pools,
    const char *pools_path, struct store *store)
{
	struct sched_ops ops = { broker_emit, broker_wake, broker_observe,
		NULL };
	struct broker *b = xcalloc(1, sizeof(*b));
	char err[512];
	size_t i;

	b->loop = loop;
	b->store = store;
	b->server = server;
	b->pools = pools;
	b->pools_path = xstrdup(pools_path);
	b->prefix = xstrdup(server->prefix ? server->prefix :
	    RESBUS_DEFAULT_PREFIX);
	b->cur = batch_new();
	TAILQ_INIT(&b->inflight);
	ops.ctx = b;
	b->sched = sched_new(loop, store, b->prefix, pools, &ops);
	sched_set_policy(b->sched, server);
	if (sched_load(b->sched, broker_load_outbox, b) == -1) {
		log_warnx("store: cannot load state: %s", store_error(store));
		goto fail;
	}
	b->bus = bus_connect(amqp_url, "resbusd", err, sizeof(err));
	if (b->bus == NULL) {
		log_warnx("cannot connect to the AMQP broker: %s", err);
		goto fail;
	}
	if (topo_declare_core(b->bus, b->prefix) == -1 ||
	    bus_confirm_select(b->bus, broker_on_confirm, b) == -1 ||
	    bus_qos(b->bus, BROKER_PREFETCH) == -1) {
		log_warnx("cannot set up the bus: %s", bus_error(b->bus));
		goto fail;
	}
	for (i = 0; i < pools->npools; i++)
		if (topo_declare_pool(b->bus, b->prefix,
		    pools->pools[i].name) == -1) {
			log_warnx("pool %s: %s", pools->pools[i].name,
			    bus_error(b->bus));
			goto fail;
		}
	sched_foreach_tagset(b->sched, broker_consume_known, b);
	if (broker_consume(b, topo_broker_events_queue(b->prefix)) == -1 ||
	    broker_consume(b, topo_request_queue(b->prefix)) == -1 ||
	    broker_consume(b, topo_unrouted_queue(b->prefix)) == -1)
		goto fail;
	{
		char *q = topo_control_queue(b->prefix);

		if (bus_consume(b->bus, q, false, broker_on_control, b) == -1) {
			log_warnx("cannot consume %s: %s", q,
			    bus_error(b->bus));
			free(q);
			goto fail;
		}
		free(q);
	}

	ev_io_init(&b->bus_io, broker_readable, bus_fd(b->bus), EV_READ);
	ev_io_start(loop, &b->bus_io);
	if (store->be->fd(store) >= 0) {
		ev_io_init(&b->store_rio, broker_store_io, store->be->fd(store),
		    EV_READ);
		ev_io_init(&b->store_wio, broker_store_io, store->be->fd(store),
		    EV_WRITE);
		ev_io_start(loop, &b->store_rio);
	}
	if (server->notify && (b->notify = notify_new(server, b->bus)) == NULL)
		goto fail;
	/* A status page that cannot listen is logged, not fatal. */
	if (http_listen_enabled(server->http_listen))
		b->http = http_new(loop, server->http_listen, b->sched);
	ev_prepare_init(&b->flush, broker_flush);
	ev_prepare_start(loop, &b->flush);
	ev_timer_init(&b->sweep, broker_sweep, OUTBOX_SWEEP_S, 0.);
	ev_timer_init(&b->heartbeat, broker_heartbeat, BROKER_HEARTBEAT_S,
	    BROKER_HEARTBEAT_S);
	ev_timer_start(loop, &b->heartbeat);
	log_info("resbusd serving %zu pools, %zu open tickets", pools->npools,
	    sched_open_tickets(b->sched));
	return b;
fail:
	broker_free(b);
	return NULL;
}

int
broker_reload(struct broker *b, char *err, size_t errlen)
{
	struct conf_pools *fresh;
	size_t i;

	fresh = conf_pools_load(b->pools_path, err, errlen);
	if (fresh == NULL)
		return -1;
	for (i = 0; i < fresh->npools; i++)
		if (topo_declare_pool(b->bus, b->prefix,
		    fresh->pools[i].name) == -1) {
			snprintf(err, errlen, "pool %s: %s",
			    fresh->pools[i].name, bus_error(b->bus));
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
	struct outmsg *o;
	int i;

	if (b == NULL)
		return;
	if (b->bus != NULL) {
		ev_io_stop(b->loop, &b->bus_io);
		ev_io_stop(b->loop, &b->store_rio);
		ev_io_stop(b->loop, &b->store_wio);
		ev_prepare_stop(b->loop, &b->flush);
		ev_timer_stop(b->loop, &b->heartbeat);
		ev_timer_stop(b->loop, &b->sweep);
		b->sweep_due = true;
		/* Finish the last commit, and give confirms a moment so that
		 * the outbox stays small; what is left is re-sent at start. */
		for (i = 0; i < 50 && (b->committing || b->store->in_txn ||
		    !TAILQ_EMPTY(&b->inflight)); i++) {
			broker_flush_once(b);
			if (b->committing && b->store->be->io(b->store) == -1)
				break;
			if (bus_poll(b->bus, 10) == -1)
				break;
		}
		bus_free(b->bus);
	}
	while ((o = TAILQ_FIRST(&b->inflight)) != NULL) {
		TAILQ_REMOVE(&b->inflight, o, entry);
		outmsg_free(o);
	}
	batch_free(b->cur);
	http_free(b->http);
	notify_free(b->notify);
	sched_free(b->sched);
	free(b->done);
	conf_pools_free(b->pools);
	free(b->pools_path);
	free(b->prefix);
	free(b->unrouted_queue);
	free(b);
}
