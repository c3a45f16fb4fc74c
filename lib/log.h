/*
 * log -- one line per event, to stderr and optionally a file.
 *
 * Modelled on OpenSMTPD's log.c: log_warn() appends strerror(errno),
 * log_warnx() does not; fatal()/fatalx() log and exit(1).  fatal is for
 * start-up, broken invariants and out-of-memory only.
 */
#ifndef RESBUS_LOG_H
#define RESBUS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the program name and level; logs go to stderr. */
void log_init(const char *progname, enum log_level level);
/* Also appends every line to PATH (opened in append mode); 0 or -1. */
int log_open_file(const char *path) __attribute__((warn_unused_result));
void log_set_level(enum log_level level);
/* Whether a line of LEVEL would be written (to skip building one). */
bool log_enabled(enum log_level level);
/* Parses "error", "warning", "info", "debug" (any case); -1 if unknown. */
int log_level_parse(const char *name);
/*
 * A daemon's logging as its configuration says: debug when DEBUG (its
 * -d option), else the level NAME (NULL: info; unknown: info, with a
 * warning); and, when DIR is not NULL, every line also to DIR/FILE
 * (DIR made first).  fatal() when the file cannot be had: at start-up.
 */
void log_setup(int debug, const char *name, const char *dir, const char *file);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * One line at LEVEL whose message is PREFIX, ": " and FMT: for a
 * module's own helpers that name the object a line is about ("resource
 * 12 x_00000012", "ticket 7") the same way on every line.
 */
void log_vprefixed(enum log_level level, const char *prefix, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
