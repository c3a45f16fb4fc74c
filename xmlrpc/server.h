/*
 * server -- resbus-xmlrpc's HTTP server: libmicrohttpd on a libev loop.
 *
 * The program (main.c) fills a struct server and calls server_listen(),
 * server_start(), and at the end server_stop() and server_close(); all
 * the rest -- accepting, per-address limits, deadlines -- is server.c's,
 * and the requests and their calls to the gateway are request.c's.
 */
#ifndef RESBUS_XMLRPC_SERVER_H
#define RESBUS_XMLRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "gateway.h"

#define ADDR_BUCKETS 256

/* How many connections one client address has open. */
struct addr_count {
	struct addr_count *next;
	int family;
	unsigned char addr[16];
	unsigned int n;
};

struct server {
	struct ev_loop *loop;
	struct gateway_conf gw;
	struct gateway *g;
	struct MHD_Daemon *mhd;
	ev_io mhd_io;	    /* MHD's epoll descriptor */
	ev_timer mhd_timer; /* MHD's next timeout */
	ev_io accept_io;    /* the listening socket */
	ev_signal sigint, sigterm, sighup;
	ev_timer grace;
	int listen_fd;
	unsigned int nconns, max_conns, max_per_addr, header_timeout_s;
	struct addr_count *addrs[ADDR_BUCKETS];
	bool stopping;
};

/*
 * A listening, non-blocking TCP socket on HOST:PORT; the address it got
 * into SHOWN.  IPv4 addresses are tried first, as resalloc (Python's
 * XML-RPC server) only ever listens on IPv4.  Fatal if none can be bound.
 */
int server_listen(const char *host, const char *port, char *shown, size_t len);
/* Starts libmicrohttpd on SRV->listen_fd, on SRV's loop. */
void server_start(struct server *srv, const char *shown);
/*
 * Stops accepting, ends every call with a fault and gives the answers
 * in flight a short grace to go out before the loop breaks.
 */
void server_stop(struct server *srv);
/* Closes the listening socket and every connection; frees what is left. */
void server_close(struct server *srv);

#endif
