/*
 * json -- the JSON shapes the broker's faces share: the status API
 * (/api/v1/tickets) and the notifications describe a ticket the same way.
 * json-c objects; the caller owns what is returned (json_object_put).
 */
#ifndef RESBUS_JSON_H
#define RESBUS_JSON_H

#include <json-c/json.h>

struct sched_ticket_info;

/* A string, or JSON null for NULL. */
json_object *json_str_or_null(const char *s);
/* The tags of a canonical tag-set key ("a+b+c") as a JSON list. */
json_object *json_key_tags(const char *key);
/*
 * Ticket T: id, state (STATE if not NULL, else T's own), tags, sandbox,
 * owner, class, resource {id, name, pool} or null, and waiting_reason and
 * closed_reason when T has them.
 */
json_object *json_ticket(const struct sched_ticket_info *t, const char *state);

#endif
