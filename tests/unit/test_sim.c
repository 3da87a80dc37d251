/* SPDX-License-Identifier: MIT */
/*
 * agent/sim: fleet-sim's loop with a real mosquitto (agent_fixture.h)
 * and devices provisioned in the test (no fleetd: nothing to enrol).
 * Twelve devices come online through a cap of two handshakes at a time
 * (with the broker stopped, two hang in their handshake and the others
 * wait; once it runs, all get through, never more than two at once); a command
 * to one device is carried out on a worker and answered while the
 * others stay on the loop, also while another device's rotation hangs
 * on an HTTPS server that never answers; a device waiting for the one
 * worker longer than its keepalive keeps its session; a device with an unreadable identity is
 * counted as failed and left alone; the stop sends every device's
 * offline presence (a clean one, not the will) and ends with exit 0
 * and the final counts.
 */
#include "agent_fixture.h"

#include <dirent.h>
#include <pthread.h>

#include <jansson.h>

#include "agent_config.h"
#include "json.h"
#include "sim.h"
#include "sim_nopair.h"
#include "simdev.h"

#define N 12
#define CAP 2

static const char fw[] = "#!/bin/sh\n"
			 "case \"$1\" in --version) echo 1.0.0;;\n"
			 "--selftest) echo ok;; esac\nexit 0\n";

struct sfx {
	struct afx *f;
	char *dir, *fw;
	int hole, hole_port; /* a TCP listener that never answers */
	struct sim *sim;
	pthread_t thread;
	bool running; /* the thread runs sim_run */
	int rc;
	struct fl_error err;
	struct afx_observer obs;
};

static volatile sig_atomic_t stop;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* sim-000@i's agent.conf: sim-0001's fleetd is a black hole (HTTPS
 * connects, nothing answers for @timeout_s); the others' refuses at
 * once. */
static void write_conf(struct sfx *x, unsigned i, int timeout_s,
		       int keepalive_s)
{
	char *conf, *path;

	conf = fl_xasprintf("[device]\nid = sim-%04u\nstate_dir = state\n"
			    "[server]\nurl = https://127.0.0.1:%d\n"
			    "timeout = %ds\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "keepalive = %ds\n"
			    "reconnect_min = 1\nreconnect_max = 2\n",
			    i, i == 1 ? x->hole_port : afx_free_port(),
			    timeout_s, x->f->port, keepalive_s);
	path = fl_xasprintf("%s/sim-%04u/agent.conf", x->dir, i);
	assert_int_equal(fl_write_atomic_str(path, conf, 0644, NULL), 0);
	free(path);
	free(conf);
}

static void provision(struct sfx *x, unsigned i)
{
	char id[32], *dev, *state, *simdir;

	snprintf(id, sizeof(id), "sim-%04u", i);
	afx_leaf(x->f, &x->f->iss, FL_PKI_CLIENT, id, id, NULL, false);
	dev = fl_path_join(x->dir, id);
	state = fl_path_join(dev, "state");
	simdir = fl_path_join(dev, "sim");
	assert_int_equal(fl_mkdir_p(state, 0700, NULL), 0);
	if (i != N) { /* the last one has no key: it cannot start */
		char *key = fl_xasprintf("%s.key", id);

		afx_copy_file(x->f, key, state, "key.pem", 0600);
		free(key);
	}
	{
		char *cert = fl_xasprintf("%s.pem", id);

		afx_copy_file(x->f, cert, state, "cert.pem", 0644);
		free(cert);
	}
	afx_copy_file(x->f, "issuing.pem", state, "chain.pem", 0644);
	afx_copy_file(x->f, "root.pem", state, "ca.pem", 0644);
	write_conf(x, i, 3, 60);
	assert_int_equal(agent_simdev_init(simdir, x->fw, 3, NULL), 0);
	free(dev);
	free(state);
	free(simdir);
}

static int setup(void **state)
{
	struct sfx *x = fl_xcalloc(1, sizeof(*x));

	afx_setup((void **)&x->f);
	x->dir = afx_path(x->f, "sims");
	x->fw = afx_path(x->f, "fw");
	assert_int_equal(fl_write_atomic_str(x->fw, fw, 0755, NULL), 0);
	x->hole = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(sa);

		assert_int_equal(bind(x->hole, (struct sockaddr *)&sa, len), 0);
		assert_int_equal(listen(x->hole, 16), 0);
		assert_int_equal(getsockname(x->hole, (struct sockaddr *)&sa,
					     &len),
				 0);
		x->hole_port = ntohs(sa.sin_port);
	}
	for (unsigned i = 1; i <= N; i++)
		provision(x, i);
	agent_mqtt_set_client_hook(agent_sim_nopair_hook);
	afx_observer_start(x->f, &x->obs, "fleet/#");
	*state = x;
	return 0;
}

/* After a failed assertion too: the broker runs again (a stopped one
 * would never exit), the simulator is stopped and freed. */
static int teardown(void **state)
{
	struct sfx *x = *state;
	void *f = x->f;
	uint64_t one = 1;

	kill(x->f->broker, SIGCONT);
	if (x->running) {
		stop = 1;
		if (write(sim_wake_fd(x->sim), &one, sizeof(one)) < 0)
			abort();
		pthread_join(x->thread, NULL);
		sim_free(x->sim);
	}
	afx_observer_stop(&x->obs);
	agent_mqtt_set_client_hook(NULL);
	close(x->hole);
	free(x->dir);
	free(x->fw);
	free(x);
	return afx_teardown(&f);
}

static void *run_sim(void *arg)
{
	struct sfx *x = arg;

	x->rc = sim_run(x->sim, &stop, &x->err);
	return NULL;
}

static json_t *stats(struct sfx *x)
{
	char *p = fl_path_join(x->dir, SIM_STATS_FILE);
	json_t *j = NULL;

	fl_json_load_file(p, 1 << 20, &j, NULL);
	free(p);
	return j;
}

static long long stat_int(struct sfx *x, const char *key)
{
	json_t *j = stats(x);
	long long v = j ? json_integer_value(json_object_get(j, key)) : -1;

	json_decref(j);
	return v;
}

/* Pump the observer until @cond or @ms pass. */
static bool watch(struct sfx *x, bool (*cond)(struct sfx *x), int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (!cond(x) && fl_now_ms() < end)
		agent_mqtt_step(x->obs.m, 50);
	return cond(x);
}

static unsigned count_msgs(struct sfx *x, const char *leaf, const char *needle)
{
	unsigned n = 0;

	for (size_t i = 0; i < x->obs.n; i++)
		n += strstr(x->obs.msgs[i].topic, leaf) &&
		     strstr(x->obs.msgs[i].payload, needle);
	return n;
}

static bool all_online(struct sfx *x)
{
	return stat_int(x, "online") == N - 1 &&
	       count_msgs(x, "/presence", "\"online\":true") >= N - 1;
}

static bool answered(struct sfx *x)
{
	return afx_find(&x->obs, "fleet/sim-0003/events", "frobnicate") >= 0;
}

static bool all_offline(struct sfx *x)
{
	return count_msgs(x, "/presence", "\"online\":false,\"ts\"") >= N - 1;
}

static void test_loop(void **state)
{
	struct sfx *x = *state;
	struct sim_opts o = {.dir = x->dir, .count = N, .workers = 2,
			     .connecting = CAP};
	struct fl_error err = {0};
	const char *cmd = "{\"id\":\"c-1\",\"type\":\"frobnicate\"}";
	uint64_t one = 1;
	int fds0 = count_fds();
	json_t *j;

	stop = 0;
	/* a broker that accepts TCP but answers nothing: every device's
	 * handshake hangs, so the cap decides how many are under way */
	kill(x->f->broker, SIGSTOP);
	assert_int_equal(sim_new(&o, &x->sim, &err), 0);
	assert_int_equal(pthread_create(&x->thread, NULL, run_sim, x), 0);
	x->running = true;
	for (int i = 0; i < 100 && stat_int(x, "running_devices") != N - 1; i++)
		poll(NULL, 0, 50);
	poll(NULL, 0, 1200); /* a sweep and a stats turn more */
	assert_int_equal(stat_int(x, "running_devices"), N - 1);
	assert_int_equal(stat_int(x, "connecting"), CAP);
	assert_int_equal(stat_int(x, "online"), 0);
	kill(x->f->broker, SIGCONT);
	assert_true(watch(x, all_online, 20000));
	/* a socket per device; the epoll set, two eventfds, the lock and
	 * an idle worker's odd file besides (no socket pairs) */
	assert_true(count_fds() - fds0 <= N - 1 + 6);
	j = stats(x);
	assert_non_null(j);
	/* the cap was reached and held */
	assert_int_equal(json_integer_value(json_object_get(j, "connecting_peak")),
			 CAP);
	assert_int_equal(json_integer_value(json_object_get(j, "dead")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "start_failed")),
			 1);
	assert_int_equal(json_integer_value(
			     json_object_get(json_object_get(j, "firmware"),
					     "1.0.0")),
			 N - 1);
	json_decref(j);
	/* a command: a worker runs it and the device answers */
	assert_int_equal(agent_mqtt_publish(x->obs.m, "fleet/sim-0003/cmd", cmd,
					    strlen(cmd), 1, false, &err),
			 0);
	assert_true(watch(x, answered, 10000));
	assert_true(afx_find(&x->obs, "fleet/sim-0003/events",
			     "\"state\":\"failed\"") >= 0);
	/* the stop: a clean offline presence from each, exit 0 */
	stop = 1;
	assert_int_equal(write(sim_wake_fd(x->sim), &one, sizeof(one)), 8);
	pthread_join(x->thread, NULL);
	x->running = false;
	assert_int_equal(x->rc, 0);
	assert_true(watch(x, all_offline, 5000));
	j = stats(x);
	assert_false(json_is_true(json_object_get(j, "running")));
	assert_int_equal(json_integer_value(json_object_get(j, "online")), 0);
	json_decref(j);
	sim_free(x->sim);
	x->sim = NULL;
}

static bool rotation_failed(struct sfx *x)
{
	return afx_find(&x->obs, "fleet/sim-0001/events", "\"rotate\"") >= 0;
}

static bool answered_5(struct sfx *x)
{
	return afx_find(&x->obs, "fleet/sim-0005/events", "frobnicate") >= 0;
}

static bool all_online_now(struct sfx *x)
{
	return stat_int(x, "online") == N - 1;
}

/*
 * A device that blocks does not stall the others: sim-0001's rotation
 * waits 3 s on an HTTPS server that never answers, on a worker; a
 * command to sim-0005 sent meanwhile is answered at once, and every
 * other device stays online.
 */
static void test_blocked_device_stalls_no_other(void **state)
{
	struct sfx *x = *state;
	struct sim_opts o = {.dir = x->dir, .count = N, .workers = 2};
	struct fl_error err = {0};
	const char *rot = "{\"id\":\"r-1\",\"type\":\"rotate\"}";
	const char *cmd = "{\"id\":\"c-5\",\"type\":\"frobnicate\"}";
	int64_t t0, answered_ms;

	stop = 0;
	assert_int_equal(sim_new(&o, &x->sim, &err), 0);
	assert_int_equal(pthread_create(&x->thread, NULL, run_sim, x), 0);
	x->running = true;
	assert_true(watch(x, all_online, 20000));
	afx_pump(x->obs.m, NULL, 300);
	t0 = fl_now_ms();
	assert_int_equal(agent_mqtt_publish(x->obs.m, "fleet/sim-0001/cmd", rot,
					    strlen(rot), 1, false, &err),
			 0);
	afx_pump(x->obs.m, NULL, 300); /* the rotation is under way */
	assert_false(rotation_failed(x));
	assert_int_equal(agent_mqtt_publish(x->obs.m, "fleet/sim-0005/cmd", cmd,
					    strlen(cmd), 1, false, &err),
			 0);
	assert_true(watch(x, answered_5, 2000));
	answered_ms = fl_now_ms() - t0;
	assert_true(answered_ms < 2000);
	assert_false(rotation_failed(x)); /* still blocked meanwhile */
	assert_true(all_online_now(x));
	/* and the rotation ends, failed, when its HTTPS call times out */
	assert_true(watch(x, rotation_failed, 10000));
	assert_true(fl_now_ms() - t0 >= 2500);
	assert_true(afx_find(&x->obs, "fleet/sim-0001/events",
			     "\"stage\":\"reenroll\"") >= 0);
}

static bool will_of_5(struct sfx *x)
{
	return afx_find(&x->obs, "fleet/sim-0005/presence",
			"{\"online\":false}") >= 0;
}

/*
 * A device waiting for a worker keeps its session: with one worker,
 * held 12 s by sim-0001's rotation, sim-0005's command waits longer
 * than its keepalive (5 s) allows the broker (7.5 s); the loop keeps
 * servicing it meanwhile, so the broker never fires its will, and the
 * command is carried out once the worker is free.
 */
static void test_waiting_device_stays_connected(void **state)
{
	struct sfx *x = *state;
	struct sim_opts o = {.dir = x->dir, .count = N, .workers = 1};
	struct fl_error err = {0};
	const char *rot = "{\"id\":\"r-1\",\"type\":\"rotate\"}";
	const char *cmd = "{\"id\":\"c-5\",\"type\":\"frobnicate\"}";

	write_conf(x, 1, 12, 60);
	write_conf(x, 5, 3, 5);
	stop = 0;
	assert_int_equal(sim_new(&o, &x->sim, &err), 0);
	assert_int_equal(pthread_create(&x->thread, NULL, run_sim, x), 0);
	x->running = true;
	assert_true(watch(x, all_online, 20000));
	assert_int_equal(agent_mqtt_publish(x->obs.m, "fleet/sim-0001/cmd", rot,
					    strlen(rot), 1, false, &err),
			 0);
	afx_pump(x->obs.m, NULL, 300); /* the rotation holds the worker */
	assert_int_equal(agent_mqtt_publish(x->obs.m, "fleet/sim-0005/cmd", cmd,
					    strlen(cmd), 1, false, &err),
			 0);
	assert_true(watch(x, rotation_failed, 20000));
	assert_true(watch(x, answered_5, 5000));
	assert_false(will_of_5(x));
	assert_true(all_online_now(x));
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static unsigned diag_answers(struct sfx *x, const char *needle)
{
	return count_msgs(x, "/diag/resp/fleetd", needle);
}

static bool all_pong(struct sfx *x)
{
	return diag_answers(x, "\"pong\":true") == N - 1;
}

static bool all_slots(struct sfx *x)
{
	return diag_answers(x, "\"booted\":\"a\"") == N - 1;
}

/* Ask every running device @check, as fleetd's fan-out would. */
static void fan_out(struct sfx *x, const char *check)
{
	char topic[64], resp[64],
	    *req = fl_xasprintf("{\"check\":\"%s\"}", check);

	afx_obs_clear(&x->obs); /* room for the answers */
	for (unsigned i = 1; i < N; i++) {
		struct agent_msg_props p = {.response_topic = resp,
					    .correlation = "c",
					    .correlation_len = 1};

		snprintf(topic, sizeof(topic), "fleet/sim-%04u/diag/req", i);
		snprintf(resp, sizeof(resp), "fleet/sim-%04u/diag/resp/fleetd",
			 i);
		assert_int_equal(agent_mqtt_publish_props(x->obs.m, topic, req,
							  strlen(req), 1, false,
							  &p, NULL),
				 0);
	}
	free(req);
}

/*
 * Every simulated device answers diagnostics from its own state (a
 * fan-out of ping and slots to all of them), on the loop and the
 * pool: no thread per device; what fits only a real device is refused.
 */
static void test_diag_fan_out(void **state)
{
	struct sfx *x = *state;
	struct sim_opts o = {.dir = x->dir, .count = N, .workers = 2};
	struct fl_error err = {0};
	int threads;

	stop = 0;
	assert_int_equal(sim_new(&o, &x->sim, &err), 0);
	assert_int_equal(pthread_create(&x->thread, NULL, run_sim, x), 0);
	x->running = true;
	assert_true(watch(x, all_online, 20000));
	afx_pump(x->obs.m, NULL, 300); /* subscriptions in place */
	threads = count_threads();
	fan_out(x, "ping");
	assert_true(watch(x, all_pong, 10000));
	fan_out(x, "slots");
	assert_true(watch(x, all_slots, 10000));
	assert_true(count_threads() <= threads);
	fan_out(x, "net");
	afx_pump(x->obs.m, NULL, 1500);
	assert_int_equal(diag_answers(x, "\"code\":\"unknown-check\""), N - 1);
}

/* One fleet-sim per directory; options checked. */
static void test_refusals(void **state)
{
	struct sfx *x = *state;
	struct sim_opts o = {.dir = x->dir, .count = N};
	struct sim *a = NULL, *b = NULL;
	struct fl_error err = {0};

	assert_int_equal(sim_new(&o, &a, &err), 0);
	assert_int_equal(sim_new(&o, &b, &err), FL_ECONFLICT);
	sim_free(a);
	o.count = N + 1; /* sim-0013 is not there: it needs enrolment */
	assert_int_equal(sim_new(&o, &b, &err), FL_EINVAL);
	o.count = 0;
	assert_int_equal(sim_new(&o, &b, &err), FL_EINVAL);
	o = (struct sim_opts){.dir = x->dir, .count = 1, .prefix = "Bad"};
	assert_int_equal(sim_new(&o, &b, &err), FL_EINVAL);
	assert_null(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_waiting_device_stays_connected,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blocked_device_stalls_no_other,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diag_fan_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
