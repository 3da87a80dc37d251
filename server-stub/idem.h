/* SPDX-License-Identifier: MIT */
#ifndef SRV_IDEM_H
#define SRV_IDEM_H

#include <stdbool.h>

#include "httpd.h"

/*
 * Retry-safe requests: the Idempotency-Key header
 * (draft-ietf-httpapi-idempotency-key-header) on a request that changes
 * state.  The first request with a key runs and its answer is kept for
 * SRV_IDEM_TTL in the store, so a retry (on this replica or another)
 * gets that answer again, with `Idempotent-Replayed: true`, instead of
 * doing the work twice.  A retry while the first is still running gets
 * 409 in_progress (Retry-After: 1); the same key on a different request
 * 422 key_reused.
 *
 * Keys belong to their sender: the row is found by the SHA-256 of the
 * principal and the key, and the answer (which may hold a new token's
 * secret) is sealed with AES-256-GCM under a key derived from the
 * Idempotency-Key, which the store never sees.  Anonymous requests and
 * streamed uploads (content-addressed, idempotent by themselves) ignore
 * the header.  docs/api.md ("Retries").
 */
#define SRV_IDEM_TTL (24 * 3600)	 /* s an answer is kept */
#define SRV_IDEM_ANSWER_MAX (256 * 1024) /* bytes of answer kept */

/* Before the handler: claim @r's key, or answer @r from the store
 * (true: replied).  No key: false, nothing done. */
bool srv_idem_begin(struct srv_req *r);

/* A JSON reply @text is made for @r: the answer to keep. */
void srv_idem_keep(struct srv_req *r, const char *text);

/* The request is over: its status and answer kept, or its claim dropped
 * when it did not take effect (no reply, 503).  Once per request. */
void srv_idem_end(struct srv_req *r);

#endif
