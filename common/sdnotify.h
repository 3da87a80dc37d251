/* SPDX-License-Identifier: MIT */
#ifndef FL_SDNOTIFY_H
#define FL_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/*
 * The service manager's notify socket (sd_notify(3), "notify socket"):
 * READY=1, WATCHDOG=1 and STOPPING=1 as datagrams to $NOTIFY_SOCKET, a
 * path or, with a leading '@', an abstract AF_UNIX name.  The protocol
 * is documented as stable for reimplementation, so Fleet does not link
 * libsystemd for it (docs/decisions.md).  Without $NOTIFY_SOCKET every
 * call is a no-op, so programs call these unconditionally.
 */

/*
 * Read $NOTIFY_SOCKET, and $WATCHDOG_USEC when $WATCHDOG_PID is unset
 * or this process, once at start-up.  With @unset_env they leave the
 * environment, so that children (fleetd's mosquitto) do not talk to the
 * manager in our name.  Returns whether a manager listens.
 */
bool fl_sd_init(bool unset_env);

/*
 * Send @state ("READY=1", "STOPPING=1", ...) in one datagram.  Returns
 * 0 (also when there is no manager) or FL_EIO.
 */
int fl_sd_notify(const char *state, struct fl_error *err);

/* The watchdog interval asked for, in ms; 0 when there is none. */
int64_t fl_sd_watchdog_ms(void);

/*
 * Call from the main loop on every pass: sends WATCHDOG=1 when half the
 * watchdog interval has passed since the last one (@now_ms from
 * fl_now_ms).  A loop that stops passing here stops the pings, and the
 * manager restarts the service.
 */
void fl_sd_watchdog(int64_t now_ms);

#endif
