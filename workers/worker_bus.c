/*
 * worker_bus -- resbus-worker's side of the bus.
 *
 * The worker consumes the queues of the pools it serves and a private
 * queue bound to their Cancels; it believes only deliveries from the
 * broker's users, and dead-letters the others.  A result is published as
 * an event and its job acked only once RabbitMQ has confirmed it; a
 * result RabbitMQ refuses (nack: a full queue, an internal error) is
 * published again after a growing delay, without running the command
 * again -- a second cmd_new would start a second machine.
 *
 * When its RabbitMQ node goes away the worker gives back what it was
 * running and reconnects in-process.  RabbitMQ requeues every job of the
 * lost connection, unacknowledged as they all are until their result is
 * confirmed, so finishing a command and publishing its result could only
 * race the redelivered job: another worker (or this one) may already run
 * it again.  The worker therefore stops the running commands' process
 * groups (SIGTERM, SIGKILL after RUNNER_KILL_GRACE_S) and forgets their
 * jobs; the redelivered Allocate cleans up with cmd_delete first, as
 * after a crash.  It then connects to the next node that answers (after
 * 0.2 s, doubling up to WORKER_RECONNECT_MAX_S), declares and consumes
 * as at start, and goes on.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topo.h"
#include "util.h"
#include "worker_priv.h"

/*
 * The connection failed.  Without a URL to reconnect to, or while
 * stopping: stop everything, exit non-zero.  Otherwise the running
 * commands are stopped (their jobs go back to the queue with the
 * connection) and reconnect_cb, from a fresh stack, drops the rest and
 * connects again.
 */
void
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
		TAILQ_FOREACH(job, &w->jobs[JOB_RUNNING], entry)
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
	    bus_error(w->bus), w->njobs[JOB_RUNNING]);
	TAILQ_FOREACH(job, &w->jobs[JOB_RUNNING], entry)
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

	while ((job = TAILQ_FIRST(&w->jobs[JOB_WAITING])) != NULL)
		job_free(job);
	while ((job = TAILQ_FIRST(&w->jobs[JOB_CONFIRMING])) != NULL)
		job_free(job);
	while ((job = TAILQ_FIRST(&w->jobs[JOB_RETRYING])) != NULL)
		job_free(job);
	w->nheld = 0;
}

void
job_reject(struct worker *w, uint64_t tag, bool requeue)
{
	if (bus_reject(w->bus, tag, requeue) == -1)
		worker_lost(w);
}

int
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
	job_move(job, JOB_CONFIRMING);
	return 0;
}

bool
cancel_remembered(const struct worker *w, uint64_t id)
{
	size_t i;

	for (i = 0; i < WORKER_CANCEL_MEMORY; i++)
		if (id != 0 && w->cancelled_ids[i] == id)
			return true;
	return false;
}

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
worker_dead_letter(
    struct worker *w, const struct bus_delivery *d, const char *reason)
{
	struct bus_header h[4] = {
	    {"x-resbus-reason", BUS_HDR_STRING, reason, 0},
	    {"x-resbus-queue", BUS_HDR_STRING, d->queue ? d->queue : "", 0},
	    {"x-resbus-source", BUS_HDR_STRING,
		d->routing_key ? d->routing_key : "", 0},
	    {"x-resbus-user", BUS_HDR_STRING, d->user_id ? d->user_id : "", 0},
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

/*
 * A Cancel on cancel.<pool>: every worker of the pool gets it.  The one
 * running the resource's cmd_new stops it (its group gets SIGTERM, then
 * SIGKILL) and deletes what it made; a clean-up delete already running
 * finishes first.  The others remember the id, in case the Allocate
 * still waits in the queue and comes to them.
 */

static void
cancel_cb(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct worker *w = arg;
	Resbus__V1__Cancel *c;
	struct job *job;
	uint64_t id;

	if (!worker_from_broker(w, d)) {
		log_warnx("%s on %s from user \"%.64s\", not the broker's: "
			  "ignored",
		    d->type ? d->type : "(none)", d->routing_key,
		    d->user_id ? d->user_id : "");
		return;
	}
	c = NULL;
	if (d->type != NULL && strcmp(d->type, "resbus.v1.Cancel") == 0)
		c = (Resbus__V1__Cancel *)msg_unpack(d->type, d->body, d->len);
	if (c == NULL || c->resource == NULL || c->resource->pool == NULL) {
		log_warnx("%s on %s: not a Cancel, ignored",
		    d->type != NULL ? d->type : "(none)", d->routing_key);
		if (c != NULL)
			msg_free(&c->base);
		return;
	}
	id = c->resource->resource_id;
	TAILQ_FOREACH(job, &w->jobs[JOB_RUNNING], entry)
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

static void
deliver_cb(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct worker *w = arg;

	if (w->lost)
		return;
	if (w->stopping) {
		/* Held unacked; requeued by RabbitMQ when we disconnect. */
		w->nheld++;
		log_debug("delivery %llu held: stopping",
		    (unsigned long long)d->delivery_tag);
		return;
	}
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
	if (d->type == NULL || job_dispatch(w, d) == -1) {
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

	job_move(job, JOB_NEW);
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
	job_move(job, JOB_RETRYING);
	ev_timer_init(&job->retry_w, retry_cb, (ev_tstamp)delay_s, 0.);
	ev_timer_start(w->loop, &job->retry_w);
}

static void
confirm_cb(struct bus *bus, uint64_t seq, bool multiple, bool ack, void *arg)
{
	struct worker *w = arg;
	struct job *job, *tmp;

	TAILQ_FOREACH_SAFE(job, &w->jobs[JOB_CONFIRMING], entry, tmp)
	{
		if (w->lost)
			return;
		/* Confirming in publish order: nothing past SEQ is confirmed.
		 */
		if (job->seq > seq)
			break;
		if (!multiple && job->seq != seq)
			continue;
		job_move(job, JOB_NEW);
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
		rc = bus_queue_bind(
		    w->bus, w->cancel_queue, w->event_exchange, key);
	else
		rc = bus_queue_unbind(
		    w->bus, w->cancel_queue, w->event_exchange, key);
	free(key);
	return rc;
}

/* Takes POOL's Cancels and jobs.  0, or -1 with a message in ERR. */
int
worker_serve_pool(struct worker *w, const char *pool, char *err, size_t errlen)
{
	char *queue = topo_pool_queue(w->cfg.prefix, pool);

	if (worker_cancel_binding(w, pool, true) == -1 ||
	    topo_declare_pool(
		w->bus, w->cfg.prefix, pool, w->cfg.queue_flags) == -1 ||
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
int
worker_drop_pool(struct worker *w, const char *pool)
{
	char *queue = topo_pool_queue(w->cfg.prefix, pool);
	struct job *job, *next;
	int rc;

	rc = bus_cancel(w->bus, queue);
	free(queue);
	if (rc == -1 || worker_cancel_binding(w, pool, false) == -1)
		return -1;
	for (job = TAILQ_FIRST(&w->jobs[JOB_WAITING]); job != NULL;
	     job = next) {
		next = TAILQ_NEXT(job, entry);
		if (strcmp(job->pool_name, pool) != 0)
			continue;
		job_move(job, JOB_NEW);
		job_reject(w, job->delivery_tag, true);
		job_free(job);
	}
	if (!names_have(w->dropped, w->ndropped, pool)) {
		w->dropped = xrealloc(
		    w->dropped, (w->ndropped + 1) * sizeof(*w->dropped));
		w->dropped[w->ndropped++] = xstrdup(pool);
	}
	log_info("no longer serving pool %s", pool);
	return 0;
}

/* Declares, sets the channel up and consumes on w->bus: at start and
 * after reconnecting.  0, or -1 with a message in ERR. */
int
worker_bus_setup(struct worker *w, char *err, size_t errlen)
{
	size_t i;

	if (topo_ensure_core(w->bus, w->cfg.prefix, w->cfg.queue_flags) == -1 ||
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
		    w->njobs[JOB_RUNNING]);
		worker_terminate_all(w);
		w->exit_status = 1;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	worker_drop_jobs(w);
	free(w->cancel_queue);
	w->cancel_queue = NULL;
	bus_free(w->bus);
	w->bus = bus_connect_from(
	    w->cfg.url, w->node + 1, w->cfg.name, err, sizeof(err));
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

void
worker_bus_start(struct worker *w)
{
	ev_init(&w->reconnect_w, reconnect_cb);
	ev_io_init(&w->bus_w, bus_io_cb, bus_fd(w->bus), EV_READ);
	ev_io_start(w->loop, &w->bus_w);
	ev_prepare_init(&w->pending_w, pending_cb);
	ev_prepare_start(w->loop, &w->pending_w);
	ev_timer_init(&w->heartbeat_w, heartbeat_cb, WORKER_HEARTBEAT_POLL_S,
	    WORKER_HEARTBEAT_POLL_S);
	ev_timer_start(w->loop, &w->heartbeat_w);
}

void
worker_bus_stop(struct worker *w)
{
	ev_io_stop(w->loop, &w->bus_w);
	ev_prepare_stop(w->loop, &w->pending_w);
	ev_timer_stop(w->loop, &w->heartbeat_w);
	ev_timer_stop(w->loop, &w->reconnect_w);
}
