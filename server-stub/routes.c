/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "api.h"

/*
 * Every endpoint fleetd serves, with the roles allowed to call it.
 * Authentication, role checks, body caps and auditing are applied by
 * http.c from this table alone.
 */
const struct srv_route srv_routes[] = {
	{"GET", "/healthz", 0, api_healthz, SRV_PUBLIC},
	{"GET", "/api/v1/version", 0, api_version, SRV_PUBLIC},
	{"GET", "/api/v1/whoami", SRV_ROLES_ALL, api_whoami, 0},
	{"GET", "/api/v1/audit", SRV_ROLE_ADMIN, api_audit_list, 0},
	{"POST", "/api/v1/tokens", SRV_ROLE_ADMIN, api_token_create, 0},
	{"GET", "/api/v1/tokens", SRV_ROLE_ADMIN, api_token_list, 0},
	{"DELETE", "/api/v1/tokens/:id", SRV_ROLE_ADMIN, api_token_revoke, 0},
	{"POST", "/api/v1/enroll", 0, api_enroll, SRV_PUBLIC},
	{"POST", "/api/v1/reenroll", SRV_ROLE_DEVICE, api_reenroll, 0},
	{"POST", "/api/v1/reenroll/confirm", SRV_ROLE_DEVICE,
	 api_reenroll_confirm, 0},
	{"POST", "/api/v1/provision", SRV_ROLES_OPS, api_provision, 0},
	{"GET", "/api/v1/devices", SRV_ROLES_READ, api_device_list, 0},
	{"GET", "/api/v1/devices/:id", SRV_ROLES_READ, api_device_get, 0},
	{"POST", "/api/v1/devices/:id/labels", SRV_ROLES_OPS,
	 api_device_labels, 0},
	{"POST", "/api/v1/devices/:id/decommission", SRV_ROLES_OPS,
	 api_device_decommission, 0},
	{"POST", "/api/v1/rotate", SRV_ROLES_OPS, api_rotate, 0},
	{NULL, NULL, 0, NULL, 0},
};
