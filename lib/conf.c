/*
 * conf -- server.yaml, pools.yaml and worker.yaml.
 *
 * Each file is read whole into memory, composed into a libyaml document
 * and walked against one declarative table of keys per mapping: the key's
 * name, its type (integer, string, boolean, list of strings, list of
 * tags), its default, its bounds and where it lives in the struct
 * (offsetof).  Keys whose value holds further mappings -- server.yaml's
 * policy: `classes` (a mapping of names to option mappings), `limits` and
 * `tag_rules` (lists of option mappings) and a class's `caps` (a mapping
 * of names to integers) -- point at the table of their elements, the size
 * of an element and where its name goes, so one walker fills an array of
 * any of them.  The walk fills a fresh struct that starts out holding the
 * defaults; the cross-key rules (required keys, on-demand tags, the
 * default class naming a class) run once the mapping or the whole file is
 * read.  Nothing is handed to the caller unless the whole file is
 * good, so a bad file on SIGHUP leaves the running configuration alone.
 *
 * Scalars are typed the way PyYAML (YAML 1.1), and thus resalloc, types
 * them, and the types are checked strictly: an integer key given a string,
 * a float or a boolean ("yes", "on", "true"...) is an error, and so is a
 * string key given a boolean, since resalloc would have seen True there.
 * A plain number given to a string key is taken as written.  A null value
 * ("key:" with nothing after it) means "the default" for strings and
 * lists and is an error for integers.  Unknown keys and duplicate keys
 * are errors: a misspelt option that silently does nothing is worse than
 * a refusal to start.  Anchors, aliases and merge keys ("<<: *common")
 * work as in PyYAML, so pools can share their common options.
 *
 * Every error is one line, "file:line:column: what is wrong", with the
 * 1-based position of the node at fault (for YAML syntax errors, the
 * position libyaml reports).
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf.h"
#include "log.h"
#include "tags.h"
#include "util.h"

#define CONF_MAX_FILE_BYTES (16 * 1024 * 1024)
#define CONF_VALUE_SHOWN 60
#define TAG_RULE                                                               \
	"1 to 64 of A-Z a-z 0-9 _ . : = < > -, not starting with . or -"
_Static_assert(TAG_MAX_LEN == 64, "TAG_RULE names the length");

enum conf_type {
	CONF_INT,
	CONF_STRING,
	CONF_STRING_LIST,
	CONF_TAG_LIST,
	CONF_BOOL,
	CONF_NAMED_MAPS, /* {name: {key: value, ...}, ...}, to an array */
	CONF_MAP_LIST,	 /* [{key: value, ...}, ...], to an array */
	CONF_INT_MAP,	 /* {name: integer, ...}, to an array */
	CONF_ANY,	 /* accepted and ignored */
};

#define KEY_REQUIRED 0x1  /* must be present (strings) */
#define KEY_ALIAS 0x2	  /* sets the field only if its main key is absent */
#define KEY_ON_DEMAND 0x4 /* the list of on-demand tags */
#define KEY_FALSE_OFF 0x8 /* strings: a YAML false (off, no) means "off" */
#define KEY_NONEMPTY 0x10 /* lists: when given, at least one item */

/*
 * A string check: 0 if VALUE is acceptable, else -1 with the reason
 * (without the key name) in WHY.
 */
typedef int (*conf_check_fn)(const char *value, char *why, size_t whylen);

struct parse;

/*
 * A rule across the keys of one element of a CONF_NAMED_MAPS or
 * CONF_MAP_LIST key, run once its mapping is read: 0, or -1 with the
 * error recorded at NODE (the element's name or list item).
 */
typedef int (*conf_elem_fn)(
    struct parse *p, const yaml_node_t *node, const char *label, void *elem);

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;	  /* the field; arrays: the pointer to the first */
	size_t count_off; /* lists and arrays: the size_t element count */
	int64_t def_int;
	const char *def_str;
	int64_t min, max;    /* integers and CONF_INT_MAP values */
	conf_check_fn check; /* strings, string lists, names of elements */
	unsigned flags;
	/* strings: the value must name an element of this CONF_NAMED_MAPS
	 * key of the same table */
	const char *ref;
	/* CONF_NAMED_MAPS, CONF_MAP_LIST, CONF_INT_MAP: the elements */
	const char *what;	    /* one element, in messages */
	const struct conf_key *sub; /* the keys of one element's mapping */
	size_t nsub;
	size_t elem_size;
	size_t name_off;	 /* char *: the name (not CONF_MAP_LIST) */
	size_t value_off;	 /* int64_t: CONF_INT_MAP's value */
	conf_elem_fn elem_check; /* optional */
};

#define KEY_INT(st, f, d, lo, hi)                                              \
	{                                                                      \
		.name = #f, .type = CONF_INT, .off = offsetof(struct st, f),   \
		.def_int = (d), .min = (lo), .max = (hi)                       \
	}
#define KEY_STR(st, f, d, chk, fl)                                             \
	{                                                                      \
		.name = #f, .type = CONF_STRING,                               \
		.off = offsetof(struct st, f), .def_str = (d), .check = (chk), \
		.flags = (fl)                                                  \
	}
#define KEY_STRLIST_F(st, f, chk, fl)                                          \
	{                                                                      \
		.name = #f, .type = CONF_STRING_LIST,                          \
		.off = offsetof(struct st, f),                                 \
		.count_off = offsetof(struct st, n##f), .check = (chk),        \
		.flags = (fl)                                                  \
	}
#define KEY_STRLIST(st, f, chk) KEY_STRLIST_F(st, f, chk, 0)
#define KEY_TAGLIST(st, f, fl)                                                 \
	{                                                                      \
		.name = #f, .type = CONF_TAG_LIST,                             \
		.off = offsetof(struct st, f),                                 \
		.count_off = offsetof(struct st, n##f), .flags = (fl)          \
	}
#define KEY_BOOL(st, f, d)                                                     \
	{                                                                      \
		.name = #f, .type = CONF_BOOL, .off = offsetof(struct st, f),  \
		.def_int = (d)                                                 \
	}
/* {name: {...}, ...} into an array of struct et named by et.namef. */
#define KEY_NAMED_MAPS(st, f, et, namef, wh, chk, keys, elemchk)               \
	{                                                                      \
		.name = #f, .type = CONF_NAMED_MAPS,                           \
		.off = offsetof(struct st, f),                                 \
		.count_off = offsetof(struct st, n##f), .check = (chk),        \
		.what = (wh), .sub = (keys), .nsub = NKEYS(keys),              \
		.elem_size = sizeof(struct et),                                \
		.name_off = offsetof(struct et, namef),                        \
		.elem_check = (elemchk)                                        \
	}
/* [{...}, ...] into an array of struct et. */
#define KEY_MAP_LIST(st, f, et, wh, keys, elemchk)                             \
	{                                                                      \
		.name = #f, .type = CONF_MAP_LIST,                             \
		.off = offsetof(struct st, f),                                 \
		.count_off = offsetof(struct st, n##f), .what = (wh),          \
		.sub = (keys), .nsub = NKEYS(keys),                            \
		.elem_size = sizeof(struct et), .elem_check = (elemchk)        \
	}
/* {name: integer, ...} into an array of struct et {namef, valf}. */
#define KEY_INT_MAP(st, f, et, namef, valf, wh, chk, lo, hi)                   \
	{                                                                      \
		.name = #f, .type = CONF_INT_MAP,                              \
		.off = offsetof(struct st, f),                                 \
		.count_off = offsetof(struct st, n##f), .check = (chk),        \
		.what = (wh), .elem_size = sizeof(struct et),                  \
		.name_off = offsetof(struct et, namef),                        \
		.value_off = offsetof(struct et, valf), .min = (lo),           \
		.max = (hi)                                                    \
	}
#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

static int check_nonempty(const char *, char *, size_t);
static int check_tag(const char *, char *, size_t);
static int check_counter(const char *, char *, size_t);
static int check_name_pattern(const char *, char *, size_t);
static int check_db_url(const char *, char *, size_t);
static int check_amqp_url(const char *, char *, size_t);
static int check_loglevel(const char *, char *, size_t);
static int check_queue_type(const char *, char *, size_t);
static int check_pool_worker(const char *, char *, size_t);
static int check_listen(const char *, char *, size_t);
static int check_regex(const char *, char *, size_t);
static int check_cap_pool(const char *, char *, size_t);
static int check_subject(const char *, char *, size_t);
static int check_limit(
    struct parse *, const yaml_node_t *, const char *, void *);

static const struct conf_key pool_keys[] = {
    KEY_STR(conf_pool, description, NULL, NULL, 0),
    KEY_INT(conf_pool, max, 4, 0, INT64_MAX),
    KEY_INT(conf_pool, max_starting, 1, 0, INT64_MAX),
    KEY_INT(conf_pool, max_prealloc, 2, 0, INT64_MAX),
    KEY_INT(conf_pool, start_delay, 0, 0, INT64_MAX),
    /* Required unless `worker: external` (parse_pool). */
    KEY_STR(conf_pool, cmd_new, NULL, check_nonempty, KEY_REQUIRED),
    KEY_STR(conf_pool, cmd_delete, NULL, check_nonempty, KEY_REQUIRED),
    /* "external": a team's own worker, with commands of its own, serves
     * the pool; this file's workers never do. */
    KEY_STR(conf_pool, worker, NULL, check_pool_worker, 0),
    KEY_STR(conf_pool, cmd_livecheck, NULL, check_nonempty, 0),
    KEY_STR(conf_pool, cmd_release, NULL, check_nonempty, 0),
    KEY_STR(conf_pool, cmd_list, NULL, check_nonempty, 0),
    KEY_INT(conf_pool, livecheck_period, 600, 0, INT64_MAX),
    KEY_INT(conf_pool, livecheck_attempts, 3, 0, INT64_MAX),
    KEY_INT(conf_pool, reuse_opportunity_time, 0, 0, INT64_MAX),
    KEY_INT(conf_pool, reuse_max_count, 0, 0, INT64_MAX),
    KEY_INT(conf_pool, reuse_max_time, 3600, 0, INT64_MAX),
    KEY_STR(conf_pool, name_pattern, "{pool_name}_{id}_{datetime}",
	check_name_pattern, 0),
    KEY_TAGLIST(conf_pool, tags, 0),
    KEY_TAGLIST(conf_pool, tags_on_demand, KEY_ON_DEMAND),
    KEY_STRLIST(conf_pool, named_counters, check_counter),
    KEY_INT(conf_pool, cmd_new_timeout, 3600, 1, INT64_MAX),
    KEY_INT(conf_pool, cmd_delete_timeout, 600, 1, INT64_MAX),
    KEY_INT(conf_pool, cmd_livecheck_timeout, 300, 1, INT64_MAX),
    KEY_INT(conf_pool, cmd_release_timeout, 600, 1, INT64_MAX),
    KEY_INT(conf_pool, cmd_list_timeout, 120, 1, INT64_MAX),
    KEY_INT(conf_pool, cmd_list_period, 1800, 1, INT64_MAX),
    KEY_INT(conf_pool, start_timeout, 0, 0, INT64_MAX),
    /* A hook log rotates to <log>.1 when a write would pass this. */
    KEY_INT(conf_pool, hook_log_max_bytes, 10 * 1024 * 1024, 0, INT64_MAX),
};

/* One item of tags/tags_on_demand written as {name: X, priority: N}. */
static const struct conf_key tag_keys[] = {
    KEY_STR(conf_tag, name, NULL, check_tag, KEY_REQUIRED),
    KEY_INT(conf_tag, priority, 0, INT64_MIN, INT64_MAX),
};

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
    KEY_STR(conf_limit, tag, NULL, check_tag, 0),
    KEY_INT(conf_limit, per_owner, -1, 0, INT64_MAX),
    KEY_INT(conf_limit, total, -1, 0, INT64_MAX),
};

/* One item of `tag_rules`. */
static const struct conf_key tag_rule_keys[] = {
    KEY_STR(conf_tag_rule, subject, "{owner}/{project}/{chroot}/{package}",
	check_subject, 0),
    KEY_STR(conf_tag_rule, match, NULL, check_regex, KEY_REQUIRED),
    KEY_STRLIST_F(conf_tag_rule, add, check_tag, KEY_REQUIRED | KEY_NONEMPTY),
};

static const struct conf_key server_keys[] = {
    KEY_STR(conf_server, db_url, "sqlite:////var/lib/resbus/db.sqlite",
	check_db_url, 0),
    KEY_STR(conf_server, logdir, "/var/log/resbus", check_nonempty, 0),
    KEY_STR(conf_server, loglevel, "info", check_loglevel, 0),
    KEY_STR(conf_server, hostname, "localhost", check_nonempty, 0),
    /* resalloc's legacy name of hostname */
    {.name = "host",
	.type = CONF_STRING,
	.off = offsetof(struct conf_server, hostname),
	.check = check_nonempty,
	.flags = KEY_ALIAS},
    KEY_INT(conf_server, port, 49100, 1, 65535),
    KEY_STR(conf_server, amqp_url, NULL, check_amqp_url, 0),
    KEY_STR(conf_server, prefix, RESBUS_DEFAULT_PREFIX, check_tag, 0),
    KEY_STR(conf_server, queue_type, "classic", check_queue_type, 0),
    KEY_STRLIST(conf_server, admins, check_nonempty),
    /* When given, at least one: an empty list would believe nobody. */
    KEY_STRLIST_F(conf_server, workers, check_nonempty, KEY_NONEMPTY),
    KEY_STRLIST(conf_server, delegates, check_nonempty),
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
    KEY_STR(conf_server, notify_exchange, "amq.topic", check_nonempty, 0),
    KEY_STR(conf_server, notify_topic_prefix, "org.resbus", check_nonempty, 0),
    KEY_NAMED_MAPS(conf_server, classes, conf_class, name, "class", check_tag,
	class_keys, NULL),
    {.name = "default_class",
	.type = CONF_STRING,
	.off = offsetof(struct conf_server, default_class),
	.check = check_tag,
	.ref = "classes"},
    KEY_MAP_LIST(
	conf_server, limits, conf_limit, "limit", limit_keys, check_limit),
    KEY_MAP_LIST(
	conf_server, tag_rules, conf_tag_rule, "tag rule", tag_rule_keys, NULL),
    /* resalloc's manager loop period; resbus is event-driven */
    {.name = "sleeptime", .type = CONF_ANY},
};

static const struct conf_key worker_keys[] = {
    KEY_STR(conf_worker, amqp_url, NULL, check_amqp_url, 0),
    KEY_STR(conf_worker, pools_file, NULL, check_nonempty, 0),
    KEY_STRLIST(conf_worker, pools, check_tag),
    KEY_INT(conf_worker, concurrency, 64, 1, 100000),
    KEY_STR(conf_worker, logdir, "/var/log/resbus", check_nonempty, 0),
    KEY_STR(conf_worker, prefix, RESBUS_DEFAULT_PREFIX, check_tag, 0),
    KEY_STR(conf_worker, queue_type, "classic", check_queue_type, 0),
    KEY_STRLIST_F(conf_worker, broker_users, check_nonempty, KEY_NONEMPTY),
};

/* Where a tag of pools.yaml was written, for the cross-pool rule. */
struct tag_site {
	size_t pool;	  /* index into conf_pools.pools */
	const char *name; /* borrowed from the pool */
	yaml_node_t *node;
	bool on_demand;
};

struct parse {
	const char *path;
	char *err;
	size_t errlen;
	yaml_document_t doc;
	bool have_doc;
	/* pools.yaml only */
	size_t cur_pool;
	struct tag_site *sites;
	size_t nsites;
};

enum scalar_kind {
	SCALAR_NULL,
	SCALAR_BOOL,
	SCALAR_INT,
	SCALAR_STR,
	SCALAR_OTHER, /* an explicit tag we do not know */
};

/* ---- errors ------------------------------------------------------------ */

static void
set_err(
    struct parse *p, size_t line, size_t column, const char *fmt, va_list ap)
{
	char msg[512];
	char *c;

	if (p->err == NULL || p->errlen == 0)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One line, whatever the values in it held. */
	for (c = msg; *c != '\0'; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	if (line == 0)
		snprintf(p->err, p->errlen, "%s: %s", p->path, msg);
	else
		snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->path, line,
		    column, msg);
}

/* Records an error at NODE (NULL: no position) and returns -1. */
static int __attribute__((format(printf, 3, 4)))
fail(struct parse *p, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (node != NULL)
		set_err(p, node->start_mark.line + 1,
		    node->start_mark.column + 1, fmt, ap);
	else
		set_err(p, 0, 0, fmt, ap);
	va_end(ap);
	return -1;
}

static int __attribute__((format(printf, 4, 5)))
fail_at(struct parse *p, size_t line, size_t column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_err(p, line, column, fmt, ap);
	va_end(ap);
	return -1;
}

/* S quoted and escaped for a one-line message, cut at a sane length. */
static const char *
quote(const char *s, char *buf, size_t len)
{
	size_t i = 0, n = 0;

	buf[i++] = '"';
	for (; s[n] != '\0' && i + 8 < len; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n == CONF_VALUE_SHOWN) {
			i += snprintf(buf + i, len - i, "...");
			break;
		}
		if (c == '"' || c == '\\')
			i += snprintf(buf + i, len - i, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			i += snprintf(buf + i, len - i, "\\x%02x", c);
		else
			buf[i++] = (char)c;
	}
	buf[i++] = '"';
	buf[i] = '\0';
	return buf;
}

static const char *
scalar_text(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

static bool is_null(const yaml_node_t *);

/* What NODE is, for "expected X, got Y". */
static const char *
describe(const yaml_node_t *node, char *buf, size_t len)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (is_null(node))
			return "null";
		return quote(scalar_text(node), buf, len);
	default:
		return "nothing";
	}
}

/* ---- scalars ----------------------------------------------------------- */

/*
 * YAML 1.1 integers as PyYAML reads them: decimal, 0x hex, 0b binary,
 * 0-prefixed octal, optional sign, '_' as a digit separator.
 */
static int
parse_int(const char *s, int64_t *out)
{
	uint64_t v = 0, limit;
	unsigned base = 10, digit;
	bool neg = false, any = false;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		base = 2;
		s += 2;
	} else if (s[0] == '0' && s[1] != '\0') {
		base = 8;
		s++;
	}
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s != '\0'; s++) {
		if (*s == '_' && any)
			continue;
		if (isdigit((unsigned char)*s))
			digit = (unsigned)(*s - '0');
		else if (isxdigit((unsigned char)*s))
			digit =
			    (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		else
			return -1;
		if (digit >= base)
			return -1;
		if (v > (limit - digit) / base)
			return -1; /* out of range: not an int64 */
		v = v * base + digit;
		any = true;
	}
	if (!any)
		return -1;
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

static bool
is_yaml11_bool(const char *s)
{
	static const char *const words[] = {"yes", "Yes", "YES", "no", "No",
	    "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On",
	    "ON", "off", "Off", "OFF"};
	size_t i;

	for (i = 0; i < NKEYS(words); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

static bool
is_yaml11_null(const char *s)
{
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * The type of a scalar node.  Quoted scalars are strings; plain ones are
 * resolved by their text; an explicit standard tag (!!int, !!str...) is
 * honoured.  *ival is set for integers.
 */
static enum scalar_kind
scalar_kind(const yaml_node_t *node, int64_t *ival)
{
	const char *tag = (const char *)node->tag;
	const char *s = scalar_text(node);

	if (tag != NULL && strcmp(tag, YAML_STR_TAG) != 0) {
		if (strcmp(tag, YAML_INT_TAG) == 0)
			return parse_int(s, ival) == 0 ? SCALAR_INT
						       : SCALAR_OTHER;
		if (strcmp(tag, YAML_BOOL_TAG) == 0)
			return SCALAR_BOOL;
		if (strcmp(tag, YAML_NULL_TAG) == 0)
			return SCALAR_NULL;
		return SCALAR_OTHER;
	}
	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return SCALAR_STR;
	if (is_yaml11_null(s))
		return SCALAR_NULL;
	if (is_yaml11_bool(s))
		return SCALAR_BOOL;
	if (parse_int(s, ival) == 0)
		return SCALAR_INT;
	return SCALAR_STR;
}

static bool
is_null(const yaml_node_t *node)
{
	int64_t dummy;

	return node->type == YAML_SCALAR_NODE &&
	       scalar_kind(node, &dummy) == SCALAR_NULL;
}

/* ---- checks on string values ------------------------------------------ */

static int
check_nonempty(const char *v, char *why, size_t whylen)
{
	if (*v != '\0')
		return 0;
	snprintf(why, whylen, "must not be empty");
	return -1;
}

static int
check_tag(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (tag_valid(v))
		return 0;
	snprintf(why, whylen, "invalid name %s (" TAG_RULE ")",
	    quote(v, q, sizeof(q)));
	return -1;
}

/* Counter names end up in RESALLOC_NAMED_COUNTER_<name>. */
static int
check_counter(const char *v, char *why, size_t whylen)
{
	char q[128];
	const char *c;

	for (c = v; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			break;
	if (*v != '\0' && *c == '\0' && c - v <= TAG_MAX_LEN)
		return 0;
	snprintf(why, whylen,
	    "invalid counter name %s: 1 to %d of A-Z a-z 0-9 _",
	    quote(v, q, sizeof(q)), TAG_MAX_LEN);
	return -1;
}

/*
 * Text with {placeholder}s and no other braces: each placeholder (braces
 * included, LEN bytes at PH) must pass NAME_OK, which says what is
 * allowed in WHY when it does not.
 */
static int
check_template(const char *v, char *why, size_t whylen,
    bool (*name_ok)(const char *ph, size_t len, char *why, size_t whylen))
{
	char q[128], *ph;
	const char *c, *end;

	if (*v == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -1;
	}
	for (c = v; *c != '\0'; c++) {
		if (*c == '}') {
			snprintf(why, whylen, "unmatched '}' in %s",
			    quote(v, q, sizeof(q)));
			return -1;
		}
		if (*c != '{')
			continue;
		if ((end = strchr(c, '}')) == NULL) {
			snprintf(why, whylen, "unmatched '{' in %s",
			    quote(v, q, sizeof(q)));
			return -1;
		}
		ph = xstrndup(c, (size_t)(end - c + 1));
		if (!name_ok(ph, (size_t)(end - c + 1), why, whylen)) {
			free(ph);
			return -1;
		}
		free(ph);
		c = end;
	}
	return 0;
}

static bool
name_pattern_placeholder(const char *ph, size_t len, char *why,
    size_t whylen)
{
	static const char *const allowed[] = {
	    "{pool_name}", "{id}", "{datetime}"};
	char q[128];
	size_t i;

	for (i = 0; i < NKEYS(allowed); i++)
		if (strcmp(ph, allowed[i]) == 0)
			return true;
	snprintf(why, whylen, "unknown placeholder %s; only {pool_name}, {id} "
	    "and {datetime} are allowed", quote(ph, q, sizeof(q)));
	(void)len;
	return false;
}

static int
check_name_pattern(const char *v, char *why, size_t whylen)
{
	return check_template(v, why, whylen, name_pattern_placeholder);
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
check_db_url(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (has_prefix(v, "sqlite:///") || has_prefix(v, "postgresql://") ||
	    has_prefix(v, "postgres://"))
		return 0;
	snprintf(why, whylen,
	    "expected a URL starting with sqlite:///, postgresql:// or "
	    "postgres://, got %s",
	    quote(v, q, sizeof(q)));
	return -1;
}

static int
check_amqp_url(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (has_prefix(v, "amqp://") || has_prefix(v, "amqps://"))
		return 0;
	snprintf(why, whylen,
	    "expected a URL starting with amqp:// or amqps://, got %s",
	    quote(v, q, sizeof(q)));
	return -1;
}

static int
check_queue_type(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (strcmp(v, "classic") == 0 || strcmp(v, "quorum") == 0)
		return 0;
	snprintf(why, whylen, "expected classic or quorum, got %s",
	    quote(v, q, sizeof(q)));
	return -1;
}

static int
check_pool_worker(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (strcmp(v, "external") == 0)
		return 0;
	snprintf(why, whylen, "expected external, got %s",
	    quote(v, q, sizeof(q)));
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
	    quote(v, q, sizeof(q)));
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
	if (parse_int(colon + 1, &port) == -1 || port < 1 || port > 65535 ||
	    !isdigit((unsigned char)colon[1]))
		goto bad;
	return 0;
bad:
	snprintf(why, whylen,
	    "expected HOST:PORT, [IPV6]:PORT, \"\" or off, "
	    "got %s",
	    quote(v, q, sizeof(q)));
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
		snprintf(why, whylen, "a regular expression of at most %d bytes "
		    "is expected", REGEX_MAX_LEN);
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
			snprintf(why, whylen, "a repetition operator right "
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
	    quote(v, q, sizeof(q)), reason);
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
	snprintf(why, whylen, "bad placeholder %s: expected {name}, name 1 to "
	    "%d of a-z 0-9 _", quote(ph, q, sizeof(q)), SUBJECT_NAME_MAX);
	return false;
}

static int
check_subject(const char *v, char *why, size_t whylen)
{
	return check_template(v, why, whylen, subject_placeholder);
}

/* ---- typed values ------------------------------------------------------ */

/* The field of OBJ that key K (or its element count) lives in. */
static void *
field(void *obj, size_t off)
{
	return (char *)obj + off;
}

#define FIELD_INT(obj, k) (*(int64_t *)field((obj), (k)->off))
#define FIELD_STR(obj, k) (*(char **)field((obj), (k)->off))
#define FIELD_STRLIST(obj, k) (*(char ***)field((obj), (k)->off))
#define FIELD_TAGLIST(obj, k) (*(struct conf_tag **)field((obj), (k)->off))
#define FIELD_COUNT(obj, k) (*(size_t *)field((obj), (k)->count_off))
#define FIELD_BOOL(obj, k) (*(bool *)field((obj), (k)->off))

/*
 * The array of a CONF_NAMED_MAPS, CONF_MAP_LIST or CONF_INT_MAP key.  The
 * field is a pointer to the element struct; it is copied as bytes, since
 * it is not a void *.
 */
static void *
elems_get(void *obj, const struct conf_key *k)
{
	void *base;

	memcpy(&base, field(obj, k->off), sizeof(base));
	return base;
}

static void
elems_set(void *obj, const struct conf_key *k, void *base)
{
	memcpy(field(obj, k->off), &base, sizeof(base));
}

/* The I-th element of BASE, an array of K's elements. */
static void *
elem_at(const struct conf_key *k, void *base, size_t i)
{
	return (char *)base + i * k->elem_size;
}

#define ELEM_NAME(k, e) (*(char **)field((e), (k)->name_off))
#define ELEM_INT(k, e) (*(int64_t *)field((e), (k)->value_off))

static void
int_expectation(const struct conf_key *k, char *buf, size_t len)
{
	if (k->min == INT64_MIN && k->max == INT64_MAX)
		snprintf(buf, len, "an integer");
	else if (k->min == 0 && k->max == INT64_MAX)
		snprintf(buf, len, "a non-negative integer");
	else if (k->min == 1 && k->max == INT64_MAX)
		snprintf(buf, len, "a positive integer");
	else
		snprintf(buf, len,
		    "an integer between %" PRId64 " and %" PRId64, k->min,
		    k->max);
}

/*
 * The truth value of a YAML 1.1 boolean scalar (yes/no, true/false,
 * on/off in their three spellings, or an explicit !!bool): 0 and *out, or
 * -1 when NODE is not a boolean.
 */
static int
yaml_bool_value(const yaml_node_t *node, bool *out)
{
	static const char *const yes[] = {
	    "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
	const char *s;
	int64_t dummy;
	size_t i;

	if (node->type != YAML_SCALAR_NODE ||
	    scalar_kind(node, &dummy) != SCALAR_BOOL)
		return -1;
	s = scalar_text(node);
	if (!is_yaml11_bool(s))
		return -1;
	*out = false;
	for (i = 0; i < NKEYS(yes); i++)
		if (strcmp(s, yes[i]) == 0)
			*out = true;
	return 0;
}

static int
parse_bool_value(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, bool *out)
{
	char got[128];

	if (yaml_bool_value(node, out) == -1)
		return fail(p, node, "%s: expected true or false, got %s",
		    k->name, describe(node, got, sizeof(got)));
	return 0;
}

static int
parse_int_value(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, int64_t *out)
{
	char expect[96], got[128];
	int64_t v = 0;

	if (node->type != YAML_SCALAR_NODE ||
	    scalar_kind(node, &v) != SCALAR_INT || v < k->min || v > k->max) {
		int_expectation(k, expect, sizeof(expect));
		return fail(p, node, "%s: expected %s, got %s", k->name, expect,
		    describe(node, got, sizeof(got)));
	}
	*out = v;
	return 0;
}

/*
 * A string value of key K (LABEL in messages).  *out is fresh (caller
 * frees) or NULL for a null value when NULL_OK.
 */
static int
parse_str_value(struct parse *p, const char *label, conf_check_fn check,
    const yaml_node_t *node, bool null_ok, char **out)
{
	char got[128], why[256];
	int64_t dummy;
	enum scalar_kind kind;

	*out = NULL;
	if (node->type != YAML_SCALAR_NODE)
		return fail(p, node, "%s: expected a string, got %s", label,
		    describe(node, got, sizeof(got)));
	kind = scalar_kind(node, &dummy);
	if (kind == SCALAR_NULL && null_ok)
		return 0;
	if (kind == SCALAR_OTHER)
		return fail(p, node, "%s: expected a string, got %s tagged %s",
		    label, describe(node, got, sizeof(got)),
		    (const char *)node->tag);
	if (kind == SCALAR_NULL || kind == SCALAR_BOOL)
		return fail(p, node, "%s: expected a string, got %s%s", label,
		    describe(node, got, sizeof(got)),
		    kind == SCALAR_BOOL ? " (a YAML boolean)" : "");
	if (check != NULL && check(scalar_text(node), why, sizeof(why)) == -1)
		return fail(p, node, "%s: %s", label, why);
	*out = xstrdup(scalar_text(node));
	return 0;
}

static void
free_tag_list(struct conf_tag *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

static int
parse_str_list(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, char ***out, size_t *nout)
{
	yaml_node_item_t *it;
	char got[128], **list;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	if (is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return fail(p, node, "%s: expected a list of strings, got %s",
		    k->name, describe(node, got, sizeof(got)));
	list = xcalloc((size_t)(node->data.sequence.items.top -
				node->data.sequence.items.start) +
			   1,
	    sizeof(*list));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);

		if (parse_str_value(
			p, k->name, k->check, item, false, &list[n]) == -1) {
			strv_free(list, n);
			return -1;
		}
		n++;
	}
	*out = list;
	*nout = n;
	return 0;
}

static int parse_mapping(struct parse *, const yaml_node_t *,
    const struct conf_key *, size_t, void *);
static int check_required(struct parse *, const yaml_node_t *, const char *,
    const struct conf_key *, size_t, void *);
static yaml_node_t *mapping_key(struct parse *, const yaml_node_pair_t *);
static int check_duplicate(struct parse *, const yaml_node_t *,
    const yaml_node_pair_t *, const char *);
static bool is_merge_key(const yaml_node_t *);

static void
add_site(struct parse *p, const char *name, yaml_node_t *node, bool on_demand)
{
	p->sites = xrealloc(p->sites, (p->nsites + 1) * sizeof(*p->sites));
	p->sites[p->nsites].pool = p->cur_pool;
	p->sites[p->nsites].name = name;
	p->sites[p->nsites].node = node;
	p->sites[p->nsites].on_demand = on_demand;
	p->nsites++;
}

/* A list of tags, each a string or a {name, priority} mapping. */
static int
parse_tag_list(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, struct conf_tag **out, size_t *nout)
{
	yaml_node_item_t *it;
	struct conf_tag *list;
	char got[128];
	size_t n = 0, first_site = p->nsites;

	*out = NULL;
	*nout = 0;
	if (is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return fail(p, node, "%s: expected a list of tags, got %s",
		    k->name, describe(node, got, sizeof(got)));
	list = xcalloc((size_t)(node->data.sequence.items.top -
				node->data.sequence.items.start) +
			   1,
	    sizeof(*list));
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		yaml_node_t *site = item;
		int rc;

		if (item->type == YAML_MAPPING_NODE) {
			rc = parse_mapping(
			    p, item, tag_keys, NKEYS(tag_keys), &list[n]);
			if (rc == 0)
				rc = check_required(p, item, k->name, tag_keys,
				    NKEYS(tag_keys), &list[n]);
		} else {
			rc = parse_str_value(
			    p, k->name, check_tag, item, false, &list[n].name);
		}
		if (rc == -1) {
			free_tag_list(list, n + 1);
			p->nsites = first_site;
			return -1;
		}
		add_site(
		    p, list[n].name, site, (k->flags & KEY_ON_DEMAND) != 0);
		n++;
	}
	*out = list;
	*nout = n;
	return 0;
}

static void fields_free(const struct conf_key *, size_t, void *);

/* Frees the N elements of K at BASE, and BASE. */
static void
elems_free(const struct conf_key *k, void *base, size_t n)
{
	size_t i;

	if (base == NULL)
		return;
	for (i = 0; i < n; i++) {
		void *e = elem_at(k, base, i);

		if (k->type != CONF_MAP_LIST)
			free(ELEM_NAME(k, e));
		if (k->sub != NULL)
			fields_free(k->sub, k->nsub, e);
	}
	free(base);
}

/*
 * One element of a CONF_NAMED_MAPS or CONF_MAP_LIST key: VALUE read
 * against K's table into ELEM, then its required keys and its rule.
 * NODE is where errors about the element as a whole point; LABEL names
 * it in messages.  A named element written as null takes the defaults.
 */
static int
parse_elem(struct parse *p, const struct conf_key *k, const char *label,
    const yaml_node_t *node, const yaml_node_t *value, void *elem)
{
	static const yaml_node_t empty = {.type = YAML_MAPPING_NODE};
	char got[128];

	if (k->type == CONF_NAMED_MAPS && is_null(value))
		value = &empty;
	if (value->type != YAML_MAPPING_NODE)
		return fail(p, value,
		    "%s: expected a mapping of options, got %s", label,
		    describe(value, got, sizeof(got)));
	if (parse_mapping(p, value, k->sub, k->nsub, elem) == -1)
		return -1;
	if (check_required(p, node, label, k->sub, k->nsub, elem) == -1)
		return -1;
	if (k->elem_check != NULL && k->elem_check(p, node, label, elem) == -1)
		return -1;
	return 0;
}

/* One name -> value pair of a CONF_NAMED_MAPS or CONF_INT_MAP key. */
static int
parse_named_elem(struct parse *p, const struct conf_key *k,
    const yaml_node_t *map, const yaml_node_pair_t *pair, void *elem)
{
	yaml_node_t *key, *value;
	char label[160], q[128];
	int64_t v = 0;

	if ((key = mapping_key(p, pair)) == NULL)
		return -1;
	if (check_duplicate(p, map, pair, k->what) == -1)
		return -1;
	/* A merged mapping would be a second source of names: keep one. */
	if (is_merge_key(key))
		return fail(p, key, "%s: merge keys (<<) are not allowed here",
		    k->name);
	if (parse_str_value(
		p, k->name, k->check, key, false, &ELEM_NAME(k, elem)) == -1)
		return -1;
	value = yaml_document_get_node(&p->doc, pair->value);
	if (k->type == CONF_INT_MAP) {
		if (parse_int_value(p, k, value, &v) == -1)
			return -1;
		ELEM_INT(k, elem) = v;
		return 0;
	}
	snprintf(label, sizeof(label), "%s %s", k->what,
	    quote(ELEM_NAME(k, elem), q, sizeof(q)));
	return parse_elem(p, k, label, key, value, elem);
}

/*
 * The value NODE of a CONF_NAMED_MAPS, CONF_MAP_LIST or CONF_INT_MAP key
 * K: *out is a fresh array of *nout elements (free with elems_free), NULL
 * for a null value.
 */
static int
parse_elems(struct parse *p, const struct conf_key *k, const yaml_node_t *node,
    void **out, size_t *nout)
{
	const yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	char got[128];
	size_t count, n = 0;
	void *base;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (is_null(node))
		return 0;
	if (k->type == CONF_MAP_LIST) {
		if (node->type != YAML_SEQUENCE_NODE)
			return fail(p, node,
			    "%s: expected a list of mappings, got %s", k->name,
			    describe(node, got, sizeof(got)));
		count = (size_t)(node->data.sequence.items.top -
				 node->data.sequence.items.start);
	} else {
		if (node->type != YAML_MAPPING_NODE)
			return fail(p, node,
			    "%s: expected a mapping of %s names, got %s",
			    k->name, k->what, describe(node, got, sizeof(got)));
		count = (size_t)(node->data.mapping.pairs.top -
				 node->data.mapping.pairs.start);
	}
	base = xcalloc(count + 1, k->elem_size);
	if (k->type == CONF_MAP_LIST) {
		for (it = node->data.sequence.items.start;
		     rc == 0 && it < node->data.sequence.items.top; it++) {
			yaml_node_t *item =
			    yaml_document_get_node(&p->doc, *it);

			/* counted first: a half-read element is freed too */
			n++;
			rc = parse_elem(
			    p, k, k->name, item, item, elem_at(k, base, n - 1));
		}
	} else {
		for (pair = node->data.mapping.pairs.start;
		     rc == 0 && pair < node->data.mapping.pairs.top; pair++) {
			n++;
			rc = parse_named_elem(
			    p, k, node, pair, elem_at(k, base, n - 1));
		}
	}
	if (rc == -1) {
		elems_free(k, base, n);
		return -1;
	}
	*out = base;
	*nout = n;
	return 0;
}

/* ---- mappings against a table ------------------------------------------ */

static void
fields_init(const struct conf_key *keys, size_t nkeys, void *obj)
{
	size_t i;

	for (i = 0; i < nkeys; i++) {
		const struct conf_key *k = &keys[i];

		if (k->flags & KEY_ALIAS)
			continue;
		switch (k->type) {
		case CONF_INT:
			FIELD_INT(obj, k) = k->def_int;
			break;
		case CONF_STRING:
			FIELD_STR(obj, k) =
			    k->def_str ? xstrdup(k->def_str) : NULL;
			break;
		case CONF_BOOL:
			FIELD_BOOL(obj, k) = k->def_int != 0;
			break;
		default:
			break; /* lists start empty (the struct is zeroed) */
		}
	}
}

static void
fields_free(const struct conf_key *keys, size_t nkeys, void *obj)
{
	size_t i;

	for (i = 0; i < nkeys; i++) {
		const struct conf_key *k = &keys[i];

		if (k->flags & KEY_ALIAS)
			continue;
		switch (k->type) {
		case CONF_STRING:
			free(FIELD_STR(obj, k));
			FIELD_STR(obj, k) = NULL;
			break;
		case CONF_STRING_LIST:
			strv_free(
			    FIELD_STRLIST(obj, k), FIELD_COUNT(obj, k));
			FIELD_STRLIST(obj, k) = NULL;
			FIELD_COUNT(obj, k) = 0;
			break;
		case CONF_TAG_LIST:
			free_tag_list(
			    FIELD_TAGLIST(obj, k), FIELD_COUNT(obj, k));
			FIELD_TAGLIST(obj, k) = NULL;
			FIELD_COUNT(obj, k) = 0;
			break;
		case CONF_NAMED_MAPS:
		case CONF_MAP_LIST:
		case CONF_INT_MAP:
			elems_free(k, elems_get(obj, k), FIELD_COUNT(obj, k));
			elems_set(obj, k, NULL);
			FIELD_COUNT(obj, k) = 0;
			break;
		default:
			break;
		}
	}
}

/* The entry of KEYS an alias K stands for. */
static size_t
alias_target(
    const struct conf_key *keys, size_t nkeys, const struct conf_key *k)
{
	size_t i;

	for (i = 0; i < nkeys; i++)
		if (keys[i].off == k->off && !(keys[i].flags & KEY_ALIAS) &&
		    keys[i].type == k->type)
			return i;
	fatalx("conf: alias %s has no main key", k->name);
}

/* Stores the value NODE of key K into OBJ. */
static int
set_value(struct parse *p, const struct conf_key *k, const yaml_node_t *node,
    void *obj, bool store)
{
	char *s;
	char **list;
	struct conf_tag *tags;
	void *elems;
	size_t n;
	int64_t v = 0;
	bool b = false;

	switch (k->type) {
	case CONF_INT:
		if (parse_int_value(p, k, node, &v) == -1)
			return -1;
		if (store)
			FIELD_INT(obj, k) = v;
		return 0;
	case CONF_BOOL:
		if (parse_bool_value(p, k, node, &b) == -1)
			return -1;
		if (store)
			FIELD_BOOL(obj, k) = b;
		return 0;
	case CONF_STRING:
		if ((k->flags & KEY_FALSE_OFF) &&
		    yaml_bool_value(node, &b) == 0 && !b)
			s = xstrdup("off");
		else if (parse_str_value(p, k->name, k->check, node,
			     !(k->flags & KEY_REQUIRED), &s) == -1)
			return -1;
		if (!store) {
			free(s);
			return 0;
		}
		free(FIELD_STR(obj, k));
		FIELD_STR(obj, k) = s != NULL		 ? s
				    : k->def_str != NULL ? xstrdup(k->def_str)
							 : NULL;
		return 0;
	case CONF_STRING_LIST:
		if (parse_str_list(p, k, node, &list, &n) == -1)
			return -1;
		if (n == 0 && (k->flags & KEY_NONEMPTY)) {
			strv_free(list, n);
			return fail(p, node, "%s: must list at least one item",
			    k->name);
		}
		strv_free(FIELD_STRLIST(obj, k), FIELD_COUNT(obj, k));
		FIELD_STRLIST(obj, k) = list;
		FIELD_COUNT(obj, k) = n;
		return 0;
	case CONF_TAG_LIST:
		if (parse_tag_list(p, k, node, &tags, &n) == -1)
			return -1;
		free_tag_list(FIELD_TAGLIST(obj, k), FIELD_COUNT(obj, k));
		FIELD_TAGLIST(obj, k) = tags;
		FIELD_COUNT(obj, k) = n;
		return 0;
	case CONF_NAMED_MAPS:
	case CONF_MAP_LIST:
	case CONF_INT_MAP:
		if (parse_elems(p, k, node, &elems, &n) == -1)
			return -1;
		elems_free(k, elems_get(obj, k), FIELD_COUNT(obj, k));
		elems_set(obj, k, elems);
		FIELD_COUNT(obj, k) = n;
		return 0;
	case CONF_ANY:
		return 0;
	}
	return 0;
}

/*
 * Reports a key that appears twice in MAP (PAIR and one before it).
 * Keys are compared by their text.
 */
static int
check_duplicate(struct parse *p, const yaml_node_t *map,
    const yaml_node_pair_t *pair, const char *what)
{
	const yaml_node_pair_t *prev;
	yaml_node_t *key = yaml_document_get_node(&p->doc, pair->key);
	char q[128];

	for (prev = map->data.mapping.pairs.start; prev < pair; prev++) {
		yaml_node_t *pk = yaml_document_get_node(&p->doc, prev->key);

		if (pk->type == YAML_SCALAR_NODE &&
		    strcmp(scalar_text(pk), scalar_text(key)) == 0)
			return fail(p, key,
			    "duplicate %s %s (first at line %zu)", what,
			    quote(scalar_text(key), q, sizeof(q)),
			    pk->start_mark.line + 1);
	}
	return 0;
}

/* A scalar key node of MAP, or an error. */
static yaml_node_t *
mapping_key(struct parse *p, const yaml_node_pair_t *pair)
{
	yaml_node_t *key = yaml_document_get_node(&p->doc, pair->key);
	char got[128];

	if (key->type != YAML_SCALAR_NODE) {
		fail(p, key, "expected a key, got %s",
		    describe(key, got, sizeof(got)));
		return NULL;
	}
	return key;
}

/* Where the value of one key of a table was found. */
struct chosen {
	yaml_node_t *key;
	yaml_node_t *value;
};

#define MERGE_MAX_DEPTH 8

/* YAML's merge key, "<<: *anchor", which PyYAML and so resalloc honour. */
static bool
is_merge_key(const yaml_node_t *key)
{
	return key->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       strcmp(scalar_text(key), "<<") == 0;
}

/*
 * Finds the value of each key of KEYS in MAP: its own keys first, then
 * those of the mappings it merges ("<<"), the first merged one winning.
 * A key already chosen is left alone, which gives the mapping's own keys
 * precedence over merged ones at every level.
 */
static int
collect_keys(struct parse *p, const yaml_node_t *map,
    const struct conf_key *keys, size_t nkeys, struct chosen *chosen, int depth)
{
	const yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	char q[128], got[128];
	size_t i;

	if (depth > MERGE_MAX_DEPTH)
		return fail(p, map, "merge keys (<<) nested too deeply");
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key;

		if ((key = mapping_key(p, pair)) == NULL)
			return -1;
		if (check_duplicate(p, map, pair, "key") == -1)
			return -1;
		if (is_merge_key(key))
			continue;
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i].name, scalar_text(key)) == 0)
				break;
		if (i == nkeys)
			return fail(p, key, "unknown key %s",
			    quote(scalar_text(key), q, sizeof(q)));
		if (chosen[i].value == NULL) {
			chosen[i].key = key;
			chosen[i].value =
			    yaml_document_get_node(&p->doc, pair->value);
		}
	}
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(&p->doc, pair->key);
		yaml_node_t *value =
		    yaml_document_get_node(&p->doc, pair->value);

		if (!is_merge_key(key))
			continue;
		if (value->type == YAML_MAPPING_NODE) {
			if (collect_keys(
				p, value, keys, nkeys, chosen, depth + 1) == -1)
				return -1;
			continue;
		}
		if (value->type != YAML_SEQUENCE_NODE)
			return fail(p, value,
			    "<<: expected a mapping or a list of mappings, "
			    "got %s",
			    describe(value, got, sizeof(got)));
		for (it = value->data.sequence.items.start;
		     it < value->data.sequence.items.top; it++) {
			yaml_node_t *item =
			    yaml_document_get_node(&p->doc, *it);

			if (item->type != YAML_MAPPING_NODE)
				return fail(p, item,
				    "<<: expected a mapping, got %s",
				    describe(item, got, sizeof(got)));
			if (collect_keys(
				p, item, keys, nkeys, chosen, depth + 1) == -1)
				return -1;
		}
	}
	return 0;
}

/*
 * The string of key K (a K->ref key) names an element of the
 * CONF_NAMED_MAPS key K->ref of the same table, else an error at NODE.
 */
static int
check_ref(struct parse *p, const struct conf_key *keys, size_t nkeys,
    const struct conf_key *k, const yaml_node_t *node, void *obj)
{
	const struct conf_key *r = NULL;
	const char *s = FIELD_STR(obj, k);
	char q[128];
	void *base;
	size_t i, n;

	if (s == NULL)
		return 0;
	for (i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, k->ref) == 0)
			r = &keys[i];
	if (r == NULL || r->type != CONF_NAMED_MAPS)
		fatalx("conf: %s refers to no list of names", k->name);
	base = elems_get(obj, r);
	n = FIELD_COUNT(obj, r);
	for (i = 0; i < n; i++)
		if (strcmp(ELEM_NAME(r, elem_at(r, base, i)), s) == 0)
			return 0;
	return fail(p, node, "%s: %s is not one of %s%s", k->name,
	    quote(s, q, sizeof(q)), r->name,
	    n == 0 ? " (none is defined)" : "");
}

/*
 * Fills OBJ from the mapping MAP against KEYS: defaults first, then every
 * key found, in file order so that the first bad value is the one
 * reported.
 */
static int
parse_mapping(struct parse *p, const yaml_node_t *map,
    const struct conf_key *keys, size_t nkeys, void *obj)
{
	struct chosen chosen[32];
	size_t order[32], n = 0, i, j;

	if (nkeys > NKEYS(chosen))
		fatalx("conf: table too large");
	memset(chosen, 0, sizeof(chosen));
	fields_init(keys, nkeys, obj);
	if (collect_keys(p, map, keys, nkeys, chosen, 0) == -1)
		return -1;
	for (i = 0; i < nkeys; i++) {
		if (chosen[i].value == NULL)
			continue;
		/* insertion sort by position of the key in the file */
		for (j = n;
		     j > 0 && chosen[order[j - 1]].key->start_mark.index >
				  chosen[i].key->start_mark.index;
		     j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
	}
	for (j = 0; j < n; j++) {
		const struct conf_key *k = &keys[order[j]];
		bool store = true;

		/* An alias is used only when its main key is absent. */
		if (k->flags & KEY_ALIAS)
			store =
			    chosen[alias_target(keys, nkeys, k)].value == NULL;
		if (set_value(p, k, chosen[order[j]].value, obj, store) == -1)
			return -1;
	}
	/* Cross references, once every key of the mapping is in. */
	for (j = 0; j < n; j++)
		if (keys[order[j]].ref != NULL &&
		    check_ref(p, keys, nkeys, &keys[order[j]],
			chosen[order[j]].value, obj) == -1)
			return -1;
	return 0;
}

/*
 * Every KEY_REQUIRED string or list of KEYS is set in OBJ, else an error
 * at NODE.
 */
static int
check_required(struct parse *p, const yaml_node_t *node, const char *label,
    const struct conf_key *keys, size_t nkeys, void *obj)
{
	size_t i;

	for (i = 0; i < nkeys; i++) {
		const struct conf_key *k = &keys[i];
		bool missing;

		if (!(k->flags & KEY_REQUIRED))
			continue;
		if (k->type == CONF_STRING)
			missing = FIELD_STR(obj, k) == NULL;
		else if (k->type == CONF_STRING_LIST)
			missing = FIELD_COUNT(obj, k) == 0;
		else
			continue;
		if (missing)
			return fail(
			    p, node, "%s: %s is required", label, k->name);
	}
	return 0;
}

/* ---- files ------------------------------------------------------------- */

static char *
read_file(struct parse *p, size_t *len)
{
	struct stat st;
	FILE *fp;
	char *buf;
	size_t n;

	if ((fp = fopen(p->path, "r")) == NULL) {
		fail(p, NULL, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1) {
		fail(p, NULL, "%s", strerror(errno));
		fclose(fp);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(p, NULL, "not a regular file");
		fclose(fp);
		return NULL;
	}
	if (st.st_size > CONF_MAX_FILE_BYTES) {
		fail(p, NULL, "larger than %d bytes", CONF_MAX_FILE_BYTES);
		fclose(fp);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		fail(p, NULL, "%s", strerror(errno));
		free(buf);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
yaml_fail(struct parse *p, const yaml_parser_t *parser, const char *buf)
{
	size_t line = 1, column = 1, i;
	const char *problem = parser->problem ? parser->problem : "error";

	switch (parser->error) {
	case YAML_READER_ERROR:
		/* The reader has only a byte offset. */
		for (i = 0; i < parser->problem_offset && buf[i] != '\0'; i++) {
			if (buf[i] == '\n') {
				line++;
				column = 1;
			} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
				column++;
			}
		}
		return fail_at(p, line, column, "%s", problem);
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
	case YAML_COMPOSER_ERROR:
		if (parser->context != NULL)
			return fail_at(p, parser->problem_mark.line + 1,
			    parser->problem_mark.column + 1,
			    "%s (%s at line %zu, column %zu)", problem,
			    parser->context, parser->context_mark.line + 1,
			    parser->context_mark.column + 1);
		return fail_at(p, parser->problem_mark.line + 1,
		    parser->problem_mark.column + 1, "%s", problem);
	case YAML_MEMORY_ERROR:
		return fail(p, NULL, "out of memory");
	default:
		return fail(p, NULL, "YAML error: %s", problem);
	}
}

/*
 * Reads and composes P->path.  On success P->doc holds the (single)
 * document and *root its root node, NULL for an empty file or a bare
 * null.
 */
static int
load_document(struct parse *p, yaml_node_t **root)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_node_t *extra_root;
	char *buf;
	size_t len;
	int rc = -1;

	*root = NULL;
	if ((buf = read_file(p, &len)) == NULL)
		return -1;
	if (!yaml_parser_initialize(&parser))
		fatalx("yaml_parser_initialize: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &p->doc)) {
		yaml_fail(p, &parser, buf);
		goto out;
	}
	p->have_doc = true;
	/* A second document would be ignored silently: refuse it. */
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_fail(p, &parser, buf);
		goto out;
	}
	extra_root = yaml_document_get_root_node(&extra);
	if (extra_root != NULL) {
		fail(p, extra_root, "expected a single YAML document");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	*root = yaml_document_get_root_node(&p->doc);
	if (*root != NULL && is_null(*root))
		*root = NULL;
	rc = 0;
out:
	yaml_parser_delete(&parser);
	free(buf);
	return rc;
}

static void
parse_done(struct parse *p)
{
	if (p->have_doc)
		yaml_document_delete(&p->doc);
	free(p->sites);
}

static void
parse_start(struct parse *p, const char *path, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->path = path;
	p->err = err;
	p->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

/*
 * Loads a file whose top level is one mapping described by KEYS into
 * OBJ.  An empty file leaves the defaults.
 */
static int
load_flat(struct parse *p, const struct conf_key *keys, size_t nkeys, void *obj)
{
	yaml_node_t *root;
	char got[128];

	if (load_document(p, &root) == -1)
		return -1;
	if (root == NULL) {
		fields_init(keys, nkeys, obj);
		return 0;
	}
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, "expected a mapping of options, got %s",
		    describe(root, got, sizeof(got)));
	return parse_mapping(p, root, keys, nkeys, obj);
}

/* ---- pools.yaml -------------------------------------------------------- */

/* No tag is on-demand in one pool and a normal tag in another (or same). */
static int
check_on_demand(struct parse *p, const struct conf_pools *pools)
{
	const struct tag_site *a, *b;
	char q[128];
	size_t i, j;

	for (i = 0; i < p->nsites; i++) {
		a = &p->sites[i];
		if (a->on_demand)
			continue;
		for (j = 0; j < p->nsites; j++) {
			b = &p->sites[j];
			if (!b->on_demand || strcmp(a->name, b->name) != 0)
				continue;
			return fail(p, a->node,
			    "tag %s is on-demand in pool \"%s\", so it may not "
			    "be a normal tag of pool \"%s\"",
			    quote(a->name, q, sizeof(q)),
			    pools->pools[b->pool].name,
			    pools->pools[a->pool].name);
		}
	}
	return 0;
}

/* A pool lists no tag twice. */
static int
check_tag_duplicates(struct parse *p)
{
	const struct tag_site *a, *b;
	char q[128];
	size_t i, j;

	for (i = 0; i < p->nsites; i++) {
		a = &p->sites[i];
		for (j = 0; j < i; j++) {
			b = &p->sites[j];
			if (a->pool == b->pool &&
			    a->on_demand == b->on_demand &&
			    strcmp(a->name, b->name) == 0)
				return fail(p, a->node,
				    "duplicate tag %s (first at line %zu)",
				    quote(a->name, q, sizeof(q)),
				    b->node->start_mark.line + 1);
		}
	}
	return 0;
}

static int
parse_pool(struct parse *p, const yaml_node_t *key, const yaml_node_t *value,
    struct conf_pool *pool)
{
	static const yaml_node_t empty = {.type = YAML_MAPPING_NODE};
	char label[128], got[128];

	snprintf(label, sizeof(label), "pool \"%s\"", pool->name);
	if (is_null(value))
		value = &empty;
	if (value->type != YAML_MAPPING_NODE)
		return fail(p, value,
		    "%s: expected a mapping of options, got %s", label,
		    describe(value, got, sizeof(got)));
	if (parse_mapping(p, value, pool_keys, NKEYS(pool_keys), pool) == -1)
		return -1;
	if (conf_pool_external(pool)) {
		/* Its commands live with the team's worker, never here. */
		if (pool->cmd_new != NULL || pool->cmd_delete != NULL)
			return fail(p, key, "%s: worker: external takes no "
			    "cmd_new or cmd_delete (they belong in the "
			    "pools.yaml of the worker that serves it)", label);
	} else if (check_required(p, key, label, pool_keys, NKEYS(pool_keys),
	    pool) == -1)
		return -1;
	if (pool->ntags_on_demand > 0 && pool->max_prealloc != 0) {
		log_info("%s: pool \"%s\" has tags_on_demand: max_prealloc set "
			 "to 0 (was %" PRId64 ")",
		    p->path, pool->name, pool->max_prealloc);
		pool->max_prealloc = 0;
	}
	return 0;
}

static int
parse_pools(struct parse *p, struct conf_pools *pools)
{
	const yaml_node_pair_t *pair;
	yaml_node_t *root;
	char q[128], got[128];

	if (load_document(p, &root) == -1)
		return -1;
	if (root == NULL)
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root,
		    "expected a mapping of pool names to pool options, got %s",
		    describe(root, got, sizeof(got)));
	pools->pools = xcalloc((size_t)(root->data.mapping.pairs.top -
					root->data.mapping.pairs.start) +
				   1,
	    sizeof(*pools->pools));
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *key, *value;
		struct conf_pool *pool;

		if ((key = mapping_key(p, pair)) == NULL)
			return -1;
		if (check_duplicate(p, root, pair, "pool") == -1)
			return -1;
		if (!tag_valid(scalar_text(key)))
			return fail(p, key,
			    "invalid pool name %s (" TAG_RULE ")",
			    quote(scalar_text(key), q, sizeof(q)));
		pool = &pools->pools[pools->npools++];
		pool->name = xstrdup(scalar_text(key));
		p->cur_pool = (size_t)(pool - pools->pools);
		value = yaml_document_get_node(&p->doc, pair->value);
		if (parse_pool(p, key, value, pool) == -1)
			return -1;
	}
	if (check_tag_duplicates(p) == -1)
		return -1;
	return check_on_demand(p, pools);
}

/*
 * Loads pools.yaml.  Returns a fresh struct (caller frees with
 * conf_pools_free) or NULL with the error in ERR.
 */
struct conf_pools *
conf_pools_load(const char *path, char *err, size_t errlen)
{
	struct conf_pools *pools = xcalloc(1, sizeof(*pools));
	struct parse p;
	int rc;

	parse_start(&p, path, err, errlen);
	rc = parse_pools(&p, pools);
	parse_done(&p);
	if (rc == -1) {
		conf_pools_free(pools);
		return NULL;
	}
	return pools;
}

void
conf_pools_free(struct conf_pools *pools)
{
	size_t i;

	if (pools == NULL)
		return;
	for (i = 0; i < pools->npools; i++) {
		fields_free(pool_keys, NKEYS(pool_keys), &pools->pools[i]);
		free(pools->pools[i].name);
	}
	free(pools->pools);
	free(pools);
}

bool
conf_pool_external(const struct conf_pool *pool)
{
	return pool->worker != NULL && strcmp(pool->worker, "external") == 0;
}

/* Borrowed from POOLS. */
const struct conf_pool *
conf_pools_find(const struct conf_pools *pools, const char *name)
{
	size_t i;

	for (i = 0; i < pools->npools; i++)
		if (strcmp(pools->pools[i].name, name) == 0)
			return &pools->pools[i];
	return NULL;
}

bool
conf_pool_has_tag(
    const struct conf_pool *pool, const char *tag, int64_t *priority)
{
	size_t i;

	for (i = 0; i < pool->ntags; i++)
		if (strcmp(pool->tags[i].name, tag) == 0) {
			if (priority != NULL)
				*priority = pool->tags[i].priority;
			return true;
		}
	for (i = 0; i < pool->ntags_on_demand; i++)
		if (strcmp(pool->tags_on_demand[i].name, tag) == 0) {
			if (priority != NULL)
				*priority = pool->tags_on_demand[i].priority;
			return true;
		}
	return false;
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

	parse_start(&p, path, err, errlen);
	rc = load_flat(&p, server_keys, NKEYS(server_keys), server);
	parse_done(&p);
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
	fields_free(server_keys, NKEYS(server_keys), server);
	free(server);
}

/* A limit sets per_owner, total or both: one with neither limits nothing. */
static int
check_limit(
    struct parse *p, const yaml_node_t *node, const char *label, void *elem)
{
	const struct conf_limit *limit = elem;

	if (limit->per_owner == -1 && limit->total == -1)
		return fail(
		    p, node, "%s: a limit needs per_owner or total", label);
	return 0;
}

/* ---- worker.yaml ------------------------------------------------------- */

/*
 * Loads worker.yaml.  pools_file defaults to pools.yaml beside PATH, and
 * a relative pools_file is taken relative to PATH's directory.  Returns a
 * fresh struct (caller frees with conf_worker_free) or NULL with the
 * error in ERR.
 */
struct conf_worker *
conf_worker_load(const char *path, char *err, size_t errlen)
{
	struct conf_worker *worker = xcalloc(1, sizeof(*worker));
	struct parse p;
	const char *slash;
	char *dir, *file;
	int rc;

	parse_start(&p, path, err, errlen);
	rc = load_flat(&p, worker_keys, NKEYS(worker_keys), worker);
	parse_done(&p);
	if (rc == -1) {
		conf_worker_free(worker);
		return NULL;
	}
	if (worker->pools_file == NULL || worker->pools_file[0] != '/') {
		slash = strrchr(path, '/');
		dir = slash != NULL ? xstrndup(path, (size_t)(slash - path + 1))
				    : xstrdup("");
		file = xasprintf("%s%s", dir,
		    worker->pools_file != NULL ? worker->pools_file
					       : "pools.yaml");
		free(dir);
		free(worker->pools_file);
		worker->pools_file = file;
	}
	return worker;
}

void
conf_worker_free(struct conf_worker *worker)
{
	if (worker == NULL)
		return;
	fields_free(worker_keys, NKEYS(worker_keys), worker);
	free(worker);
}

/* ---- the directory ----------------------------------------------------- */

const char *
conf_dir_pick(const char *option)
{
	const char *env;

	if (option != NULL && *option != '\0')
		return option;
	if ((env = getenv("CONFIG_DIR")) != NULL && *env != '\0')
		return env;
	return SYSCONFDIR "/resbus";
}

struct conf_server *
conf_server_load_dir(const char *option, char *err, size_t errlen)
{
	char *path = xasprintf("%s/server.yaml", conf_dir_pick(option));
	struct conf_server *server = conf_server_load(path, err, errlen);

	free(path);
	return server;
}

bool
conf_tag_on_demand(const struct conf_pool *pool, const char *tag)
{
	size_t i;

	for (i = 0; i < pool->ntags_on_demand; i++)
		if (strcmp(pool->tags_on_demand[i].name, tag) == 0)
			return true;
	return false;
}

/* Adds the names of the N keys of K, and of their elements' keys. */
static size_t
keys_walk(const struct conf_key *k, size_t n, const char **names, size_t max,
    size_t have)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (have < max)
			names[have] = k[i].name;
		have++;
		if (k[i].sub != NULL)
			have = keys_walk(k[i].sub, k[i].nsub, names, max, have);
	}
	return have;
}

size_t
conf_file_keys(const char *file, const char **names, size_t max)
{
	size_t n = 0;

	if (strcmp(file, "server") == 0) {
		n = keys_walk(server_keys, NKEYS(server_keys), names, max, 0);
	} else if (strcmp(file, "pools") == 0) {
		n = keys_walk(pool_keys, NKEYS(pool_keys), names, max, 0);
		n = keys_walk(tag_keys, NKEYS(tag_keys), names, max, n);
	} else if (strcmp(file, "worker") == 0) {
		n = keys_walk(worker_keys, NKEYS(worker_keys), names, max, 0);
	}
	return n;
}
