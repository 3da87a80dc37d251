/* SPDX-License-Identifier: MIT */
/*
 * agent/telemetry data: local lines (good ones, every way a line can be
 * malformed), points as JSON and the message built from an outbox row
 * read back (rows that break the wire contract refused), and the
 * built-in metrics from a fake /proc and /sys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fsutil.h"
#include "agent_telemetry.h"
#include "tmpdir.h"
#include "util.h"

#define NOW 1764420000123LL

static int parse(const char *line, struct agent_tlm_point *p)
{
	return agent_tlm_parse_line(line, strlen(line), NOW, p, NULL);
}

/* A name of @len bytes starting with @head, value 1. */
static int parse_long(const char *head, size_t len, struct agent_tlm_point *p)
{
	char line[128];

	memset(line, 'x', sizeof(line));
	memcpy(line, head, strlen(head));
	memcpy(line + len, " 1", 3);
	return parse(line, p);
}

static void test_lines_good(void **state)
{
	struct agent_tlm_point p;

	assert_int_equal(parse("room.temp 21.5", &p), 0);
	assert_string_equal(p.metric, "room.temp");
	assert_true(p.value == 21.5);
	assert_int_equal(p.ts_ms, NOW);
	assert_int_equal(parse("door -1e3 1764420000000", &p), 0);
	assert_string_equal(p.metric, "app.door");
	assert_true(p.value == -1000);
	assert_int_equal(p.ts_ms, 1764420000000LL);
	assert_int_equal(parse("  a:b-c_d.e   0  ", &p), 0);
	assert_string_equal(p.metric, "a:b-c_d.e");
	/* 64 bytes with a dot; 60 without (app. makes 64) */
	assert_int_equal(parse_long("x.", 64, &p), 0);
	assert_int_equal(parse_long("", 60, &p), 0);
	assert_int_equal(strlen(p.metric), 64);
}

static void test_lines_bad(void **state)
{
	static const char *const bad[] = {
	    "",
	    "name",
	    "bad!name 1",
	    "x.y 1 2 3",
	    "x.y nan",
	    "x.y inf",
	    "x.y 1e999",
	    "x.y 12abc",
	    "x.y 0x",
	    "x.y 1 1000",	   /* before 2020 */
	    "x.y 1 1864420000000", /* far in the future */
	    "x.y 1 -5",
	    "x.y 1 12.5",
	    "x.y\t1",
	    "\xc3\xa9t\xc3\xa9 1",
	};
	struct agent_tlm_point p;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		if (parse(bad[i], &p) != FL_EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
	/* 65 bytes; 61 without a dot */
	assert_int_equal(parse_long("x.", 65, &p), FL_EINVAL);
	assert_int_equal(parse_long("", 61, &p), FL_EINVAL);
	/* a NUL inside the line */
	assert_int_equal(agent_tlm_parse_line("x.y 1\0 2", 8, NOW, &p, NULL),
			 FL_EINVAL);
}

static void test_message(void **state)
{
	struct agent_tlm_point p[2] = {{"a.b", 1.5, NOW}, {"c", 8e9, NOW}};
	char *body = agent_tlm_points_json(p, 2), *msg = NULL;
	json_t *j;

	assert_int_equal(
	    agent_tlm_message(7, body, strlen(body), 3, &msg, NULL), 0);
	j = json_loads(msg, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 7);
	assert_int_equal(json_integer_value(json_object_get(j, "dropped")), 3);
	assert_int_equal(json_array_size(json_object_get(j, "points")), 2);
	/* a whole value goes out as an integer */
	assert_true(json_is_integer(json_object_get(
	    json_array_get(json_object_get(j, "points"), 1), "value")));
	json_decref(j);
	free(msg);
	free(body);
}

static void test_message_bad_rows(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "[1]",
	    "[{\"metric\":\"a\",\"value\":1}]",
	    "[{\"metric\":\"a!\",\"value\":1,\"ts\":1764420000000}]",
	    "[{\"metric\":\"a\",\"value\":\"1\",\"ts\":1764420000000}]",
	    "[{\"metric\":\"a\",\"value\":1,\"ts\":1.5}]",
	    "[{\"metric\":\"a\",\"value\":1,\"ts\":1000}]",
	    "[{\"metric\":\"a\",\"value\":1,\"ts\":1764420000000,\"x\":1}]",
	    "[{\"metric\":\"a\",\"value\":1,\"ts\":1764420000000}",
	};
	char *msg = NULL;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		if (agent_tlm_message(1, bad[i], strlen(bad[i]), 0, &msg,
				      NULL) != FL_EPARSE)
			fail_msg("accepted: '%s'", bad[i]);
	assert_int_equal(agent_tlm_message(0,
					   "[{\"metric\":\"a\",\"value\":1,"
					   "\"ts\":1764420000000}]",
					   47, 0, &msg, NULL),
			 FL_EPARSE);
}

/* 65 points are too many for one message. */
static void test_message_too_many(void **state)
{
	struct agent_tlm_point p[AGENT_TLM_BATCH + 1];
	char *body, *msg = NULL;

	for (size_t i = 0; i < FL_ARRAY_SIZE(p); i++)
		p[i] = (struct agent_tlm_point){"a.b", (double)i, NOW};
	body = agent_tlm_points_json(p, FL_ARRAY_SIZE(p));
	assert_int_equal(
	    agent_tlm_message(1, body, strlen(body), 0, &msg, NULL), FL_EPARSE);
	free(body);
	body = agent_tlm_points_json(p, AGENT_TLM_BATCH);
	assert_int_equal(
	    agent_tlm_message(1, body, strlen(body), 0, &msg, NULL), 0);
	free(msg);
	free(body);
}

static void put(const char *root, const char *rel, const char *text)
{
	char *path = fl_xasprintf("%s%s", root, rel);
	char *dir = fl_xstrdup(path);

	*strrchr(dir, '/') = '\0';
	assert_int_equal(fl_mkdir_p(dir, 0755, NULL), 0);
	assert_int_equal(fl_write_atomic_str(path, text, 0644, NULL), 0);
	free(dir);
	free(path);
}

static const struct agent_tlm_point *find(const struct agent_tlm_point *p,
					  size_t n, const char *metric)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].metric, metric) == 0)
			return &p[i];
	return NULL;
}

static void test_builtin(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct agent_tlm_cpu cpu = {0};
	struct agent_tlm_point p[32];
	size_t n;

	put(f->dir, "/proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1\n");
	put(f->dir, "/proc/meminfo",
	    "MemTotal:       1000 kB\nMemFree:  10 kB\n"
	    "MemAvailable:    600 kB\n");
	put(f->dir, "/sys/class/thermal/thermal_zone0/temp", "45500\n");
	put(f->dir, "/sys/class/thermal/thermal_zone3/temp", "junk\n");
	put(f->dir, "/proc/net/wireless",
	    "Inter-| sta-|   Quality\n face | tus | link level\n"
	    " wlan0: 0000   70.  -40.  -256        0      0      0\n");
	n = agent_tlm_sample(f->dir, f->dir, &cpu, 9, NOW, p, 32);
	assert_null(find(p, n, "cpu.percent")); /* no delta yet */
	put(f->dir, "/proc/stat", "cpu  150 0 150 900 0 0 0 0 0 0\n");
	n = agent_tlm_sample(f->dir, f->dir, &cpu, 9, NOW, p, 32);
	assert_true(find(p, n, "cpu.percent")->value == 50.0);
	assert_true(find(p, n, "mem.used_bytes")->value == 400 * 1024);
	assert_true(find(p, n, "mem.available_bytes")->value == 600 * 1024);
	assert_non_null(find(p, n, "disk.state_free_bytes"));
	assert_true(find(p, n, "temp.zone0_c")->value == 45.5);
	assert_null(find(p, n, "temp.zone3_c"));
	assert_true(find(p, n, "net.wifi_link")->value == 70);
	assert_true(find(p, n, "agent.outbox_depth")->value == 9);
	for (size_t i = 0; i < n; i++)
		assert_true(agent_tlm_metric_valid(p[i].metric));
	/* room for 2: no overflow */
	assert_int_equal(agent_tlm_sample(f->dir, f->dir, &cpu, 0, NOW, p, 2),
			 2);
}

/* No /proc at all (another OS, a jail): only what statvfs and the
 * agent know. */
static void test_builtin_missing(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct agent_tlm_cpu cpu = {0};
	struct agent_tlm_point p[32];
	size_t n = agent_tlm_sample(f->dir, f->dir, &cpu, 0, NOW, p, 32);

	assert_int_equal(n, 2);
	assert_non_null(find(p, n, "disk.state_free_bytes"));
	assert_non_null(find(p, n, "agent.outbox_depth"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_good),
	    cmocka_unit_test(test_lines_bad),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_message_bad_rows),
	    cmocka_unit_test(test_message_too_many),
	    cmocka_unit_test_setup_teardown(test_builtin, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_builtin_missing, tmpdir_setup,
					    tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
