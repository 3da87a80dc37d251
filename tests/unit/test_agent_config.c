/* SPDX-License-Identifier: MIT */
/*
 * common/agent_config: agent.conf loading with defaults, relative paths
 * resolved against the file's directory, unknown and repeated keys,
 * every kind of bad value, caps, cross-field rules, the MQTT URL parser
 * and the renderer's round trip (what fleetctl provision writes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "agent_config.h"
#include "fsutil.h"
#include "util.h"

#define MINIMAL                                                            \
	"[device]\nid = gw-1\n[server]\nurl = https://127.0.0.1:8443\n"    \
	"[mqtt]\nurl = mqtts://127.0.0.1:8883\n"

static struct agent_config *parse_ok(const char *text, const char *base)
{
	struct fl_error err = {0};
	struct agent_config *c = NULL;

	if (agent_config_parse(text, base, NULL, &c, &err))
		fail_msg("parse failed: %s", err.msg);
	return c;
}

static int parse_rc(const char *text)
{
	struct fl_error err = {0};
	struct agent_config *c = NULL;
	int rc = agent_config_parse(text, "/etc/fleet", NULL, &c, &err);

	assert_null(c);
	if (rc)
		assert_true(err.msg[0] != '\0');
	return rc;
}

static void test_minimal_defaults(void **state)
{
	struct agent_config *c = parse_ok(MINIMAL, "/etc/fleet");

	assert_string_equal(c->id, "gw-1");
	assert_string_equal(c->state_dir, AGENT_CONFIG_DEFAULT_STATE);
	assert_string_equal(c->ca_file, AGENT_CONFIG_DEFAULT_STATE "/ca.pem");
	assert_string_equal(c->server_url, "https://127.0.0.1:8443");
	assert_string_equal(c->mqtt_host, "127.0.0.1");
	assert_int_equal(c->mqtt_port, 8883);
	assert_string_equal(c->topic_prefix, "fleet");
	assert_int_equal(c->keepalive_s, 60);
	assert_int_equal(c->session_expiry_s, 7 * 86400);
	assert_int_equal(c->reconnect_min_s, 1);
	assert_int_equal(c->reconnect_max_s, 300);
	assert_int_equal(c->http_timeout_s, 30);
	assert_true(c->auto_renew);
	assert_int_equal(c->bootlimit, 3);
	assert_null(c->boot_backend);
	assert_null(c->slot_a);
	assert_int_equal(c->outbox_max_messages, 10000);
	assert_int_equal(c->outbox_max_age_s, 7 * 24 * 3600);
	assert_int_equal(c->telemetry_interval_s, 60);
	assert_int_equal(c->download_rate_limit, 0);
	agent_config_free(c);
}

static void test_relative_paths(void **state)
{
	struct agent_config *c = parse_ok(
	    MINIMAL "[device]\nstate_dir = .\n[server]\nca = trust/ca.pem\n"
		    "[diag]\nchecks_dir = /usr/lib/fleet/diag\n"
		    "[slots]\na = slot-a.img\nb = /dev/mmcblk0p3\n",
	    "/opt/dev-1");

	assert_string_equal(c->state_dir, "/opt/dev-1");
	assert_string_equal(c->ca_file, "/opt/dev-1/trust/ca.pem");
	assert_string_equal(c->diag_checks_dir, "/usr/lib/fleet/diag");
	assert_string_equal(c->slot_a, "/opt/dev-1/slot-a.img");
	assert_string_equal(c->slot_b, "/dev/mmcblk0p3");
	agent_config_free(c);
}

static void test_full(void **state)
{
	struct agent_config *c = parse_ok(
	    MINIMAL "[mqtt]\ntopic_prefix = site-1_Fleet\nkeepalive = 2m\n"
		    "session_expiry = 0\nreconnect_min = 2\nreconnect_max = 1h\n"
		    "status_interval = 30s\n"
		    "[identity]\nauto_renew = no\nrotate_timeout = 10s\n"
		    "[boot]\nbackend = sim\npath = boot\nbootlimit = 5\n"
		    "[health]\ncommand = /usr/bin/fw --selftest\ntimeout = 30\n"
		    "[download]\nmax_download_rate = 1048576\n"
		    "[outbox]\nmax_messages = 50\nmax_bytes = 65536\n"
		    "max_age = 2h\n[telemetry]\ninterval = 0\n",
	    "/d");

	assert_string_equal(c->topic_prefix, "site-1_Fleet");
	assert_int_equal(c->keepalive_s, 120);
	assert_int_equal(c->session_expiry_s, 0);
	assert_int_equal(c->reconnect_min_s, 2);
	assert_int_equal(c->reconnect_max_s, 3600);
	assert_int_equal(c->status_interval_s, 30);
	assert_false(c->auto_renew);
	assert_int_equal(c->rotate_timeout_s, 10);
	assert_string_equal(c->boot_backend, "sim");
	assert_string_equal(c->boot_path, "/d/boot");
	assert_int_equal(c->bootlimit, 5);
	assert_string_equal(c->health_command, "/usr/bin/fw --selftest");
	assert_int_equal(c->health_timeout_s, 30);
	assert_int_equal(c->download_rate_limit, 1048576);
	assert_int_equal(c->outbox_max_messages, 50);
	assert_int_equal(c->outbox_max_bytes, 65536);
	assert_int_equal(c->outbox_max_age_s, 7200);
	assert_int_equal(c->telemetry_interval_s, 0);
	agent_config_free(c);
}

static void test_unknown_and_repeated(void **state)
{
	assert_int_equal(parse_rc(MINIMAL "[mqtt]\nkeeplive = 60\n"), FL_EPARSE);
	assert_int_equal(parse_rc(MINIMAL "[devices]\nid = x\n"), FL_EPARSE);
	assert_int_equal(parse_rc("id = gw-1\n" MINIMAL), FL_EPARSE);
	assert_int_equal(parse_rc(MINIMAL "[device]\nid = gw-2\n"), FL_EPARSE);
	assert_int_equal(parse_rc("[device\nid = x\n"), FL_EPARSE);
}

static void test_required(void **state)
{
	assert_int_equal(parse_rc("[server]\nurl = https://h\n[mqtt]\nurl = "
				  "mqtts://h\n"),
			 FL_EINVAL);
	assert_int_equal(parse_rc("[device]\nid = a\n[mqtt]\nurl = mqtts://h\n"),
			 FL_EINVAL);
	assert_int_equal(parse_rc("[device]\nid = a\n[server]\nurl = "
				  "https://h\n"),
			 FL_EINVAL);
	assert_int_equal(parse_rc(""), FL_EINVAL);
}

static void test_bad_values(void **state)
{
	static const char *const bad[] = {
	    "[server]\ntimeout = 0\n",
	    "[server]\ntimeout = 11m\n",
	    "[mqtt]\ntopic_prefix = fleet/#\n",
	    "[mqtt]\ntopic_prefix = +\n",
	    "[mqtt]\ntopic_prefix = /fleet\n",
	    "[mqtt]\ntopic_prefix = a//b\n",
	    "[mqtt]\ntopic_prefix = $SYS\n",
	    /* one level only, as fleetd's [mqtt] topic_prefix (proto.h) */
	    "[mqtt]\ntopic_prefix = site-1/fleet\n",
	    "[mqtt]\ntopic_prefix = fleet.eu\n",
	    "[mqtt]\nkeepalive = 1\n",
	    "[mqtt]\nkeepalive = soon\n",
	    "[mqtt]\nsession_expiry = 400d\n",
	    "[mqtt]\nreconnect_min = 0\n",
	    "[mqtt]\nreconnect_min = 10m\nreconnect_max = 1m\n",
	    "[identity]\nauto_renew = maybe\n",
	    "[boot]\nbackend = efi\npath = x\n",
	    "[boot]\nbackend = sim\n",
	    "[boot]\npath = x\n",
	    "[boot]\nbackend = sim\npath = x\nbootlimit = 0\n",
	    "[boot]\nbackend = sim\npath = x\nbootlimit = 101\n",
	    "[slots]\na = /dev/sda2\n",
	    "[download]\nmax_download_rate = -1\n",
	    "[download]\nmax_download_rate = 1e6\n",
	    "[outbox]\nmax_messages = 0\n",
	    "[outbox]\nmax_messages = 1000001\n",
	    "[outbox]\nmax_bytes = 1023\n",
	    "[outbox]\nmax_age = 59\n",
	    "[outbox]\nmax_age = 366d\n",
	    "[telemetry]\ninterval = 2d\n",
	    "[health]\ncommand = \n",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		char *text = fl_xasprintf("%s%s", MINIMAL, bad[i]);
		int rc = parse_rc(text);

		if (rc != FL_EINVAL && rc != FL_EPARSE)
			fail_msg("accepted: %s", bad[i]);
		free(text);
	}
}

/* Bad values of the required keys (each with the other two valid). */
static void test_bad_required_values(void **state)
{
	static const char *const ids[] = {"GW-1", "gw/1", "gw+", "-gw", "a#"};
	static const char *const urls[] = {
	    "http://127.0.0.1", "https://", "https://h/", "https://u@h",
	    "https://h?x", "ftp://h"};
	static const char *const mqtts[] = {
	    "mqtt://h:1883", "mqtts://h:0",    "mqtts://h:70000",
	    "mqtts://h:88/x", "mqtts://:8883", "mqtts://[::1",
	    "mqtts://u@h",   "tcp://h"};
	char *text;

	for (size_t i = 0; i < FL_ARRAY_SIZE(ids); i++) {
		text = fl_xasprintf("[device]\nid = %s\n[server]\nurl = "
				    "https://h\n[mqtt]\nurl = mqtts://h\n",
				    ids[i]);
		assert_int_equal(parse_rc(text), FL_EINVAL);
		free(text);
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(urls); i++) {
		text = fl_xasprintf("[device]\nid = a\n[server]\nurl = %s\n"
				    "[mqtt]\nurl = mqtts://h\n",
				    urls[i]);
		assert_int_equal(parse_rc(text), FL_EINVAL);
		free(text);
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(mqtts); i++) {
		text = fl_xasprintf("[device]\nid = a\n[server]\nurl = "
				    "https://h\n[mqtt]\nurl = %s\n",
				    mqtts[i]);
		assert_int_equal(parse_rc(text), FL_EINVAL);
		free(text);
	}
}

static void test_caps(void **state)
{
	char *line = fl_xmalloc(300), *text;

	memset(line, 'a', 299);
	line[299] = '\0';
	text = fl_xasprintf(MINIMAL "[health]\ncommand = %s\n", line);
	assert_int_not_equal(parse_rc(text), 0);
	free(text);
	free(line);
}

static void test_mqtt_url(void **state)
{
	struct fl_error err = {0};
	char *host = NULL;
	int port = 0;

	assert_int_equal(agent_config_parse_mqtt_url("mqtts://b.example", &host,
						     &port, &err),
			 0);
	assert_string_equal(host, "b.example");
	assert_int_equal(port, 8883);
	free(host);
	assert_int_equal(
	    agent_config_parse_mqtt_url("mqtts://[::1]:1884", &host, &port, &err),
	    0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1884);
	free(host);
	assert_int_equal(agent_config_parse_mqtt_url("mqtts://[::1]x", &host,
						     &port, &err),
			 FL_EINVAL);
	assert_int_equal(agent_config_parse_mqtt_url("mqtts://h:", &host, &port,
						     &err),
			 FL_EINVAL);
	assert_int_equal(
	    agent_config_parse_mqtt_url(NULL, &host, &port, &err), FL_EINVAL);
}

/* The provisioning layout: agent.conf with "state_dir = ." next to the
 * identity files, loaded from another working directory. */
static void test_render_load(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct agent_config_template t = {.id = "dev-p",
					  .server_url = "https://10.0.0.1:8443",
					  .mqtt_url = "mqtts://10.0.0.1:8883"};
	struct fl_error err = {0};
	struct agent_config *c = NULL;
	char *text = NULL, *sub = fl_path_join(f->dir, "dev-p");
	char *path = fl_path_join(sub, "agent.conf"), *ca;

	assert_int_equal(agent_config_render(&t, &text, &err), 0);
	assert_non_null(strstr(text, "id = dev-p"));
	assert_int_equal(fl_mkdir_p(sub, 0700, &err), 0);
	assert_int_equal(fl_write_atomic_str(path, text, 0644, &err), 0);
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(agent_config_load(path, &c, &err), 0);
	assert_string_equal(c->state_dir, sub);
	ca = fl_path_join(sub, "ca.pem");
	assert_string_equal(c->ca_file, ca);
	assert_string_equal(c->mqtt_host, "10.0.0.1");
	agent_config_free(c);
	free(ca);
	free(text);
	free(path);
	free(sub);
}

static void test_render_options_and_refusals(void **state)
{
	struct agent_config_template t = {.id = "dev-p",
					  .server_url = "https://h:1",
					  .mqtt_url = "mqtts://h:2",
					  .state_dir = "/var/lib/x",
					  .ca_file = "/etc/fleet/ca.pem",
					  .topic_prefix = "acme"};
	struct agent_config *c = NULL;
	struct fl_error err = {0};
	char *text = NULL;

	assert_int_equal(agent_config_render(&t, &text, &err), 0);
	assert_int_equal(agent_config_parse(text, "/x", NULL, &c, &err), 0);
	assert_string_equal(c->state_dir, "/var/lib/x");
	assert_string_equal(c->ca_file, "/etc/fleet/ca.pem");
	assert_string_equal(c->topic_prefix, "acme");
	agent_config_free(c);
	free(text);
	text = NULL;
	t.id = "Bad/Id";
	assert_int_equal(agent_config_render(&t, &text, &err), FL_EINVAL);
	assert_null(text);
	t.id = "ok";
	t.mqtt_url = "mqtt://h";
	assert_int_equal(agent_config_render(&t, &text, NULL), FL_EINVAL);
	t.mqtt_url = "mqtts://h\n[device]\nid = evil";
	assert_int_not_equal(agent_config_render(&t, &text, NULL), 0);
	t.mqtt_url = NULL;
	assert_int_equal(agent_config_render(&t, &text, NULL), FL_EINVAL);
	assert_null(text);
}

static void test_load_missing(void **state)
{
	struct fl_error err = {0};
	struct agent_config *c = NULL;

	assert_int_equal(agent_config_load("/nonexistent/agent.conf", &c, &err),
			 FL_ENOTFOUND);
	assert_null(c);
	agent_config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal_defaults),
	    cmocka_unit_test(test_relative_paths),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_unknown_and_repeated),
	    cmocka_unit_test(test_required),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_bad_required_values),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_mqtt_url),
	    cmocka_unit_test_setup_teardown(test_render_load, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test(test_render_options_and_refusals),
	    cmocka_unit_test(test_load_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
