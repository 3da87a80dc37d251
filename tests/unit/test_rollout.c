/* SPDX-License-Identifier: MIT */
/*
 * common/rollout: the operator moves (every state and action pair
 * against the table below, which is the specification), the state and
 * action names, and the wave stops: parsing, canonical text, the rules
 * of a list, rounding and coverage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rollout.h"
#include "util.h"

/* The legal moves: "action from -> to". */
static const char *const legal[] = {
	"pause running paused",
	"resume paused running",
	"abort running aborted",
	"abort paused aborted",
	"rollback running rolling-back",
	"rollback paused rolling-back",
	"rollback completed rolling-back",
};

static const char *legal_target(const char *action, const char *from)
{
	static char to[32];
	char a[32], f[32];

	for (size_t i = 0; i < FL_ARRAY_SIZE(legal); i++) {
		assert_int_equal(sscanf(legal[i], "%31s %31s %31s", a, f, to),
				 3);
		if (strcmp(a, action) == 0 && strcmp(f, from) == 0)
			return to;
	}
	return NULL;
}

/* Every state and action, the unknown ones (0, END) included. */
static void test_every_move(void **state)
{
	size_t ok = 0;

	(void)state;
	for (int s = 0; s <= FL_ROLLOUT_STATE_END; s++)
		for (int a = 0; a <= FL_ROLLOUT_ACTION_END; a++) {
			enum fl_rollout_state got = fl_rollout_action_target(
				(enum fl_rollout_state)s,
				(enum fl_rollout_action)a);
			const char *want = legal_target(
				fl_rollout_action_name((enum fl_rollout_action)a),
				fl_rollout_state_name((enum fl_rollout_state)s));

			if (!want) {
				if (got)
					fail_msg("%s from %s is legal",
						 fl_rollout_action_name(a),
						 fl_rollout_state_name(s));
				continue;
			}
			assert_string_equal(fl_rollout_state_name(got), want);
			ok++;
		}
	assert_int_equal(ok, FL_ARRAY_SIZE(legal));
}

static void test_names(void **state)
{
	static const char *const states[] = {"running",	    "paused",
					     "rolling-back", "rolled-back",
					     "completed",   "aborted"};
	static const char *const actions[] = {"pause", "resume", "abort",
					      "rollback"};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(states); i++) {
		enum fl_rollout_state s = fl_rollout_state_parse(states[i]);

		assert_int_equal(s, (int)i + 1);
		assert_string_equal(fl_rollout_state_name(s), states[i]);
		assert_int_equal(fl_rollout_state_final(s),
				 i >= 3); /* rolled-back, completed, aborted */
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(actions); i++) {
		enum fl_rollout_action a = fl_rollout_action_parse(actions[i]);

		assert_int_equal(a, (int)i + 1);
		assert_string_equal(fl_rollout_action_name(a), actions[i]);
	}
	assert_int_equal(fl_rollout_state_parse("Running"), 0);
	assert_int_equal(fl_rollout_state_parse(NULL), 0);
	assert_int_equal(fl_rollout_state_parse(""), 0);
	assert_int_equal(fl_rollout_action_parse("stop"), 0);
	assert_string_equal(fl_rollout_state_name(0), "unknown");
	assert_string_equal(fl_rollout_state_name(FL_ROLLOUT_STATE_END),
			    "unknown");
	assert_string_equal(fl_rollout_action_name(99), "unknown");
	assert_false(fl_rollout_state_final(FL_ROLLOUT_ROLLING_BACK));
	assert_false(fl_rollout_state_final(0));
}

static void test_stop_parse(void **state)
{
	static const struct {
		const char *in;
		bool percent;
		uint32_t value;
		const char *text;
	} good[] = {
		{"2%", true, 200, "2%"},	 {"100%", true, 10000, "100%"},
		{"0.01%", true, 1, "0.01%"},	 {"2.5%", true, 250, "2.5%"},
		{"12.25%", true, 1225, "12.25%"}, {"2.50%", true, 250, "2.5%"},
		{"002%", true, 200, "2%"},	 {"1", false, 1, "1"},
		{"5", false, 5, "5"},		 {"1000000", false, 1000000, "1000000"},
		{"007", false, 7, "7"},
	};
	static const char *const bad[] = {
		"",	 "%",	 "0%",	   "0",	      "0.00%", "100.01%", "101%",
		"-1",	 "+1",	 "1e3",	   " 5",      "5 ",    "5%%",	  "2.%",
		".5%",	 "2.555%", "1000001", "1.5",  "x",     "5x",	  "%5",
		"1000%", "99999999999999999999",      "2,5%",
	};
	struct fl_error err = {0};
	struct fl_wave_stop w;
	char buf[FL_WAVE_STOP_TEXT];

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(good); i++) {
		assert_int_equal(fl_wave_stop_parse(good[i].in, &w, NULL), 0);
		assert_int_equal(w.percent, good[i].percent);
		assert_int_equal(w.value, good[i].value);
		fl_wave_stop_format(&w, buf);
		assert_string_equal(buf, good[i].text);
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		w = (struct fl_wave_stop){true, 77};
		if (fl_wave_stop_parse(bad[i], &w, NULL) != FL_EINVAL)
			fail_msg("'%s' is accepted", bad[i]);
		assert_int_equal(w.value, 77); /* untouched */
	}
	assert_int_equal(fl_wave_stop_parse(NULL, &w, &err), FL_EINVAL);
	assert_int_equal(fl_wave_stop_parse("0%", &w, &err), FL_EINVAL);
}

static void test_stops_parse(void **state)
{
	struct fl_wave_stop v[FL_WAVES_MAX];
	struct fl_error err = {0};
	char many[FL_WAVES_MAX * 8], buf[FL_WAVE_STOP_TEXT];
	size_t n = 0, o = 0;

	(void)state;
	assert_int_equal(fl_wave_stops_parse("2%,10%,50%,100%", v, &n, NULL),
			 0);
	assert_int_equal(n, 4);
	fl_wave_stop_format(&v[1], buf);
	assert_string_equal(buf, "10%");
	assert_int_equal(fl_wave_stops_parse("1,5,100%", v, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_false(v[0].percent);
	assert_true(v[2].percent);
	/* a count list: its coverage needs the target (fl_wave_stops_cover) */
	assert_int_equal(fl_wave_stops_parse("1,5", v, &n, NULL), 0);
	assert_int_equal(fl_wave_stops_parse("100%", v, &n, NULL), 0);
	/* mixed kinds grow within each kind */
	assert_int_equal(fl_wave_stops_parse("5,2%,10,100%", v, &n, NULL), 0);
	assert_int_equal(n, 4);

	n = 99;
	assert_int_equal(fl_wave_stops_parse("2%,10%,50%", v, &n, &err),
			 FL_EINVAL);
	assert_non_null(strstr(err.msg, "do not add up"));
	assert_int_equal(n, 99);
	assert_int_equal(fl_wave_stops_parse("10%,2%,100%", v, &n, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("10%,10%,100%", v, &n, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("5,5,100%", v, &n, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("5,3", v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("", v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse(NULL, v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse(",100%", v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("100%,", v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("2%,,100%", v, &n, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("2% ,100%", v, &n, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_wave_stops_parse("1234567890123456789%", v, &n,
					     NULL),
			 FL_EINVAL);
	/* FL_WAVES_MAX counts then 100% is one too many; FL_WAVES_MAX is fine */
	for (int i = 1; i < FL_WAVES_MAX; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%d,", i);
	snprintf(many + o, sizeof(many) - o, "100%%");
	assert_int_equal(fl_wave_stops_parse(many, v, &n, NULL), 0);
	assert_int_equal(n, FL_WAVES_MAX);
	snprintf(many + o, sizeof(many) - o, "%d,100%%", FL_WAVES_MAX);
	assert_int_equal(fl_wave_stops_parse(many, v, &n, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_check(v, 0, NULL), FL_EINVAL);
	assert_int_equal(fl_wave_stops_check(v, FL_WAVES_MAX + 1, NULL),
			 FL_EINVAL);
}

static void test_resolve(void **state)
{
	static const struct {
		const char *stop;
		size_t total, want;
	} cases[] = {
		{"2%", 50, 1},	   {"10%", 50, 5},     {"50%", 50, 25},
		{"100%", 50, 50},  {"2%", 3, 1},       {"10%", 3, 1},
		{"50%", 3, 2},	   {"33.33%", 3, 1},   {"33.34%", 3, 2},
		{"0.01%", 10000, 1}, {"0.01%", 10001, 2}, {"2%", 10000, 200},
		{"5", 3, 3},	   {"5", 50, 5},       {"1", 1, 1},
		{"100%", 0, 0},	   {"5", 0, 0},	       {"2%", 0, 0},
		{"1000000", 7, 7},
	};
	struct fl_wave_stop w;

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		assert_int_equal(fl_wave_stop_parse(cases[i].stop, &w, NULL), 0);
		if (fl_wave_stop_resolve(&w, cases[i].total) != cases[i].want)
			fail_msg("%s of %zu: %zu, want %zu", cases[i].stop,
				 cases[i].total,
				 fl_wave_stop_resolve(&w, cases[i].total),
				 cases[i].want);
	}
}

static void test_cover(void **state)
{
	struct fl_wave_stop v[FL_WAVES_MAX];
	struct fl_error err = {0};
	size_t n;

	(void)state;
	assert_int_equal(fl_wave_stops_parse("1,5", v, &n, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, n, 5, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, n, 4, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, n, 6, &err), FL_EINVAL);
	assert_non_null(strstr(err.msg, "do not add up"));
	assert_int_equal(fl_wave_stops_parse("1,100%", v, &n, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, n, 1000000, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, n, 0, NULL), 0);
	assert_int_equal(fl_wave_stops_cover(v, 0, 3, NULL), FL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_move),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_stop_parse),
		cmocka_unit_test(test_stops_parse),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_cover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
