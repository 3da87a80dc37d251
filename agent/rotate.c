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
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "util.h"

void agent_schedule_renewal(struct agent *a)
{
	char when[21];

	a->renew_at = agent_identity_renew_at(a->cert.not_before,
					      a->cert.not_after,
					      agent_rand32());
	a->renew_next_ms = 0;
	agent_backoff_reset(&a->renew_backoff);
	fl_time_rfc3339(a->renew_at, when);
	fl_debug("%s: certificate %s renews at %s", a->cfg->id, a->cert.serial,
		 when);
}

/* ------------------------------------------------------------------ */
/* confirm.json                                                       */
/* ------------------------------------------------------------------ */

static int confirm_save(struct agent *a, const char *serial,
			const char *cmd_id, struct fl_error *err)
{
	json_t *j = json_pack("{s:s, s:o}", "serial", serial, "cmd",
			      cmd_id ? json_string(cmd_id) : json_null());
	int rc = fl_json_save_file(j, a->confirm_path, 0600, err);

	json_decref(j);
	return rc;
}

static void confirm_clear(struct agent *a)
{
	struct fl_error err = {0};

	if (unlink(a->confirm_path) < 0 && fl_path_exists(a->confirm_path))
		fl_error("%s: cannot remove '%s'", a->cfg->id, a->confirm_path);
	else if (fl_fsync_parent(a->confirm_path, &err))
		fl_warn("%s: %s", a->cfg->id, err.msg);
	a->confirm_pending = false;
	a->confirm_cmd[0] = '\0';
}

/*
 * At start-up: a confirm.json for the current certificate means the
 * confirmation is still owed; one for another serial is left over from
 * a rotation that never committed and is dropped.
 */
int agent_confirm_load(struct agent *a, struct fl_error *err)
{
	const char *serial, *cmd = NULL;
	json_t *j = NULL;
	int rc;

	if (!fl_path_exists(a->confirm_path))
		return 0;
	rc = fl_json_load_file(a->confirm_path, 4096, &j, err);
	if (!rc)
		rc = fl_json_str(j, "serial", FL_PKI_SERIAL_HEX_MAX, &serial,
				 err);
	if (!rc)
		rc = fl_json_str_opt(j, "cmd", AGENT_CMD_ID_MAX, &cmd, err);
	if (rc) {
		fl_warn("%s: dropping a corrupt '%s': %s", a->cfg->id,
			a->confirm_path, err ? err->msg : "");
		fl_error_clear(err);
		confirm_clear(a);
		json_decref(j);
		return 0;
	}
	if (fl_streq(serial, a->cert.serial)) {
		a->confirm_pending = true;
		fl_strlcpy(a->confirm_cmd, cmd ? cmd : "",
			   sizeof(a->confirm_cmd));
		a->confirm_next_ms = 0;
	} else {
		confirm_clear(a);
	}
	json_decref(j);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Steps                                                              */
/* ------------------------------------------------------------------ */

/* Reconnect with the staged files; on failure go back to the old ones. */
static int try_new_identity(struct agent *a, struct fl_error *err)
{
	struct fl_error e2 = {0};
	int rc;

	rc = agent_mqtt_set_identity(a->mqtt, a->staged.cert, a->staged.key,
				     true, err);
	if (!rc)
		rc = agent_mqtt_connect_wait(
		    a->mqtt, (int)a->cfg->rotate_timeout_s * 1000, a->stop,
		    err);
	if (!rc)
		return 0;
	fl_warn("%s: new certificate refused, keeping the old one: %s",
		a->cfg->id, err ? err->msg : "");
	if (agent_mqtt_set_identity(a->mqtt, a->cur.cert, a->cur.key, true,
				    &e2))
		fl_error("%s: %s", a->cfg->id, e2.msg);
	agent_mqtt_resume(a->mqtt);
	return rc;
}

/* Make the staged identity current and owe fleetd a confirmation. */
static int commit_new(struct agent *a, const struct fl_pki_cert_info *info,
		      const char *cmd_id, struct fl_error *err)
{
	const char *dir = a->cfg->state_dir;
	int rc;

	rc = confirm_save(a, info->serial, cmd_id, err);
	if (!rc)
		rc = agent_identity_commit(dir, err);
	if (rc) {
		confirm_clear(a);
		return rc;
	}
	a->cert = *info;
	a->confirm_pending = true;
	fl_strlcpy(a->confirm_cmd, cmd_id ? cmd_id : "",
		   sizeof(a->confirm_cmd));
	agent_backoff_reset(&a->confirm_backoff);
	if (agent_mqtt_set_identity(a->mqtt, a->cur.cert, a->cur.key, false,
				    err))
		fl_error("%s: %s", a->cfg->id, err->msg);
	fl_error_clear(err);
	agent_schedule_renewal(a);
	agent_publish_status(a);
	fl_info("%s: now using certificate %s", a->cfg->id, info->serial);
	return 0;
}

static int confirm_now(struct agent *a, struct fl_error *err)
{
	int rc = agent_reenroll_confirm(&a->http, a->cfg->state_dir, err);

	if (rc) {
		a->confirm_next_ms =
		    fl_now_ms() +
		    agent_backoff_next(&a->confirm_backoff, agent_rand32());
		return rc;
	}
	confirm_clear(a);
	return 0;
}

/*
 * The whole rotation.  Returns 0 when the new certificate is in use;
 * out->pending when fleetd has not confirmed yet (retried by the tick).
 */
static int rotate(struct agent *a, const char *cmd_id,
		  struct agent_cmd_outcome *out, struct fl_error *err)
{
	struct fl_pki_cert_info info;
	struct fl_error cerr = {0};
	int rc;

	fl_info("%s: rotating certificate %s", a->cfg->id, a->cert.serial);
	out->stage = "reenroll";
	rc = agent_reenroll(&a->http, a->cfg->state_dir, a->cfg->id, &info,
			    err);
	if (rc)
		return rc;
	out->stage = "connect";
	rc = try_new_identity(a, err);
	if (rc) {
		agent_identity_discard(a->cfg->state_dir);
		return rc;
	}
	out->stage = "commit";
	rc = commit_new(a, &info, cmd_id, err);
	if (rc)
		return rc;
	out->stage = NULL;
	json_object_set_new(out->fields, "serial", json_string(info.serial));
	if (confirm_now(a, &cerr)) {
		fl_warn("%s: confirmation failed, will retry: %s", a->cfg->id,
			cerr.msg);
		out->pending = true;
	}
	return 0;
}

int agent_cmd_rotate(struct agent *a, const struct agent_cmd *cmd,
		     struct agent_cmd_outcome *out, struct fl_error *err)
{
	if (a->confirm_pending && confirm_now(a, err)) {
		out->stage = "confirm";
		return fl_fail(err, FL_ECONFLICT,
			       "the previous rotation is not confirmed yet");
	}
	return rotate(a, cmd->id, out, err);
}

/* ------------------------------------------------------------------ */
/* Timers                                                             */
/* ------------------------------------------------------------------ */

/* The confirmation came through: publish the owed outcome. */
static void confirmed(struct agent *a, const char *cmd_id)
{
	json_t *f = json_pack("{s:s}", "serial", a->cert.serial);
	struct fl_error err = {0};

	if (cmd_id && *cmd_id) {
		agent_cmd_complete(a, cmd_id, "rotate", "succeeded", NULL,
				   NULL, f);
	} else {
		json_object_set_new(f, "trigger", json_string("renewal"));
		if (agent_publish_event(a, NULL, "rotate", "succeeded", f,
					NULL, &err))
			fl_error("%s: %s", a->cfg->id, err.msg);
	}
	json_decref(f);
}

static void retry_confirm(struct agent *a)
{
	char cmd[AGENT_CMD_ID_MAX + 1];
	struct fl_error err = {0};

	fl_strlcpy(cmd, a->confirm_cmd, sizeof(cmd));
	if (confirm_now(a, &err)) {
		fl_warn("%s: confirmation failed, will retry: %s", a->cfg->id,
			err.msg);
		return;
	}
	fl_info("%s: fleetd confirmed certificate %s", a->cfg->id,
		a->cert.serial);
	confirmed(a, cmd);
}

static void renew(struct agent *a)
{
	struct agent_cmd_outcome out = {.fields = json_object()};
	struct fl_error err = {0};
	int rc;

	fl_info("%s: renewing certificate %s (expires in %llds)", a->cfg->id,
		a->cert.serial, (long long)(a->cert.not_after - time(NULL)));
	json_object_set_new(out.fields, "trigger", json_string("renewal"));
	rc = rotate(a, NULL, &out, &err);
	if (rc) {
		int64_t delay =
		    agent_backoff_next(&a->renew_backoff, agent_rand32());

		fl_warn("%s: renewal failed (%s), retrying in %llds",
			a->cfg->id, err.msg, (long long)delay / 1000);
		a->renew_next_ms = fl_now_ms() + delay;
		json_object_set_new(out.fields, "stage",
				    json_string(out.stage ? out.stage : "run"));
		json_object_set_new(out.fields, "reason", json_string(err.msg));
		fl_error_clear(&err);
		if (agent_publish_event(a, NULL, "rotate", "failed", out.fields,
					NULL, &err))
			fl_error("%s: %s", a->cfg->id, err.msg);
	} else if (!out.pending &&
		   agent_publish_event(a, NULL, "rotate", "succeeded",
				       out.fields, NULL, &err)) {
		fl_error("%s: %s", a->cfg->id, err.msg);
	}
	json_decref(out.fields);
}

void agent_rotate_tick(struct agent *a)
{
	int64_t now = fl_now_ms();

	if (a->confirm_pending) {
		if (now >= a->confirm_next_ms)
			retry_confirm(a);
		return;
	}
	if (a->cfg->auto_renew && agent_mqtt_connected(a->mqtt) &&
	    time(NULL) >= a->renew_at && now >= a->renew_next_ms)
		renew(a);
}
