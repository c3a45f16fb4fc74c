/*
 * sched_intake -- tickets coming in: a request becomes an OPEN ticket.
 *
 * A request is found again by its idempotency key (per owner), or checked
 * against the bounds of a shared broker (an owner's open tickets, the
 * lanes in memory), put in its lane after the tag rules, and recorded
 * before it is answered.  Its lease (renewed by its holder) and its
 * deadline are timers of its own; when one passes the ticket is closed
 * with the reason.  The holder's close and renewal come in here too.
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

static void
ticket_lease_lapsed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticket *t = container_of(w, struct ticket, lease_timer);

	sched_ticket_end(t->sched, t,
	    "lease lapsed: its holder did not renew it "
	    "in time");
}

static void
ticket_deadline_passed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticket *t = container_of(w, struct ticket, deadline_timer);

	if (t->state == TICKET_OPEN)
		sched_ticket_end(t->sched, t,
		    "deadline passed before a resource "
		    "was ready");
}

/* Starts T's lease and deadline timers, as far as it has them. */
void
sched_ticket_arm(struct sched *s, struct ticket *t)
{
	int64_t left;

	t->sched = s;
	ev_timer_init(&t->lease_timer, ticket_lease_lapsed, 0., 0.);
	ev_timer_init(&t->deadline_timer, ticket_deadline_passed, 0., 0.);
	if (t->lease_s > 0) {
		ev_timer_set(&t->lease_timer, (double)t->lease_s, 0.);
		ev_timer_start(s->loop, &t->lease_timer);
	}
	if (t->deadline_ms > 0 && t->state == TICKET_OPEN) {
		left = t->deadline_ms - now_wall_ms();
		ev_timer_set(&t->deadline_timer,
		    left > 0 ? (double)left / 1000. : 0., 0.);
		ev_timer_start(s->loop, &t->deadline_timer);
	}
}

/*
 * The bounds of a shared broker: an owner's open tickets and the lanes
 * in memory.  0, or -1 with the reason in ERR.  KEY is the ticket's key
 * after the tag rules; the broker also records REQ->key's class-less lane
 * (sched_tagset_add), so both count.
 */
static int
ticket_bounds(struct sched *s, const struct sched_ticket_req *req,
    const char *owner, const char *key, const char *class_, char *err,
    size_t errlen)
{
	const struct conf_server *c = s->policy;
	size_t n, add;

	if (c == NULL)
		return 0;
	if (c->max_open_tickets_per_owner > 0 && owner != NULL &&
	    (n = sched_owner_count_get(s, owner)) >=
		(uint64_t)c->max_open_tickets_per_owner) {
		snprintf(err, errlen,
		    "owner %s has %zu open tickets, the limit "
		    "of max_open_tickets_per_owner",
		    owner, n);
		return -1;
	}
	if (c->max_tagsets > 0) {
		add = !sched_tagset_exists(s, key, class_);
		if ((strcmp(key, req->key) != 0 || class_ != NULL) &&
		    !sched_tagset_exists(s, req->key, NULL))
			add++;
		if (add > 0 && s->ntagsets + add > (uint64_t)c->max_tagsets) {
			snprintf(err, errlen,
			    "too many tag sets (%zu, "
			    "max_tagsets)",
			    s->ntagsets);
			return -1;
		}
	}
	return 0;
}

/*
 * A retry of the request with REQ's idempotency key: its ticket (NULL if
 * none), whose reply queue becomes the retry's -- perhaps from a new
 * connection, whose reply queue is the one that hears the outcome now.
 */
static struct ticket *
ticket_retried(
    struct sched *s, const struct sched_ticket_req *req, const char *owner)
{
	struct ticket k = {.idem_key = (char *)req->idem_key,
			  .owner = (char *)owner},
		      *t;

	if (req->idem_key[0] == '\0' ||
	    (t = RB_FIND(ticket_idems, &s->idems, &k)) == NULL)
		return NULL;
	if (req->reply_to != NULL && req->reply_to[0] != '\0' &&
	    (t->reply_to == NULL || strcmp(t->reply_to, req->reply_to) != 0)) {
		free(t->reply_to);
		t->reply_to = xstrdup(req->reply_to);
		sched_put_ticket(s, t);
	}
	return t;
}

/* A new OPEN ticket of REQ in lane TS, of CLASS_, waiting and stored. */
static struct ticket *
ticket_open(struct sched *s, const struct sched_ticket_req *req,
    struct tagset *ts, const char *class_)
{
	struct ticket *t = xcalloc(1, sizeof(*t));

	t->id = ++s->last_ticket_id;
	sched_put_meta(s, "last_ticket_id", (int64_t)t->id);
	t->idem_key = xstrdup(req->idem_key);
	t->sandbox = sched_dup_or_null(req->sandbox);
	t->owner = sched_dup_or_null(req->owner);
	t->delegate = sched_dup_or_null(req->delegate);
	t->labels = sched_dup_or_null(req->labels);
	t->class_ = sched_dup_or_null(class_);
	if (req->reply_to != NULL && req->reply_to[0] != '\0')
		t->reply_to = xstrdup(req->reply_to);
	sched_ticket_bind(s, t, ts);
	t->lease_s = req->lease_s;
	t->deadline_ms = req->deadline_ms;
	t->state = TICKET_OPEN;
	t->created_ms = now_wall_ms();
	RB_INSERT(ticket_ids, &s->tickets, t);
	if (t->idem_key[0] != '\0')
		RB_INSERT(ticket_idems, &s->idems, t);
	sched_waiting_add(s, t);
	sched_ticket_arm(s, t);
	sched_put_ticket(s, t);
	sched_observe_ticket(s, t, "open");
	s->dirty = true;
	tlog_info(t, "OPEN, tags %s%s%s, owner %s%s%s%s", ts->key,
	    t->sandbox ? ", sandbox " : "", t->sandbox ? t->sandbox : "",
	    t->owner ? t->owner : "(unknown)",
	    t->delegate ? " by delegate " : "", t->delegate ? t->delegate : "",
	    t->lease_s ? ", leased" : "");
	return t;
}

int
sched_ticket_new(struct sched *s, const struct sched_ticket_req *req,
    uint64_t *id, char *err, size_t errlen)
{
	const char *owner =
	    req->owner != NULL && *req->owner != '\0' ? req->owner : NULL;
	struct tagset *ts, *raw;
	struct ticket *t;
	const char *class_;
	char *key;

	if ((t = ticket_retried(s, req, owner)) != NULL) {
		*id = t->id;
		return 0;
	}
	class_ = req->class_ != NULL && *req->class_ != '\0'
		     ? req->class_
		     : (s->policy ? s->policy->default_class : NULL);
	if (class_ != NULL && sched_policy_class(s, class_) == NULL) {
		snprintf(err, errlen, "no ticket class \"%s\" in server.yaml",
		    class_);
		return -1;
	}
	key = sched_policy_apply_rules(s, req->key, req->labels, req->owner);
	if (ticket_bounds(s, req, owner, key, class_, err, errlen) == -1) {
		free(key);
		return -1;
	}
	ts = sched_tagset_get(s, key, class_);
	free(key);
	sched_tagset_providers(s, ts);
	if (ts->nproviders == 0 &&
	    (req->refuse_unprovidable ||
		(s->policy != NULL && s->policy->refuse_unprovidable))) {
		sched_tagset_unprovided(s, ts, err, errlen);
		sched_tagset_drop_unused(s, ts);
		return -1;
	}
	t = ticket_open(s, req, ts, class_);
	*id = t->id;
	if (ts->nproviders == 0) {
		sched_tagset_unprovided(
		    s, ts, s->view_reason, sizeof(s->view_reason));
		tlog_info(
		    t, "waits, %s (until a reload adds one)", s->view_reason);
	}
	/* The queue the request came through is in use, even when the tag
	 * rules put the ticket in another lane. */
	raw = RB_FIND(tagset_keys, &s->tagsets,
	    &(struct tagset){.key = (char *)req->key});
	if (raw != NULL && raw->idle)
		sched_tagset_idle_add(s, raw);
	/* Recorded (its ID answers the request), never served. */
	if (t->deadline_ms > 0 && t->deadline_ms <= t->created_ms)
		sched_ticket_end(
		    s, t, "deadline passed before the ticket arrived");
	return 0;
}

int
sched_ticket_renew(struct sched *s, uint64_t id)
{
	struct ticket *t = sched_ticket_find(s, id);

	if (t == NULL)
		return 0;
	if (t->lease_s > 0) {
		ev_timer_stop(s->loop, &t->lease_timer);
		ev_timer_set(&t->lease_timer, (double)t->lease_s, 0.);
		ev_timer_start(s->loop, &t->lease_timer);
	}
	return 1;
}

int
sched_ticket_close(struct sched *s, uint64_t id)
{
	struct ticket *t = sched_ticket_find(s, id);

	if (t == NULL)
		return 0;
	sched_ticket_end(s, t, NULL);
	return 1;
}
