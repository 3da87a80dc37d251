/* SPDX-License-Identifier: MIT */
#ifndef AGENT_EVQ_H
#define AGENT_EVQ_H

/*
 * Outgoing job events (issue 17, docs/protocol.md "job events"): what
 * the agent owes fleetd on fleet/ID/events beyond one publish.
 *
 * - Progress events (a "job" and a non-final state) are coalesced:
 *   while one is not handed to MQTT yet (offline, or too many messages
 *   in flight) a newer one of the same job replaces it.  Its seq is
 *   taken only when it is sent (the sink does that).
 * - Final job events (a "job" and a final state) carry their seq from
 *   the start and stay here, persisted in STATE_DIR/unconfirmed.json,
 *   until fleetd's "ack" names their job and seq.  Until then the very
 *   same event is published again at each connect and on a backoff
 *   with jitter while connected.  A final event drops the pending
 *   progress of its job and replaces an older unconfirmed final of it.
 *
 * Pure bookkeeping: time comes in as @now_ms and sending goes through
 * struct agent_evq_sink, so the rules are tested without a broker.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define AGENT_EVQ_FILE "unconfirmed.json"
#define AGENT_EVQ_FINALS_MAX 16 /* unconfirmed final events kept */
#define AGENT_EVQ_JOBS_MAX 4	/* jobs with a pending progress event */
#define AGENT_EVQ_SENT_MAX 32	/* sent progress events kept */
#define AGENT_EVQ_REPAIRS_MAX 3 /* "missing" rounds per final event */
#define AGENT_EVQ_RETRY_MAX_MS (5 * 60 * 1000) /* backoff cap */

struct agent_evq;

/* True for "succeeded", "failed", "rolled-back", "cancelled", "expired". */
bool agent_evq_state_final(const char *state);

/*
 * Open the queue persisted at @path (missing: empty).  Re-publishing
 * waits @retry_min_ms (1 s .. AGENT_EVQ_RETRY_MAX_MS, else FL_EINVAL)
 * doubling up to AGENT_EVQ_RETRY_MAX_MS, with jitter.  Returns 0,
 * FL_EINVAL, FL_EPARSE or FL_ELIMIT (a corrupt or oversized file: the
 * caller may move it aside and open again), FL_EIO.
 */
int agent_evq_open(const char *path, int64_t retry_min_ms,
		   struct agent_evq **ret, struct fl_error *err);

/* Free (the file stays); NULL is fine. */
void agent_evq_free(struct agent_evq *q);

/*
 * Queue progress event @ev of job @job (copied; without "seq"): it
 * replaces the pending one of that job.  When AGENT_EVQ_JOBS_MAX other
 * jobs have one pending, the oldest of those is dropped.
 */
void agent_evq_progress(struct agent_evq *q, const char *job, const json_t *ev);

/*
 * Keep final event @ev (copied; its "seq" set) of job @job until it is
 * acknowledged, and persist; it is due for publishing now.  The copy
 * gets "history": the seqs of @job's sent progress events kept, oldest
 * first (none: no "history").  Drops the
 * pending progress and any older unconfirmed final of @job; when full,
 * the oldest unconfirmed final is forgotten.  Returns 0, FL_ELIMIT
 * (serialised over AGENT_EVENT_MAX: not kept), FL_EIO (not persisted,
 * kept in memory).
 */
int agent_evq_final(struct agent_evq *q, const char *job, const json_t *ev,
		    struct fl_error *err);

/*
 * fleetd's ack for (@job, @seq), with the @n_missing seqs of its
 * history fleetd has not stored.  When none of those is kept here, or
 * after AGENT_EVQ_REPAIRS_MAX rounds: forget the final and @job's sent
 * progress, and persist (*@ret_resent 0).  Else those progress events
 * are due again, the final right after them (*@ret_resent: how many).
 * Returns 0, FL_ENOTFOUND (no unconfirmed final event has that job and
 * seq: nothing changes), FL_EIO (forgotten in memory only).
 */
int agent_evq_ack(struct agent_evq *q, const char *job, uint64_t seq,
		  const uint64_t *missing, size_t n_missing, size_t *ret_resent,
		  struct fl_error *err);

/* A new connection: every unconfirmed final is due now, backoff reset. */
void agent_evq_on_connect(struct agent_evq *q);

struct agent_evq_sink {
	void *user;
	/* Take a seq for @ev, set it and publish; 0, or an error code
	 * (the event stays pending). */
	int (*send_progress)(void *user, json_t *ev);
	/* Publish a kept event (a final, or a sent progress event fleetd
	 * misses) as it is; @again: sent before by this process. */
	void (*send_final)(void *user, const json_t *ev, bool again);
};

/*
 * Hand at most @room events to @s: sent progress fleetd misses first,
 * then due unconfirmed finals (then due again after the next backoff
 * delay), then pending progress, oldest first (each kept as sent, and
 * persisted).  @room is 0 while offline.
 */
void agent_evq_flush(struct agent_evq *q, int64_t now_ms, unsigned room,
		     const struct agent_evq_sink *s);

/* Counts, for status and tests. */
size_t agent_evq_unconfirmed(const struct agent_evq *q);
size_t agent_evq_pending(const struct agent_evq *q);
size_t agent_evq_sent(const struct agent_evq *q);

/* The earliest time a final is due again (INT64_MAX when none). */
int64_t agent_evq_next_due(const struct agent_evq *q);

#endif
