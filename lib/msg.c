/*
 * msg -- protobuf-c packing, unpacking and dispatch by message name.
 *
 * The AMQP `type` property names the message, so a receiver can decode a
 * body without knowing which queue it came from.  All of protobuf-c's
 * allocation happens here: packed buffers come from xmalloc, unpacked
 * messages go back through protobuf_c_message_free_unpacked.
 */
#include "config.h"

#include <stdio.h>
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
    &resbus__v1__broker_standby__descriptor,
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

/* ---- bounds ------------------------------------------------------------ */

bool
msg_utf8_valid(const char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	for (; len > 0; s += n, len -= n)
		if ((n = utf8_decode(s, len, &cp)) == 0)
			return false;
	return true;
}

/*
 * Fields whose bounds differ from the defaults: MAX is a string's or a
 * bytes field's length, or a repeated field's count; "field[]" bounds
 * the length of each value of a repeated field.
 */
static const struct msg_bound {
	const char *message; /* full name */
	const char *field;
	size_t max;
} msg_bounds[] = {
    {"resbus.v1.TicketRequest", "idempotency_key", MSG_IDEM_KEY_MAX},
    {"resbus.v1.TicketRequest", "labels", MSG_LABELS_MAX},
    {"resbus.v1.ResourceRef", "data", MSG_DATA_MAX},
    {"resbus.v1.ResourceRef", "name", MSG_NAME_MAX},
    {"resbus.v1.ResourceRef", "pool", MSG_NAME_MAX},
    {"resbus.v1.AllocateResult", "data", MSG_DATA_MAX},
    {"resbus.v1.ListResult", "names", MSG_LIST_NAMES_MAX},
    {"resbus.v1.ListResult", "names[]", MSG_NAME_MAX},
    {"resbus.v1.ListResult", "pool", MSG_NAME_MAX},
    {"resbus.v1.List", "pool", MSG_NAME_MAX},
    {"resbus.v1.ControlRequest", "args", 4096},
    {"resbus.v1.ControlReply", "error", 65536},
    {"resbus.v1.ControlReply", "warnings", 4096},
    {"resbus.v1.ControlReply", "resources", MSG_CONTROL_ROWS_MAX},
    {"resbus.v1.ControlReply", "tickets", MSG_CONTROL_ROWS_MAX},
    {"resbus.v1.ControlReply", "pools", MSG_CONTROL_ROWS_MAX},
    {"resbus.v1.ControlResource", "name", MSG_NAME_MAX},
    {"resbus.v1.ControlResource", "pool", MSG_NAME_MAX},
    {"resbus.v1.ControlResource", "data", MSG_DATA_MAX},
    {"resbus.v1.ControlTicket", "resource", MSG_NAME_MAX},
    {"resbus.v1.ControlTicket", "waiting", 4096},
    {"resbus.v1.ControlBroker", "standbys", 1024},
    {"resbus.v1.TicketUpdate", "output", MSG_DATA_MAX},
    {NULL, NULL, 0},
};

/* The bound of field F of D (F's values, with ELEM), or DFLT. */
static size_t
msg_bound(const ProtobufCMessageDescriptor *d,
    const ProtobufCFieldDescriptor *f, bool elem, size_t dflt)
{
	const struct msg_bound *b;
	size_t n = strlen(f->name);

	for (b = msg_bounds; b->message != NULL; b++)
		if (strcmp(b->message, d->name) == 0 &&
		    strncmp(b->field, f->name, n) == 0 &&
		    strcmp(b->field + n, elem ? "[]" : "") == 0)
			return b->max;
	return dflt;
}

#define MSG_CHECK_DEPTH 4

static int msg_check_depth(
    const ProtobufCMessage *m, int depth, char *err, size_t errlen);

/* Checks the one value of field F at P (a char *, a binary, a message);
 * ELEM: one value of a repeated field. */
static int
msg_check_value(const ProtobufCMessageDescriptor *d,
    const ProtobufCFieldDescriptor *f, const void *p, bool elem, int depth,
    char *err, size_t errlen)
{
	const ProtobufCBinaryData *bin;
	const char *str;
	size_t len, max;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		str = *(char *const *)p;
		if (str == NULL)
			return 0;
		len = strlen(str);
		max = msg_bound(d, f, elem, MSG_STRING_MAX);
		if (len > max) {
			snprintf(err, errlen, "%s.%s: %zu bytes, more than %zu",
			    d->short_name, f->name, len, max);
			return -1;
		}
		if (!msg_utf8_valid(str, len)) {
			snprintf(err, errlen, "%s.%s: not valid UTF-8",
			    d->short_name, f->name);
			return -1;
		}
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		bin = p;
		max = msg_bound(d, f, elem, MSG_DATA_MAX);
		if (bin->len > max) {
			snprintf(err, errlen, "%s.%s: %zu bytes, more than %zu",
			    d->short_name, f->name, bin->len, max);
			return -1;
		}
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)p == NULL)
			return 0;
		return msg_check_depth(
		    *(ProtobufCMessage *const *)p, depth + 1, err, errlen);
	default:
		return 0;
	}
}

/* Size of one element of a repeated field of F's type. */
static size_t
msg_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 0;
	}
}

static int
msg_check_depth(const ProtobufCMessage *m, int depth, char *err, size_t errlen)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	const char *base = (const char *)m;
	const char *elems;
	size_t i, j, n, max, size;

	if (depth > MSG_CHECK_DEPTH) {
		snprintf(err, errlen, "%s: nested too deep", d->short_name);
		return -1;
	}
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			if (msg_check_value(d, f, base + f->offset, false,
				depth, err, errlen) == -1)
				return -1;
			continue;
		}
		n = *(const size_t *)(base + f->quantifier_offset);
		max = msg_bound(d, f, false, MSG_REPEATED_MAX);
		if (n > max) {
			snprintf(err, errlen,
			    "%s.%s: %zu values, more than %zu", d->short_name,
			    f->name, n, max);
			return -1;
		}
		if ((size = msg_elem_size(f)) == 0)
			continue;
		elems = *(const char *const *)(base + f->offset);
		for (j = 0; j < n; j++)
			if (msg_check_value(d, f, elems + j * size, true, depth,
				err, errlen) == -1)
				return -1;
	}
	return 0;
}

int
msg_check(const ProtobufCMessage *m, char *err, size_t errlen)
{
	return msg_check_depth(m, 0, err, errlen);
}

/* ---- dispatch ---------------------------------------------------------- */

int
msg_dispatch_err(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg, char *err,
    size_t errlen)
{
	const struct msg_handler *h;
	ProtobufCMessage *m;

	if (type == NULL || type[0] == '\0') {
		snprintf(err, errlen, "no type property");
		return -1;
	}
	for (h = table; h->descriptor != NULL; h++)
		if (strcmp(h->descriptor->name, type) == 0)
			break;
	if (h->descriptor == NULL) {
		snprintf(err, errlen,
		    "a message of type \"%.80s\" is not "
		    "taken here",
		    type);
		return -1;
	}
	if (len > MSG_MAX_BYTES) {
		snprintf(err, errlen, "%s of %zu bytes, more than %d",
		    h->descriptor->short_name, len, MSG_MAX_BYTES);
		return -1;
	}
	m = protobuf_c_message_unpack(h->descriptor, NULL, len, body);
	if (m == NULL) {
		snprintf(err, errlen, "the body does not decode as %s",
		    h->descriptor->short_name);
		return -1;
	}
	if (msg_check(m, err, errlen) == -1) {
		protobuf_c_message_free_unpacked(m, NULL);
		return -1;
	}
	h->fn(m, ctx, arg);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int
msg_dispatch(const struct msg_handler *table, const char *type,
    const void *body, size_t len, void *ctx, void *arg)
{
	char err[256];

	return msg_dispatch_err(
	    table, type, body, len, ctx, arg, err, sizeof(err));
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

	for (i = 0; name != NULL && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(msg_ticket_state_name(states[i]), name) == 0)
			return states[i];
	return RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN;
}
