/*
 * store -- backend selection by URL scheme, the transaction wrapper, and
 * one wrapper per backend operation: the only file that calls through
 * s->be, so that a backend's table is an implementation detail.
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

int
store_load(struct store *s, const struct store_loader *l)
{
	return s->be->load(s, l);
}

int
store_put_meta(struct store *s, const char *key, int64_t value)
{
	return s->be->put_meta(s, key, value);
}

int
store_put_tagset(struct store *s, const char *key)
{
	return s->be->put_tagset(s, key);
}

int
store_del_meta(struct store *s, const char *key)
{
	return s->be->del_meta(s, key);
}

int
store_del_tagset(struct store *s, const char *key)
{
	return s->be->del_tagset(s, key);
}

int
store_put_ticket(struct store *s, const struct store_ticket *t)
{
	return s->be->put_ticket(s, t);
}

int
store_put_resource(struct store *s, const struct store_resource *r)
{
	return s->be->put_resource(s, r);
}

int
store_add_outbox(struct store *s, const struct store_outbox *o)
{
	return s->be->add_outbox(s, o);
}

int
store_del_outbox(struct store *s, uint64_t id)
{
	return s->be->del_outbox(s, id);
}

int
store_get_ticket(struct store *s, uint64_t id, store_ticket_fn *fn, void *arg)
{
	return s->be->get_ticket(s, id, fn, arg);
}

int
store_lead_try(struct store *s, const char *who, int lease_s, int64_t *epoch,
    char *holder, size_t holderlen)
{
	return s->be->lead_try(s, who, lease_s, epoch, holder, holderlen);
}

int
store_fd(const struct store *s)
{
	return s->be->fd(s);
}

int
store_io(struct store *s)
{
	return s->be->io(s);
}

bool
store_want_write(const struct store *s)
{
	return s->be->want_write(s);
}
