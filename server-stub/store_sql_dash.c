/* SPDX-License-Identifier: MIT */
/*
 * Dashboard sessions in the store (store.h, dash.h), for fleetd's
 * replicas: the SHA-256 of each session id and of its token, never the
 * id or the token themselves.
 */
#include <limits.h>
#include <stdlib.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

/* The session @id_hash at @now, the expired ones dropped and, past
 * @max, the oldest others (never the new one). */
int sql_dash_put(struct srv_store_be *s, const char *id_hash,
		 const char *token_hash, int64_t now, int64_t ttl, int64_t max,
		 struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "DELETE FROM dash_sessions WHERE created <= ?", "i",
			    now - ttl);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "INSERT INTO dash_sessions (id_hash, token_hash,"
			    " created) VALUES (?, ?, ?)",
			    "ssi", id_hash, token_hash, now);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "DELETE FROM dash_sessions WHERE id_hash <> ?1"
			    " AND id_hash IN (SELECT id_hash FROM"
			    " dash_sessions WHERE id_hash <> ?1 ORDER BY"
			    " created DESC, id_hash LIMIT ?2 OFFSET ?3)",
			    "sii", id_hash, (int64_t)INT_MAX,
			    max > 0 ? max - 1 : 0);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int sql_dash_get(struct srv_store_be *s, const char *id_hash, int64_t now,
		 int64_t ttl, char ret_token_hash[65], struct fl_error *err)
{
	struct db_first row = {0};
	int rc;

	rc = db_lquery_first(s, &row, err,
			     "SELECT token_hash FROM dash_sessions WHERE"
			     " id_hash = ? AND created <= ? AND created > ?",
			     "sii", id_hash, now, now - ttl);
	if (!rc)
		fl_strlcpy(ret_token_hash, row.t[0] ? row.t[0] : "", 65);
	db_first_free(&row);
	return rc;
}

int sql_dash_del(struct srv_store_be *s, const char *id_hash,
		 struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "DELETE FROM dash_sessions WHERE id_hash = ?", "s",
		       id_hash);
}
