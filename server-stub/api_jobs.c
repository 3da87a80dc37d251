/* SPDX-License-Identifier: MIT */
/*
 * The jobs API (issue 5, docs/protocol.md): updates, rollbacks, cancel,
 * list and show.  Jobs themselves live in jobs.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "api_json.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "util.h"
#include "validate.h"

#define MAX_TARGETS 10000

/* Validate the "devices" array of a request. */
static int target_list(json_t *body, json_t **ret, struct fl_error *err)
{
	json_t *devs = NULL, *v;
	size_t i;
	int rc = fl_json_array(body, "devices", MAX_TARGETS, &devs, err);

	if (!rc && json_array_size(devs) == 0)
		rc = fl_fail(err, FL_EINVAL, "no devices named");
	json_array_foreach(devs, i, v)
		if (!rc && !fl_valid_id(json_string_value(v)))
			rc = fl_fail(err, FL_EINVAL, "bad device id in 'devices'");
	if (!rc)
		*ret = devs;
	return rc;
}

/* The optional "expire" member: seconds, 1..SRV_JOB_EXPIRE_MAX. */
static int expire_arg(json_t *body, int64_t *ret, struct fl_error *err)
{
	*ret = 0;
	if (!json_object_get(body, "expire"))
		return 0;
	return fl_json_int(body, "expire", 1, SRV_JOB_EXPIRE_MAX, ret, err);
}

/* Start one device's update; its job or error goes into @jobs/@errors. */
static void update_one(struct srv_req *r, const char *id,
		       const struct srv_bundle_row *bundle, int64_t expire,
		       json_t *jobs, json_t *errors)
{
	struct srv_device_row dev = {0};
	struct fl_error e = {0};
	json_t *job = NULL;

	if (!srv_job_device(r->srv, id, &dev, &e) &&
	    !srv_job_start(r->srv, id, "update", bundle, NULL,
			   srv_req_actor(r), expire, &job, &e)) {
		json_object_set_new(job, "online", json_boolean(dev.online));
		json_array_append_new(jobs, job);
	} else {
		json_array_append_new(errors,
				      json_pack("{s:s, s:s, s:b}", "device", id,
						"error", e.msg, "not_found",
						e.code == FL_ENOTFOUND));
	}
	srv_device_row_free(&dev);
}

/*
 * POST /api/v1/updates {"devices": [...], "bundle": REF, "expire": S}:
 * a job per device.  Devices that cannot start (unknown, decommissioned,
 * busy) are reported in "errors" and do not stop the others; when none
 * starts, the first reason is the answer (404 or 409).
 */
int api_update(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *devs, *v, *first;
	json_t *jobs = json_array(), *errors = json_array();
	struct srv_bundle_row bundle = {0};
	struct fl_error err = {0};
	const char *ref;
	int64_t expire;
	size_t i;

	if (!body)
		goto out;
	if (target_list(body, &devs, &err) ||
	    fl_json_str(body, "bundle", 200, &ref, &err) ||
	    expire_arg(body, &expire, &err) ||
	    srv_store_bundle_get(r->srv->store, ref, &bundle, &err)) {
		srv_reply_fail(r, &err);
		goto out;
	}
	json_array_foreach(devs, i, v)
		update_one(r, json_string_value(v), &bundle, expire, jobs,
			   errors);
	first = json_array_get(errors, 0);
	if (json_array_size(jobs))
		srv_reply_json(r, 201,
			       json_pack("{s:o, s:O, s:O}", "bundle",
					 api_bundle_json(&bundle), "jobs", jobs,
					 "errors", errors));
	else if (json_is_true(json_object_get(first, "not_found")))
		srv_reply_error(r, 404, "not_found", "no device could start: %s",
				json_string_value(json_object_get(first, "error")));
	else /* the first reason is what the operator needs */
		srv_reply_error(r, 409, "conflict", "no device could start: %s",
				json_string_value(json_object_get(first, "error")));
out:
	srv_bundle_row_free(&bundle);
	json_decref(jobs);
	json_decref(errors);
	return 0;
}

int api_device_rollback(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *job = NULL;
	struct srv_device_row dev = {0};
	struct fl_error err = {0};
	int64_t expire;

	if (!body)
		return 0;
	if (expire_arg(body, &expire, &err) ||
	    srv_job_device(r->srv, r->params[0], &dev, &err) ||
	    srv_job_start(r->srv, r->params[0], "rollback", NULL, NULL,
			  srv_req_actor(r), expire, &job, &err)) {
		srv_device_row_free(&dev);
		return srv_reply_fail(r, &err);
	}
	json_object_set_new(job, "online", json_boolean(dev.online));
	srv_device_row_free(&dev);
	return srv_reply_json(r, 201, job);
}

/*
 * Tell the device that got @job's command to stop it (best effort: the
 * job is final on fleetd already, whatever the device answers).
 */
static void tell_device(struct srv *srv, const json_t *job)
{
	const char *dev = json_string_value(json_object_get(job, "device"));
	const char *id = json_string_value(json_object_get(job, "id"));
	struct fl_error err = {0};

	if (json_is_string(json_object_get(job, "command")) &&
	    srv_job_tell_cancel(srv, dev, id, &err))
		fl_warn("job %s: cannot tell %s it is cancelled: %s", id, dev,
			err.msg);
}

/* POST /api/v1/jobs/:id/cancel: the job ends as "cancelled". */
int api_job_cancel(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *job;

	if (srv_store_job_cancel(r->srv->store, r->params[0], srv_req_actor(r),
				 &err) ||
	    api_job_fetch(r->srv->store, r->params[0], &job, &err))
		return srv_reply_fail(r, &err);
	tell_device(r->srv, job);
	fl_info("job %s cancelled by %s", r->params[0], srv_req_actor(r));
	return srv_reply_json(r, 200, job);
}

int api_job_list(struct srv_req *r)
{
	struct srv_job_filter f = {.device = srv_req_query(r, "device"),
				   .state = srv_req_query(r, "state"),
				   .rollout = srv_req_query(r, "rollout")};
	struct srv_job_list rows = {0};
	struct fl_error err = {0};
	json_t *out;

	f.limit = srv_req_limit(r, 100, 10000);
	if (!f.limit)
		return 0;
	if (srv_store_job_list(r->srv->store, &f, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_jobs_json(&rows);
	srv_job_list_free(&rows);
	return srv_reply_json(r, 200, out);
}

int api_job_get(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *job;

	if (api_job_fetch(r->srv->store, r->params[0], &job, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, job);
}
