/*
 * mhdlog -- libmicrohttpd's messages into resbus's log (see mhdlog.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mhdlog.h"

void
mhdlog_write(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (strstr(buf, "connection closure") != NULL ||
	    strstr(buf, "onnection reset") != NULL)
		log_debug("libmicrohttpd: %s", buf);
	else
		log_warnx("http: %s", buf);
}
