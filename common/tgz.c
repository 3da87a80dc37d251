/* SPDX-License-Identifier: MIT */
/* Small .tar.gz archives from memory; see tgz.h. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgz.h"
#include "util.h"

struct fl_tgz {
	struct archive *a;
};

int fl_tgz_open(int fd, struct fl_tgz **ret, struct fl_error *err)
{
	struct archive *a;
	int rc = fl_archive_load(err);

	if (rc)
		return rc;
	a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		rc = fl_fail(err, FL_EIO, "archive: %s",
			     archive_error_string(a));
		archive_write_free(a);
		return rc;
	}
	*ret = fl_xcalloc(1, sizeof(**ret));
	(*ret)->a = a;
	return 0;
}

int fl_tgz_add(struct fl_tgz *t, const char *path, const void *data, size_t len,
	       mode_t mode, struct fl_error *err)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, (data ? AE_IFREG : AE_IFDIR) | mode);
	archive_entry_set_size(e, data ? (la_int64_t)len : 0);
	archive_entry_set_mtime(e, time(NULL), 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	if (archive_write_header(t->a, e) != ARCHIVE_OK ||
	    (data && len &&
	     archive_write_data(t->a, data, len) != (la_ssize_t)len))
		rc = fl_fail(err, FL_EIO, "archive: %s",
			     archive_error_string(t->a));
	archive_entry_free(e);
	return rc;
}

int fl_tgz_close(struct fl_tgz *t, struct fl_error *err)
{
	int rc = 0;

	if (!t)
		return 0;
	if (archive_write_close(t->a) != ARCHIVE_OK)
		rc = fl_fail(err, FL_EIO, "archive: %s",
			     archive_error_string(t->a));
	archive_write_free(t->a);
	free(t);
	return rc;
}

void fl_tgz_entries_free(struct fl_tgz_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].path);
		if (v[i].data)
			explicit_bzero(v[i].data, v[i].len);
		free(v[i].data);
	}
	free(v);
}

/* The current entry's bytes into @e (at most @left of them). */
static int read_entry(struct archive *a, struct archive_entry *ae, size_t left,
		      struct fl_tgz_entry *e, struct fl_error *err)
{
	la_int64_t size = archive_entry_size(ae);

	if (size < 0 || (uint64_t)size > left)
		return fl_fail(err, FL_ELIMIT,
			       "archive entry '%.100s' is too "
			       "big",
			       archive_entry_pathname(ae));
	e->path = fl_xstrdup(archive_entry_pathname(ae));
	e->data = fl_xcalloc(1, (size_t)size + 1);
	e->len = (size_t)size;
	if (size && archive_read_data(a, e->data, e->len) != size)
		return fl_fail(err, FL_EPARSE, "archive: %s",
			       archive_error_string(a));
	return 0;
}

int fl_tgz_read(const char *path, size_t max_files, size_t max_bytes,
		struct fl_tgz_entry **ret, size_t *ret_n, struct fl_error *err)
{
	struct fl_tgz_entry *v = fl_xcalloc(max_files + 1, sizeof(*v));
	struct archive_entry *ae;
	struct archive *a;
	size_t n = 0, used = 0;
	int rc = fl_archive_load(err), r = ARCHIVE_EOF;

	if (rc) {
		free(v);
		return rc;
	}
	a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 16384) != ARCHIVE_OK)
		rc = fl_fail(err, errno == ENOENT ? FL_ENOTFOUND : FL_EPARSE,
			     "cannot read '%s': %s", path,
			     archive_error_string(a));
	while (!rc && (r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		if (archive_entry_filetype(ae) != AE_IFREG)
			continue;
		if (n == max_files)
			rc = fl_fail(err, FL_ELIMIT,
				     "'%s' holds over %zu "
				     "files",
				     path, max_files);
		else if (!(rc = read_entry(a, ae, max_bytes - used, &v[n++],
					   err)))
			used += v[n - 1].len;
	}
	if (!rc && r != ARCHIVE_EOF)
		rc = fl_fail(err, FL_EPARSE, "'%s' is not a tar.gz: %s", path,
			     archive_error_string(a));
	archive_read_free(a);
	if (rc) {
		fl_tgz_entries_free(v, n);
		return rc;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
