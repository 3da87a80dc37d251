/* SPDX-License-Identifier: MIT */
#ifndef AGENT_MQTT_H
#define AGENT_MQTT_H

/*
 * The agent's MQTT v5 session over libmosquitto (DESIGN §5,
 * docs/protocol.md): TLS with the device certificate, the broker
 * verified against the pinned CA including its host name, a persistent
 * session (clean start off, a session-expiry interval), a last will,
 * reconnection with capped exponential backoff and jitter, and a cap on
 * inbound payloads.  No threads: the owner drives everything with
 * agent_mqtt_step from its loop, and callbacks run inside that call.
 *
 * Not thread-safe; use one struct agent_mqtt from one thread at a time.
 * Several can live in one process (fleet-sim).  The file is named
 * agent_mqtt.h so it never shadows a common mqtt.h.
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msgprops.h"

#define AGENT_MQTT_MAX_PAYLOAD (64 * 1024) /* inbound and outbound */
#define AGENT_MQTT_CONNACK_TIMEOUT_MS 30000

struct agent_mqtt;

struct agent_mqtt_opts {
	const char *client_id; /* the device id (the broker forces it too) */
	const char *host;
	int port;
	const char *ca_file;   /* pinned trust anchor for the broker */
	const char *cert_file; /* client certificate */
	const char *key_file;  /* its key */
	int keepalive_s;
	uint32_t session_expiry_s; /* 0: session ends with the connection */
	const char *will_topic;	   /* NULL: no will */
	const char *will_payload;  /* sent retained, QoS 1 */
	size_t max_payload;	   /* 0: AGENT_MQTT_MAX_PAYLOAD */
	int64_t reconnect_min_ms;  /* backoff bounds; 0: 1 s and 5 min */
	int64_t reconnect_max_ms;

	/* Callbacks, called from agent_mqtt_step/connect_wait; may be
	 * NULL.  They may publish and subscribe, never free @m. */
	void *user;
	void (*on_connect)(void *user, bool session_present);
	void (*on_disconnect)(void *user);
	/* A message within the payload cap (bigger ones are dropped and
	 * logged) with its MQTT v5 properties (msgprops.h, capped); all
	 * are valid during the call only. */
	void (*on_message)(void *user, const char *topic, const void *payload,
			   size_t len, const struct agent_msg_props *props);
	/* The broker acknowledged QoS 1/2 message @mid (PUBACK, PUBCOMP)
	 * with MQTT v5 @reason (>= 128: refused). */
	void (*on_publish)(void *user, int mid, int reason);
};

/*
 * Create a session (not yet connected; agent_mqtt_step connects).
 * Copies the strings.  Returns 0, FL_EINVAL (missing id, host, files),
 * FL_ERR (libmosquitto refused the settings, e.g. unreadable files).
 */
int agent_mqtt_new(const struct agent_mqtt_opts *o, struct agent_mqtt **ret,
		   struct fl_error *err);

/* Close the connection (without a DISCONNECT: like a crash, so the will
 * fires) and free; NULL is fine.  Call agent_mqtt_disconnect first for
 * a clean end. */
void agent_mqtt_free(struct agent_mqtt *m);

/*
 * Drive the session for up to @timeout_ms: connect when disconnected and
 * the backoff delay has passed, process network traffic and run the
 * callbacks.  Connection failures are logged and retried later with
 * backoff; this never fails.
 */
void agent_mqtt_step(struct agent_mqtt *m, int timeout_ms);

/* agent_mqtt_step's wait also ends when @fd (-1: none) is readable;
 * the owner drains it.  Other waits (connect, flush) ignore it. */
void agent_mqtt_set_wake_fd(struct agent_mqtt *m, int fd);

/* True after a successful CONNACK, until the connection drops. */
bool agent_mqtt_connected(const struct agent_mqtt *m);

/*
 * Connect now (closing any connection first) and wait up to @timeout_ms
 * for the broker's CONNACK, stopping early when *@stop becomes non-zero
 * (@stop may be NULL).  One attempt, no retries.  Returns 0 when
 * connected, FL_EDENIED (the broker or TLS refused us), FL_EUNREACH,
 * FL_ETIMEOUT.  After a failure the next agent_mqtt_step tries again
 * at once.
 */
int agent_mqtt_connect_wait(struct agent_mqtt *m, int timeout_ms,
			    const volatile sig_atomic_t *stop,
			    struct fl_error *err);

/*
 * Publish @len bytes (at most the payload cap: FL_ELIMIT).  QoS 1 and 2
 * messages published while disconnected are queued in memory and sent
 * after reconnecting (unless the identity changes in between).
 * Returns 0, FL_ELIMIT, FL_EINVAL, FL_EUNREACH (QoS 0 while
 * disconnected), FL_ERR.
 */
int agent_mqtt_publish(struct agent_mqtt *m, const char *topic,
		       const void *payload, size_t len, int qos, bool retain,
		       struct fl_error *err);

/* agent_mqtt_publish with MQTT v5 properties (@props may be NULL):
 * response topic, correlation data, user properties.  FL_EINVAL when
 * one is refused (not UTF-8, over AGENT_MSG_PROP_MAX). */
int agent_mqtt_publish_props(struct agent_mqtt *m, const char *topic,
			     const void *payload, size_t len, int qos,
			     bool retain, const struct agent_msg_props *props,
			     struct fl_error *err);

/* agent_mqtt_publish at QoS 1 while connected, the message id in
 * *@ret_mid (on_publish names it); FL_EUNREACH when not connected
 * (nothing is queued). */
int agent_mqtt_publish_mid(struct agent_mqtt *m, const char *topic,
			   const void *payload, size_t len, int *ret_mid,
			   struct fl_error *err);

/* Subscribe to @topic.  Returns 0, FL_EUNREACH (not connected), FL_ERR. */
int agent_mqtt_subscribe(struct agent_mqtt *m, const char *topic, int qos,
			 struct fl_error *err);

/* Messages published and not yet acknowledged by the broker (queued
 * ones while disconnected included). */
int agent_mqtt_inflight(const struct agent_mqtt *m);

/* Wait up to @timeout_ms until every published message was
 * acknowledged.  Returns 0 or FL_ETIMEOUT. */
int agent_mqtt_flush(struct agent_mqtt *m, int timeout_ms);

/* Send DISCONNECT (normal: the will is not published) and close.  The
 * session then stays disconnected until agent_mqtt_connect_wait or
 * agent_mqtt_resume. */
void agent_mqtt_disconnect(struct agent_mqtt *m);

/* Let agent_mqtt_step reconnect again after agent_mqtt_disconnect. */
void agent_mqtt_resume(struct agent_mqtt *m);

/*
 * Use other certificate and key files from the next connection on.
 * With @reconnect the current connection is closed cleanly and a fresh
 * client is built, so the next connection presents the new certificate
 * (in-memory queued messages are lost).  Without it, the change only
 * records new names for the same key and certificate (after a rename).
 * Returns 0, FL_EINVAL, FL_ERR.
 */
int agent_mqtt_set_identity(struct agent_mqtt *m, const char *cert_file,
			    const char *key_file, bool reconnect,
			    struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Driven from the owner's poll loop (fleet-sim)                      */
/* ------------------------------------------------------------------ */

/*
 * Many sessions in one thread: instead of agent_mqtt_step, which waits
 * on its one socket, the owner polls the sockets of all its sessions
 * and hands each what poll() reported.  Both ways may be mixed on one
 * session (fleet-sim hands a session that has long work to do to a
 * worker thread, which uses agent_mqtt_step), one thread at a time.
 */

/*
 * The socket to poll and the events it waits for in *@ret_events
 * (POLLIN, and POLLOUT while output is queued), or -1 when there is no
 * connection (then only timers matter: call agent_mqtt_service with 0
 * when the owner's timer for this session runs).
 */
int agent_mqtt_poll_fd(const struct agent_mqtt *m, short *ret_events);

/*
 * agent_mqtt_step without waiting: @revents is what poll() reported for
 * agent_mqtt_poll_fd's socket (0 for a call on a timer).  Starts a
 * connection when one is due and @may_connect (the owner's cap on
 * handshakes in progress), reads and writes what the socket takes now,
 * sends keepalives, gives up on a missing CONNACK.  Callbacks run
 * inside.  Never waits, but for the TCP connect() to the broker, which
 * libmosquitto makes blocking (immediate on loopback).
 */
void agent_mqtt_service(struct agent_mqtt *m, short revents, bool may_connect);

/* The session is disconnected, not paused, and its reconnect delay has
 * passed: agent_mqtt_service would start a connection now. */
bool agent_mqtt_connect_due(const struct agent_mqtt *m);

/* A connection is being set up (TCP, TLS, CONNECT sent, no CONNACK). */
bool agent_mqtt_connecting(const struct agent_mqtt *m);

/*
 * Lose the connection as a network failure would: the socket is shut
 * down without a DISCONNECT (so the broker publishes the will), the
 * session notices at once and reconnects with its backoff, and the QoS
 * 1 and 2 messages not yet acknowledged are sent again then.  Nothing
 * happens when not connected.
 */
void agent_mqtt_drop(struct agent_mqtt *m);

/* agent_mqtt_disconnect without waiting: the DISCONNECT goes out if the
 * socket takes it now (else the broker sees the connection close and
 * publishes the will). */
void agent_mqtt_disconnect_now(struct agent_mqtt *m);

/*
 * A function called with true before and false after every
 * mosquitto_new() and connect of every session in the process (NULL:
 * none), on the calling thread.  fleet-sim refuses there the socket
 * pair libmosquitto opens per client to wake its own network thread,
 * which a loop that polls the sockets itself never uses (sim_nopair.c).
 * Set it once at start, before any session exists.
 */
void agent_mqtt_set_client_hook(void (*hook)(bool entering));

/* ------------------------------------------------------------------ */
/* Backoff: capped exponential with "equal jitter"                    */
/* ------------------------------------------------------------------ */

struct agent_backoff {
	int64_t min_ms, max_ms;
	unsigned attempt;
};

/*
 * The delay before the next attempt: with cap = min(max, min * 2^n) for
 * the n-th consecutive failure, a value in [cap/2, cap] chosen by @rnd.
 * Advances the attempt counter.
 */
int64_t agent_backoff_next(struct agent_backoff *b, uint32_t rnd);

/* After a success: start again from the minimum. */
void agent_backoff_reset(struct agent_backoff *b);

#endif
