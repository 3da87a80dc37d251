/* SPDX-License-Identifier: MIT */
#ifndef FL_ERR_H
#define FL_ERR_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Error codes.  The values 1..8 are also fleetctl's exit codes
 * (DESIGN §8); the others are finer causes that exit with 1.  What each
 * means outside (exit status, HTTP status) is in fl_err_table.
 */
enum fl_err {
	FL_OK = 0,
	FL_ERR = 1,       /* generic failure */
	FL_EUSAGE = 2,    /* bad command line */
	FL_ENOTFOUND = 3, /* no such object */
	FL_EDENIED = 4,   /* authentication or authorisation refused */
	FL_ECONFLICT = 5, /* state conflict (exists, in use, revoked) */
	FL_EVERIFY = 6,   /* signature, hash or policy verification failed */
	FL_ETIMEOUT = 7,  /* a bounded wait ran out */
	FL_EUNREACH = 8,  /* server or broker unreachable */
	FL_EIO = 10,      /* file or socket I/O */
	FL_EPARSE = 11,   /* malformed input */
	FL_ELIMIT = 12,   /* input over a size or count cap */
	FL_ENOMEM = 13,   /* allocation failed */
	FL_EINVAL = 14,   /* invalid argument value */
};

#define FL_ERR_MSG_MAX 512

/*
 * An error report: the code and the first, most specific message.
 * Zero-initialise before use ({0}).
 */
struct fl_error {
	int code;
	char msg[FL_ERR_MSG_MAX];
};

/*
 * Record a failure in @err (may be NULL) unless one is already recorded,
 * so the innermost message wins.  Returns @code, to be used as
 * `return fl_fail(err, FL_EIO, "cannot open '%s'", path);`.
 */
int fl_fail(struct fl_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As fl_fail, appending ": strerror(errno)" (errno read on entry). */
int fl_fail_errno(struct fl_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As fl_fail, appending the newest OpenSSL error reason, then clearing
 * OpenSSL's error queue. */
int fl_fail_ssl(struct fl_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an already recorded message with context ("loading x: ..."). */
void fl_error_prefix(struct fl_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forget a recorded error. */
void fl_error_clear(struct fl_error *err);

/*
 * The one table of what a code means to the outside (issue 9 item 3):
 * its name, the exit status the programs end with (fleetctl(1) EXIT
 * STATUS lists every one), and the HTTP status fleetd answers with.
 */
struct fl_err_info {
	int code;
	const char *name;      /* fl_err_name */
	int exit;              /* fl_exit_code */
	int http_status;       /* fleetd's answer (fl_err_http) */
	const char *exit_text; /* codes that are their own exit status:
				* how fleetctl(1) EXIT STATUS starts to
				* describe it; NULL for the others */
};

/* The table, one row per code in increasing order; *@ret_n rows. */
const struct fl_err_info *fl_err_table(size_t *ret_n);

/* The exit status for a code: 0..8 as is, anything else 1. */
int fl_exit_code(int code);

/* A short lowercase name for a code ("not found", "denied"). */
const char *fl_err_name(int code);

/*
 * The HTTP status fleetd answers a failure with @code (500 for codes
 * without one), and the API error code for it in *@ret_api ("not_found";
 * @ret_api may be NULL).
 */
int fl_err_http(int code, const char **ret_api);

/*
 * What a client makes of an HTTP error answer: the code for the API
 * error code @api (may be NULL), else for @status alone where the status
 * says enough (401, 403, 404, 409, 413, 504), else FL_ERR.
 */
int fl_err_from_http(long status, const char *api);

#endif
