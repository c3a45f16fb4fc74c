/*
 * conf_worker -- worker.yaml: one mapping of options, read against the
 * table below; pools_file is then made a path (pools.yaml beside
 * worker.yaml by default, a relative one taken from worker.yaml's
 * directory).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "log.h"
#include "util.h"

static const struct conf_key worker_keys[] = {
    KEY_STR(conf_worker, amqp_url, NULL, conf_check_amqp_url, 0),
    KEY_STR(conf_worker, pools_file, NULL, conf_check_nonempty, 0),
    KEY_STRLIST(conf_worker, pools, conf_check_tag),
    KEY_INT(conf_worker, concurrency, 64, 1, 100000),
    KEY_STR(conf_worker, logdir, "/var/log/resbus", conf_check_nonempty, 0),
    KEY_STR(conf_worker, prefix, RESBUS_DEFAULT_PREFIX, conf_check_tag, 0),
    KEY_STR(conf_worker, queue_type, "classic", conf_check_queue_type, 0),
    KEY_STRLIST_F(conf_worker, broker_users, conf_check_nonempty, KEY_NONEMPTY),
};
CONF_KEYS_BOUND(worker_keys);

/* ---- worker.yaml ------------------------------------------------------- */

/*
 * Loads worker.yaml.  pools_file defaults to pools.yaml beside PATH, and
 * a relative pools_file is taken relative to PATH's directory.  Returns a
 * fresh struct (caller frees with conf_worker_free) or NULL with the
 * error in ERR.
 */
struct conf_worker *
conf_worker_load(const char *path, char *err, size_t errlen)
{
	struct conf_worker *worker = xcalloc(1, sizeof(*worker));
	struct parse p;
	const char *slash;
	char *dir, *file;
	int rc;

	conf_parse_start(&p, path, err, errlen);
	rc = conf_load_flat(&p, worker_keys, NKEYS(worker_keys), worker);
	conf_parse_done(&p);
	if (rc == -1) {
		conf_worker_free(worker);
		return NULL;
	}
	if (worker->pools_file == NULL || worker->pools_file[0] != '/') {
		slash = strrchr(path, '/');
		dir = slash != NULL ? xstrndup(path, (size_t)(slash - path + 1))
				    : xstrdup("");
		file = xasprintf("%s%s", dir,
		    worker->pools_file != NULL ? worker->pools_file
					       : "pools.yaml");
		free(dir);
		free(worker->pools_file);
		worker->pools_file = file;
	}
	return worker;
}

void
conf_worker_free(struct conf_worker *worker)
{
	if (worker == NULL)
		return;
	conf_fields_free(worker_keys, NKEYS(worker_keys), worker);
	free(worker);
}

size_t
conf_worker_key_names(const char **names, size_t max)
{
	return conf_keys_walk(worker_keys, NKEYS(worker_keys), names, max, 0);
}
