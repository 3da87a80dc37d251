/* SPDX-License-Identifier: MIT */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

/*
 * The agent core (DESIGN §6): one struct agent per device holds
 * everything (configuration, identity, MQTT session, command log, event
 * counter, timers, its features); there is no global mutable state, and
 * log lines carry the agent's id through a per-thread log context, so
 * fleet-sim can run many agents in one process.  A single thread drives an
 * agent with agent_step (or agent_run, which loops until asked to stop).
 *
 * What it does: connects to the broker with the device certificate,
 * publishes retained presence (the will says offline), status on connect
 * and every status_interval, handles commands from fleet/ID/cmd through
 * the feature that owns their type (feature.h; idempotent by command
 * id), publishes events with a persisted per-device seq, and on stop
 * publishes offline presence and disconnects cleanly.  Updates (ota.c)
 * and certificate rotation and renewal (rotate.c) are features.
 *
 * State dir files besides the identity (identity.h): commands.json
 * (command log), seq (last event seq), confirm.json (a committed new
 * certificate that fleetd has not confirmed yet), unconfirmed.json
 * (final job events fleetd has not acknowledged, evq.h), ota.json
 * (the update journal, journal.h), bundle.head (the head of a bundle
 * being installed, stream.h) and root.json (the bundle trust root, trust.h).
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "agent_config.h"
#include "cmd.h"
#include "err.h"
#include "pki.h"

#define AGENT_SEQ_FILE "seq"
/* fleet-sim only (agent_config sim_record_commands): "ID TYPE JOB" per
 * command received, repeats included */
#define AGENT_CMD_RECORD_FILE "commands.received"
#define AGENT_CONFIRM_FILE "confirm.json"
#define AGENT_INBOX_MAX 16 /* commands queued between two steps */

struct agent;

/*
 * Set up an agent for @cfg (borrowed: it must outlive the agent): finish
 * or undo an interrupted identity swap, check the identity, open the
 * command log, read seq, create the (not yet connected) MQTT session.
 * Commands that a restart interrupted are finished as failed.
 * Returns 0, FL_ENOTFOUND (not enrolled), FL_EVERIFY (key and
 * certificate do not match or CN is not the configured id), FL_EPARSE,
 * FL_EIO, FL_ERR.
 */
int agent_new(const struct agent_config *cfg, struct agent **ret,
	      struct fl_error *err);

struct agent_feature;

/*
 * agent_new with the features @features (@n_features of them, borrowed:
 * they must outlive the agent) instead of the built-in table
 * (agent_features, feature.h); tests and fleet-sim add their own.
 * FL_ELIMIT for more than AGENT_FEATURES_MAX; a feature's init code.
 */
int agent_new_with(const struct agent_config *cfg,
		   const struct agent_feature *const *features,
		   size_t n_features, struct agent **ret, struct fl_error *err);

/* The state @f's init returned in this agent, or NULL (not one of its
 * features). */
void *agent_feature_state(const struct agent *a, const struct agent_feature *f);

/* Free the agent without saying goodbye (the broker publishes the
 * will); call agent_stop first for a clean end.  NULL is fine. */
void agent_free(struct agent *a);

/*
 * One turn of the loop, at most about @timeout_ms unless a command or a
 * renewal runs: MQTT traffic and reconnects, queued commands, status
 * timer, renewal timer, pending confirmation.  @stop (may be NULL) is
 * polled by long waits inside (rotation).
 */
void agent_step(struct agent *a, int timeout_ms,
		const volatile sig_atomic_t *stop);

/*
 * agent_step until *@stop becomes non-zero (a signal handler sets it),
 * then agent_stop.  Returns 0.
 */
int agent_run(struct agent *a, const volatile sig_atomic_t *stop,
	      struct fl_error *err);

/*
 * Publish retained offline presence, wait up to @timeout_ms for the
 * broker's acknowledgements, and disconnect normally (so the will is not
 * used).  Returns 0, or FL_ETIMEOUT when acknowledgements did not come.
 */
int agent_stop(struct agent *a, int timeout_ms);

/* True while the MQTT session is up. */
bool agent_online(const struct agent *a);

/* ------------------------------------------------------------------ */
/* Many agents on one event loop (fleet-sim)                          */
/* ------------------------------------------------------------------ */

/*
 * Instead of agent_step, which waits on the agent's own socket, a loop
 * that runs many agents polls all their sockets (agent_poll_fd) and
 * calls agent_service, which never blocks, for each one with events and
 * for each one on a timer (once a second is enough: keepalive, status,
 * reconnect delays).  When agent_work_due says a command or a feature's
 * tick (an update, a rotation) is waiting, the loop gives the agent to
 * a worker thread that calls agent_step until the work is done, and
 * takes it back then: one thread at a time per agent.
 */

/* The MQTT socket and the poll events it waits for, or -1 (no
 * connection). */
int agent_poll_fd(const struct agent *a, short *ret_events);

/* The non-blocking part of agent_step: MQTT as @revents (from poll; 0
 * on a timer) allow, connecting only when @may_connect, the status
 * timer, queued events.  Commands stay queued for agent_step. */
void agent_service(struct agent *a, short revents, bool may_connect);

/* A command is queued or a feature has work (feature.h "due"): time for
 * agent_step, which may block. */
bool agent_work_due(const struct agent *a);

enum agent_link {
	AGENT_LINK_DOWN,       /* no connection, none due yet */
	AGENT_LINK_DUE,	       /* agent_service would connect now */
	AGENT_LINK_CONNECTING, /* TLS and CONNECT under way */
	AGENT_LINK_UP,
};

/* Where the MQTT connection stands (for a cap on handshakes). */
enum agent_link agent_link(const struct agent *a);

/* Lose the connection as the network would (the broker publishes the
 * will; the agent reconnects with its backoff). */
void agent_flap(struct agent *a);

/*
 * agent_stop in three steps, so that a loop stops many agents at once:
 * agent_stop_begin sends what is queued and the retained offline
 * presence (false: not connected, nothing sent); agent_stop_flushed is
 * true once the broker acknowledged all of it (or the connection is
 * gone); agent_stop_finish disconnects without waiting.
 */
bool agent_stop_begin(struct agent *a);
bool agent_stop_flushed(const struct agent *a);
void agent_stop_finish(struct agent *a);

/* The current certificate's information (borrowed). */
const struct fl_pki_cert_info *agent_cert(const struct agent *a);

/* When the agent will renew its certificate (wall clock). */
time_t agent_renew_at(const struct agent *a);

/* Renew at the next step (tests, and fleet-sim's "renew now"). */
void agent_renew_soon(struct agent *a);

/* The last event seq used. */
uint64_t agent_seq(const struct agent *a);

/* Final job events that fleetd has not acknowledged yet. */
size_t agent_unconfirmed_events(const struct agent *a);

/*
 * Publish an event on fleet/ID/events with the next seq (persisted
 * before publishing): {"seq", "ts", "cmd" (@cmd_id or null), "type",
 * "state"} plus the members of @fields (may be NULL; borrowed).  The
 * event is returned in *@ret_event when not NULL (caller decrefs).
 * Returns 0, FL_EIO (seq not saved: nothing published), FL_ELIMIT.
 *
 * Job events (@fields has "job"; evq.h, docs/protocol.md): a progress
 * event (state not final) is queued, replacing a queued one of the same
 * job, and takes its seq when it is actually sent (*@ret_event is then
 * NULL); a final one gets its seq now and is published again, the same
 * event, at each connect and on a backoff until fleetd's "ack" for it.
 * Other events published while offline are queued by the MQTT session.
 */
int agent_publish_event(struct agent *a, const char *cmd_id, const char *type,
			const char *state, const json_t *fields,
			json_t **ret_event, struct fl_error *err);

/*
 * Finish command @cmd_id: publish its outcome event and store it in the
 * command log (for repeats).  @state is "succeeded" or "failed"; @stage
 * and @reason (may be NULL) are added for failures.  For a command
 * handler that set out->pending.
 */
void agent_cmd_complete(struct agent *a, const char *cmd_id,
			const char *type, const char *state,
			const char *stage, const char *reason,
			const json_t *fields);

/*
 * True when a job asked for a reboot: agent_run has returned for it and
 * the program reboots the device (sim mode: restarts itself, which is
 * the simulated power cycle).
 */
bool agent_reboot_requested(const struct agent *a);

/*
 * What `fleet-agent status` shows, read from @cfg's state dir without
 * connecting: id, URLs, certificate serial and validity, renewal window,
 * seq, a pending confirmation, commands remembered; and for updates the
 * booted slot and firmware, the bootloader variables, the slots, the
 * security floor, the trust root version and the current job.  *@ret is
 * a new object.  Returns 0, FL_ENOTFOUND (not enrolled), identity check
 * codes, the journal's and the bootloader's codes.
 */
int agent_status_json(const struct agent_config *cfg, json_t **ret,
		      struct fl_error *err);

#endif
