/* SPDX-License-Identifier: MIT */
/*
 * agent/cmd: command parsing with its caps and required fields, the
 * dispatch table, and the command log: idempotency, persistence across
 * reopening, the bound, interrupted (running) entries, corrupt files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "cmd.h"
#include "fsutil.h"
#include "util.h"

struct fixture {
	char dir[64];
	char *log;
};

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));

	if (test_mkdtemp(f->dir, "agentcmd")) {
		free(f);
		return -1;
	}
	f->log = fl_path_join(f->dir, AGENT_CMD_LOG_FILE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = test_rmtree(f->dir);

	free(f->log);
	free(f);
	return rc;
}

static int parse(const char *text, struct agent_cmd *cmd)
{
	struct fl_error err = {0};
	int rc = agent_cmd_parse(text, strlen(text), cmd, &err);

	if (rc)
		assert_true(err.msg[0] != '\0');
	return rc;
}

static void test_parse_ok(void **state)
{
	struct agent_cmd c = {0};

	assert_int_equal(parse("{\"id\":\"c-1a.b:2\",\"type\":\"rotate\","
			       "\"args\":{\"x\":1},\"ts\":\"2026-01-01T00:00:00Z\"}",
			       &c),
			 0);
	assert_string_equal(c.id, "c-1a.b:2");
	assert_string_equal(c.type, "rotate");
	assert_int_equal(json_integer_value(json_object_get(c.args, "x")), 1);
	agent_cmd_release(&c);
	assert_null(c.args);
	/* args optional or null: an empty object */
	assert_int_equal(parse("{\"id\":\"c\",\"type\":\"future_thing\"}", &c),
			 0);
	assert_true(json_is_object(c.args));
	assert_int_equal(json_object_size(c.args), 0);
	agent_cmd_release(&c);
	assert_int_equal(
	    parse("{\"id\":\"c\",\"type\":\"rotate\",\"args\":null}", &c), 0);
	assert_true(json_is_object(c.args));
	agent_cmd_release(&c);
	agent_cmd_release(NULL);
}

static void test_parse_refusals(void **state)
{
	static const struct {
		const char *text;
		int rc;
	} bad[] = {
	    {"", FL_EPARSE},
	    {"not json", FL_EPARSE},
	    {"[1,2]", FL_EPARSE},
	    {"{\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c\"}", FL_EPARSE},
	    {"{\"id\":\"\",\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":7,\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c/1\",\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c#\",\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c\",\"type\":\"Rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c\",\"type\":\"ro tate\"}", FL_EPARSE},
	    {"{\"id\":\"c\",\"type\":\"rotate\",\"args\":[1]}", FL_EPARSE},
	    {"{\"id\":\"c\",\"type\":\"rotate\",\"args\":\"x\"}", FL_EPARSE},
	    {"{\"id\":\"c\",\"id\":\"d\",\"type\":\"rotate\"}", FL_EPARSE},
	    {"{\"id\":\"c\",\"type\":\"rotate\"", FL_EPARSE},
	};
	struct agent_cmd c = {0};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		if (parse(bad[i].text, &c) != bad[i].rc)
			fail_msg("not refused as expected: %s", bad[i].text);
	assert_null(c.args);
}

static void test_parse_caps(void **state)
{
	char id[AGENT_CMD_ID_MAX + 2], type[AGENT_CMD_TYPE_MAX + 2], *text,
	    *big;
	struct agent_cmd c = {0};

	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	text = fl_xasprintf("{\"id\":\"%s\",\"type\":\"rotate\"}", id);
	assert_int_equal(parse(text, &c), FL_ELIMIT);
	free(text);
	id[AGENT_CMD_ID_MAX] = '\0'; /* exactly at the cap */
	text = fl_xasprintf("{\"id\":\"%s\",\"type\":\"rotate\"}", id);
	assert_int_equal(parse(text, &c), 0);
	assert_int_equal(strlen(c.id), AGENT_CMD_ID_MAX);
	agent_cmd_release(&c);
	free(text);
	memset(type, 'r', sizeof(type) - 1);
	type[sizeof(type) - 1] = '\0';
	text = fl_xasprintf("{\"id\":\"c\",\"type\":\"%s\"}", type);
	assert_int_equal(parse(text, &c), FL_ELIMIT);
	free(text);
	big = fl_xmalloc(AGENT_CMD_MAX_PAYLOAD + 1);
	memset(big, ' ', AGENT_CMD_MAX_PAYLOAD);
	big[AGENT_CMD_MAX_PAYLOAD] = '\0';
	memcpy(big, "{\"id\":\"c\",\"type\":\"rotate\"}", 26);
	assert_int_equal(parse(big, &c), 0); /* 64 KiB exactly: fine */
	agent_cmd_release(&c);
	assert_int_equal(agent_cmd_parse(big, AGENT_CMD_MAX_PAYLOAD + 1, &c,
					 NULL),
			 FL_ELIMIT);
	free(big);
	/* not NUL-terminated input is read by length */
	assert_int_equal(agent_cmd_parse("{\"id\":\"c\",\"type\":\"rotate\"}xyz",
					 26, &c, NULL),
			 0);
	agent_cmd_release(&c);
}

static json_t *event(int seq, const char *state)
{
	return json_pack("{s:i, s:s, s:s}", "seq", seq, "type", "rotate",
			 "state", state);
}

static void test_log_idempotency(void **state)
{
	struct fixture *f = *state;
	struct agent_cmd_log *log = NULL;
	struct fl_error err = {0};
	enum agent_cmd_state st;
	const json_t *ev = NULL;
	json_t *e1 = event(1, "succeeded");
	struct stat sb;

	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, &err), 0);
	assert_int_equal(agent_cmd_log_count(log), 0);
	assert_int_equal(agent_cmd_log_get(log, "c1", &st, &ev), FL_ENOTFOUND);
	assert_int_equal(agent_cmd_log_begin(log, "c1", "rotate", &err), 0);
	assert_int_equal(agent_cmd_log_get(log, "c1", &st, &ev), 0);
	assert_int_equal(st, AGENT_CMD_RUNNING);
	assert_null(ev);
	assert_int_equal(agent_cmd_log_begin(log, "c1", "rotate", NULL),
			 FL_ECONFLICT);
	assert_int_equal(agent_cmd_log_finish(log, "c1", e1, &err), 0);
	assert_int_equal(agent_cmd_log_finish(log, "nope", e1, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_cmd_log_get(log, "c1", &st, &ev), 0);
	assert_int_equal(st, AGENT_CMD_DONE);
	assert_true(json_equal((json_t *)ev, e1));
	assert_int_equal(stat(f->log, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	agent_cmd_log_free(log);
	/* persisted: reopen and find the same outcome */
	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, &err), 0);
	assert_int_equal(agent_cmd_log_get(log, "c1", &st, &ev), 0);
	assert_int_equal(st, AGENT_CMD_DONE);
	assert_true(json_equal((json_t *)ev, e1));
	agent_cmd_log_free(log);
	json_decref(e1);
}

static void test_log_bound_and_running(void **state)
{
	struct fixture *f = *state;
	struct agent_cmd_log *log = NULL;
	struct fl_error err = {0};
	const char *id, *type = NULL;
	size_t it = 0;
	char name[16];

	assert_int_equal(agent_cmd_log_open(f->log, 4, &log, &err), 0);
	assert_int_equal(agent_cmd_log_begin(log, "run-1", "rotate", &err), 0);
	for (int i = 0; i < 10; i++) {
		json_t *e = event(i + 1, "failed");

		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(agent_cmd_log_begin(log, name, "x", &err), 0);
		assert_int_equal(agent_cmd_log_finish(log, name, e, &err), 0);
		json_decref(e);
		assert_true(agent_cmd_log_count(log) <= 4);
	}
	/* oldest finished ones went first; the running one stayed */
	assert_int_equal(agent_cmd_log_get(log, "c0", NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_cmd_log_get(log, "c9", NULL, NULL), 0);
	assert_int_equal(agent_cmd_log_get(log, "run-1", NULL, NULL), 0);
	agent_cmd_log_free(log);
	assert_int_equal(agent_cmd_log_open(f->log, 4, &log, &err), 0);
	id = agent_cmd_log_next_running(log, &it, &type);
	assert_non_null(id);
	assert_string_equal(id, "run-1");
	assert_string_equal(type, "rotate");
	assert_null(agent_cmd_log_next_running(log, &it, &type));
	agent_cmd_log_free(log);
	/* a smaller bound on reopening keeps the newest */
	assert_int_equal(agent_cmd_log_open(f->log, 2, &log, &err), 0);
	assert_int_equal(agent_cmd_log_count(log), 2);
	assert_int_equal(agent_cmd_log_get(log, "c9", NULL, NULL), 0);
	agent_cmd_log_free(log);
}

static void test_log_refusals(void **state)
{
	struct fixture *f = *state;
	struct agent_cmd_log *log = NULL;
	struct fl_error err = {0};
	json_t *e;
	char *huge;

	assert_int_equal(agent_cmd_log_open(f->log, 0, &log, NULL), FL_EINVAL);
	assert_int_equal(
	    agent_cmd_log_open(f->log, AGENT_CMD_LOG_MAX + 1, &log, NULL),
	    FL_EINVAL);
	assert_int_equal(fl_write_atomic_str(f->log, "{not json", 0600, &err),
			 0);
	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, NULL), FL_EPARSE);
	assert_int_equal(
	    fl_write_atomic_str(f->log,
				"{\"commands\":[{\"id\":\"a\",\"type\":\"x\","
				"\"state\":\"done\"}]}",
				0600, &err),
	    0);
	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, NULL), FL_EPARSE);
	assert_int_equal(
	    fl_write_atomic_str(f->log,
				"{\"commands\":[{\"id\":\"a\",\"type\":\"x\","
				"\"state\":\"weird\"}]}",
				0600, &err),
	    0);
	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, NULL), FL_EPARSE);
	assert_null(log);
	unlink(f->log);
	/* an oversized outcome is refused, not stored */
	assert_int_equal(agent_cmd_log_open(f->log, 8, &log, &err), 0);
	assert_int_equal(agent_cmd_log_begin(log, "c", "x", &err), 0);
	huge = fl_xmalloc(AGENT_EVENT_MAX + 1);
	memset(huge, 'x', AGENT_EVENT_MAX);
	huge[AGENT_EVENT_MAX] = '\0';
	e = json_pack("{s:s}", "reason", huge);
	assert_int_equal(agent_cmd_log_finish(log, "c", e, NULL), FL_ELIMIT);
	json_decref(e);
	free(huge);
	agent_cmd_log_free(log);
	agent_cmd_log_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_parse_caps),
	    cmocka_unit_test_setup_teardown(test_log_idempotency, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_log_bound_and_running, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_log_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
