/*
 * history -- ring buffers of the broker's recent past (history.h).
 *
 * All series share one clock: sample I of every series was taken at
 * times[I], and a sample writes the same slot of every ring.  A series
 * made in the middle of the window has zeros before it: a tag set that
 * did not exist had no waiting tickets, a pool no resources.  So a ring
 * needs no clock of its own, and reading sample I of any series is one
 * index computation.
 *
 * A group (tag sets, pools) holds at most its cap of named series,
 * sorted by name for a stable order on the page, and one "other" series
 * for the rest.  A series remembers the last sample that named it
 * (seen); one not named for HISTORY_SAMPLES samples holds only zeros
 * and is dropped at the end of a sample, which frees its place.
 *
 * The time to READY is gathered between samples: every READY counts and
 * raises the maximum, and up to HISTORY_READY_KEEP waits are kept for
 * the median (beyond that, reservoir sampling keeps a uniform choice, so
 * a burst costs fixed memory).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "history.h"
#include "sched.h"
#include "util.h"

const char *const history_state_names[HISTORY_NSTATES] = {
    [HISTORY_STARTING] = "starting",
    [HISTORY_FREE] = "free",
    [HISTORY_RELEASED] = "released",
    [HISTORY_TAKEN] = "taken",
    [HISTORY_RELEASING] = "releasing",
    [HISTORY_DELETING] = "deleting",
};

struct series {
	char *name;    /* NULL: the other series */
	uint64_t seen; /* the last sample that named it */
	uint32_t *v;   /* rows x HISTORY_SAMPLES */
};

struct group {
	size_t rows;	   /* values per sample */
	size_t cap;	   /* named series at most */
	struct series **s; /* named, by name */
	size_t n;
	struct series *other; /* NULL until needed */
};

struct history {
	double interval_s;
	int64_t times[HISTORY_SAMPLES];
	size_t head;  /* the slot of the newest sample */
	size_t count; /* samples held */
	uint64_t seq; /* samples taken, ever */
	struct group tagsets, pools;
	uint32_t ready[HISTORY_READY_N][HISTORY_SAMPLES];
	/* the interval being gathered */
	uint64_t ready_count;
	int64_t ready_max_ms;
	int64_t keep[HISTORY_READY_KEEP];
	size_t nkeep;
	uint64_t rng;
	/* the timer, once history_run() */
	struct ev_loop *loop;
	struct sched *sched;
	ev_timer timer;
};

/* ---- groups of series ---------------------------------------------------- */

static void
group_init(struct group *g, size_t rows, size_t cap)
{
	g->rows = rows;
	g->cap = cap;
	g->s = xcalloc(cap, sizeof(*g->s));
	g->n = 0;
	g->other = NULL;
}

static struct series *
series_new(const struct group *g, const char *name)
{
	struct series *s = xcalloc(1, sizeof(*s));

	s->name = name != NULL ? xstrdup(name) : NULL;
	s->v = xcalloc(g->rows * HISTORY_SAMPLES, sizeof(*s->v));
	return s;
}

static void
series_free(struct series *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->v);
	free(s);
}

static void
group_release(struct group *g)
{
	size_t j;

	for (j = 0; j < g->n; j++)
		series_free(g->s[j]);
	free(g->s);
	series_free(g->other);
}

/*
 * The series of NAME: found, made in its sorted place while the group
 * has room, else the other series.
 */
static struct series *
group_get(struct group *g, const char *name)
{
	size_t lo = 0, hi = g->n, mid;
	int cmp;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcmp(name, g->s[mid]->name);
		if (cmp == 0)
			return g->s[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (g->n < g->cap) {
		memmove(&g->s[lo + 1], &g->s[lo], (g->n - lo) * sizeof(*g->s));
		g->s[lo] = series_new(g, name);
		g->n++;
		return g->s[lo];
	}
	if (g->other == NULL)
		g->other = series_new(g, NULL);
	return g->other;
}

/* Zeroes slot SLOT of every ring of G. */
static void
group_clear_slot(struct group *g, size_t slot)
{
	size_t j, r;

	for (j = 0; j < g->n; j++)
		for (r = 0; r < g->rows; r++)
			g->s[j]->v[r * HISTORY_SAMPLES + slot] = 0;
	if (g->other != NULL)
		for (r = 0; r < g->rows; r++)
			g->other->v[r * HISTORY_SAMPLES + slot] = 0;
}

/* Drops the series no sample of the window named (all zeros). */
static void
group_expire(struct group *g, uint64_t seq)
{
	size_t j = 0;

	while (j < g->n) {
		if (seq - g->s[j]->seen >= HISTORY_SAMPLES) {
			series_free(g->s[j]);
			memmove(&g->s[j], &g->s[j + 1],
			    (g->n - j - 1) * sizeof(*g->s));
			g->n--;
		} else {
			j++;
		}
	}
	if (g->other != NULL && seq - g->other->seen >= HISTORY_SAMPLES) {
		series_free(g->other);
		g->other = NULL;
	}
}

static size_t
group_len(const struct group *g)
{
	return g->n + (g->other != NULL ? 1 : 0);
}

static const struct series *
group_at(const struct group *g, size_t j)
{
	return j < g->n ? g->s[j] : g->other;
}

static uint32_t
add_sat(uint32_t a, size_t b)
{
	return b >= (size_t)(UINT32_MAX - a) ? UINT32_MAX : a + (uint32_t)b;
}

/* ---- the history --------------------------------------------------------- */

struct history *
history_new(double interval_s)
{
	struct history *h = xcalloc(1, sizeof(*h));

	h->interval_s = interval_s;
	group_init(&h->tagsets, 1, HISTORY_MAX_TAGSETS);
	group_init(&h->pools, HISTORY_NSTATES, HISTORY_MAX_POOLS);
	h->rng = 0x9e3779b97f4a7c15ULL;
	return h;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	if (h->loop != NULL)
		ev_timer_stop(h->loop, &h->timer);
	group_release(&h->tagsets);
	group_release(&h->pools);
	free(h);
}

void
history_sample_begin(struct history *h, int64_t wall_ms)
{
	size_t k;

	h->head = h->count == 0 ? 0 : (h->head + 1) % HISTORY_SAMPLES;
	if (h->count < HISTORY_SAMPLES)
		h->count++;
	h->seq++;
	h->times[h->head] = wall_ms;
	group_clear_slot(&h->tagsets, h->head);
	group_clear_slot(&h->pools, h->head);
	for (k = 0; k < HISTORY_READY_N; k++)
		h->ready[k][h->head] = 0;
}

void
history_add_waiting(struct history *h, const char *key, size_t n)
{
	struct series *s;

	if (h->count == 0)
		return;
	s = group_get(&h->tagsets, key);
	s->v[h->head] = add_sat(s->v[h->head], n);
	s->seen = h->seq;
}

void
history_add_pool(
    struct history *h, const char *pool, const size_t counts[HISTORY_NSTATES])
{
	struct series *s;
	size_t k;
	uint32_t *v;

	if (h->count == 0)
		return;
	s = group_get(&h->pools, pool);
	for (k = 0; k < HISTORY_NSTATES; k++) {
		v = &s->v[k * HISTORY_SAMPLES + h->head];
		*v = add_sat(*v, counts[k]);
	}
	s->seen = h->seq;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
clamp_u32(int64_t v)
{
	if (v < 0)
		return 0;
	return v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void
history_sample_end(struct history *h)
{
	if (h->count == 0)
		return;
	if (h->ready_count > 0) {
		qsort(h->keep, h->nkeep, sizeof(h->keep[0]), cmp_i64);
		h->ready[HISTORY_READY_COUNT][h->head] =
		    h->ready_count > UINT32_MAX ? UINT32_MAX
						: (uint32_t)h->ready_count;
		h->ready[HISTORY_READY_P50_MS][h->head] =
		    clamp_u32(h->keep[(h->nkeep - 1) / 2]);
		h->ready[HISTORY_READY_MAX_MS][h->head] =
		    clamp_u32(h->ready_max_ms);
	}
	h->ready_count = 0;
	h->ready_max_ms = 0;
	h->nkeep = 0;
	group_expire(&h->tagsets, h->seq);
	group_expire(&h->pools, h->seq);
}

/* xorshift64: enough to pick which kept wait a new one replaces. */
static uint64_t
history_random(struct history *h)
{
	h->rng ^= h->rng << 13;
	h->rng ^= h->rng >> 7;
	h->rng ^= h->rng << 17;
	return h->rng;
}

void
history_ready(struct history *h, int64_t wait_ms)
{
	uint64_t r;

	if (wait_ms < 0)
		wait_ms = 0;
	h->ready_count++;
	if (wait_ms > h->ready_max_ms)
		h->ready_max_ms = wait_ms;
	if (h->nkeep < HISTORY_READY_KEEP) {
		h->keep[h->nkeep++] = wait_ms;
		return;
	}
	r = history_random(h) % h->ready_count;
	if (r < HISTORY_READY_KEEP)
		h->keep[r] = wait_ms;
}

void
history_observe(struct history *h, const struct sched_event *ev)
{
	if (h == NULL || ev->kind != SCHED_EV_TICKET || ev->ticket == NULL ||
	    strcmp(ev->what, "ready") != 0 || ev->ticket->created_ms <= 0)
		return;
	history_ready(h, now_wall_ms() - ev->ticket->created_ms);
}

/* ---- sampling the scheduler ---------------------------------------------- */

static void
sample_lane(void *arg, const char *key, const char *class_, size_t n)
{
	history_add_waiting(arg, key, n);
}

static void
sample_pool(void *arg, const struct sched_pool_view *v)
{
	size_t counts[HISTORY_NSTATES];

	counts[HISTORY_STARTING] = v->starting;
	counts[HISTORY_FREE] = v->free;
	counts[HISTORY_RELEASED] = v->released;
	counts[HISTORY_TAKEN] = v->taken;
	counts[HISTORY_RELEASING] = v->releasing;
	counts[HISTORY_DELETING] = v->deleting;
	history_add_pool(arg, v->name, counts);
}

void
history_sample(struct history *h, struct sched *sched)
{
	history_sample_begin(h, now_wall_ms());
	sched_foreach_waiting(sched, sample_lane, h);
	sched_foreach_pool(sched, sample_pool, h);
	history_sample_end(h);
}

static void
history_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct history *h = container_of(w, struct history, timer);

	history_sample(h, h->sched);
}

void
history_run(struct history *h, struct ev_loop *loop, struct sched *sched)
{
	h->loop = loop;
	h->sched = sched;
	history_sample(h, sched);
	ev_timer_init(&h->timer, history_tick, h->interval_s, h->interval_s);
	ev_timer_start(loop, &h->timer);
}

/* ---- reading ------------------------------------------------------------- */

/* The ring slot of sample I (0: the oldest held). */
static size_t
history_slot(const struct history *h, size_t i)
{
	return (h->head + HISTORY_SAMPLES + 1 - h->count + i) % HISTORY_SAMPLES;
}

double
history_interval_s(const struct history *h)
{
	return h->interval_s;
}

size_t
history_samples(const struct history *h)
{
	return h->count;
}

int64_t
history_time_ms(const struct history *h, size_t i)
{
	return i < h->count ? h->times[history_slot(h, i)] : 0;
}

size_t
history_tagsets(const struct history *h)
{
	return group_len(&h->tagsets);
}

const char *
history_tagset(const struct history *h, size_t j)
{
	const struct series *s = group_at(&h->tagsets, j);

	return s != NULL ? s->name : NULL;
}

uint32_t
history_waiting(const struct history *h, size_t j, size_t i)
{
	const struct series *s = group_at(&h->tagsets, j);

	if (s == NULL || i >= h->count)
		return 0;
	return s->v[history_slot(h, i)];
}

size_t
history_pools(const struct history *h)
{
	return group_len(&h->pools);
}

const char *
history_pool(const struct history *h, size_t j)
{
	const struct series *s = group_at(&h->pools, j);

	return s != NULL ? s->name : NULL;
}

uint32_t
history_resources(
    const struct history *h, size_t j, enum history_state state, size_t i)
{
	const struct series *s = group_at(&h->pools, j);

	if (s == NULL || i >= h->count || state >= HISTORY_NSTATES)
		return 0;
	return s->v[state * HISTORY_SAMPLES + history_slot(h, i)];
}

uint32_t
history_ready_at(const struct history *h, enum history_ready what, size_t i)
{
	if (i >= h->count || what >= HISTORY_READY_N)
		return 0;
	return h->ready[what][history_slot(h, i)];
}
