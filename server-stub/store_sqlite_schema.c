/* SPDX-License-Identifier: MIT */
/* SQLite schema: numbered migrations (PRAGMA user_version), open, close. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sqlite.h"
#include "util.h"

/*
 * Numbered migrations: entry i takes the schema from version i to i + 1.
 * Append only; never edit a released entry.
 */
static const char *const migrations[] = {
    /* 1: operator and enrolment tokens, audit log */
    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY,"
    " hash TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL CHECK (kind IN ('operator', 'enroll')),"
    " name TEXT NOT NULL,"
    " role INTEGER NOT NULL,"
    " grp TEXT,"
    " uses_left INTEGER NOT NULL DEFAULT -1,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0,"
    " last_used INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0,"
    " created_by TEXT);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " remote TEXT);",
    /* 2: devices, their labels and certificates, the CRL counter */
    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY,"
    " grp TEXT,"
    " state TEXT NOT NULL DEFAULT 'active'"
    "  CHECK (state IN ('active', 'decommissioned')),"
    " created INTEGER NOT NULL,"
    " enrolled_by TEXT,"
    " online INTEGER NOT NULL DEFAULT 0,"
    " last_seen INTEGER NOT NULL DEFAULT 0,"
    " firmware TEXT,"
    " slot TEXT,"
    " health TEXT,"
    " agent TEXT,"
    " last_event TEXT,"
    " last_seq INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE device_labels ("
    " device TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY (device, key));"
    "CREATE TABLE certs ("
    " serial TEXT PRIMARY KEY,"
    " device TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT);"
    "CREATE INDEX certs_device ON certs(device);"
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO counters VALUES ('crl_number', 1);",
    /* 3: signed bundles and the trust root chain */
    "CREATE TABLE bundles ("
    " id TEXT PRIMARY KEY,"
    " sha256 TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " security_version INTEGER NOT NULL,"
    " hardware TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " manifest TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " uploaded_by TEXT,"
    " UNIQUE (name, version));"
    "CREATE TABLE roots ("
    " version INTEGER PRIMARY KEY,"
    " envelope TEXT NOT NULL,"
    " expires INTEGER NOT NULL,"
    " added INTEGER NOT NULL,"
    " added_by TEXT);",
    /* 4: update jobs and their event history */
    "CREATE TABLE jobs ("
    " id TEXT PRIMARY KEY,"
    " device TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type IN ('update', 'rollback')),"
    " bundle TEXT,"
    " command TEXT,"
    " rollout TEXT,"
    " state TEXT NOT NULL,"
    " final INTEGER NOT NULL DEFAULT 0,"
    " stage TEXT,"
    " reason TEXT,"
    " from_version TEXT,"
    " to_version TEXT,"
    " bytes INTEGER,"
    " total INTEGER,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " created_by TEXT);"
    "CREATE INDEX jobs_device ON jobs(device, created);"
    "CREATE TABLE job_events ("
    " job TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " event TEXT NOT NULL);"
    "CREATE INDEX job_events_job ON job_events(job, seq);",
    /* 5: at most one pending certificate per device (issue 8); indexes
     * so re-enrolment and the CRL never scan a device's history */
    "ALTER TABLE certs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX certs_device_live ON certs(device, revoked, pending);"
    "CREATE INDEX certs_device_issued ON certs(device, issued);"
    "CREATE INDEX certs_device_crl ON certs(device, not_after)"
    " WHERE revoked > 0;"
    "CREATE INDEX certs_crl ON certs(not_after) WHERE revoked > 0;",
    /* 6: certificates issued before pending existed: of a device's
     * unrevoked ones the oldest stays confirmed, the newest becomes the
     * pending one, and those in between (abandoned re-enrolments) are
     * revoked; fleetd publishes the CRL when it starts */
    "CREATE TEMP TABLE live AS SELECT rowid AS r, device,"
    " row_number() OVER (PARTITION BY device ORDER BY issued, rowid) AS n,"
    " count(*) OVER (PARTITION BY device) AS total"
    " FROM certs WHERE revoked = 0;"
    "UPDATE certs SET pending = 1 WHERE rowid IN"
    " (SELECT r FROM live WHERE total > 1 AND n = total);"
    "UPDATE certs SET revoked = CAST(strftime('%s', 'now') AS INTEGER),"
    " reason = 'superseded' WHERE rowid IN"
    " (SELECT r FROM live WHERE n > 1 AND n < total);"
    "DROP TABLE live;",
    /* 7: job deadlines (issue 8 item 14); 0 = none */
    "ALTER TABLE jobs ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_open ON jobs(final, expires);",
    /* 8: lossless ingestion (issue 17): a job's history holds each seq
     * once, and the job remembers the newest seq that moved it */
    "DELETE FROM job_events WHERE rowid NOT IN"
    " (SELECT min(rowid) FROM job_events GROUP BY job, seq);"
    "DROP INDEX job_events_job;"
    "CREATE UNIQUE INDEX job_events_seq ON job_events(job, seq);"
    "ALTER TABLE jobs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "UPDATE jobs SET seq = coalesce((SELECT max(seq) FROM job_events"
    " WHERE job = jobs.id), 0);",
    /* 9: rotation is a job type (issue 9 item 2); its events name the
     * job by its command.  SQLite cannot change a CHECK constraint: the
     * table is rebuilt, rows and rowids (the list's tie-break) kept */
    "CREATE TABLE jobs_new ("
    " id TEXT PRIMARY KEY,"
    " device TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type IN ('update', 'rollback', 'rotate')),"
    " bundle TEXT,"
    " command TEXT,"
    " rollout TEXT,"
    " state TEXT NOT NULL,"
    " final INTEGER NOT NULL DEFAULT 0,"
    " stage TEXT,"
    " reason TEXT,"
    " from_version TEXT,"
    " to_version TEXT,"
    " bytes INTEGER,"
    " total INTEGER,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " created_by TEXT,"
    " expires INTEGER NOT NULL DEFAULT 0,"
    " seq INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO jobs_new (rowid, id, device, type, bundle, command,"
    " rollout, state, final, stage, reason, from_version, to_version,"
    " bytes, total, created, updated, created_by, expires, seq)"
    " SELECT rowid, id, device, type, bundle, command, rollout, state,"
    " final, stage, reason, from_version, to_version, bytes, total,"
    " created, updated, created_by, expires, seq FROM jobs;"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_new RENAME TO jobs;"
    "CREATE INDEX jobs_device ON jobs(device, created);"
    "CREATE INDEX jobs_open ON jobs(final, expires);"
    "CREATE INDEX jobs_command ON jobs(device, command);",
    /* 10: staged rollouts (issue 10): the rollout, its waves, a row per
     * device (one active rollout per device: the unique partial index),
     * its decision log, and leases (the engine's) */
    "CREATE TABLE rollouts ("
    " id TEXT PRIMARY KEY,"
    " bundle TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " spec TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('running', 'paused',"
    "  'rolling-back', 'rolled-back', 'completed', 'aborted')),"
    " reason TEXT,"
    " wave INTEGER NOT NULL DEFAULT 0,"
    " waves INTEGER NOT NULL,"
    " soak_s INTEGER NOT NULL,"
    " health_window_s INTEGER NOT NULL,"
    " device_timeout_s INTEGER NOT NULL,"
    " fail_percent INTEGER NOT NULL,"
    " min_sample INTEGER NOT NULL,"
    " rate_per_min INTEGER NOT NULL,"
    " concurrency INTEGER NOT NULL,"
    " auto_rollback INTEGER NOT NULL,"
    " tripped INTEGER NOT NULL DEFAULT 0,"
    " base_failed INTEGER NOT NULL DEFAULT 0,"
    " base_finished INTEGER NOT NULL DEFAULT 0,"
    " soak_until INTEGER NOT NULL DEFAULT 0,"
    " last_command INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " finished INTEGER NOT NULL DEFAULT 0,"
    " created_by TEXT);"
    "CREATE INDEX rollouts_state ON rollouts(state, created);"
    "CREATE TABLE rollout_waves ("
    " rollout TEXT NOT NULL REFERENCES rollouts(id),"
    " wave INTEGER NOT NULL,"
    " stop TEXT NOT NULL,"
    " devices INTEGER NOT NULL,"
    " started INTEGER NOT NULL DEFAULT 0,"
    " done INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (rollout, wave));"
    "CREATE TABLE rollout_devices ("
    " rollout TEXT NOT NULL REFERENCES rollouts(id),"
    " device TEXT NOT NULL,"
    " wave INTEGER NOT NULL,"
    " pos INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'commanded',"
    "  'updated', 'healthy', 'failed', 'skipped', 'cancelled',"
    "  'rolling-back', 'rolled-back', 'rollback-failed')),"
    " active INTEGER NOT NULL DEFAULT 1,"
    " job TEXT,"
    " rollback_job TEXT,"
    " from_version TEXT,"
    " reason TEXT,"
    " commanded INTEGER NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0,"
    " sends INTEGER NOT NULL DEFAULT 0,"
    " cancel_sent INTEGER NOT NULL DEFAULT 0,"
    " finished INTEGER NOT NULL DEFAULT 0,"
    " offline_since INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY (rollout, device));"
    "CREATE UNIQUE INDEX rollout_devices_active ON rollout_devices(device)"
    " WHERE active = 1;"
    "CREATE INDEX rollout_devices_pos ON rollout_devices(rollout, pos);"
    "CREATE INDEX rollout_devices_state ON rollout_devices(rollout, state,"
    " wave, pos);"
    "CREATE TABLE rollout_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " rollout TEXT NOT NULL,"
    " ts INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " device TEXT,"
    " wave INTEGER,"
    " detail TEXT);"
    "CREATE INDEX rollout_events_rollout ON rollout_events(rollout, id);"
    "CREATE TABLE leases ("
    " name TEXT PRIMARY KEY,"
    " holder TEXT NOT NULL,"
    " expires INTEGER NOT NULL);"
    "CREATE INDEX jobs_rollout ON jobs(rollout) WHERE rollout IS NOT NULL;",
    /* 11: the SHA-256 of each certificate's DER, so a device's HTTPS
     * request is recognised by it (issue 10); NULL for older ones */
    "ALTER TABLE certs ADD COLUMN sha256 TEXT;"
    "CREATE UNIQUE INDEX certs_sha256 ON certs(sha256)"
    " WHERE sha256 IS NOT NULL;",
    /* 12: what an audited request did beyond method and path, JSON
     * (issue 12: a diag call's device or target, check, arguments) */
    "ALTER TABLE audit ADD COLUMN detail TEXT;",
    /* 13: device shadows (issue 13): desired and reported JSON objects
     * with their versions; desired_meta: key -> version last written;
     * reported: the device's report as received */
    "CREATE TABLE shadows ("
    " device TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
    " desired TEXT NOT NULL DEFAULT '{}',"
    " desired_meta TEXT NOT NULL DEFAULT '{}',"
    " desired_version INTEGER NOT NULL DEFAULT 0,"
    " desired_updated INTEGER NOT NULL DEFAULT 0,"
    " reported TEXT NOT NULL DEFAULT '{}',"
    " reported_version INTEGER NOT NULL DEFAULT 0,"
    " reported_updated INTEGER NOT NULL DEFAULT 0);",
    /* 14: device telemetry (issue 13): each device's recent window of
     * points, and its stream's state: the seq high-water mark, whether
     * it enrolled again since, the points its outbox dropped, and how
     * many points it holds from which sample time on (the trim) */
    "CREATE TABLE telemetry_state ("
    " device TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL DEFAULT 0,"
    " reenrolled INTEGER NOT NULL DEFAULT 0,"
    " dropped INTEGER NOT NULL DEFAULT 0,"
    " points INTEGER NOT NULL DEFAULT 0,"
    " oldest INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX telemetry_state_oldest ON telemetry_state(oldest)"
    " WHERE points > 0;"
    "CREATE TABLE telemetry ("
    " device TEXT NOT NULL,"
    " metric TEXT NOT NULL,"
    " ts INTEGER NOT NULL,"
    " value REAL NOT NULL,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX telemetry_device_ts ON telemetry(device, ts);",
    /* 15: dashboard sessions shared by fleetd's replicas (issue 14,
     * dash.h): the SHA-256 of each session id, never the id */
    "CREATE TABLE dash_sessions ("
    " id_hash TEXT PRIMARY KEY,"
    " token_hash TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX dash_sessions_created ON dash_sessions(created);",
    /* 16: idempotency keys (issue 14, idem.h): a retried request gets
     * the answer of its first try, sealed with a key only the client
     * holds */
    "CREATE TABLE idempotency ("
    " id_hash TEXT PRIMARY KEY,"
    " request_hash TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " status INTEGER,"
    " answer TEXT);"
    "CREATE INDEX idempotency_created ON idempotency(created);",
    /* 17: support bundles' uploads, for fleetd's replicas (issue 14,
     * diag_bundles.h): any replica takes the upload and the download */
    "CREATE TABLE diag_uploads ("
    " id TEXT PRIMARY KEY,"
    " device TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " call_done INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " settled INTEGER NOT NULL DEFAULT 0);",
};

static int exec(struct sq_conn *c, const char *sql, struct fl_error *err)
{
	char *msg = NULL;
	int rc = 0;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK)
		rc = fl_fail(err, FL_EIO, "database: %s",
			     msg ? msg : sqlite3_errmsg(c->db));
	sqlite3_free(msg);
	return rc;
}

static int schema_version(struct sq_conn *c)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int sq_schema_version(struct srv_store_be *s)
{
	return schema_version(sq_conn(s));
}

/* Apply each pending migration in its own transaction. */
static int migrate(struct sq_conn *s, struct fl_error *err)
{
	int v = schema_version(s), n = (int)FL_ARRAY_SIZE(migrations);

	if (v < 0)
		return sq_fail(s, err, "reading schema version");
	if (v > n)
		return fl_fail(
		    err, FL_ECONFLICT,
		    "database schema %d is newer than this fleetd (%d)", v, n);
	for (; v < n; v++) {
		char *bump = fl_xasprintf("PRAGMA user_version = %d", v + 1);
		int rc = exec(s, "BEGIN IMMEDIATE", err);

		if (!rc)
			rc = exec(s, migrations[v], err);
		if (!rc)
			rc = exec(s, bump, err);
		free(bump);
		if (!rc)
			rc = exec(s, "COMMIT", err);
		if (rc) {
			exec(s, "ROLLBACK", NULL);
			fl_error_prefix(err, "migration %d", v + 1);
			return rc;
		}
	}
	return 0;
}

/*
 * Before SQLite's first use in the process: no allocation statistics
 * (each of SQLite's mallocs would take a global mutex for them).
 */
static void lib_init(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * The connection is opened without SQLite's own mutexes: every use of it
 * holds s->lock (the sql_* functions take it, db_l* helpers too), so they
 * would only be taken a dozen times per statement for nothing.
 */
int sq_open(struct srv_store_be *be, const char *path, struct fl_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct sq_conn *s = fl_xcalloc(1, sizeof(*s));
	int rc;

	pthread_once(&once, lib_init);
	pthread_mutex_init(&s->cache_lock, NULL);
	be->conn = s;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return fl_fail(err, FL_EIO, "cannot open database '%s': %s",
			       path,
			       s->db ? sqlite3_errmsg(s->db) : "out of memory");
	sqlite3_busy_timeout(s->db, 5000);
	/* a checkpoint every 8000 pages (32 MiB of WAL), not SQLite's 1000:
	 * the same device and job pages are rewritten by every batch of a
	 * burst, and each checkpoint copies them to the database again */
	rc = exec(s,
		  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		  "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 8000;"
		  "PRAGMA journal_size_limit = 67108864;",
		  err);
	return rc ? rc : migrate(s, err);
}

void sq_close(struct srv_store_be *be)
{
	struct sq_conn *s = sq_conn(be);

	if (!s)
		return;
	sq_cache_clear(s);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->cache_lock);
	free(s);
}
