/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the agent's command parser and its command log (agent/cmd.c):
 * fleetd's payloads on fleet/ID/cmd, and STATE_DIR/commands.json, which
 * makes commands idempotent across restarts.
 *
 * Input: the command log file as found on disk (empty: none), then up
 * to 8 command payloads, separated by "%%" lines (fuzz.h).  The log is
 * opened with a small capacity (1..5, from the input size) so that
 * eviction runs; a log that does not load is deleted and started empty,
 * as the agent does.  Each command goes the way agent.c takes it: an
 * "ack" is not logged; a known id is looked up; a new one is begun and
 * (every other one) finished with its outcome event.  The log must hold
 * what was done to it, in memory and, after reopening the file it
 * wrote, on disk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fuzz.h"
#include "json.h"
#include "util.h"
#include "validate.h"

#define MAX_CMDS 8

static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	path = fl_path_join(fuzz_tmpdir(), AGENT_CMD_LOG_FILE);
	return 0;
}

static struct agent_cmd_log *open_log(const struct fuzz_part *file, size_t cap)
{
	struct agent_cmd_log *log = NULL;
	int rc;

	unlink(path);
	if (file->len)
		fuzz_write_file(path, file->p, file->len);
	rc = agent_cmd_log_open(path, cap, &log, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		unlink(path);
		FUZZ_ASSERT(agent_cmd_log_open(path, cap, &log, NULL) == 0);
	}
	FUZZ_ASSERT(agent_cmd_log_count(log) <= cap);
	return log;
}

/* One command, as agent.c handles it. */
static void handle(struct agent_cmd_log *log, const struct fuzz_part *p,
		   size_t cap, bool finish)
{
	struct agent_cmd cmd = {0};
	enum agent_cmd_state st;
	const json_t *ev = NULL;
	json_t *out;
	int rc;

	rc = agent_cmd_parse(p->p, p->len, &cmd, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		FUZZ_ASSERT(cmd.args == NULL);
		return;
	}
	FUZZ_ASSERT(fl_valid_label(cmd.id) && cmd.type[0]);
	FUZZ_ASSERT(json_is_object(cmd.args));
	if (fl_streq(cmd.type, AGENT_ACK_TYPE)) {
		agent_cmd_release(&cmd);
		return;
	}
	if (agent_cmd_log_get(log, cmd.id, &st, &ev) == 0) {
		FUZZ_ASSERT(st == AGENT_CMD_RUNNING || st == AGENT_CMD_DONE);
		FUZZ_ASSERT((st == AGENT_CMD_DONE) == json_is_object(ev));
		FUZZ_ASSERT(agent_cmd_log_begin(log, cmd.id, cmd.type, NULL) ==
			    FL_ECONFLICT);
		agent_cmd_release(&cmd);
		return;
	}
	FUZZ_ASSERT(agent_cmd_log_begin(log, cmd.id, cmd.type, NULL) == 0);
	FUZZ_ASSERT(agent_cmd_log_count(log) <= cap);
	FUZZ_ASSERT(agent_cmd_log_get(log, cmd.id, &st, &ev) == 0 &&
		    st == AGENT_CMD_RUNNING && ev == NULL);
	if (finish) {
		out =
		    json_pack("{s:s, s:s, s:s, s:O}", "cmd", cmd.id, "type",
			      cmd.type, "state", "succeeded", "args", cmd.args);
		rc = agent_cmd_log_finish(log, cmd.id, out, NULL);
		FUZZ_ASSERT(rc == 0 || rc == FL_ELIMIT);
		FUZZ_ASSERT(agent_cmd_log_get(log, cmd.id, &st, &ev) == 0);
		FUZZ_ASSERT(rc ? st == AGENT_CMD_RUNNING
			       : st == AGENT_CMD_DONE && json_equal(ev, out));
		json_decref(out);
	}
	agent_cmd_release(&cmd);
}

/* The file the log wrote loads back to the same entries. */
static void reopen_same(struct agent_cmd_log *log, size_t cap)
{
	struct agent_cmd_log *again = NULL;
	const char *id, *id2, *type, *type2;
	size_t it = 0, it2 = 0;

	if (agent_cmd_log_count(log) == 0 && access(path, F_OK) != 0)
		return; /* nothing was ever written */
	FUZZ_ASSERT(agent_cmd_log_open(path, cap, &again, NULL) == 0);
	FUZZ_ASSERT(agent_cmd_log_count(again) == agent_cmd_log_count(log));
	while ((id = agent_cmd_log_next_running(log, &it, &type))) {
		id2 = agent_cmd_log_next_running(again, &it2, &type2);
		FUZZ_ASSERT(id2 && fl_streq(id, id2) && fl_streq(type, type2));
	}
	FUZZ_ASSERT(!agent_cmd_log_next_running(again, &it2, &type2));
	agent_cmd_log_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[1 + MAX_CMDS];
	size_t n = fuzz_split(data, size, parts, 1 + MAX_CMDS);
	size_t cap = 1 + size % 5;
	struct agent_cmd_log *log = open_log(&parts[0], cap);

	for (size_t i = 1; i < n; i++)
		handle(log, &parts[i], cap, i % 2 == 1);
	reopen_same(log, cap);
	agent_cmd_log_free(log);
	return 0;
}
