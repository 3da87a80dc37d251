/* SPDX-License-Identifier: MIT */
/*
 * server-stub/rollout_engine and rollouts: the engine's tick driven
 * against a real store with fake time and no MQTT.  Commands go to a
 * recorder (srv->send_cmd); devices answer through the store's ingest
 * path, as fleetd's MQTT side would.  Covers a rollout that completes
 * (plan == run), the gate tripping in wave 1 and rolling back, a trip
 * without auto_rollback and the resume, rollbacks of updated devices,
 * the health window, device timeouts, rate and concurrency limits,
 * abort, the lease, and fleetd dying between "decision written" and
 * "command sent" (a forked child killed at the send): after a restart
 * the same job's same command goes out and no device gets a second job.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest.h"
#include "json.h"
#include "rollouts.h"
#include "srv.h"
#include "util.h"

#include "srv_fixture.h"

#define T0 2000000000LL /* fake time: after any real job deadline */

/* A command as sent. */
struct sent {
	char device[64], type[16], job[32], id[48], version[16];
};

struct rec {
	size_t n;
	struct sent v[256];
	bool fail;	      /* refuse every send (the broker is away) */
	char fail_device[16]; /* refuse sends to this device */
	bool die;	      /* _exit at the first send: fleetd killed there */
	/* at the first update sent, an operator aborts rollout r1 from
	 * another thread (race_abort) */
	struct srv *race;
	pthread_t racer;
	bool racing, aborted;
	int abort_rc;
	size_t abort_at; /* sends recorded when the abort returned */
};

static struct rec rec;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cond = PTHREAD_COND_INITIALIZER;

static void *abort_r1(void *arg)
{
	int rc = srv_rollout_act(arg, "r1", FL_ROLLOUT_ABORT, "token:op",
				 T0 + 1, NULL);

	pthread_mutex_lock(&rec_lock);
	rec.abort_rc = rc;
	rec.aborted = true;
	rec.abort_at = rec.n;
	pthread_cond_broadcast(&rec_cond);
	pthread_mutex_unlock(&rec_lock);
	return NULL;
}

/* rec_lock held: start the abort and give it 300 ms to return before
 * this send goes on (it cannot while the engine holds the rollout) */
static void race_abort(void)
{
	struct timespec ts;

	rec.racing = true;
	if (pthread_create(&rec.racer, NULL, abort_r1, rec.race))
		abort();
	fl_deadline(&ts, 300);
	while (!rec.aborted &&
	       pthread_cond_timedwait(&rec_cond, &rec_lock, &ts) != ETIMEDOUT)
		;
}

static int record(void *ctx, const char *device, const char *type, json_t *args,
		  const char *id, struct fl_error *err)
{
	struct sent *s;
	json_t *b = json_object_get(args, "bundle");

	(void)ctx;
	if (rec.die)
		_exit(0);
	if (rec.fail || strcmp(rec.fail_device, device) == 0)
		return fl_fail(err, FL_EUNREACH, "no broker");
	pthread_mutex_lock(&rec_lock);
	if (rec.race && !rec.racing && strcmp(type, "update") == 0)
		race_abort();
	if (rec.n >= FL_ARRAY_SIZE(rec.v))
		abort();
	s = &rec.v[rec.n++];
	fl_strlcpy(s->device, device, sizeof(s->device));
	fl_strlcpy(s->type, type, sizeof(s->type));
	fl_strlcpy(s->job, json_string_value(json_object_get(args, "job")),
		   sizeof(s->job));
	fl_strlcpy(s->id, id, sizeof(s->id));
	if (b)
		fl_strlcpy(s->version,
			   json_string_value(json_object_get(b, "version")),
			   sizeof(s->version));
	pthread_mutex_unlock(&rec_lock);
	return 0;
}

/* Sends of @type to @device. */
static size_t sends(const char *device, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < rec.n; i++)
		n += strcmp(rec.v[i].device, device) == 0 &&
		     strcmp(rec.v[i].type, type) == 0;
	return n;
}

static const struct sent *last_send(const char *device, const char *type)
{
	const struct sent *s = NULL;

	for (size_t i = 0; i < rec.n; i++)
		if (strcmp(rec.v[i].device, device) == 0 &&
		    strcmp(rec.v[i].type, type) == 0)
			s = &rec.v[i];
	return s;
}

static int setup(void **state)
{
	struct srv_fixture *f;
	struct srv_bundle b = {.id = "0123456789abcdef",
			       .sha256 = "aa11",
			       .name = "fw",
			       .version = "1.1.0",
			       .size = 10,
			       .manifest = "{}"};
	bool existed;
	int rc = srv_setup(state);

	f = *state;
	memset(&rec, 0, sizeof(rec));
	if (!rc) {
		f->srv->send_cmd = record;
		rc = srv_store_bundle_add(f->srv->store, &b, "t", &existed,
					  NULL);
	}
	return rc;
}

/* Devices d0..d(n-1) in group g, online on 1.0.0. */
static void fleet(struct srv_fixture *f, int n);

static void ingest(struct srv_fixture *f, enum srv_ingest_kind kind,
		   const char *dev, json_t *j)
{
	struct srv_ingest_item it = {.kind = kind, .device = dev};
	char *text = srv_ingest_item_json(&it, j);

	assert_int_equal(srv_store_ingest(f->srv->store, &it, 1, NULL), 0);
	free(text);
	json_decref(j);
}

static void presence(struct srv_fixture *f, const char *dev, bool online,
		     const char *fw)
{
	ingest(f, SRV_INGEST_PRESENCE, dev,
	       json_pack("{s:b, s:s}", "online", online, "firmware", fw));
}

static void status(struct srv_fixture *f, const char *dev, const char *fw,
		   const char *health)
{
	ingest(f, SRV_INGEST_STATUS, dev,
	       json_pack("{s:s, s:s}", "firmware", fw, "health", health));
}

static int seq_of = 0;

/* The device reports @state on the job of its last @type command. */
static void report(struct srv_fixture *f, const char *dev, const char *type,
		   const char *state)
{
	const struct sent *s = last_send(dev, type);

	assert_non_null(s);
	ingest(f, SRV_INGEST_EVENT, dev,
	       json_pack("{s:i, s:s, s:s, s:s}", "seq", ++seq_of, "job", s->job,
			 "type", type, "state", state));
}

/* The device installs the update and comes back on 1.1.0. */
static void updates(struct srv_fixture *f, const char *dev)
{
	report(f, dev, "update", "downloading");
	presence(f, dev, true, "1.1.0");
	report(f, dev, "update", "succeeded");
}

static void fleet(struct srv_fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		char id[16];
		struct srv_cert c = {id, id, time(NULL), time(NULL) + 60, NULL};

		snprintf(id, sizeof(id), "d%d", i);
		assert_int_equal(srv_store_device_enroll(f->srv->store, id, "g",
							 "t", NULL, false, &c,
							 NULL),
				 0);
		presence(f, id, true, "1.0.0");
		status(f, id, "1.0.0", "ok");
	}
}

static void create(struct srv_fixture *f, const char *spec)
{
	json_t *body = json_loads(spec, 0, NULL);
	struct fl_error err = {0};
	char id[FL_ID_MAX + 1];

	assert_non_null(body);
	if (srv_rollout_create(f->srv, body, "token:op", T0, id, &err))
		fail_msg("create: %s", err.msg);
	json_decref(body);
}

static void tick(struct srv_fixture *f, int64_t t)
{
	srv_rollouts_tick(f->srv, T0 + t);
}

static struct srv_rollout_row row_of(struct srv_fixture *f)
{
	struct srv_rollout_row r = {0};

	assert_int_equal(srv_store_rollout_get(f->srv->store, "r1", &r, NULL),
			 0);
	return r;
}

static void state_is(struct srv_fixture *f, const char *state)
{
	struct srv_rollout_row r = row_of(f);

	if (strcmp(r.state, state))
		fail_msg("rollout is %s (%s), want %s", r.state,
			 r.reason ? r.reason : "", state);
	srv_rollout_row_free(&r);
}

/* The rollout's device rows in order, as "dev:state" joined by ' '. */
static char *rows(struct srv_fixture *f)
{
	struct srv_rollout_device_list l = {0};
	char buf[1024] = "";
	size_t o = 0;

	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", false, 0, &l, NULL),
	    0);
	for (size_t i = 0; i < l.n; i++)
		o +=
		    (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s:%s",
				     i ? " " : "", l.v[i].device, l.v[i].state);
	srv_rollout_device_list_free(&l);
	return fl_xstrdup(buf);
}

static void rows_are(struct srv_fixture *f, const char *want)
{
	char *got = rows(f);

	if (strcmp(got, want))
		fail_msg("rows: %s\n want: %s", got, want);
	free(got);
}

/* Jobs of @dev in the rollout. */
static size_t jobs_of(struct srv_fixture *f, const char *dev)
{
	struct srv_job_filter jf = {.device = dev, .rollout = "r1"};
	struct srv_job_list l = {0};
	size_t n;

	assert_int_equal(srv_store_job_list(f->srv->store, &jf, &l, NULL), 0);
	n = l.n;
	srv_job_list_free(&l);
	return n;
}

/* The command id recorded for job @job (static buffer). */
static const char *command_of(struct srv_fixture *f, const char *job)
{
	static char cmd[48];
	struct srv_job_row j = {0};

	assert_int_equal(srv_store_job_get(f->srv->store, job, &j, NULL), 0);
	assert_non_null(j.command);
	fl_strlcpy(cmd, j.command, sizeof(cmd));
	srv_job_row_free(&j);
	return cmd;
}

/* The device rows in rollout order. */
static void order(struct srv_fixture *f, char out[][16], size_t n)
{
	struct srv_rollout_device_list l = {0};

	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", false, 0, &l, NULL),
	    0);
	assert_int_equal(l.n, n);
	for (size_t i = 0; i < n; i++)
		fl_strlcpy(out[i], l.v[i].device, 16);
	srv_rollout_device_list_free(&l);
}

#define GOOD                                                                   \
	"{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"target\": {\"group\":"   \
	" \"g\"}, \"waves\": [1, \"100%\"], \"soak_s\": 10,"                   \
	" \"health_window_s\": 5, \"failure\": {\"percent\": 10,"              \
	" \"min_sample\": 2}"

static void test_completes(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_rollout_preview p = {0};
	json_t *body = json_loads(GOOD "}", 0, NULL);
	char o[4][16];
	char want[200];

	fleet(f, 4);
	/* plan == run: the plan's order and waves are what gets stored */
	assert_int_equal(srv_rollout_plan(f->srv, body, &p, NULL), 0);
	create(f, GOOD "}");
	order(f, o, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(o[i], p.plan.order[i]);
	assert_int_equal(p.plan.n_waves, 2);
	assert_int_equal(p.plan.waves[0].count, 1);
	srv_rollout_preview_release(&p);
	json_decref(body);

	tick(f, 0); /* the canary */
	assert_int_equal(rec.n, 1);
	assert_string_equal(rec.v[0].device, o[0]);
	assert_string_equal(rec.v[0].type, "update");
	assert_string_equal(rec.v[0].version, "1.1.0");
	tick(f, 1); /* nothing new while it works */
	assert_int_equal(rec.n, 1);
	updates(f, o[0]);
	tick(f, 2);
	snprintf(want, sizeof(want),
		 "%s:updated %s:pending %s:pending %s:pending", o[0], o[1],
		 o[2], o[3]);
	rows_are(f, want);
	tick(f, 6); /* health window (5 s) not over */
	assert_int_equal(rec.n, 1);
	rows_are(f, want);
	tick(f, 7); /* healthy; wave 1 done, soak until 17 */
	snprintf(want, sizeof(want),
		 "%s:healthy %s:pending %s:pending %s:pending", o[0], o[1],
		 o[2], o[3]);
	rows_are(f, want);
	tick(f, 16);
	assert_int_equal(rec.n, 1);
	tick(f, 17); /* wave 2 starts */
	tick(f, 18); /* and is commanded */
	assert_int_equal(rec.n, 4);
	for (int i = 1; i < 4; i++)
		updates(f, o[i]);
	tick(f, 19);
	tick(f, 24);
	tick(f, 25);
	tick(f, 33);
	state_is(f, "running"); /* the soak after the last wave */
	tick(f, 34);
	state_is(f, "completed");
	for (int i = 0; i < 4; i++) {
		assert_int_equal(jobs_of(f, o[i]), 1);
		assert_int_equal(sends(o[i], "update"), 1);
	}
	/* devices are free again: a new rollout may take them */
	{
		static const char *const d0[] = {"d0"};
		struct srv_strv busy = {0};

		assert_int_equal(
		    srv_store_rollout_busy(f->srv->store, d0, 1, &busy, NULL),
		    0);
		assert_int_equal(busy.n, 0);
	}
}

/* The canary rolls back by itself: the gate trips in wave 1, nothing is
 * left to roll back, no other device is commanded. */
static void test_trips_in_wave_1(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_rollout_row r;
	char o[4][16], want[200];

	fleet(f, 4);
	create(f, GOOD "}");
	order(f, o, 4);
	tick(f, 0);
	report(f, o[0], "update", "health-check");
	ingest(f, SRV_INGEST_EVENT, o[0],
	       json_pack("{s:i, s:s, s:s, s:s, s:s}", "seq", ++seq_of, "job",
			 last_send(o[0], "update")->job, "type", "update",
			 "state", "rolled-back", "reason",
			 "health check failed (exit 1): sensor bus"));
	tick(f, 1); /* failed; the gate trips */
	state_is(f, "rolling-back");
	r = row_of(f);
	assert_string_equal(r.reason, "gate tripped: 1 of 1 finished device(s) "
				      "failed (100% > 10%)");
	assert_true(r.tripped);
	srv_rollout_row_free(&r);
	tick(f, 2); /* nothing to roll back: the device went back itself */
	state_is(f, "rolled-back");
	snprintf(want, sizeof(want),
		 "%s:failed %s:skipped %s:skipped %s:skipped", o[0], o[1], o[2],
		 o[3]);
	rows_are(f, want);
	assert_int_equal(rec.n, 1); /* only the canary ever got the bundle */
	r = row_of(f);
	assert_string_equal(r.reason, "gate tripped: 1 of 1 finished device(s) "
				      "failed (100% > 10%)");
	srv_rollout_row_free(&r);
}

/* Wave 1 of two: one updates, one fails; the updated one is rolled
 * back, followed to its end. */
static void test_rolls_back_updated(void **state)
{
	struct srv_fixture *f = *state;
	char o[4][16], want[256];

	fleet(f, 4);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\": [2,"
		  " \"100%\"], \"soak_s\": 0, \"health_window_s\": 0,"
		  " \"failure\": {\"percent\": 10, \"min_sample\": 2}}");
	order(f, o, 4);
	tick(f, 0);
	assert_int_equal(rec.n, 2);
	updates(f, o[0]);
	tick(f, 1); /* o0 updated, then healthy; 1 finished of 2 needed */
	tick(f, 2);
	state_is(f, "running");
	report(f, o[1], "update", "failed");
	tick(f, 3); /* 1 of 2 failed: trips */
	state_is(f, "rolling-back");
	tick(f, 4); /* a rollback for o0 */
	assert_int_equal(sends(o[0], "rollback"), 1);
	assert_int_equal(sends(o[1], "rollback"), 0);
	tick(f, 5);
	state_is(f, "rolling-back"); /* follows the rollback to its end */
	report(f, o[0], "rollback", "succeeded");
	presence(f, o[0], true, "1.0.0");
	tick(f, 6);
	tick(f, 7);
	state_is(f, "rolled-back");
	snprintf(want, sizeof(want),
		 "%s:rolled-back %s:failed %s:skipped %s:skipped", o[0], o[1],
		 o[2], o[3]);
	rows_are(f, want);
	assert_int_equal(sends(o[2], "update") + sends(o[3], "update"), 0);
	assert_int_equal(sends(o[0], "rollback"), 1);
}

/* Rolling back stops the updates still open: one never answered is
 * cancelled at once (the rollout does not wait for its deadline), one in
 * progress is told to cancel and followed to its end. */
static void test_rollback_stops_open_updates(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_job_row j = {0};
	char o[5][16], want[256];

	fleet(f, 5);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\": [4,"
		  " \"100%\"], \"soak_s\": 0, \"health_window_s\": 0,"
		  " \"failure\": {\"percent\": 10, \"min_sample\": 1}}");
	order(f, o, 5);
	fl_strlcpy(rec.fail_device, o[3], sizeof(rec.fail_device));
	tick(f, 0);
	assert_int_equal(rec.n, 3); /* o3's command did not go out */
	report(f, o[0], "update", "failed");
	report(f, o[1], "update", "downloading"); /* at work */
	tick(f, 1);				  /* trips on o0 */
	state_is(f, "rolling-back");
	rec.fail_device[0] = '\0';
	tick(f, 2); /* o3's update is never sent now, only stopped */
	assert_int_equal(sends(o[3], "update"), 0);
	assert_int_equal(sends(o[1], "cancel"), 1);
	assert_int_equal(sends(o[2], "cancel"), 1);
	assert_int_equal(sends(o[3], "cancel"), 1);
	assert_int_equal(srv_store_job_get(f->srv->store,
					   last_send(o[3], "cancel")->job, &j,
					   NULL),
			 0);
	assert_string_equal(j.state, "cancelled"); /* never answered */
	srv_job_row_free(&j);
	assert_int_equal(srv_store_job_get(f->srv->store,
					   last_send(o[2], "update")->job, &j,
					   NULL),
			 0);
	assert_string_equal(j.state, "cancelled");
	srv_job_row_free(&j);
	assert_int_equal(srv_store_job_get(f->srv->store,
					   last_send(o[1], "update")->job, &j,
					   NULL),
			 0);
	assert_string_equal(j.state, "downloading"); /* told, followed */
	srv_job_row_free(&j);
	tick(f, 3);
	tick(f, 4);
	state_is(f, "rolling-back");
	assert_int_equal(sends(o[1], "cancel"), 1); /* once */
	ingest(f, SRV_INGEST_EVENT, o[1],
	       json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "seq", ++seq_of,
			 "job", last_send(o[1], "update")->job, "type",
			 "update", "state", "failed", "stage", "downloading",
			 "reason", "cancelled by fleetd"));
	tick(f, 5);
	tick(f, 6);
	state_is(f, "rolled-back");
	snprintf(want, sizeof(want),
		 "%s:failed %s:failed %s:failed %s:failed %s:skipped", o[0],
		 o[1], o[2], o[3], o[4]);
	rows_are(f, want);
	assert_int_equal(rec.n, 6); /* 3 updates, 3 cancels, no rollback */
}

/* Without auto_rollback the gate pauses; a resume accepts the failures
 * so far and the rollout carries on. */
static void test_pause_on_trip_and_resume(void **state)
{
	struct srv_fixture *f = *state;
	char o[3][16];

	fleet(f, 3);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\": [1,"
		  " \"100%\"], \"soak_s\": 0, \"health_window_s\": 0,"
		  " \"auto_rollback\": false}");
	order(f, o, 3);
	tick(f, 0);
	report(f, o[0], "update", "failed");
	tick(f, 1);
	state_is(f, "paused");
	tick(f, 2);
	assert_int_equal(rec.n, 1); /* paused: nothing more is sent */
	assert_int_equal(srv_rollout_act(f->srv, "r1", FL_ROLLOUT_RESUME,
					 "token:op", T0 + 3, NULL),
			 0);
	tick(f, 3); /* wave 1 finished (failed is finished): soak 0 */
	tick(f, 4);
	assert_int_equal(rec.n, 3);
	updates(f, o[1]);
	updates(f, o[2]);
	tick(f, 5);
	tick(f, 6);
	tick(f, 7);
	state_is(f, "completed");
}

/* Updated devices are watched for their window: a device back on its
 * old firmware fails; one offline fails after the grace. */
static void test_health_window(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_rollout_device_list l = {0};
	char o[3][16];

	fleet(f, 3);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\":"
		  " [\"100%\"], \"soak_s\": 0, \"health_window_s\": 100,"
		  " \"failure\": {\"percent\": 100}}");
	order(f, o, 3);
	tick(f, 0);
	for (int i = 0; i < 3; i++)
		updates(f, o[i]);
	tick(f, 1);
	status(f, o[0], "1.0.0", "ok");	   /* crashed back to the old slot */
	presence(f, o[1], false, "1.1.0"); /* gone */
	tick(f, 2);
	tick(f, 2 + SRV_ROLLOUT_OFFLINE_GRACE - 1);
	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", true, 0, &l, NULL),
	    0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].device, o[0]);
	assert_string_equal(l.v[0].reason,
			    "back on firmware 1.0.0 during its health window");
	srv_rollout_device_list_free(&l);
	tick(f, 2 + SRV_ROLLOUT_OFFLINE_GRACE);
	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", true, 0, &l, NULL),
	    0);
	assert_int_equal(l.n, 2);
	srv_rollout_device_list_free(&l);
	tick(f, 101);
	tick(f, 102);
	state_is(f, "completed"); /* 100%: the gate never trips */
}

/* A device that never answers fails at its timeout (its job expires). */
static void test_device_timeout(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_job_row j = {0};
	char o[2][16];

	fleet(f, 2);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\":"
		  " [\"100%\"], \"device_timeout_s\": 60, \"soak_s\": 0,"
		  " \"health_window_s\": 0, \"failure\": {\"percent\": 100}}");
	order(f, o, 2);
	tick(f, 0);
	updates(f, o[0]);
	tick(f, 59);
	tick(f, 60);
	assert_int_equal(srv_store_job_get(f->srv->store,
					   last_send(o[1], "update")->job, &j,
					   NULL),
			 0);
	assert_string_equal(j.state, "expired");
	srv_job_row_free(&j);
	tick(f, 61);
	state_is(f, "completed");
}

/* Concurrency 2 and 60 devices a minute: the limits hold. */
static void test_limits(void **state)
{
	struct srv_fixture *f = *state;
	char o[6][16];

	fleet(f, 6);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\":"
		  " [\"100%\"], \"concurrency\": 2, \"rate_per_min\": 60,"
		  " \"soak_s\": 0, \"health_window_s\": 0}");
	order(f, o, 6);
	tick(f, 0);
	assert_int_equal(rec.n, 1); /* one a second */
	tick(f, 1);
	assert_int_equal(rec.n, 2);
	tick(f, 2);
	assert_int_equal(rec.n, 2); /* two open: the cap */
	updates(f, o[0]);
	tick(f, 3); /* o0 done: room for one */
	assert_int_equal(rec.n, 3);
	updates(f, o[1]);
	updates(f, o[2]);
	tick(f, 3);
	assert_int_equal(rec.n, 3); /* the same second: no rate left */
	tick(f, 4);
	assert_int_equal(rec.n, 4);
	assert_string_equal(rec.v[3].device, o[3]);
}

static void test_abort(void **state)
{
	struct srv_fixture *f = *state;
	struct fl_error err = {0};
	char o[3][16], want[200];

	fleet(f, 3);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\": [1,"
		  " \"100%\"]}");
	order(f, o, 3);
	tick(f, 0);
	assert_int_equal(srv_rollout_act(f->srv, "r1", FL_ROLLOUT_ABORT,
					 "token:op", T0 + 1, NULL),
			 0);
	assert_int_equal(sends(o[0], "cancel"), 1);
	state_is(f, "aborted");
	snprintf(want, sizeof(want), "%s:cancelled %s:skipped %s:skipped", o[0],
		 o[1], o[2]);
	rows_are(f, want);
	tick(f, 2); /* over: the engine leaves it alone */
	assert_int_equal(rec.n, 2);
	assert_int_equal(srv_rollout_act(f->srv, "r1", FL_ROLLOUT_RESUME,
					 "token:op", T0 + 3, &err),
			 FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "is aborted: cannot resume"));
	assert_int_equal(srv_rollout_act(f->srv, "nope", FL_ROLLOUT_PAUSE,
					 "token:op", T0 + 3, NULL),
			 FL_ENOTFOUND);
}

/*
 * An operator's abort while the engine sends a wave: the abort wins.  It
 * returns only once the wave's commands went out, cancels each of their
 * jobs and tells each device after its update; nothing is sent after it
 * returned, and the engine sends nothing more.
 */
static void test_abort_races_a_wave(void **state)
{
	struct srv_fixture *f = *state;
	char o[4][16], want[200];

	fleet(f, 4);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\":"
		  " [\"100%\"]}");
	order(f, o, 4);
	rec.race = f->srv;
	tick(f, 0);
	pthread_join(rec.racer, NULL);
	assert_true(rec.racing);
	assert_int_equal(rec.abort_rc, 0);
	state_is(f, "aborted");
	snprintf(want, sizeof(want),
		 "%s:cancelled %s:cancelled %s:cancelled "
		 "%s:cancelled",
		 o[0], o[1], o[2], o[3]);
	rows_are(f, want);
	assert_int_equal(rec.n, 8);
	for (size_t i = rec.abort_at; i < rec.n; i++)
		if (strcmp(rec.v[i].type, "cancel"))
			fail_msg("%s to %s after the abort returned",
				 rec.v[i].type, rec.v[i].device);
	for (size_t i = 0; i < 4; i++)
		if (strcmp(rec.v[i].type, "update") ||
		    strcmp(rec.v[4 + i].type, "cancel") ||
		    strcmp(rec.v[4 + i].job, rec.v[i].job))
			fail_msg("send %zu: %s %s, then %s %s", i,
				 rec.v[i].type, rec.v[i].job, rec.v[4 + i].type,
				 rec.v[4 + i].job);
	tick(f, 2);
	assert_int_equal(rec.n, 8);
}

/* Another fleetd holding the lease keeps this one from acting until its
 * lease runs out. */
static void test_lease(void **state)
{
	struct srv_fixture *f = *state;

	fleet(f, 2);
	create(f, GOOD "}");
	assert_int_equal(srv_store_lease_take(f->srv->store, SRV_ROLLOUT_LEASE,
					      "other-fleetd", T0, 15, NULL,
					      NULL),
			 0);
	tick(f, 0);
	tick(f, 14);
	assert_int_equal(rec.n, 0);
	tick(f, 15);
	assert_int_equal(rec.n, 1);
}

/* The broker is away: the decision stands, the command goes out (same
 * job, same command id) once it is back. */
static void test_send_fails(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_rollout_device_list l = {0};
	char o[2][16];

	fleet(f, 2);
	create(f, GOOD "}");
	order(f, o, 2);
	rec.fail = true;
	tick(f, 0);
	tick(f, 1);
	assert_int_equal(rec.n, 0);
	assert_int_equal(jobs_of(f, o[0]), 1);
	rec.fail = false;
	tick(f, 2);
	assert_int_equal(rec.n, 1);
	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", false, 0, &l, NULL),
	    0);
	assert_string_equal(rec.v[0].job, l.v[0].job);
	assert_int_equal(l.v[0].sends, 1);
	assert_string_equal(rec.v[0].id, command_of(f, l.v[0].job));
	srv_rollout_device_list_free(&l);
	tick(f, 3);
	assert_int_equal(rec.n, 1);
	/* never answered, online: sent again after SRV_ROLLOUT_RESEND, same
	 * command id */
	tick(f, 2 + SRV_ROLLOUT_RESEND);
	assert_int_equal(rec.n, 2);
	assert_string_equal(rec.v[1].id, rec.v[0].id);
	assert_string_equal(rec.v[1].job, rec.v[0].job);
	assert_int_equal(jobs_of(f, o[0]), 1);
}

/*
 * fleetd dies right after writing "commanded" and before sending: a child
 * runs the tick and _exits at the send.  The parent reopens the state
 * dir (a restart: nothing in memory survives) and ticks: the same job's
 * same command goes out, nothing is created twice, and a third tick
 * sends nothing more.
 */
static void test_crash_between_decision_and_send(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_rollout_device_list l = {0};
	char o[5][16];
	int status;
	pid_t pid;

	fleet(f, 5);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\": [2,"
		  " \"100%\"], \"soak_s\": 0, \"health_window_s\": 0}");
	order(f, o, 5);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct srv *child = NULL; /* its own connection */

		if (srv_open(f->state, &child, NULL))
			_exit(2);
		child->send_cmd = record;
		rec.die = true;
		srv_rollouts_tick(child, T0);
		_exit(3); /* never reached: the first send ends it */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* restart */
	srv_close(f->srv);
	assert_int_equal(srv_open(f->state, &f->srv, NULL), 0);
	f->srv->send_cmd = record;
	assert_int_equal(
	    srv_store_rollout_devices(f->srv->store, "r1", false, 0, &l, NULL),
	    0);
	assert_string_equal(l.v[0].state, "commanded"); /* written before */
	assert_string_equal(l.v[1].state, "commanded");
	assert_int_equal(l.v[0].sends, 0); /* ... the send that never was */
	tick(f, 1);
	assert_int_equal(rec.n, 2);
	assert_string_equal(rec.v[0].job, l.v[0].job);
	assert_string_equal(rec.v[1].job, l.v[1].job);
	assert_string_equal(rec.v[0].id, command_of(f, l.v[0].job));
	assert_string_equal(rec.v[1].id, command_of(f, l.v[1].job));
	tick(f, 2);
	assert_int_equal(rec.n, 2);
	for (int i = 0; i < 5; i++)
		assert_int_equal(jobs_of(f, o[i]), i < 2 ? 1 : 0);
	srv_rollout_device_list_free(&l);
	/* and once they answer, the rollout goes on as if nothing happened */
	updates(f, o[0]);
	updates(f, o[1]);
	for (int t = 3; t < 200 && rec.n < 5; t++)
		tick(f, t);
	assert_int_equal(rec.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sends(o[i], "update"), 1);
}

/* A manual rollback of a completed rollout takes its devices back. */
static void test_manual_rollback(void **state)
{
	struct srv_fixture *f = *state;
	char o[2][16];

	fleet(f, 2);
	create(f, "{\"id\": \"r1\", \"bundle\": \"fw@1.1.0\", \"waves\":"
		  " [\"100%\"], \"soak_s\": 0, \"health_window_s\": 0}");
	order(f, o, 2);
	tick(f, 0);
	updates(f, o[0]);
	updates(f, o[1]);
	tick(f, 1);
	tick(f, 2);
	tick(f, 3);
	state_is(f, "completed");
	assert_int_equal(srv_rollout_act(f->srv, "r1", FL_ROLLOUT_ROLLBACK,
					 "token:op", T0 + 4, NULL),
			 0);
	tick(f, 5);
	assert_int_equal(sends(o[0], "rollback") + sends(o[1], "rollback"), 2);
	report(f, o[0], "rollback", "succeeded");
	report(f, o[1], "rollback", "failed");
	tick(f, 6);
	tick(f, 7);
	state_is(f, "rolled-back");
	{
		char want[100];

		snprintf(want, sizeof(want),
			 "%s:rolled-back %s:rollback-failed", o[0], o[1]);
		rows_are(f, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_completes, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_trips_in_wave_1, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_rolls_back_updated, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_stops_open_updates,
					    setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_pause_on_trip_and_resume,
					    setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_health_window, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_device_timeout, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_abort_races_a_wave, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_lease, setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_send_fails, setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(
		test_crash_between_decision_and_send, setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_manual_rollback, setup,
					    srv_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
