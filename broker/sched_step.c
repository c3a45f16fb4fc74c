/*
 * sched_step -- the scheduling step: which ticket gets which resource,
 * and which pool starts what, once per loop iteration.
 *
 * sched_run() runs before the loop sleeps, when anything changed: first
 * released resources go back to a waiting ticket of their sandbox, then
 * lanes are served in the queue's order while free resources remain
 * (best score, smallest numeric fit, lowest ID), then on-demand lanes get
 * a start per waiting ticket, surplus on-demand resources are deleted
 * and pools preallocate.  The step only decides; the moves are made by
 * sched_ticket.c and sched_resource.c, limits and caps are asked of
 * sched_policy.c.  Its cost does not grow with the tickets waiting: a
 * lane looks at most LANE_LOOKAHEAD tickets past its head.
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

/*
 * How long pool P waits after its last start while its starts fail: 1 s
 * after one failure, doubling up to POOL_BACKOFF_MAX_MS, so that a
 * cmd_new that fails at once is not run in a tight loop against a cloud's
 * API while tickets wait.  A start that succeeds ends it.
 */
static int64_t
pool_backoff_ms(const struct pool *p)
{
	unsigned n = p->fail_streak > 8 ? 8 : p->fail_streak;

	if (n == 0)
		return 0;
	return (int64_t)1000 << (n - 1) < POOL_BACKOFF_MAX_MS
		   ? (int64_t)1000 << (n - 1)
		   : POOL_BACKOFF_MAX_MS;
}

/* Whether pool P may start a resource now; arms its delay timer if only
 * start_delay, or the wait after failed starts, is in the way.  *why (may
 * be NULL) says what stops it. */
bool
sched_pool_can_start(struct sched *s, struct pool *p, char *why, size_t len)
{
	const struct conf_pool *c = p->conf;
	int64_t wait_ms, delay_ms;

	if (c == NULL) {
		if (why)
			snprintf(
			    why, len, "pool %s is not configured", p->name);
		return false;
	}
	if (p->paused) {
		if (why)
			snprintf(why, len, "pool %s is paused", p->name);
		return false;
	}
	if ((int64_t)sched_pool_alive(p) >= c->max) {
		if (why)
			snprintf(why, len, "pool %s at max %lld", p->name,
			    (long long)c->max);
		return false;
	}
	if ((int64_t)p->counts[LIST_STARTING] >= c->max_starting) {
		if (why)
			snprintf(why, len, "pool %s at max_starting %lld",
			    p->name, (long long)c->max_starting);
		return false;
	}
	delay_ms = c->start_delay * 1000;
	if (p->fail_streak > 0 && pool_backoff_ms(p) > delay_ms)
		delay_ms = pool_backoff_ms(p);
	if (delay_ms > 0 && p->last_start_ms != 0) {
		wait_ms = p->last_start_ms + delay_ms - now_mono_ms();
		if (wait_ms > 0) {
			if (!ev_is_active(&p->delay_timer)) {
				ev_timer_set(&p->delay_timer,
				    (double)wait_ms / 1000., 0.);
				ev_timer_start(s->loop, &p->delay_timer);
			}
			if (why && delay_ms > c->start_delay * 1000)
				snprintf(why, len,
				    "pool %s waits after %u "
				    "failed starts (%lld ms left)",
				    p->name, p->fail_streak,
				    (long long)wait_ms);
			else if (why)
				snprintf(why, len,
				    "pool %s in start_delay "
				    "(%lld ms left)",
				    p->name, (long long)wait_ms);
			return false;
		}
	}
	return true;
}

/* ---- the scheduling step ----------------------------------------------- */

/*
 * The best resource for ticket T of TS: a free one, or a released one of
 * T's sandbox (+500); highest score wins, then the smallest numeric fit
 * (`memory>=32` takes memory=64 before memory=128), then the lowest ID.
 */
static struct resource *
best_resource(struct sched *s, struct tagset *ts, const struct ticket *t)
{
	struct resource *best = NULL, *r;
	int64_t best_score = 0, best_fit = 0, score, fit;
	size_t i;

#define BETTER(r_, score_, fit_)                                               \
	(best == NULL || (score_) > best_score ||                              \
	    ((score_) == best_score &&                                         \
		((fit_) < best_fit ||                                          \
		    ((fit_) == best_fit && (r_)->id < best->id))))
	sched_tagset_providers(s, ts);
	for (i = 0; i < ts->nproviders; i++) {
		struct pool *p = ts->providers[i].pool;

		if (!sched_cap_allows(s, t, p))
			continue;
		fit = ts->providers[i].fit;
		if (t->sandbox != NULL && p->counts[LIST_RELEASED] > 0)
			TAILQ_FOREACH(r, &p->lists[LIST_RELEASED], entry)
			{
				if (strcmp(r->sandbox, t->sandbox) != 0)
					continue;
				score = ts->providers[i].score + REUSE_BONUS;
				if (BETTER(r, score, fit)) {
					best = r;
					best_score = score;
					best_fit = fit;
				}
			}
		r = TAILQ_FIRST(&p->lists[LIST_FREE]);
		if (r == NULL)
			continue;
		score = ts->providers[i].score;
		if (BETTER(r, score, fit)) {
			best = r;
			best_score = score;
			best_fit = fit;
		}
	}
#undef BETTER
	return best;
}

#define LANE_LOOKAHEAD 64

/*
 * The ticket of lane TS to serve next: its head, or, when a limit keeps
 * the head back (its owner holds enough), the first of the next
 * LANE_LOOKAHEAD tickets no limit keeps back, so one owner's backlog does
 * not block the others.  The look-ahead is bounded: a step's cost does
 * not grow with the tickets waiting.
 */
static struct ticket *
lane_next(struct sched *s, struct tagset *ts)
{
	struct ticket *t, *tn;
	int n = 0;

	for (t = TAILQ_FIRST(&ts->waiting); t != NULL; t = tn) {
		tn = TAILQ_NEXT(t, wait_entry);
		if (sched_ticket_expired(s, t))
			continue;
		if (!sched_limits_block(s, t, NULL, 0))
			return t;
		if (++n == LANE_LOOKAHEAD)
			break;
	}
	return NULL;
}

/*
 * Released resources wait for their own sandbox: give each to the oldest
 * waiting ticket of that sandbox in any lane the pool serves, even if it
 * is not at the head of its FIFO -- the oldest of the on-demand lanes
 * first, as resalloc serves on-demand tickets before others, so that a
 * resource of an on-demand pool goes back to a ticket that asked for
 * that pool.  The ticket takes it only if it is the best resource for
 * it: a free one whose tag priorities outscore the +500 of reuse goes
 * first, as in resalloc.  Runs only while resources are released, and
 * costs released resources x busy lanes, plus, for each released
 * resource a ticket of its sandbox waits for, a walk of the released
 * lists of that ticket's pools (best_resource).
 */
static void
sched_assign_released(struct sched *s)
{
	struct ticket key, *t, *best;
	struct resource *r, *rn;
	struct tagset *ts;
	struct pool *p;
	size_t j;
	bool best_od;

	TAILQ_FOREACH(p, &s->pools, entry)
	{
		TAILQ_FOREACH_SAFE(r, &p->lists[LIST_RELEASED], entry, rn)
		{
			best = NULL;
			best_od = false;
			TAILQ_FOREACH(ts, &s->busy, busy_entry)
			{
				for (j = 0; j < ts->nproviders; j++)
					if (ts->providers[j].pool == p)
						break;
				if (j == ts->nproviders)
					continue;
				key.sandbox = r->sandbox;
				key.id = 0;
				t = RB_NFIND(
				    ticket_sandboxes, &ts->by_sandbox, &key);
				if (t == NULL ||
				    strcmp(t->sandbox, r->sandbox) != 0)
					continue;
				if (best == NULL ||
				    (ts->ondemand && !best_od) ||
				    (ts->ondemand == best_od &&
					t->id < best->id)) {
					best = t;
					best_od = ts->ondemand;
				}
			}
			if (best != NULL && !sched_ticket_expired(s, best) &&
			    !sched_limits_block(s, best, NULL, 0) &&
			    sched_cap_allows(s, best, p) &&
			    best_resource(s, best->ts, best) == r)
				sched_ticket_assign(s, best, r);
		}
	}
}

/*
 * Serves waiting tickets in the queue's order (class, on-demand, oldest
 * head), as long as free resources remain.  A lane that was served is put
 * back under its new head and may come again right away if it still sorts
 * first.  With no free resource the step ends at once; with one, it
 * costs a walk to the first lane that resource can serve -- whatever the
 * number of tickets waiting.
 */
static void
sched_assign(struct sched *s)
{
	struct tagset *ts, *next;
	struct resource *r;
	struct ticket *t;
	struct pool *p;
	size_t avail = 0, released = 0;

	if (s->queue_gen != s->conf_gen) {
		/* Classes or pools changed: every lane's key may have. */
		TAILQ_FOREACH(ts, &s->busy, busy_entry)
		sched_tagset_update_busy(s, ts);
		s->queue_gen = s->conf_gen;
	}
	TAILQ_FOREACH(p, &s->pools, entry)
	{
		avail += p->counts[LIST_FREE];
		released += p->counts[LIST_RELEASED];
	}
	if (released > 0)
		sched_assign_released(s);
	for (ts = RB_MIN(lane_queue, &s->queue); ts != NULL && avail > 0;
	     ts = next) {
		next = RB_NEXT(lane_queue, &s->queue, ts);
		t = lane_next(s, ts);
		if (t == NULL || (r = best_resource(s, ts, t)) == NULL)
			continue;
		if (r->releases == 0)
			avail--;
		sched_ticket_assign(s, t, r);
		if (ts->busy && (next == NULL || lane_cmp(ts, next) < 0))
			next = ts;
	}
}

/*
 * On-demand tag sets: every waiting ticket without a start of its own
 * gets one, in the best-scored pool that may start now.
 */
/*
 * The best on-demand pool of TS that may start now for T: healthy pools
 * first (fewer than two starts in a row failed or timed out) other than
 * the one where T's own last start failed, then the rest.
 */
static struct pool *
ondemand_pool(struct sched *s, struct tagset *ts, const struct ticket *t)
{
	struct pool *p;
	int pass;
	size_t i;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < ts->nproviders; i++) {
			p = ts->providers[i].pool;
			if (p->conf->ntags_on_demand == 0 ||
			    (pass == 0) !=
				(p->fail_streak < 2 && p != t->avoid) ||
			    !sched_cap_allows(s, t, p))
				continue;
			if (sched_pool_can_start(s, p, NULL, 0))
				return p;
		}
	return NULL;
}

/*
 * On-demand tag sets: every waiting ticket without a start of its own
 * gets one, in the best-scored pool that may start now.
 */
static void
sched_ondemand(struct sched *s)
{
	struct tagset *ts, *next;
	struct ticket *t, *tn;
	struct resource *r;
	struct pool *p;
	int blocked;

	/* Only on-demand lanes; within one, tickets with a start of their
	 * own are passed over (there are at most as many as starts run),
	 * and so are, up to LANE_LOOKAHEAD, those a limit keeps back. */
	TAILQ_FOREACH_SAFE(ts, &s->ondemand, od_entry, next)
	{
		if (ts->cls != NULL && !ts->cls->on_demand)
			continue;
		blocked = 0;
		TAILQ_FOREACH_SAFE(t, &ts->waiting, wait_entry, tn)
		{
			if (t->pending != NULL || sched_ticket_expired(s, t))
				continue;
			if (sched_limits_block(s, t, NULL, 0)) {
				if (++blocked == LANE_LOOKAHEAD)
					break;
				continue;
			}
			if ((p = ondemand_pool(s, ts, t)) == NULL)
				break;
			r = sched_resource_start(s, p);
			sched_pending_link(s, t, r);
		}
	}
}

/*
 * An on-demand pool keeps no more free resources than there are waiting
 * tickets it could serve; the oldest of the rest are deleted (those
 * failing their livechecks, on a list of their own, are left to them).
 */
static void
sched_ondemand_surplus(struct sched *s, struct pool *p)
{
	struct tagset *ts;
	struct resource *r;
	size_t waiting = 0, i;

	if (p->counts[LIST_FREE] == 0)
		return;
	TAILQ_FOREACH(ts, &s->busy, busy_entry)
	for (i = 0; i < ts->nproviders; i++)
		if (ts->providers[i].pool == p)
			waiting += ts->nwaiting;
	while (p->counts[LIST_FREE] > waiting &&
	       (r = TAILQ_FIRST(&p->lists[LIST_FREE])) != NULL) {
		rlog_info(r, "no ticket waits for it");
		sched_resource_send_delete(s, r);
	}
}

/* Starts what the pool's preallocation rule allows right now. */
static void
sched_preallocate(struct sched *s, struct pool *p)
{
	const struct conf_pool *c = p->conf;

	if (c == NULL || c->ntags_on_demand > 0)
		return;
	/* A free resource failing its livechecks still counts as free. */
	while ((int64_t)(p->counts[LIST_FREE] + p->failing_unused +
			 p->counts[LIST_STARTING]) < c->max_prealloc &&
	       sched_pool_can_start(s, p, NULL, 0))
		(void)sched_resource_start(s, p);
}

void
sched_run(struct sched *s)
{
	struct pool *p;

	if (!s->dirty)
		return;
	s->dirty = false;
	sched_assign(s);
	sched_ondemand(s);
	TAILQ_FOREACH(p, &s->pools, entry)
	{
		if (p->conf != NULL && p->conf->ntags_on_demand > 0)
			sched_ondemand_surplus(s, p);
		sched_preallocate(s, p);
	}
}
