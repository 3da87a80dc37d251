/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_OPS_H
#define SRV_STORE_OPS_H

/*
 * The store's backend interface.  store.c keeps a handle's backend and
 * its state; every srv_store_* function of store.h calls the matching
 * member here with that state.  A backend defines struct srv_store_be
 * for itself, fills one struct srv_store_ops, and adds itself to the
 * scheme table in store.c.  Today both backends are the SQL ops
 * (store_sql.h) on a driver: SQLite and PostgreSQL, one schema version
 * numbering with a migration list each.  Only store.c and backends
 * include this header.
 */
#include "store.h"

struct srv_store_be;

struct srv_store_ops {
	const char *name; /* "sqlite" */
	int (*open)(const char *path, struct srv_store_be **ret,
		    struct fl_error *err);
	void (*close)(struct srv_store_be *s);
	int (*schema_version)(struct srv_store_be *s);
	int (*token_add)(struct srv_store_be *s, const struct srv_token *t,
			 const char *hash_hex, const char *group,
			 const char *created_by, struct fl_error *err);
	int (*token_find)(struct srv_store_be *s, const char *hash_hex,
			  struct srv_token *ret, struct fl_error *err);
	int (*token_list)(struct srv_store_be *s, struct srv_token_list *ret,
			  struct fl_error *err);
	int (*token_revoke)(struct srv_store_be *s, const char *id,
			    struct fl_error *err);
	int (*device_principal)(struct srv_store_be *s, const char *serial,
				const char *device, struct fl_error *err);
	int (*device_by_cert)(struct srv_store_be *s, const char *sha256,
			      struct srv_cert_holder *ret,
			      struct fl_error *err);
	int (*audit)(struct srv_store_be *s, const char *actor,
		     const char *method, const char *path, int status,
		     const char *remote, const char *detail,
		     struct fl_error *err);
	int (*audit_list)(struct srv_store_be *s, int limit,
			  struct srv_audit_list *ret, struct fl_error *err);
	int (*device_enroll)(struct srv_store_be *s, const char *id,
			     const char *group, const char *enrolled_by,
			     const char *token_hash, bool allow_existing,
			     const struct srv_cert *cert, struct fl_error *err);
	int (*cert_add)(struct srv_store_be *s, const struct srv_reenroll *re,
			struct srv_strv *ret_superseded,
			int64_t *ret_retry_after, struct fl_error *err);
	int (*reenroll_check)(struct srv_store_be *s, const char *device,
			      const struct srv_reenroll_limits *lim,
			      int64_t *ret_retry_after, struct fl_error *err);
	int (*cert_confirm)(struct srv_store_be *s, const char *device,
			    const char *serial, const struct srv_crl_hook *crl,
			    struct srv_strv *ret_revoked, struct fl_error *err);
	int (*cert_get)(struct srv_store_be *s, const char *serial,
			struct srv_cert_row *ret, struct fl_error *err);
	int (*crl_publish)(struct srv_store_be *s,
			   const struct srv_crl_hook *crl,
			   struct fl_error *err);
	int (*device_list)(struct srv_store_be *s,
			   const struct srv_device_filter *f,
			   struct srv_device_list *ret, struct fl_error *err);
	int (*device_get)(struct srv_store_be *s, const char *id,
			  struct srv_device_row *ret, struct fl_error *err);
	int (*device_labels)(struct srv_store_be *s, const char *id,
			     const struct srv_label_list *set,
			     const struct srv_strv *remove,
			     struct fl_error *err);
	int (*device_decommission)(struct srv_store_be *s, const char *id,
				   const struct srv_crl_hook *crl,
				   struct srv_strv *ret_revoked,
				   struct fl_error *err);
	int (*provision_undo)(struct srv_store_be *s, const char *id,
			      const char *serial, struct fl_error *err);
	int (*tech_add)(struct srv_store_be *s, const struct srv_cert *cert,
			struct fl_error *err);
	int (*tech_list)(struct srv_store_be *s, struct srv_tech_list *ret,
			 struct fl_error *err);
	int (*tech_revoke)(struct srv_store_be *s, const char *cn,
			   const struct srv_crl_hook *crl,
			   struct srv_strv *ret_revoked, struct fl_error *err);
	int (*ingest)(struct srv_store_be *s, struct srv_ingest_item *items,
		      size_t n, struct fl_error *err);
	int (*devices_all_offline)(struct srv_store_be *s,
				   struct fl_error *err);
	int (*enroll_token_check)(struct srv_store_be *s, const char *hash_hex,
				  char ret_id[17], char *ret_group,
				  size_t group_len, struct fl_error *err);
	int (*bundle_add)(struct srv_store_be *s, const struct srv_bundle *b,
			  const char *uploaded_by, bool *ret_existed,
			  struct fl_error *err);
	int (*bundle_list)(struct srv_store_be *s, struct srv_bundle_list *ret,
			   struct fl_error *err);
	int (*bundle_get)(struct srv_store_be *s, const char *ref,
			  struct srv_bundle_row *ret, struct fl_error *err);
	int (*root_add)(struct srv_store_be *s, uint64_t version,
			const char *envelope, int64_t expires,
			const char *added_by, struct fl_error *err);
	int (*root_list)(struct srv_store_be *s, struct srv_root_list *ret,
			 struct fl_error *err);
	int (*root_get)(struct srv_store_be *s, uint64_t version, char **ret,
			struct fl_error *err);
	int (*job_add)(struct srv_store_be *s, const struct srv_job *j,
		       struct fl_error *err);
	int (*job_command)(struct srv_store_be *s, const char *job,
			   const char *command, struct fl_error *err);
	int (*job_fail)(struct srv_store_be *s, const char *job,
			const char *stage, const char *reason,
			struct fl_error *err);
	int (*job_cancel)(struct srv_store_be *s, const char *job,
			  const char *actor, struct fl_error *err);
	int (*jobs_expire)(struct srv_store_be *s, int64_t now, int *ret_count,
			   struct fl_error *err);
	int (*job_list)(struct srv_store_be *s, const struct srv_job_filter *f,
			struct srv_job_list *ret, struct fl_error *err);
	int (*job_open)(struct srv_store_be *s, const char *device,
			const char *type, struct srv_job_row *ret,
			struct fl_error *err);
	int (*job_get)(struct srv_store_be *s, const char *id,
		       struct srv_job_row *ret, struct fl_error *err);
	int (*rollout_add)(struct srv_store_be *s, const struct srv_rollout *r,
			   int64_t now, struct srv_strv *ret_busy,
			   struct fl_error *err);
	int (*rollout_busy)(struct srv_store_be *s, const char *const *devices,
			    size_t n, struct srv_strv *ret_busy,
			    struct fl_error *err);
	int (*rollout_get)(struct srv_store_be *s, const char *id,
			   struct srv_rollout_row *ret, struct fl_error *err);
	int (*rollout_list)(struct srv_store_be *s, bool active, int limit,
			    struct srv_rollout_list *ret, struct fl_error *err);
	int (*rollout_waves)(struct srv_store_be *s, const char *id,
			     struct srv_rollout_wave_list *ret,
			     struct fl_error *err);
	int (*rollout_counts)(struct srv_store_be *s, const char *id,
			      struct srv_rollout_count_list *ret,
			      struct fl_error *err);
	int (*rollout_devices)(struct srv_store_be *s, const char *id,
			       bool failures, int limit,
			       struct srv_rollout_device_list *ret,
			       struct fl_error *err);
	int (*rollout_events)(struct srv_store_be *s, const char *id, int limit,
			      struct srv_rollout_event_list *ret,
			      struct fl_error *err);
	int (*rollout_action)(struct srv_store_be *s, const char *id,
			      int action, const char *actor, int64_t now,
			      struct srv_strv *ret_cancelled,
			      struct fl_error *err);
	int (*rollout_candidates)(struct srv_store_be *s, const char *group,
				  const char *const *ids, size_t n_ids,
				  struct srv_device_list *ret,
				  struct fl_error *err);
	int (*lease_take)(struct srv_store_be *s, const char *name,
			  const char *holder, int64_t now, int64_t ttl,
			  char **ret_holder, struct fl_error *err);
	int (*rollout_pending)(struct srv_store_be *s, const char *id,
			       int64_t wave, int limit, struct srv_strv *ret,
			       struct fl_error *err);
	int (*rollout_watch)(struct srv_store_be *s, const char *id,
			     int64_t healthy_wave, bool all,
			     struct srv_rollout_watch_list *ret,
			     struct fl_error *err);
	int (*rollout_apply)(struct srv_store_be *s, const char *id,
			     const struct srv_rollout_change *c, size_t n,
			     int64_t now, size_t *ret_applied,
			     struct fl_error *err);
	int (*rollout_command)(struct srv_store_be *s, const char *id,
			       struct srv_rollout_cmd *cmds, size_t n,
			       int64_t now, int64_t clock,
			       struct fl_error *err);
	int (*rollout_sent)(struct srv_store_be *s, const char *id,
			    const char *const *devices, size_t n, int64_t now,
			    struct fl_error *err);
	int (*rollout_step)(struct srv_store_be *s, const char *id,
			    const struct srv_rollout_step *st, int64_t now,
			    struct fl_error *err);
	int (*shadow_get)(struct srv_store_be *s, const char *id,
			  struct srv_shadow_row *ret, struct fl_error *err);
	int (*shadow_update)(struct srv_store_be *s, const char *id,
			     const struct srv_shadow_write *w,
			     struct srv_shadow_row *ret, struct fl_error *err);
	/* Copy @src's rows into @dst: backends of one family only. */
	int (*copy_from)(struct srv_store_be *dst, struct srv_store_be *src,
			 long *ret_rows, struct fl_error *err);
	void (*telemetry_window)(struct srv_store_be *s,
				 const struct srv_telemetry_window *w);
	int (*telemetry_get)(struct srv_store_be *s,
			     const struct srv_telemetry_query *q,
			     struct srv_telemetry_list *ret,
			     struct fl_error *err);
	int (*fleet_counts)(struct srv_store_be *s,
			    struct srv_fleet_counts *ret, struct fl_error *err);
	int (*dash_put)(struct srv_store_be *s, const char *id_hash,
			const char *token_hash, int64_t now, int64_t ttl,
			int64_t max, struct fl_error *err);
	int (*dash_get)(struct srv_store_be *s, const char *id_hash,
			int64_t now, int64_t ttl, char ret_token_hash[65],
			struct fl_error *err);
	int (*dash_del)(struct srv_store_be *s, const char *id_hash,
			struct fl_error *err);
	int (*idem_claim)(struct srv_store_be *s, const char *id_hash,
			  const char *request_hash, int64_t now, int64_t ttl,
			  struct srv_idem_row *ret, struct fl_error *err);
	int (*idem_answer)(struct srv_store_be *s, const char *id_hash,
			   int status, const char *answer,
			   struct fl_error *err);
	int (*idem_drop)(struct srv_store_be *s, const char *id_hash,
			 struct fl_error *err);
	int (*upload_add)(struct srv_store_be *s, const char *id,
			  const char *device, int64_t now, int max,
			  struct fl_error *err);
	int (*upload_drop)(struct srv_store_be *s, const char *id,
			   struct fl_error *err);
	int (*upload_begin)(struct srv_store_be *s, const char *id,
			    const char *device, struct fl_error *err);
	int (*upload_finish)(struct srv_store_be *s, const char *id,
			     uint64_t size, int64_t now, struct fl_error *err);
	int (*upload_abort)(struct srv_store_be *s, const char *id, int64_t now,
			    struct fl_error *err);
	int (*upload_settle)(struct srv_store_be *s, const char *id, int state,
			     const char *error, int64_t now,
			     struct fl_error *err);
	int (*upload_get)(struct srv_store_be *s, const char *id,
			  const char *device, struct srv_upload_row *ret,
			  struct fl_error *err);
	int (*upload_expire)(struct srv_store_be *s, int64_t now, int64_t keep,
			     int64_t stale, struct srv_strv *ret_ids,
			     struct fl_error *err);
};

extern const struct srv_store_ops srv_store_sqlite_ops, srv_store_pg_ops;

/* The backend state of @s (for a backend's own tests). */
struct srv_store_be *srv_store_backend(struct srv_store *s);

#endif
