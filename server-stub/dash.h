/* SPDX-License-Identifier: MIT */
#ifndef SRV_DASH_H
#define SRV_DASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * The dashboard's sessions (docs/dashboard.md): a bounded table in
 * memory that maps a random session id (the cookie's value) to the hash
 * of the operator token that logged in, never the token itself.  The
 * table keeps only the SHA-256 of each id.  A session ends at its
 * expiry, at logout, or when the table is full and a newer login takes
 * the oldest slot; fleetd's restart ends them all.  Thread-safe.
 * A replica's sessions live in the store instead (srv_dash_use_store),
 * so every replica knows every cookie and a restart ends none.
 */

/* The cookie: "__Host-" makes browsers insist on Secure, Path=/ and no
 * Domain. */
#define SRV_DASH_COOKIE "__Host-fleet_session"
/* A session id: 32 random bytes as hex. */
#define SRV_DASH_ID_LEN 64
#define SRV_DASH_MAX_SESSIONS 256
#define SRV_DASH_TTL (8 * 3600)

struct srv_dash;
struct srv_store;

/* A table of at most @max sessions that live @ttl seconds each. */
struct srv_dash *srv_dash_new(size_t max, int64_t ttl);
void srv_dash_free(struct srv_dash *d);

/* Keep @d's sessions in @store (borrowed; it outlives @d) from now on:
 * login, lookup and logout go there (store.h, srv_store_dash_*). */
void srv_dash_use_store(struct srv_dash *d, struct srv_store *store);

/*
 * Start a session at @now for the token whose SHA-256 hex is
 * @token_hash; its id goes to @ret_id.  FL_EIO when no random bytes.
 */
int srv_dash_login(struct srv_dash *d, const char *token_hash, int64_t now,
		   char ret_id[SRV_DASH_ID_LEN + 1], struct fl_error *err);

/* The token hash of the session @id that is live at @now; false when
 * there is none (unknown, expired, logged out). */
bool srv_dash_lookup(struct srv_dash *d, const char *id, int64_t now,
		     char ret_hash[65]);

/* End the session @id (nothing when there is none). */
void srv_dash_logout(struct srv_dash *d, const char *id);

/* Live sessions at @now, in memory (not a store's). */
size_t srv_dash_count(struct srv_dash *d, int64_t now);

/*
 * The session id in a Cookie request header (@header may be NULL):
 * true with the value of the first SRV_DASH_COOKIE cookie when it has
 * the shape of an id.
 */
bool srv_dash_cookie_id(const char *header, char ret_id[SRV_DASH_ID_LEN + 1]);

/* The Set-Cookie value that stores @id in the browser for the table's
 * ttl, or (@id NULL) the one that removes it; caller frees. */
char *srv_dash_set_cookie(const struct srv_dash *d, const char *id);

#endif
