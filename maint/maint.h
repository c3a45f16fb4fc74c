/*
 * maint -- what the files of resbus-maint share, private to maint/.
 *
 *	resbus-maint.c	usage, messages, option parsing and main
 *	commands.c	talking to resbusd, the commands answered by it,
 *			and the command table
 *	local.c		the commands that work partly here:
 *			resource-logs and foreach-resource
 *	format.c	resbusd's answers as lines or JSON
 */
#ifndef RESBUS_MAINT_H
#define RESBUS_MAINT_H

#include <stdbool.h>
#include <stddef.h>

struct conf_server;
struct resbus_client;
struct resbus_control_reply;
struct Resbus__V1__ControlReply;
struct Resbus__V1__ControlResource;

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

/* resbus-maint.c: messages. */

/* Says what is wrong on stderr; returns EXIT_USAGE. */
int usage_error(const char *, ...) __attribute__((format(printf, 1, 2)));
/* One line on stderr after "resbus-maint: ". */
void say(const char *, ...) __attribute__((format(printf, 1, 2)));

/* commands.c */

/*
 * Sends control command NAME with M's options and ARGS; *reply is the
 * answer (clear it with resbus_control_reply_clear).  0 when resbusd
 * said yes (warnings printed), 1 with its reason printed otherwise.
 */
int maint_control(struct maint *m, const char *name, char *const *args,
    size_t nargs, struct resbus_control_reply *reply);
/* Flushes stdout: 0, or 1 with the problem printed. */
int flush_stdout(void);
/* The command called NAME, or NULL. */
const struct maint_cmd *maint_cmd_find(const char *name);

/* local.c */

int cmd_resource_logs(struct maint *m, const struct maint_cmd *cmd);
int cmd_foreach_resource(struct maint *m, const struct maint_cmd *cmd);

/* format.c */

enum maint_output {
	OUT_LINES,     /* resalloc-maint's lines */
	OUT_JSON_LIST, /* a JSON list of the rows */
	OUT_JSON_ONE,  /* the one row as a JSON object */
};

/* Prints the rows of R (whichever kind they are) to stdout as OUT says. */
void maint_print(
    const struct Resbus__V1__ControlReply *r, enum maint_output out);
/* R's data as foreach-resource gives it: stripped as resalloc-maint
 * shows it, invalid UTF-8 replaced by U+FFFD ("" if not shown or none).
 * Caller frees. */
char *resource_data_utf8(const struct Resbus__V1__ControlResource *r);

#endif
