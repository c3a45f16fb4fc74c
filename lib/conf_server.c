/*
 * conf_server -- server.yaml: one mapping of options, and the policy
 * under them: `classes` (a mapping of names to option mappings, each with
 * `caps`, a mapping of pool names to integers), `limits` and `tag_rules`
 * (lists of option mappings).  Each mapping has its table below; a key
 * whose value holds further mappings points at the table of its elements,
 * so one walker (conf_value.c) fills an array of any of them.  The
 * checks of values only server.yaml has live here too.
 */
#include "config.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "log.h"
#include "util.h"

static int check_db_url(const char *, char *, size_t);
static int check_loglevel(const char *, char *, size_t);
static int check_listen(const char *, char *, size_t);
static int check_regex(const char *, char *, size_t);
static int check_cap_pool(const char *, char *, size_t);
static int check_subject(const char *, char *, size_t);
static int check_limit(
    struct parse *, const yaml_node_t *, const char *, void *);

/* ---- server.yaml's policy ---- */

/* One class of `classes`: its name is the mapping key. */
static const struct conf_key class_keys[] = {
    KEY_INT(conf_class, priority, 0, INT64_MIN, INT64_MAX),
    KEY_BOOL(conf_class, on_demand, 1),
    /* Pool names are pools.yaml's: not known here, only non-empty. */
    KEY_INT_MAP(conf_class, caps, conf_cap, pool, max, "pool", check_cap_pool,
	0, INT64_MAX),
};

/* One item of `limits`; at least one of per_owner and total. */
static const struct conf_key limit_keys[] = {
    KEY_STR(conf_limit, tag, NULL, conf_check_tag, 0),
    KEY_INT(conf_limit, per_owner, -1, 0, INT64_MAX),
    KEY_INT(conf_limit, total, -1, 0, INT64_MAX),
};

/* One item of `tag_rules`. */
static const struct conf_key tag_rule_keys[] = {
    KEY_STR(conf_tag_rule, subject, "{owner}/{project}/{chroot}/{package}",
	check_subject, 0),
    KEY_STR(conf_tag_rule, match, NULL, check_regex, KEY_REQUIRED),
    KEY_STRLIST_F(
	conf_tag_rule, add, conf_check_tag, KEY_REQUIRED | KEY_NONEMPTY),
};

static const struct conf_key server_keys[] = {
    KEY_STR(conf_server, db_url, "sqlite:////var/lib/resbus/db.sqlite",
	check_db_url, 0),
    KEY_STR(conf_server, logdir, "/var/log/resbus", conf_check_nonempty, 0),
    KEY_STR(conf_server, loglevel, "info", check_loglevel, 0),
    KEY_STR(conf_server, hostname, "localhost", conf_check_nonempty, 0),
    /* resalloc's legacy name of hostname */
    {.name = "host",
	.type = CONF_STRING,
	.off = offsetof(struct conf_server, hostname),
	.check = conf_check_nonempty,
	.flags = KEY_ALIAS},
    KEY_INT(conf_server, port, 49100, 1, 65535),
    KEY_STR(conf_server, amqp_url, NULL, conf_check_amqp_url, 0),
    KEY_STR(conf_server, prefix, RESBUS_DEFAULT_PREFIX, conf_check_tag, 0),
    KEY_STR(conf_server, queue_type, "classic", conf_check_queue_type, 0),
    KEY_STRLIST(conf_server, admins, conf_check_nonempty),
    /* When given, at least one: an empty list would believe nobody. */
    KEY_STRLIST_F(conf_server, workers, conf_check_nonempty, KEY_NONEMPTY),
    KEY_STRLIST(conf_server, delegates, conf_check_nonempty),
    KEY_BOOL(conf_server, refuse_unprovidable, 0),
    KEY_INT(conf_server, max_open_tickets_per_owner, 10000, 0, INT64_MAX),
    KEY_INT(conf_server, max_tagsets, 10000, 0, INT64_MAX),
    KEY_INT(conf_server, tagset_idle_s, 86400, 0, INT64_MAX),
    KEY_INT(conf_server, max_redeliveries, 3, 1, 1000000),
    KEY_INT(conf_server, leader_lease_s, 5, 2, 3600),
    KEY_STR(conf_server, http_listen, "127.0.0.1:49110", check_listen,
	KEY_FALSE_OFF),
    KEY_INT(conf_server, history_interval_s, 60, 1, 3600),
    KEY_BOOL(conf_server, notify, 1),
    KEY_STR(conf_server, notify_exchange, "amq.topic", conf_check_nonempty, 0),
    KEY_STR(
	conf_server, notify_topic_prefix, "org.resbus", conf_check_nonempty, 0),
    KEY_NAMED_MAPS(conf_server, classes, conf_class, name, "class",
	conf_check_tag, class_keys, NULL),
    {.name = "default_class",
	.type = CONF_STRING,
	.off = offsetof(struct conf_server, default_class),
	.check = conf_check_tag,
	.ref = "classes"},
    KEY_MAP_LIST(
	conf_server, limits, conf_limit, "limit", limit_keys, check_limit),
    KEY_MAP_LIST(
	conf_server, tag_rules, conf_tag_rule, "tag rule", tag_rule_keys, NULL),
    /* resalloc's manager loop period; resbus is event-driven */
    {.name = "sleeptime", .type = CONF_ANY},
};
CONF_KEYS_BOUND(class_keys);
CONF_KEYS_BOUND(limit_keys);
CONF_KEYS_BOUND(tag_rule_keys);
CONF_KEYS_BOUND(server_keys);

/* ---- checks on string values ---- */

static int
check_db_url(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (conf_has_prefix(v, "sqlite:///") ||
	    conf_has_prefix(v, "postgresql://") ||
	    conf_has_prefix(v, "postgres://"))
		return 0;
	snprintf(why, whylen,
	    "expected a URL starting with sqlite:///, postgresql:// or "
	    "postgres://, got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

static int
check_loglevel(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (log_level_parse(v) >= 0)
		return 0;
	snprintf(why, whylen,
	    "expected one of error, warning, info, debug, got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

/*
 * A listen address: HOST:PORT, [IPV6]:PORT, or "" / "off" for none.  The
 * host is resolved when the server starts; here only its shape counts.
 */
static int
check_listen(const char *v, char *why, size_t whylen)
{
	const char *colon, *c;
	char q[128];
	int64_t port;

	if (*v == '\0' || strcmp(v, "off") == 0)
		return 0;
	colon = strrchr(v, ':');
	if (colon == NULL || colon == v)
		goto bad;
	if (v[0] == '[' && colon[-1] != ']')
		goto bad;
	for (c = v; c < colon; c++)
		if (isspace((unsigned char)*c) || *c == '/')
			goto bad;
	if (conf_parse_int(colon + 1, &port) == -1 || port < 1 ||
	    port > 65535 || !isdigit((unsigned char)colon[1]))
		goto bad;
	return 0;
bad:
	snprintf(why, whylen,
	    "expected HOST:PORT, [IPV6]:PORT, \"\" or off, "
	    "got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

/* A cap's pool: pools.yaml is another file, so only not empty. */
static int
check_cap_pool(const char *v, char *why, size_t whylen)
{
	if (*v != '\0')
		return 0;
	snprintf(why, whylen, "empty pool name");
	return -1;
}

#define REGEX_MAX_LEN 512

/*
 * Whether V would cost regcomp() more than a rule is worth: longer than
 * REGEX_MAX_LEN, or a repetition operator right after another ("a++",
 * "x*{3}"), which glibc compiles into nested repetitions whose size grows
 * with every one (a line of "+" took gigabytes).
 */
static bool
regex_too_costly(const char *v, char *why, size_t whylen)
{
	const char *p;
	bool after_rep = false, is_rep;

	if (strlen(v) > REGEX_MAX_LEN) {
		snprintf(why, whylen,
		    "a regular expression of at most %d bytes "
		    "is expected",
		    REGEX_MAX_LEN);
		return true;
	}
	for (p = v; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			after_rep = false;
			continue;
		}
		if (*p == '[') {
			/* A bracket expression; "]" first is a member. */
			if (p[1] == '^')
				p++;
			if (p[1] == ']')
				p++;
			while (p[1] != '\0' && p[1] != ']')
				p++;
			if (p[1] == ']')
				p++;
			after_rep = false;
			continue;
		}
		is_rep = *p == '*' || *p == '+' || *p == '?' || *p == '{';
		if (is_rep && after_rep) {
			snprintf(why, whylen,
			    "a repetition operator right "
			    "after another (at byte %zu) is refused",
			    (size_t)(p - v) + 1);
			return true;
		}
		if (*p == '{') {
			while (p[1] != '\0' && p[1] != '}')
				p++;
			if (p[1] == '}')
				p++;
		}
		after_rep = is_rep;
	}
	return false;
}

/*
 * A tag rule's match: a POSIX extended regular expression, compiled here
 * with the flags the scheduler uses, so that a rule that loads is a rule
 * that runs.  An empty one is refused: POSIX leaves it undefined.
 */
static int
check_regex(const char *v, char *why, size_t whylen)
{
	char q[128], reason[160];
	regex_t re;
	int rc;

	if (*v == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -1;
	}
	if (regex_too_costly(v, why, whylen))
		return -1;
	if ((rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB)) == 0) {
		regfree(&re);
		return 0;
	}
	regerror(rc, &re, reason, sizeof(reason));
	snprintf(why, whylen, "invalid regular expression %s: %s",
	    conf_quote(v, q, sizeof(q)), reason);
	return -1;
}

#define SUBJECT_NAME_MAX 32

/*
 * A tag rule's subject: text with {name} placeholders, NAME 1 to 32 of
 * a-z 0-9 _ (a ticket label's name), and no other braces.
 */
static bool
subject_placeholder(const char *ph, size_t len, char *why, size_t whylen)
{
	char q[128];
	size_t i;

	for (i = 1; i + 1 < len; i++)
		if (!(ph[i] >= 'a' && ph[i] <= 'z') &&
		    !isdigit((unsigned char)ph[i]) && ph[i] != '_')
			break;
	if (i + 1 == len && len > 2 && len - 2 <= SUBJECT_NAME_MAX)
		return true;
	snprintf(why, whylen,
	    "bad placeholder %s: expected {name}, name 1 to "
	    "%d of a-z 0-9 _",
	    conf_quote(ph, q, sizeof(q)), SUBJECT_NAME_MAX);
	return false;
}

static int
check_subject(const char *v, char *why, size_t whylen)
{
	return conf_check_template(v, why, whylen, subject_placeholder);
}

/* ---- server.yaml ------------------------------------------------------- */

/*
 * Loads server.yaml.  Returns a fresh struct (caller frees with
 * conf_server_free) or NULL with the error in ERR.
 */
struct conf_server *
conf_server_load(const char *path, char *err, size_t errlen)
{
	struct conf_server *server = xcalloc(1, sizeof(*server));
	struct parse p;
	char *c;
	int rc;

	conf_parse_start(&p, path, err, errlen);
	rc = conf_load_flat(&p, server_keys, NKEYS(server_keys), server);
	conf_parse_done(&p);
	if (rc == -1) {
		conf_server_free(server);
		return NULL;
	}
	for (c = server->loglevel; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	/* "workers:" with nothing after it is absent, like any null list */
	server->workers_set = server->workers != NULL;
	return server;
}

void
conf_server_free(struct conf_server *server)
{
	if (server == NULL)
		return;
	conf_fields_free(server_keys, NKEYS(server_keys), server);
	free(server);
}

/* A limit sets per_owner, total or both: one with neither limits nothing. */
static int
check_limit(
    struct parse *p, const yaml_node_t *node, const char *label, void *elem)
{
	const struct conf_limit *limit = elem;

	if (limit->per_owner == -1 && limit->total == -1)
		return conf_fail(
		    p, node, "%s: a limit needs per_owner or total", label);
	return 0;
}

size_t
conf_server_key_names(const char **names, size_t max)
{
	return conf_keys_walk(server_keys, NKEYS(server_keys), names, max, 0);
}
