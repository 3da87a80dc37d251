/* SPDX-License-Identifier: MIT */
/*
 * server-stub/rollout_rules: the gate (a table of counts and whether it
 * trips, boundaries included), the gate from a rollout's counts with
 * what a resume accepted, the verdict on each kind of watched row, and
 * which devices need a rollback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rollout_rules.h"
#include "util.h"

static void test_gate(void **state)
{
	static const struct {
		int64_t failed, finished, started, percent, min_sample;
		int64_t needed;
		bool tripped;
	} cases[] = {
	    /* nothing failed: never */
	    {0, 10, 10, 0, 1, 1, false},
	    {0, 0, 0, 10, 5, 0, false},
	    /* one canary of one fails: min(5, 1) = 1 finished is enough */
	    {1, 1, 1, 10, 5, 1, true},
	    /* wave 2 started: 5 devices, only 2 finished, 1 failed */
	    {1, 2, 5, 10, 5, 5, false},
	    {1, 5, 5, 10, 5, 5, true},
	    /* exactly at the threshold is not over it */
	    {1, 10, 10, 10, 5, 5, false},
	    {2, 10, 10, 10, 5, 5, true},
	    {1, 9, 10, 10, 5, 5, true},
	    /* zero tolerance: the first failure trips once sampled */
	    {1, 100, 100, 0, 1, 1, true},
	    {1, 1, 100, 0, 5, 5, false},
	    /* 100% never trips */
	    {10, 10, 10, 100, 1, 1, false},
	    /* the sample: min_sample over the started devices */
	    {3, 3, 50, 50, 4, 4, false},
	    {3, 4, 50, 50, 4, 4, true},
	};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		struct srv_rollout_gate g = {.failed = cases[i].failed,
					     .finished = cases[i].finished,
					     .started = cases[i].started,
					     .percent = cases[i].percent,
					     .min_sample = cases[i].min_sample};

		srv_rollout_gate_eval(&g);
		if (g.needed != cases[i].needed ||
		    g.tripped != cases[i].tripped)
			fail_msg("case %zu: needed %lld tripped %d", i,
				 (long long)g.needed, g.tripped);
	}
}

static void test_gate_of(void **state)
{
	struct srv_rollout_count counts[] = {
	    {0, "healthy", 1}, {0, "failed", 1},   {1, "commanded", 2},
	    {1, "failed", 1},  {1, "skipped", 3},  {1, "healthy", 2},
	    {1, "pending", 4}, {2, "pending", 50},
	};
	struct srv_rollout_count_list c = {FL_ARRAY_SIZE(counts), counts};
	struct srv_rollout_row r = {
	    .wave = 1, .fail_percent = 30, .min_sample = 20};
	struct srv_rollout_gate g;
	char text[200];

	(void)state;
	srv_rollout_gate_of(&r, &c, &g);
	assert_int_equal(g.failed, 2);
	assert_int_equal(g.finished, 5);
	assert_int_equal(g.started, 11); /* waves 0 and 1, not skipped */
	assert_int_equal(g.needed, 11);
	assert_false(g.tripped); /* 5 finished of the 11 needed */
	r.min_sample = 5;
	srv_rollout_gate_of(&r, &c, &g);
	assert_true(g.tripped); /* 40% > 30% */
	srv_rollout_gate_text(&g, text, sizeof(text));
	assert_string_equal(text, "gate tripped: 2 of 5 finished device(s) "
				  "failed (40% > 30%)");
	/* after a resume that accepted 2 failed of 4 finished */
	r.base_failed = 2;
	r.base_finished = 4;
	srv_rollout_gate_of(&r, &c, &g);
	assert_int_equal(g.failed, 0);
	assert_int_equal(g.finished, 1);
	assert_int_equal(g.started, 7);
	assert_false(g.tripped);
}

/* A commanded row of an online, active device on 1.0.0. */
static struct srv_rollout_watch_row row(const char *state)
{
	return (struct srv_rollout_watch_row){.device = "d",
					      .state = (char *)state,
					      .from_version = "1.0.0",
					      .job = "j-1",
					      .job_state = "queued",
					      .commanded = 100,
					      .sent = 100,
					      .dev_state = "active",
					      .dev_firmware = "1.0.0",
					      .dev_health = "ok",
					      .dev_online = true};
}

static struct srv_rollout_verdict judge(const struct srv_rollout_watch_row *w,
					int64_t now)
{
	struct srv_rollout_verdict v;

	srv_rollout_judge(w, "1.1.0", 60, now, 0, &v);
	return v;
}

static void test_judge_commanded(void **state)
{
	struct srv_rollout_watch_row w = row("commanded");
	struct srv_rollout_verdict v;

	(void)state;
	v = judge(&w, 110);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_false(v.resend);
	assert_int_equal(v.offline_since, -1);
	/* never sent (a crash after the decision): send it now */
	w.sent = 0;
	assert_true(judge(&w, 110).resend);
	/* sent, never answered: again after SRV_ROLLOUT_RESEND, online only */
	w.sent = 100;
	assert_false(judge(&w, 100 + SRV_ROLLOUT_RESEND - 1).resend);
	assert_true(judge(&w, 100 + SRV_ROLLOUT_RESEND).resend);
	w.dev_online = false;
	assert_false(judge(&w, 100 + SRV_ROLLOUT_RESEND).resend);
	w.dev_online = true;
	/* sent before fleetd's MQTT link came up (fleetd restarted): at
	 * once, and only then */
	srv_rollout_judge(&w, "1.1.0", 60, 110, 105, &v);
	assert_true(v.resend);
	srv_rollout_judge(&w, "1.1.0", 60, 110, 100, &v);
	assert_false(v.resend);
	srv_rollout_judge(&w, "1.1.0", 60, 110, -1, &v);
	assert_false(v.resend);
	w.dev_online = false;
	srv_rollout_judge(&w, "1.1.0", 60, 110, 105, &v);
	assert_false(v.resend);
	w.dev_online = true;
	w.job_seq = 3; /* it answered: never again */
	assert_false(judge(&w, 100 + 10 * SRV_ROLLOUT_RESEND).resend);
	srv_rollout_judge(&w, "1.1.0", 60, 110, 105, &v);
	assert_false(v.resend);
	/* final */
	w.job_final = true;
	w.job_state = "succeeded";
	assert_int_equal(judge(&w, 200).kind, SRV_VERDICT_UPDATED);
	w.job_state = "rolled-back";
	w.job_reason = "health check failed (exit 1): sensor bus";
	v = judge(&w, 200);
	assert_int_equal(v.kind, SRV_VERDICT_FAILED);
	assert_string_equal(v.reason, "update rolled-back: health check failed "
				      "(exit 1): sensor bus");
	w.job_state = "failed";
	w.job_stage = "verifying";
	w.job_reason = "bad signature";
	assert_string_equal(judge(&w, 200).reason,
			    "update failed at verifying: bad signature");
	w.job_state = "expired";
	w.job_stage = "queued";
	w.job_reason = "no result before its deadline";
	assert_int_equal(judge(&w, 200).kind, SRV_VERDICT_FAILED);
	/* decommissioned while its job is open */
	w = row("commanded");
	w.dev_state = "decommissioned";
	assert_int_equal(judge(&w, 200).kind, SRV_VERDICT_FAILED);
	w.job = NULL;
	w.dev_state = "active";
	assert_int_equal(judge(&w, 200).kind, SRV_VERDICT_FAILED);
}

static void test_judge_watch(void **state)
{
	struct srv_rollout_watch_row w = row("updated");
	struct srv_rollout_verdict v;

	(void)state;
	w.finished = 1000;
	w.dev_firmware = "1.1.0";
	assert_int_equal(judge(&w, 1059).kind, SRV_VERDICT_NONE);
	assert_int_equal(judge(&w, 1060).kind, SRV_VERDICT_HEALTHY);
	/* unhealthy, reverted, decommissioned: failed with the reason */
	w.dev_health = "failed";
	v = judge(&w, 1010);
	assert_int_equal(v.kind, SRV_VERDICT_FAILED);
	assert_string_equal(v.reason, "reported unhealthy during its health "
				      "window");
	w.dev_health = "checking";
	assert_int_equal(judge(&w, 1010).kind, SRV_VERDICT_NONE);
	w.dev_firmware = "1.0.0";
	assert_string_equal(judge(&w, 1010).reason,
			    "back on firmware 1.0.0 during its health window");
	w.dev_firmware = NULL; /* not reported: no judgement on it */
	assert_int_equal(judge(&w, 1010).kind, SRV_VERDICT_NONE);
	w.dev_firmware = "1.1.0";
	w.dev_state = "decommissioned";
	assert_int_equal(judge(&w, 1010).kind, SRV_VERDICT_FAILED);
	w.dev_state = "active";
	/* offline: tracked, failed only after the grace */
	w.dev_online = false;
	v = judge(&w, 1010);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, 1010);
	w.offline_since = 1010;
	v = judge(&w, 1010 + SRV_ROLLOUT_OFFLINE_GRACE - 1);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, -1);
	/* the window passed while offline (within the grace): not healthy
	 * yet */
	w.offline_since = 1040;
	assert_int_equal(judge(&w, 1061).kind, SRV_VERDICT_NONE);
	w.offline_since = 1010;
	v = judge(&w, 1010 + SRV_ROLLOUT_OFFLINE_GRACE);
	assert_int_equal(v.kind, SRV_VERDICT_FAILED);
	assert_string_equal(v.reason, "offline for 30s during its health "
				      "window");
	/* fleetd's MQTT link down: presence is not learnt, offline means
	 * nothing (neither fails nor is tracked) */
	srv_rollout_judge(&w, "1.1.0", 60, 1010 + SRV_ROLLOUT_OFFLINE_GRACE, -1,
			  &v);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, -1);
	w.offline_since = 0;
	srv_rollout_judge(&w, "1.1.0", 60, 1010, -1, &v);
	assert_int_equal(v.offline_since, -1);
	w.offline_since = 1010;
	/* the link came back at 1025 (fleetd restarted, or its broker):
	 * the grace counts from then, not from 1010 */
	srv_rollout_judge(&w, "1.1.0", 60, 1010 + SRV_ROLLOUT_OFFLINE_GRACE,
			  1025, &v);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, -1);
	srv_rollout_judge(&w, "1.1.0", 60, 1025 + SRV_ROLLOUT_OFFLINE_GRACE - 1,
			  1025, &v);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	srv_rollout_judge(&w, "1.1.0", 60, 1025 + SRV_ROLLOUT_OFFLINE_GRACE,
			  1025, &v);
	assert_int_equal(v.kind, SRV_VERDICT_FAILED);
	assert_string_equal(v.reason, "offline for 30s during its health "
				      "window");
	/* a link up since before the device went offline changes nothing */
	srv_rollout_judge(&w, "1.1.0", 60, 1010 + SRV_ROLLOUT_OFFLINE_GRACE,
			  900, &v);
	assert_int_equal(v.kind, SRV_VERDICT_FAILED);
	/* back online within the grace: cleared */
	w.dev_online = true;
	v = judge(&w, 1020);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, 0);
	/* healthy rows are watched through the soak, never "healthy" again */
	w = row("healthy");
	w.finished = 1000;
	w.dev_firmware = "1.1.0";
	assert_int_equal(judge(&w, 5000).kind, SRV_VERDICT_NONE);
	w.dev_firmware = "1.0.0";
	assert_string_equal(judge(&w, 5000).reason,
			    "back on firmware 1.0.0 during the soak");
	/* rows in other states: nothing */
	w = row("pending");
	assert_int_equal(judge(&w, 5000).kind, SRV_VERDICT_NONE);
	w = row("failed");
	w.dev_online = false;
	v = judge(&w, 5000);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_int_equal(v.offline_since, -1);
}

static void test_judge_rollback(void **state)
{
	struct srv_rollout_watch_row w = row("rolling-back");
	struct srv_rollout_verdict v;

	(void)state;
	w.rb_job = "j-rb";
	w.rb_state = "queued";
	w.sent = 0;
	v = judge(&w, 200);
	assert_int_equal(v.kind, SRV_VERDICT_NONE);
	assert_true(v.resend);
	w.sent = 200;
	w.rb_seq = 0;
	assert_true(judge(&w, 200 + SRV_ROLLOUT_RESEND).resend);
	w.job_seq = 5; /* the update job's answers do not count */
	assert_true(judge(&w, 200 + SRV_ROLLOUT_RESEND).resend);
	w.rb_final = true;
	w.rb_state = "succeeded";
	assert_int_equal(judge(&w, 300).kind, SRV_VERDICT_ROLLED_BACK);
	w.rb_state = "failed";
	w.rb_stage = "queued";
	w.rb_reason = "slot b is not known good";
	v = judge(&w, 300);
	assert_int_equal(v.kind, SRV_VERDICT_ROLLBACK_FAILED);
	assert_string_equal(v.reason, "rollback failed at queued: slot b is "
				      "not known good");
}

static void test_needs_rollback(void **state)
{
	struct srv_rollout_watch_row w;

	(void)state;
	w = row("healthy");
	w.dev_firmware = "1.1.0";
	assert_true(srv_rollout_needs_rollback(&w, "1.1.0"));
	w.dev_firmware = NULL;
	assert_true(srv_rollout_needs_rollback(&w, "1.1.0"));
	w.dev_firmware = "1.0.0"; /* back on its old version by itself */
	assert_false(srv_rollout_needs_rollback(&w, "1.1.0"));
	w = row("updated");
	w.dev_firmware = "1.1.0";
	assert_true(srv_rollout_needs_rollback(&w, "1.1.0"));
	/* failed: only when its update took */
	w = row("failed");
	w.job_state = "rolled-back";
	assert_false(srv_rollout_needs_rollback(&w, "1.1.0"));
	w.job_state = "succeeded";
	w.dev_firmware = "1.1.0";
	assert_true(srv_rollout_needs_rollback(&w, "1.1.0"));
	w.dev_firmware = "1.0.0";
	assert_false(srv_rollout_needs_rollback(&w, "1.1.0"));
	w.job_state = "expired"; /* timed out, yet it runs the new version */
	w.dev_firmware = "1.1.0";
	assert_true(srv_rollout_needs_rollback(&w, "1.1.0"));
	/* never touched, or already handled */
	static const char *const no[] = {
	    "pending",	    "commanded",   "skipped",	     "cancelled",
	    "rolling-back", "rolled-back", "rollback-failed"};
	for (size_t i = 0; i < FL_ARRAY_SIZE(no); i++) {
		w = row(no[i]);
		w.dev_firmware = "1.1.0";
		w.job_state = "succeeded";
		assert_false(srv_rollout_needs_rollback(&w, "1.1.0"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gate),
	    cmocka_unit_test(test_gate_of),
	    cmocka_unit_test(test_judge_commanded),
	    cmocka_unit_test(test_judge_watch),
	    cmocka_unit_test(test_judge_rollback),
	    cmocka_unit_test(test_needs_rollback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
