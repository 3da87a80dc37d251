/* SPDX-License-Identifier: MIT */
#ifndef FL_BGWRITE_H
#define FL_BGWRITE_H

/*
 * One background writer thread: the caller fills a buffer, hands it
 * over and fills another one while the thread writes the first, so
 * hashing (or decrypting) and writing overlap and the cost is about
 * max(produce, write) instead of their sum.  One write is in flight at
 * a time; a submitted buffer belongs to the thread until the next
 * submit, wait or finish returns, and the caller may read it meanwhile
 * (the thread only reads it too).  After the first failed write the
 * thread writes nothing more and every later call returns that error.
 *
 * Used by the bundle writer (signing/writer.c, a sink callback) and the
 * agent's slot writer (agent/slot.c, fl_bgw_pwrite).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Write @len bytes of @buf for offset @off; 0 or an fl_err code with a
 * message in @err.  Runs on the writer thread. */
typedef int (*fl_bgw_fn)(void *ctx, const void *buf, size_t len,
			 uint64_t off, struct fl_error *err);

struct fl_bgw;

/* Start a writer that calls @fn(@ctx, ...) for each buffer.  0 or
 * FL_ERR (no thread). */
int fl_bgw_start(fl_bgw_fn fn, void *ctx, struct fl_bgw **ret,
		 struct fl_error *err);

/*
 * Wait for the write in flight, then hand over @len bytes of @buf for
 * offset @off (nothing when @len is 0).  Returns 0, or the first failed
 * write's code and message (then nothing is handed over).
 */
int fl_bgw_submit(struct fl_bgw *w, const void *buf, size_t len,
		  uint64_t off, struct fl_error *err);

/* Wait for the write in flight; 0 or the first failed write's code. */
int fl_bgw_wait(struct fl_bgw *w, struct fl_error *err);

/* Wait, stop the thread, free; 0 or the first failed write's code.
 * NULL is fine (0). */
int fl_bgw_finish(struct fl_bgw *w, struct fl_error *err);

/* An fl_bgw_fn for a file or block device: pwrite(2) at the offset,
 * then, with @writeback, start the kernel's writeback of the range
 * (sync_file_range) so a final fsync has little left to do.  FL_EIO. */
struct fl_bgw_fd {
	int fd; /* not closed by the writer */
	bool writeback;
};
int fl_bgw_pwrite(void *ctx, const void *buf, size_t len, uint64_t off,
		  struct fl_error *err);

#endif
