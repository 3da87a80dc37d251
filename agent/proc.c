/* SPDX-License-Identifier: MIT */
/* Bounded helper programs; see proc.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

#define TICK_MS 100
#define EXEC_BUSY_TRIES 50		   /* exec retries on ETXTBSY, */
#define EXEC_BUSY_PAUSE_NS (10 * 1000000L) /* this far apart */

extern char **environ;

/* The environment plus @extra, or @extra alone with @clean (the child
 * gets it as it is: nothing is allocated between the spawn and the
 * exec). */
static char **make_env(const char *const *extra, bool clean)
{
	size_t n = 0, k = 0;
	char **env;

	while (!clean && environ && environ[n])
		n++;
	while (extra && extra[k])
		k++;
	env = fl_xcalloc(n + k + 1, sizeof(*env));
	for (size_t i = 0; i < k; i++)
		env[i] = (char *)extra[i];
	for (size_t i = 0, j = k; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		bool dup = false;

		for (size_t e = 0; eq && e < k; e++)
			dup |= strncmp(environ[i], extra[e],
				       (size_t)(eq - environ[i]) + 1) == 0;
		if (!dup)
			env[j++] = environ[i];
	}
	return env;
}

/*
 * Start @o->argv in its own process group with stdin from /dev/null,
 * stdout into @out and stderr into @errout, no other descriptor, an empty
 * signal mask and default dispositions (docs/decisions.md, "Child processes get
 * a clean signal mask").  posix_spawn, not fork: the child shares the parent's
 * memory until its exec (vfork), so starting it costs the same whatever the
 * parent's size; fleet-sim with thousands of devices has hundreds of megabytes
 * to copy page tables of.
 *
 * ETXTBSY means the program file is still open for writing somewhere:
 * in a process with threads (fleet-sim) that is typically a child of
 * another thread that inherited a writer of the file (a slot just
 * written) and drops it at its own exec within milliseconds, so try
 * again a little.  Returns 0 or the errno of the failed start.
 */
static int spawn(const struct agent_proc_opts *o, char **env, int out,
		 int errout, pid_t *ret)
{
	const struct timespec pause = {0, EXEC_BUSY_PAUSE_NS};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int e = 0;

	sigemptyset(&none);
	sigfillset(&def);
	sigdelset(&def, SIGKILL);
	sigdelset(&def, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, errout, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
					  POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	for (int i = 0; i < EXEC_BUSY_TRIES; i++) {
		e = posix_spawnp(ret, o->argv[0], &fa, &at,
				 (char *const *)o->argv, env);
		if (e != ETXTBSY)
			break;
		nanosleep(&pause, NULL);
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* Keep the last AGENT_PROC_OUTPUT_MAX bytes of what arrives. */
static void collect(struct agent_proc_result *r, size_t *len, const char *buf,
		    size_t n)
{
	const size_t max = AGENT_PROC_OUTPUT_MAX;

	if (n >= max) {
		memcpy(r->output, buf + n - max, max);
		*len = max;
	} else {
		if (*len + n > max) {
			size_t drop = *len + n - max;

			memmove(r->output, r->output + drop, *len - drop);
			*len -= drop;
		}
		memcpy(r->output + *len, buf, n);
		*len += n;
	}
	r->output[*len] = '\0';
}

/* Keep the first c->max bytes of what arrives. */
static void capture(struct agent_proc_capture *c, const char *buf, size_t n)
{
	size_t room = c->max - c->len;

	if (!c->data)
		c->data = fl_xcalloc(1, c->max + 1);
	if (n > room) {
		c->truncated = true;
		n = room;
	}
	memcpy(c->data + c->len, buf, n);
	c->len += n;
	c->data[c->len] = '\0';
}

/* The child's output: a pipe and where what it brings goes. */
struct stream {
	int fd;				/* -1 once at its end */
	struct agent_proc_capture *cap; /* NULL: the shared tail */
};

/* Read what the pipes have within TICK_MS; false when none is open. */
static bool read_streams(struct stream *st, size_t n,
			 struct agent_proc_result *r, size_t *len)
{
	struct pollfd p[2];
	char buf[4096];
	ssize_t got;

	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){st[i].fd, POLLIN, 0};
	if (st[0].fd < 0 && (n < 2 || st[1].fd < 0))
		return false;
	if (poll(p, (nfds_t)n, TICK_MS) <= 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (st[i].fd < 0 || !p[i].revents)
			continue;
		got = read(st[i].fd, buf, sizeof(buf));
		if (got > 0 && st[i].cap)
			capture(st[i].cap, buf, (size_t)got);
		else if (got > 0)
			collect(r, len, buf, (size_t)got);
		else if (got == 0 || errno != EINTR)
			st[i].fd = -1; /* EOF: only the exit is missing */
	}
	return true;
}

static int status_of(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

/* Read output and reap the child until it ends, the bound or a tick. */
static int wait_child(const struct agent_proc_opts *o, pid_t pid,
		      struct stream *st, size_t n, struct agent_proc_result *r,
		      struct fl_error *err)
{
	int64_t end = fl_now_ms() + o->timeout_ms;
	size_t len = 0;
	int ws, rc = 0;

	for (;;) {
		if (!read_streams(st, n, r, &len))
			poll(NULL, 0, 20);
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			r->status = status_of(ws);
			if (o->kill_group)
				kill(-pid, SIGKILL);
			return 0;
		}
		if (fl_now_ms() >= end)
			rc = fl_fail(err, FL_ETIMEOUT,
				     "'%s' did not finish within %d s",
				     o->argv[0], o->timeout_ms / 1000);
		else if (o->tick)
			rc = o->tick(o->user, err);
		if (rc)
			break;
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &ws, 0);
	return rc;
}

/* One pipe for both streams, or one each with captures. */
static int open_pipes(const struct agent_proc_opts *o, int fds[2][2],
		      struct fl_error *err)
{
	if (pipe2(fds[0], O_CLOEXEC) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot make a pipe");
	if (!o->out) {
		fds[1][0] = -1;
		fds[1][1] = fds[0][1];
		return 0;
	}
	if (pipe2(fds[1], O_CLOEXEC) < 0) {
		close(fds[0][0]);
		close(fds[0][1]);
		return fl_fail_errno(err, FL_EIO, "cannot make a pipe");
	}
	return 0;
}

int agent_proc_run(const struct agent_proc_opts *o,
		   struct agent_proc_result *ret, struct fl_error *err)
{
	struct agent_proc_result r = {0};
	int fds[2][2], rc, e;
	size_t n = o->out ? 2 : 1;
	char **env;
	pid_t pid;

	if (!o->argv || !o->argv[0] || !o->out != !o->errout)
		return fl_fail(err, FL_EINVAL, "no program to run");
	if (open_pipes(o, fds, err))
		return FL_EIO;
	env = make_env(o->env, o->clean_env);
	e = spawn(o, env, fds[0][1], fds[1][1], &pid);
	free(env);
	close(fds[0][1]);
	if (o->out)
		close(fds[1][1]);
	if (e)
		rc = fl_fail(err, FL_EIO, "cannot run '%s': %s", o->argv[0],
			     strerror(e));
	else
		rc = wait_child(o, pid,
				(struct stream[]){{fds[0][0], o->out},
						  {fds[1][0], o->errout}},
				n, &r, err);
	for (size_t i = 0; i < n; i++)
		close(fds[i][0]);
	if (!e)
		*ret = r;
	return rc;
}

const char *agent_proc_last_line(char *output)
{
	char *end = output + strlen(output), *start;

	while (end > output && strchr(" \t\r\n", end[-1]))
		end--;
	*end = '\0';
	start = end;
	while (start > output && start[-1] != '\n')
		start--;
	return start;
}

void agent_proc_tail(const char *output, unsigned lines, char *buf, size_t size)
{
	const char *end = output + strlen(output), *p = end, *start;
	unsigned n = 0;
	size_t len = 0;

	/* walk back over @lines non-empty lines */
	while (p > output && n < lines) {
		while (p > output && strchr(" \t\r\n", p[-1]))
			p--;
		if (p == output)
			break;
		while (p > output && p[-1] != '\n')
			p--;
		n++;
	}
	buf[0] = '\0';
	for (start = p; start < end && len + 1 < size;) {
		size_t l = strcspn(start, "\r\n");

		if (l) {
			len += (size_t)snprintf(buf + len, size - len, "%s%.*s",
						len ? "; " : "", (int)l, start);
			if (len >= size)
				len = size - 1;
		}
		start += l;
		start += strspn(start, "\r\n");
	}
}
