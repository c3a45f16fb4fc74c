/*
 * request -- the HTTP requests of resbus-xmlrpc, each carrying one call.
 *
 * libmicrohttpd hands every request to request_handle(): an error the
 * request line and headers already show (wrong path, not POST, too long
 * a Content-Length) is answered before the body; the body is collected
 * up to XMLRPC_MAX_BODY_BYTES, decoded, and its call handed to the
 * gateway.  A call that cannot be answered at once suspends the
 * connection until on_call_done() resumes it with the answer; meanwhile
 * the socket is watched, and a client that hangs up gives its call up.
 *
 * The connections these requests arrive on (accepting, limits, the
 * head's deadline) are server.c's; what both share is server_priv.h.
 */
#include "config.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ev.h>
#include <microhttpd.h>

#include "gateway.h"
#include "log.h"
#include "server.h"
#include "server_priv.h"
#include "util.h"
#include "xmlrpc.h"

static void
request_hangup_stop(struct request *r)
{
	struct conn *cn = r->conn;

	ev_io_stop(cn->srv->loop, &cn->hangup);
	ev_timer_stop(cn->srv->loop, &cn->hangup_check);
}

/* Resumes R's connection: MHD calls request_handle for it again. */
static void
request_resume(struct request *r)
{
	struct conn *cn = r->conn;

	request_hangup_stop(r);
	if (!r->suspended)
		return;
	r->suspended = false;
	MHD_resume_connection(cn->mc);
	(void)MHD_set_connection_option(cn->mc, MHD_CONNECTION_OPTION_TIMEOUT,
	    (unsigned int)IDLE_TIMEOUT_S);
	/* The ITC wakes MHD's epoll; run it now all the same. */
	ev_feed_event(cn->srv->loop, &cn->srv->mhd_io, EV_READ);
}

/*
 * The call ended: its response goes out when MHD calls request_handle
 * again.
 */
static void
on_call_done(void *arg, char *body, size_t len)
{
	struct request *r = arg;

	r->call = NULL;
	r->out = body;
	r->outlen = len;
	request_resume(r);
}

/* The client of a suspended call hung up: give the call up. */
static void
request_abandon(struct request *r)
{
	gateway_call_cancel(r->call);
	r->call = NULL;
	r->abandoned = true;
	request_resume(r);
}

/*
 * Whether the client of suspended R hung up.  A client may send its next
 * request before this answer (pipelining): then its socket is readable
 * although it is there, and a poll for POLLRDHUP tells.
 */
static bool
request_gone(struct request *r)
{
	struct pollfd pfd;

	pfd.fd = r->conn->fd;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 1 &&
	       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void
request_hangup_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *cn = container_of(w, struct conn, hangup);
	struct request *r = w->data;

	(void)revents;
	if (request_gone(r)) {
		request_abandon(r);
		return;
	}
	/* Bytes of a next request: look now and then instead. */
	ev_io_stop(loop, &cn->hangup);
	ev_timer_again(loop, &cn->hangup_check);
}

void
request_hangup_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct request *r = w->data;

	(void)loop;
	(void)revents;
	if (request_gone(r))
		request_abandon(r);
}

/* Suspends R's connection until its call ends, watching for a hang-up. */
static void
request_suspend(struct request *r)
{
	struct conn *cn = r->conn;

	(void)MHD_set_connection_option(
	    cn->mc, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	MHD_suspend_connection(cn->mc);
	r->suspended = true;
	cn->hangup.data = r;
	cn->hangup_check.data = r;
	ev_io_set(&cn->hangup, cn->fd, EV_READ);
	ev_io_start(cn->srv->loop, &cn->hangup);
}

/* Queues BODY (LEN bytes, taken over) with STATUS and content TYPE. */
static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned int status, char *body,
    size_t len, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_ALLOW, "POST");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *conn, unsigned int status, const char *msg)
{
	char *body = xasprintf("%s\n", msg);

	return respond(conn, status, body, strlen(body), "text/plain");
}

/*
 * An error that can be told from the request line and headers alone:
 * queued before the body is read.  MHD_YES with *DONE false if none.
 */
static enum MHD_Result
request_check(struct MHD_Connection *conn, const char *url, const char *method,
    bool *done)
{
	const char *cl;
	uint64_t n;

	*done = true;
	if (strcmp(url, "/") != 0 && strcmp(url, "/RPC2") != 0)
		return respond_text(conn, MHD_HTTP_NOT_FOUND,
		    "not found: XML-RPC is served on / and /RPC2");
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "XML-RPC calls are POST requests");
	cl = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL &&
	    (parse_u64(cl, &n) == -1 || n > XMLRPC_MAX_BODY_BYTES))
		return respond_text(
		    conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	*done = false;
	return MHD_YES;
}

/* Parses R's body and starts its call; queues the response if it ended. */
static enum MHD_Result
request_call(struct server *srv, struct request *r)
{
	struct xmlrpc_request *req;
	char err[512], *out;
	size_t len;

	r->started = true;
	if (xmlrpc_request_parse(r->body, r->len, &req, err, sizeof(err)) ==
	    -1) {
		log_info("%s: bad request: %s", r->conn->peer, err);
		out = xmlrpc_fault_encode(XMLRPC_FAULT_PARSE, err, &len);
		return respond(r->conn->mc, MHD_HTTP_OK, out, len, "text/xml");
	}
	r->call =
	    gateway_call_start(srv->g, req, r->conn->peer, on_call_done, r);
	xmlrpc_request_free(req);
	if (r->call != NULL) {
		request_suspend(r);
		return MHD_YES;
	}
	out = r->out;
	r->out = NULL;
	return respond(r->conn->mc, MHD_HTTP_OK, out, r->outlen, "text/xml");
}

/* libmicrohttpd's access handler; see server_priv.h. */
enum MHD_Result
request_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct server *srv = cls;
	struct request *r = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *cn;
	char *out;

	(void)version;
	if (r == NULL) {
		ci = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci == NULL || (cn = ci->socket_context) == NULL)
			return MHD_NO;
		/* The head is in; the body gets a deadline of its own. */
		conn_deadline_set(cn, BODY_TIMEOUT_S);
		r = xcalloc(1, sizeof(*r));
		r->conn = cn;
		*con_cls = r;
		return request_check(conn, url, method, &r->answered);
	}
	if (*upload_data_size > 0) {
		if (!r->answered && !r->too_big) {
			if (r->len + *upload_data_size >
			    XMLRPC_MAX_BODY_BYTES) {
				r->too_big = true;
				free(r->body);
				r->body = NULL;
				r->len = 0;
			} else {
				r->body = xrealloc(
				    r->body, r->len + *upload_data_size);
				memcpy(r->body + r->len, upload_data,
				    *upload_data_size);
				r->len += *upload_data_size;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	conn_deadline_set(r->conn, 0);
	if (r->answered)
		return MHD_YES;
	if (r->abandoned) {
		/* Nobody reads it; MHD closes the connection on writing. */
		(void)shutdown(r->conn->fd, SHUT_RD);
		return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "the call was given up");
	}
	if (r->out != NULL) {
		/* A resumed call's answer. */
		out = r->out;
		r->out = NULL;
		return respond(conn, MHD_HTTP_OK, out, r->outlen, "text/xml");
	}
	if (r->started)
		return MHD_YES; /* resumed before its answer: cannot be */
	if (r->too_big)
		return respond_text(
		    conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	if (srv->stopping)
		return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "resbus-xmlrpc is stopping");
	return request_call(srv, r);
}

/*
 * Frees a request once its response went out (or the connection died),
 * and gives the connection header_timeout for its next request.
 */
void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;
	struct request *r = *con_cls;

	(void)conn;
	if (r == NULL)
		return;
	if (r->call != NULL)
		gateway_call_cancel(r->call);
	request_hangup_stop(r);
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_deadline_set(r->conn, srv->header_timeout_s);
	free(r->out);
	free(r->body);
	free(r);
	*con_cls = NULL;
}
