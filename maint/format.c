/*
 * format -- resbusd's answers as resbus-maint prints them.
 *
 * resbusd sends data (ControlReply's rows); this file makes of it
 * resalloc-maint's lines, which scripts parse, or JSON.  The JSON values
 * are json-c objects, printed the way resalloc-maint's Python prints
 * them (json.dumps(..., indent=4)): four-space indentation, "," at the
 * end of a line and ": " after a key, and every character outside
 * printable ASCII (DEL too) as a \u escape, so the output is plain ASCII
 * whatever a driver printed.  json-c's own
 * printer has no such layout, hence the small one here.
 *
 * Every kind of row has its line and its JSON; maint_print walks the
 * rows of an answer once, whichever kind they are.
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "resbus.pb-c.h"
#include "util.h"
#include "maint.h"

/* ---- values --------------------------------------------------------- */

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

/* MS as a JSON ISO 8601 string, or null for 0. */
static json_object *
json_time(int64_t ms)
{
	char when[32];

	iso_time(ms, when, sizeof(when));
	return when[0] ? json_object_new_string(when) : NULL;
}

/* S as a JSON string, or null for "" (resbusd's "none"). */
static json_object *
json_text(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* V as a JSON number, or null for 0 (resbusd's "none"). */
static json_object *
json_id(uint64_t v)
{
	return v != 0 ? json_object_new_int64((int64_t)v) : NULL;
}

static json_object *
json_strings(char **v, size_t n)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* A resource's data as resalloc-maint shows it: stripped of blanks at
 * both ends (Python's str.strip()), into *P and *LEN. */
static void
data_stripped(const Resbus__V1__ControlResource *r, const char **p, size_t *len)
{
	const char *s = (const char *)r->data.data;
	size_t n = r->data.len;

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

char *
resource_data_utf8(const Resbus__V1__ControlResource *r)
{
	const unsigned char *p;
	const char *s;
	char *out, *o;
	size_t len, n;
	uint32_t cp;

	data_stripped(r, &s, &len);
	p = (const unsigned char *)s;
	/* An invalid byte (1) becomes U+FFFD (3). */
	out = o = xmalloc(3 * len + 1);
	while (len > 0) {
		if ((n = utf8_decode(p, len, &cp)) == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		} else {
			memcpy(o, p, n);
			o += n;
		}
		p += n;
		len -= n;
	}
	*o = '\0';
	return out;
}

/* ---- rows: a line and a JSON object each ---------------------------- */

static void
resource_line(const void *row)
{
	const Resbus__V1__ControlResource *r = row;
	size_t i;

	printf("%" PRIu64 " - %s pool=%s tags=", r->id, r->name, r->pool);
	for (i = 0; i < r->n_tags; i++)
		printf("%s%s", i ? "," : "", r->tags[i]);
	printf(" status=%s releases=%d ticket=", r->state, (int)r->releases);
	if (r->ticket_id != 0)
		printf("%" PRIu64 "\n", r->ticket_id);
	else
		printf("NULL\n");
}

/* R as JSON; its data only when shown (to admins). */
static json_object *
resource_json(const void *row)
{
	const Resbus__V1__ControlResource *r = row;
	json_object *o = json_object_new_object();
	const char *data;
	size_t len;

	json_object_object_add(o, "id", json_object_new_int64((int64_t)r->id));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "pool", json_object_new_string(r->pool));
	json_object_object_add(o, "state", json_object_new_string(r->state));
	if (r->data_shown) {
		data_stripped(r, &data, &len);
		json_object_object_add(o, "data",
		    r->no_data ? NULL
			       : json_object_new_string_len(data, (int)len));
	}
	json_object_object_add(o, "ticket_id", json_id(r->ticket_id));
	json_object_object_add(o, "sandbox", json_text(r->sandbox));
	json_object_object_add(o, "releases", json_object_new_int(r->releases));
	json_object_object_add(
	    o, "check_failed", json_object_new_int(r->check_failed));
	json_object_object_add(
	    o, "id_in_pool", json_object_new_int(r->id_in_pool));
	json_object_object_add(o, "created", json_time(r->created_ms));
	json_object_object_add(o, "tags", json_strings(r->tags, r->n_tags));
	return o;
}

/* REASON in double quotes, with " and \ escaped. */
static void
print_quoted(const char *reason)
{
	putchar('"');
	for (; *reason != '\0'; reason++) {
		if (*reason == '"' || *reason == '\\')
			putchar('\\');
		putchar(*reason);
	}
	putchar('"');
}

static void
ticket_line(const void *row)
{
	const Resbus__V1__ControlTicket *t = row;
	size_t i;

	printf("%" PRIu64 " - state=%s tags=", t->id, t->state);
	for (i = 0; i < t->n_tags; i++)
		printf("%s%s", i ? "," : "", t->tags[i]);
	if (t->resource[0] != '\0')
		printf(" resource=%s", t->resource);
	/* After resalloc's fields, so that its users' scripts still match. */
	if (t->owner[0] != '\0')
		printf(" owner=%s", t->owner);
	if (t->owner[0] != '\0' && t->delegate[0] != '\0')
		printf(" delegate=%s", t->delegate);
	if (t->resource[0] == '\0' && t->waiting[0] != '\0') {
		printf(" waiting=");
		print_quoted(t->waiting);
	}
	putchar('\n');
}

static json_object *
ticket_json(const void *row)
{
	const Resbus__V1__ControlTicket *t = row;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64((int64_t)t->id));
	json_object_object_add(o, "state", json_object_new_string(t->state));
	json_object_object_add(o, "tags", json_strings(t->tags, t->n_tags));
	json_object_object_add(o, "sandbox", json_text(t->sandbox));
	json_object_object_add(o, "owner", json_text(t->owner));
	if (t->delegate[0] != '\0')
		json_object_object_add(o, "delegate", json_text(t->delegate));
	json_object_object_add(o, "resource_id", json_id(t->resource_id));
	json_object_object_add(o, "resource", json_text(t->resource));
	json_object_object_add(o, "created", json_time(t->created_ms));
	json_object_object_add(o, "waiting",
	    t->resource[0] == '\0' ? json_text(t->waiting) : NULL);
	return o;
}

static void
pool_line(const void *row)
{
	const Resbus__V1__ControlPool *p = row;

	printf("%s max=%" PRId64 " starting=%" PRIu64 " free=%" PRIu64
	       " released=%" PRIu64 " taken=%" PRIu64 " releasing=%" PRIu64
	       " deleting=%" PRIu64 " waiting=%" PRIu64 "%s%s\n",
	    p->name, p->max, p->starting, p->free, p->released, p->taken,
	    p->releasing, p->deleting, p->waiting, p->paused ? " paused" : "",
	    p->configured ? "" : " unconfigured");
}

static json_object *
pool_json(const void *row)
{
	const Resbus__V1__ControlPool *p = row;
	json_object *o = json_object_new_object();
	char avg[64];

	snprintf(avg, sizeof(avg), "%.1f", p->start_ms_avg);
#define COUNT(f)                                                               \
	json_object_object_add(o, #f, json_object_new_int64((int64_t)p->f))
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(
	    o, "configured", json_object_new_boolean(p->configured));
	COUNT(max);
	COUNT(max_prealloc);
	COUNT(max_starting);
	json_object_object_add(o, "paused", json_object_new_boolean(p->paused));
	COUNT(starting);
	COUNT(free);
	COUNT(released);
	COUNT(taken);
	COUNT(releasing);
	COUNT(deleting);
	COUNT(waiting);
	COUNT(starts_ok);
	COUNT(starts_failed);
#undef COUNT
	json_object_object_add(
	    o, "start_ms_avg", json_object_new_double_s(p->start_ms_avg, avg));
	json_object_object_add(o, "last_start", json_time(p->last_start_ms));
	return o;
}

/* The kinds of rows of a ControlReply: where they are, and how shown. */
static const struct row_kind {
	size_t n_off, rows_off;
	void (*line)(const void *row);
	json_object *(*json)(const void *row);
} row_kinds[] = {
    {offsetof(Resbus__V1__ControlReply, n_resources),
	offsetof(Resbus__V1__ControlReply, resources), resource_line,
	resource_json},
    {offsetof(Resbus__V1__ControlReply, n_tickets),
	offsetof(Resbus__V1__ControlReply, tickets), ticket_line, ticket_json},
    {offsetof(Resbus__V1__ControlReply, n_pools),
	offsetof(Resbus__V1__ControlReply, pools), pool_line, pool_json},
};

/* Wall-clock MS as ISO 8601 UTC into BUF, whatever MS is. */
static void
utc(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* broker-status: lines only. */
static void
broker_lines(const Resbus__V1__ControlBroker *b)
{
	char when[40];
	size_t i;

	utc(b->since_ms, when, sizeof(when));
	printf("active: resbusd %s, since %s, epoch %" PRId64 "\n",
	    b->who[0] ? b->who : "(unknown)", when, b->epoch);
	for (i = 0; i < b->n_standbys; i++) {
		utc(b->standbys[i]->since_ms, when, sizeof(when));
		printf("standby: resbusd %s, waiting since %s, heard %.1f s "
		       "ago\n",
		    b->standbys[i]->who, when,
		    (double)b->standbys[i]->heard_ms_ago / 1000.);
	}
	if (b->n_standbys == 0)
		printf("standby: none heard\n");
}

/* ---- JSON, as Python's json.dumps(..., indent=4) writes it ----------- */

/* S (LEN bytes of UTF-8; invalid bytes become U+FFFD) as a JSON string. */
static void
json_print_string(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	putchar('"');
	for (; len > 0; p += n, len -= n) {
		if ((n = utf8_decode(p, len, &cp)) == 0) {
			cp = 0xfffd;
			n = 1;
		}
		if (cp == '"' || cp == '\\')
			printf("\\%c", (int)cp);
		else if (cp == '\n')
			printf("\\n");
		else if (cp == '\r')
			printf("\\r");
		else if (cp == '\t')
			printf("\\t");
		else if (cp == '\b')
			printf("\\b");
		else if (cp == '\f')
			printf("\\f");
		else if (cp >= 0x10000) {
			cp -= 0x10000;
			printf("\\u%04x\\u%04x",
			    (unsigned)(0xd800 + (cp >> 10)),
			    (unsigned)(0xdc00 + (cp & 0x3ff)));
		} else if (cp < 0x20 || cp > 0x7e)
			printf("\\u%04x", (unsigned)cp);
		else
			putchar((int)cp);
	}
	putchar('"');
}

static void
json_indent(int depth)
{
	int i;

	for (i = 0; i < depth; i++)
		fputs("    ", stdout);
}

static void
json_print(json_object *o, int depth)
{
	size_t i, n;
	bool first = true;

	switch (json_object_get_type(o)) {
	case json_type_null:
		fputs("null", stdout);
		break;
	case json_type_boolean:
		fputs(json_object_get_boolean(o) ? "true" : "false", stdout);
		break;
	case json_type_int:
		printf("%" PRId64, json_object_get_int64(o));
		break;
	case json_type_double: /* as made (json_object_new_double_s) */
		fputs(json_object_to_json_string(o), stdout);
		break;
	case json_type_string:
		json_print_string(json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		n = json_object_array_length(o);
		putchar('[');
		for (i = 0; i < n; i++) {
			fputs(i ? ",\n" : "\n", stdout);
			json_indent(depth + 1);
			json_print(json_object_array_get_idx(o, i), depth + 1);
		}
		if (n > 0) {
			putchar('\n');
			json_indent(depth);
		}
		putchar(']');
		break;
	case json_type_object:
		putchar('{');
		json_object_object_foreach(o, key, val)
		{
			fputs(first ? "\n" : ",\n", stdout);
			json_indent(depth + 1);
			json_print_string(key, strlen(key));
			fputs(": ", stdout);
			json_print(val, depth + 1);
			first = false;
		}
		if (!first) {
			putchar('\n');
			json_indent(depth);
		}
		putchar('}');
		break;
	}
}

/* ---- the one walk --------------------------------------------------- */

void
maint_print(const Resbus__V1__ControlReply *r, enum maint_output out)
{
	const struct row_kind *k;
	json_object *list = NULL;
	const char *base = (const char *)r;
	void *const *rows;
	size_t i, n;

	if (out != OUT_LINES)
		list = json_object_new_array();
	for (k = row_kinds;
	     k < row_kinds + sizeof(row_kinds) / sizeof(row_kinds[0]); k++) {
		n = *(const size_t *)(base + k->n_off);
		rows = *(void *const *const *)(base + k->rows_off);
		for (i = 0; i < n; i++)
			if (list != NULL)
				json_object_array_add(list, k->json(rows[i]));
			else
				k->line(rows[i]);
	}
	if (r->broker != NULL && out == OUT_LINES)
		broker_lines(r->broker);
	if (list == NULL)
		return;
	if (out == OUT_JSON_LIST) {
		json_print(list, 0);
		putchar('\n');
	} else if (json_object_array_length(list) > 0) {
		json_print(json_object_array_get_idx(list, 0), 0);
		putchar('\n');
	}
	json_object_put(list);
}
