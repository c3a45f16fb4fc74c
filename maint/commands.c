/*
 * commands -- resbus-maint's commands that resbusd answers, and the
 * command table.
 *
 * Every command is a ControlRequest to resbusd on the control queue:
 * the broker owns the state, so asking it is the only way to see the
 * state it acts on, and its answer comes after the change is made.  Its
 * answer is data, printed by format.c as resalloc-maint's lines or JSON;
 * a refusal is printed with the broker's reason, and its warnings go to
 * stderr.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "resbus.pb-c.h"
#include "util.h"
#include "maint.h"

/* Each line of TEXT on stderr after "resbus-maint: ". */
static void
say_lines(const char *text)
{
	const char *p, *nl;

	for (p = text; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		say("%.*s", (int)(nl - p), p);
	}
}

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

int
maint_control(struct maint *m, const char *name, char *const *args,
    size_t nargs, struct resbus_control_reply *reply)
{
	struct resbus_control_request req;
	size_t i;

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
	if (resbus_control(m->client, &req, m->timeout_ms, reply) == -1) {
		say("%s: %s", name, resbus_client_error(m->client));
		return 1;
	}
	if (!reply->ok) {
		say_lines(reply->error);
		resbus_control_reply_clear(reply);
		return 1;
	}
	for (i = 0; i < reply->msg->n_warnings; i++)
		say("warning: %s: %s", name, reply->msg->warnings[i]);
	return 0;
}

int
flush_stdout(void)
{
	if (fflush(stdout) == EOF) {
		say("cannot write the output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* A command whose answer is printed: lines, or JSON with --json. */
static int
cmd_plain(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	int rc;

	if ((rc = maint_control(m, cmd->name, m->args, m->nargs, &reply)) != 0)
		return rc;
	maint_print(reply.msg, m->json ? OUT_JSON_LIST : OUT_LINES);
	resbus_control_reply_clear(&reply);
	return flush_stdout();
}

/* resource-info: always the JSON of the one resource. */
static int
cmd_resource_info(struct maint *m, const struct maint_cmd *cmd)
{
	struct resbus_control_reply reply;
	int rc;

	if ((rc = maint_control(m, cmd->name, m->args, m->nargs, &reply)) != 0)
		return rc;
	maint_print(reply.msg, OUT_JSON_ONE);
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

const struct maint_cmd *
maint_cmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(maint_cmds) / sizeof(maint_cmds[0]); i++)
		if (strcmp(maint_cmds[i].name, name) == 0)
			return &maint_cmds[i];
	return NULL;
}
