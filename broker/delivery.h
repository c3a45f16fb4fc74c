/*
 * delivery -- how often a redelivered message was seen, so that a
 * message that kills resbusd while it is handled cannot keep it down.
 *
 * A message is known by a fingerprint of its routing, properties and
 * body (delivery_fp()).  Its count lives in memory and, durably, in the
 * store's meta table ("delivery.<fp>"), written in the transaction of
 * the iteration that saw it; the broker holds the message until that
 * commit (outbox.h's batch), so a count is never lost to the crash it
 * counts.  Past max_redeliveries the broker dead-letters it instead.
 * Counts not seen again for a week are dropped at start.
 */
#ifndef RESBUS_DELIVERY_H
#define RESBUS_DELIVERY_H

#include <stdint.h>

struct bus_delivery;
struct delivery_counts;
struct store;

/* An empty table of counts; caller frees with delivery_counts_free(). */
struct delivery_counts *delivery_counts_new(void);
/* Frees DC (NULL is fine); the store keeps its rows. */
void delivery_counts_free(struct delivery_counts *dc);

/* What identifies a message across its deliveries. */
uint64_t delivery_fp(const struct bus_delivery *d);

/*
 * One more delivery of FP, of which this process counts each message
 * once: *ATTEMPTS is how many times it was delivered to a resbusd that
 * stopped while handling it, this one included.  1 when that reaches
 * MAX and this process had not counted it yet: the caller dead-letters
 * it and drops its count.  Else 0 after writing the count to STORE in
 * its current transaction, or -1 when the store failed.
 */
int delivery_count(struct delivery_counts *dc, struct store *store, uint64_t fp,
    int64_t max, int64_t *attempts) __attribute__((warn_unused_result));
/* Forgets FP's count, in memory and (in this transaction) STORE: 0, or
 * -1 when the store failed. */
int delivery_count_drop(struct delivery_counts *dc, struct store *store,
    uint64_t fp) __attribute__((warn_unused_result));
/* The store's meta tap at load (ARG is the table): takes the rows of
 * delivery counts and ignores the others. */
void delivery_count_load(void *arg, const char *key, int64_t value);
/* Drops the counts of messages not seen again for a week: 0, or -1 when
 * the store failed. */
int delivery_counts_prune(struct delivery_counts *dc, struct store *store)
    __attribute__((warn_unused_result));

#endif
