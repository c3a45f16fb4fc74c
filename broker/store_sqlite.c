/*
 * store_sqlite -- the embedded store: one SQLite file, WAL, full sync.
 *
 * It is the default for one host and for the quick start.  The schema is
 * created and migrated by a list of numbered steps, at open or, in a
 * standby, once it holds the lock; the version applied last is kept in
 * the schema_version table.  Statements are
 * prepared once and reused: a loop iteration that records a ticket writes
 * a handful of rows inside one transaction, and a commit is one fsync of
 * the WAL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "util.h"

static const char *const sqlite_migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE tagsets (key TEXT PRIMARY KEY);"
    "CREATE TABLE tickets ("
    " id INTEGER PRIMARY KEY,"
    " idem_key TEXT,"
    " tagset TEXT NOT NULL,"
    " sandbox TEXT,"
    " state TEXT NOT NULL,"
    " resource_id INTEGER,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX tickets_not_closed ON tickets (state) WHERE state <> 'CLOSED';"
    "CREATE TABLE resources ("
    " id INTEGER PRIMARY KEY,"
    " pool TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " ticket_id INTEGER,"
    " id_in_pool INTEGER NOT NULL,"
    " data BLOB,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX resources_not_ended ON resources (state) WHERE state <> 'ENDED';"
    "CREATE TABLE outbox ("
    " id INTEGER PRIMARY KEY,"
    " exchange TEXT NOT NULL,"
    " routing_key TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " body BLOB NOT NULL);",
    /* 2: reuse, livecheck failures and named counters of resources */
    "ALTER TABLE resources ADD COLUMN sandbox TEXT;"
    "ALTER TABLE resources ADD COLUMN sandboxed_since_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN released_at_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN releases INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN check_failed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN counters TEXT;",
    /* 3: owners, labels, classes, leases and deadlines of tickets */
    "ALTER TABLE tickets ADD COLUMN owner TEXT;"
    "ALTER TABLE tickets ADD COLUMN labels TEXT;"
    "ALTER TABLE tickets ADD COLUMN class TEXT;"
    "ALTER TABLE tickets ADD COLUMN lease_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tickets ADD COLUMN deadline_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tickets ADD COLUMN closed_reason TEXT;",
    /* 4: the reply queue that hears when a ticket is ready or failed */
    "ALTER TABLE tickets ADD COLUMN reply_to TEXT;",
    /* 5: the delegate that took a ticket for its owner */
    "ALTER TABLE tickets ADD COLUMN delegate TEXT;",
};

enum {
	ST_PUT_META,
	ST_PUT_TAGSET,
	ST_PUT_TICKET,
	ST_PUT_RESOURCE,
	ST_ADD_OUTBOX,
	ST_DEL_OUTBOX,
	ST_GET_TICKET,
	ST_DEL_META,
	ST_DEL_TAGSET,
	ST_COUNT,
};

static const char *const sqlite_statements[ST_COUNT] = {
    [ST_PUT_META] = "INSERT INTO meta (key, value) VALUES (?1, ?2) "
		    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_PUT_TAGSET] = "INSERT OR IGNORE INTO tagsets (key) VALUES (?1)",
    [ST_PUT_TICKET] =
	"INSERT INTO tickets (id, idem_key, tagset, sandbox, "
	"state, resource_id, created_ms, owner, labels, class, lease_s, "
	"deadline_ms, closed_reason, reply_to, delegate) VALUES (?1, ?2, "
	"?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
	"ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
	"resource_id = excluded.resource_id, "
	"closed_reason = excluded.closed_reason, "
	"reply_to = excluded.reply_to",
    [ST_PUT_RESOURCE] =
	"INSERT INTO resources (id, pool, name, state, "
	"ticket_id, id_in_pool, data, created_ms, sandbox, "
	"sandboxed_since_ms, released_at_ms, releases, check_failed, "
	"counters) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
	"ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
	"ticket_id = excluded.ticket_id, data = excluded.data, "
	"sandbox = excluded.sandbox, "
	"sandboxed_since_ms = excluded.sandboxed_since_ms, "
	"released_at_ms = excluded.released_at_ms, "
	"releases = excluded.releases, "
	"check_failed = excluded.check_failed",
    [ST_ADD_OUTBOX] = "INSERT OR REPLACE INTO outbox (id, exchange, "
		      "routing_key, type, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_DEL_OUTBOX] = "DELETE FROM outbox WHERE id = ?1",
    [ST_DEL_META] = "DELETE FROM meta WHERE key = ?1",
    [ST_DEL_TAGSET] = "DELETE FROM tagsets WHERE key = ?1",
    [ST_GET_TICKET] =
	"SELECT t.state, r.data, t.owner, t.delegate "
	"FROM tickets t "
	"LEFT JOIN resources r ON r.id = t.resource_id WHERE t.id = ?1",
};

struct store_sqlite {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char *lock_path; /* <db file>.lock */
	int lock_fd;	 /* held while this process leads */
	bool ready;	 /* migrated, statements prepared */
	char error[512];
};

static struct store_sqlite *
to_sqlite(struct store *s)
{
	return container_of(s, struct store_sqlite, base);
}

static int
sq_fail(struct store_sqlite *q, const char *what)
{
	snprintf(q->error, sizeof(q->error), "sqlite: %s: %s", what,
	    sqlite3_errmsg(q->db));
	return -1;
}

static int
sq_exec(struct store_sqlite *q, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(q->error, sizeof(q->error), "sqlite: %s",
		    msg ? msg : sqlite3_errmsg(q->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
sq_version(struct store_sqlite *q, int *version)
{
	sqlite3_stmt *st;
	int rc;

	if (sq_exec(q, "CREATE TABLE IF NOT EXISTS schema_version "
		       "(version INTEGER NOT NULL)") == -1)
		return -1;
	if (sqlite3_prepare_v2(q->db, "SELECT max(version) FROM schema_version",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(q, "schema_version");
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sq_fail(q, "schema_version");
}

static int
sq_migrate(struct store_sqlite *q)
{
	size_t n = sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0]);
	int version;
	char *sql;
	size_t i;

	if (sq_version(q, &version) == -1)
		return -1;
	if ((size_t)version > n) {
		snprintf(q->error, sizeof(q->error),
		    "sqlite: schema version "
		    "%d is newer than this resbusd knows (%zu)",
		    version, n);
		return -1;
	}
	for (i = (size_t)version; i < n; i++) {
		sql = xasprintf("BEGIN; %s INSERT INTO schema_version VALUES "
				"(%zu); COMMIT;",
		    sqlite_migrations[i], i + 1);
		if (sq_exec(q, sql) == -1) {
			free(sql);
			(void)sq_exec(q, "ROLLBACK");
			return -1;
		}
		free(sql);
	}
	return 0;
}

static void sq_close(struct store *s);

/*
 * Takes the lock on "<file>.lock" if nobody holds it: 1 when this process
 * holds it, 0 when another does, -1 on failure.
 */
static int
sq_lock(struct store_sqlite *q)
{
	if (q->lock_fd == -1) {
		q->lock_fd =
		    open(q->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (q->lock_fd == -1) {
			snprintf(q->error, sizeof(q->error), "sqlite: %s: %s",
			    q->lock_path, strerror(errno));
			return -1;
		}
	}
	if (flock(q->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 1;
	if (errno == EWOULDBLOCK)
		return 0;
	snprintf(q->error, sizeof(q->error), "sqlite: flock %s: %s",
	    q->lock_path, strerror(errno));
	return -1;
}

/* Migrates the schema and prepares the statements: only under the lock,
 * so that a standby changes nothing in the file of the broker that
 * leads. */
static int
sq_ready(struct store_sqlite *q)
{
	size_t i;

	if (q->ready)
		return 0;
	if (sq_migrate(q) == -1)
		return -1;
	for (i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(q->db, sqlite_statements[i], -1,
			SQLITE_PREPARE_PERSISTENT, &q->st[i],
			NULL) != SQLITE_OK)
			return sq_fail(q, "prepare");
	q->ready = true;
	return 0;
}

static struct store *
sq_open(const char *url, char *err, size_t errlen)
{
	struct store_sqlite *q;
	const char *path;
	int held;

	if (strncmp(url, "sqlite:///", 10) != 0) {
		snprintf(err, errlen,
		    "db_url \"%s\": expected "
		    "sqlite:////absolute/path or sqlite:///relative/path",
		    url);
		return NULL;
	}
	path = url + 10;
	q = xcalloc(1, sizeof(*q));
	q->base.be = &store_sqlite_backend;
	q->lock_fd = -1;
	q->lock_path = xasprintf("%s.lock", path);
	/*
	 * One thread (the broker's loop) uses the connection: no mutex.  The
	 * page cache may grow to 64 MiB, so that a step's row updates with
	 * 100,000 open tickets (a database of about 6 MB) find their pages
	 * in memory instead of reading them back from the file.
	 */
	if (sqlite3_open_v2(path, &q->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    q->db ? sqlite3_errmsg(q->db) : "out of memory");
		sq_close(&q->base);
		return NULL;
	}
	sqlite3_busy_timeout(q->db, 5000);
	if (sq_exec(q,
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		"PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;") ==
		-1 ||
	    (held = sq_lock(q)) == -1 || (held == 1 && sq_ready(q) == -1))
		goto fail;
	return &q->base;
fail:
	snprintf(err, errlen, "%s: %s", path, q->error);
	sq_close(&q->base);
	return NULL;
}

static void
sq_close(struct store *s)
{
	struct store_sqlite *q = to_sqlite(s);
	size_t i;

	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	/* The lock goes with the descriptor; the file stays for the next. */
	if (q->lock_fd != -1)
		close(q->lock_fd);
	free(q->lock_path);
	free(q);
}

/*
 * One writer per file: an exclusive flock(2) on "<file>.lock", which the
 * kernel drops when this process ends however it ends.  The holder
 * writes who it is into the file, for the standby's log.  A paused
 * holder keeps the lock: on one host, two brokers never run side by side.
 */
static int
sq_lead_try(struct store *s, const char *who, int lease_s, int64_t *epoch,
    char *holder, size_t holderlen)
{
	struct store_sqlite *q = to_sqlite(s);
	char buf[256], *text;
	ssize_t n;
	int rc;

	if ((rc = sq_lock(q)) == -1)
		return -1;
	if (rc == 0) {
		n = pread(q->lock_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(holder, holderlen, "%s is held by %s", q->lock_path,
		    buf[0] != '\0' ? buf : "another resbusd");
		return 0;
	}
	if (sq_ready(q) == -1)
		return -1;
	{
		time_t now = time(NULL);
		struct tm tm;
		char when[40];

		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		text = xasprintf("resbusd %s since %s\n", who, when);
	}
	if (ftruncate(q->lock_fd, 0) == -1 ||
	    pwrite(q->lock_fd, text, strlen(text), 0) == -1)
		log_warn("%s", q->lock_path);
	free(text);
	*epoch = 0;
	return 1;
}

static int
sq_begin(struct store *s)
{
	return sq_exec(to_sqlite(s), "BEGIN IMMEDIATE");
}

static int
sq_commit(struct store *s, store_done_fn *done, void *arg)
{
	int rc = sq_exec(to_sqlite(s), "COMMIT");

	done(arg, rc == 0);
	return rc;
}

/* Runs statement I (already bound) to completion and resets it. */
static int
sq_run(struct store_sqlite *q, int i, const char *what)
{
	int rc = sqlite3_step(q->st[i]);

	sqlite3_reset(q->st[i]);
	sqlite3_clear_bindings(q->st[i]);
	return rc == SQLITE_DONE ? 0 : sq_fail(q, what);
}

static void
sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void
sq_bind_id(sqlite3_stmt *st, int i, uint64_t id)
{
	if (id == 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, (sqlite3_int64)id);
}

static int
sq_put_meta(struct store *s, const char *key, int64_t value)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st = q->st[ST_PUT_META];

	sq_bind_text(st, 1, key);
	sqlite3_bind_int64(st, 2, value);
	return sq_run(q, ST_PUT_META, "put meta");
}

static int
sq_put_tagset(struct store *s, const char *key)
{
	struct store_sqlite *q = to_sqlite(s);

	sq_bind_text(q->st[ST_PUT_TAGSET], 1, key);
	return sq_run(q, ST_PUT_TAGSET, "put tagset");
}

static int
sq_put_ticket(struct store *s, const struct store_ticket *t)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st = q->st[ST_PUT_TICKET];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)t->id);
	sq_bind_text(st, 2, t->idem_key);
	sq_bind_text(st, 3, t->tagset);
	sq_bind_text(st, 4, t->sandbox);
	sq_bind_text(st, 5, t->state);
	sq_bind_id(st, 6, t->resource_id);
	sqlite3_bind_int64(st, 7, t->created_ms);
	sq_bind_text(st, 8, t->owner);
	sq_bind_text(st, 9, t->labels);
	sq_bind_text(st, 10, t->class_);
	sqlite3_bind_int(st, 11, t->lease_s);
	sqlite3_bind_int64(st, 12, t->deadline_ms);
	sq_bind_text(st, 13, t->closed_reason);
	sq_bind_text(st, 14, t->reply_to);
	sq_bind_text(st, 15, t->delegate);
	return sq_run(q, ST_PUT_TICKET, "put ticket");
}

static int
sq_put_resource(struct store *s, const struct store_resource *r)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st = q->st[ST_PUT_RESOURCE];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->id);
	sq_bind_text(st, 2, r->pool);
	sq_bind_text(st, 3, r->name);
	sq_bind_text(st, 4, r->state);
	sq_bind_id(st, 5, r->ticket_id);
	sqlite3_bind_int(st, 6, r->id_in_pool);
	if (r->data != NULL)
		sqlite3_bind_blob(
		    st, 7, r->data, (int)r->data_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, r->created_ms);
	sq_bind_text(st, 9, r->sandbox);
	sqlite3_bind_int64(st, 10, r->sandboxed_since_ms);
	sqlite3_bind_int64(st, 11, r->released_at_ms);
	sqlite3_bind_int(st, 12, r->releases);
	sqlite3_bind_int(st, 13, r->check_failed);
	sq_bind_text(st, 14, r->counters);
	return sq_run(q, ST_PUT_RESOURCE, "put resource");
}

static int
sq_add_outbox(struct store *s, const struct store_outbox *o)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st = q->st[ST_ADD_OUTBOX];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)o->id);
	sq_bind_text(st, 2, o->exchange);
	sq_bind_text(st, 3, o->routing_key);
	sq_bind_text(st, 4, o->type);
	sqlite3_bind_blob(st, 5, o->body, (int)o->len, SQLITE_STATIC);
	return sq_run(q, ST_ADD_OUTBOX, "add outbox");
}

static int
sq_del_meta(struct store *s, const char *key)
{
	struct store_sqlite *q = to_sqlite(s);

	sq_bind_text(q->st[ST_DEL_META], 1, key);
	return sq_run(q, ST_DEL_META, "delete meta");
}

static int
sq_del_tagset(struct store *s, const char *key)
{
	struct store_sqlite *q = to_sqlite(s);

	sq_bind_text(q->st[ST_DEL_TAGSET], 1, key);
	return sq_run(q, ST_DEL_TAGSET, "delete tagset");
}

static int
sq_del_outbox(struct store *s, uint64_t id)
{
	struct store_sqlite *q = to_sqlite(s);

	sqlite3_bind_int64(q->st[ST_DEL_OUTBOX], 1, (sqlite3_int64)id);
	return sq_run(q, ST_DEL_OUTBOX, "delete outbox");
}

static int
sq_get_ticket(struct store *s, uint64_t id, store_ticket_fn *fn, void *arg)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st = q->st[ST_GET_TICKET];
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		fn(arg, 1, (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 2),
		    (const char *)sqlite3_column_text(st, 3),
		    sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL
		    : sqlite3_column_blob(st, 1) ? sqlite3_column_blob(st, 1)
						 : "",
		    (size_t)sqlite3_column_bytes(st, 1));
	else if (rc == SQLITE_DONE)
		fn(arg, 0, NULL, NULL, NULL, NULL, 0);
	else
		fn(arg, -1, NULL, NULL, NULL, NULL, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
						     : sq_fail(q, "get ticket");
}

static int
sq_fd(const struct store *s)
{
	return -1;
}

static int
sq_io(struct store *s)
{
	return 0;
}

static bool
sq_want_write(const struct store *s)
{
	return false;
}

#define COL_TEXT(st, n) ((const char *)sqlite3_column_text((st), (n)))

static void
load_meta(struct store *s, const struct store_loader *l, sqlite3_stmt *st)
{
	l->meta(l->arg, COL_TEXT(st, 0), sqlite3_column_int64(st, 1));
	if (s->meta_tap != NULL)
		s->meta_tap(s->meta_tap_arg, COL_TEXT(st, 0),
		    sqlite3_column_int64(st, 1));
}

static void
load_tagset(struct store *s, const struct store_loader *l, sqlite3_stmt *st)
{
	(void)s;
	l->tagset(l->arg, COL_TEXT(st, 0));
}

static void
load_resource(struct store *s, const struct store_loader *l, sqlite3_stmt *st)
{
	struct store_resource r = {
	    .id = (uint64_t)sqlite3_column_int64(st, 0),
	    .pool = COL_TEXT(st, 1),
	    .name = COL_TEXT(st, 2),
	    .state = COL_TEXT(st, 3),
	    .ticket_id = (uint64_t)sqlite3_column_int64(st, 4),
	    .id_in_pool = sqlite3_column_int(st, 5),
	    .data = sqlite3_column_blob(st, 6),
	    .data_len = (size_t)sqlite3_column_bytes(st, 6),
	    .created_ms = sqlite3_column_int64(st, 7),
	    .sandbox = COL_TEXT(st, 8),
	    .sandboxed_since_ms = sqlite3_column_int64(st, 9),
	    .released_at_ms = sqlite3_column_int64(st, 10),
	    .releases = sqlite3_column_int(st, 11),
	    .check_failed = sqlite3_column_int(st, 12),
	    .counters = COL_TEXT(st, 13),
	};

	(void)s;
	l->resource(l->arg, &r);
}

static void
load_ticket(struct store *s, const struct store_loader *l, sqlite3_stmt *st)
{
	struct store_ticket t = {
	    .id = (uint64_t)sqlite3_column_int64(st, 0),
	    .idem_key = COL_TEXT(st, 1),
	    .tagset = COL_TEXT(st, 2),
	    .sandbox = COL_TEXT(st, 3),
	    .state = COL_TEXT(st, 4),
	    .resource_id = (uint64_t)sqlite3_column_int64(st, 5),
	    .created_ms = sqlite3_column_int64(st, 6),
	    .owner = COL_TEXT(st, 7),
	    .labels = COL_TEXT(st, 8),
	    .class_ = COL_TEXT(st, 9),
	    .lease_s = sqlite3_column_int(st, 10),
	    .deadline_ms = sqlite3_column_int64(st, 11),
	    .reply_to = COL_TEXT(st, 12),
	    .delegate = COL_TEXT(st, 13),
	};

	(void)s;
	l->ticket(l->arg, &t);
}

static void
load_outbox(struct store *s, const struct store_loader *l, sqlite3_stmt *st)
{
	struct store_outbox o = {
	    .id = (uint64_t)sqlite3_column_int64(st, 0),
	    .exchange = COL_TEXT(st, 1),
	    .routing_key = COL_TEXT(st, 2),
	    .type = COL_TEXT(st, 3),
	    .body = sqlite3_column_blob(st, 4),
	    .len = (size_t)sqlite3_column_bytes(st, 4),
	};

	(void)s;
	l->outbox(l->arg, &o);
}

#undef COL_TEXT

/* What loading reads, in this order, and what takes each row. */
static const struct {
	const char *query;
	void (*row)(
	    struct store *, const struct store_loader *, sqlite3_stmt *);
} loads[] = {
    {"SELECT key, value FROM meta", load_meta},
    {"SELECT key FROM tagsets ORDER BY key", load_tagset},
    {"SELECT id, pool, name, state, ticket_id, id_in_pool, data, "
     "created_ms, sandbox, sandboxed_since_ms, released_at_ms, "
     "releases, check_failed, counters "
     "FROM resources WHERE state <> 'ENDED' ORDER BY id",
	load_resource},
    {"SELECT id, idem_key, tagset, sandbox, state, resource_id, "
     "created_ms, owner, labels, class, lease_s, deadline_ms, "
     "reply_to, delegate "
     "FROM tickets WHERE state <> 'CLOSED' ORDER BY id",
	load_ticket},
    {"SELECT id, exchange, routing_key, type, body FROM outbox "
     "ORDER BY id",
	load_outbox},
};

static int
sq_load(struct store *s, const struct store_loader *l)
{
	struct store_sqlite *q = to_sqlite(s);
	sqlite3_stmt *st;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		if (sqlite3_prepare_v2(q->db, loads[i].query, -1, &st, NULL) !=
		    SQLITE_OK)
			return sq_fail(q, "load");
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			loads[i].row(s, l, st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return sq_fail(q, "load");
	}
	return 0;
}

static const char *
sq_error(const struct store *s)
{
	return container_of(s, struct store_sqlite, base)->error;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .load = sq_load,
    .put_meta = sq_put_meta,
    .put_tagset = sq_put_tagset,
    .put_ticket = sq_put_ticket,
    .put_resource = sq_put_resource,
    .add_outbox = sq_add_outbox,
    .del_outbox = sq_del_outbox,
    .del_meta = sq_del_meta,
    .del_tagset = sq_del_tagset,
    .lead_try = sq_lead_try,
    .get_ticket = sq_get_ticket,
    .fd = sq_fd,
    .io = sq_io,
    .want_write = sq_want_write,
    .error = sq_error,
};
