/* SPDX-License-Identifier: MIT */
#ifndef AGENT_BGWRITE_H
#define AGENT_BGWRITE_H

/*
 * One background writer thread per file: the caller fills a buffer,
 * hands it over and fills the other one while the thread copies the
 * first into the page cache (which on small devices and VMs costs about
 * as much as decrypting it).  One write is in flight at a time; a
 * submitted buffer belongs to the thread until the next submit or wait
 * returns, and the caller may read it meanwhile (the thread only reads
 * it too).  Used by the download (partial file) and the slot writer.
 */
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct agent_bgw;

/* Start a writer for @fd (not closed by it).  @writeback: start the
 * kernel's writeback of each chunk (sync_file_range) after writing it.
 * Returns 0 or FL_ERR (no thread). */
int agent_bgw_start(int fd, int writeback, struct agent_bgw **ret,
		    struct fl_error *err);

/*
 * Wait for the write in flight, then hand over @len bytes of @buf for
 * offset @off.  Returns 0, or the error of the write that was in flight
 * (FL_EIO; then nothing is handed over).
 */
int agent_bgw_submit(struct agent_bgw *w, const void *buf, size_t len,
		     uint64_t off, struct fl_error *err);

/* Wait for the write in flight; its error (FL_EIO) or 0. */
int agent_bgw_wait(struct agent_bgw *w, struct fl_error *err);

/* Wait, stop the thread, free.  NULL is fine. */
void agent_bgw_stop(struct agent_bgw *w);

#endif
