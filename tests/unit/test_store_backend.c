/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store.c: the backend is chosen by the database URL, and
 * every call reaches it; the rows' _free functions (store_rows.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "store.h"
#include "store_ops.h"
#include "store_pg.h"
#include "util.h"

#include "store_fixture.h"

/* A plain path and "sqlite:PATH" open the same SQLite database. */
static void test_sqlite_urls(void **state)
{
	struct fixture *f = *state;
	struct srv_token t = {.id = "t1",
			      .name = "n",
			      .kind = "operator",
			      .role = SRV_ROLE_ADMIN,
			      .uses_left = -1};
	struct srv_store *s = NULL;
	struct srv_token got = {0};
	char *url;

	FX_SQLITE_ONLY(f);
	url = fl_xasprintf("sqlite:%s", f->db);
	assert_string_equal(srv_store_sqlite_ops.name, "sqlite");
	assert_int_equal(srv_store_token_add(f->s, &t, "h1", NULL, NULL, NULL),
			 0);
	assert_int_equal(srv_store_open(url, &s, NULL), 0);
	assert_int_equal(srv_store_schema_version(s),
			 srv_store_schema_version(f->s));
	assert_int_equal(srv_store_token_find(s, "h1", &got, NULL), 0);
	assert_string_equal(got.id, "t1");
	srv_store_close(s);
	free(url);
	srv_store_close(NULL);
}

/* Schemes without a backend here are refused before anything is made. */
static void test_unknown_schemes(void **state)
{
	static const char *const urls[] = {"mysql://fleet@127.0.0.1/fleet",
					   "http://127.0.0.1/db"};
	struct fixture *f = *state;

	for (size_t i = 0; i < FL_ARRAY_SIZE(urls); i++) {
		struct srv_store *s = NULL;
		struct fl_error err = {0};

		assert_int_equal(srv_store_open(urls[i], &s, &err), FL_EINVAL);
		assert_int_equal(err.code, FL_EINVAL);
		assert_null(s);
		assert_null(strstr(err.msg, "fleet@")); /* no credentials */
	}
	(void)f;
}

/* PostgreSQL URLs reach the PostgreSQL backend: one that cannot be
 * reached fails with FL_EUNREACH naming host, port and database, never
 * the password; one libpq cannot parse is FL_EINVAL. */
static void test_pg_url_errors(void **state)
{
	static const char *const urls[] = {
	    "postgresql://fleet:s3cret-pw@127.0.0.1:1/fleetdb",
	    "postgres://fleet:s3cret-pw@127.0.0.1:1/fleetdb"};
	struct srv_store *s = NULL;
	struct fl_error err = {0};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(urls); i++) {
		fl_error_clear(&err);
		assert_int_equal(srv_store_open(urls[i], &s, &err),
				 FL_EUNREACH);
		assert_null(s);
		assert_non_null(strstr(err.msg, "127.0.0.1:1/fleetdb"));
		assert_null(strstr(err.msg, "s3cret-pw"));
	}
	fl_error_clear(&err);
	assert_int_equal(
	    srv_store_open("postgresql://fleet:s3cret-pw@[::1/x", &s, &err),
	    FL_EINVAL);
	assert_null(strstr(err.msg, "s3cret-pw"));
}

/* The PostgreSQL driver's parameters: `?` numbered as SQLite numbers
 * them, `?N` kept, quoted text untouched, a `?` inside quotes refused. */
static void test_pg_translate(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"SELECT 1", "SELECT 1"},
	    {"a = ? AND b = ?", "a = $1 AND b = $2"},
	    {"a = ?2 OR b = ?1 OR c = ?2", "a = $2 OR b = $1 OR c = $2"},
	    {"a = ?3, b = ?", "a = $3, b = $4"},
	    /* only digits right after the ? number it: no sign, no blank */
	    {"n = ?-1 AND m = ? 5", "n = $1-1 AND m = $2 5"},
	    {"n = ?+2", "n = $1+2"},
	    {"x || 'it''s' || ?", "x || 'it''s' || $1"},
	    {"\"we?ird\" = 1", NULL},
	    {"a = 'what?' AND b = ?", NULL},
	};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		char *got = pg_translate(cases[i].in);

		if (cases[i].out)
			assert_string_equal(got, cases[i].out);
		else
			assert_null(got);
		free(got);
	}
}

/* A path with "://" further on is still a path. */
static void test_path_with_colons(void **state)
{
	struct fixture *f = *state;
	char *dir = fl_path_join(f->dir, "a:");
	char *path = fl_xasprintf("%s//b.db", dir) /* DIR/a://b.db */;
	struct srv_store *s = NULL;

	assert_int_equal(fl_mkdir_p(dir, 0700, NULL), 0);
	assert_int_equal(srv_store_open(path, &s, NULL), 0);
	assert_true(srv_store_schema_version(s) >= 8);
	srv_store_close(s);
	free(path);
	free(dir);
}

/* _free frees what a row owns and zeroes it: twice, or on a zeroed
 * row, is harmless (run under ASan for the proof). */
static void test_row_free(void **state)
{
	struct srv_device_row d = {.id = fl_xstrdup("x"),
				   .last_event = fl_xstrdup("{}")};
	struct srv_job_row j = {.state = fl_xstrdup("queued")};
	struct srv_strv v = {0};
	struct srv_job_list jl = {0};

	(void)state;
	d.active_certs.v = fl_xcalloc(1, sizeof(char *));
	d.active_certs.v[0] = fl_xstrdup("0a");
	d.active_certs.n = 1;
	srv_device_row_free(&d);
	assert_null(d.id);
	assert_int_equal(d.active_certs.n, 0);
	srv_device_row_free(&d);
	srv_device_row_free(NULL);
	srv_job_row_free(&j);
	assert_null(j.state);
	srv_strv_free(&v);
	srv_strv_free(NULL);
	srv_job_list_free(&jl);
	srv_job_list_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sqlite_urls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_schemes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_path_with_colons, setup,
					    teardown),
	    cmocka_unit_test(test_row_free),
	    cmocka_unit_test(test_pg_url_errors),
	    cmocka_unit_test(test_pg_translate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
