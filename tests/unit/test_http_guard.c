/* SPDX-License-Identifier: MIT */
/*
 * server-stub/http_guard: the audit rate limit for refused anonymous
 * requests and the connection deadlines; and the store checks httpd.c
 * relies on: the last admin token cannot be revoked, a device principal
 * needs an unrevoked certificate of an active device.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "http_guard.h"
#include "srv.h"
#include "store.h"
#include "util.h"

struct fixture {
	char dir[64];
	char *db;
	struct srv srv;
};

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	struct fl_error err = {0};

	*state = f;
	if (test_mkdtemp(f->dir, "guard"))
		return -1;
	f->db = fl_path_join(f->dir, "fleet.db");
	f->srv.cfg.http.header_timeout = 1;
	if (srv_store_open(f->db, &f->srv.store, &err))
		return -1;
	return srv_guard_start(&f->srv, &err) ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	srv_guard_stop(&f->srv);
	srv_store_close(f->srv.store);
	rc = test_rmtree(f->dir);
	free(f->db);
	free(f);
	return rc;
}

static int audit_rows(struct srv_store *s, const char *remote, int status)
{
	struct fl_error err = {0};
	struct srv_audit_list rows = {0};
	int n = 0;

	assert_int_equal(srv_store_audit_list(s, 10000, &rows, &err), 0);
	for (size_t i = 0; i < rows.n; i++)
		if (fl_streq(rows.v[i].remote, remote) &&
		    rows.v[i].status == status)
			n++;
	srv_audit_list_free(&rows);
	return n;
}

static void test_audit_per_address(void **state)
{
	struct fixture *f = *state;
	bool marker;
	int allowed = 0, markers = 0;

	for (int i = 0; i < 50; i++) {
		allowed += srv_guard_audit_allowed(f->srv.http, "10.0.0.1",
						   &marker);
		markers += marker;
	}
	assert_int_equal(allowed, SRV_AUDIT_PER_ADDR);
	assert_int_equal(markers, 1);
	/* another address has its own allowance */
	assert_true(srv_guard_audit_allowed(f->srv.http, "10.0.0.2", &marker));
	assert_false(marker);
	/* stopping writes the count of what was not recorded */
	srv_guard_stop(&f->srv);
	assert_int_equal(audit_rows(f->srv.store, "10.0.0.1", 429), 1);
	assert_int_equal(audit_rows(f->srv.store, "10.0.0.2", 429), 0);
}

static void test_audit_global(void **state)
{
	struct fixture *f = *state;
	char addr[32];
	int allowed = 0;

	for (int a = 0; a < 30; a++) {
		snprintf(addr, sizeof(addr), "10.1.0.%d", a);
		for (int i = 0; i < SRV_AUDIT_PER_ADDR; i++)
			allowed += srv_guard_audit_allowed(f->srv.http, addr,
							   NULL);
	}
	assert_int_equal(allowed, SRV_AUDIT_GLOBAL);
}

/* A connection past its header deadline has its socket shut down. */
static void test_deadline_shuts_socket(void **state)
{
	struct fixture *f = *state;
	struct pollfd p = {.events = POLLIN};
	struct srv_conn *c;
	int sv[2];
	int64_t t0 = fl_now_ms();
	char b;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = srv_guard_conn_new(f->srv.http, sv[0]);
	p.fd = sv[1];
	assert_int_equal(poll(&p, 1, 10000), 1); /* bounded wait */
	assert_int_equal(read(sv[1], &b, 1), 0); /* EOF: shut down */
	assert_true(fl_now_ms() - t0 >= 900);
	assert_false(srv_guard_in_time(f->srv.http, c));
	srv_guard_conn_free(f->srv.http, c);
	close(sv[0]);
	close(sv[1]);
}

/* Operator token row straight into the store. */
static void add_token(struct srv_store *s, const char *id, int role,
		      int64_t expires)
{
	struct srv_token t = {.role = role, .uses_left = -1,
			      .expires = expires};
	struct fl_error err = {0};
	char hash[65];

	fl_strlcpy(t.id, id, sizeof(t.id));
	fl_strlcpy(t.name, id, sizeof(t.name));
	fl_strlcpy(t.kind, "operator", sizeof(t.kind));
	fl_sha256_hex(id, strlen(id), hash);
	assert_int_equal(srv_store_token_add(s, &t, hash, NULL, "test", &err),
			 0);
}

static void test_last_admin_token(void **state)
{
	struct srv_store *s = ((struct fixture *)*state)->srv.store;
	struct fl_error err = {0};

	add_token(s, "a1", SRV_ROLE_ADMIN, 0);
	add_token(s, "old", SRV_ROLE_ADMIN, (int64_t)time(NULL) - 1);
	add_token(s, "view", SRV_ROLE_VIEWER, 0);
	assert_int_equal(srv_store_token_revoke(s, "a1", &err), FL_ECONFLICT);
	fl_error_clear(&err);
	/* tokens that are not the last admin go as before */
	assert_int_equal(srv_store_token_revoke(s, "view", &err), 0);
	assert_int_equal(srv_store_token_revoke(s, "old", &err), 0);
	assert_int_equal(srv_store_token_revoke(s, "nope", &err),
			 FL_ENOTFOUND);
	fl_error_clear(&err);
	add_token(s, "a2", SRV_ROLE_ADMIN, (int64_t)time(NULL) + 3600);
	assert_int_equal(srv_store_token_revoke(s, "a1", &err), 0);
	assert_int_equal(srv_store_token_revoke(s, "a1", &err), 0); /* again */
	assert_int_equal(srv_store_token_revoke(s, "a2", &err), FL_ECONFLICT);
}

static void test_device_principal(void **state)
{
	struct srv_store *s = ((struct fixture *)*state)->srv.store;
	struct srv_cert c1 = {"01aa", "dev1", 0, INT64_MAX / 2, NULL};
	struct srv_cert c2 = {"02bb", "dev2", 0, INT64_MAX / 2, NULL};
	struct srv_cert c3 = {"03cc", "dev2", 0, INT64_MAX / 2, NULL};
	struct srv_reenroll re = {&c3, "02bb", NULL, NULL};
	struct fl_error err = {0};

	assert_int_equal(srv_store_device_enroll(s, "dev1", NULL, "test", NULL,
						 false, &c1, &err),
			 0);
	assert_int_equal(srv_store_device_enroll(s, "dev2", NULL, "test", NULL,
						 false, &c2, &err),
			 0);
	assert_int_equal(srv_store_device_principal(s, "01aa", "dev1", &err),
			 0);
	assert_int_equal(srv_store_device_principal(s, "ffff", "dev1", &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	assert_int_equal(srv_store_device_principal(s, "01aa", "dev2", &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	assert_int_equal(
		srv_store_device_decommission(s, "dev1", NULL, NULL, &err), 0);
	assert_int_equal(srv_store_device_principal(s, "01aa", "dev1", &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	/* a rotation revokes dev2's first certificate; dev2 stays active */
	assert_int_equal(srv_store_cert_add(s, &re, NULL, NULL, &err), 0);
	assert_int_equal(srv_store_cert_confirm(s, "dev2", "03cc", NULL, NULL,
						&err),
			 0);
	assert_int_equal(srv_store_device_principal(s, "02bb", "dev2", &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	assert_int_equal(srv_store_device_principal(s, "03cc", "dev2", &err),
			 0);
}

/* A certificate's digest: @c repeated, 64 hex digits. */
#define SHA(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

/* The holder of a certificate the store recorded with its digest may act
 * as srv_store_device_principal says, and only within its validity; a
 * digest the store does not know is FL_ENOTFOUND (verified elsewhere). */
static void test_device_by_cert(void **state)
{
	struct srv_store *s = ((struct fixture *)*state)->srv.store;
	int64_t now = time(NULL);
	struct srv_cert c1 = {"01aa", "dev1", now - 60, now + 60, SHA("11")};
	struct srv_cert c2 = {"02bb", "dev2", now - 60, now + 60, SHA("22")};
	struct srv_cert c3 = {"03cc", "dev2", now - 60, now + 60, SHA("33")};
	struct srv_cert early = {"04dd", "dev3", now + 60, now + 120,
				 SHA("44")};
	struct srv_cert late = {"05ee", "dev4", now - 120, now - 60, SHA("55")};
	struct srv_cert none = {"06ff", "dev5", now - 60, now + 60, NULL};
	struct srv_reenroll re = {&c3, "02bb", NULL, NULL};
	struct srv_cert_holder h = {{0}, {0}};
	struct fl_error err = {0};

	assert_int_equal(srv_store_device_enroll(s, "dev1", NULL, "test", NULL,
						 false, &c1, &err),
			 0);
	assert_int_equal(srv_store_device_enroll(s, "dev2", NULL, "test", NULL,
						 false, &c2, &err),
			 0);
	assert_int_equal(srv_store_device_enroll(s, "dev3", NULL, "test", NULL,
						 false, &early, &err),
			 0);
	assert_int_equal(srv_store_device_enroll(s, "dev4", NULL, "test", NULL,
						 false, &late, &err),
			 0);
	assert_int_equal(srv_store_device_enroll(s, "dev5", NULL, "test", NULL,
						 false, &none, &err),
			 0);
	assert_int_equal(srv_store_device_by_cert(s, SHA("11"), &h, &err), 0);
	assert_string_equal(h.serial, "01aa");
	assert_string_equal(h.device, "dev1");
	assert_int_equal(srv_store_device_by_cert(s, SHA("ff"), &h, &err),
			 FL_ENOTFOUND);
	fl_error_clear(&err);
	assert_int_equal(srv_store_device_by_cert(s, SHA("44"), &h, &err),
			 FL_EDENIED); /* not valid yet */
	fl_error_clear(&err);
	assert_int_equal(srv_store_device_by_cert(s, SHA("55"), &h, &err),
			 FL_EDENIED); /* expired */
	fl_error_clear(&err);
	/* a rotation: the pending one acts, the old one once revoked not */
	assert_int_equal(srv_store_cert_add(s, &re, NULL, NULL, &err), 0);
	assert_int_equal(srv_store_device_by_cert(s, SHA("33"), &h, &err), 0);
	assert_string_equal(h.serial, "03cc");
	assert_int_equal(srv_store_device_by_cert(s, SHA("22"), &h, &err), 0);
	assert_int_equal(
	    srv_store_cert_confirm(s, "dev2", "03cc", NULL, NULL, &err), 0);
	assert_int_equal(srv_store_device_by_cert(s, SHA("22"), &h, &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	assert_int_equal(
	    srv_store_device_decommission(s, "dev1", NULL, NULL, &err), 0);
	assert_int_equal(srv_store_device_by_cert(s, SHA("11"), &h, &err),
			 FL_EDENIED);
	fl_error_clear(&err);
	/* dev5's certificate has no digest: found by its serial only */
	assert_int_equal(srv_store_device_principal(s, "06ff", "dev5", &err),
			 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_audit_per_address),	   T(test_audit_global),
	    T(test_deadline_shuts_socket), T(test_last_admin_token),
	    T(test_device_principal),	   T(test_device_by_cert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
