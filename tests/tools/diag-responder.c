/* SPDX-License-Identifier: MIT */
/*
 * diag-responder: devices that answer diag requests the way the wire
 * format says a device does (docs/protocol.md "Diagnostics"), scripted
 * by check name, for fleetd's relay tests (tests/e2e/t5001-diag-relay.sh)
 * before and besides the real agent.
 *
 *   diag-responder --host H --port P --cafile CA --dir DIR
 *                  [--server URL --bundle FILE] ID...
 *
 * Each ID is one MQTT v5 client (client id ID, mTLS with DIR/ID.pem and
 * DIR/ID.key) that says it is online (retained presence, a will saying
 * offline), takes requests on fleet/ID/diag/req and replies on the
 * request's Response Topic with its Correlation Data, as a device must:
 * only when the Response Topic is fleet/ID/diag/resp/REQUESTER.
 *
 *   ping         {"pong": true, "time", "device"}
 *   echo ARG...  {"args": [ARG...]}
 *   output       an operator check's result, with a multi-line stdout
 *                holding an escape sequence
 *   fail         ok false, code "failed"
 *   dup          the ping reply, twice
 *   garbage      a reply that is not JSON
 *   slow S       the ping reply after S seconds
 *   silent       no reply
 *   bundle U     PUT --bundle FILE to URL/api/v1/devices/ID/diag-bundles/U
 *                with the device's certificate, then reply {"upload",
 *                "size"} (ok false when the upload failed); without
 *                --bundle, no reply
 *   anything else: ok false, code "unknown-check"
 *
 * Every request is logged on stdout as "ID CHECK [ARG...]".  SIGTERM or
 * SIGINT: each device says offline and disconnects; exit 0.  Exit 1 on
 * a setup error, 2 on a usage error.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "http.h"
#include "util.h"
#include "validate.h"
#include "banned.h"

#define MAX_DEVICES 64
#define KEEPALIVE 30
#define PREFIX "fleet"

struct dev {
	char id[FL_ID_MAX + 1];
	struct mosquitto *mosq;
};

static struct {
	const char *host, *cafile, *dir, *server, *bundle;
	int port;
} o;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_request(const char *id, const json_t *req)
{
	json_t *v;
	size_t i;

	pthread_mutex_lock(&out_lock);
	printf("%s %s", id,
	       json_string_value(json_object_get(req, "check")) ?: "?");
	json_array_foreach(json_object_get(req, "args"), i, v)
	    printf(" %s", json_string_value(v) ?: "?");
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static char *dev_file(const struct dev *d, const char *ext)
{
	return fl_xasprintf("%s/%s.%s", o.dir, d->id, ext);
}

/* PUT the bundle file as upload @upload; its size, or -1 with @err. */
static long long upload_bundle(const struct dev *d, const char *upload,
			       struct fl_error *err)
{
	char *cert = dev_file(d, "pem"), *key = dev_file(d, "key");
	char *path =
	    fl_xasprintf("/api/v1/devices/%s/diag-bundles/%s", d->id, upload);
	struct fl_http_opts ho = {.base_url = o.server,
				  .ca_file = o.cafile,
				  .cert_file = cert,
				  .key_file = key};
	struct fl_http *h = NULL;
	json_t *resp = NULL;
	long long size = -1;

	if (!fl_http_new(&ho, &h, err) &&
	    !fl_http_upload(h, "PUT", path, o.bundle, &resp, err))
		size = json_integer_value(json_object_get(resp, "size"));
	json_decref(resp);
	fl_http_free(h);
	free(path);
	free(key);
	free(cert);
	return size;
}

static json_t *ok_reply(const char *check, json_t *result)
{
	return json_pack("{s:s, s:b, s:i, s:o}", "check", check, "ok", 1,
			 "elapsed_ms", 1, "result", result);
}

static json_t *fail_reply(const char *check, const char *code, const char *why)
{
	return json_pack("{s:s, s:b, s:s, s:s}", "check", check, "ok", 0,
			 "error", why, "code", code);
}

static json_t *ping(const struct dev *d)
{
	char ts[21];

	fl_time_rfc3339(time(NULL), ts);
	return ok_reply("ping", json_pack("{s:b, s:s, s:s}", "pong", 1, "time",
					  ts, "device", d->id));
}

static json_t *bundle(const struct dev *d, const char *upload)
{
	struct fl_error err = {0};
	long long size;

	size = upload ? upload_bundle(d, upload, &err) : -1;
	if (size < 0)
		return fail_reply("bundle", "failed",
				  err.msg[0] ? err.msg : "no upload id");
	return ok_reply("bundle", json_pack("{s:s, s:I}", "upload", upload,
					    "size", (json_int_t)size));
}

/* The reply to @req, NULL for none; *@times says how often to send it. */
static json_t *answer(const struct dev *d, const json_t *req, int *times)
{
	const char *check = json_string_value(json_object_get(req, "check"));
	const json_t *args = json_object_get(req, "args");
	const char *arg0 = json_string_value(json_array_get(args, 0));

	*times = 1;
	if (!check)
		return NULL;
	if (fl_streq(check, "ping"))
		return ping(d);
	if (fl_streq(check, "echo"))
		return ok_reply(check, json_pack("{s:O}", "args", args));
	if (fl_streq(check, "output"))
		return ok_reply(check,
				json_pack("{s:i, s:s, s:s, s:b}", "exit", 0,
					  "stdout",
					  "first line\nsecond \x1b[2J line\n",
					  "stderr", "", "truncated", 0));
	if (fl_streq(check, "fail"))
		return fail_reply(check, "failed", "failed on purpose");
	if (fl_streq(check, "dup")) {
		*times = 2;
		return ok_reply(check, json_pack("{s:b}", "pong", 1));
	}
	if (fl_streq(check, "slow")) {
		sleep(arg0 ? (unsigned)atoi(arg0) : 1);
		return ok_reply(check, json_pack("{s:b}", "pong", 1));
	}
	if (fl_streq(check, "silent") ||
	    (fl_streq(check, "bundle") && !o.bundle))
		return NULL;
	if (fl_streq(check, "bundle"))
		return bundle(d, arg0);
	return fail_reply(check, "unknown-check", "unknown check");
}

/* The request's Response Topic, when it is fleet/ID/diag/resp/REQ. */
static char *response_topic(const struct dev *d,
			    const mosquitto_property *props)
{
	char *topic = NULL,
	     *want = fl_xasprintf(PREFIX "/%s/diag/resp/", d->id);

	mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &topic,
				       false);
	if (topic && (!fl_startswith(topic, want) ||
		      !fl_valid_id(topic + strlen(want)))) {
		free(topic);
		topic = NULL;
	}
	free(want);
	return topic;
}

static void send_reply(const struct dev *d, const char *topic, const void *corr,
		       uint16_t corr_len, const char *text)
{
	mosquitto_property *props = NULL;

	mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr,
				      corr_len);
	mosquitto_publish_v5(d->mosq, NULL, topic, (int)strlen(text), text, 1,
			     false, props);
	mosquitto_property_free_all(&props);
}

static void on_message(struct mosquitto *mosq, void *obj,
		       const struct mosquitto_message *m,
		       const mosquitto_property *props)
{
	struct dev *d = obj;
	char *topic = response_topic(d, props), *text;
	void *corr = NULL;
	uint16_t corr_len = 0;
	json_t *req, *rep = NULL;
	int times = 1;

	req = json_loadb(m->payload, (size_t)m->payloadlen, 0, NULL);
	if (req)
		log_request(d->id, req);
	if (!topic ||
	    !mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA,
					    &corr, &corr_len, false)) {
		fprintf(stderr,
			"diag-responder: %s: request dropped: no "
			"response topic or correlation data\n",
			d->id);
	} else if (fl_streq(json_string_value(json_object_get(req, "check")),
			    "garbage")) {
		send_reply(d, topic, corr, corr_len, "not json");
	} else if ((rep = answer(d, req, &times))) {
		text = json_dumps(rep, JSON_COMPACT);
		while (times--)
			send_reply(d, topic, corr, corr_len, text);
		free(text);
	}
	json_decref(rep);
	json_decref(req);
	free(corr);
	free(topic);
}

static void presence(struct dev *d, bool online)
{
	char *topic = fl_xasprintf(PREFIX "/%s/presence", d->id);
	char ts[21], *text;

	fl_time_rfc3339(time(NULL), ts);
	text = fl_xasprintf("{\"online\":%s,\"ts\":\"%s\","
			    "\"agent\":\"diag-responder\"}",
			    online ? "true" : "false", ts);
	mosquitto_publish_v5(d->mosq, NULL, topic, (int)strlen(text), text, 1,
			     true, NULL);
	free(text);
	free(topic);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	struct dev *d = obj;
	char *topic;

	if (rc) {
		fprintf(stderr, "diag-responder: %s: broker refused: %s\n",
			d->id, mosquitto_reason_string(rc));
		return;
	}
	topic = fl_xasprintf(PREFIX "/%s/diag/req", d->id);
	mosquitto_subscribe_v5(mosq, NULL, topic, 1, 0, NULL);
	free(topic);
	presence(d, true);
}

static int dev_start(struct dev *d)
{
	char *key = dev_file(d, "key"), *cert = dev_file(d, "pem");
	char *will = fl_xasprintf(PREFIX "/%s/presence", d->id);
	int rc = MOSQ_ERR_NOMEM;

	d->mosq = mosquitto_new(d->id, true, d);
	if (d->mosq) {
		mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION,
				     MQTT_PROTOCOL_V5);
		mosquitto_connect_v5_callback_set(d->mosq, on_connect);
		mosquitto_message_v5_callback_set(d->mosq, on_message);
		mosquitto_will_set_v5(d->mosq, will, 16, "{\"online\":false}",
				      1, true, NULL);
		rc =
		    mosquitto_tls_set(d->mosq, o.cafile, NULL, cert, key, NULL);
	}
	if (!rc)
		rc =
		    mosquitto_connect_async(d->mosq, o.host, o.port, KEEPALIVE);
	if (!rc)
		rc = mosquitto_loop_start(d->mosq);
	if (rc)
		fprintf(stderr, "diag-responder: %s: %s\n", d->id,
			mosquitto_strerror(rc));
	free(will);
	free(key);
	free(cert);
	return rc ? -1 : 0;
}

static void dev_stop(struct dev *d)
{
	if (!d->mosq)
		return;
	presence(d, false);
	mosquitto_disconnect_v5(d->mosq, 0, NULL);
	mosquitto_loop_stop(d->mosq, false);
	mosquitto_destroy(d->mosq);
}

static const char usage[] =
    "usage: diag-responder --host H --port P --cafile CA --dir DIR\n"
    "                      [--server URL --bundle FILE] ID...\n";

static int parse(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"cafile", required_argument, NULL, 'c'},
	    {"dir", required_argument, NULL, 'd'},
	    {"server", required_argument, NULL, 's'},
	    {"bundle", required_argument, NULL, 'b'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			o.host = optarg;
			break;
		case 'p':
			o.port = atoi(optarg);
			break;
		case 'c':
			o.cafile = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 's':
			o.server = optarg;
			break;
		case 'b':
			o.bundle = optarg;
			break;
		default:
			return -1;
		}
	}
	if (!o.host || !o.port || !o.cafile || !o.dir || optind == argc ||
	    argc - optind > MAX_DEVICES || (o.bundle && !o.server))
		return -1;
	for (int i = optind; i < argc; i++)
		if (!fl_valid_id(argv[i]))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct dev devs[MAX_DEVICES];
	sigset_t set;
	int n, sig, rc = 0;

	if (parse(argc, argv)) {
		fputs(usage, stderr);
		return 2;
	}
	if (o.bundle && fl_curl_init(NULL)) {
		fprintf(stderr, "diag-responder: cannot load libcurl\n");
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* the loops inherit it */
	mosquitto_lib_init();
	n = argc - optind;
	for (int i = 0; i < n && !rc; i++) {
		fl_strlcpy(devs[i].id, argv[optind + i], sizeof(devs[i].id));
		rc = dev_start(&devs[i]);
	}
	if (!rc)
		sigwait(&set, &sig);
	for (int i = 0; i < n; i++)
		dev_stop(&devs[i]);
	mosquitto_lib_cleanup();
	return rc ? 1 : 0;
}
