/* SPDX-License-Identifier: MIT */
/*
 * server-stub/api_json: the API's objects for the store's rows, compared
 * byte for byte with the documents fleetd printed when they were built
 * in SQL (issue 9): same keys, same order, same nulls, same times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_json.h"
#include "json.h"
#include "rollouts.h"

#define T0 1700000000 /* 2023-11-14T22:13:20Z */
#define T0S "2023-11-14T22:13:20Z"

/* @j as fleetd sends it (compact), compared with @want; consumes @j. */
static void same(json_t *j, const char *want)
{
	char *text = fl_json_dumps(j);

	assert_string_equal(text, want);
	free(text);
	json_decref(j);
}

static void test_time(void **state)
{
	(void)state;
	same(api_time_json(0), "null");
	same(api_time_json(-5), "null");
	same(api_time_json(T0), "\"" T0S "\"");
}

static void test_device(void **state)
{
	char *labels_k[] = {"rack", "site"}, *labels_v[] = {"r1", "berlin"};
	char *certs[] = {"0b", "0a"};
	struct srv_label lab[] = {{labels_k[0], labels_v[0]},
				  {labels_k[1], labels_v[1]}};
	struct srv_device_row d = {.id = "dev-1",
				   .group = "line-1",
				   .state = "active",
				   .online = true,
				   .last_seen = T0,
				   .firmware = "1.2.0",
				   .slot = "b",
				   .health = "good",
				   .agent = "0.9",
				   .created = T0,
				   .enrolled_by = "token:abc",
				   .labels = {2, lab},
				   .cert_serial = "0a",
				   .cert_expires = T0,
				   .active_certs = {2, certs},
				   .last_event =
				       "{\"seq\":3,\"state\":\"idle\"}"};
	struct srv_device_row bare = {.id = "dev-2", .state = "decommissioned"};
	json_t *j;

	(void)state;
	same(api_device_json(&d),
	     "{\"id\":\"dev-1\",\"group\":\"line-1\",\"state\":\"active\","
	     "\"online\":true,\"last_seen\":\"" T0S "\",\"firmware\":\"1.2.0\","
	     "\"slot\":\"b\",\"health\":\"good\",\"agent\":\"0.9\","
	     "\"created\":\"" T0S
	     "\",\"enrolled_by\":\"token:abc\",\"labels\":{\"rack\":\"r1\","
	     "\"site\":\"berlin\"},\"cert_serial\":\"0a\",\"cert_expires\":"
	     "\"" T0S
	     "\",\"active_certs\":[\"0b\",\"0a\"],\"last_event\":{\"seq\":"
	     "3,\"state\":\"idle\"}}");
	same(api_device_json(&bare),
	     "{\"id\":\"dev-2\",\"group\":null,\"state\":\"decommissioned\","
	     "\"online\":false,\"last_seen\":null,\"firmware\":null,"
	     "\"slot\":null,\"health\":null,\"agent\":null,\"created\":null,"
	     "\"enrolled_by\":null,\"labels\":{},\"cert_serial\":null,"
	     "\"cert_expires\":null,\"active_certs\":[],\"last_event\":null}");
	/* an unreadable stored event reads as none */
	bare.last_event = "{not json";
	j = api_device_json(&bare);
	assert_true(json_is_null(json_object_get(j, "last_event")));
	json_decref(j);
}

static void test_lists(void **state)
{
	struct srv_token_row t[] = {{.id = "t1",
				     .name = "alice",
				     .kind = "operator",
				     .role = SRV_ROLE_ADMIN,
				     .uses_left = -1,
				     .created = T0,
				     .created_by = "init"},
				    {.id = "t2",
				     .name = "line",
				     .kind = "enroll",
				     .group = "g",
				     .uses_left = 0,
				     .created = T0,
				     .expires = T0,
				     .last_used = T0,
				     .revoked = true}};
	struct srv_token_list tl = {2, t};
	struct srv_audit_row a = {.id = 7,
				  .time = T0,
				  .actor = "token:t1",
				  .method = "POST",
				  .path = "/api/v1/tokens",
				  .status = 201};
	struct srv_audit_list al = {1, &a};
	struct srv_root_row r = {.version = 2, .expires = T0, .added = T0};
	struct srv_root_list rl = {1, &r};

	(void)state;
	same(api_tokens_json(&tl),
	     "[{\"id\":\"t1\",\"name\":\"alice\",\"kind\":\"operator\","
	     "\"role\":\"admin\",\"group\":null,\"uses_left\":null,"
	     "\"created\":\"" T0S "\",\"expires\":null,\"last_used\":null,"
	     "\"revoked\":false,\"created_by\":\"init\"},"
	     "{\"id\":\"t2\",\"name\":\"line\",\"kind\":\"enroll\","
	     "\"role\":null,\"group\":\"g\",\"uses_left\":0,\"created\":\"" T0S
	     "\",\"expires\":\"" T0S "\",\"last_used\":\"" T0S "\","
	     "\"revoked\":true,\"created_by\":null}]");
	same(api_audit_json(&al),
	     "[{\"id\":7,\"time\":\"" T0S "\",\"actor\":\"token:t1\","
	     "\"method\":\"POST\",\"path\":\"/api/v1/tokens\",\"status\":201,"
	     "\"remote\":null,\"detail\":null}]");
	same(api_roots_json(&rl),
	     "[{\"version\":2,\"expires\":\"" T0S "\",\"added\":\"" T0S
	     "\",\"added_by\":null}]");
}

static void test_bundle(void **state)
{
	char *hw[] = {"board-a", "board-b"};
	struct srv_bundle_row b = {.id = "0123456789abcdef",
				   .sha256 = "ff",
				   .name = "fw",
				   .version = "1.0",
				   .security_version = 3,
				   .hardware = {2, hw},
				   .size = 4096,
				   .created = T0,
				   .uploaded_by = "token:ci"};
	struct srv_bundle_list l = {1, &b};
	const char *head =
	    "{\"id\":\"0123456789abcdef\",\"sha256\":\"ff\",\"name\":\"fw\","
	    "\"version\":\"1.0\",\"security_version\":3,\"hardware\":"
	    "[\"board-a\",\"board-b\"],\"size\":4096,\"created\":\"" T0S
	    "\",\"uploaded_by\":\"token:ci\"";
	char want[1024];

	(void)state;
	snprintf(want, sizeof(want), "[%s}]", head);
	same(api_bundles_json(&l), want);
	b.manifest = "{\"name\":\"fw\"}";
	snprintf(want, sizeof(want), "%s,\"manifest\":{\"name\":\"fw\"}}",
		 head);
	same(api_bundle_json(&b), want);
}

static void test_job(void **state)
{
	char *ev[] = {"{\"seq\":1,\"state\":\"downloading\"}", "bad"};
	struct srv_job_row j = {.id = "j1",
				.device = "dev-1",
				.type = "update",
				.bundle = "b1",
				.command = "c1",
				.state = "downloading",
				.from_version = "1.0",
				.to_version = "1.1",
				.bytes = 10,
				.total = -1,
				.created = T0,
				.updated = T0,
				.created_by = "token:t1",
				.events = {2, ev}};
	struct srv_job_list l = {1, &j};
	const char *head =
	    "{\"id\":\"j1\",\"device\":\"dev-1\",\"type\":\"update\","
	    "\"bundle\":\"b1\",\"command\":\"c1\",\"rollout\":null,"
	    "\"state\":\"downloading\",\"final\":false,\"stage\":null,"
	    "\"reason\":null,\"from_version\":\"1.0\",\"to_version\":"
	    "\"1.1\",\"bytes\":10,\"total\":null,\"created\":\"" T0S
	    "\",\"updated\":\"" T0S "\",\"created_by\":\"token:t1\","
	    "\"expires\":null";
	char want[1024];

	(void)state;
	snprintf(want, sizeof(want), "[%s}]", head);
	same(api_jobs_json(&l), want);
	snprintf(want, sizeof(want),
		 "%s,\"events\":[{\"seq\":1,\"state\":\"downloading\"},null]}",
		 head);
	same(api_job_json(&j, true), want);
}

/* The rollout documents (docs/protocol.md "Rollouts"): the dashboard
 * and scripts read them, so every key, its order and its nulls are
 * pinned. */
static void test_rollout(void **state)
{
	struct srv_rollout_wave_row waves[] = {{0, "1", 1, T0, T0},
					       {1, "100%", 2, T0, 0}};
	struct srv_rollout_count counts[] = {{0, "healthy", 1},
					     {1, "failed", 1},
					     {1, "commanded", 1}};
	struct srv_rollout_device_row devs[] = {
		{"d2", "failed", "j2", NULL, "1.0", "update failed", 1, 1, T0,
		 T0, 1, T0, T0}};
	struct srv_rollout_event ev[] = {{7, T0, 1, "failed", "d2", "why"},
					 {6, T0, -1, "created", NULL, NULL}};
	struct srv_rollout_view v = {
		.row = {.id = "r1", .bundle = "b1", .version = "1.1",
			.state = "running", .spec = "{\"id\":\"r1\"}",
			.created_by = "token:t", .wave = 1, .n_waves = 2,
			.created = T0, .updated = T0, .devices = 3},
		.waves = {2, waves},
		.counts = {3, counts},
		.gate = {.failed = 1, .finished = 2, .started = 3,
			 .percent = 10, .min_sample = 5, .needed = 3},
		.failures = {1, devs},
		.devices = {1, devs},
		.events = {2, ev},
		.with_devices = true,
		.with_events = true};
	const char *counts_a =
	    "{\"pending\":0,\"commanded\":0,\"updated\":0,\"healthy\":1,"
	    "\"failed\":0,\"skipped\":0,\"cancelled\":0,\"rolling-back\":0,"
	    "\"rolled-back\":0,\"rollback-failed\":0}";
	const char *counts_b =
	    "{\"pending\":0,\"commanded\":1,\"updated\":0,\"healthy\":0,"
	    "\"failed\":1,\"skipped\":0,\"cancelled\":0,\"rolling-back\":0,"
	    "\"rolled-back\":0,\"rollback-failed\":0}";
	char want[4096];

	(void)state;
	snprintf(
	    want, sizeof(want),
	    "{\"id\":\"r1\",\"state\":\"running\",\"reason\":null,\"wave\":2,"
	    "\"waves_total\":2,\"bundle\":{\"id\":\"b1\",\"name\":\"fw\","
	    "\"version\":\"1.1\"},\"total\":3,\"counts\":{\"pending\":0,"
	    "\"commanded\":1,\"updated\":0,\"healthy\":1,\"failed\":1,"
	    "\"skipped\":0,\"cancelled\":0,\"rolling-back\":0,\"rolled-back\":0,"
	    "\"rollback-failed\":0},\"created\":\"" T0S "\",\"updated\":\"" T0S
	    "\",\"finished\":null,\"created_by\":\"token:t\",\"soak_until\":null,"
	    "\"gate\":{\"failed\":1,\"finished\":2,\"percent\":50,\"threshold\":"
	    "10,\"min_sample\":5,\"needed\":3,\"started\":3,\"tripped\":false},"
	    "\"waves\":[{\"wave\":1,\"stop\":\"1\",\"devices\":1,\"started\":\""
	    T0S "\",\"done\":\"" T0S "\",\"counts\":%s},{\"wave\":2,\"stop\":"
	    "\"100%%\",\"devices\":2,\"started\":\"" T0S "\",\"done\":null,"
	    "\"counts\":%s}],\"failures\":[{\"device\":\"d2\",\"wave\":2,"
	    "\"state\":\"failed\",\"reason\":\"update failed\",\"time\":\"" T0S
	    "\"}],\"spec\":{\"id\":\"r1\"},\"devices\":[{\"device\":\"d2\","
	    "\"wave\":2,\"order\":2,\"state\":\"failed\",\"job\":\"j2\","
	    "\"rollback_job\":null,\"from_version\":\"1.0\",\"reason\":"
	    "\"update failed\",\"commanded\":\"" T0S "\",\"sent\":\"" T0S
	    "\",\"sends\":1,\"finished\":\"" T0S "\",\"updated\":\"" T0S
	    "\"}],\"events\":[{\"id\":7,\"time\":\"" T0S "\",\"kind\":"
	    "\"failed\",\"wave\":2,\"device\":\"d2\",\"detail\":\"why\"},"
	    "{\"id\":6,\"time\":\"" T0S "\",\"kind\":\"created\",\"wave\":"
	    "null,\"device\":null,\"detail\":null}]}",
	    counts_a, counts_b);
	same(api_rollout_json(&v, "fw"), want);
	v.with_devices = v.with_events = false;
	want[0] = '\0';
	snprintf(
	    want, sizeof(want),
	    "{\"id\":\"r1\",\"state\":\"running\",\"reason\":null,\"wave\":2,"
	    "\"waves_total\":2,\"bundle\":{\"id\":\"b1\",\"name\":\"fw\","
	    "\"version\":\"1.1\"},\"total\":3,\"counts\":{\"pending\":0,"
	    "\"commanded\":1,\"updated\":0,\"healthy\":1,\"failed\":1,"
	    "\"skipped\":0,\"cancelled\":0,\"rolling-back\":0,\"rolled-back\":0,"
	    "\"rollback-failed\":0},\"created\":\"" T0S "\",\"updated\":\"" T0S
	    "\",\"finished\":null,\"created_by\":\"token:t\"}");
	same(api_rollout_summary_json(&v.row, "fw", &v.counts), want);
}

static void test_rollout_plan(void **state)
{
	char *order[] = {"d3", "d1", "d2"};
	char *notes[] = {"wave 2 (10%) is empty and was dropped"};
	char *busy[] = {"d1 (rollout r0)"};
	struct srv_plan_excluded ex[] = {{"d9", "already on 1.1"}};
	struct srv_rollout_preview p = {
		.id = "r-1",
		.generated = true,
		.bundle = {.id = "b1", .name = "fw", .version = "1.1"},
		.plan = {.n = 3, .order = order, .n_waves = 2,
			 .waves = {{{false, 1}, 0, 1}, {{true, 10000}, 1, 2}},
			 .n_excluded = 1, .excluded = ex,
			 .notes = {1, notes}},
		.busy = {1, busy}};

	(void)state;
	p.spec = json_pack("{s:s}", "id", "r-1");
	same(api_rollout_plan_json(&p),
	     "{\"id\":\"r-1\",\"id_generated\":true,\"bundle\":{\"id\":"
	     "\"b1\",\"name\":\"fw\",\"version\":\"1.1\"},\"spec\":{\"id\":"
	     "\"r-1\"},\"total\":3,\"waves\":[{\"wave\":1,\"stop\":\"1\","
	     "\"devices\":[\"d3\"]},{\"wave\":2,\"stop\":\"100%\",\"devices\":"
	     "[\"d1\",\"d2\"]}],\"excluded\":[{\"device\":\"d9\",\"reason\":"
	     "\"already on 1.1\"}],\"busy\":[\"d1 (rollout r0)\"],\"notes\":"
	     "[\"wave 2 (10%) is empty and was dropped\"]}");
	json_decref(p.spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time),  cmocka_unit_test(test_device),
	    cmocka_unit_test(test_lists), cmocka_unit_test(test_bundle),
	    cmocka_unit_test(test_job),	  cmocka_unit_test(test_rollout),
	    cmocka_unit_test(test_rollout_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
