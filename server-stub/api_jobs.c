/* SPDX-License-Identifier: MIT */
/*
 * Updates and jobs (issue 5, docs/protocol.md): one job per device, one
 * command per job; the device's events move the job forward.  Rollouts
 * will create the same jobs.
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

static void new_id(char *buf, size_t len, const char *prefix)
{
	unsigned char raw[8];
	char hex[17];

	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	snprintf(buf, len, "%s%s", prefix, hex);
}

/* The bundle part of an update command. */
static json_t *bundle_args(const json_t *b)
{
	const char *id = json_string_value(json_object_get(b, "id"));
	char *url = fl_xasprintf("/api/v1/bundles/%s/download", id);
	json_t *j = json_pack("{s:s, s:O, s:O, s:O, s:O, s:s}", "id", id,
			      "name", json_object_get(b, "name"), "version",
			      json_object_get(b, "version"), "sha256",
			      json_object_get(b, "sha256"), "size",
			      json_object_get(b, "size"), "url", url);

	free(url);
	return j;
}

int srv_job_start(struct srv *srv, const char *device, const char *type,
		  const json_t *bundle, const char *rollout,
		  const char *created_by, int64_t expire, json_t **ret,
		  struct fl_error *err)
{
	struct srv_job j = {.device = device, .type = type,
			    .rollout = rollout, .created_by = created_by};
	char job[24], cmd[48], when[32];
	json_t *args;
	int rc;

	new_id(job, sizeof(job), "j-");
	j.id = job;
	j.expires = time(NULL) + (expire > 0 ? expire : srv->cfg.job_expire);
	if (bundle) {
		j.bundle = json_string_value(json_object_get(bundle, "id"));
		j.to_version = json_string_value(json_object_get(bundle, "version"));
	}
	rc = srv_store_job_add(srv->store, &j, err);
	if (rc)
		return rc;
	args = json_pack("{s:s}", "job", job);
	if (bundle)
		json_object_set_new(args, "bundle", bundle_args(bundle));
	rc = srv_mqtt_send_cmd(srv->mqtt, device, type, args, cmd, err);
	json_decref(args);
	if (rc) {
		srv_store_job_fail(srv->store, job, "queued", err->msg, NULL);
		return rc;
	}
	srv_store_job_command(srv->store, job, cmd, NULL);
	fl_info("job %s: %s of %s%s%s", job, type, device, bundle ? " to " : "",
		j.to_version ? j.to_version : "");
	fl_time_rfc3339(j.expires, when);
	*ret = json_pack("{s:s, s:s, s:s, s:s}", "device", device, "job", job,
			 "command", cmd, "expires", when);
	return 0;
}

int srv_job_device(struct srv *srv, const char *device, json_t **ret_dev,
		   struct fl_error *err)
{
	json_t *dev = NULL;
	int rc = api_device_fetch(srv->store, device, &dev, err);

	if (!rc && !fl_streq(json_string_value(json_object_get(dev, "state")),
			     "active"))
		rc = fl_fail(err, FL_ECONFLICT, "device %s is %s", device,
			     json_string_value(json_object_get(dev, "state")));
	if (!rc && ret_dev)
		*ret_dev = dev;
	else
		json_decref(dev);
	return rc;
}

void srv_jobs_expire_tick(struct srv *srv)
{
	struct fl_error err = {0};
	int n = 0;

	if (srv_store_jobs_expire(srv->store, time(NULL), &n, &err))
		fl_warn("expiring jobs: %s", err.msg);
	else if (n)
		fl_info("%d job(s) expired without a result", n);
}

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
		       const json_t *bundle, int64_t expire, json_t *jobs,
		       json_t *errors)
{
	json_t *dev = NULL, *job = NULL;
	struct fl_error e = {0};

	if (!srv_job_device(r->srv, id, &dev, &e) &&
	    !srv_job_start(r->srv, id, "update", bundle, NULL,
			   srv_req_actor(r), expire, &job, &e)) {
		json_object_set(job, "online", json_object_get(dev, "online"));
		json_array_append_new(jobs, job);
	} else {
		json_array_append_new(errors,
				      json_pack("{s:s, s:s, s:b}", "device", id,
						"error", e.msg, "not_found",
						e.code == FL_ENOTFOUND));
	}
	json_decref(dev);
}

/*
 * POST /api/v1/updates {"devices": [...], "bundle": REF, "expire": S}:
 * a job per device.  Devices that cannot start (unknown, decommissioned,
 * busy) are reported in "errors" and do not stop the others; when none
 * starts, the first reason is the answer (404 or 409).
 */
int api_update(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *devs, *bundle = NULL, *v, *first;
	json_t *jobs = json_array(), *errors = json_array();
	struct fl_error err = {0};
	const char *ref;
	int64_t expire;
	size_t i;

	if (!body)
		goto out;
	if (target_list(body, &devs, &err) ||
	    fl_json_str(body, "bundle", 200, &ref, &err) ||
	    expire_arg(body, &expire, &err) ||
	    api_bundle_fetch(r->srv->store, ref, &bundle, &err)) {
		srv_reply_fail(r, &err);
		goto out;
	}
	json_array_foreach(devs, i, v)
		update_one(r, json_string_value(v), bundle, expire, jobs,
			   errors);
	first = json_array_get(errors, 0);
	if (json_array_size(jobs))
		srv_reply_json(r, 201,
			       json_pack("{s:O, s:O, s:O}", "bundle", bundle,
					 "jobs", jobs, "errors", errors));
	else if (json_is_true(json_object_get(first, "not_found")))
		srv_reply_error(r, 404, "not_found", "no device could start: %s",
				json_string_value(json_object_get(first, "error")));
	else /* the first reason is what the operator needs */
		srv_reply_error(r, 409, "conflict", "no device could start: %s",
				json_string_value(json_object_get(first, "error")));
out:
	json_decref(bundle);
	json_decref(jobs);
	json_decref(errors);
	return 0;
}

int api_device_rollback(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *dev = NULL, *job = NULL;
	struct fl_error err = {0};
	int64_t expire;

	if (!body)
		return 0;
	if (expire_arg(body, &expire, &err) ||
	    srv_job_device(r->srv, r->params[0], &dev, &err) ||
	    srv_job_start(r->srv, r->params[0], "rollback", NULL, NULL,
			  srv_req_actor(r), expire, &job, &err)) {
		json_decref(dev);
		return srv_reply_fail(r, &err);
	}
	json_object_set(job, "online", json_object_get(dev, "online"));
	json_decref(dev);
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
	json_t *args = json_pack("{s:s}", "job", id);
	struct fl_error err = {0};
	char cmd[48];

	if (json_is_string(json_object_get(job, "command")) &&
	    srv_mqtt_send_cmd(srv->mqtt, dev, "cancel", args, cmd, &err))
		fl_warn("job %s: cannot tell %s it is cancelled: %s", id, dev,
			err.msg);
	json_decref(args);
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
