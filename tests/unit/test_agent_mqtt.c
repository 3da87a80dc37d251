/* SPDX-License-Identifier: MIT */
/*
 * agent/agent_mqtt against a real mosquitto with TLS client
 * certificates: connect, retained presence, the will on a crash but not
 * on a clean disconnect, the persistent session keeping QoS 2 commands
 * across a disconnect, payload caps both ways, a refused certificate and
 * the switch back (the rotation fallback), broker host verification,
 * reconnecting after a broker restart, and the backoff arithmetic;
 * fleet-sim's way: several sessions on one poll loop with one file
 * descriptor each, a connect cap, and a network flap that fires the will
 * and reconnects.
 */
#include "agent_fixture.h"

#include <dirent.h>
#include <mosquitto.h>

#include "sim_nopair.h"

#define PRESENCE "fleet/dev-1/presence"
#define CMD "fleet/dev-1/cmd"

struct dev {
	struct agent_mqtt *m;
	struct afx_observer rx; /* what dev-1 itself receives */
	char *paths[3];
};

static void dev_start(struct afx *f, struct dev *d, bool will)
{
	struct fl_error err = {0};
	struct agent_mqtt_opts o = afx_opts(f, "dev-1", "dev-1", d->paths);

	if (will) {
		o.will_topic = PRESENCE;
		o.will_payload = "{\"online\":false}";
	}
	o.user = &d->rx;
	o.on_connect = afx_obs_connect;
	o.on_message = afx_obs_message;
	assert_int_equal(agent_mqtt_new(&o, &d->m, &err), 0);
	assert_true(afx_pump_until(d->m, NULL, &d->rx.connected, 10000));
	assert_true(agent_mqtt_connected(d->m));
}

static int mosquitto_socket_of_dev(struct dev *d)
{
	short ev;

	return agent_mqtt_poll_fd(d->m, &ev);
}

static void dev_free(struct dev *d)
{
	agent_mqtt_free(d->m);
	d->m = NULL;
	afx_obs_clear(&d->rx);
	afx_free_paths(d->paths);
}

static void test_backoff(void **state)
{
	struct agent_backoff b = {1000, 8000, 0};
	int64_t caps[] = {1000, 2000, 4000, 8000, 8000, 8000};

	for (size_t i = 0; i < FL_ARRAY_SIZE(caps); i++) {
		struct agent_backoff lo = b, hi = b;

		assert_int_equal(agent_backoff_next(&lo, 0), caps[i] / 2);
		assert_int_equal(
		    agent_backoff_next(&hi, UINT32_MAX - 1) <= caps[i], 1);
		assert_true(agent_backoff_next(&b, 12345 * (uint32_t)i) >=
			    caps[i] / 2);
	}
	/* jitter: different random inputs give different delays */
	{
		struct agent_backoff x = {1000, 60000, 5}, y = x;

		assert_int_not_equal(agent_backoff_next(&x, 1),
				     agent_backoff_next(&y, 9999));
	}
	for (int i = 0; i < 200; i++)
		assert_true(agent_backoff_next(&b, (uint32_t)i * 7919u) <=
			    8000);
	agent_backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_true(agent_backoff_next(&b, 0) == 500);
}

static void test_presence_and_will(void **state)
{
	struct afx *f = *state;
	struct afx_observer obs = {0};
	struct fl_error err = {0};
	struct dev d = {0};
	const char *on = "{\"online\":true}";

	dev_start(f, &d, true);
	assert_int_equal(
	    agent_mqtt_publish(d.m, PRESENCE, on, strlen(on), 1, true, &err),
	    0);
	assert_int_equal(agent_mqtt_flush(d.m, 5000), 0);
	/* a later subscriber gets the retained presence */
	afx_observer_start(f, &obs, "fleet/#");
	afx_pump(obs.m, d.m, 300);
	assert_true(afx_find(&obs, PRESENCE, "true") >= 0);
	/* a crash (no DISCONNECT): the broker publishes the will */
	agent_mqtt_free(d.m);
	d.m = NULL;
	afx_pump(obs.m, NULL, 1000);
	assert_true(afx_find(&obs, PRESENCE, "\"online\":false") >= 0);
	afx_observer_stop(&obs);
	dev_free(&d);
}

static void test_clean_disconnect_no_will(void **state)
{
	struct afx *f = *state;
	struct afx_observer obs = {0};
	struct dev d = {0};

	dev_start(f, &d, true);
	afx_observer_start(f, &obs, PRESENCE);
	agent_mqtt_disconnect(d.m);
	assert_false(agent_mqtt_connected(d.m));
	afx_pump(obs.m, d.m, 800);
	assert_int_equal(afx_find(&obs, PRESENCE, NULL), -1);
	/* and it stays down until resumed */
	assert_false(agent_mqtt_connected(d.m));
	d.rx.connected = false;
	agent_mqtt_resume(d.m);
	assert_true(afx_pump_until(d.m, NULL, &d.rx.connected, 5000));
	afx_observer_stop(&obs);
	dev_free(&d);
}

static void test_persistent_session(void **state)
{
	struct afx *f = *state;
	struct afx_observer obs = {0};
	struct fl_error err = {0};
	struct dev d = {0};
	const char *cmd = "{\"id\":\"c1\",\"type\":\"rotate\"}";
	bool got = false;

	dev_start(f, &d, false);
	assert_int_equal(agent_mqtt_subscribe(d.m, CMD, 2, &err), 0);
	afx_pump(d.m, NULL, 200);
	agent_mqtt_disconnect(d.m);
	/* a command sent while the device is away waits in its session */
	afx_observer_start(f, &obs, "nothing/here");
	assert_int_equal(
	    agent_mqtt_publish(obs.m, CMD, cmd, strlen(cmd), 2, false, &err),
	    0);
	assert_int_equal(agent_mqtt_flush(obs.m, 5000), 0);
	d.rx.connected = false;
	assert_int_equal(agent_mqtt_connect_wait(d.m, 10000, NULL, &err), 0);
	assert_true(d.rx.session_present);
	for (int i = 0; i < 100 && !got; i++) {
		agent_mqtt_step(d.m, 20);
		got = afx_find(&d.rx, CMD, "\"c1\"") >= 0;
	}
	assert_true(got);
	afx_observer_stop(&obs);
	dev_free(&d);
}

/* Publish with plain libmosquitto as "observer", no caps of ours. */
static void raw_publish(struct afx *f, const char *topic, const void *payload,
			int len)
{
	struct mosquitto *m = mosquitto_new("sender", true, NULL);
	char *ca = afx_path(f, "root.pem"), *c = afx_path(f, "observer.pem");
	char *k = afx_path(f, "observer.key");

	assert_non_null(m);
	assert_int_equal(mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
					      MQTT_PROTOCOL_V5),
			 0);
	assert_int_equal(mosquitto_tls_set(m, ca, NULL, c, k, NULL), 0);
	assert_int_equal(mosquitto_connect(m, "127.0.0.1", f->port, 30), 0);
	assert_int_equal(
	    mosquitto_publish(m, NULL, topic, len, payload, 1, false), 0);
	for (int i = 0; i < 10; i++)
		mosquitto_loop(m, 50, 1);
	mosquitto_disconnect(m);
	mosquitto_loop(m, 50, 1);
	mosquitto_destroy(m);
	free(ca);
	free(c);
	free(k);
}

static void test_payload_caps(void **state)
{
	struct afx *f = *state;
	struct fl_error err = {0};
	struct dev d = {0};
	size_t big_len = AGENT_MQTT_MAX_PAYLOAD + 10;
	char *big = fl_xmalloc(big_len);
	const char *small = "{\"id\":\"c2\",\"type\":\"rotate\"}";
	bool got = false;

	memset(big, 'x', big_len);
	dev_start(f, &d, false);
	assert_int_equal(
	    agent_mqtt_publish(d.m, PRESENCE, big, big_len, 1, false, &err),
	    FL_ELIMIT);
	assert_int_equal(agent_mqtt_subscribe(d.m, CMD, 2, &err), 0);
	afx_pump(d.m, NULL, 200);
	/* a client without our cap sends an oversized command, then a
	 * small one */
	raw_publish(f, CMD, big, (int)big_len);
	raw_publish(f, CMD, small, (int)strlen(small));
	for (int i = 0; i < 150 && !got; i++) {
		agent_mqtt_step(d.m, 20);
		got = afx_find(&d.rx, CMD, "\"c2\"") >= 0;
	}
	assert_true(got);
	assert_true(agent_mqtt_connected(d.m));
	for (size_t i = 0; i < d.rx.n; i++)
		assert_true(strlen(d.rx.msgs[i].payload) < 1000);
	free(big);
	dev_free(&d);
}

/* The rotation fallback: a certificate the broker refuses, then back. */
static void test_refused_identity_and_back(void **state)
{
	struct afx *f = *state;
	struct fl_error err = {0};
	struct dev d = {0};
	char *rc_pem = afx_path(f, "rogue.pem"),
	     *rc_key = afx_path(f, "rogue.key");
	int rc;

	dev_start(f, &d, false);
	assert_int_equal(
	    agent_mqtt_set_identity(d.m, rc_pem, rc_key, true, &err), 0);
	assert_false(agent_mqtt_connected(d.m));
	rc = agent_mqtt_connect_wait(d.m, 10000, NULL, &err);
	assert_true(rc == FL_EDENIED || rc == FL_EUNREACH);
	assert_false(agent_mqtt_connected(d.m));
	/* the error says how the attempt ended */
	if (!strstr(err.msg, "connection (refused: ") &&
	    !strstr(err.msg, "connection (connection lost: ") &&
	    !strstr(err.msg, "connection (closed before CONNACK)") &&
	    !strstr(err.msg, "cannot connect to "))
		fail_msg("no reason in '%s'", err.msg);
	assert_int_equal(
	    agent_mqtt_set_identity(d.m, d.paths[1], d.paths[2], true, &err),
	    0);
	d.rx.connected = false;
	agent_mqtt_resume(d.m);
	assert_true(afx_pump_until(d.m, NULL, &d.rx.connected, 5000));
	/* renaming files of the live identity keeps the connection */
	assert_int_equal(
	    agent_mqtt_set_identity(d.m, d.paths[1], d.paths[2], false, &err),
	    0);
	assert_true(agent_mqtt_connected(d.m));
	assert_int_equal(agent_mqtt_set_identity(d.m, NULL, NULL, false, NULL),
			 FL_EINVAL);
	free(rc_pem);
	free(rc_key);
	dev_free(&d);
}

static void test_broker_host_verified(void **state)
{
	struct afx *f = *state;
	struct fl_error err = {0};
	struct agent_mqtt *m = NULL;
	char *paths[3];
	struct agent_mqtt_opts o;
	int rc;

	afx_broker_stop(f);
	afx_broker_start(f, "noname");
	o = afx_opts(f, "dev-1", "dev-1", paths);
	assert_int_equal(agent_mqtt_new(&o, &m, &err), 0);
	rc = agent_mqtt_connect_wait(m, 5000, NULL, &err);
	assert_int_not_equal(rc, 0);
	assert_false(agent_mqtt_connected(m));
	agent_mqtt_free(m);
	afx_free_paths(paths);
}

static void test_unreachable_and_reconnect(void **state)
{
	struct afx *f = *state;
	struct fl_error err = {0};
	struct agent_mqtt *m = NULL;
	struct dev d = {0};
	char *paths[3];
	struct agent_mqtt_opts o = afx_opts(f, "dev-1", "dev-1", paths);
	volatile sig_atomic_t stop = 1;
	int64_t t0;

	o.port = afx_free_port();
	assert_int_equal(agent_mqtt_new(&o, &m, &err), 0);
	assert_int_equal(agent_mqtt_connect_wait(m, 5000, NULL, &err),
			 FL_EUNREACH);
	agent_mqtt_free(m);
	afx_free_paths(paths);
	/* a stop request ends the wait at once */
	o = afx_opts(f, "dev-1", "dev-1", paths);
	assert_int_equal(agent_mqtt_new(&o, &m, &err), 0);
	t0 = fl_now_ms();
	assert_int_not_equal(agent_mqtt_connect_wait(m, 10000, &stop, NULL), 0);
	assert_true(fl_now_ms() - t0 < 2000);
	agent_mqtt_free(m);
	afx_free_paths(paths);
	/* the broker goes away and comes back: the session reconnects */
	dev_start(f, &d, false);
	afx_broker_stop(f);
	for (int i = 0; i < 200 && agent_mqtt_connected(d.m); i++)
		agent_mqtt_step(d.m, 20);
	assert_false(agent_mqtt_connected(d.m));
	afx_pump(d.m, NULL, 500); /* a few failed attempts */
	afx_broker_start(f, "server");
	d.rx.connected = false;
	assert_true(afx_pump_until(d.m, NULL, &d.rx.connected, 10000));
	assert_true(d.rx.connects >= 2);
	dev_free(&d);
}

/* ------------------------------------------------------------------ */
/* Sessions on one poll loop (fleet-sim)                              */
/* ------------------------------------------------------------------ */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own */
}

/* One turn of a poll loop over @n sessions: poll their sockets, then
 * service each, with what poll saw or on its timer. */
static void poll_turn(struct agent_mqtt **m, size_t n, bool may_connect, int ms)
{
	struct pollfd p[4];
	size_t idx[4], k = 0;
	bool seen[4] = {false};

	for (size_t i = 0; i < n; i++) {
		short ev = 0;
		int fd = agent_mqtt_poll_fd(m[i], &ev);

		if (fd >= 0) {
			p[k] = (struct pollfd){fd, ev, 0};
			idx[k++] = i;
		}
	}
	poll(p, k, ms);
	for (size_t j = 0; j < k; j++) {
		agent_mqtt_service(m[idx[j]], p[j].revents, may_connect);
		seen[idx[j]] = true;
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i])
			agent_mqtt_service(m[i], 0, may_connect);
}

/* Turns until *@flag or @ms pass. */
static bool poll_until(struct agent_mqtt **m, size_t n, bool may_connect,
		       const bool *flag, int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (!*flag && fl_now_ms() < end)
		poll_turn(m, n, may_connect, 20);
	return *flag;
}

static void poll_for(struct agent_mqtt **m, size_t n, bool may_connect, int ms)
{
	bool never = false;

	poll_until(m, n, may_connect, &never, ms);
}

static void test_polled_sessions(void **state)
{
	struct afx *f = *state;
	struct afx_observer rx[2] = {{0}}, obs = {0};
	const char *ids[2] = {"dev-1", "dev-2"}, *msg = "{\"id\":\"c1\"}";
	struct agent_mqtt *m[2];
	struct fl_error err = {0};
	char *paths[2][3];
	int fds0;

	agent_mqtt_set_client_hook(agent_sim_nopair_hook);
	afx_observer_start(f, &obs, "fleet/dev-1/presence");
	fds0 = count_fds();
	for (int i = 0; i < 2; i++) {
		struct agent_mqtt_opts o =
		    afx_opts(f, ids[i], ids[i], paths[i]);

		o.user = &rx[i];
		o.on_connect = afx_obs_connect;
		o.on_message = afx_obs_message;
		o.will_topic = i == 0 ? PRESENCE : NULL;
		o.will_payload = i == 0 ? "{\"online\":false}" : NULL;
		assert_int_equal(agent_mqtt_new(&o, &m[i], &err), 0);
	}
	/* no socket pair per client: nothing open before connecting */
	assert_int_equal(count_fds(), fds0);
	assert_int_equal(agent_mqtt_poll_fd(m[0], &(short){0}), -1);
	/* the cap holds a due connection back */
	assert_true(agent_mqtt_connect_due(m[0]));
	poll_for(m, 2, false, 300);
	assert_false(agent_mqtt_connected(m[0]) || agent_mqtt_connecting(m[0]));
	assert_true(poll_until(m, 2, true, &rx[0].connected, 10000));
	assert_true(poll_until(m, 2, true, &rx[1].connected, 10000));
	/* one socket each, and nothing else */
	assert_int_equal(count_fds(), fds0 + 2);
	assert_int_equal(agent_mqtt_subscribe(m[1], "fleet/dev-2/cmd", 2, &err),
			 0);
	poll_for(m, 2, true, 300);
	assert_int_equal(agent_mqtt_publish(m[0], "fleet/dev-2/cmd", msg,
					    strlen(msg), 1, false, &err),
			 0);
	for (int i = 0;
	     i < 100 && afx_find(&rx[1], "fleet/dev-2/cmd", "c1") < 0; i++)
		poll_turn(m, 2, true, 20);
	assert_true(afx_find(&rx[1], "fleet/dev-2/cmd", "c1") >= 0);
	for (int i = 0; i < 100 && agent_mqtt_inflight(m[0]); i++)
		poll_turn(m, 2, true, 20);
	assert_int_equal(agent_mqtt_inflight(m[0]), 0); /* PUBACK came */

	/* a flap: the connection drops at once, the broker publishes the
	 * will, and the session comes back by itself */
	agent_mqtt_drop(m[0]);
	assert_false(agent_mqtt_connected(m[0]));
	rx[0].connected = false;
	for (int i = 0; i < 50 && afx_find(&obs, PRESENCE, "false") < 0; i++) {
		poll_turn(m, 2, false, 20);
		agent_mqtt_step(obs.m, 20);
	}
	assert_true(afx_find(&obs, PRESENCE, "false") >= 0);
	assert_true(poll_until(m, 2, true, &rx[0].connected, 10000));
	assert_int_equal(rx[0].connects, 2);
	assert_int_equal(rx[1].connects, 1);

	/* a clean end without waiting: no will */
	afx_obs_clear(&obs);
	agent_mqtt_disconnect_now(m[0]);
	assert_false(agent_mqtt_connected(m[0]));
	for (int i = 0; i < 25; i++) {
		poll_turn(m, 2, true, 20);
		agent_mqtt_step(obs.m, 20);
	}
	assert_int_equal(afx_find(&obs, PRESENCE, NULL), -1);
	assert_false(agent_mqtt_connected(m[0])); /* and it stays down */
	for (int i = 0; i < 2; i++) {
		agent_mqtt_free(m[i]);
		afx_obs_clear(&rx[i]);
		afx_free_paths(paths[i]);
	}
	afx_observer_stop(&obs);
	agent_mqtt_set_client_hook(NULL);
}

/*
 * A socket numbered above FD_SETSIZE (1024): fleet-sim's devices have
 * thousands.  libmosquitto's own mosquitto_loop() uses select() and
 * refuses such a socket (MOSQ_ERR_INVAL, "connection lost"), so
 * agent_mqtt_step must not depend on it.
 */
static void test_high_descriptor(void **state)
{
	struct afx *f = *state;
	int low[1100], n = 0, fd;
	struct afx_observer obs = {0};
	struct fl_error err = {0};
	struct dev d = {0};
	const char *msg = "{\"id\":\"c9\"}";

	while (n < (int)FL_ARRAY_SIZE(low) &&
	       (fd = open("/dev/null", O_RDONLY)) >= 0 && fd < 1100)
		low[n++] = fd;
	if (fd >= 1100)
		close(fd);
	afx_observer_start(f, &obs, CMD);
	dev_start(f, &d, false);
	assert_true(mosquitto_socket_of_dev(&d) >= 1024);
	assert_int_equal(agent_mqtt_subscribe(d.m, CMD, 2, &err), 0);
	afx_pump(d.m, obs.m, 300);
	assert_int_equal(
	    agent_mqtt_publish(obs.m, CMD, msg, strlen(msg), 1, false, &err),
	    0);
	for (int i = 0; i < 100 && afx_find(&d.rx, CMD, "c9") < 0; i++) {
		agent_mqtt_step(d.m, 20);
		agent_mqtt_step(obs.m, 20);
	}
	assert_true(afx_find(&d.rx, CMD, "c9") >= 0);
	assert_true(agent_mqtt_connected(d.m));
	assert_int_equal(d.rx.connects, 1); /* never dropped */
	afx_observer_stop(&obs);
	dev_free(&d);
	while (n)
		close(low[--n]);
}

static void test_bad_options(void **state)
{
	struct agent_mqtt_opts o = {0};
	struct agent_mqtt *m = NULL;

	assert_int_equal(agent_mqtt_new(&o, &m, NULL), FL_EINVAL);
	o = (struct agent_mqtt_opts){.client_id = "x",
				     .host = "h",
				     .port = 1,
				     .ca_file = "/nonexistent/ca.pem",
				     .cert_file = "/nonexistent/c",
				     .key_file = "/nonexistent/k"};
	assert_int_equal(agent_mqtt_new(&o, &m, NULL), FL_ERR);
	o.port = 70000;
	assert_int_equal(agent_mqtt_new(&o, &m, NULL), FL_EINVAL);
	assert_null(m);
	agent_mqtt_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test_setup_teardown(test_presence_and_will, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_clean_disconnect_no_will,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_persistent_session, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_payload_caps, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_refused_identity_and_back,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_broker_host_verified,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_unreachable_and_reconnect,
					    afx_setup, afx_teardown),
	    cmocka_unit_test_setup_teardown(test_polled_sessions, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_high_descriptor, afx_setup,
					    afx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
