/* SPDX-License-Identifier: MIT */
/*
 * libarchive, loaded on first use (common/lazylib.h): tgz.c writes
 * `fleetctl provision`'s device archive and the agent's support bundle
 * with it, and reads a technician's certificate bundle.
 */
#include <archive.h>
#include <archive_entry.h>

#include "lazylib.h"
#include "tgz.h"

static struct fl_lazylib libarchive =
    FL_LAZYLIB_INIT(FL_SONAME_LIBARCHIVE, FL_PACKAGE_LIBARCHIVE);

int fl_archive_load(struct fl_error *err)
{
	return fl_lazylib_load(&libarchive, err);
}

FL_LAZY(libarchive, struct archive *, archive_write_new, (void), ())
FL_LAZY(libarchive, int, archive_write_free, (struct archive * a), (a))
FL_LAZY(libarchive, int, archive_write_close, (struct archive * a), (a))
FL_LAZY(libarchive, int, archive_write_set_format_pax_restricted,
	(struct archive * a), (a))
FL_LAZY(libarchive, int, archive_write_add_filter_gzip, (struct archive * a),
	(a))
FL_LAZY(libarchive, int, archive_write_open_fd, (struct archive * a, int fd),
	(a, fd))
FL_LAZY(libarchive, int, archive_write_header,
	(struct archive * a, struct archive_entry *e), (a, e))
FL_LAZY(libarchive, la_ssize_t, archive_write_data,
	(struct archive * a, const void *p, size_t n), (a, p, n))
FL_LAZY(libarchive, const char *, archive_error_string, (struct archive * a),
	(a))
FL_LAZY(libarchive, struct archive_entry *, archive_entry_new, (void), ())
FL_LAZY(libarchive, void, archive_entry_free, (struct archive_entry * e), (e))
FL_LAZY(libarchive, void, archive_entry_set_pathname,
	(struct archive_entry * e, const char *s), (e, s))
FL_LAZY(libarchive, void, archive_entry_set_uname,
	(struct archive_entry * e, const char *s), (e, s))
FL_LAZY(libarchive, void, archive_entry_set_gname,
	(struct archive_entry * e, const char *s), (e, s))
FL_LAZY(libarchive, void, archive_entry_set_mode,
	(struct archive_entry * e, __LA_MODE_T m), (e, m))
FL_LAZY(libarchive, void, archive_entry_set_mtime,
	(struct archive_entry * e, time_t t, long ns), (e, t, ns))
FL_LAZY(libarchive, void, archive_entry_set_size,
	(struct archive_entry * e, la_int64_t n), (e, n))
FL_LAZY(libarchive, struct archive *, archive_read_new, (void), ())
FL_LAZY(libarchive, int, archive_read_free, (struct archive * a), (a))
FL_LAZY(libarchive, int, archive_read_support_filter_gzip, (struct archive * a),
	(a))
FL_LAZY(libarchive, int, archive_read_support_format_tar, (struct archive * a),
	(a))
FL_LAZY(libarchive, int, archive_read_open_filename,
	(struct archive * a, const char *path, size_t block), (a, path, block))
FL_LAZY(libarchive, int, archive_read_next_header,
	(struct archive * a, struct archive_entry **e), (a, e))
FL_LAZY(libarchive, la_ssize_t, archive_read_data,
	(struct archive * a, void *p, size_t n), (a, p, n))
FL_LAZY(libarchive, const char *, archive_entry_pathname,
	(struct archive_entry * e), (e))
FL_LAZY(libarchive, __LA_MODE_T, archive_entry_filetype,
	(struct archive_entry * e), (e))
FL_LAZY(libarchive, la_int64_t, archive_entry_size, (struct archive_entry * e),
	(e))
