/* SPDX-License-Identifier: MIT */
/*
 * The device shadow's rules (common/shadow.h) and their store
 * (store_sql_shadow.c): per-key last writer wins by version, null
 * deletes, the delta; a write's version check and size cap in one
 * transaction that changes nothing when it fails; reports older than
 * the stored one dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ingest.h"
#include "json.h"
#include "shadow.h"

#include "store_fixture.h"

static json_t *J(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

/* @got equals the JSON @want; @got's reference is kept. */
static void assert_json(const json_t *got, const char *want)
{
	json_t *w = J(want);

	if (!json_equal(got, w)) {
		char *g = fl_json_dumps(got);

		fail_msg("got %s, want %s", g, want);
		free(g);
	}
	json_decref(w);
}

static void merge(json_t *state, json_t *meta, const char *patch,
		  int64_t version, size_t want_changed)
{
	json_t *p = J(patch);

	assert_int_equal(fl_shadow_merge(state, meta, p, version),
			 want_changed);
	json_decref(p);
}

static void test_merge_rule(void **unused)
{
	json_t *state = json_object(), *meta = json_object();

	merge(state, meta, "{\"a\": 1, \"b\": \"x\", \"c\": [1]}", 1, 3);
	assert_json(state, "{\"a\": 1, \"b\": \"x\", \"c\": [1]}");
	/* keys a write does not name stay; the same value is no change */
	merge(state, meta, "{\"a\": 2, \"b\": \"x\"}", 2, 1);
	assert_json(state, "{\"a\": 2, \"b\": \"x\", \"c\": [1]}");
	/* null deletes; deleting a missing key changes nothing */
	merge(state, meta, "{\"c\": null, \"zz\": null}", 3, 1);
	assert_json(state, "{\"a\": 2, \"b\": \"x\"}");
	/* an older write loses, per key: a (v2) and c (deleted at v3) keep
	 * the newer writer's state, d (never written) is taken */
	merge(state, meta, "{\"a\": 9, \"c\": 9, \"d\": 9}", 1, 1);
	assert_json(state, "{\"a\": 2, \"b\": \"x\", \"d\": 9}");
	/* a write at the same version as the key's is the later writer */
	merge(state, meta, "{\"a\": 3}", 2, 1);
	assert_json(state, "{\"a\": 3, \"b\": \"x\", \"d\": 9}");
	assert_json(meta, "{\"a\": 2, \"b\": 2, \"c\": 3, \"zz\": 3, "
			  "\"d\": 1}");
	json_decref(state);
	json_decref(meta);
}

static void test_delta(void **unused)
{
	json_t *d = J("{\"a\": 1, \"b\": {\"x\": 1}, \"c\": \"s\", "
		      "\"e\": 1.0}");
	json_t *r = J("{\"a\": 1, \"b\": {\"x\": 2}, \"extra\": 1, "
		      "\"e\": 1.0}");
	json_t *delta = fl_shadow_delta(d, r), *none;

	/* values compared deeply; reported-only keys are no delta */
	assert_json(delta, "{\"b\": {\"x\": 1}, \"c\": \"s\"}");
	none = fl_shadow_delta(r, r);
	assert_json(none, "{}");
	json_decref(delta);
	json_decref(none);
	json_decref(d);
	json_decref(r);
}

static void test_check_report(void **unused)
{
	const char *bad[] = {
	    "{\"state\": {}}",
	    "{\"version\": -1, \"state\": {}}",
	    "{\"version\": 1}",
	    "{\"version\": 1, \"state\": {\"a\": null}}",
	    "{\"version\": 1, \"state\": {}, \"refused\": {\"a\": 1}}",
	    "{\"version\": 1, \"state\": {}, \"refused\": []}"};
	json_t *j = J("{\"version\": 0, \"state\": {\"a\": [1]}, "
		      "\"refused\": {\"b\": \"unknown key\"}}");

	assert_int_equal(fl_shadow_check_report(j, NULL), 0);
	json_decref(j);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		j = J(bad[i]);
		assert_int_not_equal(fl_shadow_check_report(j, NULL), 0);
		json_decref(j);
	}
}

static void test_check(void **unused)
{
	const char *bad[] = {"[1]", "{\"a/b\": 1}", "{\"\": 1}", "{\"a+\": 1}"};
	json_t *ok = J("{\"log_level\": \"info\", \"x.y-z_1\": null}"), *j;

	assert_int_equal(fl_shadow_check(ok, true, NULL), 0);
	/* a whole document has no nulls */
	assert_int_equal(fl_shadow_check(ok, false, NULL), FL_EINVAL);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		j = J(bad[i]);
		assert_int_equal(fl_shadow_check(j, true, NULL), FL_EINVAL);
		json_decref(j);
	}
	assert_int_equal(fl_shadow_check(NULL, true, NULL), FL_EINVAL);
	json_decref(ok);
}

static void enroll(struct fixture *f, const char *id)
{
	struct srv_cert c = {"01", id, time(NULL) - 60, time(NULL) + 3600,
			     NULL};

	assert_int_equal(srv_store_device_enroll(f->s, id, NULL, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

static int write(struct fixture *f, const char *patch, int64_t if_version,
		 size_t max)
{
	json_t *p = J(patch);
	struct srv_shadow_write w = {p, if_version, max};
	struct fl_error err = {0};
	int rc = srv_store_shadow_update(f->s, "d1", &w, NULL, &err);

	json_decref(p);
	return rc;
}

static void get(struct fixture *f, struct srv_shadow_row *r)
{
	assert_int_equal(srv_store_shadow_get(f->s, "d1", r, NULL), 0);
}

static void test_store_write(void **state)
{
	struct fixture *f = *state;
	struct srv_shadow_row r = {0};

	assert_int_equal(srv_store_shadow_get(f->s, "d1", &r, NULL),
			 FL_ENOTFOUND);
	enroll(f, "d1");
	get(f, &r);
	assert_int_equal(r.desired_version, 0);
	assert_json(r.desired, "{}");
	srv_shadow_row_free(&r);
	assert_int_equal(write(f, "{\"a\": 1, \"b\": 2}", 0, 4096), 0);
	assert_int_equal(write(f, "{\"b\": null}", -1, 4096), 0);
	/* a version mismatch and an oversize result change nothing */
	assert_int_equal(write(f, "{\"a\": 5}", 1, 4096), FL_ECONFLICT);
	assert_int_equal(
	    write(f, "{\"a\": \"0123456789012345678901234\"}", 2, 60),
	    FL_ELIMIT);
	get(f, &r);
	assert_int_equal(r.desired_version, 2);
	assert_json(r.desired, "{\"a\": 1}");
	assert_json(r.desired_meta, "{\"a\": 1, \"b\": 2}");
	assert_true(r.desired_updated > 0);
	srv_shadow_row_free(&r);
}

/* A report through the ingest path, as fleetd's MQTT side stores it. */
static void report(struct fixture *f, const char *device, int64_t version,
		   const char *state, enum srv_ingest_result want)
{
	char *text = fl_xasprintf("{\"version\": %lld, \"state\": %s, "
				  "\"refused\": {\"x\": \"unknown key\"}}",
				  (long long)version, state);
	json_t *j = J(text);
	struct srv_ingest_item it = {.kind = SRV_INGEST_SHADOW,
				     .device = device};

	assert_int_equal(fl_shadow_check_report(j, NULL), 0);
	it.f.version = version;
	it.text = text;
	assert_int_equal(srv_store_ingest(f->s, &it, 1, NULL), 0);
	assert_int_equal(it.result, want);
	json_decref(j);
	free(text);
}

static void test_store_report(void **state)
{
	struct fixture *f = *state;
	struct srv_shadow_row r = {0};

	enroll(f, "d1");
	report(f, "d1", 3, "{\"a\": 3}", SRV_INGEST_STORED);
	/* late, older: dropped */
	report(f, "d1", 2, "{\"a\": 2}", SRV_INGEST_DUPLICATE);
	/* the same version again: the newer report */
	report(f, "d1", 3, "{\"a\": 4}", SRV_INGEST_STORED);
	report(f, "nosuch", 3, "{}", SRV_INGEST_REJECTED);
	get(f, &r);
	assert_int_equal(r.reported_version, 3);
	assert_json(r.reported, "{\"a\": 4}");
	assert_json(r.refused, "{\"x\": \"unknown key\"}");
	srv_shadow_row_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_rule),
	    cmocka_unit_test(test_delta),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_check_report),
	    cmocka_unit_test_setup_teardown(test_store_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_report, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
