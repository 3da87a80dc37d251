/* SPDX-License-Identifier: MIT */
#ifndef CLI_COMPLETE_CACHE_H
#define CLI_COMPLETE_CACHE_H

/*
 * The ids shell completion offers (`fleetctl __complete KIND PREFIX`),
 * kept in a short-lived local cache so a TAB never waits for fleetd:
 * $XDG_CACHE_HOME/fleet/complete-<server hash>.KIND (else
 * ~/.cache/fleet/...), mode 0600.  The file is a header line and then
 * one id per line; a TAB is a streaming prefix scan of it (no JSON).
 */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "http.h"

/* What a command's positional arguments are (in its table's flags). */
enum cli_arg_kind {
	CLI_KIND_NONE,
	CLI_KIND_DEVICES,
	CLI_KIND_GROUPS,
	CLI_KIND_LABELS,
	CLI_KIND_BUNDLES,
	CLI_KIND_ROLLOUTS,
	CLI_KIND_JOBS,
	CLI_KIND_COUNT,
};

#define CLI_CCACHE_HEADER "fleet-complete-v1"
#define CLI_CCACHE_TTL 60		 /* seconds a cache is fresh */
#define CLI_CCACHE_MAX_IDS 200000	 /* ids kept per kind */
#define CLI_CCACHE_MAX_LINE 256		 /* bytes of one id, '\n' included */
#define CLI_CCACHE_MAX_BYTES (16u << 20) /* bigger files are ignored */
#define CLI_CCACHE_FETCH_MS 3000	 /* whole refresh request */

/* "devices" ... "jobs" for a kind, NULL for CLI_KIND_NONE or out of
 * range; the kind of a name, CLI_KIND_NONE if unknown. */
const char *cli_kind_name(int kind);
int cli_kind_from_name(const char *name);

/* The cache file of @kind for the server @server_url; caller frees. */
char *cli_ccache_path(const char *server_url, int kind);

/* Is @path a cache with the right header, written less than @ttl
 * seconds before @now (and not in the future)? */
bool cli_ccache_fresh(const char *path, time_t now, time_t ttl);

/*
 * Print to @out each id of the cache @path that starts with @prefix,
 * one per line, streaming.  Overlong lines and lines with bytes that are
 * not printable ASCII are skipped.  Returns the number printed, or -1
 * when the file is missing, too big or has no header (nothing printed).
 */
long cli_ccache_scan(const char *path, const char *prefix, FILE *out);

/*
 * The ids of @kind in fleetd's list answer @rows (an array of objects):
 * each row's "id"; for groups each distinct "group"; for labels each
 * distinct "KEY=VALUE" of "labels".  A new array of strings.
 */
json_t *cli_ccache_ids(int kind, const json_t *rows);

/*
 * Write @ids (an array of strings) as the cache @path: its directory
 * made 0700, the file replaced atomically with mode 0600, ids that are
 * too long or not printable left out, at most CLI_CCACHE_MAX_IDS.
 * 0 or FL_EIO.
 */
int cli_ccache_write(const char *path, const json_t *ids, struct fl_error *err);

/* Fetch the ids of @kind from fleetd over @h (CLI_CCACHE_FETCH_MS) and
 * write them to @path.  0 or the error's code. */
int cli_ccache_refresh(struct fl_http *h, int kind, const char *path,
		       struct fl_error *err);

#endif
