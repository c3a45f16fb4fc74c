/*
 * control -- operators' commands on the control queue (resbus-maint).
 *
 * Each ControlRequest names a command; a table maps names to handlers
 * that read the scheduler's views or call its operator actions.  Commands
 * that change anything require the AMQP user_id of the request to be one
 * of the admins (server.yaml's `admins`, by default the broker's own
 * login); RabbitMQ has checked user_id against the login, so it cannot be
 * forged by a client.
 */
#ifndef RESBUS_CONTROL_H
#define RESBUS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "resbus.pb-c.h"

struct bus_delivery;
struct peers;
struct sched;

/* broker-status's answer, borrowed for the call. */
struct control_status {
	const char *who;	      /* the active resbusd; NULL: unknown */
	int64_t since_ms;	      /* active since (wall clock) */
	int64_t epoch;		      /* the store's leadership epoch */
	const struct peers *standbys; /* heard lately; may be NULL */
	int64_t now_ms;		      /* the wall clock they were heard by */
};

struct control_ops {
	/* Sends M to the client that sent D, after the commit. */
	void (*reply)(
	    void *ctx, const struct bus_delivery *d, const ProtobufCMessage *m);
	/* Reloads pools.yaml; 0, or -1 with the reason in ERR. */
	int (*reload)(void *ctx, char *err, size_t errlen);
	void *ctx;
	/* Whether USER (may be NULL) is an admin. */
	bool (*is_admin)(void *ctx, const char *user);
	/* Says which broker is active, since when, and which standbys it
	 * hears, into *ST.  May be NULL. */
	void (*status)(void *ctx, struct control_status *st);
};

/*
 * Runs REQ (decoded and checked by msg_dispatch) and answers the client
 * that sent D, whatever the outcome: a request of another control
 * protocol version, an unknown command or a mutating one from a user
 * not in admins is answered with the reason.
 */
void control_handle(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct bus_delivery *d, const struct control_ops *ops);

#endif
