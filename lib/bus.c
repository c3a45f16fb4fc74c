/*
 * bus -- librabbitmq-c wrapped for an event loop: the connection.
 *
 * This file holds the connection's life: connecting to one node of a
 * possibly multi-node URL, the heartbeat asked for, the errors RabbitMQ
 * answers with, the consumer index, and bus_poll()'s reading and
 * dispatching.  The AMQP methods made on the connection (declare, bind,
 * consume, publish, ack and their nowait variants) are in
 * lib/bus_methods.c; what both share is in lib/bus_priv.h.
 *
 * librabbitmq-c is a blocking library, but it can be polled: with a zero
 * timeout amqp_consume_message() returns at once when no frame is ready.
 * bus_poll() therefore reads whatever is available and dispatches it:
 * deliveries to the consumer's callback, basic.ack/basic.nack to the
 * confirm callback.  RPCs (declare, bind, consume) still block, but they
 * are made at start-up or on rare events, and RabbitMQ answers them in
 * microseconds.
 *
 * A URL may list several nodes of a cluster, separated by commas;
 * bus_connect() takes the first that answers, each within a short
 * timeout, so a dead node costs a refused connection or at most
 * BUS_CONNECT_TIMEOUT_S.  Reconnecting is the caller's business (it
 * knows what to declare and consume again); bus_connect_from() starts
 * with the node after the one that was lost.
 *
 * A queue declared with the other type than it exists with (classic or
 * quorum) is refused with 406 PRECONDITION_FAILED and an "inequivalent
 * arg 'x-queue-type'" text, also later, on the channel, for a declare
 * without answer.  bus turns that into a one-line message saying what to
 * do, and bus_conflict() tells the daemons to exit with BUS_EXIT_CONFIG
 * instead of restarting into the same refusal.
 *
 * Channel 1 carries everything that matters.  Passive declarations, which
 * close their channel when the queue is missing, go to channel 2 so that
 * a failed probe never tears down consumers or confirm mode.
 *
 * Memory: frames decoded by the library live in its pools until
 * amqp_maybe_release_buffers(); bus_poll() releases them after each
 * dispatched item, so callbacks must copy what they keep.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>

#include "bus_priv.h"
#include "util.h"

/*
 * Whether a channel close (CODE, TEXT of LEN bytes) says that a queue
 * exists with another x-queue-type than declared; if so the error
 * becomes the message an operator acts on.
 */
static bool
bus_type_conflict(struct bus *bus, unsigned code, const char *text, size_t len)
{
	static const char arg[] = "inequivalent arg 'x-queue-type' for queue '";
	char buf[512], *name, *end;
	const char *existing = "classic", *declared = "quorum";

	if (code != AMQP_PRECONDITION_FAILED)
		return false;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, text);
	if ((name = strstr(buf, arg)) == NULL)
		return false;
	name += sizeof(arg) - 1;
	if ((end = strchr(name, '\'')) == NULL)
		return false;
	*end = '\0';
	if (strstr(end + 1, "current is the value 'quorum'") != NULL) {
		existing = "quorum";
		declared = "classic";
	}
	/* Set queue_type to what exists, or remove what exists. */
	snprintf(bus->error, sizeof(bus->error),
	    "queue %s exists as a %s queue (declared here as %s); delete it "
	    "or set queue_type: %s",
	    name, existing, declared, existing);
	bus->conflict = true;
	return true;
}

static void
bus_seterr(struct bus *bus, const char *what, amqp_rpc_reply_t r)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(bus->error, sizeof(bus->error), "%s", what);
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(bus->error, sizeof(bus->error), "%s: no reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(bus->error, sizeof(bus->error), "%s: %s", what,
		    amqp_error_string2(r.library_error));
		if (r.library_error != AMQP_STATUS_TIMEOUT)
			bus->broken = true;
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			snprintf(bus->error, sizeof(bus->error),
			    "%s: connection closed by server: %u %.*s", what,
			    m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
			bus->broken = true;
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			if (bus_type_conflict(bus, m->reply_code,
				m->reply_text.bytes, m->reply_text.len))
				break;
			snprintf(bus->error, sizeof(bus->error),
			    "%s: channel closed by server: %u %.*s", what,
			    m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else {
			snprintf(bus->error, sizeof(bus->error),
			    "%s: server exception 0x%08x", what, r.reply.id);
			bus->broken = true;
		}
		break;
	}
}

/* Checks the reply of the last RPC on channel CH; 0 or -1. */
int
bus_check(struct bus *bus, const char *what, amqp_channel_t ch)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(bus->conn);
	amqp_channel_close_ok_t ok;

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	bus_seterr(bus, what, r);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		(void)amqp_send_method(
		    bus->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		if (ch == BUS_PROBE_CHANNEL)
			bus->probe_open = false;
		else
			bus->broken = true;
	}
	return -1;
}

/*
 * librabbitmq-c reports a failed connect as a bare "socket error"; a
 * plain connect(2) to the same address tells the operator why.
 */
static void
bus_connect_reason(
    const char *host, int port, int status, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	char portstr[16];
	int fd, soerr = 0, gai;

	snprintf(
	    err, errlen, "%s:%d: %s", host, port, amqp_error_string2(status));
	if (status != AMQP_STATUS_SOCKET_ERROR)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((gai = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(gai));
		return;
	}
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
	if (fd != -1) {
		if (connect(fd, res->ai_addr, res->ai_addrlen) == -1)
			soerr = errno;
		if (soerr == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			soerr = poll(&pfd, 1, BUS_CONNECT_TIMEOUT_S * 1000) == 1
				    ? 0
				    : ETIMEDOUT;
			if (soerr == 0)
				(void)getsockopt(
				    fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (soerr != 0)
		snprintf(err, errlen, "%s:%d: %s", host, port, strerror(soerr));
}

/* The heartbeat asked for by connections made from now on. */
static int bus_heartbeat_s = BUS_HEARTBEAT_S;

void
bus_heartbeat_default(int seconds)
{
	bus_heartbeat_s = seconds > 0 ? seconds : BUS_HEARTBEAT_S;
}

/* Why the login to HOST:PORT, vhost VHOST, failed with R, in ERR. */
static void
bus_login_reason(struct bus *bus, amqp_rpc_reply_t r, const char *host,
    int port, const char *vhost, char *err, size_t errlen)
{
	bool closed = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		      r.library_error == AMQP_STATUS_CONNECTION_CLOSED;

	bus_seterr(bus, "login", r);
	/*
	 * A peer that closes before its connection.start (a relay with
	 * nothing behind it, a proxy, a TLS port) has refused no login.
	 */
	if (closed && amqp_get_server_properties(bus->conn)->num_entries == 0)
		snprintf(err, errlen,
		    "%s:%d closed the connection before the AMQP handshake",
		    host, port);
	else if (closed)
		snprintf(err, errlen,
		    "login refused (bad user, password or vhost \"%s\")",
		    vhost);
	else
		snprintf(err, errlen, "%s", bus->error);
}

/* Connects to the one node of URL. */
static struct bus *
bus_connect_one(const char *url, const char *name, char *err, size_t errlen)
{
	struct amqp_connection_info ci;
	amqp_table_entry_t prop;
	amqp_table_t props;
	amqp_socket_t *sock;
	struct timeval tv = {BUS_CONNECT_TIMEOUT_S, 0};
	amqp_rpc_reply_t r;
	struct bus *bus;
	char *copy;
	int status;

	copy = xstrdup(url);
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		snprintf(err, errlen,
		    "bad AMQP URL (expected "
		    "amqp://user:password@host:port/vhost)");
		free(copy);
		return NULL;
	}
	if (ci.vhost == NULL || ci.vhost[0] == '\0')
		ci.vhost = (char *)"/";

	bus = xcalloc(1, sizeof(*bus));
	bus->conn = amqp_new_connection();
	bus->next_seq = 1;
	/* A node that accepts but does not speak (stopped) is given up too. */
	(void)amqp_set_handshake_timeout(bus->conn, &tv);
	sock = ci.ssl ? amqp_ssl_socket_new(bus->conn)
		      : amqp_tcp_socket_new(bus->conn);
	if (sock == NULL) {
		snprintf(err, errlen, "cannot create a socket");
		goto fail;
	}
	if (ci.ssl) {
		amqp_ssl_socket_set_verify_peer(sock, 1);
		amqp_ssl_socket_set_verify_hostname(sock, 1);
	}
	status = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (status != AMQP_STATUS_OK) {
		bus_connect_reason(ci.host, ci.port, status, err, errlen);
		goto fail;
	}
	prop.key = amqp_cstring_bytes("connection_name");
	prop.value.kind = AMQP_FIELD_KIND_UTF8;
	prop.value.value.bytes = amqp_cstring_bytes(name ? name : "resbus");
	props.num_entries = 1;
	props.entries = &prop;
	r = amqp_login_with_properties(bus->conn, ci.vhost, 0, BUS_FRAME_MAX,
	    bus_heartbeat_s, &props, AMQP_SASL_METHOD_PLAIN, ci.user,
	    ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		bus_login_reason(
		    bus, r, ci.host, ci.port, ci.vhost, err, errlen);
		goto fail;
	}
	amqp_channel_open(bus->conn, BUS_CHANNEL);
	if (bus_check(bus, "channel.open", BUS_CHANNEL) == -1) {
		snprintf(err, errlen, "%s", bus->error);
		goto fail;
	}
	bus->user = xstrdup(ci.user);
	free(copy);
	return bus;
fail:
	amqp_destroy_connection(bus->conn);
	free(bus);
	free(copy);
	return NULL;
}

/* The host:port of node URL for messages, without credentials. */
static void
bus_node_name(const char *url, char *buf, size_t len)
{
	const char *p = url, *at, *end;

	if ((at = strstr(p, "://")) != NULL)
		p = at + 3;
	end = p + strcspn(p, "/?");
	for (at = end; at > p && at[-1] != '@'; at--)
		;
	if (at == end)
		snprintf(buf, len, "localhost");
	else
		snprintf(buf, len, "%.*s", (int)(end - at), at);
}

struct bus *
bus_connect_from(
    const char *url, size_t first, const char *name, char *err, size_t errlen)
{
	char **nodes = NULL, *copy, *tok, *save = NULL, why[512], shown[256];
	size_t n = 0, k, i, used;
	struct bus *bus = NULL;

	copy = xstrdup(url);
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		nodes = xrealloc(nodes, (n + 1) * sizeof(*nodes));
		nodes[n++] = tok;
	}
	if (n == 0) {
		snprintf(err, errlen,
		    "bad AMQP URL (expected "
		    "amqp://user:password@host:port/vhost)");
		goto out;
	}
	if (n == 1) {
		if ((bus = bus_connect_one(nodes[0], name, err, errlen)) !=
		    NULL)
			bus->node = 0;
		goto out;
	}
	snprintf(err, errlen, "none of %zu nodes answered:", n);
	for (k = 0; k < n; k++) {
		i = (first + k) % n;
		if ((bus = bus_connect_one(nodes[i], name, why, sizeof(why))) !=
		    NULL) {
			bus->node = i;
			goto out;
		}
		bus_node_name(nodes[i], shown, sizeof(shown));
		used = strlen(err);
		/* A socket error names its host:port already. */
		if (used < errlen && strncmp(why, shown, strlen(shown)) == 0)
			snprintf(err + used, errlen - used, "%s %s",
			    k ? ";" : "", why);
		else if (used < errlen)
			snprintf(err + used, errlen - used, "%s %s: %s",
			    k ? ";" : "", shown, why);
	}
out:
	free(nodes);
	free(copy);
	return bus;
}

struct bus *
bus_connect(const char *url, const char *name, char *err, size_t errlen)
{
	return bus_connect_from(url, 0, name, err, errlen);
}

size_t
bus_node(const struct bus *bus)
{
	return bus->node;
}

bool
bus_conflict(const struct bus *bus)
{
	return bus->conflict;
}

bool
bus_broken(const struct bus *bus)
{
	return bus->broken;
}

void
bus_free(struct bus *bus)
{
	size_t i;

	if (bus == NULL)
		return;
	if (!bus->broken) {
		(void)amqp_channel_close(
		    bus->conn, BUS_CHANNEL, AMQP_REPLY_SUCCESS);
		(void)amqp_connection_close(bus->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(bus->conn);
	for (i = 0; i < bus->nconsumers; i++) {
		free(bus->consumers[i].tag);
		free(bus->consumers[i].queue);
	}
	free(bus->consumers);
	free(bus->slots);
	free(bus->user);
	free(bus);
}

int
bus_fd(const struct bus *bus)
{
	return amqp_get_sockfd(bus->conn);
}

const char *
bus_error(const struct bus *bus)
{
	return bus->error;
}

const char *
bus_user(const struct bus *bus)
{
	return bus->user;
}

/*
 * The consumer index.  The broker consumes one queue per tag set, so a
 * delivery's consumer tag is looked up by hash, not by a scan over every
 * consumer of the connection.
 */
static size_t
bus_tag_hash(const void *tag, size_t len)
{
	const unsigned char *p = tag;
	size_t h = 2166136261u, i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void
bus_index_put(
    size_t *slots, size_t nslots, const struct bus_consumer *all, size_t i)
{
	size_t j = bus_tag_hash(all[i].tag, all[i].taglen) & (nslots - 1);

	while (slots[j] != 0)
		j = (j + 1) & (nslots - 1);
	slots[j] = i + 1;
}

static void
bus_index_add(struct bus *bus, size_t i)
{
	size_t k;

	if (2 * bus->nconsumers >= bus->nslots) {
		bus->nslots = bus->nslots ? bus->nslots * 2 : 16;
		free(bus->slots);
		bus->slots = xcalloc(bus->nslots, sizeof(*bus->slots));
		for (k = 0; k < bus->nconsumers; k++)
			bus_index_put(
			    bus->slots, bus->nslots, bus->consumers, k);
		return;
	}
	bus_index_put(bus->slots, bus->nslots, bus->consumers, i);
}

static struct bus_consumer *
bus_consumer_find(struct bus *bus, amqp_bytes_t tag)
{
	struct bus_consumer *c;
	size_t j;

	if (bus->nslots == 0)
		return NULL;
	j = bus_tag_hash(tag.bytes, tag.len) & (bus->nslots - 1);
	for (; bus->slots[j] != 0; j = (j + 1) & (bus->nslots - 1)) {
		c = &bus->consumers[bus->slots[j] - 1];
		if (c->taglen == tag.len &&
		    memcmp(c->tag, tag.bytes, tag.len) == 0)
			return c;
	}
	return NULL;
}

/* Registers the consumer TAG (TAGLEN bytes) of QUEUE. */
void
bus_consumer_add(struct bus *bus, const char *tag, size_t taglen,
    const char *queue, bus_deliver_fn *fn, void *arg)
{
	struct bus_consumer *c;

	bus->consumers = xrealloc(
	    bus->consumers, (bus->nconsumers + 1) * sizeof(*bus->consumers));
	c = &bus->consumers[bus->nconsumers++];
	c->tag = xstrndup(tag, taglen);
	c->taglen = taglen;
	c->queue = xstrdup(queue);
	c->fn = fn;
	c->arg = arg;
	c->cancelled = false;
	bus_index_add(bus, bus->nconsumers - 1);
}

/* A copy of an AMQP short string as a C string; "" when absent. */
static char *
bus_str(amqp_bytes_t b, bool present)
{
	if (!present || b.len == 0)
		return xstrdup("");
	return xstrndup(b.bytes, b.len);
}

static void
bus_deliver(struct bus *bus, amqp_envelope_t *env)
{
	amqp_basic_properties_t *p = &env->message.properties;
	struct bus_delivery d;
	struct bus_consumer *c;
	char *s[8];
	size_t i;

	if ((c = bus_consumer_find(bus, env->consumer_tag)) == NULL)
		return;
	s[0] = bus_str(env->exchange, true);
	s[1] = bus_str(env->routing_key, true);
	s[2] = bus_str(env->consumer_tag, true);
	s[3] = bus_str(p->type, p->_flags & AMQP_BASIC_TYPE_FLAG);
	s[4] = bus_str(p->reply_to, p->_flags & AMQP_BASIC_REPLY_TO_FLAG);
	s[5] = bus_str(
	    p->correlation_id, p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG);
	s[6] = bus_str(p->message_id, p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG);
	s[7] = bus_str(p->user_id, p->_flags & AMQP_BASIC_USER_ID_FLAG);
	d.exchange = s[0];
	d.routing_key = s[1];
	d.consumer_tag = s[2];
	d.type = s[3];
	d.reply_to = s[4];
	d.correlation_id = s[5];
	d.message_id = s[6];
	d.user_id = s[7];
	d.body = env->message.body.bytes;
	d.len = env->message.body.len;
	d.delivery_tag = env->delivery_tag;
	d.redelivered = env->redelivered != 0;
	d.queue = c->queue;
	c->fn(bus, &d, c->arg);
	for (i = 0; i < 8; i++)
		free(s[i]);
}

/* Handles a frame that is not a delivery; 1 if it was a confirm, 0 if
 * nothing to count, -1 if the connection or channel is gone. */
static int
bus_other_frame(struct bus *bus, const struct timeval *tv)
{
	amqp_frame_t frame;
	amqp_message_t returned;
	int status;

	status = amqp_simple_wait_frame_noblock(bus->conn, &frame, tv);
	if (status == AMQP_STATUS_TIMEOUT)
		return 0;
	if (status != AMQP_STATUS_OK) {
		snprintf(bus->error, sizeof(bus->error), "read: %s",
		    amqp_error_string2(status));
		bus->broken = true;
		return -1;
	}
	if (frame.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (frame.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = frame.payload.method.decoded;

		if (bus->confirm_fn != NULL)
			bus->confirm_fn(bus, a->delivery_tag, a->multiple != 0,
			    true, bus->confirm_arg);
		return 1;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *a = frame.payload.method.decoded;

		if (bus->confirm_fn != NULL)
			bus->confirm_fn(bus, a->delivery_tag, a->multiple != 0,
			    false, bus->confirm_arg);
		return 1;
	}
	case AMQP_BASIC_RETURN_METHOD:
		/* Not published mandatory; drain the content if it comes. */
		if (amqp_read_message(bus->conn, frame.channel, &returned, 0)
			.reply_type == AMQP_RESPONSE_NORMAL)
			amqp_destroy_message(&returned);
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *m = frame.payload.method.decoded;
		amqp_channel_close_ok_t ok;

		if (!bus_type_conflict(bus, m->reply_code, m->reply_text.bytes,
			m->reply_text.len))
			snprintf(bus->error, sizeof(bus->error),
			    "channel %u closed by server: %u %.*s",
			    frame.channel, m->reply_code,
			    (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		(void)amqp_send_method(bus->conn, frame.channel,
		    AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		if (frame.channel == BUS_PROBE_CHANNEL) {
			bus->probe_open = false;
			return 0;
		}
		bus->broken = true;
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *m = frame.payload.method.decoded;
		amqp_connection_close_ok_t ok;

		snprintf(bus->error, sizeof(bus->error),
		    "connection closed by server: %u %.*s", m->reply_code,
		    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		(void)amqp_send_method(
		    bus->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		bus->broken = true;
		return -1;
	}
	case AMQP_BASIC_CANCEL_METHOD:
		snprintf(bus->error, sizeof(bus->error),
		    "consumer cancelled by server (queue deleted?)");
		bus->broken = true;
		return -1;
	default:
		return 0;
	}
}

int
bus_poll(struct bus *bus, int timeout_ms)
{
	struct timeval zero = {0, 0}, tv, *tvp;
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	int handled = 0, n;

	if (bus->broken)
		return -1;
	if (timeout_ms < 0) {
		tvp = NULL;
	} else {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		tvp = &tv;
	}
	for (;;) {
		amqp_maybe_release_buffers(bus->conn);
		r = amqp_consume_message(bus->conn, &env, tvp, 0);
		tvp = &zero;
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			bus_deliver(bus, &env);
			amqp_destroy_envelope(&env);
			handled++;
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			break;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
			n = bus_other_frame(bus, &zero);
			if (n == -1)
				return -1;
			handled += n;
			continue;
		}
		bus_seterr(bus, "consume", r);
		bus->broken = true;
		return -1;
	}
	amqp_maybe_release_buffers(bus->conn);
	return handled;
}

bool
bus_pending(const struct bus *bus)
{
	return amqp_frames_enqueued(bus->conn) ||
	       amqp_data_in_buffer(bus->conn);
}
