/* SPDX-License-Identifier: MIT */
/*
 * MQTT v5 session over libmosquitto without its thread: a small state
 * machine (disconnected, connecting, connected) driven by
 * agent_mqtt_step, with our own reconnect timer so the delay has jitter
 * and the attempt never blocks the owner's loop for long.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "agent_mqtt.h"
#include "log.h"
#include "tlsid.h"
#include "util.h"

enum state { ST_DISCONNECTED, ST_CONNECTING, ST_CONNECTED };

struct agent_mqtt {
	struct agent_mqtt_opts o; /* strings below are our copies */
	char *client_id, *host, *ca_file, *cert_file, *key_file;
	char *will_topic, *will_payload;
	struct mosquitto *mosq;
	enum state state;
	bool paused;	     /* agent_mqtt_disconnect: no reconnecting */
	bool refused;	     /* last attempt: CONNACK refused or TLS error */
	char why[96];	     /* how the last attempt or connection ended */
	int64_t next_ms;     /* earliest next attempt */
	int64_t deadline_ms; /* CONNACK wait */
	int inflight;	     /* published, not yet acknowledged */
	struct agent_backoff backoff;
	int wake_fd; /* agent_mqtt_set_wake_fd, or -1 */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* agent_mqtt_set_client_hook: set once at start, read-only after */
static void (*client_hook)(bool entering);

static void hook(bool entering)
{
	if (client_hook)
		client_hook(entering);
}

void agent_mqtt_set_client_hook(void (*fn)(bool entering))
{
	client_hook = fn;
}

static void lib_init(void)
{
	mosquitto_lib_init();
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms();
	return r;
}

int64_t agent_backoff_next(struct agent_backoff *b, uint32_t rnd)
{
	int64_t cap = b->min_ms > 0 ? b->min_ms : 1;
	int64_t half;

	for (unsigned i = 0; i < b->attempt && cap < b->max_ms; i++)
		cap *= 2;
	if (cap > b->max_ms)
		cap = b->max_ms;
	if (b->attempt < 64)
		b->attempt++;
	half = cap / 2;
	return half + (int64_t)(rnd % (uint64_t)(cap - half + 1));
}

void agent_backoff_reset(struct agent_backoff *b)
{
	b->attempt = 0;
}

/* ------------------------------------------------------------------ */
/* Callbacks from libmosquitto                                        */
/* ------------------------------------------------------------------ */

static void schedule_retry(struct agent_mqtt *m)
{
	int64_t delay = agent_backoff_next(&m->backoff, rnd32());

	m->next_ms = fl_now_ms() + delay;
	fl_info("reconnecting in %lld ms", (long long)delay);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	struct agent_mqtt *m = obj;

	if (rc != 0) {
		snprintf(m->why, sizeof(m->why), "refused: %s",
			 mosquitto_reason_string(rc));
		fl_warn("broker %s", m->why);
		m->refused = true;
		mosquitto_disconnect(mosq);
		return;
	}
	m->state = ST_CONNECTED;
	m->refused = false;
	agent_backoff_reset(&m->backoff);
	fl_info("connected to %s:%d%s", m->host, m->o.port,
		(flags & 1) ? " (session resumed)" : "");
	if (m->o.on_connect)
		m->o.on_connect(m->o.user, flags & 1);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
			  const mosquitto_property *props)
{
	struct agent_mqtt *m = obj;
	bool was = m->state == ST_CONNECTED;

	if (m->state == ST_DISCONNECTED)
		return;
	m->state = ST_DISCONNECTED;
	if (rc != 0 && !m->refused) {
		snprintf(m->why, sizeof(m->why), "connection lost: %s",
			 rc > 0 && rc < 128 ? mosquitto_strerror(rc)
					    : mosquitto_reason_string(rc));
		fl_warn("%s", m->why);
	}
	if (!m->paused)
		schedule_retry(m);
	if (was && m->o.on_disconnect)
		m->o.on_disconnect(m->o.user);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
		       const mosquitto_property *props)
{
	struct agent_mqtt *m = obj;

	if (m->inflight > 0)
		m->inflight--;
	if (reason >= 128)
		fl_warn("broker refused message %d: %s", mid,
			mosquitto_reason_string(reason));
	if (m->o.on_publish)
		m->o.on_publish(m->o.user, mid, reason);
}

/* A string property within AGENT_MSG_PROP_MAX, or NULL (freed). */
static char *capped(char *s)
{
	if (s && strlen(s) > AGENT_MSG_PROP_MAX) {
		free(s);
		return NULL;
	}
	return s;
}

/* Response topic, correlation data and user properties of a message
 * (each capped; what is over a cap is left out). */
static void read_props(const mosquitto_property *props,
		       struct agent_msg_props *p)
{
	const mosquitto_property *it;
	uint16_t len = 0;
	char *name, *value;

	if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC,
					   &p->response_topic, false))
		p->response_topic = capped(p->response_topic);
	if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA,
					   &p->correlation, &len, false))
		p->correlation_len = len;
	if (len > AGENT_MSG_PROP_MAX) {
		free(p->correlation);
		p->correlation = NULL;
		p->correlation_len = 0;
	}
	for (it = props;
	     p->n_user < AGENT_MSG_USER_PROPS_MAX &&
	     (it = mosquitto_property_read_string_pair(
		  it, MQTT_PROP_USER_PROPERTY, &name, &value, it != props));) {
		if (strlen(name) + strlen(value) > AGENT_MSG_PROP_MAX) {
			free(name);
			free(value);
			continue;
		}
		p->user[p->n_user].name = name;
		p->user[p->n_user++].value = value;
	}
}

static void on_message(struct mosquitto *mosq, void *obj,
		       const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	struct agent_mqtt *m = obj;
	struct agent_msg_props p = {0};

	if (msg->payloadlen < 0 || (size_t)msg->payloadlen > m->o.max_payload) {
		fl_warn("dropped a %d-byte message on '%.80s' (cap %zu)",
			msg->payloadlen, msg->topic, m->o.max_payload);
		return;
	}
	if (!m->o.on_message)
		return;
	read_props(props, &p);
	m->o.on_message(m->o.user, msg->topic, msg->payload,
			(size_t)msg->payloadlen, &p);
	agent_msg_props_release(&p);
}

static void on_log(struct mosquitto *mosq, void *obj, int level,
		   const char *str)
{
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		fl_debug("libmosquitto: %s", str);
}

/* ------------------------------------------------------------------ */
/* Client instance                                                    */
/* ------------------------------------------------------------------ */

static int mosq_fail(struct fl_error *err, int mrc, const char *what)
{
	return fl_fail(err, FL_ERR, "%s: %s", what, mosquitto_strerror(mrc));
}

/*
 * The TLS context of @mosq: made once per identity (tlsid.h: a device's
 * key decoded at every connection cost fleet-sim a quarter of its CPU),
 * used as it is (no libmosquitto defaults on top): TLS 1.2 or later,
 * the broker's certificate verified against the CA file and for the
 * host.  MOSQ_ERR_TLS when the files do not load (in @err).
 */
static int use_tls(struct agent_mqtt *m, struct mosquitto *mosq,
		   struct fl_error *err)
{
	SSL_CTX *ctx = NULL;
	int mrc;

	if (agent_tlsid_client_ctx(m->ca_file, m->cert_file, m->key_file,
				   m->host, &ctx, err)) {
		fl_error_prefix(err, "MQTT TLS identity");
		return MOSQ_ERR_TLS;
	}
	mrc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
	if (!mrc) /* libmosquitto takes its own reference */
		mrc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx);
	SSL_CTX_free(ctx);
	return mrc;
}

/* Set up a fresh libmosquitto client from the options. */
static int build_client(struct agent_mqtt *m, struct fl_error *err)
{
	struct mosquitto *mosq;
	int mrc;

	hook(true);
	mosq = mosquitto_new(m->client_id, false, m);
	hook(false);
	if (!mosq)
		return fl_fail(err, FL_ERR, "cannot create an MQTT client");
	mrc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
				   MQTT_PROTOCOL_V5);
	if (!mrc)
		mrc = use_tls(m, mosq, err);
	if (mrc == MOSQ_ERR_TLS) {
		mosquitto_destroy(mosq);
		return FL_ERR;
	}
	if (!mrc && m->will_topic)
		mrc = mosquitto_will_set_v5(mosq, m->will_topic,
					    (int)strlen(m->will_payload),
					    m->will_payload, 1, true, NULL);
	if (mrc) {
		mosquitto_destroy(mosq);
		return mosq_fail(err, mrc, "MQTT client settings");
	}
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(mosq, on_publish);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_log_callback_set(mosq, on_log);
	m->mosq = mosq;
	m->inflight = 0;
	return 0;
}

static void drop_client(struct agent_mqtt *m)
{
	if (!m->mosq)
		return;
	mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	m->state = ST_DISCONNECTED;
	m->inflight = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

int agent_mqtt_new(const struct agent_mqtt_opts *o, struct agent_mqtt **ret,
		   struct fl_error *err)
{
	struct agent_mqtt *m;
	int rc;

	if (!o->client_id || !o->host || !o->ca_file || !o->cert_file ||
	    !o->key_file || o->port <= 0 || o->port > 65535 ||
	    (o->will_topic && !o->will_payload))
		return fl_fail(err, FL_EINVAL, "incomplete MQTT settings");
	pthread_once(&lib_once, lib_init);
	m = fl_xcalloc(1, sizeof(*m));
	m->o = *o;
	m->wake_fd = -1;
	m->client_id = fl_xstrdup(o->client_id);
	m->host = fl_xstrdup(o->host);
	m->ca_file = fl_xstrdup(o->ca_file);
	m->cert_file = fl_xstrdup(o->cert_file);
	m->key_file = fl_xstrdup(o->key_file);
	m->will_topic = dup_or_null(o->will_topic);
	m->will_payload = dup_or_null(o->will_payload);
	if (!m->o.max_payload || m->o.max_payload > AGENT_MQTT_MAX_PAYLOAD)
		m->o.max_payload = AGENT_MQTT_MAX_PAYLOAD;
	m->backoff.min_ms =
	    o->reconnect_min_ms > 0 ? o->reconnect_min_ms : 1000;
	m->backoff.max_ms = o->reconnect_max_ms >= m->backoff.min_ms
				? o->reconnect_max_ms
				: 300000;
	rc = build_client(m, err);
	if (rc) {
		agent_mqtt_free(m);
		return rc;
	}
	*ret = m;
	return 0;
}

void agent_mqtt_free(struct agent_mqtt *m)
{
	if (!m)
		return;
	drop_client(m);
	free(m->client_id);
	free(m->host);
	free(m->ca_file);
	free(m->cert_file);
	free(m->key_file);
	free(m->will_topic);
	free(m->will_payload);
	free(m);
}

bool agent_mqtt_connected(const struct agent_mqtt *m)
{
	return m->state == ST_CONNECTED;
}

/*
 * Open the TCP + TLS connection and send CONNECT with the session
 * properties: session expiry and the largest packet we accept, so the
 * broker never sends us more than the cap.
 */
static int start_connect(struct agent_mqtt *m, struct fl_error *err)
{
	mosquitto_property *props = NULL;
	int mrc, rc = 0;

	if (!m->mosq && (rc = build_client(m, err)))
		return rc;
	m->refused = false;
	m->why[0] = '\0';
	mrc = mosquitto_property_add_int32(
	    &props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, m->o.session_expiry_s);
	if (!mrc)
		mrc = mosquitto_property_add_int32(
		    &props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
		    (uint32_t)(m->o.max_payload + 4096));
	if (!mrc) {
		hook(true);
		mrc = mosquitto_connect_bind_v5(m->mosq, m->host, m->o.port,
						m->o.keepalive_s, NULL, props);
		hook(false);
	}
	mosquitto_property_free_all(&props);
	if (mrc) {
		rc =
		    fl_fail(err, mrc == MOSQ_ERR_TLS ? FL_EDENIED : FL_EUNREACH,
			    "cannot connect to %s:%d: %s", m->host, m->o.port,
			    mrc == MOSQ_ERR_ERRNO ? strerror(errno)
						  : mosquitto_strerror(mrc));
		return rc;
	}
	m->state = ST_CONNECTING;
	m->deadline_ms = fl_now_ms() + AGENT_MQTT_CONNACK_TIMEOUT_MS;
	return 0;
}

/* What a libmosquitto loop call returned: a failure closes the
 * connection (when libmosquitto has not already said so). */
static void loop_result(struct agent_mqtt *m, int mrc)
{
	if (mrc == MOSQ_ERR_SUCCESS || m->state == ST_DISCONNECTED)
		return;
	if (mrc == MOSQ_ERR_TLS || mrc == MOSQ_ERR_PROTOCOL)
		m->refused = true;
	if (m->refused && !m->why[0])
		snprintf(m->why, sizeof(m->why), "refused: %s",
			 mosquitto_strerror(mrc));
	fl_debug("loop: %s", mosquitto_strerror(mrc));
	mosquitto_disconnect(m->mosq);
	on_disconnect(m->mosq, m, mrc, NULL);
}

/*
 * What mosquitto_loop does after its wait, without the wait: read (a
 * TLS handshake in progress is driven from there too), write what is
 * queued (also what the callbacks of the read just queued), then the
 * keepalive and timeouts.  Each step may end the connection.
 */
static void io(struct agent_mqtt *m, short revents)
{
	int mrc = MOSQ_ERR_SUCCESS;

	if (revents & (POLLIN | POLLERR | POLLHUP))
		mrc = mosquitto_loop_read(m->mosq, 1);
	if (!mrc && m->state != ST_DISCONNECTED &&
	    mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq))
		mrc = mosquitto_loop_write(m->mosq, 1);
	if (!mrc && m->state != ST_DISCONNECTED &&
	    mosquitto_socket(m->mosq) >= 0)
		mrc = mosquitto_loop_misc(m->mosq);
	if (!mrc && m->state != ST_DISCONNECTED &&
	    mosquitto_socket(m->mosq) < 0)
		mrc = MOSQ_ERR_CONN_LOST; /* closed without telling us */
	loop_result(m, mrc);
}

/*
 * Wait up to @timeout_ms for the socket (or @wake, when >= 0, to become
 * readable), then service it once; a failure closes the connection.
 * Not mosquitto_loop(): it waits with select(), which refuses a socket
 * numbered FD_SETSIZE (1024) or more, and fleet-sim's devices have
 * thousands of sockets.
 */
static void pump(struct agent_mqtt *m, int timeout_ms, int wake)
{
	int fd = mosquitto_socket(m->mosq);
	struct pollfd p[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};

	if (fd < 0) {
		loop_result(m, MOSQ_ERR_NO_CONN);
		return;
	}
	if (mosquitto_want_write(m->mosq))
		p[0].events |= POLLOUT;
	if (poll(p, 2, timeout_ms) < 0) {
		if (errno != EINTR)
			loop_result(m, MOSQ_ERR_ERRNO);
		return;
	}
	io(m, p[0].revents);
}

/* Start a connection (its failure is logged and retried later);
 * false when there is none to service now. */
static bool connect_now(struct agent_mqtt *m)
{
	struct fl_error err = {0};

	if (!start_connect(m, &err))
		return true;
	fl_warn("%s", err.msg);
	schedule_retry(m);
	return false;
}

/* Give up on a CONNACK that did not come in time; true when it did. */
static bool connack_late(struct agent_mqtt *m, int64_t now)
{
	if (m->state != ST_CONNECTING || now <= m->deadline_ms)
		return false;
	fl_warn("no CONNACK from the broker");
	mosquitto_disconnect(m->mosq);
	on_disconnect(m->mosq, m, MOSQ_ERR_CONN_LOST, NULL);
	return true;
}

void agent_mqtt_step(struct agent_mqtt *m, int timeout_ms)
{
	int64_t now = fl_now_ms();

	if (m->state == ST_DISCONNECTED) {
		if (m->paused || now < m->next_ms) {
			int64_t wait =
			    m->paused ? timeout_ms : m->next_ms - now;

			struct pollfd p = {m->wake_fd, POLLIN, 0};

			if (wait > timeout_ms)
				wait = timeout_ms;
			if (wait > 0)
				poll(&p, 1, (int)wait);
			return;
		}
		if (!connect_now(m))
			return;
	}
	if (!connack_late(m, now))
		pump(m, timeout_ms, m->wake_fd);
}

void agent_mqtt_set_wake_fd(struct agent_mqtt *m, int fd)
{
	m->wake_fd = fd;
}

bool agent_mqtt_connect_due(const struct agent_mqtt *m)
{
	return m->state == ST_DISCONNECTED && !m->paused &&
	       fl_now_ms() >= m->next_ms;
}

bool agent_mqtt_connecting(const struct agent_mqtt *m)
{
	return m->state == ST_CONNECTING;
}

int agent_mqtt_poll_fd(const struct agent_mqtt *m, short *ret_events)
{
	int fd;

	if (!m->mosq || m->state == ST_DISCONNECTED)
		return -1;
	fd = mosquitto_socket(m->mosq);
	if (fd >= 0)
		*ret_events =
		    (short)(POLLIN |
			    (mosquitto_want_write(m->mosq) ? POLLOUT : 0));
	return fd;
}

void agent_mqtt_service(struct agent_mqtt *m, short revents, bool may_connect)
{
	if (m->state == ST_DISCONNECTED) {
		if (!may_connect || !agent_mqtt_connect_due(m) ||
		    !connect_now(m))
			return;
		revents = 0;
	}
	if (!connack_late(m, fl_now_ms()))
		io(m, revents);
}

void agent_mqtt_drop(struct agent_mqtt *m)
{
	int fd;

	if (!m->mosq || m->state == ST_DISCONNECTED)
		return;
	fd = mosquitto_socket(m->mosq);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	/* the read sees the end of the stream: connection lost */
	agent_mqtt_service(m, POLLIN, false);
}

int agent_mqtt_connect_wait(struct agent_mqtt *m, int timeout_ms,
			    const volatile sig_atomic_t *stop,
			    struct fl_error *err)
{
	int64_t end = fl_now_ms() + timeout_ms;
	int rc;

	if (m->state != ST_DISCONNECTED)
		agent_mqtt_disconnect(m);
	m->paused = true; /* no backoff retries while we wait */
	rc = start_connect(m, err);
	while (!rc && m->state == ST_CONNECTING) {
		if ((stop && *stop) || fl_now_ms() >= end) {
			mosquitto_disconnect(m->mosq);
			m->state = ST_DISCONNECTED;
			rc = fl_fail(err, FL_ETIMEOUT,
				     "no CONNACK from %s:%d within %d ms",
				     m->host, m->o.port, timeout_ms);
			break;
		}
		pump(m, 100, -1);
	}
	if (!rc && m->state != ST_CONNECTED)
		rc = fl_fail(err, m->refused ? FL_EDENIED : FL_EUNREACH,
			     "the broker at %s:%d did not accept the "
			     "connection (%s)",
			     m->host, m->o.port,
			     m->why[0] ? m->why : "closed before CONNACK");
	m->paused = false;
	if (rc)
		m->next_ms = fl_now_ms();
	return rc;
}

/* @p as a libmosquitto property list (NULL for none); FL_EINVAL when
 * libmosquitto refuses one (bad UTF-8, ...). */
static int make_props(const struct agent_msg_props *p, mosquitto_property **ret,
		      struct fl_error *err)
{
	int mrc = 0;

	*ret = NULL;
	if (!p)
		return 0;
	if (p->response_topic)
		mrc = mosquitto_property_add_string(
		    ret, MQTT_PROP_RESPONSE_TOPIC, p->response_topic);
	if (!mrc && p->correlation_len)
		mrc = mosquitto_property_add_binary(
		    ret, MQTT_PROP_CORRELATION_DATA, p->correlation,
		    (uint16_t)p->correlation_len);
	for (size_t i = 0; !mrc && i < p->n_user; i++)
		mrc = mosquitto_property_add_string_pair(
		    ret, MQTT_PROP_USER_PROPERTY, p->user[i].name,
		    p->user[i].value);
	if (!mrc && p->correlation_len > AGENT_MSG_PROP_MAX)
		mrc = MOSQ_ERR_INVAL;
	if (!mrc)
		return 0;
	mosquitto_property_free_all(ret);
	return fl_fail(err, FL_EINVAL, "bad message properties: %s",
		       mosquitto_strerror(mrc));
}

int agent_mqtt_publish(struct agent_mqtt *m, const char *topic,
		       const void *payload, size_t len, int qos, bool retain,
		       struct fl_error *err)
{
	return agent_mqtt_publish_props(m, topic, payload, len, qos, retain,
					NULL, err);
}

int agent_mqtt_publish_props(struct agent_mqtt *m, const char *topic,
			     const void *payload, size_t len, int qos,
			     bool retain, const struct agent_msg_props *props,
			     struct fl_error *err)
{
	mosquitto_property *pl = NULL;
	int mrc, mid = 0;

	if (len > m->o.max_payload)
		return fl_fail(err, FL_ELIMIT,
			       "message of %zu bytes for '%s' (cap %zu)", len,
			       topic, m->o.max_payload);
	if (!m->mosq)
		return fl_fail(err, FL_EUNREACH, "no MQTT client");
	if (make_props(props, &pl, err))
		return FL_EINVAL;
	mrc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, qos,
				   retain, pl);
	mosquitto_property_free_all(&pl);
	/* libmosquitto keeps a QoS 1/2 message queued for the next
	 * connection even when it reports that it is not connected */
	if (mrc == MOSQ_ERR_NO_CONN && qos > 0) {
		fl_debug("queued a message for '%s' until reconnected", topic);
		mrc = MOSQ_ERR_SUCCESS;
	}
	if (mrc == MOSQ_ERR_NO_CONN)
		return fl_fail(err, FL_EUNREACH, "not connected");
	if (mrc)
		return fl_fail(err, mrc == MOSQ_ERR_INVAL ? FL_EINVAL : FL_ERR,
			       "cannot publish to '%s': %s", topic,
			       mosquitto_strerror(mrc));
	m->inflight++;
	return 0;
}

int agent_mqtt_publish_mid(struct agent_mqtt *m, const char *topic,
			   const void *payload, size_t len, int *ret_mid,
			   struct fl_error *err)
{
	int mrc, mid = 0;

	if (len > m->o.max_payload)
		return fl_fail(err, FL_ELIMIT,
			       "message of %zu bytes for '%s' (cap %zu)", len,
			       topic, m->o.max_payload);
	if (m->state != ST_CONNECTED)
		return fl_fail(err, FL_EUNREACH, "not connected");
	mrc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, 1,
				   false, NULL);
	if (mrc)
		return fl_fail(err, FL_ERR, "cannot publish to '%s': %s", topic,
			       mosquitto_strerror(mrc));
	m->inflight++;
	*ret_mid = mid;
	return 0;
}

int agent_mqtt_subscribe(struct agent_mqtt *m, const char *topic, int qos,
			 struct fl_error *err)
{
	int mrc;

	if (m->state != ST_CONNECTED)
		return fl_fail(err, FL_EUNREACH, "not connected");
	mrc = mosquitto_subscribe_v5(m->mosq, NULL, topic, qos, 0, NULL);
	if (mrc)
		return fl_fail(err, FL_ERR, "cannot subscribe to '%s': %s",
			       topic, mosquitto_strerror(mrc));
	return 0;
}

int agent_mqtt_inflight(const struct agent_mqtt *m)
{
	return m->inflight;
}

int agent_mqtt_flush(struct agent_mqtt *m, int timeout_ms)
{
	int64_t end = fl_now_ms() + timeout_ms;

	while (m->inflight > 0 && m->state == ST_CONNECTED) {
		if (fl_now_ms() >= end)
			return FL_ETIMEOUT;
		pump(m, 50, -1);
	}
	return m->inflight > 0 ? FL_ETIMEOUT : 0;
}

void agent_mqtt_disconnect(struct agent_mqtt *m)
{
	m->paused = true;
	if (!m->mosq || m->state == ST_DISCONNECTED)
		return;
	mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
	/* write the DISCONNECT packet out and see the socket close */
	for (int i = 0; i < 20 && m->state != ST_DISCONNECTED; i++)
		pump(m, 50, -1);
	m->state = ST_DISCONNECTED;
}

void agent_mqtt_disconnect_now(struct agent_mqtt *m)
{
	m->paused = true;
	if (!m->mosq || m->state == ST_DISCONNECTED)
		return;
	/* written at once when the socket takes it; after the packet
	 * libmosquitto closes the connection and says so */
	mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
	if (m->state != ST_DISCONNECTED && mosquitto_socket(m->mosq) >= 0 &&
	    mosquitto_want_write(m->mosq))
		mosquitto_loop_write(m->mosq, 1);
	m->state = ST_DISCONNECTED;
}

void agent_mqtt_resume(struct agent_mqtt *m)
{
	m->paused = false;
	m->next_ms = fl_now_ms();
}

int agent_mqtt_set_identity(struct agent_mqtt *m, const char *cert_file,
			    const char *key_file, bool reconnect,
			    struct fl_error *err)
{
	if (!cert_file || !key_file)
		return fl_fail(err, FL_EINVAL, "no certificate or key");
	free(m->cert_file);
	free(m->key_file);
	m->cert_file = fl_xstrdup(cert_file);
	m->key_file = fl_xstrdup(key_file);
	if (reconnect) {
		bool paused = m->paused;

		agent_mqtt_disconnect(m);
		drop_client(m);
		m->paused = paused;
		return build_client(m, err);
	}
	return 0; /* the same key and certificate: the context holds them */
}
