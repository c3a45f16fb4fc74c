/*
 * sched_policy -- classes, limits, caps and tag rules: who may have what.
 *
 * Pure bookkeeping over the scheduler's objects, with no I/O: the usage
 * counters of limits (per owner and in total) and of class caps per
 * pool, kept in an RB tree by a typed key (what is counted, which limit,
 * owner, class, pool) compared field by field; the tickets each owner
 * has in memory; whether a limit or a cap keeps a ticket back now, and
 * in which words; and the tag rules that add tags to a request from its
 * labels.  A ticket is charged to the pool of the resource it holds or
 * whose start was made for it (sched_ticket_charge, called by
 * sched_resource.c and sched_ticket.c wherever either changes); a new
 * policy recounts everything from the tickets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "sched.h"
#include "sched_priv.h"
#include "tags.h"
#include "util.h"

const struct conf_class *
sched_policy_class(const struct sched *s, const char *name)
{
	size_t i;

	for (i = 0;
	     name != NULL && s->policy != NULL && i < s->policy->nclasses; i++)
		if (strcmp(s->policy->classes[i].name, name) == 0)
			return &s->policy->classes[i];
	return NULL;
}

static int64_t
usage_get(struct sched *s, const struct usage_key *key)
{
	struct usage k = {.key = *key}, *u;

	u = RB_FIND(usages, &s->usages, &k);
	return u ? u->n : 0;
}

static void
usage_drop(struct sched *s, struct usage *u)
{
	RB_REMOVE(usages, &s->usages, u);
	free(u->key.owner);
	free(u->key.class_);
	free(u->key.pool);
	free(u);
}

static void
usage_add(struct sched *s, const struct usage_key *key, int64_t delta)
{
	struct usage k = {.key = *key}, *u;

	if ((u = RB_FIND(usages, &s->usages, &k)) == NULL) {
		u = xcalloc(1, sizeof(*u));
		u->key.kind = key->kind;
		u->key.limit = key->limit;
		u->key.owner = key->owner ? xstrdup(key->owner) : NULL;
		u->key.class_ = key->class_ ? xstrdup(key->class_) : NULL;
		u->key.pool = key->pool ? xstrdup(key->pool) : NULL;
		RB_INSERT(usages, &s->usages, u);
	}
	u->n += delta;
	if (u->n == 0)
		usage_drop(s, u);
}

/* Forgets every usage counter. */
void
sched_usage_free(struct sched *s)
{
	struct usage *u, *un;

	RB_FOREACH_SAFE(u, usages, &s->usages, un)
	usage_drop(s, u);
}

/* The keys of limit I for T's owner, and in total. */
static struct usage_key
limit_owner_key(size_t i, const struct ticket *t)
{
	return (struct usage_key){
	    .kind = USAGE_LIMIT_OWNER, .limit = i, .owner = t->owner};
}

static struct usage_key
limit_total_key(size_t i)
{
	return (struct usage_key){.kind = USAGE_LIMIT_TOTAL, .limit = i};
}

/* The key of T's class's cap on P. */
static struct usage_key
cap_key(const struct ticket *t, const struct pool *p)
{
	return (struct usage_key){
	    .kind = USAGE_CLASS_CAP, .class_ = t->ts->class_, .pool = p->name};
}

static bool
ticket_has_tag(const struct ticket *t, const char *tag)
{
	size_t i;

	for (i = 0; i < t->ts->ntags; i++)
		if (strcmp(t->ts->tags[i], tag) == 0)
			return true;
	return false;
}

/* The cap of T's class on pool P, or -1 if none. */
static int64_t
class_cap(const struct ticket *t, const struct pool *p)
{
	const struct conf_class *c = t->ts->cls;
	size_t i;

	for (i = 0; c != NULL && i < c->ncaps; i++)
		if (strcmp(c->caps[i].pool, p->name) == 0)
			return c->caps[i].max;
	return -1;
}

/* Counts T in (DELTA +1) or out of (-1) the limits and its class's cap
 * on P. */
static void
usage_apply(struct sched *s, const struct ticket *t, const struct pool *p,
    int64_t delta)
{
	const struct conf_limit *l;
	struct usage_key key;
	size_t i;

	for (i = 0; s->policy != NULL && i < s->policy->nlimits; i++) {
		l = &s->policy->limits[i];
		if (l->tag != NULL && !ticket_has_tag(t, l->tag))
			continue;
		if (l->per_owner >= 0 && t->owner != NULL) {
			key = limit_owner_key(i, t);
			usage_add(s, &key, delta);
		}
		if (l->total >= 0) {
			key = limit_total_key(i);
			usage_add(s, &key, delta);
		}
	}
	if (class_cap(t, p) >= 0) {
		key = cap_key(t, p);
		usage_add(s, &key, delta);
	}
}

/*
 * Keeps T's share of limits and caps right: a ticket counts while it
 * holds a resource (READY) or has an on-demand start made for it, in the
 * pool of that resource.  Called wherever either changes.
 */
void
sched_ticket_charge(struct sched *s, struct ticket *t)
{
	struct pool *want = NULL;

	if (t->state == TICKET_READY && t->res != NULL)
		want = t->res->pool;
	else if (t->state == TICKET_OPEN && t->pending != NULL)
		want = t->pending->pool;
	if (want == t->charged)
		return;
	if (t->charged != NULL)
		usage_apply(s, t, t->charged, -1);
	if (want != NULL)
		usage_apply(s, t, want, +1);
	t->charged = want;
}

/*
 * Counts every ticket's share of limits and caps again from nothing.  At
 * load, READY tickets and tickets whose start is running hold what the
 * store remembers, and a restart must not forget it; when the policy
 * changes, limits are counted by their index in server.yaml and classes
 * may have gained or lost caps.  O(tickets), at those two times only.
 */
void
sched_usage_recount(struct sched *s)
{
	struct ticket *t;

	sched_usage_free(s);
	RB_FOREACH(t, ticket_ids, &s->tickets)
	{
		t->charged = NULL;
		sched_tagset_providers(s, t->ts);
		sched_ticket_charge(s, t);
	}
}

/* How many tickets OWNER has in memory (not CLOSED). */
size_t
sched_owner_count_get(struct sched *s, const char *owner)
{
	struct owner_count k = {.owner = (char *)owner}, *o;

	if (owner == NULL)
		return 0;
	o = RB_FIND(owner_counts, &s->owners, &k);
	return o ? o->n : 0;
}

/* One more (DELTA +1) or one fewer (-1) ticket of OWNER in memory. */
void
sched_owner_count_add(struct sched *s, const char *owner, int delta)
{
	struct owner_count k = {.owner = (char *)owner}, *o;

	if (owner == NULL)
		return;
	if ((o = RB_FIND(owner_counts, &s->owners, &k)) == NULL) {
		if (delta < 0)
			return;
		o = xcalloc(1, sizeof(*o));
		o->owner = xstrdup(owner);
		RB_INSERT(owner_counts, &s->owners, o);
	}
	if (delta < 0 && o->n > 0)
		o->n--;
	else if (delta > 0)
		o->n++;
	if (o->n == 0) {
		RB_REMOVE(owner_counts, &s->owners, o);
		free(o->owner);
		free(o);
	}
}

/*
 * Whether a limit keeps T from getting a resource now; WHY (may be NULL)
 * says which.  A ticket already counted (its start is running) is not
 * kept back by its own share.
 */
bool
sched_limits_block(
    struct sched *s, const struct ticket *t, char *why, size_t len)
{
	const struct conf_limit *l;
	struct usage_key key;
	int64_t n;
	size_t i;

	if (t->charged != NULL || s->policy == NULL)
		return false;
	for (i = 0; i < s->policy->nlimits; i++) {
		l = &s->policy->limits[i];
		if (l->tag != NULL && !ticket_has_tag(t, l->tag))
			continue;
		if (l->per_owner >= 0 && t->owner != NULL) {
			key = limit_owner_key(i, t);
			if ((n = usage_get(s, &key)) >= l->per_owner) {
				if (why)
					snprintf(why, len,
					    "owner %s at limit "
					    "%s %lld/%lld",
					    t->owner, l->tag ? l->tag : "(all)",
					    (long long)n,
					    (long long)l->per_owner);
				return true;
			}
		}
		if (l->total >= 0) {
			key = limit_total_key(i);
			if ((n = usage_get(s, &key)) >= l->total) {
				if (why)
					snprintf(why, len,
					    "limit %s total "
					    "%lld/%lld",
					    l->tag ? l->tag : "(all)",
					    (long long)n, (long long)l->total);
				return true;
			}
		}
	}
	return false;
}

/* Whether T's class may take one more resource of pool P. */
bool
sched_cap_allows(struct sched *s, const struct ticket *t, const struct pool *p)
{
	int64_t cap = class_cap(t, p);
	struct usage_key key;

	if (cap < 0 || t->charged == p)
		return true;
	key = cap_key(t, p);
	return usage_get(s, &key) < cap;
}

/* The value of label NAME in T's labels ("k=v\n..."), into BUF. */
static void
ticket_label(const char *labels, const char *owner, const char *name, char *buf,
    size_t len)
{
	size_t n = strlen(name);
	const char *p, *end;

	buf[0] = '\0';
	for (p = labels; p != NULL && *p != '\0'; p = end + 1) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			snprintf(buf, len, "%.*s", (int)(end - p - (int)n - 1),
			    p + n + 1);
			return;
		}
		if (*end == '\0')
			break;
	}
	if (strcmp(name, "owner") == 0 && owner != NULL)
		snprintf(buf, len, "%s", owner);
}

/*
 * The tag-set key of a ticket with KEY after the tag rules: each rule
 * whose subject, filled from LABELS and OWNER, matches adds its tags.
 * Returns a fresh key (caller frees).
 */
char *
sched_policy_apply_rules(
    struct sched *s, const char *key, const char *labels, const char *owner)
{
	const struct conf_tag_rule *r;
	char subject[1024], value[300], name[40], **tags, *out;
	const char *p, *close, *bad;
	size_t ntags, n, i, j, k;

	if (s->nrules == 0 || s->policy == NULL ||
	    tagset_split(key, &tags, &ntags) == -1)
		return xstrdup(key);
	for (i = 0; i < s->nrules; i++) {
		r = &s->policy->tag_rules[i];
		for (p = r->subject, n = 0;
		     *p != '\0' && n < sizeof(subject) - 1; p++) {
			if (*p == '{' && (close = strchr(p, '}')) != NULL &&
			    (size_t)(close - p - 1) < sizeof(name)) {
				snprintf(name, sizeof(name), "%.*s",
				    (int)(close - p - 1), p + 1);
				ticket_label(
				    labels, owner, name, value, sizeof(value));
				for (k = 0; value[k] != '\0' &&
					    n < sizeof(subject) - 1;
				     k++)
					subject[n++] = value[k];
				p = close;
				continue;
			}
			subject[n++] = *p;
		}
		subject[n] = '\0';
		if (regexec(&s->rules[i], subject, 0, NULL, 0) != 0)
			continue;
		for (j = 0; j < r->nadd; j++) {
			tags = xrealloc(tags, (ntags + 1) * sizeof(*tags));
			tags[ntags++] = xstrdup(r->add[j]);
		}
	}
	out = tagset_key(tags, ntags, &bad);
	tagset_free_list(tags, ntags);
	return out ? out : xstrdup(key);
}

void
sched_set_policy(struct sched *s, const struct conf_server *server)
{
	size_t i;

	for (i = 0; i < s->nrules; i++)
		regfree(&s->rules[i]);
	free(s->rules);
	s->policy = server;
	s->nrules = server->ntag_rules;
	s->rules = xcalloc(s->nrules, sizeof(*s->rules));
	for (i = 0; i < s->nrules; i++)
		if (regcomp(&s->rules[i], server->tag_rules[i].match,
			REG_EXTENDED | REG_NOSUB) != 0)
			/* conf validated it; a failure here is a bug */
			fatalx("tag rule %zu: cannot compile %s", i,
			    server->tag_rules[i].match);
	s->conf_gen++;
	s->dirty = true;
	sched_usage_recount(s);
	sched_tagset_sweep_arm(s);
}
