/*
 * json -- a ticket as JSON, one shape for every face that shows one.
 */
#include "config.h"

#include <string.h>

#include "json.h"
#include "sched.h"

json_object *
json_str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

json_object *
json_key_tags(const char *key)
{
	json_object *a = json_object_new_array();
	const char *p = key, *plus;

	while (p != NULL && *p != '\0') {
		plus = strchr(p, '+');
		if (plus == NULL) {
			json_object_array_add(a, json_object_new_string(p));
			break;
		}
		json_object_array_add(
		    a, json_object_new_string_len(p, (int)(plus - p)));
		p = plus + 1;
	}
	return a;
}

json_object *
json_ticket(const struct sched_ticket_info *t, const char *state)
{
	json_object *o = json_object_new_object(), *res = NULL;

	json_object_object_add(o, "id", json_object_new_uint64(t->id));
	json_object_object_add(
	    o, "state", json_object_new_string(state ? state : t->state));
	json_object_object_add(o, "tags", json_key_tags(t->tags));
	json_object_object_add(o, "sandbox", json_str_or_null(t->sandbox));
	json_object_object_add(o, "owner", json_str_or_null(t->owner));
	if (t->delegate != NULL)
		json_object_object_add(
		    o, "delegate", json_object_new_string(t->delegate));
	json_object_object_add(o, "class", json_str_or_null(t->class_));
	if (t->resource_id != 0) {
		res = json_object_new_object();
		json_object_object_add(
		    res, "id", json_object_new_uint64(t->resource_id));
		json_object_object_add(
		    res, "name", json_str_or_null(t->resource_name));
		json_object_object_add(
		    res, "pool", json_str_or_null(t->resource_pool));
	}
	json_object_object_add(o, "resource", res);
	if (t->waiting_reason != NULL)
		json_object_object_add(o, "waiting_reason",
		    json_object_new_string(t->waiting_reason));
	if (t->closed_reason != NULL)
		json_object_object_add(o, "closed_reason",
		    json_object_new_string(t->closed_reason));
	return o;
}
