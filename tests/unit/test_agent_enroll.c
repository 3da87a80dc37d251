/* SPDX-License-Identifier: MIT */
/*
 * agent/enroll and agent/reboot, the parts of enrolment and reboot that
 * left fleet-agent's main: the device id choice, the agent.conf writer
 * (its directory made, the file loads back), an enrolment against no
 * fleetd (fails, nothing claimed enrolled) and the reboot decision
 * without an agent.  Enrolment against a real fleetd: e2e t2100.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent_config.h"
#include "enroll.h"
#include "fsutil.h"
#include "reboot.h"
#include "tmpdir.h"
#include "util.h"

static void test_pick_id(void **state)
{
	struct agent_config cfg = {.id = "from-conf"};
	char buf[64];

	assert_int_equal(agent_enroll_pick_id("Dev-A", NULL, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "dev-a"); /* lower-cased */
	assert_int_equal(agent_enroll_pick_id(NULL, &cfg, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "from-conf");
	assert_int_equal(agent_enroll_pick_id("dev-b", &cfg, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "dev-b"); /* the flag wins */
	assert_int_equal(agent_enroll_pick_id("no/slash", NULL, buf,
					      sizeof(buf)),
			 FL_EINVAL);
	assert_int_equal(agent_enroll_pick_id("", NULL, buf, sizeof(buf)),
			 FL_EINVAL);
}

static void test_config_write(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_xasprintf("%s/etc/fleet/agent.conf", f->dir);
	struct agent_config_template t = {.id = "dev-a",
					  .server_url = "https://127.0.0.1:1",
					  .mqtt_url = "mqtts://127.0.0.1:2",
					  .state_dir = f->dir};
	struct agent_config *cfg = NULL;

	assert_int_equal(agent_config_write(path, &t, NULL), 0);
	assert_int_equal(agent_config_load(path, &cfg, NULL), 0);
	assert_string_equal(cfg->id, "dev-a");
	assert_int_equal(cfg->mqtt_port, 2);
	agent_config_free(cfg);
	t.mqtt_url = "http://nope";
	assert_int_not_equal(agent_config_write(path, &t, NULL), 0);
	assert_int_equal(agent_config_load(path, &cfg, NULL), 0); /* kept */
	agent_config_free(cfg);
	free(path);
}

static void test_enroll_unreachable(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *conf = fl_xasprintf("%s/agent.conf", f->dir);
	char *ca = fl_xasprintf("%s/missing-ca.pem", f->dir);
	struct agent_enroll_req req = {.id = "dev-a",
				       .server_url = "https://127.0.0.1:1",
				       .ca_file = ca,
				       .token = "t",
				       .state_dir = f->dir,
				       .config_path = conf};
	struct agent_enroll_result r;

	assert_int_not_equal(agent_enroll_device(&req, &r, NULL), 0);
	assert_false(r.enrolled);
	assert_false(r.wrote_config);
	assert_false(fl_path_exists(conf));
	agent_enroll_result_release(&r);
	agent_enroll_result_release(NULL);
	free(conf);
	free(ca);
}

static void test_reboot_due_without_agent(void **state)
{
	assert_false(agent_reboot_due(NULL, 0, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick_id),
	    cmocka_unit_test_setup_teardown(test_config_write, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_enroll_unreachable,
					    tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test(test_reboot_due_without_agent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
