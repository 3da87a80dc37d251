/* SPDX-License-Identifier: MIT */
/*
 * srv_store_ingest (server-stub/store_ingest.c): device messages applied
 * in batches, idempotent by (device, seq) and (job, seq).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixture.h"

#include "ingest.h"
#include "jobs.h"

static void device(struct fixture *f, const char *id, const char *serial)
{
	struct srv_cert c = {serial, id, time(NULL), time(NULL) + 3600, NULL};

	assert_int_equal(srv_store_device_enroll(f->s, id, NULL, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

static void job(struct fixture *f, const char *id, const char *dev)
{
	struct srv_job j = {.id = id,
			    .device = dev,
			    .type = "update",
			    .bundle = "b1",
			    .to_version = "2.0"};

	assert_int_equal(srv_store_job_add(f->s, &j, NULL), 0);
}

static json_t *ev(int64_t seq, const char *job, const char *state)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:I}", "seq", (json_int_t)seq,
			 "job", job, "type", "update", "state", state, "bytes",
			 (json_int_t)seq * 10);
}

/* Apply @n events of one device in one batch; results into @res. */
static void apply(struct fixture *f, const char *dev, json_t **evs, size_t n,
		  enum srv_ingest_result *res, int64_t *gaps)
{
	struct srv_ingest_item it[16];
	char *text[16];

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		it[i] = (struct srv_ingest_item){.kind = SRV_INGEST_EVENT,
						 .device = dev};
		text[i] = srv_ingest_item_json(&it[i], evs[i]);
	}
	assert_int_equal(srv_store_ingest(f->s, it, n, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		res[i] = it[i].result;
		if (gaps)
			gaps[i] = it[i].gap;
		free(text[i]);
		json_decref(evs[i]);
	}
}

static struct srv_job_row job_get(struct fixture *f, const char *id)
{
	struct srv_job_row j = {0};

	assert_int_equal(srv_store_job_get(f->s, id, &j, NULL), 0);
	return j;
}

/* A burst, its redelivery and the re-published final: each stored once. */
static void test_events_stored_once(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[16];
	struct srv_job_row j;
	json_t *evs[16];

	device(f, "dev-1", "01");
	job(f, "j1", "dev-1");
	for (int i = 0; i < 9; i++)
		evs[i] = ev(i + 1, "j1", "downloading");
	evs[9] = ev(10, "j1", "failed");
	apply(f, "dev-1", evs, 10, r, NULL);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r[i], SRV_INGEST_STORED);
	/* the broker delivers a few again, the device re-publishes its final */
	evs[0] = ev(3, "j1", "downloading");
	evs[1] = ev(10, "j1", "failed");
	evs[2] = ev(10, "j1", "failed");
	apply(f, "dev-1", evs, 3, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_DUPLICATE);
	assert_int_equal(r[1], SRV_INGEST_DUPLICATE);
	assert_int_equal(r[2], SRV_INGEST_DUPLICATE);
	j = job_get(f, "j1");
	assert_int_equal(j.events.n, 10);
	assert_string_equal(j.state, "failed");
	assert_true(j.final);
	srv_job_row_free(&j);
}

/* A late, older progress event is recorded in the history as stale and
 * does not move the job back; a final one always closes the job; after
 * it an older progress event is still history, a newer one refused. */
static void test_order_by_seq(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[4];
	struct srv_job_row j;
	json_t *evs[4];

	device(f, "dev-2", "02");
	job(f, "j2", "dev-2");
	evs[0] = ev(5, "j2", "installing");
	evs[1] = ev(4, "j2", "downloading");
	evs[2] = ev(5, "j2", "installing"); /* a repeat stays a duplicate */
	apply(f, "dev-2", evs, 3, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	assert_int_equal(r[1], SRV_INGEST_STALE);
	assert_int_equal(r[2], SRV_INGEST_DUPLICATE);
	j = job_get(f, "j2");
	assert_string_equal(j.state, "installing");
	assert_int_equal(j.events.n, 2);
	srv_job_row_free(&j);
	evs[0] = ev(3, "j2", "failed");
	evs[1] = ev(6, "j2", "downloading"); /* after the final: refused */
	evs[2] = ev(2, "j2", "queued");	     /* older: history */
	evs[3] = ev(4, "j2", "downloading"); /* a repeat of a late one */
	apply(f, "dev-2", evs, 4, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	assert_int_equal(r[1], SRV_INGEST_REJECTED);
	assert_int_equal(r[2], SRV_INGEST_STALE);
	assert_int_equal(r[3], SRV_INGEST_DUPLICATE);
	j = job_get(f, "j2");
	assert_string_equal(j.state, "failed");
	assert_true(j.final);
	assert_int_equal(j.events.n, 4);
	srv_job_row_free(&j);
}

/* Moves the job's state machine does not allow are refused and leave
 * the job as it was; the legal move after them goes through. */
static void test_illegal_refused(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[8];
	struct srv_job_row j;
	json_t *evs[8];

	device(f, "dev-5", "05");
	job(f, "j5", "dev-5");
	evs[0] = ev(1, "j5", "installed");
	evs[1] = ev(2, "j5", "downloading"); /* back past the install */
	evs[2] = ev(3, "j5", "cancelled");   /* fleetd's own final */
	evs[3] = ev(4, "j5", "reverting");   /* never published */
	evs[4] = ev(5, "j5", "installed");
	json_object_set_new(evs[4], "type", json_string("rollback"));
	evs[5] = ev(6, "j5", "rebooting");
	apply(f, "dev-5", evs, 6, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	for (int i = 1; i < 5; i++)
		assert_int_equal(r[i], SRV_INGEST_ILLEGAL);
	assert_int_equal(r[5], SRV_INGEST_STORED);
	j = job_get(f, "j5");
	assert_string_equal(j.state, "rebooting");
	assert_int_equal(j.events.n, 2);
	assert_false(j.final);
	srv_job_row_free(&j);
}

/* A rotation's events name its command, not the job: they move the
 * rotate job, by the rotate type's rules. */
static void test_rotate_by_command(void **state)
{
	struct fixture *f = *state;
	struct srv_job rj = {.id = "j6",
			     .device = "dev-6",
			     .type = "rotate",
			     .lane = srv_job_lane("rotate")};
	enum srv_ingest_result r[4];
	struct srv_job_row j;
	json_t *evs[4];

	device(f, "dev-6", "06");
	assert_int_equal(srv_store_job_add(f->s, &rj, NULL), 0);
	assert_int_equal(srv_store_job_command(f->s, "j6", "c-6", NULL), 0);
	evs[0] = json_pack("{s:i, s:s, s:s, s:s}", "seq", 1, "cmd", "c-6",
			   "type", "rotate", "state", "rolled-back");
	evs[1] =
	    json_pack("{s:i, s:s, s:s, s:s, s:s}", "seq", 2, "cmd", "c-6",
		      "type", "rotate", "state", "succeeded", "serial", "07");
	evs[2] = json_pack("{s:i, s:s, s:s, s:s}", "seq", 3, "cmd", "c-other",
			   "type", "rotate", "state", "failed");
	apply(f, "dev-6", evs, 3, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_ILLEGAL);
	assert_int_equal(r[1], SRV_INGEST_STORED);
	assert_int_equal(r[2], SRV_INGEST_STORED); /* no job: the device's */
	j = job_get(f, "j6");
	assert_string_equal(j.state, "succeeded");
	assert_true(j.final);
	assert_int_equal(j.events.n, 1);
	srv_job_row_free(&j);
}

/* The device's last event is its newest, whatever order a batch brings
 * them in; a second batch compares with what the first left. */
static void test_device_last_event(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[4];
	struct srv_device_row d = {0};
	int64_t gaps[4];
	json_t *evs[4];

	device(f, "dev-7", "07");
	evs[0] = json_pack("{s:i, s:s}", "seq", 7, "type", "boot");
	evs[1] = json_pack("{s:i, s:s}", "seq", 9, "type", "newest");
	evs[2] = json_pack("{s:i, s:s}", "seq", 8, "type", "late");
	apply(f, "dev-7", evs, 3, r, gaps);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	assert_int_equal(r[1], SRV_INGEST_STORED);
	assert_int_equal(r[2], SRV_INGEST_DUPLICATE);
	assert_int_equal(gaps[0], 6);
	assert_int_equal(gaps[1], 1);
	assert_int_equal(gaps[2], 0);
	assert_int_equal(srv_store_device_get(f->s, "dev-7", &d, NULL), 0);
	assert_non_null(strstr(d.last_event, "\"newest\""));
	srv_device_row_free(&d);
	evs[0] = json_pack("{s:i, s:s}", "seq", 9, "type", "again");
	evs[1] = json_pack("{s:i, s:s}", "seq", 12, "type", "later");
	apply(f, "dev-7", evs, 2, r, gaps);
	assert_int_equal(r[0], SRV_INGEST_DUPLICATE);
	assert_int_equal(r[1], SRV_INGEST_STORED);
	assert_int_equal(gaps[1], 2);
	assert_int_equal(srv_store_device_get(f->s, "dev-7", &d, NULL), 0);
	assert_non_null(strstr(d.last_event, "\"later\""));
	srv_device_row_free(&d);
}

/* One batch moves a job as the same events one by one would: the last
 * state, stage and reason, the newest bytes given, the first
 * from_version, and a stale event judged against the batch's own moves. */
static void test_job_moves_in_one_batch(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[5];
	struct srv_job_row j;
	json_t *evs[5];

	device(f, "dev-8", "08");
	job(f, "j8", "dev-8");
	evs[0] = ev(1, "j8", "downloading"); /* bytes 10 */
	json_object_set_new(evs[0], "from_version", json_string("1.0"));
	json_object_set_new(evs[0], "stage", json_string("fetch"));
	evs[1] = ev(2, "j8", "verifying"); /* bytes 20 */
	json_object_set_new(evs[1], "from_version", json_string("9.9"));
	evs[2] = ev(2, "j8", "installing"); /* same seq: a repeat */
	evs[3] = json_pack("{s:i, s:s, s:s, s:s}", "seq", 3, "job", "j8",
			   "state", "failed", "reason", "disk full");
	evs[4] = ev(4, "j8", "downloading"); /* after the final */
	apply(f, "dev-8", evs, 5, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	assert_int_equal(r[1], SRV_INGEST_STORED);
	assert_int_equal(r[2], SRV_INGEST_DUPLICATE);
	assert_int_equal(r[3], SRV_INGEST_STORED);
	assert_int_equal(r[4], SRV_INGEST_REJECTED);
	j = job_get(f, "j8");
	assert_string_equal(j.state, "failed");
	assert_true(j.final);
	assert_null(j.stage);
	assert_string_equal(j.reason, "disk full");
	assert_int_equal(j.bytes, 20);
	assert_string_equal(j.from_version, "1.0");
	assert_int_equal(j.events.n, 3);
	srv_job_row_free(&j);
}

/*
 * A batch of many devices, interleaved (the writer reads and writes them
 * in multi-row chunks of 64, 16, 4 and 1): 71 events of 5 devices, each
 * device's own events in order, one of them naming another device's job;
 * every item gets its own verdict and every job its own last state.
 */
static void test_many_devices_in_one_batch(void **state)
{
	struct fixture *f = *state;
	enum { NDEV = 5, NEV = 71 };
	struct srv_ingest_item it[NEV];
	char *text[NEV], dev[NDEV][8], jid[NDEV][8];
	json_t *evs[NEV]; /* the items' fields point into them */
	int seq[NDEV] = {0};

	for (int d = 0; d < NDEV; d++) {
		snprintf(dev[d], sizeof(dev[d]), "m-%d", d);
		snprintf(jid[d], sizeof(jid[d]), "jm-%d", d);
		device(f, dev[d], dev[d]);
		job(f, jid[d], dev[d]);
	}
	for (int i = 0; i < NEV; i++) {
		int d = (i * 3) % NDEV; /* interleaved */
		json_t *e = evs[i] = ev(++seq[d], jid[d], "downloading");

		it[i] = (struct srv_ingest_item){.kind = SRV_INGEST_EVENT,
						 .device = dev[d]};
		if (i == 40) /* m-0 naming m-1's job */
			json_object_set_new(e, "job", json_string(jid[1]));
		text[i] = srv_ingest_item_json(&it[i], e);
	}
	assert_int_equal(srv_store_ingest(f->s, it, NEV, NULL), 0);
	for (int i = 0; i < NEV; i++) {
		assert_int_equal(it[i].result, i == 40 ? SRV_INGEST_REJECTED
						       : SRV_INGEST_STORED);
		free(text[i]);
		json_decref(evs[i]);
	}
	for (int d = 0; d < NDEV; d++) {
		struct srv_job_row j = job_get(f, jid[d]);

		assert_string_equal(j.state, "downloading");
		assert_int_equal(j.bytes, 10 * seq[d]);
		assert_int_equal(j.events.n, seq[d] - (d == 0));
		srv_job_row_free(&j);
	}
}

/* Unknown devices, other devices' jobs and unknown jobs are refused;
 * skipped seq numbers are reported as the gap. */
static void test_rejects_and_gaps(void **state)
{
	struct fixture *f = *state;
	enum srv_ingest_result r[4];
	int64_t gaps[4];
	json_t *evs[4];

	device(f, "dev-3", "03");
	device(f, "dev-4", "04");
	job(f, "j3", "dev-3");
	evs[0] = ev(1, "j3", "downloading");
	apply(f, "nobody", evs, 1, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_REJECTED);
	evs[0] = ev(1, "j3", "downloading"); /* dev-4 on dev-3's job */
	apply(f, "dev-4", evs, 1, r, NULL);
	assert_int_equal(r[0], SRV_INGEST_REJECTED);
	evs[0] = ev(1, "j3", "downloading"); /* positive control */
	evs[1] = ev(5, "j3", "downloading");
	evs[2] = ev(6, "j-none", "downloading");
	apply(f, "dev-3", evs, 3, r, gaps);
	assert_int_equal(r[0], SRV_INGEST_STORED);
	assert_int_equal(gaps[0], 0);
	assert_int_equal(r[1], SRV_INGEST_STORED);
	assert_int_equal(gaps[1], 3);
	assert_int_equal(r[2], SRV_INGEST_REJECTED);
}

/* Presence and status in the same batch as events, in order. */
static void test_presence_status(void **state)
{
	struct fixture *f = *state;
	json_t *on = json_pack("{s:b, s:s}", "online", 1, "agent", "1.2");
	json_t *st = json_pack("{s:s, s:s}", "firmware", "3.1", "slot", "b");
	json_t *off = json_pack("{s:b}", "online", 0);
	struct srv_ingest_item it[] = {
	    {.kind = SRV_INGEST_PRESENCE, .device = "dev-5"},
	    {.kind = SRV_INGEST_STATUS, .device = "dev-5"},
	    {.kind = SRV_INGEST_PRESENCE, .device = "dev-5"},
	    {.kind = SRV_INGEST_STATUS, .device = "ghost"},
	};
	json_t *msgs[] = {on, st, off, st};
	char *text[4];
	struct srv_device_row d = {0};

	for (int i = 0; i < 4; i++)
		text[i] = srv_ingest_item_json(&it[i], msgs[i]);
	device(f, "dev-5", "05");
	assert_int_equal(srv_store_ingest(f->s, it, 4, NULL), 0);
	for (int i = 0; i < 4; i++)
		free(text[i]);
	assert_int_equal(it[0].result, SRV_INGEST_STORED);
	assert_int_equal(it[2].result, SRV_INGEST_STORED);
	assert_int_equal(it[3].result, SRV_INGEST_REJECTED);
	assert_int_equal(srv_store_device_get(f->s, "dev-5", &d, NULL), 0);
	assert_false(d.online);
	assert_string_equal(d.firmware, "3.1");
	assert_string_equal(d.agent, "1.2");
	srv_device_row_free(&d);
	json_decref(on);
	json_decref(st);
	json_decref(off);
}

/* The status of @id after one status message @j (JSON text). */
static void status_then(struct fixture *f, const char *id, const char *j,
			struct srv_device_row *d)
{
	struct srv_ingest_item it = {.kind = SRV_INGEST_STATUS, .device = id};
	json_t *msg = json_loads(j, 0, NULL);
	char *text = srv_ingest_item_json(&it, msg);

	assert_int_equal(srv_store_ingest(f->s, &it, 1, NULL), 0);
	assert_int_equal(it.result, SRV_INGEST_STORED);
	free(text);
	json_decref(msg);
	srv_device_row_free(d);
	*d = (struct srv_device_row){0};
	assert_int_equal(srv_store_device_get(f->s, id, d, NULL), 0);
}

/* A member left out keeps the stored value; one reported as null (the
 * device no longer knows, e.g. a slot with no recorded version) clears
 * it instead of leaving a stale one. */
static void test_status_null_clears(void **state)
{
	struct fixture *f = *state;
	struct srv_device_row d = {0};

	device(f, "dev-6", "06");
	status_then(f, "dev-6",
		    "{\"firmware\": \"3.1\", \"slot\": \"b\", "
		    "\"health\": \"ok\"}",
		    &d);
	assert_string_equal(d.firmware, "3.1");
	status_then(f, "dev-6", "{\"slot\": \"a\"}", &d);
	assert_string_equal(d.firmware, "3.1");
	assert_string_equal(d.slot, "a");
	assert_string_equal(d.health, "ok");
	status_then(f, "dev-6", "{\"firmware\": null, \"health\": null}", &d);
	assert_null(d.firmware);
	assert_null(d.health);
	assert_string_equal(d.slot, "a");
	srv_device_row_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_events_stored_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_status_null_clears, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_illegal_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_by_command, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_device_last_event, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_job_moves_in_one_batch, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_order_by_seq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_devices_in_one_batch,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects_and_gaps, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_presence_status, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
