/* SPDX-License-Identifier: MIT */
#ifndef SRV_FWD_H
#define SRV_FWD_H

/*
 * Telemetry forwarding (issue 13, docs/telemetry.md "Forwarding"): one
 * forwarder per configured backend (InfluxDB over HTTP, PostgreSQL),
 * each with its own thread and its own bounded queue, so a database
 * that is down never blocks the caller (ingestion) and loses nothing
 * within the bound.
 *
 * srv_fwd_submit copies the points and returns at once.  Points wait
 * in the queue (at most queue_points of them and queue_bytes bytes);
 * past either bound the oldest waiting points are dropped and counted.
 * The thread takes up to `batch` points out of the queue (the batch in
 * flight, on top of the bound), sends them once `batch` are waiting or
 * the oldest has waited linger_ms, and retries a failed batch, in
 * order, with capped exponential backoff and jitter.  A batch the
 * database refuses as malformed is halved until the bad point is alone,
 * which is then dropped and counted as refused (never retried forever).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "err.h"
#include "telemetry.h"

enum srv_fwd_kind {
	SRV_FWD_INFLUX,
	SRV_FWD_PG,
};

/* One backend's settings ([influx] or [postgres] of fleetd.conf). */
struct srv_fwd_config {
	enum srv_fwd_kind kind;
	char *url;	       /* influx: http(s)://HOST:PORT (no path) */
	char *database;	       /* influx: the database written to */
	char *measurement;     /* influx: default "telemetry" */
	char *username;	       /* influx: basic auth user, optional */
	char *conninfo;	       /* postgres: libpq conninfo, without password */
	char *table;	       /* postgres: default "telemetry" */
	char *password_file;   /* optional: the password, first line */
	uint64_t batch;	       /* points per request or transaction */
	uint64_t linger_ms;    /* longest wait for a batch to fill */
	uint64_t queue_points; /* bound on waiting points */
	uint64_t queue_bytes;  /* bound on their bytes */
	uint64_t timeout_ms;   /* one request or connection attempt */
	uint64_t retry_min_ms, retry_max_ms; /* backoff range */
};

/* A forwarder's counters. */
struct srv_fwd_stats {
	uint64_t queued;       /* points waiting or in flight now */
	uint64_t queued_bytes; /* their bytes */
	uint64_t sent;	       /* points the database acknowledged */
	uint64_t retries;      /* failed attempts that are retried */
	uint64_t dropped;      /* oldest points dropped past the bound */
	uint64_t refused;      /* points refused as malformed */
	char last_error[256];  /* newest failure, "" if none */
};

/* Upper bounds of the settings (fleetd(8) CONFIGURATION). */
#define SRV_FWD_BATCH_MAX 10000
#define SRV_FWD_QUEUE_POINTS_MAX 10000000
#define SRV_FWD_QUEUE_BYTES_MAX (4ULL << 30)
#define SRV_FWD_TIMEOUT_MAX (300 * 1000)
#define SRV_FWD_LINGER_MAX (60 * 1000)
#define SRV_FWD_RETRY_MAX (3600 * 1000)
/* How long a stopping fleetd lets each forwarder send what it holds. */
#define SRV_FWD_STOP_MS 5000

/* The fleetd.conf keys of both sections, {NULL, NULL} terminated. */
extern const struct fl_ini_key srv_fwd_conf_keys[];

/*
 * Read [influx] and [postgres] from @ini: *@ret_influx and *@ret_pg are
 * new configs (free with srv_fwd_config_free), NULL where the section
 * has no url / conninfo.  FL_EINVAL or FL_EPARSE naming the key for a
 * value out of its range, a password inside the conninfo, or a URL that
 * is not http(s).
 */
int srv_fwd_config_load(const struct fl_ini *ini,
			struct srv_fwd_config **ret_influx,
			struct srv_fwd_config **ret_pg, struct fl_error *err);
void srv_fwd_config_free(struct srv_fwd_config *cfg);

struct srv_fwd;

/*
 * Start a forwarder for @cfg (copied): loads its client library and
 * starts its thread; the database need not be up.  FL_ENOTFOUND when
 * the client library is missing.
 */
int srv_fwd_start(const struct srv_fwd_config *cfg, struct srv_fwd **ret,
		  struct fl_error *err);

/*
 * Queue copies of @n points and return at once (never blocks on the
 * database).  Points with a device or metric that is not 1..255 bytes of
 * printable ASCII, or a value that is not finite, are counted as
 * refused.  Past the bound the oldest waiting points are dropped.
 */
void srv_fwd_submit(struct srv_fwd *f, const struct srv_tpoint *pts, size_t n);

/* "influx" or "postgres". */
const char *srv_fwd_name(const struct srv_fwd *f);

/* A snapshot of @f's counters. */
void srv_fwd_get_stats(struct srv_fwd *f, struct srv_fwd_stats *ret);

/* The counters as a JSON object (for the status API); new reference. */
json_t *srv_fwd_stats_json(struct srv_fwd *f);

/*
 * Stop: send what is queued for up to @wait_ms (plus one request's
 * timeout), then end the thread and free @f.  Points still queued then
 * are counted as dropped and logged.  NULL is allowed.
 */
void srv_fwd_stop(struct srv_fwd *f, int64_t wait_ms);

#endif
