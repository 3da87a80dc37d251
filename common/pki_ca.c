/* SPDX-License-Identifier: MIT */
/*
 * Building certificates: root and issuing CA, leaves from server policy,
 * CSR creation and checking.  See pki.h and docs/pki.md.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "pki_impl.h"
#include "util.h"
#include "validate.h"

#define SERIAL_BYTES 16

/* ------------------------------------------------------------------ */
/* Building certificates                                              */

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
		rc = fl_pki__time(X509_get0_notAfter(issuer), &cap, err);
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
	if (!rc && !X509_set_issuer_name(
		       c, X509_get_subject_name(issuer ? issuer : c)))
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

/* Common part of root and issuing CA creation. */
static int ca_create(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pubkey,
		     const char *cn, int64_t lifetime, const char *bc,
		     X509 **ret, struct fl_error *err)
{
	static const int nids[] = {
	    NID_basic_constraints,
	    NID_key_usage,
	    NID_subject_key_identifier,
	    NID_authority_key_identifier,
	};
	const char *values[] = {
	    bc,
	    "critical,keyCertSign,cRLSign",
	    "hash",
	    "keyid:always",
	};
	X509 *c = NULL;
	int rc;

	if (!fl_pki_key_is_p256(pubkey))
		return fl_fail(err, FL_EINVAL, "CA key must be P-256");
	if (!fl_pki__valid_cn(cn))
		return fl_fail(err, FL_EINVAL, "invalid CA name");
	rc = fl_pki__check_lifetime(lifetime, err);
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

int fl_pki_issuing_create(const struct fl_pki_issuer *root, EVP_PKEY *pubkey,
			  const char *cn, int64_t lifetime_s, X509 **ret_cert,
			  struct fl_error *err)
{
	int rc = fl_pki__check_issuer(root, err);

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

static int check_policy(const struct fl_pki_policy *pol, struct fl_error *err)
{
	if (!pol || (pol->kind != FL_PKI_SERVER && pol->kind != FL_PKI_CLIENT))
		return fl_fail(err, FL_EINVAL, "unknown certificate kind");
	if (pol->kind == FL_PKI_CLIENT && !fl_valid_id(pol->cn))
		return fl_fail(err, FL_EINVAL,
			       "client CN '%s' is not a valid id",
			       pol->cn ? pol->cn : "");
	if (!fl_pki__valid_cn(pol->cn))
		return fl_fail(err, FL_EINVAL, "invalid CN");
	if (pol->n_dns + pol->n_ips > FL_PKI_SAN_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d names",
			       FL_PKI_SAN_MAX);
	for (size_t i = 0; i < pol->n_dns; i++)
		if (!valid_dns(pol->dns[i]))
			return fl_fail(err, FL_EINVAL, "invalid DNS name '%s'",
				       pol->dns[i]);
	return fl_pki__check_lifetime(pol->lifetime_s, err);
}

int fl_pki_leaf_issue(const struct fl_pki_issuer *ca,
		      const struct fl_pki_policy *pol, EVP_PKEY *pubkey,
		      X509 **ret_cert, struct fl_error *err)
{
	static const int nids[] = {
	    NID_basic_constraints,
	    NID_key_usage,
	    NID_ext_key_usage,
	    NID_subject_key_identifier,
	    NID_authority_key_identifier,
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

	rc = fl_pki__check_issuer(ca, err);
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

	if (!fl_pki__valid_cn(cn))
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
	*ret_pem = fl_pki__bio_str(b, NULL);
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
	int rc =
	    fl_pki__get_cn(X509_REQ_get_subject_name(req), cn, FL_EINVAL, err);

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
		return fl_fail(err, FL_EINVAL, "CSR is for '%s', expected '%s'",
			       cn, want_cn);
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
	rc = fl_pki__mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	req = PEM_read_bio_X509_REQ(b, NULL, fl_pki__no_passphrase, NULL);
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
