/*
 * outbox -- what a loop iteration of resbusd releases once its store
 * transaction is durable, and the messages on their way to RabbitMQ:
 * batches, group commit, publisher confirms, the in-flight list and the
 * sweep of confirmed rows.
 *
 * Handlers add to the current batch: durable messages (jobs and events,
 * each a row of the store's outbox table in the same transaction),
 * replies and dead letters (not in the outbox), delivery tags to
 * acknowledge, and redelivered messages held until their counts are
 * durable.  Before the loop sleeps, outbox_flush() commits the batch; one
 * commit is in flight at a time, and what happens meanwhile goes into
 * the next.  Once a commit is durable its messages are published, in
 * order, on a channel in confirm mode of a connection of their own (the
 * publishing one), and once RabbitMQ has confirmed them its deliveries
 * are acknowledged on the consuming connection.  A message RabbitMQ
 * refuses is sent again; a confirmed one leaves the outbox table in a
 * later transaction, so a crash between commit and confirm re-sends it
 * at the next start (outbox_load()).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ev.h>

#include "bus.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

#define OUTBOX_SWEEP_S 1.     /* confirmed rows wait at most this */
#define OUTBOX_SWEEP_MAX 1024 /* or until this many wait */

static struct batch *
batch_new(void)
{
	struct batch *bt = xcalloc(1, sizeof(*bt));

	TAILQ_INIT(&bt->msgs);
	TAILQ_INIT(&bt->held);
	return bt;
}

/* Frees BT and its messages; its held deliveries are the broker's. */
static void
batch_free(struct batch *bt)
{
	struct outmsg *o;

	while ((o = TAILQ_FIRST(&bt->msgs)) != NULL) {
		TAILQ_REMOVE(&bt->msgs, o, entry);
		outbox_msg_free(o);
	}
	free(bt->acks);
	free(bt);
}

static void
push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = x;
}

void
outbox_msg_free(struct outmsg *o)
{
	free(o->exchange);
	free(o->key);
	free(o->type);
	free(o->correlation_id);
	free(o->body);
	free(o->dead_reason);
	free(o->dead_source);
	free(o->dead_queue);
	free(o->dead_user);
	free(o);
}

struct outmsg *
outbox_msg_new(const char *exchange, const char *key, const char *type,
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

void
outbox_emit(struct outbox *ob, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	struct store_outbox row;
	struct outmsg *o;
	size_t len;
	void *body = msg_pack(m, &len);

	o = outbox_msg_new(exchange, key, msg_type(m), body, len);
	free(body);
	o->outbox_id = ++ob->last_outbox_id;
	row.id = o->outbox_id;
	row.exchange = o->exchange;
	row.routing_key = o->key;
	row.type = o->type;
	row.body = o->body;
	row.len = o->len;
	if (store_begin(ob->store) == -1 ||
	    store_add_outbox(ob->store, &row) == -1)
		ob->ops.store_failed(ob->ops.ctx, "outbox");
	TAILQ_INSERT_TAIL(&ob->cur->msgs, o, entry);
}

/* The commit of BT's transaction is durable: publish, then acknowledge. */
static void
outbox_committed(void *arg, bool ok)
{
	struct batch *bt = arg;
	struct outbox *ob = bt->owner;
	struct bus_header hdrs[4];
	struct bus_props props;
	struct ackwait *aw;
	struct outmsg *o;
	uint64_t last_seq = 0;
	size_t i;

	if (!ok)
		ob->ops.store_failed(ob->ops.ctx, "commit");
	ob->committing = false;
	while ((o = TAILQ_FIRST(&bt->msgs)) != NULL) {
		TAILQ_REMOVE(&bt->msgs, o, entry);
		memset(&props, 0, sizeof(props));
		props.type = o->type;
		props.correlation_id = o->correlation_id;
		/* Workers and clients may check who sent it. */
		props.user_id = bus_user(ob->pub);
		props.persistent = o->outbox_id != 0 || o->dead_reason != NULL;
		if (o->dead_reason != NULL) {
			hdrs[0].key = "x-resbus-reason";
			hdrs[0].kind = BUS_HDR_STRING;
			hdrs[0].s = o->dead_reason;
			hdrs[1].key = "x-resbus-source";
			hdrs[1].kind = BUS_HDR_STRING;
			hdrs[1].s = o->dead_source;
			hdrs[2].key = "x-resbus-user";
			hdrs[2].kind = BUS_HDR_STRING;
			hdrs[2].s = o->dead_user;
			hdrs[3].key = "x-resbus-queue";
			hdrs[3].kind = BUS_HDR_STRING;
			hdrs[3].s = o->dead_queue;
			props.headers = hdrs;
			props.nheaders = 4;
		}
		if (bus_publish(ob->pub, o->exchange, o->key, &props, o->body,
			o->len, &o->seq) == -1)
			ob->ops.lost_bus(ob->ops.ctx, ob->pub);
		TAILQ_INSERT_TAIL(&ob->inflight, o, entry);
		last_seq = o->seq;
	}
	ob->ops.durable(ob->ops.ctx, bt);
	if (bt->nacks > 0 && last_seq != 0) {
		if (ob->nacking == ob->acking_cap) {
			ob->acking_cap =
			    ob->acking_cap ? ob->acking_cap * 2 : 8;
			ob->acking = xrealloc(
			    ob->acking, ob->acking_cap * sizeof(*ob->acking));
		}
		aw = &ob->acking[ob->nacking++];
		aw->last_seq = last_seq;
		aw->acks = bt->acks;
		aw->nacks = bt->nacks;
		bt->acks = NULL;
		bt->nacks = 0;
	}
	for (i = 0; i < bt->nacks; i++)
		if (bus_ack(ob->bus, bt->acks[i]) == -1)
			ob->ops.lost_bus(ob->ops.ctx, ob->bus);
	batch_free(bt);
}

void
outbox_flush(struct outbox *ob)
{
	struct batch *bt;
	size_t i;

	/*
	 * Confirmed messages leave the outbox in a transaction that commits
	 * anyway, so a confirm alone never costs an fsync; when nothing else
	 * happens, the sweep timer writes them within a second.  A delete
	 * lost in a crash only sends a message again, which every handler
	 * takes idempotently.
	 */
	if (ob->ndone > 0 && (ob->store->in_txn || ob->sweep_due ||
				 ob->ndone >= OUTBOX_SWEEP_MAX)) {
		for (i = 0; i < ob->ndone; i++)
			if (store_begin(ob->store) == -1 ||
			    store_del_outbox(ob->store, ob->done[i]) == -1)
				ob->ops.store_failed(
				    ob->ops.ctx, "outbox delete");
		ob->ndone = 0;
		ob->sweep_due = false;
		ev_timer_stop(ob->loop, &ob->sweep);
	} else if (ob->ndone > 0 && !ev_is_active(&ob->sweep)) {
		ev_timer_set(&ob->sweep, OUTBOX_SWEEP_S, 0.);
		ev_timer_start(ob->loop, &ob->sweep);
	}
	if (!ob->committing &&
	    (ob->store->in_txn || !TAILQ_EMPTY(&ob->cur->msgs) ||
		ob->cur->nacks > 0)) {
		bt = ob->cur;
		bt->owner = ob;
		ob->cur = batch_new();
		ob->ops.seal(ob->ops.ctx, bt);
		ob->committing = true;
		if (store_commit(ob->store, outbox_committed, bt) == -1)
			ob->ops.store_failed(ob->ops.ctx, "commit");
	}
}

/*
 * Sends the acknowledgements whose batches' messages are all confirmed:
 * those published before FLOOR, the sequence number of the oldest
 * message still in flight (UINT64_MAX: none).  A refused message, sent
 * again, does not hold them back: its copy is in the outbox table or,
 * for a reply, the client asks again.
 */
static void
outbox_release_acks(struct outbox *ob, uint64_t floor)
{
	struct ackwait *aw;
	size_t i, k;

	/* Batches commit one after another: their last_seq only grows. */
	for (k = 0; k < ob->nacking && ob->acking[k].last_seq < floor; k++) {
		aw = &ob->acking[k];
		for (i = 0; i < aw->nacks; i++)
			if (bus_ack(ob->bus, aw->acks[i]) == -1)
				ob->ops.lost_bus(ob->ops.ctx, ob->bus);
		free(aw->acks);
	}
	if (k > 0) {
		memmove(ob->acking, ob->acking + k,
		    (ob->nacking - k) * sizeof(*ob->acking));
		ob->nacking -= k;
	}
}

void
outbox_on_confirm(
    struct bus *bus, uint64_t seq, bool multiple, bool ack, void *arg)
{
	struct outbox *ob = arg;
	struct outmsg *o, *next;
	uint64_t floor = UINT64_MAX; /* the oldest message left in flight */

	TAILQ_FOREACH_SAFE(o, &ob->inflight, entry, next)
	{
		/* In flight in publish order: nothing past SEQ is confirmed. */
		if (o->seq > seq) {
			if (floor == UINT64_MAX)
				floor = o->seq;
			break;
		}
		if (!multiple && o->seq != seq) {
			if (floor == UINT64_MAX)
				floor = o->seq;
			continue;
		}
		TAILQ_REMOVE(&ob->inflight, o, entry);
		if (!ack) {
			log_warnx("RabbitMQ refused %s to %s/%s; sending it "
				  "again",
			    o->type, o->exchange, o->key);
			TAILQ_INSERT_TAIL(&ob->cur->msgs, o, entry);
			continue;
		}
		if (o->outbox_id != 0)
			push_u64(
			    &ob->done, &ob->ndone, &ob->done_cap, o->outbox_id);
		outbox_msg_free(o);
	}
	outbox_release_acks(ob, floor);
}

static void
outbox_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct outbox *ob = container_of(w, struct outbox, sweep);

	/* The flush before the loop sleeps writes them. */
	ob->sweep_due = true;
}

void
outbox_load(void *arg, const struct store_outbox *row)
{
	struct outbox *ob = arg;
	struct outmsg *o;

	o = outbox_msg_new(
	    row->exchange, row->routing_key, row->type, row->body, row->len);
	o->outbox_id = row->id;
	if (row->id > ob->last_outbox_id)
		ob->last_outbox_id = row->id;
	TAILQ_INSERT_TAIL(&ob->cur->msgs, o, entry);
}

void
outbox_init(struct outbox *ob, struct ev_loop *loop, struct store *store,
    const struct outbox_ops *ops)
{
	memset(ob, 0, sizeof(*ob));
	ob->loop = loop;
	ob->store = store;
	ob->ops = *ops;
	ob->cur = batch_new();
	TAILQ_INIT(&ob->inflight);
	ev_timer_init(&ob->sweep, outbox_sweep, OUTBOX_SWEEP_S, 0.);
}

void
outbox_add(struct outbox *ob, struct outmsg *o)
{
	TAILQ_INSERT_TAIL(&ob->cur->msgs, o, entry);
}

void
outbox_ack(struct outbox *ob, uint64_t tag)
{
	push_u64(&ob->cur->acks, &ob->cur->nacks, &ob->cur->acks_cap, tag);
}

void
outbox_stop(struct outbox *ob)
{
	ev_timer_stop(ob->loop, &ob->sweep);
	ob->sweep_due = true;
}

void
outbox_clear(struct outbox *ob)
{
	struct outmsg *o;
	size_t i;

	while ((o = TAILQ_FIRST(&ob->inflight)) != NULL) {
		TAILQ_REMOVE(&ob->inflight, o, entry);
		outbox_msg_free(o);
	}
	/* Not acknowledged: RabbitMQ delivers them again. */
	for (i = 0; i < ob->nacking; i++)
		free(ob->acking[i].acks);
	free(ob->acking);
	ob->acking = NULL;
	ob->nacking = 0;
	batch_free(ob->cur);
	ob->cur = NULL;
	free(ob->done);
	ob->done = NULL;
}
