/*
 * bus_methods -- the AMQP methods made on a bus connection.
 *
 * Exchange and queue declarations (bounded, quorum, passive on the probe
 * channel), bindings, qos, consumers, publisher confirms, publishing
 * with properties and headers, ack and reject.  RPCs wait for their
 * answer and check it with bus_check(); the nowait variants only send
 * the method, and a refusal arrives later on the channel, read by
 * bus_poll() in lib/bus.c.
 *
 * Channel 1 carries everything that matters.  Passive declarations, which
 * close their channel when the queue is missing, go to channel 2 so that
 * a failed probe never tears down consumers or confirm mode.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_priv.h"
#include "msg.h"
#include "util.h"

int
bus_exchange_declare(struct bus *bus, const char *name, const char *type,
    bool durable, const char *alternate_exchange)
{
	amqp_table_entry_t arg;
	amqp_table_t args = amqp_empty_table;

	if (alternate_exchange != NULL) {
		arg.key = amqp_cstring_bytes("alternate-exchange");
		arg.value.kind = AMQP_FIELD_KIND_UTF8;
		arg.value.value.bytes = amqp_cstring_bytes(alternate_exchange);
		args.num_entries = 1;
		args.entries = &arg;
	}
	amqp_exchange_declare(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(name),
	    amqp_cstring_bytes(type), 0, durable, 0, 0, args);
	return bus_check(bus, "exchange.declare", BUS_CHANNEL);
}

int
bus_queue_declare(struct bus *bus, const char *name, unsigned flags,
    char **actual, uint32_t *messages, uint32_t *consumers)
{
	amqp_table_entry_t arg;
	amqp_table_t args = amqp_empty_table;
	amqp_queue_declare_ok_t *ok;
	amqp_channel_t ch = BUS_CHANNEL;

	if (flags & BUS_PASSIVE) {
		ch = BUS_PROBE_CHANNEL;
		if (!bus->probe_open) {
			amqp_channel_open(bus->conn, ch);
			if (bus_check(bus, "channel.open", ch) == -1)
				return -1;
			bus->probe_open = true;
		}
	}
	if (flags & BUS_QUORUM) {
		arg.key = amqp_cstring_bytes("x-queue-type");
		arg.value.kind = AMQP_FIELD_KIND_UTF8;
		arg.value.value.bytes = amqp_cstring_bytes("quorum");
		args.num_entries = 1;
		args.entries = &arg;
	}
	ok = amqp_queue_declare(bus->conn, ch, amqp_cstring_bytes(name),
	    (flags & BUS_PASSIVE) != 0, (flags & BUS_DURABLE) != 0,
	    (flags & BUS_EXCLUSIVE) != 0, (flags & BUS_AUTO_DELETE) != 0, args);
	if (ok == NULL) {
		(void)bus_check(bus, "queue.declare", ch);
		return -1;
	}
	if (actual != NULL)
		*actual = xstrndup(ok->queue.bytes, ok->queue.len);
	if (messages != NULL)
		*messages = ok->message_count;
	if (consumers != NULL)
		*consumers = ok->consumer_count;
	return 0;
}

/* Whether the last write of a method without an answer went out. */
static int
bus_sent(struct bus *bus, const char *what, int status)
{
	if (status == AMQP_STATUS_OK)
		return 0;
	snprintf(bus->error, sizeof(bus->error), "%s: %s", what,
	    amqp_error_string2(status));
	bus->broken = true;
	return -1;
}

int
bus_queue_declare_nowait(struct bus *bus, const char *name, unsigned flags)
{
	amqp_table_entry_t arg;
	amqp_queue_declare_t m;

	memset(&m, 0, sizeof(m));
	m.queue = amqp_cstring_bytes(name);
	m.durable = (flags & BUS_DURABLE) != 0;
	m.exclusive = (flags & BUS_EXCLUSIVE) != 0;
	m.auto_delete = (flags & BUS_AUTO_DELETE) != 0;
	m.nowait = 1;
	m.arguments = amqp_empty_table;
	if (flags & BUS_QUORUM) {
		arg.key = amqp_cstring_bytes("x-queue-type");
		arg.value.kind = AMQP_FIELD_KIND_UTF8;
		arg.value.value.bytes = amqp_cstring_bytes("quorum");
		m.arguments.num_entries = 1;
		m.arguments.entries = &arg;
	}
	return bus_sent(bus, "queue.declare",
	    amqp_send_method(
		bus->conn, BUS_CHANNEL, AMQP_QUEUE_DECLARE_METHOD, &m));
}

int
bus_queue_bind_nowait(
    struct bus *bus, const char *queue, const char *exchange, const char *key)
{
	amqp_queue_bind_t m;

	memset(&m, 0, sizeof(m));
	m.queue = amqp_cstring_bytes(queue);
	m.exchange = amqp_cstring_bytes(exchange);
	m.routing_key = amqp_cstring_bytes(key);
	m.nowait = 1;
	m.arguments = amqp_empty_table;
	return bus_sent(bus, "queue.bind",
	    amqp_send_method(
		bus->conn, BUS_CHANNEL, AMQP_QUEUE_BIND_METHOD, &m));
}

int
bus_queue_declare_bounded(struct bus *bus, const char *name, int64_t max_length,
    int64_t max_bytes, unsigned flags)
{
	amqp_table_entry_t arg[3];
	amqp_table_t args;

	arg[0].key = amqp_cstring_bytes("x-max-length");
	arg[0].value.kind = AMQP_FIELD_KIND_I64;
	arg[0].value.value.i64 = max_length;
	arg[1].key = amqp_cstring_bytes("x-max-length-bytes");
	arg[1].value.kind = AMQP_FIELD_KIND_I64;
	arg[1].value.value.i64 = max_bytes;
	args.num_entries = 2;
	args.entries = arg;
	/* Quorum queues bound their length the same way (drop-head). */
	if (flags & BUS_QUORUM) {
		arg[2].key = amqp_cstring_bytes("x-queue-type");
		arg[2].value.kind = AMQP_FIELD_KIND_UTF8;
		arg[2].value.value.bytes = amqp_cstring_bytes("quorum");
		args.num_entries = 3;
	}
	if (amqp_queue_declare(bus->conn, BUS_CHANNEL, amqp_cstring_bytes(name),
		0, 1, 0, 0, args) == NULL) {
		(void)bus_check(bus, "queue.declare", BUS_CHANNEL);
		return -1;
	}
	return 0;
}

int
bus_queue_delete_if_idle(struct bus *bus, const char *queue)
{
	amqp_rpc_reply_t r;

	/* On the probe channel: a refusal (not empty) closes only that. */
	if (!bus->probe_open) {
		amqp_channel_open(bus->conn, BUS_PROBE_CHANNEL);
		if (bus_check(bus, "channel.open", BUS_PROBE_CHANNEL) == -1)
			return -1;
		bus->probe_open = true;
	}
	if (amqp_queue_delete(bus->conn, BUS_PROBE_CHANNEL,
		amqp_cstring_bytes(queue), 1, 1) != NULL)
		return 0;
	r = amqp_get_rpc_reply(bus->conn);
	(void)bus_check(bus, "queue.delete", BUS_PROBE_CHANNEL);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD && !bus->broken)
		return 1;
	return -1;
}

/* queue.bind, or queue.unbind if !BIND, of QUEUE to EXCHANGE with KEY. */
static int
bus_queue_binding(struct bus *bus, bool bind, const char *queue,
    const char *exchange, const char *key)
{
	amqp_bytes_t q = amqp_cstring_bytes(queue);
	amqp_bytes_t x = amqp_cstring_bytes(exchange);
	amqp_bytes_t k = amqp_cstring_bytes(key);

	if (bind)
		amqp_queue_bind(
		    bus->conn, BUS_CHANNEL, q, x, k, amqp_empty_table);
	else
		amqp_queue_unbind(
		    bus->conn, BUS_CHANNEL, q, x, k, amqp_empty_table);
	return bus_check(
	    bus, bind ? "queue.bind" : "queue.unbind", BUS_CHANNEL);
}

int
bus_queue_bind(
    struct bus *bus, const char *queue, const char *exchange, const char *key)
{
	return bus_queue_binding(bus, true, queue, exchange, key);
}

int
bus_queue_unbind(
    struct bus *bus, const char *queue, const char *exchange, const char *key)
{
	return bus_queue_binding(bus, false, queue, exchange, key);
}

int
bus_qos(struct bus *bus, uint16_t prefetch)
{
	amqp_basic_qos(bus->conn, BUS_CHANNEL, 0, prefetch, 0);
	return bus_check(bus, "basic.qos", BUS_CHANNEL);
}

int
bus_consume(struct bus *bus, const char *queue, bool no_ack, bus_deliver_fn *fn,
    void *arg)
{
	amqp_basic_consume_ok_t *ok;

	ok = amqp_basic_consume(bus->conn, BUS_CHANNEL,
	    amqp_cstring_bytes(queue), amqp_empty_bytes, 0, no_ack, 0,
	    amqp_empty_table);
	if (ok == NULL) {
		(void)bus_check(bus, "basic.consume", BUS_CHANNEL);
		return -1;
	}
	bus_consumer_add(
	    bus, ok->consumer_tag.bytes, ok->consumer_tag.len, queue, fn, arg);
	return 0;
}

int
bus_consume_nowait(struct bus *bus, const char *queue, bool no_ack,
    bus_deliver_fn *fn, void *arg)
{
	amqp_basic_consume_t m;
	char tag[64];

	/* RabbitMQ's own tags are "amq.ctag-..."; ours cannot clash. */
	snprintf(tag, sizeof(tag), "resbus-%zu-%llu", bus->nconsumers,
	    (unsigned long long)bus->next_tag++);
	memset(&m, 0, sizeof(m));
	m.queue = amqp_cstring_bytes(queue);
	m.consumer_tag = amqp_cstring_bytes(tag);
	m.no_ack = no_ack;
	m.nowait = 1;
	m.arguments = amqp_empty_table;
	if (bus_sent(bus, "basic.consume",
		amqp_send_method(bus->conn, BUS_CHANNEL,
		    AMQP_BASIC_CONSUME_METHOD, &m)) == -1)
		return -1;
	bus_consumer_add(bus, tag, strlen(tag), queue, fn, arg);
	return 0;
}

/*
 * Stops the consumer of QUEUE.  Its entry stays: deliveries RabbitMQ sent
 * before the cancel still reach its function, which must hand them back.
 */
int
bus_cancel(struct bus *bus, const char *queue)
{
	struct bus_consumer *c;
	size_t i;

	for (i = 0; i < bus->nconsumers; i++) {
		c = &bus->consumers[i];
		if (c->cancelled || strcmp(c->queue, queue) != 0)
			continue;
		c->cancelled = true;
		amqp_basic_cancel(
		    bus->conn, BUS_CHANNEL, amqp_cstring_bytes(c->tag));
		return bus_check(bus, "basic.cancel", BUS_CHANNEL);
	}
	snprintf(bus->error, sizeof(bus->error),
	    "basic.cancel: no consumer of %s", queue);
	return -1;
}

int
bus_confirm_select(struct bus *bus, bus_confirm_fn *fn, void *arg)
{
	amqp_confirm_select(bus->conn, BUS_CHANNEL);
	if (bus_check(bus, "confirm.select", BUS_CHANNEL) == -1)
		return -1;
	bus->confirming = true;
	bus->confirm_fn = fn;
	bus->confirm_arg = arg;
	return 0;
}

static void
bus_fill_headers(amqp_table_t *t, amqp_table_entry_t *e,
    const struct bus_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		e[i].key = amqp_cstring_bytes(h[i].key);
		switch (h[i].kind) {
		case BUS_HDR_STRING:
			e[i].value.kind = AMQP_FIELD_KIND_UTF8;
			e[i].value.value.bytes = amqp_cstring_bytes(h[i].s);
			break;
		case BUS_HDR_INT:
			e[i].value.kind = AMQP_FIELD_KIND_I64;
			e[i].value.value.i64 = h[i].i;
			break;
		case BUS_HDR_BOOL:
			e[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
			e[i].value.value.boolean = h[i].i != 0;
			break;
		}
	}
	t->num_entries = (int)n;
	t->entries = e;
}

int
bus_publish(struct bus *bus, const char *exchange, const char *key,
    const struct bus_props *props, const void *body, size_t len, uint64_t *seq)
{
	amqp_basic_properties_t p;
	amqp_table_entry_t entries[16];
	amqp_bytes_t b;
	int status;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.content_type = amqp_cstring_bytes(
	    props->content_type ? props->content_type : MSG_CONTENT_TYPE);
	p.delivery_mode = props->persistent ? 2 : 1;
	if (props->content_encoding != NULL) {
		p._flags |= AMQP_BASIC_CONTENT_ENCODING_FLAG;
		p.content_encoding =
		    amqp_cstring_bytes(props->content_encoding);
	}
	if (props->type != NULL) {
		p._flags |= AMQP_BASIC_TYPE_FLAG;
		p.type = amqp_cstring_bytes(props->type);
	}
	if (props->reply_to != NULL) {
		p._flags |= AMQP_BASIC_REPLY_TO_FLAG;
		p.reply_to = amqp_cstring_bytes(props->reply_to);
	}
	if (props->correlation_id != NULL) {
		p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		p.correlation_id = amqp_cstring_bytes(props->correlation_id);
	}
	if (props->message_id != NULL) {
		p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p.message_id = amqp_cstring_bytes(props->message_id);
	}
	if (props->user_id != NULL) {
		p._flags |= AMQP_BASIC_USER_ID_FLAG;
		p.user_id = amqp_cstring_bytes(props->user_id);
	}
	if (props->has_priority) {
		p._flags |= AMQP_BASIC_PRIORITY_FLAG;
		p.priority = props->priority;
	}
	if (props->nheaders > 0) {
		if (props->nheaders > sizeof(entries) / sizeof(entries[0])) {
			snprintf(bus->error, sizeof(bus->error),
			    "basic.publish: too many headers");
			return -1;
		}
		p._flags |= AMQP_BASIC_HEADERS_FLAG;
		bus_fill_headers(
		    &p.headers, entries, props->headers, props->nheaders);
	}
	b.bytes = (void *)body;
	b.len = len;
	status = amqp_basic_publish(bus->conn, BUS_CHANNEL,
	    amqp_cstring_bytes(exchange ? exchange : ""),
	    amqp_cstring_bytes(key), 0, 0, &p, b);
	if (status != AMQP_STATUS_OK) {
		snprintf(bus->error, sizeof(bus->error), "basic.publish: %s",
		    amqp_error_string2(status));
		bus->broken = true;
		return -1;
	}
	if (seq != NULL)
		*seq = bus->confirming ? bus->next_seq : 0;
	if (bus->confirming)
		bus->next_seq++;
	return 0;
}

int
bus_ack(struct bus *bus, uint64_t delivery_tag)
{
	int status = amqp_basic_ack(bus->conn, BUS_CHANNEL, delivery_tag, 0);

	if (status != AMQP_STATUS_OK) {
		snprintf(bus->error, sizeof(bus->error), "basic.ack: %s",
		    amqp_error_string2(status));
		bus->broken = true;
		return -1;
	}
	return 0;
}

int
bus_reject(struct bus *bus, uint64_t delivery_tag, bool requeue)
{
	int status =
	    amqp_basic_reject(bus->conn, BUS_CHANNEL, delivery_tag, requeue);

	if (status != AMQP_STATUS_OK) {
		snprintf(bus->error, sizeof(bus->error), "basic.reject: %s",
		    amqp_error_string2(status));
		bus->broken = true;
		return -1;
	}
	return 0;
}
