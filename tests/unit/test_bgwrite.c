/* SPDX-License-Identifier: MIT */
/*
 * common/bgwrite: buffers handed over in turn land at their offsets
 * (the slot writer's pwrite sink, out of order too), and the first
 * failed write stops the writer and is returned by every later call.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bgwrite.h"
#include "fsutil.h"
#include "tmpdir.h"
#include "util.h"

#define CHUNK 4096
#define CHUNKS 16

static void test_pwrite_offsets(void **state)
{
	static unsigned char bufs[2][CHUNK], back[CHUNK * CHUNKS];
	struct fl_bgw *w = NULL;
	struct fl_bgw_fd f = {.writeback = true};
	char dir[64], *path;

	assert_int_equal(test_mkdtemp(dir, "bgw"), 0);
	path = fl_path_join(dir, "slot");
	f.fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(f.fd >= 0);
	assert_int_equal(fl_bgw_start(fl_bgw_pwrite, &f, &w, NULL), 0);
	/* chunk i holds byte i, written last to first */
	for (int i = CHUNKS - 1; i >= 0; i--) {
		memset(bufs[i & 1], i, CHUNK);
		assert_int_equal(fl_bgw_submit(w, bufs[i & 1], CHUNK,
					       (uint64_t)i * CHUNK, NULL),
				 0);
	}
	assert_int_equal(fl_bgw_submit(w, NULL, 0, 0, NULL), 0);
	assert_int_equal(fl_bgw_wait(w, NULL), 0);
	assert_int_equal(fl_bgw_finish(w, NULL), 0);
	assert_int_equal(pread(f.fd, back, sizeof(back), 0), sizeof(back));
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], i / CHUNK);
	close(f.fd);
	free(path);
	test_rmtree(dir);
}

static int writes;

static int fail_second(void *ctx, const void *buf, size_t len, uint64_t off,
		       struct fl_error *err)
{
	return ++writes == 2 ? fl_fail(err, FL_ELIMIT, "sink full") : 0;
}

static void test_first_error_sticks(void **state)
{
	struct fl_error err = {0};
	struct fl_bgw *w = NULL;
	char buf[8] = "x";

	writes = 0;
	assert_int_equal(fl_bgw_start(fail_second, NULL, &w, NULL), 0);
	assert_int_equal(fl_bgw_submit(w, buf, 1, 0, &err), 0);
	assert_int_equal(fl_bgw_submit(w, buf, 1, 1, &err), 0);
	assert_int_equal(fl_bgw_wait(w, &err), FL_ELIMIT);
	assert_string_equal(err.msg, "sink full");
	assert_int_equal(fl_bgw_submit(w, buf, 1, 2, NULL), FL_ELIMIT);
	assert_int_equal(fl_bgw_finish(w, NULL), FL_ELIMIT);
	assert_int_equal(writes, 2); /* nothing after the failure */
	assert_int_equal(fl_bgw_finish(NULL, NULL), 0);
}

static void test_pwrite_bad_fd(void **state)
{
	struct fl_bgw_fd f = {.fd = -1};
	struct fl_error err = {0};

	assert_int_equal(fl_bgw_pwrite(&f, "x", 1, 0, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pwrite_offsets),
		cmocka_unit_test(test_first_error_sticks),
		cmocka_unit_test(test_pwrite_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
