/*
 * conf_parse -- the YAML walking engine of the configuration loader.
 *
 * A file is read whole into memory, composed into a libyaml document and
 * walked against a declarative table of keys (conf_priv.h): the mapping's
 * own keys first, then those of the mappings it merges ("<<: *common"),
 * each value stored in file order so that the first bad value is the one
 * reported, then the cross references among the keys of the mapping.
 * Scalars are typed the way PyYAML (YAML 1.1), and thus resalloc, types
 * them.  Unknown keys and duplicate keys are errors.
 *
 * Every error is one line, "file:line:column: what is wrong", with the
 * 1-based position of the node at fault (for YAML syntax errors, the
 * position libyaml reports).  What the values may hold is conf_value.c's;
 * what each file holds is its schema's (conf_server.c, conf_pools.c,
 * conf_worker.c).
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "log.h"
#include "util.h"

#define CONF_MAX_FILE_BYTES (16 * 1024 * 1024)
#define CONF_VALUE_SHOWN 60

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
int __attribute__((format(printf, 3, 4)))
conf_fail(struct parse *p, const yaml_node_t *node, const char *fmt, ...)
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
const char *
conf_quote(const char *s, char *buf, size_t len)
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

const char *
conf_scalar_text(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* What NODE is, for "expected X, got Y". */
const char *
conf_describe(const yaml_node_t *node, char *buf, size_t len)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (conf_is_null(node))
			return "null";
		return conf_quote(conf_scalar_text(node), buf, len);
	default:
		return "nothing";
	}
}

/* ---- scalars ----------------------------------------------------------- */

/*
 * YAML 1.1 integers as PyYAML reads them: decimal, 0x hex, 0b binary,
 * 0-prefixed octal, optional sign, '_' as a digit separator.
 */
int
conf_parse_int(const char *s, int64_t *out)
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

bool
conf_is_yaml11_bool(const char *s)
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
enum conf_scalar_kind
conf_scalar_kind(const yaml_node_t *node, int64_t *ival)
{
	const char *tag = (const char *)node->tag;
	const char *s = conf_scalar_text(node);

	if (tag != NULL && strcmp(tag, YAML_STR_TAG) != 0) {
		if (strcmp(tag, YAML_INT_TAG) == 0)
			return conf_parse_int(s, ival) == 0 ? SCALAR_INT
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
	if (conf_is_yaml11_bool(s))
		return SCALAR_BOOL;
	if (conf_parse_int(s, ival) == 0)
		return SCALAR_INT;
	return SCALAR_STR;
}

bool
conf_is_null(const yaml_node_t *node)
{
	int64_t dummy;

	return node->type == YAML_SCALAR_NODE &&
	       conf_scalar_kind(node, &dummy) == SCALAR_NULL;
}

/* ---- mappings against a table ------------------------------------------ */

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

/*
 * Reports a key that appears twice in MAP (PAIR and one before it).
 * Keys are compared by their text.
 */
int
conf_check_duplicate(struct parse *p, const yaml_node_t *map,
    const yaml_node_pair_t *pair, const char *what)
{
	const yaml_node_pair_t *prev;
	yaml_node_t *key = yaml_document_get_node(&p->doc, pair->key);
	char q[128];

	for (prev = map->data.mapping.pairs.start; prev < pair; prev++) {
		yaml_node_t *pk = yaml_document_get_node(&p->doc, prev->key);

		if (pk->type == YAML_SCALAR_NODE &&
		    strcmp(conf_scalar_text(pk), conf_scalar_text(key)) == 0)
			return conf_fail(p, key,
			    "duplicate %s %s (first at line %zu)", what,
			    conf_quote(conf_scalar_text(key), q, sizeof(q)),
			    pk->start_mark.line + 1);
	}
	return 0;
}

/* A scalar key node of MAP, or an error. */
yaml_node_t *
conf_mapping_key(struct parse *p, const yaml_node_pair_t *pair)
{
	yaml_node_t *key = yaml_document_get_node(&p->doc, pair->key);
	char got[128];

	if (key->type != YAML_SCALAR_NODE) {
		conf_fail(p, key, "expected a key, got %s",
		    conf_describe(key, got, sizeof(got)));
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
bool
conf_is_merge_key(const yaml_node_t *key)
{
	return key->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       strcmp(conf_scalar_text(key), "<<") == 0;
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
		return conf_fail(p, map, "merge keys (<<) nested too deeply");
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key;

		if ((key = conf_mapping_key(p, pair)) == NULL)
			return -1;
		if (conf_check_duplicate(p, map, pair, "key") == -1)
			return -1;
		if (conf_is_merge_key(key))
			continue;
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i].name, conf_scalar_text(key)) == 0)
				break;
		if (i == nkeys)
			return conf_fail(p, key, "unknown key %s",
			    conf_quote(conf_scalar_text(key), q, sizeof(q)));
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

		if (!conf_is_merge_key(key))
			continue;
		if (value->type == YAML_MAPPING_NODE) {
			if (collect_keys(
				p, value, keys, nkeys, chosen, depth + 1) == -1)
				return -1;
			continue;
		}
		if (value->type != YAML_SEQUENCE_NODE)
			return conf_fail(p, value,
			    "<<: expected a mapping or a list of mappings, "
			    "got %s",
			    conf_describe(value, got, sizeof(got)));
		for (it = value->data.sequence.items.start;
		     it < value->data.sequence.items.top; it++) {
			yaml_node_t *item =
			    yaml_document_get_node(&p->doc, *it);

			if (item->type != YAML_MAPPING_NODE)
				return conf_fail(p, item,
				    "<<: expected a mapping, got %s",
				    conf_describe(item, got, sizeof(got)));
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
	return conf_fail(p, node, "%s: %s is not one of %s%s", k->name,
	    conf_quote(s, q, sizeof(q)), r->name,
	    n == 0 ? " (none is defined)" : "");
}

/*
 * Fills OBJ from the mapping MAP against KEYS: defaults first, then every
 * key found, in file order so that the first bad value is the one
 * reported.
 */
int
conf_parse_mapping(struct parse *p, const yaml_node_t *map,
    const struct conf_key *keys, size_t nkeys, void *obj)
{
	struct chosen chosen[CONF_KEYS_MAX];
	size_t order[CONF_KEYS_MAX], n = 0, i, j;

	if (nkeys > NKEYS(chosen))
		fatalx("conf: table too large");
	memset(chosen, 0, sizeof(chosen));
	conf_fields_init(keys, nkeys, obj);
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
		if (conf_set_value(p, k, chosen[order[j]].value, obj, store) ==
		    -1)
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
int
conf_check_required(struct parse *p, const yaml_node_t *node, const char *label,
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
			return conf_fail(
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
		conf_fail(p, NULL, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1) {
		conf_fail(p, NULL, "%s", strerror(errno));
		fclose(fp);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_fail(p, NULL, "not a regular file");
		fclose(fp);
		return NULL;
	}
	if (st.st_size > CONF_MAX_FILE_BYTES) {
		conf_fail(p, NULL, "larger than %d bytes", CONF_MAX_FILE_BYTES);
		fclose(fp);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		conf_fail(p, NULL, "%s", strerror(errno));
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
		return conf_fail(p, NULL, "out of memory");
	default:
		return conf_fail(p, NULL, "YAML error: %s", problem);
	}
}

/*
 * Reads and composes P->path.  On success P->doc holds the (single)
 * document and *root its root node, NULL for an empty file or a bare
 * null.
 */
int
conf_load_document(struct parse *p, yaml_node_t **root)
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
		conf_fail(p, extra_root, "expected a single YAML document");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	*root = yaml_document_get_root_node(&p->doc);
	if (*root != NULL && conf_is_null(*root))
		*root = NULL;
	rc = 0;
out:
	yaml_parser_delete(&parser);
	free(buf);
	return rc;
}

void
conf_parse_done(struct parse *p)
{
	if (p->have_doc)
		yaml_document_delete(&p->doc);
	free(p->sites);
}

void
conf_parse_start(struct parse *p, const char *path, char *err, size_t errlen)
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
int
conf_load_flat(
    struct parse *p, const struct conf_key *keys, size_t nkeys, void *obj)
{
	yaml_node_t *root;
	char got[128];

	if (conf_load_document(p, &root) == -1)
		return -1;
	if (root == NULL) {
		conf_fields_init(keys, nkeys, obj);
		return 0;
	}
	if (root->type != YAML_MAPPING_NODE)
		return conf_fail(p, root,
		    "expected a mapping of options, got %s",
		    conf_describe(root, got, sizeof(got)));
	return conf_parse_mapping(p, root, keys, nkeys, obj);
}
