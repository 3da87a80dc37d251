/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/*
 * fleetd's persistent store: one SQLite database in WAL mode, schema
 * upgraded by numbered migrations (PRAGMA user_version).  Every function
 * takes the store's lock, so a handle is shared by all server threads.
 * Functions that list return JSON arrays ready for the API (caller
 * decrefs).  Times are Unix seconds.
 */
struct srv_store;

/* Operator roles (DESIGN §3).  Bits, so routes can allow any set. */
enum srv_role {
	SRV_ROLE_ADMIN = 1 << 0,
	SRV_ROLE_OPERATOR = 1 << 1,
	SRV_ROLE_TECHNICIAN = 1 << 2,
	SRV_ROLE_VIEWER = 1 << 3,
	SRV_ROLE_CI = 1 << 4,
};

/* "admin" -> SRV_ROLE_ADMIN ...; 0 when unknown. */
int srv_role_parse(const char *s);
const char *srv_role_name(int role);

/* A token as looked up for authentication. */
struct srv_token {
	char id[17];
	char name[64];
	char kind[16]; /* "operator" or "enroll" */
	int role;
	int64_t expires; /* 0 = never */
	int64_t uses_left; /* enroll tokens; -1 = unlimited */
	bool revoked;
};

/* Open (creating if needed) and migrate the database at @path. */
int srv_store_open(const char *path, struct srv_store **ret,
		   struct fl_error *err);
void srv_store_close(struct srv_store *s);

/* Schema version after migration. */
int srv_store_schema_version(struct srv_store *s);

/* Insert a token given the SHA-256 hex of its secret text. */
int srv_store_token_add(struct srv_store *s, const struct srv_token *t,
			const char *hash_hex, const char *created_by,
			struct fl_error *err);

/* Find a token by hash; FL_ENOTFOUND if none.  Updates last_used. */
int srv_store_token_find(struct srv_store *s, const char *hash_hex,
			 struct srv_token *ret, struct fl_error *err);

/* All tokens (never the secret or its hash). */
int srv_store_token_list(struct srv_store *s, json_t **ret,
			 struct fl_error *err);

/* Revoke by id; FL_ENOTFOUND if none.  Revoking twice is not an error. */
int srv_store_token_revoke(struct srv_store *s, const char *id,
			   struct fl_error *err);

/* One audit row for a mutating request. */
int srv_store_audit(struct srv_store *s, const char *actor,
		    const char *method, const char *path, int status,
		    const char *remote, struct fl_error *err);

/* Newest @limit audit rows, newest first. */
int srv_store_audit_list(struct srv_store *s, int limit, json_t **ret,
			 struct fl_error *err);

#endif
