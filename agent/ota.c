/* SPDX-License-Identifier: MIT */
/*
 * OTA jobs: life cycle, the update and rollback commands, events, and
 * the dispatcher that carries a job from state to state (see ota.h and
 * docs/ota.md).  The steps themselves are in ota_install.c and
 * ota_boot.c.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "ota_internal.h"
#include "trust.h"
#include "util.h"
#include "validate.h"

#define RETRY_MS 5000
#ifdef FLEET_TEST_HOOKS
#define FAILPOINTS_ENV "FLEET_AGENT_FAILPOINTS"
#endif

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

const char *ota_slot_path(const struct agent_ota *o, const char *slot)
{
	const struct agent_config *c = agent_host_config(o->h);

	return fl_streq(slot, "b") ? c->slot_b : c->slot_a;
}

int ota_save(struct agent_ota *o, struct fl_error *err)
{
	int rc = agent_journal_save(o->journal_path, &o->j, err);

	if (rc)
		fl_error("%s", err ? err->msg : "journal");
	return rc;
}

#ifdef FLEET_TEST_HOOKS
/* Is @name (or "@name=N" with N <= @value when @at) in the list? */
static bool failpoint_hit(const char *name, bool at, uint64_t value)
{
	const char *list = getenv(FAILPOINTS_ENV), *p;
	size_t n = strlen(name);
	uint64_t limit;

	for (p = list; p && *p; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, name, n) != 0)
			continue;
		if (!at && (p[n] == ',' || p[n] == '\0'))
			return true;
		if (at && p[n] == '=' &&
		    sscanf(p + n + 1, "%" SCNu64, &limit) == 1 &&
		    value >= limit)
			return true;
	}
	return false;
}

static void failpoint_stop(const struct agent_ota *o, const char *name)
{
	fl_warn("failpoint %s: stopping (SIGSTOP)", name);
	fflush(stderr);
	raise(SIGSTOP);
}
#else
/* Production builds have no failpoints (test builds: fleet-agent-test). */
static bool failpoint_hit(const char *name, bool at, uint64_t value)
{
	return false;
}

static void failpoint_stop(const struct agent_ota *o, const char *name)
{
}
#endif

void ota_failpoint(const struct agent_ota *o, const char *name)
{
	if (failpoint_hit(name, false, 0))
		failpoint_stop(o, name);
}

void ota_failpoint_at(const struct agent_ota *o, const char *name,
		      uint64_t value)
{
	if (failpoint_hit(name, true, value))
		failpoint_stop(o, name);
}

/* A "cancel" for the job waits in the agent's queue. */
static bool cancel_waiting(const struct agent_ota *o)
{
	return agent_host_cmd_waiting(o->h, "cancel", "job", o->j.job.id);
}

int ota_pump(struct agent_ota *o, struct fl_error *err)
{
	int rc = agent_host_pump(o->h, 0, err);

	if (rc)
		return rc;
	if (!o->cancel && o->j.has_job && cancel_waiting(o))
		o->cancel = true;
	if (o->cancel)
		return fl_fail(err, FL_ECONFLICT, OTA_CANCELLED);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

/* The fields every event of the job carries. */
static json_t *job_fields(const struct agent_ota *o)
{
	const struct agent_job *job = &o->j.job;
	json_t *f =
	    json_pack("{s:s, s:s}", "job", job->id, "slot", job->target_slot);

	json_object_set_new(f, "from_version",
			    *job->from_version ? json_string(job->from_version)
					       : json_null());
	json_object_set_new(f, "to_version",
			    *job->to_version ? json_string(job->to_version)
					     : json_null());
	if (job->type == AGENT_JOB_UPDATE)
		json_object_set_new(f, "total",
				    json_integer((json_int_t)job->size));
	return f;
}

void ota_event(struct agent_ota *o, const char *state, const json_t *extra)
{
	const struct agent_job *job = &o->j.job;
	struct fl_error err = {0};
	json_t *f = job_fields(o);

	if (extra)
		json_object_update(f, (json_t *)extra);
	if (agent_host_publish_event(o->h, job->cmd,
				     agent_job_type_name(job->type), state, f,
				     NULL, &err))
		fl_error("%s", err.msg);
	json_decref(f);
}

/* The protocol name of the job's state ("reverting" is internal). */
static const char *public_state(enum agent_job_state s)
{
	return s == AGENT_JOB_REVERTING ? "health-check"
					: agent_job_state_name(s);
}

int ota_enter(struct agent_ota *o, enum agent_job_state state,
	      struct fl_error *err)
{
	struct agent_job *job = &o->j.job;
	json_t *extra = NULL;
	int rc;

	job->state = state;
	rc = ota_save(o, err);
	if (rc)
		return rc;
	if (job->type == AGENT_JOB_UPDATE && state <= AGENT_JOB_INSTALLED)
		extra = json_pack("{s:I}", "bytes",
				  (json_int_t)(o->progress > job->bytes
						   ? o->progress
						   : job->bytes));
	if (extra && state == AGENT_JOB_DOWNLOADING && *job->mirror)
		json_object_set_new(
		    extra, "source",
		    json_string(job->mirror_off ? "fleetd" : "mirror"));
	ota_event(o, public_state(state), extra);
	json_decref(extra);
	agent_host_status_soon(o->h); /* status carries the job */
	return 0;
}

/*
 * What a finished job teaches about the slots (the rollback rule,
 * docs/ota.md): the target is good once it passed its health check; a
 * target the device had to leave is not, and the slot it came back to
 * is.  Saved with the journal by the caller.
 */
static void ota_note_slots(struct agent_ota *o, enum agent_job_state state)
{
	const struct agent_job *job = &o->j.job;
	struct agent_slot_info *t = agent_journal_slot(&o->j, job->target_slot);
	struct agent_slot_info *b = agent_journal_slot(&o->j, o->booted);

	if (state == AGENT_JOB_SUCCEEDED && t)
		t->good = true;
	if (state == AGENT_JOB_ROLLED_BACK ||
	    (state == AGENT_JOB_FAILED &&
	     fl_streq(job->stage, "health-check"))) {
		if (t)
			t->good = false;
		if (b && b != t)
			b->good = true;
	}
}

void ota_mark_booted_good(struct agent_ota *o, const char *left_slot)
{
	struct agent_slot_info *b = agent_journal_slot(&o->j, o->booted);
	struct agent_slot_info *l =
	    left_slot ? agent_journal_slot(&o->j, left_slot) : NULL;
	struct fl_error err = {0};

	if (!b || (b->good && (!l || l == b || !l->good)))
		return;
	b->good = true;
	if (l && l != b)
		l->good = false;
	if (ota_save(o, &err))
		fl_error("%s", err.msg);
}

void ota_finish(struct agent_ota *o, enum agent_job_state state,
		const char *stage, const char *reason)
{
	struct agent_job *job = &o->j.job;
	struct fl_error err = {0};
	json_t *f;

	job->state = state;
	agent_job_set_outcome(job, stage, reason);
	ota_note_slots(o, state);
	o->cancel = false;
	if (state == AGENT_JOB_SUCCEEDED && job->type == AGENT_JOB_UPDATE &&
	    job->has_security_version && job->security_version > o->j.floor)
		o->j.floor = job->security_version;
	ota_save(o, &err);
	unlink(o->head_path);
	o->health = state == AGENT_JOB_FAILED && fl_streq(stage, "health-check")
			? "failed"
			: "ok";
	f = job_fields(o);
	agent_host_complete(o->h, job->cmd, agent_job_type_name(job->type),
			    agent_job_state_name(state), stage,
			    *job->reason ? job->reason : NULL, f);
	json_decref(f);
	fl_info("job %s %s", job->id, agent_job_state_name(state));
	agent_host_publish_status(o->h);
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

static bool hex_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 6 && n <= AGENT_BUNDLE_ID_MAX &&
	       strspn(s, "0123456789abcdef") == n;
}

static int str_arg(const json_t *o, const char *key, char *buf, size_t size,
		   bool (*ok)(const char *), struct fl_error *err)
{
	const char *v;
	int rc = fl_json_str(o, key, size - 1, &v, err);

	if (!rc && ok && !ok(v))
		rc = fl_fail(err, FL_EPARSE, "bad '%s' in the command", key);
	if (!rc)
		fl_strlcpy(buf, v, size);
	return rc;
}

/* args.bundle.mirror, optional: any string fl_valid_mirror_url refuses
 * (its length included) is FL_EPARSE. */
static int parse_mirror(const json_t *b, struct agent_job *job,
			struct fl_error *err)
{
	const char *v;
	int rc = fl_json_str_opt(b, "mirror", 0, &v, err);

	if (!rc && v && !fl_valid_mirror_url(v))
		rc = fl_fail(err, FL_EPARSE, "bad 'mirror' in the command");
	if (!rc && v)
		fl_strlcpy(job->mirror, v, sizeof(job->mirror));
	return rc;
}

int ota_parse_bundle(const json_t *b, struct agent_job *job,
		     struct fl_error *err)
{
	char sha[72];
	int64_t size;
	int rc;

	rc = fl_json_require_object(b, "bundle", err);
	if (!rc)
		rc = str_arg(b, "id", job->bundle_id, sizeof(job->bundle_id),
			     hex_id, err);
	if (!rc)
		rc = str_arg(b, "name", job->bundle_name,
			     sizeof(job->bundle_name), fsig_valid_name, err);
	if (!rc)
		rc = str_arg(b, "version", job->to_version,
			     sizeof(job->to_version), fsig_valid_semver, err);
	if (!rc)
		rc = str_arg(b, "sha256", sha, sizeof(sha), NULL, err);
	if (!rc && (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64))
		rc = fl_fail(err, FL_EPARSE, "bad 'sha256' in the command");
	if (!rc)
		fl_strlcpy(job->sha256, sha, sizeof(job->sha256));
	if (!rc)
		rc = fl_json_int(b, "size", 1, (int64_t)AGENT_BUNDLE_SIZE_MAX,
				 &size, err);
	if (!rc)
		job->size = (uint64_t)size;
	if (!rc)
		rc = str_arg(b, "url", job->url, sizeof(job->url), NULL, err);
	if (!rc &&
	    (!fl_startswith(job->url, "/api/v1/") || strstr(job->url, "..") ||
	     strspn(job->url, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
		 strlen(job->url)))
		rc = fl_fail(err, FL_EPARSE, "bad 'url' in the command");
	if (!rc)
		rc = parse_mirror(b, job, err);
	return rc;
}

/* Can a new job start?  Sets the slots of @job. */
static int can_start(struct agent_ota *o, struct agent_job *job,
		     struct fl_error *err)
{
	struct agent_boot_state st;
	int rc;

	if (!o || !o->enabled)
		return fl_fail(err, FL_EINVAL,
			       "updates are not configured on this device "
			       "(agent.conf [boot] and [slots], or --sim)");
	if (o->j.has_job && !agent_job_state_final(o->j.job.state))
		return fl_fail(err, FL_ECONFLICT, "busy with job %s (%s)",
			       o->j.job.id,
			       agent_job_state_name(o->j.job.state));
	rc = agent_boot_read(o->boot, &st, err);
	if (rc)
		return rc;
	if (agent_boot_phase(&st) == AGENT_BOOT_TRYING)
		return fl_fail(err, FL_ECONFLICT, "slot %s is still on trial",
			       st.slot);
	fl_strlcpy(job->from_slot, o->booted, sizeof(job->from_slot));
	fl_strlcpy(job->target_slot, agent_boot_other_slot(o->booted),
		   sizeof(job->target_slot));
	fl_strlcpy(job->from_version,
		   agent_journal_slot(&o->j, o->booted)->version,
		   sizeof(job->from_version));
	return 0;
}

/* Record the new job as queued and say so; the tick runs it. */
static int start_job(struct agent_ota *o, const struct agent_job *job,
		     struct agent_cmd_outcome *out, struct fl_error *err)
{
	int rc;

	unlink(o->head_path);
	o->progress = 0;
	o->cancel = false;
	o->j.has_job = true;
	o->j.job = *job;
	o->j.job.started = time(NULL);
	if (job->type == AGENT_JOB_UPDATE)
		*agent_journal_slot(&o->j, job->target_slot) =
		    (struct agent_slot_info){0};
	rc = ota_enter(o, AGENT_JOB_QUEUED, err);
	if (rc) {
		o->j.has_job = false;
		return rc;
	}
	o->next_run_ms = 0;
	out->pending = true;
	fl_info("job %s: %s %s -> %s (slot %s)", job->id,
		agent_job_type_name(job->type),
		*job->from_version ? job->from_version : "?",
		*job->to_version ? job->to_version : "?", job->target_slot);
	ota_failpoint(o, "queued");
	return 0;
}

static int job_id_arg(const struct agent_cmd *cmd, struct agent_job *job,
		      struct fl_error *err)
{
	fl_strlcpy(job->cmd, cmd->id, sizeof(job->cmd));
	return str_arg(cmd->args, "job", job->id, sizeof(job->id),
		       fl_valid_label, err);
}

/* "update": record the job as queued and leave it pending; the tick
 * carries it on and completes the command at its final state. */
static int cmd_update(struct agent_host *h, void *state,
		      const struct agent_cmd *cmd,
		      struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct agent_job job = {.type = AGENT_JOB_UPDATE};
	int rc;

	out->stage = "queued";
	rc = job_id_arg(cmd, &job, err);
	if (!rc)
		json_object_set_new(out->fields, "job", json_string(job.id));
	if (!rc)
		rc = ota_parse_bundle(json_object_get(cmd->args, "bundle"),
				      &job, err);
	if (!rc)
		rc = can_start(state, &job, err);
	if (!rc)
		rc = start_job(state, &job, out, err);
	return rc;
}

/* "rollback": like update, to the other slot's known-good firmware. */
static int cmd_rollback(struct agent_host *h, void *state,
			const struct agent_cmd *cmd,
			struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct agent_job job = {.type = AGENT_JOB_ROLLBACK};
	struct agent_ota *o = state;
	const struct agent_slot_info *si;
	int rc;

	out->stage = "queued";
	rc = job_id_arg(cmd, &job, err);
	if (!rc)
		json_object_set_new(out->fields, "job", json_string(job.id));
	if (!rc)
		rc = can_start(o, &job, err);
	if (rc)
		return rc;
	si = agent_journal_slot(&o->j, job.target_slot);
	if (!*si->version)
		return fl_fail(err, FL_ENOTFOUND,
			       "slot %s holds no known firmware to go back to",
			       job.target_slot);
	if (!si->good)
		return fl_fail(err, FL_ECONFLICT,
			       "slot %s holds %s, which is not known good (it "
			       "never passed a health check here): nothing to "
			       "go back to",
			       job.target_slot, si->version);
	if (si->has_security_version && si->security_version < o->j.floor)
		return fl_fail(err, FL_EVERIFY,
			       "slot %s holds security_version %llu, below "
			       "the floor %llu",
			       job.target_slot,
			       (unsigned long long)si->security_version,
			       (unsigned long long)o->j.floor);
	fl_strlcpy(job.to_version, si->version, sizeof(job.to_version));
	return start_job(o, &job, out, err);
}

/*
 * fleetd cancelled job "job" (issue 8): end it as failed with reason
 * OTA_CANCELLED while nothing has switched yet; past the switch it ends
 * on its own (FL_ECONFLICT).  Another job, or none, is left alone.
 */
static int cmd_cancel(struct agent_host *h, void *state,
		      const struct agent_cmd *cmd,
		      struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct agent_ota *o = state;
	struct agent_job *job;
	char id[AGENT_JOB_ID_MAX + 1];
	int rc = str_arg(cmd->args, "job", id, sizeof(id), fl_valid_label, err);

	if (rc)
		return rc;
	json_object_set_new(out->fields, "job", json_string(id));
	if (!o || !o->j.has_job || !fl_streq(o->j.job.id, id) ||
	    agent_job_state_final(o->j.job.state)) {
		json_object_set_new(out->fields, "note",
				    json_string("no such job running"));
		return 0;
	}
	job = &o->j.job;
	if (job->state >= AGENT_JOB_REBOOTING)
		return fl_fail(err, FL_ECONFLICT,
			       "job %s is past the switch to slot %s; it ends "
			       "on its own",
			       id, job->target_slot);
	fl_info("job %s: cancelled by fleetd", id);
	if (o->installing) /* ota_install stops at its next pump */
		o->cancel = true;
	else
		ota_finish(o, AGENT_JOB_FAILED,
			   agent_job_state_name(job->state), OTA_CANCELLED);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */
/* ------------------------------------------------------------------ */

/*
 * fleet-sim's install delay (agent_config sim_install_delay_ms; 0 in
 * fleet-agent): an installed job waits that long before the switch,
 * like a slow flash or a maintenance window, and the tick is not due
 * meanwhile.  In memory only: a restart waits the delay again.
 */
static bool hold_installed(struct agent_ota *o)
{
	int64_t delay = agent_host_config(o->h)->sim_install_delay_ms;
	int64_t now = agent_host_now_ms(o->h);

	if (delay <= 0)
		return false;
	if (!o->installed_ms)
		o->installed_ms = now;
	if (now >= o->installed_ms + delay)
		return false;
	o->next_run_ms = o->installed_ms + delay;
	return true;
}

/* One step of the job from its current state. */
static int step(struct agent_ota *o, struct fl_error *err)
{
	const struct agent_job *job = &o->j.job;

	if (job->state != AGENT_JOB_INSTALLED)
		o->installed_ms = 0;

	if (job->state < AGENT_JOB_REBOOTING &&
	    cancel_waiting(o)) { /* before any switch */
		ota_finish(o, AGENT_JOB_FAILED,
			   agent_job_state_name(job->state), OTA_CANCELLED);
		return 0;
	}
	switch (job->state) {
	case AGENT_JOB_QUEUED:
		if (job->type == AGENT_JOB_ROLLBACK)
			return ota_switch(o, err);
		return ota_install(o, err);
	case AGENT_JOB_DOWNLOADING:
	case AGENT_JOB_VERIFYING:
	case AGENT_JOB_INSTALLING:
		return ota_install(o, err);
	case AGENT_JOB_INSTALLED:
		if (hold_installed(o))
			return 0;
		return ota_switch(o, err);
	case AGENT_JOB_REBOOTING:
		return ota_after_reboot(o, err);
	case AGENT_JOB_HEALTH_CHECK:
		return ota_health(o, err);
	case AGENT_JOB_REVERTING:
		return ota_revert(o, err);
	default:
		return 0;
	}
}

static bool runnable(const struct agent_ota *o)
{
	return o && o->enabled && o->j.has_job &&
	       !agent_job_state_final(o->j.job.state) && !o->reboot_requested;
}

/* A job to carry on, and no retry delay or hold in the way. */
static bool due(const struct agent_host *h, const void *state)
{
	const struct agent_ota *o = state;

	return runnable(o) && agent_host_now_ms(h) >= o->next_run_ms;
}

/* Carry the running job forward (may block for a download or a health
 * check, pumping MQTT meanwhile). */
static void tick(struct agent_host *h, void *state)
{
	struct agent_ota *o = state;
	struct fl_error err = {0};
	enum agent_job_state prev;
	int rc;

	if (!due(h, o))
		return;
	do {
		prev = o->j.job.state;
		rc = step(o, &err);
		if (rc) {
			if (!agent_host_stopping(h))
				fl_warn("job %s: %s (retrying)", o->j.job.id,
					err.msg);
			o->next_run_ms = agent_host_now_ms(h) + RETRY_MS;
			return;
		}
	} while (runnable(o) && o->j.job.state != prev &&
		 !agent_host_stopping(h));
}

/* After every (re)connect: queue the current state of a job that is
 * not final as a progress event again (final events: evq.h). */
static void on_connect(struct agent_host *h, void *state)
{
	struct agent_ota *o = state;
	const struct agent_job *job;
	json_t *extra;

	/* a final state is the event queue's business (until fleetd's ack);
	 * the progress event queued here replaces one not sent yet */
	if (!o || !o->j.has_job || agent_job_state_final(o->j.job.state))
		return;
	job = &o->j.job;
	extra = json_object();
	if (*job->stage)
		json_object_set_new(extra, "stage", json_string(job->stage));
	if (*job->reason && job->state != AGENT_JOB_REVERTING)
		json_object_set_new(extra, "reason", json_string(job->reason));
	if (job->type == AGENT_JOB_UPDATE && job->state <= AGENT_JOB_INSTALLED)
		json_object_set_new(
		    extra, "bytes",
		    json_integer((json_int_t)(o->progress > job->bytes
						  ? o->progress
						  : job->bytes)));
	ota_event(o, public_state(job->state), extra);
	json_decref(extra);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

/* Load the journal; a corrupt one is kept aside, not acted on. */
static void load_journal(struct agent_ota *o)
{
	struct fl_error err = {0};
	char *aside;

	if (!agent_journal_load(o->journal_path, &o->j, &err))
		return;
	aside = fl_xasprintf("%s.corrupt", o->journal_path);
	fl_error("%s; moved to '%s'", err.msg, aside);
	rename(o->journal_path, aside);
	free(aside);
	memset(&o->j, 0, sizeof(o->j));
}

/* Open the bootloader backend and read where the device booted. */
static int open_boot(struct agent_ota *o, struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(o->h);
	struct agent_boot_opts bo = {
	    .backend = c->boot_backend,
	    .path = c->boot_path,
	    .default_env = c->boot_default_env,
	    .editenv = c->boot_editenv,
	};
	struct agent_boot_state st;
	int rc;

	rc = agent_boot_open(&bo, &o->boot, err);
	if (!rc)
		rc = agent_boot_read(o->boot, &st, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		rc = agent_boot_init(o->boot, "a", (unsigned)c->bootlimit, err);
		if (!rc)
			rc = agent_boot_read(o->boot, &st, err);
	}
	if (!rc)
		fl_strlcpy(o->booted, st.slot, sizeof(o->booted));
	return rc;
}

/*
 * Open the bootloader backend when [boot] and [slots] are configured,
 * load the journal, learn the booted slot, the boot ids and what the
 * slots hold.  A journal that does not load is kept aside as
 * ota.json.corrupt and replaced by an empty one.  Returns 0, or the
 * bootloader's codes (FL_EPARSE, FL_EIO, ...) when it cannot be read.
 */
static int ota_new(struct agent_host *h, struct agent_ota **ret,
		   struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(h);
	struct agent_ota *o = fl_xcalloc(1, sizeof(*o));
	int rc = 0;

	o->h = h;
	o->journal_path = fl_path_join(c->state_dir, AGENT_JOURNAL_FILE);
	o->head_path = fl_path_join(c->state_dir, AGENT_HEAD_FILE);
	load_journal(o);
	o->health = "ok";
	*ret = o;
	if (!c->boot_backend || !c->slot_a)
		return 0;
	rc = open_boot(o, err);
	if (rc) {
		fl_error_prefix(err, "bootloader");
		return rc;
	}
	o->enabled = true;
	ota_read_boot_ids(o);
	ota_probe_version(o, o->booted);
	if (o->j.has_job && !agent_job_state_final(o->j.job.state))
		fl_info("job %s was %s; going on", o->j.job.id,
			agent_job_state_name(o->j.job.state));
	else
		ota_boot_cleanup(o);
	return 0;
}

static void ota_free(void *state)
{
	struct agent_ota *o = state;

	if (!o)
		return;
	agent_boot_close(o->boot);
	free(o->journal_path);
	free(o->head_path);
	free(o);
}

/* The command of the running job is not interrupted. */
static bool owns_running(void *state, const char *cmd_id)
{
	const struct agent_ota *o = state;

	return o && o->j.has_job && !agent_job_state_final(o->j.job.state) &&
	       fl_streq(o->j.job.cmd, cmd_id);
}

/* At start-up: finish the command of a job that reached its final
 * state without the command being completed. */
static void reconcile(struct agent_ota *o)
{
	const struct agent_job *job;
	enum agent_cmd_state st;
	json_t *f;

	if (!o || !o->j.has_job || !agent_job_state_final(o->j.job.state))
		return;
	job = &o->j.job;
	if (agent_host_cmd_state(o->h, job->cmd, &st) ||
	    st != AGENT_CMD_RUNNING)
		return;
	f = job_fields(o);
	agent_host_complete(o->h, job->cmd, agent_job_type_name(job->type),
			    agent_job_state_name(job->state),
			    *job->stage ? job->stage : NULL,
			    *job->reason ? job->reason : NULL, f);
	json_decref(f);
}

static const char *firmware(const struct agent_ota *o)
{
	const char *v;

	if (!o || !o->enabled)
		return NULL;
	v = o->j.slots[fl_streq(o->booted, "b")].version;
	return *v ? v : NULL;
}

static const char *slot_now(const struct agent_ota *o)
{
	return o && o->enabled ? o->booted : NULL;
}

static const char *health(const struct agent_ota *o)
{
	return o && o->enabled ? o->health : NULL;
}

static json_t *job_brief(const struct agent_ota *o)
{
	const struct agent_job *job;
	json_t *j;

	if (!o || !o->j.has_job)
		return json_null();
	job = &o->j.job;
	j = json_pack("{s:s, s:s, s:s}", "id", job->id, "type",
		      agent_job_type_name(job->type), "state",
		      public_state(job->state));
	if (job->type == AGENT_JOB_UPDATE) {
		json_object_set_new(j, "bytes",
				    json_integer((json_int_t)job->bytes));
		json_object_set_new(j, "total",
				    json_integer((json_int_t)job->size));
	}
	return j;
}

void agent_ota_brief(const void *state, struct agent_ota_brief *ret)
{
	const struct agent_ota *o = state;

	*ret = (struct agent_ota_brief){.firmware = firmware(o)};
	if (!o || !o->j.has_job)
		return;
	ret->job_id = o->j.job.id;
	ret->job_type = o->j.job.type;
	ret->job_state = o->j.job.state;
	ret->job_final = agent_job_state_final(o->j.job.state);
}

/* ------------------------------------------------------------------ */
/* fleet-agent status                                                 */
/* ------------------------------------------------------------------ */

static json_t *slot_status(const struct agent_config *c,
			   const struct agent_slot_info *si, const char *name)
{
	return json_pack("{s:s, s:o, s:o}", "path",
			 fl_streq(name, "a") ? c->slot_a : c->slot_b, "version",
			 *si->version ? json_string(si->version) : json_null(),
			 "security_version",
			 si->has_security_version
			     ? json_integer((json_int_t)si->security_version)
			     : json_null());
}

static const char *phase_name(enum agent_boot_phase p)
{
	return p == AGENT_BOOT_TRYING	   ? "trying"
	       : p == AGENT_BOOT_FELL_BACK ? "fell-back"
					   : "stable";
}

/* The bootloader variables as JSON, or an error. */
static int boot_status(const struct agent_config *c, json_t **ret,
		       struct fl_error *err)
{
	struct agent_boot_opts bo = {.backend = c->boot_backend,
				     .path = c->boot_path,
				     .default_env = c->boot_default_env,
				     .editenv = c->boot_editenv};
	struct agent_boot *boot = NULL;
	struct agent_boot_state st;
	int rc;

	rc = agent_boot_open(&bo, &boot, err);
	if (!rc)
		rc = agent_boot_read(boot, &st, err);
	if (!rc)
		*ret = json_pack(
		    "{s:s, s:s, s:o, s:b, s:i, s:i, s:s}", "backend",
		    c->boot_backend, "fleet_slot", st.slot, "fleet_try",
		    st.try_slot[0] ? json_string(st.try_slot) : json_null(),
		    "upgrade_available", st.upgrade_available, "bootcount",
		    (int)st.bootcount, "bootlimit", (int)st.bootlimit, "phase",
		    phase_name(agent_boot_phase(&st)));
	agent_boot_close(boot);
	return rc;
}

/*
 * What `fleet-agent status` shows about updates: the bootloader
 * variables and phase, the slots with their versions, the floor, the
 * trust root version, the job.  Reads only.  Returns 0, or the
 * journal's and bootloader's codes.
 */
static int status(const struct agent_config *cfg,
		  const struct fl_pki_cert_info *cert, json_t *into,
		  struct fl_error *err)
{
	char *path = fl_path_join(cfg->state_dir, AGENT_JOURNAL_FILE);
	struct agent_journal *j = fl_xcalloc(1, sizeof(*j));
	struct fsig_root *root = NULL;
	json_t *boot = NULL;
	const char *slot;
	int rc;

	rc = agent_journal_load(path, j, err);
	if (!rc && cfg->sim_dir && !fl_path_exists(cfg->slot_a))
		rc = fl_fail(err, FL_ENOTFOUND,
			     "'%s' is not a simulated device (run "
			     "'fleet-agent sim-init' first)",
			     cfg->sim_dir);
	if (!rc && cfg->boot_backend && cfg->slot_a)
		rc = boot_status(cfg, &boot, err);
	if (rc)
		goto out;
	slot = boot ? json_string_value(json_object_get(boot, "fleet_slot"))
		    : NULL;
	json_object_set_new(into, "slot",
			    slot ? json_string(slot) : json_null());
	json_object_set_new(
	    into, "firmware",
	    slot && *agent_journal_slot(j, slot)->version
		? json_string(agent_journal_slot(j, slot)->version)
		: json_null());
	json_object_set_new(into, "boot", boot ? boot : json_null());
	json_object_set_new(
	    into, "slots",
	    cfg->slot_a ? json_pack("{s:o, s:o}", "a",
				    slot_status(cfg, &j->slots[0], "a"), "b",
				    slot_status(cfg, &j->slots[1], "b"))
			: json_null());
	json_object_set_new(into, "security_floor",
			    json_integer((json_int_t)j->floor));
	json_object_set_new(
	    into, "trust_root",
	    agent_trust_load(cfg->state_dir, &root, NULL)
		? json_null()
		: json_integer((json_int_t)fsig_root_version(root)));
	json_object_set_new(
	    into, "job", j->has_job ? agent_job_to_json(&j->job) : json_null());
out:
	fsig_root_free(root);
	free(j);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The feature                                                        */
/* ------------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Status and presence: firmware, slot, health and the job. */
static void report(void *state, json_t *into)
{
	const struct agent_ota *o = state;

	json_object_set_new(into, "firmware", str_or_null(firmware(o)));
	json_object_set_new(into, "slot", str_or_null(slot_now(o)));
	json_object_set_new(into, "health", str_or_null(health(o)));
	json_object_set_new(into, "job", job_brief(o));
}

/* A bootloader that cannot be read disables updates (logged); the
 * agent still runs for everything else. */
static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	struct fl_error e = {0};
	struct agent_ota *o = NULL;

	if (ota_new(h, &o, &e))
		fl_error("updates are disabled: %s", e.msg);
	reconcile(o);
	*ret_state = o;
	return 0;
}

static const struct agent_feature_cmd cmds[] = {
    {"cancel", cmd_cancel},
    {"rollback", cmd_rollback},
    {"update", cmd_update},
    {NULL, NULL},
};

const struct agent_feature agent_feature_ota = {
    .name = "ota",
    .init = init,
    .owns_running = owns_running,
    .on_connect = on_connect,
    .tick = tick,
    .due = due,
    .report = report,
    .status = status,
    .cmds = cmds,
    .free = ota_free,
};
