/* SPDX-License-Identifier: MIT */
#ifndef AGENT_AGENT_MODBUS_H
#define AGENT_AGENT_MODBUS_H

/*
 * Modbus sources (issue 16, docs/modbus.md): the agent feature that polls
 * the sources of a register map (modbus_map.h) and hands their values to
 * telemetry as points named SOURCE.NAME (raw, or one a window when the
 * register aggregates), plus SOURCE.up (1 answering, 0 not) whenever
 * that changes, as an outbox EVENT message (the modbus.up / modbus.down
 * events: never dropped past the outbox's bounds).
 *
 * Each source has its own poller thread (libmodbus, loaded on first use:
 * lazy_modbus.c) that connects, reads the map's requests every interval,
 * reconnects with a capped exponential backoff, and hands its results to
 * the agent's thread under a lock (bounded: AGENT_MB_PENDING_MAX polls a
 * source), so a dead device never stalls the agent.  The map comes from
 * agent.conf [modbus] map, or from the desired shadow's "modbus" key
 * (the map text), which replaces it without a restart; a map that does
 * not parse is refused and the one in force stays.
 *
 * (Named agent_modbus.h: libmodbus's own <modbus.h> is on the include
 * path, and -Iagent would hide it behind a plain modbus.h.)
 */
#include <stdbool.h>

#include <jansson.h>

#include "err.h"
#include "feature.h"

#define AGENT_MB_PENDING_MAX 64	   /* polls waiting for the agent */
#define AGENT_MB_WRITES_MAX 16	   /* writes waiting for a poller */
#define AGENT_MB_BACKOFF_MAX 60000 /* ms between reconnects, at most */
#define AGENT_MB_ERROR_MAX 160	   /* bytes of a last error */

struct agent_modbus;

extern const struct agent_feature agent_feature_modbus; /* modbus.c */

/*
 * Write @value into register @name of @source (a coil or holding
 * register whose map gives min and max, @value within them): checked and
 * encoded here, then queued for the source's poller, which writes it
 * before its next poll (a failure there is logged and counted as the
 * source's error).  Returns 0, FL_ENOTFOUND (no such source or
 * register), FL_EINVAL (read-only, no limits, outside them), FL_ELIMIT
 * (AGENT_MB_WRITES_MAX writes already wait).
 */
int agent_modbus_write(struct agent_modbus *mb, const char *source,
		       const char *name, double value, struct fl_error *err);

/*
 * Use the map @text (the desired shadow's "modbus"; NULL: agent.conf's
 * map again).  A text that does not parse changes nothing: FL_EPARSE or
 * FL_ELIMIT, the map's message in @err.  The same text as in force is a
 * no-op.  A change stops the pollers (waiting at most one response
 * timeout for a read in flight) and starts the new map's.
 */
int agent_modbus_use(struct agent_modbus *mb, const char *text,
		     struct fl_error *err);

/* The sources, their state and current values (`fleetctl diag ID
 * modbus`): a new object. */
json_t *agent_modbus_diag(struct agent_modbus *mb);

/* libmodbus held while pollers run (lazy_modbus.c). */
int agent_modbus_lib_hold(struct fl_error *err);
void agent_modbus_lib_drop(void);

#endif
