/*
 * json_read -- just enough of a JSON reader for resbusd's own answers
 * (resource-info, resource-list --json): values into a small tree.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "maint.h"

#define JSON_MAX_DEPTH 16

struct json_reader {
	const char *p;
};

void
json_value_clear(struct json_value *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		json_value_clear(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static void
json_ws(struct json_reader *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
		r->p++;
}

static int
json_hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= (uint32_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= (uint32_t)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= (uint32_t)(p[i] - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
utf8_put(char **out, uint32_t cp)
{
	char *o = *out;

	if (cp < 0x80)
		*o++ = (char)cp;
	else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	*out = o;
}

/* A string at r->p (on its opening quote), decoded; caller frees. */
static char *
json_string(struct json_reader *r)
{
	const char *p = r->p + 1;
	char *buf, *o;
	uint32_t cp, lo;

	/* Decoded text is never longer than its escaped form. */
	buf = o = xmalloc(strlen(p) + 1);
	for (;;) {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			goto bad;
		if (*p == '"')
			break;
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*o++ = *p++;
			break;
		case 'b':
			*o++ = '\b';
			p++;
			break;
		case 'f':
			*o++ = '\f';
			p++;
			break;
		case 'n':
			*o++ = '\n';
			p++;
			break;
		case 'r':
			*o++ = '\r';
			p++;
			break;
		case 't':
			*o++ = '\t';
			p++;
			break;
		case 'u':
			if (json_hex4(p + 1, &cp) == -1)
				goto bad;
			p += 5;
			if (cp >= 0xd800 && cp <= 0xdbff && p[0] == '\\' &&
			    p[1] == 'u' && json_hex4(p + 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				p += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			/* 6 escaped bytes give at most 3, 12 give 4. */
			utf8_put(&o, cp);
			break;
		default:
			goto bad;
		}
	}
	*o = '\0';
	r->p = p + 1;
	return buf;
bad:
	free(buf);
	return NULL;
}

static int json_parse(struct json_reader *r, struct json_value *v, int depth);

static int
json_parse_list(
    struct json_reader *r, struct json_value *v, int depth, bool object)
{
	struct json_value item;
	char *key = NULL;

	r->p++;
	json_ws(r);
	if (*r->p == (object ? '}' : ']')) {
		r->p++;
		return 0;
	}
	for (;;) {
		json_ws(r);
		if (object) {
			if (*r->p != '"' || (key = json_string(r)) == NULL)
				return -1;
			json_ws(r);
			if (*r->p++ != ':') {
				free(key);
				return -1;
			}
		}
		memset(&item, 0, sizeof(item));
		if (json_parse(r, &item, depth + 1) == -1) {
			free(key);
			return -1;
		}
		v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
		if (object) {
			v->keys =
			    xrealloc(v->keys, (v->n + 1) * sizeof(*v->keys));
			v->keys[v->n] = key;
			key = NULL;
		}
		v->items[v->n++] = item;
		json_ws(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p++ != (object ? '}' : ']'))
			return -1;
		return 0;
	}
}

static int
json_parse(struct json_reader *r, struct json_value *v, int depth)
{
	const char *start;

	if (depth > JSON_MAX_DEPTH)
		return -1;
	json_ws(r);
	switch (*r->p) {
	case '{':
		v->type = J_OBJECT;
		return json_parse_list(r, v, depth, true);
	case '[':
		v->type = J_ARRAY;
		return json_parse_list(r, v, depth, false);
	case '"':
		v->type = J_STRING;
		return (v->str = json_string(r)) == NULL ? -1 : 0;
	case 'n':
		v->type = J_NULL;
		if (strncmp(r->p, "null", 4) != 0)
			return -1;
		r->p += 4;
		return 0;
	case 't':
	case 'f':
		v->type = J_BOOL;
		v->b = *r->p == 't';
		if (strncmp(r->p, v->b ? "true" : "false", v->b ? 4 : 5) != 0)
			return -1;
		r->p += v->b ? 4 : 5;
		return 0;
	default:
		start = r->p;
		while (
		    strchr("+-0123456789.eE", *r->p) != NULL && *r->p != '\0')
			r->p++;
		if (r->p == start)
			return -1;
		v->type = J_NUMBER;
		v->str = xstrndup(start, (size_t)(r->p - start));
		return 0;
	}
}

/* Parses TEXT whole into *V (free with json_value_clear); 0 or -1. */
int
json_read(const char *text, struct json_value *v)
{
	struct json_reader r = {text};

	memset(v, 0, sizeof(*v));
	if (json_parse(&r, v, 0) == -1) {
		json_value_clear(v);
		return -1;
	}
	json_ws(&r);
	if (*r.p != '\0') {
		json_value_clear(v);
		return -1;
	}
	return 0;
}

/* Member KEY of object O, or NULL.  Borrowed from O. */
const struct json_value *
json_get(const struct json_value *o, const char *key)
{
	size_t i;

	if (o->type != J_OBJECT)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

/* String member KEY of O ("" if null or missing).  Borrowed. */
const char *
json_get_str(const struct json_value *o, const char *key)
{
	const struct json_value *v = json_get(o, key);

	return v != NULL && v->type == J_STRING ? v->str : "";
}
