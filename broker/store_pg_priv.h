/*
 * store_pg_priv.h -- what the two halves of the PostgreSQL store share:
 * store_pg.c (the session: connecting, the schema, loading, leadership,
 * closing, the backend's table) and store_pg_pipe.c (the statements and
 * the pipeline that carries them while the broker runs).
 */
#ifndef RESBUS_STORE_PG_PRIV_H
#define RESBUS_STORE_PG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"
#include "util.h"

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

static inline struct store_pg *
to_pg(struct store *s)
{
	return container_of(s, struct store_pg, base);
}

static inline const struct store_pg *
to_pg_const(const struct store *s)
{
	return container_of(s, const struct store_pg, base);
}

/* store_pg.c: makes MSG (or libpq's last error) the error text; -1. */
int store_pg_fail(struct store_pg *p, const char *what, const char *msg);
int store_pg_fail_conn(struct store_pg *p, const char *what);

/* store_pg_pipe.c: the statements, prepared once at start-up. */
int store_pg_prepare(struct store_pg *p) __attribute__((warn_unused_result));
/*
 * Leaves pipeline mode for a blocking call, after waiting for the answers
 * to what was committed; -1 inside a transaction.
 */
int store_pg_blocking(struct store_pg *p, const char *what)
    __attribute__((warn_unused_result));
/*
 * At close: waits (bounded) for the answers to what was committed, then
 * tells whatever is still in flight that it failed, and frees the FIFO.
 */
void store_pg_pipe_close(struct store_pg *p);
/* The backend's writes, lookups and I/O (struct store_backend). */
int store_pg_begin(struct store *s);
int store_pg_commit(struct store *s, store_done_fn *done, void *arg);
int store_pg_put_meta(struct store *s, const char *key, int64_t value);
int store_pg_put_tagset(struct store *s, const char *key);
int store_pg_put_ticket(struct store *s, const struct store_ticket *t);
int store_pg_put_resource(struct store *s, const struct store_resource *r);
int store_pg_add_outbox(struct store *s, const struct store_outbox *o);
int store_pg_del_meta(struct store *s, const char *key);
int store_pg_del_tagset(struct store *s, const char *key);
int store_pg_del_outbox(struct store *s, uint64_t id);
int store_pg_get_ticket(
    struct store *s, uint64_t id, store_ticket_fn *fn, void *arg);
int store_pg_io(struct store *s);

#endif
