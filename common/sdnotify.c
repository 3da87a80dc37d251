/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "util.h"

/* The process's one manager: the environment is process-wide too. */
static struct sockaddr_un sd_addr;
static socklen_t sd_addr_len;
static int64_t sd_watchdog_ms, sd_last_ping_ms;

/* $WATCHDOG_USEC in ms, or 0 when unset, malformed or for another pid
 * (a parent's value that leaked into us). */
static int64_t watchdog_from_env(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end;
	long long v;

	if (!usec)
		return 0;
	if (pid && strtoll(pid, &end, 10) != (long long)getpid())
		return 0;
	errno = 0;
	v = strtoll(usec, &end, 10);
	if (errno || *end || v <= 0)
		return 0;
	return v / 1000 > 0 ? v / 1000 : 1;
}

bool fl_sd_init(bool unset_env)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n = path ? strlen(path) : 0;

	sd_addr_len = 0;
	sd_watchdog_ms = sd_last_ping_ms = 0;
	if (n >= 2 && n < sizeof(sd_addr.sun_path) &&
	    (path[0] == '/' || path[0] == '@')) {
		memset(&sd_addr, 0, sizeof(sd_addr));
		sd_addr.sun_family = AF_UNIX;
		memcpy(sd_addr.sun_path, path, n);
		if (path[0] == '@') /* abstract: no terminating NUL counts */
			sd_addr.sun_path[0] = '\0';
		sd_addr_len =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				(path[0] == '/'));
		sd_watchdog_ms = watchdog_from_env();
	}
	if (unset_env) {
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
	}
	return sd_addr_len > 0;
}

int fl_sd_notify(const char *state, struct fl_error *err)
{
	size_t n = strlen(state);
	ssize_t sent;
	int fd;

	if (!sd_addr_len)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fl_fail_errno(err, FL_EIO, "notify socket");
	sent = sendto(fd, state, n, MSG_NOSIGNAL,
		      (const struct sockaddr *)&sd_addr, sd_addr_len);
	close(fd);
	if (sent != (ssize_t)n)
		return fl_fail_errno(err, FL_EIO,
				     "cannot notify the service "
				     "manager");
	return 0;
}

int64_t fl_sd_watchdog_ms(void)
{
	return sd_watchdog_ms;
}

void fl_sd_watchdog(int64_t now_ms)
{
	if (!sd_watchdog_ms ||
	    (sd_last_ping_ms && now_ms - sd_last_ping_ms < sd_watchdog_ms / 2))
		return;
	/* a failed ping is retried on the next pass */
	if (fl_sd_notify("WATCHDOG=1", NULL) == 0)
		sd_last_ping_ms = now_ms;
}
