/* SPDX-License-Identifier: MIT */
/*
 * Shared fixture for test_pki.c and test_pki_verify.c: a root and an
 * issuing CA made with the library under test, saved in a temp dir, and
 * helpers to run the openssl tool.  Included by test files only.
 */
#ifndef FL_TEST_PKI_FIXTURE_H
#define FL_TEST_PKI_FIXTURE_H

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "pki.h"
#include "util.h"

#define FIXTURE static __attribute__((unused))

struct ctx {
	char dir[64];
	EVP_PKEY *root_key, *iss_key;
	X509 *root, *iss;
	struct fl_pki_issuer root_ca, iss_ca;
	char *root_pem, *iss_pem, *ca_pem, *iss_key_pem;
};

FIXTURE char *path(struct ctx *c, const char *name)
{
	return fl_path_join(c->dir, name);
}

/* Run a command quietly; its exit status, or -1. */
FIXTURE int run(const char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) ||
		    !freopen("/dev/null", "w", stderr))
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* First line of a command's stdout (command built by the test only). */
FIXTURE void capture(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(out, (int)size, p));
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(pclose(p), 0);
}

FIXTURE void save_cert(const char *file, X509 *cert)
{
	struct fl_error err = {0};

	assert_int_equal(fl_pki_cert_save(file, &cert, 1, &err), 0);
}

FIXTURE void make_ca(EVP_PKEY **rk, X509 **root, EVP_PKEY **ik, X509 **iss)
{
	struct fl_error err = {0};
	struct fl_pki_issuer r;

	assert_int_equal(fl_pki_keygen_p256(rk, &err), 0);
	assert_int_equal(
	    fl_pki_root_create(*rk, "Test Root", FL_PKI_DAY * 365, root, &err),
	    0);
	assert_int_equal(fl_pki_keygen_p256(ik, &err), 0);
	r.cert = *root;
	r.key = *rk;
	assert_int_equal(fl_pki_issuing_create(&r, *ik, "Test Issuing",
					       FL_PKI_DAY * 30, iss, &err),
			 0);
}

FIXTURE int setup(void **state)
{
	struct ctx *c = fl_xcalloc(1, sizeof(*c));
	X509 *both[2];
	struct fl_error err = {0};

	fl_strlcpy(c->dir, "/tmp/fleet-pki-XXXXXX", sizeof(c->dir));
	assert_non_null(mkdtemp(c->dir));
	make_ca(&c->root_key, &c->root, &c->iss_key, &c->iss);
	c->root_ca = (struct fl_pki_issuer){c->root, c->root_key};
	c->iss_ca = (struct fl_pki_issuer){c->iss, c->iss_key};
	c->root_pem = path(c, "root.pem");
	c->iss_pem = path(c, "issuing.pem");
	c->ca_pem = path(c, "ca.pem");
	c->iss_key_pem = path(c, "issuing.key");
	save_cert(c->root_pem, c->root);
	save_cert(c->iss_pem, c->iss);
	both[0] = c->iss;
	both[1] = c->root;
	assert_int_equal(fl_pki_cert_save(c->ca_pem, both, 2, &err), 0);
	assert_int_equal(fl_pki_key_save(c->iss_key_pem, c->iss_key, &err), 0);
	*state = c;
	return 0;
}

FIXTURE int rm_one(const char *p, const struct stat *st, int type,
		   struct FTW *ftw)
{
	return remove(p);
}

FIXTURE int teardown(void **state)
{
	struct ctx *c = *state;

	nftw(c->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	X509_free(c->root);
	X509_free(c->iss);
	EVP_PKEY_free(c->root_key);
	EVP_PKEY_free(c->iss_key);
	free(c->root_pem);
	free(c->iss_pem);
	free(c->ca_pem);
	free(c->iss_key_pem);
	free(c);
	return 0;
}

/* A P-256 leaf of @kind for a fresh key (or @key when given). */
FIXTURE X509 *leaf(struct ctx *c, enum fl_pki_kind kind, const char *cn,
		   int64_t life, EVP_PKEY *key)
{
	static const char *const dns[] = {"localhost", "fleet.example"};
	static const char *const ips[] = {"127.0.0.1", "::1"};
	struct fl_pki_policy pol = {kind, cn, dns, 2, ips, 2, life};
	struct fl_error err = {0};
	EVP_PKEY *k = key;
	X509 *cert = NULL;

	if (kind == FL_PKI_CLIENT)
		pol.n_dns = pol.n_ips = 0;
	if (!k)
		assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_int_equal(fl_pki_leaf_issue(&c->iss_ca, &pol, k, &cert, &err),
			 0);
	if (!key)
		EVP_PKEY_free(k);
	return cert;
}

FIXTURE EVP_PKEY *keygen(const char *type, const char *curve)
{
	EVP_PKEY *k;

	if (curve)
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, curve);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)1024);
	assert_non_null(k);
	return k;
}

#endif
