/* SPDX-License-Identifier: MIT */
/*
 * The SQL helpers the ops run their statements with (store_sql.h),
 * handing each to the store's driver.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"
#include "util.h"

int db_run(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	   const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = s->drv->run(s, ret_changes, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lrun(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	    const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = s->drv->run(s, ret_changes, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

int db_begin(struct srv_store_be *s, struct fl_error *err)
{
	return db_run(s, NULL, err, s->drv->begin_sql, NULL);
}

int db_end(struct srv_store_be *s, int rc, struct fl_error *err)
{
	if (!rc)
		rc = db_run(s, NULL, err, "COMMIT", NULL);
	if (rc)
		db_run(s, NULL, NULL, "ROLLBACK", NULL);
	return rc;
}

int db_query_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = s->drv->rows(s, row, ctx, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lquery_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		   void *ctx, struct fl_error *err, const char *sql,
		   const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = s->drv->rows(s, row, ctx, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

static int first_row(struct db_row *st, void *ctx)
{
	struct db_first *r = ctx;
	int n = db_col_count(st);

	if (r->found)
		return 0;
	r->found = true;
	for (int i = 0; i < n && i < DB_FIRST_MAX; i++) {
		r->i[i] = db_col_int(st, i);
		r->t[i] = db_col_str(st, i);
	}
	return 0;
}

static int first_v(struct srv_store_be *s, struct db_first *ret,
		   struct fl_error *err, const char *sql, const char *types,
		   va_list ap)
{
	int rc;

	*ret = (struct db_first){0};
	rc = s->drv->rows(s, first_row, ret, err, sql, types, ap);
	if (!rc && !ret->found)
		rc = fl_fail(err, FL_ENOTFOUND, "not found");
	return rc;
}

int db_query_first(struct srv_store_be *s, struct db_first *ret,
		   struct fl_error *err, const char *sql, const char *types,
		   ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = first_v(s, ret, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lquery_first(struct srv_store_be *s, struct db_first *ret,
		    struct fl_error *err, const char *sql, const char *types,
		    ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = first_v(s, ret, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

void db_first_free(struct db_first *r)
{
	for (int i = 0; i < DB_FIRST_MAX; i++)
		free(r->t[i]);
	*r = (struct db_first){0};
}

const char *db_col_text(struct db_row *r, int i)
{
	return r->drv->col_text(r, i);
}

char *db_col_str(struct db_row *r, int i)
{
	const char *t = r->drv->col_text(r, i);

	return t ? fl_xstrdup(t) : NULL;
}

int64_t db_col_int(struct db_row *r, int i)
{
	return r->drv->col_int(r, i);
}

int64_t db_col_int_or(struct db_row *r, int i, int64_t def)
{
	return r->drv->col_null(r, i) ? def : r->drv->col_int(r, i);
}

double db_col_double(struct db_row *r, int i)
{
	return r->drv->col_double(r, i);
}

bool db_col_null(struct db_row *r, int i)
{
	return r->drv->col_null(r, i);
}

int db_col_count(struct db_row *r)
{
	return r->drv->col_count(r);
}

void *db_grow(void *v, size_t n, size_t size)
{
	if (n == 0 || (n & (n - 1)) == 0)
		v = fl_xrealloc(v, (n ? 2 * n : 1) * size);
	memset((char *)v + n * size, 0, size);
	return v;
}

void db_strv_add(struct srv_strv *l, const char *str)
{
	*DB_PUSH(l) = fl_xstrdup(str);
}

int db_row_strv(struct db_row *st, void *ctx)
{
	db_strv_add(ctx, db_col_text(st, 0));
	return 0;
}

char *db_values_sql(const char *head, int cols, size_t rows, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail), rl = 3 * (size_t)cols + 1;
	char *sql = fl_xmalloc(hl + rows * rl + tl + 1), *p = sql + hl;
	char *row = fl_xmalloc(rl + 1);

	/* ",(?, ?, ?)": the first row's comma becomes a space */
	memcpy(row, ",(?", 3);
	for (int c = 1; c < cols; c++)
		memcpy(row + 3 * c, ", ?", 3);
	memcpy(row + rl - 1, ")", 2);
	memcpy(sql, head, hl);
	for (size_t r = 0; r < rows; r++, p += rl)
		memcpy(p, row, rl);
	sql[hl] = ' ';
	memcpy(p, tail, tl + 1);
	free(row);
	return sql;
}

void db_args_str(struct db_args *a, const char *s)
{
	*DB_PUSH(a) = (struct db_arg){.type = 's', .s = s};
}

void db_args_int(struct db_args *a, char type, int64_t i)
{
	*DB_PUSH(a) = (struct db_arg){.type = type, .i = i};
}

int db_args_rows(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		 void *ctx, int *ret_changes, struct fl_error *err,
		 const char *sql, struct db_args *a)
{
	return s->drv->rows_args(s, row, ctx, ret_changes, err, sql, a->n,
				 a->v);
}

void db_args_free(struct db_args *a)
{
	free(a->v);
	*a = (struct db_args){0};
}
