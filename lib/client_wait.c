/*
 * client_wait -- waiting for a ticket (resbus_ticket_wait), and the
 * ticket events that wake waits and watchers.
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
 * most a few queries a second per waiter.  The same wake-ups reach the
 * watchers of an event loop's client (client_async.c).
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
/* Wake-up queries of one wait are at least this far apart. */
#define CLIENT_REQUERY_MIN_MS 200
/*
 * A wait that shows its progress asks again this often without an event
 * (the reason a ticket waits changes without one: a resource starts for
 * it, a pool fills up), and tells its function at least this often.
 */
#define CLIENT_PROGRESS_REQUERY_MS 2000
#define CLIENT_PROGRESS_TICK_MS 1000

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

/* Wakes the blocking wait or the watchers of the ticket event D names. */
void
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

/* Starts watching ticket ID: what the wake-ups and queries fill in. */
static void
watch_begin(struct resbus_client *c, uint64_t id, resbus_wait_progress_fn *fn,
    void *arg)
{
	if (c->watch_done != NULL)
		msg_free(&c->watch_done->base);
	c->watch_done = NULL;
	c->watch_id = id;
	c->watching = true;
	c->progress = fn;
	c->progress_arg = arg;
	c->watch_created = 0;
	c->watch_start = now_mono_ms();
}

/*
 * Stops watching: unbinds KEY (if bound; freed here) and forgets what
 * the watch gathered.
 */
static void
watch_end(struct resbus_client *c, char *key)
{
	int unbound;

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
}

/*
 * Binds the ticket's events (*KEY, freed by watch_end) and asks again at
 * each wake-up until the ticket is done.  0 done, 1 deadline, -1 error.
 */
static int
watch_until_done(struct resbus_client *c, Resbus__V1__TicketQuery *q,
    int64_t deadline, char **key)
{
	int64_t sent;
	int rc;

	if (client_event_queue(c) == -1)
		return -1;
	*key = xasprintf("ticket.%llu.*", (unsigned long long)q->ticket_id);
	/* A reconnect binds c->watch_key again. */
	c->watch_key = *key;
	if (bus_queue_bind(c->bus, c->event_queue, c->event_exchange, *key) ==
		-1 &&
	    client_reconnect(c, deadline) == -1)
		return -1;
	for (;;) {
		sent = now_mono_ms();
		rc = client_wait_query(c, q, deadline);
		if (rc != 0 || c->watch_done != NULL)
			return rc;
		client_progress(c);
		if ((rc = client_wait_wake(c, sent, deadline)) != 0)
			return rc;
	}
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
	int64_t deadline;
	char *key = NULL;
	int rc, ret = -1;

	memset(info, 0, sizeof(*info));
	*timed_out = false;
	deadline = client_deadline(timeout_ms);
	watch_begin(c, id, fn, arg);
	q.ticket_id = id;

	rc = client_wait_query(c, &q, deadline);
	if (rc == 0 && c->watch_done == NULL)
		rc = watch_until_done(c, &q, deadline, &key);
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
	watch_end(c, key);
	return ret;
}
