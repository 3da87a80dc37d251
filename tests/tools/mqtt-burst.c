/* SPDX-License-Identifier: MIT */
/*
 * mqtt-burst: many devices publishing job events at full speed, from one
 * process (issue 17: tests/e2e/t2300-ingest-lossless.sh, bench/ingest.sh).
 *
 *   mqtt-burst --host H --port P --cafile CA --dir DIR --spec FILE
 *              [--events N] [--start-seq S] [--resend-ms MS]
 *              [--timeout S] [--threads T]
 *
 * The spec file has one line "ID JOB" per device; DIR holds ID.key and
 * ID.pem.  Each device is one MQTT v5 client (client id = ID, persistent
 * session, mTLS) that publishes N events on fleet/ID/events with QoS 1:
 * N-1 "downloading" progress events, then a final "failed" one.  With
 * --resend-ms, the final is re-published (same seq) every MS until
 * fleetd's ack for it arrives on fleet/ID/cmd (docs/protocol.md).  Each
 * client keeps at most the broker's receive-maximum QoS 1 messages in
 * flight.  A few threads each run an event loop (poll) over a slice of
 * the clients.
 *
 * Prints one JSON line at the end.  Exit status: 0 every final was
 * confirmed (with --resend-ms 0: every publish was PUBACK'd), 1 not
 * within --timeout or an error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/crypto.h>

#include "util.h"
#include "validate.h"
#include "banned.h"

#define MAX_DEVICES 20000
#define MAX_EVENTS 1000000
#define MAX_THREADS 64
#define MAX_JOB_LEN 64
#define MAX_LINE 256
#define MAX_PATH 4096
#define MAX_INFLIGHT 1000 /* our own cap on the broker's receive-maximum */
#define MAX_CMD_PAYLOAD 4096
#define SESSION_EXPIRY 3600
#define KEEPALIVE 30
#define RECONNECT_MS 300

struct opts {
	const char *host, *cafile, *dir, *spec;
	int port, threads;
	int64_t events, start_seq, resend_ms, timeout_s;
};

struct dev {
	char id[FL_ID_MAX + 1], job[MAX_JOB_LEN + 1];
	struct mosquitto *mosq;
	bool connected, confirmed;
	int64_t next;        /* index (1..events) of the next event to send */
	int inflight, max_inflight;
	int64_t pubacked;    /* PUBACKs of our first sends */
	int64_t final_sent_ms; /* 0: the final was not sent yet */
	int64_t reconnect_at_ms;
};

struct worker {
	pthread_t thread;
	struct dev *devs;
	size_t n;
};

static struct opts o = {
	.port = 0, .threads = 4, .events = 20, .start_seq = 1,
	.resend_ms = 0, .timeout_s = 120,
};
static struct dev *devs;
static size_t ndevs;
static int64_t deadline_ms;
static atomic_llong n_published, n_pubacked, n_refused, n_acked, n_resends;
/* devices all of whose first sends the broker has PUBACKed */
static atomic_llong n_all_pubacked;
static atomic_llong n_done; /* devices finished (see dev_done) */
static atomic_llong last_done_ms;
static atomic_llong first_pub_ms; /* the rate is timed from here */

static const char usage[] =
	"usage: mqtt-burst --host HOST --port PORT --cafile CA --dir DIR "
	"--spec FILE\n"
	"                  [--events N] [--start-seq S] [--resend-ms MS]\n"
	"                  [--timeout S] [--threads T]\n"
	"  --spec FILE      one line \"ID JOB\" per device (at most 20000)\n"
	"  --dir DIR        DIR/ID.key and DIR/ID.pem per device\n"
	"  --events N       events per device, the last one final (default 20)\n"
	"  --start-seq S    seq of each device's first event (default 1)\n"
	"  --resend-ms MS   re-publish the final every MS until fleetd acks "
	"it\n"
	"                   (0, the default: never; PUBACKs are enough)\n"
	"  --timeout S      give up after S seconds (default 120)\n"
	"  --threads T      event loop threads (default 4)\n"
	"Prints one JSON line: devices, published, pubacked, acked, resends,\n"
	"elapsed_s, rate; on stderr, a line when the broker has PUBACKed every\n"
	"first send (\"the broker took all N events\").  Exit 0 done, 1 not\n"
	"done in time or error, 2 usage.\n";

/* ---- events ---------------------------------------------------------- */

static int64_t seq_of(int64_t index)
{
	return o.start_seq + index - 1;
}

/* The JSON of event @index (1..events) of @d; caller frees. */
static char *event_text(const struct dev *d, int64_t index)
{
	char ts[21];

	fl_time_rfc3339(time(NULL), ts);
	if (index < o.events)
		return fl_xasprintf(
			"{\"seq\":%lld,\"job\":\"%s\",\"type\":\"update\","
			"\"state\":\"downloading\",\"bytes\":%lld,"
			"\"total\":%lld,\"ts\":\"%s\"}",
			(long long)seq_of(index), d->job, (long long)index,
			(long long)o.events, ts);
	return fl_xasprintf("{\"seq\":%lld,\"job\":\"%s\",\"type\":\"update\","
			    "\"state\":\"failed\",\"stage\":\"download\","
			    "\"reason\":\"burst test\",\"ts\":\"%s\"}",
			    (long long)seq_of(index), d->job, ts);
}

static int publish_event(struct dev *d, int64_t index)
{
	char *text = event_text(d, index), topic[FL_ID_MAX + 32];
	int rc;

	snprintf(topic, sizeof(topic), "fleet/%s/events", d->id);
	rc = mosquitto_publish_v5(d->mosq, NULL, topic, (int)strlen(text),
				  text, 1, false, NULL);
	free(text);
	if (rc == MOSQ_ERR_SUCCESS)
		d->inflight++;
	return rc;
}

/* A device is done once every event was PUBACK'd and, with resends on,
 * its final was confirmed by fleetd. */
static bool dev_done(const struct dev *d)
{
	if (d->pubacked < o.events)
		return false;
	return o.resend_ms == 0 || d->confirmed;
}

static void check_done(struct dev *d, bool was_done)
{
	if (!was_done && dev_done(d)) {
		atomic_fetch_add(&n_done, 1);
		atomic_store(&last_done_ms, fl_now_ms());
	}
}

/* Send what the window allows: new events, then a due resend. */
static void pump(struct dev *d, int64_t now)
{
	while (d->connected && d->next <= o.events &&
	       d->inflight < d->max_inflight) {
		if (publish_event(d, d->next) != MOSQ_ERR_SUCCESS)
			return;
		if (atomic_fetch_add(&n_published, 1) == 0)
			atomic_store(&first_pub_ms, now);
		if (d->next == o.events)
			d->final_sent_ms = now;
		d->next++;
	}
	if (d->connected && o.resend_ms > 0 && d->final_sent_ms &&
	    !d->confirmed && now - d->final_sent_ms >= o.resend_ms &&
	    d->inflight < d->max_inflight &&
	    publish_event(d, o.events) == MOSQ_ERR_SUCCESS) {
		d->final_sent_ms = now;
		atomic_fetch_add(&n_resends, 1);
	}
}

/* ---- callbacks (run in the thread that owns the client) --------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	struct dev *d = obj;
	char topic[FL_ID_MAX + 32];
	uint16_t rmax = 0;

	if (rc) {
		fprintf(stderr, "mqtt-burst: %s: broker refused: %s\n", d->id,
			mosquitto_reason_string(rc));
		return;
	}
	d->max_inflight = 65535; /* MQTT 5 default when the broker says none */
	if (mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM,
					  &rmax, false) && rmax > 0)
		d->max_inflight = rmax;
	if (d->max_inflight > MAX_INFLIGHT)
		d->max_inflight = MAX_INFLIGHT;
	/* libmosquitto re-sends what was in flight: it stays counted */
	snprintf(topic, sizeof(topic), "fleet/%s/cmd", d->id);
	mosquitto_subscribe_v5(mosq, NULL, topic, 1, 0, NULL);
	d->connected = true;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid,
		       int reason, const mosquitto_property *props)
{
	struct dev *d = obj;
	bool was_done = dev_done(d);

	if (d->inflight > 0)
		d->inflight--;
	if (reason >= 0x80) {
		atomic_fetch_add(&n_refused, 1);
		return;
	}
	atomic_fetch_add(&n_pubacked, 1);
	if (d->pubacked < o.events && ++d->pubacked == o.events &&
	    (size_t)atomic_fetch_add(&n_all_pubacked, 1) + 1 == ndevs)
		fprintf(stderr, "mqtt-burst: the broker took all %lld events\n",
			(long long)ndevs * (long long)o.events);
	check_done(d, was_done);
}

/* An ack (docs/protocol.md) for our final: seq, job and state match. */
static bool is_our_ack(const struct dev *d, const json_t *msg)
{
	const json_t *args = json_object_get(msg, "args");
	const char *state = json_string_value(json_object_get(args, "state"));

	return fl_streq(json_string_value(json_object_get(msg, "type")),
			"ack") &&
	       json_integer_value(json_object_get(args, "seq")) ==
		       seq_of(o.events) &&
	       fl_streq(json_string_value(json_object_get(args, "job")),
			d->job) &&
	       state && fl_streq(state, "failed");
}

static void on_message(struct mosquitto *mosq, void *obj,
		       const struct mosquitto_message *m,
		       const mosquitto_property *props)
{
	struct dev *d = obj;
	bool was_done = dev_done(d);
	json_t *j;

	if (m->payloadlen <= 0 || m->payloadlen > MAX_CMD_PAYLOAD)
		return;
	j = json_loadb(m->payload, (size_t)m->payloadlen, 0, NULL);
	if (j && !d->confirmed && is_our_ack(d, j)) {
		d->confirmed = true;
		atomic_fetch_add(&n_acked, 1);
		check_done(d, was_done);
	}
	json_decref(j);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
			  const mosquitto_property *props)
{
	struct dev *d = obj;

	d->connected = false;
	d->reconnect_at_ms = fl_now_ms() + RECONNECT_MS;
}

/* ---- clients ---------------------------------------------------------- */

static char *dev_file(const struct dev *d, const char *ext)
{
	return fl_xasprintf("%s/%s.%s", o.dir, d->id, ext);
}

static int dev_setup(struct dev *d)
{
	char *key = dev_file(d, "key"), *cert = dev_file(d, "pem");
	int rc = MOSQ_ERR_NOMEM;

	d->max_inflight = 1;
	d->next = 1;
	d->mosq = mosquitto_new(d->id, false, d);
	if (d->mosq) {
		mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION,
				     MQTT_PROTOCOL_V5);
		mosquitto_connect_v5_callback_set(d->mosq, on_connect);
		mosquitto_publish_v5_callback_set(d->mosq, on_publish);
		mosquitto_message_v5_callback_set(d->mosq, on_message);
		mosquitto_disconnect_v5_callback_set(d->mosq, on_disconnect);
		rc = mosquitto_tls_set(d->mosq, o.cafile, NULL, cert, key,
				       NULL);
	}
	if (rc)
		fprintf(stderr, "mqtt-burst: %s: %s\n", d->id,
			mosquitto_strerror(rc));
	free(key);
	free(cert);
	return rc ? -1 : 0;
}

/*
 * Connect (blocking TCP and TLS; the CONNACK comes in the loop), every
 * time with the session expiry.
 */
static void dev_connect(struct dev *d)
{
	mosquitto_property *props = NULL;
	int rc;

	mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
				     SESSION_EXPIRY);
	rc = mosquitto_connect_bind_v5(d->mosq, o.host, o.port, KEEPALIVE,
				       NULL, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS)
		d->reconnect_at_ms = fl_now_ms() + RECONNECT_MS;
	else
		d->reconnect_at_ms = 0;
}

/* ---- event loop ------------------------------------------------------- */

/* Handle what poll() saw for @d, then send what it may. */
static void service(struct dev *d, short revents, int64_t now)
{
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (POLLIN | POLLERR | POLLHUP))
		rc = mosquitto_loop_read(d->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && (revents & POLLOUT))
		rc = mosquitto_loop_write(d->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_loop_misc(d->mosq);
	if (rc != MOSQ_ERR_SUCCESS && d->reconnect_at_ms == 0) {
		d->connected = false;
		d->reconnect_at_ms = now + RECONNECT_MS;
	}
	pump(d, now);
}

static bool finished(void)
{
	return (size_t)atomic_load(&n_done) == ndevs ||
	       fl_now_ms() >= deadline_ms;
}

/* One round: reconnect the due, poll the live, service them all. */
static void round_once(struct worker *w, struct pollfd *pfd)
{
	int64_t now = fl_now_ms();

	for (size_t i = 0; i < w->n; i++) {
		struct dev *d = &w->devs[i];

		if (d->reconnect_at_ms && now >= d->reconnect_at_ms)
			dev_connect(d);
		pfd[i].fd = d->reconnect_at_ms ? -1 : mosquitto_socket(d->mosq);
		pfd[i].events = POLLIN;
		if (pfd[i].fd >= 0 && mosquitto_want_write(d->mosq))
			pfd[i].events |= POLLOUT;
		pfd[i].revents = 0;
	}
	if (poll(pfd, w->n, 20) < 0 && errno != EINTR)
		return;
	now = fl_now_ms();
	for (size_t i = 0; i < w->n; i++)
		if (pfd[i].fd >= 0)
			service(&w->devs[i], pfd[i].revents, now);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd *pfd = fl_xcalloc(w->n, sizeof(*pfd));

	for (size_t i = 0; i < w->n && !finished(); i++)
		dev_connect(&w->devs[i]);
	while (!finished())
		round_once(w, pfd);
	for (size_t i = 0; i < w->n; i++)
		mosquitto_disconnect_v5(w->devs[i].mosq, 0, NULL);
	/* let the DISCONNECTs out */
	for (int k = 0; k < 5; k++)
		for (size_t i = 0; i < w->n; i++)
			mosquitto_loop_write(w->devs[i].mosq, 1);
	free(pfd);
	/* the TLS errors of lost connections sit in this thread's OpenSSL
	 * error state, which is not freed at thread exit otherwise */
	OPENSSL_thread_stop();
	return NULL;
}

/* ---- input ------------------------------------------------------------ */

static bool valid_job(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_JOB_LEN)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

static int spec_line(const char *path, unsigned lineno, char *line)
{
	char *id = strtok(line, " \t\r\n"), *job = strtok(NULL, " \t\r\n");
	struct dev *d;

	if (!id || id[0] == '#')
		return 0;
	if (!job || strtok(NULL, " \t\r\n") || !fl_valid_id(id) ||
	    !valid_job(job)) {
		fprintf(stderr, "mqtt-burst: error: %s:%u: want \"ID JOB\" "
				"(a device id and a job id)\n", path, lineno);
		return -1;
	}
	if (ndevs == MAX_DEVICES) {
		fprintf(stderr, "mqtt-burst: error: %s: more than %d devices\n",
			path, MAX_DEVICES);
		return -1;
	}
	d = &devs[ndevs++];
	fl_strlcpy(d->id, id, sizeof(d->id));
	fl_strlcpy(d->job, job, sizeof(d->job));
	return 0;
}

static int read_spec(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[MAX_LINE + 2];
	unsigned lineno = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "mqtt-burst: error: cannot open '%s': %s\n",
			path, strerror(errno));
		return -1;
	}
	devs = fl_xcalloc(MAX_DEVICES, sizeof(*devs));
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		if (strlen(line) > MAX_LINE) {
			fprintf(stderr, "mqtt-burst: error: %s:%u: line longer "
					"than %d bytes\n", path, lineno, MAX_LINE);
			rc = -1;
		} else {
			rc = spec_line(path, lineno, line);
		}
	}
	fclose(f);
	if (!rc && ndevs == 0) {
		fprintf(stderr, "mqtt-burst: error: %s: no devices\n", path);
		rc = -1;
	}
	return rc;
}

static int num_opt(const char *name, const char *s, uint64_t min,
		   uint64_t max, int64_t *ret)
{
	uint64_t v;

	if (fl_parse_uint(s, max, &v, NULL) || v < min) {
		fprintf(stderr, "mqtt-burst: error: --%s '%s': want an integer "
				"in %llu..%llu\n", name, s,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*ret = (int64_t)v;
	return 0;
}

static const struct option longopts[] = {
	{"host", required_argument, NULL, 'H'},
	{"port", required_argument, NULL, 'p'},
	{"cafile", required_argument, NULL, 'c'},
	{"dir", required_argument, NULL, 'd'},
	{"spec", required_argument, NULL, 's'},
	{"events", required_argument, NULL, 'n'},
	{"start-seq", required_argument, NULL, 'S'},
	{"resend-ms", required_argument, NULL, 'r'},
	{"timeout", required_argument, NULL, 't'},
	{"threads", required_argument, NULL, 'T'},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static const char *str_opt(const char *name, const char *s)
{
	if (strlen(s) == 0 || strlen(s) > MAX_PATH) {
		fprintf(stderr, "mqtt-burst: error: --%s: empty or longer than "
				"%d bytes\n", name, MAX_PATH);
		return NULL;
	}
	return s;
}

/* One option; 0 ok, -1 bad value, 1 --help. */
static int one_opt(int c, const char *arg)
{
	int64_t v = 0;
	int rc = 0;

	switch (c) {
	case 'H': return (o.host = str_opt("host", arg)) ? 0 : -1;
	case 'c': return (o.cafile = str_opt("cafile", arg)) ? 0 : -1;
	case 'd': return (o.dir = str_opt("dir", arg)) ? 0 : -1;
	case 's': return (o.spec = str_opt("spec", arg)) ? 0 : -1;
	case 'p': rc = num_opt("port", arg, 1, 65535, &v); o.port = (int)v; break;
	case 'n': return num_opt("events", arg, 1, MAX_EVENTS, &o.events);
	case 'S': return num_opt("start-seq", arg, 1, INT32_MAX, &o.start_seq);
	case 'r': return num_opt("resend-ms", arg, 0, 3600000, &o.resend_ms);
	case 't': return num_opt("timeout", arg, 1, 86400, &o.timeout_s);
	case 'T':
		rc = num_opt("threads", arg, 1, MAX_THREADS, &v);
		o.threads = (int)v;
		break;
	case 'h': return 1;
	default: return -1;
	}
	return rc;
}

static int parse_args(int argc, char **argv)
{
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
		if ((rc = one_opt(c, optarg)))
			return rc;
	if (optind != argc || !o.host || !o.port || !o.cafile || !o.dir ||
	    !o.spec) {
		fprintf(stderr, "mqtt-burst: error: --host, --port, --cafile, "
				"--dir and --spec are required; no operands\n");
		return -1;
	}
	return 0;
}

/* ---- main ------------------------------------------------------------- */

static int setup_all(void)
{
	for (size_t i = 0; i < ndevs; i++)
		if (dev_setup(&devs[i]))
			return -1;
	return 0;
}

static void run_workers(void)
{
	struct worker w[MAX_THREADS] = {{0}};
	size_t nt = (size_t)o.threads < ndevs ? (size_t)o.threads : ndevs;
	size_t per = (ndevs + nt - 1) / nt, at = 0;

	for (size_t t = 0; t < nt && at < ndevs; t++) {
		w[t].devs = &devs[at];
		w[t].n = ndevs - at < per ? ndevs - at : per;
		at += w[t].n;
		if (pthread_create(&w[t].thread, NULL, worker_main, &w[t])) {
			fprintf(stderr, "mqtt-burst: error: cannot start a "
					"thread\n");
			exit(1);
		}
	}
	for (size_t t = 0; t < nt; t++)
		if (w[t].n)
			pthread_join(w[t].thread, NULL);
}

static void report(void)
{
	int64_t start_ms = atomic_load(&first_pub_ms), end = atomic_load(&n_done) == (long long)ndevs
			      ? atomic_load(&last_done_ms)
			      : fl_now_ms();
	double secs = (double)(end - start_ms) / 1000.0;

	if (!start_ms || secs <= 0)
		secs = 0.001;
	printf("{\"devices\":%zu,\"events_per_device\":%lld,\"published\":%lld,"
	       "\"pubacked\":%lld,\"refused\":%lld,\"acked\":%lld,"
	       "\"resends\":%lld,\"done\":%lld,\"elapsed_s\":%.3f,"
	       "\"rate\":%.1f}\n",
	       ndevs, (long long)o.events, (long long)atomic_load(&n_published),
	       (long long)atomic_load(&n_pubacked),
	       (long long)atomic_load(&n_refused),
	       (long long)atomic_load(&n_acked),
	       (long long)atomic_load(&n_resends),
	       (long long)atomic_load(&n_done), secs,
	       (double)atomic_load(&n_published) / secs);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int64_t start;
	int rc = parse_args(argc, argv);

	if (rc) {
		fputs(usage, rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (read_spec(o.spec))
		return 2;
	mosquitto_lib_init();
	if (setup_all()) {
		mosquitto_lib_cleanup();
		return 1;
	}
	start = fl_now_ms();
	deadline_ms = start + o.timeout_s * 1000;
	run_workers();
	report();
	for (size_t i = 0; i < ndevs; i++)
		mosquitto_destroy(devs[i].mosq);
	free(devs);
	mosquitto_lib_cleanup();
	return (size_t)atomic_load(&n_done) == ndevs ? 0 : 1;
}
