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
 * HTTP is libmicrohttpd with a thread per connection.  waitTicket blocks
 * until its ticket is served, as resalloc's does, and a blocking call is
 * simplest on a thread of its own.  Each connection owns one gateway
 * session and so one AMQP connection, made on its first call: AMQP
 * connections are never shared between threads.  The main thread only
 * waits for signals.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "client.h"
#include "conf.h"
#include "gateway.h"
#include "log.h"
#include "util.h"
#include "xmlrpc.h"

#define DEFAULT_RPC_TIMEOUT_S 60
#define DEFAULT_MAX_CONNECTIONS 256
/* A kept-alive connection with no request for this long is closed. */
#define IDLE_TIMEOUT_S 300
/* waitTicket looks for its caller's disconnect this often. */
#define WAIT_SLICE_MS 5000

struct server {
	struct gateway_conf gw;
	unsigned int idle_timeout_s;
};

/* One HTTP request while its body arrives. */
struct request {
	char *body;
	size_t len;
	bool too_big;
	bool answered; /* a response was queued before the body */
};

/* Set once SIGINT or SIGTERM arrived: long polls give up. */
static atomic_bool stopping;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: resbus-xmlrpc [--config-dir DIR] [--listen HOST:PORT]\n"
	    "                     [--amqp-url URL] [--timeout SEC]\n"
	    "                     [--max-connections N] [-d|--debug]\n"
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
	    "  -d, --debug           log debug messages\n"
	    "  -h, --help            show this help\n"
	    "  -V, --version         show the version\n",
	    DEFAULT_RPC_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS);
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

/*
 * A listening TCP socket on HOST:PORT; the address it got into SHOWN.
 * IPv4 addresses are tried first, as resalloc (Python's XML-RPC server)
 * only ever listens on IPv4.  Fatal if none can be bound.
 */
static int
listen_open(const char *host, const char *port, char *shown, size_t len)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, gai, pass, one = 1, saved = 0;

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

/*
 * Whether waitTicket should give up: the gateway stops, or the client
 * closed its end (a client that gave up waiting must not keep a thread
 * and an AMQP connection until its ticket is served).
 */
static bool
http_abandon(void *arg)
{
	struct MHD_Connection *conn = arg;
	const union MHD_ConnectionInfo *ci;
	struct pollfd pfd;

	if (atomic_load(&stopping))
		return true;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return false;
	pfd.fd = ci->connect_fd;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 1 &&
	       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
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
	long n;

	*done = true;
	if (strcmp(url, "/") != 0 && strcmp(url, "/RPC2") != 0)
		return respond_text(conn, MHD_HTTP_NOT_FOUND,
		    "not found: XML-RPC is served on / and /RPC2");
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "XML-RPC calls are POST requests");
	cl = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (number_parse(cl, 0, LONG_MAX, &n) == -1 ||
			      n > XMLRPC_MAX_BODY_BYTES))
		return respond_text(
		    conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	*done = false;
	return MHD_YES;
}

/* libmicrohttpd's access handler: collects the body, then calls. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct server *srv = cls;
	struct request *r = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct xmlrpc_request *req;
	enum MHD_Result ret;
	char peer[128], err[512], *out;
	size_t len;

	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		*con_cls = r;
		ret = request_check(conn, url, method, &r->answered);
		return ret;
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
	if (r->answered)
		return MHD_YES;
	if (r->too_big)
		return respond_text(
		    conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");

	peer_name(conn, peer, sizeof(peer));
	if (xmlrpc_request_parse(r->body, r->len, &req, err, sizeof(err)) ==
	    -1) {
		log_info("%s: bad request: %s", peer, err);
		out = xmlrpc_fault_encode(XMLRPC_FAULT_PARSE, err, &len);
		return respond(conn, MHD_HTTP_OK, out, len, "text/xml");
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || ci->socket_context == NULL) {
		xmlrpc_request_free(req);
		return MHD_NO;
	}
	/*
	 * A long poll must not count as idleness: no timeout while the
	 * call runs, and setting one again afterwards restarts its clock.
	 */
	(void)MHD_set_connection_option(
	    conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	out = gateway_call(
	    ci->socket_context, req, http_abandon, conn, peer, &len);
	(void)MHD_set_connection_option(
	    conn, MHD_CONNECTION_OPTION_TIMEOUT, srv->idle_timeout_s);
	xmlrpc_request_free(req);
	return respond(conn, MHD_HTTP_OK, out, len, "text/xml");
}

/* Frees a request once its response went out (or the connection died). */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	if (r == NULL)
		return;
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* A session per connection: made when it opens, freed when it closes. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		*socket_context = gateway_session_new(&srv->gw);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		gateway_session_free(*socket_context);
		*socket_context = NULL;
	}
}

/* libmicrohttpd's own messages, into our log. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_warnx("http: %s", buf);
}

/* Says at start-up whether the bus and resbusd can be reached. */
static void
bus_probe(const struct gateway_conf *gw)
{
	struct resbus_client *c;
	char err[512];

	if ((c = resbus_client_new(
		 gw->amqp_url, gw->prefix, err, sizeof(err))) == NULL) {
		log_warnx("%s; calls fail until the bus can be reached", err);
		return;
	}
	if (resbus_client_broker_present(c) == 0)
		log_warnx("resbusd is not running: requests wait in the bus "
			  "until it starts");
	resbus_client_free(c);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config-dir", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"amqp-url", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'},
	    {"max-connections", required_argument, NULL, 'm'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir_opt = NULL, *url_opt = NULL, *listen_opt = NULL;
	struct conf_server *conf;
	struct MHD_Daemon *daemon;
	struct server srv;
	sigset_t sigs;
	bool debug = false;
	char err[1024], shown[NI_MAXHOST + NI_MAXSERV + 4];
	char *logfile, *host, *port;
	long timeout_s = DEFAULT_RPC_TIMEOUT_S;
	long max_conn = DEFAULT_MAX_CONNECTIONS;
	int c, level, fd, sig;

	log_init("resbus-xmlrpc", LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			dir_opt = optarg;
			break;
		case 'l':
			listen_opt = optarg;
			break;
		case 'a':
			url_opt = optarg;
			break;
		case 't':
			if (number_parse(
				optarg, 0, INT_MAX / 1000, &timeout_s) == -1) {
				fprintf(stderr,
				    "resbus-xmlrpc: bad --timeout "
				    "'%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'm':
			if (number_parse(optarg, 1, 65536, &max_conn) == -1) {
				fprintf(stderr,
				    "resbus-xmlrpc: bad "
				    "--max-connections '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'd':
			debug = true;
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
	if (listen_opt != NULL &&
	    listen_parse(listen_opt, &host, &port) == -1) {
		fprintf(stderr,
		    "resbus-xmlrpc: bad --listen '%s': "
		    "HOST:PORT expected\n",
		    listen_opt);
		return 2;
	}

	conf = conf_server_load_dir(dir_opt, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (listen_opt == NULL) {
		if (conf->port < 0 || conf->port > 65535) {
			fprintf(stderr,
			    "%s/server.yaml: port %lld out of "
			    "range\n",
			    conf_dir_pick(dir_opt), (long long)conf->port);
			return 1;
		}
		host = xstrdup(conf->hostname != NULL ? conf->hostname : "");
		port = xasprintf("%lld", (long long)conf->port);
	}
	level = debug ? LOG_LEVEL_DEBUG : log_level_parse(conf->loglevel);
	log_set_level(level < 0 ? LOG_LEVEL_INFO : (enum log_level)level);
	if (mkdir_p(conf->logdir) == -1)
		fatal("cannot create log directory %s", conf->logdir);
	logfile = xasprintf("%s/xmlrpc.log", conf->logdir);
	if (log_open_file(logfile) == -1)
		fatal("cannot open %s", logfile);
	free(logfile);

	memset(&srv, 0, sizeof(srv));
	srv.gw.amqp_url = amqp_url_pick(url_opt, conf->amqp_url);
	srv.gw.prefix = conf->prefix;
	srv.gw.rpc_timeout_ms = timeout_s == 0 ? -1 : (int)timeout_s * 1000;
	srv.gw.wait_slice_ms = WAIT_SLICE_MS;
	srv.idle_timeout_s = IDLE_TIMEOUT_S;

	xmlrpc_init();
	signal(SIGPIPE, SIG_IGN);
	/* Every thread inherits the mask; only sigwait() below sees these. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	if ((errno = pthread_sigmask(SIG_BLOCK, &sigs, NULL)) != 0)
		fatal("pthread_sigmask");

	fd = listen_open(host, port, shown, sizeof(shown));
	free(host);
	free(port);
	/* One option and its arguments a line. */
	/* clang-format off */
	daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    on_request, &srv,
	    /* The logger first, so that no option's message escapes it. */
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)max_conn,
	    MHD_OPTION_CONNECTION_TIMEOUT, srv.idle_timeout_s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, &srv,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
	    MHD_OPTION_END);
	/* clang-format on */
	if (daemon == NULL)
		fatalx("cannot start the HTTP server on %s", shown);
	log_info("serving XML-RPC on http://%s/ and /RPC2", shown);
	bus_probe(&srv.gw);

	for (;;) {
		if ((errno = sigwait(&sigs, &sig)) != 0)
			fatal("sigwait");
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload; restart to apply "
				 "a new server.yaml");
			continue;
		}
		log_info("signal %d: stopping", sig);
		break;
	}
	atomic_store(&stopping, true);
	/* Waits for every connection's thread; long polls end within a slice.
	 */
	MHD_stop_daemon(daemon);
	xmlrpc_cleanup();
	conf_server_free(conf);
	log_info("stopped");
	return 0;
}
