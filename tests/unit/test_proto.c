/* SPDX-License-Identifier: MIT */
/*
 * common/proto: the topic builder and parser under one prefix (caps, bad
 * prefixes, wildcards refused in ids and in received topics) and the job
 * state table (names, finals, who sets what).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "util.h"

static void test_prefix_valid(void **state)
{
	static const char *const good[] = {"fleet", "acme", "A-b_9", "x"};
	static const char *const bad[] = {
	    "",	  "fleet/", "/fleet",	"a/b", "fleet/#",    "#",   "+",
	    "a+", "$SYS",   "fleet.eu", "a b", "fl\xc3\xa9", "a\n", "fleet\t",
	};
	char longest[FL_TOPIC_PREFIX_MAX + 2];

	for (size_t i = 0; i < FL_ARRAY_SIZE(good); i++)
		assert_true(fl_topic_prefix_valid(good[i]));
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_false(fl_topic_prefix_valid(bad[i]));
	assert_false(fl_topic_prefix_valid(NULL));
	/* the cap, exactly */
	memset(longest, 'p', sizeof(longest) - 1);
	longest[FL_TOPIC_PREFIX_MAX] = '\0';
	assert_true(fl_topic_prefix_valid(longest));
	longest[FL_TOPIC_PREFIX_MAX] = 'p';
	longest[FL_TOPIC_PREFIX_MAX + 1] = '\0';
	assert_false(fl_topic_prefix_valid(longest));
	assert_int_equal(fl_topic_check_prefix(longest, "x", NULL), FL_EINVAL);
	assert_int_equal(fl_topic_check_prefix("acme", "x", NULL), 0);
}

static void test_build(void **state)
{
	struct fl_error err = {0};
	char *t = NULL;

	assert_int_equal(
	    fl_topic_build("acme", "dev-1", FL_TOPIC_CMD, NULL, &t, &err), 0);
	assert_string_equal(t, "acme/dev-1/cmd");
	free(t);
	assert_int_equal(fl_topic_build("fleet", "d.2", FL_TOPIC_SHADOW_DESIRED,
					NULL, &t, NULL),
			 0);
	assert_string_equal(t, "fleet/d.2/shadow/desired");
	free(t);
	assert_int_equal(fl_topic_build("fleet", "d", FL_TOPIC_DIAG_RESP,
					"fleetd", &t, NULL),
			 0);
	assert_string_equal(t, "fleet/d/diag/resp/fleetd");
	free(t);
}

static void test_build_refuses(void **state)
{
	static const char *const ids[] = {"+", "#",   "a/b", "dev+", "de#v",
					  "",  "Dev", "-a",  "a b"};
	char *t = (char *)"untouched";
	struct fl_error err = {0};

	/* wildcards and levels in ids: the ACL bypass of DESIGN 3 */
	for (size_t i = 0; i < FL_ARRAY_SIZE(ids); i++) {
		assert_int_equal(fl_topic_build("fleet", ids[i], FL_TOPIC_CMD,
						NULL, &t, NULL),
				 FL_EINVAL);
		assert_int_equal(fl_topic_build("fleet", "d",
						FL_TOPIC_DIAG_RESP, ids[i], &t,
						NULL),
				 FL_EINVAL);
	}
	assert_int_equal(
	    fl_topic_build("fleet", NULL, FL_TOPIC_CMD, NULL, &t, NULL),
	    FL_EINVAL);
	assert_int_equal(
	    fl_topic_build("a/b", "d", FL_TOPIC_CMD, NULL, &t, &err),
	    FL_EINVAL);
	assert_non_null(strstr(err.msg, "a/b"));
	assert_int_equal(
	    fl_topic_build("fleet", "d", FL_TOPIC_NKINDS, NULL, &t, NULL),
	    FL_EINVAL);
	assert_int_equal(fl_topic_build("fleet", "d", -1, NULL, &t, NULL),
			 FL_EINVAL);
	/* a last level only where the kind has one */
	assert_int_equal(
	    fl_topic_build("fleet", "d", FL_TOPIC_CMD, "x", &t, NULL),
	    FL_EINVAL);
	assert_int_equal(
	    fl_topic_build("fleet", "d", FL_TOPIC_DIAG_RESP, NULL, &t, NULL),
	    FL_EINVAL);
	assert_string_equal(t, "untouched");
}

static void test_filters(void **state)
{
	char *t = NULL;

	assert_int_equal(fl_topic_filter("acme", FL_TOPIC_EVENTS, &t, NULL), 0);
	assert_string_equal(t, "acme/+/events");
	free(t);
	assert_int_equal(fl_topic_filter("acme", FL_TOPIC_DIAG_RESP, &t, NULL),
			 0);
	assert_string_equal(t, "acme/+/diag/resp/+");
	free(t);
	assert_int_equal(fl_topic_all("acme", &t, NULL), 0);
	assert_string_equal(t, "acme/#");
	free(t);
	assert_int_equal(fl_topic_all("#", &t, NULL), FL_EINVAL);
	assert_int_equal(fl_topic_filter("+", FL_TOPIC_CMD, &t, NULL),
			 FL_EINVAL);
	assert_int_equal(fl_topic_filter("a", FL_TOPIC_NKINDS, &t, NULL),
			 FL_EINVAL);
}

/* Every kind: build, then parse back to the same id and kind. */
static void test_round_trip(void **state)
{
	for (int k = 0; k < FL_TOPIC_NKINDS; k++) {
		const struct fl_topic_info *ti = fl_topic_info(k);
		char id[FL_ID_MAX + 1], *t = NULL;
		enum fl_topic_kind kind;
		const char *sub = "x";

		assert_non_null(ti);
		assert_int_equal(ti->kind, k);
		assert_true(strlen(ti->leaf) <= FL_TOPIC_LEAF_MAX);
		assert_int_equal(fl_topic_build("acme", "dev-9", k,
						ti->sub_level ? "req-1" : NULL,
						&t, NULL),
				 0);
		assert_int_equal(
		    fl_topic_parse("acme", t, id, &kind, &sub, NULL), 0);
		assert_string_equal(id, "dev-9");
		assert_int_equal(kind, k);
		if (ti->sub_level)
			assert_string_equal(sub, "req-1");
		else
			assert_null(sub);
		/* another prefix is another fleet */
		assert_int_equal(
		    fl_topic_parse("fleet", t, id, &kind, NULL, NULL),
		    FL_EPARSE);
		free(t);
	}
	assert_null(fl_topic_info(FL_TOPIC_NKINDS));
}

static void test_parse_refuses(void **state)
{
	static const char *const bad[] = {
	    "acme",
	    "acme/",
	    "acme/dev",
	    "acme//status",
	    "acme/+/status",
	    "acme/#",
	    "acme/Dev/status",
	    "acme/dev/status/",
	    "acme/dev/statusx",
	    "acme/dev/stat",
	    "acme/dev/diag/resp",
	    "acme/dev/diag/resp/",
	    "acme/dev/diag/resp/+",
	    "acme/dev/diag/resp/a/b",
	    "acmex/dev/status",
	    "acm/dev/status",
	    "fleet/dev/status",
	    "/acme/dev/status",
	    "acme/dev/unknown",
	};
	char id[FL_ID_MAX + 1] = "keep", big[FL_TOPIC_MAX + 64];
	enum fl_topic_kind kind = FL_TOPIC_NKINDS;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_int_equal(
		    fl_topic_parse("acme", bad[i], id, &kind, NULL, NULL),
		    FL_EPARSE);
	/* an id one over the cap */
	snprintf(big, sizeof(big), "acme/%0*d/status", FL_ID_MAX + 1, 0);
	assert_int_equal(fl_topic_parse("acme", big, id, &kind, NULL, NULL),
			 FL_EPARSE);
	/* a topic over the cap, however it goes on */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "acme/d/", 7);
	assert_int_equal(fl_topic_parse("acme", big, id, &kind, NULL, NULL),
			 FL_ELIMIT);
	/* outputs untouched on failure */
	assert_string_equal(id, "keep");
	assert_int_equal(kind, FL_TOPIC_NKINDS);
	/* the longest legal topic parses */
	{
		char prefix[FL_TOPIC_PREFIX_MAX + 1], topic[FL_TOPIC_MAX + 1];
		const char *sub = NULL;

		memset(prefix, 'p', FL_TOPIC_PREFIX_MAX);
		prefix[FL_TOPIC_PREFIX_MAX] = '\0';
		snprintf(topic, sizeof(topic), "%s/%0*d/diag/resp/%0*d", prefix,
			 FL_ID_MAX, 0, FL_ID_MAX, 1);
		assert_int_equal(
		    fl_topic_parse(prefix, topic, id, &kind, &sub, NULL), 0);
		assert_int_equal(kind, FL_TOPIC_DIAG_RESP);
		assert_int_equal(strlen(sub), FL_ID_MAX);
	}
}

static void test_job_states(void **state)
{
	static const char *const finals[] = {
	    "succeeded", "failed", "rolled-back", "cancelled", "expired"};
	size_t n_final = 0;

	for (int s = FL_JOB_QUEUED; s < FL_JOB_STATE_END; s++) {
		const char *name = fl_job_state_name(s);

		assert_string_not_equal(name, "unknown");
		assert_int_equal(fl_job_state_parse(name), s);
		assert_int_equal(fl_job_state_name_final(name),
				 fl_job_state_final(s));
		n_final += fl_job_state_final(s);
		/* every state is set by someone */
		assert_true(fl_job_state_flags(s) &
			    (FL_JOB_DEVICE | FL_JOB_SERVER | FL_JOB_LOCAL));
	}
	assert_int_equal(n_final, FL_ARRAY_SIZE(finals));
	for (size_t i = 0; i < FL_ARRAY_SIZE(finals); i++)
		assert_true(fl_job_state_name_final(finals[i]));
	assert_false(fl_job_state_name_final("health-check"));
	assert_false(fl_job_state_name_final("reverting"));
	assert_false(fl_job_state_name_final("Succeeded"));
	assert_false(fl_job_state_name_final(NULL));
	assert_int_equal(fl_job_state_parse("nope"), 0);
	assert_int_equal(fl_job_state_parse(NULL), 0);
	assert_string_equal(fl_job_state_name(0), "unknown");
	assert_string_equal(fl_job_state_name(FL_JOB_STATE_END), "unknown");
	assert_int_equal(fl_job_state_flags(FL_JOB_STATE_END), 0);
	/* the journal-only state never goes on the wire; fleetd's own
	 * states never come from a device */
	assert_int_equal(fl_job_state_flags(FL_JOB_REVERTING), FL_JOB_LOCAL);
	assert_false(fl_job_state_flags(FL_JOB_CANCELLED) & FL_JOB_DEVICE);
	assert_false(fl_job_state_flags(FL_JOB_EXPIRED) & FL_JOB_DEVICE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_valid),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_build_refuses),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_parse_refuses),
	    cmocka_unit_test(test_job_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
