/*
 * notify -- fedora-messaging-style JSON notifications.
 *
 * The scheduler's events say what changed but not everything a listener
 * wants to read: a TicketUpdate carries the ticket's ID and state, not its
 * tags, sandbox or resource.  Asking the scheduler for one ticket costs a
 * walk over all of them, so this module keeps what it needs itself: a
 * small record per live ticket (tags and sandbox, from its creation; its
 * resource once it is READY) and per live resource (name, pool, whether
 * it was announced up).  Both are filled from the scheduler's views when
 * the broker starts and kept by the hooks afterwards.
 *
 * The resource a READY ticket got is looked up once per transaction, in
 * notify_seal(), with one walk over the live resources for all the
 * tickets that became READY in it; so the cost does not grow with the
 * number of tickets in a busy transaction.
 *
 * Wire format (see fedora-messaging's wire-format description): a JSON
 * object body, content_type application/json, content_encoding utf-8,
 * delivery_mode 2, message_id a version 4 UUID, and the headers
 * fedora_messaging_schema ("resbus.ticket.ready"),
 * fedora_messaging_severity (20 info, 30 warning for a failed ticket),
 * sent-at (ISO 8601 UTC without fractions, "2019-07-30T19:12:22+00:00")
 * and priority 0.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
/* libbsd's tree.h marks generated functions __unused without defining it. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>

#include <json-c/json.h>

#include "bus.h"
#include "conf.h"
#include "log.h"
#include "notify.h"
#include "resbus.pb-c.h"
#include "sched.h"
#include "util.h"

#define SEVERITY_INFO 20
#define SEVERITY_WARNING 30

/* What the module remembers of a live ticket. */
struct nticket {
	RB_ENTRY(nticket) by_id;
	uint64_t id;
	char *tags;	      /* canonical tag-set key */
	char *sandbox;	      /* NULL: none */
	uint64_t resource_id; /* 0: not known (yet) */
	char *resource_name, *resource_pool;
};

/* What the module remembers of a live resource. */
struct nresource {
	RB_ENTRY(nresource) by_id;
	uint64_t id;
	char *name, *pool;
	/* "up" was announced, or it was up when resbusd started */
	bool up;
};

enum nevent_kind {
	NEV_TICKET,
	NEV_RESOURCE,
};

/* One notification waiting for its transaction to commit. */
struct nevent {
	TAILQ_ENTRY(nevent) entry;
	enum nevent_kind kind;
	const char *what; /* "ready", "up"...: static */
	uint64_t id;
	char *tags, *sandbox; /* tickets */
	char *owner;	      /* tickets: NULL if unknown */
	uint64_t resource_id; /* tickets: 0 if none; resources: id */
	char *resource_name, *resource_pool;
	const void *txn; /* NULL until sealed */
	char *body;	 /* JSON, built when sealed */
};
TAILQ_HEAD(nevent_list, nevent);

RB_HEAD(nticket_ids, nticket);
RB_HEAD(nresource_ids, nresource);

struct notify {
	struct sched *sched;
	struct bus *bus;
	char *exchange;
	char *prefix;
	struct nticket_ids tickets;
	struct nresource_ids resources;
	uint64_t last_ticket_id; /* highest ticket announced or known */
	struct nevent_list events;
};

static int
nticket_cmp(const struct nticket *a, const struct nticket *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
nresource_cmp(const struct nresource *a, const struct nresource *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE_STATIC(nticket_ids, nticket, by_id, nticket_cmp)
RB_GENERATE_STATIC(nresource_ids, nresource, by_id, nresource_cmp)

static char *
strdup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

/* ---- the records -------------------------------------------------------- */

static struct nticket *
ticket_find(struct notify *n, uint64_t id)
{
	struct nticket k = {.id = id};

	return RB_FIND(nticket_ids, &n->tickets, &k);
}

static struct nticket *
ticket_add(struct notify *n, uint64_t id, const char *tags, const char *sandbox)
{
	struct nticket *t = xcalloc(1, sizeof(*t));

	t->id = id;
	t->tags = xstrdup(tags);
	t->sandbox = strdup_or_null(sandbox);
	if (RB_INSERT(nticket_ids, &n->tickets, t) != NULL)
		fatalx("notify: ticket %llu recorded twice",
		    (unsigned long long)id);
	if (id > n->last_ticket_id)
		n->last_ticket_id = id;
	return t;
}

static void
ticket_free(struct nticket *t)
{
	free(t->tags);
	free(t->sandbox);
	free(t->resource_name);
	free(t->resource_pool);
	free(t);
}

static struct nresource *
resource_find(struct notify *n, uint64_t id)
{
	struct nresource k = {.id = id};

	return RB_FIND(nresource_ids, &n->resources, &k);
}

static struct nresource *
resource_add(
    struct notify *n, uint64_t id, const char *name, const char *pool, bool up)
{
	struct nresource *r = xcalloc(1, sizeof(*r));

	r->id = id;
	r->name = xstrdup(name);
	r->pool = xstrdup(pool);
	r->up = up;
	if (RB_INSERT(nresource_ids, &n->resources, r) != NULL)
		fatalx("notify: resource %llu recorded twice",
		    (unsigned long long)id);
	return r;
}

static void
resource_free(struct nresource *r)
{
	free(r->name);
	free(r->pool);
	free(r);
}

/* ---- events -------------------------------------------------------------- */

static void
nevent_free(struct nevent *e)
{
	free(e->tags);
	free(e->sandbox);
	free(e->owner);
	free(e->resource_name);
	free(e->resource_pool);
	free(e->body);
	free(e);
}

static void
ticket_event(struct notify *n, const struct nticket *t, const char *what,
    const char *owner)
{
	struct nevent *e = xcalloc(1, sizeof(*e));

	e->owner = strdup_or_null(owner);
	e->kind = NEV_TICKET;
	e->what = what;
	e->id = t->id;
	e->tags = xstrdup(t->tags);
	e->sandbox = t->sandbox ? xstrdup(t->sandbox) : NULL;
	e->resource_id = t->resource_id;
	e->resource_name = t->resource_name ? xstrdup(t->resource_name) : NULL;
	e->resource_pool = t->resource_pool ? xstrdup(t->resource_pool) : NULL;
	TAILQ_INSERT_TAIL(&n->events, e, entry);
}

static void
resource_event(struct notify *n, const struct nresource *r, const char *what)
{
	struct nevent *e = xcalloc(1, sizeof(*e));

	e->kind = NEV_RESOURCE;
	e->what = what;
	e->id = r->id;
	e->resource_id = r->id;
	e->resource_name = xstrdup(r->name);
	e->resource_pool = xstrdup(r->pool);
	TAILQ_INSERT_TAIL(&n->events, e, entry);
}

/* ---- start-up ------------------------------------------------------------ */

static void
load_ticket(void *arg, const struct sched_ticket_info *i)
{
	struct notify *n = arg;
	struct nticket *t;
	struct nresource *r;

	t = ticket_add(n, i->id, i->tags, i->sandbox);
	if (i->resource_id != 0) {
		t->resource_id = i->resource_id;
		if ((r = resource_find(n, i->resource_id)) != NULL) {
			t->resource_name = xstrdup(r->name);
			t->resource_pool = xstrdup(r->pool);
		} else if (i->resource_name != NULL) {
			t->resource_name = xstrdup(i->resource_name);
		}
	}
}

static void
load_resource(void *arg, const struct sched_resource_view *v)
{
	struct notify *n = arg;

	(void)resource_add(
	    n, v->id, v->name, v->pool, strcmp(v->state, "STARTING") != 0);
}

struct notify *
notify_new(
    const struct conf_server *server, struct sched *sched, struct bus *bus)
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
	n->sched = sched;
	n->bus = bus;
	n->exchange = xstrdup(x);
	n->prefix =
	    xstrdup(server->notify_topic_prefix ? server->notify_topic_prefix
						: "org.resbus");
	RB_INIT(&n->tickets);
	RB_INIT(&n->resources);
	TAILQ_INIT(&n->events);
	sched_foreach_resource(sched, load_resource, n);
	sched_foreach_ticket(sched, load_ticket, n);
	log_info("notifications to exchange %s as %s.resbus.*", n->exchange,
	    n->prefix);
	return n;
}

void
notify_free(struct notify *n)
{
	struct nticket *t, *tn;
	struct nresource *r, *rn;
	struct nevent *e;

	if (n == NULL)
		return;
	RB_FOREACH_SAFE(t, nticket_ids, &n->tickets, tn)
	{
		RB_REMOVE(nticket_ids, &n->tickets, t);
		ticket_free(t);
	}
	RB_FOREACH_SAFE(r, nresource_ids, &n->resources, rn)
	{
		RB_REMOVE(nresource_ids, &n->resources, r);
		resource_free(r);
	}
	while ((e = TAILQ_FIRST(&n->events)) != NULL) {
		TAILQ_REMOVE(&n->events, e, entry);
		nevent_free(e);
	}
	free(n->exchange);
	free(n->prefix);
	free(n);
}

/* ---- hooks --------------------------------------------------------------- */

void
notify_ticket_open(struct notify *n, uint64_t id, const char *key,
    const char *sandbox, const char *owner)
{
	struct nticket *t;

	/* IDs only grow: a known one is a retried request's answer. */
	if (n == NULL || id <= n->last_ticket_id || ticket_find(n, id) != NULL)
		return;
	t = ticket_add(n, id, key, sandbox);
	ticket_event(n, t, "open", owner);
}

static void
on_ticket_update(struct notify *n, const Resbus__V1__TicketUpdate *u)
{
	struct nticket *t = ticket_find(n, u->ticket_id);
	struct sched_ticket_view v;
	const char *what;

	switch (u->state) {
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_READY:
		what = "ready";
		break;
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED:
		what = "failed";
		break;
	case RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED:
		what = "closed";
		break;
	default:
		return;
	}
	if (t == NULL) {
		/* Not seen at start or creation: say what is known. */
		log_debug("notify: ticket %llu unknown; its tags are not "
			  "announced",
		    (unsigned long long)u->ticket_id);
		t = ticket_add(n, u->ticket_id, "", NULL);
	}
	/* Still in memory, even when closing: the event comes first.  Not
	 * OPEN, so the view costs no waiting reason. */
	if (sched_ticket_view(n->sched, u->ticket_id, &v) != 1)
		v.owner = NULL;
	ticket_event(n, t, what, v.owner);
	if (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED) {
		RB_REMOVE(nticket_ids, &n->tickets, t);
		ticket_free(t);
	}
}

static void
on_allocate(struct notify *n, const Resbus__V1__Allocate *a)
{
	const Resbus__V1__ResourceRef *ref = a->resource;
	struct nresource *r;

	/* A job sent again (a redelivered start) is no new resource. */
	if (ref == NULL || resource_find(n, ref->resource_id) != NULL)
		return;
	r = resource_add(n, ref->resource_id, ref->name, ref->pool, false);
	resource_event(n, r, "starting");
}

void
notify_emit(struct notify *n, const ProtobufCMessage *m)
{
	if (n == NULL)
		return;
	if (m->descriptor == &resbus__v1__ticket_update__descriptor)
		on_ticket_update(n, (const Resbus__V1__TicketUpdate *)m);
	else if (m->descriptor == &resbus__v1__allocate__descriptor)
		on_allocate(n, (const Resbus__V1__Allocate *)m);
}

static void
resource_state_fn(void *arg, const struct sched_resource_view *v)
{
	snprintf(arg, 32, "%s", v->state);
}

void
notify_resource_result(struct notify *n, uint64_t id)
{
	struct nresource *r;
	char state[32];

	if (n == NULL || (r = resource_find(n, id)) == NULL)
		return;
	if (sched_resource_find(n->sched, id, NULL, resource_state_fn, state) ==
	    0) {
		resource_event(n, r, "deleted");
		RB_REMOVE(nresource_ids, &n->resources, r);
		resource_free(r);
		return;
	}
	if (!r->up && strcmp(state, "UP") == 0) {
		r->up = true;
		resource_event(n, r, "up");
	}
}

/* ---- sealing: the resources of READY tickets, and the bodies ----------- */

struct pending {
	struct nevent **v; /* sorted by ticket ID */
	size_t n;
};

static int
pending_cmp(const void *a, const void *b)
{
	const struct nevent *x = *(struct nevent *const *)a;
	const struct nevent *y = *(struct nevent *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void
pending_match(void *arg, const struct sched_resource_view *v)
{
	struct pending *p = arg;
	struct nevent k, *kp = &k, **hit;
	size_t i;

	if (v->ticket_id == 0)
		return;
	k.id = v->ticket_id;
	hit = bsearch(&kp, p->v, p->n, sizeof(*p->v), pending_cmp);
	if (hit == NULL)
		return;
	/* Several events of one ticket sit side by side. */
	while (hit > p->v && hit[-1]->id == v->ticket_id)
		hit--;
	for (i = (size_t)(hit - p->v); i < p->n && p->v[i]->id == v->ticket_id;
	     i++) {
		if (p->v[i]->resource_id != 0)
			continue;
		p->v[i]->resource_id = v->id;
		p->v[i]->resource_name = xstrdup(v->name);
		p->v[i]->resource_pool = xstrdup(v->pool);
	}
}

/* Fills in the resources of unsealed ticket events that lack one. */
static void
seal_resources(struct notify *n)
{
	struct pending p = {NULL, 0};
	struct nevent *e;
	struct nticket *t;
	size_t cap = 0, i;

	TAILQ_FOREACH(e, &n->events, entry)
	{
		if (e->txn != NULL || e->kind != NEV_TICKET ||
		    e->resource_id != 0 || strcmp(e->what, "open") == 0)
			continue;
		if (p.n == cap) {
			cap = cap ? cap * 2 : 16;
			p.v = xrealloc(p.v, cap * sizeof(*p.v));
		}
		p.v[p.n++] = e;
	}
	if (p.n == 0)
		return;
	qsort(p.v, p.n, sizeof(*p.v), pending_cmp);
	sched_foreach_resource(n->sched, pending_match, &p);
	/* Remember it for the ticket's later events (failed, closed). */
	for (i = 0; i < p.n; i++) {
		e = p.v[i];
		if (e->resource_id == 0 ||
		    (t = ticket_find(n, e->id)) == NULL || t->resource_id != 0)
			continue;
		t->resource_id = e->resource_id;
		t->resource_name = xstrdup(e->resource_name);
		t->resource_pool =
		    e->resource_pool ? xstrdup(e->resource_pool) : NULL;
	}
	free(p.v);
}

static json_object *
json_str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* The tags of a canonical tag-set key ("a+b+c") as a JSON list. */
static json_object *
json_key_tags(const char *key)
{
	json_object *a = json_object_new_array();
	const char *p = key, *plus;

	while (p != NULL && *p != '\0') {
		plus = strchr(p, '+');
		if (plus == NULL) {
			json_object_array_add(a, json_object_new_string(p));
			break;
		}
		json_object_array_add(
		    a, json_object_new_string_len(p, (int)(plus - p)));
		p = plus + 1;
	}
	return a;
}

/* The JSON body of E; caller frees. */
static char *
nevent_body(const struct nevent *e)
{
	json_object *top = json_object_new_object();
	json_object *o = json_object_new_object();
	json_object *res = NULL;
	char *body;

	json_object_object_add(o, "id", json_object_new_uint64(e->id));
	if (e->kind == NEV_TICKET) {
		json_object_object_add(
		    o, "state", json_object_new_string(e->what));
		json_object_object_add(o, "tags", json_key_tags(e->tags));
		json_object_object_add(
		    o, "sandbox", json_str_or_null(e->sandbox));
		if (e->resource_id != 0) {
			res = json_object_new_object();
			json_object_object_add(
			    res, "id", json_object_new_uint64(e->resource_id));
			json_object_object_add(
			    res, "name", json_str_or_null(e->resource_name));
			json_object_object_add(
			    res, "pool", json_str_or_null(e->resource_pool));
		}
		json_object_object_add(o, "resource", res);
		json_object_object_add(top, "ticket", o);
	} else {
		json_object_object_add(
		    o, "name", json_str_or_null(e->resource_name));
		json_object_object_add(
		    o, "pool", json_str_or_null(e->resource_pool));
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
	seal_resources(n);
	TAILQ_FOREACH(e, &n->events, entry)
	{
		if (e->txn != NULL)
			continue;
		e->txn = txn;
		e->body = nevent_body(e);
	}
}

/* ---- publishing ---------------------------------------------------------- */

static void
publish_one(struct notify *n, const struct nevent *e)
{
	const char *object = e->kind == NEV_TICKET ? "ticket" : "resource";
	struct bus_header h[5];
	char *user = NULL;
	struct bus_props props;
	char uuid[37], sent_at[40], *key, *schema;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(sent_at, sizeof(sent_at), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	uuid_make(uuid);
	schema = xasprintf("resbus.%s.%s", object, e->what);
	key = xasprintf("%s.%s", n->prefix, schema);
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
	memset(&props, 0, sizeof(props));
	props.content_type = "application/json";
	props.content_encoding = "utf-8";
	props.message_id = uuid;
	props.persistent = true;
	props.headers = h;
	props.nheaders = 4;
	/* fedora_messaging_user_<owner>: whose event it is. */
	if (e->owner != NULL && strlen(e->owner) < 200) {
		user = xasprintf("fedora_messaging_user_%s", e->owner);
		h[4].key = user;
		h[4].kind = BUS_HDR_BOOL;
		h[4].i = 1;
		props.nheaders = 5;
	}
	props.priority = 0;
	props.has_priority = true;
	/* The confirm of this publish matches none of the broker's
	 * outbox messages, so it is simply not waited for. */
	if (bus_publish(n->bus, n->exchange, key, &props, e->body,
		strlen(e->body), NULL) == -1)
		log_warnx("notify: %s: %s", key, bus_error(n->bus));
	else
		log_debug("notify: %s %s", key, e->body);
	free(user);
	free(key);
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
