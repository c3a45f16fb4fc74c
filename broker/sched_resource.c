/*
 * sched_resource -- a resource's life: the only functions that move its
 * state.
 *
 * A resource sits on the list of its pool that its state (and, while UP,
 * whether a ticket holds it, whether its livechecks fail and whether it
 * was released) names, so that the step never scans for health; every
 * move goes through sched_resource_move(), which relinks it, writes it
 * through and arms or stops the timers its state calls for: a livecheck
 * while UP, the end of the reuse window while released, start_timeout
 * while STARTING.  Here too a start is made (its name from the pool's
 * name_pattern, its named counters, its Allocate job), a start is
 * cancelled or late, a resource released by its ticket is reused or
 * deleted, and a dead one takes its ticket to FAILED.  Which resource
 * starts, and when, is decided in sched_step.c.
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

/* R is no longer the on-demand start of any ticket. */
void
sched_pending_unlink(struct sched *s, struct resource *r)
{
	struct ticket *t = r->for_ticket;

	if (t == NULL)
		return;
	t->pending = NULL;
	r->for_ticket = NULL;
	sched_ticket_charge(s, t);
}

/* R is the on-demand start made for T. */
void
sched_pending_link(struct sched *s, struct ticket *t, struct resource *r)
{
	t->pending = r;
	r->for_ticket = t;
	sched_ticket_charge(s, t);
}

/* The smallest id_in_pool no live resource of P holds. */
static int32_t
pool_free_id(const struct pool *p)
{
	const struct resource *r;
	size_t n = sched_pool_alive(p) + 1, i;
	bool *used = xcalloc(n, sizeof(*used));
	int32_t id;

	for (i = 0; i < LIST_COUNT; i++)
		TAILQ_FOREACH(r, &p->lists[i], entry)
	if (r->id_in_pool >= 0 && (size_t)r->id_in_pool < n)
		used[r->id_in_pool] = true;
	for (id = 0; used[id]; id++)
		;
	free(used);
	return id;
}

/* ---- resources: the only place their state changes -------------------- */

static enum pool_list
resource_list_for(const struct resource *r)
{
	switch (r->state) {
	case RES_STARTING:
		return LIST_STARTING;
	case RES_UP:
		if (r->ticket != NULL)
			return LIST_TAKEN;
		if (r->check_failed > 0)
			return LIST_FAILING;
		return r->releases > 0 ? LIST_RELEASED : LIST_FREE;
	case RES_RELEASING:
		return LIST_RELEASING;
	default:
		return LIST_DELETING;
	}
}

/*
 * Puts R on the list of its state.  The free list is kept in ID order
 * (the step takes its head: equal scores go to the lowest ID, as in
 * resalloc); resources come up mostly in that order, so the walk from the
 * tail is short.
 */
void
sched_resource_link(struct resource *r)
{
	struct resource *after;

	r->list = resource_list_for(r);
	after = NULL;
	if (r->list == LIST_FREE) {
		after = TAILQ_LAST(&r->pool->lists[LIST_FREE], resource_list);
		while (after != NULL && after->id > r->id)
			after = TAILQ_PREV(after, resource_list, entry);
	}
	if (after != NULL)
		TAILQ_INSERT_AFTER(&r->pool->lists[r->list], after, r, entry);
	else if (r->list == LIST_FREE)
		TAILQ_INSERT_HEAD(&r->pool->lists[r->list], r, entry);
	else
		TAILQ_INSERT_TAIL(&r->pool->lists[r->list], r, entry);
	r->pool->counts[r->list]++;
	if (r->list == LIST_FAILING && r->releases == 0)
		r->pool->failing_unused++;
}

static void
resource_unlink(struct resource *r)
{
	TAILQ_REMOVE(&r->pool->lists[r->list], r, entry);
	r->pool->counts[r->list]--;
	if (r->list == LIST_FAILING && r->releases == 0)
		r->pool->failing_unused--;
}

/*
 * R's livechecks changed (check_failed): it moves between the free or
 * released list and the failing one, so that the step never looks at a
 * resource it would not hand out; written through, timers armed.
 */
void
sched_resource_relist(struct sched *s, struct resource *r)
{
	if (resource_list_for(r) != r->list) {
		resource_unlink(r);
		sched_resource_link(r);
	}
	sched_put_resource(s, r);
	sched_resource_arm_timers(s, r);
}

/* Whether R is UP, idle and bound to a sandbox (released), whatever its
 * livechecks say. */
bool
sched_resource_released(const struct resource *r)
{
	return r->list == LIST_RELEASED ||
	       (r->list == LIST_FAILING && r->releases > 0);
}

/* R's timers stopped, R no longer the start of any ticket. */
static void
resource_quiet(struct sched *s, struct resource *r)
{
	ev_timer_stop(s->loop, &r->live_timer);
	ev_timer_stop(s->loop, &r->reuse_timer);
	ev_timer_stop(s->loop, &r->start_timer);
	sched_pending_unlink(s, r);
}

/* Frees R, which no list, tree or ticket holds any more. */
void
sched_resource_free(struct sched *s, struct resource *r)
{
	size_t i;

	resource_quiet(s, r);
	for (i = 0; i < r->ncounters; i++)
		free(r->counters[i].name);
	free(r->counters);
	free(r->sandbox);
	free(r->name);
	free(r->data);
	free(r);
}

/*
 * Moves R to STATE (with its current ticket and release count), writes
 * it through, arms or stops its timers.  An ENDED resource leaves the
 * scheduler's tree and its pool, and waits on sched->ended until the
 * iteration ends: R stays readable until then, but nothing finds it.
 */
void
sched_resource_move(
    struct sched *s, struct resource *r, enum resource_state state)
{
	resource_unlink(r);
	if (r->state != state)
		rlog_debug(r, "%s -> %s", resource_state_names[r->state],
		    resource_state_names[state]);
	if (r->state == RES_STARTING && state == RES_UP)
		sched_observe_resource(s, r, "up");
	r->state = state;
	sched_put_resource(s, r);
	if (state == RES_ENDED) {
		sched_observe_resource(s, r, "deleted");
		RB_REMOVE(resource_ids, &s->resources, r);
		resource_quiet(s, r);
		TAILQ_INSERT_TAIL(&s->ended, r, entry);
		return;
	}
	sched_resource_link(r);
	sched_resource_arm_timers(s, r);
}

/* Asks the pool's workers to delete R. */
void
sched_resource_send_delete(struct sched *s, struct resource *r)
{
	sched_pending_unlink(s, r);
	sched_resource_move(s, r, RES_DELETING);
	sched_resource_send(s, r, &resbus__v1__delete__descriptor);
	rlog_info(r, "delete requested");
}

/* Expands a resalloc name_pattern: {pool_name}, {id}, {datetime}. */
static char *
resource_name(const struct pool *p, uint64_t id)
{
	const char *pat = p->conf && p->conf->name_pattern
			      ? p->conf->name_pattern
			      : "{pool_name}_{id}_{datetime}";
	char datetime[32], idbuf[32], *out;
	size_t len = 0, cap = 64, n;
	const char *v;
	struct tm tm;
	time_t now = time(NULL);

	localtime_r(&now, &tm);
	strftime(datetime, sizeof(datetime), "%Y%m%d_%H%M%S", &tm);
	snprintf(idbuf, sizeof(idbuf), "%08llu", (unsigned long long)id);
	out = xmalloc(cap);
	while (*pat != '\0') {
		v = NULL;
		n = 1;
		if (strncmp(pat, "{pool_name}", 11) == 0) {
			v = p->name;
			n = 11;
		} else if (strncmp(pat, "{id}", 4) == 0) {
			v = idbuf;
			n = 4;
		} else if (strncmp(pat, "{datetime}", 10) == 0) {
			v = datetime;
			n = 10;
		}
		if (v == NULL)
			v = pat;
		if (len + strlen(v) + 2 > cap) {
			cap = (len + strlen(v) + 2) * 2;
			out = xrealloc(out, cap);
		}
		if (v == pat) {
			out[len++] = *pat;
		} else {
			memcpy(out + len, v, strlen(v));
			len += strlen(v);
		}
		pat += n;
	}
	out[len] = '\0';
	return out;
}

/*
 * The smallest value of named counter NAME no live resource of any pool
 * holds (resalloc's rule: counters are shared across pools).
 */
static uint32_t
counter_free_value(struct sched *s, const char *name)
{
	struct resource *r;
	size_t n = 0, i, cap = 64;
	bool *used = xcalloc(cap, sizeof(*used));
	uint32_t v;

	RB_FOREACH(r, resource_ids, &s->resources)
	for (i = 0; i < r->ncounters; i++) {
		if (strcmp(r->counters[i].name, name) != 0)
			continue;
		v = r->counters[i].value;
		if (v >= cap) {
			used = xrealloc(used, (v + 1) * 2 * sizeof(*used));
			memset(
			    used + cap, 0, ((v + 1) * 2 - cap) * sizeof(*used));
			cap = (v + 1) * 2;
		}
		used[v] = true;
		n++;
	}
	for (v = 0; v < cap && used[v]; v++)
		;
	free(used);
	return v;
}

struct resource *
sched_resource_start(struct sched *s, struct pool *p)
{
	struct resource *r = xcalloc(1, sizeof(*r));
	char key[300];
	size_t i;

	r->id = ++s->last_resource_id;
	sched_put_meta(s, "last_resource_id", (int64_t)r->id);
	r->pool = p;
	r->name = resource_name(p, r->id);
	r->state = RES_STARTING;
	r->id_in_pool = pool_free_id(p);
	r->created_ms = now_wall_ms();
	if (p->conf->nnamed_counters > 0) {
		r->counters =
		    xcalloc(p->conf->nnamed_counters, sizeof(*r->counters));
		for (i = 0; i < p->conf->nnamed_counters; i++) {
			r->counters[i].name =
			    xstrdup(p->conf->named_counters[i]);
			r->counters[i].value =
			    counter_free_value(s, p->conf->named_counters[i]);
			r->ncounters = i + 1;
		}
	}
	ev_timer_init(&r->live_timer, sched_resource_livecheck_due, 0., 0.);
	ev_timer_init(&r->reuse_timer, sched_resource_reuse_over, 0., 0.);
	ev_timer_init(&r->start_timer, sched_resource_start_late, 0., 0.);
	RB_INSERT(resource_ids, &s->resources, r);
	sched_resource_link(r);
	sched_resource_arm_timers(s, r);
	sched_put_resource(s, r);
	p->last_start_ms = now_mono_ms();
	snprintf(key, sizeof(key), "pool.%s.last_start_ms", p->name);
	sched_put_meta(s, key, now_wall_ms());
	sched_resource_send(s, r, &resbus__v1__allocate__descriptor);
	sched_observe_resource(s, r, "starting");
	rlog_info(
	    r, "starting in pool %s (id_in_pool %d)", p->name, r->id_in_pool);
	return r;
}

/* ---- health and reuse --------------------------------------------------- */

/* Whether R, just released, may wait for another ticket of its sandbox. */
bool
sched_resource_reusable(const struct resource *r)
{
	const struct conf_pool *c = r->pool->conf;
	int64_t now = now_wall_ms();

	if (c == NULL || c->reuse_opportunity_time == 0 || r->sandbox == NULL)
		return false;
	if (c->reuse_max_time != 0 &&
	    r->sandboxed_since_ms + c->reuse_max_time * 1000 <= now)
		return false;
	if (c->reuse_max_count != 0 && r->releases > c->reuse_max_count)
		return false;
	return true;
}

/*
 * Starts the timers R's state calls for, stops the others: a livecheck
 * for UP resources of pools with cmd_livecheck, the end of the reuse
 * window for released ones.  Timers exist only for rules about time.
 */
void
sched_resource_arm_timers(struct sched *s, struct resource *r)
{
	const struct conf_pool *c = r->pool->conf;
	int64_t deadline, period;

	if (r->state == RES_UP && c != NULL && c->cmd_livecheck != NULL &&
	    !r->check_inflight) {
		if (!ev_is_active(&r->live_timer)) {
			period =
			    c->livecheck_period > 0 ? c->livecheck_period : 1;
			ev_timer_set(&r->live_timer, (double)period, 0.);
			ev_timer_start(s->loop, &r->live_timer);
		}
	} else {
		ev_timer_stop(s->loop, &r->live_timer);
	}
	if (r->state == RES_STARTING && c != NULL) {
		if (!ev_is_active(&r->start_timer)) {
			ev_timer_set(&r->start_timer,
			    (double)(c->start_timeout
					 ? c->start_timeout
					 : c->cmd_new_timeout + 60),
			    0.);
			ev_timer_start(s->loop, &r->start_timer);
		}
	} else {
		ev_timer_stop(s->loop, &r->start_timer);
	}
	ev_timer_stop(s->loop, &r->reuse_timer);
	if (sched_resource_released(r) && c != NULL) {
		deadline = r->released_at_ms + c->reuse_opportunity_time * 1000;
		if (c->reuse_max_time != 0 &&
		    r->sandboxed_since_ms + c->reuse_max_time * 1000 < deadline)
			deadline =
			    r->sandboxed_since_ms + c->reuse_max_time * 1000;
		deadline -= now_wall_ms();
		ev_timer_set(&r->reuse_timer,
		    deadline > 0 ? (double)deadline / 1000. : 0., 0.);
		ev_timer_start(s->loop, &r->reuse_timer);
	}
}

void
sched_resource_livecheck_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resource *r = container_of(w, struct resource, live_timer);
	struct sched *s = r->pool->sched;

	if (r->state != RES_UP || r->check_inflight)
		return;
	r->check_inflight = true;
	sched_resource_send(s, r, &resbus__v1__livecheck__descriptor);
}

void
sched_resource_reuse_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resource *r = container_of(w, struct resource, reuse_timer);
	struct sched *s = r->pool->sched;

	if (!sched_resource_released(r))
		return;
	rlog_info(r, "no ticket of sandbox %s came in time", r->sandbox);
	sched_resource_send_delete(s, r);
	sched_touch(s);
}

/*
 * A start that passed start_timeout: whatever the worker is doing, stop
 * it and delete what it made; the pool counts a failure, and a ticket
 * waiting for this start gets one elsewhere.
 */
void
sched_resource_start_late(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resource *r = container_of(w, struct resource, start_timer);
	struct sched *s = r->pool->sched;

	if (r->state != RES_STARTING)
		return;
	rlog_warnx(r, "not up within start_timeout; deleting "
		      "it");
	r->pool->fail_streak++;
	r->pool->starts_failed++;
	if (r->for_ticket != NULL)
		r->for_ticket->avoid = r->pool;
	sched_resource_send(s, r, &resbus__v1__cancel__descriptor);
	sched_resource_send_delete(s, r);
	sched_touch(s);
}

/* Stops the running cmd_new of R and deletes what it made. */
void
sched_resource_cancel(struct sched *s, struct resource *r)
{
	sched_pending_unlink(s, r);
	sched_resource_send(s, r, &resbus__v1__cancel__descriptor);
	sched_resource_move(s, r, RES_DELETE_REQUESTED);
	rlog_info(r, "start cancelled");
}

/* T let go of R (closed): reuse it within the pool's limits, or delete. */
void
sched_resource_release(
    struct sched *s, struct resource *r, const struct ticket *t)
{
	r->ticket = NULL;
	r->releases++;
	r->released_at_ms = now_wall_ms();
	if (t->sandbox == NULL || !sched_resource_reusable(r)) {
		sched_resource_send_delete(s, r);
		return;
	}
	if (r->pool->conf->cmd_release != NULL) {
		sched_resource_move(s, r, RES_RELEASING);
		sched_resource_send(s, r, &resbus__v1__release__descriptor);
		return;
	}
	sched_resource_move(s, r, RES_UP);
}

/* R died (livecheck, operator): its ticket FAILED, R deleted. */
void
sched_resource_kill(struct sched *s, struct resource *r, const char *why)
{
	struct ticket *t = r->ticket;

	rlog_warnx(r, "%s", why);
	if (t != NULL) {
		t->failed_data = xmemdup(r->data, r->data_len);
		t->failed_len = r->data_len;
		t->res = NULL;
		r->ticket = NULL;
		sched_ticket_move(s, t, TICKET_FAILED);
	}
	sched_resource_send_delete(s, r);
}
