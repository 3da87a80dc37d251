/* SPDX-License-Identifier: MIT */
#ifndef SRV_DIAG_BUNDLES_H
#define SRV_DIAG_BUNDLES_H

/*
 * Support bundles (issue 12, docs/diagnostics.md "Through fleetd"): a
 * technician asks for one, fleetd gives it an upload id and sends the
 * device the "bundle" check; the device PUTs its .tar.gz under that id
 * with its certificate; the technician downloads it.
 *
 * An upload is pending (the device may PUT it once) until the device
 * answers the check or its diag call times out.  A bundle is capped at
 * max_size bytes and must be gzip data; it is written to a temp file in
 * DIR and renamed to DIR/UPLOAD_ID.tar.gz when complete.  Every entry,
 * whatever its end, is dropped with its file SRV_DIAG_BUNDLE_KEEP_S after
 * it settled (SRV_DIAG_BUNDLE_STALE_S after it began when its fleetd
 * died before its call ended), and at most SRV_DIAG_BUNDLES_HELD are held
 * at once.  The uploads' states are in the store and DIR may be on
 * shared storage ([diag] bundle_dir; never in STATE/bundles, which a
 * mirror may publish), so that with replicas the device's upload and the
 * technician's download may reach any replica; the calls are the asking
 * fleetd's.  Times are wall-clock
 * ms (fl_wall_ms).  Thread-safe.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag_relay.h"
#include "err.h"

#define SRV_DIAG_BUNDLE_KEEP_S 3600
#define SRV_DIAG_BUNDLE_STALE_S (SRV_DIAG_BUNDLE_KEEP_S + 2 * 3600)
#define SRV_DIAG_BUNDLES_HELD 32
#define SRV_DIAG_UPLOAD_ID_MAX 40

enum srv_bundle_state {
	SRV_BUNDLE_PENDING = 0, /* waiting for the device's upload */
	SRV_BUNDLE_UPLOADING,	/* its upload is arriving */
	SRV_BUNDLE_UPLOADED,
	SRV_BUNDLE_FAILED,  /* the device reported a failure */
	SRV_BUNDLE_EXPIRED, /* no upload before the call's deadline */
};

struct srv_diag_bundles;
struct srv_diag_upload;

struct srv_store;

/* A table over the directory @dir (created 0700) and @store. */
int srv_diag_bundles_new(const char *dir, uint64_t max_size,
			 struct srv_store *store, struct srv_diag_bundles **ret,
			 struct fl_error *err);

/* Free the table (its calls must be done); the uploads stay. */
void srv_diag_bundles_free(struct srv_diag_bundles *b);

/*
 * A new pending upload for @device, its id ("u-" and 24 hex digits)
 * into @ret_id.  @call, whose done will call srv_diag_bundles_settle, is
 * kept with it and freed with it.  FL_ELIMIT when SRV_DIAG_BUNDLES_HELD
 * entries are held.
 */
int srv_diag_bundles_add(struct srv_diag_bundles *b, const char *device,
			 struct srv_diag_call *call,
			 char ret_id[SRV_DIAG_UPLOAD_ID_MAX],
			 struct fl_error *err);

/* Drop the entry @id at once (its call was never begun). */
void srv_diag_bundles_remove(struct srv_diag_bundles *b, const char *id);

/*
 * The bundle call @c (an entry's) completed: a pending upload fails with
 * the device's error, or expires when it timed out; a device that says
 * it uploaded what never arrived fails.  Its done callback calls this.
 */
void srv_diag_bundles_settle(struct srv_diag_bundles *b,
			     const struct srv_diag_call *c, int64_t now);

/*
 * Device @device starts uploading @id: FL_ENOTFOUND when there is no
 * such upload for it, FL_ECONFLICT when it is not pending (arriving,
 * done, failed or expired).  The upload owns a temp file.
 */
int srv_diag_upload_begin(struct srv_diag_bundles *b, const char *device,
			  const char *id, struct srv_diag_upload **ret,
			  struct fl_error *err);

/* More bytes: FL_ELIMIT beyond max_size, FL_EIO. */
int srv_diag_upload_write(struct srv_diag_upload *u, const void *data,
			  size_t len, struct fl_error *err);

/*
 * Complete: FL_EPARSE when it is not gzip data (the entry goes back to
 * pending); else synced and renamed, the entry uploaded, its size in
 * *@ret_size.
 */
int srv_diag_upload_finish(struct srv_diag_upload *u, uint64_t *ret_size,
			   int64_t now, struct fl_error *err);

/* Forget an unfinished upload (temp file removed, entry pending again);
 * NULL is fine. */
void srv_diag_upload_free(struct srv_diag_upload *u);

/*
 * The entry @id of @device: its state, and for an uploaded one an open
 * descriptor of its file and its size (caller closes), for a failed one
 * the device's error (caller frees).  FL_ENOTFOUND.
 */
int srv_diag_bundles_get(struct srv_diag_bundles *b, const char *device,
			 const char *id, enum srv_bundle_state *ret_state,
			 int *ret_fd, uint64_t *ret_size, char **ret_error,
			 struct fl_error *err);

/* Drop entries that settled SRV_DIAG_BUNDLE_KEEP_S before @now. */
void srv_diag_bundles_tick(struct srv_diag_bundles *b, int64_t now);

#endif
