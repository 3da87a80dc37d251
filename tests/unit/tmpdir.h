/* SPDX-License-Identifier: MIT */
#ifndef TEST_TMPDIR_H
#define TEST_TMPDIR_H

/*
 * Private temp dirs for unit tests: made with mkdtemp, removed with
 * everything below them.  Header-only so every test program can include
 * it; functions are static and may go unused.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int tmpdir_rm_cb(const char *p, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Make "/tmp/fleet-@tag-XXXXXX" in @buf (64 bytes); 0 or -1. */
__attribute__((unused)) static int test_mkdtemp(char buf[64], const char *tag)
{
	snprintf(buf, 64, "/tmp/fleet-%.40s-XXXXXX", tag);
	return mkdtemp(buf) ? 0 : -1;
}

/* Remove @dir and everything below it; 0 or -1. */
__attribute__((unused)) static int test_rmtree(const char *dir)
{
	return nftw(dir, tmpdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A cmocka fixture holding one temp dir: *state is a struct
 * tmpdir_fixture, removed with everything in it after the test (made
 * writable first, in case the test took that away).
 */
struct tmpdir_fixture {
	char dir[64];
};

__attribute__((unused)) static int tmpdir_setup(void **state)
{
	struct tmpdir_fixture *f = calloc(1, sizeof(*f));

	if (!f || test_mkdtemp(f->dir, "unit")) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

__attribute__((unused)) static int tmpdir_teardown(void **state)
{
	struct tmpdir_fixture *f = *state;
	int rc;

	chmod(f->dir, 0700);
	rc = test_rmtree(f->dir);
	free(f);
	return rc;
}

#endif
