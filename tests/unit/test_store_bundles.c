/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_sql_bundles: bundles and trust roots as typed
 * rows, on a real SQLite file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "store.h"
#include "util.h"

#include "store_fixture.h"

/* Store bundle @name @version with id @id (sha256 = id repeated). */
static int add(struct fixture *f, const char *id, const char *name,
	       const char *version, bool *ret_existed)
{
	static const char *const hw[] = {"rpi4", "rpi5"};
	char *man = fl_xasprintf("{\"name\":\"%s\",\"version\":\"%s\"}",
				 name, version);
	char sha[65];
	bool existed = false;
	struct srv_bundle b = {id, sha, name, version, 7, hw, 2, 4096, man};
	int rc;

	snprintf(sha, sizeof(sha), "%s%s%s%s", id, id, id, id);
	rc = srv_store_bundle_add(f->s, &b, "token:ci", &existed, NULL);
	if (ret_existed)
		*ret_existed = existed;
	free(man);
	return rc;
}

static void test_bundles(void **state)
{
	struct fixture *f = *state;
	struct srv_bundle_list l = {0};
	struct srv_bundle_row b = {0};
	int64_t before = time(NULL);
	bool existed = true;

	assert_int_equal(add(f, "aaaa0000aaaa0000", "fw", "1.0", &existed), 0);
	assert_false(existed);
	assert_int_equal(add(f, "aaaa0000aaaa0000", "fw", "1.0", &existed), 0);
	assert_true(existed); /* the same upload again */
	assert_int_equal(add(f, "bbbb0000bbbb0000", "fw", "1.0", NULL),
			 FL_ECONFLICT);
	assert_int_equal(add(f, "aaaa1111aaaa1111", "fw", "1.1", NULL), 0);

	assert_int_equal(srv_store_bundle_list(f->s, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++) {
		assert_null(l.v[i].manifest); /* lists leave it out */
		assert_int_equal(l.v[i].hardware.n, 2);
		assert_string_equal(l.v[i].hardware.v[1], "rpi5");
		assert_int_equal(l.v[i].security_version, 7);
		assert_int_equal(l.v[i].size, 4096);
		assert_true(l.v[i].created >= before);
		assert_string_equal(l.v[i].uploaded_by, "token:ci");
	}
	srv_bundle_list_free(&l);

	assert_int_equal(srv_store_bundle_get(f->s, "fw@1.1", &b, NULL), 0);
	assert_string_equal(b.id, "aaaa1111aaaa1111");
	assert_non_null(strstr(b.manifest, "\"1.1\""));
	srv_bundle_row_free(&b);
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa00", &b, NULL), 0);
	assert_string_equal(b.version, "1.0");
	srv_bundle_row_free(&b);
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa", &b, NULL),
			 FL_ENOTFOUND); /* prefix too short */
	/* a prefix is matched as it is: no SQL wildcards */
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa1_", &b, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa1%", &b, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa11", &b, NULL), 0);
	srv_bundle_row_free(&b);
	assert_int_equal(add(f, "aaaa0000cccc0000", "fw", "1.2", NULL), 0);
	assert_int_equal(srv_store_bundle_get(f->s, "aaaa0000", &b, NULL),
			 FL_ECONFLICT);
	assert_int_equal(srv_store_bundle_get(f->s, "fw@9", &b, NULL),
			 FL_ENOTFOUND);
	assert_null(b.id);
}

static void test_roots(void **state)
{
	struct fixture *f = *state;
	struct srv_root_list l = {0};
	char *env = NULL;

	assert_int_equal(srv_store_root_get(f->s, 0, &env, NULL), FL_ENOTFOUND);
	assert_int_equal(srv_store_root_list(f->s, &l, NULL), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(
	    srv_store_root_add(f->s, 1, "{\"v\":1}", 2000, "token:a", NULL), 0);
	assert_int_equal(
	    srv_store_root_add(f->s, 2, "{\"v\":2}", 3000, NULL, NULL), 0);
	assert_int_equal(srv_store_root_add(f->s, 2, "{}", 1, NULL, NULL),
			 FL_ECONFLICT);
	assert_int_equal(srv_store_root_list(f->s, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].version, 1);
	assert_int_equal(l.v[0].expires, 2000);
	assert_string_equal(l.v[0].added_by, "token:a");
	assert_null(l.v[1].added_by);
	assert_true(l.v[1].added > 0);
	srv_root_list_free(&l);
	assert_int_equal(srv_store_root_get(f->s, 0, &env, NULL), 0);
	assert_string_equal(env, "{\"v\":2}"); /* 0: the newest */
	free(env);
	assert_int_equal(srv_store_root_get(f->s, 1, &env, NULL), 0);
	assert_string_equal(env, "{\"v\":1}");
	free(env);
	assert_int_equal(srv_store_root_get(f->s, 3, &env, NULL), FL_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bundles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roots, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
