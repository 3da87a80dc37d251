/* SPDX-License-Identifier: MIT */
#ifndef SRV_TELEMETRY_H
#define SRV_TELEMETRY_H

/*
 * Device telemetry on fleetd's side (docs/protocol.md "Telemetry"): the
 * wire message PREFIX/ID/telemetry checked rule by rule, and the rule by
 * which a message's seq is new, a QoS-1 duplicate, or the start of a new
 * stream.  Nothing here touches the store.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define SRV_TELEMETRY_POINTS_MAX 64 /* points in one message */
/* metric names: fl_valid_metric (common/validate.h) */
/* 2020-01-01T00:00:00Z: a sample time before it is refused */
#define SRV_TELEMETRY_TS_MIN INT64_C(1577836800000)
/* how far ahead of fleetd's clock a sample time may be */
#define SRV_TELEMETRY_TS_AHEAD_MS INT64_C(86400000)
#define SRV_TELEMETRY_SEQ_MAX (INT64_C(1) << 53)
/* a seq more than this below the stored one starts a new stream */
#define SRV_TELEMETRY_RESTART_GAP INT64_C(1000000)

/* One stored point.  @device and @metric are borrowed. */
struct srv_tpoint {
	const char *device;
	const char *metric;
	int64_t ts_ms; /* sample time, ms since the epoch */
	double value;
};

/*
 * The hook the ingest writer calls after each commit with the points it
 * just stored, in the order received (@pts and its strings borrowed for
 * the call; it runs in the writer thread, so it must not block long).
 */
typedef void (*srv_tpoints_fn)(void *arg, const struct srv_tpoint *pts,
			       size_t n);

/* A checked message: @points (@n of them, device NULL) and their metric
 * strings in one allocation, freed with free(). */
struct srv_tmsg {
	int64_t seq;
	int64_t dropped; /* points the device's outbox dropped before it */
	size_t n;
	struct srv_tpoint points[];
};

/*
 * Check the message @j by every rule of the wire contract, sample times
 * against @now_ms, and copy it into *@ret (caller frees).  FL_EPARSE
 * (or FL_ELIMIT for too many points) with the broken rule otherwise;
 * nothing is returned then.
 */
int srv_telemetry_parse(const json_t *j, int64_t now_ms, struct srv_tmsg **ret,
			struct fl_error *err);

enum srv_tseq {
	SRV_TSEQ_NEW = 1,   /* above the high-water mark: store */
	SRV_TSEQ_DUPLICATE, /* at or below it: stored before */
	SRV_TSEQ_RESTART,   /* a new stream (wiped state dir): store, and
			     * @seq becomes the mark */
};

/*
 * What a message with @seq is to a device whose stored high-water mark
 * is @mark (0: none yet), @reenrolled when the device enrolled again
 * since that mark was stored.
 */
enum srv_tseq srv_telemetry_seq(int64_t mark, bool reenrolled, int64_t seq);

#endif
