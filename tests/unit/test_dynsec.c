/* SPDX-License-Identifier: MIT */
/*
 * server-stub/dynsec: fleetd's default ACL policy for mosquitto's
 * dynamic-security plugin and the migration of old dynsec.json files
 * (issue 8, item 1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "dynsec.h"
#include "fsutil.h"
#include "json.h"
#include "util.h"

/* What fleetd <= issue 8 wrote, plus a client disabled at decommission
 * and a role someone added. */
static const char old_text[] =
	"{\"defaultACLAccess\": {\"publishClientSend\": false,"
	" \"publishClientReceive\": true, \"subscribe\": false,"
	" \"unsubscribe\": true},"
	" \"clients\": [{\"username\": \"dev-gone\", \"disabled\": true},"
	" {\"username\": \"dev-ok\"}],"
	" \"groups\": [], \"roles\": [{\"rolename\": \"ops\"}]}\n";

static char *path_in(void **state)
{
	struct tmpdir_fixture *f = *state;

	return fl_path_join(f->dir, "dynsec.json");
}

static json_t *load(const char *path)
{
	json_t *j = NULL;

	assert_int_equal(fl_json_load_file(path, SRV_DYNSEC_MAX_FILE, &j, NULL),
			 0);
	return j;
}

static bool acl(json_t *root, const char *type)
{
	json_t *v = json_object_get(json_object_get(root, "defaultACLAccess"),
				    type);

	assert_true(json_is_boolean(v));
	return json_is_true(v);
}

static void assert_policy(json_t *root)
{
	assert_false(acl(root, "publishClientReceive"));
	assert_false(acl(root, "publishClientSend"));
	assert_false(acl(root, "subscribe"));
	assert_true(acl(root, "unsubscribe"));
}

static void test_fresh_file(void **state)
{
	char *p = path_in(state);
	bool migrated = true;
	struct stat st;
	json_t *j;

	assert_int_equal(srv_dynsec_write(p, &migrated, NULL), 0);
	assert_false(migrated);
	j = load(p);
	assert_policy(j);
	assert_int_equal(json_array_size(json_object_get(j, "clients")), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	json_decref(j);
	free(p);
}

static void test_migrates_keeping_clients(void **state)
{
	char *p = path_in(state);
	bool migrated = false;
	json_t *j, *c;

	assert_int_equal(fl_write_atomic_str(p, old_text, 0600, NULL), 0);
	assert_int_equal(srv_dynsec_write(p, &migrated, NULL), 0);
	assert_true(migrated);
	j = load(p);
	assert_policy(j);
	c = json_object_get(j, "clients");
	assert_int_equal(json_array_size(c), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(c, 0), "username")),
			    "dev-gone");
	assert_true(json_is_true(
		json_object_get(json_array_get(c, 0), "disabled")));
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(j, "roles"),
						   0),
				    "rolename")),
			    "ops");
	json_decref(j);
	/* a second run has nothing to do */
	assert_int_equal(srv_dynsec_write(p, &migrated, NULL), 0);
	assert_false(migrated);
	free(p);
}

static void test_missing_default_acl(void **state)
{
	char *p = path_in(state);
	bool migrated = false;
	json_t *j;

	assert_int_equal(fl_write_atomic_str(p, "{\"clients\": []}", 0600,
					     NULL),
			 0);
	assert_int_equal(srv_dynsec_write(p, &migrated, NULL), 0);
	assert_true(migrated);
	j = load(p);
	assert_policy(j);
	json_decref(j);
	free(p);
}

static void test_refuses_garbage(void **state)
{
	char *p = path_in(state);
	struct fl_error err = {0};
	char *text = NULL;

	assert_int_equal(fl_write_atomic_str(p, "[1, 2]", 0600, NULL), 0);
	assert_int_equal(srv_dynsec_write(p, NULL, &err), FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_write_atomic_str(p, "{\"clients\": ", 0600, NULL),
			 0);
	assert_int_equal(srv_dynsec_write(p, NULL, &err), FL_EPARSE);
	/* a file it cannot read is left as it was */
	assert_int_equal(fl_read_file(p, 1024, &text, NULL, NULL), 0);
	assert_string_equal(text, "{\"clients\": ");
	free(text);
	free(p);
}

static void test_policy_cmd(void **state)
{
	json_t *cmd = srv_dynsec_policy_cmd(), *v;
	size_t i, n = 0;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(cmd, "command")),
			    "setDefaultACLAccess");
	json_array_foreach(json_object_get(cmd, "acls"), i, v) {
		const char *t = json_string_value(json_object_get(v, "acltype"));

		if (strcmp(t, "publishClientReceive") == 0) {
			assert_true(json_is_false(json_object_get(v, "allow")));
			n++;
		}
	}
	assert_int_equal(n, 1);
	json_decref(cmd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fresh_file),
		T(test_migrates_keeping_clients),
		T(test_missing_default_acl),
		T(test_refuses_garbage),
		cmocka_unit_test(test_policy_cmd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
