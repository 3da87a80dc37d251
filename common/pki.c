/* SPDX-License-Identifier: MIT */
/*
 * PKI helpers for Fleet's private CA: keys, certificate files and
 * encodings, certificate information, and the helpers shared with
 * pki_ca.c (building certificates, CSRs) and pki_crl.c (CRLs,
 * verification).  See pki.h for the contract and docs/pki.md for the
 * design.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "pki.h"
#include "pki_impl.h"
#include "util.h"
#include "validate.h"

/* Never prompt for a passphrase: encrypted keys simply fail to load. */
int fl_pki__no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* A read-only memory BIO over @len bytes; callers cap @len first. */
int fl_pki__mem_bio(const void *data, size_t len, BIO **ret,
		    struct fl_error *err)
{
	BIO *b = NULL;

	if (len > INT_MAX)
		return fl_fail(err, FL_ELIMIT, "input too large");
	b = BIO_new_mem_buf(data, (int)len);
	if (!b)
		return fl_fail_ssl(err, FL_ERR, "cannot create memory BIO");
	*ret = b;
	return 0;
}

/* Copy a memory BIO's content into a new NUL-terminated string. */
char *fl_pki__bio_str(BIO *b, size_t *ret_len)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		n = 0;
	s = fl_xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	if (ret_len)
		*ret_len = (size_t)n;
	return s;
}

/* Read a capped file, hand it to @parse, wipe the buffer (keys). */
int fl_pki__load_file(const char *path, size_t max,
		      int (*parse)(const char *, size_t, void **,
				   struct fl_error *),
		      void **ret, struct fl_error *err)
{
	size_t len;
	char *buf;
	int rc;

	rc = fl_read_file(path, max, &buf, &len, err);
	if (rc)
		return rc;
	rc = parse(buf, len, ret, err);
	if (rc)
		fl_error_prefix(err, "'%s'", path);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

/* Write whatever @write_fn encodes into a memory BIO to @path. */
int fl_pki__save_pem(const char *path, mode_t mode,
		     int (*write_fn)(BIO *, const void *), const void *obj,
		     struct fl_error *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int rc;

	if (!b)
		return fl_fail_ssl(err, FL_ERR, "cannot create memory BIO");
	if (!write_fn(b, obj)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot encode PEM for '%s'",
				 path);
		goto out;
	}
	n = BIO_get_mem_data(b, &data);
	rc = fl_write_atomic(path, data, n > 0 ? (size_t)n : 0, mode, err);
out:
	BIO_free(b);
	return rc;
}

/*
 * The single commonName of @name, UTF-8, into @out.  Several CNs are
 * refused: different consumers could pick different ones.
 */
int fl_pki__get_cn(const X509_NAME *name, char out[FL_PKI_CN_MAX + 1], int code,
		   struct fl_error *err)
{
	unsigned char *utf8 = NULL;
	int i, n;

	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return fl_fail(err, code, "subject has no commonName");
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return fl_fail(err, code, "subject has several commonNames");
	n = ASN1_STRING_to_UTF8(
	    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return fl_fail_ssl(err, code, "undecodable commonName");
	if (n == 0 || n > FL_PKI_CN_MAX || memchr(utf8, 0, (size_t)n)) {
		OPENSSL_free(utf8);
		return fl_fail(err, code,
			       "commonName is empty, too long or "
			       "holds a NUL byte");
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

int fl_pki__time(const ASN1_TIME *t, time_t *ret, struct fl_error *err)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return fl_fail_ssl(err, FL_EPARSE, "malformed time");
	*ret = timegm(&tm);
	return 0;
}

bool fl_pki__valid_cn(const char *cn)
{
	return cn && cn[0] && fl_valid_text(cn, FL_PKI_CN_MAX);
}

int fl_pki__check_lifetime(int64_t s, struct fl_error *err)
{
	if (s < 1 || s > FL_PKI_LIFETIME_MAX)
		return fl_fail(err, FL_EINVAL,
			       "lifetime %lld s out of range (1 s to 30 y)",
			       (long long)s);
	return 0;
}

/* An issuer usable for signing: P-256 key that matches its cert. */
int fl_pki__check_issuer(const struct fl_pki_issuer *ca, struct fl_error *err)
{
	if (!ca || !ca->cert || !fl_pki_key_is_p256(ca->key))
		return fl_fail(err, FL_EINVAL, "issuer needs a P-256 key");
	if (fl_pki_key_matches_cert(ca->key, ca->cert, NULL))
		return fl_fail(err, FL_EINVAL,
			       "issuer key does not match its certificate");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Keys                                                               */

int fl_pki_keygen_p256(EVP_PKEY **ret_key, struct fl_error *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!key)
		return fl_fail_ssl(err, FL_ERR, "cannot generate P-256 key");
	*ret_key = key;
	return 0;
}

bool fl_pki_key_is_p256(const EVP_PKEY *key)
{
	char group[64];
	size_t n = 0;

	if (!key || !EVP_PKEY_is_a(key, "EC"))
		return false;
	if (EVP_PKEY_get_group_name(key, group, sizeof(group), &n) != 1) {
		ERR_clear_error();
		return false;
	}
	return strcmp(group, SN_X9_62_prime256v1) == 0;
}

/* PKCS#8 PEM of @key in secure memory (wiped when freed). */
static int key_pem_bio(EVP_PKEY *key, BIO **ret, struct fl_error *err)
{
	BIO *b = BIO_new(BIO_s_secmem());

	if (!b)
		return fl_fail_ssl(err, FL_ERR, "cannot create memory BIO");
	if (!PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(b);
		return fl_fail_ssl(err, FL_EINVAL, "cannot encode private key");
	}
	*ret = b;
	return 0;
}

int fl_pki_key_save(const char *path, EVP_PKEY *key, struct fl_error *err)
{
	BIO *b = NULL;
	char *data;
	long n;
	int rc;

	rc = key_pem_bio(key, &b, err);
	if (rc)
		return rc;
	n = BIO_get_mem_data(b, &data);
	rc = fl_write_atomic(path, data, n > 0 ? (size_t)n : 0, 0600, err);
	BIO_free(b);
	return rc;
}

int fl_pki_key_to_pem(EVP_PKEY *key, char **ret_pem, struct fl_error *err)
{
	BIO *b = NULL;
	int rc;

	rc = key_pem_bio(key, &b, err);
	if (rc)
		return rc;
	*ret_pem = fl_pki__bio_str(b, NULL);
	BIO_free(b);
	return 0;
}

/*
 * Decode one PEM object of @len bytes with @read (a PEM_read_bio_*
 * wrapper); FL_EPARSE naming @what when there is none.
 */
static int pem_decode(const char *pem, size_t len, void *(*read)(BIO *b),
		      const char *what, void **ret, struct fl_error *err)
{
	BIO *b = NULL;
	void *obj;
	int rc;

	rc = fl_pki__mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	obj = read(b);
	BIO_free(b);
	if (!obj)
		return fl_fail_ssl(err, FL_EPARSE, "no usable %s", what);
	*ret = obj;
	return 0;
}

static void *read_private(BIO *b)
{
	return PEM_read_bio_PrivateKey(b, NULL, fl_pki__no_passphrase, NULL);
}

static void *read_public(BIO *b)
{
	return PEM_read_bio_PUBKEY(b, NULL, fl_pki__no_passphrase, NULL);
}

static void *read_cert(BIO *b)
{
	return PEM_read_bio_X509(b, NULL, fl_pki__no_passphrase, NULL);
}

int fl_pki_key_from_pem(const char *pem, size_t len, EVP_PKEY **ret_key,
			struct fl_error *err)
{
	return pem_decode(pem, len, read_private, "private key",
			  (void **)ret_key, err);
}

static int parse_key(const char *pem, size_t len, void **ret,
		     struct fl_error *err)
{
	return fl_pki_key_from_pem(pem, len, (EVP_PKEY **)ret, err);
}

int fl_pki_key_load(const char *path, EVP_PKEY **ret_key, struct fl_error *err)
{
	return fl_pki__load_file(path, FL_PKI_PEM_MAX, parse_key,
				 (void **)ret_key, err);
}

static int parse_pubkey(const char *pem, size_t len, void **ret,
			struct fl_error *err)
{
	return pem_decode(pem, len, read_public, "public key", ret, err);
}

int fl_pki_pubkey_load(const char *path, EVP_PKEY **ret_key,
		       struct fl_error *err)
{
	return fl_pki__load_file(path, FL_PKI_PEM_MAX, parse_pubkey,
				 (void **)ret_key, err);
}

static int write_pubkey(BIO *b, const void *key)
{
	return PEM_write_bio_PUBKEY(b, key);
}

int fl_pki_pubkey_save(const char *path, EVP_PKEY *key, struct fl_error *err)
{
	return fl_pki__save_pem(path, 0644, write_pubkey, key, err);
}

int fl_pki_key_matches_cert(EVP_PKEY *key, X509 *cert, struct fl_error *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	if (!key || !pub || EVP_PKEY_eq(pub, key) != 1) {
		ERR_clear_error();
		return fl_fail(err, FL_EVERIFY,
			       "key does not match the certificate");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Certificates: files, PEM and DER                                   */

int fl_pki_chain_from_pem(const char *pem, size_t len,
			  STACK_OF(X509) **ret_chain, struct fl_error *err)
{
	STACK_OF(X509) *chain;
	unsigned long e;
	X509 *c;
	BIO *b = NULL;
	int rc;

	rc = fl_pki__mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	chain = sk_X509_new_null();
	if (!chain) {
		rc = fl_fail_ssl(err, FL_ERR, "out of memory");
		goto out;
	}
	while ((c = PEM_read_bio_X509(b, NULL, fl_pki__no_passphrase, NULL))) {
		if (sk_X509_num(chain) >= FL_PKI_CHAIN_MAX ||
		    !sk_X509_push(chain, c)) {
			X509_free(c);
			rc =
			    fl_fail(err, FL_ELIMIT, "more than %d certificates",
				    FL_PKI_CHAIN_MAX);
			goto out;
		}
	}
	/* The loop ends at end of input (no further PEM block) or on a
	 * malformed block; only the former is fine. */
	e = ERR_peek_last_error();
	if (sk_X509_num(chain) == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		rc = fl_fail_ssl(err, FL_EPARSE, "no valid PEM certificate");
		goto out;
	}
	ERR_clear_error();
	*ret_chain = chain;
	chain = NULL;
out:
	fl_pki_chain_free(chain);
	BIO_free(b);
	return rc;
}

static int parse_chain(const char *pem, size_t len, void **ret,
		       struct fl_error *err)
{
	return fl_pki_chain_from_pem(pem, len, (STACK_OF(X509) **)ret, err);
}

int fl_pki_chain_load(const char *path, STACK_OF(X509) **ret_chain,
		      struct fl_error *err)
{
	return fl_pki__load_file(path, FL_PKI_PEM_MAX, parse_chain,
				 (void **)ret_chain, err);
}

void fl_pki_chain_free(STACK_OF(X509) *chain)
{
	sk_X509_pop_free(chain, X509_free);
}

int fl_pki_cert_from_pem(const char *pem, size_t len, X509 **ret_cert,
			 struct fl_error *err)
{
	return pem_decode(pem, len, read_cert, "PEM certificate",
			  (void **)ret_cert, err);
}

static int parse_cert(const char *pem, size_t len, void **ret,
		      struct fl_error *err)
{
	return fl_pki_cert_from_pem(pem, len, (X509 **)ret, err);
}

int fl_pki_cert_load(const char *path, X509 **ret_cert, struct fl_error *err)
{
	return fl_pki__load_file(path, FL_PKI_PEM_MAX, parse_cert,
				 (void **)ret_cert, err);
}

int fl_pki_cert_to_pem(X509 *cert, char **ret_pem, struct fl_error *err)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!b)
		return fl_fail_ssl(err, FL_ERR, "cannot create memory BIO");
	if (!PEM_write_bio_X509(b, cert)) {
		BIO_free(b);
		return fl_fail_ssl(err, FL_ERR, "cannot encode certificate");
	}
	*ret_pem = fl_pki__bio_str(b, NULL);
	BIO_free(b);
	return 0;
}

struct cert_list {
	X509 *const *certs;
	size_t n;
};

static int write_certs(BIO *b, const void *obj)
{
	const struct cert_list *l = obj;

	for (size_t i = 0; i < l->n; i++)
		if (!PEM_write_bio_X509(b, l->certs[i]))
			return 0;
	return 1;
}

int fl_pki_cert_save(const char *path, X509 *const *certs, size_t n,
		     struct fl_error *err)
{
	struct cert_list l = {certs, n};

	if (n == 0 || n > FL_PKI_CHAIN_MAX)
		return fl_fail(err, FL_EINVAL, "cannot save %zu certificates",
			       n);
	return fl_pki__save_pem(path, 0644, write_certs, &l, err);
}

int fl_pki_cert_from_der(const unsigned char *der, size_t len, X509 **ret_cert,
			 struct fl_error *err)
{
	const unsigned char *p = der;
	X509 *c;

	if (len > FL_PKI_DER_MAX)
		return fl_fail(err, FL_ELIMIT,
			       "certificate larger than %d bytes",
			       FL_PKI_DER_MAX);
	c = d2i_X509(NULL, &p, (long)len);
	if (!c)
		return fl_fail_ssl(err, FL_EPARSE, "malformed DER certificate");
	if (p != der + len) {
		X509_free(c);
		return fl_fail(err, FL_EPARSE,
			       "trailing bytes after DER certificate");
	}
	*ret_cert = c;
	return 0;
}

int fl_pki_cert_to_der(X509 *cert, unsigned char **ret_der, size_t *ret_len,
		       struct fl_error *err)
{
	unsigned char *buf, *p;
	int n = i2d_X509(cert, NULL);

	if (n <= 0)
		return fl_fail_ssl(err, FL_ERR, "cannot encode certificate");
	buf = fl_xmalloc((size_t)n);
	p = buf;
	if (i2d_X509(cert, &p) != n) {
		free(buf);
		return fl_fail_ssl(err, FL_ERR, "cannot encode certificate");
	}
	*ret_der = buf;
	*ret_len = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Certificate information                                            */

static int serial_hex(const ASN1_INTEGER *s, char out[FL_PKI_SERIAL_HEX_MAX],
		      struct fl_error *err)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (ASN1_STRING_type(s) != V_ASN1_INTEGER)
		return fl_fail(err, FL_EPARSE, "negative serial number");
	while (n > 0 && *p == 0) {
		p++;
		n--;
	}
	if (n > (FL_PKI_SERIAL_HEX_MAX - 1) / 2)
		return fl_fail(err, FL_EPARSE, "serial number over 20 bytes");
	if (n == 0) {
		fl_strlcpy(out, "00", FL_PKI_SERIAL_HEX_MAX);
		return 0;
	}
	fl_hex(p, (size_t)n, out);
	return 0;
}

int fl_pki_cert_info(X509 *cert, struct fl_pki_cert_info *ret,
		     struct fl_error *err)
{
	struct fl_pki_cert_info info = {0};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc;

	rc = serial_hex(X509_get0_serialNumber(cert), info.serial, err);
	if (!rc)
		rc = fl_pki__get_cn(X509_get_subject_name(cert), info.cn,
				    FL_EPARSE, err);
	if (!rc)
		rc = fl_pki__time(X509_get0_notBefore(cert), &info.not_before,
				  err);
	if (!rc)
		rc = fl_pki__time(X509_get0_notAfter(cert), &info.not_after,
				  err);
	if (rc)
		return rc;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
		return fl_fail_ssl(err, FL_ERR, "cannot hash certificate");
	fl_hex(md, mdlen, info.sha256);
	info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
	*ret = info;
	return 0;
}
