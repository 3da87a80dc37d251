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

int fl_exit_code(int code)
{
	if (code >= 0 && code <= FL_EUNREACH)
		return code;
	return 1;
}

const char *fl_err_name(int code)
{
	static const char *const names[] = {
		[FL_OK] = "ok",
		[FL_ERR] = "error",
		[FL_EUSAGE] = "usage",
		[FL_ENOTFOUND] = "not found",
		[FL_EDENIED] = "denied",
		[FL_ECONFLICT] = "conflict",
		[FL_EVERIFY] = "verification failed",
		[FL_ETIMEOUT] = "timeout",
		[FL_EUNREACH] = "unreachable",
		[FL_EIO] = "i/o error",
		[FL_EPARSE] = "malformed input",
		[FL_ELIMIT] = "over limit",
		[FL_ENOMEM] = "out of memory",
		[FL_EINVAL] = "invalid argument",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) ||
	    !names[code])
		return "error";
	return names[code];
}
