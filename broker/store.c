/*
 * store -- backend selection by URL scheme and the transaction wrapper.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "store.h"

static const struct store_backend *const store_backends[] = {
	&store_sqlite_backend,
	NULL,
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
	for (i = 0; store_backends[i] != NULL; i++)
		if (strlen(store_backends[i]->name) == n &&
		    strncmp(store_backends[i]->name, url, n) == 0)
			return store_backends[i]->open(url, err, errlen);
	snprintf(err, errlen, "db_url \"%s\": no store backend for scheme "
	    "\"%.*s\"", url, (int)n, url);
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
store_commit(struct store *s)
{
	if (!s->in_txn)
		return 0;
	s->in_txn = false;
	return s->be->commit(s);
}

const char *
store_error(const struct store *s)
{
	return s->be->error(s);
}
