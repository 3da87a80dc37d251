/* SPDX-License-Identifier: MIT */
/*
 * agent/modbus_targets: which Modbus devices a map from the shadow may
 * name (agent.conf [modbus] shadow_targets): addresses, networks, names
 * and serial devices, each port; an empty list admits no source; every
 * malformed entry refused; the cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modbus_targets.h"
#include "util.h"

/* A map of one source: @where is its host/port or device lines. */
static struct agent_mb_map *map_of(const char *where)
{
	char *text = fl_xasprintf("; a map\n[source s]\n%s\n[registers s]\n"
				  "a = holding 1\n",
				  where);
	struct agent_mb_map *m = NULL;
	struct fl_error err = {0};

	assert_int_equal(agent_mb_map_parse("m", text, strlen(text), &m, &err),
			 0);
	free(text);
	return m;
}

/* What @allow says of the source @where: 0 or FL_EDENIED (with the
 * source's line and where in the message). */
static int check(const char *allow, const char *where)
{
	struct agent_mb_targets *t = NULL;
	struct agent_mb_map *m = map_of(where);
	struct fl_error err = {0};
	int rc;

	assert_int_equal(agent_mb_targets_parse(allow, &t, &err), 0);
	rc = agent_mb_targets_check(t, m, "m", &err);
	if (rc) {
		assert_int_equal(rc, FL_EDENIED);
		assert_non_null(strstr(err.msg, "m:3: source s: "));
		assert_non_null(strstr(err.msg, "shadow_targets"));
	}
	agent_mb_targets_free(t);
	agent_mb_map_free(m);
	return rc;
}

static void test_admitted(void **state)
{
	const char *list = "10.0.0.4/30, 10.1.2.3:1502 PLC-1.Local\t"
			   "[fd00::/64]:502,/dev/ttyUSB0 192.168.7.9";

	(void)state;
	assert_int_equal(check(list, "host = 10.0.0.5"), 0);
	assert_int_equal(check(list, "host = 10.0.0.7\nport = 9"), 0);
	assert_int_equal(check(list, "host = 10.1.2.3\nport = 1502"), 0);
	assert_int_equal(check(list, "host = plc-1.local\nport = 7"), 0);
	assert_int_equal(check(list, "host = fd00::7"), 0);
	assert_int_equal(check(list, "device = /dev/ttyUSB0"), 0);
	assert_int_equal(check(list, "host = 192.168.7.9\nport = 5020"), 0);
}

/* A map without sources needs no target. */
static void test_no_sources(void **state)
{
	struct agent_mb_map *m = NULL;
	struct fl_error err = {0};

	(void)state;
	assert_int_equal(agent_mb_map_parse("m", "", 0, &m, &err), 0);
	assert_int_equal(agent_mb_targets_check(NULL, m, "m", &err), 0);
	agent_mb_map_free(m);
}

static void test_denied(void **state)
{
	const char *list = "10.0.0.4/30, 10.1.2.3:1502 PLC-1.Local\t"
			   "[fd00::/64]:502,/dev/ttyUSB0 192.168.7.9";

	(void)state;
	assert_int_equal(check(list, "host = 10.0.0.8"), FL_EDENIED);
	assert_int_equal(check(list, "host = 10.0.0.3"), FL_EDENIED);
	assert_int_equal(check(list, "host = 10.1.2.3"), FL_EDENIED); /* 502 */
	assert_int_equal(check(list, "host = plc-2.local"), FL_EDENIED);
	assert_int_equal(check(list, "host = fd00:0:0:1::7"), FL_EDENIED);
	assert_int_equal(check(list, "host = fd00::7\nport = 503"), FL_EDENIED);
	assert_int_equal(check(list, "device = /dev/ttyUSB1"), FL_EDENIED);
	/* an address entry does not admit a name, nor a name an address */
	assert_int_equal(check("127.0.0.1", "host = localhost"), FL_EDENIED);
	assert_int_equal(check("localhost", "host = 127.0.0.1"), FL_EDENIED);
	/* a device entry admits no host, a host entry no device */
	assert_int_equal(check("/dev/ttyS0", "host = 10.0.0.5"), FL_EDENIED);
	/* empty and absent lists admit nothing */
	assert_int_equal(check("", "host = 10.0.0.5"), FL_EDENIED);
	assert_int_equal(check(NULL, "device = /dev/ttyUSB0"), FL_EDENIED);
}

static void test_message(void **state)
{
	struct agent_mb_targets *t = NULL;
	struct agent_mb_map *m = map_of("host = fd00::9\nport = 1502");
	struct fl_error err = {0};

	(void)state;
	assert_int_equal(agent_mb_targets_parse("10.0.0.1", &t, &err), 0);
	assert_int_equal(agent_mb_targets_check(t, m, "modbus", &err),
			 FL_EDENIED);
	assert_string_equal(err.msg,
			    "modbus:3: source s: [fd00::9]:1502 is not"
			    " in agent.conf's [modbus] shadow_targets");
	agent_mb_targets_free(t);
	agent_mb_map_free(m);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "10.0.0.1:0", "10.0.0.1:70000", "10.0.0.1:x", "10.0.0.0/33",
	    "10.0.0.0/",  "10.0.0.0/-1",    "[fd00::1",	  "[fd00::1]x",
	    "fd00::/129", "bad_name!",	    "-x",	  "a/b",
	    "[name]:502", "host:",	    ".x",
	};
	struct agent_mb_targets *t = NULL;
	struct fl_error err = {0};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		char *list = fl_xasprintf("10.9.9.9, %s", bad[i]);

		err = (struct fl_error){0};

		assert_int_equal(agent_mb_targets_parse(list, &t, &err),
				 FL_EPARSE);
		assert_non_null(strstr(err.msg, bad[i]));
		free(list);
	}
	assert_null(t);
}

static void test_cap(void **state)
{
	char list[AGENT_MB_TARGETS_MAX * 12 + 16] = "";
	struct agent_mb_targets *t = NULL;
	struct fl_error err = {0};

	(void)state;
	for (int i = 0; i < AGENT_MB_TARGETS_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "10.0.0.%d ", i);
	assert_int_equal(agent_mb_targets_parse(list, &t, &err), 0);
	agent_mb_targets_free(t);
	t = NULL;
	snprintf(list + strlen(list), sizeof(list) - strlen(list), "10.0.1.1");
	assert_int_equal(agent_mb_targets_parse(list, &t, &err), FL_ELIMIT);
	assert_null(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admitted),  cmocka_unit_test(test_no_sources),
	    cmocka_unit_test(test_denied),    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_malformed), cmocka_unit_test(test_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
