/*
 * sched -- the broker's objects and the decisions about them.
 *
 * Pools, resources, tickets and tag sets live here, in memory, and every
 * change is written through to the store inside the loop iteration's
 * transaction.  An object's state is the list it sits on, and only the
 * functions of this module move it:
 *
 *   ticket:   OPEN (on its tag set's FIFO) -> READY -> CLOSED, or FAILED
 *   resource: STARTING -> UP (free, then taken) -> DELETE_REQUESTED
 *             -> DELETING -> ENDED
 *
 * Tickets with the same tag set form one FIFO, so a scheduling step looks
 * at tag sets and pools, never at every open ticket.  sched_run() is
 * called once per loop iteration after the messages of that iteration
 * have been handled; it assigns free resources, starts preallocations and
 * asks for deletions.  Jobs and events leave through the emit callback,
 * which the broker routes through the outbox.
 */
#ifndef RESBUS_SCHED_H
#define RESBUS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "resbus.pb-c.h"

struct ev_loop;
struct store;
struct store_outbox;
struct conf_pools;
struct conf_server;
struct sched;

struct sched_event;

/* How sched hands a message to the bus (durably, after the commit). */
struct sched_ops {
	void (*emit)(void *ctx, const char *exchange, const char *key,
	    const ProtobufCMessage *m);
	/* The scheduling step wants to run again (a timer expired). */
	void (*wake)(void *ctx);
	/* Something users watch happened (may be NULL): for notifications. */
	void (*observe)(void *ctx, const struct sched_event *ev);
	void *ctx;
	/*
	 * Tag set KEY has had no tickets for tagset_idle_s and is forgotten
	 * (memory and store); the broker cancels its consumer and deletes
	 * its queue.  May be NULL.  Last, after ctx, so that initializers
	 * written before it still compile.
	 */
	void (*retire)(void *ctx, const char *key);
};

/* What a query or a close answers about a ticket. */
struct sched_ticket_view {
	uint64_t id;
	Resbus__V1__TicketState state;
	bool assigned;
	const void *output; /* borrowed until the next sched call */
	size_t output_len;
	const char *waiting_reason; /* borrowed, NULL when not waiting */
	const char *owner;	    /* borrowed, NULL if unknown */
	int64_t created_ms;	    /* wall clock */
	uint64_t resource_id;	    /* 0: none assigned */
	const char *resource_name;  /* borrowed, NULL: none */
	const char *resource_pool;  /* borrowed, NULL: none */
	const char *delegate;	    /* borrowed, NULL if none */
};

/*
 * A scheduler over POOLS (borrowed; must outlive the scheduler or be
 * replaced with sched_set_pools), writing to STORE, naming the bus under
 * PREFIX.  Caller frees with sched_free().
 */
struct sched *sched_new(struct ev_loop *loop, struct store *store,
    const char *prefix, const struct conf_pools *pools,
    const struct sched_ops *ops);
void sched_free(struct sched *s);

/*
 * Restores the state kept in the store; rows of the outbox go to OUTBOX
 * (with ARG) for the broker to publish again.  0 or -1 (store_error()
 * says why).
 */
int sched_load(struct sched *s,
    void (*outbox)(void *arg, const struct store_outbox *o), void *arg)
    __attribute__((warn_unused_result));

/* Calls FN for each recorded tag set, for the broker to consume their
 * queues. */
void sched_foreach_tagset(
    struct sched *s, void (*fn)(void *arg, const char *key), void *arg);
/* Records tag set KEY durably: 1 if it is new (its queue is to be
 * declared and consumed), 0 if it was recorded before. */
int sched_tagset_add(struct sched *s, const char *key)
    __attribute__((warn_unused_result));

/* What a client asked for; every string is borrowed for the call. */
struct sched_ticket_req {
	const char *idem_key;	  /* "" if none */
	const char *key;	  /* canonical tag-set key, valid */
	const char *sandbox;	  /* NULL or "" if none */
	const char *owner;	  /* the AMQP user, or the owner a delegate
				   * names; NULL or "" if unknown */
	const char *delegate;	  /* the delegate that named OWNER, or NULL */
	const char *labels;	  /* "key=value\n..."; NULL if none */
	const char *class_;	  /* NULL or "" for the default */
	uint32_t lease_s;	  /* 0: no lease */
	int64_t deadline_ms;	  /* wall clock; 0: none */
	const char *reply_to;	  /* NULL or "": no reply queue */
	bool refuse_unprovidable; /* refuse tags no pool provides now */
};

/*
 * Records a ticket.  A known idempotency key returns the ticket made for
 * it before; the retry's reply queue replaces the first one's (see
 * sched_ticket_reply).  -1 with a message in ERR when a bound refuses it,
 * or when no configured pool provides its tags and refusal was asked for
 * (by the request or server.yaml's refuse_unprovidable); otherwise such
 * a ticket waits for a reload that adds a pool.
 *
 * When the ticket becomes READY or FAILED, a TicketUpdate with its
 * resource's ID, name and data goes to REQ->reply_to through the emit
 * callback (the default exchange, routing key = the queue): durably,
 * after the commit, and to nobody if the queue is gone by then.
 */
int sched_ticket_new(struct sched *s, const struct sched_ticket_req *req,
    uint64_t *id, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The holder of ticket ID is alive: its lease starts again.  1 renewed,
 * 0 not in memory (closed or unknown). */
int sched_ticket_renew(struct sched *s, uint64_t id);

/*
 * 1 and *v when ticket ID is in memory (not closed); 0 when it is not,
 * and only the store knows whether it was closed or never existed.
 */
int sched_ticket_view(struct sched *s, uint64_t id, struct sched_ticket_view *v)
    __attribute__((warn_unused_result));
/*
 * Tells ticket ID's reply queue its outcome again if it is READY or
 * FAILED (a retry of its request, after the retry's TicketAccepted).
 */
void sched_ticket_reply(struct sched *s, uint64_t id);
/* Closes ticket ID if it is in memory: 1 closed now, 0 not in memory. */
int sched_ticket_close(struct sched *s, uint64_t id);

/* Results of worker jobs; duplicates and stale results change nothing. */
void sched_on_allocated(struct sched *s, const Resbus__V1__AllocateResult *r);
void sched_on_deleted(struct sched *s, const Resbus__V1__DeleteResult *r);
void sched_on_checked(struct sched *s, const Resbus__V1__LivecheckResult *r);
void sched_on_released(struct sched *s, const Resbus__V1__ReleaseResult *r);
void sched_on_listed(struct sched *s, const Resbus__V1__ListResult *r);

/*
 * Sets the policy of SERVER (borrowed; must outlive the scheduler):
 * ticket classes, limits and tag rules.
 */
void sched_set_policy(struct sched *s, const struct conf_server *server);

/*
 * Swaps in a new pools configuration (SIGHUP): pools that appear start
 * working, pools that are gone stop starting resources but theirs stay
 * known.  POOLS is borrowed like sched_new's.
 */
void sched_set_pools(struct sched *s, const struct conf_pools *pools);

/* Marks that the next sched_run() has work to look at. */
void sched_touch(struct sched *s);
/* One scheduling step, if anything changed since the last one. */
void sched_run(struct sched *s);

/* Counts for logs and tests. */
size_t sched_open_tickets(const struct sched *s);
/* Tag-set lanes in memory (one per tag set and class; max_tagsets). */
size_t sched_tagsets(const struct sched *s);

/*
 * The upper bounds, in seconds, of the buckets of a pool's successful
 * start durations (a Prometheus histogram; +Inf is starts_ok).
 */
#define SCHED_START_BUCKETS 10
extern const double sched_start_bucket_s[SCHED_START_BUCKETS];

/*
 * Read-only views for the faces (status page, JSON API, metrics, control
 * RPCs).  Every pointer in a view is borrowed for the callback only.
 */
struct sched_pool_view {
	const char *name;
	const struct conf_pool *conf; /* NULL: no longer configured */
	bool paused;
	size_t starting, free, released, taken, releasing, deleting;
	size_t waiting; /* tickets this pool could serve */
	uint64_t starts_ok, starts_failed;
	double start_ms_avg; /* successful starts; 0 if none */
	double start_ms_sum; /* of successful starts */
	/* successful starts that took at most sched_start_bucket_s[i] */
	uint64_t start_le[SCHED_START_BUCKETS];
	int64_t last_start_ms;	   /* wall clock, 0 if never */
	int64_t oldest_waiting_ms; /* wall clock creation of the oldest
				    * waiting ticket it could serve, 0 if
				    * none */
};

struct sched_resource_view {
	uint64_t id;
	const char *name;
	const char *pool;
	const char *state;  /* STARTING, UP, RELEASING, ... */
	uint64_t ticket_id; /* 0: none */
	int32_t id_in_pool;
	const void *data;
	size_t data_len;
	int64_t created_ms;
	const char *sandbox;
	int32_t releases;
	int32_t check_failed;
	const char *const *tags; /* the pool's tags, normal first */
	size_t ntags;
};

struct sched_ticket_info {
	uint64_t id;
	const char *state;	   /* OPEN, READY, FAILED, CLOSED */
	const char *tags;	   /* the canonical tag-set key */
	const char *sandbox;	   /* NULL if none */
	uint64_t resource_id;	   /* 0: none */
	const char *resource_name; /* NULL: none */
	const char *resource_pool; /* NULL: none */
	int64_t created_ms;
	const char *waiting_reason; /* NULL unless OPEN (and asked for) */
	const char *owner;	    /* NULL if unknown */
	const char *delegate;	    /* who took it for owner; NULL: none */
	const char *class_;	    /* NULL if none */
	const char *closed_reason;  /* NULL unless resbus closed it */
};

/*
 * What sched_ops.observe hears: a ticket opened, got ready, failed or
 * closed ("open", "ready", "failed", "closed"), or a resource started,
 * came up or was deleted ("starting", "up", "deleted").  The views are
 * borrowed for the call.
 */
struct sched_event {
	enum { SCHED_EV_TICKET, SCHED_EV_RESOURCE } kind;
	const char *what;
	const struct sched_ticket_info *ticket;
	const struct sched_resource_view *resource;
};

void sched_foreach_pool(struct sched *s,
    void (*fn)(void *arg, const struct sched_pool_view *v), void *arg);
/*
 * Lanes (tag set and class) with waiting tickets: the tag-set key, the
 * class (NULL if none) and how many OPEN tickets wait there.  Costs one
 * step per busy lane, never one per ticket.
 */
void sched_foreach_waiting(struct sched *s,
    void (*fn)(void *arg, const char *key, const char *class_, size_t n),
    void *arg);
/* Live (not ENDED) resources, by ID. */
void sched_foreach_resource(struct sched *s,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg);
/* 1 and a call of FN for live resource ID (or NAME, if not NULL), 0 if none. */
int sched_resource_find(struct sched *s, uint64_t id, const char *name,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg);
/* Tickets held in memory, by state. */
void sched_ticket_counts(
    const struct sched *s, size_t *open, size_t *ready, size_t *failed);
/* Tickets not CLOSED (OPEN and FAILED and READY), by ID. */
void sched_foreach_ticket(struct sched *s,
    void (*fn)(void *arg, const struct sched_ticket_info *t), void *arg);
/*
 * One page of the above: the tickets with ID > AFTER_ID, in ID order, at
 * most LIMIT of them, at a cost of O(LIMIT) and not O(all tickets).
 * Returns how many FN was given.
 */
int sched_foreach_ticket_from(struct sched *s, uint64_t after_id, size_t limit,
    void (*fn)(void *arg, const struct sched_ticket_info *t), void *arg);
/* The same for live resources. */
int sched_foreach_resource_from(struct sched *s, uint64_t after_id,
    size_t limit, void (*fn)(void *arg, const struct sched_resource_view *v),
    void *arg);

/*
 * Operators' actions.  resource_kill: an UP resource is deleted and its
 * ticket FAILED (resalloc-maint resource-delete); 1 done, 0 no such UP
 * resource.  pool_pause: a paused pool starts nothing; drain: paused, and
 * its free resources are deleted.  1 done, 0 no such pool.
 */
int sched_resource_delete(struct sched *s, uint64_t id);
int sched_pool_pause(struct sched *s, const char *name, bool paused);
int sched_pool_drain(struct sched *s, const char *name);

#endif
