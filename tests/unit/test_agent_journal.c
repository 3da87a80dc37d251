/* SPDX-License-Identifier: MIT */
/*
 * agent/journal: the OTA journal round-trips through its file, a
 * missing file is an empty journal, and every malformed, inconsistent
 * or oversized document is refused (it would otherwise be acted on
 * after a restart).  Run under valgrind too:
 *   valgrind --error-exitcode=1 build/tests/unit/test_agent_journal
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "journal.h"
#include "json.h"
#include "util.h"

#define SHA "3c857450b3b0e7b916b1dda2636c6f9a7e8c7cfe0252db5fdda1806607808664"

static int setup(void **state)
{
	char *dir = fl_xstrdup("/tmp/fleet-journal-XXXXXX");

	assert_non_null(mkdtemp(dir));
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	test_rmtree(*state);
	free(*state);
	return 0;
}

/* A journal with an update in the middle of its download. */
static void sample(struct agent_journal *j)
{
	struct agent_job *job = &j->job;

	memset(j, 0, sizeof(*j));
	j->floor = 3;
	fl_strlcpy(j->slots[0].version, "1.0.0", sizeof(j->slots[0].version));
	j->slots[0].has_security_version = true;
	j->slots[0].security_version = 3;
	j->has_job = true;
	fl_strlcpy(job->id, "j-1f9d512f37ead88c", sizeof(job->id));
	fl_strlcpy(job->cmd, "c-96643d9d3cac996f", sizeof(job->cmd));
	job->type = AGENT_JOB_UPDATE;
	job->state = AGENT_JOB_DOWNLOADING;
	fl_strlcpy(job->bundle_id, "3c857450b3b0e7b9", sizeof(job->bundle_id));
	fl_strlcpy(job->bundle_name, "fleet-sample", sizeof(job->bundle_name));
	fl_strlcpy(job->sha256, SHA, sizeof(job->sha256));
	job->size = 10003968;
	fl_strlcpy(job->url, "/api/v1/bundles/3c857450b3b0e7b9/download",
		   sizeof(job->url));
	fl_strlcpy(job->mirror,
		   "https://mirror.example:8443/fleet/3c857450b3b0e7b9.fwb",
		   sizeof(job->mirror));
	job->mirror_off = true;
	fl_strlcpy(job->from_slot, "a", sizeof(job->from_slot));
	fl_strlcpy(job->target_slot, "b", sizeof(job->target_slot));
	fl_strlcpy(job->from_version, "1.0.0", sizeof(job->from_version));
	fl_strlcpy(job->to_version, "1.1.0-rc.1", sizeof(job->to_version));
	job->bytes = 4194304;
	job->slot_bytes = 4124160;
	job->fetched = 5000000;
	job->attempts = 2;
	fl_strlcpy(job->reboot_from, "sim-4", sizeof(job->reboot_from));
	job->started = 1764132660;
}

static char *jpath(void **state)
{
	return fl_path_join(*state, AGENT_JOURNAL_FILE);
}

static void test_round_trip(void **state)
{
	struct agent_journal j, back;
	struct fl_error err = {0};
	char *p = jpath(state);
	struct stat st;

	sample(&j);
	assert_int_equal(agent_journal_save(p, &j, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(j.job.updated >= j.job.started);
	assert_int_equal(agent_journal_load(p, &back, &err), 0);
	assert_memory_equal(&j, &back, sizeof(j));
	/* a finished job with its outcome */
	j.job.state = AGENT_JOB_FAILED;
	agent_job_set_outcome(&j.job, "verifying",
			      "payload hash mismatch: 'image'");
	assert_int_equal(agent_journal_save(p, &j, &err), 0);
	assert_int_equal(agent_journal_load(p, &back, &err), 0);
	assert_string_equal(back.job.stage, "verifying");
	assert_string_equal(back.job.reason, "payload hash mismatch: 'image'");
	assert_true(agent_job_state_final(back.job.state));
	/* a rollback has no bundle */
	memset(&j.job.bundle_id, 0, sizeof(j.job.bundle_id));
	j.job.type = AGENT_JOB_ROLLBACK;
	j.job.size = 0;
	j.job.bytes = j.job.slot_bytes = 0;
	assert_int_equal(agent_journal_save(p, &j, &err), 0);
	assert_int_equal(agent_journal_load(p, &back, &err), 0);
	assert_int_equal(back.job.type, AGENT_JOB_ROLLBACK);
	/* no job at all */
	j.has_job = false;
	assert_int_equal(agent_journal_save(p, &j, &err), 0);
	assert_int_equal(agent_journal_load(p, &back, &err), 0);
	assert_false(back.has_job);
	assert_int_equal(back.floor, 3);
	free(p);
}

static void test_missing_is_empty(void **state)
{
	struct agent_journal j;
	struct fl_error err = {0};
	char *p = jpath(state);

	memset(&j, 0xa5, sizeof(j));
	assert_int_equal(agent_journal_load(p, &j, &err), 0);
	assert_false(j.has_job);
	assert_int_equal(j.floor, 0);
	assert_string_equal(j.slots[0].version, "");
	assert_string_equal(j.slots[1].version, "");
	free(p);
}

/* The sample as JSON text with @key of the job replaced by @value
 * (JSON text; NULL removes it). */
static char *sample_with(const char *key, const char *value)
{
	struct agent_journal j;
	json_t *doc, *job, *v;
	char *s;

	sample(&j);
	doc = agent_journal_to_json(&j);
	job = json_object_get(doc, "job");
	if (value) {
		v = json_loads(value, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		json_object_set_new(
		    strchr(key, '.') ? json_object_get(job, "bundle") : job,
		    strchr(key, '.') ? strchr(key, '.') + 1 : key, v);
	} else {
		json_object_del(
		    strchr(key, '.') ? json_object_get(job, "bundle") : job,
		    strchr(key, '.') ? strchr(key, '.') + 1 : key);
	}
	s = fl_json_dumps(doc);
	json_decref(doc);
	return s;
}

static void refuse(const char *key, const char *value, int want)
{
	struct agent_journal j;
	struct fl_error err = {0};
	char *text = sample_with(key, value);
	int rc = agent_journal_parse(text, strlen(text), &j, &err);

	if (rc != want)
		fail_msg("%s = %s: got %d (%s), want %d", key,
			 value ? value : "(removed)", rc, err.msg, want);
	free(text);
}

static void test_refusals(void **state)
{
	refuse("state", "\"sleeping\"", FL_EPARSE);
	refuse("state", "7", FL_EPARSE);
	refuse("type", "\"reboot\"", FL_EPARSE);
	refuse("id", "\"j 1\"", FL_EPARSE);
	refuse("id", NULL, FL_EPARSE);
	refuse("cmd", "\"c/1\"", FL_EPARSE);
	refuse("target_slot", "\"c\"", FL_EPARSE);
	refuse("target_slot", "\"a\"", FL_EPARSE); /* = from_slot */
	refuse("from_slot", NULL, FL_EPARSE);
	refuse("from_version", "\"1.0\"", FL_EPARSE);
	refuse("to_version", "\"01.0.0\"", FL_EPARSE);
	refuse("bytes", "20000000", FL_EPARSE); /* more than the size */
	refuse("bytes", "-1", FL_EPARSE);
	refuse("fetched", "9007199254740993", FL_EPARSE);
	refuse("attempts", "1000001", FL_EPARSE);
	refuse("slot_bytes", "4194305", FL_EPARSE); /* more than held */
	refuse("slot_bytes", "-1", FL_EPARSE);
	/* journals written before slot_bytes, with the partial file's
	 * boot id: they load, as a checkpoint with nothing in the slot */
	refuse("slot_bytes", NULL, 0);
	refuse("partial_boot", "\"df57223a-8a3f-46ff-984c-6c5497ae996f\"", 0);
	refuse("reason", "\"line\\nbreak\"", FL_EPARSE);
	refuse("stage", "\"Verifying\"", FL_EPARSE);
	refuse("started", "\"yesterday\"", FL_EPARSE);
	refuse("bundle.sha256", "\"XYZ\"", FL_EPARSE);
	refuse("bundle.id", "\"../../etc\"", FL_EPARSE);
	refuse("bundle.url", "\"/api/v1/../../x\"", FL_EPARSE);
	refuse("bundle.url", "\"https://evil.example/x\"", FL_EPARSE);
	refuse("bundle.mirror", "\"http://m.example/a.fwb\"", FL_EPARSE);
	refuse("bundle.mirror", "\"https://u@m.example/a.fwb\"", FL_EPARSE);
	refuse("bundle.mirror", "\"https://m.example/../a.fwb\"", FL_EPARSE);
	refuse("bundle.mirror", NULL, 0); /* journals before mirrors */
	refuse("bundle.mirror_off", NULL, 0);
	refuse("bundle.size", "0", FL_EPARSE);
	refuse("bundle.size", "4398046511105", FL_EPARSE);
	refuse("bundle.name", "\"a/b\"", FL_EPARSE);
	refuse("bundle", "null", FL_EPARSE);
	refuse("reason", "\"x\"", 0);
}

static void test_refusals_top(void **state)
{
	struct agent_journal j;
	struct fl_error err = {0};
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"format\": 1}",
	    "{\"format\": 2, \"floor\": 0, \"slots\": {\"a\": {}, \"b\": {}}}",
	    "{\"format\": 1, \"floor\": -1, \"slots\": {\"a\": {}, \"b\": {}}}",
	    "{\"format\": 1, \"floor\": 0, \"slots\": {\"a\": {}}}",
	    "{\"format\": 1, \"floor\": 0, \"slots\": {\"a\": {\"version\": "
	    "\"x\"}, \"b\": {}}}",
	    "{\"format\": 1, \"floor\": 0, \"slots\": {\"a\": {}, \"b\": {}}, "
	    "\"job\": 5}",
	    "{\"format\": 1, \"format\": 1}",
	};
	const char *ok =
	    "{\"format\": 1, \"floor\": 0, \"slots\": {\"a\": {}, "
	    "\"b\": {\"version\": \"2.0.0\", \"security_version\": "
	    "4}}, \"job\": null}";

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		fl_error_clear(&err);
		if (!agent_journal_parse(bad[i], strlen(bad[i]), &j, &err))
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(agent_journal_parse(ok, strlen(ok), &j, &err), 0);
	assert_string_equal(j.slots[1].version, "2.0.0");
	assert_int_equal(j.slots[1].security_version, 4);
	assert_false(j.slots[0].has_security_version);
}

static void test_oversized(void **state)
{
	struct agent_journal j;
	struct fl_error err = {0};
	size_t n = AGENT_JOURNAL_MAX + 10;
	char *big = fl_xmalloc(n + 1), *p = jpath(state);

	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(agent_journal_parse(big, n, &j, &err), FL_ELIMIT);
	assert_int_equal(fl_write_atomic(p, big, n, 0600, NULL), 0);
	fl_error_clear(&err);
	assert_int_equal(agent_journal_load(p, &j, &err), FL_ELIMIT);
	free(big);
	free(p);
}

/* A torn file (cut anywhere) never loads as something else. */
static void test_truncated(void **state)
{
	struct agent_journal j, back;
	struct fl_error err = {0};
	char *p = jpath(state), *text;
	size_t len;

	sample(&j);
	assert_int_equal(agent_journal_save(p, &j, &err), 0);
	assert_int_equal(fl_read_file(p, AGENT_JOURNAL_MAX, &text, &len, &err),
			 0);
	for (size_t cut = 0; cut + 2 < len; cut += 7) {
		fl_error_clear(&err);
		assert_int_not_equal(
		    agent_journal_parse(text, cut, &back, &err), 0);
	}
	free(text);
	free(p);
}

static void test_outcome_sanitised(void **state)
{
	struct agent_job job = {0};
	char long_reason[2000];

	agent_job_set_outcome(&job, "installing", "bad\tbyte\x01 and \xc3\xa9");
	assert_string_equal(job.stage, "installing");
	assert_string_equal(job.reason, "bad?byte? and ??");
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	agent_job_set_outcome(&job, NULL, long_reason);
	assert_int_equal(strlen(job.reason), AGENT_REASON_MAX);
	assert_string_equal(job.stage, "");
	agent_job_set_outcome(&job, NULL, NULL);
	assert_string_equal(job.reason, "");
}

static void test_names(void **state)
{
	for (int s = AGENT_JOB_QUEUED; s <= AGENT_JOB_ROLLED_BACK; s++)
		assert_int_equal(agent_job_state_parse(agent_job_state_name(s)),
				 s);
	assert_int_equal(agent_job_state_parse("nope"), 0);
	assert_int_equal(agent_job_state_parse(NULL), 0);
	assert_string_equal(agent_job_state_name(0), "unknown");
	assert_string_equal(agent_job_state_name(AGENT_JOB_HEALTH_CHECK),
			    "health-check");
	assert_false(agent_job_state_final(AGENT_JOB_REVERTING));
	assert_true(agent_job_state_final(AGENT_JOB_ROLLED_BACK));
	assert_string_equal(agent_job_type_name(AGENT_JOB_ROLLBACK),
			    "rollback");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_is_empty, setup,
					    teardown),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_refusals_top),
	    cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test(test_outcome_sanitised),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
