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
/* A key names a queue, "<prefix>.ticket.<key>", and AMQP names are at
 * most 255 bytes: the key keeps well under that, prefix included. */
#define TAGSET_KEY_MAX 200
/* Significant digits of a numeric requirement's integer (no overflow). */
#define TAG_MAX_DIGITS 18

/* [A-Za-z0-9_.:=<>-]{1,64}, not starting with '.' or '-'.  '=' '<' '>'
 * make numeric tags: a pool's `memory=64`, a ticket's `memory>=32`.  A
 * tag with '<' or '>' is a requirement NAME OP INTEGER (OP one of <, <=,
 * >, >=; at most TAG_MAX_DIGITS significant digits). */
bool tag_valid(const char *tag);
/* A sandbox: printable ASCII without spaces or quotes, 1..128 bytes. */
bool sandbox_valid(const char *sandbox);

/*
 * The canonical key of NTAGS tags: numeric requirements without leading
 * zeros (`memory>=0032` is `memory>=32`), sorted, de-duplicated,
 * '+'-joined.  Returns a fresh string (caller frees), or NULL and sets
 * *bad to the first invalid tag (borrowed from TAGS) when one is invalid,
 * or when there are no tags, more than TAGSET_MAX_TAGS, or the key would
 * be longer than TAGSET_KEY_MAX bytes (then *bad is NULL).
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
