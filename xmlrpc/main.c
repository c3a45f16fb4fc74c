/*
 * resbus-xmlrpc -- resalloc's XML-RPC API as a gateway onto the bus.
 *
 * Existing resalloc clients (Copr's backend, resalloc's own CLI and
 * Python library) talk XML-RPC over HTTP to hostname:port from
 * server.yaml; this daemon answers them there and carries every call out
 * as a client of the bus, like the `resbus` CLI does.  It keeps no state
 * of its own: tickets live in resbusd, so gateways can be restarted, or
 * run several at once, freely.
 *
 * This file is the program: its options, server.yaml, signals and the
 * loop.  The HTTP server (accepting, per-address limits, deadlines,
 * suspended calls) is server.c; the calls on the bus are gateway.c.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "conf.h"
#include "gateway.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmlrpc.h"

#define DEFAULT_RPC_TIMEOUT_S 60
#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_MAX_PER_ADDRESS 64
#define DEFAULT_HEADER_TIMEOUT_S 10
/* waitTicket asks resbusd again this often even without an event. */
#define WAIT_REQUERY_MS 30000

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: resbus-xmlrpc [--config-dir DIR] [--listen HOST:PORT]\n"
	    "                     [--amqp-url URL] [--timeout SEC]\n"
	    "                     [--max-connections N]\n"
	    "                     [--max-connections-per-address N]\n"
	    "                     [--header-timeout SEC] [-d|--debug]\n"
	    "                     [-h|--help] [-V|--version]\n"
	    "\n"
	    "resalloc's XML-RPC API (takeTicket, collectTicket, waitTicket,\n"
	    "closeTicket) served on HTTP and carried out on the resbus bus.\n"
	    "\n"
	    "  --config-dir DIR      configuration directory with server.yaml\n"
	    "                        (default: $CONFIG_DIR, else\n"
	    "                        " SYSCONFDIR "/resbus)\n"
	    "  --listen HOST:PORT    listen there (default: server.yaml's\n"
	    "                        hostname and port, localhost:49100)\n"
	    "  --amqp-url URL        AMQP URL (default: $RESBUS_AMQP_URL, else\n"
	    "                        server.yaml's amqp_url, else\n"
	    "                        " RESBUS_DEFAULT_AMQP_URL ")\n"
	    "  --timeout SEC         how long takeTicket, collectTicket and\n"
	    "                        closeTicket wait for resbusd to answer\n"
	    "                        (default %d; 0: no limit)\n"
	    "  --max-connections N   concurrent HTTP connections (default %d)\n"
	    "  --max-connections-per-address N\n"
	    "                        concurrent HTTP connections from one\n"
	    "                        client address (default %d)\n"
	    "  --header-timeout SEC  a connection must send a whole request\n"
	    "                        head within SEC of opening or of its\n"
	    "                        previous response (default %d)\n"
	    "  -d, --debug           log debug messages\n"
	    "  -h, --help            show this help\n"
	    "  -V, --version         show the version\n",
	    DEFAULT_RPC_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS,
	    DEFAULT_MAX_PER_ADDRESS, DEFAULT_HEADER_TIMEOUT_S);
}

/* Parses a whole decimal number between MIN and MAX. */
static int
number_parse(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Splits HOST:PORT (or [HOST]:PORT) into fresh strings; caller frees
 * both.  An empty host means every address.
 */
static int
listen_parse(const char *s, char **host, char **port)
{
	const char *colon;
	size_t hlen;
	long p;

	if ((colon = strrchr(s, ':')) == NULL ||
	    number_parse(colon + 1, 0, 65535, &p) == -1)
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	*host = xstrndup(s, hlen);
	*port = xasprintf("%ld", p);
	return 0;
}

/*
 * SIGINT, SIGTERM: stop accepting, end every call with a fault and give
 * the answers a short grace to go out.
 */
static void
on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *srv = w->data;

	(void)loop;
	(void)revents;
	if (srv->stopping)
		return;
	log_info("signal %d: stopping", w->signum);
	server_stop(srv);
}

static void
on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	log_info("SIGHUP: nothing to reload; restart to apply a new "
		 "server.yaml");
}

/* A whole number option between MIN and MAX into *OUT; exits 2 if bad. */
static void
option_number(const char *name, const char *arg, long min, long max, long *out)
{
	if (number_parse(arg, min, max, out) == -1) {
		fprintf(stderr, "resbus-xmlrpc: bad --%s '%s'\n", name, arg);
		exit(2);
	}
}

static void
server_signals(struct server *srv)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&srv->sigint, on_stop, SIGINT);
	ev_signal_init(&srv->sigterm, on_stop, SIGTERM);
	ev_signal_init(&srv->sighup, on_hup, SIGHUP);
	srv->sigint.data = srv;
	srv->sigterm.data = srv;
	ev_signal_start(srv->loop, &srv->sigint);
	ev_signal_start(srv->loop, &srv->sigterm);
	ev_signal_start(srv->loop, &srv->sighup);
}

/* What the command line asked for. */
struct options {
	const char *dir, *url, *listen;
	long timeout_s, max_conn, max_per_addr, header_s;
	bool debug;
};

/* Reads the command line into O; returns -1 to go on, else the exit code. */
static int
options_read(struct options *o, int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config-dir", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"amqp-url", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'},
	    {"max-connections", required_argument, NULL, 'm'},
	    {"max-connections-per-address", required_argument, NULL, 'p'},
	    {"header-timeout", required_argument, NULL, 'H'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->dir = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'a':
			o->url = optarg;
			break;
		case 't':
			option_number("timeout", optarg, 0, INT_MAX / 1000,
			    &o->timeout_s);
			break;
		case 'm':
			option_number(
			    "max-connections", optarg, 1, 65536, &o->max_conn);
			break;
		case 'p':
			option_number("max-connections-per-address", optarg, 1,
			    65536, &o->max_per_addr);
			break;
		case 'H':
			option_number(
			    "header-timeout", optarg, 1, 3600, &o->header_s);
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("resbus-xmlrpc %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * Where to listen without --listen: server.yaml's hostname and port.  Sets
 * *HOST and *PORT (caller frees); -1 if the port is out of range.
 */
static int
conf_listen_address(const struct options *o, const struct conf_server *conf,
    char **host, char **port)
{
	if (conf->port < 0 || conf->port > 65535) {
		fprintf(stderr, "%s/server.yaml: port %lld out of range\n",
		    conf_dir_pick(o->dir), (long long)conf->port);
		return -1;
	}
	*host = xstrdup(conf->hostname != NULL ? conf->hostname : "");
	*port = xasprintf("%lld", (long long)conf->port);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct options o = {NULL, NULL, NULL, DEFAULT_RPC_TIMEOUT_S,
	    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_ADDRESS,
	    DEFAULT_HEADER_TIMEOUT_S, false};
	struct conf_server *conf;
	struct server srv;
	char err[1024], shown[NI_MAXHOST + NI_MAXSERV + 4];
	char *host, *port;
	int rc;

	log_init("resbus-xmlrpc", LOG_LEVEL_INFO);
	if ((rc = options_read(&o, argc, argv)) != -1)
		return rc;
	if (o.listen != NULL && listen_parse(o.listen, &host, &port) == -1) {
		fprintf(stderr,
		    "resbus-xmlrpc: bad --listen '%s': HOST:PORT expected\n",
		    o.listen);
		return 2;
	}
	conf = conf_server_load_dir(o.dir, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (o.listen == NULL &&
	    conf_listen_address(&o, conf, &host, &port) == -1) {
		conf_server_free(conf);
		return 1;
	}
	log_setup(o.debug, conf->loglevel, conf->logdir, "xmlrpc.log");

	memset(&srv, 0, sizeof(srv));
	srv.loop = ev_default_loop(EVFLAG_AUTO);
	srv.gw.amqp_url = amqp_url_pick(o.url, conf->amqp_url);
	srv.gw.prefix = conf->prefix;
	srv.gw.rpc_timeout_ms = o.timeout_s == 0 ? -1 : (int)o.timeout_s * 1000;
	srv.gw.requery_ms = WAIT_REQUERY_MS;
	srv.max_conns = (unsigned int)o.max_conn;
	srv.max_per_addr = (unsigned int)o.max_per_addr;
	srv.header_timeout_s = (unsigned int)o.header_s;

	xmlrpc_init();
	server_signals(&srv);
	srv.listen_fd = server_listen(host, port, shown, sizeof(shown));
	free(host);
	free(port);
	srv.g = gateway_new(srv.loop, &srv.gw);
	server_start(&srv, shown);
	log_info("serving XML-RPC on http://%s/ and /RPC2 (at most %u "
		 "connections, %u per address; %u s for a request head)",
	    shown, srv.max_conns, srv.max_per_addr, srv.header_timeout_s);
	gateway_probe(srv.g);

	ev_run(srv.loop, 0);

	server_close(&srv);
	gateway_free(srv.g);
	xmlrpc_cleanup();
	conf_server_free(conf);
	ev_loop_destroy(srv.loop);
	log_info("stopped");
	return 0;
}
