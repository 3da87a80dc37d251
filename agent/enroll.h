/* SPDX-License-Identifier: MIT */
#ifndef AGENT_ENROLL_H
#define AGENT_ENROLL_H

/*
 * Enrolment of a device as a whole (`fleet-agent enroll`, tests and
 * fleet-sim): pick the id, enrol with a claim token (identity.h), fetch
 * the bundle trust root on first use, write agent.conf.  No printing:
 * the caller reports from the result.
 */
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "agent_config.h"
#include "err.h"

struct agent_enroll_req {
	const char *id;		 /* the device id (agent_enroll_pick_id) */
	const char *server_url;	 /* required */
	const char *ca_file;	 /* required: pins fleetd */
	const char *token;	 /* required: the claim token (not kept) */
	const char *state_dir;	 /* required */
	const char *mqtt_url;	 /* NULL: the one fleetd sends */
	const char *config_path; /* NULL: agent.conf exists, leave it */
};

struct agent_enroll_result {
	json_t *resp;	 /* fleetd's answer (serial, expires, group, ...) */
	char *state_dir; /* absolute when it resolves */
	bool enrolled;	 /* the identity exists (even if the rest failed) */
	bool wrote_config;
	/* the trust root: 0 fetched, FL_ENOTFOUND fleetd has none yet,
	 * else not fetched and @trust_err says why; never fails enrolment */
	int trust_rc;
	struct fl_error trust_err;
};

/*
 * The device id: @given, else @cfg's (may be NULL), else the host
 * name; lower-cased into @buf.  Returns 0, or FL_EINVAL when the result
 * is not a valid device id.
 */
int agent_enroll_pick_id(const char *given, const struct agent_config *cfg,
			 char *buf, size_t size);

/*
 * Enrol per @req and fill *@ret (release with
 * agent_enroll_result_release, also after a failure).  Returns 0,
 * agent_enroll's codes (ret->enrolled false), or when only agent.conf
 * failed (ret->enrolled true): FL_EPARSE (fleetd sent no mqtt_url and
 * none was given), agent_config_write's codes.
 */
int agent_enroll_device(const struct agent_enroll_req *req,
			struct agent_enroll_result *ret, struct fl_error *err);

void agent_enroll_result_release(struct agent_enroll_result *r);

/*
 * Write agent.conf at @path for @t (agent_config_render), creating its
 * directory; atomically, mode 0644.  Returns 0, the renderer's codes,
 * FL_EIO.
 */
int agent_config_write(const char *path, const struct agent_config_template *t,
		       struct fl_error *err);

#endif
