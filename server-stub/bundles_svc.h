/* SPDX-License-Identifier: MIT */
#ifndef SRV_BUNDLES_SVC_H
#define SRV_BUNDLES_SVC_H

/*
 * Bundle blob storage (issue 9 item 2): uploads stream into a temporary
 * file in STATE/bundles, are verified completely against fleetd's trust
 * root, then renamed to STATE/bundles/ID.fwb (fsynced) and recorded in
 * the store.  Used by the bundles API; the rollout engine and a shared
 * blob store (DESIGN §9) plug in here.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "root.h"

struct srv;
struct srv_bundle_row;
struct srv_upload;

/*
 * The newest trust root fleetd has (free with fsig_root_free).
 * FL_ECONFLICT when it has none yet.
 */
int srv_trust_root_current(struct srv *srv, struct fsig_root **ret,
			   struct fl_error *err);

/* Start an upload: a new temporary file.  FL_EIO. */
int srv_upload_begin(struct srv *srv, struct srv_upload **ret,
		     struct fl_error *err);

/* Append @len bytes to the upload.  FL_EIO. */
int srv_upload_write(struct srv_upload *u, const void *data, size_t len,
		     struct fl_error *err);

/*
 * Verify the upload (signatures, layout, every hash), move it into place
 * and record it as uploaded by @actor; *ret gets the bundle row (as
 * srv_store_bundle_get).  The same bundle again is not an error.  Codes
 * of fsig_reader_verify (FL_EVERIFY, FL_EPARSE, ...), FL_ECONFLICT (no
 * trust root, or another bundle has its name and version), FL_EIO.
 */
int srv_upload_finish(struct srv *srv, struct srv_upload *u, const char *actor,
		      struct srv_bundle_row *ret, struct fl_error *err);

/* Drop the upload and its temporary file.  NULL is fine. */
void srv_upload_free(struct srv_upload *u);

/*
 * Open the stored file of bundle @ref (id prefix or NAME@VERSION) for
 * reading: *ret_fd (caller closes) and *ret_size.  FL_ENOTFOUND, FL_EIO
 * when the row exists but the file does not.
 */
int srv_bundle_open(struct srv *srv, const char *ref, int *ret_fd,
		    uint64_t *ret_size, struct fl_error *err);

/*
 * The URL of bundle @id's file on the mirror ([bundles] mirror_url +
 * "ID.fwb", the file's name in STATE/bundles); NULL when fleetd has no
 * mirror.  Caller frees.
 */
char *srv_bundle_mirror_url(const struct srv *srv, const char *id);

#endif
