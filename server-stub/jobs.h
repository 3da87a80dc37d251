/* SPDX-License-Identifier: MIT */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

#include <jansson.h>

#include "err.h"
#include "srv.h"

/*
 * Start a job on @device: record it (FL_ECONFLICT when the device has an
 * unfinished job), send the command (update with @bundle, a bundle row
 * from the store, or rollback with @bundle NULL).  *ret gets {"device",
 * "job", "command", "expires"}.  A command that cannot be sent fails the
 * job.  @rollout may be NULL.  fleetd gives up on the job @expire
 * seconds from now (0: [jobs] expire of fleetd.conf).
 */
int srv_job_start(struct srv *srv, const char *device, const char *type,
		  const json_t *bundle, const char *rollout,
		  const char *created_by, int64_t expire, json_t **ret,
		  struct fl_error *err);

/*
 * Look up @device for a new job: FL_ENOTFOUND when unknown, FL_ECONFLICT
 * when it is not active (decommissioned devices get no commands).
 * *ret_dev (may be NULL) gets the device object.
 */
int srv_job_device(struct srv *srv, const char *device, json_t **ret_dev,
		   struct fl_error *err);

/* Expire the jobs past their deadline (called from the main loop). */
void srv_jobs_expire_tick(struct srv *srv);

#endif
