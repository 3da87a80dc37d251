/* SPDX-License-Identifier: MIT */
/*
 * diag --direct: MQTT v5 request/response with a technician's
 * certificate (see diag_direct.h).  The key never touches the disk: the
 * bundle is read into memory and handed to libmosquitto as an SSL_CTX.
 * The broker forces client id = CN and lets a technician only publish
 * PREFIX/ID/diag/req and read PREFIX/+/diag/resp/tech-NAME
 * (docs/broker.md), so the request names that topic as its response
 * topic, with 16 random bytes of correlation data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent_config.h"
#include "diag_direct.h"
#include "pki.h"
#include "proto.h"
#include "tgz.h"
#include "util.h"

#define BUNDLE_FILES 8
#define BUNDLE_BYTES (256 * 1024)
#define REPLY_MAX (64 * 1024)
#define CORR_LEN 16
#define KEEPALIVE_S 30

/* The technician bundle, read. */
struct tech {
	struct fl_tgz_entry *files;
	size_t n;
	const char *key, *cert, *ca, *chain;
	json_t *meta; /* technician.json */
	struct fl_pki_cert_info info;
};

struct call {
	const struct cli_direct *d;
	char *req_topic, *resp_topic, *payload;
	unsigned char corr[CORR_LEN];
	int64_t sent_ms;
	json_t *reply;
	bool connected; /* CONNACK came */
	bool done;
	int rc;
	struct fl_error err;
};

static const char *bundle_file(const struct tech *t, const char *base)
{
	for (size_t i = 0; i < t->n; i++) {
		const char *slash = strrchr(t->files[i].path, '/');

		if (fl_streq(slash ? slash + 1 : t->files[i].path, base))
			return t->files[i].data;
	}
	return NULL;
}

static void tech_release(struct tech *t)
{
	fl_tgz_entries_free(t->files, t->n);
	json_decref(t->meta);
	memset(t, 0, sizeof(*t));
}

/* Read the bundle and check its certificate is a valid technician's. */
static int tech_load(const char *path, struct tech *t, struct fl_error *err)
{
	const char *meta;
	X509 *x = NULL;
	int rc = fl_tgz_read(path, BUNDLE_FILES, BUNDLE_BYTES, &t->files, &t->n,
			     err);

	if (rc)
		return rc;
	t->key = bundle_file(t, "key.pem");
	t->cert = bundle_file(t, "cert.pem");
	t->ca = bundle_file(t, "ca.pem");
	t->chain = bundle_file(t, "chain.pem");
	meta = bundle_file(t, "technician.json");
	t->meta = meta ? json_loads(meta, 0, NULL) : NULL;
	if (!t->key || !t->cert || !t->ca || !t->chain || !t->meta)
		return fl_fail(err, FL_EPARSE,
			       "'%s' is not a technician bundle (fleetctl "
			       "technician issue makes one)",
			       path);
	rc = fl_pki_cert_from_pem(t->cert, strlen(t->cert), &x, err);
	if (!rc)
		rc = fl_pki_cert_info(x, &t->info, err);
	X509_free(x);
	if (!rc && !fl_startswith(t->info.cn, "tech-"))
		rc = fl_fail(err, FL_EPARSE,
			     "'%s' holds no technician certificate", path);
	if (!rc && t->info.not_after <= time(NULL)) {
		char when[21];

		fl_time_rfc3339(t->info.not_after, when);
		rc = fl_fail(err, FL_EDENIED,
			     "the certificate of %s expired at %s; ask for a "
			     "new one (fleetctl technician issue)",
			     t->info.cn, when);
	}
	return rc;
}

/* Trust the bundle's CA and chain, check the broker's name, present the
 * technician's certificate. */
static int add_pems(X509_STORE *st, const char *pem, struct fl_error *err)
{
	STACK_OF(X509) *chain = NULL;
	int rc = fl_pki_chain_from_pem(pem, strlen(pem), &chain, err);

	for (int i = 0; !rc && i < sk_X509_num(chain); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(chain, i)))
			rc = fl_fail(err, FL_EPARSE, "bad CA certificate");
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int make_ssl_ctx(const struct tech *t, const char *host, SSL_CTX **ret,
			struct fl_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *vp = ctx ? SSL_CTX_get0_param(ctx) : NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = ctx ? 0 : fl_fail(err, FL_ENOMEM, "no TLS context");

	if (!rc)
		rc = fl_pki_key_from_pem(t->key, strlen(t->key), &key, err);
	if (!rc)
		rc = fl_pki_cert_from_pem(t->cert, strlen(t->cert), &cert, err);
	if (!rc)
		rc = add_pems(SSL_CTX_get_cert_store(ctx), t->ca, err);
	if (!rc)
		rc = add_pems(SSL_CTX_get_cert_store(ctx), t->chain, err);
	if (!rc && (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
		    SSL_CTX_use_certificate(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
		    (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1 &&
		     X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1)))
		rc = fl_fail(err, FL_EPARSE,
			     "cannot use the bundle's key "
			     "and certificate");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	EVP_PKEY_free(key);
	X509_free(cert);
	if (rc)
		SSL_CTX_free(ctx);
	else
		*ret = ctx;
	return rc;
}

static void on_message(struct mosquitto *m, void *obj,
		       const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	struct call *c = obj;
	void *corr = NULL;
	uint16_t len = 0;
	json_t *j;

	mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr,
				       &len, false);
	if (c->done || !fl_streq(msg->topic, c->resp_topic) ||
	    len != CORR_LEN || memcmp(corr, c->corr, CORR_LEN) != 0) {
		free(corr);
		return; /* an answer to an earlier call */
	}
	free(corr);
	j = msg->payloadlen <= REPLY_MAX
		? json_loadb(msg->payload, (size_t)msg->payloadlen, 0, NULL)
		: NULL;
	c->done = true;
	if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
		json_decref(j);
		c->rc = fl_fail(&c->err, FL_EPARSE,
				"%s sent an answer that "
				"is not a diag reply",
				c->d->device);
		return;
	}
	json_object_set_new(j, "device", json_string(c->d->device));
	json_object_set_new(j, "rtt_ms",
			    json_integer(fl_now_ms() - c->sent_ms));
	c->reply = j;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n,
			 const int *granted, const mosquitto_property *p)
{
	struct call *c = obj;
	mosquitto_property *props = NULL;
	int mrc;

	if (n < 1 || granted[0] > 2) {
		c->done = true;
		c->rc = fl_fail(&c->err, FL_EDENIED,
				"the broker refused %s: is this a technician "
				"certificate of this fleet?",
				c->resp_topic);
		return;
	}
	mrc = mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC,
					    c->resp_topic);
	if (!mrc)
		mrc = mosquitto_property_add_binary(
		    &props, MQTT_PROP_CORRELATION_DATA, c->corr, CORR_LEN);
	if (!mrc)
		mrc = mosquitto_property_add_int32(
		    &props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
		    (uint32_t)c->d->timeout_s);
	if (!mrc)
		mrc = mosquitto_publish_v5(m, NULL, c->req_topic,
					   (int)strlen(c->payload), c->payload,
					   1, false, props);
	mosquitto_property_free_all(&props);
	c->sent_ms = fl_now_ms();
	if (mrc) {
		c->done = true;
		c->rc = fl_fail(&c->err, FL_EIO, "cannot send the request: %s",
				mosquitto_strerror(mrc));
	}
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
		       const mosquitto_property *p)
{
	struct call *c = obj;

	c->connected = true;
	if (rc) {
		c->done = true;
		c->rc = fl_fail(&c->err, FL_EDENIED,
				"the broker refused the "
				"connection: %s",
				mosquitto_reason_string(rc));
		return;
	}
	rc = mosquitto_subscribe_v5(m, NULL, c->resp_topic, 1, 0, NULL);
	if (rc) {
		c->done = true;
		c->rc = fl_fail(&c->err, FL_EIO, "cannot subscribe: %s",
				mosquitto_strerror(rc));
	}
}

/* The request: topics, payload, correlation data. */
static int prepare(struct call *c, const struct tech *t, struct fl_error *err)
{
	const char *prefix =
	    json_string_value(json_object_get(t->meta, "topic_prefix"));
	json_t *args = json_array(), *req;
	int rc;

	prefix = prefix ? prefix : "fleet";
	for (int i = 0; i < c->d->nargs; i++)
		json_array_append_new(args, json_string(c->d->args[i]));
	req = json_pack("{s:s, s:o, s:I}", "check", c->d->check, "args", args,
			"timeout_s", (json_int_t)c->d->timeout_s);
	c->payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!c->payload)
		return fl_fail(err, FL_EINVAL, "arguments are not UTF-8");
	rc = fl_topic_build(prefix, c->d->device, FL_TOPIC_DIAG_REQ, NULL,
			    &c->req_topic, err);
	if (!rc)
		rc = fl_topic_build(prefix, c->d->device, FL_TOPIC_DIAG_RESP,
				    t->info.cn, &c->resp_topic, err);
	if (!rc)
		rc = fl_random(c->corr, CORR_LEN, err);
	return rc;
}

/* What a libmosquitto error @mrc means here: no broker (exit 8), or a
 * broker that refused us (exit 4: a TLS alert, which libmosquitto
 * reports as errno EPROTO, or a closed connection). */
static int broker_error(int mrc, const char *url, bool connected,
			struct fl_error *err)
{
	int e = errno;
	bool unreach =
	    !connected &&
	    (mrc == MOSQ_ERR_EAI || mrc == MOSQ_ERR_NO_CONN ||
	     (mrc == MOSQ_ERR_ERRNO &&
	      (e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
	       e == ETIMEDOUT || e == EADDRNOTAVAIL)));

	if (unreach)
		return fl_fail(err, FL_EUNREACH,
			       "cannot reach the broker at %s: %s", url,
			       mosquitto_strerror(mrc));
	return fl_fail(err, FL_EDENIED,
		       "the broker at %s %s (%s): the certificate may be "
		       "revoked",
		       url, connected ? "closed the connection" : "refused us",
		       mosquitto_strerror(mrc));
}

/* Start connecting (TCP, then TLS and CONNECT in the loop), so that
 * --timeout bounds all of it. */
static int connect_broker(struct mosquitto *m, const char *url,
			  const struct tech *t, SSL_CTX **ssl,
			  struct fl_error *err)
{
	char *host = NULL;
	int port = 0, mrc;
	int rc = agent_config_parse_mqtt_url(url, &host, &port, err);

	if (!rc)
		rc = make_ssl_ctx(t, host, ssl, err);
	if (!rc) {
		mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
				     MQTT_PROTOCOL_V5);
		mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, *ssl);
		mrc = mosquitto_connect_bind_async(m, host, port, KEEPALIVE_S,
						   NULL);
		if (mrc)
			rc = broker_error(mrc, url, false, err);
	}
	free(host);
	return rc;
}

/* Run the loop until the answer, a failure or the deadline. */
static int wait_answer(struct mosquitto *m, struct call *c, const char *url,
		       struct fl_error *err)
{
	int64_t deadline = fl_now_ms() + c->d->timeout_s * 1000;

	while (!c->done) {
		int64_t left = deadline - fl_now_ms();
		int mrc;

		if (left <= 0 && !c->connected)
			return fl_fail(err, FL_EUNREACH,
				       "the broker at %s did not answer "
				       "within %lld s",
				       url, (long long)c->d->timeout_s);
		if (left <= 0)
			return fl_fail(err, FL_ETIMEOUT,
				       "%s did not answer %s within %lld s "
				       "(offline, or another prefix)",
				       c->d->device, c->d->check,
				       (long long)c->d->timeout_s);
		mrc = mosquitto_loop(m, (int)(left < 200 ? left : 200), 1);
		if (mrc && !c->done)
			return broker_error(mrc, url, c->connected, err);
	}
	if (c->rc)
		return fl_fail(err, c->rc, "%s", c->err.msg);
	return 0;
}

int cli_diag_direct(const struct cli_direct *d, json_t **ret,
		    struct fl_error *err)
{
	struct tech t = {0};
	struct call c = {.d = d};
	struct mosquitto *m = NULL;
	SSL_CTX *ssl = NULL;
	const char *url = d->broker;
	int rc = tech_load(d->bundle, &t, err);

	if (!rc && !url)
		url = json_string_value(json_object_get(t.meta, "broker"));
	if (!rc && !url)
		rc = fl_fail(err, FL_EUSAGE,
			     "the bundle names no broker: "
			     "give --broker mqtts://HOST:PORT");
	if (!rc)
		rc = prepare(&c, &t, err);
	if (!rc)
		rc = cli_mosquitto_load(err);
	if (!rc && !(m = mosquitto_new(t.info.cn, true, &c)))
		rc = fl_fail(err, FL_ENOMEM, "mosquitto_new failed");
	if (!rc) {
		mosquitto_connect_v5_callback_set(m, on_connect);
		mosquitto_subscribe_v5_callback_set(m, on_subscribe);
		mosquitto_message_v5_callback_set(m, on_message);
		rc = connect_broker(m, url, &t, &ssl, err);
	}
	if (!rc)
		rc = wait_answer(m, &c, url, err);
	if (!rc)
		*ret = json_incref(c.reply);
	if (m) {
		mosquitto_disconnect_v5(m, 0, NULL);
		mosquitto_destroy(m);
	}
	SSL_CTX_free(ssl);
	json_decref(c.reply);
	free(c.req_topic);
	free(c.resp_topic);
	free(c.payload);
	tech_release(&t);
	return rc;
}
