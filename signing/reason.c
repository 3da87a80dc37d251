/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "reason.h"
#include "util.h"

static const char *const reason_names[FSIG_R_COUNT] = {
    [FSIG_R_NONE] = "ok",
    [FSIG_R_NOT_BUNDLE] = "not a bundle",
    [FSIG_R_TRUNCATED] = "truncated bundle",
    [FSIG_R_BAD_NAME] = "bad entry name",
    [FSIG_R_ENTRY_TYPE] = "not a regular file",
    [FSIG_R_DUPLICATE] = "duplicate entry",
    [FSIG_R_ORDER] = "entry out of order",
    [FSIG_R_EXTRA] = "unlisted entry",
    [FSIG_R_TOO_LARGE] = "entry over size limit",
    [FSIG_R_MALFORMED] = "malformed metadata",
    [FSIG_R_BAD_SIGNATURE] = "bad signature",
    [FSIG_R_UNKNOWN_KEY] = "unknown key",
    [FSIG_R_THRESHOLD] = "too few signatures",
    [FSIG_R_HARDWARE] = "wrong hardware",
    [FSIG_R_SECURITY_VERSION] = "security version below floor",
    [FSIG_R_EXPIRED] = "bundle expired",
    [FSIG_R_ROOT_EXPIRED] = "trust root expired",
    [FSIG_R_ROOT_VERSION] = "bad root version",
    [FSIG_R_PAYLOAD_SIZE] = "payload size mismatch",
    [FSIG_R_PAYLOAD_HASH] = "payload hash mismatch",
    [FSIG_R_DECOMPRESS] = "corrupt compressed payload",
};

const char *fsig_reason_name(enum fsig_reason r)
{
	if ((unsigned)r >= FSIG_R_COUNT || !reason_names[r])
		return "rejected";
	return reason_names[r];
}

int fsig_reject(struct fl_error *err, enum fsig_reason *ret_reason,
		enum fsig_reason reason, const char *fmt, ...)
{
	char detail[FL_ERR_MSG_MAX];
	va_list ap;

	if (ret_reason && *ret_reason == FSIG_R_NONE)
		*ret_reason = reason;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return fl_fail(err, FL_EVERIFY, "%s: %s", fsig_reason_name(reason),
		       detail);
}
