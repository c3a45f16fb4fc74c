/*
 * histview -- the broker's history (history.h) as the status page draws
 * it and as /api/v1/history gives it.
 *
 * The page gets server-side SVG charts (svg.h): the tickets waiting per
 * tag set, the time from ticket to READY (median and maximum per
 * interval), and one chart per pool of its resources by state.  The API
 * gets the same numbers, sample by sample.
 */
#ifndef RESBUS_HISTVIEW_H
#define RESBUS_HISTVIEW_H

#include <json-c/json.h>

struct history;

/* The "History" section of the status page, HTML.  Caller frees. */
char *histview_html(const struct history *h);
/* The body of /api/v1/history.  Caller releases (json_object_put). */
json_object *histview_json(const struct history *h);

#endif
