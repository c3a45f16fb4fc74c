/*
 * peers -- the standby brokers that the active resbusd hears.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "peers.h"

void
peers_heard(struct peers *p, const char *who, int64_t since_ms, int64_t now_ms)
{
	struct peer *e = NULL;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->peer[i].who, who) == 0) {
			e = &p->peer[i];
			break;
		}
	if (e == NULL) {
		if (p->n < PEERS_MAX) {
			e = &p->peer[p->n++];
		} else {
			e = &p->peer[0];
			for (i = 1; i < p->n; i++)
				if (p->peer[i].heard_ms < e->heard_ms)
					e = &p->peer[i];
			log_info("standby resbusd %s: forgotten to make room",
			    e->who);
		}
		snprintf(e->who, sizeof(e->who), "%s", who);
		log_info(
		    "standby resbusd %s: heard, waiting to take over", e->who);
	}
	e->since_ms = since_ms;
	e->heard_ms = now_ms;
}

void
peers_expire(struct peers *p, int64_t now_ms)
{
	size_t i = 0;

	while (i < p->n) {
		if (now_ms - p->peer[i].heard_ms <= PEERS_QUIET_MS) {
			i++;
			continue;
		}
		log_info("standby resbusd %s: not heard for %d s, gone",
		    p->peer[i].who, PEERS_QUIET_MS / 1000);
		p->peer[i] = p->peer[--p->n];
	}
}
