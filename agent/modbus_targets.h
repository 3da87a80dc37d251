/* SPDX-License-Identifier: MIT */
#ifndef AGENT_MODBUS_TARGETS_H
#define AGENT_MODBUS_TARGETS_H

#include "err.h"
#include "modbus_map.h"

/*
 * The Modbus devices a map from the shadow may name (agent.conf
 * [modbus] shadow_targets, docs/modbus.md): whoever may write a device's
 * desired shadow must not point its pollers at any host its network
 * reaches.  The list: entries separated by commas or blanks, each
 *
 *   ADDRESS[:PORT]          an IPv4 address (IPv6: [ADDRESS][:PORT])
 *   ADDRESS/BITS[:PORT]     a network ([ADDRESS/BITS][:PORT] for IPv6)
 *   NAME[:PORT]             a host name, compared without case (never
 *                           resolved: an address entry does not admit a
 *                           name that resolves into it)
 *   /PATH                   a serial device (RTU), exactly
 *
 * without PORT, any port.  Empty: no target (a shadow map with sources
 * is refused).  At most AGENT_MB_TARGETS_MAX entries.
 */
#define AGENT_MB_TARGETS_MAX 64

struct agent_mb_targets;

/* Parse @text into *@ret (NULL text: an empty list).  FL_EPARSE with the
 * entry that is wrong, FL_ELIMIT over the cap. */
int agent_mb_targets_parse(const char *text, struct agent_mb_targets **ret,
			   struct fl_error *err);
void agent_mb_targets_free(struct agent_mb_targets *t);

/* Whether @t admits every source of @m; FL_EDENIED names the first that
 * it does not, with its line in the map called @name. */
int agent_mb_targets_check(const struct agent_mb_targets *t,
			   const struct agent_mb_map *m, const char *name,
			   struct fl_error *err);

#endif
