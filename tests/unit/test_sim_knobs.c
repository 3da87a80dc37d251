/* SPDX-License-Identifier: MIT */
/*
 * agent/sim_knobs: fleet-sim's picks are a pure function of seed, knob
 * and device id (the same devices on every run; another seed or knob
 * picks others), hit about the share asked for, 0 and 100 exactly;
 * the jitter stays in its range; durations, percentages and device
 * ids parse as documented and refuse the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim_knobs.h"
#include "util.h"

#define N 10000

static void id_of(unsigned i, char buf[32])
{
	assert_int_equal(sim_device_id("sim", i, buf, 32, NULL), 0);
}

/* How many of sim-0001..sim-N @knob hits at @pct with @seed. */
static unsigned hits(uint64_t seed, const char *knob, unsigned pct)
{
	unsigned n = 0;
	char id[32];

	for (unsigned i = 1; i <= N; i++) {
		id_of(i, id);
		n += sim_pick(seed, knob, id, pct);
	}
	return n;
}

static void test_picks_deterministic(void **state)
{
	char id[32];
	unsigned same = 0;

	char picked[256] = "";

	/* fixed values: the picks must not change between versions, or a
	 * restarted simulator would move faults to other devices (and a
	 * test's or a demo's named devices would change) */
	assert_true(sim_hash(0, "fail", "sim-0001") ==
		    UINT64_C(15595625712499242288));
	for (unsigned i = 1; i <= 100; i++) {
		id_of(i, id);
		if (sim_pick(0, "fail", id, 10))
			snprintf(picked + strlen(picked),
				 sizeof(picked) - strlen(picked), "%s ", id);
	}
	assert_string_equal(picked, "sim-0004 sim-0018 sim-0051 sim-0053 "
				    "sim-0055 sim-0072 sim-0076 sim-0087 "
				    "sim-0092 sim-0099 ");
	/* t4902 names these */
	for (unsigned i = 1; i <= 6; i++) {
		id_of(i, id);
		assert_int_equal(sim_pick(0, "crash", id, 50), i == 1 || i == 6);
	}
	assert_int_not_equal(sim_hash(0, "fail", "sim-0001"),
			     sim_hash(1, "fail", "sim-0001"));
	assert_int_not_equal(sim_hash(0, "fail", "sim-0001"),
			     sim_hash(0, "crash", "sim-0001"));
	assert_int_not_equal(sim_hash(0, "fail", "sim-0001"),
			     sim_hash(0, "fail", "sim-0002"));
	/* the share asked for, within 1.5 points over 10,000 devices */
	for (unsigned pct = 5; pct <= 95; pct += 30) {
		unsigned h = hits(7, "fail", pct);

		assert_true(h >= pct * 100 - 150 && h <= pct * 100 + 150);
	}
	assert_int_equal(hits(7, "fail", 0), 0);
	assert_int_equal(hits(7, "fail", 100), N);
	/* a larger share keeps the devices a smaller one picked */
	for (unsigned i = 1; i <= N; i++) {
		id_of(i, id);
		if (sim_pick(3, "fail", id, 10))
			assert_true(sim_pick(3, "fail", id, 20));
	}
	/* another seed picks other devices: about 10% of 10% overlap */
	for (unsigned i = 1; i <= N; i++) {
		id_of(i, id);
		same += sim_pick(1, "fail", id, 10) && sim_pick(2, "fail", id, 10);
	}
	assert_true(same < 200);
}

static void test_spread(void **state)
{
	int64_t lo = INT64_MAX, hi = 0;

	for (uint64_t h = 0; h < 5000; h++) {
		int64_t v = sim_spread(sim_hash(h, "flap", "x"), 1000);

		assert_true(v >= 500 && v < 1500);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	assert_true(lo < 550 && hi > 1450); /* it does spread */
	assert_int_equal(sim_spread(12345, 0), 0);
}

static void test_parse(void **state)
{
	struct {
		const char *s;
		int64_t ms;
	} ok[] = {{"250ms", 250}, {"2s", 2000}, {"3", 3000},
		  {"1m", 60000}, {"2h", 7200000}, {"0", 0}};
	const char *bad[] = {"", "ms", "s", "-1s", "1.5s", "2d", "5y",
			     "1 s", "s1", "169h", NULL};
	int64_t v;
	unsigned p;
	static const char *const bad_rate[] = {"",    " 1",  "-1",  "1001",
					       "nan", "inf", "1x", "0x",
					       NULL};
	double r = 0;
	char id[32];

	for (size_t i = 0; i < FL_ARRAY_SIZE(ok); i++) {
		assert_int_equal(sim_parse_duration_ms(ok[i].s, &v, NULL), 0);
		assert_int_equal(v, ok[i].ms);
	}
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(sim_parse_duration_ms(bad[i], &v, NULL),
				 FL_EINVAL);
	assert_int_equal(sim_parse_duration_ms(NULL, &v, NULL), FL_EINVAL);
	assert_int_equal(sim_parse_pct("0", &p, NULL), 0);
	assert_int_equal(p, 0);
	assert_int_equal(sim_parse_pct("100", &p, NULL), 0);
	assert_int_equal(p, 100);
	assert_int_equal(sim_parse_pct("101", &p, NULL), FL_EINVAL);
	assert_int_equal(sim_parse_pct("5%", &p, NULL), FL_EINVAL);
	assert_int_equal(sim_parse_pct("-1", &p, NULL), FL_EINVAL);
	/* telemetry rates */
	assert_int_equal(sim_parse_rate("0.5", &r, NULL), 0);
	assert_true(r == 0.5);
	assert_int_equal(sim_parse_rate("1000", &r, NULL), 0);
	for (size_t i = 0; bad_rate[i]; i++)
		assert_int_equal(sim_parse_rate(bad_rate[i], &r, NULL),
				 FL_EINVAL);
	/* ids: four digits at least, then as many as needed */
	assert_int_equal(sim_device_id("sim", 1, id, sizeof(id), NULL), 0);
	assert_string_equal(id, "sim-0001");
	assert_int_equal(sim_device_id("rack-7", 10000, id, sizeof(id), NULL),
			 0);
	assert_string_equal(id, "rack-7-10000");
	assert_int_equal(sim_device_id("Sim", 1, id, sizeof(id), NULL),
			 FL_EINVAL);
	assert_int_equal(sim_device_id("a/b", 1, id, sizeof(id), NULL),
			 FL_EINVAL);
	assert_int_equal(sim_device_id("x", 1, id, 6, NULL), FL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_picks_deterministic),
	    cmocka_unit_test(test_spread),
	    cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
