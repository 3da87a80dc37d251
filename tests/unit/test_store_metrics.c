/* SPDX-License-Identifier: MIT */
/*
 * srv_store_fleet_counts, the fleet's numbers behind /metrics: devices by
 * state, active ones online and by firmware (the 50 most common, the rest
 * summed), rollouts by state and jobs by final state only.  Rows are
 * written with SQL, as the API and the ingest path would leave them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

/* Raw SQL on the fixture's database (SQLite or PostgreSQL). */
static void sql(struct fixture *f, const char *text)
{
	if (fx_sql(f->db, text, NULL, 0) < 0)
		fail_msg("%s", text);
}

static int64_t count_of(const struct srv_count_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return l->v[i].n;
	return -1;
}

static void add_device(struct fixture *f, const char *id, const char *state,
		       int online, const char *firmware)
{
	char q[256];

	snprintf(q, sizeof(q),
		 "INSERT INTO devices (id, state, created, online, firmware)"
		 " VALUES ('%s', '%s', 1, %d, %s)",
		 id, state, online, firmware);
	sql(f, q);
}

static void test_devices(void **state)
{
	struct fixture *f = *state;
	struct srv_fleet_counts c = {0};
	char id[32], fw[32];

	add_device(f, "a", "active", 1, "'1.0'");
	add_device(f, "b", "active", 0, "'1.0'");
	add_device(f, "c", "active", 1, "NULL");
	add_device(f, "d", "decommissioned", 1, "'1.0'");
	/* 55 more versions, one device each: only 50 are named in all */
	for (int i = 0; i < 55; i++) {
		snprintf(id, sizeof(id), "v%02d", i);
		snprintf(fw, sizeof(fw), "'2.%02d'", i);
		add_device(f, id, "active", 0, fw);
	}
	assert_int_equal(srv_store_fleet_counts(f->s, &c, NULL), 0);
	assert_int_equal(count_of(&c.devices, "active"), 58);
	assert_int_equal(count_of(&c.devices, "decommissioned"), 1);
	assert_int_equal(c.online, 2); /* not the decommissioned one */
	assert_int_equal(c.firmware.n, SRV_COUNT_VERSIONS_MAX);
	/* the most common first; "" for never reported */
	assert_string_equal(c.firmware.v[0].name, "1.0");
	assert_int_equal(c.firmware.v[0].n, 2);
	assert_int_equal(count_of(&c.firmware, ""), 1);
	/* 58 active: 2 + 1 + 48 named, 7 others */
	assert_int_equal(c.firmware_other, 7);
	srv_fleet_counts_free(&c);
	srv_fleet_counts_free(&c); /* twice is harmless */
}

static void test_rollouts_and_final_jobs(void **state)
{
	struct fixture *f = *state;
	struct srv_fleet_counts c = {0};

	sql(f, "INSERT INTO jobs (id, device, type, state, final, created,"
	       " updated) VALUES ('j1', 'a', 'update', 'succeeded', 1, 1, 1),"
	       " ('j2', 'a', 'update', 'succeeded', 1, 1, 1),"
	       " ('j3', 'a', 'update', 'failed', 1, 1, 1),"
	       " ('j4', 'a', 'update', 'downloading', 0, 1, 1)");
	sql(f, "INSERT INTO rollouts (id, bundle, version, spec, state,"
	       " waves, soak_s, health_window_s, device_timeout_s,"
	       " fail_percent, min_sample, rate_per_min, concurrency,"
	       " auto_rollback, created, updated) VALUES"
	       " ('r1', 'b', '1', '{}', 'running', 1, 0, 0, 0, 0, 0, 0, 0, 0,"
	       " 1, 1), ('r2', 'b', '1', '{}', 'completed', 1, 0, 0, 0, 0, 0,"
	       " 0, 0, 0, 1, 1)");
	assert_int_equal(srv_store_fleet_counts(f->s, &c, NULL), 0);
	assert_int_equal(count_of(&c.jobs_final, "succeeded"), 2);
	assert_int_equal(count_of(&c.jobs_final, "failed"), 1);
	assert_int_equal(count_of(&c.jobs_final, "downloading"), -1);
	assert_int_equal(count_of(&c.rollouts, "running"), 1);
	assert_int_equal(count_of(&c.rollouts, "completed"), 1);
	assert_int_equal(c.devices.n, 0);
	assert_int_equal(c.firmware_other, 0);
	srv_fleet_counts_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollouts_and_final_jobs, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
