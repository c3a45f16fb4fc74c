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
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
/* libbsd's tree.h marks generated functions __unused without defining it. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>

#include <ev.h>

#include "conf.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

enum ticket_state {
	TICKET_OPEN,
	TICKET_READY,
	TICKET_FAILED,
	TICKET_CLOSED,
};

static const char *const ticket_state_names[] = {
	[TICKET_OPEN] = "OPEN",
	[TICKET_READY] = "READY",
	[TICKET_FAILED] = "FAILED",
	[TICKET_CLOSED] = "CLOSED",
};

enum resource_state {
	RES_STARTING,
	RES_UP,
	RES_DELETE_REQUESTED,
	RES_DELETING,
	RES_ENDED,
	RES_NSTATES,
};

static const char *const resource_state_names[] = {
	[RES_STARTING] = "STARTING",
	[RES_UP] = "UP",
	[RES_DELETE_REQUESTED] = "DELETE_REQUESTED",
	[RES_DELETING] = "DELETING",
	[RES_ENDED] = "ENDED",
};

/* The list of its pool a resource sits on. */
enum pool_list {
	LIST_STARTING,
	LIST_FREE,
	LIST_TAKEN,
	LIST_DELETING,
	LIST_COUNT,
};

struct ticket;
struct pool;

struct resource {
	RB_ENTRY(resource) by_id;
	TAILQ_ENTRY(resource) entry;         /* on pool->lists[list] */
	uint64_t id;
	struct pool *pool;
	char *name;
	enum resource_state state;
	enum pool_list list;
	struct ticket *ticket;
	int32_t id_in_pool;
	void *data;
	size_t data_len;
	int64_t created_ms;
};
TAILQ_HEAD(resource_list, resource);

struct pool {
	TAILQ_ENTRY(pool) entry;
	char *name;
	const struct conf_pool *conf;        /* NULL: no longer configured */
	struct resource_list lists[LIST_COUNT];
	size_t counts[LIST_COUNT];
	int64_t last_start_ms;
	ev_timer delay_timer;                /* start_delay expiry */
	struct sched *sched;
};

struct tagset_provider {
	struct pool *pool;
	int64_t score;
};

struct tagset {
	RB_ENTRY(tagset) by_key;
	TAILQ_ENTRY(tagset) busy_entry;      /* on sched->busy if waiting */
	bool busy;
	bool persisted;                      /* has a row and a queue */
	char *key;
	char **tags;
	size_t ntags;
	TAILQ_HEAD(, ticket) waiting;        /* FIFO of OPEN tickets */
	size_t nwaiting;
	struct tagset_provider *providers;   /* best score first */
	size_t nproviders;
	unsigned providers_gen;
};

struct ticket {
	RB_ENTRY(ticket) by_id;
	RB_ENTRY(ticket) by_idem;
	TAILQ_ENTRY(ticket) wait_entry;
	uint64_t id;
	char *idem_key;
	struct tagset *ts;
	char *sandbox;
	enum ticket_state state;
	struct resource *res;
	uint64_t resource_id;                /* kept after the resource ends */
	int64_t created_ms;
};

RB_HEAD(ticket_ids, ticket);
RB_HEAD(ticket_idems, ticket);
RB_HEAD(resource_ids, resource);
RB_HEAD(tagset_keys, tagset);

struct sched {
	struct ev_loop *loop;
	struct store *store;
	char *prefix;
	const struct conf_pools *conf;
	unsigned conf_gen;
	struct sched_ops ops;
	TAILQ_HEAD(, pool) pools;
	struct ticket_ids tickets;
	struct ticket_idems idems;
	struct resource_ids resources;
	struct tagset_keys tagsets;
	TAILQ_HEAD(, tagset) busy;
	size_t nopen;
	uint64_t last_ticket_id;
	uint64_t last_resource_id;
	bool dirty;
	char view_reason[256];
};

static int
ticket_cmp(const struct ticket *a, const struct ticket *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
ticket_idem_cmp(const struct ticket *a, const struct ticket *b)
{
	return strcmp(a->idem_key, b->idem_key);
}

static int
resource_cmp(const struct resource *a, const struct resource *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
tagset_cmp(const struct tagset *a, const struct tagset *b)
{
	return strcmp(a->key, b->key);
}

RB_GENERATE_STATIC(ticket_ids, ticket, by_id, ticket_cmp)
RB_GENERATE_STATIC(ticket_idems, ticket, by_idem, ticket_idem_cmp)
RB_GENERATE_STATIC(resource_ids, resource, by_id, resource_cmp)
RB_GENERATE_STATIC(tagset_keys, tagset, by_key, tagset_cmp)

/* ---- store write-through --------------------------------------------- */

/*
 * A failed write leaves memory ahead of the store.  Nothing has been
 * acknowledged yet in this iteration, so exiting is safe: the restart
 * reloads the last commit and RabbitMQ redelivers the messages.
 */
static void
sched_store_failed(struct sched *s, const char *what)
{
	fatalx("store: %s: %s", what, store_error(s->store));
}

static void
sched_begin(struct sched *s)
{
	if (store_begin(s->store) == -1)
		sched_store_failed(s, "begin");
}

static void
put_ticket(struct sched *s, const struct ticket *t)
{
	struct store_ticket row = {
		.id = t->id,
		.idem_key = t->idem_key,
		.tagset = t->ts->key,
		.sandbox = t->sandbox,
		.state = ticket_state_names[t->state],
		.resource_id = t->resource_id,
		.created_ms = t->created_ms,
	};

	sched_begin(s);
	if (s->store->be->put_ticket(s->store, &row) == -1)
		sched_store_failed(s, "ticket");
}

static void
put_resource(struct sched *s, const struct resource *r)
{
	struct store_resource row = {
		.id = r->id,
		.pool = r->pool->name,
		.name = r->name,
		.state = resource_state_names[r->state],
		.ticket_id = r->ticket ? r->ticket->id : 0,
		.id_in_pool = r->id_in_pool,
		.data = r->data,
		.data_len = r->data_len,
		.created_ms = r->created_ms,
	};

	sched_begin(s);
	if (s->store->be->put_resource(s->store, &row) == -1)
		sched_store_failed(s, "resource");
}

static void
put_meta(struct sched *s, const char *key, int64_t value)
{
	sched_begin(s);
	if (s->store->be->put_meta(s->store, key, value) == -1)
		sched_store_failed(s, "meta");
}

/* ---- pools ------------------------------------------------------------ */

static void pool_delay_expired(struct ev_loop *loop, ev_timer *w, int revents);

static struct pool *
pool_new(struct sched *s, const char *name)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	int i;

	p->name = xstrdup(name);
	p->sched = s;
	for (i = 0; i < LIST_COUNT; i++)
		TAILQ_INIT(&p->lists[i]);
	ev_timer_init(&p->delay_timer, pool_delay_expired, 0., 0.);
	TAILQ_INSERT_TAIL(&s->pools, p, entry);
	return p;
}

static struct pool *
pool_find(struct sched *s, const char *name)
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
	return p->counts[LIST_STARTING] + p->counts[LIST_FREE] +
	    p->counts[LIST_TAKEN] + p->counts[LIST_DELETING];
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
resource_list_for(enum resource_state state, const struct ticket *t)
{
	switch (state) {
	case RES_STARTING:
		return LIST_STARTING;
	case RES_UP:
		return t != NULL ? LIST_TAKEN : LIST_FREE;
	default:
		return LIST_DELETING;
	}
}

static void
resource_link(struct resource *r)
{
	r->list = resource_list_for(r->state, r->ticket);
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
resource_free(struct resource *r)
{
	free(r->name);
	free(r->data);
	free(r);
}

/*
 * Moves R to STATE (with its current ticket), writes it through, and
 * frees it once ENDED.  R must not be used after a move to RES_ENDED.
 */
static void
resource_move(struct sched *s, struct resource *r, enum resource_state state)
{
	resource_unlink(r);
	log_debug("resource %llu %s: %s -> %s", (unsigned long long)r->id,
	    r->name, resource_state_names[r->state],
	    resource_state_names[state]);
	r->state = state;
	put_resource(s, r);
	if (state == RES_ENDED) {
		RB_REMOVE(resource_ids, &s->resources, r);
		resource_free(r);
		return;
	}
	resource_link(r);
}

static Resbus__V1__ResourceRef *
resource_ref(const struct resource *r, Resbus__V1__ResourceRef *ref)
{
	resbus__v1__resource_ref__init(ref);
	ref->resource_id = r->id;
	ref->pool = r->pool->name;
	ref->name = r->name;
	ref->id_in_pool = r->id_in_pool;
	ref->data.data = r->data;
	ref->data.len = r->data_len;
	return ref;
}

static void
resource_send(struct sched *s, const struct resource *r,
    const ProtobufCMessage *job)
{
	char *q = topo_pool_queue(s->prefix, r->pool->name);

	s->ops.emit(s->ops.ctx, "", q, job);
	free(q);
}

/* Asks the pool's workers to delete R. */
static void
resource_delete(struct sched *s, struct resource *r)
{
	Resbus__V1__ResourceRef ref;
	Resbus__V1__Delete job;

	resbus__v1__delete__init(&job);
	job.resource = resource_ref(r, &ref);
	resource_move(s, r, RES_DELETING);
	resource_send(s, r, &job.base);
	log_info("resource %llu %s: delete requested",
	    (unsigned long long)r->id, r->name);
}

/* Expands a resalloc name_pattern: {pool_name}, {id}, {datetime}. */
static char *
resource_name(const struct pool *p, uint64_t id)
{
	const char *pat = p->conf && p->conf->name_pattern ?
	    p->conf->name_pattern : "{pool_name}_{id}_{datetime}";
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

static void
resource_start(struct sched *s, struct pool *p)
{
	Resbus__V1__ResourceRef ref;
	Resbus__V1__Allocate job;
	struct resource *r = xcalloc(1, sizeof(*r));
	char key[300];

	r->id = ++s->last_resource_id;
	put_meta(s, "last_resource_id", (int64_t)r->id);
	r->pool = p;
	r->name = resource_name(p, r->id);
	r->state = RES_STARTING;
	r->id_in_pool = pool_free_id(p);
	r->created_ms = now_wall_ms();
	RB_INSERT(resource_ids, &s->resources, r);
	resource_link(r);
	put_resource(s, r);
	p->last_start_ms = now_mono_ms();
	snprintf(key, sizeof(key), "pool.%s.last_start_ms", p->name);
	put_meta(s, key, now_wall_ms());

	resbus__v1__allocate__init(&job);
	job.resource = resource_ref(r, &ref);
	resource_send(s, r, &job.base);
	log_info("resource %llu %s: starting in pool %s (id_in_pool %d)",
	    (unsigned long long)r->id, r->name, p->name, r->id_in_pool);
}

/* ---- tag sets ---------------------------------------------------------- */

static struct tagset *
tagset_find(struct sched *s, const char *key)
{
	struct tagset k = { .key = (char *)key };

	return RB_FIND(tagset_keys, &s->tagsets, &k);
}

static struct tagset *
tagset_get(struct sched *s, const char *key)
{
	struct tagset *ts = tagset_find(s, key);

	if (ts != NULL)
		return ts;
	ts = xcalloc(1, sizeof(*ts));
	ts->key = xstrdup(key);
	if (tagset_split(key, &ts->tags, &ts->ntags) == -1)
		log_warnx("tag set \"%s\" is not canonical", key);
	TAILQ_INIT(&ts->waiting);
	ts->providers_gen = (unsigned)-1;
	RB_INSERT(tagset_keys, &s->tagsets, ts);
	return ts;
}

static int
provider_cmp(const void *a, const void *b)
{
	const struct tagset_provider *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return strcmp(x->pool->name, y->pool->name);
}

/* The configured pools that carry every tag of TS, best score first. */
static void
tagset_providers(struct sched *s, struct tagset *ts)
{
	struct pool *p;
	int64_t score, prio;
	size_t i;

	if (ts->providers_gen == s->conf_gen)
		return;
	free(ts->providers);
	ts->providers = NULL;
	ts->nproviders = 0;
	TAILQ_FOREACH(p, &s->pools, entry) {
		if (p->conf == NULL)
			continue;
		score = 0;
		for (i = 0; i < ts->ntags; i++) {
			if (!conf_pool_has_tag(p->conf, ts->tags[i], &prio))
				break;
			score += prio;
		}
		if (i < ts->ntags)
			continue;
		ts->providers = xrealloc(ts->providers,
		    (ts->nproviders + 1) * sizeof(*ts->providers));
		ts->providers[ts->nproviders].pool = p;
		ts->providers[ts->nproviders].score = score;
		ts->nproviders++;
	}
	if (ts->nproviders > 1)
		qsort(ts->providers, ts->nproviders, sizeof(*ts->providers),
		    provider_cmp);
	ts->providers_gen = s->conf_gen;
}

static void
tagset_update_busy(struct sched *s, struct tagset *ts)
{
	if (ts->nwaiting > 0 && !ts->busy) {
		TAILQ_INSERT_TAIL(&s->busy, ts, busy_entry);
		ts->busy = true;
	} else if (ts->nwaiting == 0 && ts->busy) {
		TAILQ_REMOVE(&s->busy, ts, busy_entry);
		ts->busy = false;
	}
}

/* ---- tickets: the only place their state changes ---------------------- */

static void
ticket_emit(struct sched *s, const struct ticket *t)
{
	Resbus__V1__TicketUpdate u;
	char key[64];
	const char *state = ticket_state_names[t->state];
	size_t i;

	resbus__v1__ticket_update__init(&u);
	u.ticket_id = t->id;
	u.state = (Resbus__V1__TicketState)(t->state + 1);
	if (t->res != NULL) {
		u.assigned = true;
		u.output.data = t->res->data;
		u.output.len = t->res->data_len;
	}
	i = (size_t)snprintf(key, sizeof(key), "ticket.%llu.",
	    (unsigned long long)t->id);
	for (; *state != '\0' && i < sizeof(key) - 1; state++)
		key[i++] = (char)(*state - 'A' + 'a');
	key[i] = '\0';
	{
		char *x = topo_event_exchange(s->prefix);

		s->ops.emit(s->ops.ctx, x, key, &u.base);
		free(x);
	}
}

static void
ticket_free(struct ticket *t)
{
	free(t->idem_key);
	free(t->sandbox);
	free(t);
}

/*
 * Moves T to STATE, keeping the FIFO and the counters right, writes it
 * through and announces it.  A CLOSED ticket leaves memory (queries about
 * it are answered from the store); T must not be used after that.
 */
static void
ticket_move(struct sched *s, struct ticket *t, enum ticket_state state)
{
	if (t->state == TICKET_OPEN && state != TICKET_OPEN) {
		if (t->res == NULL) {
			TAILQ_REMOVE(&t->ts->waiting, t, wait_entry);
			t->ts->nwaiting--;
			tagset_update_busy(s, t->ts);
		}
		s->nopen--;
	}
	log_info("ticket %llu: %s -> %s", (unsigned long long)t->id,
	    ticket_state_names[t->state], ticket_state_names[state]);
	t->state = state;
	put_ticket(s, t);
	ticket_emit(s, t);
	if (state == TICKET_CLOSED) {
		RB_REMOVE(ticket_ids, &s->tickets, t);
		RB_REMOVE(ticket_idems, &s->idems, t);
		ticket_free(t);
	}
}

static void
ticket_assign(struct sched *s, struct ticket *t, struct resource *r)
{
	TAILQ_REMOVE(&t->ts->waiting, t, wait_entry);
	t->ts->nwaiting--;
	tagset_update_busy(s, t->ts);
	t->res = r;
	t->resource_id = r->id;
	r->ticket = t;
	resource_move(s, r, RES_UP);
	ticket_move(s, t, TICKET_READY);
	log_info("ticket %llu: got resource %llu %s",
	    (unsigned long long)t->id, (unsigned long long)r->id, r->name);
}

static struct ticket *
ticket_find(struct sched *s, uint64_t id)
{
	struct ticket k = { .id = id };

	return RB_FIND(ticket_ids, &s->tickets, &k);
}

/* ---- public interface -------------------------------------------------- */

struct sched *
sched_new(struct ev_loop *loop, struct store *store, const char *prefix,
    const struct conf_pools *pools, const struct sched_ops *ops)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	size_t i;

	s->loop = loop;
	s->store = store;
	s->prefix = xstrdup(prefix);
	s->conf = pools;
	s->ops = *ops;
	TAILQ_INIT(&s->pools);
	TAILQ_INIT(&s->busy);
	RB_INIT(&s->tickets);
	RB_INIT(&s->idems);
	RB_INIT(&s->resources);
	RB_INIT(&s->tagsets);
	for (i = 0; i < pools->npools; i++)
		pool_new(s, pools->pools[i].name)->conf = &pools->pools[i];
	s->dirty = true;
	return s;
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
	RB_FOREACH_SAFE(t, ticket_ids, &s->tickets, tn) {
		RB_REMOVE(ticket_ids, &s->tickets, t);
		ticket_free(t);
	}
	RB_FOREACH_SAFE(r, resource_ids, &s->resources, rn) {
		RB_REMOVE(resource_ids, &s->resources, r);
		resource_free(r);
	}
	RB_FOREACH_SAFE(ts, tagset_keys, &s->tagsets, tsn) {
		RB_REMOVE(tagset_keys, &s->tagsets, ts);
		tagset_free_list(ts->tags, ts->ntags);
		free(ts->providers);
		free(ts->key);
		free(ts);
	}
	while ((p = TAILQ_FIRST(&s->pools)) != NULL) {
		TAILQ_REMOVE(&s->pools, p, entry);
		ev_timer_stop(s->loop, &p->delay_timer);
		free(p->name);
		free(p);
	}
	free(s->prefix);
	free(s);
}

/* ---- loading ----------------------------------------------------------- */

struct sched_loader {
	struct sched *s;
	void (*outbox)(void *arg, const struct store_outbox *o);
	void *arg;
};

static int
state_index(const char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

static void
load_meta(void *arg, const char *key, int64_t value)
{
	struct sched *s = ((struct sched_loader *)arg)->s;
	struct pool *p;
	char name[256];

	if (strcmp(key, "last_ticket_id") == 0)
		s->last_ticket_id = (uint64_t)value;
	else if (strcmp(key, "last_resource_id") == 0)
		s->last_resource_id = (uint64_t)value;
	else if (sscanf(key, "pool.%255[^.].last_start_ms", name) == 1 &&
	    (p = pool_find(s, name)) != NULL)
		/* Carry the wall-clock start over to the monotonic clock. */
		p->last_start_ms = now_mono_ms() - (now_wall_ms() - value);
}

static void
load_tagset(void *arg, const char *key)
{
	tagset_get(((struct sched_loader *)arg)->s, key)->persisted = true;
}

static void
load_resource(void *arg, const struct store_resource *row)
{
	struct sched *s = ((struct sched_loader *)arg)->s;
	struct resource *r;
	struct pool *p;
	int state;

	state = state_index(resource_state_names, RES_NSTATES, row->state);
	if (state == -1) {
		log_warnx("resource %llu: unknown state %s in the store",
		    (unsigned long long)row->id, row->state);
		return;
	}
	if ((p = pool_find(s, row->pool)) == NULL) {
		log_warnx("resource %llu: pool %s is no longer configured",
		    (unsigned long long)row->id, row->pool);
		p = pool_new(s, row->pool);
	}
	r = xcalloc(1, sizeof(*r));
	r->id = row->id;
	r->pool = p;
	r->name = xstrdup(row->name);
	r->state = (enum resource_state)state;
	r->id_in_pool = row->id_in_pool;
	if (row->data != NULL) {
		r->data = xmalloc(row->data_len + 1);
		memcpy(r->data, row->data, row->data_len);
		r->data_len = row->data_len;
	}
	r->created_ms = row->created_ms;
	RB_INSERT(resource_ids, &s->resources, r);
	if (r->id > s->last_resource_id)
		s->last_resource_id = r->id;
	/* Linked to its list once tickets are loaded and attached. */
	r->list = LIST_COUNT;
}

static void
load_ticket(void *arg, const struct store_ticket *row)
{
	struct sched *s = ((struct sched_loader *)arg)->s;
	struct resource rk = { .id = row->resource_id };
	struct ticket *t;
	int state;

	state = state_index(ticket_state_names, 4, row->state);
	if (state == -1 || state == TICKET_CLOSED)
		return;
	t = xcalloc(1, sizeof(*t));
	t->id = row->id;
	t->idem_key = xstrdup(row->idem_key ? row->idem_key : "");
	t->ts = tagset_get(s, row->tagset);
	t->sandbox = row->sandbox ? xstrdup(row->sandbox) : NULL;
	t->state = (enum ticket_state)state;
	t->resource_id = row->resource_id;
	t->created_ms = row->created_ms;
	if (row->resource_id != 0)
		t->res = RB_FIND(resource_ids, &s->resources, &rk);
	if (t->res != NULL && t->res->state == RES_UP)
		t->res->ticket = t;
	RB_INSERT(ticket_ids, &s->tickets, t);
	if (t->idem_key[0] != '\0')
		RB_INSERT(ticket_idems, &s->idems, t);
	if (t->id > s->last_ticket_id)
		s->last_ticket_id = t->id;
	if (t->state == TICKET_OPEN) {
		TAILQ_INSERT_TAIL(&t->ts->waiting, t, wait_entry);
		t->ts->nwaiting++;
		tagset_update_busy(s, t->ts);
		s->nopen++;
	}
}

static void
load_outbox(void *arg, const struct store_outbox *o)
{
	struct sched_loader *l = arg;

	l->outbox(l->arg, o);
}

int
sched_load(struct sched *s,
    void (*outbox)(void *arg, const struct store_outbox *o), void *arg)
{
	struct sched_loader sl = { s, outbox, arg };
	struct store_loader l = {
		.meta = load_meta,
		.tagset = load_tagset,
		.ticket = load_ticket,
		.resource = load_resource,
		.outbox = load_outbox,
		.arg = &sl,
	};
	struct resource *r;
	size_t nres = 0;

	if (s->store->be->load(s->store, &l) == -1)
		return -1;
	RB_FOREACH(r, resource_ids, &s->resources) {
		resource_link(r);
		nres++;
	}
	s->dirty = true;
	log_info("loaded %zu open tickets and %zu live resources", s->nopen,
	    nres);
	return 0;
}

void
sched_foreach_tagset(struct sched *s, void (*fn)(void *arg, const char *key),
    void *arg)
{
	struct tagset *ts;

	RB_FOREACH(ts, tagset_keys, &s->tagsets)
		if (ts->persisted)
			fn(arg, ts->key);
}

int
sched_tagset_add(struct sched *s, const char *key)
{
	struct tagset *ts = tagset_get(s, key);

	if (ts->persisted)
		return 0;
	sched_begin(s);
	if (s->store->be->put_tagset(s->store, key) == -1)
		sched_store_failed(s, "tagset");
	ts->persisted = true;
	return 1;
}

int
sched_ticket_new(struct sched *s, const char *idem_key, const char *key,
    const char *sandbox, uint64_t *id, char *err, size_t errlen)
{
	struct ticket k = { .idem_key = (char *)idem_key }, *t;
	struct tagset *ts;
	size_t i;
	int64_t prio;
	struct pool *p;

	if (idem_key[0] != '\0' &&
	    (t = RB_FIND(ticket_idems, &s->idems, &k)) != NULL) {
		*id = t->id;
		return 0;
	}
	ts = tagset_get(s, key);
	tagset_providers(s, ts);
	if (ts->nproviders == 0) {
		/* Name the first tag nobody provides, if there is one. */
		for (i = 0; i < ts->ntags; i++) {
			TAILQ_FOREACH(p, &s->pools, entry)
				if (p->conf != NULL &&
				    conf_pool_has_tag(p->conf, ts->tags[i],
					&prio))
					break;
			if (p == NULL) {
				snprintf(err, errlen, "no pool provides tag "
				    "%s", ts->tags[i]);
				return -1;
			}
		}
		snprintf(err, errlen, "no single pool provides all of the tags "
		    "%s", key);
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
	t->id = ++s->last_ticket_id;
	put_meta(s, "last_ticket_id", (int64_t)t->id);
	t->idem_key = xstrdup(idem_key);
	t->ts = ts;
	t->sandbox = sandbox && *sandbox ? xstrdup(sandbox) : NULL;
	t->state = TICKET_OPEN;
	t->created_ms = now_wall_ms();
	RB_INSERT(ticket_ids, &s->tickets, t);
	if (t->idem_key[0] != '\0')
		RB_INSERT(ticket_idems, &s->idems, t);
	TAILQ_INSERT_TAIL(&ts->waiting, t, wait_entry);
	ts->nwaiting++;
	tagset_update_busy(s, ts);
	s->nopen++;
	put_ticket(s, t);
	s->dirty = true;
	*id = t->id;
	log_info("ticket %llu: OPEN, tags %s%s%s", (unsigned long long)t->id,
	    key, t->sandbox ? ", sandbox " : "", t->sandbox ? t->sandbox : "");
	return 0;
}

/* Why the head of TS still waits, in words a user can act on. */
static void
ticket_reason(struct sched *s, const struct ticket *t, char *buf, size_t len)
{
	const struct tagset_provider *pv;
	size_t i, n;

	tagset_providers(s, t->ts);
	n = (size_t)snprintf(buf, len, "no free resource with tags %s;",
	    t->ts->key);
	for (i = 0; i < t->ts->nproviders && n < len; i++) {
		pv = &t->ts->providers[i];
		n += (size_t)snprintf(buf + n, len - n,
		    " pool %s: %zu starting, %zu free, %zu taken, max %lld;",
		    pv->pool->name, pv->pool->counts[LIST_STARTING],
		    pv->pool->counts[LIST_FREE], pv->pool->counts[LIST_TAKEN],
		    (long long)pv->pool->conf->max);
	}
	if (n > 0 && n < len)
		buf[n - 1] = '\0';
}

int
sched_ticket_view(struct sched *s, uint64_t id, struct sched_ticket_view *v)
{
	struct ticket *t = ticket_find(s, id);

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
	}
	if (t->state == TICKET_OPEN) {
		ticket_reason(s, t, s->view_reason, sizeof(s->view_reason));
		v->waiting_reason = s->view_reason;
	}
	return 1;
}

int
sched_ticket_close(struct sched *s, uint64_t id)
{
	struct ticket *t = ticket_find(s, id);
	struct resource *r;

	if (t == NULL)
		return 0;
	r = t->res;
	if (r != NULL && r->ticket == t) {
		/* No reuse yet: a released resource is deleted. */
		r->ticket = NULL;
		resource_delete(s, r);
	}
	t->res = NULL;
	ticket_move(s, t, TICKET_CLOSED);
	s->dirty = true;
	return 1;
}

void
sched_on_allocated(struct sched *s, const Resbus__V1__AllocateResult *res)
{
	struct resource k, *r;

	if (res->resource == NULL)
		return;
	k.id = res->resource->resource_id;
	r = RB_FIND(resource_ids, &s->resources, &k);
	if (r == NULL || r->state != RES_STARTING) {
		log_debug("resource %llu: stale allocation result ignored",
		    (unsigned long long)k.id);
		return;
	}
	if (!res->ok) {
		log_warnx("resource %llu %s: cmd_new failed (exit %d%s) on "
		    "%s", (unsigned long long)r->id, r->name, res->exit_status,
		    res->timed_out ? ", timed out" : "", res->worker);
		resource_delete(s, r);
		s->dirty = true;
		return;
	}
	free(r->data);
	r->data = xmalloc(res->data.len + 1);
	memcpy(r->data, res->data.data, res->data.len);
	((char *)r->data)[res->data.len] = '\0';
	r->data_len = res->data.len;
	resource_move(s, r, RES_UP);
	log_info("resource %llu %s: UP after %u ms on %s",
	    (unsigned long long)r->id, r->name, res->duration_ms, res->worker);
	s->dirty = true;
}

void
sched_on_deleted(struct sched *s, const Resbus__V1__DeleteResult *res)
{
	struct resource k, *r;

	if (res->resource == NULL)
		return;
	k.id = res->resource->resource_id;
	r = RB_FIND(resource_ids, &s->resources, &k);
	if (r == NULL || r->state != RES_DELETING) {
		log_debug("resource %llu: stale delete result ignored",
		    (unsigned long long)k.id);
		return;
	}
	if (!res->ok)
		log_warnx("resource %llu %s: cmd_delete exited %d; marked "
		    "ENDED, cmd_list finds it if it leaked",
		    (unsigned long long)r->id, r->name, res->exit_status);
	log_info("resource %llu %s: ENDED", (unsigned long long)r->id,
	    r->name);
	resource_move(s, r, RES_ENDED);
	s->dirty = true;
}

void
sched_touch(struct sched *s)
{
	s->dirty = true;
}

size_t
sched_open_tickets(const struct sched *s)
{
	return s->nopen;
}

/* ---- the scheduling step ----------------------------------------------- */

/* The best free resource for the head of TS: highest score, lowest ID. */
static struct resource *
best_free(struct sched *s, struct tagset *ts)
{
	struct resource *best = NULL, *r;
	int64_t best_score = 0;
	size_t i;

	tagset_providers(s, ts);
	for (i = 0; i < ts->nproviders; i++) {
		r = TAILQ_FIRST(&ts->providers[i].pool->lists[LIST_FREE]);
		if (r == NULL)
			continue;
		if (best == NULL || ts->providers[i].score > best_score ||
		    (ts->providers[i].score == best_score && r->id < best->id)) {
			best = r;
			best_score = ts->providers[i].score;
		}
	}
	return best;
}

static int
busy_cmp(const void *a, const void *b)
{
	const struct tagset *x = *(struct tagset *const *)a;
	const struct tagset *y = *(struct tagset *const *)b;
	uint64_t ix = TAILQ_FIRST(&x->waiting)->id;
	uint64_t iy = TAILQ_FIRST(&y->waiting)->id;

	return ix < iy ? -1 : ix > iy;
}

/*
 * Serves waiting tickets, oldest head first across tag sets, one ticket
 * per tag set per round until a round assigns nothing.
 */
static void
sched_assign(struct sched *s)
{
	struct tagset **v, *ts;
	struct resource *r;
	size_t n = 0, i;
	bool progress;

	TAILQ_FOREACH(ts, &s->busy, busy_entry)
		n++;
	if (n == 0)
		return;
	v = xcalloc(n, sizeof(*v));
	n = 0;
	TAILQ_FOREACH(ts, &s->busy, busy_entry)
		v[n++] = ts;
	qsort(v, n, sizeof(*v), busy_cmp);
	do {
		progress = false;
		for (i = 0; i < n; i++) {
			if (v[i] == NULL || v[i]->nwaiting == 0)
				continue;
			if ((r = best_free(s, v[i])) == NULL) {
				v[i] = NULL;
				continue;
			}
			ticket_assign(s, TAILQ_FIRST(&v[i]->waiting), r);
			progress = true;
		}
	} while (progress);
	free(v);
}

/* Starts what the pool's preallocation rule allows right now. */
static void
sched_preallocate(struct sched *s, struct pool *p)
{
	const struct conf_pool *c = p->conf;
	int64_t wait_ms;

	if (c == NULL)
		return;
	while ((int64_t)pool_alive(p) < c->max &&
	    (int64_t)(p->counts[LIST_FREE] + p->counts[LIST_STARTING]) <
		c->max_prealloc &&
	    (int64_t)p->counts[LIST_STARTING] < c->max_starting) {
		if (c->start_delay > 0 && p->last_start_ms != 0) {
			wait_ms = p->last_start_ms + c->start_delay * 1000 -
			    now_mono_ms();
			if (wait_ms > 0) {
				ev_timer_stop(s->loop, &p->delay_timer);
				ev_timer_set(&p->delay_timer,
				    (double)wait_ms / 1000., 0.);
				ev_timer_start(s->loop, &p->delay_timer);
				return;
			}
		}
		resource_start(s, p);
	}
}

void
sched_run(struct sched *s)
{
	struct pool *p;

	if (!s->dirty)
		return;
	s->dirty = false;
	sched_assign(s);
	TAILQ_FOREACH(p, &s->pools, entry)
		sched_preallocate(s, p);
}
