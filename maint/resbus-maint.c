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
 * Two commands work partly here: resource-logs runs tail(1) on the hook
 * logs under server.yaml's logdir (the logs are on the worker's host), and
 * foreach-resource runs a shell command per resource.  Resource values
 * never become part of that shell text: they are passed in the
 * environment, and the {name}, {state} and {data_utf8} placeholders turn
 * into quoted references to those variables.
 *
 * Exit status: 0 done, 1 failed or refused, 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "util.h"

#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_FOREACH_COMMAND "echo {name}"

/* Options a command accepts beyond the global ones. */
enum {
	OK_UP = 1 << 0,
	OK_ALL = 1 << 1, /* --all and --unused */
	OK_COMMAND = 1 << 2,
	OK_JSON = 1 << 3,
};

struct maint {
	const char *config_dir;
	bool config_dir_given;
	struct conf_server *server; /* NULL: no server.yaml read */
	const char *url;
	const char *prefix;
	int timeout_ms;
	bool json, up, all, unused;
	const char *command; /* foreach-resource --command */
	char **args;
	size_t nargs;
	struct resbus_client *client;
};

struct maint_cmd {
	const char *name;
	int (*run)(struct maint *, const struct maint_cmd *);
	unsigned opts;
	size_t min_args, max_args; /* SIZE_MAX: any number */
};

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

static int usage_error(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Says what is wrong on stderr; returns EXIT_USAGE. */
static int
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

static void say(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("resbus-maint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
}

/* Each line of TEXT on stderr after "resbus-maint: " and PREFIX. */
static void
say_lines(const char *prefix, const char *text)
{
	const char *p, *nl;

	for (p = text; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		say("%s%.*s", prefix, (int)(nl - p), p);
	}
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

/* ---- JSON input ----------------------------------------------------------
 *
 * Just enough of a JSON reader for resbusd's own answers (resource-info,
 * resource-list --json): values into a small tree.
 */

enum json_type { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct json_value {
	enum json_type type;
	char *str; /* J_STRING: decoded; J_NUMBER: text */
	bool b;
	struct json_value *items; /* J_ARRAY, J_OBJECT */
	char **keys;		  /* J_OBJECT */
	size_t n;
};

#define JSON_MAX_DEPTH 16

struct json_reader {
	const char *p;
};

static void
json_value_clear(struct json_value *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		json_value_clear(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static void
json_ws(struct json_reader *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
		r->p++;
}

static int
json_hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= (uint32_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= (uint32_t)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= (uint32_t)(p[i] - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
utf8_put(char **out, uint32_t cp)
{
	char *o = *out;

	if (cp < 0x80)
		*o++ = (char)cp;
	else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	*out = o;
}

/* A string at r->p (on its opening quote), decoded; caller frees. */
static char *
json_string(struct json_reader *r)
{
	const char *p = r->p + 1;
	char *buf, *o;
	uint32_t cp, lo;

	/* Decoded text is never longer than its escaped form. */
	buf = o = xmalloc(strlen(p) + 1);
	for (;;) {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			goto bad;
		if (*p == '"')
			break;
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*o++ = *p++;
			break;
		case 'b':
			*o++ = '\b';
			p++;
			break;
		case 'f':
			*o++ = '\f';
			p++;
			break;
		case 'n':
			*o++ = '\n';
			p++;
			break;
		case 'r':
			*o++ = '\r';
			p++;
			break;
		case 't':
			*o++ = '\t';
			p++;
			break;
		case 'u':
			if (json_hex4(p + 1, &cp) == -1)
				goto bad;
			p += 5;
			if (cp >= 0xd800 && cp <= 0xdbff && p[0] == '\\' &&
			    p[1] == 'u' && json_hex4(p + 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				p += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			/* 6 escaped bytes give at most 3, 12 give 4. */
			utf8_put(&o, cp);
			break;
		default:
			goto bad;
		}
	}
	*o = '\0';
	r->p = p + 1;
	return buf;
bad:
	free(buf);
	return NULL;
}

static int json_parse(struct json_reader *r, struct json_value *v, int depth);

static int
json_parse_list(
    struct json_reader *r, struct json_value *v, int depth, bool object)
{
	struct json_value item;
	char *key = NULL;

	r->p++;
	json_ws(r);
	if (*r->p == (object ? '}' : ']')) {
		r->p++;
		return 0;
	}
	for (;;) {
		json_ws(r);
		if (object) {
			if (*r->p != '"' || (key = json_string(r)) == NULL)
				return -1;
			json_ws(r);
			if (*r->p++ != ':') {
				free(key);
				return -1;
			}
		}
		memset(&item, 0, sizeof(item));
		if (json_parse(r, &item, depth + 1) == -1) {
			free(key);
			return -1;
		}
		v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
		if (object) {
			v->keys =
			    xrealloc(v->keys, (v->n + 1) * sizeof(*v->keys));
			v->keys[v->n] = key;
			key = NULL;
		}
		v->items[v->n++] = item;
		json_ws(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p++ != (object ? '}' : ']'))
			return -1;
		return 0;
	}
}

static int
json_parse(struct json_reader *r, struct json_value *v, int depth)
{
	const char *start;

	if (depth > JSON_MAX_DEPTH)
		return -1;
	json_ws(r);
	switch (*r->p) {
	case '{':
		v->type = J_OBJECT;
		return json_parse_list(r, v, depth, true);
	case '[':
		v->type = J_ARRAY;
		return json_parse_list(r, v, depth, false);
	case '"':
		v->type = J_STRING;
		return (v->str = json_string(r)) == NULL ? -1 : 0;
	case 'n':
		v->type = J_NULL;
		if (strncmp(r->p, "null", 4) != 0)
			return -1;
		r->p += 4;
		return 0;
	case 't':
	case 'f':
		v->type = J_BOOL;
		v->b = *r->p == 't';
		if (strncmp(r->p, v->b ? "true" : "false", v->b ? 4 : 5) != 0)
			return -1;
		r->p += v->b ? 4 : 5;
		return 0;
	default:
		start = r->p;
		while (
		    strchr("+-0123456789.eE", *r->p) != NULL && *r->p != '\0')
			r->p++;
		if (r->p == start)
			return -1;
		v->type = J_NUMBER;
		v->str = xstrndup(start, (size_t)(r->p - start));
		return 0;
	}
}

/* Parses TEXT whole into *V (free with json_value_clear); 0 or -1. */
static int
json_read(const char *text, struct json_value *v)
{
	struct json_reader r = {text};

	memset(v, 0, sizeof(*v));
	if (json_parse(&r, v, 0) == -1) {
		json_value_clear(v);
		return -1;
	}
	json_ws(&r);
	if (*r.p != '\0') {
		json_value_clear(v);
		return -1;
	}
	return 0;
}

/* Member KEY of object O, or NULL.  Borrowed from O. */
static const struct json_value *
json_get(const struct json_value *o, const char *key)
{
	size_t i;

	if (o->type != J_OBJECT)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

/* String member KEY of O ("" if null or missing).  Borrowed. */
static const char *
json_get_str(const struct json_value *o, const char *key)
{
	const struct json_value *v = json_get(o, key);

	return v != NULL && v->type == J_STRING ? v->str : "";
}

/* ---- talking to resbusd ------------------------------------------------- */

static int
maint_connect(struct maint *m)
{
	char err[1024];

	if (m->client != NULL)
		return 0;
	m->client = resbus_client_new(m->url, m->prefix, err, sizeof(err));
	if (m->client == NULL) {
		say("%s", err);
		return -1;
	}
	return 0;
}

/*
 * Sends control command NAME with M's options and ARGS; *reply is the
 * answer (clear it with resbus_control_reply_clear).  0 when resbusd
 * said yes (warnings printed), 1 with its reason printed otherwise.
 */
static int
maint_control(struct maint *m, const char *name, char *const *args,
    size_t nargs, bool json, struct resbus_control_reply *reply)
{
	struct resbus_control_request req;

	memset(reply, 0, sizeof(*reply));
	if (maint_connect(m) == -1)
		return 1;
	memset(&req, 0, sizeof(req));
	req.command = name;
	req.args = args;
	req.nargs = nargs;
	req.up = m->up;
	req.all = m->all;
	req.unused = m->unused;
	req.json = json;
	if (resbus_control(m->client, &req, m->timeout_ms, reply) == -1) {
		say("%s: %s", name, resbus_client_error(m->client));
		return 1;
	}
	if (!reply->ok) {
		say_lines("", reply->error);
		resbus_control_reply_clear(reply);
		return 1;
	}
	if (reply->error != NULL)
		say_lines("warning: ", reply->error);
	return 0;
}

static int
flush_stdout(void)
{
	if (fflush(stdout) == EOF) {
		say("cannot write the output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* A command whose answer is printed as it comes: lines, or JSON. */
static int
cmd_plain(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	size_t i;
	int rc;

	if ((rc = maint_control(
		 m, cmd->name, m->args, m->nargs, m->json, &reply)) != 0)
		return rc;
	for (i = 0; i < reply.nlines; i++)
		printf("%s\n", reply.lines[i]);
	if (m->json && reply.json != NULL)
		printf("%s\n", reply.json);
	resbus_control_reply_clear(&reply);
	return flush_stdout();
}

static int
cmd_resource_info(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	int rc;

	if ((rc = maint_control(
		 m, cmd->name, m->args, m->nargs, true, &reply)) != 0)
		return rc;
	if (reply.json != NULL)
		printf("%s\n", reply.json);
	resbus_control_reply_clear(&reply);
	return flush_stdout();
}

static int
cmd_resource_delete(struct maint *m, const struct maint_cmd *cmd)
{
	uint64_t id;
	size_t i;

	if (m->all && m->unused)
		return usage_error("resource-delete: --all and --unused "
				   "exclude each other");
	if (!m->all && !m->unused) {
		if (m->nargs == 0)
			return usage_error(
			    "resource-delete: no resources "
			    "specified (give IDs, --all or --unused)");
		for (i = 0; i < m->nargs; i++)
			if (parse_u64(m->args[i], &id) == -1)
				return usage_error("resource-delete: bad "
						   "resource ID '%s'",
				    m->args[i]);
	}
	return cmd_plain(m, cmd);
}

static int
cmd_ticket_close(struct maint *m, const struct maint_cmd *cmd)
{
	uint64_t id;

	if (parse_u64(m->args[0], &id) == -1)
		return usage_error(
		    "ticket-close: bad ticket ID '%s'", m->args[0]);
	return cmd_plain(m, cmd);
}

/* ---- resource-logs ------------------------------------------------------ */

/* The ID of resource ARG (an ID, or a name resbusd knows); 0 or 1. */
static int
resource_id(struct maint *m, const char *arg, uint64_t *id)
{
	struct resbus_control_reply reply;
	struct json_value v;
	const struct json_value *idv;
	char *args[1];
	int rc = 1;

	if (parse_u64(arg, id) == 0)
		return 0;
	args[0] = (char *)arg;
	if (maint_control(m, "resource-info", args, 1, true, &reply) != 0)
		return 1;
	if (reply.json == NULL || json_read(reply.json, &v) == -1) {
		say("resource-info: resbusd's answer is not JSON");
		resbus_control_reply_clear(&reply);
		return 1;
	}
	idv = json_get(&v, "id");
	if (idv != NULL && idv->type == J_NUMBER &&
	    parse_u64(idv->str, id) == 0)
		rc = 0;
	else
		say("resource-info: no id for resource %s", arg);
	json_value_clear(&v);
	resbus_control_reply_clear(&reply);
	return rc;
}

/* resalloc-maint's resource-logs: tail -F the hook logs, from the start. */
static int
cmd_resource_logs(struct maint *m, const struct maint_cmd *cmd)
{
	static const char *const kinds[] = {"alloc", "watch", "terminate"};
	const char *logdir;
	char **argv;
	size_t i, k, n = 0;
	uint64_t id;

	(void)cmd;
	logdir = m->server != NULL && m->server->logdir != NULL
		     ? m->server->logdir
		     : "/var/log/resbus";
	argv = xcalloc(3 + 3 * m->nargs + 1, sizeof(*argv));
	argv[n++] = xstrdup("tail");
	argv[n++] = xstrdup("-F");
	argv[n++] = xstrdup("-n+0");
	for (i = 0; i < m->nargs; i++) {
		if (resource_id(m, m->args[i], &id) != 0)
			return 1;
		for (k = 0; k < 3; k++)
			argv[n++] = xasprintf(
			    "%s/hooks/%06" PRIu64 "_%s", logdir, id, kinds[k]);
	}
	resbus_client_free(m->client);
	m->client = NULL;
	if (flush_stdout() != 0)
		return 1;
	execvp("tail", argv);
	say("resource-logs: cannot run tail: %s", strerror(errno));
	return 1;
}

/* ---- foreach-resource --------------------------------------------------- */

enum shell_quote { SQ_NONE, SQ_SINGLE, SQ_DOUBLE };

/* The environment variable placeholder FIELD (LEN bytes) stands for. */
static const char *
placeholder_var(const char *field, size_t len)
{
	static const struct {
		const char *field, *var;
	} map[] = {
	    {"name", "RESALLOC_NAME"},
	    {"state", "RESALLOC_STATE"},
	    {"data_utf8", "RESALLOC_DATA_UTF8"},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].field) == len &&
		    strncmp(map[i].field, field, len) == 0)
			return map[i].var;
	return NULL;
}

/*
 * TEMPLATE with {name}, {state} and {data_utf8} replaced by references to
 * their environment variables, quoted for where they stand in the shell
 * text, and {{ and }} by single braces (Python's str.format rules).
 * Caller frees; NULL with the problem in ERR.
 */
static char *
command_expand(const char *tmpl, char *err, size_t errlen)
{
	enum shell_quote q = SQ_NONE;
	const char *p, *end, *var;
	char *out, *o;
	size_t max;

	/* A placeholder of N >= 6 bytes gives at most 25 < 4 N bytes
	 * ('"${RESALLOC_DATA_UTF8}"' for {data_utf8}). */
	max = strlen(tmpl) * 4 + 1;
	out = o = xmalloc(max);
	for (p = tmpl; *p != '\0'; p++) {
		if (*p == '{' && p[1] == '{') {
			*o++ = '{';
			p++;
			continue;
		}
		if (*p == '}' && p[1] == '}') {
			*o++ = '}';
			p++;
			continue;
		}
		if (*p == '}') {
			snprintf(err, errlen, "single '}' in the command");
			goto bad;
		}
		if (*p == '{') {
			end = strchr(p, '}');
			if (end == NULL) {
				snprintf(err, errlen,
				    "single '{' in the "
				    "command");
				goto bad;
			}
			var = placeholder_var(p + 1, (size_t)(end - p - 1));
			if (var == NULL) {
				snprintf(err, errlen,
				    "unknown placeholder "
				    "%.*s in the command (known: {name}, "
				    "{state}, {data_utf8})",
				    (int)(end - p + 1), p);
				goto bad;
			}
			if (q == SQ_SINGLE)
				o += sprintf(o, "'\"${%s}\"'", var);
			else if (q == SQ_DOUBLE)
				o += sprintf(o, "${%s}", var);
			else
				o += sprintf(o, "\"${%s}\"", var);
			p = end;
			continue;
		}
		/* Follow the shell's quoting to quote references right. */
		switch (q) {
		case SQ_NONE:
			if (*p == '\\' && p[1] != '\0' && p[1] != '{' &&
			    p[1] != '}') {
				*o++ = *p++;
			} else if (*p == '\'')
				q = SQ_SINGLE;
			else if (*p == '"')
				q = SQ_DOUBLE;
			break;
		case SQ_SINGLE:
			if (*p == '\'')
				q = SQ_NONE;
			break;
		case SQ_DOUBLE:
			if (*p == '\\' && p[1] != '\0' && p[1] != '{' &&
			    p[1] != '}')
				*o++ = *p++;
			else if (*p == '"')
				q = SQ_NONE;
			break;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Runs CMD with /bin/sh -c and R's values in the environment. */
static void
command_run(const char *cmd, const struct json_value *r)
{
	pid_t pid;
	int status;

	if (flush_stdout() != 0)
		return;
	fflush(stderr);
	if ((pid = fork()) == -1) {
		say("foreach-resource: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		if (setenv("RESALLOC_NAME", json_get_str(r, "name"), 1) == -1 ||
		    setenv("RESALLOC_STATE", json_get_str(r, "state"), 1) ==
			-1 ||
		    setenv("RESALLOC_DATA_UTF8", json_get_str(r, "data"), 1) ==
			-1)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* As resalloc-maint, the command's exit status is not looked at. */
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

static int
cmd_foreach_resource(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	struct json_value list;
	const struct json_value *r;
	const char *tmpl;
	char err[256], *expanded;
	size_t i;
	int rc = 0;

	tmpl = m->command != NULL ? m->command : DEFAULT_FOREACH_COMMAND;
	m->up = false;
	if ((rc = maint_control(m, "resource-list", NULL, 0, true, &reply)) !=
	    0)
		return rc;
	if (reply.json == NULL || json_read(reply.json, &list) == -1 ||
	    list.type != J_ARRAY) {
		say("%s: resbusd's answer to resource-list is not a JSON "
		    "list",
		    cmd->name);
		resbus_control_reply_clear(&reply);
		return 1;
	}
	resbus_control_reply_clear(&reply);
	for (i = 0; i < list.n; i++) {
		r = &list.items[i];
		/* An error for this resource only; the others still run. */
		if ((expanded = command_expand(tmpl, err, sizeof(err))) ==
		    NULL) {
			say("%s: resource %s: %s", cmd->name,
			    json_get_str(r, "name"), err);
			rc = 1;
			continue;
		}
		command_run(expanded, r);
		free(expanded);
	}
	json_value_clear(&list);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

static const struct maint_cmd maint_cmds[] = {
    {"resource-list", cmd_plain, OK_UP | OK_JSON, 0, 0},
    {"resource-info", cmd_resource_info, OK_JSON, 1, 1},
    {"resource-delete", cmd_resource_delete, OK_ALL, 0, SIZE_MAX},
    {"resource-logs", cmd_resource_logs, 0, 1, SIZE_MAX},
    {"ticket-list", cmd_plain, OK_JSON, 0, 0},
    {"ticket-close", cmd_ticket_close, 0, 1, 1},
    {"foreach-resource", cmd_foreach_resource, OK_COMMAND, 0, 0},
    {"pool-list", cmd_plain, OK_JSON, 0, 0},
    {"pool-pause", cmd_plain, 0, 1, 1},
    {"pool-resume", cmd_plain, 0, 1, 1},
    {"pool-drain", cmd_plain, 0, 1, 1},
    {"reload", cmd_plain, 0, 0, 0},
    {"broker-status", cmd_plain, 0, 0, 0},
};

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

int
main(int argc, char **argv)
{
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
	const char *amqp_url = NULL, *prefix = NULL;
	const struct maint_cmd *cmd = NULL;
	struct sigaction sa;
	struct maint m;
	unsigned given = 0;
	uint64_t sec;
	size_t i;
	int ch, rc;

	memset(&m, 0, sizeof(m));
	m.timeout_ms = DEFAULT_TIMEOUT_S * 1000;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONFIG_DIR:
			m.config_dir = optarg;
			m.config_dir_given = true;
			break;
		case OPT_AMQP_URL:
			amqp_url = optarg;
			break;
		case OPT_PREFIX:
			prefix = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_u64(optarg, &sec) == -1 ||
			    sec > INT_MAX / 1000)
				return usage_error("bad --timeout '%s': give "
						   "whole seconds",
				    optarg);
			m.timeout_ms = sec == 0 ? -1 : (int)sec * 1000;
			break;
		case OPT_JSON:
			m.json = true;
			given |= OK_JSON;
			break;
		case OPT_UP:
			m.up = true;
			given |= OK_UP;
			break;
		case OPT_ALL:
			m.all = true;
			given |= OK_ALL;
			break;
		case OPT_UNUSED:
			m.unused = true;
			given |= OK_ALL;
			break;
		case OPT_COMMAND:
			m.command = optarg;
			given |= OK_COMMAND;
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
	if (optind >= argc)
		return usage_error("a command is required");
	for (i = 0; i < sizeof(maint_cmds) / sizeof(maint_cmds[0]); i++)
		if (strcmp(maint_cmds[i].name, argv[optind]) == 0)
			cmd = &maint_cmds[i];
	if (cmd == NULL)
		return usage_error("unknown command '%s'", argv[optind]);
	if ((given & ~cmd->opts) != 0)
		return usage_error("%s does not take %s", cmd->name,
		    (given & ~cmd->opts & OK_UP)	? "--up"
		    : (given & ~cmd->opts & OK_ALL)	? "--all or --unused"
		    : (given & ~cmd->opts & OK_COMMAND) ? "--command"
							: "--json");
	m.args = argv + optind + 1;
	m.nargs = (size_t)(argc - optind - 1);
	if (m.nargs < cmd->min_args)
		return usage_error("%s needs %s", cmd->name,
		    cmd->max_args == 1 ? "an argument" : "arguments");
	if (m.nargs > cmd->max_args)
		return usage_error("%s: unexpected argument '%s'", cmd->name,
		    m.args[cmd->max_args]);

	if (maint_load_config(&m) != 0)
		return 1;
	if (prefix == NULL)
		prefix = getenv("RESBUS_PREFIX");
	if (prefix == NULL || *prefix == '\0')
		prefix = m.server != NULL && m.server->prefix != NULL
			     ? m.server->prefix
			     : RESBUS_DEFAULT_PREFIX;
	m.prefix = prefix;
	m.url = amqp_url_pick(
	    amqp_url, m.server != NULL ? m.server->amqp_url : NULL);

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
