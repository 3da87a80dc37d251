/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "err.h"
#include "util.h"

static void set_msg(struct fl_error *err, int code, const char *suffix,
		    const char *fmt, va_list ap)
{
	size_t n;

	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	n = strlen(err->msg);
	if (suffix && n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", suffix);
}

int fl_fail(struct fl_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code)
		return code;
	va_start(ap, fmt);
	set_msg(err, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int fl_fail_errno(struct fl_error *err, int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!err || err->code)
		return code;
	va_start(ap, fmt);
	set_msg(err, code, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved; /* the caller may still look at it */
	return code;
}

/*
 * OpenSSL keeps a per-thread queue of errors; the last one pushed is
 * usually the most specific.  The queue is always cleared so a later
 * failure does not report a stale reason.
 */
int fl_fail_ssl(struct fl_error *err, int code, const char *fmt, ...)
{
	char reason[256] = "unknown OpenSSL error";
	unsigned long e = ERR_peek_last_error();
	va_list ap;

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	if (!err || err->code)
		return code;
	va_start(ap, fmt);
	set_msg(err, code, reason, fmt, ap);
	va_end(ap);
	return code;
}

void fl_error_prefix(struct fl_error *err, const char *fmt, ...)
{
	char prefix[FL_ERR_MSG_MAX], old[FL_ERR_MSG_MAX];
	va_list ap;

	if (!err || !err->code)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	fl_strlcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

void fl_error_clear(struct fl_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

/*
 * Every code once.  fleetctl's EXIT STATUS (man/fleetctl.1) is checked
 * against exit_text by tests/unit/test_err.c.
 */
static const struct fl_err_info codes[] = {
	{FL_OK, "ok", 0, 200, "success"},
	{FL_ERR, "error", 1, 500, "error"},
	{FL_EUSAGE, "usage", 2, 400, "usage error"},
	{FL_ENOTFOUND, "not found", 3, 404, "not found"},
	{FL_EDENIED, "denied", 4, 403, "denied"},
	{FL_ECONFLICT, "conflict", 5, 409, "conflict"},
	{FL_EVERIFY, "verification failed", 6, 422, "verification failed"},
	{FL_ETIMEOUT, "timeout", 7, 504, "timeout"},
	{FL_EUNREACH, "unreachable", 8, 500, "server unreachable"},
	{FL_EIO, "i/o error", 1, 500, NULL},
	{FL_EPARSE, "malformed input", 1, 400, NULL},
	{FL_ELIMIT, "over limit", 1, 413, NULL},
	{FL_ENOMEM, "out of memory", 1, 500, NULL},
	{FL_EINVAL, "invalid argument", 1, 400, NULL},
};

/*
 * The HTTP error answers of the API (fleetd(8) API): status, error code,
 * and the code a client turns it into; by_status when the status alone,
 * without an error code, says as much (a proxy's 422 does not).  The
 * first row of a status is the answer fleetd gives for it (fl_err_http).
 */
static const struct {
	int status;
	const char *api;
	int code;
	bool by_status;
} answers[] = {
	{400, "bad_request", FL_ERR, false},
	{401, "unauthorized", FL_EDENIED, true},
	{403, "forbidden", FL_EDENIED, true},
	{404, "not_found", FL_ENOTFOUND, true},
	{409, "conflict", FL_ECONFLICT, true},
	/* a diag request to a device that is not online: it would only
	 * wait out its timeout, so the client exits as for one (issue 12) */
	{409, "offline", FL_ETIMEOUT, false},
	/* Idempotency-Key (fleetd's idem.h): the first request with the key
	 * still running */
	{409, "in_progress", FL_ECONFLICT, false},
	{413, "too_large", FL_ELIMIT, true},
	{422, "verification_failed", FL_EVERIFY, false},
	/* Idempotency-Key on another request (after the status' own row) */
	{422, "key_reused", FL_ECONFLICT, false},
	{429, "too_many_requests", FL_ERR, false},
	{500, "internal", FL_ERR, false},
	{504, "timeout", FL_ETIMEOUT, true},
};

static const struct fl_err_info *find(int code)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(codes); i++)
		if (codes[i].code == code)
			return &codes[i];
	return NULL;
}

const struct fl_err_info *fl_err_table(size_t *ret_n)
{
	*ret_n = FL_ARRAY_SIZE(codes);
	return codes;
}

int fl_exit_code(int code)
{
	const struct fl_err_info *e = find(code);

	return e ? e->exit : 1;
}

const char *fl_err_name(int code)
{
	const struct fl_err_info *e = find(code);

	return e ? e->name : "error";
}

int fl_err_http(int code, const char **ret_api)
{
	const struct fl_err_info *e = find(code);
	int status = e && e->http_status >= 400 ? e->http_status : 500;

	for (size_t i = 0; ret_api && i < FL_ARRAY_SIZE(answers); i++)
		if (answers[i].status == status) {
			*ret_api = answers[i].api;
			break;
		}
	return status;
}

int fl_err_from_http(long status, const char *api)
{
	for (size_t i = 0; api && i < FL_ARRAY_SIZE(answers); i++)
		if (strcmp(api, answers[i].api) == 0)
			return answers[i].code;
	for (size_t i = 0; i < FL_ARRAY_SIZE(answers); i++)
		if (answers[i].status == status && answers[i].by_status)
			return answers[i].code;
	return FL_ERR;
}
