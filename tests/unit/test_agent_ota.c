/* SPDX-License-Identifier: MIT */
/*
 * agent/ota: the update state machine in one process, with a real
 * mosquitto (agent_fixture.h), a simulated device (sim.c) and bundles
 * signed in the test.  fleetd is not running: a job starts from a
 * journal (as after a restart), and the bundle comes from an HTTPS
 * server in the test (https_fixture.h) with the broker's certificate.
 * Then the decisions after a restart: every combination of journal
 * state, bootloader variables and "has a reboot happened" that kill -9
 * or a power cut can leave, and what the agent makes of it.
 */
#include "agent_fixture.h"
#include "fsig_fixture.h"
#include "https_fixture.h"

#include <jansson.h>

#include "agent.h"
#include "agent_config.h"
#include "boot.h"
#include "feature.h"
#include "journal.h"
#include "json.h"
#include "ota.h"
#include "ota_internal.h"
#include "simdev.h"
#include "trust.h"

#define EVENTS "fleet/dev-1/events"
#define CMD_ID "c-ota-1"
#define UPD_FMT                                                                \
	"{\"id\":\"%s\",\"type\":\"update\",\"args\":{\"job\":\"j-2\","        \
	"\"bundle\":{\"id\":\"abcdef01\",\"name\":\"fleet-sample\","           \
	"\"version\":\"1.1.0\",\"sha256\":\"%s\",\"size\":100,"                \
	"\"url\":\"/api/v1/bundles/abcdef01/download\"}}}"

static const char fw_good[] = "#!/bin/sh\n"
			      "case \"$1\" in --version) echo %s;;\n"
			      "--selftest) echo ok;; esac\nexit 0\n";
static const char fw_bad[] = "#!/bin/sh\n"
			     "case \"$1\" in --version) echo %s;;\n"
			     "--selftest) echo sensor bus dead >&2; exit 1;;"
			     " esac\nexit 0\n";

struct ofx {
	struct afx *f;
	char *state, *sim, *journal, *head;
	struct hfx_server srv; /* serves @served */
	char *served;
	struct agent_config *cfg;
	struct agent *a;
	struct afx_observer obs;
	struct fsig_key *key;
};

/* ---- set-up ---- */

/* A firmware "program": a shell script answering --version/--selftest. */
static char *firmware(struct ofx *o, const char *name, const char *version,
		      bool healthy)
{
	char *path = afx_path(o->f, name);
	char *text = fl_xasprintf(healthy ? fw_good : fw_bad, version);

	assert_int_equal(fl_write_atomic_str(path, text, 0755, NULL), 0);
	free(text);
	return path;
}

static void make_config(struct ofx *o, const char *extra)
{
	struct fl_error err = {0};
	char *text;

	text = fl_xasprintf("[device]\nid = dev-1\nstate_dir = state\n"
			    "[server]\nurl = https://127.0.0.1:%d\n"
			    "timeout = 2s\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "reconnect_min = 1\nreconnect_max = 2\n"
			    "[health]\ntimeout = 20s\n%s",
			    hfx_port(&o->srv), o->f->port, extra ? extra : "");
	agent_config_free(o->cfg);
	o->cfg = NULL;
	assert_int_equal(
	    agent_config_parse(text, o->f->dir, NULL, &o->cfg, &err), 0);
	assert_int_equal(agent_config_set_sim(o->cfg, o->sim, &err), 0);
	free(text);
}

/* A file of the fixture (the broker's key and certificate, which the
 * download server reuses: the agent pins their root). */
static char *read_fixture(struct ofx *o, const char *name)
{
	char *p = afx_path(o->f, name), *text = NULL;

	assert_int_equal(fl_read_file(p, 1 << 16, &text, NULL, NULL), 0);
	free(p);
	return text;
}

static int setup(void **state)
{
	struct ofx *o = fl_xcalloc(1, sizeof(*o));
	struct fsig_root *root;
	struct fsig_key *keys[1];
	char *fw, *rootp;

	afx_setup((void **)&o->f);
	o->state = afx_path(o->f, "state");
	o->sim = afx_path(o->f, "sim");
	assert_int_equal(fl_mkdir_p(o->state, 0700, NULL), 0);
	afx_copy_file(o->f, "dev-1.key", o->state, "key.pem", 0600);
	afx_copy_file(o->f, "dev-1.pem", o->state, "cert.pem", 0644);
	afx_copy_file(o->f, "issuing.pem", o->state, "chain.pem", 0644);
	afx_copy_file(o->f, "root.pem", o->state, "ca.pem", 0644);
	o->journal = fl_path_join(o->state, AGENT_JOURNAL_FILE);
	o->head = fl_path_join(o->state, AGENT_HEAD_FILE);
	fw = firmware(o, "fw-1.0.0", "1.0.0", true);
	assert_int_equal(agent_simdev_init(o->sim, fw, 3, NULL), 0);
	free(fw);
	o->key = new_key(FSIG_ALG_ED25519);
	keys[0] = o->key;
	root = make_root(keys, 1, 1, keys, 1, 1);
	rootp = fl_path_join(o->state, AGENT_ROOT_FILE);
	assert_int_equal(fsig_root_save(root, rootp, NULL), 0);
	fsig_root_free(root);
	free(rootp);
	o->srv.key_pem = read_fixture(o, "server.key");
	o->srv.cert_pem = read_fixture(o, "server.pem"); /* with its chain */
	hfx_start(&o->srv, NULL, 0);
	make_config(o, NULL);
	afx_observer_start(o->f, &o->obs, "fleet/#");
	*state = o;
	return 0;
}

static int teardown(void **state)
{
	struct ofx *o = *state;
	void *f = o->f;

	agent_free(o->a);
	agent_config_free(o->cfg);
	afx_observer_stop(&o->obs);
	fsig_key_free(o->key);
	free(o->state);
	free(o->sim);
	free(o->journal);
	free(o->head);
	hfx_stop(&o->srv);
	free(o->served);
	free(o);
	return afx_teardown(&f);
}

/* ---- helpers ---- */

/* Sign @payload as fleet-sample @version into @out; sha256 to @sha. */
static void make_bundle(struct ofx *o, const char *payload, const char *version,
			const char *out, char sha[65])
{
	static const char *const hw[] = {"sim"};
	struct fsig_payload_spec ps = {.path = payload, .name = "image"};
	struct fsig_bundle_spec spec = {
	    .name = "fleet-sample",
	    .version = version,
	    .security_version = 1,
	    .hardware = hw,
	    .n_hardware = 1,
	    .payloads = &ps,
	    .n_payloads = 1,
	    .keys = &o->key,
	    .n_keys = 1,
	};
	struct fsig_reader *r = NULL;
	struct fl_error err = {0};
	int fd;

	assert_int_equal(fsig_bundle_create(&spec, out, &err), 0);
	fd = open(out, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fsig_reader_open_fd(fd, &r, &err), 0);
	assert_int_equal(fsig_reader_inspect(r, &err), 0);
	fl_strlcpy(sha, fsig_reader_manifest_sha256(r), 65);
	fsig_reader_free(r);
	close(fd);
}

/* A journal whose update of @bundle (served by the test's HTTPS
 * server from now on) is at @state, nothing of it downloaded yet. */
static void journal_update(struct ofx *o, const char *bundle, const char *sha,
			   const char *version, enum agent_job_state state)
{
	struct agent_journal j = {0};
	struct agent_job *job = &j.job;
	struct stat st;
	size_t len;

	free(o->served);
	assert_int_equal(fl_read_file(bundle, 1 << 26, &o->served, &len, NULL),
			 0);
	o->srv.data = (unsigned char *)o->served;
	o->srv.size = len;
	assert_int_equal(stat(bundle, &st), 0);
	fl_strlcpy(j.slots[0].version, "1.0.0", sizeof(j.slots[0].version));
	j.has_job = true;
	fl_strlcpy(job->id, "j-1", sizeof(job->id));
	fl_strlcpy(job->cmd, CMD_ID, sizeof(job->cmd));
	job->type = AGENT_JOB_UPDATE;
	job->state = state;
	fl_strlcpy(job->bundle_id, "abcdef0123456789", sizeof(job->bundle_id));
	fl_strlcpy(job->bundle_name, "fleet-sample", sizeof(job->bundle_name));
	fl_strlcpy(job->sha256, sha, sizeof(job->sha256));
	job->size = (uint64_t)st.st_size;
	fl_strlcpy(job->url, "/api/v1/bundles/abcdef0123456789/download",
		   sizeof(job->url));
	fl_strlcpy(job->from_slot, "a", sizeof(job->from_slot));
	fl_strlcpy(job->target_slot, "b", sizeof(job->target_slot));
	fl_strlcpy(job->from_version, "1.0.0", sizeof(job->from_version));
	fl_strlcpy(job->to_version, version, sizeof(job->to_version));
	assert_int_equal(agent_journal_save(o->journal, &j, NULL), 0);
}

/* The command as running in the command log, as dispatch leaves it. */
static void log_running(struct ofx *o)
{
	char *p = fl_path_join(o->state, AGENT_CMD_LOG_FILE);
	struct agent_cmd_log *log = NULL;

	assert_int_equal(agent_cmd_log_open(p, 16, &log, NULL), 0);
	assert_int_equal(agent_cmd_log_begin(log, CMD_ID, "update", NULL), 0);
	agent_cmd_log_free(log);
	free(p);
}

static enum agent_cmd_state log_state(struct ofx *o)
{
	char *p = fl_path_join(o->state, AGENT_CMD_LOG_FILE);
	struct agent_cmd_log *log = NULL;
	enum agent_cmd_state st = 0;

	assert_int_equal(agent_cmd_log_open(p, 16, &log, NULL), 0);
	agent_cmd_log_get(log, CMD_ID, &st, NULL);
	agent_cmd_log_free(log);
	free(p);
	return st;
}

static struct agent_journal journal(struct ofx *o)
{
	struct agent_journal j;

	assert_int_equal(agent_journal_load(o->journal, &j, NULL), 0);
	return j;
}

static struct agent_boot_state boot_state(struct ofx *o)
{
	struct agent_boot_opts bo = {.backend = "sim", .path = o->sim};
	struct agent_boot *b = NULL;
	struct agent_boot_state st;

	assert_int_equal(agent_boot_open(&bo, &b, NULL), 0);
	assert_int_equal(agent_boot_read(b, &st, NULL), 0);
	agent_boot_close(b);
	return st;
}

/* Apply a bootloader transition directly, as an earlier run did. */
static void boot_do(struct ofx *o, int what)
{
	struct agent_boot_opts bo = {.backend = "sim", .path = o->sim};
	struct agent_boot *b = NULL;

	assert_int_equal(agent_boot_open(&bo, &b, NULL), 0);
	if (what == 's')
		assert_int_equal(agent_boot_prepare_switch(b, "b", NULL), 0);
	else if (what == 'g')
		assert_int_equal(agent_boot_mark_good(b, NULL), 0);
	else
		assert_int_equal(agent_boot_rollback(b, NULL, NULL), 0);
	agent_boot_close(b);
}

static void power_on(struct ofx *o)
{
	struct agent_simdev_boot b;

	agent_free(o->a);
	o->a = NULL;
	assert_int_equal(agent_simdev_power_on(o->sim, &b, NULL), 0);
}

static void start(struct ofx *o)
{
	struct fl_error err = {0};

	assert_int_equal(agent_new(o->cfg, &o->a, &err), 0);
}

/* Step the agent (and the observer) until the journal's job is at
 * @state or a reboot is asked for; 20 s at most. */
static bool run_to(struct ofx *o, enum agent_job_state state)
{
	int64_t end = fl_now_ms() + 20000;
	struct agent_journal j;

	while (fl_now_ms() < end) {
		agent_step(o->a, 20, NULL);
		agent_mqtt_step(o->obs.m, 5);
		j = journal(o);
		if ((j.has_job && j.job.state == state) ||
		    agent_reboot_requested(o->a))
			break;
	}
	afx_pump(o->obs.m, NULL, 100);
	j = journal(o);
	return j.has_job && j.job.state == state;
}

static bool saw_event(struct ofx *o, const char *state)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "\"state\":\"%s\"", state);
	return afx_find(&o->obs, EVENTS, needle) >= 0;
}

static void assert_slot_is(struct ofx *o, const char *slot, const char *file)
{
	char *p = fl_xasprintf("%s/slot-%s", o->sim, slot), *a, *b;
	size_t la, lb;

	assert_int_equal(fl_read_file(p, 1 << 26, &a, &la, NULL), 0);
	assert_int_equal(fl_read_file(file, 1 << 26, &b, &lb, NULL), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	free(p);
}

/* ---- the install pass and the whole update ---- */

static void wait_online(struct ofx *o);

/* A clean stop, so that what was published reaches the observer. */
static void drain(struct ofx *o)
{
	wait_online(o);
	assert_int_equal(agent_stop(o->a, 3000), 0);
	afx_pump(o->obs.m, NULL, 200);
}

static void test_update_succeeds(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.1.0", "1.1.0", true);
	char *bundle = afx_path(o->f, "b.fwb"), sha[65];
	struct agent_boot_state st;
	struct agent_journal j;

	make_bundle(o, fw, "1.1.0", bundle, sha);
	journal_update(o, bundle, sha, "1.1.0", AGENT_JOB_DOWNLOADING);
	log_running(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_REBOOTING));
	assert_true(agent_reboot_requested(o->a));
	drain(o);
	/* the install pass runs before the broker answers: of its progress
	 * events only the newest is sent (issue 17, test_agent_ack.c) */
	assert_true(saw_event(o, "rebooting"));
	assert_slot_is(o, "b", fw);
	st = boot_state(o);
	assert_string_equal(st.slot, "b");
	assert_true(st.upgrade_available);
	j = journal(o);
	assert_string_equal(j.slots[1].version, "1.1.0");
	assert_int_equal(access(o->head, F_OK), -1);
	assert_int_equal(j.job.fetched, j.job.size);
	/* the reboot */
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_SUCCEEDED));
	st = boot_state(o);
	assert_string_equal(st.slot, "b");
	assert_false(st.upgrade_available);
	assert_int_equal(journal(o).floor, 1);
	assert_int_equal(log_state(o), AGENT_CMD_DONE);
	drain(o);
	assert_true(saw_event(o, "succeeded"));
	free(fw);
	free(bundle);
}

/* A payload byte changed: refused at verifying, never bootable. */
static void test_bad_hash_never_bootable(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.1.0", "1.1.0", true);
	char *bundle = afx_path(o->f, "b.fwb"), sha[65];
	struct agent_boot_state st;
	struct agent_journal j;
	char *hit;

	make_bundle(o, fw, "1.1.0", bundle, sha);
	journal_update(o, bundle, sha, "1.1.0", AGENT_JOB_DOWNLOADING);
	/* one byte of the payload (the script's text), on the server */
	hit = memmem(o->served, o->srv.size, "selftest) echo ok", 17);
	assert_non_null(hit);
	hit[0] = 'S';
	start(o);
	assert_true(run_to(o, AGENT_JOB_FAILED));
	j = journal(o);
	assert_string_equal(j.job.stage, "verifying");
	assert_non_null(strstr(j.job.reason, "hash"));
	assert_string_equal(j.slots[1].version, "");
	st = boot_state(o);
	assert_string_equal(st.slot, "a");
	assert_false(st.upgrade_available);
	assert_string_equal(st.try_slot, "");
	assert_false(agent_reboot_requested(o->a));
	assert_int_equal(access(o->head, F_OK), -1);
	free(fw);
	free(bundle);
}

/* Another manifest than the command named: refused before the slot. */
static void test_wrong_manifest(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.1.0", "1.1.0", true);
	char *bundle = afx_path(o->f, "b.fwb"), sha[65], *slot_b;

	make_bundle(o, fw, "1.1.0", bundle, sha);
	sha[0] = sha[0] == '0' ? '1' : '0';
	journal_update(o, bundle, sha, "1.1.0", AGENT_JOB_QUEUED);
	start(o);
	assert_true(run_to(o, AGENT_JOB_FAILED));
	assert_string_equal(journal(o).job.stage, "verifying");
	assert_non_null(strstr(journal(o).job.reason, "manifest sha256"));
	slot_b = fl_path_join(o->sim, "slot-b");
	assert_int_equal(access(slot_b, F_OK), -1);
	free(slot_b);
	free(fw);
	free(bundle);
}

/* The health check fails: back to slot a, rolled-back. */
static void test_health_fails(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.2.0", "1.2.0", false);
	char *bundle = afx_path(o->f, "c.fwb"), sha[65];
	struct agent_boot_state st;
	struct agent_journal j;

	make_bundle(o, fw, "1.2.0", bundle, sha);
	journal_update(o, bundle, sha, "1.2.0", AGENT_JOB_QUEUED);
	start(o);
	assert_true(run_to(o, AGENT_JOB_REBOOTING));
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_REVERTING));
	assert_true(agent_reboot_requested(o->a));
	st = boot_state(o);
	assert_string_equal(st.slot, "a"); /* back to a, on trial */
	assert_true(st.upgrade_available);
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_ROLLED_BACK));
	j = journal(o);
	assert_non_null(strstr(j.job.reason, "sensor bus dead"));
	st = boot_state(o);
	assert_string_equal(st.slot, "a");
	assert_false(st.upgrade_available);
	assert_int_equal(j.floor, 0);
	free(fw);
	free(bundle);
}

/* ---- decisions after a restart ---- */

/* Journal and slot b as an install left them, at @state. */
static void installed_at(struct ofx *o, enum agent_job_state state,
			 const char *reboot_from)
{
	char *fw = firmware(o, "fw-1.1.0", "1.1.0", true);
	char *bundle = afx_path(o->f, "b.fwb"), *slot_b, sha[65];
	struct agent_journal j;

	make_bundle(o, fw, "1.1.0", bundle, sha);
	journal_update(o, bundle, sha, "1.1.0", state);
	slot_b = fl_path_join(o->sim, "slot-b");
	afx_copy_file(o->f, "fw-1.1.0", o->sim, "slot-b", 0755);
	j = journal(o);
	fl_strlcpy(j.slots[1].version, "1.1.0", sizeof(j.slots[1].version));
	fl_strlcpy(j.job.reboot_from, reboot_from, sizeof(j.job.reboot_from));
	assert_int_equal(agent_journal_save(o->journal, &j, NULL), 0);
	free(slot_b);
	free(fw);
	free(bundle);
}

/* Killed after "rebooting" was written, before the switch; no power
 * cycle since (same boot): switch now, then reboot. */
static void test_rebooting_no_switch_yet(void **state)
{
	struct ofx *o = *state;
	struct agent_simdev_boot b;

	assert_int_equal(agent_simdev_power_on(o->sim, &b, NULL),
			 0); /* sim-1 */
	installed_at(o, AGENT_JOB_REBOOTING, "sim-1");
	start(o);
	assert_true(run_to(o, AGENT_JOB_REBOOTING));
	assert_true(agent_reboot_requested(o->a));
	assert_true(boot_state(o).upgrade_available);
	assert_string_equal(boot_state(o).slot, "b");
}

/* Killed after the switch, then a power cycle: the new slot runs on
 * trial: health check, then good. */
static void test_rebooting_booted_new(void **state)
{
	struct ofx *o = *state;

	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	boot_do(o, 's');
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_SUCCEEDED));
	drain(o);
	assert_true(saw_event(o, "health-check"));
	assert_false(boot_state(o).upgrade_available);
	assert_string_equal(boot_state(o).slot, "b");
}

/* The new slot never confirmed: the bootloader went back by itself. */
static void test_bootloader_fell_back(void **state)
{
	struct ofx *o = *state;
	struct agent_boot_state st;

	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	boot_do(o, 's');
	for (int i = 0; i < 4; i++)
		power_on(o); /* bootcount 1, 2, 3, then over the limit */
	st = boot_state(o);
	assert_string_equal(st.slot, "a");
	assert_string_equal(st.try_slot, "b");
	start(o);
	assert_true(run_to(o, AGENT_JOB_ROLLED_BACK));
	assert_non_null(strstr(journal(o).job.reason, "bootloader fell back"));
	st = boot_state(o);
	assert_string_equal(st.try_slot, ""); /* acknowledged */
	assert_false(st.upgrade_available);
}

/* Killed after marking good, before the journal said so. */
static void test_marked_good_before_kill(void **state)
{
	struct ofx *o = *state;

	installed_at(o, AGENT_JOB_HEALTH_CHECK, "sim-0");
	boot_do(o, 's');
	power_on(o);
	boot_do(o, 'g');
	make_config(o, "command = exit 1\n"); /* not run again */
	start(o);
	assert_true(run_to(o, AGENT_JOB_SUCCEEDED));
	assert_false(boot_state(o).upgrade_available);
}

/* Make the newest of the sim's two environment copies unreadable (its
 * CRC no longer matches), as a torn write or a bad sector would: the
 * older copy is what the next read finds. */
static void tear_newest_env(struct ofx *o)
{
	char *p[2] = {fl_path_join(o->sim, "uboot.env"),
		      fl_path_join(o->sim, "uboot-redund.env")};
	unsigned char flags[2];
	FILE *f;

	for (int i = 0; i < 2; i++) {
		f = fopen(p[i], "rb");
		assert_non_null(f);
		assert_int_equal(fseek(f, 4, SEEK_SET), 0); /* after the CRC */
		assert_int_equal(fread(&flags[i], 1, 1, f), 1);
		fclose(f);
	}
	f = fopen(p[(unsigned char)(flags[1] - flags[0]) < 128], "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 8, SEEK_SET), 0); /* a variable's byte */
	assert_int_equal(fputc('~', f), '~');
	fclose(f);
	free(p[0]);
	free(p[1]);
}

/* The mark-good written, the job succeeded, then the newest copy of the
 * environment lost: the older one says "b on trial" again.  The agent
 * marks b good again rather than let the bootloader fall back from a
 * release that passed its health check. */
static void test_lost_mark_good(void **state)
{
	struct ofx *o = *state;

	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	boot_do(o, 's');
	power_on(o); /* sim-1: b on trial, bootcount 1 */
	start(o);
	assert_true(run_to(o, AGENT_JOB_SUCCEEDED));
	assert_false(boot_state(o).upgrade_available);
	tear_newest_env(o);
	assert_true(boot_state(o).upgrade_available); /* the older copy */
	power_on(o); /* sim-2: b, bootcount 2 of 3 */
	assert_string_equal(boot_state(o).slot, "b");
	start(o);
	assert_false(boot_state(o).upgrade_available);
	assert_string_equal(boot_state(o).slot, "b");
	assert_string_equal(boot_state(o).try_slot, "");
	assert_int_equal(journal(o).job.state, AGENT_JOB_SUCCEEDED);
}

/* Killed on the way back: the switch back was written, then a power
 * cycle: the old slot runs, is checked and marked good. */
static void test_reverting_back_on_old(void **state)
{
	struct ofx *o = *state;
	struct agent_journal j;

	installed_at(o, AGENT_JOB_REVERTING, "sim-1");
	j = journal(o);
	agent_job_set_outcome(&j.job, NULL, "health check failed (exit 1)");
	assert_int_equal(agent_journal_save(o->journal, &j, NULL), 0);
	boot_do(o, 's');
	power_on(o);	 /* sim-1: on b */
	boot_do(o, 'r'); /* back to a, on trial */
	power_on(o);	 /* sim-2: on a */
	start(o);
	assert_true(run_to(o, AGENT_JOB_ROLLED_BACK));
	assert_string_equal(journal(o).job.reason,
			    "health check failed (exit 1)");
	assert_string_equal(boot_state(o).slot, "a");
	assert_false(boot_state(o).upgrade_available);
}

/* A final job whose command was never completed: completed at start;
 * a fall-back nobody acknowledged: acknowledged at start. */
static void test_start_up_cleanups(void **state)
{
	struct ofx *o = *state;
	struct agent_journal j;

	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	j = journal(o);
	j.job.state = AGENT_JOB_ROLLED_BACK;
	agent_job_set_outcome(&j.job, NULL, "bootloader fell back");
	assert_int_equal(agent_journal_save(o->journal, &j, NULL), 0);
	log_running(o);
	boot_do(o, 's');
	for (int i = 0; i < 4; i++)
		power_on(o);
	assert_string_equal(boot_state(o).try_slot, "b");
	start(o);
	assert_int_equal(log_state(o), AGENT_CMD_DONE);
	assert_string_equal(boot_state(o).try_slot, "");
	assert_string_equal(boot_state(o).slot, "a");
}

static void send_cmd(struct ofx *o, const char *payload)
{
	assert_int_equal(agent_mqtt_publish(o->obs.m, "fleet/dev-1/cmd",
					    payload, strlen(payload), 2, false,
					    NULL),
			 0);
}

/* Step until the event of command @cmd arrives; its payload. */
static const char *answer_to(struct ofx *o, const char *cmd)
{
	char needle[64];
	int64_t end = fl_now_ms() + 10000;
	int i = -1;

	snprintf(needle, sizeof(needle), "\"cmd\":\"%s\"", cmd);
	while (fl_now_ms() < end &&
	       (i = afx_find(&o->obs, EVENTS, needle)) < 0) {
		agent_step(o->a, 20, NULL);
		agent_mqtt_step(o->obs.m, 5);
	}
	assert_true(i >= 0);
	return o->obs.msgs[i].payload;
}

static void wait_online(struct ofx *o)
{
	int64_t end = fl_now_ms() + 10000;

	while (!agent_online(o->a) && fl_now_ms() < end)
		agent_step(o->a, 20, NULL);
	assert_true(agent_online(o->a));
	/* and subscribed: the SUBACK follows the CONNACK */
	for (end = fl_now_ms() + 300; fl_now_ms() < end;)
		agent_step(o->a, 20, NULL);
}

/* ---- fleet-sim's way: the agent on a poll loop, work on agent_step ---- */

/* One turn of a poll loop over the agent alone: poll its socket, then
 * agent_service (never blocks, never runs the job). */
static void service_turn(struct ofx *o)
{
	short ev = 0;
	int fd = agent_poll_fd(o->a, &ev);
	struct pollfd p = {fd, ev, 0};

	if (fd >= 0)
		poll(&p, 1, 20);
	else
		poll(NULL, 0, 20);
	agent_service(o->a, fd >= 0 ? p.revents : 0, true);
	agent_mqtt_step(o->obs.m, 5);
}

static void test_loop_service_and_install_hold(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.1.0", "1.1.0", true);
	char *bundle = afx_path(o->f, "b.fwb"), sha[65];
	struct agent_ota_brief b;
	int64_t t0, end;

	make_bundle(o, fw, "1.1.0", bundle, sha);
	journal_update(o, bundle, sha, "1.1.0", AGENT_JOB_DOWNLOADING);
	log_running(o);
	o->cfg->sim_install_delay_ms = 1500;
	start(o);
	/* the loop's part connects and reports, and leaves the job alone */
	assert_true(agent_work_due(o->a));
	for (end = fl_now_ms() + 10000;
	     !agent_online(o->a) && fl_now_ms() < end;)
		service_turn(o);
	assert_true(agent_online(o->a));
	for (end = fl_now_ms() + 300; fl_now_ms() < end;)
		service_turn(o);
	assert_int_equal(journal(o).job.state, AGENT_JOB_DOWNLOADING);
	assert_true(agent_work_due(o->a));
	agent_ota_brief(agent_feature_state(o->a, &agent_feature_ota), &b);
	assert_string_equal(b.firmware, "1.0.0");
	assert_string_equal(b.job_id, "j-1");
	assert_int_equal(b.job_state, AGENT_JOB_DOWNLOADING);
	assert_false(b.job_final);
	/* a worker's agent_step runs it up to "installed", where it waits */
	t0 = fl_now_ms();
	agent_step(o->a, 0, NULL);
	assert_int_equal(journal(o).job.state, AGENT_JOB_INSTALLED);
	assert_false(agent_work_due(o->a));
	for (end = t0 + 1000; fl_now_ms() < end;) {
		agent_step(o->a, 20, NULL);
		assert_false(agent_reboot_requested(o->a));
	}
	assert_int_equal(journal(o).job.state, AGENT_JOB_INSTALLED);
	/* due again once the delay has passed; then the switch */
	for (end = fl_now_ms() + 3000;
	     !agent_work_due(o->a) && fl_now_ms() < end;)
		service_turn(o);
	assert_true(agent_work_due(o->a));
	assert_true(fl_now_ms() - t0 >= 1500);
	agent_step(o->a, 0, NULL);
	assert_true(agent_reboot_requested(o->a));
	assert_int_equal(journal(o).job.state, AGENT_JOB_REBOOTING);
	/* the stop in three steps: offline presence out, acknowledged,
	 * disconnected, and no will */
	assert_true(agent_stop_begin(o->a));
	for (end = fl_now_ms() + 3000;
	     !agent_stop_flushed(o->a) && fl_now_ms() < end;)
		service_turn(o);
	assert_true(agent_stop_flushed(o->a));
	agent_stop_finish(o->a);
	assert_false(agent_online(o->a));
	afx_pump(o->obs.m, NULL, 300);
	assert_true(afx_find(&o->obs, "fleet/dev-1/presence",
			     "\"online\":false,\"ts\"") >= 0);
	assert_true(saw_event(o, "rebooting"));
	free(fw);
	free(bundle);
}

/* Commands: no second job while one runs; a device without [boot]
 * refuses updates; a rollback needs firmware it knows in the other
 * slot. */
static void test_commands_refused(void **state)
{
	struct ofx *o = *state;
	char sha[65], *cmd;
	struct agent_simdev_boot b;
	struct fl_error err = {0};

	memset(sha, 'a', 64);
	sha[64] = '\0';
	assert_int_equal(agent_simdev_power_on(o->sim, &b, NULL),
			 0); /* sim-1 */
	installed_at(o, AGENT_JOB_REBOOTING, "sim-1");
	start(o);
	run_to(o, AGENT_JOB_REBOOTING);
	assert_true(agent_reboot_requested(o->a));
	wait_online(o);
	cmd = fl_xasprintf(UPD_FMT, "c-2", sha);
	send_cmd(o, cmd);
	free(cmd);
	assert_non_null(strstr(answer_to(o, "c-2"), "busy with job j-1"));
	send_cmd(o, "{\"id\":\"c-3\",\"type\":\"rollback\",\"args\":"
		    "{\"job\":\"j-3\"}}");
	assert_non_null(strstr(answer_to(o, "c-3"), "busy with job j-1"));
	/* a bad argument is a failed command, never a job */
	cmd = fl_xasprintf(UPD_FMT, "c-5", "not-hex");
	send_cmd(o, cmd);
	free(cmd);
	assert_non_null(strstr(answer_to(o, "c-5"), "\"stage\":\"queued\""));
	agent_free(o->a);
	o->a = NULL;
	/* no [boot], no --sim */
	agent_config_free(o->cfg);
	o->cfg = NULL;
	cmd = fl_xasprintf("[device]\nid = dev-1\nstate_dir = state\n"
			   "[server]\nurl = https://127.0.0.1:1\n"
			   "[mqtt]\nurl = mqtts://127.0.0.1:%d\n",
			   o->f->port);
	assert_int_equal(
	    agent_config_parse(cmd, o->f->dir, NULL, &o->cfg, &err), 0);
	free(cmd);
	start(o);
	wait_online(o);
	cmd = fl_xasprintf(UPD_FMT, "c-4", sha);
	send_cmd(o, cmd);
	free(cmd);
	assert_non_null(strstr(answer_to(o, "c-4"), "not configured"));
}

/* A rollback on request: slot a known good, on trial, checked, good. */
static void test_rollback_command(void **state)
{
	struct ofx *o = *state;
	struct agent_journal j;

	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	j = journal(o);
	j.job.state = AGENT_JOB_SUCCEEDED;
	j.slots[0].good = true; /* 1.0.0 ran confirmed before the update */
	assert_int_equal(agent_journal_save(o->journal, &j, NULL), 0);
	boot_do(o, 's');
	boot_do(o, 'g');
	power_on(o); /* on b, 1.1.0 */
	start(o);
	wait_online(o);
	send_cmd(o, "{\"id\":\"c-r\",\"type\":\"rollback\",\"args\":"
		    "{\"job\":\"j-r\"}}");
	assert_true(run_to(o, AGENT_JOB_REBOOTING));
	assert_string_equal(boot_state(o).slot, "a");
	assert_true(boot_state(o).upgrade_available);
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_SUCCEEDED));
	j = journal(o);
	assert_int_equal(j.job.type, AGENT_JOB_ROLLBACK);
	assert_string_equal(j.job.to_version, "1.0.0");
	assert_string_equal(boot_state(o).slot, "a");
	assert_false(boot_state(o).upgrade_available);
}

/*
 * The rollback rule: back to the last known good slot only.  After an
 * update whose health check failed, slot b holds that firmware; a
 * rollback must not try it again.  After a good update, the slot the
 * device came from is known good and a rollback goes there.
 */
static void test_rollback_only_to_known_good(void **state)
{
	struct ofx *o = *state;
	char *fw = firmware(o, "fw-1.2.0", "1.2.0", false);
	char *bundle = afx_path(o->f, "c.fwb"), sha[65];
	struct agent_journal j;

	make_bundle(o, fw, "1.2.0", bundle, sha);
	journal_update(o, bundle, sha, "1.2.0", AGENT_JOB_QUEUED);
	start(o);
	assert_true(run_to(o, AGENT_JOB_REBOOTING));
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_REVERTING));
	power_on(o);
	start(o);
	assert_true(run_to(o, AGENT_JOB_ROLLED_BACK));
	j = journal(o);
	assert_string_equal(j.slots[1].version, "1.2.0");
	assert_false(j.slots[1].good); /* failed its health check */
	assert_true(j.slots[0].good);  /* came back to it, checked */
	wait_online(o);
	send_cmd(o, "{\"id\":\"c-r\",\"type\":\"rollback\",\"args\":"
		    "{\"job\":\"j-r\"}}");
	assert_non_null(strstr(answer_to(o, "c-r"), "not known good"));
	assert_non_null(strstr(answer_to(o, "c-r"), "\"stage\":\"queued\""));
	assert_string_equal(boot_state(o).slot, "a"); /* untouched */
	assert_false(boot_state(o).upgrade_available);
	j = journal(o);
	assert_int_equal(j.job.type, AGENT_JOB_UPDATE); /* no rollback job */
	free(fw);
	free(bundle);
}

/* Run the "cancel" handler for job @job; its return code. */
static int cancel(struct ofx *o, const char *job)
{
	struct agent_cmd cmd = {.id = "c-x", .type = "cancel"};
	struct agent_cmd_outcome out = {.fields = json_object()};
	const struct agent_feature *f = NULL;
	const struct agent_feature_cmd *c = NULL;
	int rc;

	assert_true(agent_feature_find_cmd(agent_features, agent_n_features,
					   "cancel", &f, &c));
	assert_ptr_equal(f, &agent_feature_ota);
	cmd.args = json_pack("{s:s}", "job", job);
	rc = c->run(agent_host_of(o->a), agent_feature_state(o->a, f), &cmd,
		    &out, NULL);
	json_decref(cmd.args);
	json_decref(out.fields);
	return rc;
}

/*
 * fleetd cancelled the job (issue 8): before the switch the device ends
 * it as failed, "cancelled by fleetd", and touches no bootloader state;
 * past the switch it refuses and the job ends on its own; a cancel for
 * another job changes nothing.
 */
static void test_cancel_command(void **state)
{
	struct ofx *o = *state;
	struct agent_journal j;

	installed_at(o, AGENT_JOB_INSTALLED, "sim-0");
	start(o);
	assert_int_equal(cancel(o, "j-other"), 0);
	assert_int_equal(journal(o).job.state, AGENT_JOB_INSTALLED);
	assert_int_equal(cancel(o, "j-1"), 0);
	j = journal(o);
	assert_int_equal(j.job.state, AGENT_JOB_FAILED);
	assert_string_equal(j.job.stage, "installed");
	assert_string_equal(j.job.reason, "cancelled by fleetd");
	for (int i = 0; i < 10; i++) /* nothing runs on */
		agent_step(o->a, 20, NULL);
	assert_false(agent_reboot_requested(o->a));
	assert_string_equal(boot_state(o).slot, "a");
	assert_false(boot_state(o).upgrade_available);
	assert_int_equal(cancel(o, "j-1"), 0); /* final: nothing to do */
	agent_free(o->a);
	o->a = NULL;
	/* past the switch: refused, the job goes on */
	installed_at(o, AGENT_JOB_REBOOTING, "sim-0");
	start(o);
	assert_int_equal(cancel(o, "j-1"), FL_ECONFLICT);
	assert_int_equal(journal(o).job.state, AGENT_JOB_REBOOTING);
}

/* A journal that does not load is kept aside, never acted on; the
 * agent runs on, and status still works. */
static void test_corrupt_journal(void **state)
{
	struct ofx *o = *state;
	char *aside = fl_xasprintf("%s.corrupt", o->journal);
	json_t *st = NULL;

	assert_int_equal(
	    fl_write_atomic_str(o->journal,
				"{\"format\": 1, \"job\": {\"state\": "
				"\"downloading\"",
				0600, NULL),
	    0);
	start(o);
	assert_int_equal(access(aside, F_OK), 0);
	assert_false(journal(o).has_job);
	wait_online(o);
	assert_int_equal(agent_status_json(o->cfg, &st, NULL), 0);
	assert_true(json_is_null(json_object_get(st, "job")));
	assert_string_equal(json_string_value(json_object_get(st, "slot")),
			    "a");
	assert_string_equal(json_string_value(json_object_get(st, "firmware")),
			    "1.0.0");
	json_decref(st);
	free(aside);
}

/* args.bundle.mirror: optional; an https URL of a file on an origin
 * with a plain path, anything else is a parse error, never a job. */
static void test_parse_mirror(void **state)
{
	static const char *const bad[] = {
	    "http://m.example/fw/a.fwb",
	    "https://u:p@m.example/a.fwb",
	    "https://m.example/../a.fwb",
	    "https://m.example/fw/a.fwb?x",
	    "https://m.example/a.fwb#x",
	    "https://m.example/fw/",
	    "file:///etc/passwd",
	    "https://m.example:99999/a.fwb",
	    "",
	};
	char *text = fl_xasprintf(
		 "{\"id\":\"abcdef01\",\"name\":\"fw\",\"version\":"
		 "\"1.1.0\",\"sha256\":\"%064d\",\"size\":100,"
		 "\"url\":\"/api/v1/b/abcdef01\"}",
		 0),
	     *big;
	struct agent_job job = {0};
	json_t *b = NULL;

	assert_int_equal(fl_json_parse(text, strlen(text), 4096, &b, NULL), 0);
	assert_int_equal(ota_parse_bundle(b, &job, NULL), 0);
	assert_string_equal(job.mirror, "");
	json_object_set_new(b, "mirror",
			    json_string("https://m.example:8443/fw/ab.fwb"));
	assert_int_equal(ota_parse_bundle(b, &job, NULL), 0);
	assert_string_equal(job.mirror, "https://m.example:8443/fw/ab.fwb");
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		json_object_set_new(b, "mirror", json_string(bad[i]));
		assert_int_equal(ota_parse_bundle(b, &job, NULL), FL_EPARSE);
	}
	json_object_set_new(b, "mirror", json_integer(1));
	assert_int_equal(ota_parse_bundle(b, &job, NULL), FL_EPARSE);
	big = fl_xcalloc(1, FL_MIRROR_URL_MAX + 2);
	memset(big, 'a', FL_MIRROR_URL_MAX + 1);
	memcpy(big, "https://m.example/", 18);
	json_object_set_new(b, "mirror", json_string(big)); /* one too long */
	assert_int_equal(ota_parse_bundle(b, &job, NULL), FL_EPARSE);
	big[FL_MIRROR_URL_MAX] = '\0';
	json_object_set_new(b, "mirror", json_string(big));
	assert_int_equal(ota_parse_bundle(b, &job, NULL), 0);
	assert_string_equal(job.mirror, big);
	free(big);
	free(text);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_mirror),
	    cmocka_unit_test_setup_teardown(test_update_succeeds, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_hash_never_bootable, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_manifest, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_health_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rebooting_no_switch_yet, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rebooting_booted_new, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bootloader_fell_back, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_marked_good_before_kill, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lost_mark_good, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reverting_back_on_old, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_start_up_cleanups, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_commands_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_command, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_only_to_known_good,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_command, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_journal, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_loop_service_and_install_hold,
					    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
