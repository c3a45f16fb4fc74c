/*
 * sched_lane -- lanes: the FIFOs tickets wait in, one per tag set and
 * class.
 *
 * A lane knows its tags, the pools that carry all of them with their
 * scores (recomputed once per configuration), whether any is on-demand,
 * and its place in the scheduler's serving queue (a red-black tree by
 * class priority, on-demand first, then its oldest waiting ticket) while
 * it has waiting tickets.  Lanes without tickets sit on an idle list in
 * the order they became idle; a periodic sweep retires those idle for
 * tagset_idle_s from its head, so its cost is the lanes retired.  Tag
 * matching -- plain tags by name, numeric requirements such as
 * `memory>=32` against pool tags such as `memory=64` -- lives here too.
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
	sched_tagset_idle_add(s, ts);
	return ts;
}

/* Whether lane KEY, CLASS_ is in memory. */
bool
sched_tagset_exists(struct sched *s, const char *key, const char *class_)
{
	struct tagset k = {.key = (char *)key, .class_ = (char *)class_};

	return RB_FIND(tagset_keys, &s->tagsets, &k) != NULL;
}

/* Lane TS has no tickets from now on: it goes to the end of the idle
 * list, which is thus ordered by idle_since_ms. */
void
sched_tagset_idle_add(struct sched *s, struct tagset *ts)
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
void
sched_tagset_free(struct sched *s, struct tagset *ts)
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
void
sched_ticket_unbind(struct sched *s, struct ticket *t)
{
	sched_owner_count_add(s, t->owner, -1);
	if (--t->ts->ntickets == 0)
		sched_tagset_idle_add(s, t->ts);
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
		sched_tagset_idle_add(s, ts);
		return false;
	}
	if (!ts->persisted) {
		sched_tagset_free(s, ts);
		return true;
	}
	key = ts->key;
	ts->key = NULL;
	sched_tagset_free(s, ts);
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
void
sched_tagset_sweep(struct ev_loop *loop, ev_timer *w, int revents)
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
void
sched_tagset_update_busy(struct sched *s, struct tagset *ts)
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
void
sched_tagset_drop_unused(struct sched *s, struct tagset *ts)
{
	if (ts->ntickets == 0 && !ts->persisted)
		sched_tagset_free(s, ts);
}
