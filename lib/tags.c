/*
 * tags -- validation of client strings and canonical tag-set keys.
 *
 * The character sets are strict on purpose: a tag becomes part of an AMQP
 * queue name and routing key, a sandbox reaches driver commands through
 * the environment.  Neither may carry shell or path syntax.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tags.h"
#include "util.h"

static bool
tag_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	       c == '=' || c == '-' || c == '<' || c == '>';
}

/*
 * Where a numeric requirement's operator ('<' or '>', maybe followed by
 * '=') starts in TAG, or NULL for a plain tag.
 */
static const char *
tag_requirement_op(const char *tag)
{
	return strpbrk(tag, "<>");
}

/*
 * A numeric requirement is NAME OP INTEGER: a non-empty name without
 * '=', one operator (<, <=, >, >=) and an integer of at most
 * TAG_MAX_DIGITS significant digits, so that it never overflows.
 */
static bool
tag_requirement_valid(const char *tag, const char *op)
{
	const char *v;
	size_t digits = 0;

	if (op == tag || memchr(tag, '=', (size_t)(op - tag)) != NULL)
		return false;
	v = op + (op[1] == '=' ? 2 : 1);
	if (*v == '-')
		v++;
	if (*v == '\0')
		return false;
	while (*v == '0' && v[1] != '\0')
		v++;
	for (; *v != '\0'; v++)
		if (*v < '0' || *v > '9' || ++digits > TAG_MAX_DIGITS)
			return false;
	return true;
}

bool
tag_valid(const char *tag)
{
	const char *op;
	size_t n;

	if (tag == NULL || tag[0] == '\0' || tag[0] == '.' || tag[0] == '-')
		return false;
	for (n = 0; tag[n] != '\0'; n++)
		if (n >= TAG_MAX_LEN || !tag_char(tag[n]))
			return false;
	if ((op = tag_requirement_op(tag)) != NULL)
		return tag_requirement_valid(tag, op);
	return true;
}

bool
sandbox_valid(const char *sandbox)
{
	size_t n;

	if (sandbox == NULL || sandbox[0] == '\0')
		return false;
	for (n = 0; sandbox[n] != '\0'; n++) {
		unsigned char c = (unsigned char)sandbox[n];

		if (n >= 128 || c <= ' ' || c >= 0x7f || c == '\'' ||
		    c == '"' || c == '\\' || c == '`' || c == '$')
			return false;
	}
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * TAG in canonical form into BUF (TAG_MAX_LEN + 1 bytes): a numeric
 * requirement's integer loses its leading zeros and the sign of zero,
 * so that `memory>=0032` and `memory>=32` are one tag.  TAG is valid.
 */
static void
tag_canonical(const char *tag, char *buf)
{
	const char *op = tag_requirement_op(tag), *v;
	size_t n;
	bool neg;

	if (op == NULL) {
		snprintf(buf, TAG_MAX_LEN + 1, "%s", tag);
		return;
	}
	v = op + (op[1] == '=' ? 2 : 1);
	n = (size_t)(v - tag);
	memcpy(buf, tag, n);
	neg = *v == '-';
	if (neg)
		v++;
	while (*v == '0' && v[1] != '\0')
		v++;
	if (neg && strcmp(v, "0") != 0)
		buf[n++] = '-';
	snprintf(buf + n, TAG_MAX_LEN + 1 - n, "%s", v);
}

char *
tagset_key(char *const *tags, size_t ntags, const char **bad)
{
	char canon[TAGSET_MAX_TAGS][TAG_MAX_LEN + 1];
	const char *sorted[TAGSET_MAX_TAGS];
	size_t i, n, len;
	char *key, *p;

	*bad = NULL;
	if (ntags == 0 || ntags > TAGSET_MAX_TAGS)
		return NULL;
	for (i = 0; i < ntags; i++) {
		if (!tag_valid(tags[i])) {
			*bad = tags[i];
			return NULL;
		}
		tag_canonical(tags[i], canon[i]);
		sorted[i] = canon[i];
	}
	qsort(sorted, ntags, sizeof(sorted[0]), cmp_str);
	len = 0;
	for (i = 0; i < ntags; i++)
		len += strlen(sorted[i]) + 1;
	key = p = xmalloc(len);
	for (i = 0, n = 0; i < ntags; i++) {
		if (n > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		if (n++ > 0)
			*p++ = '+';
		len = strlen(sorted[i]);
		memcpy(p, sorted[i], len);
		p += len;
	}
	*p = '\0';
	if ((size_t)(p - key) > TAGSET_KEY_MAX) {
		free(key);
		return NULL;
	}
	return key;
}

int
tagset_split(const char *key, char ***tags, size_t *ntags)
{
	char **list = NULL;
	const char *start, *plus;
	size_t n = 0;

	*tags = NULL;
	*ntags = 0;
	if (key == NULL || *key == '\0')
		return -1;
	for (start = key;; start = plus + 1) {
		plus = strchr(start, '+');
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n] = plus ? xstrndup(start, (size_t)(plus - start))
			       : xstrdup(start);
		if (!tag_valid(list[n++]) || n > TAGSET_MAX_TAGS) {
			tagset_free_list(list, n);
			return -1;
		}
		if (plus == NULL)
			break;
	}
	*tags = list;
	*ntags = n;
	return 0;
}

void
tagset_free_list(char **tags, size_t ntags)
{
	strv_free(tags, ntags);
}
