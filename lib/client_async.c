/*
 * client_async -- the client library driven from an event loop
 * (resbus-xmlrpc).
 *
 * Requests are sent without waiting, each with its own correlation id
 * and callback (a struct resbus_call on c->calls), and answered from
 * inside resbus_client_poll(); wake-ups reach watchers of a ticket (a
 * struct resbus_watch on c->watches, one binding per ticket shared by
 * its watchers).  A failed connection answers every call in flight with
 * status -1; the client is not reconnected, its owner makes a new one.
 * The blocking calls and this use are not mixed on one client.
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
void
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
