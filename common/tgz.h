/* SPDX-License-Identifier: MIT */
#ifndef FL_TGZ_H
#define FL_TGZ_H

/*
 * A small .tar.gz (POSIX pax, gzip) written from entries held in
 * memory: fleetctl provision's device archive, the agent's support
 * bundle, a technician's certificate bundle (also read back).
 * libarchive is loaded on first use (common/lazylib.h, lazy_archive.c),
 * so no program links it.  Entries belong to root, with the time they
 * were added.
 */
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct fl_tgz;

/* Load libarchive once (lazy_archive.c); fl_tgz_open does.  0 or
 * FL_ENOTFOUND naming the package. */
int fl_archive_load(struct fl_error *err);

/*
 * Start an archive written to @fd (left open; the caller syncs and
 * closes it).  Returns 0, FL_ENOTFOUND (libarchive is not installed:
 * the message names its package), FL_EIO.
 */
int fl_tgz_open(int fd, struct fl_tgz **ret, struct fl_error *err);

/* A directory (@data NULL, @mode e.g. 0700) or a regular file of @len
 * bytes of @data at @path.  Returns 0 or FL_EIO. */
int fl_tgz_add(struct fl_tgz *t, const char *path, const void *data, size_t len,
	       mode_t mode, struct fl_error *err);

/* Write the end of the archive and free @t (NULL is fine).  Returns 0
 * or FL_EIO (then the file is incomplete). */
int fl_tgz_close(struct fl_tgz *t, struct fl_error *err);

/* A regular file read from a .tar.gz: its path and bytes (NUL-ended). */
struct fl_tgz_entry {
	char *path;
	char *data;
	size_t len;
};

/*
 * Read every regular file of the .tar.gz (or plain tar) at @path into
 * memory: at most @max_files of them, @max_bytes in all (FL_ELIMIT
 * beyond).  Other entries (directories) are skipped.  Returns 0,
 * FL_ENOTFOUND (no file, or no libarchive), FL_EPARSE (not an archive),
 * FL_ELIMIT.  Free with fl_tgz_entries_free, which wipes the bytes
 * (they may hold a key).
 */
int fl_tgz_read(const char *path, size_t max_files, size_t max_bytes,
		struct fl_tgz_entry **ret, size_t *ret_n, struct fl_error *err);
void fl_tgz_entries_free(struct fl_tgz_entry *v, size_t n);

#endif
