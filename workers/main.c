/*
 * resbus-worker -- runs the driver commands of the pools it serves.
 *
 * This file is the command line: it reads the configuration (the
 * broker's directory with --config-dir, or a worker.yaml of its own with
 * --config), picks the pools to serve, connects to RabbitMQ and hands
 * over to the worker module on one libev loop.  A lost connection ends
 * the process with status 1; systemd (or the scripts) start it again.
 */
#include "config.h"

#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "bus.h"
#include "conf.h"
#include "filewatch.h"
#include "log.h"
#include "topo.h"
#include "util.h"
#include "worker.h"

#define DEFAULT_CONCURRENCY 64

struct options {
	const char *config_dir;
	const char *config_file;
	const char *amqp_url;
	const char *name;
	char **pools;
	size_t npools;
	int64_t concurrency; /* 0: from the configuration */
	bool debug;
};

/* What the configuration files say, whichever form they came in. */
struct settings {
	struct conf_server *server;
	struct conf_worker *worker;
	struct conf_pools *pools;
	const char *pools_path;
	const char *logdir;
	const char *prefix;
	const char *amqp_url;
	const char *queue_type;
	const char *loglevel;
	char *const *served;
	size_t nserved;
	int64_t concurrency;
	char *pools_path_owned;
	char **served_owned;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: resbus-worker [--config-dir DIR | --config FILE] "
	    "[--pool NAME]...\n"
	    "                     [--amqp-url URL] [--concurrency N] "
	    "[--name NAME] [-d]\n"
	    "\n"
	    "Runs the driver commands (cmd_new, cmd_delete) of resbus pools.\n"
	    "\n"
	    "  --config-dir DIR   read DIR/server.yaml and DIR/pools.yaml, as "
	    "resbusd\n"
	    "                     does (default $CONFIG_DIR, else " SYSCONFDIR
	    "/resbus)\n"
	    "  --config FILE      read a worker.yaml and the pools_file it "
	    "names\n"
	    "  --pool NAME        serve only pool NAME (repeatable; default: "
	    "the\n"
	    "                     worker.yaml's pools, else every pool)\n"
	    "  --amqp-url URL     RabbitMQ to use (else $RESBUS_AMQP_URL, "
	    "else the\n"
	    "                     configuration, else " RESBUS_DEFAULT_AMQP_URL
	    ")\n"
	    "  --concurrency N    commands run at once (default "
	    "%d, or worker.yaml's)\n"
	    "  --name NAME        worker name in results and connections "
	    "(default\n"
	    "                     hostname:pid)\n"
	    "  -d, --debug        log debug messages\n"
	    "  -h, --help         show this help\n"
	    "  -V, --version      show the version\n",
	    DEFAULT_CONCURRENCY);
}

static void
options_parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config-dir", required_argument, NULL, 'C'},
	    {"config", required_argument, NULL, 'c'},
	    {"pool", required_argument, NULL, 'p'},
	    {"amqp-url", required_argument, NULL, 'u'},
	    {"concurrency", required_argument, NULL, 'n'},
	    {"name", required_argument, NULL, 'N'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t n;
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "dhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			o->config_dir = optarg;
			break;
		case 'c':
			o->config_file = optarg;
			break;
		case 'p':
			o->pools = xrealloc(
			    o->pools, (o->npools + 1) * sizeof(*o->pools));
			o->pools[o->npools++] = optarg;
			break;
		case 'u':
			o->amqp_url = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, &n) == -1 || n < 1 ||
			    n > UINT16_MAX) {
				fprintf(stderr,
				    "resbus-worker: --concurrency "
				    "must be 1..%u\n",
				    (unsigned)UINT16_MAX);
				exit(1);
			}
			o->concurrency = (int64_t)n;
			break;
		case 'N':
			o->name = optarg;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("resbus-worker %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(1);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "resbus-worker: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		exit(1);
	}
	if (o->config_dir != NULL && o->config_file != NULL) {
		fprintf(stderr, "resbus-worker: --config-dir and --config "
				"exclude each other\n");
		exit(1);
	}
}

static void settings_free(struct settings *s);

/*
 * The pools S serves: --pool, else the worker file's `pools`, else every
 * pool of the pools file with commands (not `worker: external`).  Each
 * must be in the pools file, with commands.
 */
static int
settings_served(
    const struct options *o, struct settings *s, char *err, size_t errlen)
{
	size_t i;

	if (o->npools > 0) {
		s->served = o->pools;
		s->nserved = o->npools;
	}
	if (s->nserved == 0) {
		/* All pools this file has the commands of: a pool served by
		 * a team's own worker (`worker: external`) is not ours. */
		s->served_owned = xcalloc(s->pools->npools + 1, sizeof(char *));
		for (i = 0; i < s->pools->npools; i++) {
			if (conf_pool_external(&s->pools->pools[i])) {
				log_info("pool %s: worker: external in %s, "
					 "not served here",
				    s->pools->pools[i].name, s->pools_path);
				continue;
			}
			s->served_owned[s->nserved++] = s->pools->pools[i].name;
		}
		s->served = s->served_owned;
	}
	if (s->nserved == 0) {
		snprintf(err, errlen, "%s: no pools to serve", s->pools_path);
		return -1;
	}
	for (i = 0; i < s->nserved; i++) {
		const struct conf_pool *cp;

		if ((cp = conf_pools_find(s->pools, s->served[i])) == NULL) {
			snprintf(err, errlen, "%s: no pool named '%s'",
			    s->pools_path, s->served[i]);
			return -1;
		}
		if (conf_pool_external(cp)) {
			snprintf(err, errlen,
			    "%s: pool '%s' has worker: "
			    "external, no commands to serve it with",
			    s->pools_path, s->served[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Reads the configuration into S (freed with settings_free() either way).
 * 0, or -1 with a message in ERR.
 */
static int
settings_read(
    const struct options *o, struct settings *s, char *err, size_t errlen)
{
	char *path = NULL;

	memset(s, 0, sizeof(*s));
	if (o->config_file != NULL) {
		s->worker = conf_worker_load(o->config_file, err, errlen);
		if (s->worker == NULL)
			return -1;
		s->pools_path = s->worker->pools_file;
		s->logdir = s->worker->logdir;
		s->prefix = s->worker->prefix;
		s->amqp_url = s->worker->amqp_url;
		s->queue_type = s->worker->queue_type;
		s->served = s->worker->pools;
		s->nserved = s->worker->npools;
		s->concurrency = s->worker->concurrency;
	} else {
		s->server = conf_server_load_dir(o->config_dir, err, errlen);
		if (s->server == NULL)
			return -1;
		path = xasprintf("%s/pools.yaml", conf_dir_pick(o->config_dir));
		s->pools_path = s->pools_path_owned = path;
		s->logdir = s->server->logdir;
		s->prefix = s->server->prefix;
		s->amqp_url = s->server->amqp_url;
		s->queue_type = s->server->queue_type;
		s->loglevel = s->server->loglevel;
	}
	s->pools = conf_pools_load(s->pools_path, err, errlen);
	if (s->pools == NULL)
		return -1;
	if (settings_served(o, s, err, errlen) == -1)
		return -1;
	if (o->concurrency > 0)
		s->concurrency = o->concurrency;
	if (s->concurrency <= 0)
		s->concurrency = DEFAULT_CONCURRENCY;
	if (s->concurrency > UINT16_MAX) {
		snprintf(err, errlen, "%s: concurrency must be 1..%u",
		    o->config_file != NULL ? o->config_file : s->pools_path,
		    (unsigned)UINT16_MAX);
		return -1;
	}
	if (s->logdir == NULL)
		s->logdir = "/var/log/resbus";
	if (s->prefix == NULL)
		s->prefix = RESBUS_DEFAULT_PREFIX;
	return 0;
}

/* Loads the configuration; prints the error and exits 1 on failure. */
static void
settings_load(const struct options *o, struct settings *s)
{
	char err[1024];

	if (settings_read(o, s, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
}

/*
 * The worker's reload: the configuration read as at start, of which the
 * worker takes the pools and the names to serve.  What else changed
 * (bus, log directory, concurrency) takes a restart.
 */
static int
settings_reload(void *arg, struct conf_pools **pools, char ***served,
    size_t *nserved, char *err, size_t errlen)
{
	const struct options *o = arg;
	struct settings s;
	size_t i;

	if (settings_read(o, &s, err, errlen) == -1) {
		settings_free(&s);
		return -1;
	}
	*served = xcalloc(s.nserved + 1, sizeof(**served));
	for (i = 0; i < s.nserved; i++)
		(*served)[i] = xstrdup(s.served[i]);
	*nserved = s.nserved;
	*pools = s.pools;
	s.pools = NULL;
	settings_free(&s);
	return 0;
}

static void
settings_free(struct settings *s)
{
	conf_server_free(s->server);
	conf_worker_free(s->worker);
	conf_pools_free(s->pools);
	free(s->pools_path_owned);
	free(s->served_owned);
}

/* Descriptors 0-2 must exist, or a pipe could take their place. */
static void
stdio_ensure(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/* Two descriptors per running command: allow as many as we may. */
static void
nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit NOFILE");
	}
}

/* The worker's name: --name, else HOST:PID. */
static char *
worker_name(const struct options *o)
{
	char host[HOST_NAME_MAX + 1];

	if (o->name != NULL)
		return xstrdup(o->name);
	if (gethostname(host, sizeof(host)) == -1)
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	return xasprintf("%s:%d", host, (int)getpid());
}

/* The worker's configuration from the settings; it borrows their strings. */
static void
worker_config_fill(struct worker_config *wc, struct options *o,
    const struct settings *s, const char *name, const char *url)
{
	memset(wc, 0, sizeof(*wc));
	wc->name = name;
	wc->prefix = s->prefix;
	wc->logdir = s->logdir;
	wc->pools = s->pools;
	wc->served = s->served;
	wc->nserved = s->nserved;
	wc->concurrency = (uint16_t)s->concurrency;
	wc->reload = settings_reload;
	wc->reload_arg = o;
	if (s->worker != NULL) {
		wc->broker_users = s->worker->broker_users;
		wc->nbroker_users = s->worker->nbroker_users;
	}
	wc->url = url;
	wc->queue_flags = topo_queue_flags(s->queue_type);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct settings s;
	struct worker_config wc;
	struct worker *w;
	struct bus *bus;
	struct ev_loop *loop;
	struct filewatch pools_watch;
	char err[1024];
	char *name;
	const char *url;
	int status;

	stdio_ensure();
	options_parse(argc, argv, &o);
	log_init("resbus-worker", LOG_LEVEL_INFO);
	settings_load(&o, &s);
	log_setup(o.debug, s.loglevel, NULL, NULL);

	(void)signal(SIGPIPE, SIG_IGN);
	nofile_raise();

	name = worker_name(&o);
	loop = ev_default_loop(0);
	if (loop == NULL)
		fatalx("cannot initialise libev");

	url = amqp_url_pick(o.amqp_url, s.amqp_url);
	bus = bus_connect(url, name, err, sizeof(err));
	if (bus == NULL)
		fatalx("cannot connect to RabbitMQ: %s", err);

	worker_config_fill(&wc, &o, &s, name, url);
	w = worker_new(loop, bus, &wc);
	if (worker_start(w, err, sizeof(err)) == -1) {
		/* A queue of the other type: a restart would meet it again. */
		if (bus_conflict(bus)) {
			log_warnx("cannot start: %s", err);
			exit(BUS_EXIT_CONFIG);
		}
		fatalx("cannot start: %s", err);
	}
	log_info("worker %s started: %zu pool(s), concurrency %u", name,
	    s.nserved, (unsigned)wc.concurrency);
	/* The pools file edited on disk is read again (through SIGHUP). */
	filewatch_start(loop, &pools_watch, s.pools_path);

	ev_run(loop, 0);

	filewatch_stop(loop, &pools_watch);

	status = worker_exit_status(w);
	worker_free(w);
	log_info("worker %s stopped", name);
	free(name);
	settings_free(&s);
	free(o.pools);
	return status;
}
