/*
 * sched -- pools, resources, tickets and tag sets, and what to do next.
 *
 * Lookups by ID go through red-black trees; the lists an object sits on
 * are its state.  A pool keeps its resources on one list per state
 * (starting, free, taken, deleting), so the preallocation rule of
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
 * This file keeps the objects' lifecycle -- the only functions that move
 * their state -- and the scheduling step.  The other pieces: sched_priv.h
 * (the types); sched_policy.c (classes, limits, caps, tag rules);
 * sched_store.c (write-through and loading); sched_wire.c (jobs and
 * updates out, job results in); sched_view.c (views and operators'
 * actions).
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

const double sched_start_bucket_s[SCHED_START_BUCKETS] = {
    1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600};

/* R is no longer the on-demand start of any ticket. */
static void
pending_unlink(struct sched *s, struct resource *r)
{
	struct ticket *t = r->for_ticket;

	if (t == NULL)
		return;
	t->pending = NULL;
	r->for_ticket = NULL;
	sched_ticket_charge(s, t);
}

/* R is the on-demand start made for T. */
static void
pending_link(struct sched *s, struct ticket *t, struct resource *r)
{
	t->pending = r;
	r->for_ticket = t;
	sched_ticket_charge(s, t);
}

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

static size_t
pool_alive(const struct pool *p)
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

/* The smallest id_in_pool no live resource of P holds. */
static int32_t
pool_free_id(const struct pool *p)
{
	const struct resource *r;
	size_t n = pool_alive(p) + 1, i;
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
		return r->releases > 0 ? LIST_RELEASED : LIST_FREE;
	case RES_RELEASING:
		return LIST_RELEASING;
	default:
		return LIST_DELETING;
	}
}

void
sched_resource_link(struct resource *r)
{
	r->list = resource_list_for(r);
	TAILQ_INSERT_TAIL(&r->pool->lists[r->list], r, entry);
	r->pool->counts[r->list]++;
}

static void
resource_unlink(struct resource *r)
{
	TAILQ_REMOVE(&r->pool->lists[r->list], r, entry);
	r->pool->counts[r->list]--;
}

static void
resource_free(struct sched *s, struct resource *r)
{
	size_t i;

	ev_timer_stop(s->loop, &r->live_timer);
	ev_timer_stop(s->loop, &r->reuse_timer);
	ev_timer_stop(s->loop, &r->start_timer);
	pending_unlink(s, r);
	for (i = 0; i < r->ncounters; i++)
		free(r->counters[i].name);
	free(r->counters);
	free(r->sandbox);
	free(r->name);
	free(r->data);
	free(r);
}

static void observe_resource(
    struct sched *s, const struct resource *r, const char *what);

/*
 * Moves R to STATE (with its current ticket and release count), writes
 * it through, arms or stops its timers, and frees it once ENDED.  R must
 * not be used after a move to RES_ENDED.
 */
void
sched_resource_move(
    struct sched *s, struct resource *r, enum resource_state state)
{
	resource_unlink(r);
	if (r->state != state)
		log_debug("resource %llu %s: %s -> %s",
		    (unsigned long long)r->id, r->name,
		    resource_state_names[r->state],
		    resource_state_names[state]);
	if (r->state == RES_STARTING && state == RES_UP)
		observe_resource(s, r, "up");
	r->state = state;
	sched_put_resource(s, r);
	if (state == RES_ENDED) {
		observe_resource(s, r, "deleted");
		RB_REMOVE(resource_ids, &s->resources, r);
		resource_free(s, r);
		return;
	}
	sched_resource_link(r);
	sched_resource_arm_timers(s, r);
}

/* Asks the pool's workers to delete R. */
void
sched_resource_send_delete(struct sched *s, struct resource *r)
{
	pending_unlink(s, r);
	sched_resource_move(s, r, RES_DELETING);
	sched_resource_send(s, r, &resbus__v1__delete__descriptor);
	log_info("resource %llu %s: delete requested",
	    (unsigned long long)r->id, r->name);
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

static struct resource *
resource_start(struct sched *s, struct pool *p)
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
	observe_resource(s, r, "starting");
	log_info("resource %llu %s: starting in pool %s (id_in_pool %d)",
	    (unsigned long long)r->id, r->name, p->name, r->id_in_pool);
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
	if (r->list == LIST_RELEASED && c != NULL) {
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

	if (r->list != LIST_RELEASED)
		return;
	log_info("resource %llu %s: no ticket of sandbox %s came in time",
	    (unsigned long long)r->id, r->name, r->sandbox);
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
	log_warnx("resource %llu %s: not up within start_timeout; deleting "
		  "it",
	    (unsigned long long)r->id, r->name);
	r->pool->fail_streak++;
	r->pool->starts_failed++;
	if (r->for_ticket != NULL)
		r->for_ticket->avoid = r->pool;
	sched_resource_send(s, r, &resbus__v1__cancel__descriptor);
	sched_resource_send_delete(s, r);
	sched_touch(s);
}

/* Stops the running cmd_new of R and deletes what it made. */
static void
resource_cancel(struct sched *s, struct resource *r)
{
	pending_unlink(s, r);
	sched_resource_send(s, r, &resbus__v1__cancel__descriptor);
	sched_resource_move(s, r, RES_DELETE_REQUESTED);
	log_info("resource %llu %s: start cancelled", (unsigned long long)r->id,
	    r->name);
}

/* ---- tag sets ---------------------------------------------------------- */

/*
 * Whether POOL satisfies ticket tag TAG, with the priority of the pool's
 * tag in *prio.  Plain tags match by name.  A numeric requirement
 * (`memory>=32`, `disk<=100`, `>` and `<` too) matches a pool tag
 * `memory=64` whose value satisfies it; *fit (may be NULL) then adds that
 * value, so that among equal scores the smallest pool that fits wins.
 */
static bool
tag_list_has(const struct conf_tag *list, size_t n, const char *tag,
    int64_t *prio, int64_t *fit)
{
	const char *op = strpbrk(tag, "<>");
	long long want, have;
	size_t namelen, i;
	char *end;
	bool ok;

	if (op == NULL) {
		for (i = 0; i < n; i++)
			if (strcmp(list[i].name, tag) == 0) {
				*prio = list[i].priority;
				return true;
			}
		return false;
	}
	namelen = (size_t)(op - tag);
	want = strtoll(op + (op[1] == '=' ? 2 : 1), &end, 10);
	if (*end != '\0' || namelen == 0)
		return false;
	{
		for (i = 0; i < n; i++) {
			const char *t = list[i].name;

			if (strncmp(t, tag, namelen) != 0 || t[namelen] != '=')
				continue;
			have = strtoll(t + namelen + 1, &end, 10);
			if (*end != '\0')
				continue;
			if (op[0] == '>')
				ok = op[1] == '=' ? have >= want : have > want;
			else
				ok = op[1] == '=' ? have <= want : have < want;
			if (!ok)
				continue;
			*prio = list[i].priority;
			if (fit != NULL)
				*fit += have;
			return true;
		}
	}
	return false;
}

static bool
pool_has_tag(
    const struct conf_pool *pool, const char *tag, int64_t *prio, int64_t *fit)
{
	return tag_list_has(pool->tags, pool->ntags, tag, prio, fit) ||
	       tag_list_has(
		   pool->tags_on_demand, pool->ntags_on_demand, tag, prio, fit);
}

/* Whether TAG (plain or numeric) is satisfied by POOL's on-demand tags. */
static bool
pool_tag_on_demand(const struct conf_pool *pool, const char *tag)
{
	int64_t prio;

	return tag_list_has(
	    pool->tags_on_demand, pool->ntags_on_demand, tag, &prio, NULL);
}

/*
 * The lane of tag set KEY and class CLASS_ (NULL: none): the FIFO its
 * tickets wait in.  Tickets of the same tag set and class are one FIFO;
 * the class-less lane of a key also records whether its queue exists.
 */
static void tagset_idle_add(struct sched *s, struct tagset *ts);

struct tagset *
sched_tagset_get(struct sched *s, const char *key, const char *class_)
{
	struct tagset k = {.key = (char *)key, .class_ = (char *)class_};
	struct tagset *ts = RB_FIND(tagset_keys, &s->tagsets, &k);

	if (ts != NULL)
		return ts;
	ts = xcalloc(1, sizeof(*ts));
	ts->key = xstrdup(key);
	ts->class_ = class_ ? xstrdup(class_) : NULL;
	if (tagset_split(key, &ts->tags, &ts->ntags) == -1)
		log_warnx("tag set \"%s\" is not canonical", key);
	TAILQ_INIT(&ts->waiting);
	RB_INIT(&ts->by_sandbox);
	ts->providers_gen = (unsigned)-1;
	RB_INSERT(tagset_keys, &s->tagsets, ts);
	s->ntagsets++;
	tagset_idle_add(s, ts);
	return ts;
}

/* Whether lane KEY, CLASS_ is in memory. */
static bool
tagset_exists(struct sched *s, const char *key, const char *class_)
{
	struct tagset k = {.key = (char *)key, .class_ = (char *)class_};

	return RB_FIND(tagset_keys, &s->tagsets, &k) != NULL;
}

/* Lane TS has no tickets from now on: it goes to the end of the idle
 * list, which is thus ordered by idle_since_ms. */
static void
tagset_idle_add(struct sched *s, struct tagset *ts)
{
	if (ts->idle)
		TAILQ_REMOVE(&s->idle, ts, idle_entry);
	ts->idle = true;
	ts->idle_since_ms = now_mono_ms();
	TAILQ_INSERT_TAIL(&s->idle, ts, idle_entry);
}

static void
tagset_idle_remove(struct sched *s, struct tagset *ts)
{
	if (!ts->idle)
		return;
	TAILQ_REMOVE(&s->idle, ts, idle_entry);
	ts->idle = false;
}

/* Forgets lane TS, which has no tickets (not its row: see tagset_retire). */
static void
tagset_free(struct sched *s, struct tagset *ts)
{
	tagset_idle_remove(s, ts);
	RB_REMOVE(tagset_keys, &s->tagsets, ts);
	s->ntagsets--;
	tagset_free_list(ts->tags, ts->ntags);
	free(ts->providers);
	free(ts->key);
	free(ts->class_);
	free(ts);
}

/* T is a ticket of lane TS (in memory, not CLOSED). */
void
sched_ticket_bind(struct sched *s, struct ticket *t, struct tagset *ts)
{
	t->ts = ts;
	if (ts->ntickets++ == 0)
		tagset_idle_remove(s, ts);
	sched_owner_count_add(s, t->owner, +1);
}

/* T is CLOSED and leaves memory. */
static void
ticket_unbind(struct sched *s, struct ticket *t)
{
	sched_owner_count_add(s, t->owner, -1);
	if (--t->ts->ntickets == 0)
		tagset_idle_add(s, t->ts);
}

#define TAGSET_RETIRE_MAX 256 /* lanes retired in one sweep */

/*
 * Retires lane TS, idle for tagset_idle_s: a lane of a class is simply
 * forgotten; the class-less lane of a key, which stands for the key's
 * queue, goes only when no other lane of the key is left, and then its
 * row goes and the broker is told to drop the queue.  Returns false when
 * TS must wait for its sibling lanes (it is then idle again from now).
 */
static bool
tagset_retire(struct sched *s, struct tagset *ts)
{
	struct tagset *sib;
	char *key;

	if (ts->class_ == NULL &&
	    (sib = RB_NEXT(tagset_keys, &s->tagsets, ts)) != NULL &&
	    strcmp(sib->key, ts->key) == 0) {
		tagset_idle_add(s, ts);
		return false;
	}
	if (!ts->persisted) {
		tagset_free(s, ts);
		return true;
	}
	key = ts->key;
	ts->key = NULL;
	tagset_free(s, ts);
	sched_del_tagset(s, key);
	log_info("tag set %s: no tickets for %llds, retired", key,
	    (long long)s->policy->tagset_idle_s);
	if (s->ops.retire != NULL)
		s->ops.retire(s->ops.ctx, key);
	free(key);
	return true;
}

/*
 * The periodic sweep: retires the lanes at the head of the idle list
 * that have been idle for tagset_idle_s, at most TAGSET_RETIRE_MAX of
 * them at a time (the next sweep comes soon when more are due).  Its
 * cost is the lanes retired, whatever the number of tickets.
 */
static void
tagset_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sched *s = container_of(w, struct sched, idle_timer);
	struct tagset *ts;
	int64_t idle_ms, now = now_mono_ms();
	size_t n = 0;

	if (s->policy == NULL || s->policy->tagset_idle_s <= 0)
		return;
	idle_ms = s->policy->tagset_idle_s > INT64_MAX / 1000
		      ? INT64_MAX
		      : s->policy->tagset_idle_s * 1000;
	while ((ts = TAILQ_FIRST(&s->idle)) != NULL &&
	       now - ts->idle_since_ms >= idle_ms) {
		if (n == TAGSET_RETIRE_MAX) {
			ev_timer_stop(loop, w);
			ev_timer_set(w, 0.1, w->repeat);
			ev_timer_start(loop, w);
			break;
		}
		if (tagset_retire(s, ts))
			n++;
		else if (TAILQ_FIRST(&s->idle) == ts)
			break;
	}
	if (n > 0 && s->ops.wake != NULL)
		s->ops.wake(s->ops.ctx);
}

/* (Re)starts the sweep for the policy's tagset_idle_s: a few sweeps per
 * idle period, at least one a minute. */
void
sched_tagset_sweep_arm(struct sched *s)
{
	double period;

	ev_timer_stop(s->loop, &s->idle_timer);
	if (s->policy == NULL || s->policy->tagset_idle_s <= 0)
		return;
	period = (double)s->policy->tagset_idle_s / 4.;
	if (period < 0.25)
		period = 0.25;
	if (period > 60.)
		period = 60.;
	ev_timer_set(&s->idle_timer, period, period);
	ev_timer_start(s->loop, &s->idle_timer);
}

static int
provider_cmp(const void *a, const void *b)
{
	const struct tagset_provider *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->fit != y->fit)
		return x->fit < y->fit ? -1 : 1;
	return strcmp(x->pool->name, y->pool->name);
}

/* The configured pools that carry every tag of TS, best score first. */
void
sched_tagset_providers(struct sched *s, struct tagset *ts)
{
	struct pool *p;
	int64_t score, prio, fit;
	size_t i;

	if (ts->providers_gen == s->conf_gen)
		return;
	ts->cls = sched_policy_class(s, ts->class_);
	ts->ondemand = false;
	TAILQ_FOREACH(p, &s->pools, entry)
	{
		if (p->conf == NULL)
			continue;
		for (i = 0; i < ts->ntags; i++)
			if (pool_tag_on_demand(p->conf, ts->tags[i]))
				ts->ondemand = true;
	}
	free(ts->providers);
	ts->providers = NULL;
	ts->nproviders = 0;
	TAILQ_FOREACH(p, &s->pools, entry)
	{
		if (p->conf == NULL)
			continue;
		score = 0;
		fit = 0;
		for (i = 0; i < ts->ntags; i++) {
			if (!pool_has_tag(p->conf, ts->tags[i], &prio, &fit))
				break;
			score += prio;
		}
		if (i < ts->ntags)
			continue;
		ts->providers = xrealloc(ts->providers,
		    (ts->nproviders + 1) * sizeof(*ts->providers));
		ts->providers[ts->nproviders].pool = p;
		ts->providers[ts->nproviders].score = score;
		ts->providers[ts->nproviders].fit = fit;
		ts->nproviders++;
	}
	if (ts->nproviders > 1)
		qsort(ts->providers, ts->nproviders, sizeof(*ts->providers),
		    provider_cmp);
	ts->providers_gen = s->conf_gen;
}

/*
 * Keeps lane TS on the busy list and in the serving queue while it has
 * waiting tickets, under its current key (class, on-demand, head).
 * Called whenever its FIFO changes.
 */
static void
tagset_update_busy(struct sched *s, struct tagset *ts)
{
	if (ts->busy)
		RB_REMOVE(lane_queue, &s->queue, ts);
	if (ts->in_od) {
		TAILQ_REMOVE(&s->ondemand, ts, od_entry);
		ts->in_od = false;
	}
	if (ts->nwaiting > 0 && !ts->busy) {
		TAILQ_INSERT_TAIL(&s->busy, ts, busy_entry);
		ts->busy = true;
	} else if (ts->nwaiting == 0 && ts->busy) {
		TAILQ_REMOVE(&s->busy, ts, busy_entry);
		ts->busy = false;
	}
	if (!ts->busy)
		return;
	sched_tagset_providers(s, ts);
	ts->q_prio = ts->cls ? ts->cls->priority : 0;
	ts->q_ondemand = ts->ondemand;
	ts->q_head = TAILQ_FIRST(&ts->waiting)->id;
	RB_INSERT(lane_queue, &s->queue, ts);
	if (ts->ondemand) {
		TAILQ_INSERT_TAIL(&s->ondemand, ts, od_entry);
		ts->in_od = true;
	}
}

/* ---- tickets: the only place their state changes ---------------------- */

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
static void
observe_resource(struct sched *s, const struct resource *r, const char *what)
{
	struct observe_ctx oc = {s, what};

	if (s->ops.observe != NULL)
		sched_resource_describe(r, observe_resource_view, &oc);
}

static void
ticket_free(struct ticket *t)
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
	tagset_update_busy(s, t->ts);
	s->nopen++;
}

static void
waiting_remove(struct sched *s, struct ticket *t)
{
	TAILQ_REMOVE(&t->ts->waiting, t, wait_entry);
	t->ts->nwaiting--;
	if (t->sandbox != NULL)
		RB_REMOVE(ticket_sandboxes, &t->ts->by_sandbox, t);
	tagset_update_busy(s, t->ts);
	s->nopen--;
}

/* The oldest waiting ticket of TS, other than BUT, with no start of its own. */
static struct ticket *
waiting_without_start(struct tagset *ts, const struct ticket *but)
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
		    waiting_without_start(ts, but) != NULL)
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
	pending_unlink(s, r);
	if ((other = waiting_without_start(t->ts, t)) != NULL) {
		pending_link(s, other, r);
	} else if (cancel && r->state == RES_STARTING &&
		   !pool_awaited(s, r->pool, t)) {
		resource_cancel(s, r);
	}
}

/*
 * Moves T to STATE, writes it through and announces it.  A CLOSED ticket
 * leaves memory (queries about it are answered from the store); T must
 * not be used after that.
 */
static void
ticket_move(struct sched *s, struct ticket *t, enum ticket_state state)
{
	if (t->state == TICKET_OPEN && t->res == NULL && state != TICKET_OPEN)
		waiting_remove(s, t);
	log_info("ticket %llu: %s -> %s", (unsigned long long)t->id,
	    ticket_state_names[t->state], ticket_state_names[state]);
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
		ticket_unbind(s, t);
		ticket_free(t);
	}
}

static void
ticket_assign(struct sched *s, struct ticket *t, struct resource *r)
{
	char uuid[37];

	waiting_remove(s, t);
	if (r->for_ticket != t)
		pending_unlink(s, r);
	if (t->pending != NULL && t->pending != r)
		ticket_drop_start(s, t, false);
	/* T's share moves from its start (if any) to R in ticket_move. */
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
	ticket_move(s, t, TICKET_READY);
	log_info("ticket %llu: got resource %llu %s%s",
	    (unsigned long long)t->id, (unsigned long long)r->id, r->name,
	    r->releases > 0 ? " (reused)" : "");
}

/* T let go of R (closed): reuse it within the pool's limits, or delete. */
static void
resource_release(struct sched *s, struct resource *r, const struct ticket *t)
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

	log_warnx(
	    "resource %llu %s: %s", (unsigned long long)r->id, r->name, why);
	if (t != NULL) {
		t->failed_data = xmalloc(r->data_len + 1);
		memcpy(t->failed_data, r->data, r->data_len);
		t->failed_len = r->data_len;
		t->res = NULL;
		r->ticket = NULL;
		ticket_move(s, t, TICKET_FAILED);
	}
	sched_resource_send_delete(s, r);
}

struct ticket *
sched_ticket_find(struct sched *s, uint64_t id)
{
	struct ticket k = {.id = id};

	return RB_FIND(ticket_ids, &s->tickets, &k);
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
	ev_timer_init(&s->idle_timer, tagset_sweep, 0., 0.);
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
	RB_FOREACH_SAFE(t, ticket_ids, &s->tickets, tn)
	{
		RB_REMOVE(ticket_ids, &s->tickets, t);
		ticket_free(t);
	}
	RB_FOREACH_SAFE(r, resource_ids, &s->resources, rn)
	{
		RB_REMOVE(resource_ids, &s->resources, r);
		r->for_ticket = NULL;
		resource_free(s, r);
	}
	RB_FOREACH_SAFE(ts, tagset_keys, &s->tagsets, tsn)
	tagset_free(s, ts);
	ev_timer_stop(s->loop, &s->idle_timer);
	while ((p = TAILQ_FIRST(&s->pools)) != NULL) {
		TAILQ_REMOVE(&s->pools, p, entry);
		ev_timer_stop(s->loop, &p->delay_timer);
		ev_timer_stop(s->loop, &p->list_timer);
		free(p->name);
		free(p);
	}
	{
		struct usage *u, *un;
		struct owner_count *o, *on;
		size_t i;

		RB_FOREACH_SAFE(u, usages, &s->usages, un)
		{
			RB_REMOVE(usages, &s->usages, u);
			free(u->key);
			free(u);
		}
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
			    (t = waiting_without_start(ts, NULL)) == NULL)
				continue;
			pending_link(s, t, r);
			break;
		}
	}
}

/* Closes T for REASON (NULL: its holder closed it); see ticket_move. */
static void
ticket_close(struct sched *s, struct ticket *t, const char *reason)
{
	struct resource *r;

	ticket_drop_start(s, t, true);
	r = t->res;
	if (r != NULL && r->ticket == t) {
		t->res = NULL;
		resource_release(s, r, t);
	}
	t->closed_reason = reason;
	if (reason != NULL)
		log_info("ticket %llu: %s", (unsigned long long)t->id, reason);
	ticket_move(s, t, TICKET_CLOSED);
	s->dirty = true;
}

static void
ticket_lease_lapsed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticket *t = container_of(w, struct ticket, lease_timer);

	ticket_close(t->sched, t,
	    "lease lapsed: its holder did not renew it "
	    "in time");
}

static void
ticket_deadline_passed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticket *t = container_of(w, struct ticket, deadline_timer);

	if (t->state == TICKET_OPEN)
		ticket_close(t->sched, t,
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

char *
sched_dup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

/*
 * Why no pool provides TS, into BUF: the first of its tags no configured
 * pool carries, or, when each has one, that none carries them all.
 */
void
sched_tagset_unprovided(
    struct sched *s, const struct tagset *ts, char *buf, size_t len)
{
	struct pool *p;
	int64_t prio;
	size_t i;

	for (i = 0; i < ts->ntags; i++) {
		TAILQ_FOREACH(p, &s->pools, entry)
		if (p->conf != NULL &&
		    pool_has_tag(p->conf, ts->tags[i], &prio, NULL))
			break;
		if (p == NULL) {
			snprintf(
			    buf, len, "no pool provides tag %s", ts->tags[i]);
			return;
		}
	}
	snprintf(
	    buf, len, "no single pool provides all of the tags %s", ts->key);
}

/*
 * A refused request leaves nothing behind: a lane it made that no ticket
 * uses and that has no queue is forgotten at once.
 */
static void
tagset_drop_unused(struct sched *s, struct tagset *ts)
{
	if (ts->ntickets == 0 && !ts->persisted)
		tagset_free(s, ts);
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
		add = !tagset_exists(s, key, class_);
		if ((strcmp(key, req->key) != 0 || class_ != NULL) &&
		    !tagset_exists(s, req->key, NULL))
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

int
sched_ticket_new(struct sched *s, const struct sched_ticket_req *req,
    uint64_t *id, char *err, size_t errlen)
{
	const char *owner =
	    req->owner != NULL && *req->owner != '\0' ? req->owner : NULL;
	struct ticket k = {.idem_key = (char *)req->idem_key,
			  .owner = (char *)owner},
		      *t;
	struct tagset *ts, *raw;
	const char *class_;
	char *key;

	if (req->idem_key[0] != '\0' &&
	    (t = RB_FIND(ticket_idems, &s->idems, &k)) != NULL) {
		/* A retry: perhaps from a new connection, whose reply queue
		 * is the one that hears the outcome now. */
		if (req->reply_to != NULL && req->reply_to[0] != '\0' &&
		    (t->reply_to == NULL ||
			strcmp(t->reply_to, req->reply_to) != 0)) {
			free(t->reply_to);
			t->reply_to = xstrdup(req->reply_to);
			sched_put_ticket(s, t);
		}
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
		tagset_drop_unused(s, ts);
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
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
	*id = t->id;
	log_info("ticket %llu: OPEN, tags %s%s%s, owner %s%s%s%s",
	    (unsigned long long)t->id, ts->key, t->sandbox ? ", sandbox " : "",
	    t->sandbox ? t->sandbox : "", t->owner ? t->owner : "(unknown)",
	    t->delegate ? " by delegate " : "", t->delegate ? t->delegate : "",
	    t->lease_s ? ", leased" : "");
	if (ts->nproviders == 0) {
		sched_tagset_unprovided(
		    s, ts, s->view_reason, sizeof(s->view_reason));
		log_info("ticket %llu: waits, %s (until a reload adds one)",
		    (unsigned long long)t->id, s->view_reason);
	}
	/* The queue the request came through is in use, even when the tag
	 * rules put the ticket in another lane. */
	raw = RB_FIND(tagset_keys, &s->tagsets,
	    &(struct tagset){.key = (char *)req->key});
	if (raw != NULL && raw->idle)
		tagset_idle_add(s, raw);
	/* Recorded (its ID answers the request), never served. */
	if (t->deadline_ms > 0 && t->deadline_ms <= t->created_ms)
		ticket_close(s, t, "deadline passed before the ticket arrived");
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
	if ((int64_t)pool_alive(p) >= c->max) {
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

int
sched_ticket_close(struct sched *s, uint64_t id)
{
	struct ticket *t = sched_ticket_find(s, id);

	if (t == NULL)
		return 0;
	ticket_close(s, t, NULL);
	return 1;
}

void
sched_touch(struct sched *s)
{
	s->dirty = true;
}

/* ---- the scheduling step ----------------------------------------------- */

/* The first resource of list L of P that passes its livechecks. */
static struct resource *
pool_first_healthy(struct pool *p, enum pool_list l)
{
	struct resource *r;

	TAILQ_FOREACH(r, &p->lists[l], entry)
	if (r->check_failed == 0)
		return r;
	return NULL;
}

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
				if (r->check_failed != 0 ||
				    strcmp(r->sandbox, t->sandbox) != 0)
					continue;
				score = ts->providers[i].score + REUSE_BONUS;
				if (BETTER(r, score, fit)) {
					best = r;
					best_score = score;
					best_fit = fit;
				}
			}
		r = pool_first_healthy(p, LIST_FREE);
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
 * A ticket whose deadline has passed is never served: closed here, at
 * assignment, whether or not its timer has fired yet (after a restart,
 * or when the loop was busy, the step can come first).
 */
static bool
ticket_expired(struct sched *s, struct ticket *t)
{
	if (t->deadline_ms <= 0 || now_wall_ms() < t->deadline_ms)
		return false;
	ticket_close(s, t, "deadline passed before a resource was ready");
	return true;
}

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
		if (ticket_expired(s, t))
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
 * that pool.  Runs only while resources are released, and costs
 * released resources x busy lanes.
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
			if (r->check_failed != 0)
				continue;
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
			if (best != NULL && !ticket_expired(s, best) &&
			    !sched_limits_block(s, best, NULL, 0) &&
			    sched_cap_allows(s, best, p))
				ticket_assign(s, best, r);
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
		tagset_update_busy(s, ts);
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
		ticket_assign(s, t, r);
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
			if (t->pending != NULL || ticket_expired(s, t))
				continue;
			if (sched_limits_block(s, t, NULL, 0)) {
				if (++blocked == LANE_LOOKAHEAD)
					break;
				continue;
			}
			if ((p = ondemand_pool(s, ts, t)) == NULL)
				break;
			r = resource_start(s, p);
			pending_link(s, t, r);
		}
	}
}

/*
 * An on-demand pool keeps no more free resources than there are waiting
 * tickets it could serve; the oldest of the rest are deleted.
 */
static void
sched_ondemand_surplus(struct sched *s, struct pool *p)
{
	struct tagset *ts;
	struct resource *r, *rn;
	size_t waiting = 0, healthy = 0, i;

	if (p->counts[LIST_FREE] == 0)
		return;
	TAILQ_FOREACH(ts, &s->busy, busy_entry)
	for (i = 0; i < ts->nproviders; i++)
		if (ts->providers[i].pool == p)
			waiting += ts->nwaiting;
	TAILQ_FOREACH(r, &p->lists[LIST_FREE], entry)
	if (r->check_failed == 0)
		healthy++;
	TAILQ_FOREACH_SAFE(r, &p->lists[LIST_FREE], entry, rn)
	{
		if (healthy <= waiting)
			break;
		if (r->check_failed != 0)
			continue;
		log_info("resource %llu %s: no ticket waits for it",
		    (unsigned long long)r->id, r->name);
		sched_resource_send_delete(s, r);
		healthy--;
	}
}

/* Starts what the pool's preallocation rule allows right now. */
static void
sched_preallocate(struct sched *s, struct pool *p)
{
	const struct conf_pool *c = p->conf;

	if (c == NULL || c->ntags_on_demand > 0)
		return;
	while ((int64_t)(p->counts[LIST_FREE] + p->counts[LIST_STARTING]) <
		   c->max_prealloc &&
	       sched_pool_can_start(s, p, NULL, 0))
		(void)resource_start(s, p);
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
