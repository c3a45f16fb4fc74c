/*
 * sched_priv.h -- the scheduler's types, shared by its pieces (sched*.c).
 *
 * Not a public header: outside broker/sched*.c, callers see only sched.h.
 * It holds the objects (pools, resources, tag sets or lanes, tickets,
 * usage counters) and the red-black trees that index them.  The trees'
 * functions are generated static in every file that includes this one;
 * those a file does not use are marked unused by tree.h.  Functions that
 * one piece of the scheduler calls in another are declared at the end.
 */
#ifndef RESBUS_SCHED_PRIV_H
#define RESBUS_SCHED_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>
/* libbsd's tree.h marks generated functions __unused without defining it. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>

#include <regex.h>

#include <ev.h>

#include "conf.h"
#include "sched.h"

enum ticket_state {
	TICKET_OPEN,
	TICKET_READY,
	TICKET_FAILED,
	TICKET_CLOSED,
};

/* As they appear in routing keys and notifications. */
static const char *const ticket_state_words[] = {
    [TICKET_OPEN] = "open",
    [TICKET_READY] = "ready",
    [TICKET_FAILED] = "failed",
    [TICKET_CLOSED] = "closed",
};

static const char *const ticket_state_names[] = {
    [TICKET_OPEN] = "OPEN",
    [TICKET_READY] = "READY",
    [TICKET_FAILED] = "FAILED",
    [TICKET_CLOSED] = "CLOSED",
};

enum resource_state {
	RES_STARTING,
	RES_UP,
	RES_RELEASING,
	RES_DELETE_REQUESTED,
	RES_DELETING,
	RES_ENDED,
	RES_NSTATES,
};

static const char *const resource_state_names[] = {
    [RES_STARTING] = "STARTING",
    [RES_UP] = "UP",
    [RES_RELEASING] = "RELEASING",
    [RES_DELETE_REQUESTED] = "DELETE_REQUESTED",
    [RES_DELETING] = "DELETING",
    [RES_ENDED] = "ENDED",
};

/* The list of its pool a resource sits on. */
enum pool_list {
	LIST_STARTING,
	LIST_FREE,     /* UP, never assigned */
	LIST_RELEASED, /* UP, idle, bound to a sandbox */
	LIST_TAKEN,
	LIST_RELEASING,
	LIST_DELETING, /* DELETE_REQUESTED and DELETING */
	LIST_FAILING,  /* UP, not taken, its latest livechecks failed:
			* handed to no ticket until one passes */
	LIST_COUNT,
};

#define REUSE_BONUS 500		  /* resalloc's REUSED_RESOURCE_PRIORITY */
#define POOL_BACKOFF_MAX_MS 60000 /* the longest wait after failed starts */

struct counter_value {
	char *name;
	uint32_t value;
};

struct ticket;
struct pool;

struct resource {
	RB_ENTRY(resource) by_id;
	TAILQ_ENTRY(resource)
	entry; /* on pool->lists[list]; ENDED: on
		* sched->ended */
	uint64_t id;
	struct pool *pool;
	char *name;
	enum resource_state state;
	enum pool_list list;
	struct ticket *ticket;
	int32_t id_in_pool;
	void *data;
	size_t data_len;
	int64_t created_ms;
	char *sandbox; /* NULL until first assigned */
	int64_t sandboxed_since_ms;
	int64_t released_at_ms;
	int32_t releases;
	int32_t check_failed; /* consecutive livecheck failures */
	bool check_inflight;
	struct counter_value *counters;
	size_t ncounters;
	struct ticket *for_ticket; /* the on-demand ticket it is for */
	ev_timer live_timer;	   /* next livecheck */
	ev_timer reuse_timer;	   /* end of the reuse window */
	ev_timer start_timer;	   /* start_timeout */
};
TAILQ_HEAD(resource_list, resource);

struct pool {
	TAILQ_ENTRY(pool) entry;
	char *name;
	const struct conf_pool *conf; /* NULL: no longer configured */
	struct resource_list lists[LIST_COUNT];
	size_t counts[LIST_COUNT];
	size_t failing_unused; /* on LIST_FAILING, never assigned */
	int64_t last_start_ms;
	ev_timer delay_timer; /* start_delay expiry */
	ev_timer list_timer;  /* cmd_list sweeps */
	uint64_t list_sweep;  /* the latest sweep sent */
	bool list_pending;    /* its answer has not come */
	bool paused;	      /* an operator stopped starts */
	unsigned fail_streak; /* starts failed or timed out */
	uint64_t starts_ok, starts_failed;
	double start_ms_sum;			/* of successful starts */
	uint64_t start_le[SCHED_START_BUCKETS]; /* see sched_pool_view */
	struct sched *sched;
};

struct tagset_provider {
	struct pool *pool;
	int64_t score;
	int64_t fit; /* sum of numeric tag values */
};

struct tagset {
	RB_ENTRY(tagset) by_key;
	TAILQ_ENTRY(tagset) busy_entry; /* on sched->busy if waiting */
	bool busy;
	RB_ENTRY(tagset) queue_entry; /* in sched->queue if waiting */
	TAILQ_ENTRY(tagset)
	od_entry; /* on sched->ondemand if busy and
		   * on-demand */
	bool in_od;
	int64_t q_prio; /* its key there, as inserted */
	bool q_ondemand;
	uint64_t q_head;
	bool persisted; /* has a row and a queue */
	char *key;
	char *class_;		      /* the class of this lane, or NULL */
	const struct conf_class *cls; /* resolved per configuration */
	char **tags;
	size_t ntags;
	TAILQ_HEAD(, ticket) waiting; /* FIFO of OPEN tickets */
	size_t nwaiting;
	struct tagset_provider *providers; /* best score first */
	size_t nproviders;
	unsigned providers_gen;
	bool ondemand; /* has a tag that is on-demand */
	RB_HEAD(ticket_sandboxes, ticket) by_sandbox; /* waiting, with one */
	size_t ntickets;		/* in memory (not CLOSED) */
	TAILQ_ENTRY(tagset) idle_entry; /* on sched->idle if none */
	bool idle;
	int64_t idle_since_ms; /* monotonic */
};

struct ticket {
	RB_ENTRY(ticket) by_id;
	RB_ENTRY(ticket) by_idem;
	RB_ENTRY(ticket) by_sandbox; /* in ts->by_sandbox if waiting */
	TAILQ_ENTRY(ticket) wait_entry;
	TAILQ_ENTRY(ticket) closed_entry; /* on sched->closed once CLOSED */
	uint64_t id;
	char *idem_key;
	struct tagset *ts;
	char *sandbox;
	enum ticket_state state;
	struct resource *res;
	uint64_t resource_id; /* kept after the resource ends */
	int64_t created_ms;
	struct resource *pending; /* on-demand start made for it */
	void *failed_data;	  /* data of a resource that died */
	size_t failed_len;
	char *res_name; /* the resource it got, kept */
	char *res_pool; /* after it is gone */
	char *owner;	/* the AMQP user, or NULL */
	char *delegate; /* who took it for owner, or NULL */
	char *labels;	/* "key=value\n...", or NULL */
	char *class_;	/* or NULL: the default class */
	uint32_t lease_s;
	int64_t deadline_ms;
	const char *closed_reason; /* static text, or NULL */
	char *reply_to;		   /* hears READY/FAILED, or NULL */
	struct pool *charged;	   /* counted in limits for this pool */
	struct pool *avoid;	   /* its start failed there */
	ev_timer lease_timer;	   /* the holder must renew by then */
	ev_timer deadline_timer;   /* served by then, or closed */
	struct sched *sched;
};

/* The tickets in memory (not CLOSED) of one owner. */
struct owner_count {
	RB_ENTRY(owner_count) entry;
	char *owner;
	size_t n;
};

/* What a usage counter counts: a limit per owner or in total, or a
 * class's cap on a pool. */
enum usage_kind {
	USAGE_LIMIT_OWNER, /* limits[limit] for owner */
	USAGE_LIMIT_TOTAL, /* limits[limit] for everyone */
	USAGE_CLASS_CAP,   /* class_ on pool */
};

/* A usage counter's key, compared field by field; unused fields NULL/0. */
struct usage_key {
	enum usage_kind kind;
	size_t limit; /* index in server.yaml's limits */
	char *owner;
	char *class_;
	char *pool;
};

/* A usage counter of limits and class caps; its key's strings are its
 * own. */
struct usage {
	RB_ENTRY(usage) entry;
	struct usage_key key;
	int64_t n;
};

RB_HEAD(usages, usage);
RB_HEAD(owner_counts, owner_count);
RB_HEAD(ticket_ids, ticket);
RB_HEAD(ticket_idems, ticket);
RB_HEAD(resource_ids, resource);
RB_HEAD(tagset_keys, tagset);
RB_HEAD(lane_queue, tagset);

struct sched {
	struct ev_loop *loop;
	struct store *store;
	char *prefix;
	const struct conf_pools *conf;
	unsigned conf_gen;
	struct sched_ops ops;
	TAILQ_HEAD(, pool) pools;
	struct ticket_ids tickets;
	struct ticket_idems idems;
	struct resource_ids resources;
	struct tagset_keys tagsets;
	TAILQ_HEAD(, tagset) busy;
	struct lane_queue queue;       /* busy lanes, next to serve first */
	TAILQ_HEAD(, tagset) ondemand; /* busy on-demand lanes */
	unsigned queue_gen;	       /* conf_gen of the queue's keys */
	size_t nopen;		       /* waiting */
	size_t nready, nfailed;
	uint64_t last_ticket_id;
	uint64_t last_resource_id;
	bool dirty;
	const struct conf_server *policy; /* classes, limits, tag rules */
	regex_t *rules;			  /* compiled tag_rules[].match */
	size_t nrules;
	struct usages usages;
	struct owner_counts owners;
	size_t ntagsets; /* lanes in memory */
	TAILQ_HEAD(, tagset)
	idle;		     /* lanes without tickets, oldest
			      * idle first */
	ev_timer idle_timer; /* the sweep that retires them */
	/* Tickets CLOSED and resources ENDED in this iteration: freed by
	 * reap, the last thing before the loop sleeps, so that nothing a
	 * callback still holds is freed under it. */
	TAILQ_HEAD(, ticket) closed;
	struct resource_list ended;
	ev_prepare reap;
	char view_reason[256];
};

static inline int
ticket_cmp(const struct ticket *a, const struct ticket *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Idempotency keys are per owner: one owner cannot reach another's. */
static inline int
ticket_idem_cmp(const struct ticket *a, const struct ticket *b)
{
	int c = strcmp(a->owner ? a->owner : "", b->owner ? b->owner : "");

	return c != 0 ? c : strcmp(a->idem_key, b->idem_key);
}

static inline int
resource_cmp(const struct resource *a, const struct resource *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Lanes: one per tag set and class, NULL class first. */
static inline int
tagset_cmp(const struct tagset *a, const struct tagset *b)
{
	int c = strcmp(a->key, b->key);

	if (c != 0)
		return c;
	if (a->class_ == NULL || b->class_ == NULL)
		return (a->class_ != NULL) - (b->class_ != NULL);
	return strcmp(a->class_, b->class_);
}

/* Waiting tickets of a tag set by sandbox, oldest first within one. */
static inline int
ticket_sandbox_cmp(const struct ticket *a, const struct ticket *b)
{
	int c = strcmp(a->sandbox, b->sandbox);

	if (c != 0)
		return c;
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE_STATIC(ticket_ids, ticket, by_id, ticket_cmp)
RB_GENERATE_STATIC(ticket_idems, ticket, by_idem, ticket_idem_cmp)
RB_GENERATE_STATIC(resource_ids, resource, by_id, resource_cmp)
RB_GENERATE_STATIC(tagset_keys, tagset, by_key, tagset_cmp)

/*
 * The order lanes are served in: higher classes first, then on-demand
 * lanes (as resalloc serves on-demand tickets first), then the oldest
 * waiting ticket first.
 */
static inline int
lane_cmp(const struct tagset *x, const struct tagset *y)
{
	if (x->q_prio != y->q_prio)
		return x->q_prio > y->q_prio ? -1 : 1;
	if (x->q_ondemand != y->q_ondemand)
		return x->q_ondemand ? -1 : 1;
	if (x->q_head != y->q_head)
		return x->q_head < y->q_head ? -1 : 1;
	return x < y ? -1 : x > y;
}

RB_GENERATE_STATIC(lane_queue, tagset, queue_entry, lane_cmp)
RB_GENERATE_STATIC(ticket_sandboxes, ticket, by_sandbox, ticket_sandbox_cmp)

/* Two strings, either of which may be NULL (first). */
static inline int
usage_strcmp(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static inline int
usage_cmp(const struct usage *a, const struct usage *b)
{
	const struct usage_key *x = &a->key, *y = &b->key;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->limit != y->limit)
		return x->limit < y->limit ? -1 : 1;
	if ((c = usage_strcmp(x->owner, y->owner)) != 0)
		return c;
	if ((c = usage_strcmp(x->class_, y->class_)) != 0)
		return c;
	return usage_strcmp(x->pool, y->pool);
}

RB_GENERATE_STATIC(usages, usage, entry, usage_cmp)

static inline int
owner_count_cmp(const struct owner_count *a, const struct owner_count *b)
{
	return strcmp(a->owner, b->owner);
}

RB_GENERATE_STATIC(owner_counts, owner_count, entry, owner_count_cmp)

/* ---- shared between the pieces ------------------------------------ */

/* sched.c: the scheduler, its pools and its observer. */
struct pool *sched_pool_new(struct sched *s, const char *name);
struct pool *sched_pool_find(struct sched *s, const char *name);
size_t sched_pool_alive(const struct pool *p);
void sched_observe_ticket(
    struct sched *s, const struct ticket *t, const char *what);
void sched_observe_resource(
    struct sched *s, const struct resource *r, const char *what);
void sched_adopt_starts(struct sched *s);
void sched_reap_now(struct sched *s);
char *sched_dup_or_null(const char *s);
/* Log lines about one resource ("resource ID NAME: ...") or one ticket
 * ("ticket ID: ..."), as log_info, log_warnx and log_debug. */
void rlog_info(const struct resource *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rlog_warnx(const struct resource *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rlog_debug(const struct resource *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tlog_info(const struct ticket *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sched_resource.c: resources, the only functions that move their state. */
void sched_pending_link(struct sched *s, struct ticket *t, struct resource *r);
void sched_pending_unlink(struct sched *s, struct resource *r);
void sched_resource_link(struct resource *r);
void sched_resource_relist(struct sched *s, struct resource *r);
bool sched_resource_released(const struct resource *r);
void sched_resource_move(
    struct sched *s, struct resource *r, enum resource_state state);
struct resource *sched_resource_start(struct sched *s, struct pool *p);
void sched_resource_free(struct sched *s, struct resource *r);
void sched_resource_send_delete(struct sched *s, struct resource *r);
void sched_resource_cancel(struct sched *s, struct resource *r);
void sched_resource_release(
    struct sched *s, struct resource *r, const struct ticket *t);
void sched_resource_kill(struct sched *s, struct resource *r, const char *why);
bool sched_resource_reusable(const struct resource *r);
void sched_resource_arm_timers(struct sched *s, struct resource *r);
void sched_resource_livecheck_due(
    struct ev_loop *loop, ev_timer *w, int revents);
void sched_resource_reuse_over(struct ev_loop *loop, ev_timer *w, int revents);
void sched_resource_start_late(struct ev_loop *loop, ev_timer *w, int revents);

/* sched_lane.c: lanes (tag set + class), their FIFOs' places, providers. */
struct tagset *sched_tagset_get(
    struct sched *s, const char *key, const char *class_);
bool sched_tagset_exists(struct sched *s, const char *key, const char *class_);
void sched_tagset_idle_add(struct sched *s, struct tagset *ts);
void sched_tagset_free(struct sched *s, struct tagset *ts);
void sched_tagset_drop_unused(struct sched *s, struct tagset *ts);
void sched_ticket_bind(struct sched *s, struct ticket *t, struct tagset *ts);
void sched_ticket_unbind(struct sched *s, struct ticket *t);
void sched_tagset_providers(struct sched *s, struct tagset *ts);
void sched_tagset_unprovided(
    struct sched *s, const struct tagset *ts, char *buf, size_t len);
void sched_tagset_update_busy(struct sched *s, struct tagset *ts);
void sched_tagset_sweep(struct ev_loop *loop, ev_timer *w, int revents);
void sched_tagset_sweep_arm(struct sched *s);

/* sched_ticket.c: tickets, the only functions that move their state. */
struct ticket *sched_ticket_find(struct sched *s, uint64_t id);
void sched_waiting_add(struct sched *s, struct ticket *t);
struct ticket *sched_waiting_without_start(
    struct tagset *ts, const struct ticket *but);
void sched_ticket_move(
    struct sched *s, struct ticket *t, enum ticket_state state);
void sched_ticket_assign(struct sched *s, struct ticket *t, struct resource *r);
void sched_ticket_end(struct sched *s, struct ticket *t, const char *reason);
bool sched_ticket_expired(struct sched *s, struct ticket *t);
void sched_ticket_free(struct ticket *t);

/* sched_intake.c: tickets in; their lease and deadline. */
void sched_ticket_arm(struct sched *s, struct ticket *t);

/* sched_step.c: the scheduling step. */
bool sched_pool_can_start(
    struct sched *s, struct pool *p, char *why, size_t len);

/* sched_view.c: T and R as the faces see them (for the observer too). */
void sched_ticket_describe(struct sched *s, const struct ticket *t,
    struct sched_ticket_info *info, bool with_reason);
void sched_resource_describe(const struct resource *r,
    void (*fn)(void *arg, const struct sched_resource_view *v), void *arg);

/* sched_policy.c: classes, limits, caps, tag rules. */
const struct conf_class *sched_policy_class(
    const struct sched *s, const char *name);
void sched_ticket_charge(struct sched *s, struct ticket *t);
void sched_usage_recount(struct sched *s);
void sched_usage_free(struct sched *s);
size_t sched_owner_count_get(struct sched *s, const char *owner);
void sched_owner_count_add(struct sched *s, const char *owner, int delta);
bool sched_limits_block(
    struct sched *s, const struct ticket *t, char *why, size_t len);
bool sched_cap_allows(
    struct sched *s, const struct ticket *t, const struct pool *p);
char *sched_policy_apply_rules(
    struct sched *s, const char *key, const char *labels, const char *owner);

/* sched_store.c: write-through (in the iteration's transaction). */
void sched_begin(struct sched *s);
void sched_put_ticket(struct sched *s, const struct ticket *t);
void sched_put_resource(struct sched *s, const struct resource *r);
void sched_put_meta(struct sched *s, const char *key, int64_t value);
void sched_del_tagset(struct sched *s, const char *key);

/* sched_wire.c: jobs and ticket updates out, job results in. */
void sched_resource_send(struct sched *s, const struct resource *r,
    const ProtobufCMessageDescriptor *kind);
void sched_ticket_emit(struct sched *s, const struct ticket *t);
void sched_pool_list_due(struct ev_loop *loop, ev_timer *w, int revents);

#endif
