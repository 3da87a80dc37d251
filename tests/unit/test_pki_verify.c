/* SPDX-License-Identifier: MIT */
/*
 * CRLs and the verifier: revocation, expiry, foreign CAs, purposes,
 * reloads and concurrent use, cross-checked with the openssl tool.
 */
#include "pki_fixture.h"

/* ------------------------------------------------------------------ */
/* CRLs and verification                                              */

static void write_crl(struct ctx *c, const char *file,
		      const struct fl_pki_revoked *list, size_t n,
		      uint64_t number, int64_t next)
{
	struct fl_error err = {0};
	X509_CRL *crl = NULL;

	assert_int_equal(
	    fl_pki_crl_build(&c->iss_ca, list, n, number, next, &crl, &err), 0);
	assert_int_equal(fl_pki_crl_save(file, crl, &err), 0);
	X509_CRL_free(crl);
}

static void test_crl(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL);
	char *f = path(c, "crl.pem"), *ef = path(c, "empty-crl.pem"),
	     *lf = path(c, "revoked.pem");
	struct fl_pki_revoked list[2] = {{NULL, 1700000000}, {"0A", 0}};
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *num;
	const char *parse[] = {"openssl", "crl",     "-in",	ef,
			       "-noout",  "-CAfile", c->ca_pem, NULL};
	const char *strict[] = {"openssl",  "verify",	 "-crl_check",
				"-CAfile",  c->root_pem, "-untrusted",
				c->iss_pem, "-CRLfile",	 f,
				lf,	    NULL};

	write_crl(c, ef, NULL, 0, 1, FL_PKI_CRL_LIFETIME);
	assert_int_equal(run(parse), 0);
	assert_int_equal(fl_pki_cert_info(l, &info, &err), 0);
	list[0].serial = info.serial;
	write_crl(c, f, list, 2, 42, FL_PKI_CRL_LIFETIME);
	parse[3] = f;
	assert_int_equal(run(parse), 0);
	save_cert(lf, l);
	assert_int_equal(run(strict), 2);

	assert_int_equal(fl_pki_crl_load(f, &crl, &err), 0);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, l), 1);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(num), 42);
	ASN1_INTEGER_free(num);
	assert_int_not_equal(
	    X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1), -1);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(c->iss)), 1);
	X509_CRL_free(crl);
	crl = NULL;
	assert_int_equal(fl_pki_crl_load(c->root_pem, &crl, &err), FL_EPARSE);
	assert_null(crl);
	X509_free(l);
	free(f);
	free(ef);
	free(lf);
}

static void test_crl_failures(void **state)
{
	static const char *const bad[] = {
	    "",	  "0",	  "000",   "xyz",
	    "-1", "0x10", "12 34", "12345678901234567890123456789012345678901"};
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_revoked r = {NULL, 0};
	X509_CRL *crl = NULL;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		r.serial = bad[i];
		assert_int_equal(
		    fl_pki_crl_build(&c->iss_ca, &r, 1, 1, 60, &crl, &err),
		    FL_EINVAL);
		fl_error_clear(&err);
	}
	r.serial = NULL;
	assert_int_equal(fl_pki_crl_build(&c->iss_ca, &r, 1, 1, 60, &crl, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_crl_build(&c->iss_ca, NULL, 0, 0, 60, &crl, &err),
	    FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_crl_build(&c->iss_ca, NULL, 0, 1, 0, &crl, &err), FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_crl_build(&c->iss_ca, &r,
					  FL_PKI_CRL_ENTRIES_MAX + 1, 1, 60,
					  &crl, &err),
			 FL_ELIMIT);
	assert_null(crl);
	/* 40 hex digits is the longest serial */
	r.serial = "7fffffffffffffffffffffffffffffffffffffff";
	assert_int_equal(fl_pki_crl_build(&c->iss_ca, &r, 1, 1, 60, &crl, NULL),
			 0);
	X509_CRL_free(crl);
}

static struct fl_pki_verifier *verifier(struct ctx *c, const char *crl)
{
	struct fl_error err = {0};
	struct fl_pki_verifier *v = NULL;

	assert_int_equal(fl_pki_verifier_new(c->ca_pem, crl, &v, &err), 0);
	return v;
}

static void expect_verify(struct fl_pki_verifier *v, X509 *cert,
			  enum fl_pki_purpose purpose, int code, int verr)
{
	struct fl_error err = {0};
	int got = -1;

	assert_int_equal(fl_pki_verify_cert(v, cert, purpose, &got, &err),
			 code);
	assert_int_equal(got, verr);
}

static void test_verify_revocation(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *bad = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL);
	X509 *good = leaf(c, FL_PKI_CLIENT, "gw-02", 120, NULL);
	X509 *srv = leaf(c, FL_PKI_SERVER, "fleetd", 120, NULL);
	char *f = path(c, "v-crl.pem");
	struct fl_pki_revoked r = {NULL, 1700000000};
	struct fl_pki_verifier *nocrl = verifier(c, NULL), *v;

	assert_int_equal(fl_pki_cert_info(bad, &info, &err), 0);
	r.serial = info.serial;
	write_crl(c, f, &r, 1, 2, FL_PKI_CRL_LIFETIME);
	v = verifier(c, f);

	expect_verify(nocrl, bad, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	expect_verify(v, bad, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_REVOKED);
	expect_verify(v, good, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	expect_verify(v, srv, FL_PKI_PURPOSE_SERVER, 0, X509_V_OK);
	expect_verify(v, good, FL_PKI_PURPOSE_SERVER, FL_EDENIED,
		      X509_V_ERR_INVALID_PURPOSE);
	expect_verify(v, srv, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_INVALID_PURPOSE);
	/* a CA certificate is not a client */
	expect_verify(v, c->iss, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_INVALID_PURPOSE);
	assert_int_equal(fl_pki_verify_cert(v, good, 9, NULL, &err), FL_EINVAL);
	fl_pki_verifier_free(v);
	/* the issuing CA alone is no trust anchor: chains must reach the
	 * root (no partial chains, like mosquitto's cafile) */
	assert_int_equal(fl_pki_verifier_new(c->iss_pem, NULL, &v, &err), 0);
	expect_verify(v, good, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT);
	fl_pki_verifier_free(v);
	fl_pki_verifier_free(nocrl);
	fl_pki_verifier_free(NULL);
	X509_free(bad);
	X509_free(good);
	X509_free(srv);
	free(f);
}

static void test_verify_other_ca(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	EVP_PKEY *rk, *ik, *k;
	X509 *root, *iss, *stranger = NULL;
	struct fl_pki_issuer other;
	struct fl_pki_policy pol = {FL_PKI_CLIENT, "gw-01", NULL, 0,
				    NULL,	   0,	    120};
	struct fl_pki_verifier *v = verifier(c, NULL), *v2 = NULL;
	char *f = path(c, "other-crl.pem"), *sf = path(c, "stranger.pem");
	X509_CRL *crl = NULL;
	const char *ossl[] = {"openssl",    "verify",	"-CAfile", c->root_pem,
			      "-untrusted", c->iss_pem, sf,	   NULL};

	make_ca(&rk, &root, &ik, &iss);
	other = (struct fl_pki_issuer){iss, ik};
	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_int_equal(fl_pki_leaf_issue(&other, &pol, k, &stranger, &err),
			 0);
	expect_verify(v, stranger, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	save_cert(sf, stranger);
	assert_int_not_equal(run(ossl), 0);

	/* a CRL from another CA is refused at load time */
	assert_int_equal(fl_pki_crl_build(&other, NULL, 0, 1, 600, &crl, &err),
			 0);
	assert_int_equal(fl_pki_crl_save(f, crl, &err), 0);
	assert_int_equal(fl_pki_verifier_new(c->ca_pem, f, &v2, &err),
			 FL_EVERIFY);
	assert_null(v2);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_verifier_new(c->iss_key_pem, NULL, &v2, &err),
			 FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_verifier_new(c->ca_pem, "/nonexistent", &v2, &err),
	    FL_ENOTFOUND);
	assert_null(v2);
	fl_pki_verifier_free(v);
	X509_CRL_free(crl);
	X509_free(stranger);
	X509_free(root);
	X509_free(iss);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(k);
	free(f);
	free(sf);
}

/* Two issuing CAs under one root (a rotation): one CRL each in the
 * CRL file; a leaf whose issuer has no CRL is refused. */
static void test_verify_two_issuers(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	struct fl_pki_policy pol = {FL_PKI_CLIENT, "gw-09", NULL, 0,
				    NULL,	   0,	    120};
	struct fl_pki_revoked r = {NULL, 1700000000};
	struct fl_pki_issuer iss2;
	X509 *a = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL), *b = NULL;
	X509 *cert2 = NULL, *bundle[3];
	X509_CRL *crl1 = NULL, *crl2 = NULL;
	EVP_PKEY *k2;
	char *cas = path(c, "two-ca.pem"), *crls = path(c, "two-crl.pem");
	struct fl_pki_verifier *v;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	assert_int_equal(fl_pki_keygen_p256(&k2, &err), 0);
	assert_int_equal(fl_pki_issuing_create(&c->root_ca, k2, "Issuing 2",
					       FL_PKI_DAY, &cert2, &err),
			 0);
	iss2 = (struct fl_pki_issuer){cert2, k2};
	assert_int_equal(fl_pki_leaf_issue(&iss2, &pol, k2, &b, &err), 0);
	bundle[0] = c->iss;
	bundle[1] = cert2;
	bundle[2] = c->root;
	assert_int_equal(fl_pki_cert_save(cas, bundle, 3, &err), 0);
	assert_int_equal(fl_pki_cert_info(a, &info, &err), 0);
	r.serial = info.serial;
	assert_int_equal(
	    fl_pki_crl_build(&c->iss_ca, &r, 1, 5, 600, &crl1, &err), 0);
	assert_int_equal(fl_pki_crl_build(&iss2, NULL, 0, 1, 600, &crl2, &err),
			 0);

	/* only the first CA's CRL: the second CA's leaves are refused */
	assert_int_equal(fl_pki_crl_save(crls, crl1, &err), 0);
	assert_int_equal(fl_pki_verifier_new(cas, crls, &v, &err), 0);
	expect_verify(v, a, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_REVOKED);
	expect_verify(v, b, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_UNABLE_TO_GET_CRL);

	/* both CRLs in one file */
	assert_true(PEM_write_bio_X509_CRL(bio, crl1));
	assert_true(PEM_write_bio_X509_CRL(bio, crl2));
	n = BIO_get_mem_data(bio, &data);
	assert_int_equal(fl_write_atomic(crls, data, (size_t)n, 0644, &err), 0);
	assert_int_equal(fl_pki_verifier_reload(v, &err), 0);
	expect_verify(v, a, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_REVOKED);
	expect_verify(v, b, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	fl_pki_verifier_free(v);
	BIO_free(bio);
	X509_CRL_free(crl1);
	X509_CRL_free(crl2);
	X509_free(a);
	X509_free(b);
	X509_free(cert2);
	EVP_PKEY_free(k2);
	free(cas);
	free(crls);
}

/*
 * Expiry of a certificate and of a CRL, with time injected (no sleep: a
 * 1-second certificate and sleep(2) flaked under SAN).  The leaf lives
 * 60 s and the CRL 60 s; verifying 120 s ahead sees both expired, and
 * going back to the current time sees both valid again.
 */
static void test_verify_expired(void **state)
{
	struct ctx *c = *state;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 60, NULL);
	X509 *fresh = leaf(c, FL_PKI_CLIENT, "gw-02", 600, NULL);
	char *f = path(c, "short-crl.pem"), *lf = path(c, "expired.pem");
	struct fl_pki_verifier *v, *nocrl;
	time_t later = time(NULL) + 120;
	char attime[32];
	const char *ossl[] = {"openssl", "verify",   "-CAfile", c->root_pem,
			      "-untrusted", c->iss_pem, "-attime", attime,
			      lf, NULL};

	snprintf(attime, sizeof(attime), "%lld", (long long)later);
	write_crl(c, f, NULL, 0, 1, 60);
	v = verifier(c, f);
	nocrl = verifier(c, NULL);
	expect_verify(nocrl, l, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	expect_verify(v, fresh, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	fl_pki_verifier_set_time(nocrl, later);
	fl_pki_verifier_set_time(v, later);
	expect_verify(nocrl, l, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_HAS_EXPIRED);
	expect_verify(v, fresh, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CRL_HAS_EXPIRED);
	fl_pki_verifier_set_time(nocrl, 0);
	fl_pki_verifier_set_time(v, 0);
	expect_verify(nocrl, l, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	expect_verify(v, fresh, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	save_cert(lf, l);
	assert_int_equal(run(ossl), 2); /* openssl agrees, at that time */
	ossl[6] = lf;
	ossl[7] = NULL;
	assert_int_equal(run(ossl), 0); /* ... and now it is still valid */
	fl_pki_verifier_free(v);
	fl_pki_verifier_free(nocrl);
	X509_free(l);
	X509_free(fresh);
	free(f);
	free(lf);
}

static void test_verify_der(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-07", 120, NULL);
	struct fl_pki_verifier *v = verifier(c, NULL);
	unsigned char *der;
	size_t len;
	int verr = -1;

	assert_int_equal(fl_pki_cert_to_der(l, &der, &len, &err), 0);
	assert_int_equal(fl_pki_verify_der(v, der, len, FL_PKI_PURPOSE_CLIENT,
					   &info, &verr, &err),
			 0);
	assert_string_equal(info.cn, "gw-07");
	assert_int_equal(verr, X509_V_OK);
	assert_int_equal(fl_pki_verify_der(v, der, len - 3,
					   FL_PKI_PURPOSE_CLIENT, &info, NULL,
					   &err),
			 FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_verify_der(v, der, len, FL_PKI_PURPOSE_SERVER,
					   NULL, &verr, &err),
			 FL_EDENIED);
	assert_int_equal(verr, X509_V_ERR_INVALID_PURPOSE);
	fl_pki_verifier_free(v);
	X509_free(l);
	free(der);
}

static void test_verifier_reload(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL);
	char *f = path(c, "reload-crl.pem");
	struct fl_pki_revoked r = {NULL, 1700000000};
	struct fl_pki_verifier *v;
	bool reloaded = true;

	write_crl(c, f, NULL, 0, 1, FL_PKI_CRL_LIFETIME);
	v = verifier(c, f);
	expect_verify(v, l, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	assert_int_equal(fl_pki_verifier_refresh(v, &reloaded, &err), 0);
	assert_false(reloaded);

	assert_int_equal(fl_pki_cert_info(l, &info, &err), 0);
	r.serial = info.serial;
	write_crl(c, f, &r, 1, 2, FL_PKI_CRL_LIFETIME);
	expect_verify(v, l, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	assert_int_equal(fl_pki_verifier_refresh(v, &reloaded, &err), 0);
	assert_true(reloaded);
	expect_verify(v, l, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_REVOKED);
	assert_int_equal(fl_pki_verifier_refresh(v, &reloaded, &err), 0);
	assert_false(reloaded);

	/* a broken CRL leaves the previous one in force */
	assert_int_equal(fl_write_atomic_str(f, "junk\n", 0644, &err), 0);
	assert_int_equal(fl_pki_verifier_reload(v, &err), FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_verifier_refresh(v, NULL, &err), FL_EPARSE);
	fl_error_clear(&err);
	expect_verify(v, l, FL_PKI_PURPOSE_CLIENT, FL_EDENIED,
		      X509_V_ERR_CERT_REVOKED);
	write_crl(c, f, NULL, 0, 3, FL_PKI_CRL_LIFETIME);
	assert_int_equal(fl_pki_verifier_reload(v, &err), 0);
	expect_verify(v, l, FL_PKI_PURPOSE_CLIENT, 0, X509_V_OK);
	unlink(f);
	assert_int_equal(fl_pki_verifier_refresh(v, NULL, &err), FL_EIO);
	fl_pki_verifier_free(v);
	X509_free(l);
	free(f);
}

struct worker {
	struct fl_pki_verifier *v;
	X509 *cert;
	int failures;
};

static void *verify_loop(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 200; i++)
		if (fl_pki_verify_cert(w->v, w->cert, FL_PKI_PURPOSE_CLIENT,
				       NULL, NULL))
			w->failures++;
	return NULL;
}

/* Verifications from several threads while the main thread reloads. */
static void test_verifier_threads(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 600, NULL);
	char *f = path(c, "thread-crl.pem");
	struct fl_pki_verifier *v;
	struct worker w[4];
	pthread_t t[4];

	write_crl(c, f, NULL, 0, 1, FL_PKI_CRL_LIFETIME);
	v = verifier(c, f);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){v, l, 0};
		assert_int_equal(
		    pthread_create(&t[i], NULL, verify_loop, &w[i]), 0);
	}
	for (int i = 0; i < 20; i++) {
		write_crl(c, f, NULL, 0, (uint64_t)i + 2, FL_PKI_CRL_LIFETIME);
		assert_int_equal(fl_pki_verifier_reload(v, &err), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	fl_pki_verifier_free(v);
	X509_free(l);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crl),
	    cmocka_unit_test(test_crl_failures),
	    cmocka_unit_test(test_verify_revocation),
	    cmocka_unit_test(test_verify_other_ca),
	    cmocka_unit_test(test_verify_two_issuers),
	    cmocka_unit_test(test_verify_expired),
	    cmocka_unit_test(test_verify_der),
	    cmocka_unit_test(test_verifier_reload),
	    cmocka_unit_test(test_verifier_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
