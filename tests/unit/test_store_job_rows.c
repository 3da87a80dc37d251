/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_sql_jobs: jobs as typed rows (list filters and
 * order, the row of one job with its history), on a real SQLite file.
 * Job logic (transitions, cancel, expiry) is test_store_jobs.c.
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
#include "ingest.h"
#include "store.h"
#include "util.h"

#include "store_fixture.h"

static void enroll(struct fixture *f, const char *dev, const char *serial)
{
	struct srv_cert c = {serial, dev, time(NULL), time(NULL) + 60, NULL};

	assert_int_equal(srv_store_device_enroll(f->s, dev, NULL, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

static void add(struct fixture *f, const char *id, const char *dev,
		const char *rollout)
{
	struct srv_job j = {.id = id,
			    .device = dev,
			    .type = "update",
			    .bundle = "b1",
			    .rollout = rollout,
			    .to_version = "2.0",
			    .created_by = "token:t",
			    .expires = 4102444800LL};

	assert_int_equal(srv_store_job_add(f->s, &j, NULL), 0);
}

static void event(struct fixture *f, const char *dev, const char *job, int seq,
		  const char *state, int bytes)
{
	json_t *ev =
	    json_pack("{s:i, s:s, s:s, s:i, s:i}", "seq", seq, "job", job,
		      "state", state, "bytes", bytes, "total", 100);
	struct srv_ingest_item it = {.kind = SRV_INGEST_EVENT, .device = dev};
	char *text = srv_ingest_item_json(&it, ev);

	assert_int_equal(srv_store_ingest(f->s, &it, 1, NULL), 0);
	free(text);
	json_decref(ev);
}

static void test_row(void **state)
{
	struct fixture *f = *state;
	struct srv_job_row j = {0};
	int64_t before = time(NULL);

	enroll(f, "dev-a", "0a");
	add(f, "j-1", "dev-a", NULL);
	assert_int_equal(srv_store_job_get(f->s, "j-1", &j, NULL), 0);
	assert_string_equal(j.id, "j-1");
	assert_string_equal(j.device, "dev-a");
	assert_string_equal(j.type, "update");
	assert_string_equal(j.bundle, "b1");
	assert_null(j.command);
	assert_null(j.rollout);
	assert_string_equal(j.state, "queued");
	assert_false(j.final);
	assert_null(j.stage);
	assert_null(j.from_version); /* the device reported none */
	assert_string_equal(j.to_version, "2.0");
	assert_int_equal(j.bytes, -1);
	assert_int_equal(j.total, -1);
	assert_true(j.created >= before && j.updated >= j.created);
	assert_string_equal(j.created_by, "token:t");
	assert_int_equal(j.expires, 4102444800LL);
	assert_int_equal(j.events.n, 0);
	srv_job_row_free(&j);
	assert_int_equal(srv_store_job_command(f->s, "j-1", "c-1", NULL), 0);
	event(f, "dev-a", "j-1", 1, "downloading", 10);
	event(f, "dev-a", "j-1", 2, "downloading", 50);
	assert_int_equal(srv_store_job_get(f->s, "j-1", &j, NULL), 0);
	assert_string_equal(j.command, "c-1");
	assert_string_equal(j.state, "downloading");
	assert_int_equal(j.bytes, 50);
	assert_int_equal(j.total, 100);
	assert_int_equal(j.events.n, 2); /* by seq, as the device sent them */
	assert_non_null(strstr(j.events.v[0], "\"seq\":1"));
	assert_non_null(strstr(j.events.v[1], "\"seq\":2"));
	srv_job_row_free(&j);
	assert_int_equal(srv_store_job_get(f->s, "j-none", &j, NULL),
			 FL_ENOTFOUND);
	assert_null(j.id);
}

/* The ids of a filtered list, comma separated, into @buf. */
static const char *ids(struct fixture *f, const struct srv_job_filter *flt,
		       char *buf, size_t len)
{
	struct srv_job_list l = {0};

	assert_int_equal(srv_store_job_list(f->s, flt, &l, NULL), 0);
	buf[0] = '\0';
	for (size_t i = 0, at = 0; i < l.n && at < len; i++) {
		assert_int_equal(l.v[i].events.n, 0); /* lists leave it out */
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "",
				       l.v[i].id);
	}
	srv_job_list_free(&l);
	return buf;
}

static void test_list(void **state)
{
	struct fixture *f = *state;
	struct srv_job_filter flt = {0};
	char buf[128];

	enroll(f, "dev-a", "0a");
	enroll(f, "dev-b", "0b");
	add(f, "j-1", "dev-a", "r-1");
	assert_int_equal(srv_store_job_cancel(f->s, "j-1", "t", NULL), 0);
	add(f, "j-2", "dev-a", NULL);
	add(f, "j-3", "dev-b", "r-1");
	/* newest first (same second: the later insert first) */
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-3,j-2,j-1");
	flt.limit = 2;
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-3,j-2");
	flt = (struct srv_job_filter){.device = "dev-a"};
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-2,j-1");
	flt = (struct srv_job_filter){.state = "cancelled"};
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-1");
	flt = (struct srv_job_filter){.rollout = "r-1"};
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-3,j-1");
	flt.device = "dev-b";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "j-3");
	flt.state = "failed";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
