/*
 * delivery -- the counts of redelivered messages, by fingerprint, in
 * memory (a red-black tree) and in the store's meta table.  See
 * delivery.h for why they are counted; broker.c holds the messages.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* libbsd's tree.h marks generated functions __unused without defining it. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <sys/tree.h>

#include "bus.h"
#include "delivery.h"
#include "store.h"
#include "util.h"

#define DELIVERY_META_PREFIX "delivery."
#define DELIVERY_KEEP_S (7 * 86400) /* counts older than this are dropped */

/* How often a redelivered message was seen, by fingerprint. */
struct delivery_count {
	RB_ENTRY(delivery_count) by_fp;
	uint64_t fp;
	int64_t value; /* seen (wall s) << 8 | attempts */
	bool this_run; /* counted by this process already */
};
RB_HEAD(delivery_counts, delivery_count);

static int
delivery_count_cmp(
    const struct delivery_count *a, const struct delivery_count *b)
{
	return a->fp < b->fp ? -1 : a->fp > b->fp;
}
RB_GENERATE_STATIC(delivery_counts, delivery_count, by_fp, delivery_count_cmp)

struct delivery_counts *
delivery_counts_new(void)
{
	struct delivery_counts *dc = xcalloc(1, sizeof(*dc));

	RB_INIT(dc);
	return dc;
}

void
delivery_counts_free(struct delivery_counts *dc)
{
	struct delivery_count *c, *next;

	if (dc == NULL)
		return;
	RB_FOREACH_SAFE(c, delivery_counts, dc, next)
	{
		RB_REMOVE(delivery_counts, dc, c);
		free(c);
	}
	free(dc);
}

/* FNV-1a over S (LEN bytes), continuing from H. */
static uint64_t
fnv1a(uint64_t h, const void *s, size_t len)
{
	const unsigned char *p = s;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
fnv1a_str(uint64_t h, const char *s)
{
	/* The terminating NUL keeps ("ab", "c") apart from ("a", "bc"). */
	return s != NULL ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "", 1);
}

uint64_t
delivery_fp(const struct bus_delivery *d)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv1a_str(h, d->exchange);
	h = fnv1a_str(h, d->routing_key);
	h = fnv1a_str(h, d->type);
	h = fnv1a_str(h, d->user_id);
	h = fnv1a_str(h, d->reply_to);
	h = fnv1a_str(h, d->correlation_id);
	h = fnv1a_str(h, d->message_id);
	return fnv1a(h, d->body, d->len);
}

static void
delivery_meta_key(uint64_t fp, char *buf, size_t len)
{
	snprintf(
	    buf, len, DELIVERY_META_PREFIX "%016llx", (unsigned long long)fp);
}

static struct delivery_count *
delivery_count_find(struct delivery_counts *dc, uint64_t fp)
{
	struct delivery_count k;

	k.fp = fp;
	return RB_FIND(delivery_counts, dc, &k);
}

int
delivery_count_drop(
    struct delivery_counts *dc, struct store *store, uint64_t fp)
{
	struct delivery_count *c = delivery_count_find(dc, fp);
	char key[64];

	if (c == NULL)
		return 0;
	RB_REMOVE(delivery_counts, dc, c);
	free(c);
	delivery_meta_key(fp, key, sizeof(key));
	if (store_begin(store) == -1 || store_del_meta(store, key) == -1)
		return -1;
	return 0;
}

int
delivery_count(struct delivery_counts *dc, struct store *store, uint64_t fp,
    int64_t max, int64_t *attempts)
{
	struct delivery_count *c;
	char key[64];

	c = delivery_count_find(dc, fp);
	/*
	 * One process counts a message once: copies of it (a client
	 * publishes an unanswered request again) and requeues within this
	 * run say nothing of a broker that stopped.
	 */
	*attempts = (c != NULL ? (c->value & 0xff) : 0) +
		    (c != NULL && c->this_run ? 0 : 1);
	if (*attempts >= max && (c == NULL || !c->this_run))
		return 1;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->fp = fp;
		RB_INSERT(delivery_counts, dc, c);
	}
	if (!c->this_run) {
		c->this_run = true;
		c->value = (now_wall_ms() / 1000) << 8 | *attempts;
		delivery_meta_key(fp, key, sizeof(key));
		if (store_begin(store) == -1 ||
		    store_put_meta(store, key, c->value) == -1)
			return -1;
	}
	return 0;
}

void
delivery_count_load(void *arg, const char *key, int64_t value)
{
	struct delivery_counts *dc = arg;
	struct delivery_count *c;
	uint64_t fp;

	if (strncmp(key, DELIVERY_META_PREFIX, strlen(DELIVERY_META_PREFIX)) !=
	    0)
		return;
	fp = strtoull(key + strlen(DELIVERY_META_PREFIX), NULL, 16);
	if (delivery_count_find(dc, fp) != NULL)
		return;
	c = xcalloc(1, sizeof(*c));
	c->fp = fp;
	c->value = value;
	RB_INSERT(delivery_counts, dc, c);
}

int
delivery_counts_prune(struct delivery_counts *dc, struct store *store)
{
	struct delivery_count *c, *next;
	int64_t now_s = now_wall_ms() / 1000;

	RB_FOREACH_SAFE(c, delivery_counts, dc, next)
	if ((c->value >> 8) + DELIVERY_KEEP_S < now_s &&
	    delivery_count_drop(dc, store, c->fp) == -1)
		return -1;
	return 0;
}
