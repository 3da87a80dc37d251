/* SPDX-License-Identifier: MIT */
/*
 * fleetd's MQTT side (DESIGN §5, docs/protocol.md): an MQTT v5 client
 * with fleetd's own certificate that learns presence, status, events,
 * shadow reports and telemetry from every device and sends commands.  Every
 * payload is untrusted: capped, parsed as JSON, checked field by field, and
 * dropped (logged) when wrong.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "broker.h"
#include "ca.h"
#include "devlimit.h"
#include "diag_relay.h"
#include "dynsec.h"
#include "ingest.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "mqtt_internal.h"
#include "proto.h"
#include "srv.h"
#include "util.h"
#include "validate.h"

#define SESSION_EXPIRY (7 * 86400)
/* fleetd's own presence (PREFIX/fleetd/presence) is retained; the will
 * says offline */
#define OFFLINE "{\"online\":false}"
#define KEEPALIVE 30
/* QoS 1/2 messages the broker may have in flight to fleetd */
#define RECEIVE_MAXIMUM 200
#define DYNSEC_TOPIC "$CONTROL/dynamic-security/v1"

/* Replicas share these subscriptions: the broker hands each message to
 * one of them (MQTT v5 shared subscriptions, docs/scale.md). */
#define SHARE_GROUP "$share/fleetd/"

/* What fleetd subscribes to, and where each goes; @split: shared
 * between replicas (presence is retained, which a shared subscription
 * is never sent, and every replica takes it in). */
static const struct {
	enum fl_topic_kind kind;
	enum srv_ingest_kind ingest;
	bool split;
} kinds[] = {
    {FL_TOPIC_PRESENCE, SRV_INGEST_PRESENCE, false},
    {FL_TOPIC_STATUS, SRV_INGEST_STATUS, true},
    {FL_TOPIC_EVENTS, SRV_INGEST_EVENT, true},
    {FL_TOPIC_SHADOW_REPORTED, SRV_INGEST_SHADOW, true},
    {FL_TOPIC_TELEMETRY, SRV_INGEST_TELEMETRY, true},
};

struct srv_mqtt {
	struct srv *srv;
	struct mosquitto *mosq;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected, stopping;
	bool subscribed; /* a SUBACK for subs[] not taken yet */
	int64_t connected_since; /* the last CONNACK, Unix s */
	/* owned by the network thread (callbacks run there too) */
	int sub_mid; /* the SUBSCRIBE of subs[] */
	struct srv_devlimit *limit;
	int64_t last_expire_ms;
	struct srv_ingest *ingest; /* queue and writer to the store */
	uint64_t over_budget;	   /* messages dropped by the budget */
	int64_t broker_dropped;	   /* the broker's own count; -1 unknown */
	const char *prefix;	   /* topic prefix (srv->cfg) */
	/* SRV_MQTT_USER, or "fleetd.NAME" for replica NAME: the broker
	 * makes the certificate's CN the client id */
	char *user;
	bool shared;	/* a replica: shared subscriptions */
	char *presence; /* this fleetd's own presence topic */
	char *all;	/* PREFIX/#: what a muted device loses */
	char *subs[FL_ARRAY_SIZE(kinds)]; /* PREFIX/+/KIND of kinds[] */
	char *diag_sub; /* PREFIX/+/diag/resp/fleetd: replies to fleetd */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mosquitto_lib_init();
}

static int dynsec_send(struct srv_mqtt *m, json_t *cmds, struct fl_error *err);
static int publish(struct srv_mqtt *m, enum fl_topic_kind kind,
		   const char *topic, const json_t *payload, int qos,
		   bool retain, struct fl_error *err);

/* A dynsec command on the mute role for @username. */
static json_t *role_cmd(const char *command, const char *username)
{
	return json_pack("{s:s, s:s, s:s}", "command", command, "username",
			 username, "rolename", SRV_DYNSEC_MUTED_ROLE);
}

/* Deny @id every publish at the broker: its flood stops at the source. */
static void mute(struct srv_mqtt *m, const char *id)
{
	struct fl_error err = {0};
	json_t *cmds = json_array();

	/* (a device enrolled before dynsec was used is not a client yet) */
	json_array_append_new(cmds, json_pack("{s:s, s:s}", "command",
					      "createClient", "username", id));
	json_array_append_new(cmds, role_cmd("addClientRole", id));
	fl_warn("device %s is over its message rate limit (%llu/s, burst "
		"%llu): its messages are dropped and it is muted at the "
		"broker for %lld s",
		id, (unsigned long long)m->srv->cfg.device_rate,
		(unsigned long long)m->srv->cfg.device_burst,
		(long long)m->srv->cfg.device_mute);
	if (dynsec_send(m, cmds, &err))
		fl_error("muting %s: %s", id, err.msg);
}

static void unmute(const char *id, uint64_t dropped, void *arg)
{
	struct srv_mqtt *m = arg;
	struct fl_error err = {0};
	json_t *cmds = json_array();

	json_array_append_new(cmds, role_cmd("removeClientRole", id));
	fl_info("device %s unmuted (%llu messages dropped so far)", id,
		(unsigned long long)dropped);
	if (dynsec_send(m, cmds, &err))
		fl_error("unmuting %s: %s", id, err.msg);
}

/*
 * Charge a message of @id to its budget (devlimit.h); false when it must
 * be dropped, before anything parses it.  Drops are counted, not logged.
 */
static bool within_budget(struct srv_mqtt *m, const char *id)
{
	switch (srv_devlimit_take(m->limit, id, fl_now_ms())) {
	case SRV_DEVLIMIT_PASS:
		return true;
	case SRV_DEVLIMIT_MUTE:
		mute(m, id);
		break;
	default:
		break;
	}
	__atomic_add_fetch(&m->over_budget, 1, __ATOMIC_RELAXED);
	return false;
}

/*
 * The network thread: check the topic and the device's budget, then hand
 * a copy to the ingest queue, which parses and stores it.  When the
 * queue is full this waits, and so does the broker (ingest.h).
 */
/* The broker's dropped-message count: warn when it grows. */
static void on_broker_dropped(struct srv_mqtt *m,
			      const struct mosquitto_message *msg)
{
	char text[24];
	uint64_t v;
	int64_t was;

	if (msg->payloadlen <= 0 || msg->payloadlen >= (int)sizeof(text))
		return;
	memcpy(text, msg->payload, (size_t)msg->payloadlen);
	text[msg->payloadlen] = '\0';
	if (fl_parse_uint(text, INT64_MAX, &v, NULL))
		return;
	was = __atomic_exchange_n(&m->broker_dropped, (int64_t)v,
				  __ATOMIC_RELAXED);
	if (was >= 0 && (int64_t)v > was)
		fl_warn("the broker dropped %lld messages (%llu since it "
			"started): a session queue was full (max_queued_"
			"messages); see fleetctl status",
			(long long)((int64_t)v - was), (unsigned long long)v);
}

/*
 * A device's reply to one of fleetd's diag requests: to the relay
 * (diag.h), which matches it by its correlation data and ignores what
 * matches nothing.  Replies meant for another requester are not ours.
 */
static void on_diag_reply(struct srv_mqtt *m, const char *id,
			  const char *requester,
			  const struct mosquitto_message *msg,
			  const mosquitto_property *props)
{
	void *corr = NULL;
	uint16_t len = 0;
	enum srv_diag_match match;

	if (!m->srv->diag || !props || !fl_streq(requester, SRV_MQTT_USER))
		return;
	if (!mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA,
					    &corr, &len, false)) {
		fl_debug("%s: diag reply without correlation data", id);
		return;
	}
	match = srv_diag_reply(m->srv->diag, id, corr, len, msg->payload,
			       (size_t)msg->payloadlen, fl_now_ms());
	if (match != SRV_DIAG_MATCHED)
		fl_debug("%s: diag reply matches no waiting request (%d): "
			 "ignored",
			 id, (int)match);
	free(corr);
}

void srv_mqtt_on_message(struct srv_mqtt *m,
			 const struct mosquitto_message *msg,
			 const mosquitto_property *props)
{
	char id[FL_ID_MAX + 1];
	enum fl_topic_kind kind;
	const char *sub = NULL;

	if (fl_topic_parse(m->prefix, msg->topic, id, &kind, &sub, NULL))
		kind = FL_TOPIC_NKINDS; /* "other" in the metrics */
	srv_metrics_mqtt(SRV_MQTT_IN, kind);
	if (strcmp(msg->topic, SRV_BROKER_DROPPED_TOPIC) == 0) {
		on_broker_dropped(m, msg);
		return;
	}
	if (kind == FL_TOPIC_NKINDS || srv_mqtt_user_is_fleetd(id))
		return;
	if (!within_budget(m, id))
		return;
	if (msg->payloadlen <= 0) /* a cleared retained message */
		return;
	if (kind == FL_TOPIC_DIAG_RESP) {
		on_diag_reply(m, id, sub, msg, props);
		return;
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(kinds); i++)
		if (kind == kinds[i].kind &&
		    !srv_ingest_push(m->ingest, kinds[i].ingest, id,
				     msg->payload, (size_t)msg->payloadlen))
			fl_warn("%s: fleetd is stopping: message dropped",
				msg->topic);
}

static void on_message(struct mosquitto *mosq, void *obj,
		       const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	srv_mqtt_on_message(obj, msg, props);
}

/* After the commit: tell the device its final event is stored, so it
 * stops publishing it again, and which events of its history are not
 * (docs/protocol.md, "ack"). */
static void ack(void *arg, const char *device, int64_t seq, const char *job,
		const char *state, const int64_t *missing, size_t n_missing)
{
	struct srv_mqtt *m = arg;
	struct fl_error err = {0};
	char id[40], ts[21], *topic;
	json_t *cmd;

	snprintf(id, sizeof(id), "ack-%lld", (long long)seq);
	fl_time_rfc3339(time(NULL), ts);
	cmd = json_pack("{s:s, s:s, s:{s:I, s:s, s:s}, s:s}", "id", id, "type",
			"ack", "args", "seq", (json_int_t)seq, "job", job,
			"state", state, "ts", ts);
	if (n_missing) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n_missing; i++)
			json_array_append_new(arr, json_integer(missing[i]));
		json_object_set_new(json_object_get(cmd, "args"), "missing",
				    arr);
	}
	if (!fl_topic_build(m->prefix, device, FL_TOPIC_CMD, NULL, &topic,
			    &err)) {
		if (publish(m, FL_TOPIC_CMD, topic, cmd, 1, false, &err))
			fl_warn("confirming event %lld to %s: %s",
				(long long)seq, device, err.msg);
		free(topic);
	}
	json_decref(cmd);
}

static void publish_presence(struct srv_mqtt *m, bool online)
{
	char ts[21], *text;

	fl_time_rfc3339(time(NULL), ts);
	text = online ? fl_xasprintf("{\"online\":true,\"version\":\"%s\","
				     "\"ts\":\"%s\"}",
				     FLEET_VERSION, ts)
		      : fl_xstrdup(OFFLINE);
	mosquitto_publish_v5(m->mosq, NULL, m->presence, (int)strlen(text),
			     text, 1, true, NULL);
	free(text);
}

/*
 * At every connect: a running broker keeps the default ACL access in
 * memory and saves it over dynsec.json, so set fleetd's policy there too
 * (an external broker gets it this way only); and start the mute role
 * afresh (deleting it unmutes everyone), since fleetd's own record of
 * mutes is reset with it.
 */
static void send_policy(struct srv_mqtt *m)
{
	struct fl_error err = {0};
	json_t *cmds = json_array();

	json_array_append_new(cmds,
			      json_pack("{s:s, s:s}", "command", "deleteRole",
					"rolename", SRV_DYNSEC_MUTED_ROLE));
	json_array_append_new(
	    cmds, json_pack("{s:s, s:s, s:[{s:s, s:s, s:b}]}", "command",
			    "createRole", "rolename", SRV_DYNSEC_MUTED_ROLE,
			    "acls", "acltype", "publishClientSend", "topic",
			    m->all, "allow", 0));
	json_array_append_new(cmds, srv_dynsec_policy_cmd());
	srv_devlimit_expire(m->limit, fl_now_ms(), true, NULL, NULL);
	if (dynsec_send(m, cmds, &err))
		fl_warn("setting the broker's default ACL access: %s", err.msg);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	static char *const sys[] = {SRV_BROKER_DROPPED_TOPIC};
	struct srv_mqtt *m = obj;

	if (rc) {
		fl_warn("broker refused fleetd: %s",
			mosquitto_reason_string(rc));
		return;
	}
	mosquitto_subscribe_multiple(mosq, &m->sub_mid,
				     (int)FL_ARRAY_SIZE(m->subs), m->subs, 1, 0,
				     NULL);
	mosquitto_subscribe_v5(mosq, NULL, m->diag_sub, 1, 0, NULL);
	mosquitto_subscribe_multiple(mosq, NULL, 1, sys, 0, 0, NULL);
	send_policy(m);
	publish_presence(m, true);
	pthread_mutex_lock(&m->lock);
	m->connected = true;
	m->connected_since = time(NULL);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	fl_info("connected to the broker%s",
		(flags & 1) ? " (session resumed)" : "");
}

/* The broker granted fleetd's subscriptions (srv_mqtt_take_subscribed). */
static void on_subscribe(struct mosquitto *mosq, void *obj, int mid,
			 int qos_count, const int *granted_qos,
			 const mosquitto_property *props)
{
	struct srv_mqtt *m = obj;

	if (mid != m->sub_mid)
		return;
	for (int i = 0; i < qos_count; i++)
		if (granted_qos[i] > 2) {
			fl_warn("the broker refused fleetd's subscription: %s",
				mosquitto_reason_string(granted_qos[i]));
			return;
		}
	pthread_mutex_lock(&m->lock);
	m->subscribed = true;
	pthread_mutex_unlock(&m->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
			  const mosquitto_property *props)
{
	struct srv_mqtt *m = obj;

	pthread_mutex_lock(&m->lock);
	m->connected = false;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (rc)
		fl_warn("lost the broker (%s); reconnecting",
			mosquitto_reason_string(rc));
}

/* "mqtts://HOST:PORT" */
static int parse_url(const char *url, char *host, size_t hlen, int *port,
		     struct fl_error *err)
{
	const char *p, *colon;
	uint64_t v;

	if (!fl_startswith(url, "mqtts://"))
		return fl_fail(err, FL_EINVAL,
			       "broker URL '%s' must be mqtts://HOST:PORT",
			       url);
	p = url + 8;
	colon = strrchr(p, ':');
	if (!colon || colon == p || (size_t)(colon - p) >= hlen ||
	    fl_parse_uint(colon + 1, 65535, &v, NULL) || v == 0)
		return fl_fail(err, FL_EINVAL,
			       "broker URL '%s' must be mqtts://HOST:PORT",
			       url);
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	*port = (int)v;
	return 0;
}

/* TLS with this fleetd's identity: a replica's is issued at its first
 * start (ca.h). */
static int setup_tls(struct srv_mqtt *m, struct fl_error *err)
{
	char *ca = srv_path(m->srv, SRV_CA_FILE), *cname, *kname, *cert, *key;
	int rc = srv_ca_mqtt_identity(m->srv->ca, m->srv->state_dir, m->user,
				      &cname, &kname, err);

	if (rc) {
		free(ca);
		return rc;
	}
	cert = srv_path(m->srv, cname);
	key = srv_path(m->srv, kname);
	rc = mosquitto_tls_set(m->mosq, ca, NULL, cert, key, NULL);
	free(ca);
	free(cert);
	free(key);
	free(cname);
	free(kname);
	if (rc != MOSQ_ERR_SUCCESS)
		return fl_fail(err, FL_EIO, "MQTT TLS setup: %s",
			       mosquitto_strerror(rc));
	return 0;
}

/* Sleep up to @ms, waking early when the client is being stopped. */
static void nap(struct srv_mqtt *m, int ms)
{
	struct timespec until;

	fl_deadline(&until, ms);
	pthread_mutex_lock(&m->lock);
	while (!m->stopping &&
	       pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0)
		;
	pthread_mutex_unlock(&m->lock);
}

static bool stopping(struct srv_mqtt *m)
{
	bool s;

	pthread_mutex_lock(&m->lock);
	s = m->stopping;
	pthread_mutex_unlock(&m->lock);
	return s;
}

/*
 * The network thread.  libmosquitto's own loop_forever gives up for good
 * on a TLS error, which is exactly what a broker restart produces, so
 * fleetd runs its own loop: on any error, back off (1 s doubling to 30 s,
 * with jitter) and reconnect, until stopped.
 */
static void *net_thread(void *arg)
{
	struct srv_mqtt *m = arg;
	int delay = 1000;

	while (!stopping(m)) {
		int rc = mosquitto_loop(m->mosq, 1000, 1);

		if (fl_now_ms() - m->last_expire_ms >= 1000) {
			m->last_expire_ms = fl_now_ms();
			srv_devlimit_expire(m->limit, m->last_expire_ms, false,
					    unmute, m);
		}

		if (rc == MOSQ_ERR_SUCCESS) {
			pthread_mutex_lock(&m->lock);
			if (m->connected)
				delay = 1000;
			pthread_mutex_unlock(&m->lock);
			continue;
		}
		if (stopping(m))
			break;
		nap(m, delay / 2 + (int)(random() % (delay / 2 + 1)));
		if (stopping(m))
			break;
		delay = delay * 2 > 30000 ? 30000 : delay * 2;
		rc = mosquitto_reconnect(m->mosq);
		if (rc != MOSQ_ERR_SUCCESS)
			fl_debug("reconnecting to the broker: %s",
				 mosquitto_strerror(rc));
	}
	return NULL;
}

static int connect_broker(struct srv_mqtt *m, const char *url,
			  struct fl_error *err)
{
	mosquitto_property *props = NULL;
	char host[256];
	int port = 0, rc;

	rc = parse_url(url, host, sizeof(host), &port, err);
	if (rc)
		return rc;
	/* a replica's session ends with its connection: the broker hands
	 * the shared messages to the replicas still there, instead of
	 * queueing a share for a dead one (docs/scale.md) */
	if (!m->shared)
		mosquitto_property_add_int32(
		    &props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY);
	rc = mosquitto_connect_bind_v5(m->mosq, host, port, KEEPALIVE, NULL,
				       props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS) /* the network thread keeps trying */
		fl_warn("cannot reach broker %s yet: %s", url,
			mosquitto_strerror(rc));
	if (pthread_create(&m->thread, NULL, net_thread, m) != 0)
		return fl_fail(err, FL_ERR, "cannot start the MQTT thread");
	m->thread_started = true;
	return 0;
}

/* The topics fleetd uses, all under @prefix (proto.h). */
static int make_topics(struct srv_mqtt *m, const char *prefix,
		       struct fl_error *err)
{
	int rc;

	m->prefix = prefix;
	rc = fl_topic_build(prefix, m->user, FL_TOPIC_PRESENCE, NULL,
			    &m->presence, err);
	if (!rc)
		rc = fl_topic_all(prefix, &m->all, err);
	for (size_t i = 0; !rc && i < FL_ARRAY_SIZE(kinds); i++) {
		rc = fl_topic_filter(prefix, kinds[i].kind, &m->subs[i], err);
		if (!rc && m->shared && kinds[i].split) {
			char *plain = m->subs[i];

			m->subs[i] = fl_xasprintf(SHARE_GROUP "%s", plain);
			free(plain);
		}
	}
	if (!rc)
		m->diag_sub = fl_xasprintf(
		    "%s/+/%s/%s", prefix,
		    fl_topic_info(FL_TOPIC_DIAG_RESP)->leaf, SRV_MQTT_USER);
	return rc;
}

static void free_topics(struct srv_mqtt *m)
{
	free(m->user);
	free(m->presence);
	free(m->all);
	free(m->diag_sub);
	for (size_t i = 0; i < FL_ARRAY_SIZE(m->subs); i++)
		free(m->subs[i]);
}

int srv_mqtt_new(struct srv *srv, struct srv_mqtt **ret, struct fl_error *err)
{
	struct srv_mqtt *m = fl_xcalloc(1, sizeof(*m));
	int rc;

	pthread_once(&lib_once, lib_init);
	m->srv = srv;
	m->broker_dropped = -1;
	m->shared = srv->replica != NULL;
	m->user = m->shared
		      ? fl_xasprintf(SRV_MQTT_REPLICA_PREFIX "%s", srv->replica)
		      : fl_xstrdup(SRV_MQTT_USER);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	rc = make_topics(m, srv->cfg.topic_prefix, err);
	if (rc) {
		srv_mqtt_stop(m);
		return rc;
	}
	m->mosq = mosquitto_new(m->user, m->shared, m);
	if (!m->mosq) {
		srv_mqtt_stop(m);
		return fl_fail(err, FL_ENOMEM, "cannot create MQTT client");
	}
	m->limit = srv_devlimit_new(&(struct srv_devlimit_cfg){
	    .rate = srv->cfg.device_rate,
	    .burst = srv->cfg.device_burst,
	    .mute_after = SRV_DEVLIMIT_MUTE_AFTER,
	    .mute_ms = srv->cfg.device_mute * 1000,
	});
	rc = srv_ingest_start(srv->store,
			      &(struct srv_ingest_cfg){
				  .queue = srv->cfg.ingest_queue,
				  .batch = srv->cfg.ingest_batch,
				  .linger_ms = SRV_INGEST_LINGER_MS,
				  .max_bytes = SRV_INGEST_BYTES_MAX,
				  .max_payload = SRV_MQTT_MAX_PAYLOAD,
				  .on_points = srv->on_points,
				  .on_points_arg = srv->on_points_arg,
			      },
			      ack, m, &m->ingest, err);
	if (rc) {
		srv_mqtt_stop(m);
		return rc;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
			     MQTT_PROTOCOL_V5);
	mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM,
			     RECEIVE_MAXIMUM);
	mosquitto_threaded_set(m->mosq, true);
	mosquitto_will_set_v5(m->mosq, m->presence, (int)strlen(OFFLINE),
			      OFFLINE, 1, true, NULL);
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(m->mosq, on_subscribe);
	mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(m->mosq, on_message);
	*ret = m;
	return 0;
}

int srv_mqtt_start(struct srv *srv, const char *url, struct srv_mqtt **ret,
		   struct fl_error *err)
{
	struct srv_mqtt *m = NULL;
	int rc;

	rc = srv_mqtt_new(srv, &m, err);
	if (!rc)
		rc = setup_tls(m, err);
	if (!rc)
		rc = connect_broker(m, url, err);
	if (rc) {
		srv_mqtt_stop(m);
		return rc;
	}
	*ret = m;
	return 0;
}

bool srv_mqtt_drain(struct srv_mqtt *m, int ms)
{
	return srv_ingest_drain(m->ingest, ms);
}

/* Wait up to @ms for the session to be down. */
static void srv_mqtt_wait_disconnected(struct srv_mqtt *m, int ms)
{
	struct timespec until;

	fl_deadline(&until, ms);
	pthread_mutex_lock(&m->lock);
	while (m->connected &&
	       pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0)
		;
	pthread_mutex_unlock(&m->lock);
}

void srv_mqtt_stop(struct srv_mqtt *m)
{
	if (!m)
		return;
	/* say goodbye while the network thread still runs, so the offline
	 * presence and the DISCONNECT reach the broker (no will needed) */
	if (m->thread_started) {
		publish_presence(m, false);
		mosquitto_disconnect_v5(m->mosq, 0, NULL);
		srv_mqtt_wait_disconnected(m, 1000);
	}
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	/* what the network thread took in is stored before fleetd exits */
	srv_ingest_stop(m->ingest);
	mosquitto_destroy(m->mosq);
	srv_devlimit_free(m->limit);
	free_topics(m);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

bool srv_mqtt_take_subscribed(struct srv_mqtt *m)
{
	bool rc;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	rc = m->subscribed;
	m->subscribed = false;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void srv_mqtt_stats(struct srv_mqtt *m, struct srv_mqtt_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	ret->connected = m->connected;
	ret->connected_since = m->connected_since;
	pthread_mutex_unlock(&m->lock);
	ret->over_budget = __atomic_load_n(&m->over_budget, __ATOMIC_RELAXED);
	ret->broker_dropped =
	    __atomic_load_n(&m->broker_dropped, __ATOMIC_RELAXED);
	srv_ingest_stats(m->ingest, &ret->ingest);
}

int srv_mqtt_wait_connected(struct srv_mqtt *m, int ms, struct fl_error *err)
{
	struct timespec until;
	int rc = 0;

	fl_deadline(&until, ms);
	pthread_mutex_lock(&m->lock);
	while (!m->connected && rc == 0)
		rc = pthread_cond_timedwait(&m->cond, &m->lock, &until);
	rc = m->connected ? 0 : FL_ETIMEOUT;
	pthread_mutex_unlock(&m->lock);
	if (rc)
		return fl_fail(err, rc,
			       "no connection to the broker after %d ms", ms);
	return 0;
}

/* Publish @payload on @topic, of @kind (FL_TOPIC_NKINDS: another
 * topic), counted in the metrics once the library took it. */
static int publish(struct srv_mqtt *m, enum fl_topic_kind kind,
		   const char *topic, const json_t *payload, int qos,
		   bool retain, struct fl_error *err)
{
	char *text = fl_json_dumps(payload);
	int rc;

	rc = mosquitto_publish_v5(m->mosq, NULL, topic, (int)strlen(text), text,
				  qos, retain, NULL);
	free(text);
	/* offline, libmosquitto queues QoS 1/2 messages and sends them on
	 * reconnect, yet says "no connection": that is a success for us */
	if (rc == MOSQ_ERR_NO_CONN && qos > 0) {
		fl_warn("broker offline: %s queued until it is back", topic);
		rc = MOSQ_ERR_SUCCESS;
	}
	if (rc != MOSQ_ERR_SUCCESS)
		return fl_fail(err, FL_EUNREACH, "publish to %s: %s", topic,
			       mosquitto_strerror(rc));
	srv_metrics_mqtt(SRV_MQTT_OUT, kind);
	return 0;
}

void srv_mqtt_new_cmd_id(char ret_id[40])
{
	unsigned char raw[12];
	char hex[25];

	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	snprintf(ret_id, 40, "c-%s", hex);
}

int srv_mqtt_send_cmd_id(struct srv_mqtt *m, const char *device,
			 const char *type, json_t *args, const char *id,
			 struct fl_error *err)
{
	char ts[21], *topic = NULL;
	json_t *cmd;
	int rc;

	if (!m)
		return fl_fail(err, FL_EUNREACH,
			       "fleetd has no MQTT broker "
			       "(serve with --with-broker or "
			       "[mqtt] url)");
	fl_time_rfc3339(time(NULL), ts);
	cmd = json_pack("{s:s, s:s, s:o, s:s}", "id", id, "type", type, "args",
			args ? json_incref(args) : json_object(), "ts", ts);
	rc = fl_topic_build(m->prefix, device, FL_TOPIC_CMD, NULL, &topic, err);
	if (!rc)
		rc = publish(m, FL_TOPIC_CMD, topic, cmd, 2, false, err);
	free(topic);
	json_decref(cmd);
	return rc;
}

int srv_mqtt_send_cmd(struct srv_mqtt *m, const char *device, const char *type,
		      json_t *args, char *ret_id, struct fl_error *err)
{
	if (!m)
		return fl_fail(err, FL_EUNREACH,
			       "fleetd has no MQTT broker "
			       "(serve with --with-broker or "
			       "[mqtt] url)");
	srv_mqtt_new_cmd_id(ret_id);
	return srv_mqtt_send_cmd_id(m, device, type, args, ret_id, err);
}

int srv_mqtt_diag_send(struct srv_mqtt *m, const char *device,
		       const unsigned char *corr, size_t corr_len,
		       const char *payload, uint32_t expiry_s,
		       struct fl_error *err)
{
	mosquitto_property *props = NULL;
	char *topic = NULL, *resp = NULL;
	int rc;

	rc = fl_topic_build(m->prefix, device, FL_TOPIC_DIAG_REQ, NULL, &topic,
			    err);
	if (!rc)
		rc = fl_topic_build(m->prefix, device, FL_TOPIC_DIAG_RESP,
				    SRV_MQTT_USER, &resp, err);
	if (rc)
		goto out;
	mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, resp);
	mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr,
				      (uint16_t)corr_len);
	mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
				     expiry_s);
	rc = mosquitto_publish_v5(m->mosq, NULL, topic, (int)strlen(payload),
				  payload, 1, false, props);
	/* offline, libmosquitto queues it for the reconnect; its expiry
	 * keeps a late delivery from running a stale request */
	if (rc == MOSQ_ERR_NO_CONN)
		rc = MOSQ_ERR_SUCCESS;
	if (rc == MOSQ_ERR_SUCCESS)
		srv_metrics_mqtt(SRV_MQTT_OUT, FL_TOPIC_DIAG_REQ);
	rc = rc == MOSQ_ERR_SUCCESS
		 ? 0
		 : fl_fail(err, FL_EUNREACH, "publish to %s: %s", topic,
			   mosquitto_strerror(rc));
out:
	mosquitto_property_free_all(&props);
	free(topic);
	free(resp);
	return rc;
}

/* Publish {"commands": @cmds} to the plugin; takes @cmds. */
static int dynsec_send(struct srv_mqtt *m, json_t *cmds, struct fl_error *err)
{
	json_t *body = json_pack("{s:o}", "commands", cmds);
	int rc;

	rc = publish(m, FL_TOPIC_NKINDS, DYNSEC_TOPIC, body, 1, false, err);
	json_decref(body);
	return rc;
}

int srv_mqtt_dynsec(struct srv_mqtt *m, const char *const *commands, size_t n,
		    const char *username, struct fl_error *err)
{
	json_t *cmds;

	if (!m)
		return 0;
	cmds = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(cmds, json_pack("{s:s, s:s}", "command",
						      commands[i], "username",
						      username));
	return dynsec_send(m, cmds, err);
}

int srv_mqtt_shadow_desired(struct srv_mqtt *m, const char *device,
			    const json_t *msg, struct fl_error *err)
{
	char *topic = NULL;
	int rc;

	if (!m)
		return fl_fail(err, FL_EUNREACH, "fleetd has no MQTT broker");
	rc = fl_topic_build(m->prefix, device, FL_TOPIC_SHADOW_DESIRED, NULL,
			    &topic, err);
	if (!rc)
		rc = publish(m, FL_TOPIC_SHADOW_DESIRED, topic, msg, 1, true,
			     err);
	free(topic);
	return rc;
}
