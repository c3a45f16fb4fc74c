/*
 * client -- the C client library behind `resbus`, resbus-xmlrpc and
 * resbus-maint (lib/client.h).
 *
 * The library is a file per concern, sharing lib/client_priv.h:
 *
 *	client_conn.c	the connection: reply queue, RPCs by correlation
 *			id, publishing again, reconnecting to another node
 *	client_ticket.c	the ticket operations: take, query, renew, close
 *	client_wait.c	waiting for a ticket, and the events that wake it
 *	client_async.c	use from an event loop: calls with callbacks,
 *			watchers of tickets
 *
 * This file holds the operators' control RPCs (resbus-maint), sent on the
 * connection's RPC plumbing.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "client.h"
#include "client_priv.h"
#include "msg.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

/* ---- operators' control RPCs (resbus-maint) ----------------------------- */

/*
 * Sends a ControlRequest to the control queue and waits for its
 * ControlReply.  The request is sent only while resbusd consumes the
 * queue: a request left queued for a broker that is down would run
 * whenever it comes back, long after the operator gave up on it.  An
 * answer of another control protocol version, or out of bounds, is no
 * answer.
 */
int
resbus_control(struct resbus_client *c,
    const struct resbus_control_request *req, int timeout_ms,
    struct resbus_control_reply *reply)
{
	Resbus__V1__ControlRequest m = RESBUS__V1__CONTROL_REQUEST__INIT;
	Resbus__V1__ControlReply *r;
	uint32_t consumers = 0;
	char *queue, err[256];
	int rc;

	memset(reply, 0, sizeof(*reply));
	queue = topo_control_queue(c->prefix);
	if (bus_queue_declare(
		c->bus, queue, BUS_PASSIVE, NULL, NULL, &consumers) == -1 &&
	    bus_poll(c->bus, 0) < 0) {
		client_seterr(
		    c, "connection to the bus failed: %s", bus_error(c->bus));
		free(queue);
		return -1;
	}
	if (consumers == 0) {
		client_seterr(
		    c, "resbusd is not running (nobody consumes %s)", queue);
		free(queue);
		return -1;
	}
	m.command = (char *)req->command;
	m.args = (char **)req->args;
	m.n_args = req->nargs;
	m.up = req->up;
	m.all = req->all;
	m.unused = req->unused;
	m.version = MSG_CONTROL_VERSION;
	rc = client_send(c, "", queue, &m.base);
	free(queue);
	if (rc == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		client_seterr(c, "no answer from resbusd within %d s",
		    client_seconds(timeout_ms));
		client_rpc_reset(c);
		return -1;
	}
	if (rc == -1)
		return -1;
	if (c->reply->descriptor != &resbus__v1__control_reply__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		client_rpc_reset(c);
		return -1;
	}
	r = (Resbus__V1__ControlReply *)c->reply;
	if (r->version != MSG_CONTROL_VERSION) {
		client_seterr(c,
		    "resbusd answers in control protocol version %u, this "
		    "client speaks version %d: use the resbus-maint of "
		    "resbusd's release",
		    (unsigned)r->version, MSG_CONTROL_VERSION);
		client_rpc_reset(c);
		return -1;
	}
	if (msg_check(&r->base, err, sizeof(err)) == -1) {
		client_seterr(c, "resbusd's answer is out of bounds: %s", err);
		client_rpc_reset(c);
		return -1;
	}
	reply->ok = r->ok;
	if (!r->ok)
		reply->error = xstrdup(r->error != NULL && r->error[0] != '\0'
					   ? r->error
					   : "resbusd refused the command");
	reply->msg = r;
	c->reply = NULL;
	client_rpc_reset(c);
	return 0;
}

/* Frees what REPLY holds and zeroes it. */
void
resbus_control_reply_clear(struct resbus_control_reply *reply)
{
	free(reply->error);
	if (reply->msg != NULL)
		msg_free(&reply->msg->base);
	memset(reply, 0, sizeof(*reply));
}
