/*
 * Unit tests of xmlrpc: decoding the method calls resalloc's clients send
 * (byte for byte as Python's xmlrpc.client writes them), every XML-RPC
 * type, the refusals (DTDs and entities, bad values, nesting, size),
 * encoding of responses and faults with escaping, a decode of what the
 * encoder wrote, and a mutation run over garbage that must never crash.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmlrpc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What Python's xmlrpc.client sends for takeTicket(['tag'], None). */
static const char take_py[] =
    "<?xml version='1.0'?>\n"
    "<methodCall>\n"
    "<methodName>takeTicket</methodName>\n"
    "<params>\n"
    "<param>\n"
    "<value><array><data>\n"
    "<value><string>tag</string></value>\n"
    "</data></array></value>\n"
    "</param>\n"
    "<param>\n"
    "<value><nil/></value>\n"
    "</param>\n"
    "</params>\n"
    "</methodCall>\n";

/* ... and for collectTicket('1'), as resalloc's CLI calls it. */
static const char collect_py[] =
    "<?xml version='1.0'?>\n"
    "<methodCall>\n"
    "<methodName>collectTicket</methodName>\n"
    "<params>\n"
    "<param>\n"
    "<value><string>1</string></value>\n"
    "</param>\n"
    "</params>\n"
    "</methodCall>\n";

static struct xmlrpc_request *
parse_ok(const char *doc)
{
	struct xmlrpc_request *req = NULL;
	char err[256] = "";

	ck_assert_msg(xmlrpc_request_parse(doc, strlen(doc), &req, err,
			  sizeof(err)) == 0,
	    "refused: %s\n%s", err, doc);
	ck_assert_ptr_nonnull(req);
	return req;
}

/* Asserts that DOC is refused with a reason containing WHY. */
static void
parse_bad(const char *doc, size_t len, const char *why)
{
	struct xmlrpc_request *req = (void *)1;
	char err[256] = "";

	ck_assert_msg(xmlrpc_request_parse(doc, len, &req, err, sizeof(err)) ==
		-1,
	    "accepted: %s", doc);
	ck_assert_ptr_null(req);
	ck_assert_msg(strstr(err, why) != NULL, "reason '%s' lacks '%s'", err,
	    why);
}

/* A methodCall of METHOD with one parameter <value>VALUE</value>. */
static char *
call_with(const char *value)
{
	return xasprintf("<?xml version=\"1.0\"?><methodCall><methodName>m"
			 "</methodName><params><param><value>%s</value>"
			 "</param></params></methodCall>",
	    value);
}

/* Decodes a one-parameter call of VALUE; caller frees the request. */
static struct xmlrpc_request *
value_ok(const char *value)
{
	struct xmlrpc_request *req;
	char *doc = call_with(value);

	req = parse_ok(doc);
	free(doc);
	ck_assert_uint_eq(req->nparams, 1);
	return req;
}

static void
value_bad(const char *value, const char *why)
{
	char *doc = call_with(value);

	parse_bad(doc, strlen(doc), why);
	free(doc);
}

START_TEST(test_python_take_ticket)
{
	struct xmlrpc_request *req = parse_ok(take_py);
	const struct xmlrpc_value *tags;

	ck_assert_str_eq(req->method, "takeTicket");
	ck_assert_uint_eq(req->nparams, 2);
	tags = req->params[0];
	ck_assert_int_eq(tags->type, XMLRPC_ARRAY);
	ck_assert_uint_eq(tags->nitems, 1);
	ck_assert_int_eq(tags->items[0]->type, XMLRPC_STRING);
	ck_assert_str_eq(tags->items[0]->s, "tag");
	ck_assert_uint_eq(tags->items[0]->len, 3);
	ck_assert_int_eq(req->params[1]->type, XMLRPC_NIL);
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_python_collect_string_id)
{
	struct xmlrpc_request *req = parse_ok(collect_py);

	ck_assert_str_eq(req->method, "collectTicket");
	ck_assert_uint_eq(req->nparams, 1);
	ck_assert_int_eq(req->params[0]->type, XMLRPC_STRING);
	ck_assert_str_eq(req->params[0]->s, "1");
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_no_params)
{
	struct xmlrpc_request *req;

	req = parse_ok("<methodCall><methodName> system.listMethods "
		       "</methodName></methodCall>");
	ck_assert_str_eq(req->method, "system.listMethods");
	ck_assert_uint_eq(req->nparams, 0);
	xmlrpc_request_free(req);

	req = parse_ok("<methodCall><methodName>x</methodName><params/>"
		       "<!-- a comment --></methodCall>");
	ck_assert_uint_eq(req->nparams, 0);
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_scalars)
{
	struct xmlrpc_request *req;

	req = value_ok("<int>42</int>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_INT);
	ck_assert_int_eq(req->params[0]->i, 42);
	xmlrpc_request_free(req);

	req = value_ok("<i4> -7 </i4>");
	ck_assert_int_eq(req->params[0]->i, -7);
	xmlrpc_request_free(req);

	req = value_ok("<i8>9007199254740993</i8>");
	ck_assert_int_eq(req->params[0]->i, INT64_C(9007199254740993));
	xmlrpc_request_free(req);

	req = value_ok("<boolean>1</boolean>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_BOOL);
	ck_assert(req->params[0]->b);
	xmlrpc_request_free(req);

	req = value_ok("<double>-1.5</double>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_DOUBLE);
	ck_assert(req->params[0]->d == -1.5);
	xmlrpc_request_free(req);

	req = value_ok("<base64>aGVs\nbG8A</base64>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_BASE64);
	ck_assert_uint_eq(req->params[0]->len, 6);
	ck_assert(memcmp(req->params[0]->s, "hello\0", 6) == 0);
	xmlrpc_request_free(req);

	req = value_ok("<dateTime.iso8601>20260101T00:00:00"
		       "</dateTime.iso8601>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_DATETIME);
	ck_assert_str_eq(req->params[0]->s, "20260101T00:00:00");
	xmlrpc_request_free(req);

	req = value_ok("<nil/>");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_NIL);
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_strings)
{
	struct xmlrpc_request *req;

	/* No type element: the text, blanks included, is a string. */
	req = value_ok("  a b  ");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_STRING);
	ck_assert_str_eq(req->params[0]->s, "  a b  ");
	xmlrpc_request_free(req);

	req = value_ok("");
	ck_assert_int_eq(req->params[0]->type, XMLRPC_STRING);
	ck_assert_str_eq(req->params[0]->s, "");
	xmlrpc_request_free(req);

	req = value_ok("<string/>");
	ck_assert_str_eq(req->params[0]->s, "");
	xmlrpc_request_free(req);

	req = value_ok("<string>&lt;a&amp;b&gt; &#233;&#x41;"
		       "<![CDATA[<x>]]></string>");
	ck_assert_str_eq(req->params[0]->s, "<a&b> \xc3\xa9"
					    "A<x>");
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_struct_and_nesting)
{
	struct xmlrpc_request *req;
	const struct xmlrpc_value *st, *v;

	req = value_ok("<struct>"
		       "<member><name>a</name><value><int>1</int></value>"
		       "</member>"
		       "<member><value><array><data><value>x</value>"
		       "<value><struct/></value></data></array></value>"
		       "<name>b</name></member>"
		       "<member><name>a</name><value><int>2</int></value>"
		       "</member>"
		       "</struct>");
	st = req->params[0];
	ck_assert_int_eq(st->type, XMLRPC_STRUCT);
	ck_assert_uint_eq(st->nitems, 3);
	/* A repeated member: the last one counts, as in Python. */
	v = xmlrpc_struct_get(st, "a");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(v->i, 2);
	v = xmlrpc_struct_get(st, "b");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(v->type, XMLRPC_ARRAY);
	ck_assert_uint_eq(v->nitems, 2);
	ck_assert_str_eq(v->items[0]->s, "x");
	ck_assert_int_eq(v->items[1]->type, XMLRPC_STRUCT);
	ck_assert_ptr_null(xmlrpc_struct_get(st, "c"));
	xmlrpc_request_free(req);
}
END_TEST

START_TEST(test_depth_limit)
{
	char *open = NULL, *close = NULL, *value, *doc;
	size_t depth, i;
	int ok;

	for (depth = XMLRPC_MAX_DEPTH; depth <= XMLRPC_MAX_DEPTH + 1;
	     depth++) {
		open = xstrdup("");
		close = xstrdup("");
		for (i = 0; i < depth; i++) {
			value = xasprintf("%s<array><data><value>", open);
			free(open);
			open = value;
			value = xasprintf("</value></data></array>%s", close);
			free(close);
			close = value;
		}
		value = xasprintf("%s<int>1</int>%s", open, close);
		doc = call_with(value);
		if (depth <= XMLRPC_MAX_DEPTH) {
			xmlrpc_request_free(parse_ok(doc));
			ok = 1;
		} else {
			parse_bad(doc, strlen(doc), "nested deeper");
			ok = 0;
		}
		ck_assert_int_eq(ok, depth <= XMLRPC_MAX_DEPTH);
		free(doc);
		free(value);
		free(open);
		free(close);
	}
}
END_TEST

START_TEST(test_refusals)
{
	static const struct {
		const char *doc;
		const char *why;
	} bad[] = {
		{ "not xml at all", "not well-formed" },
		{ "<methodCall><methodName>x</methodName>", "not well-formed" },
		{ "<methodResponse/>", "not a <methodCall>" },
		{ "<methodCall/>", "needs a <methodName>" },
		{ "<methodCall><params/><methodName>x</methodName>"
		  "</methodCall>",
		    "needs a <methodName>" },
		{ "<methodCall><methodName>a b</methodName></methodCall>",
		    "invalid method name" },
		{ "<methodCall><methodName></methodName></methodCall>",
		    "invalid method name" },
		{ "<methodCall><methodName>x<b/></methodName></methodCall>",
		    "text only" },
		{ "<methodCall>junk<methodName>x</methodName></methodCall>",
		    "unexpected text" },
		{ "<methodCall><methodName>x</methodName><params/><params/>"
		  "</methodCall>",
		    "after <params>" },
		{ "<methodCall><methodName>x</methodName><params><value/>"
		  "</params></methodCall>",
		    "in <params>" },
		{ "<methodCall><methodName>x</methodName><params><param/>"
		  "</params></methodCall>",
		    "needs a <value>" },
		/* Entities: none may be declared, so none can expand. */
		{ "<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY a \"aaaa\">"
		  "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
		  "<methodCall><methodName>x</methodName><params><param>"
		  "<value><string>&b;</string></value></param></params>"
		  "</methodCall>",
		    "document type declaration" },
		{ "<!DOCTYPE methodCall SYSTEM \"file:///etc/passwd\">"
		  "<methodCall><methodName>x</methodName></methodCall>",
		    "document type declaration" },
		{ "<methodCall><methodName>x</methodName><params><param>"
		  "<value><string>&ext;</string></value></param></params>"
		  "</methodCall>",
		    "not well-formed" },
	};
	size_t i;

	for (i = 0; i < NELEM(bad); i++)
		parse_bad(bad[i].doc, strlen(bad[i].doc), bad[i].why);
	parse_bad("", 0, "empty");
	parse_bad("<methodCall>\0</methodCall>", 26, "not well-formed");
}
END_TEST

/* A DTD is refused in any encoding, not only when spelled in ASCII. */
START_TEST(test_refuse_utf16_dtd)
{
	static const char ascii[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-16LE\"?>"
	    "<!DOCTYPE m [<!ENTITY a \"b\">]>"
	    "<methodCall><methodName>x</methodName></methodCall>";
	char doc[2 * sizeof(ascii) + 2];
	size_t i, n = 0;

	doc[n++] = (char)0xff;
	doc[n++] = (char)0xfe;
	for (i = 0; i < sizeof(ascii) - 1; i++) {
		doc[n++] = ascii[i];
		doc[n++] = '\0';
	}
	parse_bad(doc, n, "document type declaration");
}
END_TEST

START_TEST(test_value_refusals)
{
	value_bad("<int>12x</int>", "not an integer");
	value_bad("<int></int>", "empty <int>");
	value_bad("<int>0x10</int>", "not an integer");
	value_bad("<i8>99999999999999999999</i8>", "out of range");
	value_bad("<boolean>true</boolean>", "neither 0 nor 1");
	value_bad("<double>abc</double>", "not a number");
	value_bad("<double>inf</double>", "not a number");
	value_bad("<base64>!!!!</base64>", "not base64");
	value_bad("<nil>x</nil>", "not empty");
	value_bad("<float>1</float>", "unknown type <float>");
	value_bad("<int>1</int><int>2</int>", "more than one element");
	value_bad("x<int>1</int>", "text beside");
	value_bad("<string><b>x</b></string>", "text only");
	value_bad("<array><value/></array>", "needs a <data>");
	value_bad("<array><data/><data/></array>", "unexpected <data>");
	value_bad("<array><data><int>1</int></data></array>", "in <data>");
	value_bad("<struct><name>a</name></struct>", "in <struct>");
	value_bad("<struct><member><name>a</name></member></struct>",
	    "needs a <name> and a <value>");
	value_bad("<struct><member><name>a</name><value/><value/></member>"
		  "</struct>",
	    "unexpected <value> in <member>");
}
END_TEST

START_TEST(test_size_limit)
{
	size_t len = XMLRPC_MAX_BODY_BYTES + 1;
	char *doc = xmalloc(len);

	memset(doc, ' ', len);
	parse_bad(doc, len, "larger than");
	free(doc);
}
END_TEST

START_TEST(test_base64_decode)
{
	static const struct {
		const char *in;
		const char *out;
	} good[] = {
		{ "", "" },
		{ "YQ==", "a" },
		{ "YQ", "a" },
		{ "YWI=", "ab" },
		{ "YWJj", "abc" },
		{ " YW\r\nJj\t", "abc" },
	};
	static const char *const bad[] = { "Y", "YQ=a", "Y===", "YQ===",
		"YW-j", "YQ=\n=x" };
	size_t i, len;
	char *out;

	for (i = 0; i < NELEM(good); i++) {
		out = xmlrpc_base64_decode(good[i].in, strlen(good[i].in), &len);
		ck_assert_msg(out != NULL, "'%s' refused", good[i].in);
		ck_assert_uint_eq(len, strlen(good[i].out));
		ck_assert_str_eq(out, good[i].out);
		free(out);
	}
	for (i = 0; i < NELEM(bad); i++) {
		out = xmlrpc_base64_decode(bad[i], strlen(bad[i]), &len);
		ck_assert_msg(out == NULL, "'%s' accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_encode_response)
{
	struct xmlrpc_value *st;
	size_t len;
	char *out;

	st = xmlrpc_value_nil();
	out = xmlrpc_response_encode(st, &len);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_ptr_nonnull(strstr(out, "<methodResponse>"));
	ck_assert_ptr_nonnull(strstr(out, "<value><nil/></value>"));
	free(out);
	xmlrpc_value_free(st);

	/* Small ints as <int>, big ones as <i8>. */
	st = xmlrpc_value_int(2147483647);
	out = xmlrpc_response_encode(st, &len);
	ck_assert_ptr_nonnull(strstr(out, "<int>2147483647</int>"));
	free(out);
	xmlrpc_value_free(st);
	st = xmlrpc_value_int(INT64_C(2147483648));
	out = xmlrpc_response_encode(st, &len);
	ck_assert_ptr_nonnull(strstr(out, "<i8>2147483648</i8>"));
	free(out);
	xmlrpc_value_free(st);

	st = xmlrpc_value_struct();
	xmlrpc_struct_set(st, "ready", xmlrpc_value_bool(true));
	xmlrpc_struct_set(st, "output", xmlrpc_value_base64("1.2.3.4\n", 8));
	xmlrpc_struct_set(st, "closed", xmlrpc_value_bool(false));
	xmlrpc_struct_set(st, "failed", xmlrpc_value_nil());
	out = xmlrpc_response_encode(st, &len);
	ck_assert_ptr_nonnull(strstr(out,
	    "<name>ready</name>\n<value><boolean>1</boolean></value>"));
	ck_assert_ptr_nonnull(strstr(out,
	    "<name>output</name>\n<value><base64>MS4yLjMuNAo=</base64>"
	    "</value>"));
	ck_assert_ptr_nonnull(strstr(out,
	    "<name>closed</name>\n<value><boolean>0</boolean></value>"));
	ck_assert_ptr_nonnull(strstr(out,
	    "<name>failed</name>\n<value><nil/></value>"));
	free(out);
	xmlrpc_value_free(st);
}
END_TEST

START_TEST(test_encode_fault)
{
	size_t len;
	char *out;

	out = xmlrpc_fault_encode(1, "no such ticket <5> & \"x\"\x01\r", &len);
	ck_assert_ptr_nonnull(strstr(out, "<fault>"));
	ck_assert_ptr_nonnull(strstr(out,
	    "<name>faultCode</name>\n<value><int>1</int></value>"));
	ck_assert_ptr_nonnull(strstr(out,
	    "<value><string>no such ticket &lt;5&gt; &amp; \"x\"?&#13;"
	    "</string></value>"));
	free(out);
}
END_TEST

/*
 * What the encoder writes decodes to what went in: the value of a
 * response is put into a methodCall and read back.
 */
START_TEST(test_round_trip)
{
	static const char hostile[] = "a<b>&c\x01\x7f \xc3\xa9 \xff\xfe "
				      "\xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82";
	struct xmlrpc_value *arr;
	struct xmlrpc_request *req;
	const struct xmlrpc_value *v;
	char *out, *start, *end, *doc;
	size_t len;

	arr = xmlrpc_value_array();
	xmlrpc_array_append(arr, xmlrpc_value_string(hostile));
	xmlrpc_array_append(arr, xmlrpc_value_base64("\0\1\2\377", 4));
	xmlrpc_array_append(arr, xmlrpc_value_int(-5));
	xmlrpc_array_append(arr, xmlrpc_value_string("line\r\nnext"));
	out = xmlrpc_response_encode(arr, &len);
	xmlrpc_value_free(arr);
	start = strstr(out, "<param>\n");
	end = strstr(out, "\n</param>");
	ck_assert(start != NULL && end != NULL);
	start += strlen("<param>\n");
	*end = '\0';
	doc = xasprintf("<methodCall><methodName>m</methodName><params><param>"
			"%s</param></params></methodCall>",
	    start);
	free(out);
	req = parse_ok(doc);
	free(doc);
	v = req->params[0];
	ck_assert_int_eq(v->type, XMLRPC_ARRAY);
	ck_assert_uint_eq(v->nitems, 4);
	/* Bytes XML cannot carry became '?'; valid UTF-8 went through. */
	ck_assert_str_eq(v->items[0]->s, "a<b>&c?\x7f \xc3\xa9 ?? ??? ???? ??");
	ck_assert_int_eq(v->items[1]->type, XMLRPC_BASE64);
	ck_assert_uint_eq(v->items[1]->len, 4);
	ck_assert(memcmp(v->items[1]->s, "\0\1\2\377", 4) == 0);
	ck_assert_int_eq(v->items[2]->i, -5);
	ck_assert_str_eq(v->items[3]->s, "line\r\nnext");
	xmlrpc_request_free(req);
}
END_TEST

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t
rng_next(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

/*
 * Garbage made from valid calls by flipping, cutting, duplicating and
 * splicing in XML-RPC fragments: the decoder must answer every one with
 * a request or a reason, and never crash (the sanitizer build checks
 * memory on the way).
 */
START_TEST(test_mutations_never_crash)
{
	static const char *const frags[] = { "<value>", "</value>",
		"<array><data>", "</data></array>", "<struct><member>",
		"<name>", "</name>", "<nil/>", "<int>", "</int>", "&amp;",
		"&#0;", "&#x10FFFF;", "<![CDATA[", "]]>", "<!--", "-->",
		"<!DOCTYPE x [<!ENTITY e \"e\">]>", "&e;", "\xff", "\0",
		"<?pi x?>", "<base64>", "====", "<params><param>" };
	const char *seeds[] = { take_py, collect_py,
		"<methodCall><methodName>m</methodName><params><param><value>"
		"<struct><member><name>a</name><value><array><data><value>"
		"<i8>1</i8></value><value><base64>YQ==</base64></value>"
		"</data></array></value></member></struct></value></param>"
		"</params></methodCall>" };
	struct xmlrpc_request *req;
	uint32_t state = 0x5eed1234;
	char err[256], *buf;
	size_t len, cap = 8192, pos, n, i;
	int iter, muts, m, accepted = 0;

	buf = xmalloc(cap);
	for (iter = 0; iter < 20000; iter++) {
		const char *seed = seeds[rng_next(&state) % NELEM(seeds)];

		len = strlen(seed);
		memcpy(buf, seed, len);
		muts = 1 + (int)(rng_next(&state) % 4);
		for (m = 0; m < muts; m++) {
			pos = len > 0 ? rng_next(&state) % len : 0;
			switch (rng_next(&state) % 5) {
			case 0: /* flip a byte */
				if (len > 0)
					buf[pos] ^= (char)(1u << (rng_next(
					    &state) % 8));
				break;
			case 1: /* cut the tail */
				len = pos;
				break;
			case 2: /* drop a span */
				n = rng_next(&state) % 16;
				if (pos + n > len)
					n = len - pos;
				memmove(buf + pos, buf + pos + n,
				    len - pos - n);
				len -= n;
				break;
			case 3: /* splice in a fragment */
				i = rng_next(&state) % NELEM(frags);
				n = frags[i][0] == '\0' ? 1 : strlen(frags[i]);
				if (len + n >= cap)
					break;
				memmove(buf + pos + n, buf + pos, len - pos);
				memcpy(buf + pos, frags[i], n);
				len += n;
				break;
			default: /* duplicate a span */
				n = rng_next(&state) % 64;
				if (pos + n > len)
					n = len - pos;
				if (len + n >= cap)
					break;
				memmove(buf + pos + n, buf + pos, len - pos);
				len += n;
				break;
			}
		}
		err[0] = '\0';
		req = NULL;
		if (xmlrpc_request_parse(buf, len, &req, err, sizeof(err)) ==
		    0) {
			ck_assert_ptr_nonnull(req);
			ck_assert_ptr_nonnull(req->method);
			accepted++;
			xmlrpc_request_free(req);
		} else {
			ck_assert_ptr_null(req);
			ck_assert_msg(err[0] != '\0', "refusal without a reason");
		}
	}
	free(buf);
	/* The mutations are mild enough that some calls stay valid. */
	ck_assert_int_gt(accepted, 0);
	ck_assert_int_lt(accepted, 20000);
}
END_TEST

static Suite *
xmlrpc_suite(void)
{
	Suite *s = suite_create("xmlrpc");
	TCase *tc = tcase_create("xmlrpc");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_python_take_ticket);
	tcase_add_test(tc, test_python_collect_string_id);
	tcase_add_test(tc, test_no_params);
	tcase_add_test(tc, test_scalars);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_struct_and_nesting);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_refuse_utf16_dtd);
	tcase_add_test(tc, test_value_refusals);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_base64_decode);
	tcase_add_test(tc, test_encode_response);
	tcase_add_test(tc, test_encode_fault);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_mutations_never_crash);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	xmlrpc_init();
	sr = srunner_create(xmlrpc_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	xmlrpc_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
