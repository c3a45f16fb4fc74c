/*
 * sched-step -- the cost of one scheduling step, without the bus.
 *
 *   sched-step DIR NTICKETS NTAGSETS REPS
 *
 * Links the broker's scheduler with the SQLite store (a file in DIR) and
 * a dummy emit callback.  One pool of at most one resource provides
 * NTAGSETS tags; NTICKETS open tickets are spread over that many one-tag
 * sets (round robin).  Each repetition feeds an AllocateResult for the
 * pool's STARTING resource, so that one resource is free, and times the
 * sched_run() that hands it to the oldest waiting ticket.  Then, untimed,
 * that ticket is closed, the resource's deletion completes, a new ticket
 * replaces the served one in the same tag set (the count stays at
 * NTICKETS) and the next start is made.
 *
 * Prints the median and the 90th percentile of the timed steps, in
 * nanoseconds, and the number of READY events seen (one per step).
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "conf.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "util.h"

/* What the dummy emit callback saw. */
struct sink {
	uint64_t starting_id;         /* resource of the last Allocate */
	char *starting_name;
	uint64_t ready_ticket;        /* ticket of the last READY event */
	uint64_t nready;
	uint64_t nemitted;
};

static void
sink_emit(void *ctx, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	struct sink *k = ctx;

	k->nemitted++;
	if (m->descriptor == &resbus__v1__allocate__descriptor) {
		const Resbus__V1__Allocate *a = (const void *)m;

		k->starting_id = a->resource->resource_id;
		free(k->starting_name);
		k->starting_name = xstrdup(a->resource->name);
	} else if (m->descriptor == &resbus__v1__ticket_update__descriptor) {
		const Resbus__V1__TicketUpdate *u = (const void *)m;

		if (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_READY) {
			k->ready_ticket = u->ticket_id;
			k->nready++;
		}
	}
}

static void
sink_wake(void *ctx)
{
}

static void
commit_done(void *arg, bool ok)
{
	if (!ok)
		fatalx("commit failed");
}

static void
commit(struct store *st)
{
	if (store_commit(st, commit_done, NULL) == -1)
		fatalx("commit: %s", store_error(st));
}

static void
no_outbox(void *arg, const struct store_outbox *o)
{
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
ticket_add(struct sched *s, const char *key, uint64_t n)
{
	struct sched_ticket_req req;
	char idem[64], err[256];
	uint64_t id;

	memset(&req, 0, sizeof(req));
	snprintf(idem, sizeof(idem), "bench-%" PRIu64, n);
	req.idem_key = idem;
	req.key = key;
	if (sched_ticket_new(s, &req, &id, err, sizeof(err)) == -1)
		fatalx("ticket: %s", err);
	return id;
}

static char *
tag_name(long i)
{
	return xasprintf("t%04ld", i);
}

/* A pool of one resource, providing tags t0000 .. NTAGS-1. */
static struct conf_pools *
pools_write(const char *dir, long ntags)
{
	char *path = xasprintf("%s/pools.yaml", dir), err[512], *t;
	struct conf_pools *pools;
	FILE *f;
	long i;

	if ((f = fopen(path, "w")) == NULL)
		fatal("%s", path);
	fprintf(f, "p:\n  max: 1\n  max_prealloc: 1\n  max_starting: 1\n"
	    "  cmd_new: \"echo x\"\n  cmd_delete: \"true\"\n  tags:\n");
	for (i = 0; i < ntags; i++) {
		t = tag_name(i);
		fprintf(f, "    - %s\n", t);
		free(t);
	}
	if (fclose(f) != 0)
		fatal("%s", path);
	if ((pools = conf_pools_load(path, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	free(path);
	return pools;
}

int
main(int argc, char **argv)
{
	struct sink sink = { 0 };
	struct sched_ops ops = {
		.emit = sink_emit, .wake = sink_wake, .ctx = &sink,
	};
	struct conf_pools *pools;
	struct store *st;
	struct sched *s;
	struct ev_loop *loop;
	char err[512], *url, **tags;
	long nt, ns, reps, i, r;
	int64_t *v, t0;
	uint64_t serial = 0, before, id;
	long *tagof;                  /* tag set index by ticket ID */

	log_init("sched-step", LOG_LEVEL_WARN);
	if (argc != 5)
		fatalx("usage: sched-step DIR NTICKETS NTAGSETS REPS");
	nt = atol(argv[2]);
	ns = atol(argv[3]);
	reps = atol(argv[4]);
	if (nt <= 0 || ns <= 0 || reps <= 0)
		fatalx("counts must be positive");
	if (ns > nt)
		ns = nt;
	pools = pools_write(argv[1], ns);
	url = xasprintf("sqlite:///%s/sched-step-%ld.sqlite", argv[1], nt);
	if ((st = store_open(url, err, sizeof(err))) == NULL)
		fatalx("store: %s", err);
	loop = ev_loop_new(EVFLAG_AUTO);
	s = sched_new(loop, st, RESBUS_DEFAULT_PREFIX, pools, &ops);
	if (sched_load(s, no_outbox, NULL) == -1)
		fatalx("load: %s", store_error(st));

	tags = xcalloc((size_t)ns, sizeof(*tags));
	for (i = 0; i < ns; i++) {
		tags[i] = tag_name(i);
		if (sched_tagset_add(s, tags[i]) == -1)
			fatalx("tag set: %s", store_error(st));
	}
	tagof = xcalloc((size_t)(nt + reps + 1), sizeof(*tagof));
	for (i = 0; i < nt; i++) {
		id = ticket_add(s, tags[i % ns], ++serial);
		if (id > (uint64_t)(nt + reps))
			fatalx("ticket ID %" PRIu64 ": not a fresh store", id);
		tagof[id] = i % ns;
	}
	commit(st);
	/* The pool starts its one resource. */
	sched_run(s);
	commit(st);
	if (sink.starting_id == 0)
		fatalx("the pool started nothing");
	if (sched_open_tickets(s) != (size_t)nt)
		fatalx("%zu tickets open, not %ld", sched_open_tickets(s), nt);

	v = xcalloc((size_t)reps, sizeof(*v));
	for (r = 0; r < reps; r++) {
		Resbus__V1__AllocateResult ar = RESBUS__V1__ALLOCATE_RESULT__INIT;
		Resbus__V1__DeleteResult dr = RESBUS__V1__DELETE_RESULT__INIT;
		Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;
		uint64_t res = sink.starting_id, served;

		ref.resource_id = res;
		ref.pool = (char *)"p";
		ref.name = sink.starting_name;
		ar.resource = &ref;
		ar.ok = true;
		ar.data.data = (uint8_t *)"x\n";
		ar.data.len = 2;
		ar.worker = (char *)"bench";
		ar.duration_ms = 1;
		sched_on_allocated(s, &ar);

		before = sink.nready;
		t0 = now_ns();
		sched_run(s);
		v[r] = now_ns() - t0;
		if (sink.nready != before + 1)
			fatalx("step %ld served %" PRIu64 " tickets", r,
			    sink.nready - before);

		/* Untimed: close the ticket, finish the deletion, put a
		 * new ticket where the served one was, start again. */
		served = sink.ready_ticket;
		if (sched_ticket_close(s, served) != 1)
			fatalx("ticket %" PRIu64 " not in memory", served);
		dr.resource = &ref;
		dr.ok = true;
		dr.worker = (char *)"bench";
		sched_on_deleted(s, &dr);
		i = tagof[served];
		id = ticket_add(s, tags[i], ++serial);
		if (id > (uint64_t)(nt + reps))
			fatalx("ticket ID %" PRIu64 ": not a fresh store", id);
		tagof[id] = i;
		sched_run(s);
		if (sink.starting_id == res)
			fatalx("no new start after step %ld", r);
		if (r % 64 == 63)
			commit(st);
	}
	commit(st);
	if (sched_open_tickets(s) != (size_t)nt)
		fatalx("%zu tickets open at the end, not %ld",
		    sched_open_tickets(s), nt);
	qsort(v, (size_t)reps, sizeof(*v), i64_cmp);
	printf("%" PRId64 " %" PRId64 " %ld\n", v[reps / 2],
	    v[(size_t)((double)reps * 0.9)], reps);

	sched_free(s);
	store_close(st);
	ev_loop_destroy(loop);
	conf_pools_free(pools);
	for (i = 0; i < ns; i++)
		free(tags[i]);
	free(tags);
	free(tagof);
	free(v);
	free(url);
	free(sink.starting_name);
	return 0;
}
