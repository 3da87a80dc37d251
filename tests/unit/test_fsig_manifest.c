/* SPDX-License-Identifier: MIT */
/* Manifest parsing, caps, policy and semantic versions. */
#include "fsig_fixture.h"
#include "manifest.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char good[] =
    "{\"format\": 1, \"name\": \"gw-fw\", \"version\": \"1.2.3-rc.1\","
    " \"security_version\": 4, \"hardware\": [\"rpi4\", \"x86:v2\"],"
    " \"created\": \"2026-01-02T03:04:05Z\","
    " \"expires\": \"2030-01-01T00:00:00Z\","
    " \"provenance\": {\"commit\": "
    "\"0123456789abcdef0123456789abcdef01234567\","
    "   \"describe\": \"v1.2.3-4-g0123456-dirty\", \"dirty\": true,"
    "   \"remote\": \"https://example.org/fw.git\", \"builder\": \"ci\"},"
    " \"payloads\": [{\"name\": \"rootfs.img\", \"type\": \"rootfs\","
    "   \"compression\": \"none\", \"size\": 10, \"sha256\": \"" H64 "\"},"
    "  {\"name\": \"app.tar\", \"type\": \"file\", \"compression\": \"zstd\","
    "   \"size\": 7, \"sha256\": \"" H64 "\", \"raw_size\": 99,"
    "   \"raw_sha256\": \"" H64 "\", \"delta_from\": \"1.2.2\"}]}";

static int parse(const char *text, struct fsig_manifest **m,
		 enum fsig_reason *why)
{
	return fsig_manifest_parse(text, strlen(text), m, why, NULL);
}

static void test_good(void **state)
{
	struct fsig_manifest *m = NULL;
	char *padded = fl_xasprintf("%s      \n", good);

	assert_int_equal(parse(padded, &m, NULL), 0);
	assert_string_equal(m->name, "gw-fw");
	assert_string_equal(m->version, "1.2.3-rc.1");
	assert_int_equal(m->security_version, 4);
	assert_int_equal(m->n_hardware, 2);
	assert_string_equal(m->hardware[1], "x86:v2");
	assert_true(m->expires > m->created);
	assert_true(m->has_provenance);
	assert_true(m->provenance.dirty);
	assert_string_equal(m->provenance.builder, "ci");
	assert_int_equal(m->n_payloads, 2);
	assert_int_equal(m->payloads[0].raw_size, 10);
	assert_ptr_equal(m->payloads[0].raw_sha256, m->payloads[0].sha256);
	assert_int_equal(m->payloads[1].compression, FSIG_COMP_ZSTD);
	assert_int_equal(m->payloads[1].raw_size, 99);
	assert_string_equal(m->payloads[1].delta_from, "1.2.2");
	assert_int_equal(fsig_manifest_find(m, "app.tar"), 1);
	assert_int_equal(fsig_manifest_find(m, "nope"), -1);
	fsig_manifest_free(m);
	free(padded);
	(void)state;
}

/* Replace the first @from in good[] by @to and expect rejection. */
static void expect_bad(const char *from, const char *to, enum fsig_reason want)
{
	const char *at = strstr(good, from);
	enum fsig_reason why = FSIG_R_NONE;
	struct fsig_manifest *m = NULL;
	char *text;
	int rc;

	assert_non_null(at);
	text = fl_xasprintf("%.*s%s%s", (int)(at - good), good, to,
			    at + strlen(from));
	rc = parse(text, &m, &why);
	if (rc == 0)
		fail_msg("accepted: %s -> %s", from, to);
	assert_true(rc == FL_EPARSE || rc == FL_ELIMIT);
	assert_int_equal(why, want);
	assert_null(m);
	free(text);
}

static void test_bad_fields(void **state)
{
	const enum fsig_reason M = FSIG_R_MALFORMED;

	expect_bad("\"format\": 1", "\"format\": 2", M);
	expect_bad("\"format\": 1,", "", M);
	expect_bad("\"gw-fw\"", "\"gw/fw\"", M);
	expect_bad("\"1.2.3-rc.1\"", "\"1.2\"", M);
	expect_bad("\"security_version\": 4", "\"security_version\": -1", M);
	expect_bad("\"security_version\": 4", "\"security_version\": \"4\"", M);
	expect_bad("[\"rpi4\", \"x86:v2\"]", "[]", M);
	expect_bad("\"rpi4\"", "\"rpi 4\"", M);
	expect_bad("2026-01-02T03:04:05Z", "yesterday", M);
	expect_bad("\"dirty\": true", "\"dirty\": 1", M);
	expect_bad("0123456789abcdef0123456789abcdef01234567", "xyz", M);
	expect_bad("\"rootfs.img\"", "\"../etc/passwd\"", FSIG_R_BAD_NAME);
	expect_bad("\"rootfs.img\"", "\"/abs\"", FSIG_R_BAD_NAME);
	expect_bad("\"rootfs.img\"", "\".hidden\"", FSIG_R_BAD_NAME);
	expect_bad("\"rootfs.img\"", "\"app.tar\"", M); /* duplicate name */
	expect_bad("\"size\": 10", "\"size\": 1099511627777", M);
	expect_bad("\"compression\": \"none\"", "\"compression\": \"xz\"", M);
	expect_bad("\"raw_size\": 99,", "", M);
	expect_bad("\"delta_from\": \"1.2.2\"", "\"delta_from\": \"old\"", M);
	expect_bad("\"type\": \"rootfs\"", "\"type\": \"\"", M);
	expect_bad("{\"format\"", "{\"format\": 1, \"format\"", M);
	expect_bad("\"payloads\": [", "\"payloads\": [], \"x\": [", M);
	(void)state;
}

static void test_caps(void **state)
{
	struct fsig_manifest *m = NULL;
	enum fsig_reason why = FSIG_R_NONE;
	size_t big = FSIG_MANIFEST_MAX + 1;
	char *text = fl_xmalloc(big + 1), *many;
	size_t off;

	memset(text, ' ', big);
	memcpy(text, good, strlen(good));
	text[big] = '\0';
	assert_int_equal(fsig_manifest_parse(text, big, &m, &why, NULL),
			 FL_ELIMIT);
	assert_int_equal(why, FSIG_R_TOO_LARGE);
	/* exactly at the cap is fine */
	assert_int_equal(fsig_manifest_parse(text, big - 1, &m, NULL, NULL), 0);
	fsig_manifest_free(m);
	free(text);

	/* 33 hardware names */
	many = fl_xmalloc(4096);
	off =
	    (size_t)snprintf(many, 4096,
			     "{\"format\": 1, \"name\": \"a\", "
			     "\"version\": \"1.0.0\", \"security_version\": 0,"
			     " \"created\": \"2026-01-01T00:00:00Z\", "
			     "\"payloads\": [{\"name\": \"p\", \"type\": \"t\","
			     " \"compression\": \"none\", \"size\": 0, "
			     "\"sha256\": \"" H64 "\"}], \"hardware\": [");
	for (int i = 0; i <= FSIG_HARDWARE_MAX; i++)
		off += (size_t)snprintf(many + off, 4096 - off, "%s\"h%d\"",
					i ? "," : "", i);
	snprintf(many + off, 4096 - off, "]}");
	why = FSIG_R_NONE;
	assert_int_not_equal(parse(many, &m, &why), 0);
	assert_int_equal(why, FSIG_R_MALFORMED);
	free(many);
	(void)state;
}

static void test_policy(void **state)
{
	struct fsig_manifest *m = NULL;
	struct fsig_policy pol = {
	    .hardware = "rpi4", .min_security_version = 4, .now = 1800000000};
	enum fsig_reason why = FSIG_R_NONE;

	assert_int_equal(parse(good, &m, NULL), 0);
	assert_int_equal(fsig_manifest_check_policy(m, &pol, &why, NULL), 0);
	pol.hardware = "rpi3";
	assert_int_equal(fsig_manifest_check_policy(m, &pol, &why, NULL),
			 FL_EVERIFY);
	assert_int_equal(why, FSIG_R_HARDWARE);
	pol.hardware = NULL;
	pol.min_security_version = 5;
	why = FSIG_R_NONE;
	assert_int_equal(fsig_manifest_check_policy(m, &pol, &why, NULL),
			 FL_EVERIFY);
	assert_int_equal(why, FSIG_R_SECURITY_VERSION);
	pol.min_security_version = 0;
	pol.now = 1893456000; /* 2030-01-01: the expiry instant */
	why = FSIG_R_NONE;
	assert_int_equal(fsig_manifest_check_policy(m, &pol, &why, NULL),
			 FL_EVERIFY);
	assert_int_equal(why, FSIG_R_EXPIRED);
	fsig_manifest_free(m);
	(void)state;
}

static void test_semver(void **state)
{
	static const char *const order[] = {
	    "0.9.9",	  "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
	    "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
	    "1.0.0",	  "1.0.1",	  "1.2.0",	   "1.10.0",
	    "2.0.0",	  "10.0.0",
	};
	static const char *const invalid[] = {
	    "1.2",     "01.2.3", "1.2.3-", "1.2.3-01",	 "1.2.3+", "a.b.c",
	    "1.2.3.4", "1..3",	 "-1.2.3", "1.2.3-a..b", "",	   "1.2.3 ",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(order); i++) {
		assert_true(fsig_valid_semver(order[i]));
		for (size_t j = 0; j < FL_ARRAY_SIZE(order); j++) {
			int c = fsig_semver_cmp(order[i], order[j]);
			int want = i < j ? -1 : i > j;

			assert_int_equal((c > 0) - (c < 0), want);
		}
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(invalid); i++)
		assert_false(fsig_valid_semver(invalid[i]));
	assert_true(fsig_valid_semver("1.0.0-rc.1+build.005"));
	assert_int_equal(fsig_semver_cmp("1.0.0+a", "1.0.0+b"), 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),   cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_caps),   cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_semver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
