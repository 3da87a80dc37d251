/* SPDX-License-Identifier: MIT */
/*
 * agent/proc: a helper program run with a bound: its exit status and
 * the tail of its output, the kill at the bound, the tick that stops
 * it, a program that is missing, and a program file still open for
 * writing when it is started (ETXTBSY, as in fleet-sim when another
 * thread's child holds a slot it just wrote): it runs once the writer
 * lets go; the child starts clean (signals, descriptors, its own
 * process group).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "proc.h"
#include "tmpdir.h"
#include "util.h"

struct fx {
	char dir[64];
	char *prog;
};

static int setup(void **state)
{
	struct fx *f = fl_xcalloc(1, sizeof(*f));

	assert_int_equal(test_mkdtemp(f->dir, "proc"), 0);
	f->prog = fl_path_join(f->dir, "prog");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	test_rmtree(f->dir);
	free(f->prog);
	free(f);
	return 0;
}

static void write_prog(struct fx *f, const char *body)
{
	char *text = fl_xasprintf("#!/bin/sh\n%s\n", body);

	assert_int_equal(fl_write_atomic_str(f->prog, text, 0755, NULL), 0);
	free(text);
}

static int run(struct fx *f, int timeout_ms, struct agent_proc_result *r,
	       struct fl_error *err)
{
	const char *argv[] = {f->prog, NULL};
	const char *env[] = {"PROC_TEST=hello", NULL};
	struct agent_proc_opts o = {.argv = argv, .env = env,
				    .timeout_ms = timeout_ms};

	return agent_proc_run(&o, r, err);
}

static void test_status_and_output(void **state)
{
	struct fx *f = *state;
	struct agent_proc_result r;
	char tail[64];

	write_prog(f, "echo one; echo \"$PROC_TEST\" >&2; exit 3");
	assert_int_equal(run(f, 5000, &r, NULL), 0);
	assert_int_equal(r.status, 3);
	assert_string_equal(agent_proc_last_line(r.output), "hello");
	write_prog(f, "echo a; echo; echo b; echo c");
	assert_int_equal(run(f, 5000, &r, NULL), 0);
	agent_proc_tail(r.output, 2, tail, sizeof(tail));
	assert_string_equal(tail, "b; c");
}

static void test_bound_and_missing(void **state)
{
	struct fx *f = *state;
	struct agent_proc_result r;
	struct fl_error err = {0};
	int64_t t0 = fl_now_ms();

	write_prog(f, "sleep 30");
	assert_int_equal(run(f, 300, &r, &err), FL_ETIMEOUT);
	assert_true(fl_now_ms() - t0 < 5000);
	unlink(f->prog);
	assert_int_equal(run(f, 1000, &r, NULL), FL_EIO);
}

/* The child starts clean: no blocked or ignored signals, only stdin,
 * stdout and stderr open, its own process group. */
static void test_clean_start(void **state)
{
	struct fx *f = *state;
	struct agent_proc_result r;
	sigset_t usr1, old;
	const char *ign;
	int fd = open("/dev/null", O_RDONLY); /* not for the child */

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	write_prog(f, "grep -E '^Sig(Blk|Ign):' /proc/self/status; "
		      "ls /proc/self/fd | tr '\\n' ' '; echo; "
		      "ps -o pgid= -p $$ | tr -d ' '; echo $$");
	assert_int_equal(run(f, 5000, &r, NULL), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGHUP, SIG_DFL);
	close(fd);
	assert_non_null(strstr(r.output, "SigBlk:\t0000000000000000"));
	/* none of the standard signals ignored (glibc leaves its own two
	 * real-time ones, 32 and 33, ignored in a spawned child) */
	assert_non_null(ign = strstr(r.output, "SigIgn:\t"));
	assert_true((strtoull(ign + 8, NULL, 16) & 0x7fffffffULL) == 0);
	/* 0 1 2, and ls's own directory descriptor (3) */
	assert_non_null(strstr(r.output, "\n0 1 2 3 \n"));
	{
		char *nl = strstr(r.output, "3 \n") + 3, pgid[16], pid[16];

		assert_int_equal(sscanf(nl, "%15s %15s", pgid, pid), 2);
		assert_string_equal(pgid, pid); /* its own group */
	}
}

struct closer {
	int fd;
	int ms;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;

	poll(NULL, 0, c->ms);
	close(c->fd);
	return NULL;
}

static void test_text_busy_then_runs(void **state)
{
	struct fx *f = *state;
	struct agent_proc_result r;
	struct fl_error err = {0};
	struct closer c = {.ms = 150};
	pthread_t t;

	write_prog(f, "echo ran");
	/* someone still has the program open for writing */
	c.fd = open(f->prog, O_WRONLY | O_CLOEXEC);
	assert_true(c.fd >= 0);
	assert_int_equal(pthread_create(&t, NULL, close_later, &c), 0);
	assert_int_equal(run(f, 5000, &r, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(agent_proc_last_line(r.output), "ran");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_status_and_output, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bound_and_missing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_text_busy_then_runs, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_clean_start, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
