/* SPDX-License-Identifier: MIT */
/*
 * The forwarders' settings and queue (server-stub/fwd.h).  Their
 * databases are in tests/e2e/t6150-forward.sh; here the queue runs
 * against a socket that accepts connections and never answers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "fwd_internal.h"
#include "util.h"

/* Load @text's [influx] and [postgres]; the code, configs in @ret. */
static int load(const char *text, struct srv_fwd_config **ret_influx,
		struct srv_fwd_config **ret_pg)
{
	struct fl_error err = {0};
	struct fl_ini *ini = NULL;
	int rc;

	assert_int_equal(fl_ini_parse(text, &ini, &err), 0);
	rc = srv_fwd_config_load(ini, ret_influx, ret_pg, &err);
	if (rc)
		assert_int_equal(err.code, rc);
	fl_ini_free(ini);
	return rc;
}

static int load_one(const char *text)
{
	struct srv_fwd_config *a = NULL, *b = NULL;
	int rc = load(text, &a, &b);

	srv_fwd_config_free(a);
	srv_fwd_config_free(b);
	return rc;
}

static void test_defaults(void **state)
{
	struct srv_fwd_config *ix = NULL, *pg = NULL;

	assert_int_equal(load("[influx]\nurl = http://127.0.0.1:8086//\n"
			      "database = fleet\n",
			      &ix, &pg),
			 0);
	assert_non_null(ix);
	assert_null(pg);
	assert_string_equal(ix->url, "http://127.0.0.1:8086");
	assert_string_equal(ix->measurement, "telemetry");
	assert_int_equal(ix->batch, 500);
	assert_int_equal(ix->queue_points, 100000);
	assert_int_equal(ix->timeout_ms, 10000);
	srv_fwd_config_free(ix);
	assert_int_equal(load("[postgres]\nconninfo = dbname=x\n", &ix, &pg),
			 0);
	assert_null(ix);
	assert_non_null(pg);
	assert_string_equal(pg->table, "telemetry");
	srv_fwd_config_free(pg);
	assert_int_equal(load("[mqtt]\nurl = x\n", &ix, &pg), 0);
	assert_null(ix);
	assert_null(pg);
}

static void test_caps(void **state)
{
	static const char *const bad[] = {
	    "batch = 0",	   "batch = 10001",
	    "queue_points = 0",	   "queue_points = 10000001",
	    "queue_bytes = 4095",  "timeout_ms = 99",
	    "timeout_ms = 300001", "linger_ms = 60001",
	    "retry_min_ms = 9",	   "retry_max_ms = 3600001",
	    "batch = -1",	   "batch = 1x",
	};
	char text[256];

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text),
			 "[postgres]\nconninfo = dbname=x\n%s\n", bad[i]);
		assert_int_not_equal(load_one(text), 0);
	}
	assert_int_equal(load_one("[postgres]\nconninfo = dbname=x\n"
				  "retry_min_ms = 500\nretry_max_ms = 400\n"),
			 FL_EINVAL);
	assert_int_equal(load_one("[postgres]\nconninfo = dbname=x\n"
				  "batch = 10000\nqueue_points = 1\n"
				  "timeout_ms = 100\n"),
			 0);
}

static void test_names_and_urls(void **state)
{
	static const char *const bad[] = {
	    "[influx]\nurl = ftp://127.0.0.1\ndatabase = x\n",
	    "[influx]\nurl = file:///etc/passwd\ndatabase = x\n",
	    "[influx]\nurl = http://u:pw@127.0.0.1\ndatabase = x\n",
	    "[influx]\nurl = http://127.0.0.1/?u=a\ndatabase = x\n",
	    "[influx]\nurl = http://127.0.0.1\n",
	    "[influx]\nurl = http://127.0.0.1\ndatabase = x\n"
	    "measurement = a,b\n",
	    "[postgres]\nconninfo = dbname=x\ntable = t; DROP TABLE x\n",
	    "[postgres]\nconninfo = dbname=x\ntable = 1t\n",
	    "[postgres]\nconninfo = dbname=x\ntable = "
	    "a234567890123456789012345678901234567890123456789012345678901234"
	    "\n",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_int_equal(load_one(bad[i]), FL_EINVAL);
}

/* A password in the conninfo is refused when the forwarder starts (it
 * is in fleetd.conf and in messages); password_file is the way. */
static void test_pg_password(void **state)
{
	static const char *const bad[] = {
	    "[postgres]\nconninfo = dbname=x password=secret\n",
	    "[postgres]\nconninfo = postgresql://u:secret@127.0.0.1/x\n",
	};
	struct srv_fwd_config *ix = NULL, *pg = NULL;
	struct srv_fwd *f = NULL;
	struct fl_error err = {0};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		assert_int_equal(load(bad[i], &ix, &pg), 0);
		fl_error_clear(&err);
		assert_int_equal(srv_fwd_start(pg, &f, &err), FL_EINVAL);
		assert_null(strstr(err.msg, "secret"));
		srv_fwd_config_free(pg);
	}
}

/* password_file: its first line, without the line end; a missing file
 * is an error, no file set is no password. */
static void test_password_file(void **state)
{
	char path[] = "/tmp/test_fwd.XXXXXX", *pw = NULL;
	struct srv_fwd_config cfg = {.password_file = path};
	struct fl_error err = {0};
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\r\nsecond\n", 15), 15);
	close(fd);
	assert_int_equal(srv_fwd_password(&cfg, &pw, &err), 0);
	assert_string_equal(pw, "s3cret");
	fl_free_secret(pw);
	unlink(path);
	assert_int_equal(srv_fwd_password(&cfg, &pw, &err), FL_ENOTFOUND);
	cfg.password_file = NULL;
	assert_int_equal(srv_fwd_password(&cfg, &pw, &err), 0);
	assert_null(pw);
}

/* A listening socket nobody accepts on: connections hang, then time
 * out.  Returns the fd; *ret_port its port. */
static int black_hole(int *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void submit_n(struct srv_fwd *f, int n, int64_t ts0)
{
	struct srv_tpoint *p = fl_xcalloc((size_t)n, sizeof(*p));

	for (int i = 0; i < n; i++)
		p[i] = (struct srv_tpoint){"dev-1", "cpu.percent", ts0 + i, i};
	srv_fwd_submit(f, p, (size_t)n);
	free(p);
}

/* Poll @f's counters (bounded) until retries >= 1. */
static void wait_retry(struct srv_fwd *f)
{
	struct srv_fwd_stats st;

	for (int i = 0; i < 1000; i++) {
		srv_fwd_get_stats(f, &st);
		if (st.retries >= 1)
			return;
		usleep(10000);
	}
	fail_msg("no retry within 10 s");
}

/*
 * The queue against a database that never answers: the batch in flight
 * is kept; past queue_points exactly the oldest waiting points go;
 * malformed points are refused at submit; stop with wait 0 returns
 * within the request timeout whatever the backoff.
 */
static void test_queue_bound(void **state)
{
	struct srv_fwd_config *ix = NULL, *pg = NULL;
	struct fl_error err = {0};
	struct srv_fwd_stats st;
	struct srv_fwd *f = NULL;
	char text[512];
	int port, fd = black_hole(&port);
	int64_t t0;
	const struct srv_tpoint badp[] = {
	    {"dev\n1", "m", 1, 1},  {"dev-1", "", 1, 1},
	    {"dev-1", "m", 1, NAN}, {"dev-1", "m", 1, INFINITY},
	    {"dév", "m", 1, 1},
	};

	snprintf(text, sizeof(text),
		 "[influx]\nurl = http://127.0.0.1:%d\ndatabase = x\n"
		 "batch = 10\nlinger_ms = 0\nqueue_points = 20\n"
		 "timeout_ms = 200\nretry_min_ms = 3600000\n"
		 "retry_max_ms = 3600000\n",
		 port);
	assert_int_equal(load(text, &ix, &pg), 0);
	assert_int_equal(srv_fwd_start(ix, &f, &err), 0);
	submit_n(f, 10, 1000);
	wait_retry(f);
	submit_n(f, 25, 2000);
	srv_fwd_submit(f, badp, FL_ARRAY_SIZE(badp));
	srv_fwd_get_stats(f, &st);
	assert_int_equal(st.queued, 30);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(st.refused, FL_ARRAY_SIZE(badp));
	assert_int_equal(st.sent, 0);
	assert_non_null(strstr(st.last_error, "influx:"));
	t0 = fl_now_ms();
	srv_fwd_stop(f, 0);
	assert_true(fl_now_ms() - t0 < 2000);
	srv_fwd_config_free(ix);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_names_and_urls),
	    cmocka_unit_test(test_pg_password),
	    cmocka_unit_test(test_password_file),
	    cmocka_unit_test(test_queue_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
