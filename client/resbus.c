/*
 * resbus -- the command-line client, compatible with resalloc's CLI.
 *
 *	resbus [global options] ticket --tag TAG [--tag TAG]... [--sandbox S]
 *	resbus [global options] ticket-check ID
 *	resbus [global options] ticket-wait ID
 *	resbus [global options] ticket-close ID
 *	resbus [global options] ticket-renew ID
 *	resbus [global options] ticket-hold ID [--interval SEC]
 *
 * Outputs and exit codes are resalloc's, so scripts written for
 * `resalloc` work with `resbus` put in its place: resource data goes to
 * stdout without an added newline, warnings go to stderr, usage errors
 * exit 2, everything else that fails exits 1.  resalloc's --connection is
 * accepted too and used only when it names an AMQP server.
 *
 * Unlike resalloc, a request never needs the broker to be up: it waits in
 * a durable queue.  So that nobody waits in silence, every command first
 * checks whether resbusd consumes its request queue and warns if not,
 * and ticket-wait on a terminal keeps a line on stderr saying why the
 * ticket waits and for how long (nothing when stderr is not a terminal,
 * so scripts see resalloc's output).
 */
#include "config.h"

#include <sys/ioctl.h>

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "tags.h"
#include "topo.h"
#include "util.h"

#define EXIT_USAGE 2
#define DEFAULT_TICKET_TIMEOUT_S 60
#define DEFAULT_RPC_TIMEOUT_S 60

struct cli {
	const char *url;
	const char *prefix;
	struct resbus_client *client;
};

struct command {
	const char *name;
	int (*run)(struct cli *, int, char **);
};

static const char usage_text[] =
    "usage: resbus [--amqp-url URL] [--connection URL] [--prefix PREFIX]\n"
    "              [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  ticket --tag TAG [--tag TAG]... [--sandbox SANDBOX] [--timeout SEC]\n"
    "         [--label KEY=VALUE]... [--class CLASS] [--lease SEC]\n"
    "         [--deadline SEC] [--owner NAME] [--refuse-unprovidable]\n"
    "        ask for a resource with all the tags; prints the ticket id\n"
    "        (default timeout: 60 s for resbusd to accept the request).\n"
    "        With --lease, the ticket is closed when nobody renews it\n"
    "        within SEC seconds (see ticket-hold); with --deadline, when\n"
    "        it has no resource SEC seconds from now.  --owner: take it\n"
    "        for NAME (only server.yaml's delegates may).  With\n"
    "        --refuse-unprovidable, a ticket for tags no pool provides is\n"
    "        refused instead of waiting for a pool that does\n"
    "  ticket-check ID [--timeout SEC]\n"
    "        print the resource data of ticket ID if it has a resource;\n"
    "        exit 0 only if it has one and is still open\n"
    "  ticket-wait ID [--timeout SEC]\n"
    "        wait until ticket ID has a resource and print its data\n"
    "        (default: wait without limit); on a terminal, stderr shows\n"
    "        why the ticket waits and for how long meanwhile\n"
    "  ticket-close ID [--timeout SEC]\n"
    "        close ticket ID and give its resource back\n"
    "  ticket-renew ID [--timeout SEC]\n"
    "        renew the lease of ticket ID once\n"
    "  ticket-hold ID [--interval SEC]\n"
    "        renew the lease of ticket ID every SEC seconds (default 10)\n"
    "        until the ticket is closed or failed; if this process dies,\n"
    "        the lease lapses and the resource is released\n"
    "\n"
    "global options:\n"
    "  --amqp-url URL      AMQP server (default: $RESBUS_AMQP_URL, else\n"
    "                      " RESBUS_DEFAULT_AMQP_URL ")\n"
    "  --connection URL    resalloc's option; used only if URL is amqp://\n"
    "                      or amqps://, otherwise ignored\n"
    "  --prefix PREFIX     bus name prefix (default: $RESBUS_PREFIX, else\n"
    "                      " RESBUS_DEFAULT_PREFIX ")\n"
    "  --version           print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "--timeout 0 waits without limit.  Exit status: 0 success, 1 failure,\n"
    "2 usage error.\n";

static const char synopsis_text[] =
    "usage: resbus [GLOBAL OPTIONS] ticket --tag TAG [--tag TAG]...\n"
    "                  [--sandbox SANDBOX] [--timeout SEC]\n"
    "       resbus [GLOBAL OPTIONS] ticket-check ID [--timeout SEC]\n"
    "       resbus [GLOBAL OPTIONS] ticket-wait ID [--timeout SEC]\n"
    "       resbus [GLOBAL OPTIONS] ticket-close ID [--timeout SEC]\n"
    "       resbus [GLOBAL OPTIONS] ticket-renew ID [--timeout SEC]\n"
    "       resbus [GLOBAL OPTIONS] ticket-hold ID [--interval SEC]\n"
    "Try 'resbus --help' for more information.\n";

static void
usage(FILE *fp)
{
	fputs(usage_text, fp);
}

static int usage_error(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Says what is wrong, then the usage, on stderr; returns EXIT_USAGE. */
static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("resbus: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	fputs(synopsis_text, stderr);
	return EXIT_USAGE;
}

/* getopt_long() found an unknown option just before argv[OPTIND]. */
static int
bad_option(char **argv, int ind, bool takes_id)
{
	const char *arg = argv[ind - 1];

	/* A negative number is a bad ticket ID rather than an option. */
	if (takes_id && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9')
		return usage_error("bad ticket ID '%s': not a non-negative "
				   "integer",
		    arg);
	if (optopt != 0 && arg[0] == '-' && arg[1] != '-')
		return usage_error("unknown option -%c", optopt);
	return usage_error("unknown option %s", arg);
}

static int
missing_argument(char **argv, int ind)
{
	return usage_error("option %s needs an argument", argv[ind - 1]);
}

/*
 * resalloc's CLI says so on Ctrl-C.  Only async-signal-safe calls here:
 * the process is usually blocked in poll() inside the bus library.
 */
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

/* SEC as a timeout in ms; 0 means no limit (-1). */
static int
parse_timeout(const char *s, int *timeout_ms)
{
	uint64_t sec;

	if (parse_u64(s, &sec) == -1 || sec > INT_MAX / 1000)
		return -1;
	*timeout_ms = sec == 0 ? -1 : (int)sec * 1000;
	return 0;
}

static int
cli_connect(struct cli *cli)
{
	char err[1024];

	cli->client =
	    resbus_client_new(cli->url, cli->prefix, err, sizeof(err));
	if (cli->client == NULL) {
		fprintf(stderr, "resbus: %s\n", err);
		return -1;
	}
	return 0;
}

/* Connects and warns when nobody serves requests right now. */
static int
cli_start(struct cli *cli, int timeout_ms)
{
	char *queue;

	if (cli_connect(cli) == -1)
		return -1;
	if (resbus_client_broker_present(cli->client) != 0)
		return 0;
	queue = topo_request_queue(cli->prefix);
	if (timeout_ms < 0)
		fprintf(stderr,
		    "resbus: warning: resbusd is not running "
		    "(nobody consumes %s); waiting\n",
		    queue);
	else
		fprintf(stderr,
		    "resbus: warning: resbusd is not running "
		    "(nobody consumes %s); waiting up to %d s\n",
		    queue, timeout_ms / 1000);
	free(queue);
	return 0;
}

static int
cli_fail(struct cli *cli)
{
	fprintf(stderr, "resbus: %s\n", resbus_client_error(cli->client));
	return 1;
}

static int
write_output(const struct resbus_ticket_info *info)
{
	if (info->output_len > 0 && fwrite(info->output, 1, info->output_len,
					stdout) != info->output_len)
		return -1;
	return fflush(stdout) == EOF ? -1 : 0;
}

enum {
	OPT_TIMEOUT = 256,
	OPT_LABEL,
	OPT_CLASS,
	OPT_LEASE,
	OPT_DEADLINE,
	OPT_OWNER,
	OPT_REFUSE_UNPROVIDABLE,
	OPT_INTERVAL,
};

/*
 * Parses `COMMAND ID [--timeout SEC]` into *id and *timeout_ms (left as
 * is without --timeout).  0, or an exit status for a usage error.
 */
static int
parse_id_command(
    int argc, char **argv, uint64_t *id, int *timeout_ms, bool *done)
{
	static const struct option longopts[] = {
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	*done = false;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, timeout_ms) == -1)
				return usage_error("bad --timeout '%s': give "
						   "whole seconds",
				    optarg);
			break;
		case 'h':
			usage(stdout);
			*done = true;
			return 0;
		case ':':
			return missing_argument(argv, optind);
		default:
			return bad_option(argv, optind, true);
		}
	}
	if (optind >= argc)
		return usage_error("%s needs a ticket ID", argv[0]);
	if (optind + 1 < argc)
		return usage_error(
		    "unexpected argument '%s'", argv[optind + 1]);
	if (parse_u64(argv[optind], id) == -1)
		return usage_error("bad ticket ID '%s': not a non-negative "
				   "integer",
		    argv[optind]);
	return 0;
}

/*
 * The start of every `COMMAND ID [--timeout SEC]`: parses the arguments
 * and connects.  false with *rc the exit status when the command is
 * already done (--help, a usage error, no connection).
 */
static bool
cli_id_start(struct cli *cli, int argc, char **argv, uint64_t *id,
    int *timeout_ms, int *rc)
{
	bool done;

	if ((*rc = parse_id_command(argc, argv, id, timeout_ms, &done)) != 0 ||
	    done)
		return false;
	if (cli_start(cli, *timeout_ms) == -1) {
		*rc = 1;
		return false;
	}
	return true;
}

/* What `resbus ticket` was asked for; the strings point into argv. */
struct ticket_args {
	struct resbus_ticket_opts opts;
	int timeout_ms;
	const char **labels;
	char **tags;
	size_t ntags;
};

/*
 * Reads the options of `resbus ticket` into A.  Returns -1 to go on, or
 * the exit code when the command ends here (--help, a usage error).
 */
static int
ticket_options(struct ticket_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tag", required_argument, NULL, 't'},
	    {"sandbox", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"label", required_argument, NULL, OPT_LABEL},
	    {"class", required_argument, NULL, OPT_CLASS},
	    {"lease", required_argument, NULL, OPT_LEASE},
	    {"deadline", required_argument, NULL, OPT_DEADLINE},
	    {"owner", required_argument, NULL, OPT_OWNER},
	    {"refuse-unprovidable", no_argument, NULL, OPT_REFUSE_UNPROVIDABLE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, secs;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			a->tags[a->ntags++] = optarg;
			break;
		case 's':
			a->opts.sandbox = optarg;
			break;
		case OPT_LABEL:
			if (strchr(optarg, '=') == NULL)
				return usage_error("bad --label '%s': give "
						   "KEY=VALUE",
				    optarg);
			a->labels[a->opts.nlabels++] = optarg;
			break;
		case OPT_CLASS:
			a->opts.class_ = optarg;
			break;
		case OPT_OWNER:
			if (*optarg == '\0' || strlen(optarg) > 128)
				return usage_error("bad --owner '%s': give 1 "
						   "to 128 bytes",
				    optarg);
			a->opts.owner = optarg;
			break;
		case OPT_REFUSE_UNPROVIDABLE:
			a->opts.refuse_unprovidable = true;
			break;
		case OPT_LEASE:
		case OPT_DEADLINE:
			if (parse_timeout(optarg, &secs) == -1 || secs <= 0)
				return usage_error("bad --%s '%s': give whole "
						   "seconds",
				    ch == OPT_LEASE ? "lease" : "deadline",
				    optarg);
			if (ch == OPT_LEASE)
				a->opts.lease_s = (uint32_t)(secs / 1000);
			else
				a->opts.deadline_ms = now_wall_ms() + secs;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &a->timeout_ms) == -1)
				return usage_error("bad --timeout '%s': give "
						   "whole seconds",
				    optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return missing_argument(argv, optind);
		default:
			return bad_option(argv, optind, false);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (a->ntags == 0)
		return usage_error("%s", "ticket needs at least one --tag");
	return -1;
}

/* Refuses bad input before connecting, let alone waiting. */
static bool
ticket_args_valid(const struct ticket_args *a)
{
	size_t i;

	for (i = 0; i < a->ntags; i++)
		if (!tag_valid(a->tags[i])) {
			fprintf(
			    stderr, "resbus: invalid tag '%s'\n", a->tags[i]);
			return false;
		}
	if (a->ntags > TAGSET_MAX_TAGS) {
		fprintf(stderr, "resbus: too many tags (at most %d)\n",
		    TAGSET_MAX_TAGS);
		return false;
	}
	if (a->opts.sandbox != NULL && !sandbox_valid(a->opts.sandbox)) {
		fprintf(
		    stderr, "resbus: invalid sandbox '%s'\n", a->opts.sandbox);
		return false;
	}
	return true;
}

static int
cmd_ticket(struct cli *cli, int argc, char **argv)
{
	struct ticket_args a = {
	    {0}, DEFAULT_TICKET_TIMEOUT_S * 1000, NULL, NULL, 0};
	uint64_t id;
	bool timed_out;
	int rc = 1;

	a.tags = xcalloc((size_t)argc, sizeof(*a.tags));
	a.labels = xcalloc((size_t)argc, sizeof(*a.labels));
	a.opts.labels = a.labels;
	if ((rc = ticket_options(&a, argc, argv)) != -1)
		goto out;
	rc = 1;
	if (!ticket_args_valid(&a) || cli_start(cli, a.timeout_ms) == -1)
		goto out;
	if (resbus_ticket_take_opts(cli->client, a.tags, a.ntags, &a.opts,
		a.timeout_ms, &id, &timed_out) == -1) {
		rc = cli_fail(cli);
		goto out;
	}
	printf("%" PRIu64 "\n", id);
	rc = fflush(stdout) == EOF ? 1 : 0;
out:
	free(a.labels);
	free(a.tags);
	return rc;
}

static int
cmd_ticket_check(struct cli *cli, int argc, char **argv)
{
	struct resbus_ticket_info info;
	int timeout_ms = DEFAULT_RPC_TIMEOUT_S * 1000;
	uint64_t id;
	int rc;

	if (!cli_id_start(cli, argc, argv, &id, &timeout_ms, &rc))
		return rc;
	if (resbus_ticket_query(cli->client, id, timeout_ms, &info) == -1)
		return cli_fail(cli);
	/* resalloc: at most one warning, each one makes the exit status 1. */
	rc = 0;
	if (!info.exists) {
		fputs("WARNING: non-existing ticket\n", stderr);
		rc = 1;
	} else if (info.closed) {
		fputs("WARNING: already closed ticket\n", stderr);
		rc = 1;
	} else if (info.failed) {
		fputs("WARNING: assigned resource failed\n", stderr);
		rc = 1;
	}
	if (info.assigned) {
		if (write_output(&info) == -1)
			rc = 1;
	} else {
		fputs("ticket is still not processed\n", stderr);
		rc = 1;
	}
	resbus_ticket_info_clear(&info);
	return rc;
}

/*
 * The line ticket-wait keeps on a terminal's stderr while the ticket
 * waits, "ticket 42 waiting for 1m05s: <resbusd's reason>", drawn again
 * in place (a carriage return, then blanks over what is left of the
 * previous one) every second and whenever the reason changes, and cut to
 * the terminal's width so that it never wraps.  Control characters of
 * the reason are shown as '?': it cannot move the cursor.
 */
struct waitline {
	uint64_t id;
	size_t shown; /* columns on the line now */
};

static size_t
waitline_columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		return ws.ws_col;
	return 80;
}

/* A duration as "12s", "3m07s", "4h05m" or "2d03h". */
static void
waitline_age(char *out, size_t len, int64_t ms)
{
	long long s = (long long)(ms / 1000);

	if (s < 60)
		snprintf(out, len, "%llds", s);
	else if (s < 3600)
		snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static void
waitline_show(void *arg, const char *reason, int64_t waited_ms)
{
	struct waitline *w = arg;
	char age[32], line[1024];
	size_t max = waitline_columns() - 1, cols = 0, i, n;
	unsigned char ch;

	waitline_age(age, sizeof(age), waited_ms);
	snprintf(line, sizeof(line), "ticket %" PRIu64 " waiting for %s: %s",
	    w->id, age, reason != NULL ? reason : "no reason given yet");
	/* One column per character; UTF-8 continuation bytes take none. */
	for (n = 0; line[n] != '\0'; n++) {
		ch = (unsigned char)line[n];
		if ((ch & 0xc0) == 0x80)
			continue;
		if (cols == max)
			break;
		if (ch < 0x20 || ch == 0x7f)
			line[n] = '?';
		cols++;
	}
	fputc('\r', stderr);
	fwrite(line, 1, n, stderr);
	for (i = cols; i < w->shown; i++)
		fputc(' ', stderr);
	w->shown = cols;
	fflush(stderr);
}

/* The wait is over: the line goes, or stays above an error (KEEP). */
static void
waitline_end(struct waitline *w, bool keep)
{
	size_t i;

	if (w->shown == 0)
		return;
	if (keep) {
		fputc('\n', stderr);
	} else {
		fputc('\r', stderr);
		for (i = 0; i < w->shown; i++)
			fputc(' ', stderr);
		fputc('\r', stderr);
	}
	fflush(stderr);
	w->shown = 0;
}

static int
cmd_ticket_wait(struct cli *cli, int argc, char **argv)
{
	struct resbus_ticket_info info;
	struct waitline wl = {0, 0};
	int timeout_ms = -1;
	uint64_t id;
	bool timed_out;
	int rc;

	if (!cli_id_start(cli, argc, argv, &id, &timeout_ms, &rc))
		return rc;
	wl.id = id;
	if (resbus_ticket_wait_progress(cli->client, id, timeout_ms,
		isatty(STDERR_FILENO) ? waitline_show : NULL, &wl, &info,
		&timed_out) == -1) {
		waitline_end(&wl, true);
		return cli_fail(cli);
	}
	waitline_end(&wl, false);
	rc = write_output(&info) == -1 ? 1 : 0;
	resbus_ticket_info_clear(&info);
	return rc;
}

static int
cmd_ticket_close(struct cli *cli, int argc, char **argv)
{
	int timeout_ms = DEFAULT_RPC_TIMEOUT_S * 1000;
	uint64_t id;
	int rc;

	if (!cli_id_start(cli, argc, argv, &id, &timeout_ms, &rc))
		return rc;
	if (resbus_ticket_close(cli->client, id, timeout_ms) == -1)
		return cli_fail(cli);
	return 0;
}

static int
cmd_ticket_renew(struct cli *cli, int argc, char **argv)
{
	struct resbus_ticket_info info;
	int timeout_ms = DEFAULT_RPC_TIMEOUT_S * 1000;
	uint64_t id;
	int rc;

	if (!cli_id_start(cli, argc, argv, &id, &timeout_ms, &rc))
		return rc;
	if (resbus_ticket_renew(cli->client, id, timeout_ms, &info) == -1)
		return cli_fail(cli);
	rc = 0;
	if (!info.exists || info.closed) {
		fprintf(stderr, "resbus: ticket %" PRIu64 " is %s\n", id,
		    info.exists ? "closed" : "unknown");
		rc = 1;
	}
	resbus_ticket_info_clear(&info);
	return rc;
}

/*
 * Renews ticket ID's lease until it is closed or failed: the holder's
 * heartbeat.  Exits 0 when the ticket is closed, 1 when it failed or is
 * unknown; a killed holder simply stops renewing.
 */
static int
cmd_ticket_hold(struct cli *cli, int argc, char **argv)
{
	struct resbus_ticket_info info;
	int interval_ms = 10000, timeout_ms = DEFAULT_RPC_TIMEOUT_S * 1000;
	char **rest;
	uint64_t id = 0;
	int i, n = 0, rc;

	/* Take --interval out; the rest parses like any ID command. */
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			if (parse_timeout(argv[++i], &interval_ms) == -1 ||
			    interval_ms <= 0) {
				free(rest);
				return usage_error(
				    "bad --interval '%s'", argv[i]);
			}
			continue;
		}
		rest[n++] = argv[i];
	}
	if (!cli_id_start(cli, n, rest, &id, &timeout_ms, &rc)) {
		free(rest);
		return rc;
	}
	free(rest);
	for (;;) {
		if (resbus_ticket_renew(cli->client, id, timeout_ms, &info) ==
		    -1)
			return cli_fail(cli);
		if (!info.exists || info.closed || info.failed) {
			rc = info.closed ? 0 : 1;
			if (rc != 0)
				fprintf(stderr,
				    "resbus: ticket %" PRIu64 " is %s\n", id,
				    info.exists ? "failed" : "unknown");
			resbus_ticket_info_clear(&info);
			return rc;
		}
		resbus_ticket_info_clear(&info);
		usleep((useconds_t)interval_ms * 1000);
	}
}

static const struct command commands[] = {
    {"ticket", cmd_ticket},
    {"ticket-check", cmd_ticket_check},
    {"ticket-wait", cmd_ticket_wait},
    {"ticket-close", cmd_ticket_close},
    {"ticket-renew", cmd_ticket_renew},
    {"ticket-hold", cmd_ticket_hold},
    {NULL, NULL},
};

/* resalloc's --connection names an XML-RPC server; only AMQP URLs count. */
static const char *
connection_url(const char *connection)
{
	if (connection == NULL)
		return NULL;
	if (strncmp(connection, "amqp://", 7) == 0 ||
	    strncmp(connection, "amqps://", 8) == 0)
		return connection;
	return NULL;
}

int
main(int argc, char **argv)
{
	enum { OPT_AMQP_URL = 256, OPT_CONNECTION, OPT_PREFIX, OPT_VERSION };
	static const struct option longopts[] = {
	    {"amqp-url", required_argument, NULL, OPT_AMQP_URL},
	    {"connection", required_argument, NULL, OPT_CONNECTION},
	    {"prefix", required_argument, NULL, OPT_PREFIX},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *amqp_url = NULL, *connection = NULL, *prefix = NULL;
	const struct command *cmd;
	struct sigaction sa;
	struct cli cli;
	int ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_AMQP_URL:
			amqp_url = optarg;
			break;
		case OPT_CONNECTION:
			connection = optarg;
			break;
		case OPT_PREFIX:
			prefix = optarg;
			break;
		case OPT_VERSION:
			printf("resbus (client) %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return missing_argument(argv, optind);
		default:
			return bad_option(argv, optind, false);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "a command is required");
	for (cmd = commands; cmd->name != NULL; cmd++)
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	if (cmd->name == NULL)
		return usage_error("unknown command '%s'", argv[optind]);

	if (prefix == NULL)
		prefix = getenv("RESBUS_PREFIX");
	if (prefix == NULL || *prefix == '\0')
		prefix = RESBUS_DEFAULT_PREFIX;
	memset(&cli, 0, sizeof(cli));
	cli.url = amqp_url_pick(
	    amqp_url != NULL ? amqp_url : connection_url(connection), NULL);
	cli.prefix = prefix;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	/* A closed stdout is reported by fflush, not by a signal. */
	(void)signal(SIGPIPE, SIG_IGN);

	rc = cmd->run(&cli, argc - optind, argv + optind);
	resbus_client_free(cli.client);
	return rc;
}
