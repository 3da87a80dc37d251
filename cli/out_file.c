/* SPDX-License-Identifier: MIT */
/*
 * A file a command writes with --out (cli.h): created before fleetd is
 * asked anything, so a bad --out stores nothing.  It is a fresh 0600 file
 * with an unpredictable name next to OUT (mkstemp: O_CREAT|O_EXCL, so no
 * planted file or symlink is ever followed), moved to OUT only when
 * complete: link(2), which never replaces OUT, or rename(2) with --force,
 * which replaces OUT itself (a symlink there, not its target).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "tgz.h"
#include "util.h"

int cli_out_open(struct cli_out_file *o, const char *path, bool force,
		 struct fl_error *err)
{
	const char *slash = strrchr(path, '/');
	struct stat st;

	o->path = path;
	o->force = force;
	o->fd = -1;
	if (!*path || (slash && !slash[1]))
		return fl_fail(err, FL_EUSAGE, "--out needs a file name");
	if (lstat(path, &st) == 0 && (!force || S_ISDIR(st.st_mode)))
		return fl_fail(err, FL_ECONFLICT,
			       "'%s' exists (use --force to replace it)", path);
	if (slash)
		o->tmp = fl_xasprintf("%.*s/.%s.XXXXXX", (int)(slash - path),
				      path, slash + 1);
	else
		o->tmp = fl_xasprintf(".%s.XXXXXX", path);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0 || fchmod(o->fd, 0600) < 0) {
		int rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", path);

		free(o->tmp);
		o->tmp = NULL;
		return rc;
	}
	return 0;
}

void cli_out_close(struct cli_out_file *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
}

int cli_out_commit(struct cli_out_file *o, struct fl_error *err)
{
	int rc = 0;

	if (fsync(o->fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot write '%s'", o->path);
	else if (o->force ? rename(o->tmp, o->path) < 0
			  : link(o->tmp, o->path) < 0)
		rc = fl_fail_errno(err, errno == EEXIST ? FL_ECONFLICT : FL_EIO,
				   "cannot create '%s'", o->path);
	if (!rc && o->force) { /* renamed: nothing left to unlink */
		free(o->tmp);
		o->tmp = NULL;
	}
	/* OUT is in place now: a failed directory sync must not undo it */
	if (!rc && fl_fsync_parent(o->path, NULL))
		fprintf(stderr,
			"fleetctl: warning: cannot sync the directory "
			"of '%s'\n",
			o->path);
	cli_out_close(o);
	return rc;
}

int cli_write_tgz(struct cli_out_file *o, const char *dir,
		  const struct cli_tgz_file *files, size_t n,
		  struct fl_error *err)
{
	struct fl_tgz *t = NULL;
	char *p;
	int rc = fl_tgz_open(o->fd, &t, err);

	if (!rc)
		rc = fl_tgz_add(t, dir, NULL, 0, 0700, err);
	for (size_t i = 0; i < n && !rc; i++) {
		p = fl_xasprintf("%s/%s", dir, files[i].name);
		rc = fl_tgz_add(t, p, files[i].data, strlen(files[i].data),
				files[i].mode, err);
		free(p);
	}
	if (fl_tgz_close(t, err) && !rc)
		rc = FL_EIO;
	if (rc == FL_EIO)
		fl_error_prefix(err, "cannot write '%s'", o->path);
	if (!rc)
		rc = cli_out_commit(o, err);
	return rc;
}
