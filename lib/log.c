/*
 * log -- one line per event: "LEVEL time prog[pid]: message".
 *
 * Lines go to stderr and, once log_open_file() succeeded, to a file in
 * append mode as well.  Each line is formatted into one buffer and written
 * with a single write(2) so that lines from several processes sharing a
 * file do not interleave.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *log_progname = "resbus";
static enum log_level log_level = LOG_LEVEL_INFO;
static int log_fd = -1;

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "ERROR",
    [LOG_LEVEL_WARN] = "WARN",
    [LOG_LEVEL_INFO] = "INFO",
    [LOG_LEVEL_DEBUG] = "DEBUG",
};

void
log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_level = level;
}

int
log_open_file(const char *path)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (log_fd != -1)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *name)
{
	if (strcasecmp(name, "error") == 0 || strcasecmp(name, "critical") == 0)
		return LOG_LEVEL_ERROR;
	if (strcasecmp(name, "warning") == 0 || strcasecmp(name, "warn") == 0)
		return LOG_LEVEL_WARN;
	if (strcasecmp(name, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcasecmp(name, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	return -1;
}

void
log_setup(int debug, const char *name, const char *dir, const char *file)
{
	char *path;
	int level = LOG_LEVEL_INFO;

	if (debug)
		level = LOG_LEVEL_DEBUG;
	else if (name != NULL && (level = log_level_parse(name)) == -1) {
		log_warnx("unknown loglevel '%s', using info", name);
		level = LOG_LEVEL_INFO;
	}
	log_set_level((enum log_level)level);
	if (dir == NULL)
		return;
	if (mkdir_p(dir) == -1)
		fatal("cannot create log directory %s", dir);
	path = xasprintf("%s/%s", dir, file);
	if (log_open_file(path) == -1)
		fatal("cannot open %s", path);
	free(path);
}

bool
log_enabled(enum log_level level)
{
	return level <= log_level;
}

static void
log_vwrite(enum log_level level, int errnum, const char *prefix,
    const char *fmt, va_list ap)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n,
	    ".%03ldZ %-5s %s[%ld]: ", ts.tv_nsec / 1000000, level_names[level],
	    log_progname, (long)getpid());
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r
						  : sizeof(line) - n - 1;
	if (prefix != NULL) {
		r = snprintf(line + n, sizeof(line) - n, "%s: ", prefix);
		if (r > 0)
			n += (size_t)r < sizeof(line) - n
				 ? (size_t)r
				 : sizeof(line) - n - 1;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r
						  : sizeof(line) - n - 1;
	if (errnum != 0 && n < sizeof(line) - 1) {
		r = snprintf(
		    line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r < sizeof(line) - n
				 ? (size_t)r
				 : sizeof(line) - n - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	if (log_fd != -1)
		(void)!write(log_fd, line, n);
}

#define LOG_BODY(level, errnum)                                                \
	do {                                                                   \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(level, errnum, NULL, fmt, ap);                      \
		va_end(ap);                                                    \
	} while (0)

void
log_vprefixed(
    enum log_level level, const char *prefix, const char *fmt, va_list ap)
{
	log_vwrite(level, 0, prefix, fmt, ap);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_WARN, saved);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_ERROR, saved);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERROR, 0);
	exit(1);
}
