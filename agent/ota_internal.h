/* SPDX-License-Identifier: MIT */
#ifndef AGENT_OTA_INTERNAL_H
#define AGENT_OTA_INTERNAL_H

/*
 * struct agent_ota, shared by ota.c, ota_install.c and ota_boot.c.  Not
 * for use outside agent/.
 */
#include <stdint.h>

#include "feature.h"
#include "boot.h"
#include "journal.h"
#include "ota.h"

struct agent_ota {
	struct agent_host *h;
	bool enabled; /* [boot] and [slots] configured, backend open */
	struct agent_boot *boot;
	char *journal_path, *head_path;
	struct agent_journal j;
	char booted[2];			     /* slot running now */
	char boot_id[AGENT_BOOT_ID_MAX + 1]; /* changes at each boot */
	bool reboot_requested;
	int64_t next_run_ms;	  /* retry after an error of the tick */
	int64_t last_progress_ms; /* last download progress event */
	uint64_t progress;	  /* bytes downloaded, for events */
	const char *health;	  /* "ok", "checking", "failed" or NULL */
	bool installing; /* inside ota_install (commands come via ota_pump) */
	bool cancel;	 /* fleetd cancelled the job: stop the install */
	int64_t installed_ms; /* fleet-sim's hold at "installed" began */
};

/* The reason a job cancelled by fleetd ends with. */
#define OTA_CANCELLED "cancelled by fleetd"

/* ota.c: args.bundle of an update command into @job's bundle fields
 * (id, name, version, sha256, size, url, mirror).  FL_EPARSE (also for
 * a `mirror` fl_valid_mirror_url refuses, however long), FL_ELIMIT (a
 * field longer than its buffer). */
int ota_parse_bundle(const json_t *b, struct agent_job *job,
		     struct fl_error *err);

/* ota.c: persist the journal; logs and returns the error. */
int ota_save(struct agent_ota *o, struct fl_error *err);

/* ota.c: enter @state (journal first, then the event). */
int ota_enter(struct agent_ota *o, enum agent_job_state state,
	      struct fl_error *err);

/* ota.c: publish the job's event for @state (extra fields may be
 * NULL; borrowed). */
void ota_event(struct agent_ota *o, const char *state, const json_t *extra);

/* ota.c: end the job in a final @state (journal, then the command's
 * outcome event).  @stage for failed; @reason for failed and
 * rolled-back. */
void ota_finish(struct agent_ota *o, enum agent_job_state state,
		const char *stage, const char *reason);

/* ota.c: the booted slot runs confirmed, so it is known good (and
 * @left_slot, the trial slot the bootloader left, NULL if none, is not);
 * the journal is saved if that changes it. */
void ota_mark_booted_good(struct agent_ota *o, const char *left_slot);

/* ota.c: the test hook FLEET_AGENT_FAILPOINTS: stop the process
 * (SIGSTOP) at @name.  Only in fleet-agent-test (built with
 * -DFLEET_TEST_HOOKS); a no-op in the programs make builds. */
void ota_failpoint(const struct agent_ota *o, const char *name);

/* ota.c: a failpoint "NAME=N" reached once @value >= N. */
void ota_failpoint_at(const struct agent_ota *o, const char *name,
		      uint64_t value);

/* ota.c: keep MQTT alive while a long step runs; non-zero on stop. */
int ota_pump(struct agent_ota *o, struct fl_error *err);

/* ota.c: the path of slot "a" or "b". */
const char *ota_slot_path(const struct agent_ota *o, const char *slot);

/* ota_install.c: download, verify and write the target slot; on
 * success the job is "installed".  Failures end the job (unless the
 * agent is stopping); returns 0 or the error. */
int ota_install(struct agent_ota *o, struct fl_error *err);

/* ota_boot.c: the steps from "installed" on. */
int ota_switch(struct agent_ota *o, struct fl_error *err);
int ota_after_reboot(struct agent_ota *o, struct fl_error *err);
int ota_health(struct agent_ota *o, struct fl_error *err);
int ota_revert(struct agent_ota *o, struct fl_error *err);

/* ota_boot.c: at start-up with no job running: acknowledge a
 * fall-back the journal already reported. */
void ota_boot_cleanup(struct agent_ota *o);

/* ota_boot.c: the boot id (the kernel's, or the sim device's) into @o. */
void ota_read_boot_ids(struct agent_ota *o);

/* ota_boot.c: learn the version of a slot whose version is unknown
 * by running it with --version (sim mode only). */
void ota_probe_version(struct agent_ota *o, const char *slot);

#endif
