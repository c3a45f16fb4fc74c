/*
 * sched -- pools, resources, tickets and tag sets, and what to do next.
 *
 * Lookups by ID go through red-black trees; the lists an object sits on
 * are its state.  A pool keeps its resources on one list per state
 * (starting, free, released, taken, releasing, deleting, and UP but
 * failing its livechecks), so the preallocation rule of
 * resalloc -- free + starting < max_prealloc, alive < max, starting <
 * max_starting, one start per start_delay -- is a few counter reads.  A
 * tag set keeps its waiting tickets as a FIFO and caches the pools that
 * can serve it with their scores, so matching costs tag sets x pools.
 *
 * Every mutation writes its row through to the store in the iteration's
 * transaction.  A store that fails mid-iteration leaves memory ahead of
 * the disk; the broker then exits without acknowledging anything, and the
 * next start rebuilds from the last commit and the redelivered messages.
 *
 * This file keeps the scheduler itself: making and freeing it, binding
 * its pools to the configuration, the pools' own bookkeeping, and the
 * observer that hears tickets and resources change.  The pieces, one
 * concern each: sched_priv.h (the types); sched_resource.c and
 * sched_ticket.c (the only functions that move a resource's or a
 * ticket's state); sched_lane.c (lanes: tag matching, providers, the
 * serving queue, idle lanes retired); sched_intake.c (tickets in, their
 * bounds, leases and deadlines); sched_step.c (the scheduling step);
 * sched_policy.c (classes, limits, caps, tag rules); sched_store.c
 * (write-through and loading); sched_wire.c (jobs and updates out, job
 * results in); sched_view.c (views and operators' actions).
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
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

const double sched_start_bucket_s[SCHED_START_BUCKETS] = {
    1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600};

/* ---- pools ------------------------------------------------------------ */

static void pool_delay_expired(struct ev_loop *loop, ev_timer *w, int revents);

struct pool *
sched_pool_new(struct sched *s, const char *name)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	int i;

	p->name = xstrdup(name);
	p->sched = s;
	for (i = 0; i < LIST_COUNT; i++)
		TAILQ_INIT(&p->lists[i]);
	ev_timer_init(&p->delay_timer, pool_delay_expired, 0., 0.);
	ev_timer_init(&p->list_timer, sched_pool_list_due, 0., 0.);
	/* Sweep IDs go on from the wall clock, so that an answer to a sweep
	 * of the process before a restart never matches one of this one. */
	p->list_sweep = (uint64_t)now_wall_ms() * 1000;
	TAILQ_INSERT_TAIL(&s->pools, p, entry);
	return p;
}

struct pool *
sched_pool_find(struct sched *s, const char *name)
{
	struct pool *p;

	TAILQ_FOREACH(p, &s->pools, entry)
	if (strcmp(p->name, name) == 0)
		return p;
	return NULL;
}

size_t
sched_pool_alive(const struct pool *p)
{
	size_t n = 0;
	int i;

	/* Every list is alive: released and releasing resources count
	 * toward `max` too, as in resalloc. */
	for (i = 0; i < LIST_COUNT; i++)
		n += p->counts[i];
	return n;
}

static void
pool_delay_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pool *p = container_of(w, struct pool, delay_timer);

	sched_touch(p->sched);
	p->sched->ops.wake(p->sched->ops.ctx);
}

/* ---- the observer ----------------------------------------------------- */

/* Tells the observer, if any, that T became WHAT. */
void
sched_observe_ticket(struct sched *s, const struct ticket *t, const char *what)
{
	struct sched_ticket_info info;
	struct sched_event ev = {SCHED_EV_TICKET, what, &info, NULL};

	if (s->ops.observe == NULL)
		return;
	sched_ticket_describe(s, t, &info, false);
	s->ops.observe(s->ops.ctx, &ev);
}

struct observe_ctx {
	struct sched *s;
	const char *what;
};

static void
observe_resource_view(void *arg, const struct sched_resource_view *v)
{
	struct observe_ctx *oc = arg;
	struct sched_event ev = {SCHED_EV_RESOURCE, oc->what, NULL, v};

	oc->s->ops.observe(oc->s->ops.ctx, &ev);
}

/* Tells the observer, if any, that R is WHAT ("starting", "up"...). */
void
sched_observe_resource(
    struct sched *s, const struct resource *r, const char *what)
{
	struct observe_ctx oc = {s, what};

	if (s->ops.observe != NULL)
		sched_resource_describe(r, observe_resource_view, &oc);
}

/* ---- public interface -------------------------------------------------- */

/* Points every pool at its entry of POOLS, making pools for new names and
 * leaving pools that are gone unconfigured (their resources stay known). */
static void
sched_bind_pools(struct sched *s, const struct conf_pools *pools)
{
	struct pool *p;
	size_t i;

	TAILQ_FOREACH(p, &s->pools, entry)
	p->conf = NULL;
	for (i = 0; i < pools->npools; i++) {
		if ((p = sched_pool_find(s, pools->pools[i].name)) == NULL)
			p = sched_pool_new(s, pools->pools[i].name);
		p->conf = &pools->pools[i];
	}
	TAILQ_FOREACH(p, &s->pools, entry)
	{
		ev_timer_stop(s->loop, &p->list_timer);
		if (p->conf != NULL && p->conf->cmd_list != NULL) {
			ev_timer_set(&p->list_timer,
			    (double)p->conf->cmd_list_period,
			    (double)p->conf->cmd_list_period);
			ev_timer_start(s->loop, &p->list_timer);
		}
	}
	s->conf = pools;
	s->conf_gen++;
	s->dirty = true;
}

/* Frees the tickets closed and the resources ended since the last time. */
void
sched_reap_now(struct sched *s)
{
	struct ticket *t;
	struct resource *r;

	while ((t = TAILQ_FIRST(&s->closed)) != NULL) {
		TAILQ_REMOVE(&s->closed, t, closed_entry);
		sched_ticket_free(t);
	}
	while ((r = TAILQ_FIRST(&s->ended)) != NULL) {
		TAILQ_REMOVE(&s->ended, r, entry);
		sched_resource_free(s, r);
	}
}

/*
 * The end of each loop iteration: what a callback closed or ended is
 * freed once no callback runs (STYLE.md: deferred frees).
 */
static void
sched_reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	sched_reap_now(container_of(w, struct sched, reap));
}

struct sched *
sched_new(struct ev_loop *loop, struct store *store, const char *prefix,
    const struct conf_pools *pools, const struct sched_ops *ops)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->store = store;
	s->prefix = xstrdup(prefix);
	s->ops = *ops;
	TAILQ_INIT(&s->pools);
	TAILQ_INIT(&s->busy);
	RB_INIT(&s->queue);
	TAILQ_INIT(&s->ondemand);
	RB_INIT(&s->tickets);
	RB_INIT(&s->idems);
	RB_INIT(&s->resources);
	RB_INIT(&s->tagsets);
	RB_INIT(&s->usages);
	RB_INIT(&s->owners);
	TAILQ_INIT(&s->idle);
	ev_timer_init(&s->idle_timer, sched_tagset_sweep, 0., 0.);
	TAILQ_INIT(&s->closed);
	TAILQ_INIT(&s->ended);
	/* After every other watcher of the iteration's end (the broker's
	 * step, commit and publishing), and not one that keeps the loop
	 * running. */
	ev_prepare_init(&s->reap, sched_reap);
	ev_set_priority(&s->reap, EV_MINPRI);
	ev_prepare_start(loop, &s->reap);
	ev_unref(loop);
	sched_bind_pools(s, pools);
	return s;
}

void
sched_set_pools(struct sched *s, const struct conf_pools *pools)
{
	struct resource *r;

	sched_bind_pools(s, pools);
	RB_FOREACH(r, resource_ids, &s->resources)
	sched_resource_arm_timers(s, r);
	log_info("pools reloaded: %zu configured", pools->npools);
}

void
sched_free(struct sched *s)
{
	struct ticket *t, *tn;
	struct resource *r, *rn;
	struct tagset *ts, *tsn;
	struct pool *p;

	if (s == NULL)
		return;
	ev_ref(s->loop);
	ev_prepare_stop(s->loop, &s->reap);
	sched_reap_now(s);
	RB_FOREACH_SAFE(t, ticket_ids, &s->tickets, tn)
	{
		RB_REMOVE(ticket_ids, &s->tickets, t);
		sched_ticket_free(t);
	}
	RB_FOREACH_SAFE(r, resource_ids, &s->resources, rn)
	{
		RB_REMOVE(resource_ids, &s->resources, r);
		r->for_ticket = NULL;
		sched_resource_free(s, r);
	}
	RB_FOREACH_SAFE(ts, tagset_keys, &s->tagsets, tsn)
	sched_tagset_free(s, ts);
	ev_timer_stop(s->loop, &s->idle_timer);
	while ((p = TAILQ_FIRST(&s->pools)) != NULL) {
		TAILQ_REMOVE(&s->pools, p, entry);
		ev_timer_stop(s->loop, &p->delay_timer);
		ev_timer_stop(s->loop, &p->list_timer);
		free(p->name);
		free(p);
	}
	{
		struct owner_count *o, *on;
		size_t i;

		sched_usage_free(s);
		RB_FOREACH_SAFE(o, owner_counts, &s->owners, on)
		{
			RB_REMOVE(owner_counts, &s->owners, o);
			free(o->owner);
			free(o);
		}
		for (i = 0; i < s->nrules; i++)
			regfree(&s->rules[i]);
		free(s->rules);
	}
	free(s->prefix);
	free(s);
}

/*
 * After a restart, on-demand starts still running are matched again with
 * waiting tickets they can serve, so no ticket asks for a second start.
 */
void
sched_adopt_starts(struct sched *s)
{
	struct resource *r;
	struct tagset *ts;
	struct ticket *t;
	size_t i;

	RB_FOREACH(r, resource_ids, &s->resources)
	{
		if (r->state != RES_STARTING || r->pool->conf == NULL ||
		    r->pool->conf->ntags_on_demand == 0)
			continue;
		TAILQ_FOREACH(ts, &s->busy, busy_entry)
		{
			sched_tagset_providers(s, ts);
			for (i = 0; i < ts->nproviders; i++)
				if (ts->providers[i].pool == r->pool)
					break;
			if (i == ts->nproviders || !ts->ondemand ||
			    (t = sched_waiting_without_start(ts, NULL)) == NULL)
				continue;
			sched_pending_link(s, t, r);
			break;
		}
	}
}

/* ---- log lines about one object ---------------------------------------- */

static void
rlog(
    enum log_level level, const struct resource *r, const char *fmt, va_list ap)
{
	char prefix[4096]; /* a log line's length */

	/* (Every state change logs at debug: not built when it is off.) */
	if (!log_enabled(level))
		return;
	snprintf(prefix, sizeof(prefix), "resource %llu %s",
	    (unsigned long long)r->id, r->name);
	log_vprefixed(level, prefix, fmt, ap);
}

void
rlog_info(const struct resource *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rlog(LOG_LEVEL_INFO, r, fmt, ap);
	va_end(ap);
}

void
rlog_warnx(const struct resource *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rlog(LOG_LEVEL_WARN, r, fmt, ap);
	va_end(ap);
}

void
rlog_debug(const struct resource *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rlog(LOG_LEVEL_DEBUG, r, fmt, ap);
	va_end(ap);
}

void
tlog_info(const struct ticket *t, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	snprintf(
	    prefix, sizeof(prefix), "ticket %llu", (unsigned long long)t->id);
	va_start(ap, fmt);
	log_vprefixed(LOG_LEVEL_INFO, prefix, fmt, ap);
	va_end(ap);
}

char *
sched_dup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

void
sched_touch(struct sched *s)
{
	s->dirty = true;
}
