/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_jobs: cancelling and expiring jobs (issue 8 item
 * 14), on a real SQLite file; time is passed in, never slept for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "proto.h"
#include "ingest.h"
#include "store.h"
#include "util.h"

#include "store_fixture.h"

#include "jobs.h"

static int add(struct fixture *f, const char *id, const char *dev,
	       int64_t expires)
{
	struct srv_job j = {.id = id, .device = dev, .type = "update",
			    .created_by = "test", .expires = expires};

	return srv_store_job_add(f->s, &j, NULL);
}

/* state and final of job @id */
static void job_is(struct fixture *f, const char *id, const char *state,
		   bool final)
{
	struct srv_job_row j = {0};

	assert_int_equal(srv_store_job_get(f->s, id, &j, NULL), 0);
	assert_string_equal(j.state, state);
	assert_int_equal(j.final, final);
	srv_job_row_free(&j);
}

/* A device event as fleetd's ingest path applies it; its result. */
static int event(struct fixture *f, const char *dev, const char *job,
		 int seq, const char *state)
{
	json_t *ev = json_pack("{s:i, s:s, s:s}", "seq", seq, "job", job,
			       "state", state);
	struct srv_ingest_item it = {.kind = SRV_INGEST_EVENT, .device = dev};
	char *text = srv_ingest_item_json(&it, ev);
	int rc = srv_store_ingest(f->s, &it, 1, NULL);

	free(text);
	json_decref(ev);
	return rc ? -1 : (int)it.result;
}

static void enroll(struct fixture *f, const char *dev, const char *serial)
{
	struct srv_cert c = {serial, dev, time(NULL), time(NULL) + 60, NULL};

	assert_int_equal(srv_store_device_enroll(f->s, dev, NULL, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct fl_error err = {0};
	struct srv_job_row j = {0};

	enroll(f, "dev-a", "0a");
	assert_int_equal(add(f, "j-1", "dev-a", 0), 0);
	assert_int_equal(add(f, "j-2", "dev-a", 0), FL_ECONFLICT); /* busy */
	assert_int_equal(srv_store_job_cancel(f->s, "j-1", "token:t1", &err),
			 0);
	job_is(f, "j-1", "cancelled", true);
	assert_int_equal(fl_job_state_name_final("cancelled"), true);
	assert_int_equal(fl_job_state_name_final("expired"), true);
	/* final: a second cancel and a late event are refused */
	assert_int_equal(srv_store_job_cancel(f->s, "j-1", "x", &err),
			 FL_ECONFLICT);
	assert_int_equal(event(f, "dev-a", "j-1", 7, "succeeded"),
			 SRV_INGEST_REJECTED);
	job_is(f, "j-1", "cancelled", true);
	assert_int_equal(srv_store_job_get(f->s, "j-1", &j, NULL), 0);
	assert_int_equal(j.events.n, 0);
	assert_non_null(strstr(j.reason, "token:t1"));
	assert_string_equal(j.stage, "queued");
	srv_job_row_free(&j);
	/* the device is free again */
	assert_int_equal(add(f, "j-2", "dev-a", 0), 0);
	fl_error_clear(&err);
	assert_int_equal(srv_store_job_cancel(f->s, "j-none", "x", &err),
			 FL_ENOTFOUND);
}

static void test_expire(void **state)
{
	struct fixture *f = *state;
	int n = -1;

	enroll(f, "dev-a", "0a");
	assert_int_equal(add(f, "j-1", "dev-a", 1000), 0);
	assert_int_equal(add(f, "j-2", "dev-b", 5000), 0);
	assert_int_equal(add(f, "j-3", "dev-c", 0), 0); /* no deadline */
	assert_int_equal(event(f, "dev-a", "j-1", 1, "downloading"),
			 SRV_INGEST_STORED);
	assert_int_equal(srv_store_jobs_expire(f->s, 999, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(srv_store_jobs_expire(f->s, 1000, &n, NULL), 0);
	assert_int_equal(n, 1);
	job_is(f, "j-1", "expired", true);
	job_is(f, "j-2", "queued", false);
	assert_int_equal(srv_store_jobs_expire(f->s, 1000000, &n, NULL), 0);
	assert_int_equal(n, 1);
	job_is(f, "j-2", "expired", true);
	job_is(f, "j-3", "queued", false);
	/* expired is final: late events do not move it, a cancel is refused */
	assert_int_equal(event(f, "dev-a", "j-1", 2, "downloading"),
			 SRV_INGEST_REJECTED);
	job_is(f, "j-1", "expired", true);
	assert_int_equal(srv_store_job_cancel(f->s, "j-1", "x", NULL),
			 FL_ECONFLICT);
	assert_int_equal(add(f, "j-4", "dev-a", 0), 0);
}

static int add_typed(struct fixture *f, const char *id, const char *dev,
		     const char *type)
{
	struct srv_job j = {.id = id, .device = dev, .type = type,
			    .lane = srv_job_lane(type)};

	return srv_store_job_add(f->s, &j, NULL);
}

/* One open job per lane: a rotation runs beside an update, not beside
 * another rotation; an update not beside a rollback. */
static void test_lanes(void **state)
{
	struct fixture *f = *state;
	struct srv_job_row j = {0};

	enroll(f, "dev-l", "0c");
	assert_int_equal(add_typed(f, "j-u", "dev-l", "update"), 0);
	assert_int_equal(add_typed(f, "j-r", "dev-l", "rotate"), 0);
	assert_int_equal(add_typed(f, "j-r2", "dev-l", "rotate"),
			 FL_ECONFLICT);
	assert_int_equal(add_typed(f, "j-b", "dev-l", "rollback"),
			 FL_ECONFLICT);
	assert_int_equal(add(f, "j-any", "dev-l", 0), FL_ECONFLICT);
	assert_int_equal(srv_store_job_open(f->s, "dev-l", "rotate", &j, NULL),
			 0);
	assert_string_equal(j.id, "j-r");
	assert_string_equal(j.type, "rotate");
	assert_false(j.final);
	srv_job_row_free(&j);
	assert_int_equal(srv_store_job_cancel(f->s, "j-r", "x", NULL), 0);
	assert_int_equal(srv_store_job_open(f->s, "dev-l", "rotate", &j, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(add_typed(f, "j-r3", "dev-l", "rotate"), 0);
	assert_int_equal(srv_store_job_cancel(f->s, "j-u", "x", NULL), 0);
	assert_int_equal(add_typed(f, "j-b2", "dev-l", "rollback"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lanes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
