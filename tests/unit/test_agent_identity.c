/* SPDX-License-Identifier: MIT */
/*
 * agent/identity: key and CSR staging (mode, CN), checking fleetd's
 * answer (chain to the pinned root, key, CN, purpose, malformed and
 * oversized fields), the commit and its crash recovery in both
 * directions, the identity check, the renewal time, and enrolment
 * refusals that need no server.
 */
#include "pki_fixture.h"

#include <jansson.h>

#include "identity.h"

#define ID "dev-7"

static char *state_dir(struct ctx *c)
{
	char *d = path(c, "state");
	struct fl_error err = {0};

	assert_int_equal(fl_mkdir_p(d, 0700, &err), 0);
	return d;
}

static char *pem_of(X509 *cert)
{
	struct fl_error err = {0};
	char *pem = NULL;

	assert_int_equal(fl_pki_cert_to_pem(cert, &pem, &err), 0);
	return pem;
}

static EVP_PKEY *staged_key(const char *dir)
{
	char *p = fl_xasprintf("%s/key.pem.new", dir);
	struct fl_error err = {0};
	EVP_PKEY *k = NULL;

	assert_int_equal(fl_pki_key_load(p, &k, &err), 0);
	free(p);
	return k;
}

/* fleetd's answer: a leaf for @key (CN @cn) from @ca plus its chain. */
static json_t *answer(struct ctx *c, const struct fl_pki_issuer *ca,
		      enum fl_pki_kind kind, const char *cn, EVP_PKEY *key)
{
	struct fl_pki_policy pol = {kind, cn, NULL, 0, NULL, 0, 3600};
	static const char *const dns[] = {"localhost"};
	struct fl_error err = {0};
	X509 *cert = NULL;
	char *leaf, *chain;
	json_t *j;

	if (kind == FL_PKI_SERVER) {
		pol.dns = dns;
		pol.n_dns = 1;
	}
	assert_int_equal(fl_pki_leaf_issue(ca, &pol, key, &cert, &err), 0);
	leaf = pem_of(cert);
	chain = pem_of(c->iss);
	j = json_pack("{s:s, s:s}", "cert", leaf, "chain", chain);
	free(leaf);
	free(chain);
	X509_free(cert);
	return j;
}

static int stage_answer(struct ctx *c, const char *dir, json_t *resp)
{
	struct fl_error err = {0};
	int rc = agent_identity_stage_cert(dir, ID, c->root_pem, resp, NULL,
					   &err);

	json_decref(resp);
	return rc;
}

/* A full, committed identity for ID in @dir. */
static void enrol_offline(struct ctx *c, const char *dir)
{
	struct fl_error err = {0};
	EVP_PKEY *k;
	char *csr = NULL;

	assert_int_equal(agent_identity_stage_key(dir, ID, &csr, &err), 0);
	k = staged_key(dir);
	assert_int_equal(
	    stage_answer(c, dir, answer(c, &c->iss_ca, FL_PKI_CLIENT, ID, k)),
	    0);
	assert_int_equal(agent_identity_stage_ca(dir, c->root_pem, &err), 0);
	assert_int_equal(agent_identity_commit(dir, &err), 0);
	EVP_PKEY_free(k);
	free(csr);
}

static bool exists(const char *dir, const char *name)
{
	char *p = fl_path_join(dir, name);
	bool yes = fl_path_exists(p);

	free(p);
	return yes;
}

static void test_stage_key(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c), *csr = NULL, *kp;
	char cn[FL_PKI_CN_MAX + 1];
	struct fl_error err = {0};
	struct stat st;

	assert_int_equal(agent_identity_stage_key(dir, ID, &csr, &err), 0);
	kp = fl_path_join(dir, "key.pem.new");
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fl_pki_csr_parse(csr, strlen(csr), ID,
					  FL_PKI_CSR_DEVICE_ID, cn, NULL, &err),
			 0);
	assert_string_equal(cn, ID);
	free(csr);
	csr = NULL;
	agent_identity_discard(dir);
	assert_false(fl_path_exists(kp));
	assert_int_equal(agent_identity_stage_key(dir, "Bad/Id", &csr, NULL),
			 FL_EINVAL);
	assert_null(csr);
	assert_false(fl_path_exists(kp));
	free(kp);
	free(dir);
}

static void test_stage_cert_ok(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c), *csr = NULL;
	struct fl_pki_cert_info info;
	struct fl_error err = {0};
	EVP_PKEY *k;
	json_t *resp;

	assert_int_equal(agent_identity_stage_key(dir, ID, &csr, &err), 0);
	k = staged_key(dir);
	resp = answer(c, &c->iss_ca, FL_PKI_CLIENT, ID, k);
	assert_int_equal(agent_identity_stage_cert(dir, ID, c->root_pem, resp,
						   &info, &err),
			 0);
	assert_string_equal(info.cn, ID);
	assert_true(info.not_after > info.not_before);
	assert_true(exists(dir, "cert.pem.new"));
	assert_true(exists(dir, "chain.pem.new"));
	assert_false(exists(dir, "cert.pem"));
	/* the root+issuing bundle works as the anchor file too */
	assert_int_equal(
	    agent_identity_stage_cert(dir, ID, c->ca_pem, resp, NULL, &err), 0);
	json_decref(resp);
	EVP_PKEY_free(k);
	free(csr);
	free(dir);
}

static void test_stage_cert_refusals(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c), *csr = NULL, *big;
	struct fl_error err = {0};
	EVP_PKEY *rk, *other, *k;
	X509 *rogue = NULL;
	struct fl_pki_issuer rogue_ca;

	assert_int_equal(stage_answer(c, dir, json_object()), FL_EPARSE);
	assert_int_equal(agent_identity_stage_key(dir, ID, &csr, &err), 0);
	k = staged_key(dir);
	other = keygen("EC", "P-256");
	rk = keygen("EC", "P-256");
	assert_int_equal(fl_pki_root_create(rk, "Rogue", 3600, &rogue, &err), 0);
	rogue_ca = (struct fl_pki_issuer){rogue, rk};
	/* another device's CN, another key, another CA, a server cert */
	assert_int_equal(stage_answer(c, dir, answer(c, &c->iss_ca,
						     FL_PKI_CLIENT, "dev-8", k)),
			 FL_EVERIFY);
	assert_int_equal(stage_answer(c, dir, answer(c, &c->iss_ca,
						     FL_PKI_CLIENT, ID, other)),
			 FL_EVERIFY);
	assert_int_equal(stage_answer(c, dir, answer(c, &rogue_ca,
						     FL_PKI_CLIENT, ID, k)),
			 FL_EVERIFY);
	assert_int_equal(stage_answer(c, dir, answer(c, &c->iss_ca,
						     FL_PKI_SERVER, ID, k)),
			 FL_EVERIFY);
	/* a chain the anchors do not reach: the issuing CA as only anchor */
	{
		json_t *r = answer(c, &c->iss_ca, FL_PKI_CLIENT, ID, k);

		assert_int_equal(agent_identity_stage_cert(dir, ID, c->iss_pem,
							   r, NULL, &err),
				 FL_EVERIFY);
		json_object_set_new(r, "chain", json_string("garbage"));
		assert_int_equal(stage_answer(c, dir, r), FL_EPARSE);
	}
	assert_int_equal(stage_answer(c, dir,
				      json_pack("{s:s, s:s}", "cert", "x",
						"chain", "y")),
			 FL_EPARSE);
	assert_int_equal(stage_answer(c, dir, json_pack("{s:i}", "cert", 1)),
			 FL_EPARSE);
	big = fl_xmalloc(FL_PKI_PEM_MAX + 2);
	memset(big, 'A', FL_PKI_PEM_MAX + 1);
	big[FL_PKI_PEM_MAX + 1] = '\0';
	assert_int_equal(stage_answer(c, dir,
				      json_pack("{s:s, s:s}", "cert", big,
						"chain", "y")),
			 FL_ELIMIT);
	assert_false(exists(dir, "cert.pem.new"));
	/* no staged key */
	agent_identity_discard(dir);
	assert_int_equal(stage_answer(c, dir, answer(c, &c->iss_ca,
						     FL_PKI_CLIENT, ID, k)),
			 FL_ENOTFOUND);
	free(big);
	X509_free(rogue);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
	free(csr);
	free(dir);
}

static void test_commit_and_check(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c), *kp;
	struct fl_pki_cert_info info;
	struct fl_error err = {0};
	struct stat st;

	assert_int_equal(agent_identity_check(dir, ID, &info, &err),
			 FL_ENOTFOUND);
	assert_int_equal(agent_identity_commit(dir, NULL), FL_ENOTFOUND);
	enrol_offline(c, dir);
	assert_int_equal(agent_identity_check(dir, ID, &info, &err), 0);
	assert_string_equal(info.cn, ID);
	assert_int_equal(agent_identity_check(dir, "dev-8", NULL, NULL),
			 FL_EVERIFY);
	kp = fl_path_join(dir, "key.pem");
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(exists(dir, "ca.pem"));
	assert_true(exists(dir, "chain.pem"));
	assert_false(exists(dir, "key.pem.new"));
	assert_false(exists(dir, "cert.pem.new"));
	assert_false(exists(dir, AGENT_COMMIT_FILE));
	/* a key that does not belong to the certificate */
	{
		EVP_PKEY *other = keygen("EC", "P-256");

		assert_int_equal(fl_pki_key_save(kp, other, &err), 0);
		assert_int_equal(agent_identity_check(dir, ID, NULL, NULL),
				 FL_EVERIFY);
		EVP_PKEY_free(other);
	}
	free(kp);
	free(dir);
}

/* Rotation-like second identity staged over a committed first one. */
static void stage_second(struct ctx *c, const char *dir,
			 struct fl_pki_cert_info *ret)
{
	struct fl_error err = {0};
	char *csr = NULL;
	EVP_PKEY *k;
	json_t *r;

	assert_int_equal(agent_identity_stage_key(dir, ID, &csr, &err), 0);
	k = staged_key(dir);
	r = answer(c, &c->iss_ca, FL_PKI_CLIENT, ID, k);
	assert_int_equal(
	    agent_identity_stage_cert(dir, ID, c->root_pem, r, ret, &err), 0);
	json_decref(r);
	EVP_PKEY_free(k);
	free(csr);
}

static void test_recover_rolls_forward(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c), *from, *to, *marker;
	struct fl_pki_cert_info first, second, now;
	struct fl_error err = {0};
	bool fwd = false;

	enrol_offline(c, dir);
	assert_int_equal(agent_identity_check(dir, ID, &first, &err), 0);
	stage_second(c, dir, &second);
	/* crash in the middle of the commit: marker written, key renamed,
	 * certificate not yet */
	marker = fl_path_join(dir, AGENT_COMMIT_FILE);
	assert_int_equal(fl_write_atomic_str(marker, "commit\n", 0600, &err),
			 0);
	from = fl_path_join(dir, "key.pem.new");
	to = fl_path_join(dir, "key.pem");
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(agent_identity_check(dir, ID, NULL, NULL), FL_EVERIFY);
	assert_int_equal(agent_identity_recover(dir, &fwd, &err), 0);
	assert_true(fwd);
	assert_int_equal(agent_identity_check(dir, ID, &now, &err), 0);
	assert_string_equal(now.serial, second.serial);
	assert_string_not_equal(now.serial, first.serial);
	assert_false(fl_path_exists(marker));
	free(marker);
	free(from);
	free(to);
	free(dir);
}

static void test_recover_discards(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c);
	struct fl_pki_cert_info first, second, now;
	struct fl_error err = {0};
	bool fwd = true;

	enrol_offline(c, dir);
	assert_int_equal(agent_identity_check(dir, ID, &first, &err), 0);
	stage_second(c, dir, &second);
	assert_int_equal(agent_identity_recover(dir, &fwd, &err), 0);
	assert_false(fwd);
	assert_false(exists(dir, "key.pem.new"));
	assert_false(exists(dir, "cert.pem.new"));
	assert_false(exists(dir, "chain.pem.new"));
	assert_int_equal(agent_identity_check(dir, ID, &now, &err), 0);
	assert_string_equal(now.serial, first.serial);
	/* and a normal commit switches */
	stage_second(c, dir, &second);
	assert_int_equal(agent_identity_commit(dir, &err), 0);
	assert_int_equal(agent_identity_check(dir, ID, &now, &err), 0);
	assert_string_equal(now.serial, second.serial);
	free(dir);
}

static void test_renew_at(void **state)
{
	const time_t nb = 1000000, day = 86400;

	/* 3-minute certificate (2 min + 60 s backdating) */
	assert_int_equal(agent_identity_renew_at(nb, nb + 180, 0), nb + 108);
	assert_int_equal(agent_identity_renew_at(nb, nb + 180, UINT32_MAX),
			 nb + 132);
	for (uint32_t r = 1; r < UINT32_MAX / 2; r = r * 3 + 7) {
		time_t t = agent_identity_renew_at(nb, nb + 180, r);

		assert_true(t >= nb + 108 && t <= nb + 132);
	}
	/* 30 days: 20 days +- 2 */
	assert_int_equal(agent_identity_renew_at(nb, nb + 30 * day, 0),
			 nb + 18 * day);
	assert_int_equal(
	    agent_identity_renew_at(nb, nb + 30 * day, UINT32_MAX / 2 + 1),
	    nb + 20 * day);
	assert_int_equal(agent_identity_renew_at(nb, nb + 30 * day, UINT32_MAX),
			 nb + 22 * day);
	/* nonsense validity: renew at once */
	assert_int_equal(agent_identity_renew_at(nb, nb, 5), nb);
	assert_int_equal(agent_identity_renew_at(nb, nb - 10, 5), nb);
}

static void test_enroll_refusals(void **state)
{
	struct ctx *c = *state;
	char *dir = state_dir(c);
	struct agent_http_target t = {.server_url = "https://127.0.0.1:1",
				      .ca_file = c->root_pem,
				      .timeout_ms = 5000};
	struct fl_error err = {0};
	json_t *resp = NULL;

	assert_int_equal(agent_enroll(&t, dir, "Bad", "tok", &resp, NULL),
			 FL_EINVAL);
	assert_int_equal(agent_enroll(&t, dir, ID, "", &resp, NULL), FL_EINVAL);
	assert_int_equal(agent_enroll(&t, dir, ID, "fle_x", &resp, &err),
			 FL_EUNREACH);
	assert_null(resp);
	assert_false(exists(dir, "key.pem.new"));
	assert_false(exists(dir, "key.pem"));
	t.server_url = "http://127.0.0.1:1";
	assert_int_equal(agent_enroll(&t, dir, ID, "fle_x", &resp, NULL),
			 FL_EINVAL);
	enrol_offline(c, dir);
	assert_int_equal(agent_enroll(&t, dir, ID, "fle_x", &resp, NULL),
			 FL_ECONFLICT);
	/* re-enrolment with a server that is not there keeps the identity */
	t.server_url = "https://127.0.0.1:1";
	assert_int_equal(agent_reenroll(&t, dir, ID, NULL, NULL), FL_EUNREACH);
	assert_false(exists(dir, "key.pem.new"));
	assert_int_equal(agent_identity_check(dir, ID, NULL, NULL), 0);
	assert_int_equal(agent_reenroll_confirm(&t, dir, NULL), FL_EUNREACH);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stage_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stage_cert_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stage_cert_refusals, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_commit_and_check, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_recover_rolls_forward, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_recover_discards, setup,
					    teardown),
	    cmocka_unit_test(test_renew_at),
	    cmocka_unit_test_setup_teardown(test_enroll_refusals, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
