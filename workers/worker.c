/*
 * worker -- the allocation jobs of resbus-worker: the worker's life.
 *
 * A worker consumes jobs from the queues of the pools it serves and runs
 * the pool's command for each, many at once on one libev loop (job.c,
 * job_kinds.c); its result is published as an event and the job acked
 * only once RabbitMQ has confirmed the result (worker_bus.c), so a
 * worker that dies at any point leaves the job in the queue (or its
 * result on the bus), never neither.  This file holds its life: it is
 * made, started, reloaded, stopped and freed.
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
 * SIGHUP reads the pools anew: pools no longer served lose their
 * consumer (what was delivered but not started goes back to the queue),
 * new ones get one, and new jobs take their commands from the new file;
 * a job already running keeps the pool it started with.  A file with
 * errors changes nothing.
 *
 * A result published but not yet confirmed when the connection is lost
 * may reach resbusd as well as the redelivered job's: resbusd takes the
 * first and finds its resource no longer starting for the second.  A
 * queue found with the other type (queue_type) ends the worker with
 * status 78: a restart would meet it again.
 *
 * On SIGTERM/SIGINT the worker takes no new work: what arrives is held
 * unacked (RabbitMQ requeues it when the connection closes, and no
 * reject/redeliver loop spins meanwhile), running commands get
 * WORKER_STOP_GRACE_S to finish and publish, then their process groups
 * get SIGTERM and the worker exits.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topo.h"
#include "util.h"
#include "worker_priv.h"

void
worker_maybe_done(struct worker *w)
{
	if (w->stopping && w->njobs[JOB_RUNNING] == 0 &&
	    w->njobs[JOB_CONFIRMING] == 0 && w->njobs[JOB_RETRYING] == 0) {
		log_info("all jobs done, exiting; %zu job(s) not started go "
			 "back to their queue",
		    w->nheld + w->njobs[JOB_WAITING]);
		ev_break(w->loop, EVBREAK_ALL);
	}
}

bool
worker_serves(const struct worker *w, const char *pool)
{
	return names_have(w->served, w->nserved, pool);
}

void
worker_terminate_all(struct worker *w)
{
	struct job *job;

	TAILQ_FOREACH(job, &w->jobs[JOB_RUNNING], entry)
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
	    w->njobs[JOB_RUNNING], WORKER_STOP_GRACE_S);
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
	    s->signum, WORKER_STOP_GRACE_S, w->njobs[JOB_RUNNING],
	    w->njobs[JOB_CONFIRMING] + w->njobs[JOB_RETRYING]);
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
	for (i = 0; i < JOB_NSTATES; i++)
		TAILQ_INIT(&w->jobs[i]);
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

int
worker_start(struct worker *w, char *err, size_t errlen)
{
	if (mkdir_hooks(w->cfg.logdir, err, errlen) == -1)
		return -1;
	if (worker_bus_setup(w, err, errlen) == -1)
		return -1;
	w->node = bus_node(w->bus);

	worker_bus_start(w);
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
	int state;

	if (w == NULL)
		return;
	worker_bus_stop(w);
	ev_timer_stop(w->loop, &w->grace_w);
	ev_signal_stop(w->loop, &w->term_w);
	ev_signal_stop(w->loop, &w->int_w);
	ev_signal_stop(w->loop, &w->hup_w);
	/*
	 * Running commands were told to stop (worker_lost, grace_cb); they
	 * are not waited for.  Unacked jobs return to their queue when the
	 * connection closes.
	 */
	for (state = JOB_WAITING; state < JOB_NSTATES; state++)
		while ((job = TAILQ_FIRST(&w->jobs[state])) != NULL) {
			if (job->runner != NULL)
				runner_abandon(job->runner);
			job_free(job);
		}
	bus_free(w->bus);
	gen_free(w->gen); /* every job let go of it above */
	strv_free(w->served, w->nserved);
	strv_free(w->dropped, w->ndropped);
	free(w->cancel_queue);
	free(w->event_exchange);
	free(w);
}
