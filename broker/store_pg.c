/*
 * store_pg -- the networked store: PostgreSQL through libpq, asynchronous.
 *
 * Several brokers' worth of state may live on one server, and the broker
 * must never stall its loop on it, so this backend has two phases.  At
 * start it is a plain blocking client: it connects, creates or migrates
 * the schema (numbered steps, the version applied last kept in the
 * schema_version table, exactly as the SQLite backend does), prepares every
 * statement once, and load() reads the state back.  On the first write or
 * lookup it switches the connection to non-blocking pipeline mode, and
 * from then on nothing waits for the server:
 *
 *   begin            queues BEGIN (after a ROLLBACK, see below)
 *   put_*, *_outbox  queue one prepared statement each
 *   commit           queues COMMIT and a pipeline sync, and flushes
 *   get_ticket       queues its SELECT; outside a transaction it is a
 *                    segment of its own, closed by its own sync
 *
 * Every statement and sync sent is remembered in a FIFO, and io(), which
 * the broker calls when the socket is readable (or writable while
 * want_write() says output is pending), reads the results in order and
 * matches each to its FIFO entry: a commit calls its done callback, a
 * lookup its ticket callback.
 *
 * A failed statement makes the server skip everything up to the next
 * sync (libpq reports PGRES_PIPELINE_ABORTED for those), so the COMMIT of
 * that segment never runs and its done callback gets ok = false.  It also
 * leaves the session inside an aborted transaction block after the sync,
 * so the first segment sent after a failure has been read starts with
 * ROLLBACK.  Segments sent before the failure was read fail as well, and
 * their callbacks say so.  (Always starting with ROLLBACK would spare
 * them, at the price of a "no transaction in progress" warning in the
 * server's log for every transaction; a failed commit is rare and fatal
 * to the broker anyway.)  Server notices go to the debug log.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "store.h"
#include "util.h"

/* Type OIDs of the parameters (from the server's pg_type catalog). */
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT4 23
#define PG_OID_TEXT 25

/* Serialises concurrent migrations of one database. */
#define PG_MIGRATE_LOCK "7304512967730409473"
/* The leader's session lock: ('resb', 1), seen in pg_locks as classid,
 * objid, objsubid 2 (the two-key form). */
#define PG_LEAD_KEY1 1919251298
#define PG_LEAD_KEY2 1
#define PG_STR2(x) #x
#define PG_STR(x) PG_STR2(x)

/* How long close() waits for the answers to what was committed. */
#define PG_CLOSE_TIMEOUT_MS 10000

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

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PUT_META,
	ST_PUT_TAGSET,
	ST_PUT_TICKET,
	ST_PUT_RESOURCE,
	ST_ADD_OUTBOX,
	ST_DEL_OUTBOX,
	ST_GET_TICKET,
	ST_DEL_META,
	ST_DEL_TAGSET,
	ST_FENCE,
	ST_COUNT,
};

#define PG_MAX_PARAMS 16

static const struct {
	const char *name;
	const char *sql;
	int nparams;
	Oid types[PG_MAX_PARAMS];
} pg_statements[ST_COUNT] = {
    [ST_BEGIN] = {"resbus_begin", "BEGIN", 0, {0}},
    [ST_COMMIT] = {"resbus_commit", "COMMIT", 0, {0}},
    [ST_ROLLBACK] = {"resbus_rollback", "ROLLBACK", 0, {0}},
    [ST_PUT_META] = {"resbus_put_meta",
	"INSERT INTO meta (key, value) VALUES ($1, $2) "
	"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	2, {PG_OID_TEXT, PG_OID_INT8}},
    [ST_PUT_TAGSET] = {"resbus_put_tagset",
	"INSERT INTO tagsets (key) VALUES ($1) ON CONFLICT DO NOTHING", 1,
	{PG_OID_TEXT}},
    [ST_PUT_TICKET] = {"resbus_put_ticket",
	"INSERT INTO tickets (id, idem_key, tagset, sandbox, state, "
	"resource_id, created_ms, owner, labels, class, lease_s, deadline_ms, "
	"closed_reason, reply_to, delegate) VALUES ($1, $2, $3, $4, $5, $6, "
	"$7, $8, $9, $10, $11, $12, $13, $14, $15) "
	"ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
	"resource_id = excluded.resource_id, "
	"closed_reason = excluded.closed_reason, "
	"reply_to = excluded.reply_to",
	15,
	{PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT,
	    PG_OID_INT8, PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT,
	    PG_OID_INT4, PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT}},
    [ST_PUT_RESOURCE] = {"resbus_put_resource",
	"INSERT INTO resources (id, pool, name, state, ticket_id, "
	"id_in_pool, data, created_ms, sandbox, sandboxed_since_ms, "
	"released_at_ms, releases, check_failed, counters) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
	"$14) "
	"ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
	"ticket_id = excluded.ticket_id, data = excluded.data, "
	"sandbox = excluded.sandbox, "
	"sandboxed_since_ms = excluded.sandboxed_since_ms, "
	"released_at_ms = excluded.released_at_ms, "
	"releases = excluded.releases, "
	"check_failed = excluded.check_failed",
	14,
	{PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_INT8,
	    PG_OID_INT4, PG_OID_BYTEA, PG_OID_INT8, PG_OID_TEXT, PG_OID_INT8,
	    PG_OID_INT8, PG_OID_INT4, PG_OID_INT4, PG_OID_TEXT}},
    [ST_ADD_OUTBOX] = {"resbus_add_outbox",
	"INSERT INTO outbox (id, exchange, routing_key, type, body) "
	"VALUES ($1, $2, $3, $4, $5) "
	"ON CONFLICT (id) DO UPDATE SET exchange = excluded.exchange, "
	"routing_key = excluded.routing_key, type = excluded.type, "
	"body = excluded.body",
	5, {PG_OID_INT8, PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT, PG_OID_BYTEA}},
    [ST_DEL_OUTBOX] = {"resbus_del_outbox", "DELETE FROM outbox WHERE id = $1",
	1, {PG_OID_INT8}},
    [ST_DEL_META] = {"resbus_del_meta", "DELETE FROM meta WHERE key = $1", 1,
	{PG_OID_TEXT}},
    [ST_DEL_TAGSET] = {"resbus_del_tagset",
	"DELETE FROM tagsets WHERE key = $1", 1, {PG_OID_TEXT}},
    [ST_FENCE] = {"resbus_fence", "SELECT resbus_fence($1)", 1, {PG_OID_INT8}},
    [ST_GET_TICKET] = {"resbus_get_ticket",
	"SELECT t.state, r.data, t.owner, t.delegate FROM tickets t "
	"LEFT JOIN resources r ON r.id = t.resource_id WHERE t.id = $1",
	1, {PG_OID_INT8}},
};

/* What a statement or sync in flight is waiting for. */
enum pg_pending_kind {
	PG_PENDING_WRITE,      /* result only checked */
	PG_PENDING_COMMIT,     /* done(arg, ok) */
	PG_PENDING_GET_TICKET, /* ticket_fn(arg, ...) */
	PG_PENDING_SYNC,       /* end of a pipeline segment */
};

struct pg_pending {
	enum pg_pending_kind kind;
	int st; /* ST_*; -1 for a sync */
	store_done_fn *done;
	store_ticket_fn *ticket_fn;
	void *arg;
};

/* Parameters of one statement, in the form PQsendQueryPrepared takes. */
struct pg_params {
	int n;
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	unsigned char ints[PG_MAX_PARAMS][8];
};

struct store_pg {
	struct store base;
	PGconn *conn;
	bool pipeline;		 /* running phase entered */
	bool txn;		 /* a BEGIN is queued, its COMMIT not */
	bool broken;		 /* the connection is unusable */
	bool want_write;	 /* PQflush left output unsent */
	bool seg_failed;	 /* a result of this segment failed */
	bool failed;		 /* a failure since the last ROLLBACK sent */
	bool expect_null;	 /* the NULL ending a result is due */
	int64_t epoch;		 /* fencing epoch while leading; 0: none */
	int nsyncs;		 /* syncs in the FIFO */
	struct pg_pending *fifo; /* ring of what was sent, oldest first */
	size_t fifo_head, fifo_len, fifo_cap;
	char error[512];
};

static struct store_pg *
to_pg(struct store *s)
{
	return container_of(s, struct store_pg, base);
}

static const struct store_pg *
to_pg_const(const struct store *s)
{
	return container_of(s, const struct store_pg, base);
}

/* Makes MSG the error text, on one line for the log. */
static int
pg_fail(struct store_pg *p, const char *what, const char *msg)
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

static int
pg_fail_conn(struct store_pg *p, const char *what)
{
	return pg_fail(p, what, PQerrorMessage(p->conn));
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
		rc = pg_fail(p, what,
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
		(void)pg_fail(p, "schema_version", PQresultErrorMessage(res));
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

static int
pg_prepare(struct store_pg *p)
{
	PGresult *res;
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		res = PQprepare(p->conn, pg_statements[i].name,
		    pg_statements[i].sql, pg_statements[i].nparams,
		    pg_statements[i].types);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			(void)pg_fail(p, "prepare",
			    res != NULL ? PQresultErrorMessage(res)
					: PQerrorMessage(p->conn));
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
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
		(void)pg_fail_conn(p, "connect");
		goto fail;
	}
	PQsetNoticeProcessor(p->conn, pg_notice, NULL);
	if (pg_migrate(p) == -1 || pg_prepare(p) == -1)
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
		return pg_fail(p, "load", "unexpected number of columns");
	for (row = 0; row < PQntuples(res); row++)
		for (col = 0; col < ncols; col++) {
			if (sizes[col] == 0 || PQgetisnull(res, row, col))
				continue;
			len = PQgetlength(res, row, col);
			if (len != sizes[col])
				return pg_fail(
				    p, "load", "unexpected integer size");
		}
	return 0;
}

static void pg_drain(struct store_pg *p);

/*
 * Leaves pipeline mode for a blocking call, after waiting for the answers
 * to what was committed; -1 inside a transaction.
 */
static int
pg_blocking(struct store_pg *p, const char *what)
{
	if (p->broken)
		return -1;
	if (!p->pipeline)
		return 0;
	if (p->txn)
		return pg_fail(p, what, "a transaction is open");
	pg_drain(p);
	if (p->broken)
		return -1;
	if (p->fifo_len > 0)
		return pg_fail(p, what, "statements are still in flight");
	if (PQexitPipelineMode(p->conn) != 1 ||
	    PQsetnonblocking(p->conn, 0) != 0)
		return pg_fail_conn(p, what);
	p->pipeline = false;
	return 0;
}

/*
 * Blocking: reads the whole state in one read-only snapshot, in the
 * SQLite backend's order (meta, tag sets, resources not ENDED, tickets
 * not CLOSED, outbox), rows in id order.
 */
static int
pg_load(struct store *s, const struct store_loader *l)
{
	static const struct {
		const char *sql;
		int ncols;
		int sizes[14];
	} queries[] = {
	    {"SELECT key, value FROM meta ORDER BY key", 2, {0, 8}},
	    {"SELECT key FROM tagsets ORDER BY key", 1, {0}},
	    {"SELECT id, pool, name, state, ticket_id, id_in_pool, data, "
	     "created_ms, sandbox, sandboxed_since_ms, released_at_ms, "
	     "releases, check_failed, counters "
	     "FROM resources WHERE state <> 'ENDED' ORDER BY id",
		14, {8, 0, 0, 0, 8, 4, 0, 8, 0, 8, 8, 4, 4, 0}},
	    {"SELECT id, idem_key, tagset, sandbox, state, resource_id, "
	     "created_ms, owner, labels, class, lease_s, deadline_ms, "
	     "reply_to, delegate "
	     "FROM tickets WHERE state <> 'CLOSED' ORDER BY id",
		14, {8, 0, 0, 0, 0, 8, 8, 0, 0, 0, 4, 8, 0, 0}},
	    {"SELECT id, exchange, routing_key, type, body FROM outbox "
	     "ORDER BY id",
		5, {8, 0, 0, 0, 0}},
	};
	struct store_pg *p = to_pg(s);
	PGresult *res;
	size_t i;
	int row;

	if (pg_blocking(p, "load") == -1)
		return -1;
	if (pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		PGRES_COMMAND_OK, "load") == -1)
		return -1;
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		res = PQexecParams(
		    p->conn, queries[i].sql, 0, NULL, NULL, NULL, NULL, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			(void)pg_fail(p, "load",
			    res != NULL ? PQresultErrorMessage(res)
					: PQerrorMessage(p->conn));
			PQclear(res);
			goto fail;
		}
		if (pg_check_columns(
			p, res, queries[i].ncols, queries[i].sizes) == -1) {
			PQclear(res);
			goto fail;
		}
		for (row = 0; row < PQntuples(res); row++) {
			if (i == 0) {
				l->meta(l->arg, pg_text(res, row, 0),
				    pg_int(res, row, 1));
				if (s->meta_tap != NULL)
					s->meta_tap(s->meta_tap_arg,
					    pg_text(res, row, 0),
					    pg_int(res, row, 1));
			} else if (i == 1) {
				l->tagset(l->arg, pg_text(res, row, 0));
			} else if (i == 2) {
				struct store_resource r = {
				    .id = (uint64_t)pg_int(res, row, 0),
				    .pool = pg_text(res, row, 1),
				    .name = pg_text(res, row, 2),
				    .state = pg_text(res, row, 3),
				    .ticket_id = (uint64_t)pg_int(res, row, 4),
				    .id_in_pool = (int32_t)pg_int(res, row, 5),
				    .data = pg_text(res, row, 6),
				    .data_len =
					(size_t)PQgetlength(res, row, 6),
				    .created_ms = pg_int(res, row, 7),
				    .sandbox = pg_text(res, row, 8),
				    .sandboxed_since_ms = pg_int(res, row, 9),
				    .released_at_ms = pg_int(res, row, 10),
				    .releases = (int32_t)pg_int(res, row, 11),
				    .check_failed =
					(int32_t)pg_int(res, row, 12),
				    .counters = pg_text(res, row, 13),
				};
				l->resource(l->arg, &r);
			} else if (i == 3) {
				struct store_ticket t = {
				    .id = (uint64_t)pg_int(res, row, 0),
				    .idem_key = pg_text(res, row, 1),
				    .tagset = pg_text(res, row, 2),
				    .sandbox = pg_text(res, row, 3),
				    .state = pg_text(res, row, 4),
				    .resource_id =
					(uint64_t)pg_int(res, row, 5),
				    .created_ms = pg_int(res, row, 6),
				    .owner = pg_text(res, row, 7),
				    .labels = pg_text(res, row, 8),
				    .class_ = pg_text(res, row, 9),
				    .lease_s = (int32_t)pg_int(res, row, 10),
				    .deadline_ms = pg_int(res, row, 11),
				    .reply_to = pg_text(res, row, 12),
				    .delegate = pg_text(res, row, 13),
				};
				l->ticket(l->arg, &t);
			} else {
				struct store_outbox o = {
				    .id = (uint64_t)pg_int(res, row, 0),
				    .exchange = pg_text(res, row, 1),
				    .routing_key = pg_text(res, row, 2),
				    .type = pg_text(res, row, 3),
				    .body = PQgetvalue(res, row, 4),
				    .len = (size_t)PQgetlength(res, row, 4),
				};
				l->outbox(l->arg, &o);
			}
		}
		PQclear(res);
	}
	return pg_exec(p, "COMMIT", PGRES_COMMAND_OK, "load");
fail:
	(void)pg_exec(p, "ROLLBACK", PGRES_COMMAND_OK, "rollback");
	return -1;
}

/* ---- running phase: pipeline ------------------------------------------- */

static void
pg_fifo_push(struct store_pg *p, const struct pg_pending *e)
{
	size_t i, ncap;
	struct pg_pending *nfifo;

	if (p->fifo_len == p->fifo_cap) {
		ncap = p->fifo_cap ? p->fifo_cap * 2 : 64;
		nfifo = xcalloc(ncap, sizeof(*nfifo));
		for (i = 0; i < p->fifo_len; i++)
			nfifo[i] = p->fifo[(p->fifo_head + i) % p->fifo_cap];
		free(p->fifo);
		p->fifo = nfifo;
		p->fifo_cap = ncap;
		p->fifo_head = 0;
	}
	p->fifo[(p->fifo_head + p->fifo_len) % p->fifo_cap] = *e;
	p->fifo_len++;
	if (e->kind == PG_PENDING_SYNC)
		p->nsyncs++;
}

/* Takes the oldest entry off the FIFO into E; false if it is empty. */
static bool
pg_fifo_pop(struct store_pg *p, struct pg_pending *e)
{
	if (p->fifo_len == 0)
		return false;
	*e = p->fifo[p->fifo_head];
	p->fifo_head = (p->fifo_head + 1) % p->fifo_cap;
	p->fifo_len--;
	if (e->kind == PG_PENDING_SYNC)
		p->nsyncs--;
	return true;
}

/* Tells the owner of entry E that it failed. */
static void
pg_pending_fail(const struct pg_pending *e)
{
	if (e->kind == PG_PENDING_COMMIT)
		e->done(e->arg, false);
	else if (e->kind == PG_PENDING_GET_TICKET)
		e->ticket_fn(e->arg, -1, NULL, NULL, NULL, NULL, 0);
}

/*
 * The connection is lost or out of step: everything in flight has failed
 * and so will everything after.  Callbacks run after the FIFO is emptied.
 */
static int
pg_break(struct store_pg *p)
{
	struct pg_pending *fifo = p->fifo;
	size_t head = p->fifo_head, len = p->fifo_len, cap = p->fifo_cap, i;

	p->broken = true;
	p->want_write = false;
	p->fifo = NULL;
	p->fifo_head = p->fifo_len = p->fifo_cap = 0;
	p->nsyncs = 0;
	for (i = 0; i < len; i++)
		pg_pending_fail(&fifo[(head + i) % cap]);
	free(fifo);
	return -1;
}

/* Enters the running phase on first use. */
static int
pg_running(struct store_pg *p, const char *what)
{
	if (p->broken)
		return -1;
	if (p->pipeline)
		return 0;
	if (PQsetnonblocking(p->conn, 1) != 0 ||
	    PQenterPipelineMode(p->conn) != 1)
		return pg_fail_conn(p, what);
	p->pipeline = true;
	return 0;
}

static int
pg_flush(struct store_pg *p)
{
	int rc = PQflush(p->conn);

	if (rc == -1) {
		(void)pg_fail_conn(p, "send");
		return pg_break(p);
	}
	p->want_write = rc == 1;
	return 0;
}

/*
 * Queues prepared statement ST with PARAMS; E says what its result is
 * for.  On failure E's callback, if any, has been told.
 */
static int
pg_send(struct store_pg *p, int st, const struct pg_params *params,
    struct pg_pending *e)
{
	static const struct pg_params none;

	if (params == NULL)
		params = &none;
	if (PQsendQueryPrepared(p->conn, pg_statements[st].name, params->n,
		params->values, params->lengths, params->formats, 1) != 1) {
		(void)pg_fail_conn(p, pg_statements[st].name);
		(void)pg_break(p);
		pg_pending_fail(e);
		return -1;
	}
	e->st = st;
	pg_fifo_push(p, e);
	return 0;
}

static int
pg_send_write(struct store_pg *p, int st, const struct pg_params *params)
{
	struct pg_pending e = {.kind = PG_PENDING_WRITE};

	return pg_send(p, st, params, &e);
}

static int
pg_sync(struct store_pg *p)
{
	struct pg_pending e = {.kind = PG_PENDING_SYNC, .st = -1};

	if (PQpipelineSync(p->conn) != 1) {
		(void)pg_fail_conn(p, "sync");
		return pg_break(p);
	}
	pg_fifo_push(p, &e);
	return pg_flush(p);
}

/*
 * Opens a pipeline segment.  A failed transaction leaves the session in
 * an aborted transaction block after its sync, so after a failure the
 * segment starts with ROLLBACK.
 */
static int
pg_segment(struct store_pg *p)
{
	if (!p->failed)
		return 0;
	p->failed = false;
	return pg_send_write(p, ST_ROLLBACK, NULL);
}

static void
pg_param_text(struct pg_params *pp, const char *s)
{
	pp->values[pp->n] = s;
	pp->lengths[pp->n] = 0;
	pp->formats[pp->n] = 0;
	pp->n++;
}

static void
pg_param_bytes(struct pg_params *pp, const void *data, size_t len)
{
	pp->values[pp->n] = data;
	pp->lengths[pp->n] = (int)len;
	pp->formats[pp->n] = 1;
	pp->n++;
}

/* An integer of SIZE (4 or 8) bytes, in network order, binary format. */
static void
pg_param_int(struct pg_params *pp, int64_t v, int size)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = size - 1; i >= 0; i--) {
		pp->ints[pp->n][i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
	pg_param_bytes(pp, pp->ints[pp->n], (size_t)size);
}

static void
pg_param_int8(struct pg_params *pp, int64_t v)
{
	pg_param_int(pp, v, 8);
}

/* An id; 0 is stored as NULL, as the SQLite backend does. */
static void
pg_param_id(struct pg_params *pp, uint64_t id)
{
	if (id == 0)
		pg_param_text(pp, NULL);
	else
		pg_param_int8(pp, (int64_t)id);
}

static int
pg_begin(struct store *s)
{
	struct store_pg *p = to_pg(s);

	if (pg_running(p, "begin") == -1)
		return -1;
	if (p->txn)
		return pg_fail(p, "begin", "a transaction is already open");
	if (pg_segment(p) == -1 || pg_send_write(p, ST_BEGIN, NULL) == -1)
		return -1;
	p->txn = true;
	/* A broker that no longer leads cannot commit: the epoch moved. */
	if (p->epoch > 0) {
		struct pg_params pp = {0};

		pg_param_int8(&pp, p->epoch);
		if (pg_send_write(p, ST_FENCE, &pp) == -1)
			return -1;
	}
	return 0;
}

static int
pg_commit(struct store *s, store_done_fn *done, void *arg)
{
	struct store_pg *p = to_pg(s);
	struct pg_pending e = {
	    .kind = PG_PENDING_COMMIT,
	    .done = done,
	    .arg = arg,
	};

	if (p->broken || !p->txn) {
		if (!p->broken)
			(void)pg_fail(p, "commit", "no transaction is open");
		done(arg, false);
		return -1;
	}
	p->txn = false;
	if (pg_send(p, ST_COMMIT, NULL, &e) == -1)
		return -1; /* done has been called */
	return pg_sync(p); /* on failure, so it has */
}

/* Queues write ST inside the open transaction. */
static int
pg_write(struct store_pg *p, int st, const struct pg_params *pp)
{
	if (p->broken)
		return -1;
	if (!p->txn)
		return pg_fail(
		    p, pg_statements[st].name, "write outside a transaction");
	return pg_send_write(p, st, pp);
}

static int
pg_put_meta(struct store *s, const char *key, int64_t value)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	pg_param_int8(&pp, value);
	return pg_write(to_pg(s), ST_PUT_META, &pp);
}

static int
pg_put_tagset(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_PUT_TAGSET, &pp);
}

static int
pg_put_ticket(struct store *s, const struct store_ticket *t)
{
	struct pg_params pp = {0};

	pg_param_int8(&pp, (int64_t)t->id);
	pg_param_text(&pp, t->idem_key);
	pg_param_text(&pp, t->tagset);
	pg_param_text(&pp, t->sandbox);
	pg_param_text(&pp, t->state);
	pg_param_id(&pp, t->resource_id);
	pg_param_int8(&pp, t->created_ms);
	pg_param_text(&pp, t->owner);
	pg_param_text(&pp, t->labels);
	pg_param_text(&pp, t->class_);
	pg_param_int(&pp, t->lease_s, 4);
	pg_param_int8(&pp, t->deadline_ms);
	pg_param_text(&pp, t->closed_reason);
	pg_param_text(&pp, t->reply_to);
	pg_param_text(&pp, t->delegate);
	return pg_write(to_pg(s), ST_PUT_TICKET, &pp);
}

static int
pg_put_resource(struct store *s, const struct store_resource *r)
{
	struct pg_params pp = {0};

	pg_param_int8(&pp, (int64_t)r->id);
	pg_param_text(&pp, r->pool);
	pg_param_text(&pp, r->name);
	pg_param_text(&pp, r->state);
	pg_param_id(&pp, r->ticket_id);
	pg_param_int(&pp, r->id_in_pool, 4);
	if (r->data != NULL)
		pg_param_bytes(&pp, r->data, r->data_len);
	else
		pg_param_text(&pp, NULL);
	pg_param_int8(&pp, r->created_ms);
	pg_param_text(&pp, r->sandbox);
	pg_param_int8(&pp, r->sandboxed_since_ms);
	pg_param_int8(&pp, r->released_at_ms);
	pg_param_int(&pp, r->releases, 4);
	pg_param_int(&pp, r->check_failed, 4);
	pg_param_text(&pp, r->counters);
	return pg_write(to_pg(s), ST_PUT_RESOURCE, &pp);
}

static int
pg_add_outbox(struct store *s, const struct store_outbox *o)
{
	struct pg_params pp = {0};

	pg_param_int8(&pp, (int64_t)o->id);
	pg_param_text(&pp, o->exchange);
	pg_param_text(&pp, o->routing_key);
	pg_param_text(&pp, o->type);
	pg_param_bytes(&pp, o->body != NULL ? o->body : "", o->len);
	return pg_write(to_pg(s), ST_ADD_OUTBOX, &pp);
}

/* Runs SQL with PARAMS (text) blocking; the result, or NULL (failed). */
static PGresult *
pg_query(struct store_pg *p, const char *what, const char *sql, int n,
    const char *const *params, ExecStatusType status)
{
	PGresult *res =
	    PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != status) {
		(void)pg_fail(p, what,
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

	if (pg_blocking(p, "lead") == -1)
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
pg_del_meta(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_DEL_META, &pp);
}

static int
pg_del_tagset(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_DEL_TAGSET, &pp);
}

static int
pg_del_outbox(struct store *s, uint64_t id)
{
	struct pg_params pp = {0};

	pg_param_int8(&pp, (int64_t)id);
	return pg_write(to_pg(s), ST_DEL_OUTBOX, &pp);
}

/*
 * Queues the lookup; FN(ARG, ...) follows from io() when the row arrives.
 * Inside an open transaction the SELECT travels with it (and is answered
 * after its commit is flushed); otherwise it is a segment of its own.
 */
static int
pg_get_ticket(struct store *s, uint64_t id, store_ticket_fn *fn, void *arg)
{
	struct store_pg *p = to_pg(s);
	struct pg_pending e = {
	    .kind = PG_PENDING_GET_TICKET,
	    .ticket_fn = fn,
	    .arg = arg,
	};
	struct pg_params pp = {0};

	if (pg_running(p, "get ticket") == -1 ||
	    (!p->txn && pg_segment(p) == -1)) {
		fn(arg, -1, NULL, NULL, NULL, NULL, 0);
		return -1;
	}
	pg_param_int8(&pp, (int64_t)id);
	if (p->txn)
		return pg_send(p, ST_GET_TICKET, &pp, &e);
	if (pg_send(p, ST_GET_TICKET, &pp, &e) == -1)
		return -1;
	return pg_sync(p);
}

/* Hands the result RES of entry E to its owner. */
static void
pg_result(struct store_pg *p, const struct pg_pending *e, PGresult *res)
{
	ExecStatusType status = PQresultStatus(res);
	bool ok;

	if (status == PGRES_FATAL_ERROR) {
		(void)pg_fail(
		    p, pg_statements[e->st].name, PQresultErrorMessage(res));
		p->seg_failed = p->failed = true;
	} else if (status == PGRES_PIPELINE_ABORTED) {
		p->seg_failed = p->failed = true;
	}
	switch (e->kind) {
	case PG_PENDING_WRITE:
		break;
	case PG_PENDING_COMMIT:
		ok = status == PGRES_COMMAND_OK && !p->seg_failed;
		if (!ok && status != PGRES_FATAL_ERROR)
			log_debug("postgresql: commit skipped after an "
				  "earlier error: %s",
			    p->error);
		e->done(e->arg, ok);
		break;
	case PG_PENDING_GET_TICKET:
		if (status != PGRES_TUPLES_OK || PQnfields(res) != 4)
			e->ticket_fn(e->arg, -1, NULL, NULL, NULL, NULL, 0);
		else if (PQntuples(res) == 0)
			e->ticket_fn(e->arg, 0, NULL, NULL, NULL, NULL, 0);
		else
			e->ticket_fn(e->arg, 1, PQgetvalue(res, 0, 0),
			    PQgetisnull(res, 0, 2) ? NULL
						   : PQgetvalue(res, 0, 2),
			    PQgetisnull(res, 0, 3) ? NULL
						   : PQgetvalue(res, 0, 3),
			    PQgetisnull(res, 0, 1) ? NULL
						   : PQgetvalue(res, 0, 1),
			    (size_t)PQgetlength(res, 0, 1));
		break;
	case PG_PENDING_SYNC:
		break;
	}
}

/*
 * Drives the connection: sends what is pending, reads what arrived and
 * completes the FIFO entries it answers, calling their callbacks.  0, or
 * -1 when the connection failed (every pending callback has then been
 * told so).
 */
static int
pg_io(struct store *s)
{
	struct store_pg *p = to_pg(s);
	struct pg_pending e;
	ExecStatusType status;
	PGresult *res;
	int nulls = 0;

	/* Called from the loop: the running phase has begun. */
	if (pg_running(p, "io") == -1)
		return -1;
	if (PQconsumeInput(p->conn) != 1) {
		(void)pg_fail_conn(p, "receive");
		return pg_break(p);
	}
	if (pg_flush(p) == -1)
		return -1;
	while (!p->broken && !PQisBusy(p->conn)) {
		res = PQgetResult(p->conn);
		if (res == NULL) {
			/*
			 * A NULL ends each statement's results; one more
			 * means there is nothing to read.
			 */
			if (p->expect_null) {
				p->expect_null = false;
				nulls = 0;
				continue;
			}
			if (++nulls >= 2 || p->fifo_len == 0)
				break;
			continue;
		}
		nulls = 0;
		status = PQresultStatus(res);
		if (!pg_fifo_pop(p, &e)) {
			PQclear(res);
			(void)pg_fail(
			    p, "receive", "a result nobody asked for");
			return pg_break(p);
		}
		if ((status == PGRES_PIPELINE_SYNC) !=
		    (e.kind == PG_PENDING_SYNC)) {
			PQclear(res);
			pg_pending_fail(&e);
			(void)pg_fail(p, "receive",
			    "results out of step "
			    "with the statements sent");
			return pg_break(p);
		}
		if (e.kind == PG_PENDING_SYNC) {
			p->seg_failed = false;
		} else {
			p->expect_null = true;
			pg_result(p, &e, res);
		}
		PQclear(res);
	}
	if (p->broken)
		return -1;
	if (PQstatus(p->conn) == CONNECTION_BAD) {
		(void)pg_fail_conn(p, "connection");
		return pg_break(p);
	}
	return 0;
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

/*
 * Waits (blocking, bounded) for the answers to every segment sent, so
 * that the commit made just before closing is durable and its callback
 * has run.  A transaction left open is abandoned: the server rolls it
 * back when the connection closes.
 */
static void
pg_drain(struct store_pg *p)
{
	int64_t deadline = now_mono_ms() + PG_CLOSE_TIMEOUT_MS, left;
	struct pollfd pfd;

	while (!p->broken && p->nsyncs > 0) {
		left = deadline - now_mono_ms();
		if (left <= 0) {
			log_warnx("store: postgresql: no answer to the last "
				  "commit within %d ms",
			    PG_CLOSE_TIMEOUT_MS);
			break;
		}
		pfd.fd = PQsocket(p->conn);
		pfd.events = POLLIN | (p->want_write ? POLLOUT : 0);
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			log_warn("store: poll");
			break;
		}
		if (pg_io(&p->base) == -1)
			log_warnx("store: %s", p->error);
	}
}

static void
pg_close(struct store *s)
{
	struct store_pg *p = to_pg(s);
	struct pg_pending e;

	if (p->pipeline)
		pg_drain(p);
	p->broken = true;
	while (pg_fifo_pop(p, &e))
		pg_pending_fail(&e);
	PQfinish(p->conn);
	free(p->fifo);
	free(p);
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .load = pg_load,
    .begin = pg_begin,
    .commit = pg_commit,
    .put_meta = pg_put_meta,
    .put_tagset = pg_put_tagset,
    .put_ticket = pg_put_ticket,
    .put_resource = pg_put_resource,
    .add_outbox = pg_add_outbox,
    .del_outbox = pg_del_outbox,
    .del_meta = pg_del_meta,
    .del_tagset = pg_del_tagset,
    .lead_try = pg_lead_try,
    .get_ticket = pg_get_ticket,
    .fd = pg_fd,
    .io = pg_io,
    .want_write = pg_want_write,
    .error = pg_error,
};
