/* SPDX-License-Identifier: MIT */
/*
 * The store's front: picks a backend by the database URL at open and
 * hands every call to it (store_ops.h), so callers never see which one.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "store.h"
#include "store_ops.h"
#include "util.h"

/* Evaluate the backend call @call and count its time in the store's
 * latency histogram (metrics.h). */
#define TIMED(call)                                                            \
	({                                                                     \
		uint64_t t0_ = srv_metrics_now_ns();                           \
		__typeof__(call) rc_ = (call);                                 \
		srv_metrics_store(srv_metrics_now_ns() - t0_);                 \
		rc_;                                                           \
	})

struct srv_store {
	const struct srv_store_ops *ops;
	struct srv_store_be *be;
};

/* URL schemes and their backends; a NULL backend is known but not built
 * into this fleetd.  @whole: the backend opens the whole URL, else what
 * follows the scheme. */
static const struct {
	const char *scheme;
	const struct srv_store_ops *ops;
	bool whole;
} backends[] = {
    {"sqlite:", &srv_store_sqlite_ops, false},
    {"postgres://", &srv_store_pg_ops, true},
    {"postgresql://", &srv_store_pg_ops, true},
};

/* Length of @url's "scheme://" prefix (RFC 3986 scheme), 0 if none. */
static size_t scheme_len(const char *url)
{
	size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

	return n && strncmp(url + n, "://", 3) == 0 ? n + 3 : 0;
}

/*
 * The backend for @url and the part it opens; a plain path is SQLite.
 * Messages name the scheme only: a database URL may carry a password.
 */
static int pick_backend(const char *url, const struct srv_store_ops **ret,
			const char **ret_rest, struct fl_error *err)
{
	size_t n;

	for (size_t i = 0; i < FL_ARRAY_SIZE(backends); i++) {
		n = strlen(backends[i].scheme);
		if (strncmp(url, backends[i].scheme, n) != 0)
			continue;
		if (!backends[i].ops)
			return fl_fail(err, FL_EINVAL,
				       "database: no %s backend in this fleetd",
				       backends[i].scheme);
		*ret = backends[i].ops;
		*ret_rest = backends[i].whole ? url : url + n;
		return 0;
	}
	n = scheme_len(url);
	if (n)
		return fl_fail(err, FL_EINVAL,
			       "database: unknown scheme '%.*s'", (int)n, url);
	*ret = &srv_store_sqlite_ops;
	*ret_rest = url;
	return 0;
}

int srv_store_open(const char *path, struct srv_store **ret,
		   struct fl_error *err)
{
	const struct srv_store_ops *ops = NULL;
	struct srv_store_be *be = NULL;
	const char *rest = NULL;
	int rc;

	rc = pick_backend(path, &ops, &rest, err);
	if (!rc)
		rc = ops->open(rest, &be, err);
	if (rc)
		return rc;
	*ret = fl_xcalloc(1, sizeof(**ret));
	(*ret)->ops = ops;
	(*ret)->be = be;
	return 0;
}

void srv_store_close(struct srv_store *s)
{
	if (!s)
		return;
	s->ops->close(s->be);
	free(s);
}

struct srv_store_be *srv_store_backend(struct srv_store *s)
{
	return s->be;
}

int srv_store_schema_version(struct srv_store *s)
{
	return TIMED(s->ops->schema_version(s->be));
}

int srv_store_copy(struct srv_store *dst, struct srv_store *src, long *ret_rows,
		   struct fl_error *err)
{
	*ret_rows = 0;
	return dst->ops->copy_from(dst->be, src->be, ret_rows, err);
}

int srv_store_token_add(struct srv_store *s, const struct srv_token *t,
			const char *hash_hex, const char *group,
			const char *created_by, struct fl_error *err)
{
	return TIMED(
	    s->ops->token_add(s->be, t, hash_hex, group, created_by, err));
}

int srv_store_token_find(struct srv_store *s, const char *hash_hex,
			 struct srv_token *ret, struct fl_error *err)
{
	return TIMED(s->ops->token_find(s->be, hash_hex, ret, err));
}

int srv_store_token_list(struct srv_store *s, struct srv_token_list *ret,
			 struct fl_error *err)
{
	return TIMED(s->ops->token_list(s->be, ret, err));
}

int srv_store_token_revoke(struct srv_store *s, const char *id,
			   struct fl_error *err)
{
	return TIMED(s->ops->token_revoke(s->be, id, err));
}

int srv_store_device_principal(struct srv_store *s, const char *serial,
			       const char *device, struct fl_error *err)
{
	return TIMED(s->ops->device_principal(s->be, serial, device, err));
}

int srv_store_device_by_cert(struct srv_store *s, const char *sha256,
			     struct srv_cert_holder *ret, struct fl_error *err)
{
	return TIMED(s->ops->device_by_cert(s->be, sha256, ret, err));
}

int srv_store_audit(struct srv_store *s, const char *actor, const char *method,
		    const char *path, int status, const char *remote,
		    const char *detail, struct fl_error *err)
{
	return TIMED(s->ops->audit(s->be, actor, method, path, status, remote,
				   detail, err));
}

int srv_store_audit_list(struct srv_store *s, int limit,
			 struct srv_audit_list *ret, struct fl_error *err)
{
	return TIMED(s->ops->audit_list(s->be, limit, ret, err));
}

int srv_store_device_enroll(struct srv_store *s, const char *id,
			    const char *group, const char *enrolled_by,
			    const char *token_hash, bool allow_existing,
			    const struct srv_cert *cert, struct fl_error *err)
{
	return TIMED(s->ops->device_enroll(s->be, id, group, enrolled_by,
					   token_hash, allow_existing, cert,
					   err));
}

int srv_store_cert_add(struct srv_store *s, const struct srv_reenroll *re,
		       struct srv_strv *ret_superseded,
		       int64_t *ret_retry_after, struct fl_error *err)
{
	return TIMED(
	    s->ops->cert_add(s->be, re, ret_superseded, ret_retry_after, err));
}

int srv_store_reenroll_check(struct srv_store *s, const char *device,
			     const struct srv_reenroll_limits *lim,
			     int64_t *ret_retry_after, struct fl_error *err)
{
	return TIMED(
	    s->ops->reenroll_check(s->be, device, lim, ret_retry_after, err));
}

int srv_store_cert_confirm(struct srv_store *s, const char *device,
			   const char *serial, const struct srv_crl_hook *crl,
			   struct srv_strv *ret_revoked, struct fl_error *err)
{
	return TIMED(
	    s->ops->cert_confirm(s->be, device, serial, crl, ret_revoked, err));
}

int srv_store_cert_get(struct srv_store *s, const char *serial,
		       struct srv_cert_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->cert_get(s->be, serial, ret, err));
}

int srv_store_crl_publish(struct srv_store *s, const struct srv_crl_hook *crl,
			  struct fl_error *err)
{
	return TIMED(s->ops->crl_publish(s->be, crl, err));
}

int srv_store_device_list(struct srv_store *s,
			  const struct srv_device_filter *f,
			  struct srv_device_list *ret, struct fl_error *err)
{
	return TIMED(s->ops->device_list(s->be, f, ret, err));
}

int srv_store_device_get(struct srv_store *s, const char *id,
			 struct srv_device_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->device_get(s->be, id, ret, err));
}

int srv_store_device_labels(struct srv_store *s, const char *id,
			    const struct srv_label_list *set,
			    const struct srv_strv *remove, struct fl_error *err)
{
	return TIMED(s->ops->device_labels(s->be, id, set, remove, err));
}

int srv_store_device_decommission(struct srv_store *s, const char *id,
				  const struct srv_crl_hook *crl,
				  struct srv_strv *ret_revoked,
				  struct fl_error *err)
{
	return TIMED(
	    s->ops->device_decommission(s->be, id, crl, ret_revoked, err));
}

int srv_store_provision_undo(struct srv_store *s, const char *id,
			     const char *serial, struct fl_error *err)
{
	return TIMED(s->ops->provision_undo(s->be, id, serial, err));
}

int srv_store_tech_add(struct srv_store *s, const struct srv_cert *cert,
		       struct fl_error *err)
{
	return TIMED(s->ops->tech_add(s->be, cert, err));
}

int srv_store_tech_list(struct srv_store *s, struct srv_tech_list *ret,
			struct fl_error *err)
{
	return TIMED(s->ops->tech_list(s->be, ret, err));
}

int srv_store_tech_revoke(struct srv_store *s, const char *cn,
			  const struct srv_crl_hook *crl,
			  struct srv_strv *ret_revoked, struct fl_error *err)
{
	return TIMED(s->ops->tech_revoke(s->be, cn, crl, ret_revoked, err));
}

int srv_store_ingest(struct srv_store *s, struct srv_ingest_item *items,
		     size_t n, struct fl_error *err)
{
	return TIMED(s->ops->ingest(s->be, items, n, err));
}

int srv_store_devices_all_offline(struct srv_store *s, struct fl_error *err)
{
	return TIMED(s->ops->devices_all_offline(s->be, err));
}

int srv_store_enroll_token_check(struct srv_store *s, const char *hash_hex,
				 char ret_id[17], char *ret_group,
				 size_t group_len, struct fl_error *err)
{
	return TIMED(s->ops->enroll_token_check(s->be, hash_hex, ret_id,
						ret_group, group_len, err));
}

int srv_store_bundle_add(struct srv_store *s, const struct srv_bundle *b,
			 const char *uploaded_by, bool *ret_existed,
			 struct fl_error *err)
{
	return TIMED(
	    s->ops->bundle_add(s->be, b, uploaded_by, ret_existed, err));
}

int srv_store_bundle_list(struct srv_store *s, struct srv_bundle_list *ret,
			  struct fl_error *err)
{
	return TIMED(s->ops->bundle_list(s->be, ret, err));
}

int srv_store_bundle_get(struct srv_store *s, const char *ref,
			 struct srv_bundle_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->bundle_get(s->be, ref, ret, err));
}

int srv_store_root_add(struct srv_store *s, uint64_t version,
		       const char *envelope, int64_t expires,
		       const char *added_by, struct fl_error *err)
{
	return TIMED(
	    s->ops->root_add(s->be, version, envelope, expires, added_by, err));
}

int srv_store_root_list(struct srv_store *s, struct srv_root_list *ret,
			struct fl_error *err)
{
	return TIMED(s->ops->root_list(s->be, ret, err));
}

int srv_store_root_get(struct srv_store *s, uint64_t version, char **ret,
		       struct fl_error *err)
{
	return TIMED(s->ops->root_get(s->be, version, ret, err));
}

int srv_store_job_add(struct srv_store *s, const struct srv_job *j,
		      struct fl_error *err)
{
	return TIMED(s->ops->job_add(s->be, j, err));
}

int srv_store_job_command(struct srv_store *s, const char *job,
			  const char *command, struct fl_error *err)
{
	return TIMED(s->ops->job_command(s->be, job, command, err));
}

int srv_store_job_fail(struct srv_store *s, const char *job, const char *stage,
		       const char *reason, struct fl_error *err)
{
	return TIMED(s->ops->job_fail(s->be, job, stage, reason, err));
}

int srv_store_job_cancel(struct srv_store *s, const char *job,
			 const char *actor, struct fl_error *err)
{
	return TIMED(s->ops->job_cancel(s->be, job, actor, err));
}

int srv_store_jobs_expire(struct srv_store *s, int64_t now, int *ret_count,
			  struct fl_error *err)
{
	return TIMED(s->ops->jobs_expire(s->be, now, ret_count, err));
}

int srv_store_job_list(struct srv_store *s, const struct srv_job_filter *f,
		       struct srv_job_list *ret, struct fl_error *err)
{
	return TIMED(s->ops->job_list(s->be, f, ret, err));
}

int srv_store_job_open(struct srv_store *s, const char *device,
		       const char *type, struct srv_job_row *ret,
		       struct fl_error *err)
{
	return TIMED(s->ops->job_open(s->be, device, type, ret, err));
}

int srv_store_job_get(struct srv_store *s, const char *id,
		      struct srv_job_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->job_get(s->be, id, ret, err));
}

/* --- rollouts --- */

int srv_store_rollout_add(struct srv_store *s, const struct srv_rollout *r,
			  int64_t now, struct srv_strv *ret_busy,
			  struct fl_error *err)
{
	return TIMED(s->ops->rollout_add(s->be, r, now, ret_busy, err));
}

int srv_store_rollout_busy(struct srv_store *s, const char *const *devices,
			   size_t n, struct srv_strv *ret_busy,
			   struct fl_error *err)
{
	return TIMED(s->ops->rollout_busy(s->be, devices, n, ret_busy, err));
}

int srv_store_rollout_candidates(struct srv_store *s, const char *group,
				 const char *const *ids, size_t n_ids,
				 struct srv_device_list *ret,
				 struct fl_error *err)
{
	return TIMED(
	    s->ops->rollout_candidates(s->be, group, ids, n_ids, ret, err));
}

int srv_store_rollout_get(struct srv_store *s, const char *id,
			  struct srv_rollout_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->rollout_get(s->be, id, ret, err));
}

int srv_store_rollout_list(struct srv_store *s, bool active, int limit,
			   struct srv_rollout_list *ret, struct fl_error *err)
{
	return TIMED(s->ops->rollout_list(s->be, active, limit, ret, err));
}

int srv_store_rollout_waves(struct srv_store *s, const char *id,
			    struct srv_rollout_wave_list *ret,
			    struct fl_error *err)
{
	return TIMED(s->ops->rollout_waves(s->be, id, ret, err));
}

int srv_store_rollout_counts(struct srv_store *s, const char *id,
			     struct srv_rollout_count_list *ret,
			     struct fl_error *err)
{
	return TIMED(s->ops->rollout_counts(s->be, id, ret, err));
}

int srv_store_rollout_devices(struct srv_store *s, const char *id,
			      bool failures, int limit,
			      struct srv_rollout_device_list *ret,
			      struct fl_error *err)
{
	return TIMED(
	    s->ops->rollout_devices(s->be, id, failures, limit, ret, err));
}

int srv_store_rollout_events(struct srv_store *s, const char *id, int limit,
			     struct srv_rollout_event_list *ret,
			     struct fl_error *err)
{
	return TIMED(s->ops->rollout_events(s->be, id, limit, ret, err));
}

int srv_store_rollout_action(struct srv_store *s, const char *id, int action,
			     const char *actor, int64_t now,
			     struct srv_strv *ret_cancelled,
			     struct fl_error *err)
{
	return TIMED(s->ops->rollout_action(s->be, id, action, actor, now,
					    ret_cancelled, err));
}

int srv_store_dash_put(struct srv_store *s, const char *id_hash,
		       const char *token_hash, int64_t now, int64_t ttl,
		       int64_t max, struct fl_error *err)
{
	return TIMED(
	    s->ops->dash_put(s->be, id_hash, token_hash, now, ttl, max, err));
}

int srv_store_dash_get(struct srv_store *s, const char *id_hash, int64_t now,
		       int64_t ttl, char ret_token_hash[65],
		       struct fl_error *err)
{
	return TIMED(
	    s->ops->dash_get(s->be, id_hash, now, ttl, ret_token_hash, err));
}

int srv_store_dash_del(struct srv_store *s, const char *id_hash,
		       struct fl_error *err)
{
	return TIMED(s->ops->dash_del(s->be, id_hash, err));
}

int srv_store_idem_claim(struct srv_store *s, const char *id_hash,
			 const char *request_hash, int64_t now, int64_t ttl,
			 struct srv_idem_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->idem_claim(s->be, id_hash, request_hash, now, ttl,
					ret, err));
}

int srv_store_idem_answer(struct srv_store *s, const char *id_hash, int status,
			  const char *answer, struct fl_error *err)
{
	return TIMED(s->ops->idem_answer(s->be, id_hash, status, answer, err));
}

int srv_store_idem_drop(struct srv_store *s, const char *id_hash,
			struct fl_error *err)
{
	return TIMED(s->ops->idem_drop(s->be, id_hash, err));
}

int srv_store_upload_add(struct srv_store *s, const char *id,
			 const char *device, int64_t now, int max,
			 struct fl_error *err)
{
	return TIMED(s->ops->upload_add(s->be, id, device, now, max, err));
}

int srv_store_upload_drop(struct srv_store *s, const char *id,
			  struct fl_error *err)
{
	return TIMED(s->ops->upload_drop(s->be, id, err));
}

int srv_store_upload_begin(struct srv_store *s, const char *id,
			   const char *device, struct fl_error *err)
{
	return TIMED(s->ops->upload_begin(s->be, id, device, err));
}

int srv_store_upload_finish(struct srv_store *s, const char *id, uint64_t size,
			    int64_t now, struct fl_error *err)
{
	return TIMED(s->ops->upload_finish(s->be, id, size, now, err));
}

int srv_store_upload_abort(struct srv_store *s, const char *id, int64_t now,
			   struct fl_error *err)
{
	return TIMED(s->ops->upload_abort(s->be, id, now, err));
}

int srv_store_upload_settle(struct srv_store *s, const char *id, int state,
			    const char *error, int64_t now,
			    struct fl_error *err)
{
	return TIMED(s->ops->upload_settle(s->be, id, state, error, now, err));
}

int srv_store_upload_get(struct srv_store *s, const char *id,
			 const char *device, struct srv_upload_row *ret,
			 struct fl_error *err)
{
	return TIMED(s->ops->upload_get(s->be, id, device, ret, err));
}

int srv_store_upload_expire(struct srv_store *s, int64_t now, int64_t keep,
			    int64_t stale, struct srv_strv *ret_ids,
			    struct fl_error *err)
{
	return TIMED(
	    s->ops->upload_expire(s->be, now, keep, stale, ret_ids, err));
}

void srv_idem_row_free(struct srv_idem_row *r)
{
	free(r->request_hash);
	free(r->answer);
	*r = (struct srv_idem_row){0};
}

int srv_store_lease_take(struct srv_store *s, const char *name,
			 const char *holder, int64_t now, int64_t ttl,
			 char **ret_holder, struct fl_error *err)
{
	return TIMED(
	    s->ops->lease_take(s->be, name, holder, now, ttl, ret_holder, err));
}

int srv_store_rollout_pending(struct srv_store *s, const char *id, int64_t wave,
			      int limit, struct srv_strv *ret,
			      struct fl_error *err)
{
	return TIMED(s->ops->rollout_pending(s->be, id, wave, limit, ret, err));
}

int srv_store_rollout_watch(struct srv_store *s, const char *id,
			    int64_t healthy_wave, bool all,
			    struct srv_rollout_watch_list *ret,
			    struct fl_error *err)
{
	return TIMED(
	    s->ops->rollout_watch(s->be, id, healthy_wave, all, ret, err));
}

int srv_store_rollout_apply(struct srv_store *s, const char *id,
			    const struct srv_rollout_change *c, size_t n,
			    int64_t now, size_t *ret_applied,
			    struct fl_error *err)
{
	return TIMED(
	    s->ops->rollout_apply(s->be, id, c, n, now, ret_applied, err));
}

int srv_store_rollout_command(struct srv_store *s, const char *id,
			      struct srv_rollout_cmd *cmds, size_t n,
			      int64_t now, int64_t clock, struct fl_error *err)
{
	return TIMED(
	    s->ops->rollout_command(s->be, id, cmds, n, now, clock, err));
}

int srv_store_rollout_sent(struct srv_store *s, const char *id,
			   const char *const *devices, size_t n, int64_t now,
			   struct fl_error *err)
{
	return TIMED(s->ops->rollout_sent(s->be, id, devices, n, now, err));
}

int srv_store_rollout_step(struct srv_store *s, const char *id,
			   const struct srv_rollout_step *st, int64_t now,
			   struct fl_error *err)
{
	return TIMED(s->ops->rollout_step(s->be, id, st, now, err));
}

int srv_store_shadow_get(struct srv_store *s, const char *id,
			 struct srv_shadow_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->shadow_get(s->be, id, ret, err));
}

int srv_store_shadow_update(struct srv_store *s, const char *id,
			    const struct srv_shadow_write *w,
			    struct srv_shadow_row *ret, struct fl_error *err)
{
	return TIMED(s->ops->shadow_update(s->be, id, w, ret, err));
}

void srv_store_telemetry_window(struct srv_store *s,
				const struct srv_telemetry_window *w)
{
	s->ops->telemetry_window(s->be, w);
}

int srv_store_telemetry_get(struct srv_store *s,
			    const struct srv_telemetry_query *q,
			    struct srv_telemetry_list *ret,
			    struct fl_error *err)
{
	return TIMED(s->ops->telemetry_get(s->be, q, ret, err));
}

int srv_store_fleet_counts(struct srv_store *s, struct srv_fleet_counts *ret,
			   struct fl_error *err)
{
	return TIMED(s->ops->fleet_counts(s->be, ret, err));
}
