/*
 * filewatch -- a configuration file that a daemon reads again when it
 * changes on disk, as resalloc applies an edited pools.yaml without a
 * signal.
 *
 * Once the file has stayed the same for a second (so that an editor's
 * truncate-then-write is read whole), the daemon gets SIGHUP, whose own
 * handler does the reload; a file missing or empty then is taken for
 * one being written and left alone (SIGHUP by hand applies it).
 */
#ifndef RESBUS_FILEWATCH_H
#define RESBUS_FILEWATCH_H

#include <ev.h>

struct filewatch {
	ev_stat stat;
	ev_timer settle;
};

/* Watches PATH (borrowed: it must outlive the watch) on LOOP; the watch
 * itself keeps no loop running (a reload due does, for its second). */
void filewatch_start(
    struct ev_loop *loop, struct filewatch *fw, const char *path);
void filewatch_stop(struct ev_loop *loop, struct filewatch *fw);

#endif
