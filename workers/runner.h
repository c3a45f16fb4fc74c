/*
 * runner -- one driver command as a child process on the libev loop.
 *
 * A worker runs hundreds of commands at once without a thread per
 * command: each one is a child in its own process group, watched by an
 * ev_child for its exit, an ev_io on its stdout pipe and ev_timers for
 * its deadline.  stdout and stderr both come back through pipes: both
 * are appended to the per-resource log file, which is kept under a size
 * cap by rotating it to "<log>.1", and the first bytes of stdout are
 * captured (cmd_new's output is the resource's data).
 *
 * The command string comes only from the worker's own configuration;
 * whatever a job carries reaches the command through the environment.
 */
#ifndef RESBUS_RUNNER_H
#define RESBUS_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

/* The status a timed-out command reports, as resalloc does. */
#define RUNNER_TIMEOUT_STATUS 124
/* Seconds between SIGTERM and SIGKILL to a timed-out command's group. */
#define RUNNER_KILL_GRACE_S 5
/* How long to wait for EOF on stdout/stderr once the shell has exited. */
#define RUNNER_DRAIN_S 5
/* cmd_new's captured stdout (resalloc's limit) and the trim marker. */
#define RUNNER_CAPTURE_BYTES 512
#define RUNNER_TRIM_MARKER "<< trimmed >>\n"
/* cmd_list's captured stdout (resalloc's limit). */
#define RUNNER_LIST_CAPTURE_BYTES 5120

struct runner;

struct runner_spec {
	const char *cmd;       /* run as /bin/sh -c CMD */
	const char *log_path;  /* opened 0640, append; stderr + stdout */
	int64_t log_max_bytes; /* rotate to LOG_PATH.1 past this; 0: no cap */
	char *const *env;      /* "NAME=value" added to the environment */
	size_t nenv;
	int64_t timeout_s;	  /* <= 0: none */
	size_t capture_max_bytes; /* 0: capture nothing */
	bool capture_whole_lines; /* drop what does not fit, no marker */
};

struct runner_result {
	int exit_status; /* exit code, 128+signal, or 124 */
	bool timed_out;
	const char *out; /* captured stdout; borrowed for the call */
	size_t outlen;
	int64_t duration_ms;
};

/*
 * Called once when the command is over: its shell has exited and its
 * stdout reached EOF (or stayed open RUNNER_DRAIN_S past the exit).  The
 * runner frees itself after FN returns.
 */
typedef void runner_done_fn(
    struct runner *r, const struct runner_result *res, void *arg);

/*
 * Starts SPEC's command on LOOP (which must be the default loop, for
 * ev_child).  The worker's environment is passed on without any
 * RESALLOC_* variables of its own, plus SPEC->env.  Returns the running
 * command, owned by the runner module until FN has been called, or NULL
 * (errno set, nothing started) when the log file, the pipe or the fork
 * failed.
 */
struct runner *runner_start(struct ev_loop *loop,
    const struct runner_spec *spec, runner_done_fn *fn, void *arg);

/*
 * Forgets R without waiting for it: its watchers stop, its descriptors
 * close and FN is never called.  For shutdown, after runner_terminate().
 */
void runner_abandon(struct runner *r);

/* The process id of R's shell, which is also its process group id. */
int runner_pid(const struct runner *r);

/*
 * Stops R as a timeout does (SIGTERM to its group, SIGKILL
 * RUNNER_KILL_GRACE_S later) but without marking it timed out; the log
 * gets "<cancelled>".  FN is called as usual once it is over.
 */
void runner_cancel(struct runner *r);

/*
 * Sends SIGTERM to R's process group (shutdown).  R keeps running until
 * its exit is seen; FN is still called if the loop keeps running.
 */
void runner_terminate(struct runner *r);

/*
 * Writes "NAME=VALUE" environment strings for the resalloc hook
 * contract into a fresh array (caller frees it with runner_env_free).
 * ID_IN_POOL < 0 gives the literal "None".  DATA (may be NULL) is
 * base64-encoded into RESALLOC_RESOURCE_DATA when LEN > 0.  COUNTER_NAMES
 * and COUNTER_VALUES give RESALLOC_NAMED_COUNTER_<name>.
 */
char **runner_env_resalloc(uint64_t id, const char *name, const char *pool,
    int64_t id_in_pool, const void *data, size_t len,
    const char *const *counter_names, const uint32_t *counter_values,
    size_t ncounters, size_t *nenv);
void runner_env_free(char **env, size_t nenv);

#endif
