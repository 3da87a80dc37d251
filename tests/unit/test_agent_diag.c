/* SPDX-License-Identifier: MIT */
/*
 * agent/diag: the request parser, the response-topic rule and the reply
 * builder; then fleet-agent's diagnostics feature against a real
 * mosquitto (agent_fixture.h), asked as fleetd would (a v5 response
 * topic and correlation data): every built-in check's data compared
 * with what this test reads itself (uname, /proc, statvfs, the
 * bootloader variables, the certificate), an operator check, refusals
 * (unknown check, bad arguments, oversize), requests without a valid
 * response topic or correlation dropped, a flood answered "busy" while
 * an update-like tick keeps its pace, a slow check that delays no
 * other reply; and fleet-sim's variant.  Operator checks in depth:
 * test_agent_diag_exec.c.
 */
#include "agent_fixture.h"

#include <jansson.h>
#include <math.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include "agent.h"
#include "agent_config.h"
#include "boot.h"
#include "diag.h"
#include "feature.h"
#include "json.h"
#include "log.h"
#include "simdev.h"

#define REQ "fleet/dev-1/diag/req"
#define RESP "fleet/dev-1/diag/resp/fleetd"
#define REPLIES_MAX 256

/* ------------------------------------------------------------------ */
/* Parser, topic rule, replies                                        */
/* ------------------------------------------------------------------ */

static int parse(const char *text, struct diag_req *r, enum diag_code *code)
{
	return diag_req_parse(text, strlen(text), r, code, NULL);
}

static void test_parse_good(void **state)
{
	struct diag_req r;
	enum diag_code code;

	assert_int_equal(parse("{\"check\":\"ping\"}", &r, &code), 0);
	assert_int_equal(code, DIAG_OK);
	assert_string_equal(r.check, "ping");
	assert_int_equal(r.n_args, 0);
	assert_int_equal(r.timeout_s, DIAG_TIMEOUT_DEFAULT_S);
	diag_req_release(&r);
	assert_int_equal(parse("{\"check\":\"logs\",\"args\":[\"agent\","
			       "\"; rm -rf /\"],\"timeout_s\":300,"
			       "\"later\":{\"x\":1}}",
			       &r, &code),
			 0);
	assert_int_equal(r.n_args, 2);
	assert_string_equal(r.args[1], "; rm -rf /");
	assert_int_equal(r.timeout_s, 300);
	diag_req_release(&r);
}

static void test_parse_refusals(void **state)
{
	static const char *const bad[] = {
	    "not json",
	    "[\"ping\"]",
	    "{}",
	    "{\"check\":\"\"}",
	    "{\"check\":\"Ping\"}",
	    "{\"check\":\"../bin/sh\"}",
	    "{\"check\":\"a23456789012345678901234567890123\"}",
	    "{\"check\":7}",
	    "{\"check\":\"ping\",\"args\":\"x\"}",
	    "{\"check\":\"ping\",\"args\":[1]}",
	    "{\"check\":\"ping\",\"args\":[\"a\\u0000b\"]}",
	    "{\"check\":\"ping\",\"timeout_s\":0}",
	    "{\"check\":\"ping\",\"timeout_s\":301}",
	    "{\"check\":\"ping\",\"timeout_s\":\"10\"}",
	    "{\"check\":\"ping\",\"check\":\"net\"}",
	};
	char big[DIAG_REQ_MAX + 64], *args;
	struct diag_req r;
	enum diag_code code;
	json_t *j = json_pack("{s:s, s:[]}", "check", "ping", "args");

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		assert_int_equal(parse(bad[i], &r, &code), FL_EPARSE);
		assert_int_equal(code, DIAG_BAD_ARGS);
		diag_req_release(&r);
	}
	/* 17 arguments, one of 257 bytes, 2 KiB in all */
	for (int i = 0; i < DIAG_ARGS_MAX + 1; i++)
		json_array_append_new(json_object_get(j, "args"),
				      json_string("x"));
	args = fl_json_dumps(j);
	assert_int_equal(parse(args, &r, &code), FL_EPARSE);
	free(args);
	json_array_clear(json_object_get(j, "args"));
	memset(big, 'a', DIAG_ARG_MAX + 1);
	big[DIAG_ARG_MAX + 1] = '\0';
	json_array_append_new(json_object_get(j, "args"), json_string(big));
	args = fl_json_dumps(j);
	assert_int_equal(parse(args, &r, &code), FL_EPARSE);
	free(args);
	json_array_clear(json_object_get(j, "args"));
	big[DIAG_ARG_MAX] = '\0';
	for (int i = 0; i < DIAG_ARGS_TOTAL_MAX / DIAG_ARG_MAX + 1; i++)
		json_array_append_new(json_object_get(j, "args"),
				      json_string(big));
	args = fl_json_dumps(j);
	assert_int_equal(parse(args, &r, &code), FL_EPARSE);
	assert_string_equal(r.check, "ping"); /* the reply can name it */
	diag_req_release(&r);
	free(args);
	json_decref(j);
	/* over 4 KiB: too large, whatever it holds */
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"check\":\"ping\"}", 16);
	assert_int_equal(diag_req_parse(big, DIAG_REQ_MAX + 1, &r, &code, NULL),
			 FL_ELIMIT);
	assert_int_equal(code, DIAG_TOO_LARGE);
	diag_req_release(&r);
	assert_int_equal(diag_req_parse(big, DIAG_REQ_MAX, &r, &code, NULL), 0);
	diag_req_release(&r);
}

static void test_response_topic(void **state)
{
	static const char *const bad[] = {
	    "fleet/dev-2/diag/resp/fleetd", "other/dev-1/diag/resp/fleetd",
	    "fleet/dev-1/diag/resp/",	    "fleet/dev-1/diag/resp",
	    "fleet/dev-1/diag/resp/+",	    "fleet/dev-1/diag/resp/#",
	    "fleet/dev-1/diag/resp/a/b",    "fleet/dev-1/cmd",
	    "fleet/dev-10/diag/resp/x",	    "fleetx/dev-1/diag/resp/x",
	    "fleet/dev-1/diag/resp/a b",    NULL,
	};
	char long_req[128];
	const char *who = NULL;

	assert_true(diag_response_topic_ok("fleet", "dev-1", RESP, &who));
	assert_string_equal(who, "fleetd");
	assert_true(diag_response_topic_ok(
	    "fleet", "dev-1", "fleet/dev-1/diag/resp/tech-Ann_2", NULL));
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_false(
		    diag_response_topic_ok("fleet", "dev-1", bad[i], NULL));
	snprintf(long_req, sizeof(long_req), "fleet/dev-1/diag/resp/%065d", 0);
	assert_false(diag_response_topic_ok("fleet", "dev-1", long_req, NULL));
	long_req[strlen(long_req) - 1] = '\0'; /* 64: allowed */
	assert_true(diag_response_topic_ok("fleet", "dev-1", long_req, NULL));
}

static json_t *reply_json(const char *text, size_t len)
{
	json_t *j = NULL;

	assert_int_equal(fl_json_parse(text, len, DIAG_REPLY_MAX, &j, NULL), 0);
	return j;
}

static void test_replies(void **state)
{
	json_t *res = json_pack("{s:b}", "pong", true), *j;
	char *text, *big = fl_xmalloc(DIAG_REPLY_MAX + 1);
	size_t len;

	text = diag_reply("ping", DIAG_OK, NULL, res, 3, &len);
	j = reply_json(text, len);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "elapsed_ms")),
			 3);
	assert_true(json_equal(json_object_get(j, "result"), res));
	assert_null(json_object_get(j, "code"));
	json_decref(j);
	free(text);
	/* an error; a message that is not UTF-8 still makes JSON */
	text =
	    diag_reply("x", DIAG_UNKNOWN_CHECK, "bad \xff byte", NULL, 0, &len);
	j = reply_json(text, len);
	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "unknown-check");
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "bad ? byte");
	json_decref(j);
	free(text);
	/* over 64 KiB: too-large instead */
	memset(big, 'x', DIAG_REPLY_MAX);
	big[DIAG_REPLY_MAX] = '\0';
	json_object_set_new(res, "big", json_string(big));
	text = diag_reply("ping", DIAG_OK, NULL, res, 1, &len);
	assert_true(len <= DIAG_REPLY_MAX);
	j = reply_json(text, len);
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "too-large");
	assert_null(json_object_get(j, "result"));
	json_decref(j);
	free(text);
	free(big);
	json_decref(res);
}

/* ------------------------------------------------------------------ */
/* An agent, asked as fleetd would                                    */
/* ------------------------------------------------------------------ */

struct reply {
	char *topic, *payload, *corr;
};

struct dx {
	struct afx *f;
	char *state, *sim, *checks, *conf;
	struct agent_config *cfg;
	struct agent *a;
	const struct agent_feature *features[AGENT_FEATURES_MAX]; /* its */
	struct agent_mqtt *obs;
	struct reply r[REPLIES_MAX];
	size_t n;
	bool obs_up;
	int seq;
};

static void obs_connect(void *user, bool session_present)
{
	((struct dx *)user)->obs_up = true;
}

static void obs_message(void *user, const char *topic, const void *payload,
			size_t len, const struct agent_msg_props *props)
{
	struct dx *x = user;
	struct reply *r = &x->r[x->n];

	if (x->n == REPLIES_MAX || !fl_startswith(topic, "fleet/dev-1/diag/"))
		return;
	if (fl_streq(topic, REQ))
		return; /* our own requests */
	r->topic = fl_xstrdup(topic);
	r->payload = fl_xstrndup(payload, len);
	r->corr = fl_xstrndup(props->correlation ? props->correlation : "",
			      props->correlation_len);
	x->n++;
}

static void make_config(struct dx *x, const char *extra)
{
	char *text;

	text = fl_xasprintf("[device]\nid = dev-1\nstate_dir = state\n"
			    "[server]\nurl = https://127.0.0.1:%d\n"
			    "timeout = 2s\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "reconnect_min = 1\nreconnect_max = 2\n"
			    "[diag]\nchecks_dir = checks\n%s",
			    afx_free_port(), x->f->port, extra ? extra : "");
	assert_int_equal(fl_write_atomic_str(x->conf, text, 0600, NULL), 0);
	agent_config_free(x->cfg);
	x->cfg = NULL;
	assert_int_equal(agent_config_load(x->conf, &x->cfg, NULL), 0);
	assert_int_equal(agent_config_set_sim(x->cfg, x->sim, NULL), 0);
	free(text);
}

static void write_check(struct dx *x, const char *name, const char *body)
{
	char *p = fl_path_join(x->checks, name);

	assert_int_equal(fl_write_atomic_str(p, body, 0755, NULL), 0);
	free(p);
}

static int setup(void **state)
{
	struct dx *x = fl_xcalloc(1, sizeof(*x));
	struct fl_error err = {0};
	char *fw, *paths[3];
	struct agent_mqtt_opts o;

	afx_setup((void **)&x->f);
	x->state = afx_path(x->f, "state");
	x->sim = afx_path(x->f, "sim");
	x->checks = afx_path(x->f, "checks");
	x->conf = afx_path(x->f, "agent.conf");
	assert_int_equal(fl_mkdir_p(x->state, 0700, NULL), 0);
	assert_int_equal(fl_mkdir_p(x->checks, 0755, NULL), 0);
	afx_copy_file(x->f, "dev-1.key", x->state, "key.pem", 0600);
	afx_copy_file(x->f, "dev-1.pem", x->state, "cert.pem", 0644);
	afx_copy_file(x->f, "issuing.pem", x->state, "chain.pem", 0644);
	afx_copy_file(x->f, "root.pem", x->state, "ca.pem", 0644);
	fw = afx_path(x->f, "fw");
	assert_int_equal(
	    fl_write_atomic_str(fw,
				"#!/bin/sh\ncase \"$1\" in --version) echo "
				"1.0.0;; esac\nexit 0\n",
				0755, NULL),
	    0);
	assert_int_equal(agent_simdev_init(x->sim, fw, 3, NULL), 0);
	free(fw);
	make_config(x, NULL);
	o = afx_opts(x->f, "observer", "observer", paths);
	o.user = x;
	o.on_connect = obs_connect;
	o.on_message = obs_message;
	o.session_expiry_s = 0;
	assert_int_equal(agent_mqtt_new(&o, &x->obs, &err), 0);
	afx_free_paths(paths);
	assert_int_equal(agent_mqtt_connect_wait(x->obs, 10000, NULL, &err), 0);
	assert_int_equal(
	    agent_mqtt_subscribe(x->obs, "fleet/dev-1/diag/#", 1, &err), 0);
	fl_log_keep(200);
	*state = x;
	return 0;
}

static void clear_replies(struct dx *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->r[i].topic);
		free(x->r[i].payload);
		free(x->r[i].corr);
	}
	x->n = 0;
}

static int teardown(void **state)
{
	struct dx *x = *state;
	void *f = x->f;

	fl_log_keep(0);
	agent_free(x->a);
	agent_config_free(x->cfg);
	agent_mqtt_disconnect(x->obs);
	agent_mqtt_free(x->obs);
	clear_replies(x);
	free(x->state);
	free(x->sim);
	free(x->checks);
	free(x->conf);
	free(x);
	return afx_teardown(&f);
}

/* One turn of the agent and the observer. */
static void turn(struct dx *x)
{
	agent_step(x->a, 10, NULL);
	agent_mqtt_step(x->obs, 5);
}

static void start_agent(struct dx *x, const struct agent_feature *const *f,
			size_t n)
{
	int64_t end = fl_now_ms() + 10000;

	assert_int_equal(f ? agent_new_with(x->cfg, f, n, &x->a, NULL)
			   : agent_new(x->cfg, &x->a, NULL),
			 0);
	while (!agent_online(x->a) && fl_now_ms() < end)
		turn(x);
	assert_true(agent_online(x->a));
	/* the subscription is in place once a request is answered */
	for (int i = 0; i < 20; i++)
		turn(x);
}

/* Publish @payload on @topic with response topic @resp and correlation
 * data @corr (NULL: none). */
static void send_raw(struct dx *x, const char *topic, const char *resp,
		     const char *corr, size_t corr_len, const char *payload,
		     size_t len)
{
	struct agent_msg_props p = {.response_topic = (char *)resp,
				    .correlation = (void *)corr,
				    .correlation_len = corr ? corr_len : 0};

	assert_int_equal(agent_mqtt_publish_props(x->obs, topic, payload, len,
						  1, false, &p, NULL),
			 0);
}

/* Send a request; its correlation data in @corr (32 bytes). */
static void send_req(struct dx *x, const char *payload, char *corr)
{
	snprintf(corr, 32, "r-%d", ++x->seq);
	send_raw(x, REQ, RESP, corr, strlen(corr), payload, strlen(payload));
}

static struct reply *find_reply(struct dx *x, const char *corr)
{
	for (size_t i = 0; i < x->n; i++)
		if (fl_streq(x->r[i].corr, corr))
			return &x->r[i];
	return NULL;
}

/* Turn until the reply correlated @corr came (10 s at most). */
static json_t *wait_reply(struct dx *x, const char *corr)
{
	int64_t end = fl_now_ms() + 10000;
	struct reply *r = NULL;
	json_t *j = NULL;

	while (!(r = find_reply(x, corr)) && fl_now_ms() < end)
		turn(x);
	assert_non_null(r);
	assert_string_equal(r->topic, RESP);
	assert_int_equal(fl_json_parse(r->payload, strlen(r->payload),
				       DIAG_REPLY_MAX, &j, NULL),
			 0);
	return j;
}

static json_t *ask(struct dx *x, const char *payload)
{
	char corr[32];

	send_req(x, payload, corr);
	return wait_reply(x, corr);
}

/* The result of a check that must succeed. */
static json_t *ask_ok(struct dx *x, const char *payload)
{
	json_t *j = ask(x, payload), *res;

	if (!json_is_true(json_object_get(j, "ok")))
		fail_msg("%s: %s", payload,
			 json_string_value(json_object_get(j, "error")));
	res = json_incref(json_object_get(j, "result"));
	json_decref(j);
	return res;
}

/* The code of a check that must fail. */
static void assert_refused(struct dx *x, const char *payload, const char *code)
{
	json_t *j = ask(x, payload);

	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    code);
	assert_non_null(json_string_value(json_object_get(j, "error")));
	json_decref(j);
}

static char *read_text(const char *path)
{
	char *t = NULL;

	assert_int_equal(fl_read_file(path, 1 << 20, &t, NULL, NULL), 0);
	return t;
}

/* ------------------------------------------------------------------ */
/* Built-in checks                                                    */
/* ------------------------------------------------------------------ */

static void test_ping_cert(void **state)
{
	struct dx *x = *state;
	const struct fl_pki_cert_info *c;
	json_t *res, *j;
	time_t t = 0;

	start_agent(x, NULL, 0);
	res = ask_ok(x, "{\"check\":\"ping\"}");
	assert_true(json_is_true(json_object_get(res, "pong")));
	assert_int_equal(
	    fl_parse_rfc3339(json_string_value(json_object_get(res, "time")),
			     &t, NULL),
	    0);
	assert_true(labs((long)(t - time(NULL))) <= 2);
	json_decref(res);
	/* the correlation data came back, on the response topic */
	j = ask(x, "{\"check\":\"ping\",\"args\":[\"x\"]}");
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "bad-args");
	json_decref(j);
	c = agent_cert(x->a);
	res = ask_ok(x, "{\"check\":\"cert\"}");
	assert_string_equal(json_string_value(json_object_get(res, "serial")),
			    c->serial);
	assert_string_equal(json_string_value(json_object_get(res, "subject")),
			    "dev-1");
	assert_int_equal(json_integer_value(json_object_get(res, "days_left")),
			 (c->not_after - time(NULL)) / 86400);
	assert_int_equal(
	    fl_parse_rfc3339(
		json_string_value(json_object_get(res, "not_after")), &t, NULL),
	    0);
	assert_int_equal(t, c->not_after);
	assert_true(json_is_false(json_object_get(res, "expired")));
	json_decref(res);
}

static double proc_first(const char *path)
{
	char *t = read_text(path);
	double v = atof(t);

	free(t);
	return v;
}

static long long meminfo_kb(const char *key)
{
	char *t = NULL;
	long long v = -1;
	size_t at;

	assert_int_equal(fl_read_file("/proc/meminfo", 1 << 20, &t, NULL, NULL),
			 0);
	at = strstr(t, key) ? (size_t)(strstr(t, key) - t) : strlen(t);
	sscanf(t + at + (t[at] ? strlen(key) : 0), ": %lld", &v);
	free(t);
	return v;
}

static void test_sysinfo(void **state)
{
	struct dx *x = *state;
	struct utsname u;
	struct statvfs sv;
	json_t *res, *root;
	double up;

	start_agent(x, NULL, 0);
	assert_int_equal(uname(&u), 0);
	res = ask_ok(x, "{\"check\":\"sysinfo\"}");
	up = proc_first("/proc/uptime");
	assert_string_equal(json_string_value(json_object_get(res, "kernel")),
			    u.release);
	assert_string_equal(json_string_value(json_object_get(res, "machine")),
			    u.machine);
	assert_true(
	    fabs((double)json_integer_value(json_object_get(res, "uptime_s")) -
		 up) <= 3);
	assert_int_equal(json_array_size(json_object_get(res, "load")), 3);
	assert_true(fabs(json_real_value(
			     json_array_get(json_object_get(res, "load"), 0)) -
			 proc_first("/proc/loadavg")) < 2.0);
	assert_int_equal(
	    json_integer_value(json_object_get(res, "mem_total_kb")),
	    meminfo_kb("MemTotal"));
	assert_true(json_integer_value(json_object_get(res, "mem_avail_kb")) >
		    0);
	root = json_array_get(json_object_get(res, "disks"), 0);
	assert_string_equal(json_string_value(json_object_get(root, "mount")),
			    "/");
	assert_int_equal(statvfs("/", &sv), 0);
	assert_int_equal(
	    json_integer_value(json_object_get(root, "size_kb")),
	    (json_int_t)((uint64_t)sv.f_blocks * sv.f_frsize / 1024));
	assert_true(
	    llabs(json_integer_value(json_object_get(root, "avail_kb")) -
		  (long long)((uint64_t)sv.f_bavail * sv.f_frsize / 1024)) <
	    100 * 1024);
	assert_null(json_object_get(res, "sim"));
	json_decref(res);
}

static bool has_addr(const json_t *ifs, const char *name, const char *addr)
{
	for (size_t i = 0; i < json_array_size(ifs); i++) {
		const json_t *e = json_array_get(ifs, i);
		const json_t *a = json_object_get(e, "addrs");

		if (!fl_streq(json_string_value(json_object_get(e, "name")),
			      name))
			continue;
		for (size_t k = 0; k < json_array_size(a); k++)
			if (fl_streq(json_string_value(json_array_get(a, k)),
				     addr))
				return true;
	}
	return false;
}

/* The nameservers of /etc/resolv.conf, read here. */
static json_t *resolvers(void)
{
	json_t *a = json_array();
	char *t = NULL, *line, *save = NULL, addr[64];

	if (fl_read_file("/etc/resolv.conf", 1 << 20, &t, NULL, NULL))
		return a;
	for (line = strtok_r(t, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, " nameserver %63s", addr) == 1)
			json_array_append_new(a, json_string(addr));
	free(t);
	return a;
}

static void test_net(void **state)
{
	struct dx *x = *state;
	json_t *res, *reach, *dns = resolvers();
	const json_t *fleetd, *broker;

	start_agent(x, NULL, 0);
	res = ask_ok(x, "{\"check\":\"net\"}");
	assert_true(
	    has_addr(json_object_get(res, "interfaces"), "lo", "127.0.0.1/8"));
	assert_true(json_equal(json_object_get(res, "dns"), dns));
	assert_true(json_is_null(json_object_get(res, "default_route")) ||
		    json_is_string(json_object_get(
			json_object_get(res, "default_route"), "gateway")));
	reach = json_object_get(res, "reach");
	assert_int_equal(json_array_size(reach), 2);
	fleetd = json_array_get(reach, 0);
	broker = json_array_get(reach, 1);
	/* fleetd's port is one nobody listens on; the broker answers */
	assert_string_equal(json_string_value(json_object_get(fleetd, "what")),
			    "fleetd");
	assert_true(json_is_false(json_object_get(fleetd, "ok")));
	assert_non_null(json_string_value(json_object_get(fleetd, "error")));
	assert_string_equal(json_string_value(json_object_get(broker, "what")),
			    "broker");
	assert_true(json_is_true(json_object_get(broker, "ok")));
	assert_int_equal(json_integer_value(json_object_get(broker, "port")),
			 x->f->port);
	assert_true(json_integer_value(json_object_get(broker, "ms")) < 3000);
	json_decref(res);
	json_decref(dns);
}

static void test_slots(void **state)
{
	struct dx *x = *state;
	struct agent_boot_opts bo = {.backend = "sim", .path = x->sim};
	struct agent_boot *boot = NULL;
	struct agent_boot_state st;
	json_t *res, *a, *b;

	start_agent(x, NULL, 0);
	res = ask_ok(x, "{\"check\":\"slots\"}");
	assert_int_equal(agent_boot_open(&bo, &boot, NULL), 0);
	assert_int_equal(agent_boot_read(boot, &st, NULL), 0);
	agent_boot_close(boot);
	assert_string_equal(json_string_value(json_object_get(res, "booted")),
			    st.slot);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(res, "bootenv"), "fleet_slot")),
			    st.slot);
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(res, "bootenv"), "bootlimit")),
			 st.bootlimit);
	a = json_object_get(json_object_get(res, "slots"), "a");
	b = json_object_get(json_object_get(res, "slots"), "b");
	assert_string_equal(json_string_value(json_object_get(a, "version")),
			    "1.0.0");
	assert_string_equal(json_string_value(json_object_get(a, "state")),
			    "active");
	assert_true(json_is_null(json_object_get(b, "version")));
	assert_string_equal(json_string_value(json_object_get(b, "state")),
			    "empty");
	assert_true(json_is_null(json_object_get(res, "last_job")));
	json_decref(res);
}

/* A fake journalctl that records its arguments, first in PATH. */
static char *fake_journalctl(struct dx *x)
{
	char *bin = afx_path(x->f, "bin"), *p = fl_path_join(bin, "journalctl");
	char *text = fl_xasprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s/"
				  "journal.args\nfor i in 1 2 3 4 5; do echo "
				  "\"line $i\"; done\n",
				  x->f->dir);
	char *path = fl_xasprintf("%s:%s", bin, getenv("PATH"));

	assert_int_equal(fl_mkdir_p(bin, 0755, NULL), 0);
	assert_int_equal(fl_write_atomic_str(p, text, 0755, NULL), 0);
	free(text);
	free(p);
	free(bin);
	return path;
}

static void assert_lines(const json_t *res, const char *const *want, size_t n)
{
	const json_t *lines = json_object_get(res, "lines");

	assert_int_equal(json_array_size(lines), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(lines, i)),
				    want[i]);
}

static void test_logs(void **state)
{
	static const char *const tail[] = {"app 97", "app 98", "app 99"};
	static const char *const unit[] = {"line 4", "line 5"};
	struct dx *x = *state;
	char *log = afx_path(x->f, "app.log"), *text = fl_xstrdup(""), *old;
	char *path, *args, *saved = fl_xstrdup(getenv("PATH"));
	json_t *res, *lines;
	bool seen = false;

	for (int k = 0; k < 100; k++) {
		old = text;
		text = fl_xasprintf("%sapp %d\n", old, k);
		free(old);
	}
	assert_int_equal(fl_write_atomic_str(log, text, 0644, NULL), 0);
	make_config(x, "[diag.log.app]\npath = app.log\n");
	start_agent(x, NULL, 0);
	/* the agent's own log: its lines, kept in memory */
	res = ask_ok(x, "{\"check\":\"logs\"}");
	assert_string_equal(json_string_value(json_object_get(res, "source")),
			    "agent");
	lines = json_object_get(res, "lines");
	for (size_t i = 0; i < json_array_size(lines); i++)
		seen |= strstr(json_string_value(json_array_get(lines, i)),
			       "dev-1: connected to 127.0.0.1") != NULL;
	assert_true(seen);
	json_decref(res);
	/* a configured file: its last lines */
	res = ask_ok(x, "{\"check\":\"logs\",\"args\":[\"file:app\",\"3\"]}");
	assert_lines(res, tail, 3);
	assert_true(json_is_false(json_object_get(res, "truncated")));
	json_decref(res);
	/* a journald unit, through journalctl with argv only */
	path = fake_journalctl(x);
	setenv("PATH", path, 1);
	res = ask_ok(x, "{\"check\":\"logs\",\"args\":[\"unit:ssh.service\","
			"\"2\"]}");
	setenv("PATH", saved, 1);
	assert_lines(res, unit, 2);
	json_decref(res);
	args = afx_path(x->f, "journal.args");
	free(text);
	text = read_text(args);
	assert_string_equal(text, "-u\nssh.service\n-n\n2\n--no-pager\n-o\n"
				  "short-iso\n");
	/* refused: a file not configured, a path, a bad unit, bad lines */
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"file:other\"]}",
		       "bad-args");
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"/etc/shadow\"]}",
		       "bad-args");
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"unit:x;touch y\"]}",
		       "bad-args");
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"unit:-x\"]}",
		       "bad-args");
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"agent\",\"0\"]}",
		       "bad-args");
	assert_refused(x, "{\"check\":\"logs\",\"args\":[\"agent\",\"1001\"]}",
		       "bad-args");
	free(args);
	free(path);
	free(saved);
	free(text);
	free(log);
}

static void test_config(void **state)
{
	struct dx *x = *state;
	char *text, *edited;
	json_t *res, *settings;

	start_agent(x, NULL, 0);
	res = ask_ok(x, "{\"check\":\"config\"}");
	settings = json_object_get(res, "settings");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(settings, "device"), "id")),
			    "dev-1");
	assert_string_equal(json_string_value(json_object_get(res, "path")),
			    x->conf);
	assert_int_equal(json_array_size(json_object_get(res, "redacted")), 0);
	json_decref(res);
	/* a file edited since (a future key holding a secret) */
	text = read_text(x->conf);
	edited = fl_xasprintf("%s[server]\napi_token = flt_s3cret\n"
			      "[outbox]\nPassword = hunter2\n",
			      text);
	assert_int_equal(fl_write_atomic_str(x->conf, edited, 0600, NULL), 0);
	free(text);
	res = ask_ok(x, "{\"check\":\"config\"}");
	text = fl_json_dumps(res);
	assert_null(strstr(text, "flt_s3cret"));
	assert_null(strstr(text, "hunter2"));
	assert_non_null(strstr(text, "\"server.api_token\""));
	assert_non_null(strstr(text, "\"outbox.Password\""));
	json_decref(res);
	free(text);
	free(edited);
}

/* ------------------------------------------------------------------ */
/* Operator checks, refusals                                          */
/* ------------------------------------------------------------------ */

static void test_operator_check(void **state)
{
	struct dx *x = *state;
	json_t *res, *j;

	write_check(x, "disk-usage",
		    "#!/bin/sh\necho \"usage of $1\"\necho warn >&2\n");
	write_check(x, "bad-exit", "#!/bin/sh\necho half\nexit 3\n");
	make_config(x, "[diag.check.disk-usage]\nargs = /[a-z/]*\n");
	start_agent(x, NULL, 0);
	res = ask_ok(x, "{\"check\":\"disk-usage\",\"args\":[\"/var\"]}");
	assert_int_equal(json_integer_value(json_object_get(res, "exit")), 0);
	assert_string_equal(json_string_value(json_object_get(res, "stdout")),
			    "usage of /var\n");
	assert_string_equal(json_string_value(json_object_get(res, "stderr")),
			    "warn\n");
	assert_true(json_is_false(json_object_get(res, "truncated")));
	json_decref(res);
	assert_refused(x, "{\"check\":\"disk-usage\",\"args\":[\"/var;id\"]}",
		       "bad-args");
	/* a non-zero exit: failed, with its output */
	j = ask(x, "{\"check\":\"bad-exit\"}");
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "failed");
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(j, "result"), "exit")),
			 3);
	json_decref(j);
	assert_refused(x, "{\"check\":\"nope\"}", "unknown-check");
	assert_refused(x, "{\"check\":\"ping\",\"timeout_s\":0}", "bad-args");
}

/* No reply at all for @ms (the observer sees every diag topic). */
static void assert_silence(struct dx *x, int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (fl_now_ms() < end)
		turn(x);
	assert_int_equal(x->n, 0);
}

static void test_dropped_and_oversize(void **state)
{
	struct dx *x = *state;
	char big[DIAG_REQ_MAX + 100], c65[66], corr[32];
	const char *ping = "{\"check\":\"ping\"}";
	json_t *j;

	start_agent(x, NULL, 0);
	memset(c65, 'c', 65);
	c65[65] = '\0';
	send_raw(x, REQ, "fleet/dev-2/diag/resp/fleetd", "c1", 2, ping,
		 strlen(ping));
	send_raw(x, REQ, "fleet/dev-1/cmd", "c2", 2, ping, strlen(ping));
	send_raw(x, REQ, "fleet/dev-1/diag/resp/a/b", "c3", 2, ping,
		 strlen(ping));
	send_raw(x, REQ, NULL, "c4", 2, ping, strlen(ping));
	send_raw(x, REQ, RESP, NULL, 0, ping, strlen(ping));
	send_raw(x, REQ, RESP, c65, 65, ping, strlen(ping));
	assert_silence(x, 1500);
	/* positive control: the same request, well formed, is answered */
	send_raw(x, REQ, RESP, c65, 64, ping, strlen(ping));
	c65[64] = '\0';
	j = wait_reply(x, c65);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	/* oversize: refused, not run */
	memset(big, ' ', sizeof(big));
	memcpy(big, ping, strlen(ping));
	snprintf(corr, sizeof(corr), "big");
	send_raw(x, REQ, RESP, corr, 3, big, sizeof(big));
	j = wait_reply(x, "big");
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "too-large");
	json_decref(j);
}

/* ------------------------------------------------------------------ */
/* Flood, slow checks, the update's pace                              */
/* ------------------------------------------------------------------ */

/* An update-like feature: its first tick pumps for TICK_MS (as an
 * install does), sends the test's flood from inside, and records its
 * pace. */
#define TICK_MS 4000
#define FLOOD 100

static struct busy_tick {
	struct dx *x;
	bool done;
	int pumps;
	int64_t max_gap_ms, ended_ms;
	int64_t replies_ms; /* when every flood reply was in */
} bt;

static void flood(struct dx *x, char corr[FLOOD][32])
{
	for (int i = 0; i < FLOOD; i++)
		send_req(x, "{\"check\":\"ping\"}", corr[i]);
}

static void busy_tick(struct agent_host *h, void *state)
{
	char corr[FLOOD][32];
	int64_t start = fl_now_ms(), last = start, now;

	if (bt.done)
		return;
	bt.done = true;
	flood(bt.x, corr);
	while ((now = fl_now_ms()) < start + TICK_MS) {
		if (now - last > bt.max_gap_ms)
			bt.max_gap_ms = now - last;
		last = now;
		agent_host_pump(h, 20, NULL);
		agent_mqtt_step(bt.x->obs, 5);
		bt.pumps++;
		if (!bt.replies_ms && bt.x->n == FLOOD)
			bt.replies_ms = now;
	}
	bt.ended_ms = fl_now_ms();
}

static bool busy_due(const struct agent_host *h, const void *state)
{
	return !bt.done;
}

static const struct agent_feature busy_feature = {
    .name = "busy-update",
    .tick = busy_tick,
    .due = busy_due,
};

static void test_flood_busy_during_update(void **state)
{
	struct dx *x = *state;
	const struct agent_feature **f = x->features;
	size_t n = 0, busy = 0, rate = 0, ok = 0;
	int64_t start;

	bt = (struct busy_tick){.x = x, .done = true};
	for (size_t i = 0; i < agent_n_features; i++)
		f[n++] = agent_features[i];
	f[n++] = &busy_feature;
	start_agent(x, f, n);
	start = fl_now_ms();
	bt.done = false;
	turn(x); /* the tick: blocks for TICK_MS */
	assert_true(bt.done);
	/* every request answered while the update still ran */
	assert_int_equal(x->n, FLOOD);
	assert_true(bt.replies_ms > 0 && bt.replies_ms < bt.ended_ms);
	for (size_t i = 0; i < x->n; i++) {
		json_t *j = NULL;
		const char *code;

		assert_int_equal(fl_json_parse(x->r[i].payload,
					       strlen(x->r[i].payload),
					       DIAG_REPLY_MAX, &j, NULL),
				 0);
		code = json_string_value(json_object_get(j, "code"));
		ok += json_is_true(json_object_get(j, "ok"));
		busy += fl_streq(code, "busy");
		rate += fl_streq(code, "busy") &&
			strstr(json_string_value(json_object_get(j, "error")),
			       "requests a minute");
		json_decref(j);
	}
	assert_int_equal(ok + busy, FLOOD);
	assert_int_equal(rate, FLOOD - 60); /* [diag] rate_per_min */
	assert_true(ok >= 2);
	/* and the update kept its pace: no turn of its loop waited */
	assert_true(bt.max_gap_ms < 500);
	assert_true(bt.ended_ms - start < TICK_MS + 1000);
	assert_true(bt.pumps > TICK_MS / 100);
}

static void test_slow_check_delays_nothing(void **state)
{
	struct dx *x = *state;
	char slow[32], fast[32];
	int64_t t0;
	json_t *j;

	write_check(x, "slow", "#!/bin/sh\nsleep 3\necho done\n");
	start_agent(x, NULL, 0);
	send_req(x, "{\"check\":\"slow\"}", slow);
	for (int i = 0; i < 10; i++)
		turn(x);
	t0 = fl_now_ms();
	j = ask(x, "{\"check\":\"ping\"}");
	assert_true(fl_now_ms() - t0 < 1000);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_null(find_reply(x, slow)); /* still running */
	json_decref(j);
	j = wait_reply(x, slow);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(j, "result"), "stdout")),
			    "done\n");
	assert_true(json_integer_value(json_object_get(j, "elapsed_ms")) >=
		    3000);
	json_decref(j);
	/* [diag] concurrent (2): a third at once is busy */
	send_req(x, "{\"check\":\"slow\"}", slow);
	send_req(x, "{\"check\":\"slow\"}", fast);
	assert_refused(x, "{\"check\":\"ping\"}", "busy");
	j = wait_reply(x, fast);
	json_decref(j);
	j = wait_reply(x, slow);
	json_decref(j);
}

/* A check past its time is killed and answered "timeout". */
static void test_check_timeout(void **state)
{
	struct dx *x = *state;
	json_t *j;
	int64_t t0 = fl_now_ms();

	write_check(x, "hang", "#!/bin/sh\nsleep 60\n");
	start_agent(x, NULL, 0);
	j = ask(x, "{\"check\":\"hang\",\"timeout_s\":1}");
	assert_string_equal(json_string_value(json_object_get(j, "code")),
			    "timeout");
	assert_true(fl_now_ms() - t0 < 8000);
	json_decref(j);
}

/* ------------------------------------------------------------------ */
/* fleet-sim's variant                                                */
/* ------------------------------------------------------------------ */

static void test_sim_variant(void **state)
{
	struct dx *x = *state;
	const struct agent_feature **f = x->features;
	json_t *res;
	size_t n = 0;

	for (size_t i = 0; i < agent_n_features; i++)
		f[n++] = agent_features[i] == &agent_feature_diag
			     ? &agent_feature_diag_sim
			     : agent_features[i];
	write_check(x, "disk-usage", "#!/bin/sh\necho x\n");
	start_agent(x, f, n);
	res = ask_ok(x, "{\"check\":\"sysinfo\"}");
	assert_true(json_is_true(json_object_get(res, "sim")));
	assert_true(json_integer_value(json_object_get(res, "uptime_s")) < 60);
	json_decref(res);
	res = ask_ok(x, "{\"check\":\"slots\"}");
	assert_string_equal(json_string_value(json_object_get(res, "booted")),
			    "a");
	json_decref(res);
	res = ask_ok(x, "{\"check\":\"cert\"}");
	assert_string_equal(json_string_value(json_object_get(res, "serial")),
			    agent_cert(x->a)->serial);
	json_decref(res);
	res = ask_ok(x, "{\"check\":\"ping\"}");
	json_decref(res);
	/* what a simulated device cannot honestly answer */
	assert_refused(x, "{\"check\":\"net\"}", "unknown-check");
	assert_refused(x, "{\"check\":\"disk-usage\"}", "unknown-check");
	assert_false(agent_work_due(x->a));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_response_topic),
	    cmocka_unit_test(test_replies),
	    T(test_ping_cert),
	    T(test_sysinfo),
	    T(test_net),
	    T(test_slots),
	    T(test_logs),
	    T(test_config),
	    T(test_operator_check),
	    T(test_dropped_and_oversize),
	    T(test_flood_busy_during_update),
	    T(test_slow_check_delays_nothing),
	    T(test_check_timeout),
	    T(test_sim_variant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
