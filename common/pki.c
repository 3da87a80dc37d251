/* SPDX-License-Identifier: MIT */
/*
 * PKI helpers for Fleet's private CA.  See pki.h for the contract and
 * docs/pki.md for the hierarchy, lifetimes and revocation model.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "pki.h"
#include "util.h"
#include "validate.h"

#define SERIAL_BYTES 16

/* Never prompt for a passphrase: encrypted keys simply fail to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* A read-only memory BIO over @len bytes; callers cap @len first. */
static int mem_bio(const void *data, size_t len, BIO **ret,
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
static char *bio_to_str(BIO *b, size_t *ret_len)
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
static int load_file(const char *path, size_t max,
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
		return fl_fail_ssl(err, FL_EINVAL,
				   "cannot encode private key");
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
	*ret_pem = bio_to_str(b, NULL);
	BIO_free(b);
	return 0;
}

int fl_pki_key_from_pem(const char *pem, size_t len, EVP_PKEY **ret_key,
			struct fl_error *err)
{
	EVP_PKEY *key;
	BIO *b = NULL;
	int rc;

	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!key)
		return fl_fail_ssl(err, FL_EPARSE, "no usable private key");
	*ret_key = key;
	return 0;
}

static int parse_key(const char *pem, size_t len, void **ret,
		     struct fl_error *err)
{
	return fl_pki_key_from_pem(pem, len, (EVP_PKEY **)ret, err);
}

int fl_pki_key_load(const char *path, EVP_PKEY **ret_key,
		    struct fl_error *err)
{
	return load_file(path, FL_PKI_PEM_MAX, parse_key, (void **)ret_key,
			 err);
}

static int parse_pubkey(const char *pem, size_t len, void **ret,
			struct fl_error *err)
{
	EVP_PKEY *key;
	BIO *b = NULL;
	int rc;

	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	key = PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!key)
		return fl_fail_ssl(err, FL_EPARSE, "no usable public key");
	*ret = key;
	return 0;
}

int fl_pki_pubkey_load(const char *path, EVP_PKEY **ret_key,
		       struct fl_error *err)
{
	return load_file(path, FL_PKI_PEM_MAX, parse_pubkey, (void **)ret_key,
			 err);
}

/* Write whatever @write_fn encodes into a memory BIO to @path. */
static int save_pem(const char *path, mode_t mode,
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

static int write_pubkey(BIO *b, const void *key)
{
	return PEM_write_bio_PUBKEY(b, key);
}

int fl_pki_pubkey_save(const char *path, EVP_PKEY *key,
		       struct fl_error *err)
{
	return save_pem(path, 0644, write_pubkey, key, err);
}

int fl_pki_key_matches_cert(EVP_PKEY *key, X509 *cert,
			    struct fl_error *err)
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

	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	chain = sk_X509_new_null();
	if (!chain) {
		rc = fl_fail_ssl(err, FL_ERR, "out of memory");
		goto out;
	}
	while ((c = PEM_read_bio_X509(b, NULL, no_passphrase, NULL))) {
		if (sk_X509_num(chain) >= FL_PKI_CHAIN_MAX ||
		    !sk_X509_push(chain, c)) {
			X509_free(c);
			rc = fl_fail(err, FL_ELIMIT,
				     "more than %d certificates",
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
	return load_file(path, FL_PKI_PEM_MAX, parse_chain,
			 (void **)ret_chain, err);
}

void fl_pki_chain_free(STACK_OF(X509) *chain)
{
	sk_X509_pop_free(chain, X509_free);
}

int fl_pki_cert_from_pem(const char *pem, size_t len, X509 **ret_cert,
			 struct fl_error *err)
{
	X509 *c;
	BIO *b = NULL;
	int rc;

	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	c = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!c)
		return fl_fail_ssl(err, FL_EPARSE, "no valid PEM certificate");
	*ret_cert = c;
	return 0;
}

static int parse_cert(const char *pem, size_t len, void **ret,
		      struct fl_error *err)
{
	return fl_pki_cert_from_pem(pem, len, (X509 **)ret, err);
}

int fl_pki_cert_load(const char *path, X509 **ret_cert,
		     struct fl_error *err)
{
	return load_file(path, FL_PKI_PEM_MAX, parse_cert, (void **)ret_cert,
			 err);
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
	*ret_pem = bio_to_str(b, NULL);
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
	return save_pem(path, 0644, write_certs, &l, err);
}

int fl_pki_cert_from_der(const unsigned char *der, size_t len,
			 X509 **ret_cert, struct fl_error *err)
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

int fl_pki_cert_to_der(X509 *cert, unsigned char **ret_der,
		       size_t *ret_len, struct fl_error *err)
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

/*
 * The single commonName of @name, UTF-8, into @out.  Several CNs are
 * refused: different consumers could pick different ones.
 */
static int get_cn(const X509_NAME *name, char out[FL_PKI_CN_MAX + 1],
		  int code, struct fl_error *err)
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
		return fl_fail(err, code, "commonName is empty, too long or "
					  "holds a NUL byte");
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret,
			       struct fl_error *err)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return fl_fail_ssl(err, FL_EPARSE, "malformed time");
	*ret = timegm(&tm);
	return 0;
}

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
		rc = get_cn(X509_get_subject_name(cert), info.cn, FL_EPARSE,
			    err);
	if (!rc)
		rc = asn1_time_to_time_t(X509_get0_notBefore(cert),
					 &info.not_before, err);
	if (!rc)
		rc = asn1_time_to_time_t(X509_get0_notAfter(cert),
					 &info.not_after, err);
	if (rc)
		return rc;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
		return fl_fail_ssl(err, FL_ERR, "cannot hash certificate");
	fl_hex(md, mdlen, info.sha256);
	info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
	*ret = info;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Building certificates                                              */

static bool valid_cn(const char *cn)
{
	return cn && cn[0] && fl_valid_text(cn, FL_PKI_CN_MAX);
}

static int check_lifetime(int64_t s, struct fl_error *err)
{
	if (s < 1 || s > FL_PKI_LIFETIME_MAX)
		return fl_fail(err, FL_EINVAL,
			       "lifetime %lld s out of range (1 s to 30 y)",
			       (long long)s);
	return 0;
}

/*
 * 16 random bytes, top bit cleared (positive without a DER pad byte)
 * and the next bit set (never zero, always 16 bytes long): 126 random
 * bits.
 */
static int set_random_serial(X509 *cert, struct fl_error *err)
{
	unsigned char b[SERIAL_BYTES];
	int rc;

	rc = fl_random(b, sizeof(b), err);
	if (rc)
		return rc;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	if (!ASN1_STRING_set(X509_get_serialNumber(cert), b, sizeof(b)))
		return fl_fail_ssl(err, FL_ERR, "cannot set serial");
	return 0;
}

static int set_cn_name(X509_NAME *name, const char *cn, struct fl_error *err)
{
	if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0))
		return fl_fail_ssl(err, FL_ERR, "cannot set commonName");
	return 0;
}

/*
 * Validity from now - @backdate to now + @lifetime, never beyond the
 * issuer's notAfter (@issuer NULL: self-signed).
 */
static int set_validity(X509 *cert, X509 *issuer, int64_t lifetime,
			int backdate, struct fl_error *err)
{
	time_t now = time(NULL), end = now + (time_t)lifetime, cap = 0;
	int rc;

	if (issuer) {
		rc = asn1_time_to_time_t(X509_get0_notAfter(issuer), &cap,
					 err);
		if (rc)
			return rc;
		if (cap <= now)
			return fl_fail(err, FL_EINVAL, "issuer has expired");
		if (end > cap)
			end = cap;
	}
	if (!ASN1_TIME_set(X509_getm_notBefore(cert), now - backdate) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), end))
		return fl_fail_ssl(err, FL_ERR, "cannot set validity");
	return 0;
}

/*
 * A new v3 certificate for @pubkey with subject CN=@cn, issuer name,
 * random serial and validity set; extensions and signature are left to
 * the caller.  @issuer NULL means self-signed.
 */
static int cert_skeleton(X509 *issuer, EVP_PKEY *pubkey, const char *cn,
			 int64_t lifetime, int backdate, X509 **ret,
			 struct fl_error *err)
{
	X509 *c = X509_new();
	int rc;

	if (!c)
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	if (!X509_set_version(c, X509_VERSION_3) ||
	    !X509_set_pubkey(c, pubkey)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot build certificate");
		goto out;
	}
	rc = set_random_serial(c, err);
	if (!rc)
		rc = set_cn_name(X509_get_subject_name(c), cn, err);
	if (!rc && !X509_set_issuer_name(c, X509_get_subject_name(
						    issuer ? issuer : c)))
		rc = fl_fail_ssl(err, FL_ERR, "cannot set issuer name");
	if (!rc)
		rc = set_validity(c, issuer, lifetime, backdate, err);
	if (!rc) {
		*ret = c;
		return 0;
	}
out:
	X509_free(c);
	return rc;
}

/* Add extensions given as "name=value" config strings, in order. */
static int add_exts(X509 *cert, X509 *issuer, EVP_PKEY *issuer_key,
		    const int *nids, const char *const *values, size_t n,
		    struct fl_error *err)
{
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	if (!issuer && !X509V3_set_issuer_pkey(&ctx, issuer_key))
		return fl_fail_ssl(err, FL_ERR, "cannot set issuer key");
	for (size_t i = 0; i < n; i++) {
		X509_EXTENSION *ext;
		int ok;

		ext = X509V3_EXT_nconf_nid(NULL, &ctx, nids[i],
					   (char *)values[i]);
		if (!ext)
			return fl_fail_ssl(err, FL_ERR,
					   "cannot build extension %s",
					   OBJ_nid2sn(nids[i]));
		ok = X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
		if (!ok)
			return fl_fail_ssl(err, FL_ERR, "cannot add extension");
	}
	return 0;
}

static int sign_cert(X509 *cert, EVP_PKEY *key, struct fl_error *err)
{
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		return fl_fail_ssl(err, FL_ERR, "cannot sign certificate");
	return 0;
}

/* An issuer usable for signing: P-256 key that matches its cert. */
static int check_issuer(const struct fl_pki_issuer *ca, struct fl_error *err)
{
	if (!ca || !ca->cert || !fl_pki_key_is_p256(ca->key))
		return fl_fail(err, FL_EINVAL, "issuer needs a P-256 key");
	if (fl_pki_key_matches_cert(ca->key, ca->cert, NULL))
		return fl_fail(err, FL_EINVAL,
			       "issuer key does not match its certificate");
	return 0;
}

/* Common part of root and issuing CA creation. */
static int ca_create(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pubkey,
		     const char *cn, int64_t lifetime, const char *bc,
		     X509 **ret, struct fl_error *err)
{
	static const int nids[] = {
		NID_basic_constraints, NID_key_usage,
		NID_subject_key_identifier, NID_authority_key_identifier,
	};
	const char *values[] = {
		bc, "critical,keyCertSign,cRLSign", "hash", "keyid:always",
	};
	X509 *c = NULL;
	int rc;

	if (!fl_pki_key_is_p256(pubkey))
		return fl_fail(err, FL_EINVAL, "CA key must be P-256");
	if (!valid_cn(cn))
		return fl_fail(err, FL_EINVAL, "invalid CA name");
	rc = check_lifetime(lifetime, err);
	if (!rc)
		rc = cert_skeleton(issuer, pubkey, cn, lifetime,
				   FL_PKI_BACKDATE_CA, &c, err);
	if (!rc)
		rc = add_exts(c, issuer, issuer_key, nids, values,
			      FL_ARRAY_SIZE(nids), err);
	if (!rc)
		rc = sign_cert(c, issuer_key, err);
	if (rc) {
		X509_free(c);
		return rc;
	}
	*ret = c;
	return 0;
}

int fl_pki_root_create(EVP_PKEY *key, const char *cn, int64_t lifetime_s,
		       X509 **ret_cert, struct fl_error *err)
{
	return ca_create(NULL, key, key, cn, lifetime_s,
			 "critical,CA:TRUE,pathlen:1", ret_cert, err);
}

int fl_pki_issuing_create(const struct fl_pki_issuer *root,
			  EVP_PKEY *pubkey, const char *cn,
			  int64_t lifetime_s, X509 **ret_cert,
			  struct fl_error *err)
{
	int rc = check_issuer(root, err);

	if (rc)
		return rc;
	return ca_create(root->cert, root->key, pubkey, cn, lifetime_s,
			 "critical,CA:TRUE,pathlen:0", ret_cert, err);
}

int fl_pki_issuer_load(const char *cert_path, const char *key_path,
		       struct fl_pki_issuer *ret, struct fl_error *err)
{
	struct fl_pki_issuer is = {0};
	int rc;

	rc = fl_pki_cert_load(cert_path, &is.cert, err);
	if (!rc)
		rc = fl_pki_key_load(key_path, &is.key, err);
	if (!rc)
		rc = fl_pki_key_matches_cert(is.key, is.cert, err);
	if (!rc && (X509_check_ca(is.cert) != 1 ||
		    !(X509_get_key_usage(is.cert) & KU_KEY_CERT_SIGN) ||
		    !(X509_get_key_usage(is.cert) & KU_CRL_SIGN)))
		rc = fl_fail(err, FL_EINVAL,
			     "'%s' is not a CA that may sign certificates "
			     "and CRLs",
			     cert_path);
	if (rc) {
		fl_pki_issuer_release(&is);
		return rc;
	}
	*ret = is;
	return 0;
}

void fl_pki_issuer_release(struct fl_pki_issuer *issuer)
{
	if (!issuer)
		return;
	X509_free(issuer->cert);
	EVP_PKEY_free(issuer->key);
	issuer->cert = NULL;
	issuer->key = NULL;
}

/* ------------------------------------------------------------------ */
/* Leaf certificates                                                  */

/* A DNS name of LDH labels (1..63 bytes each), no wildcard, no dot at
 * either end. */
static bool valid_dns(const char *s)
{
	size_t len = 0, label = 0;

	for (const char *p = s; *p; p++, len++) {
		char c = *p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return len > 0 && len <= FL_PKI_DNS_MAX && label > 0 &&
	       s[len - 1] != '-';
}

static int push_name(GENERAL_NAMES *gens, int type, const void *data,
		     size_t len, struct fl_error *err)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *s = ASN1_STRING_type_new(
		type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);

	if (!g || !s || !ASN1_STRING_set(s, data, (int)len)) {
		GENERAL_NAME_free(g);
		ASN1_STRING_free(s);
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	}
	GENERAL_NAME_set0_value(g, type, s);
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	}
	return 0;
}

/*
 * subjectAltName from the policy's names, built as ASN.1 objects rather
 * than a config string so no name can inject further entries.
 */
static int add_san(X509 *cert, const struct fl_pki_policy *pol,
		   struct fl_error *err)
{
	GENERAL_NAMES *gens;
	int rc = 0;

	if (pol->n_dns + pol->n_ips == 0)
		return 0;
	gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	for (size_t i = 0; !rc && i < pol->n_dns; i++)
		rc = push_name(gens, GEN_DNS, pol->dns[i], strlen(pol->dns[i]),
			       err);
	for (size_t i = 0; !rc && i < pol->n_ips; i++) {
		unsigned char a[16];

		if (inet_pton(AF_INET, pol->ips[i], a) == 1)
			rc = push_name(gens, GEN_IPADD, a, 4, err);
		else if (inet_pton(AF_INET6, pol->ips[i], a) == 1)
			rc = push_name(gens, GEN_IPADD, a, 16, err);
		else
			rc = fl_fail(err, FL_EINVAL, "invalid IP address '%s'",
				     pol->ips[i]);
	}
	if (!rc && !X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0,
				  X509V3_ADD_DEFAULT))
		rc = fl_fail_ssl(err, FL_ERR, "cannot add subjectAltName");
	GENERAL_NAMES_free(gens);
	return rc;
}

static int check_policy(const struct fl_pki_policy *pol,
			struct fl_error *err)
{
	if (!pol || (pol->kind != FL_PKI_SERVER && pol->kind != FL_PKI_CLIENT))
		return fl_fail(err, FL_EINVAL, "unknown certificate kind");
	if (pol->kind == FL_PKI_CLIENT && !fl_valid_id(pol->cn))
		return fl_fail(err, FL_EINVAL,
			       "client CN '%s' is not a valid id",
			       pol->cn ? pol->cn : "");
	if (!valid_cn(pol->cn))
		return fl_fail(err, FL_EINVAL, "invalid CN");
	if (pol->n_dns + pol->n_ips > FL_PKI_SAN_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d names",
			       FL_PKI_SAN_MAX);
	for (size_t i = 0; i < pol->n_dns; i++)
		if (!valid_dns(pol->dns[i]))
			return fl_fail(err, FL_EINVAL, "invalid DNS name '%s'",
				       pol->dns[i]);
	return check_lifetime(pol->lifetime_s, err);
}

int fl_pki_leaf_issue(const struct fl_pki_issuer *ca,
		      const struct fl_pki_policy *pol, EVP_PKEY *pubkey,
		      X509 **ret_cert, struct fl_error *err)
{
	static const int nids[] = {
		NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
		NID_subject_key_identifier, NID_authority_key_identifier,
	};
	const char *values[] = {
		"critical,CA:FALSE",
		"critical,digitalSignature,keyAgreement",
		pol && pol->kind == FL_PKI_SERVER ? "serverAuth" : "clientAuth",
		"hash",
		"keyid:always",
	};
	X509 *c = NULL;
	int rc;

	rc = check_issuer(ca, err);
	if (!rc)
		rc = check_policy(pol, err);
	if (!rc && !fl_pki_key_is_p256(pubkey))
		rc = fl_fail(err, FL_EINVAL, "subject key must be P-256");
	if (!rc)
		rc = cert_skeleton(ca->cert, pubkey, pol->cn, pol->lifetime_s,
				   FL_PKI_BACKDATE_LEAF, &c, err);
	if (!rc)
		rc = add_exts(c, ca->cert, ca->key, nids, values,
			      FL_ARRAY_SIZE(nids), err);
	if (!rc)
		rc = add_san(c, pol, err);
	if (!rc)
		rc = sign_cert(c, ca->key, err);
	if (rc) {
		X509_free(c);
		return rc;
	}
	*ret_cert = c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Certificate signing requests                                       */

int fl_pki_csr_create(EVP_PKEY *key, const char *cn, char **ret_pem,
		      struct fl_error *err)
{
	X509_REQ *req;
	BIO *b = NULL;
	int rc;

	if (!valid_cn(cn))
		return fl_fail(err, FL_EINVAL, "invalid CSR name");
	req = X509_REQ_new();
	if (!req)
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	rc = set_cn_name(X509_REQ_get_subject_name(req), cn, err);
	if (rc)
		goto out;
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		rc = fl_fail_ssl(err, FL_EINVAL, "cannot sign CSR");
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509_REQ(b, req)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot encode CSR");
		goto out;
	}
	*ret_pem = bio_to_str(b, NULL);
out:
	BIO_free(b);
	X509_REQ_free(req);
	return rc;
}

/* A P-256 key whose point passes OpenSSL's full public key check. */
static int check_csr_key(EVP_PKEY *pub, struct fl_error *err)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if (!fl_pki_key_is_p256(pub))
		return fl_fail(err, FL_EINVAL, "CSR key is not ECDSA P-256");
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	ok = ctx && EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return fl_fail_ssl(err, FL_EINVAL, "CSR key is invalid");
	return 0;
}

static int check_csr_cn(const X509_REQ *req, const char *want_cn,
			unsigned flags, char cn[FL_PKI_CN_MAX + 1],
			struct fl_error *err)
{
	int rc = get_cn(X509_REQ_get_subject_name(req), cn, FL_EINVAL, err);

	if (rc)
		return rc;
	if (!fl_valid_text(cn, FL_PKI_CN_MAX))
		return fl_fail(err, FL_EINVAL,
			       "CSR commonName is not printable ASCII");
	if ((flags & FL_PKI_CSR_DEVICE_ID) && !fl_valid_id(cn))
		return fl_fail(err, FL_EINVAL,
			       "CSR commonName '%s' is not a valid device id",
			       cn);
	if (want_cn && strcmp(cn, want_cn) != 0)
		return fl_fail(err, FL_EINVAL,
			       "CSR is for '%s', expected '%s'", cn, want_cn);
	return 0;
}

int fl_pki_csr_parse(const char *pem, size_t len, const char *want_cn,
		     unsigned flags, char ret_cn[static FL_PKI_CN_MAX + 1],
		     EVP_PKEY **ret_pubkey, struct fl_error *err)
{
	char cn[FL_PKI_CN_MAX + 1];
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	BIO *b = NULL;
	int rc;

	if (len > FL_PKI_CSR_MAX)
		return fl_fail(err, FL_ELIMIT, "CSR larger than %d bytes",
			       FL_PKI_CSR_MAX);
	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	req = PEM_read_bio_X509_REQ(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!req)
		return fl_fail_ssl(err, FL_EPARSE, "not a PEM CSR");
	pub = X509_REQ_get0_pubkey(req);
	if (!pub) {
		rc = fl_fail_ssl(err, FL_EINVAL, "CSR key is unsupported");
		goto out;
	}
	rc = check_csr_key(pub, err);
	if (rc)
		goto out;
	if (X509_REQ_verify(req, pub) != 1) {
		rc = fl_fail_ssl(err, FL_EVERIFY, "CSR signature is invalid");
		goto out;
	}
	rc = check_csr_cn(req, want_cn, flags, cn, err);
	if (rc)
		goto out;
	memcpy(ret_cn, cn, sizeof(cn));
	if (ret_pubkey) {
		EVP_PKEY_up_ref(pub);
		*ret_pubkey = pub;
	}
out:
	X509_REQ_free(req);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Certificate revocation lists                                       */

/* Hex serial (1..40 digits, non-zero) into a new ASN1_INTEGER. */
static int parse_serial(const char *hex, ASN1_INTEGER **ret,
			struct fl_error *err)
{
	size_t n = hex ? strspn(hex, "0123456789abcdefABCDEF") : 0;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai;

	if (n == 0 || n > FL_PKI_SERIAL_HEX_MAX - 1 || hex[n] != '\0' ||
	    n == strspn(hex, "0"))
		return fl_fail(err, FL_EINVAL, "invalid serial '%s'",
			       hex ? hex : "");
	if (!BN_hex2bn(&bn, hex)) {
		BN_free(bn);
		return fl_fail_ssl(err, FL_ERR, "cannot convert serial");
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (!ai)
		return fl_fail_ssl(err, FL_ERR, "cannot convert serial");
	*ret = ai;
	return 0;
}

static int add_revoked(X509_CRL *crl, const struct fl_pki_revoked *r,
		       struct fl_error *err)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	int rc;

	rc = parse_serial(r->serial, &serial, err);
	if (rc)
		return rc;
	rev = X509_REVOKED_new();
	when = ASN1_TIME_set(NULL, r->when);
	if (!rev || !when || !X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, when) ||
	    !X509_CRL_add0_revoked(crl, rev)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot add CRL entry");
		X509_REVOKED_free(rev);
	}
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	return rc;
}

/* Version, issuer, times, crlNumber and AKI of a new CRL. */
static int crl_header(X509_CRL *crl, const struct fl_pki_issuer *ca,
		      uint64_t number, int64_t next_update,
		      struct fl_error *err)
{
	time_t now = time(NULL);
	ASN1_TIME *last = ASN1_TIME_set(NULL, now - FL_PKI_BACKDATE_LEAF);
	ASN1_TIME *next = ASN1_TIME_set(NULL, now + (time_t)next_update);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;
	int rc = 0;

	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if (last && next && num && ASN1_INTEGER_set_uint64(num, number))
		aki = X509V3_EXT_nconf_nid(NULL, &ctx,
					   NID_authority_key_identifier,
					   "keyid:always");
	if (!aki || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, last) ||
	    !X509_CRL_set1_nextUpdate(crl, next) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    !X509_CRL_add_ext(crl, aki, -1))
		rc = fl_fail_ssl(err, FL_ERR, "cannot build CRL");
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(next);
	ASN1_TIME_free(last);
	return rc;
}

int fl_pki_crl_build(const struct fl_pki_issuer *ca,
		     const struct fl_pki_revoked *list, size_t n,
		     uint64_t crl_number, int64_t next_update_s,
		     X509_CRL **ret_crl, struct fl_error *err)
{
	X509_CRL *crl;
	int rc;

	rc = check_issuer(ca, err);
	if (rc)
		return rc;
	if (n > FL_PKI_CRL_ENTRIES_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d CRL entries",
			       FL_PKI_CRL_ENTRIES_MAX);
	if (crl_number == 0 || crl_number > INT64_MAX)
		return fl_fail(err, FL_EINVAL, "CRL number out of range");
	rc = check_lifetime(next_update_s, err);
	if (rc)
		return rc;
	crl = X509_CRL_new();
	if (!crl)
		return fl_fail_ssl(err, FL_ERR, "out of memory");
	rc = crl_header(crl, ca, crl_number, next_update_s, err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = add_revoked(crl, &list[i], err);
	if (!rc && (!X509_CRL_sort(crl) ||
		    X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0))
		rc = fl_fail_ssl(err, FL_ERR, "cannot sign CRL");
	if (rc) {
		X509_CRL_free(crl);
		return rc;
	}
	*ret_crl = crl;
	return 0;
}

static int write_crl(BIO *b, const void *crl)
{
	return PEM_write_bio_X509_CRL(b, (X509_CRL *)crl);
}

int fl_pki_crl_save(const char *path, X509_CRL *crl, struct fl_error *err)
{
	return save_pem(path, 0644, write_crl, crl, err);
}

static int parse_crl(const char *pem, size_t len, void **ret,
		     struct fl_error *err)
{
	X509_CRL *crl;
	BIO *b = NULL;
	int rc;

	rc = mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	crl = PEM_read_bio_X509_CRL(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!crl)
		return fl_fail_ssl(err, FL_EPARSE, "no valid PEM CRL");
	*ret = crl;
	return 0;
}

int fl_pki_crl_load(const char *path, X509_CRL **ret_crl,
		    struct fl_error *err)
{
	return load_file(path, FL_PKI_CRL_FILE_MAX, parse_crl,
			 (void **)ret_crl, err);
}

/* ------------------------------------------------------------------ */
/* Verification                                                       */

/*
 * The current X509_STORE is immutable once published: a verify call
 * takes a reference under @lock and verifies without holding it, and a
 * reload builds a new store and swaps the pointer.  @reload_lock
 * serialises reloads and guards the recorded file identities.
 */
struct fl_pki_verifier {
	pthread_mutex_t lock;
	X509_STORE *store;
	pthread_mutex_t reload_lock;
	char *ca_file, *crl_file;
	struct stat ca_st, crl_st;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The CRL must be signed by one of the trusted CA certificates. */
static int check_crl_issuer(X509_CRL *crl, STACK_OF(X509) *cas,
			    struct fl_error *err)
{
	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);

		if (X509_NAME_cmp(X509_get_subject_name(ca),
				  X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return 0;
	}
	ERR_clear_error();
	return fl_fail(err, FL_EVERIFY,
		       "CRL is not signed by a trusted CA certificate");
}

static int add_crl(X509_STORE *store, const char *path, STACK_OF(X509) *cas,
		   struct fl_error *err)
{
	X509_CRL *crl = NULL;
	int rc;

	rc = fl_pki_crl_load(path, &crl, err);
	if (!rc)
		rc = check_crl_issuer(crl, cas, err);
	if (!rc && (!X509_STORE_add_crl(store, crl) ||
		    !X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK)))
		rc = fl_fail_ssl(err, FL_ERR, "cannot add CRL");
	X509_CRL_free(crl);
	if (rc)
		fl_error_prefix(err, "CRL '%s'", path);
	return rc;
}

/*
 * Build a store from the files, recording their identity first so a
 * file replaced during the load is simply loaded again next refresh.
 */
static int load_store(const char *ca_file, const char *crl_file,
		      X509_STORE **ret, struct stat *ca_st,
		      struct stat *crl_st, struct fl_error *err)
{
	STACK_OF(X509) *cas = NULL;
	X509_STORE *store = NULL;
	int rc;

	if (stat(ca_file, ca_st) < 0)
		memset(ca_st, 0, sizeof(*ca_st));
	if (!crl_file || stat(crl_file, crl_st) < 0)
		memset(crl_st, 0, sizeof(*crl_st));
	rc = fl_pki_chain_load(ca_file, &cas, err);
	if (rc)
		return rc;
	store = X509_STORE_new();
	if (!store || !X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot create X509 store");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(cas); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
			rc = fl_fail_ssl(err, FL_EINVAL,
					 "cannot add CA certificate");
			goto out;
		}
	if (crl_file) {
		rc = add_crl(store, crl_file, cas, err);
		if (rc)
			goto out;
	}
	*ret = store;
	store = NULL;
out:
	X509_STORE_free(store);
	fl_pki_chain_free(cas);
	return rc;
}

int fl_pki_verifier_new(const char *ca_file, const char *crl_file,
			struct fl_pki_verifier **ret_verifier,
			struct fl_error *err)
{
	struct fl_pki_verifier *v = fl_xcalloc(1, sizeof(*v));
	int rc;

	rc = load_store(ca_file, crl_file, &v->store, &v->ca_st, &v->crl_st,
			err);
	if (rc) {
		free(v);
		return rc;
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->reload_lock, NULL);
	v->ca_file = fl_xstrdup(ca_file);
	v->crl_file = crl_file ? fl_xstrdup(crl_file) : NULL;
	*ret_verifier = v;
	return 0;
}

void fl_pki_verifier_free(struct fl_pki_verifier *v)
{
	if (!v)
		return;
	X509_STORE_free(v->store);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->reload_lock);
	free(v->ca_file);
	free(v->crl_file);
	free(v);
}

/* Reload with @reload_lock held. */
static int reload_locked(struct fl_pki_verifier *v, struct fl_error *err)
{
	struct stat ca_st, crl_st;
	X509_STORE *store, *old;
	int rc;

	rc = load_store(v->ca_file, v->crl_file, &store, &ca_st, &crl_st,
			err);
	if (rc)
		return rc;
	pthread_mutex_lock(&v->lock);
	old = v->store;
	v->store = store;
	pthread_mutex_unlock(&v->lock);
	X509_STORE_free(old);
	v->ca_st = ca_st;
	v->crl_st = crl_st;
	return 0;
}

int fl_pki_verifier_reload(struct fl_pki_verifier *v, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&v->reload_lock);
	rc = reload_locked(v, err);
	pthread_mutex_unlock(&v->reload_lock);
	return rc;
}

int fl_pki_verifier_refresh(struct fl_pki_verifier *v, bool *ret_reloaded,
			    struct fl_error *err)
{
	struct stat ca_st, crl_st = {0};
	bool changed;
	int rc = 0;

	if (stat(v->ca_file, &ca_st) < 0 ||
	    (v->crl_file && stat(v->crl_file, &crl_st) < 0))
		return fl_fail_errno(err, FL_EIO, "cannot stat CA or CRL file");
	pthread_mutex_lock(&v->reload_lock);
	changed = !same_file(&ca_st, &v->ca_st) ||
		  (v->crl_file && !same_file(&crl_st, &v->crl_st));
	if (changed)
		rc = reload_locked(v, err);
	pthread_mutex_unlock(&v->reload_lock);
	if (!rc && ret_reloaded)
		*ret_reloaded = changed;
	return rc;
}

int fl_pki_verify_cert(struct fl_pki_verifier *v, X509 *cert,
		       enum fl_pki_purpose purpose, int *ret_verr,
		       struct fl_error *err)
{
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store;
	int rc = 0, verr = X509_V_OK;

	if (purpose != FL_PKI_PURPOSE_CLIENT && purpose != FL_PKI_PURPOSE_SERVER)
		return fl_fail(err, FL_EINVAL, "unknown purpose");
	pthread_mutex_lock(&v->lock);
	store = v->store;
	X509_STORE_up_ref(store);
	pthread_mutex_unlock(&v->lock);
	ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, store, cert, NULL) ||
	    !X509_STORE_CTX_set_purpose(ctx, purpose == FL_PKI_PURPOSE_CLIENT
						     ? X509_PURPOSE_SSL_CLIENT
						     : X509_PURPOSE_SSL_SERVER)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot set up verification");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		verr = X509_STORE_CTX_get_error(ctx);
		if (verr == X509_V_OK)
			verr = X509_V_ERR_UNSPECIFIED;
		ERR_clear_error();
		rc = fl_fail(err, FL_EDENIED, "certificate rejected: %s",
			     X509_verify_cert_error_string(verr));
	}
	if (ret_verr)
		*ret_verr = verr;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

int fl_pki_verify_der(struct fl_pki_verifier *v, const unsigned char *der,
		      size_t len, enum fl_pki_purpose purpose,
		      struct fl_pki_cert_info *ret_info, int *ret_verr,
		      struct fl_error *err)
{
	X509 *cert;
	int rc;

	rc = fl_pki_cert_from_der(der, len, &cert, err);
	if (rc)
		return rc;
	rc = fl_pki_verify_cert(v, cert, purpose, ret_verr, err);
	if (!rc && ret_info)
		rc = fl_pki_cert_info(cert, ret_info, err);
	X509_free(cert);
	return rc;
}
