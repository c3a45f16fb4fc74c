/*
 * fuzz_tags -- libFuzzer target for tags, sandboxes and tag-set keys.
 *
 * A ticket's tags come from its client and its tag-set key becomes part
 * of an AMQP queue name and routing key, so the key must be canonical
 * (one key per set, whatever the order or the spelling of numbers), must
 * split back into the tags it was made of, and must stay short enough
 * for a queue name.  The input is one string per line: each line is
 * checked as a tag and as a sandbox against the character sets tags.h
 * documents, the lines together as a tag set, and the whole input as a
 * key given to tagset_split().
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tags.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* More lines than a tag set may hold, to reach that refusal too. */
#define FUZZ_MAX_LINES (TAGSET_MAX_TAGS + 4)

/* tags.h's rule for a tag, written out again from its comment. */
static bool
fuzz_tag_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > TAG_MAX_LEN || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.:=<>-") == n;
}

/* tags.h's rule for a sandbox, written out again from its comment. */
static bool
fuzz_sandbox_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 128)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr("'\"\\`$", c) != NULL)
			return false;
	}
	return true;
}

static int
fuzz_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The length of TAGS sorted, de-duplicated and '+'-joined as given. */
static size_t
fuzz_joined_len(char *const *tags, size_t ntags)
{
	char **sorted;
	size_t i, len = 0;

	sorted = xcalloc(ntags, sizeof(*sorted));
	memcpy(sorted, tags, ntags * sizeof(*sorted));
	qsort(sorted, ntags, sizeof(*sorted), fuzz_cmp);
	for (i = 0; i < ntags; i++)
		if (i == 0 || strcmp(sorted[i - 1], sorted[i]) != 0)
			len += strlen(sorted[i]) + (len > 0);
	free(sorted);
	return len;
}

/* The key of TAGS, which must be KEY (the set's canonical key). */
static void
fuzz_same_key(char *const *tags, size_t ntags, const char *key)
{
	const char *bad;
	char *again;

	again = tagset_key(tags, ntags, &bad);
	assert(again != NULL);
	assert(strcmp(again, key) == 0);
	free(again);
}

/* What a key from tagset_key() may be relied on to be. */
static void
fuzz_check_key(char *const *tags, size_t ntags, const char *key)
{
	char **split, **perm;
	size_t i, nsplit;

	assert(key[0] != '\0');
	/* Short enough for resbus.ticket.<key> in a 255-byte queue name. */
	assert(strlen(key) <= TAGSET_KEY_MAX);
	assert(strlen(key) <= 200);
	assert(tagset_split(key, &split, &nsplit) == 0);
	assert(nsplit >= 1 && nsplit <= ntags);
	for (i = 0; i < nsplit; i++) {
		assert(tag_valid(split[i]));
		assert(strchr(split[i], '+') == NULL);
		/* sorted, de-duplicated */
		if (i > 0)
			assert(strcmp(split[i - 1], split[i]) < 0);
	}
	/* The key of the key's own tags is the key: it is canonical. */
	fuzz_same_key(split, nsplit, key);
	tagset_free_list(split, nsplit);

	/* The order the tags came in does not matter. */
	perm = xcalloc(ntags, sizeof(*perm));
	for (i = 0; i < ntags; i++)
		perm[i] = tags[ntags - 1 - i];
	fuzz_same_key(perm, ntags, key);
	for (i = 0; i < ntags; i++)
		perm[i] = tags[(i + 1) % ntags];
	fuzz_same_key(perm, ntags, key);
	free(perm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *lines[FUZZ_MAX_LINES], **split, *key, *text;
	const char *p, *end, *nl, *bad;
	size_t i, n, nsplit;
	bool all_valid;

	/* Each line as a tag and as a sandbox. */
	n = 0;
	all_valid = true;
	end = (const char *)data + size;
	for (p = (const char *)data; p < end && n < FUZZ_MAX_LINES;
	    p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		lines[n] = xstrndup(p, (size_t)(nl - p));
		/* '<' and '>' make a requirement, which has a grammar too. */
		if (strpbrk(lines[n], "<>") == NULL)
			assert(tag_valid(lines[n]) == fuzz_tag_ok(lines[n]));
		else if (tag_valid(lines[n]))
			assert(fuzz_tag_ok(lines[n]));
		assert(sandbox_valid(lines[n]) == fuzz_sandbox_ok(lines[n]));
		if (!tag_valid(lines[n]))
			all_valid = false;
		n++;
	}

	/* The lines as one tag set. */
	key = tagset_key(lines, n, &bad);
	if (key != NULL) {
		assert(all_valid && n >= 1 && n <= TAGSET_MAX_TAGS);
		fuzz_check_key(lines, n, key);
		free(key);
	} else if (bad != NULL) {
		assert(!tag_valid(bad));
		for (i = 0; i < n && lines[i] != bad; i++)
			continue;
		assert(i < n);
	} else if (all_valid && n >= 1 && n <= TAGSET_MAX_TAGS) {
		/*
		 * Only the bound on the key's length refuses valid tags, and
		 * the canonical form is never longer than the tags as given.
		 */
		assert(fuzz_joined_len(lines, n) > TAGSET_KEY_MAX);
	}
	for (i = 0; i < n; i++)
		free(lines[i]);

	/* The whole input as a key. */
	text = xstrndup((const char *)data, size);
	if (tagset_split(text, &split, &nsplit) == 0) {
		assert(nsplit >= 1 && nsplit <= TAGSET_MAX_TAGS);
		for (i = 0; i < nsplit; i++)
			assert(tag_valid(split[i]));
		if ((key = tagset_key(split, nsplit, &bad)) != NULL) {
			fuzz_check_key(split, nsplit, key);
			free(key);
		} else {
			assert(bad == NULL);
		}
		tagset_free_list(split, nsplit);
	}
	free(text);
	return 0;
}
