/* SPDX-License-Identifier: MIT */
#ifndef FSIG_GITPROV_H
#define FSIG_GITPROV_H

/*
 * Build provenance from a git working tree through libgit2: the HEAD
 * commit, the equivalent of `git describe --tags --always --dirty`,
 * whether tracked files differ from HEAD, and the "origin" URL.
 */
#include <stdbool.h>

#include "err.h"

struct fsig_git_info {
	char *commit;	/* 40 hex digits */
	char *describe; /* e.g. "v1.2.0-3-g1a2b3c4-dirty" */
	char *remote;	/* origin URL without user:password@, or NULL */
	bool dirty;	/* tracked changes in index or work tree */
};

/*
 * Inspect the repository containing @dir (searching upwards like git).
 * Untracked files do not make a tree dirty (as with git describe).  A
 * dirty tree fails with FL_ECONFLICT unless @allow_dirty.  FL_ENOTFOUND
 * when @dir is not in a repository or HEAD has no commit.  On success
 * the caller releases @out with fsig_git_info_release.
 */
/* Load libgit2 (not linked: common/lazylib.h); fsig_git_info_read does. */
int fsig_git_load(struct fl_error *err);

int fsig_git_info_read(const char *dir, bool allow_dirty,
		       struct fsig_git_info *out, struct fl_error *err);

/* Free the strings of @g and zero it (NULL is fine). */
void fsig_git_info_release(struct fsig_git_info *g);

/*
 * Copy @url without credentials: "https://user:tok@host/x" becomes
 * "https://host/x"; scp-like "git@host:x" is kept.  Caller frees.
 */
char *fsig_url_strip_credentials(const char *url);

#endif
