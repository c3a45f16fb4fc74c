/*
 * broker_ticket -- the handlers of clients' messages about tickets:
 * TicketRequest (from the ticket queues and the unrouted queue), and
 * TicketQuery, TicketRenew and TicketClose (from the request queue).
 *
 * A request is checked whole before anything changes: its tags make the
 * canonical key of its tag set, which must be the routing key it came
 * with; its labels, sandbox and owner (a delegate may name one) are
 * checked too.  Idempotency keys are scoped by the sender, so that one
 * user's retry finds its ticket and another user's same key makes a
 * ticket of its own.
 *
 * A question about a ticket is answered from memory while the ticket is
 * open, from the store once it is closed; only its owner, the delegate
 * that took it for the owner and admins may act on it or see its
 * resource's data.  A reply that waits for the store acknowledges its
 * delivery with it (reply_stored).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_priv.h"
#include "bus.h"
#include "conf.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "tags.h"
#include "util.h"

/* Whether USER may take tickets for others (server.yaml `delegates`). */
static bool
broker_is_delegate(const struct broker *b, const char *user)
{
	return broker_user_in(
	    b->server->delegates, b->server->ndelegates, user);
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

void
broker_on_ticket_request(const ProtobufCMessage *m, void *ctx, void *arg)
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
	if (store_get_ticket(b->store, id, reply_stored, rt) == -1)
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

void
broker_on_ticket_query(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketQuery *q = (const Resbus__V1__TicketQuery *)m;
	struct delivery_ctx *dc = arg;

	reply_ticket(ctx, dc, q->ticket_id);
}

void
broker_on_ticket_renew(const ProtobufCMessage *m, void *ctx, void *arg)
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

void
broker_on_ticket_close(const ProtobufCMessage *m, void *ctx, void *arg)
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
