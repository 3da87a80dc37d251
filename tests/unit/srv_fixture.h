/* SPDX-License-Identifier: MIT */
/*
 * The fleetd service tests' fixture: an initialised state dir in its own
 * temp dir, opened as fleetd opens it (store, CA), without HTTP, broker
 * or MQTT client.  Include after cmocka.h.
 */
#ifndef FLEET_TEST_SRV_FIXTURE_H
#define FLEET_TEST_SRV_FIXTURE_H

#include <stdlib.h>

#include "tmpdir.h"

#include "fsutil.h"
#include "srv.h"
#include "util.h"

struct srv_fixture {
	char dir[64];
	char *state;
	struct srv *srv;
};

static int srv_setup(void **state)
{
	struct srv_fixture *f = fl_xcalloc(1, sizeof(*f));
	char *token = NULL;
	int rc;

	*state = f;
	if (test_mkdtemp(f->dir, "srv"))
		return -1;
	f->state = fl_path_join(f->dir, "state");
	rc = srv_init_state(f->state, NULL, 0, NULL, &token, NULL);
	fl_free_secret(token);
	return rc || srv_open(f->state, &f->srv, NULL) ? -1 : 0;
}

static int srv_teardown(void **state)
{
	struct srv_fixture *f = *state;
	int rc;

	srv_close(f->srv);
	rc = test_rmtree(f->dir);
	free(f->state);
	free(f);
	return rc;
}

#endif
