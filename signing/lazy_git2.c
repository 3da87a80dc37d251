/* SPDX-License-Identifier: MIT */
/*
 * libgit2, loaded on first use (common/lazylib.h): only `fleetctl bundle
 * create --provenance`-style calls read a git repository.
 */
#include <git2.h>

#include "gitprov.h"
#include "lazylib.h"

static struct fl_lazylib libgit2 =
    FL_LAZYLIB_INIT(FL_SONAME_LIBGIT2, FL_PACKAGE_LIBGIT2);

int fsig_git_load(struct fl_error *err)
{
	return fl_lazylib_load(&libgit2, err);
}

FL_LAZY(libgit2, int, git_libgit2_init, (void), ())
FL_LAZY(libgit2, int, git_libgit2_shutdown, (void), ())
FL_LAZY(libgit2, void, git_error_clear, (void), ())
FL_LAZY(libgit2, const git_error *, git_error_last, (void), ())
FL_LAZY(libgit2, void, git_buf_dispose, (git_buf *b), (b))
FL_LAZY(libgit2, void, git_config_free, (git_config *c), (c))
FL_LAZY(libgit2, int, git_config_get_string,
	(const char **out, const git_config *c, const char *name),
	(out, c, name))
FL_LAZY(libgit2, int, git_describe_commit,
	(git_describe_result **out, git_object *obj, git_describe_options *o),
	(out, obj, o))
FL_LAZY(libgit2, int, git_describe_format,
	(git_buf *out, const git_describe_result *res,
	 const git_describe_format_options *o),
	(out, res, o))
FL_LAZY(libgit2, int, git_describe_format_options_init,
	(git_describe_format_options *o, unsigned int v), (o, v))
FL_LAZY(libgit2, int, git_describe_options_init,
	(git_describe_options *o, unsigned int v), (o, v))
FL_LAZY(libgit2, void, git_describe_result_free, (git_describe_result *r),
	(r))
FL_LAZY(libgit2, void, git_object_free, (git_object *o), (o))
FL_LAZY(libgit2, const git_oid *, git_object_id, (const git_object *o), (o))
FL_LAZY(libgit2, char *, git_oid_tostr_s, (const git_oid *oid), (oid))
FL_LAZY(libgit2, int, git_repository_config_snapshot,
	(git_config **out, git_repository *r), (out, r))
FL_LAZY(libgit2, void, git_repository_free, (git_repository *r), (r))
FL_LAZY(libgit2, int, git_repository_is_bare, (const git_repository *r), (r))
FL_LAZY(libgit2, int, git_repository_open_ext,
	(git_repository **out, const char *path, unsigned int flags,
	 const char *ceiling),
	(out, path, flags, ceiling))
FL_LAZY(libgit2, int, git_revparse_single,
	(git_object **out, git_repository *r, const char *spec),
	(out, r, spec))
FL_LAZY(libgit2, size_t, git_status_list_entrycount, (git_status_list *l),
	(l))
FL_LAZY(libgit2, void, git_status_list_free, (git_status_list *l), (l))
FL_LAZY(libgit2, int, git_status_list_new,
	(git_status_list **out, git_repository *r, const git_status_options *o),
	(out, r, o))
FL_LAZY(libgit2, int, git_status_options_init,
	(git_status_options *o, unsigned int v), (o, v))
