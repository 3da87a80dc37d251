/* SPDX-License-Identifier: MIT */
#ifndef AGENT_REBOOT_H
#define AGENT_REBOOT_H

/*
 * The reboot a job asks for (feature.h agent_host_request_reboot):
 * whether it is due once agent_run returns, and doing it.
 */
#include <stdbool.h>

#include "agent_config.h"
#include "err.h"

struct agent;

#define AGENT_REBOOT_COMMAND_TIMEOUT_MS 60000

/* After agent_run returned @run_rc: reboot now?  Only when it ended
 * well, no stop was asked (@stopped) and a job wanted it. */
bool agent_reboot_due(const struct agent *a, int run_rc, bool stopped);

/*
 * Reboot.  Sim mode: exec this program again with @argv (same pid),
 * which powers the sim device on; returns only on failure.  Real: sync,
 * then [boot] reboot_command (waited for, up to
 * AGENT_REBOOT_COMMAND_TIMEOUT_MS) or reboot(2).  Returns 0 (a reboot
 * command ran), FL_EIO, FL_ERR (the command failed), agent_proc codes.
 */
int agent_reboot(const struct agent_config *cfg, char *const *argv,
		 struct fl_error *err);

#endif
