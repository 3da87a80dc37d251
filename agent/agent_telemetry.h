/* SPDX-License-Identifier: MIT */
#ifndef AGENT_AGENT_TELEMETRY_H
#define AGENT_AGENT_TELEMETRY_H

/*
 * Telemetry (issue 13, docs/telemetry.md): the agent feature that samples
 * the built-in metrics every telemetry interval (the shadow's
 * telemetry_interval, else agent.conf [telemetry] interval; 0: off),
 * takes the values local programs publish (a UNIX datagram socket
 * STATE_DIR/telemetry.sock and a drop dir STATE_DIR/telemetry.d of *.tlm
 * files, one `name value [ts_ms]` a line), and queues them, up to
 * AGENT_TLM_BATCH points a message, in the outbox (outbox.h), which
 * delivers them on PREFIX/ID/telemetry as the wire contract says:
 * {"seq": N, "points": [{"metric", "value", "ts"}...], "dropped": D}.
 *
 * fleet-sim's devices (agent_config sim_telemetry) sample nothing: they
 * queue synthetic points at sim_telemetry_rate a second in an in-memory
 * outbox.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define AGENT_TLM_SOCK "telemetry.sock"
#define AGENT_TLM_DROP_DIR "telemetry.d"
#define AGENT_TLM_BATCH 64		 /* points in one message */
#define AGENT_TLM_METRIC_MAX 64		 /* bytes of a metric name */
#define AGENT_TLM_DGRAM_MAX 4096	 /* bytes of a datagram or .tlm file */
#define AGENT_TLM_LOCAL_NAMES_MAX 64	 /* local names an interval */
#define AGENT_TLM_LOCAL_POINTS_MAX 256	 /* local points an interval */
#define AGENT_TLM_DGRAMS_PER_S 100	 /* datagrams read a second */
#define AGENT_TLM_FILES_MAX 64		 /* .tlm files read an interval */
#define AGENT_TLM_TS_MIN 1577836800000LL /* 2020-01-01, ms */
#define AGENT_TLM_TS_AHEAD (24LL * 3600 * 1000) /* ts up to now + 1 day */

struct agent_tlm_point {
	char metric[AGENT_TLM_METRIC_MAX + 1];
	double value;
	int64_t ts_ms;
};

/*
 * One local line "name value [ts_ms]" (@len bytes, no newline) at wall
 * clock @now_ms: the name (1..64 bytes of [A-Za-z0-9_.:-]; "app."
 * prefixed when it has no dot), a finite number, a timestamp in ms
 * within 2020-01-01..now + 1 day (default @now_ms).  Returns 0 and
 * *@ret, FL_EINVAL (the message says why).
 */
int agent_tlm_parse_line(const char *line, size_t len, int64_t now_ms,
			 struct agent_tlm_point *ret, struct fl_error *err);

/* True for a metric name of the wire contract. */
bool agent_tlm_metric_valid(const char *s);

/* @n points (1..AGENT_TLM_BATCH) as the JSON array a message carries;
 * a new string (free it). */
char *agent_tlm_points_json(const struct agent_tlm_point *p, size_t n);

/*
 * The message for outbox row @seq with points @body (the array as
 * queued, read back: checked again, FL_EPARSE when it breaks the
 * contract) and @dropped.  *@ret is a new string.
 */
int agent_tlm_message(uint64_t seq, const char *body, size_t len,
		      uint64_t dropped, char **ret, struct fl_error *err);

/* /proc/stat's totals at the previous sample (cpu.percent is a delta). */
struct agent_tlm_cpu {
	uint64_t total, idle;
};

/*
 * The built-in metrics (docs/telemetry.md) read under @root ("" on a
 * device; tests give a fake /proc and /sys) at @now_ms into @out (room
 * for @max), @cpu updated; what the kernel does not have is left out.
 * @state_dir is statvfs'd, @outbox_depth reported as it is.  Returns
 * the number of points.
 */
size_t agent_tlm_sample(const char *root, const char *state_dir,
			struct agent_tlm_cpu *cpu, uint64_t outbox_depth,
			int64_t now_ms, struct agent_tlm_point *out,
			size_t max);

/*
 * Queue @n points another feature produced (Modbus sources: modbus.c)
 * in the outbox, AGENT_TLM_BATCH a message, like the sampled ones, or
 * with @event as EVENT messages (never dropped past the outbox's
 * bounds: outbox.h); nothing when telemetry is off (its outbox did not
 * open).
 */
struct agent_host;
void agent_tlm_submit(struct agent_host *h, const struct agent_tlm_point *p,
		      size_t n, bool event);

/* Wall-clock milliseconds. */
int64_t agent_tlm_now_ms(void);

#endif
