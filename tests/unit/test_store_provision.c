/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_provision: undoing a provision whose archive was
 * never written (issue 8 item 12), on a real SQLite file.
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
#include "ingest.h"
#include "store.h"
#include "util.h"

#include "store_fixture.h"

static int provision(struct fixture *f, const char *id, const char *serial)
{
	struct srv_cert c = {serial, id, time(NULL), time(NULL) + 3600, NULL};

	return srv_store_device_enroll(f->s, id, "line-1", "token:op", NULL,
				       false, &c, NULL);
}

static bool revoked(struct fixture *f, const char *serial)
{
	struct srv_cert_row c = {0};
	bool r;

	assert_int_equal(srv_store_cert_get(f->s, serial, &c, NULL), 0);
	r = c.revoked;
	srv_cert_row_free(&c);
	return r;
}

static const char *state_of(struct fixture *f, const char *id, char *buf,
			    size_t len)
{
	struct srv_device_row d = {0};

	if (srv_store_device_get(f->s, id, &d, NULL))
		return NULL;
	fl_strlcpy(buf, d.state, len);
	srv_device_row_free(&d);
	return buf;
}

/* A fresh device is forgotten and its id is free again. */
static void test_undo_new(void **state)
{
	struct fixture *f = *state;
	char buf[32];

	assert_int_equal(provision(f, "dev-1", "aa01"), 0);
	assert_int_equal(provision(f, "dev-1", "aa02"), FL_ECONFLICT);
	assert_int_equal(srv_store_provision_undo(f->s, "dev-1", "ff", NULL),
			 FL_ECONFLICT); /* not its certificate */
	assert_int_equal(srv_store_provision_undo(f->s, "dev-x", "aa01", NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_provision_undo(f->s, "dev-1", "aa01", NULL),
			 0);
	assert_null(state_of(f, "dev-1", buf, sizeof(buf)));
	assert_true(revoked(f, "aa01"));
	assert_int_equal(srv_store_provision_undo(f->s, "dev-1", "aa01", NULL),
			 FL_ENOTFOUND); /* once */
	assert_int_equal(provision(f, "dev-1", "aa03"), 0); /* the retry */
	assert_string_equal(state_of(f, "dev-1", buf, sizeof(buf)), "active");
}

/* Presence over MQTT, as fleetd's ingest path stores it. */
static int presence(struct fixture *f, const char *id, bool online)
{
	json_t *msg = json_pack("{s:b}", "online", online);
	struct srv_ingest_item it = {.kind = SRV_INGEST_PRESENCE, .device = id};
	char *text = srv_ingest_item_json(&it, msg);
	int rc = srv_store_ingest(f->s, &it, 1, NULL);

	free(text);
	json_decref(msg);
	return rc ? -1 : (int)it.result;
}

/* A device that has been seen is never undone. */
static void test_undo_refuses_used(void **state)
{
	struct fixture *f = *state;
	char buf[32];

	assert_int_equal(provision(f, "dev-2", "bb01"), 0);
	assert_int_equal(presence(f, "dev-2", true), SRV_INGEST_STORED);
	assert_int_equal(presence(f, "dev-2", false), SRV_INGEST_STORED);
	assert_int_equal(srv_store_provision_undo(f->s, "dev-2", "bb01", NULL),
			 FL_ECONFLICT);
	assert_string_equal(state_of(f, "dev-2", buf, sizeof(buf)), "active");
	assert_false(revoked(f, "bb01"));
}

/* An undone id is free again: the retry provisions it. */
static void test_undo_then_retry(void **state)
{
	struct fixture *f = *state;
	char buf[32];

	assert_int_equal(provision(f, "dev-3", "cc01"), 0);
	assert_int_equal(srv_store_provision_undo(f->s, "dev-3", "cc01", NULL),
			 0);
	assert_true(revoked(f, "cc01"));
	assert_int_equal(provision(f, "dev-3", "cc02"), 0);
	assert_string_equal(state_of(f, "dev-3", buf, sizeof(buf)), "active");
	assert_false(revoked(f, "cc02"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_undo_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undo_refuses_used, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_undo_then_retry, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
