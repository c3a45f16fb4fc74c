/*
 * broker_recv -- what resbusd does with a message before and after its
 * handler: who may send what on which queue, the dispatch tables,
 * refusals (an answer to a client, a log line, a dead letter and an
 * acknowledgement), replies, and redelivered messages.
 *
 * A message arrives on one of four kinds of queue (enum broker_source),
 * and each kind has its table of handlers: the ticket queues take
 * TicketRequest, the request queue TicketQuery/Close/Renew, the
 * broker's event queue the workers' job results, and only from the
 * users server.yaml names as workers, the control queue ControlRequest.
 * Anything else is refused, kept in P.dead for an operator, and
 * acknowledged: never dropped silently.  A refused client is told why in
 * the answer it waits for: an Error, or on the control queue a
 * ControlReply.
 *
 * A redelivered message may be the one that stopped the previous
 * resbusd.  Its delivery is counted durably before it is handled (it is
 * held until that commit), and past max_redeliveries it is
 * dead-lettered instead, so that no message keeps resbusd down.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker_priv.h"
#include "bus.h"
#include "conf.h"
#include "delivery.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "sched.h"
#include "util.h"

/* A reply to the client that sent D; published after the commit. */
void
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

void
broker_reply_error(
    struct broker *b, const struct bus_delivery *d, const char *message)
{
	Resbus__V1__Error e = RESBUS__V1__ERROR__INIT;

	e.message = (char *)message;
	broker_reply(b, d, &e.base);
}

/* Whether USER is one of the N users of LIST. */
bool
broker_user_in(char *const *list, size_t n, const char *user)
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
bool
broker_is_admin(const struct broker *b, const char *user)
{
	if (b->server->nadmins == 0)
		return user != NULL && strcmp(user, bus_user(b->bus)) == 0;
	return broker_user_in(b->server->admins, b->server->nadmins, user);
}

/* Whether job results from USER are believed (server.yaml `workers`). */
static bool
broker_is_worker(const struct broker *b, const char *user)
{
	if (user == NULL)
		return false;
	if (!b->server->workers_set)
		return strcmp(user, bus_user(b->bus)) == 0;
	return broker_user_in(b->server->workers, b->server->nworkers, user);
}

/*
 * Republishes D to the dead-letter exchange with REASON, after this
 * iteration's commit, and acknowledges it with that: a refused message
 * is kept for an operator to look at, never dropped silently.  The body
 * is kept up to MSG_MAX_BYTES.
 */
void
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
 * Tells the sender of D, which came from SRC, that it was refused for
 * REASON, in the answer it waits for; a worker gets none.
 */
static void
broker_reply_refusal(struct broker *b, const struct bus_delivery *d,
    enum broker_source src, const char *reason)
{
	Resbus__V1__ControlReply r = RESBUS__V1__CONTROL_REPLY__INIT;

	switch (src) {
	case SRC_RESULT:
		break;
	case SRC_CONTROL:
		r.error = (char *)reason;
		r.version = MSG_CONTROL_VERSION;
		broker_reply(b, d, &r.base);
		break;
	default:
		broker_reply_error(b, d, reason);
		break;
	}
}

/*
 * Refuses D as invalid: says why to its sender, logs it, dead-letters it
 * and acknowledges it.
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
	broker_reply_refusal(b, d, src, reason);
	broker_dead_letter(b, d, reason);
	broker_ack(b, d->delivery_tag);
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
    {&resbus__v1__ticket_request__descriptor, broker_on_ticket_request},
    {NULL, NULL},
};

static const struct msg_handler request_handlers[] = {
    {&resbus__v1__ticket_query__descriptor, broker_on_ticket_query},
    {&resbus__v1__ticket_close__descriptor, broker_on_ticket_close},
    {&resbus__v1__ticket_renew__descriptor, broker_on_ticket_renew},
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

static const struct msg_handler control_handlers[] = {
    {&resbus__v1__control_request__descriptor, broker_on_control_request},
    {NULL, NULL},
};

static const struct msg_handler *const source_handlers[SRC_COUNT] = {
    [SRC_TICKET] = ticket_handlers,
    [SRC_REQUEST] = request_handlers,
    [SRC_RESULT] = result_handlers,
    [SRC_CONTROL] = control_handlers,
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
		broker_reply_refusal(b, d, src,
		    "refused: the message was delivered too many times");
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

bool
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

void
broker_on_ticket(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_TICKET);
}

void
broker_on_request(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_REQUEST);
}

void
broker_on_result(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_RESULT);
}

void
broker_on_control(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	broker_receive(arg, d, SRC_CONTROL);
}

void
broker_held_clear(struct held_list *list)
{
	struct held *h;

	while ((h = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, h, entry);
		held_free(h);
	}
}
