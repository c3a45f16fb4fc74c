/*
 * job -- the job table of resbus-worker and running a job's commands.
 *
 * A job is one delivery from a pool queue.  It WAITS while the
 * concurrency is used up, is RUNNING while its commands run, then
 * CONFIRMING while its result waits for RabbitMQ's publisher confirm, or
 * RETRYING after RabbitMQ refused it; the job's state is the list it sits
 * on, and job_move() is the only thing that moves it.  A job on no list
 * (JOB_NEW) is being accepted, has just finished, or is being freed.
 *
 * Running a job is a sequence of steps, each one command of the pool's
 * (runner module): a redelivered Allocate runs cmd_delete before cmd_new,
 * a cancelled one deletes what its cmd_new made.  Jobs never carry
 * commands: the command comes from the worker's own pools.yaml, and what
 * the job carries reaches it only through its environment.  Which pools a
 * job refers to is a generation of the configuration, counted by its jobs
 * and freed with the last.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "worker_priv.h"

static void job_step_start(struct job *job);

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

const char *
step_name(enum job_step step)
{
	return steps[step].name;
}

struct pools_gen *
gen_new(const struct conf_pools *pools, struct conf_pools *owned)
{
	struct pools_gen *g = xcalloc(1, sizeof(*g));

	g->pools = pools;
	g->owned = owned;
	return g;
}

void
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

bool
names_have(char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

void
job_move(struct job *job, enum job_state to)
{
	struct worker *w = job->w;

	if (job->state == to)
		return;
	if (job->state != JOB_NEW) {
		TAILQ_REMOVE(&w->jobs[job->state], job, entry);
		w->njobs[job->state]--;
		if (job->state == JOB_RETRYING)
			ev_timer_stop(w->loop, &job->retry_w);
	}
	if (to != JOB_NEW) {
		TAILQ_INSERT_TAIL(&w->jobs[to], job, entry);
		w->njobs[to]++;
	}
	job->state = to;
}

void
job_free(struct job *job)
{
	job_move(job, JOB_NEW);
	if (job->gen != NULL)
		gen_release(job->gen);
	msg_free(job->msg);
	free(job->new_out);
	free(job->result);
	free(job->result_key);
	free(job);
}

void
worker_run_waiting(struct worker *w)
{
	struct job *job;

	while (!w->lost && !w->stopping &&
	       w->njobs[JOB_RUNNING] < w->cfg.concurrency &&
	       (job = TAILQ_FIRST(&w->jobs[JOB_WAITING])) != NULL)
		job_run(job);
}

/* JOB is over: publish RES as its result and wait for the confirm. */
static void
job_finish(struct job *job, const struct runner_result *res)
{
	struct worker *w = job->w;

	job_move(job, JOB_NEW);
	if (w->lost) {
		job_free(job);
		return;
	}
	if (job_result(job, res) == -1)
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

void
job_run(struct job *job)
{
	struct worker *w = job->w;

	job_move(job, JOB_RUNNING);
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
