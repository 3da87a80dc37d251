/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store: schema creation and migration guard, tokens, audit
 * log, WAL mode and role names, on real SQLite files in a temp dir.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include <sqlite3.h>

#include "diag_bundles.h"
#include "store.h"
#include "api_json.h"
#include "store_ops.h"
#include "store_sqlite.h"
#include "fsutil.h"
#include "util.h"

#include "store_fixture.h"

/* Run one SQL statement on a separate connection; the first column of
 * the first row as text into @out (may be NULL). */
static void sql(const char *db, const char *q, char *out, size_t size)
{
	int rc = fx_sql(db, q, out, size);

	assert_true(rc >= 0);
	if (out)
		assert_int_equal(rc, 1);
}

static struct srv_token token(const char *id, const char *name, int role)
{
	struct srv_token t = {.role = role, .expires = 0, .uses_left = -1};

	fl_strlcpy(t.id, id, sizeof(t.id));
	fl_strlcpy(t.name, name, sizeof(t.name));
	fl_strlcpy(t.kind, "operator", sizeof(t.kind));
	return t;
}

static void hash_of(const char *secret, char out[65])
{
	fl_sha256_hex(secret, strlen(secret), out);
}

/* The row of @list whose "id" is @id. */
static json_t *find_row(json_t *list, const char *id)
{
	json_t *row;
	size_t i;

	json_array_foreach(
	    list, i,
	    row) if (fl_streq(json_string_value(json_object_get(row, "id")),
			      id)) return row;
	fail_msg("no row with id %s", id);
	return NULL;
}

/* The token list as the API shows it (store rows through api_json). */
static int token_list(struct srv_store *s, json_t **ret, struct fl_error *err)
{
	struct srv_token_list l = {0};
	int rc = srv_store_token_list(s, &l, err);

	if (!rc)
		*ret = api_tokens_json(&l);
	srv_token_list_free(&l);
	return rc;
}

/* The audit log as the API shows it. */
static int audit_list(struct srv_store *s, int limit, json_t **ret,
		      struct fl_error *err)
{
	struct srv_audit_list l = {0};
	int rc = srv_store_audit_list(s, limit, &l, err);

	if (!rc)
		*ret = api_audit_json(&l);
	srv_audit_list_free(&l);
	return rc;
}

/* Add an operator token without a device group. */
static int add_token(struct srv_store *s, const struct srv_token *t,
		     const char *hash, const char *created_by,
		     struct fl_error *err)
{
	return srv_store_token_add(s, t, hash, NULL, created_by, err);
}

/* The schema version's query, and its setter to append a number to. */
static const char *version_get(struct fixture *f)
{
	return f->pg ? "SELECT version FROM schema_version"
		     : "PRAGMA user_version";
}

static const char *version_set(struct fixture *f)
{
	return f->pg ? "UPDATE schema_version SET version = "
		     : "PRAGMA user_version = ";
}

/*
 * A new database is at the newest schema: it has the tables, and its
 * version is the number of migrations, which is checked from both
 * sides: the version is accepted on reopen, the next one is refused.
 */
static void test_open_creates_schema(void **state)
{
	struct fixture *f = *state;
	struct fl_error err = {0};
	struct srv_store *s = NULL;
	int v = srv_store_schema_version(f->s);
	char out[64], *q;

	assert_true(v >= 1);
	sql(f->db,
	    f->pg ? "SELECT count(*) FROM information_schema.tables"
		    " WHERE table_name IN ('tokens', 'audit')"
		  : "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
		    " AND name IN ('tokens', 'audit')",
	    out, sizeof(out));
	assert_string_equal(out, "2");
	sql(f->db, version_get(f), out, sizeof(out));
	assert_int_equal(atoi(out), v);

	srv_store_close(f->s);
	f->s = NULL;
	q = fl_xasprintf("%s%d", version_set(f), v + 1);
	sql(f->db, q, NULL, 0);
	free(q);
	assert_int_equal(srv_store_open(f->db, &s, &err), FL_ECONFLICT);
	assert_int_equal(err.code, FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "newer than this fleetd"));
	assert_null(s);
	/* the refused database is left as it was */
	sql(f->db, version_get(f), out, sizeof(out));
	assert_int_equal(atoi(out), v + 1);

	q = fl_xasprintf("%s%d", version_set(f), v);
	sql(f->db, q, NULL, 0);
	free(q);
	fl_error_clear(&err);
	assert_int_equal(srv_store_open(f->db, &f->s, &err), 0);
	assert_int_equal(srv_store_schema_version(f->s), v);
}

static void test_reopen_idempotent(void **state)
{
	struct fixture *f = *state;
	struct srv_token t = token("t1", "ci-bot", SRV_ROLE_CI), got;
	int v = srv_store_schema_version(f->s);
	struct fl_error err = {0};
	char h[65];

	hash_of("secret-1", h);
	assert_int_equal(add_token(f->s, &t, h, "admin", &err), 0);
	for (int i = 0; i < 3; i++) {
		srv_store_close(f->s);
		f->s = NULL;
		assert_int_equal(srv_store_open(f->db, &f->s, &err), 0);
		assert_int_equal(srv_store_schema_version(f->s), v);
	}
	assert_int_equal(srv_store_token_find(f->s, h, &got, &err), 0);
	assert_string_equal(got.id, "t1");
	/* two handles on one file at once */
	{
		struct srv_store *s2 = NULL;

		assert_int_equal(srv_store_open(f->db, &s2, &err), 0);
		assert_int_equal(srv_store_token_find(s2, h, &got, &err), 0);
		srv_store_close(s2);
	}
	assert_int_equal(err.code, 0);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	char *nodir = fl_path_join(f->dir, "no/such/dir/fleet.db");
	char *junk = fl_path_join(f->dir, "junk.db");
	struct srv_store *s = NULL;
	struct fl_error err = {0};

	assert_int_equal(srv_store_open(nodir, &s, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_null(s);
	assert_int_equal(fl_write_atomic_str(junk,
					     "this is not a database, "
					     "just some text padded "
					     "out to a few hundred "
					     "bytes..................."
					     ".........................."
					     ".........................."
					     "..........................",
					     0600, NULL),
			 0);
	fl_error_clear(&err);
	assert_int_not_equal(srv_store_open(junk, &s, &err), 0);
	assert_int_not_equal(err.code, 0);
	assert_null(s);
	free(nodir);
	free(junk);
}

static void test_wal(void **state)
{
	struct fixture *f = *state;
	char mode[16];

	FX_SQLITE_ONLY(f);
	sql(f->db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
}

static void test_token_add_find(void **state)
{
	struct fixture *f = *state;
	struct srv_token t = token("tok0001", "alice", SRV_ROLE_OPERATOR);
	struct srv_token e = token("enr0001", "line-3", SRV_ROLE_VIEWER);
	struct srv_token got;
	struct fl_error err = {0};
	char h1[65], h2[65], h3[65];
	json_t *list = NULL, *row;

	hash_of("flt_secret-a", h1);
	hash_of("fle_secret-b", h2);
	hash_of("never-stored", h3);
	t.expires = 4102444800LL;
	fl_strlcpy(e.kind, "enroll", sizeof(e.kind));
	e.uses_left = 5;
	assert_int_equal(add_token(f->s, &t, h1, "root", &err), 0);
	assert_int_equal(
	    srv_store_token_add(f->s, &e, h2, "line-3", NULL, &err), 0);

	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(srv_store_token_find(f->s, h1, &got, &err), 0);
	assert_string_equal(got.id, "tok0001");
	assert_string_equal(got.name, "alice");
	assert_string_equal(got.kind, "operator");
	assert_int_equal(got.role, SRV_ROLE_OPERATOR);
	assert_int_equal(got.expires, 4102444800LL);
	assert_int_equal(got.uses_left, -1);
	assert_false(got.revoked);

	assert_int_equal(srv_store_token_find(f->s, h2, &got, &err), 0);
	assert_string_equal(got.id, "enr0001");
	assert_string_equal(got.kind, "enroll");
	assert_int_equal(got.uses_left, 5);
	assert_int_equal(got.expires, 0);

	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(srv_store_token_find(f->s, h3, &got, &err),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_int_equal((unsigned char)got.id[0], 0x5a); /* untouched */

	/* the list shows the group and enrolment uses */
	assert_int_equal(token_list(f->s, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 2);
	row = find_row(list, "enr0001");
	assert_string_equal(json_string_value(json_object_get(row, "group")),
			    "line-3");
	assert_int_equal(json_integer_value(json_object_get(row, "uses_left")),
			 5);
	assert_true(json_is_null(json_object_get(row, "created_by")));
	row = find_row(list, "tok0001");
	assert_true(json_is_null(json_object_get(row, "group")));
	assert_true(json_is_null(json_object_get(row, "uses_left")));
	assert_string_equal(json_string_value(json_object_get(row, "expires")),
			    "2100-01-01T00:00:00Z");
	json_decref(list);
}

static void test_token_duplicates(void **state)
{
	struct fixture *f = *state;
	struct srv_token a = token("same-id", "a", SRV_ROLE_ADMIN);
	struct srv_token b = token("other-id", "b", SRV_ROLE_ADMIN);
	struct fl_error err = {0};
	json_t *list = NULL;
	char h1[65], h2[65];

	hash_of("one", h1);
	hash_of("two", h2);
	assert_int_equal(add_token(f->s, &a, h1, "x", &err), 0);
	assert_int_equal(add_token(f->s, &a, h2, "x", &err), FL_ECONFLICT);
	assert_int_equal(err.code, FL_ECONFLICT);
	/* the same secret under another id is a conflict too */
	fl_error_clear(&err);
	assert_int_equal(add_token(f->s, &b, h1, "x", &err), FL_ECONFLICT);
	assert_int_equal(err.code, FL_ECONFLICT);
	assert_int_equal(token_list(f->s, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
}

static bool json_has_string(const json_t *j, const char *s)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(j))
		return strstr(json_string_value(j), s) != NULL;
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k,
				    v) if (strstr(k, s) ||
					   json_has_string(v, s)) return true;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i,
				   v) if (json_has_string(v, s)) return true;
	}
	return false;
}

static void test_token_list(void **state)
{
	struct fixture *f = *state;
	static const char *const ids[] = {"a1", "b2", "c3"};
	static const int roles[] = {SRV_ROLE_ADMIN, SRV_ROLE_VIEWER,
				    SRV_ROLE_TECHNICIAN};
	char hashes[3][65], secret[16];
	struct fl_error err = {0};
	struct srv_token got;
	json_t *list = NULL, *row;
	size_t i;

	for (i = 0; i < 3; i++) {
		struct srv_token t = token(ids[i], "n", roles[i]);

		snprintf(secret, sizeof(secret), "secret-%zu", i);
		hash_of(secret, hashes[i]);
		assert_int_equal(add_token(f->s, &t, hashes[i], "admin", &err),
				 0);
	}
	assert_int_equal(srv_store_token_find(f->s, hashes[1], &got, &err), 0);
	assert_int_equal(token_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 3);
	json_array_foreach(list, i, row)
	{
		assert_string_equal(
		    json_string_value(json_object_get(row, "id")), ids[i]);
		assert_string_equal(
		    json_string_value(json_object_get(row, "role")),
		    srv_role_name(roles[i]));
		assert_true(json_is_false(json_object_get(row, "revoked")));
		assert_string_equal(
		    json_string_value(json_object_get(row, "created_by")),
		    "admin");
		assert_true(json_is_string(json_object_get(row, "created")));
		assert_true(json_is_null(json_object_get(row, "expires")));
		/* only the token that was used has a last_used time */
		assert_int_equal(
		    json_is_string(json_object_get(row, "last_used")), i == 1);
		assert_null(json_object_get(row, "hash"));
	}
	/* neither the hash nor the secret appears anywhere */
	for (i = 0; i < 3; i++) {
		snprintf(secret, sizeof(secret), "secret-%zu", i);
		assert_false(json_has_string(list, hashes[i]));
		assert_false(json_has_string(list, secret));
	}
	assert_false(json_has_string(list, "hash"));
	json_decref(list);
}

static void test_token_revoke(void **state)
{
	struct fixture *f = *state;
	struct srv_token t = token("rv1", "bob", SRV_ROLE_OPERATOR);
	struct srv_token keep = token("rv2", "carol", SRV_ROLE_OPERATOR);
	struct fl_error err = {0};
	struct srv_token got;
	json_t *list = NULL;
	char h[65], h2[65];

	hash_of("bob-secret", h);
	hash_of("carol-secret", h2);
	assert_int_equal(add_token(f->s, &t, h, "x", &err), 0);
	assert_int_equal(add_token(f->s, &keep, h2, "x", &err), 0);
	assert_int_equal(srv_store_token_revoke(f->s, "rv1", &err), 0);
	assert_int_equal(srv_store_token_revoke(f->s, "rv1", &err), 0);
	assert_int_equal(srv_store_token_find(f->s, h, &got, &err), 0);
	assert_true(got.revoked);
	assert_int_equal(srv_store_token_find(f->s, h2, &got, &err), 0);
	assert_false(got.revoked);
	assert_int_equal(err.code, 0);

	assert_int_equal(srv_store_token_revoke(f->s, "nosuch", &err),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	/* ids match exactly: no pattern, no prefix */
	assert_int_equal(srv_store_token_revoke(f->s, "rv%", NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_token_revoke(f->s, "rv", NULL),
			 FL_ENOTFOUND);

	assert_int_equal(token_list(f->s, &list, NULL), 0);
	assert_true(
	    json_is_true(json_object_get(json_array_get(list, 0), "revoked")));
	assert_true(
	    json_is_false(json_object_get(json_array_get(list, 1), "revoked")));
	json_decref(list);
}

static void test_audit(void **state)
{
	struct fixture *f = *state;
	struct fl_error err = {0};
	json_t *list = NULL, *row;
	char path[32];
	size_t i;

	assert_int_equal(audit_list(f->s, 10, &list, &err), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	for (int n = 1; n <= 5; n++) {
		snprintf(path, sizeof(path), "/api/v1/tokens/%d", n);
		assert_int_equal(
		    srv_store_audit(f->s, "alice", "POST", path, 200 + n,
				    n == 3 ? NULL : "127.0.0.1",
				    n == 5 ? "{\"check\":\"ping\"}" : NULL,
				    &err),
		    0);
	}
	/* newest first, cut at the limit */
	assert_int_equal(audit_list(f->s, 3, &list, &err), 0);
	assert_int_equal(json_array_size(list), 3);
	json_array_foreach(list, i, row)
	{
		int n = 5 - (int)i;

		snprintf(path, sizeof(path), "/api/v1/tokens/%d", n);
		assert_string_equal(
		    json_string_value(json_object_get(row, "path")), path);
		assert_int_equal(
		    json_integer_value(json_object_get(row, "status")),
		    200 + n);
		assert_string_equal(
		    json_string_value(json_object_get(row, "actor")), "alice");
		assert_string_equal(
		    json_string_value(json_object_get(row, "method")), "POST");
		assert_true(json_is_string(json_object_get(row, "time")));
	}
	assert_true(
	    json_is_null(json_object_get(json_array_get(list, 2), "remote")));
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(list, 0), "remote")),
			    "127.0.0.1");
	/* the detail comes back as JSON, null where there is none */
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_array_get(list, 0), "detail"), "check")),
	    "ping");
	assert_true(
	    json_is_null(json_object_get(json_array_get(list, 1), "detail")));
	json_decref(list);

	assert_int_equal(audit_list(f->s, 100, &list, &err), 0);
	assert_int_equal(json_array_size(list), 5);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(list, 4), "status")),
			 201);
	json_decref(list);
	assert_int_equal(audit_list(f->s, 0, &list, &err), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

/* The audit time is the insert time, as RFC 3339 UTC. */
static void test_audit_time(void **state)
{
	struct fixture *f = *state;
	time_t before = time(NULL), t = 0, after;
	json_t *list = NULL;
	const char *when;

	assert_int_equal(
	    srv_store_audit(f->s, "a", "DELETE", "/x", 204, NULL, NULL, NULL),
	    0);
	after = time(NULL);
	assert_int_equal(audit_list(f->s, 1, &list, NULL), 0);
	when =
	    json_string_value(json_object_get(json_array_get(list, 0), "time"));
	assert_non_null(when);
	assert_int_equal(fl_parse_rfc3339(when, &t, NULL), 0);
	assert_true(t >= before && t <= after);
	json_decref(list);
}

struct worker {
	struct srv_store *s;
	int id, failures;
};

static void *audit_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 50; i++)
		if (srv_store_audit(w->s, "thread", "POST", "/p", w->id, NULL,
				    NULL, NULL))
			w->failures++;
	return NULL;
}

/* One handle shared by several threads (the server's use). */
static void test_shared_between_threads(void **state)
{
	struct fixture *f = *state;
	struct worker w[4];
	pthread_t th[4];
	json_t *list = NULL;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = f->s, .id = i};
		assert_int_equal(
		    pthread_create(&th[i], NULL, audit_worker, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(audit_list(f->s, 1000, &list, NULL), 0);
	assert_int_equal(json_array_size(list), 200);
	json_decref(list);
}

static void test_roles(void **state)
{
	static const int roles[] = {SRV_ROLE_ADMIN, SRV_ROLE_OPERATOR,
				    SRV_ROLE_TECHNICIAN, SRV_ROLE_VIEWER,
				    SRV_ROLE_CI};
	static const char *const names[] = {"admin", "operator", "technician",
					    "viewer", "ci"};

	for (size_t i = 0; i < FL_ARRAY_SIZE(roles); i++) {
		assert_string_equal(srv_role_name(roles[i]), names[i]);
		assert_int_equal(srv_role_parse(names[i]), roles[i]);
		assert_int_equal(srv_role_parse(srv_role_name(roles[i])),
				 roles[i]);
	}
	assert_int_equal(srv_role_parse("Admin"), 0);
	assert_int_equal(srv_role_parse("root"), 0);
	assert_int_equal(srv_role_parse(""), 0);
	assert_int_equal(srv_role_parse(NULL), 0);
	assert_int_equal(srv_role_parse(srv_role_name(0)), 0);
	assert_int_equal(
	    srv_role_parse(srv_role_name(SRV_ROLE_ADMIN | SRV_ROLE_CI)), 0);
}

/* --- certificates: active devices only, one pending, bounded --- */

/* A CRL hook that records what it was given, or fails. */
struct hook_log {
	int calls;
	size_t last_entries;
	uint64_t last_number;
	int fail; /* code to return */
};

static int log_publish(void *ctx, const struct srv_crl_list *entries,
		       uint64_t number, struct fl_error *err)
{
	struct hook_log *l = ctx;

	l->calls++;
	l->last_entries = entries->n;
	l->last_number = number;
	return l->fail ? fl_fail(err, l->fail, "cannot write the CRL") : 0;
}

static struct srv_cert cert_of(const char *serial, const char *device)
{
	int64_t now = time(NULL);

	return (struct srv_cert){serial, device, now - 60, now + 3600, NULL};
}

/* Enrol @id with certificate @serial (no token). */
static void enroll(struct srv_store *s, const char *id, const char *serial)
{
	struct srv_cert c = cert_of(serial, id);
	struct fl_error err = {0};

	assert_int_equal(
	    srv_store_device_enroll(s, id, "g", "test", NULL, false, &c, &err),
	    0);
}

/* Re-enrol @id, calling with @caller, for certificate @serial. */
static int reenroll(struct srv_store *s, const char *id, const char *caller,
		    const char *serial, const struct srv_reenroll_limits *lim,
		    struct hook_log *log, int64_t *retry)
{
	struct srv_crl_hook hook = {log_publish, log};
	struct srv_cert c = cert_of(serial, id);
	struct srv_reenroll re = {&c, caller, lim, &hook};
	struct fl_error err = {0};

	return srv_store_cert_add(s, &re, NULL, retry, &err);
}

static bool cert_revoked(struct srv_store *s, const char *serial)
{
	struct srv_cert_row c = {0};
	bool r;

	assert_int_equal(srv_store_cert_get(s, serial, &c, NULL), 0);
	r = c.revoked;
	srv_cert_row_free(&c);
	return r;
}

/* Item 2: decommission, then a pending re-enrolment is refused and
 * nothing is inserted. */
static void test_cert_add_needs_active(void **state)
{
	struct fixture *f = *state;
	struct hook_log log = {0};
	struct srv_crl_hook hook = {log_publish, &log};
	struct fl_error err = {0};
	struct srv_strv revoked = {0};
	struct srv_cert_row c = {0};

	enroll(f->s, "dev-a", "aa01");
	assert_int_equal(
	    reenroll(f->s, "dev-a", "aa01", "aa02", NULL, &log, NULL), 0);
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-a", &hook, &revoked, &err),
	    0);
	assert_int_equal(revoked.n, 2);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.last_entries, 2);
	srv_strv_free(&revoked);
	assert_int_equal(
	    reenroll(f->s, "dev-a", "aa02", "aa03", NULL, &log, NULL),
	    FL_ECONFLICT);
	assert_int_equal(srv_store_cert_get(f->s, "aa03", &c, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(
	    reenroll(f->s, "nobody", "x", "aa04", NULL, &log, NULL),
	    FL_ENOTFOUND);
	assert_int_equal(srv_store_cert_get(f->s, "aa04", &c, NULL),
			 FL_ENOTFOUND);
}

/* Item 9: a decommissioned id is never enrolled again. */
static void test_enroll_decommissioned_id(void **state)
{
	struct fixture *f = *state;
	struct srv_cert c = cert_of("bb02", "dev-b");
	struct fl_error err = {0};

	enroll(f->s, "dev-b", "bb01");
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-b", NULL, NULL, &err), 0);
	assert_int_equal(srv_store_device_enroll(f->s, "dev-b", "other", "test",
						 NULL, true, &c, &err),
			 FL_ECONFLICT);
	assert_int_equal(
	    srv_store_cert_get(f->s, "bb02", &(struct srv_cert_row){0}, NULL),
	    FL_ENOTFOUND);
}

/* Item 4: a new re-enrolment supersedes the pending one (revoked, CRL
 * published), so a device never holds more than one pending. */
static void test_one_pending(void **state)
{
	struct fixture *f = *state;
	struct hook_log log = {0};

	enroll(f->s, "dev-c", "cc01");
	assert_int_equal(
	    reenroll(f->s, "dev-c", "cc01", "cc02", NULL, &log, NULL), 0);
	assert_int_equal(log.calls, 0); /* nothing superseded */
	assert_int_equal(
	    reenroll(f->s, "dev-c", "cc01", "cc03", NULL, &log, NULL), 0);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.last_entries, 1);
	assert_true(cert_revoked(f->s, "cc02"));
	assert_false(cert_revoked(f->s, "cc01"));
	assert_false(cert_revoked(f->s, "cc03"));
	/* a failed CRL publish leaves everything as it was */
	log.fail = FL_EIO;
	assert_int_equal(
	    reenroll(f->s, "dev-c", "cc01", "cc04", NULL, &log, NULL), FL_EIO);
	assert_false(cert_revoked(f->s, "cc03"));
	assert_int_equal(
	    srv_store_cert_get(f->s, "cc04", &(struct srv_cert_row){0}, NULL),
	    FL_ENOTFOUND);
}

/* Item 4: per hour and revoked-in-CRL bounds, with a retry time. */
static void test_reenroll_limits(void **state)
{
	struct fixture *f = *state;
	struct srv_reenroll_limits lim = {.per_hour = 3, .max_revoked = 100};
	struct hook_log log = {0};
	int64_t retry = 0;

	enroll(f->s, "dev-d", "dd01");
	assert_int_equal(
	    reenroll(f->s, "dev-d", "dd01", "dd02", &lim, &log, &retry), 0);
	assert_int_equal(
	    reenroll(f->s, "dev-d", "dd01", "dd03", &lim, &log, &retry), 0);
	assert_int_equal(retry, 0);
	assert_int_equal(
	    reenroll(f->s, "dev-d", "dd01", "dd04", &lim, &log, &retry),
	    FL_ELIMIT);
	assert_true(retry > 3500 && retry <= 3601);
	/* the bound on revoked certificates still in the CRL */
	lim = (struct srv_reenroll_limits){.per_hour = 100, .max_revoked = 1};
	enroll(f->s, "dev-e", "ee01");
	assert_int_equal(
	    reenroll(f->s, "dev-e", "ee01", "ee02", &lim, &log, &retry), 0);
	assert_int_equal(
	    reenroll(f->s, "dev-e", "ee01", "ee03", &lim, &log, &retry),
	    0); /* ee02 revoked: 1 in the CRL */
	assert_int_equal(
	    reenroll(f->s, "dev-e", "ee01", "ee04", &lim, &log, &retry),
	    FL_ELIMIT);
	assert_true(retry > 3600 + SRV_CRL_GRACE - 100);
}

/* Item 6: only the newest pending certificate confirms; the old one is
 * refused and revokes nothing. */
static void test_confirm_newest_only(void **state)
{
	struct fixture *f = *state;
	struct hook_log log = {0};
	struct srv_crl_hook hook = {log_publish, &log};
	struct srv_strv revoked = {0};
	struct fl_error err = {0};

	enroll(f->s, "dev-f", "ff01");
	assert_int_equal(
	    reenroll(f->s, "dev-f", "ff01", "ff02", NULL, &log, NULL), 0);
	assert_int_equal(srv_store_cert_confirm(f->s, "dev-f", "ff01", &hook,
						&revoked, &err),
			 FL_EDENIED);
	assert_false(cert_revoked(f->s, "ff02"));
	assert_int_equal(log.calls, 0);
	/* a failed CRL publish: the confirm does not happen */
	log.fail = FL_EIO;
	assert_int_equal(srv_store_cert_confirm(f->s, "dev-f", "ff02", &hook,
						&revoked, &err),
			 FL_EIO);
	assert_false(cert_revoked(f->s, "ff01"));
	log.fail = 0;
	assert_int_equal(srv_store_cert_confirm(f->s, "dev-f", "ff02", &hook,
						&revoked, &err),
			 0);
	assert_int_equal(revoked.n, 1);
	assert_string_equal(revoked.v[0], "ff01");
	srv_strv_free(&revoked);
	assert_true(cert_revoked(f->s, "ff01"));
	/* repeated: nothing pending, nothing revoked */
	assert_int_equal(srv_store_cert_confirm(f->s, "dev-f", "ff02", &hook,
						&revoked, &err),
			 0);
	assert_int_equal(revoked.n, 0);
	srv_strv_free(&revoked);
}

/* Item 4: a decommission whose CRL cannot be published changes nothing. */
static void test_decommission_atomic(void **state)
{
	struct fixture *f = *state;
	struct hook_log log = {.fail = FL_EIO};
	struct srv_crl_hook hook = {log_publish, &log};
	struct srv_device_row dev = {0};
	struct fl_error err = {0};

	enroll(f->s, "dev-g", "gg01");
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-g", &hook, NULL, &err),
	    FL_EIO);
	assert_int_equal(log.calls, 1);
	assert_false(cert_revoked(f->s, "gg01"));
	assert_int_equal(srv_store_device_get(f->s, "dev-g", &dev, &err), 0);
	assert_string_equal(dev.state, "active");
	srv_device_row_free(&dev);
	log.fail = 0;
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-g", &hook, NULL, &err), 0);
	assert_true(cert_revoked(f->s, "gg01"));
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-g", &hook, NULL, &err),
	    FL_ENOTFOUND);
}

/* The jobs table as migration 4 made it (later ones rebuild it). */
#define JOBS_V4                                                                \
	"CREATE TABLE jobs (id TEXT PRIMARY KEY, device TEXT NOT NULL,"        \
	" type TEXT NOT NULL CHECK (type IN ('update', 'rollback')),"          \
	" bundle TEXT, command TEXT, rollout TEXT, state TEXT NOT NULL,"       \
	" final INTEGER NOT NULL DEFAULT 0, stage TEXT, reason TEXT,"          \
	" from_version TEXT, to_version TEXT, bytes INTEGER, total INTEGER,"   \
	" created INTEGER NOT NULL, updated INTEGER NOT NULL,"                 \
	" created_by TEXT"

/* Migration 6 on certificates from before "pending": per device the
 * oldest unrevoked stays, the newest becomes pending, the ones between
 * are revoked; a device with one certificate is left alone. */
static void test_migrate_pending(void **state)
{
	struct fixture *f = *state;
	char *old = fl_path_join(f->dir, "old.db");
	struct srv_store *s = NULL;
	struct fl_error err = {0};
	char out[64];
	FILE *fp = fopen(old, "w"); /* an empty file is an empty database */

	assert_non_null(fp);
	fclose(fp);
	sql(old,
	    "CREATE TABLE certs (serial TEXT PRIMARY KEY,"
	    " device TEXT NOT NULL, not_before INTEGER NOT NULL,"
	    " not_after INTEGER NOT NULL, issued INTEGER NOT NULL,"
	    " revoked INTEGER NOT NULL DEFAULT 0, reason TEXT)",
	    NULL, 0);
	/* later migrations touch jobs and the audit log too */
	sql(old, JOBS_V4 ")", NULL, 0);
	sql(old, "CREATE TABLE audit (id INTEGER PRIMARY KEY)", NULL, 0);
	sql(old, "CREATE TABLE job_events (job TEXT, seq INTEGER)", NULL, 0);
	sql(old, "CREATE INDEX job_events_job ON job_events(job, seq)", NULL,
	    0);
	sql(old,
	    "INSERT INTO certs (serial, device, not_before, not_after,"
	    " issued, revoked) VALUES"
	    " ('a1', 'a', 0, 9e9, 10, 0), ('a2', 'a', 0, 9e9, 20, 0),"
	    " ('a3', 'a', 0, 9e9, 30, 0), ('a4', 'a', 0, 9e9, 40, 0),"
	    " ('a0', 'a', 0, 9e9, 5, 7), ('b1', 'b', 0, 9e9, 10, 0)",
	    NULL, 0);
	sql(old, "PRAGMA user_version = 4", NULL, 0);
	assert_int_equal(srv_store_open(old, &s, &err), 0);
	sql(old,
	    "SELECT group_concat(serial) FROM (SELECT serial FROM certs"
	    " WHERE pending = 1 ORDER BY serial)",
	    out, sizeof(out));
	assert_string_equal(out, "a4");
	sql(old,
	    "SELECT group_concat(serial) FROM (SELECT serial FROM certs"
	    " WHERE revoked = 0 ORDER BY serial)",
	    out, sizeof(out));
	assert_string_equal(out, "a1,a4,b1");
	sql(old,
	    "SELECT group_concat(serial) FROM (SELECT serial FROM certs"
	    " WHERE reason = 'superseded' ORDER BY serial)",
	    out, sizeof(out));
	assert_string_equal(out, "a2,a3");
	srv_store_close(s);
	free(old);
}

/* The tables migration 10 adds (rollouts). */
static const char *const v10_tables[] = {"rollout_events", "rollout_devices",
					 "rollout_waves", "rollouts", "leases"};

/* Migration 9 rebuilds jobs for the rotate type: every row, column and
 * rowid (the list's tie-break) is kept, and rotate jobs can be added. */
static void test_migrate_rotate_type(void **state)
{
	struct fixture *f = *state;
	char *old = fl_path_join(f->dir, "v8.db"), out[128];
	struct srv_job j = {.id = "j-r", .device = "d1", .type = "rotate"};
	struct srv_store *s = NULL;
	struct fl_error err = {0};
	struct srv_job_list rows = {0};
	struct srv_job_filter all = {.limit = 10};

	assert_int_equal(srv_store_open(old, &s, &err), 0);
	srv_store_close(s);
	/* back to version 8: what migrations 9 to 12 made goes */
	sql(old, "ALTER TABLE audit DROP COLUMN detail", NULL, 0);
	for (size_t i = 0; i < FL_ARRAY_SIZE(v10_tables); i++) {
		char *drop = fl_xasprintf("DROP TABLE %s", v10_tables[i]);

		sql(old, drop, NULL, 0);
		free(drop);
	}
	sql(old, "DROP TABLE jobs", NULL, 0);
	sql(old,
	    JOBS_V4 ", expires INTEGER NOT NULL DEFAULT 0,"
		    " seq INTEGER NOT NULL DEFAULT 0)",
	    NULL, 0);
	sql(old,
	    "INSERT INTO jobs (rowid, id, device, type, bundle, command,"
	    " state, final, stage, reason, created, updated, expires, seq)"
	    " VALUES (7, 'j-a', 'd1', 'update', 'b1', 'c-a', 'failed', 1,"
	    " 'verifying', 'bad', 100, 110, 500, 4),"
	    " (3, 'j-b', 'd2', 'rollback', NULL, 'c-b', 'queued', 0, NULL,"
	    " NULL, 100, 100, 0, 0)",
	    NULL, 0);
	sql(old, "DROP INDEX certs_sha256", NULL, 0); /* and 11's */
	sql(old, "ALTER TABLE certs DROP COLUMN sha256", NULL, 0);
	sql(old, "DROP TABLE shadows", NULL, 0);   /* 13's */
	sql(old, "DROP TABLE telemetry", NULL, 0); /* and 14's */
	sql(old, "DROP TABLE telemetry_state", NULL, 0);
	sql(old, "DROP TABLE dash_sessions", NULL, 0); /* 15's */
	sql(old, "DROP TABLE idempotency", NULL, 0);   /* 16's */
	sql(old, "DROP TABLE diag_uploads", NULL, 0);  /* 17's */
	sql(old, "PRAGMA user_version = 8", NULL, 0);
	assert_int_equal(srv_store_open(old, &s, &err), 0);
	assert_int_equal(srv_store_schema_version(s), 17);
	sql(old,
	    "SELECT group_concat(x, ';') FROM (SELECT rowid || ',' || id"
	    " || ',' || type || ',' || state || ',' || final || ',' ||"
	    " stage || ',' || reason || ',' || expires || ',' || seq AS x"
	    " FROM jobs WHERE id = 'j-a')",
	    out, sizeof(out));
	assert_string_equal(out, "7,j-a,update,failed,1,verifying,bad,500,4");
	sql(old,
	    "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	    " AND name IN ('jobs_device', 'jobs_open', 'jobs_command')",
	    out, sizeof(out));
	assert_string_equal(out, "3");
	/* same created: the higher rowid is listed first, as before */
	assert_int_equal(srv_store_job_list(s, &all, &rows, &err), 0);
	assert_int_equal(rows.n, 2);
	assert_string_equal(rows.v[0].id, "j-a");
	srv_job_list_free(&rows);
	assert_int_equal(srv_store_job_add(s, &j, &err), 0);
	srv_store_close(s);
	free(old);
}

/* Count the virtual-machine steps of every statement the store runs
 * (and reset the statement's count: the store reuses statements). */
static int count_steps(unsigned type, void *ctx, void *p, void *x)
{
	(void)x;
	if (type == SQLITE_TRACE_PROFILE)
		*(int64_t *)ctx += sqlite3_stmt_status(
		    (sqlite3_stmt *)p, SQLITE_STMTSTATUS_VM_STEP, 1);
	return 0;
}

/* VM steps of one re-enrolment, confirm and device lookup of @id. */
static int64_t rotation_steps(struct srv_store *s, const char *id,
			      const char *old, const char *neu)
{
	struct srv_reenroll_limits lim = {.per_hour = 6, .max_revoked = 16};
	struct hook_log log = {0};
	sqlite3 *db = sq_conn(srv_store_backend(s))->db;
	struct srv_device_row d = {0};
	struct srv_strv revoked = {0};
	struct fl_error err = {0};
	int64_t steps = 0;

	sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, count_steps, &steps);
	assert_int_equal(srv_store_reenroll_check(s, id, &lim, NULL, &err), 0);
	assert_int_equal(reenroll(s, id, old, neu, &lim, &log, NULL), 0);
	assert_int_equal(
	    srv_store_cert_confirm(s, id, neu, NULL, &revoked, &err), 0);
	srv_strv_free(&revoked);
	assert_int_equal(srv_store_device_get(s, id, &d, &err), 0);
	srv_device_row_free(&d);
	sqlite3_trace_v2(db, 0, NULL, NULL);
	return steps;
}

/* Item 4: a rotation costs the same for a device with 20,000 old
 * certificates as for a new one (no scan of the history). */
static void test_reenroll_cost_flat(void **state)
{
	struct fixture *f = *state;
	int64_t fresh, old;

	FX_SQLITE_ONLY(f);
	enroll(f->s, "dev-n", "nn01");
	enroll(f->s, "dev-h", "hh01");
	sql(f->db,
	    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1"
	    " FROM k WHERE i < 20000) INSERT INTO certs (serial, device,"
	    " not_before, not_after, issued, revoked, reason)"
	    " SELECT printf('old%05d', i), 'dev-h', 1, 1000 + i, 1000 + i,"
	    " 1000 + i, 'superseded' FROM k",
	    NULL, 0);
	fresh = rotation_steps(f->s, "dev-n", "nn01", "nn02");
	old = rotation_steps(f->s, "dev-h", "hh01", "hh02");
	print_message("VM steps: new device %lld, with history %lld\n",
		      (long long)fresh, (long long)old);
	assert_true(old < fresh + 100);
}

/*
 * Dashboard sessions in the store (issue 14): a session made through
 * one handle is found through another (two replicas), until it expires
 * or is ended; past the bound the oldest go, never the new one.
 */
static void test_dash_sessions(void **state)
{
	struct fixture *f = *state;
	struct srv_store *b = NULL;
	char hash[65], id[65], tok[65];

	memset(tok, 't', 64);
	tok[64] = '\0';
	assert_int_equal(srv_store_open(f->db, &b, NULL), 0);
	assert_int_equal(
	    srv_store_dash_put(f->s, "h1", tok, 1000, 100, 3, NULL), 0);
	assert_int_equal(srv_store_dash_get(b, "h1", 1050, 100, hash, NULL), 0);
	assert_string_equal(hash, tok);
	assert_int_equal(srv_store_dash_get(b, "h1", 1100, 100, hash, NULL),
			 FL_ENOTFOUND); /* expired */
	assert_int_equal(srv_store_dash_get(b, "h1", 999, 100, hash, NULL),
			 FL_ENOTFOUND); /* not yet made */
	assert_int_equal(srv_store_dash_get(b, "hx", 1050, 100, hash, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_dash_del(b, "h1", NULL), 0);
	assert_int_equal(srv_store_dash_get(f->s, "h1", 1050, 100, hash, NULL),
			 FL_ENOTFOUND); /* logged out on the other */
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(
		    srv_store_dash_put(b, id, tok, 2000 + i / 2, 100, 3, NULL),
		    0);
	}
	/* s4 (the newest) and the two next newest are kept */
	assert_int_equal(srv_store_dash_get(f->s, "s4", 2002, 100, hash, NULL),
			 0);
	assert_int_equal(srv_store_dash_get(f->s, "s3", 2002, 100, hash, NULL),
			 0);
	assert_int_equal(srv_store_dash_get(f->s, "s2", 2002, 100, hash, NULL),
			 0);
	assert_int_equal(srv_store_dash_get(f->s, "s1", 2002, 100, hash, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_dash_get(f->s, "s0", 2002, 100, hash, NULL),
			 FL_ENOTFOUND);
	/* a put drops what has expired */
	assert_int_equal(srv_store_dash_put(b, "late", tok, 3000, 100, 3, NULL),
			 0);
	assert_int_equal(
	    fx_sql_int(f->db, "SELECT count(*) FROM dash_sessions"), 1);
	srv_store_close(b);
}

/*
 * Idempotency keys (issue 14, idem.h): the first claim of a key makes
 * its row, a second finds it unanswered (in progress), then answered
 * with the status and answer kept, through another handle as well (two
 * replicas); a dropped claim is free again; an expired one goes with the
 * next claim.
 */
static void test_idem_keys(void **state)
{
	struct fixture *f = *state;
	struct srv_store *b = NULL;
	struct srv_idem_row row;

	assert_int_equal(srv_store_open(f->db, &b, NULL), 0);
	assert_int_equal(
	    srv_store_idem_claim(f->s, "k1", "r1", 1000, 100, &row, NULL), 0);
	assert_false(row.found);
	assert_int_equal(
	    srv_store_idem_claim(b, "k1", "r2", 1001, 100, &row, NULL), 0);
	assert_true(row.found);
	assert_false(row.answered);
	assert_string_equal(row.request_hash, "r1"); /* the first one's */
	srv_idem_row_free(&row);
	assert_int_equal(srv_store_idem_answer(f->s, "k1", 201, "sealed", NULL),
			 0);
	assert_int_equal(
	    srv_store_idem_claim(b, "k1", "r1", 1002, 100, &row, NULL), 0);
	assert_true(row.found && row.answered);
	assert_int_equal(row.status, 201);
	assert_string_equal(row.answer, "sealed");
	srv_idem_row_free(&row);
	/* kept without an answer (too big): answered, no text */
	assert_int_equal(
	    srv_store_idem_claim(f->s, "k2", "r1", 1003, 100, &row, NULL), 0);
	assert_int_equal(srv_store_idem_answer(f->s, "k2", 200, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_idem_claim(b, "k2", "r1", 1004, 100, &row, NULL), 0);
	assert_true(row.answered);
	assert_null(row.answer);
	srv_idem_row_free(&row);
	/* dropped: the next claim is a first one */
	assert_int_equal(srv_store_idem_drop(b, "k2", NULL), 0);
	assert_int_equal(
	    srv_store_idem_claim(f->s, "k2", "r1", 1005, 100, &row, NULL), 0);
	assert_false(row.found);
	/* k1 (1000) and k2 (1005) expire by 1105 */
	assert_int_equal(
	    srv_store_idem_claim(b, "k3", "r1", 1105, 100, &row, NULL), 0);
	assert_false(row.found);
	assert_int_equal(fx_sql_int(f->db, "SELECT count(*) FROM idempotency"),
			 1);
	srv_store_close(b);
}

/* The state (and size) of upload @id of d1, -1 when there is none. */
static int upload_state(struct srv_store *s, const char *id, uint64_t *size)
{
	struct srv_upload_row row = {0};
	int rc = srv_store_upload_get(s, id, "d1", &row, NULL);

	if (size)
		*size = row.size;
	free(row.error);
	return rc ? -1 : row.state;
}

/*
 * Support bundles' uploads (issue 14, diag_bundles.h): the moves of an
 * upload through two handles (two replicas: one asks, the other takes
 * the device's upload), each once; the cap; a call that ends before an
 * upload arrives; an upload cut while its call still waits; expiry of
 * settled and of stale rows.
 */
static void test_uploads(void **state)
{
	struct fixture *f = *state;
	struct srv_store *b = NULL;
	struct srv_strv gone = {0};
	struct srv_upload_row row = {0};
	uint64_t size = 0;

	assert_int_equal(srv_store_open(f->db, &b, NULL), 0);
	assert_int_equal(srv_store_upload_add(f->s, "u1", "d1", 1000, 3, NULL),
			 0);
	assert_int_equal(srv_store_upload_add(f->s, "u2", "d1", 1000, 3, NULL),
			 0);
	assert_int_equal(srv_store_upload_add(b, "u3", "d1", 1000, 3, NULL), 0);
	assert_int_equal(srv_store_upload_add(b, "u4", "d1", 1000, 3, NULL),
			 FL_ELIMIT); /* three held in all */
	assert_int_equal(upload_state(b, "u1", NULL), SRV_BUNDLE_PENDING);
	/* the upload through the other handle, once, by its device only */
	assert_int_equal(srv_store_upload_begin(b, "u1", "d2", NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_upload_begin(b, "u1", "d1", NULL), 0);
	assert_int_equal(srv_store_upload_begin(f->s, "u1", "d1", NULL),
			 FL_ECONFLICT);
	assert_int_equal(srv_store_upload_finish(b, "u1", 77, 2000, NULL), 0);
	assert_int_equal(srv_store_upload_finish(b, "u1", 77, 2000, NULL),
			 FL_ENOTFOUND); /* not uploading any more */
	/* the asking handle's call ends: the upload stays uploaded */
	assert_int_equal(srv_store_upload_settle(f->s, "u1", SRV_BUNDLE_FAILED,
						 "x", 2100, NULL),
			 0);
	assert_int_equal(upload_state(f->s, "u1", &size), SRV_BUNDLE_UPLOADED);
	assert_int_equal(size, 77);
	/* a call that ends first: failed, with the device's error */
	assert_int_equal(srv_store_upload_settle(f->s, "u2", SRV_BUNDLE_FAILED,
						 "disk full", 2000, NULL),
			 0);
	assert_int_equal(srv_store_upload_get(b, "u2", "d1", &row, NULL), 0);
	assert_int_equal(row.state, SRV_BUNDLE_FAILED);
	assert_string_equal(row.error, "disk full");
	free(row.error);
	assert_int_equal(srv_store_upload_begin(b, "u2", "d1", NULL),
			 FL_ECONFLICT);
	/* an upload cut while the call waits: pending again; once the call
	 * is done: expired */
	assert_int_equal(srv_store_upload_begin(b, "u3", "d1", NULL), 0);
	assert_int_equal(srv_store_upload_abort(b, "u3", 2000, NULL), 0);
	assert_int_equal(upload_state(f->s, "u3", NULL), SRV_BUNDLE_PENDING);
	assert_int_equal(srv_store_upload_begin(b, "u3", "d1", NULL), 0);
	assert_int_equal(srv_store_upload_settle(f->s, "u3", SRV_BUNDLE_EXPIRED,
						 NULL, 2500, NULL),
			 0);
	assert_int_equal(upload_state(f->s, "u3", NULL), SRV_BUNDLE_UPLOADING);
	assert_int_equal(srv_store_upload_abort(b, "u3", 2600, NULL), 0);
	assert_int_equal(upload_state(f->s, "u3", NULL), SRV_BUNDLE_EXPIRED);
	/* expiry: u1 and u2 settled by 2100, u3 at 2600; keep 500 */
	assert_int_equal(srv_store_upload_add(b, "u5", "d1", 2500, 4, NULL), 0);
	assert_int_equal(
	    srv_store_upload_expire(b, 2600, 500, 100000, &gone, NULL), 0);
	assert_int_equal(gone.n, 2);
	assert_int_equal(upload_state(f->s, "u1", NULL), -1);
	assert_int_equal(upload_state(f->s, "u2", NULL), -1);
	assert_int_equal(upload_state(f->s, "u3", NULL), SRV_BUNDLE_EXPIRED);
	srv_strv_free(&gone);
	/* begun longer ago than stale (its fleetd died, or an expired one
	 * kept past it): gone, whatever its state */
	assert_int_equal(
	    srv_store_upload_expire(f->s, 3000, 500, 600, &gone, NULL), 0);
	assert_int_equal(gone.n, 1);
	assert_string_equal(gone.v[0], "u3"); /* begun at 1000 */
	srv_strv_free(&gone);
	assert_int_equal(upload_state(b, "u5", NULL), SRV_BUNDLE_PENDING);
	assert_int_equal(
	    srv_store_upload_expire(f->s, 3101, 500, 600, &gone, NULL), 0);
	assert_int_equal(gone.n, 1);
	assert_string_equal(gone.v[0], "u5");
	srv_strv_free(&gone);
	srv_store_close(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_open_creates_schema),
	    T(test_dash_sessions),
	    T(test_idem_keys),
	    T(test_uploads),
	    T(test_reopen_idempotent),
	    T(test_open_errors),
	    T(test_wal),
	    T(test_token_add_find),
	    T(test_token_duplicates),
	    T(test_token_list),
	    T(test_token_revoke),
	    T(test_audit),
	    T(test_audit_time),
	    T(test_shared_between_threads),
	    T(test_cert_add_needs_active),
	    T(test_enroll_decommissioned_id),
	    T(test_one_pending),
	    T(test_reenroll_limits),
	    T(test_confirm_newest_only),
	    T(test_decommission_atomic),
	    T(test_migrate_pending),
	    T(test_migrate_rotate_type),
	    T(test_reenroll_cost_flat),
	    cmocka_unit_test(test_roles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
