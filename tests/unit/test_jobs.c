/* SPDX-License-Identifier: MIT */
/*
 * server-stub/jobs: the job state machine (issue 9 item 2).  Every pair
 * of states of every job type is checked against the table below, which
 * is the specification: docs/protocol.md and docs/ota.md in one place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jobs.h"
#include "proto.h"
#include "util.h"

/* Every state name there is, and a few there are not. */
static const char *const all_states[] = {
	"queued",    "downloading", "verifying",    "installing",
	"installed", "rebooting",   "health-check", "reverting",
	"succeeded", "failed",      "rolled-back",  "cancelled",
	"expired",   "bogus",	    "",		    NULL};

#define FINALS " succeeded failed rolled-back "

/* From each state, the states a device may move a job to. */
static const struct {
	const char *type, *from, *to;
} legal[] = {
	{"update", "queued",
	 " queued downloading verifying installing installed rebooting"
	 " health-check" FINALS},
	{"update", "downloading",
	 " downloading verifying installing installed rebooting"
	 " health-check" FINALS},
	{"update", "verifying",
	 " downloading verifying installing installed rebooting"
	 " health-check" FINALS},
	{"update", "installing",
	 " downloading verifying installing installed rebooting"
	 " health-check" FINALS},
	{"update", "installed", " installed rebooting health-check" FINALS},
	{"update", "rebooting", " rebooting health-check" FINALS},
	{"update", "health-check", " health-check" FINALS},
	{"rotate", "queued", " queued succeeded failed "},
};

static const char *const types[] = {"update", "rollback", "rotate", "diag",
				    NULL};

/* The legal moves out of @from for @type ("" when none).  A rollback is
 * "reported like an update" (docs/protocol.md). */
static const char *legal_from(const char *type, const char *from)
{
	if (strcmp(type, "rollback") == 0)
		type = "update";
	for (size_t i = 0; i < FL_ARRAY_SIZE(legal); i++)
		if (strcmp(legal[i].type, type) == 0 &&
		    strcmp(legal[i].from, from) == 0)
			return legal[i].to;
	return "";
}

static bool listed(const char *list, const char *state)
{
	char word[40];

	if (!*state || strlen(state) > 30)
		return false;
	snprintf(word, sizeof(word), " %s ", state);
	return strstr(list, word) != NULL;
}

/* Every (type, from, to) triple, legal and illegal, as the table says. */
static void test_every_pair(void **state)
{
	size_t checked = 0, ok = 0;

	(void)state;
	for (size_t t = 0; types[t]; t++)
		for (size_t f = 0; all_states[f]; f++)
			for (size_t n = 0; all_states[n]; n++) {
				const char *to = legal_from(types[t], all_states[f]);
				bool want = listed(to, all_states[n]);
				bool got = srv_job_transition_ok(
					types[t], all_states[f], all_states[n]);

				if (want != got)
					fail_msg("%s: %s -> %s: want %d, got %d",
						 types[t], all_states[f],
						 all_states[n], want, got);
				checked++;
				ok += got;
			}
	assert_int_equal(checked, 4 * 15 * 15);
	assert_int_equal(ok, 2 * (10 + 9 + 9 + 9 + 6 + 5 + 4) + 3);
}

static void test_null_arguments(void **state)
{
	(void)state;
	assert_false(srv_job_transition_ok(NULL, "queued", "failed"));
	assert_false(srv_job_transition_ok("update", NULL, "failed"));
	assert_false(srv_job_transition_ok("update", "queued", NULL));
	assert_false(fl_job_state_name_final(NULL));
	assert_false(srv_job_type_known(NULL));
	assert_null(srv_job_lane(NULL));
}

static void test_finals(void **state)
{
	static const char *const finals[] = {"succeeded", "failed",
					     "rolled-back", "cancelled",
					     "expired"};

	(void)state;
	for (size_t i = 0; all_states[i]; i++) {
		bool want = false;

		for (size_t k = 0; k < FL_ARRAY_SIZE(finals); k++)
			want |= strcmp(finals[k], all_states[i]) == 0;
		assert_int_equal(fl_job_state_name_final(all_states[i]), want);
	}
}

/* Update and rollback share the OTA lane; rotate has its own. */
static void test_lanes(void **state)
{
	const char *const *l;

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		l = srv_job_lane(types[t]);
		assert_non_null(l);
		assert_string_equal(l[0], "update");
		assert_string_equal(l[1], "rollback");
		assert_null(l[2]);
		assert_true(srv_job_type_known(types[t]));
	}
	l = srv_job_lane("rotate");
	assert_string_equal(l[0], "rotate");
	assert_null(l[1]);
	assert_null(srv_job_lane("diag"));
	assert_false(srv_job_type_known("diag"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_finals),
		cmocka_unit_test(test_lanes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
