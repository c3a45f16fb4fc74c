/*
 * conf_priv -- what the configuration loader's files share: the key
 * tables' types and the macros that write them, the parse state, the
 * field accessors, and the functions of the engine (conf_parse.c,
 * conf_value.c) that the schemas (conf_server.c, conf_pools.c,
 * conf_worker.c) call.  Nothing outside lib/conf*.c includes it; callers
 * see only conf.h.
 */
#ifndef RESBUS_CONF_PRIV_H
#define RESBUS_CONF_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <yaml.h>

#include "conf.h"
#include "tags.h"

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

/*
 * The most keys one table may have: conf_parse_mapping keeps a slot per key
 * on its stack.  Every table is checked against it where it is defined.
 */
#define CONF_KEYS_MAX 32
#define CONF_KEYS_BOUND(t)                                                     \
	_Static_assert(                                                        \
	    NKEYS(t) <= CONF_KEYS_MAX, #t " has more keys than CONF_KEYS_MAX")

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

enum conf_scalar_kind {
	SCALAR_NULL,
	SCALAR_BOOL,
	SCALAR_INT,
	SCALAR_STR,
	SCALAR_OTHER, /* an explicit tag we do not know */
};

/* The field of OBJ that key K (or its element count) lives in. */
static inline void *
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
static inline void *
elems_get(void *obj, const struct conf_key *k)
{
	void *base;

	memcpy(&base, field(obj, k->off), sizeof(base));
	return base;
}

static inline void
elems_set(void *obj, const struct conf_key *k, void *base)
{
	memcpy(field(obj, k->off), &base, sizeof(base));
}

/* The I-th element of BASE, an array of K's elements. */
static inline void *
elem_at(const struct conf_key *k, void *base, size_t i)
{
	return (char *)base + i * k->elem_size;
}

#define ELEM_NAME(k, e) (*(char **)field((e), (k)->name_off))
#define ELEM_INT(k, e) (*(int64_t *)field((e), (k)->value_off))

/* ---- conf_parse.c: errors, scalars, mappings, files ---- */

int conf_fail(struct parse *p, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *conf_quote(const char *s, char *buf, size_t len);
const char *conf_scalar_text(const yaml_node_t *node);
const char *conf_describe(const yaml_node_t *node, char *buf, size_t len);
bool conf_is_null(const yaml_node_t *node);
int conf_parse_int(const char *s, int64_t *out);
bool conf_is_yaml11_bool(const char *s);
enum conf_scalar_kind conf_scalar_kind(const yaml_node_t *node, int64_t *ival);
int conf_parse_mapping(struct parse *, const yaml_node_t *,
    const struct conf_key *, size_t, void *);
int conf_check_required(struct parse *, const yaml_node_t *, const char *,
    const struct conf_key *, size_t, void *);
yaml_node_t *conf_mapping_key(struct parse *, const yaml_node_pair_t *);
int conf_check_duplicate(struct parse *, const yaml_node_t *,
    const yaml_node_pair_t *, const char *);
bool conf_is_merge_key(const yaml_node_t *);
int conf_load_document(struct parse *p, yaml_node_t **root);
int conf_load_flat(
    struct parse *p, const struct conf_key *keys, size_t nkeys, void *obj);
void conf_parse_start(
    struct parse *p, const char *path, char *err, size_t errlen);
void conf_parse_done(struct parse *p);

/* ---- conf_value.c: typed values and the shared string checks ---- */

int conf_check_nonempty(const char *, char *, size_t);
int conf_check_tag(const char *, char *, size_t);
int conf_check_amqp_url(const char *, char *, size_t);
int conf_check_queue_type(const char *, char *, size_t);
int conf_check_template(const char *v, char *why, size_t whylen,
    bool (*name_ok)(const char *ph, size_t len, char *why, size_t whylen));
bool conf_has_prefix(const char *s, const char *prefix);
void conf_fields_init(const struct conf_key *keys, size_t nkeys, void *obj);
void conf_fields_free(const struct conf_key *keys, size_t nkeys, void *obj);
int conf_set_value(struct parse *p, const struct conf_key *k,
    const yaml_node_t *node, void *obj, bool store);
size_t conf_keys_walk(const struct conf_key *k, size_t n, const char **names,
    size_t max, size_t have);
/* One item of tags/tags_on_demand written as a mapping. */
extern const struct conf_key conf_tag_keys[];
extern const size_t conf_ntag_keys;

/* ---- the schemas: the names of their keys, for conf_file_keys ---- */

size_t conf_server_key_names(const char **names, size_t max);
size_t conf_pools_key_names(const char **names, size_t max);
size_t conf_worker_key_names(const char **names, size_t max);

#endif
