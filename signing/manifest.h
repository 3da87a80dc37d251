/* SPDX-License-Identifier: MIT */
#ifndef FSIG_MANIFEST_H
#define FSIG_MANIFEST_H

/*
 * The bundle manifest (manifest.json, fleet-bundle(5)): parsing with a
 * cap on every size and count, policy checks, and semantic versions.
 *
 * A parsed manifest owns its JSON document; every string in it is
 * borrowed from that document and lives until fsig_manifest_free().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "reason.h"

#define FSIG_FORMAT 1		      /* the "format" this code writes */
#define FSIG_MANIFEST_MAX (64 * 1024) /* bytes of manifest.json */
#define FSIG_PAYLOADS_MAX 16	      /* payloads in one bundle */
#define FSIG_HARDWARE_MAX 32	      /* entries of "hardware" */
#define FSIG_NAME_MAX 64	      /* bundle and payload names */
#define FSIG_TYPE_MAX 32	      /* payload "type" */
#define FSIG_VERSION_MAX 64	      /* "version" and "delta_from" */
#define FSIG_TEXT_MAX 256	      /* describe, builder */
#define FSIG_URL_MAX 512	      /* provenance "remote" */
#define FSIG_SECURITY_VERSION_MAX ((1LL << 53) - 1)
/* Largest payload: what a 12-digit octal or base-256 tar size can say is
 * far more; this keeps sizes exact in JSON numbers and sane for slots. */
#define FSIG_PAYLOAD_SIZE_MAX (1LL << 40)

enum fsig_compression {
	FSIG_COMP_NONE = 0,
	FSIG_COMP_ZSTD = 1,
};

/* "none" or "zstd". */
const char *fsig_compression_name(enum fsig_compression c);

/*
 * One payload.  @size and @sha256 describe the bytes stored in the
 * bundle entry payload/<name>; @raw_size and @raw_sha256 the bytes
 * delivered to the installer after decompression (equal to @size and
 * @sha256 when @compression is FSIG_COMP_NONE).
 */
struct fsig_payload {
	const char *name; /* plain file name, see fl_valid_filename */
	const char *type; /* free label, e.g. "rootfs", "image" */
	enum fsig_compression compression;
	uint64_t size;
	uint64_t raw_size;
	const char *sha256;	/* 64 lowercase hex */
	const char *raw_sha256; /* 64 lowercase hex */
	const char *delta_from; /* version of the base, or NULL */
};

/* Where and how the bundle was built (all fields may be NULL). */
struct fsig_provenance {
	const char *commit;   /* full hex object id */
	const char *describe; /* `git describe --tags --always --dirty` */
	const char *remote;   /* origin URL without credentials */
	const char *builder;  /* free text, e.g. "fleetctl 0.1.0 on ci-7" */
	bool dirty;
};

struct fsig_manifest {
	json_t *json; /* the parsed document, owned */
	int format;
	const char *name;
	const char *version; /* semantic version 2.0.0 */
	uint64_t security_version;
	size_t n_hardware;
	const char *hardware[FSIG_HARDWARE_MAX];
	time_t created;
	time_t expires; /* 0: never */
	bool has_provenance;
	struct fsig_provenance provenance;
	size_t n_payloads;
	struct fsig_payload payloads[FSIG_PAYLOADS_MAX];
};

/*
 * Parse and validate @len bytes of manifest JSON.  Trailing whitespace
 * (the writer's padding) is allowed.  On failure returns FL_EPARSE or
 * FL_ELIMIT and sets *reason (if non-NULL) to FSIG_R_BAD_NAME for a
 * payload name that is not a plain file name, FSIG_R_TOO_LARGE for an
 * oversized document, else FSIG_R_MALFORMED.  Caller frees *ret.
 */
int fsig_manifest_parse(const void *buf, size_t len, struct fsig_manifest **ret,
			enum fsig_reason *reason, struct fl_error *err);

/* Free a manifest (NULL is fine). */
void fsig_manifest_free(struct fsig_manifest *m);

/*
 * The manifest JSON object for the values in @m (its @json member is
 * not used): what the bundle writer signs, so a parsed manifest written
 * out again parses to the same values.  Members in the writer's order;
 * "expires" only when set, "provenance" only when @has_provenance,
 * "raw_size" and "raw_sha256" only for compressed payloads, "delta_from"
 * only when set.  Caller decrefs.
 */
json_t *fsig_manifest_to_json(const struct fsig_manifest *m);

/* Index of payload @name, or -1. */
int fsig_manifest_find(const struct fsig_manifest *m, const char *name);

/*
 * What a device or operator accepts beyond valid signatures.
 */
struct fsig_policy {
	const char *hardware;	       /* must be listed; NULL: any */
	uint64_t min_security_version; /* the device's anti-rollback floor */
	time_t now;		       /* 0: time(NULL) */
};

/*
 * Check @m against @pol: hardware listed, security_version >= floor,
 * not expired.  FL_EVERIFY with *reason FSIG_R_HARDWARE,
 * FSIG_R_SECURITY_VERSION or FSIG_R_EXPIRED.
 */
int fsig_manifest_check_policy(const struct fsig_manifest *m,
			       const struct fsig_policy *pol,
			       enum fsig_reason *reason, struct fl_error *err);

/* True for a semantic version 2.0.0 string of at most FSIG_VERSION_MAX
 * bytes ("1.2.3", "1.0.0-rc.1+build.5"; no leading zeros). */
bool fsig_valid_semver(const char *s);

/*
 * Compare two valid semantic versions by SemVer precedence: negative,
 * zero or positive like strcmp.  Build metadata is ignored.
 */
int fsig_semver_cmp(const char *a, const char *b);

/* True for a bundle or payload name: fl_valid_filename and at most
 * FSIG_NAME_MAX bytes. */
bool fsig_valid_name(const char *s);

#endif
