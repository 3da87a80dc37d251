/* SPDX-License-Identifier: MIT */
/* Trust root: creation, parsing, self-signature, chain walking and the
 * rotation cases of issue 4, checked with real bundles. */
#include "fsig_fixture.h"
#include "b64.h"

struct ctx {
	char *dir;
	struct fsig_key *r1, *r2, *r3, *t1, *t2;
};

static int setup(void **state)
{
	struct ctx *c = fl_xcalloc(1, sizeof(*c));

	c->dir = tmpdir_new();
	c->r1 = new_key(FSIG_ALG_ED25519);
	c->r2 = new_key(FSIG_ALG_P256);
	c->r3 = new_key(FSIG_ALG_ED25519);
	c->t1 = new_key(FSIG_ALG_ED25519);
	c->t2 = new_key(FSIG_ALG_P256);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	tmpdir_free(c->dir);
	fsig_key_free(c->r1);
	fsig_key_free(c->r2);
	fsig_key_free(c->r3);
	fsig_key_free(c->t1);
	fsig_key_free(c->t2);
	free(c);
	return 0;
}

/* Successor of @prev with the given roles, signed by @signers. */
static struct fsig_root *rotate(const struct fsig_root *prev,
				struct fsig_key **rk, size_t nr, unsigned rt,
				struct fsig_key **tk, size_t nt,
				struct fsig_key **signers, size_t ns)
{
	struct fsig_role_spec rs = {rk, nr, rt}, ts = {tk, nt, 1};
	struct fsig_root *next = NULL;

	assert_int_equal(fsig_root_rotate(prev, &rs, &ts,
					  time(NULL) + 86400 * 30, &next, NULL),
			 0);
	for (size_t i = 0; i < ns; i++)
		assert_int_equal(fsig_root_sign(next, signers[i], NULL), 0);
	return next;
}

/* Walk @trusted -> @cands; returns the code, *why the reason. */
static int walk(const struct fsig_root *trusted, struct fsig_root **cands,
		size_t n, struct fsig_root **newest, enum fsig_reason *why)
{
	struct fsig_root *out = NULL;
	int rc;

	*why = FSIG_R_NONE;
	rc = fsig_root_update(trusted, cands, n, 0, &out, why, NULL);
	if (newest)
		*newest = out;
	else
		fsig_root_free(out);
	if (rc)
		assert_null(out);
	return rc;
}

/* A bundle signed by @key, verified against @root. */
static int bundle_verdict(struct ctx *c, struct fsig_key *key,
			  const struct fsig_root *root, enum fsig_reason *why)
{
	char *img = tpath(c->dir, "img"), *out = tpath(c->dir, "b.fwb");
	const char *hw[] = {"gw"};
	struct fsig_payload_spec ps = {.path = img};
	struct fsig_bundle_spec s = {.name = "fw",
				     .version = "1.0.0",
				     .hardware = hw,
				     .n_hardware = 1,
				     .payloads = &ps,
				     .n_payloads = 1,
				     .keys = &key,
				     .n_keys = 1};
	int rc;

	write_file(img, "firmware", 8);
	assert_int_equal(fsig_bundle_create(&s, out, NULL), 0);
	*why = FSIG_R_NONE;
	rc = fsig_bundle_verify_file(out, root, NULL, NULL, NULL, why, NULL);
	free(img);
	free(out);
	return rc;
}

static void test_init_sign_save_load(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *rk[] = {c->r1, c->r2}, *tk[] = {c->t1};
	struct fsig_role_spec rs = {rk, 2, 2}, ts = {tk, 1, 1};
	struct fsig_root *root = NULL, *back = NULL;
	char *path = tpath(c->dir, "root.json");
	enum fsig_reason why = FSIG_R_NONE;
	json_t *show;

	assert_int_equal(
	    fsig_root_init(&rs, &ts, time(NULL) + 3600, &root, NULL), 0);
	assert_int_equal(fsig_root_version(root), 1);
	/* unsigned, then half signed: below the root threshold */
	assert_int_equal(fsig_root_check_self(root, &why, NULL), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_THRESHOLD);
	assert_int_equal(fsig_root_sign(root, c->r1, NULL), 0);
	assert_int_equal(fsig_root_save(root, path, NULL), 0);
	assert_int_equal(fsig_root_load_trusted(path, &back, NULL, NULL),
			 FL_EVERIFY);
	assert_int_equal(fsig_root_sign(root, c->r2, NULL), 0);
	assert_int_equal(fsig_root_sign(root, c->r2, NULL), 0); /* replaces */
	assert_int_equal(fsig_root_signatures(root)->n, 2);
	assert_int_equal(fsig_root_check_self(root, NULL, NULL), 0);
	assert_int_equal(fsig_root_save(root, path, NULL), 0);
	assert_int_equal(fsig_root_load_trusted(path, &back, NULL, NULL), 0);
	assert_int_equal(fsig_root_version(back), 1);
	assert_int_equal(fsig_root_expires(back), fsig_root_expires(root));

	show = fsig_root_to_json(back);
	assert_int_equal(json_integer_value(json_object_get(show, "version")),
			 1);
	assert_int_equal(json_array_size(json_object_get(show, "keys")), 3);
	assert_true(json_is_true(json_object_get(
	    json_array_get(json_object_get(show, "signatures"), 0), "valid")));
	json_decref(show);
	fsig_root_free(root);
	fsig_root_free(back);
	free(path);
}

static void test_init_rejects_bad_specs(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *rk[] = {c->r1, c->r1}, *tk[] = {c->t1};
	struct fsig_role_spec dup = {rk, 2, 1}, one = {rk, 1, 1},
			      zero = {rk, 1, 0}, over = {rk, 1, 2},
			      ts = {tk, 1, 1};
	struct fsig_root *root = NULL;
	time_t later = time(NULL) + 60;

	assert_int_equal(fsig_root_init(&dup, &ts, later, &root, NULL),
			 FL_EINVAL);
	assert_int_equal(fsig_root_init(&zero, &ts, later, &root, NULL),
			 FL_EINVAL);
	assert_int_equal(fsig_root_init(&over, &ts, later, &root, NULL),
			 FL_EINVAL);
	assert_int_equal(fsig_root_init(&one, &ts, time(NULL) - 1, &root, NULL),
			 FL_EINVAL);
	assert_null(root);
}

/* Issue 4: a bundle signed by a key added in root v2 verifies on a
 * verifier that only had v1 (once it walks to v2). */
static void test_key_added_in_v2(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *rk[] = {c->r1}, *t1[] = {c->t1},
			*t12[] = {c->t1, c->t2};
	struct fsig_root *v1 = make_root(rk, 1, 1, t1, 1, 1), *v2, *newest;
	enum fsig_reason why;

	v2 = rotate(v1, rk, 1, 1, t12, 2, rk, 1);
	assert_int_equal(bundle_verdict(c, c->t2, v1, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_UNKNOWN_KEY);
	assert_int_equal(walk(v1, &v2, 1, &newest, &why), 0);
	assert_int_equal(fsig_root_version(newest), 2);
	assert_int_equal(bundle_verdict(c, c->t2, newest, &why), 0);
	assert_int_equal(bundle_verdict(c, c->t1, newest, &why), 0);
	fsig_root_free(newest);
	fsig_root_free(v1);
	fsig_root_free(v2);
}

/* Issue 4: a v2 signed only by new keys is refused. */
static void test_v2_signed_only_by_new_keys(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *r1[] = {c->r1}, *r3[] = {c->r3}, *t1[] = {c->t1};
	struct fsig_root *v1 = make_root(r1, 1, 1, t1, 1, 1), *v2;
	enum fsig_reason why;

	v2 = rotate(v1, r3, 1, 1, t1, 1, r3, 1);
	assert_int_equal(walk(v1, &v2, 1, NULL, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_UNKNOWN_KEY);
	fsig_root_free(v2);
	/* signed by the old key only, not by its own new root key */
	v2 = rotate(v1, r3, 1, 1, t1, 1, r1, 1);
	assert_int_equal(walk(v1, &v2, 1, NULL, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_UNKNOWN_KEY);
	fsig_root_free(v2);
	/* both: accepted, and the old root key is out from now on */
	v2 =
	    rotate(v1, r3, 1, 1, t1, 1, (struct fsig_key *[]){c->r1, c->r3}, 2);
	assert_int_equal(walk(v1, &v2, 1, NULL, &why), 0);
	fsig_root_free(v2);
	fsig_root_free(v1);
}

/* Issue 4: a key removed in v3 no longer verifies. */
static void test_key_removed_in_v3(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *rk[] = {c->r1}, *t1[] = {c->t1}, *t2[] = {c->t2},
			*t12[] = {c->t1, c->t2};
	struct fsig_root *v1 = make_root(rk, 1, 1, t1, 1, 1), *v2, *v3, *newest;
	struct fsig_root *cands[2];
	enum fsig_reason why;

	v2 = rotate(v1, rk, 1, 1, t12, 2, rk, 1);
	v3 = rotate(v2, rk, 1, 1, t2, 1, rk, 1);
	/* any order; v1 itself among the candidates is skipped */
	cands[0] = v3;
	cands[1] = v2;
	assert_int_equal(walk(v1, cands, 2, &newest, &why), 0);
	assert_int_equal(fsig_root_version(newest), 3);
	assert_int_equal(bundle_verdict(c, c->t1, v2, &why), 0);
	assert_int_equal(bundle_verdict(c, c->t1, newest, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_UNKNOWN_KEY);
	assert_int_equal(bundle_verdict(c, c->t2, newest, &why), 0);
	fsig_root_free(newest);
	fsig_root_free(v1);
	fsig_root_free(v2);
	fsig_root_free(v3);
}

static void test_threshold_and_chain_rules(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *r12[] = {c->r1, c->r2}, *t1[] = {c->t1};
	struct fsig_root *v1 = make_root(r12, 2, 2, t1, 1, 1), *v2, *v2b, *v3;
	struct fsig_root *pair[2];
	enum fsig_reason why;

	/* v1 wants 2 of its root keys: one is not enough */
	v2 = rotate(v1, r12, 2, 1, t1, 1, r12, 1);
	assert_int_equal(walk(v1, &v2, 1, NULL, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_THRESHOLD);
	assert_int_equal(fsig_root_sign(v2, c->r2, NULL), 0);
	assert_int_equal(walk(v1, &v2, 1, NULL, &why), 0);

	/* a gap (v3 without v2) is refused */
	v3 = rotate(v2, r12, 2, 1, t1, 1, r12, 2);
	assert_int_equal(walk(v1, &v3, 1, NULL, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_ROOT_VERSION);

	/* two different v2s are refused */
	v2b = rotate(v1, r12, 2, 2, t1, 1, r12, 2);
	pair[0] = v2;
	pair[1] = v2b;
	assert_int_equal(walk(v1, pair, 2, NULL, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_ROOT_VERSION);

	/* the newest must not be expired (intermediate ones may be) */
	why = FSIG_R_NONE;
	assert_int_equal(fsig_root_update(v1, &v2, 1, time(NULL) + 86400 * 60,
					  &v3, &why, NULL),
			 FL_EVERIFY);
	assert_int_equal(why, FSIG_R_ROOT_EXPIRED);
	fsig_root_free(v1);
	fsig_root_free(v2);
	fsig_root_free(v2b);
	fsig_root_free(v3); /* untouched by the failed update */
}

/* Flip one character inside the base64 payload: the signature fails. */
static void test_tampered_body(void **state)
{
	struct ctx *c = *state;
	struct fsig_key *rk[] = {c->r1}, *t1[] = {c->t1};
	struct fsig_root *v1 = make_root(rk, 1, 1, t1, 1, 1), *bad = NULL;
	enum fsig_reason why = FSIG_R_NONE;
	size_t len;
	char *text = fl_xstrdup(fsig_root_text(v1, &len)), *p;

	/* "version":1 -> "version":2 inside the body, re-encoded */
	p = strstr(text, "\"payload\": \"") + 12;
	{
		unsigned char *body;
		size_t blen;
		char *q, *enc, *out;

		assert_int_equal(fsig_b64_decode(p, strcspn(p, "\""), 1 << 16,
						 &body, &blen, NULL),
				 0);
		q = strstr((char *)body, "\"version\":1");
		assert_non_null(q);
		q[10] = '2';
		enc = fsig_b64_encode(body, blen);
		out = fl_xasprintf("%.*s%s%s", (int)(p - text), text, enc,
				   p + strcspn(p, "\""));
		assert_int_equal(fsig_root_parse(out, strlen(out), &bad, NULL),
				 0);
		assert_int_equal(fsig_root_version(bad), 2);
		assert_int_equal(walk(v1, &bad, 1, NULL, &why), FL_EVERIFY);
		assert_int_equal(why, FSIG_R_BAD_SIGNATURE);
		free(body);
		free(enc);
		free(out);
	}
	fsig_root_free(bad);
	fsig_root_free(v1);
	free(text);
}

/* Hand-made bodies: key ids must be the key's hash, roles consistent. */
static void test_parse_rejects(void **state)
{
	struct ctx *c = *state;
	size_t spki_len;
	const unsigned char *spki = fsig_key_spki(c->t1, &spki_len);
	char *spki64 = fsig_b64_encode(spki, spki_len);
	const char *id = fsig_key_id(c->t1);
	const char *wrong = "00000000000000000000000000000000"
			    "00000000000000000000000000000000";
	char *bodies[4];
	struct fsig_root *r = NULL;

	bodies[0] = fl_xasprintf(
	    "{\"type\":\"fleet-root\",\"format\":1,\"version\":1,"
	    "\"expires\":\"2099-01-01T00:00:00Z\",\"keys\":{\"%s\":"
	    "{\"alg\":\"ed25519\",\"spki\":\"%s\"}},\"roles\":{\"root\":"
	    "{\"keyids\":[\"%s\"],\"threshold\":1},\"targets\":{\"keyids\":"
	    "[\"%s\"],\"threshold\":1}}}",
	    wrong, spki64, wrong, wrong);
	bodies[1] = fl_xasprintf(
	    "{\"type\":\"fleet-root\",\"format\":1,\"version\":1,"
	    "\"expires\":\"2099-01-01T00:00:00Z\",\"keys\":{\"%s\":"
	    "{\"alg\":\"p256\",\"spki\":\"%s\"}},\"roles\":{\"root\":"
	    "{\"keyids\":[\"%s\"],\"threshold\":1},\"targets\":{\"keyids\":"
	    "[\"%s\"],\"threshold\":1}}}",
	    id, spki64, id, id);
	bodies[2] = fl_xasprintf(
	    "{\"type\":\"fleet-root\",\"format\":1,\"version\":1,"
	    "\"expires\":\"2099-01-01T00:00:00Z\",\"keys\":{\"%s\":"
	    "{\"alg\":\"ed25519\",\"spki\":\"%s\"}},\"roles\":{\"root\":"
	    "{\"keyids\":[\"%s\"],\"threshold\":2},\"targets\":{\"keyids\":"
	    "[\"%s\"],\"threshold\":1}}}",
	    id, spki64, id, id);
	bodies[3] = fl_xasprintf(
	    "{\"type\":\"fleet-root\",\"format\":1,\"version\":1,"
	    "\"expires\":\"2099-01-01T00:00:00Z\",\"keys\":{\"%s\":"
	    "{\"alg\":\"ed25519\",\"spki\":\"%s\"}},\"roles\":{\"root\":"
	    "{\"keyids\":[\"%s\"],\"threshold\":1},\"targets\":{\"keyids\":"
	    "[\"%s\"],\"threshold\":1}}}",
	    id, spki64, id, wrong);
	for (int i = 0; i < 4; i++) {
		char *b64 = fsig_b64_encode(bodies[i], strlen(bodies[i]));
		char *env = fl_xasprintf("{\"payload_type\":\"%s\",\"payload\":"
					 "\"%s\",\"signatures\":[]}",
					 FSIG_ROOT_PAYLOAD_TYPE, b64);

		assert_int_equal(fsig_root_parse(env, strlen(env), &r, NULL),
				 FL_EPARSE);
		assert_null(r);
		free(env);
		free(b64);
		free(bodies[i]);
	}
	/* a payload with a NUL inside: bytes, not a C string */
	{
		static const char body[] = "{\"type\":\"fleet-root\"\0}";
		char *b64 = fsig_b64_encode(body, sizeof(body) - 1);
		char *env = fl_xasprintf("{\"payload_type\":\"%s\",\"payload\":"
					 "\"%s\",\"signatures\":[]}",
					 FSIG_ROOT_PAYLOAD_TYPE, b64);

		assert_int_equal(fsig_root_parse(env, strlen(env), &r, NULL),
				 FL_EPARSE);
		free(env);
		free(b64);
	}
	assert_int_equal(fsig_root_parse("[]", 2, &r, NULL), FL_EPARSE);
	assert_int_equal(
	    fsig_root_parse("{\"payload_type\":\"x\"}", 20, &r, NULL),
	    FL_EPARSE);
	free(spki64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_sign_save_load),
	    cmocka_unit_test(test_init_rejects_bad_specs),
	    cmocka_unit_test(test_key_added_in_v2),
	    cmocka_unit_test(test_v2_signed_only_by_new_keys),
	    cmocka_unit_test(test_key_removed_in_v3),
	    cmocka_unit_test(test_threshold_and_chain_rules),
	    cmocka_unit_test(test_tampered_body),
	    cmocka_unit_test(test_parse_rejects),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
