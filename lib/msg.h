/*
 * msg -- protobuf-c messages on the bus.
 *
 * Wraps protobuf-c's ownership rules in one place: msg_pack() hands out a
 * buffer, msg_unpack() a message that msg_free() releases.  Receivers
 * dispatch on the AMQP `type` property through a table of handlers
 * (msg_dispatch) instead of a switch.
 */
#ifndef RESBUS_MSG_H
#define RESBUS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resbus.pb-c.h"

#define MSG_CONTENT_TYPE "application/x-protobuf"

/*
 * Bounds on what arrives from the bus (msg_check).  Everything a client
 * or a worker sends is checked against them before it touches the store
 * or the bus: protobuf-c checks neither UTF-8 nor sizes.
 */
#define MSG_MAX_BYTES 65536	/* a whole body */
#define MSG_STRING_MAX 1024	/* a string field, unless listed */
#define MSG_REPEATED_MAX 64	/* a repeated field, unless listed */
#define MSG_LABELS_MAX 32	/* TicketRequest.labels */
#define MSG_IDEM_KEY_MAX 128	/* TicketRequest.idempotency_key */
#define MSG_DATA_MAX 4096	/* a resource's data (cmd_new stdout) */
#define MSG_LIST_NAMES_MAX 4096 /* ListResult.names */
#define MSG_NAME_MAX 255	/* a resource name, a pool name */

/* The operators' control protocol: its version, and how many rows of a
 * kind (resources, tickets, pools) a ControlReply holds at most. */
#define MSG_CONTROL_VERSION 1
#define MSG_CONTROL_ROWS_MAX 1000000

/* "resbus.v1.TicketRequest" for a message of that type.  Borrowed. */
const char *msg_type(const ProtobufCMessage *m);

/* Serialises M; *len gets the size.  Caller frees the result. */
void *msg_pack(const ProtobufCMessage *m, size_t *len);

/*
 * Decodes BODY as the message named TYPE; NULL if TYPE is not one of
 * ours or BODY does not decode as it.  Free with msg_free().
 */
ProtobufCMessage *msg_unpack(const char *type, const void *body, size_t len);
void msg_free(ProtobufCMessage *m);

/*
 * Whether M, as decoded from the bus, keeps the bounds above: every
 * string valid UTF-8 within its length, every repeated field within its
 * count, every bytes field within its size.  0, or -1 with a one-line
 * message in ERR naming the field.
 */
int msg_check(const ProtobufCMessage *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Whether the LEN bytes at S are valid UTF-8 (no overlongs, surrogates
 * or code points past U+10FFFF). */
bool msg_utf8_valid(const char *s, size_t len);

/* One row of a dispatch table: the handler for one message type. */
struct msg_handler {
	const ProtobufCMessageDescriptor *descriptor;
	void (*fn)(const ProtobufCMessage *m, void *ctx, void *arg);
};

/*
 * Finds TYPE's row in TABLE (terminated by a NULL descriptor), decodes
 * BODY, checks it (msg_check) and calls the handler with CTX and ARG.
 * Returns 0 when a handler ran, -1 when TYPE is unknown to the table,
 * BODY is larger than MSG_MAX_BYTES, does not decode or fails the check;
 * msg_dispatch_err then says which in ERR.
 */
int msg_dispatch(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg)
    __attribute__((warn_unused_result));
int msg_dispatch_err(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Short upper-case name of a ticket state ("OPEN", "READY"...).  Static. */
const char *msg_ticket_state_name(Resbus__V1__TicketState s);
/* The state a name of msg_ticket_state_name() stands for; UNKNOWN if none. */
Resbus__V1__TicketState msg_ticket_state_parse(const char *name);

#endif
