/*
 * conf_value -- the values of the configuration loader: integers,
 * strings, booleans, lists of strings, lists of tags, and the arrays
 * filled from keys whose value holds further mappings (server.yaml's
 * `classes`, `limits`, `tag_rules` and a class's `caps`); the defaults
 * they start from and how they are freed; and the string checks more
 * than one file uses.
 *
 * Types are checked strictly: an integer key given a string, a float or
 * a boolean ("yes", "on", "true"...) is an error, and so is a string key
 * given a boolean, since resalloc would have seen True there.  A plain
 * number given to a string key is taken as written.  A null value ("key:"
 * with nothing after it) means "the default" for strings and lists and
 * is an error for integers.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "log.h"
#include "util.h"

/* One item of tags/tags_on_demand written as {name: X, priority: N}. */
const struct conf_key conf_tag_keys[] = {
    KEY_STR(conf_tag, name, NULL, conf_check_tag, KEY_REQUIRED),
    KEY_INT(conf_tag, priority, 0, INT64_MIN, INT64_MAX),
};
const size_t conf_ntag_keys = NKEYS(conf_tag_keys);
CONF_KEYS_BOUND(conf_tag_keys);

/* ---- checks on string values ------------------------------------------ */

int
conf_check_nonempty(const char *v, char *why, size_t whylen)
{
	if (*v != '\0')
		return 0;
	snprintf(why, whylen, "must not be empty");
	return -1;
}

int
conf_check_tag(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (tag_valid(v))
		return 0;
	snprintf(why, whylen, "invalid name %s (" TAG_RULE ")",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

/*
 * Text with {placeholder}s and no other braces: each placeholder (braces
 * included, LEN bytes at PH) must pass NAME_OK, which says what is
 * allowed in WHY when it does not.
 */
int
conf_check_template(const char *v, char *why, size_t whylen,
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
			    conf_quote(v, q, sizeof(q)));
			return -1;
		}
		if (*c != '{')
			continue;
		if ((end = strchr(c, '}')) == NULL) {
			snprintf(why, whylen, "unmatched '{' in %s",
			    conf_quote(v, q, sizeof(q)));
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

bool
conf_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
conf_check_amqp_url(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (conf_has_prefix(v, "amqp://") || conf_has_prefix(v, "amqps://"))
		return 0;
	snprintf(why, whylen,
	    "expected a URL starting with amqp:// or amqps://, got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

int
conf_check_queue_type(const char *v, char *why, size_t whylen)
{
	char q[128];

	if (strcmp(v, "classic") == 0 || strcmp(v, "quorum") == 0)
		return 0;
	snprintf(why, whylen, "expected classic or quorum, got %s",
	    conf_quote(v, q, sizeof(q)));
	return -1;
}

/* ---- typed values ------------------------------------------------------ */

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
	    conf_scalar_kind(node, &dummy) != SCALAR_BOOL)
		return -1;
	s = conf_scalar_text(node);
	if (!conf_is_yaml11_bool(s))
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
		return conf_fail(p, node, "%s: expected true or false, got %s",
		    k->name, conf_describe(node, got, sizeof(got)));
	return 0;
}

static int
parse_int_value(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, int64_t *out)
{
	char expect[96], got[128];
	int64_t v = 0;

	if (node->type != YAML_SCALAR_NODE ||
	    conf_scalar_kind(node, &v) != SCALAR_INT || v < k->min ||
	    v > k->max) {
		int_expectation(k, expect, sizeof(expect));
		return conf_fail(p, node, "%s: expected %s, got %s", k->name,
		    expect, conf_describe(node, got, sizeof(got)));
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
	enum conf_scalar_kind kind;

	*out = NULL;
	if (node->type != YAML_SCALAR_NODE)
		return conf_fail(p, node, "%s: expected a string, got %s",
		    label, conf_describe(node, got, sizeof(got)));
	kind = conf_scalar_kind(node, &dummy);
	if (kind == SCALAR_NULL && null_ok)
		return 0;
	if (kind == SCALAR_OTHER)
		return conf_fail(p, node,
		    "%s: expected a string, got %s tagged %s", label,
		    conf_describe(node, got, sizeof(got)),
		    (const char *)node->tag);
	if (kind == SCALAR_NULL || kind == SCALAR_BOOL)
		return conf_fail(p, node, "%s: expected a string, got %s%s",
		    label, conf_describe(node, got, sizeof(got)),
		    kind == SCALAR_BOOL ? " (a YAML boolean)" : "");
	if (check != NULL &&
	    check(conf_scalar_text(node), why, sizeof(why)) == -1)
		return conf_fail(p, node, "%s: %s", label, why);
	*out = xstrdup(conf_scalar_text(node));
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
	if (conf_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return conf_fail(p, node,
		    "%s: expected a list of strings, got %s", k->name,
		    conf_describe(node, got, sizeof(got)));
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
	if (conf_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return conf_fail(p, node, "%s: expected a list of tags, got %s",
		    k->name, conf_describe(node, got, sizeof(got)));
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
			rc = conf_parse_mapping(p, item, conf_tag_keys,
			    NKEYS(conf_tag_keys), &list[n]);
			if (rc == 0)
				rc = conf_check_required(p, item, k->name,
				    conf_tag_keys, NKEYS(conf_tag_keys),
				    &list[n]);
		} else {
			rc = parse_str_value(p, k->name, conf_check_tag, item,
			    false, &list[n].name);
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
			conf_fields_free(k->sub, k->nsub, e);
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

	if (k->type == CONF_NAMED_MAPS && conf_is_null(value))
		value = &empty;
	if (value->type != YAML_MAPPING_NODE)
		return conf_fail(p, value,
		    "%s: expected a mapping of options, got %s", label,
		    conf_describe(value, got, sizeof(got)));
	if (conf_parse_mapping(p, value, k->sub, k->nsub, elem) == -1)
		return -1;
	if (conf_check_required(p, node, label, k->sub, k->nsub, elem) == -1)
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

	if ((key = conf_mapping_key(p, pair)) == NULL)
		return -1;
	if (conf_check_duplicate(p, map, pair, k->what) == -1)
		return -1;
	/* A merged mapping would be a second source of names: keep one. */
	if (conf_is_merge_key(key))
		return conf_fail(p, key,
		    "%s: merge keys (<<) are not allowed here", k->name);
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
	    conf_quote(ELEM_NAME(k, elem), q, sizeof(q)));
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
	if (conf_is_null(node))
		return 0;
	if (k->type == CONF_MAP_LIST) {
		if (node->type != YAML_SEQUENCE_NODE)
			return conf_fail(p, node,
			    "%s: expected a list of mappings, got %s", k->name,
			    conf_describe(node, got, sizeof(got)));
		count = (size_t)(node->data.sequence.items.top -
				 node->data.sequence.items.start);
	} else {
		if (node->type != YAML_MAPPING_NODE)
			return conf_fail(p, node,
			    "%s: expected a mapping of %s names, got %s",
			    k->name, k->what,
			    conf_describe(node, got, sizeof(got)));
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

void
conf_fields_init(const struct conf_key *keys, size_t nkeys, void *obj)
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

void
conf_fields_free(const struct conf_key *keys, size_t nkeys, void *obj)
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
			strv_free(FIELD_STRLIST(obj, k), FIELD_COUNT(obj, k));
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

/* Stores the value NODE of key K into OBJ. */
int
conf_set_value(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, void *obj, bool store)
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
			return conf_fail(p, node,
			    "%s: must list at least one item", k->name);
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

/* Adds the names of the N keys of K, and of their elements' keys. */
size_t
conf_keys_walk(const struct conf_key *k, size_t n, const char **names,
    size_t max, size_t have)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (have < max)
			names[have] = k[i].name;
		have++;
		if (k[i].sub != NULL)
			have = conf_keys_walk(
			    k[i].sub, k[i].nsub, names, max, have);
	}
	return have;
}
