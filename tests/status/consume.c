/*
 * consume -- a test helper: binds a fresh exclusive queue to an exchange
 * and prints each message it receives as one JSON line with its routing
 * key, its AMQP properties, its headers (typed as AMQP typed them) and
 * its body, so that a scenario test can check what a fedora-messaging
 * listener would see.  amqp-consume(1) shows bodies only.
 *
 *   consume URL EXCHANGE BINDING_KEY COUNT TIMEOUT_S
 *
 * Prints "bound" on stderr once the queue is bound, then COUNT lines on
 * stdout; exits 0 after COUNT messages, 2 when TIMEOUT_S pass first, 1
 * on errors.  URL is parsed by librabbitmq-c (amqp://user:pw@host:port/
 * vhost, vhost percent-encoded).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

#include <json-c/json.h>

static void
check_reply(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return;
	fprintf(stderr, "consume: %s failed (reply type %d)\n", what,
	    (int)r.reply_type);
	exit(1);
}

static json_object *
bytes_json(amqp_bytes_t b)
{
	return json_object_new_string_len(b.bytes ? b.bytes : "",
	    (int)b.len);
}

static json_object *
field_json(const amqp_field_value_t *v)
{
	char kind[32];

	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		return bytes_json(v->value.bytes);
	case AMQP_FIELD_KIND_BOOLEAN:
		return json_object_new_boolean(v->value.boolean != 0);
	case AMQP_FIELD_KIND_I8:
		return json_object_new_int64(v->value.i8);
	case AMQP_FIELD_KIND_U8:
		return json_object_new_int64(v->value.u8);
	case AMQP_FIELD_KIND_I16:
		return json_object_new_int64(v->value.i16);
	case AMQP_FIELD_KIND_U16:
		return json_object_new_int64(v->value.u16);
	case AMQP_FIELD_KIND_I32:
		return json_object_new_int64(v->value.i32);
	case AMQP_FIELD_KIND_U32:
		return json_object_new_int64(v->value.u32);
	case AMQP_FIELD_KIND_I64:
		return json_object_new_int64(v->value.i64);
	default:
		snprintf(kind, sizeof(kind), "<AMQP field kind %d>", v->kind);
		return json_object_new_string(kind);
	}
}

/* The AMQP type of a header, so a test can check "an integer". */
static const char *
field_kind(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8: return "string";
	case AMQP_FIELD_KIND_BYTES: return "bytes";
	case AMQP_FIELD_KIND_BOOLEAN: return "bool";
	case AMQP_FIELD_KIND_I8: case AMQP_FIELD_KIND_U8:
	case AMQP_FIELD_KIND_I16: case AMQP_FIELD_KIND_U16:
	case AMQP_FIELD_KIND_I32: case AMQP_FIELD_KIND_U32:
	case AMQP_FIELD_KIND_I64: return "int";
	default: return "other";
	}
}

static void
print_message(const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	json_object *o = json_object_new_object();
	json_object *h = json_object_new_object();
	json_object *hk = json_object_new_object();
	char *key;
	int i;

	json_object_object_add(o, "exchange", bytes_json(env->exchange));
	json_object_object_add(o, "routing_key", bytes_json(env->routing_key));
	if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		json_object_object_add(o, "content_type",
		    bytes_json(p->content_type));
	if (p->_flags & AMQP_BASIC_CONTENT_ENCODING_FLAG)
		json_object_object_add(o, "content_encoding",
		    bytes_json(p->content_encoding));
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		json_object_object_add(o, "delivery_mode",
		    json_object_new_int(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		json_object_object_add(o, "message_id",
		    bytes_json(p->message_id));
	if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
		json_object_object_add(o, "priority",
		    json_object_new_int(p->priority));
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
		for (i = 0; i < p->headers.num_entries; i++) {
			const amqp_table_entry_t *e = &p->headers.entries[i];

			key = strndup(e->key.bytes, e->key.len);
			if (key == NULL)
				exit(1);
			json_object_object_add(h, key, field_json(&e->value));
			json_object_object_add(hk, key,
			    json_object_new_string(field_kind(&e->value)));
			free(key);
		}
	}
	json_object_object_add(o, "headers", h);
	json_object_object_add(o, "header_kinds", hk);
	json_object_object_add(o, "body", bytes_json(env->message.body));
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

int
main(int argc, char **argv)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	amqp_queue_declare_ok_t *q;
	amqp_bytes_t qname;
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	struct timeval tv, start, now;
	char *url;
	long count, got = 0, timeout_s;

	if (argc != 6) {
		fprintf(stderr, "usage: consume URL EXCHANGE BINDING_KEY "
		    "COUNT TIMEOUT_S\n");
		return 1;
	}
	count = strtol(argv[4], NULL, 10);
	timeout_s = strtol(argv[5], NULL, 10);
	url = strdup(argv[1]);
	if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "consume: bad URL\n");
		return 1;
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (sock == NULL || amqp_socket_open(sock, ci.host, ci.port) != 0) {
		fprintf(stderr, "consume: cannot connect\n");
		return 1;
	}
	check_reply(amqp_login(conn, ci.vhost, 0, 131072, 0,
	    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password), "login");
	amqp_channel_open(conn, 1);
	check_reply(amqp_get_rpc_reply(conn), "channel.open");
	q = amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, 0, 1, 1,
	    amqp_empty_table);
	check_reply(amqp_get_rpc_reply(conn), "queue.declare");
	qname = amqp_bytes_malloc_dup(q->queue);
	amqp_queue_bind(conn, 1, qname, amqp_cstring_bytes(argv[2]),
	    amqp_cstring_bytes(argv[3]), amqp_empty_table);
	check_reply(amqp_get_rpc_reply(conn), "queue.bind");
	amqp_basic_consume(conn, 1, qname, amqp_empty_bytes, 0, 1, 0,
	    amqp_empty_table);
	check_reply(amqp_get_rpc_reply(conn), "basic.consume");
	fprintf(stderr, "bound\n");
	gettimeofday(&start, NULL);
	while (got < count) {
		gettimeofday(&now, NULL);
		if (now.tv_sec - start.tv_sec >= timeout_s) {
			fprintf(stderr, "consume: timed out after %ld of %ld "
			    "messages\n", got, count);
			return 2;
		}
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		check_reply(r, "basic.consume");
		print_message(&env);
		amqp_destroy_envelope(&env);
		got++;
	}
	amqp_bytes_free(qname);
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(url);
	return 0;
}
