/*
 * peers -- the standby brokers that the active resbusd hears.
 *
 * A standby publishes a BrokerStandby every second while it waits for
 * the store's leadership; the active broker keeps who it heard and when,
 * and forgets a standby not heard for PEERS_QUIET_MS.  At most PEERS_MAX
 * are kept: past that, the one heard least recently makes room.
 */
#ifndef RESBUS_PEERS_H
#define RESBUS_PEERS_H

#include <stddef.h>
#include <stdint.h>

#define PEERS_MAX 16
#define PEERS_QUIET_MS 5000
#define PEERS_WHO_MAX 200

struct peer {
	char who[PEERS_WHO_MAX + 1]; /* "pid N on HOST" */
	int64_t since_ms;	     /* waiting since, as it says */
	int64_t heard_ms;	     /* last heard, this broker's clock */
};

struct peers {
	struct peer peer[PEERS_MAX];
	size_t n;
};

/* Records that WHO, waiting since SINCE_MS, was heard at NOW_MS. */
void peers_heard(
    struct peers *p, const char *who, int64_t since_ms, int64_t now_ms);
/* Forgets the standbys not heard since NOW_MS - PEERS_QUIET_MS. */
void peers_expire(struct peers *p, int64_t now_ms);

#endif
