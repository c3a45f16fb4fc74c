/*
 * fuzz_conf -- libFuzzer targets for the configuration loaders.
 *
 * Built three times, once per file schema (FUZZ_CONF_SERVER,
 * FUZZ_CONF_POOLS, FUZZ_CONF_WORKER), so that each loader has a corpus of
 * its own files.  The loaders read a path, as the daemons do at start and
 * on SIGHUP, so the input is written to a private file first.  A file the
 * loader accepts is held to what its callers take for granted: the
 * loader validated it whole.
 */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];
static int fuzz_fd = -1;

static void
fuzz_file_cleanup(void)
{
	if (fuzz_path[0] != '\0')
		unlink(fuzz_path);
}

/* Writes DATA to the private file, made on the first call. */
static void
fuzz_file_write(const uint8_t *data, size_t size)
{
	const char *dir;
	ssize_t n;
	size_t off;

	if (fuzz_fd == -1) {
		if (access("/dev/shm", W_OK) == 0)
			dir = "/dev/shm";
		else if ((dir = getenv("TMPDIR")) == NULL)
			dir = "/tmp";
		snprintf(fuzz_path, sizeof(fuzz_path),
		    "%s/resbus-fuzz-conf.XXXXXX", dir);
		if ((fuzz_fd = mkstemp(fuzz_path)) == -1) {
			perror(fuzz_path);
			abort();
		}
		atexit(fuzz_file_cleanup);
	}
	if (ftruncate(fuzz_fd, 0) == -1)
		abort();
	for (off = 0; off < size; off += (size_t)n)
		if ((n = pwrite(fuzz_fd, data + off, size - off,
		    (off_t)off)) <= 0)
			abort();
}

#if defined(FUZZ_CONF_POOLS)
static void
fuzz_load(char *err, size_t errlen)
{
	struct conf_pools *c;
	const struct conf_pool *p;
	size_t i, j;

	if ((c = conf_pools_load(fuzz_path, err, errlen)) == NULL)
		return;
	for (i = 0; i < c->npools; i++) {
		p = &c->pools[i];
		assert(p->name != NULL && p->cmd_new != NULL &&
		    p->cmd_delete != NULL);
		assert(conf_pools_find(c, p->name) == p);
		assert(p->max >= 0 && p->max_starting >= 0 &&
		    p->max_prealloc >= 0);
		for (j = 0; j < p->ntags; j++) {
			assert(tag_valid(p->tags[j].name));
			assert(conf_pool_has_tag(p, p->tags[j].name, NULL));
		}
		for (j = 0; j < p->ntags_on_demand; j++) {
			assert(tag_valid(p->tags_on_demand[j].name));
			assert(conf_tag_on_demand(p,
			    p->tags_on_demand[j].name));
		}
	}
	conf_pools_free(c);
}
#elif defined(FUZZ_CONF_SERVER)
static void
fuzz_load(char *err, size_t errlen)
{
	struct conf_server *c;
	size_t i;

	if ((c = conf_server_load(fuzz_path, err, errlen)) == NULL)
		return;
	assert(c->prefix != NULL && c->db_url != NULL);
	for (i = 0; i < c->nadmins; i++)
		assert(c->admins[i] != NULL);
	for (i = 0; i < c->nworkers; i++)
		assert(c->workers[i] != NULL);
	conf_server_free(c);
}
#elif defined(FUZZ_CONF_WORKER)
static void
fuzz_load(char *err, size_t errlen)
{
	struct conf_worker *c;
	size_t i;

	if ((c = conf_worker_load(fuzz_path, err, errlen)) == NULL)
		return;
	assert(c->concurrency > 0);
	for (i = 0; i < c->npools; i++)
		assert(c->pools[i] != NULL);
	for (i = 0; i < c->nbroker_users; i++)
		assert(c->broker_users[i] != NULL);
	conf_worker_free(c);
}
#else
#error "define FUZZ_CONF_SERVER, FUZZ_CONF_POOLS or FUZZ_CONF_WORKER"
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	fuzz_file_write(data, size);
	err[0] = '\0';
	fuzz_load(err, sizeof(err));
	assert(memchr(err, '\0', sizeof(err)) != NULL);
	return 0;
}
