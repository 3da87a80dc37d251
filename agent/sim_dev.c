/* SPDX-License-Identifier: MIT */
/*
 * What a worker does for one simulated device (sim_internal.h): enrol
 * it with the claim token, power it on (the sim bootloader step, then a
 * new struct agent on the device's own directory), carry out the work
 * its agent has (agent_step: commands, an update, a rotation), and
 * reboot it the way fleet-agent does (the job's events out, a clean
 * stop, power on again) but inside the process.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent_config.h"
#include "boot.h"
#include "diag.h"
#include "enroll.h"
#include "feature.h"
#include "fsutil.h"
#include "identity.h"
#include "log.h"
#include "ota.h"
#include "reboot.h"
#include "sim_internal.h"
#include "simdev.h"
#include "trust.h"
#include "util.h"

#define STEP_TURNS 32	       /* agent_step calls per task, at most */
#define REBOOT_CONNECT_MS 5000 /* as agent_run: events out before */
#define STOP_TIMEOUT_MS 3000   /* as agent_run */
#define CRASH_AFTER_MS 1000    /* a crashing build dies after ~this */

void sim_dev_init(struct sim *s, struct sim_dev *d, unsigned index)
{
	const struct sim_knobs *k = &s->o.knobs;
	char *conf;

	d->sim = s;
	d->task.run = sim_dev_task;
	/* valid: sim_new checked the longest id */
	sim_device_id(s->o.prefix, index, d->id, sizeof(d->id), NULL);
	d->dir = fl_path_join(s->o.dir, d->id);
	d->fault = sim_pick(k->seed, "fail", d->id, k->fail_pct);
	d->crashy = sim_pick(k->seed, "crash", d->id, k->crash_pct);
	conf = fl_path_join(d->dir, "agent.conf");
	d->enrolled = fl_path_exists(conf);
	d->state = d->enrolled ? SD_OFF : SD_NEW;
	free(conf);
}

/* Checks that fit a simulated device run in the tick, on the pool
 * (diag.h), not on a thread of each device's own. */
void sim_dev_features(struct sim *s)
{
	for (size_t i = 0; i < agent_n_features; i++)
		s->features[s->n_features++] =
		    agent_features[i] == &agent_feature_diag
			? &agent_feature_diag_sim
			: agent_features[i];
}

void sim_dev_release(struct sim_dev *d)
{
	agent_free(d->a);
	d->a = NULL;
	agent_config_free(d->cfg);
	d->cfg = NULL;
	free(d->dir);
	d->dir = NULL;
}

void sim_dev_brief(const struct sim_dev *d, struct agent_ota_brief *ret)
{
	agent_ota_brief(
	    d->a ? agent_feature_state(d->a, &agent_feature_ota) : NULL, ret);
}

/* ------------------------------------------------------------------ */
/* Enrolment                                                          */
/* ------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int type,
		  struct FTW *ftw)
{
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

static void remove_tree(const char *path)
{
	if (fl_path_exists(path))
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* agent.conf with paths relative to itself, so the directory can be
 * renamed into place. */
static int write_conf(struct sim_dev *d, const char *path, const json_t *resp,
		      struct fl_error *err)
{
	struct agent_config_template t = {
	    .id = d->id,
	    .server_url = d->sim->o.server_url,
	    .mqtt_url = json_string_value(json_object_get(resp, "mqtt_url")),
	    .state_dir = "state",
	    .topic_prefix =
		json_string_value(json_object_get(resp, "topic_prefix")),
	};

	if (!t.mqtt_url)
		return fl_fail(err, FL_EPARSE, "fleetd sent no mqtt_url");
	return agent_config_write(path, &t, err);
}

/*
 * Enrol into DIR/.ID.new (key made there, CSR and token to fleetd, the
 * trust root on first use, agent.conf, the sim device with the image in
 * slot a), then rename it to DIR/ID: a device directory is complete or
 * absent.  What an interrupted enrolment left is removed first (its
 * identity was never used; fleetd may refuse the id again, which is
 * then this device's error).
 */
static int enrol(struct sim_dev *d, struct fl_error *err)
{
	const struct sim_opts *o = &d->sim->o;
	struct agent_http_target t = {.server_url = o->server_url,
				      .ca_file = o->ca_file};
	char *tmp = fl_xasprintf("%s/.%s.new", o->dir, d->id);
	char *state = fl_path_join(tmp, "state");
	char *conf = fl_path_join(tmp, "agent.conf");
	char *simdir = fl_path_join(tmp, "sim");
	struct fl_error terr = {0};
	json_t *resp = NULL;
	int rc, trc;

	remove_tree(tmp);
	rc = fl_mkdir_p(tmp, 0755, err);
	if (!rc)
		rc = agent_enroll(&t, state, d->id, o->token, &resp, err);
	if (!rc) {
		trc = agent_trust_fetch_first(&t, state, &terr);
		if (trc && trc != FL_ENOTFOUND)
			fl_warn("trust root not fetched: %s", terr.msg);
		rc = write_conf(d, conf, resp, err);
	}
	if (!rc)
		rc = agent_simdev_init(simdir, o->image, o->bootlimit, err);
	if (!rc && rename(tmp, d->dir) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot rename '%s' to '%s'",
				   tmp, d->dir);
	if (!rc)
		rc = fl_fsync_parent(d->dir, err);
	if (rc)
		remove_tree(tmp);
	else
		fl_info("enrolled (serial %s)",
			json_string_value(json_object_get(resp, "serial")));
	json_decref(resp);
	free(tmp);
	free(state);
	free(conf);
	free(simdir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Power                                                              */
/* ------------------------------------------------------------------ */

/* agent.conf in sim mode on DIR/ID/sim, with the run's install delay. */
static int load_config(struct sim_dev *d, struct fl_error *err)
{
	char *conf = fl_path_join(d->dir, "agent.conf");
	char *simdir = fl_path_join(d->dir, "sim");
	int rc;

	rc = agent_config_load(conf, &d->cfg, err);
	if (!rc)
		rc = agent_config_set_sim(d->cfg, simdir, err);
	if (!rc) {
		d->cfg->sim_install_delay_ms = d->sim->o.knobs.install_delay_ms;
		d->cfg->sim_record_commands = true;
		d->cfg->sim_telemetry = true;
		d->cfg->sim_telemetry_rate = d->sim->o.knobs.telemetry_rate;
	}
	if (rc) {
		agent_config_free(d->cfg);
		d->cfg = NULL;
	}
	free(conf);
	free(simdir);
	return rc;
}

/*
 * --fail-rate: the device's sensor bus is faulty, so the sample
 * firmware's --selftest really fails on it (firmware-sample reads
 * SIM_FAULT_FILE next to its slot).  Set or cleared once per run, so a
 * run with another rate or seed is honest too.
 */
static int set_fault(struct sim_dev *d, struct fl_error *err)
{
	char *p = fl_xasprintf("%s/sim/%s", d->dir, SIM_FAULT_FILE);
	int rc = 0;

	if (d->fault)
		rc = fl_write_atomic_str(p,
					 "sensor bus fault (fleet-sim "
					 "--fail-rate)\n",
					 0644, err);
	else if (unlink(p) < 0 && errno != ENOENT)
		rc = fl_fail_errno(err, FL_EIO, "cannot remove '%s'", p);
	free(p);
	return rc;
}

/*
 * --crash-in-soak: on a trial boot of an update, the new build dies
 * before its health check passes (the loop holds the device's work and
 * cuts its power at crash_ms), every time, until the bootloader's boot
 * counter sends it back to the old slot.
 */
static void plan_crash(struct sim_dev *d)
{
	struct agent_boot_opts bo = {.backend = "sim", .path = d->cfg->sim_dir};
	const struct sim_knobs *k = &d->sim->o.knobs;
	struct agent_boot *boot = NULL;
	struct agent_ota_brief b;
	struct agent_boot_state st;
	uint64_t h;

	d->crash_ms = 0;
	if (!d->crashy)
		return;
	sim_dev_brief(d, &b);
	if (!b.job_id || b.job_final || b.job_type != AGENT_JOB_UPDATE)
		return;
	if (!agent_boot_open(&bo, &boot, NULL) &&
	    !agent_boot_read(boot, &st, NULL) &&
	    agent_boot_phase(&st) == AGENT_BOOT_TRYING) {
		h = sim_hash(k->seed ^ d->boots, "crash-after", d->id);
		d->crash_ms = fl_now_ms() + sim_spread(h, CRASH_AFTER_MS);
	}
	agent_boot_close(boot);
}

static int power_on(struct sim_dev *d, struct fl_error *err)
{
	struct agent_simdev_boot b;
	int rc = 0;

	if (!d->cfg)
		rc = load_config(d, err);
	if (!rc && !d->fault_written) {
		rc = set_fault(d, err);
		d->fault_written = rc == 0;
	}
	if (!rc)
		rc = agent_simdev_power_on(d->cfg->sim_dir, &b, err);
	if (rc)
		return rc;
	d->boots++;
	fl_info("sim: power-on %llu: booted slot %s%s (bootcount %u)", b.boot,
		b.step.booted, b.step.fell_back ? " after falling back" : "",
		b.step.bootcount);
	rc = agent_new_with(d->cfg, d->sim->features, d->sim->n_features, &d->a,
			    err);
	if (!rc)
		plan_crash(d);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Work                                                               */
/* ------------------------------------------------------------------ */

/* The job asked for a reboot: as fleet-agent's agent_run and main, but
 * the "exec" is a new struct agent after the bootloader step. */
static void reboot(struct sim_dev *d)
{
	const volatile sig_atomic_t *stop = d->sim->stop;
	int64_t end = fl_now_ms() + REBOOT_CONNECT_MS;

	while (!*stop && !agent_online(d->a) && fl_now_ms() < end)
		agent_step(d->a, 100, stop);
	fl_info("stopping to reboot");
	agent_stop(d->a, STOP_TIMEOUT_MS);
	agent_free(d->a);
	d->a = NULL;
	d->rc = power_on(d, &d->err);
}

static void step(struct sim_dev *d)
{
	const volatile sig_atomic_t *stop = d->sim->stop;

	for (int i = 0; i < STEP_TURNS && !*stop &&
			!agent_reboot_requested(d->a) && agent_work_due(d->a);
	     i++)
		agent_step(d->a, 0, stop);
	if (agent_reboot_due(d->a, 0, *stop))
		reboot(d);
}

void sim_dev_task(struct sim_task *t)
{
	struct sim_dev *d = (struct sim_dev *)t;
	const char *prev = fl_log_context_set(d->id);
	bool stopping = *d->sim->stop;

	d->rc = 0;
	fl_error_clear(&d->err);
	switch (d->kind) {
	case TK_START:
		if (stopping)
			break;
		d->rc = enrol(d, &d->err);
		d->enrolled_now = d->rc == 0;
		if (d->rc)
			break;
		/* fall through */
	case TK_POWER_ON:
		if (!stopping)
			d->rc = power_on(d, &d->err);
		break;
	case TK_STEP:
		step(d);
		break;
	}
	fl_log_context_set(prev);
}
