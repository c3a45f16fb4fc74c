/*
 * runner -- one driver command as a child process on the libev loop.
 *
 * The lifecycle of a command is three independent events: its shell
 * exits (ev_child), its stdout and stderr pipes reach EOF (ev_io), and its
 * deadline passes (ev_timer).  The command is over when the shell has
 * exited and both pipes are closed.  A grandchild that keeps them open
 * after the shell exited (a daemon started without redirecting them) would
 * hold the command forever, so EOF is awaited only RUNNER_DRAIN_S after
 * the exit.
 *
 * stderr comes through a pipe of its own rather than straight into the
 * log file so that every byte written to the log passes one function,
 * which keeps the log under its size cap: when a write would take the
 * file past log_max_bytes, the file is renamed to "<log>.1" (replacing
 * the previous one) and a fresh one is started.  A command that prints
 * without end thus costs at most twice the cap on disk.
 *
 * The child gets its own process group so that a timeout reaches
 * everything the command started: SIGTERM to the group, SIGKILL to the
 * group RUNNER_KILL_GRACE_S later.  Everything the child needs (argv,
 * envp, descriptors) is prepared before the child starts, and the child
 * is made with vfork(): it borrows the worker's memory until its execve()
 * instead of copying the worker's page tables (with a thousand commands
 * at once, fork() would copy them a thousand times).  The child only
 * makes system calls, and runs with every signal blocked until it has put
 * back the default action of each signal the worker catches, so no
 * handler of the worker ever runs in it.
 *
 * stdout capture follows resalloc's line rule: whole lines are kept
 * while the total fits the limit; the first line that does not fit ends
 * the capture with "<< trimmed >>\n" (a first line longer than the limit
 * is cut to the limit first).  Everything is logged regardless.  For
 * cmd_list, whose output is a list of names, only whole lines are kept
 * and nothing is marked: a cut name would name another resource.
 */
#include "config.h"

#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "runner.h"

extern char **environ;

struct runner {
	struct ev_loop *loop;
	ev_child child_w;
	ev_io out_w;
	ev_io err_w;
	ev_timer deadline_w; /* the timeout, then the SIGKILL grace */
	ev_timer drain_w;    /* EOF wait after the shell exited */
	pid_t pid;
	int out_fd;
	int err_fd;
	int log_fd;
	char *log_path;
	int64_t log_max;  /* 0: no cap */
	int64_t log_size; /* bytes in the current log file */
	bool rotate_failed;
	int64_t start_ms;
	int64_t timeout_s;
	bool exited;
	bool eof; /* both pipes closed */
	bool out_eof;
	bool err_eof;
	bool timed_out;
	bool term_sent; /* SIGTERM sent: deadline_w is the grace */
	bool kill_sent;
	int status;

	size_t cap_max;
	bool whole_lines;
	char *cap; /* cap_max + marker */
	size_t caplen;
	char *line;	  /* the current line, first cap_max bytes */
	size_t linelen;	  /* bytes kept in line */
	size_t linetotal; /* the line's real length so far */
	bool trimmed;

	runner_done_fn *fn;
	void *arg;
};

/* Starts a fresh log file, the old one becoming <log>.1. */
static void
log_rotate(struct runner *r)
{
	char *old;
	int fd;

	old = xasprintf("%s.1", r->log_path);
	if (rename(r->log_path, old) == -1) {
		/* Keep the cap all the same: start the file over. */
		if (!r->rotate_failed)
			log_warn(
			    "command %d: rename %s", (int)r->pid, r->log_path);
		r->rotate_failed = true;
		if (ftruncate(r->log_fd, 0) == -1)
			log_warn("command %d: truncate %s", (int)r->pid,
			    r->log_path);
		r->log_size = 0;
		free(old);
		return;
	}
	free(old);
	fd = open(r->log_path,
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY,
	    0640);
	if (fd == -1) {
		log_warn("command %d: reopen %s", (int)r->pid, r->log_path);
		return; /* keeps writing to <log>.1, still capped */
	}
	close(r->log_fd);
	r->log_fd = fd;
	r->log_size = 0;
}

/* Appends LEN bytes of BUF to the log, rotating it at the cap. */
static void
log_write(struct runner *r, const char *buf, size_t len)
{
	size_t k;
	ssize_t n;

	while (len > 0) {
		if (r->log_max > 0 && r->log_size > 0 &&
		    r->log_size + (int64_t)len > r->log_max)
			log_rotate(r);
		k = len;
		if (r->log_max > 0 && (int64_t)k > r->log_max - r->log_size)
			k = (size_t)(r->log_max - r->log_size);
		if (k == 0)
			k = len; /* rotation failed to make room: write */
		n = write(r->log_fd, buf, k);
		if (n <= 0) {
			log_warn("command %d: log write", (int)r->pid);
			return;
		}
		r->log_size += n;
		buf += n;
		len -= (size_t)n;
	}
}

static void
log_line(struct runner *r, const char *s)
{
	log_write(r, s, strlen(s));
}

static void
capture_line_end(struct runner *r)
{
	size_t mlen = strlen(RUNNER_TRIM_MARKER);

	if (r->caplen + r->linetotal > r->cap_max && r->whole_lines) {
		r->trimmed = true;
	} else if (r->caplen + r->linetotal > r->cap_max) {
		if (r->caplen == 0) {
			memcpy(r->cap, r->line, r->linelen);
			r->caplen = r->linelen;
		}
		memcpy(r->cap + r->caplen, RUNNER_TRIM_MARKER, mlen);
		r->caplen += mlen;
		r->trimmed = true;
	} else {
		memcpy(r->cap + r->caplen, r->line, r->linelen);
		r->caplen += r->linelen;
	}
	r->linelen = r->linetotal = 0;
}

static void
capture_feed(struct runner *r, const char *buf, size_t len)
{
	const char *nl;
	size_t n, keep;

	while (len > 0 && !r->trimmed) {
		nl = memchr(buf, '\n', len);
		n = nl != NULL ? (size_t)(nl - buf) + 1 : len;
		keep = n;
		if (keep > r->cap_max - r->linelen)
			keep = r->cap_max - r->linelen;
		memcpy(r->line + r->linelen, buf, keep);
		r->linelen += keep;
		r->linetotal += n;
		if (nl != NULL)
			capture_line_end(r);
		buf += n;
		len -= n;
	}
}

static void
runner_release(struct runner *r)
{
	close(r->out_fd);
	close(r->err_fd);
	close(r->log_fd);
	free(r->log_path);
	free(r->cap);
	free(r->line);
	free(r);
}

static void
runner_finish(struct runner *r)
{
	struct runner_result res;

	if (!r->exited || (!r->eof && ev_is_active(&r->drain_w)))
		return;

	ev_child_stop(r->loop, &r->child_w);
	ev_io_stop(r->loop, &r->out_w);
	ev_io_stop(r->loop, &r->err_w);
	ev_timer_stop(r->loop, &r->deadline_w);
	ev_timer_stop(r->loop, &r->drain_w);

	if (r->cap_max > 0 && !r->trimmed && r->linetotal > 0)
		capture_line_end(r);

	memset(&res, 0, sizeof(res));
	res.timed_out = r->timed_out;
	if (r->timed_out)
		res.exit_status = RUNNER_TIMEOUT_STATUS;
	else if (WIFEXITED(r->status))
		res.exit_status = WEXITSTATUS(r->status);
	else if (WIFSIGNALED(r->status))
		res.exit_status = 128 + WTERMSIG(r->status);
	else
		res.exit_status = -1;
	res.out = r->cap;
	res.outlen = r->caplen;
	res.duration_ms = now_mono_ms() - r->start_ms;

	r->fn(r, &res, r->arg);
	runner_release(r);
}

/* Reads stdout (IS_OUT) or stderr into the log; false at EOF. */
static bool
pipe_read(struct runner *r, int fd, bool is_out)
{
	char buf[16384];
	ssize_t n;

	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		log_warn("command %d: %s", (int)r->pid,
		    is_out ? "stdout" : "stderr");
		n = 0;
	}
	if (n == 0)
		return false;
	log_write(r, buf, (size_t)n);
	if (is_out && r->cap_max > 0)
		capture_feed(r, buf, (size_t)n);
	return true;
}

static void
pipe_eof(struct runner *r)
{
	if (!r->out_eof || !r->err_eof)
		return;
	r->eof = true;
	ev_timer_stop(r->loop, &r->drain_w);
	runner_finish(r);
}

static void
out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct runner *r = container_of(w, struct runner, out_w);

	if (pipe_read(r, r->out_fd, true))
		return;
	r->out_eof = true;
	ev_io_stop(loop, w);
	pipe_eof(r);
}

static void
err_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct runner *r = container_of(w, struct runner, err_w);

	if (pipe_read(r, r->err_fd, false))
		return;
	r->err_eof = true;
	ev_io_stop(loop, w);
	pipe_eof(r);
}

static void
drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct runner *r = container_of(w, struct runner, drain_w);

	log_warnx("command %d: stdout or stderr still open after its exit, "
		  "not waiting",
	    (int)r->pid);
	ev_timer_stop(loop, w);
	runner_finish(r);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct runner *r = container_of(w, struct runner, child_w);
	ev_tstamp drain = RUNNER_DRAIN_S;

	r->exited = true;
	r->status = w->rstatus;
	ev_child_stop(loop, w);
	if (!r->eof) {
		/* A timed-out group gets its SIGKILL before we stop waiting. */
		if (r->term_sent && !r->kill_sent)
			drain = ev_timer_remaining(loop, &r->deadline_w) + 1.;
		ev_timer_set(&r->drain_w, drain, 0.);
		ev_timer_start(loop, &r->drain_w);
	}
	runner_finish(r);
}

/* SIGTERM to the group now, SIGKILL RUNNER_KILL_GRACE_S later. */
static void
runner_stop_group(struct runner *r)
{
	r->term_sent = true;
	if (kill(-r->pid, SIGTERM) == -1 && errno != ESRCH)
		log_warn("kill -TERM -%d", (int)r->pid);
	ev_timer_stop(r->loop, &r->deadline_w);
	ev_timer_set(&r->deadline_w, RUNNER_KILL_GRACE_S, 0.);
	ev_timer_start(r->loop, &r->deadline_w);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct runner *r = container_of(w, struct runner, deadline_w);
	char *msg;

	if (!r->term_sent) {
		r->timed_out = true;
		msg = xasprintf(
		    "<timeouted after %llds>\n", (long long)r->timeout_s);
		log_line(r, msg);
		free(msg);
		log_warnx("command %d: timed out after %lld s, terminating "
			  "its process group",
		    (int)r->pid, (long long)r->timeout_s);
		runner_stop_group(r);
		return;
	}
	if (!r->kill_sent) {
		r->kill_sent = true;
		log_warnx("command %d: still alive %d s after SIGTERM, killing "
			  "its process group",
		    (int)r->pid, RUNNER_KILL_GRACE_S);
		if (kill(-r->pid, SIGKILL) == -1 && errno != ESRCH)
			log_warn("kill -KILL -%d", (int)r->pid);
	}
}

static bool
env_inherited(const char *s)
{
	return strncmp(s, "RESALLOC_", 9) != 0;
}

/* The child's envp: our environment minus RESALLOC_*, plus SPEC's. */
static char **
env_build(const struct runner_spec *spec)
{
	char **envp;
	size_t n = 0, i, k = 0;

	for (i = 0; environ[i] != NULL; i++)
		n++;
	envp = xcalloc(n + spec->nenv + 1, sizeof(*envp));
	for (i = 0; environ[i] != NULL; i++)
		if (env_inherited(environ[i]))
			envp[k++] = environ[i];
	for (i = 0; i < spec->nenv; i++)
		envp[k++] = spec->env[i];
	envp[k] = NULL;
	return envp;
}

static void
child_exec(const struct runner_spec *spec, char **envp, int out_fd, int err_fd,
    pid_t parent)
{
	static const char msg[] = "resbus-worker: cannot exec /bin/sh\n";
	struct sigaction sa, dfl = {.sa_handler = SIG_DFL};
	char *argv[4];
	sigset_t none;
	int nullfd, sig;
	ssize_t n;

	/* Handlers of the worker must not run here: default actions first,
	 * then the signal mask the command starts with. */
	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
			(void)sigaction(sig, &dfl, NULL);
	(void)sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	(void)setpgid(0, 0);
#ifdef __linux__
	/*
	 * A worker killed outright leaves its job to be redelivered, and the
	 * next worker deletes what the command made so far: the command's
	 * shell must not go on making more behind its back.
	 */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
#endif

	nullfd = open("/dev/null", O_RDONLY);
	if (nullfd == -1 || dup2(nullfd, STDIN_FILENO) == -1 ||
	    dup2(out_fd, STDOUT_FILENO) == -1 ||
	    dup2(err_fd, STDERR_FILENO) == -1)
		_exit(127);
	closefrom(STDERR_FILENO + 1);

	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)spec->cmd;
	argv[3] = NULL;
	execve("/bin/sh", argv, envp);
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(127);
}

/*
 * Starts the child with every signal blocked, so that none is handled in
 * it before child_exec() has reset the handlers; the parent gets its
 * mask back once the child has called execve() (or exited).  -1 with
 * errno if no child could be made.
 */
static pid_t
spawn_child(const struct runner_spec *spec, char **envp, int out_fd, int err_fd,
    pid_t parent)
{
	sigset_t all, old;
	pid_t pid;
	int saved;

	sigfillset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0)
		child_exec(spec, envp, out_fd, err_fd, parent);
	saved = errno;
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

/*
 * Opens SPEC's hook log and the child's stdout and stderr pipes, and
 * spawns it in a process group of its own.  Sets the parent's ends
 * (non-blocking) and the log's descriptor; -1 with errno, nothing left
 * open, if any step failed.
 */
static pid_t
spawn_piped(
    const struct runner_spec *spec, int *out_fd, int *err_fd, int *log_fd)
{
	char **envp;
	int pfd[2] = {-1, -1}, efd[2] = {-1, -1}, saved;
	pid_t pid = -1, parent = getpid();

	*log_fd = open(spec->log_path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (*log_fd == -1)
		return -1;
	if (pipe2(pfd, O_CLOEXEC) == 0 && pipe2(efd, O_CLOEXEC) == 0) {
		envp = env_build(spec);
		pid = spawn_child(spec, envp, pfd[1], efd[1], parent);
		saved = errno;
		free(envp);
		errno = saved;
	}
	if (pid == -1) {
		saved = errno;
		if (pfd[0] != -1) {
			close(pfd[0]);
			close(pfd[1]);
		}
		if (efd[0] != -1) {
			close(efd[0]);
			close(efd[1]);
		}
		close(*log_fd);
		errno = saved;
		return -1;
	}

	/* Both sides set the group, so kill(-pid) works whoever runs first. */
	(void)setpgid(pid, pid);
	close(pfd[1]);
	close(efd[1]);
	if (fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK) == -1 ||
	    fcntl(efd[0], F_SETFL, fcntl(efd[0], F_GETFL) | O_NONBLOCK) == -1)
		log_warn("command %d: O_NONBLOCK", (int)pid);
	*out_fd = pfd[0];
	*err_fd = efd[0];
	return pid;
}

struct runner *
runner_start(struct ev_loop *loop, const struct runner_spec *spec,
    runner_done_fn *fn, void *arg)
{
	struct runner *r;
	struct stat st;
	int out_fd, err_fd, log_fd;
	pid_t pid;

	if ((pid = spawn_piped(spec, &out_fd, &err_fd, &log_fd)) == -1)
		return NULL;

	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->pid = pid;
	r->out_fd = out_fd;
	r->err_fd = err_fd;
	r->log_fd = log_fd;
	r->log_path = xstrdup(spec->log_path);
	r->log_max = spec->log_max_bytes > 0 ? spec->log_max_bytes : 0;
	r->log_size = fstat(log_fd, &st) == 0 ? (int64_t)st.st_size : 0;
	r->start_ms = now_mono_ms();
	r->timeout_s = spec->timeout_s;
	r->cap_max = spec->capture_max_bytes;
	r->whole_lines = spec->capture_whole_lines;
	if (r->cap_max > 0) {
		r->cap = xmalloc(r->cap_max + strlen(RUNNER_TRIM_MARKER));
		r->line = xmalloc(r->cap_max);
	}
	r->fn = fn;
	r->arg = arg;

	/* Started in the iteration of the fork, so no exit is missed. */
	ev_child_init(&r->child_w, child_cb, pid, 0);
	ev_child_start(loop, &r->child_w);
	ev_io_init(&r->out_w, out_cb, r->out_fd, EV_READ);
	ev_io_start(loop, &r->out_w);
	ev_io_init(&r->err_w, err_cb, r->err_fd, EV_READ);
	ev_io_start(loop, &r->err_w);
	ev_init(&r->drain_w, drain_cb);
	ev_init(&r->deadline_w, deadline_cb);
	if (spec->timeout_s > 0) {
		ev_timer_set(&r->deadline_w, (ev_tstamp)spec->timeout_s, 0.);
		ev_timer_start(loop, &r->deadline_w);
	}
	return r;
}

void
runner_abandon(struct runner *r)
{
	ev_child_stop(r->loop, &r->child_w);
	ev_io_stop(r->loop, &r->out_w);
	ev_io_stop(r->loop, &r->err_w);
	ev_timer_stop(r->loop, &r->deadline_w);
	ev_timer_stop(r->loop, &r->drain_w);
	runner_release(r);
}

int
runner_pid(const struct runner *r)
{
	return (int)r->pid;
}

void
runner_cancel(struct runner *r)
{
	if (r->term_sent || r->exited)
		return;
	log_line(r, "<cancelled>\n");
	runner_stop_group(r);
}

void
runner_terminate(struct runner *r)
{
	if (kill(-r->pid, SIGTERM) == -1 && errno != ESRCH)
		log_warn("kill -TERM -%d", (int)r->pid);
}

char **
runner_env_resalloc(uint64_t id, const char *name, const char *pool,
    int64_t id_in_pool, const void *data, size_t len,
    const char *const *counter_names, const uint32_t *counter_values,
    size_t ncounters, size_t *nenv)
{
	char **env, *b64;
	size_t k = 0, i;

	env = xcalloc(5 + ncounters, sizeof(*env));
	env[k++] = xasprintf("RESALLOC_ID=%llu", (unsigned long long)id);
	env[k++] = xasprintf("RESALLOC_NAME=%s", name);
	env[k++] = xasprintf("RESALLOC_POOL_ID=%s", pool);
	if (id_in_pool < 0)
		env[k++] = xstrdup("RESALLOC_ID_IN_POOL=None");
	else
		env[k++] = xasprintf(
		    "RESALLOC_ID_IN_POOL=%lld", (long long)id_in_pool);
	if (data != NULL && len > 0) {
		b64 = base64_encode(data, len);
		env[k++] = xasprintf("RESALLOC_RESOURCE_DATA=%s", b64);
		free(b64);
	}
	for (i = 0; i < ncounters; i++)
		env[k++] = xasprintf("RESALLOC_NAMED_COUNTER_%s=%u",
		    counter_names[i], (unsigned)counter_values[i]);
	*nenv = k;
	return env;
}

void
runner_env_free(char **env, size_t nenv)
{
	strv_free(env, nenv);
}
