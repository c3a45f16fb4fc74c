/*
 * control -- operators' commands, dispatched by name through a table.
 *
 * Every command answers with a ControlReply: output lines in
 * resalloc-maint's formats where resalloc-maint has the command (scripts
 * parse them), or JSON when asked.  Refusals name the reason.
 *
 * The reply's `error` names what went wrong when `ok` is false; when `ok`
 * is true, a non-empty `error` is a warning for stderr (resource-delete
 * of a resource that is not UP does nothing and says so, but is no
 * failure, as in resalloc-maint).
 *
 * A resource's data (what its cmd_new printed: addresses, often
 * credentials) is in the answers to admins only; to anybody else the
 * JSON of a resource has no "data" member.  What the owner of a ticket
 * may see of its resource, the ticket's own answers give.
 *
 * JSON is written the way resalloc-maint's Python writes it
 * (json.dumps(..., indent=4)): four-space indentation, ", " and ": "
 * separators, and every character outside ASCII as a \u escape, so the
 * output is plain ASCII whatever a driver printed.  No JSON library is
 * needed for that much.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "sched.h"
#include "util.h"

/* What a handler builds up; freed by control_handle. */
struct answer {
	Resbus__V1__ControlReply reply;
	char **lines;
	size_t nlines;
	char *error;   /* failure, without the command name */
	char *warning; /* ok, but worth saying on stderr */
	bool admin;    /* the user is one of the admins */
};

static void
answer_line(struct answer *a, char *line)
{
	a->lines = xrealloc(a->lines, (a->nlines + 1) * sizeof(*a->lines));
	a->lines[a->nlines++] = line;
}

static void answer_fail(struct answer *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
answer_fail(struct answer *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	free(a->error);
	a->error = s;
	a->reply.ok = false;
}

/* Adds a line to the warning; the reply stays ok. */
static void
answer_warn(struct answer *a, char *line)
{
	char *w;

	if (a->warning == NULL) {
		a->warning = line;
		return;
	}
	w = xasprintf("%s\n%s", a->warning, line);
	free(a->warning);
	free(line);
	a->warning = w;
}

struct control_cmd {
	const char *name;
	bool mutating; /* allowed to admins only */
	void (*fn)(struct sched *s, const Resbus__V1__ControlRequest *req,
	    const struct control_ops *ops, struct answer *a);
};

/* ---- JSON output ------------------------------------------------------ */

#define JSON_MAX_DEPTH 8

struct json {
	FILE *f;
	char *buf;
	size_t len;
	int depth;
	bool first[JSON_MAX_DEPTH + 1];
};

static void
json_start(struct json *j)
{
	memset(j, 0, sizeof(*j));
	if ((j->f = open_memstream(&j->buf, &j->len)) == NULL)
		fatal("open_memstream");
}

/* The text written; caller frees. */
static char *
json_finish(struct json *j)
{
	if (fclose(j->f) == EOF)
		fatal("open_memstream");
	return j->buf;
}

/* Next code point of UTF-8 text S (LEN left) into *cp; bytes used, or 0
 * for an invalid sequence. */
static size_t
utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* S (LEN bytes of UTF-8; invalid bytes become U+FFFD) as a JSON string. */
static void
json_string(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	fputc('"', f);
	while (len > 0) {
		if ((n = utf8_next(p, len, &cp)) == 0) {
			cp = 0xfffd;
			n = 1;
		}
		p += n;
		len -= n;
		switch (cp) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (cp < 0x20 ||
			    (cp > 0x7e && cp < 0x10000 && cp != 0x7f))
				fprintf(f, "\\u%04x", (unsigned)cp);
			else if (cp >= 0x10000) {
				cp -= 0x10000;
				fprintf(f, "\\u%04x\\u%04x",
				    (unsigned)(0xd800 + (cp >> 10)),
				    (unsigned)(0xdc00 + (cp & 0x3ff)));
			} else
				fputc((int)cp, f);
		}
	}
	fputc('"', f);
}

/* Starts a member (KEY may be NULL inside an array) on a line of its own. */
static void
json_member(struct json *j, const char *key)
{
	int i;

	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = false;
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("    ", j->f);
	}
	if (key != NULL) {
		json_string(j->f, key, strlen(key));
		fputs(": ", j->f);
	}
}

static void
json_open(struct json *j, const char *key, char ch)
{
	json_member(j, key);
	fputc(ch, j->f);
	if (j->depth >= JSON_MAX_DEPTH)
		fatalx("control: JSON nested too deep");
	j->first[++j->depth] = true;
}

static void
json_close(struct json *j, char ch)
{
	int i;

	if (!j->first[j->depth--]) {
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("    ", j->f);
	}
	fputc(ch, j->f);
}

static void
json_str(struct json *j, const char *key, const char *s)
{
	json_member(j, key);
	if (s == NULL)
		fputs("null", j->f);
	else
		json_string(j->f, s, strlen(s));
}

static void
json_int(struct json *j, const char *key, int64_t v)
{
	json_member(j, key);
	fprintf(j->f, "%" PRId64, v);
}

static void
json_uint_or_null(struct json *j, const char *key, uint64_t v)
{
	json_member(j, key);
	if (v == 0)
		fputs("null", j->f);
	else
		fprintf(j->f, "%" PRIu64, v);
}

static void
json_bool(struct json *j, const char *key, bool v)
{
	json_member(j, key);
	fputs(v ? "true" : "false", j->f);
}

/* Wall-clock MS as ISO 8601 UTC into BUF ("" for 0). */
static void
iso_time(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- resources ---------------------------------------------------------- */

/* resalloc-maint strips the data it shows (Python's str.strip()). */
static void
data_stripped(const struct sched_resource_view *v, const char **p, size_t *len)
{
	const char *s = v->data;
	size_t n = v->data_len;

	while (n > 0 && strchr(" \t\n\r\v\f", s[0]) != NULL && s[0] != '\0') {
		s++;
		n--;
	}
	while (n > 0 && strchr(" \t\n\r\v\f", s[n - 1]) != NULL &&
	       s[n - 1] != '\0')
		n--;
	*p = s;
	*len = n;
}

/* V as JSON; its data only WITH_DATA (for admins). */
static void
resource_json(struct json *j, const char *key,
    const struct sched_resource_view *v, bool with_data)
{
	const char *data;
	char when[32];
	size_t i, len;

	data_stripped(v, &data, &len);
	iso_time(v->created_ms, when, sizeof(when));
	json_open(j, key, '{');
	json_int(j, "id", (int64_t)v->id);
	json_str(j, "name", v->name);
	json_str(j, "pool", v->pool);
	json_str(j, "state", v->state);
	if (with_data) {
		json_member(j, "data");
		if (v->data == NULL)
			fputs("null", j->f);
		else
			json_string(j->f, data, len);
	}
	json_uint_or_null(j, "ticket_id", v->ticket_id);
	json_str(j, "sandbox", v->sandbox);
	json_int(j, "releases", v->releases);
	json_int(j, "check_failed", v->check_failed);
	json_int(j, "id_in_pool", v->id_in_pool);
	json_str(j, "created", when[0] ? when : NULL);
	json_open(j, "tags", '[');
	for (i = 0; i < v->ntags; i++)
		json_str(j, NULL, v->tags[i]);
	json_close(j, ']');
	json_close(j, '}');
}

struct resource_walk {
	struct answer *a;
	struct json j;
	bool json;
	bool up;
};

static void
resource_line(void *arg, const struct sched_resource_view *v)
{
	struct resource_walk *w = arg;
	char *tags, *t;
	size_t i;

	if (w->up && strcmp(v->state, "UP") != 0)
		return;
	if (w->json) {
		resource_json(&w->j, NULL, v, w->a->admin);
		return;
	}
	tags = xstrdup("");
	for (i = 0; i < v->ntags; i++) {
		t = xasprintf("%s%s%s", tags, i ? "," : "", v->tags[i]);
		free(tags);
		tags = t;
	}
	if (v->ticket_id != 0)
		answer_line(
		    w->a, xasprintf("%" PRIu64 " - %s pool=%s tags=%s "
				    "status=%s releases=%d ticket=%" PRIu64,
			      v->id, v->name, v->pool, tags, v->state,
			      (int)v->releases, v->ticket_id));
	else
		answer_line(w->a, xasprintf("%" PRIu64 " - %s pool=%s tags=%s "
					    "status=%s releases=%d ticket=NULL",
				      v->id, v->name, v->pool, tags, v->state,
				      (int)v->releases));
	free(tags);
}

static void
cmd_resource_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct resource_walk w;

	(void)ops;
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.up = req->up;
	w.json = req->json;
	if (w.json) {
		json_start(&w.j);
		json_open(&w.j, NULL, '[');
	}
	sched_foreach_resource(s, resource_line, &w);
	if (w.json) {
		json_close(&w.j, ']');
		a->reply.json = json_finish(&w.j);
	}
	a->reply.ok = true;
}

struct resource_info {
	struct json j;
	bool with_data;
};

static void
resource_info(void *arg, const struct sched_resource_view *v)
{
	struct resource_info *ri = arg;

	resource_json(&ri->j, NULL, v, ri->with_data);
}

static void
cmd_resource_info(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct resource_info ri;
	const char *arg;
	uint64_t id = 0;
	int found;

	(void)ops;
	if (req->n_args != 1) {
		answer_fail(a, "give one resource ID or name");
		return;
	}
	arg = req->args[0];
	memset(&ri, 0, sizeof(ri));
	ri.with_data = a->admin;
	json_start(&ri.j);
	if (parse_u64(arg, &id) == 0)
		found = sched_resource_find(s, id, NULL, resource_info, &ri);
	else
		found = sched_resource_find(s, 0, arg, resource_info, &ri);
	a->reply.json = json_finish(&ri.j);
	if (!found) {
		answer_fail(a, "Unknown resource: %s", arg);
		return;
	}
	a->reply.ok = true;
}

struct pick {
	uint64_t *ids;
	size_t n;
	bool unused;
};

static void
resource_pick(void *arg, const struct sched_resource_view *v)
{
	struct pick *p = arg;

	if (strcmp(v->state, "UP") != 0)
		return;
	if (p->unused && (v->ticket_id != 0 || v->check_failed > 0))
		return;
	p->ids = xrealloc(p->ids, (p->n + 1) * sizeof(*p->ids));
	p->ids[p->n++] = v->id;
}

/*
 * resalloc-maint's resource-delete: --all is every UP resource (the
 * tickets of taken ones become FAILED), --unused the UP ones without a
 * ticket and without livecheck failures; otherwise the IDs given, which
 * are ignored when --all or --unused is there.
 */
static void
cmd_resource_delete(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct pick p;
	uint64_t id;
	size_t i;

	(void)ops;
	memset(&p, 0, sizeof(p));
	if (req->all || req->unused) {
		p.unused = req->unused && !req->all;
		sched_foreach_resource(s, resource_pick, &p);
	} else {
		if (req->n_args == 0) {
			answer_fail(a, "no resources specified");
			return;
		}
		for (i = 0; i < req->n_args; i++) {
			if (parse_u64(req->args[i], &id) == -1) {
				answer_fail(
				    a, "bad resource ID '%s'", req->args[i]);
				free(p.ids);
				return;
			}
			p.ids = xrealloc(p.ids, (p.n + 1) * sizeof(*p.ids));
			p.ids[p.n++] = id;
		}
	}
	for (i = 0; i < p.n; i++) {
		if (sched_resource_delete(s, p.ids[i]) == 1)
			log_info("control: resource %" PRIu64 " deleted by an "
				 "operator",
			    p.ids[i]);
		else
			answer_warn(a, xasprintf("resource %" PRIu64 " is not "
						 "an UP resource; not deleted",
					   p.ids[i]));
	}
	free(p.ids);
	a->reply.ok = true;
}

/* ---- tickets ------------------------------------------------------------ */

struct ticket_walk {
	struct answer *a;
	struct json j;
	bool json;
};

/* KEY's tags ("a+b") as resalloc-maint shows them ("a,b"); caller frees. */
static char *
ticket_tags(const char *key)
{
	char *t = xstrdup(key ? key : ""), *p;

	for (p = t; *p != '\0'; p++)
		if (*p == '+')
			*p = ',';
	return t;
}

/* REASON in double quotes, with " and \ escaped; caller frees. */
static char *
quoted(const char *reason)
{
	char *q = xmalloc(2 * strlen(reason) + 3), *p = q;

	*p++ = '"';
	for (; *reason != '\0'; reason++) {
		if (*reason == '"' || *reason == '\\')
			*p++ = '\\';
		*p++ = *reason;
	}
	*p++ = '"';
	*p = '\0';
	return q;
}

static void
ticket_json(struct json *j, const struct sched_ticket_info *t)
{
	char when[32], *tags, *p, *next;

	iso_time(t->created_ms, when, sizeof(when));
	json_open(j, NULL, '{');
	json_int(j, "id", (int64_t)t->id);
	json_str(j, "state", t->state);
	json_open(j, "tags", '[');
	tags = xstrdup(t->tags ? t->tags : "");
	for (p = tags; p != NULL && *p != '\0'; p = next) {
		if ((next = strchr(p, '+')) != NULL)
			*next++ = '\0';
		json_str(j, NULL, p);
	}
	free(tags);
	json_close(j, ']');
	json_str(j, "sandbox", t->sandbox);
	json_str(j, "owner", t->owner);
	if (t->delegate != NULL)
		json_str(j, "delegate", t->delegate);
	json_uint_or_null(j, "resource_id", t->resource_id);
	json_str(j, "resource", t->resource_name);
	json_str(j, "created", when[0] ? when : NULL);
	json_str(
	    j, "waiting", t->resource_name == NULL ? t->waiting_reason : NULL);
	json_close(j, '}');
}

static void
ticket_line(void *arg, const struct sched_ticket_info *t)
{
	struct ticket_walk *w = arg;
	char *tags, *res, *wait, *who;

	if (w->json) {
		ticket_json(&w->j, t);
		return;
	}
	tags = ticket_tags(t->tags);
	res = t->resource_name != NULL
		  ? xasprintf(" resource=%s", t->resource_name)
		  : xstrdup("");
	if (t->resource_name == NULL && t->waiting_reason != NULL &&
	    t->waiting_reason[0] != '\0') {
		char *q = quoted(t->waiting_reason);

		wait = xasprintf(" waiting=%s", q);
		free(q);
	} else
		wait = xstrdup("");
	/* After resalloc's fields, so that its users' scripts still match. */
	who = t->owner == NULL ? xstrdup("")
	      : t->delegate == NULL
		  ? xasprintf(" owner=%s", t->owner)
		  : xasprintf(" owner=%s delegate=%s", t->owner, t->delegate);
	answer_line(w->a, xasprintf("%" PRIu64 " - state=%s tags=%s%s%s%s",
			      t->id, t->state, tags, res, who, wait));
	free(who);
	free(tags);
	free(res);
	free(wait);
}

static void
cmd_ticket_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct ticket_walk w;

	(void)ops;
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.json = req->json;
	if (w.json) {
		json_start(&w.j);
		json_open(&w.j, NULL, '[');
	}
	sched_foreach_ticket(s, ticket_line, &w);
	if (w.json) {
		json_close(&w.j, ']');
		a->reply.json = json_finish(&w.j);
	}
	a->reply.ok = true;
}

/* An operator's close: as a client's TicketClose, for admins only. */
static void
cmd_ticket_close(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	uint64_t id;

	(void)ops;
	if (req->n_args != 1 || parse_u64(req->args[0], &id) == -1) {
		answer_fail(a, "give one ticket ID");
		return;
	}
	if (sched_ticket_close(s, id) != 1) {
		answer_fail(a, "no open ticket %" PRIu64, id);
		return;
	}
	log_info("control: ticket %" PRIu64 " closed by an operator", id);
	a->reply.ok = true;
}

/* ---- pools -------------------------------------------------------------- */

struct pool_walk {
	struct answer *a;
	struct json j;
	bool json;
};

static void
pool_json(struct json *j, const struct sched_pool_view *v)
{
	char when[32];

	iso_time(v->last_start_ms, when, sizeof(when));
	json_open(j, NULL, '{');
	json_str(j, "name", v->name);
	json_bool(j, "configured", v->conf != NULL);
	json_int(j, "max", v->conf ? v->conf->max : 0);
	json_int(j, "max_prealloc", v->conf ? v->conf->max_prealloc : 0);
	json_int(j, "max_starting", v->conf ? v->conf->max_starting : 0);
	json_bool(j, "paused", v->paused);
	json_int(j, "starting", (int64_t)v->starting);
	json_int(j, "free", (int64_t)v->free);
	json_int(j, "released", (int64_t)v->released);
	json_int(j, "taken", (int64_t)v->taken);
	json_int(j, "releasing", (int64_t)v->releasing);
	json_int(j, "deleting", (int64_t)v->deleting);
	json_int(j, "waiting", (int64_t)v->waiting);
	json_int(j, "starts_ok", (int64_t)v->starts_ok);
	json_int(j, "starts_failed", (int64_t)v->starts_failed);
	json_member(j, "start_ms_avg");
	fprintf(j->f, "%.1f", v->start_ms_avg);
	json_str(j, "last_start", when[0] ? when : NULL);
	json_close(j, '}');
}

static void
pool_line(void *arg, const struct sched_pool_view *v)
{
	struct pool_walk *w = arg;

	if (w->json) {
		pool_json(&w->j, v);
		return;
	}
	answer_line(w->a,
	    xasprintf(
		"%s max=%lld starting=%zu free=%zu "
		"released=%zu taken=%zu releasing=%zu deleting=%zu waiting=%zu%s%s",
		v->name, v->conf ? (long long)v->conf->max : 0LL, v->starting,
		v->free, v->released, v->taken, v->releasing, v->deleting,
		v->waiting, v->paused ? " paused" : "",
		v->conf ? "" : " unconfigured"));
}

static void
cmd_pool_list(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	struct pool_walk w;

	(void)ops;
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.json = req->json;
	if (w.json) {
		json_start(&w.j);
		json_open(&w.j, NULL, '[');
	}
	sched_foreach_pool(s, pool_line, &w);
	if (w.json) {
		json_close(&w.j, ']');
		a->reply.json = json_finish(&w.j);
	}
	a->reply.ok = true;
}

/* The one pool argument of REQ, or NULL with the failure in A. */
static const char *
pool_arg(const Resbus__V1__ControlRequest *req, struct answer *a)
{
	if (req->n_args != 1 || req->args[0][0] == '\0') {
		answer_fail(a, "give one pool name");
		return NULL;
	}
	return req->args[0];
}

static void
pool_set_paused(struct sched *s, const Resbus__V1__ControlRequest *req,
    struct answer *a, bool paused)
{
	const char *pool;

	if ((pool = pool_arg(req, a)) == NULL)
		return;
	if (sched_pool_pause(s, pool, paused) != 1) {
		answer_fail(a, "Unknown pool: %s", pool);
		return;
	}
	a->reply.ok = true;
}

static void
cmd_pool_pause(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)ops;
	pool_set_paused(s, req, a, true);
}

static void
cmd_pool_resume(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	(void)ops;
	pool_set_paused(s, req, a, false);
}

static void
cmd_pool_drain(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	const char *pool;

	(void)ops;
	if ((pool = pool_arg(req, a)) == NULL)
		return;
	if (sched_pool_drain(s, pool) != 1) {
		answer_fail(a, "Unknown pool: %s", pool);
		return;
	}
	a->reply.ok = true;
}

/* Which broker answers: the active one, since when, with which epoch. */
static void
cmd_broker_status(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	char *text, *line, *save = NULL;

	(void)s;
	(void)req;
	if (ops->status == NULL) {
		answer_fail(a, "no status to give");
		return;
	}
	text = ops->status(ops->ctx);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		answer_line(a, xstrdup(line));
	free(text);
	a->reply.ok = true;
}

static void
cmd_reload(struct sched *s, const Resbus__V1__ControlRequest *req,
    const struct control_ops *ops, struct answer *a)
{
	char err[1024];

	(void)s;
	(void)req;
	if (ops->reload(ops->ctx, err, sizeof(err)) == -1) {
		answer_fail(a, "pools.yaml not reloaded: %s", err);
		return;
	}
	a->reply.ok = true;
}

static const struct control_cmd control_cmds[] = {
    {"resource-list", false, cmd_resource_list},
    {"resource-info", false, cmd_resource_info},
    {"resource-delete", true, cmd_resource_delete},
    {"ticket-list", false, cmd_ticket_list},
    {"ticket-close", true, cmd_ticket_close},
    {"pool-list", false, cmd_pool_list},
    {"pool-pause", true, cmd_pool_pause},
    {"pool-resume", true, cmd_pool_resume},
    {"pool-drain", true, cmd_pool_drain},
    {"reload", true, cmd_reload},
    {"broker-status", false, cmd_broker_status},
};

/* Each line of TEXT after "NAME: "; caller frees. */
static char *
control_prefix_lines(const char *name, const char *text)
{
	char *out = xstrdup(""), *t;
	const char *p, *nl;

	for (p = text; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		t = xasprintf("%s%s%s: %.*s", out, *out ? "\n" : "", name,
		    (int)(nl - p), p);
		free(out);
		out = t;
	}
	return out;
}

void
control_handle(struct sched *s, const struct conf_server *server,
    const struct bus_delivery *d, const struct control_ops *ops)
{
	Resbus__V1__ControlRequest *req;
	const struct control_cmd *cmd = NULL;
	const char *user;
	struct answer a;
	char *error = NULL;
	size_t i;

	memset(&a, 0, sizeof(a));
	resbus__v1__control_reply__init(&a.reply);
	user = d->user_id != NULL ? d->user_id : "";
	req =
	    (Resbus__V1__ControlRequest *)msg_unpack(d->type, d->body, d->len);
	if (req == NULL ||
	    req->base.descriptor != &resbus__v1__control_request__descriptor) {
		error = xasprintf("not a resbus.v1.ControlRequest");
		goto reply;
	}
	for (i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]); i++)
		if (strcmp(control_cmds[i].name, req->command) == 0)
			cmd = &control_cmds[i];
	if (cmd == NULL) {
		error = xasprintf("unknown command \"%s\"", req->command);
		goto reply;
	}
	if (cmd->mutating && !ops->is_admin(ops->ctx, user)) {
		log_warnx("control: %s refused to user \"%s\" (not in admins)",
		    cmd->name, user);
		error = xasprintf("%s: user \"%s\" is not one of the admins "
				  "in server.yaml",
		    cmd->name, user[0] ? user : "(none)");
		goto reply;
	}
	log_info("control: %s by \"%s\"", cmd->name, user);
	a.admin = ops->is_admin(ops->ctx, user);
	cmd->fn(s, req, ops, &a);
	if (a.error != NULL) {
		error = xasprintf("%s: %s", cmd->name, a.error);
		log_info("control: %s", error);
	} else if (a.warning != NULL) {
		error = control_prefix_lines(cmd->name, a.warning);
		a.reply.error = error;
	}
reply:
	if (a.error != NULL || !a.reply.ok) {
		a.reply.ok = false;
		a.reply.error =
		    error != NULL ? error : (char *)"command failed";
	}
	a.reply.lines = a.lines;
	a.reply.n_lines = a.nlines;
	ops->reply(ops->ctx, d, &a.reply.base);
	for (i = 0; i < a.nlines; i++)
		free(a.lines[i]);
	free(a.lines);
	if (a.reply.json != NULL && a.reply.json != protobuf_c_empty_string)
		free(a.reply.json);
	free(a.error);
	free(a.warning);
	free(error);
	if (req != NULL)
		msg_free(&req->base);
}
