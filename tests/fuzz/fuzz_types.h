/*
 * fuzz_types -- the message types of fuzz_msg's inputs, by index.
 *
 * The first byte of a fuzz_msg input is an index into this table, so the
 * order is part of the corpus format: resbus.proto's order, new types at
 * the end only.  Only the messages sent on their own are here; those
 * inside them (ResourceRef, a ControlReply's rows) are fuzzed there.
 * Shared by fuzz_msg and mkcorpus, which writes the seeds.
 */
#ifndef RESBUS_FUZZ_TYPES_H
#define RESBUS_FUZZ_TYPES_H

#include "resbus.pb-c.h"

static const ProtobufCMessageDescriptor *const fuzz_types[] = {
	&resbus__v1__ticket_request__descriptor,
	&resbus__v1__ticket_renew__descriptor,
	&resbus__v1__ticket_accepted__descriptor,
	&resbus__v1__ticket_query__descriptor,
	&resbus__v1__ticket_close__descriptor,
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
};
#define FUZZ_NTYPES (sizeof(fuzz_types) / sizeof(fuzz_types[0]))

#endif
