/*
 * fuzz_xmlrpc -- libFuzzer target for the XML-RPC request decoder.
 *
 * resbus-xmlrpc hands xmlrpc_request_parse() the body of any HTTP POST
 * it receives, so the input here is that body as it came.  A request
 * that decodes is then written back: each parameter through the
 * response encoder, put together again into a methodCall and decoded a
 * second time.  The second decoding must succeed and give the same
 * values, which checks that the encoder writes what the decoder (and so
 * any XML-RPC client) reads back unchanged.  The input is also fed to
 * the base64 decoder and, as text, to the fault encoder.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmlrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmlrpc_init();
	return 0;
}

/* Whether the decoder's values A and B are the same. */
static bool
fuzz_same(const struct xmlrpc_value *a, const struct xmlrpc_value *b)
{
	size_t i;

	if (a->type != b->type)
		return false;
	switch (a->type) {
	case XMLRPC_NIL:
		return true;
	case XMLRPC_INT:
		return a->i == b->i;
	case XMLRPC_BOOL:
		return a->b == b->b;
	case XMLRPC_DOUBLE:
		return a->d == b->d;
	case XMLRPC_STRING:
	case XMLRPC_BASE64:
	case XMLRPC_DATETIME:
		return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
	case XMLRPC_ARRAY:
	case XMLRPC_STRUCT:
		if (a->nitems != b->nitems)
			return false;
		for (i = 0; i < a->nitems; i++) {
			if (a->type == XMLRPC_STRUCT &&
			    strcmp(a->names[i], b->names[i]) != 0)
				return false;
			if (!fuzz_same(a->items[i], b->items[i]))
				return false;
		}
		return true;
	}
	return false;
}

/* The invariants of a decoded value that the gateway relies on. */
static void
fuzz_walk(const struct xmlrpc_value *v, int depth)
{
	size_t i;

	assert(depth <= XMLRPC_MAX_DEPTH + 1);
	(void)xmlrpc_type_name(v->type);
	switch (v->type) {
	case XMLRPC_STRING:
	case XMLRPC_BASE64:
	case XMLRPC_DATETIME:
		assert(v->s != NULL && v->s[v->len] == '\0');
		break;
	case XMLRPC_STRUCT:
		for (i = 0; i < v->nitems; i++) {
			assert(v->names[i] != NULL);
			assert(xmlrpc_struct_get(v, v->names[i]) != NULL);
		}
		/* FALLTHROUGH */
	case XMLRPC_ARRAY:
		for (i = 0; i < v->nitems; i++)
			fuzz_walk(v->items[i], depth + 1);
		break;
	default:
		break;
	}
}

/* The <value> of a methodResponse from xmlrpc_response_encode(). */
static void
fuzz_append_value(char **call, size_t *calllen, const char *resp)
{
	const char *start, *end;
	size_t n;

	start = strstr(resp, "<param>\n");
	end = strstr(resp, "\n</param>\n</params>\n</methodResponse>");
	assert(start != NULL && end != NULL && end > start);
	start += strlen("<param>\n");
	n = (size_t)(end - start);
	*call = xrealloc(*call, *calllen + n + 64);
	memcpy(*call + *calllen, "<param>", 7);
	memcpy(*call + *calllen + 7, start, n);
	memcpy(*call + *calllen + 7 + n, "</param>", 8);
	*calllen += n + 15;
}

static void
fuzz_roundtrip(const struct xmlrpc_request *req)
{
	struct xmlrpc_request *again;
	char *call, *resp, err[256];
	size_t i, calllen, resplen;

	call = xmalloc(strlen(req->method) + 128);
	calllen = (size_t)sprintf(call, "<?xml version=\"1.0\"?>\n<methodCall>"
	    "<methodName>%s</methodName><params>", req->method);
	for (i = 0; i < req->nparams; i++) {
		resp = xmlrpc_response_encode(req->params[i], &resplen);
		assert(resp != NULL && strlen(resp) == resplen);
		fuzz_append_value(&call, &calllen, resp);
		free(resp);
	}
	call = xrealloc(call, calllen + 32);
	calllen += (size_t)sprintf(call + calllen, "</params></methodCall>\n");
	if (calllen > XMLRPC_MAX_BODY_BYTES) {
		free(call);
		return;
	}
	if (xmlrpc_request_parse(call, calllen, &again, err, sizeof(err)) != 0)
		assert(!"a request written back does not decode");
	assert(strcmp(again->method, req->method) == 0);
	assert(again->nparams == req->nparams);
	for (i = 0; i < req->nparams; i++)
		assert(fuzz_same(req->params[i], again->params[i]));
	xmlrpc_request_free(again);
	free(call);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xmlrpc_request *req;
	char err[256], *text, *out;
	size_t i, len;

	err[0] = '\0';
	if (xmlrpc_request_parse(data, size, &req, err, sizeof(err)) == 0) {
		assert(req->method != NULL);
		assert(strlen(req->method) <= XMLRPC_MAX_METHOD_LEN);
		for (i = 0; i < req->nparams; i++)
			fuzz_walk(req->params[i], 0);
		fuzz_roundtrip(req);
		xmlrpc_request_free(req);
	} else {
		assert(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	}

	if ((out = xmlrpc_base64_decode((const char *)data, size, &len)) !=
	    NULL) {
		assert(out[len] == '\0');
		free(out);
	}

	text = xstrndup((const char *)data, size);
	out = xmlrpc_fault_encode(XMLRPC_FAULT_APPLICATION, text, &len);
	assert(out != NULL && strlen(out) == len);
	free(out);
	free(text);
	return 0;
}
