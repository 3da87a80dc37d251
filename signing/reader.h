/* SPDX-License-Identifier: MIT */
#ifndef FSIG_READER_H
#define FSIG_READER_H

/*
 * Reading and verifying bundles (fleet-bundle(5)), pull-based and
 * streaming: memory stays constant whatever the payload size.
 *
 *   struct fsig_reader *r;
 *   fsig_reader_open_fd(fd, &r, &err);
 *   // step 1: manifest.json + manifest.sig, signatures, policy.
 *   // No payload byte has been read yet: a device can refuse a wrong
 *   // bundle before downloading the rest.
 *   fsig_reader_verify(r, root, &policy, &err);
 *   m = fsig_reader_manifest(r);
 *   // step 2: each payload, in manifest order, into the sink, hashed
 *   // (and decompressed) on the way; success only after the last hash
 *   // matched and nothing follows the last payload.
 *   fsig_reader_stream(r, &sink, &err);
 *   fsig_reader_free(r);
 *
 * Every rejection of the bundle's content fails with FL_EVERIFY and
 * fsig_reader_reason() tells which check failed (reason.h).  Errors of
 * the byte source keep their own code (FL_EIO, ...), and so do errors a
 * sink returns.
 *
 * The sink sees payload bytes BEFORE their hash is known to match (that
 * is what streaming means): it must treat what it wrote as untrusted
 * until fsig_reader_stream() returns 0 (the agent marks a slot bootable
 * only then; fsig_reader_extract() renames files only then).  It never
 * receives more bytes than the manifest declares for a payload.
 */
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "manifest.h"
#include "reason.h"
#include "root.h"
#include "sigs.h"

/*
 * A byte source: fill up to @cap bytes of @buf, set *ret_len (0 at end
 * of input) and return 0, or return an fl_err code.
 */
typedef int (*fsig_read_fn)(void *ctx, void *buf, size_t cap, size_t *ret_len,
			    struct fl_error *err);

/*
 * Where payload bytes go.  @write is required; @begin and @end are
 * optional.  @end is called once a payload's size and hashes matched.
 * Any non-zero return stops the reader and is returned as is.
 */
struct fsig_sink {
	int (*begin)(void *ctx, size_t index, const struct fsig_payload *p,
		     struct fl_error *err);
	int (*write)(void *ctx, const void *buf, size_t len,
		     struct fl_error *err);
	int (*end)(void *ctx, size_t index, const struct fsig_payload *p,
		   struct fl_error *err);
	void *ctx;
};

struct fsig_reader;

/* Read a bundle from @fd (not closed by the reader; any file type, read
 * sequentially).  Caller frees with fsig_reader_free. */
int fsig_reader_open_fd(int fd, struct fsig_reader **ret, struct fl_error *err);

/* Read a bundle from a callback (e.g. a download in progress). */
int fsig_reader_open_cb(fsig_read_fn fn, void *ctx, struct fsig_reader **ret,
			struct fl_error *err);

/*
 * Step 1 with trust: read manifest.json and manifest.sig, check that a
 * threshold of @root's targets keys signed the exact manifest bytes
 * (before parsing them), that @root has not expired, then parse the
 * manifest and apply @pol (may be NULL: no hardware, floor 0, now).
 */
int fsig_reader_verify(struct fsig_reader *r, const struct fsig_root *root,
		       const struct fsig_policy *pol, struct fl_error *err);

/*
 * Step 1 without trust, for inspection: the same structural checks and
 * parsing, no signature or policy check.  fsig_reader_stream() may
 * follow and then checks integrity (sizes, hashes, layout) only: a
 * bundle read this way is NOT authenticated.
 */
int fsig_reader_inspect(struct fsig_reader *r, struct fl_error *err);

/* After step 1: the parsed manifest (owned by @r), else NULL. */
const struct fsig_manifest *fsig_reader_manifest(const struct fsig_reader *r);

/* After step 1: the signatures found in manifest.sig (owned by @r). */
const struct fsig_siglist *fsig_reader_signatures(const struct fsig_reader *r);

/*
 * After step 1: SHA-256 (64 hex) of the exact manifest bytes, which
 * identifies the bundle's content (payload hashes are inside).
 */
const char *fsig_reader_manifest_sha256(const struct fsig_reader *r);

/*
 * Bytes of the bundle the reader has consumed (not merely buffered):
 * in a sink's @begin, the offset of the payload's first byte, which is
 * where a consumer that keeps the payload (a slot) can resume from.
 */
uint64_t fsig_reader_offset(const struct fsig_reader *r);

/* True once fsig_reader_verify() succeeded. */
bool fsig_reader_verified(const struct fsig_reader *r);

/*
 * Step 2: stream every payload in manifest order into @sink (NULL:
 * hash and discard), then require the end of the archive.  zstd
 * payloads are decompressed (window at most 8 MiB) and the sink gets
 * the decompressed bytes.  FL_EINVAL if step 1 has not succeeded, step
 * 2 already ran, or a payload is a delta (delta_from), which this
 * reader cannot apply yet (refused before any of its bytes is read).
 */
int fsig_reader_stream(struct fsig_reader *r, const struct fsig_sink *sink,
		       struct fl_error *err);

/*
 * Step 2 into directory @dir: each payload goes to a hidden temporary
 * file in @dir; only when the whole bundle verified are they renamed to
 * @dir/<name> (mode 0644) and @dir synced.  On any failure the
 * temporary files are removed, so nothing appears at @dir/<name>.
 */
int fsig_reader_extract(struct fsig_reader *r, const char *dir,
			struct fl_error *err);

/* Why the last step failed with FL_EVERIFY (FSIG_R_NONE otherwise). */
enum fsig_reason fsig_reader_reason(const struct fsig_reader *r);

/*
 * A JSON description for `fleetctl bundle inspect -o json` (after step
 * 1): {"manifest": {...as signed...}, "manifest_sha256": HEX,
 * "manifest_size": N, "signatures": [{"keyid": HEX}], "verified": bool}.
 * Caller decrefs.
 */
json_t *fsig_reader_describe(const struct fsig_reader *r);

/*
 * Hand the parsed manifest over to the caller (who frees it with
 * fsig_manifest_free); @r can then only be freed.  NULL before step 1.
 */
struct fsig_manifest *fsig_reader_take_manifest(struct fsig_reader *r);

/* Free a reader (NULL is fine). */
void fsig_reader_free(struct fsig_reader *r);

/*
 * Convenience for `fleetctl bundle verify`: open @path, verify against
 * @root and @pol, stream (extracting into @extract_dir unless NULL).
 * *ret_reason (may be NULL) gets the rejection reason; *ret_manifest
 * (may be NULL) the manifest on success, which the caller frees.
 */
int fsig_bundle_verify_file(const char *path, const struct fsig_root *root,
			    const struct fsig_policy *pol,
			    const char *extract_dir,
			    struct fsig_manifest **ret_manifest,
			    enum fsig_reason *ret_reason, struct fl_error *err);

/* Load libzstd (not linked: common/lazylib.h); the reader and writer
 * do before their first compressed payload. */
int fsig_zstd_load(struct fl_error *err);

#endif
