/*
 * util -- allocation that cannot fail, time, and small string helpers
 * shared by every binary.
 */
#ifndef RESBUS_UTIL_H
#define RESBUS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifndef container_of
#define container_of(ptr, type, member)                                        \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

#define RESBUS_DEFAULT_AMQP_URL "amqp://guest:guest@localhost:5672/"
#define RESBUS_DEFAULT_PREFIX "resbus"

/* Out of memory is fatal: these never return NULL.  Caller frees. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
/* A copy of the LEN bytes at P (which may be NULL when LEN is 0), with a
 * NUL after them. */
void *xmemdup(const void *p, size_t len);
/*
 * The code point of the UTF-8 sequence at S (LEN > 0 bytes left) into
 * *CP: the bytes it takes, or 0 for an invalid one (overlong, a
 * surrogate, past U+10FFFF, cut short).
 */
size_t utf8_decode(const void *s, size_t len, uint32_t *cp);
/* Frees the N strings of V, then V. */
void strv_free(char **v, size_t n);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock and monotonic clock in milliseconds. */
int64_t now_wall_ms(void);
int64_t now_mono_ms(void);

/* A random version 4 UUID in its usual hex form into out[37]. */
void uuid_make(char out[37]);

/*
 * The AMQP URL every binary uses: OPTION if set, else $RESBUS_AMQP_URL,
 * else CONFIGURED if set, else the built-in default.  Borrowed strings.
 */
const char *amqp_url_pick(const char *option, const char *configured);

/* Parses a base-10 unsigned integer that fills the whole string. */
int parse_u64(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* mkdir -p PATH (mode 0755 for what it creates); 0 or -1 with errno. */
int mkdir_p(const char *path) __attribute__((warn_unused_result));

/* Standard base64 (RFC 4648) of LEN bytes; caller frees. */
char *base64_encode(const void *data, size_t len);

#endif
