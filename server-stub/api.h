/* SPDX-License-Identifier: MIT */
#ifndef SRV_API_H
#define SRV_API_H

#include "httpd.h"

/* Handlers of the route table (server-stub/routes.c), one file per area. */

/* api_basic.c */
int api_healthz(struct srv_req *r);
int api_ready(struct srv_req *r);
int api_version(struct srv_req *r);
int api_status(struct srv_req *r);
int api_whoami(struct srv_req *r);
int api_audit_list(struct srv_req *r);

/* metrics_http.c */
int api_metrics(struct srv_req *r);

/* api_tokens.c */
int api_token_create(struct srv_req *r);
int api_token_list(struct srv_req *r);
int api_token_revoke(struct srv_req *r);

/* api_devices.c */
int api_enroll(struct srv_req *r);
int api_provision(struct srv_req *r);
int api_reenroll(struct srv_req *r);
int api_reenroll_confirm(struct srv_req *r);
int api_device_list(struct srv_req *r);
int api_device_get(struct srv_req *r);
int api_device_labels(struct srv_req *r);
int api_device_decommission(struct srv_req *r);
int api_rotate(struct srv_req *r);
/* api_provision.c */
int api_provision_undo(struct srv_req *r);

/* api_tech.c */
int api_tech_issue(struct srv_req *r);
int api_tech_list(struct srv_req *r);
int api_tech_revoke(struct srv_req *r);

/* api_bundles.c */
int api_bundle_upload(struct srv_req *r);
int api_bundle_upload_body(struct srv_req *r, const char *data, size_t len,
			   struct fl_error *err);
int api_bundle_list(struct srv_req *r);
int api_bundle_get(struct srv_req *r);
int api_bundle_download(struct srv_req *r);
int api_root_push(struct srv_req *r);
int api_root_list(struct srv_req *r);
int api_root_get(struct srv_req *r);

/* api_jobs.c */
int api_update(struct srv_req *r);
int api_device_rollback(struct srv_req *r);
int api_job_list(struct srv_req *r);
int api_job_get(struct srv_req *r);
int api_job_cancel(struct srv_req *r);

/* api_rollouts.c */
int api_rollout_plan(struct srv_req *r);
int api_rollout_create(struct srv_req *r);
int api_rollout_list(struct srv_req *r);
int api_rollout_get(struct srv_req *r);
int api_rollout_pause(struct srv_req *r);
int api_rollout_resume(struct srv_req *r);
int api_rollout_abort(struct srv_req *r);
int api_rollout_rollback(struct srv_req *r);

/* api_diag.c */
int api_diag_device(struct srv_req *r);
int api_diag_fanout(struct srv_req *r);
int api_diag_bundle_request(struct srv_req *r);
int api_diag_bundle_get(struct srv_req *r);
int api_diag_bundle_put(struct srv_req *r);
int api_diag_bundle_body(struct srv_req *r, const char *data, size_t len,
			 struct fl_error *err);
uint64_t api_diag_bundle_max(const struct srv *srv);

/* api_shadow.c */
int api_shadow_get(struct srv_req *r);
int api_shadow_set(struct srv_req *r);
int api_shadow_group(struct srv_req *r);

/* api_telemetry.c */
int api_telemetry_get(struct srv_req *r);
uint64_t api_shadow_body_max(const struct srv *srv);

/* api_dash.c: the web dashboard */
int api_dash_index(struct srv_req *r);
int api_dash_file(struct srv_req *r);
int api_dash_session(struct srv_req *r);
int api_dash_login(struct srv_req *r);
int api_dash_logout(struct srv_req *r);

#endif
