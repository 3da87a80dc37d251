/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "api.h"

#define R(method, pattern, roles, fn)                                       \
	{method, pattern, roles, fn, 0, NULL, NULL}
#define PUBLIC(method, pattern, fn)                                        \
	{method, pattern, 0, fn, SRV_PUBLIC, NULL, NULL}
#define UPLOAD(method, pattern, roles, fn, body)                           \
	{method, pattern, roles, fn, 0, body, NULL}
/* audited even as a GET */
#define AUDITED(method, pattern, roles, fn)                                \
	{method, pattern, roles, fn, SRV_AUDIT, NULL, NULL}
/* a JSON call with its own body cap */
#define CAPPED(method, pattern, roles, fn, max)                            \
	{method, pattern, roles, fn, 0, NULL, max}
/* an upload with its own size cap */
#define UPLOAD_CAP(method, pattern, roles, fn, body, max)                  \
	{method, pattern, roles, fn, 0, body, max}

/* Who may read device and bundle data. */
#define READERS SRV_ROLES_READ
#define DEVICE SRV_ROLE_DEVICE
/* Who may run diagnostics on devices (issue 12). */
#define DIAG (SRV_ROLES_OPS | SRV_ROLE_TECHNICIAN)
/* Who may write device shadows (issue 13): technicians too. */
#define SHADOW (SRV_ROLES_OPS | SRV_ROLE_TECHNICIAN)

/*
 * Every endpoint fleetd serves, with the roles allowed to call it.
 * Authentication, role checks, body caps and auditing are applied by
 * httpd.c from this table alone (docs/protocol.md, fleetd(8)).
 */
const struct srv_route srv_routes[] = {
	PUBLIC("GET", "/healthz", api_healthz),
	PUBLIC("GET", "/readyz", api_ready),
	PUBLIC("GET", "/api/v1/version", api_version),
	/* Prometheus metrics (docs/metrics.md): readers, never ci */
	R("GET", "/metrics", READERS, api_metrics),
	R("GET", "/api/v1/whoami", SRV_ROLES_ALL, api_whoami),
	R("GET", "/api/v1/status", READERS, api_status),
	R("GET", "/api/v1/audit", SRV_ROLE_ADMIN, api_audit_list),
	/* tokens */
	R("POST", "/api/v1/tokens", SRV_ROLE_ADMIN, api_token_create),
	R("GET", "/api/v1/tokens", SRV_ROLE_ADMIN, api_token_list),
	R("DELETE", "/api/v1/tokens/:id", SRV_ROLE_ADMIN, api_token_revoke),
	/* identity */
	PUBLIC("POST", "/api/v1/enroll", api_enroll),
	R("POST", "/api/v1/reenroll", DEVICE, api_reenroll),
	R("POST", "/api/v1/reenroll/confirm", DEVICE, api_reenroll_confirm),
	R("POST", "/api/v1/provision", SRV_ROLES_OPS, api_provision),
	R("POST", "/api/v1/provision/:id/undo", SRV_ROLES_OPS,
	  api_provision_undo),
	R("POST", "/api/v1/rotate", SRV_ROLES_OPS, api_rotate),
	/* devices */
	R("GET", "/api/v1/devices", READERS, api_device_list),
	R("GET", "/api/v1/devices/:id", READERS, api_device_get),
	R("POST", "/api/v1/devices/:id/labels", SRV_ROLES_OPS,
	  api_device_labels),
	R("POST", "/api/v1/devices/:id/decommission", SRV_ROLES_OPS,
	  api_device_decommission),
	R("POST", "/api/v1/devices/:id/rollback", SRV_ROLES_OPS,
	  api_device_rollback),
	/* diagnostics: relayed over MQTT, support bundles uploaded by the
	 * device itself */
	R("POST", "/api/v1/diag", DIAG, api_diag_fanout),
	R("POST", "/api/v1/devices/:id/diag", DIAG, api_diag_device),
	R("POST", "/api/v1/devices/:id/diag-bundle", DIAG,
	  api_diag_bundle_request),
	AUDITED("GET", "/api/v1/devices/:id/diag-bundles/:upload", DIAG,
		api_diag_bundle_get),
	UPLOAD_CAP("PUT", "/api/v1/devices/:id/diag-bundles/:upload", DEVICE,
		   api_diag_bundle_put, api_diag_bundle_body,
		   api_diag_bundle_max),
	/* device shadows (docs/shadow.md) */
	R("GET", "/api/v1/devices/:id/shadow", READERS, api_shadow_get),
	CAPPED("POST", "/api/v1/devices/:id/shadow", SHADOW, api_shadow_set,
	       api_shadow_body_max),
	CAPPED("POST", "/api/v1/shadow", SHADOW, api_shadow_group,
	       api_shadow_body_max),
	/* telemetry: each device's recent window (issue 13) */
	R("GET", "/api/v1/devices/:id/telemetry", READERS, api_telemetry_get),
	/* technicians' certificates for diag --direct (issue 12) */
	R("POST", "/api/v1/technicians", SRV_ROLES_OPS, api_tech_issue),
	R("GET", "/api/v1/technicians", SRV_ROLES_OPS, api_tech_list),
	R("POST", "/api/v1/technicians/:name/revoke", SRV_ROLES_OPS,
	  api_tech_revoke),
	/* updates and jobs */
	R("POST", "/api/v1/updates", SRV_ROLES_OPS, api_update),
	R("GET", "/api/v1/jobs", READERS, api_job_list),
	R("GET", "/api/v1/jobs/:id", READERS, api_job_get),
	R("POST", "/api/v1/jobs/:id/cancel", SRV_ROLES_OPS, api_job_cancel),
	/* rollouts: operators act, readers plan and watch */
	R("POST", "/api/v1/rollouts/plan", READERS, api_rollout_plan),
	R("POST", "/api/v1/rollouts", SRV_ROLES_OPS, api_rollout_create),
	R("GET", "/api/v1/rollouts", READERS, api_rollout_list),
	R("GET", "/api/v1/rollouts/:id", READERS, api_rollout_get),
	R("POST", "/api/v1/rollouts/:id/pause", SRV_ROLES_OPS,
	  api_rollout_pause),
	R("POST", "/api/v1/rollouts/:id/resume", SRV_ROLES_OPS,
	  api_rollout_resume),
	R("POST", "/api/v1/rollouts/:id/abort", SRV_ROLES_OPS,
	  api_rollout_abort),
	R("POST", "/api/v1/rollouts/:id/rollback", SRV_ROLES_OPS,
	  api_rollout_rollback),
	/* bundles and trust roots */
	UPLOAD("POST", "/api/v1/bundles", SRV_ROLES_OPS | SRV_ROLE_CI,
	       api_bundle_upload, api_bundle_upload_body),
	R("GET", "/api/v1/bundles", READERS | SRV_ROLE_CI, api_bundle_list),
	R("GET", "/api/v1/bundles/:id", READERS | SRV_ROLE_CI, api_bundle_get),
	R("GET", "/api/v1/bundles/:id/download", READERS | DEVICE,
	  api_bundle_download),
	R("POST", "/api/v1/roots", SRV_ROLE_ADMIN, api_root_push),
	R("GET", "/api/v1/roots", SRV_ROLES_ALL | DEVICE, api_root_list),
	R("GET", "/api/v1/roots/:version", SRV_ROLES_ALL | DEVICE,
	  api_root_get),
	/* the web dashboard (docs/dashboard.md): its files and its login;
	 * the pages read the routes above with a session cookie */
	PUBLIC("GET", "/", api_dash_index),
	PUBLIC("GET", "/dash/session", api_dash_session),
	PUBLIC("POST", "/dash/login", api_dash_login),
	PUBLIC("POST", "/dash/logout", api_dash_logout),
	PUBLIC("GET", "/dash/:file", api_dash_file),
	{NULL, NULL, 0, NULL, 0, NULL, NULL},
};
