/* SPDX-License-Identifier: MIT */
/*
 * server-stub/diag: fleetd's diag relay table with time passed in.
 * Replies are matched by correlation id and device; unknown, late,
 * stray and repeated ones are ignored; calls time out at their deadline;
 * the bounds refuse; a fan-out of many devices stays cheap.  And the
 * request checks of diag_svc.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag_relay.h"
#include "diag_svc.h"
#include "json.h"
#include "util.h"


static const struct srv_diag_limits lim = {
    .max_calls = 4, .max_per_caller = 2, .max_bytes = 4096};

/* What the done callbacks saw. */
struct seen {
	int done;
	struct srv_diag_call *last;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void on_done(struct srv_diag_call *c, void *arg)
{
	struct seen *s = arg;

	/* it left the table before done ran (checked first: once done
	 * tells, the waiting test may free the call) */
	assert_false(c->in_table);
	pthread_mutex_lock(&s->lock);
	s->done++;
	s->last = c;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static struct seen *seen_new(void)
{
	struct seen *s = fl_xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	return s;
}

static void seen_free(struct seen *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* A call of @caller over devices "d0".."d(n-1)", begun at @now. */
static struct srv_diag_call *call(struct srv_diag *d, struct seen *s,
				  const char *caller, size_t n, int64_t now,
				  int64_t timeout_ms)
{
	struct srv_diag_call *c =
	    srv_diag_call_new(caller, "ping", n, on_done, s);

	for (size_t i = 0; i < n; i++)
		snprintf(c->t[i].device, sizeof(c->t[i].device), "d%zu", i);
	assert_int_equal(srv_diag_begin(d, c, now, timeout_ms),
			 SRV_DIAG_ADMITTED);
	return c;
}

static enum srv_diag_match reply(struct srv_diag *d,
				 const struct srv_diag_call *c,
				 const char *device, const char *text,
				 int64_t now)
{
	return srv_diag_reply(d, device, c->corr, sizeof(c->corr), text,
			      strlen(text), now);
}

static const char ok_reply[] =
    "{\"check\":\"ping\",\"ok\":true,\"elapsed_ms\":3,"
    "\"result\":{\"pong\":true}}";

static const struct srv_diag_target *target(const struct srv_diag_call *c,
					    const char *device)
{
	for (size_t i = 0; i < c->n; i++)
		if (fl_streq(c->t[i].device, device))
			return &c->t[i];
	fail_msg("no target %s", device);
	return NULL;
}

/* One device answers: the call completes once, with the reply. */
static void test_round_trip(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c = call(d, s, "token:a", 1, 1000, 5000);
	struct srv_diag_stats st;

	(void)state;
	assert_true(c->t[0].ask);
	assert_int_equal(c->deadline_ms, 6000);
	assert_int_equal(reply(d, c, "d0", ok_reply, 1010), SRV_DIAG_MATCHED);
	assert_int_equal(s->done, 1);
	assert_ptr_equal(s->last, c);
	assert_int_equal(c->t[0].state, SRV_DIAG_ANSWERED);
	assert_true(json_is_true(
	    json_object_get(json_object_get(c->t[0].reply, "result"), "pong")));
	assert_int_equal(c->t[0].reply_ms, 1010);
	assert_false(c->stopped);
	srv_diag_stats(d, &st);
	assert_int_equal(st.calls, 0);
	assert_int_equal(st.replies, 1);
	/* the same reply again, now late: nothing changes */
	assert_int_equal(reply(d, c, "d0", ok_reply, 1020), SRV_DIAG_UNKNOWN);
	assert_int_equal(s->done, 1);
	/* a completed call no longer needs its table (support bundles
	 * keep theirs until after the relay is gone) */
	assert_null(c->d);
	srv_diag_free(d);
	srv_diag_call_free(c);
	seen_free(s);
}

/* Replies that match nothing are ignored and counted: an unknown id, a
 * short id, a device the call did not ask, a second answer. */
static void test_ignored_replies(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c = call(d, s, "token:a", 2, 0, 5000);
	unsigned char other[SRV_DIAG_CORR_LEN];
	struct srv_diag_stats st;

	(void)state;
	memcpy(other, c->corr, sizeof(other));
	other[0] ^= 1;
	assert_int_equal(srv_diag_reply(d, "d0", other, sizeof(other), ok_reply,
					strlen(ok_reply), 1),
			 SRV_DIAG_UNKNOWN);
	assert_int_equal(
	    srv_diag_reply(d, "d0", c->corr, 8, ok_reply, strlen(ok_reply), 1),
	    SRV_DIAG_UNKNOWN);
	assert_int_equal(reply(d, c, "d7", ok_reply, 1), SRV_DIAG_STRANGER);
	assert_int_equal(reply(d, c, "", ok_reply, 1), SRV_DIAG_STRANGER);
	assert_int_equal(reply(d, c, "d0", ok_reply, 2), SRV_DIAG_MATCHED);
	assert_int_equal(reply(d, c, "d0", "{\"ok\":false}", 3),
			 SRV_DIAG_REPEATED);
	assert_int_equal(target(c, "d0")->state, SRV_DIAG_ANSWERED);
	assert_int_equal(s->done, 0);
	srv_diag_stats(d, &st);
	assert_int_equal(st.ignored, 5);
	assert_int_equal(st.replies, 1);
	assert_int_equal(reply(d, c, "d1", ok_reply, 4), SRV_DIAG_MATCHED);
	assert_int_equal(s->done, 1);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* Nothing happens before the deadline; at it the silent devices time
 * out, and a reply after it is late. */
static void test_timeout(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c = call(d, s, "token:a", 2, 1000, 2000);

	(void)state;
	assert_int_equal(reply(d, c, "d1", ok_reply, 1500), SRV_DIAG_MATCHED);
	srv_diag_expire(d, 2999);
	assert_int_equal(s->done, 0);
	srv_diag_expire(d, 3000);
	assert_int_equal(s->done, 1);
	assert_int_equal(target(c, "d0")->state, SRV_DIAG_TIMED_OUT);
	assert_int_equal(target(c, "d1")->state, SRV_DIAG_ANSWERED);
	assert_int_equal(reply(d, c, "d0", ok_reply, 3001), SRV_DIAG_UNKNOWN);
	assert_int_equal(target(c, "d0")->state, SRV_DIAG_TIMED_OUT);
	srv_diag_expire(d, 9000);
	assert_int_equal(s->done, 1);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* What a reply says decides the state; garbage fails with a reason. */
static void test_reply_contents(void **state)
{
	static const struct {
		const char *text;
		enum srv_diag_state want;
		bool kept;
	} cases[] = {
	    {"{\"check\":\"ping\",\"ok\":false,\"error\":\"unknown check "
	     "'x'\",\"code\":\"unknown-check\"}",
	     SRV_DIAG_FAILED, true},
	    {"not json", SRV_DIAG_FAILED, false},
	    {"[1,2]", SRV_DIAG_FAILED, false},
	    {"{\"check\":\"ping\"}", SRV_DIAG_FAILED, false},
	    {"{\"ok\":\"yes\"}", SRV_DIAG_FAILED, false},
	    {"{\"check\":\"sysinfo\",\"ok\":true}", SRV_DIAG_FAILED, false},
	    {"{\"ok\":true}", SRV_DIAG_ANSWERED, true},
	};
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		struct srv_diag_call *c = call(d, s, "token:a", 1, 0, 1000);

		assert_int_equal(reply(d, c, "d0", cases[i].text, 1),
				 SRV_DIAG_MATCHED);
		assert_int_equal(c->t[0].state, cases[i].want);
		assert_int_equal(c->t[0].reply != NULL, cases[i].kept);
		assert_int_equal(c->t[0].error != NULL, !cases[i].kept);
		srv_diag_call_free(c);
	}
	assert_int_equal(s->done, (int)FL_ARRAY_SIZE(cases));
	srv_diag_free(d);
	seen_free(s);
}

/* A call keeps at most max_bytes of replies; the states stay right. */
static void test_reply_bytes_cap(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c = call(d, s, "token:a", 3, 0, 1000);
	char *big = fl_xasprintf("{\"ok\":true,\"result\":\"%03000d\"}", 0);

	(void)state;
	assert_int_equal(reply(d, c, "d0", big, 1), SRV_DIAG_MATCHED);
	assert_int_equal(reply(d, c, "d1", big, 1), SRV_DIAG_MATCHED);
	assert_non_null(target(c, "d0")->reply);
	assert_null(target(c, "d1")->reply);
	assert_int_equal(target(c, "d1")->state, SRV_DIAG_ANSWERED);
	assert_non_null(target(c, "d1")->error);
	assert_true(c->bytes <= lim.max_bytes);
	assert_int_equal(reply(d, c, "d2", ok_reply, 1), SRV_DIAG_MATCHED);
	assert_non_null(target(c, "d2")->reply);
	free(big);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* The bounds: per caller, in all, after stop; bad calls. */
static void test_caps(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c[4], *x;

	(void)state;
	c[0] = call(d, s, "token:a", 1, 0, 1000);
	c[1] = call(d, s, "token:a", 1, 0, 1000);
	x = srv_diag_call_new("token:a", "ping", 1, on_done, s);
	fl_strlcpy(x->t[0].device, "d0", sizeof(x->t[0].device));
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_CALLER_BUSY);
	c[2] = call(d, s, "token:b", 1, 0, 1000);
	c[3] = call(d, s, "token:c", 1, 0, 1000);
	fl_strlcpy(x->caller, "token:d", sizeof(x->caller));
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_FULL);
	/* one completes: room again */
	assert_int_equal(reply(d, c[0], "d0", ok_reply, 1), SRV_DIAG_MATCHED);
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_ADMITTED);
	srv_diag_call_free(x); /* taken out of the table, done not run */
	assert_int_equal(s->done, 1);
	for (int i = 0; i < 4; i++)
		srv_diag_call_free(c[i]);
	/* a device named twice, no device at all */
	x = srv_diag_call_new("token:a", "ping", 2, on_done, s);
	fl_strlcpy(x->t[0].device, "d0", sizeof(x->t[0].device));
	fl_strlcpy(x->t[1].device, "d0", sizeof(x->t[1].device));
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_BAD_CALL);
	srv_diag_call_free(x);
	x = srv_diag_call_new("token:a", "ping", 0, on_done, s);
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_BAD_CALL);
	srv_diag_call_free(x);
	srv_diag_stop(d);
	x = srv_diag_call_new("token:a", "ping", 1, on_done, s);
	fl_strlcpy(x->t[0].device, "d0", sizeof(x->t[0].device));
	assert_int_equal(srv_diag_begin(d, x, 0, 1000), SRV_DIAG_STOPPING);
	srv_diag_call_free(x);
	assert_int_equal(s->done, 1);
	srv_diag_free(d);
	seen_free(s);
}

/* Offline targets are never asked; a call with nobody to ask completes
 * in srv_diag_begin and takes no room. */
static void test_offline_targets(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c =
	    srv_diag_call_new("token:a", "ping", 3, on_done, s);
	struct srv_diag_stats st;

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(c->t[i].device, sizeof(c->t[i].device), "d%d", 2 - i);
		c->t[i].state = SRV_DIAG_OFFLINE;
	}
	c->t[0].state = SRV_DIAG_PENDING; /* d2 */
	assert_int_equal(srv_diag_begin(d, c, 0, 1000), SRV_DIAG_ADMITTED);
	assert_string_equal(c->t[0].device, "d0"); /* sorted */
	assert_false(target(c, "d0")->ask);
	assert_true(target(c, "d2")->ask);
	assert_int_equal(reply(d, c, "d0", ok_reply, 1), SRV_DIAG_REPEATED);
	assert_int_equal(reply(d, c, "d2", ok_reply, 1), SRV_DIAG_MATCHED);
	assert_int_equal(target(c, "d0")->state, SRV_DIAG_OFFLINE);
	srv_diag_call_free(c);

	c = srv_diag_call_new("token:a", "ping", 2, on_done, s);
	for (int i = 0; i < 2; i++) {
		snprintf(c->t[i].device, sizeof(c->t[i].device), "d%d", i);
		c->t[i].state = SRV_DIAG_OFFLINE;
	}
	assert_int_equal(srv_diag_begin(d, c, 0, 1000), SRV_DIAG_ADMITTED);
	assert_int_equal(s->done, 2);
	srv_diag_stats(d, &st);
	assert_int_equal(st.calls, 0);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* A request that could not be sent fails its target; the last one
 * completes the call. */
static void test_send_failure(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c = call(d, s, "token:a", 2, 0, 1000);

	(void)state;
	srv_diag_fail(d, c, 0, "publish refused", 1);
	assert_int_equal(s->done, 0);
	assert_int_equal(c->t[0].state, SRV_DIAG_FAILED);
	assert_string_equal(c->t[0].error, "publish refused");
	srv_diag_fail(d, c, 1, "publish refused", 1);
	assert_int_equal(s->done, 1);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* Stop completes every waiting call (stopped, pending timed out). */
static void test_stop(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *a = call(d, s, "token:a", 1, 0, 100000);
	struct srv_diag_call *b = call(d, s, "token:b", 2, 0, 100000);

	(void)state;
	assert_int_equal(reply(d, b, "d1", ok_reply, 1), SRV_DIAG_MATCHED);
	srv_diag_stop(d);
	assert_int_equal(s->done, 2);
	assert_true(a->stopped && b->stopped);
	assert_int_equal(a->t[0].state, SRV_DIAG_TIMED_OUT);
	assert_int_equal(target(b, "d1")->state, SRV_DIAG_ANSWERED);
	assert_int_equal(reply(d, b, "d0", ok_reply, 2), SRV_DIAG_UNKNOWN);
	srv_diag_call_free(a);
	srv_diag_call_free(b);
	srv_diag_free(d);
	seen_free(s);
}

/* A fan-out of @n devices answered in a shuffled order: every reply
 * matches its own target.  Returns the milliseconds it took. */
static int64_t fanout_ms(size_t n)
{
	struct srv_diag_limits big = lim;
	struct srv_diag *d;
	struct seen *s = seen_new();
	struct srv_diag_call *c;
	int64_t t0;
	char dev[24];

	big.max_bytes = SRV_DIAG_CALL_BYTES;
	d = srv_diag_new(&big);
	t0 = fl_now_ms();
	c = call(d, s, "token:a", n, 0, 60000);
	for (size_t i = 0; i < n; i++) {
		/* 7919 is a prime that divides none of the sizes: a
		 * permutation of 0..n-1 */
		snprintf(dev, sizeof(dev), "d%zu", (i * 7919) % n);
		assert_int_equal(reply(d, c, dev, ok_reply, 1),
				 SRV_DIAG_MATCHED);
	}
	t0 = fl_now_ms() - t0;
	assert_int_equal(s->done, 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->t[i].state, SRV_DIAG_ANSWERED);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
	return t0;
}

/* A fan-out to 40,000 devices: every reply, in a scrambled order, matches
 * its device once and the call ends answered.  How its time grows is a
 * speed figure, so it is bench/diag.sh's (fan-out to 10,000 through
 * fleetd against its limit), not an assertion here: the time is printed
 * for information only. */
static void test_fanout_large(void **state)
{
	(void)state;
	print_message("fan-out: 40,000 replies in %lld ms\n",
		      (long long)fanout_ms(40000));
}

/* The timer thread expires a call on time, without anyone calling
 * srv_diag_expire. */
static void test_timer(void **state)
{
	struct srv_diag *d = srv_diag_new(&lim);
	struct seen *s = seen_new();
	struct srv_diag_call *c;
	struct timespec until;

	(void)state;
	assert_int_equal(srv_diag_start_timer(d, NULL), 0);
	c = call(d, s, "token:a", 1, fl_now_ms(), 50);
	fl_deadline(&until, 5000);
	pthread_mutex_lock(&s->lock);
	while (!s->done &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
		;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(s->done, 1);
	assert_int_equal(c->t[0].state, SRV_DIAG_TIMED_OUT);
	srv_diag_call_free(c);
	srv_diag_free(d);
	seen_free(s);
}

/* What a request may hold (docs/protocol.md "Diagnostics"). */
static void test_request_checks(void **state)
{
	static const struct {
		const char *json;
		int rc;
	} cases[] = {
	    {"{\"check\":\"ping\"}", 0},
	    {"{\"check\":\"logs\",\"args\":[\"agent\",\"50\"],"
	     "\"timeout_s\":300}",
	     0},
	    {"{\"check\":\"Ping\"}", FL_EINVAL},
	    {"{\"check\":\"\"}", FL_EINVAL},
	    {"{\"check\":\"a/b\"}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"timeout_s\":0}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"timeout_s\":301}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"args\":\"x\"}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"args\":[1]}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"args\":[\"a\\u0000b\"]}", FL_EINVAL},
	    {"{\"check\":\"ping\",\"extra\":1}", FL_EINVAL},
	    {"{\"args\":[]}", FL_EINVAL},
	};
	struct fl_error err = {0};
	struct srv_diag_req q;
	json_t *j;
	char *s;

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		j = json_loads(cases[i].json, JSON_ALLOW_NUL, NULL);
		assert_non_null(j);
		memset(&q, 0, sizeof(q));
		assert_int_equal(srv_diag_req_parse(j, NULL, 10, &q, &err),
				 cases[i].rc);
		srv_diag_req_release(&q);
		json_decref(j);
	}
	/* caps: 16 args, 256 bytes each, 2 KiB in all */
	j = json_pack("{s:s, s:[]}", "check", "x", "args");
	for (int i = 0; i < 17; i++)
		json_array_append_new(json_object_get(j, "args"),
				      json_string("a"));
	assert_int_equal(srv_diag_req_parse(j, NULL, 10, &q, &err), FL_ELIMIT);
	json_array_clear(json_object_get(j, "args"));
	s = fl_xasprintf("%0257d", 0);
	json_array_append_new(json_object_get(j, "args"), json_string(s));
	assert_int_equal(srv_diag_req_parse(j, NULL, 10, &q, &err), FL_ELIMIT);
	free(s);
	json_array_clear(json_object_get(j, "args"));
	s = fl_xasprintf("%0256d", 0);
	for (int i = 0; i < 9; i++)
		json_array_append_new(json_object_get(j, "args"),
				      json_string(s));
	assert_int_equal(srv_diag_req_parse(j, NULL, 10, &q, &err), FL_ELIMIT);
	free(s);
	/* the default timeout, and the one extra member allowed */
	json_object_set_new(j, "args", json_array());
	json_object_set_new(j, "target", json_object());
	assert_int_equal(srv_diag_req_parse(j, NULL, 10, &q, &err), FL_EINVAL);
	assert_int_equal(srv_diag_req_parse(j, "target", 7, &q, &err), 0);
	assert_int_equal(q.timeout_s, 7);
	assert_string_equal(q.check, "x");
	srv_diag_req_release(&q);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_ignored_replies),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_reply_contents),
	    cmocka_unit_test(test_reply_bytes_cap),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_offline_targets),
	    cmocka_unit_test(test_send_failure),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_fanout_large),
	    cmocka_unit_test(test_timer),
	    cmocka_unit_test(test_request_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
