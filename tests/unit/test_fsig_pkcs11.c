/* SPDX-License-Identifier: MIT */
/*
 * PKCS#11 signing through OpenSSL's pkcs11 engine against a SoftHSM2
 * token made in a temp dir (its own SOFTHSM2_CONF), so CI can sign
 * without a key file.  SoftHSM2, opensc (pkcs11-tool) and the engine are
 * in scripts/install-deps; the test is skipped only when they are
 * missing.
 */
#include "fsig_fixture.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define ENGINE_SO "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
#define URI_BASE "pkcs11:token=fleet;object=sign;type=private"

static int setup(void **state)
{
	char *dir = tmpdir_new(), *conf = tpath(dir, "softhsm2.conf");
	char *tokens = tpath(dir, "tokens");
	char *text = fl_xasprintf("directories.tokendir = %s\n"
				  "objectstore.backend = file\n"
				  "log.level = ERROR\n",
				  tokens);
	const char *init[] = {
	    "softhsm2-util", "--init-token", "--free",	 "--label", "fleet",
	    "--pin",	     "1234",	     "--so-pin", "4321",    NULL};
	const char *gen[] = {
	    "pkcs11-tool",  "--module",	  MODULE,	   "--token-label",
	    "fleet",	    "--login",	  "--pin",	   "1234",
	    "--keypairgen", "--key-type", "EC:prime256v1", "--id",
	    "01",	    "--label",	  "sign",	   NULL};

	*state = dir;
	if (access(MODULE, R_OK) || access(ENGINE_SO, R_OK))
		return 0; /* the test skips */
	assert_int_equal(mkdir(tokens, 0700), 0);
	write_file(conf, text, strlen(text));
	setenv("SOFTHSM2_CONF", conf, 1);
	unsetenv("FLEET_PKCS11_PIN");
	unsetenv("FLEET_PKCS11_MODULE");
	assert_int_equal(run_quiet(init), 0);
	assert_int_equal(run_quiet(gen), 0);
	free(conf);
	free(tokens);
	free(text);
	return 0;
}

static int teardown(void **state)
{
	tmpdir_free(*state);
	return 0;
}

static void need_softhsm(void)
{
	if (access(MODULE, R_OK) || access(ENGINE_SO, R_OK)) {
		print_message("SoftHSM2 or the pkcs11 engine is missing "
			      "(run scripts/install-deps)\n");
		skip();
	}
}

/* Sign a bundle with the token key; verify it with a root that lists
 * the token key's public half. */
static void test_sign_bundle_with_token(void **state)
{
	const char *dir = *state;
	struct fsig_key *tok = NULL, *pub = NULL,
			*rk = new_key(FSIG_ALG_ED25519);
	char *img = tpath(dir, "img"), *out = tpath(dir, "b.fwb");
	const char *hw[] = {"gw"};
	struct fsig_payload_spec ps = {.path = img};
	struct fsig_bundle_spec s = {.name = "fw",
				     .version = "1.0.0",
				     .hardware = hw,
				     .n_hardware = 1,
				     .payloads = &ps,
				     .n_payloads = 1,
				     .keys = &tok,
				     .n_keys = 1};
	struct fsig_root *root;
	size_t spki_len;
	const unsigned char *spki;
	struct fl_error err = {0};

	need_softhsm();
	if (fsig_key_load_private(
		URI_BASE "?pin-value=1234&module-path=" MODULE, &tok, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(fsig_key_alg(tok), FSIG_ALG_P256);
	assert_true(fsig_key_has_private(tok));
	/* a token key never leaves the token */
	assert_int_equal(fsig_key_save_private(tok, out, NULL), FL_EINVAL);
	spki = fsig_key_spki(tok, &spki_len);
	assert_int_equal(fsig_key_from_spki(spki, spki_len, &pub, NULL), 0);
	root = make_root(&rk, 1, 1, &pub, 1, 1);

	write_file(img, "token-signed firmware", 21);
	assert_int_equal(fsig_bundle_create(&s, out, NULL), 0);
	assert_int_equal(
	    fsig_bundle_verify_file(out, root, NULL, NULL, NULL, NULL, NULL),
	    0);
	fsig_root_free(root);
	fsig_key_free(tok);
	fsig_key_free(pub);
	fsig_key_free(rk);
	free(img);
	free(out);
}

/*
 * A wrong PIN fails without echoing it.  This runs first: once any load
 * has logged in, libp11 keeps the token session logged in for the rest
 * of the process.
 */
static void test_wrong_pin(void **state)
{
	struct fsig_key *tok = NULL;
	struct fl_error err = {0};

	(void)state;
	need_softhsm();
	assert_int_equal(fsig_key_load_private(URI_BASE "?pin-value=98765"
							"&module-path=" MODULE,
					       &tok, &err),
			 FL_ENOTFOUND);
	assert_null(tok);
	assert_null(strstr(err.msg, "98765"));
	assert_int_equal(fsig_key_load_pkcs11("/not/a/uri", &tok, NULL),
			 FL_EINVAL);
}

/* PIN and module from the environment; loading a key again works. */
static void test_env_settings(void **state)
{
	struct fsig_key *tok = NULL;
	struct fl_error err = {0};
	unsigned char sig[FSIG_SIG_MAX];
	size_t len;

	(void)state;
	need_softhsm();
	setenv("FLEET_PKCS11_MODULE", MODULE, 1);
	setenv("FLEET_PKCS11_PIN", "1234", 1);
	assert_int_equal(fsig_key_load_private(URI_BASE, &tok, NULL), 0);
	if (fsig_sign(tok, FSIG_DOMAIN_MANIFEST, "x", 1, sig, &len, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(
	    fsig_verify(tok, FSIG_DOMAIN_MANIFEST, "x", 1, sig, len, NULL), 0);
	fsig_key_free(tok);
	unsetenv("FLEET_PKCS11_PIN");
	unsetenv("FLEET_PKCS11_MODULE");
}

int main(void)
{
	/* one token per process, as in CI: the engine keeps module state,
	 * so the second test also shows a key can be loaded again */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrong_pin),
	    cmocka_unit_test(test_sign_bundle_with_token),
	    cmocka_unit_test(test_env_settings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
