/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "gitprov.h"
#include "util.h"

/* Record libgit2's last error message as the failure reason. */
static int git_fail(struct fl_error *err, int code, const char *what)
{
	const git_error *e = git_error_last();

	return fl_fail(err, code, "%s: %s", what,
		       e && e->message ? e->message : "libgit2 error");
}

char *fsig_url_strip_credentials(const char *url)
{
	const char *scheme = strstr(url, "://"), *host, *at, *slash;
	char *out;

	if (!scheme)
		return fl_xstrdup(url);
	host = scheme + 3;
	slash = host + strcspn(host, "/");
	at = memchr(host, '@', (size_t)(slash - host));
	if (!at)
		return fl_xstrdup(url);
	/* the last '@' before the path ends the user information */
	while (memchr(at + 1, '@', (size_t)(slash - at - 1)))
		at = memchr(at + 1, '@', (size_t)(slash - at - 1));
	out = fl_xmalloc(strlen(url) + 1);
	memcpy(out, url, (size_t)(host - url));
	fl_strlcpy(out + (host - url), at + 1, strlen(at + 1) + 1);
	return out;
}

/* True when tracked files in the index or work tree differ from HEAD. */
static int tree_dirty(git_repository *repo, bool *ret, struct fl_error *err)
{
	git_status_options opts;
	git_status_list *list;

	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	opts.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, repo, &opts) < 0)
		return git_fail(err, FL_ERR, "cannot read git status");
	*ret = git_status_list_entrycount(list) > 0;
	git_status_list_free(list);
	return 0;
}

static int describe(git_repository *repo, git_object *head, bool dirty,
		    char **ret, struct fl_error *err)
{
	git_describe_format_options fopts;
	git_describe_options opts;
	git_describe_result *res;
	git_buf buf = {0};

	(void)repo;
	git_describe_options_init(&opts, GIT_DESCRIBE_OPTIONS_VERSION);
	git_describe_format_options_init(&fopts,
					 GIT_DESCRIBE_FORMAT_OPTIONS_VERSION);
	opts.describe_strategy = GIT_DESCRIBE_TAGS;
	opts.show_commit_oid_as_fallback = 1;
	if (git_describe_commit(&res, head, &opts) < 0)
		return git_fail(err, FL_ERR, "git describe failed");
	if (git_describe_format(&buf, res, &fopts) < 0) {
		git_describe_result_free(res);
		return git_fail(err, FL_ERR, "git describe failed");
	}
	*ret = fl_xasprintf("%s%s", buf.ptr, dirty ? "-dirty" : "");
	git_buf_dispose(&buf);
	git_describe_result_free(res);
	return 0;
}

/*
 * The "origin" URL straight from the config (remote.origin.url) rather
 * than through git_remote_lookup, whose regex matching leaks in libgit2
 * 1.5 (fixed upstream in libgit2#6382); a missing remote is no error.
 */
static void read_remote(git_repository *repo, struct fsig_git_info *out)
{
	git_config *cfg = NULL;
	const char *url;

	if (git_repository_config_snapshot(&cfg, repo) == 0 &&
	    git_config_get_string(&url, cfg, "remote.origin.url") == 0)
		out->remote = fsig_url_strip_credentials(url);
	git_error_clear();
	git_config_free(cfg);
}

static int read_repo(git_repository *repo, bool allow_dirty,
		     struct fsig_git_info *out, struct fl_error *err)
{
	git_object *head = NULL;
	int rc;

	if (git_repository_is_bare(repo))
		return fl_fail(err, FL_EINVAL,
			       "git repository has no work tree");
	if (git_revparse_single(&head, repo, "HEAD^{commit}") < 0)
		return git_fail(err, FL_ENOTFOUND, "no HEAD commit");
	out->commit = fl_xstrdup(git_oid_tostr_s(git_object_id(head)));
	rc = tree_dirty(repo, &out->dirty, err);
	if (!rc && out->dirty && !allow_dirty)
		rc = fl_fail(err, FL_ECONFLICT,
			     "git work tree has uncommitted changes "
			     "(commit them, or allow a dirty tree)");
	if (!rc)
		rc = describe(repo, head, out->dirty, &out->describe, err);
	if (!rc)
		read_remote(repo, out);
	git_object_free(head);
	return rc;
}

int fsig_git_info_read(const char *dir, bool allow_dirty,
		       struct fsig_git_info *out, struct fl_error *err)
{
	struct fsig_git_info g = {0};
	git_repository *repo;
	int rc;

	if (fsig_git_load(err))
		return FL_ERR;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, dir, 0, NULL) < 0) {
		rc = git_fail(err, FL_ENOTFOUND, "not a git repository");
		fl_error_prefix(err, "'%s'", dir);
		git_libgit2_shutdown();
		return rc;
	}
	rc = read_repo(repo, allow_dirty, &g, err);
	git_repository_free(repo);
	git_libgit2_shutdown();
	if (rc) {
		fsig_git_info_release(&g);
		return rc;
	}
	*out = g;
	return 0;
}

void fsig_git_info_release(struct fsig_git_info *g)
{
	if (!g)
		return;
	free(g->commit);
	free(g->describe);
	free(g->remote);
	memset(g, 0, sizeof(*g));
}
