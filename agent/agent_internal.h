/* SPDX-License-Identifier: MIT */
#ifndef AGENT_INTERNAL_H
#define AGENT_INTERNAL_H

/*
 * struct agent, shared by agent.c (loop, presence, status, events,
 * commands) and rotate.c (rotation, renewal, confirmation).  Not for
 * use outside agent/.
 */
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "agent_mqtt.h"
#include "identity.h"
#include "ota.h"

/* Progress events wait (coalesced) while this many messages are in
 * flight (published, not yet acknowledged by the broker). */
#define AGENT_EVENTS_INFLIGHT_MAX 10

struct agent_evq;

struct agent_inbox_msg {
	char *payload;
	size_t len;
};

struct agent {
	const struct agent_config *cfg;
	struct agent_mqtt *mqtt;
	struct agent_cmd_log *cmds;
	struct agent_evq *evq; /* progress to send, finals until acked */
	struct agent_identity_paths cur, staged;
	struct agent_http_target http;
	char *t_presence, *t_status, *t_events, *t_cmd;
	char *seq_path, *confirm_path;
	uint64_t seq;
	struct fl_pki_cert_info cert;
	time_t renew_at;
	int64_t next_status_ms;
	struct agent_inbox_msg inbox[AGENT_INBOX_MAX];
	size_t n_inbox;
	const volatile sig_atomic_t *stop;

	/* a committed certificate fleetd has not confirmed yet */
	bool confirm_pending;
	char confirm_cmd[AGENT_CMD_ID_MAX + 1]; /* "" for a renewal */
	int64_t confirm_next_ms;
	struct agent_backoff confirm_backoff;

	/* renewal retries after a failure */
	int64_t renew_next_ms;
	struct agent_backoff renew_backoff;

	/* updates and rollbacks (ota.c) */
	struct agent_ota *ota;
};

/* agent.c: a "cancel" command for @job waits in the inbox (received,
 * not dispatched yet: a long update step checks it between chunks). */
bool agent_inbox_cancels(const struct agent *a, const char *job);

/* agent.c: hand queued events to MQTT (evq.h): when connected, as many
 * as the in-flight limit allows, or all of them with @force. */
void agent_events_flush(struct agent *a, bool force);

/* A random 32-bit number (OpenSSL RAND; falls back to the clock). */
uint32_t agent_rand32(void);

/* Publish status now and reset the status timer. */
void agent_publish_status(struct agent *a);

/* rotate.c: load confirm.json at start-up (drop it when stale). */
int agent_confirm_load(struct agent *a, struct fl_error *err);

/* rotate.c: timers of agent_step (renewal, confirmation retries). */
void agent_rotate_tick(struct agent *a);

/* rotate.c: recompute renew_at from the current certificate. */
void agent_schedule_renewal(struct agent *a);

#endif
