/* SPDX-License-Identifier: MIT */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

/*
 * Jobs (docs/protocol.md "Updates and jobs", docs/decisions.md "One job
 * state machine"): one command to one device, followed through the
 * device's events.  Job types: update, rollback (the OTA lane) and
 * rotate (the identity lane).  A device holds at most one open job per
 * lane.  This module owns job start, the transition table and what the
 * store asks of it when a device reports a state.
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct srv;
struct srv_bundle_row;
struct srv_device_row;

/* --- the state machine (pure functions, no I/O) --- */

/* True for a known job type: "update", "rollback", "rotate". */
bool srv_job_type_known(const char *type);

/* (The states a job never leaves: fl_job_state_name_final, proto.h.) */

/*
 * May a device move a job of @type from state @from to state @to?
 * False for an unknown type or state, a state the type does not have,
 * any move out of a final state, the states only fleetd sets
 * (cancelled, expired) and a move back (except the restart of an
 * update's install pass: verifying or installing back to downloading).
 * Moving forward past states never seen is legal (events lost before
 * fleetd, or coalesced by an older agent), and so is repeating the
 * current state (progress, the repeat after a reconnect).
 */
bool srv_job_transition_ok(const char *type, const char *from,
			   const char *to);

/*
 * The job types a new job of @type cannot start beside (open jobs of
 * the same lane), NULL-terminated; NULL for an unknown type.
 */
const char *const *srv_job_lane(const char *type);

/* --- starting jobs (fleetd) --- */

/*
 * Start a job on @device: record it (FL_ECONFLICT when the device has an
 * open job of the same lane), send the command (update with @bundle, a
 * bundle row from the store; rollback and rotate with @bundle NULL).
 * *ret gets {"device", "job", "command", "expires"}.  A command that
 * cannot be sent fails the job.  @rollout may be NULL.  fleetd gives up
 * on the job @expire seconds from now (0: [jobs] expire of fleetd.conf).
 */
int srv_job_start(struct srv *srv, const char *device, const char *type,
		  const struct srv_bundle_row *bundle, const char *rollout,
		  const char *created_by, int64_t expire, json_t **ret,
		  struct fl_error *err);

/*
 * Rotate the certificate of @dev (a device row from the store): start
 * a rotate job; one still open is cancelled first (superseded: every
 * request sends a command).  *ret gets {"device", "command",
 * "old_serial", "job"}.  Codes of srv_job_start.
 */
int srv_job_rotate(struct srv *srv, const struct srv_device_row *dev,
		   const char *created_by, json_t **ret, struct fl_error *err);

/*
 * Look up @device for a new job: FL_ENOTFOUND when unknown, FL_ECONFLICT
 * when it is not active (decommissioned devices get no commands).
 * *ret_dev (may be NULL) gets the device row (srv_device_row_free).
 */
int srv_job_device(struct srv *srv, const char *device,
		   struct srv_device_row *ret_dev, struct fl_error *err);

/* New ids for a job ("j-" and 16 hex digits) and its command. */
void srv_job_new_ids(char job[24], char command[40]);

/*
 * Send job @job's command again, or for the first time, with the command
 * id @command already recorded for it (the rollout engine writes the job
 * before it sends: docs/decisions.md): an update of @bundle (a bundle
 * row from the store), or a rollback (@bundle NULL).  Nothing is written
 * to the store; a failure leaves the job as it is.  Goes to
 * srv->send_cmd when set, else the MQTT client.  FL_EUNREACH.
 */
int srv_job_send(struct srv *srv, const char *device, const char *type,
		 const char *job, const char *command,
		 const struct srv_bundle_row *bundle, struct fl_error *err);

/*
 * Tell @device to stop job @job: a "cancel" command, best effort (the
 * agent stops a job it has not switched slots for and reports it
 * failed).  FL_EUNREACH.
 */
int srv_job_tell_cancel(struct srv *srv, const char *device, const char *job,
			struct fl_error *err);

/* Expire the jobs past their deadline (called from the main loop). */
void srv_jobs_expire_tick(struct srv *srv);

#endif
