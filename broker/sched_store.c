/*
 * sched_store -- the scheduler's rows in the store: written through, and
 * read back at start.
 *
 * The only piece of the scheduler that knows the store.  Every change
 * sched.c makes to a ticket, a resource, a lane's queue or a meta value is
 * written here, inside the loop iteration's transaction (sched_begin
 * opens it on the first write).  A store that fails leaves memory ahead
 * of the disk; the broker then exits without acknowledging anything, and
 * the next start rebuilds from the last commit.  sched_load is that
 * rebuild: meta values, lanes, resources, then tickets attached to them,
 * and the outbox handed to the broker to publish again.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ev.h>

#include "log.h"
#include "sched.h"
#include "sched_priv.h"
#include "store.h"
#include "util.h"

/* ---- write-through ------------------------------------------------------ */

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

void
sched_begin(struct sched *s)
{
	if (store_begin(s->store) == -1)
		sched_store_failed(s, "begin");
}

void
sched_put_ticket(struct sched *s, const struct ticket *t)
{
	struct store_ticket row = {
	    .id = t->id,
	    .idem_key = t->idem_key,
	    .tagset = t->ts->key,
	    .sandbox = t->sandbox,
	    .state = ticket_state_names[t->state],
	    .resource_id = t->resource_id,
	    .created_ms = t->created_ms,
	    .owner = t->owner,
	    .labels = t->labels,
	    .class_ = t->class_,
	    .lease_s = (int32_t)t->lease_s,
	    .deadline_ms = t->deadline_ms,
	    .closed_reason = t->closed_reason,
	    .reply_to = t->reply_to,
	    .delegate = t->delegate,
	};

	sched_begin(s);
	if (store_put_ticket(s->store, &row) == -1)
		sched_store_failed(s, "ticket");
}

/* "name=value,..." of R's named counters; caller frees (NULL if none). */
static char *
resource_counters_text(const struct resource *r)
{
	char *text = NULL, *next;
	size_t i;

	for (i = 0; i < r->ncounters; i++) {
		next = xasprintf("%s%s%s=%u", text ? text : "", text ? "," : "",
		    r->counters[i].name, r->counters[i].value);
		free(text);
		text = next;
	}
	return text;
}

void
sched_put_resource(struct sched *s, const struct resource *r)
{
	char *counters = resource_counters_text(r);
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
	    .sandbox = r->sandbox,
	    .sandboxed_since_ms = r->sandboxed_since_ms,
	    .released_at_ms = r->released_at_ms,
	    .releases = r->releases,
	    .check_failed = r->check_failed,
	    .counters = counters,
	};

	sched_begin(s);
	if (store_put_resource(s->store, &row) == -1)
		sched_store_failed(s, "resource");
	free(counters);
}

void
sched_put_meta(struct sched *s, const char *key, int64_t value)
{
	sched_begin(s);
	if (store_put_meta(s->store, key, value) == -1)
		sched_store_failed(s, "meta");
}
void
sched_del_tagset(struct sched *s, const char *key)
{
	sched_begin(s);
	if (store_del_tagset(s->store, key) == -1)
		sched_store_failed(s, "tagset");
}

/* ---- loading ------------------------------------------------------------ */

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
	const char *dot;
	struct pool *p;
	char name[256];

	if (strcmp(key, "last_ticket_id") == 0) {
		s->last_ticket_id = (uint64_t)value;
		return;
	}
	if (strcmp(key, "last_resource_id") == 0) {
		s->last_resource_id = (uint64_t)value;
		return;
	}
	/* pool.<name>.<what>; pool names may contain dots themselves. */
	if (strncmp(key, "pool.", 5) != 0 ||
	    (dot = strrchr(key, '.')) == key + 4 ||
	    (size_t)(dot - key - 5) >= sizeof(name))
		return;
	memcpy(name, key + 5, (size_t)(dot - key - 5));
	name[dot - key - 5] = '\0';
	if ((p = sched_pool_find(s, name)) == NULL)
		return;
	if (strcmp(dot, ".last_start_ms") == 0)
		/* Carry the wall-clock start over to the monotonic clock. */
		p->last_start_ms = now_mono_ms() - (now_wall_ms() - value);
	else if (strcmp(dot, ".paused") == 0)
		p->paused = value != 0;
}

static void
load_tagset(void *arg, const char *key)
{
	sched_tagset_get(((struct sched_loader *)arg)->s, key, NULL)
	    ->persisted = true;
}

/* Reads back resource_counters_text(). */
static void
resource_parse_counters(struct resource *r, const char *text)
{
	char *copy = xstrdup(text), *item, *save = NULL, *eq;

	for (item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(item, '=')) == NULL)
			continue;
		*eq = '\0';
		r->counters = xrealloc(
		    r->counters, (r->ncounters + 1) * sizeof(*r->counters));
		r->counters[r->ncounters].name = xstrdup(item);
		r->counters[r->ncounters].value =
		    (uint32_t)strtoul(eq + 1, NULL, 10);
		r->ncounters++;
	}
	free(copy);
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
	if ((p = sched_pool_find(s, row->pool)) == NULL) {
		log_warnx("resource %llu: pool %s is no longer configured",
		    (unsigned long long)row->id, row->pool);
		p = sched_pool_new(s, row->pool);
	}
	r = xcalloc(1, sizeof(*r));
	r->id = row->id;
	r->pool = p;
	r->name = xstrdup(row->name);
	r->state = (enum resource_state)state;
	r->id_in_pool = row->id_in_pool;
	if (row->data != NULL) {
		r->data = xmemdup(row->data, row->data_len);
		r->data_len = row->data_len;
	}
	r->created_ms = row->created_ms;
	r->sandbox = row->sandbox ? xstrdup(row->sandbox) : NULL;
	r->sandboxed_since_ms = row->sandboxed_since_ms;
	r->released_at_ms = row->released_at_ms;
	r->releases = row->releases;
	r->check_failed = row->check_failed;
	if (row->counters != NULL)
		resource_parse_counters(r, row->counters);
	ev_timer_init(&r->live_timer, sched_resource_livecheck_due, 0., 0.);
	ev_timer_init(&r->reuse_timer, sched_resource_reuse_over, 0., 0.);
	ev_timer_init(&r->start_timer, sched_resource_start_late, 0., 0.);
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
	struct resource rk = {.id = row->resource_id};
	struct ticket *t;
	int state;

	state = state_index(ticket_state_names, 4, row->state);
	if (state == -1 || state == TICKET_CLOSED)
		return;
	t = xcalloc(1, sizeof(*t));
	t->id = row->id;
	t->idem_key = xstrdup(row->idem_key ? row->idem_key : "");
	t->sandbox = row->sandbox ? xstrdup(row->sandbox) : NULL;
	t->state = (enum ticket_state)state;
	t->resource_id = row->resource_id;
	t->created_ms = row->created_ms;
	t->owner = sched_dup_or_null(row->owner);
	t->delegate = sched_dup_or_null(row->delegate);
	t->labels = sched_dup_or_null(row->labels);
	t->class_ = sched_dup_or_null(row->class_);
	t->reply_to = sched_dup_or_null(row->reply_to);
	sched_ticket_bind(s, t, sched_tagset_get(s, row->tagset, t->class_));
	t->lease_s = row->lease_s > 0 ? (uint32_t)row->lease_s : 0;
	t->deadline_ms = row->deadline_ms;
	sched_ticket_arm(s, t);
	if (t->state == TICKET_READY) {
		t->res = RB_FIND(resource_ids, &s->resources, &rk);
		if (t->res != NULL && t->res->state == RES_UP) {
			t->res->ticket = t;
			t->res_name = xstrdup(t->res->name);
			t->res_pool = xstrdup(t->res->pool->name);
		} else {
			t->res = NULL;
		}
	}
	RB_INSERT(ticket_ids, &s->tickets, t);
	if (t->idem_key[0] != '\0')
		RB_INSERT(ticket_idems, &s->idems, t);
	if (t->id > s->last_ticket_id)
		s->last_ticket_id = t->id;
	if (t->state == TICKET_OPEN)
		sched_waiting_add(s, t);
	else if (t->state == TICKET_READY)
		s->nready++;
	else if (t->state == TICKET_FAILED)
		s->nfailed++;
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
	struct sched_loader sl = {s, outbox, arg};
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

	if (store_load(s->store, &l) == -1)
		return -1;
	RB_FOREACH(r, resource_ids, &s->resources)
	{
		sched_resource_link(r);
		sched_resource_arm_timers(s, r);
		nres++;
	}
	sched_adopt_starts(s);
	/* READY tickets hold their resources, and starts run for tickets:
	 * both count in limits and caps as they did before the restart. */
	sched_usage_recount(s);
	s->dirty = true;
	log_info(
	    "loaded %zu open tickets and %zu live resources", s->nopen, nres);
	return 0;
}

int
sched_tagset_add(struct sched *s, const char *key)
{
	struct tagset *ts = sched_tagset_get(s, key, NULL);

	if (ts->persisted)
		return 0;
	sched_begin(s);
	if (store_put_tagset(s->store, key) == -1)
		sched_store_failed(s, "tagset");
	ts->persisted = true;
	return 1;
}
