/* SPDX-License-Identifier: MIT */
/*
 * Certificate revocation lists and the thread-safe verifier.  See pki.h
 * and docs/pki.md.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "pki.h"
#include "pki_impl.h"
#include "util.h"

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
		aki = X509V3_EXT_nconf_nid(
		    NULL, &ctx, NID_authority_key_identifier, "keyid:always");
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

	rc = fl_pki__check_issuer(ca, err);
	if (rc)
		return rc;
	if (n > FL_PKI_CRL_ENTRIES_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d CRL entries",
			       FL_PKI_CRL_ENTRIES_MAX);
	if (crl_number == 0 || crl_number > INT64_MAX)
		return fl_fail(err, FL_EINVAL, "CRL number out of range");
	rc = fl_pki__check_lifetime(next_update_s, err);
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
	return fl_pki__save_pem(path, 0644, write_crl, crl, err);
}

static int parse_crl(const char *pem, size_t len, void **ret,
		     struct fl_error *err)
{
	X509_CRL *crl;
	BIO *b = NULL;
	int rc;

	rc = fl_pki__mem_bio(pem, len, &b, err);
	if (rc)
		return rc;
	crl = PEM_read_bio_X509_CRL(b, NULL, fl_pki__no_passphrase, NULL);
	BIO_free(b);
	if (!crl)
		return fl_fail_ssl(err, FL_EPARSE, "no valid PEM CRL");
	*ret = crl;
	return 0;
}

int fl_pki_crl_load(const char *path, X509_CRL **ret_crl, struct fl_error *err)
{
	return fl_pki__load_file(path, FL_PKI_CRL_FILE_MAX, parse_crl,
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
	time_t at; /* verification time; 0: the current time */
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

/* Every CRL in a CRL file: one per issuing CA in the bundle. */
struct crl_list {
	X509_CRL *crls[FL_PKI_CHAIN_MAX];
	int n;
};

static void crl_list_free(struct crl_list *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->n; i++)
		X509_CRL_free(l->crls[i]);
	free(l);
}

static int parse_crls(const char *pem, size_t len, void **ret,
		      struct fl_error *err)
{
	struct crl_list *l = fl_xcalloc(1, sizeof(*l));
	X509_CRL *crl;
	unsigned long e;
	BIO *b = NULL;
	int rc;

	rc = fl_pki__mem_bio(pem, len, &b, err);
	while (!rc && (crl = PEM_read_bio_X509_CRL(
			   b, NULL, fl_pki__no_passphrase, NULL))) {
		if (l->n == FL_PKI_CHAIN_MAX) {
			X509_CRL_free(crl);
			rc = fl_fail(err, FL_ELIMIT, "more than %d CRLs",
				     FL_PKI_CHAIN_MAX);
			break;
		}
		l->crls[l->n++] = crl;
	}
	e = ERR_peek_last_error();
	if (!rc && (l->n == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM ||
		    ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		rc = fl_fail_ssl(err, FL_EPARSE, "no valid PEM CRL");
	ERR_clear_error();
	BIO_free(b);
	if (rc) {
		crl_list_free(l);
		return rc;
	}
	*ret = l;
	return 0;
}

static int add_crls(X509_STORE *store, const char *path, STACK_OF(X509) *cas,
		    struct fl_error *err)
{
	struct crl_list *l = NULL;
	int rc;

	rc = fl_pki__load_file(path, FL_PKI_CRL_FILE_MAX, parse_crls,
			       (void **)&l, err);
	if (rc)
		return rc;
	for (int i = 0; !rc && i < l->n; i++) {
		rc = check_crl_issuer(l->crls[i], cas, err);
		if (!rc && !X509_STORE_add_crl(store, l->crls[i]))
			rc = fl_fail_ssl(err, FL_ERR, "cannot add CRL");
	}
	if (!rc && !X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK))
		rc = fl_fail_ssl(err, FL_ERR, "cannot enable CRL checks");
	crl_list_free(l);
	if (rc)
		fl_error_prefix(err, "'%s'", path);
	return rc;
}

/*
 * Build a store from the files, recording their identity first so a
 * file replaced during the load is simply loaded again next refresh.
 */
static int load_store(const char *ca_file, const char *crl_file,
		      X509_STORE **ret, struct stat *ca_st, struct stat *crl_st,
		      struct fl_error *err)
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
		rc = add_crls(store, crl_file, cas, err);
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

	rc = load_store(v->ca_file, v->crl_file, &store, &ca_st, &crl_st, err);
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

void fl_pki_verifier_set_time(struct fl_pki_verifier *v, time_t at)
{
	pthread_mutex_lock(&v->lock);
	v->at = at;
	pthread_mutex_unlock(&v->lock);
}

int fl_pki_verify_cert(struct fl_pki_verifier *v, X509 *cert,
		       enum fl_pki_purpose purpose, int *ret_verr,
		       struct fl_error *err)
{
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store;
	int rc = 0, verr = X509_V_OK;
	time_t at;

	if (purpose != FL_PKI_PURPOSE_CLIENT &&
	    purpose != FL_PKI_PURPOSE_SERVER)
		return fl_fail(err, FL_EINVAL, "unknown purpose");
	pthread_mutex_lock(&v->lock);
	store = v->store;
	X509_STORE_up_ref(store);
	at = v->at;
	pthread_mutex_unlock(&v->lock);
	ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, store, cert, NULL) ||
	    !X509_STORE_CTX_set_purpose(ctx, purpose == FL_PKI_PURPOSE_CLIENT
						 ? X509_PURPOSE_SSL_CLIENT
						 : X509_PURPOSE_SSL_SERVER)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot set up verification");
		goto out;
	}
	if (at)
		X509_STORE_CTX_set_time(ctx, 0, at);
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
