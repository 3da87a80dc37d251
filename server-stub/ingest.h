/* SPDX-License-Identifier: MIT */
#ifndef SRV_INGEST_H
#define SRV_INGEST_H

/*
 * The path from fleetd's MQTT network thread to the store (issue 17):
 * a bounded queue of device messages (parsed and checked by the thread
 * that pushes them) and one writer thread that applies them in batches,
 * many per transaction
 * (srv_store_ingest).  When the queue is full the network thread waits
 * in srv_ingest_push: it stops reading, so the broker stops sending and
 * keeps the messages in fleetd's session instead of fleetd dropping
 * them.  After each commit the writer confirms every final job event to
 * its device (@ack), so the device stops publishing it again.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

struct srv_ingest;

#define SRV_INGEST_QUEUE_DEFAULT 8192 /* messages */
#define SRV_INGEST_QUEUE_MAX 1000000
#define SRV_INGEST_BYTES_MAX (64u << 20) /* payload bytes queued at most */
#define SRV_INGEST_LINGER_MS 20 /* for a fuller batch (ingest.c linger) */
#define SRV_INGEST_BATCH 512		 /* messages per transaction */

struct srv_ingest_cfg {
	size_t queue;     /* messages held at most (>= 1) */
	size_t max_bytes; /* payload bytes held at most */
	size_t batch;     /* messages per transaction at most (>= 1) */
	int linger_ms;    /* wait for a fuller batch at most (0: never) */
	size_t max_payload;
	srv_tpoints_fn on_points; /* NULL: none (telemetry.h) */
	void *on_points_arg;
};

/* Counters since start; see fleetctl status. */
struct srv_ingest_stats {
	uint64_t received;   /* messages taken into the queue */
	uint64_t stored;     /* applied */
	uint64_t duplicates; /* seen before: nothing to do */
	uint64_t rejected;   /* malformed, unknown device, closed job */
	uint64_t job_stale;   /* job events older than their job's newest */
	uint64_t job_illegal; /* job events their job's state machine
			       * refused (jobs.h) */
	uint64_t seq_gaps;   /* event seq numbers skipped by devices'
			      * streams (lost before fleetd, or coalesced
			      * by an older agent) */
	uint64_t failed;     /* the database refused them: lost, logged */
	uint64_t batches, retries;
	uint64_t waits;   /* pushes that had to wait for room */
	uint64_t wait_ms; /* time the network thread spent waiting */
	uint64_t acks;    /* final events confirmed to devices */
	/* telemetry (docs/protocol.md "Telemetry"); its messages count in
	 * received, stored, duplicates and rejected above too */
	uint64_t tele_points;	  /* points stored */
	uint64_t tele_duplicates; /* messages whose seq was stored before */
	uint64_t tele_rejected;	  /* messages refused whole */
	uint64_t tele_dropped;	  /* points devices' outboxes dropped */
	size_t depth, high_water, capacity;
};

/* Confirm a final job event of @device (called by the writer thread
 * after the commit), naming the @n_missing seqs of its history that its
 * job's events lack. */
typedef void (*srv_ingest_ack_fn)(void *arg, const char *device, int64_t seq,
				  const char *job, const char *state,
				  const int64_t *missing, size_t n_missing);

int srv_ingest_start(struct srv_store *store, const struct srv_ingest_cfg *cfg,
		     srv_ingest_ack_fn ack, void *ack_arg,
		     struct srv_ingest **ret, struct fl_error *err);

/*
 * Parse and queue a copy of one message from @device (a valid id); one
 * that does not parse is queued too, to be counted as rejected in order.
 * Waits while the queue is full; false (nothing queued) once stopping.
 */
bool srv_ingest_push(struct srv_ingest *q, enum srv_ingest_kind kind,
		     const char *device, const void *payload, size_t len);

/* Wait up to @ms for the queue to be empty and the writer idle. */
bool srv_ingest_drain(struct srv_ingest *q, int ms);

void srv_ingest_stats(struct srv_ingest *q, struct srv_ingest_stats *ret);

/* Apply what is queued, then stop the writer and free.  NULL is fine. */
void srv_ingest_stop(struct srv_ingest *q);

/* The fields of message @j (strings borrowed from @j, each within its
 * cap, else NULL). */
void srv_ingest_fields_get(const json_t *j, struct srv_ingest_fields *f);

/* For a caller that holds a message as JSON: @it's fields from @j and
 * its text, @j dumped; returns that text (caller frees it after the
 * store call, and keeps @j until then). */
char *srv_ingest_item_json(struct srv_ingest_item *it, const json_t *j);

#endif
