/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "fsutil.h"
#include "pki.h"
#include "srv.h"
#include "util.h"

#define MAX_SANS 24

/* Split @sans into DNS names and IP literals, after the defaults. */
static int split_sans(const char *const *sans, size_t nsans,
		      const char **dns, size_t *ndns, const char **ips,
		      size_t *nips, struct fl_error *err)
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
	char *cp = fl_path_join(dir, cert_name), *kp = fl_path_join(dir, key_name);
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
		rc = fl_pki_issuing_create(&root, issuing->key,
					   "Fleet Issuing CA",
					   FL_PKI_ISSUING_LIFETIME,
					   &issuing->cert, err);
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
