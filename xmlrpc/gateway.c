/*
 * gateway -- resalloc's XML-RPC methods carried out on the bus.
 *
 * Each method is a small handler in one table, with the number of
 * parameters it takes; the handlers turn XML-RPC values into requests of
 * the resbus client library (lib/client.h) and its answers back into the
 * values resalloc's server returns:
 *
 *	takeTicket(tags, sandbox=None, owner=None)	-> int
 *	collectTicket(id)		-> {ready, output, closed, failed}
 *	waitTicket(id)			-> base64, once the ticket is assigned
 *	closeTicket(id)			-> nil
 *
 * resalloc's CLI sends ticket ids as the strings it got on its command
 * line, so an id may be an int or a decimal string.  A string that is no
 * number names no ticket, as it names no row in resalloc's database.
 *
 * Everything runs on the daemon's one libev loop, and every call shares
 * one AMQP connection: a handler sends its request without waiting and
 * the call ends in the answer's callback (or its timer), which hands
 * the methodResponse back to the HTTP side.  So a waiting client costs
 * a small struct, not a thread and a connection.
 *
 * waitTicket is a long poll.  It queries the ticket; if it is not served
 * yet, it binds the ticket's events (resbus_watch_add) and queries again,
 * so nothing slips in between.  An event is only a wake-up: any bus user
 * can publish `ticket.<id>.ready` with any output, so the wait queries
 * resbusd again and takes the state and data from resbusd's answer only.
 * Wake-ups are coalesced (one query in flight per wait) and spaced by
 * WAIT_REQUERY_MIN_MS; a quiet wait asks again every requery_ms anyway,
 * in case an event was lost.  A wait survives a restart of resbusd (its
 * queries wait in the durable request queue); a lost bus connection ends
 * every call in progress with a fault, and the next call connects again.
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "client.h"
#include "gateway.h"
#include "log.h"
#include "util.h"
#include "xmlrpc.h"

/* How often the bus is read anyway, for heartbeats. */
#define GATEWAY_BEAT_S 5.
/* A failed connect is not tried again sooner than this. */
#define GATEWAY_RECONNECT_MS 1000
/* Wake-up queries of one wait are at least this far apart. */
#define WAIT_REQUERY_MIN_MS 200

struct gateway {
	struct ev_loop *loop;
	const struct gateway_conf *conf;
	struct resbus_client *client; /* NULL until needed */
	ev_io io;		      /* the client's connection */
	ev_timer beat;
	ev_prepare prepare; /* reads what the library buffered */
	bool check_due;	    /* a send failed: is the connection dead? */
	int64_t connect_failed_ms;
	char connect_err[512];
	struct gateway_call *calls; /* in progress */
};

enum call_state { CALL_DONE, CALL_PENDING };

/* One method call in progress. */
struct gateway_call {
	struct gateway_call *next, *prev;
	struct gateway *g;
	const struct method *m;
	const struct xmlrpc_request *req; /* while the handler starts */
	char *peer;
	gateway_done_fn *done;
	void *arg;

	/* The end: a value, or a fault. */
	struct xmlrpc_value *value;
	int fault_code;
	char fault[512];

	/* On the bus. */
	struct resbus_call *rpc;    /* the request in flight */
	struct resbus_watch *watch; /* waitTicket: the ticket's events */
	ev_timer timer;		    /* rpc timeout, or the next query */
	uint64_t id;
	char shown[64];	 /* the ticket id as given */
	int64_t sent_ms; /* waitTicket's last query */
	bool woken;	 /* an event came during that query */
	size_t ntags;	 /* takeTicket, for its log line */
	char sandbox[256];
};

typedef enum call_state method_fn(struct gateway_call *);

struct method {
	const char *name;
	size_t min_params;
	size_t max_params;
	method_fn *run;
	const char *help;
};

static const struct method *method_find(const char *);
static method_fn method_list_methods, method_method_help,
    method_method_signature;
static void wait_query(struct gateway_call *);

/* A copy of S fit for one log line: control characters become '?'. */
static void
text_shown(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

static enum call_state call_fault(struct gateway_call *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes the call end in a fault of CODE. */
static enum call_state
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
static enum call_state
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
static void
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
static void
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
static struct resbus_client *
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
static enum call_state
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
static void
call_arm_timeout(struct gateway_call *c)
{
	int ms = c->g->conf->rpc_timeout_ms;

	if (ms < 0)
		return;
	ev_timer_init(&c->timer, call_timed_out, ms / 1000., 0.);
	ev_timer_start(c->g->loop, &c->timer);
}

/* ---- the methods ---------------------------------------------------- */

/*
 * The ticket id in V: an int, or a string of digits (resalloc's CLI sends
 * those).  1 if V is a valid id, 0 if it cannot name a ticket (negative,
 * or a string that is no number), -1 with a fault for other types.
 * c->shown gets V as text, for messages.
 */
static int
call_ticket_id(struct gateway_call *c, const struct xmlrpc_value *v)
{
	const char *s;
	char *copy;
	size_t n;
	int rc;

	switch (v->type) {
	case XMLRPC_INT:
		snprintf(c->shown, sizeof(c->shown), "%" PRId64, v->i);
		if (v->i < 0)
			return 0;
		c->id = (uint64_t)v->i;
		return 1;
	case XMLRPC_STRING:
		text_shown(v->s, c->shown, sizeof(c->shown));
		s = v->s + strspn(v->s, " \t\r\n");
		n = strlen(s);
		while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
			n--;
		copy = xstrndup(s, n);
		rc = parse_u64(copy, &c->id) == 0 ? 1 : 0;
		free(copy);
		return rc;
	default:
		call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "ticket_id must be an int or a string, not %s",
		    xmlrpc_type_name(v->type));
		return -1;
	}
}

/* A string parameter fit for C: no NUL inside. */
static bool
value_cstring(const struct xmlrpc_value *v)
{
	return v->type == XMLRPC_STRING && strlen(v->s) == v->len;
}

static void
take_answered(void *arg, const struct resbus_answer *a)
{
	struct gateway_call *c = arg;

	c->rpc = NULL;
	if (a->status == -1) {
		call_step(
		    c, call_fault(c, XMLRPC_FAULT_APPLICATION, "%s", a->error));
		return;
	}
	log_info("%s: takeTicket: ticket %" PRIu64 " (%zu tags%s%s)", c->peer,
	    a->ticket_id, c->ntags, c->sandbox[0] != '\0' ? ", sandbox " : "",
	    c->sandbox);
	call_step(c, call_value(c, xmlrpc_value_int((int64_t)a->ticket_id)));
}

/*
 * takeTicket(tags=None, sandbox=None, owner=None) -> int; OWNER, a resbus
 * extension, is the ticket's owner when the gateway's login is one of
 * the broker's delegates (Copr's backend speaking for its users).
 */
static enum call_state
method_take_ticket(struct gateway_call *c)
{
	const struct xmlrpc_request *req = c->req;
	const struct xmlrpc_value *tv = NULL, *sv = NULL, *ov = NULL;
	struct resbus_ticket_opts opts;
	struct resbus_client *cl;
	char **tags = NULL;
	size_t ntags = 0, i;

	if (req->nparams >= 1)
		tv = req->params[0];
	if (req->nparams >= 2)
		sv = req->params[1];
	if (req->nparams >= 3)
		ov = req->params[2];
	memset(&opts, 0, sizeof(opts));
	if (tv != NULL && tv->type == XMLRPC_ARRAY) {
		ntags = tv->nitems;
		tags = xcalloc(ntags + 1, sizeof(*tags));
		for (i = 0; i < ntags; i++) {
			if (!value_cstring(tv->items[i])) {
				free(tags);
				return call_fault(c,
				    XMLRPC_FAULT_INVALID_PARAMS,
				    "tags must be strings, not %s",
				    xmlrpc_type_name(tv->items[i]->type));
			}
			tags[i] = tv->items[i]->s;
		}
	} else if (tv != NULL && tv->type != XMLRPC_NIL)
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "tags must be an array of strings, not %s",
		    xmlrpc_type_name(tv->type));
	if (sv != NULL && value_cstring(sv)) {
		/* resalloc's client sends no sandbox rather than "". */
		if (sv->len > 0)
			opts.sandbox = sv->s;
	} else if (sv != NULL && sv->type != XMLRPC_NIL) {
		free(tags);
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "sandbox must be a string, not %s",
		    xmlrpc_type_name(sv->type));
	}
	if (ov != NULL && value_cstring(ov)) {
		if (ov->len > 0)
			opts.owner = ov->s;
	} else if (ov != NULL && ov->type != XMLRPC_NIL) {
		free(tags);
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "owner must be a string, not %s",
		    xmlrpc_type_name(ov->type));
	}
	if ((cl = call_client(c)) == NULL) {
		free(tags);
		return CALL_DONE;
	}
	c->ntags = ntags;
	text_shown(opts.sandbox != NULL ? opts.sandbox : "", c->sandbox,
	    sizeof(c->sandbox));
	c->rpc = resbus_take_send(cl, tags, ntags, &opts, take_answered, c);
	free(tags);
	if (c->rpc == NULL)
		return call_bus_fault(c);
	call_arm_timeout(c);
	return CALL_PENDING;
}

/* collectTicket's struct for INFO. */
static enum call_state
collect_value(struct gateway_call *c, const struct resbus_ticket_info *info)
{
	struct xmlrpc_value *st;

	st = xmlrpc_value_struct();
	if (!info->exists) {
		/* resalloc answers an unknown id with nothing but nils. */
		xmlrpc_struct_set(st, "ready", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "output", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "closed", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "failed", xmlrpc_value_nil());
	} else {
		/* "ready" is "has a resource", and stays so after a close. */
		xmlrpc_struct_set(
		    st, "ready", xmlrpc_value_bool(info->assigned));
		xmlrpc_struct_set(st, "output",
		    info->assigned
			? xmlrpc_value_base64(info->output, info->output_len)
			: xmlrpc_value_nil());
		xmlrpc_struct_set(
		    st, "closed", xmlrpc_value_bool(info->closed));
		xmlrpc_struct_set(
		    st, "failed", xmlrpc_value_bool(info->failed));
	}
	log_debug("%s: collectTicket %s: %s%s%s", c->peer, c->shown,
	    !info->exists    ? "no such ticket"
	    : info->assigned ? "ready"
			     : "waiting",
	    info->closed ? ", closed" : "", info->failed ? ", failed" : "");
	return call_value(c, st);
}

static void
collect_answered(void *arg, const struct resbus_answer *a)
{
	struct gateway_call *c = arg;

	c->rpc = NULL;
	if (a->status == -1)
		call_step(
		    c, call_fault(c, XMLRPC_FAULT_APPLICATION, "%s", a->error));
	else
		call_step(c, collect_value(c, a->info));
}

/* collectTicket(id) -> {ready, output, closed, failed}, never blocks. */
static enum call_state
method_collect_ticket(struct gateway_call *c)
{
	struct resbus_ticket_info info;
	struct resbus_client *cl;
	int rc;

	if ((rc = call_ticket_id(c, c->req->params[0])) == -1)
		return CALL_DONE;
	if (rc == 0) {
		/* No number names no ticket: answered as an unknown one. */
		memset(&info, 0, sizeof(info));
		return collect_value(c, &info);
	}
	if ((cl = call_client(c)) == NULL)
		return CALL_DONE;
	if ((c->rpc = resbus_query_send(cl, c->id, collect_answered, c)) ==
	    NULL)
		return call_bus_fault(c);
	call_arm_timeout(c);
	return CALL_PENDING;
}

/* The next query of a wait is due (its timer). */
static void
wait_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	wait_query(container_of(w, struct gateway_call, timer));
}

/* Queries the ticket again in MS, unless a query is planned already. */
static void
wait_plan(struct gateway_call *c, int64_t ms)
{
	if (ev_is_active(&c->timer))
		return;
	ev_timer_init(&c->timer, wait_due, ms > 0 ? ms / 1000. : 0., 0.);
	ev_timer_start(c->g->loop, &c->timer);
}

/* An event about the ticket: ask resbusd, soon but not too often. */
static void
wait_woken(void *arg, uint64_t id)
{
	struct gateway_call *c = arg;
	int64_t next;

	(void)id;
	if (c->rpc != NULL) {
		c->woken = true;
		return;
	}
	/* A planned quiet re-query comes sooner now. */
	ev_timer_stop(c->g->loop, &c->timer);
	next = c->sent_ms + WAIT_REQUERY_MIN_MS - now_mono_ms();
	wait_plan(c, next);
}

/* resbusd's answer to a wait's query: the only thing it believes. */
static void
wait_answered(void *arg, const struct resbus_answer *a)
{
	struct gateway_call *c = arg;
	const struct resbus_ticket_info *info = a->info;

	c->rpc = NULL;
	if (a->status == -1) {
		call_step(
		    c, call_fault(c, XMLRPC_FAULT_APPLICATION, "%s", a->error));
		return;
	}
	if (!info->exists) {
		call_step(c, call_fault(c, XMLRPC_FAULT_APPLICATION,
				 "non-existing ticket %s", c->shown));
		return;
	}
	if (info->assigned) {
		log_debug("%s: waitTicket %s: ready", c->peer, c->shown);
		call_step(c, call_value(c, xmlrpc_value_base64(info->output,
					       info->output_len)));
		return;
	}
	if (info->closed || info->failed) {
		call_step(c, call_fault(c, XMLRPC_FAULT_APPLICATION,
				 "ticket %s was closed before it got a "
				 "resource",
				 c->shown));
		return;
	}
	if (c->watch == NULL) {
		/* Bind first, then ask again: no event slips in between. */
		c->watch = resbus_watch_add(c->g->client, c->id, wait_woken, c);
		if (c->watch == NULL) {
			call_step(c, call_bus_fault(c));
			return;
		}
		wait_plan(c, 0);
	} else if (c->woken)
		wait_plan(c, c->sent_ms + WAIT_REQUERY_MIN_MS - now_mono_ms());
	else
		wait_plan(c, c->g->conf->requery_ms);
}

/* Sends a wait's query. */
static void
wait_query(struct gateway_call *c)
{
	struct resbus_client *cl;

	ev_timer_stop(c->g->loop, &c->timer);
	if ((cl = call_client(c)) == NULL) {
		call_end(c);
		return;
	}
	c->woken = false;
	c->sent_ms = now_mono_ms();
	if ((c->rpc = resbus_query_send(cl, c->id, wait_answered, c)) == NULL)
		call_step(c, call_bus_fault(c));
}

/* waitTicket(id) -> base64, once the ticket has a resource. */
static enum call_state
method_wait_ticket(struct gateway_call *c)
{
	int rc;

	if ((rc = call_ticket_id(c, c->req->params[0])) == -1)
		return CALL_DONE;
	if (rc == 0)
		return call_fault(c, XMLRPC_FAULT_APPLICATION,
		    "non-existing ticket %s", c->shown);
	log_debug("%s: waitTicket %s", c->peer, c->shown);
	if (call_client(c) == NULL)
		return CALL_DONE;
	/* The first query goes out when the handler has returned. */
	wait_plan(c, 0);
	return CALL_PENDING;
}

static void
close_answered(void *arg, const struct resbus_answer *a)
{
	struct gateway_call *c = arg;

	c->rpc = NULL;
	if (a->status == -1) {
		call_step(
		    c, call_fault(c, XMLRPC_FAULT_APPLICATION, "%s", a->error));
		return;
	}
	log_info("%s: closeTicket: ticket %s closed", c->peer, c->shown);
	call_step(c, call_value(c, xmlrpc_value_nil()));
}

/* closeTicket(id) -> nil */
static enum call_state
method_close_ticket(struct gateway_call *c)
{
	struct resbus_client *cl;
	int rc;

	if ((rc = call_ticket_id(c, c->req->params[0])) == -1)
		return CALL_DONE;
	if (rc == 0)
		return call_fault(
		    c, XMLRPC_FAULT_APPLICATION, "no such ticket %s", c->shown);
	if ((cl = call_client(c)) == NULL)
		return CALL_DONE;
	if ((c->rpc = resbus_close_send(cl, c->id, close_answered, c)) == NULL)
		return call_bus_fault(c);
	call_arm_timeout(c);
	return CALL_PENDING;
}

static const struct method methods[] = {
    {"takeTicket", 0, 3, method_take_ticket,
	"takeTicket(tags, sandbox=None, owner=None): asks for a resource "
	"carrying all TAGS, for OWNER if the gateway's login is a delegate; "
	"returns the ticket id"},
    {"collectTicket", 1, 1, method_collect_ticket,
	"collectTicket(ticket_id): the ticket's state as a struct "
	"{ready, output, closed, failed}; never blocks"},
    {"waitTicket", 1, 1, method_wait_ticket,
	"waitTicket(ticket_id): waits until the ticket has a resource "
	"and returns its data"},
    {"closeTicket", 1, 1, method_close_ticket,
	"closeTicket(ticket_id): closes the ticket and gives its "
	"resource back"},
    {"system.listMethods", 0, 0, method_list_methods,
	"system.listMethods(): the names of the methods"},
    {"system.methodHelp", 1, 1, method_method_help,
	"system.methodHelp(name): what method NAME does"},
    {"system.methodSignature", 1, 1, method_method_signature,
	"system.methodSignature(name): not supported"},
};

static const struct method *
method_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

/* system.listMethods() -> array of strings */
static enum call_state
method_list_methods(struct gateway_call *c)
{
	struct xmlrpc_value *a;
	size_t i;

	a = xmlrpc_value_array();
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		xmlrpc_array_append(a, xmlrpc_value_string(methods[i].name));
	return call_value(c, a);
}

/* system.methodHelp(name) -> string */
static enum call_state
method_method_help(struct gateway_call *c)
{
	const struct xmlrpc_value *v = c->req->params[0];
	const struct method *m;

	if (!value_cstring(v))
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "the method name must be a string");
	m = method_find(v->s);
	return call_value(c, xmlrpc_value_string(m != NULL ? m->help : ""));
}

/* system.methodSignature(name): as Python's servers answer it. */
static enum call_state
method_method_signature(struct gateway_call *c)
{
	return call_value(c, xmlrpc_value_string("signatures not supported"));
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
