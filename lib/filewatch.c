/*
 * filewatch -- a configuration file read again when it changes on disk.
 */
#include "config.h"

#include <signal.h>

#include "filewatch.h"
#include "log.h"
#include "util.h"

static void
filewatch_changed(struct ev_loop *loop, ev_stat *w, int revents)
{
	struct filewatch *fw = container_of(w, struct filewatch, stat);

	(void)revents;
	ev_timer_stop(loop, &fw->settle);
	ev_timer_set(&fw->settle, 1., 0.);
	ev_timer_start(loop, &fw->settle);
}

static void
filewatch_settled(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct filewatch *fw = container_of(w, struct filewatch, settle);

	(void)revents;
	if (fw->stat.attr.st_nlink == 0 || fw->stat.attr.st_size == 0) {
		log_info("%s is missing or empty: taken for a file being "
			 "written, not applied (SIGHUP applies it)",
		    fw->stat.path);
		return;
	}
	log_info("%s changed, reading it again", fw->stat.path);
	(void)raise(SIGHUP);
}

void
filewatch_start(struct ev_loop *loop, struct filewatch *fw, const char *path)
{
	ev_stat_init(&fw->stat, filewatch_changed, path, 2.);
	ev_stat_start(loop, &fw->stat);
	ev_unref(loop);
	ev_init(&fw->settle, filewatch_settled);
}

void
filewatch_stop(struct ev_loop *loop, struct filewatch *fw)
{
	ev_timer_stop(loop, &fw->settle);
	ev_ref(loop);
	ev_stat_stop(loop, &fw->stat);
}
