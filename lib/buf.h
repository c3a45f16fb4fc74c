/*
 * buf -- a growing, NUL-ended byte buffer for writing documents.
 *
 * Start with struct buf b = {NULL, 0, 0}; every add keeps b.s NUL-ended
 * and grows it by doubling (xrealloc: no failure to handle).  The caller
 * owns b.s and frees it; b.len counts the bytes without the NUL.
 */
#ifndef RESBUS_BUF_H
#define RESBUS_BUF_H

#include <stddef.h>

struct buf {
	char *s;
	size_t len, cap;
};

/* Appends the N bytes at S. */
void buf_add(struct buf *b, const char *s, size_t n);
/* Appends the string S. */
void buf_puts(struct buf *b, const char *s);
/* Appends what printf would write, whatever its length. */
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
