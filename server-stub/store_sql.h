/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_SQL_H
#define SRV_STORE_SQL_H

/*
 * Internal to the SQL backends: the handle, the helpers the ops
 * (store_sql_*.c, written once for every database) run their statements
 * with, the drivers under those helpers (store_sqlite_drv.c,
 * store_pg_drv.c), and the functions the ops tables (store_sql.c) point
 * at.  Not for use outside them.
 *
 * The ops write SQL that SQLite and PostgreSQL both accept, with `?`
 * (or `?N`) parameters; a statement the two must spell differently
 * picks its text with DB_DIALECT in the op, in one place.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store.h"

enum db_dialect { DB_SQLITE, DB_PG };

/* A result row handed to a db_query_rows callback; read its columns with
 * db_col_*.  Valid only during the callback. */
struct db_row {
	const struct db_driver *drv;
	void *res; /* the driver's statement or result */
	int i;	   /* the row's index in @res (drivers that need one) */
};

struct srv_store_be;

/* A parameter collected at run time (struct db_args): type 's' (text,
 * NULL for SQL NULL), 'i' (an integer) or 'n' (an integer, NULL when
 * negative). */
struct db_arg {
	char type;
	const char *s;
	int64_t i;
};

/* A database driver: connection, statements, result columns. */
struct db_driver {
	const char *name;
	enum db_dialect dialect;
	/* Connect to @where (a path or a URL) and bring its schema up to
	 * date (s->conn); no lock held yet. */
	int (*open)(struct srv_store_be *s, const char *where,
		    struct fl_error *err);
	void (*close)(struct srv_store_be *s);
	int (*schema_version)(struct srv_store_be *s);
	int (*run)(struct srv_store_be *s, int *ret_changes,
		   struct fl_error *err, const char *sql, const char *types,
		   va_list ap);
	int (*rows)(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		    void *ctx, struct fl_error *err, const char *sql,
		    const char *types, va_list ap);
	/* Run @sql with @n parameters as text of no stated type (the
	 * database converts each to its column's), NULL for SQL NULL. */
	int (*run_text)(struct srv_store_be *s, const char *sql, int n,
			const char *const *vals, struct fl_error *err);
	/* Run @sql with the @n parameters @args: each row to @row (NULL
	 * when it returns none), *@ret_changes (may be NULL) the rows it
	 * changed. */
	int (*rows_args)(struct srv_store_be *s,
			 int (*row)(struct db_row *, void *), void *ctx,
			 int *ret_changes, struct fl_error *err,
			 const char *sql, size_t n, const struct db_arg *args);
	const char *begin_sql; /* a write transaction's BEGIN */
	const char *(*col_text)(struct db_row *r, int i);
	int64_t (*col_int)(struct db_row *r, int i);
	double (*col_double)(struct db_row *r, int i);
	bool (*col_null)(struct db_row *r, int i);
	int (*col_count)(struct db_row *r);
};

extern const struct db_driver db_sqlite_driver, db_pg_driver;

struct srv_store_be {
	const struct db_driver *drv;
	void *conn; /* the driver's */
	pthread_mutex_t lock;
	struct srv_telemetry_window tw; /* under @lock */
	int64_t tw_swept_ms;		/* the last sweep of silent devices */
	/* the lease this handle took last (sql_lease_take): the engine's
	 * decisions commit only while it still holds it (fencing) */
	char *fence_name, *fence_holder;
};

/* Open a store on @drv (store_sql.c). */
int sql_open(const struct db_driver *drv, const char *where,
	     struct srv_store_be **ret, struct fl_error *err);

/* @sqlite or @pg: the text a statement has in @s's dialect. */
#define DB_DIALECT(s, sqlite, pg) ((s)->drv->dialect == DB_PG ? (pg) : (sqlite))

/*
 * Bind types for the helpers below, one letter per argument:
 *   s  const char * (NULL binds SQL NULL)
 *   i  int64_t
 *   d  int
 *   n  int64_t, negative binds SQL NULL
 *   f  double
 */

/* Run a statement that returns no rows; *ret_changes (may be NULL) gets
 * the number of rows changed.  Caller holds the lock. */
int db_run(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	   const char *sql, const char *types, ...);

/* The first row of a query: each column as an integer (0 for NULL) and
 * as owned text (NULL for NULL), up to DB_FIRST_MAX columns. */
#define DB_FIRST_MAX 6

struct db_first {
	bool found;
	int64_t i[DB_FIRST_MAX];
	char *t[DB_FIRST_MAX];
};
void db_first_free(struct db_first *r);

/* Run a query and keep its first row in *ret (freed with db_first_free
 * also on failure): FL_ENOTFOUND when there is none.  db_lquery_first
 * takes the lock; db_query_first: the caller holds it. */
int db_query_first(struct srv_store_be *s, struct db_first *ret,
		   struct fl_error *err, const char *sql, const char *types,
		   ...);
int db_lquery_first(struct srv_store_be *s, struct db_first *ret,
		    struct fl_error *err, const char *sql, const char *types,
		    ...);

/* As db_run, taking the store's lock around the one statement. */
int db_lrun(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	    const char *sql, const char *types, ...);

/* BEGIN (a write transaction); and its end: COMMIT when @rc is 0, else
 * ROLLBACK. db_end returns @rc or the commit's error.  Caller holds the lock.
 */
int db_begin(struct srv_store_be *s, struct fl_error *err);
int db_end(struct srv_store_be *s, int rc, struct fl_error *err);

/*
 * Run a query and hand each result row to @row (columns by index, read
 * with db_col_*); a non-zero return from @row stops and is returned.
 * db_query_rows: caller holds the lock; db_lquery_rows takes it.
 */
int db_query_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, ...);
int db_lquery_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		   void *ctx, struct fl_error *err, const char *sql,
		   const char *types, ...);

/* Column @i of @r as an owned string (NULL for SQL NULL), borrowed text
 * (NULL for NULL; valid during the callback), an integer (0 for NULL; a
 * boolean reads 0 or 1), an integer with @def for NULL, a double; whether
 * it is NULL; the number of columns. */
char *db_col_str(struct db_row *r, int i);
const char *db_col_text(struct db_row *r, int i);
int64_t db_col_int(struct db_row *r, int i);
int64_t db_col_int_or(struct db_row *r, int i, int64_t def);
double db_col_double(struct db_row *r, int i);
bool db_col_null(struct db_row *r, int i);
int db_col_count(struct db_row *r);

/*
 * Statements whose number of parameters follows the data: a VALUES list
 * of @rows rows of @cols parameters each (`?`), between @head and
 * @tail, as a new string.  Its rows read as a table whose columns are
 * named column1, column2... in both databases.
 */
char *db_values_sql(const char *head, int cols, size_t rows, const char *tail);

/* Their parameters, collected with db_args_str/int (in the order of the
 * statement's `?`), run with db_args_rows (row NULL: a statement that
 * returns none) and freed with db_args_free.  Text is borrowed: it must
 * outlive the run.  Caller holds the lock. */
struct db_args {
	struct db_arg *v;
	size_t n;
};
void db_args_str(struct db_args *a, const char *s);
void db_args_int(struct db_args *a, char type, int64_t i);
int db_args_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		 void *ctx, int *ret_changes, struct fl_error *err,
		 const char *sql, struct db_args *a);
void db_args_free(struct db_args *a);

/* Append a copy of @str to @l. */
void db_strv_add(struct srv_strv *l, const char *str);

/* A db_query_rows callback: appends column 0 (text) to the srv_strv
 * @ctx. */
int db_row_strv(struct db_row *st, void *ctx);

/* Grow array @v of @n elements of @size to hold one more, zeroed (the
 * capacity doubles at powers of two). */
void *db_grow(void *v, size_t n, size_t size);

/* A new zeroed element at the end of typed list @l ({n, v}). */
#define DB_PUSH(l)                                                             \
	((l)->v = db_grow((l)->v, (l)->n, sizeof(*(l)->v)), &(l)->v[(l)->n++])

/* End of a list query: on success hand @l to *@ret, else free it with
 * @list_free.  Evaluates to @rc. */
#define DB_GIVE(rc, l, ret, list_free)                                         \
	((rc) ? list_free(&(l)) : (void)(*(ret) = (l)), (rc))

/* End of a query for one row: on success move the first row of @l to
 * *@ret; free the rest of @l.  Evaluates to @rc. */
#define DB_GIVE_FIRST(rc, l, ret, list_free)                                   \
	((rc) ? (void)0                                                        \
	      : (void)(*(ret) = (l).v[0], (l).v[0] = (l).v[--(l).n]),          \
	 list_free(&(l)), (rc))

/* The backend's functions, as in store.h with the backend's handle. */
void sql_close(struct srv_store_be *s);
int sql_schema_version(struct srv_store_be *s);
int sql_token_add(struct srv_store_be *s, const struct srv_token *t,
		  const char *hash_hex, const char *group,
		  const char *created_by, struct fl_error *err);
int sql_token_find(struct srv_store_be *s, const char *hash_hex,
		   struct srv_token *ret, struct fl_error *err);
int sql_token_list(struct srv_store_be *s, struct srv_token_list *ret,
		   struct fl_error *err);
int sql_token_revoke(struct srv_store_be *s, const char *id,
		     struct fl_error *err);
int sql_device_by_cert(struct srv_store_be *s, const char *sha256,
		       struct srv_cert_holder *ret, struct fl_error *err);
int sql_device_principal(struct srv_store_be *s, const char *serial,
			 const char *device, struct fl_error *err);
int sql_audit(struct srv_store_be *s, const char *actor, const char *method,
	      const char *path, int status, const char *remote,
	      const char *detail, struct fl_error *err);
int sql_audit_list(struct srv_store_be *s, int limit,
		   struct srv_audit_list *ret, struct fl_error *err);
int sql_device_enroll(struct srv_store_be *s, const char *id, const char *group,
		      const char *enrolled_by, const char *token_hash,
		      bool allow_existing, const struct srv_cert *cert,
		      struct fl_error *err);
int sql_cert_add(struct srv_store_be *s, const struct srv_reenroll *re,
		 struct srv_strv *ret_superseded, int64_t *ret_retry_after,
		 struct fl_error *err);
int sql_reenroll_check(struct srv_store_be *s, const char *device,
		       const struct srv_reenroll_limits *lim,
		       int64_t *ret_retry_after, struct fl_error *err);
int sql_cert_confirm(struct srv_store_be *s, const char *device,
		     const char *serial, const struct srv_crl_hook *crl,
		     struct srv_strv *ret_revoked, struct fl_error *err);
int sql_cert_get(struct srv_store_be *s, const char *serial,
		 struct srv_cert_row *ret, struct fl_error *err);
int sql_crl_publish(struct srv_store_be *s, const struct srv_crl_hook *crl,
		    struct fl_error *err);
int sql_device_list(struct srv_store_be *s, const struct srv_device_filter *f,
		    struct srv_device_list *ret, struct fl_error *err);
int sql_device_get(struct srv_store_be *s, const char *id,
		   struct srv_device_row *ret, struct fl_error *err);
int sql_device_labels(struct srv_store_be *s, const char *id,
		      const struct srv_label_list *set,
		      const struct srv_strv *remove, struct fl_error *err);
int sql_device_decommission(struct srv_store_be *s, const char *id,
			    const struct srv_crl_hook *crl,
			    struct srv_strv *ret_revoked, struct fl_error *err);
int sql_provision_undo(struct srv_store_be *s, const char *id,
		       const char *serial, struct fl_error *err);
int sql_tech_add(struct srv_store_be *s, const struct srv_cert *cert,
		 struct fl_error *err);
int sql_tech_list(struct srv_store_be *s, struct srv_tech_list *ret,
		  struct fl_error *err);
int sql_tech_revoke(struct srv_store_be *s, const char *cn,
		    const struct srv_crl_hook *crl,
		    struct srv_strv *ret_revoked, struct fl_error *err);
int sql_ingest(struct srv_store_be *s, struct srv_ingest_item *items, size_t n,
	       struct fl_error *err);
int sql_devices_all_offline(struct srv_store_be *s, struct fl_error *err);
int sql_enroll_token_check(struct srv_store_be *s, const char *hash_hex,
			   char ret_id[17], char *ret_group, size_t group_len,
			   struct fl_error *err);
int sql_bundle_add(struct srv_store_be *s, const struct srv_bundle *b,
		   const char *uploaded_by, bool *ret_existed,
		   struct fl_error *err);
int sql_bundle_list(struct srv_store_be *s, struct srv_bundle_list *ret,
		    struct fl_error *err);
int sql_bundle_get(struct srv_store_be *s, const char *ref,
		   struct srv_bundle_row *ret, struct fl_error *err);
int sql_root_add(struct srv_store_be *s, uint64_t version, const char *envelope,
		 int64_t expires, const char *added_by, struct fl_error *err);
int sql_root_list(struct srv_store_be *s, struct srv_root_list *ret,
		  struct fl_error *err);
int sql_root_get(struct srv_store_be *s, uint64_t version, char **ret,
		 struct fl_error *err);
int sql_job_add(struct srv_store_be *s, const struct srv_job *j,
		struct fl_error *err);
int sql_job_command(struct srv_store_be *s, const char *job,
		    const char *command, struct fl_error *err);
int sql_job_fail(struct srv_store_be *s, const char *job, const char *stage,
		 const char *reason, struct fl_error *err);
int sql_job_cancel(struct srv_store_be *s, const char *job, const char *actor,
		   struct fl_error *err);
int sql_jobs_expire(struct srv_store_be *s, int64_t now, int *ret_count,
		    struct fl_error *err);
int sql_job_list(struct srv_store_be *s, const struct srv_job_filter *f,
		 struct srv_job_list *ret, struct fl_error *err);
int sql_job_open(struct srv_store_be *s, const char *device, const char *type,
		 struct srv_job_row *ret, struct fl_error *err);
int sql_job_get(struct srv_store_be *s, const char *id, struct srv_job_row *ret,
		struct fl_error *err);
int sql_rollout_add(struct srv_store_be *s, const struct srv_rollout *r,
		    int64_t now, struct srv_strv *ret_busy,
		    struct fl_error *err);
int sql_rollout_busy(struct srv_store_be *s, const char *const *devices,
		     size_t n, struct srv_strv *ret_busy, struct fl_error *err);
int sql_rollout_get(struct srv_store_be *s, const char *id,
		    struct srv_rollout_row *ret, struct fl_error *err);
int sql_rollout_list(struct srv_store_be *s, bool active, int limit,
		     struct srv_rollout_list *ret, struct fl_error *err);
int sql_rollout_waves(struct srv_store_be *s, const char *id,
		      struct srv_rollout_wave_list *ret, struct fl_error *err);
int sql_rollout_counts(struct srv_store_be *s, const char *id,
		       struct srv_rollout_count_list *ret,
		       struct fl_error *err);
int sql_rollout_devices(struct srv_store_be *s, const char *id, bool failures,
			int limit, struct srv_rollout_device_list *ret,
			struct fl_error *err);
int sql_rollout_events(struct srv_store_be *s, const char *id, int limit,
		       struct srv_rollout_event_list *ret,
		       struct fl_error *err);
int sql_rollout_action(struct srv_store_be *s, const char *id, int action,
		       const char *actor, int64_t now,
		       struct srv_strv *ret_cancelled, struct fl_error *err);
int sql_rollout_candidates(struct srv_store_be *s, const char *group,
			   const char *const *ids, size_t n_ids,
			   struct srv_device_list *ret, struct fl_error *err);
int sql_dash_put(struct srv_store_be *s, const char *id_hash,
		 const char *token_hash, int64_t now, int64_t ttl, int64_t max,
		 struct fl_error *err);
int sql_dash_get(struct srv_store_be *s, const char *id_hash, int64_t now,
		 int64_t ttl, char ret_token_hash[65], struct fl_error *err);
int sql_dash_del(struct srv_store_be *s, const char *id_hash,
		 struct fl_error *err);
int sql_idem_claim(struct srv_store_be *s, const char *id_hash,
		   const char *request_hash, int64_t now, int64_t ttl,
		   struct srv_idem_row *ret, struct fl_error *err);
int sql_idem_answer(struct srv_store_be *s, const char *id_hash, int status,
		    const char *answer, struct fl_error *err);
int sql_idem_drop(struct srv_store_be *s, const char *id_hash,
		  struct fl_error *err);
int sql_upload_add(struct srv_store_be *s, const char *id, const char *device,
		   int64_t now, int max, struct fl_error *err);
int sql_upload_drop(struct srv_store_be *s, const char *id,
		    struct fl_error *err);
int sql_upload_begin(struct srv_store_be *s, const char *id, const char *device,
		     struct fl_error *err);
int sql_upload_finish(struct srv_store_be *s, const char *id, uint64_t size,
		      int64_t now, struct fl_error *err);
int sql_upload_abort(struct srv_store_be *s, const char *id, int64_t now,
		     struct fl_error *err);
int sql_upload_settle(struct srv_store_be *s, const char *id, int state,
		      const char *error, int64_t now, struct fl_error *err);
int sql_upload_get(struct srv_store_be *s, const char *id, const char *device,
		   struct srv_upload_row *ret, struct fl_error *err);
int sql_upload_expire(struct srv_store_be *s, int64_t now, int64_t keep,
		      int64_t stale, struct srv_strv *ret_ids,
		      struct fl_error *err);
int sql_lease_take(struct srv_store_be *s, const char *name, const char *holder,
		   int64_t now, int64_t ttl, char **ret_holder,
		   struct fl_error *err);
int sql_rollout_pending(struct srv_store_be *s, const char *id, int64_t wave,
			int limit, struct srv_strv *ret, struct fl_error *err);
int sql_rollout_watch(struct srv_store_be *s, const char *id,
		      int64_t healthy_wave, bool all,
		      struct srv_rollout_watch_list *ret, struct fl_error *err);
int sql_rollout_apply(struct srv_store_be *s, const char *id,
		      const struct srv_rollout_change *c, size_t n, int64_t now,
		      size_t *ret_applied, struct fl_error *err);
int sql_rollout_command(struct srv_store_be *s, const char *id,
			struct srv_rollout_cmd *cmds, size_t n, int64_t now,
			int64_t clock, struct fl_error *err);
int sql_rollout_sent(struct srv_store_be *s, const char *id,
		     const char *const *devices, size_t n, int64_t now,
		     struct fl_error *err);
int sql_rollout_step(struct srv_store_be *s, const char *id,
		     const struct srv_rollout_step *st, int64_t now,
		     struct fl_error *err);

int sql_fleet_counts(struct srv_store_be *s, struct srv_fleet_counts *ret,
		     struct fl_error *err);

int sql_fleet_counts(struct srv_store_be *s, struct srv_fleet_counts *ret,
		     struct fl_error *err);

/* Copy every row of @src into the empty store @dst (store.h
 * srv_store_copy), in one transaction of @dst; *@ret_rows counts them. */
int sql_copy_from(struct srv_store_be *dst, struct srv_store_be *src,
		  long *ret_rows, struct fl_error *err);

int sql_shadow_get(struct srv_store_be *s, const char *id,
		   struct srv_shadow_row *ret, struct fl_error *err);
int sql_shadow_update(struct srv_store_be *s, const char *id,
		      const struct srv_shadow_write *w,
		      struct srv_shadow_row *ret, struct fl_error *err);
/* A shadow report (SRV_INGEST_SHADOW), in the caller's transaction. */
int db_shadow_report(struct srv_store_be *s, int64_t now,
		     struct srv_ingest_item *it, struct fl_error *err);

void sql_telemetry_window(struct srv_store_be *s,
			  const struct srv_telemetry_window *w);
int sql_telemetry_get(struct srv_store_be *s,
		      const struct srv_telemetry_query *q,
		      struct srv_telemetry_list *ret, struct fl_error *err);
/* A telemetry message (SRV_INGEST_TELEMETRY): its points stored once and
 * its device's window trimmed, in the caller's transaction. */
int db_telemetry(struct srv_store_be *s, int64_t now_ms,
		 struct srv_ingest_item *it, struct fl_error *err);
/* Trim a few silent devices' windows, at most once a minute, in the
 * caller's transaction. */
int db_telemetry_sweep(struct srv_store_be *s, int64_t now_ms,
		       struct fl_error *err);
/* Mark @device's telemetry stream for a restart (it enrolled again), in
 * the caller's transaction. */
int db_telemetry_reenrolled(struct srv_store_be *s, const char *device,
			    struct fl_error *err);

/* FL_ENOTFOUND "no active device" unless @id is an active device, in
 * the caller's transaction. */
int db_device_active(struct srv_store_be *s, const char *id,
		     struct fl_error *err);

/* Insert job @j (state queued, created @now) after the lane check, in
 * the caller's transaction: FL_ECONFLICT "device X is busy with job Y"
 * (*@ret_busy, may be NULL, gets Y; caller frees). */
int db_job_insert(struct srv_store_be *s, const struct srv_job *j, int64_t now,
		  char **ret_busy, struct fl_error *err);

/* One entry of rollout @rollout's decision log (@device may be NULL,
 * @wave -1 for none), in the caller's transaction. */
int db_rollout_event(struct srv_store_be *s, const char *rollout,
		     const char *kind, const char *device, int64_t wave,
		     const char *detail, int64_t now, struct fl_error *err);

/* One audit row, in the caller's transaction. */
int db_audit(struct srv_store_be *s, const char *actor, const char *method,
	     const char *path, int status, int64_t now, struct fl_error *err);

#endif
