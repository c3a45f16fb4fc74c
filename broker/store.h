/*
 * store -- the broker's durable state behind one interface.
 *
 * The broker keeps everything in memory and writes every change through
 * to the store; all writes of one loop iteration go in one transaction
 * (store_begin() at the first write, store_commit() before the loop
 * sleeps).  Backends are chosen by the scheme of db_url through a table
 * of typed function pointers, as OpenSMTPD chooses its queue backend.
 *
 * Rows are plain structs; strings in rows handed to put_* are borrowed for
 * the call, strings in rows handed to load callbacks are borrowed for the
 * callback.
 */
#ifndef RESBUS_STORE_H
#define RESBUS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_ticket {
	uint64_t id;
	const char *idem_key;
	const char *tagset;   /* canonical tag-set key */
	const char *sandbox;  /* may be NULL */
	const char *state;    /* OPEN, READY, FAILED, CLOSED */
	uint64_t resource_id; /* 0: none */
	int64_t created_ms;
	/* policy (schema 3) */
	const char *owner;	   /* AMQP user; may be NULL */
	const char *labels;	   /* "key=value\n..." or NULL */
	const char *class_;	   /* ticket class; may be NULL */
	int32_t lease_s;	   /* 0: no lease */
	int64_t deadline_ms;	   /* 0: none */
	const char *closed_reason; /* NULL unless resbus closed it */
	/* the reply queue of its request (SQLite schema 4, PostgreSQL 5) */
	const char *reply_to; /* may be NULL */
	/* schema: SQLite 5, PostgreSQL 6 */
	const char *delegate; /* who took it for OWNER; may be NULL */
};

struct store_resource {
	uint64_t id;
	const char *pool;
	const char *name;
	const char *state;  /* STARTING, UP, DELETE_REQUESTED, ... */
	uint64_t ticket_id; /* 0: none */
	int32_t id_in_pool;
	const void *data;
	size_t data_len;
	int64_t created_ms;
	/* reuse and health (schema 2) */
	const char *sandbox;	    /* may be NULL */
	int64_t sandboxed_since_ms; /* 0: never assigned */
	int64_t released_at_ms;	    /* 0: not released */
	int32_t releases;
	int32_t check_failed;
	const char *counters; /* "name=value,..." or NULL */
};

struct store_outbox {
	uint64_t id;
	const char *exchange;
	const char *routing_key;
	const char *type;
	const void *body;
	size_t len;
};

/* What store_load() hands back, one callback per row. */
struct store_loader {
	void (*meta)(void *arg, const char *key, int64_t value);
	void (*tagset)(void *arg, const char *key);
	void (*ticket)(void *arg, const struct store_ticket *t);
	void (*resource)(void *arg, const struct store_resource *r);
	void (*outbox)(void *arg, const struct store_outbox *o);
	void *arg;
};

/* Called when a commit is durable (OK) or failed; once per commit. */
typedef void store_done_fn(void *arg, bool ok);
/*
 * Called with a ticket no longer in memory: FOUND 1 with its STATE, its
 * OWNER (NULL if unknown), the DELEGATE that took it for the owner (NULL
 * if none) and its resource's DATA (all borrowed for the call; DATA NULL
 * if it never had one), 0 if there is no such ticket, -1 on a store
 * error.
 */
typedef void store_ticket_fn(void *arg, int found, const char *state,
    const char *owner, const char *delegate, const void *data, size_t data_len);

/*
 * A backend.  Writes (put_*, add/del_outbox) only queue work inside the
 * open transaction and never wait for the server; commit and get_ticket
 * complete through callbacks, at once for an embedded store, or when the
 * server answers for a networked one.  A networked backend exposes its
 * socket (fd >= 0) and is driven by io() when it is readable, or writable
 * while want_write() says so; the broker watches it with libev.
 */
struct store_backend {
	const char *name; /* the db_url scheme */
	struct store *(*open)(const char *url, char *err, size_t errlen);
	void (*close)(struct store *s);
	/* Blocking: only at start, before the loop runs. */
	int (*load)(struct store *s, const struct store_loader *l);
	int (*begin)(struct store *s);
	int (*commit)(struct store *s, store_done_fn *done, void *arg);
	int (*put_meta)(struct store *s, const char *key, int64_t value);
	int (*put_tagset)(struct store *s, const char *key);
	int (*del_meta)(struct store *s, const char *key);
	int (*del_tagset)(struct store *s, const char *key);
	int (*put_ticket)(struct store *s, const struct store_ticket *t);
	int (*put_resource)(struct store *s, const struct store_resource *r);
	int (*add_outbox)(struct store *s, const struct store_outbox *o);
	int (*del_outbox)(struct store *s, uint64_t id);
	int (*get_ticket)(
	    struct store *s, uint64_t id, store_ticket_fn *fn, void *arg);
	/*
	 * Blocking, at start: tries once to become the one broker that
	 * writes this store.  1 when this process leads now (for as long as
	 * it lives, or on PostgreSQL as long as its session does: LEASE_S
	 * bounds how long a paused process keeps it), with a fresh fencing
	 * epoch in *epoch that every later commit checks; 0 when another
	 * leads, with who in HOLDER; -1 on failure.  WHO names this process
	 * ("pid N on HOST").
	 */
	int (*lead_try)(struct store *s, const char *who, int lease_s,
	    int64_t *epoch, char *holder, size_t holderlen);
	int (*fd)(const struct store *s);
	int (*io)(struct store *s);
	bool (*want_write)(const struct store *s);
	const char *(*error)(const struct store *s);
};

/*
 * Every store begins with this header; backends extend it.  META_TAP, when
 * set before a load, also hears every meta row: the broker keeps rows of
 * its own there (delivery counts) beside the scheduler's.
 */
struct store {
	const struct store_backend *be;
	bool in_txn;
	void (*meta_tap)(void *arg, const char *key, int64_t value);
	void *meta_tap_arg;
};

/*
 * Opens the store URL names (sqlite:///path, postgresql://...), creating
 * and migrating its schema.  NULL with a message in ERR on failure.
 */
struct store *store_open(const char *url, char *err, size_t errlen);
void store_close(struct store *s);

/* Opens the iteration's transaction unless one is open; 0 or -1. */
int store_begin(struct store *s) __attribute__((warn_unused_result));
/*
 * Commits the open transaction, if any; DONE(ARG, ok) follows once it is
 * durable (at once when there was nothing to commit).  0 or -1.
 */
int store_commit(struct store *s, store_done_fn *done, void *arg)
    __attribute__((warn_unused_result));
const char *store_error(const struct store *s);

/*
 * The backend's operations, one wrapper each, so that no caller reaches
 * into s->be: see struct store_backend for what each does.  The int ones
 * return 0 or -1 (store_lead_try: 1, 0 or -1).
 */
int store_load(struct store *s, const struct store_loader *l)
    __attribute__((warn_unused_result));
int store_put_meta(struct store *s, const char *key, int64_t value)
    __attribute__((warn_unused_result));
int store_put_tagset(struct store *s, const char *key)
    __attribute__((warn_unused_result));
int store_del_meta(struct store *s, const char *key)
    __attribute__((warn_unused_result));
int store_del_tagset(struct store *s, const char *key)
    __attribute__((warn_unused_result));
int store_put_ticket(struct store *s, const struct store_ticket *t)
    __attribute__((warn_unused_result));
int store_put_resource(struct store *s, const struct store_resource *r)
    __attribute__((warn_unused_result));
int store_add_outbox(struct store *s, const struct store_outbox *o)
    __attribute__((warn_unused_result));
int store_del_outbox(struct store *s, uint64_t id)
    __attribute__((warn_unused_result));
int store_get_ticket(struct store *s, uint64_t id, store_ticket_fn *fn,
    void *arg) __attribute__((warn_unused_result));
int store_lead_try(struct store *s, const char *who, int lease_s,
    int64_t *epoch, char *holder, size_t holderlen)
    __attribute__((warn_unused_result));
/* The backend's socket, or -1 for an embedded store. */
int store_fd(const struct store *s);
/* Drives a networked backend when its socket is ready; 0 or -1. */
int store_io(struct store *s) __attribute__((warn_unused_result));
/* Whether a networked backend has output waiting for its socket. */
bool store_want_write(const struct store *s);

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

#endif
