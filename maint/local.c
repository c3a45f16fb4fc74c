/*
 * local -- the resbus-maint commands that work partly here.
 *
 * resource-logs runs tail(1) on the hook logs under server.yaml's logdir
 * (the logs are on the worker's host), and foreach-resource runs a shell
 * command per resource.  Resource values never become part of that shell
 * text: they are passed in the environment, and the {name}, {state} and
 * {data_utf8} placeholders turn into quoted references to those
 * variables.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "resbus.pb-c.h"
#include "util.h"
#include "maint.h"

/* ---- resource-logs ------------------------------------------------------ */

/* The ID of resource ARG (an ID, or a name resbusd knows); 0 or 1. */
static int
resource_id(struct maint *m, const char *arg, uint64_t *id)
{
	struct resbus_control_reply reply;
	char *args[1];
	int rc = 1;

	if (parse_u64(arg, id) == 0)
		return 0;
	args[0] = (char *)arg;
	if (maint_control(m, "resource-info", args, 1, &reply) != 0)
		return 1;
	if (reply.msg->n_resources == 1) {
		*id = reply.msg->resources[0]->id;
		rc = 0;
	} else
		say("resource-info: no id for resource %s", arg);
	resbus_control_reply_clear(&reply);
	return rc;
}

/* resalloc-maint's resource-logs: tail -F the hook logs, from the start. */
int
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
		if (resource_id(m, m->args[i], &id) != 0) {
			while (n > 0)
				free(argv[--n]);
			free(argv);
			return 1;
		}
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
 * The shell's quoting after the character at *P (a backslash copies the
 * character it escapes to *O and moves both on), from Q before it.
 */
static enum shell_quote
quote_follow(enum shell_quote q, const char **pp, char **oo)
{
	const char *p = *pp;

	switch (q) {
	case SQ_NONE:
		if (*p == '\\' && p[1] != '\0' && p[1] != '{' && p[1] != '}') {
			*(*oo)++ = *p;
			(*pp)++;
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
		if (*p == '\\' && p[1] != '\0' && p[1] != '{' && p[1] != '}') {
			*(*oo)++ = *p;
			(*pp)++;
		} else if (*p == '"')
			q = SQ_NONE;
		break;
	}
	return q;
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
		q = quote_follow(q, &p, &o);
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
command_run(const char *cmd, const Resbus__V1__ControlResource *r)
{
	char *data;
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
		data = resource_data_utf8(r);
		if (setenv("RESALLOC_NAME", r->name, 1) == -1 ||
		    setenv("RESALLOC_STATE", r->state, 1) == -1 ||
		    setenv("RESALLOC_DATA_UTF8", data, 1) == -1)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* As resalloc-maint, the command's exit status is not looked at. */
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

int
cmd_foreach_resource(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	const Resbus__V1__ControlResource *r;
	const char *tmpl;
	char err[256], *expanded;
	size_t i;
	int rc = 0;

	tmpl = m->command != NULL ? m->command : DEFAULT_FOREACH_COMMAND;
	m->up = false;
	if ((rc = maint_control(m, "resource-list", NULL, 0, &reply)) != 0)
		return rc;
	for (i = 0; i < reply.msg->n_resources; i++) {
		r = reply.msg->resources[i];
		/* An error for this resource only; the others still run. */
		if ((expanded = command_expand(tmpl, err, sizeof(err))) ==
		    NULL) {
			say("%s: resource %s: %s", cmd->name, r->name, err);
			rc = 1;
			continue;
		}
		command_run(expanded, r);
		free(expanded);
	}
	resbus_control_reply_clear(&reply);
	return rc;
}
