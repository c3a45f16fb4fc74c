/*
 * worker -- the allocation jobs of resbus-worker.
 *
 * A job is one delivery from a pool queue.  It is RUNNING while its
 * command runs, then CONFIRMING while its result waits for RabbitMQ's
 * publisher confirm; the delivery is acked only then, so a worker that
 * dies at any point leaves the job in the queue (or its result on the
 * bus), never neither.  A result RabbitMQ refuses (nack: a full queue,
 * an internal error) is RETRYING: published again after a growing delay,
 * without running the command again -- a second cmd_new would start a
 * second machine.  The job's state is the list it sits on.
 *
 * How many jobs run at once is the channel's prefetch: RabbitMQ does not
 * deliver more than that per consumer, and a job stays unacked until its
 * result is confirmed.  A worker serving several pools has one consumer
 * per pool queue, and RabbitMQ counts a (non-global) prefetch per
 * consumer, so up to one prefetch per pool may arrive; jobs beyond the
 * concurrency wait, unacked, on the WAITING list until a command ends.
 *
 * A redelivered Allocate may have half-started a resource on a worker
 * that died, so it runs cmd_delete first and then cmd_new.
 *
 * Jobs never carry commands.  The command comes from the worker's own
 * pools.yaml; what the job carries (resource id, name, counters, data)
 * reaches the command only through its environment.
 *
 * SIGHUP reads the pools anew: pools no longer served lose their
 * consumer (what was delivered but not started goes back to the queue),
 * new ones get one, and new jobs take their commands from the new file;
 * a job already running keeps the pool it started with.  Which pools a
 * job refers to is a generation of the configuration, counted by its
 * jobs and freed with the last.  A file with errors changes nothing.
 *
 * When its RabbitMQ node goes away the worker gives back what it was
 * running and reconnects in-process.  RabbitMQ requeues every job of the
 * lost connection, unacknowledged as they all are until their result is
 * confirmed, so finishing a command and publishing its result could only
 * race the redelivered job: another worker (or this one) may already run
 * it again.  The worker therefore stops the running commands' process
 * groups (SIGTERM, SIGKILL after RUNNER_KILL_GRACE_S) and forgets their
 * jobs; the redelivered Allocate cleans up with cmd_delete first, as
 * after a crash.  A result published but not yet confirmed may reach
 * resbusd as well as the redelivered job's: resbusd takes the first and
 * finds its resource no longer starting for the second.  It then
 * connects to the next node that answers (after 0.2 s, doubling up to
 * WORKER_RECONNECT_MAX_S), declares and consumes as at start, and goes
 * on.  A queue found with the other type (queue_type) ends the worker
 * with status 78: a restart would meet it again.
 *
 * On SIGTERM/SIGINT the worker takes no new work: what arrives is held
 * unacked (RabbitMQ requeues it when the connection closes, and no
 * reject/redeliver loop spins meanwhile), running commands get
 * WORKER_STOP_GRACE_S to finish and publish, then their process groups
 * get SIGTERM and the worker exits.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "conf.h"
#include "log.h"
#include "msg.h"
#include "topo.h"
#include "util.h"
#include "runner.h"
#include "worker.h"

enum job_kind {
	JOB_ALLOCATE,
	JOB_DELETE,
	JOB_LIVECHECK,
	JOB_RELEASE,
	JOB_LIST,
};

enum job_state {
	JOB_WAITING, /* delivered, over the concurrency: not started yet */
	JOB_RUNNING,
	JOB_CONFIRMING,
	JOB_RETRYING,
};

enum job_step {
	STEP_CLEANUP, /* cmd_delete before a redelivered cmd_new */
	STEP_NEW,
	STEP_DELETE,
	STEP_LIVECHECK,
	STEP_RELEASE,
	STEP_LIST,
	STEP_CANCEL_DELETE, /* cmd_delete after a cancelled cmd_new */
};

/* How each command runs: the resalloc hook contract. */
static const struct step_info {
	const char *name;     /* in logs */
	const char *suffix;   /* log file <logdir>/hooks/<id>_<suffix> */
	bool with_data;	      /* RESALLOC_RESOURCE_DATA */
	size_t capture_bytes; /* stdout kept for the result */
} steps[] = {
    /* The half-started resource has no data yet. */
    [STEP_CLEANUP] = {"cmd_delete (redelivered)", "terminate", false, 0},
    [STEP_NEW] = {"cmd_new", "alloc", false, RUNNER_CAPTURE_BYTES},
    [STEP_DELETE] = {"cmd_delete", "terminate", true, 0},
    [STEP_LIVECHECK] = {"cmd_livecheck", "watch", true, 0},
    [STEP_RELEASE] = {"cmd_release", "release", true, 0},
    [STEP_LIST] = {"cmd_list", "list", false, RUNNER_LIST_CAPTURE_BYTES},
    /* Its data is what the cancelled cmd_new printed. */
    [STEP_CANCEL_DELETE] = {"cmd_delete (cancelled)", "terminate", true, 0},
};

/* One reading of pools.yaml, kept while a job uses one of its pools. */
struct pools_gen {
	const struct conf_pools *pools;
	struct conf_pools *owned;    /* NULL: the caller's, from the start */
	size_t jobs;                 /* jobs that refer to it */
	bool retired;                /* a reload replaced it */
};

struct job {
	TAILQ_ENTRY(job) entry;
	struct worker *w;
	enum job_kind kind;
	enum job_state state;
	enum job_step step;
	uint64_t delivery_tag;
	ProtobufCMessage *msg;		    /* the job message, owned */
	const Resbus__V1__ResourceRef *ref; /* inside msg; NULL for List */
	const char *pool_name;		    /* inside msg */
	uint64_t resource_id;		    /* 0 for List */
	const struct conf_pool *pool;	    /* in gen */
	struct pools_gen *gen;
	struct runner *runner;
	int64_t start_ms;

	void *result; /* packed result, for a re-publish */
	size_t resultlen;
	const char *result_type;
	char *result_key;
	uint64_t seq;
	int attempts;
	ev_timer retry_w;

	bool orphan;		      /* its connection was lost: forget it */
	bool cancelled;		      /* a Cancel for this Allocate came */
	struct runner_result new_res; /* the cancelled cmd_new's */
	char *new_out;		      /* its captured stdout */
};

TAILQ_HEAD(job_list, job);

struct worker {
	struct ev_loop *loop;
	struct bus *bus;
	struct worker_config cfg;
	char *event_exchange;
	struct pools_gen *gen;	/* the pools new jobs take */
	char **served;		/* pool names, owned */
	size_t nserved;
	char **dropped;		/* pools a reload stopped serving */
	size_t ndropped;
	char *cancel_queue;

	struct job_list waiting;
	struct job_list running;
	struct job_list confirming;
	struct job_list retrying;
	size_t nwaiting;
	size_t nrunning;
	size_t nconfirming;
	size_t nretrying;

	ev_io bus_w;
	ev_prepare pending_w;
	ev_timer heartbeat_w;
	ev_timer grace_w;
	ev_signal term_w;
	ev_signal int_w;
	ev_signal hup_w;
	ev_timer reconnect_w;
	double reconnect_s;	/* the next delay, doubling */
	size_t node;		/* index of the last node connected to */
	int64_t lost_ms;	/* when the connection was lost */

	bool stopping;
	bool lost;
	int exit_status;
	size_t nheld; /* deliveries held while stopping */

	/* Resources cancelled while their Allocate was not running here. */
	uint64_t cancelled_ids[WORKER_CANCEL_MEMORY];
	size_t cancelled_next;
};

struct delivery_ctx {
	const struct bus_delivery *d;
	enum job_kind kind;
};

static void job_step_start(struct job *job);
static void job_run(struct job *job);

static const char *
step_name(enum job_step step)
{
	return steps[step].name;
}

static void job_free(struct job *job);

/*
 * The connection failed.  Without a URL to reconnect to, or while
 * stopping: stop everything, exit non-zero.  Otherwise the running
 * commands are stopped (their jobs go back to the queue with the
 * connection) and reconnect_cb, from a fresh stack, drops the rest and
 * connects again.
 */
static void
worker_lost(struct worker *w)
{
	struct job *job;

	if (w->lost)
		return;
	w->lost = true;
	w->lost_ms = now_mono_ms();
	ev_io_stop(w->loop, &w->bus_w);
	if (w->cfg.url == NULL || w->stopping || bus_conflict(w->bus)) {
		log_warnx("connection lost: %s", bus_error(w->bus));
		TAILQ_FOREACH(job, &w->running, entry)
		{
			if (job->runner != NULL)
				runner_terminate(job->runner);
		}
		w->exit_status = bus_conflict(w->bus) ? BUS_EXIT_CONFIG : 1;
		ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	log_warnx("connection lost: %s; giving back %zu running job(s) and "
		  "reconnecting",
	    bus_error(w->bus), w->nrunning);
	TAILQ_FOREACH(job, &w->running, entry)
	{
		job->orphan = true;
		if (job->runner != NULL)
			runner_cancel(job->runner);
	}
	w->reconnect_s = WORKER_RECONNECT_MIN_S;
	ev_timer_set(&w->reconnect_w, 0., 0.);
	ev_timer_start(w->loop, &w->reconnect_w);
}

/* Forgets the jobs of the lost connection that are not running. */
static void
worker_drop_jobs(struct worker *w)
{
	struct job *job;

	while ((job = TAILQ_FIRST(&w->waiting)) != NULL) {
		TAILQ_REMOVE(&w->waiting, job, entry);
		w->nwaiting--;
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&w->confirming)) != NULL) {
		TAILQ_REMOVE(&w->confirming, job, entry);
		w->nconfirming--;
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&w->retrying)) != NULL) {
		TAILQ_REMOVE(&w->retrying, job, entry);
		w->nretrying--;
		ev_timer_stop(w->loop, &job->retry_w);
		job_free(job);
	}
	w->nheld = 0;
}

static void
worker_maybe_done(struct worker *w)
{
	if (w->stopping && w->nrunning == 0 && w->nconfirming == 0 &&
	    w->nretrying == 0) {
		log_info("all jobs done, exiting; %zu job(s) not started go "
			 "back to their queue",
		    w->nheld + w->nwaiting);
		ev_break(w->loop, EVBREAK_ALL);
	}
}

static struct pools_gen *
gen_new(const struct conf_pools *pools, struct conf_pools *owned)
{
	struct pools_gen *g = xcalloc(1, sizeof(*g));

	g->pools = pools;
	g->owned = owned;
	return g;
}

static void
gen_free(struct pools_gen *g)
{
	conf_pools_free(g->owned);
	free(g);
}

/* A job lets go of G; a replaced generation goes with its last job. */
static void
gen_release(struct pools_gen *g)
{
	if (--g->jobs == 0 && g->retired)
		gen_free(g);
}

static bool
names_have(char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static void
job_free(struct job *job)
{
	if (job->gen != NULL)
		gen_release(job->gen);
	msg_free(job->msg);
	free(job->new_out);
	free(job->result);
	free(job->result_key);
	free(job);
}

static void
job_reject(struct worker *w, uint64_t tag, bool requeue)
{
	if (bus_reject(w->bus, tag, requeue) == -1)
		worker_lost(w);
}

static int
job_publish(struct job *job)
{
	struct worker *w = job->w;
	struct bus_props props;

	memset(&props, 0, sizeof(props));
	props.type = job->result_type;
	props.persistent = true;
	/* The broker believes results only from its workers' users. */
	props.user_id = bus_user(w->bus);
	job->attempts++;
	if (bus_publish(w->bus, w->event_exchange, job->result_key, &props,
		job->result, job->resultlen, &job->seq) == -1) {
		worker_lost(w);
		return -1;
	}
	TAILQ_INSERT_TAIL(&w->confirming, job, entry);
	w->nconfirming++;
	job->state = JOB_CONFIRMING;
	return 0;
}

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

/* Packs and publishes the result of JOB; moves it to CONFIRMING. */
static void
job_result(struct job *job, const struct runner_result *res)
{
	struct worker *w = job->w;
	/* protobuf-c wants mutable pointers; they are only read. */
	Resbus__V1__ResourceRef *ref = (Resbus__V1__ResourceRef *)job->ref;
	char *worker = (char *)w->cfg.name;
	bool ok = res->exit_status == 0 && !res->timed_out;
	uint32_t duration_ms = (uint32_t)res->duration_ms;
	const char *event = NULL;
	char **names;
	size_t nnames, i;

	switch (job->kind) {
	case JOB_ALLOCATE: {
		Resbus__V1__AllocateResult r =
		    RESBUS__V1__ALLOCATE_RESULT__INIT;

		r.resource = ref;
		r.ok = ok && !job->cancelled;
		r.exit_status = res->exit_status;
		r.data.data = (uint8_t *)res->out;
		r.data.len = res->out != NULL ? res->outlen : 0;
		r.worker = worker;
		r.duration_ms = duration_ms;
		r.timed_out = res->timed_out;
		job->result = msg_pack(&r.base, &job->resultlen);
		job->result_type = msg_type(&r.base);
		event = "allocated";
		break;
	}
	case JOB_DELETE: {
		Resbus__V1__DeleteResult r = RESBUS__V1__DELETE_RESULT__INIT;

		r.resource = ref;
		r.ok = ok;
		r.exit_status = res->exit_status;
		r.worker = worker;
		r.duration_ms = duration_ms;
		job->result = msg_pack(&r.base, &job->resultlen);
		job->result_type = msg_type(&r.base);
		event = "deleted";
		break;
	}
	case JOB_LIVECHECK: {
		Resbus__V1__LivecheckResult r =
		    RESBUS__V1__LIVECHECK_RESULT__INIT;

		r.resource = ref;
		r.ok = ok;
		r.exit_status = res->exit_status;
		r.worker = worker;
		r.duration_ms = duration_ms;
		job->result = msg_pack(&r.base, &job->resultlen);
		job->result_type = msg_type(&r.base);
		event = "checked";
		break;
	}
	case JOB_RELEASE: {
		Resbus__V1__ReleaseResult r = RESBUS__V1__RELEASE_RESULT__INIT;

		r.resource = ref;
		r.ok = ok;
		r.exit_status = res->exit_status;
		r.worker = worker;
		r.duration_ms = duration_ms;
		job->result = msg_pack(&r.base, &job->resultlen);
		job->result_type = msg_type(&r.base);
		event = "released";
		break;
	}
	case JOB_LIST: {
		Resbus__V1__ListResult r = RESBUS__V1__LIST_RESULT__INIT;
		const Resbus__V1__List *l = (const Resbus__V1__List *)job->msg;

		/* resalloc uses the names even when cmd_list failed. */
		names = list_names(
		    res->out, res->out != NULL ? res->outlen : 0, &nnames);
		r.pool = (char *)job->pool_name;
		r.sweep_id = l->sweep_id;
		r.ok = ok;
		r.names = names;
		r.n_names = nnames;
		r.worker = worker;
		job->result = msg_pack(&r.base, &job->resultlen);
		job->result_type = msg_type(&r.base);
		for (i = 0; i < nnames; i++)
			free(names[i]);
		free(names);
		event = "listed";
		break;
	}
	}
	job->result_key = xasprintf("resource.%s.%s", job->pool_name, event);
	(void)job_publish(job);
}

/* Starts waiting jobs while there is room under the concurrency. */
static void
worker_run_waiting(struct worker *w)
{
	struct job *job;

	while (!w->lost && !w->stopping && w->nrunning < w->cfg.concurrency &&
	    (job = TAILQ_FIRST(&w->waiting)) != NULL) {
		TAILQ_REMOVE(&w->waiting, job, entry);
		w->nwaiting--;
		job_run(job);
	}
}

/* JOB is over: publish RES as its result and wait for the confirm. */
static void
job_finish(struct job *job, const struct runner_result *res)
{
	struct worker *w = job->w;

	TAILQ_REMOVE(&w->running, job, entry);
	w->nrunning--;
	if (w->lost) {
		job_free(job);
		return;
	}
	job_result(job, res);
	if (job->state != JOB_CONFIRMING)
		job_free(job);
	worker_run_waiting(w);
}

/* An Allocate cancelled before its cmd_new ran: nothing was made. */
static void
job_finish_cancelled(struct job *job)
{
	struct runner_result none;

	memset(&none, 0, sizeof(none));
	none.exit_status = 128 + SIGTERM;
	job_finish(job, &none);
}

static void
job_command_done(struct job *job, const struct runner_result *res)
{
	struct worker *w = job->w;

	job->runner = NULL;
	if (job->orphan) {
		/* Its job went back to the queue with the lost connection. */
		log_info("job given back: resource %llu pool %s %s ended "
			 "(exit %d)",
		    (unsigned long long)job->resource_id, job->pool_name,
		    step_name(job->step), res->exit_status);
		TAILQ_REMOVE(&w->running, job, entry);
		w->nrunning--;
		job_free(job);
		worker_maybe_done(w);
		return;
	}
	log_info("job end: resource %llu pool %s %s exit %d%s in %lld ms",
	    (unsigned long long)job->resource_id, job->pool_name,
	    step_name(job->step), res->exit_status,
	    res->timed_out ? " (timed out)" : "", (long long)res->duration_ms);

	if (job->step == STEP_CLEANUP && !w->lost) {
		if (job->cancelled) {
			job_finish_cancelled(job);
			return;
		}
		/* Whatever the clean-up did, the start comes next. */
		job->step = STEP_NEW;
		job_step_start(job);
		return;
	}
	if (job->step == STEP_NEW && job->cancelled && !w->lost) {
		/* Delete what the cancelled cmd_new made, then report it. */
		job->new_res = *res;
		job->new_res.out = NULL;
		if (res->out != NULL && res->outlen > 0) {
			job->new_out = xmalloc(res->outlen);
			memcpy(job->new_out, res->out, res->outlen);
			job->new_res.out = job->new_out;
		}
		job->step = STEP_CANCEL_DELETE;
		job_step_start(job);
		return;
	}
	job_finish(job, job->step == STEP_CANCEL_DELETE ? &job->new_res : res);
}

static void
runner_done(struct runner *r, const struct runner_result *res, void *arg)
{
	job_command_done(arg, res);
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

/* The pool's command for STEP and its timeout; *cmd NULL if unset. */
static void
step_command(const struct job *job, const char **cmd, int64_t *timeout_s)
{
	const struct conf_pool *pool = job->pool;

	switch (job->step) {
	case STEP_NEW:
		*cmd = pool->cmd_new;
		*timeout_s = pool->cmd_new_timeout;
		break;
	case STEP_CLEANUP:
	case STEP_DELETE:
	case STEP_CANCEL_DELETE:
		*cmd = pool->cmd_delete;
		*timeout_s = pool->cmd_delete_timeout;
		break;
	case STEP_LIVECHECK:
		*cmd = pool->cmd_livecheck;
		*timeout_s = pool->cmd_livecheck_timeout;
		break;
	case STEP_RELEASE:
		*cmd = pool->cmd_release;
		*timeout_s = pool->cmd_release_timeout;
		break;
	case STEP_LIST:
		*cmd = pool->cmd_list;
		*timeout_s = pool->cmd_list_timeout;
		break;
	}
}

/* The hook environment of JOB's resource; caller frees. */
static char **
job_env(const struct job *job, size_t *nenv)
{
	const Resbus__V1__ResourceRef *ref = job->ref;
	const char **cnames;
	uint32_t *cvalues;
	char **env;
	size_t i;
	bool with_data = steps[job->step].with_data;

	/* cmd_list is about no resource: resalloc's literal "None"s. */
	if (ref == NULL)
		return runner_env_resalloc(0, "None", job->pool_name, -1, NULL,
		    0, NULL, NULL, 0, nenv);
	cnames = xcalloc(ref->n_counters + 1, sizeof(*cnames));
	cvalues = xcalloc(ref->n_counters + 1, sizeof(*cvalues));
	for (i = 0; i < ref->n_counters; i++) {
		cnames[i] = ref->counters[i]->name;
		cvalues[i] = ref->counters[i]->value;
	}
	if (job->step == STEP_CANCEL_DELETE)
		env = runner_env_resalloc(ref->resource_id, ref->name,
		    ref->pool, ref->id_in_pool, job->new_res.out,
		    job->new_res.out != NULL ? job->new_res.outlen : 0, cnames,
		    cvalues, ref->n_counters, nenv);
	else
		env =
		    runner_env_resalloc(ref->resource_id, ref->name, ref->pool,
			ref->id_in_pool, with_data ? ref->data.data : NULL,
			with_data ? ref->data.len : 0, cnames, cvalues,
			ref->n_counters, nenv);
	free(cnames);
	free(cvalues);
	return env;
}

static void
job_step_start(struct job *job)
{
	struct worker *w = job->w;
	struct runner_spec spec;
	struct runner_result fail;
	const char *cmd = NULL;
	char **env, *log_path;
	size_t nenv;
	int64_t timeout_s = 0;

	step_command(job, &cmd, &timeout_s);
	memset(&fail, 0, sizeof(fail));
	if (cmd == NULL) {
		/*
		 * No cmd_livecheck or cmd_release: nothing to check or to
		 * clean, as in resalloc.  No cmd_list: nothing is known.
		 */
		log_info("resource %llu pool %s: no %s configured",
		    (unsigned long long)job->resource_id, job->pool_name,
		    step_name(job->step));
		fail.exit_status = job->step == STEP_LIST ? 127 : 0;
		job_command_done(job, &fail);
		return;
	}

	env = job_env(job, &nenv);
	log_path = xasprintf("%s/hooks/%06llu_%s", w->cfg.logdir,
	    (unsigned long long)job->resource_id, steps[job->step].suffix);
	memset(&spec, 0, sizeof(spec));
	spec.cmd = cmd;
	spec.log_path = log_path;
	spec.log_max_bytes = job->pool->hook_log_max_bytes;
	spec.env = env;
	spec.nenv = nenv;
	spec.timeout_s = timeout_s;
	spec.capture_max_bytes = steps[job->step].capture_bytes;
	spec.capture_whole_lines = job->step == STEP_LIST;

	log_info("job start: resource %llu pool %s %s",
	    (unsigned long long)job->resource_id, job->pool_name,
	    step_name(job->step));
	job->start_ms = now_mono_ms();
	job->runner = runner_start(w->loop, &spec, runner_done, job);
	if (job->runner == NULL) {
		log_warn("resource %llu pool %s: cannot run %s (log %s)",
		    (unsigned long long)job->resource_id, job->pool_name,
		    step_name(job->step), log_path);
		fail.exit_status = 127;
		runner_env_free(env, nenv);
		free(log_path);
		job_command_done(job, &fail);
		return;
	}
	log_debug("resource %llu: %s is process group %d",
	    (unsigned long long)job->resource_id, step_name(job->step),
	    runner_pid(job->runner));
	runner_env_free(env, nenv);
	free(log_path);
}

static bool
worker_serves(const struct worker *w, const char *pool)
{
	return names_have(w->served, w->nserved, pool);
}

static bool
cancel_remembered(const struct worker *w, uint64_t id)
{
	size_t i;

	for (i = 0; i < WORKER_CANCEL_MEMORY; i++)
		if (id != 0 && w->cancelled_ids[i] == id)
			return true;
	return false;
}

/*
 * A Cancel on cancel.<pool>: every worker of the pool gets it.  The one
 * running the resource's cmd_new stops it (its group gets SIGTERM, then
 * SIGKILL) and deletes what it made; a clean-up delete already running
 * finishes first.  The others remember the id, in case the Allocate
 * still waits in the queue and comes to them.
 */
/*
 * Whether D comes from the broker: RabbitMQ checks the user_id property
 * against the login, and only the users of broker_users (else the
 * worker's own login) may have the worker run anything.  Anyone allowed
 * to publish to the default exchange can put a message on a pool queue,
 * so the queue alone proves nothing.
 */
static bool
worker_from_broker(const struct worker *w, const struct bus_delivery *d)
{
	size_t i;

	if (d->user_id == NULL || d->user_id[0] == '\0')
		return false;
	if (w->cfg.nbroker_users == 0)
		return strcmp(d->user_id, bus_user(w->bus)) == 0;
	for (i = 0; i < w->cfg.nbroker_users; i++)
		if (strcmp(d->user_id, w->cfg.broker_users[i]) == 0)
			return true;
	return false;
}

/*
 * Keeps a copy of D in the dead-letter exchange, with REASON, where the
 * operator finds what was refused (resbusd's headers).  Best effort: the
 * job itself is rejected either way.
 */
static void
worker_dead_letter(struct worker *w, const struct bus_delivery *d,
    const char *reason)
{
	struct bus_header h[4] = {
		{ "x-resbus-reason", BUS_HDR_STRING, reason, 0 },
		{ "x-resbus-queue", BUS_HDR_STRING, d->queue ? d->queue : "",
		    0 },
		{ "x-resbus-source", BUS_HDR_STRING, d->routing_key ?
		    d->routing_key : "", 0 },
		{ "x-resbus-user", BUS_HDR_STRING, d->user_id ? d->user_id :
		    "", 0 },
	};
	struct bus_props props;
	char *x = topo_dead_exchange(w->cfg.prefix);

	memset(&props, 0, sizeof(props));
	props.type = d->type;
	props.persistent = true;
	props.headers = h;
	props.nheaders = 4;
	if (bus_publish(w->bus, x, "", &props, d->body,
	    d->len < MSG_MAX_BYTES ? d->len : MSG_MAX_BYTES, NULL) == -1)
		log_warnx("cannot dead-letter delivery %llu: %s",
		    (unsigned long long)d->delivery_tag, bus_error(w->bus));
	free(x);
}

static void
cancel_cb(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct worker *w = arg;
	Resbus__V1__Cancel *c;
	struct job *job;
	uint64_t id;

	if (!worker_from_broker(w, d)) {
		log_warnx("%s on %s from user \"%.64s\", not the broker's: "
		    "ignored", d->type ? d->type : "(none)", d->routing_key,
		    d->user_id ? d->user_id : "");
		return;
	}
	c = NULL;
	if (d->type != NULL && strcmp(d->type, "resbus.v1.Cancel") == 0)
		c = (Resbus__V1__Cancel *)msg_unpack(d->type, d->body, d->len);
	if (c == NULL || c->resource == NULL || c->resource->pool == NULL) {
		log_warnx(
		    "%s on %s: not a Cancel, ignored",
		    d->type != NULL ? d->type : "(none)", d->routing_key);
		if (c != NULL)
			msg_free(&c->base);
		return;
	}
	id = c->resource->resource_id;
	TAILQ_FOREACH(job, &w->running, entry)
	{
		if (job->kind != JOB_ALLOCATE || job->resource_id != id ||
		    strcmp(job->pool_name, c->resource->pool) != 0)
			continue;
		if (job->cancelled)
			break;
		job->cancelled = true;
		log_info("resource %llu pool %s: cancelled during %s",
		    (unsigned long long)id, job->pool_name,
		    step_name(job->step));
		if (job->step == STEP_NEW && job->runner != NULL)
			runner_cancel(job->runner);
		break;
	}
	if (job == NULL) {
		log_debug(
		    "resource %llu: cancel remembered", (unsigned long long)id);
		w->cancelled_ids[w->cancelled_next] = id;
		w->cancelled_next =
		    (w->cancelled_next + 1) % WORKER_CANCEL_MEMORY;
	}
	msg_free(&c->base);
}

/* A decoded job; validated here, then run. */
static void
job_accept(struct worker *w, const struct delivery_ctx *c)
{
	const struct bus_delivery *d = c->d;
	const Resbus__V1__ResourceRef *ref = NULL;
	struct job *job;
	size_t i;

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
		ref = ((Resbus__V1__Allocate *)job->msg)->resource;
		job->step = d->redelivered ? STEP_CLEANUP : STEP_NEW;
		break;
	case JOB_DELETE:
		ref = ((Resbus__V1__Delete *)job->msg)->resource;
		job->step = STEP_DELETE;
		break;
	case JOB_LIVECHECK:
		ref = ((Resbus__V1__Livecheck *)job->msg)->resource;
		job->step = STEP_LIVECHECK;
		break;
	case JOB_RELEASE:
		ref = ((Resbus__V1__Release *)job->msg)->resource;
		job->step = STEP_RELEASE;
		break;
	case JOB_LIST:
		job->pool_name = ((Resbus__V1__List *)job->msg)->pool;
		job->step = STEP_LIST;
		break;
	}
	if (c->kind != JOB_LIST) {
		if (ref == NULL) {
			log_warnx("delivery %llu: %s without a resource, "
				  "rejecting",
			    (unsigned long long)d->delivery_tag, d->type);
			goto reject;
		}
		job->pool_name = ref->pool;
		job->resource_id = ref->resource_id;
	}
	job->ref = ref;

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
	if (job->pool_name == NULL || job->pool_name[0] == '\0' ||
	    !worker_serves(w, job->pool_name) ||
	    (job->pool = conf_pools_find(w->gen->pools, job->pool_name)) ==
		NULL) {
		log_warnx("delivery %llu: %s for resource %llu of pool '%s', "
			  "which this worker does not serve, rejecting",
		    (unsigned long long)d->delivery_tag, d->type,
		    (unsigned long long)job->resource_id,
		    job->pool_name != NULL ? job->pool_name : "");
		goto reject;
	}
	job->gen = w->gen;
	job->gen->jobs++;
	for (i = 0; ref != NULL && i < ref->n_counters; i++) {
		if (!counter_name_valid(ref->counters[i]->name)) {
			log_warnx("delivery %llu: resource %llu has a bad "
				  "counter name, rejecting",
			    (unsigned long long)d->delivery_tag,
			    (unsigned long long)job->resource_id);
			goto reject;
		}
	}

	if (w->nrunning >= w->cfg.concurrency) {
		log_debug("resource %llu: %zu commands run, job waits",
		    (unsigned long long)job->resource_id, w->nrunning);
		job->state = JOB_WAITING;
		TAILQ_INSERT_TAIL(&w->waiting, job, entry);
		w->nwaiting++;
		return;
	}
	job_run(job);
	return;

reject:
	job_free(job);
	job_reject(w, d->delivery_tag, false);
}

/* Starts JOB's first command (or finishes it if it was cancelled). */
static void
job_run(struct job *job)
{
	struct worker *w = job->w;

	TAILQ_INSERT_TAIL(&w->running, job, entry);
	w->nrunning++;
	job->state = JOB_RUNNING;
	if (job->kind == JOB_ALLOCATE &&
	    cancel_remembered(w, job->resource_id)) {
		log_info("resource %llu: cancelled before it started",
		    (unsigned long long)job->resource_id);
		job->cancelled = true;
		if (job->step == STEP_NEW) {
			job_finish_cancelled(job);
			return;
		}
	}
	if (job->step == STEP_CLEANUP)
		log_info("resource %llu: Allocate redelivered, it may have "
			 "half-started; deleting it first",
		    (unsigned long long)job->resource_id);
	job_step_start(job);
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

static void
deliver_cb(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct worker *w = arg;
	struct delivery_ctx c;

	if (w->lost)
		return;
	if (w->stopping) {
		/* Held unacked; requeued by RabbitMQ when we disconnect. */
		w->nheld++;
		log_debug("delivery %llu held: stopping",
		    (unsigned long long)d->delivery_tag);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.d = d;
	if (!worker_from_broker(w, d)) {
		log_warnx("delivery %llu on %s: %s from user \"%.64s\", not "
			  "the broker's; rejecting it without running anything",
		    (unsigned long long)d->delivery_tag,
		    d->routing_key != NULL ? d->routing_key : "?",
		    d->type != NULL ? d->type : "(none)",
		    d->user_id != NULL ? d->user_id : "");
		worker_dead_letter(w, d, "a job not from the broker's users");
		job_reject(w, d->delivery_tag, false);
		return;
	}
	if (d->type == NULL || msg_dispatch(worker_handlers, d->type, d->body,
				   d->len, w, &c) == -1) {
		log_warnx("delivery %llu on %s: message of type %s not "
			  "understood, rejecting",
		    (unsigned long long)d->delivery_tag,
		    d->routing_key != NULL ? d->routing_key : "?",
		    d->type != NULL ? d->type : "(none)");
		job_reject(w, d->delivery_tag, false);
	}
}

static void
retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct job *job = container_of(t, struct job, retry_w);
	struct worker *w = job->w;

	TAILQ_REMOVE(&w->retrying, job, entry);
	w->nretrying--;
	if (job_publish(job) == -1)
		job_free(job);
}

/* RabbitMQ nacked JOB's result: publish it again after a while. */
static void
job_retry_later(struct job *job)
{
	struct worker *w = job->w;
	int64_t delay_s = WORKER_REPUBLISH_MAX_S;

	if (job->attempts <= 6)
		delay_s = (int64_t)1 << (job->attempts - 1);
	if (delay_s > WORKER_REPUBLISH_MAX_S)
		delay_s = WORKER_REPUBLISH_MAX_S;
	log_warnx("resource %llu: RabbitMQ refused its result (attempt %d), "
		  "publishing it again in %lld s",
	    (unsigned long long)job->resource_id, job->attempts,
	    (long long)delay_s);
	job->state = JOB_RETRYING;
	TAILQ_INSERT_TAIL(&w->retrying, job, entry);
	w->nretrying++;
	ev_timer_init(&job->retry_w, retry_cb, (ev_tstamp)delay_s, 0.);
	ev_timer_start(w->loop, &job->retry_w);
}

static void
confirm_cb(struct bus *bus, uint64_t seq, bool multiple, bool ack, void *arg)
{
	struct worker *w = arg;
	struct job *job, *tmp;

	TAILQ_FOREACH_SAFE(job, &w->confirming, entry, tmp)
	{
		if (w->lost)
			return;
		/* Confirming in publish order: nothing past SEQ is confirmed. */
		if (job->seq > seq)
			break;
		if (!multiple && job->seq != seq)
			continue;
		TAILQ_REMOVE(&w->confirming, job, entry);
		w->nconfirming--;
		if (ack) {
			if (bus_ack(w->bus, job->delivery_tag) == -1) {
				job_free(job);
				worker_lost(w);
				return;
			}
			job_free(job);
		} else
			job_retry_later(job);
	}
	worker_maybe_done(w);
}

static void
worker_poll(struct worker *w)
{
	if (w->lost)
		return;
	if (bus_poll(w->bus, 0) == -1)
		worker_lost(w);
}

static void
bus_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	worker_poll(container_of(io, struct worker, bus_w));
}

static void
pending_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = container_of(p, struct worker, pending_w);
	int i;

	for (i = 0; i < 64 && !w->lost && bus_pending(w->bus); i++)
		worker_poll(w);
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	worker_poll(container_of(t, struct worker, heartbeat_w));
}

static void
worker_terminate_all(struct worker *w)
{
	struct job *job;

	TAILQ_FOREACH(job, &w->running, entry)
	{
		if (job->runner != NULL)
			runner_terminate(job->runner);
	}
}

static void
grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, grace_w);

	log_warnx("%zu command(s) still running after %d s, terminating "
		  "them; their jobs go back to the queue",
	    w->nrunning, WORKER_STOP_GRACE_S);
	worker_terminate_all(w);
	ev_break(loop, EVBREAK_ALL);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	if (w->stopping) {
		log_warnx("signal %d again: terminating running commands now",
		    s->signum);
		worker_terminate_all(w);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	w->stopping = true;
	log_info("signal %d: taking no new jobs; waiting up to %d s for %zu "
		 "running and %zu unconfirmed",
	    s->signum, WORKER_STOP_GRACE_S, w->nrunning,
	    w->nconfirming + w->nretrying);
	ev_timer_set(&w->grace_w, WORKER_STOP_GRACE_S, 0.);
	ev_timer_start(loop, &w->grace_w);
	worker_maybe_done(w);
}

struct worker *
worker_new(
    struct ev_loop *loop, struct bus *bus, const struct worker_config *cfg)
{
	struct worker *w;

	size_t i;

	w = xcalloc(1, sizeof(*w));
	w->loop = loop;
	w->bus = bus;
	w->cfg = *cfg;
	w->event_exchange = topo_event_exchange(cfg->prefix);
	w->gen = gen_new(cfg->pools, NULL);
	w->served = xcalloc(cfg->nserved + 1, sizeof(*w->served));
	for (i = 0; i < cfg->nserved; i++)
		w->served[i] = xstrdup(cfg->served[i]);
	w->nserved = cfg->nserved;
	TAILQ_INIT(&w->waiting);
	TAILQ_INIT(&w->running);
	TAILQ_INIT(&w->confirming);
	TAILQ_INIT(&w->retrying);
	return w;
}

static int
mkdir_hooks(const char *logdir, char *err, size_t errlen)
{
	char *path;

	if (mkdir(logdir, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", logdir, strerror(errno));
		return -1;
	}
	path = xasprintf("%s/hooks", logdir);
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

/*
 * A private queue for Cancels; worker_serve_pool() binds it to
 * cancel.<pool> of each pool served.
 */
static int
worker_cancel_queue(struct worker *w, char *err, size_t errlen)
{
	if (bus_queue_declare(w->bus, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE,
		&w->cancel_queue, NULL, NULL) == -1 ||
	    bus_consume(w->bus, w->cancel_queue, true, cancel_cb, w) == -1) {
		snprintf(err, errlen, "cancel queue: %s", bus_error(w->bus));
		return -1;
	}
	return 0;
}

/* Binds or unbinds (BIND false) the Cancels of POOL to the cancel queue. */
static int
worker_cancel_binding(struct worker *w, const char *pool, bool bind)
{
	char *key = xasprintf("cancel.%s", pool);
	int rc;

	if (bind)
		rc = bus_queue_bind(w->bus, w->cancel_queue, w->event_exchange,
		    key);
	else
		rc = bus_queue_unbind(w->bus, w->cancel_queue,
		    w->event_exchange, key);
	free(key);
	return rc;
}

/* Takes POOL's Cancels and jobs.  0, or -1 with a message in ERR. */
static int
worker_serve_pool(struct worker *w, const char *pool, char *err,
    size_t errlen)
{
	char *queue = topo_pool_queue(w->cfg.prefix, pool);

	if (worker_cancel_binding(w, pool, true) == -1 ||
	    topo_declare_pool(w->bus, w->cfg.prefix, pool, w->cfg.queue_flags) ==
		-1 ||
	    bus_consume(w->bus, queue, false, deliver_cb, w) == -1) {
		snprintf(err, errlen, "%s: %s", queue, bus_error(w->bus));
		free(queue);
		return -1;
	}
	log_info("serving pool %s from queue %s", pool, queue);
	free(queue);
	return 0;
}

/*
 * Stops taking POOL's jobs: its consumer is cancelled, and its jobs not
 * started yet go back to the queue for another worker.  Running ones
 * finish.  0, or -1 when the bus failed.
 */
static int
worker_drop_pool(struct worker *w, const char *pool)
{
	char *queue = topo_pool_queue(w->cfg.prefix, pool);
	struct job *job, *next;
	int rc;

	rc = bus_cancel(w->bus, queue);
	free(queue);
	if (rc == -1 || worker_cancel_binding(w, pool, false) == -1)
		return -1;
	for (job = TAILQ_FIRST(&w->waiting); job != NULL; job = next) {
		next = TAILQ_NEXT(job, entry);
		if (strcmp(job->pool_name, pool) != 0)
			continue;
		TAILQ_REMOVE(&w->waiting, job, entry);
		w->nwaiting--;
		job_reject(w, job->delivery_tag, true);
		job_free(job);
	}
	if (!names_have(w->dropped, w->ndropped, pool)) {
		w->dropped = xrealloc(w->dropped,
		    (w->ndropped + 1) * sizeof(*w->dropped));
		w->dropped[w->ndropped++] = xstrdup(pool);
	}
	log_info("no longer serving pool %s", pool);
	return 0;
}

/* SIGHUP: the pools as the configuration says now. */
static void
worker_reload(struct worker *w)
{
	struct conf_pools *pools;
	struct pools_gen *old;
	char **served, **before, err[1024];
	size_t nserved, nbefore, i;

	if (w->cfg.reload == NULL) {
		log_info("SIGHUP: this worker's pools cannot be read again; "
			 "restart it to apply changes");
		return;
	}
	if (w->stopping || w->lost)
		return;
	if (w->cfg.reload(w->cfg.reload_arg, &pools, &served, &nserved, err,
		sizeof(err)) == -1) {
		log_warnx("SIGHUP: %s; serving the pools as before", err);
		return;
	}
	/* New jobs take the new pools; running ones keep theirs. */
	old = w->gen;
	w->gen = gen_new(pools, pools);
	old->retired = true;
	if (old->jobs == 0)
		gen_free(old);
	before = w->served;
	nbefore = w->nserved;
	w->served = served;
	w->nserved = nserved;

	for (i = 0; i < nbefore; i++)
		if (!worker_serves(w, before[i]) &&
		    worker_drop_pool(w, before[i]) == -1) {
			worker_lost(w);
			goto out;
		}
	for (i = 0; i < nserved; i++) {
		if (names_have(before, nbefore, served[i]))
			continue;
		if (worker_serve_pool(w, served[i], err, sizeof(err)) == -1) {
			worker_lost(w);
			goto out;
		}
	}
	log_info("SIGHUP: pools read again; serving %zu pool(s)", nserved);
out:
	strv_free(before, nbefore);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	worker_reload(s->data);
}

/* Declares, sets the channel up and consumes on w->bus: at start and
 * after reconnecting.  0, or -1 with a message in ERR. */
static int
worker_bus_setup(struct worker *w, char *err, size_t errlen)
{
	size_t i;

	if (topo_ensure_core(w->bus, w->cfg.prefix, w->cfg.queue_flags) ==
		-1 ||
	    bus_confirm_select(w->bus, confirm_cb, w) == -1 ||
	    bus_qos(w->bus, w->cfg.concurrency) == -1) {
		snprintf(err, errlen, "%s", bus_error(w->bus));
		return -1;
	}
	/* Cancels first, so that none for a job taken meanwhile is lost. */
	if (worker_cancel_queue(w, err, errlen) == -1)
		return -1;
	for (i = 0; i < w->nserved; i++)
		if (worker_serve_pool(w, w->served[i], err, errlen) == -1)
			return -1;
	return 0;
}

static void
reconnect_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, reconnect_w);
	char err[1024];

	if (w->stopping) {
		log_info("stopping while disconnected; %zu command(s) still "
			 "stopping",
		    w->nrunning);
		worker_terminate_all(w);
		w->exit_status = 1;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	worker_drop_jobs(w);
	free(w->cancel_queue);
	w->cancel_queue = NULL;
	bus_free(w->bus);
	w->bus = bus_connect_from(w->cfg.url, w->node + 1, w->cfg.name, err,
	    sizeof(err));
	if (w->bus != NULL && worker_bus_setup(w, err, sizeof(err)) == 0) {
		w->lost = false;
		w->node = bus_node(w->bus);
		ev_io_set(&w->bus_w, bus_fd(w->bus), EV_READ);
		ev_io_start(loop, &w->bus_w);
		log_info("reconnected to RabbitMQ node %zu in %lld ms",
		    bus_node(w->bus) + 1,
		    (long long)(now_mono_ms() - w->lost_ms));
		worker_run_waiting(w);
		return;
	}
	if (w->bus != NULL && bus_conflict(w->bus)) {
		log_warnx("%s", err);
		w->exit_status = BUS_EXIT_CONFIG;
		worker_terminate_all(w);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_warnx("cannot reconnect: %s; trying again in %.1f s", err,
	    w->reconnect_s);
	bus_free(w->bus);
	w->bus = NULL;
	free(w->cancel_queue);
	w->cancel_queue = NULL;
	ev_timer_set(t, w->reconnect_s, 0.);
	ev_timer_start(loop, t);
	w->reconnect_s *= 2;
	if (w->reconnect_s > WORKER_RECONNECT_MAX_S)
		w->reconnect_s = WORKER_RECONNECT_MAX_S;
}

int
worker_start(struct worker *w, char *err, size_t errlen)
{
	if (mkdir_hooks(w->cfg.logdir, err, errlen) == -1)
		return -1;
	if (worker_bus_setup(w, err, errlen) == -1)
		return -1;
	w->node = bus_node(w->bus);

	ev_init(&w->reconnect_w, reconnect_cb);
	ev_io_init(&w->bus_w, bus_io_cb, bus_fd(w->bus), EV_READ);
	ev_io_start(w->loop, &w->bus_w);
	ev_prepare_init(&w->pending_w, pending_cb);
	ev_prepare_start(w->loop, &w->pending_w);
	ev_timer_init(&w->heartbeat_w, heartbeat_cb, WORKER_HEARTBEAT_POLL_S,
	    WORKER_HEARTBEAT_POLL_S);
	ev_timer_start(w->loop, &w->heartbeat_w);
	ev_init(&w->grace_w, grace_cb);

	ev_signal_init(&w->term_w, stop_cb, SIGTERM);
	w->term_w.data = w;
	ev_signal_start(w->loop, &w->term_w);
	ev_signal_init(&w->int_w, stop_cb, SIGINT);
	w->int_w.data = w;
	ev_signal_start(w->loop, &w->int_w);
	ev_signal_init(&w->hup_w, hup_cb, SIGHUP);
	w->hup_w.data = w;
	ev_signal_start(w->loop, &w->hup_w);
	return 0;
}

int
worker_exit_status(const struct worker *w)
{
	return w->exit_status;
}

void
worker_free(struct worker *w)
{
	struct job *job;

	if (w == NULL)
		return;
	ev_io_stop(w->loop, &w->bus_w);
	ev_prepare_stop(w->loop, &w->pending_w);
	ev_timer_stop(w->loop, &w->heartbeat_w);
	ev_timer_stop(w->loop, &w->grace_w);
	ev_timer_stop(w->loop, &w->reconnect_w);
	ev_signal_stop(w->loop, &w->term_w);
	ev_signal_stop(w->loop, &w->int_w);
	ev_signal_stop(w->loop, &w->hup_w);
	/*
	 * Running commands were told to stop (worker_lost, grace_cb); they
	 * are not waited for.  Unacked jobs return to their queue when the
	 * connection closes.
	 */
	while ((job = TAILQ_FIRST(&w->waiting)) != NULL) {
		TAILQ_REMOVE(&w->waiting, job, entry);
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&w->running)) != NULL) {
		TAILQ_REMOVE(&w->running, job, entry);
		if (job->runner != NULL)
			runner_abandon(job->runner);
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&w->confirming)) != NULL) {
		TAILQ_REMOVE(&w->confirming, job, entry);
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&w->retrying)) != NULL) {
		TAILQ_REMOVE(&w->retrying, job, entry);
		ev_timer_stop(w->loop, &job->retry_w);
		job_free(job);
	}
	bus_free(w->bus);
	gen_free(w->gen);	/* every job let go of it above */
	strv_free(w->served, w->nserved);
	strv_free(w->dropped, w->ndropped);
	free(w->cancel_queue);
	free(w->event_exchange);
	free(w);
}
