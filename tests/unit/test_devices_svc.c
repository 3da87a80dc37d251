/* SPDX-License-Identifier: MIT */
/*
 * server-stub/devices_svc: decommission and provision undo as the
 * rollout engine would call them, without HTTP, on a real state dir
 * (SQLite, the CA's real CRL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "srv_fixture.h"

#include "ca.h"
#include "devices_svc.h"
#include "store.h"

static void enroll(struct srv_fixture *f, const char *id, const char *serial)
{
	struct srv_cert c = {serial, id, time(NULL), time(NULL) + 3600, NULL};

	assert_int_equal(srv_store_device_enroll(f->srv->store, id, NULL,
						 "token:t", NULL, false, &c,
						 NULL),
			 0);
}

/* Is @serial (hex) on the CRL fleetd published? */
static bool on_crl(struct srv_fixture *f, const char *serial)
{
	char *path = fl_path_join(f->state, SRV_CA_CRL);
	FILE *fp = fopen(path, "r");
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	bool found;

	assert_non_null(fp);
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(crl);
	assert_true(BN_hex2bn(&bn, serial) > 0);
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	found = X509_CRL_get0_by_serial(crl, &rev, sn) == 1;
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	X509_CRL_free(crl);
	free(path);
	return found;
}

static const char *state_of(struct srv_fixture *f, const char *id,
			    char buf[32])
{
	struct srv_device_row dev = {0};

	assert_int_equal(srv_store_device_get(f->srv->store, id, &dev, NULL),
			 0);
	fl_strlcpy(buf, dev.state, 32);
	srv_device_row_free(&dev);
	return buf;
}

/* Decommission revokes, publishes the CRL and marks the device; a
 * second time and an unknown id are refused. */
static void test_decommission(void **state)
{
	struct srv_fixture *f = *state;
	struct fl_error err = {0};
	struct srv_strv revoked = {0};
	char buf[32];

	enroll(f, "dev-1", "0a1b");
	enroll(f, "dev-2", "0c2d");
	assert_false(on_crl(f, "0a1b"));
	assert_int_equal(srv_device_decommission(f->srv, "dev-1", &revoked,
						 &err),
			 0);
	assert_int_equal(revoked.n, 1);
	assert_string_equal(revoked.v[0], "0a1b");
	srv_strv_free(&revoked);
	assert_true(on_crl(f, "0a1b"));
	assert_false(on_crl(f, "0c2d"));
	assert_string_equal(state_of(f, "dev-1", buf), "decommissioned");
	assert_string_equal(state_of(f, "dev-2", buf), "active");
	assert_int_equal(srv_device_decommission(f->srv, "dev-1", &revoked,
						 NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_device_decommission(f->srv, "nobody", &revoked,
						 NULL),
			 FL_ENOTFOUND);
}

/* Undoing a fresh provision forgets the device and puts its certificate
 * on the CRL; a device that does not exist is not found. */
static void test_provision_undo(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_device_row dev = {0};

	enroll(f, "dev-p", "0e3f");
	assert_int_equal(srv_device_provision_undo(f->srv, "dev-p", "0e3f",
						   NULL),
			 0);
	assert_int_equal(srv_store_device_get(f->srv->store, "dev-p", &dev,
					      NULL),
			 FL_ENOTFOUND);
	assert_true(on_crl(f, "0e3f"));
	assert_int_equal(srv_device_provision_undo(f->srv, "dev-p", "0e3f",
						   NULL),
			 FL_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_decommission, srv_setup,
						srv_teardown),
		cmocka_unit_test_setup_teardown(test_provision_undo, srv_setup,
						srv_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
