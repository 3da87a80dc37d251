/* SPDX-License-Identifier: MIT */
#ifndef AGENT_OUTBOX_H
#define AGENT_OUTBOX_H

/*
 * The offline-first outbox (issue 13, docs/telemetry.md "The outbox"): a
 * bounded store-and-forward queue of outgoing messages in SQLite
 * (STATE_DIR/outbox.db, WAL, synchronous=FULL), so what the agent
 * produces while the broker is away survives kill -9 and a power cut and
 * goes out in order, QoS 1, once the broker is back.
 *
 * - Every message gets the next seq of the outbox's own counter (kept in
 *   the db: never reused, also after its rows are gone).
 * - Bounds: max_messages, max_bytes (bodies) and max_age.  Past one, the
 *   oldest TELEMETRY message goes first (one not in flight when there is
 *   one); an EVENT message is never dropped: when only events are left, a
 *   new telemetry message is refused and an event is kept over the bound.
 *   The points of what was dropped or refused are counted and stored
 *   with the next telemetry message queued (its "dropped"; a message
 *   dropped in turn hands its own count on), so a resend says the same.
 * - Delivery: agent_outbox_next gives the oldest message not yet sent on
 *   this connection (at most AGENT_OUTBOX_WINDOW in flight); the owner
 *   publishes it and names its MQTT mid with agent_outbox_sent; the row
 *   is deleted only when that mid's PUBACK arrives (agent_outbox_acked).
 *   agent_outbox_rewind (a new connection) starts again from the oldest.
 *
 * Time comes in as wall-clock milliseconds, so the rules are tested
 * without a clock.  Not thread-safe: one owner thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGENT_OUTBOX_FILE "outbox.db"
#define AGENT_OUTBOX_BODY_MAX (60 * 1024) /* bytes of one message body */
#define AGENT_OUTBOX_WEIGHT_MAX 64	  /* points in one message */
#define AGENT_OUTBOX_WINDOW 4		  /* messages in flight */
/* a db file larger than max_bytes by this much is not ours: moved aside */
#define AGENT_OUTBOX_FILE_SLACK (8u * 1024 * 1024)

enum agent_outbox_kind {
	AGENT_OUTBOX_TELEMETRY = 1, /* dropped first past a bound */
	AGENT_OUTBOX_EVENT = 2,	    /* never dropped */
};

struct agent_outbox_limits {
	uint64_t max_messages; /* >= 1 */
	uint64_t max_bytes;    /* >= 1 */
	int64_t max_age_s;     /* >= 1 */
};

/* A message to send (agent_outbox_next); release with
 * agent_outbox_msg_release. */
struct agent_outbox_msg {
	uint64_t seq;
	enum agent_outbox_kind kind;
	uint64_t dropped; /* points dropped before it was queued */
	int64_t ts_ms;	  /* when it was queued */
	char *body;	  /* NUL-terminated */
	size_t len;
};

struct agent_outbox;

/*
 * Open the outbox at @path (created when missing; NULL: an in-memory db,
 * fleet-sim) with the bounds @lim (copied).  Returns 0, FL_EINVAL (bad
 * bounds), FL_EPARSE (not an outbox db, or corrupt: the caller moves it
 * aside and opens again), FL_ELIMIT (the file is far over max_bytes:
 * likewise), FL_EIO.
 */
int agent_outbox_open(const char *path, const struct agent_outbox_limits *lim,
		      struct agent_outbox **ret, struct fl_error *err);

/* Close (the file stays); NULL is fine. */
void agent_outbox_free(struct agent_outbox *ob);

/*
 * Queue @len bytes of @body (1..AGENT_OUTBOX_BODY_MAX) of @kind holding
 * @weight points (0..AGENT_OUTBOX_WEIGHT_MAX), queued at @now_ms; its seq
 * in *@ret_seq (may be NULL).  Applies the bounds first (see above).
 * Returns 0, FL_EINVAL, FL_ELIMIT (telemetry refused: over a bound with
 * nothing droppable, or bigger than max_bytes; its points counted as
 * dropped), FL_EIO (nothing queued).
 */
int agent_outbox_put(struct agent_outbox *ob, enum agent_outbox_kind kind,
		     const void *body, size_t len, unsigned weight,
		     int64_t now_ms, uint64_t *ret_seq, struct fl_error *err);

/*
 * The oldest message not sent on this connection, when fewer than
 * AGENT_OUTBOX_WINDOW are in flight.  Telemetry past max_age is dropped
 * first.  A row that
 * breaks a cap (a damaged db) is deleted with a log line.  Returns 0
 * and *@ret (release it), FL_ENOTFOUND (nothing to send now), FL_EIO.
 */
int agent_outbox_next(struct agent_outbox *ob, int64_t now_ms,
		      struct agent_outbox_msg *ret, struct fl_error *err);

/* Free a message's body; NULL is fine. */
void agent_outbox_msg_release(struct agent_outbox_msg *m);

/* Message @seq (from agent_outbox_next) was published as MQTT @mid. */
void agent_outbox_sent(struct agent_outbox *ob, uint64_t seq, int mid);

/* Message @seq could not be published: it goes out again later. */
void agent_outbox_unsent(struct agent_outbox *ob, uint64_t seq);

/*
 * The PUBACK of @mid arrived: delete its message.  Returns 0 and its seq
 * in *@ret_seq (may be NULL), FL_ENOTFOUND (not a mid in flight: from an
 * earlier connection or not ours; nothing changes), FL_EIO.
 */
int agent_outbox_acked(struct agent_outbox *ob, int mid, uint64_t *ret_seq,
		       struct fl_error *err);

/* Delete message @seq, which cannot be sent (its body breaks the
 * contract), counting its points as dropped.  Returns 0, FL_EIO. */
int agent_outbox_discard(struct agent_outbox *ob, uint64_t seq,
			 struct fl_error *err);

/* A new connection: nothing is in flight, the next message is the
 * oldest again. */
void agent_outbox_rewind(struct agent_outbox *ob);

/* Messages queued, their body bytes, and points dropped not yet
 * reported. */
uint64_t agent_outbox_depth(const struct agent_outbox *ob);
uint64_t agent_outbox_bytes(const struct agent_outbox *ob);
uint64_t agent_outbox_dropped(const struct agent_outbox *ob);

#endif
