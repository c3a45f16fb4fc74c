/*
 * client -- the C client library the `resbus` CLI is built on.
 *
 * Blocking calls over one AMQP connection: take a ticket (an RPC answered
 * by TicketAccepted once the broker has recorded it), query, wait, close.
 * A wait binds its own queue to ticket.<id>.* on the event exchange first
 * and then queries once, so an update published in between is not lost.
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
	bool assigned;               /* a resource was assigned */
	bool ready;                  /* OPEN with a resource */
	bool closed;
	bool failed;
	char *output;                /* cmd_new stdout; caller frees */
	size_t output_len;
	char *waiting_reason;        /* caller frees */
};

/*
 * Connects to URL with bus prefix PREFIX (NULL: "resbus").  NULL with a
 * message in ERR on failure.  Free with resbus_client_free().
 */
struct resbus_client *resbus_client_new(const char *url, const char *prefix,
    char *err, size_t errlen);
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
int resbus_ticket_take(struct resbus_client *c, char *const *tags,
    size_t ntags, const char *sandbox, int timeout_ms, uint64_t *id,
    bool *timed_out) __attribute__((warn_unused_result));
/* What a ticket may carry besides its tags (resbus_ticket_take_opts). */
struct resbus_ticket_opts {
	const char *sandbox;         /* NULL: none */
	const char *const *labels;   /* "key=value" strings */
	size_t nlabels;
	const char *class_;          /* NULL: the default class */
	uint32_t lease_s;            /* 0: no lease; else renew within it */
	int64_t deadline_ms;         /* wall clock; 0: none */
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
/* Current state of ticket ID into *info (free with resbus_ticket_info_clear). */
int resbus_ticket_query(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info) __attribute__((warn_unused_result));
/* Waits until ticket ID has a resource, failed or closed. */
int resbus_ticket_wait(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info, bool *timed_out)
	__attribute__((warn_unused_result));
/* Closes ticket ID; -1 if it does not exist. */
int resbus_ticket_close(struct resbus_client *c, uint64_t id, int timeout_ms)
	__attribute__((warn_unused_result));
void resbus_ticket_info_clear(struct resbus_ticket_info *info);

/*
 * Operators' control RPCs (resbus-maint): a ControlRequest on the control
 * queue, answered by a ControlReply.  The request carries the login user
 * as its AMQP user_id, which resbusd checks against server.yaml's admins.
 */
struct resbus_control_request {
	const char *command;         /* "resource-list", "pool-pause", ... */
	char *const *args;
	size_t nargs;
	bool up;                     /* resource-list --up */
	bool all;                    /* resource-delete --all */
	bool unused;                 /* resource-delete --unused */
	bool json;                   /* answer in reply->json */
};

struct resbus_control_reply {
	bool ok;
	char *error;                 /* why not; a warning when ok; or NULL */
	char **lines;                /* output lines */
	size_t nlines;
	char *json;                  /* NULL if none */
};

/*
 * Sends REQ and waits up to TIMEOUT_MS (-1: forever) for the answer.  0
 * when resbusd answered (look at reply->ok), with *reply's strings owned
 * by the caller (free with resbus_control_reply_clear); -1 when there is
 * no answer: resbusd does not consume the control queue (nothing is sent
 * then, so that a command never runs long after it was given up on), the
 * time ran out, or the bus failed (resbus_client_error says which).
 */
int resbus_control(struct resbus_client *c,
    const struct resbus_control_request *req, int timeout_ms,
    struct resbus_control_reply *reply) __attribute__((warn_unused_result));
void resbus_control_reply_clear(struct resbus_control_reply *reply);

#endif
