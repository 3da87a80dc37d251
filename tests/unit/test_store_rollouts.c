/* SPDX-License-Identifier: MIT */
/*
 * server-stub/store_sql_rollouts and _engine: rollouts in a real
 * SQLite file.  Creating one is all or nothing (busy devices named, the
 * one-active-rollout index holds even against raw SQL), commanding a row
 * is possible once, every guard refuses a decision on a state that moved
 * on, operators' moves do what they imply, and the lease goes to one
 * holder at a time.  Time is passed in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "rollout.h"
#include "store.h"
#include "util.h"

#include "store_fixture.h"

#define NOW 1000000

static void enroll(struct fixture *f, const char *dev, const char *group)
{
	struct srv_cert c = {dev, dev, time(NULL), time(NULL) + 60, NULL};

	assert_int_equal(srv_store_device_enroll(f->s, dev, group, "token:t",
						 NULL, false, &c, NULL),
			 0);
}

/* One integer from raw SQL on the store's database. */
static int64_t sql_int(struct fixture *f, const char *q)
{
	return fx_sql_int(f->db, q);
}

/* Raw SQL; 0 when it ran. */
static int sql_run(struct fixture *f, const char *q)
{
	return fx_sql(f->db, q, NULL, 0) < 0;
}

/* Rollout @id over @n devices, two waves (first 1 device). */
static int add_rollout(struct fixture *f, const char *id,
		       const char *const *devs, size_t n, struct srv_strv *busy,
		       struct fl_error *err)
{
	static const char *const stops[] = {"1", "100%"};
	size_t sizes[2] = {1, n - 1}, wave[16];
	struct srv_rollout r = {.id = id,
				.bundle = "b1",
				.version = "1.1.0",
				.spec = "{}",
				.created_by = "token:t",
				.soak_s = 5,
				.health_window_s = 10,
				.device_timeout_s = 60,
				.fail_percent = 10,
				.min_sample = 2,
				.auto_rollback = true,
				.n_waves = 2,
				.wave_stops = stops,
				.wave_sizes = sizes,
				.n_devices = n,
				.devices = devs,
				.device_wave = wave};

	for (size_t i = 0; i < n; i++)
		wave[i] = i ? 1 : 0;
	return srv_store_rollout_add(f->s, &r, NOW, busy, err);
}

static const char *const devs3[] = {"a", "b", "c"};

static void fleet3(struct fixture *f)
{
	enroll(f, "a", "g");
	enroll(f, "b", "g");
	enroll(f, "c", "h");
}

static void test_add_and_read(void **state)
{
	struct fixture *f = *state;
	struct srv_rollout_row r = {0};
	struct srv_rollout_list l = {0};
	struct srv_rollout_wave_list w = {0};
	struct srv_rollout_count_list c = {0};
	struct srv_rollout_device_list d = {0};
	struct srv_rollout_event_list e = {0};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_string_equal(r.state, "running");
	assert_int_equal(r.wave, 0);
	assert_int_equal(r.n_waves, 2);
	assert_int_equal(r.devices, 3);
	assert_int_equal(r.soak_s, 5);
	assert_int_equal(r.min_sample, 2);
	assert_true(r.auto_rollback);
	assert_int_equal(r.created, NOW);
	assert_string_equal(r.created_by, "token:t");
	srv_rollout_row_free(&r);
	assert_int_equal(srv_store_rollout_get(f->s, "r-x", &r, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_rollout_waves(f->s, "r-1", &w, NULL), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.v[1].stop, "100%");
	assert_int_equal(w.v[0].started, NOW);
	assert_int_equal(w.v[1].started, 0);
	assert_int_equal(w.v[1].devices, 2);
	assert_int_equal(srv_store_rollout_counts(f->s, "r-1", &c, NULL), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.v[1].wave, 1);
	assert_string_equal(c.v[1].state, "pending");
	assert_int_equal(c.v[1].n, 2);
	assert_int_equal(
	    srv_store_rollout_devices(f->s, "r-1", false, 0, &d, NULL), 0);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.v[2].device, "c");
	assert_int_equal(d.v[2].pos, 2);
	assert_int_equal(srv_store_rollout_events(f->s, "r-1", 10, &e, NULL),
			 0);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.v[0].kind, "wave-started");
	assert_string_equal(e.v[1].kind, "created");
	assert_string_equal(e.v[1].detail, "3 devices in 2 waves");
	assert_int_equal(srv_store_rollout_list(f->s, true, 0, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	srv_rollout_list_free(&l);
	srv_rollout_wave_list_free(&w);
	srv_rollout_count_list_free(&c);
	srv_rollout_device_list_free(&d);
	srv_rollout_event_list_free(&e);
}

/* Busy devices: named, and nothing of the new rollout is written. */
static void test_busy(void **state)
{
	struct fixture *f = *state;
	static const char *const second[] = {"c", "d", "a"};
	struct srv_job j = {
	    .id = "j-1", .device = "d", .type = "update", .created_by = "t"};
	struct srv_strv busy = {0};
	struct fl_error err = {0};
	struct srv_rollout_row r = {0};

	fleet3(f);
	enroll(f, "d", "g");
	assert_int_equal(add_rollout(f, "r-1", devs3, 2, NULL, NULL), 0);
	assert_int_equal(srv_store_job_add(f->s, &j, NULL), 0);
	assert_int_equal(add_rollout(f, "r-2", second, 3, &busy, &err),
			 FL_ECONFLICT);
	assert_int_equal(busy.n, 2);
	assert_string_equal(busy.v[0], "d (job j-1)");
	assert_string_equal(busy.v[1], "a (rollout r-1)");
	assert_non_null(strstr(err.msg, "2 device(s) busy: d (job j-1), a"));
	assert_int_equal(srv_store_rollout_get(f->s, "r-2", &r, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_devices"
				    " WHERE rollout = 'r-2'"),
			 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_events"
				    " WHERE rollout = 'r-2'"),
			 0);
	srv_strv_free(&busy);
	assert_int_equal(srv_store_rollout_busy(f->s, second, 3, &busy, NULL),
			 0);
	assert_int_equal(busy.n, 2);
	srv_strv_free(&busy);
	/* the same id again */
	fl_error_clear(&err);
	assert_int_equal(add_rollout(f, "r-1", devs3 + 2, 1, NULL, &err),
			 FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "rollout r-1 exists"));
	/* the index itself: a second active row for a device is refused by
	 * the database, whatever writes it */
	assert_int_equal(sql_run(f,
				 "INSERT INTO rollouts (id, bundle, version,"
				 " spec, state, waves, soak_s, health_window_s,"
				 " device_timeout_s, fail_percent, min_sample,"
				 " rate_per_min, concurrency, auto_rollback,"
				 " created, updated) VALUES ('r-raw', 'b', 'v',"
				 " '{}', 'running', 1, 0, 0, 1, 0, 1, 0, 0, 1,"
				 " 0, 0)"),
			 0);
	assert_int_equal(sql_run(f, "INSERT INTO rollout_devices (rollout,"
				    " device, wave, pos, state, updated) VALUES"
				    " ('r-raw', 'a', 0, 0, 'pending', 0)"),
			 1);
	assert_int_equal(
	    sql_run(f, "INSERT INTO rollout_devices (rollout,"
		       " device, wave, pos, state, active, updated)"
		       " VALUES ('r-raw', 'a', 0, 0, 'pending', 0, 0)"),
	    0);
}

static const char *const ota_lane[] = {"update", "rollback", NULL};

static struct srv_job job(const char *id, const char *dev, const char *type,
			  const char *rollout)
{
	return (struct srv_job){.id = id,
				.device = dev,
				.type = type,
				.command = "c-x",
				.rollout = rollout,
				.created_by = "engine",
				.bundle = "b1",
				.to_version = "1.1.0",
				.expires = NOW + 60,
				.lane = ota_lane};
}

/* A device in an active rollout gets update and rollback jobs from it
 * only, until it ends; other lanes (rotate) are not held */
static void test_manual_job_refused(void **state)
{
	static const char *const identity_lane[] = {"rotate", NULL};
	struct fixture *f = *state;
	struct srv_job up = job("j-m1", "a", "update", NULL);
	struct srv_job rb = job("j-m2", "b", "rollback", NULL);
	struct srv_job rot = job("j-m3", "a", "rotate", NULL);
	struct srv_job mine = job("j-r1", "a", "update", "r-1");
	struct fl_error err = {0};

	fleet3(f);
	rot.lane = identity_lane;
	assert_int_equal(add_rollout(f, "r-1", devs3, 2, NULL, NULL), 0);
	assert_int_equal(srv_store_job_add(f->s, &up, &err), FL_ECONFLICT);
	assert_string_equal(
	    err.msg, "device a is in rollout r-1 (running) until it ends");
	assert_int_equal(srv_store_job_add(f->s, &rb, NULL), FL_ECONFLICT);
	assert_int_equal(srv_store_job_add(f->s, &rot, NULL), 0);
	assert_int_equal(srv_store_job_add(f->s, &mine, NULL), 0);
	/* paused still holds it; c is in no rollout */
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_PAUSE,
						  "t", NOW, NULL, NULL),
			 0);
	fl_error_clear(&err);
	assert_int_equal(srv_store_job_add(f->s, &rb, &err), FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "(paused)"));
	up.device = "c";
	assert_int_equal(srv_store_job_add(f->s, &up, NULL), 0);
	/* the rollout ended: free */
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_ABORT,
						  "t", NOW, NULL, NULL),
			 0);
	assert_int_equal(srv_store_job_add(f->s, &rb, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs WHERE rollout"
				    " IS NULL AND type != 'rotate'"),
			 2);
}

static void test_command_once(void **state)
{
	struct fixture *f = *state;
	struct srv_job j1 = job("j-a1", "a", "update", "r-1");
	struct srv_job j2 = job("j-a2", "a", "update", "r-1");
	struct srv_rollout_cmd c = {.device = "a", .job = &j1};
	struct srv_rollout_watch_list w = {0};
	struct srv_rollout_row r = {0};
	struct srv_job_row jr = {0};
	const char *sent[] = {"a"};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(srv_store_rollout_command(f->s, "r-1", &c, 1, NOW + 1,
						   NOW + 1, NULL),
			 0);
	assert_int_equal(c.result, 0);
	assert_int_equal(srv_store_job_get(f->s, "j-a1", &jr, NULL), 0);
	assert_string_equal(jr.rollout, "r-1");
	assert_string_equal(jr.command, "c-x");
	assert_string_equal(jr.state, "queued");
	srv_job_row_free(&jr);
	/* the row is commanded: a second command writes nothing */
	c = (struct srv_rollout_cmd){.device = "a", .job = &j2};
	assert_int_equal(srv_store_rollout_command(f->s, "r-1", &c, 1, NOW + 2,
						   NOW + 2, NULL),
			 0);
	assert_int_equal(c.result, FL_ENOTFOUND);
	assert_int_equal(srv_store_job_get(f->s, "j-a2", &jr, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs WHERE device ="
				    " 'a' AND rollout = 'r-1'"),
			 1);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_int_equal(r.last_command, NOW + 2);
	srv_rollout_row_free(&r);
	/* watched with its job; sent once */
	assert_int_equal(
	    srv_store_rollout_sent(f->s, "r-1", sent, 1, NOW + 3, NULL), 0);
	assert_int_equal(
	    srv_store_rollout_watch(f->s, "r-1", -1, false, &w, NULL), 0);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.v[0].device, "a");
	assert_string_equal(w.v[0].state, "commanded");
	assert_string_equal(w.v[0].job, "j-a1");
	assert_string_equal(w.v[0].command, "c-x");
	assert_string_equal(w.v[0].job_state, "queued");
	assert_false(w.v[0].job_final);
	assert_int_equal(w.v[0].sent, NOW + 3);
	assert_int_equal(w.v[0].sends, 1);
	assert_int_equal(w.v[0].commanded, NOW + 1);
	assert_string_equal(w.v[0].dev_state, "active");
	assert_null(w.v[0].rb_job);
	srv_rollout_watch_list_free(&w);
	assert_int_equal(
	    srv_store_rollout_watch(f->s, "r-1", -1, true, &w, NULL), 0);
	assert_int_equal(w.n, 3);
	srv_rollout_watch_list_free(&w);
}

/* The devices the watch returns for @wave, in order ("a,c"). */
static void watched(struct fixture *f, int64_t wave, const char *want)
{
	struct srv_rollout_watch_list w = {0};
	char got[64] = "";

	assert_int_equal(
	    srv_store_rollout_watch(f->s, "r-1", wave, false, &w, NULL), 0);
	for (size_t i = 0; i < w.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
			 i ? "," : "", w.v[i].device);
	srv_rollout_watch_list_free(&w);
	assert_string_equal(got, want);
}

/* Healthy rows of the watched wave come back only when the health watch
 * has news about their device (the others it would judge "no change"
 * again each tick); other waves' healthy rows never. */
static void test_watch_healthy_news(void **state)
{
	struct fixture *f = *state;
	static const char fine[] =
	    "UPDATE devices SET online = 1, health = 'ok', firmware ="
	    " '1.1.0', state = 'active'";

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(sql_run(f, "UPDATE rollout_devices SET state ="
				    " 'healthy', wave = 1"),
			 0);
	assert_int_equal(sql_run(f, fine), 0);
	watched(f, 1, "");
	assert_int_equal(sql_run(f, "UPDATE devices SET online = 0 WHERE"
				    " id = 'a'"),
			 0);
	assert_int_equal(sql_run(f, "UPDATE devices SET health = 'failed'"
				    " WHERE id = 'c'"),
			 0);
	watched(f, 1, "a,c");
	watched(f, 0, ""); /* another wave: not watched */
	watched(f, -1, "");
	assert_int_equal(sql_run(f, fine), 0);
	assert_int_equal(sql_run(f, "UPDATE devices SET firmware = '1.0.0'"
				    " WHERE id = 'b'"),
			 0);
	watched(f, 1, "b");
	assert_int_equal(sql_run(f, fine), 0);
	assert_int_equal(sql_run(f, "UPDATE devices SET state ="
				    " 'decommissioned' WHERE id = 'c'"),
			 0);
	watched(f, 1, "c");
	assert_int_equal(sql_run(f, fine), 0);
	/* back online after an absence: offline_since to clear */
	assert_int_equal(sql_run(f, "UPDATE rollout_devices SET offline_since"
				    " = 5 WHERE device = 'b'"),
			 0);
	watched(f, 1, "b");
	/* a row still updating is watched whatever its device says */
	assert_int_equal(
	    sql_run(f, "UPDATE rollout_devices SET offline_since = 0"), 0);
	assert_int_equal(sql_run(f, "UPDATE rollout_devices SET state ="
				    " 'updated' WHERE device = 'a'"),
			 0);
	watched(f, 1, "a");
}

static void test_command_refused(void **state)
{
	struct fixture *f = *state;
	struct srv_job other = job("j-o", "b", "update", NULL);
	struct srv_job jb = job("j-b", "b", "update", "r-1");
	struct srv_job jc = job("j-c", "c", "update", "r-1");
	struct srv_job rb = job("j-rb", "c", "rollback", "r-1");
	struct srv_rollout_cmd c[2] = {{.device = "b", .job = &jb},
				       {.device = "c", .job = &jc}};
	struct srv_rollout_device_list d = {0};
	struct fl_error err = {0};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	/* b is busy with a job the rollout did not make (fleetd refuses
	 * those now: one an older fleetd wrote) */
	assert_int_equal(srv_store_job_add(f->s, &other, NULL), FL_ECONFLICT);
	assert_int_equal(sql_run(f,
				 "INSERT INTO jobs (id, device, type, state,"
				 " created, updated, created_by, expires)"
				 " VALUES ('j-o', 'b', 'update', 'queued', 0,"
				 " 0, 't', 9999999999)"),
			 0);
	/* b is busy: skipped with the reason; c goes ahead */
	assert_int_equal(
	    srv_store_rollout_command(f->s, "r-1", c, 2, NOW, NOW, NULL), 0);
	assert_int_equal(c[0].result, FL_ECONFLICT);
	assert_int_equal(c[1].result, 0);
	assert_int_equal(
	    srv_store_rollout_devices(f->s, "r-1", false, 0, &d, NULL), 0);
	assert_string_equal(d.v[1].state, "skipped");
	assert_string_equal(d.v[1].reason, "busy with job j-o");
	assert_null(d.v[1].job);
	assert_string_equal(d.v[2].state, "commanded");
	srv_rollout_device_list_free(&d);
	/* a rollback command needs a rollout rolling back */
	c[0] = (struct srv_rollout_cmd){.device = "c", .job = &rb};
	assert_int_equal(
	    srv_store_rollout_command(f->s, "r-1", c, 1, NOW, NOW, &err),
	    FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "is running, not rolling-back"));
	/* a paused rollout commands nobody; nothing is written */
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_PAUSE,
						  "token:t", NOW, NULL, NULL),
			 0);
	c[0] = (struct srv_rollout_cmd){.device = "a",
					.job = &(struct srv_job){0}};
	{
		struct srv_job ja = job("j-a", "a", "update", "r-1");

		c[0].job = &ja;
		assert_int_equal(srv_store_rollout_command(f->s, "r-1", c, 1,
							   NOW, NOW, NULL),
				 FL_ECONFLICT);
	}
	assert_int_equal(
	    sql_int(f, "SELECT count(*) FROM jobs WHERE id = 'j-a'"), 0);
}

static void test_apply_guarded(void **state)
{
	struct fixture *f = *state;
	struct srv_rollout_change ch[2] = {
	    {.device = "a",
	     .from = "pending",
	     .to = "failed",
	     .reason = "boom",
	     .finished = true,
	     .offline_since = -1,
	     .event = "failed"},
	    {.device = "b",
	     .from = "commanded",
	     .to = "failed",
	     .offline_since = -1},
	};
	struct srv_rollout_device_list d = {0};
	size_t n = 9;

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_rollout_apply(f->s, "r-1", ch, 2, NOW + 5, &n, NULL), 0);
	assert_int_equal(n, 1); /* b is not commanded: untouched */
	assert_int_equal(
	    srv_store_rollout_devices(f->s, "r-1", true, 0, &d, NULL), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].device, "a");
	assert_string_equal(d.v[0].reason, "boom");
	assert_int_equal(d.v[0].finished, NOW + 5);
	srv_rollout_device_list_free(&d);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_events WHERE"
				    " kind = 'failed' AND device = 'a' AND"
				    " wave = 0 AND detail = 'boom'"),
			 1);
	/* offline_since: set, kept, cleared */
	ch[0] = (struct srv_rollout_change){
	    .device = "a", .from = "failed", .offline_since = 77};
	assert_int_equal(
	    srv_store_rollout_apply(f->s, "r-1", ch, 1, NOW, NULL, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT offline_since FROM rollout_devices"
				    " WHERE device = 'a'"),
			 77);
	ch[0].offline_since = -1;
	assert_int_equal(
	    srv_store_rollout_apply(f->s, "r-1", ch, 1, NOW, NULL, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT offline_since FROM rollout_devices"
				    " WHERE device = 'a'"),
			 77);
	ch[0].offline_since = 0;
	assert_int_equal(
	    srv_store_rollout_apply(f->s, "r-1", ch, 1, NOW, NULL, NULL), 0);
	assert_int_equal(sql_int(f, "SELECT offline_since FROM rollout_devices"
				    " WHERE device = 'a'"),
			 0);
}

static void test_step(void **state)
{
	struct fixture *f = *state;
	struct srv_rollout_step next = {.from = "running",
					.wave = 1,
					.soak_until = 0,
					.wave_done = 0,
					.tripped = -1,
					.event = "wave-started",
					.detail = "wave 2",
					.actor = "engine:x"};
	struct srv_rollout_step end = {.from = "running",
				       .to = "completed",
				       .wave = -1,
				       .soak_until = -1,
				       .wave_done = -1,
				       .tripped = -1,
				       .skip_pending = true,
				       .release = true,
				       .event = "completed"};
	struct srv_rollout_row r = {0};
	struct srv_rollout_wave_list w = {0};
	struct fl_error err = {0};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_rollout_step(f->s, "r-1", &next, NOW + 9, NULL), 0);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_int_equal(r.wave, 1);
	assert_string_equal(r.state, "running");
	srv_rollout_row_free(&r);
	assert_int_equal(srv_store_rollout_waves(f->s, "r-1", &w, NULL), 0);
	assert_int_equal(w.v[0].done, NOW + 9);
	assert_int_equal(w.v[1].started, NOW + 9);
	srv_rollout_wave_list_free(&w);
	assert_int_equal(sql_int(f,
				 "SELECT count(*) FROM audit WHERE actor ="
				 " 'engine:x' AND method = 'ENGINE' AND path ="
				 " '/api/v1/rollouts/r-1/wave-started'"),
			 1);
	assert_int_equal(
	    srv_store_rollout_step(f->s, "r-1", &end, NOW + 10, NULL), 0);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_string_equal(r.state, "completed");
	assert_int_equal(r.finished, NOW + 10);
	srv_rollout_row_free(&r);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_devices WHERE"
				    " state = 'skipped' AND active = 0"),
			 3);
	/* the guard: the rollout is no longer running */
	assert_int_equal(
	    srv_store_rollout_step(f->s, "r-1", &next, NOW + 11, &err),
	    FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "is completed, not running"));
	assert_int_equal(srv_store_rollout_step(f->s, "r-x", &next, NOW, NULL),
			 FL_ENOTFOUND);
	/* released: the devices may join a new rollout */
	assert_int_equal(add_rollout(f, "r-2", devs3, 3, NULL, NULL), 0);
}

/* Operators' moves: each legal one and what it implies; illegal ones
 * refused with the state named. */
static void test_actions(void **state)
{
	struct fixture *f = *state;
	struct srv_job ja = job("j-a", "a", "update", "r-1");
	struct srv_rollout_cmd c = {.device = "a", .job = &ja};
	struct srv_rollout_row r = {0};
	struct srv_strv cancelled = {0};
	struct srv_job_row jr = {0};
	struct fl_error err = {0};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(srv_store_rollout_action(f->s, "r-x", FL_ROLLOUT_PAUSE,
						  "t", NOW, NULL, NULL),
			 FL_ENOTFOUND);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1",
						  FL_ROLLOUT_RESUME, "t", NOW,
						  NULL, &err),
			 FL_ECONFLICT);
	assert_non_null(
	    strstr(err.msg, "rollout r-1 is running: cannot resume"));
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_PAUSE,
						  "token:op", NOW, NULL, NULL),
			 0);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_string_equal(r.state, "paused");
	assert_string_equal(r.reason, "paused by token:op");
	srv_rollout_row_free(&r);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_PAUSE,
						  "t", NOW, NULL, NULL),
			 FL_ECONFLICT);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1",
						  FL_ROLLOUT_RESUME, "t", NOW,
						  NULL, NULL),
			 0);
	assert_int_equal(
	    srv_store_rollout_command(f->s, "r-1", &c, 1, NOW, NOW, NULL), 0);
	/* abort: a's open job is cancelled, b and c skipped, all released */
	assert_int_equal(srv_store_rollout_action(f->s, "r-1", FL_ROLLOUT_ABORT,
						  "token:op", NOW + 1,
						  &cancelled, NULL),
			 0);
	assert_int_equal(cancelled.n, 1);
	assert_string_equal(cancelled.v[0], "j-a");
	srv_strv_free(&cancelled);
	assert_int_equal(srv_store_job_get(f->s, "j-a", &jr, NULL), 0);
	assert_string_equal(jr.state, "cancelled");
	assert_true(jr.final);
	assert_non_null(strstr(jr.reason, "rollout r-1 aborted"));
	srv_job_row_free(&jr);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_string_equal(r.state, "aborted");
	assert_string_equal(r.reason, "aborted by token:op");
	assert_int_equal(r.finished, NOW + 1);
	srv_rollout_row_free(&r);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_devices WHERE"
				    " active = 0 AND ((device = 'a' AND state ="
				    " 'cancelled') OR state = 'skipped')"),
			 3);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1",
						  FL_ROLLOUT_ROLLBACK, "t", NOW,
						  NULL, NULL),
			 FL_ECONFLICT);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_events WHERE"
				    " kind IN ('pause', 'resume', 'abort')"),
			 3);
}

/* A rollback of a completed rollout takes its updated devices back,
 * unless another rollout holds one of them. */
static void test_rollback_completed(void **state)
{
	struct fixture *f = *state;
	struct srv_rollout_step end = {.from = "running",
				       .to = "completed",
				       .wave = -1,
				       .soak_until = -1,
				       .wave_done = -1,
				       .tripped = -1,
				       .release = true};
	static const char *const only_a[] = {"a", "x"};
	struct fl_error err = {0};

	fleet3(f);
	enroll(f, "x", "g");
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(sql_run(f, "UPDATE rollout_devices SET state ="
				    " 'healthy' WHERE device IN ('a', 'b')"),
			 0);
	assert_int_equal(srv_store_rollout_step(f->s, "r-1", &end, NOW, NULL),
			 0);
	assert_int_equal(add_rollout(f, "r-2", only_a, 2, NULL, NULL), 0);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1",
						  FL_ROLLOUT_ROLLBACK, "t", NOW,
						  NULL, &err),
			 FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "a (rollout r-2)"));
	assert_int_equal(srv_store_rollout_action(f->s, "r-2", FL_ROLLOUT_ABORT,
						  "t", NOW, NULL, NULL),
			 0);
	assert_int_equal(srv_store_rollout_action(f->s, "r-1",
						  FL_ROLLOUT_ROLLBACK, "t", NOW,
						  NULL, NULL),
			 0);
	assert_int_equal(sql_int(f, "SELECT min(device) FROM"
				    " rollout_devices WHERE rollout = 'r-1' AND"
				    " active = 1") != -1,
			 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM rollout_devices WHERE"
				    " rollout = 'r-1' AND active = 1"),
			 2);
}

static void test_lease(void **state)
{
	struct fixture *f = *state;
	char *holder = NULL;

	assert_int_equal(
	    srv_store_lease_take(f->s, "rollouts", "A", NOW, 15, NULL, NULL),
	    0);
	assert_int_equal(srv_store_lease_take(f->s, "rollouts", "A", NOW + 10,
					      15, NULL, NULL),
			 0); /* renewed to NOW + 25 */
	assert_int_equal(srv_store_lease_take(f->s, "rollouts", "B", NOW + 20,
					      15, &holder, NULL),
			 FL_ECONFLICT);
	assert_string_equal(holder, "A");
	free(holder);
	assert_int_equal(srv_store_lease_take(f->s, "rollouts", "B", NOW + 25,
					      15, NULL, NULL),
			 0);
	assert_int_equal(srv_store_lease_take(f->s, "rollouts", "A", NOW + 26,
					      15, NULL, NULL),
			 FL_ECONFLICT);
	assert_int_equal(
	    srv_store_lease_take(f->s, "other", "A", NOW + 26, 15, NULL, NULL),
	    0);
}

/*
 * Fencing (issue 14): a fleetd whose lease another took (it was paused
 * past its TTL) has its engine decisions refused, nothing written; the
 * new holder's go through.  A lease handed back (TTL 0) is free at once.
 */
static void test_fence(void **state)
{
	struct fixture *f = *state;
	struct srv_rollout_step next = {.from = "running",
					.wave = 1,
					.soak_until = 0,
					.wave_done = 0,
					.tripped = -1,
					.event = "wave-started",
					.actor = "engine:x"};
	struct srv_store *b = NULL;
	struct srv_rollout_row r = {0};
	struct fl_error err = {0};

	fleet3(f);
	assert_int_equal(add_rollout(f, "r-1", devs3, 3, NULL, NULL), 0);
	assert_int_equal(srv_store_open(f->db, &b, NULL), 0);
	assert_int_equal(
	    srv_store_lease_take(f->s, "engine", "A", NOW, 15, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_lease_take(b, "engine", "B", NOW + 20, 15, NULL, NULL),
	    0);
	assert_int_equal(
	    srv_store_rollout_step(f->s, "r-1", &next, NOW + 21, &err),
	    FL_ECONFLICT);
	assert_non_null(strstr(err.msg, "is now B's"));
	assert_int_equal(srv_store_rollout_get(b, "r-1", &r, NULL), 0);
	assert_int_equal(r.wave, 0);
	srv_rollout_row_free(&r);
	assert_int_equal(
	    srv_store_rollout_step(b, "r-1", &next, NOW + 21, NULL), 0);
	assert_int_equal(srv_store_rollout_get(f->s, "r-1", &r, NULL), 0);
	assert_int_equal(r.wave, 1);
	srv_rollout_row_free(&r);
	/* B hands it back; A takes it at once, and B's writes stop */
	assert_int_equal(
	    srv_store_lease_take(b, "engine", "B", NOW + 22, 0, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_lease_take(f->s, "engine", "A", NOW + 22, 15, NULL, NULL),
	    0);
	next.wave = 2;
	assert_int_equal(
	    srv_store_rollout_step(b, "r-1", &next, NOW + 23, NULL),
	    FL_ECONFLICT);
	srv_store_close(b);
}

static void test_candidates(void **state)
{
	struct fixture *f = *state;
	struct srv_device_list l = {0};
	struct srv_label_list set = {0};
	struct srv_label lab[2] = {{"site", "x"}, {"hardware", "rpi"}};
	static const char *const ids[] = {"c", "nosuch", "a"};

	fleet3(f);
	set.n = 2;
	set.v = lab;
	assert_int_equal(srv_store_device_labels(f->s, "a", &set, NULL, NULL),
			 0);
	assert_int_equal(
	    srv_store_device_decommission(f->s, "b", NULL, NULL, NULL), 0);
	assert_int_equal(
	    srv_store_rollout_candidates(f->s, NULL, NULL, 0, &l, NULL), 0);
	assert_int_equal(l.n, 2); /* a and c: b is decommissioned */
	assert_string_equal(l.v[0].id, "a");
	assert_int_equal(l.v[0].labels.n, 2);
	assert_string_equal(l.v[0].labels.v[0].key, "hardware");
	assert_string_equal(l.v[0].labels.v[0].value, "rpi");
	assert_string_equal(l.v[0].labels.v[1].key, "site");
	assert_string_equal(l.v[0].group, "g");
	srv_device_list_free(&l);
	assert_int_equal(
	    srv_store_rollout_candidates(f->s, "h", NULL, 0, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "c");
	srv_device_list_free(&l);
	assert_int_equal(
	    srv_store_rollout_candidates(f->s, NULL, ids, 3, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, "c");
	assert_string_equal(l.v[1].id, "a");
	srv_device_list_free(&l);
	{
		static const char *const gone[] = {"b"};

		assert_int_equal(
		    srv_store_rollout_candidates(f->s, NULL, gone, 1, &l, NULL),
		    0);
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0].state, "decommissioned");
		srv_device_list_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_add_and_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch_healthy_news, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_manual_job_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_command_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_command_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_apply_guarded, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_step, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_completed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_candidates, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
