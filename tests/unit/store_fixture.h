/* SPDX-License-Identifier: MIT */
/*
 * The store unit tests' fixture: a fresh SQLite store in its own temp
 * dir, opened by setup and removed by teardown (cmocka setup/teardown).
 * Include after cmocka.h.
 */
#ifndef FLEET_TEST_STORE_FIXTURE_H
#define FLEET_TEST_STORE_FIXTURE_H

#include <stdlib.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "store.h"
#include "util.h"

struct fixture {
	char dir[64];
	char *db;
	struct srv_store *s;
};

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	struct fl_error err = {0};

	if (test_mkdtemp(f->dir, "store")) {
		free(f);
		return -1;
	}
	f->db = fl_path_join(f->dir, "fleet.db");
	*state = f;
	return srv_store_open(f->db, &f->s, &err) ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	srv_store_close(f->s);
	rc = test_rmtree(f->dir);
	free(f->db);
	free(f);
	return rc;
}

#endif
