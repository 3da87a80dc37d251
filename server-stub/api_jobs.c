/* SPDX-License-Identifier: MIT */
/*
 * Updates and jobs (issue 5, docs/protocol.md): one job per device, one
 * command per job; the device's events move the job forward.  Rollouts
 * will create the same jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
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
		  const char *created_by, json_t **ret, struct fl_error *err)
{
	struct srv_job j = {.device = device, .type = type,
			    .rollout = rollout, .created_by = created_by};
	char job[24], cmd[48];
	json_t *args;
	int rc;

	new_id(job, sizeof(job), "j-");
	j.id = job;
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
	*ret = json_pack("{s:s, s:s, s:s}", "device", device, "job", job,
			 "command", cmd);
	return 0;
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

/*
 * POST /api/v1/updates {"devices": [...], "bundle": REF}: a job per
 * device.  Devices that cannot start (unknown, busy) are reported in
 * "errors" and do not stop the others.
 */
int api_update(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *devs, *bundle = NULL, *v;
	json_t *jobs = json_array(), *errors = json_array();
	struct fl_error err = {0};
	const char *ref;
	size_t i;

	if (!body)
		goto out;
	if (target_list(body, &devs, &err) ||
	    fl_json_str(body, "bundle", 200, &ref, &err) ||
	    srv_store_bundle_get(r->srv->store, ref, &bundle, &err)) {
		srv_reply_fail(r, &err);
		goto out;
	}
	json_array_foreach(devs, i, v) {
		const char *id = json_string_value(v);
		json_t *dev = NULL, *job = NULL;
		struct fl_error e = {0};

		if (!srv_store_device_get(r->srv->store, id, &dev, &e) &&
		    fl_streq(json_string_value(json_object_get(dev, "state")),
			     "active"))
			srv_job_start(r->srv, id, "update", bundle, NULL,
				      srv_req_actor(r), &job, &e);
		else if (!e.code)
			fl_fail(&e, FL_ENOTFOUND, "device %s is decommissioned", id);
		if (job)
			json_array_append_new(jobs, job);
		else
			json_array_append_new(errors,
					      json_pack("{s:s, s:s}", "device",
							id, "error", e.msg));
		json_decref(dev);
	}
	if (json_array_size(jobs))
		srv_reply_json(r, 201,
			       json_pack("{s:O, s:O, s:O}", "bundle", bundle,
					 "jobs", jobs, "errors", errors));
	else /* the first reason is what the operator needs */
		srv_reply_error(r, 409, "conflict", "no device could start: %s",
				json_string_value(json_object_get(
					json_array_get(errors, 0), "error")));
out:
	json_decref(bundle);
	json_decref(jobs);
	json_decref(errors);
	return 0;
}

int api_device_rollback(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *dev = NULL, *job = NULL;

	if (srv_store_device_get(r->srv->store, r->params[0], &dev, &err) ||
	    srv_job_start(r->srv, r->params[0], "rollback", NULL, NULL,
			  srv_req_actor(r), &job, &err)) {
		json_decref(dev);
		return srv_reply_fail(r, &err);
	}
	json_decref(dev);
	return srv_reply_json(r, 201, job);
}

int api_job_list(struct srv_req *r)
{
	struct srv_job_filter f = {.device = srv_req_query(r, "device"),
				   .state = srv_req_query(r, "state"),
				   .rollout = srv_req_query(r, "rollout")};
	struct fl_error err = {0};
	json_t *rows;

	f.limit = srv_req_limit(r, 100, 10000);
	if (!f.limit)
		return 0;
	if (srv_store_job_list(r->srv->store, &f, &rows, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, rows);
}

int api_job_get(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *job;

	if (srv_store_job_get(r->srv->store, r->params[0], &job, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, job);
}
