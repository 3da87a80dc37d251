/* SPDX-License-Identifier: MIT */
/*
 * The boot side of a job (docs/ota.md, docs/bootloader.md): switch the
 * bootloader to the new slot and reboot, then on the next start decide
 * from the journal, the bootloader variables and whether a reboot
 * happened at all what comes next: the health check on the trial slot,
 * marking it good, going back to the previous slot, or reporting the
 * bootloader's own fall-back.
 *
 * "Booted" is the slot the bootloader variables named when the agent
 * started (in sim mode, after the simulated power-on); "a reboot
 * happened" means the boot id differs from the one the journal noted
 * when it asked for the reboot (the kernel's boot_id; in sim mode the
 * simulated boot counter).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "ota_internal.h"
#include "simdev.h"
#include "proc.h"
#include "agent_telemetry.h"
#include "util.h"
#include "validate.h"

#define KERNEL_BOOT_ID "/proc/sys/kernel/random/boot_id"
#define REVERT_ATTEMPTS_MAX 3

/* ------------------------------------------------------------------ */
/* Boot ids, versions                                                 */
/* ------------------------------------------------------------------ */

/* First line of @path as a label, or @fallback. */
static void read_id(const char *path, const char *prefix, char *buf,
		    size_t size, const char *fallback)
{
	char *text = NULL;

	if (!fl_read_file(path, 128, &text, NULL, NULL)) {
		text[strcspn(text, "\r\n")] = '\0';
		snprintf(buf, size, "%s%s", prefix, text);
		if (fl_valid_label(buf)) {
			free(text);
			return;
		}
	}
	free(text);
	fl_strlcpy(buf, fallback, size);
}

void ota_read_boot_ids(struct agent_ota *o)
{
	const char *sim = agent_host_config(o->h)->sim_dir;
	char *path;

	if (!sim) {
		read_id(KERNEL_BOOT_ID, "", o->boot_id, sizeof(o->boot_id),
			"unknown");
		return;
	}
	path = fl_path_join(sim, AGENT_SIMDEV_BOOT_FILE);
	read_id(path, "sim-", o->boot_id, sizeof(o->boot_id), "sim-0");
	free(path);
}

void ota_probe_version(struct agent_ota *o, const char *slot)
{
	struct agent_slot_info *si = agent_journal_slot(&o->j, slot);
	const char *argv[] = {ota_slot_path(o, slot), "--version", NULL};
	struct agent_proc_opts po = {
	    .argv = argv, .timeout_ms = AGENT_SIMDEV_VERSION_TIMEOUT_MS};
	struct agent_proc_result r;
	struct fl_error err = {0};
	const char *v;

	if (!agent_host_config(o->h)->sim_dir || !si || *si->version ||
	    access(argv[0], X_OK) < 0)
		return;
	if (agent_proc_run(&po, &r, &err) || r.status != 0)
		return;
	v = agent_proc_last_line(r.output);
	if (!fsig_valid_semver(v))
		return;
	fl_strlcpy(si->version, v, sizeof(si->version));
	fl_info("slot %s holds firmware %s", slot, v);
	ota_save(o, &err);
}

/* ------------------------------------------------------------------ */
/* Switching and rebooting                                            */
/* ------------------------------------------------------------------ */

static void request_reboot(struct agent_ota *o)
{
	o->reboot_requested = true;
	agent_host_request_reboot(o->h);
	fl_info("job %s: rebooting%s", o->j.job.id,
		agent_host_config(o->h)->sim_dir
		    ? " (sim: power cycle and restart)"
		    : "");
}

/* Point the bootloader at the target slot, as a trial. */
static int switch_env(struct agent_ota *o, struct fl_error *err)
{
	const struct agent_job *job = &o->j.job;
	char slot[2] = "";
	int rc;

	if (job->type == AGENT_JOB_UPDATE)
		return agent_boot_prepare_switch(o->boot, job->target_slot,
						 err);
	rc = agent_boot_rollback(o->boot, slot, err);
	if (!rc && !fl_streq(slot, job->target_slot))
		rc = fl_fail(err, FL_ECONFLICT,
			     "the bootloader was on slot %s, not %s",
			     agent_boot_other_slot(slot), job->from_slot);
	return rc;
}

int ota_switch(struct agent_ota *o, struct fl_error *err)
{
	struct agent_job *job = &o->j.job;
	int rc;

	fl_strlcpy(job->reboot_from, o->boot_id, sizeof(job->reboot_from));
	rc = ota_enter(o, AGENT_JOB_REBOOTING, err);
	if (rc)
		return rc;
	ota_failpoint(o, "rebooting");
	rc = switch_env(o, err);
	if (rc) {
		ota_finish(o, AGENT_JOB_FAILED, "rebooting", err->msg);
		return 0;
	}
	ota_failpoint(o, "switched");
	request_reboot(o);
	return 0;
}

/* The bootloader gave up on the new slot by itself. */
static int fell_back(struct agent_ota *o, const struct agent_boot_state *st,
		     struct fl_error *err)
{
	char why[160];

	snprintf(why, sizeof(why),
		 "bootloader fell back: slot %s did not confirm within %u "
		 "boots",
		 o->j.job.target_slot, st->bootlimit);
	ota_finish(o, AGENT_JOB_ROLLED_BACK, NULL, why);
	if (agent_boot_mark_good(o->boot, err))
		fl_error("%s", err->msg);
	return 0;
}

int ota_after_reboot(struct agent_ota *o, struct fl_error *err)
{
	struct agent_job *job = &o->j.job;
	struct agent_boot_state st;
	enum agent_boot_phase ph;
	int rc;

	rc = agent_boot_read(o->boot, &st, err);
	if (rc)
		return rc;
	ph = agent_boot_phase(&st);
	if (fl_streq(o->boot_id, job->reboot_from)) {
		/* no reboot yet: finish the switch, or just reboot */
		if (ph == AGENT_BOOT_TRYING &&
		    fl_streq(st.slot, job->target_slot)) {
			request_reboot(o);
			return 0;
		}
		return ota_switch(o, err);
	}
	if (fl_streq(o->booted, job->target_slot)) {
		if (ph == AGENT_BOOT_TRYING)
			return ota_enter(o, AGENT_JOB_HEALTH_CHECK, err);
		ota_finish(o, AGENT_JOB_SUCCEEDED, NULL, NULL);
		return 0;
	}
	if (ph == AGENT_BOOT_FELL_BACK &&
	    fl_streq(st.try_slot, job->target_slot))
		return fell_back(o, &st, err);
	return ota_switch(o, err); /* the switch never took effect */
}

/* ------------------------------------------------------------------ */
/* Health                                                             */
/* ------------------------------------------------------------------ */

static int health_tick(void *user, struct fl_error *err)
{
	return ota_pump(user, err);
}

/* Wait for the broker's CONNACK until @deadline. */
static int wait_broker(struct agent_ota *o, int64_t deadline,
		       struct fl_error *err)
{
	int rc;

	while (!agent_host_online(o->h)) {
		if (agent_host_now_ms(o->h) >= deadline)
			return fl_fail(
			    err, FL_EVERIFY,
			    "health check: the broker was not reachable "
			    "within %llds",
			    (long long)agent_host_config(o->h)
				->health_timeout_s);
		rc = agent_host_pump(o->h, 100, err);
		if (!rc)
			rc = ota_pump(o, err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The health check of the booted slot: broker reachable, then the
 * configured command (sim: SLOT --selftest), all within
 * [health] timeout.  The command finds the telemetry drop dir in
 * FLEET_TELEMETRY_DIR (docs/telemetry.md).  0 healthy; FL_EVERIFY unhealthy (the message is
 * the reason); other codes when it could not be run.
 */
static int check_health(struct agent_ota *o, struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(o->h);
	const char *path = ota_slot_path(o, o->booted);
	char *env[4] = {fl_xasprintf("FLEET_SLOT=%s", o->booted),
			fl_xasprintf("FLEET_SLOT_PATH=%s", path),
			fl_xasprintf("FLEET_TELEMETRY_DIR=%s/%s",
				     agent_host_state_dir(o->h),
				     AGENT_TLM_DROP_DIR),
			NULL};
	const char *sh[] = {"/bin/sh", "-c", c->health_command, NULL};
	const char *sim[] = {path, "--selftest", NULL};
	int64_t deadline = fl_now_ms() + c->health_timeout_s * 1000;
	struct agent_proc_opts po = {
	    .env = (const char *const *)env, .tick = health_tick, .user = o};
	struct agent_proc_result r = {0};
	char tail[256];
	int rc;

	po.argv = c->health_command ? sh : sim;
	rc = wait_broker(o, deadline, err);
	if (!rc && (c->health_command || c->sim_dir)) {
		po.timeout_ms = (int)(deadline - fl_now_ms());
		rc = agent_proc_run(&po, &r, err);
		if (rc == FL_ETIMEOUT)
			rc = fl_fail(err, FL_EVERIFY,
				     "health check timed out after %llds",
				     (long long)c->health_timeout_s);
		else if (!rc && r.status) {
			agent_proc_tail(r.output, 3, tail, sizeof(tail));
			rc = fl_fail(err, FL_EVERIFY,
				     "health check failed (exit %d): %s",
				     r.status, tail);
		}
	}
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	return rc;
}

/* Mark the booted slot good; the job succeeded. */
static int healthy(struct agent_ota *o, struct fl_error *err)
{
	int rc = agent_boot_mark_good(o->boot, err);

	if (rc)
		return rc;
	ota_failpoint(o, "marked-good");
	ota_finish(o, AGENT_JOB_SUCCEEDED, NULL, NULL);
	return 0;
}

int ota_health(struct agent_ota *o, struct fl_error *err)
{
	struct agent_job *job = &o->j.job;
	struct agent_boot_state st;
	struct fl_error why = {0};
	int rc;

	rc = agent_boot_read(o->boot, &st, err);
	if (rc)
		return rc;
	if (!fl_streq(o->booted, job->target_slot))
		return fell_back(o, &st, err);
	if (agent_boot_phase(&st) == AGENT_BOOT_STABLE)
		return healthy(o, err); /* marked good before a restart */
	o->health = "checking";
	agent_host_publish_status(o->h);
	ota_failpoint(o, "health-check");
	rc = check_health(o, &why);
	if (!rc)
		return healthy(o, err);
	if (rc != FL_EVERIFY)
		return fl_fail(err, rc, "%s", why.msg);
	fl_warn("job %s: %s; going back to slot %s", job->id, why.msg,
		job->from_slot);
	o->health = "failed";
	agent_job_set_outcome(job, NULL, why.msg);
	job->attempts = 0;
	job->reboot_from[0] = '\0';
	job->state = AGENT_JOB_REVERTING;
	return ota_save(o, err);
}

/* Back on the previous slot: check it, mark it good, report. */
static int reverted(struct agent_ota *o, struct fl_error *err)
{
	struct fl_error why = {0};
	char reason[AGENT_REASON_MAX + 1];
	int rc;

	if (check_health(o, &why) == FL_EVERIFY)
		fl_warn("the previous slot %s: %s (marking it good "
			"anyway: it is the known-good one)",
			o->booted, why.msg);
	rc = agent_boot_mark_good(o->boot, err);
	if (rc)
		return rc;
	ota_failpoint(o, "marked-good");
	fl_strlcpy(reason, o->j.job.reason, sizeof(reason));
	ota_finish(o, AGENT_JOB_ROLLED_BACK, NULL, reason);
	return 0;
}

int ota_revert(struct agent_ota *o, struct fl_error *err)
{
	struct agent_job *job = &o->j.job;
	struct agent_boot_state st;
	char slot[2] = "", why[AGENT_REASON_MAX + 1];
	int rc;

	if (fl_streq(o->booted, job->from_slot) &&
	    !fl_streq(o->boot_id, job->reboot_from))
		return reverted(o, err);
	rc = agent_boot_read(o->boot, &st, err);
	if (rc)
		return rc;
	if (fl_streq(o->boot_id, job->reboot_from) &&
	    fl_streq(st.slot, job->from_slot) && st.upgrade_available) {
		request_reboot(o); /* switched back, not rebooted yet */
		return 0;
	}
	if (job->attempts >= REVERT_ATTEMPTS_MAX) {
		snprintf(why, sizeof(why), "%.300s; slot %s does not come back",
			 job->reason, job->from_slot);
		ota_finish(o, AGENT_JOB_FAILED, "health-check", why);
		return 0;
	}
	job->attempts++;
	fl_strlcpy(job->reboot_from, o->boot_id, sizeof(job->reboot_from));
	rc = ota_save(o, err);
	if (rc)
		return rc;
	ota_failpoint(o, "reverting");
	rc = agent_boot_rollback(o->boot, slot, err);
	if (rc)
		return rc;
	ota_failpoint(o, "reverted");
	request_reboot(o);
	return 0;
}

/*
 * Whether the trial @st shows was already confirmed: the journal's last
 * job succeeded into the slot running now (the journal says succeeded
 * only after the mark-good was written) and nothing wrote that slot
 * since.  Then the mark-good was lost on its way to the media: U-Boot's
 * newest environment copy unreadable (torn, bad sector), so the older
 * copy, still the trial, came back.  Left alone, the bootloader would
 * fall back from a release fleetd recorded as succeeded.
 */
static bool confirmed_before(struct agent_ota *o,
			     const struct agent_boot_state *st)
{
	const struct agent_job *job = &o->j.job;
	const struct agent_slot_info *s = agent_journal_slot(&o->j, st->slot);

	return o->j.has_job && job->state == AGENT_JOB_SUCCEEDED &&
	       fl_streq(job->target_slot, st->slot) &&
	       fl_streq(o->booted, st->slot) && s && s->good;
}

/* A trial at start-up with no job running. */
static void unowned_trial(struct agent_ota *o,
			  const struct agent_boot_state *st)
{
	struct fl_error err = {0};

	if (!confirmed_before(o, st)) {
		fl_warn("slot %s is on trial but no job owns it; the "
			"bootloader decides",
			st->slot);
		return;
	}
	fl_warn("slot %s is on trial again, but job %s passed its health "
		"check on it: the bootloader's variables lost the mark-good "
		"(an older copy); marking it good again",
		st->slot, o->j.job.id);
	if (agent_boot_mark_good(o->boot, &err))
		fl_error("%s", err.msg);
}

void ota_boot_cleanup(struct agent_ota *o)
{
	struct agent_boot_state st;
	struct fl_error err = {0};

	if (agent_boot_read(o->boot, &st, &err)) {
		fl_error("%s", err.msg);
		return;
	}
	switch (agent_boot_phase(&st)) {
	case AGENT_BOOT_FELL_BACK:
		fl_info("acknowledging the bootloader's fall-back to "
			"slot %s",
			st.slot);
		if (agent_boot_mark_good(o->boot, &err))
			fl_error("%s", err.msg);
		else
			ota_mark_booted_good(o, st.try_slot);
		break;
	case AGENT_BOOT_STABLE: /* running on it, confirmed: known good */
		ota_mark_booted_good(o, NULL);
		break;
	case AGENT_BOOT_TRYING:
		unowned_trial(o, &st);
		break;
	default:
		break;
	}
}
