/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "fsutil.h"
#include "pki.h"
#include "srv.h"
#include "util.h"

#define MAX_SANS 24

/* Split @sans into DNS names and IP literals, after the defaults. */
static int split_sans(const char *const *sans, size_t nsans, const char **dns,
		      size_t *ndns, const char **ips, size_t *nips,
		      struct fl_error *err)
{
	unsigned char buf[16];

	if (nsans > MAX_SANS)
		return fl_fail(err, FL_ELIMIT, "more than %d names", MAX_SANS);
	dns[0] = "localhost";
	ips[0] = "127.0.0.1";
	ips[1] = "::1";
	*ndns = 1;
	*nips = 2;
	for (size_t i = 0; i < nsans; i++) {
		if (inet_pton(AF_INET, sans[i], buf) == 1 ||
		    inet_pton(AF_INET6, sans[i], buf) == 1)
			ips[(*nips)++] = sans[i];
		else
			dns[(*ndns)++] = sans[i];
	}
	return 0;
}

static int save_pair(const char *dir, const char *cert_name,
		     const char *key_name, X509 *const *certs, size_t n,
		     EVP_PKEY *key, struct fl_error *err)
{
	char *cp = fl_path_join(dir, cert_name),
	     *kp = fl_path_join(dir, key_name);
	int rc = fl_pki_key_save(kp, key, err);

	if (!rc)
		rc = fl_pki_cert_save(cp, certs, n, err);
	free(cp);
	free(kp);
	return rc;
}

/* Root and issuing CA; returns the issuing CA for further signing. */
static int make_cas(const char *dir, struct fl_pki_issuer *issuing,
		    struct fl_error *err)
{
	struct fl_pki_issuer root = {0};
	char *ca_pem = fl_path_join(dir, SRV_CA_FILE);
	int rc;

	rc = fl_pki_keygen_p256(&root.key, err);
	if (!rc)
		rc = fl_pki_root_create(root.key, "Fleet Root CA",
					FL_PKI_ROOT_LIFETIME, &root.cert, err);
	if (!rc)
		rc = save_pair(dir, SRV_CA_ROOT_CERT, SRV_CA_ROOT_KEY,
			       &root.cert, 1, root.key, err);
	if (!rc)
		rc = fl_pki_cert_save(ca_pem, &root.cert, 1, err);
	if (!rc)
		rc = fl_pki_keygen_p256(&issuing->key, err);
	if (!rc)
		rc = fl_pki_issuing_create(
		    &root, issuing->key, "Fleet Issuing CA",
		    FL_PKI_ISSUING_LIFETIME, &issuing->cert, err);
	if (!rc)
		rc = save_pair(dir, SRV_CA_ISSUING_CERT, SRV_CA_ISSUING_KEY,
			       &issuing->cert, 1, issuing->key, err);
	X509_free(root.cert);
	EVP_PKEY_free(root.key);
	free(ca_pem);
	return rc;
}

static int make_server_cert(const char *dir, const struct fl_pki_issuer *ca,
			    const char *const *sans, size_t nsans,
			    struct fl_error *err)
{
	const char *dns[MAX_SANS + 1], *ips[MAX_SANS + 2];
	struct fl_pki_policy pol = {.kind = FL_PKI_SERVER,
				    .cn = "fleetd",
				    .dns = dns,
				    .ips = ips,
				    .lifetime_s = FL_PKI_SERVER_LIFETIME};
	EVP_PKEY *key = NULL;
	X509 *chain[2] = {NULL, ca->cert};
	int rc;

	rc = split_sans(sans, nsans, dns, &pol.n_dns, ips, &pol.n_ips, err);
	if (!rc)
		rc = fl_pki_keygen_p256(&key, err);
	if (!rc)
		rc = fl_pki_leaf_issue(ca, &pol, key, &chain[0], err);
	if (!rc)
		rc = save_pair(dir, SRV_TLS_CERT, SRV_TLS_KEY, chain, 2, key,
			       err);
	X509_free(chain[0]);
	EVP_PKEY_free(key);
	return rc;
}

/* An MQTT client certificate of fleetd's (clientAuth) with CN @cn, in
 * @cert_name and @key_name under @dir. */
static int make_mqtt_cert(const char *dir, const struct fl_pki_issuer *ca,
			  const char *cn, const char *cert_name,
			  const char *key_name, struct fl_error *err)
{
	struct fl_pki_policy pol = {.kind = FL_PKI_CLIENT,
				    .cn = cn,
				    .lifetime_s = FL_PKI_SERVER_LIFETIME};
	char *mdir = fl_path_join(dir, "mqtt");
	EVP_PKEY *key = NULL;
	X509 *chain[2] = {NULL, ca->cert};
	int rc;

	rc = fl_mkdir_p(mdir, 0700, err);
	if (!rc)
		rc = fl_pki_keygen_p256(&key, err);
	if (!rc)
		rc = fl_pki_leaf_issue(ca, &pol, key, &chain[0], err);
	if (!rc)
		rc = save_pair(dir, cert_name, key_name, chain, 2, key, err);
	X509_free(chain[0]);
	EVP_PKEY_free(key);
	free(mdir);
	return rc;
}

/* ca/trust.pem: the issuing CA and the root, the anchors of verifiers
 * (OpenSSL, as mosquitto uses it, needs the self-signed root). */
static int make_trust(const char *dir, const struct fl_pki_issuer *issuing,
		      struct fl_error *err)
{
	char *root_path = fl_path_join(dir, SRV_CA_ROOT_CERT);
	char *trust_path = fl_path_join(dir, SRV_CA_TRUST);
	X509 *certs[2] = {issuing->cert, NULL};
	int rc;

	rc = fl_pki_cert_load(root_path, &certs[1], err);
	if (!rc)
		rc = fl_pki_cert_save(trust_path, certs, 2, err);
	X509_free(certs[1]);
	free(root_path);
	free(trust_path);
	return rc;
}

int srv_ca_init(const char *state_dir, const char *const *sans, size_t nsans,
		struct fl_error *err)
{
	struct fl_pki_issuer issuing = {0};
	char *ca_dir = fl_path_join(state_dir, "ca"), *crl_path;
	X509_CRL *crl = NULL;
	int rc;

	crl_path = fl_path_join(state_dir, SRV_CA_CRL);
	rc = fl_mkdir_p(ca_dir, 0700, err);
	if (!rc)
		rc = make_cas(state_dir, &issuing, err);
	if (!rc)
		rc = make_server_cert(state_dir, &issuing, sans, nsans, err);
	if (!rc)
		rc = make_mqtt_cert(state_dir, &issuing, SRV_MQTT_USER,
				    SRV_MQTT_CERT, SRV_MQTT_KEY, err);
	if (!rc)
		rc = make_trust(state_dir, &issuing, err);
	if (!rc)
		rc = fl_pki_crl_build(&issuing, NULL, 0, 1, FL_PKI_CRL_LIFETIME,
				      &crl, err);
	if (!rc)
		rc = fl_pki_crl_save(crl_path, crl, err);
	if (rc)
		fl_error_prefix(err, "creating the CA");
	X509_CRL_free(crl);
	X509_free(issuing.cert);
	EVP_PKEY_free(issuing.key);
	free(crl_path);
	free(ca_dir);
	return rc;
}

int srv_ca_reissue_server(const char *state_dir, const char *const *sans,
			  size_t nsans, struct fl_error *err)
{
	char *cert = fl_path_join(state_dir, SRV_CA_ISSUING_CERT);
	char *key = fl_path_join(state_dir, SRV_CA_ISSUING_KEY);
	struct fl_pki_issuer issuing = {0};
	int rc;

	rc = fl_pki_issuer_load(cert, key, &issuing, err);
	if (!rc)
		rc = make_server_cert(state_dir, &issuing, sans, nsans, err);
	if (rc)
		fl_error_prefix(err, "reissuing the server certificate");
	fl_pki_issuer_release(&issuing);
	free(cert);
	free(key);
	return rc;
}

int srv_ca_export_root(const char *state_dir, const char *out, bool remove,
		       struct fl_error *err)
{
	char *kp = fl_path_join(state_dir, SRV_CA_ROOT_KEY);
	char *cp = fl_path_join(state_dir, SRV_CA_ROOT_CERT);
	char *key = NULL, *cert = NULL, *both = NULL;
	int rc;

	rc = fl_path_exists(out)
		 ? fl_fail(err, FL_ECONFLICT, "'%s' already exists", out)
		 : 0;
	if (!rc)
		rc = fl_read_file(kp, FL_PKI_PEM_MAX, &key, NULL, err);
	if (rc == FL_ENOTFOUND)
		fl_error_prefix(err, "the root key is not here (exported "
				     "already?)");
	if (!rc)
		rc = fl_read_file(cp, FL_PKI_PEM_MAX, &cert, NULL, err);
	if (!rc) {
		both = fl_xasprintf("%s%s", key, cert);
		rc = fl_write_atomic_str(out, both, 0600, err);
	}
	if (!rc && remove && unlink(kp) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot remove '%s'", kp);
	if (!rc && remove)
		rc = fl_fsync_parent(kp, err);
	fl_free_secret(key);
	fl_free_secret(both);
	free(cert);
	free(kp);
	free(cp);
	return rc;
}

#ifdef FLEET_TEST_HOOKS
/* Test builds only (fleetd-test): FLEETD_FAILPOINTS=reenroll-bad-cert=ID. */
static char *failpoint_bad_cert_for(void)
{
	const char *fp = getenv("FLEETD_FAILPOINTS");

	if (fp && fl_startswith(fp, "reenroll-bad-cert="))
		return fl_xstrdup(fp + strlen("reenroll-bad-cert="));
	return NULL;
}
#else
/* Production fleetd has no failpoints: nothing in the environment can
 * make its CA sign with another key. */
static char *failpoint_bad_cert_for(void)
{
	return NULL;
}
#endif

/* The shared CRL @path, when it is not there yet: the state dir's. */
static int seed_shared_crl(const char *state_dir, const char *path,
			   struct fl_error *err)
{
	char *own = fl_path_join(state_dir, SRV_CA_CRL), *text = NULL;
	size_t len = 0;
	int rc = 0;

	if (!fl_path_exists(path)) {
		rc = fl_read_file(own, FL_PKI_CRL_FILE_MAX, &text, &len, err);
		if (!rc)
			rc = fl_write_atomic(path, text, len, 0644, err);
	}
	free(text);
	free(own);
	return rc;
}

int srv_ca_open(const char *state_dir, int64_t device_lifetime,
		const char *shared_crl, struct srv_ca **ret,
		struct fl_error *err)
{
	struct srv_ca *ca = fl_xcalloc(1, sizeof(*ca));
	char *cert = fl_path_join(state_dir, SRV_CA_ISSUING_CERT);
	char *key = fl_path_join(state_dir, SRV_CA_ISSUING_KEY);
	char *trust = fl_path_join(state_dir, SRV_CA_TRUST);
	char *root = fl_path_join(state_dir, SRV_CA_FILE);
	int rc;

	pthread_mutex_init(&ca->crl_lock, NULL);
	ca->device_lifetime = device_lifetime;
	ca->crl_path = shared_crl ? fl_xstrdup(shared_crl)
				  : fl_path_join(state_dir, SRV_CA_CRL);
	ca->bad_cert_for = failpoint_bad_cert_for();
	rc = shared_crl ? seed_shared_crl(state_dir, shared_crl, err) : 0;
	if (!rc)
		rc = fl_pki_issuer_load(cert, key, &ca->issuing, err);
	if (!rc)
		rc = fl_read_file(root, FL_PKI_PEM_MAX, &ca->root_pem, NULL,
				  err);
	if (!rc)
		rc = fl_read_file(cert, FL_PKI_PEM_MAX, &ca->chain_pem, NULL,
				  err);
	if (!rc)
		rc = fl_pki_verifier_new(trust, ca->crl_path, &ca->verifier,
					 err);
	if (rc) {
		fl_error_prefix(err, "loading the CA");
		srv_ca_close(ca);
	} else {
		*ret = ca;
	}
	free(cert);
	free(key);
	free(trust);
	free(root);
	return rc;
}

void srv_ca_close(struct srv_ca *ca)
{
	if (!ca)
		return;
	fl_pki_issuer_release(&ca->issuing);
	fl_pki_verifier_free(ca->verifier);
	pthread_mutex_destroy(&ca->crl_lock);
	free(ca->root_pem);
	free(ca->chain_pem);
	free(ca->crl_path);
	free(ca->bad_cert_for);
	free(ca);
}

void srv_issued_release(struct srv_issued *iss)
{
	json_decref(iss->json);
	iss->json = NULL;
}

#ifdef FLEET_TEST_HOOKS
/* The failpoint's throwaway issuer: a fresh root nobody trusts. */
static int rogue_issuer(struct fl_pki_issuer *ret, struct fl_error *err)
{
	int rc = fl_pki_keygen_p256(&ret->key, err);

	if (!rc)
		rc = fl_pki_root_create(ret->key, "Rogue CA", 3600, &ret->cert,
					err);
	return rc;
}
#endif

static int describe(X509 *cert, const char *id, const struct srv_ca *ca,
		    struct srv_issued *ret, struct fl_error *err)
{
	struct fl_pki_cert_info info;
	char expires[21], *pem = NULL;
	int rc;

	rc = fl_pki_cert_info(cert, &info, err);
	if (!rc)
		rc = fl_pki_cert_to_pem(cert, &pem, err);
	if (rc)
		return rc;
	fl_strlcpy(ret->serial, info.serial, sizeof(ret->serial));
	fl_strlcpy(ret->sha256, info.sha256, sizeof(ret->sha256));
	ret->not_before = info.not_before;
	ret->not_after = info.not_after;
	fl_time_rfc3339(info.not_after, expires);
	ret->json =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "cert", pem,
		      "chain", ca->chain_pem, "ca", ca->root_pem, "serial",
		      info.serial, "expires", expires);
	free(pem);
	return 0;
}

int srv_ca_issue_device(struct srv_ca *ca, const char *csr_pem, size_t len,
			const char *id, bool reenroll, struct srv_issued *ret,
			struct fl_error *err)
{
	struct fl_pki_policy pol = {
	    .kind = FL_PKI_CLIENT, .cn = id, .lifetime_s = ca->device_lifetime};
	struct fl_pki_issuer rogue = {0};
	const struct fl_pki_issuer *issuer = &ca->issuing;
	char cn[FL_PKI_CN_MAX + 1];
	EVP_PKEY *pub = NULL;
	X509 *cert = NULL;
	int rc;

	rc = fl_pki_csr_parse(csr_pem, len, id, FL_PKI_CSR_DEVICE_ID, cn, &pub,
			      err);
#ifdef FLEET_TEST_HOOKS
	if (!rc && reenroll && fl_streq(ca->bad_cert_for, id)) {
		rc = rogue_issuer(&rogue, err);
		issuer = &rogue;
	}
#endif
	if (!rc)
		rc = fl_pki_leaf_issue(issuer, &pol, pub, &cert, err);
	if (!rc)
		rc = describe(cert, id, ca, ret, err);
	if (!rc && issuer != &ca->issuing)
		ret->sha256[0] = '\0';
	X509_free(cert);
	EVP_PKEY_free(pub);
	X509_free(rogue.cert);
	EVP_PKEY_free(rogue.key);
	return rc;
}

int srv_ca_issue_tech(struct srv_ca *ca, const char *csr_pem, size_t len,
		      const char *cn, int64_t lifetime_s,
		      struct srv_issued *ret, struct fl_error *err)
{
	struct fl_pki_policy pol = {
	    .kind = FL_PKI_CLIENT, .cn = cn, .lifetime_s = lifetime_s};
	char got[FL_PKI_CN_MAX + 1];
	EVP_PKEY *pub = NULL;
	X509 *cert = NULL;
	int rc;

	rc = fl_pki_csr_parse(csr_pem, len, cn, FL_PKI_CSR_DEVICE_ID, got, &pub,
			      err);
	if (!rc)
		rc = fl_pki_leaf_issue(&ca->issuing, &pol, pub, &cert, err);
	if (!rc)
		rc = describe(cert, cn, ca, ret, err);
	X509_free(cert);
	EVP_PKEY_free(pub);
	return rc;
}

/* The store's entries as fl_pki_revoked ones (borrowing the serials). */
static struct fl_pki_revoked *revoked_list(const struct srv_crl_list *l)
{
	struct fl_pki_revoked *list = fl_xcalloc(l->n + 1, sizeof(*list));

	for (size_t i = 0; i < l->n; i++) {
		list[i].serial = l->v[i].serial;
		list[i].when = (time_t)l->v[i].revoked;
	}
	return list;
}

/* The store's CRL hook: build, sign and write the CRL of @entries and
 * reload the verifier, all before the store commits. */
static int publish_hook(void *ctx, const struct srv_crl_list *entries,
			uint64_t number, struct fl_error *err)
{
	struct srv_ca *ca = ctx;
	struct fl_pki_revoked *list = revoked_list(entries);
	X509_CRL *crl = NULL;
	int rc;

	pthread_mutex_lock(&ca->crl_lock);
	rc = fl_pki_crl_build(&ca->issuing, list, entries->n, number,
			      FL_PKI_CRL_LIFETIME, &crl, err);
	if (!rc)
		rc = fl_pki_crl_save(ca->crl_path, crl, err);
	if (!rc)
		rc = fl_pki_verifier_reload(ca->verifier, err);
	pthread_mutex_unlock(&ca->crl_lock);
	if (rc)
		fl_error_prefix(err, "publishing the CRL");
	X509_CRL_free(crl);
	free(list);
	return rc;
}

struct srv_crl_hook srv_ca_crl_hook(struct srv_ca *ca)
{
	return (struct srv_crl_hook){publish_hook, ca};
}

int srv_ca_publish_crl(struct srv_ca *ca, struct srv_store *store,
		       struct fl_error *err)
{
	struct srv_crl_hook hook = srv_ca_crl_hook(ca);

	return srv_store_crl_publish(store, &hook, err);
}

int srv_ca_mqtt_identity(const struct srv_ca *ca, const char *state_dir,
			 const char *cn, char **ret_cert, char **ret_key,
			 struct fl_error *err)
{
	char *cert = fl_xasprintf("mqtt/%s.pem", cn);
	char *key = fl_xasprintf("mqtt/%s.key", cn);
	char *path = fl_path_join(state_dir, cert);
	int rc = 0;

	if (!fl_path_exists(path))
		rc =
		    make_mqtt_cert(state_dir, &ca->issuing, cn, cert, key, err);
	free(path);
	if (rc) {
		free(cert);
		free(key);
		return rc;
	}
	*ret_cert = cert;
	*ret_key = key;
	return 0;
}
