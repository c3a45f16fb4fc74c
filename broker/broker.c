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
 * The batches, their commit, publishing with confirms and the outbox
 * table are outbox.c's; this file fills the batch and drives the flush.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include <ev.h>

#include "broker.h"
#include "bus.h"
#include "conf.h"
#include "control.h"
#include "delivery.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "outbox.h"
#include "peers.h"
#include "sched.h"
#include "store.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

#define BROKER_PREFETCH 1000
/* "<prefix>.ticket.<key>" stays within AMQP's 255 bytes. */
#define RESBUS_PREFIX_MAX 40
#define BROKER_HEARTBEAT_S 1. /* polls, so that heartbeats go out */

/*
 * Which queue a delivery came from, and so what it may carry: tickets
 * from the ticket queues, clients' questions from the request queue,
 * job results from the broker's event queue.
 */
enum broker_source {
	SRC_TICKET,
	SRC_REQUEST,
	SRC_RESULT,
	SRC_COUNT,
};

/*
 * A redelivered message, held until the commit that counts this delivery
 * is durable: a message that kills resbusd while it is handled is
 * counted at each start, and dead-lettered past max_redeliveries.
 */
struct held {
	TAILQ_ENTRY(held) entry;
	enum broker_source src;
	uint64_t fp;
	struct bus_delivery d; /* strings and body are copies */
};

struct broker {
	struct ev_loop *loop;
	struct bus *bus;
	struct store *store;
	struct sched *sched;
	struct http *http;	 /* NULL: no status page */
	struct history *history; /* the status page's; NULL without it */
	struct notify *notify;	 /* NULL: no notifications */
	const struct conf_server *server;
	struct conf_pools *pools; /* owned */
	char *pools_path;
	char *prefix;
	char *unrouted_queue;
	ev_io bus_io;
	ev_io store_rio, store_wio; /* a networked store's socket */
	ev_prepare flush;
	ev_timer heartbeat;
	ev_timer lease; /* keeps a networked store's session busy */
	char *leader;	/* "pid N on HOST" */
	int64_t leader_epoch, leader_since_ms;
	struct outbox outbox; /* batches, confirms, group commit */
	char *dead_exchange;
	char **new_tagsets; /* to declare and consume, off handlers */
	size_t nnew_tagsets, new_tagsets_cap;
	struct held_list ready; /* held deliveries whose count is durable */
	struct delivery_counts *counts; /* of redelivered messages */
	struct peers standbys;		/* the standby brokers heard */
};

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
	const char *dead; /* refused as invalid: dead-letter it */
	char why[512];	  /* what dead may point to */
};

static void
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

/* Acknowledges delivery TAG once this iteration's changes are durable. */
static void
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

/* A reply to the client that sent D; published after the commit. */
static void
broker_reply(
    struct broker *b, const struct bus_delivery *d, const ProtobufCMessage *m)
{
	struct outmsg *o;
	size_t len;
	void *body;

	if (d->reply_to == NULL || d->reply_to[0] == '\0')
		return;
	body = msg_pack(m, &len);
	o = outbox_msg_new("", d->reply_to, msg_type(m), body, len);
	free(body);
	if (d->correlation_id != NULL && d->correlation_id[0] != '\0')
		o->correlation_id = xstrdup(d->correlation_id);
	outbox_add(&b->outbox, o);
}

static void
broker_reply_error(
    struct broker *b, const struct bus_delivery *d, const char *message)
{
	Resbus__V1__Error e = RESBUS__V1__ERROR__INIT;

	e.message = (char *)message;
	broker_reply(b, d, &e.base);
}

/* Whether USER is one of the N users of LIST. */
static bool
user_in(char *const *list, size_t n, const char *user)
{
	size_t i;

	for (i = 0; user != NULL && i < n; i++)
		if (strcmp(list[i], user) == 0)
			return true;
	return false;
}

/*
 * Whether USER is an admin: one of server.yaml's `admins`, or, when
 * there are none, the broker's own login, as whoever can read a
 * resalloc server's configuration can administer it.
 */
static bool
broker_is_admin(const struct broker *b, const char *user)
{
	if (b->server->nadmins == 0)
		return user != NULL && strcmp(user, bus_user(b->bus)) == 0;
	return user_in(b->server->admins, b->server->nadmins, user);
}

/* Whether USER may take tickets for others (server.yaml `delegates`). */
static bool
broker_is_delegate(const struct broker *b, const char *user)
{
	return user_in(b->server->delegates, b->server->ndelegates, user);
}

/*
 * The owner a ticket request names, if any, checked: only a delegate may
 * name one, and a name is what a user_id may be.  0 with *owner (borrowed
 * from REQ, or the sender) and *delegate (NULL unless one named it), or
 * -1 with the reason in ERR.
 */
static int
ticket_owner(const struct broker *b, const Resbus__V1__TicketRequest *req,
    const char *user, const char **owner, const char **delegate, char *err,
    size_t errlen)
{
	size_t i;

	*owner = user;
	*delegate = NULL;
	if (req->owner == NULL || req->owner[0] == '\0')
		return 0;
	if (!broker_is_delegate(b, user)) {
		snprintf(err, errlen,
		    "user \"%.64s\" is not one of the "
		    "delegates in server.yaml and cannot name an owner",
		    user);
		return -1;
	}
	for (i = 0; req->owner[i] != '\0'; i++)
		if (i >= 128 || (unsigned char)req->owner[i] <= ' ' ||
		    (unsigned char)req->owner[i] == 0x7f)
			break;
	if (req->owner[i] != '\0') {
		snprintf(err, errlen,
		    "invalid owner: 1 to 128 bytes without "
		    "spaces or control characters");
		return -1;
	}
	*owner = req->owner;
	*delegate = user;
	return 0;
}

/* Whether job results from USER are believed (server.yaml `workers`). */
static bool
broker_is_worker(const struct broker *b, const char *user)
{
	if (user == NULL)
		return false;
	if (!b->server->workers_set)
		return strcmp(user, bus_user(b->bus)) == 0;
	return user_in(b->server->workers, b->server->nworkers, user);
}

/*
 * Republishes D to the dead-letter exchange with REASON, after this
 * iteration's commit, and acknowledges it with that: a refused message
 * is kept for an operator to look at, never dropped silently.  The body
 * is kept up to MSG_MAX_BYTES.
 */
static void
broker_dead_letter(
    struct broker *b, const struct bus_delivery *d, const char *reason)
{
	struct outmsg *o;
	size_t len = d->len < MSG_MAX_BYTES ? d->len : MSG_MAX_BYTES;

	o = outbox_msg_new(
	    b->dead_exchange, "", d->type != NULL ? d->type : "", d->body, len);
	if (d->correlation_id != NULL && d->correlation_id[0] != '\0')
		o->correlation_id = xstrdup(d->correlation_id);
	o->dead_reason = xstrdup(reason);
	o->dead_source = xasprintf("%s/%s", d->exchange ? d->exchange : "",
	    d->routing_key ? d->routing_key : "");
	o->dead_user = xstrdup(d->user_id ? d->user_id : "");
	o->dead_queue = xstrdup(d->queue ? d->queue : "");
	outbox_add(&b->outbox, o);
}

/*
 * Refuses D as invalid: says why to its sender (a client; a worker gets
 * no answer), logs it, dead-letters it and acknowledges it.
 */
static void
broker_refuse(struct broker *b, const struct bus_delivery *d,
    enum broker_source src, const char *reason)
{
	log_warnx("refused a message of type \"%.80s\" from user \"%.64s\" "
		  "via %.64s/%.200s: %s",
	    d->type ? d->type : "", d->user_id ? d->user_id : "",
	    d->exchange ? d->exchange : "",
	    d->routing_key ? d->routing_key : "", reason);
	if (src != SRC_RESULT)
		broker_reply_error(b, d, reason);
	broker_dead_letter(b, d, reason);
	broker_ack(b, d->delivery_tag);
}

/*
 * Tag set KEY is new: its queue is declared and consumed at the end of
 * the iteration, not in the handler (the declare, bind and consume go
 * out without waiting for their answers there).
 */
static void
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

/* ---- handlers ---------------------------------------------------------- */

/*
 * The labels of REQ as "key=value\n..." in *out (caller frees; NULL if
 * none), checked: keys are [a-z0-9_]{1,32}, values printable ASCII of at
 * most 256 bytes without newlines.  -1 with a message in ERR.  Linear in
 * the size of the labels.
 */
static int
labels_text(
    const Resbus__V1__TicketRequest *req, char **out, char *err, size_t errlen)
{
	const char *k, *v;
	size_t i, j, len = 0, kl, vl;
	char *text, *p;

	*out = NULL;
	for (i = 0; i < req->n_labels; i++) {
		k = req->labels[i]->key;
		v = req->labels[i]->value;
		for (j = 0; k[j] != '\0'; j++)
			if (j >= 32 ||
			    !((k[j] >= 'a' && k[j] <= 'z') ||
				(k[j] >= '0' && k[j] <= '9') || k[j] == '_'))
				break;
		if (j == 0 || k[j] != '\0') {
			snprintf(
			    err, errlen, "invalid label name \"%.40s\"", k);
			return -1;
		}
		for (j = 0; v[j] != '\0'; j++)
			if (j >= 256 || (unsigned char)v[j] < ' ' ||
			    (unsigned char)v[j] >= 0x7f)
				break;
		if (v[j] != '\0') {
			snprintf(err, errlen, "invalid value of label %s", k);
			return -1;
		}
		len += strlen(k) + strlen(v) + 2;
	}
	if (req->n_labels == 0)
		return 0;
	text = p = xmalloc(len + 1);
	for (i = 0; i < req->n_labels; i++) {
		kl = strlen(req->labels[i]->key);
		vl = strlen(req->labels[i]->value);
		memcpy(p, req->labels[i]->key, kl);
		p[kl] = '=';
		memcpy(p + kl + 1, req->labels[i]->value, vl);
		p[kl + 1 + vl] = '\n';
		p += kl + vl + 2;
	}
	*p = '\0';
	*out = text;
	return 0;
}

/*
 * The idempotency key as the store keeps it: scoped by OWNER, so that
 * another user re-sending it gets a ticket of their own.  Caller frees;
 * NULL for no key.
 */
static char *
idem_scoped(const char *owner, const char *key)
{
	if (key == NULL || key[0] == '\0')
		return NULL;
	return xasprintf("%zu:%s:%s", strlen(owner), owner, key);
}

/*
 * Checks what on_ticket_request takes from REQ beyond msg_check: the
 * tags (into *key, caller frees), the routing key, the sandbox and the
 * labels (into *labels, caller frees).  -1 with a message in ERR.
 */
static int
ticket_request_check(const Resbus__V1__TicketRequest *req,
    const struct bus_delivery *d, char **key, char **labels, char *err,
    size_t errlen)
{
	const char *bad;

	*key = tagset_key(req->tags, req->n_tags, &bad);
	if (*key == NULL) {
		if (bad != NULL)
			snprintf(err, errlen, "invalid tag \"%.80s\"", bad);
		else
			snprintf(err, errlen,
			    "a ticket needs 1 to %d tags, "
			    "and their key at most %d bytes",
			    TAGSET_MAX_TAGS, TAGSET_KEY_MAX);
		return -1;
	}
	if (d->routing_key != NULL && strcmp(d->routing_key, *key) != 0) {
		snprintf(err, errlen,
		    "routing key \"%.80s\" is not the "
		    "canonical key \"%s\" of the tags",
		    d->routing_key, *key);
		goto fail;
	}
	if (req->sandbox[0] != '\0' && !sandbox_valid(req->sandbox)) {
		snprintf(err, errlen, "invalid sandbox");
		goto fail;
	}
	if (labels_text(req, labels, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	free(*key);
	*key = NULL;
	return -1;
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
	char err[512], *key = NULL, *labels = NULL, *idem;
	uint64_t id;

	/*
	 * Without a reply queue nobody would learn the ticket's ID, and its
	 * resource would be held for nobody: refused, kept in resbus.dead.
	 */
	if (dc->d->reply_to == NULL || dc->d->reply_to[0] == '\0')
		snprintf(err, sizeof(err),
		    "a TicketRequest needs the AMQP "
		    "reply_to property");
	/* It is kept with the ticket: text, as the store takes it. */
	else if (!msg_utf8_valid(dc->d->reply_to, strlen(dc->d->reply_to)))
		snprintf(err, sizeof(err), "reply_to is not valid UTF-8");
	else if (ticket_request_check(
		     req, dc->d, &key, &labels, err, sizeof(err)) == 0)
		err[0] = '\0';
	if (err[0] != '\0') {
		broker_reply_error(b, dc->d, err);
		snprintf(dc->why, sizeof(dc->why), "invalid ticket request: %s",
		    err);
		dc->dead = dc->why;
		log_warnx("ticket request from user \"%.64s\" via %.200s "
			  "refused: %s",
		    dc->d->user_id,
		    dc->d->routing_key ? dc->d->routing_key : "", err);
		return;
	}
	memset(&tr, 0, sizeof(tr));
	if (ticket_owner(b, req, dc->d->user_id, &tr.owner, &tr.delegate, err,
		sizeof(err)) == -1) {
		broker_reply_error(b, dc->d, err);
		snprintf(dc->why, sizeof(dc->why),
		    "ticket request naming an "
		    "owner refused: %s",
		    err);
		dc->dead = dc->why;
		log_warnx("ticket request from user \"%.64s\" refused: %s",
		    dc->d->user_id, err);
		free(labels);
		free(key);
		return;
	}
	idem = idem_scoped(dc->d->user_id, req->idempotency_key);
	tr.idem_key = idem != NULL ? idem : "";
	tr.key = key;
	tr.sandbox = req->sandbox;
	tr.labels = labels;
	tr.class_ = req->class_;
	tr.lease_s = req->lease_s;
	tr.deadline_ms = req->deadline_ms;
	tr.refuse_unprovidable = req->refuse_unprovidable;
	tr.reply_to = dc->d->reply_to;
	if (sched_ticket_new(b->sched, &tr, &id, err, sizeof(err)) == -1) {
		log_info("ticket request for %s refused: %s", key, err);
		broker_reply_error(b, dc->d, err);
	} else {
		if (sched_tagset_add(b->sched, key) == 1)
			broker_tagset_later(b, key);
		acc.ticket_id = id;
		acc.idempotency_key = req->idempotency_key;
		broker_reply(b, dc->d, &acc.base);
		/* A retry of a request whose ticket is served already. */
		sched_ticket_reply(b->sched, id);
	}
	free(idem);
	free(labels);
	free(key);
}

/* Where a reply about a ticket goes, kept while the store looks it up. */
struct reply_to {
	struct broker *b;
	uint64_t id;
	uint64_t delivery_tag; /* acknowledged with the reply */
	char *reply_to;
	char *correlation_id;
	char *user; /* who asks */
	bool admin; /* an admin asks */
};

static void
reply_update(struct broker *b, const char *reply_to, const char *correlation_id,
    const Resbus__V1__TicketUpdate *u)
{
	struct bus_delivery d;

	memset(&d, 0, sizeof(d));
	d.reply_to = reply_to;
	d.correlation_id = correlation_id;
	broker_reply(b, &d, &u->base);
}

static void
reply_stored(void *arg, int found, const char *state, const char *owner,
    const char *delegate, const void *data, size_t data_len)
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
		/* The resource's data is for the owner, the delegate that
		 * took the ticket for the owner, and admins. */
		if (rt->admin ||
		    (owner != NULL && strcmp(owner, rt->user) == 0) ||
		    (delegate != NULL && strcmp(delegate, rt->user) == 0)) {
			u.output.data = (uint8_t *)data;
			u.output.len = data_len;
		}
		if (owner != NULL)
			u.owner = (char *)owner;
	}
	if (found == -1) {
		memset(&d, 0, sizeof(d));
		d.reply_to = rt->reply_to;
		d.correlation_id = rt->correlation_id;
		e.message = (char *)"store error";
		broker_reply(b, &d, &e.base);
	} else {
		reply_update(b, rt->reply_to, rt->correlation_id, &u);
	}
	broker_ack(b, rt->delivery_tag);
	free(rt->reply_to);
	free(rt->correlation_id);
	free(rt->user);
	free(rt);
}

/* The update a client gets about the ticket V shows. */
static void
update_from_view(Resbus__V1__TicketUpdate *u, const struct sched_ticket_view *v)
{
	u->ticket_id = v->id;
	u->state = v->state;
	u->assigned = v->assigned;
	u->output.data = (uint8_t *)v->output;
	u->output.len = v->output_len;
	u->waiting_reason =
	    (char *)(v->waiting_reason ? v->waiting_reason : "");
	if (v->owner != NULL)
		u->owner = (char *)v->owner;
	u->created_ms = v->created_ms;
	u->resource_id = v->resource_id;
	if (v->resource_name != NULL)
		u->resource_name = (char *)v->resource_name;
	if (v->resource_pool != NULL)
		u->resource_pool = (char *)v->resource_pool;
}

/*
 * Answers DC's delivery about ticket ID, which is not in memory, from the
 * store; the delivery is acknowledged with the answer.  Its resource's
 * data goes only to its owner and admins.
 */
static void
reply_from_store(struct broker *b, struct delivery_ctx *dc, uint64_t id)
{
	struct reply_to *rt;

	rt = xcalloc(1, sizeof(*rt));
	rt->b = b;
	rt->id = id;
	rt->delivery_tag = dc->d->delivery_tag;
	rt->reply_to = xstrdup(dc->d->reply_to ? dc->d->reply_to : "");
	rt->correlation_id =
	    xstrdup(dc->d->correlation_id ? dc->d->correlation_id : "");
	rt->user = xstrdup(dc->d->user_id);
	rt->admin = broker_is_admin(b, dc->d->user_id);
	dc->ack_later = true;
	if (b->store->be->get_ticket(b->store, id, reply_stored, rt) == -1)
		broker_store_failed(b, "get ticket");
}

/*
 * Whether DC's sender may act on the ticket V shows: its owner, the
 * delegate that took it for the owner, and admins may; anyone else is
 * told so (the ticket's existence is no secret, its resource is).
 */
static bool
ticket_allowed(struct broker *b, struct delivery_ctx *dc,
    const struct sched_ticket_view *v, const char *what)
{
	char err[128];

	if ((v->owner != NULL && strcmp(v->owner, dc->d->user_id) == 0) ||
	    (v->delegate != NULL && strcmp(v->delegate, dc->d->user_id) == 0) ||
	    broker_is_admin(b, dc->d->user_id))
		return true;
	snprintf(err, sizeof(err), "ticket %llu is not yours",
	    (unsigned long long)v->id);
	log_info("%s of ticket %llu by user \"%.64s\" refused: its owner is "
		 "\"%.64s\"",
	    what, (unsigned long long)v->id, dc->d->user_id,
	    v->owner ? v->owner : "");
	broker_reply_error(b, dc->d, err);
	return false;
}

/*
 * The ticket ID of DC's request WHAT, in *V, when it is in memory and
 * its sender may act on it.  Otherwise the request is answered (from the
 * store, or refused) and false returned.
 */
static bool
ticket_for(struct broker *b, struct delivery_ctx *dc, uint64_t id,
    const char *what, struct sched_ticket_view *v)
{
	/* A ticket not in memory is closed already, or unknown. */
	if (sched_ticket_view(b->sched, id, v) == 0) {
		reply_from_store(b, dc, id);
		return false;
	}
	return ticket_allowed(b, dc, v, what);
}

/* Answers DC's delivery about ticket ID: from memory, or from the store. */
static void
reply_ticket(struct broker *b, struct delivery_ctx *dc, uint64_t id)
{
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	struct sched_ticket_view v;

	if (!ticket_for(b, dc, id, "query", &v))
		return;
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
	struct sched_ticket_view v;

	if (!ticket_for(b, dc, r->ticket_id, "renewal", &v))
		return;
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

	if (!ticket_for(b, dc, c->ticket_id, "close", &v))
		return;
	/*
	 * Closing frees the ticket: the answer is made first, from what it
	 * holds now, and goes out with the close's commit.
	 */
	update_from_view(&u, &v);
	u.state = RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED;
	u.waiting_reason = (char *)"";
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

/* What each queue may carry; anything else is refused. */
static const struct msg_handler ticket_handlers[] = {
    {&resbus__v1__ticket_request__descriptor, on_ticket_request},
    {NULL, NULL},
};

static const struct msg_handler request_handlers[] = {
    {&resbus__v1__ticket_query__descriptor, on_ticket_query},
    {&resbus__v1__ticket_close__descriptor, on_ticket_close},
    {&resbus__v1__ticket_renew__descriptor, on_ticket_renew},
    {NULL, NULL},
};

static const struct msg_handler result_handlers[] = {
    {&resbus__v1__allocate_result__descriptor, on_allocate_result},
    {&resbus__v1__delete_result__descriptor, on_delete_result},
    {&resbus__v1__livecheck_result__descriptor, on_livecheck_result},
    {&resbus__v1__release_result__descriptor, on_release_result},
    {&resbus__v1__list_result__descriptor, on_list_result},
    {NULL, NULL},
};

static const struct msg_handler *const source_handlers[SRC_COUNT] = {
    [SRC_TICKET] = ticket_handlers,
    [SRC_REQUEST] = request_handlers,
    [SRC_RESULT] = result_handlers,
};

/* Checks who sent D, then hands it to the handler of its queue. */
static void
broker_deliver(
    struct broker *b, const struct bus_delivery *d, enum broker_source src)
{
	struct delivery_ctx dc;
	char err[512];

	memset(&dc, 0, sizeof(dc));
	dc.d = d;
	if (d->user_id == NULL || d->user_id[0] == '\0') {
		broker_refuse(b, d, src,
		    "a request needs the AMQP user_id "
		    "property");
		return;
	}
	if (src == SRC_RESULT && !broker_is_worker(b, d->user_id)) {
		snprintf(err, sizeof(err),
		    "user \"%.64s\" is not one of the "
		    "workers in server.yaml",
		    d->user_id);
		broker_refuse(b, d, src, err);
		return;
	}
	if (msg_dispatch_err(source_handlers[src], d->type, d->body, d->len, b,
		&dc, err, sizeof(err)) == -1) {
		broker_refuse(b, d, src, err);
		return;
	}
	sched_touch(b->sched);
	if (dc.dead != NULL) {
		broker_dead_letter(b, d, dc.dead);
		broker_ack(b, d->delivery_tag);
	} else if (!dc.ack_later) {
		broker_ack(b, d->delivery_tag);
	}
}

/* ---- redelivered messages ------------------------------------------------ */

static void
held_free(struct held *h)
{
	free((char *)h->d.exchange);
	free((char *)h->d.routing_key);
	free((char *)h->d.consumer_tag);
	free((char *)h->d.type);
	free((char *)h->d.reply_to);
	free((char *)h->d.correlation_id);
	free((char *)h->d.message_id);
	free((char *)h->d.user_id);
	free((char *)h->d.queue);
	free((void *)h->d.body);
	free(h);
}

static const char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/*
 * D was delivered before, to a resbusd that stopped before it was
 * acknowledged: perhaps because handling it stopped resbusd.  Its count
 * goes up durably before it is handled (it waits for that commit); past
 * max_redeliveries it is dead-lettered instead, so that no message can
 * keep resbusd down.
 */
static void
broker_hold(
    struct broker *b, const struct bus_delivery *d, enum broker_source src)
{
	struct held *h;
	uint64_t fp = delivery_fp(d);
	int64_t attempts;
	char reason[160];
	int rc;

	rc = delivery_count(
	    b->counts, b->store, fp, b->server->max_redeliveries, &attempts);
	if (rc == -1)
		broker_store_failed(b, "delivery count");
	if (rc == 1) {
		snprintf(reason, sizeof(reason),
		    "delivered %lld times to a "
		    "resbusd that stopped while handling it",
		    (long long)attempts);
		log_warnx("message of type \"%.80s\" from user \"%.64s\" via "
			  "%.64s/%.200s (correlation id \"%.64s\") was %s; "
			  "dead-lettering it",
		    d->type ? d->type : "", d->user_id ? d->user_id : "",
		    d->exchange ? d->exchange : "",
		    d->routing_key ? d->routing_key : "",
		    d->correlation_id ? d->correlation_id : "", reason);
		if (src != SRC_RESULT)
			broker_reply_error(b, d,
			    "refused: the message was "
			    "delivered too many times");
		broker_dead_letter(b, d, reason);
		broker_ack(b, d->delivery_tag);
		if (delivery_count_drop(b->counts, b->store, fp) == -1)
			broker_store_failed(b, "delivery count");
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->src = src;
	h->fp = fp;
	h->d = *d;
	h->d.exchange = dup_or_null(d->exchange);
	h->d.routing_key = dup_or_null(d->routing_key);
	h->d.consumer_tag = dup_or_null(d->consumer_tag);
	h->d.type = dup_or_null(d->type);
	h->d.reply_to = dup_or_null(d->reply_to);
	h->d.correlation_id = dup_or_null(d->correlation_id);
	h->d.message_id = dup_or_null(d->message_id);
	h->d.user_id = dup_or_null(d->user_id);
	h->d.queue = dup_or_null(d->queue);
	h->d.body = xmalloc(d->len > 0 ? d->len : 1);
	memcpy((void *)h->d.body, d->body, d->len);
	TAILQ_INSERT_TAIL(&b->outbox.cur->held, h, entry);
}

/* Handles the held deliveries whose counts are durable now. */
static bool
broker_handle_ready(struct broker *b)
{
	struct held *h;
	bool any = false;

	while ((h = TAILQ_FIRST(&b->ready)) != NULL) {
		TAILQ_REMOVE(&b->ready, h, entry);
		broker_deliver(b, &h->d, h->src);
		if (delivery_count_drop(b->counts, b->store, h->fp) == -1)
			broker_store_failed(b, "delivery count");
		held_free(h);
		any = true;
	}
	return any;
}

static void
broker_receive(
    struct broker *b, const struct bus_delivery *d, enum broker_source src)
{
	if (d->redelivered && b->server->max_redeliveries > 0)
		broker_hold(b, d, src);
	else
		broker_deliver(b, d, src);
}

static void
broker_on_ticket(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_TICKET);
}

static void
broker_on_request(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_REQUEST);
}

static void
broker_on_result(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_RESULT);
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

/* Declares and consumes the tag sets recorded in this iteration. */
static void
broker_declare_tagsets(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->nnew_tagsets; i++) {
		(void)broker_consume_tagset(b, b->new_tagsets[i]);
		free(b->new_tagsets[i]);
	}
	b->nnew_tagsets = 0;
}

/* ---- the end of the iteration ------------------------------------------- */

static void
broker_lost_bus(struct broker *b)
{
	/* A queue of the other type: restarting would meet it again. */
	if (bus_conflict(b->bus)) {
		log_warnx("%s", bus_error(b->bus));
		exit(BUS_EXIT_CONFIG);
	}
	fatalx("AMQP connection lost: %s; exiting so that a supervisor "
	       "restarts resbusd (state is in the store)",
	    bus_error(b->bus));
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
broker_outbox_lost_bus(void *ctx)
{
	broker_lost_bus(ctx);
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

	for (;;) {
		broker_flush_once(b);
		if (!TAILQ_EMPTY(&b->ready))
			continue;
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
broker_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, heartbeat);

	peers_expire(&b->standbys, now_wall_ms());
	if (bus_poll(b->bus, 0) == -1)
		broker_lost_bus(b);
}

/*
 * A standby says that it waits (P.brokers, no acknowledgement).  Only
 * from the broker's own login or an admin; beats older than
 * PEERS_QUIET_MS (kept while no broker was active) and this broker's own
 * (from before it took over) are not news.
 */
static void
broker_on_standby(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct broker *b = arg;
	Resbus__V1__BrokerStandby *m;
	ProtobufCMessage *pm;
	char err[256];
	int64_t now = now_wall_ms();

	(void)bus;
	if (d->user_id == NULL || (strcmp(d->user_id, bus_user(b->bus)) != 0 &&
				      !broker_is_admin(b, d->user_id))) {
		log_warnx("%s: a standby's beat from user %s, not a broker's: "
			  "ignored",
		    d->queue, d->user_id ? d->user_id : "(none)");
		return;
	}
	if (d->type == NULL ||
	    strcmp(d->type, resbus__v1__broker_standby__descriptor.name) != 0 ||
	    (pm = msg_unpack(d->type, d->body, d->len)) == NULL) {
		log_warnx("%s: not a BrokerStandby (type %s): ignored",
		    d->queue, d->type ? d->type : "(none)");
		return;
	}
	if (msg_check(pm, err, sizeof(err)) == -1) {
		log_warnx("%s: %s: ignored", d->queue, err);
		msg_free(pm);
		return;
	}
	m = (Resbus__V1__BrokerStandby *)pm;
	if (m->who[0] != '\0' && strlen(m->who) <= PEERS_WHO_MAX &&
	    now - m->sent_ms <= PEERS_QUIET_MS &&
	    (b->leader == NULL || strcmp(m->who, b->leader) != 0))
		peers_heard(&b->standbys, m->who, m->since_ms, now);
	msg_free(pm);
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

	if (b->store->be->get_ticket(b->store, 0, broker_lease_answer, NULL) ==
	    -1)
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
	if (b->store->be->fd(b->store) >= 0) {
		ev_timer_init(&b->lease, broker_lease,
		    (double)b->server->leader_lease_s / 3.,
		    (double)b->server->leader_lease_s / 3.);
		ev_timer_start(b->loop, &b->lease);
	}
}

/* ---- start-up -------------------------------------------------------- */

static void
broker_consume_known(void *arg, const char *key)
{
	(void)broker_consume_tagset(arg, key);
}

static int
broker_consume(struct broker *b, char *queue, bus_deliver_fn *fn)
{
	int rc = bus_consume(b->bus, queue, false, fn, b);

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
static void
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

/* control's view of the broker: replies and reloads. */
static void
control_reply(
    void *ctx, const struct bus_delivery *d, const ProtobufCMessage *m)
{
	broker_reply(ctx, d, m);
}

static int
control_reload(void *ctx, char *err, size_t errlen)
{
	return broker_reload(ctx, err, errlen);
}

static bool
control_is_admin(void *ctx, const char *user)
{
	return broker_is_admin(ctx, user);
}

static void
control_status(void *ctx, struct control_status *st)
{
	struct broker *b = ctx;

	st->now_ms = now_wall_ms();
	peers_expire(&b->standbys, st->now_ms);
	st->who = b->leader;
	st->since_ms = b->leader_since_ms;
	st->epoch = b->leader_epoch;
	st->standbys = &b->standbys;
}

static void
broker_on_control(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	Resbus__V1__ControlReply r = RESBUS__V1__CONTROL_REPLY__INIT;
	struct broker *b = arg;
	struct control_ops ops = {
	    control_reply, control_reload, b, control_is_admin, control_status};
	const char *name = resbus__v1__control_request__descriptor.name;
	char err[256];

	/*
	 * Refused like the other queues' messages (logged, dead-lettered),
	 * but answered with the ControlReply a control client waits for.
	 */
	err[0] = '\0';
	if (d->type == NULL || d->type[0] == '\0')
		snprintf(err, sizeof(err), "no type property");
	else if (strcmp(d->type, name) != 0)
		snprintf(err, sizeof(err),
		    "a message of type \"%.80s\" is not "
		    "taken here",
		    d->type);
	else if (d->user_id == NULL || d->user_id[0] == '\0')
		snprintf(err, sizeof(err),
		    "a request needs the AMQP user_id "
		    "property");
	if (err[0] != '\0') {
		log_warnx("refused a message of type \"%.80s\" from user "
			  "\"%.64s\" on the control queue: %s",
		    d->type ? d->type : "", d->user_id ? d->user_id : "", err);
		r.error = err;
		r.version = MSG_CONTROL_VERSION;
		broker_reply(b, d, &r.base);
		broker_dead_letter(b, d, err);
		broker_ack(b, d->delivery_tag);
		return;
	}
	control_handle(b->sched, b->server, d, &ops);
	sched_touch(b->sched);
	broker_ack(b, d->delivery_tag);
}

struct broker *
broker_new(struct ev_loop *loop, const char *amqp_url,
    const struct conf_server *server, struct conf_pools *pools,
    const char *pools_path, struct store *store, struct bus *bus)
{
	struct sched_ops ops = {
	    broker_emit, broker_wake, broker_observe, NULL, broker_retire};
	struct outbox_ops oops = {broker_sealed, broker_durable,
	    broker_outbox_failed, broker_outbox_lost_bus, NULL};
	struct broker *b = xcalloc(1, sizeof(*b));
	char err[512];
	size_t i;

	b->loop = loop;
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
	if (strlen(b->prefix) > RESBUS_PREFIX_MAX) {
		log_warnx("prefix \"%s\" is longer than %d bytes: queue names "
			  "would pass AMQP's 255",
		    b->prefix, RESBUS_PREFIX_MAX);
		goto fail;
	}
	store->meta_tap = delivery_count_load;
	store->meta_tap_arg = b->counts;
	if (sched_load(b->sched, outbox_load, &b->outbox) == -1) {
		log_warnx("store: cannot load state: %s", store_error(store));
		goto fail;
	}
	store->meta_tap = NULL;
	if (delivery_counts_prune(b->counts, b->store) == -1)
		broker_store_failed(b, "delivery count");
	b->bus = bus != NULL
		     ? bus
		     : bus_connect(amqp_url, "resbusd", err, sizeof(err));
	if (b->bus == NULL) {
		log_warnx("cannot connect to the AMQP broker: %s", err);
		goto fail;
	}
	b->outbox.bus = b->bus;
	if (topo_declare_core(b->bus, b->prefix,
		topo_queue_flags(server->queue_type)) == -1 ||
	    topo_declare_brokers(b->bus, b->prefix,
		topo_queue_flags(server->queue_type)) == -1 ||
	    bus_confirm_select(b->bus, outbox_on_confirm, &b->outbox) == -1 ||
	    bus_qos(b->bus, BROKER_PREFETCH) == -1) {
		log_warnx("cannot set up the bus: %s", bus_error(b->bus));
		goto fail;
	}
	for (i = 0; i < pools->npools; i++)
		if (topo_declare_pool(b->bus, b->prefix, pools->pools[i].name,
			topo_queue_flags(server->queue_type)) == -1) {
			log_warnx("pool %s: %s", pools->pools[i].name,
			    bus_error(b->bus));
			goto fail;
		}
	sched_foreach_tagset(b->sched, broker_consume_known, b);
	if (broker_consume(b, topo_broker_events_queue(b->prefix),
		broker_on_result) == -1 ||
	    broker_consume(
		b, topo_request_queue(b->prefix), broker_on_request) == -1 ||
	    broker_consume(
		b, topo_unrouted_queue(b->prefix), broker_on_ticket) == -1)
		goto fail;
	{
		char *q = topo_control_queue(b->prefix);

		if (bus_consume(b->bus, q, false, broker_on_control, b) == -1) {
			log_warnx(
			    "cannot consume %s: %s", q, bus_error(b->bus));
			free(q);
			goto fail;
		}
		free(q);
		q = topo_brokers_queue(b->prefix);
		if (bus_consume(b->bus, q, true, broker_on_standby, b) == -1) {
			log_warnx(
			    "cannot consume %s: %s", q, bus_error(b->bus));
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
	http_set_standbys(b->http, &b->standbys);
	if (b->http != NULL) {
		b->history = history_new((double)server->history_interval_s);
		history_run(b->history, loop, b->sched);
		http_set_history(b->http, b->history);
	}
	ev_prepare_init(&b->flush, broker_flush);
	ev_prepare_start(loop, &b->flush);
	ev_timer_init(&b->heartbeat, broker_heartbeat, BROKER_HEARTBEAT_S,
	    BROKER_HEARTBEAT_S);
	ev_timer_start(loop, &b->heartbeat);
	log_info("resbusd serving %zu pools, %zu open tickets", pools->npools,
	    sched_open_tickets(b->sched));
	return b;
fail:
	if (b->bus != NULL && bus_conflict(b->bus))
		exit(BUS_EXIT_CONFIG);
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
		if (topo_declare_pool(b->bus, b->prefix, fresh->pools[i].name,
			topo_queue_flags(b->server->queue_type)) == -1) {
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
	int i;

	if (b == NULL)
		return;
	if (b->bus != NULL) {
		ev_io_stop(b->loop, &b->bus_io);
		ev_io_stop(b->loop, &b->store_rio);
		ev_io_stop(b->loop, &b->store_wio);
		ev_prepare_stop(b->loop, &b->flush);
		ev_timer_stop(b->loop, &b->heartbeat);
		ev_timer_stop(b->loop, &b->lease);
		outbox_stop(&b->outbox);
		/* Finish the last commit, and give confirms a moment so that
		 * the outbox stays small; what is left is re-sent at start. */
		for (i = 0;
		     i < 50 && (b->outbox.committing || b->store->in_txn ||
				   !TAILQ_EMPTY(&b->outbox.inflight));
		     i++) {
			broker_flush_once(b);
			if (b->outbox.committing &&
			    b->store->be->io(b->store) == -1)
				break;
			if (bus_poll(b->bus, 10) == -1)
				break;
		}
		bus_free(b->bus);
	}
	/* The held deliveries of the batch never committed go with the rest. */
	TAILQ_CONCAT(&b->ready, &b->outbox.cur->held, entry);
	outbox_clear(&b->outbox);
	{
		struct held *h;

		while ((h = TAILQ_FIRST(&b->ready)) != NULL) {
			TAILQ_REMOVE(&b->ready, h, entry);
			held_free(h);
		}
	}
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
	free(b->unrouted_queue);
	free(b);
}
