/* SPDX-License-Identifier: MIT */
/*
 * server-stub/dash: the dashboard's session table (random ids, expiry,
 * logout, the bound on their number) and the cookie it reads and writes,
 * with time passed in (no sleeps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dash.h"
#include "util.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static void test_login_lookup_expiry(void **state)
{
	struct srv_dash *d = srv_dash_new(4, 100);
	char id[SRV_DASH_ID_LEN + 1], id2[SRV_DASH_ID_LEN + 1], hash[65];

	(void)state;
	assert_int_equal(srv_dash_login(d, H1, 1000, id, NULL), 0);
	assert_int_equal(strlen(id), SRV_DASH_ID_LEN);
	assert_int_equal(strspn(id, "0123456789abcdef"), SRV_DASH_ID_LEN);
	assert_true(srv_dash_lookup(d, id, 1000, hash));
	assert_string_equal(hash, H1);
	assert_true(srv_dash_lookup(d, id, 1099, hash));
	assert_false(srv_dash_lookup(d, id, 1100, hash)); /* expired */
	assert_false(srv_dash_lookup(d, id, 999, hash));  /* clock back */
	/* a second login: another random id, its own token */
	assert_int_equal(srv_dash_login(d, H2, 1000, id2, NULL), 0);
	assert_string_not_equal(id, id2);
	assert_true(srv_dash_lookup(d, id2, 1000, hash));
	assert_string_equal(hash, H2);
	assert_int_equal(srv_dash_count(d, 1000), 2);
	srv_dash_free(d);
}

static void test_logout_and_unknown(void **state)
{
	struct srv_dash *d = srv_dash_new(4, 100);
	char id[SRV_DASH_ID_LEN + 1], other[SRV_DASH_ID_LEN + 1], hash[65];

	(void)state;
	assert_int_equal(srv_dash_login(d, H1, 0, id, NULL), 0);
	memcpy(other, id, sizeof(other));
	other[0] = other[0] == 'a' ? 'b' : 'a';
	assert_false(srv_dash_lookup(d, other, 0, hash));
	assert_false(srv_dash_lookup(d, "", 0, hash));
	assert_false(srv_dash_lookup(d, "abc", 0, hash));
	srv_dash_logout(d, other); /* not ours: nothing */
	assert_true(srv_dash_lookup(d, id, 0, hash));
	srv_dash_logout(d, id);
	assert_false(srv_dash_lookup(d, id, 0, hash));
	assert_int_equal(srv_dash_count(d, 0), 0);
	srv_dash_free(d);
}

/* Full: an expired slot is taken first, else the oldest session's. */
static void test_bounded(void **state)
{
	struct srv_dash *d = srv_dash_new(2, 100);
	char a[SRV_DASH_ID_LEN + 1], b[SRV_DASH_ID_LEN + 1];
	char c[SRV_DASH_ID_LEN + 1], e[SRV_DASH_ID_LEN + 1], hash[65];

	(void)state;
	assert_int_equal(srv_dash_login(d, H1, 10, a, NULL), 0);
	assert_int_equal(srv_dash_login(d, H1, 20, b, NULL), 0);
	assert_int_equal(srv_dash_login(d, H2, 30, c, NULL), 0);
	assert_int_equal(srv_dash_count(d, 30), 2);
	assert_false(srv_dash_lookup(d, a, 30, hash)); /* the oldest went */
	assert_true(srv_dash_lookup(d, b, 30, hash));
	assert_true(srv_dash_lookup(d, c, 30, hash));
	/* at 125, b (from 20) has expired: its slot goes, c stays */
	assert_int_equal(srv_dash_login(d, H1, 125, e, NULL), 0);
	assert_true(srv_dash_lookup(d, c, 125, hash));
	assert_true(srv_dash_lookup(d, e, 125, hash));
	srv_dash_free(d);
}

static void test_cookie_id(void **state)
{
	char id[SRV_DASH_ID_LEN + 1], hdr[512];

	(void)state;
	assert_false(srv_dash_cookie_id(NULL, id));
	assert_false(srv_dash_cookie_id("", id));
	snprintf(hdr, sizeof(hdr), "a=b; %s=%s; c=d", SRV_DASH_COOKIE, H1);
	assert_true(srv_dash_cookie_id(hdr, id));
	assert_string_equal(id, H1);
	snprintf(hdr, sizeof(hdr), "%s=%s", SRV_DASH_COOKIE, H2);
	assert_true(srv_dash_cookie_id(hdr, id));
	assert_string_equal(id, H2);
	/* a longer name that starts like ours is not ours */
	snprintf(hdr, sizeof(hdr), "%sx=%s", SRV_DASH_COOKIE, H1);
	assert_false(srv_dash_cookie_id(hdr, id));
	/* the shape of an id: 64 lowercase hex digits, nothing else */
	snprintf(hdr, sizeof(hdr), "%s=%.63s", SRV_DASH_COOKIE, H1);
	assert_false(srv_dash_cookie_id(hdr, id));
	snprintf(hdr, sizeof(hdr), "%s=%s1", SRV_DASH_COOKIE, H1);
	assert_false(srv_dash_cookie_id(hdr, id));
	snprintf(hdr, sizeof(hdr), "%s=%.63sA", SRV_DASH_COOKIE, H1);
	assert_false(srv_dash_cookie_id(hdr, id));
	snprintf(hdr, sizeof(hdr), "%s=%.63s\"", SRV_DASH_COOKIE, H1);
	assert_false(srv_dash_cookie_id(hdr, id));
}

/* The attributes the browser must keep to: never sent cross-site, never
 * readable by scripts, only over TLS, for the whole origin. */
static void test_set_cookie(void **state)
{
	struct srv_dash *d = srv_dash_new(1, 3600);
	char *set = srv_dash_set_cookie(d, H1), *del;

	(void)state;
	assert_string_equal(set, SRV_DASH_COOKIE
			    "=" H1 "; Max-Age=3600; "
			    "Path=/; Secure; HttpOnly; SameSite=Strict");
	del = srv_dash_set_cookie(d, NULL);
	assert_string_equal(del, SRV_DASH_COOKIE
			    "=; Max-Age=0; Path=/; "
			    "Secure; HttpOnly; SameSite=Strict");
	free(set);
	free(del);
	srv_dash_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login_lookup_expiry),
	    cmocka_unit_test(test_logout_and_unknown),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_cookie_id),
	    cmocka_unit_test(test_set_cookie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
