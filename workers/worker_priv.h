/*
 * worker_priv -- what the files of the worker module share, private to
 * workers/: the job and worker structs and the functions one file of the
 * module calls in another.
 *
 *	worker.c	the worker's life: new, start, stop, reload, free
 *	job.c		the job table (job_move) and running a job's commands
 *	job_kinds.c	the job kinds: accepting a job, packing its result
 *	worker_bus.c	the bus side: pool queues, cancels, results,
 *			reconnecting and giving jobs back
 *
 * A job's state is the list it sits on; only job_move() changes it.
 */
#ifndef RESBUS_WORKER_PRIV_H
#define RESBUS_WORKER_PRIV_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "bus.h"
#include "conf.h"
#include "msg.h"
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
	JOB_NEW,     /* on no list: being accepted, finished, or being freed */
	JOB_WAITING, /* delivered, over the concurrency: not started yet */
	JOB_RUNNING,
	JOB_CONFIRMING,
	JOB_RETRYING,
	JOB_NSTATES,
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

/* One reading of pools.yaml, kept while a job uses one of its pools. */
struct pools_gen {
	const struct conf_pools *pools;
	struct conf_pools *owned; /* NULL: the caller's, from the start */
	size_t jobs;		  /* jobs that refer to it */
	bool retired;		  /* a reload replaced it */
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
	struct pools_gen *gen; /* the pools new jobs take */
	char **served;	       /* pool names, owned */
	size_t nserved;
	char **dropped; /* pools a reload stopped serving */
	size_t ndropped;
	char *cancel_queue;

	/* The jobs in each state, and how many (jobs[JOB_NEW] unused). */
	struct job_list jobs[JOB_NSTATES];
	size_t njobs[JOB_NSTATES];

	ev_io bus_w;
	ev_prepare pending_w;
	ev_timer heartbeat_w;
	ev_timer grace_w;
	ev_signal term_w;
	ev_signal int_w;
	ev_signal hup_w;
	ev_timer reconnect_w;
	double reconnect_s; /* the next delay, doubling */
	size_t node;	    /* index of the last node connected to */
	int64_t lost_ms;    /* when the connection was lost */

	bool stopping;
	bool lost;
	int exit_status;
	size_t nheld; /* deliveries held while stopping */

	/* Resources cancelled while their Allocate was not running here. */
	uint64_t cancelled_ids[WORKER_CANCEL_MEMORY];
	size_t cancelled_next;
};

/* job.c: the job table. */

/*
 * Moves JOB to the list of state TO (JOB_NEW: off every list), keeping
 * the counts; leaving JOB_RETRYING stops its retry timer.
 */
void job_move(struct job *job, enum job_state to);
/* Takes JOB off its list and frees it. */
void job_free(struct job *job);
/* Starts JOB's first command (or finishes it if it was cancelled). */
void job_run(struct job *job);
/* Starts waiting jobs while there is room under the concurrency. */
void worker_run_waiting(struct worker *w);
const char *step_name(enum job_step step);
struct pools_gen *gen_new(
    const struct conf_pools *pools, struct conf_pools *owned);
void gen_free(struct pools_gen *g);
bool names_have(char *const *names, size_t n, const char *name);

/* job_kinds.c: the job kinds. */

/*
 * Decodes D (from the broker) into a job and runs it, has it wait, or
 * rejects it.  -1 when D's type is no job.
 */
int job_dispatch(struct worker *w, const struct bus_delivery *d);
/* Packs and publishes the result of JOB; 0, or -1 when the bus failed. */
int job_result(struct job *job, const struct runner_result *res);

/* worker_bus.c: the bus side. */

void worker_lost(struct worker *w);
void job_reject(struct worker *w, uint64_t tag, bool requeue);
/* Publishes JOB's packed result; moves it to CONFIRMING.  0 or -1. */
int job_publish(struct job *job);
bool cancel_remembered(const struct worker *w, uint64_t id);
int worker_bus_setup(struct worker *w, char *err, size_t errlen);
int worker_serve_pool(
    struct worker *w, const char *pool, char *err, size_t errlen);
int worker_drop_pool(struct worker *w, const char *pool);
/* Starts and stops the watchers of the bus connection. */
void worker_bus_start(struct worker *w);
void worker_bus_stop(struct worker *w);

/* worker.c */

void worker_maybe_done(struct worker *w);
bool worker_serves(const struct worker *w, const char *pool);
void worker_terminate_all(struct worker *w);

#endif
