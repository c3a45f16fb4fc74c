/*
 * conf -- server.yaml, pools.yaml and worker.yaml.
 *
 * Each file is read whole into memory, composed into a libyaml document
 * and walked against one declarative table of keys per mapping: the key's
 * name, its type (integer, string, boolean, list of strings, list of
 * tags), its default, its bounds and where it lives in the struct
 * (offsetof).  Keys whose value holds further mappings -- server.yaml's
 * policy: `classes` (a mapping of names to option mappings), `limits` and
 * `tag_rules` (lists of option mappings) and a class's `caps` (a mapping
 * of names to integers) -- point at the table of their elements, the size
 * of an element and where its name goes, so one walker fills an array of
 * any of them.  The walk fills a fresh struct that starts out holding the
 * defaults; the cross-key rules (required keys, on-demand tags, the
 * default class naming a class) run once the mapping or the whole file is
 * read.  Nothing is handed to the caller unless the whole file is
 * good, so a bad file on SIGHUP leaves the running configuration alone.
 *
 * Scalars are typed the way PyYAML (YAML 1.1), and thus resalloc, types
 * them, and the types are checked strictly: an integer key given a string,
 * a float or a boolean ("yes", "on", "true"...) is an error, and so is a
 * string key given a boolean, since resalloc would have seen True there.
 * A plain number given to a string key is taken as written.  A null value
 * ("key:" with nothing after it) means "the default" for strings and
 * lists and is an error for integers.  Unknown keys and duplicate keys
 * are errors: a misspelt option that silently does nothing is worse than
 * a refusal to start.  Anchors, aliases and merge keys ("<<: *common")
 * work as in PyYAML, so pools can share their common options.
 *
 * Every error is one line, "file:line:column: what is wrong", with the
 * 1-based position of the node at fault (for YAML syntax errors, the
 * position libyaml reports).
 *
 * The loader is split by concern: conf_parse.c walks YAML against the
 * key tables and reports errors, conf_value.c holds the typed values and
 * the shared string checks, and conf_server.c, conf_pools.c and
 * conf_worker.c each hold one file's tables, checks, load and free;
 * conf_priv.h is what they share.  This file holds what is about the
 * configuration directory and the files as a whole.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf_priv.h"
#include "util.h"

/* ---- the directory ----------------------------------------------------- */

const char *
conf_dir_pick(const char *option)
{
	const char *env;

	if (option != NULL && *option != '\0')
		return option;
	if ((env = getenv("CONFIG_DIR")) != NULL && *env != '\0')
		return env;
	return SYSCONFDIR "/resbus";
}

struct conf_server *
conf_server_load_dir(const char *option, char *err, size_t errlen)
{
	char *path = xasprintf("%s/server.yaml", conf_dir_pick(option));
	struct conf_server *server = conf_server_load(path, err, errlen);

	free(path);
	return server;
}

size_t
conf_file_keys(const char *file, const char **names, size_t max)
{
	if (strcmp(file, "server") == 0)
		return conf_server_key_names(names, max);
	if (strcmp(file, "pools") == 0)
		return conf_pools_key_names(names, max);
	if (strcmp(file, "worker") == 0)
		return conf_worker_key_names(names, max);
	return 0;
}
