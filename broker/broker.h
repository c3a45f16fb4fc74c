/*
 * broker -- resbusd's messaging: consumers, handlers, group commit, outbox.
 *
 * One libev loop drives two AMQP connections: one consumes and
 * acknowledges, the other publishes with confirms.  Messages handled in a
 * loop iteration change memory (sched) and open the store transaction;
 * before the loop sleeps, an ev_prepare watcher runs the scheduling
 * step, commits, publishes what the iteration produced, and only once
 * RabbitMQ confirms that acknowledges the messages it consumed.  Jobs
 * and events are written to
 * the outbox table in the same transaction and deleted once RabbitMQ
 * confirms them, so a crash between commit and publish re-sends them at
 * the next start.
 */
#ifndef RESBUS_BROKER_H
#define RESBUS_BROKER_H

struct ev_loop;
struct conf_server;
struct conf_pools;
struct store;
struct bus;
struct broker;

#include <stddef.h>

/*
 * Loads the store's state, opens two connections to AMQP_URL, one that
 * consumes and one that publishes (or takes over BUS and PUB,
 * connections already open there, when not NULL: taken even on
 * failure), declares the topology and starts consuming.  SERVER and
 * STORE are borrowed and must outlive the broker; the broker takes
 * ownership of POOLS, read from POOLS_PATH (which reloads read again).
 * NULL (after logging why) on failure.
 */
struct broker *broker_new(struct ev_loop *loop, const char *amqp_url,
    const struct conf_server *server, struct conf_pools *pools,
    const char *pools_path, struct store *store, struct bus *bus,
    struct bus *pub);
/*
 * Reads pools.yaml again and switches to it: declares the queues of new
 * pools and hands them to the scheduler.  0, or -1 with the reason in
 * ERR (a bad file, or the bus refused), and the running pools stay.
 */
int broker_reload(struct broker *b, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Commits what is pending and releases everything. */
void broker_free(struct broker *b);
/*
 * This broker leads the store since SINCE_MS (wall clock) with fencing
 * EPOCH; WHO ("pid N on HOST") is copied.  For the faces and the
 * store's keep-alive (a PostgreSQL session idle for leader_lease_s ends,
 * and its leadership with it).
 */
void broker_set_leader(
    struct broker *b, const char *who, int64_t epoch, int64_t since_ms);

#endif
