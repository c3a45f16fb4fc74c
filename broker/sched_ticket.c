/*
 * sched_ticket -- a ticket's life: the only functions that move its
 * state.
 *
 * An OPEN ticket waits in its lane's FIFO (and, with a sandbox, in the
 * lane's tree by sandbox); sched_ticket_move() takes it to READY, FAILED
 * or CLOSED, keeps the counts and its share of limits right, writes it
 * through and announces it.  Assigning a resource, handing an on-demand
 * start over to another waiting ticket when its own is no longer needed,
 * and closing (the holder's close, a lapsed lease, a passed deadline)
 * are here; a CLOSED ticket leaves memory and is answered from the store.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <regex.h>

#include <ev.h>

#include "conf.h"
#include "log.h"
#include "sched.h"
#include "sched_priv.h"
#include "tags.h"
#include "util.h"

/* Frees T, which no list or tree holds any more. */
void
sched_ticket_free(struct ticket *t)
{
	ev_timer_stop(t->sched->loop, &t->lease_timer);
	ev_timer_stop(t->sched->loop, &t->deadline_timer);
	free(t->idem_key);
	free(t->sandbox);
	free(t->failed_data);
	free(t->res_name);
	free(t->res_pool);
	free(t->owner);
	free(t->delegate);
	free(t->labels);
	free(t->class_);
	free(t->reply_to);
	free(t);
}

/* Puts T at the end of its tag set's FIFO. */
void
sched_waiting_add(struct sched *s, struct ticket *t)
{
	TAILQ_INSERT_TAIL(&t->ts->waiting, t, wait_entry);
	t->ts->nwaiting++;
	if (t->sandbox != NULL)
		RB_INSERT(ticket_sandboxes, &t->ts->by_sandbox, t);
	sched_tagset_update_busy(s, t->ts);
	s->nopen++;
}

static void
waiting_remove(struct sched *s, struct ticket *t)
{
	TAILQ_REMOVE(&t->ts->waiting, t, wait_entry);
	t->ts->nwaiting--;
	if (t->sandbox != NULL)
		RB_REMOVE(ticket_sandboxes, &t->ts->by_sandbox, t);
	sched_tagset_update_busy(s, t->ts);
	s->nopen--;
}

/* The oldest waiting ticket of TS, other than BUT, with no start of its own. */
struct ticket *
sched_waiting_without_start(struct tagset *ts, const struct ticket *but)
{
	struct ticket *t;

	TAILQ_FOREACH(t, &ts->waiting, wait_entry)
	if (t != but && t->pending == NULL)
		return t;
	return NULL;
}

/*
 * Whether a ticket other than BUT, with no start of its own, waits in a
 * lane of another tag set that pool P serves: a resource of P starting
 * now would serve it once up, as resalloc hands an on-demand resource
 * whose ticket closed to any matching ticket.
 */
static bool
pool_awaited(struct sched *s, struct pool *p, const struct ticket *but)
{
	struct tagset *ts;
	size_t i;

	TAILQ_FOREACH(ts, &s->busy, busy_entry)
	{
		if (ts == but->ts)
			continue;
		sched_tagset_providers(s, ts);
		for (i = 0; i < ts->nproviders; i++)
			if (ts->providers[i].pool == p)
				break;
		if (i < ts->nproviders &&
		    sched_waiting_without_start(ts, but) != NULL)
			return true;
	}
	return false;
}

/*
 * T no longer needs the on-demand start made for it: hand the start to
 * another waiting ticket of its tag set; or, if CANCEL, stop it, unless a
 * ticket of another tag set that the pool serves waits (the resource then
 * comes up free and goes to the waiting tickets, on-demand ones first).
 */
static void
ticket_drop_start(struct sched *s, struct ticket *t, bool cancel)
{
	struct resource *r = t->pending;
	struct ticket *other;

	if (r == NULL)
		return;
	sched_pending_unlink(s, r);
	if ((other = sched_waiting_without_start(t->ts, t)) != NULL) {
		sched_pending_link(s, other, r);
	} else if (cancel && r->state == RES_STARTING &&
		   !pool_awaited(s, r->pool, t)) {
		sched_resource_cancel(s, r);
	}
}

/*
 * Moves T to STATE, writes it through and announces it.  A CLOSED ticket
 * leaves the trees (queries about it are answered from the store) and
 * waits on sched->closed, its timers stopped, until the iteration ends:
 * T stays readable until then, but nothing finds it.
 */
void
sched_ticket_move(struct sched *s, struct ticket *t, enum ticket_state state)
{
	if (t->state == TICKET_OPEN && t->res == NULL && state != TICKET_OPEN)
		waiting_remove(s, t);
	tlog_info(t, "%s -> %s", ticket_state_names[t->state],
	    ticket_state_names[state]);
	if (t->state == TICKET_READY)
		s->nready--;
	else if (t->state == TICKET_FAILED)
		s->nfailed--;
	if (state == TICKET_READY)
		s->nready++;
	else if (state == TICKET_FAILED)
		s->nfailed++;
	t->state = state;
	sched_ticket_charge(s, t);
	sched_put_ticket(s, t);
	sched_ticket_emit(s, t);
	if (state == TICKET_CLOSED) {
		RB_REMOVE(ticket_ids, &s->tickets, t);
		if (t->idem_key[0] != '\0')
			RB_REMOVE(ticket_idems, &s->idems, t);
		sched_ticket_unbind(s, t);
		ev_timer_stop(s->loop, &t->lease_timer);
		ev_timer_stop(s->loop, &t->deadline_timer);
		TAILQ_INSERT_TAIL(&s->closed, t, closed_entry);
	}
}

void
sched_ticket_assign(struct sched *s, struct ticket *t, struct resource *r)
{
	char uuid[37];

	waiting_remove(s, t);
	if (r->for_ticket != t)
		sched_pending_unlink(s, r);
	if (t->pending != NULL && t->pending != r)
		ticket_drop_start(s, t, false);
	/* T's share moves from its start (if any) to R in sched_ticket_move. */
	t->pending = NULL;
	r->for_ticket = NULL;
	if (r->sandbox == NULL) {
		/* resalloc's rule: a ticket without a sandbox binds the
		 * resource to a random one, so nobody else reuses it. */
		if (t->sandbox == NULL)
			uuid_make(uuid);
		r->sandbox = xstrdup(t->sandbox ? t->sandbox : uuid);
		r->sandboxed_since_ms = now_wall_ms();
	}
	t->res = r;
	t->resource_id = r->id;
	free(t->res_name);
	free(t->res_pool);
	t->res_name = xstrdup(r->name);
	t->res_pool = xstrdup(r->pool->name);
	r->ticket = t;
	ev_timer_stop(s->loop, &t->deadline_timer);
	sched_resource_move(s, r, RES_UP);
	sched_ticket_move(s, t, TICKET_READY);
	tlog_info(t, "got resource %llu %s%s", (unsigned long long)r->id,
	    r->name, r->releases > 0 ? " (reused)" : "");
}

struct ticket *
sched_ticket_find(struct sched *s, uint64_t id)
{
	struct ticket k = {.id = id};

	return RB_FIND(ticket_ids, &s->tickets, &k);
}

/* Closes T for REASON (NULL: its holder closed it); see sched_ticket_move. */
void
sched_ticket_end(struct sched *s, struct ticket *t, const char *reason)
{
	struct resource *r;

	ticket_drop_start(s, t, true);
	r = t->res;
	if (r != NULL && r->ticket == t) {
		t->res = NULL;
		sched_resource_release(s, r, t);
	}
	t->closed_reason = reason;
	if (reason != NULL)
		tlog_info(t, "%s", reason);
	sched_ticket_move(s, t, TICKET_CLOSED);
	s->dirty = true;
}

/*
 * A ticket whose deadline has passed is never served: closed here, at
 * assignment, whether or not its timer has fired yet (after a restart,
 * or when the loop was busy, the step can come first).
 */
bool
sched_ticket_expired(struct sched *s, struct ticket *t)
{
	if (t->deadline_ms <= 0 || now_wall_ms() < t->deadline_ms)
		return false;
	sched_ticket_end(s, t, "deadline passed before a resource was ready");
	return true;
}
