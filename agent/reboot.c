/* SPDX-License-Identifier: MIT */
/*
 * The reboot a job asked for (reboot.h), out of fleet-agent's main so
 * that fleet-sim and tests decide the same way.
 */
#include <limits.h>
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "agent.h"
#include "proc.h"
#include "reboot.h"

bool agent_reboot_due(const struct agent *a, int run_rc, bool stopped)
{
	return a && !run_rc && !stopped && agent_reboot_requested(a);
}

/* Sim: start this program again, by its real path so it keeps its
 * name. */
static int restart_self(char *const *argv, struct fl_error *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[n > 0 ? n : 0] = '\0';
	execv(n > 0 ? self : "/proc/self/exe", argv);
	return fl_fail_errno(err, FL_EIO, "cannot restart myself");
}

int agent_reboot(const struct agent_config *cfg, char *const *argv,
		 struct fl_error *err)
{
	const char *cmd[] = {"/bin/sh", "-c", cfg->reboot_command, NULL};
	struct agent_proc_opts po = {
	    .argv = cmd, .timeout_ms = AGENT_REBOOT_COMMAND_TIMEOUT_MS};
	struct agent_proc_result r;
	int rc;

	fflush(NULL);
	if (cfg->sim_dir)
		return restart_self(argv, err);
	sync();
	if (!cfg->reboot_command) {
		reboot(RB_AUTOBOOT);
		return fl_fail_errno(err, FL_EIO, "cannot reboot");
	}
	rc = agent_proc_run(&po, &r, err);
	if (!rc && r.status)
		rc = fl_fail(err, FL_ERR, "reboot command failed (exit %d): %s",
			     r.status, agent_proc_last_line(r.output));
	return rc;
}
