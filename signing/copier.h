/* SPDX-License-Identifier: MIT */
#ifndef FSIG_COPIER_H
#define FSIG_COPIER_H

/*
 * Internal to libfleetsign: a helper thread that writes buffers while
 * the caller hashes them and reads the next one, so bundling an image
 * costs about max(hash, copy) instead of hash + copy.  One write is in
 * flight at a time; the caller alternates between two buffers and
 * never touches a submitted buffer before the next submit (or finish)
 * returns.
 */
#include <stddef.h>

#include "err.h"

typedef int (*fsig_copier_write_fn)(void *ctx, const void *buf, size_t len,
				    struct fl_error *err);

struct fsig_copier;

/* Start the thread; @fn(@ctx, ...) does the writing.  Caller finishes
 * it with fsig_copier_finish.  FL_ERR when no thread can be made. */
int fsig_copier_start(fsig_copier_write_fn fn, void *ctx,
		      struct fsig_copier **ret, struct fl_error *err);

/* Wait for the previous write, then hand @buf over.  Returns the
 * previous write's error, if any (and then does not submit). */
int fsig_copier_submit(struct fsig_copier *c, const void *buf, size_t len,
		       struct fl_error *err);

/* Wait for the last write, stop and free the thread; the first write
 * error, if any.  NULL is fine. */
int fsig_copier_finish(struct fsig_copier *c, struct fl_error *err);

#endif
