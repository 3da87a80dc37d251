/* SPDX-License-Identifier: MIT */
/*
 * The SQL backends' entries in the store's backend table (store_ops.h):
 * one set of ops (store_sql_*.c) on either driver, SQLite or PostgreSQL.
 */
#include <stdlib.h>

#include "store_ops.h"
#include "store_sql.h"
#include "util.h"

int sql_open(const struct db_driver *drv, const char *where,
	     struct srv_store_be **ret, struct fl_error *err)
{
	struct srv_store_be *s = fl_xcalloc(1, sizeof(*s));
	int rc;

	s->drv = drv;
	pthread_mutex_init(&s->lock, NULL);
	s->tw = (struct srv_telemetry_window){
	    SRV_TELEMETRY_KEEP_POINTS, SRV_TELEMETRY_KEEP_HOURS * 3600000LL};
	rc = drv->open(s, where, err);
	if (rc) {
		sql_close(s);
		return rc;
	}
	*ret = s;
	return 0;
}

void sql_close(struct srv_store_be *s)
{
	if (!s)
		return;
	s->drv->close(s);
	pthread_mutex_destroy(&s->lock);
	free(s->fence_name);
	free(s->fence_holder);
	free(s);
}

int sql_schema_version(struct srv_store_be *s)
{
	int v;

	pthread_mutex_lock(&s->lock);
	v = s->drv->schema_version(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static int open_sqlite(const char *path, struct srv_store_be **ret,
		       struct fl_error *err)
{
	return sql_open(&db_sqlite_driver, path, ret, err);
}

static int open_pg(const char *url, struct srv_store_be **ret,
		   struct fl_error *err)
{
	return sql_open(&db_pg_driver, url, ret, err);
}

/* The ops every SQL backend shares (all but open). */
#define SQL_OPS                                                                \
	.close = sql_close, .schema_version = sql_schema_version,              \
	.copy_from = sql_copy_from, .fleet_counts = sql_fleet_counts,          \
	.token_add = sql_token_add, .token_find = sql_token_find,              \
	.token_list = sql_token_list, .token_revoke = sql_token_revoke,        \
	.device_principal = sql_device_principal,                              \
	.device_by_cert = sql_device_by_cert, .audit = sql_audit,              \
	.audit_list = sql_audit_list, .device_enroll = sql_device_enroll,      \
	.cert_add = sql_cert_add, .reenroll_check = sql_reenroll_check,        \
	.cert_confirm = sql_cert_confirm, .cert_get = sql_cert_get,            \
	.crl_publish = sql_crl_publish, .device_list = sql_device_list,        \
	.device_get = sql_device_get, .device_labels = sql_device_labels,      \
	.device_decommission = sql_device_decommission,                        \
	.provision_undo = sql_provision_undo, .tech_add = sql_tech_add,        \
	.tech_list = sql_tech_list, .tech_revoke = sql_tech_revoke,            \
	.ingest = sql_ingest, .devices_all_offline = sql_devices_all_offline,  \
	.enroll_token_check = sql_enroll_token_check,                          \
	.bundle_add = sql_bundle_add, .bundle_list = sql_bundle_list,          \
	.bundle_get = sql_bundle_get, .root_add = sql_root_add,                \
	.root_list = sql_root_list, .root_get = sql_root_get,                  \
	.job_add = sql_job_add, .job_command = sql_job_command,                \
	.job_fail = sql_job_fail, .job_cancel = sql_job_cancel,                \
	.jobs_expire = sql_jobs_expire, .job_list = sql_job_list,              \
	.job_open = sql_job_open, .job_get = sql_job_get,                      \
	.rollout_add = sql_rollout_add, .rollout_busy = sql_rollout_busy,      \
	.rollout_get = sql_rollout_get, .rollout_list = sql_rollout_list,      \
	.rollout_waves = sql_rollout_waves,                                    \
	.rollout_counts = sql_rollout_counts,                                  \
	.rollout_devices = sql_rollout_devices,                                \
	.rollout_events = sql_rollout_events,                                  \
	.rollout_action = sql_rollout_action,                                  \
	.rollout_candidates = sql_rollout_candidates,                          \
	.lease_take = sql_lease_take, .rollout_pending = sql_rollout_pending,  \
	.rollout_watch = sql_rollout_watch,                                    \
	.rollout_apply = sql_rollout_apply,                                    \
	.rollout_command = sql_rollout_command,                                \
	.rollout_sent = sql_rollout_sent, .rollout_step = sql_rollout_step,    \
	.shadow_get = sql_shadow_get, .shadow_update = sql_shadow_update,      \
	.telemetry_window = sql_telemetry_window,                              \
	.telemetry_get = sql_telemetry_get, .dash_put = sql_dash_put,          \
	.dash_get = sql_dash_get, .dash_del = sql_dash_del,                    \
	.idem_claim = sql_idem_claim, .idem_answer = sql_idem_answer,          \
	.idem_drop = sql_idem_drop, .upload_add = sql_upload_add,             \
	.upload_drop = sql_upload_drop, .upload_begin = sql_upload_begin,      \
	.upload_finish = sql_upload_finish, .upload_abort = sql_upload_abort,  \
	.upload_settle = sql_upload_settle, .upload_get = sql_upload_get,      \
	.upload_expire = sql_upload_expire,

const struct srv_store_ops srv_store_sqlite_ops = {
    .name = "sqlite", .open = open_sqlite, SQL_OPS};

const struct srv_store_ops srv_store_pg_ops = {
    .name = "postgresql", .open = open_pg, SQL_OPS};
