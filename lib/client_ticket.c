/*
 * client_ticket -- the ticket operations of the client library, blocking:
 * take, query, renew and close, and what resbusd answers about a ticket
 * (struct resbus_ticket_info).
 *
 * A ticket request goes to the ticket exchange with the canonical tag-set
 * key as its routing key, so it waits in the durable queue of its tag
 * set (or the unrouted queue) until resbusd takes it, and carries a fresh
 * idempotency key, so that publishing it again (client_conn.c) makes no
 * second ticket.  Query, renew and close go to the request queue and are
 * answered by a TicketUpdate.  The request is built and checked here for
 * the blocking calls and for resbus_take_send (client_async.c) alike.
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

/*
 * The reply in flight as a TicketUpdate, or NULL with the error set when
 * resbusd answered with something else.  Borrowed until the next RPC.
 */
const Resbus__V1__TicketUpdate *
client_reply_update(struct resbus_client *c)
{
	if (c->reply->descriptor != &resbus__v1__ticket_update__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		return NULL;
	}
	return (const Resbus__V1__TicketUpdate *)c->reply;
}

void
client_info_fill(
    struct resbus_ticket_info *info, const Resbus__V1__TicketUpdate *u)
{
	memset(info, 0, sizeof(*info));
	info->id = u->ticket_id;
	info->exists =
	    u->state != RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN;
	info->assigned = u->assigned;
	info->closed =
	    u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED;
	info->failed =
	    u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_FAILED;
	/* As resalloc's ticket-check: a resource, and the ticket still open. */
	info->ready =
	    u->assigned &&
	    (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_OPEN ||
		u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_READY);
	info->output_len = u->output.len;
	info->output = xmemdup(u->output.data, u->output.len);
	if (u->waiting_reason != NULL && *u->waiting_reason != '\0')
		info->waiting_reason = xstrdup(u->waiting_reason);
}

/*
 * Asks for a ticket.  The request goes to the ticket exchange with the
 * canonical tag-set key as its routing key, so it waits in the durable
 * queue of its tag set (or the unrouted queue) until resbusd takes it.
 */
int
resbus_ticket_take(struct resbus_client *c, char *const *tags, size_t ntags,
    const char *sandbox, int timeout_ms, uint64_t *id, bool *timed_out)
{
	struct resbus_ticket_opts opts = {.sandbox = sandbox};

	return resbus_ticket_take_opts(
	    c, tags, ntags, &opts, timeout_ms, id, timed_out);
}

/*
 * Checks the tags and options of a ticket request, and publishes it with
 * correlation id CORR.  0, or -1 with the error set (nothing sent when
 * the input is bad).
 */
int
client_take_publish(struct resbus_client *c, char *const *tags, size_t ntags,
    const struct resbus_ticket_opts *opts, const char *corr)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__TicketRequest__LabelsEntry *entries = NULL, **ep = NULL;
	const char *sandbox = opts->sandbox;
	const char *bad = NULL, *eq;
	char key_uuid[37];
	char *key, **canon, **lk = NULL;
	size_t ncanon, i;
	int rc;

	if ((key = tagset_key(tags, ntags, &bad)) == NULL) {
		if (bad != NULL)
			client_seterr(c,
			    "invalid tag '%s' (allowed: letters, "
			    "digits and _.:=- up to %d characters, not "
			    "starting with . or -)",
			    bad, TAG_MAX_LEN);
		else if (ntags == 0)
			client_seterr(c, "a ticket needs at least one tag");
		else
			client_seterr(
			    c, "too many tags (at most %d)", TAGSET_MAX_TAGS);
		return -1;
	}
	if (sandbox != NULL && !sandbox_valid(sandbox)) {
		client_seterr(c,
		    "invalid sandbox '%s' (printable ASCII without "
		    "spaces, quotes, \\, ` or $, up to 128 characters)",
		    sandbox);
		free(key);
		return -1;
	}
	/* The request carries the tags of its key: sorted, no duplicates. */
	if (tagset_split(key, &canon, &ncanon) == -1) {
		client_seterr(c, "cannot split tag-set key %s", key);
		free(key);
		return -1;
	}
	uuid_make(key_uuid);
	req.idempotency_key = key_uuid;
	req.n_tags = ncanon;
	req.tags = canon;
	if (sandbox != NULL)
		req.sandbox = (char *)sandbox;
	if (opts->nlabels > 0) {
		entries = xcalloc(opts->nlabels, sizeof(*entries));
		ep = xcalloc(opts->nlabels, sizeof(*ep));
		lk = xcalloc(opts->nlabels, sizeof(*lk));
	}
	for (i = 0; i < opts->nlabels; i++) {
		resbus__v1__ticket_request__labels_entry__init(&entries[i]);
		eq = strchr(opts->labels[i], '=');
		lk[i] = eq ? xstrndup(opts->labels[i],
				 (size_t)(eq - opts->labels[i]))
			   : xstrdup(opts->labels[i]);
		entries[i].key = lk[i];
		entries[i].value = (char *)(eq ? eq + 1 : "");
		ep[i] = &entries[i];
	}
	req.n_labels = opts->nlabels;
	req.labels = ep;
	if (opts->class_ != NULL)
		req.class_ = (char *)opts->class_;
	req.lease_s = opts->lease_s;
	req.deadline_ms = opts->deadline_ms;
	if (opts->owner != NULL)
		req.owner = (char *)opts->owner;
	req.refuse_unprovidable = opts->refuse_unprovidable;
	rc = client_publish(c, c->ticket_exchange, key, &req.base, corr);
	tagset_free_list(canon, ncanon);
	tagset_free_list(lk, opts->nlabels);
	free(entries);
	free(ep);
	free(key);
	return rc;
}

int
resbus_ticket_take_opts(struct resbus_client *c, char *const *tags,
    size_t ntags, const struct resbus_ticket_opts *opts, int timeout_ms,
    uint64_t *id, bool *timed_out)
{
	const Resbus__V1__TicketAccepted *acc;
	int rc;

	*timed_out = false;
	client_rpc_reset(c);
	uuid_make(c->corr);
	if (client_take_publish(c, tags, ntags, opts, c->corr) == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		*timed_out = true;
		client_seterr(c,
		    "no answer from resbusd within %d s; the request "
		    "stays queued and is served when resbusd runs",
		    client_seconds(timeout_ms));
		return -1;
	}
	if (rc == -1)
		return -1;
	if (c->reply->descriptor != &resbus__v1__ticket_accepted__descriptor) {
		client_seterr(
		    c, "unexpected reply %s from resbusd", msg_type(c->reply));
		return -1;
	}
	acc = (const Resbus__V1__TicketAccepted *)c->reply;
	*id = acc->ticket_id;
	client_rpc_reset(c);
	return 0;
}

/*
 * Sends TicketQuery or TicketClose (M) for a ticket and waits for its
 * TicketUpdate.  0 with *u borrowed until the next RPC, 1 on timeout (the
 * error set), -1 on error.
 */
static int
client_ticket_rpc(struct resbus_client *c, const ProtobufCMessage *m,
    int timeout_ms, const Resbus__V1__TicketUpdate **u)
{
	int rc;

	if (client_send(c, "", c->request_queue, m) == -1)
		return -1;
	if ((rc = client_await(c, timeout_ms)) == 1) {
		client_seterr(c, "no answer from resbusd within %d s",
		    client_seconds(timeout_ms));
		return 1;
	}
	if (rc == -1)
		return -1;
	if ((*u = client_reply_update(c)) == NULL)
		return -1;
	return 0;
}

/* Asks M (a query or renewal of ticket ID) and fills *INFO with the answer. */
static int
ticket_info_rpc(struct resbus_client *c, const ProtobufCMessage *m, uint64_t id,
    int timeout_ms, struct resbus_ticket_info *info)
{
	const Resbus__V1__TicketUpdate *u;

	memset(info, 0, sizeof(*info));
	if (client_ticket_rpc(c, m, timeout_ms, &u) != 0)
		return -1;
	client_info_fill(info, u);
	info->id = id;
	client_rpc_reset(c);
	return 0;
}

/*
 * The current state of ticket ID into *INFO; a ticket that does not exist
 * is not an error (info->exists is false).  Free INFO's strings with
 * resbus_ticket_info_clear().
 */
int
resbus_ticket_query(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info)
{
	Resbus__V1__TicketQuery q = RESBUS__V1__TICKET_QUERY__INIT;

	q.ticket_id = id;
	return ticket_info_rpc(c, &q.base, id, timeout_ms, info);
}

int
resbus_ticket_renew(struct resbus_client *c, uint64_t id, int timeout_ms,
    struct resbus_ticket_info *info)
{
	Resbus__V1__TicketRenew r = RESBUS__V1__TICKET_RENEW__INIT;

	r.ticket_id = id;
	return ticket_info_rpc(c, &r.base, id, timeout_ms, info);
}

/* Closes ticket ID.  -1 with "no such ticket ID" when it does not exist. */
int
resbus_ticket_close(struct resbus_client *c, uint64_t id, int timeout_ms)
{
	Resbus__V1__TicketClose m = RESBUS__V1__TICKET_CLOSE__INIT;
	const Resbus__V1__TicketUpdate *u;
	int ret = -1;

	m.ticket_id = id;
	if (client_ticket_rpc(c, &m.base, timeout_ms, &u) != 0)
		return -1;
	if (u->state == RESBUS__V1__TICKET_STATE__TICKET_STATE_UNKNOWN)
		client_seterr(c, "no such ticket %llu", (unsigned long long)id);
	else if (u->state != RESBUS__V1__TICKET_STATE__TICKET_STATE_CLOSED)
		client_seterr(c, "ticket %llu is still %s after closing it",
		    (unsigned long long)id, msg_ticket_state_name(u->state));
	else
		ret = 0;
	client_rpc_reset(c);
	return ret;
}

/* Frees the strings of INFO and zeroes it. */
void
resbus_ticket_info_clear(struct resbus_ticket_info *info)
{
	free(info->output);
	free(info->waiting_reason);
	memset(info, 0, sizeof(*info));
}
