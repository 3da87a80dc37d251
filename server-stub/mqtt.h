/* SPDX-License-Identifier: MIT */
#ifndef SRV_MQTT_H
#define SRV_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "ingest.h"

struct srv;
struct srv_mqtt;

/* MQTT payload cap, both directions (docs/protocol.md). */
#define SRV_MQTT_MAX_PAYLOAD (64 * 1024)

/*
 * fleetd's MQTT v5 client: its own client certificate, subscriptions to
 * every device's presence, status and events, commands out on
 * fleet/ID/cmd (QoS 2), dynamic-security control messages.  Runs
 * libmosquitto's network thread and reconnects by itself.
 */
int srv_mqtt_start(struct srv *srv, const char *url, struct srv_mqtt **ret,
		   struct fl_error *err);
void srv_mqtt_stop(struct srv_mqtt *m);

struct srv_mqtt_stats {
	bool connected;
	int64_t connected_since; /* Unix s of the last CONNACK; 0: never */
	uint64_t over_budget;	 /* dropped by devices' budgets (devlimit.h) */
	int64_t broker_dropped;	 /* the broker's own count ($SYS); -1 unknown */
	struct srv_ingest_stats ingest;
};

/* Counters for fleetctl status; zeros for a NULL @m (no MQTT). */
void srv_mqtt_stats(struct srv_mqtt *m, struct srv_mqtt_stats *ret);

/* True once after each connect whose subscriptions the broker granted
 * (the main loop then has the broker save them: srv_broker_save); false
 * for a NULL @m. */
bool srv_mqtt_take_subscribed(struct srv_mqtt *m);

/* Wait up to @ms for the first CONNACK; FL_ETIMEOUT otherwise. */
int srv_mqtt_wait_connected(struct srv_mqtt *m, int ms, struct fl_error *err);

/*
 * Publish a command {"id", "type", "args", "ts"} to fleet/@device/cmd
 * with QoS 2.  The new command id is copied to @ret_id (>= 40 bytes).
 * @args may be NULL; borrowed.
 */
int srv_mqtt_send_cmd(struct srv_mqtt *m, const char *device, const char *type,
		      json_t *args, char *ret_id, struct fl_error *err);

/* A new command id ("c-" and 24 hex digits) into @ret_id. */
void srv_mqtt_new_cmd_id(char ret_id[40]);

/*
 * As srv_mqtt_send_cmd with the command id @id chosen by the caller: a
 * command sent again keeps its id, and agents run a command id once.
 */
int srv_mqtt_send_cmd_id(struct srv_mqtt *m, const char *device,
			 const char *type, json_t *args, const char *id,
			 struct fl_error *err);

/*
 * Publish the diag request @payload to PREFIX/@device/diag/req with QoS
 * 1, Response Topic PREFIX/@device/diag/resp/fleetd, Correlation Data
 * @corr and a Message Expiry of @expiry_s (docs/protocol.md
 * "Diagnostics").  FL_EINVAL for a bad id, FL_EUNREACH when the client
 * refuses it.
 */
int srv_mqtt_diag_send(struct srv_mqtt *m, const char *device,
		       const unsigned char *corr, size_t corr_len,
		       const char *payload, uint32_t expiry_s,
		       struct fl_error *err);

/*
 * Publish the desired shadow message @msg (borrowed) to
 * PREFIX/@device/shadow/desired, QoS 1, retained: a device that comes
 * back gets the newest.  FL_EUNREACH without MQTT.
 */
int srv_mqtt_shadow_desired(struct srv_mqtt *m, const char *device,
			    const json_t *msg, struct fl_error *err);

/* Send dynamic-security commands for broker client @username:
 * e.g. {"createClient", "enableClient"}; errors of individual commands
 * (client exists) are the broker's business.  NULL @m does nothing. */
int srv_mqtt_dynsec(struct srv_mqtt *m, const char *const *commands, size_t n,
		    const char *username, struct fl_error *err);

#endif
