/*
 * store_pg_pipe -- the PostgreSQL store's statements, and the pipeline
 * that carries them while the broker runs.
 *
 * Every statement is prepared once at start-up (store_pg_prepare).  On
 * the first write or lookup the connection switches to non-blocking
 * pipeline mode, and from then on nothing waits for the server:
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
 * to the broker anyway.)  A leading broker's transaction starts by
 * checking its fencing epoch (resbus_fence; leadership is in store_pg.c),
 * so a broker that no longer leads cannot commit.
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
#include "store_pg_priv.h"
#include "util.h"

/* Type OIDs of the parameters (from the server's pg_type catalog). */
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT4 23
#define PG_OID_TEXT 25

/* How long close() waits for the answers to what was committed. */
#define PG_CLOSE_TIMEOUT_MS 10000

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

/* Parameters of one statement, in the form PQsendQueryPrepared takes. */
struct pg_params {
	int n;
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	unsigned char ints[PG_MAX_PARAMS][8];
};

int
store_pg_prepare(struct store_pg *p)
{
	PGresult *res;
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		res = PQprepare(p->conn, pg_statements[i].name,
		    pg_statements[i].sql, pg_statements[i].nparams,
		    pg_statements[i].types);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			(void)store_pg_fail(p, "prepare",
			    res != NULL ? PQresultErrorMessage(res)
					: PQerrorMessage(p->conn));
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

static void pg_drain(struct store_pg *p);

/*
 * Leaves pipeline mode for a blocking call, after waiting for the answers
 * to what was committed; -1 inside a transaction.
 */
int
store_pg_blocking(struct store_pg *p, const char *what)
{
	if (p->broken)
		return -1;
	if (!p->pipeline)
		return 0;
	if (p->txn)
		return store_pg_fail(p, what, "a transaction is open");
	pg_drain(p);
	if (p->broken)
		return -1;
	if (p->fifo_len > 0)
		return store_pg_fail(p, what, "statements are still in flight");
	if (PQexitPipelineMode(p->conn) != 1 ||
	    PQsetnonblocking(p->conn, 0) != 0)
		return store_pg_fail_conn(p, what);
	p->pipeline = false;
	return 0;
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
		return store_pg_fail_conn(p, what);
	p->pipeline = true;
	return 0;
}

static int
pg_flush(struct store_pg *p)
{
	int rc = PQflush(p->conn);

	if (rc == -1) {
		(void)store_pg_fail_conn(p, "send");
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
		(void)store_pg_fail_conn(p, pg_statements[st].name);
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
		(void)store_pg_fail_conn(p, "sync");
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

int
store_pg_begin(struct store *s)
{
	struct store_pg *p = to_pg(s);

	if (pg_running(p, "begin") == -1)
		return -1;
	if (p->txn)
		return store_pg_fail(
		    p, "begin", "a transaction is already open");
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

int
store_pg_commit(struct store *s, store_done_fn *done, void *arg)
{
	struct store_pg *p = to_pg(s);
	struct pg_pending e = {
	    .kind = PG_PENDING_COMMIT,
	    .done = done,
	    .arg = arg,
	};

	if (p->broken || !p->txn) {
		if (!p->broken)
			(void)store_pg_fail(
			    p, "commit", "no transaction is open");
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
		return store_pg_fail(
		    p, pg_statements[st].name, "write outside a transaction");
	return pg_send_write(p, st, pp);
}

int
store_pg_put_meta(struct store *s, const char *key, int64_t value)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	pg_param_int8(&pp, value);
	return pg_write(to_pg(s), ST_PUT_META, &pp);
}

int
store_pg_put_tagset(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_PUT_TAGSET, &pp);
}

int
store_pg_put_ticket(struct store *s, const struct store_ticket *t)
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

int
store_pg_put_resource(struct store *s, const struct store_resource *r)
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

int
store_pg_add_outbox(struct store *s, const struct store_outbox *o)
{
	struct pg_params pp = {0};

	pg_param_int8(&pp, (int64_t)o->id);
	pg_param_text(&pp, o->exchange);
	pg_param_text(&pp, o->routing_key);
	pg_param_text(&pp, o->type);
	pg_param_bytes(&pp, o->body != NULL ? o->body : "", o->len);
	return pg_write(to_pg(s), ST_ADD_OUTBOX, &pp);
}

int
store_pg_del_meta(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_DEL_META, &pp);
}

int
store_pg_del_tagset(struct store *s, const char *key)
{
	struct pg_params pp = {0};

	pg_param_text(&pp, key);
	return pg_write(to_pg(s), ST_DEL_TAGSET, &pp);
}

int
store_pg_del_outbox(struct store *s, uint64_t id)
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
int
store_pg_get_ticket(
    struct store *s, uint64_t id, store_ticket_fn *fn, void *arg)
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
		(void)store_pg_fail(
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
int
store_pg_io(struct store *s)
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
		(void)store_pg_fail_conn(p, "receive");
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
			(void)store_pg_fail(
			    p, "receive", "a result nobody asked for");
			return pg_break(p);
		}
		if ((status == PGRES_PIPELINE_SYNC) !=
		    (e.kind == PG_PENDING_SYNC)) {
			PQclear(res);
			pg_pending_fail(&e);
			(void)store_pg_fail(p, "receive",
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
		(void)store_pg_fail_conn(p, "connection");
		return pg_break(p);
	}
	return 0;
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
		if (store_pg_io(&p->base) == -1)
			log_warnx("store: %s", p->error);
	}
}

void
store_pg_pipe_close(struct store_pg *p)
{
	struct pg_pending e;

	if (p->pipeline)
		pg_drain(p);
	p->broken = true;
	while (pg_fifo_pop(p, &e))
		pg_pending_fail(&e);
	free(p->fifo);
	p->fifo = NULL;
}
