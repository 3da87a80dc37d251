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

/* The environment plus @extra (the child gets it as it is: nothing is
 * allocated between the spawn and the exec). */
static char **make_env(const char *const *extra)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
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
 * stdout and stderr into @out, no other descriptor, an empty signal
 * mask and default dispositions (docs/decisions.md, "Child processes
 * get a clean signal mask").  posix_spawn, not fork: the child shares
 * the parent's memory until its exec (vfork), so starting it costs the
 * same whatever the parent's size; fleet-sim with thousands of devices
 * has hundreds of megabytes to copy page tables of.
 *
 * ETXTBSY means the program file is still open for writing somewhere:
 * in a process with threads (fleet-sim) that is typically a child of
 * another thread that inherited a writer of the file (a slot just
 * written) and drops it at its own exec within milliseconds, so try
 * again a little.  Returns 0 or the errno of the failed start.
 */
static int spawn(const struct agent_proc_opts *o, char **env, int out,
		 pid_t *ret)
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
	posix_spawn_file_actions_adddup2(&fa, out, 2);
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

static int status_of(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

/* Read output and reap the child until it ends, the bound or a tick. */
static int wait_child(const struct agent_proc_opts *o, pid_t pid, int fd,
		      struct agent_proc_result *r, struct fl_error *err)
{
	int64_t end = fl_now_ms() + o->timeout_ms;
	size_t len = 0;
	char buf[4096];
	int ws, rc = 0;
	ssize_t n;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};

		if (fd >= 0 && poll(&p, 1, TICK_MS) > 0) {
			n = read(fd, buf, sizeof(buf));
			if (n > 0)
				collect(r, &len, buf, (size_t)n);
			else if (n == 0 || errno != EINTR)
				fd = -1; /* EOF: only the exit is missing */
		} else if (fd < 0) {
			poll(NULL, 0, 20);
		}
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			r->status = status_of(ws);
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

int agent_proc_run(const struct agent_proc_opts *o,
		   struct agent_proc_result *ret, struct fl_error *err)
{
	struct agent_proc_result r = {0};
	int pipefd[2], rc, e;
	char **env;
	pid_t pid;

	if (!o->argv || !o->argv[0])
		return fl_fail(err, FL_EINVAL, "no program to run");
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot make a pipe");
	env = make_env(o->env);
	e = spawn(o, env, pipefd[1], &pid);
	free(env);
	close(pipefd[1]);
	if (e) {
		close(pipefd[0]);
		return fl_fail(err, FL_EIO, "cannot run '%s': %s", o->argv[0],
			       strerror(e));
	}
	rc = wait_child(o, pid, pipefd[0], &r, err);
	close(pipefd[0]);
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
