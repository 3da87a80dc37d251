/* SPDX-License-Identifier: MIT */
/*
 * Telemetry on fleetd's side (server-stub/telemetry.c and
 * store_sql_telemetry.c; docs/protocol.md "Telemetry"): every rule of
 * the wire message, the seq rule with its restarts, the store's
 * once-only points and its trimmed window, and the ingest queue's
 * counters and on_points hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixture.h"

#include "ingest.h"
#include "json.h"
#include "telemetry.h"

#define NOW INT64_C(1764420000000) /* 2025-11-29T12:40:00Z */

/* srv_telemetry_parse of @text at NOW: its code; the message freed. */
static int parse_code(const char *text)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	struct srv_tmsg *m = NULL;
	int rc;

	assert_non_null(j);
	rc = srv_telemetry_parse(j, NOW, &m, NULL);
	assert_true(rc ? m == NULL : m != NULL);
	free(m);
	json_decref(j);
	return rc;
}

/* A message with one point whose members are @point. */
static int one_point(const char *point)
{
	char text[512];

	snprintf(text, sizeof(text), "{\"seq\": 1, \"points\": [{%s}]}", point);
	return parse_code(text);
}

static void test_parse_good(void **unused)
{
	json_t *j =
	    json_loads("{\"seq\": 41, \"dropped\": 3, \"points\": ["
		       "{\"metric\": \"cpu.percent\", \"value\": 12.5, \"ts\": "
		       "1764420000123},"
		       "{\"metric\": \"mem.used_bytes\", \"value\": 1048576,"
		       " \"ts\": 1577836800000}], \"extra\": true}",
		       0, NULL);
	struct srv_tmsg *m = NULL;

	(void)unused;
	assert_int_equal(srv_telemetry_parse(j, NOW, &m, NULL), 0);
	assert_int_equal(m->seq, 41);
	assert_int_equal(m->dropped, 3);
	assert_int_equal(m->n, 2);
	assert_string_equal(m->points[0].metric, "cpu.percent");
	assert_true(m->points[0].value == 12.5);
	assert_int_equal(m->points[0].ts_ms, INT64_C(1764420000123));
	assert_string_equal(m->points[1].metric, "mem.used_bytes");
	assert_true(m->points[1].value == 1048576.0);
	assert_null(m->points[1].device);
	free(m);
	json_decref(j);
	/* dropped is optional */
	assert_int_equal(one_point("\"metric\": \"a\", \"value\": 0,"
				   " \"ts\": 1764420000000"),
			 0);
}

static void test_parse_head_rules(void **unused)
{
	static const char *const bad[] = {
	    "[]",
	    "{\"points\": [{\"metric\": \"a\", \"value\": 1, \"ts\": "
	    "1764420000000}]}",
	    "{\"seq\": 0, \"points\": [{\"metric\": \"a\", \"value\": 1, "
	    "\"ts\": 1764420000000}]}",
	    "{\"seq\": \"1\", \"points\": [{\"metric\": \"a\", \"value\": 1, "
	    "\"ts\": 1764420000000}]}",
	    "{\"seq\": 9007199254740993, \"points\": [{\"metric\": \"a\", "
	    "\"value\": 1, \"ts\": 1764420000000}]}",
	    "{\"seq\": 1}",
	    "{\"seq\": 1, \"points\": {}}",
	    "{\"seq\": 1, \"points\": []}",
	    "{\"seq\": 1, \"points\": [1]}",
	    "{\"seq\": 1, \"dropped\": -1, \"points\": [{\"metric\": \"a\", "
	    "\"value\": 1, \"ts\": 1764420000000}]}",
	    "{\"seq\": 1, \"dropped\": null, \"points\": [{\"metric\": \"a\", "
	    "\"value\": 1, \"ts\": 1764420000000}]}",
	};

	(void)unused;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		if (parse_code(bad[i]) == 0)
			fail_msg("accepted: %s", bad[i]);
}

/* A message of @n points. */
static int n_points(int n)
{
	char text[8192];
	size_t o =
	    (size_t)snprintf(text, sizeof(text), "{\"seq\": 1, \"points\": [");

	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "%s{\"metric\": \"m\", \"value\": 1, "
				      "\"ts\": 1764420000000}",
				      i ? "," : "");
	snprintf(text + o, sizeof(text) - o, "]}");
	return parse_code(text);
}

/* 1..64 points: 64 taken, 65 refused as a limit. */
static void test_parse_point_count(void **unused)
{
	(void)unused;
	assert_int_equal(n_points(1), 0);
	assert_int_equal(n_points(64), 0);
	assert_int_equal(n_points(65), FL_ELIMIT);
	assert_int_equal(n_points(0), FL_EPARSE);
}

static void test_parse_metric_rules(void **unused)
{
	static const char *const bad[] = {"\"\"",      "\"a b\"", "\"a/b\"",
					  "\"a+\"",    "\"a#\"",  "\"\\u00e9\"",
					  "\"a\\tb\"", "1",	  "null"};
	char name[80], point[200];

	(void)unused;
	assert_int_equal(one_point("\"metric\": \"Az09_.:-\", \"value\": 1,"
				   " \"ts\": 1764420000000"),
			 0);
	memset(name, 'm', 64);
	name[64] = '\0';
	snprintf(point, sizeof(point),
		 "\"metric\": \"%s\", \"value\": 1, \"ts\": 1764420000000",
		 name);
	assert_int_equal(one_point(point), 0);
	name[64] = 'm'; /* 65 bytes */
	name[65] = '\0';
	snprintf(point, sizeof(point),
		 "\"metric\": \"%s\", \"value\": 1, \"ts\": 1764420000000",
		 name);
	assert_int_equal(one_point(point), FL_EPARSE);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		snprintf(point, sizeof(point),
			 "\"metric\": %s, \"value\": 1, \"ts\": 1764420000000",
			 bad[i]);
		if (one_point(point) == 0)
			fail_msg("metric accepted: %s", bad[i]);
	}
	assert_int_equal(one_point("\"value\": 1, \"ts\": 1764420000000"),
			 FL_EPARSE);
}

static void test_parse_value_and_ts_rules(void **unused)
{
	static const char *const bad[] = {
	    "\"value\": \"1\", \"ts\": 1764420000000",
	    "\"value\": null, \"ts\": 1764420000000",
	    "\"value\": true, \"ts\": 1764420000000",
	    "\"ts\": 1764420000000",
	    "\"value\": 1",
	    "\"value\": 1, \"ts\": 1764420000000.0",
	    "\"value\": 1, \"ts\": \"1764420000000\"",
	    "\"value\": 1, \"ts\": 1577836799999", /* before 2020 */
	    "\"value\": 1, \"ts\": 1764506400001", /* a day and 1 ms ahead */
	    "\"value\": 1, \"ts\": -1",
	};
	char point[200];

	(void)unused;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		snprintf(point, sizeof(point), "\"metric\": \"a\", %s", bad[i]);
		if (one_point(point) == 0)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(one_point("\"metric\": \"a\", \"value\": -1.5e300,"
				   " \"ts\": 1577836800000"),
			 0);
	assert_int_equal(one_point("\"metric\": \"a\", \"value\": 0,"
				   " \"ts\": 1764506400000"),
			 0);
}

/* One broken point of several refuses the whole message. */
static void test_parse_whole_or_nothing(void **unused)
{
	(void)unused;
	assert_int_equal(
	    parse_code(
		"{\"seq\": 1, \"points\": ["
		"{\"metric\": \"a\", \"value\": 1, \"ts\": 1764420000000},"
		"{\"metric\": \"b\", \"value\": 1, \"ts\": 1}]}"),
	    FL_EPARSE);
}

static void test_seq_rule(void **unused)
{
	(void)unused;
	assert_int_equal(srv_telemetry_seq(0, false, 1), SRV_TSEQ_NEW);
	assert_int_equal(srv_telemetry_seq(41, false, 42), SRV_TSEQ_NEW);
	assert_int_equal(srv_telemetry_seq(41, false, 41), SRV_TSEQ_DUPLICATE);
	assert_int_equal(srv_telemetry_seq(41, false, 1), SRV_TSEQ_DUPLICATE);
	assert_int_equal(srv_telemetry_seq(1000001, false, 1),
			 SRV_TSEQ_DUPLICATE);
	assert_int_equal(srv_telemetry_seq(1000002, false, 1),
			 SRV_TSEQ_RESTART);
	assert_int_equal(srv_telemetry_seq(41, true, 41), SRV_TSEQ_RESTART);
	assert_int_equal(srv_telemetry_seq(41, true, 1), SRV_TSEQ_RESTART);
	assert_int_equal(srv_telemetry_seq(41, true, 50), SRV_TSEQ_NEW);
}

/* ------------------------------------------------------------------ */
/* The store                                                          */
/* ------------------------------------------------------------------ */

static void device(struct fixture *f, const char *id, bool again)
{
	static int serial;
	char sn[16];
	struct srv_cert c = {sn, id, time(NULL), time(NULL) + 3600, NULL};

	snprintf(sn, sizeof(sn), "%04x", ++serial);
	assert_int_equal(srv_store_device_enroll(f->s, id, NULL, "token:t",
						 NULL, again, &c, NULL),
			 0);
}

/* Store one message of @dev: @n points "m" valued @v0, @v0 + 1, ...
 * sampled @age_ms ago and 1 ms apart; its result. */
static enum srv_ingest_result put(struct fixture *f, const char *dev,
				  int64_t seq, int n, int v0, int64_t age_ms)
{
	struct srv_tmsg *m =
	    fl_xcalloc(1, sizeof(*m) + (size_t)n * sizeof(m->points[0]));
	struct srv_ingest_item it = {.kind = SRV_INGEST_TELEMETRY,
				     .device = dev};
	int64_t now = fl_wall_ms();

	m->seq = seq;
	m->dropped = 1;
	m->n = (size_t)n;
	for (int i = 0; i < n; i++)
		m->points[i] =
		    (struct srv_tpoint){.metric = i % 2 ? "odd" : "even",
					.ts_ms = now - age_ms + i,
					.value = v0 + i};
	it.f.tele = m;
	it.f.seq = seq;
	assert_int_equal(srv_store_ingest(f->s, &it, 1, NULL), 0);
	free(m);
	return it.result;
}

/* The values stored for @dev (all, oldest first) as "1,2,3". */
static void values(struct fixture *f, const char *dev, const char *metric,
		   int limit, const char *want, int64_t want_dropped)
{
	struct srv_telemetry_query q = {
	    .device = dev, .metric = metric, .limit = limit};
	struct srv_telemetry_list l = {0};
	char got[512] = "";

	assert_int_equal(srv_store_telemetry_get(f->s, &q, &l, NULL), 0);
	for (size_t i = 0; i < l.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%g",
			 i ? "," : "", l.v[i].value);
	assert_string_equal(got, want);
	assert_int_equal(l.dropped, want_dropped);
	srv_telemetry_list_free(&l);
}

static void test_store_once(void **state)
{
	struct fixture *f = *state;
	struct srv_telemetry_list l = {0};
	struct srv_telemetry_query q = {.device = "nosuch", .limit = 10};

	device(f, "d1", false);
	assert_int_equal(put(f, "d1", 1, 2, 10, 1000), SRV_INGEST_STORED);
	assert_int_equal(put(f, "d1", 1, 2, 20, 1000), SRV_INGEST_DUPLICATE);
	assert_int_equal(put(f, "d1", 2, 1, 30, 500), SRV_INGEST_STORED);
	assert_int_equal(put(f, "nosuch", 1, 1, 1, 0), SRV_INGEST_REJECTED);
	values(f, "d1", NULL, 10, "10,11,30", 2);
	values(f, "d1", "odd", 10, "11", 2);
	values(f, "d1", NULL, 2, "11,30", 2); /* the newest two */
	assert_int_equal(srv_store_telemetry_get(f->s, &q, &l, NULL),
			 FL_ENOTFOUND);
	/* a decommissioned device's points are kept, its new ones refused */
	assert_int_equal(
	    srv_store_device_decommission(f->s, "d1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f, "d1", 3, 1, 40, 0), SRV_INGEST_REJECTED);
	values(f, "d1", NULL, 10, "10,11,30", 2);
}

/* A device enrolled again starts a new stream: a lower seq is stored. */
static void test_store_reenrolled(void **state)
{
	struct fixture *f = *state;

	device(f, "d1", false);
	assert_int_equal(put(f, "d1", 500, 1, 1, 0), SRV_INGEST_STORED);
	assert_int_equal(put(f, "d1", 3, 1, 2, 0), SRV_INGEST_DUPLICATE);
	device(f, "d1", true);
	assert_int_equal(put(f, "d1", 3, 1, 3, 0), SRV_INGEST_STORED);
	assert_int_equal(put(f, "d1", 3, 1, 4, 0), SRV_INGEST_DUPLICATE);
	assert_int_equal(put(f, "d1", 2, 1, 5, 0), SRV_INGEST_DUPLICATE);
	values(f, "d1", NULL, 10, "1,3", 2);
}

/* The window: the newest keep_points, none older than keep_ms. */
static void test_store_trim(void **state)
{
	struct fixture *f = *state;
	struct srv_telemetry_window w = {.keep_points = 5,
					 .keep_ms = 3600 * 1000};

	srv_store_telemetry_window(f->s, &w);
	device(f, "d1", false);
	device(f, "d2", false);
	assert_int_equal(put(f, "d1", 1, 3, 1, 10000), SRV_INGEST_STORED);
	assert_int_equal(put(f, "d2", 1, 1, 100, 10000), SRV_INGEST_STORED);
	assert_int_equal(put(f, "d1", 2, 4, 4, 5000), SRV_INGEST_STORED);
	values(f, "d1", NULL, 100, "3,4,5,6,7", 2);
	values(f, "d2", NULL, 100, "100", 1); /* not another device's */
	/* a batch of 64 over a window of 5 */
	assert_int_equal(put(f, "d1", 3, 64, 100, 1000), SRV_INGEST_STORED);
	values(f, "d1", NULL, 100, "159,160,161,162,163", 3);
	/* sampled before the window: dropped as they arrive */
	assert_int_equal(put(f, "d1", 4, 2, 500, 2 * 3600 * 1000),
			 SRV_INGEST_STORED);
	values(f, "d1", NULL, 100, "159,160,161,162,163", 4);
}

/* A device that went silent is trimmed by a later batch of another. */
static void test_store_sweep(void **state)
{
	struct fixture *f = *state;
	struct srv_telemetry_window w = {.keep_points = 100,
					 .keep_ms = 3600 * 1000};

	device(f, "quiet", false);
	device(f, "busy", false);
	assert_int_equal(put(f, "quiet", 1, 2, 1, 2 * 3600 * 1000),
			 SRV_INGEST_STORED);
	values(f, "quiet", NULL, 100, "1,2", 1); /* the default: 24 h */
	/* a restarted fleetd with a shorter window (a sweep is due) */
	srv_store_close(f->s);
	assert_int_equal(srv_store_open(f->db, &f->s, NULL), 0);
	srv_store_telemetry_window(f->s, &w);
	assert_int_equal(put(f, "busy", 1, 1, 7, 0), SRV_INGEST_STORED);
	values(f, "quiet", NULL, 100, "", 1);
	values(f, "busy", NULL, 100, "7", 1);
}

/* ------------------------------------------------------------------ */
/* The ingest queue                                                   */
/* ------------------------------------------------------------------ */

struct seen {
	int calls;
	size_t n;
	char text[256];
};

static void on_points(void *arg, const struct srv_tpoint *pts, size_t n)
{
	struct seen *s = arg;

	s->calls++;
	for (size_t i = 0; i < n; i++, s->n++)
		snprintf(s->text + strlen(s->text),
			 sizeof(s->text) - strlen(s->text), "%s/%s=%g;",
			 pts[i].device, pts[i].metric, pts[i].value);
}

static void push(struct srv_ingest *q, const char *dev, const char *text)
{
	assert_true(
	    srv_ingest_push(q, SRV_INGEST_TELEMETRY, dev, text, strlen(text)));
}

/* Counters, the hook with just the points stored, the payload cap. */
static void test_queue(void **state)
{
	struct fixture *f = *state;
	struct seen seen = {0};
	struct srv_ingest_cfg cfg = {.queue = 64,
				     .max_bytes = 1 << 20,
				     .batch = 64,
				     .max_payload = 300,
				     .on_points = on_points,
				     .on_points_arg = &seen};
	char good[200], big[400];
	struct srv_ingest_stats st;
	struct srv_ingest *q = NULL;
	int64_t now = fl_wall_ms();

	device(f, "d1", false);
	snprintf(good, sizeof(good),
		 "{\"seq\": 1, \"dropped\": 4, \"points\": ["
		 "{\"metric\": \"a\", \"value\": 1, \"ts\": %lld},"
		 "{\"metric\": \"b\", \"value\": 2.5, \"ts\": %lld}]}",
		 (long long)now, (long long)now);
	memset(big, ' ', sizeof(big));
	memcpy(big, good, strlen(good)); /* over max_payload */
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(srv_ingest_start(f->s, &cfg, NULL, NULL, &q, NULL), 0);
	push(q, "d1", big);
	push(q, "d1", "{\"seq\": 1, \"points\": []}");
	push(q, "d1", good);
	push(q, "d1", good); /* the broker's QoS-1 repeat */
	push(q, "nosuch", good);
	assert_true(srv_ingest_drain(q, 30000));
	srv_ingest_stats(q, &st);
	srv_ingest_stop(q);
	assert_int_equal(st.tele_points, 2);
	assert_int_equal(st.tele_duplicates, 1);
	assert_int_equal(st.tele_rejected, 3);
	assert_int_equal(st.tele_dropped, 4);
	assert_int_equal(st.stored, 1);
	assert_int_equal(seen.n, 2);
	assert_true(seen.calls >= 1);
	assert_string_equal(seen.text, "d1/a=1;d1/b=2.5;");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_head_rules),
	    cmocka_unit_test(test_parse_point_count),
	    cmocka_unit_test(test_parse_metric_rules),
	    cmocka_unit_test(test_parse_value_and_ts_rules),
	    cmocka_unit_test(test_parse_whole_or_nothing),
	    cmocka_unit_test(test_seq_rule),
	    cmocka_unit_test_setup_teardown(test_store_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_reenrolled, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_trim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
