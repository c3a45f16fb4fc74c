/*
 * broker -- resbusd's messaging: consumers, handlers, group commit, outbox.
 *
 * One libev loop drives one AMQP connection.  Messages handled in a loop
 * iteration change memory (sched) and open the store transaction; before
 * the loop sleeps, an ev_prepare watcher runs the scheduling step,
 * commits, publishes what the iteration produced, and only then
 * acknowledges the messages it consumed.  Jobs and events are written to
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
struct broker;

/*
 * Loads the store's state, connects to AMQP_URL, declares the topology
 * and starts consuming.  SERVER, POOLS and STORE are borrowed and must
 * outlive the broker.  NULL (after logging why) on failure.
 */
struct broker *broker_new(struct ev_loop *loop, const char *amqp_url,
    const struct conf_server *server, const struct conf_pools *pools,
    struct store *store);
/*
 * Switches to POOLS (already loaded and validated; borrowed like
 * broker_new's): declares queues of new pools and hands them to the
 * scheduler.  0, or -1 when the bus refused, and the old pools stay.
 */
int broker_reload(struct broker *b, const struct conf_pools *pools)
	__attribute__((warn_unused_result));
/* Commits what is pending and releases everything. */
void broker_free(struct broker *b);

#endif
