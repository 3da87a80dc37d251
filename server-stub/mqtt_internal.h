/* SPDX-License-Identifier: MIT */
#ifndef SRV_MQTT_INTERNAL_H
#define SRV_MQTT_INTERNAL_H

/*
 * mqtt.c's message handler without the network, for its fuzz target
 * (tests/fuzz/fuzz_mqtt.c) and tests; not for other callers.
 */
#include <stdbool.h>

#include <mosquitto.h>

#include "err.h"

struct srv;
struct srv_mqtt;

/*
 * Everything srv_mqtt_start sets up (topics, the per-device budget from
 * srv->cfg, the ingest queue and writer, the client) except TLS and the
 * connection: nothing is ever received, and what is published waits in
 * the client.  Free with srv_mqtt_stop.
 */
int srv_mqtt_new(struct srv *srv, struct srv_mqtt **ret, struct fl_error *err);

/*
 * What fleetd does with a message from the broker (the client's message
 * callback): the broker's own counters, or a device's presence, status
 * or event checked (topic, budget) and queued for the writer, or its
 * reply to a diag request handed to the relay (needs the correlation
 * data in @props; NULL: none).
 */
void srv_mqtt_on_message(struct srv_mqtt *m,
			 const struct mosquitto_message *msg,
			 const mosquitto_property *props);

/* Wait up to @ms until every queued message is stored (srv_ingest_drain). */
bool srv_mqtt_drain(struct srv_mqtt *m, int ms);

#endif
