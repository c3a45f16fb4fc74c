/*
 * Unit tests of the scheduler's livecheck health, linked with the SQLite
 * store in a fresh directory and a sink for the jobs it sends.  A free
 * resource whose livechecks fail is handed to no ticket until one passes,
 * still counts as free in the pool's view and in its preallocation, and
 * goes to the waiting ticket as soon as a check passes again.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "store.h"
#include "util.h"

#define READY RESBUS__V1__TICKET_STATE__TICKET_STATE_READY
#define OPEN RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN

static const char pools_yaml[] = "p:\n"
				 "  max: 2\n"
				 "  max_prealloc: 1\n"
				 "  cmd_new: /bin/true\n"
				 "  cmd_delete: /bin/true\n"
				 "  cmd_livecheck: /bin/true\n"
				 "  livecheck_period: 600\n"
				 "  livecheck_attempts: 3\n"
				 "  tags: [t]\n";

struct fixture {
	char dir[64];
	struct conf_pools *pools;
	struct conf_server *server;
	struct store *st;
	struct ev_loop *loop;
	struct sched *s;
	size_t nstarts, ndeletes;
	uint64_t start_id;
	char start_name[128];
};

static void
sink_emit(void *ctx, const char *exchange, const char *key,
    const ProtobufCMessage *m)
{
	struct fixture *f = ctx;

	if (m->descriptor == &resbus__v1__allocate__descriptor) {
		const Resbus__V1__Allocate *a = (const void *)m;

		f->nstarts++;
		f->start_id = a->resource->resource_id;
		snprintf(f->start_name, sizeof(f->start_name), "%s",
		    a->resource->name);
	} else if (m->descriptor == &resbus__v1__delete__descriptor) {
		f->ndeletes++;
	}
}

static void
sink_wake(void *ctx)
{
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
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
step(struct fixture *f)
{
	sched_touch(f->s);
	sched_run(f->s);
	ck_assert_int_eq(store_commit(f->st, commit_done, NULL), 0);
}

static struct fixture *
fixture_new(void)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct sched_ops ops = {.emit = sink_emit, .wake = sink_wake, .ctx = f};
	char path[128], err[512], *url;

	snprintf(f->dir, sizeof(f->dir), "/tmp/check_sched_health.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/pools.yaml", f->dir);
	write_file(path, pools_yaml);
	f->pools = conf_pools_load(path, err, sizeof(err));
	ck_assert_msg(f->pools != NULL, "%s", err);
	snprintf(path, sizeof(path), "%s/server.yaml", f->dir);
	write_file(path, "");
	f->server = conf_server_load(path, err, sizeof(err));
	ck_assert_msg(f->server != NULL, "%s", err);
	url = xasprintf("sqlite:///%s/db.sqlite", f->dir);
	f->st = store_open(url, err, sizeof(err));
	free(url);
	ck_assert_msg(f->st != NULL, "%s", err);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->s = sched_new(f->loop, f->st, "resbus", f->pools, &ops);
	sched_set_policy(f->s, f->server);
	ck_assert_int_eq(sched_load(f->s, no_outbox, NULL), 0);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	char cmd[128];

	ck_assert_int_eq(store_commit(f->st, commit_done, NULL), 0);
	sched_free(f->s);
	store_close(f->st);
	ev_loop_destroy(f->loop);
	conf_pools_free(f->pools);
	conf_server_free(f->server);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	ck_assert_int_eq(system(cmd), 0);
	free(f);
}

/* The last start, UP as a worker reports it. */
static void
allocated(struct fixture *f)
{
	Resbus__V1__AllocateResult ar = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;

	ref.resource_id = f->start_id;
	ref.pool = (char *)"p";
	ref.name = f->start_name;
	ar.resource = &ref;
	ar.ok = true;
	ar.worker = (char *)"w";
	sched_on_allocated(f->s, &ar);
}

/* A livecheck of the last start, as a worker reports it. */
static void
checked(struct fixture *f, bool ok)
{
	Resbus__V1__LivecheckResult lr = RESBUS__V1__LIVECHECK_RESULT__INIT;
	Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;

	ref.resource_id = f->start_id;
	ref.pool = (char *)"p";
	ref.name = f->start_name;
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

static int
ticket_state(struct fixture *f, uint64_t id)
{
	struct sched_ticket_view v;

	ck_assert_int_eq(sched_ticket_view(f->s, id, &v), 1);
	return v.state;
}

START_TEST(test_failing_free_resource_waits)
{
	struct fixture *f = fixture_new();
	struct sched_ticket_req req;
	uint64_t id = 0, first;
	size_t nfree = 0;
	char err[256];

	step(f);
	ck_assert_uint_eq(f->nstarts, 1);
	allocated(f);
	step(f);
	first = f->start_id;
	checked(f, false);
	step(f);
	/* Still counted as free: preallocation starts nothing more. */
	sched_foreach_pool(f->s, pool_free_count, &nfree);
	ck_assert_uint_eq(nfree, 1);
	ck_assert_uint_eq(f->nstarts, 1);

	memset(&req, 0, sizeof(req));
	req.idem_key = "";
	req.key = "t";
	ck_assert_msg(sched_ticket_new(f->s, &req, &id, err, sizeof(err)) == 0,
	    "%s", err);
	step(f);
	ck_assert_int_eq(ticket_state(f, id), OPEN);

	/* A check passes: the resource goes to the waiting ticket. */
	checked(f, true);
	step(f);
	ck_assert_int_eq(ticket_state(f, id), READY);
	{
		struct sched_ticket_view v;

		ck_assert_int_eq(sched_ticket_view(f->s, id, &v), 1);
		ck_assert_uint_eq(v.resource_id, first);
	}
	ck_assert_uint_eq(f->ndeletes, 0);
	fixture_free(f);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sched_health");
	TCase *tc = tcase_create("sched_health");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_failing_free_resource_waits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	log_init("check_sched_health", LOG_LEVEL_WARN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
