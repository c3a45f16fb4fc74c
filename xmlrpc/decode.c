/*
 * decode -- an XML-RPC methodCall decoded with libxml2.
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

#include "buf.h"
#include "util.h"
#include "xmlrpc_priv.h"

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
	struct buf b = {NULL, 0, 0};
	const xmlNode *n;

	for (n = e->children; n != NULL; n = n->next) {
		switch (n->type) {
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (n->content != NULL)
				buf_puts(&b, (const char *)n->content);
			break;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		default:
			free(b.s);
			parse_fail(
			    p, "<%.40s> may hold text only", node_name(e));
			return NULL;
		}
	}
	if (b.s == NULL)
		buf_add(&b, "", 0);
	*len = b.len;
	return b.s;
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
	xmlrpc_value_push(st, s, v);
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
		v = xmlrpc_value_new(XMLRPC_INT);
		if (parse_int(p, type, text, &v->i) == -1)
			goto fail;
	} else if (strcmp(type, "boolean") == 0) {
		v = xmlrpc_value_new(XMLRPC_BOOL);
		s = text_trim(text);
		if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
			parse_fail(
			    p, "<boolean> is neither 0 nor 1: '%.40s'", s);
			goto fail;
		}
		v->b = s[0] == '1';
	} else if (strcmp(type, "double") == 0) {
		v = xmlrpc_value_new(XMLRPC_DOUBLE);
		s = text_trim(text);
		errno = 0;
		v->d = strtod(s, &end);
		if (*s == '\0' || *end != '\0' || !isfinite(v->d)) {
			parse_fail(p, "<double> is not a number: '%.40s'", s);
			goto fail;
		}
	} else if (strcmp(type, "string") == 0 ||
		   strcmp(type, "dateTime.iso8601") == 0) {
		v = xmlrpc_value_new(
		    type[0] == 's' ? XMLRPC_STRING : XMLRPC_DATETIME);
		v->s = text;
		v->len = len;
		return v;
	} else if (strcmp(type, "base64") == 0) {
		if ((raw = xmlrpc_base64_decode(text, len, &len)) == NULL) {
			parse_fail(p, "<base64> is not base64");
			goto fail;
		}
		v = xmlrpc_value_new(XMLRPC_BASE64);
		v->s = raw;
		v->len = len;
	} else if (strcmp(type, "nil") == 0) {
		if (*text_trim(text) != '\0') {
			parse_fail(p, "<nil/> is not empty");
			goto fail;
		}
		v = xmlrpc_value_new(XMLRPC_NIL);
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
		v = xmlrpc_value_new(XMLRPC_STRING);
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
