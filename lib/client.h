/*
 * client -- the C client library the `resbus` CLI is built on.
 *
 * Blocking calls over one AMQP connection: take a ticket (an RPC answered
 * by TicketAccepted once the broker has recorded it), query, wait, close.
 * A wait binds its own queue to ticket.<id>.* on the event exchange first
 * and then queries once, so an update published in between is not lost.
 * Events only wake a wait: state and output come from resbusd's answers
 * to the client's own queries, never from an event.
 */
#ifndef RESBUS_CLIENT_H
#define RESBUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resbus_client;

struct resbus_ticket_info {
	uint64_t id;
	bool exists;
	bool assigned; /* a resource was assigned */
	bool ready;    /* OPEN with a resource */
	bool closed;
	bool failed;
	char *output; /* cmd_new stdout; caller frees */
	size_t output_len;
	char *waiting_reason; /* caller frees */
};

/*
 * Connects to URL with bus prefix PREFIX (NULL: "resbus").  NULL with a
 * message in ERR on failure.  Free with resbus_client_free().
 */
struct resbus_client *resbus_client_new(
    const char *url, const char *prefix, char *err, size_t errlen);
void resbus_client_free(struct resbus_client *c);
/* The last error message.  Borrowed until the next call. */
const char *resbus_client_error(const struct resbus_client *c);

/*
 * Whether resbusd is consuming its request queue right now; -1 if that
 * cannot be told.
 */
int resbus_client_broker_present(struct resbus_client *c);

/*
 * Asks for a ticket with NTAGS tags and SANDBOX (may be NULL).  Waits up
 * to TIMEOUT_MS (-1: forever) for the broker to accept it.  0 and *id, or
 * -1: refused (the broker's reason in the error), or no answer in time
 * (*timed_out set; the request stays queued and is served when resbusd
 * runs).
 */
int resbus_ticket_take(struct resbus_client *c, char *const *tags, size_t ntags,
    const char *sandbox, int timeout_ms, uint64_t *id, bool *timed_out)
    __attribute__((warn_unused_result));
/* What a ticket may carry besides its tags (resbus_ticket_take_opts). */
struct resbus_ticket_opts {
	const char *sandbox;	   /* NULL: none */
	const char *const *labels; /* "key=value" strings */
	size_t nlabels;
	const char *class_;	  /* NULL: the default class */
	uint32_t lease_s;	  /* 0: no lease; else renew within it */
	int64_t deadline_ms;	  /* wall clock; 0: none */
	const char *owner;	  /* a delegate's: for whom; NULL: none */
	bool refuse_unprovidable; /* refused if no pool provides the tags */
};

/* resbus_ticket_take with labels, a class, a lease and a deadline. */
int resbus_ticket_take_opts(struct resbus_client *c, char *const *tags,
    size_t ntags, const struct resbus_ticket_opts *opts, int timeout_ms,
    uint64_t *id, bool *timed_out) __attribute__((warn_unused_result));
/*
 * Renews the lease of ticket ID (its holder is alive) and puts its state
 * into *info (free with resbus_ticket_info_clear); info->exists is false
 * for an unknown ticket.
 */
int resbus_ticket_renew(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info) __attribute__((warn_unused_result));
/* Current state of ticket ID into *info (free with resbus_ticket_info_clear).
 */
int resbus_ticket_query(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info) __attribute__((warn_unused_result));
/* Waits until ticket ID has a resource, failed or closed. */
int resbus_ticket_wait(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info, bool *timed_out)
    __attribute__((warn_unused_result));
/*
 * What a wait tells while the ticket still waits: resbusd's latest
 * reason (borrowed for the call; NULL when it gave none) and how long
 * the ticket has waited, from its creation (from the start of the wait
 * when resbusd does not say when it was created).
 */
typedef void resbus_wait_progress_fn(
    void *arg, const char *reason, int64_t waited_ms);
/*
 * resbus_ticket_wait, calling FN(ARG, ...) (if FN is not NULL) after
 * every answer that leaves the ticket waiting and about once a second in
 * between.  With FN the ticket is also asked about every 2 s without an
 * event: its reason changes without one.  A ticket that is served at
 * once never calls FN.
 */
int resbus_ticket_wait_progress(struct resbus_client *c, uint64_t id,
    int timeout_ms, resbus_wait_progress_fn *fn, void *arg,
    struct resbus_ticket_info *info, bool *timed_out)
    __attribute__((warn_unused_result));
/* Closes ticket ID; -1 if it does not exist. */
int resbus_ticket_close(struct resbus_client *c, uint64_t id, int timeout_ms)
    __attribute__((warn_unused_result));
void resbus_ticket_info_clear(struct resbus_ticket_info *info);

/*
 * Asynchronous use from an event loop (resbus-xmlrpc).  Watch
 * resbus_client_fd() for reading; call resbus_client_poll() when it is
 * readable, at the end of every loop iteration while
 * resbus_client_pending() holds, and every few seconds (heartbeats).
 * Requests are sent at once and answered through their function, from
 * inside resbus_client_poll(); a function may send new requests but not
 * free the client.
 */
struct resbus_answer {
	int status;	    /* 0: answered; -1: refused or failed */
	const char *error;  /* why, when status is -1 */
	uint64_t ticket_id; /* the new ticket (take), or the one asked */
	/* resbusd's view of the ticket (query, close), or NULL */
	const struct resbus_ticket_info *info;
}; /* everything borrowed for the call only */
typedef void resbus_answer_fn(void *arg, const struct resbus_answer *a);
/* A wake-up: an event about ticket ID came.  A hint only: query it. */
typedef void resbus_wake_fn(void *arg, uint64_t id);
struct resbus_call;
struct resbus_watch;

int resbus_client_fd(const struct resbus_client *c);
bool resbus_client_pending(const struct resbus_client *c);
/*
 * Dispatches what the bus has.  -1 when the connection failed: every
 * request in flight has been answered with status -1 then, and the
 * client is only good for resbus_client_free().
 */
int resbus_client_poll(struct resbus_client *c)
    __attribute__((warn_unused_result));
/*
 * Send a ticket request, a TicketQuery or a TicketClose; FN(ARG, answer)
 * is called once, with resbusd's answer.  A close that resbusd answers
 * with a ticket not CLOSED, or unknown, is answered with status -1.  NULL
 * with the error set (and FN never called) when nothing could be sent.
 */
struct resbus_call *resbus_take_send(struct resbus_client *c, char *const *tags,
    size_t ntags, const struct resbus_ticket_opts *opts, resbus_answer_fn *fn,
    void *arg);
struct resbus_call *resbus_query_send(
    struct resbus_client *c, uint64_t id, resbus_answer_fn *fn, void *arg);
struct resbus_call *resbus_close_send(
    struct resbus_client *c, uint64_t id, resbus_answer_fn *fn, void *arg);
/* Gives CALL up: its function is never called.  CALL may be NULL. */
void resbus_call_cancel(struct resbus_client *c, struct resbus_call *call);
/*
 * Calls FN(ARG, ID) for every event about ticket ID, from the moment the
 * binding (one per ticket, shared by its watchers) is made: query the
 * ticket after adding the watch, and after each wake-up.  An event is
 * never more than a hint; anyone on the bus may publish one.  NULL with
 * the error set if the binding failed.
 */
struct resbus_watch *resbus_watch_add(
    struct resbus_client *c, uint64_t id, resbus_wake_fn *fn, void *arg);
/* Removes W (may be NULL); not from inside a wake-up function. */
void resbus_watch_remove(struct resbus_client *c, struct resbus_watch *w);

/*
 * Operators' control RPCs (resbus-maint): a ControlRequest on the control
 * queue, answered by a ControlReply.  The request carries the login user
 * as its AMQP user_id, which resbusd checks against server.yaml's admins.
 */
struct resbus_control_request {
	const char *command; /* "resource-list", "pool-pause", ... */
	char *const *args;
	size_t nargs;
	bool up;     /* resource-list --up */
	bool all;    /* resource-delete --all */
	bool unused; /* resource-delete --unused */
};

struct Resbus__V1__ControlReply;

struct resbus_control_reply {
	bool ok;
	char *error; /* why not, when !ok; NULL otherwise */
	/* resbusd's answer as it came: its rows (resources, tickets, pools,
	 * broker) and warnings; NULL when there is none. */
	struct Resbus__V1__ControlReply *msg;
};

/*
 * Sends REQ and waits up to TIMEOUT_MS (-1: forever) for the answer.  0
 * when resbusd answered (look at reply->ok), with what *reply holds owned
 * by the caller (free with resbus_control_reply_clear); -1 when there is
 * no answer: resbusd does not consume the control queue (nothing is sent
 * then, so that a command never runs long after it was given up on), the
 * time ran out, the bus failed, or the answer is of another control
 * protocol version or out of bounds (resbus_client_error says which).
 */
int resbus_control(struct resbus_client *c,
    const struct resbus_control_request *req, int timeout_ms,
    struct resbus_control_reply *reply) __attribute__((warn_unused_result));
void resbus_control_reply_clear(struct resbus_control_reply *reply);

#endif
