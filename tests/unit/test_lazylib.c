/* SPDX-License-Identifier: MIT */
/*
 * Libraries loaded on first use (common/lazylib.h): forwarders reach the
 * real functions with their arguments intact (zlib; libcurl's variadic
 * setopt/getinfo through the real shim, one option of each argument
 * type), and a library that is not installed is a clean error naming
 * its package.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <zlib.h>

#include <libuboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot.h"
#include "boot_internal.h"
#include "http.h"
#include "lazylib.h"

static struct fl_lazylib libz = FL_LAZYLIB_INIT("libz.so.1", "zlib1g");
FL_LAZY(libz, const char *, zlibVersion, (void), ())
FL_LAZY(libz, uLong, crc32, (uLong crc, const Bytef *buf, uInt len),
	(crc, buf, len))

static void test_forwarders(void **state)
{
	const Bytef check[] = "123456789";

	assert_string_equal(zlibVersion(), ZLIB_VERSION);
	assert_int_equal(crc32(0, check, 9), 0xCBF43926);
	assert_non_null(libz.handle);
}

static void test_missing(void **state)
{
	struct fl_lazylib none =
	    FL_LAZYLIB_INIT("libfleet-missing.so.9", "fleet-missing");
	struct fl_error err = {0};

	assert_int_equal(fl_lazylib_load(&none, &err), FL_ERR);
	assert_non_null(strstr(err.msg, "cannot load libfleet-missing.so.9"));
	assert_non_null(strstr(err.msg, "install the package fleet-missing"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(fl_lazylib_load(&none, &err), FL_ERR); /* once */
	assert_non_null(strstr(err.msg, "fleet-missing"));
}

static size_t sink(char *p, size_t size, size_t n, void *user)
{
	return size * n;
}

static void test_curl_variadic(void **state)
{
	struct fl_error err = {0};
	char *url = NULL;
	long port = 0;
	CURL *c;

	assert_int_equal(fl_curl_init(&err), 0);
	c = curl_easy_init();
	assert_non_null(c);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PORT, 4321L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, "https://127.0.0.1/x"),
			 CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink),
			 CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
					  (curl_off_t)1 << 40),
			 CURLE_OK);
	/* a long where curl wants a positive value is refused by curl */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXREDIRS, -2L),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url),
			 CURLE_OK);
	assert_string_equal(url, "https://127.0.0.1/x");
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_PRIMARY_PORT, &port),
			 CURLE_OK);
	assert_int_equal(port, 0); /* nothing connected */
	curl_easy_cleanup(c);
}

/* Is a shared object whose path contains @name mapped here? */
static bool mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, name) != NULL;
	fclose(f);
	return found;
}

/* A held library is mapped between hold and the last drop only. */
static void test_held(void **state)
{
	struct fl_error err = {0};
	struct uboot_ctx *ctx = NULL;
	pid_t pid;
	int status;

	assert_false(mapped("libubootenv.so"));
	assert_int_equal(boot_ubootenv_hold(&err), 0);
	assert_int_equal(boot_ubootenv_hold(&err), 0);
	assert_true(mapped("libubootenv.so"));
	assert_int_equal(libuboot_initialize(&ctx, NULL), 0);
	libuboot_exit(ctx);
	boot_ubootenv_drop();
	assert_true(mapped("libubootenv.so")); /* one hold left */
	boot_ubootenv_drop();
	assert_false(mapped("libubootenv.so"));
	/* a call outside a session ends the process with a message */
	pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		libuboot_exit(NULL);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

/* fleet-sim's agent_boot_keep_loaded: one hold never dropped, so the
 * library stays after every session ends (runs after test_held). */
static void test_keep_loaded(void **state)
{
	struct fl_error err = {0};

	assert_false(mapped("libubootenv.so"));
	assert_int_equal(agent_boot_keep_loaded(&err), 0);
	assert_int_equal(boot_ubootenv_hold(&err), 0);
	boot_ubootenv_drop();
	assert_true(mapped("libubootenv.so"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forwarders),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_curl_variadic),
	    cmocka_unit_test(test_held),
	    cmocka_unit_test(test_keep_loaded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
