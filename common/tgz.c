/* SPDX-License-Identifier: MIT */
/* Small .tar.gz archives from memory; see tgz.h. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
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
