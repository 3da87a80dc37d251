/* SPDX-License-Identifier: MIT */
/*
 * agent/agent: the core against a real mosquitto (fleetd is not
 * running, so every HTTPS call fails as "unreachable"): presence and
 * status on connect, commands through the table, unknown types and bad
 * payloads, idempotent repeats with the stored event, the persisted seq
 * across restarts, a rotation and a renewal that fail early and keep the
 * old certificate, commands a restart interrupted, a pending
 * confirmation, and the clean stop with offline presence.
 */
#include "agent_fixture.h"

#include <jansson.h>

#include "agent.h"
#include "agent_config.h"
#include "identity.h"
#include "json.h"

#define EVENTS "fleet/dev-1/events"
#define CMD "fleet/dev-1/cmd"

struct core {
	struct afx *f;
	struct agent_config *cfg;
	struct agent *a;
	struct afx_observer obs;
	char *state;
};

static void core_init(struct core *c, struct afx *f)
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
			    "timeout = 2s\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "reconnect_min = 1\nreconnect_max = 2\n"
			    "[identity]\nrotate_timeout = 5s\n",
			    afx_free_port(), f->port);
	assert_int_equal(agent_config_parse(text, f->dir, NULL, &c->cfg, &err),
			 0);
	free(text);
	afx_observer_start(f, &c->obs, "fleet/#");
}

static void core_release(struct core *c)
{
	agent_free(c->a);
	agent_config_free(c->cfg);
	afx_observer_stop(&c->obs);
	free(c->state);
}

/* Step agent and observer until @pred holds or 10 s pass. */
static bool run_until(struct core *c, bool (*pred)(struct core *))
{
	int64_t end = fl_now_ms() + 10000;

	while (!pred(c) && fl_now_ms() < end) {
		if (c->a)
			agent_step(c->a, 20, NULL);
		agent_mqtt_step(c->obs.m, 5);
	}
	return pred(c);
}

static bool is_online(struct core *c)
{
	return c->a && agent_online(c->a);
}

static void start_agent(struct core *c)
{
	struct fl_error err = {0};

	assert_int_equal(agent_new(c->cfg, &c->a, &err), 0);
	assert_true(run_until(c, is_online));
}

static void stop_agent(struct core *c)
{
	assert_int_equal(agent_stop(c->a, 3000), 0);
	agent_free(c->a);
	c->a = NULL;
}

static size_t count(struct core *c, const char *topic)
{
	size_t n = 0;

	for (size_t i = 0; i < c->obs.n; i++)
		n += fl_streq(c->obs.msgs[i].topic, topic);
	return n;
}

static size_t want_events;
static bool have_events(struct core *c)
{
	return count(c, EVENTS) >= want_events;
}

/* The @k-th (0-based) event seen, parsed. */
static json_t *event(struct core *c, size_t k)
{
	json_t *j = NULL;

	for (size_t i = 0; i < c->obs.n; i++)
		if (fl_streq(c->obs.msgs[i].topic, EVENTS) && k-- == 0) {
			const char *p = c->obs.msgs[i].payload;

			assert_int_equal(
			    fl_json_parse(p, strlen(p), 65536, &j, NULL), 0);
			return j;
		}
	fail_msg("no such event");
	return NULL;
}

static void send_cmd(struct core *c, const char *payload)
{
	struct fl_error err = {0};

	assert_int_equal(agent_mqtt_publish(c->obs.m, CMD, payload,
					    strlen(payload), 2, false, &err),
			 0);
}

/* Send @payload and wait for the next event; returns it. */
static json_t *command(struct core *c, const char *payload)
{
	want_events = count(c, EVENTS) + 1;
	send_cmd(c, payload);
	assert_true(run_until(c, have_events));
	return event(c, want_events - 1);
}

static void assert_event(json_t *e, int64_t seq, const char *cmd,
			 const char *state, const char *stage)
{
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), seq);
	if (cmd)
		assert_string_equal(
		    json_string_value(json_object_get(e, "cmd")), cmd);
	else
		assert_true(json_is_null(json_object_get(e, "cmd")));
	assert_string_equal(json_string_value(json_object_get(e, "state")),
			    state);
	if (stage)
		assert_string_equal(
		    json_string_value(json_object_get(e, "stage")), stage);
	assert_non_null(json_object_get(e, "ts"));
}

static bool have_presence_and_status(struct core *c)
{
	return afx_find(&c->obs, "fleet/dev-1/presence", "\"online\":true") >=
		   0 &&
	       afx_find(&c->obs, "fleet/dev-1/status", NULL) >= 0;
}

static bool have_offline(struct core *c)
{
	return afx_find(&c->obs, "fleet/dev-1/presence", "\"online\":false") >=
	       0;
}

static void test_presence_commands_and_seq(void **state)
{
	struct core c = {0};
	char serial[FL_PKI_SERIAL_HEX_MAX];
	json_t *e, *again;

	core_init(&c, *state);
	start_agent(&c);
	fl_strlcpy(serial, agent_cert(c.a)->serial, sizeof(serial));
	assert_true(run_until(&c, have_presence_and_status));
	assert_true(afx_find(&c.obs, "fleet/dev-1/status", serial) >= 0);
	/* unknown type: a failed event */
	e = command(&c, "{\"id\":\"c1\",\"type\":\"frobnicate\"}");
	assert_event(e, 1, "c1", "failed", "dispatch");
	/* a repeat gets the stored event, not a new one */
	again = command(&c, "{\"id\":\"c1\",\"type\":\"frobnicate\"}");
	assert_true(json_equal(e, again));
	json_decref(e);
	json_decref(again);
	/* bad payloads are dropped without an event */
	send_cmd(&c, "garbage");
	send_cmd(&c, "{\"type\":\"rotate\"}");
	e = command(&c, "{\"id\":\"c2\",\"type\":\"rotate\"}");
	/* fleetd is not there: rotation fails before touching anything */
	assert_event(e, 2, "c2", "failed", "reenroll");
	assert_non_null(json_object_get(e, "reason"));
	json_decref(e);
	assert_true(agent_online(c.a));
	assert_string_equal(agent_cert(c.a)->serial, serial);
	assert_int_equal(agent_identity_check(c.state, "dev-1", NULL, NULL), 0);
	assert_int_equal(agent_seq(c.a), 2);
	/* clean stop: offline presence */
	stop_agent(&c);
	assert_true(run_until(&c, have_offline));
	/* restart: the seq and the command log survive */
	start_agent(&c);
	e = command(&c, "{\"id\":\"c1\",\"type\":\"frobnicate\"}");
	assert_event(e, 1, "c1", "failed", "dispatch");
	json_decref(e);
	e = command(&c, "{\"id\":\"c3\",\"type\":\"reboot-later\"}");
	assert_event(e, 3, "c3", "failed", "dispatch");
	json_decref(e);
	/* renewal: fails like the rotation, with a renewal event */
	want_events = count(&c, EVENTS) + 1;
	assert_false(agent_work_due(c.a)); /* fleet-sim: stays on its loop */
	agent_renew_soon(c.a);
	assert_true(agent_work_due(c.a)); /* ... until a renewal is due */
	assert_true(run_until(&c, have_events));
	e = event(&c, want_events - 1);
	assert_event(e, 4, NULL, "failed", "reenroll");
	assert_string_equal(json_string_value(json_object_get(e, "trigger")),
			    "renewal");
	json_decref(e);
	assert_false(agent_work_due(c.a)); /* the retry waits its backoff */
	assert_true(agent_renew_at(c.a) > 0);
	stop_agent(&c);
	core_release(&c);
}

static bool have_restart_event(struct core *c)
{
	return afx_find(&c->obs, EVENTS, "\"restart\"") >= 0;
}

static void test_interrupted_and_pending(void **state)
{
	struct core c = {0};
	struct fl_error err = {0};
	char *log, *confirm, *text;
	json_t *e, *st = NULL;

	core_init(&c, *state);
	log = fl_path_join(c.state, AGENT_CMD_LOG_FILE);
	confirm = fl_path_join(c.state, AGENT_CONFIRM_FILE);
	assert_int_equal(
	    fl_write_atomic_str(log,
				"{\"commands\":[{\"id\":\"c9\",\"type\":"
				"\"rotate\",\"state\":\"running\"}]}",
				0600, &err),
	    0);
	/* a confirmation owed for some other certificate is stale */
	assert_int_equal(fl_write_atomic_str(confirm,
					     "{\"serial\":\"0a\",\"cmd\":null}",
					     0600, &err),
			 0);
	start_agent(&c);
	assert_true(run_until(&c, have_restart_event));
	e = event(&c, 0);
	assert_event(e, 1, "c9", "failed", "restart");
	json_decref(e);
	assert_false(fl_path_exists(confirm));
	stop_agent(&c);
	/* one owed for the current certificate stays pending while fleetd
	 * cannot be reached, and blocks a new rotation */
	{
		struct fl_pki_cert_info info;

		assert_int_equal(
		    agent_identity_check(c.state, "dev-1", &info, &err), 0);
		text = fl_xasprintf("{\"serial\":\"%s\",\"cmd\":\"c10\"}",
				    info.serial);
	}
	assert_int_equal(fl_write_atomic_str(confirm, text, 0600, &err), 0);
	free(text);
	start_agent(&c);
	e = command(&c, "{\"id\":\"c11\",\"type\":\"rotate\"}");
	assert_event(e, 2, "c11", "failed", "confirm");
	json_decref(e);
	assert_true(fl_path_exists(confirm));
	assert_int_equal(agent_status_json(c.cfg, &st, &err), 0);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(st, "confirm_pending"), "cmd")),
			    "c10");
	assert_int_equal(json_integer_value(json_object_get(st, "seq")), 2);
	json_decref(st);
	stop_agent(&c);
	free(log);
	free(confirm);
	core_release(&c);
}

/* fleet-sim's record: every command received, a repeat too, with its
 * job; neither an ack nor a payload that is not a command */
static void test_record_commands(void **state)
{
	struct core c = {0};
	struct fl_error err = {0};
	char *path, *text = NULL;
	json_t *e;

	core_init(&c, *state);
	c.cfg->sim_record_commands = true;
	path = fl_path_join(c.state, AGENT_CMD_RECORD_FILE);
	start_agent(&c);
	send_cmd(&c, "{\"id\":\"k1\",\"type\":\"ack\",\"args\":"
		     "{\"seq\":1,\"job\":\"j-1\"}}");
	send_cmd(&c, "garbage");
	for (int i = 0; i < 2; i++) {
		e = command(&c, "{\"id\":\"c1\",\"type\":\"frobnicate\","
				"\"args\":{\"job\":\"j-1\"}}");
		json_decref(e);
	}
	e = command(&c, "{\"id\":\"c2\",\"type\":\"frobnicate\","
			"\"args\":{\"job\":\"../x y\"}}");
	json_decref(e);
	assert_int_equal(fl_read_file(path, 4096, &text, NULL, &err), 0);
	assert_string_equal(text, "c1 frobnicate j-1\nc1 frobnicate j-1\n"
				  "c2 frobnicate -\n");
	free(text);
	stop_agent(&c);
	/* off (fleet-agent): nothing recorded */
	assert_int_equal(unlink(path), 0);
	c.cfg->sim_record_commands = false;
	start_agent(&c);
	json_decref(command(&c, "{\"id\":\"c3\",\"type\":\"frobnicate\"}"));
	assert_false(fl_path_exists(path));
	stop_agent(&c);
	free(path);
	core_release(&c);
}

static void test_not_enrolled(void **state)
{
	struct afx *f = *state;
	struct agent_config *cfg = NULL;
	struct agent *a = NULL;
	struct fl_error err = {0};
	json_t *st = NULL;
	char *text = fl_xasprintf("[device]\nid = dev-1\nstate_dir = empty\n"
				  "[server]\nurl = https://127.0.0.1:1\n"
				  "[mqtt]\nurl = mqtts://127.0.0.1:%d\n",
				  f->port);

	assert_int_equal(agent_config_parse(text, f->dir, NULL, &cfg, &err), 0);
	assert_int_equal(agent_new(cfg, &a, &err), FL_ENOTFOUND);
	assert_null(a);
	assert_int_equal(agent_status_json(cfg, &st, NULL), FL_ENOTFOUND);
	agent_free(NULL);
	agent_config_free(cfg);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_presence_commands_and_seq,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_interrupted_and_pending,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_record_commands, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_not_enrolled, afx_setup,
					    afx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
