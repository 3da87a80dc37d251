/* SPDX-License-Identifier: MIT */
/*
 * Issue 17 on the device, end to end with a real mosquitto: a final job
 * event is published again, the same event with the same seq, until
 * fleetd's "ack" for it arrives (here the observer publishes the ack on
 * fleet/dev-1/cmd as fleetd would), also after a restart, and never
 * after the ack; an ack for another seq or job, or a malformed one,
 * confirms nothing; an ack is no command (not in commands.json, no
 * event); progress events queued while offline are coalesced to the
 * newest per job, a final one drops its job's, and the seq is taken
 * when the event is sent.
 *
 * A final job event without fleetd: an "update" with bad arguments
 * fails at "queued" with its "job" (docs/protocol.md).  A barrier: a
 * command of an unknown type, answered "failed" in order after what
 * was sent before it.  After a broker crash, the events the lost
 * connection left unacknowledged go out before newer ones.
 */
#include "agent_fixture.h"

#include <jansson.h>

#include "agent.h"
#include "agent_config.h"
#include "cmd.h"
#include "journal.h"
#include "json.h"

#define EVENTS "fleet/dev-1/events"
#define CMD "fleet/dev-1/cmd"
#define STATUS "fleet/dev-1/status"
#define UPDATE_J1                                                              \
	"{\"id\":\"c-1\",\"type\":\"update\",\"args\":{\"job\":\"j-1\"}}"

struct ack {
	struct afx *f;
	struct agent_config *cfg;
	struct agent *a;
	struct afx_observer obs;
	char *state;
	int barriers;
};

static void ack_init(struct ack *c, struct afx *f)
{
	struct fl_error err = {0};
	char *text;

	c->f = f;
	c->state = afx_path(f, "state");
	assert_int_equal(fl_mkdir_p(c->state, 0700, &err), 0);
	afx_copy_file(f, "dev-1.key", c->state, "key.pem", 0600);
	afx_copy_file(f, "dev-1.pem", c->state, "cert.pem", 0644);
	afx_copy_file(f, "issuing.pem", c->state, "chain.pem", 0644);
	afx_copy_file(f, "root.pem", c->state, "ca.pem", 0644);
	text = fl_xasprintf("[device]\nid = dev-1\nstate_dir = state\n"
			    "[server]\nurl = https://127.0.0.1:%d\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "reconnect_min = 1\nreconnect_max = 2\n"
			    "event_retry = 1s\n"
			    "[identity]\nauto_renew = no\n",
			    afx_free_port(), f->port);
	assert_int_equal(agent_config_parse(text, f->dir, NULL, &c->cfg, &err),
			 0);
	free(text);
	afx_observer_start(f, &c->obs, "fleet/dev-1/+");
}

static void ack_release(struct ack *c)
{
	agent_free(c->a);
	agent_config_free(c->cfg);
	afx_observer_stop(&c->obs);
	free(c->state);
}

/* Step agent and observer until @pred holds or @ms pass. */
static bool run_for(struct ack *c, bool (*pred)(struct ack *), int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (!(pred && pred(c)) && fl_now_ms() < end) {
		if (c->a)
			agent_step(c->a, 20, NULL);
		agent_mqtt_step(c->obs.m, 5);
	}
	return pred && pred(c);
}

static size_t statuses, want_statuses;

static bool have_status(struct ack *c)
{
	statuses = 0;
	for (size_t i = 0; i < c->obs.n; i++)
		statuses += fl_streq(c->obs.msgs[i].topic, STATUS);
	return statuses >= want_statuses;
}

/* Step until the agent is online and subscribed: its status follows
 * its SUBSCRIBE on the same connection. */
static void wait_online(struct ack *c)
{
	have_status(c);
	want_statuses = statuses + 1;
	assert_true(run_for(c, have_status, 10000));
	assert_true(agent_online(c->a));
}

static void start_agent(struct ack *c)
{
	assert_int_equal(agent_new(c->cfg, &c->a, NULL), 0);
	wait_online(c);
}

/* A crash: no clean stop (the broker publishes the will). */
static void crash_agent(struct ack *c)
{
	agent_free(c->a);
	c->a = NULL;
}

static void send_cmd(struct ack *c, const char *payload)
{
	assert_int_equal(agent_mqtt_publish(c->obs.m, CMD, payload,
					    strlen(payload), 2, false, NULL),
			 0);
}

static void send_ack(struct ack *c, const char *id, const char *args)
{
	char *p = fl_xasprintf("{\"id\":\"%s\",\"type\":\"ack\",\"args\":%s,"
			       "\"ts\":\"2026-01-01T00:00:00Z\"}",
			       id, args);

	send_cmd(c, p);
	free(p);
}

static void ack_for(struct ack *c, long long seq, const char *job)
{
	char id[32], *args;

	snprintf(id, sizeof(id), "ack-%lld", seq);
	args = fl_xasprintf(
	    "{\"seq\":%lld,\"job\":\"%s\",\"state\":\"failed\"}", seq, job);
	send_ack(c, id, args);
	free(args);
}

/* The events seen, parsed; @k-th (0-based) or NULL. */
static json_t *event(struct ack *c, size_t k)
{
	json_t *j = NULL;

	for (size_t i = 0; i < c->obs.n; i++)
		if (fl_streq(c->obs.msgs[i].topic, EVENTS) && k-- == 0) {
			const char *p = c->obs.msgs[i].payload;

			assert_int_equal(
			    fl_json_parse(p, strlen(p), 65536, &j, NULL), 0);
			return j;
		}
	return NULL;
}

/* How many events carry @seq (and @job). */
static size_t copies(struct ack *c, long long seq, const char *job)
{
	size_t n = 0;
	json_t *e;

	for (size_t k = 0; (e = event(c, k)); k++) {
		n +=
		    json_integer_value(json_object_get(e, "seq")) == seq &&
		    fl_streq(json_string_value(json_object_get(e, "job")), job);
		json_decref(e);
	}
	return n;
}

static long long want_seq;
static const char *want_job;
static size_t want_copies;

static bool have_copies(struct ack *c)
{
	return copies(c, want_seq, want_job) >= want_copies;
}

static bool wait_copies(struct ack *c, long long seq, const char *job, size_t n,
			int ms)
{
	want_seq = seq;
	want_job = job;
	want_copies = n;
	return run_for(c, have_copies, ms);
}

static char barrier_id[32];

static bool have_barrier(struct ack *c)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "\"cmd\":\"%s\"", barrier_id);
	return afx_find(&c->obs, EVENTS, needle) >= 0;
}

/* Everything sent to the agent before this has been handled, and what
 * it published before has arrived. */
static void barrier(struct ack *c)
{
	char *p;

	snprintf(barrier_id, sizeof(barrier_id), "b-%d", ++c->barriers);
	p = fl_xasprintf("{\"id\":\"%s\",\"type\":\"barrier\"}", barrier_id);
	send_cmd(c, p);
	free(p);
	assert_true(run_for(c, have_barrier, 10000));
}

/* Send the update that fails with job j-1; its event's seq. */
static long long final_j1(struct ack *c)
{
	json_t *e;
	long long seq;

	send_cmd(c, UPDATE_J1);
	barrier(c);
	e = event(c, 0);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "job")),
			    "j-1");
	assert_string_equal(json_string_value(json_object_get(e, "state")),
			    "failed");
	seq = (long long)json_integer_value(json_object_get(e, "seq"));
	json_decref(e);
	return seq;
}

/* (a) Re-published, identical, until the ack; after a restart too;
 * never after the ack (not on the backoff, not at a connect, not after
 * a restart). */
static void test_final_until_ack(void **state)
{
	struct ack c = {0};
	json_t *first, *e;
	long long seq;
	uint64_t used;
	size_t n;

	ack_init(&c, *state);
	start_agent(&c);
	seq = final_j1(&c);
	first = event(&c, 0);
	/* 1 s doubling with jitter: 3 copies within 0.5+1+2 s */
	assert_true(wait_copies(&c, seq, "j-1", 3, 10000));
	for (size_t k = 0; (e = event(&c, k)); k++) {
		if (json_integer_value(json_object_get(e, "seq")) == seq)
			assert_true(json_equal(e, first));
		json_decref(e);
	}
	assert_int_equal(agent_unconfirmed_events(c.a), 1);
	used = agent_seq(c.a);
	/* a restart: the same event again once connected */
	crash_agent(&c);
	n = copies(&c, seq, "j-1");
	start_agent(&c);
	assert_true(wait_copies(&c, seq, "j-1", n + 1, 10000));
	assert_int_equal(agent_unconfirmed_events(c.a), 1);
	/* the ack, as fleetd sends it */
	ack_for(&c, seq, "j-1");
	barrier(&c);
	assert_int_equal(agent_unconfirmed_events(c.a), 0);
	assert_int_equal(agent_seq(c.a), used + c.barriers - 1);
	/* never again: longer than the backoff's next delay (<= 4 s) */
	n = copies(&c, seq, "j-1");
	run_for(&c, NULL, 4500);
	assert_int_equal(copies(&c, seq, "j-1"), n);
	crash_agent(&c);
	start_agent(&c);
	barrier(&c);
	run_for(&c, NULL, 1500);
	assert_int_equal(copies(&c, seq, "j-1"), n);
	assert_int_equal(agent_unconfirmed_events(c.a), 0);
	json_decref(first);
	ack_release(&c);
}

static bool inbox_busy(struct ack *c)
{
	return agent_work_due(c->a);
}

/* Drive the agent as fleet-sim's loop does: agent_service on its
 * socket's events, never agent_step. */
static void service_for(struct ack *c, bool (*pred)(struct ack *), int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (!(pred && pred(c)) && fl_now_ms() < end) {
		short ev = 0;
		int fd = agent_poll_fd(c->a, &ev);
		struct pollfd p = {fd, ev, 0};

		if (fd >= 0 && poll(&p, 1, 20) < 0)
			p.revents = 0;
		agent_service(c->a, p.revents, true);
		agent_mqtt_step(c->obs.m, 5);
	}
}

/* (a2) An ack waiting in the inbox for agent_step holds the resends
 * back: agent_service alone (fleet-sim's loop, a device waiting for a
 * worker) does not send the event again; agent_step applies the ack. */
static void test_no_resend_over_an_ack(void **state)
{
	struct ack c = {0};
	long long seq;
	size_t n;

	ack_init(&c, *state);
	start_agent(&c);
	seq = final_j1(&c);
	ack_for(&c, seq, "j-1");
	service_for(&c, inbox_busy, 5000);
	assert_true(agent_work_due(c.a));
	n = copies(&c, seq, "j-1");
	/* 1 s retries with jitter: two or more within 3.5 s, without it */
	service_for(&c, NULL, 3500);
	assert_int_equal(copies(&c, seq, "j-1"), n);
	assert_int_equal(agent_unconfirmed_events(c.a), 1);
	barrier(&c);
	assert_int_equal(agent_unconfirmed_events(c.a), 0);
	ack_release(&c);
}

/* (b) Acks for another seq or job, or malformed ones, confirm nothing
 * (the event keeps coming); the right one does. */
static void test_wrong_ack(void **state)
{
	struct ack c = {0};
	char *args;
	long long seq;
	size_t n;

	ack_init(&c, *state);
	start_agent(&c);
	seq = final_j1(&c);
	ack_for(&c, seq + 1, "j-1");
	ack_for(&c, seq - 1, "j-1");
	ack_for(&c, seq, "j-2");
	ack_for(&c, seq, "j-10");
	args = fl_xasprintf("{\"seq\":\"%lld\",\"job\":\"j-1\"}", seq);
	send_ack(&c, "ack-x1", args); /* seq a string */
	free(args);
	args = fl_xasprintf("{\"seq\":%lld}", seq);
	send_ack(&c, "ack-x2", args); /* no job */
	free(args);
	args = fl_xasprintf("{\"seq\":%lld,\"job\":\"j/1\"}", seq);
	send_ack(&c, "ack-x3", args); /* bad job */
	free(args);
	args = fl_xasprintf("{\"seq\":%lld.5,\"job\":\"j-1\"}", seq);
	send_ack(&c, "ack-x4", args); /* not an integer */
	free(args);
	send_ack(&c, "ack-x5", "{}");
	barrier(&c);
	assert_int_equal(agent_unconfirmed_events(c.a), 1);
	n = copies(&c, seq, "j-1");
	assert_true(wait_copies(&c, seq, "j-1", n + 1, 10000));
	/* positive control */
	ack_for(&c, seq, "j-1");
	barrier(&c);
	assert_int_equal(agent_unconfirmed_events(c.a), 0);
	ack_release(&c);
}

/* (c) An ack is not a command: not in commands.json, no event. */
static void test_ack_not_a_command(void **state)
{
	struct ack c = {0};
	struct agent_cmd_log *log = NULL;
	char *path;
	json_t *e;
	long long seq;

	ack_init(&c, *state);
	start_agent(&c);
	seq = final_j1(&c);
	ack_for(&c, seq + 5, "j-1"); /* ignored */
	ack_for(&c, seq, "j-1");     /* confirms */
	ack_for(&c, seq, "j-1");     /* a repeat: ignored */
	barrier(&c);
	assert_int_equal(agent_unconfirmed_events(c.a), 0);
	for (size_t k = 0; (e = event(&c, k)); k++) {
		const char *cmd = json_string_value(json_object_get(e, "cmd"));

		assert_false(cmd && fl_startswith(cmd, "ack-"));
		assert_string_not_equal(
		    json_string_value(json_object_get(e, "type")), "ack");
		json_decref(e);
	}
	/* the update, the barriers and nothing else */
	path = fl_path_join(c.state, AGENT_CMD_LOG_FILE);
	assert_int_equal(agent_cmd_log_open(path, 64, &log, NULL), 0);
	assert_int_equal(agent_cmd_log_count(log), 1 + (size_t)c.barriers);
	assert_int_equal(agent_cmd_log_get(log, "c-1", NULL, NULL), 0);
	{
		char id[32];

		snprintf(id, sizeof(id), "ack-%lld", seq);
		assert_int_equal(agent_cmd_log_get(log, id, NULL, NULL),
				 FL_ENOTFOUND);
		snprintf(id, sizeof(id), "ack-%lld", seq + 5);
		assert_int_equal(agent_cmd_log_get(log, id, NULL, NULL),
				 FL_ENOTFOUND);
	}
	agent_cmd_log_free(log);
	free(path);
	ack_release(&c);
}

static void publish(struct ack *c, const char *job, const char *state,
		    int bytes)
{
	json_t *f = json_pack("{s:s, s:i}", "job", job, "bytes", bytes);

	assert_int_equal(
	    agent_publish_event(c->a, "c-9", "update", state, f, NULL, NULL),
	    0);
	json_decref(f);
}

/* (d) Offline: 50 progress events of j-9 and 50 of j-8 then j-8's
 * final; after connecting only j-9's newest progress and j-8's final
 * go out, and the progress took its seq when it was sent. */
static void test_progress_coalesced(void **state)
{
	struct ack c = {0};
	json_t *e, *p9 = NULL, *f8 = NULL;
	size_t n = 0;

	ack_init(&c, *state);
	assert_int_equal(agent_new(c.cfg, &c.a, NULL), 0);
	assert_false(agent_online(c.a));
	for (int i = 1; i <= 50; i++) {
		publish(&c, "j-9", i < 25 ? "downloading" : "verifying", i);
		publish(&c, "j-8", "downloading", i);
	}
	assert_int_equal(agent_seq(c.a), 0); /* no seq taken yet */
	publish(&c, "j-8", "failed", 50);
	assert_int_equal(agent_seq(c.a), 1);
	wait_online(&c);
	barrier(&c);
	for (size_t k = 0; (e = event(&c, k)); k++, n++) {
		const char *job = json_string_value(json_object_get(e, "job"));

		if (fl_streq(job, "j-9") && !p9)
			p9 = json_incref(e);
		else if (fl_streq(job, "j-8") && !f8)
			f8 = json_incref(e);
		else
			assert_string_equal(
			    json_string_value(json_object_get(e, "cmd")),
			    barrier_id);
		json_decref(e);
	}
	assert_int_equal(n, 3);
	assert_non_null(p9);
	assert_non_null(f8);
	assert_string_equal(json_string_value(json_object_get(p9, "state")),
			    "verifying");
	assert_int_equal(json_integer_value(json_object_get(p9, "bytes")), 50);
	assert_int_equal(json_integer_value(json_object_get(p9, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(f8, "state")),
			    "failed");
	assert_int_equal(json_integer_value(json_object_get(f8, "seq")), 1);
	assert_int_equal(agent_seq(c.a), 3);
	json_decref(p9);
	json_decref(f8);
	ack_release(&c);
}

/* Kill the (stopped) broker with -9 and start it again on its port; the
 * observer reconnects and subscribes again (a new broker: no session). */
static void broker_crash(struct ack *c)
{
	int connects = c->obs.connects;
	int64_t end = fl_now_ms() + 10000;

	kill(c->f->broker, SIGKILL);
	waitpid(c->f->broker, NULL, 0);
	afx_broker_start(c->f, "server");
	while (c->obs.connects == connects && fl_now_ms() < end)
		agent_mqtt_step(c->obs.m, 20);
	assert_int_not_equal(c->obs.connects, connects);
	assert_int_equal(
	    agent_mqtt_subscribe(c->obs.m, "fleet/dev-1/+", 2, NULL), 0);
	afx_pump(c->obs.m, NULL, 300);
}

/* A rollback job j-7 the journal says is rebooting: the OTA feature
 * queues its state again at every connect, from the connect callback
 * (without [boot] the job is never carried on). */
static void journal_j7(struct ack *c)
{
	char *path = fl_path_join(c->state, AGENT_JOURNAL_FILE);

	assert_int_equal(
	    fl_write_atomic_str(
		path,
		"{\"format\": 1, \"floor\": 1, \"slots\": {"
		"\"a\": {\"version\": \"1.0.0\", \"security_version\": null,"
		" \"good\": true}, \"b\": {\"version\": null,"
		" \"security_version\": null, \"good\": false}},"
		" \"job\": {\"id\": \"j-7\", \"cmd\": \"c-7\","
		" \"type\": \"rollback\", \"state\": \"rebooting\","
		" \"bundle\": null, \"security_version\": null,"
		" \"from_slot\": \"b\", \"target_slot\": \"a\","
		" \"from_version\": null, \"to_version\": null, \"bytes\": 0,"
		" \"fetched\": 0, \"attempts\": 0, \"partial_boot\": null,"
		" \"reboot_from\": null, \"stage\": null, \"reason\": null,"
		" \"started\": \"2026-01-01T00:00:00Z\","
		" \"updated\": \"2026-01-01T00:00:00Z\"}}\n",
		0600, NULL),
	    0);
	free(path);
}

/* (e) What a lost connection left unacknowledged goes out again before
 * anything newer: a progress event of j-5 sent while the broker hangs
 * (never acknowledged), the connection lost, j-5's final queued
 * offline, the broker killed and started again.  At the reconnect the
 * events arrive in seq order, up to j-7's state queued at the connect.
 * Sent from the connect callback, the final and j-7's state overtook
 * the progress and fleetd refused it as stale (t4008). */
static void test_resent_before_newer(void **state)
{
	struct ack c = {0};
	long long seq, prev = 0, s;
	size_t k;
	json_t *e;

	ack_init(&c, *state);
	journal_j7(&c);
	start_agent(&c);
	kill(c.f->broker, SIGSTOP);
	publish(&c, "j-5", "downloading", 1);
	seq = (long long)agent_seq(c.a);
	agent_flap(c.a);
	assert_false(agent_online(c.a));
	publish(&c, "j-5", "failed", 1);
	broker_crash(&c);
	afx_obs_clear(&c.obs);
	/* j-5's final, then j-7's state, which takes its seq when sent */
	assert_true(wait_copies(&c, seq + 2, "j-7", 1, 10000));
	for (k = 0; (e = event(&c, k)); k++) {
		s = (long long)json_integer_value(json_object_get(e, "seq"));
		json_decref(e);
		assert_true(s > prev);
		prev = s;
		if (s == seq + 2)
			break;
	}
	assert_int_equal(copies(&c, seq, "j-5"), 1);
	ack_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_final_until_ack, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_resend_over_an_ack,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_ack, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_ack_not_a_command, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_progress_coalesced, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_resent_before_newer, afx_setup,
					    afx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
