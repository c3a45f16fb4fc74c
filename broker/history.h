/*
 * history -- what the broker looked like over the last hours, in memory.
 *
 * Every history_interval_s (server.yaml, 60 by default) a libev timer
 * takes one sample from the scheduler's views: the tickets waiting per
 * tag set, the live resources per pool and state, and the time from
 * ticket to READY of the tickets that got a resource since the previous
 * sample (how many, the median and the maximum).  The last
 * HISTORY_SAMPLES samples are kept in ring buffers, so the memory is
 * fixed whatever happens: 360 samples are 6 hours at the default
 * interval.  No database, nothing survives a restart.
 *
 * The number of series is bounded too: at most HISTORY_MAX_TAGSETS tag
 * sets and HISTORY_MAX_POOLS pools have series of their own.  Tag sets
 * and pools that come while the table is full are added up in one
 * "other" series (name NULL) until a series frees its place, which
 * happens when no sample of the whole window named it.
 *
 * The status page draws these as charts and /api/v1/history gives them
 * as JSON (histview.c).
 */
#ifndef RESBUS_HISTORY_H
#define RESBUS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HISTORY_SAMPLES 360
#define HISTORY_MAX_TAGSETS 16
#define HISTORY_MAX_POOLS 16
/* Waits kept per interval for the median; more are sampled at random. */
#define HISTORY_READY_KEEP 512

/* The states of resources a pool's series count, as /api/v1/pools. */
enum history_state {
	HISTORY_STARTING,
	HISTORY_FREE,
	HISTORY_RELEASED,
	HISTORY_TAKEN,
	HISTORY_RELEASING,
	HISTORY_DELETING,
	HISTORY_NSTATES
};
extern const char *const history_state_names[HISTORY_NSTATES];

/* The time from ticket to READY, per sample interval. */
enum history_ready {
	HISTORY_READY_COUNT, /* tickets that got READY in the interval */
	HISTORY_READY_P50_MS,
	HISTORY_READY_MAX_MS,
	HISTORY_READY_N
};

struct ev_loop;
struct sched;
struct sched_event;
struct history;

/*
 * An empty history for samples INTERVAL_S seconds apart.  Nothing is
 * sampled until history_run().  Caller frees with history_free().
 */
struct history *history_new(double interval_s);
/* Stops the timer, if any, and frees H (NULL is fine). */
void history_free(struct history *h);
/*
 * Samples SCHED (borrowed; must outlive H) now and then every interval
 * on LOOP.
 */
void history_run(struct history *h, struct ev_loop *loop, struct sched *sched);
/* Takes one sample of SCHED now (the timer's work). */
void history_sample(struct history *h, struct sched *sched);

/*
 * One sample by hand, as history_sample() takes it: begin at wall-clock
 * WALL_MS, add the values, end.  A name added twice in one sample is
 * added up.
 */
void history_sample_begin(struct history *h, int64_t wall_ms);
void history_add_waiting(struct history *h, const char *key, size_t n);
void history_add_pool(
    struct history *h, const char *pool, const size_t counts[HISTORY_NSTATES]);
void history_sample_end(struct history *h);

/* A ticket became READY after WAIT_MS; it counts in the next sample. */
void history_ready(struct history *h, int64_t wait_ms);
/* The scheduler's observer: tickets that became READY (H may be NULL). */
void history_observe(struct history *h, const struct sched_event *ev);

/* ---- reading: sample I is 0 for the oldest held ------------------------ */

double history_interval_s(const struct history *h);
/* Samples held, at most HISTORY_SAMPLES. */
size_t history_samples(const struct history *h);
/* When sample I was taken (wall clock, ms). */
int64_t history_time_ms(const struct history *h, size_t i);

/*
 * Tag-set series J (0 .. history_tagsets() - 1), by key; the "other"
 * series, if any, is last and its name is NULL.
 */
size_t history_tagsets(const struct history *h);
const char *history_tagset(const struct history *h, size_t j);
uint32_t history_waiting(const struct history *h, size_t j, size_t i);

/* Pool series J, by name; the "other" one last with a NULL name. */
size_t history_pools(const struct history *h);
const char *history_pool(const struct history *h, size_t j);
uint32_t history_resources(
    const struct history *h, size_t j, enum history_state state, size_t i);

/* The time to READY of sample I's interval (0 when no ticket got ready). */
uint32_t history_ready_at(
    const struct history *h, enum history_ready what, size_t i);

#endif
