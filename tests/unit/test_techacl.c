/* What the broker plugin lets a technician's certificate do
 * (broker-plugin/techacl.c, issue 12): its diag requests and its own
 * answers, nothing else.  t5060 checks the same against a live broker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../broker-plugin/techacl.c"

#define R MOSQ_ACL_READ
#define W MOSQ_ACL_WRITE
#define S MOSQ_ACL_SUBSCRIBE

static bool may(const char *topic, int access)
{
	return fr_tech_allowed("fleet", "tech-bob", topic, access, false);
}

static void test_technician_names(void **state)
{
	assert_true(fr_tech_user("tech-bob"));
	assert_false(fr_tech_user("techbob"));
	assert_false(fr_tech_user("fleetd"));
	assert_false(fr_tech_user(NULL));
}

static void test_requests(void **state)
{
	assert_true(may("fleet/dev-a/diag/req", W));
	assert_false(fr_tech_allowed("fleet", "tech-bob",
				     "fleet/dev-a/diag/req", W,
				     true)); /* retained: rerun at reconnects */
	assert_false(may("fleet/+/diag/req", W));
	assert_false(may("fleet/fleetd/diag/req", W));
	assert_false(may("fleet/tech-eve/diag/req", W));
	assert_false(may("fleet/Dev/diag/req", W));
	assert_false(may("fleet//diag/req", W));
	assert_false(may("acme/dev-a/diag/req", W));
	assert_false(may("fleet/dev-a/diag/req/x", W));
	assert_false(may("fleet/dev-a/diag/req", R));
	assert_false(may("fleet/dev-a/diag/req", S));
}

static void test_answers(void **state)
{
	assert_true(may("fleet/+/diag/resp/tech-bob", S));
	assert_true(may("fleet/dev-a/diag/resp/tech-bob", S));
	assert_true(may("fleet/dev-a/diag/resp/tech-bob", R));
	assert_false(may("fleet/+/diag/resp/tech-bob", R));
	assert_false(may("fleet/dev-a/diag/resp/tech-bob", W));
	assert_false(may("fleet/+/diag/resp/tech-alice", S));
	assert_false(may("fleet/+/diag/resp/+", S));
	assert_false(may("fleet/+/diag/resp/#", S));
	assert_false(may("fleet/#", S));
	assert_false(may("fleet/+/diag/resp/fleetd", S));
	assert_false(may("fleet/dev-a/diag/resp/tech-bob/x", S));
}

static void test_everything_else(void **state)
{
	static const char *const topics[] = {"#",
					     "$SYS/#",
					     "fleet/dev-a/cmd",
					     "fleet/+/status",
					     "fleet/dev-a/events",
					     "fleet/dev-a/presence",
					     "fleet/fleetd/presence",
					     "fleet/tech-bob/status",
					     "$CONTROL/dynamic-security/v1"};

	for (size_t i = 0; i < sizeof(topics) / sizeof(*topics); i++) {
		assert_false(may(topics[i], R));
		assert_false(may(topics[i], W));
		assert_false(may(topics[i], S));
	}
	assert_true(may("#", MOSQ_ACL_UNSUBSCRIBE));
	assert_false(may(NULL, R));
}

/* fleetd's replicas (issue 14): fleetd's rights, shared subscriptions
 * to them, nothing else. */
static void test_replicas(void **state)
{
	assert_true(fr_replica_user("fleetd.a"));
	assert_false(fr_replica_user("fleetd."));
	assert_false(fr_replica_user("fleetd"));
	assert_false(fr_replica_user("fleetdx"));
	assert_false(fr_replica_user(NULL));
	assert_true(fr_replica_allowed("fleet", "fleet/dev-a/cmd", W));
	assert_true(fr_replica_allowed("fleet", "fleet/+/events", S));
	assert_true(
	    fr_replica_allowed("fleet", "$share/fleetd/fleet/+/events", S));
	assert_false(fr_replica_allowed("fleet", "$share/fleetd/fleet/x", W));
	assert_false(fr_replica_allowed("fleet", "$share//fleet/+/events", S));
	assert_false(fr_replica_allowed("fleet", "$share/fleetd/", S));
	assert_false(fr_replica_allowed("fleet", "$share/fleetd/#", S));
	assert_true(
	    fr_replica_allowed("fleet", "$CONTROL/dynamic-security/v1", W));
	assert_true(fr_replica_allowed(
	    "fleet", "$SYS/broker/publish/messages/dropped", S));
	assert_false(fr_replica_allowed(
	    "fleet", "$SYS/broker/publish/messages/dropped", W));
	assert_false(fr_replica_allowed("fleet", "$SYS/#", S));
	assert_false(fr_replica_allowed("fleet", "#", S));
	assert_false(fr_replica_allowed("fleet", "fleetx/a", R));
	assert_false(fr_replica_allowed("fleet", "acme/dev-a/cmd", W));
	assert_false(fr_replica_allowed("fleet", NULL, R));
	/* a technician may not ask a replica's "device" */
	assert_false(may("fleet/fleetd.a/diag/req", W));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_technician_names),
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_everything_else),
	    cmocka_unit_test(test_replicas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
