/*
 * standby -- a resbusd that waits for the store's leadership.
 *
 * Until it leads, a standby keeps its store connection and the broker's
 * two AMQP connections open (declaring nothing but the brokers' queue),
 * tells the active broker every second that it waits (a BrokerStandby
 * on P.brokers), and tries to take the leadership every half second on
 * SQLite, every second on PostgreSQL.  When it leads, the broker takes
 * over all three connections: no connect on the way to serving.
 */
#ifndef RESBUS_STANDBY_H
#define RESBUS_STANDBY_H

#include <stdint.h>

struct ev_loop;
struct bus;
struct conf_server;
struct store;
struct standby;

/*
 * A standby for the store STORE (opened from SERVER's db_url; taken
 * over), on the bus AMQP_URL, WHO ("pid N on HOST") copied.
 */
struct standby *standby_new(struct ev_loop *loop,
    const struct conf_server *server, const char *amqp_url, const char *who,
    struct store *store);
/*
 * Runs LOOP until this process leads the store (the fencing epoch), or
 * until ev_break from elsewhere (a signal): -1.  Says once, and again
 * when the holder changes, who holds it; a store that fails meanwhile
 * (the PostgreSQL primary died) is opened again every second until a
 * server of db_url answers (a promoted replica, with
 * target_session_attrs=read-write).
 */
int64_t standby_run(struct standby *s);
/* The store (NULL while none answers), and the AMQP connections (NULL
 * when none is up): the one to consume on, returned, and the one to
 * publish on, in *PUB.  The caller owns what it takes. */
struct store *standby_take_store(struct standby *s);
struct bus *standby_take_bus(struct standby *s, struct bus **pub);
void standby_free(struct standby *s);

#endif
