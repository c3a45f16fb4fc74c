/*
 * conf -- server.yaml, pools.yaml and worker.yaml.
 *
 * resalloc's formats are read as they are.  Each file is parsed with
 * libyaml into a fresh struct, validated whole, and only then handed to
 * the caller, so a bad file on reload leaves the running configuration
 * alone.  Every error names file:line:column and what is wrong.
 */
#ifndef RESBUS_CONF_H
#define RESBUS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_tag {
	char *name;
	int64_t priority;
};

struct conf_pool {
	char *name;
	char *description;
	int64_t max;	      /* default 4 */
	int64_t max_starting; /* default 1 */
	int64_t max_prealloc; /* default 2; 0 for on-demand pools */
	int64_t start_delay;  /* seconds, default 0 */
	char *cmd_new;	      /* required unless external */
	char *cmd_delete;     /* required unless external */
	/*
	 * "external" (conf_pool_external): served only by a worker with a
	 * pools.yaml of its own (a team's), which has the commands; no
	 * cmd_new or cmd_delete here, and workers reading this file never
	 * consume the pool.  NULL otherwise.
	 */
	char *worker;
	char *cmd_livecheck;
	char *cmd_release;
	char *cmd_list;
	int64_t livecheck_period;	/* seconds, default 600 */
	int64_t livecheck_attempts;	/* default 3 */
	int64_t reuse_opportunity_time; /* seconds, default 0 */
	int64_t reuse_max_count;	/* default 0 = unlimited */
	int64_t reuse_max_time;		/* seconds, default 3600 */
	char *name_pattern; /* default "{pool_name}_{id}_{datetime}" */
	struct conf_tag *tags;
	size_t ntags;
	struct conf_tag *tags_on_demand;
	size_t ntags_on_demand;
	char **named_counters;
	size_t nnamed_counters;
	/* resbus extensions */
	int64_t cmd_new_timeout;       /* seconds, default 3600 */
	int64_t cmd_delete_timeout;    /* seconds, default 600 */
	int64_t cmd_livecheck_timeout; /* seconds, default 300 */
	int64_t cmd_release_timeout;   /* seconds, default 600 */
	int64_t cmd_list_timeout;      /* seconds, default 120 (resalloc's) */
	int64_t cmd_list_period; /* seconds between sweeps, default 1800 */
	int64_t start_timeout;	 /* seconds; 0: cmd_new_timeout + 60 */
	int64_t
	    hook_log_max_bytes; /* per hook log, default 10 MiB; 0: no cap */
};

struct conf_pools {
	struct conf_pool *pools; /* in file order */
	size_t npools;
};

/* A cap of a ticket class: at most MAX resources of POOL held by it. */
struct conf_cap {
	char *pool;
	int64_t max;
};

/* A ticket class (server.yaml `classes`, a mapping name -> options). */
struct conf_class {
	char *name;	       /* the mapping key; tag charset */
	int64_t priority;      /* higher is served first; default 0 */
	bool on_demand;	       /* may trigger on-demand starts; default true */
	struct conf_cap *caps; /* `caps: {pool: max, ...}` */
	size_t ncaps;
};

/*
 * A limit (server.yaml `limits`, a list): resources held or starting for
 * tickets.  With `tag`, only resources whose tickets asked for that tag
 * count.  per_owner: for each owner; total: across all owners.  -1 means
 * "no such limit"; at least one of the two is set.
 */
struct conf_limit {
	char *tag;	   /* NULL: every resource */
	int64_t per_owner; /* -1: none */
	int64_t total;	   /* -1: none */
};

/*
 * A tag rule (server.yaml `tag_rules`, a list): when SUBJECT, with
 * {label} placeholders filled from the ticket's labels ({owner} falls
 * back to the ticket's owner), matches the POSIX extended regular
 * expression MATCH, the tags ADD are added to the ticket (Copr's
 * EXTRA_BUILDCHROOT_TAGS).  A placeholder of a label the ticket lacks is
 * empty.
 */
struct conf_tag_rule {
	char *subject; /* default "{owner}/{project}/{chroot}/{package}" */
	char *match;   /* required; must compile */
	char **add;    /* required, non-empty; valid tags */
	size_t nadd;
};

struct conf_server {
	char *db_url;	/* default sqlite:////var/lib/resbus/db.sqlite */
	char *logdir;	/* default /var/log/resbus */
	char *loglevel; /* default "info" */
	char *hostname; /* XML-RPC gateway, default localhost */
	int64_t port;	/* default 49100 */
	char *amqp_url; /* NULL: use the built-in default */
	char *prefix;	/* bus name prefix, default "resbus" */
	/* "classic" (default) or "quorum": the durable shared queues */
	char *queue_type;
	char **admins;
	size_t nadmins;
	/*
	 * AMQP users whose job results the broker believes.  Absent
	 * (workers_set false): the AMQP user of the broker's own amqp_url.
	 */
	char **workers;
	size_t nworkers;
	bool workers_set;
	/*
	 * AMQP users that may take tickets on behalf of others: a ticket
	 * request of theirs may name its owner.  None by default.
	 */
	char **delegates;
	size_t ndelegates;
	/*
	 * Refuse a ticket for tags no configured pool provides, instead of
	 * letting it wait for a reload that adds one (resalloc's way, the
	 * default).  A request may ask for refusal on its own.
	 */
	bool refuse_unprovidable;
	/* bounds: 0 = no cap (tagset_idle_s: never retire) */
	int64_t max_open_tickets_per_owner; /* default 10000 */
	int64_t max_tagsets;   /* distinct tag sets, default 10000 */
	int64_t tagset_idle_s; /* retire a tag set idle this long, 86400 */
	/*
	 * A message delivered this many times to a broker that died while
	 * handling it is dead-lettered at the next start; default 3.
	 */
	int64_t max_redeliveries;
	/*
	 * On PostgreSQL, how long a paused or cut-off active broker keeps
	 * leading before a standby may take over; default 5.
	 */
	int64_t leader_lease_s;
	/* the status page, JSON API and metrics: "HOST:PORT", or "" / "off" */
	char *http_listen; /* default "127.0.0.1:49110" */
	/* the status page's history: seconds between samples, 60 */
	int64_t history_interval_s;
	bool notify;		   /* JSON notifications, default true */
	char *notify_exchange;	   /* default "amq.topic" */
	char *notify_topic_prefix; /* default "org.resbus" */
	/* policy */
	struct conf_class *classes;
	size_t nclasses;
	char *default_class; /* NULL: tickets without a class have none */
	struct conf_limit *limits;
	size_t nlimits;
	struct conf_tag_rule *tag_rules;
	size_t ntag_rules;
};

struct conf_worker {
	char *amqp_url;
	char *pools_file; /* default <dir of worker.yaml>/pools.yaml */
	char **pools;	  /* pools served; none listed = all */
	size_t npools;
	int64_t concurrency; /* default 64 */
	char *logdir;	     /* default /var/log/resbus */
	char *prefix;
	char *queue_type; /* as server.yaml's, for pool queues */
	/*
	 * AMQP users whose jobs the worker runs.  None listed: the worker's
	 * own login (of amqp_url).
	 */
	char **broker_users;
	size_t nbroker_users;
};

/*
 * Each loader returns a fresh struct (free with the matching *_free) or
 * NULL with a one-line "file:line:column: what is wrong" in ERR.
 * A missing server.yaml is an error: resalloc requires the file too.
 */
struct conf_pools *conf_pools_load(const char *path, char *err, size_t errlen);
struct conf_server *conf_server_load(
    const char *path, char *err, size_t errlen);
struct conf_worker *conf_worker_load(
    const char *path, char *err, size_t errlen);
void conf_pools_free(struct conf_pools *pools);
void conf_server_free(struct conf_server *server);
void conf_worker_free(struct conf_worker *worker);

/* The pool named NAME, or NULL.  Borrowed. */
const struct conf_pool *conf_pools_find(
    const struct conf_pools *pools, const char *name);
/* Whether POOL says `worker: external`: no commands in this file. */
bool conf_pool_external(const struct conf_pool *pool);
/* Whether POOL carries TAG (normal or on-demand); *priority if it does. */
bool conf_pool_has_tag(
    const struct conf_pool *pool, const char *tag, int64_t *priority);

/* Whether TAG is one of POOL's tags_on_demand. */
bool conf_tag_on_demand(const struct conf_pool *pool, const char *tag);

/*
 * The configuration directory: OPTION, else $CONFIG_DIR, else
 * SYSCONFDIR/resbus.  Borrowed.
 */
const char *conf_dir_pick(const char *option);
/* server.yaml of the configuration directory OPTION picks, loaded. */
struct conf_server *conf_server_load_dir(
    const char *option, char *err, size_t errlen);

/*
 * The keys FILE ("server", "pools" or "worker") takes, nested ones (a
 * class's, a limit's, a tag's ...) included: up to MAX names (borrowed)
 * into NAMES; returns how many there are.  For the check that every key
 * has its place in the man page.
 */
size_t conf_file_keys(const char *file, const char **names, size_t max);

#endif
