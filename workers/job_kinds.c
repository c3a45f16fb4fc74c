/*
 * job_kinds -- the kinds of job resbus-worker runs: Allocate, Delete,
 * Livecheck, Release and List.
 *
 * A delivery from a pool queue is dispatched on its type to the handler
 * of its kind, checked (a resource, a pool served here, sane counter
 * names) and run, or held on the waiting list when the concurrency is
 * used up.  When its commands have run, its result is packed as the
 * result message of its kind and published as an event.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "worker_priv.h"

struct delivery_ctx {
	const struct bus_delivery *d;
	enum job_kind kind;
};

/* Splits cmd_list's output into names: whitespace-separated words. */
static char **
list_names(const char *out, size_t len, size_t *n)
{
	char **names = NULL;
	size_t i = 0, start;

	*n = 0;
	while (i < len) {
		while (i < len && (out[i] == ' ' || out[i] == '\t' ||
				      out[i] == '\n' || out[i] == '\r'))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !(out[i] == ' ' || out[i] == '\t' ||
				      out[i] == '\n' || out[i] == '\r'))
			i++;
		names = xrealloc(names, (*n + 1) * sizeof(*names));
		names[(*n)++] = xstrndup(out + start, i - start);
	}
	return names;
}

/* Packs an AllocateResult: the data cmd_new printed goes with it. */
static void
pack_allocate(struct job *job, const struct runner_result *res, bool ok)
{
	Resbus__V1__AllocateResult r = RESBUS__V1__ALLOCATE_RESULT__INIT;

	/* protobuf-c wants mutable pointers; they are only read. */
	r.resource = (Resbus__V1__ResourceRef *)job->ref;
	r.ok = ok && !job->cancelled;
	r.exit_status = res->exit_status;
	r.data.data = (uint8_t *)res->out;
	r.data.len = res->out != NULL ? res->outlen : 0;
	r.worker = (char *)job->w->cfg.name;
	r.duration_ms = (uint32_t)res->duration_ms;
	r.timed_out = res->timed_out;
	job->result = msg_pack(&r.base, &job->resultlen);
	job->result_type = msg_type(&r.base);
}

/* The fields a DeleteResult, LivecheckResult and ReleaseResult share. */
#define PACK_OUTCOME(job, res, ok, r)                                          \
	do {                                                                   \
		(r).resource = (Resbus__V1__ResourceRef *)(job)->ref;          \
		(r).ok = (ok);                                                 \
		(r).exit_status = (res)->exit_status;                          \
		(r).worker = (char *)(job)->w->cfg.name;                       \
		(r).duration_ms = (uint32_t)(res)->duration_ms;                \
		(job)->result = msg_pack(&(r).base, &(job)->resultlen);        \
		(job)->result_type = msg_type(&(r).base);                      \
	} while (0)

/* Packs a DeleteResult, LivecheckResult or ReleaseResult. */
static void
pack_outcome(struct job *job, const struct runner_result *res, bool ok)
{
	Resbus__V1__DeleteResult del = RESBUS__V1__DELETE_RESULT__INIT;
	Resbus__V1__LivecheckResult chk = RESBUS__V1__LIVECHECK_RESULT__INIT;
	Resbus__V1__ReleaseResult rel = RESBUS__V1__RELEASE_RESULT__INIT;

	if (job->kind == JOB_DELETE)
		PACK_OUTCOME(job, res, ok, del);
	else if (job->kind == JOB_LIVECHECK)
		PACK_OUTCOME(job, res, ok, chk);
	else
		PACK_OUTCOME(job, res, ok, rel);
}

#undef PACK_OUTCOME

/* Packs a ListResult: the names cmd_list printed, even if it failed. */
static void
pack_list(struct job *job, const struct runner_result *res, bool ok)
{
	Resbus__V1__ListResult r = RESBUS__V1__LIST_RESULT__INIT;
	const Resbus__V1__List *l = (const Resbus__V1__List *)job->msg;
	char **names;
	size_t nnames, i;

	/* resalloc uses the names even when cmd_list failed. */
	names =
	    list_names(res->out, res->out != NULL ? res->outlen : 0, &nnames);
	r.pool = (char *)job->pool_name;
	r.sweep_id = l->sweep_id;
	r.ok = ok;
	r.names = names;
	r.n_names = nnames;
	r.worker = (char *)job->w->cfg.name;
	job->result = msg_pack(&r.base, &job->resultlen);
	job->result_type = msg_type(&r.base);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
}

/* Packs and publishes the result of JOB; moves it to CONFIRMING. */
int
job_result(struct job *job, const struct runner_result *res)
{
	static const char *const events[] = {
	    [JOB_ALLOCATE] = "allocated",
	    [JOB_DELETE] = "deleted",
	    [JOB_LIVECHECK] = "checked",
	    [JOB_RELEASE] = "released",
	    [JOB_LIST] = "listed",
	};
	bool ok = res->exit_status == 0 && !res->timed_out;

	switch (job->kind) {
	case JOB_ALLOCATE:
		pack_allocate(job, res, ok);
		break;
	case JOB_DELETE:
	case JOB_LIVECHECK:
	case JOB_RELEASE:
		pack_outcome(job, res, ok);
		break;
	case JOB_LIST:
		pack_list(job, res, ok);
		break;
	}
	job->result_key =
	    xasprintf("resource.%s.%s", job->pool_name, events[job->kind]);
	return job_publish(job);
}

static bool
counter_name_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 64)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/*
 * A job of C's kind for its delivery, with its own copy of the message,
 * its first step, its resource and its pool's name (NULL if a message
 * that needs a resource has none).
 */
static struct job *
job_new(struct worker *w, const struct delivery_ctx *c)
{
	const struct bus_delivery *d = c->d;
	struct job *job;

	job = xcalloc(1, sizeof(*job));
	job->w = w;
	job->kind = c->kind;
	job->delivery_tag = d->delivery_tag;
	/* The dispatched message is borrowed; the job keeps its own. */
	job->msg = msg_unpack(d->type, d->body, d->len);
	if (job->msg == NULL)
		fatalx("%s decoded once but not twice", d->type);
	switch (c->kind) {
	case JOB_ALLOCATE:
		job->ref = ((Resbus__V1__Allocate *)job->msg)->resource;
		job->step = d->redelivered ? STEP_CLEANUP : STEP_NEW;
		break;
	case JOB_DELETE:
		job->ref = ((Resbus__V1__Delete *)job->msg)->resource;
		job->step = STEP_DELETE;
		break;
	case JOB_LIVECHECK:
		job->ref = ((Resbus__V1__Livecheck *)job->msg)->resource;
		job->step = STEP_LIVECHECK;
		break;
	case JOB_RELEASE:
		job->ref = ((Resbus__V1__Release *)job->msg)->resource;
		job->step = STEP_RELEASE;
		break;
	case JOB_LIST:
		job->pool_name = ((Resbus__V1__List *)job->msg)->pool;
		job->step = STEP_LIST;
		break;
	}
	if (job->ref != NULL) {
		job->pool_name = job->ref->pool;
		job->resource_id = job->ref->resource_id;
	}
	return job;
}

/*
 * Whether JOB may run here: a resource where its kind needs one, a pool
 * this worker serves, sane counter names.  Logs why not.
 */
static bool
job_acceptable(struct worker *w, struct job *job, const struct bus_delivery *d)
{
	size_t i;

	if (job->kind != JOB_LIST && job->ref == NULL) {
		log_warnx("delivery %llu: %s without a resource, rejecting",
		    (unsigned long long)d->delivery_tag, d->type);
		return false;
	}
	if (job->pool_name == NULL || job->pool_name[0] == '\0' ||
	    !worker_serves(w, job->pool_name) ||
	    (job->pool = conf_pools_find(w->gen->pools, job->pool_name)) ==
		NULL) {
		log_warnx("delivery %llu: %s for resource %llu of pool '%s', "
			  "which this worker does not serve, rejecting",
		    (unsigned long long)d->delivery_tag, d->type,
		    (unsigned long long)job->resource_id,
		    job->pool_name != NULL ? job->pool_name : "");
		return false;
	}
	for (i = 0; job->ref != NULL && i < job->ref->n_counters; i++)
		if (!counter_name_valid(job->ref->counters[i]->name)) {
			log_warnx("delivery %llu: resource %llu has a bad "
				  "counter name, rejecting",
			    (unsigned long long)d->delivery_tag,
			    (unsigned long long)job->resource_id);
			return false;
		}
	return true;
}

/* A decoded job; validated here, then run. */
static void
job_accept(struct worker *w, const struct delivery_ctx *c)
{
	const struct bus_delivery *d = c->d;
	struct job *job;

	job = job_new(w, c);
	if (job->pool_name != NULL &&
	    names_have(w->dropped, w->ndropped, job->pool_name) &&
	    !worker_serves(w, job->pool_name)) {
		/* Sent before the consumer was cancelled: another worker's. */
		log_info("resource %llu: pool %s is no longer served here, "
			 "its job goes back to the queue",
		    (unsigned long long)job->resource_id, job->pool_name);
		job_free(job);
		job_reject(w, d->delivery_tag, true);
		return;
	}
	if (!job_acceptable(w, job, d)) {
		job_free(job);
		job_reject(w, d->delivery_tag, false);
		return;
	}
	job->gen = w->gen;
	job->gen->jobs++;
	if (w->njobs[JOB_RUNNING] >= w->cfg.concurrency) {
		log_debug("resource %llu: %zu commands run, job waits",
		    (unsigned long long)job->resource_id,
		    w->njobs[JOB_RUNNING]);
		job_move(job, JOB_WAITING);
		return;
	}
	job_run(job);
}

#define JOB_HANDLER(fn, k)                                                     \
	static void fn(const ProtobufCMessage *m, void *ctx, void *arg)        \
	{                                                                      \
		struct delivery_ctx *c = arg;                                  \
                                                                               \
		c->kind = (k);                                                 \
		job_accept(ctx, c);                                            \
	}
JOB_HANDLER(on_allocate, JOB_ALLOCATE)
JOB_HANDLER(on_delete, JOB_DELETE)
JOB_HANDLER(on_livecheck, JOB_LIVECHECK)
JOB_HANDLER(on_release, JOB_RELEASE)
JOB_HANDLER(on_list, JOB_LIST)

static const struct msg_handler worker_handlers[] = {
    {&resbus__v1__allocate__descriptor, on_allocate},
    {&resbus__v1__delete__descriptor, on_delete},
    {&resbus__v1__livecheck__descriptor, on_livecheck},
    {&resbus__v1__release__descriptor, on_release},
    {&resbus__v1__list__descriptor, on_list},
    {NULL, NULL},
};

int
job_dispatch(struct worker *w, const struct bus_delivery *d)
{
	struct delivery_ctx c;

	memset(&c, 0, sizeof(c));
	c.d = d;
	return msg_dispatch(worker_handlers, d->type, d->body, d->len, w, &c);
}
