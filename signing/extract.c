/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "reader.h"
#include "util.h"

/*
 * A sink that writes each payload to a hidden temporary file in a
 * directory and publishes them (rename) only after the whole bundle
 * verified.  Until then nothing exists at DIR/<name>.
 */
struct dir_sink {
	const char *dir;
	int fd;
	size_t n;
	char *tmp[FSIG_PAYLOADS_MAX];
	const char *name[FSIG_PAYLOADS_MAX];
};

static int dir_begin(void *ctx, size_t index, const struct fsig_payload *p,
		     struct fl_error *err)
{
	struct dir_sink *d = ctx;
	char *tmp = fl_xasprintf("%s/.%s.part.XXXXXX", d->dir, p->name);

	d->fd = mkostemp(tmp, O_CLOEXEC);
	if (d->fd < 0) {
		int rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", tmp);

		free(tmp);
		return rc;
	}
	d->tmp[d->n] = tmp;
	d->name[d->n] = p->name;
	d->n++;
	(void)index;
	return 0;
}

static int dir_write(void *ctx, const void *buf, size_t len,
		     struct fl_error *err)
{
	struct dir_sink *d = ctx;

	return fl_write_all(d->fd, buf, len, err);
}

static int dir_end(void *ctx, size_t index, const struct fsig_payload *p,
		   struct fl_error *err)
{
	struct dir_sink *d = ctx;
	int rc = 0;

	(void)index;
	if (fchmod(d->fd, 0644) < 0 || fsync(d->fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync '%s'", p->name);
	close(d->fd);
	d->fd = -1;
	return rc;
}

static int publish(struct dir_sink *d, struct fl_error *err)
{
	for (size_t i = 0; i < d->n; i++) {
		char *dst = fl_path_join(d->dir, d->name[i]);
		int bad = rename(d->tmp[i], dst);

		free(dst);
		if (bad)
			return fl_fail_errno(err, FL_EIO,
					     "cannot rename into '%s'", d->dir);
		free(d->tmp[i]);
		d->tmp[i] = NULL;
	}
	return fl_fsync_parent(d->dir, err);
}

int fsig_reader_extract(struct fsig_reader *r, const char *dir,
			struct fl_error *err)
{
	struct dir_sink d = {.dir = dir, .fd = -1};
	struct fsig_sink sink = {dir_begin, dir_write, dir_end, &d};
	int rc;

	rc = fsig_reader_stream(r, &sink, err);
	if (d.fd >= 0)
		close(d.fd);
	if (!rc)
		rc = publish(&d, err);
	for (size_t i = 0; i < d.n; i++) {
		if (d.tmp[i])
			unlink(d.tmp[i]);
		free(d.tmp[i]);
	}
	return rc;
}

int fsig_bundle_verify_file(const char *path, const struct fsig_root *root,
			    const struct fsig_policy *pol,
			    const char *extract_dir,
			    struct fsig_manifest **ret_manifest,
			    enum fsig_reason *ret_reason, struct fl_error *err)
{
	struct fsig_reader *r = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_fail_errno(err,
				     errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				     "cannot open '%s'", path);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = fsig_reader_open_fd(fd, &r, err);
	if (!rc)
		rc = fsig_reader_verify(r, root, pol, err);
	if (!rc)
		rc = extract_dir ? fsig_reader_extract(r, extract_dir, err)
				 : fsig_reader_stream(r, NULL, err);
	if (ret_reason)
		*ret_reason = r ? fsig_reader_reason(r) : FSIG_R_NONE;
	if (!rc && ret_manifest)
		*ret_manifest = fsig_reader_take_manifest(r);
	fsig_reader_free(r);
	close(fd);
	if (rc)
		fl_error_prefix(err, "'%s'", path);
	return rc;
}
