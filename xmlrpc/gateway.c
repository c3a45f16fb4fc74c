/*
 * gateway -- resalloc's XML-RPC methods carried out on the bus.
 *
 * Each method is a small handler in one table, with the number of
 * parameters it takes; the handlers turn XML-RPC values into calls of the
 * resbus client library (lib/client.h) and its answers back into the
 * values resalloc's server returns:
 *
 *	takeTicket(tags, sandbox=None)	-> int
 *	collectTicket(id)		-> {ready, output, closed, failed}
 *	waitTicket(id)			-> base64, blocks until assigned
 *	closeTicket(id)			-> nil
 *
 * resalloc's CLI sends ticket ids as the strings it got on its command
 * line, so an id may be an int or a decimal string.  A string that is no
 * number names no ticket, as it names no row in resalloc's database.
 *
 * waitTicket is a long poll.  It waits in slices, checking between them
 * whether its caller is still there: a client that gave up must not hold
 * a thread and an AMQP connection until its ticket is served.  Each slice
 * re-binds and re-queries (see resbus_ticket_wait), so a wait also
 * survives a restart of resbusd.
 *
 * The session's client is dropped whenever a call fails and the
 * connection turns out to be dead, and made again by the next call, so
 * a RabbitMQ restart costs the callers of that moment one fault each.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "gateway.h"
#include "log.h"
#include "util.h"
#include "xmlrpc.h"

struct gateway_session {
	const struct gateway_conf *conf;
	struct resbus_client *client; /* NULL until needed */
};

/* One method call in progress. */
struct call {
	struct gateway_session *s;
	const struct xmlrpc_request *req;
	gateway_abandon_fn *abandon;
	void *arg;
	const char *peer;
	int fault_code;
	char fault[512];
};

typedef struct xmlrpc_value *method_fn(struct call *);

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

static struct xmlrpc_value *call_fault(struct call *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes the call end in a fault of CODE; returns NULL. */
static struct xmlrpc_value *
call_fault(struct call *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->fault_code = code;
	va_start(ap, fmt);
	vsnprintf(c->fault, sizeof(c->fault), fmt, ap);
	va_end(ap);
	return NULL;
}

/* The session's client, connected now if need be; NULL with a fault. */
static struct resbus_client *
call_client(struct call *c)
{
	struct gateway_session *s = c->s;
	char err[512];

	if (s->client != NULL)
		return s->client;
	s->client = resbus_client_new(
	    s->conf->amqp_url, s->conf->prefix, err, sizeof(err));
	if (s->client == NULL) {
		log_warnx("%s: %s", c->peer, err);
		call_fault(c, XMLRPC_FAULT_INTERNAL, "%s", err);
	}
	return s->client;
}

/*
 * Makes the call end in a fault with the client library's last error,
 * and drops the client if its connection is dead.  Returns NULL.
 */
static struct xmlrpc_value *
call_bus_fault(struct call *c)
{
	struct gateway_session *s = c->s;

	call_fault(
	    c, XMLRPC_FAULT_APPLICATION, "%s", resbus_client_error(s->client));
	if (resbus_client_broker_present(s->client) == -1) {
		log_warnx("%s: %s; reconnecting on the next call", c->peer,
		    resbus_client_error(s->client));
		resbus_client_free(s->client);
		s->client = NULL;
	}
	return NULL;
}

/*
 * The ticket id in V: an int, or a string of digits (resalloc's CLI sends
 * those).  1 if V is a valid id, 0 if it cannot name a ticket (negative,
 * or a string that is no number), -1 with a fault for other types.  SHOWN
 * gets V as text, for messages.
 */
static int
call_ticket_id(struct call *c, const struct xmlrpc_value *v, uint64_t *id,
    char *shown, size_t len)
{
	const char *s;
	char *copy;
	size_t n;
	int rc;

	switch (v->type) {
	case XMLRPC_INT:
		snprintf(shown, len, "%" PRId64, v->i);
		if (v->i < 0)
			return 0;
		*id = (uint64_t)v->i;
		return 1;
	case XMLRPC_STRING:
		text_shown(v->s, shown, len);
		s = v->s + strspn(v->s, " \t\r\n");
		n = strlen(s);
		while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
			n--;
		copy = xstrndup(s, n);
		rc = parse_u64(copy, id) == 0 ? 1 : 0;
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

/* takeTicket(tags=None, sandbox=None) -> int */
static struct xmlrpc_value *
method_take_ticket(struct call *c)
{
	const struct xmlrpc_request *req = c->req;
	const struct xmlrpc_value *tv = NULL, *sv = NULL;
	struct resbus_client *cl;
	const char *sandbox = NULL;
	char **tags = NULL, shown[256];
	size_t ntags = 0, i;
	bool timed_out;
	uint64_t id;
	int rc;

	if (req->nparams >= 1)
		tv = req->params[0];
	if (req->nparams >= 2)
		sv = req->params[1];
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
			sandbox = sv->s;
	} else if (sv != NULL && sv->type != XMLRPC_NIL) {
		free(tags);
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "sandbox must be a string, not %s",
		    xmlrpc_type_name(sv->type));
	}
	if ((cl = call_client(c)) == NULL) {
		free(tags);
		return NULL;
	}
	rc = resbus_ticket_take(cl, tags, ntags, sandbox,
	    c->s->conf->rpc_timeout_ms, &id, &timed_out);
	free(tags);
	if (rc == -1)
		return call_bus_fault(c);
	text_shown(sandbox != NULL ? sandbox : "", shown, sizeof(shown));
	log_info("%s: takeTicket: ticket %" PRIu64 " (%zu tags%s%s)", c->peer,
	    id, ntags, sandbox != NULL ? ", sandbox " : "", shown);
	return xmlrpc_value_int((int64_t)id);
}

/* collectTicket(id) -> {ready, output, closed, failed}, never blocks. */
static struct xmlrpc_value *
method_collect_ticket(struct call *c)
{
	struct resbus_ticket_info info;
	struct xmlrpc_value *st;
	struct resbus_client *cl;
	char shown[64];
	uint64_t id;
	int rc;

	if ((rc = call_ticket_id(
		 c, c->req->params[0], &id, shown, sizeof(shown))) == -1)
		return NULL;
	memset(&info, 0, sizeof(info));
	if (rc == 1) {
		if ((cl = call_client(c)) == NULL)
			return NULL;
		if (resbus_ticket_query(
			cl, id, c->s->conf->rpc_timeout_ms, &info) == -1)
			return call_bus_fault(c);
	}
	st = xmlrpc_value_struct();
	if (!info.exists) {
		/* resalloc answers an unknown id with nothing but nils. */
		xmlrpc_struct_set(st, "ready", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "output", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "closed", xmlrpc_value_nil());
		xmlrpc_struct_set(st, "failed", xmlrpc_value_nil());
	} else {
		/* "ready" is "has a resource", and stays so after a close. */
		xmlrpc_struct_set(
		    st, "ready", xmlrpc_value_bool(info.assigned));
		xmlrpc_struct_set(st, "output",
		    info.assigned
			? xmlrpc_value_base64(info.output, info.output_len)
			: xmlrpc_value_nil());
		xmlrpc_struct_set(st, "closed", xmlrpc_value_bool(info.closed));
		xmlrpc_struct_set(st, "failed", xmlrpc_value_bool(info.failed));
	}
	log_debug("%s: collectTicket %s: %s%s%s", c->peer, shown,
	    !info.exists    ? "no such ticket"
	    : info.assigned ? "ready"
			    : "waiting",
	    info.closed ? ", closed" : "", info.failed ? ", failed" : "");
	resbus_ticket_info_clear(&info);
	return st;
}

/* waitTicket(id) -> base64, once the ticket has a resource. */
static struct xmlrpc_value *
method_wait_ticket(struct call *c)
{
	struct resbus_ticket_info info;
	struct xmlrpc_value *v;
	struct resbus_client *cl;
	bool timed_out;
	char shown[64];
	uint64_t id;
	int rc;

	if ((rc = call_ticket_id(
		 c, c->req->params[0], &id, shown, sizeof(shown))) == -1)
		return NULL;
	if (rc == 0)
		return call_fault(c, XMLRPC_FAULT_APPLICATION,
		    "non-existing ticket %s", shown);
	log_debug("%s: waitTicket %s", c->peer, shown);
	for (;;) {
		if (c->abandon != NULL && c->abandon(c->arg))
			return call_fault(c, XMLRPC_FAULT_INTERNAL,
			    "waitTicket %s abandoned", shown);
		if ((cl = call_client(c)) == NULL)
			return NULL;
		if (resbus_ticket_wait(cl, id, c->s->conf->wait_slice_ms, &info,
			&timed_out) == 0)
			break;
		if (!timed_out)
			return call_bus_fault(c);
	}
	v = xmlrpc_value_base64(info.output, info.output_len);
	resbus_ticket_info_clear(&info);
	log_debug("%s: waitTicket %s: ready", c->peer, shown);
	return v;
}

/* closeTicket(id) -> nil */
static struct xmlrpc_value *
method_close_ticket(struct call *c)
{
	struct resbus_client *cl;
	char shown[64];
	uint64_t id;
	int rc;

	if ((rc = call_ticket_id(
		 c, c->req->params[0], &id, shown, sizeof(shown))) == -1)
		return NULL;
	if (rc == 0)
		return call_fault(
		    c, XMLRPC_FAULT_APPLICATION, "no such ticket %s", shown);
	if ((cl = call_client(c)) == NULL)
		return NULL;
	if (resbus_ticket_close(cl, id, c->s->conf->rpc_timeout_ms) == -1)
		return call_bus_fault(c);
	log_info("%s: closeTicket: ticket %s closed", c->peer, shown);
	return xmlrpc_value_nil();
}

static const struct method methods[] = {
    {"takeTicket", 0, 2, method_take_ticket,
	"takeTicket(tags, sandbox=None): asks for a resource carrying "
	"all TAGS; returns the ticket id"},
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
static struct xmlrpc_value *
method_list_methods(struct call *c)
{
	struct xmlrpc_value *a;
	size_t i;

	a = xmlrpc_value_array();
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		xmlrpc_array_append(a, xmlrpc_value_string(methods[i].name));
	return a;
}

/* system.methodHelp(name) -> string */
static struct xmlrpc_value *
method_method_help(struct call *c)
{
	const struct xmlrpc_value *v = c->req->params[0];
	const struct method *m;

	if (!value_cstring(v))
		return call_fault(c, XMLRPC_FAULT_INVALID_PARAMS,
		    "the method name must be a string");
	m = method_find(v->s);
	return xmlrpc_value_string(m != NULL ? m->help : "");
}

/* system.methodSignature(name): as Python's servers answer it. */
static struct xmlrpc_value *
method_method_signature(struct call *c)
{
	return xmlrpc_value_string("signatures not supported");
}

/* A fresh session for CONF; caller frees with gateway_session_free(). */
struct gateway_session *
gateway_session_new(const struct gateway_conf *conf)
{
	struct gateway_session *s;

	s = xcalloc(1, sizeof(*s));
	s->conf = conf;
	return s;
}

/* Closes the session's AMQP connection, if any, and frees S. */
void
gateway_session_free(struct gateway_session *s)
{
	if (s == NULL)
		return;
	resbus_client_free(s->client);
	free(s);
}

/*
 * Runs REQ's method and encodes its answer, a value or a fault, as a
 * methodResponse of *LEN bytes; caller frees.
 */
char *
gateway_call(struct gateway_session *s, const struct xmlrpc_request *req,
    gateway_abandon_fn *abandon, void *arg, const char *peer, size_t *len)
{
	struct call c = {s, req, abandon, arg, peer, 0, ""};
	const struct method *m;
	struct xmlrpc_value *v;
	char shown[sizeof(c.fault)];
	char *out;

	if ((m = method_find(req->method)) == NULL) {
		call_fault(&c, XMLRPC_FAULT_NO_METHOD,
		    "method \"%s\" is not supported", req->method);
		v = NULL;
	} else if (req->nparams < m->min_params ||
		   req->nparams > m->max_params) {
		call_fault(&c, XMLRPC_FAULT_INVALID_PARAMS,
		    "%s takes %zu to %zu arguments (%zu given)", m->name,
		    m->min_params, m->max_params, req->nparams);
		v = NULL;
	} else
		v = m->run(&c);
	if (v == NULL) {
		text_shown(c.fault, shown, sizeof(shown));
		log_info("%s: %s: fault %d: %s", peer, req->method,
		    c.fault_code, shown);
		return xmlrpc_fault_encode(c.fault_code, c.fault, len);
	}
	out = xmlrpc_response_encode(v, len);
	xmlrpc_value_free(v);
	return out;
}
