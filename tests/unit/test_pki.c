/* SPDX-License-Identifier: MIT */
/*
 * PKI helpers against real keys and files in a temp dir, cross-checked
 * with the openssl command-line tool: keys, CA, leaves, CSRs, encodings.
 * CRLs and verification are in test_pki_verify.c.
 */
#include "pki_fixture.h"

/* ------------------------------------------------------------------ */

static void test_keys(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	EVP_PKEY *k, *k2 = NULL, *pub = NULL, *rsa, *p384;
	char *kf = path(c, "k.pem"), *pf = path(c, "k.pub"), *buf, *pem;
	struct stat st;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_true(fl_pki_key_is_p256(k));
	assert_int_equal(fl_pki_key_save(kf, k, &err), 0);
	assert_int_equal(stat(kf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fl_read_file(kf, 4096, &buf, NULL, &err), 0);
	assert_true(fl_startswith(buf, "-----BEGIN PRIVATE KEY-----\n"));
	free(buf);
	assert_int_equal(fl_pki_key_load(kf, &k2, &err), 0);
	assert_int_equal(EVP_PKEY_eq(k, k2), 1);
	assert_int_equal(fl_pki_key_to_pem(k, &pem, &err), 0);
	assert_true(fl_startswith(pem, "-----BEGIN PRIVATE KEY-----\n"));
	fl_free_secret(pem);
	assert_int_equal(fl_pki_pubkey_save(pf, k, &err), 0);
	assert_int_equal(fl_pki_pubkey_load(pf, &pub, &err), 0);
	assert_int_equal(EVP_PKEY_eq(k, pub), 1);
	/* a public key is not a private key and vice versa */
	EVP_PKEY_free(k2);
	k2 = NULL;
	assert_int_equal(fl_pki_key_load(pf, &k2, &err), FL_EPARSE);
	assert_null(k2);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_key_save(kf, pub, &err), FL_EINVAL);
	fl_error_clear(&err);

	rsa = keygen("RSA", NULL);
	p384 = keygen("EC", "P-384");
	assert_false(fl_pki_key_is_p256(rsa));
	assert_false(fl_pki_key_is_p256(p384));
	assert_false(fl_pki_key_is_p256(NULL));
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	free(kf);
	free(pf);
}

static void test_key_load_failures(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	char *f = path(c, "bad.key"), *big;
	EVP_PKEY *k = NULL, *good;
	BIO *b;
	char *data;
	long n;

	assert_int_equal(fl_write_atomic_str(f, "garbage\n", 0600, &err), 0);
	assert_int_equal(fl_pki_key_load(f, &k, &err), FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_key_load("/nonexistent/k", &k, &err),
			 FL_ENOTFOUND);
	fl_error_clear(&err);
	big = fl_xcalloc(1, FL_PKI_PEM_MAX + 2);
	memset(big, 'A', FL_PKI_PEM_MAX + 1);
	assert_int_equal(fl_write_atomic_str(f, big, 0600, &err), 0);
	assert_int_equal(fl_pki_key_load(f, &k, &err), FL_ELIMIT);
	fl_error_clear(&err);
	free(big);

	/* an encrypted key is refused without prompting */
	assert_int_equal(fl_pki_keygen_p256(&good, &err), 0);
	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PrivateKey(
	    b, good, EVP_aes_256_cbc(), (unsigned char *)"pw", 2, NULL, NULL));
	n = BIO_get_mem_data(b, &data);
	assert_int_equal(fl_pki_key_from_pem(data, (size_t)n, &k, &err),
			 FL_EPARSE);
	assert_null(k);
	BIO_free(b);
	EVP_PKEY_free(good);
	free(f);
}

static bool critical(X509 *cert, int nid)
{
	int i = X509_get_ext_by_NID(cert, nid, -1);

	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(cert, i)) == 1;
}

static void test_ca_hierarchy(void **state)
{
	struct ctx *c = *state;
	struct fl_pki_cert_info ri, ii;
	struct fl_error err = {0};
	time_t now = time(NULL);

	assert_int_equal(fl_pki_cert_info(c->root, &ri, &err), 0);
	assert_int_equal(fl_pki_cert_info(c->iss, &ii, &err), 0);
	assert_string_equal(ri.cn, "Test Root");
	assert_string_equal(ii.cn, "Test Issuing");
	assert_true(ri.is_ca && ii.is_ca);
	assert_int_equal(strlen(ri.serial), 32);
	assert_string_not_equal(ri.serial, ii.serial);
	assert_true(ri.not_before <= now - FL_PKI_BACKDATE_CA + 2);
	assert_true(ri.not_before >= now - FL_PKI_BACKDATE_CA - 5);
	assert_true(ri.not_after >= now + FL_PKI_DAY * 365 - 5);

	assert_int_equal(X509_check_ca(c->root), 1);
	assert_int_equal(X509_get_pathlen(c->root), 1);
	assert_int_equal(X509_get_pathlen(c->iss), 0);
	assert_int_equal(X509_get_key_usage(c->iss),
			 KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(X509_check_issued(c->root, c->root), X509_V_OK);
	assert_int_equal(X509_check_issued(c->root, c->iss), X509_V_OK);
	assert_int_equal(X509_verify(c->iss, c->root_key), 1);
	/* the issuing CA's AKI is the root's SKI; the root names itself */
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c->iss),
				  X509_get0_subject_key_id(c->root)),
	    0);
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c->root),
				  X509_get0_subject_key_id(c->root)),
	    0);
	assert_true(critical(c->root, NID_basic_constraints));
	assert_true(critical(c->root, NID_key_usage));
	assert_true(critical(c->iss, NID_basic_constraints));
	assert_true(critical(c->iss, NID_key_usage));
}

static void test_ca_failures(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_issuer bad = {c->root, c->iss_key};
	struct fl_pki_cert_info ri, ii;
	EVP_PKEY *rsa = keygen("RSA", NULL);
	X509 *x = NULL;

	assert_int_equal(fl_pki_root_create(rsa, "R", 100, &x, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_root_create(c->root_key, "", 100, &x, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_root_create(c->root_key, "bad\nname", 100, &x, &err),
	    FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_root_create(c->root_key, "R", 0, &x, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_root_create(c->root_key, "R",
					    FL_PKI_LIFETIME_MAX + 1, &x, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_issuing_create(&bad, c->iss_key, "I", 100, &x, &err),
	    FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_issuing_create(&c->root_ca, rsa, "I", 100, &x, &err),
	    FL_EINVAL);
	fl_error_clear(&err);
	assert_null(x);

	/* an issuing CA never outlives its root */
	assert_int_equal(fl_pki_issuing_create(&c->root_ca, c->iss_key, "I",
					       FL_PKI_DAY * 3650, &x, &err),
			 0);
	assert_int_equal(fl_pki_cert_info(c->root, &ri, &err), 0);
	assert_int_equal(fl_pki_cert_info(x, &ii, &err), 0);
	assert_int_equal(ii.not_after, ri.not_after);
	X509_free(x);
	EVP_PKEY_free(rsa);
}

static void test_issuer_load(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_issuer is = {0};
	char *kf = path(c, "other.key"), *lf = path(c, "leaf.pem");
	X509 *l = leaf(c, FL_PKI_CLIENT, "dev-1", 120, c->iss_key);

	assert_int_equal(
	    fl_pki_issuer_load(c->iss_pem, c->iss_key_pem, &is, &err), 0);
	assert_int_equal(X509_cmp(is.cert, c->iss), 0);
	assert_int_equal(EVP_PKEY_eq(is.key, c->iss_key), 1);
	fl_pki_issuer_release(&is);
	assert_null(is.cert);
	fl_pki_issuer_release(NULL);

	assert_int_equal(fl_pki_key_save(kf, c->root_key, &err), 0);
	assert_int_equal(fl_pki_issuer_load(c->iss_pem, kf, &is, &err),
			 FL_EVERIFY);
	fl_error_clear(&err);
	/* a leaf (here with the issuing key, so the key matches) is no CA */
	save_cert(lf, l);
	assert_int_equal(fl_pki_issuer_load(lf, c->iss_key_pem, &is, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_issuer_load("/nonexistent", kf, &is, &err),
			 FL_ENOTFOUND);
	assert_null(is.cert);
	X509_free(l);
	free(kf);
	free(lf);
}

static bool has_san(X509 *cert, int type, const char *dns,
		    const unsigned char *ip, int iplen)
{
	GENERAL_NAMES *g =
	    X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; g && i < sk_GENERAL_NAME_num(g); i++) {
		GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
		int t;
		ASN1_STRING *s = GENERAL_NAME_get0_value(n, &t);

		if (t != type)
			continue;
		if (type == GEN_DNS &&
		    ASN1_STRING_length(s) == (int)strlen(dns) &&
		    !memcmp(ASN1_STRING_get0_data(s), dns, strlen(dns)))
			found = true;
		if (type == GEN_IPADD && ASN1_STRING_length(s) == iplen &&
		    !memcmp(ASN1_STRING_get0_data(s), ip, (size_t)iplen))
			found = true;
	}
	GENERAL_NAMES_free(g);
	return found;
}

static void test_leaf_server(void **state)
{
	static const unsigned char lo4[] = {127, 0, 0, 1};
	static const unsigned char lo6[16] = {[15] = 1};
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *s =
	    leaf(c, FL_PKI_SERVER, "fleetd", FL_PKI_SERVER_LIFETIME, NULL);
	char *sf = path(c, "server.pem");
	const char *ok[] = {"openssl",	"verify",    "-x509_strict",
			    "-CAfile",	c->root_pem, "-untrusted",
			    c->iss_pem, "-purpose",  "sslserver",
			    sf,		NULL};
	const char *wrong[] = {
	    "openssl",	"verify",   "-CAfile",	 c->root_pem, "-untrusted",
	    c->iss_pem, "-purpose", "sslclient", sf,	      NULL};

	assert_int_equal(fl_pki_cert_info(s, &info, &err), 0);
	assert_string_equal(info.cn, "fleetd");
	assert_false(info.is_ca);
	assert_int_equal(X509_check_ca(s), 0);
	assert_true(has_san(s, GEN_DNS, "localhost", NULL, 0));
	assert_true(has_san(s, GEN_DNS, "fleet.example", NULL, 0));
	assert_true(has_san(s, GEN_IPADD, NULL, lo4, 4));
	assert_true(has_san(s, GEN_IPADD, NULL, lo6, 16));
	assert_int_equal(X509_check_host(s, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(s, "127.0.0.1", 0), 1);
	assert_int_equal(X509_get_extended_key_usage(s), XKU_SSL_SERVER);
	assert_int_equal(X509_get_key_usage(s),
			 KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	assert_true(critical(s, NID_basic_constraints));
	assert_true(critical(s, NID_key_usage));
	assert_false(critical(s, NID_ext_key_usage));
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(s),
				  X509_get0_subject_key_id(c->iss)),
	    0);
	save_cert(sf, s);
	assert_int_equal(run(ok), 0);
	assert_int_not_equal(run(wrong), 0);
	X509_free(s);
	free(sf);
}

static void test_leaf_client_lifetime(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	time_t before = time(NULL), after;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL);
	char *lf = path(c, "client.pem");
	const char *ok[] = {"openssl",	"verify",    "-x509_strict",
			    "-CAfile",	c->root_pem, "-untrusted",
			    c->iss_pem, "-purpose",  "sslclient",
			    lf,		NULL};

	after = time(NULL);
	assert_int_equal(fl_pki_cert_info(l, &info, &err), 0);
	assert_string_equal(info.cn, "gw-01");
	/* two minutes of life from issue, one minute of backdating */
	assert_true(info.not_after >= before + 120);
	assert_true(info.not_after <= after + 120);
	assert_true(info.not_before >= before - FL_PKI_BACKDATE_LEAF);
	assert_true(info.not_before <= after - FL_PKI_BACKDATE_LEAF);
	assert_int_equal(X509_get_extended_key_usage(l), XKU_SSL_CLIENT);
	assert_null(X509_get_ext_d2i(l, NID_subject_alt_name, NULL, NULL));
	save_cert(lf, l);
	assert_int_equal(run(ok), 0);
	X509_free(l);
	free(lf);
}

static void test_leaf_policy_failures(void **state)
{
	static const char *const bad_dns[] = {"*.x.org", "a..b", "-a.b", "a-.b",
					      "a.b.",	 "a b",	 ""};
	static const char *const bad_ips[] = {"300.1.1.1", "1.2.3", "::g",
					      "localhost"};
	const char *many[FL_PKI_SAN_MAX + 1];
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_policy pol = {FL_PKI_CLIENT, "gw-01", NULL, 0,
				    NULL,	   0,	    120};
	EVP_PKEY *k, *rsa = keygen("RSA", NULL);
	X509 *x = NULL;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
#define EXPECT(code)                                                           \
	do {                                                                   \
		assert_int_equal(                                              \
		    fl_pki_leaf_issue(&c->iss_ca, &pol, k, &x, &err), code);   \
		fl_error_clear(&err);                                          \
	} while (0)
	pol.cn = "GW/01";
	EXPECT(FL_EINVAL);
	pol.cn = NULL;
	EXPECT(FL_EINVAL);
	pol.cn = "gw-01";
	pol.kind = 7;
	EXPECT(FL_EINVAL);
	pol.kind = FL_PKI_SERVER;
	pol.cn = "bad\tcn";
	EXPECT(FL_EINVAL);
	pol.cn = "srv";
	pol.lifetime_s = 0;
	EXPECT(FL_EINVAL);
	pol.lifetime_s = 120;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad_dns); i++) {
		pol.dns = &bad_dns[i];
		pol.n_dns = 1;
		EXPECT(FL_EINVAL);
	}
	pol.n_dns = 0;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad_ips); i++) {
		pol.ips = &bad_ips[i];
		pol.n_ips = 1;
		EXPECT(FL_EINVAL);
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(many); i++)
		many[i] = "localhost";
	pol.dns = many;
	pol.n_dns = FL_ARRAY_SIZE(many);
	pol.n_ips = 0;
	EXPECT(FL_ELIMIT);
	pol.n_dns = 0;
	assert_int_equal(fl_pki_leaf_issue(&c->iss_ca, &pol, rsa, &x, &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_leaf_issue(&c->root_ca, &pol, k, &x, &err), 0);
	X509_free(x);
	x = NULL;
	/* an issuer whose key is not its certificate's */
	{
		struct fl_pki_issuer mixed = {c->iss, c->root_key};

		assert_int_equal(fl_pki_leaf_issue(&mixed, &pol, k, &x, &err),
				 FL_EINVAL);
	}
#undef EXPECT
	assert_null(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(rsa);
}

/* ------------------------------------------------------------------ */
/* CSRs                                                               */

/* Memory BIO data is not NUL-terminated: copy it into a string. */
static char *bio_str(const char *data, long n)
{
	char *s = fl_xmalloc((size_t)n + 1);

	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* A CSR built by hand: @ncn copies of CN=@cn, optional extension
 * requests; returned as PEM. */
static char *custom_csr(EVP_PKEY *key, const char *cn, int ncn, bool want_ext)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem;
	long n;

	for (int i = 0; i < ncn; i++)
		assert_true(X509_NAME_add_entry_by_NID(
		    name, NID_commonName, MBSTRING_UTF8,
		    (const unsigned char *)cn, -1, -1, 0));
	if (!cn)
		assert_true(X509_NAME_add_entry_by_NID(
		    name, NID_organizationName, MBSTRING_UTF8,
		    (const unsigned char *)"org", -1, -1, 0));
	if (want_ext) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509V3_CTX v3;

		X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
		sk_X509_EXTENSION_push(
		    exts, X509V3_EXT_nconf_nid(NULL, &v3, NID_basic_constraints,
					       "critical,CA:TRUE"));
		sk_X509_EXTENSION_push(
		    exts, X509V3_EXT_nconf_nid(NULL, &v3, NID_key_usage,
					       "keyCertSign"));
		sk_X509_EXTENSION_push(
		    exts, X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name,
					       "DNS:evil.example"));
		assert_true(X509_REQ_add_extensions(req, exts));
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_set_pubkey(req, key));
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	assert_true(PEM_write_bio_X509_REQ(b, req));
	n = BIO_get_mem_data(b, &data);
	pem = bio_str(data, n);
	BIO_free(b);
	X509_REQ_free(req);
	return pem;
}

static void test_csr_roundtrip(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	char cn[FL_PKI_CN_MAX + 1], *pem, *none = NULL;
	char *lf = path(c, "enrolled.pem");
	EVP_PKEY *k, *pub = NULL;
	struct fl_pki_policy pol = {
	    FL_PKI_CLIENT, NULL, NULL, 0, NULL, 0, FL_PKI_DEVICE_LIFETIME};
	X509 *cert = NULL;
	const char *ok[] = {"openssl",	  "verify",   "-CAfile",  c->root_pem,
			    "-untrusted", c->iss_pem, "-purpose", "sslclient",
			    lf,		  NULL};

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_int_equal(fl_pki_csr_create(k, "gw-01", &pem, &err), 0);
	assert_true(fl_startswith(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
	assert_int_equal(fl_pki_csr_parse(pem, strlen(pem), "gw-01",
					  FL_PKI_CSR_DEVICE_ID, cn, &pub, &err),
			 0);
	assert_string_equal(cn, "gw-01");
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	assert_int_equal(
	    fl_pki_csr_parse(pem, strlen(pem), NULL, 0, cn, NULL, &err), 0);
	pol.cn = cn;
	assert_int_equal(fl_pki_leaf_issue(&c->iss_ca, &pol, pub, &cert, &err),
			 0);
	assert_int_equal(fl_pki_key_matches_cert(k, cert, &err), 0);
	save_cert(lf, cert);
	assert_int_equal(run(ok), 0);
	assert_int_equal(fl_pki_csr_create(k, "", &none, &err), FL_EINVAL);
	assert_null(none);
	X509_free(cert);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	free(pem);
	free(lf);
}

/* Parse @pem expecting @code; the out-parameters must stay untouched. */
static void csr_expect(const char *pem, size_t len, const char *want,
		       unsigned flags, int code)
{
	struct fl_error err = {0};
	char cn[FL_PKI_CN_MAX + 1] = "untouched";
	EVP_PKEY *pub = NULL;

	assert_int_equal(
	    fl_pki_csr_parse(pem, len, want, flags, cn, &pub, &err), code);
	assert_int_equal(err.code, code);
	assert_string_equal(cn, "untouched");
	assert_null(pub);
}

/* Flip a bit in the signature (the last byte of the DER). */
static char *corrupt_csr(const char *pem)
{
	BIO *in = BIO_new_mem_buf(pem, -1), *out = BIO_new(BIO_s_mem());
	char *name = NULL, *hdr = NULL, *data, *res;
	unsigned char *der = NULL;
	long len = 0, n;

	assert_true(PEM_read_bio(in, &name, &hdr, &der, &len));
	der[len - 1] ^= 0x01;
	assert_true(PEM_write_bio(out, name, hdr, der, len));
	n = BIO_get_mem_data(out, &data);
	res = bio_str(data, n);
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(der);
	BIO_free(in);
	BIO_free(out);
	return res;
}

static void test_csr_failures(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	EVP_PKEY *k, *rsa = keygen("RSA", NULL), *p384 = keygen("EC", "P-384");
	char *pem, *bad, *big, *cert_pem;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_int_equal(fl_pki_csr_create(k, "gw-01", &pem, &err), 0);

	csr_expect("garbage", 7, NULL, 0, FL_EPARSE);
	csr_expect("", 0, NULL, 0, FL_EPARSE);
	csr_expect(pem, strlen(pem) / 2, NULL, 0, FL_EPARSE);
	assert_int_equal(fl_pki_cert_to_pem(c->root, &cert_pem, &err), 0);
	csr_expect(cert_pem, strlen(cert_pem), NULL, 0, FL_EPARSE);
	free(cert_pem);
	big = fl_xcalloc(1, FL_PKI_CSR_MAX + 2);
	memset(big, 'A', FL_PKI_CSR_MAX + 1);
	csr_expect(big, FL_PKI_CSR_MAX + 1, NULL, 0, FL_ELIMIT);
	free(big);

	bad = corrupt_csr(pem);
	csr_expect(bad, strlen(bad), NULL, 0, FL_EVERIFY);
	free(bad);

	/* other id, not an id, wrong key types */
	csr_expect(pem, strlen(pem), "gw-02", 0, FL_EINVAL);
	free(pem);
	assert_int_equal(fl_pki_csr_create(k, "GW 01", &pem, &err), 0);
	csr_expect(pem, strlen(pem), NULL, FL_PKI_CSR_DEVICE_ID, FL_EINVAL);
	free(pem);
	assert_int_equal(fl_pki_csr_create(rsa, "gw-01", &pem, &err), 0);
	csr_expect(pem, strlen(pem), "gw-01", 0, FL_EINVAL);
	free(pem);
	assert_int_equal(fl_pki_csr_create(p384, "gw-01", &pem, &err), 0);
	csr_expect(pem, strlen(pem), "gw-01", 0, FL_EINVAL);
	free(pem);

	/* several CNs, none */
	pem = custom_csr(k, "gw-01", 2, false);
	csr_expect(pem, strlen(pem), NULL, 0, FL_EINVAL);
	free(pem);
	pem = custom_csr(k, NULL, 0, false);
	csr_expect(pem, strlen(pem), NULL, 0, FL_EINVAL);
	free(pem);

	EVP_PKEY_free(k);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
}

/* Requested extensions (CA:TRUE, keyCertSign, a SAN) never reach the
 * certificate. */
static void test_csr_extensions_ignored(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	char cn[FL_PKI_CN_MAX + 1], *pem;
	EVP_PKEY *k, *pub = NULL;
	struct fl_pki_policy pol = {FL_PKI_CLIENT, cn, NULL, 0, NULL, 0, 120};
	X509 *cert = NULL;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	pem = custom_csr(k, "gw-01", 1, true);
	assert_int_equal(fl_pki_csr_parse(pem, strlen(pem), "gw-01",
					  FL_PKI_CSR_DEVICE_ID, cn, &pub, &err),
			 0);
	assert_int_equal(fl_pki_leaf_issue(&c->iss_ca, &pol, pub, &cert, &err),
			 0);
	assert_int_equal(X509_check_ca(cert), 0);
	assert_false(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN);
	assert_null(X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL));
	assert_int_equal(X509_get_ext_count(cert), 5);
	X509_free(cert);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	free(pem);
}

/* ------------------------------------------------------------------ */
/* Certificate I/O and info                                           */

static void test_der_pem(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 120, NULL), *x = NULL;
	unsigned char *der, *longer;
	size_t len;
	char *pem, *f = path(c, "nine.pem"), *g = path(c, "garbage.pem");
	X509 *nine[FL_PKI_CHAIN_MAX + 1];
	STACK_OF(X509) *chain = NULL;

	assert_int_equal(fl_pki_cert_to_der(l, &der, &len, &err), 0);
	assert_int_equal(fl_pki_cert_from_der(der, len, &x, &err), 0);
	assert_int_equal(X509_cmp(l, x), 0);
	X509_free(x);
	x = NULL;
	longer = fl_xmalloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_int_equal(fl_pki_cert_from_der(longer, len + 1, &x, &err),
			 FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_cert_from_der(der, len - 1, &x, &err),
			 FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_pki_cert_from_der(der, FL_PKI_DER_MAX + 1, &x, &err), FL_ELIMIT);
	fl_error_clear(&err);
	assert_null(x);
	free(longer);
	free(der);

	assert_int_equal(fl_pki_cert_to_pem(l, &pem, &err), 0);
	assert_int_equal(fl_pki_cert_from_pem(pem, strlen(pem), &x, &err), 0);
	assert_int_equal(X509_cmp(l, x), 0);
	X509_free(x);
	x = NULL;
	assert_int_equal(fl_pki_cert_from_pem("junk", 4, &x, &err), FL_EPARSE);
	fl_error_clear(&err);
	free(pem);

	/* chains: file order kept, a cap, garbage refused */
	assert_int_equal(fl_pki_chain_load(c->ca_pem, &chain, &err), 0);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), c->iss), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), c->root), 0);
	fl_pki_chain_free(chain);
	chain = NULL;
	for (size_t i = 0; i < FL_ARRAY_SIZE(nine); i++)
		nine[i] = l;
	assert_int_equal(fl_pki_cert_save(f, nine, FL_ARRAY_SIZE(nine), &err),
			 FL_EINVAL);
	fl_error_clear(&err);
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		long n;

		for (size_t i = 0; i < FL_ARRAY_SIZE(nine); i++)
			assert_true(PEM_write_bio_X509(b, l));
		n = BIO_get_mem_data(b, &data);
		assert_int_equal(
		    fl_write_atomic(f, data, (size_t)n, 0644, &err), 0);
		BIO_free(b);
	}
	assert_int_equal(fl_pki_chain_load(f, &chain, &err), FL_ELIMIT);
	fl_error_clear(&err);
	assert_int_equal(fl_write_atomic_str(g,
					     "-----BEGIN CERTIFICATE-----\n"
					     "AAAA\n"
					     "-----END CERTIFICATE-----\n",
					     0644, &err),
			 0);
	assert_int_equal(fl_pki_chain_load(g, &chain, &err), FL_EPARSE);
	fl_error_clear(&err);
	assert_int_equal(fl_pki_cert_load(g, &x, &err), FL_EPARSE);
	assert_null(chain);
	assert_null(x);
	X509_free(l);
	free(f);
	free(g);
}

static void test_info_matches_openssl(void **state)
{
	struct ctx *c = *state;
	struct fl_error err = {0};
	struct fl_pki_cert_info info;
	X509 *l = leaf(c, FL_PKI_CLIENT, "gw-01", 600, NULL);
	char *f = path(c, "info.pem"), cmd[512], line[256], want[128];
	size_t o = 0;
	EVP_PKEY *other;

	save_cert(f, l);
	assert_int_equal(fl_pki_cert_info(l, &info, &err), 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in %s -noout -fingerprint -sha256", f);
	capture(cmd, line, sizeof(line));
	for (const char *p = strchr(line, '=') + 1; *p; p++)
		if (*p != ':')
			want[o++] =
			    (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	want[o] = '\0';
	assert_string_equal(info.sha256, want);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -serial", f);
	capture(cmd, line, sizeof(line));
	assert_true(fl_startswith(line, "serial="));
	assert_int_equal(strcasecmp(line + 7, info.serial), 0);
	assert_int_equal(strlen(info.serial), 32);
	assert_true(info.serial[0] >= '4' && info.serial[0] <= '7');

	assert_int_equal(fl_pki_keygen_p256(&other, &err), 0);
	assert_int_equal(fl_pki_key_matches_cert(other, l, &err), FL_EVERIFY);
	assert_int_equal(fl_pki_key_matches_cert(c->iss_key, c->iss, NULL), 0);
	EVP_PKEY_free(other);
	X509_free(l);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_key_load_failures),
	    cmocka_unit_test(test_ca_hierarchy),
	    cmocka_unit_test(test_ca_failures),
	    cmocka_unit_test(test_issuer_load),
	    cmocka_unit_test(test_leaf_server),
	    cmocka_unit_test(test_leaf_client_lifetime),
	    cmocka_unit_test(test_leaf_policy_failures),
	    cmocka_unit_test(test_csr_roundtrip),
	    cmocka_unit_test(test_csr_failures),
	    cmocka_unit_test(test_csr_extensions_ignored),
	    cmocka_unit_test(test_der_pem),
	    cmocka_unit_test(test_info_matches_openssl),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
