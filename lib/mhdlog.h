/*
 * mhdlog -- libmicrohttpd's messages into resbus's log, for the two HTTP
 * servers (resbusd's status page and resbus-xmlrpc).
 *
 * libmicrohttpd prints its own complaints (a bad request line, a socket
 * error, an option it refuses) to stderr unless it is given a logger
 * (MHD_OPTION_EXTERNAL_LOGGER, before any other option so that none of
 * their messages escapes it).  Its type is only a printf-like function,
 * so this module needs no libmicrohttpd header and links into every
 * program of the shared library.
 */
#ifndef RESBUS_MHDLOG_H
#define RESBUS_MHDLOG_H

#include <stdarg.h>

/*
 * The logger to give libmicrohttpd, CLS unused: a message as a warning
 * prefixed with "http: ", its trailing newlines cut.  That a client's
 * socket closed or was reset is no news (a request timed out, a caller
 * gave up): debug only, prefixed with "libmicrohttpd: ", so that a log
 * searched for "http: " finds only what needs a look.
 */
void mhdlog_write(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
