/* SPDX-License-Identifier: MIT */
/*
 * Bootloader backends on real environment files in temp directories,
 * cross-checked with the real tools: fw_printenv/fw_setenv
 * (libubootenv-tool) for "uboot" and "sim", grub-editenv for "grub".
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "boot.h"
#include "fsutil.h"
#include "util.h"

extern char **environ;

#define ENV_SIZE 0x4000

enum kind { K_SIM, K_UBOOT, K_GRUB };

struct fixture {
	enum kind kind;
	char dir[64];
	char *path;   /* what agent_boot_open gets */
	char *config; /* fw_env.config for the tools (uboot, sim) */
	char *env[2]; /* environment files (uboot, sim) or grubenv */
	char *defenv; /* uboot default environment */
	struct agent_boot *boot;
};

static enum kind kinds[] = {K_SIM, K_UBOOT, K_GRUB};

/* ---- helpers ---- */

/* Run @argv; stdout into @out (NUL-terminated, may be NULL).  Returns the
 * exit status, -1 when it did not exit normally. */
static int run(char *const argv[], char *out, size_t cap)
{
	posix_spawn_file_actions_t fa;
	int pfd[2], status;
	size_t len = 0;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(pfd), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	for (;;) {
		char tmp[512];

		n = read(pfd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		for (ssize_t i = 0; out && i < n && len + 1 < cap; i++)
			out[len++] = tmp[i];
	}
	if (out)
		out[len] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_zeros(const char *path, size_t len)
{
	char *z = calloc(1, len);

	write_file(path, z, len);
	free(z);
}

/* The value of @name as the real tool reads it; "" when unset. */
static void tool_get(struct fixture *fx, const char *name, char *buf,
		     size_t cap)
{
	static char out[64 * 1024];
	char *line;

	buf[0] = '\0';
	if (fx->kind == K_GRUB) {
		char *argv[] = {"grub-editenv", fx->env[0], "list", NULL};

		assert_int_equal(run(argv, out, sizeof(out)), 0);
	} else {
		char *argv[] = {"fw_printenv", "-c", fx->config, NULL};

		assert_int_equal(run(argv, out, sizeof(out)), 0);
	}
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
		if (fl_startswith(line, name) && line[strlen(name)] == '=')
			fl_strlcpy(buf, line + strlen(name) + 1, cap);
}

static void assert_tool_value(struct fixture *fx, const char *name,
			      const char *want)
{
	char got[256];

	tool_get(fx, name, got, sizeof(got));
	assert_string_equal(got, want);
}

/* Set "name=value" pairs with the real tool, behind the agent's back. */
static void tool_set(struct fixture *fx, const char *const *kv, size_t n)
{
	if (fx->kind == K_GRUB) {
		char *argv[16] = {"grub-editenv", fx->env[0], "set"};

		assert_true(n < 12);
		for (size_t i = 0; i < n; i++)
			argv[3 + i] = (char *)kv[i];
		assert_int_equal(run(argv, NULL, 0), 0);
	} else {
		char *script = fl_path_join(fx->dir, "setenv.script");
		char *argv[] = {"fw_setenv", "-c",   fx->config,
				"-s",	     script, NULL};
		FILE *f = fopen(script, "w");

		assert_non_null(f);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s\n", kv[i]);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(run(argv, NULL, 0), 0);
		free(script);
	}
}

static void open_boot(struct fixture *fx)
{
	struct agent_boot_opts o = {
	    .backend = fx->kind == K_SIM     ? "sim"
		       : fx->kind == K_UBOOT ? "uboot"
					     : "grub",
	    .path = fx->path,
	    .default_env = fx->defenv,
	};
	struct fl_error err = {0};

	assert_int_equal(agent_boot_open(&o, &fx->boot, &err), 0);
}

static int setup(void **state)
{
	struct fixture *fx = fl_xcalloc(1, sizeof(*fx));
	char *text;

	fx->kind = *(enum kind *)*state;
	assert_int_equal(test_mkdtemp(fx->dir, "boot"), 0);
	switch (fx->kind) {
	case K_SIM:
		fx->path = fl_path_join(fx->dir, "sim");
		fx->config = fl_path_join(fx->path, "fw_env.config");
		fx->env[0] = fl_path_join(fx->path, "uboot.env");
		fx->env[1] = fl_path_join(fx->path, "uboot-redund.env");
		break;
	case K_UBOOT:
		fx->config = fl_path_join(fx->dir, "fw_env.config");
		fx->path = fl_xstrdup(fx->config);
		fx->env[0] = fl_path_join(fx->dir, "env1");
		fx->env[1] = fl_path_join(fx->dir, "env2");
		fx->defenv = fl_path_join(fx->dir, "default.env");
		write_zeros(fx->env[0], ENV_SIZE);
		write_zeros(fx->env[1], ENV_SIZE);
		text = fl_xasprintf("%s 0x0 0x%x\n%s 0x0 0x%x\n", fx->env[0],
				    ENV_SIZE, fx->env[1], ENV_SIZE);
		write_file(fx->config, text, strlen(text));
		free(text);
		text = "bootcmd=run fleet_boot\nbootdelay=0\n";
		write_file(fx->defenv, text, strlen(text));
		break;
	case K_GRUB:
		fx->env[0] = fl_path_join(fx->dir, "grubenv");
		fx->path = fl_xstrdup(fx->env[0]);
		break;
	}
	open_boot(fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	agent_boot_close(fx->boot);
	test_rmtree(fx->dir);
	free(fx->path);
	free(fx->config);
	free(fx->env[0]);
	free(fx->env[1]);
	free(fx->defenv);
	free(fx);
	return 0;
}

static void read_ok(struct fixture *fx, struct agent_boot_state *st)
{
	struct fl_error err = {0};

	assert_int_equal(agent_boot_read(fx->boot, st, &err), 0);
}

static void init_ok(struct fixture *fx)
{
	struct fl_error err = {0};

	if (agent_boot_init(fx->boot, "a", 3, &err))
		fail_msg("init: %s", err.msg);
}

static void step(struct fixture *fx, const char *booted, bool fell_back)
{
	struct agent_boot_step s;
	struct fl_error err = {0};

	assert_int_equal(agent_boot_sim_step(fx->boot, &s, &err), 0);
	assert_string_equal(s.booted, booted);
	assert_int_equal(s.fell_back, fell_back);
}

/* ---- tests on every backend ---- */

static void test_fresh_init(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};
	int rc;

	rc = agent_boot_read(fx->boot, &st, &err);
	assert_true(rc == FL_EPARSE || rc == FL_ENOTFOUND);
	assert_int_equal(agent_boot_init(fx->boot, "c", 3, NULL), FL_EINVAL);
	assert_int_equal(agent_boot_init(fx->boot, "a", 0, NULL), FL_EINVAL);
	assert_int_equal(agent_boot_init(fx->boot, "a", 101, NULL), FL_EINVAL);
	init_ok(fx);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_string_equal(st.try_slot, "");
	assert_false(st.upgrade_available);
	assert_int_equal(st.bootcount, 0);
	assert_int_equal(st.bootlimit, 3);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_STABLE);
	/* idempotent: a second init keeps the state */
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	assert_int_equal(agent_boot_init(fx->boot, "a", 5, &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_int_equal(st.bootlimit, 3);
	/* the real tool reads what we wrote */
	assert_tool_value(fx, "fleet_slot", "b");
	assert_tool_value(fx, "bootlimit", "3");
}

static void test_switch_and_mark_good(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};

	init_ok(fx);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "a", NULL),
			 FL_EINVAL);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "x", NULL),
			 FL_EINVAL);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_string_equal(st.try_slot, "b");
	assert_true(st.upgrade_available);
	assert_int_equal(st.bootcount, 0);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_TRYING);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "a", NULL),
			 FL_ECONFLICT);

	step(fx, "b", false);
	read_ok(fx, &st);
	assert_int_equal(st.bootcount, 1);
	assert_tool_value(fx, "bootcount", "1");

	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_string_equal(st.try_slot, "");
	assert_false(st.upgrade_available);
	assert_int_equal(st.bootcount, 0);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_STABLE);
	/* a good slot boots without counting */
	step(fx, "b", false);
	read_ok(fx, &st);
	assert_int_equal(st.bootcount, 0);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	assert_tool_value(fx, "upgrade_available", "0");
}

static void test_bootcount_fallback(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};

	init_ok(fx);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	/* bootlimit 3: three tries of b, the fourth boot goes back to a */
	for (unsigned i = 1; i <= 3; i++) {
		step(fx, "b", false);
		read_ok(fx, &st);
		assert_int_equal(st.bootcount, i);
		assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_TRYING);
	}
	step(fx, "a", true);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_string_equal(st.try_slot, "b");
	assert_false(st.upgrade_available);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_FELL_BACK);
	assert_tool_value(fx, "fleet_slot", "a");
	assert_tool_value(fx, "upgrade_available", "0");
	/* later boots stay on a; the agent acknowledges once */
	step(fx, "a", false);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	read_ok(fx, &st);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_STABLE);
	assert_string_equal(st.slot, "a");
	/* and can try again */
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
}

static void test_rollback(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};
	char slot[2];

	init_ok(fx);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	step(fx, "b", false);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	/* operator asks for the previous firmware: a trial of slot a */
	assert_int_equal(agent_boot_rollback(fx->boot, slot, &err), 0);
	assert_string_equal(slot, "a");
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_string_equal(st.try_slot, "a");
	assert_true(st.upgrade_available);
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_TRYING);
	assert_tool_value(fx, "fleet_slot", "a");
	assert_tool_value(fx, "upgrade_available", "1");
	step(fx, "a", false);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_STABLE);

	/* rollback during a trial of b goes back to a */
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	step(fx, "b", false);
	assert_int_equal(agent_boot_rollback(fx->boot, NULL, &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_int_equal(st.bootcount, 0);
	step(fx, "a", false);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);

	/* a rollback target that no longer boots: back to the current slot */
	assert_int_equal(agent_boot_rollback(fx->boot, slot, &err), 0);
	assert_string_equal(slot, "b");
	for (int i = 0; i < 3; i++)
		step(fx, "b", false);
	step(fx, "a", true);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_FELL_BACK);
}

/* The real bootloader (here: its tool) falls back without the agent. */
static void test_fallback_behind_back(void **state)
{
	static const char *const altboot[] = {
	    "fleet_slot=a", "upgrade_available=0", "bootcount=0"};
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};

	init_ok(fx);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	assert_tool_value(fx, "fleet_slot", "b");
	assert_tool_value(fx, "fleet_try", "b");
	assert_tool_value(fx, "upgrade_available", "1");
	assert_tool_value(fx, "bootcount", "0");
	assert_tool_value(fx, "bootlimit", "3");
	tool_set(fx, altboot, FL_ARRAY_SIZE(altboot));
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_string_equal(st.try_slot, "b");
	assert_int_equal(agent_boot_phase(&st), AGENT_BOOT_FELL_BACK);
}

/* We read what the real tool wrote, and keep variables we do not own. */
static void test_reads_tool_writes(void **state)
{
	static const char *const kv[] = {"fleet_slot=b", "upgrade_available=1",
					 "bootcount=2", "bootlimit=5",
					 "other_var=kept"};
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};

	init_ok(fx);
	tool_set(fx, kv, FL_ARRAY_SIZE(kv));
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_true(st.upgrade_available);
	assert_int_equal(st.bootcount, 2);
	assert_int_equal(st.bootlimit, 5);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	assert_tool_value(fx, "other_var", "kept");
	assert_tool_value(fx, "upgrade_available", "0");
}

/* Values out of range, set by the real tool, are parse errors. */
static void test_bad_values(void **state)
{
	static const char *const bad[][2] = {
	    {"fleet_slot=c", NULL},
	    {"fleet_slot=ab", NULL},
	    {"fleet_try=z", NULL},
	    {"upgrade_available=2", NULL},
	    {"bootcount=abc", NULL},
	    {"bootcount=-1", NULL},
	    {"bootcount=99999999999999999999999", NULL},
	    {"bootlimit=101", NULL},
	    {"fleet_slot=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	     NULL},
	};
	static const char *const fix[] = {"fleet_slot=a", "fleet_try=b",
					  "upgrade_available=0", "bootcount=0",
					  "bootlimit=3"};
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct agent_boot_step s;

	init_ok(fx);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};

		tool_set(fx, bad[i], 1);
		assert_int_equal(agent_boot_read(fx->boot, &st, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_int_equal(agent_boot_mark_good(fx->boot, NULL),
				 FL_EPARSE);
		assert_int_equal(agent_boot_sim_step(fx->boot, &s, NULL),
				 FL_EPARSE);
		assert_int_equal(agent_boot_init(fx->boot, "a", 3, NULL),
				 FL_EPARSE);
		tool_set(fx, fix, FL_ARRAY_SIZE(fix));
		read_ok(fx, &st);
	}
}

/* A corrupt store: parse error everywhere, init starts over. */
static void test_garbage_env(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct agent_boot_step s;
	struct fl_error err = {0};
	char junk[ENV_SIZE];

	init_ok(fx);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 13);
	/* a full-size copy with a bad CRC and a short one; sim repairs the
	 * short file, a real device's size is fixed */
	write_file(fx->env[0], junk, fx->kind == K_UBOOT ? ENV_SIZE : 1024);
	if (fx->env[1])
		write_file(fx->env[1], "garbage", 7);
	assert_int_equal(agent_boot_read(fx->boot, &st, &err), FL_EPARSE);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", NULL),
			 FL_EPARSE);
	assert_int_equal(agent_boot_rollback(fx->boot, NULL, NULL), FL_EPARSE);
	assert_int_equal(agent_boot_sim_step(fx->boot, &s, NULL), FL_EPARSE);
	/* uboot needs its default environment (see test_uboot_no_default) */
	assert_int_equal(agent_boot_init(fx->boot, "b", 2, &err), 0);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_int_equal(st.bootlimit, 2);
	assert_tool_value(fx, "fleet_slot", "b");
}

/* ---- U-Boot format specifics ---- */

/* Index of the copy written last (higher flags byte), for a redundant
 * environment. */
static int newest_copy(struct fixture *fx)
{
	unsigned char f[2];

	for (int i = 0; i < 2; i++) {
		FILE *fp = fopen(fx->env[i], "r");

		assert_non_null(fp);
		assert_int_equal(fseek(fp, 4, SEEK_SET), 0);
		assert_int_equal(fread(&f[i], 1, 1, fp), 1);
		fclose(fp);
	}
	return f[1] > f[0] ? 1 : 0;
}

/* A write torn by power loss leaves the previous state in force. */
static void test_torn_write(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};
	int fd, copy;

	init_ok(fx);
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	copy = newest_copy(fx);
	/* the copy just written loses its tail: CRC fails */
	fd = open(fx->env[copy], O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff\xff\xff\xff", 4, 100), 4);
	close(fd);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_false(st.upgrade_available);
	assert_tool_value(fx, "fleet_slot", "a");
	/* the next write goes to the damaged copy and repairs it */
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	assert_int_equal(newest_copy(fx), copy);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
}

/* Real U-Boot: no valid env and no default env means no fresh write. */
static void test_uboot_no_default(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_opts o = {.backend = "uboot", .path = fx->config};
	struct agent_boot *b = NULL;
	struct fl_error err = {0};

	assert_int_equal(agent_boot_open(&o, &b, &err), 0);
	assert_int_equal(agent_boot_init(b, "a", 3, &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	agent_boot_close(b);
	/* with the default env the result keeps U-Boot's own variables */
	init_ok(fx);
	assert_tool_value(fx, "bootcmd", "run fleet_boot");
	assert_tool_value(fx, "fleet_slot", "a");
}

/*
 * An environment with no room left: the agent's store is refused with a
 * clear error and the environment stays as it was (libubootenv 0.3.2
 * would leak its image buffer on this path; found by fuzz_bootenv).
 */
static void test_uboot_full_env(void **state)
{
	static const char *const unfill[] = {"f00="};
	static char out[64 * 1024];
	char *fill[64];
	size_t n;
	struct fixture *fx = *state;
	size_t size = fx->kind == K_SIM ? 0x2000 : ENV_SIZE, used = 0;
	char *base = fl_path_join(fx->dir, "base.env"), *line;
	char *set[] = {"fw_setenv", "-c",	 fx->config, "-f",
		       base,	    "bootdelay", "0",	     NULL};
	char *print[] = {"fw_printenv", "-c", fx->config, NULL};
	struct fl_error err = {0};

	/* a valid environment made by the tool, then filled to the brim */
	write_file(base, "bootcmd=boot\n", 13);
	assert_int_equal(run(set, NULL, 0), 0);
	assert_int_equal(run(print, out, sizeof(out)), 0);
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
		used += strlen(line) + 1;
	/*
	 * name=value and a NUL each, a final NUL, CRC and flags byte; the
	 * tool takes values of up to about 1 KiB, so fNN=<=900 x's>...
	 */
	used += 6;
	for (n = 0; used < size; n++) {
		size_t rem = size - used, v = rem - 5;

		if (v > 900)
			v = v - 900 < 5 ? 890 : 900;
		assert_true(n < 64 && rem >= 5);
		fill[n] = fl_xcalloc(1, v + 8);
		snprintf(fill[n], 8, "f%02zu=", n);
		memset(fill[n] + 4, 'x', v);
		used += v + 5;
	}
	assert_int_equal(used, size);
	tool_set(fx, (const char *const *)fill, n);
	assert_int_equal(agent_boot_init(fx->boot, "a", 3, &err), FL_ELIMIT);
	assert_non_null(strstr(err.msg, "is full"));
	assert_tool_value(fx, "bootdelay", "0");
	assert_tool_value(fx, "fleet_slot", "");
	/* with the filler gone the same init goes through */
	tool_set(fx, unfill, 1);
	init_ok(fx);
	assert_tool_value(fx, "fleet_slot", "a");
	while (n)
		free(fill[--n]);
	free(base);
}

/* The entries of @dir but "." and "..". */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- GRUB specifics ---- */

static void test_grub_tmp_and_failure(void **state)
{
	static const char *const odd[] = {"note=x\\y\nz"};
	static const char *const bad[] = {
	    /* repeated variable */
	    "# GRUB Environment Block\nfleet_slot=a\nfleet_slot=b\n###",
	    /* unterminated line */
	    "# GRUB Environment Block\nfleet_slot=a",
	    /* no name */
	    "# GRUB Environment Block\n=a\n",
	    /* wrong header */
	    "# GRUB Environment\nfleet_slot=a\n",
	};
	struct fixture *fx = *state;
	struct agent_boot_opts o = {.backend = "grub",
				    .path = fx->path,
				    .editenv = "/nonexistent/grub-editenv"};
	struct agent_boot *b = NULL;
	struct agent_boot_state st;
	struct fl_error err = {0};
	struct stat sb;
	char *before, *after;

	init_ok(fx);
	assert_int_equal(stat(fx->env[0], &sb), 0);
	assert_int_equal(sb.st_size, 1024);
	assert_int_equal(sb.st_mode & 0777, 0644);
	/* no temporary file is left next to the grubenv */
	assert_int_equal(dir_entries(fx->dir), 1);
	/* a failing grub-editenv leaves the grubenv untouched */
	assert_int_equal(fl_read_file(fx->env[0], 4096, &before, NULL, NULL),
			 0);
	assert_int_equal(agent_boot_open(&o, &b, &err), 0);
	assert_int_equal(agent_boot_prepare_switch(b, "b", &err), FL_EIO);
	agent_boot_close(b);
	assert_int_equal(fl_read_file(fx->env[0], 4096, &after, NULL, NULL), 0);
	assert_string_equal(before, after);
	free(before);
	free(after);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	/* escapes: a value with a backslash and a newline */
	tool_set(fx, odd, 1);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		write_file(fx->env[0], bad[i], strlen(bad[i]));
		assert_int_equal(agent_boot_read(fx->boot, &st, NULL),
				 FL_EPARSE);
	}
}

/* A hanging grub-editenv is killed in time; nothing changes. */
static void test_grub_timeout(void **state)
{
	struct fixture *fx = *state;
	char *script = fl_path_join(fx->dir, "slow-editenv");
	struct agent_boot_opts o = {.backend = "grub",
				    .path = fx->path,
				    .editenv = script,
				    .tool_timeout_ms = 300};
	struct agent_boot *b = NULL;
	struct agent_boot_state st;
	struct fl_error err = {0};
	int64_t t0;

	init_ok(fx);
	write_file(script, "#!/bin/sh\nexec sleep 30\n", 24);
	assert_int_equal(chmod(script, 0755), 0);
	assert_int_equal(agent_boot_open(&o, &b, &err), 0);
	t0 = fl_now_ms();
	assert_int_equal(agent_boot_prepare_switch(b, "b", &err), FL_ETIMEOUT);
	assert_true(fl_now_ms() - t0 < 5000);
	agent_boot_close(b);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "a");
	assert_false(st.upgrade_available);
	assert_int_equal(dir_entries(fx->dir), 2); /* grubenv and the script */
	free(script);
}

/*
 * Every store after the first overwrites the grubenv in place: the same
 * inode and size, so the metadata GRUB's ext4 reader sees (it does not
 * replay the journal) never changes (docs/bootloader.md); no temporary
 * file stays.
 */
static void test_grub_in_place(void **state)
{
	struct fixture *fx = *state;
	struct agent_boot_state st;
	struct fl_error err = {0};
	struct stat before, after;

	init_ok(fx);
	assert_int_equal(stat(fx->env[0], &before), 0);
	/* each store on its own (a file system may hand a freed inode
	 * number out again at the next store) */
	assert_int_equal(agent_boot_prepare_switch(fx->boot, "b", &err), 0);
	assert_int_equal(stat(fx->env[0], &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(agent_boot_mark_good(fx->boot, &err), 0);
	assert_int_equal(stat(fx->env[0], &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_size, 1024);
	read_ok(fx, &st);
	assert_string_equal(st.slot, "b");
	assert_false(st.upgrade_available);
	assert_int_equal(dir_entries(fx->dir), 1);
}

/* ---- generic ---- */

static void test_helpers(void **state)
{
	struct agent_boot_opts o = {.backend = "lilo", .path = "/x"};
	struct agent_boot *b = NULL;
	struct fl_error err = {0};

	assert_true(agent_boot_valid_slot("a"));
	assert_true(agent_boot_valid_slot("b"));
	assert_false(agent_boot_valid_slot("c"));
	assert_false(agent_boot_valid_slot(""));
	assert_false(agent_boot_valid_slot(NULL));
	assert_string_equal(agent_boot_other_slot("a"), "b");
	assert_string_equal(agent_boot_other_slot("b"), "a");
	assert_null(agent_boot_other_slot("ab"));
	assert_int_equal(agent_boot_open(&o, &b, &err), FL_EINVAL);
	assert_null(b);
	o.backend = "uboot";
	o.path = "/nonexistent/fw_env.config";
	assert_int_equal(agent_boot_open(&o, &b, NULL), FL_EPARSE);
	o.backend = "sim";
	o.path = "/tmp/has space";
	assert_int_equal(agent_boot_open(&o, &b, NULL), FL_EINVAL);
	agent_boot_close(NULL);
}

#define ALL(f)                                                                 \
	cmocka_unit_test_prestate_setup_teardown(f, setup, teardown,           \
						 &kinds[K_SIM]),               \
	    cmocka_unit_test_prestate_setup_teardown(f, setup, teardown,       \
						     &kinds[K_UBOOT]),         \
	    cmocka_unit_test_prestate_setup_teardown(f, setup, teardown,       \
						     &kinds[K_GRUB])
#define ONE(f, k)                                                              \
	cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, &kinds[k])

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_helpers),
	    ALL(test_fresh_init),
	    ALL(test_switch_and_mark_good),
	    ALL(test_bootcount_fallback),
	    ALL(test_rollback),
	    ALL(test_fallback_behind_back),
	    ALL(test_reads_tool_writes),
	    ALL(test_bad_values),
	    ALL(test_garbage_env),
	    ONE(test_torn_write, K_SIM),
	    ONE(test_torn_write, K_UBOOT),
	    ONE(test_uboot_no_default, K_UBOOT),
	    ONE(test_uboot_full_env, K_SIM),
	    ONE(test_uboot_full_env, K_UBOOT),
	    ONE(test_grub_tmp_and_failure, K_GRUB),
	    ONE(test_grub_timeout, K_GRUB),
	    ONE(test_grub_in_place, K_GRUB),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
