/* SPDX-License-Identifier: MIT */
/*
 * Enrolment as a whole (enroll.h): the steps `fleet-agent enroll` used
 * to run itself, so that tests and fleet-sim enrol devices the same way.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enroll.h"
#include "fsutil.h"
#include "identity.h"
#include "trust.h"
#include "util.h"
#include "validate.h"

int agent_enroll_pick_id(const char *given, const struct agent_config *cfg,
			 char *buf, size_t size)
{
	if (given)
		fl_strlcpy(buf, given, size);
	else if (cfg)
		fl_strlcpy(buf, cfg->id, size);
	else if (gethostname(buf, size) < 0)
		return FL_EINVAL;
	buf[size - 1] = '\0';
	for (char *p = buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return fl_valid_id(buf) ? 0 : FL_EINVAL;
}

int agent_config_write(const char *path, const struct agent_config_template *t,
		       struct fl_error *err)
{
	char *text = NULL, *dir = fl_xstrdup(path), *slash;
	int rc = 0;

	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		rc = fl_mkdir_p(dir, 0755, err);
	}
	if (!rc)
		rc = agent_config_render(t, &text, err);
	if (!rc)
		rc = fl_write_atomic_str(path, text, 0644, err);
	free(text);
	free(dir);
	return rc;
}

/* agent.conf for the new device, unless the caller keeps its own. */
static int write_config(const struct agent_enroll_req *req,
			struct agent_enroll_result *r, struct fl_error *err)
{
	const char *mqtt = req->mqtt_url;
	struct agent_config_template t = {
	    .id = req->id,
	    .server_url = req->server_url,
	    .state_dir = r->state_dir,
	    /* present only when fleetd's is not the default (proto.h) */
	    .topic_prefix = json_string_value(
		json_object_get(r->resp, "topic_prefix"))};
	int rc;

	if (!req->config_path)
		return 0;
	if (!mqtt)
		mqtt = json_string_value(json_object_get(r->resp, "mqtt_url"));
	if (!mqtt)
		return fl_fail(err, FL_EPARSE,
			       "fleetd sent no mqtt_url; give --mqtt URL");
	t.mqtt_url = mqtt;
	rc = agent_config_write(req->config_path, &t, err);
	r->wrote_config = rc == 0;
	return rc;
}

int agent_enroll_device(const struct agent_enroll_req *req,
			struct agent_enroll_result *ret, struct fl_error *err)
{
	struct agent_http_target t = {.server_url = req->server_url,
				      .ca_file = req->ca_file};
	char *abs;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = agent_enroll(&t, req->state_dir, req->id, req->token, &ret->resp,
			  err);
	if (rc)
		return rc;
	ret->enrolled = true;
	/* trusted on first use over the channel just authenticated */
	ret->trust_rc =
	    agent_trust_fetch_first(&t, req->state_dir, &ret->trust_err);
	abs = realpath(req->state_dir, NULL);
	ret->state_dir = abs ? abs : fl_xstrdup(req->state_dir);
	return write_config(req, ret, err);
}

void agent_enroll_result_release(struct agent_enroll_result *r)
{
	if (!r)
		return;
	json_decref(r->resp);
	free(r->state_dir);
	memset(r, 0, sizeof(*r));
}
