/*
 * methods -- resalloc's XML-RPC methods, as resbus-xmlrpc carries them
 * out on the bus.
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
 * waitTicket is a long poll.  It queries the ticket; if it is not served
 * yet, it binds the ticket's events (resbus_watch_add) and queries again,
 * so nothing slips in between.  An event is only a wake-up: any bus user
 * can publish `ticket.<id>.ready` with any output, so the wait queries
 * resbusd again and takes the state and data from resbusd's answer only.
 * Wake-ups are coalesced (one query in flight per wait) and spaced by
 * WAIT_REQUERY_MIN_MS; a quiet wait asks again every requery_ms anyway,
 * in case an event was lost.  A wait survives a restart of resbusd (its
 * queries wait in the durable request queue); a lost bus connection ends
 * it with a fault (gateway.c).
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "client.h"
#include "gateway_priv.h"
#include "log.h"
#include "util.h"
#include "xmlrpc.h"

/* Wake-up queries of one wait are at least this far apart. */
#define WAIT_REQUERY_MIN_MS 200

static method_fn method_list_methods, method_method_help,
    method_method_signature;
static void wait_query(struct gateway_call *);

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

const struct method *
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
