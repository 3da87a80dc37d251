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
 *
 * A simulated device can have a faulty sensor bus: fleet-sim
 * --fail-rate puts a file "fault-sensor-bus" next to the device's slots
 * (the agent's health check names the slot in FLEET_SLOT_PATH), and
 * every build's self test then fails on that device, as on hardware
 * with a broken bus.
 *
 * The self test's result is a telemetry value too (docs/telemetry.md):
 * "fw.selftest 1" (ok) or 0 in a file of the agent's drop dir, named by
 * FLEET_TELEMETRY_DIR when the agent runs the health check.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A fault file next to the slot (fleet-sim --fail-rate)? */
static int bus_fault(void)
{
	const char *slot = getenv("FLEET_SLOT_PATH");
	const char *slash = slot ? strrchr(slot, '/') : NULL;
	char path[PATH_MAX];

	if (!slash || (size_t)(slash - slot) + 20 > sizeof(path))
		return 0;
	snprintf(path, sizeof(path), "%.*s/fault-sensor-bus",
		 (int)(slash - slot), slot);
	return access(path, F_OK) == 0;
}

static const char *check_sensor_bus(void)
{
	if (!FW_HEALTHY)
		return "sensor bus does not answer (timeout)";
	return bus_fault() ? "sensor bus does not answer (hardware fault)"
			   : NULL;
}

/* "fw.selftest 1|0" into the agent's telemetry drop dir, written under
 * another name and renamed, so the agent never reads half a file. */
static void publish_result(int ok)
{
	const char *dir = getenv("FLEET_TELEMETRY_DIR");
	char tmp[PATH_MAX], path[PATH_MAX];
	FILE *f;

	if (!dir || strlen(dir) + 32 > sizeof(tmp))
		return;
	snprintf(tmp, sizeof(tmp), "%s/fw-selftest.tmp", dir);
	snprintf(path, sizeof(path), "%s/fw-selftest.tlm", dir);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "fw.selftest %d\n", ok);
	if (fclose(f) == 0)
		rename(tmp, path);
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
	publish_result(!failed);
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
