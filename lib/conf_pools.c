/*
 * conf_pools -- pools.yaml: a mapping of pool names to pool options.
 *
 * A pool's keys, their defaults and checks are the table below; the
 * rules across keys and pools run once the file is read: cmd_new and
 * cmd_delete are required unless `worker: external` (and refused then),
 * tags_on_demand sets max_prealloc to 0, a pool lists no tag twice, and
 * no tag is on-demand in one pool and a normal tag in another.  Nothing
 * is handed to the caller unless the whole file is good, so a bad file on
 * SIGHUP leaves the running configuration alone.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "log.h"
#include "util.h"

static int check_counter(const char *, char *, size_t);
static int check_name_pattern(const char *, char *, size_t);
static int check_pool_worker(const char *, char *, size_t);

static const struct conf_key pool_keys[] = {
    KEY_STR(conf_pool, description, NULL, NULL, 0),
    KEY_INT(conf_pool, max, 4, 0, INT64_MAX),
    KEY_INT(conf_pool, max_starting, 1, 0, INT64_MAX),
    KEY_INT(conf_pool, max_prealloc, 2, 0, INT64_MAX),
    KEY_INT(conf_pool, start_delay, 0, 0, INT64_MAX),
    /* Required unless `worker: external` (parse_pool). */
    KEY_STR(conf_pool, cmd_new, NULL, conf_check_nonempty, KEY_REQUIRED),
    KEY_STR(conf_pool, cmd_delete, NULL, conf_check_nonempty, KEY_REQUIRED),
    /* "external": a team's own worker, with commands of its own, serves
     * the pool; this file's workers never do. */
    KEY_STR(conf_pool, worker, NULL, check_pool_worker, 0),
    KEY_STR(conf_pool, cmd_livecheck, NULL, conf_check_nonempty, 0),
    KEY_STR(conf_pool, cmd_release, NULL, conf_check_nonempty, 0),
    KEY_STR(conf_pool, cmd_list, NULL, conf_check_nonempty, 0),
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
CONF_KEYS_BOUND(pool_keys);

/* ---- checks on string values ---- */

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
	    conf_quote(v, q, sizeof(q)), TAG_MAX_LEN);
	return -1;
}

static bool
name_pattern_placeholder(const char *ph, size_t len, char *why, size_t whylen)
{
	static const char *const allowed[] = {
	    "{pool_name}", "{id}", "{datetime}"};
	char q[128];
	size_t i;

	for (i = 0; i < NKEYS(allowed); i++)
		if (strcmp(ph, allowed[i]) == 0)
			return true;
	snprintf(why, whylen,
	    "unknown placeholder %s; only {pool_name}, {id} "
	    "and {datetime} are allowed",
	    conf_quote(ph, q, sizeof(q)));
	(void)len;
	return false;
}

static int
check_name_pattern(const char *v, char *why, size_t whylen)
{
	return conf_check_template(v, why, whylen, name_pattern_placeholder);
}

static int
check_pool_worker(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (strcmp(v, "external") == 0)
		return 0;
	snprintf(why, whylen, "expected external, got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
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
			return conf_fail(p, a->node,
			    "tag %s is on-demand in pool \"%s\", so it may not "
			    "be a normal tag of pool \"%s\"",
			    conf_quote(a->name, q, sizeof(q)),
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
				return conf_fail(p, a->node,
				    "duplicate tag %s (first at line %zu)",
				    conf_quote(a->name, q, sizeof(q)),
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
	if (conf_is_null(value))
		value = &empty;
	if (value->type != YAML_MAPPING_NODE)
		return conf_fail(p, value,
		    "%s: expected a mapping of options, got %s", label,
		    conf_describe(value, got, sizeof(got)));
	if (conf_parse_mapping(p, value, pool_keys, NKEYS(pool_keys), pool) ==
	    -1)
		return -1;
	if (conf_pool_external(pool)) {
		/* Its commands live with the team's worker, never here. */
		if (pool->cmd_new != NULL || pool->cmd_delete != NULL)
			return conf_fail(p, key,
			    "%s: worker: external takes no "
			    "cmd_new or cmd_delete (they belong in the "
			    "pools.yaml of the worker that serves it)",
			    label);
	} else if (conf_check_required(
		       p, key, label, pool_keys, NKEYS(pool_keys), pool) == -1)
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

	if (conf_load_document(p, &root) == -1)
		return -1;
	if (root == NULL)
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return conf_fail(p, root,
		    "expected a mapping of pool names to pool options, got %s",
		    conf_describe(root, got, sizeof(got)));
	pools->pools = xcalloc((size_t)(root->data.mapping.pairs.top -
					root->data.mapping.pairs.start) +
				   1,
	    sizeof(*pools->pools));
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *key, *value;
		struct conf_pool *pool;

		if ((key = conf_mapping_key(p, pair)) == NULL)
			return -1;
		if (conf_check_duplicate(p, root, pair, "pool") == -1)
			return -1;
		if (!tag_valid(conf_scalar_text(key)))
			return conf_fail(p, key,
			    "invalid pool name %s (" TAG_RULE ")",
			    conf_quote(conf_scalar_text(key), q, sizeof(q)));
		pool = &pools->pools[pools->npools++];
		pool->name = xstrdup(conf_scalar_text(key));
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

	conf_parse_start(&p, path, err, errlen);
	rc = parse_pools(&p, pools);
	conf_parse_done(&p);
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
		conf_fields_free(pool_keys, NKEYS(pool_keys), &pools->pools[i]);
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

bool
conf_tag_on_demand(const struct conf_pool *pool, const char *tag)
{
	size_t i;

	for (i = 0; i < pool->ntags_on_demand; i++)
		if (strcmp(pool->tags_on_demand[i].name, tag) == 0)
			return true;
	return false;
}

size_t
conf_pools_key_names(const char **names, size_t max)
{
	size_t n;

	n = conf_keys_walk(pool_keys, NKEYS(pool_keys), names, max, 0);
	return conf_keys_walk(conf_tag_keys, conf_ntag_keys, names, max, n);
}
