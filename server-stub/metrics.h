/* SPDX-License-Identifier: MIT */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

/*
 * fleetd's Prometheus metrics (docs/metrics.md): counters and histograms
 * kept in memory with atomics, so the hot paths (MQTT ingest, every HTTP
 * request, every store call) never take a lock to count, and the text
 * exposition format 0.0.4 they are written in.  One set per process.
 */
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

struct srv_route;

/* Upper bounds of a histogram's buckets, in seconds (+Inf implied). */
#define SRV_HIST_BUCKETS 14

struct srv_hist {
	uint64_t bucket[SRV_HIST_BUCKETS + 1]; /* not cumulative; last: +Inf */
	uint64_t sum_ns;
};

/* The bucket bounds every histogram here uses (seconds). */
extern const double srv_hist_bounds[SRV_HIST_BUCKETS];

/* Count one observation of @ns nanoseconds into @h (lock-free). */
void srv_hist_observe(struct srv_hist *h, uint64_t ns);

/* Nanoseconds of the monotonic clock. */
uint64_t srv_metrics_now_ns(void);

/* Record the time the process started (process_start_time_seconds). */
void srv_metrics_start(void);

/* One HTTP request: its route (NULL: none matched), the status sent and
 * how long it took.  Routes beyond the table's room count as none. */
void srv_metrics_http(const struct srv_route *rt, int status, uint64_t ns);

/* One store call that took @ns. */
void srv_metrics_store(uint64_t ns);

/* One MQTT message of topic @kind (FL_TOPIC_NKINDS: anything else)
 * received by fleetd or published by it. */
enum srv_mqtt_dir { SRV_MQTT_IN, SRV_MQTT_OUT };
void srv_metrics_mqtt(enum srv_mqtt_dir dir, enum fl_topic_kind kind);

/* Write the in-memory metrics (HTTP, store, MQTT, process) to @f. */
void srv_metrics_write(FILE *f);

/*
 * The exposition writer.  A label set is @n pairs of name and value in
 * @kv; values are escaped (backslash, double quote, newline).
 */
void srv_prom_head(FILE *f, const char *name, const char *type,
		   const char *help);
void srv_prom_sample(FILE *f, const char *name, const char *const *kv, size_t n,
		     double value);
/* The _bucket (cumulative, "le" last), _sum and _count lines of @h. */
void srv_prom_hist(FILE *f, const char *name, const char *const *kv, size_t n,
		   const struct srv_hist *h);

#endif
