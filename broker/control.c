/*
 * control -- operators' commands, dispatched by name through a table.
 *
 * Every command answers with a ControlReply of data: the rows of
 * resources, tickets or pools, or the broker's status, which
 * resbus-maint formats (resalloc-maint's lines, or JSON).  Refusals name
 * the reason.  A request of another control protocol version
 * (MSG_CONTROL_VERSION) is refused, with both versions named.
 *
 * The reply's `error` names what went wrong when `ok` is false; when `ok`
 * is true, `warnings` say what was not done (resource-delete of a
 * resource that is not UP does nothing and says so, but is no failure,
 * as in resalloc-maint).
 *
 * A resource's data (what its cmd_new printed: addresses, often
 * credentials) is in the answers to admins only.  What the owner of a
 * ticket may see of its resource, the ticket's own answers give.
 *
 * The reply is built of allocated strings and rows and freed whole with
 * protobuf_c_message_free_unpacked.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "peers.h"
#include "sched.h"
#include "tags.h"
#include "util.h"

/* What a handler builds up; freed by control_handle. */
struct answer {
	Resbus__V1__ControlReply *reply;
	char *error; /* failure, without the command name */
	bool admin;  /* the user is one of the admins */
	bool up;     /* resources: the UP ones only */
};

static void answer_fail(struct answer *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
answer_fail(struct answer *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	free(a->error);
	a->error = s;
	a->reply->ok = false;
}

/* Adds a warning (taken); the reply stays ok. */
static void
answer_warn(struct answer *a, char *warning)
{
	Resbus__V1__ControlReply *r = a->reply;

	r->warnings =
	    xrealloc(r->warnings, (r->n_warnings + 1) * sizeof(*r->warnings));
	r->warnings[r->n_warnings++] = warning;
}

/* A copy of S for a string field of the reply, freed with it; "" (not
 * allocated, and so not freed) for NULL or "".  Not for repeated fields,
 * whose every value is freed. */
static char *
field(const char *s)
{
	return s == NULL || s[0] == '\0' ? (char *)protobuf_c_empty_string
					 : xstrdup(s);
}

/* Appends ROW to the N rows of array V (of ROW's pointer type). */
#define ROW_ADD(v, n, row)                                                     \
	do {                                                                   \
		(v) = xrealloc((v), ((n) + 1) * sizeof(*(v)));                 \
		(v)[(n)++] = (row);                                            \
	} while (0)

struct control_cmd {
	const char *name;
	bool mutating; /* allowed to admins only */
	void (*fn)(struct sched *s, const Resbus__V1__ControlRequest *req,
	    const struct control_ops *ops, struct answer *a);
};

/* ---- resources ---------------------------------------------------------- */

static void
resource_row(void *arg, const struct sched_resource_view *v)
{
	struct answer *a = arg;
	Resbus__V1__ControlResource *r;
	size_t i;

	if (a->up && strcmp(v->state, "UP") != 0)
		return;
	r = xmalloc(sizeof(*r));
	resbus__v1__control_resource__init(r);
	r->id = v->id;
	r->name = field(v->name);
	r->pool = field(v->pool);
	r->state = field(v->state);
	if ((r->data_shown = a->admin)) {
		r->no_data = v->data == NULL;
		if (v->data != NULL && v->data_len > 0) {
			r->data.data = xmalloc(v->data_len);
			memcpy(r->data.data, v->data, v->data_len);
			r->data.len = v->data_len;
		}
	}
	r->ticket_id = v->ticket_id;
	r->sandbox = field(v->sandbox);
	r->releases = v->releases;
	r->check_failed = v->check_failed;
	r->id_in_pool = v->id_in_pool;
	r->created_ms = v->created_ms;
	for (i = 0; i < v->ntags; i++)
		ROW_ADD(r->tags, r->n_tags, xstrdup(v->tags[i]));
	ROW_ADD(a->reply->resources, a->reply->n_resources, r);
}

static void
cmd_resource_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)ops;
	a->up = req->up;
	sched_foreach_resource(s, resource_row, a);
	a->reply->ok = true;
}

static void
cmd_resource_info(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	const char *arg;
	uint64_t id = 0;
	int found;

	(void)ops;
	if (req->n_args != 1) {
		answer_fail(a, "give one resource ID or name");
		return;
	}
	arg = req->args[0];
	if (parse_u64(arg, &id) == 0)
		found = sched_resource_find(s, id, NULL, resource_row, a);
	else
		found = sched_resource_find(s, 0, arg, resource_row, a);
	if (!found) {
		answer_fail(a, "Unknown resource: %s", arg);
		return;
	}
	a->reply->ok = true;
}

struct pick {
	uint64_t *ids;
	size_t n;
	bool unused;
};

static void
resource_pick(void *arg, const struct sched_resource_view *v)
{
	struct pick *p = arg;

	if (strcmp(v->state, "UP") != 0)
		return;
	if (p->unused && (v->ticket_id != 0 || v->check_failed > 0))
		return;
	p->ids = xrealloc(p->ids, (p->n + 1) * sizeof(*p->ids));
	p->ids[p->n++] = v->id;
}

/*
 * resalloc-maint's resource-delete: --all is every UP resource (the
 * tickets of taken ones become FAILED), --unused the UP ones without a
 * ticket and without livecheck failures; otherwise the IDs given, which
 * are ignored when --all or --unused is there.
 */
static void
cmd_resource_delete(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct pick p;
	uint64_t id;
	size_t i;

	(void)ops;
	memset(&p, 0, sizeof(p));
	if (req->all || req->unused) {
		p.unused = req->unused && !req->all;
		sched_foreach_resource(s, resource_pick, &p);
	} else {
		if (req->n_args == 0) {
			answer_fail(a, "no resources specified");
			return;
		}
		for (i = 0; i < req->n_args; i++) {
			if (parse_u64(req->args[i], &id) == -1) {
				answer_fail(
				    a, "bad resource ID '%s'", req->args[i]);
				free(p.ids);
				return;
			}
			p.ids = xrealloc(p.ids, (p.n + 1) * sizeof(*p.ids));
			p.ids[p.n++] = id;
		}
	}
	for (i = 0; i < p.n; i++) {
		if (sched_resource_delete(s, p.ids[i]) == 1)
			log_info("control: resource %" PRIu64 " deleted by an "
				 "operator",
			    p.ids[i]);
		else
			answer_warn(a, xasprintf("resource %" PRIu64 " is not "
						 "an UP resource; not deleted",
					   p.ids[i]));
	}
	free(p.ids);
	a->reply->ok = true;
}

/* ---- tickets ------------------------------------------------------------ */

static void
ticket_row(void *arg, const struct sched_ticket_info *t)
{
	struct answer *a = arg;
	Resbus__V1__ControlTicket *r;

	r = xmalloc(sizeof(*r));
	resbus__v1__control_ticket__init(r);
	r->id = t->id;
	r->state = field(t->state);
	/* (A ticket's key is canonical; an empty one has no tags.) */
	if (tagset_split(t->tags, &r->tags, &r->n_tags) == -1) {
		r->tags = NULL;
		r->n_tags = 0;
	}
	r->sandbox = field(t->sandbox);
	r->owner = field(t->owner);
	r->delegate = field(t->delegate);
	r->resource_id = t->resource_id;
	r->resource = field(t->resource_name);
	r->created_ms = t->created_ms;
	r->waiting = field(t->waiting_reason);
	ROW_ADD(a->reply->tickets, a->reply->n_tickets, r);
}

static void
cmd_ticket_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)req;
	(void)ops;
	sched_foreach_ticket(s, ticket_row, a);
	a->reply->ok = true;
}

/* An operator's close: as a client's TicketClose, for admins only. */
static void
cmd_ticket_close(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	uint64_t id;

	(void)ops;
	if (req->n_args != 1 || parse_u64(req->args[0], &id) == -1) {
		answer_fail(a, "give one ticket ID");
		return;
	}
	if (sched_ticket_close(s, id) != 1) {
		answer_fail(a, "no open ticket %" PRIu64, id);
		return;
	}
	log_info("control: ticket %" PRIu64 " closed by an operator", id);
	a->reply->ok = true;
}

/* ---- pools -------------------------------------------------------------- */

static void
pool_row(void *arg, const struct sched_pool_view *v)
{
	struct answer *a = arg;
	Resbus__V1__ControlPool *r;

	r = xmalloc(sizeof(*r));
	resbus__v1__control_pool__init(r);
	r->name = field(v->name);
	if ((r->configured = v->conf != NULL)) {
		r->max = v->conf->max;
		r->max_prealloc = v->conf->max_prealloc;
		r->max_starting = v->conf->max_starting;
	}
	r->paused = v->paused;
	r->starting = v->starting;
	r->free = v->free;
	r->released = v->released;
	r->taken = v->taken;
	r->releasing = v->releasing;
	r->deleting = v->deleting;
	r->waiting = v->waiting;
	r->starts_ok = v->starts_ok;
	r->starts_failed = v->starts_failed;
	r->start_ms_avg = v->start_ms_avg;
	r->last_start_ms = v->last_start_ms;
	ROW_ADD(a->reply->pools, a->reply->n_pools, r);
}

static void
cmd_pool_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)req;
	(void)ops;
	sched_foreach_pool(s, pool_row, a);
	a->reply->ok = true;
}

/* The one pool argument of REQ, or NULL with the failure in A. */
static const char *
pool_arg(const Resbus__V1__ControlRequest *req, struct answer *a)
{
	if (req->n_args != 1 || req->args[0][0] == '\0') {
		answer_fail(a, "give one pool name");
		return NULL;
	}
	return req->args[0];
}

static void
pool_set_paused(struct sched *s, const Resbus__V1__ControlRequest *req,
    struct answer *a, bool paused)
{
	const char *pool;

	if ((pool = pool_arg(req, a)) == NULL)
		return;
	if (sched_pool_pause(s, pool, paused) != 1) {
		answer_fail(a, "Unknown pool: %s", pool);
		return;
	}
	a->reply->ok = true;
}

static void
cmd_pool_pause(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)ops;
	pool_set_paused(s, req, a, true);
}

static void
cmd_pool_resume(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)ops;
	pool_set_paused(s, req, a, false);
}

static void
cmd_pool_drain(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	const char *pool;

	(void)ops;
	if ((pool = pool_arg(req, a)) == NULL)
		return;
	if (sched_pool_drain(s, pool) != 1) {
		answer_fail(a, "Unknown pool: %s", pool);
		return;
	}
	a->reply->ok = true;
}

/* Which broker answers: the active one, since when, with which epoch, and
 * the standbys it hears. */
static void
cmd_broker_status(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	Resbus__V1__ControlStandby *sb;
	Resbus__V1__ControlBroker *r;
	struct control_status st;
	size_t i;

	(void)s;
	(void)req;
	if (ops->status == NULL) {
		answer_fail(a, "no status to give");
		return;
	}
	memset(&st, 0, sizeof(st));
	ops->status(ops->ctx, &st);
	r = xmalloc(sizeof(*r));
	resbus__v1__control_broker__init(r);
	r->who = field(st.who);
	r->since_ms = st.since_ms;
	r->epoch = st.epoch;
	for (i = 0; st.standbys != NULL && i < st.standbys->n; i++) {
		sb = xmalloc(sizeof(*sb));
		resbus__v1__control_standby__init(sb);
		sb->who = field(st.standbys->peer[i].who);
		sb->since_ms = st.standbys->peer[i].since_ms;
		sb->heard_ms_ago = st.now_ms - st.standbys->peer[i].heard_ms;
		ROW_ADD(r->standbys, r->n_standbys, sb);
	}
	a->reply->broker = r;
	a->reply->ok = true;
}

static void
cmd_reload(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	char err[1024];

	(void)s;
	(void)req;
	if (ops->reload(ops->ctx, err, sizeof(err)) == -1) {
		answer_fail(a, "pools.yaml not reloaded: %s", err);
		return;
	}
	a->reply->ok = true;
}

static const struct control_cmd control_cmds[] = {
    {"resource-list", false, cmd_resource_list},
    {"resource-info", false, cmd_resource_info},
    {"resource-delete", true, cmd_resource_delete},
    {"ticket-list", false, cmd_ticket_list},
    {"ticket-close", true, cmd_ticket_close},
    {"pool-list", false, cmd_pool_list},
    {"pool-pause", true, cmd_pool_pause},
    {"pool-resume", true, cmd_pool_resume},
    {"pool-drain", true, cmd_pool_drain},
    {"reload", true, cmd_reload},
    {"broker-status", false, cmd_broker_status},
};

void
control_handle(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct bus_delivery *d, const struct control_ops *ops)
{
	const struct control_cmd *cmd = NULL;
	const char *user;
	struct answer a;
	char *error = NULL;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.reply = xmalloc(sizeof(*a.reply));
	resbus__v1__control_reply__init(a.reply);
	a.reply->version = MSG_CONTROL_VERSION;
	user = d->user_id != NULL ? d->user_id : "";
	if (req->version != MSG_CONTROL_VERSION) {
		error = xasprintf("control protocol version %" PRIu32
				  " is not resbusd's (version %d): use the "
				  "resbus-maint of resbusd's release",
		    req->version, MSG_CONTROL_VERSION);
		log_warnx("control: refused to user \"%s\": %s", user, error);
		goto reply;
	}
	for (i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]); i++)
		if (strcmp(control_cmds[i].name, req->command) == 0)
			cmd = &control_cmds[i];
	if (cmd == NULL) {
		error = xasprintf("unknown command \"%s\"", req->command);
		goto reply;
	}
	if (cmd->mutating && !ops->is_admin(ops->ctx, user)) {
		log_warnx("control: %s refused to user \"%s\" (not in admins)",
		    cmd->name, user);
		error = xasprintf("%s: user \"%s\" is not one of the admins "
				  "in server.yaml",
		    cmd->name, user[0] ? user : "(none)");
		goto reply;
	}
	log_info("control: %s by \"%s\"", cmd->name, user);
	a.admin = ops->is_admin(ops->ctx, user);
	cmd->fn(s, req, ops, &a);
	if (a.error != NULL) {
		error = xasprintf("%s: %s", cmd->name, a.error);
		log_info("control: %s", error);
	}
reply:
	if (error != NULL || !a.reply->ok) {
		a.reply->ok = false;
		a.reply->error =
		    xstrdup(error != NULL ? error : "command failed");
	}
	ops->reply(ops->ctx, d, &a.reply->base);
	protobuf_c_message_free_unpacked(&a.reply->base, NULL);
	free(a.error);
	free(error);
}
