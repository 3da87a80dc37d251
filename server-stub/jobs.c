/* SPDX-License-Identifier: MIT */
/*
 * Jobs (issue 5, issue 9 item 2): one job per device and lane, one
 * command per job; the device's events move the job forward through the
 * transition table below.  The API, and the rollout engine next, start
 * jobs here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundles_svc.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "proto.h"
#include "srv.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* The transition table                                               */
/* ------------------------------------------------------------------ */

/*
 * A job type: the states a device reports for it, in the order the
 * agent goes through them (its final states last), the moves back that
 * are still legal (from, to pairs) and its lane.
 */
struct job_type {
	const char *name;
	const char *const *states;
	const char *const *back;
	const char *const *lane;
};

static const char *const update_states[] = {
    "queued",	 "downloading",	 "verifying", "installing", "installed",
    "rebooting", "health-check", "succeeded", "failed",	    "rolled-back",
    NULL};
/* a restart repeats the install pass from downloading (docs/ota.md).
 * A rollback is "reported like an update" (docs/protocol.md): the same
 * table, though today's agent goes queued, rebooting, health-check. */
static const char *const update_back[] = {
    "verifying",  "downloading", "installing", "downloading",
    "installing", "verifying",	 NULL};
/* the agent reports a rotation only when it ends */
static const char *const rotate_states[] = {"queued", "succeeded", "failed",
					    NULL};
static const char *const no_back[] = {NULL};
static const char *const ota_lane[] = {"update", "rollback", NULL};
static const char *const identity_lane[] = {"rotate", NULL};

static const struct job_type types[] = {
    {"rollback", update_states, update_back, ota_lane},
    {"rotate", rotate_states, no_back, identity_lane},
    {"update", update_states, update_back, ota_lane},
};

static const struct job_type *find_type(const char *name)
{
	for (size_t i = 0; name && i < FL_ARRAY_SIZE(types); i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

/* The position of @state in @list, or -1. */
static int rank(const char *const *list, const char *state)
{
	for (int i = 0; state && list[i]; i++)
		if (strcmp(list[i], state) == 0)
			return i;
	return -1;
}

bool srv_job_type_known(const char *type)
{
	return find_type(type) != NULL;
}

static bool back_ok(const struct job_type *t, const char *from, const char *to)
{
	for (size_t i = 0; t->back[i]; i += 2)
		if (strcmp(t->back[i], from) == 0 &&
		    strcmp(t->back[i + 1], to) == 0)
			return true;
	return false;
}

bool srv_job_transition_ok(const char *type, const char *from, const char *to)
{
	const struct job_type *t = find_type(type);
	int f, n;

	if (!t)
		return false;
	f = rank(t->states, from);
	n = rank(t->states, to);
	if (f < 0 || n < 0 || fl_job_state_name_final(from))
		return false;
	return fl_job_state_name_final(to) || n >= f || back_ok(t, from, to);
}

const char *const *srv_job_lane(const char *type)
{
	const struct job_type *t = find_type(type);

	return t ? t->lane : NULL;
}

/* ------------------------------------------------------------------ */
/* Starting jobs                                                      */
/* ------------------------------------------------------------------ */

static void new_id(char *buf, size_t len, const char *prefix)
{
	unsigned char raw[8];
	char hex[17];

	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	snprintf(buf, len, "%s%s", prefix, hex);
}

/* The bundle part of an update command: fleetd's own url, and the
 * mirror's when fleetd has one. */
static json_t *bundle_args(const struct srv *srv,
			   const struct srv_bundle_row *b)
{
	char *url = fl_xasprintf("/api/v1/bundles/%s/download", b->id);
	char *mirror = srv_bundle_mirror_url(srv, b->id);
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "id", b->id, "name",
		      b->name, "version", b->version, "sha256", b->sha256,
		      "size", (json_int_t)b->size, "url", url);

	if (mirror)
		json_object_set_new(j, "mirror", json_string(mirror));
	free(mirror);
	free(url);
	return j;
}

/* Send @j's command; a command that cannot be sent fails the job. */
static int send_command(struct srv *srv, const struct srv_job *j,
			const struct srv_bundle_row *bundle, char cmd[48],
			struct fl_error *err)
{
	json_t *args = json_pack("{s:s}", "job", j->id);
	int rc;

	if (bundle)
		json_object_set_new(args, "bundle", bundle_args(srv, bundle));
	rc = srv_mqtt_send_cmd(srv->mqtt, j->device, j->type, args, cmd, err);
	json_decref(args);
	if (rc) {
		srv_store_job_fail(srv->store, j->id, "queued", err->msg, NULL);
		return rc;
	}
	srv_store_job_command(srv->store, j->id, cmd, NULL);
	return 0;
}

int srv_job_start(struct srv *srv, const char *device, const char *type,
		  const struct srv_bundle_row *bundle, const char *rollout,
		  const char *created_by, int64_t expire, json_t **ret,
		  struct fl_error *err)
{
	struct srv_job j = {.device = device,
			    .type = type,
			    .rollout = rollout,
			    .created_by = created_by,
			    .lane = srv_job_lane(type)};
	char job[24], cmd[48], when[32];
	int rc;

	if (!j.lane)
		return fl_fail(err, FL_EINVAL, "no job type '%s'", type);
	new_id(job, sizeof(job), "j-");
	j.id = job;
	j.expires = time(NULL) + (expire > 0 ? expire : srv->cfg.job_expire);
	if (bundle) {
		j.bundle = bundle->id;
		j.to_version = bundle->version;
	}
	rc = srv_store_job_add(srv->store, &j, err);
	if (!rc)
		rc = send_command(srv, &j, bundle, cmd, err);
	if (rc)
		return rc;
	fl_info("job %s: %s of %s%s%s", job, type, device, bundle ? " to " : "",
		j.to_version ? j.to_version : "");
	fl_time_rfc3339(j.expires, when);
	*ret = json_pack("{s:s, s:s, s:s, s:s}", "device", device, "job", job,
			 "command", cmd, "expires", when);
	return 0;
}

/*
 * End @device's open rotate job: a new rotation supersedes it (every
 * rotate request sends a command, as before rotations were jobs).
 */
static void supersede_rotation(struct srv *srv, const char *device,
			       const char *actor)
{
	char *who = fl_xasprintf("%s (a new rotation)", actor);
	struct srv_job_row open = {0};

	if (!srv_store_job_open(srv->store, device, "rotate", &open, NULL) &&
	    !srv_store_job_cancel(srv->store, open.id, who, NULL))
		fl_info("job %s: superseded by a new rotation of %s", open.id,
			device);
	srv_job_row_free(&open);
	free(who);
}

int srv_job_rotate(struct srv *srv, const struct srv_device_row *dev,
		   const char *created_by, json_t **ret, struct fl_error *err)
{
	json_t *job = NULL;
	int rc = FL_ECONFLICT;

	for (int i = 0; i < 3 && rc == FL_ECONFLICT; i++) {
		if (i) {
			fl_error_clear(err);
			supersede_rotation(srv, dev->id, created_by);
		}
		rc = srv_job_start(srv, dev->id, "rotate", NULL, NULL,
				   created_by, 0, &job, err);
	}
	if (rc)
		return rc;
	*ret = json_pack("{s:s, s:O, s:o, s:O}", "device", dev->id, "command",
			 json_object_get(job, "command"), "old_serial",
			 dev->cert_serial ? json_string(dev->cert_serial)
					  : json_null(),
			 "job", json_object_get(job, "job"));
	json_decref(job);
	return 0;
}

int srv_job_device(struct srv *srv, const char *device,
		   struct srv_device_row *ret_dev, struct fl_error *err)
{
	struct srv_device_row dev = {0};
	int rc = srv_store_device_get(srv->store, device, &dev, err);

	if (!rc && !fl_streq(dev.state, "active"))
		rc = fl_fail(err, FL_ECONFLICT, "device %s is %s", device,
			     dev.state);
	if (!rc && ret_dev)
		*ret_dev = dev;
	else
		srv_device_row_free(&dev);
	return rc;
}

void srv_job_new_ids(char job[24], char command[40])
{
	new_id(job, 24, "j-");
	srv_mqtt_new_cmd_id(command);
}

/* A command to @device with the id @id, through srv->send_cmd or MQTT. */
static int publish_cmd(struct srv *srv, const char *device, const char *type,
		       json_t *args, const char *id, struct fl_error *err)
{
	if (srv->send_cmd)
		return srv->send_cmd(srv->send_ctx, device, type, args, id,
				     err);
	return srv_mqtt_send_cmd_id(srv->mqtt, device, type, args, id, err);
}

int srv_job_send(struct srv *srv, const char *device, const char *type,
		 const char *job, const char *command,
		 const struct srv_bundle_row *bundle, struct fl_error *err)
{
	json_t *args = json_pack("{s:s}", "job", job);
	int rc;

	if (bundle)
		json_object_set_new(args, "bundle", bundle_args(srv, bundle));
	rc = publish_cmd(srv, device, type, args, command, err);
	json_decref(args);
	return rc;
}

int srv_job_tell_cancel(struct srv *srv, const char *device, const char *job,
			struct fl_error *err)
{
	json_t *args = json_pack("{s:s}", "job", job);
	char id[40];
	int rc;

	srv_mqtt_new_cmd_id(id);
	rc = publish_cmd(srv, device, "cancel", args, id, err);
	json_decref(args);
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
