/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_sql_devquery: devices as typed rows (list
 * filters, labels, certificates, last event) and the device principal
 * check, on a real SQLite file.
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

static void enroll(struct fixture *f, const char *id, const char *group,
		   const char *serial)
{
	struct srv_cert c = {serial, id, time(NULL) - 60, time(NULL) + 3600,
			     NULL};

	assert_int_equal(srv_store_device_enroll(f->s, id, group, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

static void labels(struct fixture *f, const char *id, const char *k,
		   const char *v, const char *rm, int want)
{
	struct srv_label l = {(char *)k, (char *)v};
	struct srv_label_list set = {k ? 1 : 0, &l};
	char *r[] = {(char *)rm};
	struct srv_strv remove = {rm ? 1 : 0, r};

	assert_int_equal(srv_store_device_labels(f->s, id, &set, &remove, NULL),
			 want);
}

static void ingest(struct fixture *f, enum srv_ingest_kind kind, const char *id,
		   json_t *msg)
{
	struct srv_ingest_item it = {.kind = kind, .device = id};
	char *text = srv_ingest_item_json(&it, msg);

	assert_int_equal(srv_store_ingest(f->s, &it, 1, NULL), 0);
	assert_int_equal(it.result, SRV_INGEST_STORED);
	free(text);
	json_decref(msg);
}

/* The ids of a filtered list, comma separated, into @buf. */
static const char *ids(struct fixture *f, const struct srv_device_filter *flt,
		       char *buf, size_t len)
{
	struct srv_device_list l = {0};

	assert_int_equal(srv_store_device_list(f->s, flt, &l, NULL), 0);
	buf[0] = '\0';
	for (size_t i = 0, at = 0; i < l.n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "",
				       l.v[i].id);
	srv_device_list_free(&l);
	return buf;
}

static void test_get_row(void **state)
{
	struct fixture *f = *state;
	struct srv_device_row d = {0};
	struct fl_error err = {0};
	int64_t before = time(NULL);

	enroll(f, "dev-1", "line-1", "0a01");
	labels(f, "dev-1", "site", "berlin", NULL, 0);
	labels(f, "dev-1", "rack", "r1", NULL, 0);
	labels(f, "dev-1", "a", "z", NULL, 0);
	ingest(f, SRV_INGEST_PRESENCE, "dev-1",
	       json_pack("{s:b, s:s, s:s}", "online", 1, "agent", "0.9",
			 "firmware", "1.2.0"));
	ingest(f, SRV_INGEST_EVENT, "dev-1",
	       json_pack("{s:i, s:s}", "seq", 4, "kind", "boot"));
	assert_int_equal(srv_store_device_get(f->s, "dev-1", &d, &err), 0);
	assert_string_equal(d.id, "dev-1");
	assert_string_equal(d.group, "line-1");
	assert_string_equal(d.state, "active");
	assert_true(d.online);
	assert_true(d.last_seen >= before);
	assert_string_equal(d.firmware, "1.2.0");
	assert_string_equal(d.agent, "0.9");
	assert_null(d.slot);
	assert_null(d.health);
	assert_true(d.created >= before);
	assert_string_equal(d.enrolled_by, "token:t");
	/* labels come sorted by key */
	assert_int_equal(d.labels.n, 3);
	assert_string_equal(d.labels.v[0].key, "a");
	assert_string_equal(d.labels.v[1].key, "rack");
	assert_string_equal(d.labels.v[2].value, "berlin");
	assert_string_equal(d.cert_serial, "0a01");
	assert_true(d.cert_expires > before);
	assert_int_equal(d.active_certs.n, 1);
	assert_non_null(strstr(d.last_event, "\"boot\""));
	srv_device_row_free(&d);
	srv_device_row_free(&d); /* freeing twice is harmless */

	assert_int_equal(srv_store_device_get(f->s, "nobody", &d, &err),
			 FL_ENOTFOUND);
	assert_null(d.id); /* untouched on failure */
}

/* Every filter of srv_store_device_list, alone and together. */
static void test_list_filters(void **state)
{
	struct fixture *f = *state;
	struct srv_device_filter all = {.online = -1};
	struct srv_device_filter flt;
	char buf[128];

	enroll(f, "dev-c", "g1", "0c");
	enroll(f, "dev-a", "g1", "0a");
	enroll(f, "dev-b", NULL, "0b");
	enroll(f, "dev-d", "g2", "0d");
	labels(f, "dev-a", "site", "berlin", NULL, 0);
	labels(f, "dev-b", "site", "paris", NULL, 0);
	ingest(f, SRV_INGEST_PRESENCE, "dev-b",
	       json_pack("{s:b, s:s}", "online", 1, "firmware", "2.0"));
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-d", NULL, NULL, NULL), 0);
	assert_string_equal(ids(f, &all, buf, sizeof(buf)),
			    "dev-a,dev-b,dev-c");
	flt = all;
	flt.include_decommissioned = true;
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)),
			    "dev-a,dev-b,dev-c,dev-d");
	flt = all;
	flt.group = "g1";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-a,dev-c");
	flt = all;
	flt.label_key = "site";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-a,dev-b");
	flt.label_value = "paris";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-b");
	flt = all;
	flt.online = 1;
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-b");
	flt.online = 0;
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-a,dev-c");
	flt = all;
	flt.firmware = "2.0";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "dev-b");
	flt.group = "g1";
	assert_string_equal(ids(f, &flt, buf, sizeof(buf)), "");
}

/* Labels: replace, remove, the cap, unknown and retired devices. */
static void test_labels(void **state)
{
	struct fixture *f = *state;
	struct srv_device_row d = {0};
	char k[16];

	enroll(f, "dev-l", NULL, "11");
	labels(f, "dev-l", "k", "v1", NULL, 0);
	labels(f, "dev-l", "k", "v2", "other", 0);
	assert_int_equal(srv_store_device_get(f->s, "dev-l", &d, NULL), 0);
	assert_int_equal(d.labels.n, 1);
	assert_string_equal(d.labels.v[0].value, "v2");
	srv_device_row_free(&d);
	labels(f, "dev-l", NULL, NULL, "k", 0);
	assert_int_equal(srv_store_device_get(f->s, "dev-l", &d, NULL), 0);
	assert_int_equal(d.labels.n, 0);
	srv_device_row_free(&d);
	for (int i = 0; i < 64; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		labels(f, "dev-l", k, "v", NULL, 0);
	}
	/* the 65th is refused and the whole change rolled back */
	labels(f, "dev-l", "a-65th", "v", NULL, FL_ELIMIT);
	assert_int_equal(srv_store_device_get(f->s, "dev-l", &d, NULL), 0);
	assert_int_equal(d.labels.n, 64);
	assert_string_equal(d.labels.v[0].key, "k00");
	/* one in, one out stays within the cap */
	labels(f, "dev-l", "a-65th", "v", "k00", 0);
	srv_device_row_free(&d);
	labels(f, "nobody", "k", "v", NULL, FL_ENOTFOUND);
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-l", NULL, NULL, NULL), 0);
	labels(f, "dev-l", "k", "v", NULL, FL_ENOTFOUND);
}

/* The newest unrevoked certificate is the current one; every unrevoked
 * one is listed; the principal check follows revocation. */
static void test_certs_and_principal(void **state)
{
	struct fixture *f = *state;
	struct srv_cert neu = {"0b02", "dev-p", time(NULL), time(NULL) + 60,
			       NULL};
	struct srv_reenroll re = {&neu, "0b01", NULL, NULL};
	struct srv_device_row d = {0};
	struct srv_strv revoked = {0};

	enroll(f, "dev-p", NULL, "0b01");
	assert_int_equal(
	    srv_store_device_principal(f->s, "0b01", "dev-p", NULL), 0);
	assert_int_equal(
	    srv_store_device_principal(f->s, "0b01", "dev-q", NULL),
	    FL_EDENIED);
	assert_int_equal(
	    srv_store_device_principal(f->s, "ffff", "dev-p", NULL),
	    FL_EDENIED);
	assert_int_equal(srv_store_cert_add(f->s, &re, NULL, NULL, NULL), 0);
	assert_int_equal(srv_store_device_get(f->s, "dev-p", &d, NULL), 0);
	assert_string_equal(d.cert_serial, "0b02");
	assert_int_equal(d.cert_expires, neu.not_after);
	assert_int_equal(d.active_certs.n, 2);
	assert_string_equal(d.active_certs.v[0], "0b01"); /* confirmed first */
	assert_string_equal(d.active_certs.v[1], "0b02");
	srv_device_row_free(&d);
	assert_int_equal(
	    srv_store_cert_confirm(f->s, "dev-p", "0b02", NULL, &revoked, NULL),
	    0);
	assert_int_equal(revoked.n, 1);
	assert_string_equal(revoked.v[0], "0b01");
	srv_strv_free(&revoked);
	assert_int_equal(
	    srv_store_device_principal(f->s, "0b01", "dev-p", NULL),
	    FL_EDENIED);
	assert_int_equal(
	    srv_store_device_decommission(f->s, "dev-p", NULL, &revoked, NULL),
	    0);
	assert_int_equal(revoked.n, 1);
	srv_strv_free(&revoked);
	assert_int_equal(srv_store_device_get(f->s, "dev-p", &d, NULL), 0);
	assert_string_equal(d.state, "decommissioned");
	assert_null(d.cert_serial);
	assert_int_equal(d.active_certs.n, 0);
	srv_device_row_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_certs_and_principal, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
