/*
 * sched_view -- the scheduler as operators and the faces see it, and what
 * operators may do to it.
 *
 * The functions behind the status page, the JSON API, the metrics and the
 * control commands: tickets, resources, pools and lanes as views
 * (sched.h's struct sched_*_view and sched_ticket_info), walked in ID
 * order or a page at a time; why a ticket still waits; and the operators'
 * actions (delete a resource, pause, resume or drain a pool).  Views only
 * read; the actions move state through sched.c's functions, never by hand.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include "conf.h"
#include "log.h"
#include "sched.h"
#include "sched_priv.h"
#include "tags.h"
#include "util.h"

/* Why T still waits, in words a user can act on. */
static void
ticket_reason(struct sched *s, const struct ticket *t, char *buf, size_t len)
{
	const struct tagset_provider *pv;
	char why[160];
	size_t i, n;

	sched_tagset_providers(s, t->ts);
	if (t->ts->nproviders == 0) {
		sched_tagset_unprovided(s, t->ts, buf, len);
		return;
	}
	if (sched_limits_block(s, t, buf, len))
		return;
	for (i = 0; i < t->ts->nproviders; i++)
		if (sched_cap_allows(s, t, t->ts->providers[i].pool))
			break;
	if (i == t->ts->nproviders) {
		snprintf(buf, len,
		    "class %s at its cap in every pool that "
		    "provides %s",
		    t->ts->class_, t->ts->key);
		return;
	}
	if (t->pending != NULL) {
		snprintf(buf, len,
		    "resource %llu %s is starting for it in "
		    "pool %s",
		    (unsigned long long)t->pending->id, t->pending->name,
		    t->pending->pool->name);
		return;
	}
	n = (size_t)snprintf(
	    buf, len, "no free resource with tags %s", t->ts->key);
	for (i = 0; i < t->ts->nproviders && n < len; i++) {
		pv = &t->ts->providers[i];
		if (sched_pool_can_start(s, pv->pool, why, sizeof(why)))
			snprintf(why, sizeof(why), "pool %s: %zu starting",
			    pv->pool->name, pv->pool->counts[LIST_STARTING]);
		n += (size_t)snprintf(buf + n, len - n, "; %s", why);
	}
}

/* T as the faces see it; the reason only when WITH_REASON. */
void
sched_ticket_describe(struct sched *s, const struct ticket *t,
    struct sched_ticket_info *info, bool with_reason)
{
	memset(info, 0, sizeof(*info));
	info->id = t->id;
	info->state = ticket_state_names[t->state];
	info->tags = t->ts->key;
	info->sandbox = t->sandbox;
	info->resource_id = t->resource_id;
	info->resource_name = t->res_name;
	info->resource_pool = t->res_pool;
	info->created_ms = t->created_ms;
	info->owner = t->owner;
	info->delegate = t->delegate;
	info->class_ = t->class_;
	info->closed_reason = t->closed_reason;
	if (with_reason && t->state == TICKET_OPEN) {
		ticket_reason(s, t, s->view_reason, sizeof(s->view_reason));
		info->waiting_reason = s->view_reason;
	}
}

void
sched_resource_describe(const struct resource *r,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg)
{
	const struct conf_pool *c = r->pool->conf;
	const char *tags[2 * TAGSET_MAX_TAGS];
	struct sched_resource_view v;
	size_t i, n = 0;

	memset(&v, 0, sizeof(v));
	v.id = r->id;
	v.name = r->name;
	v.pool = r->pool->name;
	v.state = resource_state_names[r->state];
	v.ticket_id = r->ticket ? r->ticket->id : 0;
	v.id_in_pool = r->id_in_pool;
	v.data = r->data;
	v.data_len = r->data_len;
	v.created_ms = r->created_ms;
	v.sandbox = r->sandbox;
	v.releases = r->releases;
	v.check_failed = r->check_failed;
	for (i = 0; c != NULL && i < c->ntags && n < 2 * TAGSET_MAX_TAGS; i++)
		tags[n++] = c->tags[i].name;
	for (i = 0;
	     c != NULL && i < c->ntags_on_demand && n < 2 * TAGSET_MAX_TAGS;
	     i++)
		tags[n++] = c->tags_on_demand[i].name;
	v.tags = tags;
	v.ntags = n;
	fn(arg, &v);
}

int
sched_ticket_view(struct sched *s, uint64_t id, struct sched_ticket_view *v)
{
	struct ticket *t = sched_ticket_find(s, id);

	memset(v, 0, sizeof(*v));
	v->id = id;
	if (t == NULL)
		return 0;
	v->state = (Resbus__V1__TicketState)(t->state + 1);
	if (t->res != NULL) {
		v->assigned = true;
		v->output = t->res->data;
		v->output_len = t->res->data_len;
	} else if (t->resource_id != 0) {
		v->assigned = true;
		v->output = t->failed_data;
		v->output_len = t->failed_len;
	}
	if (t->state == TICKET_OPEN) {
		ticket_reason(s, t, s->view_reason, sizeof(s->view_reason));
		v->waiting_reason = s->view_reason;
	}
	v->owner = t->owner;
	v->created_ms = t->created_ms;
	v->resource_id = t->resource_id;
	v->resource_name = t->res_name;
	v->resource_pool = t->res_pool;
	v->delegate = t->delegate;
	return 1;
}

void
sched_foreach_tagset(
    struct sched *s, void (*fn)(void *arg, const char *key), void *arg)
{
	struct tagset *ts;

	RB_FOREACH(ts, tagset_keys, &s->tagsets)
	if (ts->persisted)
		fn(arg, ts->key);
}

size_t
sched_open_tickets(const struct sched *s)
{
	return s->nopen;
}

size_t
sched_tagsets(const struct sched *s)
{
	return s->ntagsets;
}

void
sched_ticket_counts(
    const struct sched *s, size_t *open, size_t *ready, size_t *failed)
{
	*open = s->nopen;
	*ready = s->nready;
	*failed = s->nfailed;
}

void
sched_foreach_pool(struct sched *s,
    void (*fn)(void *arg, const struct sched_pool_view *v), void *arg)
{
	struct sched_pool_view v;
	struct tagset *ts;
	struct pool *p;
	const struct ticket *t;
	size_t i;

	TAILQ_FOREACH(p, &s->pools, entry)
	{
		memset(&v, 0, sizeof(v));
		v.name = p->name;
		v.conf = p->conf;
		v.paused = p->paused;
		v.starting = p->counts[LIST_STARTING];
		/* Resources failing their livechecks count where they
		 * would be if they passed. */
		v.free = p->counts[LIST_FREE] + p->failing_unused;
		v.released = p->counts[LIST_RELEASED] +
			     p->counts[LIST_FAILING] - p->failing_unused;
		v.taken = p->counts[LIST_TAKEN];
		v.releasing = p->counts[LIST_RELEASING];
		v.deleting = p->counts[LIST_DELETING];
		TAILQ_FOREACH(ts, &s->busy, busy_entry)
		{
			sched_tagset_providers(s, ts);
			for (i = 0; i < ts->nproviders; i++) {
				if (ts->providers[i].pool != p)
					continue;
				v.waiting += ts->nwaiting;
				/* A FIFO: its first is its oldest. */
				t = TAILQ_FIRST(&ts->waiting);
				if (t != NULL &&
				    (v.oldest_waiting_ms == 0 ||
					t->created_ms < v.oldest_waiting_ms))
					v.oldest_waiting_ms = t->created_ms;
			}
		}
		v.starts_ok = p->starts_ok;
		v.starts_failed = p->starts_failed;
		v.start_ms_avg =
		    p->starts_ok ? p->start_ms_sum / (double)p->starts_ok : 0.;
		v.start_ms_sum = p->start_ms_sum;
		memcpy(v.start_le, p->start_le, sizeof(v.start_le));
		if (p->last_start_ms != 0)
			v.last_start_ms =
			    now_wall_ms() - (now_mono_ms() - p->last_start_ms);
		fn(arg, &v);
	}
}

void
sched_foreach_resource(struct sched *s,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg)
{
	struct resource *r;

	RB_FOREACH(r, resource_ids, &s->resources)
	sched_resource_describe(r, fn, arg);
}

void
sched_foreach_waiting(struct sched *s,
    void (*fn)(void *arg, const char *key, const char *class_, size_t n),
    void *arg)
{
	struct tagset *ts;

	TAILQ_FOREACH(ts, &s->busy, busy_entry)
	fn(arg, ts->key, ts->class_, ts->nwaiting);
}

int
sched_resource_find(struct sched *s, uint64_t id, const char *name,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg)
{
	struct resource k = {.id = id}, *r = NULL;

	if (name == NULL) {
		r = RB_FIND(resource_ids, &s->resources, &k);
	} else {
		RB_FOREACH(r, resource_ids, &s->resources)
		if (strcmp(r->name, name) == 0)
			break;
	}
	if (r == NULL)
		return 0;
	sched_resource_describe(r, fn, arg);
	return 1;
}

void
sched_foreach_ticket(struct sched *s,
    void (*fn)(void *arg, const struct sched_ticket_info *i), void *arg)
{
	struct sched_ticket_info info;
	struct ticket *t;

	RB_FOREACH(t, ticket_ids, &s->tickets)
	{
		sched_ticket_describe(s, t, &info, true);
		fn(arg, &info);
	}
}

/*
 * RB_NFIND finds the first ticket with an ID >= after_id + 1 in O(log n);
 * from there each step is RB_NEXT, so a page costs O(log n + limit).
 */
int
sched_foreach_ticket_from(struct sched *s, uint64_t after_id, size_t limit,
    void (*fn)(void *arg, const struct sched_ticket_info *t), void *arg)
{
	struct ticket k = {.id = after_id + 1}, *t;
	struct sched_ticket_info info;
	int n = 0;

	if (after_id == UINT64_MAX)
		return 0;
	for (t = RB_NFIND(ticket_ids, &s->tickets, &k);
	     t != NULL && (size_t)n < limit && n < INT_MAX;
	     t = RB_NEXT(ticket_ids, &s->tickets, t)) {
		sched_ticket_describe(s, t, &info, true);
		fn(arg, &info);
		n++;
	}
	return n;
}

int
sched_foreach_resource_from(struct sched *s, uint64_t after_id, size_t limit,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg)
{
	struct resource k = {.id = after_id + 1}, *r;
	int n = 0;

	if (after_id == UINT64_MAX)
		return 0;
	for (r = RB_NFIND(resource_ids, &s->resources, &k);
	     r != NULL && (size_t)n < limit && n < INT_MAX;
	     r = RB_NEXT(resource_ids, &s->resources, r)) {
		sched_resource_describe(r, fn, arg);
		n++;
	}
	return n;
}

int
sched_resource_delete(struct sched *s, uint64_t id)
{
	struct resource k = {.id = id}, *r;

	r = RB_FIND(resource_ids, &s->resources, &k);
	if (r == NULL || r->state != RES_UP)
		return 0;
	sched_resource_kill(s, r, "deleted by an operator");
	s->dirty = true;
	return 1;
}

int
sched_pool_pause(struct sched *s, const char *name, bool paused)
{
	struct pool *p = sched_pool_find(s, name);

	char key[300];

	if (p == NULL)
		return 0;
	p->paused = paused;
	snprintf(key, sizeof(key), "pool.%s.paused", name);
	sched_put_meta(s, key, paused);
	log_info("pool %s: %s", name, paused ? "paused" : "resumed");
	s->dirty = true;
	return 1;
}

int
sched_pool_drain(struct sched *s, const char *name)
{
	struct pool *p = sched_pool_find(s, name);
	struct resource *r;

	if (p == NULL || sched_pool_pause(s, name, true) == 0)
		return 0;
	while ((r = TAILQ_FIRST(&p->lists[LIST_FREE])) != NULL)
		sched_resource_send_delete(s, r);
	while ((r = TAILQ_FIRST(&p->lists[LIST_RELEASED])) != NULL)
		sched_resource_send_delete(s, r);
	while ((r = TAILQ_FIRST(&p->lists[LIST_FAILING])) != NULL)
		sched_resource_send_delete(s, r);
	log_info("pool %s: draining", name);
	s->dirty = true;
	return 1;
}
