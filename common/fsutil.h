/* SPDX-License-Identifier: MIT */
#ifndef FL_FSUTIL_H
#define FL_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/*
 * Read a whole file of at most @max bytes into a NUL-terminated buffer
 * (caller frees).  FL_ENOTFOUND when missing, FL_ELIMIT when larger.
 */
int fl_read_file(const char *path, size_t max, char **ret_buf,
		 size_t *ret_len, struct fl_error *err);

/*
 * Replace @path so that after a crash it holds either the old or the new
 * content: write a temp file in the same directory, fsync, rename over
 * @path, fsync the directory.
 */
int fl_write_atomic(const char *path, const void *buf, size_t len,
		    mode_t mode, struct fl_error *err);
int fl_write_atomic_str(const char *path, const char *s, mode_t mode,
			struct fl_error *err);

/* fsync the directory holding @path (or @path itself if a directory). */
int fl_fsync_parent(const char *path, struct fl_error *err);

/* mkdir -p with @mode for created components. */
int fl_mkdir_p(const char *path, mode_t mode, struct fl_error *err);

/* Join two path parts with one '/'; caller frees. */
char *fl_path_join(const char *dir, const char *name);

/* True if @path exists (any type). */
bool fl_path_exists(const char *path);

/* Write all @len bytes to @fd, retrying on EINTR and short writes. */
int fl_write_all(int fd, const void *buf, size_t len, struct fl_error *err);

/* The same at offset @off (pwrite): FL_EIO with errno kept on failure
 * (a write that makes no progress is EIO). */
int fl_pwrite_all(int fd, const void *buf, size_t len, uint64_t off,
		  struct fl_error *err);

/*
 * Read a token from @path ("-" for stdin): its only line, without the
 * line end (at most 4096 bytes).  *ret is freed with fl_free_secret.
 * FL_EUSAGE when empty or not one word; FL_ENOTFOUND, FL_EIO.
 */
int fl_read_secret(const char *path, char **ret, struct fl_error *err);

/*
 * Take the single-instance lock @path (created 0600 if missing): an
 * exclusive flock(2) held for as long as the returned descriptor stays
 * open, so until fl_lock_release or process exit (a crash releases it).
 * The descriptor is O_CLOEXEC: children (a spawned broker, an exec'ed
 * restart) do not inherit the lock.  The holder's pid is written into
 * the file for the next one's message.  On success *@ret_fd is the
 * descriptor.  FL_ECONFLICT when another process holds it (the message
 * names its pid when known), FL_EIO when the file cannot be opened.
 */
int fl_lock_take(const char *path, int *ret_fd, struct fl_error *err);

/* Release a lock taken with fl_lock_take; -1 is ignored. */
void fl_lock_release(int fd);

#endif
