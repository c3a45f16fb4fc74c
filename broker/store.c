/*
 * store -- backend selection by URL scheme and the transaction wrapper.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

static const struct {
	const char *scheme;
	const struct store_backend *be;
} store_backends[] = {
    {"sqlite", &store_sqlite_backend},
    {"postgresql", &store_pg_backend},
    {"postgres", &store_pg_backend},
};

struct store *
store_open(const char *url, char *err, size_t errlen)
{
	const char *colon = strchr(url, ':');
	size_t i, n;

	if (colon == NULL) {
		snprintf(err, errlen, "db_url \"%s\" has no scheme", url);
		return NULL;
	}
	n = (size_t)(colon - url);
	for (i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++)
		if (strlen(store_backends[i].scheme) == n &&
		    strncmp(store_backends[i].scheme, url, n) == 0)
			return store_backends[i].be->open(url, err, errlen);
	snprintf(err, errlen,
	    "db_url \"%s\": no store backend for scheme "
	    "\"%.*s\"",
	    url, (int)n, url);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s != NULL)
		s->be->close(s);
}

int
store_begin(struct store *s)
{
	if (s->in_txn)
		return 0;
	if (s->be->begin(s) == -1)
		return -1;
	s->in_txn = true;
	return 0;
}

int
store_commit(struct store *s, store_done_fn *done, void *arg)
{
	if (!s->in_txn) {
		done(arg, true);
		return 0;
	}
	s->in_txn = false;
	return s->be->commit(s, done, arg);
}

const char *
store_error(const struct store *s)
{
	return s->be->error(s);
}
