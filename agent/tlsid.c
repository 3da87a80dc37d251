/* SPDX-License-Identifier: MIT */
/*
 * Decoded device identities and their client TLS contexts, cached per
 * process (tlsid.h).  One mutex guards the table; decoding and context
 * making run outside it, so workers of fleet-sim do not wait for each
 * other's OpenSSL calls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "tlsid.h"
#include "util.h"

#define BUCKETS 16384u

/* What says a file is unchanged. */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
};

struct entry {
	struct entry *next;
	char *key_file, *cert_file;
	struct file_sig key_sig, cert_sig;
	EVP_PKEY *key;
	X509 *cert;
	SSL_CTX *ctx; /* NULL until asked for; for ca_file and host */
	char *ca_file, *host;
	struct file_sig ca_sig;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry **table;
static unsigned n_entries;
static struct agent_tlsid_stats stats;

static int sig_of(const char *path, struct file_sig *ret, struct fl_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fl_fail_errno(err,
				     errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				     "cannot read '%s'", path);
	*ret = (struct file_sig){st.st_dev, st.st_ino, st.st_size,
				 st.st_mtim.tv_sec * 1000000000LL +
				     st.st_mtim.tv_nsec};
	return 0;
}

static bool sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

/* FNV-1a of the key file's path */
static struct entry **bucket(const char *key_file)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key_file; *p; p++)
		h = (h ^ *p) * 16777619u;
	if (!table)
		table = fl_xcalloc(BUCKETS, sizeof(*table));
	return &table[h % BUCKETS];
}

/* The entry for @key_file, under the lock; NULL when there is none. */
static struct entry *find(const char *key_file)
{
	struct entry *e = *bucket(key_file);

	while (e && !fl_streq(e->key_file, key_file))
		e = e->next;
	return e;
}

static void ctx_clear(struct entry *e)
{
	SSL_CTX_free(e->ctx);
	free(e->ca_file);
	free(e->host);
	e->ctx = NULL;
	e->ca_file = e->host = NULL;
}

/* Store a decoded pair for @key_file (replacing what was), under the
 * lock; takes over @key and @cert. */
static void store_pair(const char *cert_file, const char *key_file,
		       const struct file_sig *cs, const struct file_sig *ks,
		       EVP_PKEY *key, X509 *cert)
{
	struct entry *e = find(key_file), **b;

	if (!e) {
		if (n_entries >= AGENT_TLSID_MAX) {
			EVP_PKEY_free(key);
			X509_free(cert);
			return;
		}
		e = fl_xcalloc(1, sizeof(*e));
		e->key_file = fl_xstrdup(key_file);
		b = bucket(key_file);
		e->next = *b;
		*b = e;
		n_entries++;
	}
	EVP_PKEY_free(e->key);
	X509_free(e->cert);
	free(e->cert_file);
	ctx_clear(e);
	e->cert_file = fl_xstrdup(cert_file);
	e->cert_sig = *cs;
	e->key_sig = *ks;
	e->key = key;
	e->cert = cert;
}

/* The cached pair when the files are unchanged (new references). */
static bool cached_pair(const char *cert_file, const char *key_file,
			const struct file_sig *cs, const struct file_sig *ks,
			EVP_PKEY **ret_key, X509 **ret_cert)
{
	struct entry *e = find(key_file);

	if (!e || !fl_streq(e->cert_file, cert_file) ||
	    !sig_eq(&e->cert_sig, cs) || !sig_eq(&e->key_sig, ks))
		return false;
	EVP_PKEY_up_ref(e->key);
	X509_up_ref(e->cert);
	*ret_key = e->key;
	*ret_cert = e->cert;
	return true;
}

int agent_tlsid_pair(const char *cert_file, const char *key_file,
		     EVP_PKEY **ret_key, X509 **ret_cert, struct fl_error *err)
{
	struct file_sig cs, ks;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	bool hit;
	int rc;

	rc = sig_of(cert_file, &cs, err);
	if (!rc)
		rc = sig_of(key_file, &ks, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	hit = cached_pair(cert_file, key_file, &cs, &ks, ret_key, ret_cert);
	pthread_mutex_unlock(&lock);
	if (hit)
		return 0;
	rc = fl_pki_cert_load(cert_file, &cert, err);
	if (!rc)
		rc = fl_pki_key_load(key_file, &key, err);
	if (rc) {
		X509_free(cert);
		return rc;
	}
	EVP_PKEY_up_ref(key);
	X509_up_ref(cert);
	pthread_mutex_lock(&lock);
	stats.decodes++;
	store_pair(cert_file, key_file, &cs, &ks, key, cert);
	pthread_mutex_unlock(&lock);
	*ret_key = key;
	*ret_cert = cert;
	return 0;
}

/* The server's name or address checked in its certificate. */
static int set_host(SSL_CTX *ctx, const char *host)
{
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
	unsigned char addr[16];

	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	X509_VERIFY_PARAM_set_hostflags(vp,
					X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return X509_VERIFY_PARAM_set1_host(vp, host, 0);
}

/* A client context for @host with @key and @cert, the CA from
 * @ca_file. */
static int make_ctx(const char *ca_file, const char *host, EVP_PKEY *key,
		    X509 *cert, SSL_CTX **ret, struct fl_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int rc = 0;

	if (!ctx)
		return fl_fail(err, FL_ERR, "cannot make a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_file(ctx, ca_file) != 1)
		rc = fl_fail(err, FL_EPARSE, "cannot load CA file '%s'",
			     ca_file);
	else if (set_host(ctx, host) != 1)
		rc = fl_fail(err, FL_ERR, "cannot check the host '%s'", host);
	else if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
		 SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
		 SSL_CTX_check_private_key(ctx) != 1)
		rc = fl_fail(err, FL_EVERIFY,
			     "the key does not belong to the certificate");
	ERR_clear_error();
	if (rc) {
		SSL_CTX_free(ctx);
		return rc;
	}
	*ret = ctx;
	return 0;
}

/* The cached context when it is for this CA file, unchanged, and
 * @host, and the pair is the cached one (a new reference). */
static SSL_CTX *cached_ctx(const char *ca_file, const char *key_file,
			   const char *host, const struct file_sig *as,
			   const EVP_PKEY *key)
{
	struct entry *e = find(key_file);

	if (!e || !e->ctx || e->key != key || !fl_streq(e->ca_file, ca_file) ||
	    !fl_streq(e->host, host) || !sig_eq(&e->ca_sig, as))
		return NULL;
	SSL_CTX_up_ref(e->ctx);
	return e->ctx;
}

/* Keep @ctx (a new reference is taken) for the pair @key of
 * @key_file, unless that pair was replaced meanwhile. */
static void store_ctx(const char *ca_file, const char *key_file,
		      const char *host, const struct file_sig *as,
		      const EVP_PKEY *key, SSL_CTX *ctx)
{
	struct entry *e = find(key_file);

	if (!e || e->key != key)
		return;
	ctx_clear(e);
	SSL_CTX_up_ref(ctx);
	e->ctx = ctx;
	e->ca_file = fl_xstrdup(ca_file);
	e->host = fl_xstrdup(host);
	e->ca_sig = *as;
}

int agent_tlsid_client_ctx(const char *ca_file, const char *cert_file,
			   const char *key_file, const char *host,
			   SSL_CTX **ret, struct fl_error *err)
{
	struct file_sig as;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *ctx;
	int rc;

	rc = sig_of(ca_file, &as, err);
	if (!rc)
		rc = agent_tlsid_pair(cert_file, key_file, &key, &cert, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	ctx = cached_ctx(ca_file, key_file, host, &as, key);
	pthread_mutex_unlock(&lock);
	if (!ctx && !(rc = make_ctx(ca_file, host, key, cert, &ctx, err))) {
		pthread_mutex_lock(&lock);
		stats.contexts++;
		store_ctx(ca_file, key_file, host, &as, key, ctx);
		pthread_mutex_unlock(&lock);
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	if (!rc)
		*ret = ctx;
	return rc;
}

int agent_tlsid_use(SSL_CTX *ctx, const char *cert_file, const char *key_file,
		    struct fl_error *err)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = agent_tlsid_pair(cert_file, key_file, &key, &cert, err);

	if (!rc && (SSL_CTX_use_certificate(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx, key) != 1))
		rc = fl_fail(err, FL_ERR, "cannot use the identity of '%s'",
			     cert_file);
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

void agent_tlsid_stats(struct agent_tlsid_stats *ret)
{
	pthread_mutex_lock(&lock);
	*ret = stats;
	pthread_mutex_unlock(&lock);
}
