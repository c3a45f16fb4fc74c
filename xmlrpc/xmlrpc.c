/*
 * xmlrpc -- XML-RPC method calls decoded, method responses encoded.
 *
 * Decoding parses the body into a libxml2 tree and walks it strictly:
 * an element the XML-RPC specification does not put there, or text where
 * only elements belong, makes the whole request an error, because a
 * lenient reader of outside input is where surprises come from.
 *
 * Safety against hostile input: the body's size is bounded; libxml2 never
 * loads anything from the network or the file system (XML_PARSE_NONET,
 * no DTD loading, no XInclude); entities are never substituted (no
 * XML_PARSE_NOENT), and a document type declaration stops the parser the
 * moment it is seen, so no entity can be declared at all; nesting of
 * arrays and structs is bounded so the recursive walk cannot exhaust the
 * stack.  Errors are collected in the parser context, never printed.
 *
 * Encoding writes the response by hand into a growing buffer: the output
 * is small and regular, and a string that XML cannot carry (control
 * characters, invalid UTF-8) gets '?' for each bad byte instead of
 * producing a document the client cannot parse.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "util.h"
#include "xmlrpc.h"

/* ---- a growing output buffer ------------------------------------------- */

struct xbuf {
	char *p;
	size_t len;
	size_t cap;
};

static void
xbuf_add(struct xbuf *b, const char *s, size_t n)
{
	size_t cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
xbuf_puts(struct xbuf *b, const char *s)
{
	xbuf_add(b, s, strlen(s));
}

static void xbuf_printf(struct xbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
xbuf_printf(struct xbuf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		xbuf_add(b, tmp,
		    (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * The length of the valid UTF-8 sequence at P (at most LEN bytes) of a
 * character XML allows, or 0.  P[0] is not ASCII.
 */
static size_t
utf8_char_len(const unsigned char *p, size_t len)
{
	uint32_t cp;
	size_t n, k;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

/* Appends LEN bytes at S as XML character data. */
static void
xbuf_escape(struct xbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	char c;

	while (i < len) {
		if (p[i] >= 0x80) {
			if ((n = utf8_char_len(p + i, len - i)) == 0) {
				xbuf_add(b, "?", 1);
				i++;
			} else {
				xbuf_add(b, s + i, n);
				i += n;
			}
			continue;
		}
		c = (char)p[i++];
		if (c == '&')
			xbuf_puts(b, "&amp;");
		else if (c == '<')
			xbuf_puts(b, "&lt;");
		else if (c == '>')
			xbuf_puts(b, "&gt;");
		else if (c == '\r')
			/* A literal CR would reach the client as LF. */
			xbuf_puts(b, "&#13;");
		else if ((unsigned char)c < 0x20 && c != '\t' && c != '\n')
			xbuf_add(b, "?", 1);
		else
			xbuf_add(b, &c, 1);
	}
}

/* ---- values ---------------------------------------------------------------
 */

static struct xmlrpc_value *
value_new(enum xmlrpc_type type)
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
	return value_new(XMLRPC_NIL);
}

/* A fresh INT value; caller frees. */
struct xmlrpc_value *
xmlrpc_value_int(int64_t i)
{
	struct xmlrpc_value *v = value_new(XMLRPC_INT);

	v->i = i;
	return v;
}

/* A fresh BOOL value; caller frees. */
struct xmlrpc_value *
xmlrpc_value_bool(bool b)
{
	struct xmlrpc_value *v = value_new(XMLRPC_BOOL);

	v->b = b;
	return v;
}

/* A fresh STRING value holding a copy of S; caller frees. */
struct xmlrpc_value *
xmlrpc_value_string(const char *s)
{
	struct xmlrpc_value *v = value_new(XMLRPC_STRING);

	v->s = xstrdup(s);
	v->len = strlen(s);
	return v;
}

/* A fresh BASE64 value holding a copy of LEN bytes at DATA; caller frees. */
struct xmlrpc_value *
xmlrpc_value_base64(const void *data, size_t len)
{
	struct xmlrpc_value *v = value_new(XMLRPC_BASE64);

	v->s = xmalloc(len + 1);
	if (len > 0)
		memcpy(v->s, data, len);
	v->s[len] = '\0';
	v->len = len;
	return v;
}

/* A fresh, empty ARRAY; caller frees. */
struct xmlrpc_value *
xmlrpc_value_array(void)
{
	return value_new(XMLRPC_ARRAY);
}

/* A fresh, empty STRUCT; caller frees. */
struct xmlrpc_value *
xmlrpc_value_struct(void)
{
	return value_new(XMLRPC_STRUCT);
}

static void
value_push(struct xmlrpc_value *c, char *name, struct xmlrpc_value *v)
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
	value_push(array, NULL, v);
}

/* Adds member NAME (copied) = V to ST; takes ownership of V. */
void
xmlrpc_struct_set(
    struct xmlrpc_value *st, const char *name, struct xmlrpc_value *v)
{
	value_push(st, xstrdup(name), v);
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

/* ---- decoding -------------------------------------------------------------
 */

struct parse {
	char *err;
	size_t errlen;
};

static int parse_fail(struct parse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Records why decoding failed; returns -1. */
static int
parse_fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
node_name(const xmlNode *n)
{
	return n->name != NULL ? (const char *)n->name : "?";
}

static bool
node_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->name != NULL &&
	       strcmp((const char *)n->name, name) == 0;
}

/* Whether N is character data made of XML whitespace only. */
static bool
node_blank(const xmlNode *n)
{
	const char *s = (const char *)n->content;

	if (s == NULL)
		return true;
	return s[strspn(s, " \t\r\n")] == '\0';
}

/*
 * The first element among N and its following siblings, into *OUT (NULL
 * if none).  Comments, processing instructions and whitespace are
 * skipped; any other text or node is an error.
 */
static int
node_element(struct parse *p, const xmlNode *n, const xmlNode **out)
{
	*out = NULL;
	for (; n != NULL; n = n->next) {
		switch (n->type) {
		case XML_ELEMENT_NODE:
			*out = n;
			return 0;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (!node_blank(n))
				return parse_fail(p,
				    "unexpected text in <%.40s>",
				    n->parent != NULL ? node_name(n->parent)
						      : "?");
			break;
		default:
			return parse_fail(
			    p, "unexpected XML node (type %d)", (int)n->type);
		}
	}
	return 0;
}

/* The element after N among its siblings, as node_element(). */
static int
node_next(struct parse *p, const xmlNode *n, const xmlNode **out)
{
	return node_element(p, n->next, out);
}

/*
 * The character data of element E, which must hold nothing else, as a
 * fresh string of *LEN bytes; caller frees.  NULL on error.
 */
static char *
node_text(struct parse *p, const xmlNode *e, size_t *len)
{
	struct xbuf b = {NULL, 0, 0};
	const xmlNode *n;

	for (n = e->children; n != NULL; n = n->next) {
		switch (n->type) {
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (n->content != NULL)
				xbuf_puts(&b, (const char *)n->content);
			break;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		default:
			free(b.p);
			parse_fail(
			    p, "<%.40s> may hold text only", node_name(e));
			return NULL;
		}
	}
	if (b.p == NULL)
		xbuf_add(&b, "", 0);
	*len = b.len;
	return b.p;
}

/* S without leading and trailing XML whitespace, in place. */
static char *
text_trim(char *s)
{
	size_t n;

	s += strspn(s, " \t\r\n");
	n = strlen(s);
	while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
		s[--n] = '\0';
	return s;
}

static int
parse_int(struct parse *p, const char *type, char *text, int64_t *out)
{
	char *s = text_trim(text), *end;
	long long v;

	if (*s == '\0')
		return parse_fail(p, "empty <%s>", type);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' ||
	    (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9')))
		return parse_fail(
		    p, "<%s> is not an integer: '%.40s'", type, s);
	if (errno == ERANGE)
		return parse_fail(p, "<%s> out of range: '%.40s'", type, s);
	*out = v;
	return 0;
}

static struct xmlrpc_value *parse_value(struct parse *, const xmlNode *, int);

/* <array><data><value/>...</data></array> */
static struct xmlrpc_value *
parse_array(struct parse *p, const xmlNode *a, int depth)
{
	struct xmlrpc_value *arr, *v;
	const xmlNode *data, *n, *extra;

	if (node_element(p, a->children, &data) == -1)
		return NULL;
	if (data == NULL || !node_is(data, "data")) {
		parse_fail(p, "<array> needs a <data>");
		return NULL;
	}
	if (node_next(p, data, &extra) == -1)
		return NULL;
	if (extra != NULL) {
		parse_fail(
		    p, "unexpected <%.40s> in <array>", node_name(extra));
		return NULL;
	}
	arr = xmlrpc_value_array();
	if (node_element(p, data->children, &n) == -1)
		goto fail;
	for (; n != NULL;) {
		if (!node_is(n, "value")) {
			parse_fail(
			    p, "unexpected <%.40s> in <data>", node_name(n));
			goto fail;
		}
		if ((v = parse_value(p, n, depth + 1)) == NULL)
			goto fail;
		xmlrpc_array_append(arr, v);
		if (node_next(p, n, &n) == -1)
			goto fail;
	}
	return arr;
fail:
	xmlrpc_value_free(arr);
	return NULL;
}

/* <member><name>N</name><value/></member>, into ST. */
static int
parse_member(
    struct parse *p, const xmlNode *m, struct xmlrpc_value *st, int depth)
{
	const xmlNode *n, *name = NULL, *value = NULL;
	struct xmlrpc_value *v;
	char *s;
	size_t len;

	if (node_element(p, m->children, &n) == -1)
		return -1;
	for (; n != NULL;) {
		if (node_is(n, "name") && name == NULL)
			name = n;
		else if (node_is(n, "value") && value == NULL)
			value = n;
		else
			return parse_fail(
			    p, "unexpected <%.40s> in <member>", node_name(n));
		if (node_next(p, n, &n) == -1)
			return -1;
	}
	if (name == NULL || value == NULL)
		return parse_fail(p, "<member> needs a <name> and a <value>");
	if ((s = node_text(p, name, &len)) == NULL)
		return -1;
	if ((v = parse_value(p, value, depth + 1)) == NULL) {
		free(s);
		return -1;
	}
	value_push(st, s, v);
	return 0;
}

/* <struct><member/>...</struct> */
static struct xmlrpc_value *
parse_struct(struct parse *p, const xmlNode *e, int depth)
{
	struct xmlrpc_value *st;
	const xmlNode *n;

	st = xmlrpc_value_struct();
	if (node_element(p, e->children, &n) == -1)
		goto fail;
	for (; n != NULL;) {
		if (!node_is(n, "member")) {
			parse_fail(
			    p, "unexpected <%.40s> in <struct>", node_name(n));
			goto fail;
		}
		if (parse_member(p, n, st, depth) == -1)
			goto fail;
		if (node_next(p, n, &n) == -1)
			goto fail;
	}
	return st;
fail:
	xmlrpc_value_free(st);
	return NULL;
}

/* A value of scalar type T from element E's text. */
static struct xmlrpc_value *
parse_scalar(struct parse *p, const xmlNode *e)
{
	struct xmlrpc_value *v = NULL;
	const char *type = node_name(e);
	char *text, *s, *end, *raw;
	size_t len;

	if ((text = node_text(p, e, &len)) == NULL)
		return NULL;
	if (strcmp(type, "int") == 0 || strcmp(type, "i4") == 0 ||
	    strcmp(type, "i8") == 0) {
		v = value_new(XMLRPC_INT);
		if (parse_int(p, type, text, &v->i) == -1)
			goto fail;
	} else if (strcmp(type, "boolean") == 0) {
		v = value_new(XMLRPC_BOOL);
		s = text_trim(text);
		if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
			parse_fail(
			    p, "<boolean> is neither 0 nor 1: '%.40s'", s);
			goto fail;
		}
		v->b = s[0] == '1';
	} else if (strcmp(type, "double") == 0) {
		v = value_new(XMLRPC_DOUBLE);
		s = text_trim(text);
		errno = 0;
		v->d = strtod(s, &end);
		if (*s == '\0' || *end != '\0' || !isfinite(v->d)) {
			parse_fail(p, "<double> is not a number: '%.40s'", s);
			goto fail;
		}
	} else if (strcmp(type, "string") == 0 ||
		   strcmp(type, "dateTime.iso8601") == 0) {
		v = value_new(type[0] == 's' ? XMLRPC_STRING : XMLRPC_DATETIME);
		v->s = text;
		v->len = len;
		return v;
	} else if (strcmp(type, "base64") == 0) {
		if ((raw = xmlrpc_base64_decode(text, len, &len)) == NULL) {
			parse_fail(p, "<base64> is not base64");
			goto fail;
		}
		v = value_new(XMLRPC_BASE64);
		v->s = raw;
		v->len = len;
	} else if (strcmp(type, "nil") == 0) {
		if (*text_trim(text) != '\0') {
			parse_fail(p, "<nil/> is not empty");
			goto fail;
		}
		v = value_new(XMLRPC_NIL);
	} else {
		parse_fail(p, "unknown type <%.40s>", type);
		goto fail;
	}
	free(text);
	return v;
fail:
	free(text);
	xmlrpc_value_free(v);
	return NULL;
}

/*
 * <value>: one type element, or text alone (a string).  DEPTH counts
 * the arrays and structs around it.
 */
static struct xmlrpc_value *
parse_value(struct parse *p, const xmlNode *vn, int depth)
{
	struct xmlrpc_value *v;
	const xmlNode *n, *t = NULL;
	bool text = false;
	size_t len;

	if (depth > XMLRPC_MAX_DEPTH) {
		parse_fail(p, "values nested deeper than %d", XMLRPC_MAX_DEPTH);
		return NULL;
	}
	for (n = vn->children; n != NULL; n = n->next) {
		switch (n->type) {
		case XML_ELEMENT_NODE:
			if (t != NULL) {
				parse_fail(p, "<value> holds more than one "
					      "element");
				return NULL;
			}
			t = n;
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (!node_blank(n))
				text = true;
			break;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		default:
			parse_fail(p,
			    "unexpected XML node (type %d) in <value>",
			    (int)n->type);
			return NULL;
		}
	}
	if (t == NULL) {
		/* No type element: the text, blanks and all, is a string. */
		v = value_new(XMLRPC_STRING);
		if ((v->s = node_text(p, vn, &len)) == NULL) {
			xmlrpc_value_free(v);
			return NULL;
		}
		v->len = len;
		return v;
	}
	if (text) {
		parse_fail(p, "text beside <%.40s> in <value>", node_name(t));
		return NULL;
	}
	if (node_is(t, "array"))
		return parse_array(p, t, depth);
	if (node_is(t, "struct"))
		return parse_struct(p, t, depth);
	return parse_scalar(p, t);
}

/* Letters, digits and "_.:/", as XML-RPC allows in method names. */
static bool
method_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= XMLRPC_MAX_METHOD_LEN &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/") == n;
}

/* <methodCall><methodName/>[<params><param><value/></param>...</params>] */
static int
parse_call(struct parse *p, const xmlNode *root, struct xmlrpc_request *req)
{
	const xmlNode *n, *params, *param, *v, *extra;
	struct xmlrpc_value *value;
	char *text, *name;
	size_t len;

	if (root == NULL || !node_is(root, "methodCall"))
		return parse_fail(p, "the document is not a <methodCall>");
	if (node_element(p, root->children, &n) == -1)
		return -1;
	if (n == NULL || !node_is(n, "methodName"))
		return parse_fail(p, "<methodCall> needs a <methodName> first");
	if ((text = node_text(p, n, &len)) == NULL)
		return -1;
	name = text_trim(text);
	if (!method_name_valid(name)) {
		free(text);
		return parse_fail(p, "invalid method name");
	}
	req->method = xstrdup(name);
	free(text);

	if (node_next(p, n, &params) == -1)
		return -1;
	if (params == NULL)
		return 0;
	if (!node_is(params, "params"))
		return parse_fail(
		    p, "unexpected <%.40s> in <methodCall>", node_name(params));
	if (node_next(p, params, &extra) == -1)
		return -1;
	if (extra != NULL)
		return parse_fail(
		    p, "unexpected <%.40s> after <params>", node_name(extra));
	if (node_element(p, params->children, &param) == -1)
		return -1;
	for (; param != NULL;) {
		if (!node_is(param, "param"))
			return parse_fail(p, "unexpected <%.40s> in <params>",
			    node_name(param));
		if (node_element(p, param->children, &v) == -1)
			return -1;
		if (v == NULL || !node_is(v, "value"))
			return parse_fail(p, "<param> needs a <value>");
		if (node_next(p, v, &extra) == -1)
			return -1;
		if (extra != NULL)
			return parse_fail(p, "unexpected <%.40s> in <param>",
			    node_name(extra));
		if ((value = parse_value(p, v, 0)) == NULL)
			return -1;
		req->params = xrealloc(
		    req->params, (req->nparams + 1) * sizeof(*req->params));
		req->params[req->nparams++] = value;
		if (node_next(p, param, &param) == -1)
			return -1;
	}
	return 0;
}

/*
 * SAX callback for <!DOCTYPE ...>: XML-RPC has no use for one, and
 * without one no entity can be declared, so stop right here.
 */
static void
parse_reject_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
    const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;

	*(bool *)ctxt->_private = true;
	xmlStopParser(ctxt);
}

/*
 * Decodes the methodCall in the LEN bytes at BODY.  0 with *OUT set
 * (caller frees with xmlrpc_request_free), or -1 with a reason in ERR.
 */
int
xmlrpc_request_parse(const void *body, size_t len, struct xmlrpc_request **out,
    char *err, size_t errlen)
{
	struct parse p = {err, errlen};
	struct xmlrpc_request *req;
	xmlParserCtxtPtr ctxt;
	const xmlError *xe;
	xmlDocPtr doc;
	bool dtd = false;
	char msg[256];
	size_t n;
	int rc;

	*out = NULL;
	if (len == 0)
		return parse_fail(&p, "empty request body");
	if (len > XMLRPC_MAX_BODY_BYTES)
		return parse_fail(&p, "request body larger than %d bytes",
		    XMLRPC_MAX_BODY_BYTES);
	if ((ctxt = xmlNewParserCtxt()) == NULL)
		return parse_fail(&p, "out of memory");
	ctxt->_private = &dtd;
	ctxt->sax->internalSubset = parse_reject_dtd;
	doc = xmlCtxtReadMemory(ctxt, body, (int)len, "request", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (dtd || (doc != NULL &&
		       (doc->intSubset != NULL || doc->extSubset != NULL))) {
		xmlFreeDoc(doc);
		xmlFreeParserCtxt(ctxt);
		return parse_fail(&p, "a document type declaration is not "
				      "allowed");
	}
	if (doc == NULL || !ctxt->wellFormed) {
		xe = xmlCtxtGetLastError(ctxt);
		snprintf(msg, sizeof(msg), "%s",
		    xe != NULL && xe->message != NULL ? xe->message
						      : "parse error");
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		rc = parse_fail(&p, "not well-formed XML: line %d: %s",
		    xe != NULL ? xe->line : 0, msg);
		xmlFreeDoc(doc);
		xmlFreeParserCtxt(ctxt);
		return rc;
	}
	req = xcalloc(1, sizeof(*req));
	rc = parse_call(&p, xmlDocGetRootElement(doc), req);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	if (rc == -1) {
		xmlrpc_request_free(req);
		return -1;
	}
	*out = req;
	return 0;
}

/* Frees REQ and its values. */
void
xmlrpc_request_free(struct xmlrpc_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < req->nparams; i++)
		xmlrpc_value_free(req->params[i]);
	free(req->params);
	free(req->method);
	free(req);
}

/*
 * libxml2 sets up its global state (and its per-thread error state) on
 * first use; doing that once, before threads start, is what its
 * documentation asks of threaded programs.
 */
void
xmlrpc_init(void)
{
	LIBXML_TEST_VERSION;
	xmlInitParser();
}

void
xmlrpc_cleanup(void)
{
	xmlCleanupParser();
}

/* ---- encoding -------------------------------------------------------------
 */

static void
encode_value(struct xbuf *b, const struct xmlrpc_value *v)
{
	char *enc;
	size_t i;

	xbuf_puts(b, "<value>");
	switch (v->type) {
	case XMLRPC_NIL:
		xbuf_puts(b, "<nil/>");
		break;
	case XMLRPC_INT:
		/* Python's client reads both; <int> is what everyone reads. */
		if (v->i >= INT32_MIN && v->i <= INT32_MAX)
			xbuf_printf(b, "<int>%lld</int>", (long long)v->i);
		else
			xbuf_printf(b, "<i8>%lld</i8>", (long long)v->i);
		break;
	case XMLRPC_BOOL:
		xbuf_puts(
		    b, v->b ? "<boolean>1</boolean>" : "<boolean>0</boolean>");
		break;
	case XMLRPC_DOUBLE:
		xbuf_printf(
		    b, "<double>%.17g</double>", isfinite(v->d) ? v->d : 0.0);
		break;
	case XMLRPC_STRING:
		xbuf_puts(b, "<string>");
		xbuf_escape(b, v->s, v->len);
		xbuf_puts(b, "</string>");
		break;
	case XMLRPC_BASE64:
		enc = base64_encode(v->s, v->len);
		xbuf_puts(b, "<base64>");
		xbuf_puts(b, enc);
		xbuf_puts(b, "</base64>");
		free(enc);
		break;
	case XMLRPC_DATETIME:
		xbuf_puts(b, "<dateTime.iso8601>");
		xbuf_escape(b, v->s, v->len);
		xbuf_puts(b, "</dateTime.iso8601>");
		break;
	case XMLRPC_ARRAY:
		xbuf_puts(b, "<array><data>\n");
		for (i = 0; i < v->nitems; i++) {
			encode_value(b, v->items[i]);
			xbuf_puts(b, "\n");
		}
		xbuf_puts(b, "</data></array>");
		break;
	case XMLRPC_STRUCT:
		xbuf_puts(b, "<struct>\n");
		for (i = 0; i < v->nitems; i++) {
			xbuf_puts(b, "<member>\n<name>");
			xbuf_escape(b, v->names[i], strlen(v->names[i]));
			xbuf_puts(b, "</name>\n");
			encode_value(b, v->items[i]);
			xbuf_puts(b, "\n</member>\n");
		}
		xbuf_puts(b, "</struct>");
		break;
	}
	xbuf_puts(b, "</value>");
}

/* A methodResponse with V as its one parameter; caller frees. */
char *
xmlrpc_response_encode(const struct xmlrpc_value *v, size_t *len)
{
	struct xbuf b = {NULL, 0, 0};

	xbuf_puts(&b, "<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n"
		      "<param>\n");
	encode_value(&b, v);
	xbuf_puts(&b, "\n</param>\n</params>\n</methodResponse>\n");
	*len = b.len;
	return b.p;
}

/* A methodResponse with a fault of CODE and MESSAGE; caller frees. */
char *
xmlrpc_fault_encode(int code, const char *message, size_t *len)
{
	struct xbuf b = {NULL, 0, 0};

	xbuf_puts(&b, "<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n"
		      "<value><struct>\n<member>\n<name>faultCode</name>\n");
	xbuf_printf(&b, "<value><int>%d</int></value>\n", code);
	xbuf_puts(&b, "</member>\n<member>\n<name>faultString</name>\n"
		      "<value><string>");
	xbuf_escape(&b, message, strlen(message));
	xbuf_puts(&b, "</string></value>\n</member>\n</struct></value>\n"
		      "</fault>\n</methodResponse>\n");
	*len = b.len;
	return b.p;
}
