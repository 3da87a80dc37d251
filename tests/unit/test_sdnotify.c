/* SPDX-License-Identifier: MIT */
/*
 * common/sdnotify: the notify protocol against a real AF_UNIX datagram
 * socket, by path and in the abstract namespace ('@'); the environment
 * left to children or not; the watchdog's interval, its pid check and
 * its pace (half the interval); no manager means no-ops.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "sdnotify.h"

/* A datagram socket bound to @name (a path, or '@' for abstract). */
static int listen_at(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(n < sizeof(a.sun_path));
	memcpy(a.sun_path, name, n);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	assert_int_equal(
	    bind(fd, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
	    0);
	return fd;
}

/* The next datagram, or "" when none is waiting. */
static const char *next_msg(int fd)
{
	static char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	buf[n] = '\0';
	return buf;
}

static void clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void test_no_manager(void **state)
{
	struct fl_error err = {0};

	clear_env();
	assert_false(fl_sd_init(true));
	assert_int_equal(fl_sd_notify("READY=1", &err), 0);
	assert_int_equal(fl_sd_watchdog_ms(), 0);
	fl_sd_watchdog(1000);
	/* neither relative paths nor names too long are sockets */
	setenv("NOTIFY_SOCKET", "relative/sock", 1);
	assert_false(fl_sd_init(true));
	clear_env();
}

static void test_path_socket(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct fl_error err = {0};
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", f->dir);
	fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_true(fl_sd_init(false));
	/* kept in the environment when asked to */
	assert_non_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(fl_sd_notify("READY=1", &err), 0);
	assert_string_equal(next_msg(fd), "READY=1");
	assert_int_equal(fl_sd_notify("STOPPING=1", &err), 0);
	assert_string_equal(next_msg(fd), "STOPPING=1");
	assert_string_equal(next_msg(fd), "");
	/* the manager went away: an I/O error, not a crash */
	close(fd);
	unlink(path);
	assert_int_equal(fl_sd_notify("READY=1", &err), FL_EIO);
	clear_env();
}

static void test_abstract_socket(void **state)
{
	struct fl_error err = {0};
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@fleet-test-sdnotify-%d", (int)getpid());
	fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_true(fl_sd_init(true));
	/* gone from the environment: children do not notify in our name */
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(fl_sd_notify("READY=1", &err), 0);
	assert_string_equal(next_msg(fd), "READY=1");
	close(fd);
	clear_env();
}

static void test_watchdog(void **state)
{
	char name[64], pid[16];
	int fd;

	snprintf(name, sizeof(name), "@fleet-test-wd-%d", (int)getpid());
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "4000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_true(fl_sd_init(true));
	assert_null(getenv("WATCHDOG_USEC"));
	assert_int_equal(fl_sd_watchdog_ms(), 4000);
	/* the first pass pings, then every half interval, not before */
	fl_sd_watchdog(10000);
	assert_string_equal(next_msg(fd), "WATCHDOG=1");
	fl_sd_watchdog(11999);
	assert_string_equal(next_msg(fd), "");
	fl_sd_watchdog(12000);
	assert_string_equal(next_msg(fd), "WATCHDOG=1");
	fl_sd_watchdog(12001);
	assert_string_equal(next_msg(fd), "");
	close(fd);
	clear_env();
}

static void test_watchdog_other_pid(void **state)
{
	char pid[16];

	/* a parent's watchdog that leaked into us is not ours */
	snprintf(pid, sizeof(pid), "%d", (int)getppid());
	setenv("NOTIFY_SOCKET", "@fleet-test-wd-other", 1);
	setenv("WATCHDOG_USEC", "4000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_true(fl_sd_init(true));
	assert_int_equal(fl_sd_watchdog_ms(), 0);
	/* malformed values mean no watchdog */
	setenv("NOTIFY_SOCKET", "@fleet-test-wd-other", 1);
	setenv("WATCHDOG_USEC", "4s", 1);
	assert_true(fl_sd_init(true));
	assert_int_equal(fl_sd_watchdog_ms(), 0);
	clear_env();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_manager),
	    cmocka_unit_test_setup_teardown(test_path_socket, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test(test_abstract_socket),
	    cmocka_unit_test(test_watchdog),
	    cmocka_unit_test(test_watchdog_other_pid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
