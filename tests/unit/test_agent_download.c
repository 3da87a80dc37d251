/* SPDX-License-Identifier: MIT */
/*
 * agent/download against a real in-process HTTPS server
 * (https_fixture.h) that serves a pseudo-random file with Range support
 * and misbehaves on request.  Checks the bytes read, a start at an
 * offset (Range), resumption after drops, retries and their cap, the
 * size cap, the window, ticks and the rate limit.
 */
#include <signal.h>
#include <unistd.h>

#include "https_fixture.h"
#include "tmpdir.h"

#include "download.h"
#include "fsutil.h"

#define FILE_SIZE (3u * 1024 * 1024 + 4321)

struct fixture {
	char dir[64];
	char *ca_file;
	unsigned char *data;
	struct hfx_server s;
};

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	uint32_t x = 12345;

	assert_int_equal(test_mkdtemp(f->dir, "dl"), 0);
	f->ca_file = fl_path_join(f->dir, "ca.pem");
	hfx_pki(&f->s, f->ca_file);
	f->data = fl_xmalloc(FILE_SIZE);
	for (size_t i = 0; i < FILE_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		f->data[i] = (unsigned char)x;
	}
	hfx_start(&f->s, f->data, FILE_SIZE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hfx_stop(&f->s);
	test_rmtree(f->dir);
	free(f->data);
	free(f->ca_file);
	free(f);
	return 0;
}

/* ---- helpers ---- */

struct counters {
	int ticks, stop_after_ticks;
};

static int on_tick(void *user, struct fl_error *err)
{
	struct counters *c = user;

	c->ticks++;
	if (c->stop_after_ticks && c->ticks >= c->stop_after_ticks)
		return fl_fail(err, FL_ETIMEOUT, "stopped by the test");
	return 0;
}

static struct agent_dl_opts opts(struct fixture *f, struct counters *c)
{
	return (struct agent_dl_opts){
	    .url = f->s.url,
	    .ca_file = f->ca_file,
	    .size = FILE_SIZE,
	    .retries = 3,
	    .backoff_min_ms = 50,
	    .backoff_max_ms = 100,
	    .stall_timeout_s = 5,
	    .tick = on_tick,
	    .user = c,
	};
}

/* Read from @from to the end (or until an error); returns the code,
 * *ret the bytes. */
static int read_all(struct agent_dl *dl, uint64_t from, unsigned char **ret,
		    size_t *len, struct fl_error *err)
{
	size_t want = FILE_SIZE - from, got = 0, n;
	unsigned char *buf = fl_xmalloc(want + 1);
	int rc;

	for (;;) {
		rc = agent_dl_read(dl, buf + got, got < want ? 70000 : 1, &n,
				   err);
		if (rc || n == 0)
			break;
		got += n;
		assert_true(got <= want);
	}
	*ret = buf;
	*len = got;
	return rc;
}

/* ---- tests ---- */

static void test_whole(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(f->s.requests, 0); /* nothing before the read */
	agent_dl_set_window(dl, AGENT_DL_WINDOW_MAX);
	assert_int_equal(read_all(dl, 0, &got, &len, &err), 0);
	assert_int_equal(len, FILE_SIZE);
	assert_memory_equal(got, f->data, FILE_SIZE);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE);
	assert_int_equal(agent_dl_have(dl), FILE_SIZE);
	assert_int_equal(agent_dl_attempts(dl), 1);
	assert_string_equal(f->s.last_range, "");
	agent_dl_free(dl);
	free(got);
}

/* From an offset: one Range request, exactly the rest of the file. */
static void test_from_offset(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	o.offset = 1000000;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(agent_dl_have(dl), 1000000);
	assert_int_equal(agent_dl_pos(dl), 1000000);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_MAX);
	assert_int_equal(read_all(dl, 1000000, &got, &len, &err), 0);
	assert_int_equal(len, FILE_SIZE - 1000000);
	assert_memory_equal(got, f->data + 1000000, len);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE - 1000000);
	assert_int_equal(f->s.requests, 1);
	assert_string_equal(f->s.last_range, "bytes=1000000-");
	agent_dl_free(dl);
	free(got);
}

/* The connection drops twice mid-body: two more attempts with Range. */
static void test_drops_retried(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.drop_after = 700000;
	f->s.drops = 2;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_MAX);
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err), 0);
	assert_memory_equal(got, f->data, FILE_SIZE);
	assert_int_equal(agent_dl_attempts(dl), 3);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE);
	/* each attempt asks for the first byte it has not got */
	assert_string_equal(f->s.ranges[0], "");
	assert_string_equal(f->s.ranges[1], "bytes=700000-");
	assert_string_equal(f->s.ranges[2], "bytes=1400000-");
	agent_dl_free(dl);
	free(got);
}

/* Drops without progress use up the retries. */
static void test_retries_capped(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.drop_all = true;
	o.offset = 2000000;
	o.retries = 2;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_not_equal(read_all(dl, o.offset, &got, &len, &err), 0);
	assert_true(err.code == FL_EUNREACH || err.code == FL_ETIMEOUT);
	assert_int_equal(agent_dl_attempts(dl), 3);
	assert_non_null(strstr(err.msg, "giving up"));
	agent_dl_free(dl);
	free(got);
}

/* A server that ignores Range: the repeated prefix is dropped. */
static void test_range_ignored(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.ignore_range = true;
	o.offset = 123457;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err), 0);
	assert_int_equal(len, FILE_SIZE - 123457);
	assert_memory_equal(got, f->data + 123457, len);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE - 123457);
	agent_dl_free(dl);
	free(got);
}

/* Never a byte past the expected size. */
static void test_too_long(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.extra = 100000;
	f->s.ignore_range = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_MAX);
	(void)read_all(dl, o.offset, &got, &len, &err);
	free(got);
	/* everything the reader got was the file; the excess was refused */
	assert_true(agent_dl_have(dl) <= FILE_SIZE);
	agent_dl_free(dl);
}

/* A Content-Range with another total: the server's file changed. */
static void test_other_total(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.bad_total = true;
	o.offset = 10;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err), FL_EVERIFY);
	assert_int_equal(agent_dl_attempts(dl), 1);
	agent_dl_free(dl);
	free(got);
}

static void test_not_found(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.status = 404;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err),
			 FL_ENOTFOUND);
	assert_int_equal(agent_dl_attempts(dl), 1);
	assert_non_null(strstr(err.msg, "no such bundle"));
	agent_dl_free(dl);
	free(got);
}

/* Until the window opens, the network stays close to the reader. */
static void test_window(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char buf[4096];
	size_t n;

	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(agent_dl_read(dl, buf, sizeof(buf), &n, &err), 0);
	assert_true(n > 0);
	usleep(200 * 1000);
	assert_int_equal(agent_dl_read(dl, buf, sizeof(buf), &n, &err), 0);
	/* 64 KiB window plus at most one curl buffer */
	assert_true(agent_dl_have(dl) <= 64 * 1024 + 256 * 1024 + 8192);
	assert_true(agent_dl_have(dl) < FILE_SIZE / 4);
	/* open: a ring of AGENT_DL_WINDOW_MAX, never more ahead */
	agent_dl_set_window(dl, 64u << 20);
	assert_int_equal(agent_dl_read(dl, buf, sizeof(buf), &n, &err), 0);
	usleep(300 * 1000);
	assert_true(agent_dl_have(dl) - agent_dl_pos(dl) <=
		    AGENT_DL_WINDOW_MAX);
	assert_true(agent_dl_have(dl) > 64 * 1024 + 256 * 1024 + 8192);
	agent_dl_free(dl);
}

/* A tick that says stop ends the read with its code. */
static void test_tick_stops(void **state)
{
	struct fixture *f = *state;
	struct counters c = {.stop_after_ticks = 1};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.status = 0;
	o.rate_limit = 100000; /* slow enough to tick */
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	usleep(150 * 1000);
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err), FL_ETIMEOUT);
	assert_true(len < FILE_SIZE);
	agent_dl_free(dl);
	free(got);
}

/* rate_limit: 2 MiB at 1 MiB/s takes about two seconds (libcurl lets
 * bursts through, so sometimes less). */
static void test_rate_limit(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;
	int64_t t0;

	o.offset = FILE_SIZE - 2 * 1024 * 1024;
	o.rate_limit = 1024 * 1024;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_MAX);
	t0 = fl_now_ms();
	assert_int_equal(read_all(dl, o.offset, &got, &len, &err), 0);
	fprintf(stderr, "# 2 MiB at 1 MiB/s: %lld ms\n",
		(long long)(fl_now_ms() - t0));
	/* libcurl's limit allows bursts: ask for clearly slower than
	 * unlimited (a few ms here), not for the exact rate */
	assert_true(fl_now_ms() - t0 >= 400);
	assert_memory_equal(got, f->data + o.offset, len);
	agent_dl_free(dl);
	free(got);
}

static void test_bad_opts(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;

	o.url = "http://127.0.0.1:1/x";
	assert_int_equal(agent_dl_open(&o, &dl, &err), FL_EINVAL);
	o = opts(f, &c);
	o.size = 0;
	assert_int_equal(agent_dl_open(&o, &dl, &err), FL_EINVAL);
	o = opts(f, &c);
	o.offset = FILE_SIZE; /* nothing left to fetch */
	assert_int_equal(agent_dl_open(&o, &dl, &err), FL_EINVAL);
	assert_null(dl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_from_offset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drops_retried, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_retries_capped, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_range_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_total, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tick_stops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
