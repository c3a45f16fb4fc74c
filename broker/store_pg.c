/*
 * store_pg -- the networked store: PostgreSQL through libpq; the session.
 *
 * Several brokers' worth of state may live on one server, and the broker
 * must never stall its loop on it, so this backend has two phases.  At
 * start it is a plain blocking client: it connects, creates or migrates
 * the schema (numbered steps, the version applied last kept in the
 * schema_version table, exactly as the SQLite backend does), prepares every
 * statement once, and load() reads the state back.  On the first write or
 * lookup it switches the connection to non-blocking pipeline mode, and
 * from then on nothing waits for the server: store_pg_pipe.c holds the
 * statements and that running phase.
 *
 * This file holds the session: connecting, the schema's migrations,
 * loading, leadership (a session advisory lock and a fencing epoch, see
 * pg_lead_try), closing, and the backend's table.  A blocking call made
 * while the broker runs (load, lead_try) leaves pipeline mode first
 * (store_pg_blocking), after the answers to what was committed.  Server
 * notices go to the debug log.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "store.h"
#include "store_pg_priv.h"
#include "util.h"

/* Serialises concurrent migrations of one database. */
#define PG_MIGRATE_LOCK "7304512967730409473"
/* The leader's session lock: ('resb', 1), seen in pg_locks as classid,
 * objid, objsubid 2 (the two-key form). */
#define PG_LEAD_KEY1 1919251298
#define PG_LEAD_KEY2 1
#define PG_STR2(x) #x
#define PG_STR(x) PG_STR2(x)

static const char *const pg_migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);"
    "CREATE TABLE tagsets (key TEXT PRIMARY KEY);"
    "CREATE TABLE tickets ("
    " id BIGINT PRIMARY KEY,"
    " idem_key TEXT,"
    " tagset TEXT NOT NULL,"
    " sandbox TEXT,"
    " state TEXT NOT NULL,"
    " resource_id BIGINT,"
    " created_ms BIGINT NOT NULL);"
    "CREATE INDEX tickets_not_closed ON tickets (state) WHERE state <> 'CLOSED';"
    "CREATE TABLE resources ("
    " id BIGINT PRIMARY KEY,"
    " pool TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " ticket_id BIGINT,"
    " id_in_pool INTEGER NOT NULL,"
    " data BYTEA,"
    " created_ms BIGINT NOT NULL);"
    "CREATE INDEX resources_not_ended ON resources (state) WHERE state <> 'ENDED';"
    "CREATE TABLE outbox ("
    " id BIGINT PRIMARY KEY,"
    " exchange TEXT NOT NULL,"
    " routing_key TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " body BYTEA NOT NULL);",
    /* 2: reuse, livecheck failures and named counters of resources */
    "ALTER TABLE resources ADD COLUMN sandbox TEXT;"
    "ALTER TABLE resources ADD COLUMN sandboxed_since_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN released_at_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN releases INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN check_failed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN counters TEXT;",
    /* 3: owners, labels, classes, leases and deadlines of tickets */
    "ALTER TABLE tickets ADD COLUMN owner TEXT;"
    "ALTER TABLE tickets ADD COLUMN labels TEXT;"
    "ALTER TABLE tickets ADD COLUMN class TEXT;"
    "ALTER TABLE tickets ADD COLUMN lease_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tickets ADD COLUMN deadline_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tickets ADD COLUMN closed_reason TEXT;",
    /* 4: the fencing check of every commit (see pg_lead_try) */
    "CREATE FUNCTION resbus_fence(mine BIGINT) RETURNS VOID AS $$ "
    "DECLARE cur BIGINT; "
    "BEGIN "
    " SELECT value INTO cur FROM meta WHERE key = 'leader_epoch'; "
    " IF cur IS DISTINCT FROM mine THEN "
    "  RAISE EXCEPTION 'resbus: another resbusd leads this store now "
    "(epoch %, this one has %)', cur, mine; "
    " END IF; "
    "END $$ LANGUAGE plpgsql;",
    /* 5: the reply queue that hears when a ticket is ready or failed */
    "ALTER TABLE tickets ADD COLUMN reply_to TEXT;",
    /* 6: the delegate that took a ticket for its owner */
    "ALTER TABLE tickets ADD COLUMN delegate TEXT;",
};

/* Makes MSG the error text, on one line for the log. */
int
store_pg_fail(struct store_pg *p, const char *what, const char *msg)
{
	char *c, *o;

	snprintf(p->error, sizeof(p->error), "postgresql: %s: %s", what,
	    msg != NULL && *msg != '\0' ? msg : "unknown error");
	for (c = o = p->error; *c != '\0'; c++) {
		if (*c == '\n' || *c == '\t') {
			if (o > p->error && o[-1] != ' ')
				*o++ = ' ';
		} else if (*c != ' ' || o == p->error || o[-1] != ' ') {
			*o++ = *c;
		}
	}
	while (o > p->error && o[-1] == ' ')
		o--;
	*o = '\0';
	return -1;
}

int
store_pg_fail_conn(struct store_pg *p, const char *what)
{
	return store_pg_fail(p, what, PQerrorMessage(p->conn));
}

static void
pg_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("postgresql: %.*s", (int)n, message);
}

/* ---- blocking start-up phase --------------------------------------------- */

/* Runs SQL (one or more statements) and expects STATUS; clears the result. */
static int
pg_exec(struct store_pg *p, const char *sql, ExecStatusType status,
    const char *what)
{
	PGresult *res = PQexec(p->conn, sql);
	int rc = 0;

	if (PQresultStatus(res) != status)
		rc = store_pg_fail(p, what,
		    res != NULL ? PQresultErrorMessage(res)
				: PQerrorMessage(p->conn));
	PQclear(res);
	return rc;
}

static int
pg_migrate(struct store_pg *p)
{
	size_t n = sizeof(pg_migrations) / sizeof(pg_migrations[0]);
	PGresult *res;
	char *sql;
	int version;
	size_t i;

	if (pg_exec(p, "BEGIN", PGRES_COMMAND_OK, "migrate") == -1)
		return -1;
	if (pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")",
		PGRES_TUPLES_OK, "migrate lock") == -1 ||
	    pg_exec(p,
		"CREATE TABLE IF NOT EXISTS schema_version "
		"(version INTEGER NOT NULL)",
		PGRES_COMMAND_OK, "schema_version") == -1)
		goto fail;
	res = PQexec(p->conn, "SELECT coalesce(max(version), 0) "
			      "FROM schema_version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		(void)store_pg_fail(
		    p, "schema_version", PQresultErrorMessage(res));
		PQclear(res);
		goto fail;
	}
	version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version < 0 || (size_t)version > n) {
		snprintf(p->error, sizeof(p->error),
		    "postgresql: schema "
		    "version %d is newer than this resbusd knows (%zu)",
		    version, n);
		goto fail;
	}
	for (i = (size_t)version; i < n; i++) {
		sql = xasprintf("%s INSERT INTO schema_version VALUES (%zu);",
		    pg_migrations[i], i + 1);
		if (pg_exec(p, sql, PGRES_COMMAND_OK, "migrate") == -1) {
			free(sql);
			goto fail;
		}
		free(sql);
		log_info("store: schema migrated to version %zu", i + 1);
	}
	return pg_exec(p, "COMMIT", PGRES_COMMAND_OK, "migrate commit");
fail:
	(void)pg_exec(p, "ROLLBACK", PGRES_COMMAND_OK, "rollback");
	return -1;
}

static void pg_close(struct store *s);

/*
 * Connects (blocking) to URL, which libpq parses whole: postgresql:// and
 * postgres:// URIs with user, password, host, port, database and query
 * parameters such as ?host=/socket/dir&port=N.  Returns a store the
 * caller closes with close(), or NULL with a message in ERR.
 */
static struct store *
pg_open(const char *url, char *err, size_t errlen)
{
	struct store_pg *p;

	p = xcalloc(1, sizeof(*p));
	p->base.be = &store_pg_backend;
	p->conn = PQconnectdb(url);
	if (p->conn == NULL) {
		snprintf(err, errlen, "postgresql: out of memory");
		free(p);
		return NULL;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		(void)store_pg_fail_conn(p, "connect");
		goto fail;
	}
	PQsetNoticeProcessor(p->conn, pg_notice, NULL);
	if (pg_migrate(p) == -1 || store_pg_prepare(p) == -1)
		goto fail;
	return &p->base;
fail:
	snprintf(err, errlen, "%s", p->error);
	pg_close(&p->base);
	return NULL;
}

/* Reads an 8- or 4-byte big-endian integer column of a binary result. */
static int64_t
pg_int(const PGresult *res, int row, int col)
{
	const unsigned char *v;
	uint64_t u = 0;
	int i, len;

	if (PQgetisnull(res, row, col))
		return 0;
	v = (const unsigned char *)PQgetvalue(res, row, col);
	len = PQgetlength(res, row, col);
	for (i = 0; i < len && i < 8; i++)
		u = u << 8 | v[i];
	if (len == 4)
		return (int32_t)(uint32_t)u;
	return (int64_t)u;
}

static const char *
pg_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Checks that RES has NCOLS columns of the integer sizes SIZES (0: any). */
static int
pg_check_columns(
    struct store_pg *p, const PGresult *res, int ncols, const int *sizes)
{
	int row, col, len;

	if (PQnfields(res) != ncols)
		return store_pg_fail(p, "load", "unexpected number of columns");
	for (row = 0; row < PQntuples(res); row++)
		for (col = 0; col < ncols; col++) {
			if (sizes[col] == 0 || PQgetisnull(res, row, col))
				continue;
			len = PQgetlength(res, row, col);
			if (len != sizes[col])
				return store_pg_fail(
				    p, "load", "unexpected integer size");
		}
	return 0;
}

static void
load_meta(struct store *s, const struct store_loader *l, PGresult *res, int row)
{
	l->meta(l->arg, pg_text(res, row, 0), pg_int(res, row, 1));
	if (s->meta_tap != NULL)
		s->meta_tap(
		    s->meta_tap_arg, pg_text(res, row, 0), pg_int(res, row, 1));
}

static void
load_tagset(
    struct store *s, const struct store_loader *l, PGresult *res, int row)
{
	(void)s;
	l->tagset(l->arg, pg_text(res, row, 0));
}

static void
load_resource(
    struct store *s, const struct store_loader *l, PGresult *res, int row)
{
	struct store_resource r = {
	    .id = (uint64_t)pg_int(res, row, 0),
	    .pool = pg_text(res, row, 1),
	    .name = pg_text(res, row, 2),
	    .state = pg_text(res, row, 3),
	    .ticket_id = (uint64_t)pg_int(res, row, 4),
	    .id_in_pool = (int32_t)pg_int(res, row, 5),
	    .data = pg_text(res, row, 6),
	    .data_len = (size_t)PQgetlength(res, row, 6),
	    .created_ms = pg_int(res, row, 7),
	    .sandbox = pg_text(res, row, 8),
	    .sandboxed_since_ms = pg_int(res, row, 9),
	    .released_at_ms = pg_int(res, row, 10),
	    .releases = (int32_t)pg_int(res, row, 11),
	    .check_failed = (int32_t)pg_int(res, row, 12),
	    .counters = pg_text(res, row, 13),
	};

	(void)s;
	l->resource(l->arg, &r);
}

static void
load_ticket(
    struct store *s, const struct store_loader *l, PGresult *res, int row)
{
	struct store_ticket t = {
	    .id = (uint64_t)pg_int(res, row, 0),
	    .idem_key = pg_text(res, row, 1),
	    .tagset = pg_text(res, row, 2),
	    .sandbox = pg_text(res, row, 3),
	    .state = pg_text(res, row, 4),
	    .resource_id = (uint64_t)pg_int(res, row, 5),
	    .created_ms = pg_int(res, row, 6),
	    .owner = pg_text(res, row, 7),
	    .labels = pg_text(res, row, 8),
	    .class_ = pg_text(res, row, 9),
	    .lease_s = (int32_t)pg_int(res, row, 10),
	    .deadline_ms = pg_int(res, row, 11),
	    .reply_to = pg_text(res, row, 12),
	    .delegate = pg_text(res, row, 13),
	};

	(void)s;
	l->ticket(l->arg, &t);
}

static void
load_outbox(
    struct store *s, const struct store_loader *l, PGresult *res, int row)
{
	struct store_outbox o = {
	    .id = (uint64_t)pg_int(res, row, 0),
	    .exchange = pg_text(res, row, 1),
	    .routing_key = pg_text(res, row, 2),
	    .type = pg_text(res, row, 3),
	    .body = PQgetvalue(res, row, 4),
	    .len = (size_t)PQgetlength(res, row, 4),
	};

	(void)s;
	l->outbox(l->arg, &o);
}

/*
 * What loading reads, in this order: the query, its columns' binary sizes
 * (0: text or bytea) and what takes each row.
 */
static const struct {
	const char *sql;
	int ncols;
	int sizes[14];
	void (*row)(
	    struct store *, const struct store_loader *, PGresult *, int);
} loads[] = {
    {"SELECT key, value FROM meta ORDER BY key", 2, {0, 8}, load_meta},
    {"SELECT key FROM tagsets ORDER BY key", 1, {0}, load_tagset},
    {"SELECT id, pool, name, state, ticket_id, id_in_pool, data, "
     "created_ms, sandbox, sandboxed_since_ms, released_at_ms, "
     "releases, check_failed, counters "
     "FROM resources WHERE state <> 'ENDED' ORDER BY id",
	14, {8, 0, 0, 0, 8, 4, 0, 8, 0, 8, 8, 4, 4, 0}, load_resource},
    {"SELECT id, idem_key, tagset, sandbox, state, resource_id, "
     "created_ms, owner, labels, class, lease_s, deadline_ms, "
     "reply_to, delegate "
     "FROM tickets WHERE state <> 'CLOSED' ORDER BY id",
	14, {8, 0, 0, 0, 0, 8, 8, 0, 0, 0, 4, 8, 0, 0}, load_ticket},
    {"SELECT id, exchange, routing_key, type, body FROM outbox "
     "ORDER BY id",
	5, {8, 0, 0, 0, 0}, load_outbox},
};

/*
 * Blocking: reads the whole state in one read-only snapshot, in the
 * SQLite backend's order (meta, tag sets, resources not ENDED, tickets
 * not CLOSED, outbox), rows in id order.
 */
static int
pg_load(struct store *s, const struct store_loader *l)
{
	struct store_pg *p = to_pg(s);
	PGresult *res;
	size_t i;
	int row;

	if (store_pg_blocking(p, "load") == -1)
		return -1;
	if (pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		PGRES_COMMAND_OK, "load") == -1)
		return -1;
	for (i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		res = PQexecParams(
		    p->conn, loads[i].sql, 0, NULL, NULL, NULL, NULL, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			(void)store_pg_fail(p, "load",
			    res != NULL ? PQresultErrorMessage(res)
					: PQerrorMessage(p->conn));
			PQclear(res);
			goto fail;
		}
		if (pg_check_columns(p, res, loads[i].ncols, loads[i].sizes) ==
		    -1) {
			PQclear(res);
			goto fail;
		}
		for (row = 0; row < PQntuples(res); row++)
			loads[i].row(s, l, res, row);
		PQclear(res);
	}
	return pg_exec(p, "COMMIT", PGRES_COMMAND_OK, "load");
fail:
	(void)pg_exec(p, "ROLLBACK", PGRES_COMMAND_OK, "rollback");
	return -1;
}

/* Runs SQL with PARAMS (text) blocking; the result, or NULL (failed). */
static PGresult *
pg_query(struct store_pg *p, const char *what, const char *sql, int n,
    const char *const *params, ExecStatusType status)
{
	PGresult *res =
	    PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != status) {
		(void)store_pg_fail(p, what,
		    res != NULL ? PQresultErrorMessage(res)
				: PQerrorMessage(p->conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Leadership is a session advisory lock on the store's own connection:
 * the session that commits is the session that leads, and when it ends
 * the lock goes with it.  A paused or cut-off leader's session ends
 * after LEASE_S idle seconds (idle_session_timeout; the active broker
 * keeps it busy with a query every third of that), and the standby,
 * trying every second, takes the lock and moves the fencing epoch, which
 * every commit checks (resbus_fence): the old leader can then neither
 * commit on its old session, which is gone, nor on any other.
 */
static int
pg_lead_try(struct store *s, const char *who, int lease_s, int64_t *epoch,
    char *holder, size_t holderlen)
{
	struct store_pg *p = to_pg(s);
	const char *params[1];
	char name[200], ms[32];
	PGresult *res;
	bool got;

	if (store_pg_blocking(p, "lead") == -1)
		return -1;
	res = pg_query(p, "lead",
	    "SELECT pg_try_advisory_lock(" PG_STR(PG_LEAD_KEY1) ", " PG_STR(
		PG_LEAD_KEY2) ")",
	    0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!got) {
		res = pg_query(p, "lead holder",
		    "SELECT a.application_name, "
		    "coalesce(host(a.client_addr), 'local'), "
		    "to_char(a.backend_start, 'YYYY-MM-DD\"T\"HH24:MI:SSOF') "
		    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
		    "WHERE l.locktype = 'advisory' AND l.granted AND "
		    "l.classid = " PG_STR(PG_LEAD_KEY1) " AND l.objid = " PG_STR(
			PG_LEAD_KEY2) " AND l.objsubid = 2",
		    0, NULL, PGRES_TUPLES_OK);
		if (res == NULL)
			return -1;
		if (PQntuples(res) == 1)
			snprintf(holder, holderlen,
			    "the store is led by %s "
			    "(from %s, connected since %s)",
			    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			    PQgetvalue(res, 0, 2));
		else
			snprintf(holder, holderlen,
			    "the store is led by "
			    "another resbusd");
		PQclear(res);
		return 0;
	}
	snprintf(name, sizeof(name), "resbusd %s", who);
	snprintf(ms, sizeof(ms), "%d", lease_s * 1000);
	params[0] = name;
	if ((res = pg_query(p, "lead",
		 "SELECT set_config('application_name', "
		 "$1, false)",
		 1, params, PGRES_TUPLES_OK)) == NULL)
		return -1;
	PQclear(res);
	params[0] = ms;
	if ((res = pg_query(p, "lead",
		 "SELECT set_config("
		 "'idle_session_timeout', $1, false), set_config("
		 "'idle_in_transaction_session_timeout', $1, false)",
		 1, params, PGRES_TUPLES_OK)) == NULL)
		return -1;
	PQclear(res);
	res = pg_query(p, "lead epoch",
	    "INSERT INTO meta (key, value) "
	    "VALUES ('leader_epoch', 1) ON CONFLICT (key) DO UPDATE "
	    "SET value = meta.value + 1 RETURNING value",
	    0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	p->epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	*epoch = p->epoch;
	return 1;
}

static int
pg_fd(const struct store *s)
{
	const struct store_pg *p = to_pg_const(s);

	return p->conn != NULL ? PQsocket(p->conn) : -1;
}

static bool
pg_want_write(const struct store *s)
{
	return to_pg_const(s)->want_write;
}

static const char *
pg_error(const struct store *s)
{
	return to_pg_const(s)->error;
}

static void
pg_close(struct store *s)
{
	struct store_pg *p = to_pg(s);

	store_pg_pipe_close(p);
	PQfinish(p->conn);
	free(p);
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .load = pg_load,
    .begin = store_pg_begin,
    .commit = store_pg_commit,
    .put_meta = store_pg_put_meta,
    .put_tagset = store_pg_put_tagset,
    .put_ticket = store_pg_put_ticket,
    .put_resource = store_pg_put_resource,
    .add_outbox = store_pg_add_outbox,
    .del_outbox = store_pg_del_outbox,
    .del_meta = store_pg_del_meta,
    .del_tagset = store_pg_del_tagset,
    .lead_try = pg_lead_try,
    .get_ticket = store_pg_get_ticket,
    .fd = pg_fd,
    .io = store_pg_io,
    .want_write = pg_want_write,
    .error = pg_error,
};
