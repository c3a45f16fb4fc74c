/*
 * Unit tests of msg: messages survive msg_pack/msg_unpack unchanged, are
 * named by their full protobuf name, garbage and unknown types decode to
 * nothing, and msg_dispatch runs the handler of the message's type only.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* protobuf-c's messages take char * for their strings; these tests fill
 * them from string literals, which they never write to. */
#pragma GCC diagnostic ignored "-Wdiscarded-qualifiers"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_type_names)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__AllocateResult res = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__TicketUpdate upd = RESBUS__V1__TICKET_UPDATE__INIT;
	Resbus__V1__Delete del = RESBUS__V1__DELETE__INIT;

	ck_assert_str_eq(msg_type(&req.base), "resbus.v1.TicketRequest");
	ck_assert_str_eq(msg_type(&res.base), "resbus.v1.AllocateResult");
	ck_assert_str_eq(msg_type(&upd.base), "resbus.v1.TicketUpdate");
	ck_assert_str_eq(msg_type(&del.base), "resbus.v1.Delete");

	ck_assert_str_eq(msg_ticket_state_name(
			     RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN),
	    "OPEN");
	ck_assert_str_eq(msg_ticket_state_name(
			     RESBUS__V1__TICKET_STATE__TICKET_STATE_READY),
	    "READY");
	ck_assert_str_eq(msg_ticket_state_name(
			     RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED),
	    "FAILED");
	ck_assert_str_eq(msg_ticket_state_name(
			     RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED),
	    "CLOSED");
}
END_TEST

START_TEST(test_ticket_request_round_trip)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__TicketRequest *got;
	ProtobufCMessage *m;
	char *tags[] = { "arch=x86_64", "beefy", "os:fedora-39" };
	void *buf;
	size_t len, i;

	req.idempotency_key = "5f0c3a52-9d1e-4c86-a3c2-2f4f1e7b9a10";
	req.tags = tags;
	req.n_tags = NELEM(tags);
	req.sandbox = "alice/project--fedora-39-x86_64";
	buf = msg_pack(&req.base, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_eq(len, protobuf_c_message_get_packed_size(&req.base));

	m = msg_unpack("resbus.v1.TicketRequest", buf, len);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(m->descriptor, &resbus__v1__ticket_request__descriptor);
	got = (Resbus__V1__TicketRequest *)m;
	ck_assert_str_eq(got->idempotency_key, req.idempotency_key);
	ck_assert_str_eq(got->sandbox, req.sandbox);
	ck_assert_uint_eq(got->n_tags, NELEM(tags));
	for (i = 0; i < NELEM(tags); i++)
		ck_assert_str_eq(got->tags[i], tags[i]);
	msg_free(m);
	free(buf);

	/* an all-default message packs to nothing and still decodes */
	{
		Resbus__V1__TicketRequest empty =
		    RESBUS__V1__TICKET_REQUEST__INIT;

		buf = msg_pack(&empty.base, &len);
		ck_assert_uint_eq(len, 0);
		m = msg_unpack("resbus.v1.TicketRequest", buf, len);
		ck_assert_ptr_nonnull(m);
		got = (Resbus__V1__TicketRequest *)m;
		ck_assert_uint_eq(got->n_tags, 0);
		ck_assert_str_eq(got->sandbox, "");
		msg_free(m);
		free(buf);
	}
}
END_TEST

START_TEST(test_allocate_result_round_trip)
{
	Resbus__V1__AllocateResult res = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;
	Resbus__V1__NamedCounter c1 = RESBUS__V1__NAMED_COUNTER__INIT;
	Resbus__V1__NamedCounter c2 = RESBUS__V1__NAMED_COUNTER__INIT;
	Resbus__V1__NamedCounter *counters[] = { &c1, &c2 };
	Resbus__V1__AllocateResult *got;
	ProtobufCMessage *m;
	/* binary data with a NUL in it */
	static const uint8_t out[] = { '1', '0', '.', '0', 0, 0xff, '\n' };
	static const uint8_t refdata[] = { 'v', 'm' };
	void *buf;
	size_t len;

	c1.name = "elastic_ip";
	c1.value = 7;
	c2.name = "slot";
	c2.value = 0;
	ref.resource_id = UINT64_C(1) << 40;
	ref.pool = "copr_x86";
	ref.name = "copr_x86_00000042_20260101_120000";
	ref.id_in_pool = 3;
	ref.counters = counters;
	ref.n_counters = NELEM(counters);
	ref.data.data = (uint8_t *)refdata;
	ref.data.len = sizeof(refdata);
	res.resource = &ref;
	res.ok = 1;
	res.exit_status = -1;
	res.data.data = (uint8_t *)out;
	res.data.len = sizeof(out);
	res.worker = "worker-1.example.com";
	res.duration_ms = 123456;
	res.timed_out = 1;

	buf = msg_pack(&res.base, &len);
	m = msg_unpack("resbus.v1.AllocateResult", buf, len);
	ck_assert_ptr_nonnull(m);
	got = (Resbus__V1__AllocateResult *)m;
	ck_assert_ptr_nonnull(got->resource);
	ck_assert_uint_eq(got->resource->resource_id, UINT64_C(1) << 40);
	ck_assert_str_eq(got->resource->pool, "copr_x86");
	ck_assert_str_eq(got->resource->name, ref.name);
	ck_assert_int_eq(got->resource->id_in_pool, 3);
	ck_assert_uint_eq(got->resource->n_counters, 2);
	ck_assert_str_eq(got->resource->counters[0]->name, "elastic_ip");
	ck_assert_uint_eq(got->resource->counters[0]->value, 7);
	ck_assert_str_eq(got->resource->counters[1]->name, "slot");
	ck_assert_uint_eq(got->resource->counters[1]->value, 0);
	ck_assert_uint_eq(got->resource->data.len, sizeof(refdata));
	ck_assert(memcmp(got->resource->data.data, refdata, sizeof(refdata)) ==
	    0);
	ck_assert(got->ok);
	ck_assert_int_eq(got->exit_status, -1);
	ck_assert_uint_eq(got->data.len, sizeof(out));
	ck_assert(memcmp(got->data.data, out, sizeof(out)) == 0);
	ck_assert_str_eq(got->worker, "worker-1.example.com");
	ck_assert_uint_eq(got->duration_ms, 123456);
	ck_assert(got->timed_out);
	msg_free(m);
	free(buf);
}
END_TEST

START_TEST(test_unpack_garbage)
{
	/* field 1 with wire type 7, which does not exist */
	static const uint8_t bad_wire[] = { 0x0f, 0x01 };
	/* field 1, length 16, but only 2 bytes follow */
	static const uint8_t truncated[] = { 0x0a, 0x10, 'a', 'b' };
	/* a varint that never ends */
	static const uint8_t endless[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const struct {
		const void *data;
		size_t len;
	} garbage[] = {
		{ bad_wire, sizeof(bad_wire) },
		{ truncated, sizeof(truncated) },
		{ endless, sizeof(endless) },
	};
	size_t i;

	for (i = 0; i < NELEM(garbage); i++) {
		ck_assert_msg(msg_unpack("resbus.v1.TicketRequest",
				  garbage[i].data, garbage[i].len) == NULL,
		    "garbage %zu decoded as TicketRequest", i);
		ck_assert_msg(msg_unpack("resbus.v1.AllocateResult",
				  garbage[i].data, garbage[i].len) == NULL,
		    "garbage %zu decoded as AllocateResult", i);
	}
}
END_TEST

START_TEST(test_unpack_unknown_type)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	char *tags[] = { "a" };
	void *buf;
	size_t len;

	req.tags = tags;
	req.n_tags = 1;
	buf = msg_pack(&req.base, &len);
	/* a good body under a name that is not ours */
	ck_assert_ptr_null(msg_unpack("resbus.v1.NoSuchMessage", buf, len));
	ck_assert_ptr_null(msg_unpack("TicketRequest", buf, len));
	ck_assert_ptr_null(msg_unpack("resbus.v1.ticketrequest", buf, len));
	ck_assert_ptr_null(msg_unpack("", buf, len));
	ck_assert_ptr_null(msg_unpack(NULL, buf, len));
	free(buf);
	msg_free(NULL);
}
END_TEST

/* What the dispatch handlers saw. */
struct seen {
	int requests;
	int results;
	void *arg;
	char tag[32];
	int32_t exit_status;
};

static void
on_request(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__TicketRequest *req =
	    (const Resbus__V1__TicketRequest *)m;
	struct seen *seen = ctx;

	ck_assert_ptr_eq(m->descriptor,
	    &resbus__v1__ticket_request__descriptor);
	seen->requests++;
	seen->arg = arg;
	if (req->n_tags > 0)
		strncpy(seen->tag, req->tags[0], sizeof(seen->tag) - 1);
}

static void
on_result(const ProtobufCMessage *m, void *ctx, void *arg)
{
	const Resbus__V1__AllocateResult *res =
	    (const Resbus__V1__AllocateResult *)m;
	struct seen *seen = ctx;

	ck_assert_ptr_eq(m->descriptor,
	    &resbus__v1__allocate_result__descriptor);
	seen->results++;
	seen->arg = arg;
	seen->exit_status = res->exit_status;
}

static const struct msg_handler handlers[] = {
	{ &resbus__v1__ticket_request__descriptor, on_request },
	{ &resbus__v1__allocate_result__descriptor, on_result },
	{ NULL, NULL },
};

START_TEST(test_dispatch)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__AllocateResult res = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__TicketClose close_ = RESBUS__V1__TICKET_CLOSE__INIT;
	struct seen seen;
	char *tags[] = { "gpu" };
	int arg1, arg2;
	void *rbuf, *abuf, *cbuf;
	size_t rlen, alen, clen;

	memset(&seen, 0, sizeof(seen));
	req.tags = tags;
	req.n_tags = 1;
	res.exit_status = 42;
	close_.ticket_id = 9;
	rbuf = msg_pack(&req.base, &rlen);
	abuf = msg_pack(&res.base, &alen);
	cbuf = msg_pack(&close_.base, &clen);

	ck_assert_int_eq(msg_dispatch(handlers, msg_type(&req.base), rbuf,
			     rlen, &seen, &arg1),
	    0);
	ck_assert_int_eq(seen.requests, 1);
	ck_assert_int_eq(seen.results, 0);
	ck_assert_ptr_eq(seen.arg, &arg1);
	ck_assert_str_eq(seen.tag, "gpu");

	ck_assert_int_eq(msg_dispatch(handlers, "resbus.v1.AllocateResult",
			     abuf, alen, &seen, &arg2),
	    0);
	ck_assert_int_eq(seen.requests, 1);
	ck_assert_int_eq(seen.results, 1);
	ck_assert_ptr_eq(seen.arg, &arg2);
	ck_assert_int_eq(seen.exit_status, 42);

	/* a type of ours that the table has no handler for */
	ck_assert_int_eq(msg_dispatch(handlers, "resbus.v1.TicketClose", cbuf,
			     clen, &seen, NULL),
	    -1);
	/* a type nobody knows, and no type at all */
	ck_assert_int_eq(msg_dispatch(handlers, "resbus.v1.Bogus", rbuf, rlen,
			     &seen, NULL),
	    -1);
	ck_assert_int_eq(msg_dispatch(handlers, NULL, rbuf, rlen, &seen,
			     NULL),
	    -1);
	/* a known type whose body does not decode */
	ck_assert_int_eq(msg_dispatch(handlers, "resbus.v1.TicketRequest",
			     "\x0f\x01", 2, &seen, NULL),
	    -1);
	ck_assert_int_eq(seen.requests, 1);
	ck_assert_int_eq(seen.results, 1);

	free(rbuf);
	free(abuf);
	free(cbuf);
}
END_TEST

/* What the checks refuse: what once stalled or crash-looped resbusd. */
START_TEST(test_check_bounds)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__AllocateResult res = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__ListResult list = RESBUS__V1__LIST_RESULT__INIT;
	Resbus__V1__TicketRequest__LabelsEntry entries[MSG_LABELS_MAX + 1];
	Resbus__V1__TicketRequest__LabelsEntry *labels[MSG_LABELS_MAX + 1];
	static char *names[MSG_LIST_NAMES_MAX + 1];
	char *tags[] = { "gpu" };
	char err[256], key[MSG_IDEM_KEY_MAX + 2];
	static uint8_t data[MSG_DATA_MAX + 1];
	struct seen seen;
	void *buf;
	size_t i, len;

	req.tags = tags;
	req.n_tags = 1;
	req.idempotency_key = "k-\xff\xfe";
	ck_assert_int_eq(msg_check(&req.base, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "idempotency_key") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "UTF-8") != NULL, "%s", err);
	/* overlong and surrogate encodings are not UTF-8 either */
	ck_assert(!msg_utf8_valid("\xc0\xaf", 2));
	ck_assert(!msg_utf8_valid("\xed\xa0\x80", 3));
	ck_assert(!msg_utf8_valid("\xe2\x82", 2));
	ck_assert(msg_utf8_valid("\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", 10));

	memset(key, 'k', sizeof(key));
	key[MSG_IDEM_KEY_MAX] = '\0';
	req.idempotency_key = key;
	ck_assert_int_eq(msg_check(&req.base, err, sizeof(err)), 0);
	key[MSG_IDEM_KEY_MAX] = 'k';
	key[MSG_IDEM_KEY_MAX + 1] = '\0';
	ck_assert_int_eq(msg_check(&req.base, err, sizeof(err)), -1);
	req.idempotency_key = "k";

	for (i = 0; i < NELEM(entries); i++) {
		resbus__v1__ticket_request__labels_entry__init(&entries[i]);
		entries[i].key = "owner";
		entries[i].value = "alice";
		labels[i] = &entries[i];
	}
	req.labels = labels;
	req.n_labels = MSG_LABELS_MAX;
	ck_assert_int_eq(msg_check(&req.base, err, sizeof(err)), 0);
	req.n_labels = MSG_LABELS_MAX + 1;
	ck_assert_int_eq(msg_check(&req.base, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "labels") != NULL, "%s", err);

	/* a refused message never reaches its handler */
	memset(&seen, 0, sizeof(seen));
	buf = msg_pack(&req.base, &len);
	ck_assert_int_eq(msg_dispatch_err(handlers, msg_type(&req.base), buf,
			     len, &seen, NULL, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(seen.requests, 0);
	free(buf);

	res.data.data = data;
	res.data.len = MSG_DATA_MAX;
	ck_assert_int_eq(msg_check(&res.base, err, sizeof(err)), 0);
	res.data.len = MSG_DATA_MAX + 1;
	ck_assert_int_eq(msg_check(&res.base, err, sizeof(err)), -1);

	for (i = 0; i < NELEM(names); i++)
		names[i] = "vm";
	list.names = names;
	list.n_names = MSG_LIST_NAMES_MAX;
	ck_assert_int_eq(msg_check(&list.base, err, sizeof(err)), 0);
	list.n_names = MSG_LIST_NAMES_MAX + 1;
	ck_assert_int_eq(msg_check(&list.base, err, sizeof(err)), -1);
	/* each name is bounded by itself, not by the count of names */
	{
		char name[MSG_NAME_MAX + 2];

		memset(name, 'n', sizeof(name));
		name[MSG_NAME_MAX] = '\0';
		names[0] = name;
		list.n_names = 1;
		ck_assert_int_eq(msg_check(&list.base, err, sizeof(err)), 0);
		name[MSG_NAME_MAX] = 'n';
		name[MSG_NAME_MAX + 1] = '\0';
		ck_assert_int_eq(msg_check(&list.base, err, sizeof(err)), -1);
		names[0] = "vm";
	}

	/* a body past MSG_MAX_BYTES is not even decoded */
	buf = calloc(1, MSG_MAX_BYTES + 1);
	ck_assert_int_eq(msg_dispatch_err(handlers, "resbus.v1.TicketRequest",
			     buf, MSG_MAX_BYTES + 1, &seen, NULL, err,
			     sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "more than") != NULL, "%s", err);
	free(buf);
}
END_TEST

static Suite *
msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");

	tcase_add_test(tc, test_type_names);
	tcase_add_test(tc, test_ticket_request_round_trip);
	tcase_add_test(tc, test_allocate_result_round_trip);
	tcase_add_test(tc, test_unpack_garbage);
	tcase_add_test(tc, test_check_bounds);
	tcase_add_test(tc, test_unpack_unknown_type);
	tcase_add_test(tc, test_dispatch);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
