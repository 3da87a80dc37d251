/* SPDX-License-Identifier: MIT */
#ifndef AGENT_TRUST_H
#define AGENT_TRUST_H

/*
 * The device's bundle trust root (fleet-bundle(5), docs/ota.md):
 * STATE_DIR/root.json.  It comes with the provisioning archive, or is
 * fetched once from fleetd (GET /api/v1/roots/1 over the pinned-CA
 * mTLS channel: trust on first use of an authenticated server), and is
 * moved forward only along a signed chain: when a bundle is signed by
 * keys the device does not trust yet, the agent fetches the newer roots
 * fleetd has (GET /api/v1/roots, /api/v1/roots/N) and accepts them only
 * if each is signed by a threshold of its predecessor's root keys
 * (fsig_root_update).  A root is never replaced by an older one.
 */
#include <stdbool.h>

#include "err.h"
#include "identity.h"
#include "root.h"

#define AGENT_ROOT_FILE "root.json"
#define AGENT_ROOTS_FETCH_MAX 64 /* newer roots taken in one update */

/*
 * Load STATE_DIR/root.json and check its own signatures.  Returns 0,
 * FL_ENOTFOUND (no root yet), FL_EPARSE, FL_ELIMIT, FL_EVERIFY, FL_EIO.
 */
int agent_trust_load(const char *state_dir, struct fsig_root **ret,
		     struct fl_error *err);

/*
 * Trust on first use: GET /api/v1/roots/1 with the device certificate,
 * check that it carries a threshold of its own root keys and has not
 * expired, save it as root.json.  Does nothing (0) when root.json
 * exists.  Returns 0, FL_ENOTFOUND (fleetd has no root yet), the
 * fl_http codes, FL_EVERIFY, FL_EIO.
 */
int agent_trust_fetch_first(const struct agent_http_target *t,
			    const char *state_dir, struct fl_error *err);

/*
 * Move root.json forward to the newest root fleetd has, if the chain
 * verifies.  *@ret_updated (may be NULL) tells whether it changed.
 * Returns 0 (also when nothing newer exists), FL_ENOTFOUND (no
 * root.json), the fl_http codes, FL_EVERIFY (the chain does not
 * verify: root.json is unchanged), FL_ELIMIT, FL_EIO.
 */
int agent_trust_update(const struct agent_http_target *t, const char *state_dir,
		       bool *ret_updated, struct fl_error *err);

#endif
