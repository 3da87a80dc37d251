/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the libfleetsign tests (test_fsig_*.c): a temp
 * directory, files, deterministic data, keys and roots made with the
 * library, and a tar crafter built on libarchive's writer (independent
 * of the bundle writer under test) for malformed bundles.  Included by
 * test files only.
 */
#ifndef FSIG_TEST_FIXTURE_H
#define FSIG_TEST_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
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

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "fsutil.h"
#include "keys.h"
#include "reader.h"
#include "root.h"
#include "sigs.h"
#include "writer.h"
#include "util.h"

#define FIXTURE static __attribute__((unused))

FIXTURE char *tmpdir_new(void)
{
	char *dir = fl_xstrdup("/tmp/fsig-test-XXXXXX");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

FIXTURE void tmpdir_free(char *dir)
{
	if (!dir)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

FIXTURE char *tpath(const char *dir, const char *name)
{
	return fl_path_join(dir, name);
}

FIXTURE void write_file(const char *path, const void *buf, size_t len)
{
	assert_int_equal(fl_write_atomic(path, buf, len, 0644, NULL), 0);
}

FIXTURE char *read_whole(const char *path, size_t *len)
{
	char *buf = NULL;

	assert_int_equal(fl_read_file(path, 1 << 28, &buf, len, NULL), 0);
	return buf;
}

/* Deterministic pseudo-random bytes (xorshift), so failures replay. */
FIXTURE unsigned char *pattern(size_t len, uint32_t seed)
{
	unsigned char *p = fl_xmalloc(len + 1);
	uint32_t x = seed ? seed : 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* Number of directory entries other than . and .. */
FIXTURE int dir_count(const char *dir)
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

/* Run a command quietly; its exit status, or -1. */
FIXTURE int run_quiet(const char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) ||
		    !freopen("/dev/null", "w", stderr))
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

FIXTURE struct fsig_key *new_key(enum fsig_alg alg)
{
	struct fsig_key *k = NULL;

	assert_int_equal(fsig_key_generate(alg, &k, NULL), 0);
	return k;
}

/*
 * A signed version 1 root: root role @rk (threshold @rt, all of them
 * sign), targets role @tk (threshold @tt), expiring in a year.
 */
FIXTURE struct fsig_root *make_root(struct fsig_key **rk, size_t nr,
				    unsigned rt, struct fsig_key **tk,
				    size_t nt, unsigned tt)
{
	struct fsig_role_spec rs = {rk, nr, rt}, ts = {tk, nt, tt};
	struct fsig_root *root = NULL;

	assert_int_equal(
	    fsig_root_init(&rs, &ts, time(NULL) + 365 * 86400, &root, NULL), 0);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(fsig_root_sign(root, rk[i], NULL), 0);
	return root;
}

/* ------------------------------------------------------------------ */
/* Crafting tar files                                                  */

enum craft_type { CRAFT_FILE, CRAFT_SYMLINK, CRAFT_HARDLINK, CRAFT_DIR };

struct craft {
	const char *name;
	const void *data;
	size_t len;
	enum craft_type type;
	const char *link; /* for links */
};

/* Write @n entries as a POSIX (pax) tar to @path with libarchive. */
FIXTURE void craft_tar(const char *path, const struct craft *e, size_t n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	assert_int_equal(archive_write_set_format_pax_restricted(a),
			 ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_mtime(ae, 1700000000, 0);
		if (e[i].type == CRAFT_SYMLINK) {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].link);
		} else if (e[i].type == CRAFT_HARDLINK) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].link);
		} else if (e[i].type == CRAFT_DIR) {
			archive_entry_set_filetype(ae, AE_IFDIR);
		} else {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)e[i].len);
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == CRAFT_FILE && e[i].len)
			assert_int_equal(
			    archive_write_data(a, e[i].data, e[i].len),
			    (la_ssize_t)e[i].len);
	}
	archive_entry_free(ae);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* The SHA-256 of @len bytes as hex into @out. */
FIXTURE void sha_hex(const void *buf, size_t len, char out[65])
{
	fl_sha256_hex(buf, len, out);
}

/* manifest.sig text: signatures by @keys over @manifest. */
FIXTURE char *sign_text(const char *manifest, size_t len,
			struct fsig_key **keys, size_t n)
{
	struct fsig_siglist list = {0};
	json_t *j;
	char *s;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(fsig_siglist_add(&list, keys[i],
						  FSIG_DOMAIN_MANIFEST,
						  manifest, len, NULL),
				 0);
	j = fsig_siglist_to_json(&list);
	s = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	return s;
}

#endif
