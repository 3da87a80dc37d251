/* SPDX-License-Identifier: MIT */
/*
 * Certificate rotation and renewal (docs/protocol.md "rotate"):
 *
 *   reenroll  new key + CSR, POST /api/v1/reenroll with the current cert
 *   connect   reconnect the MQTT session with the staged files; the
 *             broker's CONNACK proves the new certificate works
 *   commit    confirm.json written, staged files renamed into place
 *   confirm   POST /api/v1/reenroll/confirm with the new cert; fleetd
 *             then revokes the old one
 *
 * A failure before commit deletes the staged files and reconnects with
 * the old certificate.  A failed confirmation is retried with backoff
 * (confirm.json survives restarts); the outcome event is published when
 * it succeeds.
 *
 * A feature (feature.h): owns "rotate", keeps the renewal and the
 * confirmation timers in its tick, adds the certificate's renewal
 * window and a pending confirmation to `fleet-agent status`.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_mqtt.h" /* agent_backoff */
#include "feature.h"
#include "rotate.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define CONFIRM_FILE "confirm.json"

struct rotate {
	struct agent_host *h;
	char *confirm_path;
	time_t renew_at;

	/* a committed certificate fleetd has not confirmed yet */
	bool confirm_pending;
	char confirm_cmd[AGENT_CMD_ID_MAX + 1]; /* "" for a renewal */
	int64_t confirm_next_ms;
	struct agent_backoff confirm_backoff;

	/* renewal retries after a failure */
	int64_t renew_next_ms;
	struct agent_backoff renew_backoff;
};

static void schedule_renewal(struct rotate *r)
{
	char when[21];

	r->renew_at = agent_identity_renew_at(agent_host_cert(r->h)->not_before,
					      agent_host_cert(r->h)->not_after,
					      agent_rand32());
	r->renew_next_ms = 0;
	agent_backoff_reset(&r->renew_backoff);
	fl_time_rfc3339(r->renew_at, when);
	fl_debug("certificate %s renews at %s", agent_host_cert(r->h)->serial,
		 when);
}

/* ------------------------------------------------------------------ */
/* confirm.json                                                       */
/* ------------------------------------------------------------------ */

static int confirm_save(struct rotate *r, const char *serial,
			const char *cmd_id, struct fl_error *err)
{
	json_t *j = json_pack("{s:s, s:o}", "serial", serial, "cmd",
			      cmd_id ? json_string(cmd_id) : json_null());
	int rc = fl_json_save_file(j, r->confirm_path, 0600, err);

	json_decref(j);
	return rc;
}

static void confirm_clear(struct rotate *r)
{
	struct fl_error err = {0};

	if (unlink(r->confirm_path) < 0 && fl_path_exists(r->confirm_path))
		fl_error("cannot remove '%s'", r->confirm_path);
	else if (fl_fsync_parent(r->confirm_path, &err))
		fl_warn("%s", err.msg);
	r->confirm_pending = false;
	r->confirm_cmd[0] = '\0';
}

/*
 * At start-up: a confirm.json for the current certificate means the
 * confirmation is still owed; one for another serial is left over from
 * a rotation that never committed and is dropped.
 */
static int confirm_load(struct rotate *r, struct fl_error *err)
{
	const char *serial, *cmd = NULL;
	json_t *j = NULL;
	int rc;

	if (!fl_path_exists(r->confirm_path))
		return 0;
	rc = fl_json_load_file(r->confirm_path, 4096, &j, err);
	if (!rc)
		rc = fl_json_str(j, "serial", FL_PKI_SERIAL_HEX_MAX, &serial,
				 err);
	if (!rc)
		rc = fl_json_str_opt(j, "cmd", AGENT_CMD_ID_MAX, &cmd, err);
	if (rc) {
		fl_warn("dropping a corrupt '%s': %s", r->confirm_path,
			err ? err->msg : "");
		fl_error_clear(err);
		confirm_clear(r);
		json_decref(j);
		return 0;
	}
	if (fl_streq(serial, agent_host_cert(r->h)->serial)) {
		r->confirm_pending = true;
		fl_strlcpy(r->confirm_cmd, cmd ? cmd : "",
			   sizeof(r->confirm_cmd));
		r->confirm_next_ms = 0;
	} else {
		confirm_clear(r);
	}
	json_decref(j);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Steps                                                              */
/* ------------------------------------------------------------------ */

/*
 * Reconnect with the staged files; on failure go back to the old ones.
 * A connection that drops before its CONNACK is tried again (at most
 * NEW_IDENTITY_TRIES in all, within the rotation timeout): a busy
 * broker must not cost the device its rotation.  The error names how
 * the last attempt ended.
 */
#define NEW_IDENTITY_TRIES 3
#define NEW_IDENTITY_PAUSE_MS 250

static int connect_new(struct rotate *r, struct fl_error *err)
{
	int64_t end = fl_now_ms() +
		      (int64_t)agent_host_config(r->h)->rotate_timeout_s * 1000;
	int rc;

	for (int i = 1;; i++) {
		int64_t left = end - fl_now_ms();

		rc = agent_host_use_identity(r->h, true, true, (int)left, err);
		if (!rc || rc == FL_ETIMEOUT || i == NEW_IDENTITY_TRIES ||
		    agent_host_stopping(r->h) ||
		    left <= NEW_IDENTITY_PAUSE_MS * i)
			return rc;
		fl_warn("new certificate, attempt %d of %d: %s", i,
			NEW_IDENTITY_TRIES, err ? err->msg : "");
		fl_error_clear(err);
		poll(NULL, 0, NEW_IDENTITY_PAUSE_MS * i);
	}
}

static int try_new_identity(struct rotate *r, struct fl_error *err)
{
	struct fl_error e2 = {0};
	int rc = connect_new(r, err);

	if (!rc)
		return 0;
	fl_warn("new certificate refused, keeping the old one: %s",
		err ? err->msg : "");
	if (agent_host_use_identity(r->h, false, false, 0, &e2))
		fl_error("%s", e2.msg);
	agent_host_resume(r->h);
	return rc;
}

/* Make the staged identity current and owe fleetd a confirmation. */
static int commit_new(struct rotate *r, const struct fl_pki_cert_info *info,
		      const char *cmd_id, struct fl_error *err)
{
	const char *dir = agent_host_state_dir(r->h);
	int rc;

	rc = confirm_save(r, info->serial, cmd_id, err);
	if (!rc)
		rc = agent_identity_commit(dir, err);
	if (rc) {
		confirm_clear(r);
		return rc;
	}
	agent_host_set_cert(r->h, info);
	r->confirm_pending = true;
	fl_strlcpy(r->confirm_cmd, cmd_id ? cmd_id : "",
		   sizeof(r->confirm_cmd));
	agent_backoff_reset(&r->confirm_backoff);
	if (agent_host_use_identity(r->h, false, false, 0, err))
		fl_error("%s", err->msg);
	fl_error_clear(err);
	schedule_renewal(r);
	agent_host_publish_status(r->h);
	fl_info("now using certificate %s", info->serial);
	return 0;
}

static int confirm_now(struct rotate *r, struct fl_error *err)
{
	int rc = agent_reenroll_confirm(agent_host_http(r->h),
					agent_host_state_dir(r->h), err);

	if (rc) {
		r->confirm_next_ms =
		    agent_host_now_ms(r->h) +
		    agent_backoff_next(&r->confirm_backoff, agent_rand32());
		return rc;
	}
	confirm_clear(r);
	return 0;
}

/*
 * The whole rotation.  Returns 0 when the new certificate is in use;
 * out->pending when fleetd has not confirmed yet (retried by the tick).
 */
static int rotate(struct rotate *r, const char *cmd_id,
		  struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct fl_pki_cert_info info;
	struct fl_error cerr = {0};
	int rc;

	fl_info("rotating certificate %s", agent_host_cert(r->h)->serial);
	out->stage = "reenroll";
	rc = agent_reenroll(agent_host_http(r->h), agent_host_state_dir(r->h),
			    agent_host_config(r->h)->id, &info, err);
	if (rc)
		return rc;
	out->stage = "connect";
	rc = try_new_identity(r, err);
	if (rc) {
		agent_identity_discard(agent_host_state_dir(r->h));
		return rc;
	}
	out->stage = "commit";
	rc = commit_new(r, &info, cmd_id, err);
	if (rc)
		return rc;
	out->stage = NULL;
	json_object_set_new(out->fields, "serial", json_string(info.serial));
	if (confirm_now(r, &cerr)) {
		fl_warn("confirmation failed, will retry: %s", cerr.msg);
		out->pending = true;
	}
	return 0;
}

static int cmd_rotate(struct agent_host *h, void *state,
		      const struct agent_cmd *cmd,
		      struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct rotate *r = state;

	if (r->confirm_pending && confirm_now(r, err)) {
		out->stage = "confirm";
		return fl_fail(err, FL_ECONFLICT,
			       "the previous rotation is not confirmed yet");
	}
	return rotate(r, cmd->id, out, err);
}

/* ------------------------------------------------------------------ */
/* Timers                                                             */
/* ------------------------------------------------------------------ */

/* The confirmation came through: publish the owed outcome. */
static void confirmed(struct rotate *r, const char *cmd_id)
{
	json_t *f = json_pack("{s:s}", "serial", agent_host_cert(r->h)->serial);
	struct fl_error err = {0};

	if (cmd_id && *cmd_id) {
		agent_host_complete(r->h, cmd_id, "rotate", "succeeded", NULL,
				    NULL, f);
	} else {
		json_object_set_new(f, "trigger", json_string("renewal"));
		if (agent_host_publish_event(r->h, NULL, "rotate", "succeeded",
					     f, NULL, &err))
			fl_error("%s", err.msg);
	}
	json_decref(f);
}

static void retry_confirm(struct rotate *r)
{
	char cmd[AGENT_CMD_ID_MAX + 1];
	struct fl_error err = {0};

	fl_strlcpy(cmd, r->confirm_cmd, sizeof(cmd));
	if (confirm_now(r, &err)) {
		fl_warn("confirmation failed, will retry: %s", err.msg);
		return;
	}
	fl_info("fleetd confirmed certificate %s",
		agent_host_cert(r->h)->serial);
	confirmed(r, cmd);
}

static void renew(struct rotate *r)
{
	struct agent_cmd_outcome out = {.fields = json_object()};
	struct fl_error err = {0};
	int rc;

	fl_info("renewing certificate %s (expires in %llds)",
		agent_host_cert(r->h)->serial,
		(long long)(agent_host_cert(r->h)->not_after -
			    agent_host_time(r->h)));
	json_object_set_new(out.fields, "trigger", json_string("renewal"));
	rc = rotate(r, NULL, &out, &err);
	if (rc) {
		int64_t delay =
		    agent_backoff_next(&r->renew_backoff, agent_rand32());

		fl_warn("renewal failed (%s), retrying in %llds", err.msg,
			(long long)delay / 1000);
		r->renew_next_ms = agent_host_now_ms(r->h) + delay;
		json_object_set_new(out.fields, "stage",
				    json_string(out.stage ? out.stage : "run"));
		json_object_set_new(out.fields, "reason", json_string(err.msg));
		fl_error_clear(&err);
		if (agent_host_publish_event(r->h, NULL, "rotate", "failed",
					     out.fields, NULL, &err))
			fl_error("%s", err.msg);
	} else if (!out.pending &&
		   agent_host_publish_event(r->h, NULL, "rotate", "succeeded",
					    out.fields, NULL, &err)) {
		fl_error("%s", err.msg);
	}
	json_decref(out.fields);
}

/* A confirmation to retry, or a renewal (while online) whose time
 * has come. */
static bool due(const struct agent_host *h, const void *state)
{
	const struct rotate *r = state;
	int64_t now = agent_host_now_ms(h);

	if (r->confirm_pending)
		return now >= r->confirm_next_ms;
	return agent_host_config(h)->auto_renew && agent_host_online(h) &&
	       agent_host_time(h) >= r->renew_at && now >= r->renew_next_ms;
}

static void tick(struct agent_host *h, void *state)
{
	struct rotate *r = state;

	if (!due(h, r))
		return;
	if (r->confirm_pending)
		retry_confirm(r);
	else
		renew(r);
}

/* ------------------------------------------------------------------ */
/* The feature                                                        */
/* ------------------------------------------------------------------ */

static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	struct rotate *r = fl_xcalloc(1, sizeof(*r));
	int rc;

	r->h = h;
	r->confirm_path = fl_path_join(agent_host_state_dir(h), CONFIRM_FILE);
	r->confirm_backoff = (struct agent_backoff){5000, 600000, 0};
	r->renew_backoff = (struct agent_backoff){10000, 3600000, 0};
	*ret_state = r;
	rc = confirm_load(r, err);
	if (!rc)
		schedule_renewal(r);
	return rc;
}

static void rotate_free(void *state)
{
	struct rotate *r = state;

	if (!r)
		return;
	free(r->confirm_path);
	free(r);
}

/* A rotation waiting for fleetd's confirmation is not interrupted. */
static bool owns_running(void *state, const char *cmd_id)
{
	const struct rotate *r = state;

	return r->confirm_pending && fl_streq(cmd_id, r->confirm_cmd);
}

static void add_time(json_t *j, const char *key, time_t t)
{
	char buf[21];

	fl_time_rfc3339(t, buf);
	json_object_set_new(j, key, json_string(buf));
}

/* `fleet-agent status`: a pending confirmation, validity, renewal. */
static int status(const struct agent_config *cfg,
		  const struct fl_pki_cert_info *cert, json_t *into,
		  struct fl_error *err)
{
	char *path = fl_path_join(cfg->state_dir, CONFIRM_FILE);
	json_t *confirm = NULL;
	int rc = 0;

	if (fl_path_exists(path))
		rc = fl_json_load_file(path, 4096, &confirm, err);
	free(path);
	if (rc)
		return rc;
	json_object_set_new(into, "confirm_pending",
			    confirm ? confirm : json_null());
	add_time(into, "cert_not_before", cert->not_before);
	add_time(into, "cert_expires", cert->not_after);
	add_time(into, "renew_from",
		 agent_identity_renew_at(cert->not_before, cert->not_after, 0));
	add_time(into, "renew_until",
		 agent_identity_renew_at(cert->not_before, cert->not_after,
					 UINT32_MAX));
	return 0;
}

time_t agent_rotate_renew_at(const void *state)
{
	const struct rotate *r = state;

	return r ? r->renew_at : 0;
}

void agent_rotate_renew_soon(void *state)
{
	struct rotate *r = state;

	if (!r)
		return;
	r->renew_at = agent_host_time(r->h);
	r->renew_next_ms = 0;
}

static const struct agent_feature_cmd cmds[] = {
    {"rotate", cmd_rotate},
    {NULL, NULL},
};

const struct agent_feature agent_feature_rotate = {
    .name = "rotate",
    .init = init,
    .owns_running = owns_running,
    .tick = tick,
    .due = due,
    .status = status,
    .cmds = cmds,
    .free = rotate_free,
};
