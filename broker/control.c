/*
 * control -- operators' commands, dispatched by name through a table.
 *
 * Every command answers with a ControlReply: output lines in
 * resalloc-maint's formats where resalloc-maint has the command (scripts
 * parse them), or JSON when asked.  Refusals name the reason.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "util.h"

/* What a handler builds up; freed by control_handle. */
struct answer {
	Resbus__V1__ControlReply reply;
	char **lines;
	size_t nlines;
};

static void
answer_line(struct answer *a, char *line)
{
	a->lines = xrealloc(a->lines, (a->nlines + 1) * sizeof(*a->lines));
	a->lines[a->nlines++] = line;
}

struct control_cmd {
	const char *name;
	bool mutating;               /* allowed to admins only */
	void (*fn)(struct sched *s, const Resbus__V1__ControlRequest *req,
	    const struct control_ops *ops, struct answer *a);
};

static void
pool_line(void *arg, const struct sched_pool_view *v)
{
	struct answer *a = arg;

	answer_line(a, xasprintf("%s max=%lld starting=%zu free=%zu "
	    "released=%zu taken=%zu releasing=%zu deleting=%zu waiting=%zu%s%s",
	    v->name, v->conf ? (long long)v->conf->max : 0LL, v->starting,
	    v->free, v->released, v->taken, v->releasing, v->deleting,
	    v->waiting, v->paused ? " paused" : "",
	    v->conf ? "" : " unconfigured"));
}

static void
cmd_pool_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	sched_foreach_pool(s, pool_line, a);
	a->reply.ok = true;
}

static const struct control_cmd control_cmds[] = {
	{ "pool-list", false, cmd_pool_list },
};

static bool
control_is_admin(const struct conf_server *server, const char *user)
{
	size_t i;

	for (i = 0; user != NULL && i < server->nadmins; i++)
		if (strcmp(server->admins[i], user) == 0)
			return true;
	return false;
}

void
control_handle(struct sched *s, const struct conf_server *server,
    const struct bus_delivery *d, const struct control_ops *ops)
{
	Resbus__V1__ControlRequest *req;
	const struct control_cmd *cmd = NULL;
	struct answer a;
	char *error = NULL;
	size_t i;

	memset(&a, 0, sizeof(a));
	resbus__v1__control_reply__init(&a.reply);
	req = (Resbus__V1__ControlRequest *)msg_unpack(d->type, d->body,
	    d->len);
	if (req == NULL ||
	    req->base.descriptor != &resbus__v1__control_request__descriptor) {
		error = xasprintf("not a resbus.v1.ControlRequest");
		goto reply;
	}
	for (i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]); i++)
		if (strcmp(control_cmds[i].name, req->command) == 0)
			cmd = &control_cmds[i];
	if (cmd == NULL) {
		error = xasprintf("unknown command \"%s\"", req->command);
		goto reply;
	}
	if (cmd->mutating && !control_is_admin(server, d->user_id)) {
		log_warnx("control: %s refused to user \"%s\" (not in admins)",
		    cmd->name, d->user_id);
		error = xasprintf("%s: user \"%s\" is not one of the admins "
		    "in server.yaml", cmd->name,
		    d->user_id[0] ? d->user_id : "(none)");
		goto reply;
	}
	log_info("control: %s by \"%s\"", cmd->name, d->user_id);
	cmd->fn(s, req, ops, &a);
reply:
	if (error != NULL) {
		a.reply.ok = false;
		a.reply.error = error;
	}
	a.reply.lines = a.lines;
	a.reply.n_lines = a.nlines;
	ops->reply(ops->ctx, d, &a.reply.base);
	for (i = 0; i < a.nlines; i++)
		free(a.lines[i]);
	free(a.lines);
	if (a.reply.json != NULL && a.reply.json != protobuf_c_empty_string)
		free(a.reply.json);
	free(error);
	if (req != NULL)
		msg_free(&req->base);
}
