/* SPDX-License-Identifier: MIT */
/*
 * common/fsutil: capped reads, atomic replacement (content, mode, no
 * leftovers), mkdir -p and path joining, on real files in a temp dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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

#include "fsutil.h"
#include "util.h"

/* Number of entries in @dir, "." and ".." aside. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void write_plain(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_read_file(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "data");
	static const char data[] = "hello\0world\n";
	char *buf = NULL;
	size_t len = 0;

	write_plain(path, data, sizeof(data) - 1);
	assert_int_equal(fl_read_file(path, 100, &buf, &len, NULL), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(buf, data, len);
	assert_int_equal(buf[len], '\0'); /* always terminated */
	free(buf);
	buf = NULL;
	/* @ret_len may be NULL; an exact fit is fine */
	assert_int_equal(fl_read_file(path, sizeof(data) - 1, &buf, NULL,
				      NULL),
			 0);
	free(buf);
	free(path);
}

static void test_read_empty(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "empty");
	char *buf = NULL;
	size_t len = 99;

	write_plain(path, "", 0);
	assert_int_equal(fl_read_file(path, 0, &buf, &len, NULL), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	free(path);
}

/* The cap holds around the read buffer's growth steps (4 KiB, 8 KiB). */
static void test_read_cap(void **state)
{
	static const size_t sizes[] = {1, 4095, 4096, 4097, 8192, 8193,
				       100000};
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "big");
	unsigned char *data = fl_xmalloc(100001);

	for (size_t i = 0; i < 100001; i++)
		data[i] = (unsigned char)(i * 7);
	for (size_t i = 0; i < FL_ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i], len = 0;
		struct fl_error err = {0};
		char *sentinel = (char *)"x", *buf = sentinel;

		write_plain(path, data, n);
		assert_int_equal(fl_read_file(path, n, &buf, &len, &err), 0);
		assert_int_equal(len, n);
		assert_memory_equal(buf, data, n);
		free(buf);
		buf = sentinel;
		assert_int_equal(fl_read_file(path, n - 1, &buf, &len, &err),
				 FL_ELIMIT);
		assert_int_equal(err.code, FL_ELIMIT);
		assert_ptr_equal(buf, sentinel);
	}
	free(data);
	free(path);
}

static void test_read_errors(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *missing = fl_path_join(f->dir, "missing");
	char *buf = NULL;
	struct fl_error err = {0};

	assert_int_equal(fl_read_file(missing, 10, &buf, NULL, &err),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_null(buf);
	/* a directory opens but cannot be read */
	fl_error_clear(&err);
	assert_int_equal(fl_read_file(f->dir, 10, &buf, NULL, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_null(buf);
	free(missing);
}

static void test_write_atomic(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "state.json");
	struct fl_error err = {0};
	struct stat st1, st2;
	char *buf;
	size_t len;

	assert_int_equal(fl_write_atomic(path, "first", 5, 0600, &err), 0);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(st1.st_mode & 07777, 0600);
	assert_int_equal(fl_read_file(path, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "first", 5);
	free(buf);

	/* replace with shorter content and another mode: a new inode */
	assert_int_equal(fl_write_atomic_str(path, "2nd", 0644, &err), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0644);
	assert_true(st1.st_ino != st2.st_ino);
	assert_int_equal(fl_read_file(path, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 3);
	assert_string_equal(buf, "2nd");
	free(buf);

	/* the mode is exact, whatever the umask */
	umask(0077);
	assert_int_equal(fl_write_atomic(path, "", 0, 0664, &err), 0);
	umask(0022);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0664);
	assert_int_equal(st2.st_size, 0);

	/* no temp files left behind */
	assert_int_equal(count_entries(f->dir), 1);
	assert_int_equal(err.code, 0);
	free(path);
}

static void test_write_atomic_failures(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *nodir = fl_path_join(f->dir, "no/such/file");
	char *sub = fl_path_join(f->dir, "sub");
	char *target = fl_path_join(sub, "dir-in-the-way");
	struct fl_error err = {0};

	assert_int_equal(fl_write_atomic_str(nodir, "x", 0600, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_int_equal(count_entries(f->dir), 0);

	/* rename onto a directory fails: the temp file is removed */
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(target, 0700), 0);
	fl_error_clear(&err);
	assert_int_equal(fl_write_atomic_str(target, "x", 0600, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_int_equal(count_entries(sub), 1);

	/* a read-only directory (as root the write would just work) */
	if (geteuid() != 0) {
		char *ro = fl_path_join(sub, "ro");

		assert_int_equal(chmod(sub, 0500), 0);
		assert_int_equal(fl_write_atomic_str(ro, "x", 0600, NULL),
				 FL_EIO);
		assert_int_equal(chmod(sub, 0700), 0);
		assert_false(fl_path_exists(ro));
		free(ro);
	}
	free(nodir);
	free(sub);
	free(target);
}

static void test_write_all(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "w");
	size_t n = 1 << 20;
	char *data = fl_xmalloc(n), *buf;
	size_t len;
	int fd;

	memset(data, 'z', n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fl_write_all(fd, data, n, NULL), 0);
	close(fd);
	assert_int_equal(fl_read_file(path, n, &buf, &len, NULL), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, data, n);
	free(buf);
	/* a read-only descriptor fails */
	fd = open(path, O_RDONLY);
	assert_int_equal(fl_write_all(fd, "x", 1, NULL), FL_EIO);
	close(fd);
	free(data);
	free(path);
}

static void test_mkdir_p(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *deep = fl_path_join(f->dir, "a/b/c/d");
	char *slash = fl_xasprintf("%s/x/y/", f->dir);
	char *file = fl_path_join(f->dir, "file");
	char *under_file = fl_path_join(f->dir, "file/sub");
	struct fl_error err = {0};
	struct stat st;

	assert_int_equal(fl_mkdir_p(deep, 0750, &err), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750 & ~0022);
	/* existing: fine, and idempotent */
	assert_int_equal(fl_mkdir_p(deep, 0750, &err), 0);
	assert_int_equal(fl_mkdir_p(f->dir, 0700, &err), 0);
	assert_int_equal(fl_mkdir_p(slash, 0700, &err), 0);
	assert_int_equal(stat(slash, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(err.code, 0);

	/* "/" exists; "" is no directory (and is not read past its end) */
	assert_int_equal(fl_mkdir_p("/", 0700, &err), 0);
	assert_int_equal(fl_mkdir_p("", 0700, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);

	/* a file in the way */
	fl_error_clear(&err);
	write_plain(file, "x", 1);
	assert_int_equal(fl_mkdir_p(under_file, 0700, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	free(deep);
	free(slash);
	free(file);
	free(under_file);
}

static void test_path_join(void **state)
{
	static const struct {
		const char *dir, *name, *want;
	} cases[] = {
		{"/etc", "fleet", "/etc/fleet"},
		{"/etc/", "fleet", "/etc/fleet"},
		{"/", "etc", "/etc"},
		{"rel", "a/b", "rel/a/b"},
		{"", "x", "/x"},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		char *p = fl_path_join(cases[i].dir, cases[i].name);

		assert_string_equal(p, cases[i].want);
		free(p);
	}
}

static void test_exists_and_fsync(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *file = fl_path_join(f->dir, "f");
	char *link = fl_path_join(f->dir, "dangling");
	char *missing = fl_path_join(f->dir, "missing/x");
	struct fl_error err = {0};

	assert_false(fl_path_exists(file));
	write_plain(file, "x", 1);
	assert_true(fl_path_exists(file));
	assert_true(fl_path_exists(f->dir));
	assert_int_equal(symlink("nowhere", link), 0);
	assert_true(fl_path_exists(link)); /* any type, even dangling */

	assert_int_equal(fl_fsync_parent(file, &err), 0);
	assert_int_equal(fl_fsync_parent(f->dir, &err), 0);
	assert_int_equal(fl_fsync_parent(missing, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	free(file);
	free(link);
	free(missing);
}

/* Take the lock at @path in a child; returns its pid once it holds it.
 * The child keeps it until @release_fd's other end is written/closed. */
static pid_t lock_in_child(const char *path, int *ret_release_fd)
{
	int ready[2], release[2];
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = -1;

		close(ready[0]);
		close(release[1]);
		if (fl_lock_take(path, &fd, NULL))
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		while (read(release[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*ret_release_fd = release[1];
	return pid;
}

static void test_lock(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "x.lock");
	char *missing = fl_path_join(f->dir, "missing/x.lock");
	char *buf = NULL, want[32];
	struct fl_error err = {0};
	int fd = -1, fd2 = -1, release, status;
	pid_t child;

	assert_int_equal(fl_lock_take(path, &fd, &err), 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* children lack it */
	assert_int_equal(fl_read_file(path, 64, &buf, NULL, NULL), 0);
	assert_int_equal(strtol(buf, NULL, 10), (long)getpid());
	free(buf);
	/* a second taker (own open file description) is refused ... */
	assert_int_equal(fl_lock_take(path, &fd2, &err), FL_ECONFLICT);
	assert_int_equal(fd2, -1);
	fl_error_clear(&err);
	/* ... until the first releases it */
	fl_lock_release(fd);
	fl_lock_release(-1);
	assert_int_equal(fl_lock_take(path, &fd2, &err), 0);
	fl_lock_release(fd2);

	/* held by another process: refused, naming that process */
	child = lock_in_child(path, &release);
	assert_int_equal(fl_lock_take(path, &fd, &err), FL_ECONFLICT);
	assert_int_equal(err.code, FL_ECONFLICT);
	snprintf(want, sizeof(want), "pid %ld", (long)child);
	assert_non_null(strstr(err.msg, want));
	fl_error_clear(&err);
	close(release);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* its exit released it */
	assert_int_equal(fl_lock_take(path, &fd, &err), 0);
	fl_lock_release(fd);

	assert_int_equal(fl_lock_take(missing, &fd, &err), FL_EIO);
	free(path);
	free(missing);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmpdir_setup, tmpdir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_read_file),
		T(test_read_empty),
		T(test_read_cap),
		T(test_read_errors),
		T(test_write_atomic),
		T(test_write_atomic_failures),
		T(test_write_all),
		T(test_mkdir_p),
		T(test_path_join),
		T(test_exists_and_fsync),
		T(test_lock),
	};

	umask(0022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
