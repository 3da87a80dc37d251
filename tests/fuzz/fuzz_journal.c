/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the agent's OTA journal (agent/journal.c, STATE_DIR/ota.json):
 * parsing with every field validated, and the round trip through what
 * the agent writes: parse -> agent_journal_to_json -> parse must give
 * the same values, and so must agent_journal_save -> agent_journal_load
 * on a file (after save stamped the job's "updated").  A failure reason
 * set from arbitrary bytes (agent_job_set_outcome) must still write a
 * journal that loads.
 *
 * Input: the journal text; after a "%%" line (fuzz.h), an optional
 * failure reason to record before writing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "journal.h"
#include "json.h"
#include "util.h"

static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	path = fl_path_join(fuzz_tmpdir(), AGENT_JOURNAL_FILE);
	return 0;
}

#define SAME_STR(a, b) FUZZ_ASSERT(strcmp((a), (b)) == 0)

static void same_slot(const struct agent_slot_info *a,
		      const struct agent_slot_info *b)
{
	SAME_STR(a->version, b->version);
	FUZZ_ASSERT(a->has_security_version == b->has_security_version);
	FUZZ_ASSERT(!a->has_security_version ||
		    a->security_version == b->security_version);
	FUZZ_ASSERT(a->good == b->good);
}

static void same_job(const struct agent_job *a, const struct agent_job *b,
		     bool same_updated)
{
	SAME_STR(a->id, b->id);
	SAME_STR(a->cmd, b->cmd);
	FUZZ_ASSERT(a->type == b->type && a->state == b->state);
	if (a->type == AGENT_JOB_UPDATE) {
		SAME_STR(a->bundle_id, b->bundle_id);
		SAME_STR(a->bundle_name, b->bundle_name);
		SAME_STR(a->sha256, b->sha256);
		SAME_STR(a->url, b->url);
		FUZZ_ASSERT(a->size == b->size);
	}
	FUZZ_ASSERT(a->has_security_version == b->has_security_version);
	FUZZ_ASSERT(!a->has_security_version ||
		    a->security_version == b->security_version);
	SAME_STR(a->from_slot, b->from_slot);
	SAME_STR(a->target_slot, b->target_slot);
	SAME_STR(a->from_version, b->from_version);
	SAME_STR(a->to_version, b->to_version);
	FUZZ_ASSERT(a->bytes == b->bytes && a->fetched == b->fetched);
	FUZZ_ASSERT(a->slot_bytes == b->slot_bytes);
	FUZZ_ASSERT(a->attempts == b->attempts);
	SAME_STR(a->reboot_from, b->reboot_from);
	SAME_STR(a->stage, b->stage);
	SAME_STR(a->reason, b->reason);
	FUZZ_ASSERT(a->started == b->started);
	FUZZ_ASSERT(!same_updated || a->updated == b->updated);
}

static void same(const struct agent_journal *a, const struct agent_journal *b,
		 bool same_updated)
{
	FUZZ_ASSERT(a->floor == b->floor);
	same_slot(&a->slots[0], &b->slots[0]);
	same_slot(&a->slots[1], &b->slots[1]);
	FUZZ_ASSERT(a->has_job == b->has_job);
	if (a->has_job)
		same_job(&a->job, &b->job, same_updated);
}

/* parse -> write (the agent's JSON) -> parse */
static void round_trip(const struct agent_journal *j)
{
	json_t *doc = agent_journal_to_json(j);
	char *text = fl_json_dumps(doc);
	struct agent_journal again = {0};
	struct fl_error err = {0};

	json_decref(doc);
	if (agent_journal_parse(text, strlen(text), &again, &err)) {
		fprintf(stderr,
			"fuzz: written journal does not parse: %s\n%s\n",
			err.msg, text);
		__builtin_trap();
	}
	same(j, &again, true);
	free(text);
}

/* The agent's own write and read, through the file. */
static void save_load(struct agent_journal *j)
{
	struct agent_journal again = {0};
	struct fl_error err = {0};

	FUZZ_ASSERT(agent_journal_save(path, j, &err) == 0);
	if (agent_journal_load(path, &again, &err)) {
		fprintf(stderr, "fuzz: saved journal does not load: %s\n",
			err.msg);
		__builtin_trap();
	}
	same(j, &again, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[2];
	size_t n = fuzz_split(data, size, parts, 2);
	struct agent_journal j = {0};
	char *reason;
	int rc;

	rc = agent_journal_parse(parts[0].p, parts[0].len, &j, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		return 0;
	}
	round_trip(&j);
	if (n == 2 && j.has_job) {
		reason = fuzz_strndup(&parts[1]);
		agent_job_set_outcome(&j.job, "download", reason);
		free(reason);
		round_trip(&j);
	}
	save_load(&j);
	return 0;
}
