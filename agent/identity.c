/* SPDX-License-Identifier: MIT */
/*
 * The device identity: key and CSR generation, checking what fleetd
 * sends back, the staged-then-committed file swap with its crash
 * recovery, the renewal time, and the enroll / reenroll / confirm calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "http.h"
#include "identity.h"
#include "json.h"
#include "tlsid.h"
#include "util.h"
#include "validate.h"

static const char *const id_files[] = {AGENT_KEY_FILE, AGENT_CERT_FILE,
				       AGENT_CHAIN_FILE, AGENT_CA_FILE};

static char *file_path(const char *dir, const char *name, bool staged)
{
	return staged ? fl_xasprintf("%s/%s" AGENT_NEW_SUFFIX, dir, name)
		      : fl_path_join(dir, name);
}

void agent_identity_paths(const char *state_dir, bool staged,
			  struct agent_identity_paths *ret)
{
	ret->key = file_path(state_dir, AGENT_KEY_FILE, staged);
	ret->cert = file_path(state_dir, AGENT_CERT_FILE, staged);
	ret->chain = file_path(state_dir, AGENT_CHAIN_FILE, staged);
	ret->ca = file_path(state_dir, AGENT_CA_FILE, staged);
}

void agent_identity_paths_release(struct agent_identity_paths *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->cert);
	free(p->chain);
	free(p->ca);
	*p = (struct agent_identity_paths){0};
}

/* 0 when @key belongs to @cert and @cert's CN is @id; fills *@ret. */
static int check_pair(EVP_PKEY *key, X509 *cert, const char *id,
		      struct fl_pki_cert_info *ret, struct fl_error *err)
{
	struct fl_pki_cert_info info;
	int rc;

	if (!fl_pki_key_is_p256(key))
		return fl_fail(err, FL_EVERIFY, "device key is not P-256");
	rc = fl_pki_key_matches_cert(key, cert, err);
	if (rc)
		return fl_fail(err, FL_EVERIFY,
			       "certificate does not belong to the key");
	rc = fl_pki_cert_info(cert, &info, err);
	if (rc)
		return rc;
	if (!fl_streq(info.cn, id))
		return fl_fail(err, FL_EVERIFY,
			       "certificate is for '%s', not '%s'", info.cn,
			       id);
	if (ret)
		*ret = info;
	return 0;
}

int agent_identity_check(const char *state_dir, const char *id,
			 struct fl_pki_cert_info *ret, struct fl_error *err)
{
	struct agent_identity_paths p;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc;

	agent_identity_paths(state_dir, false, &p);
	rc = agent_tlsid_pair(p.cert, p.key, &key, &cert, err);
	if (!rc)
		rc = check_pair(key, cert, id, ret, err);
	if (rc == FL_ENOTFOUND)
		fl_error_prefix(err, "not enrolled");
	EVP_PKEY_free(key);
	X509_free(cert);
	agent_identity_paths_release(&p);
	return rc;
}

void agent_identity_discard(const char *state_dir)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(id_files); i++) {
		char *p = file_path(state_dir, id_files[i], true);

		unlink(p);
		free(p);
	}
}

int agent_identity_stage_key(const char *state_dir, const char *id,
			     char **ret_csr, struct fl_error *err)
{
	EVP_PKEY *key = NULL;
	char *path = file_path(state_dir, AGENT_KEY_FILE, true);
	int rc;

	agent_identity_discard(state_dir);
	rc = fl_check_id(id, "device id", err);
	if (!rc)
		rc = fl_pki_keygen_p256(&key, err);
	if (!rc)
		rc = fl_pki_key_save(path, key, err);
	if (!rc)
		rc = fl_pki_csr_create(key, id, ret_csr, err);
	if (rc)
		unlink(path);
	EVP_PKEY_free(key);
	free(path);
	return rc;
}

/*
 * Verify @cert for client use at the current time, with @chain as
 * untrusted intermediates, up to an anchor in @anchors (strict X.509).
 */
static int verify_chain(X509 *cert, STACK_OF(X509) *chain,
			STACK_OF(X509) *anchors, struct fl_error *err)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = 0, verr;

	if (!store || !ctx ||
	    !X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot set up verification");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(anchors); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(anchors, i))) {
			rc = fl_fail_ssl(err, FL_ERR, "cannot add a CA");
			goto out;
		}
	if (!X509_STORE_CTX_init(ctx, store, cert, chain) ||
	    !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
		rc = fl_fail_ssl(err, FL_ERR, "cannot set up verification");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		verr = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		rc = fl_fail(err, FL_EVERIFY, "new certificate rejected: %s",
			     X509_verify_cert_error_string(verr));
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

struct staged_cert {
	X509 *cert;
	STACK_OF(X509) *chain, *anchors;
	EVP_PKEY *key;
};

static void staged_cert_release(struct staged_cert *s)
{
	X509_free(s->cert);
	fl_pki_chain_free(s->chain);
	fl_pki_chain_free(s->anchors);
	EVP_PKEY_free(s->key);
}

/* Decode the answer's PEM fields (capped) and the files to check with. */
static int load_answer(const char *state_dir, const char *ca_file,
		       const json_t *resp, struct staged_cert *s,
		       struct fl_error *err)
{
	const char *cert_pem, *chain_pem;
	char *key_path = file_path(state_dir, AGENT_KEY_FILE, true);
	int rc;

	rc = fl_json_require_object(resp, "enrolment answer", err);
	if (!rc)
		rc = fl_json_str(resp, "cert", FL_PKI_PEM_MAX, &cert_pem, err);
	if (!rc)
		rc = fl_json_str(resp, "chain", FL_PKI_PEM_MAX, &chain_pem,
				 err);
	if (!rc)
		rc = fl_pki_cert_from_pem(cert_pem, strlen(cert_pem), &s->cert,
					  err);
	if (!rc)
		rc = fl_pki_chain_from_pem(chain_pem, strlen(chain_pem),
					   &s->chain, err);
	if (rc && rc != FL_ELIMIT)
		rc = FL_EPARSE;
	if (!rc)
		rc = fl_pki_chain_load(ca_file, &s->anchors, err);
	if (!rc)
		rc = fl_pki_key_load(key_path, &s->key, err);
	free(key_path);
	return rc;
}

/* Write cert.pem.new (leaf) and chain.pem.new (the intermediates). */
static int save_staged(const char *state_dir, struct staged_cert *s,
		       struct fl_error *err)
{
	char *cp = file_path(state_dir, AGENT_CERT_FILE, true);
	char *chp = file_path(state_dir, AGENT_CHAIN_FILE, true);
	X509 *certs[FL_PKI_CHAIN_MAX];
	size_t n = (size_t)sk_X509_num(s->chain);
	int rc;

	for (size_t i = 0; i < n; i++)
		certs[i] = sk_X509_value(s->chain, (int)i);
	rc = fl_pki_cert_save(cp, &s->cert, 1, err);
	if (!rc)
		rc = fl_pki_cert_save(chp, certs, n, err);
	free(cp);
	free(chp);
	return rc;
}

int agent_identity_stage_cert(const char *state_dir, const char *id,
			      const char *ca_file, const json_t *resp,
			      struct fl_pki_cert_info *ret,
			      struct fl_error *err)
{
	struct staged_cert s = {0};
	struct fl_pki_cert_info info;
	int rc;

	rc = load_answer(state_dir, ca_file, resp, &s, err);
	if (!rc)
		rc = verify_chain(s.cert, s.chain, s.anchors, err);
	if (!rc)
		rc = check_pair(s.key, s.cert, id, &info, err);
	if (!rc)
		rc = save_staged(state_dir, &s, err);
	if (!rc && ret)
		*ret = info;
	staged_cert_release(&s);
	return rc;
}

int agent_identity_stage_ca(const char *state_dir, const char *ca_file,
			    struct fl_error *err)
{
	STACK_OF(X509) *cas = NULL;
	X509 *certs[FL_PKI_CHAIN_MAX];
	char *path = file_path(state_dir, AGENT_CA_FILE, true);
	size_t n;
	int rc;

	rc = fl_pki_chain_load(ca_file, &cas, err);
	if (!rc) {
		n = (size_t)sk_X509_num(cas);
		for (size_t i = 0; i < n; i++)
			certs[i] = sk_X509_value(cas, (int)i);
		rc = fl_pki_cert_save(path, certs, n, err);
	}
	fl_pki_chain_free(cas);
	free(path);
	return rc;
}

/* Rename every staged file over its current name; sync the directory. */
static int roll_forward(const char *state_dir, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < FL_ARRAY_SIZE(id_files); i++) {
		char *from = file_path(state_dir, id_files[i], true);
		char *to = file_path(state_dir, id_files[i], false);

		if (rename(from, to) < 0 && errno != ENOENT)
			rc = fl_fail_errno(err, FL_EIO, "cannot rename '%s'",
					   from);
		free(from);
		free(to);
	}
	return rc ? rc : fl_fsync_parent(state_dir, err);
}

int agent_identity_commit(const char *state_dir, struct fl_error *err)
{
	char *marker = fl_path_join(state_dir, AGENT_COMMIT_FILE);
	char *key = file_path(state_dir, AGENT_KEY_FILE, true);
	char *cert = file_path(state_dir, AGENT_CERT_FILE, true);
	int rc = 0;

	if (!fl_path_exists(key) || !fl_path_exists(cert)) {
		rc = fl_fail(err, FL_ENOTFOUND, "no new identity is staged");
		goto out;
	}
	rc = fl_write_atomic_str(marker, "commit\n", 0600, err);
	if (!rc)
		rc = roll_forward(state_dir, err);
	if (!rc && unlink(marker) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot remove '%s'", marker);
	if (!rc)
		rc = fl_fsync_parent(state_dir, err);
out:
	free(marker);
	free(key);
	free(cert);
	return rc;
}

int agent_identity_recover(const char *state_dir, bool *ret_rolled_forward,
			   struct fl_error *err)
{
	char *marker = fl_path_join(state_dir, AGENT_COMMIT_FILE);
	bool forward = fl_path_exists(marker);
	int rc = 0;

	if (forward) {
		rc = roll_forward(state_dir, err);
		if (!rc && unlink(marker) < 0)
			rc = fl_fail_errno(err, FL_EIO, "cannot remove '%s'",
					   marker);
	} else {
		agent_identity_discard(state_dir);
	}
	if (!rc && ret_rolled_forward)
		*ret_rolled_forward = forward;
	free(marker);
	return rc;
}

time_t agent_identity_renew_at(time_t not_before, time_t not_after,
			       uint32_t rnd)
{
	int64_t life = (int64_t)not_after - (int64_t)not_before;
	int64_t offset, jitter;

	if (life <= 0)
		return not_before;
	offset = life / 3 * 2 + (life % 3) * 2 / 3;
	jitter = offset / 10;
	/* rnd spread over [-jitter, +jitter] */
	offset += (int64_t)((double)rnd / UINT32_MAX * (double)(2 * jitter)) -
		  jitter;
	return (time_t)((int64_t)not_before + offset);
}

/* An HTTPS client for @t, with the identity files @key/@cert or none. */
static int http_open(const struct agent_http_target *t, const char *cert,
		     const char *key, struct fl_http **ret,
		     struct fl_error *err)
{
	struct fl_http_opts o = {
		.base_url = t->server_url,
		.ca_file = t->ca_file,
		.cert_file = cert,
		.key_file = key,
		.timeout_ms = t->timeout_ms,
		.max_response = 256 * 1024,
	};

	return fl_http_new(&o, ret, err);
}

/* Stage key + CSR, send it in @body to @path, stage the answer. */
static int request_cert(struct fl_http *h, const char *path, json_t *body,
			const char *state_dir, const char *id,
			const char *ca_file, json_t **ret_resp,
			struct fl_pki_cert_info *ret_info, struct fl_error *err)
{
	json_t *resp = NULL;
	char *csr = NULL;
	int rc;

	rc = agent_identity_stage_key(state_dir, id, &csr, err);
	if (rc)
		return rc;
	json_object_set_new(body, "csr", json_string(csr));
	rc = fl_http_json(h, "POST", path, body, &resp, err);
	if (!rc)
		rc = agent_identity_stage_cert(state_dir, id, ca_file, resp,
					       ret_info, err);
	if (!rc && ret_resp) {
		*ret_resp = resp;
		resp = NULL;
	}
	json_decref(resp);
	free(csr);
	return rc;
}

static int enroll_checks(const char *state_dir, const char *id,
			 const char *token, struct fl_error *err)
{
	char *cert = file_path(state_dir, AGENT_CERT_FILE, false);
	bool enrolled = fl_path_exists(cert);
	int rc;

	free(cert);
	rc = fl_check_id(id, "device id", err);
	if (rc)
		return rc;
	if (!token || !*token || strlen(token) > 1024)
		return fl_fail(err, FL_EINVAL, "missing or over-long token");
	if (enrolled)
		return fl_fail(err, FL_ECONFLICT,
			       "'%s' already holds an identity (cert.pem); "
			       "rotate instead of enrolling again",
			       state_dir);
	rc = fl_mkdir_p(state_dir, 0700, err);
	if (!rc && chmod(state_dir, 0700) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot chmod '%s'",
				   state_dir);
	if (!rc)
		rc = agent_identity_recover(state_dir, NULL, err);
	return rc;
}

/* Overwrite the token's copy inside a request body before it is freed. */
static void wipe_token(json_t *body)
{
	const char *t = json_string_value(json_object_get(body, "token"));

	if (t)
		OPENSSL_cleanse((char *)t, strlen(t));
}

int agent_enroll(const struct agent_http_target *t, const char *state_dir,
		 const char *id, const char *token, json_t **ret_resp,
		 struct fl_error *err)
{
	struct fl_http *h = NULL;
	json_t *body = NULL, *resp = NULL;
	int rc;

	rc = enroll_checks(state_dir, id, token, err);
	if (!rc)
		rc = http_open(t, NULL, NULL, &h, err);
	if (rc)
		goto out;
	body = json_pack("{s:s, s:s}", "token", token, "id", id);
	rc = request_cert(h, "/api/v1/enroll", body, state_dir, id, t->ca_file,
			  &resp, NULL, err);
	if (!rc)
		rc = agent_identity_stage_ca(state_dir, t->ca_file, err);
	if (!rc)
		rc = agent_identity_commit(state_dir, err);
	if (rc) {
		agent_identity_discard(state_dir);
		goto out;
	}
	if (ret_resp) {
		*ret_resp = resp;
		resp = NULL;
	}
out:
	json_decref(resp);
	wipe_token(body);
	json_decref(body);
	fl_http_free(h);
	return rc;
}

int agent_reenroll(const struct agent_http_target *t, const char *state_dir,
		   const char *id, struct fl_pki_cert_info *ret,
		   struct fl_error *err)
{
	struct agent_identity_paths cur;
	struct fl_http *h = NULL;
	json_t *body = json_object();
	int rc;

	agent_identity_paths(state_dir, false, &cur);
	rc = http_open(t, cur.cert, cur.key, &h, err);
	if (!rc)
		rc = request_cert(h, "/api/v1/reenroll", body, state_dir, id,
				  t->ca_file, NULL, ret, err);
	if (rc)
		agent_identity_discard(state_dir);
	json_decref(body);
	fl_http_free(h);
	agent_identity_paths_release(&cur);
	return rc;
}

int agent_reenroll_confirm(const struct agent_http_target *t,
			   const char *state_dir, struct fl_error *err)
{
	struct agent_identity_paths cur;
	struct fl_http *h = NULL;
	json_t *body = json_object(), *resp = NULL;
	int rc;

	agent_identity_paths(state_dir, false, &cur);
	rc = http_open(t, cur.cert, cur.key, &h, err);
	if (!rc)
		rc = fl_http_json(h, "POST", "/api/v1/reenroll/confirm", body,
				  &resp, err);
	json_decref(resp);
	json_decref(body);
	fl_http_free(h);
	agent_identity_paths_release(&cur);
	return rc;
}
