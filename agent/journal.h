/* SPDX-License-Identifier: MIT */
#ifndef AGENT_JOURNAL_H
#define AGENT_JOURNAL_H

/*
 * The OTA journal (DESIGN §6, docs/ota.md): STATE_DIR/ota.json, written
 * atomically (temp file, fsync, rename, fsync dir) BEFORE every step of
 * an update, so that after kill -9 or a power cut the agent knows what
 * it was doing and finishes it truthfully.
 *
 * It holds two things: what the device knows about its slots (version
 * and security_version of the firmware in each, the anti-rollback floor)
 * and the current or last job (update or rollback) with its state.
 *
 *   {"format": 1, "floor": 1,
 *    "slots": {"a": {"version": "1.0.0", "security_version": 1},
 *              "b": {"version": null, "security_version": null}},
 *    "job": {"id": "j-..", "cmd": "c-..", "type": "update",
 *            "state": "downloading", "bundle": {...}, ...} or null}
 *
 * Everything is in fixed-size fields: parsing allocates nothing that
 * outlives the call, and every value read is validated (the file is
 * ours, but a torn or edited file must never be acted on).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "cmd.h"
#include "err.h"
#include "manifest.h"
#include "proto.h"
#include "validate.h"

#define AGENT_JOURNAL_FILE "ota.json"
#define AGENT_JOURNAL_MAX (16 * 1024)	   /* bytes of ota.json */
#define AGENT_JOB_ID_MAX 64		   /* bytes of a job id */
#define AGENT_BUNDLE_ID_MAX 64		   /* bytes of a bundle id (hex) */
#define AGENT_URL_PATH_MAX 512		   /* bytes of a download path */
#define AGENT_BOOT_ID_MAX 64		   /* bytes of a boot id */
#define AGENT_STAGE_MAX 16		   /* bytes of a failure stage */
#define AGENT_REASON_MAX 480		   /* bytes of a failure reason */
#define AGENT_BUNDLE_SIZE_MAX (1ULL << 41) /* largest bundle accepted */

enum agent_job_type {
	AGENT_JOB_UPDATE = 1,
	AGENT_JOB_ROLLBACK = 2,
};

/*
 * Job states in order: the protocol's (proto.h, docs/protocol.md), under
 * the agent's names.  REVERTING is the journal's only (FL_JOB_LOCAL): the
 * health check failed and the device is on its way back to the previous
 * slot.  fleetd's own cancelled and expired never reach a journal.
 */
enum agent_job_state {
	AGENT_JOB_QUEUED = FL_JOB_QUEUED,
	AGENT_JOB_DOWNLOADING = FL_JOB_DOWNLOADING,
	AGENT_JOB_VERIFYING = FL_JOB_VERIFYING,
	AGENT_JOB_INSTALLING = FL_JOB_INSTALLING,
	AGENT_JOB_INSTALLED = FL_JOB_INSTALLED,
	AGENT_JOB_REBOOTING = FL_JOB_REBOOTING,
	AGENT_JOB_HEALTH_CHECK = FL_JOB_HEALTH_CHECK,
	AGENT_JOB_REVERTING = FL_JOB_REVERTING,
	AGENT_JOB_SUCCEEDED = FL_JOB_SUCCEEDED,	    /* final */
	AGENT_JOB_FAILED = FL_JOB_FAILED,	    /* final */
	AGENT_JOB_ROLLED_BACK = FL_JOB_ROLLED_BACK, /* final */
};

/* What the device knows about the firmware in one slot. */
struct agent_slot_info {
	char version[FSIG_VERSION_MAX + 1]; /* "" unknown or not installed */
	bool has_security_version;
	uint64_t security_version;
	bool good; /* booted and confirmed (health check passed, or ran
		    * stable), and not written since: a rollback target */
};

struct agent_job {
	char id[AGENT_JOB_ID_MAX + 1];	/* fleetd's job id */
	char cmd[AGENT_CMD_ID_MAX + 1]; /* the command that started it */
	enum agent_job_type type;
	enum agent_job_state state;

	/* update: the bundle, as the command described it */
	char bundle_id[AGENT_BUNDLE_ID_MAX + 1];
	char bundle_name[FSIG_NAME_MAX + 1];
	char sha256[65];		  /* of the exact manifest bytes */
	uint64_t size;			  /* bytes of the bundle file */
	char url[AGENT_URL_PATH_MAX + 1]; /* path on the server */
	/* the same file on a mirror ("" none; docs/ota.md "Mirrors"),
	 * tried first; @mirror_off once it failed: fleetd's url for the
	 * rest of the job */
	char mirror[FL_MIRROR_URL_MAX + 1];
	bool mirror_off;
	bool has_security_version; /* known once verified */
	uint64_t security_version;

	char from_slot[2], target_slot[2];
	char from_version[FSIG_VERSION_MAX + 1]; /* "" unknown */
	char to_version[FSIG_VERSION_MAX + 1];

	/* the last checkpoint of the download (stream.h): the device
	 * holds the bundle's first @bytes durably, its head in
	 * STATE_DIR/bundle.head and then @slot_bytes of the payload in
	 * the target slot (absent in older journals: 0) */
	uint64_t bytes, slot_bytes;
	uint64_t fetched;  /* bytes taken from the network for this job and
			    * kept (up to each pass's last checkpoint) */
	unsigned attempts; /* failed download attempts in a row, or
			    * switches back while reverting */
	char reboot_from[AGENT_BOOT_ID_MAX + 1]; /* boot id when a reboot
						  * was requested */
	char stage[AGENT_STAGE_MAX + 1];	 /* failed: where */
	char reason[AGENT_REASON_MAX + 1];	 /* failed, rolled-back,
						  * reverting: why */
	time_t started, updated;
};

struct agent_journal {
	uint64_t floor;			 /* lowest security_version accepted */
	struct agent_slot_info slots[2]; /* [0] = a, [1] = b */
	bool has_job;
	struct agent_job job;
};

/* "queued", ..., "reverting", "succeeded", "failed", "rolled-back". */
const char *agent_job_state_name(enum agent_job_state s);

/* The state named @name; 0 for an unknown name or one only fleetd
 * sets. */
enum agent_job_state agent_job_state_parse(const char *name);

/* succeeded, failed and rolled-back are final. */
bool agent_job_state_final(enum agent_job_state s);

/* "update" or "rollback". */
const char *agent_job_type_name(enum agent_job_type t);

/*
 * Set the job's failure stage (a static name; NULL clears it) and
 * reason (copied, cut to AGENT_REASON_MAX bytes, bytes that are not
 * printable ASCII replaced by '?', so the journal always loads back).
 */
void agent_job_set_outcome(struct agent_job *job, const char *stage,
			   const char *reason);

/* The slot info for "a" or "b" (NULL for anything else). */
struct agent_slot_info *agent_journal_slot(struct agent_journal *j,
					   const char *slot);

/*
 * Parse @len bytes of journal JSON into *@ret (written only on success).
 * Returns 0, FL_ELIMIT (over AGENT_JOURNAL_MAX, a value over its cap),
 * FL_EPARSE (not JSON, a missing or malformed member, an unknown state
 * or type, inconsistent numbers).
 */
int agent_journal_parse(const char *text, size_t len, struct agent_journal *ret,
			struct fl_error *err);

/*
 * Load @path into *@ret.  A missing file gives an empty journal (no
 * job, floor 0, nothing known) and 0.  Otherwise as agent_journal_parse,
 * plus FL_EIO.
 */
int agent_journal_load(const char *path, struct agent_journal *ret,
		       struct fl_error *err);

/* The journal as a JSON object (caller decrefs). */
json_t *agent_journal_to_json(const struct agent_journal *j);

/* The job alone as a JSON object, as `status` shows it (caller
 * decrefs). */
json_t *agent_job_to_json(const struct agent_job *job);

/*
 * Write @j to @path atomically (mode 0600), setting job.updated to now.
 * Returns 0 or FL_EIO.
 */
int agent_journal_save(const char *path, struct agent_journal *j,
		       struct fl_error *err);

#endif
