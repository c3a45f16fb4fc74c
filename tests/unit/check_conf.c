/*
 * Unit tests of conf: the files in tests/conf/good load with the values
 * written in them and the documented defaults elsewhere; every file in
 * tests/conf/bad is refused with the one-line "file:line:column: ..."
 * message that points at the node at fault.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define GOOD(f) TEST_SRCDIR "/conf/good/" f
#define BAD(f) TEST_SRCDIR "/conf/bad/" f

static char err[1024];

/*
 * TEXT written to a fresh file and loaded by LOADER (0 server, 1 worker).
 * Returns the loaded struct or NULL with the error in err; *PATH is the
 * file's name (caller unlinks and frees).
 */
static void *
load_text(int loader, const char *text, char **path)
{
	char tmpl[] = "/tmp/check_conf.XXXXXX";
	void *loaded;
	FILE *f;
	int fd;

	fd = mkstemp(tmpl);
	ck_assert_int_ne(fd, -1);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	memset(err, 0, sizeof(err));
	loaded = loader == 0 ? (void *)conf_server_load(tmpl, err, sizeof(err))
			     : (void *)conf_worker_load(tmpl, err, sizeof(err));
	*path = strdup(tmpl);
	ck_assert_ptr_nonnull(*path);
	return loaded;
}

START_TEST(test_pools_good)
{
	struct conf_pools *pools;
	const struct conf_pool *p;
	int64_t prio;

	pools = conf_pools_load(GOOD("pools.yaml"), err, sizeof(err));
	ck_assert_msg(pools != NULL, "%s", err);
	ck_assert_uint_eq(pools->npools, 3);
	/* file order */
	ck_assert_str_eq(pools->pools[0].name, "copr_x86");
	ck_assert_str_eq(pools->pools[1].name, "minimal");
	ck_assert_str_eq(pools->pools[2].name, "beefy");

	p = &pools->pools[0];
	ck_assert_str_eq(p->description, "x86_64 builders in the lab");
	ck_assert_int_eq(p->max, 10);
	ck_assert_int_eq(p->max_starting, 3);
	ck_assert_int_eq(p->max_prealloc, 5);
	ck_assert_int_eq(p->start_delay, 20);
	ck_assert_str_eq(p->cmd_new, "/usr/bin/vm-new --pool x86");
	ck_assert_str_eq(p->cmd_delete, "/usr/bin/vm-delete \"$RESALLOC_NAME\"");
	ck_assert_str_eq(p->cmd_livecheck, "/usr/bin/vm-check");
	ck_assert_str_eq(p->cmd_release, "/usr/bin/vm-clean");
	ck_assert_str_eq(p->cmd_list, "/usr/bin/vm-list");
	ck_assert_int_eq(p->livecheck_period, 300);
	ck_assert_int_eq(p->livecheck_attempts, 5);
	ck_assert_int_eq(p->reuse_opportunity_time, 90);
	ck_assert_int_eq(p->reuse_max_count, 8);
	ck_assert_int_eq(p->reuse_max_time, 1800);
	ck_assert_str_eq(p->name_pattern, "{pool_name}-{datetime}-{id}");
	ck_assert_uint_eq(p->ntags, 3);
	ck_assert_str_eq(p->tags[0].name, "compute_node");
	ck_assert_int_eq(p->tags[0].priority, 5);
	ck_assert_str_eq(p->tags[1].name, "ci_test_machine_x86_64");
	ck_assert_int_eq(p->tags[1].priority, 0);
	ck_assert_str_eq(p->tags[2].name, "arch=x86_64");
	ck_assert_int_eq(p->tags[2].priority, -10);
	ck_assert_uint_eq(p->ntags_on_demand, 0);
	ck_assert_uint_eq(p->nnamed_counters, 2);
	ck_assert_str_eq(p->named_counters[0], "elastic_ip");
	ck_assert_str_eq(p->named_counters[1], "slot_2");
	ck_assert_int_eq(p->cmd_new_timeout, 900);
	ck_assert_int_eq(p->cmd_delete_timeout, 60); /* written 0x3c */

	/* Everything not written is the documented default. */
	p = &pools->pools[1];
	ck_assert_ptr_null(p->description);
	ck_assert_int_eq(p->max, 4);
	ck_assert_int_eq(p->max_starting, 1);
	ck_assert_int_eq(p->max_prealloc, 2);
	ck_assert_int_eq(p->start_delay, 0);
	ck_assert_str_eq(p->cmd_new, "echo new");
	ck_assert_str_eq(p->cmd_delete, "echo delete");
	ck_assert_ptr_null(p->cmd_livecheck);
	ck_assert_ptr_null(p->cmd_release);
	ck_assert_ptr_null(p->cmd_list);
	ck_assert_int_eq(p->livecheck_period, 600);
	ck_assert_int_eq(p->livecheck_attempts, 3);
	ck_assert_int_eq(p->reuse_opportunity_time, 0);
	ck_assert_int_eq(p->reuse_max_count, 0);
	ck_assert_int_eq(p->reuse_max_time, 3600);
	ck_assert_str_eq(p->name_pattern, "{pool_name}_{id}_{datetime}");
	ck_assert_uint_eq(p->ntags, 0);
	ck_assert_uint_eq(p->ntags_on_demand, 0); /* null: empty */
	ck_assert_uint_eq(p->nnamed_counters, 0);
	ck_assert_int_eq(p->cmd_new_timeout, 3600);
	ck_assert_int_eq(p->cmd_delete_timeout, 600);

	/* An on-demand pool never preallocates, whatever it says. */
	p = &pools->pools[2];
	ck_assert_int_eq(p->max_prealloc, 0);
	ck_assert_uint_eq(p->ntags, 1);
	ck_assert_uint_eq(p->ntags_on_demand, 2);
	ck_assert_str_eq(p->tags_on_demand[0].name, "beefy_machine_x86_64");
	ck_assert_int_eq(p->tags_on_demand[0].priority, 0);
	ck_assert_str_eq(p->tags_on_demand[1].name, "beefy_machine");
	ck_assert_int_eq(p->tags_on_demand[1].priority, -3);

	ck_assert_ptr_eq(conf_pools_find(pools, "beefy"), p);
	ck_assert_ptr_eq(conf_pools_find(pools, "copr_x86"), &pools->pools[0]);
	ck_assert_ptr_null(conf_pools_find(pools, "nope"));
	prio = 99;
	ck_assert(conf_pool_has_tag(p, "beefy_machine", &prio));
	ck_assert_int_eq(prio, -3);
	ck_assert(conf_pool_has_tag(p, "compute_node", &prio));
	ck_assert_int_eq(prio, 0);
	ck_assert(conf_pool_has_tag(&pools->pools[0], "compute_node", &prio));
	ck_assert_int_eq(prio, 5);
	ck_assert(!conf_pool_has_tag(p, "ci_test_machine_x86_64", &prio));
	ck_assert(conf_pool_has_tag(p, "beefy_machine_x86_64", NULL));
	conf_pools_free(pools);
}
END_TEST

START_TEST(test_pools_empty)
{
	struct conf_pools *pools;

	pools = conf_pools_load(GOOD("pools-empty.yaml"), err, sizeof(err));
	ck_assert_msg(pools != NULL, "%s", err);
	ck_assert_uint_eq(pools->npools, 0);
	ck_assert_ptr_null(conf_pools_find(pools, "demo"));
	conf_pools_free(pools);
}
END_TEST

/* Anchors and merge keys: own keys win, then the first merged mapping. */
START_TEST(test_pools_merge)
{
	struct conf_pools *pools;
	const struct conf_pool *p;

	pools = conf_pools_load(GOOD("pools-merge.yaml"), err, sizeof(err));
	ck_assert_msg(pools != NULL, "%s", err);
	ck_assert_uint_eq(pools->npools, 3);

	p = conf_pools_find(pools, "x86_large");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->max, 20);
	ck_assert_int_eq(p->max_starting, 2);
	ck_assert_str_eq(p->cmd_new, "/bin/new x86");
	ck_assert_str_eq(p->cmd_delete, "/bin/delete");
	ck_assert_uint_eq(p->ntags, 2);
	ck_assert_str_eq(p->tags[1].name, "large");

	p = conf_pools_find(pools, "aarch64");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->cmd_new, "/bin/new arm");
	ck_assert_int_eq(p->max, 3);
	ck_assert_int_eq(p->max_starting, 2);
	ck_assert_int_eq(p->max_prealloc, 0); /* on-demand */
	ck_assert_str_eq(p->cmd_delete, "/bin/delete");
	ck_assert_str_eq(p->name_pattern, "arm_{id}");
	ck_assert_uint_eq(p->ntags, 2);
	ck_assert_str_eq(p->tags[0].name, "x86_64");
	ck_assert_str_eq(p->tags[1].name, "small");
	ck_assert_uint_eq(p->ntags_on_demand, 1);

	p = conf_pools_find(pools, "x86_small");
	ck_assert_int_eq(p->max, 6);
	ck_assert_int_eq(p->max_prealloc, 2);
	conf_pools_free(pools);
}
END_TEST

START_TEST(test_server_good)
{
	struct conf_server *s;

	s = conf_server_load(GOOD("server.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->db_url, "postgresql://resbus@localhost/resbus");
	ck_assert_str_eq(s->logdir, "/srv/resbus/logs");
	ck_assert_str_eq(s->loglevel, "debug"); /* written DEBUG */
	ck_assert_str_eq(s->hostname, "0.0.0.0");
	ck_assert_int_eq(s->port, 8080);
	ck_assert_str_eq(s->amqp_url,
	    "amqps://user:secret@mq.example.com:5671/prod");
	ck_assert_str_eq(s->prefix, "copr.resbus");
	ck_assert_uint_eq(s->nadmins, 2);
	ck_assert_str_eq(s->admins[0], "alice");
	ck_assert_str_eq(s->admins[1], "bob");
	conf_server_free(s);
}
END_TEST

START_TEST(test_server_defaults)
{
	struct conf_server *s;

	s = conf_server_load(GOOD("server-empty.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->db_url, "sqlite:////var/lib/resbus/db.sqlite");
	ck_assert_str_eq(s->logdir, "/var/log/resbus");
	ck_assert_str_eq(s->loglevel, "info");
	ck_assert_str_eq(s->hostname, "localhost");
	ck_assert_int_eq(s->port, 49100);
	ck_assert_ptr_null(s->amqp_url);
	ck_assert_str_eq(s->prefix, "resbus");
	ck_assert_uint_eq(s->nadmins, 0);
	ck_assert_ptr_null(s->admins);
	ck_assert_str_eq(s->http_listen, "127.0.0.1:49110");
	ck_assert(s->notify);
	ck_assert_str_eq(s->notify_exchange, "amq.topic");
	ck_assert_str_eq(s->notify_topic_prefix, "org.resbus");
	/* no policy: no classes, no default class, no limits, no rules */
	ck_assert_uint_eq(s->nclasses, 0);
	ck_assert_ptr_null(s->classes);
	ck_assert_ptr_null(s->default_class);
	ck_assert_uint_eq(s->nlimits, 0);
	ck_assert_ptr_null(s->limits);
	ck_assert_uint_eq(s->ntag_rules, 0);
	ck_assert_ptr_null(s->tag_rules);
	/* the bounds of a shared service */
	ck_assert(!s->workers_set);
	ck_assert_uint_eq(s->nworkers, 0);
	ck_assert_ptr_null(s->workers);
	ck_assert_int_eq(s->max_open_tickets_per_owner, 10000);
	ck_assert_int_eq(s->max_tagsets, 10000);
	ck_assert_int_eq(s->tagset_idle_s, 86400);
	ck_assert_int_eq(s->max_redeliveries, 3);
	/* the status page's history: one sample a minute */
	ck_assert_int_eq(s->history_interval_s, 60);
	conf_server_free(s);
}
END_TEST

/* classes, default_class, limits and tag_rules, with their defaults. */
START_TEST(test_server_policy)
{
	struct conf_server *s;
	const struct conf_class *c;
	const struct conf_limit *l;
	const struct conf_tag_rule *r;

	s = conf_server_load(GOOD("server-policy.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);

	/* classes, in file order */
	ck_assert_uint_eq(s->nclasses, 5);
	c = &s->classes[0];
	ck_assert_str_eq(c->name, "scratch");
	ck_assert_int_eq(c->priority, 0);
	ck_assert(!c->on_demand);
	ck_assert_uint_eq(c->ncaps, 1);
	ck_assert_str_eq(c->caps[0].pool, "osbs");
	ck_assert_int_eq(c->caps[0].max, 2);
	c = &s->classes[1];
	ck_assert_str_eq(c->name, "explicit");
	ck_assert_int_eq(c->priority, 10);
	ck_assert(c->on_demand); /* default */
	ck_assert_uint_eq(c->ncaps, 0);
	ck_assert_ptr_null(c->caps);
	c = &s->classes[2];
	ck_assert_str_eq(c->name, "auto");
	ck_assert_int_eq(c->priority, -5);
	ck_assert(c->on_demand);
	ck_assert_uint_eq(c->ncaps, 2);
	ck_assert_str_eq(c->caps[0].pool, "osbs");
	ck_assert_int_eq(c->caps[0].max, 3);
	ck_assert_str_eq(c->caps[1].pool, "x86");
	ck_assert_int_eq(c->caps[1].max, 10); /* written 0x0a */
	/* written with no options: all defaults */
	c = &s->classes[3];
	ck_assert_str_eq(c->name, "bare");
	ck_assert_int_eq(c->priority, 0);
	ck_assert(c->on_demand);
	ck_assert_uint_eq(c->ncaps, 0);
	/* merged from scratch, its own priority winning */
	c = &s->classes[4];
	ck_assert_str_eq(c->name, "scratch_high");
	ck_assert_int_eq(c->priority, 1);
	ck_assert(!c->on_demand);
	ck_assert_uint_eq(c->ncaps, 1);
	ck_assert_str_eq(c->caps[0].pool, "osbs");
	ck_assert_int_eq(c->caps[0].max, 2);
	ck_assert_ptr_ne(c->caps, s->classes[0].caps);

	ck_assert_str_eq(s->default_class, "explicit");

	/* limits: an absent per_owner or total is -1 */
	ck_assert_uint_eq(s->nlimits, 4);
	l = &s->limits[0];
	ck_assert_str_eq(l->tag, "powerful");
	ck_assert_int_eq(l->per_owner, 2);
	ck_assert_int_eq(l->total, -1);
	l = &s->limits[1];
	ck_assert_str_eq(l->tag, "powerful");
	ck_assert_int_eq(l->per_owner, -1);
	ck_assert_int_eq(l->total, 5);
	l = &s->limits[2];
	ck_assert_ptr_null(l->tag);
	ck_assert_int_eq(l->per_owner, 10);
	ck_assert_int_eq(l->total, -1);
	l = &s->limits[3];
	ck_assert_str_eq(l->tag, "arch=x86_64");
	ck_assert_int_eq(l->per_owner, 0);
	ck_assert_int_eq(l->total, 40);

	/* tag rules: the subject defaults to Copr's */
	ck_assert_uint_eq(s->ntag_rules, 2);
	r = &s->tag_rules[0];
	ck_assert_str_eq(r->subject, "{owner}/{project}/{chroot}/{package}");
	ck_assert_str_eq(r->match, ".*/chromium$");
	ck_assert_uint_eq(r->nadd, 1);
	ck_assert_str_eq(r->add[0], "powerful");
	r = &s->tag_rules[1];
	/* a placeholder name of 32 characters is the longest */
	ck_assert_str_eq(r->subject,
	    "{owner}:{build_type}/{x_1}{abcdefghijklmnopqrstuvwxyz_01234}");
	ck_assert_str_eq(r->match, "^(alice|bob):(scratch|auto)/");
	ck_assert_uint_eq(r->nadd, 2);
	ck_assert_str_eq(r->add[0], "memory=64");
	ck_assert_str_eq(r->add[1], "arch=x86_64");
	conf_server_free(s);
}
END_TEST

/* http_listen and the notification keys; a bare YAML off turns HTTP off. */
START_TEST(test_server_http)
{
	struct conf_server *s;

	s = conf_server_load(GOOD("server-http.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->http_listen, "[::1]:8080");
	ck_assert(!s->notify);
	ck_assert_str_eq(s->notify_exchange, "copr.events");
	ck_assert_str_eq(s->notify_topic_prefix, "org.fedoraproject.prod");
	conf_server_free(s);

	s = conf_server_load(GOOD("server-http-off.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->http_listen, "off");
	ck_assert(s->notify);
	conf_server_free(s);
}
END_TEST

/* A resalloc server.yaml (sleeptime, host) loads unchanged. */
START_TEST(test_server_resalloc)
{
	struct conf_server *s;

	s = conf_server_load(GOOD("server-resalloc.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->db_url, "sqlite:////tmp/resalloc.sqlite");
	ck_assert_str_eq(s->logdir, "/tmp/resalloc-logs");
	ck_assert_str_eq(s->hostname, "127.0.0.1");
	ck_assert_int_eq(s->port, 49100);
	conf_server_free(s);

	/* hostname wins over host, whichever comes first */
	s = conf_server_load(GOOD("server-host.yaml"), err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->hostname, "192.0.2.2");
	conf_server_free(s);
}
END_TEST

START_TEST(test_worker_good)
{
	struct conf_worker *w;

	w = conf_worker_load(GOOD("worker.yaml"), err, sizeof(err));
	ck_assert_msg(w != NULL, "%s", err);
	ck_assert_str_eq(w->amqp_url, "amqp://worker:pw@mq:5672/");
	/* relative to the directory of worker.yaml */
	ck_assert_str_eq(w->pools_file, GOOD("../pools.yaml"));
	ck_assert_uint_eq(w->npools, 2);
	ck_assert_str_eq(w->pools[0], "copr_x86");
	ck_assert_str_eq(w->pools[1], "beefy");
	ck_assert_int_eq(w->concurrency, 1000);
	ck_assert_str_eq(w->logdir, "/var/log/resbus-worker");
	ck_assert_str_eq(w->prefix, "test");
	conf_worker_free(w);
}
END_TEST

START_TEST(test_worker_defaults)
{
	struct conf_worker *w;

	w = conf_worker_load(GOOD("worker-empty.yaml"), err, sizeof(err));
	ck_assert_msg(w != NULL, "%s", err);
	ck_assert_ptr_null(w->amqp_url);
	ck_assert_str_eq(w->pools_file, GOOD("pools.yaml"));
	ck_assert_uint_eq(w->npools, 0);
	ck_assert_int_eq(w->concurrency, 64);
	ck_assert_str_eq(w->logdir, "/var/log/resbus");
	ck_assert_str_eq(w->prefix, "resbus");
	/* none listed: the worker's own login */
	ck_assert_uint_eq(w->nbroker_users, 0);
	ck_assert_ptr_null(w->broker_users);
	conf_worker_free(w);
}
END_TEST

START_TEST(test_worker_broker_users)
{
	struct conf_worker *w;
	char *path;

	w = load_text(1, "broker_users: [broker, broker-standby]\n", &path);
	ck_assert_msg(w != NULL, "%s", err);
	ck_assert_uint_eq(w->nbroker_users, 2);
	ck_assert_str_eq(w->broker_users[0], "broker");
	ck_assert_str_eq(w->broker_users[1], "broker-standby");
	conf_worker_free(w);
	unlink(path);
	free(path);
}
END_TEST

/* workers, the caps on open tickets and tag sets, idle retirement. */
START_TEST(test_server_bounds)
{
	struct conf_server *s;
	char *path;

	s = load_text(0,
	    "workers: [worker, worker-eu]\n"
	    "max_open_tickets_per_owner: 50\n"
	    "max_tagsets: 0\n"
	    "tagset_idle_s: 600\n"
	    "max_redeliveries: 7\n"
	    "history_interval_s: 1\n",
	    &path);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(s->workers_set);
	ck_assert_uint_eq(s->nworkers, 2);
	ck_assert_str_eq(s->workers[0], "worker");
	ck_assert_str_eq(s->workers[1], "worker-eu");
	ck_assert_int_eq(s->max_open_tickets_per_owner, 50);
	ck_assert_int_eq(s->max_tagsets, 0); /* no cap */
	ck_assert_int_eq(s->tagset_idle_s, 600);
	ck_assert_int_eq(s->max_redeliveries, 7);
	ck_assert_int_eq(s->history_interval_s, 1);
	conf_server_free(s);
	unlink(path);
	free(path);

	/* tagset_idle_s 0: never retire */
	s = load_text(0, "tagset_idle_s: 0\nmax_open_tickets_per_owner: 0\n",
	    &path);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(!s->workers_set);
	ck_assert_int_eq(s->tagset_idle_s, 0);
	ck_assert_int_eq(s->max_open_tickets_per_owner, 0);
	conf_server_free(s);
	unlink(path);
	free(path);
}
END_TEST

struct bad_text {
	int loader; /* 0 server, 1 worker */
	const char *text;
	const char *msg; /* after "file:" */
};

static const struct bad_text bad_texts[] = {
	{ 0, "workers: []\n", "1:10: workers: must list at least one item" },
	/* as for any list that must not be empty, null is not "absent" */
	{ 0, "workers:\n", "1:9: workers: must list at least one item" },
	{ 0, "workers: worker\n",
	    "1:10: workers: expected a list of strings, got \"worker\"" },
	{ 0, "workers: [\"\"]\n", "1:11: workers: must not be empty" },
	{ 0, "max_open_tickets_per_owner: -1\n",
	    "1:29: max_open_tickets_per_owner: expected a non-negative "
	    "integer, got \"-1\"" },
	{ 0, "max_tagsets: lots\n",
	    "1:14: max_tagsets: expected a non-negative integer, got "
	    "\"lots\"" },
	{ 0, "tagset_idle_s: -5\n",
	    "1:16: tagset_idle_s: expected a non-negative integer, got "
	    "\"-5\"" },
	{ 0, "max_redeliveries: 0\n",
	    "1:19: max_redeliveries: expected an integer between 1 and "
	    "1000000, got \"0\"" },
	{ 0, "history_interval_s: 0\n",
	    "1:21: history_interval_s: expected an integer between 1 and "
	    "3600, got \"0\"" },
	{ 1, "broker_users: []\n",
	    "1:15: broker_users: must list at least one item" },
	{ 1, "broker_users: broker\n",
	    "1:15: broker_users: expected a list of strings, got \"broker\"" },
};

START_TEST(test_bad_text)
{
	const struct bad_text *c = &bad_texts[_i];
	char *path;
	void *loaded;

	loaded = load_text(c->loader, c->text, &path);
	ck_assert_msg(loaded == NULL, "\"%s\" loaded", c->text);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
		err[strlen(path)] == ':' &&
		strcmp(err + strlen(path) + 1, c->msg) == 0,
	    "got \"%s\", want \"%s:%s\"", err, path, c->msg);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_missing_file)
{
	const char *path = BAD("no-such-file.yaml");

	ck_assert_ptr_null(conf_server_load(path, err, sizeof(err)));
	ck_assert_str_eq(err, TEST_SRCDIR
	    "/conf/bad/no-such-file.yaml: No such file or directory");
	err[0] = '\0';
	ck_assert_ptr_null(conf_pools_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no-such-file.yaml: No such file"));
	err[0] = '\0';
	ck_assert_ptr_null(conf_worker_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no-such-file.yaml: No such file"));
	/* a directory is not a configuration file either */
	ck_assert_ptr_null(conf_pools_load(TEST_SRCDIR "/conf", err,
	    sizeof(err)));
	ck_assert_str_eq(err, TEST_SRCDIR "/conf: not a regular file");
}
END_TEST

/* A short buffer gets a truncated, terminated message. */
START_TEST(test_short_err)
{
	char small[16];

	memset(small, 'x', sizeof(small));
	ck_assert_ptr_null(conf_pools_load(BAD("pools-negative.yaml"), small,
	    sizeof(small)));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_ptr_null(conf_pools_load(BAD("pools-negative.yaml"), NULL,
	    0));
}
END_TEST

START_TEST(test_dir_pick)
{
	unsetenv("CONFIG_DIR");
	ck_assert_str_eq(conf_dir_pick(NULL), SYSCONFDIR "/resbus");
	ck_assert_str_eq(conf_dir_pick("/opt/x"), "/opt/x");
	setenv("CONFIG_DIR", "/env/dir", 1);
	ck_assert_str_eq(conf_dir_pick(NULL), "/env/dir");
	ck_assert_str_eq(conf_dir_pick("/opt/x"), "/opt/x");
	unsetenv("CONFIG_DIR");
}
END_TEST

enum loader { POOLS, SERVER, WORKER };

struct bad_case {
	const char *file;
	enum loader loader;
	const char *pos; /* "line:column" */
	const char *msg; /* a substring of what follows */
};

static const struct bad_case bad_cases[] = {
	{ "pools-int-string.yaml", POOLS, "4:10",
	    "max: expected a non-negative integer, got \"four\"" },
	{ "pools-bool-int.yaml", POOLS, "4:19",
	    "max_starting: expected a non-negative integer, got \"yes\"" },
	{ "pools-float-int.yaml", POOLS, "4:23",
	    "livecheck_period: expected a non-negative integer, got \"1.5\"" },
	{ "pools-unknown-key.yaml", POOLS, "4:5",
	    "unknown key \"max_preallocate\"" },
	{ "pools-negative.yaml", POOLS, "8:10",
	    "max: expected a non-negative integer, got \"-3\"" },
	{ "pools-negative-reuse.yaml", POOLS, "4:21",
	    "reuse_max_time: expected a non-negative integer, got \"-1\"" },
	{ "pools-int-overflow.yaml", POOLS, "4:22",
	    "reuse_max_count: expected a non-negative integer, got "
	    "\"9223372036854775808\"" },
	{ "pools-timeout-zero.yaml", POOLS, "4:22",
	    "cmd_new_timeout: expected a positive integer, got \"0\"" },
	{ "pools-ondemand-conflict.yaml", POOLS, "6:11",
	    "tag \"powerful\" is on-demand in pool \"ondemand\", so it may not "
	    "be a normal tag of pool \"normal\"" },
	{ "pools-ondemand-same-pool.yaml", POOLS, "5:12",
	    "tag \"gpu\" is on-demand in pool \"both\"" },
	{ "pools-syntax.yaml", POOLS, "3:4",
	    "did not find expected key (while parsing a block mapping at "
	    "line 1, column 1)" },
	{ "pools-syntax-flow.yaml", POOLS, "5:1",
	    "did not find expected ',' or ']'" },
	{ "pools-bad-utf8.yaml", POOLS, "3:22", "invalid leading UTF-8 octet" },
	{ "pools-two-documents.yaml", POOLS, "5:1",
	    "expected a single YAML document" },
	{ "pools-missing-cmd-new.yaml", POOLS, "6:1",
	    "pool \"incomplete\": cmd_new is required" },
	{ "pools-missing-cmd-delete.yaml", POOLS, "1:1",
	    "pool \"basic\": cmd_delete is required" },
	{ "pools-null-pool.yaml", POOLS, "1:1",
	    "pool \"empty_pool\": cmd_new is required" },
	{ "pools-null-cmd.yaml", POOLS, "2:13",
	    "cmd_new: expected a string, got null" },
	{ "pools-bad-tag.yaml", POOLS, "6:11",
	    "tags: invalid name \"not fine\"" },
	{ "pools-bad-tag-mapping.yaml", POOLS, "5:24", "unknown key \"prio\"" },
	{ "pools-tag-priority.yaml", POOLS, "5:34",
	    "priority: expected an integer, got \"high\"" },
	{ "pools-tags-scalar.yaml", POOLS, "4:11",
	    "tags: expected a list of tags, got \"x86_64\"" },
	{ "pools-duplicate-tag.yaml", POOLS, "4:18",
	    "duplicate tag \"a\" (first at line 4)" },
	{ "pools-duplicate-key.yaml", POOLS, "5:5",
	    "duplicate key \"max\" (first at line 3)" },
	{ "pools-duplicate-pool.yaml", POOLS, "7:1",
	    "duplicate pool \"basic\" (first at line 1)" },
	{ "pools-name-pattern.yaml", POOLS, "4:19",
	    "name_pattern: unknown placeholder \"{host}\"" },
	{ "pools-top-list.yaml", POOLS, "1:1",
	    "expected a mapping of pool names to pool options, got a list" },
	{ "pools-not-mapping.yaml", POOLS, "4:9",
	    "pool \"broken\": expected a mapping of options, got \"/bin/true\"" },
	{ "pools-bad-pool-name.yaml", POOLS, "1:1",
	    "invalid pool name \"my pool\"" },
	{ "pools-bad-counter.yaml", POOLS, "4:26",
	    "named_counters: invalid counter name \"not-an-env-name\"" },
	{ "pools-merge-unknown.yaml", POOLS, "5:20", "unknown key \"maximum\"" },
	{ "pools-merge-scalar.yaml", POOLS, "2:9",
	    "<<: expected a mapping or a list of mappings, got \"/bin/true\"" },
	{ "server-db-url.yaml", SERVER, "2:9",
	    "db_url: expected a URL starting with sqlite:///, postgresql:// or "
	    "postgres://, got \"mysql://localhost/resbus\"" },
	{ "server-loglevel.yaml", SERVER, "1:11",
	    "loglevel: expected one of error, warning, info, debug, got "
	    "\"verbose\"" },
	{ "server-port.yaml", SERVER, "2:7",
	    "port: expected an integer between 1 and 65535, got \"70000\"" },
	{ "server-unknown-key.yaml", SERVER, "2:1", "unknown key \"dburl\"" },
	{ "server-amqp-url.yaml", SERVER, "1:11",
	    "amqp_url: expected a URL starting with amqp:// or amqps://" },
	{ "server-top-scalar.yaml", SERVER, "1:1",
	    "expected a mapping of options, got \"just a string\"" },
	{ "server-admins.yaml", SERVER, "1:9",
	    "admins: expected a list of strings, got \"alice\"" },
	{ "server-bool-string.yaml", SERVER, "1:11",
	    "hostname: expected a string, got \"on\" (a YAML boolean)" },
	{ "server-http-listen.yaml", SERVER, "1:14",
	    "http_listen: expected HOST:PORT, [IPV6]:PORT, \"\" or off, got "
	    "\"localhost\"" },
	{ "server-notify.yaml", SERVER, "1:9",
	    "notify: expected true or false, got \"yes\"" },
	/* server.yaml's policy */
	{ "server-class-name.yaml", SERVER, "2:3",
	    "classes: invalid name \"bad class\"" },
	{ "server-class-priority.yaml", SERVER, "3:15",
	    "priority: expected an integer, got \"high\"" },
	{ "server-class-on-demand.yaml", SERVER, "3:16",
	    "on_demand: expected true or false, got \"no\"" },
	{ "server-class-cap-negative.yaml", SERVER, "4:18",
	    "caps: expected a non-negative integer, got \"-1\"" },
	{ "server-class-cap-empty-pool.yaml", SERVER, "3:12",
	    "caps: empty pool name" },
	{ "server-class-caps-list.yaml", SERVER, "3:11",
	    "caps: expected a mapping of pool names, got a list" },
	{ "server-class-unknown-key.yaml", SERVER, "4:5",
	    "unknown key \"prio\"" },
	{ "server-class-duplicate.yaml", SERVER, "4:3",
	    "duplicate class \"scratch\" (first at line 2)" },
	{ "server-classes-list.yaml", SERVER, "2:3",
	    "classes: expected a mapping of class names, got a list" },
	{ "server-class-scalar.yaml", SERVER, "2:12",
	    "class \"scratch\": expected a mapping of options, got \"5\"" },
	{ "server-classes-merge.yaml", SERVER, "5:3",
	    "classes: merge keys (<<) are not allowed here" },
	{ "server-default-class.yaml", SERVER, "5:16",
	    "default_class: \"auto\" is not one of classes" },
	{ "server-default-class-none.yaml", SERVER, "1:16",
	    "default_class: \"explicit\" is not one of classes (none is "
	    "defined)" },
	{ "server-limit-empty.yaml", SERVER, "4:5",
	    "limits: a limit needs per_owner or total" },
	{ "server-limit-tag.yaml", SERVER, "2:10",
	    "tag: invalid name \"not ok\"" },
	{ "server-limit-negative.yaml", SERVER, "2:16",
	    "per_owner: expected a non-negative integer, got \"-1\"" },
	{ "server-limit-unknown-key.yaml", SERVER, "3:5",
	    "unknown key \"owner\"" },
	{ "server-limits-mapping.yaml", SERVER, "2:3",
	    "limits: expected a list of mappings, got a mapping" },
	{ "server-limit-scalar.yaml", SERVER, "2:5",
	    "limits: expected a mapping of options, got \"powerful\"" },
	{ "server-rule-no-match.yaml", SERVER, "2:5",
	    "tag_rules: match is required" },
	{ "server-rule-regex.yaml", SERVER, "2:12",
	    "match: invalid regular expression \"(chromium\": " },
	/* glibc compiled a run of "+" into gigabytes (found by fuzzing) */
	{ "server-rule-regex-costly.yaml", SERVER, "2:12",
	    "match: a repetition operator right after another (at byte 10) "
	    "is refused" },
	{ "server-rule-match-empty.yaml", SERVER, "2:12",
	    "match: must not be empty" },
	{ "server-rule-add-empty.yaml", SERVER, "3:10",
	    "add: must list at least one item" },
	{ "server-rule-no-add.yaml", SERVER, "2:5",
	    "tag_rules: add is required" },
	{ "server-rule-add-tag.yaml", SERVER, "3:21",
	    "add: invalid name \"two words\"" },
	{ "server-rule-placeholder.yaml", SERVER, "2:14",
	    "subject: bad placeholder \"{Package}\": expected {name}, name 1 "
	    "to 32 of a-z 0-9 _" },
	{ "server-rule-brace.yaml", SERVER, "2:14",
	    "subject: bad placeholder \"{owner/{package}\"" },
	{ "server-rule-unknown-key.yaml", SERVER, "4:5",
	    "unknown key \"tags\"" },
	{ "server-rule-placeholder-long.yaml", SERVER, "2:14",
	    "subject: bad placeholder \"{a_very_long_placeholder_name_33ch}\"" },
	{ "server-rule-unmatched-close.yaml", SERVER, "3:14",
	    "subject: unmatched '}' in \"owner}/{package}\"" },
	{ "server-rule-add-null.yaml", SERVER, "3:9",
	    "add: must list at least one item" },
	{ "server-class-cap-bool-key.yaml", SERVER, "5:7",
	    "caps: expected a string, got \"yes\" (a YAML boolean)" },
	{ "server-class-cap-duplicate.yaml", SERVER, "3:29",
	    "duplicate pool \"osbs\" (first at line 3)" },
	{ "worker-concurrency.yaml", WORKER, "2:14",
	    "concurrency: expected an integer between 1 and 100000, got \"0\"" },
	{ "worker-bad-pool.yaml", WORKER, "1:12", "pools: invalid name \"b/c\"" },
};

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	char *path, *want;
	void *loaded = NULL;

	path = malloc(strlen(BAD("")) + strlen(c->file) + 1);
	ck_assert_ptr_nonnull(path);
	strcpy(path, BAD(""));
	strcat(path, c->file);
	memset(err, 0, sizeof(err));
	switch (c->loader) {
	case POOLS:
		loaded = conf_pools_load(path, err, sizeof(err));
		break;
	case SERVER:
		loaded = conf_server_load(path, err, sizeof(err));
		break;
	case WORKER:
		loaded = conf_worker_load(path, err, sizeof(err));
		break;
	}
	ck_assert_msg(loaded == NULL, "%s loaded", c->file);
	want = malloc(strlen(path) + strlen(c->pos) + 4);
	ck_assert_ptr_nonnull(want);
	strcpy(want, path);
	strcat(want, ":");
	strcat(want, c->pos);
	strcat(want, ": ");
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "%s: got \"%s\", want prefix \"%s\"", c->file, err, want);
	ck_assert_msg(strstr(err + strlen(want), c->msg) != NULL,
	    "%s: got \"%s\", want \"%s\"", c->file, err, c->msg);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: not one line", c->file);
	free(want);
	free(path);
}
END_TEST

/* ---- every key in its man page, every documented key a key ----------- */

#define DOC_KEYS_MAX 256

/* The man page MAN under $RESBUS_SRCDIR/man, whole (caller frees). */
static char *
man_read(const char *man)
{
	const char *src = getenv("RESBUS_SRCDIR");
	char path[1024], *text;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/man/%s", src ? src : ".", man);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

static bool
is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* Whether WORD appears in TEXT as a whole word. */
static bool
has_word(const char *text, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = strstr(text, word); p != NULL; p = strstr(p + 1, word))
		if ((p == text || !is_word_char(p[-1])) && !is_word_char(p[n]))
			return true;
	return false;
}

static bool
in_names(const char *const *names, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], word) == 0)
			return true;
	return false;
}

/*
 * The keys a man page documents as entries: ".It Cm KEY" (mdoc) or ".TP"
 * followed by ".B KEY" / ".BR KEY ..." (man), before the sections that
 * list no keys (FILES, EXAMPLE(S), SEE ALSO).  Each found goes to FN.
 */
static void
man_entries(const char *text, void (*fn)(const char *word, void *arg),
    void *arg)
{
	const char *line = text, *next, *p;
	char word[128];
	bool after_tp = false;
	size_t n;

	for (; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : line + strlen(line);
		if (strncmp(line, ".SH FILES", 9) == 0 ||
		    strncmp(line, ".Sh FILES", 9) == 0 ||
		    strncmp(line, ".SH EXAMPLE", 11) == 0 ||
		    strncmp(line, ".Sh EXAMPLE", 11) == 0 ||
		    strncmp(line, ".SH SEE ALSO", 12) == 0 ||
		    strncmp(line, ".Sh SEE ALSO", 12) == 0)
			return;
		p = NULL;
		if (strncmp(line, ".It Cm ", 7) == 0)
			p = line + 7;
		else if (after_tp && strncmp(line, ".BR ", 4) == 0)
			p = line + 4;
		else if (after_tp && strncmp(line, ".B ", 3) == 0)
			p = line + 3;
		after_tp = strncmp(line, ".TP", 3) == 0;
		if (p == NULL)
			continue;
		for (n = 0; n < sizeof(word) - 1 && is_word_char(p[n]); n++)
			word[n] = p[n];
		word[n] = '\0';
		if (n > 0)
			fn(word, arg);
	}
}

struct doc_check {
	const char *man;
	const char *names[2 * DOC_KEYS_MAX];
	size_t n;
	size_t entries;
};

static void
doc_entry(const char *word, void *arg)
{
	struct doc_check *d = arg;

	d->entries++;
	ck_assert_msg(in_names(d->names, d->n, word),
	    "man/%s documents \"%s\", which is no key of the file", d->man,
	    word);
}

static const struct {
	const char *file, *man, *also;
} doc_files[] = {
	{ "server", "resbus-server.yaml.5", NULL },
	{ "pools", "resbus-pools.yaml.5", NULL },
	/* resbus-worker.yaml(5) also lists the keys of pools.yaml it uses. */
	{ "worker", "resbus-worker.yaml.5", "pools" },
};

START_TEST(test_keys_documented)
{
	static struct doc_check d;
	char *text;
	size_t i, n;

	memset(&d, 0, sizeof(d));
	d.man = doc_files[_i].man;
	d.n = conf_file_keys(doc_files[_i].file, d.names, DOC_KEYS_MAX);
	ck_assert_uint_gt(d.n, 0);
	ck_assert_uint_le(d.n, DOC_KEYS_MAX);
	text = man_read(d.man);
	for (i = 0; i < d.n; i++)
		ck_assert_msg(has_word(text, d.names[i]),
		    "%s.yaml's key \"%s\" is not in man/%s",
		    doc_files[_i].file, d.names[i], d.man);
	if (doc_files[_i].also != NULL) {
		n = conf_file_keys(doc_files[_i].also, d.names + d.n,
		    DOC_KEYS_MAX);
		ck_assert_uint_le(n, DOC_KEYS_MAX);
		d.n += n;
	}
	man_entries(text, doc_entry, &d);
	/* The page lists its keys as entries at all. */
	ck_assert_uint_gt(d.entries, 5);
	free(text);
}
END_TEST


static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("good");
	tcase_add_test(tc, test_pools_good);
	tcase_add_test(tc, test_pools_empty);
	tcase_add_test(tc, test_pools_merge);
	tcase_add_test(tc, test_server_good);
	tcase_add_test(tc, test_server_defaults);
	tcase_add_test(tc, test_server_policy);
	tcase_add_test(tc, test_server_http);
	tcase_add_test(tc, test_server_resalloc);
	tcase_add_test(tc, test_worker_good);
	tcase_add_test(tc, test_worker_defaults);
	tcase_add_test(tc, test_server_bounds);
	tcase_add_test(tc, test_worker_broker_users);
	tcase_add_test(tc, test_dir_pick);
	tcase_add_loop_test(tc, test_keys_documented, 0,
	    (int)(sizeof(doc_files) / sizeof(doc_files[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("bad");
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_short_err);
	tcase_add_loop_test(tc, test_bad, 0,
	    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_loop_test(tc, test_bad_text, 0,
	    (int)(sizeof(bad_texts) / sizeof(bad_texts[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
