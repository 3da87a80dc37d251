/* SPDX-License-Identifier: MIT */
#ifndef SRV_BROKER_H
#define SRV_BROKER_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

struct srv;

/*
 * The broker side: `fleetd broker-config` writes a mosquitto
 * configuration (DESIGN §5, docs/broker.md) into STATE/broker/, and
 * `fleetd serve --with-broker` runs and supervises a local mosquitto with
 * it (restarting it if it dies).
 */
struct srv_broker;

/*
 * Write STATE/broker/{mosquitto.conf, acl, dynsec.json} for a TLS
 * listener on @listen ("HOST:PORT").  An existing dynsec.json keeps its
 * clients (mosquitto owns it once running) and only gets fleetd's default
 * ACL policy (dynsec.h).  *ret_url (may be NULL) gets the mqtts:// URL.
 */
int srv_broker_write_config(struct srv *srv, const char *listen,
			    char **ret_url, struct fl_error *err);

/* Start mosquitto with the written config and wait (bounded) until it
 * accepts TLS connections. */
int srv_broker_start(struct srv *srv, struct srv_broker **ret,
		     struct fl_error *err);

/* Check the child and restart it if it died, and send a pending reload
 * (call about once a second). */
void srv_broker_supervise(struct srv_broker *b);

/*
 * Make mosquitto re-read its CRL (SIGHUP).  Requests are coalesced and
 * sent by srv_broker_supervise at most every two seconds: a burst of
 * reloads while many clients reconnect has crashed mosquitto 2.0.11
 * (will_delay__remove assertion).  @urgent (decommission, a rotation's
 * confirm: a revoked device must not reconnect) blocks until a SIGHUP
 * was sent after the call; still at most one per two seconds, shared by
 * every urgent caller of that gap.  NULL does nothing.
 */
void srv_broker_reload(struct srv_broker *b, bool urgent);

/*
 * Make mosquitto write its persistence database now (SIGUSR1), so that
 * fleetd's session and subscriptions are in it: a broker that dies
 * (kill -9, a crash) and is started again then keeps the devices' events
 * for fleetd from its first second, instead of dropping them until
 * fleetd has reconnected and subscribed.  Call once fleetd's
 * subscriptions were granted (srv_mqtt_take_subscribed).  NULL does
 * nothing.
 */
void srv_broker_save(struct srv_broker *b);

/* Stop mosquitto (SIGTERM, bounded wait, SIGKILL). */
void srv_broker_stop(struct srv_broker *b);

/* The broker's count of messages it dropped (queues full), in $SYS. */
#define SRV_BROKER_DROPPED_TOPIC "$SYS/broker/publish/messages/dropped"

#endif
