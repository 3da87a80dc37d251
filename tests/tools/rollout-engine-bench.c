/* SPDX-License-Identifier: MIT */
/*
 * rollout-engine-bench STATE_DIR [N]: the rollout engine's own cost, with
 * no MQTT and no devices (docs/performance.md).  N devices (default
 * 10000) are enrolled into a fresh state dir and reported online on
 * 1.0.0; a rollout of 1.1.0 in waves 2%,10%,50%,100% with no soak and no
 * health window is created, and the engine is ticked with fake time
 * until it completes.  After each tick every device commanded reports
 * success at once, through the same ingest path fleetd's MQTT side uses.
 * Prints the time to create the rollout and the engine's time per tick
 * and per device update (the ingest of the answers is timed apart).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "json.h"
#include "rollouts.h"
#include "srv.h"
#include "util.h"

#define T0 1000000
#define BATCH 512

static size_t n_dev;
static char (*jobs)[32]; /* job commanded to device i, "" none */
static size_t sends;

static int record(void *ctx, const char *device, const char *type,
		  json_t *args, const char *id, struct fl_error *err)
{
	size_t i = strtoul(device + 1, NULL, 10);

	if (i < n_dev)
		fl_strlcpy(jobs[i], json_string_value(json_object_get(args, "job")),
			   sizeof(jobs[i]));
	sends++;
	return 0;
}

static double ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Store @n messages of devices @dev[i] made of @j[i], in batches. */
static void ingest(struct srv *srv, enum srv_ingest_kind kind, char **dev,
		   json_t **j, size_t n)
{
	struct srv_ingest_item it[BATCH];
	char *text[BATCH];

	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;

		for (size_t x = 0; x < k; x++) {
			it[x] = (struct srv_ingest_item){.kind = kind,
							 .device = dev[i + x]};
			text[x] = srv_ingest_item_json(&it[x], j[i + x]);
		}
		srv_store_ingest(srv->store, it, k, NULL);
		for (size_t x = 0; x < k; x++)
			free(text[x]);
	}
}

/* Every device commanded since the last call reports success. */
static size_t answer(struct srv *srv, char **ids, int *seq)
{
	json_t **st = fl_xcalloc(n_dev, sizeof(*st));
	json_t **ev = fl_xcalloc(n_dev, sizeof(*ev));
	char **dev = fl_xcalloc(n_dev, sizeof(*dev));
	size_t n = 0;

	for (size_t i = 0; i < n_dev; i++) {
		if (!jobs[i][0])
			continue;
		dev[n] = ids[i];
		st[n] = json_pack("{s:s, s:s}", "firmware", "1.1.0", "health",
				  "ok");
		ev[n++] = json_pack("{s:i, s:s, s:s, s:s}", "seq", ++*seq, "job",
				    jobs[i], "type", "update", "state",
				    "succeeded");
		jobs[i][0] = '\0';
	}
	ingest(srv, SRV_INGEST_STATUS, dev, st, n);
	ingest(srv, SRV_INGEST_EVENT, dev, ev, n);
	for (size_t i = 0; i < n; i++) {
		json_decref(st[i]);
		json_decref(ev[i]);
	}
	free(st);
	free(ev);
	free(dev);
	return n;
}

static void fleet(struct srv *srv, char **ids)
{
	json_t **pres = fl_xcalloc(n_dev, sizeof(*pres));

	for (size_t i = 0; i < n_dev; i++) {
		struct srv_cert c = {ids[i], ids[i], time(NULL),
				     time(NULL) + 86400, NULL};

		srv_store_device_enroll(srv->store, ids[i], "g", "bench", NULL,
					false, &c, NULL);
		pres[i] = json_pack("{s:b, s:s}", "online", 1, "firmware",
				    "1.0.0");
	}
	ingest(srv, SRV_INGEST_PRESENCE, ids, pres, n_dev);
	for (size_t i = 0; i < n_dev; i++)
		json_decref(pres[i]);
	free(pres);
}

int main(int argc, char **argv)
{
	struct srv_bundle b = {.id = "0123456789abcdef", .sha256 = "bench",
			       .name = "fw", .version = "1.1.0", .size = 1,
			       .manifest = "{}"};
	struct srv_rollout_row r = {0};
	struct fl_error err = {0};
	double t, engine = 0, worst = 0, ing = 0;
	char id[FL_ID_MAX + 1], *token = NULL, **ids;
	struct srv *srv = NULL;
	int seq = 0, ticks = 0;
	json_t *body;
	bool existed;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: rollout-engine-bench STATE_DIR [N]\n");
		return 2;
	}
	n_dev = argc == 3 ? strtoul(argv[2], NULL, 10) : 10000;
	if (n_dev < 1 || n_dev > 1000000 ||
	    srv_init_state(argv[1], NULL, 0, NULL, &token, &err) ||
	    srv_open(argv[1], &srv, &err)) {
		fprintf(stderr, "rollout-engine-bench: %s\n", err.msg);
		return 1;
	}
	fl_free_secret(token);
	srv->send_cmd = record;
	srv_store_bundle_add(srv->store, &b, "bench", &existed, NULL);
	jobs = fl_xcalloc(n_dev, sizeof(*jobs));
	ids = fl_xcalloc(n_dev, sizeof(*ids));
	for (size_t i = 0; i < n_dev; i++)
		ids[i] = fl_xasprintf("d%zu", i);
	fleet(srv, ids);
	body = json_pack("{s:s, s:s, s:{s:s}, s:[s, s, s, s], s:i, s:i}", "id",
			 "bench", "bundle", "fw@1.1.0", "target", "group", "g",
			 "waves", "2%", "10%", "50%", "100%", "soak_s", 0,
			 "health_window_s", 0);
	t = ms();
	if (srv_rollout_create(srv, body, "bench", T0, id, &err)) {
		fprintf(stderr, "rollout-engine-bench: %s\n", err.msg);
		return 1;
	}
	printf("create: %.1f ms for %zu devices\n", ms() - t, n_dev);
	for (int64_t now = T0; ticks < 100000; now++, ticks++) {
		double d;

		t = ms();
		srv_rollouts_tick(srv, now);
		d = ms() - t;
		engine += d;
		worst = d > worst ? d : worst;
		t = ms();
		answer(srv, ids, &seq);
		ing += ms() - t;
		srv_rollout_row_free(&r);
		srv_store_rollout_get(srv->store, "bench", &r, NULL);
		if (!fl_streq(r.state, "running"))
			break;
	}
	printf("state: %s after %d ticks, %zu commands\n", r.state, ticks + 1,
	       sends);
	printf("engine: %.1f ms in all, worst tick %.1f ms, %.1f us per device "
	       "update\n",
	       engine, worst, engine * 1000 / (double)n_dev);
	printf("ingest of the answers (not the engine): %.1f ms\n", ing);
	existed = fl_streq(r.state, "completed") && sends == n_dev;
	srv_rollout_row_free(&r);
	json_decref(body);
	for (size_t i = 0; i < n_dev; i++)
		free(ids[i]);
	free(ids);
	free(jobs);
	srv_close(srv);
	return existed ? 0 : 1; /* (existed: reused for "it completed") */
}
