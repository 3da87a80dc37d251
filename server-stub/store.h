/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "telemetry.h"

/*
 * fleetd's persistent store.  Callers see typed rows and lists; the
 * backend behind a handle is chosen at open by the database URL
 * (store_ops.h; today SQLite, in WAL mode, schema upgraded by numbered
 * migrations).  A handle is shared by all server threads.  Rows own
 * their strings: a row or list filled by a function here is freed with
 * its _free function, which frees what it owns (not the struct itself)
 * and zeroes it, so freeing twice or freeing a zeroed row is harmless.
 * Times are Unix seconds, 0 = never/unknown; the API formats them.
 */
struct srv_store;

/* Owned strings. */
struct srv_strv {
	size_t n;
	char **v;
};
void srv_strv_free(struct srv_strv *l);

/* One device label. */
struct srv_label {
	char *key, *value;
};

struct srv_label_list {
	size_t n;
	struct srv_label *v;
};
void srv_label_list_free(struct srv_label_list *l);

/* Operator roles (DESIGN §3).  Bits, so routes can allow any set. */
enum srv_role {
	SRV_ROLE_ADMIN = 1 << 0,
	SRV_ROLE_OPERATOR = 1 << 1,
	SRV_ROLE_TECHNICIAN = 1 << 2,
	SRV_ROLE_VIEWER = 1 << 3,
	SRV_ROLE_CI = 1 << 4,
	SRV_ROLE_DEVICE = 1 << 5, /* a device authenticated by mTLS */
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
	int64_t expires;   /* 0 = never */
	int64_t uses_left; /* enroll tokens; -1 = unlimited */
	bool revoked;
};

/*
 * Open (creating if needed) and migrate the database @url: a path or
 * "sqlite:PATH" for SQLite; FL_EINVAL for a scheme no backend here
 * handles (e.g. "postgresql://", issue 14).
 */
int srv_store_open(const char *path, struct srv_store **ret,
		   struct fl_error *err);
void srv_store_close(struct srv_store *s);

/* Schema version after migration. */
int srv_store_schema_version(struct srv_store *s);

/* Copy every row of @src into @dst, a new store (no tokens, no devices)
 * of the same schema version, in one transaction of @dst (fleetd
 * migrate); *@ret_rows counts the rows.  FL_ECONFLICT when @dst holds
 * data or the versions differ. */
int srv_store_copy(struct srv_store *dst, struct srv_store *src, long *ret_rows,
		   struct fl_error *err);

/* Insert a token given the SHA-256 hex of its secret text. */
int srv_store_token_add(struct srv_store *s, const struct srv_token *t,
			const char *hash_hex, const char *group,
			const char *created_by, struct fl_error *err);

/* Find a token by hash; FL_ENOTFOUND if none.  Updates last_used. */
int srv_store_token_find(struct srv_store *s, const char *hash_hex,
			 struct srv_token *ret, struct fl_error *err);

/* A token as listed (never its secret or hash). */
struct srv_token_row {
	char *id, *name, *kind; /* kind "operator" or "enroll" */
	int role;		/* enum srv_role; 0 for enrolment tokens */
	char *group;		/* NULL: none */
	int64_t uses_left;	/* -1 = unlimited */
	int64_t created, expires, last_used; /* 0 = never */
	bool revoked;
	char *created_by; /* NULL: unknown */
};

struct srv_token_list {
	size_t n;
	struct srv_token_row *v;
};
void srv_token_row_free(struct srv_token_row *t);
void srv_token_list_free(struct srv_token_list *l);

/* All tokens, oldest first. */
int srv_store_token_list(struct srv_store *s, struct srv_token_list *ret,
			 struct fl_error *err);

/*
 * Revoke by id; FL_ENOTFOUND if none.  Revoking twice is not an error.
 * FL_ECONFLICT, checked in the same transaction, when the token is the
 * last active, unexpired admin token (nobody could administer fleetd
 * over the API any more).
 */
int srv_store_token_revoke(struct srv_store *s, const char *id,
			   struct fl_error *err);

/*
 * May the holder of certificate @serial act as device @device?  Only if
 * fleetd issued @serial to @device, has neither revoked it nor seen it
 * expire, and @device is active: FL_EDENIED with the reason otherwise.
 */
int srv_store_device_principal(struct srv_store *s, const char *serial,
			       const char *device, struct fl_error *err);

/* Who a client certificate speaks for. */
struct srv_cert_holder {
	char serial[41]; /* hex, FL_PKI_SERIAL_HEX_MAX */
	char device[64];
};

/*
 * The certificate fleetd issued whose DER has the SHA-256 @sha256 (hex),
 * if its holder may act now: as srv_store_device_principal, and within
 * the certificate's validity.  FL_ENOTFOUND when fleetd recorded no
 * certificate with that digest (one issued before digests were kept, or
 * not by fleetd): the caller verifies the certificate itself then.
 * FL_EDENIED with the reason when its holder may not act.
 */
int srv_store_device_by_cert(struct srv_store *s, const char *sha256,
			     struct srv_cert_holder *ret, struct fl_error *err);

/* One audit row for a mutating request; @detail (NULL: none) is what
 * the request did beyond its method and path, as JSON text (the diag
 * calls: device or target, check, arguments). */
int srv_store_audit(struct srv_store *s, const char *actor, const char *method,
		    const char *path, int status, const char *remote,
		    const char *detail, struct fl_error *err);

struct srv_audit_row {
	int64_t id, time;
	char *actor, *method, *path;
	int status;
	char *remote; /* NULL: unknown */
	char *detail; /* NULL: none */
};

struct srv_audit_list {
	size_t n;
	struct srv_audit_row *v;
};
void srv_audit_row_free(struct srv_audit_row *a);
void srv_audit_list_free(struct srv_audit_list *l);

/* Newest @limit audit rows, newest first. */
int srv_store_audit_list(struct srv_store *s, int limit,
			 struct srv_audit_list *ret, struct fl_error *err);

/* --- devices and certificates (store_devices.c) --- */

/* A certificate issued to a device. */
struct srv_cert {
	const char *serial; /* hex */
	const char *device;
	int64_t not_before, not_after;
	const char *sha256; /* of its DER, hex; NULL: not recorded */
};

/*
 * Create the device and record @cert, in one transaction.  FL_ECONFLICT
 * when an active device with @id exists and @allow_existing is false,
 * and always when @id was decommissioned: a retired id is never handed
 * out again (its labels and history stay with it).  With an enrolment token
 * hash, one use of the token is consumed in the same transaction (FL_EDENIED
 * when none is left).  @group may be NULL.
 */
int srv_store_device_enroll(struct srv_store *s, const char *id,
			    const char *group, const char *enrolled_by,
			    const char *token_hash, bool allow_existing,
			    const struct srv_cert *cert, struct fl_error *err);

/* One entry of the CRL: a revoked certificate and when. */
struct srv_crl_entry {
	char *serial;
	int64_t revoked;
};

struct srv_crl_list {
	size_t n;
	struct srv_crl_entry *v;
};
void srv_crl_list_free(struct srv_crl_list *l);

/*
 * How a change that revokes certificates publishes the CRL: @publish is
 * called inside the store's transaction, with the lock held, with every
 * entry the CRL must hold once the change commits (oldest revocation
 * first) and the next CRL number.  A non-zero return rolls the whole
 * change back, so the store never says revoked (or decommissioned) what
 * the published CRL does not.
 */
struct srv_crl_hook {
	int (*publish)(void *ctx, const struct srv_crl_list *entries,
		       uint64_t number, struct fl_error *err);
	void *ctx;
};

/* Bounds on re-enrolment, per device ([ca] in fleetd.conf). */
struct srv_reenroll_limits {
	int64_t per_hour;    /* certificates issued in any hour */
	int64_t max_revoked; /* revoked certificates still in the CRL */
};

/* A revoked certificate stays in the CRL until a day after it expired. */
#define SRV_CRL_GRACE 86400

/* Certificates that may be valid at once for one device: the confirmed
 * one, the pending one the device calls with, and the new one. */
#define SRV_MAX_LIVE_CERTS 3

/* A re-enrolment to record. */
struct srv_reenroll {
	const struct srv_cert *cert; /* the new certificate */
	const char *caller_serial;   /* the certificate it came with */
	const struct srv_reenroll_limits *limits; /* NULL: unbounded */
	const struct srv_crl_hook *crl; /* publishes superseded ones */
};

/*
 * Record @re->cert as the device's one pending (issued, not yet
 * confirmed) certificate, in one transaction that also checks:
 *   - the device exists (FL_ENOTFOUND) and is active (FL_ECONFLICT);
 *   - fewer than per_hour certificates were issued to it in the last
 *     hour, and fewer than max_revoked of its revoked ones are still in
 *     the CRL (FL_ELIMIT; *ret_retry_after, may be NULL, gets the
 *     seconds until a slot frees up);
 *   - at most SRV_MAX_LIVE_CERTS stay valid (FL_ECONFLICT).
 * An older pending certificate (other than the caller's) is revoked as
 * superseded and the CRL published through @re->crl before the commit.
 * *ret_superseded (may be NULL) gets the revoked serials.
 */
int srv_store_cert_add(struct srv_store *s, const struct srv_reenroll *re,
		       struct srv_strv *ret_superseded,
		       int64_t *ret_retry_after, struct fl_error *err);

/*
 * The device and limit checks of srv_store_cert_add alone, without
 * recording anything: lets fleetd refuse before it signs a certificate.
 * srv_store_cert_add checks again in its transaction.
 */
int srv_store_reenroll_check(struct srv_store *s, const char *device,
			     const struct srv_reenroll_limits *lim,
			     int64_t *ret_retry_after, struct fl_error *err);

/*
 * A device confirms a rotation with certificate @serial: only its newest
 * pending certificate may (FL_EDENIED otherwise: an older certificate
 * must never revoke a newer one).  It becomes the confirmed one, every
 * other certificate of @device is revoked, and the CRL is published
 * through @crl, in one transaction.  With no pending certificate and
 * @serial the device's valid one, nothing changes (a repeated confirm).
 * *ret_revoked gets the revoked serials.
 */
int srv_store_cert_confirm(struct srv_store *s, const char *device,
			   const char *serial, const struct srv_crl_hook *crl,
			   struct srv_strv *ret_revoked, struct fl_error *err);

/* A certificate as recorded. */
struct srv_cert_row {
	char *serial, *device;
	bool revoked, pending;
	int64_t not_after;
};
void srv_cert_row_free(struct srv_cert_row *c);

/* Look up a certificate: FL_ENOTFOUND if unknown. */
int srv_store_cert_get(struct srv_store *s, const char *serial,
		       struct srv_cert_row *ret, struct fl_error *err);

/*
 * Publish a fresh CRL of every revoked certificate that has not been
 * expired for a day yet, through @crl (the periodic republish).
 */
int srv_store_crl_publish(struct srv_store *s, const struct srv_crl_hook *crl,
			  struct fl_error *err);

/* Filters for srv_store_device_list; NULL members match all. */
struct srv_device_filter {
	const char *group;
	const char *label_key, *label_value;
	int online; /* -1 any, 0, 1 */
	const char *firmware;
	bool include_decommissioned;
};

/* A device with its labels and certificates. */
struct srv_device_row {
	char *id, *group, *state; /* group NULL: none; "active" or
				   * "decommissioned" */
	bool online;
	int64_t last_seen;			/* 0: never */
	char *firmware, *slot, *health, *agent; /* NULL: not reported */
	int64_t created;
	char *enrolled_by;
	struct srv_label_list labels; /* sorted by key */
	char *cert_serial;    /* newest unrevoked certificate; NULL: none */
	int64_t cert_expires; /* its not_after */
	struct srv_strv active_certs; /* every unrevoked serial */
	char *last_event; /* JSON text of the last event; NULL: none */
};

struct srv_device_list {
	size_t n;
	struct srv_device_row *v;
};
void srv_device_row_free(struct srv_device_row *d);
void srv_device_list_free(struct srv_device_list *l);

/* Devices matching @f, by id. */
int srv_store_device_list(struct srv_store *s,
			  const struct srv_device_filter *f,
			  struct srv_device_list *ret, struct fl_error *err);

/* One device; FL_ENOTFOUND. */
int srv_store_device_get(struct srv_store *s, const char *id,
			 struct srv_device_row *ret, struct fl_error *err);

/* Set @set and remove the keys @remove (either may be NULL) in one
 * transaction; FL_ENOTFOUND, FL_ELIMIT over 64 labels. */
int srv_store_device_labels(struct srv_store *s, const char *id,
			    const struct srv_label_list *set,
			    const struct srv_strv *remove,
			    struct fl_error *err);

/*
 * Mark @id decommissioned and revoke all its certificates, publishing
 * the CRL through @crl, in one transaction: if the CRL cannot be
 * published nothing changes.  FL_ENOTFOUND when no active device @id.
 * *ret_revoked (may be NULL) gets the revoked serials.
 */
int srv_store_device_decommission(struct srv_store *s, const char *id,
				  const struct srv_crl_hook *crl,
				  struct srv_strv *ret_revoked,
				  struct fl_error *err);

/* How long after a provision the CLI may still undo it (seconds). */
#define SRV_PROVISION_UNDO_WINDOW 600

/*
 * Undo a provision whose archive could not be written, in one
 * transaction: revoke @serial and forget device @id (or, if it had been
 * decommissioned before, make it decommissioned again), so the id can be
 * provisioned again.  Only for an active device that has never been
 * seen, whose only live certificate is @serial, issued in the last
 * SRV_PROVISION_UNDO_WINDOW seconds; else FL_ECONFLICT (FL_ENOTFOUND
 * for an unknown device).  The caller republishes the CRL.
 */
int srv_store_provision_undo(struct srv_store *s, const char *id,
			     const char *serial, struct fl_error *err);

/* --- technicians' certificates (issue 12) --- */

/*
 * A technician's certificate is a certs row whose device is its CN,
 * "tech-NAME" (ca.h SRV_TECH_PREFIX; never a device id), so the CRL
 * holds it like any other once revoked.  No devices row: fleetd's HTTPS
 * side refuses it.
 */
struct srv_tech_row {
	char *cn, *serial;
	int64_t issued, not_after;
	int64_t revoked; /* when; 0: not revoked */
};

struct srv_tech_list {
	size_t n;
	struct srv_tech_row *v;
};
void srv_tech_list_free(struct srv_tech_list *l);

/* Technicians' certificates listed at most. */
#define SRV_TECH_LIST_MAX 1000

/*
 * Record @cert, whose device is a technician's CN.  FL_ECONFLICT when
 * that technician holds a certificate neither revoked nor expired (one
 * at a time: the broker forces client id = CN, so two would kick each
 * other).
 */
int srv_store_tech_add(struct srv_store *s, const struct srv_cert *cert,
		       struct fl_error *err);

/* Technicians' certificates, newest first, at most SRV_TECH_LIST_MAX. */
int srv_store_tech_list(struct srv_store *s, struct srv_tech_list *ret,
			struct fl_error *err);

/*
 * Revoke every unrevoked certificate of technician @cn and publish the
 * CRL through @crl, in one transaction; *@ret_revoked (may be NULL) gets
 * the serials.  FL_ENOTFOUND when there is none to revoke.
 */
int srv_store_tech_revoke(struct srv_store *s, const char *cn,
			  const struct srv_crl_hook *crl,
			  struct srv_strv *ret_revoked, struct fl_error *err);

/* --- what devices report over MQTT (store_ingest.c) --- */

enum srv_ingest_kind {
	SRV_INGEST_PRESENCE,  /* {"online": bool, "agent"?, "firmware"?} */
	SRV_INGEST_STATUS,    /* {"firmware"?, "slot"?, "health"?} */
	SRV_INGEST_EVENT,     /* {"seq": N >= 1, "job"?, "state"?, ...} */
	SRV_INGEST_SHADOW,    /* {"version": N >= 0, "state": {...},
			       * "refused"?: {...}} (fl_shadow_check_report) */
	SRV_INGEST_TELEMETRY, /* {"seq", "points", "dropped"?}
			       * (srv_telemetry_parse) */
};

enum srv_ingest_result {
	SRV_INGEST_STORED = 1,
	SRV_INGEST_DUPLICATE, /* seen before (same device and seq, or same
			       * job and seq): nothing changed */
	SRV_INGEST_REJECTED,  /* unknown or decommissioned device; an event
			       * for a job that is not this device's or is
			       * already final */
	SRV_INGEST_STALE,     /* a job event older than the job's newest
			       * (or than its final): recorded late in its
			       * history, the job not moved */
	SRV_INGEST_ILLEGAL,   /* a job event the job's state machine does
			       * not allow (srv_job_transition_ok):
			       * refused, not recorded */
};

/* What one message says, by its kind's rules (ingest.c takes it from
 * the JSON; the strings are the caller's, each within its cap). */
struct srv_ingest_fields {
	int64_t seq;	      /* events: >= 1 */
	int64_t version;      /* shadow reports: the desired version */
	int64_t bytes, total; /* events: -1 when absent */
	bool online;	      /* presence */
	const char *job, *cmd, *type, *state, *stage, *reason, *from_version;
	const char *agent;		      /* NULL: absent */
	const char *firmware, *slot, *health; /* NULL: absent, "": null */
	const struct srv_tmsg *tele;	      /* telemetry */
	/* final job events: the seqs of the job's progress events the
	 * device sent ("history", docs/protocol.md "ack") */
	const int64_t *history;
	size_t n_history; /* <= SRV_HISTORY_MAX */
};

#define SRV_HISTORY_MAX 32

/* One message, already parsed and checked by its kind's rules. */
struct srv_ingest_item {
	enum srv_ingest_kind kind;
	const char *device;
	struct srv_ingest_fields f;
	const char *text; /* the message as received, stored as is */
	/* out */
	enum srv_ingest_result result;
	int64_t gap; /* events: seq numbers skipped since the last one seen */
	uint32_t missing; /* final events: bit i, f.history[i] not stored */
};

/*
 * Apply @n messages in one transaction, in order.  Idempotent: an event
 * is stored once per (device, seq) as the device's last event and once
 * per (job, seq) in its job's history.  An event names its job by "job",
 * or by "cmd" (the command that started it: rotations).  Only an event
 * newer than the job's last, or a final one, whose move the job's type
 * allows, moves the job; an older one is only recorded in the history
 * (SRV_INGEST_STALE), one the job's type does not allow is refused
 * (SRV_INGEST_ILLEGAL).  A final event's "missing" names the seqs of its
 * history the job's events lack.  Each item's result is set; an error
 * (the database failed) rolls back the batch.
 */
int srv_store_ingest(struct srv_store *s, struct srv_ingest_item *items,
		     size_t n, struct fl_error *err);

/* Mark every device offline (fleetd start: presence is re-learnt). */
int srv_store_devices_all_offline(struct srv_store *s, struct fl_error *err);

/* Check that an enrolment token is usable (known, enrol kind, not
 * revoked, not expired, uses left) without consuming it: FL_EDENIED with
 * the reason otherwise.  Copies its id and group ("" if none). */
int srv_store_enroll_token_check(struct srv_store *s, const char *hash_hex,
				 char ret_id[17], char *ret_group,
				 size_t group_len, struct fl_error *err);

/* --- bundles and trust roots (store_bundles.c) --- */

struct srv_bundle {
	const char *id;	    /* first 16 hex of sha256 */
	const char *sha256; /* of the exact manifest bytes */
	const char *name, *version;
	uint64_t security_version;
	const char *const *hardware; /* @n_hardware board names */
	size_t n_hardware;
	uint64_t size;	      /* bytes of the .fwb file */
	const char *manifest; /* JSON text, kept as given */
};

/* Record a bundle.  FL_ECONFLICT when another bundle has the same name
 * and version; the same manifest again is not an error (idempotent
 * uploads), *ret_existed tells. */
int srv_store_bundle_add(struct srv_store *s, const struct srv_bundle *b,
			 const char *uploaded_by, bool *ret_existed,
			 struct fl_error *err);

/* A bundle as stored. */
struct srv_bundle_row {
	char *id, *sha256, *name, *version;
	uint64_t security_version;
	struct srv_strv hardware;
	uint64_t size;
	int64_t created;
	char *uploaded_by;
	char *manifest; /* JSON text; NULL in lists */
};

struct srv_bundle_list {
	size_t n;
	struct srv_bundle_row *v;
};
void srv_bundle_row_free(struct srv_bundle_row *b);
void srv_bundle_list_free(struct srv_bundle_list *l);

/* Bundles without their manifests, newest first. */
int srv_store_bundle_list(struct srv_store *s, struct srv_bundle_list *ret,
			  struct fl_error *err);

/* One bundle by id, id prefix (>= 6 hex) or NAME@VERSION, with its
 * manifest; FL_ENOTFOUND, FL_ECONFLICT for an ambiguous prefix. */
int srv_store_bundle_get(struct srv_store *s, const char *ref,
			 struct srv_bundle_row *ret, struct fl_error *err);

/* Add root version @version (its envelope text).  FL_ECONFLICT if that
 * version exists. */
int srv_store_root_add(struct srv_store *s, uint64_t version,
		       const char *envelope, int64_t expires,
		       const char *added_by, struct fl_error *err);

/* A trust root version as stored (without its envelope). */
struct srv_root_row {
	uint64_t version;
	int64_t expires, added;
	char *added_by;
};

struct srv_root_list {
	size_t n;
	struct srv_root_row *v;
};
void srv_root_list_free(struct srv_root_list *l);

/* All root versions, oldest first. */
int srv_store_root_list(struct srv_store *s, struct srv_root_list *ret,
			struct fl_error *err);

/* The envelope text of @version (0: the newest); FL_ENOTFOUND.  Caller
 * frees *ret. */
int srv_store_root_get(struct srv_store *s, uint64_t version, char **ret,
		       struct fl_error *err);

/* --- jobs (store_jobs.c; their rules: jobs.h) --- */

/* A job to create. */
struct srv_job {
	const char *id, *device, *type, *bundle, *command, *rollout;
	const char *to_version, *created_by;
	int64_t expires; /* Unix time after which fleetd gives up; 0 never */
	const char *const *lane; /* job types it cannot start beside,
				  * NULL-terminated (srv_job_lane) */
};

/* Create a job in state "queued".  FL_ECONFLICT when the device has a
 * job of a type in @j->lane that is not final. */
int srv_store_job_add(struct srv_store *s, const struct srv_job *j,
		      struct fl_error *err);

/* Record the command id sent for a job. */
int srv_store_job_command(struct srv_store *s, const char *job,
			  const char *command, struct fl_error *err);

/* Fail a job that could not be started (command not sent). */
int srv_store_job_fail(struct srv_store *s, const char *job, const char *stage,
		       const char *reason, struct fl_error *err);

/*
 * Cancel a job that is not final: state "cancelled", final, the reason
 * naming @actor.  The device's later events on it are ignored.
 * FL_ENOTFOUND, FL_ECONFLICT when the job is already final.
 */
int srv_store_job_cancel(struct srv_store *s, const char *job,
			 const char *actor, struct fl_error *err);

/*
 * Expire every open job whose deadline is at or before @now: state
 * "expired", final, stage = the state it was in.  *ret_count (may be
 * NULL) gets how many.
 */
int srv_store_jobs_expire(struct srv_store *s, int64_t now, int *ret_count,
			  struct fl_error *err);

/* Filters for srv_store_job_list; NULL matches all. */
struct srv_job_filter {
	const char *device, *state, *rollout;
	int limit;
};

/* A job as stored. */
struct srv_job_row {
	char *id, *device, *type, *bundle, *command, *rollout, *state;
	bool final;
	char *stage, *reason, *from_version, *to_version; /* NULL: none */
	int64_t bytes, total;				  /* -1: not reported */
	int64_t created, updated;
	char *created_by;
	int64_t expires;	/* 0: no deadline */
	struct srv_strv events; /* JSON texts by seq; srv_store_job_get only */
};

struct srv_job_list {
	size_t n;
	struct srv_job_row *v;
};
void srv_job_row_free(struct srv_job_row *j);
void srv_job_list_free(struct srv_job_list *l);

/* Jobs matching @f, newest first, at most f->limit (default 100). */
int srv_store_job_list(struct srv_store *s, const struct srv_job_filter *f,
		       struct srv_job_list *ret, struct fl_error *err);

/* The device's open job of @type (the newest); FL_ENOTFOUND. */
int srv_store_job_open(struct srv_store *s, const char *device,
		       const char *type, struct srv_job_row *ret,
		       struct fl_error *err);

/* One job with its event history; FL_ENOTFOUND. */
int srv_store_job_get(struct srv_store *s, const char *id,
		      struct srv_job_row *ret, struct fl_error *err);

/* --- device shadows (store_sqlite_shadow.c; rules: common/shadow.h) --- */

/*
 * A device's shadow (docs/shadow.md): the desired document operators
 * write, with the version each key was last written at (@desired_meta,
 * deleted keys included), and the reported one the device sends with
 * what it refused and why (stored by srv_store_ingest, kind
 * SRV_INGEST_SHADOW: a report replaces the stored one unless that is for
 * a newer version, SRV_INGEST_DUPLICATE then).  A device without any yet
 * has empty objects and versions 0.  The json_t members are owned
 * references.
 */
struct srv_shadow_row {
	char *device;
	json_t *desired, *desired_meta; /* objects */
	int64_t desired_version, desired_updated;
	json_t *reported, *refused; /* objects; refused: key -> reason */
	int64_t reported_version, reported_updated;
};
void srv_shadow_row_free(struct srv_shadow_row *r);

/* The shadow of device @id; FL_ENOTFOUND when no such device. */
int srv_store_shadow_get(struct srv_store *s, const char *id,
			 struct srv_shadow_row *ret, struct fl_error *err);

/* A write of desired keys (a patch: null deletes a key). */
struct srv_shadow_write {
	const json_t *patch; /* checked with fl_shadow_check */
	int64_t if_version;  /* the version it must find; -1: any */
	size_t max_size;     /* bytes the merged document may have */
};

/*
 * Merge @w->patch into @id's desired document at the next version, in
 * one transaction: FL_ENOTFOUND for no active device @id, FL_ECONFLICT
 * when its version is not @w->if_version, FL_ELIMIT when the merged
 * document would be over @w->max_size; nothing changes then.  *@ret
 * (may be NULL) gets the shadow as committed.
 */
int srv_store_shadow_update(struct srv_store *s, const char *id,
			    const struct srv_shadow_write *w,
			    struct srv_shadow_row *ret, struct fl_error *err);

/* --- telemetry (store_sqlite_telemetry.c; docs/protocol.md) --- */

/*
 * The recent window kept per device ([telemetry] in fleetd.conf): at
 * most @keep_points points, none sampled more than @keep_ms before now.
 * srv_store_ingest stores a telemetry message's points once (by the
 * device's seq high-water mark, srv_telemetry_seq) and trims that
 * device's window in the same transaction; devices that went silent are
 * trimmed a few at a time by later batches, at most once a minute.
 */
struct srv_telemetry_window {
	int64_t keep_points;
	int64_t keep_ms;
};

#define SRV_TELEMETRY_KEEP_POINTS 10000
#define SRV_TELEMETRY_KEEP_POINTS_MAX 1000000
#define SRV_TELEMETRY_KEEP_HOURS 24
#define SRV_TELEMETRY_KEEP_HOURS_MAX 8760

/* Set the window (before ingestion starts; the default is 10,000 points
 * and 24 hours). */
void srv_store_telemetry_window(struct srv_store *s,
				const struct srv_telemetry_window *w);

/* Which points of a device to read. */
struct srv_telemetry_query {
	const char *device;
	int64_t since_ms;   /* sampled at or after */
	const char *metric; /* NULL: all */
	int limit;	    /* the newest @limit of them */
};

struct srv_telemetry_row {
	char *metric;
	double value;
	int64_t ts_ms;
};

struct srv_telemetry_list {
	size_t n;
	struct srv_telemetry_row *v; /* oldest first */
	int64_t dropped; /* points the device said its outbox dropped */
};
void srv_telemetry_list_free(struct srv_telemetry_list *l);

/* The points @q asks for, oldest first; FL_ENOTFOUND for no device. */
int srv_store_telemetry_get(struct srv_store *s,
			    const struct srv_telemetry_query *q,
			    struct srv_telemetry_list *ret,
			    struct fl_error *err);

/* --- counts for the metrics (docs/metrics.md) --- */

/* How many rows have one value of a column. */
struct srv_count {
	char *name;
	int64_t n;
};

struct srv_count_list {
	size_t n;
	struct srv_count *v;
};

/* The most firmware versions counted one by one; the rest are summed. */
#define SRV_COUNT_VERSIONS_MAX 50

struct srv_fleet_counts {
	struct srv_count_list devices; /* by state */
	int64_t online;		       /* active devices online */
	/* active devices by firmware ("" never reported), the most common
	 * SRV_COUNT_VERSIONS_MAX first; @firmware_other: the others */
	struct srv_count_list firmware;
	int64_t firmware_other;
	struct srv_count_list rollouts;	  /* by state */
	struct srv_count_list jobs_final; /* jobs in a final state, by it */
};
void srv_fleet_counts_free(struct srv_fleet_counts *c);

/* The fleet's numbers for a scrape: a few GROUP BY queries, each under
 * the store's lock on its own. */
int srv_store_fleet_counts(struct srv_store *s, struct srv_fleet_counts *ret,
			   struct fl_error *err);

/*
 * Dashboard sessions in the store, for fleetd's replicas (dash.h): a
 * cookie made on one replica works on every other.  Each session is the
 * SHA-256 hex of its id (@id_hash) and of the token that logged in; it
 * lives @ttl seconds from its creation.  put stores one at @now, drops
 * the expired ones and, past @max, the oldest; get gives the token hash
 * of a live one (FL_ENOTFOUND: none); del ends one (none is fine).
 */
int srv_store_dash_put(struct srv_store *s, const char *id_hash,
		       const char *token_hash, int64_t now, int64_t ttl,
		       int64_t max, struct fl_error *err);
int srv_store_dash_get(struct srv_store *s, const char *id_hash, int64_t now,
		       int64_t ttl, char ret_token_hash[65],
		       struct fl_error *err);
int srv_store_dash_del(struct srv_store *s, const char *id_hash,
		       struct fl_error *err);

/*
 * Idempotency keys (idem.h): a state-changing request's answer kept for
 * @ttl seconds under @id_hash (the SHA-256 of who sent it and its key),
 * with the hash of the request it answered.  claim finds the row of
 * @id_hash (ret->found) or else makes one without an answer (the
 * request is carried out now), dropping the expired ones first; answer
 * keeps the status and the (sealed) answer; drop removes a claim whose
 * request did not take effect.
 */
struct srv_idem_row {
	bool found;
	bool answered; /* a status is kept */
	int status;
	char *request_hash; /* owned */
	char *answer;	    /* owned; NULL: none kept */
};
void srv_idem_row_free(struct srv_idem_row *r);
int srv_store_idem_claim(struct srv_store *s, const char *id_hash,
			 const char *request_hash, int64_t now, int64_t ttl,
			 struct srv_idem_row *ret, struct fl_error *err);
int srv_store_idem_answer(struct srv_store *s, const char *id_hash, int status,
			  const char *answer, struct fl_error *err);
int srv_store_idem_drop(struct srv_store *s, const char *id_hash,
			struct fl_error *err);

/*
 * Support bundles' uploads (diag_bundles.h) in the store, so that any
 * replica takes a device's upload and serves its download.  @state is an
 * enum srv_bundle_state; times in ms.  add refuses (FL_ELIMIT) past @max
 * rows; begin moves a pending upload of @device to uploading (FL_ENOTFOUND:
 * none, FL_ECONFLICT: not pending); finish makes an uploading one
 * uploaded; abort puts it back to pending, or expired when its call is
 * done; settle marks the call done and, when still pending, ends it
 * with @state and @error; expire removes the rows that settled @keep ago
 * and those older than @stale (a call whose fleetd died), their ids
 * into @ret_ids for their files.
 */
struct srv_upload_row {
	int state;
	uint64_t size;
	char *error; /* owned */
};
int srv_store_upload_add(struct srv_store *s, const char *id,
			 const char *device, int64_t now, int max,
			 struct fl_error *err);
int srv_store_upload_drop(struct srv_store *s, const char *id,
			  struct fl_error *err);
int srv_store_upload_begin(struct srv_store *s, const char *id,
			   const char *device, struct fl_error *err);
int srv_store_upload_finish(struct srv_store *s, const char *id, uint64_t size,
			    int64_t now, struct fl_error *err);
int srv_store_upload_abort(struct srv_store *s, const char *id, int64_t now,
			   struct fl_error *err);
int srv_store_upload_settle(struct srv_store *s, const char *id, int state,
			    const char *error, int64_t now,
			    struct fl_error *err);
int srv_store_upload_get(struct srv_store *s, const char *id,
			 const char *device, struct srv_upload_row *ret,
			 struct fl_error *err);
int srv_store_upload_expire(struct srv_store *s, int64_t now, int64_t keep,
			    int64_t stale, struct srv_strv *ret_ids,
			    struct fl_error *err);

/* --- rollouts (store_rollouts.h) --- */
#include "store_rollouts.h"

#endif
