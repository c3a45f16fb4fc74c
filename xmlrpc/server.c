/*
 * server -- resbus-xmlrpc's HTTP server: libmicrohttpd inside libev.
 *
 * One libev loop runs everything.  The daemon accepts connections itself
 * and hands them to libmicrohttpd (external polling: MHD's epoll
 * descriptor and its next timeout are one ev_io and one ev_timer, as in
 * resbusd's http.c), so that it can
 *
 *  - refuse a connection from an address that has max_per_address open
 *    already, and stop accepting (connections wait in the kernel's
 *    backlog) while max_connections are open, taking up again as soon as
 *    one closes;
 *  - close a connection that has not sent a whole request head within
 *    header_timeout seconds of opening, or of its previous response
 *    (keep-alive), however slowly it trickles bytes, and one whose body
 *    has not come within BODY_TIMEOUT_S.  MHD's own timeout only sees
 *    idleness, which a trickle never is.
 *
 * A call is handed to the gateway (gateway.c), which shares one AMQP
 * connection between all of them.  A call that cannot be answered at
 * once suspends its connection (MHD_suspend_connection) and is resumed
 * when the answer comes: a waitTicket costs a few hundred bytes, not a
 * thread.  While suspended, the connection's socket is watched for the
 * client hanging up, which gives the call up.
 *
 * This file holds the connections: the listening socket, accepting,
 * the per-address counts, the deadlines, MHD's loop glue and stopping.
 * The requests on them, and their calls, are request.c's; what both
 * share is server_priv.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <ev.h>
#include <microhttpd.h>

#include "gateway.h"
#include "log.h"
#include "mhdlog.h"
#include "server.h"
#include "server_priv.h"
#include "util.h"
#include "xmlrpc.h"

/* A suspended connection with bytes pending is checked for a hang-up. */
#define HANGUP_CHECK_S 2.
/* After SIGTERM, answers in flight get this long to go out. */
#define STOP_GRACE_S 1.

/* ADDR as "host:port" (IPv6 in brackets) into BUF. */
static void
addr_format(const struct sockaddr *addr, socklen_t alen, char *buf, size_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (addr == NULL ||
	    getnameinfo(addr, alen, host, sizeof(host), serv, sizeof(serv),
		NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, addr->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, serv);
}

/* The listening socket; see server.h. */
int
server_listen(const char *host, const char *port, char *shown, size_t len)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, gai, pass, one = 1, saved = 0, flags;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((gai = getaddrinfo(
		 *host != '\0' ? host : NULL, port, &hints, &res)) != 0)
		fatalx("cannot resolve %s: %s", host, gai_strerror(gai));
	for (pass = 0; pass < 2 && fd == -1; pass++) {
		for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next) {
			if ((ai->ai_family == AF_INET) != (pass == 0))
				continue;
			fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd == -1) {
				saved = errno;
				continue;
			}
			(void)setsockopt(
			    fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
			    listen(fd, 128) == -1) {
				saved = errno;
				close(fd);
				fd = -1;
			}
		}
	}
	freeaddrinfo(res);
	if (fd == -1) {
		errno = saved;
		fatal("cannot listen on %s:%s", host, port);
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("fcntl");
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		addr_format((struct sockaddr *)&ss, sslen, shown, len);
	else
		snprintf(shown, len, "%s:%s", host, port);
	return fd;
}

/* The client's address, for logs. */
static void
peer_name(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci != NULL ? ci->client_addr : NULL;
	addr_format(sa,
	    sa != NULL && sa->sa_family == AF_INET6
		? sizeof(struct sockaddr_in6)
		: sizeof(struct sockaddr_in),
	    buf, len);
}

/* ---- connections per address ---------------------------------------- */

/* The bytes of SA's address into KEY; 0, or -1 if it is no IP address. */
static int
addr_key(const struct sockaddr *sa, int *family, unsigned char key[16])
{
	memset(key, 0, 16);
	*family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	else
		return -1;
	return 0;
}

/* The bucket of SA's address; -1 if it is no IP address. */
static int
addr_bucket(const struct sockaddr *sa, int *family, unsigned char key[16])
{
	unsigned int h = 0;
	int i;

	if (addr_key(sa, family, key) == -1)
		return -1;
	for (i = 0; i < 16; i++)
		h = h * 31 + key[i];
	return (int)(h % ADDR_BUCKETS);
}

/* The count of SA's address; made (at 0) if CREATE, else NULL if none. */
static struct addr_count *
addr_find(struct server *srv, const struct sockaddr *sa, bool create)
{
	struct addr_count *a;
	unsigned char key[16];
	int family, h;

	if ((h = addr_bucket(sa, &family, key)) == -1)
		return NULL;
	for (a = srv->addrs[h]; a != NULL; a = a->next)
		if (a->family == family && memcmp(a->addr, key, 16) == 0)
			return a;
	if (!create)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	a->family = family;
	memcpy(a->addr, key, 16);
	a->next = srv->addrs[h];
	srv->addrs[h] = a;
	return a;
}

/* One connection fewer from SA's address; forgets it at 0. */
static void
addr_release(struct server *srv, const struct sockaddr *sa)
{
	struct addr_count *a, **pp;
	unsigned char key[16];
	int family, h;

	if ((h = addr_bucket(sa, &family, key)) == -1)
		return;
	for (pp = &srv->addrs[h]; (a = *pp) != NULL; pp = &a->next)
		if (a->family == family && memcmp(a->addr, key, 16) == 0) {
			if (a->n > 0 && --a->n == 0) {
				*pp = a->next;
				free(a);
			}
			return;
		}
}

/* Frees every count (at exit). */
static void
addr_free_all(struct server *srv)
{
	struct addr_count *a;
	size_t i;

	for (i = 0; i < ADDR_BUCKETS; i++)
		while ((a = srv->addrs[i]) != NULL) {
			srv->addrs[i] = a->next;
			free(a);
		}
}

/* ---- libmicrohttpd on the loop -------------------------------------- */

static void
mhd_arm(struct server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms;

	ev_timer_stop(srv->loop, &srv->mhd_timer);
	if (MHD_get_timeout(srv->mhd, &ms) == MHD_YES) {
		ev_timer_set(&srv->mhd_timer, (double)ms / 1000., 0.);
		ev_timer_start(srv->loop, &srv->mhd_timer);
	}
}

static void
mhd_run(struct server *srv)
{
	if (MHD_run(srv->mhd) == MHD_NO)
		log_warnx("http: MHD_run failed");
	mhd_arm(srv);
}

static void
mhd_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	mhd_run(container_of(w, struct server, mhd_io));
}

static void
mhd_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	mhd_run(container_of(w, struct server, mhd_timer));
}

/* Takes up accepting again when a place is free. */
static void
accept_resume(struct server *srv)
{
	if (!srv->stopping && srv->nconns < srv->max_conns &&
	    !ev_is_active(&srv->accept_io))
		ev_io_start(srv->loop, &srv->accept_io);
}

/*
 * Accepts what the backlog holds, up to the connection limit, and hands
 * each connection to libmicrohttpd unless its address has too many.
 */
static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *srv = container_of(w, struct server, accept_io);
	struct sockaddr_storage ss;
	struct addr_count *a;
	socklen_t sslen;
	char shown[128];
	int fd;

	(void)revents;
	for (;;) {
		if (srv->nconns >= srv->max_conns) {
			/* The backlog keeps the rest until one closes. */
			ev_io_stop(loop, &srv->accept_io);
			log_debug("%u connections open: not accepting more "
				  "for now",
			    srv->nconns);
			break;
		}
		memset(&ss, 0, sizeof(ss));
		sslen = sizeof(ss);
		fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept");
			break;
		}
		a = addr_find(srv, (struct sockaddr *)&ss, true);
		if (a != NULL && a->n >= srv->max_per_addr) {
			addr_format((struct sockaddr *)&ss, sslen, shown,
			    sizeof(shown));
			log_info("%s: refused: %u connections from its address "
				 "are open already",
			    shown, a->n);
			close(fd);
			continue;
		}
		if (a != NULL)
			a->n++;
		srv->nconns++;
		if (MHD_add_connection(srv->mhd, fd, (struct sockaddr *)&ss,
			sslen) == MHD_NO) {
			/* MHD closed it. */
			log_warn("cannot serve a new connection");
			srv->nconns--;
			addr_release(srv, (struct sockaddr *)&ss);
		}
	}
	mhd_run(srv);
}

/* The connection of a request that timed out: shut it, MHD closes it. */
static void
conn_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *cn = container_of(w, struct conn, deadline);

	(void)loop;
	(void)revents;
	log_info("%s: closing: no whole request in time", cn->peer);
	(void)shutdown(cn->fd, SHUT_RDWR);
}

/* Gives CN S seconds (0: no limit) for what it must send next. */
void
conn_deadline_set(struct conn *cn, unsigned int s)
{
	ev_timer_stop(cn->srv->loop, &cn->deadline);
	if (s == 0)
		return;
	ev_timer_set(&cn->deadline, (double)s, 0.);
	ev_timer_start(cn->srv->loop, &cn->deadline);
}

/* A connection's context: made when it opens, freed when it closes. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *cn;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		cn = xcalloc(1, sizeof(*cn));
		cn->srv = srv;
		cn->mc = conn;
		ci = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		cn->fd = ci != NULL ? ci->connect_fd : -1;
		peer_name(conn, cn->peer, sizeof(cn->peer));
		ev_timer_init(&cn->deadline, conn_deadline, 0., 0.);
		ev_io_init(&cn->hangup, request_hangup_io, cn->fd, EV_READ);
		ev_timer_init(&cn->hangup_check, request_hangup_timer, 0.,
		    HANGUP_CHECK_S);
		conn_deadline_set(cn, srv->header_timeout_s);
		*socket_context = cn;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED ||
	    (cn = *socket_context) == NULL)
		return;
	ev_timer_stop(srv->loop, &cn->deadline);
	ev_io_stop(srv->loop, &cn->hangup);
	ev_timer_stop(srv->loop, &cn->hangup_check);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL)
		addr_release(srv, ci->client_addr);
	free(cn);
	*socket_context = NULL;
	srv->nconns--;
	accept_resume(srv);
	if (srv->stopping && srv->nconns == 0)
		ev_break(srv->loop, EVBREAK_ALL);
}

static void
on_stop_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Starts libmicrohttpd without a listening socket, on SRV's loop. */
void
server_start(struct server *srv, const char *shown)
{
	const union MHD_DaemonInfo *info;

	/* One option and its arguments a line. */
	/* clang-format off */
	srv->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    request_handle, srv,
	    /* The logger first, so that no option's message escapes it. */
	    MHD_OPTION_EXTERNAL_LOGGER, mhdlog_write, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, srv->max_conns,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
	    MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
	    MHD_OPTION_END);
	/* clang-format on */
	if (srv->mhd == NULL)
		fatalx("cannot start the HTTP server on %s", shown);
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0)
		fatalx("libmicrohttpd has no epoll descriptor");
	ev_io_init(&srv->mhd_io, mhd_readable, info->epoll_fd, EV_READ);
	ev_io_start(srv->loop, &srv->mhd_io);
	ev_timer_init(&srv->mhd_timer, mhd_timeout, 0., 0.);
	ev_io_init(&srv->accept_io, on_accept, srv->listen_fd, EV_READ);
	ev_io_start(srv->loop, &srv->accept_io);
	mhd_arm(srv);
}

void
server_stop(struct server *srv)
{
	srv->stopping = true;
	ev_io_stop(srv->loop, &srv->accept_io);
	gateway_stop(srv->g);
	if (srv->nconns == 0) {
		ev_break(srv->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&srv->grace, on_stop_grace, STOP_GRACE_S, 0.);
	ev_timer_start(srv->loop, &srv->grace);
}

void
server_close(struct server *srv)
{
	ev_io_stop(srv->loop, &srv->accept_io);
	close(srv->listen_fd);
	ev_io_stop(srv->loop, &srv->mhd_io);
	ev_timer_stop(srv->loop, &srv->mhd_timer);
	ev_timer_stop(srv->loop, &srv->grace);
	/* Closes what is left; on_connection frees their contexts. */
	MHD_stop_daemon(srv->mhd);
	addr_free_all(srv);
}
