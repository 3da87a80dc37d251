/* SPDX-License-Identifier: MIT */
#ifndef AGENT_RULES_AGENT_H
#define AGENT_RULES_AGENT_H

/*
 * Local rules in the agent (issue 16, docs/rules.md): the rules in force
 * (agent.conf [rules] file, or the shadow's "rules" text, which replaces
 * them while it is set), fed every telemetry point the agent produces,
 * with their actions:
 *   event  a point "rule.NAME" (the value that fired it, its time) queued
 *          in the outbox as an EVENT message: never dropped, delivered in
 *          order with the telemetry, QoS 1, once the broker is there;
 *   write  through the writer the agent sets (agent_rules_rt_set_writer:
 *          Modbus), so this module does not depend on it;
 *   exec   the program, argv only, on a thread of its own (at most
 *          AGENT_RULES_RUNNING_MAX at once) with the rule's timeout and
 *          its output capped (agent/proc.h): the agent never waits.
 * Owned by the telemetry feature (telemetry.c), on the agent's thread.
 */
#include <jansson.h>

#include "agent_config.h"
#include "agent_telemetry.h"
#include "outbox.h"
#include "rules.h"

#define AGENT_RULES_RUNNING_MAX 4 /* programs of exec actions at once */

typedef int (*agent_rules_write_fn)(void *ctx, const char *source,
				    const char *name, double value,
				    struct fl_error *err);

struct agent_rules_rt;

/*
 * Parse rule text @text as allowed from where it comes: agent.conf's
 * file (@shadow false: exec actions anywhere absolute, or in [rules]
 * exec_dir when set) or the shadow (exec actions only in exec_dir, none
 * without it).  Codes and messages of agent_rules_parse.
 */
int agent_rules_load_text(const struct agent_config *c, const char *text,
			  bool shadow, struct agent_rules **ret,
			  struct fl_error *err);

/*
 * The rules of agent.conf's [rules] file (none without one; a file that
 * does not parse is logged and leaves no rules), events into @ob (may be
 * NULL: none), started at monotonic @now_ms.
 */
struct agent_rules_rt *agent_rules_rt_new(const struct agent_config *c,
					  struct agent_outbox *ob,
					  int64_t now_ms);

/* Stops running programs (killed) and waits for their threads.  NULL is
 * fine. */
void agent_rules_rt_free(struct agent_rules_rt *rt);

/* The writer of write actions (NULL: they fail, logged). */
void agent_rules_rt_set_writer(struct agent_rules_rt *rt,
			       agent_rules_write_fn write, void *ctx);

/*
 * The shadow's rule text now (@text NULL: agent.conf's file again):
 * a change is parsed and replaces the rules in force (their state
 * starts again); text that does not parse keeps the old rules (the
 * shadow feature has refused it already).
 */
void agent_rules_rt_use(struct agent_rules_rt *rt, const char *text,
			int64_t now_ms);

/* @n points the agent produced, at monotonic @now_ms. */
void agent_rules_rt_feed(struct agent_rules_rt *rt,
			 const struct agent_tlm_point *p, size_t n,
			 int64_t now_ms);

/* The timer (stale rules) and the threads of finished programs. */
void agent_rules_rt_tick(struct agent_rules_rt *rt, int64_t now_ms);

/* "rules": {"source", "count", "fired", "suppressed", "failed",
 * "running"} into @into. */
void agent_rules_rt_report(const struct agent_rules_rt *rt, json_t *into);

#endif
