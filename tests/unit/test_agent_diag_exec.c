/* SPDX-License-Identifier: MIT */
/*
 * agent/diag_exec: operator checks, run as the diagnostics feature runs
 * them (diag_exec_run on a snapshot).  Shell metacharacters in
 * arguments are passed literally or refused, never executed (the files
 * the injections would create do not appear; a positive control shows
 * the check did run with the literal argument); the allow-list pattern
 * must match each argument whole; a check past its time is killed with
 * its process group (the child it started is gone too), as is what a
 * check leaves running when it ends; output caps; the environment is
 * the fixed one; what may count as a check (no links, no group- or
 * world-writable files, no names outside [a-z0-9_-]).
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config.h"
#include "diag_internal.h"
#include "fsutil.h"
#include "tmpdir.h"
#include "util.h"

struct ex {
	char dir[64];
	char *checks;
	struct agent_config *cfg;
	volatile int cancel;
};

static char *path_in(struct ex *x, const char *name)
{
	return fl_path_join(x->dir, name);
}

static void write_file(struct ex *x, const char *name, const char *text,
		       mode_t mode)
{
	char *p = path_in(x, name);

	assert_int_equal(fl_write_atomic_str(p, text, mode, NULL), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static bool exists(struct ex *x, const char *name)
{
	char *p = path_in(x, name);
	bool e = fl_path_exists(p);

	free(p);
	return e;
}

static void load(struct ex *x, const char *extra)
{
	char *text = fl_xasprintf("[device]\nid = dev-1\nstate_dir = .\n"
				  "[server]\nurl = https://127.0.0.1:1\n"
				  "[mqtt]\nurl = mqtts://127.0.0.1:1\n"
				  "[diag]\nchecks_dir = checks\n%s",
				  extra ? extra : "");

	agent_config_free(x->cfg);
	x->cfg = NULL;
	assert_int_equal(agent_config_parse(text, x->dir, NULL, &x->cfg, NULL),
			 0);
	free(text);
}

/*
 * Checks: "echoargs" prints each argument on its own line and leaves a
 * marker (the positive control); "envdump" prints its environment;
 * "hang" starts a sleeping child, records its pid and sleeps; "bg"
 * leaves a child behind and exits; "chatty" prints 1000 bytes;
 * "fail3" exits 3.
 */
static int setup(void **state)
{
	struct ex *x = fl_xcalloc(1, sizeof(*x));
	char *s;

	assert_int_equal(test_mkdtemp(x->dir, "diagexec"), 0);
	x->checks = path_in(x, "checks");
	assert_int_equal(fl_mkdir_p(x->checks, 0755, NULL), 0);
	s = fl_xasprintf("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' "
			 "\"$a\"; done\ntouch %s/ran\n",
			 x->dir);
	write_file(x, "checks/echoargs", s, 0755);
	free(s);
	write_file(x, "checks/envdump", "#!/bin/sh\nenv | sort\n", 0755);
	s = fl_xasprintf("#!/bin/sh\nsleep 60 &\necho $! > %s/child.pid\n"
			 "echo started\nsleep 60\n",
			 x->dir);
	write_file(x, "checks/hang", s, 0755);
	free(s);
	s = fl_xasprintf("#!/bin/sh\nsleep 60 &\necho $! > %s/bg.pid\n",
			 x->dir);
	write_file(x, "checks/bg", s, 0755);
	free(s);
	write_file(x, "checks/chatty",
		   "#!/bin/sh\nhead -c 1000 /dev/zero | tr '\\0' x\n"
		   "head -c 1000 /dev/zero | tr '\\0' y >&2\n",
		   0755);
	write_file(x, "checks/fail3", "#!/bin/sh\necho nope >&2\nexit 3\n",
		   0755);
	load(x, "[diag.check.echoargs]\nargs = .*\n"
		"[diag.check.chatty]\noutput_max = 100\n"
		"[diag.check.hang]\ntimeout = 1s\n");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct ex *x = *state;

	agent_config_free(x->cfg);
	test_rmtree(x->dir);
	free(x->checks);
	free(x);
	return 0;
}

/* Run check @name with @args (NULL-ended) within @timeout_s. */
static int run(struct ex *x, const char *name, const char *const *args,
	       int timeout_s, json_t **ret)
{
	struct diag_req q = {.timeout_s = timeout_s};
	struct diag_run r = {.cfg = x->cfg,
			     .req = &q,
			     .deadline_ms = fl_now_ms() + timeout_s * 1000LL,
			     .cancel = &x->cancel};
	struct fl_error err = {0};
	int rc;

	fl_strlcpy(q.check, name, sizeof(q.check));
	for (; args && args[q.n_args]; q.n_args++)
		q.args[q.n_args] = (char *)args[q.n_args];
	*ret = NULL;
	rc = diag_exec_run(&r, ret, &err);
	if (rc)
		fprintf(stderr, "# %s: %s\n", name, err.msg);
	return rc;
}

static const char *out_of(const json_t *res, const char *stream)
{
	return json_string_value(json_object_get(res, stream));
}

/* pid @name recorded is gone (or a zombie waiting for init). */
static bool pid_gone(struct ex *x, const char *name)
{
	char *p = path_in(x, name), *text = NULL, *stat, *st = NULL;
	long pid;
	bool gone;

	assert_int_equal(fl_read_file(p, 64, &text, NULL, NULL), 0);
	pid = atol(text);
	assert_true(pid > 1);
	stat = fl_xasprintf("/proc/%ld/stat", pid);
	gone = fl_read_file(stat, 4096, &st, NULL, NULL) != 0 ||
	       strstr(st, ") Z ") != NULL;
	free(st);
	free(stat);
	free(text);
	free(p);
	return gone;
}

static void test_runs_with_output(void **state)
{
	static const char *const args[] = {"one", "two words", NULL};
	struct ex *x = *state;
	json_t *res;

	assert_int_equal(run(x, "echoargs", args, 10, &res), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "exit")), 0);
	assert_string_equal(out_of(res, "stdout"), "one\ntwo words\n");
	assert_string_equal(out_of(res, "stderr"), "");
	assert_true(json_is_false(json_object_get(res, "truncated")));
	assert_true(exists(x, "ran"));
	json_decref(res);
	/* a non-zero exit: failed, the output kept */
	assert_int_equal(run(x, "fail3", NULL, 10, &res), FL_ERR);
	assert_int_equal(json_integer_value(json_object_get(res, "exit")), 3);
	assert_string_equal(out_of(res, "stderr"), "nope\n");
	json_decref(res);
}

static const char *const injections[] = {
    "; touch INJ1", "$(touch INJ2)", "`touch INJ3`", "x\ntouch INJ4",
    "| touch INJ5", "&& touch INJ6", NULL,
};

/* The injections with INJn made absolute paths in the test dir. */
static char **absolute_injections(struct ex *x)
{
	char **a = fl_xcalloc(FL_ARRAY_SIZE(injections), sizeof(*a));

	for (size_t i = 0; injections[i]; i++) {
		const char *inj = strstr(injections[i], "INJ");

		a[i] = fl_xasprintf("%.*s%s/%s", (int)(inj - injections[i]),
				    injections[i], x->dir, inj);
	}
	return a;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static void assert_no_injection(struct ex *x)
{
	char name[8];

	for (int i = 1; i <= 6; i++) {
		snprintf(name, sizeof(name), "INJ%d", i);
		assert_false(exists(x, name));
	}
}

static void test_injection_passed_literally(void **state)
{
	struct ex *x = *state;
	char **args = absolute_injections(x), *want = fl_xstrdup(""), *old;
	json_t *res;

	assert_int_equal(
	    run(x, "echoargs", (const char *const *)args, 10, &res), 0);
	for (size_t i = 0; args[i]; i++) {
		old = want;
		want = fl_xasprintf("%s%s\n", old, args[i]);
		free(old);
	}
	/* positive control: the check ran, with every argument as it was */
	assert_true(exists(x, "ran"));
	assert_string_equal(out_of(res, "stdout"), want);
	assert_no_injection(x);
	json_decref(res);
	free(want);
	free_strv(args);
}

static void test_injection_refused(void **state)
{
	struct ex *x = *state;
	char **args = absolute_injections(x);
	const char *one[2] = {NULL, NULL};
	const char *ok[] = {"var-log.1", NULL};
	json_t *res;

	load(x, "[diag.check.echoargs]\nargs = [a-z0-9.-]+\n");
	for (size_t i = 0; args[i]; i++) {
		one[0] = args[i];
		assert_int_equal(run(x, "echoargs", one, 10, &res), FL_EINVAL);
		assert_null(res);
	}
	/* whole match: a good prefix or suffix does not help */
	one[0] = "ok\n";
	assert_int_equal(run(x, "echoargs", one, 10, &res), FL_EINVAL);
	one[0] = "ok;id";
	assert_int_equal(run(x, "echoargs", one, 10, &res), FL_EINVAL);
	assert_false(exists(x, "ran"));
	assert_no_injection(x);
	/* positive control: an allowed argument runs it */
	assert_int_equal(run(x, "echoargs", ok, 10, &res), 0);
	assert_string_equal(out_of(res, "stdout"), "var-log.1\n");
	assert_true(exists(x, "ran"));
	json_decref(res);
	/* a check without an args pattern takes none */
	assert_int_equal(run(x, "envdump", ok, 10, &res), FL_EINVAL);
	free_strv(args);
}

static void test_timeout_kills_group(void **state)
{
	struct ex *x = *state;
	int64_t t0 = fl_now_ms();
	json_t *res;

	/* [diag.check.hang] timeout = 1s bounds the request's 30 s */
	assert_int_equal(run(x, "hang", NULL, 30, &res), FL_ETIMEOUT);
	assert_true(fl_now_ms() - t0 < 5000);
	assert_true(json_is_null(json_object_get(res, "exit")));
	assert_string_equal(out_of(res, "stdout"), "started\n");
	for (int i = 0; i < 50 && !pid_gone(x, "child.pid"); i++)
		poll(NULL, 0, 20);
	assert_true(pid_gone(x, "child.pid"));
	json_decref(res);
	/* what a check leaves behind when it ends goes too */
	assert_int_equal(run(x, "bg", NULL, 10, &res), 0);
	for (int i = 0; i < 50 && !pid_gone(x, "bg.pid"); i++)
		poll(NULL, 0, 20);
	assert_true(pid_gone(x, "bg.pid"));
	json_decref(res);
}

static void test_output_capped(void **state)
{
	struct ex *x = *state;
	json_t *res;

	assert_int_equal(run(x, "chatty", NULL, 10, &res), 0);
	assert_int_equal(strlen(out_of(res, "stdout")), 100);
	assert_int_equal(strlen(out_of(res, "stderr")), 100);
	assert_int_equal(out_of(res, "stdout")[0], 'x');
	assert_int_equal(out_of(res, "stderr")[0], 'y');
	assert_true(json_is_true(json_object_get(res, "truncated")));
	json_decref(res);
}

static void test_clean_environment(void **state)
{
	struct ex *x = *state;
	json_t *res;
	const char *env;

	setenv("FLEET_ENROLL_TOKEN", "fle_secret", 1);
	assert_int_equal(run(x, "envdump", NULL, 10, &res), 0);
	unsetenv("FLEET_ENROLL_TOKEN");
	env = out_of(res, "stdout");
	assert_null(strstr(env, "fle_secret"));
	assert_non_null(strstr(env, "FLEET_DEVICE_ID=dev-1\n"));
	assert_non_null(strstr(env, "LC_ALL=C\n"));
	assert_non_null(strstr(env, "PATH=/usr/local/sbin:"));
	json_decref(res);
}

static void test_what_is_a_check(void **state)
{
	struct ex *x = *state;
	char *target = path_in(x, "checks/echoargs");
	char *link = path_in(x, "checks/linked");

	assert_true(diag_exec_exists(x->cfg, "echoargs"));
	assert_int_equal(symlink(target, link), 0);
	assert_false(diag_exec_exists(x->cfg, "linked"));
	write_file(x, "checks/groupw", "#!/bin/sh\n", 0775);
	assert_false(diag_exec_exists(x->cfg, "groupw"));
	write_file(x, "checks/worldw", "#!/bin/sh\n", 0757);
	assert_false(diag_exec_exists(x->cfg, "worldw"));
	write_file(x, "checks/noexec", "#!/bin/sh\n", 0644);
	assert_false(diag_exec_exists(x->cfg, "noexec"));
	assert_false(diag_exec_exists(x->cfg, "../checks/echoargs"));
	assert_false(diag_exec_exists(x->cfg, "missing"));
	load(x, NULL);
	free(x->cfg->diag_checks_dir);
	x->cfg->diag_checks_dir = NULL; /* no checks_dir: no checks */
	assert_false(diag_exec_exists(x->cfg, "echoargs"));
	free(target);
	free(link);
}

/* The agent stopping ends a running check at once. */
static void test_cancel(void **state)
{
	struct ex *x = *state;
	int64_t t0 = fl_now_ms();
	json_t *res;

	x->cancel = 1;
	assert_int_equal(run(x, "hang", NULL, 30, &res), FL_ERR);
	assert_true(fl_now_ms() - t0 < 900);
	json_decref(res);
}

static void test_config_refusals(void **state)
{
	static const char *const bad[] = {
	    "[diag.check.Bad]\nargs = x\n",
	    "[diag.check.x]\nargs = (\n",
	    "[diag.check.x]\ntimeout = 0\n",
	    "[diag.check.x]\noutput_max = 50000\n",
	    "[diag.check.x]\nunknown = 1\n",
	    "[diag.log.x]\nnopath = 1\n",
	    "[diag]\nconcurrent = 17\n",
	    "[diag]\nrate_per_min = 0\n",
	    "[diag]\nmax_timeout = 301\n",
	};
	struct ex *x = *state;
	struct agent_config *c = NULL;
	char *text;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		text = fl_xasprintf("[device]\nid = d\n[server]\nurl = "
				    "https://h\n[mqtt]\nurl = mqtts://h\n%s",
				    bad[i]);
		assert_int_not_equal(
		    agent_config_parse(text, x->dir, NULL, &c, NULL), 0);
		free(text);
	}
	/* defaults, and a section's own values */
	load(x, "[diag.check.a]\nargs = [0-9]+\ntimeout = 5s\n"
		"[diag.log.syslog]\npath = /var/log/syslog\n");
	assert_int_equal(x->cfg->diag_rate_per_min, 60);
	assert_int_equal(x->cfg->diag_concurrent, 2);
	assert_int_equal(x->cfg->diag_max_timeout_s, 120);
	assert_int_equal(x->cfg->diag_bundle_max, 16 * 1024 * 1024);
	assert_int_equal(agent_config_diag_check(x->cfg, "a")->timeout_s, 5);
	assert_int_equal(agent_config_diag_check(x->cfg, "a")->output_max,
			 16384);
	assert_string_equal(agent_config_diag_log(x->cfg, "syslog")->path,
			    "/var/log/syslog");
	assert_null(agent_config_diag_check(x->cfg, "b"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_runs_with_output),  T(test_injection_passed_literally),
	    T(test_injection_refused), T(test_timeout_kills_group),
	    T(test_output_capped),     T(test_clean_environment),
	    T(test_what_is_a_check),   T(test_cancel),
	    T(test_config_refusals),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
