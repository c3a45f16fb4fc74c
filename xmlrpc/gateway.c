/*
 * gateway -- resalloc's XML-RPC calls carried out on the bus: their life
 * and their connection.
 *
 * A call is looked up in the method table (methods.c, which turns
 * XML-RPC values into requests of the resbus client library and its
 * answers back into values), checked for its number of parameters, and
 * run; it ends in a value or a fault, encoded here as the methodResponse
 * handed back to the HTTP side.
 *
 * Everything runs on the daemon's one libev loop, and every call shares
 * one AMQP connection: a handler sends its request without waiting and
 * the call ends in the answer's callback (or its timer), which hands
 * the methodResponse back to the HTTP side.  So a waiting client costs
 * a small struct, not a thread and a connection.
 *
 * The connection is made on the first call (or by gateway_probe at
 * start-up), read when its socket is readable, before the loop sleeps
 * (frames the library read ahead) and every GATEWAY_BEAT_S (heartbeats).
 * A lost bus connection ends every call in progress with a fault, and
 * the next call connects again, not sooner than GATEWAY_RECONNECT_MS
 * after a failed attempt.
 */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "client.h"
#include "gateway.h"
#include "gateway_priv.h"
#include "log.h"
#include "util.h"
#include "xmlrpc.h"

/* How often the bus is read anyway, for heartbeats. */
#define GATEWAY_BEAT_S 5.
/* A failed connect is not tried again sooner than this. */
#define GATEWAY_RECONNECT_MS 1000

/* A copy of S fit for one log line: control characters become '?'. */
void
text_shown(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

/* Makes the call end in a fault of CODE. */
enum call_state
call_fault(struct gateway_call *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->fault_code = code;
	va_start(ap, fmt);
	vsnprintf(c->fault, sizeof(c->fault), fmt, ap);
	va_end(ap);
	return CALL_DONE;
}

/* Makes the call end with V (taken over). */
enum call_state
call_value(struct gateway_call *c, struct xmlrpc_value *v)
{
	c->value = v;
	return CALL_DONE;
}

static void
call_unlink(struct gateway_call *c)
{
	struct gateway *g = c->g;

	/* The first call, and only it, has no previous one. */
	assert((c->prev == NULL) == (g->calls == c));
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Lets go of everything C holds on the bus and the loop, and unlinks it. */
static void
call_release(struct gateway_call *c)
{
	struct gateway *g = c->g;

	ev_timer_stop(g->loop, &c->timer);
	if (g->client != NULL) {
		resbus_call_cancel(g->client, c->rpc);
		resbus_watch_remove(g->client, c->watch);
	}
	c->rpc = NULL;
	c->watch = NULL;
	call_unlink(c);
}

static void
call_free(struct gateway_call *c)
{
	xmlrpc_value_free(c->value);
	free(c->peer);
	free(c);
}

/*
 * Ends C: encodes its value or fault, hands the response to the caller
 * and frees C.
 */
void
call_end(struct gateway_call *c)
{
	const char *name = c->m != NULL ? c->m->name : c->req->method;
	char shown[sizeof(c->fault)], *out;
	size_t len;

	call_release(c);
	if (c->value == NULL) {
		text_shown(c->fault, shown, sizeof(shown));
		log_info("%s: %s: fault %d: %s", c->peer, name, c->fault_code,
		    shown);
		out = xmlrpc_fault_encode(c->fault_code, c->fault, &len);
	} else
		out = xmlrpc_response_encode(c->value, &len);
	c->done(c->arg, out, len);
	call_free(c);
}

/* Ends C now if STATE says it is done. */
void
call_step(struct gateway_call *c, enum call_state state)
{
	if (state == CALL_DONE)
		call_end(c);
}

/* ---- the bus -------------------------------------------------------- */

/* Fails every call still in progress and drops the dead client. */
static void
gateway_lost(struct gateway *g)
{
	struct gateway_call *c;

	log_warnx("%s; reconnecting on the next call",
	    resbus_client_error(g->client));
	/* Waits between queries; the requests in flight were answered. */
again:
	for (c = g->calls; c != NULL; c = c->next)
		if (c->rpc != NULL || c->watch != NULL) {
			call_fault(c, XMLRPC_FAULT_APPLICATION,
			    "connection to the bus lost");
			call_end(c);
			goto again;
		}
	ev_io_stop(g->loop, &g->io);
	resbus_client_free(g->client);
	g->client = NULL;
}

/* Reads the bus; drops the client if its connection failed. */
static void
gateway_poll(struct gateway *g)
{
	g->check_due = false;
	if (g->client != NULL && resbus_client_poll(g->client) == -1)
		gateway_lost(g);
}

static void
gateway_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	gateway_poll(container_of(w, struct gateway, io));
}

static void
gateway_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	gateway_poll(container_of(w, struct gateway, beat));
}

/* Before the loop sleeps: frames the library read ahead, and failures. */
static void
gateway_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct gateway *g = container_of(w, struct gateway, prepare);

	(void)loop;
	(void)revents;
	while (g->client != NULL &&
	       (g->check_due || resbus_client_pending(g->client)))
		gateway_poll(g);
}

/* The shared client, connected now if need be; NULL with a fault. */
struct resbus_client *
call_client(struct gateway_call *c)
{
	struct gateway *g = c->g;

	if (g->client != NULL)
		return g->client;
	if (g->connect_failed_ms != 0 &&
	    now_mono_ms() - g->connect_failed_ms < GATEWAY_RECONNECT_MS) {
		call_fault(c, XMLRPC_FAULT_INTERNAL, "%s", g->connect_err);
		return NULL;
	}
	g->client = resbus_client_new(g->conf->amqp_url, g->conf->prefix,
	    g->connect_err, sizeof(g->connect_err));
	if (g->client == NULL) {
		g->connect_failed_ms = now_mono_ms();
		log_warnx("%s", g->connect_err);
		call_fault(c, XMLRPC_FAULT_INTERNAL, "%s", g->connect_err);
		return NULL;
	}
	g->connect_failed_ms = 0;
	ev_io_set(&g->io, resbus_client_fd(g->client), EV_READ);
	ev_io_start(g->loop, &g->io);
	return g->client;
}

/*
 * Makes the call end in a fault with the client library's last error; a
 * failed send may mean a dead connection, looked at before the loop
 * sleeps.
 */
enum call_state
call_bus_fault(struct gateway_call *c)
{
	c->g->check_due = true;
	return call_fault(c, XMLRPC_FAULT_APPLICATION, "%s",
	    resbus_client_error(c->g->client));
}

static void
call_timed_out(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gateway_call *c = container_of(w, struct gateway_call, timer);
	int s = (c->g->conf->rpc_timeout_ms + 999) / 1000;

	(void)loop;
	(void)revents;
	if (strcmp(c->m->name, "takeTicket") == 0)
		call_fault(c, XMLRPC_FAULT_APPLICATION,
		    "no answer from resbusd within %d s; the request stays "
		    "queued and is served when resbusd runs",
		    s);
	else
		call_fault(c, XMLRPC_FAULT_APPLICATION,
		    "no answer from resbusd within %d s", s);
	call_end(c);
}

/* Starts the timeout of C's request to resbusd, if there is one. */
void
call_arm_timeout(struct gateway_call *c)
{
	int ms = c->g->conf->rpc_timeout_ms;

	if (ms < 0)
		return;
	ev_timer_init(&c->timer, call_timed_out, ms / 1000., 0.);
	ev_timer_start(c->g->loop, &c->timer);
}

/* ---- the gateway ---------------------------------------------------- */

struct gateway *
gateway_new(struct ev_loop *loop, const struct gateway_conf *conf)
{
	struct gateway *g;

	g = xcalloc(1, sizeof(*g));
	g->loop = loop;
	g->conf = conf;
	ev_io_init(&g->io, gateway_readable, -1, EV_READ);
	ev_timer_init(&g->beat, gateway_beat, GATEWAY_BEAT_S, GATEWAY_BEAT_S);
	ev_timer_start(loop, &g->beat);
	ev_prepare_init(&g->prepare, gateway_prepare);
	ev_prepare_start(loop, &g->prepare);
	return g;
}

void
gateway_free(struct gateway *g)
{
	if (g == NULL)
		return;
	if (g->calls != NULL)
		fatalx("gateway_free: calls in progress");
	ev_io_stop(g->loop, &g->io);
	ev_timer_stop(g->loop, &g->beat);
	ev_prepare_stop(g->loop, &g->prepare);
	resbus_client_free(g->client);
	free(g);
}

/* Says at start-up whether the bus and resbusd can be reached. */
void
gateway_probe(struct gateway *g)
{
	char err[512];

	if (g->client == NULL) {
		g->client = resbus_client_new(
		    g->conf->amqp_url, g->conf->prefix, err, sizeof(err));
		if (g->client == NULL) {
			log_warnx("%s; calls fail until the bus can be "
				  "reached",
			    err);
			return;
		}
		ev_io_set(&g->io, resbus_client_fd(g->client), EV_READ);
		ev_io_start(g->loop, &g->io);
	}
	if (resbus_client_broker_present(g->client) == 0)
		log_warnx("resbusd is not running: requests wait in the bus "
			  "until it starts");
}

struct gateway_call *
gateway_call_start(struct gateway *g, const struct xmlrpc_request *req,
    const char *peer, gateway_done_fn *done, void *arg)
{
	struct gateway_call *c;
	const struct method *m;
	enum call_state state;

	c = xcalloc(1, sizeof(*c));
	c->g = g;
	c->req = req;
	c->peer = xstrdup(peer);
	c->done = done;
	c->arg = arg;
	ev_timer_init(&c->timer, call_timed_out, 0., 0.);
	c->next = g->calls;
	if (g->calls != NULL)
		g->calls->prev = c;
	g->calls = c;
	if ((m = method_find(req->method)) == NULL)
		state = call_fault(c, XMLRPC_FAULT_NO_METHOD,
		    "method \"%s\" is not supported", req->method);
	else if (req->nparams < m->min_params || req->nparams > m->max_params) {
		c->m = m;
		state = call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "%s takes %zu to %zu arguments (%zu given)", m->name,
		    m->min_params, m->max_params, req->nparams);
	} else {
		c->m = m;
		state = m->run(c);
	}
	if (state == CALL_DONE) {
		call_end(c);
		return NULL;
	}
	c->req = NULL;
	return c;
}

/*
 * Gives up C: its caller went away.  Its request to resbusd, if any, is
 * still answered, to nobody.
 */
void
gateway_call_cancel(struct gateway_call *c)
{
	if (c == NULL)
		return;
	if (c->m != NULL && strcmp(c->m->name, "waitTicket") == 0)
		log_info("%s: waitTicket %s abandoned", c->peer, c->shown);
	else
		log_info("%s: %s abandoned", c->peer,
		    c->m != NULL ? c->m->name : "call");
	call_release(c);
	call_free(c);
}

/* Ends every call in progress with a fault. */
void
gateway_stop(struct gateway *g)
{
	struct gateway_call *c;

	while ((c = g->calls) != NULL) {
		call_fault(
		    c, XMLRPC_FAULT_INTERNAL, "resbus-xmlrpc is stopping");
		call_end(c);
	}
}
