/* SPDX-License-Identifier: MIT */
/*
 * libpq, loaded on first use (common/lazylib.h): the functions Fleet
 * calls, each forwarding to the loaded library.  Debian's libpq brings
 * Kerberos, LDAP and SASL; a fleetd that forwards nothing to PostgreSQL
 * never maps them.
 */
#include <libpq-fe.h>

#include "lazylib.h"
#include "pq.h"

static struct fl_lazylib libpq =
    FL_LAZYLIB_INIT(FL_SONAME_LIBPQ, FL_PACKAGE_LIBPQ);

int fl_pq_load(struct fl_error *err)
{
	return fl_lazylib_load(&libpq, err) ? FL_ENOTFOUND : 0;
}

FL_LAZY(libpq, PGconn *, PQconnectdbParams,
	(const char *const *keywords, const char *const *values,
	 int expand_dbname),
	(keywords, values, expand_dbname))
FL_LAZY(libpq, ConnStatusType, PQstatus, (const PGconn *conn), (conn))
FL_LAZY(libpq, char *, PQerrorMessage, (const PGconn *conn), (conn))
FL_LAZY(libpq, void, PQfinish, (PGconn * conn), (conn))
FL_LAZY(libpq, PGresult *, PQexec, (PGconn * conn, const char *query),
	(conn, query))
FL_LAZY(libpq, ExecStatusType, PQresultStatus, (const PGresult *res), (res))
FL_LAZY(libpq, char *, PQresultErrorMessage, (const PGresult *res), (res))
FL_LAZY(libpq, char *, PQresultErrorField, (const PGresult *res, int code),
	(res, code))
FL_LAZY(libpq, void, PQclear, (PGresult * res), (res))
FL_LAZY(libpq, int, PQntuples, (const PGresult *res), (res))
FL_LAZY(libpq, char *, PQgetvalue,
	(const PGresult *res, int tup_num, int field_num),
	(res, tup_num, field_num))
FL_LAZY(libpq, PQconninfoOption *, PQconninfoParse,
	(const char *conninfo, char **errmsg), (conninfo, errmsg))
FL_LAZY(libpq, void, PQconninfoFree, (PQconninfoOption * opts), (opts))
FL_LAZY(libpq, void, PQfreemem, (void *ptr), (ptr))
FL_LAZY(libpq, int, PQputCopyData,
	(PGconn * conn, const char *buffer, int nbytes), (conn, buffer, nbytes))
FL_LAZY(libpq, int, PQputCopyEnd, (PGconn * conn, const char *errormsg),
	(conn, errormsg))
FL_LAZY(libpq, PGresult *, PQgetResult, (PGconn * conn), (conn))
FL_LAZY(libpq, PQnoticeProcessor, PQsetNoticeProcessor,
	(PGconn * conn, PQnoticeProcessor proc, void *arg), (conn, proc, arg))
FL_LAZY(libpq, PGresult *, PQexecParams,
	(PGconn * conn, const char *command, int nParams, const Oid *paramTypes,
	 const char *const *paramValues, const int *paramLengths,
	 const int *paramFormats, int resultFormat),
	(conn, command, nParams, paramTypes, paramValues, paramLengths,
	 paramFormats, resultFormat))
FL_LAZY(libpq, PGresult *, PQprepare,
	(PGconn * conn, const char *stmtName, const char *query, int nParams,
	 const Oid *paramTypes),
	(conn, stmtName, query, nParams, paramTypes))
FL_LAZY(libpq, PGresult *, PQexecPrepared,
	(PGconn * conn, const char *stmtName, int nParams,
	 const char *const *paramValues, const int *paramLengths,
	 const int *paramFormats, int resultFormat),
	(conn, stmtName, nParams, paramValues, paramLengths, paramFormats,
	 resultFormat))
FL_LAZY(libpq, char *, PQcmdTuples, (PGresult * res), (res))
FL_LAZY(libpq, int, PQgetisnull,
	(const PGresult *res, int tup_num, int field_num),
	(res, tup_num, field_num))
FL_LAZY(libpq, int, PQnfields, (const PGresult *res), (res))
FL_LAZY(libpq, void, PQreset, (PGconn * conn), (conn))
