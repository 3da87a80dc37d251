/* SPDX-License-Identifier: MIT */
/*
 * server-stub/devlimit: per-device token buckets, drops, mutes and their
 * expiry, with time passed in (no sleeps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devlimit.h"

static const struct srv_devlimit_cfg cfg = {
	.rate = 10, .burst = 5, .mute_after = 3, .mute_ms = 60000};

static void test_burst_then_rate(void **state)
{
	struct srv_devlimit *l = srv_devlimit_new(&cfg);

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(srv_devlimit_take(l, "a", 1000),
				 SRV_DEVLIMIT_PASS);
	assert_int_equal(srv_devlimit_take(l, "a", 1000), SRV_DEVLIMIT_DROP);
	assert_int_equal(srv_devlimit_dropped(l, "a"), 1);
	/* 10/s: one token every 100 ms */
	assert_int_equal(srv_devlimit_take(l, "a", 1100), SRV_DEVLIMIT_PASS);
	assert_int_equal(srv_devlimit_take(l, "a", 1100), SRV_DEVLIMIT_DROP);
	/* the bucket never holds more than the burst */
	for (int i = 0; i < 5; i++)
		assert_int_equal(srv_devlimit_take(l, "a", 100000),
				 SRV_DEVLIMIT_PASS);
	assert_int_equal(srv_devlimit_take(l, "a", 100000), SRV_DEVLIMIT_DROP);
	srv_devlimit_free(l);
}

static void test_devices_are_independent(void **state)
{
	struct srv_devlimit *l = srv_devlimit_new(&cfg);
	char id[32];

	(void)state;
	for (int i = 0; i < 50; i++)
		srv_devlimit_take(l, "flood", 0);
	/* many other devices (the table grows) each get their own burst */
	for (int d = 0; d < 1000; d++) {
		snprintf(id, sizeof(id), "dev-%d", d);
		for (int i = 0; i < 5; i++)
			assert_int_equal(srv_devlimit_take(l, id, 0),
					 SRV_DEVLIMIT_PASS);
	}
	assert_int_equal(srv_devlimit_dropped(l, "dev-7"), 0);
	assert_int_equal(srv_devlimit_dropped(l, "nobody"), 0);
	assert_int_equal(srv_devlimit_dropped(l, "flood"), 45);
	srv_devlimit_free(l);
}

struct seen {
	int calls;
	char id[64];
	uint64_t dropped;
};

static void on_unmute(const char *id, uint64_t dropped, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->dropped = dropped;
}

static void test_mute_and_expiry(void **state)
{
	struct srv_devlimit *l = srv_devlimit_new(&cfg);
	struct seen s = {0};

	(void)state;
	for (int i = 0; i < 5; i++)
		srv_devlimit_take(l, "f", 0);
	assert_int_equal(srv_devlimit_take(l, "f", 0), SRV_DEVLIMIT_DROP);
	assert_int_equal(srv_devlimit_take(l, "f", 0), SRV_DEVLIMIT_DROP);
	assert_int_equal(srv_devlimit_take(l, "f", 0), SRV_DEVLIMIT_MUTE);
	/* muted: dropped even with tokens back, and MUTE only once */
	assert_int_equal(srv_devlimit_take(l, "f", 5000), SRV_DEVLIMIT_DROP);
	srv_devlimit_expire(l, 59999, false, on_unmute, &s);
	assert_int_equal(s.calls, 0);
	srv_devlimit_expire(l, 60000, false, on_unmute, &s);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.id, "f");
	assert_int_equal(s.dropped, 4);
	/* back with a full bucket */
	for (int i = 0; i < 5; i++)
		assert_int_equal(srv_devlimit_take(l, "f", 60000),
				 SRV_DEVLIMIT_PASS);
	srv_devlimit_free(l);
}

static void test_drops_spread_out_do_not_mute(void **state)
{
	struct srv_devlimit *l = srv_devlimit_new(&cfg);

	(void)state;
	for (int i = 0; i < 5; i++)
		srv_devlimit_take(l, "s", 0);
	/* two drops per 10 s window never reach mute_after (3) */
	for (int64_t t = 1; t < 100000; t += SRV_DEVLIMIT_WINDOW_MS) {
		while (srv_devlimit_take(l, "s", t) == SRV_DEVLIMIT_PASS)
			;
		assert_int_equal(srv_devlimit_take(l, "s", t),
				 SRV_DEVLIMIT_DROP);
	}
	assert_int_equal(srv_devlimit_dropped(l, "s"), 20);
	srv_devlimit_free(l);
}

static void test_clear_all(void **state)
{
	struct srv_devlimit *l = srv_devlimit_new(&cfg);
	struct seen s = {0};

	(void)state;
	for (int i = 0; i < 8; i++)
		srv_devlimit_take(l, "f", 0);
	assert_int_equal(srv_devlimit_take(l, "f", 0), SRV_DEVLIMIT_DROP);
	srv_devlimit_expire(l, 1, true, on_unmute, &s);
	assert_int_equal(s.calls, 0); /* the broker already forgot */
	assert_int_equal(srv_devlimit_take(l, "f", 1), SRV_DEVLIMIT_PASS);
	srv_devlimit_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_devices_are_independent),
		cmocka_unit_test(test_mute_and_expiry),
		cmocka_unit_test(test_drops_spread_out_do_not_mute),
		cmocka_unit_test(test_clear_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
