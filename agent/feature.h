/* SPDX-License-Identifier: MIT */
#ifndef AGENT_FEATURE_H
#define AGENT_FEATURE_H

/*
 * Agent features (issue 9): what the agent does besides staying
 * connected and keeping its event counter is a table of features
 * (features.c), each a struct agent_feature with hooks the agent core
 * (agent.c, "the host") calls: init, on_connect, messages on its own
 * topics, tick, the status it adds, the command types it owns, free.
 * Updates (ota.c) and certificate rotation (rotate.c) are features; the
 * coming ones (diagnostics, shadow, ...) are new table entries.
 *
 * Features see the agent only through the narrow host interface below
 * (struct agent_host and the agent_host_* functions), never through
 * struct agent.  Every hook runs on the agent's thread with the agent's
 * log context set (log.h), so fl_info() etc. lines start with the
 * device id by themselves.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "agent_config.h"
#include "cmd.h"
#include "err.h"
#include "identity.h"
#include "log.h"
#include "msgprops.h"
#include "pki.h"

#define AGENT_FEATURES_MAX 16	   /* features one agent can hold */
#define AGENT_FEATURE_TOPICS_MAX 8 /* topics one feature subscribes */

/* The agent, as its features see it. */
struct agent_host;

/* ------------------------------------------------------------------ */
/* The feature table                                                  */
/* ------------------------------------------------------------------ */

/* A command type a feature owns (handler contract: cmd.h). */
struct agent_feature_cmd {
	const char *type;
	int (*run)(struct agent_host *h, void *state,
		   const struct agent_cmd *cmd, struct agent_cmd_outcome *out,
		   struct fl_error *err);
};

/*
 * Every hook may be NULL.  @state is what init returned.
 *
 * init      at agent start, after identity, command log and event
 *           counter are loaded and before commands a restart cut short
 *           are failed.  A failure stops agent_new (optional parts log
 *           and return 0).
 * owns_running  at start-up: true when the running command @cmd_id is
 *           still carried on by the feature (not failed as interrupted).
 * on_connect  after every (re)connect, after presence and status.
 * topics    leaves under PREFIX/ID/ the feature subscribes to (QoS 1);
 *           their messages go to on_message with the leaf and the
 *           MQTT v5 properties.  Called inside the MQTT loop: queue
 *           work, do not block.  Commands on PREFIX/ID/cmd are the
 *           host's: they reach the feature that owns their type.
 * tick      each agent_step (may block for a long job, calling
 *           agent_host_pump meanwhile).  A feature whose tick may block
 *           says when it has such work through due; fleet-sim then runs
 *           the agent's step on a worker thread, and without that work
 *           keeps the agent on its event loop, where ticks do not run.
 * due       true when tick has work to do now (may be NULL: the tick
 *           has none, ever).  Cheap and without side effects: fleet-sim
 *           asks it for every agent on its loop.
 * service   short work that must not wait for another feature's long
 *           tick (the replies of checks that ran on other threads):
 *           on every agent_step, agent_host_pump and agent_service
 *           turn.  Never blocks.
 * on_puback the broker acknowledged the QoS 1 message @mid (any
 *           message's: a feature ignores the mids it did not publish
 *           with agent_host_publish_mid); @ok false: it refused it.
 * report    add fields to the status published on PREFIX/ID/status
 *           (presence takes "firmware" from it).
 * status    add fields to `fleet-agent status` from @cfg's state dir
 *           without a running agent; @cert is the current certificate.
 */
struct agent_feature {
	const char *name;
	int (*init)(struct agent_host *h, void **ret_state,
		    struct fl_error *err);
	bool (*owns_running)(void *state, const char *cmd_id);
	void (*on_connect)(struct agent_host *h, void *state);
	const char *topics[AGENT_FEATURE_TOPICS_MAX + 1]; /* NULL-ended */
	void (*on_message)(struct agent_host *h, void *state, const char *leaf,
			   const void *payload, size_t len,
			   const struct agent_msg_props *props);
	void (*tick)(struct agent_host *h, void *state);
	bool (*due)(const struct agent_host *h, const void *state);
	void (*service)(struct agent_host *h, void *state);
	void (*on_puback)(struct agent_host *h, void *state, int mid, bool ok);
	void (*report)(void *state, json_t *into);
	int (*status)(const struct agent_config *cfg,
		      const struct fl_pki_cert_info *cert, json_t *into,
		      struct fl_error *err);
	const struct agent_feature_cmd *cmds; /* ends with a NULL type */
	void (*free)(void *state);
};

/* The features every agent runs, in order (features.c). */
extern const struct agent_feature *const agent_features[];
extern const size_t agent_n_features;

/* The features built in (their files). */
extern const struct agent_feature agent_feature_rotate;	   /* rotate.c */
extern const struct agent_feature agent_feature_events;	   /* agent.c */
extern const struct agent_feature agent_feature_ota;	   /* ota.c */
extern const struct agent_feature agent_feature_diag;	   /* diag.c */
extern const struct agent_feature agent_feature_shadow;	   /* shadow.c */
extern const struct agent_feature agent_feature_telemetry; /* telemetry.c */

/*
 * Check a feature table: at most AGENT_FEATURES_MAX, names given and
 * unique, every command type with a handler and owned by exactly one
 * feature, none claiming fleetd's "ack" (the host's).  agent_new_with
 * refuses a table that fails.  Returns 0, FL_ELIMIT, FL_EINVAL.
 */
int agent_features_check(const struct agent_feature *const *f, size_t n,
			 struct fl_error *err);

/*
 * The command @type in @features (@n of them): its owner in *@ret_f
 * and entry in *@ret_cmd (either may be NULL).  Returns false for a
 * type no feature owns.
 */
bool agent_feature_find_cmd(const struct agent_feature *const *features,
			    size_t n, const char *type,
			    const struct agent_feature **ret_f,
			    const struct agent_feature_cmd **ret_cmd);

/* ------------------------------------------------------------------ */
/* The host interface                                                 */
/* ------------------------------------------------------------------ */

/*
 * Settings the device shadow (shadow.c, docs/shadow.md) changes while
 * the agent runs, over agent.conf's: the features that use one read it
 * here each time.  Zeroed: agent.conf's values.
 */
struct agent_live {
	bool diag_off;		      /* "diagnostics": false */
	bool rate_set;		      /* "download_rate" given: */
	uint64_t download_rate;	      /* bytes/s, 0 = unlimited */
	int64_t telemetry_interval_s; /* 0: agent.conf's (telemetry.c) */
	char maintenance_window[12];  /* "HH:MM-HH:MM"; "": any time (updates,
				       * later) */
	const char *rules_text;	      /* "rules": the rule file's text (borrowed
				       * from the shadow feature until its next
				       * apply); NULL: agent.conf's [rules] file */
};

/* The agent's live settings (writable: the shadow feature's). */
struct agent_live *agent_host_live(struct agent_host *h);

/* The agent's configuration (borrowed) and its state dir. */
const struct agent_config *agent_host_config(const struct agent_host *h);
const char *agent_host_state_dir(const struct agent_host *h);

/* Clocks: monotonic milliseconds and wall-clock seconds. */
int64_t agent_host_now_ms(const struct agent_host *h);
time_t agent_host_time(const struct agent_host *h);

/* True once the agent was asked to stop (long steps give up). */
bool agent_host_stopping(const struct agent_host *h);

/* True while the MQTT session is up. */
bool agent_host_online(const struct agent_host *h);

/* Publish an event (agent_publish_event in agent.h). */
int agent_host_publish_event(struct agent_host *h, const char *cmd_id,
			     const char *type, const char *state,
			     const json_t *fields, json_t **ret_event,
			     struct fl_error *err);

/* Finish a pending command (agent_cmd_complete in agent.h). */
void agent_host_complete(struct agent_host *h, const char *cmd_id,
			 const char *type, const char *state, const char *stage,
			 const char *reason, const json_t *fields);

/* The state of command @cmd_id in the command log: 0 and *@ret, or
 * FL_ENOTFOUND. */
int agent_host_cmd_state(const struct agent_host *h, const char *cmd_id,
			 enum agent_cmd_state *ret);

/* Publish status now / at the next step. */
void agent_host_publish_status(struct agent_host *h);
void agent_host_status_soon(struct agent_host *h);

/* Publish @len bytes on @topic (a full topic, e.g. a response topic)
 * with MQTT v5 @props (may be NULL; the correlation data of a request
 * goes back in a reply); codes of agent_mqtt_publish_props. */
int agent_host_publish(struct agent_host *h, const char *topic,
		       const void *payload, size_t len, int qos, bool retain,
		       const struct agent_msg_props *props,
		       struct fl_error *err);

/* Publish at QoS 1 now (connected only: FL_EUNREACH), the message id in
 * *@ret_mid for on_puback; codes of agent_mqtt_publish_mid. */
int agent_host_publish_mid(struct agent_host *h, const char *topic,
			   const void *payload, size_t len, int *ret_mid,
			   struct fl_error *err);

/*
 * Keep MQTT and the event queue moving while a long step runs (waits up
 * to @timeout_ms for traffic).  Commands that arrive stay queued for the
 * next step.  Returns 0, or FL_ERR when the agent is stopping.
 */
int agent_host_pump(struct agent_host *h, int timeout_ms, struct fl_error *err);

/* True when a command of @type whose args.@key is the string @value
 * waits in the queue (a "cancel" for a running job). */
bool agent_host_cmd_waiting(const struct agent_host *h, const char *type,
			    const char *key, const char *value);

/* The device's identity: current certificate information, the file
 * paths (current or staged) and fleetd's HTTPS target. */
const struct fl_pki_cert_info *agent_host_cert(const struct agent_host *h);
const struct agent_identity_paths *
agent_host_identity(const struct agent_host *h, bool staged);
const struct agent_http_target *agent_host_http(const struct agent_host *h);

/*
 * Use the current or @staged identity files for MQTT; with @reconnect,
 * reconnect now and wait up to @timeout_ms for the broker's CONNACK
 * (0 without @reconnect).  agent_host_resume goes back to normal
 * reconnecting after a failed try.  @info (may be NULL) is the new
 * current certificate after a commit.  Codes of agent_mqtt.h.
 */
int agent_host_use_identity(struct agent_host *h, bool staged, bool reconnect,
			    int timeout_ms, struct fl_error *err);
void agent_host_resume(struct agent_host *h);
void agent_host_set_cert(struct agent_host *h,
			 const struct fl_pki_cert_info *info);

/*
 * Let another thread wake the agent: agent_host_wake_init (on the
 * agent's thread, at init) gives the agent a wake-up descriptor that
 * its waits in agent_step also watch; agent_host_wake, safe from any
 * thread, ends the current or next such wait, so the service hooks run
 * at once.  Returns 0 or FL_EIO.  Without init, a wake does nothing and
 * services run at the next turn (fleet-sim's loop: about a second).
 */
int agent_host_wake_init(struct agent_host *h, struct fl_error *err);
void agent_host_wake(struct agent_host *h);

/* A job needs the device rebooted: agent_run returns and the program
 * reboots (agent_reboot). */
void agent_host_request_reboot(struct agent_host *h);

/* The host of agent @a, to run a feature's hook by hand (tests,
 * fleet-sim). */
struct agent;
struct agent_host *agent_host_of(struct agent *a);

/* The feature state of @f in this agent, or NULL. */
void *agent_host_feature(const struct agent_host *h,
			 const struct agent_feature *f);

/* A random 32-bit number (OpenSSL RAND; falls back to the clock). */
uint32_t agent_rand32(void);

#endif
