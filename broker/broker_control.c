/*
 * broker_control -- the two queues that are not about tickets: the
 * control queue (resbus-maint's ControlRequest, answered with a
 * ControlReply; broker_recv.c checks and dispatches it like every other
 * queue's message, control.c does the work, this file gives control.c
 * its view of the broker) and the brokers' queue, where standby brokers
 * say every second that they wait.
 *
 * A beat goes through msg.c's dispatch too; a bad one is ignored with a
 * log line, as beats are not acknowledged and nobody waits for an
 * answer.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_priv.h"
#include "bus.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "peers.h"
#include "sched.h"
#include "util.h"

/*
 * A standby says that it waits.  Beats older than PEERS_QUIET_MS (kept
 * while no broker was active) and this broker's own (from before it took
 * over) are not news.
 */
static void
on_broker_standby(const ProtobufCMessage *pm, void *ctx, void *arg)
{
	const Resbus__V1__BrokerStandby *m =
	    (const Resbus__V1__BrokerStandby *)pm;
	struct broker *b = ctx;
	int64_t now = now_wall_ms();

	(void)arg;
	if (m->who[0] != '\0' && strlen(m->who) <= PEERS_WHO_MAX &&
	    now - m->sent_ms <= PEERS_QUIET_MS &&
	    (b->leader == NULL || strcmp(m->who, b->leader) != 0))
		peers_heard(&b->standbys, m->who, m->since_ms, now);
}

/* What the brokers' queue carries. */
static const struct msg_handler standby_handlers[] = {
    {&resbus__v1__broker_standby__descriptor, on_broker_standby},
    {NULL, NULL},
};

/*
 * A delivery on P.brokers (not acknowledged: consumed with no_ack).
 * Only from the broker's own login or an admin; anything else is
 * ignored with a log line.
 */
void
broker_on_standby(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct broker *b = arg;
	char err[256];

	(void)bus;
	if (d->user_id == NULL || (strcmp(d->user_id, bus_user(b->bus)) != 0 &&
				      !broker_is_admin(b, d->user_id))) {
		log_warnx("%s: a standby's beat from user %s, not a broker's: "
			  "ignored",
		    d->queue, d->user_id ? d->user_id : "(none)");
		return;
	}
	if (msg_dispatch_err(standby_handlers, d->type, d->body, d->len, b,
		NULL, err, sizeof(err)) == -1)
		log_warnx("%s: %s: ignored", d->queue, err);
}

/* control's view of the broker: replies and reloads. */
static void
control_reply(
    void *ctx, const struct bus_delivery *d, const ProtobufCMessage *m)
{
	broker_reply(ctx, d, m);
}

static int
control_reload(void *ctx, char *err, size_t errlen)
{
	return broker_reload(ctx, err, errlen);
}

static bool
control_is_admin(void *ctx, const char *user)
{
	return broker_is_admin(ctx, user);
}

static void
control_status(void *ctx, struct control_status *st)
{
	struct broker *b = ctx;

	st->now_ms = now_wall_ms();
	peers_expire(&b->standbys, st->now_ms);
	st->who = b->leader;
	st->since_ms = b->leader_since_ms;
	st->epoch = b->leader_epoch;
	st->standbys = &b->standbys;
}

/* A ControlRequest that broker_recv.c's dispatch decoded and checked. */
void
broker_on_control_request(const ProtobufCMessage *m, void *ctx, void *arg)
{
	struct broker *b = ctx;
	const struct delivery_ctx *dc = arg;
	struct control_ops ops = {
	    control_reply, control_reload, b, control_is_admin, control_status};

	control_handle(
	    b->sched, (const Resbus__V1__ControlRequest *)m, dc->d, &ops);
}
