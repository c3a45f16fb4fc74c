/*
 * resbusd -- the resbus broker.
 *
 * Reads server.yaml and pools.yaml from the configuration directory,
 * opens the store, becomes the one broker that writes it (or waits as a
 * standby until it can), and runs one libev loop until SIGINT or SIGTERM.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <ev.h>

#include "broker.h"
#include "bus.h"
#include "conf.h"
#include "filewatch.h"
#include "log.h"
#include "standby.h"
#include "store.h"
#include "util.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: resbusd [--config-dir DIR] [--amqp-url URL] [--check-config]\n"
	    "               [-d|--debug] [-h|--help] [-V|--version]\n"
	    "\n"
	    "The resbus broker: matches tickets to resources of the pools in\n"
	    "DIR/pools.yaml, with DIR/server.yaml for the store, logs and bus.\n"
	    "\n"
	    "  --config-dir DIR  configuration directory (default: $CONFIG_DIR,\n"
	    "                    else " SYSCONFDIR "/resbus)\n"
	    "  --amqp-url URL    AMQP URL (default: $RESBUS_AMQP_URL, else\n"
	    "                    server.yaml's amqp_url, else\n"
	    "                    " RESBUS_DEFAULT_AMQP_URL ")\n"
	    "  --check-config    validate the configuration and exit\n"
	    "  -d, --debug       log debug messages\n"
	    "  -h, --help        show this help\n"
	    "  -V, --version     show the version\n");
}

static bool stopping;

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("signal %d: stopping", w->signum);
	stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: read pools.yaml again; a bad file keeps the running pools. */
static void
on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct broker *b = w->data;
	char err[1024];

	if (broker_reload(b, err, sizeof(err)) == -1)
		log_warnx("reload refused, the running pools stay: %s", err);
}

/* What the command line asked for. */
struct options {
	const char *dir, *url;
	bool check, debug;
};

/* Reads the command line into O; -1 to go on, else the exit code. */
static int
options_read(struct options *o, int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"config-dir", required_argument, NULL, 'c'},
	    {"amqp-url", required_argument, NULL, 'a'},
	    {"check-config", no_argument, NULL, 'k'},
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
		case 'a':
			o->url = optarg;
			break;
		case 'k':
			o->check = true;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("resbusd %s\n", PACKAGE_VERSION);
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

/* --check-config's verdict on a configuration that loaded. */
static void
check_report(const char *dir, const struct conf_pools *pools)
{
	size_t i, next = 0;

	for (i = 0; i < pools->npools; i++)
		next += conf_pool_external(&pools->pools[i]);
	if (next > 0)
		printf("%s: configuration OK, %zu pools (%zu with worker: "
		       "external, served only by a worker with their "
		       "commands)\n",
		    dir, pools->npools, next);
	else
		printf("%s: configuration OK, %zu pools\n", dir, pools->npools);
}

/* This resbusd, as the store's leadership and the standbys name it. */
static char *
who_am_i(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return xasprintf("pid %d on %s", (int)getpid(), host);
}

/*
 * The active broker: takes the store, the warm connections (BUS and PUB,
 * or NULL), POOLS and PATH (pools.yaml's, watched for changes), and runs
 * the loop until a signal or a lost connection stops it.
 */
static void
run_active(struct ev_loop *loop, const char *url, struct conf_server *server,
    struct conf_pools *pools, char *path, struct store *store, struct bus *bus,
    struct bus *pub, const char *who, int64_t epoch)
{
	struct filewatch pools_watch;
	ev_signal sighup;
	struct broker *b;

	log_info("active: this resbusd (%s) leads the store from now on "
		 "(epoch %lld)",
	    who, (long long)epoch);
	/* Only both warm: the broker makes the pair on one node. */
	if (bus == NULL || pub == NULL || bus_broken(bus) || bus_broken(pub)) {
		bus_free(bus);
		bus_free(pub);
		bus = pub = NULL;
	}

	b = broker_new(loop, url, server, pools, path, store, bus, pub);
	if (b == NULL) {
		store_close(store);
		fatalx("cannot start");
	}
	broker_set_leader(b, who, epoch, now_wall_ms());
	ev_signal_init(&sighup, on_sighup, SIGHUP);
	sighup.data = b;
	ev_signal_start(loop, &sighup);
	/* pools.yaml edited on disk is read again, as resalloc does on
	 * every loop (through SIGHUP); ev_stat keeps PATH while it watches. */
	filewatch_start(loop, &pools_watch, path);
	ev_unref(loop);
	ev_unref(loop);
	ev_unref(loop);

	ev_run(loop, 0);

	filewatch_stop(loop, &pools_watch);
	broker_free(b);
	store_close(store);
}

int
main(int argc, char *argv[])
{
	struct options o = {NULL, NULL, false, false};
	struct conf_server *server;
	struct conf_pools *pools;
	struct ev_loop *loop;
	struct store *store;
	ev_signal sigint, sigterm;
	struct standby *standby;
	struct bus *bus, *pub;
	char err[1024], *path, *who;
	const char *dir, *url;
	int64_t epoch;
	int rc;

	log_init("resbusd", LOG_LEVEL_INFO);
	if ((rc = options_read(&o, argc, argv)) != -1)
		return rc;
	signal(SIGPIPE, SIG_IGN);

	dir = conf_dir_pick(o.dir);
	server = conf_server_load_dir(dir, err, sizeof(err));
	if (server == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* --check-config prints the verdict alone: no notes on stderr. */
	if (o.check)
		log_set_level(LOG_LEVEL_WARN);
	path = xasprintf("%s/pools.yaml", dir);
	pools = conf_pools_load(path, err, sizeof(err));
	if (pools == NULL || o.check) {
		if (pools == NULL)
			fprintf(stderr, "%s\n", err);
		else
			check_report(dir, pools);
		conf_pools_free(pools);
		conf_server_free(server);
		free(path);
		return pools == NULL ? 1 : 0;
	}
	log_setup(o.debug, server->loglevel, server->logdir, "main.log");

	store = store_open(server->db_url, err, sizeof(err));
	if (store == NULL)
		fatalx("store: %s", err);
	who = who_am_i();
	url = amqp_url_pick(o.url, server->amqp_url);

	/* A paused resbusd loses its deliveries about when it loses its
	 * lease (two missed heartbeats); the standby's connection, which
	 * the broker takes over, asks for the same. */
	bus_heartbeat_default((int)(server->leader_lease_s + 1) / 2);
	loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigterm);

	standby = standby_new(loop, server, url, who, store);
	epoch = standby_run(standby);
	store = standby_take_store(standby);
	bus = standby_take_bus(standby, &pub);
	standby_free(standby);
	if (stopping || epoch == -1) {
		bus_free(bus);
		bus_free(pub);
		if (store != NULL)
			store_close(store);
		conf_pools_free(pools);
	} else
		run_active(loop, url, server, pools, path, store, bus, pub, who,
		    epoch);
	free(path);
	free(who);
	conf_server_free(server);
	ev_loop_destroy(loop);
	log_info("stopped");
	return 0;
}
