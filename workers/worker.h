/*
 * worker -- the allocation jobs of resbus-worker.
 *
 * Consumes Allocate, Delete, Livecheck, Release and List jobs from the
 * queues of the pools it serves, runs the pool's command for each (runner
 * module, many at once on one libev loop), publishes the result as an event and
 * acks the job only once RabbitMQ has confirmed the result.  The bus connection
 * is driven from the same loop.
 */
#ifndef RESBUS_WORKER_H
#define RESBUS_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct bus;
struct conf_pools;
struct worker;

/* Seconds running commands get to finish after SIGTERM/SIGINT. */
#define WORKER_STOP_GRACE_S 30
/* Seconds between bus polls that keep heartbeats going. */
#define WORKER_HEARTBEAT_POLL_S 5
/* How many cancelled resource ids a worker remembers. */
#define WORKER_CANCEL_MEMORY 256
/*
 * A result RabbitMQ nacked is published again after 1, 2, 4... seconds,
 * at most this many apart; the command is not run again.
 */
#define WORKER_REPUBLISH_MAX_S 60
/* Reconnecting after a lost connection: first after this, doubling... */
#define WORKER_RECONNECT_MIN_S 0.2
/* ...up to this many seconds apart. */
#define WORKER_RECONNECT_MAX_S 5.0

/*
 * Reads the pools anew (on SIGHUP): *POOLS, owned by the caller from then
 * on, and the names of the pools to serve, all present in it (*SERVED and
 * its strings owned by the caller, *NSERVED of them).  0, or -1 with a
 * message in ERR, the running pools then staying as they are.
 */
typedef int worker_reload_fn(void *arg, struct conf_pools **pools,
    char ***served, size_t *nserved, char *err, size_t errlen);

struct worker_config {
	const char *name;   /* results and connection name */
	const char *prefix; /* bus name prefix */
	const char *logdir; /* <logdir>/hooks/ gets command logs */
	const struct conf_pools *pools;
	char *const *served; /* pool names, all present in POOLS */
	size_t nserved;
	uint16_t concurrency;	  /* prefetch = commands at once */
	worker_reload_fn *reload; /* NULL: SIGHUP changes nothing */
	void *reload_arg;
	/* AMQP users whose jobs and cancels are run (worker.yaml's
	 * broker_users); none: the worker's own login. */
	char *const *broker_users;
	size_t nbroker_users;
	/* The AMQP URL (nodes) to reconnect to; NULL: exit when the
	 * connection is lost. */
	const char *url;
	unsigned queue_flags; /* BUS_QUORUM or 0 (queue_type) */
};

/*
 * A worker on LOOP (the default loop) using BUS.  Borrows CFG's strings
 * and POOLS (until a reload replaces them) and takes ownership of BUS
 * (freed by worker_free).  Caller frees the worker with worker_free().
 */
struct worker *worker_new(
    struct ev_loop *loop, struct bus *bus, const struct worker_config *cfg);
void worker_free(struct worker *w);

/*
 * Declares the topology, sets confirm mode and prefetch, starts
 * consuming the served pools' queues and the loop watchers (bus, signal
 * handlers).  0, or -1 with a message in ERR.
 */
int worker_start(struct worker *w, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The process exit status once ev_run() has returned: 0 after a clean
 * stop, 1 after the connection was lost for good, BUS_EXIT_CONFIG (78)
 * when a queue exists with the other type.
 */
int worker_exit_status(const struct worker *w);

#endif
