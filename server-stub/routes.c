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
	{NULL, NULL, 0, NULL, 0},
};
