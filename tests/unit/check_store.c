/*
 * Unit tests of the store backends: every case runs once against SQLite
 * (a file in a temporary directory) and once against PostgreSQL (a fresh
 * database on the private server whose socket directory, port and user
 * come from RESBUS_TEST_PG_HOST, RESBUS_TEST_PG_PORT and
 * RESBUS_TEST_PG_USER, as scripts/postgres.sh writes them).  Without that
 * environment the PostgreSQL cases fail; they never skip.
 *
 * The PostgreSQL backend completes commits and lookups asynchronously, so
 * the cases wait for their callbacks by polling the backend's socket and
 * calling its io(), with a deadline, as the broker's loop does.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "util.h"

enum { BE_SQLITE, BE_PG, BE_COUNT };

static const char *const be_names[BE_COUNT] = { "sqlite", "postgresql" };

#define WAIT_MS 5000

/* Made once per run by the unchecked fixture, in the parent process. */
static char tmpdir[1024];
static char pg_prefix[64];

/* One test's database. */
struct db {
	int be;
	const char *name;            /* backend name, for messages */
	char url[PATH_MAX + 256];
	char path[PATH_MAX];         /* sqlite */
};

/* ---- PostgreSQL administration ------------------------------------------ */

static bool
pg_env(const char **host, const char **port, const char **user)
{
	*host = getenv("RESBUS_TEST_PG_HOST");
	*port = getenv("RESBUS_TEST_PG_PORT");
	*user = getenv("RESBUS_TEST_PG_USER");
	if (*user == NULL || **user == '\0')
		*user = "resbus";
	return *host != NULL && **host != '\0' && *port != NULL &&
	    **port != '\0';
}

/* A blocking connection to database NAME; NULL if the env is missing. */
static PGconn *
pg_admin(const char *name)
{
	const char *keys[] = { "host", "port", "user", "dbname", NULL };
	const char *values[5];

	if (!pg_env(&values[0], &values[1], &values[2]))
		return NULL;
	values[3] = name;
	values[4] = NULL;
	return PQconnectdbParams(keys, values, 0);
}

static void
pg_admin_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(res));
	PQclear(res);
}

/* ---- fixtures ------------------------------------------------------------ */

static void
suite_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/check_store.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
	snprintf(pg_prefix, sizeof(pg_prefix), "resbus_check_store_%ld_",
	    (long)getpid());
}

/* Removes the temporary directory and every database the cases made. */
static void
suite_teardown(void)
{
	PGconn *conn;
	PGresult *res;
	struct dirent *de;
	char path[PATH_MAX + 256], *sql, *like;
	DIR *dir;
	int i;

	if ((dir = opendir(tmpdir)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
			    de->d_name);
			(void)unlink(path);
		}
		closedir(dir);
	}
	(void)rmdir(tmpdir);

	if ((conn = pg_admin("postgres")) == NULL)
		return;
	if (PQstatus(conn) == CONNECTION_OK) {
		like = xasprintf("%s%%", pg_prefix);
		res = PQexecParams(conn, "SELECT datname FROM pg_database "
		    "WHERE datname LIKE $1", 1, NULL,
		    (const char *const *)&like, NULL, NULL, 0);
		for (i = 0; PQresultStatus(res) == PGRES_TUPLES_OK &&
		    i < PQntuples(res); i++) {
			sql = xasprintf("DROP DATABASE IF EXISTS \"%s\" "
			    "WITH (FORCE)", PQgetvalue(res, i, 0));
			PQclear(PQexec(conn, sql));
			free(sql);
		}
		PQclear(res);
		free(like);
	}
	PQfinish(conn);
}

/* Makes a fresh, empty database for backend BE. */
static void
db_make(struct db *d, int be)
{
	static int serial;
	const char *host, *port, *user;
	char dbname[128], *sql;
	PGconn *conn;

	memset(d, 0, sizeof(*d));
	d->be = be;
	d->name = be_names[be];
	serial++;
	if (be == BE_SQLITE) {
		snprintf(d->path, sizeof(d->path), "%s/store-%ld-%d.db",
		    tmpdir, (long)getpid(), serial);
		snprintf(d->url, sizeof(d->url), "sqlite://%s%s",
		    d->path[0] == '/' ? "/" : "", d->path);
		return;
	}
	if (!pg_env(&host, &port, &user))
		ck_abort_msg("postgresql: RESBUS_TEST_PG_HOST and "
		    "RESBUS_TEST_PG_PORT are not set: start a server with "
		    "'scripts/postgres.sh start DIR auto' and source DIR/env, "
		    "or run scripts/test.sh");
	conn = pg_admin("postgres");
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK,
	    "postgresql: cannot connect to %s:%s as %s: %s", host, port,
	    user, PQerrorMessage(conn));
	snprintf(dbname, sizeof(dbname), "%s%ld_%d", pg_prefix,
	    (long)getpid(), serial);
	sql = xasprintf("CREATE DATABASE \"%s\"", dbname);
	pg_admin_exec(conn, sql);
	free(sql);
	PQfinish(conn);
	snprintf(d->url, sizeof(d->url), "postgresql://%s@/%s?host=%s&port=%s",
	    user, dbname, host, port);
}

static struct store *
db_open(const struct db *d)
{
	char err[1024] = "";
	struct store *s;

	s = store_open(d->url, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s: open %s: %s", d->name, d->url, err);
	ck_assert_str_eq(s->be->name, d->name);
	return s;
}

/* The one integer SQL returns, read past the store with the client API. */
static long long
db_scalar(const struct db *d, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	PGconn *conn;
	PGresult *res;
	long long v;

	if (d->be == BE_SQLITE) {
		ck_assert_int_eq(sqlite3_open_v2(d->path, &db,
		    SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) ==
		    SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
		return v;
	}
	conn = PQconnectdb(d->url);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
	    PQerrorMessage(conn));
	res = PQexec(conn, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1, "%s: %s", sql, PQresultErrorMessage(res));
	v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return v;
}

/* ---- driving the asynchronous backend ---------------------------------- */

/*
 * Runs the backend's io() on its socket until *FLAG is set, as the
 * broker's loop would, failing the case after WAIT_MS.
 */
static void
pump(struct store *s, const bool *flag)
{
	int64_t deadline = now_mono_ms() + WAIT_MS, left;
	struct pollfd pfd;

	while (!*flag) {
		left = deadline - now_mono_ms();
		ck_assert_msg(left > 0, "%s: no callback within %d ms",
		    s->be->name, WAIT_MS);
		pfd.fd = s->be->fd(s);
		ck_assert_msg(pfd.fd >= 0, "%s: a callback is due but the "
		    "backend has no socket", s->be->name);
		pfd.events = POLLIN | (s->be->want_write(s) ? POLLOUT : 0);
		pfd.revents = 0;
		ck_assert_int_ge(poll(&pfd, 1, (int)left), 0);
		ck_assert_msg(s->be->io(s) == 0, "%s: io: %s", s->be->name,
		    store_error(s));
	}
}

/* What commit callbacks saw. */
struct done_rec {
	bool called;
	bool ok;
	int calls;
	int seq;                     /* order among all callbacks */
};

static int callback_seq;

static void
on_done(void *arg, bool ok)
{
	struct done_rec *r = arg;

	r->calls++;
	r->called = true;
	r->ok = ok;
	r->seq = ++callback_seq;
}

/* What a get_ticket callback saw. */
struct ticket_rec {
	bool called;
	int calls;
	int found;
	char state[32];
	bool data_null;
	char data[64];
	size_t data_len;
};

static void
on_ticket(void *arg, int found, const char *state, const char *owner,
    const char *delegate, const void *data, size_t data_len)
{
	struct ticket_rec *r = arg;

	r->calls++;
	r->called = true;
	r->found = found;
	snprintf(r->state, sizeof(r->state), "%s", state ? state : "(null)");
	r->data_null = data == NULL;
	r->data_len = data_len;
	if (data != NULL && data_len < sizeof(r->data))
		memcpy(r->data, data, data_len);
}

/* store_commit and wait for its callback; returns its verdict. */
static bool
commit_wait(struct store *s)
{
	struct done_rec r = { 0 };

	ck_assert_msg(store_commit(s, on_done, &r) == 0, "%s: commit: %s",
	    s->be->name, store_error(s));
	pump(s, &r.called);
	ck_assert_int_eq(r.calls, 1);
	return r.ok;
}

static void
get_ticket_wait(struct store *s, uint64_t id, struct ticket_rec *r)
{
	memset(r, 0, sizeof(*r));
	ck_assert_msg(s->be->get_ticket(s, id, on_ticket, r) == 0,
	    "%s: get_ticket: %s", s->be->name, store_error(s));
	pump(s, &r->called);
	ck_assert_int_eq(r->calls, 1);
}

/* ---- load, as text ------------------------------------------------------ */

struct trace {
	char buf[8192];
	size_t len;
};

static void __attribute__((format(printf, 2, 3)))
trace_add(struct trace *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
	t->len += (size_t)n;
}

static void
trace_hex(struct trace *t, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	if (data == NULL) {
		trace_add(t, "NULL");
		return;
	}
	for (i = 0; i < len; i++)
		trace_add(t, "%02x", p[i]);
}

#define S(x) ((x) != NULL ? (x) : "NULL")

static void
load_meta(void *arg, const char *key, int64_t value)
{
	trace_add(arg, "meta %s=%lld\n", key, (long long)value);
}

static void
load_tagset(void *arg, const char *key)
{
	trace_add(arg, "tagset %s\n", key);
}

static void
load_ticket(void *arg, const struct store_ticket *t)
{
	trace_add(arg, "ticket %llu idem=%s tagset=%s sandbox=%s state=%s "
	    "resource=%llu created=%lld owner=%s labels=%s class=%s "
	    "lease=%d deadline=%lld reply_to=%s\n", (unsigned long long)t->id,
	    S(t->idem_key), S(t->tagset), S(t->sandbox), S(t->state),
	    (unsigned long long)t->resource_id, (long long)t->created_ms,
	    S(t->owner), S(t->labels), S(t->class_), (int)t->lease_s,
	    (long long)t->deadline_ms, S(t->reply_to));
}

static void
load_resource(void *arg, const struct store_resource *r)
{
	trace_add(arg, "resource %llu pool=%s name=%s state=%s ticket=%llu "
	    "idx=%d created=%lld sandbox=%s since=%lld released=%lld "
	    "releases=%d check_failed=%d counters=%s data=",
	    (unsigned long long)r->id, S(r->pool), S(r->name), S(r->state),
	    (unsigned long long)r->ticket_id, (int)r->id_in_pool,
	    (long long)r->created_ms, S(r->sandbox),
	    (long long)r->sandboxed_since_ms, (long long)r->released_at_ms,
	    (int)r->releases, (int)r->check_failed, S(r->counters));
	trace_hex(arg, r->data, r->data_len);
	trace_add(arg, "\n");
}

static void
load_outbox(void *arg, const struct store_outbox *o)
{
	trace_add(arg, "outbox %llu %s %s %s body=", (unsigned long long)o->id,
	    S(o->exchange), S(o->routing_key), S(o->type));
	trace_hex(arg, o->body, o->len);
	trace_add(arg, "\n");
}

static void
load_trace(struct store *s, struct trace *t)
{
	struct store_loader l = {
		.meta = load_meta,
		.tagset = load_tagset,
		.ticket = load_ticket,
		.resource = load_resource,
		.outbox = load_outbox,
		.arg = t,
	};

	memset(t, 0, sizeof(*t));
	ck_assert_msg(s->be->load(s, &l) == 0, "%s: load: %s", s->be->name,
	    store_error(s));
}

/* ---- the rows ------------------------------------------------------------ */

static const struct store_ticket tickets[] = {
	{ .id = 1, .idem_key = "idem-1", .tagset = "a+b", .state = "OPEN",
	    .created_ms = 1000, .owner = "alice",
	    .labels = "project=p\npackage=chromium\n", .class_ = "scratch",
	    .lease_s = 30, .deadline_ms = 5000, .reply_to = "amq.gen-1" },
	{ .id = 2, .tagset = "a+b", .sandbox = "user/proj", .state = "CLOSED",
	    .resource_id = 11, .created_ms = 1001,
	    .closed_reason = "lease lapsed" },
	{ .id = 3, .idem_key = "idem-3", .tagset = "x", .sandbox = "sb",
	    .state = "READY", .resource_id = 10, .created_ms = 1002 },
};

static const struct store_resource resources[] = {
	{ .id = 10, .pool = "pool1", .name = "pool1_00001", .state = "UP",
	    .ticket_id = 3, .id_in_pool = 1, .data = "\x00\x01\xff" "b",
	    .data_len = 4, .created_ms = 2000, .sandbox = "sb",
	    .sandboxed_since_ms = 2500, .released_at_ms = 2600,
	    .releases = 2, .check_failed = 1, .counters = "a=1,b=2" },
	{ .id = 11, .pool = "pool1", .name = "pool1_00002", .state = "ENDED",
	    .ticket_id = 2, .id_in_pool = 2, .data = "gone", .data_len = 4,
	    .created_ms = 2001 },
	{ .id = 12, .pool = "pool2", .name = "pool2_00001",
	    .state = "STARTING", .id_in_pool = 1, .created_ms = 2002 },
};

static const struct store_outbox outbox[] = {
	{ 1, "resbus.x", "rk.1", "resbus.v1.TicketReady", "\x08\x01\x00\x02",
	    4 },
	{ 2, "resbus.y", "rk.2", "resbus.v1.Allocate", "\x00\x00\x07", 3 },
};

/* What load returns after write_rows() alone. */
static const char rows_loaded[] =
    "meta last_id=12\n"
    "tagset a+b\n"
    "tagset x\n"
    "resource 10 pool=pool1 name=pool1_00001 state=UP ticket=3 idx=1 "
    "created=2000 sandbox=sb since=2500 released=2600 releases=2 "
    "check_failed=1 counters=a=1,b=2 data=0001ff62\n"
    "resource 12 pool=pool2 name=pool2_00001 state=STARTING ticket=0 idx=1 "
    "created=2002 sandbox=NULL since=0 released=0 releases=0 "
    "check_failed=0 counters=NULL data=NULL\n"
    "ticket 1 idem=idem-1 tagset=a+b sandbox=NULL state=OPEN resource=0 "
    "created=1000 owner=alice labels=project=p\npackage=chromium\n "
    "class=scratch lease=30 deadline=5000 reply_to=amq.gen-1\n"
    "ticket 3 idem=idem-3 tagset=x sandbox=sb state=READY resource=10 "
    "created=1002 owner=NULL labels=NULL class=NULL lease=0 deadline=0 "
    "reply_to=NULL\n"
    "outbox 1 resbus.x rk.1 resbus.v1.TicketReady body=08010002\n"
    "outbox 2 resbus.y rk.2 resbus.v1.Allocate body=000007\n";

/* Writes every row above in one transaction and checks that it commits. */
static void
write_rows(struct store *s)
{
	const struct store_backend *be = s->be;
	size_t i;

	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(be->put_meta(s, "last_id", 12), 0);
	ck_assert_int_eq(be->put_tagset(s, "x"), 0);
	ck_assert_int_eq(be->put_tagset(s, "a+b"), 0);
	for (i = 0; i < sizeof(tickets) / sizeof(tickets[0]); i++)
		ck_assert_int_eq(be->put_ticket(s, &tickets[i]), 0);
	for (i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
		ck_assert_int_eq(be->put_resource(s, &resources[i]), 0);
	for (i = 0; i < sizeof(outbox) / sizeof(outbox[0]); i++)
		ck_assert_int_eq(be->add_outbox(s, &outbox[i]), 0);
	ck_assert_msg(commit_wait(s), "%s: commit failed: %s", be->name,
	    store_error(s));
}

/* ---- the cases ------------------------------------------------------------ */

START_TEST(test_schema)
{
	static const char *const tables[] = { "meta", "tagsets", "tickets",
		"resources", "outbox" };
	struct db d;
	struct store *s;
	long long version;
	char sql[128];
	size_t i;

	db_make(&d, _i);
	s = db_open(&d);
	/* One row per step, 1 to the latest. */
	version = db_scalar(&d, "SELECT max(version) FROM schema_version");
	ck_assert_int_ge(version, 1);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM schema_version"),
	    version);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(DISTINCT version) FROM "
	    "schema_version WHERE version BETWEEN 1 AND (SELECT max(version) "
	    "FROM schema_version)"), version);
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
		    tables[i]);
		ck_assert_int_eq(db_scalar(&d, sql), 0);
	}
	write_rows(s);
	store_close(s);

	/* A second open finds the schema current and keeps the rows. */
	s = db_open(&d);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM schema_version"),
	    version);
	ck_assert_int_eq(db_scalar(&d, "SELECT max(version) FROM "
	    "schema_version"), version);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets"), 3);
	store_close(s);
}
END_TEST

START_TEST(test_commit_upsert_load)
{
	const struct store_backend *be;
	struct store_ticket t;
	struct store_resource r;
	struct store_outbox o;
	struct trace tr;
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	be = s->be;
	write_rows(s);

	/* Loading the store in use, once nothing is in flight. */
	load_trace(s, &tr);
	ck_assert_str_eq(tr.buf, rows_loaded);

	/* Upserts change what may change and keep the rest. */
	ck_assert_int_eq(store_begin(s), 0);
	t = tickets[0];
	t.state = "READY";
	t.resource_id = 12;
	t.idem_key = "ignored";
	t.reply_to = "amq.gen-2";        /* a retry's reply queue */
	ck_assert_int_eq(be->put_ticket(s, &t), 0);
	t = tickets[2];
	t.state = "CLOSED";
	ck_assert_int_eq(be->put_ticket(s, &t), 0);
	r = resources[2];
	r.state = "UP";
	r.ticket_id = 1;
	r.data = "new";
	r.data_len = 3;
	r.sandbox = "sb2";
	r.sandboxed_since_ms = 3000;
	r.released_at_ms = 3100;
	r.releases = 1;
	r.check_failed = 3;
	ck_assert_int_eq(be->put_resource(s, &r), 0);
	r = resources[0];
	r.state = "ENDED";
	ck_assert_int_eq(be->put_resource(s, &r), 0);
	ck_assert_int_eq(be->put_meta(s, "last_id", 13), 0);
	ck_assert_int_eq(be->put_tagset(s, "x"), 0);
	o = outbox[1];
	o.body = "\x01";
	o.len = 1;
	ck_assert_int_eq(be->add_outbox(s, &o), 0);
	ck_assert_msg(commit_wait(s), "%s: commit failed: %s", be->name,
	    store_error(s));
	store_close(s);

	s = db_open(&d);
	load_trace(s, &tr);
	ck_assert_str_eq(tr.buf,
	    "meta last_id=13\n"
	    "tagset a+b\n"
	    "tagset x\n"
	    "resource 12 pool=pool2 name=pool2_00001 state=UP ticket=1 idx=1 "
	    "created=2002 sandbox=sb2 since=3000 released=3100 releases=1 "
	    "check_failed=3 counters=NULL data=6e6577\n"
	    "ticket 1 idem=idem-1 tagset=a+b sandbox=NULL state=READY "
	    "resource=12 created=1000 owner=alice "
	    "labels=project=p\npackage=chromium\n class=scratch lease=30 "
	    "deadline=5000 reply_to=amq.gen-2\n"
	    "outbox 1 resbus.x rk.1 resbus.v1.TicketReady body=08010002\n"
	    "outbox 2 resbus.y rk.2 resbus.v1.Allocate body=01\n");
	store_close(s);
}
END_TEST

START_TEST(test_pipelined_commits)
{
	struct done_rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct store_ticket t = tickets[0];
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	/* Three transactions sent before any answer is read. */
	t.id = 100;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &r1), 0);
	t.id = 101;
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &r2), 0);
	ck_assert_int_eq(store_commit(s, on_done, &r3), 0);  /* nothing open */
	pump(s, &r2.called);
	pump(s, &r1.called);
	ck_assert(r1.ok && r2.ok && r3.ok);
	ck_assert_int_eq(r1.calls + r2.calls + r3.calls, 3);
	ck_assert_int_lt(r1.seq, r2.seq);
	store_close(s);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets"), 2);
}
END_TEST

START_TEST(test_get_ticket)
{
	struct store_ticket t = tickets[1];
	struct done_rec done = { 0 };
	struct ticket_rec r, in_txn = { 0 };
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	write_rows(s);

	/* Between transactions. */
	get_ticket_wait(s, 2, &r);
	ck_assert_int_eq(r.found, 1);
	ck_assert_str_eq(r.state, "CLOSED");
	ck_assert(!r.data_null);
	ck_assert_uint_eq(r.data_len, 4);
	ck_assert_mem_eq(r.data, "gone", 4);

	get_ticket_wait(s, 999, &r);
	ck_assert_int_eq(r.found, 0);

	get_ticket_wait(s, 1, &r);
	ck_assert_int_eq(r.found, 1);
	ck_assert_str_eq(r.state, "OPEN");
	ck_assert(r.data_null);

	/* Inside a transaction, which it sees. */
	ck_assert_int_eq(store_begin(s), 0);
	t.id = 4;
	t.resource_id = 10;
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(s->be->get_ticket(s, 4, on_ticket, &in_txn), 0);
	ck_assert_int_eq(store_commit(s, on_done, &done), 0);
	pump(s, &done.called);
	pump(s, &in_txn.called);
	ck_assert(done.ok);
	ck_assert_int_eq(in_txn.calls, 1);
	ck_assert_int_eq(in_txn.found, 1);
	ck_assert_str_eq(in_txn.state, "CLOSED");
	ck_assert_uint_eq(in_txn.data_len, 4);
	ck_assert_mem_eq(in_txn.data, "\x00\x01\xff" "b", 4);
	store_close(s);
}
END_TEST

START_TEST(test_del_outbox)
{
	struct trace tr;
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	write_rows(s);
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_int_eq(s->be->del_outbox(s, 1), 0);
	ck_assert_int_eq(s->be->del_outbox(s, 77), 0);  /* no such row */
	ck_assert(commit_wait(s));
	store_close(s);

	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM outbox"), 1);
	s = db_open(&d);
	load_trace(s, &tr);
	ck_assert_ptr_null(strstr(tr.buf, "outbox 1 "));
	ck_assert_ptr_nonnull(strstr(tr.buf,
	    "outbox 2 resbus.y rk.2 resbus.v1.Allocate body=000007\n"));
	store_close(s);
}
END_TEST

START_TEST(test_uncommitted_lost)
{
	struct store_ticket t = tickets[0];
	struct store_outbox o = outbox[0];
	struct trace tr;
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	write_rows(s);
	ck_assert_int_eq(store_begin(s), 0);
	t.id = 50;
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	o.id = 50;
	ck_assert_int_eq(s->be->add_outbox(s, &o), 0);
	ck_assert_int_eq(s->be->put_meta(s, "last_id", 50), 0);
	ck_assert_int_eq(s->be->del_outbox(s, 2), 0);
	store_close(s);              /* without commit */

	s = db_open(&d);
	load_trace(s, &tr);
	ck_assert_str_eq(tr.buf, rows_loaded);
	store_close(s);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 50"), 0);
}
END_TEST

/* The shutdown path: a commit and at once a close; the commit lands. */
START_TEST(test_commit_then_close)
{
	struct store_ticket t = tickets[0];
	struct done_rec done = { 0 };
	struct db d;
	struct store *s;

	db_make(&d, _i);
	s = db_open(&d);
	ck_assert_int_eq(store_begin(s), 0);
	t.id = 80;
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &done), 0);
	store_close(s);
	ck_assert_int_eq(done.calls, 1);
	ck_assert(done.ok);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 80"), 1);
}
END_TEST

/*
 * A write the database refuses: SQLite says so at once, PostgreSQL at
 * commit, whose callback then reports failure and whose other writes are
 * lost.  A transaction sent before the failure was read is answered once
 * (PostgreSQL fails it too); the first one after commits.
 */
START_TEST(test_failed_write)
{
	struct done_rec bad = { 0 }, queued = { 0 }, good = { 0 };
	struct store_ticket t = tickets[0];
	struct ticket_rec r;
	struct db d;
	struct store *s;
	int rc;

	db_make(&d, _i);
	s = db_open(&d);
	ck_assert_int_eq(store_begin(s), 0);
	t.id = 60;
	t.tagset = NULL;             /* NOT NULL */
	rc = s->be->put_ticket(s, &t);
	t.id = 61;
	t.tagset = "a+b";
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &bad), 0);
	if (d.be == BE_PG)
		ck_assert_int_eq(rc, 0);     /* nothing waits for the server */

	ck_assert_int_eq(store_begin(s), 0);
	t.id = 62;
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &queued), 0);
	pump(s, &queued.called);
	ck_assert_int_eq(bad.calls, 1);
	ck_assert_int_eq(queued.calls, 1);
	ck_assert_int_lt(bad.seq, queued.seq);
	ck_assert_msg(rc == -1 || !bad.ok, "%s: a refused write was "
	    "reported neither by put_ticket nor by commit", d.name);

	ck_assert_int_eq(store_begin(s), 0);
	t.id = 63;
	ck_assert_int_eq(s->be->put_ticket(s, &t), 0);
	ck_assert_int_eq(store_commit(s, on_done, &good), 0);
	pump(s, &good.called);
	ck_assert_msg(good.ok, "%s: the commit after a failed one failed: %s",
	    d.name, store_error(s));

	/* And the store stays usable between transactions. */
	get_ticket_wait(s, 63, &r);
	ck_assert_int_eq(r.found, 1);
	store_close(s);

	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 60"), 0);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 62"), queued.ok ? 1 : 0);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 63"), 1);
	if (rc == 0)
		ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
		    "WHERE id = 61"), 0);
}
END_TEST

START_TEST(test_open_unreachable)
{
	char err[1024] = "", *url;
	struct db d;
	struct store *s;

	db_make(&d, _i);
	if (d.be == BE_SQLITE)
		url = xasprintf("sqlite:///%s/no/such/dir/x.db", tmpdir);
	else
		url = xasprintf("postgresql://%s@/no_such_db_%s?host=%s&port=%s",
		    getenv("RESBUS_TEST_PG_USER") != NULL ?
		    getenv("RESBUS_TEST_PG_USER") : "resbus", pg_prefix,
		    getenv("RESBUS_TEST_PG_HOST"), getenv("RESBUS_TEST_PG_PORT"));
	s = store_open(url, err, sizeof(err));
	ck_assert_msg(s == NULL, "%s: opened %s", d.name, url);
	ck_assert_msg(err[0] != '\0', "%s: no error message", d.name);
	free(url);
}
END_TEST

/*
 * PostgreSQL only: the server ends the connection while a commit is in
 * flight; the commit's callback still runs, once, with failure, and io()
 * says the store is broken.
 */
START_TEST(test_pg_connection_lost)
{
	struct store_ticket t = tickets[0];
	struct done_rec done = { 0 };
	int64_t deadline;
	struct pollfd pfd;
	bool io_failed = false;
	PGconn *conn;
	int rc;
	PGresult *res;
	const char *dbname;
	struct db d;
	struct store *s;

	db_make(&d, BE_PG);
	s = db_open(&d);
	write_rows(s);

	dbname = strstr(d.url, "@/") + 2;
	conn = pg_admin("postgres");
	ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
	res = PQexecParams(conn, "SELECT count(pg_terminate_backend(pid)) "
	    "FROM pg_stat_activity WHERE datname = split_part($1, '?', 1) "
	    "AND pid <> pg_backend_pid()", 1, NULL, &dbname, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	PQfinish(conn);

	t.id = 70;
	/* Sending may fail at once or only when the answer is read. */
	if (store_begin(s) == 0)
		(void)s->be->put_ticket(s, &t);
	rc = store_commit(s, on_done, &done);
	ck_assert(rc == 0 || done.called);
	deadline = now_mono_ms() + WAIT_MS;
	while (!done.called && now_mono_ms() < deadline) {
		pfd.fd = s->be->fd(s);
		if (pfd.fd < 0)
			break;
		pfd.events = POLLIN | (s->be->want_write(s) ? POLLOUT : 0);
		(void)poll(&pfd, 1, 100);
		if (s->be->io(s) == -1)
			io_failed = true;
	}
	ck_assert_msg(done.called, "no commit callback after the connection "
	    "was lost");
	ck_assert_int_eq(done.calls, 1);
	ck_assert(!done.ok);
	/* The end of the connection itself shows up soon after. */
	while (!io_failed && now_mono_ms() < deadline) {
		pfd.fd = s->be->fd(s);
		if (pfd.fd < 0)
			break;
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, 100);
		if (s->be->io(s) == -1)
			io_failed = true;
	}
	ck_assert_msg(io_failed, "io() did not report the lost connection");
	ck_assert_str_ne(store_error(s), "");
	store_close(s);
	ck_assert_int_eq(done.calls, 1);
	ck_assert_int_eq(db_scalar(&d, "SELECT count(*) FROM tickets "
	    "WHERE id = 70"), 0);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_schema, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_commit_upsert_load, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_pipelined_commits, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_get_ticket, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_del_outbox, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_uncommitted_lost, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_commit_then_close, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_failed_write, 0, BE_COUNT);
	tcase_add_loop_test(tc, test_open_unreachable, 0, BE_COUNT);
	tcase_add_test(tc, test_pg_connection_lost);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
