/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsutil.h"
#include "keys.h"
#include "pkcs11.h"
#include "util.h"

#define PEM_FILE_MAX (16 * 1024)

struct fsig_key {
	EVP_PKEY *pkey;
	ENGINE *engine; /* non-NULL for PKCS#11 keys */
	enum fsig_alg alg;
	bool has_private;
	size_t spki_len;
	unsigned char spki[FSIG_SPKI_MAX];
	char keyid[FSIG_KEYID_LEN + 1];
};

/*
 * The exact DER SubjectPublicKeyInfo prefixes of the two supported key
 * types.  Classifying keys by these bytes (rather than by OpenSSL's key
 * type) rejects other 256-bit curves and compressed or otherwise
 * unusual encodings, so a key id names exactly one encoding of a key.
 */
static const unsigned char spki_ed25519[] = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
};
static const unsigned char spki_p256[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};

static int classify_spki(const unsigned char *der, size_t len,
			 enum fsig_alg *ret)
{
	if (len == sizeof(spki_ed25519) + 32 &&
	    memcmp(der, spki_ed25519, sizeof(spki_ed25519)) == 0) {
		*ret = FSIG_ALG_ED25519;
		return 0;
	}
	if (len == sizeof(spki_p256) + 64 &&
	    memcmp(der, spki_p256, sizeof(spki_p256)) == 0) {
		*ret = FSIG_ALG_P256;
		return 0;
	}
	return -1;
}

const char *fsig_alg_name(enum fsig_alg alg)
{
	switch (alg) {
	case FSIG_ALG_ED25519:
		return "ed25519";
	case FSIG_ALG_P256:
		return "p256";
	}
	return NULL;
}

int fsig_alg_parse(const char *s, enum fsig_alg *ret, struct fl_error *err)
{
	if (fl_streq(s, "ed25519")) {
		*ret = FSIG_ALG_ED25519;
		return 0;
	}
	if (fl_streq(s, "p256") || fl_streq(s, "ecdsa-p256") ||
	    fl_streq(s, "prime256v1")) {
		*ret = FSIG_ALG_P256;
		return 0;
	}
	return fl_fail(err, FL_EINVAL,
		       "unknown key algorithm '%.40s' (want ed25519 or p256)",
		       s ? s : "");
}

/*
 * Wrap @pkey (ownership passes to the new key, also on failure) after
 * checking that it is a supported type and computing its key id.  @spki
 * is the key's DER SubjectPublicKeyInfo when the caller has it, else
 * NULL to encode it here.
 */
static int key_wrap(EVP_PKEY *pkey, ENGINE *engine, bool priv,
		    const unsigned char *spki, size_t spki_len,
		    struct fsig_key **ret, struct fl_error *err)
{
	struct fsig_key *k = fl_xcalloc(1, sizeof(*k));
	unsigned char md[32], *p = NULL;
	int n = spki ? (int)spki_len : i2d_PUBKEY(pkey, NULL);

	k->pkey = pkey;
	k->engine = engine;
	k->has_private = priv;
	if (n <= 0 || (size_t)n > sizeof(k->spki)) {
		fsig_key_free(k);
		return fl_fail_ssl(err, FL_EINVAL,
				   "unsupported key (cannot encode it)");
	}
	p = k->spki;
	if (spki)
		memcpy(p, spki, spki_len);
	else
		i2d_PUBKEY(pkey, &p);
	k->spki_len = (size_t)n;
	if (classify_spki(k->spki, k->spki_len, &k->alg)) {
		fsig_key_free(k);
		return fl_fail(err, FL_EINVAL,
			       "unsupported key type (want Ed25519 or P-256)");
	}
	EVP_Digest(k->spki, k->spki_len, md, NULL, EVP_sha256(), NULL);
	fl_hex(md, sizeof(md), k->keyid);
	*ret = k;
	return 0;
}

int fsig_key_generate(enum fsig_alg alg, struct fsig_key **ret,
		      struct fl_error *err)
{
	EVP_PKEY *pkey = NULL;

	if (alg == FSIG_ALG_ED25519)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (alg == FSIG_ALG_P256)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		return fl_fail(err, FL_EINVAL, "unknown key algorithm %d",
			       (int)alg);
	if (!pkey)
		return fl_fail_ssl(err, FL_ERR, "key generation failed");
	return key_wrap(pkey, NULL, true, NULL, 0, ret, err);
}

/* Never prompt for a passphrase: keys for CI and devices are unencrypted
 * files or live in a token. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int fsig_key_load_private(const char *spec, struct fsig_key **ret,
			  struct fl_error *err)
{
	EVP_PKEY *pkey;
	char *buf;
	size_t len;
	BIO *bio;
	int rc;

	if (fl_startswith(spec, "pkcs11:"))
		return fsig_key_load_pkcs11(spec, ret, err);
	rc = fl_read_file(spec, PEM_FILE_MAX, &buf, &len, err);
	if (rc)
		return rc;
	bio = BIO_new_mem_buf(buf, (int)len);
	pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
		   : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (!pkey)
		return fl_fail_ssl(err, FL_EPARSE,
				   "'%s' holds no unencrypted PEM private key",
				   spec);
	rc = key_wrap(pkey, NULL, true, NULL, 0, ret, err);
	if (rc)
		fl_error_prefix(err, "'%s'", spec);
	return rc;
}

int fsig_key_load_pkcs11(const char *uri, struct fsig_key **ret,
			 struct fl_error *err)
{
	EVP_PKEY *pkey;
	ENGINE *engine;
	int rc;

	if (!fl_startswith(uri, "pkcs11:"))
		return fl_fail(err, FL_EINVAL,
			       "not a PKCS#11 URI (want pkcs11:...)");
	rc = fsig_pkcs11_load(uri, &pkey, &engine, err);
	if (rc)
		return rc;
	return key_wrap(pkey, engine, true, NULL, 0, ret, err);
}

static int key_from_pem_bio(BIO *bio, struct fsig_key **ret,
			    struct fl_error *err)
{
	EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);

	if (!pkey)
		return fl_fail_ssl(err, FL_EPARSE, "no PEM public key");
	return key_wrap(pkey, NULL, false, NULL, 0, ret, err);
}

int fsig_key_from_public_pem(const char *pem, size_t len, struct fsig_key **ret,
			     struct fl_error *err)
{
	BIO *bio;
	int rc;

	if (len > 4096)
		return fl_fail(err, FL_ELIMIT, "PEM public key over 4 KiB");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return fl_fail_ssl(err, FL_ENOMEM, "BIO_new_mem_buf");
	rc = key_from_pem_bio(bio, ret, err);
	BIO_free(bio);
	return rc;
}

int fsig_key_load_public(const char *path, struct fsig_key **ret,
			 struct fl_error *err)
{
	char *buf;
	size_t len;
	int rc;

	rc = fl_read_file(path, 4096, &buf, &len, err);
	if (rc)
		return rc;
	rc = fsig_key_from_public_pem(buf, len, ret, err);
	if (rc)
		fl_error_prefix(err, "'%s'", path);
	free(buf);
	return rc;
}

/*
 * A public key from the raw bytes inside an SPKI whose layout
 * classify_spki() has pinned down: the 32-byte Ed25519 key or the
 * uncompressed P-256 point.  This skips OpenSSL 3's generic DER decoder,
 * which costs more memory than the rest of verification together
 * (devices load every root key this way).
 */
static EVP_PKEY *pkey_from_raw(enum fsig_alg alg, const unsigned char *der,
			       size_t len)
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	if (alg == FSIG_ALG_ED25519)
		return EVP_PKEY_new_raw_public_key_ex(
		    NULL, "ED25519", NULL, der + sizeof(spki_ed25519), 32);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, (void *)(der + sizeof(spki_p256) - 1),
	    len - sizeof(spki_p256) + 1);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

int fsig_key_from_spki(const unsigned char *der, size_t len,
		       struct fsig_key **ret, struct fl_error *err)
{
	enum fsig_alg alg;
	EVP_PKEY *pkey;

	if (len > FSIG_SPKI_MAX)
		return fl_fail(err, FL_ELIMIT, "public key over %d bytes",
			       FSIG_SPKI_MAX);
	if (classify_spki(der, len, &alg))
		return fl_fail(err, FL_EPARSE,
			       "not an Ed25519 or uncompressed P-256 public "
			       "key");
	pkey = pkey_from_raw(alg, der, len);
	if (!pkey)
		return fl_fail_ssl(err, FL_EPARSE, "malformed public key");
	return key_wrap(pkey, NULL, false, der, len, ret, err);
}

/* PEM text of the private (@priv) or public key into a new buffer. */
static int key_pem(const struct fsig_key *key, bool priv, char **ret,
		   size_t *ret_len, struct fl_error *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ok;

	if (!bio)
		return fl_fail_ssl(err, FL_ENOMEM, "BIO_new");
	ok = priv ? PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0,
					     NULL, NULL)
		  : PEM_write_bio_PUBKEY(bio, key->pkey);
	n = BIO_get_mem_data(bio, &data);
	if (!ok || n <= 0) {
		BIO_free(bio);
		return fl_fail_ssl(err, FL_ERR, "cannot encode key as PEM");
	}
	/* the BIO's buffer has no NUL: copy, don't strndup */
	*ret = fl_xmalloc((size_t)n + 1);
	memcpy(*ret, data, (size_t)n);
	(*ret)[n] = '\0';
	*ret_len = (size_t)n;
	OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	return 0;
}

int fsig_key_save_private(const struct fsig_key *key, const char *path,
			  struct fl_error *err)
{
	size_t len;
	char *pem;
	int rc;

	if (!key->has_private || key->engine)
		return fl_fail(err, FL_EINVAL,
			       "key %.16s has no exportable private part",
			       key->keyid);
	if (fl_path_exists(path))
		return fl_fail(err, FL_ECONFLICT,
			       "'%s' exists; refusing to overwrite a key",
			       path);
	rc = key_pem(key, true, &pem, &len, err);
	if (rc)
		return rc;
	rc = fl_write_atomic(path, pem, len, 0600, err);
	OPENSSL_cleanse(pem, len);
	free(pem);
	return rc;
}

int fsig_key_save_public(const struct fsig_key *key, const char *path,
			 struct fl_error *err)
{
	size_t len;
	char *pem;
	int rc;

	rc = key_pem(key, false, &pem, &len, err);
	if (rc)
		return rc;
	rc = fl_write_atomic(path, pem, len, 0644, err);
	free(pem);
	return rc;
}

char *fsig_key_public_pem(const struct fsig_key *key)
{
	size_t len;
	char *pem;

	if (key_pem(key, false, &pem, &len, NULL))
		abort(); /* a loaded key always encodes */
	return pem;
}

const char *fsig_key_id(const struct fsig_key *key)
{
	return key->keyid;
}

enum fsig_alg fsig_key_alg(const struct fsig_key *key)
{
	return key->alg;
}

bool fsig_key_has_private(const struct fsig_key *key)
{
	return key->has_private;
}

const unsigned char *fsig_key_spki(const struct fsig_key *key, size_t *ret_len)
{
	*ret_len = key->spki_len;
	return key->spki;
}

size_t fsig_key_sig_max(const struct fsig_key *key)
{
	return key->alg == FSIG_ALG_ED25519 ? 64 : 72;
}

/* @domain || NUL || @data in one new buffer of *ret_len bytes. */
static unsigned char *domain_message(const char *domain, const void *data,
				     size_t len, size_t *ret_len)
{
	size_t dlen = strlen(domain) + 1;
	unsigned char *msg = fl_xmalloc(dlen + len + 1);

	memcpy(msg, domain, dlen);
	if (len)
		memcpy(msg + dlen, data, len);
	*ret_len = dlen + len;
	return msg;
}

static const EVP_MD *key_md(const struct fsig_key *key)
{
	return key->alg == FSIG_ALG_ED25519 ? NULL : EVP_sha256();
}

int fsig_sign(const struct fsig_key *key, const char *domain, const void *data,
	      size_t len, unsigned char sig[FSIG_SIG_MAX], size_t *ret_len,
	      struct fl_error *err)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *msg;
	size_t mlen, slen = FSIG_SIG_MAX;
	int rc;

	if (!key->has_private)
		return fl_fail(err, FL_EINVAL, "key %.16s is public only",
			       key->keyid);
	if (len > FSIG_DATA_MAX)
		return fl_fail(err, FL_ELIMIT, "message to sign over %u bytes",
			       FSIG_DATA_MAX);
	msg = domain_message(domain, data, len, &mlen);
	ctx = EVP_MD_CTX_new();
	if (!ctx ||
	    EVP_DigestSignInit(ctx, NULL, key_md(key), NULL, key->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &slen, msg, mlen) != 1) {
		rc = fl_fail_ssl(err, FL_ERR, "signing with key %.16s failed",
				 key->keyid);
		goto out;
	}
	*ret_len = slen;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(msg);
	return rc;
}

int fsig_verify(const struct fsig_key *key, const char *domain,
		const void *data, size_t len, const unsigned char *sig,
		size_t siglen, struct fl_error *err)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *msg;
	size_t mlen;
	int rc = 0;

	if (len > FSIG_DATA_MAX || siglen > FSIG_SIG_MAX)
		return fl_fail(err, FL_EVERIFY,
			       "message or signature too long for key %.16s",
			       key->keyid);
	msg = domain_message(domain, data, len, &mlen);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, key_md(key), NULL,
					 key->pkey) != 1) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot set up verification");
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, siglen, msg, mlen) != 1) {
		ERR_clear_error();
		rc = fl_fail(err, FL_EVERIFY, "bad signature by key %s",
			     key->keyid);
	}
out:
	EVP_MD_CTX_free(ctx);
	free(msg);
	return rc;
}

void fsig_key_free(struct fsig_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	fsig_pkcs11_release(key->engine);
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}
