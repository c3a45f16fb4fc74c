/*
 * Unit tests of sched, the broker's scheduler, linked with the SQLite
 * store in a fresh directory and a sink for what it emits.  Each test
 * drives it as the broker does (requests, job results, scheduling steps,
 * commits, a restart as a new scheduler loading the same store) and
 * checks what a user would see: a ticket's state and closed reason, the
 * error of a refused request, the jobs sent, the queues dropped.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "bus.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "util.h"

#define MAX_TICKETS 64
#define MAX_STARTS 64

/* What the scheduler sent, as the bus would carry it. */
struct sink {
	struct {
		uint64_t id;
		char pool[64];
		char name[128];
	} starts[MAX_STARTS];         /* Allocate jobs */
	size_t nstarts;
	int state[MAX_TICKETS];       /* last TicketUpdate state, by ID */
	char reason[MAX_TICKETS][128];
	size_t ndeletes;              /* Delete jobs */
	uint64_t delete_id;           /* of the last one */
	char delete_pool[64];
	char delete_name[128];
	uint64_t sweep_id;            /* of the last List job */
	char retired[8][64];
	size_t nretired;
	/* TicketUpdates to reply queues (the default exchange) */
	size_t nreplies;
	char reply_queue[64];         /* of the last one */
	uint64_t reply_ticket;
	int reply_state;
	uint64_t reply_resource;
	char reply_name[128];
	char reply_output[64];
	uint64_t delete_ids[MAX_STARTS]; /* of every Delete job, in order */
	size_t ncancels;                 /* Cancel broadcasts */
	uint64_t cancel_id;              /* of the last one */
	char cancel_key[64];
	size_t nreleases;                /* Release jobs */
	uint64_t release_id;             /* of the last one */
	char release_pool[64];
	char release_name[128];
};

struct fixture {
	char dir[64];
	char *url;
	struct conf_pools *pools;
	struct conf_server *server;
	struct store *st;
	struct ev_loop *loop;
	struct sched *s;
	struct sink sink;
};

static void
sink_emit(void *ctx, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	struct sink *k = ctx;

	if (m->descriptor == &resbus__v1__allocate__descriptor) {
		const Resbus__V1__Allocate *a = (const void *)m;

		ck_assert_uint_lt(k->nstarts, MAX_STARTS);
		k->starts[k->nstarts].id = a->resource->resource_id;
		snprintf(k->starts[k->nstarts].pool,
		    sizeof(k->starts[0].pool), "%s", a->resource->pool);
		snprintf(k->starts[k->nstarts].name,
		    sizeof(k->starts[0].name), "%s", a->resource->name);
		k->nstarts++;
	} else if (m->descriptor == &resbus__v1__ticket_update__descriptor &&
	    exchange[0] == '\0') {
		const Resbus__V1__TicketUpdate *u = (const void *)m;

		k->nreplies++;
		snprintf(k->reply_queue, sizeof(k->reply_queue), "%s", key);
		k->reply_ticket = u->ticket_id;
		k->reply_state = u->state;
		k->reply_resource = u->resource_id;
		snprintf(k->reply_name, sizeof(k->reply_name), "%s",
		    u->resource_name);
		snprintf(k->reply_output, sizeof(k->reply_output), "%.*s",
		    (int)u->output.len, (const char *)u->output.data);
	} else if (m->descriptor == &resbus__v1__ticket_update__descriptor) {
		const Resbus__V1__TicketUpdate *u = (const void *)m;

		if (u->ticket_id < MAX_TICKETS) {
			k->state[u->ticket_id] = u->state;
			snprintf(k->reason[u->ticket_id],
			    sizeof(k->reason[0]), "%s",
			    u->closed_reason ? u->closed_reason : "");
		}
	} else if (m->descriptor == &resbus__v1__delete__descriptor) {
		const Resbus__V1__Delete *d = (const void *)m;

		ck_assert_uint_lt(k->ndeletes, MAX_STARTS);
		k->delete_ids[k->ndeletes] = d->resource->resource_id;
		k->ndeletes++;
		k->delete_id = d->resource->resource_id;
		snprintf(k->delete_pool, sizeof(k->delete_pool), "%s",
		    d->resource->pool);
		snprintf(k->delete_name, sizeof(k->delete_name), "%s",
		    d->resource->name);
	} else if (m->descriptor == &resbus__v1__list__descriptor) {
		k->sweep_id = ((const Resbus__V1__List *)m)->sweep_id;
	} else if (m->descriptor == &resbus__v1__cancel__descriptor) {
		const Resbus__V1__Cancel *c = (const void *)m;

		k->ncancels++;
		k->cancel_id = c->resource->resource_id;
		snprintf(k->cancel_key, sizeof(k->cancel_key), "%s", key);
	} else if (m->descriptor == &resbus__v1__release__descriptor) {
		const Resbus__V1__Release *r = (const void *)m;

		k->nreleases++;
		k->release_id = r->resource->resource_id;
		snprintf(k->release_pool, sizeof(k->release_pool), "%s",
		    r->resource->pool);
		snprintf(k->release_name, sizeof(k->release_name), "%s",
		    r->resource->name);
	}
}

static void
sink_wake(void *ctx)
{
}

static void
sink_retire(void *ctx, const char *key)
{
	struct sink *k = ctx;

	ck_assert_uint_lt(k->nretired, 8);
	snprintf(k->retired[k->nretired++], sizeof(k->retired[0]), "%s", key);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void
no_outbox(void *arg, const struct store_outbox *o)
{
}

static void
commit_done(void *arg, bool ok)
{
	ck_assert(ok);
}

static void
commit(struct fixture *f)
{
	ck_assert_int_eq(store_commit(f->st, commit_done, NULL), 0);
	/* The loop's clock as at the broker's next iteration: timers armed
	 * from here on count from now, not from the last run of the loop
	 * (a commit on a loaded machine can take a while). */
	ev_now_update(f->loop);
}

/* A scheduler on F's store, as resbusd makes it at start. */
static void
sched_start(struct fixture *f)
{
	struct sched_ops ops = {
		.emit = sink_emit, .wake = sink_wake, .ctx = &f->sink,
		.retire = sink_retire,
	};
	char err[512];

	f->st = store_open(f->url, err, sizeof(err));
	ck_assert_msg(f->st != NULL, "%s", err);
	f->s = sched_new(f->loop, f->st, "resbus", f->pools, &ops);
	sched_set_policy(f->s, f->server);
	ck_assert_int_eq(sched_load(f->s, no_outbox, NULL), 0);
	commit(f);
}

static void
sched_stop(struct fixture *f)
{
	commit(f);
	sched_free(f->s);
	store_close(f->st);
	f->s = NULL;
	f->st = NULL;
}

/* A fixture with POOLS and SERVER (YAML texts) in a fresh directory. */
static struct fixture *
fixture_new(const char *pools, const char *server)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char path[128], err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/check_sched.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/pools.yaml", f->dir);
	write_file(path, pools);
	f->pools = conf_pools_load(path, err, sizeof(err));
	ck_assert_msg(f->pools != NULL, "%s", err);
	snprintf(path, sizeof(path), "%s/server.yaml", f->dir);
	write_file(path, server);
	f->server = conf_server_load(path, err, sizeof(err));
	ck_assert_msg(f->server != NULL, "%s", err);
	f->url = xasprintf("sqlite:///%s/db.sqlite", f->dir);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	sched_start(f);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	char cmd[128];

	sched_stop(f);
	ev_loop_destroy(f->loop);
	conf_pools_free(f->pools);
	conf_server_free(f->server);
	free(f->url);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	ck_assert_int_eq(system(cmd), 0);
	free(f);
}

/* A restart: the scheduler is dropped and a new one loads the store. */
static void
restart(struct fixture *f)
{
	sched_stop(f);
	sched_start(f);
}

/* A ticket request; the ID, or 0 with the error in ERR. */
static uint64_t
ticket(struct fixture *f, const char *owner, const char *key,
    const char *class_, const char *idem, int64_t deadline_ms, char *err,
    size_t errlen)
{
	struct sched_ticket_req req;
	uint64_t id = 0;

	memset(&req, 0, sizeof(req));
	req.idem_key = idem ? idem : "";
	req.key = key;
	req.owner = owner;
	req.class_ = class_;
	req.deadline_ms = deadline_ms;
	if (sched_ticket_new(f->s, &req, &id, err, errlen) == -1)
		return 0;
	ck_assert_uint_ne(id, 0);
	return id;
}

/* A ticket request with a class, a sandbox and a lease (NULL, 0: none),
 * which must be accepted; its ID. */
static uint64_t
ticket_with(struct fixture *f, const char *owner, const char *key,
    const char *class_, const char *sandbox, uint32_t lease_s)
{
	struct sched_ticket_req req;
	uint64_t id = 0;
	char err[256];

	memset(&req, 0, sizeof(req));
	req.idem_key = "";
	req.key = key;
	req.owner = owner;
	req.class_ = class_;
	req.sandbox = sandbox;
	req.lease_s = lease_s;
	ck_assert_msg(sched_ticket_new(f->s, &req, &id, err, sizeof(err)) == 0,
	    "refused: %s", err);
	ck_assert_uint_ne(id, 0);
	return id;
}

static uint64_t
ticket_ok(struct fixture *f, const char *owner, const char *key)
{
	return ticket_with(f, owner, key, NULL, NULL, 0);
}

/* The in-memory state of ticket ID: 0 when it is not in memory. */
static int
ticket_state(struct fixture *f, uint64_t id)
{
	struct sched_ticket_view v;

	if (sched_ticket_view(f->s, id, &v) == 0)
		return 0;
	return v.state;
}

/* The resource of start I, as its worker names it in a result. */
static void
start_ref(struct fixture *f, size_t i, Resbus__V1__ResourceRef *ref)
{
	ck_assert_uint_lt(i, f->sink.nstarts);
	resbus__v1__resource_ref__init(ref);
	ref->resource_id = f->sink.starts[i].id;
	ref->pool = f->sink.starts[i].pool;
	ref->name = f->sink.starts[i].name;
}

/* Ends the start of REF as a worker would: OK with what cmd_new printed
 * (DATA, LEN bytes), or failed. */
static void
allocate_result(struct fixture *f, Resbus__V1__ResourceRef *ref, bool ok,
    const char *data, size_t len)
{
	Resbus__V1__AllocateResult ar = RESBUS__V1__ALLOCATE_RESULT__INIT;

	ar.resource = ref;
	ar.ok = ok;
	ar.exit_status = ok ? 0 : 1;
	ar.data.data = (uint8_t *)data;
	ar.data.len = len;
	ar.worker = (char *)"w";
	sched_on_allocated(f->s, &ar);
}

/* Ends start I as a worker would, with OK, its cmd_new printing DATA
 * (LEN bytes). */
static void
allocated_data(struct fixture *f, size_t i, const char *data, size_t len)
{
	Resbus__V1__ResourceRef ref;

	start_ref(f, i, &ref);
	allocate_result(f, &ref, true, data, len);
}

/* Ends start I as a worker would, with OK, for POOL and NAME. */
static void
allocated_as(struct fixture *f, size_t i, const char *pool, const char *name)
{
	Resbus__V1__ResourceRef ref;

	start_ref(f, i, &ref);
	ref.pool = (char *)pool;
	ref.name = (char *)name;
	allocate_result(f, &ref, true, "host\n", 5);
}

static void
allocated(struct fixture *f, size_t i)
{
	allocated_data(f, i, "host\n", 5);
}

/* Ends every start sent so far as a worker would, with OK. */
static void
allocated_all(struct fixture *f)
{
	size_t i;

	for (i = 0; i < f->sink.nstarts; i++)
		allocated(f, i);
}

/* Ends start I as a worker whose cmd_new failed. */
static void
allocate_failed(struct fixture *f, size_t i)
{
	Resbus__V1__ResourceRef ref;

	start_ref(f, i, &ref);
	allocate_result(f, &ref, false, NULL, 0);
}

/* Ends the last Delete job as a worker would. */
static void
deleted(struct fixture *f)
{
	Resbus__V1__DeleteResult dr = RESBUS__V1__DELETE_RESULT__INIT;
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;

	ref.resource_id = f->sink.delete_id;
	ref.pool = f->sink.delete_pool;
	ref.name = f->sink.delete_name;
	dr.resource = &ref;
	dr.ok = true;
	dr.worker = (char *)"w";
	sched_on_deleted(f->s, &dr);
}

static void
step(struct fixture *f)
{
	sched_touch(f->s);
	sched_run(f->s);
	commit(f);
}

/* A step sends NSTARTS starts, which all end OK; the next step sees
 * their resources up. */
static void
starts_up(struct fixture *f, size_t nstarts)
{
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, nstarts);
	allocated_all(f);
	step(f);
}

static void
stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* Runs F's loop (its timers) for SECONDS. */
static void
run_for(struct fixture *f, double seconds)
{
	ev_timer t;

	ev_timer_init(&t, stop_loop, seconds, 0.);
	ev_timer_start(f->loop, &t);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &t);
	commit(f);
}

#define READY RESBUS__V1__TICKET_STATE__TICKET_STATE_READY
#define OPEN RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN
#define CLOSED RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED

/* Asserts that ticket ID is READY with a resource of POOL; its ID. */
static uint64_t
ready_in(struct fixture *f, uint64_t id, const char *pool)
{
	struct sched_ticket_view v;

	ck_assert_int_eq(sched_ticket_view(f->s, id, &v), 1);
	ck_assert_msg(v.state == READY, "ticket %" PRIu64 " is not READY: %s",
	    id, v.waiting_reason ? v.waiting_reason : "(no reason)");
	ck_assert_ptr_nonnull(v.resource_pool);
	ck_assert_str_eq(v.resource_pool, pool);
	ck_assert_uint_ne(v.resource_id, 0);
	return v.resource_id;
}

/* OWNER's ticket for KEY (in SANDBOX, or NULL) is served at the next
 * step by a resource of POOL; its ID. */
static uint64_t
served(struct fixture *f, const char *owner, const char *key,
    const char *sandbox, const char *pool)
{
	uint64_t t = ticket_with(f, owner, key, NULL, sandbox, 0);

	step(f);
	return ready_in(f, t, pool);
}

/* A resource of POOL that served a ticket of SANDBOX (alice's, for a),
 * closed: released there, as the next step left it; its ID. */
static uint64_t
released_in(struct fixture *f, const char *pool, const char *sandbox)
{
	uint64_t t = ticket_with(f, "alice", "a", NULL, sandbox, 0), r;

	step(f);
	r = ready_in(f, t, pool);
	ck_assert_int_eq(sched_ticket_close(f->s, t), 1);
	step(f);
	return r;
}

static const char *two_of_a =
    "p:\n  max: 2\n  max_prealloc: 2\n  max_starting: 2\n"
    "  cmd_new: \"echo x\"\n  cmd_delete: \"true\"\n  tags: [a, b, c]\n";

/*
 * A ticket held back by per_owner: 1 stays held back after a restart,
 * while the first one still holds its resource; it is served once that
 * one is closed.
 */
static void
held_back_across_restart(const char *server, const char *class_)
{
	struct fixture *f = fixture_new(two_of_a, server);
	struct sched_ticket_view v;
	uint64_t t1, t2;

	t1 = ticket_with(f, "alice", "a", class_, NULL, 0);
	t2 = ticket_with(f, "alice", "a", class_, NULL, 0);
	starts_up(f, 2);
	ck_assert_int_eq(ticket_state(f, t1), READY);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);

	restart(f);
	step(f);
	ck_assert_int_eq(ticket_state(f, t1), READY);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	ck_assert_int_eq(sched_ticket_view(f->s, t2, &v), 1);
	ck_assert_ptr_nonnull(v.waiting_reason);
	ck_assert_msg(strstr(v.waiting_reason, class_ ? "class c at its cap" :
	    "owner alice at limit") != NULL, "reason: %s", v.waiting_reason);

	/* The share is given back once: t2 is served, nothing more. */
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_int_eq(ticket_state(f, t2), READY);
	restart(f);
	step(f);
	ck_assert_int_eq(ticket_state(f, t2), READY);
	fixture_free(f);
}

START_TEST(test_limit_after_restart)
{
	held_back_across_restart("limits:\n  - per_owner: 1\n", NULL);
}
END_TEST

START_TEST(test_cap_after_restart)
{
	held_back_across_restart("classes:\n  c:\n    caps: {p: 1}\n", "c");
}
END_TEST

/* A ticket arriving past its deadline is recorded closed, never served. */
START_TEST(test_deadline_on_arrival)
{
	struct fixture *f = fixture_new(two_of_a, "");
	uint64_t id;
	char err[256];

	starts_up(f, 2);
	id = ticket(f, "alice", "a", NULL, NULL, now_wall_ms() - 1000, err,
	    sizeof(err));
	ck_assert_msg(id != 0, "%s", err);
	step(f);
	ck_assert_int_eq(ticket_state(f, id), 0);
	ck_assert_int_eq(f->sink.state[id], CLOSED);
	ck_assert_str_eq(f->sink.reason[id],
	    "deadline passed before the ticket arrived");
	ck_assert_uint_eq(sched_open_tickets(f->s), 0);
	/* both resources are still free for the next ticket */
	served(f, "alice", "a", NULL, "p");
	fixture_free(f);
}
END_TEST

/*
 * A ticket whose deadline passes while it waits is not served by the next
 * step, even when its timer has not fired yet (a busy loop, a restart).
 */
START_TEST(test_deadline_at_assignment)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a]\n", "");
	uint64_t late, other;
	char err[256];

	late = ticket(f, "alice", "a", NULL, NULL, now_wall_ms() + 200, err,
	    sizeof(err));
	ck_assert_msg(late != 0, "%s", err);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	usleep(300 * 1000);      /* the loop does not run: no timer fires */
	allocated(f, 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, late), 0);
	ck_assert_int_eq(f->sink.state[late], CLOSED);
	ck_assert_str_eq(f->sink.reason[late],
	    "deadline passed before a resource was ready");
	/* the resource went to nobody and serves the next ticket */
	other = ticket_ok(f, "bob", "a");
	step(f);
	ck_assert_int_eq(ticket_state(f, other), READY);

	/* the same after a restart, with the deadline passed while down */
	ck_assert_int_eq(sched_ticket_close(f->s, other), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	late = ticket(f, "alice", "a", NULL, NULL, now_wall_ms() + 200, err,
	    sizeof(err));
	ck_assert_msg(late != 0, "%s", err);
	step(f);
	restart(f);
	usleep(300 * 1000);
	deleted(f);
	f->sink.nstarts = 0;
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	allocated(f, 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, late), 0);
	ck_assert_int_eq(f->sink.state[late], CLOSED);
	ck_assert_str_eq(f->sink.reason[late],
	    "deadline passed before a resource was ready");
	fixture_free(f);
}
END_TEST

/*
 * Refused requests leave nothing behind: 20000 of them, no new lane
 * (tags no pool provides are refused only with refuse_unprovidable).
 */
START_TEST(test_refusal_frees)
{
	struct fixture *f = fixture_new("p:\n  cmd_new: x\n  cmd_delete: y\n"
	    "  tags: [a]\nq:\n  cmd_new: x\n  cmd_delete: y\n  tags: [z]\n",
	    "refuse_unprovidable: true\n");
	size_t before, i;
	char key[32], err[256];

	ticket_ok(f, "alice", "a");
	before = sched_tagsets(f->s);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "nope%zu", i);
		ck_assert_uint_eq(ticket(f, "mallory", key, NULL, NULL, 0, err,
		    sizeof(err)), 0);
		ck_assert_str_eq(err + strlen("no pool provides tag "), key);
		snprintf(key, sizeof(key), "a+nope%zu", i);
		ck_assert_uint_eq(ticket(f, "mallory", key, NULL, NULL, 0, err,
		    sizeof(err)), 0);
		/* each tag has a pool, no pool has both */
		ck_assert_uint_eq(ticket(f, "mallory", "a+z", NULL, NULL, 0,
		    err, sizeof(err)), 0);
		ck_assert_str_eq(err, "no single pool provides all of the "
		    "tags a+z");
	}
	ck_assert_uint_eq(sched_tagsets(f->s), before);
	fixture_free(f);
}
END_TEST

/* max_open_tickets_per_owner: a clear refusal, per owner, across restarts. */
START_TEST(test_owner_cap)
{
	struct fixture *f = fixture_new(two_of_a,
	    "max_open_tickets_per_owner: 3\n");
	uint64_t ids[3];
	char err[256];
	size_t i;

	for (i = 0; i < 3; i++) {
		ids[i] = ticket(f, "alice", "a", NULL, i == 0 ? "k0" : NULL, 0,
		    err, sizeof(err));
		ck_assert_msg(ids[i] != 0, "refused: %s", err);
	}
	ck_assert_uint_eq(ticket(f, "alice", "b", NULL, NULL, 0, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(err, "owner alice has 3 open tickets, the limit of "
	    "max_open_tickets_per_owner");
	/* a repeated request is answered as before */
	ck_assert_uint_eq(ticket(f, "alice", "a", NULL, "k0", 0, err,
	    sizeof(err)), ids[0]);
	/* others are not held back by alice */
	ticket_ok(f, "bob", "a");
	step(f);
	restart(f);
	ck_assert_uint_eq(ticket(f, "alice", "b", NULL, NULL, 0, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(err, "owner alice has 3 open tickets, the limit of "
	    "max_open_tickets_per_owner");
	/* a closed ticket no longer counts, READY and FAILED ones do */
	ck_assert_int_eq(sched_ticket_close(f->s, ids[1]), 1);
	ticket_ok(f, "alice", "b");
	ck_assert_uint_eq(ticket(f, "alice", "b", NULL, NULL, 0, err,
	    sizeof(err)), 0);
	fixture_free(f);
}
END_TEST

/* max_tagsets: new tag sets are refused, known ones still served. */
START_TEST(test_tagset_cap)
{
	struct fixture *f = fixture_new(two_of_a, "max_tagsets: 2\n");
	uint64_t a;
	char err[256];

	a = ticket_ok(f, "alice", "a");
	ck_assert_int_eq(sched_tagset_add(f->s, "a"), 1);
	ticket_ok(f, "alice", "b");
	ck_assert_int_eq(sched_tagset_add(f->s, "b"), 1);
	ck_assert_uint_eq(ticket(f, "alice", "c", NULL, NULL, 0, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(err, "too many tag sets (2, max_tagsets)");
	ck_assert_uint_eq(sched_tagsets(f->s), 2);
	ck_assert_uint_ne(ticket_ok(f, "bob", "a"), a);
	fixture_free(f);
}
END_TEST

static void
count_tagset(void *arg, const char *key)
{
	(*(size_t *)arg)++;
}

static size_t
persisted_tagsets(struct fixture *f)
{
	size_t n = 0;

	sched_foreach_tagset(f->s, count_tagset, &n);
	return n;
}

/*
 * A tag set with no tickets for tagset_idle_s is retired (memory, store,
 * ops->retire); one with a ticket stays; a later ticket makes it again.
 */
START_TEST(test_tagset_retire)
{
	struct fixture *f = fixture_new(two_of_a, "tagset_idle_s: 1\n");
	uint64_t a;

	a = ticket_ok(f, "alice", "a");
	ck_assert_int_eq(sched_tagset_add(f->s, "a"), 1);
	ticket_ok(f, "alice", "b");
	ck_assert_int_eq(sched_tagset_add(f->s, "b"), 1);
	step(f);
	ck_assert_int_eq(sched_ticket_close(f->s, a), 1);
	step(f);
	run_for(f, 0.5);
	ck_assert_uint_eq(f->sink.nretired, 0);   /* not idle long enough */
	run_for(f, 1.2);
	ck_assert_uint_eq(f->sink.nretired, 1);
	ck_assert_str_eq(f->sink.retired[0], "a");
	ck_assert_uint_eq(persisted_tagsets(f), 1);
	ck_assert_uint_eq(sched_tagsets(f->s), 1);
	restart(f);
	ck_assert_uint_eq(persisted_tagsets(f), 1);   /* the row is gone */
	/* a new ticket of the retired tag set makes it again */
	ticket_ok(f, "bob", "a");
	ck_assert_int_eq(sched_tagset_add(f->s, "a"), 1);
	ck_assert_uint_eq(persisted_tagsets(f), 2);
	fixture_free(f);
}
END_TEST

static void
collect_ticket(void *arg, const struct sched_ticket_info *t)
{
	uint64_t **p = arg;

	*(*p)++ = t->id;
}

static void
collect_resource(void *arg, const struct sched_resource_view *v)
{
	uint64_t **p = arg;

	*(*p)++ = v->id;
}

START_TEST(test_paging)
{
	struct fixture *f = fixture_new(two_of_a, "");
	uint64_t ids[10], got[10], *p, after;
	size_t i, n = 0;
	int k;

	for (i = 0; i < 10; i++)
		ids[i] = ticket_ok(f, "alice", "a");
	ck_assert_int_eq(sched_ticket_close(f->s, ids[4]), 1);
	for (after = 0;;) {
		p = got;
		k = sched_foreach_ticket_from(f->s, after, 3, collect_ticket,
		    &p);
		ck_assert_int_le(k, 3);
		ck_assert_int_eq(p - got, k);
		if (k == 0)
			break;
		for (i = 0; i < (size_t)k; i++) {
			ck_assert_uint_gt(got[i], after);
			after = got[i];
			n++;
		}
	}
	ck_assert_uint_eq(n, 9);     /* in ID order, the closed one left out */
	p = got;
	ck_assert_int_eq(sched_foreach_ticket_from(f->s, ids[3], 1,
	    collect_ticket, &p), 1);
	ck_assert_uint_eq(got[0], ids[5]);
	ck_assert_int_eq(sched_foreach_ticket_from(f->s, ids[9], 5,
	    collect_ticket, &p), 0);
	ck_assert_int_eq(sched_foreach_ticket_from(f->s, 0, 0,
	    collect_ticket, &p), 0);
	step(f);                       /* two resources start */
	p = got;
	ck_assert_int_eq(sched_foreach_resource_from(f->s, 0, 1,
	    collect_resource, &p), 1);
	ck_assert_int_eq(sched_foreach_resource_from(f->s, got[0], 5,
	    collect_resource, &p), 1);
	ck_assert_uint_gt(got[1], got[0]);
	ck_assert_int_eq(sched_foreach_resource_from(f->s, got[1], 5,
	    collect_resource, &p), 0);
	fixture_free(f);
}
END_TEST

static void
listed(struct fixture *f, const char *pool, uint64_t sweep, const char *name)
{
	Resbus__V1__ListResult lr = RESBUS__V1__LIST_RESULT__INIT;
	char *names[1] = { (char *)name };

	lr.pool = (char *)pool;
	lr.sweep_id = sweep;
	lr.names = names;
	lr.n_names = 1;
	lr.ok = true;
	sched_on_listed(f->s, &lr);
}

/* A ListResult counts only for the pool's latest sweep, once. */
START_TEST(test_list_sweep)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 1\n  max_prealloc: 0\n  cmd_new: x\n  cmd_delete: y\n"
	    "  cmd_list: z\n  cmd_list_period: 1\n  tags: [a]\n", "");
	uint64_t sweep;

	listed(f, "p", 1, "orphan");          /* no sweep sent yet */
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	run_for(f, 1.3);
	ck_assert_uint_ne(f->sink.sweep_id, 0);
	sweep = f->sink.sweep_id;
	listed(f, "p", sweep - 1, "orphan");  /* an older sweep */
	listed(f, "p", sweep + 1, "orphan");  /* a guess */
	listed(f, "nope", sweep, "orphan");   /* no such pool */
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	listed(f, "p", sweep, "orphan");
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_str_eq(f->sink.delete_name, "orphan");
	listed(f, "p", sweep, "orphan2");     /* answered already */
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	/* sweep IDs do not start over with a restart */
	restart(f);
	listed(f, "p", sweep, "orphan3");
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	fixture_free(f);
}
END_TEST

/* A result whose pool or name is not the resource's changes nothing. */
START_TEST(test_result_mismatch)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n  cmd_delete: y\n"
	    "  tags: [a]\nq:\n  max: 1\n  max_prealloc: 0\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [b]\n", "");
	uint64_t t;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	t = ticket_ok(f, "alice", "a");
	allocated_as(f, 0, "q", f->sink.starts[0].name);
	allocated_as(f, 0, "p", "someone-else");
	step(f);
	ck_assert_int_eq(ticket_state(f, t), OPEN);
	allocated(f, 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, t), READY);
	fixture_free(f);
}
END_TEST

/* ---- what the scheduler decides ---------------------------------------- */

/* Asserts that ticket ID waits, for a reason that says WHY. */
static void
waits_for(struct fixture *f, uint64_t id, const char *why)
{
	struct sched_ticket_view v;

	ck_assert_int_eq(sched_ticket_view(f->s, id, &v), 1);
	ck_assert_msg(v.state == OPEN, "ticket %" PRIu64 " does not wait",
	    id);
	ck_assert_ptr_nonnull(v.waiting_reason);
	ck_assert_msg(strstr(v.waiting_reason, why) != NULL,
	    "ticket %" PRIu64 " waits because %s, not %s", id,
	    v.waiting_reason, why);
}

/* A live resource as the views show it; state "" once it has ended. */
struct seen {
	char state[32];
	char pool[64];
	char sandbox[64];
	uint64_t ticket_id;
};

static void
seen_copy(void *arg, const struct sched_resource_view *v)
{
	struct seen *s = arg;

	snprintf(s->state, sizeof(s->state), "%s", v->state);
	snprintf(s->pool, sizeof(s->pool), "%s", v->pool);
	snprintf(s->sandbox, sizeof(s->sandbox), "%s",
	    v->sandbox ? v->sandbox : "");
	s->ticket_id = v->ticket_id;
}

static struct seen
resource_seen(struct fixture *f, uint64_t id)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	(void)sched_resource_find(f->s, id, NULL, seen_copy, &s);
	return s;
}

/* How many Allocate jobs went to POOL. */
static size_t
starts_in(struct fixture *f, const char *pool)
{
	size_t i, n = 0;

	for (i = 0; i < f->sink.nstarts; i++)
		if (strcmp(f->sink.starts[i].pool, pool) == 0)
			n++;
	return n;
}

/* Whether a Delete job was sent for resource ID. */
static bool
delete_sent(struct fixture *f, uint64_t id)
{
	size_t i;

	for (i = 0; i < f->sink.ndeletes; i++)
		if (f->sink.delete_ids[i] == id)
			return true;
	return false;
}

/* Ends the last Release job as a worker would, with OK. */
static void
released(struct fixture *f, bool ok)
{
	Resbus__V1__ReleaseResult rr = RESBUS__V1__RELEASE_RESULT__INIT;
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;

	ck_assert_uint_gt(f->sink.nreleases, 0);
	ref.resource_id = f->sink.release_id;
	ref.pool = f->sink.release_pool;
	ref.name = f->sink.release_name;
	rr.resource = &ref;
	rr.ok = ok;
	rr.exit_status = ok ? 0 : 1;
	rr.worker = (char *)"w";
	sched_on_released(f->s, &rr);
}

/*
 * The score: among the free resources that carry a ticket's tags, the one
 * whose pool gives the requested tags the highest sum of priorities wins
 * (resalloc's example: A has foo 0, bar 1, baz 2; B has foo 10, bar 3,
 * baz 1).  Once B's are taken, A's serve.
 */
START_TEST(test_score_priority)
{
	struct fixture *f = fixture_new(
	    "A:\n  max: 3\n  max_prealloc: 3\n  max_starting: 3\n"
	    "  cmd_new: x\n  cmd_delete: y\n"
	    "  tags: [foo, {name: bar, priority: 1}, "
	    "{name: baz, priority: 2}]\n"
	    "B:\n  max: 3\n  max_prealloc: 3\n  max_starting: 3\n"
	    "  cmd_new: x\n  cmd_delete: y\n"
	    "  tags: [{name: foo, priority: 10}, {name: bar, priority: 3}, "
	    "{name: baz, priority: 1}]\n",
	    "");
	uint64_t t3, t4;

	starts_up(f, 6);
	served(f, "alice", "bar+baz", NULL, "B"); /* A 3, B 4 */
	served(f, "alice", "baz", NULL, "A");     /* A 2, B 1 */
	t3 = ticket_ok(f, "alice", "foo");        /* A 0, B 10 */
	t4 = ticket_ok(f, "alice", "bar");        /* A 1, B 3 */
	step(f);
	ready_in(f, t3, "B");
	ready_in(f, t4, "B");
	served(f, "alice", "bar+baz", NULL, "A"); /* B has none free */
	ck_assert_uint_eq(f->sink.nstarts, 6);  /* both pools at max */
	fixture_free(f);
}
END_TEST

/*
 * Equal scores: the lowest resource ID, whichever pool's name sorts
 * first and whichever resource came up first.
 */
START_TEST(test_score_tie_lowest_id)
{
	struct fixture *f = fixture_new(
	    "z:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a]\n"
	    "b:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a]\n",
	    "");
	size_t low;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	low = f->sink.starts[0].id < f->sink.starts[1].id ? 0 : 1;
	allocated(f, 1 - low);  /* the higher ID comes up first */
	step(f);
	allocated(f, low);
	step(f);
	ck_assert_uint_eq(served(f, "alice", "a", NULL,
	    f->sink.starts[low].pool), f->sink.starts[low].id);
	ck_assert_uint_eq(served(f, "alice", "a", NULL,
	    f->sink.starts[1 - low].pool), f->sink.starts[1 - low].id);
	fixture_free(f);
}
END_TEST

/*
 * Equal scores in one pool go to the lowest resource ID too, whichever
 * came up first.
 */
START_TEST(test_score_tie_in_pool)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 2\n  max_prealloc: 2\n  max_starting: 2\n"
	    "  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n",
	    "");
	size_t low;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	low = f->sink.starts[0].id < f->sink.starts[1].id ? 0 : 1;
	allocated(f, 1 - low); /* the higher ID comes up first */
	step(f);
	allocated(f, low);
	step(f);
	ck_assert_uint_eq(served(f, "alice", "a", NULL, "p"),
	    f->sink.starts[low].id);
	ck_assert_uint_eq(served(f, "alice", "a", NULL, "p"),
	    f->sink.starts[1 - low].id);
	fixture_free(f);
}
END_TEST

/*
 * The +500 of reuse against a tag priority PRIO: a ticket of sandbox s1
 * may take the resource released in s1 (pool lo, where its tag scores 0)
 * or a free one of pool hi, where its tag scores PRIO.  With REUSE_WINS
 * it takes the released one and a ticket of another sandbox the free
 * one; else it takes the free one, and the released one stays in s1
 * (a ticket of another sandbox does not get it either).
 */
static void
reuse_vs_priority(int prio, bool reuse_wins)
{
	char *pools = xasprintf(
	    "lo:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  reuse_opportunity_time: 60\n  tags: [a]\n"
	    "hi:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  reuse_opportunity_time: 60\n"
	    "  tags: [{name: a, priority: %d}]\n",
	    prio);
	struct fixture *f = fixture_new(pools, "");
	uint64_t r, h, t3;
	size_t lo;

	free(pools);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	lo = strcmp(f->sink.starts[0].pool, "lo") == 0 ? 0 : 1;
	allocated(f, lo); /* hi's resource is still starting */
	step(f);
	r = released_in(f, "lo", "s1");
	ck_assert_str_eq(resource_seen(f, r).state, "UP");
	allocated(f, 1 - lo); /* hi's resource: free, scores PRIO */
	step(f);
	h = f->sink.starts[1 - lo].id;
	ck_assert_uint_ne(h, r);
	if (reuse_wins) {
		ck_assert_uint_eq(served(f, "bob", "a", "s1", "lo"), r);
		ck_assert_uint_eq(served(f, "carol", "a", "s2", "hi"), h);
	} else {
		ck_assert_uint_eq(served(f, "bob", "a", "s1", "hi"), h);
		t3 = ticket_with(f, "carol", "a", NULL, "s2", 0);
		step(f);
		ck_assert_int_eq(ticket_state(f, t3), OPEN);
		ck_assert_str_eq(resource_seen(f, r).state, "UP");
		ck_assert_str_eq(resource_seen(f, r).sandbox, "s1");
	}
	fixture_free(f);
}

/*
 * A resource released in a ticket's sandbox (+500) wins over a free one
 * whose pool gives the tag a higher priority (10); a ticket of another
 * sandbox gets the free one.
 */
START_TEST(test_score_reuse_bonus)
{
	reuse_vs_priority(10, true);
}
END_TEST

/*
 * A tag priority above the +500 of reuse wins: the ticket of the sandbox
 * takes the free resource of the pool that gives its tag 600, not the
 * one released in its sandbox, which stays there.
 */
START_TEST(test_score_priority_beats_reuse)
{
	reuse_vs_priority(600, false);
}
END_TEST

/* A livecheck of start I, as a worker reports it. */
static void
checked(struct fixture *f, size_t i, bool ok)
{
	Resbus__V1__LivecheckResult lr = RESBUS__V1__LIVECHECK_RESULT__INIT;
	Resbus__V1__ResourceRef ref;

	start_ref(f, i, &ref);
	lr.resource = &ref;
	lr.ok = ok;
	lr.exit_status = ok ? 0 : 1;
	lr.worker = (char *)"w";
	sched_on_checked(f->s, &lr);
}

static void
pool_free_count(void *arg, const struct sched_pool_view *v)
{
	*(size_t *)arg = v->free;
}

/*
 * A free resource whose livechecks fail is handed to no ticket until one
 * passes, still counts as free (in the pool's view and its
 * preallocation), and goes to the waiting ticket once a check passes.
 * Its start printed nothing (an UP result without data).
 */
START_TEST(test_failing_free_resource_waits)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 2\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  cmd_livecheck: z\n  livecheck_period: 600\n"
	    "  livecheck_attempts: 3\n  tags: [t]\n",
	    "");
	size_t nfree = 0;
	uint64_t id;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	allocated_data(f, 0, NULL, 0);
	step(f);
	checked(f, 0, false);
	step(f);
	sched_foreach_pool(f->s, pool_free_count, &nfree);
	ck_assert_uint_eq(nfree, 1);
	ck_assert_uint_eq(f->sink.nstarts, 1);

	id = ticket_ok(f, "alice", "t");
	step(f);
	ck_assert_int_eq(ticket_state(f, id), OPEN);
	checked(f, 0, true);
	step(f);
	ck_assert_uint_eq(ready_in(f, id, "p"), f->sink.starts[0].id);
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	fixture_free(f);
}
END_TEST

/*
 * A start of a resource that has ended (its Allocate sent again after a
 * restart) is deleted by name; one of a live resource's name is not.
 */
START_TEST(test_allocated_after_end)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a]\n",
	    "");
	uint64_t id;
	size_t ndel;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	id = f->sink.starts[0].id;
	allocated(f, 0);
	step(f);
	ck_assert_int_eq(sched_resource_delete(f->s, id), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	deleted(f);
	step(f);
	ck_assert_str_eq(resource_seen(f, id).state, ""); /* gone */
	ndel = f->sink.ndeletes;

	allocated(f, 0); /* the same start again, after the end */
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, ndel + 1);
	ck_assert_uint_eq(f->sink.delete_id, id);
	ck_assert_str_eq(f->sink.delete_name, f->sink.starts[0].name);
	fixture_free(f);
}
END_TEST

/*
 * Smallest fit: a numeric requirement (memory>=6) matches a pool tag
 * memory=N that satisfies it, and among equal scores the smallest N
 * wins; <= picks the smallest too; a requirement no pool meets waits.
 */
START_TEST(test_smallest_fit)
{
	struct fixture *f = fixture_new(
	    "m16:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a, memory=16]\n"
	    "m4:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a, memory=4]\n"
	    "m8:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a, memory=8]\n",
	    "");
	uint64_t t4;

	starts_up(f, 3);
	served(f, "alice", "a+memory>=6", NULL, "m8");
	served(f, "alice", "a+memory>=6", NULL, "m16");
	served(f, "alice", "memory<=16", NULL, "m4");
	t4 = ticket_ok(f, "alice", "memory>16");
	step(f);
	waits_for(f, t4, "no pool provides tag memory>16");
	fixture_free(f);
}
END_TEST

/* The score comes before the fit: a tag's priority beats a smaller fit. */
START_TEST(test_fit_after_score)
{
	struct fixture *f = fixture_new(
	    "small:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [memory=8]\n"
	    "big:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [{name: memory=64, priority: 1}]\n",
	    "");
	starts_up(f, 2);
	served(f, "alice", "memory>=4", NULL, "big");
	served(f, "alice", "memory>=4", NULL, "small");
	fixture_free(f);
}
END_TEST

/*
 * The on-demand pool a ticket starts in: the best score, then the
 * smallest numeric fit, then the pool's name.
 */
START_TEST(test_ondemand_pool_choice)
{
	struct fixture *f = fixture_new(
	    "od8:\n  max: 2\n  max_starting: 2\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [memory=8]\n  tags_on_demand: [gpu]\n"
	    "od16:\n  max: 2\n  max_starting: 2\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [memory=16]\n  tags_on_demand: [gpu]\n"
	    "pref:\n  max: 1\n  max_starting: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [memory=64]\n"
	    "  tags_on_demand: [{name: fast, priority: 5}, gpu]\n"
	    "other:\n  max: 1\n  max_starting: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [memory=8]\n  tags_on_demand: [fast]\n",
	    "");

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 0);  /* nothing preallocated */
	ticket_ok(f, "alice", "gpu+memory>=4");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	ck_assert_str_eq(f->sink.starts[0].pool, "od8");
	ticket_ok(f, "alice", "gpu+memory>=10");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	ck_assert_str_eq(f->sink.starts[1].pool, "od16");
	ticket_ok(f, "alice", "fast+memory>=4");  /* pref scores 5 */
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	ck_assert_str_eq(f->sink.starts[2].pool, "pref");
	ticket_ok(f, "alice", "gpu");  /* all score 0, fit 0: names */
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 4);
	ck_assert_str_eq(f->sink.starts[3].pool, "od16");
	fixture_free(f);
}
END_TEST

/* A pool of reusable resources: 60 s for a ticket of the same sandbox. */
#define REUSE_POOL(extra)                                                      \
	"p:\n  max: 3\n  max_prealloc: 1\n  max_starting: 2\n"                 \
	"  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n"                         \
	"  reuse_opportunity_time: 60\n" extra

/*
 * Reuse: a resource released by a ticket with a sandbox stays up for the
 * next ticket of that sandbox, which gets it even while a ticket of
 * another sandbox waits (older, with nothing else free); it never goes
 * to another sandbox or to a ticket without one.
 */
START_TEST(test_reuse_same_sandbox)
{
	struct fixture *f = fixture_new(REUSE_POOL(""), "");
	uint64_t t2, t3, t5, r1, r2;
	struct seen v;

	starts_up(f, 1);
	r1 = released_in(f, "p", "s1");
	ck_assert_uint_eq(f->sink.nstarts, 2);  /* the replacement */
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	v = resource_seen(f, r1);
	ck_assert_str_eq(v.state, "UP");
	ck_assert_str_eq(v.sandbox, "s1");
	ck_assert_uint_eq(v.ticket_id, 0);
	t2 = ticket_with(f, "bob", "a", NULL, "s2", 0);
	t3 = ticket_ok(f, "bob", "a");
	step(f);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	ck_assert_uint_eq(served(f, "alice", "a", "s1", "p"), r1);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	/* the fresh resource goes to the oldest waiting ticket */
	allocated(f, 1);
	step(f);
	r2 = ready_in(f, t2, "p");
	ck_assert_uint_ne(r2, r1);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	/* released into s2, it is not for t3, which has no sandbox */
	ck_assert_int_eq(sched_ticket_close(f->s, t2), 1);
	step(f);
	ck_assert_str_eq(resource_seen(f, r2).sandbox, "s2");
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	/* nor is it for a ticket of s3 that has a fresh one to take */
	ck_assert_int_eq(sched_ticket_close(f->s, t3), 1);
	t5 = ticket_with(f, "carol", "a", NULL, "s3", 0);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	allocated(f, 2);
	step(f);
	ck_assert_uint_eq(ready_in(f, t5, "p"), f->sink.starts[2].id);
	v = resource_seen(f, r2);
	ck_assert_str_eq(v.state, "UP");
	ck_assert_str_eq(v.sandbox, "s2");
	ck_assert_uint_eq(v.ticket_id, 0);
	fixture_free(f);
}
END_TEST

/* reuse_max_count: 1 allows one reuse: two tickets, then deleted. */
START_TEST(test_reuse_max_count)
{
	struct fixture *f =
	    fixture_new(REUSE_POOL("  reuse_max_count: 1\n"), "");
	uint64_t t3, r1;

	starts_up(f, 1);
	r1 = released_in(f, "p", "s1");
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	/* reused once and released again: deleted */
	ck_assert_uint_eq(released_in(f, "p", "s1"), r1);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	ck_assert_str_eq(resource_seen(f, r1).state, "DELETING");
	t3 = ticket_with(f, "alice", "a", NULL, "s1", 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	allocated(f, 1);
	step(f);
	ck_assert_uint_ne(ready_in(f, t3, "p"), r1);
	fixture_free(f);
}
END_TEST

/*
 * reuse_opportunity_time: a released resource no ticket of its sandbox
 * took in time is deleted.
 */
START_TEST(test_reuse_opportunity_time)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 2\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a]\n  reuse_opportunity_time: 1\n",
	    "");
	uint64_t r1;

	starts_up(f, 1);
	r1 = released_in(f, "p", "s1");
	run_for(f, 0.5);
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	ck_assert_str_eq(resource_seen(f, r1).state, "UP");
	run_for(f, 0.8);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	fixture_free(f);
}
END_TEST

/*
 * reuse_max_time: no reuse once that long has passed since a resource's
 * first ticket -- a released one is deleted when that time comes, one
 * held that long is deleted when released; a holder is never cut short.
 */
START_TEST(test_reuse_max_time)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 3\n  max_prealloc: 2\n  max_starting: 2\n"
	    "  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n"
	    "  reuse_opportunity_time: 60\n  reuse_max_time: 1\n",
	    "");
	uint64_t t1, t2, r1, r2;

	starts_up(f, 2);
	t1 = ticket_with(f, "alice", "a", NULL, "s1", 0);
	t2 = ticket_with(f, "bob", "a", NULL, "s2", 0);
	step(f);
	r1 = ready_in(f, t1, "p");
	r2 = ready_in(f, t2, "p");
	ck_assert_int_eq(sched_ticket_close(f->s, t2), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	run_for(f, 1.3);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r2);
	ready_in(f, t1, "p");
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 2);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	fixture_free(f);
}
END_TEST

/*
 * With cmd_release, a released resource is reused only after the
 * worker's Release job succeeds; a failed one means no reuse.
 */
START_TEST(test_reuse_after_cmd_release)
{
	struct fixture *f =
	    fixture_new(REUSE_POOL("  cmd_release: z\n"), "");
	uint64_t t2, t3, r1;

	starts_up(f, 1);
	r1 = released_in(f, "p", "s1");
	ck_assert_uint_eq(f->sink.nreleases, 1);
	ck_assert_uint_eq(f->sink.release_id, r1);
	ck_assert_str_eq(resource_seen(f, r1).state, "RELEASING");
	t2 = ticket_with(f, "alice", "a", NULL, "s1", 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	released(f, true);
	step(f);
	ck_assert_uint_eq(ready_in(f, t2, "p"), r1);
	ck_assert_int_eq(sched_ticket_close(f->s, t2), 1);
	step(f);
	ck_assert_uint_eq(f->sink.nreleases, 2);
	released(f, false);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	t3 = ticket_with(f, "alice", "a", NULL, "s1", 0);
	step(f);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	fixture_free(f);
}
END_TEST

/* An on-demand pool: `big` starts a resource, `a` only takes one up. */
#define OD_POOL(max, extra)                                                    \
	"od:\n  max: " max "\n  max_starting: " max "\n  cmd_new: x\n"         \
	"  cmd_delete: y\n  tags: [a]\n  tags_on_demand: [big]\n" extra

/*
 * On-demand: nothing is preallocated; each waiting ticket with an
 * on-demand tag starts one resource of its own (one, however many
 * steps), in the best pool that can start; at max, it waits and says
 * so; the resource, once up, goes to it.
 */
START_TEST(test_ondemand_start)
{
	struct fixture *f = fixture_new(
	    "dear:\n  max: 1\n  max_starting: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags_on_demand: [big]\n"
	    "cheap:\n  max: 2\n  max_starting: 2\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags_on_demand: [{name: big, priority: 5}]\n",
	    "");
	uint64_t t1, t2, t3, t4;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 0);
	t1 = ticket_ok(f, "alice", "big");
	step(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	ck_assert_str_eq(f->sink.starts[0].pool, "cheap");
	waits_for(f, t1, "is starting for it in pool cheap");
	t2 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(starts_in(f, "cheap"), 2);
	t3 = ticket_ok(f, "alice", "big");  /* cheap is at max */
	step(f);
	ck_assert_uint_eq(starts_in(f, "dear"), 1);
	t4 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	waits_for(f, t4, "pool cheap at max 2");
	waits_for(f, t4, "pool dear at max 1");
	allocated_all(f);
	step(f);
	ck_assert_uint_eq(ready_in(f, t1, "cheap"), f->sink.starts[0].id);
	ck_assert_uint_eq(ready_in(f, t2, "cheap"), f->sink.starts[1].id);
	ck_assert_uint_eq(ready_in(f, t3, "dear"), f->sink.starts[2].id);
	ck_assert_int_eq(ticket_state(f, t4), OPEN);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	fixture_free(f);
}
END_TEST

/*
 * On-demand tickets first: a resource of an on-demand pool that comes
 * up, or is released for reuse, goes to a waiting ticket that asked for
 * an on-demand tag before an older one that did not.
 */
START_TEST(test_ondemand_first)
{
	struct fixture *f = fixture_new(
	    OD_POOL("1", "  reuse_opportunity_time: 60\n"), "");
	uint64_t ta, tb, tc, r;

	ta = ticket_with(f, "alice", "a", NULL, "s1", 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 0);  /* `a` starts nothing */
	tb = ticket_with(f, "bob", "big", NULL, "s1", 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	allocated(f, 0);
	step(f);
	r = ready_in(f, tb, "od");
	ck_assert_int_eq(ticket_state(f, ta), OPEN);
	tc = ticket_with(f, "carol", "big", NULL, "s1", 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);  /* od is at max */
	ck_assert_int_eq(sched_ticket_close(f->s, tb), 1);
	step(f);
	ck_assert_uint_eq(ready_in(f, tc, "od"), r);
	ck_assert_int_eq(ticket_state(f, ta), OPEN);
	fixture_free(f);
}
END_TEST

/*
 * A resource released into another sandbox does not keep an on-demand
 * ticket from a start of its own (where resalloc's planner blocks it);
 * a ticket of that sandbox reuses it and starts nothing.
 */
START_TEST(test_ondemand_beside_released)
{
	struct fixture *f = fixture_new(
	    OD_POOL("2", "  reuse_opportunity_time: 60\n"), "");
	uint64_t t1, t2, r1;
	struct seen v;

	t1 = ticket_with(f, "alice", "big", NULL, "s1", 0);
	step(f);
	allocated(f, 0);
	step(f);
	r1 = ready_in(f, t1, "od");
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	t2 = ticket_with(f, "bob", "big", NULL, "s2", 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	v = resource_seen(f, r1);
	ck_assert_str_eq(v.state, "UP");
	ck_assert_uint_eq(v.ticket_id, 0);
	ck_assert_uint_eq(served(f, "alice", "big", "s1", "od"), r1);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	allocated(f, 1);
	step(f);
	ck_assert_uint_eq(ready_in(f, t2, "od"), f->sink.starts[1].id);
	fixture_free(f);
}
END_TEST

/*
 * A ticket served before its own start is up (a resource of its sandbox
 * was released meanwhile): that start, up with no ticket waiting for the
 * pool, is deleted and serves nobody.
 */
START_TEST(test_ondemand_surplus)
{
	struct fixture *f = fixture_new(
	    OD_POOL("3", "  reuse_opportunity_time: 60\n"), "");
	uint64_t t0, t1, r0, r1;

	t0 = ticket_with(f, "alice", "big", NULL, "s1", 0);
	step(f);
	allocated(f, 0);
	step(f);
	r0 = ready_in(f, t0, "od");
	t1 = ticket_with(f, "alice", "big", NULL, "s1", 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	r1 = f->sink.starts[1].id;
	ck_assert_int_eq(sched_ticket_close(f->s, t0), 1);
	step(f);
	ck_assert_uint_eq(ready_in(f, t1, "od"), r0);
	allocated(f, 1);
	step(f);
	ck_assert(delete_sent(f, r1));
	ck_assert_uint_eq(resource_seen(f, r1).ticket_id, 0);
	ck_assert_uint_eq(ready_in(f, t1, "od"), r0);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	fixture_free(f);
}
END_TEST

/*
 * A failed start: the ticket's next start goes to another pool, and the
 * pool that failed waits (1 s after one failure) and says so.
 */
START_TEST(test_ondemand_failed_start)
{
	struct fixture *f = fixture_new(
	    "A:\n  max: 2\n  max_starting: 2\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags_on_demand: [{name: big, priority: 5}]\n"
	    "B:\n  max: 1\n  max_starting: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags_on_demand: [big]\n",
	    "");
	uint64_t t1, t2;

	t1 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	ck_assert_str_eq(f->sink.starts[0].pool, "A");
	allocate_failed(f, 0);
	ck_assert(delete_sent(f, f->sink.starts[0].id));
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	ck_assert_str_eq(f->sink.starts[1].pool, "B");
	waits_for(f, t1, "is starting for it in pool B");
	t2 = ticket_ok(f, "bob", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	waits_for(f, t2, "pool A waits after 1 failed starts");
	waits_for(f, t2, "pool B at max 1");
	run_for(f, 1.2);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	ck_assert_str_eq(f->sink.starts[2].pool, "A");
	fixture_free(f);
}
END_TEST

/*
 * Preallocation: up to max_prealloc free or starting, at most
 * max_starting starting and max alive; taking one starts a replacement
 * while max allows.  A waiting ticket says which bound holds it.
 */
START_TEST(test_prealloc_bounds)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 3\n  max_prealloc: 2\n  max_starting: 1\n"
	    "  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n",
	    "");
	uint64_t t0, t1, t3;

	step(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	t0 = ticket_ok(f, "alice", "a");
	waits_for(f, t0, "pool p at max_starting 1");
	ck_assert_int_eq(sched_ticket_close(f->s, t0), 1);
	ck_assert_uint_eq(f->sink.ncancels, 0);
	allocated(f, 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	allocated(f, 1);
	step(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);  /* two free: enough */
	t1 = ticket_ok(f, "alice", "a");
	step(f);
	ready_in(f, t1, "p");
	ck_assert_uint_eq(f->sink.nstarts, 3);  /* the replacement */
	served(f, "alice", "a", NULL, "p");
	ck_assert_uint_eq(f->sink.nstarts, 3);  /* three alive: max */
	t3 = ticket_ok(f, "alice", "a");
	step(f);
	waits_for(f, t3, "pool p at max 3");
	allocated(f, 2);
	step(f);
	ck_assert_uint_eq(ready_in(f, t3, "p"), f->sink.starts[2].id);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	/* a closed ticket's resource is deleted; deleted, it is replaced */
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 3);  /* still alive, deleting */
	deleted(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 4);
	fixture_free(f);
}
END_TEST

/* start_delay: at least that long between two starts of a pool. */
START_TEST(test_start_delay)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 3\n  max_prealloc: 2\n  max_starting: 2\n"
	    "  start_delay: 1\n  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n",
	    "");
	uint64_t t;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	t = ticket_ok(f, "alice", "a");
	waits_for(f, t, "pool p in start_delay");
	run_for(f, 0.5);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	run_for(f, 0.7);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	fixture_free(f);
}
END_TEST

/*
 * Limits per tag: per_owner and total count only tickets with the tag;
 * a ticket kept back waits (others behind it in the FIFO are served) and
 * says which limit; the share comes back when a ticket closes.
 */
START_TEST(test_limit_tag_total)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 6\n  max_prealloc: 6\n  max_starting: 6\n"
	    "  cmd_new: x\n  cmd_delete: y\n  tags: [a, big]\n",
	    "limits:\n  - tag: big\n    per_owner: 1\n"
	    "  - tag: big\n    total: 2\n");
	uint64_t t1, t2, t3, t4, t5;

	starts_up(f, 6);
	t1 = ticket_ok(f, "alice", "big");
	t2 = ticket_ok(f, "alice", "big");
	t3 = ticket_ok(f, "alice", "a");
	t4 = ticket_ok(f, "bob", "big");
	t5 = ticket_ok(f, "carol", "big");
	step(f);
	ready_in(f, t1, "p");
	waits_for(f, t2, "owner alice at limit big 1/1");
	ready_in(f, t3, "p");
	ready_in(f, t4, "p");
	waits_for(f, t5, "limit big total 2/2");
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ready_in(f, t2, "p");
	waits_for(f, t5, "limit big total 2/2");
	ck_assert_int_eq(sched_ticket_close(f->s, t4), 1);
	step(f);
	ready_in(f, t5, "p");
	fixture_free(f);
}
END_TEST

/* A limit counts on-demand starts from the start: no second one. */
START_TEST(test_limit_ondemand)
{
	struct fixture *f = fixture_new(
	    OD_POOL("4", ""), "limits:\n  - per_owner: 1\n");
	uint64_t t1, t2, t3;

	t1 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	t2 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	waits_for(f, t2, "owner alice at limit (all) 1/1");
	t3 = ticket_ok(f, "bob", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	allocated_all(f);
	step(f);
	ck_assert_uint_eq(ready_in(f, t1, "od"), f->sink.starts[0].id);
	ck_assert_uint_eq(ready_in(f, t3, "od"), f->sink.starts[1].id);
	ck_assert_int_eq(ticket_state(f, t2), OPEN);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	fixture_free(f);
}
END_TEST

/* Serves the one free resource of F's pool p (start I), to one ticket,
 * which is closed after the check; the next start is then I + 1. */
static void
serve_next(struct fixture *f, size_t i, uint64_t want, uint64_t *others,
    size_t nothers)
{
	size_t j;

	allocated(f, i);
	step(f);
	ready_in(f, want, "p");
	for (j = 0; j < nothers; j++)
		if (others[j] != want && ticket_state(f, others[j]) != 0)
			ck_assert_int_eq(ticket_state(f, others[j]), OPEN);
	ck_assert_int_eq(sched_ticket_close(f->s, want), 1);
	step(f);
	deleted(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, i + 2);
}

/*
 * Classes: waiting tickets are served by class priority, then in order
 * of arrival, across tag sets; a ticket without class has priority 0.
 */
START_TEST(test_class_priority)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
	    "  cmd_delete: y\n  tags: [a, b]\n",
	    "classes:\n  lo:\n    priority: -1\n  hi:\n    priority: 10\n");
	uint64_t t[5];

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	t[0] = ticket_with(f, "alice", "a", "lo", NULL, 0);
	t[1] = ticket_with(f, "alice", "b", NULL, NULL, 0);
	t[2] = ticket_with(f, "alice", "b", "hi", NULL, 0);
	t[3] = ticket_with(f, "alice", "a", "hi", NULL, 0);
	t[4] = ticket_with(f, "alice", "a", NULL, NULL, 0);
	step(f);
	serve_next(f, 0, t[2], t, 5);
	serve_next(f, 1, t[3], t, 5);
	serve_next(f, 2, t[1], t, 5);
	serve_next(f, 3, t[4], t, 5);
	serve_next(f, 4, t[0], t, 5);
	fixture_free(f);
}
END_TEST

/*
 * A class with on_demand: false starts nothing; its tickets take
 * resources that are up, in their turn (oldest first), and the ticket
 * whose start it was gets another.
 */
START_TEST(test_class_no_ondemand)
{
	struct fixture *f = fixture_new(OD_POOL("2", ""),
	    "classes:\n  scratch:\n    on_demand: false\n");
	uint64_t s1, d1;

	s1 = ticket_with(f, "alice", "big", "scratch", NULL, 0);
	step(f);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 0);
	d1 = ticket_ok(f, "bob", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	allocated(f, 0);
	step(f);
	ck_assert_uint_eq(ready_in(f, s1, "od"), f->sink.starts[0].id);
	ck_assert_int_eq(ticket_state(f, d1), OPEN);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	allocated(f, 1);
	step(f);
	ck_assert_uint_eq(ready_in(f, d1, "od"), f->sink.starts[1].id);
	fixture_free(f);
}
END_TEST

/*
 * A class cap on an on-demand pool counts a start from the start; a
 * closed ticket's start goes to the class's next ticket, which is not
 * held back by the cap it now holds.
 */
START_TEST(test_cap_ondemand)
{
	struct fixture *f = fixture_new(
	    OD_POOL("4", ""), "classes:\n  c:\n    caps: {od: 1}\n");
	uint64_t t1, t2, t3;

	t1 = ticket_with(f, "alice", "big", "c", NULL, 0);
	t2 = ticket_with(f, "bob", "big", "c", NULL, 0);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	waits_for(f, t2, "class c at its cap in every pool that provides big");
	t3 = ticket_ok(f, "carol", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ncancels, 0);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	waits_for(f, t2, "is starting for it in pool od");
	allocated(f, 0);
	step(f);
	ck_assert_uint_eq(ready_in(f, t2, "od"), f->sink.starts[0].id);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	fixture_free(f);
}
END_TEST

#define LEASE_LAPSED "lease lapsed: its holder did not renew it in time"

/*
 * Leases: a ticket whose holder does not renew within lease_s is closed
 * and its resource released -- deleted, or kept for its sandbox's next
 * ticket; a ticket without a lease stays.
 */
START_TEST(test_lease_lapses)
{
	struct fixture *f = fixture_new(
	    "p:\n  max: 4\n  max_prealloc: 3\n  max_starting: 3\n"
	    "  cmd_new: x\n  cmd_delete: y\n  tags: [a]\n"
	    "  reuse_opportunity_time: 60\n",
	    "");
	uint64_t t1, t2, t3, r1, r2;

	starts_up(f, 3);
	t1 = ticket_with(f, "alice", "a", NULL, NULL, 1);
	t2 = ticket_with(f, "bob", "a", NULL, "s1", 1);
	t3 = ticket_ok(f, "carol", "a");
	step(f);
	r1 = ready_in(f, t1, "p");
	r2 = ready_in(f, t2, "p");
	ready_in(f, t3, "p");
	run_for(f, 0.5);
	ready_in(f, t1, "p");
	ready_in(f, t2, "p");
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	run_for(f, 0.8);
	ck_assert_int_eq(ticket_state(f, t1), 0);
	ck_assert_int_eq(ticket_state(f, t2), 0);
	ck_assert_int_eq(f->sink.state[t1], CLOSED);
	ck_assert_str_eq(f->sink.reason[t1], LEASE_LAPSED);
	ck_assert_str_eq(f->sink.reason[t2], LEASE_LAPSED);
	ck_assert_int_eq(sched_ticket_renew(f->s, t1), 0);
	ready_in(f, t3, "p");
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	ck_assert_str_eq(resource_seen(f, r2).state, "UP");
	ck_assert_str_eq(resource_seen(f, r2).sandbox, "s1");
	ck_assert_uint_eq(served(f, "bob", "a", "s1", "p"), r2);
	fixture_free(f);
}
END_TEST

/* Renewing starts the lease again: the ticket lives past lease_s, then
 * lapses lease_s after the last renewal. */
START_TEST(test_lease_renew)
{
	struct fixture *f = fixture_new(two_of_a, "");
	uint64_t t, r;

	step(f);
	allocated(f, 0);
	step(f);
	t = ticket_with(f, "alice", "a", NULL, NULL, 1);
	step(f);
	r = ready_in(f, t, "p");
	run_for(f, 0.6);
	ck_assert_int_eq(sched_ticket_renew(f->s, t), 1);
	run_for(f, 0.6);
	ck_assert_uint_eq(ready_in(f, t, "p"), r);
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	run_for(f, 0.6);
	ck_assert_int_eq(ticket_state(f, t), 0);
	ck_assert_str_eq(f->sink.reason[t], LEASE_LAPSED);
	ck_assert(delete_sent(f, r));
	fixture_free(f);
}
END_TEST

/*
 * Closing an OPEN ticket whose on-demand resource is starting, with no
 * other ticket the pool could serve: the start is cancelled (a Cancel to
 * the pool's workers), and what it made is deleted when its result
 * comes; a preallocated start is no ticket's and goes on.  A lapsed
 * lease closes it the same way.
 */
START_TEST(test_close_cancels_start)
{
	struct fixture *f = fixture_new(
	    OD_POOL("2", "p:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
			 "  cmd_delete: y\n  tags: [b]\n"),
	    "");
	uint64_t t1, t2, r, pre;

	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	pre = f->sink.starts[0].id;
	t1 = ticket_ok(f, "alice", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 2);
	r = f->sink.starts[1].id;
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ncancels, 1);
	ck_assert_uint_eq(f->sink.cancel_id, r);
	ck_assert_str_eq(f->sink.cancel_key, "cancel.od");
	ck_assert_str_eq(resource_seen(f, r).state, "DELETE_REQUESTED");
	ck_assert_uint_eq(f->sink.ndeletes, 0);
	ck_assert_str_eq(resource_seen(f, pre).state, "STARTING");
	allocated(f, 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r);
	deleted(f);
	step(f);
	ck_assert_str_eq(resource_seen(f, r).state, "");
	ck_assert_uint_eq(f->sink.nstarts, 2);

	/* a lease that lapses while the start runs */
	t2 = ticket_with(f, "alice", "big", NULL, NULL, 1);
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 3);
	run_for(f, 1.3);
	ck_assert_int_eq(ticket_state(f, t2), 0);
	ck_assert_str_eq(f->sink.reason[t2], LEASE_LAPSED);
	ck_assert_uint_eq(f->sink.ncancels, 2);
	ck_assert_uint_eq(f->sink.cancel_id, f->sink.starts[2].id);
	fixture_free(f);
}
END_TEST

/*
 * Closing an OPEN ticket whose start is in flight while another ticket
 * of its tag set waits without one: the start is handed over, not
 * cancelled, and serves that ticket.
 */
START_TEST(test_close_hands_start_over)
{
	struct fixture *f = fixture_new(OD_POOL("1", ""), "");
	uint64_t t1, t2;

	t1 = ticket_ok(f, "alice", "big");
	t2 = ticket_ok(f, "bob", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	waits_for(f, t2, "pool od at max 1");
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ncancels, 0);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	waits_for(f, t2, "is starting for it in pool od");
	allocated(f, 0);
	step(f);
	ck_assert_uint_eq(ready_in(f, t2, "od"), f->sink.starts[0].id);
	fixture_free(f);
}
END_TEST

/*
 * The same with a waiting ticket of another tag set the pool serves: the
 * start goes on and the resource, once up, serves that ticket.
 */
START_TEST(test_close_start_serves_other)
{
	struct fixture *f = fixture_new(OD_POOL("1", ""), "");
	uint64_t ta, tb;

	ta = ticket_ok(f, "alice", "a");
	tb = ticket_ok(f, "bob", "big");
	step(f);
	ck_assert_uint_eq(f->sink.nstarts, 1);
	ck_assert_int_eq(sched_ticket_close(f->s, tb), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ncancels, 0);
	ck_assert_str_eq(resource_seen(f, f->sink.starts[0].id).state,
	    "STARTING");
	allocated(f, 0);
	step(f);
	ck_assert_uint_eq(ready_in(f, ta, "od"), f->sink.starts[0].id);
	fixture_free(f);
}
END_TEST

/*
 * Closing a READY ticket releases its resource: without a sandbox it is
 * deleted at once, even in a pool that reuses; with one and cmd_release,
 * it is released (a Release job) and kept, not deleted.
 */
START_TEST(test_close_ready_releases)
{
	struct fixture *f = fixture_new(
	    REUSE_POOL("q:\n  max: 1\n  max_prealloc: 1\n  cmd_new: x\n"
		       "  cmd_delete: y\n  tags: [b]\n  cmd_release: z\n"
		       "  reuse_opportunity_time: 60\n"),
	    "");
	uint64_t t1, t2, t3, r1, r2;

	starts_up(f, 2);
	t1 = ticket_ok(f, "alice", "a");
	t2 = ticket_with(f, "bob", "b", NULL, "s1", 0);
	step(f);
	r1 = ready_in(f, t1, "p");
	r2 = ready_in(f, t2, "q");
	ck_assert_int_eq(sched_ticket_close(f->s, t1), 1);
	step(f);
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	ck_assert_uint_eq(f->sink.delete_id, r1);
	ck_assert_str_eq(resource_seen(f, r1).state, "DELETING");
	ck_assert_uint_eq(f->sink.nreleases, 0);
	ck_assert_int_eq(sched_ticket_close(f->s, t2), 1);
	step(f);
	ck_assert_uint_eq(f->sink.nreleases, 1);
	ck_assert_uint_eq(f->sink.release_id, r2);
	ck_assert_str_eq(f->sink.release_pool, "q");
	ck_assert_uint_eq(f->sink.ndeletes, 1);
	/* a ticket of another sandbox does not get it */
	t3 = ticket_with(f, "carol", "b", NULL, "s2", 0);
	released(f, true);
	step(f);
	ck_assert_int_eq(ticket_state(f, t3), OPEN);
	ck_assert_str_eq(resource_seen(f, r2).state, "UP");
	fixture_free(f);
}
END_TEST

/* Idempotency keys are per owner. */
START_TEST(test_idem_per_owner)
{
	struct fixture *f = fixture_new(two_of_a, "");
	uint64_t a, b;
	char err[256];

	a = ticket(f, "alice", "a", NULL, "key", 0, err, sizeof(err));
	b = ticket(f, "bob", "a", NULL, "key", 0, err, sizeof(err));
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_ne(b, 0);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(ticket(f, "alice", "a", NULL, "key", 0, err,
	    sizeof(err)), a);
	restart(f);
	ck_assert_uint_eq(ticket(f, "bob", "a", NULL, "key", 0, err,
	    sizeof(err)), b);
	fixture_free(f);
}
END_TEST

/* The ControlReply to a control request, as the client unpacks it. */
struct control_out {
	Resbus__V1__ControlReply *reply;
	const struct conf_server *server;
};

static void
control_reply(void *ctx, const struct bus_delivery *d,
    const ProtobufCMessage *m)
{
	struct control_out *out = ctx;
	void *body;
	size_t len;

	body = msg_pack(m, &len);
	out->reply = (Resbus__V1__ControlReply *)msg_unpack(msg_type(m),
	    body, len);
	free(body);
}

static int
no_reload(void *ctx, char *err, size_t errlen)
{
	return -1;
}

/* The broker's rule, as the fixture's server.yaml lists admins. */
static bool
in_admins(void *ctx, const char *user)
{
	const struct control_out *out = ctx;
	size_t i;

	for (i = 0; user != NULL && i < out->server->nadmins; i++)
		if (strcmp(out->server->admins[i], user) == 0)
			return true;
	return false;
}

/* USER's COMMAND [ARG] in control protocol VERSION; free with msg_free. */
static Resbus__V1__ControlReply *
control_ask(struct fixture *f, uint32_t version, const char *user,
    const char *command, const char *arg)
{
	Resbus__V1__ControlRequest req = RESBUS__V1__CONTROL_REQUEST__INIT;
	struct control_out out = { NULL, f->server };
	struct control_ops ops = { control_reply, no_reload, &out, in_admins,
		NULL };
	struct bus_delivery d;
	char *args[1] = { (char *)arg }, err[256];

	req.command = (char *)command;
	req.version = version;
	if (arg != NULL) {
		req.args = args;
		req.n_args = 1;
	}
	memset(&d, 0, sizeof(d));
	d.type = msg_type(&req.base);
	d.user_id = user;
	control_handle(f->s, &req, &d, &ops);
	ck_assert_ptr_nonnull(out.reply);
	ck_assert_uint_eq(out.reply->version, MSG_CONTROL_VERSION);
	ck_assert_msg(msg_check(&out.reply->base, err, sizeof(err)) == 0, "%s",
	    err);
	return out.reply;
}

/* The one resource of a successful answer to USER's COMMAND [ARG]. */
static const Resbus__V1__ControlResource *
control_resource(struct fixture *f, Resbus__V1__ControlReply **r,
    const char *user, const char *command, const char *arg)
{
	*r = control_ask(f, MSG_CONTROL_VERSION, user, command, arg);
	ck_assert_msg((*r)->ok, "%s %s failed: %s", command, arg ? arg : "",
	    (*r)->error);
	ck_assert_uint_ge((*r)->n_resources, 1);
	return (*r)->resources[0];
}

/* A resource's data is in control answers to admins only. */
/* A ticket request with a reply queue and idempotency key IDEM. */
static uint64_t
ticket_reply_to(struct fixture *f, const char *idem, const char *queue)
{
	struct sched_ticket_req req;
	uint64_t id = 0;
	char err[256];

	memset(&req, 0, sizeof(req));
	req.idem_key = idem;
	req.key = "a";
	req.owner = "alice";
	req.reply_to = queue;
	ck_assert_msg(sched_ticket_new(f->s, &req, &id, err, sizeof(err)) == 0,
	    "%s", err);
	return id;
}

/*
 * The reply queue of the request that made a ticket hears, once, that it
 * is READY, with the resource's ID, name and data; the queue is in the
 * store, so a restart in between changes nothing; a retry's queue takes
 * its place and hears the outcome again; a resource that dies is told to
 * it as FAILED.
 */
START_TEST(test_reply_queue)
{
	struct fixture *f = fixture_new(two_of_a, "");
	uint64_t id;

	ck_assert_uint_eq(ticket_reply_to(f, "k1", "amq.gen-1"), 1);
	id = 1;
	step(f);
	ck_assert_uint_eq(f->sink.nreplies, 0);
	restart(f);
	starts_up(f, 2);
	ck_assert_int_eq(ticket_state(f, id), READY);
	ck_assert_uint_eq(f->sink.nreplies, 1);
	ck_assert_str_eq(f->sink.reply_queue, "amq.gen-1");
	ck_assert_uint_eq(f->sink.reply_ticket, id);
	ck_assert_int_eq(f->sink.reply_state, READY);
	ck_assert_uint_ne(f->sink.reply_resource, 0);
	ck_assert_str_eq(f->sink.reply_name, f->sink.starts[0].name);
	ck_assert_str_eq(f->sink.reply_output, "host\n");

	/* A retry from a new connection: same ticket, told again there. */
	ck_assert_uint_eq(ticket_reply_to(f, "k1", "amq.gen-2"), id);
	ck_assert_uint_eq(f->sink.nreplies, 1);
	sched_ticket_reply(f->s, id);
	ck_assert_uint_eq(f->sink.nreplies, 2);
	ck_assert_str_eq(f->sink.reply_queue, "amq.gen-2");
	step(f);

	/* The resource dies: FAILED, to the retry's queue (kept across a
	 * restart too). */
	restart(f);
	ck_assert_int_eq(sched_resource_delete(f->s, f->sink.reply_resource),
	    1);
	step(f);
	ck_assert_uint_eq(f->sink.nreplies, 3);
	ck_assert_str_eq(f->sink.reply_queue, "amq.gen-2");
	ck_assert_int_eq(f->sink.reply_state,
	    RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED);

	/* Closing tells the events, not the reply queue. */
	ck_assert_int_eq(sched_ticket_close(f->s, id), 1);
	step(f);
	ck_assert_uint_eq(f->sink.nreplies, 3);
	fixture_free(f);
}
END_TEST

START_TEST(test_control_data)
{
	struct fixture *f = fixture_new(two_of_a, "admins: [root]\n");
	const Resbus__V1__ControlResource *res;
	Resbus__V1__ControlReply *r;
	char id[32];

	step(f);
	allocated(f, 0);
	step(f);
	snprintf(id, sizeof(id), "%" PRIu64, f->sink.starts[0].id);
	/* An admin sees the data, as cmd_new printed it. */
	res = control_resource(f, &r, "root", "resource-info", id);
	ck_assert(res->data_shown);
	ck_assert(!res->no_data);
	ck_assert_uint_eq(res->data.len, 5);
	ck_assert_mem_eq(res->data.data, "host\n", 5);
	msg_free(&r->base);
	res = control_resource(f, &r, "root", "resource-list", NULL);
	ck_assert(res->data_shown);
	ck_assert_mem_eq(res->data.data, "host\n", 5);
	msg_free(&r->base);
	/* Anybody else sees the resource without it. */
	res = control_resource(f, &r, "alice", "resource-info", id);
	ck_assert_str_ne(res->name, "");
	ck_assert(!res->data_shown);
	ck_assert_uint_eq(res->data.len, 0);
	msg_free(&r->base);
	res = control_resource(f, &r, "alice", "resource-list", NULL);
	ck_assert_str_ne(res->name, "");
	ck_assert(!res->data_shown);
	ck_assert_uint_eq(res->data.len, 0);
	msg_free(&r->base);
	res = control_resource(f, &r, "", "resource-info", id);
	ck_assert(!res->data_shown);
	ck_assert_uint_eq(res->data.len, 0);
	msg_free(&r->base);
	/* A request of another protocol version is refused, saying both. */
	r = control_ask(f, MSG_CONTROL_VERSION + 1, "root", "resource-list",
	    NULL);
	ck_assert(!r->ok);
	ck_assert_uint_eq(r->n_resources, 0);
	ck_assert_msg(strstr(r->error, "control protocol version 2 is not "
				       "resbusd's (version 1)") != NULL,
	    "%s", r->error);
	msg_free(&r->base);
	r = control_ask(f, 0, "root", "resource-list", NULL);
	ck_assert(!r->ok);
	ck_assert_msg(strstr(r->error, "version 0 is not") != NULL, "%s",
	    r->error);
	msg_free(&r->base);
	/* (A request out of bounds never reaches control_handle: msg_dispatch
	 * refuses it; tests/hostile/malformed.sh.) */
	fixture_free(f);
}
END_TEST

static Suite *
sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_limit_after_restart);
	tcase_add_test(tc, test_cap_after_restart);
	tcase_add_test(tc, test_deadline_on_arrival);
	tcase_add_test(tc, test_deadline_at_assignment);
	tcase_add_test(tc, test_refusal_frees);
	tcase_add_test(tc, test_owner_cap);
	tcase_add_test(tc, test_tagset_cap);
	tcase_add_test(tc, test_tagset_retire);
	tcase_add_test(tc, test_paging);
	tcase_add_test(tc, test_score_priority);
	tcase_add_test(tc, test_score_tie_lowest_id);
	tcase_add_test(tc, test_score_reuse_bonus);
	tcase_add_test(tc, test_score_tie_in_pool);
	tcase_add_test(tc, test_score_priority_beats_reuse);
	tcase_add_test(tc, test_failing_free_resource_waits);
	tcase_add_test(tc, test_allocated_after_end);
	tcase_add_test(tc, test_smallest_fit);
	tcase_add_test(tc, test_fit_after_score);
	tcase_add_test(tc, test_ondemand_pool_choice);
	tcase_add_test(tc, test_reuse_same_sandbox);
	tcase_add_test(tc, test_reuse_max_count);
	tcase_add_test(tc, test_reuse_opportunity_time);
	tcase_add_test(tc, test_reuse_max_time);
	tcase_add_test(tc, test_reuse_after_cmd_release);
	tcase_add_test(tc, test_ondemand_start);
	tcase_add_test(tc, test_ondemand_first);
	tcase_add_test(tc, test_ondemand_beside_released);
	tcase_add_test(tc, test_ondemand_surplus);
	tcase_add_test(tc, test_ondemand_failed_start);
	tcase_add_test(tc, test_prealloc_bounds);
	tcase_add_test(tc, test_start_delay);
	tcase_add_test(tc, test_limit_tag_total);
	tcase_add_test(tc, test_limit_ondemand);
	tcase_add_test(tc, test_class_priority);
	tcase_add_test(tc, test_class_no_ondemand);
	tcase_add_test(tc, test_cap_ondemand);
	tcase_add_test(tc, test_lease_lapses);
	tcase_add_test(tc, test_lease_renew);
	tcase_add_test(tc, test_close_cancels_start);
	tcase_add_test(tc, test_close_hands_start_over);
	tcase_add_test(tc, test_close_start_serves_other);
	tcase_add_test(tc, test_close_ready_releases);
	tcase_add_test(tc, test_list_sweep);
	tcase_add_test(tc, test_result_mismatch);
	tcase_add_test(tc, test_idem_per_owner);
	tcase_add_test(tc, test_control_data);
	tcase_add_test(tc, test_reply_queue);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sched_suite());
	int failed;

	log_init("check_sched", LOG_LEVEL_WARN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
