/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "api.h"
#include "api_json.h"
#include "diag_relay.h"
#include "fwd.h"
#include "mqtt.h"
#include "store_rollouts.h"
#include "util.h"

int api_healthz(struct srv_req *r)
{
	return srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/*
 * GET /readyz, for a load balancer (no token, like /healthz): 200 when
 * this fleetd's store answers and its broker link is up (when it has
 * one), else 503; and whether it holds the rollout engine, which a
 * replica on standby does not need to be ready (docs/scale.md).
 */
int api_ready(struct srv_req *r)
{
	struct srv_rollout_list l = {0};
	struct srv_mqtt_stats st;
	bool store, broker;

	store = !srv_store_rollout_list(r->srv->store, true, 1, &l, NULL);
	srv_rollout_list_free(&l);
	srv_mqtt_stats(r->srv->mqtt, &st);
	broker = !r->srv->mqtt || st.connected;
	return srv_reply_json(
	    r, store && broker ? 200 : 503,
	    json_pack("{s:b, s:b, s:b, s:b, s:o}", "ready", store && broker,
		      "store", store, "broker", broker, "engine",
		      __atomic_load_n(&r->srv->engine_held, __ATOMIC_RELAXED),
		      "replica",
		      r->srv->replica ? json_string(r->srv->replica)
				      : json_null()));
}

int api_version(struct srv_req *r)
{
	return srv_reply_json(
	    r, 200,
	    json_pack("{s:s, s:i, s:s}", "version", FLEET_VERSION, "schema",
		      srv_store_schema_version(r->srv->store), "api", "v1"));
}

int api_whoami(struct srv_req *r)
{
	return srv_reply_json(r, 200,
			      json_pack("{s:s, s:s, s:s, s:s}", "kind", "token",
					"id", r->who.id, "name", r->who.name,
					"role", srv_role_name(r->who.role)));
}

int api_audit_list(struct srv_req *r)
{
	int limit = srv_req_limit(r, 100, 10000);
	struct srv_audit_list rows = {0};
	struct fl_error err = {0};
	json_t *out;

	if (!limit)
		return 0;
	if (srv_store_audit_list(r->srv->store, limit, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_audit_json(&rows);
	srv_audit_list_free(&rows);
	return srv_reply_json(r, 200, out);
}

/* Telemetry taken in (docs/protocol.md "Telemetry"). */
static json_t *telemetry_json(const struct srv_ingest_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "points",
			 (json_int_t)s->tele_points, "duplicates",
			 (json_int_t)s->tele_duplicates, "rejected",
			 (json_int_t)s->tele_rejected, "dropped_by_devices",
			 (json_int_t)s->tele_dropped);
}

static json_t *ingest_json(const struct srv_ingest_stats *s)
{
	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	    " s:I, s:I, s:I, s:I}",
	    "received", (json_int_t)s->received, "stored",
	    (json_int_t)s->stored, "duplicates", (json_int_t)s->duplicates,
	    "rejected", (json_int_t)s->rejected, "seq_gaps",
	    (json_int_t)s->seq_gaps, "failed", (json_int_t)s->failed, "acks",
	    (json_int_t)s->acks, "batches", (json_int_t)s->batches, "retries",
	    (json_int_t)s->retries, "waits", (json_int_t)s->waits, "wait_ms",
	    (json_int_t)s->wait_ms, "queued", (json_int_t)s->depth,
	    "queue_high_water", (json_int_t)s->high_water, "queue_capacity",
	    (json_int_t)s->capacity);
}

/* Device events the job state machine refused (issue 9 item 2). */
static json_t *jobs_json(const struct srv_ingest_stats *s)
{
	return json_pack("{s:I, s:I}", "illegal_transitions",
			 (json_int_t)s->job_illegal, "stale_events",
			 (json_int_t)s->job_stale);
}

/* What fleetd is doing: its MQTT side and what it took in (issue 17). */
/* The diag relay: calls waiting now, replies matched and ignored
 * (unknown, late, stray, repeated) since fleetd started. */
static json_t *diag_json(struct srv_diag *d)
{
	struct srv_diag_stats st;

	srv_diag_stats(d, &st);
	return json_pack("{s:I, s:I, s:I}", "waiting", (json_int_t)st.calls,
			 "replies", (json_int_t)st.replies, "ignored",
			 (json_int_t)st.ignored);
}

/* The telemetry forwarders' counters by backend; {} with none. */
static json_t *forward_json(const struct srv *srv)
{
	json_t *o = json_object();

	if (srv->fwd_influx)
		json_object_set_new(o, "influx",
				    srv_fwd_stats_json(srv->fwd_influx));
	if (srv->fwd_pg)
		json_object_set_new(o, "postgres",
				    srv_fwd_stats_json(srv->fwd_pg));
	return o;
}

int api_status(struct srv_req *r)
{
	struct srv_mqtt_stats st;

	srv_mqtt_stats(r->srv->mqtt, &st);
	return srv_reply_json(
	    r, 200,
	    json_pack(
		"{s:s, s:o, s:b, s:{s:b, s:b, s:I, s:o}, s:o, s:o, s:o, "
		"s:o, s:o}",
		"version", FLEET_VERSION, "replica",
		r->srv->replica ? json_string(r->srv->replica) : json_null(),
		"engine",
		__atomic_load_n(&r->srv->engine_held, __ATOMIC_RELAXED), "mqtt",
		"enabled", r->srv->mqtt != NULL, "connected", st.connected,
		"over_budget", (json_int_t)st.over_budget, "broker_dropped",
		st.broker_dropped >= 0 ? json_integer(st.broker_dropped)
				       : json_null(),
		"ingest", ingest_json(&st.ingest), "jobs",
		jobs_json(&st.ingest), "diag", diag_json(r->srv->diag),
		"telemetry", telemetry_json(&st.ingest), "forward",
		forward_json(r->srv)));
}
