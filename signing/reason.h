/* SPDX-License-Identifier: MIT */
#ifndef FSIG_REASON_H
#define FSIG_REASON_H

#include "err.h"

/*
 * Why a bundle or a root was rejected.  Every rejection fails with
 * FL_EVERIFY (fleetctl exit 6); the reason tells callers (the agent's job
 * report, tests) which check failed without parsing message text, and
 * the message in struct fl_error starts with fsig_reason_name().
 */
enum fsig_reason {
	FSIG_R_NONE = 0,
	FSIG_R_NOT_BUNDLE,	 /* not a readable uncompressed tar */
	FSIG_R_TRUNCATED,	 /* archive ends early or mid-entry */
	FSIG_R_BAD_NAME,	 /* absolute, "..", or otherwise bad name */
	FSIG_R_ENTRY_TYPE,	 /* symlink, hardlink, device, dir, sparse */
	FSIG_R_DUPLICATE,	 /* an entry name seen twice */
	FSIG_R_ORDER,		 /* a known entry in the wrong place */
	FSIG_R_EXTRA,		 /* an entry the manifest does not list */
	FSIG_R_TOO_LARGE,	 /* manifest or signature file over cap */
	FSIG_R_MALFORMED,	 /* manifest or signature file unparsable */
	FSIG_R_BAD_SIGNATURE,	 /* a trusted key's signature is wrong */
	FSIG_R_UNKNOWN_KEY,	 /* signed only by keys the root lacks */
	FSIG_R_THRESHOLD,	 /* fewer valid signatures than required */
	FSIG_R_HARDWARE,	 /* hardware not listed in the manifest */
	FSIG_R_SECURITY_VERSION, /* security_version below the floor */
	FSIG_R_EXPIRED,		 /* bundle past its expiry */
	FSIG_R_ROOT_EXPIRED,	 /* newest trust root past its expiry */
	FSIG_R_ROOT_VERSION,	 /* root chain not strictly +1 */
	FSIG_R_PAYLOAD_SIZE,	 /* entry size differs from the manifest */
	FSIG_R_PAYLOAD_HASH,	 /* payload SHA-256 differs */
	FSIG_R_DECOMPRESS,	 /* compressed payload is corrupt */
	FSIG_R_COUNT
};

/* Short lowercase name ("payload hash mismatch"); never NULL. */
const char *fsig_reason_name(enum fsig_reason r);

/*
 * Record a rejection: stores @reason in *ret_reason (if non-NULL and not
 * already set) and fails with FL_EVERIFY, the message being
 * "<reason name>: <formatted detail>".
 */
int fsig_reject(struct fl_error *err, enum fsig_reason *ret_reason,
		enum fsig_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
