/* SPDX-License-Identifier: MIT */
/*
 * The sample firmware: what fleet-sim installs into its file-backed
 * slots and what the agent's health check runs.  Built several times
 * with different FW_VERSION / FW_HEALTHY (see the Makefile); the
 * unhealthy build fails its self test, as a bad release would.
 *
 *   fw               print "fleet-sample-firmware VERSION"
 *   fw --version     print VERSION
 *   fw --selftest    check the "device"; exit 0 healthy, 1 unhealthy
 */
#include <stdio.h>
#include <string.h>

#ifndef FW_VERSION
#define FW_VERSION "0.0.0"
#endif
#ifndef FW_HEALTHY
#define FW_HEALTHY 1
#endif

/* A stand-in for real checks: each returns NULL or what went wrong. */
static const char *check_storage(void)
{
	return NULL;
}

static const char *check_sensor_bus(void)
{
	return FW_HEALTHY ? NULL : "sensor bus does not answer (timeout)";
}

static int selftest(void)
{
	static const char *(*const checks[])(void) = {check_storage,
						      check_sensor_bus};
	int failed = 0;

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const char *why = checks[i]();

		if (why) {
			fprintf(stderr, "selftest: %s\n", why);
			failed = 1;
		}
	}
	printf("selftest %s: %s\n", FW_VERSION, failed ? "FAILED" : "ok");
	return failed;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("%s\n", FW_VERSION);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--selftest") == 0)
		return selftest();
	if (argc != 1) {
		fprintf(stderr, "usage: fw [--version | --selftest]\n");
		return 2;
	}
	printf("fleet-sample-firmware %s\n", FW_VERSION);
	return 0;
}
