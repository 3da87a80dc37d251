/* SPDX-License-Identifier: MIT */
/*
 * The ingest queue (server-stub/ingest.c): a full queue makes the pusher
 * wait instead of dropping, everything pushed is stored once, and final
 * job events are confirmed only after their commit.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"

#include "ingest.h"

#define DEVICES 4
#define EVENTS 300 /* per device; the last one final */

struct acks {
	struct fixture *f;
	int n;
	int stored_before; /* acks whose event was already committed */
	int64_t missing[SRV_HISTORY_MAX]; /* the last ack's */
	size_t n_missing;
};

static bool committed(struct fixture *f, const char *job, int64_t seq)
{
	char *q = fl_xasprintf("SELECT 1 FROM job_events WHERE job = '%s'"
			       " AND seq = %lld",
			       job, (long long)seq);
	int rc = fx_sql(f->db, q, NULL, 0);

	free(q);
	assert_true(rc >= 0);
	return rc == 1;
}

static void on_ack(void *arg, const char *device, int64_t seq, const char *job,
		   const char *state, const int64_t *missing, size_t n_missing)
{
	struct acks *a = arg;

	(void)device;
	assert_string_equal(state, "failed");
	a->n++;
	a->stored_before += committed(a->f, job, seq);
	memcpy(a->missing, missing, n_missing * sizeof(*missing));
	a->n_missing = n_missing;
}

static void setup_fleet(struct fixture *f)
{
	for (int d = 0; d < DEVICES; d++) {
		char id[16], serial[8], job[16];
		struct srv_cert c = {serial, id, time(NULL), time(NULL) + 60,
				     NULL};
		struct srv_job j = {.id = job, .device = id, .type = "update"};

		snprintf(id, sizeof(id), "dev-%d", d);
		snprintf(serial, sizeof(serial), "%02x", d + 1);
		snprintf(job, sizeof(job), "j-%d", d);
		assert_int_equal(srv_store_device_enroll(f->s, id, NULL, "t",
							 NULL, false, &c, NULL),
				 0);
		assert_int_equal(srv_store_job_add(f->s, &j, NULL), 0);
	}
}

static void push_event(struct srv_ingest *q, int d, int seq)
{
	char id[16], text[160];

	snprintf(id, sizeof(id), "dev-%d", d);
	snprintf(text, sizeof(text),
		 "{\"seq\": %d, \"job\": \"j-%d\", \"type\": \"update\","
		 " \"state\": \"%s\", \"bytes\": %d}",
		 seq, d, seq == EVENTS ? "failed" : "downloading", seq);
	assert_true(
	    srv_ingest_push(q, SRV_INGEST_EVENT, id, text, strlen(text)));
}

struct pusher {
	struct srv_ingest *q;
	bool done;
};

static void *push_all(void *arg)
{
	struct pusher *p = arg;

	for (int s = 1; s <= EVENTS; s++)
		for (int d = 0; d < DEVICES; d++)
			push_event(p->q, d, s);
	__atomic_store_n(&p->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static int64_t count_rows(struct fixture *f, const char *sql)
{
	return fx_sql_int(f->db, sql);
}

/* While another process holds the database, a small queue fills and the
 * pusher waits (nothing dropped); released, all of it is stored once,
 * and every final event is confirmed after its commit. */
static void test_backpressure_loses_nothing(void **state)
{
	struct fixture *f = *state;
	struct acks acks = {.f = f};
	struct srv_ingest_cfg cfg = {
	    .queue = 16, .max_bytes = 1 << 20, .batch = 8, .max_payload = 4096};
	struct srv_ingest_stats st;
	struct srv_ingest *q = NULL;
	struct pusher p = {0};
	sqlite3 *blocker;
	pthread_t t;
	int i;

	FX_SQLITE_ONLY(f); /* another process holding SQLite's file */
	setup_fleet(f);
	assert_int_equal(sqlite3_open(f->db, &blocker), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(blocker, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(srv_ingest_start(f->s, &cfg, on_ack, &acks, &q, NULL),
			 0);
	p.q = q;
	assert_int_equal(pthread_create(&t, NULL, push_all, &p), 0);
	/* the writer holds its first batch, blocked; the pusher fills the
	 * queue and waits (under load the writer may take that batch only
	 * after the pusher's first wait: then the queue fills again) */
	for (i = 0; i < 200; i++) { /* bounded: 10 s */
		srv_ingest_stats(q, &st);
		if (st.waits > 0 && st.depth == 16)
			break;
		usleep(50 * 1000);
	}
	assert_true(st.waits > 0);
	assert_false(__atomic_load_n(&p.done, __ATOMIC_SEQ_CST));
	assert_int_equal(st.depth, 16);
	assert_int_equal(st.stored, 0);
	assert_int_equal(sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(blocker);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(srv_ingest_drain(q, 30000));
	srv_ingest_stats(q, &st);
	srv_ingest_stop(q);
	assert_int_equal(st.received, DEVICES * EVENTS);
	assert_int_equal(st.stored, DEVICES * EVENTS);
	assert_int_equal(st.duplicates + st.rejected + st.failed, 0);
	assert_int_equal(st.acks, DEVICES);
	assert_int_equal(acks.n, DEVICES);
	assert_int_equal(acks.stored_before, DEVICES);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM job_events"),
			 DEVICES * EVENTS);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM jobs WHERE"
				       " final = 1 AND state = 'failed'"),
			 DEVICES);
}

/* Malformed payloads are counted as rejected and do not stop the rest;
 * a repeat is a duplicate, its final confirmed again. */
static void test_bad_and_repeated(void **state)
{
	struct fixture *f = *state;
	struct acks acks = {.f = f};
	struct srv_ingest_cfg cfg = {
	    .queue = 64, .max_bytes = 1 << 20, .batch = 64, .max_payload = 256};
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[1]",
	    "{\"seq\": 0}",
	    "{\"seq\": \"1\"}",
	    "{\"seq\": 1, \"job\": \"../x\"}",
	    "{\"seq\": 9007199254740993}",
	};
	char big[400];
	struct srv_ingest_stats st;
	struct srv_ingest *q = NULL;

	setup_fleet(f);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"seq\": 1}", 10); /* over max_payload */
	assert_int_equal(srv_ingest_start(f->s, &cfg, on_ack, &acks, &q, NULL),
			 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(srv_ingest_push(q, SRV_INGEST_EVENT, "dev-0",
					    bad[i], strlen(bad[i])));
	assert_true(
	    srv_ingest_push(q, SRV_INGEST_EVENT, "dev-0", big, sizeof(big)));
	assert_true(srv_ingest_push(q, SRV_INGEST_PRESENCE, "dev-0",
				    "{\"online\": 1}", 13));
	push_event(q, 1, EVENTS);
	push_event(q, 1, EVENTS);
	assert_true(srv_ingest_drain(q, 30000));
	srv_ingest_stats(q, &st);
	srv_ingest_stop(q);
	assert_int_equal(st.rejected, 9);
	assert_int_equal(st.stored, 1);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(acks.n, 2);
}

static void push_text(struct srv_ingest *q, const char *dev, int seq,
		      const char *state)
{
	char text[160];

	snprintf(text, sizeof(text),
		 "{\"seq\": %d, \"job\": \"j-2\", \"type\": \"update\","
		 " \"state\": \"%s\"}",
		 seq, state);
	assert_true(
	    srv_ingest_push(q, SRV_INGEST_EVENT, dev, text, strlen(text)));
}

/* A final event's "history": the ack names the seqs its job lacks; the
 * device publishes them again (recorded late, the final job unmoved),
 * then the final: the ack names none. */
static void test_history_repair(void **state)
{
	struct fixture *f = *state;
	struct acks acks = {.f = f};
	struct srv_ingest_cfg cfg = {
	    .queue = 64, .max_bytes = 1 << 20, .batch = 64, .max_payload = 512};
	static const char final[] =
	    "{\"seq\": 9, \"job\": \"j-2\", \"type\": \"update\","
	    " \"state\": \"failed\", \"history\": [5, 6, 7, 8]}";
	struct srv_ingest_stats st;
	struct srv_ingest *q = NULL;

	setup_fleet(f);
	assert_int_equal(srv_ingest_start(f->s, &cfg, on_ack, &acks, &q, NULL),
			 0);
	push_text(q, "dev-2", 5, "downloading");
	push_text(q, "dev-2", 7, "installing"); /* 6 and 8 lost */
	assert_true(srv_ingest_push(q, SRV_INGEST_EVENT, "dev-2", final,
				    strlen(final)));
	assert_true(srv_ingest_drain(q, 30000));
	assert_int_equal(acks.n, 1);
	assert_int_equal(acks.n_missing, 2);
	assert_int_equal(acks.missing[0], 6);
	assert_int_equal(acks.missing[1], 8);
	push_text(q, "dev-2", 6, "verifying");
	push_text(q, "dev-2", 8, "installed");
	assert_true(srv_ingest_push(q, SRV_INGEST_EVENT, "dev-2", final,
				    strlen(final)));
	assert_true(srv_ingest_drain(q, 30000));
	srv_ingest_stats(q, &st);
	srv_ingest_stop(q);
	assert_int_equal(acks.n, 2);
	assert_int_equal(acks.n_missing, 0);
	assert_int_equal(st.job_stale, 2);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM job_events"
				       " WHERE job = 'j-2'"),
			 5);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM jobs WHERE"
				       " id = 'j-2' AND final = 1"
				       " AND state = 'failed' AND seq = 9"),
			 1);
}

/* Stale events (recorded late, the job not moved) and illegal moves are
 * counted apart from the rejected ones (fleetctl status "jobs"). */
static void test_job_counters(void **state)
{
	struct fixture *f = *state;
	struct acks acks = {.f = f};
	struct srv_ingest_cfg cfg = {
	    .queue = 64, .max_bytes = 1 << 20, .batch = 64, .max_payload = 256};
	struct srv_ingest_stats st;
	struct srv_ingest *q = NULL;

	setup_fleet(f);
	assert_int_equal(srv_ingest_start(f->s, &cfg, on_ack, &acks, &q, NULL),
			 0);
	push_text(q, "dev-2", 5, "installing");
	push_text(q, "dev-2", 4, "downloading"); /* stale */
	push_text(q, "dev-2", 6, "queued");	 /* back to the start */
	push_text(q, "dev-2", 7, "reverting");	 /* never published */
	push_text(q, "dev-2", 8, "installed");
	assert_true(srv_ingest_drain(q, 30000));
	srv_ingest_stats(q, &st);
	srv_ingest_stop(q);
	assert_int_equal(st.stored, 2);
	assert_int_equal(st.job_stale, 1);
	assert_int_equal(st.job_illegal, 2);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(acks.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backpressure_loses_nothing,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_and_repeated, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_history_repair, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_job_counters, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
