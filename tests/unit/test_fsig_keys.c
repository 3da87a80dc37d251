/* SPDX-License-Identifier: MIT */
/* Keys: generation, PEM round trips, key ids, domain-separated signing,
 * base64 strictness.  Real OpenSSL keys in a temp dir. */
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fsig_fixture.h"
#include "b64.h"

static int setup(void **state)
{
	*state = tmpdir_new();
	return 0;
}

static int teardown(void **state)
{
	tmpdir_free(*state);
	return 0;
}

static void round_trip(const char *dir, enum fsig_alg alg)
{
	char *priv = tpath(dir, alg == FSIG_ALG_P256 ? "p256" : "ed");
	char *pub = fl_xasprintf("%s.pub", priv);
	struct fsig_key *k = new_key(alg), *k2 = NULL, *k3 = NULL;
	struct stat st;

	assert_int_equal(fsig_key_alg(k), alg);
	assert_true(fsig_key_has_private(k));
	assert_int_equal(fsig_key_save_private(k, priv, NULL), 0);
	assert_int_equal(fsig_key_save_public(k, pub, NULL), 0);
	assert_int_equal(stat(priv, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a key file is never overwritten */
	assert_int_equal(fsig_key_save_private(k, priv, NULL), FL_ECONFLICT);

	assert_int_equal(fsig_key_load_private(priv, &k2, NULL), 0);
	assert_int_equal(fsig_key_load_public(pub, &k3, NULL), 0);
	assert_string_equal(fsig_key_id(k), fsig_key_id(k2));
	assert_string_equal(fsig_key_id(k), fsig_key_id(k3));
	assert_false(fsig_key_has_private(k3));
	assert_int_equal(fsig_key_save_private(k3, priv, NULL), FL_EINVAL);
	fsig_key_free(k);
	fsig_key_free(k2);
	fsig_key_free(k3);
	free(priv);
	free(pub);
}

static void test_round_trip(void **state)
{
	round_trip(*state, FSIG_ALG_ED25519);
	round_trip(*state, FSIG_ALG_P256);
}

/* keyid = hex SHA-256 of the DER SubjectPublicKeyInfo, computed here
 * independently with OpenSSL's encoder. */
static void test_keyid_is_spki_hash(void **state)
{
	struct fsig_key *k = new_key(FSIG_ALG_P256);
	char *pem = fsig_key_public_pem(k), want[65];
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	assert_true(n == 91);
	sha_hex(der, (size_t)n, want);
	assert_string_equal(fsig_key_id(k), want);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	free(pem);
	fsig_key_free(k);
	(void)state;
}

static void sign_verify(enum fsig_alg alg)
{
	struct fsig_key *k = new_key(alg), *other = new_key(alg), *pub = NULL;
	unsigned char sig[FSIG_SIG_MAX];
	const char msg[] = "hello fleet";
	struct fl_error err = {0};
	size_t len, spki_len;
	const unsigned char *spki = fsig_key_spki(k, &spki_len);

	assert_int_equal(fsig_sign(k, FSIG_DOMAIN_MANIFEST, msg, sizeof(msg),
				   sig, &len, NULL),
			 0);
	assert_true(len <= fsig_key_sig_max(k));
	assert_int_equal(fsig_key_from_spki(spki, spki_len, &pub, NULL), 0);
	assert_int_equal(fsig_verify(pub, FSIG_DOMAIN_MANIFEST, msg,
				     sizeof(msg), sig, len, NULL),
			 0);
	/* domain separation: the same bytes under another domain fail */
	assert_int_equal(fsig_verify(pub, FSIG_DOMAIN_ROOT, msg, sizeof(msg),
				     sig, len, &err),
			 FL_EVERIFY);
	assert_int_equal(err.code, FL_EVERIFY);
	/* one changed byte fails */
	assert_int_equal(fsig_verify(pub, FSIG_DOMAIN_MANIFEST, "hello fleeT",
				     sizeof(msg), sig, len, NULL),
			 FL_EVERIFY);
	/* another key fails */
	assert_int_equal(fsig_verify(other, FSIG_DOMAIN_MANIFEST, msg,
				     sizeof(msg), sig, len, NULL),
			 FL_EVERIFY);
	/* public keys cannot sign */
	assert_int_equal(
	    fsig_sign(pub, FSIG_DOMAIN_MANIFEST, msg, 3, sig, &len, NULL),
	    FL_EINVAL);
	fsig_key_free(k);
	fsig_key_free(other);
	fsig_key_free(pub);
}

static void test_sign_verify(void **state)
{
	sign_verify(FSIG_ALG_ED25519);
	sign_verify(FSIG_ALG_P256);
	(void)state;
}

/* The domain prefix really is "domain\0" + data: check an Ed25519
 * signature with OpenSSL directly over that message. */
static void test_domain_prefix_layout(void **state)
{
	struct fsig_key *k = new_key(FSIG_ALG_ED25519);
	unsigned char sig[FSIG_SIG_MAX], msg[64];
	size_t len, spki_len;
	const unsigned char *spki = fsig_key_spki(k, &spki_len), *p = spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_int_equal(fsig_sign(k, "dom", "xy", 2, sig, &len, NULL), 0);
	memcpy(msg, "dom\0xy", 6);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, len, msg, 6), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	fsig_key_free(k);
	(void)state;
}

/* Other curves and RSA are refused; non-canonical SPKI too. */
static void test_unsupported_keys(void **state)
{
	char *path = tpath(*state, "k1.pem");
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	struct fsig_key *k = NULL;
	unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	FILE *f = fopen(path, "w");

	assert_non_null(pk);
	assert_non_null(f);
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	assert_int_equal(fsig_key_load_private(path, &k, NULL), FL_EINVAL);
	assert_null(k);
	assert_int_equal(fsig_key_from_spki(junk, sizeof(junk), &k, NULL),
			 FL_EPARSE);
	assert_int_equal(fsig_key_load_private("/nonexistent/key", &k, NULL),
			 FL_ENOTFOUND);
	write_file(path, "not a key", 9);
	assert_int_equal(fsig_key_load_private(path, &k, NULL), FL_EPARSE);
	EVP_PKEY_free(pk);
	free(path);
}

static void test_alg_names(void **state)
{
	enum fsig_alg a;

	assert_int_equal(fsig_alg_parse("ed25519", &a, NULL), 0);
	assert_int_equal(a, FSIG_ALG_ED25519);
	assert_int_equal(fsig_alg_parse("p256", &a, NULL), 0);
	assert_int_equal(a, FSIG_ALG_P256);
	assert_int_equal(fsig_alg_parse("rsa", &a, NULL), FL_EINVAL);
	assert_string_equal(fsig_alg_name(FSIG_ALG_P256), "p256");
	(void)state;
}

static void test_base64(void **state)
{
	static const char *const bad[] = {
	    "Zg",	 "Zg=",	 "Zh==", "Z===",
	    "Zm9v YmFy", "Zm9=", "====", "Zm9vYg==Zg=="};
	unsigned char *out;
	size_t len;

	for (size_t n = 0; n < 7; n++) {
		unsigned char *raw = pattern(n, 7);
		char *b = fsig_b64_encode(raw, n);

		assert_int_equal(
		    fsig_b64_decode(b, strlen(b), 16, &out, &len, NULL), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, raw, n);
		free(out);
		free(b);
		free(raw);
	}
	assert_int_equal(fsig_b64_decode("Zm9vYmFy", 8, 16, &out, &len, NULL),
			 0);
	assert_memory_equal(out, "foobar", 6);
	free(out);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_int_equal(fsig_b64_decode(bad[i], strlen(bad[i]), 16,
						 &out, &len, NULL),
				 FL_EPARSE);
	assert_int_equal(fsig_b64_decode("Zm9vYmFy", 8, 5, &out, &len, NULL),
			 FL_ELIMIT);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test(test_keyid_is_spki_hash),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_domain_prefix_layout),
	    cmocka_unit_test_setup_teardown(test_unsupported_keys, setup,
					    teardown),
	    cmocka_unit_test(test_alg_names),
	    cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
