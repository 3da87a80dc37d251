/* SPDX-License-Identifier: MIT */
/*
 * server-stub/rollout_spec: the defaults, a full spec read back, the
 * stored form (a parse of it gives the same form again), and every bad
 * input with the code it fails with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "rollout_spec.h"
#include "util.h"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	if (!j)
		fail_msg("test JSON does not parse: %s", text);
	return j;
}

static void test_defaults(void **state)
{
	json_t *body = parse("{\"bundle\": \"fw@1.1.0\"}"), *j;
	struct srv_rollout_spec s;
	char *text;

	(void)state;
	assert_int_equal(srv_rollout_spec_parse(body, &s, NULL), 0);
	assert_null(s.id);
	assert_string_equal(s.bundle, "fw@1.1.0");
	assert_int_equal(s.n_waves, 3);
	assert_int_equal(s.soak_s, SRV_ROLLOUT_DEFAULT_SOAK);
	assert_int_equal(s.health_window_s, SRV_ROLLOUT_DEFAULT_WINDOW);
	assert_int_equal(s.device_timeout_s, SRV_ROLLOUT_DEFAULT_TIMEOUT);
	assert_int_equal(s.fail_percent, SRV_ROLLOUT_DEFAULT_PERCENT);
	assert_int_equal(s.min_sample, SRV_ROLLOUT_DEFAULT_MIN_SAMPLE);
	assert_int_equal(s.rate_per_min, 0);
	assert_int_equal(s.concurrency, 0);
	assert_true(s.auto_rollback);
	assert_null(s.target.devices);
	assert_null(s.target.group);
	j = srv_rollout_spec_json(&s, "r-1", "0123456789abcdef");
	text = fl_json_dumps(j);
	assert_string_equal(
	    text,
	    "{\"id\":\"r-1\",\"bundle\":\"0123456789abcdef\",\"target\":"
	    "{\"group\":null,\"labels\":{},\"hardware\":null,\"version\":null,"
	    "\"devices\":null},\"waves\":[\"10%\",\"50%\",\"100%\"],"
	    "\"canaries\":[],\"soak_s\":300,\"failure\":{\"percent\":10,"
	    "\"min_sample\":5},\"health_window_s\":60,\"device_timeout_s\":"
	    "3600,\"rate_per_min\":0,\"concurrency\":0,\"auto_rollback\":true}");
	free(text);
	json_decref(j);
	srv_rollout_spec_release(&s);
	json_decref(body);
}

static const char full[] =
	"{\"id\": \"spring-1\", \"bundle\": \"abcdef01\","
	" \"target\": {\"group\": \"line-3\", \"labels\": {\"site\": \"berlin\","
	"  \"tier\": \"A:1\"}, \"hardware\": \"rpi4\", \"version\": \"1.0.0\","
	"  \"devices\": [\"d1\", \"d2\", \"d3\"]},"
	" \"waves\": [\"2.5%\", 5, \"10\", \"100%\"], \"canaries\": [\"d2\"],"
	" \"soak_s\": 0, \"failure\": {\"percent\": 0, \"min_sample\": 1},"
	" \"health_window_s\": 7, \"device_timeout_s\": 90,"
	" \"rate_per_min\": 60, \"concurrency\": 4, \"auto_rollback\": false}";

static void test_full(void **state)
{
	json_t *body = parse(full), *j, *again;
	struct srv_rollout_spec s, s2;
	char *t1, *t2;

	(void)state;
	assert_int_equal(srv_rollout_spec_parse(body, &s, NULL), 0);
	assert_string_equal(s.id, "spring-1");
	assert_string_equal(s.target.group, "line-3");
	assert_string_equal(s.target.hardware, "rpi4");
	assert_string_equal(s.target.version, "1.0.0");
	assert_int_equal(s.target.n_labels, 2);
	assert_int_equal(s.target.n_devices, 3);
	assert_string_equal(s.target.devices[2], "d3");
	assert_int_equal(s.n_waves, 4);
	assert_true(s.waves[0].percent);
	assert_int_equal(s.waves[0].value, 250);
	assert_false(s.waves[1].percent);
	assert_int_equal(s.waves[2].value, 10);
	assert_int_equal(s.n_canaries, 1);
	assert_int_equal(s.soak_s, 0);
	assert_int_equal(s.fail_percent, 0);
	assert_int_equal(s.min_sample, 1);
	assert_int_equal(s.health_window_s, 7);
	assert_int_equal(s.device_timeout_s, 90);
	assert_int_equal(s.rate_per_min, 60);
	assert_int_equal(s.concurrency, 4);
	assert_false(s.auto_rollback);
	/* the stored form reads back as the same spec */
	j = srv_rollout_spec_json(&s, s.id, "abcdef0123456789");
	json_object_set_new(j, "bundle", json_string("abcdef01"));
	assert_int_equal(srv_rollout_spec_parse(j, &s2, NULL), 0);
	again = srv_rollout_spec_json(&s2, s2.id, "abcdef0123456789");
	json_object_set_new(j, "bundle", json_string("abcdef0123456789"));
	t1 = fl_json_dumps(j);
	t2 = fl_json_dumps(again);
	assert_string_equal(t1, t2);
	assert_non_null(strstr(t1, "\"waves\":[\"2.5%\",\"5\",\"10\",\"100%\"]"));
	free(t1);
	free(t2);
	json_decref(again);
	json_decref(j);
	srv_rollout_spec_release(&s2);
	srv_rollout_spec_release(&s);
	json_decref(body);
}

/* A spec with a 600-element array member @key of "dN" ids or of N. */
static json_t *with_list(const char *key, size_t n, bool ids)
{
	json_t *body = parse("{\"bundle\": \"b\", \"target\": {}}");
	json_t *a = json_array();
	char id[16];

	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "d%zu", i);
		json_array_append_new(a, ids ? json_string(id)
					     : json_integer((json_int_t)i + 1));
	}
	if (strcmp(key, "devices") == 0)
		json_object_set_new(json_object_get(body, "target"), key, a);
	else
		json_object_set_new(body, key, a);
	return body;
}

static void test_caps(void **state)
{
	struct srv_rollout_spec s;
	json_t *b;

	(void)state;
	b = with_list("devices", SRV_ROLLOUT_MAX_DEVICES, true);
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), 0);
	assert_int_equal(s.target.n_devices, SRV_ROLLOUT_MAX_DEVICES);
	srv_rollout_spec_release(&s);
	json_decref(b);
	b = with_list("devices", SRV_ROLLOUT_MAX_DEVICES + 1, true);
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), FL_ELIMIT);
	json_decref(b);
	b = with_list("canaries", SRV_ROLLOUT_MAX_CANARIES + 1, true);
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), FL_ELIMIT);
	json_decref(b);
	b = with_list("waves", FL_WAVES_MAX + 1, false);
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), FL_ELIMIT);
	json_decref(b);
	b = with_list("waves", FL_WAVES_MAX, false); /* 1..32: a count list */
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), 0);
	assert_int_equal(s.n_waves, FL_WAVES_MAX);
	srv_rollout_spec_release(&s);
	json_decref(b);
}

/* Every bad input: the body after {"bundle": "b", and its code. */
static const struct {
	const char *rest;
	int code;
} bad[] = {
	{"\"wave\": []}", FL_EINVAL},
	{"\"id\": \"R-1\"}", FL_EINVAL},
	{"\"id\": \"a/b\"}", FL_EINVAL},
	{"\"id\": \"-a\"}", FL_EINVAL},
	{"\"id\": 5}", FL_EPARSE},
	{"\"id\": \"\"}", FL_EPARSE},
	{"\"id\": \"a23456789012345678901234567890123456789012345678901234567890"
	 "1234\"}", FL_ELIMIT},
	{"\"bundle\": 5}", FL_EPARSE},
	{"\"target\": []}", FL_EPARSE},
	{"\"target\": {\"grp\": \"a\"}}", FL_EINVAL},
	{"\"target\": {\"group\": \"A\"}}", FL_EINVAL},
	{"\"target\": {\"group\": 1}}", FL_EPARSE},
	{"\"target\": {\"labels\": []}}", FL_EPARSE},
	{"\"target\": {\"labels\": {\"site\": \"a b\"}}}", FL_EINVAL},
	{"\"target\": {\"labels\": {\"site\": 5}}}", FL_EINVAL},
	{"\"target\": {\"labels\": {\"\": \"x\"}}}", FL_EINVAL},
	{"\"target\": {\"labels\": {\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":"
	 "\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\","
	 "\"j\":\"1\",\"k\":\"1\",\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":"
	 "\"1\",\"p\":\"1\",\"q\":\"1\"}}}", FL_ELIMIT},
	{"\"target\": {\"hardware\": \"a/b\"}}", FL_EINVAL},
	{"\"target\": {\"version\": \"1\\n0\"}}", FL_EINVAL},
	{"\"target\": {\"devices\": \"d1\"}}", FL_EPARSE},
	{"\"target\": {\"devices\": []}}", FL_EINVAL},
	{"\"target\": {\"devices\": [\"D1\"]}}", FL_EINVAL},
	{"\"target\": {\"devices\": [5]}}", FL_EINVAL},
	{"\"target\": {\"devices\": [\"d1\", \"d2\", \"d1\"]}}", FL_EINVAL},
	{"\"waves\": []}", FL_EINVAL},
	{"\"waves\": \"100%\"}", FL_EPARSE},
	{"\"waves\": [\"10%\", \"50%\"]}", FL_EINVAL},
	{"\"waves\": [\"50%\", \"10%\", \"100%\"]}", FL_EINVAL},
	{"\"waves\": [\"5\", 5, \"100%\"]}", FL_EINVAL},
	{"\"waves\": [\"0%\", \"100%\"]}", FL_EINVAL},
	{"\"waves\": [0, \"100%\"]}", FL_EINVAL},
	{"\"waves\": [-1, \"100%\"]}", FL_EINVAL},
	{"\"waves\": [1.5, \"100%\"]}", FL_EPARSE},
	{"\"waves\": [true]}", FL_EPARSE},
	{"\"waves\": [\"101%\"]}", FL_EINVAL},
	{"\"waves\": [\"1e2%\"]}", FL_EINVAL},
	{"\"canaries\": [\"d1\", \"d1\"]}", FL_EINVAL},
	{"\"canaries\": [\"D\"]}", FL_EINVAL},
	{"\"canaries\": {}}", FL_EPARSE},
	{"\"soak_s\": -1}", FL_EPARSE},
	{"\"soak_s\": 2592001}", FL_EPARSE},
	{"\"soak_s\": \"5\"}", FL_EPARSE},
	{"\"health_window_s\": 604801}", FL_EPARSE},
	{"\"health_window_s\": -5}", FL_EPARSE},
	{"\"device_timeout_s\": 0}", FL_EPARSE},
	{"\"device_timeout_s\": 31536001}", FL_EPARSE},
	{"\"failure\": {\"percent\": 101}}", FL_EPARSE},
	{"\"failure\": {\"percent\": -1}}", FL_EPARSE},
	{"\"failure\": {\"percent\": 5.5}}", FL_EPARSE},
	{"\"failure\": {\"min_sample\": 0}}", FL_EPARSE},
	{"\"failure\": {\"threshold\": 5}}", FL_EINVAL},
	{"\"failure\": 10}", FL_EPARSE},
	{"\"rate_per_min\": -1}", FL_EPARSE},
	{"\"rate_per_min\": 1000001}", FL_EPARSE},
	{"\"concurrency\": -1}", FL_EPARSE},
	{"\"auto_rollback\": \"no\"}", FL_EPARSE},
	{"\"auto_rollback\": 0}", FL_EPARSE},
};

static void test_bad(void **state)
{
	struct srv_rollout_spec s = {.id = "untouched"};
	struct fl_error err = {0};
	json_t *b;

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		char *text = fl_xasprintf("{\"bundle\": \"b\", %s", bad[i].rest);
		int rc;

		b = parse(text);
		fl_error_clear(&err);
		rc = srv_rollout_spec_parse(b, &s, &err);
		if (rc != bad[i].code)
			fail_msg("%s: code %d (%s), want %d", text, rc, err.msg,
				 bad[i].code);
		assert_true(err.msg[0] != '\0');
		assert_string_equal(s.id, "untouched");
		free(text);
		json_decref(b);
	}
	b = parse("[]");
	assert_int_equal(srv_rollout_spec_parse(b, &s, NULL), FL_EPARSE);
	json_decref(b);
	b = parse("{}");
	assert_int_equal(srv_rollout_spec_parse(b, &s, &err), FL_EPARSE);
	json_decref(b);
	srv_rollout_spec_release(NULL);
}

static void test_new_id(void **state)
{
	char a[FL_ID_MAX + 1], b[FL_ID_MAX + 1];

	(void)state;
	srv_rollout_new_id(a);
	srv_rollout_new_id(b);
	assert_int_equal(strlen(a), 18);
	assert_true(fl_valid_id(a));
	assert_true(strncmp(a, "r-", 2) == 0);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_new_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
