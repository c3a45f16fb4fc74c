/*
 * notify -- fedora-messaging-style JSON notifications.
 *
 * The scheduler tells what users watch happened (sched_ops.observe, with
 * views of the ticket or resource); this module turns each event into a
 * JSON body at once, keeps it until the transaction that made the change
 * commits, and then publishes it.  It keeps no state of its own about
 * tickets or resources: the scheduler is the one source of truth.
 *
 * Wire format (see fedora-messaging's wire-format description): a JSON
 * object body, content_type application/json, content_encoding utf-8,
 * delivery_mode 2, message_id a version 4 UUID, and the headers
 * fedora_messaging_schema ("resbus.ticket.ready"),
 * fedora_messaging_severity (20 info, 30 warning for a failed ticket),
 * sent-at (ISO 8601 UTC without fractions, "2019-07-30T19:12:22+00:00"),
 * priority 0, fedora_messaging_user_<owner> when the ticket has one, and
 * resbus_schema, the URL of the JSON Schema of the body (the $id of
 * schemas/v1/<fedora_messaging_schema>.json, installed in
 * $(pkgdatadir)/schemas/v1).  The schema goes in a header of its own and
 * not in the body, so that the bodies stay what listeners already parse;
 * fedora_messaging_schema is the name a fedora-messaging schema class
 * would be registered under, not a URL.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include <json-c/json.h>

#include "bus.h"
#include "conf.h"
#include "json.h"
#include "log.h"
#include "notify.h"
#include "sched.h"
#include "util.h"

#define SEVERITY_INFO 20
#define SEVERITY_WARNING 30
/* Where schemas/v1 is published; a body changed incompatibly gets a v2. */
#define SCHEMA_URL_BASE                                                        \
	"https://raw.githubusercontent.com/resbus/resbus/main/schemas/v1/"

/* One notification waiting for its transaction to commit. */
/*
 * One notification waiting for its transaction to commit: a copy of what
 * the event said.  Its JSON is built when it is published, after the
 * broker's own messages, so notifications add nothing to the path of a
 * ticket to READY.
 */
struct nevent {
	TAILQ_ENTRY(nevent) entry;
	bool ticket;	  /* a ticket event, else a resource event */
	const char *what; /* "ready", "up"...: static */
	uint64_t id;
	char *tags, *sandbox, *owner, *class_, *closed_reason; /* tickets */
	uint64_t res_id; /* tickets: 0 if none; resources: id */
	char *res_name, *res_pool;
	const void *txn; /* NULL until sealed */
};
TAILQ_HEAD(nevent_list, nevent);

struct notify {
	struct bus *bus;
	char *exchange;
	char *prefix;
	struct nevent_list events;
};

static void
nevent_free(struct nevent *e)
{
	free(e->tags);
	free(e->sandbox);
	free(e->owner);
	free(e->class_);
	free(e->closed_reason);
	free(e->res_name);
	free(e->res_pool);
	free(e);
}

struct notify *
notify_new(const struct conf_server *server, struct bus *bus)
{
	struct notify *n;
	const char *x =
	    server->notify_exchange ? server->notify_exchange : "amq.topic";

	/* RabbitMQ refuses to declare amq.* exchanges; they always exist. */
	if (strncmp(x, "amq.", 4) != 0 &&
	    bus_exchange_declare(bus, x, "topic", true, NULL) == -1) {
		log_warnx("notify_exchange %s: %s", x, bus_error(bus));
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	n->bus = bus;
	n->exchange = xstrdup(x);
	n->prefix =
	    xstrdup(server->notify_topic_prefix ? server->notify_topic_prefix
						: "org.resbus");
	TAILQ_INIT(&n->events);
	log_info("notifications to exchange %s as %s.resbus.*", n->exchange,
	    n->prefix);
	return n;
}

void
notify_free(struct notify *n)
{
	struct nevent *e;

	if (n == NULL)
		return;
	while ((e = TAILQ_FIRST(&n->events)) != NULL) {
		TAILQ_REMOVE(&n->events, e, entry);
		nevent_free(e);
	}
	free(n->exchange);
	free(n->prefix);
	free(n);
}

/* ---- events -------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
notify_observe(struct notify *n, const struct sched_event *ev)
{
	struct nevent *e;

	if (n == NULL)
		return;
	e = xcalloc(1, sizeof(*e));
	e->ticket = ev->kind == SCHED_EV_TICKET;
	e->what = ev->what;
	if (e->ticket) {
		e->id = ev->ticket->id;
		e->tags = dup_or_null(ev->ticket->tags);
		e->sandbox = dup_or_null(ev->ticket->sandbox);
		e->owner = dup_or_null(ev->ticket->owner);
		e->class_ = dup_or_null(ev->ticket->class_);
		e->closed_reason = dup_or_null(ev->ticket->closed_reason);
		e->res_id = ev->ticket->resource_id;
		e->res_name = dup_or_null(ev->ticket->resource_name);
		e->res_pool = dup_or_null(ev->ticket->resource_pool);
	} else {
		e->id = e->res_id = ev->resource->id;
		e->res_name = dup_or_null(ev->resource->name);
		e->res_pool = dup_or_null(ev->resource->pool);
	}
	TAILQ_INSERT_TAIL(&n->events, e, entry);
}

/* The JSON body of E; caller frees. */
static char *
nevent_body(const struct nevent *e)
{
	struct sched_ticket_info t;
	json_object *top = json_object_new_object(), *o;
	char *body;

	if (e->ticket) {
		memset(&t, 0, sizeof(t));
		t.id = e->id;
		t.tags = e->tags;
		t.sandbox = e->sandbox;
		t.owner = e->owner;
		t.class_ = e->class_;
		t.closed_reason = e->closed_reason;
		t.resource_id = e->res_id;
		t.resource_name = e->res_name;
		t.resource_pool = e->res_pool;
		json_object_object_add(top, "ticket", json_ticket(&t, e->what));
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_uint64(e->id));
		json_object_object_add(
		    o, "name", json_str_or_null(e->res_name));
		json_object_object_add(
		    o, "pool", json_str_or_null(e->res_pool));
		json_object_object_add(
		    o, "state", json_object_new_string(e->what));
		json_object_object_add(top, "resource", o);
	}
	body = xstrdup(json_object_to_json_string_ext(
	    top, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(top);
	return body;
}

void
notify_seal(struct notify *n, const void *txn)
{
	struct nevent *e;

	if (n == NULL)
		return;
	TAILQ_FOREACH(e, &n->events, entry)
	if (e->txn == NULL)
		e->txn = txn;
}

/* ---- publishing ---------------------------------------------------------- */

static void
publish_one(struct notify *n, const struct nevent *e)
{
	const char *object = e->ticket ? "ticket" : "resource";
	struct bus_header h[6];
	char *user = NULL;
	struct bus_props props;
	char uuid[37], sent_at[40], *key, *schema, *url, *body;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(sent_at, sizeof(sent_at), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	uuid_make(uuid);
	schema = xasprintf("resbus.%s.%s", object, e->what);
	key = xasprintf("%s.%s", n->prefix, schema);
	url = xasprintf("%s%s.json", SCHEMA_URL_BASE, schema);
	memset(h, 0, sizeof(h));
	h[0].key = "fedora_messaging_schema";
	h[0].kind = BUS_HDR_STRING;
	h[0].s = schema;
	h[1].key = "fedora_messaging_severity";
	h[1].kind = BUS_HDR_INT;
	h[1].i =
	    strcmp(e->what, "failed") == 0 ? SEVERITY_WARNING : SEVERITY_INFO;
	h[2].key = "sent-at";
	h[2].kind = BUS_HDR_STRING;
	h[2].s = sent_at;
	h[3].key = "priority";
	h[3].kind = BUS_HDR_INT;
	h[3].i = 0;
	h[4].key = "resbus_schema";
	h[4].kind = BUS_HDR_STRING;
	h[4].s = url;
	memset(&props, 0, sizeof(props));
	props.content_type = "application/json";
	props.content_encoding = "utf-8";
	props.message_id = uuid;
	props.persistent = true;
	props.headers = h;
	props.nheaders = 5;
	/* fedora_messaging_user_<owner>: whose event it is. */
	if (e->owner != NULL && strlen(e->owner) < 200) {
		user = xasprintf("fedora_messaging_user_%s", e->owner);
		h[5].key = user;
		h[5].kind = BUS_HDR_BOOL;
		h[5].i = 1;
		props.nheaders = 6;
	}
	props.priority = 0;
	props.has_priority = true;
	/* The confirm of this publish matches none of the broker's
	 * outbox messages, so it is simply not waited for. */
	body = nevent_body(e);
	if (bus_publish(n->bus, n->exchange, key, &props, body, strlen(body),
		NULL) == -1)
		log_warnx("notify: %s: %s", key, bus_error(n->bus));
	else
		log_debug("notify: %s %s", key, body);
	free(body);
	free(user);
	free(key);
	free(url);
	free(schema);
}

void
notify_publish(struct notify *n, const void *txn)
{
	struct nevent *e, *next;

	if (n == NULL)
		return;
	TAILQ_FOREACH_SAFE(e, &n->events, entry, next)
	{
		if (e->txn != txn)
			continue;
		TAILQ_REMOVE(&n->events, e, entry);
		publish_one(n, e);
		nevent_free(e);
	}
}
