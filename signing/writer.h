/* SPDX-License-Identifier: MIT */
#ifndef FSIG_WRITER_H
#define FSIG_WRITER_H

/*
 * Creating signed bundles (fleet-bundle(5)).
 *
 * Memory stays constant whatever the image size: images are streamed in
 * fixed-size chunks.  When the output is seekable (a regular file) every
 * image is read exactly once: the writer reserves the region for
 * manifest.json and manifest.sig (their lengths are known in advance,
 * since digests are fixed-width and the padding absorbs the rest),
 * streams the payloads behind it while hashing (and compressing), then
 * writes the signed manifest into the reserved region.  For a pipe it
 * reads every image twice: once to hash, once to copy, and fails with
 * FL_ECONFLICT if an image changed in between.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "keys.h"
#include "manifest.h"

/* One payload to put in a bundle. */
struct fsig_payload_spec {
	const char *path; /* regular file or block device to read */
	const char *name; /* entry name; NULL: the file name of @path */
	const char *type; /* label for the installer; NULL: "image" */
	enum fsig_compression compression;
};

/* Everything a bundle says about itself. */
struct fsig_bundle_spec {
	const char *name;	     /* fsig_valid_name */
	const char *version;	     /* semantic version */
	uint64_t security_version;   /* <= FSIG_SECURITY_VERSION_MAX */
	const char *const *hardware; /* 1..FSIG_HARDWARE_MAX labels */
	size_t n_hardware;
	time_t created; /* 0: now */
	time_t expires; /* 0: never; else after @created */
	/* NULL: no "provenance" object.  Strings are copied as given. */
	const struct fsig_provenance *provenance;
	const struct fsig_payload_spec *payloads; /* 1..FSIG_PAYLOADS_MAX */
	size_t n_payloads;
	/* Signers (file or PKCS#11 keys), 1..FSIG_SIGS_MAX. */
	struct fsig_key *const *keys;
	size_t n_keys;
	int zstd_level; /* 1..19; 0: 3.  Level 19 needs an 8 MiB window. */
	/*
	 * fsig_bundle_create only: fsync the bundle before renaming it into
	 * place.  Off by default: syncing 256 MiB costs more than writing
	 * it, and a bundle torn by a power loss fails verification (hash
	 * mismatch) rather than installing, so build artifacts can skip it.
	 * Turn it on where the file itself must survive (a bundle store).
	 */
	bool sync;
};

/*
 * Write a bundle for @spec to @fd, starting at its current offset.  A
 * seekable @fd must be an empty regular file (it is truncated to the
 * bundle's end).  FL_EINVAL for a bad spec (names, version, hardware,
 * duplicate payload names, public-only keys), FL_ENOTFOUND for a missing
 * image, FL_EIO for read/write errors, FL_ELIMIT for an image over
 * FSIG_PAYLOAD_SIZE_MAX, FL_ECONFLICT when an image changed size (or
 * content, for pipes) while being read.
 */
int fsig_bundle_write(const struct fsig_bundle_spec *spec, int fd,
		      struct fl_error *err);

/*
 * As fsig_bundle_write into a new file @path (mode 0644): written to a
 * temporary file beside it and renamed, so @path is either the complete
 * bundle or untouched; no temporary file survives a failure.  With
 * spec->sync the data and the directory are also synced (durable).
 * An existing @path that is not a regular file (a device, a symlink
 * such as /dev/stdout) is refused with FL_EINVAL: use fsig_bundle_write
 * on the descriptor instead.
 */
int fsig_bundle_create(const struct fsig_bundle_spec *spec, const char *path,
		       struct fl_error *err);

#endif
