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
	     "\"remote\":null}]");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time),  cmocka_unit_test(test_device),
	    cmocka_unit_test(test_lists), cmocka_unit_test(test_bundle),
	    cmocka_unit_test(test_job),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
