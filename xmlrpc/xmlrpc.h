/*
 * xmlrpc -- XML-RPC method calls decoded, method responses encoded.
 *
 * The decoder takes the bytes of an HTTP request body and returns a
 * request (method name and parameter values) or a one-line error; it
 * never trusts its input: documents with a DTD are refused before and
 * after parsing (no entities, so no entity expansion), the network is
 * never touched, nesting and size are bounded, and every element that
 * XML-RPC does not define is an error rather than something skipped.
 *
 * The encoder writes a methodResponse for one value, or a fault, as
 * Python's xmlrpc.client and every other XML-RPC client read them,
 * including the <nil/> extension resalloc relies on.
 *
 * The values are in xmlrpc.c, the decoder in decode.c, the encoder in
 * encode.c.
 */
#ifndef RESBUS_XMLRPC_H
#define RESBUS_XMLRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest request body the decoder accepts. */
#define XMLRPC_MAX_BODY_BYTES (1024 * 1024)
/* Deepest nesting of arrays and structs in one value. */
#define XMLRPC_MAX_DEPTH 32
/* Longest method name. */
#define XMLRPC_MAX_METHOD_LEN 128

/* Fault codes from the "specification for fault code interoperability". */
#define XMLRPC_FAULT_PARSE (-32700)
#define XMLRPC_FAULT_INVALID_REQUEST (-32600)
#define XMLRPC_FAULT_NO_METHOD (-32601)
#define XMLRPC_FAULT_INVALID_PARAMS (-32602)
#define XMLRPC_FAULT_INTERNAL (-32603)
/* What resalloc's server answers for any error its methods raise. */
#define XMLRPC_FAULT_APPLICATION 1

enum xmlrpc_type {
	XMLRPC_NIL,
	XMLRPC_INT, /* <int>, <i4>, <i8> */
	XMLRPC_BOOL,
	XMLRPC_DOUBLE,
	XMLRPC_STRING,	 /* also a <value> with no type element */
	XMLRPC_BASE64,	 /* decoded bytes in s, len */
	XMLRPC_DATETIME, /* the text as sent */
	XMLRPC_ARRAY,
	XMLRPC_STRUCT,
};

struct xmlrpc_value {
	enum xmlrpc_type type;
	int64_t i;
	bool b;
	double d;
	char *s;		     /* STRING, BASE64, DATETIME; NUL-ended */
	size_t len;		     /* bytes in s, without the NUL */
	struct xmlrpc_value **items; /* ARRAY elements, STRUCT member values */
	char **names;		     /* STRUCT member names */
	size_t nitems;
};

struct xmlrpc_request {
	char *method;
	struct xmlrpc_value **params;
	size_t nparams;
};

/*
 * Decodes the methodCall in the LEN bytes at BODY.  0 with *REQ set
 * (caller frees with xmlrpc_request_free), or -1 with a one-line reason
 * in ERR.  Safe on any input; must be called after xmlrpc_init().
 */
int xmlrpc_request_parse(const void *body, size_t len,
    struct xmlrpc_request **req, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void xmlrpc_request_free(struct xmlrpc_request *req);

/* Initialises libxml2 once, before any thread parses. */
void xmlrpc_init(void);
/* Releases libxml2's global state at exit. */
void xmlrpc_cleanup(void);

/* Values; each constructor returns a fresh value the caller frees. */
struct xmlrpc_value *xmlrpc_value_nil(void);
struct xmlrpc_value *xmlrpc_value_int(int64_t i);
struct xmlrpc_value *xmlrpc_value_bool(bool b);
struct xmlrpc_value *xmlrpc_value_string(const char *s);
struct xmlrpc_value *xmlrpc_value_base64(const void *data, size_t len);
struct xmlrpc_value *xmlrpc_value_array(void);
struct xmlrpc_value *xmlrpc_value_struct(void);
/* Appends V to ARRAY; takes ownership of V. */
void xmlrpc_array_append(struct xmlrpc_value *array, struct xmlrpc_value *v);
/* Adds member NAME (copied) with value V to ST; takes ownership of V. */
void xmlrpc_struct_set(
    struct xmlrpc_value *st, const char *name, struct xmlrpc_value *v);
/* Member NAME of ST, or NULL.  Borrowed from ST. */
const struct xmlrpc_value *xmlrpc_struct_get(
    const struct xmlrpc_value *st, const char *name);
void xmlrpc_value_free(struct xmlrpc_value *v);
/* "int", "string", ...: the XML-RPC name of T.  Static. */
const char *xmlrpc_type_name(enum xmlrpc_type t);

/*
 * A methodResponse carrying V, or a fault with CODE and MESSAGE, as a
 * NUL-ended document of *LEN bytes; caller frees.  Strings that XML
 * cannot carry (control characters, invalid UTF-8) are written with '?'
 * in place of the bad bytes.
 */
char *xmlrpc_response_encode(const struct xmlrpc_value *v, size_t *len);
char *xmlrpc_fault_encode(int code, const char *message, size_t *len);

/*
 * Decodes base64 (RFC 4648, whitespace ignored, padding optional) into a
 * fresh NUL-ended buffer of *LEN bytes; caller frees.  NULL if S is not
 * base64.
 */
char *xmlrpc_base64_decode(const char *s, size_t slen, size_t *len);

#endif
