/*
 * sched_wire -- the scheduler's messages: jobs out to the workers,
 * ticket updates out to owners and the event exchange, and the workers'
 * results in.
 *
 * Converts resources and tickets to their protobuf messages
 * (proto/resbus.proto) and hands them to the broker's emit hook, which
 * publishes them through the outbox; and applies job results (allocated,
 * deleted, checked, released, listed) to the resources they name, after
 * checking that the result is about the resource it names and in the
 * state it expects: stale or forged results are logged and ignored.
 * State moves through sched.c's functions.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <protobuf-c/protobuf-c.h>

#include "log.h"
#include "msg.h"
#include "resbus.pb-c.h"
#include "sched.h"
#include "sched_priv.h"
#include "topo.h"
#include "util.h"

#define JOB_MAX_COUNTERS 32

static Resbus__V1__ResourceRef *
resource_ref(const struct resource *r, Resbus__V1__ResourceRef *ref,
    Resbus__V1__NamedCounter *cv, Resbus__V1__NamedCounter **cp, size_t max)
{
	size_t i;

	resbus__v1__resource_ref__init(ref);
	ref->resource_id = r->id;
	ref->pool = r->pool->name;
	ref->name = r->name;
	ref->id_in_pool = r->id_in_pool;
	ref->data.data = r->data;
	ref->data.len = r->data_len;
	for (i = 0; i < r->ncounters && i < max; i++) {
		resbus__v1__named_counter__init(&cv[i]);
		cv[i].name = r->counters[i].name;
		cv[i].value = r->counters[i].value;
		cp[i] = &cv[i];
	}
	ref->n_counters = i;
	ref->counters = cp;
	return ref;
}

/*
 * Sends job KIND about R to its pool's queue.  KIND is the descriptor of
 * a message whose only field is `resource` (Allocate, Delete, Livecheck,
 * Release) or the Cancel broadcast.
 */
void
sched_resource_send(struct sched *s, const struct resource *r,
    const ProtobufCMessageDescriptor *kind)
{
	Resbus__V1__NamedCounter cv[JOB_MAX_COUNTERS];
	Resbus__V1__NamedCounter *cp[JOB_MAX_COUNTERS];
	Resbus__V1__ResourceRef ref;
	union {
		Resbus__V1__Allocate allocate;
		Resbus__V1__Delete delete_;
		Resbus__V1__Livecheck livecheck;
		Resbus__V1__Release release;
		Resbus__V1__Cancel cancel;
	} job;
	char *q, *x = NULL;

	/* All five messages are { base; ResourceRef *resource; }. */
	protobuf_c_message_init(kind, &job);
	job.allocate.resource = resource_ref(r, &ref, cv, cp, JOB_MAX_COUNTERS);
	if (kind == &resbus__v1__cancel__descriptor) {
		x = topo_event_exchange(s->prefix);
		q = xasprintf("cancel.%s", r->pool->name);
	} else {
		x = topo_job_exchange(s->prefix);
		q = xstrdup(r->pool->name);
	}
	s->ops.emit(s->ops.ctx, x, q, &job.allocate.base);
	free(q);
	free(x);
}

/*
 * Tells the reply queue of the request that made T, if it named one,
 * that T is READY or FAILED, with its resource's ID, name and data: the
 * queue is its owner's.  Through the outbox, like the events, so that it
 * survives a restart; RabbitMQ drops it if the queue is gone by then, and
 * the state is in the store and on the event exchange anyway.
 */
static void
ticket_reply(struct sched *s, const struct ticket *t)
{
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	struct sched_ticket_view v;

	if (t->reply_to == NULL ||
	    (t->state != TICKET_READY && t->state != TICKET_FAILED) ||
	    sched_ticket_view(s, t->id, &v) == 0)
		return;
	u.ticket_id = v.id;
	u.state = v.state;
	u.assigned = v.assigned;
	u.output.data = (uint8_t *)v.output;
	u.output.len = v.output_len;
	if (v.owner != NULL)
		u.owner = (char *)v.owner;
	u.resource_id = v.resource_id;
	if (v.resource_name != NULL)
		u.resource_name = (char *)v.resource_name;
	if (v.resource_pool != NULL)
		u.resource_pool = (char *)v.resource_pool;
	s->ops.emit(s->ops.ctx, "", t->reply_to, &u.base);
}

void
sched_ticket_emit(struct sched *s, const struct ticket *t)
{
	Resbus__V1__TicketUpdate u = RESBUS__V1__TICKET_UPDATE__INIT;
	char key[64], *x;

	u.ticket_id = t->id;
	u.state = (Resbus__V1__TicketState)(t->state + 1);
	if (t->owner != NULL)
		u.owner = t->owner;
	if (t->closed_reason != NULL)
		u.closed_reason = (char *)t->closed_reason;
	/*
	 * Anyone may bind to resbus.event: an event says what happened, not
	 * the resource's data, which its owner asks resbusd for.
	 */
	u.assigned = t->res != NULL || t->resource_id != 0;
	snprintf(key, sizeof(key), "ticket.%llu.%s", (unsigned long long)t->id,
	    ticket_state_words[t->state]);
	x = topo_event_exchange(s->prefix);
	s->ops.emit(s->ops.ctx, x, key, &u.base);
	free(x);
	ticket_reply(s, t);
	sched_observe_ticket(s, t, ticket_state_words[t->state]);
}

void
sched_ticket_reply(struct sched *s, uint64_t id)
{
	struct ticket *t = sched_ticket_find(s, id);

	if (t != NULL)
		ticket_reply(s, t);
}

/*
 * Whether REF names R: the same ID, pool and name.  A result naming
 * another pool or name is not about R, whatever its ID says.
 */
static bool
result_matches(const struct resource *r, const Resbus__V1__ResourceRef *ref,
    const char *what)
{
	if (strcmp(ref->pool, r->pool->name) == 0 &&
	    strcmp(ref->name, r->name) == 0)
		return true;
	log_warnx("resource %llu %s of pool %s: %s result for \"%s\" of pool "
		  "\"%s\" ignored",
	    (unsigned long long)r->id, r->name, r->pool->name, what, ref->name,
	    ref->pool);
	return false;
}

/* The live resource a job result is about, if it is in STATE. */
static struct resource *
result_resource(struct sched *s, const Resbus__V1__ResourceRef *ref,
    enum resource_state state, const char *what)
{
	struct resource k, *r;

	if (ref == NULL)
		return NULL;
	k.id = ref->resource_id;
	r = RB_FIND(resource_ids, &s->resources, &k);
	if (r == NULL || r->state != state) {
		log_debug("resource %llu: stale %s result ignored",
		    (unsigned long long)k.id, what);
		return NULL;
	}
	if (!result_matches(r, ref, what))
		return NULL;
	return r;
}

/*
 * Sends pool P a Delete of REF, a resource resbus does not hold (a
 * cmd_list sweep found it, or a start ran after its resource ended).
 */
static void
delete_unknown(
    struct sched *s, const struct pool *p, const Resbus__V1__ResourceRef *ref)
{
	Resbus__V1__Delete job = RESBUS__V1__DELETE__INIT;
	char *q;

	/* protobuf-c wants a mutable pointer; it is only read. */
	job.resource = (Resbus__V1__ResourceRef *)ref;
	q = topo_job_exchange(s->prefix);
	s->ops.emit(s->ops.ctx, q, p->name, &job.base);
	free(q);
}

/*
 * A start that succeeded for resource REF, which has ended: its Allocate
 * was sent again after a restart (the outbox sends at least once) and
 * ran after the resource was deleted.  What it made is deleted, by name,
 * as a cmd_list sweep deletes what resbus does not know -- unless a live
 * resource has that name.
 */
static void
allocated_after_end(struct sched *s, const Resbus__V1__ResourceRef *ref)
{
	struct resource *r;
	struct pool *p;

	if (ref->name == NULL || ref->name[0] == '\0' ||
	    (p = sched_pool_find(s, ref->pool)) == NULL || p->conf == NULL) {
		log_debug("resource %llu: stale allocation result ignored",
		    (unsigned long long)ref->resource_id);
		return;
	}
	RB_FOREACH(r, resource_ids, &s->resources)
	if (strcmp(r->name, ref->name) == 0) {
		log_debug("resource %llu: stale allocation result ignored",
		    (unsigned long long)ref->resource_id);
		return;
	}
	log_warnx("resource %llu: started again after it ended (%s of pool "
		  "%s); deleting what that start made",
	    (unsigned long long)ref->resource_id, ref->name, p->name);
	delete_unknown(s, p, ref);
}

void
sched_on_allocated(struct sched *s, const Resbus__V1__AllocateResult *res)
{
	struct resource *r = NULL;
	struct resource k;
	size_t i;

	if (res->resource != NULL) {
		k.id = res->resource->resource_id;
		r = RB_FIND(resource_ids, &s->resources, &k);
		if (r != NULL && r->state == RES_DELETE_REQUESTED &&
		    result_matches(r, res->resource, "allocation")) {
			/* Cancelled while starting: delete what it made. */
			sched_resource_send_delete(s, r);
			s->dirty = true;
			return;
		}
	}
	if (res->resource != NULL && res->ok && r == NULL &&
	    res->resource->resource_id <= s->last_resource_id) {
		allocated_after_end(s, res->resource);
		return;
	}
	if ((r = result_resource(
		 s, res->resource, RES_STARTING, "allocation")) == NULL)
		return;
	s->dirty = true;
	if (!res->ok) {
		r->pool->starts_failed++;
		r->pool->fail_streak++;
		if (r->for_ticket != NULL)
			r->for_ticket->avoid = r->pool;
	} else {
		r->pool->starts_ok++;
		r->pool->start_ms_sum += res->duration_ms;
		for (i = 0; i < SCHED_START_BUCKETS; i++)
			if (res->duration_ms <= sched_start_bucket_s[i] * 1000.)
				r->pool->start_le[i]++;
		r->pool->fail_streak = 0;
	}
	if (!res->ok) {
		rlog_warnx(r,
		    "cmd_new failed (exit %d%s) on "
		    "%s",
		    res->exit_status, res->timed_out ? ", timed out" : "",
		    res->worker);
		sched_resource_send_delete(s, r);
		return;
	}
	free(r->data);
	/* (A cmd_new that printed nothing: no bytes, and a NULL pointer.) */
	r->data = xmemdup(res->data.data, res->data.len);
	r->data_len = res->data.len;
	sched_resource_move(s, r, RES_UP);
	rlog_info(r, "UP after %u ms on %s", res->duration_ms, res->worker);
}

void
sched_on_deleted(struct sched *s, const Resbus__V1__DeleteResult *res)
{
	struct resource *r;

	if ((r = result_resource(s, res->resource, RES_DELETING, "delete")) ==
	    NULL)
		return;
	if (!res->ok)
		rlog_warnx(r,
		    "cmd_delete exited %d; marked "
		    "ENDED, cmd_list finds it if it leaked",
		    res->exit_status);
	rlog_info(r, "ENDED");
	sched_resource_move(s, r, RES_ENDED);
	s->dirty = true;
}

void
sched_on_checked(struct sched *s, const Resbus__V1__LivecheckResult *res)
{
	struct resource *r;
	int64_t attempts;

	if ((r = result_resource(s, res->resource, RES_UP, "livecheck")) ==
	    NULL)
		return;
	r->check_inflight = false;
	if (res->ok) {
		if (r->check_failed > 0)
			rlog_info(r, "livecheck passes again");
		r->check_failed = 0;
	} else {
		r->check_failed++;
		rlog_warnx(
		    r, "livecheck failed (%d in a row)", r->check_failed);
	}
	attempts = r->pool->conf ? r->pool->conf->livecheck_attempts : 3;
	if (r->check_failed >= (attempts > 0 ? attempts : 1)) {
		sched_resource_kill(s, r, "livecheck failed, resource is dead");
	} else {
		sched_resource_relist(s, r);
	}
	s->dirty = true;
}

void
sched_on_released(struct sched *s, const Resbus__V1__ReleaseResult *res)
{
	struct resource *r;

	if ((r = result_resource(s, res->resource, RES_RELEASING, "release")) ==
	    NULL)
		return;
	s->dirty = true;
	if (!res->ok) {
		rlog_warnx(r,
		    "cmd_release exited %d; not "
		    "reused",
		    res->exit_status);
		sched_resource_send_delete(s, r);
		return;
	}
	if (!sched_resource_reusable(r)) {
		sched_resource_send_delete(s, r);
		return;
	}
	sched_resource_move(s, r, RES_UP);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
sched_on_listed(struct sched *s, const Resbus__V1__ListResult *res)
{
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;
	struct resource *r;
	struct pool *p;
	const char **known;
	size_t n = 0, i;

	if ((p = sched_pool_find(s, res->pool)) == NULL || p->conf == NULL) {
		log_warnx("cmd_list result of unknown pool \"%s\" ignored",
		    res->pool);
		return;
	}
	/* Only the answer to the latest sweep sent, and only once: an old
	 * answer may miss resources started since, and a forged one is
	 * unlikely to guess the ID. */
	if (!p->list_pending || res->sweep_id != p->list_sweep) {
		log_warnx("pool %s: cmd_list result of sweep %llu ignored: %s "
			  "%llu",
		    p->name, (unsigned long long)res->sweep_id,
		    p->list_pending
			? "the latest sweep sent is"
			: "no sweep is awaited; the latest sent was",
		    (unsigned long long)p->list_sweep);
		return;
	}
	p->list_pending = false;
	/* Names of every live resource of every pool, as resalloc does. */
	RB_FOREACH(r, resource_ids, &s->resources)
	n++;
	known = xcalloc(n + 1, sizeof(*known));
	n = 0;
	RB_FOREACH(r, resource_ids, &s->resources)
	known[n++] = r->name;
	qsort(known, n, sizeof(*known), name_cmp);
	for (i = 0; i < res->n_names; i++) {
		if (n > 0 && bsearch(&res->names[i], known, n, sizeof(*known),
				 name_cmp) != NULL)
			continue;
		log_warnx("pool %s: cmd_list reports %s, which resbus does "
			  "not know; deleting it",
		    p->name, res->names[i]);
		ref.pool = p->name;
		ref.name = res->names[i];
		ref.id_in_pool = -1;
		delete_unknown(s, p, &ref);
	}
	free(known);
}

void
sched_pool_list_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pool *p = container_of(w, struct pool, list_timer);
	Resbus__V1__List job = RESBUS__V1__LIST__INIT;
	char *q;

	if (p->conf == NULL || p->conf->cmd_list == NULL)
		return;
	job.pool = p->name;
	job.sweep_id = ++p->list_sweep;
	p->list_pending = true;
	q = topo_job_exchange(p->sched->prefix);
	p->sched->ops.emit(p->sched->ops.ctx, q, p->name, &job.base);
	free(q);
	log_debug("pool %s: cmd_list sweep %llu", p->name,
	    (unsigned long long)job.sweep_id);
}
