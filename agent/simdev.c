/* SPDX-License-Identifier: MIT */
/*
 * The sim device (simdev.h), the simulated device of sim mode
 * (DESIGN §6): a directory with the "sim" bootloader environment, slot-a and
 * slot-b (the sample firmware programs) and a boot counter.  `fleet-agent run
 * --sim DIR` is a power on: the bootloader step runs first (boot count,
 * fall-back), then the agent; a "reboot" restarts the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "fsutil.h"
#include "simdev.h"
#include "util.h"

#define COPY_BUF (64 * 1024)

/* Copy @src to @dst (mode 0755) through a temp file and a rename. */
static int copy_exec(const char *src, const char *dst, struct fl_error *err)
{
	char *tmp = fl_xasprintf("%s.tmp", dst), *buf = fl_xmalloc(COPY_BUF);
	int in = -1, out = -1, rc = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = fl_fail_errno(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				   "cannot open '%s'", src);
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", tmp);
		goto out;
	}
	while (!rc && (n = read(in, buf, COPY_BUF)) > 0)
		rc = fl_write_all(out, buf, (size_t)n, err);
	if (!rc && n < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot read '%s'", src);
	if (!rc && (fchmod(out, 0755) < 0 || fsync(out) < 0))
		rc = fl_fail_errno(err, FL_EIO, "cannot write '%s'", tmp);
	if (!rc && rename(tmp, dst) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot rename to '%s'", dst);
	if (!rc)
		rc = fl_fsync_parent(dst, err);
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (rc)
		unlink(tmp);
	free(tmp);
	free(buf);
	return rc;
}

int agent_simdev_init(const char *dir, const char *image, unsigned bootlimit,
		      struct fl_error *err)
{
	struct agent_boot_opts bo = {.backend = "sim", .path = dir};
	struct agent_boot *boot = NULL;
	char *slot_a;
	int rc;

	rc = fl_mkdir_p(dir, 0755, err);
	if (rc)
		return rc;
	slot_a = fl_path_join(dir, "slot-a");
	if (fl_path_exists(slot_a)) {
		rc = fl_fail(err, FL_ECONFLICT,
			     "'%s' is a simulated device "
			     "already",
			     dir);
		goto out;
	}
	rc = agent_boot_open(&bo, &boot, err);
	if (!rc)
		rc = agent_boot_init(boot, "a", bootlimit, err);
	if (!rc)
		rc = copy_exec(image, slot_a, err);
out:
	agent_boot_close(boot);
	free(slot_a);
	return rc;
}

/* Count the boot up in DIR/boot-count. */
static int count_boot(const char *dir, unsigned long long *ret,
		      struct fl_error *err)
{
	char *path = fl_path_join(dir, AGENT_SIMDEV_BOOT_FILE), *text = NULL;
	char buf[32];
	uint64_t n = 0;
	int rc;

	rc = fl_read_file(path, 64, &text, NULL, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		rc = 0;
	} else if (!rc) {
		text[strcspn(text, "\n")] = '\0';
		rc = fl_parse_uint(text, UINT64_MAX - 1, &n, err);
	}
	if (!rc) {
		snprintf(buf, sizeof(buf), "%" PRIu64 "\n", n + 1);
		rc = fl_write_atomic_str(path, buf, 0644, err);
	}
	if (!rc)
		*ret = n + 1;
	free(text);
	free(path);
	return rc;
}

int agent_simdev_power_on(const char *dir, struct agent_simdev_boot *ret,
			  struct fl_error *err)
{
	struct agent_boot_opts bo = {.backend = "sim", .path = dir};
	struct agent_boot *boot = NULL;
	struct agent_simdev_boot r = {0};
	char *slot_a = fl_path_join(dir, "slot-a");
	int rc = 0;

	if (!fl_path_exists(slot_a))
		rc = fl_fail(err, FL_ENOTFOUND,
			     "'%s' is not a simulated device (run "
			     "'fleet-agent sim-init %s --image FW' first)",
			     dir, dir);
	free(slot_a);
	if (!rc)
		rc = agent_boot_open(&bo, &boot, err);
	if (!rc)
		rc = agent_boot_sim_step(boot, &r.step, err);
	if (!rc)
		rc = count_boot(dir, &r.boot, err);
	agent_boot_close(boot);
	if (!rc)
		*ret = r;
	return rc;
}
