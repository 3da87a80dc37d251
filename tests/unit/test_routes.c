/* SPDX-License-Identifier: MIT */
/*
 * fleetd's route table (server-stub/routes.c), by the rules httpd.c
 * relies on: every pattern well formed, no route unreachable behind an
 * earlier one (httpd.c takes the first match), every route that is not
 * marked public names the roles that may call it, and the public ones
 * are exactly those that must be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "httpd.h"
#include "util.h"

#define SEG_MAX 16

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH",
				      "DELETE"};

/* The routes nobody needs a token for: health, version, enrolment (an
 * enrolment token in the body) and the dashboard's files, login (a token
 * in the body), logout and session check (the cookie, if any).  Adding
 * one is a decision. */
static const char *const public_routes[] = {"GET /healthz",
					    "GET /readyz",
					    "GET /api/v1/version",
					    "POST /api/v1/enroll",
					    "GET /",
					    "GET /dash/session",
					    "POST /dash/login",
					    "POST /dash/logout",
					    "GET /dash/:file"};

static size_t n_routes(void)
{
	size_t n = 0;

	while (srv_routes[n].method)
		n++;
	return n;
}

/* Split @pattern at '/' into @segs (pointers into @buf); the count. */
static int segments(const char *pattern, char buf[256],
		    const char *segs[SEG_MAX])
{
	int n = 0;

	fl_strlcpy(buf, pattern, 256);
	for (char *p = strtok(buf, "/"); p && n < SEG_MAX; p = strtok(NULL, "/"))
		segs[n++] = p;
	return n;
}

static bool is_param(const char *seg)
{
	return seg[0] == ':';
}

static bool valid_param(const char *seg)
{
	size_t n = strlen(seg + 1);

	return n > 0 && strspn(seg + 1, "abcdefghijklmnopqrstuvwxyz_") == n;
}

static bool valid_literal(const char *seg)
{
	return strspn(seg, "abcdefghijklmnopqrstuvwxyz0123456789-_.") ==
	       strlen(seg);
}

/* Does @early, taken first, catch every path @late would (httpd.c's
 * match_path: a ':x' segment takes any one non-empty segment)? */
static bool shadows(const char *early, const char *late)
{
	char b1[256], b2[256];
	const char *s1[SEG_MAX], *s2[SEG_MAX];
	int n1 = segments(early, b1, s1), n2 = segments(late, b2, s2);

	if (n1 != n2)
		return false;
	for (int i = 0; i < n1; i++) {
		if (is_param(s1[i]))
			continue;
		if (is_param(s2[i]) || strcmp(s1[i], s2[i]) != 0)
			return false;
	}
	return true;
}

/* Every pattern: "/" alone (the dashboard), or "/" then non-empty
 * segments of lower-case literals or named parameters, no trailing slash,
 * at most SRV_MAX_PARAMS parameters; a known method and a handler. */
static void test_well_formed(void **state)
{
	(void)state;
	assert_true(n_routes() > 10);
	for (size_t i = 0; srv_routes[i].method; i++) {
		const struct srv_route *r = &srv_routes[i];
		char buf[256];
		const char *segs[SEG_MAX];
		bool method = false;
		int params = 0, n;

		for (size_t k = 0; k < FL_ARRAY_SIZE(methods); k++)
			method |= strcmp(methods[k], r->method) == 0;
		if (!method || !r->fn)
			fail_msg("%s %s: bad method or no handler", r->method,
				 r->pattern);
		n = segments(r->pattern, buf, segs);
		if (r->pattern[0] != '/' || strstr(r->pattern, "//") ||
		    (strlen(r->pattern) > 1 &&
		     r->pattern[strlen(r->pattern) - 1] == '/') ||
		    (n == 0 && strcmp(r->pattern, "/") != 0) || n == SEG_MAX)
			fail_msg("%s: malformed pattern", r->pattern);
		for (int k = 0; k < n; k++) {
			params += is_param(segs[k]);
			if (is_param(segs[k]) ? !valid_param(segs[k])
					      : !valid_literal(segs[k]))
				fail_msg("%s: bad segment '%s'", r->pattern,
					 segs[k]);
		}
		if (params > SRV_MAX_PARAMS)
			fail_msg("%s: %d parameters, at most %d", r->pattern,
				 params, SRV_MAX_PARAMS);
	}
}

/* No (method, pattern) twice, and no route that an earlier one of the
 * same method catches first (it could never be reached). */
static void test_unique_and_reachable(void **state)
{
	(void)state;
	for (size_t i = 0; srv_routes[i].method; i++)
		for (size_t k = 0; k < i; k++) {
			const struct srv_route *a = &srv_routes[k];
			const struct srv_route *b = &srv_routes[i];

			if (strcmp(a->method, b->method) == 0 &&
			    shadows(a->pattern, b->pattern))
				fail_msg("%s %s is never reached: %s comes "
					 "first", b->method, b->pattern,
					 a->pattern);
		}
}

/* A route is public only when marked so, and then grants no role; every
 * other route names who may call it. */
static void test_roles(void **state)
{
	(void)state;
	for (size_t i = 0; srv_routes[i].method; i++) {
		const struct srv_route *r = &srv_routes[i];
		bool pub = r->flags & SRV_PUBLIC;

		if (pub && r->roles)
			fail_msg("%s %s: public, yet names roles", r->method,
				 r->pattern);
		if (!pub && !r->roles)
			fail_msg("%s %s: nobody may call it (no roles)",
				 r->method, r->pattern);
		if (r->roles & ~(SRV_ROLES_ALL | SRV_ROLE_DEVICE))
			fail_msg("%s %s: unknown role bits", r->method,
				 r->pattern);
	}
}

/* The public routes are exactly the listed ones. */
static void test_public_set(void **state)
{
	size_t found = 0;

	(void)state;
	for (size_t i = 0; srv_routes[i].method; i++) {
		const struct srv_route *r = &srv_routes[i];
		char name[300];
		bool listed = false;

		if (!(r->flags & SRV_PUBLIC))
			continue;
		snprintf(name, sizeof(name), "%s %s", r->method, r->pattern);
		for (size_t k = 0; k < FL_ARRAY_SIZE(public_routes); k++)
			listed |= strcmp(public_routes[k], name) == 0;
		if (!listed)
			fail_msg("%s: public but not in the test's list", name);
		found++;
	}
	assert_int_equal(found, FL_ARRAY_SIZE(public_routes));
}

/* The rule itself: a parameter catches a literal after it, a literal
 * does not catch another literal or a parameter. */
static void test_shadow_rule(void **state)
{
	(void)state;
	assert_true(shadows("/a/:id", "/a/b"));
	assert_true(shadows("/a/:id", "/a/:x"));
	assert_false(shadows("/a/b", "/a/:id"));
	assert_false(shadows("/a/b", "/a/c"));
	assert_false(shadows("/a/:id", "/a/b/c"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shadow_rule),
		cmocka_unit_test(test_well_formed),
		cmocka_unit_test(test_unique_and_reachable),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_public_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
