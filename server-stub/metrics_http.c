/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics (docs/metrics.md): what fleetd counted in memory
 * (metrics.c) and the fleet's numbers from the store.  Those come from a
 * few GROUP BY queries, kept for CACHE_MS so that however often and
 * however many scrapers ask, the store runs them at most once per period.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "rollout.h"
#include "util.h"

#define CACHE_MS 5000
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct {
	pthread_mutex_t lock;
	const struct srv_store *store; /* whose counts these are */
	int64_t at_ms;		       /* when they were read */
	bool ok;		       /* the last reading worked */
	struct srv_fleet_counts c;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Lock held: the counts, read again when older than CACHE_MS. */
static void refresh(struct srv_store *store)
{
	struct fl_error err = {0};
	int64_t now = fl_now_ms();

	if (cache.store == store && now - cache.at_ms < CACHE_MS)
		return;
	srv_fleet_counts_free(&cache.c);
	cache.ok = !srv_store_fleet_counts(store, &cache.c, &err);
	if (!cache.ok)
		fl_warn("metrics: %s", err.msg);
	cache.store = store;
	cache.at_ms = now;
}

static int64_t count_of(const struct srv_count_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (fl_streq(l->v[i].name, name))
			return l->v[i].n;
	return 0;
}

/* One sample per name of @names (a series for each, 0 when absent). */
static void by_state(FILE *f, const char *metric, const char *const *names,
		     size_t n, const struct srv_count_list *l)
{
	for (size_t i = 0; i < n; i++) {
		const char *kv[2] = {"state", names[i]};

		srv_prom_sample(f, metric, kv, 1,
				(double)count_of(l, names[i]));
	}
}

static void write_devices(FILE *f, const struct srv_fleet_counts *c)
{
	static const char *const states[] = {"active", "decommissioned"};

	srv_prom_head(f, "fleetd_devices", "gauge", "Devices by state.");
	by_state(f, "fleetd_devices", states, FL_ARRAY_SIZE(states),
		 &c->devices);
	srv_prom_head(f, "fleetd_devices_online", "gauge",
		      "Active devices online (MQTT presence).");
	srv_prom_sample(f, "fleetd_devices_online", NULL, 0, (double)c->online);
	srv_prom_head(f, "fleetd_devices_firmware", "gauge",
		      "Active devices by the firmware version they reported "
		      "(\"\": none yet); the 50 most common.");
	for (size_t i = 0; i < c->firmware.n; i++) {
		const char *kv[2] = {"version", c->firmware.v[i].name};

		srv_prom_sample(f, "fleetd_devices_firmware", kv, 1,
				(double)c->firmware.v[i].n);
	}
	srv_prom_head(f, "fleetd_devices_firmware_other", "gauge",
		      "Active devices on versions beyond the 50 most common.");
	srv_prom_sample(f, "fleetd_devices_firmware_other", NULL, 0,
			(double)c->firmware_other);
}

static void write_work(FILE *f, const struct srv_fleet_counts *c)
{
	const char *rollouts[FL_ROLLOUT_STATE_END], *jobs[FL_JOB_STATE_END];
	size_t nr = 0, nj = 0;

	for (int s = 1; s < FL_ROLLOUT_STATE_END; s++)
		rollouts[nr++] = fl_rollout_state_name(s);
	for (int s = 1; s < FL_JOB_STATE_END; s++)
		if (fl_job_state_final(s))
			jobs[nj++] = fl_job_state_name(s);
	srv_prom_head(f, "fleetd_rollouts", "gauge", "Rollouts by state.");
	by_state(f, "fleetd_rollouts", rollouts, nr, &c->rollouts);
	srv_prom_head(f, "fleetd_jobs_finished_total", "counter",
		      "Jobs that reached a final state, by it (from the "
		      "store: kept across restarts).");
	by_state(f, "fleetd_jobs_finished_total", jobs, nj, &c->jobs_final);
}

static void write_fleet(FILE *f, struct srv *srv)
{
	struct srv_mqtt_stats st;

	pthread_mutex_lock(&cache.lock);
	refresh(srv->store);
	srv_prom_head(f, "fleetd_store_counts_ok", "gauge",
		      "1 when the fleet's numbers below could be read.");
	srv_prom_sample(f, "fleetd_store_counts_ok", NULL, 0, cache.ok);
	if (cache.ok) {
		write_devices(f, &cache.c);
		write_work(f, &cache.c);
	}
	pthread_mutex_unlock(&cache.lock);
	srv_mqtt_stats(srv->mqtt, &st);
	srv_prom_head(f, "fleetd_mqtt_connected", "gauge",
		      "1 while fleetd's MQTT client is connected.");
	srv_prom_sample(f, "fleetd_mqtt_connected", NULL, 0, st.connected);
	srv_prom_head(f, "fleetd_engine_holder", "gauge",
		      "1 while this fleetd holds the rollout engine's lease.");
	srv_prom_sample(
	    f, "fleetd_engine_holder", NULL, 0,
	    __atomic_load_n(&srv->engine_held, __ATOMIC_RELAXED) ? 1 : 0);
	srv_prom_head(f, "fleetd_ingest_queue_depth", "gauge",
		      "Device messages received and not stored yet.");
	srv_prom_sample(f, "fleetd_ingest_queue_depth", NULL, 0,
			(double)st.ingest.depth);
}

int api_metrics(struct srv_req *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return srv_reply_error(r, 500, "internal", "out of memory");
	srv_metrics_write(f);
	write_fleet(f, r->srv);
	if (fclose(f)) {
		free(text);
		return srv_reply_error(r, 500, "internal", "out of memory");
	}
	return srv_reply_text(r, 200, PROM_TYPE, text);
}
