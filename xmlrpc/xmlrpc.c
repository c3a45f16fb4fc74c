/*
 * xmlrpc -- XML-RPC values: the tree a request decodes into and a
 * response encodes from, and base64 decoding for <base64> values.
 *
 * The decoder is in decode.c, the encoder in encode.c; xmlrpc.h is the
 * one API of all three, xmlrpc_priv.h what they share beyond it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmlrpc_priv.h"

struct xmlrpc_value *
xmlrpc_value_new(enum xmlrpc_type type)
{
	struct xmlrpc_value *v;

	v = xcalloc(1, sizeof(*v));
	v->type = type;
	return v;
}

/* A fresh NIL value; caller frees. */
struct xmlrpc_value *
xmlrpc_value_nil(void)
{
	return xmlrpc_value_new(XMLRPC_NIL);
}

/* A fresh INT value; caller frees. */
struct xmlrpc_value *
xmlrpc_value_int(int64_t i)
{
	struct xmlrpc_value *v = xmlrpc_value_new(XMLRPC_INT);

	v->i = i;
	return v;
}

/* A fresh BOOL value; caller frees. */
struct xmlrpc_value *
xmlrpc_value_bool(bool b)
{
	struct xmlrpc_value *v = xmlrpc_value_new(XMLRPC_BOOL);

	v->b = b;
	return v;
}

/* A fresh STRING value holding a copy of S; caller frees. */
struct xmlrpc_value *
xmlrpc_value_string(const char *s)
{
	struct xmlrpc_value *v = xmlrpc_value_new(XMLRPC_STRING);

	v->s = xstrdup(s);
	v->len = strlen(s);
	return v;
}

/* A fresh BASE64 value holding a copy of LEN bytes at DATA; caller frees. */
struct xmlrpc_value *
xmlrpc_value_base64(const void *data, size_t len)
{
	struct xmlrpc_value *v = xmlrpc_value_new(XMLRPC_BASE64);

	v->s = xmemdup(data, len);
	v->len = len;
	return v;
}

/* A fresh, empty ARRAY; caller frees. */
struct xmlrpc_value *
xmlrpc_value_array(void)
{
	return xmlrpc_value_new(XMLRPC_ARRAY);
}

/* A fresh, empty STRUCT; caller frees. */
struct xmlrpc_value *
xmlrpc_value_struct(void)
{
	return xmlrpc_value_new(XMLRPC_STRUCT);
}

void
xmlrpc_value_push(struct xmlrpc_value *c, char *name, struct xmlrpc_value *v)
{
	c->items = xrealloc(c->items, (c->nitems + 1) * sizeof(*c->items));
	if (c->type == XMLRPC_STRUCT) {
		c->names =
		    xrealloc(c->names, (c->nitems + 1) * sizeof(*c->names));
		c->names[c->nitems] = name;
	}
	c->items[c->nitems++] = v;
}

/* Appends V to ARRAY; takes ownership of V. */
void
xmlrpc_array_append(struct xmlrpc_value *array, struct xmlrpc_value *v)
{
	xmlrpc_value_push(array, NULL, v);
}

/* Adds member NAME (copied) = V to ST; takes ownership of V. */
void
xmlrpc_struct_set(
    struct xmlrpc_value *st, const char *name, struct xmlrpc_value *v)
{
	xmlrpc_value_push(st, xstrdup(name), v);
}

/* The last member NAME of ST (as Python keeps the last), or NULL. */
const struct xmlrpc_value *
xmlrpc_struct_get(const struct xmlrpc_value *st, const char *name)
{
	size_t i;

	if (st->type != XMLRPC_STRUCT)
		return NULL;
	for (i = st->nitems; i > 0; i--)
		if (strcmp(st->names[i - 1], name) == 0)
			return st->items[i - 1];
	return NULL;
}

/* Frees V and everything in it. */
void
xmlrpc_value_free(struct xmlrpc_value *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nitems; i++) {
		xmlrpc_value_free(v->items[i]);
		if (v->names != NULL)
			free(v->names[i]);
	}
	free(v->items);
	free(v->names);
	free(v->s);
	free(v);
}

/* The XML-RPC element name of T.  Static. */
const char *
xmlrpc_type_name(enum xmlrpc_type t)
{
	switch (t) {
	case XMLRPC_NIL:
		return "nil";
	case XMLRPC_INT:
		return "int";
	case XMLRPC_BOOL:
		return "boolean";
	case XMLRPC_DOUBLE:
		return "double";
	case XMLRPC_STRING:
		return "string";
	case XMLRPC_BASE64:
		return "base64";
	case XMLRPC_DATETIME:
		return "dateTime.iso8601";
	case XMLRPC_ARRAY:
		return "array";
	case XMLRPC_STRUCT:
		return "struct";
	}
	return "unknown";
}

/* ---- base64 ---------------------------------------------------------------
 */

static int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes base64 at S (SLEN bytes) into a fresh NUL-ended buffer of *LEN
 * bytes; caller frees.  Whitespace is skipped, '=' padding may be left
 * out but nothing may follow it.  NULL if S is not base64.
 */
char *
xmlrpc_base64_decode(const char *s, size_t slen, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned int acc = 0, bits = 0;
	size_t i, n = 0, nsym = 0, npad = 0;
	char *out;
	int v;

	out = xmalloc(slen / 4 * 3 + 4);
	for (i = 0; i < slen; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')
			continue;
		if (p[i] == '=') {
			npad++;
			continue;
		}
		if (npad > 0 || (v = base64_value(p[i])) < 0)
			goto bad;
		nsym++;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
			acc &= (1u << bits) - 1;
		}
	}
	if (nsym % 4 == 1 || npad > 2 || (npad > 0 && (nsym + npad) % 4 != 0))
		goto bad;
	out[n] = '\0';
	*len = n;
	return out;
bad:
	free(out);
	return NULL;
}
