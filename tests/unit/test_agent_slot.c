/* SPDX-License-Identifier: MIT */
/*
 * agent/slot: what goes through the sink lands in the slot byte for
 * byte, whatever cuts the chunks (checkpoints at odd offsets, a resume
 * from an odd offset, an odd tail); whole aligned blocks go with O_DIRECT
 * where the file system allows it, the rest through the page cache.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "slot.h"
#include "tmpdir.h"
#include "util.h"

#define SIZE (3u * 1024 * 1024 + 1234) /* not a multiple of anything */

static unsigned char *pattern(void)
{
	unsigned char *p = fl_xmalloc(SIZE);

	for (size_t i = 0; i < SIZE; i++)
		p[i] = (unsigned char)(i * 2654435761u >> 13);
	return p;
}

/*
 * Write @src[@resume, SIZE) into @path through the sink in pieces of
 * @piece bytes, a checkpoint after the one that crosses each @sync
 * bytes; the writer's direct bytes into *@direct.
 */
static void write_slot(const char *path, const unsigned char *src,
		       uint64_t resume, size_t piece, size_t sync,
		       uint64_t *direct)
{
	struct agent_slot_opts o = {.path = path, .resume = resume};
	struct agent_slot_writer *w = NULL;
	struct fsig_payload pl = {.name = "rootfs", .raw_size = SIZE};
	struct fsig_sink sink;
	struct fl_error err = {0};
	size_t off = 0, last = 0;

	assert_int_equal(agent_slot_open(&o, &w, &err), 0);
	agent_slot_sink(w, &sink);
	assert_int_equal(sink.begin(sink.ctx, 0, &pl, &err), 0);
	while (off < SIZE) {
		size_t n = SIZE - off < piece ? SIZE - off : piece;

		/* the reader hands over everything, the resumed part too */
		assert_int_equal(sink.write(sink.ctx, src + off, n, &err), 0);
		off += n;
		if (sync && off / sync != last / sync) {
			assert_int_equal(agent_slot_sync(w, &err), 0);
			last = off;
		}
	}
	assert_int_equal(agent_slot_finish(w, &err), 0);
	assert_int_equal(agent_slot_written(w), SIZE);
	*direct = agent_slot_direct_bytes(w);
	agent_slot_free(w);
}

static void assert_slot(const char *path, const unsigned char *want)
{
	char *got = NULL;
	size_t len = 0;

	assert_int_equal(fl_read_file(path, SIZE + 1, &got, &len, NULL), 0);
	assert_int_equal(len, SIZE);
	assert_memory_equal(got, want, SIZE);
	free(got);
}

/* O_DIRECT works on this file system (not on tmpfs before Linux 6.6). */
static bool direct_ok(const char *dir)
{
	char *p = fl_path_join(dir, "probe");
	int fd = open(p, O_WRONLY | O_CREAT | O_DIRECT, 0600);

	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
	return fd >= 0;
}

static void run_cases(const char *dir)
{
	unsigned char *src = pattern(), *old = fl_xcalloc(1, SIZE);
	char *path = fl_path_join(dir, "slot");
	bool direct = direct_ok(dir);
	uint64_t d;

	/* straight through, odd piece sizes */
	write_slot(path, src, 0, 10007, 0, &d);
	assert_slot(path, src);
	if (direct)
		assert_true(d >= SIZE - 256 * 1024);
	else
		assert_int_equal(d, 0);
	/* checkpoints every ~700 kB at odd offsets: chunks realign */
	assert_int_equal(fl_write_atomic(path, old, SIZE, 0644, NULL), 0);
	write_slot(path, src, 0, 65537, 700001, &d);
	assert_slot(path, src);
	if (direct)
		assert_true(d >= SIZE - 5 * 256 * 1024);
	/* a resume from an odd offset: the slot keeps its first part */
	memcpy(old, src, 1000003);
	assert_int_equal(fl_write_atomic(path, old, SIZE, 0644, NULL), 0);
	write_slot(path, src, 1000003, 32768, 0, &d);
	assert_slot(path, src);
	if (direct)
		assert_true(d >= SIZE - 1000003 - 256 * 1024);
	free(path);
	free(src);
	free(old);
}

static void test_slot_on_disk(void **state)
{
	char dir[64];

	(void)state;
	assert_int_equal(test_mkdtemp(dir, "slot"), 0);
	run_cases(dir);
	test_rmtree(dir);
}

/* /dev/shm: tmpfs, where O_DIRECT may be refused: the same bytes */
static void test_slot_on_tmpfs(void **state)
{
	char dir[] = "/dev/shm/fleet-slot-XXXXXX";

	(void)state;
	if (!mkdtemp(dir))
		skip();
	run_cases(dir);
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slot_on_disk),
	    cmocka_unit_test(test_slot_on_tmpfs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
