/* SPDX-License-Identifier: MIT */
/*
 * agent/tlsid: a device identity is decoded once and its client TLS
 * context made once while the files are unchanged, both are made again
 * after a replacement by rename, a key of another certificate is
 * refused, and the context verifies the server for the host it was made
 * for (a handshake in memory against a server that requires a client
 * certificate).
 */
#include "pki_fixture.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tlsid.h"

struct files {
	char *ca, *cert, *key;
};

/* A client key and certificate in @c's dir under @tag (written by
 * rename, as the agent does). */
static struct files client_files(struct ctx *c, const char *tag)
{
	struct files f = {c->ca_pem,
			  fl_xasprintf("%s/%s-cert.pem", c->dir, tag),
			  fl_xasprintf("%s/%s-key.pem", c->dir, tag)};
	struct fl_error err = {0};
	EVP_PKEY *k = NULL;
	X509 *cert;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	cert = leaf(c, FL_PKI_CLIENT, "dev-1", 3600, k);
	save_cert(f.cert, cert);
	assert_int_equal(fl_pki_key_save(f.key, k, &err), 0);
	X509_free(cert);
	EVP_PKEY_free(k);
	return f;
}

static void files_free(struct files *f)
{
	free(f->cert);
	free(f->key);
}

static void test_pair_cached_until_replaced(void **state)
{
	struct ctx *c = *state;
	struct files f = client_files(c, "a");
	struct agent_tlsid_stats s0, s1;
	struct fl_error err = {0};
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	X509 *c1 = NULL, *c2 = NULL;

	agent_tlsid_stats(&s0);
	assert_int_equal(agent_tlsid_pair(f.cert, f.key, &k1, &c1, &err), 0);
	assert_int_equal(agent_tlsid_pair(f.cert, f.key, &k2, &c2, &err), 0);
	agent_tlsid_stats(&s1);
	assert_int_equal(s1.decodes - s0.decodes, 1);
	assert_ptr_equal(k1, k2);
	assert_ptr_equal(c1, c2);
	EVP_PKEY_free(k2);
	X509_free(c2);

	files_free(&f);
	f = client_files(c, "a"); /* a new identity under the same names */
	assert_int_equal(agent_tlsid_pair(f.cert, f.key, &k2, &c2, &err), 0);
	agent_tlsid_stats(&s1);
	assert_int_equal(s1.decodes - s0.decodes, 2);
	assert_ptr_not_equal(k1, k2);
	assert_int_equal(fl_pki_key_matches_cert(k2, c2, &err), 0);
	assert_int_equal(fl_pki_key_matches_cert(k1, c2, NULL), FL_EVERIFY);
	EVP_PKEY_free(k1);
	X509_free(c1);
	EVP_PKEY_free(k2);
	X509_free(c2);
	assert_int_equal(
	    agent_tlsid_pair(f.cert, "/nonexistent/k", &k1, &c1, NULL),
	    FL_ENOTFOUND);
	files_free(&f);
}

static void test_ctx_cached_and_checked(void **state)
{
	struct ctx *c = *state;
	struct files f = client_files(c, "b"), g = client_files(c, "c");
	struct agent_tlsid_stats s0, s1;
	struct fl_error err = {0};
	SSL_CTX *x1 = NULL, *x2 = NULL;

	agent_tlsid_stats(&s0);
	assert_int_equal(
	    agent_tlsid_client_ctx(f.ca, f.cert, f.key, "127.0.0.1", &x1, &err),
	    0);
	assert_int_equal(
	    agent_tlsid_client_ctx(f.ca, f.cert, f.key, "127.0.0.1", &x2, &err),
	    0);
	agent_tlsid_stats(&s1);
	assert_int_equal(s1.contexts - s0.contexts, 1);
	assert_ptr_equal(x1, x2);
	SSL_CTX_free(x2);
	/* another host: another context */
	assert_int_equal(
	    agent_tlsid_client_ctx(f.ca, f.cert, f.key, "localhost", &x2, &err),
	    0);
	assert_ptr_not_equal(x1, x2);
	SSL_CTX_free(x1);
	SSL_CTX_free(x2);
	/* b's certificate with c's key */
	assert_int_equal(
	    agent_tlsid_client_ctx(f.ca, f.cert, g.key, "localhost", &x1, NULL),
	    FL_EVERIFY);
	files_free(&f);
	files_free(&g);
}

/* Run a handshake between @cli and @srv in memory; true when both
 * ends finished it. */
static bool handshake(SSL *cli, SSL *srv)
{
	BIO *a = NULL, *b = NULL;
	int rc_c = 0, rc_s = 0;

	assert_int_equal(BIO_new_bio_pair(&a, 0, &b, 0), 1);
	SSL_set_bio(cli, a, a);
	SSL_set_bio(srv, b, b);
	SSL_set_connect_state(cli);
	SSL_set_accept_state(srv);
	for (int i = 0; i < 20 && (rc_c != 1 || rc_s != 1); i++) {
		if (rc_c != 1 && (rc_c = SSL_do_handshake(cli)) <= 0 &&
		    SSL_get_error(cli, rc_c) != SSL_ERROR_WANT_READ)
			break;
		if (rc_s != 1 && (rc_s = SSL_do_handshake(srv)) <= 0 &&
		    SSL_get_error(srv, rc_s) != SSL_ERROR_WANT_READ)
			break;
	}
	ERR_clear_error();
	return rc_c == 1 && rc_s == 1;
}

/* A server for "localhost" and 127.0.0.1 that requires a client
 * certificate from the issuing CA. */
static SSL_CTX *server_ctx(struct ctx *c)
{
	struct fl_error err = {0};
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *k = NULL;
	X509 *cert;

	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	cert = leaf(c, FL_PKI_SERVER, "fleet", 3600, k);
	assert_int_equal(SSL_CTX_use_certificate(s, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s, k), 1);
	assert_int_equal(SSL_CTX_load_verify_file(s, c->ca_pem), 1);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	X509_free(cert);
	EVP_PKEY_free(k);
	return s;
}

static bool connects(struct ctx *c, SSL_CTX *srv, const struct files *f,
		     const char *host)
{
	struct fl_error err = {0};
	SSL_CTX *cli = NULL;
	SSL *a, *b;
	bool ok;

	assert_int_equal(
	    agent_tlsid_client_ctx(f->ca, f->cert, f->key, host, &cli, &err),
	    0);
	a = SSL_new(cli);
	b = SSL_new(srv);
	ok = handshake(a, b);
	if (ok) /* the server saw the device's certificate */
		assert_non_null(SSL_get0_peer_certificate(b));
	SSL_free(a);
	SSL_free(b);
	SSL_CTX_free(cli);
	return ok;
}

/* The root certificate of another CA, in a file. */
static char *other_root(struct ctx *c)
{
	char *p = path(c, "other-root.pem");
	EVP_PKEY *rk, *ik;
	X509 *root, *iss;

	make_ca(&rk, &root, &ik, &iss);
	save_cert(p, root);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	X509_free(root);
	X509_free(iss);
	return p;
}

static void test_ctx_verifies_the_server(void **state)
{
	struct ctx *c = *state;
	struct files f = client_files(c, "d");
	SSL_CTX *srv = server_ctx(c);

	assert_true(connects(c, srv, &f, "127.0.0.1"));
	assert_true(connects(c, srv, &f, "localhost"));
	assert_false(connects(c, srv, &f, "127.0.0.2"));
	assert_false(connects(c, srv, &f, "fleet.invalid"));
	f.ca = other_root(c); /* not the anchor of the server */
	assert_false(connects(c, srv, &f, "localhost"));
	SSL_CTX_free(srv);
	free(f.ca);
	files_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pair_cached_until_replaced,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctx_cached_and_checked, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_ctx_verifies_the_server, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
