/*
 * msg -- protobuf-c packing, unpacking and dispatch by message name.
 *
 * The AMQP `type` property names the message, so a receiver can decode a
 * body without knowing which queue it came from.  All of protobuf-c's
 * allocation happens here: packed buffers come from xmalloc, unpacked
 * messages go back through protobuf_c_message_free_unpacked.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "util.h"

static const ProtobufCMessageDescriptor *const msg_descriptors[] = {
	&resbus__v1__ticket_request__descriptor,
	&resbus__v1__ticket_accepted__descriptor,
	&resbus__v1__ticket_query__descriptor,
	&resbus__v1__ticket_close__descriptor,
	&resbus__v1__ticket_renew__descriptor,
	&resbus__v1__ticket_update__descriptor,
	&resbus__v1__error__descriptor,
	&resbus__v1__allocate__descriptor,
	&resbus__v1__delete__descriptor,
	&resbus__v1__allocate_result__descriptor,
	&resbus__v1__delete_result__descriptor,
	&resbus__v1__livecheck__descriptor,
	&resbus__v1__livecheck_result__descriptor,
	&resbus__v1__release__descriptor,
	&resbus__v1__release_result__descriptor,
	&resbus__v1__list__descriptor,
	&resbus__v1__list_result__descriptor,
	&resbus__v1__cancel__descriptor,
	&resbus__v1__control_request__descriptor,
	&resbus__v1__control_reply__descriptor,
	NULL,
};

const char *
msg_type(const ProtobufCMessage *m)
{
	return m->descriptor->name;
}

void *
msg_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(n);

	*len = protobuf_c_message_pack(m, buf);
	return buf;
}

static const ProtobufCMessageDescriptor *
msg_find(const char *type)
{
	size_t i;

	if (type == NULL)
		return NULL;
	for (i = 0; msg_descriptors[i] != NULL; i++)
		if (strcmp(msg_descriptors[i]->name, type) == 0)
			return msg_descriptors[i];
	return NULL;
}

ProtobufCMessage *
msg_unpack(const char *type, const void *body, size_t len)
{
	const ProtobufCMessageDescriptor *d = msg_find(type);

	if (d == NULL)
		return NULL;
	return protobuf_c_message_unpack(d, NULL, len, body);
}

void
msg_free(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

int
msg_dispatch(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg)
{
	const struct msg_handler *h;
	ProtobufCMessage *m;

	if (type == NULL)
		return -1;
	for (h = table; h->descriptor != NULL; h++)
		if (strcmp(h->descriptor->name, type) == 0)
			break;
	if (h->descriptor == NULL)
		return -1;
	m = protobuf_c_message_unpack(h->descriptor, NULL, len, body);
	if (m == NULL)
		return -1;
	h->fn(m, ctx, arg);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

const char *
msg_ticket_state_name(Resbus__V1__TicketState s)
{
	switch (s) {
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN:
		return "OPEN";
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_READY:
		return "READY";
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED:
		return "FAILED";
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED:
		return "CLOSED";
	default:
		return "UNKNOWN";
	}
}

Resbus__V1__TicketState
msg_ticket_state_parse(const char *name)
{
	static const Resbus__V1__TicketState states[] = {
		RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN,
		RESBUS__V1__TICKET_STATE__TICKET_STATE_READY,
		RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED,
		RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED,
	};
	size_t i;

	for (i = 0; name != NULL && i < sizeof(states) / sizeof(states[0]);
	    i++)
		if (strcmp(msg_ticket_state_name(states[i]), name) == 0)
			return states[i];
	return RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN;
}
