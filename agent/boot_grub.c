/* SPDX-License-Identifier: MIT */
/*
 * The "grub" backend: the variables live in a grubenv file (GRUB's
 * environment block, read by `load_env` in grub.cfg).
 *
 * Reading parses the block directly (bounded, strict for our variables).
 * Writing goes through grub-editenv, the tool that owns the format, but
 * never on the live file: grub-editenv truncates and rewrites it, so a
 * crash in the middle would leave an empty block.  Instead the block is
 * copied to a temporary file beside it, changed there with ONE
 * `grub-editenv TMP set ...` and read back and checked; then its bytes
 * are written over the live block IN PLACE (same file, same size, same
 * disk blocks) and fsynced.
 *
 * Not a rename: GRUB reads /boot with its own ext4 driver, which does not
 * replay the journal.  After a rename, the directory entry and the inodes
 * GRUB would need may sit in the journal for minutes; a power cut then
 * leaves GRUB a directory entry naming the freed inode ("invalid
 * environment block"), and grub.cfg boots slot a whatever it holds
 * (tests/vm/v1003 found it).  Overwriting allocated blocks changes no
 * metadata GRUB reads, which is also how GRUB's own save_env writes.  The
 * write is one 1024-byte pwrite; our variables sit in its first 512-byte
 * sector, which a disk writes whole, so a cut leaves the old or the new
 * variables (a store that changes bytes past the first sector is logged).
 * Only a missing or unreadable grubenv is created by a rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boot_internal.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

#define GRUB_HEADER "# GRUB Environment Block\n"
#define TOOL_STDERR_MAX 200

extern char **environ;

struct grub_priv {
	char *path;	/* the grubenv file */
	char *editenv;	/* grub-editenv program */
	int timeout_ms; /* bound on one run */
};

/* Keep the first value of each of our variables; reject repeats. */
static int take_var(const char *name, size_t nlen, const char *val, size_t vlen,
		    struct boot_vars *vars, struct fl_error *err)
{
	for (size_t i = 0; i < BOOT_NVARS; i++) {
		if (strlen(boot_var_names[i]) != nlen ||
		    memcmp(boot_var_names[i], name, nlen) != 0)
			continue;
		if (vars->v[i])
			return fl_fail(err, FL_EPARSE, "grubenv sets %s twice",
				       boot_var_names[i]);
		vars->v[i] = fl_xstrndup(val, vlen);
		return 0;
	}
	return 0;
}

/*
 * Parse one "name=value\n" line starting at @s (before @end); a backslash
 * escapes the next byte.  *ret_next is set past the newline.
 */
static int parse_line(const char *s, const char *end, struct boot_vars *vars,
		      const char **ret_next, struct fl_error *err)
{
	const char *name = s, *eq = s;
	char *val;
	size_t vlen = 0;
	int rc;

	while (eq < end && *eq != '=' && *eq != '\n')
		eq++;
	if (eq == end || *eq != '=' || eq == s)
		return fl_fail(err, FL_EPARSE,
			       "grubenv line without name=value");
	val = fl_xmalloc((size_t)(end - eq) + 1);
	for (s = eq + 1; s < end && *s != '\n'; s++) {
		if (*s == '\\' && s + 1 < end)
			s++;
		val[vlen++] = *s;
	}
	val[vlen] = '\0';
	if (s == end) {
		free(val);
		return fl_fail(err, FL_EPARSE, "grubenv line not terminated");
	}
	rc = take_var(name, (size_t)(eq - name), val, vlen, vars, err);
	free(val);
	*ret_next = s + 1;
	return rc;
}

/* Parse a whole environment block held in @buf (@len bytes). */
static int parse_block(const char *buf, size_t len, struct boot_vars *ret,
		       struct fl_error *err)
{
	const char *s = buf, *end = buf + len;
	struct boot_vars vars = {0};
	int rc;

	if (len < strlen(GRUB_HEADER) || memchr(buf, '\0', len) ||
	    memcmp(buf, GRUB_HEADER, strlen(GRUB_HEADER)) != 0)
		return fl_fail(err, FL_EPARSE, "not a GRUB environment block");
	while (s < end) {
		if (*s == '#' || *s == '\n') {
			const char *nl = memchr(s, '\n', (size_t)(end - s));

			s = nl ? nl + 1 : end;
			continue;
		}
		rc = parse_line(s, end, &vars, &s, err);
		if (rc) {
			boot_vars_release(&vars);
			return rc;
		}
	}
	*ret = vars;
	return 0;
}

/* Read and parse a grubenv file. */
static int read_block(const char *path, struct boot_vars *ret, char **ret_buf,
		      size_t *ret_len, struct fl_error *err)
{
	char *buf;
	size_t len;
	int rc;

	rc = fl_read_file(path, AGENT_BOOT_GRUBENV_MAX, &buf, &len, err);
	if (rc)
		return rc;
	rc = parse_block(buf, len, ret, err);
	if (rc)
		fl_error_prefix(err, "'%s': ", path);
	if (rc || !ret_buf)
		free(buf);
	else {
		*ret_buf = buf;
		*ret_len = len;
	}
	return rc;
}

static int grub_load(struct agent_boot *b, struct boot_vars *ret,
		     struct fl_error *err)
{
	struct grub_priv *p = b->priv;

	return read_block(p->path, ret, NULL, NULL, err);
}

/* Collect up to TOOL_STDERR_MAX bytes of the child's stderr until EOF or
 * the deadline. */
static void drain_stderr(int fd, int64_t deadline, char *msg, size_t cap)
{
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - fl_now_ms();
		char chunk[256];
		ssize_t n;
		int r;

		if (left <= 0)
			return;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n && len + 1 < cap; i++)
			msg[len++] =
			    (unsigned char)chunk[i] < 0x20 ? ' ' : chunk[i];
		msg[len] = '\0';
	}
}

/* Wait for @pid until @deadline; kill it when the time runs out. */
static int wait_child(pid_t pid, int64_t deadline, int *ret_status)
{
	const struct timespec tick = {0, 5 * 1000 * 1000};
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			*ret_status = status;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return FL_EIO;
		if (fl_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return FL_ETIMEOUT;
		}
		nanosleep(&tick, NULL);
	}
}

/*
 * Run grub-editenv with @argv (argv[0] is replaced by the configured
 * program), stdout discarded, stderr kept for the error message, within
 * the configured time.
 */
static int run_editenv(const struct grub_priv *p, char **argv,
		       struct fl_error *err)
{
	int64_t deadline = fl_now_ms() + p->timeout_ms;
	posix_spawn_file_actions_t fa;
	char msg[TOOL_STDERR_MAX + 1] = "";
	int pfd[2], status = 0, rc, r;
	pid_t pid;

	argv[0] = p->editenv;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return fl_fail_errno(err, FL_EIO, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	r = posix_spawnp(&pid, p->editenv, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		return fl_fail(err, FL_EIO, "cannot run %s: %s", p->editenv,
			       strerror(r));
	}
	drain_stderr(pfd[0], deadline, msg, sizeof(msg));
	close(pfd[0]);
	rc = wait_child(pid, deadline, &status);
	if (rc == FL_ETIMEOUT)
		return fl_fail(err, rc, "%s %s did not finish in %d ms",
			       p->editenv, argv[2], p->timeout_ms);
	if (rc)
		return fl_fail_errno(err, rc, "waiting for %s", p->editenv);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fl_fail(err, FL_EIO, "%s %s failed (status %d): %s",
			       p->editenv, argv[2], status, msg);
	return 0;
}

/* Run `grub-editenv TMP set name=value ...` for every variable at once. */
static int editenv_set(const struct grub_priv *p, const char *tmp,
		       const struct boot_vars *vars, struct fl_error *err)
{
	char *argv[3 + BOOT_NVARS + 1] = {NULL, (char *)tmp, "set"};
	int rc;

	for (size_t i = 0; i < BOOT_NVARS; i++)
		argv[3 + i] = fl_xasprintf("%s=%s", boot_var_names[i],
					   vars->v[i] ? vars->v[i] : "");
	rc = run_editenv(p, argv, err);
	for (size_t i = 0; i < BOOT_NVARS; i++)
		free(argv[3 + i]);
	return rc;
}

/* Check that @tmp now holds exactly the values asked for. */
static int verify_tmp(const char *tmp, const struct boot_vars *want,
		      struct fl_error *err)
{
	struct boot_vars got = {0};
	int rc;

	rc = read_block(tmp, &got, NULL, NULL, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < BOOT_NVARS && !rc; i++) {
		const char *w = want->v[i] ? want->v[i] : "";

		if (!fl_streq(got.v[i], w))
			rc = fl_fail(err, FL_EIO,
				     "grub-editenv did not store %s",
				     boot_var_names[i]);
	}
	boot_vars_release(&got);
	return rc;
}

/* Fill the new temporary file: a copy of the current block, or a new
 * block when @fresh. */
static int fill_tmp(const struct grub_priv *p, int fd, const char *tmp,
		    bool fresh, struct fl_error *err)
{
	struct boot_vars cur = {0};
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (fresh) {
		char *argv[] = {NULL, (char *)tmp, "create", NULL};

		return run_editenv(p, argv, err);
	}
	rc = read_block(p->path, &cur, &buf, &len, err);
	if (rc)
		return rc;
	boot_vars_release(&cur);
	rc = fl_write_all(fd, buf, len, err);
	free(buf);
	return rc;
}

/* A new grubenv (none, or not readable): fsync @tmp, rename it over,
 * fsync the directory. */
static int create_from_tmp(const struct grub_priv *p, const char *tmp,
			   struct fl_error *err)
{
	int fd, rc = 0;

	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync '%s'", tmp);
	if (fd >= 0)
		close(fd);
	if (rc)
		return rc;
	if (rename(tmp, p->path) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot rename '%s' to '%s'",
				     tmp, p->path);
	return fl_fsync_parent(p->path, err);
}

/* Log a store whose change crosses the first 512-byte sector. */
static void note_sectors(const char *path, const char *old, const char *new,
			 size_t len)
{
	size_t last = 0;

	for (size_t i = 0; i < len; i++)
		if (old[i] != new[i])
			last = i;
	if (last >= 512)
		fl_warn(
		    "%s: this store changes bytes past the first sector "
		    "(byte %zu): a power cut during it could tear the block",
		    path, last);
}

/* Write @tmp's bytes over the live grubenv in place and fsync it. */
static int overwrite_live(const struct grub_priv *p, const char *tmp,
			  struct fl_error *err)
{
	char *old = NULL, *new = NULL;
	size_t olen = 0, nlen = 0;
	int fd = -1, rc;

	rc = fl_read_file(p->path, AGENT_BOOT_GRUBENV_MAX, &old, &olen, err);
	if (!rc)
		rc =
		    fl_read_file(tmp, AGENT_BOOT_GRUBENV_MAX, &new, &nlen, err);
	if (!rc && olen != nlen)
		rc =
		    fl_fail(err, FL_EIO, "'%s' is %zu bytes, the new block %zu",
			    p->path, olen, nlen);
	if (!rc) {
		note_sectors(p->path, old, new, nlen);
		fd = open(p->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			rc = fl_fail_errno(err, FL_EIO, "cannot open '%s'",
					   p->path);
	}
	if (!rc)
		rc = fl_pwrite_all(fd, new, nlen, 0, err);
	if (!rc && fsync(fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync '%s'", p->path);
	if (fd >= 0)
		close(fd);
	free(old);
	free(new);
	return rc;
}

static int grub_store(struct agent_boot *b, const struct boot_vars *vars,
		      bool fresh, struct fl_error *err)
{
	struct grub_priv *p = b->priv;
	char *tmp = fl_xasprintf("%s.fleet-XXXXXX", p->path);
	int fd, rc;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", tmp);
		free(tmp);
		return rc;
	}
	rc = fchmod(fd, 0644) < 0
		 ? fl_fail_errno(err, FL_EIO, "cannot chmod '%s'", tmp)
		 : fill_tmp(p, fd, tmp, fresh, err);
	close(fd);
	if (!rc)
		rc = editenv_set(p, tmp, vars, err);
	if (!rc)
		rc = verify_tmp(tmp, vars, err);
	if (!rc && fresh)
		rc = create_from_tmp(p, tmp, err);
	else if (!rc)
		rc = overwrite_live(p, tmp, err);
	if (rc || !fresh)
		unlink(tmp);
	free(tmp);
	return rc;
}

static void grub_close(struct agent_boot *b)
{
	struct grub_priv *p = b->priv;

	if (!p)
		return;
	free(p->path);
	free(p->editenv);
	free(p);
	b->priv = NULL;
}

static int grub_open(struct agent_boot *b, const struct agent_boot_opts *o,
		     struct fl_error *err)
{
	struct grub_priv *p = fl_xcalloc(1, sizeof(*p));

	p->path = fl_xstrdup(o->path);
	p->editenv =
	    fl_xstrdup(o->editenv && *o->editenv ? o->editenv : "grub-editenv");
	p->timeout_ms = o->tool_timeout_ms > 0 ? o->tool_timeout_ms
					       : AGENT_BOOT_TOOL_TIMEOUT_MS;
	b->priv = p;
	return 0;
}

const struct boot_ops boot_grub_ops = {
    .name = "grub",
    .open = grub_open,
    .close = grub_close,
    .load = grub_load,
    .store = grub_store,
};
