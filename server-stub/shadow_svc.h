/* SPDX-License-Identifier: MIT */
#ifndef SRV_SHADOW_SVC_H
#define SRV_SHADOW_SVC_H

/*
 * fleetd's device shadows (issue 13, docs/shadow.md): a desired write
 * stored (store.h) and then published, retained, to the device; the
 * API's JSON of a shadow.  Reports come in through the ingest queue
 * (ingest.h, SRV_INGEST_SHADOW).
 */
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "srv.h"
#include "store.h"

/*
 * Store the write @w to @id's desired document (srv_store_shadow_update,
 * with srv->cfg.shadow_max as the cap) and publish the new document on
 * PREFIX/@id/shadow/desired, retained.  Writes of one fleetd publish in
 * version order.  A publish that fails is logged: the write stands, and
 * the next write (or the retained message once the broker has it)
 * carries the state.  *@ret (may be NULL) gets the shadow.
 */
int srv_shadow_write(struct srv *srv, const char *id, const json_t *patch,
		     int64_t if_version, struct srv_shadow_row *ret,
		     struct fl_error *err);

/* The API object of a shadow: {"device", "desired": {"version",
 * "updated", "state"}, "reported": {"version", "updated", "state",
 * "refused"}, "delta"}. */
json_t *srv_shadow_json(const struct srv_shadow_row *r);

#endif
