/*
 * encode -- XML-RPC methodResponse and fault documents written.
 *
 * Encoding writes the response by hand into a growing buffer: the output
 * is small and regular, and a string that XML cannot carry (control
 * characters, invalid UTF-8) gets '?' for each bad byte instead of
 * producing a document the client cannot parse.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"
#include "xmlrpc.h"

/*
 * The length of the valid UTF-8 sequence at P (at most LEN bytes) of a
 * character XML allows, or 0.
 */
static size_t
utf8_char_len(const unsigned char *p, size_t len)
{
	uint32_t cp;
	size_t n;

	if ((n = utf8_decode(p, len, &cp)) == 0 || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

/* Appends LEN bytes at S as XML character data. */
static void
buf_xml(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	char c;

	while (i < len) {
		if (p[i] >= 0x80) {
			if ((n = utf8_char_len(p + i, len - i)) == 0) {
				buf_add(b, "?", 1);
				i++;
			} else {
				buf_add(b, s + i, n);
				i += n;
			}
			continue;
		}
		c = (char)p[i++];
		if (c == '&')
			buf_puts(b, "&amp;");
		else if (c == '<')
			buf_puts(b, "&lt;");
		else if (c == '>')
			buf_puts(b, "&gt;");
		else if (c == '\r')
			/* A literal CR would reach the client as LF. */
			buf_puts(b, "&#13;");
		else if ((unsigned char)c < 0x20 && c != '\t' && c != '\n')
			buf_add(b, "?", 1);
		else
			buf_add(b, &c, 1);
	}
}

static void
encode_value(struct buf *b, const struct xmlrpc_value *v)
{
	char *enc;
	size_t i;

	buf_puts(b, "<value>");
	switch (v->type) {
	case XMLRPC_NIL:
		buf_puts(b, "<nil/>");
		break;
	case XMLRPC_INT:
		/* Python's client reads both; <int> is what everyone reads. */
		if (v->i >= INT32_MIN && v->i <= INT32_MAX)
			buf_printf(b, "<int>%lld</int>", (long long)v->i);
		else
			buf_printf(b, "<i8>%lld</i8>", (long long)v->i);
		break;
	case XMLRPC_BOOL:
		buf_puts(
		    b, v->b ? "<boolean>1</boolean>" : "<boolean>0</boolean>");
		break;
	case XMLRPC_DOUBLE:
		buf_printf(
		    b, "<double>%.17g</double>", isfinite(v->d) ? v->d : 0.0);
		break;
	case XMLRPC_STRING:
		buf_puts(b, "<string>");
		buf_xml(b, v->s, v->len);
		buf_puts(b, "</string>");
		break;
	case XMLRPC_BASE64:
		enc = base64_encode(v->s, v->len);
		buf_puts(b, "<base64>");
		buf_puts(b, enc);
		buf_puts(b, "</base64>");
		free(enc);
		break;
	case XMLRPC_DATETIME:
		buf_puts(b, "<dateTime.iso8601>");
		buf_xml(b, v->s, v->len);
		buf_puts(b, "</dateTime.iso8601>");
		break;
	case XMLRPC_ARRAY:
		buf_puts(b, "<array><data>\n");
		for (i = 0; i < v->nitems; i++) {
			encode_value(b, v->items[i]);
			buf_puts(b, "\n");
		}
		buf_puts(b, "</data></array>");
		break;
	case XMLRPC_STRUCT:
		buf_puts(b, "<struct>\n");
		for (i = 0; i < v->nitems; i++) {
			buf_puts(b, "<member>\n<name>");
			buf_xml(b, v->names[i], strlen(v->names[i]));
			buf_puts(b, "</name>\n");
			encode_value(b, v->items[i]);
			buf_puts(b, "\n</member>\n");
		}
		buf_puts(b, "</struct>");
		break;
	}
	buf_puts(b, "</value>");
}

/* A methodResponse with V as its one parameter; caller frees. */
char *
xmlrpc_response_encode(const struct xmlrpc_value *v, size_t *len)
{
	struct buf b = {NULL, 0, 0};

	buf_puts(&b, "<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n"
		     "<param>\n");
	encode_value(&b, v);
	buf_puts(&b, "\n</param>\n</params>\n</methodResponse>\n");
	*len = b.len;
	return b.s;
}

/* A methodResponse with a fault of CODE and MESSAGE; caller frees. */
char *
xmlrpc_fault_encode(int code, const char *message, size_t *len)
{
	struct buf b = {NULL, 0, 0};

	buf_puts(&b, "<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n"
		     "<value><struct>\n<member>\n<name>faultCode</name>\n");
	buf_printf(&b, "<value><int>%d</int></value>\n", code);
	buf_puts(&b, "</member>\n<member>\n<name>faultString</name>\n"
		     "<value><string>");
	buf_xml(&b, message, strlen(message));
	buf_puts(&b, "</string></value>\n</member>\n</struct></value>\n"
		     "</fault>\n</methodResponse>\n");
	*len = b.len;
	return b.s;
}
