/* SPDX-License-Identifier: MIT */
#ifndef AGENT_INTERNAL_H
#define AGENT_INTERNAL_H

/*
 * struct agent, the host of the features (agent.c, features.c).  Not
 * for use outside agent/, and not by features: they see feature.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "agent_mqtt.h"
#include "identity.h"
#include "feature.h"

/* Progress events wait (coalesced) while this many messages are in
 * flight (published, not yet acknowledged by the broker). */
#define AGENT_EVENTS_INFLIGHT_MAX 10

struct agent_evq;

struct agent_inbox_msg {
	char *payload;
	size_t len;
	struct agent_msg_props props;
};

/* What features hold of the agent: a way back to it. */
struct agent_host {
	struct agent *a;
};

struct agent {
	const struct agent_config *cfg;
	struct agent_host host;
	struct agent_mqtt *mqtt;
	struct agent_cmd_log *cmds;
	struct agent_evq *evq; /* progress to send, finals until acked */
	struct agent_identity_paths cur, staged;
	struct agent_http_target http;
	char *t_presence, *t_status, *t_events, *t_cmd;
	char *seq_path;
	uint64_t seq;
	struct fl_pki_cert_info cert;
	int64_t next_status_ms;
	struct agent_inbox_msg inbox[AGENT_INBOX_MAX];
	size_t n_inbox;
	const volatile sig_atomic_t *stop;
	bool reboot_requested;
	bool in_connect; /* in the connect callback: events wait (agent.c) */
	int wake_fd; /* agent_host_wake_init's eventfd, or -1 */
	struct agent_live live; /* the shadow's settings (feature.h) */

	/* the features (feature.h) and their states, in table order */
	const struct agent_feature *const *features;
	size_t n_features;
	void *fstate[AGENT_FEATURES_MAX];
	char *f_topics[AGENT_FEATURES_MAX][AGENT_FEATURE_TOPICS_MAX];
};

/* agent.c: hand queued events to MQTT (evq.h): when connected, as many
 * as the in-flight limit allows, or all of them with @force; none during
 * the connect callback. */
void agent_events_flush(struct agent *a, bool force);

/* agent.c: a command of @type whose args.@key is @value waits in the
 * inbox (received, not dispatched yet). */
bool agent_inbox_has(const struct agent *a, const char *type, const char *key,
		     const char *value);

/* agent.c: the features' service hooks (feature.h), after draining a
 * wake-up. */
void agent_services(struct agent *a);

/* agent.c: publish status now and reset the status timer. */
void agent_publish_status(struct agent *a);

#endif
