/* SPDX-License-Identifier: MIT */
#ifndef AGENT_PROC_H
#define AGENT_PROC_H

/*
 * Running a helper program with a bound: the health check, the sim
 * firmware's --version, the reboot command, diagnostic checks.  The
 * child runs in its own process group with stdin from /dev/null; its
 * stdout and stderr are collected (the last AGENT_PROC_OUTPUT_MAX bytes
 * of both are kept, or each apart with a cap: struct
 * agent_proc_capture) and the whole group is killed when the time is
 * up.  Thread-safe: several threads may run programs at once.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define AGENT_PROC_OUTPUT_MAX 1024

struct agent_proc_result {
	int status; /* exit status 0..255, or 128+N for signal N */
	char output[AGENT_PROC_OUTPUT_MAX + 1]; /* last bytes, NUL-ended */
};

/* One stream of the child kept apart (agent_proc_opts.out, .errout):
 * its first @max bytes. */
struct agent_proc_capture {
	size_t max; /* set by the caller */
	char *data; /* @len bytes and a NUL (allocated; free it) */
	size_t len;
	bool truncated; /* more than @max bytes came */
};

struct agent_proc_opts {
	/* argv[0] is a path, or a name looked up in PATH; NULL-ended */
	const char *const *argv;
	/* extra "NAME=VALUE" entries for the environment, NULL-ended (may
	 * be NULL) */
	const char *const *env;
	/* the child gets @env alone, not the agent's environment too */
	bool clean_env;
	/* stdout and stderr kept apart, each into its capture (both or
	 * neither; ret->output stays empty) */
	struct agent_proc_capture *out, *errout;
	/* also kill the process group when the program ends by itself
	 * (what it started in the background goes with it) */
	bool kill_group;
	int timeout_ms;
	/* Called about every 100 ms while waiting (may be NULL); non-zero
	 * kills the child and is returned. */
	int (*tick)(void *user, struct fl_error *err);
	void *user;
};

/*
 * Run and wait.  Returns 0 when the program ran to its end (whatever
 * its exit status: see ret->status), FL_ETIMEOUT (killed at the bound),
 * FL_EIO (could not start it), or the tick's code.
 */
int agent_proc_run(const struct agent_proc_opts *o,
		   struct agent_proc_result *ret, struct fl_error *err);

/*
 * The last non-empty line of @output (a pointer into it, trimmed in
 * place), or "".
 */
const char *agent_proc_last_line(char *output);

/*
 * The last @lines non-empty lines of @output joined with "; " into
 * @buf (@size bytes, cut to fit): a one-line summary for a reason.
 */
void agent_proc_tail(const char *output, unsigned lines, char *buf,
		     size_t size);

#endif
