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
 * "job", "command"}.  A command that cannot be sent fails the job.
 * @rollout may be NULL.
 */
int srv_job_start(struct srv *srv, const char *device, const char *type,
		  const json_t *bundle, const char *rollout,
		  const char *created_by, json_t **ret, struct fl_error *err);

#endif
