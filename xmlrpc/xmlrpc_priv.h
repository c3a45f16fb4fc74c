/*
 * xmlrpc_priv -- what the files of the XML-RPC codec share beyond
 * xmlrpc.h: making a value of any type and adding to an array or struct.
 * The values live in xmlrpc.c, the decoder in decode.c, the encoder in
 * encode.c.
 */
#ifndef RESBUS_XMLRPC_PRIV_H
#define RESBUS_XMLRPC_PRIV_H

#include "xmlrpc.h"

/* A fresh, zeroed value of TYPE; caller frees. */
struct xmlrpc_value *xmlrpc_value_new(enum xmlrpc_type type);
/* Appends V (and, to a struct, member NAME) to C; takes both. */
void xmlrpc_value_push(
    struct xmlrpc_value *c, char *name, struct xmlrpc_value *v);

#endif
