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

/* One row of a dispatch table: the handler for one message type. */
struct msg_handler {
	const ProtobufCMessageDescriptor *descriptor;
	void (*fn)(const ProtobufCMessage *m, void *ctx, void *arg);
};

/*
 * Finds TYPE's row in TABLE (terminated by a NULL descriptor), decodes
 * BODY and calls the handler with CTX and ARG.  Returns 0 when a handler
 * ran, -1 when TYPE is unknown to the table or BODY does not decode.
 */
int msg_dispatch(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg)
	__attribute__((warn_unused_result));

/* Short upper-case name of a ticket state ("OPEN", "READY"...).  Static. */
const char *msg_ticket_state_name(Resbus__V1__TicketState s);
/* The state a name of msg_ticket_state_name() stands for; UNKNOWN if none. */
Resbus__V1__TicketState msg_ticket_state_parse(const char *name);

#endif
