/*
 * resbus-maint -- the operators' command-line tool.
 *
 *	resbus-maint [options] resource-list [--up]
 *	resbus-maint [options] resource-info RESOURCE
 *	resbus-maint [options] resource-delete ID... | --all | --unused
 *	resbus-maint [options] resource-logs RESOURCE...
 *	resbus-maint [options] ticket-list
 *	resbus-maint [options] ticket-close ID
 *	resbus-maint [options] foreach-resource [--command CMD]
 *	resbus-maint [options] pool-list
 *	resbus-maint [options] pool-pause|pool-resume|pool-drain POOL
 *	resbus-maint [options] reload
 *	resbus-maint [options] broker-status
 *
 * Where resalloc-maint has the command, the output is resalloc-maint's,
 * line for line, because scripts parse it.  Unlike resalloc-maint, which
 * opens the database, every command is a ControlRequest to resbusd on the
 * control queue: the broker owns the state, so asking it is the only way
 * to see the state it acts on, and its answer comes after the change is
 * made.  Commands that change anything are allowed to the users listed in
 * server.yaml's `admins` only; the request carries the login user as its
 * AMQP user_id, which RabbitMQ verifies, and a refusal is printed with the
 * broker's reason.
 *
 * Two commands work partly here (local.c): resource-logs runs tail(1) on
 * the hook logs, and foreach-resource runs a shell command per resource.
 *
 * Exit status: 0 done, 1 failed or refused, 2 usage error.
 *
 * This file holds the usage text, the messages, the option parsing and
 * main; commands.c the commands and their table.
 */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "util.h"
#include "maint.h"

static const char usage_text[] =
    "usage: resbus-maint [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  resource-list [--up]          live resources (--up: UP ones only)\n"
    "  resource-info RESOURCE        one resource (ID or name) as JSON\n"
    "  resource-delete ID...|--all|--unused\n"
    "                                delete UP resources; --all: every UP\n"
    "                                one (their tickets fail), --unused:\n"
    "                                UP without ticket and livecheck failures\n"
    "  resource-logs RESOURCE...     follow the hook logs (tail -F)\n"
    "  ticket-list                   open, ready and failed tickets\n"
    "  ticket-close ID               close a ticket\n"
    "  foreach-resource [--command CMD]\n"
    "                                run CMD (default: '" DEFAULT_FOREACH_COMMAND
    "')\n"
    "                                for every live resource; {name}, {state}\n"
    "                                and {data_utf8} stand for its values\n"
    "  pool-list                     pools and their counts\n"
    "  pool-pause POOL               start nothing more in POOL\n"
    "  pool-resume POOL              undo pool-pause or pool-drain\n"
    "  pool-drain POOL               pause POOL and delete its free resources\n"
    "  reload                        reload pools.yaml\n"
    "  broker-status                 which resbusd is active, since when\n"
    "\n"
    "options:\n"
    "  --config-dir DIR    where server.yaml is (default: $CONFIG_DIR, else\n"
    "                      " SYSCONFDIR "/resbus, if it exists): amqp_url,\n"
    "                      prefix and logdir\n"
    "  --amqp-url URL      AMQP server (default: $RESBUS_AMQP_URL, else\n"
    "                      server.yaml, else " RESBUS_DEFAULT_AMQP_URL ")\n"
    "  --prefix PREFIX     bus name prefix (default: $RESBUS_PREFIX, else\n"
    "                      server.yaml, else " RESBUS_DEFAULT_PREFIX ")\n"
    "  --timeout SEC       wait this long for resbusd (default: 30; 0: no\n"
    "                      limit)\n"
    "  --json              JSON output (resource-list, ticket-list,\n"
    "                      pool-list)\n"
    "  --version           print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "resource-delete, ticket-close, pool-pause, pool-resume, pool-drain and\n"
    "reload are allowed to the users in server.yaml's admins only.\n"
    "Exit status: 0 success, 1 failure or refusal, 2 usage error.\n";

static void
usage(FILE *fp)
{
	fputs(usage_text, fp);
}

int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("resbus-maint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'resbus-maint --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("resbus-maint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
}

static void
on_sigint(int sig)
{
	static const char msg[] = "\nInterrupted by user.\n";
	ssize_t n;

	(void)sig;
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

/* server.yaml of --config-dir, else of $CONFIG_DIR or the default
 * directory if it is there.  0, or 1 with the problem printed. */
static int
maint_load_config(struct maint *m)
{
	char err[1024], *path;

	m->config_dir = conf_dir_pick(m->config_dir);
	path = xasprintf("%s/server.yaml", m->config_dir);
	if (!m->config_dir_given && access(path, F_OK) == -1) {
		free(path);
		return 0;
	}
	m->server = conf_server_load(path, err, sizeof(err));
	free(path);
	if (m->server == NULL) {
		say("%s", err);
		return 1;
	}
	return 0;
}

/* The options; those of the commands are checked against OK_* per command. */
enum {
	OPT_CONFIG_DIR = 256,
	OPT_AMQP_URL,
	OPT_PREFIX,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_UP,
	OPT_ALL,
	OPT_UNUSED,
	OPT_COMMAND,
	OPT_VERSION
};
static const struct option longopts[] = {
    {"config-dir", required_argument, NULL, OPT_CONFIG_DIR},
    {"amqp-url", required_argument, NULL, OPT_AMQP_URL},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"up", no_argument, NULL, OPT_UP},
    {"all", no_argument, NULL, OPT_ALL},
    {"unused", no_argument, NULL, OPT_UNUSED},
    {"command", required_argument, NULL, OPT_COMMAND},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What the command line gave besides the command and its arguments. */
struct options {
	const char *amqp_url, *prefix;
	unsigned given; /* OK_* of the options given */
};

/*
 * Reads the options into M and O; -1 to go on (optind at the command),
 * else the exit code.
 */
static int
options_read(struct maint *m, struct options *o, int argc, char **argv)
{
	uint64_t sec;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONFIG_DIR:
			m->config_dir = optarg;
			m->config_dir_given = true;
			break;
		case OPT_AMQP_URL:
			o->amqp_url = optarg;
			break;
		case OPT_PREFIX:
			o->prefix = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_u64(optarg, &sec) == -1 ||
			    sec > INT_MAX / 1000)
				return usage_error("bad --timeout '%s': give "
						   "whole seconds",
				    optarg);
			m->timeout_ms = sec == 0 ? -1 : (int)sec * 1000;
			break;
		case OPT_JSON:
			m->json = true;
			o->given |= OK_JSON;
			break;
		case OPT_UP:
			m->up = true;
			o->given |= OK_UP;
			break;
		case OPT_ALL:
			m->all = true;
			o->given |= OK_ALL;
			break;
		case OPT_UNUSED:
			m->unused = true;
			o->given |= OK_ALL;
			break;
		case OPT_COMMAND:
			m->command = optarg;
			o->given |= OK_COMMAND;
			break;
		case OPT_VERSION:
			printf("resbus-maint %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return usage_error(
			    "option %s needs an argument", argv[optind - 1]);
		default:
			if (optopt != 0)
				return usage_error(
				    "unknown option -%c", optopt);
			return usage_error(
			    "unknown option %s", argv[optind - 1]);
		}
	}
	return -1;
}

/*
 * The command at optind, its options and its arguments checked, M's
 * arguments set; NULL with the exit code in *RC if they are wrong.
 */
static const struct maint_cmd *
command_read(
    struct maint *m, const struct options *o, int argc, char **argv, int *rc)
{
	const struct maint_cmd *c;
	unsigned extra;

	if (optind >= argc) {
		*rc = usage_error("a command is required");
		return NULL;
	}
	if ((c = maint_cmd_find(argv[optind])) == NULL) {
		*rc = usage_error("unknown command '%s'", argv[optind]);
		return NULL;
	}
	if ((extra = o->given & ~c->opts) != 0) {
		*rc = usage_error("%s does not take %s", c->name,
		    (extra & OK_UP)	   ? "--up"
		    : (extra & OK_ALL)	   ? "--all or --unused"
		    : (extra & OK_COMMAND) ? "--command"
					   : "--json");
		return NULL;
	}
	m->args = argv + optind + 1;
	m->nargs = (size_t)(argc - optind - 1);
	if (m->nargs < c->min_args) {
		*rc = usage_error("%s needs %s", c->name,
		    c->max_args == 1 ? "an argument" : "arguments");
		return NULL;
	}
	if (m->nargs > c->max_args) {
		*rc = usage_error("%s: unexpected argument '%s'", c->name,
		    m->args[c->max_args]);
		return NULL;
	}
	return c;
}

int
main(int argc, char **argv)
{
	struct options o = {NULL, NULL, 0};
	const struct maint_cmd *cmd = NULL;
	struct sigaction sa;
	struct maint m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.timeout_ms = DEFAULT_TIMEOUT_S * 1000;
	if ((rc = options_read(&m, &o, argc, argv)) != -1 ||
	    (cmd = command_read(&m, &o, argc, argv, &rc)) == NULL)
		return rc;

	if (maint_load_config(&m) != 0)
		return 1;
	if (o.prefix == NULL)
		o.prefix = getenv("RESBUS_PREFIX");
	if (o.prefix == NULL || *o.prefix == '\0')
		o.prefix = m.server != NULL && m.server->prefix != NULL
			       ? m.server->prefix
			       : RESBUS_DEFAULT_PREFIX;
	m.prefix = o.prefix;
	m.url = amqp_url_pick(
	    o.amqp_url, m.server != NULL ? m.server->amqp_url : NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	rc = cmd->run(&m, cmd);
	resbus_client_free(m.client);
	conf_server_free(m.server);
	return rc;
}
