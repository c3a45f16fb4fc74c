/*
 * fuzz_msg -- libFuzzer target for the protobuf dispatch (lib/msg.h).
 *
 * Every message the broker, the workers and the clients consume arrives
 * as an AMQP `type` property and a body, both chosen by whoever
 * published it.  The first byte of the input picks the type (an index
 * into fuzz_types.h, in resbus.proto's order, so saved inputs keep
 * their meaning); the rest is the body.  It goes through msg_dispatch()
 * and msg_unpack() as the daemons call them, then through msg_check(),
 * the validation every incoming message passes before it touches the
 * store or the bus, and is packed again to check that what was decoded
 * encodes back to the same bytes.
 *
 * A message msg_check() accepts is held to the documented bounds, so the
 * fuzzer also checks the validator, not only the decoder.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "fuzz_types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_on_message(const ProtobufCMessage *m, void *ctx, void *arg);

/* One row per type, all to the same handler, as a daemon's table is. */
static struct msg_handler fuzz_table[FUZZ_NTYPES + 1];

static void
fuzz_table_init(void)
{
	size_t i;

	if (fuzz_table[0].descriptor != NULL)
		return;
	for (i = 0; i < FUZZ_NTYPES; i++) {
		fuzz_table[i].descriptor = fuzz_types[i];
		fuzz_table[i].fn = fuzz_on_message;
	}
}

/* Whether M or a message inside it kept fields resbus.proto lacks. */
static bool
fuzz_has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *const *subs;
	size_t i, j, n;

	if (m->n_unknown_fields > 0)
		return true;
	for (i = 0; i < m->descriptor->n_fields; i++) {
		f = &m->descriptor->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		subs = (ProtobufCMessage *const *)((const char *)m + f->offset);
		n = 1;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m +
			    f->quantifier_offset);
			subs = *(ProtobufCMessage *const *const *)subs;
		}
		for (j = 0; j < n; j++)
			if (subs[j] != NULL && fuzz_has_unknown(subs[j]))
				return true;
	}
	return false;
}

/*
 * The body encodes back to the same bytes once decoded and encoded.
 * Not checked when unknown fields were kept: protobuf-c takes field
 * number 0 in a non-minimal varint (80 00) and writes it back as 00,
 * which it then refuses.  resbus never re-encodes what it received.
 */
static void
fuzz_roundtrip(const ProtobufCMessage *m)
{
	ProtobufCMessage *again;
	void *buf, *buf2;
	size_t len, len2;

	if (fuzz_has_unknown(m))
		return;
	buf = msg_pack(m, &len);
	again = msg_unpack(msg_type(m), buf, len);
	assert(again != NULL);
	buf2 = msg_pack(again, &len2);
	assert(len2 == len);
	assert(memcmp(buf, buf2, len) == 0);
	free(buf2);
	free(buf);
	msg_free(again);
}

/* RFC 3629 UTF-8, written out again: no overlongs, no surrogates. */
static bool
fuzz_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t c;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			n = 1, c = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			n = 2, c = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			n = 3, c = s[i] & 0x07;
		else
			return false;
		for (k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
		    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * Every string of an accepted message, at any depth, is valid UTF-8 and
 * no field is over the largest bound of msg.h.
 */
static void
fuzz_check_fields(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	const char *base = (const char *)m, *p;
	size_t i, j, n;

	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		p = base + f->offset;
		n = 1;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(base + f->quantifier_offset);
			assert(n <= MSG_LIST_NAMES_MAX);
			p = *(const char *const *)p;
		}
		for (j = 0; j < n; j++) {
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *str = ((char *const *)p)[j];

				assert(str == NULL ||
				    (strlen(str) <= MSG_LIST_NAMES_MAX &&
				    fuzz_utf8((const void *)str, strlen(str))));
			} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
				assert(((const ProtobufCBinaryData *)p)[j].len <=
				    MSG_DATA_MAX);
			} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessage *sub =
				    ((ProtobufCMessage *const *)p)[j];

				if (sub != NULL)
					fuzz_check_fields(sub);
			}
		}
	}
}

/* What a message msg_check() accepted may be relied on to be. */
static void
fuzz_check_bounds(const ProtobufCMessage *m)
{
	size_t i;

	fuzz_check_fields(m);
	if (m->descriptor == &resbus__v1__ticket_request__descriptor) {
		const Resbus__V1__TicketRequest *r = (const void *)m;

		assert(strlen(r->idempotency_key) <= MSG_IDEM_KEY_MAX);
		assert(r->n_labels <= MSG_LABELS_MAX);
	} else if (m->descriptor == &resbus__v1__allocate_result__descriptor) {
		const Resbus__V1__AllocateResult *r = (const void *)m;

		assert(r->data.len <= MSG_DATA_MAX);
		if (r->resource != NULL)
			assert(r->resource->data.len <= MSG_DATA_MAX);
	} else if (m->descriptor == &resbus__v1__list_result__descriptor) {
		const Resbus__V1__ListResult *r = (const void *)m;

		assert(r->n_names <= MSG_LIST_NAMES_MAX);
		/* Each one a resource name. */
		for (i = 0; i < r->n_names; i++)
			assert(strlen(r->names[i]) <= MSG_NAME_MAX);
	}
}

static void
fuzz_on_message(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const char *type = ctx;

	char err[256];

	assert(strcmp(msg_type(m), type) == 0);
	/* msg_dispatch() hands over only what msg_check() passed. */
	assert(msg_check(m, err, sizeof(err)) == 0);
	fuzz_check_bounds(m);
	fuzz_roundtrip(m);
	*(int *)arg = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *type;
	ProtobufCMessage *m;
	char err[256];
	int ran = 0;

	if (size < 1)
		return 0;
	fuzz_table_init();
	type = fuzz_types[data[0] % FUZZ_NTYPES]->name;
	data++;
	size--;
	if (msg_dispatch(fuzz_table, type, data, size, (void *)type,
	    &ran) == 0) {
		assert(ran && size <= MSG_MAX_BYTES);
		return 0;
	}
	assert(!ran);
	/*
	 * msg_dispatch() refused what msg_unpack() decodes only when it is
	 * too big or fails msg_check().
	 */
	if ((m = msg_unpack(type, data, size)) != NULL) {
		err[0] = '\0';
		assert(size > MSG_MAX_BYTES ||
		    msg_check(m, err, sizeof(err)) == -1);
		assert(size > MSG_MAX_BYTES || err[0] != '\0');
		fuzz_roundtrip(m);
		msg_free(m);
	}
	return 0;
}
