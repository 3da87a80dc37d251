/* The broker plugin's CRL loader (broker-plugin/crlset.c): a real signed
 * CRL in, the set of revoked serials out; bad and oversized input refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../../broker-plugin/crlset.c"
#include "tmpdir.h"

static ASN1_INTEGER *serial(long v)
{
	ASN1_INTEGER *a = ASN1_INTEGER_new();

	assert_non_null(a);
	assert_int_equal(ASN1_INTEGER_set(a, v), 1);
	return a;
}

/* Write a CRL signed by a fresh P-256 key revoking @n serials from 1000. */
static void write_crl(const char *path, int n)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *name = X509_NAME_new();
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	FILE *f;

	assert_non_null(key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"test CA", -1, -1, 0);
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, name);
	X509_CRL_set1_lastUpdate(crl, now);
	for (int i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *sn = serial(1000 + i);

		X509_REVOKED_set_serialNumber(r, sn);
		X509_REVOKED_set_revocationDate(r, now);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(sn);
	}
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
	ASN1_TIME_free(now);
	X509_NAME_free(name);
	X509_CRL_free(crl);
	EVP_PKEY_free(key);
}

static int has(const struct fr_crlset *s, long v)
{
	ASN1_INTEGER *a = serial(v);
	int r = fr_crlset_has(s, a);

	ASN1_INTEGER_free(a);
	return r;
}

static void test_loads_revoked_serials(void **state)
{
	char dir[64], path[128];
	struct fr_crlset s;
	const char *why = NULL;

	assert_int_equal(test_mkdtemp(dir, "crlset"), 0);
	snprintf(path, sizeof(path), "%s/crl.pem", dir);
	write_crl(path, 50);
	assert_int_equal(fr_crlset_load(path, &s, &why), 0);
	assert_int_equal(s.n, 50);
	assert_true(has(&s, 1000));
	assert_true(has(&s, 1049));
	assert_true(has(&s, 1025));
	assert_false(has(&s, 999));
	assert_false(has(&s, 1050));
	assert_false(fr_crlset_has(&s, NULL));
	fr_crlset_free(&s);
	test_rmtree(dir);
}

static void test_empty_crl_revokes_nothing(void **state)
{
	char dir[64], path[128];
	struct fr_crlset s;
	const char *why = NULL;

	assert_int_equal(test_mkdtemp(dir, "crlset"), 0);
	snprintf(path, sizeof(path), "%s/crl.pem", dir);
	write_crl(path, 0);
	assert_int_equal(fr_crlset_load(path, &s, &why), 0);
	assert_int_equal(s.n, 0);
	assert_false(has(&s, 1000));
	fr_crlset_free(&s);
	test_rmtree(dir);
}

static void test_refuses_bad_input(void **state)
{
	char dir[64], path[128];
	struct fr_crlset s;
	const char *why = NULL;
	FILE *f;

	assert_int_equal(test_mkdtemp(dir, "crlset"), 0);
	snprintf(path, sizeof(path), "%s/missing.pem", dir);
	assert_int_equal(fr_crlset_load(path, &s, &why), -1);
	assert_non_null(strstr(why, "cannot open"));
	snprintf(path, sizeof(path), "%s/junk.pem", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n", f);
	fclose(f);
	assert_int_equal(fr_crlset_load(path, &s, &why), -1);
	assert_non_null(strstr(why, "not a PEM CRL"));
	assert_int_equal(s.n, 0);
	assert_null(s.serials);
	assert_int_equal(truncate(path, FR_CRL_MAX_BYTES + 1), 0);
	assert_int_equal(fr_crlset_load(path, &s, &why), -1);
	assert_non_null(strstr(why, "too big"));
	assert_int_equal(fr_crlset_load(dir, &s, &why), -1);
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads_revoked_serials),
		cmocka_unit_test(test_empty_crl_revokes_nothing),
		cmocka_unit_test(test_refuses_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
