/* SPDX-License-Identifier: MIT */
#ifndef SRV_H
#define SRV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "store.h"

struct srv_fwd_config;

/* Settings from STATE/fleetd.conf (INI; every key optional). */
struct srv_config {
	int64_t device_lifetime; /* [ca] device_lifetime, default 30d */
	char *public_url;	 /* [server] public_url: advertised HTTPS */
	char *store_url;	 /* [store] url: the database, else fleetd.db */
	char *mqtt_url;		 /* [mqtt] url: advertised to devices */
	char *broker_listen;	 /* [broker] listen, for --with-broker */
	char *mosquitto;	 /* [broker] mosquitto: program path */
	uint64_t max_bundle;	 /* [bundles] max_size, default 4 GiB */
	char *shared_crl; /* [ca] shared_crl: the CRL file replicas share,
			   * absolute; NULL: STATE/ca/crl.pem */
	char *mirror_url; /* [bundles] mirror_url: https://HOST/PATH/ that
			   * serves STATE/bundles as-is; NULL: none */
	/* [ca] reenroll_per_hour, reenroll_max_revoked */
	struct srv_reenroll_limits reenroll;
	int64_t job_expire;	 /* [jobs] expire: a job's default deadline */
	uint64_t device_rate;	 /* [mqtt] device_rate: messages/s a device */
	uint64_t device_burst;	 /* [mqtt] device_burst */
	int64_t device_mute;	 /* [mqtt] device_mute: seconds */
	uint64_t ingest_queue;	 /* [mqtt] ingest_queue: messages held */
	uint64_t ingest_batch;	 /* [mqtt] ingest_batch: per transaction */
	char *topic_prefix;	 /* [mqtt] topic_prefix, default "fleet" */
	struct srv_http_limits { /* [http]: bounds on each client */
		uint64_t max_connections;	 /* default 1000 */
		uint64_t max_connections_per_ip; /* default 64 */
		int64_t header_timeout;	 /* s to send request headers: 10 */
		int64_t request_timeout; /* s for headers + body: 60 */
		int64_t upload_timeout;	 /* s for an upload request: 3600 */
		int64_t idle_timeout;	 /* s without traffic: 60 */
	} http;
	struct srv_diag_config {      /* [diag]: the relay's bounds (diag.h) */
		uint64_t max_pending; /* diag calls waiting at once */
		uint64_t max_per_caller; /* of them, one caller's */
		uint64_t bundle_max;	 /* bytes of a support bundle */
		char *bundle_dir; /* [diag] bundle_dir: where they are kept,
				   * absolute; NULL: STATE/diag */
	} diag;
	uint64_t shadow_max; /* [shadow] max_size: bytes of a desired doc */
	/* [influx], [postgres]: telemetry forwarding (fwd.h); NULL when
	 * not configured.  Started by whoever wires ingestion to them. */
	struct srv_fwd_config *fwd_influx, *fwd_pg;
	/* [telemetry] keep_points, keep_hours: each device's window */
	struct srv_telemetry_window telemetry;
};

/* A job's deadline: the default and the longest allowed (seconds). */
#define SRV_JOB_EXPIRE_DEFAULT (24 * 3600)
#define SRV_JOB_EXPIRE_MAX (365 * 86400)

/*
 * fleetd's shared state: what the HTTP handlers, the MQTT side and the
 * main loop all see.  Created by srv_open, released by srv_close.
 */
struct srv {
	char *state_dir;
	struct srv_config cfg;
	struct srv_store *store;
	struct srv_ca *ca;
	struct srv_broker *broker; /* local mosquitto, with --with-broker */
	struct srv_mqtt *mqtt;	   /* fleetd's MQTT client */
	/* telemetry forwarders while serving ([influx], [postgres]) */
	struct srv_fwd *fwd_influx, *fwd_pg;
	struct srv_diag *diag;		  /* the diag relay, while serving */
	struct srv_diag_bundles *bundles; /* support bundles, while serving */
	struct MHD_Daemon *mhd;
	struct srv_http *http; /* connection deadlines, audit limits */
	struct srv_dash *dash; /* dashboard sessions, while serving */
	char *https_url;       /* "https://127.0.0.1:8443" once listening */
	size_t max_json_body;  /* request body cap for JSON calls */
	uint64_t max_upload;   /* bundle upload cap ([bundles] max_size) */
	/* who holds the rollout engine's lease when this fleetd does:
	 * "HOST:STATE_DIR", the same across restarts of one fleetd */
	char *engine_id;
	/* serve --replica NAME: one of several fleetds on one database and
	 * broker (docs/scale.md); NULL: alone.  Borrowed. */
	const char *replica;
	/* this fleetd held the engine's lease at its last tick (a replica),
	 * or is alone and was not refused it; read with __atomic */
	bool engine_held;
	/* Where jobs' commands go (srv_job_send); NULL: the MQTT client.
	 * Unit tests of the engine put their recorder here. */
	int (*send_cmd)(void *ctx, const char *device, const char *type,
			json_t *args, const char *id, struct fl_error *err);
	void *send_ctx;
	/* held by the engine while it decides and sends for a rollout, and
	 * by an operator's move (srv_rollout_act) with its cancels: no
	 * command of a wave goes out after an abort returned */
	pthread_mutex_t rollouts_lock;
	/* held from a desired shadow write to its publish, so the broker
	 * retains each device's newest version (shadow_svc.c) */
	pthread_mutex_t shadow_lock;
	/* Called by the ingest writer after each commit with the telemetry
	 * points it stored (telemetry.h); NULL: nobody.  Set before the
	 * MQTT side starts. */
	srv_tpoints_fn on_points;
	void *on_points_arg;
};

#define SRV_CONF_FILE "fleetd.conf"

/* Bytes of [bundles] mirror_url: it fits one line of fleetd.conf, and
 * a bundle's file name after it stays far below FL_MIRROR_URL_MAX. */
#define SRV_MIRROR_BASE_MAX 160

/* Paths inside the state dir (DESIGN: layout documented in fleetd.8). */
#define SRV_DB_FILE "fleetd.db"
#define SRV_CA_FILE "ca.pem"
#define SRV_TLS_KEY "tls/server.key"
#define SRV_TLS_CERT "tls/server.pem"

/* Default cap for JSON request bodies. */
#define SRV_MAX_JSON_BODY (64 * 1024)

/* Open the state in @state_dir (must have been initialised). */
int srv_open(const char *state_dir, struct srv **ret, struct fl_error *err);
/* The same on the database @store (a store URL, store.h) when not NULL,
 * instead of [store] url of fleetd.conf or else STATE/fleetd.db. */
int srv_open_store(const char *state_dir, const char *store, struct srv **ret,
		   struct fl_error *err);
void srv_close(struct srv *srv);

/* The HTTPS URL devices and tools are told to use. */
const char *srv_public_url(const struct srv *srv);

/* A file path inside the state dir; caller frees. */
char *srv_path(const struct srv *srv, const char *name);

/*
 * Initialise a state dir: create it 0700, the database, the TLS key and
 * certificate (with @sans extra DNS names or IPs), ca.pem, and a first
 * admin token, whose text is returned in *ret_token (free with
 * fl_free_secret).  The database is @store (a store URL, store.h, kept
 * as [store] url in a new fleetd.conf) when not NULL, else fleetd.db.
 * FL_ECONFLICT if already initialised.
 */
int srv_init_state(const char *state_dir, const char *const *sans, size_t nsans,
		   const char *store, char **ret_token, struct fl_error *err);

/* What a new token is. */
struct srv_token_spec {
	const char *name;
	bool enroll;	   /* enrolment token instead of operator token */
	int role;	   /* operator tokens */
	const char *group; /* enrolment tokens: group of enrolled devices */
	int64_t uses;	   /* enrolment tokens: -1 = unlimited */
	int64_t ttl;	   /* seconds; 0 = never expires */
};

/*
 * Create a token.  Returns the secret text (free with fl_free_secret)
 * and the row as JSON for the API.
 */
int srv_token_create(struct srv *srv, const struct srv_token_spec *spec,
		     const char *created_by, char **ret_secret,
		     json_t **ret_info, struct fl_error *err);

#endif
