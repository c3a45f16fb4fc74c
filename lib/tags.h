/*
 * tags -- tag names and canonical tag-set keys.
 *
 * A tag set's key is its tags sorted, de-duplicated and joined with '+':
 * it names the per-tag-set ticket queue (resbus.ticket.<key>) and is the
 * routing key of a TicketRequest.  Tags, sandboxes and other client
 * strings are checked against a strict character set because they end up
 * in queue names, file names and driver environments.
 */
#ifndef RESBUS_TAGS_H
#define RESBUS_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#define TAG_MAX_LEN 64
#define TAGSET_MAX_TAGS 32

/* [A-Za-z0-9_.:=<>-]{1,64}, not starting with '.' or '-'.  '=' '<' '>'
 * make numeric tags: a pool's `memory=64`, a ticket's `memory>=32`. */
bool tag_valid(const char *tag);
/* A sandbox: printable ASCII without spaces or quotes, 1..128 bytes. */
bool sandbox_valid(const char *sandbox);

/*
 * The canonical key of NTAGS tags: sorted, de-duplicated, '+'-joined.
 * Returns a fresh string (caller frees), or NULL and sets *bad to the
 * first invalid tag (borrowed from TAGS) when one is invalid, or when
 * there are no tags or more than TAGSET_MAX_TAGS (then *bad is NULL).
 */
char *tagset_key(char *const *tags, size_t ntags, const char **bad);

/*
 * Splits a canonical KEY back into tags.  *tags is a fresh array of
 * fresh strings (free with tagset_free_list).  0 or -1 on a bad key.
 */
int tagset_split(const char *key, char ***tags, size_t *ntags)
	__attribute__((warn_unused_result));
void tagset_free_list(char **tags, size_t ntags);

#endif
