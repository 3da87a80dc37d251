/* SPDX-License-Identifier: MIT */
/*
 * agent/evq: the rules of the outgoing job event queue without a broker
 * (test_agent_ack.c has them end to end): progress coalesced per job
 * with the seq taken at send, a final event dropping its job's pending
 * progress, finals kept (and persisted) until the ack with their job and
 * seq, re-publishing on connect and on a capped backoff with jitter,
 * sent progress kept until the final's ack misses none of it, and the
 * caps on the file.
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

#include "evq.h"
#include "fsutil.h"
#include "tmpdir.h"
#include "util.h"

#define MIN_MS 10000

/* What the sink was handed. */
struct sent {
	json_t *evs[256];
	size_t n;
	uint64_t seq; /* the "agent's" counter */
	bool fail;    /* send_progress fails */
};

static int send_progress(void *user, json_t *ev)
{
	struct sent *s = user;

	if (s->fail)
		return FL_EIO;
	json_object_set_new(ev, "seq", json_integer((json_int_t)++s->seq));
	s->evs[s->n++] = json_deep_copy(ev);
	return 0;
}

static void send_final(void *user, const json_t *ev, bool again)
{
	struct sent *s = user;

	(void)again;
	s->evs[s->n++] = json_deep_copy(ev);
}

static void sent_clear(struct sent *s)
{
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->evs[i]);
	s->n = 0;
}

static json_int_t num(const json_t *ev, const char *key)
{
	return json_integer_value(json_object_get(ev, key));
}

static const char *str(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

static json_t *progress(const char *job, int bytes)
{
	return json_pack("{s:s, s:s, s:i}", "job", job, "state", "downloading",
			 "bytes", bytes);
}

static json_t *final_ev(const char *job, int seq, const char *state)
{
	return json_pack("{s:i, s:s, s:s, s:s}", "seq", seq, "job", job,
			 "state", state, "type", "update");
}

struct fx {
	char dir[64], *path;
	struct agent_evq *q;
	struct sent s;
	struct agent_evq_sink sink;
};

static int setup(void **state)
{
	struct fx *f = fl_xcalloc(1, sizeof(*f));

	assert_int_equal(test_mkdtemp(f->dir, "evq"), 0);
	f->path = fl_path_join(f->dir, AGENT_EVQ_FILE);
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &f->q, NULL), 0);
	f->sink = (struct agent_evq_sink){&f->s, send_progress, send_final};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	agent_evq_free(f->q);
	sent_clear(&f->s);
	test_rmtree(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void add_progress(struct fx *f, const char *job, int bytes)
{
	json_t *ev = progress(job, bytes);

	agent_evq_progress(f->q, job, ev);
	json_decref(ev);
}

static void add_final(struct fx *f, const char *job, int seq)
{
	json_t *ev = final_ev(job, seq, "succeeded");

	assert_int_equal(agent_evq_final(f->q, job, ev, NULL), 0);
	json_decref(ev);
}

/* Offline, 50 progress events of one job: one is pending, the newest;
 * it takes its seq when sent.  Another job has its own. */
static void test_progress_coalesced(void **state)
{
	struct fx *f = *state;

	for (int i = 1; i <= 50; i++)
		add_progress(f, "j-1", i);
	add_progress(f, "j-2", 7);
	agent_evq_flush(f->q, 0, 0, &f->sink); /* offline: no room */
	assert_int_equal(f->s.n, 0);
	assert_int_equal(agent_evq_pending(f->q), 2);
	agent_evq_flush(f->q, 0, 1, &f->sink); /* room for one */
	assert_int_equal(f->s.n, 1);
	assert_string_equal(str(f->s.evs[0], "job"), "j-1");
	assert_int_equal(num(f->s.evs[0], "bytes"), 50);
	assert_int_equal(num(f->s.evs[0], "seq"), 1);
	add_progress(f, "j-2", 8); /* still pending: replaced */
	agent_evq_flush(f->q, 0, 10, &f->sink);
	assert_int_equal(f->s.n, 2);
	assert_int_equal(num(f->s.evs[1], "bytes"), 8);
	assert_int_equal(num(f->s.evs[1], "seq"), 2);
	assert_int_equal(agent_evq_pending(f->q), 0);
	/* a failed send keeps the event */
	add_progress(f, "j-1", 51);
	f->s.fail = true;
	agent_evq_flush(f->q, 0, 10, &f->sink);
	assert_int_equal(agent_evq_pending(f->q), 1);
	f->s.fail = false;
	agent_evq_flush(f->q, 0, 10, &f->sink);
	assert_int_equal(num(f->s.evs[2], "bytes"), 51);
	/* more jobs than the cap: the oldest pending goes */
	for (int i = 0; i < AGENT_EVQ_JOBS_MAX + 1; i++) {
		char job[16];

		snprintf(job, sizeof(job), "j-%d", 10 + i);
		add_progress(f, job, i);
	}
	assert_int_equal(agent_evq_pending(f->q), AGENT_EVQ_JOBS_MAX);
	agent_evq_flush(f->q, 0, 1, &f->sink);
	assert_string_equal(str(f->s.evs[3], "job"), "j-11");
}

/* A final event drops the pending progress of its job (not others'). */
static void test_final_drops_progress(void **state)
{
	struct fx *f = *state;

	for (int i = 1; i <= 50; i++)
		add_progress(f, "j-1", i);
	add_progress(f, "j-2", 1);
	add_final(f, "j-1", 90);
	assert_int_equal(agent_evq_pending(f->q), 1);
	agent_evq_flush(f->q, 0, 10, &f->sink);
	assert_int_equal(f->s.n, 2);
	assert_int_equal(num(f->s.evs[0], "seq"), 90); /* finals first */
	assert_string_equal(str(f->s.evs[0], "state"), "succeeded");
	assert_string_equal(str(f->s.evs[1], "job"), "j-2");
}

/* Re-published, the same event, when due: [min/2, min], doubling with
 * jitter up to the cap; at each connect at once; never after its ack. */
static void test_final_until_ack(void **state)
{
	struct fx *f = *state;
	int64_t now = 0, cap = MIN_MS, due;

	add_final(f, "j-1", 5);
	agent_evq_flush(f->q, now, 10, &f->sink);
	assert_int_equal(f->s.n, 1);
	for (int i = 0; i < 12; i++) {
		due = agent_evq_next_due(f->q);
		assert_true(due - now >= cap / 2 && due - now <= cap);
		agent_evq_flush(f->q, due - 1, 10, &f->sink);
		assert_int_equal(f->s.n, (size_t)i + 1); /* not yet */
		now = due;
		agent_evq_flush(f->q, now, 10, &f->sink);
		assert_int_equal(f->s.n, (size_t)i + 2);
		assert_int_equal(num(f->s.evs[i + 1], "seq"), 5);
		cap = cap * 2 > AGENT_EVQ_RETRY_MAX_MS ? AGENT_EVQ_RETRY_MAX_MS
						       : cap * 2;
	}
	assert_int_equal(cap, AGENT_EVQ_RETRY_MAX_MS);
	/* no room (offline or busy): it waits, still due */
	agent_evq_flush(f->q, now + cap, 0, &f->sink);
	assert_int_equal(f->s.n, 13);
	/* a connect: due at once, and the backoff starts again */
	agent_evq_on_connect(f->q);
	agent_evq_flush(f->q, now, 10, &f->sink);
	assert_int_equal(f->s.n, 14);
	assert_true(agent_evq_next_due(f->q) - now <= MIN_MS);
	/* acks for another seq, another job: nothing */
	assert_int_equal(agent_evq_ack(f->q, "j-1", 6, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_evq_ack(f->q, "j-2", 5, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_evq_unconfirmed(f->q), 1);
	/* the right one */
	assert_int_equal(agent_evq_ack(f->q, "j-1", 5, NULL, 0, NULL, NULL), 0);
	assert_int_equal(agent_evq_unconfirmed(f->q), 0);
	assert_int_equal(agent_evq_ack(f->q, "j-1", 5, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	agent_evq_on_connect(f->q);
	agent_evq_flush(f->q, now + 3600000, 10, &f->sink);
	assert_int_equal(f->s.n, 14);
	assert_int_equal(agent_evq_next_due(f->q), INT64_MAX);
}

/* Finals survive a restart (the file), a newer final of a job replaces
 * the older one, the list is capped, and an ack is persisted. */
static void test_persisted(void **state)
{
	struct fx *f = *state;
	json_t *big;
	char *pad;

	add_final(f, "j-1", 5);
	add_final(f, "j-2", 6);
	add_final(f, "j-1", 7); /* replaces seq 5 */
	agent_evq_free(f->q);
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &f->q, NULL), 0);
	assert_int_equal(agent_evq_unconfirmed(f->q), 2);
	assert_int_equal(agent_evq_ack(f->q, "j-1", 5, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	agent_evq_flush(f->q, 0, 10, &f->sink); /* due at once */
	assert_int_equal(f->s.n, 2);
	assert_int_equal(num(f->s.evs[0], "seq"), 6);
	assert_int_equal(num(f->s.evs[1], "seq"), 7);
	assert_int_equal(agent_evq_ack(f->q, "j-1", 7, NULL, 0, NULL, NULL), 0);
	agent_evq_free(f->q);
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &f->q, NULL), 0);
	assert_int_equal(agent_evq_unconfirmed(f->q), 1);
	/* the cap: the oldest is forgotten */
	for (int i = 0; i < AGENT_EVQ_FINALS_MAX + 3; i++) {
		char job[16];

		snprintf(job, sizeof(job), "j-%d", 100 + i);
		add_final(f, job, 100 + i);
	}
	assert_int_equal(agent_evq_unconfirmed(f->q), AGENT_EVQ_FINALS_MAX);
	assert_int_equal(agent_evq_ack(f->q, "j-2", 6, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_evq_ack(f->q, "j-102", 102, NULL, 0, NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(agent_evq_ack(f->q, "j-103", 103, NULL, 0, NULL, NULL),
			 0);
	/* an event too big to keep */
	pad = fl_xmalloc(9000);
	memset(pad, 'x', 8999);
	pad[8999] = '\0';
	big = final_ev("j-big", 500, "failed");
	json_object_set_new(big, "reason", json_string(pad));
	assert_int_equal(agent_evq_final(f->q, "j-big", big, NULL), FL_ELIMIT);
	json_decref(big);
	free(pad);
}

/* Send progress @bytes of @job now (room for one). */
static void send_one(struct fx *f, const char *job, const char *st, int bytes)
{
	json_t *ev = progress(job, bytes);

	json_object_set_new(ev, "state", json_string(st));
	agent_evq_progress(f->q, job, ev);
	json_decref(ev);
	agent_evq_flush(f->q, 0, 1, &f->sink);
}

static json_t *history_of(const json_t *ev)
{
	return json_object_get(ev, "history");
}

/* Sent progress is kept (and persisted) until its job's final is
 * confirmed; the final names it in "history"; an ack with "missing"
 * makes those due again, before the final; one without forgets them. */
static void test_sent_until_history_confirmed(void **state)
{
	struct fx *f = *state;
	static const uint64_t miss[] = {2, 99}; /* 99: not kept here */
	size_t resent = 9;
	json_t *h;

	send_one(f, "j-1", "downloading", 1); /* seq 1 */
	send_one(f, "j-1", "installing", 2);  /* seq 2 */
	send_one(f, "j-2", "downloading", 3); /* seq 3, another job */
	assert_int_equal(agent_evq_sent(f->q), 3);
	agent_evq_free(f->q); /* a restart keeps them */
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &f->q, NULL), 0);
	assert_int_equal(agent_evq_sent(f->q), 3);
	add_final(f, "j-1", 4);
	agent_evq_flush(f->q, 0, 10, &f->sink);
	assert_int_equal(f->s.n, 4);
	h = history_of(f->s.evs[3]);
	assert_int_equal(json_array_size(h), 2);
	assert_int_equal(json_integer_value(json_array_get(h, 0)), 1);
	assert_int_equal(json_integer_value(json_array_get(h, 1)), 2);
	/* fleetd misses seq 2: it goes again, then the final */
	assert_int_equal(agent_evq_ack(f->q, "j-1", 4, miss, 2, &resent, NULL),
			 0);
	assert_int_equal(resent, 1);
	assert_int_equal(agent_evq_unconfirmed(f->q), 1);
	assert_int_equal(agent_evq_next_due(f->q), 0);
	agent_evq_flush(f->q, 1, 1, &f->sink); /* room for one: seq 2 */
	assert_int_equal(f->s.n, 5);
	assert_int_equal(num(f->s.evs[4], "seq"), 2);
	assert_string_equal(str(f->s.evs[4], "state"), "installing");
	agent_evq_flush(f->q, 1, 10, &f->sink);
	assert_int_equal(f->s.n, 6);
	assert_int_equal(num(f->s.evs[5], "seq"), 4);
	/* all there now: the final and j-1's sent ones are forgotten */
	assert_int_equal(agent_evq_ack(f->q, "j-1", 4, NULL, 0, &resent, NULL),
			 0);
	assert_int_equal(resent, 0);
	assert_int_equal(agent_evq_unconfirmed(f->q), 0);
	assert_int_equal(agent_evq_sent(f->q), 1); /* j-2's */
	agent_evq_free(f->q);
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &f->q, NULL), 0);
	assert_int_equal(agent_evq_sent(f->q), 1);
	assert_int_equal(agent_evq_unconfirmed(f->q), 0);
}

/* fleetd that keeps missing an event: AGENT_EVQ_REPAIRS_MAX rounds, then
 * the ack is taken as it is.  A full list drops a job's older event of
 * the same state first (a download's progress), else the oldest. */
static void test_repairs_and_cap(void **state)
{
	struct fx *f = *state;
	static const uint64_t miss[] = {1};
	size_t resent = 0;
	int i;

	send_one(f, "j-1", "queued", 0); /* seq 1 */
	add_final(f, "j-1", 2);
	for (i = 0; i < AGENT_EVQ_REPAIRS_MAX; i++) {
		assert_int_equal(
		    agent_evq_ack(f->q, "j-1", 2, miss, 1, &resent, NULL), 0);
		assert_int_equal(resent, 1);
	}
	assert_int_equal(agent_evq_ack(f->q, "j-1", 2, miss, 1, &resent, NULL),
			 0);
	assert_int_equal(resent, 0);
	assert_int_equal(agent_evq_unconfirmed(f->q), 0);
	assert_int_equal(agent_evq_sent(f->q), 0);
	send_one(f, "j-3", "queued", 0);
	for (i = 0; i < AGENT_EVQ_SENT_MAX + 10; i++)
		send_one(f, "j-3", "downloading", i);
	assert_int_equal(agent_evq_sent(f->q), AGENT_EVQ_SENT_MAX);
	sent_clear(&f->s);
	add_final(f, "j-3", 1000);
	agent_evq_flush(f->q, 0, 10, &f->sink);
	/* "queued" (seq 2) kept, the newest downloads after it */
	assert_int_equal(
	    json_integer_value(json_array_get(history_of(f->s.evs[0]), 0)), 2);
	assert_int_equal(
	    json_integer_value(json_array_get(history_of(f->s.evs[0]), 1)),
	    3 + (AGENT_EVQ_SENT_MAX + 10) - (AGENT_EVQ_SENT_MAX - 1));
	assert_int_equal(json_array_size(history_of(f->s.evs[0])),
			 AGENT_EVQ_SENT_MAX);
}

static void write_file(struct fx *f, const char *text)
{
	assert_int_equal(fl_write_atomic_str(f->path, text, 0600, NULL), 0);
}

/* Caps and checks on the file: corrupt ones are refused as a whole. */
static void test_bad_files(void **state)
{
	struct fx *f = *state;
	struct agent_evq *q = NULL;
	struct fl_error err = {0};
	static const char *const bad[] = {
	    "[]",
	    "{\"events\": 1}",
	    "{\"events\": [1]}",
	    "{\"events\": [{\"seq\": 1, \"job\": \"j-1\"}]}",
	    "{\"events\": [{\"seq\": 1, \"job\": \"j-1\", \"state\": "
	    "\"downloading\"}]}",
	    "{\"events\": [{\"seq\": 0, \"job\": \"j-1\", \"state\": "
	    "\"failed\"}]}",
	    "{\"events\": [{\"seq\": 1, \"job\": \"j/1\", \"state\": "
	    "\"failed\"}]}",
	    "{\"events\": [{\"seq\": \"1\", \"job\": \"j-1\", \"state\": "
	    "\"failed\"}]}",
	    "{\"events\": [",
	    /* kept progress: an array of non-final events */
	    "{\"events\": [], \"sent\": {}}",
	    "{\"events\": [], \"sent\": [{\"seq\": 2, \"job\": \"j-1\", "
	    "\"state\": \"failed\"}]}",
	    "{\"events\": [], \"sent\": [{\"seq\": 2, \"job\": \"j-1\"}]}",
	};
	char *many;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		write_file(f, bad[i]);
		assert_int_not_equal(agent_evq_open(f->path, MIN_MS, &q, &err),
				     0);
		assert_null(q);
	}
	/* over the cap of events */
	many = fl_xstrdup("{\"events\": [");
	for (int i = 0; i <= AGENT_EVQ_FINALS_MAX; i++) {
		char *next = fl_xasprintf(
		    "%s%s{\"seq\": %d, \"job\": \"j-%d\", \"state\": "
		    "\"failed\"}",
		    many, i ? "," : "", i + 1, i);

		free(many);
		many = next;
	}
	{
		char *doc = fl_xasprintf("%s]}", many);

		write_file(f, doc);
		free(doc);
	}
	free(many);
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &q, &err), FL_ELIMIT);
	/* bad delays */
	assert_int_equal(agent_evq_open(f->path, 999, &q, &err), FL_EINVAL);
	assert_int_equal(
	    agent_evq_open(f->path, AGENT_EVQ_RETRY_MAX_MS + 1, &q, &err),
	    FL_EINVAL);
	/* a good one */
	write_file(f, "{\"version\": 1, \"events\": [{\"seq\": 3, \"job\": "
		      "\"j-1\", \"state\": \"rolled-back\"}]}");
	assert_int_equal(agent_evq_open(f->path, MIN_MS, &q, &err), 0);
	assert_int_equal(agent_evq_unconfirmed(q), 1);
	agent_evq_free(q);
}

static void test_final_states(void **state)
{
	static const char *const yes[] = {"succeeded", "failed", "rolled-back",
					  "cancelled", "expired"};
	static const char *const no[] = {
	    "queued",	 "downloading",	 "verifying", "installing", "installed",
	    "rebooting", "health-check", "",	      "Failed"};

	for (size_t i = 0; i < FL_ARRAY_SIZE(yes); i++)
		assert_true(agent_evq_state_final(yes[i]));
	for (size_t i = 0; i < FL_ARRAY_SIZE(no); i++)
		assert_false(agent_evq_state_final(no[i]));
	assert_false(agent_evq_state_final(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_final_states),
	    cmocka_unit_test_setup_teardown(test_progress_coalesced, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_final_drops_progress, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_final_until_ack, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_persisted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sent_until_history_confirmed,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repairs_and_cap, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
